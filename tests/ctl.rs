//! `flint ctl` against a running `flint run`: status with the service's own
//! `STATUS=`, listings, start/stop/restart, systemctl's exit codes, JSON.

mod common;

use common::main_pid;

use common::ctl;

use std::process::Command;
use std::time::Duration;

use common::{Flint, Tree, free_port, wait_for};

#[test]
fn status_list_stop_start_restart_with_systemctl_exit_codes() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let port = free_port();
    tree.write(
        "web.socket",
        &format!(
            "[Unit]\nDescription=web socket\n[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"
        ),
    );
    tree.write(
        "web@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo hi\n",
    );
    tree.write(
        "d.service",
        "[Unit]\nDescription=a notify daemon\n[Service]\nType=notify\nNotifyAccess=all\nExecStart=/bin/sh -c 'systemd-notify --ready --status=\"all good\"; exec sleep 1000'\n",
    );
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "web.socket",
            "d.service",
        ],
    );
    wait_for(Duration::from_secs(10), || {
        flint.log().contains("d.service: ready").then_some(())
    })
    .expect("d.service got ready");
    let (code, text) = ctl(&control, &["status", "d.service"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("d.service - a notify daemon")
            && text.contains("active")
            && text.contains("Status: \"all good\"")
            && text.contains("Main PID:"),
        "{text}"
    );
    let (code, text) = ctl(&control, &["--json", "list-units"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let names: Vec<&str> = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"web.socket") && names.contains(&"d.service"),
        "{names:?}"
    );
    // One line per listener, as `systemctl list-sockets`: LISTEN UNIT
    // ACTIVATES, the type with `--show-types`, the hint below.
    let (_, text) = ctl(&control, &["list-sockets"]);
    assert!(text.starts_with("LISTEN "), "{text}");
    let line = text.lines().find(|l| l.contains("web.socket"));
    assert_eq!(
        line.map(|l| l.split_whitespace().collect::<Vec<_>>()),
        // An `Accept=yes` socket activates no unit of its own: "-".
        Some(vec![
            format!("127.0.0.1:{port}").as_str(),
            "web.socket",
            "-"
        ]),
        "{text}"
    );
    assert!(
        text.ends_with(
            "\n1 sockets listed.\nPass --all to see loaded but inactive sockets, too.\n"
        ),
        "{text}"
    );
    let (_, text) = ctl(&control, &["list-sockets", "--show-types", "--no-legend"]);
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        [
            format!("127.0.0.1:{port}").as_str(),
            "Stream",
            "web.socket",
            "-"
        ],
        "{text}"
    );
    // And in status, with its kind, as systemctl shows it.
    let (_, text) = ctl(&control, &["status", "web.socket"]);
    assert!(
        text.contains(&format!("Listen: 127.0.0.1:{port} (Stream)")),
        "{text}"
    );
    let (code, _) = ctl(&control, &["status", "nope.service"]);
    assert_eq!(code, 4, "unknown unit: systemctl's 4");
    let (code, text) = ctl(&control, &["stop", "d.service"]);
    assert_eq!(code, 0, "{text}");
    let stopped = wait_for(Duration::from_secs(10), || {
        (ctl(&control, &["status", "d.service"]).0 == 3).then_some(())
    });
    assert!(stopped.is_some(), "a stopped service: status exits 3");
    assert_eq!(ctl(&control, &["start", "d.service"]).0, 0);
    wait_for(Duration::from_secs(10), || {
        (ctl(&control, &["status", "d.service"]).0 == 0).then_some(())
    })
    .expect("started again");
    let pid = |t: &str| {
        t.lines()
            .find_map(|l| l.trim().strip_prefix("Main PID: ").map(str::to_string))
    };
    let before = pid(&ctl(&control, &["status", "d.service"]).1);
    assert_eq!(ctl(&control, &["restart", "d.service"]).0, 0);
    let after = wait_for(Duration::from_secs(10), || {
        pid(&ctl(&control, &["status", "d.service"]).1).filter(|p| Some(p) != before.as_ref())
    });
    assert!(after.is_some(), "restart gave a new main pid");
}

#[test]
fn reload_runs_exec_reload_or_the_notify_reload_handshake() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let log = tree.path().join("log");
    tree.write(
        "r.service",
        &format!("[Service]\nExecStart=/bin/sleep 1000\nExecReload=/bin/sh -c 'echo reload $MAINPID >> {}'\n", log.display()),
    );
    // A notify-reload daemon: on SIGHUP it sends RELOADING=1, then READY=1.
    tree.write(
        "nr.py",
        &format!(
            "import os, signal, socket, time\nlog = open('{}', 'a')\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ndef send(m): s.sendto(m, os.environ['NOTIFY_SOCKET'])\ndef hup(*_):\n    send(b'RELOADING=1\\nMONOTONIC_USEC=%d' % (time.monotonic_ns() // 1000))\n    log.write('hup\\n'); log.flush()\n    send(b'READY=1')\nsignal.signal(signal.SIGHUP, hup)\nsend(b'READY=1')\nwhile True: time.sleep(1)\n",
            log.display()
        ),
    );
    tree.write(
        "nr.service",
        &format!(
            "[Service]\nType=notify-reload\nExecStart=/usr/bin/python3 {}\n",
            tree.path().join("nr.py").display()
        ),
    );
    tree.write("none.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    // A reload that fails (a typo in the daemon's configuration).
    tree.write(
        "bad.service",
        "[Service]\nExecStart=/bin/sleep 1000\nExecReload=/bin/false\n",
    );
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "r.service",
            "nr.service",
            "none.service",
            "bad.service",
        ],
    );
    wait_for(Duration::from_secs(15), || {
        flint.log().contains("nr.service: ready").then_some(())
    })
    .expect("nr ready");
    assert_eq!(ctl(&control, &["reload", "r.service"]).0, 0);
    // Answered once ExecReload= has run.
    assert!(
        std::fs::read_to_string(&log).is_ok_and(|t| t.starts_with("reload ")),
        "reload waited for ExecReload="
    );
    assert_eq!(ctl(&control, &["reload", "nr.service"]).0, 0);
    let lines = wait_for(Duration::from_secs(15), || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        (t.lines().count() >= 2).then_some(t)
    })
    .expect("both reloads ran");
    assert!(
        lines
            .lines()
            .any(|l| l.starts_with("reload ") && l.len() > "reload ".len()),
        "ExecReload= got $MAINPID: {lines}"
    );
    assert!(lines.lines().any(|l| l == "hup"), "{lines}");
    wait_for(Duration::from_secs(10), || {
        flint.log().contains("nr.service: reloaded").then_some(())
    })
    .expect("READY=1 ends the reload");
    let (code, text) = ctl(&control, &["reload", "none.service"]);
    assert_ne!(code, 0);
    assert!(text.contains("Job type reload is not applicable"), "{text}");
    // A failed reload leaves the service running and its result alone
    // (systemd keeps it apart, as the reload's): a clean stop afterwards
    // ends inactive, not failed.
    // `reload` waits for the reload and fails with it, as systemctl's does.
    let (code, text) = ctl(&control, &["reload", "bad.service"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("Job for bad.service failed.\nSee \"flint ctl status bad.service\""),
        "{text}"
    );
    assert!(flint.wait_log("bad.service: ExecReload= failed"));
    let (code, text) = ctl(&control, &["is-active", "bad.service"]);
    assert_eq!((code, text.trim()), (0, "active"));
    assert_eq!(ctl(&control, &["stop", "bad.service"]).0, 0);
    let (_, text) = ctl(&control, &["--json", "status", "bad.service"]);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        (&v["units"][0]["state"], &v["units"][0]["result"]),
        (&"inactive".into(), &"success".into()),
        "{text}"
    );
}

#[test]
fn service_output_reaches_the_log_status_and_ctl_logs_and_kill_signals_it() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    tree.write(
        "chatty.service",
        "[Unit]\nDescription=talks\n[Service]\nExecStart=/bin/sh -c 'echo hello-out; echo hello-err >&2; exec sleep 1000'\n",
    );
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "chatty.service"],
    );
    assert!(flint.wait_log("hello-err"), "{}", flint.log());
    let log = flint.log();
    let line = log
        .lines()
        .find(|l| l.contains("hello-out"))
        .expect("stdout line in flint's log");
    assert!(line.contains("chatty.service["), "unit and pid: {line}");
    let (code, text) = ctl(&control, &["logs", "chatty.service"]);
    assert_eq!(code, 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().any(|l| l.ends_with("hello-out")), "{text}");
    assert!(
        lines[0].contains("chatty.service[") && lines[0].contains('T'),
        "{text}"
    );
    let (_, last) = ctl(&control, &["logs", "-n", "1", "chatty.service"]);
    assert_eq!(last.lines().count(), 1, "{last}");
    let (_, status) = ctl(&control, &["status", "chatty.service"]);
    assert!(
        status.contains("hello-out") && status.contains("hello-err"),
        "{status}"
    );
    // kill: SIGKILL to the process group; the service fails.
    let (code, text) = ctl(&control, &["kill", "--signal", "KILL", "chatty.service"]);
    assert_eq!(code, 0, "{text}");
    let failed = wait_for(Duration::from_secs(10), || {
        let (code, s) = ctl(&control, &["status", "chatty.service"]);
        (code == 3 && s.contains("failed")).then_some(s)
    });
    assert!(failed.is_some(), "killed service is failed");
    let (code, text) = ctl(&control, &["kill", "--signal", "NOPE", "chatty.service"]);
    assert_eq!(code, 1, "{text}");
}

#[test]
fn json_log_format_gives_one_object_per_line_with_unit_and_pid() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    tree.write(
        "j.service",
        "[Service]\nExecStart=/bin/sh -c 'echo json-line; exec sleep 1000'\n",
    );
    let flint = Flint::run(
        &tree,
        &[
            "--log-format",
            "json",
            "--control",
            control.to_str().unwrap(),
            "j.service",
        ],
    );
    assert!(flint.wait_log("json-line"), "{}", flint.log());
    let log = flint.log();
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    let entry: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "json-line")
        .expect("the service's line");
    assert_eq!(entry["unit"], "j.service");
    assert!(entry["pid"].as_i64().is_some_and(|p| p > 1), "{entry}");
}

#[test]
fn another_user_is_refused_by_the_control_socket() {
    if !common::require_root("runs flint ctl as another user (nobody)") {
        return;
    }
    if !common::require("setpriv", "runs a command as another user") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tree = Tree::new();
    std::fs::set_permissions(tree.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let control = tree.path().join("control");
    tree.write("s.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let _flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "s.service"],
    );
    let as_nobody = || {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(common::flint_bin())
            .arg("ctl")
            .arg("--control")
            .arg(&control)
            .args(["stop", "s.service"])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The socket is 0600: the kernel refuses the connection.
    let (code, err) = as_nobody();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    // Opened up, flint itself refuses by the peer's credentials.
    std::fs::set_permissions(&control, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, err) = as_nobody();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("permission denied: only root and flint's own user may control it"),
        "{err}"
    );
    // Also a request that passes fds (systemd-run --pipe's stdio): taken
    // from nobody it is not, and the refusal is read all the same.
    let link = common::link_as(&tree, "systemd-run");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&link)
        .args(["--pipe", "/bin/true"])
        .env("FLINT_CONTROL", &control)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("permission denied: only root and flint's own user may control it"),
        "{err}"
    );
    let (code, status) = ctl(&control, &["status", "s.service"]);
    assert_eq!(code, 0, "the service still runs: {status}");
}

/// A second `flint run --user` in the same runtime directory is refused
/// (one user manager per user, as systemd --user): it would bind the same
/// `%t` sockets again and leave the first one's listeners unreachable.
/// With its own `--control` it runs.
#[test]
fn a_second_user_manager_in_the_same_runtime_directory_is_refused() {
    let tree = Tree::new();
    let runtime = tree.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    tree.write("u.socket", "[Socket]\nListenStream=%t/u.sock\n");
    tree.write("u.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let first = Flint::run_env(
        &tree,
        &["--user", "u.socket"],
        &[("XDG_RUNTIME_DIR", &runtime)],
    );
    let node = || {
        std::fs::metadata(runtime.join("u.sock")).map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    };
    let before = node().expect("u.sock listens");
    let mut second = Command::new(common::flint_bin())
        .args(["run", "--user", "--unit-dir"])
        .arg(tree.path())
        .arg("u.socket")
        .env("XDG_RUNTIME_DIR", &runtime)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for(Duration::from_secs(10), || second.try_wait().ok().flatten());
    if status.is_none() {
        let _ = second.kill();
    }
    let out = second.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(status.is_some(), "the second flint ends by itself: {err}");
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("another flint runs as this user's manager"),
        "{err}"
    );
    assert_eq!(
        node().ok(),
        Some(before),
        "the first flint's socket is left alone"
    );
    std::os::unix::net::UnixStream::connect(runtime.join("u.sock")).expect("still served");
    drop(first);
}

/// Clients that hold the control socket until flint runs out of fds:
/// the failing accept backs off and says so once, instead of spinning,
/// and flint answers again once they are gone.
#[test]
fn the_control_socket_backs_off_when_flint_runs_out_of_fds() {
    let tree = Tree::new();
    tree.write("keep.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let control = tree.path().join("control");
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=64:64")
        .arg(common::flint_bin())
        .args(["run", "--unit-dir"])
        .arg(tree.path())
        .arg("--control")
        .arg(&control)
        .arg("keep.service");
    if !common::require("prlimit", "a low fd limit for flint") {
        return;
    }
    let mut flint = Flint::run_command_until(cmd, "unit(s) running");
    let idle: Vec<std::os::unix::net::UnixStream> = (0..100)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(&control).ok())
        .collect();
    assert!(
        flint.wait_log("flint: control socket: accept failed"),
        "{}",
        flint.log()
    );
    assert_eq!(
        flint.log().matches("control socket: accept failed").count(),
        1,
        "said once"
    );
    drop(idle);
    let answered = wait_for(Duration::from_secs(15), || {
        (ctl(&control, &["is-active", "keep.service"]).1 == "active\n").then_some(())
    });
    assert!(answered.is_some(), "{}", flint.log());
    let _ = flint.stop();
}

/// `flint ctl kill X.socket` signals the socket's command that runs (a
/// stuck `ExecStartPre=`), as systemctl kill does; before, a socket was
/// "not loaded" to it. A socket has no main process.
#[test]
fn kill_reaches_the_command_of_a_socket() {
    let tree = Tree::new();
    let port = free_port();
    let (mut flint, control) = common::run_with_control(&tree);
    tree.write(
        "stuck.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nExecStartPre=/bin/sleep 100\n"),
    );
    tree.write("stuck.service", "[Service]\nExecStart=/bin/true\n");
    let (code, out) = ctl(&control, &["start", "--no-block", "stuck.socket"]);
    assert_eq!(code, 0, "{out}");
    let starting = wait_for(Duration::from_secs(10), || {
        (ctl(&control, &["is-active", "stuck.socket"]).1 == "activating\n").then_some(())
    });
    assert!(starting.is_some(), "{}", flint.log());
    let (code, out) = ctl(&control, &["kill", "--kill-whom=main", "stuck.socket"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("No main process to kill"), "{out}");
    // (Again until it lands: the command may still be on its way to exec.)
    let killed = wait_for(Duration::from_secs(10), || {
        let (code, out) = ctl(&control, &["kill", "stuck.socket"]);
        assert_eq!(code, 0, "{out}");
        std::thread::sleep(Duration::from_millis(100));
        flint
            .log()
            .contains("stuck.socket: ExecStartPre=/bin/sleep failed: killed by signal 15")
            .then_some(())
    });
    assert!(
        killed.is_some(),
        "the killed command failed the socket's start:\n{}",
        flint.log()
    );
    let _ = flint.stop();
}

