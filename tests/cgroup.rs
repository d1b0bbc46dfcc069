//! A cgroup v2 per service (`KillMode=control-group` as systemd means it):
//! a process that left the service's session and process group is still
//! found, stopped, and waited for; without cgroups (`--cgroups off`) the
//! same process escapes, which is what the cgroup is for.
//!
//! These tests need a writable cgroup v2 directory for the test process
//! (root on a host with the unified hierarchy, or a delegated subtree); the
//! test finds out the way flint does and says why it skips otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Flint, Tree, ctl, wait_for};

/// This process's cgroup v2 directory, if a child cgroup can be made in it;
/// else why not.
fn writable_cgroup() -> Result<PathBuf, String> {
    let dir = flint::cgroup::own_directory().map_err(|e| e.to_string())?;
    // One name per call: the tests of this file run in parallel threads.
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!("flint-test-probe-{}-{n}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| format!("{}: {e}", probe.display()))?;
    std::fs::remove_dir(&probe).map_err(|e| format!("{}: {e}", probe.display()))?;
    Ok(dir)
}

fn cgroups_or_skip() -> Option<PathBuf> {
    match writable_cgroup() {
        Ok(dir) => Some(dir),
        Err(why) => {
            eprintln!(
                "SKIP: no writable cgroup v2 directory for this test (needs root and the unified hierarchy): {why}"
            );
            None
        }
    }
}

/// flint's own subtree of the cgroup v2 hierarchy.
fn subtree_of(flint: &Flint) -> PathBuf {
    flint::cgroup::own_directory()
        .unwrap()
        .join(flint::cgroup::subtree_name(
            flint.child.id(),
            flint::cgroup::pid_namespace(),
        ))
}

fn alive(pid: i32) -> bool {
    // A zombie is gone for this purpose (its parent has yet to reap it).
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

fn kill(pid: i32) {
    // SAFETY: kill(2) with plain integers.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

fn read_pid(path: &Path) -> i32 {
    wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    })
    .expect("the service wrote the pid")
}

/// A service whose main process starts a second one in a session of its
/// own (`setsid`): outside the service's process group and session.
fn escaping_service(tree: &Tree) -> PathBuf {
    let pidfile = tree.path().join("escaped.pid");
    tree.write(
        "e.service",
        &format!(
            "[Unit]\nDescription=escapes its session\n[Service]\nExecStart=/bin/sh -c 'setsid sleep 1000 & echo $! > {}; exec sleep 1000'\n",
            pidfile.display()
        ),
    );
    pidfile
}

#[test]
fn every_process_of_a_service_is_in_its_cgroup_and_a_stop_reaches_it() {
    let Some(parent) = cgroups_or_skip() else {
        return;
    };
    let tree = Tree::new();
    let control = tree.path().join("control");
    let pidfile = escaping_service(&tree);
    // What a flint killed with SIGKILL left: empty directories named for a
    // pid that runs nothing (above the default pid_max of 4194304).
    let ns = flint::cgroup::pid_namespace();
    let stale = parent.join(flint::cgroup::subtree_name(
        4_194_304 + std::process::id(),
        ns,
    ));
    // The same name from another pid namespace is someone else's: kept.
    let foreign = parent.join(flint::cgroup::subtree_name(
        4_194_304 + std::process::id(),
        ns + 1,
    ));
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::create_dir_all(stale.join("old.service")).unwrap();
    let mut flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "e.service"],
    );
    let stale_removed = !stale.exists();
    let foreign_kept = foreign.exists();
    let _ = std::fs::remove_dir(&foreign);
    let escaped = read_pid(&pidfile);
    let root = parent.join(flint::cgroup::subtree_name(flint.child.id(), ns));
    let unit_cgroup = root.join("e.service");
    let in_cgroup = std::fs::read_to_string(format!("/proc/{escaped}/cgroup")).unwrap();
    let (code, status) = ctl(&control, &["status", "e.service"]);
    assert_eq!(code, 0, "{status}");
    let (_, shown) = ctl(&control, &["show", "-p", "ControlGroup", "e.service"]);
    let procs = std::fs::read_to_string(unit_cgroup.join("cgroup.procs")).unwrap_or_default();
    let outcome = || {
        assert!(
            stale_removed,
            "the empty cgroups of a flint that is gone are removed"
        );
        assert!(
            foreign_kept,
            "a subtree named for another pid namespace is not judged by this one's pids"
        );
        assert!(
            in_cgroup
                .lines()
                .any(|l| l.starts_with("0::") && l.ends_with("/e.service")),
            "the escaped process is in the service's cgroup: {in_cgroup}"
        );
        assert_eq!(procs.lines().count(), 2, "main and escaped: {procs}");
        // As the hierarchy names it (systemctl's "CGroup:" line).
        let named = in_cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or("?");
        assert_eq!(shown.trim(), format!("ControlGroup={named}"));
        assert!(
            status.contains(&format!("CGroup: {named}\n"))
                && status.contains("Tasks: 2")
                && status.contains(&format!("{escaped} sleep 1000")),
            "{status}"
        );
        let (code, text) = ctl(&control, &["stop", "e.service"]);
        assert_eq!(code, 0, "{text}");
        assert!(
            wait_for(Duration::from_secs(10), || (!alive(escaped)).then_some(())).is_some(),
            "the stop reached the process outside the service's session"
        );
        assert!(
            wait_for(Duration::from_secs(10), || (!unit_cgroup.exists())
                .then_some(()))
            .is_some(),
            "the stopped service's cgroup is removed"
        );
    };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(outcome));
    kill(escaped);
    let status = flint.stop().expect("flint exits");
    if let Err(e) = caught {
        std::panic::resume_unwind(e);
    }
    assert!(status.success());
    assert!(
        !root.exists(),
        "flint removes its cgroup subtree when it exits"
    );
}

