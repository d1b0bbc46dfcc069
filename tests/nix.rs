//! flint's Nix library (`nix/`) under Debian's `nix-bin`, offline and
//! without nixpkgs:
//!
//! - every `.nix` file parses, and the library's own checks
//!   (`nix/tests/lib-checks.nix`) pass;
//! - the examples render byte for byte as the hand-checked golden files
//!   under `tests/golden/nix/` (store hashes written as `HASH`; set
//!   `FLINT_BLESS=1` to rewrite them after checking the difference);
//! - `nix-build` lays the trees out as NixOS does (golden `tree` listings),
//!   into a Nix store in a temporary directory, so neither root nor `/nix`
//!   is needed;
//! - `systemd-analyze verify` accepts every rendered unit, and `flint show`
//!   agrees with systemd's own loader (`systemd --test`, as
//!   `tests/conformance.rs` uses it) on each unit: fragment and drop-in
//!   paths, JSON-quoted `Environment=`, `ExecStart=` with the trailing
//!   space, the `ListenStream=` reset, conditions, dependencies, settings;
//! - the socket-activated services answer real clients under `flint run`,
//!   both from the library and from `nix/module.nix` (evaluated against
//!   stubs), and `flake.nix` evaluates against a stub nixpkgs;
//! - a `flint run --watch` started on a Nix profile switches between three
//!   generations of `nix/examples/switch.nix` (a flipped profile, then
//!   `flint ctl switch DIR`) with the plan NixOS's switch-to-configuration
//!   makes of the hints the library writes (golden `switch/plan`), while
//!   clients connecting without pause see no refusal or reset, get the new
//!   answers, and the listeners keep their fd and socket.
//!
//! Outside CI a missing `nix-instantiate`/`nix-build` (or systemd) skips
//! with the reason; in CI (`CI=true`) it is a failure.

mod common;

use common::held_listener as listener_fd;

use common::ctl_split as ctl;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use common::{Flint, exchange, flint_bin, in_ci, require, wait_for};
use flint::unit::value::time;

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn golden_dir() -> PathBuf {
    repo().join("tests/golden/nix")
}

