//! What `make install` ships besides the binary: the man pages and shell
//! completions `flint __generate` writes from the command-line definitions,
//! checked against what `flint --help` says, rendered by groff, `man` and
//! mandoc, and loaded by bash, zsh and fish; and the Makefile's install and
//! uninstall into a DESTDIR, with the debug binary (`FLINT_BIN=`).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{flint_bin, require};

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("utf-8 output")
}

/// The commands that `flint [PATH...] --help` lists (its `Commands:`
/// section, without `help`).
fn help_commands(path: &[String]) -> Vec<String> {
    let help = stdout(Command::new(flint_bin()).args(path).arg("--help"));
    let mut names = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line == "Commands:" {
            inside = true;
        } else if inside && line.starts_with("  ") {
            // A long description may continue on an indented line of its own.
            if line.starts_with("   ") {
                continue;
            }
            let name = line.split_whitespace().next().expect("a command name");
            if name != "help" {
                names.push(name.to_owned());
            }
        } else if inside {
            inside = false;
        }
    }
    names
}

/// Every command path below `flint`, as `flint --help` and the help of
/// each command show them: `[]`, `["run"]`, `["ctl"]`, `["ctl", "status"]`, ...
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = vec![Vec::new()];
    let mut i = 0;
    while i < paths.len() {
        let path = paths[i].clone();
        for name in help_commands(&path) {
            let mut sub = path.clone();
            sub.push(name);
            paths.push(sub);
        }
        i += 1;
    }
    assert!(
        paths.len() > 10 && paths.iter().any(|p| p == &["ctl", "status"]),
        "the help output did not list flint's commands: {paths:?}"
    );
    paths
}

/// `flint-ctl-status` for `["ctl", "status"]`.
fn page_name(path: &[String]) -> String {
    std::iter::once("flint")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-")
}

/// The long options `flint [PATH...] --help` lists.
fn help_options(path: &[String]) -> Vec<String> {
    let help = stdout(Command::new(flint_bin()).args(path).arg("--help"));
    help.lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        // The name, without an optional value (`--dev-log[=<PATH>]`).
        .map(|w| {
            w.trim_end_matches(',')
                .split('[')
                .next()
                .unwrap_or(w)
                .to_owned()
        })
        .collect()
}

fn generate_man(dir: &Path) -> String {
    stdout(
        Command::new(flint_bin())
            .args(["__generate", "man"])
            .arg(dir)
            .env("SOURCE_DATE_EPOCH", "0"),
    )
}

fn generate_completions(shell: &str, dir: &Path) -> PathBuf {
    let out = stdout(
        Command::new(flint_bin())
            .args(["__generate", "completions", shell])
            .arg(dir),
    );
    let path = PathBuf::from(out.trim());
    assert!(
        path.is_file(),
        "{shell}: {} was not written",
        path.display()
    );
    path
}

fn files(dir: &Path, ext: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect()
}

#[test]
fn generator_is_hidden() {
    let help = stdout(Command::new(flint_bin()).arg("--help"));
    assert!(!help.contains("__generate"), "{help}");
    // It has its own help, though.
    let help = stdout(Command::new(flint_bin()).args(["__generate", "--help"]));
    assert!(
        help.contains("completions") && help.contains("man"),
        "{help}"
    );
}

#[test]
fn one_man_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let printed = generate_man(dir.path());
    let expected: BTreeSet<String> = command_paths()
        .iter()
        .map(|p| format!("{}.1", page_name(p)))
        .collect();
    let written = files(dir.path(), ".1");
    assert_eq!(
        written, expected,
        "man pages written vs. commands in --help"
    );
    assert_eq!(
        files(dir.path(), ""),
        expected,
        "nothing but the man pages is written"
    );
    assert_eq!(printed.lines().count(), expected.len(), "{printed}");
    for name in [
        "flint.1",
        "flint-run.1",
        "flint-ctl.1",
        "flint-ctl-status.1",
    ] {
        assert!(written.contains(name), "{name} missing: {written:?}");
    }

    for path in command_paths() {
        let name = page_name(&path);
        let text = std::fs::read_to_string(dir.path().join(format!("{name}.1"))).unwrap();
        let plain = text.replace("\\-", "-");
        // Dated by SOURCE_DATE_EPOCH, with the version.
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            plain.contains(&format!(
                ".TH {name} 1 1970-01-01 \"flint {version}\" \"flint manual\""
            )),
            "{name}: {}",
            plain
                .lines()
                .find(|l| l.starts_with(".TH"))
                .unwrap_or("no .TH")
        );
        for option in help_options(&path) {
            assert!(
                plain.contains(&option),
                "{name}.1 does not mention {option}"
            );
        }
        for sub in help_commands(&path) {
            assert!(plain.contains(&sub), "{name}.1 does not mention {sub}");
        }
    }
}

