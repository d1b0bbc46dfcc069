//! Declarative switching of a running `flint run` to new unit trees
//! (`flint ctl switch DIR`, `--dry-run`, SIGHUP, `--watch`): clients
//! connect without pause across a series of switches and none is refused or
//! reset; the listeners' file descriptors (number and socket inode in
//! flint's `/proc/PID/fd`) never change; a tree that fails to load is
//! refused as a whole; the plan is printed in switch-to-configuration's
//! words.

mod common;

use common::held_listener as listener_fd;

use common::ctl_split as ctl;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Flint, Tree, free_port, switch, wait_for};

/// An `Accept=no` daemon that serves one line per connection and, on
/// SIGTERM, exits only between connections (SIGTERM is blocked and polled),
/// so a stop never drops a connection it accepted.
const DAEMON: &str = r#"
import os, select, signal, socket, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
reply = sys.argv[1].encode() + b"\n"
s = socket.socket(fileno=3)
s.setblocking(False)
while signal.SIGTERM not in signal.sigpending():
    r, _, _ = select.select([s], [], [], 0.05)
    if not r:
        continue
    try:
        c, _ = s.accept()
    except BlockingIOError:
        continue
    c.setblocking(True)
    c.sendall(reply)
    c.close()
"#;

/// One generation of the unit tree, in its own directory (as a Nix profile
/// generation is).
#[derive(Clone, Copy)]
struct Gen {
    web: u16,
    kv: u16,
    extra: Option<u16>,
    web_reply: &'static str,
    kv_reply: &'static str,
    web_options: &'static str,
    kv_options: &'static str,
    allow: &'static str,
}

fn write_gen(root: &Path, name: &str, g: &Gen, daemon: &Path) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let write = |file: &str, text: String| std::fs::write(dir.join(file), text).expect("write");
    let plugin = Path::new(env!("FLINT_PLUGIN_DIR")).join("allowlist.wasm");
    write(
        "web.socket",
        format!(
            "[Socket]\nListenStream=127.0.0.1:{}\nAccept=yes\nMaxConnections=512\n\
             PollLimitBurst=100000\nTriggerLimitBurst=100000\n{}\n\
             [X-Flint-Plugin-allow]\nPath={}\nConfig=allow={}\nTimeoutSec=2s\n",
            g.web,
            g.web_options,
            plugin.display(),
            g.allow
        ),
    );
    write(
        "web@.service",
        format!(
            "[Service]\nStandardInput=socket\nExecStart=/bin/echo {}\n",
            g.web_reply
        ),
    );
    write(
        "kv.socket",
        format!(
            "[Socket]\nListenStream=127.0.0.1:{}\nBacklog=512\n{}\n",
            g.kv, g.kv_options
        ),
    );
    write(
        "kv.service",
        format!(
            "[Service]\nExecStart=/usr/bin/python3 {} {}\n",
            daemon.display(),
            g.kv_reply
        ),
    );
    if let Some(port) = g.extra {
        write(
            "extra.socket",
            format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
        );
        write(
            "extra@.service",
            "[Service]\nStandardInput=socket\nExecStart=/bin/echo extra\n".into(),
        );
    }
    dir
}

/// Writes `UNIT.socket` (an `Accept=yes` listener on 127.0.0.1:`port`) and
/// `UNIT@.service` (answers `UNIT`) into `dir`.
fn echo_socket(dir: &Path, unit: &str, port: u16) {
    std::fs::write(
        dir.join(format!("{unit}.socket")),
        format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{unit}@.service")),
        format!("[Service]\nStandardInput=socket\nExecStart=/bin/echo {unit}\n"),
    )
    .unwrap();
}

/// One request: connect, read the line. `None` on refusal, reset or an
/// empty answer.
/// Whether process `pid` holds a listener on `port`.
fn flint_listens(pid: u32, port: u16) -> bool {
    common::listener_fd(pid, port).is_some()
}

fn ask(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}

