//! Ordering and requirements between units under `flint run`, as systemd
//! has them: a unit ordered `After=` another starts once that one is
//! ready, a failed requirement fails what requires it, `BindsTo=`,
//! `PartOf=` and `Conflicts=` propagate, units stop in reverse order, and
//! the kill signals of restarts, stop timeouts and the watchdog.

mod common;

use common::ctl;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Flint, Tree, wait_for};

/// `flint ctl --json status UNIT`: the unit's object.
fn status(control: &Path, unit: &str) -> serde_json::Value {
    let (_, text) = ctl(control, &["--json", "status", unit]);
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    v["units"][0].clone()
}

/// Waits (bounded) until `unit` is in `state` (`active`, `inactive`, ...).
fn wait_state(control: &Path, unit: &str, state: &str) -> serde_json::Value {
    wait_for(Duration::from_secs(15), || {
        let s = status(control, unit);
        (s["state"] == state).then_some(s)
    })
    .unwrap_or_else(|| panic!("{unit} did not become {state}: {}", status(control, unit)))
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A tree with a control socket, and flint on it.
fn run(tree: &Tree, units: &[&str]) -> (Flint, PathBuf) {
    let control = tree.path().join("control");
    let mut args = vec!["--control", control.to_str().unwrap()];
    args.extend_from_slice(units);
    (Flint::run(tree, &args), control)
}

/// Runs `sh -c SCRIPT` (quoted for a unit file).
fn sh(script: &str) -> String {
    format!("/bin/sh -c '{script}'")
}

/// A notify daemon that gets ready after a second: it writes `ready` into
/// the file in its first argument, then sends `READY=1`.
const SLOW_NOTIFY: &str = r#"
import os, socket, sys, time
time.sleep(1)
with open(sys.argv[1], "a") as f:
    f.write("ready\n")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
time.sleep(1000)
"#;

#[test]
fn a_unit_after_a_notify_daemon_starts_once_it_is_ready() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    tree.write("d.py", SLOW_NOTIFY);
    tree.write(
        "db.service",
        &format!(
            "[Service]\nType=notify\nExecStart=/usr/bin/python3 {} {l}\nExecStartPost={}\n",
            tree.path().join("d.py").display(),
            sh(&format!("echo post >> {l}"))
        ),
    );
    tree.write(
        "web.service",
        &format!(
            "[Unit]\nRequires=db.service\nAfter=db.service\n[Service]\nExecStart={}\n",
            sh(&format!("echo web >> {l}; exec sleep 1000"))
        ),
    );
    // Only web.service is named: db.service comes in through Requires=.
    let (flint, control) = run(&tree, &["web.service"]);
    let seen = wait_for(Duration::from_secs(15), || {
        Some(lines(&log)).filter(|l| l.len() >= 3)
    })
    .unwrap_or_else(|| panic!("all three ran: {:?}\n{}", lines(&log), flint.log()));
    assert_eq!(
        seen,
        ["ready", "post", "web"],
        "web.service starts after READY=1 and db's ExecStartPost="
    );
    wait_state(&control, "web.service", "active");
    assert!(flint.wait_log("db.service: ready"), "{}", flint.log());
}

#[test]
fn a_oneshot_chain_runs_in_order() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    // Without ordering, the shorter sleeps would finish first: c, b, a.
    for (name, sleep, after) in [("a", "0.6", ""), ("b", "0.3", "a"), ("c", "0", "b")] {
        let deps = if after.is_empty() {
            String::new()
        } else {
            format!("Requires={after}.service\nAfter={after}.service\n")
        };
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Unit]\n{deps}[Service]\nType=oneshot\nExecStart={}\n",
                sh(&format!("sleep {sleep}; echo {name} >> {l}"))
            ),
        );
    }
    let (flint, _control) = run(&tree, &["c.service"]);
    let seen = wait_for(Duration::from_secs(15), || {
        Some(lines(&log)).filter(|l| l.len() >= 3)
    })
    .unwrap_or_else(|| panic!("the chain ran: {}", flint.log()));
    assert_eq!(seen, ["a", "b", "c"]);
}

#[test]
fn a_failed_requirement_fails_its_dependents_and_wanted_ones_start_anyway() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    tree.write(
        "bad.service",
        &format!(
            "[Service]\nType=oneshot\nExecStart={}\n",
            sh("sleep 0.5; exit 1")
        ),
    );
    tree.write(
        "needs.service",
        &format!(
            "[Unit]\nDescription=needs bad\nRequires=bad.service\nAfter=bad.service\n[Service]\nExecStart={}\n",
            sh(&format!("echo needs >> {l}; exec sleep 1000"))
        ),
    );
    // Further down the chain: it fails too.
    tree.write(
        "deeper.service",
        &format!(
            "[Unit]\nBindsTo=needs.service\nAfter=needs.service\n[Service]\nExecStart={}\n",
            sh(&format!("echo deeper >> {l}; exec sleep 1000"))
        ),
    );
    tree.write(
        "wants.service",
        &format!(
            "[Unit]\nWants=bad.service\nAfter=bad.service\n[Service]\nExecStart={}\n",
            sh(&format!("echo wants >> {l}; exec sleep 1000"))
        ),
    );
    // Requisite= on a unit nobody starts: it is not pulled in, and fails.
    tree.write("off.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "req.service",
        &format!(
            "[Unit]\nRequisite=off.service\nAfter=off.service\n[Service]\nExecStart={}\n",
            sh(&format!("echo req >> {l}; exec sleep 1000"))
        ),
    );
    let (flint, control) = run(
        &tree,
        &[
            "needs.service",
            "deeper.service",
            "wants.service",
            "req.service",
        ],
    );
    let wants = wait_state(&control, "wants.service", "active");
    assert_eq!(wants["result"], "success");
    let bad = wait_state(&control, "bad.service", "failed");
    assert_eq!(bad["result"], "exit-code");
    for unit in ["needs.service", "deeper.service", "req.service"] {
        let s = wait_for(Duration::from_secs(10), || {
            let s = status(&control, unit);
            (s["job_result"] == "dependency").then_some(s)
        })
        .unwrap_or_else(|| panic!("{unit}: {}\n{}", status(&control, unit), flint.log()));
        assert_eq!(s["state"], "inactive", "{unit}: {s}");
        assert_eq!(s["result"], "success", "{unit}: {s}");
    }
    assert!(
        flint.wait_log("needs.service: Dependency failed for needs bad."),
        "{}",
        flint.log()
    );
    assert!(
        flint.wait_log("Job needs.service/start failed with result 'dependency'"),
        "{}",
        flint.log()
    );
    assert_eq!(lines(&log), ["wants"], "only the wanting unit ran");
}