/// `KillMode=process` leaves the rest of the cgroup running: the next
/// start names what it finds there, as systemd's
/// "Found left-over process ... in control group while starting unit.
/// Ignoring.", and flint's exit names what keeps running after it.
#[test]
fn left_over_processes_in_a_cgroup_are_named_at_the_next_start_and_at_exit() {
    if cgroups_or_skip().is_none() {
        return;
    }
    let tree = Tree::new();
    let pidfile = tree.path().join("left.pid");
    tree.write(
        "shim.service",
        &format!(
            "[Service]\nKillMode=process\nExecStart=/bin/sh -c 'sleep 1000 & echo $! > {}; exec sleep 1001'\n",
            pidfile.display()
        ),
    );
    let control = tree.path().join("control");
    let mut flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "shim.service"],
    );
    let left = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    })
    .expect("the service started its child");
    assert_eq!(ctl(&control, &["stop", "shim.service"]).0, 0);
    assert!(alive(left), "KillMode=process left the child running");
    assert!(
        flint.wait_log(&format!(
            "shim.service: Unit process {left} (sleep) remains running after unit stopped."
        )),
        "{}",
        flint.log()
    );
    // Its cgroup, as the hierarchy names it, still holds the child.
    let named = std::fs::read_to_string(format!("/proc/{left}/cgroup")).unwrap_or_default();
    let named = named
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("?");
    let (_, status) = ctl(&control, &["status", "shim.service"]);
    assert!(status.contains(&format!("CGroup: {named}\n")), "{status}");
    assert_eq!(ctl(&control, &["start", "shim.service"]).0, 0);
    let found = format!(
        "shim.service: Found left-over process {left} (sleep) in control group while starting unit. Ignoring."
    );
    assert!(flint.wait_log(&found), "{}", flint.log());
    assert!(flint.log().contains(
        "shim.service: This usually indicates unclean termination of a previous run, or service implementation deficiencies."
    ));
    let status = flint.stop().expect("flint ends");
    assert!(status.success());
    let log = flint.log();
    let named = format!(
        "shim.service: left-over process {left} (sleep) keeps running after flint (KillMode=process)"
    );
    let still = alive(left);
    kill(left);
    assert!(log.contains(&named), "{log}");
    assert!(still, "KillMode=process: the child is left running");
}

#[test]
fn without_cgroups_the_same_process_escapes() {
    if cgroups_or_skip().is_none() {
        // The comparison only tells something where cgroups would be used.
        return;
    }
    let tree = Tree::new();
    let control = tree.path().join("control");
    let pidfile = escaping_service(&tree);
    let mut flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "--cgroups",
            "off",
            "e.service",
        ],
    );
    let escaped = read_pid(&pidfile);
    let (code, text) = ctl(&control, &["stop", "e.service"]);
    assert_eq!(code, 0, "{text}");
    std::thread::sleep(Duration::from_millis(500));
    let survived = alive(escaped);
    kill(escaped);
    flint.stop().expect("flint exits");
    assert!(
        survived,
        "by session and process group, a process in a session of its own is not found"
    );
}

#[test]
fn a_stop_waits_for_the_cgroup_to_empty_and_escalates_to_sigkill() {
    if cgroups_or_skip().is_none() {
        return;
    }
    let tree = Tree::new();
    let control = tree.path().join("control");
    let pidfile = tree.path().join("stubborn.pid");
    let log = tree.path().join("log");
    // Ignores SIGTERM, in a session of its own; the main process exits
    // soon after starting it, so the stop is about what is left.
    tree.write(
        "stubborn.sh",
        &format!(
            "trap '' TERM\necho $$ > {}\nwhile :; do sleep 0.2; done\n",
            pidfile.display()
        ),
    );
    tree.write(
        "s.service",
        &format!(
            "[Service]\nExecStart=/bin/sh -c 'setsid /bin/sh {script} & sleep 1'\nTimeoutStopSec=2s\nExecStopPost=/bin/sh -c 'if test -d /proc/$(cat {pid}); then echo alive; else echo gone; fi >> {log}'\n",
            script = tree.path().join("stubborn.sh").display(),
            pid = pidfile.display(),
            log = log.display()
        ),
    );
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "s.service"],
    );
    let stubborn = read_pid(&pidfile);
    let waiting = wait_for(Duration::from_secs(10), || {
        let (_, text) = ctl(&control, &["status", "s.service"]);
        text.contains("stop-sigterm").then_some(text)
    });
    let ended = wait_for(Duration::from_secs(15), || {
        std::fs::read_to_string(&log).ok().filter(|l| !l.is_empty())
    });
    let survived = alive(stubborn);
    kill(stubborn);
    let waiting = waiting.expect("after the main process exited, the stop waits for what is left");
    assert!(
        waiting.contains(&format!("{stubborn} /bin/sh ")),
        "the process left behind is listed: {waiting}"
    );
    assert_eq!(
        ended.as_deref(),
        Some("gone\n"),
        "ExecStopPost= runs once the cgroup is empty"
    );
    assert!(!survived);
    assert!(
        flint
            .log()
            .contains("State 'stop-sigterm' timed out. Killing."),
        "{}",
        flint.log()
    );
}

