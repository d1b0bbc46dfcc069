//! The service lifecycle under `flint run`: readiness by `Type=`, the
//! sd_notify protocol, the order of `ExecCondition=`/`ExecStartPre=`/
//! `ExecStartPost=`/`ExecStop=`/`ExecStopPost=`, timeouts and the kill
//! procedure, each observed through files the commands write.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Flint, Tree, wait_for};

/// A Python program that sends `READY=1` (and a status) on `NOTIFY_SOCKET`
/// after writing `ready` into the file in its first argument.
const NOTIFY_DAEMON: &str = r#"
import os, socket, sys, time
log = open(sys.argv[1], "a")
def note(s):
    log.write(s + "\n"); log.flush()
time.sleep(0.3)
note("ready pid=%d notify=%s" % (os.getpid(), "NOTIFY_SOCKET" in os.environ))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=serving requests", os.environ["NOTIFY_SOCKET"])
time.sleep(1000)
"#;

/// A Python program that sends `READY=1`, then `STOPPING=1` 0.2 s later,
/// and exits.
const STOPPING_DAEMON: &str = "import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])
time.sleep(0.2)
s.sendto(b'STOPPING=1', os.environ['NOTIFY_SOCKET'])
";

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn notify_readiness_gates_exec_start_post_and_status_is_seen() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    tree.write("d.py", NOTIFY_DAEMON);
    tree.write(
        "d.service",
        &format!(
            "[Service]\nType=notify\nExecStartPre=/bin/sh -c 'echo pre >> {log}'\nExecStart=/usr/bin/python3 {py} {log}\nExecStartPost=/bin/sh -c 'echo post MAINPID=$MAINPID >> {log}'\nExecStop=/bin/sh -c 'echo stop MAINPID=$MAINPID >> {log}'\nExecStopPost=/bin/sh -c 'echo stoppost $SERVICE_RESULT $EXIT_CODE $EXIT_STATUS >> {log}'\n",
            log = log.display(),
            py = tree.path().join("d.py").display()
        ),
    );
    let mut flint = Flint::run(&tree, &["d.service"]);
    let seen = wait_for(Duration::from_secs(20), || {
        let l = lines(&log);
        (l.len() >= 3).then_some(l)
    })
    .expect("the start sequence ran");
    assert_eq!(seen[0], "pre");
    assert!(
        seen[1].starts_with("ready pid=") && seen[1].ends_with("notify=True"),
        "{seen:?}"
    );
    let pid = seen[1]
        .trim_start_matches("ready pid=")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        seen[2],
        format!("post MAINPID={pid}"),
        "ExecStartPost= runs after READY=1 and knows the main pid"
    );
    wait_for(Duration::from_secs(10), || {
        flint
            .log()
            .contains("status: serving requests")
            .then_some(())
    })
    .expect("STATUS= reaches flint");
    let status = flint.stop().expect("flint exits");
    assert!(status.success());
    let l = lines(&log);
    assert_eq!(l[3], format!("stop MAINPID={pid}"), "{l:?}");
    assert_eq!(l[4], "stoppost success killed TERM", "{l:?}");
}

#[test]
fn a_notify_service_that_never_gets_ready_is_stopped_at_its_start_timeout() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    tree.write(
        "slow.service",
        &format!("[Service]\nType=notify\nExecStart=/bin/sleep 1000\nTimeoutStartSec=1s\nExecStopPost=/bin/sh -c 'echo $SERVICE_RESULT >> {}'\n", log.display()),
    );
    let flint = Flint::run(&tree, &["slow.service"]);
    let l = wait_for(Duration::from_secs(20), || {
        Some(lines(&log)).filter(|l| !l.is_empty())
    })
    .expect("ExecStopPost= ran");
    assert_eq!(l, ["timeout"]);
    assert!(flint.wait_log("start operation timed out"));
}

#[test]
fn exec_condition_skips_without_failing_and_oneshot_runs_in_order() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    let skipped = tree.path().join("skipped");
    tree.write(
        "skip.service",
        &format!(
            "[Service]\nExecCondition=/bin/sh -c 'exit 1'\nExecStart=/bin/sh -c 'echo skipped-main-ran >> {l}'\n\
             ExecStopPost=/bin/sh -c 'echo post-$SERVICE_RESULT >> {}'\n",
            skipped.display()
        ),
    );
    tree.write(
        "once.service",
        &format!("[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo one >> {l}'\nExecStart=/bin/sh -c 'echo two >> {l}'\nExecStartPost=/bin/sh -c 'echo post >> {l}'\n"),
    );
    let control = tree.path().join("control");
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().expect("utf-8 path"),
            "skip.service",
            "once.service",
        ],
    );
    let got = wait_for(Duration::from_secs(20), || {
        Some(lines(&log)).filter(|l| l.len() >= 3)
    })
    .expect("oneshot ran");
    assert_eq!(got, ["one", "two", "post"]);
    assert!(
        flint.log().contains("ExecCondition= is false, skipping"),
        "{}",
        flint.log()
    );
    // As systemd: the result is `exec-condition`, and the unit inactive,
    // not failed.
    let post = wait_for(Duration::from_secs(10), || {
        Some(lines(&skipped)).filter(|l| !l.is_empty())
    });
    assert_eq!(
        post,
        Some(vec!["post-exec-condition".to_string()]),
        "{}",
        flint.log()
    );
    let settled = wait_for(Duration::from_secs(10), || {
        let (_, out) = common::ctl(
            &control,
            &["show", "-p", "ActiveState,Result", "skip.service"],
        );
        (out == "Result=exec-condition\nActiveState=inactive\n").then_some(())
    });
    assert!(settled.is_some(), "{}", flint.log());
}

#[test]
fn kill_mode_control_group_stops_grandchildren_and_process_leaves_them() {
    for (mode, survives) in [("control-group", false), ("process", true)] {
        let tree = Tree::new();
        let pidfile = tree.path().join("grandchild.pid");
        tree.write(
            "g.service",
            &format!("[Service]\nKillMode={mode}\nExecStart=/bin/sh -c 'sleep 1000 & echo $! > {}; wait'\n", pidfile.display()),
        );
        let mut flint = Flint::run(&tree, &["g.service"]);
        let pid: i32 = wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
        })
        .expect("grandchild started");
        flint.stop().expect("flint exits");
        let alive = wait_for(Duration::from_secs(5), || {
            (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
        })
        .is_none();
        // Clean up whatever survived on purpose.
        // SAFETY: kill(2) with plain integers.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        assert_eq!(alive, survives, "KillMode={mode}");
    }
}

#[test]
fn restart_on_failure_backs_off_and_the_start_limit_stops_it() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    tree.write(
        "crash.service",
        &format!("[Unit]\nStartLimitIntervalSec=30s\nStartLimitBurst=3\n[Service]\nExecStart=/bin/sh -c 'echo run >> {}; exit 3'\nRestart=on-failure\nRestartSec=100ms\n", log.display()),
    );
    let flint = Flint::run(&tree, &["crash.service"]);
    wait_for(Duration::from_secs(20), || {
        flint
            .log()
            .contains("Start request repeated too quickly")
            .then_some(())
    })
    .expect("start limit hit");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&log).len(), 3, "exactly StartLimitBurst= starts");
}

#[test]
fn forking_daemon_is_followed_through_its_pid_file_and_stopped() {
    let tree = Tree::new();
    let pidfile = tree.path().join("d.pid");
    // The parent exits at once; the daemon (a new session) writes its pid.
    tree.write(
        "f.service",
        &format!(
            "[Service]\nType=forking\nPIDFile={p}\nExecStart=/usr/bin/python3 -c 'import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    open(\"{p}\", \"w\").write(str(os.getpid()))\\n    time.sleep(1000)\\nelse:\\n    time.sleep(0.2)'\nExecStartPost=/bin/sh -c 'echo main=$MAINPID > {p}.post'\n",
            p = pidfile.display()
        ),
    );
    let mut flint = Flint::run(&tree, &["f.service"]);
    let post = tree.path().join("d.pid.post");
    let line = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&post).ok()
    })
    .expect("ExecStartPost= ran after the parent exited");
    let daemon: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        line.trim(),
        format!("main={daemon}"),
        "the main pid comes from PIDFile="
    );
    flint.stop().expect("flint exits");
    let gone = wait_for(Duration::from_secs(5), || {
        (!std::path::Path::new(&format!("/proc/{daemon}")).exists()).then_some(())
    });
    // SAFETY: kill(2) with plain integers, cleaning up on failure.
    unsafe {
        libc::kill(daemon, libc::SIGKILL);
    }
    assert!(
        gone.is_some(),
        "the daemon in its own session was stopped through its main pid"
    );
    // Out of date once the service is down: removed, as systemd does.
    assert!(!pidfile.exists(), "the PID file is left behind");
}

