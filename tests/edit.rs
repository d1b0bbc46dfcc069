//! `flint edit` and `systemctl edit`: the editor gets the drop-in between
//! systemctl's markers with the unit's files commented out below it, only
//! the text between the markers is written, the running flint reads its
//! units again, and nothing changes without a terminal, when the editor
//! fails or when it leaves nothing. The editor is a script, run on a
//! terminal that `script(1)` makes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Flint, Tree, ctl_split as ctl, flint_bin};

const START: &str =
    "### Anything between here and the comment below will become the new contents of the file";
const END: &str = "### Lines below this comment will be discarded";

/// The editor: copies each file it gets to `$RECORD.N` (`(no file)` when
/// it does not exist yet) and its path to `$RECORD.names`, then puts `$INSERT` after the start marker, or
/// replaces the whole file with `$REPLACE`; exits with `$EDIT_EXIT`.
const EDITOR: &str = r#"n=0
for f; do
  n=$((n+1))
  if [ -e "$f" ]; then cp "$f" "$RECORD.$n"; else echo "(no file)" > "$RECORD.$n"; fi
  echo "$f" >> "$RECORD.names"
  if [ "$n" = "$EMPTY_N" ]; then : > "$f"
  elif [ -n "$REPLACE" ]; then cp "$REPLACE" "$f"
  elif [ -n "$INSERT" ]; then sed -i "/^### Anything between here/r $INSERT" "$f"
  fi
done
exit "${EDIT_EXIT:-0}"
"#;

struct Editor {
    dir: PathBuf,
    record: PathBuf,
}

impl Editor {
    fn new(tree: &Tree) -> Editor {
        let dir = tree.path().join("editor");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("edit.sh"), EDITOR).unwrap();
        Editor {
            record: dir.join("record"),
            dir,
        }
    }

    /// What the editor got as its `n`th file (from 1), and the list of
    /// paths it got; both cleared for the next run.
    fn take(&self) -> (Vec<String>, Vec<PathBuf>) {
        let names =
            std::fs::read_to_string(self.record.with_extension("names")).unwrap_or_default();
        let names: Vec<PathBuf> = names.lines().map(PathBuf::from).collect();
        let mut texts = Vec::new();
        for n in 1..=names.len() {
            let p = PathBuf::from(format!("{}.{n}", self.record.display()));
            texts.push(std::fs::read_to_string(&p).unwrap());
            std::fs::remove_file(p).unwrap();
        }
        let _ = std::fs::remove_file(self.record.with_extension("names"));
        (texts, names)
    }

    fn text(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// Runs `program args` on a terminal of its own (`script -qec`), with the
/// editor and `env`; returns the exit code and what the terminal showed.
fn on_terminal(
    program: &Path,
    args: &[&str],
    editor: &Editor,
    env: &[(&str, &str)],
) -> (i32, String) {
    let mut line = shell_quote(program.to_str().unwrap());
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env(
            "EDITOR",
            format!("sh {}", editor.dir.join("edit.sh").display()),
        )
        .env("RECORD", &editor.record)
        .env_remove("SYSTEMD_EDITOR")
        .env_remove("VISUAL")
        .env_remove("INSERT")
        .env_remove("REPLACE")
        .env_remove("EDIT_EXIT")
        .env_remove("EMPTY_N")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("script(1)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The files of a directory (none when it does not exist), sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn description(control: &Path, unit: &str) -> String {
    ctl(control, &["show", "-p", "Description", unit])
        .1
        .trim()
        .to_owned()
}

/// With no flint on the control socket, the drop-in is written and flint
/// says the change waits for the next time flint reads its units (it
/// said nothing before, as if the change were live).
#[test]
fn edit_says_when_no_flint_runs_to_read_the_change() {
    let tree = Tree::new();
    tree.write("x.service", "[Service]\nExecStart=/bin/true\n");
    let control = tree.path().join("nobody-here");
    let mut child = Command::new(common::flint_bin())
        .arg("edit")
        .arg("--stdin")
        .arg("--unit-dir")
        .arg(tree.path())
        .arg("--control")
        .arg(&control)
        .arg("x.service")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"[Service]\nNice=5\n").unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        tree.path().join("x.service.d/override.conf").exists(),
        "the drop-in is written"
    );
    assert_eq!(
        err,
        format!(
            "No flint runs at {}: the change takes effect when flint reads its units (a flint with another control socket: --control PATH).\n",
            control.display()
        )
    );
}