#[test]
fn accept_yes_instances_get_a_cgroup_each_with_cgroups_all_only() {
    if cgroups_or_skip().is_none() {
        return;
    }
    for (mode, contained) in [("all", true), ("services", false)] {
        let tree = Tree::new();
        let port = common::free_port();
        let pidfile = tree.path().join("escaped.pid");
        tree.write(
            "h.socket",
            &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
        );
        // Answers, leaves a process in a session of its own, and exits.
        tree.write(
            "h@.service",
            &format!(
                // The shell waits until the escapee is in a session of
                // its own (field 6 of its stat), so the end of the
                // instance's process group cannot catch it first.
                "[Service]\nStandardInput=socket\nExecStart=/bin/sh -c 'setsid sleep 1000 </dev/null >/dev/null 2>&1 & p=$!; while [ \"$$(cut -d\" \" -f6 /proc/$$p/stat)\" != \"$$p\" ]; do sleep 0.01; done; echo $$p > {}; echo cgroup=$(grep ^0:: /proc/self/cgroup)'\n",
                pidfile.display()
            ),
        );
        let flint = Flint::run(&tree, &["--cgroups", mode, "h.socket"]);
        let reply = common::exchange(port, b"");
        let escaped = read_pid(&pidfile);
        let gone = if contained {
            wait_for(Duration::from_secs(10), || (!alive(escaped)).then_some(())).is_some()
        } else {
            // The instance has ended (the reply came with EOF); whatever
            // stops it has had its chance.
            std::thread::sleep(Duration::from_millis(700));
            !alive(escaped)
        };
        kill(escaped);
        let root = format!(
            "/{}/",
            flint::cgroup::subtree_name(flint.child.id(), flint::cgroup::pid_namespace())
        );
        if contained {
            assert!(
                reply.contains(&format!("{root}h@0-127.0.0.1:{port}-127.0.0.1:")),
                "the instance runs in a cgroup of its own below flint's: {reply}"
            );
            assert!(
                gone,
                "the end of the instance stops what it left in its cgroup"
            );
        } else {
            assert!(!reply.contains(&root), "{reply}");
            assert!(!gone, "followed by session and process group only");
        }
    }
}

#[test]
fn delegate_hands_the_service_cgroup_to_its_user() {
    if cgroups_or_skip().is_none() {
        return;
    }
    if !common::require_root("User=nobody") {
        return;
    }
    let tree = Tree::new();
    // The services write their results here as nobody.
    let out = tree.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    // Below its own cgroup, the service makes one and moves its shell there.
    tree.write(
        "move.py",
        r#"import os, sys
rel = [l.split("::", 1)[1].strip() for l in open("/proc/self/cgroup") if l.startswith("0::")][0]
mounts = [l.split()[4] for l in open("/proc/self/mountinfo") if " - cgroup2 " in l]
d = [m + rel for m in mounts if os.path.isdir(m + rel)][0]
try:
    os.mkdir(d + "/worker")
    with open(d + "/worker/cgroup.procs", "w") as f:
        f.write(str(os.getppid()))
    result = "moved"
except OSError:
    result = "refused"
with open(sys.argv[1], "w") as f:
    f.write(result + "\n")
"#,
    );
    for (name, delegate) in [("with", "Delegate=yes\n"), ("without", "")] {
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Service]\nUser=nobody\n{delegate}ExecStart=/bin/sh -c 'python3 {} {}/{name}; exec sleep 1000'\n",
                tree.path().join("move.py").display(),
                out.display()
            ),
        );
    }
    let flint = Flint::run(&tree, &["with.service", "without.service"]);
    let read = |n: &str| {
        wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(out.join(n))
                .ok()
                .filter(|t| !t.is_empty())
        })
    };
    let (with, without) = (read("with"), read("without"));
    let moved = subtree_of(&flint).join("with.service/worker/cgroup.procs");
    let inside = std::fs::read_to_string(&moved).unwrap_or_default();
    drop(flint);
    assert_eq!(with.as_deref(), Some("moved\n"), "Delegate=yes");
    assert!(
        !inside.trim().is_empty(),
        "the service runs in the cgroup it made"
    );
    assert_eq!(without.as_deref(), Some("refused\n"), "no Delegate=");
}

/// Opens a device node as the probe asks: `r` or `w`, printing `ok` or the
/// error's name.
const OPEN_PROBE: &str = r#"import errno, os, sys
for arg in sys.argv[1:]:
    mode, path = arg.split(":", 1)
    try:
        os.close(os.open(path, os.O_RDONLY if mode == "r" else os.O_WRONLY))
        print(arg, "ok", flush=True)
    except OSError as e:
        print(arg, errno.errorcode.get(e.errno, e.errno), flush=True)
"#;

