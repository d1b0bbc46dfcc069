//! `.path` units under `flint run`: `PathExists=`, `PathExistsGlob=`,
//! `DirectoryNotEmpty=`, `PathChanged=`, `PathModified=`, the unit they
//! trigger and what it learns (`TRIGGER_PATH`, `TRIGGER_UNIT`),
//! `MakeDirectory=`, the trigger limit, `paths.target`, `flint ctl`, and
//! broken path units that fail alone.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Flint, Tree, ctl, wait_for};

/// A oneshot service that appends `TRIGGER_UNIT TRIGGER_PATH` to `out`,
/// then runs `then` (to take away what triggered it).
fn recording_service(tree: &Tree, name: &str, out: &Path, then: &str) {
    tree.write(
        name,
        &format!(
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo \"$TRIGGER_UNIT $TRIGGER_PATH\" >> {}; {then}'\n",
            out.display()
        ),
    );
}

fn lines(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_lines(out: &Path, n: usize) -> Vec<String> {
    wait_for(Duration::from_secs(10), || {
        let l = lines(out);
        (l.len() >= n).then_some(l)
    })
    .unwrap_or_else(|| lines(out))
}

fn run_with_control(tree: &Tree, units: &[&str]) -> (Flint, PathBuf) {
    let control = tree.path().join("control");
    let mut args = vec!["--control", control.to_str().unwrap()];
    args.extend_from_slice(units);
    (Flint::run(tree, &args), control)
}

/// `PathExists=` for a path whose directories do not exist yet: every
/// component is watched, the file's creation starts the service (which
/// learns why), and once the service removed it, the next one starts it
/// again. `flint ctl` lists, stops and starts the path unit.
#[test]
fn a_path_that_appears_starts_its_service_each_time() {
    let tree = Tree::new();
    let out = tree.path().join("out");
    let flag = tree.path().join("a/b/c/flag");
    recording_service(
        &tree,
        "drop.service",
        &out,
        &format!("rm -f {}", flag.display()),
    );
    tree.write(
        "drop.path",
        &format!(
            "[Unit]\nDescription=Drop\n[Path]\nPathExists={}\n",
            flag.display()
        ),
    );
    let (flint, control) = run_with_control(&tree, &["drop.path"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(lines(&out).is_empty());
    std::fs::create_dir_all(flag.parent().unwrap()).unwrap();
    std::fs::write(&flag, "x").unwrap();
    let l = wait_lines(&out, 1);
    assert_eq!(
        l,
        [format!("drop.path {}", flag.display())],
        "{}",
        flint.log()
    );
    // Gone again: waiting; the next flag starts it again.
    assert!(wait_for(Duration::from_secs(10), || (!flag.exists()).then_some(())).is_some());
    let (_, status) = ctl(&control, &["status", "drop.path"]);
    assert!(status.contains("drop.path - Drop"), "{status}");
    // As `systemctl list-paths`: PATH CONDITION UNIT ACTIVATES.
    let (code, listing) = ctl(&control, &["list-paths"]);
    assert_eq!(code, 0, "{listing}");
    let row = listing
        .lines()
        .find(|l| l.contains("drop.path"))
        .unwrap_or_else(|| panic!("{listing}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            &*flag.display().to_string(),
            "PathExists",
            "drop.path",
            "drop.service"
        ],
        "{listing}"
    );
    assert!(listing.starts_with("PATH"), "{listing}");
    assert!(listing.contains("1 paths listed."), "{listing}");
    std::fs::write(&flag, "x").unwrap();
    assert_eq!(wait_lines(&out, 2).len(), 2, "{}", flint.log());
    let listed = wait_for(Duration::from_secs(10), || {
        let (_, l) = ctl(&control, &["list-units", "drop.path"]);
        l.contains("waiting").then_some(l)
    });
    assert!(listed.is_some(), "{}", flint.log());

    let (code, text) = ctl(&control, &["stop", "drop.path"]);
    assert_eq!(code, 0, "{text}");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&flag, "x").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        lines(&out).len(),
        2,
        "a stopped path unit started its service"
    );
    // Started again: the flag already there starts the service at once.
    let (code, text) = ctl(&control, &["start", "drop.path"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(wait_lines(&out, 3).len(), 3, "{}", flint.log());
}

/// `PathChanged=` fires when the file is written and closed (not at the
/// start, though it exists), `PathModified=` at a write too;
/// `PathExistsGlob=` when something matches; `DirectoryNotEmpty=` with
/// `MakeDirectory=` makes the directory (with `DirectoryMode=`) and fires
/// for an entry that is not hidden.
#[test]
fn each_kind_of_path_fires_on_its_own_event() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let tree = Tree::new();
    let out = tree.path().join("out");
    let conf = tree.path().join("conf");
    std::fs::write(&conf, "v1").unwrap();
    let inbox = tree.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let spool = tree.path().join("spool/q");
    recording_service(&tree, "changed.service", &out, "true");
    tree.write(
        "changed.path",
        &format!("[Path]\nPathChanged={}\n", conf.display()),
    );
    recording_service(
        &tree,
        "glob.service",
        &out,
        &format!("rm -f {}/*.job", inbox.display()),
    );
    tree.write(
        "glob.path",
        &format!("[Path]\nPathExistsGlob={}/*.job\n", inbox.display()),
    );
    recording_service(
        &tree,
        "spool.service",
        &out,
        &format!("rm -f {}/*", spool.display()),
    );
    tree.write(
        "spool.path",
        &format!(
            "[Path]\nDirectoryNotEmpty={}\nMakeDirectory=yes\nDirectoryMode=0700\n",
            spool.display()
        ),
    );
    let flint = Flint::run(&tree, &["changed.path", "glob.path", "spool.path"]);
    assert_eq!(
        std::fs::metadata(&spool).unwrap().permissions().mode() & 0o777,
        0o700
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(lines(&out).is_empty(), "fired at start: {:?}", lines(&out));

    // A hidden file leaves the spool empty; a real one fires.
    std::fs::write(spool.join(".partial"), "").unwrap();
    std::fs::write(inbox.join("note.txt"), "").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(lines(&out).is_empty(), "{:?}", lines(&out));
    std::fs::write(spool.join("mail"), "").unwrap();
    let l = wait_lines(&out, 1);
    assert_eq!(
        l,
        [format!("spool.path {}", spool.display())],
        "{}",
        flint.log()
    );

    std::fs::write(inbox.join("a.job"), "").unwrap();
    let l = wait_lines(&out, 2);
    assert_eq!(
        l.get(1).map(String::as_str),
        Some(format!("glob.path {}", inbox.join("a.job").display()).as_str()),
        "{}",
        flint.log()
    );

    // Written and closed: PathChanged= fires once.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .unwrap();
    f.write_all(b"v2").unwrap();
    drop(f);
    let l = wait_lines(&out, 3);
    assert_eq!(
        l.get(2).map(String::as_str),
        Some(format!("changed.path {}", conf.display()).as_str()),
        "{}",
        flint.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&out).len(), 3, "{:?}", lines(&out));
}

/// A service that leaves the path in place makes the path unit trigger
/// again and again: past `TriggerLimitBurst=` it fails with
/// `trigger-limit-hit`, while another path unit goes on; a path unit
/// whose service is missing, or that watches nothing, fails alone.
#[test]
fn a_looping_path_unit_hits_its_trigger_limit_and_others_go_on() {
    let tree = Tree::new();
    let (loop_out, ok_out) = (tree.path().join("loop"), tree.path().join("ok"));
    let stays = tree.path().join("stays");
    std::fs::write(&stays, "").unwrap();
    let flag = tree.path().join("flag");
    recording_service(&tree, "loop.service", &loop_out, "true");
    tree.write(
        "loop.path",
        &format!(
            "[Path]\nPathExists={}\nTriggerLimitBurst=5\nTriggerLimitIntervalSec=30s\n",
            stays.display()
        ),
    );
    recording_service(
        &tree,
        "ok.service",
        &ok_out,
        &format!("rm -f {}", flag.display()),
    );
    tree.write(
        "ok.path",
        &format!("[Path]\nPathExists={}\n", flag.display()),
    );
    tree.write(
        "orphan.path",
        &format!(
            "[Path]\nPathExists={}\nUnit=nothere.service\n",
            flag.display()
        ),
    );
    recording_service(&tree, "empty.service", &ok_out, "true");
    tree.write("empty.path", "[Path]\nPathExists=relative/not/allowed\n");
    let (flint, control) = run_with_control(
        &tree,
        &["loop.path", "ok.path", "orphan.path", "empty.path"],
    );
    assert!(
        flint.wait_log("loop.path: Trigger limit hit, refusing further activation."),
        "{}",
        flint.log()
    );
    assert_eq!(lines(&loop_out).len(), 5, "{:?}", lines(&loop_out));
    let (_, status) = ctl(&control, &["status", "loop.path"]);
    assert!(status.contains("Active: failed"), "{status}");
    assert!(status.contains("trigger-limit-hit"), "{status}");
    // Since when, as systemctl says.
    assert!(
        status
            .lines()
            .any(|l| l.contains("Active: failed") && l.contains(" since ")),
        "{status}"
    );
    std::fs::write(&flag, "").unwrap();
    assert_eq!(wait_lines(&ok_out, 1).len(), 1, "{}", flint.log());
    let log = flint.log();
    assert!(
        log.contains("orphan.path: Refusing to start, unit nothere.service to trigger not loaded."),
        "{log}"
    );
    assert!(
        log.contains("empty.path: Path unit lacks path setting."),
        "{log}"
    );
    // reset-failed makes it startable again.
    let (code, text) = ctl(&control, &["reset-failed", "loop.path"]);
    assert_eq!(code, 0, "{text}");
    let (_, status) = ctl(&control, &["status", "loop.path"]);
    assert!(status.contains("Active: inactive"), "{status}");
}

/// With no unit named, `flint run` starts what `paths.target` wants.
#[test]
fn paths_target_wants_are_started_by_default() {
    let tree = Tree::new();
    let out = tree.path().join("out");
    let flag = tree.path().join("flag");
    recording_service(
        &tree,
        "job.service",
        &out,
        &format!("rm -f {}", flag.display()),
    );
    tree.write(
        "job.path",
        &format!("[Path]\nPathExists={}\n", flag.display()),
    );
    std::fs::create_dir_all(tree.path().join("paths.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "../job.path",
        tree.path().join("paths.target.wants/job.path"),
    )
    .unwrap();
    let flint = Flint::run(&tree, &[]);
    std::fs::write(&flag, "").unwrap();
    assert_eq!(wait_lines(&out, 1).len(), 1, "{}", flint.log());
}

/// A switch to a tree where the path unit watches another path restarts
/// it: the new path starts the service, the old one no longer does.
#[test]
fn a_switch_restarts_a_changed_path_unit() {
    let tree = Tree::new();
    let out = tree.path().join("out");
    let (old, new) = (tree.path().join("old"), tree.path().join("new"));
    recording_service(
        &tree,
        "job.service",
        &out,
        &format!("rm -f {} {}", old.display(), new.display()),
    );
    tree.write(
        "job.path",
        &format!("[Path]\nPathExists={}\n", old.display()),
    );
    tree.write("keep.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let (flint, control) = run_with_control(&tree, &["job.path", "keep.service"]);
    tree.write(
        "job.path",
        &format!("[Path]\nPathExists={}\n", new.display()),
    );
    common::switch(&control, tree.path(), false);
    std::fs::write(&old, "").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(lines(&out).is_empty(), "the old path still watched");
    std::fs::write(&new, "").unwrap();
    let l = wait_lines(&out, 1);
    assert_eq!(
        l,
        [format!("job.path {}", new.display())],
        "{}",
        flint.log()
    );
}

/// A service its condition skips leaves the path in place: the path unit
/// does not stay `running` with nothing to wait for, it triggers again
/// until its limit, as under systemd. With two changed paths the service
/// learns the one that changed; a link to nothing does not exist.
#[test]
fn skipped_starts_reach_the_limit_and_the_changed_path_is_named() {
    let tree = Tree::new();
    let (skip_out, out) = (tree.path().join("skip"), tree.path().join("out"));
    let flag = tree.path().join("flag");
    tree.write(
        "skip.service",
        &format!(
            "[Unit]\nConditionPathExists=!{}\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo run >> {}'\n",
            flag.display(),
            skip_out.display()
        ),
    );
    tree.write(
        "skip.path",
        &format!(
            "[Path]\nPathExists={}\nTriggerLimitBurst=3\n",
            flag.display()
        ),
    );
    let (a, b) = (tree.path().join("a.conf"), tree.path().join("b.conf"));
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    recording_service(&tree, "conf.service", &out, "true");
    tree.write(
        "conf.path",
        &format!(
            "[Path]\nPathChanged={}\nPathChanged={}\n",
            a.display(),
            b.display()
        ),
    );
    let link = tree.path().join("link");
    std::os::unix::fs::symlink(tree.path().join("nowhere"), &link).unwrap();
    recording_service(&tree, "link.service", &out, "true");
    tree.write(
        "link.path",
        &format!("[Path]\nPathExists={}\n", link.display()),
    );
    let (flint, control) = run_with_control(&tree, &["skip.path", "conf.path", "link.path"]);
    std::fs::write(&flag, "").unwrap();
    assert!(
        flint.wait_log("skip.path: Trigger limit hit, refusing further activation."),
        "{}",
        flint.log()
    );
    assert!(lines(&skip_out).is_empty());
    let (_, status) = ctl(&control, &["status", "skip.path"]);
    assert!(status.contains("Active: failed"), "{status}");
    std::fs::write(&b, "changed").unwrap();
    let l = wait_lines(&out, 1);
    assert_eq!(l, [format!("conf.path {}", b.display())], "{}", flint.log());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&out).len(), 1, "the dangling link counted as a path");
}