fn bless() -> bool {
    std::env::var_os("FLINT_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

fn have_nix(what: &str) -> bool {
    require("nix-instantiate", what) && require("nix-build", what)
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// `nix-instantiate --eval --strict --json` of `expr`, evaluated in the
/// repository against no store at all (`dummy://`): store paths are
/// computed, nothing is written.
fn eval_json(expr: &str) -> Json {
    let o = run(Command::new("nix-instantiate")
        .current_dir(repo())
        .args(["--store", "dummy://", "--eval", "--strict", "--json", "-E"])
        .arg(expr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A Nix store of its own in a temporary directory (`local?store=…`): its
/// store directory is not `/nix/store`, so it needs neither root nor
/// `/nix`, and builds run with Nix's sandbox off as Debian configures it.
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::tempdir().unwrap();
        // systemd --test reads the trees as nobody.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Store { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where the store's paths live (Nix's `builtins.storeDir` for it).
    fn store_dir(&self) -> PathBuf {
        self.path().join("store")
    }

    fn nix(&self, program: &str) -> Command {
        let d = self.path().display();
        let mut c = Command::new(program);
        c.current_dir(repo())
            .env("XDG_CACHE_HOME", self.path().join("cache"))
            .args([
                "--store",
                &format!("local?store={d}/store&state={d}/state&log={d}/log"),
                "--option",
                "substituters",
                "",
                "--option",
                "sandbox",
                "false",
                // As root, build as root rather than as nixbld users, who
                // could not enter the temporary directory.
                "--option",
                "build-users-group",
                "",
            ]);
        c
    }

    /// `nix-build FILE --arg k v ...`, the result linked at `out`; returns
    /// the output path.
    fn build(&self, file: &str, args: &[(&str, &str)], out: &str) -> PathBuf {
        let mut c = self.nix("nix-build");
        c.arg(file).arg("-o").arg(self.path().join(out));
        for (k, v) in args {
            c.args(["--arg", k, v]);
        }
        PathBuf::from(stdout(&run(&mut c)).trim())
    }
}

/// Writes store hashes as `HASH` and the store directory as `/nix/store`.
fn normalise(text: &str, store_dir: &Path) -> String {
    let text = text.replace(&format!("{}/", store_dir.display()), "/nix/store/");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("/nix/store/") {
        let (head, tail) = rest.split_at(i + "/nix/store/".len());
        out.push_str(head);
        let hash = tail.get(..32).filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
                && tail.as_bytes().get(32) == Some(&b'-')
        });
        if hash.is_some() {
            out.push_str("HASH");
            rest = &tail[32..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Compares `files` (name -> text) with the golden directory `dir`: same
/// names, same bytes. With `FLINT_BLESS=1`, rewrites the directory.
fn check_golden(dir: &Path, files: &BTreeMap<String, String>) {
    if bless() {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        eprintln!("blessed {}", dir.display());
        return;
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (FLINT_BLESS=1 writes it)", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let names: Vec<String> = files.keys().cloned().collect();
    assert_eq!(on_disk, names, "golden files in {}", dir.display());
    let mut diffs = String::new();
    for (name, text) in files {
        let want = std::fs::read_to_string(dir.join(name)).unwrap();
        if &want != text {
            let _ = writeln!(
                diffs,
                "--- {name}: expected\n{want}--- {name}: rendered\n{text}"
            );
        }
    }
    assert!(
        diffs.is_empty(),
        "rendering differs from {} (FLINT_BLESS=1 rewrites it once checked):\n{diffs}",
        dir.display()
    );
}

/// `path -> target` for every entry under `dir`, sorted, links not followed.
fn listing(dir: &Path, store_dir: &Path) -> String {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if meta.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut lines = Vec::new();
    walk(dir, dir, &mut lines);
    lines.sort();
    normalise(&(lines.join("\n") + "\n"), store_dir)
}

/// The unit texts an example renders, by unit file name.
fn rendered(example: &str) -> BTreeMap<String, String> {
    let v = eval_json(&format!(
        "builtins.mapAttrs (n: u: u.text) (import ./nix/examples/{example}.nix {{ }}).units"
    ));
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap().to_string()))
        .collect()
}

/// The unit names of a built tree (`<name>` entries that are units), plus
/// an instance of each template.
fn unit_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            [".service", ".socket", ".target"]
                .iter()
                .any(|s| n.ends_with(s))
        })
        .map(|n| n.replace("@.", "@flint0."))
        .collect();
    for e in std::fs::read_dir(dir).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        // Instances that only have a drop-in (overrideStrategy = "asDropin").
        if let Some(unit) = n.strip_suffix(".d")
            && unit.contains('@')
            && !unit.contains("@.")
        {
            names.push(unit.to_string());
        }
    }
    names.sort();
    names.dedup();
    names
}

fn flint(args: &[&str]) -> Output {
    Command::new(flint_bin()).args(args).output().unwrap()
}

#[test]
fn every_nix_file_parses() {
    if !require("nix-instantiate", "parses the Nix files") {
        return;
    }
    let mut files = vec![repo().join("default.nix"), repo().join("flake.nix")];
    let mut dirs = vec![repo().join("nix")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "nix") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 8, "found {files:?}");
    for f in &files {
        run(Command::new("nix-instantiate")
            .args(["--store", "dummy://", "--parse"])
            .arg(f));
    }
}

#[test]
fn library_renders_units_as_nixos_does() {
    if !require("nix-instantiate", "evaluates the Nix library") {
        return;
    }
    let failed = eval_json("import ./nix/tests/lib-checks.nix");
    assert_eq!(failed, Json::Array(vec![]), "failing library checks");
    for example in ["echo", "showcase", "switch"] {
        let texts: BTreeMap<String, String> = rendered(example)
            .into_iter()
            .map(|(k, v)| (k, normalise(&v, Path::new("/nix/store"))))
            .collect();
        check_golden(&golden_dir().join(example).join("units"), &texts);
    }
}

#[test]
fn built_trees_have_nixos_layout_and_load_as_systemd_loads_them() {
    if !have_nix("builds the unit trees") {
        return;
    }
    let store = Store::new();
    for example in ["echo", "showcase", "switch"] {
        let out = store.build(&format!("nix/examples/{example}.nix"), &[], example);
        let dir = out.join("etc/systemd/system");
        let tree = listing(&dir, &store.store_dir());
        let mut files = BTreeMap::new();
        files.insert("tree".to_string(), tree);
        check_golden(&golden_dir().join(example).join("layout"), &files);

        // The files the links point at are the rendered texts.
        for (name, text) in rendered(example) {
            let link = dir.join(&name);
            let dropin = dir.join(format!("{name}.d/overrides.conf"));
            let file = if dropin.exists() { dropin } else { link };
            if std::fs::canonicalize(&file).unwrap() == Path::new("/dev/null") {
                continue;
            }
            assert_eq!(
                normalise(&std::fs::read_to_string(&file).unwrap(), &store.store_dir()),
                normalise(&text, Path::new("/nix/store")),
                "{}",
                file.display()
            );
        }

        let names = unit_names(&dir);
        // Disabled units (-> /dev/null, directly or through the store) are
        // masked for both; the rest must load.
        let loadable: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| {
                std::fs::canonicalize(dir.join(n)).map_or(true, |p| p != Path::new("/dev/null"))
            })
            .collect();
        assert!(loadable.len() < names.len() || example != "showcase");
        verify_with_systemd_analyze(&dir, &loadable);
        let o = flint(
            &[
                &["check", "--unit-dir", dir.to_str().unwrap()],
                &loadable[..],
            ]
            .concat(),
        );
        assert!(
            o.status.success(),
            "flint check refused a Nix-rendered unit:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        compare_with_systemd(&dir, &names);
    }
}

/// `systemd-analyze verify` with the tree first in the unit path: no
/// complaint may name a unit of the tree.
fn verify_with_systemd_analyze(dir: &Path, names: &[&str]) {
    if !require(
        "systemd-analyze",
        "checks rendered units with systemd's parser",
    ) {
        return;
    }
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "--recursive-errors=no"])
        .args(names)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .current_dir("/")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.contains(&*dir.to_string_lossy())
                || names
                    .iter()
                    .any(|n| l.contains(n.trim_end_matches("flint0.service")))
        })
        .collect();
    assert!(
        o.status.success() && ours.is_empty(),
        "systemd-analyze verify ({}) complains:\n{err}",
        o.status
    );
}

