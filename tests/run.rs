//! `flint run` end to end: real sockets on loopback and unix paths, real
//! processes, and a probe that reports exactly what each activated process
//! received (fds, flags, environment).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Flint, Tree, exchange, free_port, install_probe, wait_for};

fn read_reports(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn accept_no_passes_every_listener_with_systemds_fd_protocol() {
    let tree = Tree::new();
    let probe = install_probe(&tree);
    let out = tree.path().join("report.jsonl");
    let (p1, p2) = (free_port(), free_port());
    let sock = tree.path().join("run/app.sock");
    tree.write("app.socket", &format!("[Socket]\nListenStream=127.0.0.1:{p1}\nListenDatagram=127.0.0.1:{p2}\nListenStream={}\nSocketMode=0600\n", sock.display()));
    tree.write(
        "app.service",
        &format!(
            "[Service]\nExecStart=/usr/bin/python3 {} {}\n",
            probe.display(),
            out.display()
        ),
    );
    let _flint = Flint::run(&tree, &["app.socket"]);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "SocketMode= applies to the unix node");
    // Traffic on the datagram listener triggers the service.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"ping", ("127.0.0.1", p2)).unwrap();
    let reports = wait_for(Duration::from_secs(15), || {
        Some(read_reports(&out)).filter(|r| !r.is_empty())
    })
    .expect("service was not activated");
    let r = &reports[0];
    let env = &r["env"];
    assert_eq!(env["LISTEN_FDS"], "3");
    assert_eq!(
        env["LISTEN_PID"].as_str().unwrap(),
        r["pid"].to_string(),
        "LISTEN_PID is the pid that execs the daemon"
    );
    assert_eq!(env["LISTEN_FDNAMES"], "app.socket:app.socket:app.socket");
    assert_eq!(
        env["PATH"],
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
    );
    assert!(
        env.get("HOME").is_none(),
        "the system manager passes no environment of its own"
    );
    let fds = r["fds"].as_object().unwrap();
    assert_eq!(fds["3"]["type"], "stream");
    assert_eq!(fds["3"]["family"], "inet");
    assert_eq!(fds["3"]["listening"], true);
    assert_eq!(fds["4"]["type"], "dgram");
    assert_eq!(fds["5"]["family"], "unix");
    for fd in ["3", "4", "5"] {
        assert_eq!(
            fds[fd]["nonblock"], false,
            "fd {fd} is blocking by default (NonBlocking=no)"
        );
        assert_eq!(fds[fd]["cloexec"], false, "fd {fd} survives exec");
    }
    let extra: Vec<&String> = fds
        .keys()
        .filter(|k| k.parse::<u32>().unwrap() > 5)
        .collect();
    assert!(
        extra.is_empty(),
        "no other fds leak into the service: {extra:?}"
    );
}

#[test]
fn accept_yes_inetd_style_serves_each_connection_with_remote_env() {
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "greet.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    );
    tree.write(
        "greet@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/sh -c 'read line; echo \"got $line from $REMOTE_ADDR:$REMOTE_PORT as %i, fds=${LISTEN_FDS:-none}\"'\n",
    );
    let _flint = Flint::run(&tree, &["greet.socket"]);
    for n in 0..3 {
        let mut s = common::connect(port);
        let local = s.local_addr().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(b"hello\n").unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let expected = format!(
            "got hello from 127.0.0.1:{} as {n}-127.0.0.1:{port}-127.0.0.1:{}, fds=none\n",
            local.port(),
            local.port()
        );
        assert_eq!(reply, expected);
    }
}

/// A daemon that an `Accept=yes` instance leaves behind (it forked and
/// called `setsid()`, out of the process group and session flint follows
/// the instance by) is stopped when flint stops, as systemd's
/// `KillMode=control-group` would have stopped it: nothing flint started
/// outlives it.
#[test]
fn a_daemon_escaped_from_an_accept_yes_instance_does_not_outlive_flint() {
    let tree = Tree::new();
    let port = free_port();
    // A duration no other process here sleeps, to find the daemon by.
    let marker = format!("{}.{}", 600 + port % 100, std::process::id() % 1000);
    tree.write(
        "esc.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    );
    // The instance answers once the daemon is in its own session (a busy
    // machine may not have run its setsid() yet when the instance ends,
    // whose end takes its process group along).
    let ready = tree.path().join("escaped");
    tree.write(
        "esc@.service",
        &format!(
            "[Service]\nStandardInput=socket\n\
             ExecStart=/bin/sh -c 'setsid -f sh -c \"touch {r}; exec sleep {marker}\" </dev/null >/dev/null 2>&1; \
             while [ ! -e {r} ]; do sleep 0.01; done; echo started'\n",
            r = ready.display()
        ),
    );
    let find = || -> Option<i32> {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let zombie =
                std::fs::read_to_string(e.path().join("stat")).is_ok_and(|st| st.contains(") Z "));
            (cmdline == format!("sleep\0{marker}\0").into_bytes() && !zombie).then_some(pid)
        })
    };
    let mut flint = Flint::run(&tree, &["esc.socket"]);
    let mut s = common::connect(port);
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "started\n");
    let pid = wait_for(Duration::from_secs(10), find).expect("the escaped daemon runs");
    // Its instance has ended meanwhile; the daemon is still there.
    assert!(
        flint.wait_log("Deactivated successfully"),
        "{}",
        flint.log()
    );
    assert_eq!(find(), Some(pid), "still running while flint runs");
    flint.stop();
    let gone = wait_for(Duration::from_secs(10), || find().is_none().then_some(()));
    if gone.is_none() {
        // SAFETY: kill takes integers; only the test's own daemon is named.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(gone.is_some(), "pid {pid} outlived flint: {}", flint.log());
    assert!(
        flint.log().contains("outlived the unit that started it"),
        "{}",
        flint.log()
    );
}