/// A client loop on one port until `stop` (bounded in count and time).
struct Load {
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    last: Arc<std::sync::Mutex<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, stop: &Arc<AtomicBool>) -> Load {
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let last = Arc::new(std::sync::Mutex::new(String::new()));
        let (o, f, l, stop) = (ok.clone(), failed.clone(), last.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            // Paced to at most 1,000 connections a second, so the count
            // bound is never what ends the loop before `stop` (a fast
            // machine served 50,000 in 6 s, and the loop ended mid-test).
            for _ in 0..500_000 {
                if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_mins(4) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
                match ask(port) {
                    Some(line) => {
                        o.fetch_add(1, Ordering::Relaxed);
                        *l.lock().unwrap() = line;
                    }
                    None => {
                        f.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Load {
            ok,
            failed,
            last,
            thread: Some(thread),
        }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits (bounded) until the answers are `want`, with more to come.
    fn wait_answer(&self, want: &str) {
        let got = wait_for(Duration::from_secs(30), || {
            (self.last.lock().unwrap().trim() == want).then_some(())
        });
        assert!(
            got.is_some(),
            "answers never became {want:?}; last {:?} after {} answered, {} failed",
            self.last.lock().unwrap(),
            self.ok(),
            self.failed.load(Ordering::Relaxed)
        );
        let n = self.ok();
        assert!(
            wait_for(Duration::from_secs(30), || (self.ok() > n + 5)
                .then_some(()))
            .is_some(),
            "the client loop stalled (finished: {})",
            self.thread
                .as_ref()
                .is_none_or(std::thread::JoinHandle::is_finished)
        );
    }

    fn finish(mut self) -> (u64, u64) {
        if let Some(t) = self.thread.take() {
            t.join().expect("client loop");
        }
        (self.ok(), self.failed.load(Ordering::Relaxed))
    }
}

#[test]
fn a_series_of_switches_drops_no_connection_and_keeps_the_listeners() {
    if !common::require("python3", "the Accept=no test daemon") {
        return;
    }
    let tree = Tree::new();
    let control = tree.path().join("control");
    let daemon = tree.write("daemon.py", DAEMON);
    let (web, kv, extra) = (free_port(), free_port(), free_port());
    let base = Gen {
        web,
        kv,
        extra: None,
        web_reply: "web-v1",
        kv_reply: "kv-v1",
        web_options: "",
        kv_options: "",
        allow: "127.0.0.0/8",
    };
    let gen1 = write_gen(tree.path(), "gen1", &base, &daemon);
    // No unit names: the run follows the tree, so added and removed units
    // start and stop.
    let flint = Flint::run_dir(&gen1, &["--control", control.to_str().unwrap()], &[]);
    let pid = flint.child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let web_load = Load::start(web, &stop);
    let kv_load = Load::start(kv, &stop);
    web_load.wait_answer("web-v1");
    kv_load.wait_answer("kv-v1");
    let web_fd = listener_fd(pid, web);
    let kv_fd = listener_fd(pid, kv);

    // 1. The services' ExecStart= changed.
    let g2 = Gen {
        web_reply: "web-v2",
        kv_reply: "kv-v2",
        ..base
    };
    let gen2 = write_gen(tree.path(), "gen2", &g2, &daemon);
    let plan = switch(&control, &gen2, true);
    assert_eq!(
        plan, "stopping the following units: kv.service\n",
        "dry run"
    );
    switch(&control, &gen2, false);
    web_load.wait_answer("web-v2");
    kv_load.wait_answer("kv-v2");

    // 2. Socket options changed: applied in place, listeners kept.
    let g3 = Gen {
        web_options: "KeepAlive=yes\nBacklog=256",
        kv_options: "ReceiveBuffer=262144",
        ..g2
    };
    let gen3 = write_gen(tree.path(), "gen3", &g3, &daemon);
    let out = switch(&control, &gen3, false);
    assert_eq!(
        out,
        "keeping the listeners of the following changed units: kv.socket, web.socket\n"
    );

    // 3. A unit added.
    let g4 = Gen {
        extra: Some(extra),
        ..g3
    };
    let gen4 = write_gen(tree.path(), "gen4", &g4, &daemon);
    let out = switch(&control, &gen4, false);
    assert_eq!(out, "starting the following units: extra.socket\n");
    assert_eq!(ask(extra).as_deref(), Some("extra\n"));

    // 4. The unit removed again.
    let out = switch(&control, &gen3, false);
    assert_eq!(out, "stopping the following units: extra.socket\n");
    assert!(
        wait_for(Duration::from_secs(5), || ask(extra)
            .is_none()
            .then_some(()))
        .is_some(),
        "extra.socket closes"
    );

    // 5. A plugin changed (its configuration).
    let g5 = Gen {
        allow: "127.0.0.1/32",
        ..g3
    };
    let gen5 = write_gen(tree.path(), "gen5", &g5, &daemon);
    let out = switch(&control, &gen5, false);
    assert_eq!(
        out,
        "keeping the listeners of the following changed units: web.socket\n\
         reloading the plugins of the following units: web.socket\n"
    );
    web_load.wait_answer("web-v2");
    kv_load.wait_answer("kv-v2");

    stop.store(true, Ordering::Relaxed);
    let (web_ok, web_failed) = web_load.finish();
    let (kv_ok, kv_failed) = kv_load.finish();
    eprintln!(
        "web: {web_ok} answered, {web_failed} failed; kv: {kv_ok} answered, {kv_failed} failed"
    );
    assert_eq!(web_failed, 0, "refused or reset connections on web");
    assert_eq!(kv_failed, 0, "refused or reset connections on kv");
    assert!(web_ok > 20 && kv_ok > 20, "{web_ok} {kv_ok}");
    assert_eq!(listener_fd(pid, web), web_fd, "web's listener was reopened");
    assert_eq!(listener_fd(pid, kv), kv_fd, "kv's listener was reopened");
    // The new options are on the kept listeners.
    let (code, status, _) = ctl(&control, &["status", "web.socket"]);
    assert_eq!(code, 0, "{status}");
}

#[test]
fn units_added_and_removed_in_a_run_without_names() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let (a, b) = (free_port(), free_port());
    let make = |name: &str, ports: &[(&str, u16)]| {
        let dir = tree.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (unit, port) in ports {
            echo_socket(&dir, unit, *port);
        }
        dir
    };
    let gen1 = make("gen1", &[("a", a)]);
    let gen2 = make("gen2", &[("a", a), ("b", b)]);
    let gen3 = make("gen3", &[("b", b)]);
    let flint = Flint::run_dir(&gen1, &["--control", control.to_str().unwrap()], &[]);
    assert_eq!(ask(a).as_deref(), Some("a\n"));
    // Whether flint listens, not whether anyone answers: a parallel test
    // may have been given the same free port.
    assert!(!flint_listens(flint.child.id(), b), "b is not open yet");
    let a_fd = listener_fd(flint.child.id(), a);

    assert_eq!(
        switch(&control, &gen2, true),
        "starting the following units: b.socket\n"
    );
    assert!(
        !flint_listens(flint.child.id(), b),
        "a dry run changes nothing"
    );
    switch(&control, &gen2, false);
    assert_eq!(ask(b).as_deref(), Some("b\n"));
    assert_eq!(ask(a).as_deref(), Some("a\n"));
    assert_eq!(listener_fd(flint.child.id(), a), a_fd);

    assert_eq!(
        switch(&control, &gen3, false),
        "stopping the following units: a.socket\n"
    );
    assert!(
        wait_for(Duration::from_secs(5), || ask(a).is_none().then_some(())).is_some(),
        "a.socket was removed and closes"
    );
    assert_eq!(ask(b).as_deref(), Some("b\n"));
    let (_, list, _) = ctl(&control, &["list-sockets"]);
    assert!(
        list.contains("b.socket") && !list.contains("a.socket"),
        "{list}"
    );
}

#[test]
fn a_tree_that_fails_to_load_is_refused_and_nothing_changes() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let port = free_port();
    let good = tree.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    std::fs::write(
        good.join("e.socket"),
        format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    )
    .unwrap();
    std::fs::write(
        good.join("e@.service"),
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo good\n",
    )
    .unwrap();
    let bad = tree.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("e.socket"),
        format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    )
    .unwrap();
    // The template is gone and a second socket is broken.
    std::fs::write(bad.join("f.socket"), "[Socket]\nListenStream=\n").unwrap();
    let flint = Flint::run_dir(&good, &["--control", control.to_str().unwrap()], &[]);
    let fd = listener_fd(flint.child.id(), port);
    let (code, out, err) = ctl(&control, &["switch", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("the new unit tree does not load; nothing was changed"),
        "{err}"
    );
    assert!(err.contains("e@.service not found"), "{err}");
    assert!(err.contains("f.socket"), "{err}");
    // Still the old tree, still the same listener.
    assert_eq!(ask(port).as_deref(), Some("good\n"));
    assert_eq!(listener_fd(flint.child.id(), port), fd);
    let (code, _, _) = ctl(
        &control,
        &["switch", tree.path().join("nope").to_str().unwrap()],
    );
    assert_eq!(code, 1);
}

#[test]
fn sighup_and_watch_follow_a_flipped_profile_symlink() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    // Each generation adds a socket that only a switch opens.
    let mk = |name: &str, units: &[(&str, u16)]| {
        let dir = tree.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (unit, port) in units {
            echo_socket(&dir, unit, *port);
        }
        dir
    };
    let p = ("p", ports[0]);
    let g1 = mk("g1", &[p]);
    let g2 = mk("g2", &[p, ("q", ports[1])]);
    let g3 = mk("g3", &[p, ("r", ports[2])]);
    let g4 = mk("g4", &[p, ("s", ports[3])]);
    let profile = tree.path().join("profile");
    let flip = |to: &Path| {
        let tmp = tree.path().join("profile.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(to, &tmp).unwrap();
        std::fs::rename(&tmp, &profile).unwrap();
    };
    let answers = |port: u16, want: &str| {
        wait_for(Duration::from_secs(20), || {
            (ask(port).as_deref() == Some(want)).then_some(())
        })
        .is_some()
    };
    flip(&g1);
    let flint = Flint::run_dir(
        &profile,
        &["--control", control.to_str().unwrap(), "--watch"],
        &[],
    );
    let fd = listener_fd(flint.child.id(), ports[0]);
    assert_eq!(ask(ports[0]).as_deref(), Some("p\n"));
    assert!(!flint_listens(flint.child.id(), ports[1]));
    // --watch: the flipped symlink is noticed and switched to.
    flip(&g2);
    assert!(
        answers(ports[1], "q\n"),
        "--watch did not follow the profile"
    );
    assert!(
        flint.log().contains("the unit tree changed"),
        "{}",
        flint.log()
    );
    // SIGHUP: switch to the tree on disk now.
    flip(&g3);
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(flint.child.id().cast_signed(), libc::SIGHUP);
    }
    assert!(answers(ports[2], "r\n"), "SIGHUP did not switch");
    assert!(
        wait_for(Duration::from_secs(5), || ask(ports[1])
            .is_none()
            .then_some(()))
        .is_some(),
        "q.socket closes"
    );
    assert!(flint.log().contains("SIGHUP"), "{}", flint.log());
    // After `ctl switch DIR`, --watch follows DIR.
    switch(&control, &g4, false);
    assert_eq!(ask(ports[3]).as_deref(), Some("s\n"));
    echo_socket(&g4, "t", ports[4]);
    assert!(
        answers(ports[4], "t\n"),
        "--watch did not follow the tree of ctl switch"
    );
    assert_eq!(ask(ports[0]).as_deref(), Some("p\n"));
    assert_eq!(listener_fd(flint.child.id(), ports[0]), fd);
}

#[test]
fn switch_answers_once_its_services_settled_and_names_failures() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let make = |name: &str, slow: &str, broken: bool| {
        let dir = tree.path().join(name);
        std::fs::create_dir_all(dir.join("multi-user.target.wants")).unwrap();
        std::fs::write(dir.join("multi-user.target"), "[Unit]\nDescription=m\n").unwrap();
        // Ready one second after it starts.
        std::fs::write(
            dir.join("slow.service"),
            format!(
                "[Service]\nType=notify\nNotifyAccess=all\nEnvironment=V={slow}\n\
                 ExecStart=/bin/sh -c 'sleep 1; systemd-notify --ready; exec sleep 1000'\n"
            ),
        )
        .unwrap();
        let exec = if broken {
            "/bin/false"
        } else {
            "/bin/sleep 1000"
        };
        std::fs::write(
            dir.join("other.service"),
            format!("[Service]\nExecStart={exec}\n"),
        )
        .unwrap();
        for unit in ["slow.service", "other.service"] {
            std::os::unix::fs::symlink(
                dir.join(unit),
                dir.join("multi-user.target.wants").join(unit),
            )
            .unwrap();
        }
        dir
    };
    let g1 = make("g1", "1", false);
    let g2 = make("g2", "2", true);
    let flint = Flint::run_dir(&g1, &["--control", control.to_str().unwrap()], &[]);
    assert!(flint.wait_log("slow.service: ready"), "{}", flint.log());
    let (code, out, err) = ctl(&control, &["switch", g2.to_str().unwrap()]);
    assert_eq!(code, 4, "a unit failed: {out}{err}");
    assert!(
        out.contains("stopping the following units: other.service, slow.service")
            && out.contains("starting the following units: other.service, slow.service")
            && out.contains("warning: the following units failed: other.service"),
        "{out}"
    );
    // slow.service is ready (active, not activating) when the switch
    // answers: the answer waited for READY=1.
    let (code, status, _) = ctl(&control, &["status", "slow.service"]);
    assert_eq!(
        code, 0,
        "slow.service is running when switch returns: {status}"
    );
}