// ---------------------------------------------------------------------------
// flint show against systemd's own loader (the approach of
// tests/conformance.rs, on the rendered trees).

fn find_systemd() -> Option<PathBuf> {
    ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// systemd's test-mode dump of `names`, one block of text per unit.
fn systemd_dump(systemd: &Path, dir: &Path, names: &[String]) -> BTreeMap<String, String> {
    let roots = tempfile::tempdir().unwrap();
    std::fs::set_permissions(roots.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = roots.path().join("flint-nix.target");
    std::fs::write(&root, format!("[Unit]\nWants={}\n", names.join(" "))).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o644)).unwrap();
    // systemd --test refuses to run as root.
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(systemd);
        c
    } else {
        Command::new(systemd)
    };
    let o = cmd
        .args([
            "--test",
            "--system",
            "--no-pager",
            "--unit=flint-nix.target",
        ])
        .env(
            "SYSTEMD_UNIT_PATH",
            format!("{}:{}", dir.display(), roots.path().display()),
        )
        .env("SYSTEMD_LOG_LEVEL", "err")
        .current_dir("/")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        !text.is_empty(),
        "systemd --test printed no dump:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut blocks = BTreeMap::new();
    for part in text.split("\t-> Unit ").skip(1) {
        if let Some((name, body)) = part.split_once(":\n") {
            blocks.insert(name.to_string(), format!("\n{body}"));
        }
    }
    blocks
}

/// The values of `\t\tKEY: value` lines of a dump block, in order.
fn dump_values<'a>(block: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("\n\t\t{key}: ");
    block
        .match_indices(&prefix)
        .map(|(i, _)| {
            let rest = &block[i + prefix.len()..];
            rest.split('\n').next().unwrap_or_default()
        })
        .collect()
}

/// The `Command Line:` of each command under `-> KEY:` in a dump block.
fn dump_commands(block: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in block.lines() {
        if let Some(k) = line.strip_prefix("\t\t-> ") {
            inside = k == format!("{key}:");
            continue;
        }
        if inside {
            match line.strip_prefix("\t\t\tCommand Line: ") {
                Some(cmd) => out.push(cmd.to_string()),
                None if line.starts_with("\t\t\t") => {}
                None => inside = false,
            }
        }
    }
    out
}