/// A start that a condition skips leaves the PID file alone: the service
/// never ran, and the condition may name that very file ("not while a
/// daemon runs").
#[test]
fn a_start_skipped_by_a_condition_keeps_the_pid_file() {
    let tree = Tree::new();
    let pidfile = tree.path().join("other.pid");
    std::fs::write(&pidfile, "1\n").unwrap();
    tree.write(
        "f.service",
        &format!(
            "[Unit]\nConditionPathExists=!{p}\n[Service]\nType=forking\nPIDFile={p}\nExecStart=/bin/true\n",
            p = pidfile.display()
        ),
    );
    let flint = Flint::run(&tree, &["f.service"]);
    assert!(
        flint.wait_log("f.service: condition check resulted in it being skipped"),
        "{}",
        flint.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(pidfile.exists(), "{}", flint.log());
}

/// A `PIDFile=` may not name any process at all, as systemd's
/// `service_load_pid_file()` decides: flint itself is refused ("is the
/// manager"), and a process outside the service named in a file its
/// `User=` wrote ("not owned by root") too; the start then waits for the
/// file until `TimeoutStartSec=`. Before, the stop of such a service
/// signalled the named process: flint stopped itself, or killed a
/// process of root's.
#[test]
fn a_pid_file_cannot_name_flint_or_a_process_outside_the_service() {
    if !common::require_root("a service running as nobody writing its PID file") {
        return;
    }
    let tree = Tree::new();
    let mut victim = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let victim_pid = victim.id();
    tree.write(
        "me.service",
        "[Service]\nType=forking\nRuntimeDirectory=flint-pid-me\nPIDFile=/run/flint-pid-me/p.pid\nTimeoutStartSec=2s\nExecStart=/bin/sh -c 'echo $PPID > /run/flint-pid-me/p.pid; (sleep 30 &); exit 0'\n",
    );
    tree.write(
        "other.service",
        &format!("[Service]\nType=forking\nUser=nobody\nRuntimeDirectory=flint-pid-other\nPIDFile=/run/flint-pid-other/p.pid\nTimeoutStartSec=2s\nExecStart=/bin/sh -c 'echo {victim_pid} > /run/flint-pid-other/p.pid; (sleep 30 &); exit 0'\n"),
    );
    // A link of its own to a root-owned file naming that process.
    let named = tree.write("victim.pid", &format!("{victim_pid}\n"));
    tree.write(
        "link.service",
        &format!("[Service]\nType=forking\nUser=nobody\nRuntimeDirectory=flint-pid-link\nPIDFile=/run/flint-pid-link/p.pid\nTimeoutStartSec=2s\nExecStart=/bin/sh -c 'ln -s {} /run/flint-pid-link/p.pid; (sleep 30 &); exit 0'\n", named.display()),
    );
    tree.write("keep.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let mut flint = Flint::run(
        &tree,
        &[
            "keep.service",
            "me.service",
            "other.service",
            "link.service",
        ],
    );
    let me = flint.child.id();
    assert!(
        flint.wait_log(&format!(
            "me.service: New main PID {me} is the manager, refusing."
        )),
        "{}",
        flint.log()
    );
    assert!(
        flint.wait_log(&format!(
            "other.service: New main PID {victim_pid} does not belong to service, and PID file is not owned by root. Refusing."
        )),
        "{}",
        flint.log()
    );
    // Both starts time out and stop their processes; flint and the
    // process outside go on.
    assert!(
        flint.wait_log("other.service: Failed with result 'timeout'"),
        "{}",
        flint.log()
    );
    assert!(
        flint.wait_log("me.service: Failed with result 'timeout'"),
        "{}",
        flint.log()
    );
    assert!(
        flint.wait_log("link.service: Failed with result 'timeout'"),
        "{}",
        flint.log()
    );
    assert!(
        !flint.log().contains(&format!("main pid is {victim_pid}")),
        "{}",
        flint.log()
    );
    // Each refusal is said once, not at every look for the file.
    assert_eq!(
        flint.log().matches("is the manager, refusing").count(),
        1,
        "{}",
        flint.log()
    );
    let alive = victim.try_wait().unwrap().is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(alive, "the process outside the service was left alone");
    assert!(flint.child.try_wait().unwrap().is_none(), "flint runs");
    let status = flint.stop().expect("flint ends");
    assert!(status.success());
}

/// `MAINPID=` naming flint, even from root, is refused as systemd
/// refuses the manager's own pid: a stop of the service then signals its
/// real main process, not flint.
#[test]
fn mainpid_naming_flint_is_refused() {
    let tree = Tree::new();
    let script = tree.write(
        "mainpid.py",
        "import os, socket, time\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         a = os.environ['NOTIFY_SOCKET']\n\
         a = '\\0' + a[1:] if a[0] == '@' else a\n\
         s.sendto(b'READY=1\\nMAINPID=%d' % os.getppid(), a)\n\
         time.sleep(1000)\n",
    );
    tree.write(
        "n.service",
        &format!(
            "[Service]\nType=notify\nNotifyAccess=all\nExecStart=/usr/bin/python3 {}\n",
            script.display()
        ),
    );
    let mut flint = Flint::run(&tree, &["n.service"]);
    let me = flint.child.id();
    assert!(
        flint.wait_log(&format!(
            "n.service: New main PID {me} is the manager, refusing."
        )),
        "{}",
        flint.log()
    );
    let status = flint.stop().expect("flint ends");
    assert!(status.success());
    assert!(
        flint.log().contains("n.service: stopped"),
        "{}",
        flint.log()
    );
}

/// A forking daemon without a main pid flint can know (`GuessMainPID=no`,
/// no `PIDFile=`, as Debian's `postfix@-.service`): when its processes are
/// gone (`postfix stop`, a crash), the service stops, as systemd's does when
/// its control group empties, instead of staying "running" with no task.
#[test]
fn a_forking_service_without_a_main_pid_stops_when_its_processes_are_gone() {
    let tree = Tree::new();
    let pids = tree.path().join("pids");
    tree.write(
        "nomain.service",
        &format!(
            "[Service]\nType=forking\nGuessMainPID=no\n\
             ExecStart=/bin/sh -c 'sleep 1000 & echo $! >> {p}; sleep 1000 & echo $! >> {p}; sleep 0.2'\n",
            p = pids.display()
        ),
    );
    let flint = Flint::run(&tree, &["nomain.service"]);
    assert!(flint.wait_log("nomain.service: started"), "{}", flint.log());
    if !flint.log().contains("a cgroup per service under") {
        eprintln!("skipping: flint has no cgroup per service here (no writable cgroup2)");
        return;
    }
    let daemons: Vec<i32> = wait_for(Duration::from_secs(10), || {
        let p: Vec<i32> = std::fs::read_to_string(&pids)
            .ok()?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        (p.len() == 2).then_some(p)
    })
    .expect("both daemons wrote their pids");
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        !flint.log().contains("no process of the service is left"),
        "{}",
        flint.log()
    );
    for d in &daemons {
        // SAFETY: kill(2) with plain integers.
        unsafe {
            libc::kill(*d, libc::SIGKILL);
        }
    }
    assert!(
        flint.wait_log("nomain.service: no process of the service is left; stopping"),
        "{}",
        flint.log()
    );
}

/// A daemon that writes its `PIDFile=` a moment after its parent exits,
/// beside another process of the service (so no guess could find it):
/// the start waits for the file, as systemd's does ("PID file ... not
/// readable (yet?)"), and `$MAINPID` is the file's. One that never writes
/// it fails at `TimeoutStartSec=`.
#[test]
fn forking_start_waits_for_a_pid_file_written_late() {
    let tree = Tree::new();
    let pidfile = tree.path().join("late.pid");
    let post = tree.path().join("late.post");
    tree.write(
        "late.service",
        &format!(
            "[Service]\nType=forking\nPIDFile={p}\nGuessMainPID=no\nTimeoutStartSec=20\n\
             ExecStart=/usr/bin/python3 -c 'import os, time, subprocess\\n\
             if os.fork() == 0:\\n    os.setsid()\\n    subprocess.Popen([\"sleep\", \"1000\"])\\n\
             \\x20   time.sleep(0.6)\\n    open(\"{p}\", \"w\").write(str(os.getpid()))\\n    time.sleep(1000)'\n\
             ExecStartPost=/bin/sh -c 'echo main=$MAINPID > {post}'\n",
            p = pidfile.display(),
            post = post.display()
        ),
    );
    tree.write(
        "never.service",
        "[Service]\nType=forking\nPIDFile=/nonexistent/never.pid\nTimeoutStartSec=1\nExecStart=/bin/sh -c 'sleep 1000 &'\n",
    );
    // A daemon that dies having written a pid that is gone: nothing of
    // the service is left to write a good one, so the start fails at
    // once (systemd's "Daemon never wrote its PID file"), not after its
    // TimeoutStartSec= (as iscsid without its kernel module did).
    let dies_pid = tree.path().join("dies.pid");
    tree.write(
        "dies.service",
        &format!(
            "[Service]\nType=forking\nPIDFile={p}\nTimeoutStartSec=60\n\
             ExecStart=/bin/sh -c '(sleep 0.5; echo 999999 > {p}; sleep 0.5; exit 1) & exit 0'\n",
            p = dies_pid.display()
        ),
    );
    let flint = Flint::run(&tree, &["late.service", "never.service", "dies.service"]);
    let line = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&post)
            .ok()
            .filter(|l| !l.is_empty())
    })
    .unwrap_or_else(|| panic!("ExecStartPost= ran\n{}", flint.log()));
    let daemon = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(
        line.trim(),
        format!("main={}", daemon.trim()),
        "{}",
        flint.log()
    );
    assert!(
        flint.log().contains("late.service: PID file"),
        "{}",
        flint.log()
    );
    assert!(
        flint.wait_log("never.service: Failed with result 'timeout'"),
        "{}",
        flint.log()
    );
    if flint.log().contains("a cgroup per service") {
        assert!(
            flint.wait_log("dies.service: Failed with result 'protocol'"),
            "{}",
            flint.log()
        );
        assert!(!dies_pid.exists(), "the stale PID file is left behind");
    }
    // SAFETY: kill(2) with plain integers; the daemon may be gone already.
    unsafe {
        libc::kill(daemon.trim().parse().unwrap_or(0).max(2), libc::SIGKILL);
    }
}

#[test]
fn as_pid1_flint_reaps_orphans_and_stops_cleanly() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: creating a PID namespace needs root");
        return;
    }
    let tree = Tree::new();
    // Each loop leaves an orphan that exits at once and must be reaped.
    tree.write("o.service", "[Service]\nExecStart=/bin/sh -c 'for i in 1 2 3 4 5; do (sleep 0.1 &); done; exec sleep 1000'\n");
    let mut child = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(common::flint_bin())
        .args(["run", "--unit-dir"])
        .arg(tree.path())
        .arg("o.service")
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("unshare");
    // flint is the child of unshare; find it.
    let unshare = i32::try_from(child.id()).unwrap();
    let flint = wait_for(Duration::from_secs(10), || {
        let kids =
            std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).ok()?;
        kids.split_whitespace().next()?.parse::<i32>().ok()
    })
    .expect("flint runs as PID 1 of the namespace");
    // Wait until the service runs, then for the orphans to exit.
    let zombies = |pid: i32| -> usize {
        let kids =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        kids.split_whitespace()
            .filter(|k| {
                std::fs::read_to_string(format!("/proc/{k}/stat"))
                    .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
            })
            .count()
    };
    std::thread::sleep(Duration::from_millis(1500));
    let left = zombies(flint);
    // SAFETY: kill(2) with plain integers.
    unsafe {
        libc::kill(flint, libc::SIGTERM);
    }
    let status = wait_for(Duration::from_secs(20), || child.try_wait().ok().flatten())
        .expect("flint exits after SIGTERM");
    assert_eq!(left, 0, "orphans were reaped");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn directories_are_created_exported_and_the_runtime_one_removed() {
    let tree = Tree::new();
    let out = tree.path().join("out");
    // User mode keeps the directories inside the test's own tree.
    let base = tree.path().join("xdg");
    tree.write(
        "dirs.service",
        &format!(
            "[Service]\nType=oneshot\nRuntimeDirectory=flint-test/run\nRuntimeDirectoryMode=0700\nStateDirectory=flint-test-state\nExecStart=/bin/sh -c 'echo \"$RUNTIME_DIRECTORY $STATE_DIRECTORY\" > {}; echo hello from the service'\n",
            out.display()
        ),
    );
    let mut cmd = std::process::Command::new(common::flint_bin());
    cmd.args(["run", "--user", "--unit-dir"])
        .arg(tree.path())
        .arg("dirs.service")
        .env("XDG_RUNTIME_DIR", base.join("run"))
        .env("XDG_STATE_HOME", base.join("state"))
        .env("FLINT_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let got = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&out).ok().filter(|s| !s.is_empty())
    })
    .expect("the service ran");
    let run = base.join("run/flint-test/run");
    let state = base.join("state/flint-test-state");
    assert_eq!(got.trim(), format!("{} {}", run.display(), state.display()));
    assert!(state.is_dir(), "StateDirectory= stays");
    let gone = wait_for(Duration::from_secs(10), || (!run.exists()).then_some(()));
    assert!(
        gone.is_some(),
        "RuntimeDirectory= is removed when the service stops"
    );
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id().cast_signed(), libc::SIGTERM);
    }
    let output = wait_for(Duration::from_secs(20), || child.try_wait().ok().flatten())
        .map(|_| child.wait_with_output().unwrap());
    let log = String::from_utf8_lossy(&output.expect("flint exits").stderr).into_owned();
    assert!(
        log.contains("dirs.service[") && log.contains("]: hello from the service"),
        "service output reaches flint's log with unit and pid:\n{log}"
    );
}