#[test]
fn device_policy_and_device_allow_limit_the_nodes_a_service_opens() {
    if cgroups_or_skip().is_none()
        || !common::require_root("making device nodes")
        || !common::require("python3", "the probe")
    {
        return;
    }
    let tree = Tree::new();
    // A node of its own with /dev/kmsg's numbers (1:11), which the closed
    // policy does not list, and one with /dev/null's (1:3), which it does.
    let kmsg = tree.path().join("kmsg");
    let null = tree.path().join("null");
    for (p, minor) in [(&kmsg, "11"), (&null, "3")] {
        let ok = std::process::Command::new("mknod")
            .arg(p)
            .args(["c", "1", minor])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mknod {}", p.display());
    }
    if std::fs::File::open(&kmsg).is_err() {
        eprintln!("SKIP: this process may not open a 1:11 node (a container's device filter)");
        return;
    }
    let probe = tree.write("probe.py", OPEN_PROBE);
    let args = format!(
        "r:{k} w:{k} r:{n} w:{n}",
        k = kmsg.display(),
        n = null.display()
    );
    tree.write(
        "open.service",
        &format!(
            "[Service]\nType=oneshot\nExecStart=/usr/bin/python3 {} {args}\n",
            probe.display()
        ),
    );
    tree.write(
        "closed.service",
        &format!(
            "[Service]\nType=oneshot\nDevicePolicy=closed\nExecStart=/usr/bin/python3 {} {args}\n",
            probe.display()
        ),
    );
    tree.write(
        "allowed.service",
        &format!(
            "[Service]\nType=oneshot\nDevicePolicy=closed\nDeviceAllow={} r\nExecStart=/usr/bin/python3 {} {args}\n",
            kmsg.display(),
            probe.display()
        ),
    );
    // Each probe line's last word: `ok` or the error's name.
    let run = |unit: &str| -> Vec<String> {
        let log = common::run_unit_to_end(common::flint_run(tree.path(), &[unit]), unit);
        if log.contains("device access is not restricted") {
            assert!(!common::in_ci(), "{log}");
        }
        common::unit_output(&log, unit)
            .iter()
            .filter_map(|l| l.rsplit(' ').next().map(str::to_string))
            .collect()
    };
    assert_eq!(run("open.service"), ["ok", "ok", "ok", "ok"]);
    let closed = run("closed.service");
    if closed == ["ok", "ok", "ok", "ok"] {
        eprintln!("SKIP: device programs are not attached here (see flint's warning)");
        return;
    }
    // Closed: the pseudo devices only; DeviceAllow= adds the node, for
    // reading alone.
    assert_eq!(closed, ["EPERM", "EPERM", "ok", "ok"]);
    assert_eq!(run("allowed.service"), ["ok", "EPERM", "ok", "ok"]);
}

/// Whether flint can use `controller` here: a cgroup v1 hierarchy of it
/// that this process is in, or the controller enabled for the children of
/// its cgroup v2 directory.
fn controller_available(v2: &Path, controller: &str) -> Result<(), String> {
    let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let v1 = own.lines().any(|l| {
        l.split(':')
            .nth(1)
            .is_some_and(|c| c.split(',').any(|c| c == controller))
    });
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let v1_mounted = mountinfo.lines().any(|l| {
        l.split_once(" - ").is_some_and(|(_, after)| {
            let f: Vec<&str> = after.split_whitespace().collect();
            f.first() == Some(&"cgroup")
                && f.get(2)
                    .is_some_and(|o| o.split(',').any(|o| o == controller))
        })
    });
    let v2_enabled = std::fs::read_to_string(v2.join("cgroup.subtree_control"))
        .is_ok_and(|s| s.split_whitespace().any(|c| c == controller));
    if (v1 && v1_mounted) || v2_enabled {
        Ok(())
    } else {
        Err(format!(
            "no cgroup v1 {controller} hierarchy, and no {controller} controller for the children of this cgroup v2 directory"
        ))
    }
}

/// Skips (outside CI) unless cgroups and every one of `controllers` are
/// there for flint.
fn controllers_or_skip(controllers: &[&str]) -> bool {
    let Some(parent) = cgroups_or_skip() else {
        return false;
    };
    for c in controllers {
        if let Err(why) = controller_available(&parent, c) {
            assert!(!common::in_ci(), "CI has a {c} controller: {why}");
            eprintln!("SKIP: this test needs the {c} controller: {why}");
            return false;
        }
    }
    common::require("python3", "the services of this test are Python scripts")
}