#[test]
fn edit_writes_what_the_editor_leaves_between_the_markers_and_flint_reads_it() {
    if !common::require("script", "a terminal for the editor (util-linux)") {
        return;
    }
    let tree = Tree::new();
    let dir = tree.path().to_path_buf();
    tree.write(
        "a.service",
        "[Unit]\nDescription=one\n\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write("a.service.d/10-env.conf", "[Service]\nEnvironment=X=1\n");
    let control = dir.join("control");
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "a.service"],
    );
    assert_eq!(description(&control, "a.service"), "Description=one");
    let editor = Editor::new(&tree);
    let insert = editor.text("two", "[Unit]\nDescription=two\n");
    let unit_dir = dir.to_str().unwrap();
    let env = [
        ("INSERT", insert.to_str().unwrap()),
        ("FLINT_CONTROL", control.to_str().unwrap()),
    ];
    let (code, shown) = on_terminal(
        &flint_bin(),
        &["edit", "--unit-dir", unit_dir, "a"],
        &editor,
        &env,
    );
    assert_eq!(code, 0, "{shown}");
    let (texts, names) = editor.take();
    let drop_ins = dir.join("a.service.d");
    assert_eq!(names.len(), 1);
    assert_eq!(names[0].parent(), Some(drop_ins.as_path()));
    let temp = names[0].file_name().unwrap().to_str().unwrap();
    assert!(
        temp.starts_with(".#override.conf") && temp.len() == 31,
        "systemctl's temporary name: {temp}"
    );
    assert_eq!(
        texts[0],
        format!(
            "### Editing {d}/a.service.d/override.conf\n{START}\n\n\n\n{END}\n\n\
             ### {d}/a.service\n# [Unit]\n# Description=one\n# \n# [Service]\n# ExecStart=/bin/sleep 1000\n\n\
             ### {d}/a.service.d/10-env.conf\n# [Service]\n# Environment=X=1",
            d = dir.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(drop_ins.join("override.conf")).unwrap(),
        "[Unit]\nDescription=two\n"
    );
    assert_eq!(files(&drop_ins), ["10-env.conf", "override.conf"]);
    // The running flint read its units again, unasked.
    assert_eq!(
        description(&control, "a.service"),
        "Description=two",
        "{}",
        flint.log()
    );

    // Another drop-in: the first one shown below the markers, and no
    // reload.
    let insert = editor.text("three", "[Unit]\nDescription=three\n");
    let env = [
        ("INSERT", insert.to_str().unwrap()),
        ("FLINT_CONTROL", control.to_str().unwrap()),
    ];
    let (code, shown) = on_terminal(
        &flint_bin(),
        &[
            "edit",
            "--unit-dir",
            unit_dir,
            "--drop-in=20-three",
            "--no-reload",
            "a.service",
        ],
        &editor,
        &env,
    );
    assert_eq!(code, 0, "{shown}");
    let (texts, _) = editor.take();
    assert!(
        texts[0].starts_with(&format!(
            "### Editing {}/a.service.d/20-three.conf\n{START}\n\n\n\n{END}",
            dir.display()
        )),
        "{}",
        texts[0]
    );
    assert!(
        texts[0].ends_with(&format!(
            "\n\n### {}/a.service.d/override.conf\n# [Unit]\n# Description=two",
            dir.display()
        )),
        "{}",
        texts[0]
    );
    assert_eq!(
        std::fs::read_to_string(drop_ins.join("20-three.conf")).unwrap(),
        "[Unit]\nDescription=three\n"
    );
    assert_eq!(description(&control, "a.service"), "Description=two");

    // Editing it again starts from what it holds.
    let (code, shown) = on_terminal(
        &flint_bin(),
        &["edit", "--unit-dir", unit_dir, "a"],
        &editor,
        &[],
    );
    assert_eq!(code, 0, "{shown}");
    let (texts, _) = editor.take();
    assert!(
        texts[0].contains(&format!("{START}\n\n[Unit]\nDescription=two\n\n{END}")),
        "{}",
        texts[0]
    );
}