#[test]
fn unmet_conditions_skip_and_failed_assertions_fail() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    tree.write("c1.service", &format!("[Unit]\nConditionPathExists=/nonexistent/flint\n[Service]\nExecStart=/bin/sh -c 'echo c1 >> {l}'\n"));
    tree.write("c2.service", &format!("[Unit]\nConditionPathExists=|/nonexistent/flint\nConditionPathIsDirectory=|/\n[Service]\nExecStart=/bin/sh -c 'echo c2 >> {l}'\n"));
    tree.write("c3.service", &format!("[Unit]\nAssertPathExists=/nonexistent/flint\n[Service]\nExecStart=/bin/sh -c 'echo c3 >> {l}'\n"));
    let flint = Flint::run(&tree, &["c1.service", "c2.service", "c3.service"]);
    wait_for(Duration::from_secs(10), || {
        lines(&log).contains(&"c2".to_string()).then_some(())
    })
    .expect("c2's triggering condition held");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&log), ["c2"]);
    let out = flint.log();
    assert!(
        out.contains("c1.service: condition check resulted in it being skipped"),
        "{out}"
    );
    assert!(
        flint.wait_log("c3.service: assertion failed"),
        "{}",
        flint.log()
    );
}

/// A C daemon using libsystemd: it keeps its state in the fd store, reports
/// readiness, and stops pinging the watchdog on its first run.
const SD_DAEMON: &str = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <systemd/sd-daemon.h>
int main(int argc, char **argv) {
    FILE *log = fopen(argv[1], "a");
    char **names = NULL;
    int n = sd_listen_fds_with_names(0, &names);
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], "mystate") == 0) {
            char buf[64] = {0};
            pread(SD_LISTEN_FDS_START + i, buf, sizeof buf - 1, 0);
            fprintf(log, "restored %s\n", buf);
            fflush(log);
            sd_notify(0, "READY=1\nSTATUS=restored");
            for (;;) { sd_notify(0, "WATCHDOG=1"); usleep(100000); }
        }
    }
    int fd = memfd_create("state", 0);
    write(fd, "hello-state", 11);
    sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=mystate", &fd, 1);
    uint64_t usec = 0;
    fprintf(log, "fresh watchdog=%d\n", sd_watchdog_enabled(0, &usec) > 0 ? (int)(usec / 1000) : -1);
    fflush(log);
    sd_notify(0, "READY=1");
    pause(); /* no WATCHDOG=1: the watchdog fires */
    return 0;
}
"#;

#[test]
fn sd_notify_daemon_watchdog_restarts_it_and_the_fd_store_survives() {
    if !common::require("gcc", "builds the libsystemd client") {
        return;
    }
    let tree = Tree::new();
    let src = tree.write("d.c", SD_DAEMON);
    let bin = tree.path().join("sd-daemon");
    let libs = std::process::Command::new("pkg-config")
        .args(["--cflags", "--libs", "libsystemd"])
        .output();
    let Ok(libs) = libs
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .map_err(|_| ())
        .and_then(|l| if l.is_empty() { Err(()) } else { Ok(l) })
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "libsystemd-dev is installed in CI"
        );
        eprintln!("skipped: libsystemd-dev is not installed");
        return;
    };
    let status = std::process::Command::new("gcc")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .args(libs.split_whitespace())
        .status()
        .unwrap();
    assert!(status.success(), "the C daemon builds");
    let log = tree.path().join("log");
    tree.write(
        "sd.service",
        &format!(
            "[Service]\nType=notify\nExecStart={} {}\nWatchdogSec=700ms\nRestart=on-watchdog\nRestartSec=100ms\nFileDescriptorStoreMax=4\n",
            bin.display(),
            log.display()
        ),
    );
    let flint = Flint::run(&tree, &["sd.service"]);
    let l = wait_for(Duration::from_secs(20), || {
        Some(lines(&log)).filter(|l| l.len() >= 2)
    })
    .expect("the daemon ran twice");
    assert_eq!(
        l[0], "fresh watchdog=700",
        "WATCHDOG_USEC reaches sd_watchdog_enabled()"
    );
    assert_eq!(
        l[1], "restored hello-state",
        "the stored fd came back after the watchdog restart"
    );
    assert!(flint.wait_log("watchdog timeout"), "{}", flint.log());
    assert!(flint.wait_log("status: restored"), "{}", flint.log());
}

#[test]
fn refuse_unenforced_stops_units_with_sandboxing_flint_cannot_apply() {
    let tree = Tree::new();
    tree.write(
        "sandboxed.service",
        "[Service]\nRestrictFileSystems=ext4\nExecStart=/bin/sleep 1000\n",
    );
    tree.write("plain.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let (_, log) = run_until_exit(
        &tree,
        &["--refuse-unenforced", "sandboxed.service", "plain.service"],
        Duration::from_millis(1500),
    );
    assert!(log.contains("sandboxed.service: refusing to start (--refuse-unenforced): accepted, not enforced: RestrictFileSystems="), "{log}");
    assert!(log.contains("plain.service: started /bin/sleep"), "{log}");
    assert!(!log.contains("sandboxed.service: started"), "{log}");
}

#[test]
fn dynamic_user_runs_the_service_under_an_allocated_uid() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching to a dynamic user needs root");
        return;
    }
    let tree = Tree::new();
    // To its output: DynamicUser= implies ProtectSystem=strict and
    // PrivateTmp=, so the service cannot write into the tree under /tmp.
    tree.write(
        "dyn.service",
        "[Service]\nType=oneshot\nDynamicUser=yes\nExecStart=/bin/sh -c 'echo ids $(id -u) $(id -g) $USER'\n",
    );
    let flint = Flint::run(&tree, &["dyn.service"]);
    let got = wait_for(Duration::from_secs(10), || {
        let log = flint.log();
        let at = log.find("]: ids ")?;
        Some(log[at + "]: ids ".len()..].lines().next()?.to_string())
    })
    .expect("the service ran");
    let fields: Vec<&str> = got.split_whitespace().collect();
    let uid: u32 = fields[0].parse().unwrap();
    assert!(
        (61184..=65519).contains(&uid),
        "uid {uid} from systemd's dynamic range"
    );
    assert_eq!(fields[1], fields[0], "the group matches the uid");
    assert_eq!(fields[2], "dyn", "USER is the unit's name");
}

#[test]
fn timeout_stop_escalates_to_sigkill() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    // The service ignores SIGTERM; TimeoutStopSec= ends it with SIGKILL.
    tree.write(
        "stubborn.service",
        &format!(
            "[Service]\nExecStart=/bin/sh -c 'trap \"\" TERM; echo up >> {l}; while :; do sleep 0.1; done'\nTimeoutStopSec=1s\nExecStopPost=/bin/sh -c 'echo $EXIT_CODE $EXIT_STATUS >> {l}'\n",
            l = log.display()
        ),
    );
    let mut flint = Flint::run(&tree, &["stubborn.service"]);
    wait_for(Duration::from_secs(10), || lines(&log).first().cloned()).expect("the service runs");
    let status = flint
        .stop()
        .expect("flint exits once the service is killed");
    assert!(status.success());
    assert!(
        flint.wait_log("stop timed out; sending SIGKILL"),
        "{}",
        flint.log()
    );
    assert_eq!(lines(&log).last().map(String::as_str), Some("killed KILL"));
}

#[test]
fn mainpid_moves_tracking_to_another_process() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    // The first process starts a successor, names it with MAINPID= and
    // exits; the service stays up as long as the successor runs.
    tree.write(
        "m.py",
        &format!(
            "import os, socket, subprocess, sys, time\nchild = subprocess.Popen(['/bin/sleep', '1000'], start_new_session=False)\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.sendto(b'MAINPID=%d\\nREADY=1' % child.pid, os.environ['NOTIFY_SOCKET'])\nopen('{}', 'w').write(str(child.pid))\ntime.sleep(0.5)\n",
            log.display()
        ),
    );
    tree.write(
        "m.service",
        &format!(
            "[Service]\nType=notify\nNotifyAccess=all\nExecStart=/usr/bin/python3 {}\n",
            tree.path().join("m.py").display()
        ),
    );
    let mut flint = Flint::run(&tree, &["m.service"]);
    let successor: i32 = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).ok()?.trim().parse().ok()
    })
    .expect("successor started");
    assert!(
        flint.wait_log(&format!("main pid is now {successor}")),
        "{}",
        flint.log()
    );
    // The first process has exited by now; the service is still running.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !flint.log().contains("m.service: Deactivated"),
        "{}",
        flint.log()
    );
    // Killing the successor ends the service.
    // SAFETY: kill(2) with plain integers.
    unsafe {
        libc::kill(successor, libc::SIGKILL);
    }
    assert!(
        flint.wait_log("m.service: Failed with result 'signal'"),
        "{}",
        flint.log()
    );
    let _ = flint.stop();
}

#[test]
fn every_command_of_one_start_shares_its_invocation_id_and_a_restart_gets_a_new_one() {
    // systemd.exec(5): a new $INVOCATION_ID each time the unit becomes
    // active, the same one for all processes of that runtime cycle.
    let tree = Tree::new();
    let out = tree.path().join("ids");
    let log = |label: &str| {
        format!(
            "/bin/sh -c 'echo {label} $INVOCATION_ID >> {}'",
            out.display()
        )
    };
    tree.write(
        "x.service",
        &format!(
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStartPre={}\nExecStart={}\nExecStartPost={}\nExecStopPost={}\nRestart=always\nRestartSec=200ms\n",
            log("pre"),
            log("main"),
            log("post"),
            log("stoppost")
        ),
    );
    let mut flint = Flint::run(&tree, &["x.service"]);
    let text = wait_for(Duration::from_secs(15), || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.lines().count() >= 8)
    })
    .expect("two runs of x.service");
    assert!(flint.stop().is_some());
    let lines: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(' ')).collect();
    let first = lines[0].1;
    assert_eq!(first.len(), 32, "{text}");
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
    // The first run's four commands, in whatever order pre/main/post raced.
    let run1: Vec<&str> = lines[..4].iter().map(|(_, id)| *id).collect();
    assert!(run1.iter().all(|id| *id == first), "{text}");
    let labels: std::collections::BTreeSet<&str> = lines[..4].iter().map(|(l, _)| *l).collect();
    assert_eq!(labels.len(), 4, "{text}");
    let second = lines[4].1;
    assert_ne!(second, first, "a restart is a new runtime cycle\n{text}");
    assert!(lines[4..8].iter().all(|(_, id)| *id == second), "{text}");
}

#[test]
fn exec_start_post_finishes_when_the_main_process_exits_meanwhile() {
    // systemd waits for a running ExecStartPost= when the main process
    // exits during it, then stops the service (service.c, START_POST).
    let tree = Tree::new();
    let out = tree.path().join("post");
    tree.write(
        "x.service",
        &format!(
            "[Service]\nExecStart=/bin/true\nExecStartPost=/bin/sh -c 'sleep 0.3; echo done > {}'\nExecStopPost=/bin/sh -c 'echo stopped >> {}'\n",
            out.display(),
            out.display()
        ),
    );
    let flint = Flint::run(&tree, &["x.service"]);
    let got = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.lines().count() >= 2)
    });
    assert_eq!(got.as_deref(), Some("done\nstopped\n"), "{}", flint.log());
    assert!(
        flint.wait_log("x.service: Deactivated successfully."),
        "{}",
        flint.log()
    );
}

#[test]
fn a_notify_service_that_exits_before_ready_fails_with_protocol() {
    // systemd: a clean exit of a Type=notify main process before READY=1
    // is result 'protocol', a failure (so Restart=on-failure restarts it).
    let tree = Tree::new();
    let out = tree.path().join("runs");
    tree.write(
        "x.service",
        &format!(
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=notify\nExecStart=/bin/sh -c 'echo run >> {}'\nRestart=on-failure\nRestartSec=100ms\n",
            out.display()
        ),
    );
    let flint = Flint::run(&tree, &["x.service"]);
    let runs = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.lines().count() >= 2)
    });
    assert!(
        runs.is_some(),
        "restarted after the protocol failure\n{}",
        flint.log()
    );
    assert!(flint.log().contains("result 'protocol'"), "{}", flint.log());
}