#[test]
fn user_mode_control_socket_lives_under_xdg_runtime_dir() {
    let tree = Tree::new();
    let runtime = tree.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    tree.write("u.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let _flint = Flint::run_env(
        &tree,
        &["--user", "u.service"],
        &[("XDG_RUNTIME_DIR", &runtime)],
    );
    assert!(runtime.join("flint/control").exists());
    let status = || {
        let out = Command::new(common::flint_bin())
            .args(["ctl", "--user", "status", "u.service"])
            .env("XDG_RUNTIME_DIR", &runtime)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // The control socket may answer before the service's exec is done.
    let running = common::wait_for(std::time::Duration::from_secs(10), || {
        let (code, text) = status();
        (code == Some(0) && text.contains("running")).then_some(text)
    });
    let (code, text) = status();
    assert_eq!(code, Some(0), "{text}");
    assert!(running.is_some_and(|t| t.contains("u.service")), "{text}");
}

#[test]
fn start_stop_and_restart_wait_for_their_jobs_unless_no_block() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    // Ready one second after it starts.
    tree.write(
        "slow.service",
        "[Service]\nType=notify\nNotifyAccess=all\nExecStart=/bin/sh -c 'sleep 1; systemd-notify --ready; exec sleep 1000'\n",
    );
    tree.write(
        "broken.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\n",
    );
    tree.write("idle.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "idle.service"],
    );
    let state = |unit: &str| {
        let (_, text) = ctl(&control, &["--json", "status", unit]);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        v["units"][0]["state"].as_str().unwrap_or("").to_string()
    };
    // The answer comes once the service is ready.
    let (code, text) = ctl(&control, &["start", "slow.service"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(state("slow.service"), "active");
    let (code, text) = ctl(&control, &["stop", "slow.service"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(state("slow.service"), "inactive");
    // --no-block answers while the start is still under way.
    let (code, text) = ctl(&control, &["start", "--no-block", "slow.service"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(state("slow.service"), "activating");
    let (code, text) = ctl(&control, &["restart", "slow.service"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(state("slow.service"), "active");
    // A start that fails says so, as systemctl does.
    let (code, out, err) = common::ctl_split(&control, &["start", "broken.service"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(
            "Job for broken.service failed because the control process exited with error code."
        ),
        "{err}"
    );
    assert!(flint.log().contains("broken.service"));
}

/// Whether something listens on 127.0.0.1:`port`.
fn listens(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// `flint ctl stop X.socket` with its service running (`Requires=` and
/// `After=` the socket, as docker.service has): the service stops first,
/// then the listeners close, and the command returns once both are done,
/// as `systemctl stop` of a systemd 252 user manager does. Meanwhile the
/// socket takes no new connection to the service that is stopping.
#[test]
fn stopping_a_socket_stops_the_service_ordered_after_it_first() {
    let tree = Tree::new();
    let port = free_port();
    let post = tree.path().join("stop-post-ran");
    let (mut flint, control) = common::run_with_control(&tree);
    tree.write(
        "a.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nExecStopPre=/bin/echo socket stop-pre\nExecStopPost=/bin/sh -c 'sleep 0.3; touch {}'\n",
            post.display()
        ),
    );
    // The service takes a moment to stop (its SIGTERM handler sleeps;
    // KillMode=mixed: only the main process gets the SIGTERM, so the
    // handler's sleep is not cut short).
    tree.write(
        "a.service",
        "[Unit]\nRequires=a.socket\nAfter=a.socket\n[Service]\nKillMode=mixed\nExecStart=/bin/sh -c 'trap \"sleep 1; echo bye; exit 0\" TERM; while :; do sleep 0.1; done'\n",
    );
    assert_eq!(ctl(&control, &["start", "a.socket"]).0, 0);
    assert_eq!(ctl(&control, &["start", "a.service"]).0, 0);
    assert!(flint.wait_log("a.service: started"), "{}", flint.log());
    // As systemctl: the socket that starts it, in its status.
    let (_, status) = ctl(&control, &["status", "a.service"]);
    assert!(status.contains("TriggeredBy: ● a.socket\n"), "{status}");
    assert!(
        status.contains("     Active: active (running) since "),
        "{status}"
    );
    // Stopping the service alone: systemctl's warning, on stderr.
    let (code, out, err) = common::ctl_split(&control, &["stop", "a.service"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        err,
        "Warning: Stopping a.service, but it can still be activated by:\n  a.socket\n"
    );
    assert_eq!(ctl(&control, &["start", "a.service"]).0, 0);
    let (code, out) = ctl(&control, &["stop", "a.socket"]);
    assert_eq!(code, 0, "{out}");
    // Both are down when the command returns, the socket's ExecStopPost=
    // done.
    assert!(post.exists(), "ExecStopPost= ran before ctl stop returned");
    let (_, states) = ctl(&control, &["is-active", "a.service", "a.socket"]);
    assert_eq!(states, "inactive\ninactive\n", "{}", flint.log());
    assert!(!listens(port));
    let log = flint.log();
    let bye = log.find("bye").expect("the service's stop ran");
    let closing = log
        .find("a.socket: stopping; closing its listeners")
        .expect("the socket stopped");
    let stop_pre = log.find("socket stop-pre").expect("ExecStopPre= ran");
    assert!(
        bye < closing && bye < stop_pre,
        "the service stopped before the socket:\n{log}"
    );
    // Its status shows its own lines (flint's about it, its commands'
    // output), not its service's, as systemctl's.
    let (_, status) = ctl(&control, &["status", "a.socket"]);
    assert!(
        status.contains("a.socket: listening on 127.0.0.1:") && status.contains("socket stop-pre"),
        "{status}"
    );
    assert!(!status.contains("bye"), "{status}");
    // Started again: the socket listens, and a start of the socket
    // replaces a stop that still waits for its service.
    // (Looked up without connecting: a connection would start the
    // service again once it is down, as it should.)
    assert_eq!(ctl(&control, &["start", "a.service"]).0, 0);
    assert!(common::listener_inode(port).is_some());
    let (code, out) = ctl(&control, &["stop", "--no-block", "a.socket"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(ctl(&control, &["start", "a.socket"]).0, 0);
    assert!(
        flint.wait_log("a.socket: job stop replaced by start"),
        "{}",
        flint.log()
    );
    assert!(
        wait_for(Duration::from_secs(10), || {
            (ctl(&control, &["is-active", "a.service"]).1 == "inactive\n").then_some(())
        })
        .is_some()
    );
    assert!(
        common::listener_inode(port).is_some(),
        "the socket still listens"
    );
    let _ = flint.stop();
}

/// `flint ctl restart X.socket` of a listening socket whose service does
/// not run closes it and opens it again with its unit as it is now (after
/// `daemon-reload`), and returns once it listens again, as systemctl's
/// restart; before, it did nothing and a changed setting waited for a
/// stop and a start. `show` reports the `MaxConnections=` in force.
#[test]
fn restarting_a_socket_opens_it_again_with_its_new_settings() {
    let tree = Tree::new();
    let port = free_port();
    let (mut flint, control) = common::run_with_control(&tree);
    tree.write(
        "slow.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=9\n"),
    );
    tree.write(
        "slow@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/sh -c 'echo hi; read x'\n",
    );
    assert_eq!(ctl(&control, &["start", "slow.socket"]).0, 0);
    let show = |control: &std::path::Path| {
        ctl(control, &["show", "-p", "MaxConnections", "slow.socket"]).1
    };
    assert_eq!(show(&control), "MaxConnections=9\n");
    let before = common::listener_inode(port).expect("listening");
    tree.write("slow.socket.d/max.conf", "[Socket]\nMaxConnections=2\n");
    assert_eq!(ctl(&control, &["daemon-reload"]).0, 0);
    let (code, out) = ctl(&control, &["restart", "slow.socket"]);
    assert_eq!(code, 0, "{out}");
    let after = common::listener_inode(port).expect("listening again when restart returns");
    assert_ne!(before, after, "a new listener:\n{}", flint.log());
    assert_eq!(show(&control), "MaxConnections=2\n");
    // The new limit holds: of three held connections, two are served.
    let mut held: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c
        })
        .collect();
    // All are held while they are read, so none frees a place.
    let mut served = 0;
    for c in &mut held {
        let mut buf = [0u8; 8];
        if matches!(std::io::Read::read(c, &mut buf), Ok(n) if n > 0) {
            served += 1;
        }
    }
    drop(held);
    assert_eq!(served, 2, "{}", flint.log());
    let _ = flint.stop();
}

/// `ctl restart` of a socket whose `ExecStartPost=` still runs stops that
/// command (the start it cut short fails with result `signal`, as
/// systemd's) and opens the socket again once its listeners are closed:
/// before, the new start bound while the old listener was still open
/// and the restart failed with `EADDRINUSE`.
#[test]
fn restarting_a_socket_amid_its_start_commands_opens_it_again() {
    let tree = Tree::new();
    let port = free_port();
    let (mut flint, control) = common::run_with_control(&tree);
    let gate = tree.path().join("slow");
    tree.write(
        "post.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n\
             ExecStartPost=/bin/sh -c 'if [ -e {gate} ]; then rm {gate}; sleep 30; fi'\n",
            gate = gate.display()
        ),
    );
    tree.write(
        "post@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo hi\n",
    );
    std::fs::write(&gate, "").unwrap();
    assert_eq!(ctl(&control, &["start", "--no-block", "post.socket"]).0, 0);
    // The first start's ExecStartPost= runs (it took the gate away).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gate.exists() {
        assert!(std::time::Instant::now() < deadline, "{}", flint.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, out) = ctl(&control, &["restart", "post.socket"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    let log = flint.log();
    assert!(!log.contains("Address already in use"), "{log}");
    assert!(
        log.contains("post.socket: Failed with result 'signal'"),
        "{log}"
    );
    let (_, status) = ctl(&control, &["status", "post.socket"]);
    assert!(status.contains("Active: active (listening)"), "{status}");
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = String::new();
    std::io::Read::read_to_string(&mut c, &mut got).unwrap();
    assert_eq!(got, "hi\n");
    let _ = flint.stop();
}

/// An `Accept=yes` instance's description names its peer, as systemd's:
/// "Echo (127.0.0.1:PORT)" for TCP, "Echo (PID n/UID u)" for a unix peer.
#[test]
fn an_instance_description_names_its_peer() {
    let tree = Tree::new();
    let port = free_port();
    let path = tree.path().join("e.sock");
    let (mut flint, control) = common::run_with_control(&tree);
    tree.write(
        "e.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nListenStream={}\nAccept=yes\n",
            path.display()
        ),
    );
    tree.write(
        "e@.service",
        "[Unit]\nDescription=Echo\n[Service]\nStandardInput=socket\nExecStart=/bin/sh -c 'echo hi; read x'\n",
    );
    assert_eq!(ctl(&control, &["start", "e.socket"]).0, 0);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let local = tcp.local_addr().unwrap().port();
    let mut unix = std::os::unix::net::UnixStream::connect(&path).unwrap();
    for c in [&mut tcp as &mut dyn std::io::Read, &mut unix] {
        let mut buf = [0u8; 3];
        std::io::Read::read_exact(c, &mut buf).unwrap();
    }
    let (_, listed) = ctl(&control, &["list-units", "--plain", "--no-legend", "e@*"]);
    let descriptions: Vec<String> = listed
        .lines()
        .map(|l| l.split_whitespace().skip(4).collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        descriptions.contains(&format!("Echo (127.0.0.1:{local})")),
        "{listed}"
    );
    assert!(
        descriptions.contains(&format!(
            "Echo (PID {}/UID {})",
            std::process::id(),
            nix::unistd::getuid()
        )),
        "{listed}"
    );
    drop((tcp, unix));
    let _ = flint.stop();
}

#[test]
fn sockets_part_of_or_bound_to_a_service_stop_with_it_and_start_again() {
    // cups.socket is `PartOf=cups.service`: `systemctl stop cups.service`
    // stops the socket too. cockpit's sockets are `BindsTo=cockpit.service`,
    // which exits when idle: they stop with it, and start again when it
    // starts (it `Requires=` them).
    let tree = Tree::new();
    let control = tree.path().join("control");
    let (part, bound) = (free_port(), free_port());
    tree.write(
        "part.socket",
        &format!("[Unit]\nPartOf=part.service\n[Socket]\nListenStream=127.0.0.1:{part}\n"),
    );
    tree.write("part.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "bound.socket",
        &format!(
            "[Unit]\nBindsTo=main.service\n[Socket]\nListenStream=127.0.0.1:{bound}\nAccept=yes\n"
        ),
    );
    tree.write(
        "bound@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo bound\n",
    );
    // Exits on its own after a moment, as an idle daemon does.
    tree.write(
        "main.service",
        "[Unit]\nRequires=bound.socket\nAfter=bound.socket\n[Service]\nExecStart=/bin/sleep 1\n",
    );
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "part.socket",
            "part.service",
            "main.service",
        ],
    );
    wait_for(Duration::from_secs(10), || {
        (listens(part) && listens(bound)).then_some(())
    })
    .unwrap_or_else(|| panic!("both sockets listen\n{}", flint.log()));

    // PartOf=: stopping the service stops the socket.
    let (code, text) = ctl(&control, &["stop", "part.service"]);
    assert_eq!(code, 0, "{text}");
    wait_for(Duration::from_secs(10), || (!listens(part)).then_some(()))
        .unwrap_or_else(|| panic!("part.socket stopped with part.service\n{}", flint.log()));
    // And it starts again on request.
    let (code, text) = ctl(&control, &["start", "part.socket"]);
    assert_eq!(code, 0, "{text}");
    wait_for(Duration::from_secs(10), || listens(part).then_some(()))
        .unwrap_or_else(|| panic!("part.socket listens again\n{}", flint.log()));

    // BindsTo=: main.service exits by itself; the socket bound to it stops.
    wait_for(Duration::from_secs(10), || (!listens(bound)).then_some(()))
        .unwrap_or_else(|| panic!("bound.socket stopped with main.service\n{}", flint.log()));
    // Starting main.service again pulls the socket in again.
    let (code, text) = ctl(&control, &["start", "main.service"]);
    assert_eq!(code, 0, "{text}");
    wait_for(Duration::from_secs(10), || listens(bound).then_some(()))
        .unwrap_or_else(|| panic!("bound.socket listens again\n{}", flint.log()));
}

#[test]
fn a_socket_skipped_by_its_condition_starts_on_request_and_a_stopped_one_is_inactive() {
    // clamav-daemon.socket waits for its database (a condition): skipped at
    // first, started once the file is there. A stopped socket is
    // `inactive (dead)`, not failed.
    let tree = Tree::new();
    let control = tree.path().join("control");
    let port = free_port();
    let db = tree.path().join("db");
    tree.write(
        "later.socket",
        &format!(
            "[Unit]\nConditionPathExists={}\n[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
            db.display()
        ),
    );
    tree.write(
        "later@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo later\n",
    );
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "later.socket"],
    );
    assert!(
        flint.wait_log("later.socket: condition check resulted in it being skipped"),
        "{}",
        flint.log()
    );
    assert!(!listens(port));
    std::fs::write(&db, "").unwrap();
    let (code, text) = ctl(&control, &["start", "later.socket"]);
    assert_eq!(code, 0, "{text}\n{}", flint.log());
    wait_for(Duration::from_secs(10), || listens(port).then_some(()))
        .unwrap_or_else(|| panic!("later.socket listens\n{}", flint.log()));
    let (code, text) = ctl(&control, &["stop", "later.socket"]);
    assert_eq!(code, 0, "{text}");
    wait_for(Duration::from_secs(10), || (!listens(port)).then_some(()))
        .unwrap_or_else(|| panic!("later.socket stopped\n{}", flint.log()));
    let (code, text) = ctl(&control, &["status", "later.socket"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("inactive (dead)"), "{text}");
}

#[test]
fn a_reload_reaches_the_units_it_propagates_to() {
    // Debian's postgresql.service and postgresql@.service: a oneshot whose
    // ExecReload= does nothing, and instances with
    // ReloadPropagatedFrom=postgresql.service (tor, postfix, rbldnsd alike).
    let tree = Tree::new();
    let control = tree.path().join("control");
    let log = tree.path().join("log");
    tree.write(
        "all.service",
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\nExecReload=/bin/true\n\
         [Unit]\nPropagatesReloadTo=extra.service\n",
    );
    tree.write(
        "cluster@.service",
        &format!(
            "[Unit]\nReloadPropagatedFrom=all.service\n[Service]\nExecStart=/bin/sleep 1000\n\
             ExecReload=/bin/sh -c 'echo reload %i >> {}'\n",
            log.display()
        ),
    );
    // Reached through extra.service: propagation goes on from each unit
    // reloaded.
    tree.write(
        "extra.service",
        &format!(
            "[Unit]\nPropagatesReloadTo=last.service\n[Service]\nExecStart=/bin/sleep 1000\n\
             ExecReload=/bin/sh -c 'echo reload extra >> {}'\n",
            log.display()
        ),
    );
    tree.write(
        "last.service",
        &format!(
            "[Service]\nExecStart=/bin/sleep 1000\nExecReload=/bin/sh -c 'echo reload last >> {}'\n",
            log.display()
        ),
    );
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "all.service",
            "cluster@a.service",
            "cluster@b.service",
            "extra.service",
            "last.service",
        ],
    );
    wait_for(Duration::from_secs(15), || {
        flint.log().contains("last.service: started").then_some(())
    })
    .expect("started");
    // A stopped instance is not started by a reload.
    assert_eq!(ctl(&control, &["stop", "cluster@b.service"]).0, 0);
    let (code, out) = ctl(&control, &["reload", "all.service"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    let mut lines = wait_for(Duration::from_secs(15), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        (lines.len() >= 3).then_some(lines)
    })
    .unwrap_or_else(|| panic!("{}", flint.log()));
    std::thread::sleep(Duration::from_millis(300));
    lines.sort();
    assert_eq!(
        lines,
        ["reload a", "reload extra", "reload last"],
        "{}",
        flint.log()
    );
    let log_text = flint.log();
    assert_eq!(
        log_text.matches("cluster@b.service: started").count(),
        1,
        "started again by the reload:\n{log_text}"
    );
    // A reload of one instance reaches nothing else.
    assert_eq!(ctl(&control, &["reload", "cluster@a.service"]).0, 0);
    std::thread::sleep(Duration::from_millis(500));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(text.lines().count(), 4, "{text}");
}

/// Runs flint by the name `systemctl` (a link in the tree) against the
/// flint on `control`: exit code, stdout, stderr.
fn systemctl(tree: &Tree, control: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    systemctl_env(tree, control, args, &[])
}

/// [`systemctl`] with variables set (a value) or taken out (`None`) of its
/// environment.
fn systemctl_env(
    tree: &Tree,
    control: &std::path::Path,
    args: &[&str],
    env: &[(&str, Option<&str>)],
) -> (i32, String, String) {
    let mut cmd = Command::new(common::link_as(tree, "systemctl"));
    cmd.args(args).env("FLINT_CONTROL", control);
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn flint_called_systemctl_runs_systemctl_command_lines() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let reloads = tree.path().join("reloads");
    tree.write(
        "web.service",
        &format!(
            "[Service]\nExecStart=/bin/sleep 1000\nExecReload=/bin/sh -c 'echo reloaded >> {}'\n",
            reloads.display()
        ),
    );
    tree.write("plain.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write("off.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write("bad.service", "[Service]\nExecStart=/bin/false\n");
    tree.write(
        "idle.socket",
        &format!(
            "[Socket]\nListenStream={}\nService=off.service\n",
            tree.path().join("idle.sock").display()
        ),
    );
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "idle.socket"],
    );
    wait_for(Duration::from_secs(10), || control.exists().then_some(()))
        .unwrap_or_else(|| panic!("no control socket: {}", flint.log()));

    // Names without a type are services; options go before or after.
    let (code, _, err) = systemctl(&tree, &control, &["start", "web", "--no-pager", "plain"]);
    assert_eq!(code, 0, "{err}\n{}", flint.log());
    let (code, out, _) = systemctl(&tree, &control, &["is-active", "web", "off"]);
    assert_eq!((code, out.as_str()), (0, "active\ninactive\n"));
    let (code, out, _) = systemctl(&tree, &control, &["is-active", "off"]);
    assert_eq!((code, out.as_str()), (3, "inactive\n"));
    let (code, out, _) = systemctl(&tree, &control, &["--quiet", "is-active", "plain"]);
    assert_eq!((code, out.as_str()), (0, ""));
    systemctl(&tree, &control, &["start", "bad"]);
    let failed = wait_for(Duration::from_secs(10), || {
        let (code, out, _) = systemctl(&tree, &control, &["is-failed", "bad", "web"]);
        (code == 0).then_some(out)
    })
    .unwrap_or_else(|| panic!("bad.service did not fail: {}", flint.log()));
    assert_eq!(failed, "failed\nactive\n");
    let (code, _, _) = systemctl(&tree, &control, &["-q", "is-failed", "web"]);
    assert_eq!(code, 1);
    let (code, out, _) = systemctl(&tree, &control, &["is-system-running"]);
    assert_eq!((code, out.as_str()), (1, "degraded\n"));
    // show without a unit: the manager's properties, as tools read them.
    let (code, out, _) = systemctl(&tree, &control, &["show", "-p", "SystemState,NFailedUnits"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "NFailedUnits=1\nSystemState=degraded\n")
    );
    let (_, out, _) = systemctl(&tree, &control, &["show", "--value", "-p", "UnitPath"]);
    assert_eq!(out.trim(), tree.path().display().to_string());
    let (_, out, _) = systemctl(&tree, &control, &["show"]);
    for key in [
        "Version=252 (flint ",
        "Environment=",
        "DefaultTimeoutStartUSec=1min 30s",
        "NNames=",
    ] {
        assert!(out.lines().any(|l| l.starts_with(key)), "{key} in:\n{out}");
    }

    // show: systemctl's property names, -p/--value/-P as scripts use them.
    let web_pid = main_pid(&control, "web.service").expect("web runs");
    let (code, out, _) = systemctl(
        &tree,
        &control,
        &["show", "-p", "ActiveState,MainPID", "web"],
    );
    assert_eq!(code, 0);
    // In systemd's order (the service's properties, then the unit's),
    // whatever the order asked.
    assert_eq!(out, format!("MainPID={web_pid}\nActiveState=active\n"));
    let (_, out, _) = systemctl(&tree, &control, &["show", "-P", "SubState", "web"]);
    assert_eq!(out, "running\n");
    let (_, out, _) = systemctl(
        &tree,
        &control,
        &[
            "show",
            "--property=Result",
            "--property=ExecMainStatus",
            "bad",
            "nosuch",
        ],
    );
    assert_eq!(
        out,
        "Result=exit-code\nExecMainStatus=1\n\nResult=success\nExecMainStatus=0\n"
    );
    let (_, out, _) = systemctl(
        &tree,
        &control,
        &["show", "--value", "-p", "LoadState", "nosuch"],
    );
    assert_eq!(out, "not-found\n");

    // reload-or-restart: web reloads (ExecReload=), plain has no way to
    // reload and restarts.
    let plain_pid = main_pid(&control, "plain.service").expect("plain runs");
    let (code, _, err) = systemctl(&tree, &control, &["reload-or-restart", "web", "plain"]);
    assert_eq!(code, 0, "{err}");
    wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&reloads)
            .is_ok_and(|s| s == "reloaded\n")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("web.service was not reloaded: {}", flint.log()));
    let restarted = main_pid(&control, "plain.service").expect("plain runs again");
    assert_ne!(restarted, plain_pid);

    // try-restart leaves a unit that does not run as it is.
    let (code, _, err) = systemctl(&tree, &control, &["try-restart", "off", "plain"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        systemctl(&tree, &control, &["is-active", "off"]).1,
        "inactive\n"
    );
    assert_ne!(main_pid(&control, "plain.service"), Some(restarted));

    let (code, _, err) = systemctl(&tree, &control, &["stop", "plain.service"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(systemctl(&tree, &control, &["is-active", "plain"]).0, 3);
    let (code, _, err) = systemctl(&tree, &control, &["daemon-reload"]);
    assert_eq!(code, 0, "{err}");

    // What flint has no counterpart for is refused by name.
    let (code, _, err) = systemctl(&tree, &control, &["switch-root", "/sysroot"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("'switch-root' is not a command flint runs as systemctl"),
        "{err}"
    );
    // isolate runs, and says why it leaves systemd's rescue.target alone.
    let (code, _, err) = systemctl(&tree, &control, &["isolate", "rescue"]);
    assert_eq!(code, 1);
    assert!(err.contains("flint does not isolate them"), "{err}");
    // The systemd version first, as scripts read it (deb-systemd-invoke:
    // `sed -n -r "s/systemd ([0-9]+) \(.*/\1/p"`), then flint's.
    let (code, out, _) = systemctl(&tree, &control, &["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("systemd 252 (flint "), "{out}");
    let (code, out, _) = systemctl(&tree, &control, &["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("preset-all"), "{out}");
}

#[test]
fn cat_prints_a_units_files_as_systemctl_cat_does() {
    let tree = Tree::new();
    tree.write("a.service", "[Service]\nExecStart=/bin/true\n");
    std::fs::create_dir_all(tree.path().join("a.service.d")).unwrap();
    tree.write("a.service.d/10-env.conf", "[Service]\nEnvironment=X=1\n");
    std::os::unix::fs::symlink("/dev/null", tree.path().join("m.service")).unwrap();
    let dir = tree.path().to_str().unwrap();
    let out = Command::new(common::flint_bin())
        .args(["cat", "--unit-dir", dir, "a.service", "m.service"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "# {dir}/a.service\n[Service]\nExecStart=/bin/true\n\n\
             # {dir}/a.service.d/10-env.conf\n[Service]\nEnvironment=X=1\n\n\
             # Unit m.service is masked.\n"
        )
    );
    let out = Command::new(common::flint_bin())
        .args(["cat", "--unit-dir", dir, "none.service"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "No files found for none.service.\n"
    );
}

#[test]
fn the_environment_of_units_started_later_is_set_unset_imported_and_shown() {
    let tree = Tree::new();
    let out = tree.path().join("env.out");
    tree.write(
        "envp.service",
        &format!(
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'env > {}'\n",
            out.display()
        ),
    );
    let (flint, control) = common::run_with_control(&tree);
    // What the service sees when started now.
    let seen = || -> Vec<String> {
        let (code, text) = ctl(&control, &["start", "envp.service"]);
        assert_eq!(code, 0, "{text}\n{}", flint.log());
        let env = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        env.lines()
            .filter(|l| {
                ["FOO=", "SPACED=", "IMPORTED=", "GOOD="]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let seen = || {
        let mut vars = seen();
        vars.sort();
        vars
    };
    assert!(seen().is_empty());

    let (code, text) = ctl(&control, &["set-environment", "FOO=bar", "SPACED=a b"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(seen(), ["FOO=bar", "SPACED=a b"]);
    let (code, shown, _) = common::ctl_split(&control, &["show-environment"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        lines.contains(&"FOO=bar") && lines.contains(&"SPACED=$'a b'"),
        "{shown}"
    );
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted, "sorted as systemd sorts it");

    // An invalid assignment changes nothing.
    let (code, text) = ctl(&control, &["set-environment", "GOOD=1", "1BAD=x"]);
    assert_eq!(code, 1);
    // A name twice is refused too (systemd's strv_env_is_valid()).
    let (code, _) = ctl(&control, &["set-environment", "GOOD=1", "GOOD=2"]);
    assert_eq!(code, 1);
    assert!(
        text.contains("Failed to set environment: Invalid environment assignments"),
        "{text}"
    );
    // Unset by name, or by name and value (which must match).
    let (code, _) = ctl(&control, &["unset-environment", "FOO", "SPACED=other"]);
    assert_eq!(code, 0);
    assert_eq!(seen(), ["SPACED=a b"]);

    // Through the systemctl front: import-environment takes the caller's
    // variables by name, and says which are not set.
    let (code, _, err) = systemctl_env(
        &tree,
        &control,
        &["import-environment", "IMPORTED", "NOT_SET_HERE"],
        &[
            ("IMPORTED", Some("from the caller")),
            ("NOT_SET_HERE", None),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("$NOT_SET_HERE not set"), "{err}");
    let (code, _, _) = systemctl(&tree, &control, &["unset-environment", "SPACED"]);
    assert_eq!(code, 0);
    assert_eq!(seen(), ["IMPORTED=from the caller"]);
    let (code, _, err) = systemctl(&tree, &control, &["set-environment"]);
    assert_eq!(code, 1, "{err}");
}

/// The units `flint ctl --json list-units ARGS...` lists: name and state.
fn listed(control: &std::path::Path, args: &[&str]) -> Vec<(String, String)> {
    let mut full = vec!["--json", "list-units"];
    full.extend_from_slice(args);
    let (code, text) = ctl(control, &full);
    assert_eq!(code, 0, "list-units {args:?}: {text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).expect("JSON");
    v["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap_or("").to_string(),
                u["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn reset_failed_clears_failures_and_start_limits_and_listings_filter_by_state_type_and_pattern() {
    let tree = Tree::new();
    let (limit_port, web_port) = (free_port(), free_port());
    let ok = tree.path().join("ok");
    // A service that exits without taking the connection: the socket
    // triggers it again and again until its start limit fails both.
    tree.write(
        "limit.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{limit_port}\n"),
    );
    tree.write(
        "limit.service",
        &format!(
            "[Unit]\nStartLimitBurst=2\nStartLimitIntervalSec=1h\n[Service]\nType=oneshot\nExecStart=/bin/test -e {}\n",
            ok.display()
        ),
    );
    tree.write(
        "web.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{web_port}\nAccept=yes\n"),
    );
    tree.write(
        "web@.service",
        "[Service]\nExecStart=/bin/sh -c 'echo hello from $REMOTE_PORT; exec sleep 1000'\n",
    );
    let (flint, control) = common::run_with_control(&tree);
    for unit in ["limit.socket", "web.socket"] {
        assert_eq!(ctl(&control, &["start", unit]).0, 0, "{unit}");
    }
    let conn = std::net::TcpStream::connect(("127.0.0.1", limit_port)).unwrap();
    wait_for(Duration::from_secs(10), || {
        flint
            .log()
            .contains("limit.socket: Failed with result 'service-start-limit-hit'")
            .then_some(())
    })
    .expect("the start limit is hit");
    drop(conn);
    let held: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", web_port)).unwrap())
        .collect();
    let instances = wait_for(Duration::from_secs(10), || {
        let l = listed(&control, &["web@*"]);
        (l.len() == 2 && l.iter().all(|(_, s)| s == "active")).then_some(l)
    })
    .expect("two instances run");
    assert!(
        instances.iter().all(|(n, _)| n.starts_with("web@")),
        "{instances:?}"
    );

    // Filters: by state, by type and state, a name flint has not loaded.
    let failed = |l: Vec<(String, String)>| l.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(
        failed(listed(&control, &["--failed"])),
        ["limit.socket", "limit.service"]
    );
    assert_eq!(
        failed(listed(
            &control,
            &["--type", "socket", "--state", "listening"]
        )),
        ["web.socket"]
    );
    assert!(listed(&control, &["nope.service"]).is_empty());
    let (code, text) = ctl(&control, &["status", "web@*"]);
    assert_eq!(text.matches("● web@").count(), 2, "{text}");
    assert_eq!(code, 0, "{text}");
    // A unit without Description= is shown by its name, as by systemctl.
    let (_, text) = ctl(&control, &["status", "web.socket"]);
    assert_eq!(text.lines().next(), Some("● web.socket"), "{text}");
    let (_, text) = ctl(&control, &["list-units", "web.socket"]);
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("web.socket"));
    assert!(
        row.is_some_and(|r| r.split_whitespace().collect::<Vec<_>>()
            == ["web.socket", "loaded", "active", "listening", "web.socket"]),
        "{text}"
    );
    // A pattern in is-active/is-failed: a line for each unit it matches
    // (none for one that matches nothing), as systemctl prints them.
    let (code, text) = ctl(&control, &["is-active", "web@*", "limit.*", "nomatch@*"]);
    assert_eq!(
        (code, text.lines().collect::<Vec<_>>()),
        (0, vec!["active", "active", "failed", "failed"]),
        "{text}"
    );
    let (code, text) = ctl(&control, &["is-failed", "web@*"]);
    assert_eq!(
        (code, text.lines().collect::<Vec<_>>()),
        (1, vec!["active", "active"])
    );
    let (code, text) = ctl(&control, &["is-active", "nomatch@*"]);
    assert_eq!((code, text.as_str()), (3, ""));
    // And in logs, as `journalctl -u 'web@*'`: the lines of every instance.
    let lines = wait_for(Duration::from_secs(10), || {
        let (_, text) = ctl(&control, &["logs", "web@*"]);
        (text.lines().filter(|l| l.contains("hello from")).count() == 2).then_some(text)
    })
    .expect("both instances' lines");
    let units: std::collections::BTreeSet<&str> = lines
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(units.len(), 2, "{lines}");
    assert!(units.iter().all(|u| u.starts_with("web@")), "{lines}");
    let (code, text) = ctl(&control, &["is-failed", "limit.*"]);
    assert_eq!((code, text.lines().count()), (0, 2), "{text}");
    let (code, text) = ctl(&control, &["is-system-running"]);
    assert_eq!((code, text.trim()), (1, "degraded"));
    // A failed socket is listed with what it is to listen on, as systemctl
    // lists its `Listen` property.
    let (_, text) = ctl(&control, &["list-sockets", "--show-types", "limit.socket"]);
    let row = |text: &str| {
        text.lines()
            .find(|l| l.contains("limit.socket"))
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    };
    let expected = vec![
        format!("127.0.0.1:{limit_port}"),
        "Stream".to_string(),
        "limit.socket".to_string(),
        "limit.service".to_string(),
    ];
    assert_eq!(row(&text), Some(expected.clone()), "{text}");

    // The start limit holds until it is reset.
    std::fs::write(&ok, "").unwrap();
    assert_eq!(ctl(&control, &["start", "limit.service"]).0, 1);
    let (code, text) = ctl(&control, &["reset-failed", "nope.service"]);
    assert_eq!(code, 1);
    assert!(
        text.contains(
            "Failed to reset failed state of unit nope.service: Unit nope.service not loaded."
        ),
        "{text}"
    );
    let (code, text) = ctl(&control, &["reset-failed", "limit.service"]);
    assert_eq!(code, 0, "{text}");
    let (_, text) = ctl(&control, &["--json", "status", "limit.service"]);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        (
            &v["units"][0]["state"],
            &v["units"][0]["sub"],
            &v["units"][0]["result"]
        ),
        (&"inactive".into(), &"dead".into(), &"success".into()),
        "{text}"
    );
    // Only the named unit.
    assert_eq!(failed(listed(&control, &["--failed"])), ["limit.socket"]);
    // All of them, through the systemctl front.
    let (code, out, err) = systemctl(&tree, &control, &["reset-failed"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = systemctl(&tree, &control, &["--failed"]);
    assert_eq!(code, 0);
    assert!(out.contains("0 loaded units listed."), "{out}");
    // As scripts test for failed units.
    let (code, out, _) = systemctl(&tree, &control, &["--failed", "--no-legend"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, text) = ctl(&control, &["is-system-running"]);
    assert_eq!((code, text.trim()), (0, "running"));
    // Inactive units are listed with --all (or a --state) only, as by
    // systemctl; the socket's configured listener with them.
    assert!(listed(&control, &["limit.socket"]).is_empty());
    assert!(!failed(listed(&control, &[])).contains(&"limit.socket".to_string()));
    assert_eq!(
        listed(&control, &["--all", "limit.socket"]),
        [("limit.socket".to_string(), "inactive".to_string())]
    );
    assert_eq!(
        listed(&control, &["--state", "inactive", "limit.*"]),
        [
            ("limit.socket".to_string(), "inactive".to_string()),
            ("limit.service".to_string(), "inactive".to_string())
        ]
    );
    let (_, text) = ctl(&control, &["list-sockets", "--show-types"]);
    assert_eq!(row(&text), None, "{text}");
    let (_, text) = ctl(&control, &["list-sockets", "--show-types", "--all"]);
    assert_eq!(row(&text), Some(expected), "{text}");
    let (code, out, _) = systemctl(&tree, &control, &["list-units", "--all", "limit.socket"]);
    assert!(code == 0 && out.contains("limit.socket"), "{out}");
    let (code, out, _) = systemctl(&tree, &control, &["list-units", "limit.socket"]);
    assert!(code == 0 && !out.contains("limit.socket"), "{out}");
    // Both start again: the socket listens, the service runs to its end.
    assert_eq!(ctl(&control, &["start", "limit.socket"]).0, 0);
    assert_eq!(
        listed(&control, &["limit.socket"]),
        [("limit.socket".to_string(), "active".to_string())]
    );
    let (code, text) = ctl(&control, &["start", "limit.service"]);
    assert_eq!(code, 0, "{text}");
    drop(held);
}

/// Runs `ansible localhost -m ansible.builtin.systemd -a ARGS` with flint's
/// `systemctl` link first in `PATH`: its outcome (`CHANGED`, `SUCCESS`,
/// `FAILED!`) and the module's result.
fn ansible_systemd(
    tree: &Tree,
    control: &std::path::Path,
    args: &str,
) -> (String, serde_json::Value) {
    let link = common::link_as(tree, "systemctl");
    let bin = link.parent().expect("bin directory");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("ansible")
        .args([
            "localhost",
            "-c",
            "local",
            "-m",
            "ansible.builtin.systemd",
            "-a",
            args,
        ])
        .env("PATH", path)
        .env("FLINT_CONTROL", control)
        .env("HOME", tree.path())
        .env("ANSIBLE_LOCALHOST_WARNING", "False")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
        .env("ANSIBLE_NOCOLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ansible runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once(" => ").unwrap_or_else(|| {
        panic!(
            "ansible {args}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let outcome = head.rsplit("| ").next().unwrap_or("").trim().to_string();
    let result =
        serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("ansible {args}: {e}: {text}"));
    (outcome, result)
}

#[test]
fn ansibles_systemd_module_starts_restarts_and_stops_units_through_the_systemctl_front() {
    if !common::require(
        "ansible",
        "Ansible's systemd module drives flint as systemctl",
    ) {
        return;
    }
    let tree = Tree::new();
    tree.write(
        "app.service",
        "[Unit]\nDescription=an app\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let (_flint, control) = common::run_with_control(&tree);
    // Not loaded yet: systemctl show reads it from disk, so the module
    // finds it and starts it.
    let (outcome, result) = ansible_systemd(&tree, &control, "name=app state=started");
    assert_eq!(outcome, "CHANGED", "{result}");
    assert_eq!(result["status"]["LoadState"], "loaded", "{result}");
    assert_eq!(result["status"]["Description"], "an app", "{result}");
    let first = main_pid(&control, "app.service").expect("app runs");
    // Started already: nothing to do.
    let (outcome, result) = ansible_systemd(&tree, &control, "name=app state=started");
    assert_eq!(outcome, "SUCCESS", "{result}");
    assert_eq!(result["status"]["ActiveState"], "active", "{result}");
    assert_eq!(result["status"]["MainPID"], first.to_string(), "{result}");
    let (outcome, result) = ansible_systemd(&tree, &control, "name=app state=restarted");
    assert_eq!(outcome, "CHANGED", "{result}");
    let second = wait_for(Duration::from_secs(10), || {
        main_pid(&control, "app.service").filter(|p| *p != first)
    });
    assert!(second.is_some(), "a new main process after the restart");
    let (outcome, result) = ansible_systemd(&tree, &control, "name=app state=stopped");
    assert_eq!(outcome, "CHANGED", "{result}");
    assert_eq!(ctl(&control, &["is-active", "app.service"]).0, 3);
    let (outcome, result) = ansible_systemd(&tree, &control, "name=nosuch state=started");
    assert_eq!(outcome, "FAILED!", "{result}");
    assert_eq!(
        result["msg"], "Could not find the requested service nosuch: host",
        "{result}"
    );
}

/// A request is one line of at most 1 MiB: a client that sends more
/// without a newline gets an answer at once instead of flint reading on.
#[test]
fn an_endless_request_is_cut_and_answered() {
    use std::io::{BufRead, Write};
    let tree = Tree::new();
    let control = tree.path().join("control");
    tree.write("s.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let _flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "s.service"],
    );
    let stream = std::os::unix::net::UnixStream::connect(&control).unwrap();
    let mut writer = stream.try_clone().unwrap();
    writer
        .set_write_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..32 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(&stream)
        .read_line(&mut answer)
        .unwrap();
    assert!(
        answer.contains("request longer than 1 MiB: refused"),
        "{answer}"
    );
    drop(stream);
    sender.join().unwrap();
}

/// A user flint on `tree`'s `units/` running `names`, with its runtime
/// directory `rt` (0700) and its control socket `rt/ctl`: returned once
/// systemd's private socket (`rt/systemd/private`) is there.
fn user_flint(tree: &Tree, names: &[&str]) -> (Flint, std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let rt = tree.path().join("rt");
    std::fs::create_dir(&rt).unwrap();
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
    let units = tree.path().join("units");
    let control = rt.join("ctl");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "run".as_ref(),
        "--user".as_ref(),
        "--unit-dir".as_ref(),
        units.as_os_str(),
        "--control".as_ref(),
        control.as_os_str(),
    ];
    args.extend(names.iter().map(|n| std::ffi::OsStr::new(*n)));
    let flint = Flint::run_args(&args, &[("XDG_RUNTIME_DIR", &rt), ("HOME", tree.path())]);
    let private = rt.join("systemd/private");
    assert!(
        wait_for(Duration::from_secs(10), || private.exists().then_some(())).is_some(),
        "no private socket"
    );
    (flint, rt, control)
}

/// `systemctl --user` reaches a user flint on `$XDG_RUNTIME_DIR/systemd/
/// private` at once while other peers hold their connections there, idle
/// after the handshake (each held the only server thread for its 5 s
/// read timeout, one after the other).
#[test]
fn peers_idling_on_the_private_socket_keep_no_one_waiting() {
    use std::fmt::Write as _;
    use std::io::{BufRead, Write};
    if !common::require("systemctl", "systemd: the client of the private socket") {
        return;
    }
    let tree = Tree::new();
    tree.write(
        "units/keep.service",
        "[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let (_flint, rt, _) = user_flint(&tree, &["keep.service"]);
    let private = rt.join("systemd/private");
    let mut uid = String::new();
    for b in nix::unistd::getuid().as_raw().to_string().bytes() {
        let _ = write!(uid, "{b:02x}");
    }
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut s = std::os::unix::net::UnixStream::connect(&private).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("\0AUTH EXTERNAL {uid}\r\n").as_bytes())
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(&s).read_line(&mut line).unwrap();
        assert!(line.starts_with("OK "), "{line}");
        s.write_all(b"BEGIN\r\n").unwrap();
        idle.push(s);
    }
    let started = std::time::Instant::now();
    let out = Command::new("timeout")
        .args([
            "60",
            "systemctl",
            "--user",
            "set-environment",
            "IDLE_PEERS=3",
        ])
        .env("XDG_RUNTIME_DIR", &rt)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(4),
        "systemctl waited {took:?} behind idle peers"
    );
    // And reads the environment back (the manager's Environment property).
    let out = Command::new("timeout")
        .args(["60", "systemctl", "--user", "show-environment"])
        .env("XDG_RUNTIME_DIR", &rt)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && shown.lines().any(|l| l == "IDLE_PEERS=3"),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(idle);
}

/// A restart of a service reaches the socket that is `PartOf=` it, as
/// systemd's restart propagates: the service stops, the socket closes and
/// opens again (a new node), the service starts. greylistd removes its
/// socket's node when it gets SIGTERM; before, flint kept listening on the
/// unlinked node, so the restarted daemon found no socket and failed, and
/// no client could connect until the socket was restarted by hand.
#[test]
fn restarting_a_service_restarts_the_socket_that_is_part_of_it() {
    use std::io::Read;
    let tree = Tree::new();
    let (mut flint, control) = common::run_with_control(&tree);
    let path = tree.path().join("g.sock");
    tree.write(
        "g.socket",
        &format!(
            "[Unit]\nPartOf=g.service\n[Socket]\nListenStream={}\n",
            path.display()
        ),
    );
    // Like greylistd: serves the socket it got, and removes the node
    // when it stops; a start without the node fails.
    tree.write(
        "g.py",
        &format!(
            "import os, signal, socket, sys\n\
p = \"{p}\"\n\
if not os.path.exists(p): sys.exit(\"no socket node\")\n\
signal.signal(signal.SIGTERM, lambda *a: (os.unlink(p), sys.exit(0)))\n\
s = socket.socket(fileno=3)\n\
while True: c, _ = s.accept(); c.sendall(str(os.getpid()).encode()); c.close()\n",
            p = path.display()
        ),
    );
    tree.write(
        "g.service",
        &format!(
            "[Service]\nExecStart=/usr/bin/python3 {}\n",
            tree.path().join("g.py").display()
        ),
    );
    assert_eq!(ctl(&control, &["start", "g.socket"]).0, 0);
    let ask = || -> String {
        let mut c = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    };
    let first = ask();
    let (code, out) = ctl(&control, &["restart", "g.service"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    let (code, status) = ctl(&control, &["status", "g.service"]);
    assert_eq!(code, 0, "{status}\n{}", flint.log());
    assert!(
        flint
            .log()
            .contains("g.socket: stopping; closing its listeners"),
        "{}",
        flint.log()
    );
    let second = ask();
    assert_ne!(first, second, "a new daemon answers");
    // A second restart while the first one's stop runs is that restart:
    // the socket is open again and a new daemon answers.
    assert_eq!(ctl(&control, &["restart", "--no-block", "g.service"]).0, 0);
    let (code, out) = ctl(&control, &["restart", "g.service"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    let third = ask();
    assert_ne!(second, third, "{}", flint.log());
    // Its stop takes the socket along: no warning that the socket can
    // still start it (systemctl looks once the jobs are done).
    let (code, _, err) = common::ctl_split(&control, &["stop", "g.service"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("Warning"), "{err}");
    assert_eq!(ctl(&control, &["is-active", "g.socket"]).0, 3);
    // A try-restart of the service that does not run leaves the socket
    // alone (nothing to restart).
    assert_eq!(ctl(&control, &["start", "g.socket"]).0, 0);
    let closes = || {
        flint
            .log()
            .matches("g.socket: stopping; closing its listeners")
            .count()
    };
    let before = closes();
    assert_eq!(ctl(&control, &["try-restart", "g.service"]).0, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(closes(), before, "{}", flint.log());
    // A stop asked while a restart's stop runs ends it: both stay down.
    let _ = ask();
    assert_eq!(ctl(&control, &["restart", "--no-block", "g.service"]).0, 0);
    assert_eq!(ctl(&control, &["stop", "g.service"]).0, 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ctl(&control, &["is-active", "g.service"]).0,
        3,
        "{}",
        flint.log()
    );
    assert_eq!(
        ctl(&control, &["is-active", "g.socket"]).0,
        3,
        "{}",
        flint.log()
    );
    let _ = flint.stop();
}

/// Debian's own `systemctl --user` drives a user flint through the
/// private socket, as it drives systemd's user manager: start, stop,
/// restart, reload and kill with systemctl's own words and exit statuses
/// (a job's end signalled with `JobRemoved`, also after the peer's idle
/// time), `is-active`, `is-failed`, `show`, `status` and `list-units` from
/// the units' properties, `daemon-reload` and `reset-failed`. Before,
/// every such call was refused ("flint answers only D-Bus activation and
/// the environment calls").
#[test]
fn debians_systemctl_drives_a_user_flint_through_the_private_socket() {
    if !common::require("systemctl", "systemd: the client of the private socket") {
        return;
    }
    let tree = Tree::new();
    tree.write(
        "units/demo.service",
        "[Unit]\nDescription=Demo service\nDocumentation=man:demo(8) https://example.org/demo\nWants=e.socket\nAfter=e.socket\n[Service]\nExecStart=/bin/sleep 1000\nExecReload=/bin/true\n[Install]\nWantedBy=default.target\n",
    );
    tree.write(
        "units/bad.service",
        "[Service]\nType=oneshot\nExecStartPre=-/bin/sh -c \"exit 3\"\nExecStartPre=/bin/true\nExecStart=/bin/false\n",
    );
    tree.write(
        "units/needs-missing.service",
        "[Unit]\nRequires=not-there.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "units/dep-only.service",
        "[Unit]\nRefuseManualStart=yes\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "units/slow.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sleep 6\n",
    );
    tree.write("units/e.socket", "[Socket]\nListenStream=%t/e.sock\n");
    tree.write("units/e.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write("units/t.timer", "[Timer]\nOnActiveSec=1h\n");
    tree.write("units/t.service", "[Service]\nExecStart=/bin/true\n");
    tree.write(
        "units/fork.service",
        "[Service]\nType=forking\nPIDFile=%t/fork.pid\nExecStart=/bin/sh -c 'sleep 1000 & echo $! > %t/fork.pid'\n",
    );
    let (mut flint, rt, control) = user_flint(&tree, &["e.socket", "t.timer"]);
    let systemctl = |args: &[&str]| {
        let out = Command::new("timeout")
            .args(["60", "systemctl", "--user"])
            .args(args)
            .env("XDG_RUNTIME_DIR", &rt)
            // Where the test runs in a chroot, systemctl would not call.
            .env("SYSTEMD_IGNORE_CHROOT", "1")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ok = |args: &[&str]| {
        let (code, out, err) = systemctl(args);
        assert_eq!(code, 0, "systemctl {args:?}: {out}{err}\n{}", flint.log());
        out
    };
    ok(&["start", "demo"]);
    assert_eq!(ok(&["is-active", "demo"]), "active\n");
    let shown = ok(&["show", "-p", "MainPID,ActiveState,SubState", "demo"]);
    let pid: u64 = shown
        .lines()
        .find_map(|l| l.strip_prefix("MainPID="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        shown.contains("ActiveState=active\nSubState=running\n"),
        "{shown}"
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"/bin/sleep\0"), "{shown}");
    let status = ok(&["status", "demo"]);
    assert!(
        status.contains("demo.service - Demo service")
            && status.contains("Active: active (running) since ")
            && status.contains(&format!("Main PID: {pid} (sleep)")),
        "{status}"
    );
    // Its documentation and its preset, as systemctl prints them.
    assert!(
        status.contains("\n       Docs: man:demo(8)\n             https://example.org/demo\n"),
        "{status}"
    );
    let preset = ok(&["show", "-p", "UnitFilePreset", "demo"]);
    let preset = preset.trim().strip_prefix("UnitFilePreset=").unwrap_or("?");
    assert!(matches!(preset, "enabled" | "disabled"), "{preset}");
    assert!(
        status.contains(&format!("; disabled; preset: {preset})\n")),
        "{status}"
    );
    assert_eq!(
        ok(&["show", "-p", "Wants,After,ExecMainPID", "demo"]),
        format!("ExecMainPID={pid}\nWants=e.socket\nAfter=e.socket\n")
    );
    let shown = ok(&[
        "show",
        "-p",
        "ActiveEnterTimestamp,InactiveEnterTimestamp",
        "demo",
    ]);
    assert!(
        shown.starts_with("ActiveEnterTimestamp=")
            && !shown.starts_with("ActiveEnterTimestamp=\n")
            && shown.ends_with("InactiveEnterTimestamp=\n"),
        "{shown}"
    );
    // flint's own front: a name without a type is a service's, and the
    // same words.
    let (code, status) = ctl(&control, &["status", "demo"]);
    assert_eq!(code, 0, "{status}");
    assert!(
        status.contains("Active: active (running) since ")
            && status.contains(&format!("Main PID: {pid} (sleep)")),
        "{status}"
    );
    ok(&["reload", "demo"]);
    // A unit only dependencies may start: refused before any job, with
    // systemd's error, which systemctl turns into its words and exit 4.
    let (code, _, err) = systemctl(&["start", "dep-only"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.starts_with(
            "Failed to start dep-only.service: Operation refused, unit dep-only.service \
             may be requested by dependency only (it is configured to refuse manual start/stop)."
        ),
        "{err}"
    );
    // A requirement that is not there: refused before any job, as
    // systemd's NoSuchUnit (exit 5).
    let (code, _, err) = systemctl(&["start", "needs-missing"]);
    assert_eq!(
        (code, err.as_str()),
        (
            5,
            "Failed to start needs-missing.service: Unit not-there.service not found.\n"
        )
    );
    // A job method is answered once its job is queued: what follows a
    // --no-block start sees the job and the unit starting.
    ok(&["start", "--no-block", "slow.service"]);
    assert_eq!(systemctl(&["is-active", "slow.service"]).1, "activating\n");
    let job = ok(&["show", "-p", "Job", "slow.service"]);
    assert!(
        job.strip_prefix("Job=")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .is_some_and(|n| n > 0),
        "{job}"
    );
    // The job `list-jobs` shows is the one `cancel` takes (CancelJob).
    let jobs = ok(&["list-jobs", "--no-legend"]);
    let id = jobs
        .lines()
        .find(|l| l.contains("slow.service"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{jobs}"))
        .to_string();
    assert_eq!(job.trim(), format!("Job={id}"));
    ok(&["cancel", &id]);
    let (code, _, err) = systemctl(&["cancel", &id]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("Job {id} does not exist")), "{err}");
    assert!(
        !ok(&["list-jobs", "--no-legend"]).contains("slow.service"),
        "{}",
        flint.log()
    );
    ok(&["stop", "slow.service"]);
    let (code, _, err) = systemctl(&["reload", "e.service"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("Job type reload is not applicable for unit e.service."),
        "{err}"
    );
    ok(&["restart", "demo"]);
    let restarted = common::main_pid(&control, "demo.service").expect("running again");
    assert_ne!(restarted, pid);
    ok(&["kill", "demo"]);
    assert!(
        wait_for(Duration::from_secs(10), || {
            (!std::path::Path::new(&format!("/proc/{restarted}")).exists()).then_some(())
        })
        .is_some(),
        "kill reached the main process"
    );
    ok(&["start", "demo"]);
    ok(&["stop", "demo"]);
    let (code, out, _) = systemctl(&["is-active", "demo"]);
    assert_eq!((code, out.as_str()), (3, "inactive\n"));
    // A failed job, a unit that is not there.
    let (code, _, err) = systemctl(&["start", "bad"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "Job for bad.service failed because the control process exited with error code."
        ),
        "{err}"
    );
    let (code, out, _) = systemctl(&["is-failed", "bad"]);
    assert_eq!((code, out.as_str()), (0, "failed\n"));
    // Its command as systemctl prints one that ended (from ExecStart=).
    let (_, status, _) = systemctl(&["status", "bad"]);
    let pid = ok(&["show", "-p", "ExecMainPID", "--value", "bad"]);
    assert!(
        status.contains(&format!(
            "Process: {} ExecStart=/bin/false (code=exited, status=1/FAILURE)\n",
            pid.trim()
        )),
        "{status}"
    );
    // And the commands before it, in their order, each with its own pid.
    let at = |needle: &str| {
        status
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{status}"))
    };
    let pre_failed = at(" ExecStartPre=/bin/sh -c exit 3 (code=exited, status=3)\n");
    let pre_ok = at(" ExecStartPre=/bin/true (code=exited, status=0/SUCCESS)\n");
    assert!(
        pre_failed < pre_ok && pre_ok < at(" ExecStart=/bin/false"),
        "{status}"
    );
    // A forking service's ExecStart= is a command of its own, the daemon
    // it leaves the main process, as systemctl shows them.
    ok(&["start", "fork"]);
    let (_, status, _) = systemctl(&["status", "fork"]);
    assert!(
        status
            .lines()
            .any(|l| l.contains(" ExecStart=/bin/sh -c sleep 1000 & echo")
                && l.ends_with("(code=exited, status=0/SUCCESS)")),
        "{status}"
    );
    assert!(
        status.contains("Main PID: ") && status.contains(" (sleep)"),
        "{status}"
    );
    let (_, flints) = ctl(&control, &["status", "fork.service"]);
    assert!(
        flints.contains(" ExecStart=/bin/sh -c sleep 1000 & echo") && !flints.contains("Last exit"),
        "{flints}"
    );
    ok(&["stop", "fork"]);
    let shown = ok(&["show", "-p", "ExecStartPre", "--value", "bad"]);
    assert!(
        shown.contains("code=exited ; status=3 }") && !shown.contains("pid=0 ;"),
        "{shown}"
    );
    // flint's own status prints them as systemctl does.
    let (_, own) = ctl(&control, &["status", "bad.service"]);
    assert!(
        own.contains(" ExecStartPre=/bin/true (code=exited, status=0/SUCCESS)\n"),
        "{own}"
    );
    ok(&["reset-failed", "bad"]);
    let (code, out, _) = systemctl(&["is-failed", "bad"]);
    assert_eq!((code, out.as_str()), (1, "inactive\n"));
    let (code, _, err) = systemctl(&["start", "nosuch"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("Unit nosuch.service not found."), "{err}");
    assert_eq!(systemctl(&["status", "nosuch"]).0, 4);
    // A job that outlasts the peer's idle time still ends for systemctl.
    ok(&["start", "slow"]);
    // The stop of a service that its active socket still starts warns.
    ok(&["start", "e.service"]);
    let listed = ok(&["list-units"]);
    assert!(
        listed.contains("e.service") && listed.contains("e.socket"),
        "{listed}"
    );
    let (code, _, err) = systemctl(&["stop", "e.service"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Warning: Stopping e.service, but it can still be activated by:\n  e.socket"),
        "{err}"
    );
    // A drop-in written since the unit was read asks for a reload, as
    // systemctl warns, until the reload.
    assert_eq!(
        ok(&["show", "-p", "NeedDaemonReload", "demo"]),
        "NeedDaemonReload=no\n"
    );
    tree.write(
        "units/demo.service.d/x.conf",
        "[Service]\nEnvironment=A=1\n",
    );
    assert_eq!(
        ok(&["show", "-p", "NeedDaemonReload", "demo"]),
        "NeedDaemonReload=yes\n"
    );
    let (_, _, err) = systemctl(&["status", "demo"]);
    assert!(err.contains("changed on disk"), "{err}");
    ok(&["daemon-reload"]);
    assert_eq!(
        ok(&["show", "-p", "NeedDaemonReload", "demo"]),
        "NeedDaemonReload=no\n"
    );
    assert_eq!(ok(&["is-active", "e.socket"]), "active\n");
    // Many at once, as a script asks: every one answered (with 32 peers
    // at most and std's backlog of 128, dozens failed).
    let many: Vec<std::process::Child> = (0..150)
        .map(|_| {
            Command::new("timeout")
                .args(["60", "systemctl", "--user", "is-active", "e.socket"])
                .env("XDG_RUNTIME_DIR", &rt)
                .env("SYSTEMD_IGNORE_CHROOT", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let answered: Vec<(i32, String)> = many
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        })
        .collect();
    let failed: Vec<&(i32, String)> = answered
        .iter()
        .filter(|(code, out)| *code != 0 || out != "active\n")
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 150: {:?}",
        failed.len(),
        failed.first()
    );
    // The listings that read sockets' and timers' properties.
    let sockets = ok(&["list-sockets"]);
    assert!(
        sockets.lines().any(|l| {
            l.split_whitespace().collect::<Vec<_>>()
                == [rt.join("e.sock").to_str().unwrap(), "e.socket", "e.service"]
        }),
        "{sockets}"
    );
    // A timer's status says since when it is in its state.
    let status = ok(&["status", "t.timer"]);
    assert!(
        status.contains("Active: active (waiting) since "),
        "{status}"
    );
    let timers = ok(&["list-timers"]);
    assert!(
        timers.contains("left") && timers.contains("t.timer t.service"),
        "{timers}"
    );
    // `systemctl isolate`: a start in job mode isolate. The target starts,
    // what runs and it does not want stops (demo.service, the timer), its
    // socket stays; one without AllowIsolate=yes is refused.
    tree.write("units/plain.target", "[Unit]\nWants=e.socket\n");
    tree.write(
        "units/quiet.target",
        "[Unit]\nAllowIsolate=yes\nWants=e.socket\n",
    );
    ok(&["start", "demo"]);
    let (code, out, err) = systemctl(&["isolate", "plain"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("Failed to start plain.target: Operation refused, unit may not be isolated."),
        "{err}"
    );
    assert_eq!(ok(&["is-active", "demo"]), "active\n");
    ok(&["isolate", "quiet"]);
    assert_eq!(ok(&["is-active", "quiet.target"]), "active\n");
    let stopped = common::wait_for(Duration::from_secs(10), || {
        (systemctl(&["is-active", "demo", "t.timer"]).1 == "inactive\ninactive\n").then_some(())
    });
    assert!(stopped.is_some(), "{}", flint.log());
    assert_eq!(ok(&["is-active", "e.socket"]), "active\n");
    // daemon-reexec: flint reads its units again.
    ok(&["daemon-reexec"]);
    // `systemctl --user exit 3`: every unit stops, then flint ends with
    // that status (SetExitCode).
    ok(&["start", "demo"]);
    let last = common::main_pid(&control, "demo.service").expect("demo runs");
    ok(&["exit", "3"]);
    assert_eq!(
        flint.wait_end().and_then(|s| s.code()),
        Some(3),
        "{}",
        flint.log()
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{last}")).exists(),
        "demo.service stopped"
    );
}

#[test]
fn jobs_for_units_that_did_not_load_are_refused_as_systemctl_refuses_them() {
    // What systemd 252's user manager answered to the same commands on the
    // same units: a unit with no file is "not found" (5), a bad unit file
    // fails the job (1) and shows why in status, a masked unit cannot
    // start but has nothing to stop, a stop of what is not loaded is
    // refused (5), and a reload of what cannot reload is not applicable
    // (3), of what could but does not run refused (1).
    let tree = Tree::new();
    tree.write("ok.service", "[Service]\nExecStart=/bin/sleep 100\n");
    tree.write(
        "broken.service",
        "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    );
    tree.write(
        "needs.service",
        "[Unit]\nRequires=broken.service\nAfter=broken.service\n[Service]\nExecStart=/bin/sleep 100\n",
    );
    tree.write(
        "two.service",
        "[Service]\nExecStart=/bin/true\nExecStart=/bin/true\n",
    );
    tree.write(
        "rl.service",
        "[Service]\nExecStart=/bin/sleep 100\nExecReload=/bin/true\n",
    );
    std::os::unix::fs::symlink("/dev/null", tree.path().join("masked.service")).unwrap();
    let control = tree.path().join("control");
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().expect("utf-8 path"),
            "ok.service",
        ],
    );
    let up = wait_for(Duration::from_secs(10), || {
        (ctl(&control, &["is-active", "ok.service"]).0 == 0).then_some(())
    });
    assert!(up.is_some(), "{}", flint.log());
    let bad = "Unit two.service has a bad unit file setting.";
    tree.write("t@.service", "[Service]\nExecStart=/bin/sleep 100\n");
    for (args, code, first) in [
        // A template is no unit to start.
        (
            ["start", "t@.service"],
            1,
            "Failed to start t@.service: Unit name t@.service is missing the instance name."
                .to_string(),
        ),
        (
            ["start", "two.service"],
            1,
            format!("Failed to start two.service: {bad}"),
        ),
        (
            ["restart", "two.service"],
            1,
            format!("Failed to restart two.service: {bad}"),
        ),
        (
            ["try-restart", "two.service"],
            1,
            format!("Failed to try-restart two.service: {bad}"),
        ),
        (
            ["reload", "two.service"],
            1,
            format!("Failed to reload two.service: {bad}"),
        ),
        (
            ["stop", "two.service"],
            5,
            "Failed to stop two.service: Unit two.service not loaded.".into(),
        ),
        (
            ["start", "nope.service"],
            5,
            "Failed to start nope.service: Unit nope.service not found.".into(),
        ),
        (
            ["reload", "nope.service"],
            5,
            "Failed to reload nope.service: Unit nope.service not found.".into(),
        ),
        (
            ["stop", "nope.service"],
            5,
            "Failed to stop nope.service: Unit nope.service not loaded.".into(),
        ),
        (
            ["start", "masked.service"],
            1,
            "Failed to start masked.service: Unit masked.service is masked.".into(),
        ),
        (["stop", "masked.service"], 0, String::new()),
        // Sound, but nothing runs it: nothing to stop.
        (["stop", "rl.service"], 0, String::new()),
        (["try-restart", "masked.service"], 0, String::new()),
        (
            ["reload", "ok.service"],
            3,
            "Failed to reload ok.service: Job type reload is not applicable for unit ok.service."
                .into(),
        ),
        (
            ["reload", "rl.service"],
            1,
            "rl.service is not active, cannot reload.".into(),
        ),
    ] {
        let (got, out) = ctl(&control, &args);
        let line = out
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("flint: ");
        assert_eq!((got, line), (code, first.as_str()), "{args:?}: {out}");
    }
    // A start whose Requires= failed fails (systemd 252: "A dependency job
    // for needs.service failed.", exit 1).
    let (code, out) = ctl(&control, &["start", "needs.service"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("A dependency job for needs.service failed."),
        "{out}"
    );
    // A name refused does not keep the others from their jobs; the first
    // refusal is the answer.
    let (code, out) = ctl(&control, &["start", "nope.service", "rl.service"]);
    assert_eq!(code, 5, "{out}");
    assert_eq!(ctl(&control, &["is-active", "rl.service"]).0, 0, "{out}");
    let (code, out) = ctl(&control, &["status", "two.service"]);
    assert_eq!(code, 3, "{out}");
    let mut status = out.lines();
    assert_eq!(status.next(), Some("○ two.service"), "{out}");
    assert_eq!(
        status.next().map(str::trim),
        Some("Loaded: bad-setting (Reason: Unit two.service has a bad unit file setting.)"),
        "{out}"
    );
}

#[test]
fn socket_jobs_answer_as_systemctl_for_a_busy_service_listed_sockets_and_failed_starts() {
    // What systemd 252's user manager answered to the same commands on the
    // same units.
    let tree = Tree::new();
    let env = tree.path().join("env");
    tree.write("idle.service", "[Service]\nExecStart=/bin/sleep 100\n");
    let busy_port = free_port();
    tree.write(
        "busy.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{busy_port}\n"),
    );
    tree.write("busy.service", "[Service]\nExecStart=/bin/sleep 100\n");
    // Sockets= of a service started by itself: its sockets start first.
    let listed_port = free_port();
    tree.write(
        "listed.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{listed_port}\n"),
    );
    tree.write(
        "direct.service",
        &format!(
            "[Service]\nSockets=listed.socket\n\
             ExecStart=/bin/sh -c 'echo LISTEN_FDS=$LISTEN_FDS > {}; exec sleep 100'\n",
            env.display()
        ),
    );
    tree.write(
        "pre.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{}\nExecStartPre=/bin/false\n",
            free_port()
        ),
    );
    tree.write(
        "slow.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{}\nExecStartPre=/bin/sleep 30\nTimeoutSec=1\n",
            free_port()
        ),
    );
    // A port another program holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    tree.write(
        "taken.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{taken_port}\n"),
    );
    // Its ExecStartPost= fails until the flag exists: failed after it had
    // listeners, then started again.
    let flag = tree.path().join("flag");
    tree.write(
        "post.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{}\nExecStartPost=/bin/test -e {}\n",
            free_port(),
            flag.display()
        ),
    );
    for name in ["pre", "slow", "taken", "post"] {
        tree.write(
            &format!("{name}.service"),
            "[Service]\nExecStart=/bin/sleep 100\n",
        );
    }
    let control = tree.path().join("control");
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().expect("utf-8 path"),
            "idle.service",
        ],
    );
    let show = |unit: &str, props: &str| ctl(&control, &["show", "-p", props, unit]).1;

    // A socket whose service runs without it is refused (EBUSY).
    assert_eq!(ctl(&control, &["start", "busy.service"]).0, 0);
    let (code, out) = ctl(&control, &["start", "busy.socket"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Socket service busy.service already active, refusing."),
        "{out}"
    );
    assert_eq!(
        show("busy.socket", "ActiveState"),
        "ActiveState=inactive\n",
        "{}",
        flint.log()
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", busy_port)).is_err(),
        "nothing listens"
    );

    // The service's Sockets= start with it, and it gets their fds.
    let (code, out) = ctl(&control, &["start", "direct.service"]);
    assert_eq!(code, 0, "{out}");
    let got = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&env)
            .ok()
            .filter(|t| t.ends_with('\n'))
    });
    assert_eq!(got.as_deref(), Some("LISTEN_FDS=1\n"), "{}", flint.log());
    assert_eq!(
        show("listed.socket", "ActiveState,SubState"),
        "ActiveState=active\nSubState=running\n",
        "{}",
        flint.log()
    );
    assert_eq!(
        show("listed.socket", "Listen"),
        format!("Listen=127.0.0.1:{listed_port} (Stream)\n")
    );

    // Starts that fail: the job fails (once its commands ran) and the
    // socket is failed with systemd's result.
    for (unit, result) in [
        ("pre.socket", "exit-code"),
        ("slow.socket", "timeout"),
        ("taken.socket", "resources"),
        ("post.socket", "exit-code"),
    ] {
        let (code, out) = ctl(&control, &["start", unit]);
        assert_eq!(code, 1, "{unit}: {out}");
        assert_eq!(
            show(unit, "Result,ActiveState"),
            format!("Result={result}\nActiveState=failed\n"),
            "{unit}: {}",
            flint.log()
        );
    }
    let (code, out) = ctl(&control, &["is-system-running"]);
    assert_eq!((code, out.trim()), (1, "degraded"), "{out}");
    assert_eq!(ctl(&control, &["reset-failed", "pre.socket"]).0, 0);
    assert_eq!(
        show("pre.socket", "ActiveState"),
        "ActiveState=inactive\n",
        "{}",
        flint.log()
    );
    // Once the cause is gone, a start succeeds and answers so.
    drop(taken);
    std::fs::write(&flag, "").unwrap();
    for unit in ["taken.socket", "post.socket"] {
        let (code, out) = ctl(&control, &["start", unit]);
        assert_eq!(code, 0, "{unit}: {out}{}", flint.log());
        assert_eq!(
            show(unit, "Result,ActiveState"),
            "Result=success\nActiveState=active\n",
            "{unit}: {}",
            flint.log()
        );
    }
}

/// `NAccepted=`/`NRefused=` of a socket unit go on across a stop and a
/// start, as systemd keeps them for as long as the unit is loaded.
#[test]
fn a_socket_keeps_its_counters_across_a_stop_and_a_start() {
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "count.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    );
    tree.write(
        "count@.service",
        "[Service]\nExecStart=/bin/echo hi\nStandardInput=socket\n",
    );
    let control = tree.path().join("control");
    let _flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "count.socket"],
    );
    let accepted = || {
        let (_, out) = ctl(&control, &["show", "-p", "NAccepted", "count.socket"]);
        out.trim().to_string()
    };
    for _ in 0..2 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut buf = String::new();
        std::io::Read::read_to_string(&mut c, &mut buf).unwrap();
        assert_eq!(buf, "hi\n");
    }
    wait_for(Duration::from_secs(10), || {
        (accepted() == "NAccepted=2").then_some(())
    })
    .unwrap_or_else(|| panic!("{}", accepted()));
    assert_eq!(ctl(&control, &["stop", "count.socket"]).0, 0);
    assert_eq!(ctl(&control, &["start", "count.socket"]).0, 0);
    assert_eq!(accepted(), "NAccepted=2");
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut buf = String::new();
    std::io::Read::read_to_string(&mut c, &mut buf).unwrap();
    wait_for(Duration::from_secs(10), || {
        (accepted() == "NAccepted=3").then_some(())
    })
    .unwrap_or_else(|| panic!("{}", accepted()));
}

/// `systemctl daemon-reload` reads the unit files again and starts,
/// stops and restarts nothing (a newly enabled unit stays inactive), as
/// systemd's; a unit masked since it was loaded is refused; a reloading
/// unit counts as active; `reset-failed` with targets loaded succeeds;
/// a unit name that begins with `-` is no option.
#[test]
fn daemon_reload_reads_units_again_and_changes_nothing_that_runs() {
    let tree = Tree::new();
    tree.write(
        "a.service",
        "[Unit]\nDescription=one\nWants=t.target\n[Service]\nExecStart=/bin/sleep 1000\nExecReload=/bin/sleep 2\n",
    );
    tree.write("t.target", "[Unit]\nDescription=t\n");
    tree.write("b.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write("c.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let control = tree.path().join("control");
    let _flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "a.service",
            "c.service",
        ],
    );
    assert_eq!(ctl(&control, &["stop", "c.service"]).0, 0);
    tree.write(
        "a.service",
        "[Unit]\nDescription=two\nWants=t.target\n[Service]\nExecStart=/bin/sleep 1000\nExecReload=/bin/sleep 2\n",
    );
    std::fs::create_dir_all(tree.path().join("multi-user.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "../b.service",
        tree.path().join("multi-user.target.wants/b.service"),
    )
    .unwrap();
    let (code, out, err) = systemctl(&tree, &control, &["daemon-reload"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (_, shown) = ctl(&control, &["show", "-p", "Description", "a.service"]);
    assert_eq!(shown.trim(), "Description=two");
    assert_eq!(systemctl(&tree, &control, &["is-active", "b"]).0, 3);
    std::fs::remove_file(tree.path().join("c.service")).unwrap();
    std::os::unix::fs::symlink("/dev/null", tree.path().join("c.service")).unwrap();
    let (code, _, err) = systemctl(&tree, &control, &["start", "c"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Unit c.service is masked."), "{err}");
    // Reloading is active.
    assert_eq!(ctl(&control, &["reload", "--no-block", "a.service"]).0, 0);
    let (code, out, _) = systemctl(&tree, &control, &["is-active", "a"]);
    assert_eq!((code, out.as_str()), (0, "reloading\n"));
    assert_eq!(systemctl(&tree, &control, &["status", "a"]).0, 0);
    let (code, _, err) = systemctl(&tree, &control, &["reset-failed"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = systemctl(&tree, &control, &["is-active", "--", "-odd.service"]);
    assert_eq!((code, out.as_str()), (3, "inactive\n"), "{err}");
    // status: the Loaded: line, and a unit that is nowhere named after
    // the others.
    let (code, out, err) = systemctl(&tree, &control, &["status", "a", "nope"]);
    assert_eq!(code, 4, "{out}{err}");
    let fragment = tree.path().join("a.service");
    assert!(
        out.contains(&format!("Loaded: loaded ({}", fragment.display())),
        "{out}"
    );
    assert!(
        err.contains("Unit nope.service could not be found."),
        "{err}"
    );
    // A running unit masked (its file a link to /dev/null) and reloaded:
    // masked, still running with what it loaded, as systemd shows it
    // (once its reload above is over).
    assert!(
        wait_for(Duration::from_secs(10), || {
            (systemctl(&tree, &control, &["is-active", "a"]).1 == "active\n").then_some(())
        })
        .is_some()
    );
    std::fs::remove_file(tree.path().join("a.service")).unwrap();
    std::os::unix::fs::symlink("/dev/null", tree.path().join("a.service")).unwrap();
    let (code, _, err) = systemctl(&tree, &control, &["daemon-reload"]);
    assert_eq!(code, 0, "{err}");
    let (_, shown) = ctl(
        &control,
        &["show", "-p", "LoadState,ActiveState", "a.service"],
    );
    assert_eq!(
        shown.trim(),
        "LoadState=masked\nActiveState=active",
        "{shown}"
    );
    // `-P NAME`: its value only, as systemctl's.
    let (_, shown) = ctl(&control, &["show", "-P", "LoadState", "a.service"]);
    assert_eq!(shown, "masked\n");
    // The reload that showed the mask is done: no warning to reload.
    let (_, shown) = ctl(&control, &["show", "-P", "NeedDaemonReload", "a.service"]);
    assert_eq!(shown, "no\n");
    let (_, _, err) = systemctl(&tree, &control, &["status", "a"]);
    assert!(!err.contains("changed on disk"), "{err}");
    // A failed one whose file is gone stays failed until reset-failed, as
    // systemd keeps it.
    tree.write(
        "f.service",
        "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    );
    assert_eq!(systemctl(&tree, &control, &["start", "f"]).0, 1);
    std::fs::remove_file(tree.path().join("f.service")).unwrap();
    assert_eq!(systemctl(&tree, &control, &["daemon-reload"]).0, 0);
    let (code, out, _) = systemctl(&tree, &control, &["is-failed", "f"]);
    assert_eq!((code, out.as_str()), (0, "failed\n"));
    // A stopped unit whose file is gone (its package purged) is forgotten
    // at the reload, as systemd collects it: not found.
    std::fs::remove_file(tree.path().join("c.service")).unwrap();
    let (code, _, err) = systemctl(&tree, &control, &["daemon-reload"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = systemctl(&tree, &control, &["status", "c"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("Unit c.service could not be found."), "{err}");
    let (_, out, _) = systemctl(&tree, &control, &["status", "a"]);
    assert!(
        out.contains("Loaded: masked (Reason: Unit a.service is masked.)"),
        "{out}"
    );
    let (code, out, err) = systemctl(
        &tree,
        &control,
        &["list-units", "--state=masked", "--no-legend", "--plain"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..4]
                == ["a.service", "masked", "active", "running"]),
        "{out}"
    );
}

/// `systemctl set-default` and `get-default`, as Dockerfiles use them:
/// the link in /etc/systemd/system, its message, and the target it leads
/// to (through the links of the search path).
#[test]
fn set_default_and_get_default_as_systemctl() {
    let tree = Tree::new();
    let root = tree.path().join("root");
    let lib = root.join("lib/systemd/system");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    std::fs::write(lib.join("multi-user.target"), "[Unit]\nDescription=M\n").unwrap();
    std::fs::write(lib.join("graphical.target"), "[Unit]\nDescription=G\n").unwrap();
    std::os::unix::fs::symlink("graphical.target", lib.join("default.target")).unwrap();
    let root_arg = format!("--root={}", root.display());
    let control = tree.path().join("none");
    let run = |args: &[&str]| systemctl(&tree, &control, args);
    assert_eq!(run(&[&root_arg, "get-default"]).1, "graphical.target\n");
    let (code, _, err) = run(&[&root_arg, "set-default", "multi-user"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Created symlink") && err.contains("default.target"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_link(root.join("etc/systemd/system/default.target")).unwrap(),
        std::path::Path::new("/lib/systemd/system/multi-user.target")
    );
    assert_eq!(run(&[&root_arg, "get-default"]).1, "multi-user.target\n");
    let (code, _, err) = run(&[&root_arg, "set-default", "nope.target"]);
    assert_eq!(code, 1);
    assert!(err.contains("Failed to set default target"), "{err}");
    // Only a target can be the default.
    std::fs::write(lib.join("web.service"), "[Service]\nExecStart=/bin/true\n").unwrap();
    let (code, _, err) = run(&[&root_arg, "set-default", "web.service"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(run(&[&root_arg, "get-default"]).1, "multi-user.target\n");
}

/// A restart of a socket whose running service requires it (avahi, cups,
/// dbus) restarts the service with it: both end active, as in systemd
/// (before, the start of the socket was refused and both stayed down).
#[test]
fn a_restart_of_a_socket_its_service_requires_restarts_both() {
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "t.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\n"),
    );
    tree.write(
        "t.service",
        "[Unit]\nRequires=t.socket\nAfter=t.socket\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let control = tree.path().join("control");
    let _flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "t.socket",
            "t.service",
        ],
    );
    let state = |unit: &str| {
        let (_, out) = ctl(&control, &["show", "-p", "ActiveState", unit]);
        out.trim().to_string()
    };
    let first = wait_for(Duration::from_secs(10), || main_pid(&control, "t.service"))
        .expect("t.service runs");
    let (code, out) = ctl(&control, &["restart", "t.socket"]);
    assert_eq!(code, 0, "{out}");
    let again = wait_for(Duration::from_secs(10), || {
        main_pid(&control, "t.service").filter(|p| *p != first)
    });
    assert!(again.is_some(), "t.service started again");
    assert_eq!(state("t.socket"), "ActiveState=active");
    assert_eq!(state("t.service"), "ActiveState=active");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    // Both named: the service's own restart replaces the rest of the
    // socket's, and a later stop of the service is not undone.
    let (code, out) = ctl(&control, &["restart", "t.socket", "t.service"]);
    assert_eq!(code, 0, "{out}");
    wait_for(Duration::from_secs(10), || {
        (state("t.service") == "ActiveState=active").then_some(())
    })
    .expect("t.service runs");
    assert_eq!(ctl(&control, &["stop", "t.service"]).0, 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(state("t.service"), "ActiveState=inactive");
}

/// Runs flint by the name `journalctl` against the flint on `control`,
/// in UTC: exit code, stdout, stderr.
fn journalctl(tree: &Tree, control: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let link = common::link_as(tree, "journalctl");
    let out = Command::new(&link)
        .args(args)
        .env("FLINT_CONTROL", control)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn journalctl_shows_units_lines_and_flints_as_systemds_journalctl_shows_them() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    tree.write(
        "talk.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo first; echo \"<3>broken thing\"; echo \"<4>odd thing\"; echo last'\n",
    );
    tree.write(
        "fail.service",
        "[Service]\nSyslogIdentifier=failer\nExecStart=/bin/sh -c 'echo going down; exit 3'\n",
    );
    tree.write(
        "web@.service",
        "[Service]\nType=oneshot\nExecStart=/bin/echo instance %i\n",
    );
    // Colour, a tab, a control character: shown as journalctl shows them,
    // and exported so that journal-remote keeps every line.
    tree.write(
        "odd.service",
        "[Service]\nType=oneshot\nExecStart=/usr/bin/printf '\\033[1mbold\\033[0m\\ntab\\there\\nbell\\007\\n'\n",
    );
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "talk.service",
            "fail.service",
            "web@a.service",
            "web@b.service",
            "odd.service",
        ],
    );
    assert!(
        flint.wait_log("fail.service: Failed with result"),
        "{}",
        flint.log()
    );
    assert!(flint.wait_log("instance b"), "{}", flint.log());
    assert!(
        flint.wait_log("odd.service: Deactivated successfully"),
        "{}",
        flint.log()
    );
    let j = |args: &[&str]| journalctl(&tree, &control, args);
    let (_, out, _) = j(&["_SYSTEMD_UNIT=odd.service"]);
    assert!(
        out.contains("]: bold\n")
            && out.contains("]: tab        here\n")
            && out.contains("[5B blob data]"),
        "{out}"
    );

    // What a person types, checked by hand.
    let (code, out, err) = j(&["-u", "talk", "--no-pager", "-o", "cat"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"first") && lines.contains(&"last"), "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with("talk.service: ")),
        "flint's own lines about the unit: {out}"
    );
    assert!(!out.contains("going down"), "{out}");
    let (_, out, _) = j(&["-u", "talk.service", "-p", "err", "-o", "cat"]);
    assert_eq!(out, "broken thing\n");
    let (_, out, _) = j(&["-u", "fail", "-n", "1", "-o", "short"]);
    assert!(out.contains(" flint["), "{out}");
    assert!(
        out.ends_with("fail.service: Failed with result 'exit-code'.\n"),
        "{out}"
    );
    let (_, out, _) = j(&["-t", "failer", "-o", "short"]);
    assert!(out.contains(" failer["), "SyslogIdentifier=: {out}");
    let (_, out, _) = j(&["-u", "web@*", "-o", "cat", "-g", "^instance"]);
    let mut instances: Vec<&str> = out.lines().collect();
    instances.sort_unstable();
    assert_eq!(instances, ["instance a", "instance b"], "{out}");
    // -n +N: the first N (systemd 253 and later; 252 reads it as -n N).
    let first = out.lines().next().unwrap().to_string();
    let (_, out, _) = j(&["-u", "web@*", "-o", "cat", "-g", "^instance", "-n", "+1"]);
    assert_eq!(out, format!("{first}\n"));
    let (code, out, _) = j(&["-u", "web@.service", "-g", "nothing like this"]);
    assert_eq!(
        (code, out.as_str()),
        (1, "-- No entries --\n"),
        "-g without a match"
    );
    let (code, out, _) = j(&["-u", "nothing-here"]);
    assert_eq!((code, out.as_str()), (0, "-- No entries --\n"));
    let (code, out, _) = j(&["-q", "-u", "nothing-here"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (_, out, _) = j(&["-u", "talk", "-n", "1", "--show-cursor", "-o", "cat"]);
    let cursor = out
        .lines()
        .nth(1)
        .and_then(|l| l.strip_prefix("-- cursor: "));
    let cursor = cursor.unwrap_or_else(|| panic!("{out}")).to_string();
    let (_, after, _) = j(&["--after-cursor", &cursor, "-u", "talk"]);
    assert_eq!(after, "-- No entries --\n", "nothing after the last line");
    let (_, out, _) = j(&["-u", "talk", "--since", "1 min ago", "-o", "cat"]);
    assert!(out.contains("first"), "{out}");
    let (_, out, _) = j(&["-u", "talk", "--until", "1 min ago"]);
    assert_eq!(out, "-- No entries --\n");
    let (code, _, err) = j(&["--since", "garbage"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Failed to parse timestamp: garbage\n")
    );
    let (code, _, err) = j(&["-D", "/var/log/journal"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = j(&["-b", "-1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("No such boot ID"), "{err}");
    // Follow: the lines so far, then a new one as it comes.
    let link = tree.path().join("bin/journalctl");
    let mut follow = Command::new(&link)
        .args(["-f", "-u", "talk", "-o", "cat"])
        .env("FLINT_CONTROL", &control)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(follow.stdout.take().unwrap());
    let (code, _) = ctl(&control, &["restart", "talk.service"]);
    assert_eq!(code, 0);
    let mut seen = String::new();
    let found = wait_for(Duration::from_secs(10), || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).ok()?;
        seen.push_str(&line);
        (seen.matches("first\n").count() == 2).then_some(())
    });
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(found.is_some(), "{seen}");
    // -f -n 0: nothing of what was there, then what comes.
    let mut follow = Command::new(&link)
        .args(["-f", "-n", "0", "-u", "talk", "-o", "cat"])
        .env("FLINT_CONTROL", &control)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(follow.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let (code, _) = ctl(&control, &["restart", "talk.service"]);
    assert_eq!(code, 0);
    let mut seen = String::new();
    let found = wait_for(Duration::from_secs(10), || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).ok()?;
        seen.push_str(&line);
        seen.contains("last\n").then_some(())
    });
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(found.is_some(), "{seen}");
    assert_eq!(
        seen.matches("first\n").count(),
        1,
        "only the new run: {seen}"
    );

    // The same lines through systemd's own journalctl: flint's export
    // format, written to a journal file by systemd-journal-remote, read
    // back by journalctl with the same options.
    let remote = std::path::Path::new("/lib/systemd/systemd-journal-remote");
    let real = which("journalctl");
    let (Some(real), true) = (real, remote.exists()) else {
        eprintln!("skipped the comparison: journalctl or systemd-journal-remote is not installed");
        return;
    };
    let (code, export, err) = j(&["-o", "export"]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flint.journal");
    let mut convert = Command::new(remote)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut convert.stdin.take().unwrap(), export.as_bytes()).unwrap();
    assert!(convert.wait().unwrap().success());
    let root = nix::unistd::geteuid().is_root();
    let mut cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["-o", "short-iso"],
        vec!["-o", "short-precise"],
        vec!["-o", "short-iso-precise"],
        vec!["-o", "short-unix"],
        vec!["-o", "short-full"],
        vec!["-o", "short-monotonic"],
        vec!["-o", "cat"],
        vec!["-o", "with-unit"],
        vec!["-n", "3"],
        vec!["-r", "-n", "4"],
        vec!["-p", "warning"],
        vec!["-p", "err..warning", "-o", "cat"],
        vec!["-t", "sh"],
        vec!["-g", "thing"],
        vec!["-g", "THING"],
        vec!["_SYSTEMD_UNIT=talk.service"],
        vec!["--no-hostname"],
        vec!["-u", "web@*"],
        vec!["_SYSTEMD_UNIT=odd.service"],
        vec!["_SYSTEMD_UNIT=odd.service", "-o", "cat"],
    ];
    if root {
        // journalctl -u matches flint's lines about a unit by their
        // UNIT= with _PID=1, or OBJECT_SYSTEMD_UNIT= with _UID=0: the
        // latter holds for a flint run by root.
        cases.push(vec!["-u", "talk"]);
        cases.push(vec!["-u", "fail.service", "-o", "with-unit"]);
    }
    for case in &cases {
        let (code, ours, err) = j(case);
        assert_eq!(code, i32::from(case.contains(&"THING")), "{case:?}: {err}");
        let out = Command::new(&real)
            .arg(format!("--file={}", file.display()))
            .arg("--no-pager")
            .args(case)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let theirs = String::from_utf8_lossy(&out.stdout);
        assert_eq!(ours, theirs, "journalctl {case:?}");
    }
    // JSON: the same fields and values but the cursor, which is flint's
    // (an unprintable message as an array of its bytes).
    for unit in ["talk.service", "odd.service"] {
        let (_, ours, _) = j(&["-o", "json", "-u", unit]);
        let out = Command::new(&real)
            .arg(format!("--file={}", file.display()))
            .args(["-o", "json", &format!("_SYSTEMD_UNIT={unit}")])
            .output()
            .unwrap();
        let theirs = String::from_utf8_lossy(&out.stdout);
        let strip = |line: &str| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            v.as_object_mut().unwrap().remove("__CURSOR");
            v
        };
        let ours: Vec<_> = ours
            .lines()
            .map(strip)
            .filter(|v| v["_SYSTEMD_UNIT"] == unit)
            .collect();
        let theirs: Vec<_> = theirs.lines().map(strip).collect();
        assert_eq!(ours, theirs, "{unit}");
    }
    // verbose: the same fields (an unprintable one as a blob) after the
    // first line, which has the cursor.
    let (_, ours, _) = j(&["-o", "verbose", "_SYSTEMD_UNIT=odd.service"]);
    let out = Command::new(&real)
        .arg(format!("--file={}", file.display()))
        .args(["-o", "verbose", "_SYSTEMD_UNIT=odd.service"])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let fields = |text: &str| -> Vec<String> {
        let mut v: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("    "))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(fields(&ours), fields(&String::from_utf8_lossy(&out.stdout)));
    assert!(ours.contains("    MESSAGE=[12B blob data]\n"), "{ours}");
}

/// The path of a program on `PATH`.
fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}

#[test]
fn list_jobs_shows_waiting_and_running_jobs_as_systemctl() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    tree.write(
        "slow.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sleep 3\n",
    );
    tree.write(
        "later.service",
        "[Unit]\nAfter=slow.service\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
    );
    tree.write("idle.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "idle.service"],
    );
    assert!(flint.wait_log("idle.service: started"), "{}", flint.log());
    let (code, out, _) = systemctl(&tree, &control, &["list-jobs"]);
    assert_eq!((code, out.as_str()), (0, "No jobs running.\n"));
    let (code, out, _) = systemctl(&tree, &control, &["list-jobs", "--no-legend"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, _) = ctl(
        &control,
        &["start", "--no-block", "slow.service", "later.service"],
    );
    assert_eq!(code, 0);
    let (code, out, _) = systemctl(&tree, &control, &["list-jobs"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with("JOB UNIT"), "{out}");
    assert!(lines[0].ends_with(" TYPE  STATE"), "{out}");
    let row = |unit: &str| {
        lines
            .iter()
            .find(|l| l.contains(unit))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>())
    };
    assert_eq!(
        row("slow.service"),
        Some(vec!["slow.service", "start", "running"]),
        "{out}"
    );
    assert_eq!(
        row("later.service"),
        Some(vec!["later.service", "start", "waiting"]),
        "{out}"
    );
    assert_eq!(lines[4], "2 jobs listed.");
    let (_, out, _) = systemctl(&tree, &control, &["list-jobs", "lat*"]);
    assert_eq!(out.lines().count(), 4, "a pattern: {out}");
    let (_, out, _) = systemctl(&tree, &control, &["list-jobs", "nothing*"]);
    assert_eq!(out, "No jobs listed.\n");
    let done = wait_for(Duration::from_secs(15), || {
        let (_, out, _) = systemctl(&tree, &control, &["list-jobs"]);
        (out == "No jobs running.\n").then_some(())
    });
    assert!(done.is_some(), "the jobs end");
}

#[test]
fn list_dependencies_draws_the_tree_systemctl_draws() {
    // The same units under systemd 252's user manager print this tree
    // (with DefaultDependencies=no, so that no slices or boot targets
    // join in): states as glyphs, targets followed, a unit already on
    // the path as `...`, names sorted without case, targets last.
    let tree = Tree::new();
    let control = tree.path().join("control");
    let unit =
        |deps: &str, service: &str| format!("[Unit]\nDefaultDependencies=no\n{deps}{service}");
    tree.write(
        "top.target",
        &unit(
            "Wants=a.service b.service cyc.target\nRequires=mid.target\n",
            "",
        ),
    );
    tree.write("mid.target", &unit("Wants=c.service\n", ""));
    tree.write("cyc.target", &unit("Wants=top.target Zed.service\n", ""));
    let long = "[Service]\nExecStart=/bin/sleep 1000\n";
    tree.write("a.service", &unit("Requires=c.service\n", long));
    tree.write(
        "b.service",
        &unit("", "[Service]\nType=oneshot\nExecStart=/bin/false\n"),
    );
    tree.write(
        "c.service",
        &unit("", "[Service]\nType=oneshot\nExecStart=/bin/true\n"),
    );
    tree.write("d.service", &unit("PartOf=mid.target\n", long));
    tree.write("Zed.service", &unit("", long));
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "top.target",
            "d.service",
        ],
    );
    assert!(flint.wait_log("Reached target"), "{}", flint.log());
    assert!(flint.wait_log("b.service: Failed"), "{}", flint.log());
    // c.service's start (a oneshot) may end after the target is reached.
    assert!(
        flint.wait_log("c.service: Deactivated successfully"),
        "{}",
        flint.log()
    );
    let (code, out, err) = systemctl(&tree, &control, &["list-dependencies", "top.target"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "top.target\n\
         ● ├─a.service\n\
         × ├─b.service\n\
         ● ├─cyc.target\n\
         ● │ ├─Zed.service\n\
         \x20 │ └─...\n\
         ● └─mid.target\n\
         ○   ├─c.service\n\
         ●   └─d.service\n"
    );
    let (_, out, _) = systemctl(
        &tree,
        &control,
        &["list-dependencies", "--plain", "top.target"],
    );
    assert_eq!(
        out,
        "top.target\n  a.service\n  b.service\n  cyc.target\n  Zed.service\n  mid.target\n  c.service\n  d.service\n"
    );
    let (_, out, _) = systemctl(&tree, &control, &["list-dependencies", "mid.target", "a"]);
    assert_eq!(
        out,
        "mid.target\n○ ├─c.service\n● └─d.service\n\na.service\n○ └─c.service\n"
    );
    let (_, out, _) = systemctl(
        &tree,
        &control,
        &["list-dependencies", "--all", "top.target"],
    );
    assert!(out.contains("● ├─a.service\n○ │ └─c.service\n"), "{out}");
    // --reverse: what pulls a unit in, as systemd 252 prints it for the
    // same units (d.service is PartOf=mid.target).
    let reverse = |args: &[&str]| {
        let mut all = vec!["list-dependencies", "--reverse"];
        all.extend_from_slice(args);
        let (code, out, err) = systemctl(&tree, &control, &all);
        assert_eq!(code, 0, "{err}");
        out
    };
    assert_eq!(
        reverse(&["c.service"]),
        "c.service\n\
         ● ├─a.service\n\
         ● └─mid.target\n\
         ●   └─top.target\n\
         ●     └─cyc.target\n\
         \x20       └─...\n"
    );
    assert_eq!(
        reverse(&["d.service"]),
        "d.service\n\
         ● └─mid.target\n\
         ●   └─top.target\n\
         ●     └─cyc.target\n\
         \x20       └─...\n"
    );
    assert_eq!(
        reverse(&["--plain", "c.service"]),
        "c.service\n  a.service\n  mid.target\n  top.target\n  cyc.target\n"
    );
    assert_eq!(
        reverse(&["--all", "c.service"]),
        "c.service\n\
         ● ├─a.service\n\
         ● │ └─top.target\n\
         ● │   └─cyc.target\n\
         \x20 │     └─...\n\
         ● └─mid.target\n\
         ●   └─top.target\n\
         ●     └─cyc.target\n\
         \x20       └─...\n"
    );
}

#[test]
fn cancel_ends_waiting_jobs_as_systemctl_cancel() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let mark = tree.path().join("later-ran");
    tree.write(
        "slow.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sleep 3\n",
    );
    tree.write(
        "later.service",
        &format!(
            "[Unit]\nAfter=slow.service\n[Service]\nType=oneshot\nExecStart=/bin/touch {}\n",
            mark.display()
        ),
    );
    tree.write(
        "needs.service",
        "[Unit]\nRequires=later.service\nAfter=later.service\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
    );
    tree.write("idle.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "idle.service"],
    );
    assert!(flint.wait_log("idle.service: started"), "{}", flint.log());
    let (code, _) = ctl(&control, &["start", "--no-block", "slow.service"]);
    assert_eq!(code, 0);
    common::link_as(&tree, "systemctl");
    // A client waits for later.service's start, which waits for slow.
    let waiter = {
        let tree_path = tree.path().to_path_buf();
        let control = control.clone();
        std::thread::spawn(move || {
            let out = Command::new(tree_path.join("bin/systemctl"))
                .args(["start", "needs.service"])
                .env("FLINT_CONTROL", &control)
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let id = wait_for(Duration::from_secs(10), || {
        let (_, out, _) = systemctl(&tree, &control, &["list-jobs", "--no-legend", "later*"]);
        out.split_whitespace().next().map(str::to_string)
    })
    .expect("later.service has a job");
    let (code, _, err) = systemctl(&tree, &control, &["cancel", &id]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = waiter.join().unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("A dependency job for needs.service failed."),
        "what requires it fails: {err}"
    );
    let (_, out, _) = systemctl(&tree, &control, &["list-jobs", "--no-legend"]);
    assert!(!out.contains("later.service"), "{out}");
    let (code, _, err) = systemctl(&tree, &control, &["cancel", "999999"]);
    assert_eq!(code, 1);
    assert!(err.contains("Job 999999 does not exist."), "{err}");
    let (code, _, err) = systemctl(&tree, &control, &["cancel", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("Failed to parse job id \"x\""), "{err}");
    // slow.service's own start goes on and ends; later.service never ran.
    let done = wait_for(Duration::from_secs(15), || {
        let (_, out, _) = systemctl(&tree, &control, &["list-jobs"]);
        (out == "No jobs running.\n").then_some(())
    });
    assert!(done.is_some());
    std::thread::sleep(Duration::from_millis(300));
    assert!(!mark.exists(), "a canceled start does not happen");
    // A client waiting for the canceled job itself is told so.
    let (code, _) = ctl(&control, &["start", "--no-block", "slow.service"]);
    assert_eq!(code, 0);
    let waiter = {
        let tree_path = tree.path().to_path_buf();
        let control = control.clone();
        std::thread::spawn(move || {
            let out = Command::new(tree_path.join("bin/systemctl"))
                .args(["start", "later.service"])
                .env("FLINT_CONTROL", &control)
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    wait_for(Duration::from_secs(10), || {
        let (_, out, _) = systemctl(&tree, &control, &["list-jobs", "--no-legend", "later*"]);
        (!out.is_empty()).then_some(())
    })
    .expect("later.service has a job");
    let (code, _, err) = systemctl(&tree, &control, &["cancel"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = waiter.join().unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("Job for later.service canceled."), "{err}");
}

/// A service whose `ExecStop=` leaves a line in `stops`.
fn stoppable(tree: &Tree, stops: &std::path::Path) {
    tree.write(
        "a.service",
        &format!(
            "[Service]\nExecStart=/bin/sleep 1000\nExecStop=/bin/sh -c 'echo stopped >> {}'\n",
            stops.display()
        ),
    );
}

/// `systemctl exit CODE` stops the units in order and ends flint with
/// CODE (a user manager's and a container's way to end); `poweroff`,
/// `halt`, `reboot` and `kexec` are refused where flint is not the
/// system's init, and flint keeps running.
#[test]
fn exit_stops_the_units_and_ends_flint_with_its_code_and_poweroff_needs_pid_1() {
    let tree = Tree::new();
    let stops = tree.path().join("stops");
    stoppable(&tree, &stops);
    let control = tree.path().join("control");
    let mut flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "a.service"],
    );
    for verb in ["poweroff", "halt", "reboot", "kexec"] {
        let (code, _, err) = systemctl(&tree, &control, &[verb]);
        assert_eq!(code, 1, "{verb}: {err}");
        assert!(
            err.contains(&format!(
                "Refusing to {verb}: flint is not this system's init"
            )),
            "{err}"
        );
    }
    // Called by systemd's names for these links.
    let poweroff = tree.path().join("bin/poweroff");
    std::os::unix::fs::symlink(common::flint_bin(), &poweroff).unwrap();
    let out = Command::new(&poweroff)
        .env("FLINT_CONTROL", &control)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Refusing to poweroff"),
        "{out:?}"
    );
    assert_eq!(systemctl(&tree, &control, &["is-active", "a"]).0, 0);
    // A masked ending target is refused as masked, as systemd refuses it.
    std::os::unix::fs::symlink("/dev/null", tree.path().join("ctrl-alt-del.target")).unwrap();
    let (code, _, err) = systemctl(&tree, &control, &["start", "ctrl-alt-del.target"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Unit ctrl-alt-del.target is masked."), "{err}");
    // As a dependency (`OnFailure=reboot.target`) too: refused, logged.
    tree.write(
        "boom.service",
        "[Unit]\nOnFailure=reboot.target\n[Service]\nExecStart=/bin/false\n",
    );
    systemctl(&tree, &control, &["start", "boom"]);
    assert!(
        wait_for(Duration::from_secs(10), || {
            flint
                .log()
                .contains("reboot.target: start refused: Refusing to reboot: flint is not this system's init")
                .then_some(())
        })
        .is_some(),
        "{}",
        flint.log()
    );
    assert_eq!(systemctl(&tree, &control, &["is-active", "a"]).0, 0);
    let (code, _, err) = systemctl(&tree, &control, &["exit", "7"]);
    assert_eq!(code, 0, "{err}");
    let status = flint.wait_end().expect("flint ended");
    assert_eq!(status.code(), Some(7), "{}", flint.log());
    assert_eq!(std::fs::read_to_string(&stops).unwrap(), "stopped\n");
}

/// A unit's `OnFailure=poweroff.target` ends a flint that is a
/// container's init as `systemctl poweroff` does (its units stop first);
/// a user flint's `OnSuccess=exit.target` ends it.
#[test]
fn a_failure_that_asks_for_poweroff_ends_a_container_and_exit_target_a_user_flint() {
    if !common::require_root("a PID namespace whose init flint is")
        || !common::require("unshare", "flint as PID 1 of a PID namespace (util-linux)")
    {
        return;
    }
    let tree = Tree::new();
    let stops = tree.path().join("stops");
    stoppable(&tree, &stops);
    tree.write(
        "boom.service",
        "[Unit]\nOnFailure=poweroff.target\nAfter=a.service\n[Service]\nExecStart=/bin/sh -c 'sleep 1; exit 3'\n",
    );
    let control = tree.path().join("control");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount", "--mount-proc", "--"])
        .arg(common::flint_bin())
        .args(["run", "--unit-dir"])
        .arg(tree.path())
        .args([
            "--control",
            control.to_str().unwrap(),
            "a.service",
            "boom.service",
        ]);
    let mut flint = Flint::run_command_until(cmd, "unit(s) running");
    let status = flint.wait_end().expect("flint ended");
    assert_eq!(status.code(), Some(0), "{}", flint.log());
    assert_eq!(
        std::fs::read_to_string(&stops).unwrap_or_default(),
        "stopped\n"
    );
    // A user flint: exit.target, with no unit file for it.
    let tree = Tree::new();
    tree.write(
        "done.service",
        "[Unit]\nOnSuccess=exit.target\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
    );
    let rt = tree.path().join("rt");
    std::fs::create_dir(&rt).unwrap();
    let mut flint = Flint::run_args(
        &[
            "run".as_ref(),
            "--user".as_ref(),
            "--unit-dir".as_ref(),
            tree.path().as_os_str(),
            "done.service".as_ref(),
        ],
        &[("XDG_RUNTIME_DIR", &rt)],
    );
    let status = flint.wait_end().expect("flint ended");
    assert_eq!(status.code(), Some(0), "{}", flint.log());
}

/// As a container's init (PID 1 of its PID namespace), `systemctl
/// poweroff` stops the units in order and ends flint, which ends the
/// container; with `--force` it ends at once, without `ExecStop=`.
#[test]
fn poweroff_ends_flint_as_pid_1_and_force_skips_the_stops() {
    if !common::require_root("a PID namespace whose init flint is")
        || !common::require("unshare", "flint as PID 1 of a PID namespace (util-linux)")
    {
        return;
    }
    for force in [false, true] {
        let tree = Tree::new();
        let stops = tree.path().join("stops");
        stoppable(&tree, &stops);
        let control = tree.path().join("control");
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount", "--mount-proc", "--"])
            .arg(common::flint_bin())
            .args(["run", "--unit-dir"])
            .arg(tree.path())
            .args(["--control", control.to_str().unwrap(), "a.service"]);
        let mut flint = Flint::run_command_until(cmd, "unit(s) running");
        let mut args = vec!["poweroff"];
        if force {
            args.push("--force");
        }
        let (code, _, err) = systemctl(&tree, &control, &args);
        assert_eq!(code, 0, "{err}\n{}", flint.log());
        let status = flint.wait_end().expect("flint ended");
        assert_eq!(status.code(), Some(0), "{}", flint.log());
        let stopped = std::fs::read_to_string(&stops).unwrap_or_default();
        assert_eq!(
            stopped,
            if force { "" } else { "stopped\n" },
            "force {force}"
        );
    }
}

/// A failed `Accept=yes` instance stays loaded, failed, as systemd keeps
/// it: `list-units --failed` shows it, `is-system-running` says
/// degraded, `reset-failed` lets go of it. The newest 64 are kept, so that
/// failing connections cannot fill flint's memory.
#[test]
fn failed_accept_yes_instances_stay_failed_until_reset() {
    let tree = Tree::new();
    let sock = tree.path().join("f.sock");
    tree.write(
        "f.socket",
        &format!(
            "[Socket]\nListenStream={}\nAccept=yes\nTriggerLimitBurst=1000\n",
            sock.display()
        ),
    );
    tree.write(
        "f@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/sh -c 'exit 3'\n",
    );
    tree.write(
        "ok.socket",
        &format!(
            "[Socket]\nListenStream={}\nAccept=yes\n",
            tree.path().join("ok.sock").display()
        ),
    );
    // Collected at once, failed or not, as systemd collects it.
    tree.write(
        "gc.socket",
        &format!(
            "[Socket]\nListenStream={}\nAccept=yes\n",
            tree.path().join("gc.sock").display()
        ),
    );
    tree.write(
        "gc@.service",
        "[Unit]\nCollectMode=inactive-or-failed\n[Service]\nStandardInput=socket\nExecStart=/bin/false\n",
    );
    tree.write(
        "ok@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/true\n",
    );
    let control = tree.path().join("control");
    let flint = Flint::run_dir(
        tree.path(),
        &[
            "--control",
            control.to_str().unwrap(),
            "f.socket",
            "ok.socket",
            "gc.socket",
        ],
        &[],
    );
    let failed_rows = || {
        let (_, text) = ctl(&control, &["list-units", "--failed", "--no-legend"]);
        text.lines().filter(|l| l.contains("f@")).count()
    };
    // One that succeeds is let go of as it ends.
    let c = std::os::unix::net::UnixStream::connect(tree.path().join("ok.sock")).unwrap();
    drop(c);
    let c = std::os::unix::net::UnixStream::connect(tree.path().join("gc.sock")).unwrap();
    drop(c);
    for _ in 0..3 {
        let c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        drop(c);
    }
    assert!(
        wait_for(Duration::from_secs(15), || (failed_rows() == 3)
            .then_some(()))
        .is_some(),
        "{}",
        flint.log()
    );
    assert!(flint.wait_log("gc@"), "{}", flint.log());
    std::thread::sleep(Duration::from_millis(300));
    let (_, text) = ctl(&control, &["list-units", "--all", "--no-legend"]);
    assert!(!text.contains("ok@") && !text.contains("gc@"), "{text}");
    let (code, text) = ctl(&control, &["is-system-running"]);
    assert_eq!((code, text.trim()), (1, "degraded"));
    // Its status is the failed instance's.
    let (_, text) = ctl(&control, &["list-units", "--failed", "--no-legend"]);
    let name = text
        .split_whitespace()
        .find(|w| w.starts_with("f@"))
        .unwrap()
        .to_string();
    let (code, status) = ctl(&control, &["status", &name]);
    assert_eq!(code, 3, "{status}");
    assert!(
        status.contains("Active: failed (Result: exit-code)"),
        "{status}"
    );
    // Its main process as systemctl shows one that ended, and its pid
    // kept in ExecMainPID=.
    let main = status
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Main PID: "))
        .unwrap_or_else(|| panic!("{status}"));
    let (pid, how) = main.split_once(' ').unwrap();
    assert_eq!(how, "(code=exited, status=3)", "{status}");
    let (_, shown) = ctl(&control, &["show", "-p", "MainPID,ExecMainPID", &name]);
    assert_eq!(shown, format!("MainPID=0\nExecMainPID={pid}\n"));
    // The newest 64.
    for _ in 0..70 {
        let c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        drop(c);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        wait_for(Duration::from_secs(20), || {
            let (_, text) = ctl(&control, &["list-units", "--all", "--no-legend"]);
            (!text.contains(&name) && failed_rows() == 64).then_some(())
        })
        .is_some(),
        "{} kept\n{}",
        failed_rows(),
        flint.log()
    );
    assert_eq!(ctl(&control, &["reset-failed"]).0, 0);
    assert_eq!(failed_rows(), 0);
    let (code, text) = ctl(&control, &["is-system-running"]);
    assert_eq!((code, text.trim()), (0, "running"));
}

/// A start that a condition skipped says so in `status`, with each
/// condition that failed, as systemctl's "Condition:" lines; a start
/// whose conditions hold drops them.
#[test]
fn status_says_which_condition_skipped_the_start() {
    let tree = Tree::new();
    let flag = tree.path().join("flag");
    tree.write(
        "c.service",
        &format!(
            "[Unit]\nConditionPathExists={}\n[Service]\nExecStart=/bin/sleep 1000\n",
            flag.display()
        ),
    );
    tree.write(
        "s.socket",
        &format!(
            "[Unit]\nConditionPathExists=!{}\n[Socket]\nListenStream={}\n",
            tree.path().display(),
            tree.path().join("s.sock").display()
        ),
    );
    tree.write("s.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write("keep.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let control = tree.path().join("control");
    let _flint = Flint::run_dir(
        tree.path(),
        &["--control", control.to_str().unwrap(), "keep.service"],
        &[],
    );
    assert_eq!(ctl(&control, &["start", "c.service", "s.socket"]).0, 0);
    let (_, status) = ctl(&control, &["status", "c.service"]);
    let lines: Vec<&str> = status.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("  Condition: start condition failed at "))
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(
        lines[at + 1],
        format!(
            "             \u{2514}\u{2500} ConditionPathExists={} was not met",
            flag.display()
        ),
        "{status}"
    );
    let (_, status) = ctl(&control, &["status", "s.socket"]);
    assert!(
        status.contains(&format!(
            "\u{2514}\u{2500} ConditionPathExists=!{} was not met",
            tree.path().display()
        )),
        "{status}"
    );
    std::fs::write(&flag, "").unwrap();
    assert_eq!(ctl(&control, &["start", "c.service"]).0, 0);
    let (_, status) = ctl(&control, &["status", "c.service"]);
    assert!(!status.contains("Condition:"), "{status}");
}

/// A socket whose service is an alias (`syslog.socket` starts
/// `syslog.service`, the name rsyslog's `Alias=` links) triggers the unit
/// itself, and that unit is triggered by it, as systemd shows them.
#[test]
fn a_socket_started_through_an_alias_triggers_the_unit_itself() {
    let tree = Tree::new();
    let sock = tree.path().join("log.sock");
    tree.write(
        "logs.socket",
        &format!(
            "[Socket]\nListenStream={}\nService=logger.service\n",
            sock.display()
        ),
    );
    tree.write("rlog.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    std::os::unix::fs::symlink("rlog.service", tree.path().join("logger.service")).unwrap();
    let control = tree.path().join("control");
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "logs.socket"],
    );
    let _client = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || {
            (ctl(&control, &["show", "-P", "ActiveState", "rlog.service"]).1 == "active\n")
                .then_some(())
        })
        .is_some(),
        "{}",
        flint.log()
    );
    let (_, shown) = ctl(&control, &["show", "-P", "Triggers", "logs.socket"]);
    assert_eq!(shown, "rlog.service\n", "{}", flint.log());
    let (_, shown) = ctl(&control, &["show", "-P", "TriggeredBy", "rlog.service"]);
    assert_eq!(shown, "logs.socket\n", "{}", flint.log());
}

/// flint's start is `starting` until the jobs it began with are done, as
/// systemd's boot: `is-system-running` says so, `--wait` (flint's, and
/// Debian's systemctl, which waits for the manager's `StartupFinished`
/// signal from `org.freedesktop.systemd1` on the private socket) returns
/// once it is over, and `systemd-analyze` reads when it finished and how
/// long each unit took.
#[test]
fn the_start_is_starting_until_its_jobs_are_done_and_systemd_analyze_times_it() {
    if !common::require("systemctl", "systemd: the client of the private socket")
        || !common::require("systemd-analyze", "systemd: reads the start's times")
    {
        return;
    }
    let tree = Tree::new();
    tree.write(
        "units/slow.service",
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 3\n",
    );
    tree.write(
        "units/default.target",
        "[Unit]\nWants=slow.service\nAfter=slow.service\n",
    );
    let (mut flint, rt, control) = user_flint(&tree, &["default.target"]);
    let (code, out) = ctl(&control, &["is-system-running"]);
    assert_eq!((code, out.trim()), (1, "starting"), "{}", flint.log());
    // systemctl asks only a manager of a machine booted with systemd
    // (`/run/systemd/system`): in a mount namespace of its own, as root.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let waiter = root.then(|| {
        Command::new("unshare")
            .args(["--mount", "--", "sh", "-c"])
            .arg(
                "mount --make-rprivate / && mount -t tmpfs tmpfs /run && \
                 mkdir -p /run/systemd/system && \
                 exec timeout 30 systemctl --user is-system-running --wait",
            )
            .env("XDG_RUNTIME_DIR", &rt)
            .env("SYSTEMD_IGNORE_CHROOT", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    });
    let (code, out) = ctl(&control, &["is-system-running", "--wait"]);
    assert_eq!((code, out.trim()), (0, "running"), "{}", flint.log());
    if let Some(waiter) = waiter {
        let out = waiter.wait_with_output().unwrap();
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
            (Some(0), "running"),
            "systemctl is-system-running --wait: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            flint.log()
        );
    } else {
        eprintln!("SKIP: systemctl's half needs root (a mount namespace with /run/systemd/system)");
    }
    // At least the oneshot's 3 s (the machine may be slow: less than 60).
    let seconds_after = |text: &str, lead: &str| -> f64 {
        let at = text
            .find(lead)
            .unwrap_or_else(|| panic!("no {lead:?} in {text}"));
        let word = text[at + lead.len()..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('.');
        let secs: f64 = word
            .strip_suffix('s')
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("{word:?} after {lead:?} in {text}"));
        assert!((3.0..60.0).contains(&secs), "{lead}{word} in {text}");
        secs
    };
    seconds_after(&flint.log(), "flint: Startup finished in ");
    let analyze = |args: &[&str]| {
        let out = Command::new("timeout")
            .args(["30", "systemd-analyze", "--user"])
            .args(args)
            .env("XDG_RUNTIME_DIR", &rt)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd-analyze {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let time = analyze(&["time"]);
    assert!(time.starts_with("Startup finished in "), "{time}");
    let total = seconds_after(&time, "Startup finished in ");
    assert!(time.contains("(userspace)"), "{time}");
    let reached = seconds_after(&time, "default.target reached after ");
    assert!(reached <= total, "{time}");
    // How long the oneshot took, from its monotonic timestamps.
    let blame = analyze(&["blame"]);
    let line = blame
        .lines()
        .find(|l| l.ends_with(" slow.service"))
        .unwrap_or_else(|| panic!("{blame}"));
    assert!(line.trim_start().starts_with("3.0"), "{blame}");
    let chain = analyze(&["critical-chain"]);
    assert!(chain.contains("└─slow.service @"), "{chain}");
    flint.stop();
}