#[test]
fn nothing_changes_without_a_terminal_or_when_the_editor_fails_or_leaves_nothing() {
    if !common::require("script", "a terminal for the editor (util-linux)") {
        return;
    }
    let tree = Tree::new();
    let dir = tree.path().to_path_buf();
    tree.write("a.service", "[Service]\nExecStart=/bin/true\n");
    std::os::unix::fs::symlink("/dev/null", dir.join("m.service")).unwrap();
    let unit_dir = dir.to_str().unwrap();
    let editor = Editor::new(&tree);
    let insert = editor.text("nice", "[Service]\nNice=5\n");
    let drop_ins = dir.join("a.service.d");

    // Not on a terminal.
    let out = Command::new(flint_bin())
        .args(["edit", "--unit-dir", unit_dir, "a"])
        .env("EDITOR", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Cannot edit units if not on a tty.\n"
    );
    assert!(!drop_ins.exists());

    // The editor fails (vim's `:cq`) after changing the file.
    let env = [("INSERT", insert.to_str().unwrap()), ("EDIT_EXIT", "1")];
    let (code, shown) = on_terminal(
        &flint_bin(),
        &["edit", "--unit-dir", unit_dir, "a"],
        &editor,
        &env,
    );
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("nothing was changed"), "{shown}");
    assert_eq!(editor.take().1.len(), 1);
    assert!(!drop_ins.exists(), "{:?}", files(&drop_ins));

    // The editor leaves the markers with nothing between them.
    let (code, shown) = on_terminal(
        &flint_bin(),
        &["edit", "--unit-dir", unit_dir, "a"],
        &editor,
        &[],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains(&format!(
            "Editing \"{}/override.conf\" canceled: temporary file is empty.",
            drop_ins.display()
        )),
        "{shown}"
    );
    editor.take();
    assert!(!drop_ins.exists(), "{:?}", files(&drop_ins));

    // Two units at once, the editor empties the second: the first is
    // written, the second canceled.
    tree.write("b.service", "[Service]\nExecStart=/bin/true\n");
    let env = [("INSERT", insert.to_str().unwrap()), ("EMPTY_N", "2")];
    let (code, shown) = on_terminal(
        &flint_bin(),
        &[
            "edit",
            "--unit-dir",
            unit_dir,
            "a",
            "b.service",
            "a.service",
        ],
        &editor,
        &env,
    );
    assert_eq!(code, 0, "{shown}");
    assert_eq!(editor.take().1.len(), 2, "a named twice is edited once");
    assert_eq!(
        std::fs::read_to_string(drop_ins.join("override.conf")).unwrap(),
        "[Service]\nNice=5\n"
    );
    assert!(
        shown.contains("b.service.d/override.conf\" canceled"),
        "{shown}"
    );
    assert!(!dir.join("b.service.d").exists());
    std::fs::remove_dir_all(&drop_ins).unwrap();
    std::fs::remove_file(dir.join("b.service")).unwrap();

    // A masked unit, and a unit without a file.
    let (code, shown) = on_terminal(
        &flint_bin(),
        &["edit", "--unit-dir", unit_dir, "a", "m"],
        &editor,
        &[],
    );
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("Cannot edit m.service: unit is masked."),
        "{shown}"
    );
    let (code, shown) = on_terminal(
        &flint_bin(),
        &["edit", "--unit-dir", unit_dir, "new"],
        &editor,
        &[],
    );
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("Run 'flint edit --force --full new.service' to create a new unit."),
        "{shown}"
    );
    assert!(editor.take().1.is_empty(), "no editor ran");
    assert_eq!(files(&dir), ["a.service", "editor", "m.service"]);

    // --force --full: a new unit, from an empty file.
    let whole = editor.text("whole", "[Service]\nExecStart=/bin/sh -c 'echo new'\n");
    let env = [("REPLACE", whole.to_str().unwrap())];
    let (code, shown) = on_terminal(
        &flint_bin(),
        &["edit", "--unit-dir", unit_dir, "--force", "--full", "new"],
        &editor,
        &env,
    );
    assert_eq!(code, 0, "{shown}");
    assert_eq!(editor.take().0, ["(no file)\n"], "the editor creates it");
    assert_eq!(
        std::fs::read_to_string(dir.join("new.service")).unwrap(),
        "[Service]\nExecStart=/bin/sh -c 'echo new'\n"
    );
    let out = Command::new(flint_bin())
        .args(["check", "--unit-dir", unit_dir, "new.service"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemctl_edit_full_and_stdin_below_a_root() {
    if !common::require("script", "a terminal for the editor (util-linux)") {
        return;
    }
    let tree = Tree::new();
    let root = tree.path().join("root");
    let vendor = root.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&vendor).unwrap();
    std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    let original = "[Unit]\nDescription=vendor\n\n[Service]\nExecStart=/bin/true\n";
    std::fs::write(vendor.join("x.service"), original).unwrap();
    let editor = Editor::new(&tree);
    let mine = editor.text(
        "mine",
        "[Unit]\nDescription=mine\n\n[Service]\nExecStart=/bin/false\n",
    );
    let env = [("REPLACE", mine.to_str().unwrap())];
    let root_arg = format!("--root={}", root.display());
    let systemctl = common::link_as(&tree, "systemctl");
    // --runtime: below /run, until something in /etc would override it.
    let insert = editor.text("nice", "[Service]\nNice=7\n");
    let runtime_env = [("INSERT", insert.to_str().unwrap())];
    let (code, shown) = on_terminal(
        &systemctl,
        &[&root_arg, "edit", "--runtime", "x"],
        &editor,
        &runtime_env,
    );
    assert_eq!(code, 0, "{shown}");
    let (texts, _) = editor.take();
    assert!(
        texts[0].starts_with(&format!(
            "### Editing {}/run/systemd/system/x.service.d/override.conf\n",
            root.display()
        )),
        "{}",
        texts[0]
    );
    assert_eq!(
        std::fs::read_to_string(root.join("run/systemd/system/x.service.d/override.conf")).unwrap(),
        "[Service]\nNice=7\n"
    );
    let (code, shown) = on_terminal(
        &systemctl,
        &[&root_arg, "edit", "--full", "x"],
        &editor,
        &env,
    );
    assert_eq!(code, 0, "{shown}");
    let (texts, names) = editor.take();
    assert_eq!(texts, [original], "the editor starts from the unit file");
    let copy = root.join("etc/systemd/system/x.service");
    assert_eq!(names[0].parent(), copy.parent());
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        "[Unit]\nDescription=mine\n\n[Service]\nExecStart=/bin/false\n"
    );
    assert_eq!(
        std::fs::read_to_string(vendor.join("x.service")).unwrap(),
        original
    );
    assert_eq!(files(copy.parent().unwrap()), ["x.service"]);
    let (code, shown) = on_terminal(
        &systemctl,
        &[&root_arg, "edit", "--runtime", "--full", "x"],
        &editor,
        &runtime_env,
    );
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains(&format!(
            "Refusing to create \"{}/run/systemd/system/x.service\" because it would be overridden by \"{}\" anyway.",
            root.display(),
            copy.display()
        )),
        "{shown}"
    );
    assert!(editor.take().1.is_empty());

    // --stdin needs no terminal and no editor: scripts and Dockerfiles.
    let mut child = Command::new(&systemctl)
        .args([&root_arg, "edit", "--stdin", "--drop-in=limits", "x"])
        .env("EDITOR", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        b"[Service]\nLimitNOFILE=4096\n",
    )
    .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/systemd/system/x.service.d/limits.conf")).unwrap(),
        "[Service]\nLimitNOFILE=4096\n"
    );
    // The copy is now the unit's file, edited in place: no question asked.
    let again = editor.text("again", "[Unit]\nDescription=again\n");
    let env = [("REPLACE", again.to_str().unwrap())];
    let (code, shown) = on_terminal(
        &systemctl,
        &[&root_arg, "edit", "--full", "x"],
        &editor,
        &env,
    );
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("Overwrite"), "{shown}");
    assert_eq!(
        editor.take().0[0],
        "[Unit]\nDescription=mine\n\n[Service]\nExecStart=/bin/false\n"
    );
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        "[Unit]\nDescription=again\n"
    );
}