/// Every command says what it does: the first line of its `--help`, and
/// its line in its parent's list of commands.
#[test]
fn every_command_has_a_description() {
    for path in command_paths().into_iter().filter(|p| !p.is_empty()) {
        let help = stdout(Command::new(flint_bin()).args(&path).arg("--help"));
        let first = help.lines().next().unwrap_or_default();
        assert!(
            !first.trim().is_empty() && !first.starts_with("Usage:"),
            "flint {} --help has no description:\n{help}",
            path.join(" ")
        );
        let (name, parent) = path.split_last().unwrap();
        let listed = stdout(Command::new(flint_bin()).args(parent).arg("--help"));
        let line = listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()) && l.starts_with("  "))
            .unwrap_or_default();
        assert!(
            line.split_whitespace().count() > 1,
            "flint {} --help lists {name} without a description:\n{listed}",
            parent.join(" ")
        );
    }
}

#[test]
fn man_pages_render() {
    let dir = tempfile::tempdir().unwrap();
    generate_man(dir.path());
    let pages = files(dir.path(), ".1");
    let groff = require("groff", "renders the man pages");
    let man = require("man", "renders the man pages");
    let mandoc = require("mandoc", "lints the man pages");
    for page in &pages {
        let file = dir.path().join(page);
        let title = page.trim_end_matches(".1");
        if groff {
            // -k: the pages are UTF-8 (… and • appear); -ww: every warning.
            let out = run(Command::new("groff")
                .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
                .arg(&file));
            assert!(
                out.stderr.is_empty(),
                "groff on {page}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if man {
            let out = run(Command::new("man")
                .arg("-l")
                .arg(&file)
                .env("MANWIDTH", "80")
                .env("MANPAGER", "cat")
                .env("PAGER", "cat")
                .env("LC_ALL", "C.UTF-8"));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.stderr.is_empty(),
                "man -l {page}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.contains("NAME") && text.contains("SYNOPSIS") && text.contains(title),
                "man -l {page} shows:\n{text}"
            );
        }
        if mandoc {
            run(Command::new("mandoc")
                .args(["-T", "lint", "-W", "error"])
                .arg(&file));
        }
    }
}

/// Every command name below `flint` (`run`, `ctl`, `status`, ...).
fn all_command_names() -> BTreeSet<String> {
    command_paths()
        .into_iter()
        .filter_map(|p| p.last().cloned())
        .collect()
}

#[test]
fn completions_name_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let names = all_command_names();
    for (shell, file) in [
        ("bash", "flint.bash"),
        ("zsh", "_flint"),
        ("fish", "flint.fish"),
    ] {
        let path = generate_completions(shell, dir.path());
        assert_eq!(path, dir.path().join(file));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.is_empty(), "{file} is empty");
        assert!(
            !text.contains("__generate"),
            "{file} offers the hidden generator"
        );
        for name in &names {
            assert!(
                text.contains(name.as_str()),
                "{file} does not mention {name}"
            );
        }
    }
}