#[test]
fn a_renamed_socket_takes_over_the_listener_without_refusing_anyone() {
    renamed_socket_takes_over("");
}

#[test]
fn a_renamed_socket_takes_over_the_listener_after_its_exec_start_pre() {
    // The old listener stays open (connections queue) while the new
    // socket's ExecStartPre= runs, then the new socket takes it over.
    renamed_socket_takes_over("ExecStartPre=/bin/sleep 0.3\n");
}

/// Switches from old.socket to new.socket (with `extra` in its [Socket])
/// on the same address under a steady load: nobody is refused and the
/// listener is the same.
fn renamed_socket_takes_over(extra: &str) {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let port = free_port();
    let make = |generation: &str, unit: &str| {
        let dir = tree.path().join(generation);
        std::fs::create_dir_all(&dir).unwrap();
        let extra = if unit == "new" { extra } else { "" };
        std::fs::write(
            dir.join(format!("{unit}.socket")),
            format!(
                "[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=512\n\
                 PollLimitBurst=100000\nTriggerLimitBurst=100000\n{extra}"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{unit}@.service")),
            format!("[Service]\nStandardInput=socket\nExecStart=/bin/echo {unit}\n"),
        )
        .unwrap();
        dir
    };
    let g1 = make("g1", "old");
    let g2 = make("g2", "new");
    let flint = Flint::run_dir(&g1, &["--control", control.to_str().unwrap()], &[]);
    let before = listener_fd(flint.child.id(), port);
    let stop = Arc::new(AtomicBool::new(false));
    let load = Load::start(port, &stop);
    load.wait_answer("old");
    let out = switch(&control, &g2, false);
    assert_eq!(
        out,
        "stopping the following units: old.socket\nstarting the following units: new.socket\n"
    );
    load.wait_answer("new");
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "{ok} answered, {failed} refused or reset");
    assert_eq!(
        listener_fd(flint.child.id(), port),
        before,
        "the listener was reopened"
    );
    assert!(
        flint.log().contains("new.socket: took over"),
        "{}",
        flint.log()
    );
}