#[test]
fn ready_sent_just_before_the_exit_counts_however_much_came_before() {
    // Type=notify, RemainAfterExit=yes: the main process sends a burst of
    // STATUS= messages, then READY=1, and exits at once. systemd reads
    // notifications ahead of the exit, so the service is ready (its
    // ExecStartPost= runs) and stays active; seeing the exit first would
    // fail it with result 'protocol'. flint is stopped while the burst is
    // sent and until the process is gone, so that it finds all of it at
    // once: more messages queued on its notify socket than it reads in one
    // turn, and the exit.
    let tree = Tree::new();
    let script = tree.write(
        "burst.py",
        "import os, signal, socket, subprocess\n\
         flint = os.getppid()\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         os.kill(flint, signal.SIGSTOP)\n\
         for i in range(200):\n    s.sendto(b'STATUS=step %d' % i, os.environ['NOTIFY_SOCKET'])\n\
         s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n\
         subprocess.Popen(['/bin/sh', '-c', 'sleep 0.3; kill -CONT %d' % flint])\n",
    );
    let post = tree.path().join("post");
    tree.write(
        "burst.service",
        &format!(
            "[Service]\nType=notify\nRemainAfterExit=yes\n\
             ExecStart=/usr/bin/python3 {}\nExecStartPost=/bin/touch {}\n",
            script.display(),
            post.display()
        ),
    );
    // The kernel queues 10 datagrams per socket by default; systemd's
    // sysctl.d raises it to 512, and so does a private network namespace
    // here, where flint makes its notify socket.
    if !common::require_root("a private network namespace with a longer datagram queue") {
        return;
    }
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-n", "sh", "-c"])
        .arg("echo 512 > /proc/sys/net/unix/max_dgram_qlen && exec \"$0\" \"$@\"")
        .arg(common::flint_bin())
        .args(["run", "--unit-dir"])
        .arg(tree.path())
        .arg("burst.service");
    let flint = Flint::run_command_until(cmd, "unit(s) running");
    let posted = wait_for(Duration::from_secs(20), || post.exists().then_some(()));
    assert!(
        posted.is_some(),
        "the service got ready before its exit\n{}",
        flint.log()
    );
    let log = flint.log();
    assert!(!log.contains("result 'protocol'"), "{log}");
    assert!(!log.contains("exited before READY=1"), "{log}");
}

#[test]
fn remain_after_exit_keeps_any_type_active_once_its_main_process_is_gone() {
    // systemd's service_enter_running(): with RemainAfterExit=yes a service
    // whose main process exited cleanly stays active (exited), whatever its
    // Type=, also when the exit came while ExecStartPost= ran; a stop then
    // runs its ExecStop=. A main process that fails still fails it.
    let tree = Tree::new();
    let stops = tree.path().join("stops");
    // A notify service that says STOPPING=1 before it exits does not remain.
    let stopping = tree.write("stopping.py", STOPPING_DAEMON);
    let stopping = format!("/usr/bin/python3 {}", stopping.display());
    let ready = tree.write(
        "ready.py",
        "import os, socket\n\
         socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n",
    );
    let ready = format!("/usr/bin/python3 {}", ready.display());
    let units = [
        ("simple", "simple", "/bin/true"),
        ("exec", "exec", "/bin/true"),
        ("post", "simple", "/bin/true\nExecStartPost=/bin/sleep 0.3"),
        // RuntimeMaxSec= applies while the main process runs.
        ("limited", "simple", "/bin/true\nRuntimeMaxSec=1"),
        ("bad", "simple", "/bin/false"),
        ("stopping", "notify", stopping.as_str()),
        // Reloaded without a main process: nothing to signal.
        ("reloadable", "notify-reload", ready.as_str()),
    ];
    for (name, kind, start) in units {
        // (Whether a service that failed or said STOPPING=1 runs ExecStop=
        // is not this test's.)
        let stop = if name == "bad" || name == "stopping" {
            String::new()
        } else {
            format!("ExecStop=/bin/sh -c 'echo {name} >> {}'\n", stops.display())
        };
        tree.write(
            &format!("{name}.service"),
            &format!("[Service]\nType={kind}\nRemainAfterExit=yes\nExecStart={start}\n{stop}"),
        );
    }
    let control = tree.path().join("control");
    let mut args = vec!["--control", control.to_str().expect("utf-8 path")];
    let names: Vec<String> = units.iter().map(|u| format!("{}.service", u.0)).collect();
    args.extend(names.iter().map(String::as_str));
    let flint = Flint::run(&tree, &args);
    let sub = |unit: &str| {
        let (_, out) = common::ctl(&control, &["show", "-p", "ActiveState,SubState", unit]);
        out
    };
    let settled = wait_for(Duration::from_secs(10), || {
        (sub("bad.service").contains("ActiveState=failed")
            && sub("post.service").contains("SubState=exited")
            && sub("stopping.service").contains("ActiveState=inactive"))
        .then_some(())
    });
    assert!(
        settled.is_some(),
        "{}{}\n{}",
        sub("post.service"),
        sub("stopping.service"),
        flint.log()
    );
    // Past limited.service's RuntimeMaxSec=.
    std::thread::sleep(Duration::from_millis(1500));
    let (code, out) = common::ctl(&control, &["reload", "reloadable.service"]);
    assert_eq!(code, 0, "{out}");
    for unit in [
        "simple.service",
        "exec.service",
        "post.service",
        "limited.service",
        "reloadable.service",
    ] {
        assert_eq!(
            sub(unit),
            "ActiveState=active\nSubState=exited\n",
            "{unit}\n{}",
            flint.log()
        );
    }
    // None has stopped; a stop runs ExecStop=.
    let stopped = || std::fs::read_to_string(&stops).unwrap_or_default();
    assert_eq!(stopped(), "", "{}", flint.log());
    // Killing all of a service with nothing left is no error (systemd's
    // unit_kill()); killing its main process is.
    let (code, out) = common::ctl(&control, &["kill", "exec.service"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = common::ctl(&control, &["kill", "--kill-whom", "main", "exec.service"]);
    assert_ne!(code, 0, "{out}");
    let (code, out) = common::ctl(&control, &["stop", "simple.service"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(stopped(), "simple\n", "{}", flint.log());
    assert!(
        sub("simple.service").contains("ActiveState=inactive"),
        "{}",
        flint.log()
    );
}

#[test]
fn a_forking_service_without_a_main_process_remains_once_its_cgroup_is_empty() {
    // Type=forking with GuessMainPID=no: no main process is known, so the
    // service runs while its cgroup has processes; once it is empty the
    // service stays active (exited) with RemainAfterExit=yes (systemd's
    // cgroup-empty notification), where without it the service stops.
    if !common::require_root("a cgroup per service tells when nothing of it is left") {
        return;
    }
    let tree = Tree::new();
    for (name, remain) in [("kept", "yes"), ("gone", "no")] {
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Service]\nType=forking\nGuessMainPID=no\nRemainAfterExit={remain}\n\
                 ExecStart=/bin/sh -c 'sleep 0.5 &'\n"
            ),
        );
    }
    let control = tree.path().join("control");
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().expect("utf-8 path"),
            "kept.service",
            "gone.service",
        ],
    );
    let sub = |unit: &str| {
        let (_, out) = common::ctl(&control, &["show", "-p", "ActiveState,SubState", unit]);
        out
    };
    assert_eq!(
        sub("kept.service"),
        "ActiveState=active\nSubState=running\n",
        "{}",
        flint.log()
    );
    let settled = wait_for(Duration::from_secs(10), || {
        (sub("gone.service").contains("ActiveState=inactive")
            && sub("kept.service") == "ActiveState=active\nSubState=exited\n")
            .then_some(())
    });
    assert!(settled.is_some(), "{}{}", sub("kept.service"), flint.log());
}

#[test]
fn a_forking_daemon_that_moves_to_a_new_pid_through_its_pid_file_lives_on() {
    if !common::require("python3", "the daemon is a Python script") {
        return;
    }
    // systemd's service_sigchld_event(): when the main process of a
    // service with PIDFile= exits, the file is read again first; a daemon
    // that wrote its new pid there before the old one exited is the main
    // process now, and the service goes on running.
    let tree = Tree::new();
    let pidfile = tree.path().join("daemon.pid");
    let script = tree.write(
        "mover.py",
        "import os, sys, time\n\
         pidfile = sys.argv[1]\n\
         def write(pid):\n    open(pidfile + '.tmp', 'w').write(str(pid))\n    os.rename(pidfile + '.tmp', pidfile)\n\
         if os.fork() == 0:\n\
         \x20   os.setsid()\n\
         \x20   write(os.getpid())\n\
         \x20   time.sleep(0.5)\n\
         \x20   b = os.fork()\n\
         \x20   if b == 0:\n\
         \x20       time.sleep(1000)\n\
         \x20   write(b)\n\
         \x20   os._exit(0)\n\
         while not os.path.exists(pidfile):\n    time.sleep(0.01)\n",
    );
    tree.write(
        "mover.service",
        &format!(
            "[Service]\nType=forking\nPIDFile={}\nExecStart=/usr/bin/python3 {} {}\n",
            pidfile.display(),
            script.display(),
            pidfile.display()
        ),
    );
    // With a cgroup of its own (as root) the new pid must be in it; without
    // cgroups it must be a child left to flint.
    for cgroups in ["services", "off"] {
        let control = tree.path().join(format!("control-{cgroups}"));
        let flint = Flint::run(
            &tree,
            &[
                "--control",
                control.to_str().expect("utf-8 path"),
                "--cgroups",
                cgroups,
                "mover.service",
            ],
        );
        let moved = wait_for(Duration::from_secs(10), || {
            flint.log().contains("main pid is now").then_some(())
        });
        assert!(moved.is_some(), "--cgroups {cgroups}: {}", flint.log());
        let second: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let (_, out) = common::ctl(
            &control,
            &["show", "-p", "MainPID,ActiveState", "mover.service"],
        );
        assert_eq!(
            out,
            format!("MainPID={second}\nActiveState=active\n"),
            "--cgroups {cgroups}: {}",
            flint.log()
        );
        drop(flint);
        let _ = std::fs::remove_file(&pidfile);
    }
}