/// Python: `cgfile(name)`, the text of a file of the process's own cgroup
/// in whichever hierarchy (v1 or v2) has it, or "none".
const CGFILE: &str = r#"
import os, sys, time
def cgfile(name):
    controller = name.split(".")[0]
    mounts = [l.rstrip("\n").split(" - ") for l in open("/proc/self/mountinfo")]
    for line in open("/proc/self/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        for before, after in mounts:
            fields, source = before.split(), after.split()
            v1 = source[0] == "cgroup" and controller in controllers.split(",") and controller in source[2].split(",")
            v2 = source[0] == "cgroup2" and controllers == ""
            if not (v1 or v2):
                continue
            root, point = fields[3], fields[4]
            rel = path if root == "/" else path[len(root):]
            f = point + rel + "/" + name
            if os.path.exists(f):
                return open(f).read().strip()
    return "none"
def cgdir(controller):
    """The name of the process's cgroup in the hierarchy of `controller`
    (v1), or else its v2 cgroup's."""
    lines = [l.split(":", 2) for l in open("/proc/self/cgroup").read().splitlines()]
    for _, controllers, path in lines:
        if controller in controllers.split(","):
            return os.path.basename(path)
    return [os.path.basename(p) for _, c, p in lines if c == ""][0]
def report(text):
    open(sys.argv[1] + ".tmp", "w").write(text + "\n")
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
"#;

/// A Python service that forks 8 children (each sleeps 2 s) and writes
/// how many forks succeeded and the `pids.max` of its own pids cgroup.
const FORKER: &str = r#"
ok = 0
for _ in range(8):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    ok += 1
report(f"{ok} {cgfile('pids.max')} {cgdir('pids')}")
"#;

/// Writes its memory limit, then touches 100 MiB, then writes "done" to
/// the second file.
const EATER: &str = r#"
limit = cgfile("memory.max")
if limit == "none":
    limit = cgfile("memory.limit_in_bytes")
report(limit)
blocks = []
for _ in range(100):
    b = bytearray(1 << 20)
    for j in range(0, 1 << 20, 4096):
        b[j] = 1
    blocks.append(b)
open(sys.argv[2], "w").write("done\n")
"#;

/// Spins for a second of wall time; writes the CPU time it got and its
/// cgroup's CPU settings.
const SPINNER: &str = r#"
t0 = time.monotonic()
while time.monotonic() - t0 < 1.0:
    pass
t = os.times()
if cgfile("cpu.max") != "none":
    settings = f"{cgfile('cpu.weight')} {cgfile('cpu.max')}"
else:
    settings = f"{cgfile('cpu.shares')} {cgfile('cpu.cfs_quota_us')} {cgfile('cpu.cfs_period_us')}"
report(f"{t.user + t.system:.3f} {settings}")
"#;

#[test]
fn memory_and_cpu_settings_reach_the_service_cgroup() {
    if !controllers_or_skip(&["memory", "cpu"]) {
        return;
    }
    let tree = Tree::new();
    let eater = tree.write("eater.py", &format!("{CGFILE}{EATER}"));
    let spinner = tree.write("spinner.py", &format!("{CGFILE}{SPINNER}"));
    let out = |n: &str| tree.path().join(n);
    let service = |name: &str, settings: &str, script: &Path, args: &str| {
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Service]\nType=oneshot\n{settings}\nExecStart=/usr/bin/python3 {} {args}\n",
                script.display()
            ),
        );
    };
    // 32 MiB at most: touching 100 MiB ends in the kernel's OOM killer.
    let small = format!("{} {}", out("small").display(), out("small.done").display());
    service("small", "MemoryMax=32M", &eater, &small);
    // The same script without a limit gets its 100 MiB.
    let free = format!("{} {}", out("free").display(), out("free.done").display());
    service("free", "", &eater, &free);
    // MemoryLimit= (the v1 name) is the limit where no v2 setting is given.
    let old = format!("{} {}", out("old").display(), out("old.done").display());
    service("old", "MemoryLimit=48M", &eater, &old);
    // 10% of one CPU, half the default weight.
    service(
        "slow",
        "CPUQuota=10%\nCPUWeight=50",
        &spinner,
        &out("slow").display().to_string(),
    );
    tree.write(
        "held.service",
        "[Service]\nMemoryMax=64M\nExecStart=/bin/sleep 1000\n",
    );
    let control = tree.path().join("control");
    let mut flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "small.service",
            "free.service",
            "old.service",
            "slow.service",
            "held.service",
        ],
    );
    let read = |name: &str| {
        wait_for(Duration::from_secs(20), || {
            std::fs::read_to_string(out(name)).ok()
        })
        .unwrap_or_else(|| panic!("{name} was written; log:\n{}", flint.log()))
        .trim()
        .to_string()
    };
    let small_limit = read("small");
    let old_limit = read("old");
    let slow = read("slow");
    let free_done = wait_for(Duration::from_secs(20), || {
        out("free.done").exists().then_some(())
    });
    let small_failed = wait_for(Duration::from_secs(20), || {
        flint
            .log()
            .contains("small.service: failed (killed by signal 9)")
            .then_some(())
    });
    // `flint ctl status` shows memory in use against the limit, and CPU
    // time, as systemctl ("Memory: 180.0K (max: 64.0M)", "CPU: 2ms").
    let status = wait_for(Duration::from_secs(10), || {
        let (_, text) = ctl(&control, &["status", "held.service"]);
        text.contains("(max: 64.0M)").then_some(text)
    });
    let log = flint.log();
    flint.stop();
    let status = status.expect("status shows the memory limit of held.service");
    assert!(
        status
            .lines()
            .any(|l| l.trim_start().starts_with("Memory: ") && l.ends_with("(max: 64.0M)"))
            && status.lines().any(|l| l.trim_start().starts_with("CPU: ")),
        "{status}"
    );
    assert_eq!(small_limit, (32u64 << 20).to_string(), "MemoryMax=32M");
    assert_eq!(old_limit, (48u64 << 20).to_string(), "MemoryLimit=48M");
    assert!(
        small_failed.is_some(),
        "the OOM killer ended small.service:\n{log}"
    );
    assert!(
        !out("small.done").exists(),
        "small.service never got its 100 MiB"
    );
    assert!(
        free_done.is_some(),
        "without a limit the script gets its 100 MiB:\n{log}"
    );
    let mut fields = slow.split_whitespace();
    let cpu: f64 = fields.next().unwrap().parse().unwrap();
    let settings: Vec<&str> = fields.collect();
    assert!(
        // v2: cpu.weight, cpu.max; v1: cpu.shares (50 * 1024 / 100), the quota, the period.
        settings == ["50", "10000", "100000"] || settings == ["512", "10000", "100000"],
        "CPUWeight=50 and CPUQuota=10% in the cgroup: {settings:?}"
    );
    // 10% of a second of spinning: about 0.1 s of CPU time.
    assert!(
        cpu < 0.3,
        "CPUQuota=10% held the spinner to {cpu} s of CPU in 1 s"
    );
}