/// Two unit trees `g1` and `g2` in `tree`, each with kept.socket on `kept`.
fn two_generations_keeping(tree: &Tree, kept: u16) -> (PathBuf, PathBuf) {
    let (g1, g2) = (tree.path().join("g1"), tree.path().join("g2"));
    for dir in [&g1, &g2] {
        std::fs::create_dir_all(dir).unwrap();
        echo_socket(dir, "kept", kept);
    }
    (g1, g2)
}

#[test]
fn a_socket_removed_while_its_exec_start_pre_runs_never_listens() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let (kept, gone) = (free_port(), free_port());
    let go = tree.path().join("go");
    let (g1, g2) = two_generations_keeping(&tree, kept);
    // Only g1 has gone.socket, whose ExecStartPre= waits for a file.
    std::fs::write(
        g1.join("gone.socket"),
        format!(
            "[Socket]\nListenStream=127.0.0.1:{gone}\nAccept=yes\n\
             ExecStartPre=/bin/sh -c 'while [ ! -e {} ]; do sleep 0.05; done'\n",
            go.display()
        ),
    )
    .unwrap();
    std::fs::write(
        g1.join("gone@.service"),
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo gone\n",
    )
    .unwrap();
    // No units named: every socket of the tree, as at boot.
    let flint = Flint::run_dir_until(
        &g1,
        &["--control", control.to_str().unwrap()],
        "kept.socket: listening",
    );
    assert_eq!(ask(kept).as_deref(), Some("kept\n"));
    switch(&control, &g2, false);
    std::fs::write(&go, "").unwrap();
    assert!(
        flint.wait_log("gone.socket: no longer in the unit tree"),
        "{}",
        flint.log()
    );
    assert!(!flint_listens(flint.child.id(), gone));
    assert_eq!(ask(kept).as_deref(), Some("kept\n"));
}