#[test]
fn exec_stop_is_left_out_when_the_main_process_failed_or_announced_its_stop() {
    // As systemd 252's user manager does with the same units: a running
    // service whose main process fails, or that sent STOPPING=1 before it
    // exited, does not run ExecStop= (ExecStopPost= runs); one whose main
    // process exits cleanly does.
    let tree = Tree::new();
    let ran = tree.path().join("ran");
    let script = tree.write("stopping.py", STOPPING_DAEMON);
    let units = [
        (
            "bad",
            "simple",
            "/bin/sh -c 'sleep 0.2; exit 3'".to_string(),
        ),
        (
            "stopping",
            "notify",
            format!("/usr/bin/python3 {}", script.display()),
        ),
        ("plain", "simple", "/bin/sh -c 'sleep 0.2'".to_string()),
    ];
    for (name, kind, start) in &units {
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Service]\nType={kind}\nExecStart={start}\n\
                 ExecStop=/bin/sh -c 'echo {name}-stop >> {0}'\n\
                 ExecStopPost=/bin/sh -c 'echo {name}-post >> {0}'\n",
                ran.display()
            ),
        );
    }
    // A stop the service announced is no stop request: Restart= applies
    // (systemd 252 restarted such a service three times in 2.5 s).
    let runs = tree.path().join("runs");
    tree.write(
        "again.service",
        &format!(
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=notify\nRestart=always\n\
             RestartSec=100ms\nExecStartPre=/bin/sh -c 'echo run >> {}'\n\
             ExecStart=/usr/bin/python3 {}\n",
            runs.display(),
            script.display()
        ),
    );
    let flint = Flint::run(
        &tree,
        &[
            "bad.service",
            "stopping.service",
            "plain.service",
            "again.service",
        ],
    );
    let again = wait_for(Duration::from_secs(10), || {
        (lines(&runs).len() >= 2).then_some(())
    });
    assert!(
        again.is_some(),
        "restarted after STOPPING=1\n{}",
        flint.log()
    );
    let first = wait_for(Duration::from_secs(10), || {
        let mut got = lines(&ran);
        got.sort();
        (got.len() >= 4).then_some(got)
    });
    // Past the point where a late ExecStop= would have run.
    std::thread::sleep(Duration::from_millis(300));
    let mut got = lines(&ran);
    got.sort();
    assert_eq!(
        got,
        ["bad-post", "plain-post", "plain-stop", "stopping-post"],
        "{first:?}\n{}",
        flint.log()
    );
}

#[test]
fn exec_stop_is_left_out_when_the_main_process_failed_during_exec_start_post_or_a_reload() {
    // systemd 252's user manager with the same units: a main process that
    // fails while ExecStartPost= or ExecReload= runs fails the service once
    // the command is done, without ExecStop= (ExecStopPost= runs), whether
    // or not the reload command failed too; a clean exit there stops the
    // service the normal way, with ExecStop=. A failing ExecStartPost=
    // fails it without ExecStop= too.
    let tree = Tree::new();
    let ran = tree.path().join("ran");
    let on_hup = |code: u8| {
        format!("/bin/sh -c 'trap \"sleep 0.3; exit {code}\" HUP; while :; do sleep 0.1; done'")
    };
    let units = [
        (
            "postfail",
            "/bin/sh -c 'sleep 0.3; exit 3'".to_string(),
            "ExecStartPost=/bin/sleep 1",
        ),
        (
            "postclean",
            "/bin/sh -c 'sleep 0.3; exit 0'".to_string(),
            "ExecStartPost=/bin/sleep 1",
        ),
        // ExecStartPost= itself failing: no ExecStop= either.
        (
            "spfail",
            "/bin/sleep 10".to_string(),
            "ExecStartPost=/bin/false",
        ),
        (
            "reloadfail",
            on_hup(4),
            "ExecReload=/bin/sh -c 'kill -HUP $MAINPID; sleep 1'",
        ),
        (
            "reloadbad",
            on_hup(4),
            "ExecReload=/bin/sh -c 'kill -HUP $MAINPID; sleep 1; exit 2'",
        ),
        (
            "reloadclean",
            on_hup(0),
            "ExecReload=/bin/sh -c 'kill -HUP $MAINPID; sleep 1; exit 2'",
        ),
    ];
    for (name, start, extra) in &units {
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Service]\nExecStart={start}\n{extra}\n\
                 ExecStop=/bin/sh -c 'echo {name}-stop >> {0}'\n\
                 ExecStopPost=/bin/sh -c 'echo {name}-post >> {0}'\n",
                ran.display()
            ),
        );
    }
    let control = tree.path().join("control");
    let mut args = vec!["--control", control.to_str().expect("utf-8 path")];
    let names: Vec<String> = units
        .iter()
        .map(|(name, ..)| format!("{name}.service"))
        .collect();
    args.extend(names.iter().map(String::as_str));
    let flint = Flint::run(&tree, &args);
    let sub = |unit: &str| {
        let (_, out) = common::ctl(&control, &["show", "-p", "SubState", unit]);
        out.trim().trim_start_matches("SubState=").to_string()
    };
    let reloads = [
        "reloadfail.service",
        "reloadbad.service",
        "reloadclean.service",
    ];
    let up = wait_for(Duration::from_secs(10), || {
        reloads.iter().all(|u| sub(u) == "running").then_some(())
    });
    assert!(up.is_some(), "{}", flint.log());
    let answers: Vec<_> = reloads
        .into_iter()
        .map(|unit| {
            let control = control.clone();
            std::thread::spawn(move || common::ctl(&control, &["reload", unit]))
        })
        .collect();
    let settled = wait_for(Duration::from_secs(10), || {
        let mut got = lines(&ran);
        got.sort();
        (got.len() >= 8).then_some(got)
    });
    // Past the point where a late ExecStop= would have run.
    std::thread::sleep(Duration::from_millis(300));
    let mut got = lines(&ran);
    got.sort();
    assert_eq!(
        got,
        [
            "postclean-post",
            "postclean-stop",
            "postfail-post",
            "reloadbad-post",
            "reloadclean-post",
            "reloadclean-stop",
            "reloadfail-post",
            "spfail-post",
        ],
        "{settled:?}\n{}",
        flint.log()
    );
    for (unit, want) in [
        ("postfail", "failed"),
        ("postclean", "dead"),
        ("reloadfail", "failed"),
        ("reloadbad", "failed"),
        ("reloadclean", "dead"),
        ("spfail", "failed"),
    ] {
        assert_eq!(sub(&format!("{unit}.service")), want, "{}", flint.log());
    }
    // Each reload job failed, as systemctl's: the service failed during it
    // (reloadfail), or the command did (reloadbad, reloadclean).
    for (unit, answer) in reloads.iter().zip(answers) {
        let (code, out) = answer.join().unwrap();
        assert_eq!(code, 1, "{unit}: {out}");
    }
}

#[test]
fn exit_type_cgroup_keeps_a_service_up_while_any_of_its_processes_runs() {
    // systemd 252's user manager with the same units: with ExitType=cgroup
    // the main process's exit is not the service's end; the last process
    // is. A clean end stops it with ExecStop=, a failed main process fails
    // it without, RemainAfterExit=yes keeps it active (exited); a notify
    // service left without a process that could send READY=1 fails with
    // `protocol` at once, also one whose main process exited with
    // RemainAfterExit=yes; a oneshot with it is refused. Run with cgroups
    // (as root) and without (the process group stands for the cgroup).
    // What each main process leaves behind waits for the test's `go` file.
    let tree = Tree::new();
    let ran = tree.path().join("ran");
    let units = [
        ("cgclean", "simple", "0", "", "cgroup"),
        ("cgfail", "simple", "3", "", "cgroup"),
        ("cgnotify", "notify", "0", "NotifyAccess=all", "cgroup"),
        ("cgremain", "simple", "0", "RemainAfterExit=yes", "cgroup"),
        (
            "notifyremain",
            "notify",
            "0",
            "NotifyAccess=all\nRemainAfterExit=yes",
            "main",
        ),
    ];
    tree.write(
        "cgoneshot.service",
        "[Service]\nType=oneshot\nExitType=cgroup\nExecStart=/bin/true\n",
    );
    let names: Vec<String> = units
        .iter()
        .map(|(name, ..)| format!("{name}.service"))
        .collect();
    for cgroups in ["services", "off"] {
        let _ = std::fs::remove_file(&ran);
        let go = tree.path().join(format!("go-{cgroups}"));
        for (name, kind, code, extra, exit) in &units {
            tree.write(
                &format!("{name}.service"),
                &format!(
                    "[Service]\nType={kind}\nExitType={exit}\n\
                     ExecStart=/bin/sh -c '(while [ ! -e {go} ]; do sleep 0.05; done) & exit {code}'\n\
                     {extra}\n\
                     ExecStop=/bin/sh -c 'echo {name}-stop >> {ran}'\n\
                     ExecStopPost=/bin/sh -c 'echo {name}-post >> {ran}'\n",
                    go = go.display(),
                    ran = ran.display()
                ),
            );
        }
        let control = tree.path().join(format!("control-{cgroups}"));
        let mut args = vec![
            "--control",
            control.to_str().expect("utf-8 path"),
            "--cgroups",
            cgroups,
        ];
        args.extend(names.iter().map(String::as_str));
        let flint = Flint::run(&tree, &args);
        let show = |unit: &str| {
            let (_, out) = common::ctl(
                &control,
                &["show", "-p", "MainPID,ActiveState,SubState,Result", unit],
            );
            out.replace('\n', " ").trim().to_string()
        };
        let states = |want: &[(&str, &str)]| {
            want.iter()
                .map(|(unit, _)| format!("{unit}: {}", show(&format!("{unit}.service"))))
                .collect::<Vec<_>>()
        };
        let expect = |want: &[(&str, &str)]| {
            want.iter()
                .map(|(unit, state)| format!("{unit}: {state}"))
                .collect::<Vec<_>>()
        };
        // The main processes are gone; the services are up while what they
        // left runs (the notify ones wait for READY=1).
        let up = [
            (
                "cgclean",
                "MainPID=0 Result=success ActiveState=active SubState=running",
            ),
            (
                "cgfail",
                "MainPID=0 Result=exit-code ActiveState=active SubState=running",
            ),
            (
                "cgnotify",
                "MainPID=0 Result=success ActiveState=activating SubState=start",
            ),
            (
                "cgremain",
                "MainPID=0 Result=success ActiveState=active SubState=running",
            ),
            (
                "notifyremain",
                "MainPID=0 Result=success ActiveState=activating SubState=start",
            ),
        ];
        let seen = wait_for(Duration::from_secs(10), || {
            (states(&up) == expect(&up)).then_some(())
        });
        assert!(
            seen.is_some(),
            "--cgroups {cgroups}: {:#?}\n{}",
            states(&up),
            flint.log()
        );
        let (code, out) = common::ctl(&control, &["start", "cgoneshot.service"]);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("Unit cgoneshot.service has a bad unit file setting."),
            "{out}"
        );
        std::fs::write(&go, "").unwrap();
        let end = [
            (
                "cgclean",
                "MainPID=0 Result=success ActiveState=inactive SubState=dead",
            ),
            (
                "cgfail",
                "MainPID=0 Result=exit-code ActiveState=failed SubState=failed",
            ),
            (
                "cgnotify",
                "MainPID=0 Result=protocol ActiveState=failed SubState=failed",
            ),
            (
                "cgremain",
                "MainPID=0 Result=success ActiveState=active SubState=exited",
            ),
            (
                "notifyremain",
                "MainPID=0 Result=protocol ActiveState=failed SubState=failed",
            ),
        ];
        let settled = wait_for(Duration::from_secs(10), || {
            (states(&end) == expect(&end)).then_some(())
        });
        assert!(
            settled.is_some(),
            "--cgroups {cgroups}: {:#?}\n{}",
            states(&end),
            flint.log()
        );
        let mut got = lines(&ran);
        got.sort();
        assert_eq!(
            got,
            [
                "cgclean-post",
                "cgclean-stop",
                "cgfail-post",
                "cgnotify-post",
                "notifyremain-post"
            ],
            "--cgroups {cgroups}: {}",
            flint.log()
        );
    }
}