#[test]
fn tasks_max_limits_the_processes_of_a_service() {
    if !controllers_or_skip(&["pids"]) {
        return;
    }
    let tree = Tree::new();
    let script = tree.write("forker.py", &format!("{CGFILE}{FORKER}"));
    let unit = |name: &str, setting: &str| {
        let out = tree.path().join(format!("{name}.out"));
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Service]\nType=oneshot\n{setting}\nExecStart=/usr/bin/python3 {} {}\n",
                script.display(),
                out.display()
            ),
        );
        out
    };
    // The limit counts the Python process itself: 3 of its 8 forks succeed.
    let four = unit("four", "TasksMax=4");
    // A drop-in's empty assignment resets to the default, as in systemd.
    let reset = unit("reset", "TasksMax=2\nTasksMax=");
    let default = unit("default", "");
    let infinity = unit("infinity", "TasksMax=infinity");
    let share = unit("share", "TasksMax=1%");
    tree.write(
        "held.service",
        // Three tasks: the main thread and two more.
        "[Service]\nTasksMax=7\nExecStart=/usr/bin/python3 -c \"import threading, time; [threading.Thread(target=time.sleep, args=(1000,), daemon=True).start() for _ in range(2)]; time.sleep(1000)\"\n",
    );
    let control = tree.path().join("control");
    let mut flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "held.service",
            "four.service",
            "reset.service",
            "default.service",
            "infinity.service",
            "share.service",
        ],
    );
    let read = |out: &Path| {
        wait_for(Duration::from_secs(20), || {
            std::fs::read_to_string(out).ok()
        })
        .unwrap_or_else(|| panic!("{} was written; log:\n{}", out.display(), flint.log()))
    };
    let results: Vec<String> = [&four, &reset, &default, &infinity, &share]
        .iter()
        .map(|o| read(o).trim().to_string())
        .collect();
    // `flint ctl status` shows the limit beside the count, as systemctl,
    // and counts threads as tasks as the pids controller does.
    let status = wait_for(Duration::from_secs(10), || {
        let (_, text) = ctl(&control, &["status", "held.service"]);
        text.contains("Tasks: 3 (limit: 7)").then_some(text)
    });
    flint.stop();
    assert!(status.is_some(), "status shows Tasks: 3 (limit: 7)");
    // systemd's DefaultTasksMax=15% and TasksMax=1% of the system's maximum:
    // the smallest of threads-max, pid_max - 1 and a limit at the top of the
    // cgroup hierarchy (a container's); flint's own reading of the latter.
    let sysctl = |f: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/sys/kernel/{f}"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let system = sysctl("threads-max")
        .min(sysctl("pid_max") - 1)
        .min(4_194_303)
        .min(flint::cgroup::top_limit("pids", "pids.max", "pids.max").unwrap_or(u64::MAX));
    let default = system * 15 / 100;
    assert_eq!(results[0], "3 4 four.service", "TasksMax=4");
    assert_eq!(results[3], "8 max infinity.service", "TasksMax=infinity");
    assert_eq!(
        results[4],
        format!("8 {} share.service", system / 100),
        "TasksMax=1%"
    );
    // DefaultTasksMax=15%, where pids is a v2 controller; on v1 (joining
    // costs a grace period per start) a service without TasksMax= stays
    // out of flint's pids cgroups.
    let v1 = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .any(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "pids"))
        });
    for (result, name) in [(&results[1], "reset"), (&results[2], "default")] {
        if v1 {
            assert!(
                result.starts_with("8 ") && !result.ends_with(&format!(" {name}.service")),
                "{name}: {result}"
            );
        } else {
            assert_eq!(*result, format!("8 {default} {name}.service"), "{name}");
        }
    }
}

