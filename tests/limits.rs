//! The protective limits of socket units under `flint run`: trigger limit,
//! poll limit, per-source connection limit and `FlushPending=`, each with
//! systemd's effect.

mod common;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::Duration;

use common::{Flint, Tree, free_port, wait_for};

fn served(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out == "ok\n"
}

#[test]
fn trigger_limit_fails_the_socket_after_the_burst() {
    let tree = Tree::new();
    let port = free_port();
    tree.write("t.socket", &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nTriggerLimitIntervalSec=1min\nTriggerLimitBurst=3\n"));
    tree.write(
        "t@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo ok\n",
    );
    let flint = Flint::run(&tree, &["t.socket"]);
    for i in 0..3 {
        assert!(served(port), "connection {i} within the burst is served");
    }
    // Twenty at once past the burst: the socket fails at the first, and
    // says so once, not again for each connection accepted before it
    // failed.
    let late: Vec<TcpStream> = (0..20)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(!served(port), "activations past the burst are refused");
    wait_for(Duration::from_secs(10), || {
        flint
            .log()
            .contains("Trigger limit hit, refusing further activation.")
            .then_some(())
    })
    .expect("logged as systemd does");
    drop(late);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        flint.log().matches("Trigger limit hit").count(),
        1,
        "{}",
        flint.log()
    );
    let refused = wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    });
    assert!(refused.is_some(), "the failed socket no longer listens");
}

#[test]
fn poll_limit_pauses_a_flooded_listener_without_failing_it() {
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "p.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nTriggerLimitIntervalSec=0\nPollLimitIntervalSec=3s\nPollLimitBurst=2\n"),
    );
    tree.write(
        "p@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo ok\n",
    );
    let flint = Flint::run(&tree, &["p.socket"]);
    // Six connections at once: two are taken, the rest wait in the backlog.
    let conns: Vec<TcpStream> = (0..6)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let instances = flint
        .log()
        .lines()
        .filter(|l| l.contains("p@") && l.contains("started"))
        .count();
    assert!(
        instances <= 2,
        "at most PollLimitBurst= dispatches within the interval (saw {instances})"
    );
    // After the pause every queued connection is served; the socket is healthy.
    for mut c in conns {
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        assert_eq!(out, "ok\n");
    }
    assert!(!flint.log().contains("Trigger limit hit"));
}

#[test]
fn max_connections_per_source_limits_one_peer_address_only() {
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "s.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnectionsPerSource=1\n"
        ),
    );
    tree.write(
        "s@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/sh -c 'echo ok; read x'\n",
    );
    let flint = Flint::run(&tree, &["s.socket"]);
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 3];
    first.read_exact(&mut buf).unwrap();
    // A second connection from the same address is closed at once.
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let _ = second.read_to_end(&mut out);
    assert!(
        out.is_empty(),
        "second connection from 127.0.0.1 was refused"
    );
    // Another source address still gets in.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 0).into())
        .unwrap();
    sock.connect(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into())
        .unwrap();
    let mut other: TcpStream = sock.into();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    other.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ok\n");
    assert!(flint.wait_log("from source 127.0.0.1"));
}

#[test]
fn flush_pending_drops_what_queued_while_the_service_ran() {
    for (flush, kept) in [("yes", false), ("no", true)] {
        let tree = Tree::new();
        let port = free_port();
        let log = tree.path().join("log");
        tree.write(
            "f.socket",
            &format!("[Socket]\nListenStream=127.0.0.1:{port}\nFlushPending={flush}\n"),
        );
        // The service notes each start and exits without accepting.
        tree.write(
            "f.service",
            &format!(
                "[Service]\nExecStart=/bin/sh -c 'echo start >> {}; sleep 1'\n",
                log.display()
            ),
        );
        let _flint = Flint::run(&tree, &["f.socket"]);
        let _c1 = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let starts = || std::fs::read_to_string(&log).map_or(0, |s| s.lines().count());
        wait_for(Duration::from_secs(10), || (starts() >= 1).then_some(()))
            .expect("first activation");
        std::thread::sleep(Duration::from_millis(2500));
        // With FlushPending=no the queued connection triggers again at once.
        assert_eq!(
            starts() > 1,
            kept,
            "FlushPending={flush}: starts={}",
            starts()
        );
    }
}