/// The same edit under systemd 252's own `systemctl --user edit` (a user
/// manager in a private mount namespace with a fresh `/run`, as the
/// reference's behaviour oracle runs it) and under `flint edit --user`:
/// the editor gets the same files with the same text, and the same drop-ins
/// are written (systemd 252 leaves out their final newline).
#[test]
fn the_editor_gets_what_systemds_systemctl_edit_gives_it() {
    if !common::require_root("a mount namespace with a fresh /run for systemd's user manager")
        || !common::require("script", "a terminal for the editor (util-linux)")
    {
        return;
    }
    let Some(systemd) = common::systemd_manager() else {
        return;
    };
    let tree = Tree::new();
    let home = tree.path().join("home");
    let vendor = home.join(".local/share/systemd/user");
    std::fs::create_dir_all(vendor.join("a.service.d")).unwrap();
    std::fs::write(
        vendor.join("a.service"),
        "[Unit]\nDescription=one\n\n[Service]\nExecStart=/bin/sleep 1000\n",
    )
    .unwrap();
    std::fs::write(
        vendor.join("a.service.d/10-env.conf"),
        "[Service]\nEnvironment=X=1\n",
    )
    .unwrap();
    std::fs::write(
        vendor.join("t@.service"),
        "[Service]\nExecStart=/bin/echo %i\n\n\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("a.service", vendor.join("b.service")).unwrap();
    let config = home.join(".config/systemd/user");
    std::fs::create_dir_all(config.join("t@x.service.d")).unwrap();
    // Only these directories, not the distribution's user units: a
    // manager that starts quickly and realizes no controller.
    let targets = tree.path().join("targets");
    common::copy_user_units(&targets, &common::USER_MANAGER_UNITS);
    let unit_path = format!(
        "{}:{}:{}",
        config.display(),
        vendor.display(),
        targets.display()
    );
    let cgroups_before = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = common::OwnCgroup::new("edit");
    let present = "[Service]\nNice=1";
    let editor = Editor::new(&tree);
    let insert = editor.text("ins", "[Unit]\nDescription=two\n");
    let units = ["b.service", "t@x.service"];
    let run = |script: &str| {
        std::fs::write(config.join("t@x.service.d/override.conf"), present).unwrap();
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script])
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", "/run/user/0")
            .env("SYSTEMD_UNIT_PATH", &unit_path)
            .env(
                "EDITOR",
                format!("sh {}", editor.dir.join("edit.sh").display()),
            )
            .env("RECORD", &editor.record)
            .env("INSERT", &insert)
            .env_remove("SYSTEMD_EDITOR")
            .env_remove("VISUAL")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout).into_owned();
        let (texts, names) = editor.take();
        let written: Vec<String> = ["b.service.d", "a.service.d", "t@x.service.d"]
            .iter()
            .map(|d| {
                let dir = config.join(d);
                let list = files(&dir);
                let texts: Vec<String> = list
                    .iter()
                    .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
                    .collect();
                format!("{d}: {list:?} {texts:?}")
            })
            .collect();
        let _ = std::fs::remove_dir_all(config.join("a.service.d"));
        let _ = std::fs::remove_dir_all(config.join("b.service.d"));
        let names: Vec<PathBuf> = names
            .iter()
            .map(|n| n.parent().unwrap().to_path_buf())
            .collect();
        (shown, texts, names, written)
    };
    let edit_line = |program: &str| {
        format!(
            "script -qec '{program} {}; echo rc=$?' /dev/null",
            units.join(" ")
        )
    };
    let (shown, want_texts, want_dirs, want_written) = run(&format!(
        "set -e\nmount -t tmpfs tmpfs /run\nmkdir -p /run/user/0 /run/systemd/system\nchmod 700 /run/user/0\n\
         {cgroup}{manager}{}\nsystemctl --user exit || kill $!\nwait",
        edit_line("systemctl --user edit"),
        manager = common::start_user_manager(&systemd),
        cgroup = own.shell_lines(),
    ));
    drop(own);
    assert!(shown.contains("rc=0"), "systemd: {shown}");
    assert_eq!(want_texts.len(), 2, "systemd: {shown}");
    assert_eq!(
        std::fs::read_to_string("/proc/self/cgroup").unwrap(),
        cgroups_before,
        "systemd's user manager left the test's cgroups alone"
    );
    let (shown, texts, dirs, written) = run(&format!(
        "set -e\nmount -t tmpfs tmpfs /run\nmkdir -p /run/user/0\n{}",
        edit_line(&format!(
            "{} edit --user --no-reload",
            flint_bin().display()
        ))
    ));
    assert!(shown.contains("rc=0"), "flint: {shown}");
    assert_eq!(texts, want_texts, "what the editor got");
    assert_eq!(dirs, want_dirs, "where the temporary files were");
    // systemd 252 writes no final newline; flint writes one, as systemd
    // does since 253.
    let want_written: Vec<String> = want_written
        .iter()
        .map(|w| {
            w.replace("Description=two\"", "Description=two\\n\"")
                .replace("Nice=1\"", "Nice=1\\n\"")
        })
        .collect();
    assert_eq!(written, want_written, "the drop-ins written");
}