/// `Slice=`: the service's cgroup is nested in its slice's and in the
/// slices the slice's name implies (`par-lim.slice` in `par.slice`), as
/// systemd nests them, and the slice unit's `TasksMax=` holds for all the
/// processes in it: 3 of 8 forks succeed in a slice of 4 tasks, though the
/// service itself sets no limit. The slices go when their last service does.
#[test]
fn a_slice_nests_its_services_and_its_limit_holds_for_them() {
    if !controllers_or_skip(&["pids"]) {
        return;
    }
    let tree = Tree::new();
    let script = tree.write("forker.py", &format!("{CGFILE}{FORKER}"));
    tree.write(
        "par-lim.slice",
        "[Unit]\nDescription=four tasks\n[Slice]\nTasksMax=4\n",
    );
    let out = tree.path().join("in-slice.out");
    let cgroup_file = tree.path().join("in-slice.cgroup");
    tree.write(
        "in-slice.service",
        &format!(
            "[Service]\nType=oneshot\nSlice=par-lim.slice\n\
             ExecStart=/bin/sh -c 'cat /proc/self/cgroup > {}'\n\
             ExecStart=/usr/bin/python3 {} {}\n",
            cgroup_file.display(),
            script.display(),
            out.display()
        ),
    );
    let mut flint = Flint::run(&tree, &["in-slice.service"]);
    let result = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&out).ok()
    })
    .unwrap_or_else(|| panic!("the service reported; log:\n{}", flint.log()));
    let cgroups = std::fs::read_to_string(&cgroup_file).unwrap();
    // Every hierarchy flint placed it in has the slices above it.
    for line in cgroups.lines().filter(|l| l.contains("in-slice.service")) {
        assert!(
            line.ends_with("/par.slice/par-lim.slice/in-slice.service"),
            "{line}\n{cgroups}"
        );
    }
    assert!(
        cgroups
            .lines()
            .any(|l| l.starts_with("0::") && l.contains("par-lim.slice")),
        "{cgroups}"
    );
    assert!(result.starts_with("3 "), "the slice's TasksMax=4: {result}");
    // Once the service is gone, so is its slice.
    let subtree = subtree_of(&flint);
    assert!(subtree.is_dir(), "{}", subtree.display());
    let gone = wait_for(Duration::from_secs(10), || {
        (!subtree.join("par.slice").exists()).then_some(())
    });
    let log = flint.log();
    flint.stop();
    assert!(
        gone.is_some(),
        "par.slice is left in {}:\n{log}",
        subtree.display()
    );
}

/// A unit named like a kernel file of cgroupfs (`cpu.…`, `io.…`, or
/// starting with `_`) gets systemd's escaped directory: `_` in front.
#[test]
fn cgroup_names_are_escaped_as_systemd_escapes_them() {
    if cgroups_or_skip().is_none() {
        return;
    }
    let tree = Tree::new();
    let out = tree.path().join("cgroup.out");
    tree.write("io.slice", "[Slice]\n");
    tree.write(
        "cpu.service",
        &format!(
            "[Service]\nType=oneshot\nSlice=io.slice\n\
             ExecStart=/bin/sh -c 'grep ^0:: /proc/self/cgroup > {}.part; mv {0}.part {0}'\n",
            out.display()
        ),
    );
    let flint = Flint::run(&tree, &["cpu.service"]);
    let line = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&out).ok()
    })
    .unwrap_or_else(|| panic!("cpu.service did not report; log:\n{}", flint.log()));
    assert!(
        line.trim_end().ends_with("/_io.slice/_cpu.service"),
        "{line}"
    );
}

#[test]
fn slice_names_nest_as_systemd_nests_them() {
    use flint::cgroup::slice_chain;
    assert_eq!(slice_chain("-.slice"), Some(vec![]));
    assert_eq!(
        slice_chain("system-getty.slice"),
        Some(vec![
            "system.slice".to_string(),
            "system-getty.slice".to_string()
        ])
    );
    assert_eq!(
        slice_chain("a-b-c.slice").unwrap(),
        ["a.slice", "a-b.slice", "a-b-c.slice"]
    );
    for bad in [
        "a.service",
        "-a.slice",
        "a-.slice",
        "a--b.slice",
        ".slice",
        "a/b.slice",
    ] {
        assert_eq!(slice_chain(bad), None, "{bad}");
    }
}

/// The cgroup of a socket-activated service is made while flint waits for
/// its first connection (and again after each run), so the connection that
/// starts it does not wait for the kernel to make one; the service then
/// runs in it.
#[test]
fn a_socket_activated_service_has_its_cgroup_before_its_first_connection() {
    if cgroups_or_skip().is_none() || !common::require("python3", "the service") {
        return;
    }
    let tree = Tree::new();
    let path = tree.path().join("ahead.sock");
    tree.write(
        "ahead.socket",
        &format!("[Socket]\nListenStream={}\n", path.display()),
    );
    tree.write(
        "ahead.service",
        "[Service]\nExecStart=/usr/bin/python3 -c \"import socket; s = socket.socket(fileno=3); \
         c, _ = s.accept(); c.sendall(open('/proc/self/cgroup').read().encode())\"\n",
    );
    let flint = Flint::run(&tree, &["ahead.socket"]);
    let subtree = subtree_of(&flint);
    let dir = subtree.join("ahead.service");
    assert!(
        dir.is_dir(),
        "{} before the first connection:\n{}",
        dir.display(),
        flint.log()
    );
    let first = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&dir).unwrap());
    // Connects; whether the service that answers runs in its own cgroup,
    // and what it said.
    let in_its_cgroup = || {
        let mut conn = std::os::unix::net::UnixStream::connect(&path).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut conn, &mut text).unwrap();
        let ok = text
            .lines()
            .any(|l| l.starts_with("0::") && l.ends_with("/ahead.service"));
        (ok, text)
    };
    let (ok, text) = in_its_cgroup();
    assert!(ok, "{text}");
    let ended = wait_for(Duration::from_secs(10), || {
        flint
            .log()
            .contains("ahead.service: Deactivated")
            .then_some(())
    });
    assert!(ended.is_some(), "{}", flint.log());
    // Made again for the next connection (a new directory, not the one
    // the run had).
    let again = wait_for(Duration::from_secs(10), || {
        std::fs::metadata(&dir)
            .is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) != first)
            .then_some(())
    });
    assert!(
        again.is_some(),
        "{} after the run:\n{}",
        dir.display(),
        flint.log()
    );
    // Removed from outside while empty (anyone allowed to may): the next
    // start makes it again and runs the service in it.
    std::fs::remove_dir(&dir).unwrap();
    let (ok, text) = in_its_cgroup();
    assert!(ok, "after the cgroup was removed: {text}\n{}", flint.log());
    assert!(
        !flint.log().contains("ahead.service: Failed"),
        "the start after the cgroup was removed failed first:\n{}",
        flint.log()
    );
}