/// systemd's `shell_maybe_quote()`, as the dump prints argv.
fn shell_quote(s: &str) -> String {
    const NEED_QUOTES: &str = " \t\n\r\"\\`$*?['()<>|&;!";
    if s.is_empty() {
        return "\"\"".to_string();
    }
    if !s
        .chars()
        .any(|c| c.is_ascii_control() || NEED_QUOTES.contains(c))
    {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' | '`' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn values_of(setting: &Json) -> Vec<&Json> {
    match setting {
        Json::Array(items) => items.iter().map(|i| &i["value"]).collect(),
        one => vec![&one["value"]],
    }
}

fn text_of(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        other => other.to_string(),
    }
}

const DEPENDENCIES: &[&str] = &[
    "Requires",
    "Requisite",
    "Wants",
    "BindsTo",
    "PartOf",
    "Upholds",
    "Conflicts",
    "Before",
    "After",
    "OnFailure",
    "OnSuccess",
];

/// Every setting of one unit that flint holds and the dump prints must
/// agree; returns the disagreements.
fn compare_unit(name: &str, show: &Json, block: &str, compared: &mut usize) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |what: &str, flint: String, systemd: String| {
        *compared += 1;
        if flint != systemd {
            bad.push(format!(
                "{name}: {what}\n    flint:   {flint}\n    systemd: {systemd}"
            ));
        }
    };
    compare_settings(&mut check, show, block);
    bad
}

/// The comparisons of [`compare_unit`]; `check(what, flint, systemd)`
/// records a disagreement.
fn compare_settings(check: &mut impl FnMut(&str, String, String), show: &Json, block: &str) {
    let state = show["load_state"].as_str().unwrap_or("?").to_string();
    check(
        "load state",
        state.clone(),
        dump_values(block, "Unit Load State").join(" "),
    );
    if state != "loaded" {
        return;
    }
    check(
        "Fragment Path",
        text_of(&show["fragment"]),
        dump_values(block, "Fragment Path").join(" "),
    );
    let dropins: Vec<String> = show["dropins"]
        .as_array()
        .unwrap()
        .iter()
        .map(text_of)
        .collect();
    check(
        "DropIn Path",
        dropins.join(" "),
        dump_values(block, "DropIn Path").join(" "),
    );
    let Some(sections) = show["settings"].as_object() else {
        return;
    };
    for (section, keys) in sections {
        if section == "Install" {
            continue;
        }
        for (key, setting) in keys.as_object().unwrap() {
            let values = values_of(setting);
            if key == "Environment" {
                // Values may span lines (a JSON-quoted `\n`): match whole
                // entries, and count them.
                for v in &values {
                    let entry = format!("\n\t\tEnvironment: {}\n", text_of(v));
                    if !block.contains(&entry) {
                        check("Environment", text_of(v), "(missing)".into());
                    }
                }
                check(
                    "Environment count",
                    values.len().to_string(),
                    block.matches("\n\t\tEnvironment: ").count().to_string(),
                );
            } else if key.starts_with("Exec") {
                let flint: Vec<String> = values
                    .iter()
                    .map(|v| {
                        v["argv"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|a| shell_quote(a.as_str().unwrap()))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                check(
                    key,
                    flint.join(" ; "),
                    dump_commands(block, key).join(" ; "),
                );
            } else if key == "Listen" {
                let flint: Vec<String> = values
                    .iter()
                    .map(|v| format!("{}: {}", text_of(&v["type"]), text_of(&v["address"])))
                    .collect();
                let sd: Vec<String> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("\t\t"))
                    .filter(|l| l.starts_with("Listen"))
                    .map(str::to_string)
                    .collect();
                check("Listen*", flint.join(", "), sd.join(", "));
            } else if key.starts_with("Condition") || key.starts_with("Assert") {
                // systemd prepends conditions: the dump lists the last first.
                let flint: Vec<String> = values
                    .iter()
                    .rev()
                    .map(|v| {
                        format!(
                            "{}{}{} untested",
                            if v["trigger"] == Json::Bool(true) {
                                "|"
                            } else {
                                ""
                            },
                            if v["negate"] == Json::Bool(true) {
                                "!"
                            } else {
                                ""
                            },
                            text_of(&v["argument"])
                        )
                    })
                    .collect();
                check(key, flint.join(" | "), dump_values(block, key).join(" | "));
            } else if section == "Unit" && DEPENDENCIES.contains(&key.as_str()) {
                let sd: Vec<&str> = dump_values(block, key)
                    .into_iter()
                    .filter(|v| v.contains("origin-file"))
                    .filter_map(|v| v.split(' ').next())
                    .collect();
                for v in &values {
                    let dep = text_of(v);
                    if !sd.contains(&dep.as_str()) {
                        check(key, dep, format!("{sd:?}"));
                    }
                }
            } else if section == "Socket" && key == "Accept" {
                check(
                    "Accept",
                    (setting["value"] == Json::Bool(true)).to_string(),
                    (!dump_values(block, "Accepted").is_empty()).to_string(),
                );
            } else {
                let sd = dump_values(block, key);
                if sd.is_empty() {
                    continue;
                }
                if let Some(usec) = values.last().and_then(|v| v["usec"].as_u64()) {
                    let d = sd[sd.len() - 1];
                    let agrees = time::parse_timespan(d, 1_000_000).ok() == Some(usec);
                    check(
                        key,
                        usec.to_string(),
                        if agrees {
                            usec.to_string()
                        } else {
                            d.to_string()
                        },
                    );
                } else if key.starts_with("Limit") {
                    let v = values.last().unwrap();
                    check(key, text_of(&v["hard"]), sd[sd.len() - 1].to_string());
                } else if setting.is_array() && values.len() > 1 {
                    // One line per item, or one line of words.
                    let flint: Vec<String> = values.iter().map(|v| text_of(v)).collect();
                    let sd: Vec<&str> = if sd.len() == 1 {
                        sd[0].split(' ').collect()
                    } else {
                        sd
                    };
                    check(key, flint.join(" | "), sd.join(" | "));
                } else if values.iter().all(|v| !v.is_object()) {
                    check(
                        key,
                        text_of(values[values.len() - 1]),
                        sd[sd.len() - 1].to_string(),
                    );
                }
            }
        }
    }
}

fn compare_with_systemd(dir: &Path, names: &[String]) {
    let Some(systemd) = find_systemd() else {
        assert!(
            !in_ci(),
            "systemd's binary is missing; scripts/install-test-deps.sh installs it"
        );
        eprintln!("SKIP: systemd's binary is missing (the oracle for the rendered units)");
        return;
    };
    if nix::unistd::geteuid().is_root() && !require("setpriv", "runs systemd --test as nobody") {
        return;
    }
    let dump = systemd_dump(&systemd, dir, names);
    let o = flint(
        &[
            &["show", "--unit-dir", dir.to_str().unwrap()],
            &names.iter().map(String::as_str).collect::<Vec<_>>()[..],
        ]
        .concat(),
    );
    let shows: Vec<Json> = match serde_json::from_slice(&o.stdout).unwrap() {
        Json::Array(a) => a,
        one => vec![one],
    };
    assert_eq!(shows.len(), names.len());
    let mut bad = Vec::new();
    let mut compared = 0;
    for (name, show) in names.iter().zip(&shows) {
        // An alias is dumped under the unit's own name.
        let id = show["id"].as_str().unwrap_or(name);
        let block = dump
            .get(id)
            .unwrap_or_else(|| panic!("the dump has no block for {name} ({id})"));
        bad.extend(compare_unit(name, show, block, &mut compared));
    }
    eprintln!(
        "nix: {compared} settings of {} units compared with systemd --test, {} disagree",
        names.len(),
        bad.len()
    );
    assert!(
        compared >= 3 * names.len(),
        "only {compared} comparisons for {} units",
        names.len()
    );
    assert!(
        bad.is_empty(),
        "flint loads Nix-rendered units differently from systemd:\n{}",
        bad.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Running what the library built

/// A port `p` with `p + 1` free as well (the examples listen on both).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let p = common::free_port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports");
}

#[test]
fn nix_built_socket_units_answer_clients() {
    if !have_nix("builds the unit trees")
        || !require("/usr/bin/python3", "runs the upper-casing example service")
    {
        return;
    }
    let store = Store::new();
    let port = free_port_pair();
    let echo = store.build(
        "nix/examples/echo.nix",
        &[("port", &port.to_string())],
        "echo",
    );
    let dir = echo.join("etc/systemd/system");
    // No unit named: what sockets.target.wants (the wantedBy links) lists.
    let f = Flint::run_dir(&dir, &[], &[]);
    assert_eq!(exchange(port, b"ping\n"), "hello from Nix: ping\n");
    assert_eq!(exchange(port + 1, b"quiet please\n"), "QUIET PLEASE\n");
    assert!(f.wait_log("upper.service: started"), "{}", f.log());
    drop(f);

    // A package's socket whose address an overrides.conf replaces (the
    // empty ListenStream= resets the package's), and the package's
    // template service with an environment drop-in.
    let port = common::free_port();
    let p = port.to_string();
    let show1 = store.build(
        "nix/examples/showcase.nix",
        &[("port", &p), ("generation", "1")],
        "showcase-1",
    );
    let dir1 = show1.join("etc/systemd/system");
    let f = Flint::run_dir(&dir1, &["printd.socket"], &[]);
    assert_eq!(
        exchange(port, b"report\n"),
        "flint's printd printed report\n"
    );
    assert!(
        !f.log().contains("/run/printd.sock"),
        "the package's address was reset:\n{}",
        f.log()
    );
    drop(f);

    // The next generation of the same configuration: it loads, and only
    // the units whose inputs changed have new store paths (what a switch
    // will compare).
    let show2 = store.build(
        "nix/examples/showcase.nix",
        &[("port", &p), ("generation", "2")],
        "showcase-2",
    );
    let dir2 = show2.join("etc/systemd/system");
    let target = |d: &Path, n: &str| std::fs::read_link(d.join(n)).unwrap();
    assert_eq!(
        target(&dir1, "printd.socket.d/overrides.conf"),
        target(&dir2, "printd.socket.d/overrides.conf")
    );
    assert_eq!(target(&dir1, "keep.service"), target(&dir2, "keep.service"));
    assert_ne!(
        target(&dir1, "showcase.service"),
        target(&dir2, "showcase.service")
    );
    assert_ne!(
        target(&dir1, "hm-style.service"),
        target(&dir2, "hm-style.service")
    );
    let triggers = |d: &Path| {
        let o = flint(&[
            "show",
            "--unit-dir",
            d.to_str().unwrap(),
            "showcase.service",
        ]);
        let v: Json = serde_json::from_slice(&o.stdout).unwrap();
        v["extra"]["Unit"]["X-Restart-Triggers"][0]["value"].clone()
    };
    assert_ne!(triggers(&dir1), triggers(&dir2));
    let o = flint(&[
        "check",
        "--unit-dir",
        dir2.to_str().unwrap(),
        "showcase.service",
        "printd.socket",
        "hm-style.service",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn module_and_flake_evaluate_against_stubs() {
    if !have_nix("evaluates nix/module.nix and flake.nix") {
        return;
    }
    for host in ["home-manager", "nixos", "system-manager"] {
        let v = eval_json(&format!(
            "removeAttrs (import ./nix/tests/module-stub.nix {{ host = \"{host}\"; }}) [ \"launcher\" \"tree\" ]"
        ));
        assert_eq!(
            v["installed"]["packages"],
            serde_json::json!(["flint-launch"]),
            "{host}: {v}"
        );
        if host == "home-manager" {
            assert_eq!(v["user"], Json::Bool(true), "{v}");
            assert_eq!(v["installed"]["activation"], Json::Bool(true), "{v}");
        } else {
            assert_eq!(v["user"], Json::Bool(false), "{v}");
            assert_eq!(v["installed"]["etc"], Json::Bool(true), "{v}");
        }
    }

    // home-manager's launcher runs flint --user on the module's tree.
    let store = Store::new();
    let prefix = store.path().join("flint-prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::os::unix::fs::symlink(flint_bin(), prefix.join("bin/flint")).unwrap();
    let port = common::free_port();
    let mut c = store.nix("nix-build");
    c.args(["nix/tests/module-stub.nix", "-A", "launcher", "-o"])
        .arg(store.path().join("launcher"))
        .args(["--argstr", "flintPrefix", prefix.to_str().unwrap()])
        .args(["--arg", "port", &port.to_string()]);
    let launcher = PathBuf::from(stdout(&run(&mut c)).trim()).join("bin/flint-launch");
    let script = std::fs::read_to_string(&launcher).unwrap();
    assert!(
        script.contains(" run --user --unit-dir ") && script.contains("/etc/systemd/user"),
        "{script}"
    );
    let runtime = store.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let child = Command::new(&launcher)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("FLINT_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let f = Flint {
        child,
        log: std::sync::Arc::default(),
    };
    assert_eq!(exchange(port, b"hi\n"), "module: hi\n");
    drop(f);

    // package.nix against a stub rustPlatform: the source it would build.
    let mut c = store.nix("nix-instantiate");
    c.args([
        "--read-write-mode",
        "--eval",
        "--strict",
        "--json",
        "nix/tests/package-stub.nix",
    ]);
    let v: Json = serde_json::from_slice(&run(&mut c).stdout).unwrap();
    assert_eq!(v["pname"], "flint");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["lockFile"], true);
    assert_eq!(
        v["source"],
        serde_json::json!(["Cargo.lock", "Cargo.toml", "bench", "core", "tests", "wit"])
    );

    check_flake(&store);
}

/// flake.nix with its nixpkgs input replaced by a stub flake: the library,
/// the modules, the packages and the unit-tree checks evaluate.
fn check_flake(store: &Store) {
    let system = eval_json("builtins.currentSystem");
    let system = system.as_str().unwrap();
    // A copy of what the flake reads (a path: flake would copy the whole
    // working tree, target/ included, into the store).
    let src = store.path().join("flake-src");
    std::fs::create_dir_all(&src).unwrap();
    for f in ["flake.nix", "Cargo.toml", "Cargo.lock"] {
        std::fs::copy(repo().join(f), src.join(f)).unwrap();
    }
    run(Command::new("cp")
        .arg("-r")
        .arg(repo().join("nix"))
        .arg(&src));
    let stub = store.path().join("nixpkgs-stub");
    std::fs::create_dir_all(&stub).unwrap();
    std::fs::write(
        stub.join("flake.nix"),
        r#"{
  outputs = _: {
    lib.genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    legacyPackages = builtins.listToAttrs (map (system: {
      name = system;
      value = {
        runtimeShell = "/bin/sh";
        coreutils = "/usr";
        python3 = "/usr";
        callPackage = f: args: { type = "derivation"; name = "flint"; };
      };
    }) [ "x86_64-linux" "aarch64-linux" ]);
  };
}
"#,
    )
    .unwrap();
    let eval = |attr: &str, apply: &str| {
        let mut c = store.nix("nix");
        c.args([
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--json",
            "--no-write-lock-file",
        ])
        .args(["--override-input", "nixpkgs"])
        .arg(format!("path:{}", stub.display()))
        .arg(format!("path:{}#{attr}", src.display()))
        .args(["--apply", apply]);
        let o = run(&mut c);
        serde_json::from_slice::<Json>(&o.stdout).unwrap()
    };
    let lib = eval(
        "lib",
        &format!("f: builtins.attrNames (f {{ system = \"{system}\"; }})"),
    );
    assert!(
        lib.as_array().unwrap().contains(&Json::from("unitTree")),
        "{lib}"
    );
    let modules = eval("nixosModules", "m: builtins.typeOf m.default");
    assert_eq!(modules, "path");
    let checks = eval(
        &format!("checks.{system}"),
        "c: builtins.mapAttrs (n: v: v.name) c",
    );
    assert_eq!(
        checks,
        serde_json::json!({"echo-units": "echo-units", "package": "flint", "showcase-units": "showcase-units"})
    );
}

// ---------------------------------------------------------------------------
// Switching a running flint between generations the library built

/// One request: connect, send `input`, read the answer to the end. The
/// server closes first, so the client's port is not left in TIME_WAIT
/// (thousands of requests would use up the ephemeral ports). An error
/// names the refusal, reset, timeout or empty answer.
fn ask(port: u16, input: &[u8]) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(input).map_err(|e| format!("write: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read: {e}"))?;
    if out.is_empty() {
        return Err("empty answer".into());
    }
    Ok(out)
}

/// A client loop on one port that connects again as soon as it has its
/// answer, until stopped; bounded in count and time.
struct Load {
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    last: Arc<Mutex<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, input: &'static [u8], stop: &Arc<AtomicBool>) -> Load {
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let last = Arc::new(Mutex::new(String::new()));
        let (o, f, l, stop) = (ok.clone(), failures.clone(), last.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            for _ in 0..1_000_000 {
                if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(40) {
                    break;
                }
                match ask(port, input) {
                    Ok(answer) => {
                        o.fetch_add(1, Ordering::Relaxed);
                        *l.lock().unwrap() = answer;
                    }
                    Err(e) => f.lock().unwrap().push(e),
                }
            }
        });
        Load {
            ok,
            failures,
            last,
            thread: Some(thread),
        }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits (bounded) until the answers are `want`, with more to come.
    fn wait_answer(&self, want: &str) {
        let got = wait_for(Duration::from_secs(20), || {
            (*self.last.lock().unwrap() == want).then_some(())
        });
        assert!(
            got.is_some(),
            "the answers never became {want:?}; the last was {:?}",
            self.last.lock().unwrap()
        );
        let n = self.ok();
        assert!(
            wait_for(Duration::from_secs(20), || (self.ok() > n + 5)
                .then_some(()))
            .is_some(),
            "the client loop stalled"
        );
    }

    /// Stops waiting for the loop: (answers, failures).
    fn finish(mut self) -> (u64, Vec<String>) {
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        (self.ok(), self.failures.lock().unwrap().clone())
    }
}

/// The main pid of a service, if it has one now.
fn main_pid(control: &Path, unit: &str) -> Option<u64> {
    let (_, out, _) = ctl(control, &["--json", "status", unit]);
    let v: Json = serde_json::from_str(&out).ok()?;
    v["units"][0]["main_pid"].as_u64()
}

/// Waits (bounded) until `unit` runs with a main pid other than `old`.
fn restarted(control: &Path, unit: &str, old: u64) -> u64 {
    wait_for(Duration::from_secs(10), || {
        main_pid(control, unit).filter(|pid| *pid != old)
    })
    .unwrap_or_else(|| panic!("{unit} was not restarted"))
}

/// Compares `text` with the golden file `path` (`FLINT_BLESS=1` rewrites it).
fn check_golden_file(path: &Path, text: &str) {
    if bless() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (FLINT_BLESS=1 writes it)", path.display()));
    assert_eq!(
        text,
        want,
        "differs from {} (FLINT_BLESS=1 rewrites it once checked)",
        path.display()
    );
}

/// nix/examples/switch.nix in three generations under one `flint run
/// --watch` started on a Nix profile: generation 2 comes by flipping the
/// profile (`nix-env --set`), generation 3 by `flint ctl switch DIR`. The
/// plan is NixOS's for the hints the library wrote; clients that connect
/// without pause see no refusal or reset and get the new answers; the
/// listeners keep their fd and socket; the hints are obeyed.
#[test]
fn nix_generations_switch_under_load_as_their_hints_say() {
    if !have_nix("builds the unit trees")
        || !require("/usr/bin/python3", "runs the example's greeter")
    {
        return;
    }
    let started = Instant::now();
    let store = Store::new();
    let port = free_port_pair();
    let p = port.to_string();
    let build = |generation: &str| {
        store.build(
            "nix/examples/switch.nix",
            &[("port", &p), ("generation", generation)],
            &format!("generation-{generation}"),
        )
    };
    let (gen1, gen2, gen3) = (build("1"), build("2"), build("3"));
    let tree = |out: &Path| out.join("etc/systemd/system").to_str().unwrap().to_owned();
    // A profile as Nix keeps one: profile -> profile-N-link -> store path,
    // flipped atomically by nix-env.
    let profile = store.path().join("profile");
    let set_profile = |out: &Path| {
        run(store
            .nix("nix-env")
            .arg("--profile")
            .arg(&profile)
            .arg("--set")
            .arg(out));
    };
    set_profile(&gen1);
    let control = store.path().join("control");
    let f = Flint::run_dir(
        &profile.join("etc/systemd/system"),
        &["--watch", "--control", control.to_str().unwrap()],
        &[],
    );
    let pid = f.child.id();

    // Generation 1 answers: the Accept=no greeter and the Accept=yes echo.
    let stop = Arc::new(AtomicBool::new(false));
    let hello = Load::start(port, b"", &stop);
    let echo = Load::start(port + 1, b"ping\n", &stop);
    hello.wait_answer("hello from generation 1\n");
    echo.wait_answer("generation 1 echoes ping\n");
    let listeners = (listener_fd(pid, port), listener_fd(pid, port + 1));
    let pids = |names: &[&str]| -> Vec<Option<u64>> {
        names.iter().map(|n| main_pid(&control, n)).collect()
    };
    // Never restarted: not by the hint, not by a reload.
    let steady = ["keep.service", "reloader.service", "cache.service"];
    let steady_pids = pids(&steady);
    assert!(steady_pids.iter().all(Option::is_some), "{steady_pids:?}");
    let worker = main_pid(&control, "worker.service").expect("worker.service runs");

    // The plan, without doing it.
    let plan_file = golden_dir().join("switch/plan");
    let (code, plan, err) = ctl(&control, &["switch", "--dry-run", &tree(&gen2)]);
    assert_eq!(code, 0, "{plan}{err}");
    check_golden_file(&plan_file, &plan);
    assert_eq!(*hello.last.lock().unwrap(), "hello from generation 1\n");

    // Generation 2: the profile flips and --watch follows it.
    set_profile(&gen2);
    hello.wait_answer("hello from generation 2\n");
    echo.wait_answer("generation 2 echoes ping\n");
    let log = f.log();
    let after = log
        .split_once("the unit tree changed; switching")
        .unwrap_or_else(|| panic!("--watch did not switch:\n{log}"))
        .1;
    for line in plan.lines() {
        assert!(
            after.contains(&format!("flint: {line}\n")),
            "{line}:\n{after}"
        );
    }
    assert!(
        f.wait_log("reloader: reloading for generation 2"),
        "{}",
        f.log()
    );
    assert!(f.wait_log("cache: reloading its rules"), "{}", f.log());
    assert_eq!(pids(&steady), steady_pids, "{steady:?}: not restarted");
    let worker = restarted(&control, "worker.service", worker);

    // Generation 3: named to `flint ctl switch`; the same plan again, now
    // from the running generation 2.
    let (code, dry, err) = ctl(&control, &["switch", "--dry-run", &tree(&gen3)]);
    assert_eq!((code, dry.as_str()), (0, plan.as_str()), "{err}");
    let (code, out, err) = ctl(&control, &["switch", &tree(&gen3)]);
    assert_eq!((code, out.as_str()), (0, plan.as_str()), "{err}");
    hello.wait_answer("hello from generation 3\n");
    echo.wait_answer("generation 3 echoes ping\n");
    assert!(
        f.wait_log("reloader: reloading for generation 3"),
        "{}",
        f.log()
    );
    assert_eq!(pids(&steady), steady_pids, "{steady:?}: not restarted");
    restarted(&control, "worker.service", worker);
    // keep.service still runs generation 1's definition.
    let environ = std::fs::read(format!("/proc/{}/environ", steady_pids[0].unwrap())).unwrap();
    assert!(
        environ.split(|b| *b == 0).any(|v| v == b"GENERATION=1"),
        "keep.service: {}",
        String::from_utf8_lossy(&environ)
    );

    stop.store(true, Ordering::Relaxed);
    let (hello_ok, hello_failed) = hello.finish();
    let (echo_ok, echo_failed) = echo.finish();
    eprintln!(
        "nix switch: greeter {hello_ok} answers, echo {echo_ok} answers, {:?} in all",
        started.elapsed()
    );
    assert!(
        hello_failed.is_empty() && echo_failed.is_empty(),
        "refused or reset connections: greeter {hello_failed:?}, echo {echo_failed:?}"
    );
    assert!(hello_ok > 20 && echo_ok > 20, "{hello_ok} {echo_ok}");
    assert_eq!(
        (listener_fd(pid, port), listener_fd(pid, port + 1)),
        listeners,
        "a listener was reopened"
    );
    let reloads = || f.log().matches("cache: reloading its rules").count();
    assert!(
        wait_for(Duration::from_secs(10), || (reloads() == 2).then_some(())).is_some(),
        "cache.service reloaded {} times, not twice",
        reloads()
    );
}