#[test]
fn a_socket_a_switch_removes_runs_its_stop_commands() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let (kept, gone) = (free_port(), free_port());
    let log = tree.path().join("log");
    let (g1, g2) = two_generations_keeping(&tree, kept);
    echo_socket(&g1, "gone", gone);
    let l = log.display();
    std::fs::write(
        g1.join("gone.socket"),
        format!(
            "[Socket]\nListenStream=127.0.0.1:{gone}\nAccept=yes\n\
             ExecStopPre=/bin/sh -c 'echo stoppre >> {l}'\n\
             ExecStopPost=/bin/sh -c 'echo stoppost >> {l}'\n"
        ),
    )
    .unwrap();
    let flint = Flint::run_dir(&g1, &["--control", control.to_str().unwrap()], &[]);
    assert_eq!(ask(gone).as_deref(), Some("gone\n"));
    switch(&control, &g2, false);
    let got = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.lines().count() >= 2)
    });
    assert_eq!(
        got.as_deref(),
        Some("stoppre\nstoppost\n"),
        "{}",
        flint.log()
    );
    assert!(!flint.log().contains("waiting failed"), "{}", flint.log());
    assert!(!flint_listens(flint.child.id(), gone));
    assert_eq!(ask(kept).as_deref(), Some("kept\n"));
}