#[test]
fn accept_yes_peer_sees_eof_when_the_handler_closes_unless_a_later_command_needs_the_connection() {
    let tree = Tree::new();
    let (quick, kept) = (free_port(), free_port());
    let pidfile = tree.path().join("handler.pid");
    // The handler answers, closes its copy of the connection, and lives on.
    let handler = format!(
        "/bin/sh -c 'echo $$$$ > {}; echo hi; exec 0<&- 1>&- 2>&-; exec sleep 30'",
        pidfile.display()
    );
    for (name, port, extra) in [
        ("quick", quick, String::new()),
        ("kept", kept, "ExecStopPost=/bin/echo bye\n".to_string()),
    ] {
        tree.write(
            &format!("{name}.socket"),
            &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
        );
        tree.write(
            &format!("{name}@.service"),
            &format!("[Service]\nStandardInput=socket\nExecStart={handler}\n{extra}"),
        );
    }
    let _flint = Flint::run(&tree, &["quick.socket", "kept.socket"]);

    // Nothing after ExecStart= needs it: flint has let go of the connection,
    // so EOF comes while the handler still runs, as under inetd.
    let mut s = common::connect(quick);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "hi\n");
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let running = std::path::Path::new(&format!("/proc/{pid}")).exists();
    // SAFETY: kill(2) with plain integers.
    unsafe {
        libc::kill(pid.parse().unwrap(), libc::SIGKILL);
    }
    assert!(running, "EOF came before the handler ended");

    // ExecStopPost= gets the connection as its standard output (systemd's
    // rule for inetd-style instances), so flint keeps it until then.
    let mut s = common::connect(kept);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut first = [0u8; 3];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"hi\n");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) with plain integers.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "bye\n");
}

/// `BindIPv6Only=yes` (a boolean, as gpsd.socket writes it) is
/// `ipv6-only`: `[::]` and `0.0.0.0` on one port both listen, each answering
/// its own family.
#[test]
fn bind_ipv6_only_yes_lets_ipv4_and_ipv6_share_a_port() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIP: no IPv6 on the loopback here");
        return;
    }
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "both.socket",
        &format!(
            "[Socket]\nListenStream=[::]:{port}\nListenStream=0.0.0.0:{port}\n\
             BindIPv6Only=yes\nAccept=yes\n"
        ),
    );
    tree.write(
        "both@.service",
        "[Service]\nStandardOutput=socket\nExecStart=/bin/sh -c 'echo from $REMOTE_ADDR'\n",
    );
    let flint = Flint::run(&tree, &["both.socket"]);
    for (addr, expected) in [
        (format!("127.0.0.1:{port}"), "from 127.0.0.1\n"),
        (format!("[::1]:{port}"), "from ::1\n"),
    ] {
        let mut s = std::net::TcpStream::connect(&addr)
            .unwrap_or_else(|e| panic!("{addr}: {e}\n{}", flint.log()));
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, expected, "{addr}");
    }
}

#[test]
fn accept_yes_fd3_style_names_the_connection() {
    let tree = Tree::new();
    let probe = install_probe(&tree);
    let port = free_port();
    tree.write(
        "p.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    );
    // The probe writes its report to the connection (fd 3).
    tree.write(
        "p@.service",
        &format!(
            "[Service]\nExecStart=/bin/sh -c 'exec /usr/bin/python3 {} - >&3'\n",
            probe.display()
        ),
    );
    let _flint = Flint::run(&tree, &["p.socket"]);
    let text = exchange(port, b"");
    let r: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("bad report {text:?}: {e}"));
    assert_eq!(r["env"]["LISTEN_FDS"], "1");
    assert_eq!(r["env"]["LISTEN_FDNAMES"], "connection");
    assert_eq!(
        r["fds"]["3"]["listening"], false,
        "fd 3 is the connection, not the listener"
    );
    assert_eq!(r["env"]["REMOTE_ADDR"], "127.0.0.1");
}

#[test]
fn accept_no_loses_no_connection_while_the_service_is_killed_again_and_again() {
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "e.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\n"),
    );
    // Serves two connections, then dies by SIGKILL; Restart=always brings it back.
    let server = "import os, signal, socket\ns = socket.socket(fileno=3)\nfor _ in range(2):\n    c, _ = s.accept()\n    c.sendall(c.recv(100))\n    c.close()\nos.kill(os.getpid(), signal.SIGKILL)\n";
    tree.write("e.py", server);
    tree.write(
        "e.service",
        &format!("[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/usr/bin/python3 {}\nRestart=always\nRestartSec=50ms\n", tree.path().join("e.py").display()),
    );
    let flint = Flint::run(&tree, &["e.socket"]);
    let total = 40;
    for i in 0..total {
        let msg = format!("msg{i}");
        let reply = exchange(port, msg.as_bytes());
        assert_eq!(reply, msg, "connection {i} was not served");
    }
    let kills = flint.log().matches("signal").count();
    assert!(
        kills >= 10,
        "the service was killed repeatedly (saw {kills})"
    );
}

#[test]
fn max_connections_refuses_extra_peers_and_the_socket_stays_healthy() {
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "m.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=2\n"),
    );
    tree.write(
        "m@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/sh -c 'echo hi; read x'\n",
    );
    let flint = Flint::run(&tree, &["m.socket"]);
    // Two held connections occupy both slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = common::connect(port);
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi\n");
        held.push(s);
    }
    // A third is accepted and closed at once.
    let mut third = common::connect(port);
    third
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut out = Vec::new();
    let _ = third.read_to_end(&mut out);
    assert!(out.is_empty(), "over-limit connection got data: {out:?}");
    let logged = wait_for(Duration::from_secs(10), || {
        flint
            .log()
            .contains("Too many incoming connections")
            .then_some(())
    });
    assert!(logged.is_some(), "the refusal is logged as systemd logs it");
    // Releasing one slot makes the socket serve again.
    drop(held.pop());
    let served = wait_for(Duration::from_secs(15), || {
        let mut s = common::connect(port);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).ok().map(|()| buf)
    });
    assert_eq!(served.as_ref().map(|b| &b[..]), Some(&b"hi\n"[..]));
}