/// `Tasks:` in status counts threads, as systemd's `TasksCurrent` does:
/// `pids.current` where the pids controller is on for the service, else
/// the threads its cgroup lists (a process of four threads is four
/// tasks; it said 1).
#[test]
fn status_counts_the_threads_of_a_service_as_tasks() {
    if cgroups_or_skip().is_none() || !common::require("python3", "a threaded service") {
        return;
    }
    let tree = Tree::new();
    tree.write(
        "threads.py",
        "import threading, time\n\
         for _ in range(3):\n    threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()\n\
         open(__file__ + '.up', 'w').close()\n\
         time.sleep(1000)\n",
    );
    let script = tree.path().join("threads.py");
    tree.write(
        "t.service",
        &format!(
            "[Service]\nExecStart=/usr/bin/python3 {}\n",
            script.display()
        ),
    );
    let (_flint, control) = common::run_with_control(&tree);
    assert_eq!(ctl(&control, &["start", "t.service"]).0, 0);
    let up = tree.path().join("threads.py.up");
    assert!(
        wait_for(Duration::from_secs(10), || up.exists().then_some(())).is_some(),
        "the threads started"
    );
    let (_, status) = ctl(&control, &["status", "t.service"]);
    assert!(status.contains("      Tasks: 4"), "{status}");
}

#[test]
fn libsystemd_names_the_unit_of_a_service_process() {
    // sd_pid_get_unit() takes the first component of a process's cgroup
    // that is not a slice, below PID 1's cgroup: the service's, where
    // flint's own cgroup is that of PID 1 (flint as a container's manager,
    // or a machine's cgroup root).
    let Some(parent) = cgroups_or_skip() else {
        return;
    };
    let pid1 = std::fs::read_to_string("/proc/1/cgroup").unwrap_or_default();
    let pid1 = pid1
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("?");
    let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mine = mine
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("!");
    if pid1 != mine {
        eprintln!(
            "SKIP: this test's cgroup ({mine}) is not PID 1's ({pid1}): libsystemd names the unit of that cgroup ({})",
            parent.display()
        );
        return;
    }
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("SKIP: python3 (which calls libsystemd here) is not installed");
        return;
    }
    let tree = Tree::new();
    let script = tree.write(
        "unit.py",
        "import ctypes, sys\n\
         lib = ctypes.CDLL('libsystemd.so.0')\n\
         p = ctypes.c_char_p()\n\
         r = lib.sd_pid_get_unit(0, ctypes.byref(p))\n\
         text = p.value.decode() if r >= 0 else 'error %d' % r\n\
         open(sys.argv[1] + '.part', 'w').write(text)\n\
         import os; os.rename(sys.argv[1] + '.part', sys.argv[1])\n",
    );
    tree.write("app-web.slice", "[Slice]\n");
    let mut outs = Vec::new();
    for (unit, slice) in [
        ("who.service", ""),
        ("web.service", "Slice=app-web.slice\n"),
    ] {
        let out = tree.path().join(format!("{unit}.out"));
        tree.write(
            unit,
            &format!(
                "[Service]\nType=oneshot\n{slice}ExecStart=/usr/bin/python3 {} {}\n",
                script.display(),
                out.display()
            ),
        );
        outs.push((unit, out));
    }
    let flint = Flint::run(&tree, &["who.service", "web.service"]);
    for (unit, out) in outs {
        let text = wait_for(Duration::from_secs(20), || {
            std::fs::read_to_string(&out).ok()
        })
        .unwrap_or_else(|| panic!("{unit} did not report; log:\n{}", flint.log()));
        assert_eq!(text, unit, "sd_pid_get_unit() in {unit}");
    }
}

#[test]
fn the_unit_of_a_process_is_found_through_an_escaped_cgroup_name() {
    // `cpu.service`'s cgroup is `_cpu.service` (the name of a controller's
    // files); a process of it that is not its main one is still its.
    if cgroups_or_skip().is_none() {
        return;
    }
    let tree = Tree::new();
    let pidfile = tree.path().join("child.pid");
    tree.write(
        "cpu.service",
        &format!(
            "[Service]\nExecStart=/bin/sh -c 'sleep 1000 & echo $! > {}; exec sleep 1001'\n",
            pidfile.display()
        ),
    );
    let control = tree.path().join("control");
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "cpu.service"],
    );
    let child = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    })
    .expect("the service started its child");
    let answer = flint::control::call(
        &control,
        &serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": "unit-of-pid", "pid": child}),
    )
    .expect("flint answers");
    kill(child);
    assert_eq!(answer["unit"], "cpu.service", "{answer}\n{}", flint.log());
}