#[test]
fn a_forking_service_that_left_nothing_and_no_pid_file_fails_at_once() {
    // systemd's service_sigchld_event(): the forking parent exited, its
    // PIDFile= is not there and the service's cgroup is empty, so nothing
    // can write it: the start fails with `protocol` at once rather than
    // after TimeoutStartSec=. While something of it runs, the start waits
    // for the file (as systemd, checked with its user manager).
    if !common::require_root("a cgroup per service tells when nothing of it is left") {
        return;
    }
    let tree = Tree::new();
    let ran = tree.path().join("ran");
    for (name, start) in [("nothing", "exit 0"), ("waiting", "(sleep 30) & exit 0")] {
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Service]\nType=forking\nPIDFile={0}/{name}.pid\nTimeoutStartSec=60\n\
                 ExecStart=/bin/sh -c '{start}'\n\
                 ExecStopPost=/bin/sh -c 'echo {name}-post >> {1}'\n",
                tree.path().display(),
                ran.display()
            ),
        );
    }
    let control = tree.path().join("control");
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().expect("utf-8 path"),
            "nothing.service",
            "waiting.service",
        ],
    );
    let failed = wait_for(Duration::from_secs(10), || {
        let (_, out) = common::ctl(
            &control,
            &["show", "-p", "ActiveState,Result", "nothing.service"],
        );
        (out == "Result=protocol\nActiveState=failed\n").then_some(())
    });
    assert!(failed.is_some(), "{}", flint.log());
    assert_eq!(lines(&ran), ["nothing-post"], "{}", flint.log());
    let (_, out) = common::ctl(&control, &["show", "-p", "ActiveState", "waiting.service"]);
    assert_eq!(out, "ActiveState=activating\n", "{}", flint.log());
}

#[test]
fn timeouts_stops_and_notifications_end_services_as_systemd_ends_them() {
    // Each unit here ran under systemd 252's user manager with the same
    // commands, and ended as the test expects.
    if !common::require("python3", "the notify services are a Python script") {
        return;
    }
    let tree = Tree::new();
    let ran = tree.path().join("ran");
    let notify = tree.write(
        "notify.py",
        "import os, socket, sys, time\n\
         def send(msg):\n\
         \x20   s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         \x20   a = os.environ['NOTIFY_SOCKET']\n\
         \x20   s.sendto(msg.encode(), '\\0' + a[1:] if a.startswith('@') else a)\n\
         for arg in sys.argv[1:]:\n\
         \x20   if arg.startswith('s:'): time.sleep(float(arg[2:]))\n\
         \x20   elif arg == 'forever': time.sleep(1000)\n\
         \x20   else: send(arg.replace(',', '\\n'))\n",
    );
    let n = format!("/usr/bin/python3 {}", notify.display());
    let r = ran.display().to_string();
    let pid_file = tree.path().join("dead.pid");
    let units = [
        // EXTEND_TIMEOUT_USEC= only ever lengthens a timeout: not the
        // running service's (it has none), not a longer start timeout.
        ("ext-running", format!("Type=notify\nExecStart={n} READY=1 s:0.2 EXTEND_TIMEOUT_USEC=500000 forever")),
        ("ext-short", format!("Type=notify\nTimeoutStartSec=30\nExecStart={n} EXTEND_TIMEOUT_USEC=500000 forever")),
        // WATCHDOG_USEC= replaces WatchdogSec=, or sets a watchdog.
        ("wd-override", format!("Type=notify\nWatchdogSec=2\nExecStart={n} READY=1,WATCHDOG_USEC=30000000 forever")),
        ("wd-usec", format!("Type=notify\nExecStart={n} READY=1,WATCHDOG_USEC=700000 forever")),
        // ExecStopPost= has TimeoutStopSec=, then the final kill.
        ("posthang", format!("TimeoutStopSec=1\nExecStart=/bin/sleep 30\nExecStopPost=/bin/sh -c 'trap \"\" TERM; echo posthang-post >> {r}; sleep 30'")),
        // A main process the stop kills uncleanly fails the service.
        ("stopkill", "KillSignal=SIGKILL\nExecStart=/bin/sleep 30".to_string()),
        // A failed ExecStop=/ExecStopPost= ends its list.
        ("multistop", format!("ExecStart=/bin/sleep 30\n\
            ExecStop=/bin/sh -c 'echo ms-s1 >> {r}; exit 3'\nExecStop=/bin/sh -c 'echo ms-s2 >> {r}'\n\
            ExecStopPost=/bin/sh -c 'echo ms-p1 >> {r}; exit 4'\nExecStopPost=/bin/sh -c 'echo ms-p2 >> {r}'")),
        // STOPPING=1 starts the stop timeout.
        ("stopping", format!("Type=notify\nTimeoutStopSec=1\nExecStart={n} READY=1 s:0.3 STOPPING=1 forever")),
        // A stop while ExecStartPre=/ExecStartPost= runs: no ExecStop=,
        // and the command killed by SIGTERM fails the service.
        ("sipost", format!("ExecStart=/bin/sleep 30\nExecStartPost=/bin/sleep 30\n\
            ExecStop=/bin/sh -c 'echo sipost-stop >> {r}'\nExecStopPost=/bin/sh -c 'echo sipost-post >> {r}'")),
        ("sipre", format!("ExecStartPre=/bin/sleep 30\nExecStart=/bin/sleep 30\nExecStop=/bin/sh -c 'echo sipre-stop >> {r}'")),
        // A reload has TimeoutStartSec=.
        ("relto", "TimeoutStartSec=1\nExecStart=/bin/sleep 30\nExecReload=/bin/sleep 30".to_string()),
        // The `-` prefix of the oneshot command that failed, and of one
        // that could not run.
        ("osdash", format!("Type=oneshot\nExecStart=/bin/true\nExecStart=-/bin/sh -c 'exit 3'\nExecStart=/bin/sh -c 'echo od3 >> {r}'")),
        ("execdash", "Type=exec\nExecStart=-/nonexistent/binary".to_string()),
        // TimeoutStartFailureMode=abort sends WatchdogSignal= (SIGABRT).
        ("abort", "Type=notify\nTimeoutStartSec=1\nTimeoutStartFailureMode=abort\nExecStart=/bin/sleep 30".to_string()),
        // ExecStopPost= has TimeoutStopSec= however it is reached (here
        // after a oneshot failed).
        ("osposthang", "Type=oneshot\nTimeoutStopSec=1\nExecStart=/bin/sh -c 'exit 2'\nExecStopPost=/bin/sh -c 'trap \"\" TERM; sleep 30'".to_string()),
        // A PIDFile= naming a process that is gone is no main process.
        ("deadpid", format!("Type=forking\nPIDFile={0}\nExecStart=/bin/sh -c 'sleep 300 & echo $$$$ > {0}; exit 0'", pid_file.display())),
    ];
    for (name, body) in &units {
        tree.write(&format!("{name}.service"), &format!("[Service]\n{body}\n"));
    }
    // Restarts into the start limit keep the result that led to them; a
    // restart counts in NRestarts= once it happens, not while it waits.
    tree.write(
        "limited.service",
        "[Unit]\nStartLimitBurst=3\nStartLimitIntervalSec=30\n\
         [Service]\nRestart=always\nRestartSec=100ms\nExecStart=/bin/sh -c 'exit 1'\n",
    );
    tree.write(
        "waiting.service",
        "[Service]\nRestart=on-failure\nRestartSec=60\nExecStart=/bin/sh -c 'exit 1'\n",
    );
    let control = tree.path().join("control");
    let mut args = vec!["--control", control.to_str().expect("utf-8 path")];
    let names: Vec<String> = units.iter().map(|(n, _)| format!("{n}.service")).collect();
    args.extend(names.iter().map(String::as_str));
    args.extend(["limited.service", "waiting.service"]);
    let began = std::time::Instant::now();
    let flint = Flint::run(&tree, &args);
    let show = |unit: &str| {
        let (_, out) = common::ctl(
            &control,
            &[
                "show",
                "-p",
                "ActiveState,SubState,Result",
                &format!("{unit}.service"),
            ],
        );
        out.replace('\n', " ").trim().to_string()
    };
    let is = |unit: &str, want: &str| show(unit) == want;
    let up = wait_for(Duration::from_secs(10), || {
        (is(
            "sipost",
            "Result=success ActiveState=activating SubState=start-post",
        ) && is(
            "sipre",
            "Result=success ActiveState=activating SubState=start-pre",
        ) && ["posthang", "stopkill", "multistop", "relto"]
            .iter()
            .all(|u| is(u, "Result=success ActiveState=active SubState=running")))
        .then_some(())
    });
    assert!(up.is_some(), "{}", flint.log());
    for unit in ["posthang", "stopkill", "multistop", "sipost", "sipre"] {
        let (code, out) = common::ctl(
            &control,
            &["stop", "--no-block", &format!("{unit}.service")],
        );
        assert_eq!(code, 0, "{out}");
    }
    let (code, out) = common::ctl(&control, &["reload", "relto.service"]);
    assert_eq!(code, 1, "the reload timed out: {out}");
    assert_eq!(
        show("ext-short"),
        "Result=success ActiveState=activating SubState=start",
        "{}",
        flint.log()
    );
    let end = [
        (
            "wd-usec",
            "Result=watchdog ActiveState=failed SubState=failed",
        ),
        (
            "posthang",
            "Result=timeout ActiveState=failed SubState=failed",
        ),
        (
            "stopkill",
            "Result=signal ActiveState=failed SubState=failed",
        ),
        (
            "multistop",
            "Result=exit-code ActiveState=failed SubState=failed",
        ),
        (
            "stopping",
            "Result=timeout ActiveState=failed SubState=failed",
        ),
        ("sipost", "Result=signal ActiveState=failed SubState=failed"),
        ("sipre", "Result=signal ActiveState=failed SubState=failed"),
        (
            "relto",
            "Result=success ActiveState=active SubState=running",
        ),
        (
            "osdash",
            "Result=success ActiveState=inactive SubState=dead",
        ),
        (
            "execdash",
            "Result=success ActiveState=inactive SubState=dead",
        ),
        ("abort", "Result=timeout ActiveState=failed SubState=failed"),
        (
            "ext-running",
            "Result=success ActiveState=active SubState=running",
        ),
        (
            "wd-override",
            "Result=success ActiveState=active SubState=running",
        ),
        (
            "deadpid",
            "Result=success ActiveState=activating SubState=start",
        ),
        (
            "limited",
            "Result=exit-code ActiveState=failed SubState=failed",
        ),
        (
            "osposthang",
            "Result=exit-code ActiveState=failed SubState=failed",
        ),
        (
            "waiting",
            "Result=exit-code ActiveState=activating SubState=auto-restart",
        ),
    ];
    let now = || {
        end.iter()
            .map(|(u, _)| format!("{u}: {}", show(u)))
            .collect::<Vec<_>>()
    };
    let want: Vec<String> = end.iter().map(|(u, s)| format!("{u}: {s}")).collect();
    // Past WatchdogSec=2, which WATCHDOG_USEC= replaced.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(began.elapsed()));
    let settled = wait_for(Duration::from_secs(15), || (now() == want).then_some(()));
    assert!(settled.is_some(), "{:#?}\n{}", now(), flint.log());
    let (_, out) = common::ctl(&control, &["show", "-p", "ExecMainStatus", "abort.service"]);
    assert_eq!(out, "ExecMainStatus=6\n", "SIGABRT: {}", flint.log());
    let (_, out) = common::ctl(
        &control,
        &[
            "show",
            "-p",
            "NRestarts",
            "limited.service",
            "waiting.service",
        ],
    );
    assert_eq!(out, "NRestarts=3\n\nNRestarts=0\n", "{}", flint.log());
    let mut got = lines(&ran);
    got.sort();
    assert_eq!(
        got,
        ["ms-p1", "ms-s1", "od3", "posthang-post", "sipost-post"],
        "{}",
        flint.log()
    );
    // A main pid that is gone is not waited for: the stop is at once.
    let (code, out) = common::ctl(&control, &["stop", "deadpid.service"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        show("deadpid"),
        "Result=success ActiveState=inactive SubState=dead",
        "{}",
        flint.log()
    );
}

/// The state letter of process `pid` (`Z` for a zombie), `None` once it is
/// gone.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn an_orphan_is_reaped_while_a_spawn_waits() {
    // A spawn waits in its child (the open of a FIFO as terminal) while a
    // process another unit left behind exits: flint, its subreaper, reaps it
    // at once instead of leaving a zombie for as long as the spawn waits.
    let tree = Tree::new();
    let tty = common::StuckTty::new(&tree);
    let pidfile = tree.path().join("orphan.pid");
    tree.write(
        "stuck.service",
        &format!(
            "[Service]\n{}ExecStartPre=/bin/true\nExecStart=/bin/sleep 1000\n",
            tty.settings()
        ),
    );
    tree.write(
        "orphan.service",
        &format!(
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nKillMode=none\n\
             ExecStart=/bin/sh -c 'sleep 1 & echo $! > {}'\n",
            pidfile.display()
        ),
    );
    let flint = Flint::run_until(
        &tree,
        &["stuck.service", "orphan.service"],
        "orphan.service",
    );
    let pid: i32 = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    })
    .unwrap_or_else(|| panic!("no orphan pid\n{}", flint.log()));
    // The orphan exits after a second; it must not stay a zombie.
    let gone = wait_for(Duration::from_secs(8), || {
        (process_state(pid).is_none()).then_some(())
    });
    let state = process_state(pid);
    let _reader = tty.release();
    assert!(
        gone.is_some(),
        "orphan {pid} still there (state {state:?}) while a spawn waits\n{}",
        flint.log()
    );
}