#[test]
fn a_broken_unit_does_not_stop_the_others() {
    let tree = Tree::new();
    let port = free_port();
    let used = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = used.local_addr().unwrap().port();
    // A key flint does not know is logged as it loads the unit (as
    // systemd logs it), and changes nothing else.
    tree.write(
        "good.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nNoSuchKey=1\n"),
    );
    tree.write(
        "good@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo ok\nNoSuchKey=2\n",
    );
    tree.write(
        "busy.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{busy}\nAccept=yes\n"),
    );
    tree.write(
        "busy@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo no\n",
    );
    tree.write("bad.socket", "[Socket\nListenStream=1\n");
    let flint = Flint::run(&tree, &["bad.socket", "busy.socket", "good.socket"]);
    assert_eq!(exchange(port, b""), "ok\n");
    assert_eq!(exchange(port, b""), "ok\n");
    let log = flint.log();
    // The template's, once, at its first instance.
    assert_eq!(
        log.matches("good@.service:4: Unknown key 'NoSuchKey' in section [Service], ignoring.")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("bad.socket:1:"),
        "the broken header is reported with file:line:\n{log}"
    );
    assert!(
        log.contains(&format!("127.0.0.1:{busy}")),
        "the bind failure names the address:\n{log}"
    );
    assert!(
        log.contains("good.socket:4: Unknown key 'NoSuchKey' in section [Socket], ignoring."),
        "{log}"
    );
}

#[test]
fn a_listed_socket_that_cannot_listen_is_reported_once() {
    // As journald's Sockets= lists its audit socket, which a container may
    // not bind: the service's other sockets listen, and the failing one is
    // tried when the service starts (Sockets= implies Wants=, as systemd),
    // and reported once, not again as each of its siblings opens.
    let tree = Tree::new();
    let (a, b) = (free_port(), free_port());
    let used = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = used.local_addr().unwrap().port();
    for (name, port) in [("a", a), ("b", b), ("busy", busy)] {
        tree.write(
            &format!("{name}.socket"),
            &format!("[Socket]\nListenStream=127.0.0.1:{port}\nService=svc.service\n"),
        );
    }
    tree.write(
        "svc.service",
        "[Service]\nSockets=a.socket b.socket busy.socket\nExecStart=/bin/sleep 30\n",
    );
    let flint = Flint::run(&tree, &["a.socket", "b.socket"]);
    let log = flint.log();
    assert!(
        log.contains(&format!("listening on 127.0.0.1:{b}")),
        "{log}"
    );
    assert!(
        !log.contains("busy.socket"),
        "not before the service starts: {log}"
    );
    let _first = std::net::TcpStream::connect(("127.0.0.1", a)).unwrap();
    let tried = wait_for(Duration::from_secs(10), || {
        flint.log().contains("svc.service: started").then_some(())
    });
    assert!(tried.is_some(), "{}", flint.log());
    let log = flint.log();
    assert_eq!(
        log.matches(&format!(
            "busy.socket: failed to listen on 127.0.0.1:{busy}"
        ))
        .count(),
        1,
        "{log}"
    );
}

#[test]
fn sigterm_stops_services_removes_nodes_and_exits_zero() {
    let tree = Tree::new();
    let sock = tree.path().join("s.sock");
    tree.write(
        "s.socket",
        &format!(
            "[Socket]\nListenStream={}\nRemoveOnStop=yes\n",
            sock.display()
        ),
    );
    tree.write("s.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let mut flint = Flint::run(&tree, &["s.socket"]);
    let c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    wait_for(Duration::from_secs(10), || {
        flint.log().contains("started /bin/sleep").then_some(())
    })
    .expect("service started");
    let status = flint.stop().expect("flint exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(!sock.exists(), "RemoveOnStop= removed the node");
    drop(c);
    assert!(
        flint.log().contains("exited") || flint.log().contains("signal"),
        "the service was stopped"
    );
}

/// SIGTERM while `Accept=yes` instances are being spawned: an instance
/// stopped before its spawn came back is forgotten at once, and the exits
/// of the other instances must still be collected, so that flint ends.
/// Each round stops flint in the middle of a stream of connections whose
/// handlers exit at once.
#[test]
fn sigterm_amid_accept_yes_spawns_ends_flint() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    for round in 0..12 {
        let tree = Tree::new();
        let port = free_port();
        tree.write(
            "e.socket",
            &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
        );
        tree.write(
            "e@.service",
            "[Service]\nExecStart=/bin/echo hi\nStandardInput=socket\n",
        );
        let mut flint = Flint::run(&tree, &["e.socket"]);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    // Bounded: at most 2,000 connections each.
                    for _ in 0..2000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                            let mut buf = [0u8; 16];
                            let _ = c.read(&mut buf);
                        }
                    }
                })
            })
            .collect();
        wait_for(Duration::from_secs(10), || {
            (flint.log().matches("started /bin/echo").count() >= 20).then_some(())
        })
        .expect("instances started");
        let status = flint.stop();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        let status = status.unwrap_or_else(|| {
            let _ = flint.child.kill();
            panic!(
                "round {round}: flint did not end after SIGTERM; log:\n{}",
                flint.log()
            )
        });
        assert!(status.success(), "round {round}: exit status {status:?}");
    }
}