#[test]
fn binds_to_follows_the_bound_unit_down() {
    let tree = Tree::new();
    let stopfile = tree.path().join("stop-base");
    tree.write(
        "base.service",
        &format!(
            "[Service]\nExecStart={}\n",
            sh(&format!(
                "while [ ! -e {} ]; do sleep 0.1; done",
                stopfile.display()
            ))
        ),
    );
    tree.write(
        "bound.service",
        "[Unit]\nBindsTo=base.service\nAfter=base.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    // Bound to and ordered after a oneshot that is inactive once it ran:
    // never started (systemd's unit_verify_deps()).
    tree.write(
        "short.service",
        "[Service]\nType=oneshot\nExecStart=/bin/true\n",
    );
    tree.write(
        "tied.service",
        "[Unit]\nBindsTo=short.service\nAfter=short.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    // Without After=: started, then stopped with it.
    tree.write(
        "loose.service",
        "[Unit]\nBindsTo=short.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let (flint, control) = run(&tree, &["bound.service", "tied.service", "loose.service"]);
    wait_state(&control, "bound.service", "active");
    // `flint ctl stop` of the bound unit stops the binder too.
    assert_eq!(ctl(&control, &["stop", "base.service"]).0, 0);
    wait_state(&control, "base.service", "inactive");
    wait_state(&control, "bound.service", "inactive");
    // Starting the binder starts what it is bound to…
    assert_eq!(ctl(&control, &["start", "bound.service"]).0, 0);
    wait_state(&control, "base.service", "active");
    wait_state(&control, "bound.service", "active");
    // …and when that exits on its own, the binder follows.
    std::fs::write(&stopfile, "").unwrap();
    wait_state(&control, "base.service", "inactive");
    wait_state(&control, "bound.service", "inactive");
    assert!(
        flint.wait_log("tied.service: Bound to unit short.service, but unit isn't active."),
        "{}",
        flint.log()
    );
    wait_state(&control, "tied.service", "inactive");
    wait_state(&control, "loose.service", "inactive");
    // (Its spawn may finish after the stop began, when the oneshot ended
    // first: started all the same.)
    let log = flint.log();
    assert!(
        log.contains("loose.service: started")
            || log
                .lines()
                .any(|l| l.contains("loose.service: stopping")
                    && l.contains("started during a stop")),
        "{log}"
    );
}

#[test]
fn part_of_restarts_and_stops_with_its_unit() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    // ExecStartPre= writes: it ends before the start counts as done (the
    // main process of a simple service may write after the next started).
    tree.write(
        "parent.service",
        &format!(
            "[Service]\nExecStartPre={}\nExecStart=/bin/sleep 1000\n",
            sh(&format!("echo parent >> {l}"))
        ),
    );
    tree.write(
        "part.service",
        &format!(
            "[Unit]\nPartOf=parent.service\nAfter=parent.service\n[Service]\nExecStartPre={}\nExecStart=/bin/sleep 1000\n",
            sh(&format!("echo part >> {l}"))
        ),
    );
    let (_flint, control) = run(&tree, &["parent.service", "part.service"]);
    let pid = wait_state(&control, "part.service", "active")["main_pid"].clone();
    assert_eq!(ctl(&control, &["restart", "parent.service"]).0, 0);
    let seen = wait_for(Duration::from_secs(15), || {
        Some(lines(&log)).filter(|l| l.len() >= 4)
    })
    .expect("both started again");
    assert_eq!(seen, ["parent", "part", "parent", "part"]);
    let again = wait_state(&control, "part.service", "active");
    assert_ne!(again["main_pid"], pid, "part.service was restarted");
    assert_eq!(ctl(&control, &["stop", "parent.service"]).0, 0);
    wait_state(&control, "part.service", "inactive");

    // The unit restarted also wants its part (postgresql.service and
    // postgresql@15-main.service on Debian): the start it would get and
    // the restart from PartOf= are one restart.
    tree.write("boss.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "minion.service",
        "[Unit]\nPartOf=boss.service\nAfter=boss.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    std::fs::create_dir_all(tree.path().join("boss.service.wants")).unwrap();
    std::os::unix::fs::symlink(
        "../minion.service",
        tree.path().join("boss.service.wants/minion.service"),
    )
    .unwrap();
    assert_eq!(ctl(&control, &["start", "boss.service"]).0, 0);
    let pid = wait_state(&control, "minion.service", "active")["main_pid"].clone();
    assert_eq!(ctl(&control, &["restart", "boss.service"]).0, 0);
    let again = wait_for(Duration::from_secs(10), || {
        let s = status(&control, "minion.service");
        (s["state"] == "active" && s["main_pid"] != pid).then_some(s)
    });
    assert!(
        again.is_some(),
        "minion.service was restarted with boss.service"
    );

    // A part pulled in by a want of a want, and requiring a unit stopped
    // meanwhile: the restart leaves both down, as systemd 252's user
    // manager does with these units: the start of the wanting unit, which
    // is up, is dropped from the transaction, and with it the start of
    // the part it pulled in (its try-restart from PartOf= does nothing to
    // a unit that does not run) and of the part's requirement.
    tree.write(
        "x.service",
        "[Unit]\nWants=w.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "w.service",
        "[Unit]\nWants=y.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "y.service",
        "[Unit]\nPartOf=x.service\nRequires=z.service\nAfter=z.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write("z.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    assert_eq!(ctl(&control, &["start", "x.service"]).0, 0);
    wait_state(&control, "y.service", "active");
    assert_eq!(ctl(&control, &["stop", "z.service"]).0, 0);
    wait_state(&control, "y.service", "inactive");
    assert_eq!(ctl(&control, &["restart", "x.service"]).0, 0);
    wait_state(&control, "x.service", "active");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(&control, "y.service")["state"], "inactive");
    assert_eq!(status(&control, "z.service")["state"], "inactive");
    // Started by hand, the part pulls in its requirement.
    assert_eq!(ctl(&control, &["start", "y.service"]).0, 0);
    wait_state(&control, "z.service", "active");
}

#[test]
fn starting_a_unit_stops_the_one_it_conflicts_with() {
    let tree = Tree::new();
    tree.write(
        "new.service",
        "[Unit]\nConflicts=old.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write("old.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let (_flint, control) = run(&tree, &["old.service"]);
    wait_state(&control, "old.service", "active");
    assert_eq!(ctl(&control, &["start", "new.service"]).0, 0);
    wait_state(&control, "new.service", "active");
    wait_state(&control, "old.service", "inactive");
    // And the other way round (Conflicts= works both ways).
    assert_eq!(ctl(&control, &["start", "old.service"]).0, 0);
    wait_state(&control, "old.service", "active");
    wait_state(&control, "new.service", "inactive");
}

/// `flint ctl isolate` (and systemctl's `isolate`, a start in mode
/// isolate): the target starts with what it wants, and every other unit
/// that runs stops, as systemd's `transaction_add_isolate_jobs()`: not one
/// with `IgnoreOnIsolate=yes`, not a service whose socket the target keeps.
/// A target without `AllowIsolate=yes` is refused and nothing stops.
#[test]
fn isolate_starts_a_target_and_stops_what_it_does_not_keep() {
    let tree = Tree::new();
    let sleep = "[Service]\nExecStart=/bin/sleep 1000\n";
    tree.write(
        "maintenance.target",
        "[Unit]\nAllowIsolate=yes\nWants=wanted.service kept.socket\n",
    );
    tree.write("plain.target", "[Unit]\nWants=wanted.service\n");
    tree.write("wanted.service", sleep);
    tree.write("other.service", sleep);
    tree.write(
        "ignored.service",
        "[Unit]\nIgnoreOnIsolate=yes\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let kept = tree.path().join("kept.sock");
    tree.write(
        "kept.socket",
        &format!("[Socket]\nListenStream={}\n", kept.display()),
    );
    tree.write("kept.service", sleep);
    let web = tree.path().join("web.sock");
    tree.write(
        "web.socket",
        &format!("[Socket]\nListenStream={}\n", web.display()),
    );
    tree.write("web.service", sleep);
    let (_flint, control) = run(
        &tree,
        &[
            "other.service",
            "ignored.service",
            "kept.socket",
            "web.socket",
        ],
    );
    wait_state(&control, "other.service", "active");
    // The kept socket's service, started by a connection.
    let _peer = std::os::unix::net::UnixStream::connect(&kept).unwrap();
    wait_state(&control, "kept.service", "active");

    let (code, text) = ctl(&control, &["isolate", "plain"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("Failed to start plain.target: Operation refused, unit may not be isolated."),
        "{text}"
    );
    let (code, text) = ctl(&control, &["isolate", "nowhere"]);
    assert_eq!(code, 5, "{text}");
    assert!(text.contains("Unit nowhere.target not found."), "{text}");
    assert_eq!(status(&control, "other.service")["state"], "active");
    assert_eq!(status(&control, "wanted.service")["state"], "inactive");

    // systemd's rescue.target is the host's here: refused, not a silent
    // start that stops nothing.
    let (code, text) = ctl(&control, &["isolate", "rescue"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("flint does not isolate them"), "{text}");
    assert_eq!(status(&control, "other.service")["state"], "active");

    let (code, text) = ctl(&control, &["isolate", "maintenance"]);
    assert_eq!(code, 0, "{text}");
    wait_state(&control, "maintenance.target", "active");
    wait_state(&control, "wanted.service", "active");
    wait_state(&control, "other.service", "inactive");
    wait_state(&control, "web.socket", "inactive");
    assert!(
        std::os::unix::net::UnixStream::connect(&web).is_err(),
        "web.socket still listens"
    );
    assert_eq!(status(&control, "ignored.service")["state"], "active");
    assert_eq!(status(&control, "kept.socket")["state"], "active");
    assert_eq!(status(&control, "kept.service")["state"], "active");
}

/// Units the tree enables that conflict: the one that declares
/// `Conflicts=` starts and the one it names does not, whatever their
/// order, as systemd fixes the conflicting jobs of the start (Debian's
/// pipewire-pulse.socket and pulseaudio.socket, both enabled, listen on
/// one path: only pipewire-pulse's may). Before, both sockets listened,
/// the second replacing the first's node, and of two services the first
/// ordered started.
#[test]
fn of_enabled_units_in_conflict_the_one_declaring_it_starts() {
    let tree = Tree::new();
    let path = tree.path().join("native");
    let p = path.display();
    tree.write(
        "pipewire-pulse.socket",
        &format!("[Unit]\nConflicts=pulseaudio.socket\n[Socket]\nListenStream={p}\n"),
    );
    tree.write(
        "pulseaudio.socket",
        &format!("[Socket]\nListenStream={p}\n"),
    );
    tree.write(
        "pipewire-pulse.service",
        "[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "pulseaudio.service",
        "[Service]\nExecStart=/bin/sleep 1000\n",
    );
    // c conflicts with d and is ordered after e, so d would start first.
    tree.write(
        "c.service",
        "[Unit]\nConflicts=d.service\nAfter=e.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write("d.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "e.service",
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 0.5\n",
    );
    tree.write("sockets.target", "[Unit]\nDescription=Sockets\n");
    tree.write("multi-user.target", "[Unit]\nDescription=Multi-User\n");
    for (target, unit) in [
        ("sockets.target", "pulseaudio.socket"),
        ("sockets.target", "pipewire-pulse.socket"),
        ("multi-user.target", "d.service"),
        ("multi-user.target", "c.service"),
        ("multi-user.target", "e.service"),
    ] {
        let dir = tree.path().join(format!("{target}.wants"));
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(format!("../{unit}"), dir.join(unit)).unwrap();
    }
    let (flint, control) = run(&tree, &[]);
    wait_state(&control, "c.service", "active");
    assert_eq!(
        ctl(&control, &["is-active", "pipewire-pulse.socket"]).1,
        "active\n"
    );
    assert_eq!(
        ctl(&control, &["is-active", "pulseaudio.socket"]).1,
        "inactive\n"
    );
    assert_eq!(ctl(&control, &["is-active", "d.service"]).1, "inactive\n");
    // The path is pipewire-pulse's: a client starts its service.
    std::os::unix::net::UnixStream::connect(&path).expect("the socket listens");
    wait_state(&control, "pipewire-pulse.service", "active");
    assert_eq!(
        ctl(&control, &["is-active", "pulseaudio.service"]).1,
        "inactive\n"
    );
    assert!(
        flint
            .log()
            .contains("pulseaudio.socket: not started: pipewire-pulse.socket conflicts with it"),
        "{}",
        flint.log()
    );
}

/// A service with default dependencies starts after the sockets flint
/// starts with it have run their start commands, as systemd orders it
/// after `basic.target` and so after `sockets.target` (dbus.socket's
/// `ExecStartPost=` gives the session bus's address to the services that
/// start after it: pipewire and wireplumber); and a user manager reaches
/// `basic.target`, which `default.target` requires, as systemd --user
/// does. Before, the service started while the socket's command ran, and
/// `basic.target` stayed inactive.
#[test]
fn services_start_after_the_start_commands_of_the_sockets_and_basic_target_is_reached() {
    let tree = Tree::new();
    let runtime = tree.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let marker = tree.path().join("socket-ready");
    let seen = tree.path().join("seen");
    tree.write(
        "slow.socket",
        &format!(
            "[Socket]\nListenStream=%t/slow.sock\nExecStartPost={}\n",
            sh(&format!("sleep 1; touch {}", marker.display()))
        ),
    );
    tree.write("slow.service", "[Service]\nExecStart=/bin/cat\n");
    tree.write(
        "early.service",
        &format!(
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={}\n",
            sh(&format!(
                "if test -e {}; then echo after > {s}; else echo before > {s}; fi",
                marker.display(),
                s = seen.display()
            ))
        ),
    );
    // systemd's user targets, as /usr/lib/systemd/user has them.
    tree.write(
        "basic.target",
        "[Unit]\nDescription=Basic System\nWants=sockets.target timers.target paths.target\nAfter=sockets.target timers.target paths.target\n",
    );
    tree.write(
        "default.target",
        "[Unit]\nDescription=Main User Target\nRequires=basic.target\nAfter=basic.target\n",
    );
    tree.write("sockets.target", "[Unit]\nDescription=Sockets\n");
    tree.write("timers.target", "[Unit]\nDescription=Timers\n");
    tree.write("paths.target", "[Unit]\nDescription=Paths\n");
    for (target, unit) in [
        ("sockets.target", "slow.socket"),
        ("default.target", "early.service"),
    ] {
        let dir = tree.path().join(format!("{target}.wants"));
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(format!("../{unit}"), dir.join(unit)).unwrap();
    }
    let control = runtime.join("flint/control");
    let flint = Flint::run_env(&tree, &["--user"], &[("XDG_RUNTIME_DIR", &runtime)]);
    let ran = wait_for(Duration::from_secs(15), || {
        std::fs::read_to_string(&seen).ok()
    })
    .expect("early.service ran");
    assert_eq!(
        ran, "after\n",
        "early.service ran after slow.socket's ExecStartPost="
    );
    for target in ["basic.target", "sockets.target", "default.target"] {
        wait_state(&control, target, "active");
    }
    // sockets.target is reached once its socket's start commands are done.
    let log = flint.log();
    let done = log.find("slow.socket: ExecStartPost done").expect("logged");
    let reached = log.find("sockets.target: Reached target").expect("logged");
    assert!(done < reached, "{log}");
}

/// A socket's `Before=` holds back the service it names while the
/// socket's `ExecStartPre=` runs, not only its `ExecStartPost=`, as
/// systemd orders the two jobs: the service starts once the socket is up.
/// Before, a service started while the socket's `ExecStartPre=` ran.
#[test]
fn a_socket_before_a_service_holds_it_back_during_its_start_pre_commands() {
    let tree = Tree::new();
    let (flint, control) = common::run_with_control(&tree);
    let marker = tree.path().join("pre-done");
    let seen = tree.path().join("seen");
    tree.write(
        "pre.socket",
        &format!(
            "[Unit]\nBefore=late.service\n[Socket]\nListenStream={}\nExecStartPre={}\n",
            tree.path().join("pre.sock").display(),
            sh(&format!("sleep 1; touch {}", marker.display()))
        ),
    );
    tree.write("pre.service", "[Service]\nExecStart=/bin/cat\n");
    tree.write(
        "late.service",
        &format!(
            "[Unit]\nDefaultDependencies=no\n[Service]\nType=oneshot\nExecStart={}\n",
            sh(&format!(
                "if test -e {}; then echo after > {s}; else echo before > {s}; fi",
                marker.display(),
                s = seen.display()
            ))
        ),
    );
    assert_eq!(ctl(&control, &["start", "--no-block", "pre.socket"]).0, 0);
    let (code, out) = ctl(&control, &["start", "late.service"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "after\n",
        "late.service ran after pre.socket's ExecStartPre=:\n{}",
        flint.log()
    );
}

#[test]
fn flint_stops_units_in_reverse_order() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    // Without ordering, the slower ExecStop= of `late` would log last.
    tree.write(
        "early.service",
        &format!(
            "[Service]\nExecStart=/bin/sleep 1000\nExecStop={}\n",
            sh(&format!("echo stop early >> {l}"))
        ),
    );
    tree.write(
        "late.service",
        &format!(
            "[Unit]\nAfter=early.service\n[Service]\nExecStart=/bin/sleep 1000\nExecStop={}\n",
            sh(&format!("sleep 0.5; echo stop late >> {l}"))
        ),
    );
    let (mut flint, control) = run(&tree, &["early.service", "late.service"]);
    wait_state(&control, "late.service", "active");
    wait_state(&control, "early.service", "active");
    assert!(flint.stop().expect("flint exits").success());
    assert_eq!(lines(&log), ["stop late", "stop early"]);
}

#[test]
fn restart_kill_signal_is_used_for_a_restart_only() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    tree.write(
        "s.service",
        &format!(
            "[Service]\nExecStart={}\nRestartKillSignal=SIGUSR1\n",
            sh(&format!(
                "trap \"echo got USR1 >> {l}; exit 0\" USR1; trap \"echo got TERM >> {l}; exit 0\" TERM; echo up >> {l}; while :; do sleep 0.1; done"
            ))
        ),
    );
    let (_flint, control) = run(&tree, &["s.service"]);
    wait_for(Duration::from_secs(10), || lines(&log).first().cloned()).expect("it runs");
    assert_eq!(ctl(&control, &["restart", "s.service"]).0, 0);
    wait_for(Duration::from_secs(15), || {
        Some(lines(&log)).filter(|l| l.len() >= 3)
    })
    .expect("restarted");
    assert_eq!(lines(&log), ["up", "got USR1", "up"]);
    assert_eq!(ctl(&control, &["stop", "s.service"]).0, 0);
    wait_state(&control, "s.service", "inactive");
    assert_eq!(lines(&log), ["up", "got USR1", "up", "got TERM"]);
}

#[test]
fn final_kill_signal_follows_timeout_stop_sec() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    tree.write(
        "stubborn.service",
        &format!(
            "[Service]\nExecStart={}\nTimeoutStopSec=1s\nFinalKillSignal=SIGUSR2\n",
            sh(&format!(
                "trap \"\" TERM; trap \"echo got USR2 >> {l}; exit 0\" USR2; echo up >> {l}; while :; do sleep 0.1; done"
            ))
        ),
    );
    let (flint, control) = run(&tree, &["stubborn.service"]);
    wait_for(Duration::from_secs(10), || lines(&log).first().cloned()).expect("it runs");
    assert_eq!(ctl(&control, &["stop", "stubborn.service"]).0, 0);
    let s = wait_state(&control, "stubborn.service", "failed");
    assert_eq!(s["result"], "timeout", "a stop that timed out: {s}");
    assert_eq!(lines(&log), ["up", "got USR2"]);
    assert!(
        flint.wait_log("State 'stop-sigterm' timed out. Killing."),
        "{}",
        flint.log()
    );
}

/// Counts a real-time signal (they queue, so each one sent is delivered
/// and taken one at a time), ignores SIGTERM, and exits a second after the
/// last one.
const COUNT_RTMIN3: &str = r#"
import signal, sys
sig = signal.SIGRTMIN + 3
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, [sig])
with open(sys.argv[1], "a") as f:
    f.write("up\n")
signal.sigwait([sig])
got = 1
# Every queued instance, one by one, for a second.
while signal.sigtimedwait([sig], 1) is not None:
    got += 1
with open(sys.argv[1], "a") as f:
    f.write("got RTMIN+3 x%d\n" % got)
"#;

#[test]
fn the_final_kill_signal_reaches_the_main_process_once() {
    // systemd signals every process of the unit once; a real-time
    // FinalKillSignal= sent twice would be delivered twice.
    let tree = Tree::new();
    let log = tree.path().join("log");
    tree.write("count.py", COUNT_RTMIN3);
    tree.write(
        "stubborn.service",
        &format!(
            "[Service]\nExecStart=/usr/bin/python3 {} {}\nTimeoutStopSec=500ms\nFinalKillSignal=SIGRTMIN+3\n",
            tree.path().join("count.py").display(),
            log.display()
        ),
    );
    let (flint, control) = run(&tree, &["stubborn.service"]);
    wait_for(Duration::from_secs(10), || lines(&log).first().cloned()).expect("it runs");
    assert_eq!(ctl(&control, &["stop", "stubborn.service"]).0, 0);
    wait_state(&control, "stubborn.service", "failed");
    let got = wait_for(Duration::from_secs(10), || lines(&log).get(1).cloned());
    assert_eq!(got.as_deref(), Some("got RTMIN+3 x1"), "{}", flint.log());
}

/// A notify daemon that gets ready, never pings the watchdog, and survives
/// SIGABRT (writing that it got it).
const NO_WATCHDOG: &str = r#"
import os, signal, socket, sys, time
def abrt(*_):
    with open(sys.argv[1], "a") as f:
        f.write("got ABRT\n")
signal.signal(signal.SIGABRT, abrt)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
while True:
    time.sleep(0.1)
"#;

#[test]
fn a_missed_watchdog_kills_after_timeout_abort_sec() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    tree.write("w.py", NO_WATCHDOG);
    tree.write(
        "w.service",
        &format!(
            "[Service]\nType=notify\nExecStart=/usr/bin/python3 {} {}\nWatchdogSec=1s\nTimeoutAbortSec=1s\nTimeoutStopSec=60s\n",
            tree.path().join("w.py").display(),
            log.display()
        ),
    );
    let (flint, control) = run(&tree, &["w.service"]);
    wait_state(&control, "w.service", "active");
    wait_for(Duration::from_secs(10), || lines(&log).first().cloned()).expect("SIGABRT came");
    // Not TimeoutStopSec= (60 s, beyond wait_state's 15 s): TimeoutAbortSec=
    // after the watchdog signal.
    let s = wait_state(&control, "w.service", "failed");
    assert_eq!(s["result"], "watchdog", "{s}");
    assert_eq!(s["last_exit"], "killed by signal 9", "{s}");
    assert_eq!(lines(&log), ["got ABRT"]);
    assert!(
        flint.wait_log("State 'stop-watchdog' timed out. Killing."),
        "{}",
        flint.log()
    );
}

/// A daemon that writes the signals it gets: `up` at start, `HUP`, and
/// `TERM` (then it exits).
const SIGNALS: &str = r#"
import signal, sys, time
def note(s):
    with open(sys.argv[1], "a") as f:
        f.write(s + "\n")
def term(*_):
    note("TERM")
    time.sleep(0.3)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
signal.signal(signal.SIGHUP, lambda *_: note("HUP"))
note("up")
while True:
    time.sleep(0.1)
"#;

#[test]
fn send_sighup_follows_the_stop_signal_not_the_restart_signal() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    tree.write("sig.py", SIGNALS);
    tree.write(
        "h.service",
        &format!(
            "[Service]\nExecStart=/usr/bin/python3 {} {}\nSendSIGHUP=yes\n",
            tree.path().join("sig.py").display(),
            log.display()
        ),
    );
    let (_flint, control) = run(&tree, &["h.service"]);
    wait_for(Duration::from_secs(10), || lines(&log).first().cloned()).expect("it runs");
    assert_eq!(ctl(&control, &["restart", "h.service"]).0, 0);
    wait_for(Duration::from_secs(15), || {
        Some(lines(&log)).filter(|l| l.len() >= 3)
    })
    .expect("restarted");
    assert_eq!(lines(&log), ["up", "TERM", "up"], "no SIGHUP for a restart");
    assert_eq!(ctl(&control, &["stop", "h.service"]).0, 0);
    wait_state(&control, "h.service", "inactive");
    let mut last: Vec<String> = lines(&log).split_off(3);
    last.sort();
    assert_eq!(
        last,
        ["HUP", "TERM"],
        "SIGHUP right after SIGTERM on a stop"
    );
}

#[test]
fn an_ordering_cycle_is_broken_and_both_start() {
    let tree = Tree::new();
    tree.write(
        "x.service",
        "[Unit]\nAfter=y.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "y.service",
        "[Unit]\nAfter=x.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    // Asked for by `flint ctl`, as systemd's transactions: a cycle through
    // a unit only wanted loses that unit's job; a cycle of requirements
    // refuses the request.
    tree.write(
        "a.service",
        "[Unit]\nWants=b.service\nAfter=b.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "b.service",
        "[Unit]\nWants=a.service\nAfter=a.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "c.service",
        "[Unit]\nRequires=d.service\nAfter=d.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "d.service",
        "[Unit]\nRequires=c.service\nAfter=c.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let (flint, control) = run(&tree, &["x.service", "y.service"]);
    wait_state(&control, "x.service", "active");
    wait_state(&control, "y.service", "active");
    assert!(flint.wait_log("found an ordering cycle"), "{}", flint.log());
    let (code, out) = ctl(&control, &["start", "a.service"]);
    assert_eq!(code, 0, "{out}");
    wait_state(&control, "a.service", "active");
    assert_eq!(status(&control, "b.service")["state"], "inactive");
    let (code, out) = ctl(&control, &["start", "c.service"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Failed to start c.service: Transaction order is cyclic."),
        "{out}"
    );
    for unit in ["c.service", "d.service"] {
        assert_eq!(status(&control, unit)["state"], "inactive", "{unit}");
    }
}

#[test]
fn on_failure_and_on_success_start_their_units_but_not_for_a_restart() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    // The handler is a template: `%n` names the unit that failed, as in
    // the common `OnFailure=notify@%n.service`.
    tree.write(
        "notify@.service",
        &format!("[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo failed %i >> {l}'\n"),
    );
    tree.write(
        "done.service",
        &format!("[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo succeeded >> {l}'\n"),
    );
    tree.write(
        "bad.service",
        "[Unit]\nOnFailure=notify@%n.service\nOnSuccess=done.service\n[Service]\nExecStart=/bin/false\n",
    );
    tree.write(
        "good.service",
        "[Unit]\nOnFailure=notify@%n.service\nOnSuccess=done.service\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
    );
    // Fails once, is restarted by Restart=on-failure, then succeeds: the
    // failure that leads to a restart starts nothing.
    let marker = tree.path().join("second-run");
    tree.write(
        "flaky.service",
        &format!(
            "[Unit]\nOnFailure=notify@%n.service\n[Service]\nType=oneshot\nRestart=on-failure\nRestartSec=100ms\nExecStart={}\n",
            sh(&format!(
                "if [ -e {m} ]; then exit 0; fi; touch {m}; exit 1",
                m = marker.display()
            ))
        ),
    );
    // Its start job fails for a dependency (the unit itself never ran):
    // OnFailure= is started all the same, as systemd's job code does.
    tree.write(
        "needs.service",
        "[Unit]\nOnFailure=notify@%n.service\nRequires=broken.service\nAfter=broken.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "broken.service",
        "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    );
    let (flint, control) = run(
        &tree,
        &[
            "bad.service",
            "good.service",
            "flaky.service",
            "needs.service",
        ],
    );
    wait_for(Duration::from_secs(15), || {
        (lines(&log).len() >= 3).then_some(())
    })
    .expect("the handlers ran");
    wait_for(Duration::from_secs(10), || marker.exists().then_some(())).expect("flaky ran");
    wait_state(&control, "flaky.service", "inactive");
    // Give a wrong OnFailure= of flaky.service time to show up.
    std::thread::sleep(Duration::from_millis(500));
    let mut got = lines(&log);
    got.sort();
    assert_eq!(
        got,
        ["failed bad.service", "failed needs.service", "succeeded"],
        "{got:?}"
    );
    assert!(
        flint
            .log()
            .contains("bad.service: starting notify@bad.service.service (OnFailure=)"),
        "{}",
        flint.log()
    );
}

#[test]
fn upholds_starts_the_upheld_unit_again_whenever_it_goes_down() {
    let tree = Tree::new();
    let runs = tree.path().join("runs");
    tree.write(
        "keeper.service",
        "[Unit]\nUpholds=kept.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "kept.service",
        &format!(
            "[Service]\nExecStart={}\n",
            sh(&format!("echo run >> {}; exec sleep 1000", runs.display()))
        ),
    );
    let (_flint, control) = run(&tree, &["keeper.service"]);
    wait_state(&control, "kept.service", "active");
    assert_eq!(lines(&runs).len(), 1, "pulled in by the upholder's start");
    // Killed behind flint's back (no Restart=): started again.
    let pid = status(&control, "kept.service")["main_pid"]
        .as_i64()
        .unwrap();
    // SAFETY: kill(2) with plain integers.
    unsafe {
        libc::kill(i32::try_from(pid).unwrap(), libc::SIGKILL);
    }
    wait_for(Duration::from_secs(15), || {
        (lines(&runs).len() >= 2).then_some(())
    })
    .expect("upheld unit started again");
    wait_state(&control, "kept.service", "active");
    // Once the upholder is stopped, the upheld unit may stay down.
    assert_eq!(ctl(&control, &["stop", "keeper.service"]).0, 0);
    wait_state(&control, "keeper.service", "inactive");
    assert_eq!(ctl(&control, &["stop", "kept.service"]).0, 0);
    wait_state(&control, "kept.service", "inactive");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&runs).len(), 2);
    assert_eq!(status(&control, "kept.service")["state"], "inactive");
}

#[test]
fn stop_when_unneeded_stops_a_unit_once_nothing_active_wants_it() {
    let tree = Tree::new();
    tree.write(
        "user.service",
        "[Unit]\nWants=helper.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "helper.service",
        "[Unit]\nStopWhenUnneeded=yes\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    // Named on the command line: wanted as by an active target, it stays.
    tree.write(
        "asked.service",
        "[Unit]\nStopWhenUnneeded=yes\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let (flint, control) = run(&tree, &["user.service", "asked.service"]);
    wait_state(&control, "helper.service", "active");
    wait_state(&control, "asked.service", "active");
    assert_eq!(ctl(&control, &["stop", "user.service"]).0, 0);
    wait_state(&control, "user.service", "inactive");
    wait_state(&control, "helper.service", "inactive");
    assert!(
        flint.wait_log("helper.service: Unit not needed anymore. Stopping."),
        "{}",
        flint.log()
    );
    // Started again with its user, it is needed again.
    assert_eq!(ctl(&control, &["start", "user.service"]).0, 0);
    wait_state(&control, "helper.service", "active");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(&control, "helper.service")["state"], "active");
    assert_eq!(status(&control, "asked.service")["state"], "active");
}

#[test]
fn dependencies_on_units_the_tree_lacks_are_quiet_unless_required() {
    // libvirtd.service `Wants=systemd-machined.service`, multipathd's
    // `Conflicts=initrd-cleanup.service`: units that do not exist here.
    // systemd starts the service without a word; a missing `Requires=`
    // fails what requires it, and says why.
    let tree = Tree::new();
    tree.write(
        "quiet.service",
        "[Unit]\nWants=flint-absent-a.service\nConflicts=flint-absent-b.service\n\
         [Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "needy.service",
        "[Unit]\nRequires=flint-absent-c.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let flint = Flint::run(&tree, &["quiet.service", "needy.service"]);
    assert!(flint.wait_log("quiet.service: started"), "{}", flint.log());
    assert!(
        flint.wait_log("flint-absent-c.service: required, but it cannot be loaded"),
        "{}",
        flint.log()
    );
    let log = flint.log();
    assert!(!log.contains("flint-absent-a"), "{log}");
    assert!(!log.contains("flint-absent-b"), "{log}");
    assert!(!log.contains("needy.service: started"), "{log}");
}

/// Connects to `port` and waits (at most 10 s) for flint to close the
/// connection: `Err` with what the read gave otherwise.
fn connection_closed(port: u16) -> Result<(), String> {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 16];
    match std::io::Read::read(&mut conn, &mut buf) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[test]
fn a_masked_slice_fails_what_runs_in_it() {
    // `Slice=` implies `Requires=` and `After=` on the slice, and a slice
    // has both on the slice it is in: a masked slice (or a masked slice
    // above it) fails the service with result `dependency`. A slice needs
    // no file.
    let tree = Tree::new();
    for masked in ["masked.slice", "par.slice"] {
        std::os::unix::fs::symlink("/dev/null", tree.path().join(masked)).unwrap();
    }
    let service = |slice: &str| format!("[Service]\nSlice={slice}\nExecStart=/bin/sleep 1000\n");
    tree.write("in-masked.service", &service("masked.slice"));
    tree.write("in-child.service", &service("par-child.slice"));
    tree.write("in-plain.service", &service("plain-x.slice"));
    tree.write("later.service", &service("masked.slice"));
    // A socket whose service is in a masked slice fails at the first
    // connection (systemd: "Failed to queue service startup job", result
    // `resources`): the connection is closed, not left waiting.
    let port = common::free_port();
    tree.write(
        "act.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\n"),
    );
    tree.write("act.service", &service("masked.slice"));
    let (flint, control) = run(
        &tree,
        &[
            "in-masked.service",
            "in-child.service",
            "in-plain.service",
            "act.socket",
        ],
    );
    wait_state(&control, "in-plain.service", "active");
    for unit in ["in-masked.service", "in-child.service"] {
        let s = wait_for(Duration::from_secs(10), || {
            let s = status(&control, unit);
            (s["job_result"] == "dependency").then_some(s)
        })
        .unwrap_or_else(|| panic!("{unit}: {}\n{}", status(&control, unit), flint.log()));
        assert_eq!(s["state"], "inactive", "{unit}: {s}");
        assert_eq!(s["result"], "success", "{unit}: {s}");
    }
    // Asked for by hand: systemd refuses the whole request.
    let (code, out) = ctl(&control, &["start", "later.service"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Failed to start later.service: Unit masked.slice is masked."),
        "{out}"
    );
    assert_eq!(status(&control, "later.service")["state"], "inactive");
    let read = connection_closed(port);
    assert!(read.is_ok(), "the waiting connection is closed: {read:?}");
    assert!(
        flint.wait_log(
            "act.socket: Failed to queue service startup job: masked.slice does not load"
        ),
        "{}",
        flint.log()
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the failed socket no longer listens"
    );
    let log = flint.log();
    assert!(log.contains("masked.slice: masked"), "{log}");
    assert!(log.contains("par.slice: masked"), "{log}");
    for unit in ["in-masked", "in-child", "later", "act"] {
        assert!(!log.contains(&format!("{unit}.service: started")), "{log}");
    }
}

#[test]
fn a_socket_listens_again_after_its_service_failed_by_dependency() {
    // The service requires one that fails: its start fails with result
    // `dependency`, and its socket listens again, as systemd's socket does
    // once the job is gone. The connection still waiting triggers again
    // and again until the trigger limit fails the socket, which closes it.
    let tree = Tree::new();
    let port = common::free_port();
    tree.write(
        "dep.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nTriggerLimitBurst=5\n"),
    );
    tree.write(
        "dep.service",
        "[Unit]\nRequires=broken.service\nAfter=broken.service\n\
         [Service]\nExecStart=/bin/cat\nStandardInput=socket\n",
    );
    tree.write(
        "broken.service",
        "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    );
    let (flint, _control) = run(&tree, &["dep.socket"]);
    let read = connection_closed(port);
    assert!(read.is_ok(), "{read:?}\n{}", flint.log());
    assert!(
        flint.wait_log("dep.socket: Trigger limit hit, refusing further activation."),
        "{}",
        flint.log()
    );
    let log = flint.log();
    let attempts = log
        .matches("Job dep.service/start failed with result 'dependency'")
        .count();
    assert!(attempts >= 2, "started again after listening again: {log}");
}

/// Targets are units with jobs, as in systemd: a unit ordered after a
/// target waits for what the target pulls in (a target is ordered after
/// what it wants, unless that unit is ordered after the target), a
/// target's own `Wants=` and `Requires=` are followed, `flint ctl
/// start|stop` acts on targets and what is `PartOf=` them, a target whose
/// requirement fails is not reached, and the tree's `default.target` (a
/// link to `multi-user.target`: one unit) is reached once what it wants is
/// up. systemd's boot targets are the host's: `Requires=basic.target`
/// does not start what `basic.target` wants.
#[test]
fn targets_are_units_that_order_pull_in_and_stop_as_in_systemd() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    let link = |target: &str, unit: &str| {
        let dir = tree.path().join(format!("{target}.wants"));
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(format!("../{unit}"), dir.join(unit)).unwrap();
    };
    tree.write("online.target", "[Unit]\nDescription=Online\n");
    tree.write(
        "wait.service",
        &format!(
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={}\n",
            sh(&format!("sleep 0.7; echo wait >> {l}"))
        ),
    );
    link("online.target", "wait.service");
    tree.write(
        "app.service",
        &format!(
            "[Unit]\nWants=online.target\nAfter=online.target\n[Service]\nExecStart={}\n",
            sh(&format!("echo app >> {l}; exec sleep 1000"))
        ),
    );
    // Wanted by the target and ordered after it: starts once it is
    // reached, without an ordering cycle.
    tree.write(
        "late.service",
        &format!(
            "[Unit]\nAfter=multi-user.target\n[Service]\nExecStart={}\n",
            sh(&format!("echo late >> {l}; exec sleep 1000"))
        ),
    );
    tree.write(
        "multi-user.target",
        "[Unit]\nDescription=Multi\nRequires=basic.target\nAfter=basic.target\n",
    );
    std::os::unix::fs::symlink("multi-user.target", tree.path().join("default.target")).unwrap();
    link("multi-user.target", "app.service");
    link("multi-user.target", "late.service");
    tree.write("basic.target", "[Unit]\nWants=journal.service\n");
    tree.write(
        "journal.service",
        &format!(
            "[Service]\nExecStart={}\n",
            sh(&format!("echo journal >> {l}"))
        ),
    );
    // Pulled in by the target's own Wants=, stopped with it (PartOf=).
    tree.write(
        "grp.target",
        "[Unit]\nDescription=Group\nWants=part.service\n",
    );
    tree.write(
        "part.service",
        "[Unit]\nPartOf=grp.target\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write("needy.target", "[Unit]\nRequires=bad.service\n");
    tree.write(
        "bad.service",
        "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    );
    tree.write(
        "lacking.service",
        "[Unit]\nRequires=flint-absent.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    // A target that stops once nothing needs it.
    tree.write("session.target", "[Unit]\nStopWhenUnneeded=yes\n");
    tree.write(
        "pin.service",
        "[Unit]\nWants=session.target\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    // No unit named: what default.target's links want.
    let (flint, control) = run(&tree, &[]);
    let seen = wait_for(Duration::from_secs(15), || {
        Some(lines(&log)).filter(|l| l.len() >= 3)
    })
    .unwrap_or_else(|| panic!("all ran: {:?}\n{}", lines(&log), flint.log()));
    assert_eq!(
        seen,
        ["wait", "app", "late"],
        "app.service (After=online.target) waits for what online.target wants, \
         late.service for multi-user.target"
    );
    wait_state(&control, "online.target", "active");
    wait_state(&control, "default.target", "active");
    assert!(flint.wait_log("Reached target Online."), "{}", flint.log());
    let (_, shown) = ctl(
        &control,
        &["show", "-p", "Id,ActiveState,SubState", "default.target"],
    );
    assert!(
        shown.contains("Id=multi-user.target")
            && shown.contains("ActiveState=active")
            && shown.contains("SubState=active"),
        "{shown}"
    );
    let (_, listed) = ctl(&control, &["list-units", "*.target"]);
    assert_eq!(listed.matches("multi-user.target").count(), 1, "{listed}");
    assert!(listed.contains("online.target"), "{listed}");
    let text = flint.log();
    assert_eq!(text.matches("Reached target Multi.").count(), 1, "{text}");
    assert!(!text.contains("ordering cycle"), "{text}");

    let (code, out) = ctl(&control, &["start", "grp.target"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(status(&control, "grp.target")["state"], "active");
    wait_state(&control, "part.service", "active");
    let (code, out) = ctl(&control, &["stop", "grp.target"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(status(&control, "grp.target")["state"], "inactive");
    wait_state(&control, "part.service", "inactive");
    assert_eq!(status(&control, "app.service")["state"], "active");

    let (code, out) = ctl(&control, &["start", "needy.target"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("A dependency job for needy.target failed."),
        "{out}"
    );
    assert_eq!(status(&control, "needy.target")["state"], "inactive");
    assert_eq!(status(&control, "bad.service")["state"], "failed");

    let (code, out) = ctl(&control, &["start", "nothere.target"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("Unit nothere.target not found."), "{out}");
    // A request that requires a unit the tree lacks is refused whole.
    let (code, out) = ctl(&control, &["start", "lacking.service"]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("Failed to start lacking.service: Unit flint-absent.service not found."),
        "{out}"
    );
    let (code, out) = ctl(&control, &["start", "pin.service"]);
    assert_eq!(code, 0, "{out}");
    wait_state(&control, "session.target", "active");
    let (code, out) = ctl(&control, &["stop", "pin.service"]);
    assert_eq!(code, 0, "{out}");
    wait_state(&control, "session.target", "inactive");
    // The boot target is the host's: starting it starts nothing.
    let (code, out) = ctl(&control, &["start", "basic.target"]);
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !lines(&log).contains(&"journal".to_string()),
        "{:?}",
        lines(&log)
    );
}

/// `RefuseManualStart=`/`RefuseManualStop=` refuse what `flint ctl` asks
/// for by hand (exit 4, systemctl's words) while dependencies still pull
/// the unit in; `PropagatesStopTo=`/`StopPropagatedFrom=` carry a stop,
/// by hand or when the unit ends on its own, to the units they name.
#[test]
fn refused_manual_jobs_and_propagated_stops_act_as_in_systemd() {
    let tree = Tree::new();
    let sleeper = "[Service]\nExecStart=/bin/sleep 1000\n";
    tree.write(
        "a.service",
        "[Unit]\nRefuseManualStart=yes\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
    );
    tree.write(
        "b.service",
        &format!("[Unit]\nRequires=a.service\nAfter=a.service\n{sleeper}"),
    );
    tree.write(
        "c.service",
        &format!("[Unit]\nRefuseManualStop=yes\n{sleeper}"),
    );
    tree.write(
        "p.service",
        &format!("[Unit]\nPropagatesStopTo=q.service\n{sleeper}"),
    );
    tree.write("q.service", sleeper);
    tree.write("r.service", sleeper);
    tree.write(
        "s.service",
        &format!("[Unit]\nStopPropagatedFrom=r.service\n{sleeper}"),
    );
    tree.write(
        "x.service",
        "[Unit]\nPropagatesStopTo=y.service\n[Service]\nExecStart=/bin/sleep 1\n",
    );
    tree.write("y.service", sleeper);
    let (flint, control) = run(&tree, &["c.service"]);
    wait_state(&control, "c.service", "active");

    let (code, out) = ctl(&control, &["start", "a.service"]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains(
            "Failed to start a.service: Operation refused, unit a.service may be requested by \
             dependency only (it is configured to refuse manual start/stop)."
        ),
        "{out}"
    );
    assert_eq!(status(&control, "a.service")["state"], "inactive");
    let (code, out) = ctl(&control, &["start", "b.service"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    assert_eq!(status(&control, "a.service")["state"], "active");
    for verb in ["stop", "restart"] {
        let (code, out) = ctl(&control, &[verb, "c.service"]);
        assert_eq!(code, 4, "{verb}: {out}");
        assert!(out.contains("Operation refused"), "{verb}: {out}");
    }
    assert_eq!(status(&control, "c.service")["state"], "active");

    let (code, out) = ctl(
        &control,
        &["start", "p.service", "q.service", "r.service", "s.service"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = ctl(&control, &["stop", "p.service"]);
    assert_eq!(code, 0, "{out}");
    wait_state(&control, "q.service", "inactive");
    assert_eq!(status(&control, "s.service")["state"], "active");
    let (code, out) = ctl(&control, &["stop", "r.service"]);
    assert_eq!(code, 0, "{out}");
    wait_state(&control, "s.service", "inactive");
    // x ends by itself after a second; its stop reaches y.
    let (code, out) = ctl(&control, &["start", "x.service", "y.service"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(status(&control, "y.service")["state"], "active");
    wait_state(&control, "x.service", "inactive");
    wait_state(&control, "y.service", "inactive");
}

/// `JobTimeoutSec=`: a job not done in time ends with result `timeout`
/// while the unit goes on with what it was doing; what requires it fails
/// (`A dependency job ... failed.`), and a job still waiting for its
/// ordering is dropped (`Job for X timed out.`), as in systemd.
#[test]
fn job_timeout_sec_ends_the_job_and_not_the_unit() {
    let tree = Tree::new();
    let sleeper = "ExecStart=/bin/sleep 1000\n";
    tree.write(
        "slow.service",
        &format!("[Unit]\nJobTimeoutSec=500ms\n[Service]\nExecStartPre=/bin/sleep 2\n{sleeper}"),
    );
    tree.write(
        "needs.service",
        &format!("[Unit]\nRequires=slow.service\nAfter=slow.service\n[Service]\n{sleeper}"),
    );
    tree.write(
        "waits.service",
        &format!(
            "[Unit]\nJobTimeoutSec=500ms\nRequires=late.service\nAfter=late.service\n[Service]\n{sleeper}"
        ),
    );
    tree.write(
        "late.service",
        &format!("[Service]\nExecStartPre=/bin/sleep 2\n{sleeper}"),
    );
    tree.write("idle.service", &format!("[Service]\n{sleeper}"));
    let (flint, control) = run(&tree, &["idle.service"]);
    let (code, out) = ctl(&control, &["start", "needs.service"]);
    assert_eq!(code, 1, "{out}\n{}", flint.log());
    assert!(
        out.contains("A dependency job for needs.service failed."),
        "{out}"
    );
    assert!(
        flint.wait_log("slow.service: Job slow.service/start timed out."),
        "{}",
        flint.log()
    );
    assert_eq!(status(&control, "slow.service")["state"], "activating");
    assert_eq!(status(&control, "needs.service")["state"], "inactive");
    // The unit itself finishes starting.
    wait_state(&control, "slow.service", "active");

    let (code, out) = ctl(&control, &["start", "waits.service"]);
    assert_eq!(code, 1, "{out}\n{}", flint.log());
    assert!(out.contains("Job for waits.service timed out."), "{out}");
    let s = status(&control, "waits.service");
    assert_eq!(s["state"], "inactive", "{s}");
    assert_eq!(s["result"], "success", "{s}");
    assert_eq!(s["job_result"], "timeout", "{s}");
    wait_state(&control, "late.service", "active");
    assert_eq!(status(&control, "waits.service")["state"], "inactive");
}

/// A failed `Assert*=` fails the start job, not the unit: it stays
/// inactive with its result, what requires it fails, and `flint ctl`
/// answers with systemctl's words. Neither a failed assertion nor a
/// skipping condition starts `OnFailure=`/`OnSuccess=` (the unit never
/// left the inactive state); a unit bound to and ordered after a skipped
/// one is not started, as in systemd.
#[test]
fn a_failed_assertion_fails_the_job_and_neither_it_nor_a_condition_starts_handlers() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    for h in ["h1", "h2", "h3"] {
        tree.write(
            &format!("{h}.service"),
            &format!(
                "[Service]\nType=oneshot\nExecStart={}\n",
                sh(&format!("echo {h} >> {l}"))
            ),
        );
    }
    tree.write(
        "asserts.service",
        "[Unit]\nAssertPathExists=/nonexistent/flint\nOnFailure=h1.service\nOnSuccess=h2.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "needs.service",
        "[Unit]\nRequires=asserts.service\nAfter=asserts.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "skips.service",
        "[Unit]\nConditionPathExists=/nonexistent/flint\nOnSuccess=h3.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    // Bound to and ordered after a unit a condition skips: never starts.
    tree.write(
        "bound.service",
        &format!(
            "[Unit]\nBindsTo=skips.service\nAfter=skips.service\n[Service]\nExecStart={}\n",
            sh(&format!("echo bound >> {l}; exec sleep 1000"))
        ),
    );
    tree.write("idle.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let (flint, control) = run(&tree, &["idle.service"]);
    let (code, out) = ctl(&control, &["start", "asserts.service"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Assertion failed on job for asserts.service."),
        "{out}"
    );
    let s = status(&control, "asserts.service");
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("inactive"), Some("success")),
        "{s}"
    );
    let (code, out) = ctl(&control, &["start", "needs.service"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("A dependency job for needs.service failed."),
        "{out}"
    );
    // A skipped start counts nothing toward the start limit (5 in 10 s).
    for _ in 0..7 {
        let (code, out) = ctl(&control, &["start", "skips.service"]);
        assert_eq!(code, 0, "{out}");
    }
    let s = status(&control, "skips.service");
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("inactive"), Some("success")),
        "{s}"
    );
    let (code, out) = ctl(&control, &["start", "bound.service"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("A dependency job for bound.service failed."),
        "{out}"
    );
    // Give a wrong handler time to run.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&log), Vec::<String>::new(), "{}", flint.log());
}

/// Requests whose jobs meet an ordering cycle or a missing unit, as
/// systemd's transactions treat them: a socket activation still starts
/// its service (the cycle is broken as the jobs run), a job that will be
/// left out as redundant closes no cycle, a wanted job left out to break
/// a cycle takes what requires it along, and a missing requirement behind
/// a unit only wanted refuses nothing.
#[test]
fn cycles_and_missing_units_behind_requests_are_handled_as_systemds_transactions() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let l = log.display();
    let svc = |name: &str, unit: &str| {
        format!(
            "[Unit]\n{unit}\n[Service]\nExecStart={}\n",
            sh(&format!("echo {name} >> {l}; exec sleep 1000"))
        )
    };
    // Socket activation of a service whose requirements are ordered in a
    // cycle.
    let port = common::free_port();
    tree.write(
        "s.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\n"),
    );
    tree.write("s.service", &svc("s", "Requires=y.service"));
    tree.write(
        "y.service",
        &svc("y", "Requires=z.service\nAfter=z.service"),
    );
    tree.write(
        "z.service",
        &svc("z", "Requires=y.service\nAfter=y.service"),
    );
    // p requires q and is ordered after it; q is ordered after p: once q
    // runs, starting p closes no cycle.
    tree.write("q.service", &svc("q", "After=p.service"));
    tree.write(
        "p.service",
        &svc("p", "Requires=q.service\nAfter=q.service"),
    );
    // a wants b and c; b is in a cycle with a; c requires b.
    tree.write(
        "a.service",
        &svc("a", "Wants=b.service c.service\nAfter=b.service"),
    );
    tree.write("b.service", &svc("b", "After=a.service"));
    tree.write("c.service", &svc("c", "Requires=b.service"));
    // w wants v, which requires a unit the tree lacks.
    tree.write("w.service", &svc("w", "Wants=v.service"));
    tree.write("v.service", &svc("v", "Requires=flint-absent.service"));
    tree.write("idle.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let (mut flint, control) = run(&tree, &["idle.service", "s.socket"]);

    // The connection stays queued (the service takes none): at the stop,
    // flint drops it without waiting in accept() on the blocking
    // listener.
    let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_state(&control, "s.service", "active");

    assert_eq!(ctl(&control, &["start", "q.service"]).0, 0);
    let (code, out) = ctl(&control, &["start", "p.service"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    wait_state(&control, "p.service", "active");

    let (code, out) = ctl(&control, &["start", "a.service"]);
    assert_eq!(code, 0, "{out}");
    wait_state(&control, "a.service", "active");
    for unit in ["b.service", "c.service"] {
        assert_eq!(status(&control, unit)["state"], "inactive", "{unit}");
    }

    let (code, out) = ctl(&control, &["start", "w.service"]);
    assert_eq!(code, 0, "{out}");
    wait_state(&control, "w.service", "active");
    assert_eq!(status(&control, "v.service")["state"], "inactive");

    drop(c);
    let exit = flint.stop();
    assert!(
        exit.is_some_and(|e| e.success()),
        "{exit:?}\n{}",
        flint.log()
    );
}

/// A `JobTimeoutSec=` answer comes when the job times out, for a stop
/// too; a timed-out job does not keep flint from stopping; the manual
/// forms of reload-or-restart honour `RefuseManualStop=`; `Requisite=` on
/// a target that was not started fails; a failed assertion leaves a
/// failed unit failed.
#[test]
fn job_timeouts_refusals_requisite_targets_and_assertions_keep_the_units_state() {
    let tree = Tree::new();
    let marker = tree.path().join("marker");
    tree.write(
        "slow.service",
        "[Unit]\nJobTimeoutSec=1\n[Service]\nType=notify\nTimeoutStartSec=infinity\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "stubborn.service",
        "[Unit]\nJobTimeoutSec=1\n[Service]\nExecStart=/bin/sleep 1000\nExecStop=/bin/sleep 3\n",
    );
    tree.write(
        "nostop.service",
        "[Unit]\nRefuseManualStop=yes\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write("t.target", "[Unit]\nDescription=t\n");
    tree.write(
        "req.service",
        "[Unit]\nRequisite=t.target\nAfter=t.target\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "flaky.service",
        &format!(
            "[Unit]\nAssertPathExists=!{m}\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'touch {m}; exit 1'\n",
            m = marker.display()
        ),
    );
    let (mut flint, control) = run(&tree, &["nostop.service", "stubborn.service"]);
    wait_state(&control, "stubborn.service", "active");

    let (code, out) = ctl(&control, &["start", "slow.service"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Job for slow.service timed out."), "{out}");
    let (code, out) = ctl(&control, &["stop", "stubborn.service"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Job for stubborn.service timed out."), "{out}");

    for verb in ["reload-or-restart", "try-reload-or-restart"] {
        let (code, out) = ctl(&control, &[verb, "nostop.service"]);
        assert_eq!(code, 4, "{verb}: {out}");
    }
    let (code, out) = ctl(&control, &["start", "req.service"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(status(&control, "req.service")["state"], "inactive");

    assert_eq!(ctl(&control, &["start", "flaky.service"]).0, 1);
    assert_eq!(status(&control, "flaky.service")["state"], "failed");
    let (code, out) = ctl(&control, &["start", "flaky.service"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Assertion failed on job for flaky.service."),
        "{out}"
    );
    let s = status(&control, "flaky.service");
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("failed"), Some("exit-code")),
        "{s}"
    );

    // slow.service still starts (its job timed out, not the unit) and
    // stubborn.service still stops: flint stops all the same.
    let exit = flint.stop();
    assert!(
        exit.is_some_and(|e| e.success()),
        "{exit:?}\n{}",
        flint.log()
    );
}

/// A unit named by an alias (syslog.service, a link to rsyslog.service;
/// redis.service to redis-server.service) is the same unit: its socket
/// gives it its fds, a dependency on the alias starts no second daemon,
/// and `flint ctl` answers for it under either name.
#[test]
fn an_alias_names_the_same_unit_for_sockets_dependencies_and_ctl() {
    let tree = Tree::new();
    let env = tree.path().join("env");
    tree.write(
        "rsys.service",
        &format!(
            "[Unit]\nRequires=syslog.socket\n[Service]\nExecStart={}\n[Install]\nAlias=syslog.service\n",
            sh(&format!("echo LISTEN_FDS=$LISTEN_FDS >> {}; exec sleep 1000", env.display()))
        ),
    );
    std::os::unix::fs::symlink("rsys.service", tree.path().join("syslog.service")).unwrap();
    tree.write(
        "syslog.socket",
        &format!(
            "[Socket]\nListenStream={}\n",
            tree.path().join("log.sock").display()
        ),
    );
    tree.write(
        "waiter.service",
        "[Unit]\nRequires=syslog.service\nAfter=syslog.service\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let (flint, control) = run(&tree, &["rsys.service", "syslog.socket"]);
    wait_state(&control, "rsys.service", "active");
    let (code, out) = ctl(&control, &["start", "waiter.service"]);
    assert_eq!(code, 0, "{out}");
    wait_state(&control, "waiter.service", "active");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&env), ["LISTEN_FDS=1"], "{}", flint.log());
    let (code, out) = ctl(&control, &["is-active", "syslog.service"]);
    assert_eq!((code, out.trim()), (0, "active"));
    let (_, listed) = ctl(&control, &["list-units", "--all"]);
    let rows = listed
        .lines()
        .filter(|l| l.trim_start().starts_with("rsys.service"))
        .count();
    assert_eq!(rows, 1, "{listed}");
    assert!(!listed.contains("syslog.service"), "{listed}");
    let (code, out) = ctl(&control, &["stop", "syslog.service"]);
    assert_eq!(code, 0, "{out}");
    wait_state(&control, "rsys.service", "inactive");
}

/// The signals a container runtime or machinectl sends systemd as a
/// container's init (SIGRTMIN+3 halt, Docker's STOPSIGNAL for images made
/// for systemd; +4 poweroff, +5 reboot, +6 kexec) stop flint in order, as
/// SIGTERM does.
#[test]
fn the_container_stop_signals_of_systemd_stop_flint_in_order() {
    for n in [3, 4] {
        let tree = Tree::new();
        let log = tree.path().join("log");
        tree.write(
            "a.service",
            &format!(
                "[Service]\nExecStart=/bin/sleep 1000\nExecStopPost={}\n",
                sh(&format!("echo stopped >> {}", log.display()))
            ),
        );
        let (mut flint, control) = run(&tree, &["a.service"]);
        wait_state(&control, "a.service", "active");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(flint.child.id().cast_signed(), libc::SIGRTMIN() + n);
        }
        let exit = wait_for(Duration::from_secs(15), || {
            flint.child.try_wait().ok().flatten()
        });
        assert!(
            exit.is_some_and(|e| e.success()),
            "SIGRTMIN+{n}: {exit:?}\n{}",
            flint.log()
        );
        assert_eq!(lines(&log), ["stopped"], "SIGRTMIN+{n}");
    }
}

/// A socket started by hand pulls in what it `Requires=`, `BindsTo=` and
/// `Wants=`, as its start job does under systemd (cockpit's
/// `cockpit-wsinstance-https@x.socket` starts the service it is bound to
/// so; flint opened the socket alone). A service started through that
/// socket, which `Requires=` it, does not run the oneshot the socket
/// wants again: the start of the active socket changes nothing and is
/// dropped with what only it pulled in (systemd's
/// `transaction_drop_redundant()`; cockpit-motd.service ran on each
/// connection).
#[test]
fn a_socket_started_by_hand_pulls_in_its_requirements_once() {
    let tree = Tree::new();
    let (flint, control) = common::run_with_control(&tree);
    let ran = tree.path().join("helper-ran");
    let sock = tree.path().join("w.sock");
    tree.write(
        "w.socket",
        &format!(
            "[Unit]\nWants=w-helper.service\nRequires=w-req.service\n[Socket]\nListenStream={}\n",
            sock.display()
        ),
    );
    tree.write(
        "w-helper.service",
        &format!(
            "[Service]\nType=oneshot\nExecStart={}\n",
            sh(&format!("echo ran >> {}", ran.display()))
        ),
    );
    tree.write("w-req.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "w.service",
        "[Unit]\nRequires=w.socket\nAfter=w.socket\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let (code, out) = ctl(&control, &["start", "w.socket"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    wait_state(&control, "w-req.service", "active");
    assert!(
        wait_for(Duration::from_secs(10), || (lines(&ran).len() == 1)
            .then_some(()))
        .is_some(),
        "the wanted oneshot ran once: {:?}\n{}",
        lines(&ran),
        flint.log()
    );
    // A connection starts w.service.
    let _client = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    wait_state(&control, "w.service", "active");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&ran).len(), 1, "{}", flint.log());
    // Started by hand again, the socket (the job asked for is never left
    // out) runs the oneshot again, as systemd 252's user manager does.
    let (code, out) = ctl(&control, &["start", "w.socket"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    assert!(
        wait_for(Duration::from_secs(10), || (lines(&ran).len() == 2)
            .then_some(()))
        .is_some(),
        "{:?}\n{}",
        lines(&ran),
        flint.log()
    );
}

/// A socket started by hand stops the units that name it in their
/// `Conflicts=` (systemd's `ConflictedBy=`), as a service's start does:
/// `pulseaudio.socket` and `pipewire-pulse.socket` listen on one path,
/// and the second declares the conflict; starting the first left the
/// other listening with its file taken over, so that later clients were
/// refused.
#[test]
fn a_socket_started_by_hand_stops_the_units_that_conflict_with_it() {
    let tree = Tree::new();
    let (flint, control) = common::run_with_control(&tree);
    let sock = tree.path().join("same.sock");
    tree.write(
        "old.socket",
        &format!(
            "[Unit]\nConflicts=new.socket\n[Socket]\nListenStream={}\n",
            sock.display()
        ),
    );
    tree.write("old.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "helper.service",
        "[Unit]\nConflicts=new.socket\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write(
        "new.socket",
        &format!("[Socket]\nListenStream={}\n", sock.display()),
    );
    tree.write("new.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    for unit in ["old.socket", "helper.service"] {
        let (code, out) = ctl(&control, &["start", unit]);
        assert_eq!(code, 0, "{out}\n{}", flint.log());
    }
    wait_state(&control, "helper.service", "active");
    let (code, out) = ctl(&control, &["start", "new.socket"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    wait_state(&control, "old.socket", "inactive");
    wait_state(&control, "helper.service", "inactive");
    // The path is the new socket's: a client starts its service.
    let _client = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    wait_state(&control, "new.service", "active");
    assert_ne!(
        status(&control, "old.service")["state"],
        "active",
        "{}",
        flint.log()
    );
    // With RemoveOnStop=, the conflicting socket's node goes before the
    // new one is made at that path, not after.
    let other = tree.path().join("other.sock");
    tree.write(
        "ro-old.socket",
        &format!(
            "[Unit]\nConflicts=ro-new.socket\n[Socket]\nListenStream={}\nRemoveOnStop=yes\n",
            other.display()
        ),
    );
    tree.write("ro-old.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "ro-new.socket",
        &format!("[Socket]\nListenStream={}\n", other.display()),
    );
    tree.write("ro-new.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let (code, out) = ctl(&control, &["start", "ro-old.socket"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    let (code, out) = ctl(&control, &["start", "ro-new.socket"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    wait_state(&control, "ro-old.socket", "inactive");
    let _other = std::os::unix::net::UnixStream::connect(&other).expect("connect");
    wait_state(&control, "ro-new.service", "active");
    // Two sockets on one TCP port: the new one binds once the old one's
    // listeners have closed (they close a turn of the loop after its stop,
    // and the bind met EADDRINUSE), started by hand or by a transaction
    // (a target that wants it).
    let port = common::free_port();
    tree.write(
        "tcp-old.socket",
        &format!("[Unit]\nConflicts=tcp-new.socket\n[Socket]\nListenStream=127.0.0.1:{port}\n"),
    );
    tree.write(
        "tcp-new.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\n"),
    );
    tree.write("tcp.target", "[Unit]\nWants=tcp-old.socket\n");
    for service in ["tcp-old.service", "tcp-new.service"] {
        tree.write(service, "[Service]\nExecStart=/bin/sleep 1000\n");
    }
    let (code, out) = ctl(&control, &["start", "tcp-old.socket"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    let (code, out) = ctl(&control, &["start", "tcp-new.socket"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    wait_state(&control, "tcp-old.socket", "inactive");
    // (Failed, had its bind met EADDRINUSE.) No connection: the service
    // that took it would hold the port too.
    wait_state(&control, "tcp-new.socket", "active");
    let (code, out) = ctl(&control, &["start", "tcp.target"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    wait_state(&control, "tcp-new.socket", "inactive");
    wait_state(&control, "tcp-old.socket", "active");
    let _tcp = common::connect(port);
    wait_state(&control, "tcp-old.service", "active");
}

/// A stop of a target nothing started reaches the units that are part of
/// it, as systemd's (Debian's `stunnel@.service` instances are
/// `PartOf=stunnel.target`, and `systemctl stop stunnel.target` stops
/// every tunnel).
#[test]
fn stopping_a_target_nothing_started_stops_what_is_part_of_it() {
    let tree = Tree::new();
    let (flint, control) = common::run_with_control(&tree);
    tree.write("tun.target", "[Unit]\nDescription=all tunnels\n");
    tree.write(
        "tun@.service",
        "[Unit]\nPartOf=tun.target\n[Service]\nExecStart=/bin/sleep 1000\n",
    );
    tree.write("other.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    for unit in ["tun@a.service", "tun@b.service", "other.service"] {
        let (code, out) = ctl(&control, &["start", unit]);
        assert_eq!(code, 0, "{out}\n{}", flint.log());
    }
    assert_eq!(status(&control, "tun.target")["state"], "inactive");
    let (code, out) = ctl(&control, &["stop", "tun.target"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    wait_state(&control, "tun@a.service", "inactive");
    wait_state(&control, "tun@b.service", "inactive");
    assert_eq!(status(&control, "other.service")["state"], "active");
    // A target that nothing is part of: nothing to do.
    let (code, out) = ctl(&control, &["stop", "tun.target"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
}
