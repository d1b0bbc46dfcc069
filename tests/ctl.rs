//! `flint ctl` against a running `flint run`: status with the service's own
//! `STATUS=`, listings, start/stop/restart, systemctl's exit codes, JSON.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Flint, Tree, free_port, wait_for};

fn ctl(control: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(common::flint_bin())
        .arg("ctl")
        .arg("--control")
        .arg(control)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

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
            && text.contains("Status: all good")
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
    let (_, text) = ctl(&control, &["list-sockets"]);
    assert!(
        text.contains("web.socket") && text.contains("listening"),
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
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "r.service",
            "nr.service",
            "none.service",
        ],
    );
    wait_for(Duration::from_secs(15), || {
        flint.log().contains("nr.service: ready").then_some(())
    })
    .expect("nr ready");
    assert_eq!(ctl(&control, &["reload", "r.service"]).0, 0);
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
}