#[test]
fn a_control_command_whose_start_waits_holds_up_no_other_unit() {
    // `TTYPath=` names a FIFO: the command's open of its terminal, in the
    // child before exec, waits for a reader, as an exec from a stuck network
    // file system waits. Meanwhile every other unit is served.
    let tree = Tree::new();
    let tty = common::StuckTty::new(&tree);
    let port = common::free_port();
    tree.write(
        "stuck.service",
        &format!(
            "[Service]\n{}ExecStartPre=/bin/true\nExecStart=/bin/sleep 1000\n",
            tty.settings()
        ),
    );
    common::hello_socket(&tree, port);
    let flint = Flint::run_until(
        &tree,
        &["hello.socket", "stuck.service"],
        "hello.socket: listening",
    );
    for _ in 0..3 {
        assert_eq!(common::exchange(port, b""), "hello\n", "{}", flint.log());
    }
    // A reader lets the open through; a FIFO is no terminal, so the command
    // fails, and says so.
    let _reader = tty.release();
    assert!(
        flint.wait_log("stuck.service: Failed with result"),
        "{}",
        flint.log()
    );
    assert!(
        flint.log().contains("failed to start /bin/true"),
        "{}",
        flint.log()
    );
}

#[test]
fn a_service_its_condition_skips_keeps_its_socket_and_the_poll_limit_bounds_the_loop() {
    // An Accept=no socket with traffic queued triggers its service, which a
    // condition skips; the socket listens again, still readable, and
    // triggers it again. As in systemd (v255's unit_start() checks
    // conditions before the start limit), a skipped start counts nothing
    // toward the start limit: the service is never failed for it, and the
    // socket's poll limit (PollLimitBurst=, 10 in 2 s by default) pauses
    // the listener, so the loop is bounded.
    let tree = Tree::new();
    let sock = tree.path().join("t.sock");
    tree.write(
        "t.socket",
        &format!("[Socket]\nListenStream={}\n", sock.display()),
    );
    tree.write(
        "t.service",
        "[Unit]\nConditionPathExists=/nonexistent/flint-test\n[Service]\nExecStart=/bin/true\n",
    );
    let flint = Flint::run_until(&tree, &["t.socket"], "t.socket: listening");
    let mut client = wait_for(Duration::from_secs(5), || {
        std::os::unix::net::UnixStream::connect(&sock).ok()
    })
    .unwrap_or_else(|| panic!("connect to {}:\n{}", sock.display(), flint.log()));
    std::io::Write::write_all(&mut client, b"queued\n").unwrap();
    assert!(flint.wait_log("poll limit hit, pausing"), "{}", flint.log());
    let log = flint.log();
    assert!(
        log.matches("condition check resulted in it being skipped")
            .count()
            >= 2,
        "{log}"
    );
    assert!(!log.contains("Start request repeated too quickly"), "{log}");
    assert!(!log.contains("service-start-limit-hit"), "{log}");
}

/// Owns a name on a bus after a delay, then stays: a `Type=dbus` daemon in
/// a few lines (raw D-Bus: EXTERNAL auth, Hello, RequestName).
///   python3 owner.py SOCKET NAME DELAY
const BUS_OWNER: &str = r#"
import os, socket, struct, sys, time
def pad(b, n): return b + b"\0" * (-len(b) % n)
def field(code, sig, val):
    b = bytes([code, 1]) + sig.encode() + b"\0"
    if sig == "g":
        return b + bytes([len(val)]) + val.encode() + b"\0"
    return pad(b, 4) + struct.pack("<I", len(val)) + val.encode() + b"\0"
def call(serial, member, sig="", body=b""):
    fields = b""
    for f in [field(1, "o", "/org/freedesktop/DBus"), field(2, "s", "org.freedesktop.DBus"),
              field(3, "s", member), field(6, "s", "org.freedesktop.DBus")] + ([field(8, "g", sig)] if sig else []):
        fields = pad(fields, 8) + f
    head = struct.pack("<4sIII", b"l\x01\x00\x01", len(body), serial, len(fields)) + fields
    return pad(head, 8) + body
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode() + b"\r\n")
assert s.recv(4096).startswith(b"OK ")
s.sendall(b"BEGIN\r\n" + call(1, "Hello"))
time.sleep(float(sys.argv[3]))
name = sys.argv[2].encode()
s.sendall(call(2, "RequestName", "su", pad(struct.pack("<I", len(name)) + name + b"\0", 4) + struct.pack("<I", 0)))
time.sleep(1000)
"#;

/// A private bus that lets anyone own and call anything; killed on drop.
struct PrivateBus(std::process::Child, std::path::PathBuf);

impl PrivateBus {
    fn start(tree: &Tree) -> Option<PrivateBus> {
        if !common::require("dbus-daemon", "a private bus for Type=dbus") {
            return None;
        }
        let sock = tree.path().join("bus.sock");
        let conf = tree.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>custom</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\
                 <policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>\
                 <allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy></busconfig>\n",
                sock.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        let up = wait_for(Duration::from_secs(10), || sock.exists().then_some(()));
        assert!(up.is_some(), "the private bus did not come up");
        Some(PrivateBus(child, sock))
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.1.display())
    }
}

/// `flint run` with both bus addresses pointing at `address`.
fn flint_on_bus(tree: &Tree, units: &[&str], address: &str) -> Flint {
    Flint::run_env(
        tree,
        units,
        &[
            ("DBUS_SYSTEM_BUS_ADDRESS", Path::new(address)),
            ("DBUS_SESSION_BUS_ADDRESS", Path::new(address)),
        ],
    )
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_dbus_service_is_started_once_its_name_is_on_the_bus() {
    let tree = Tree::new();
    let Some(bus) = PrivateBus::start(&tree) else {
        return;
    };
    let owner = tree.path().join("owner.py");
    std::fs::write(&owner, BUS_OWNER).unwrap();
    let out = tree.path().join("seen");
    // The daemon takes its name a second after it started; the unit
    // ordered after it asks the bus whether the name is there.
    tree.write(
        "bus.service",
        &format!(
            "[Service]\nType=dbus\nBusName=org.example.FlintTest\n\
             ExecStart=python3 {} {} org.example.FlintTest 1\n",
            owner.display(),
            bus.1.display()
        ),
    );
    tree.write(
        "after.service",
        &format!(
            "[Unit]\nWants=bus.service\nAfter=bus.service\n[Service]\nType=oneshot\n\
             ExecStart=/bin/sh -c 'dbus-send --bus={} --print-reply --dest=org.freedesktop.DBus \
             /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.example.FlintTest > {}'\n",
            bus.address(),
            out.display()
        ),
    );
    let address = bus.address();
    let flint = flint_on_bus(&tree, &["after.service"], &address);
    let seen = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|s| s.contains("boolean"))
    });
    let seen = seen.unwrap_or_else(|| panic!("after.service did not run\n{}", flint.log()));
    assert!(
        seen.contains("boolean true"),
        "after.service ran before bus.service had its name: {seen}\n{}",
        flint.log()
    );
    assert!(
        flint
            .log()
            .contains("bus.service: org.example.FlintTest is on the bus"),
        "{}",
        flint.log()
    );
}

#[test]
fn a_dbus_service_without_a_bus_runs_as_simple_and_says_so() {
    let tree = Tree::new();
    let out = tree.path().join("ran");
    tree.write(
        "bus.service",
        &format!(
            "[Service]\nType=dbus\nBusName=org.example.FlintTest\n\
             ExecStart=/bin/sh -c 'echo ran > {}; exec sleep 1000'\n",
            out.display()
        ),
    );
    let nowhere = format!("unix:path={}", tree.path().join("no-bus").display());
    let flint = flint_on_bus(&tree, &["bus.service"], &nowhere);
    let ran = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).ok().filter(|s| s == "ran\n")
    });
    assert!(ran.is_some(), "{}", flint.log());
    assert!(
        flint.wait_log("bus.service: Type=dbus: cannot ask the bus for org.example.FlintTest"),
        "{}",
        flint.log()
    );
    let check = std::process::Command::new(common::flint_bin())
        .args(["check", "--unit-dir"])
        .arg(tree.path())
        .arg("bus.service")
        .output()
        .expect("flint check");
    let text = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{text}");
}

#[test]
fn a_dbus_service_that_exits_before_taking_its_name_fails() {
    let tree = Tree::new();
    let Some(bus) = PrivateBus::start(&tree) else {
        return;
    };
    tree.write(
        "bus.service",
        "[Service]\nType=dbus\nBusName=org.example.Never\nExecStart=/bin/sleep 0.3\n",
    );
    let address = bus.address();
    let flint = flint_on_bus(&tree, &["bus.service"], &address);
    assert!(
        flint.wait_log(
            "bus.service: main process exited before it took its bus name (exited with status 0), result 'protocol'"
        ),
        "{}",
        flint.log()
    );
    assert!(!flint.log().contains("is on the bus"), "{}", flint.log());
}

#[test]
fn a_bus_that_never_answers_holds_a_dbus_service_up_for_one_read_timeout() {
    let tree = Tree::new();
    // Accepts connections and never says a word.
    let sock = tree.path().join("mute.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in listener.incoming().take(30) {
            conns.push(c);
        }
    });
    let out = tree.path().join("ran");
    tree.write(
        "bus.service",
        &format!(
            "[Service]\nType=dbus\nBusName=org.example.Mute\n\
             ExecStart=/bin/sh -c 'echo ran > {}; exec sleep 1000'\n",
            out.display()
        ),
    );
    let address = format!("unix:path={}", sock.display());
    let flint = flint_on_bus(&tree, &["bus.service"], &address);
    // One 5 s read timeout, not one per retry: the service counts as
    // started, with the reason.
    assert!(
        flint.wait_log("bus.service: Type=dbus: cannot ask the bus for org.example.Mute"),
        "{}",
        flint.log()
    );
    drop(flint);
    drop(held);
}