#[test]
fn socket_exec_commands_run_around_the_listeners() {
    let tree = Tree::new();
    let log = tree.path().join("log");
    let sock = tree.path().join("x.sock");
    let l = log.display();
    let s = sock.display();
    // Pre runs before the node exists, Post after; StopPre while it is
    // still there, StopPost after it is gone (RemoveOnStop=yes).
    tree.write(
        "x.socket",
        &format!(
            "[Socket]\nListenStream={s}\nRemoveOnStop=yes\nExecStartPre=/bin/sh -c 'test -e {s} && echo pre-exists >> {l} || echo pre >> {l}'\nExecStartPost=/bin/sh -c 'test -S {s} && echo post >> {l}'\nExecStopPre=/bin/sh -c 'test -S {s} && echo stoppre >> {l}'\nExecStopPost=/bin/sh -c 'test -e {s} || echo stoppost >> {l}'\n"
        ),
    );
    tree.write("x.service", "[Service]\nExecStart=/bin/true\n");
    let mut flint = Flint::run(&tree, &["x.socket"]);
    assert!(flint.stop().is_some_and(|st| st.success()));
    let got = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        ["pre", "post", "stoppre", "stoppost"]
    );
}

/// A shell command that waits (at most 20 s) until `go` exists.
fn wait_for_file(go: &std::path::Path) -> String {
    format!(
        "/bin/sh -c 'i=0; while [ ! -e {} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done'",
        go.display()
    )
}

#[test]
fn a_socket_command_whose_start_waits_holds_up_no_other_socket() {
    // `TTYPath=` names a FIFO: the command's open of its terminal, in the
    // child before exec, waits for a reader (as an exec from a stuck network
    // file system would). The other socket is served meanwhile.
    let tree = Tree::new();
    let tty = common::StuckTty::new(&tree);
    let (stuck, port) = (free_port(), free_port());
    tree.write(
        "stuck.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{stuck}\n{}ExecStartPre=/bin/true\n",
            tty.settings()
        ),
    );
    tree.write("stuck.service", "[Service]\nExecStart=/bin/true\n");
    common::hello_socket(&tree, port);
    let flint = Flint::run_until(
        &tree,
        &["hello.socket", "stuck.socket"],
        "hello.socket: listening",
    );
    for _ in 0..3 {
        assert_eq!(exchange(port, b""), "hello\n", "{}", flint.log());
    }
    // A reader lets the open through; a FIFO is no terminal, so the command
    // fails, and the socket with it.
    let _reader = tty.release();
    assert!(
        flint.wait_log("stuck.socket: ExecStartPre=/bin/true"),
        "{}",
        flint.log()
    );
    assert_eq!(exchange(port, b""), "hello\n", "{}", flint.log());
}

#[test]
fn a_slow_socket_start_command_holds_up_only_its_own_socket() {
    // slow.socket's ExecStartPre= waits for a file and slower.socket's
    // ExecStartPost= for another; meanwhile fast.socket serves, and each
    // slow socket listens (then answers) only once its command is done.
    let tree = Tree::new();
    let (fast, slow, slower) = (free_port(), free_port(), free_port());
    let (go1, go2) = (tree.path().join("go1"), tree.path().join("go2"));
    for (name, port, key, go) in [
        ("fast", fast, "", None),
        ("slow", slow, "ExecStartPre", Some(&go1)),
        ("slower", slower, "ExecStartPost", Some(&go2)),
    ] {
        let hook = go.map_or(String::new(), |g| format!("{key}={}\n", wait_for_file(g)));
        tree.write(
            &format!("{name}.socket"),
            &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n{hook}"),
        );
        tree.write(
            &format!("{name}@.service"),
            &format!("[Service]\nStandardInput=socket\nExecStart=/bin/echo {name}\n"),
        );
    }
    let control = tree.path().join("control");
    let mut flint = Flint::run_until(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "slow.socket",
            "fast.socket",
            "slower.socket",
        ],
        "fast.socket: listening",
    );
    for _ in 0..3 {
        assert_eq!(exchange(fast, b""), "fast\n");
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", slow)).is_err(),
        "slow.socket does not listen before its ExecStartPre= is done"
    );
    assert!(
        !flint.log().contains("unit(s) running"),
        "flint is not ready while a socket starts"
    );
    let (code, text) = common::ctl(&control, &["status", "slow.socket"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("activating (start-pre)"), "{text}");
    std::fs::write(&go1, "").unwrap();
    assert_eq!(exchange(slow, b""), "slow\n");
    assert!(!flint.log().contains("unit(s) running"));
    let (code, text) = common::ctl(&control, &["status", "slower.socket"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("activating (start-post)"), "{text}");
    std::fs::write(&go2, "").unwrap();
    assert_eq!(exchange(slower, b""), "slower\n");
    assert!(flint.wait_log("unit(s) running"));
    assert!(flint.stop().is_some_and(|st| st.success()));
}

#[test]
fn a_service_starts_after_its_socket_is_listening() {
    // x.service is started by the command line, not by a connection; it
    // waits for x.socket's ExecStartPre= and then gets its listener.
    let tree = Tree::new();
    let port = free_port();
    let go = tree.path().join("go");
    let out = tree.path().join("out");
    tree.write(
        "x.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nExecStartPre={}\n",
            wait_for_file(&go)
        ),
    );
    tree.write(
        "x.service",
        &format!(
            "[Service]\nExecStart=/bin/sh -c 'echo \"fds=$LISTEN_FDS\" > {}; exec sleep 30'\n",
            out.display()
        ),
    );
    let mut flint = Flint::run_until(
        &tree,
        &["x.socket", "x.service"],
        "x.service: job start queued",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!out.exists(), "x.service waits for its socket");
    std::fs::write(&go, "").unwrap();
    let got = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.ends_with('\n'))
    });
    assert_eq!(got.as_deref(), Some("fds=1\n"));
    assert!(flint.stop().is_some_and(|st| st.success()));
}