/// What bash's completion of `flint WORDS... PREFIX` offers.
fn bash_complete(file: &Path, words: &[&str]) -> BTreeSet<String> {
    let script = r#"source "$1"; shift
COMP_WORDS=(flint "$@"); COMP_CWORD=$#
COMP_LINE="flint $*"; COMP_POINT=${#COMP_LINE}
prev=flint; [ $# -gt 1 ] && prev=${COMP_WORDS[$(($# - 1))]}
_flint flint "${COMP_WORDS[$#]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}""#;
    stdout(
        Command::new("bash")
            .args(["--norc", "--noprofile", "-c", script, "bash"])
            .arg(file)
            .args(words),
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

#[test]
fn bash_completion_loads_and_completes() {
    if !require("bash", "loads the bash completion") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = generate_completions("bash", dir.path());
    let out = stdout(
        Command::new("bash")
            .args([
                "--norc",
                "--noprofile",
                "-c",
                r#"source "$1"; complete -p flint"#,
                "bash",
            ])
            .arg(&file),
    );
    assert!(
        out.contains("-F _flint") && out.trim_end().ends_with(" flint"),
        "{out}"
    );

    for path in command_paths() {
        let subs = help_commands(&path);
        if subs.is_empty() {
            continue;
        }
        let mut words: Vec<&str> = path.iter().map(String::as_str).collect();
        words.push("");
        let offered = bash_complete(&file, &words);
        for sub in &subs {
            assert!(
                offered.contains(sub),
                "flint {words:?}<TAB>: no {sub} in {offered:?}"
            );
        }
    }
    let offered = bash_complete(&file, &["ctl", "st"]);
    let expected: BTreeSet<String> = ["start", "status", "stop"].map(String::from).into();
    assert_eq!(offered, expected);
}

#[test]
fn zsh_completion_parses() {
    if !require("zsh", "checks the zsh completion's syntax") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = generate_completions("zsh", dir.path());
    run(Command::new("zsh").arg("-n").arg(&file));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("#compdef flint"),
        "{}",
        &text[..80.min(text.len())]
    );
}

#[test]
fn fish_completion_parses_and_completes() {
    if !require("fish", "checks the fish completion") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = generate_completions("fish", dir.path());
    run(Command::new("fish").arg("-n").arg(&file));
    for path in command_paths() {
        let subs = help_commands(&path);
        if subs.is_empty() {
            continue;
        }
        let line = std::iter::once("flint")
            .chain(path.iter().map(String::as_str))
            .chain(std::iter::once(""))
            .collect::<Vec<_>>()
            .join(" ");
        let out = stdout(
            Command::new("fish")
                .args(["--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
                .arg(&file)
                .arg(&line),
        );
        let offered: BTreeSet<&str> = out.lines().filter_map(|l| l.split('\t').next()).collect();
        for sub in &subs {
            assert!(
                offered.contains(sub.as_str()),
                "{line:?}<TAB>: no {sub} in {offered:?}"
            );
        }
    }
}

/// Every file below `dir`, relative to it.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `make` in the repository with the debug binary, the plugins this build
/// made, and generated files in `scratch`.
fn make(target: &str, destdir: &Path, scratch: &Path) -> Output {
    run(Command::new("make")
        .arg("--no-print-directory")
        .arg("-C")
        .arg(repo())
        .arg(target)
        .arg("PREFIX=/usr")
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg(format!("FLINT_BIN={}", flint_bin().display()))
        .arg(format!("GENDIR={}", scratch.display()))
        .arg(format!("PLUGIN_SRC={}", env!("FLINT_PLUGIN_DIR")))
        .env_remove("MAKEFLAGS"))
}

#[test]
fn make_install_and_uninstall_into_destdir() {
    if !require("make", "runs the Makefile") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let root = dest.path();
    make("install", root, scratch.path());
    let installed = tree(root);

    // The binary runs.
    let bin = root.join("usr/bin/flint");
    assert_eq!(mode(&bin), 0o755);
    let version = stdout(Command::new(&bin).arg("--version"));
    assert!(version.starts_with("flint "), "{version}");

    // A man page per command, in man1.
    let pages: BTreeSet<PathBuf> = installed
        .iter()
        .filter(|p| p.starts_with("usr/share/man"))
        .cloned()
        .collect();
    let expected: BTreeSet<PathBuf> = command_paths()
        .iter()
        .map(|p| PathBuf::from(format!("usr/share/man/man1/{}.1", page_name(p))))
        .collect();
    assert_eq!(pages, expected);

    // Completions where bash-completion, zsh and fish look for them.
    for file in [
        "usr/share/bash-completion/completions/flint",
        "usr/share/zsh/site-functions/_flint",
        "usr/share/fish/vendor_completions.d/flint.fish",
    ] {
        assert!(installed.contains(Path::new(file)), "{file} not installed");
        assert_eq!(mode(&root.join(file)), 0o644);
    }

    // The example plugins, where flint looks them up by name.
    let plugin_dir = Path::new(env!("FLINT_PLUGIN_DIR"));
    for name in ["allowlist", "env-tagger", "ratelimit", "sni-router"] {
        let file = root.join(format!("usr/lib/flint/plugins/{name}.wasm"));
        assert_eq!(
            std::fs::read(&file).unwrap_or_default(),
            std::fs::read(plugin_dir.join(format!("{name}.wasm"))).unwrap(),
            "{}",
            file.display()
        );
    }

    // dist/, with its modes, naming the installed binary.
    let dist = repo().join("dist");
    let dist_files = tree(&dist);
    assert!(!dist_files.is_empty());
    for rel in &dist_files {
        let file = root.join("usr/share/flint/dist").join(rel);
        assert_eq!(mode(&file), mode(&dist.join(rel)), "{}", file.display());
        let text = std::fs::read_to_string(&file).unwrap();
        let source = std::fs::read_to_string(dist.join(rel)).unwrap();
        assert_eq!(
            text,
            source.replace("/usr/local/bin/flint", "/usr/bin/flint")
        );
        assert!(!text.contains("/usr/local/bin/flint"), "{}", file.display());
    }

    // The docs and the plugin interface.
    for file in [
        "usr/share/doc/flint/README.md",
        "usr/share/doc/flint/plugins.md",
        "usr/share/doc/flint/show.md",
        "usr/share/flint/wit/policy.wit",
    ] {
        assert!(installed.contains(Path::new(file)), "{file} not installed");
    }

    // Nothing else, and nothing outside /usr.
    let accounted = pages.len() + 3 + 4 + dist_files.len() + 4 + 1;
    assert_eq!(installed.len(), accounted, "{installed:#?}");
    assert!(installed.iter().all(|p| p.starts_with("usr")));

    // Installing again is harmless; uninstalling leaves no file behind.
    make("install", root, scratch.path());
    assert_eq!(tree(root), installed);
    make("uninstall", root, scratch.path());
    assert_eq!(tree(root), BTreeSet::new());
    assert!(!root.join("usr/lib/flint").exists());
    assert!(!root.join("usr/share/flint").exists());
}

#[test]
fn make_builds_the_release_binary_locked() {
    if !require("make", "runs the Makefile") {
        return;
    }
    // -n: print the commands only (the release build is too slow for the
    // suite). `all` builds with cargo even when a binary is there.
    let scratch = tempfile::tempdir().unwrap();
    let make_n = |args: &[&str]| {
        let mut make = Command::new("make");
        make.args(["--no-print-directory", "-n", "-C"])
            .arg(repo())
            .arg("all")
            .arg(format!("GENDIR={}", scratch.path().display()))
            .args(args)
            .env_remove("MAKEFLAGS");
        make
    };
    // The default: the static, position-dependent build, installed from
    // target/release-static.
    let out = stdout(&mut make_n(&[]));
    assert!(out.contains("scripts/build-static.sh --release"), "{out}");
    assert!(!out.contains("--pie"), "{out}");
    assert!(out.contains("release-static/flint __generate man"), "{out}");
    for shell in ["bash", "zsh", "fish"] {
        assert!(
            out.contains(&format!("__generate completions {shell}")),
            "{out}"
        );
    }
    let out = stdout(&mut make_n(&["PIE=1"]));
    assert!(
        out.contains("scripts/build-static.sh --release --pie"),
        "{out}"
    );
    // Linked against the system's glibc.
    let out = stdout(&mut make_n(&["LINK=dynamic"]));
    assert!(
        out.contains("cargo build --release --locked -p flint"),
        "{out}"
    );
    assert!(out.contains("release/flint __generate man"), "{out}");
    assert!(!out.contains("build-static"), "{out}");
    // Anything else is refused before anything is built.
    let refused = make_n(&["LINK=shared"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("LINK must be static or dynamic"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
