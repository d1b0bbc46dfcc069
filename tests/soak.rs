//! No loss, no leak: 10,000 `Accept=yes` connections against one socket,
//! mixing peers that are served, peers that connect and vanish at once
//! (some with a reset), and peers over `MaxConnections=`. Every peer under
//! the limit is served, every peer over it is closed without data, and
//! afterwards flint's open fd count and resident memory are back near where
//! they started.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Flint, Tree, free_port, wait_for};

/// Connections in total, and per round: held peers filling every slot,
/// peers over the limit, and quick peers (half served, half vanishing).
const TOTAL: usize = 10_000;
const MAX_CONNECTIONS: usize = 16;
const OVER: usize = 4;
const QUICK_THREADS: usize = 4;
const QUICK_PER_THREAD: usize = 20;
const PER_ROUND: usize = MAX_CONNECTIONS + OVER + QUICK_THREADS * QUICK_PER_THREAD;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A peer whose instance greeted it: it holds one of the socket's slots.
/// `None` when flint closed it at once (over the limit).
fn greeted(port: u16) -> Option<BufReader<TcpStream>> {
    let s = common::connect(port);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(_) if line == "hi\n" => Some(r),
        Ok(0) | Err(_) => None,
        Ok(_) => panic!("unexpected greeting {line:?}"),
    }
}

/// Finishes a greeted peer's exchange and checks the answer.
fn finish(mut r: BufReader<TcpStream>, tag: &str) {
    r.get_mut()
        .write_all(format!("{tag}\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, format!("ok {tag}\n"), "peer {tag} was not served");
}

/// Serves one peer, retrying (bounded) while stale instances still hold
/// the slots; returns how often it was turned away first.
fn served(port: u16, tag: &str) -> u32 {
    for tries in 0..500 {
        if let Some(r) = greeted(port) {
            finish(r, tag);
            return tries;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("peer {tag} was never served");
}

/// Connects and goes away at once; with `reset`, with an RST.
fn vanish(port: u16, reset: bool) {
    let s = common::connect(port);
    if reset {
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    }
    drop(s);
}

#[test]
fn ten_thousand_connections_leave_no_fd_and_no_memory_behind() {
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "soak.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections={MAX_CONNECTIONS}\nTriggerLimitIntervalSec=0\nPollLimitIntervalSec=0\n"
        ),
    );
    tree.write(
        "soak@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/sh -c 'echo hi; read x; echo \"ok $x\"'\n",
    );
    let flint = Flint::run(&tree, &["soak.socket"]);
    let pid = flint.child.id();
    let fds_start = flint.fd_count();
    let start = Instant::now();
    let rounds = TOTAL / PER_ROUND;
    let (mut refused_over, mut retried) = (0usize, 0u32);
    let mut rss_warm = 0;
    for round in 0..rounds {
        // Fill every slot with peers that wait for us.
        let mut held = Vec::new();
        for i in 0..MAX_CONNECTIONS {
            let mut tries = 0;
            let r = loop {
                if let Some(r) = greeted(port) {
                    break r;
                }
                tries += 1;
                assert!(tries < 500, "held peer {round}/{i} was never served");
                std::thread::sleep(Duration::from_millis(10));
            };
            held.push(r);
        }
        // Every slot is taken by a held peer: these are closed without data.
        for _ in 0..OVER {
            assert!(
                greeted(port).is_none(),
                "a peer over MaxConnections= was served"
            );
            refused_over += 1;
        }
        for (i, r) in held.into_iter().enumerate() {
            finish(r, &format!("h{round}-{i}"));
        }
        // Quick peers from several threads: served ones and vanishing ones.
        let retries: u32 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..QUICK_THREADS)
                .map(|t| {
                    s.spawn(move || {
                        let mut retries = 0;
                        for i in 0..QUICK_PER_THREAD {
                            if i % 2 == 0 {
                                retries += served(port, &format!("q{round}-{t}-{i}"));
                            } else {
                                vanish(port, i % 4 == 1);
                            }
                        }
                        retries
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        retried += retries;
        if round == 4 {
            rss_warm = rss_kib(pid);
        }
        if round % 10 == 9 {
            eprintln!(
                "soak: after {} connections RSS {} KiB",
                (round + 1) * PER_ROUND,
                rss_kib(pid)
            );
        }
        assert!(
            start.elapsed() < Duration::from_mins(4),
            "the soak is far slower than expected (round {round})"
        );
    }
    // Instances still running finish on their own; then flint is idle again.
    let fds_end = wait_for(Duration::from_secs(20), || {
        let n = flint.fd_count();
        (n <= fds_start).then_some(n)
    })
    .unwrap_or_else(|| flint.fd_count());
    let rss_end = rss_kib(pid);
    eprintln!(
        "soak: {} connections in {:?}; fds {fds_start} -> {fds_end}; RSS {rss_warm} KiB (after {} connections) -> {rss_end} KiB; {refused_over} refused over the limit, {retried} retries",
        rounds * PER_ROUND,
        start.elapsed(),
        5 * PER_ROUND
    );
    assert!(
        fds_end <= fds_start,
        "flint leaked fds: {fds_start} -> {fds_end}"
    );
    assert!(
        rss_end <= rss_warm + 1024,
        "flint's memory grew: {rss_warm} KiB -> {rss_end} KiB"
    );
    assert!(
        flint.log().contains("Too many incoming connections"),
        "flint logged the refusals"
    );
}