#[test]
fn stopping_a_socket_runs_its_stop_commands() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let log = tree.path().join("log");
    let port = free_port();
    let l = log.display();
    tree.write(
        "x.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nExecStopPre=/bin/sh -c 'echo stoppre >> {l}'\nExecStopPost=/bin/sh -c 'echo stoppost >> {l}'\n"
        ),
    );
    tree.write(
        "x@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo x\n",
    );
    let mut flint = Flint::run(&tree, &["--control", control.to_str().unwrap(), "x.socket"]);
    assert_eq!(exchange(port, b""), "x\n");
    let (code, _) = common::ctl(&control, &["stop", "x.socket"]);
    assert_eq!(code, 0);
    let got = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.lines().count() >= 2)
    });
    assert_eq!(got.as_deref(), Some("stoppre\nstoppost\n"));
    // The listener's fd is dropped by the loop shortly after ExecStopPost=
    // is started, so its closing is waited for.
    assert!(
        wait_for(Duration::from_secs(5), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        })
        .is_some(),
        "the stopped socket is closed"
    );
    // A stopped socket runs no stop commands again when flint exits.
    assert!(flint.stop().is_some_and(|st| st.success()));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "stoppre\nstoppost\n"
    );
}

#[test]
fn stopping_a_socket_in_its_exec_start_post_ends_the_command() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let port = free_port();
    tree.write(
        "x.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nExecStartPost=/bin/sleep 60\n"
        ),
    );
    tree.write(
        "x@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo x\n",
    );
    let flint = Flint::run_until(
        &tree,
        &["--control", control.to_str().unwrap(), "x.socket"],
        "x.socket: listening",
    );
    let (code, text) = common::ctl(&control, &["stop", "x.socket"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        flint.wait_log("ExecStartPost=/bin/sleep failed"),
        "{}",
        flint.log()
    );
    assert!(
        wait_for(Duration::from_secs(5), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        })
        .is_some(),
        "the socket closed"
    );
}

#[test]
fn without_units_flint_runs_what_the_tree_enables_or_every_socket() {
    // A tree with sockets.target.wants/: only the enabled socket listens.
    let tree = Tree::new();
    let (p1, p2) = (free_port(), free_port());
    tree.write(
        "on.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{p1}\nAccept=yes\n"),
    );
    tree.write(
        "on@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo on\n",
    );
    tree.write(
        "off.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{p2}\nAccept=yes\n"),
    );
    tree.write(
        "off@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo off\n",
    );
    tree.write("sockets.target", "[Unit]\nDescription=Sockets\n");
    std::fs::create_dir(tree.path().join("sockets.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "../on.socket",
        tree.path().join("sockets.target.wants/on.socket"),
    )
    .unwrap();
    let flint = Flint::run(&tree, &[]);
    assert_eq!(exchange(p1, b""), "on\n");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", p2)).is_err(),
        "off.socket is not enabled"
    );
    drop(flint);
    // Without .wants/ links: every socket unit of the tree.
    std::fs::remove_dir_all(tree.path().join("sockets.target.wants")).unwrap();
    let _flint = Flint::run(&tree, &[]);
    assert_eq!(exchange(p1, b""), "on\n");
    assert_eq!(exchange(p2, b""), "off\n");
}

#[test]
fn vsock_listener_is_handed_to_the_service() {
    // AF_VSOCK exists on VMs (and with vsock_loopback); without it, say so.
    // SAFETY: socket(2) with integer arguments; the fd is closed at once.
    let fd = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        eprintln!("SKIP: this kernel has no AF_VSOCK");
        return;
    }
    // SAFETY: closing the fd socket(2) just returned.
    unsafe { libc::close(fd) };
    let tree = Tree::new();
    let probe = install_probe(&tree);
    let report = tree.path().join("report.json");
    let port = 40_000 + u32::from(free_port() % 20_000);
    tree.write(
        "v.socket",
        &format!("[Socket]\nListenStream=vsock::{port}\nFileDescriptorName=vm\n"),
    );
    // Started at once (Sockets=), the service reports the fd it got.
    tree.write(
        "v.service",
        &format!(
            "[Service]\nSockets=v.socket\nType=oneshot\nExecStart=/usr/bin/python3 {} {}\n",
            probe.display(),
            report.display()
        ),
    );
    let _flint = Flint::run(&tree, &["v.service"]);
    let text = wait_for(Duration::from_secs(15), || {
        std::fs::read_to_string(&report)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
    .expect("the service reported");
    let r: serde_json::Value = serde_json::from_str(text.trim()).expect("report");
    assert_eq!(r["env"]["LISTEN_FDS"], "1");
    assert_eq!(r["env"]["LISTEN_FDNAMES"], "vm");
    let fd3 = &r["fds"]["3"];
    assert_eq!(fd3["family"], libc::AF_VSOCK.to_string(), "{fd3}");
    assert_eq!(fd3["listening"], true, "{fd3}");
    assert!(
        fd3["local"]
            .as_str()
            .is_some_and(|l| l.contains(&port.to_string())),
        "{fd3}"
    );
}

#[test]
fn a_socket_whose_condition_fails_does_not_listen() {
    // ssh.socket's `ConditionPathExists=!/etc/ssh/sshd_not_to_be_run` kind of
    // switch: the socket stays inactive, the others listen, and an
    // assertion that fails fails only its socket.
    let tree = Tree::new();
    let (off, on, asserted) = (free_port(), free_port(), free_port());
    let marker = tree.write("not_to_be_run", "");
    tree.write(
        "off.socket",
        &format!(
            "[Unit]\nConditionPathExists=!{}\n[Socket]\nListenStream=127.0.0.1:{off}\nAccept=yes\n",
            marker.display()
        ),
    );
    tree.write(
        "asserted.socket",
        &format!(
            "[Unit]\nAssertPathExists=/nonexistent/flint-test\n[Socket]\nListenStream=127.0.0.1:{asserted}\nAccept=yes\n"
        ),
    );
    common::hello_socket(&tree, on);
    for name in ["off@.service", "asserted@.service"] {
        tree.write(
            name,
            "[Service]\nStandardInput=socket\nExecStart=/bin/echo hello\n",
        );
    }
    let flint = Flint::run_until(
        &tree,
        &["off.socket", "asserted.socket", "hello.socket"],
        "hello.socket: listening",
    );
    assert_eq!(exchange(on, b""), "hello\n", "{}", flint.log());
    let log = flint.log();
    assert!(
        log.contains("off.socket: condition check resulted in it being skipped"),
        "{log}"
    );
    assert!(log.contains("asserted.socket: assertion failed"), "{log}");
    for port in [off, asserted] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} must not listen\n{log}"
        );
    }
}