#[test]
fn exit_statuses_are_seen_when_flint_starts_with_sigchld_ignored() {
    // A parent may start flint with SIGCHLD ignored (a shell's `trap ''
    // CHLD`), which exec keeps: the kernel would then reap flint's children
    // itself, and their exit statuses (and flint's orphan reaping) would be
    // lost. flint puts SIGCHLD back to its default before anything runs.
    use std::os::unix::process::CommandExt;
    let tree = Tree::new();
    tree.write(
        "three.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\n",
    );
    let mut cmd = std::process::Command::new(common::flint_bin());
    cmd.arg("run")
        .arg("--unit-dir")
        .arg(tree.path())
        .arg("three.service");
    // SAFETY: signal(2) is async-signal-safe; it only changes the
    // disposition the new program inherits.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        });
    }
    let flint = Flint::run_command_until(cmd, "unit(s) running");
    assert!(
        flint.wait_log("three.service: failed (exited with status 3)"),
        "the exit status of three.service was not seen\n{}",
        flint.log()
    );
}

/// Runs `flint run --unit-dir TREE ARGS...` and waits (at most `limit`)
/// for it to end by itself: its exit code, or `None` if it kept running
/// (then it is stopped with SIGTERM); and its log.
fn run_until_exit(tree: &Tree, args: &[&str], limit: Duration) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(common::flint_bin());
    cmd.arg("run").arg("--unit-dir").arg(tree.path()).args(args);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let ended = wait_for(limit, || child.try_wait().ok().flatten());
    if ended.is_none() {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(child.id().cast_signed(), libc::SIGTERM);
        }
    }
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    (ended.and_then(|s| s.code()), log)
}

#[test]
fn success_and_failure_actions_end_flint_with_the_units_status() {
    let tree = Tree::new();
    tree.write("sleeper.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    // FailureAction=exit: flint stops the rest and exits with the main
    // process's status.
    tree.write(
        "job.service",
        "[Unit]\nFailureAction=exit\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'sleep 0.3; exit 3'\n",
    );
    let (code, log) = run_until_exit(
        &tree,
        &["sleeper.service", "job.service"],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(3), "{log}");
    assert!(
        log.contains("job.service: FailureAction=exit: flint exits with status 3"),
        "{log}"
    );
    assert!(log.contains("flint: stopping"), "{log}");
    // SuccessAction=exit-force (Debian's systemd-exit.service, started by
    // itself): flint is no container's init here, so its units stop
    // first instead of outliving it.
    tree.write(
        "force.service",
        "[Unit]\nSuccessAction=exit-force\n[Service]\nType=oneshot\nExecStart=/bin/sleep 0.3\n",
    );
    let (code, log) = run_until_exit(
        &tree,
        &["sleeper.service", "force.service"],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("sleeper.service: stopped"), "{log}");
    // SuccessAction= with its own exit status.
    tree.write(
        "done.service",
        "[Unit]\nSuccessAction=exit\nSuccessActionExitStatus=7\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
    );
    let (code, log) = run_until_exit(
        &tree,
        &["sleeper.service", "done.service"],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(7), "{log}");
    // A start a condition skips ran nothing: no action.
    tree.write(
        "skipped.service",
        "[Unit]\nSuccessAction=exit\nConditionPathExists=/nonexistent/flint\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
    );
    let (code, log) = run_until_exit(
        &tree,
        &["sleeper.service", "skipped.service"],
        Duration::from_secs(2),
    );
    assert_eq!(code, None, "flint ended:\n{log}");
    assert!(
        log.contains("skipped.service: condition check resulted in it being skipped"),
        "{log}"
    );
    // A system action where flint is not PID 1: refused, flint runs on.
    tree.write(
        "reboot.service",
        "[Unit]\nSuccessAction=reboot-force\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
    );
    let (code, log) = run_until_exit(
        &tree,
        &["sleeper.service", "reboot.service"],
        Duration::from_secs(2),
    );
    assert_eq!(code, None, "flint ended:\n{log}");
    assert!(
        log.contains("SuccessAction=reboot-force ignored: flint is not this system's init"),
        "{log}"
    );
}

/// `ConditionVirtualization=private-users` holds in a user namespace and
/// only there, as systemd's `running_in_userns()` says.
#[test]
fn private_users_holds_in_a_user_namespace_only() {
    if !common::require("unshare", "a user namespace") {
        return;
    }
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    tree.write(
        "p.service",
        &format!("[Unit]\nConditionVirtualization=private-users\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo p >> {l}'\n"),
    );
    tree.write(
        "q.service",
        &format!("[Unit]\nConditionVirtualization=!private-users\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo q >> {l}'\n"),
    );
    let mut flint = Flint::run(&tree, &["p.service", "q.service"]);
    assert!(flint.wait_log("q.service: Deactivated"), "{}", flint.log());
    assert!(
        flint.wait_log("p.service: condition check resulted in it being skipped"),
        "{}",
        flint.log()
    );
    flint.stop();
    assert_eq!(lines(&log), ["q"]);

    ran_and_skipped(&tree, &["unshare", "--user", "--map-root-user"], "p", "q");
}

/// `wrapper` (a program and its arguments) runs `flint run` on the tree's
/// `RAN.service` and `SKIPPED.service`; the first runs and writes `RAN` to
/// the tree's `log`, the second's condition skips it.
fn ran_and_skipped(tree: &Tree, wrapper: &[&str], ran: &str, skipped: &str) {
    let log = tree.path().join("log");
    let _ = std::fs::remove_file(&log);
    let control = tree.path().join("control");
    let mut cmd = std::process::Command::new(wrapper[0]);
    cmd.args(&wrapper[1..])
        .arg(common::flint_bin())
        .arg("run")
        .arg("--control")
        .arg(&control)
        .arg("--unit-dir")
        .arg(tree.path())
        .args([format!("{ran}.service"), format!("{skipped}.service")]);
    let mut flint = Flint::run_command_until(cmd, "unit(s) running");
    assert!(
        flint.wait_log(&format!("{ran}.service: Deactivated")),
        "{}",
        flint.log()
    );
    assert!(
        flint.wait_log(&format!(
            "{skipped}.service: condition check resulted in it being skipped"
        )),
        "{}",
        flint.log()
    );
    flint.stop();
    assert_eq!(lines(&log), [ran]);
}

/// `ConditionCapability=` looks at flint's capability bounding set
/// (Debian's `chrony.service` asks for `CAP_SYS_TIME`): where flint runs
/// without it, as in a container that drops it, the unit is skipped.
#[test]
fn capability_conditions_follow_flints_bounding_set() {
    if !(common::require("setpriv", "a bounding set without CAP_SYS_TIME")
        && common::require_root("taking CAP_SYS_TIME out of the bounding set"))
    {
        return;
    }
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    tree.write(
        "t.service",
        &format!("[Unit]\nConditionCapability=CAP_SYS_TIME\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo t >> {l}'\n"),
    );
    tree.write(
        "u.service",
        &format!("[Unit]\nConditionCapability=!CAP_SYS_TIME\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo u >> {l}'\n"),
    );
    ran_and_skipped(&tree, &["setpriv", "--bounding-set", "-sys_time"], "u", "t");
}

/// A flint of an ordinary user without `$XDG_RUNTIME_DIR` keeps its notify
/// socket in a directory of its own (`$TMPDIR/flint-UID`), as its control
/// socket: a `$TMPDIR/flint` that another user made first (here root's)
/// left every `Type=notify` service of it without `NOTIFY_SOCKET`, timing
/// out its start.
/// A tree every user may read, with a `tmp/` open to all (sticky), for a
/// flint run as nobody; `None` (said why) where that cannot be done.
fn tree_for_nobody() -> Option<(Tree, std::path::PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    if !common::require_root("runs flint as another user (nobody)")
        || !common::require("setpriv", "runs flint as another user")
    {
        return None;
    }
    let tree = Tree::new();
    std::fs::set_permissions(tree.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tmp = tree.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    Some((tree, tmp))
}

/// `flint run UNIT` on `tree` as nobody, without `$XDG_RUNTIME_DIR` and
/// with `$TMPDIR` at `tmp`.
fn run_as_nobody(tree: &Tree, tmp: &Path, unit: &str, until: &str) -> Flint {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(common::flint_bin())
        .args(["run", "--unit-dir"])
        .arg(tree.path())
        .arg(unit)
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", tmp);
    Flint::run_command_until(cmd, until)
}

#[test]
fn notify_works_for_a_user_flint_without_a_runtime_directory() {
    let Some((tree, tmp)) = tree_for_nobody() else {
        return;
    };
    // Another user's flint was there first.
    std::fs::create_dir(tmp.join("flint")).unwrap();
    tree.write(
        "n.service",
        "[Service]\nType=notify\nNotifyAccess=all\nTimeoutStartSec=8\n\
         ExecStart=/bin/sh -c 'systemd-notify --ready; exec sleep 300'\n",
    );
    let flint = run_as_nobody(&tree, &tmp, "n.service", "n.service: ready");
    let log = flint.log();
    assert!(!log.contains("no NOTIFY_SOCKET"), "{log}");
    assert!(tmp.join("flint-65534/flint").is_dir(), "{log}");
}

/// A `$TMPDIR/flint-UID` that another user made first (to take the
/// sockets of the user's flint over) is said to be so.
#[test]
fn a_runtime_directory_of_another_user_is_said_to_be_so() {
    use std::os::unix::fs::PermissionsExt;
    let Some((tree, tmp)) = tree_for_nobody() else {
        return;
    };
    // root's, open to all: nobody's flint could use it, and so could others.
    let taken = tmp.join("flint-65534");
    std::fs::create_dir(&taken).unwrap();
    std::fs::set_permissions(&taken, std::fs::Permissions::from_mode(0o777)).unwrap();
    tree.write("s.service", "[Service]\nExecStart=/bin/sleep 100\n");
    let flint = run_as_nobody(&tree, &tmp, "s.service", "unit(s) running");
    assert!(
        flint.log().contains(&format!(
            "{} is not a directory of this user",
            taken.display()
        )),
        "{}",
        flint.log()
    );
}

/// A system unit with `Group=` and no `User=` gets its directories as
/// root's and that group's, as systemd gives them (Debian's squid has
/// `Group=proxy` and a 0775 `RuntimeDirectory=` where its workers, in
/// that group, bind their sockets).
#[test]
fn a_group_without_a_user_owns_the_units_directories() {
    if !common::require_root("makes directories below /run for another group") {
        return;
    }
    let Ok(Some(group)) = nix::unistd::Group::from_name("nogroup") else {
        eprintln!("skipped: no group nogroup");
        return;
    };
    let tree = Tree::new();
    let (flint, control) = common::run_with_control(&tree);
    let out = tree.path().join("out");
    let dir = format!("flint-test-group-{}", std::process::id());
    tree.write(
        "grp.service",
        &format!(
            "[Service]\nType=oneshot\nGroup=nogroup\nRuntimeDirectory={dir}\nRuntimeDirectoryMode=0775\n\
             ExecStart=/bin/sh -c 'stat -c \"%%u %%g %%a\" \"$RUNTIME_DIRECTORY\" > {}'\n",
            out.display()
        ),
    );
    let (code, text) = common::ctl(&control, &["start", "grp.service"]);
    assert_eq!(code, 0, "{text}\n{}", flint.log());
    let got = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).ok()
    })
    .unwrap_or_else(|| panic!("grp.service wrote nothing\n{}", flint.log()));
    assert_eq!(
        got.trim(),
        format!("0 {} 775", group.gid),
        "{}",
        flint.log()
    );
}