#[test]
fn while_flint_stops_idle_sockets_refuse_connections_at_once() {
    // As systemd's sockets do once their stop is pending: a connection to a
    // socket whose service is not running is accepted and closed at once
    // while the other services are still stopping, instead of waiting in
    // the backlog until flint exits, and it starts nothing.
    let tree = Tree::new();
    let sock = tree.path().join("idle.sock");
    let port = free_port();
    tree.write(
        "slow.service",
        "[Service]\nExecStart=/bin/sleep 1000\nExecStop=/bin/sleep 6\n",
    );
    tree.write(
        "idle.socket",
        &format!("[Socket]\nListenStream={}\n", sock.display()),
    );
    tree.write("idle.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "each.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    );
    tree.write(
        "each@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/cat\n",
    );
    let mut flint = Flint::run(&tree, &["slow.service", "idle.socket", "each.socket"]);
    assert!(flint.wait_log("slow.service: started"), "{}", flint.log());
    // SAFETY: kill() with a pid and a signal number.
    unsafe {
        libc::kill(flint.child.id().cast_signed(), libc::SIGTERM);
    }
    assert!(flint.wait_log("flint: stopping"), "{}", flint.log());
    // Refused: end of file (or a reset) at once. Left in the backlog, the
    // read would time out, since slow.service keeps flint up for 6 s.
    let refused = |c: &mut dyn Read, what: &str| {
        let r = c.read(&mut [0u8; 16]);
        assert!(
            matches!(r, Ok(0))
                || r.as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "the {what} connection is closed, not left waiting: {r:?}"
        );
    };
    let mut unix = std::os::unix::net::UnixStream::connect(&sock).expect("the listener is open");
    unix.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    refused(&mut unix, "unix");
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the listener is open");
    tcp.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    refused(&mut tcp, "Accept=yes");
    assert!(
        flint.child.try_wait().unwrap().is_none(),
        "flint was still stopping slow.service meanwhile"
    );
    let status = flint.stop().expect("flint exits");
    assert!(status.success(), "{status:?}");
    let log = flint.log();
    assert!(
        !log.contains("idle.service: started") && !log.contains("each@"),
        "nothing was started during the shutdown:\n{log}"
    );
}

/// A service of the system flint starts from `PATH` and the locale, not
/// from flint's own environment; the environment generators add theirs
/// (each seeing the block), and run again at a switch (SIGHUP), as at
/// systemd's daemon-reload.
#[test]
fn environment_generators_feed_services_and_run_again_at_a_switch() {
    let tree = Tree::new();
    let port = free_port();
    let generators = tempfile::tempdir().unwrap();
    let generator = generators.path().join("10-test");
    let write_generator = |value: &str| {
        std::fs::write(
            &generator,
            format!("#!/bin/sh\necho GEN={value}\necho \"SAW=$PATH|$LANG|$FLINT_OWN\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&generator, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    write_generator("one");
    tree.write(
        "env.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    );
    tree.write(
        "env@.service",
        "[Service]\nStandardInput=socket\nExecStart=/usr/bin/env\n",
    );
    let flint = Flint::run_env(
        &tree,
        &["env.socket"],
        &[
            ("SYSTEMD_ENVIRONMENT_GENERATOR_PATH", generators.path()),
            ("FLINT_OWN", std::path::Path::new("flints-own")),
        ],
    );
    let env = exchange(port, b"");
    let lines: Vec<&str> = env.lines().collect();
    assert!(lines.contains(&"GEN=one"), "{env}\n{}", flint.log());
    let lang = lines
        .iter()
        .find_map(|l| l.strip_prefix("LANG="))
        .unwrap_or_else(|| panic!("no LANG: {env}"));
    assert!(
        lines.contains(
            &format!("SAW=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin|{lang}|").as_str()
        ),
        "the generator saw the block, not flint's environment: {env}"
    );
    assert!(
        !env.contains("flints-own") && !env.contains("FLINT_LOG"),
        "flint's own environment stays with it: {env}"
    );
    write_generator("two");
    // SAFETY: kill(2) on flint's pid.
    unsafe {
        libc::kill(flint.child.id().cast_signed(), libc::SIGHUP);
    }
    let again = wait_for(Duration::from_secs(15), || {
        let env = exchange(port, b"");
        env.lines().any(|l| l == "GEN=two").then_some(env)
    });
    assert!(
        again.is_some(),
        "no GEN=two after SIGHUP; log:\n{}",
        flint.log()
    );
}

#[test]
fn notify_sockets_left_by_killed_flints_are_removed_and_live_ones_kept() {
    // Each flint binds flint/notify.PID and removes it when it stops; one
    // killed leaves the node behind. The next flint removes those that
    // refuse a connection and keeps those another flint still holds (a
    // flint in another PID namespace may have any pid).
    let tree = Tree::new();
    let runtime = tree.path().join("runtime");
    let dir = runtime.join("flint");
    std::fs::create_dir_all(&dir).unwrap();
    let dead = dir.join("notify.999999");
    drop(std::os::unix::net::UnixDatagram::bind(&dead).unwrap());
    // A dead one made just now may be a flint between bind and use: kept.
    let fresh = dir.join("notify.999998");
    drop(std::os::unix::net::UnixDatagram::bind(&fresh).unwrap());
    let live_path = dir.join("notify.1");
    let live = std::os::unix::net::UnixDatagram::bind(&live_path).unwrap();
    let other = dir.join("notify.not-a-pid");
    std::fs::write(&other, "").unwrap();
    let not_socket = dir.join("notify.999997");
    std::fs::write(&not_socket, "").unwrap();
    // Those left by killed flints are older; the fresh one stays fresh
    // however long flint takes to start.
    for (p, when) in [
        (&dead, "1 minute ago"),
        (&live_path, "1 minute ago"),
        (&not_socket, "1 minute ago"),
        (&fresh, "1 minute"),
    ] {
        let status = std::process::Command::new("touch")
            .args(["-h", "-d", when])
            .arg(p)
            .status()
            .unwrap();
        assert!(status.success());
    }
    tree.write("keep.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let unit_dir = tree.path().to_path_buf();
    let control = dir.join("control");
    let mut flint = Flint::run_args(
        &[
            "run".as_ref(),
            "--user".as_ref(),
            "--unit-dir".as_ref(),
            unit_dir.as_os_str(),
            "--control".as_ref(),
            control.as_os_str(),
            "keep.service".as_ref(),
        ],
        &[("XDG_RUNTIME_DIR", &runtime)],
    );
    let own = dir.join(format!("notify.{}", flint.child.id()));
    assert!(own.exists(), "{}", flint.log());
    assert!(!dead.exists(), "the dead socket is removed");
    assert!(live_path.exists(), "the live socket stays");
    assert!(other.exists(), "what is not a notify socket stays");
    assert!(not_socket.exists(), "a file that is not a socket stays");
    assert!(fresh.exists(), "a socket made in the last seconds stays");
    flint.stop();
    assert!(!own.exists(), "its own goes when it stops");
    drop(live);
}

#[test]
fn dev_log_takes_the_services_syslog_messages_under_their_units() {
    if !common::require("logger", "bsdutils: a real syslog(3) client") {
        return;
    }
    let tree = Tree::new();
    let log = tree.path().join("dev-log");
    let l = log.display();
    tree.write(
        "talk.service",
        &format!(
            "[Service]\nExecStart=/bin/sh -c '\
             {{ echo hello via syslog; sleep 30; }} | logger -u {l} -t talker & \
             {{ echo in 5424; sleep 30; }} | logger -u {l} --rfc5424 -t five -p daemon.err & \
             exec sleep 1000'\n"
        ),
    );
    let control = tree.path().join("control");
    let dev_log = format!("--dev-log={l}");
    let run = || {
        Flint::run_args(
            &[
                "run".as_ref(),
                dev_log.as_ref(),
                "--control".as_ref(),
                control.as_os_str(),
                "--unit-dir".as_ref(),
                tree.path().as_os_str(),
                "talk.service".as_ref(),
            ],
            &[],
        )
    };
    let flint = run();
    // Under the unit, with the sender's pid (logger, a child of the shell).
    // Each logger reads its message from a pipe held open for a while, so
    // it is still alive when flint asks whose process sent it: as
    // journald, flint cannot place a message whose sender has already
    // exited.
    assert!(
        flint.wait_log("]: talker: hello via syslog"),
        "{}",
        flint.log()
    );
    assert!(flint.wait_log("]: five: in 5424"), "{}", flint.log());
    let line = flint
        .log()
        .lines()
        .find(|l| l.contains("talker: hello via syslog"))
        .unwrap()
        .to_string();
    assert!(line.contains("talk.service["), "{line}");
    // From a process of no unit: flint's own log, not the unit's.
    let outsider = std::os::unix::net::UnixDatagram::unbound().unwrap();
    outsider
        .send_to(b"<13>Dec  5 14:21:43 outsider: not a unit", &log)
        .unwrap();
    assert!(
        flint.wait_log(&format!(
            "syslog[{}]: outsider: not a unit",
            std::process::id()
        )),
        "{}",
        flint.log()
    );
    let (code, out) = common::ctl(&control, &["logs", "talk.service"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("talker: hello via syslog"), "{out}");
    assert!(!out.contains("outsider"), "{out}");
    // A message of several lines is a line each; a line cannot pass for
    // another unit's.
    let me = std::process::id();
    outsider
        .send_to(b"<13>multi: first\nsecond talk.service[1]: forged", &log)
        .unwrap();
    assert!(
        flint.wait_log(&format!(
            "syslog[{me}]: multi: second talk.service[1]: forged"
        )),
        "{}",
        flint.log()
    );
    assert!(flint.log().contains(&format!("syslog[{me}]: multi: first")));
    // A flood is cut at journald's rate limit (10,000 in 30 s), said once.
    for i in 0..10_100 {
        outsider
            .send_to(format!("<13>flood: {i}").as_bytes(), &log)
            .unwrap();
    }
    assert!(
        flint.wait_log("syslog of processes of no unit: more than 10000 lines in 30s"),
        "{}",
        &flint.log()[flint.log().len().saturating_sub(2000)..]
    );
    // Once all is read: 10,000 lines in the interval, 3 of them before the
    // flood.
    let flooded = || flint.log().matches(": flood: ").count();
    let mut last = usize::MAX;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = flooded();
        if now == last {
            break;
        }
        last = now;
    }
    assert_eq!(flooded(), 9_997);
    drop(flint);
    assert!(!log.exists(), "the socket goes when flint stops");

    // A socket another logger serves is left alone.
    let held = std::os::unix::net::UnixDatagram::bind(&log).unwrap();
    let flint = run();
    assert!(
        flint.wait_log("another logger serves it"),
        "{}",
        flint.log()
    );
    drop(flint);
    assert!(log.exists(), "not removed");
    drop(held);
}

/// What a service prints: a `<N>` prefix is the line's severity (as
/// systemd's `SyslogLevelPrefix=`, on by default), bytes that are not
/// UTF-8 are replaced and do not end the output, and a line longer than
/// journald's 48 KiB is logged in pieces.
#[test]
fn service_output_keeps_flowing_with_levels_bad_bytes_and_long_lines() {
    let tree = Tree::new();
    tree.write(
        "talk.service",
        "[Service]\nExecStart=/bin/sh -c '\
         printf \"<4>careful now\\\\n<12>no level\\\\nbad \\\\377 byte\\\\n\"; \
         head -c 100000 /dev/zero | tr \"\\\\0\" x; \
         printf \"\\\\nafter all\\\\n\"; exec sleep 1000'\n",
    );
    tree.write(
        "ends.service",
        "[Service]\nExecStart=/bin/sh -c 'printf \"crlf\\\\r\\\\nnul\\\\0split \\\\n\\\\n<5>\\\\n\"; exec sleep 1000'\n",
    );
    tree.write(
        "raw.service",
        "[Service]\nSyslogLevelPrefix=no\nExecStart=/bin/sh -c 'echo \"<3>kept\"; exec sleep 1000'\n",
    );
    tree.write(
        "chatty.service",
        "[Service]\nExecStart=/bin/sh -c 'seq 1 10100; exec sleep 1000'\n",
    );
    let flint = Flint::run(
        &tree,
        &[
            "talk.service",
            "raw.service",
            "ends.service",
            "chatty.service",
        ],
    );
    assert!(flint.wait_log("]: after all"), "{}", flint.log());
    assert!(flint.wait_log("]: <3>kept"), "{}", flint.log());
    let log = flint.log();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} missing:\n{log}"))
            .to_string()
    };
    let careful = line("]: careful now");
    assert!(careful.contains(" WARN "), "{careful}");
    assert!(!careful.contains("<4>"), "{careful}");
    assert!(line("]: <12>no level").contains(" INFO "));
    assert!(line("]: bad \u{fffd} byte").contains(" INFO "));
    // As journald's stdout stream: trailing whitespace (a CR) goes, a NUL
    // ends a line, and empty lines (a bare `<5>` too) are not logged.
    assert!(flint.wait_log("]: split"), "{log}");
    let log = flint.log();
    let ends: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ends.service["))
        .filter_map(|l| l.split_once("]: ").map(|(_, t)| t))
        .collect();
    assert_eq!(ends, ["crlf", "nul", "split"], "{log}");
    // journald's rate limit: 10,000 lines in 30 s, then a warning.
    assert!(
        flint.wait_log("more than 10000 lines in 30s; dropping"),
        "{}",
        &flint.log()[flint.log().len().saturating_sub(2000)..]
    );
    let chatty = || {
        flint
            .log()
            .lines()
            .filter(|l| l.contains("chatty.service[") && !l.contains("WARN"))
            .count()
    };
    let mut last = usize::MAX;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        if chatty() == last {
            break;
        }
        last = chatty();
    }
    assert_eq!(chatty(), 10_000);
    // 100,000 x: pieces of 49,152 + 49,152 + 1,696 (each line in flint's
    // log cut at its own 4 KiB limit).
    let pieces: Vec<usize> = log
        .lines()
        .filter_map(|l| l.split_once("]: x").map(|(_, rest)| rest.len() + 1))
        .collect();
    assert_eq!(pieces, [4_096, 4_096, 1_696], "{pieces:?}");
}

/// A syslog daemon that binds the `--dev-log` node itself in flint's place
/// (Debian's rsyslog where no `/run/systemd/system` tells it to take the
/// socket flint passes) removes it when it stops: flint listens there
/// again, so the services after it still reach a syslog socket (haproxy's
/// `BindReadOnlyPaths=/dev/log` failed with 226 before).
#[test]
fn dev_log_is_there_again_after_a_syslog_daemon_that_took_it_over_stops() {
    let tree = Tree::new();
    let log = tree.path().join("dev-log");
    tree.write(
        "takeover.py",
        &format!(
            "import os, signal, socket, sys, time\n\
             p = \"{p}\"\n\
             os.unlink(p)\n\
             s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             s.bind(p)\n\
             signal.signal(signal.SIGTERM, lambda *a: (os.unlink(p), sys.exit(0)))\n\
             time.sleep(1000)\n",
            p = log.display()
        ),
    );
    tree.write(
        "rsyslog.service",
        &format!(
            "[Service]\nExecStart=/usr/bin/python3 {}\n",
            tree.path().join("takeover.py").display()
        ),
    );
    let control = tree.path().join("control");
    let dev_log = format!("--dev-log={}", log.display());
    let flint = Flint::run_args(
        &[
            "run".as_ref(),
            dev_log.as_ref(),
            "--control".as_ref(),
            control.as_os_str(),
            "--unit-dir".as_ref(),
            tree.path().as_os_str(),
            "rsyslog.service".as_ref(),
        ],
        &[],
    );
    let first = std::fs::metadata(&log)
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    // Taken over: another node at the path.
    assert!(
        wait_for(Duration::from_secs(10), || {
            std::fs::metadata(&log)
                .ok()
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                .filter(|i| Some(*i) != first)
        })
        .is_some(),
        "{}",
        flint.log()
    );
    assert_eq!(common::ctl(&control, &["stop", "rsyslog.service"]).0, 0);
    assert!(flint.wait_log("listening on it again"), "{}", flint.log());
    let outsider = std::os::unix::net::UnixDatagram::unbound().unwrap();
    outsider
        .send_to(b"<13>Dec  5 14:21:43 outsider: after rsyslog", &log)
        .unwrap();
    assert!(flint.wait_log("outsider: after rsyslog"), "{}", flint.log());
}
