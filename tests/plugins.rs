//! End-to-end tests of flint's WebAssembly policy plugins through `flint
//! run`, with real connections on loopback: the example plugins (allow list,
//! rate limiter, SNI router, environment tagger) decide about real peers;
//! hostile plugins written in WAT at test time (infinite loop, memory bomb,
//! trap, stack overflow, garbage results, wrong interface version) never take
//! flint down, get their socket's fail mode applied and logged with their
//! name, and never hold up another socket; `flint plugin check` reports on a
//! component; and the C example of `docs/plugins.md` builds into a component
//! flint accepts when clang and wit-bindgen are installed.

mod common;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Flint, Tree, exchange, flint_bin, free_port, require, wait_for};

/// An example plugin built by `core/build.rs`.
fn example(name: &str) -> PathBuf {
    let path = Path::new(env!("FLINT_PLUGIN_DIR")).join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: the example plugins were not built (is FLINT_SKIP_PLUGIN_BUILD set?)",
        path.display()
    );
    path
}

/// Starts flint on `tree` with a compiled-plugin cache inside the tree.
fn run(tree: &Tree, units: &[&str]) -> Flint {
    let cache = tree.path().join("cache");
    // flint's own debug log, without the compiler's.
    Flint::run_env(
        tree,
        units,
        &[
            ("XDG_CACHE_HOME", &cache),
            ("FLINT_LOG", Path::new("info,flint=debug")),
        ],
    )
}

/// An `Accept=yes` socket on `port` whose `NAME@.service` writes `reply`
/// to the connection, followed by `extra` (plugin sections).
fn echo_socket(tree: &Tree, name: &str, port: u16, reply: &str, extra: &str) {
    tree.write(
        &format!("{name}.socket"),
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n{extra}"),
    );
    tree.write(
        &format!("{name}@.service"),
        &format!("[Service]\nStandardInput=socket\nExecStart=/bin/echo {reply}\n"),
    );
}

/// Reads what the peer sends until EOF; a reset (a refused connection) reads
/// as what arrived before it. Bounded by 20 s.
fn read_all(mut s: TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Connects to 127.0.0.1:`port` from `source` (any port), and reads the
/// answer.
fn exchange_from(source: Ipv4Addr, port: u16) -> String {
    use socket2::{Domain, SockAddr, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SockAddr::from(SocketAddr::from((source, 0))))
        .expect("bind the client to its source address");
    s.connect_timeout(
        &SockAddr::from(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        Duration::from_secs(10),
    )
    .expect("connect");
    let s: TcpStream = s.into();
    let _ = s.shutdown(std::net::Shutdown::Write);
    read_all(s)
}

/// flint's log so far, without terminal colours.
fn plain_log(flint: &Flint) -> String {
    let log = flint.log();
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An SGR sequence: ESC [ ... m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits (bounded) until one line of flint's log contains every needle.
fn wait_line(flint: &Flint, needles: &[&str]) -> bool {
    wait_for(Duration::from_secs(20), || {
        plain_log(flint)
            .lines()
            .any(|l| needles.iter().all(|n| l.contains(n)))
            .then_some(())
    })
    .is_some()
}

/// Waits (bounded) until flint's log contains `needle`.
fn wait_log(flint: &Flint, needle: &str) -> bool {
    wait_line(flint, &[needle])
}

fn assert_alive(flint: &mut Flint) {
    assert!(
        flint.child.try_wait().unwrap().is_none(),
        "flint exited; log:\n{}",
        flint.log()
    );
}

// ---------------------------------------------------------------------------
// The example plugins, end to end.

#[test]
fn allowlist_refuses_127_0_0_2_and_admits_127_0_0_1() {
    let tree = Tree::new();
    let port = free_port();
    echo_socket(
        &tree,
        "allow",
        port,
        "welcome",
        "[X-Flint-Plugin-allow]\nPath=allowlist\nConfig=allow=127.0.0.1\nTimeoutSec=2s\n",
    );
    let mut flint = run(&tree, &["allow.socket"]);
    assert_eq!(
        exchange_from(Ipv4Addr::LOCALHOST, port).trim(),
        "welcome",
        "log:\n{}",
        flint.log()
    );
    assert_eq!(
        exchange_from(Ipv4Addr::new(127, 0, 0, 2), port),
        "",
        "127.0.0.2 must be refused; log:\n{}",
        flint.log()
    );
    assert!(
        wait_log(&flint, "127.0.0.2 is not in allow list"),
        "the denial is logged with its reason; log:\n{}",
        flint.log()
    );
    // Refusing one peer leaves the socket serving the others.
    assert_eq!(exchange_from(Ipv4Addr::LOCALHOST, port).trim(), "welcome");
    assert_alive(&mut flint);
}

#[test]
fn ratelimit_throttles_a_burst() {
    let tree = Tree::new();
    let port = free_port();
    // Three tokens and practically no refill: the fourth connection and every
    // later one in this test find the bucket empty.
    echo_socket(
        &tree,
        "limited",
        port,
        "served",
        "[X-Flint-Plugin-rate]\nPath=ratelimit\nConfig=burst=3\nConfig=rate=0.001\nTimeoutSec=2s\n",
    );
    let flint = run(&tree, &["limited.socket"]);
    let answers: Vec<String> = (0..6)
        .map(|_| exchange(port, b"").trim().to_string())
        .collect();
    assert_eq!(
        answers,
        ["served", "served", "served", "", "", ""],
        "log:\n{}",
        flint.log()
    );
    assert!(
        wait_log(
            &flint,
            "denied by policy: rate limit exceeded for ip:127.0.0.1"
        ),
        "log:\n{}",
        flint.log()
    );
}

/// A TLS server for one accepted connection on fd 3 (`Accept=yes`): it
/// answers an HTTP request with its own name and the SNI it saw.
const TLS_SERVER: &str = r#"
import socket, ssl, sys
name, cert, key = sys.argv[1:4]
seen = []
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.sni_callback = lambda s, n, c: seen.append(n)
conn = socket.socket(fileno=3)
conn.setblocking(True)
conn.settimeout(20)
tls = ctx.wrap_socket(conn, server_side=True)
data = b""
while b"\r\n\r\n" not in data and len(data) < 65536:
    chunk = tls.recv(4096)
    if not chunk:
        break
    data += chunk
body = ("service %s, sni %s\n" % (name, seen[0] if seen else None)).encode()
tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
tls.close()
"#;

#[test]
fn sni_router_sends_each_name_to_its_own_tls_service() {
    if !require("python3", "the TLS services")
        || !require("openssl", "a self-signed certificate")
        || !require("curl", "the TLS client")
    {
        return;
    }
    let tree = Tree::new();
    let dir = tree.path();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=a.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl req failed");
    let server = tree.write("tls_server.py", TLS_SERVER);
    let port = free_port();
    tree.write(
        "tls.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n\
             [X-Flint]\nPeekBytes=1024\nPeekTimeoutSec=5s\n\
             [X-Flint-Plugin-sni]\nPath=sni-router\nConfig=prefix=tls\n\
             Config=host=a.test\nConfig=host=b.test\nTimeoutSec=2s\n"
        ),
    );
    for name in ["a.test", "b.test"] {
        tree.write(
            &format!("tls-{name}@.service"),
            &format!(
                "[Service]\nExecStart=/usr/bin/python3 {} {name} {} {}\n",
                server.display(),
                cert.display(),
                key.display()
            ),
        );
    }
    tree.write(
        "tls@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo default\n",
    );
    let flint = run(&tree, &["tls.socket"]);
    let get = |host: &str| {
        let out = Command::new("curl")
            .args(["-sk", "--max-time", "20", "--resolve"])
            .arg(format!("{host}:{port}:127.0.0.1"))
            .arg(format!("https://{host}:{port}/"))
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let a = get("a.test");
    let b = get("b.test");
    assert_eq!(
        a.trim(),
        "service a.test, sni a.test",
        "log:\n{}",
        flint.log()
    );
    assert_eq!(
        b.trim(),
        "service b.test, sni b.test",
        "log:\n{}",
        flint.log()
    );
    // A name outside host= is refused (unknown=deny by default).
    assert_eq!(get("c.test"), "", "log:\n{}", flint.log());
    let log = flint.log();
    assert!(log.contains("routed to tls-a.test@"), "{log}");
    assert!(log.contains("routed to tls-b.test@"), "{log}");
}

/// A peer that sends fewer bytes than `PeekBytes=` and then shuts down
/// its side (`echo hi | nc`) is decided on what it sent: no more will
/// come. Before, the peek found the same bytes again and again on a fd
/// that stayed readable, and flint spun on it for good, serving nothing
/// else and deaf to SIGTERM.
#[test]
fn a_peer_that_half_closes_before_peek_bytes_is_decided_on_what_it_sent() {
    let tree = Tree::new();
    let (port, other) = (free_port(), free_port());
    tree.write(
        "peek.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n\
             [X-Flint]\nPeekBytes=16\n\
             [X-Flint-Plugin-allow]\nPath=allowlist\nConfig=allow=127.0.0.0/8\n"
        ),
    );
    tree.write(
        "peek@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/cat\n",
    );
    tree.write(
        "other.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{other}\nAccept=yes\n"),
    );
    tree.write(
        "other@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo other\n",
    );
    let mut flint = run(&tree, &["peek.socket", "other.socket"]);
    for _ in 0..3 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        std::io::Write::write_all(&mut c, b"hi\n").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = String::new();
        let _ = c.read_to_string(&mut back);
        assert_eq!(
            back,
            "hi\n",
            "the handler got what was sent; log:\n{}",
            flint.log()
        );
    }
    assert_eq!(
        exchange(other, b""),
        "other\n",
        "the other socket is served"
    );
    let status = flint.stop().expect("flint ends after SIGTERM");
    assert!(status.success());
}

#[test]
fn tagger_variables_reach_the_service_environment() {
    let tree = Tree::new();
    let port = free_port();
    tree.write(
        "tag.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n\
             [X-Flint-Plugin-tag]\nPath=env-tagger\nConfig=set=TAG=blue\n\
             Config=net.127.0.0.0/8=ZONE=loopback\nConfig=unset=DROPPED\nTimeoutSec=2s\n"
        ),
    );
    tree.write(
        "tag@.service",
        "[Service]\nStandardInput=socket\nEnvironment=DROPPED=yes KEPT=yes\nExecStart=/usr/bin/env\n",
    );
    let flint = run(&tree, &["tag.socket"]);
    let env = exchange(port, b"");
    let vars: Vec<&str> = env.lines().collect();
    for want in [
        "TAG=blue",
        "ZONE=loopback",
        "FLINT_PEER_ADDR=127.0.0.1",
        "FLINT_PEER_FAMILY=ipv4",
        "KEPT=yes",
    ] {
        assert!(
            vars.contains(&want),
            "{want} missing from the service's environment:\n{env}\nlog:\n{}",
            flint.log()
        );
    }
    assert!(
        !vars.iter().any(|v| v.starts_with("DROPPED=")),
        "unset=DROPPED removes it:\n{env}"
    );
}

#[test]
fn a_unix_peers_credentials_reach_the_plugin() {
    use std::os::unix::net::UnixStream;
    let tree = Tree::new();
    let path = tree.path().join("tag.sock");
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    tree.write(
        "tag.socket",
        &format!(
            "[Socket]\nListenStream={}\nAccept=yes\n\
             [X-Flint-Plugin-tag]\nPath=env-tagger\nConfig=uid.{uid}=SEEN=me\nTimeoutSec=2s\n",
            path.display()
        ),
    );
    tree.write(
        "tag@.service",
        "[Service]\nStandardInput=socket\nExecStart=/usr/bin/env\n",
    );
    let flint = run(&tree, &["tag.socket"]);
    let mut conn = wait_for(Duration::from_secs(10), || UnixStream::connect(&path).ok())
        .expect("connect to the unix socket");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut env = String::new();
    conn.read_to_string(&mut env).expect("read the environment");
    let vars: Vec<&str> = env.lines().collect();
    let pid = format!("FLINT_PEER_PID={}", std::process::id());
    for want in [
        format!("FLINT_PEER_UID={uid}"),
        format!("FLINT_PEER_GID={gid}"),
        pid,
        "FLINT_PEER_FAMILY=unix".to_string(),
        "SEEN=me".to_string(),
    ] {
        assert!(
            vars.contains(&want.as_str()),
            "{want} missing from the service's environment:\n{env}\nlog:\n{}",
            flint.log()
        );
    }
}

// ---------------------------------------------------------------------------
// Plugins written in WAT at test time.

/// How a WAT plugin behaves in `decide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wat {
    Allow,
    Deny,
    InfiniteLoop,
    MemoryBomb,
    Unreachable,
    StackOverflow,
    /// The result pointer is outside the instance's memory.
    ResultOutOfBounds,
    /// The verdict's discriminant does not exist.
    BadDiscriminant,
}

/// A component for `flint:policy@{version}` whose `decide` behaves as `kind`.
fn wat_component(kind: Wat, version: &str) -> Vec<u8> {
    let wit_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/policy.wit");
    let wit = std::fs::read_to_string(&wit_path)
        .expect("read wit")
        .replace("flint:policy@0.1.0", &format!("flint:policy@{version}"));
    let decide = match kind {
        Wat::Allow => "i32.const 32",
        Wat::Deny => "i32.const 96",
        Wat::InfiniteLoop => "(loop $l (br $l)) i32.const 32",
        Wat::MemoryBomb => "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) i32.const 32",
        Wat::Unreachable => "unreachable",
        Wat::StackOverflow => "(call $rec (i32.const 0))",
        Wat::ResultOutOfBounds => "i32.const 0x7ffffff0",
        Wat::BadDiscriminant => "i32.const 128",
    };
    let wat = format!(
        r#"(module
  (import "flint:policy/log@{version}" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (local.get $p))
  (func $rec (param i32) (result i32)
    (i32.add (call $rec (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "flint:policy/handler@{version}#init") (param i32 i32) (result i32)
    i32.const 16)
  (func (export "flint:policy/handler@{version}#decide") (param i32) (result i32)
    {decide})
  ;; 16: init's result, ok. 32: an allow with no edits (all zero).
  (data (i32.const 64) "denied by wat")
  ;; 96: deny("denied by wat"), no edits.
  (data (i32.const 96) "\01\00\00\00\40\00\00\00\0d\00\00\00\00\00\00\00\00\00\00\00")
  ;; 128: a verdict discriminant that does not exist.
  (data (i32.const 128) "\07")
)"#
    );
    let mut module = wat::parse_str(&wat).expect("valid WAT");
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_source("policy.wit", &wit).expect("parse wit");
    let world = resolve.select_world(&[pkg], Some("policy")).expect("world");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("embed metadata");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("componentize")
}

/// Writes the WAT plugin `kind` for `version` into the tree.
fn write_wat(tree: &Tree, kind: Wat, version: &str) -> PathBuf {
    let path = tree.path().join(format!("{kind:?}-{version}.wasm"));
    std::fs::write(&path, wat_component(kind, version)).unwrap();
    path
}

#[test]
fn hostile_plugins_get_their_fail_mode_and_flint_keeps_serving() {
    let tree = Tree::new();
    // Each hostile plugin, its limits, and what flint logs about it.
    let kinds = [
        (
            Wat::InfiniteLoop,
            "TimeoutSec=300ms\n",
            "timed out after 300ms",
        ),
        (
            Wat::MemoryBomb,
            "TimeoutSec=2s\nMemoryMax=2M\n",
            "exceeded its memory limit",
        ),
        (Wat::Unreachable, "TimeoutSec=2s\n", "trapped"),
        (
            Wat::StackOverflow,
            "TimeoutSec=2s\n",
            "overflowed its stack",
        ),
        (
            Wat::ResultOutOfBounds,
            "TimeoutSec=2s\n",
            "returned an invalid result",
        ),
        (
            Wat::BadDiscriminant,
            "TimeoutSec=2s\n",
            "returned an invalid result",
        ),
    ];
    let mut sockets = Vec::new();
    for (kind, limits, failure) in kinds {
        let path = write_wat(&tree, kind, "0.1.0");
        for mode in ["open", "closed"] {
            let name = format!("h-{kind:?}-{mode}").to_lowercase();
            let port = free_port();
            echo_socket(
                &tree,
                &name,
                port,
                "served",
                &format!(
                    "[X-Flint-Plugin-{name}]\nPath={}\nFailMode={mode}\n{limits}",
                    path.display()
                ),
            );
            sockets.push((name, mode, port, failure));
        }
    }
    // A plugin built for another version of the interface: its socket does
    // not start, the others do.
    let future = write_wat(&tree, Wat::Allow, "0.2.0");
    let future_port = free_port();
    echo_socket(
        &tree,
        "future",
        future_port,
        "served",
        &format!(
            "[X-Flint-Plugin-future]\nPath={}\nTimeoutSec=2s\n",
            future.display()
        ),
    );
    let plain_port = free_port();
    echo_socket(&tree, "plain", plain_port, "plain", "");
    let mut units: Vec<String> = sockets
        .iter()
        .map(|(n, _, _, _)| format!("{n}.socket"))
        .collect();
    units.push("future.socket".into());
    units.push("plain.socket".into());
    let unit_refs: Vec<&str> = units.iter().map(String::as_str).collect();
    let mut flint = run(&tree, &unit_refs);

    assert!(
        wait_line(
            &flint,
            &[
                "future.socket: plugin future",
                "built for flint:policy@0.2.0",
                "rebuild the plugin",
                "refusing to listen"
            ]
        ),
        "the wrong interface version is reported clearly; log:\n{}",
        plain_log(&flint)
    );
    assert!(
        TcpStream::connect(("127.0.0.1", future_port)).is_err(),
        "future.socket must not listen"
    );

    for (name, mode, port, failure) in &sockets {
        let answer = exchange(*port, b"");
        let expected = if *mode == "open" { "served" } else { "" };
        assert_eq!(
            answer.trim(),
            expected,
            "{name} (FailMode={mode}); log:\n{}",
            flint.log()
        );
        let plugin = format!("plugin=\"{name}\"");
        let fail_mode = format!("fail_mode={mode}");
        assert!(
            wait_line(
                &flint,
                &["policy plugin failed", failure, &plugin, &fail_mode]
            ),
            "the failure of {name} is logged with the plugin's name; log:\n{}",
            plain_log(&flint)
        );
        // Between two hostile decisions, the socket without plugins answers.
        assert_eq!(exchange(plain_port, b"").trim(), "plain");
        assert_alive(&mut flint);
    }
    let status = flint.stop().expect("flint stops on SIGTERM");
    assert!(status.success(), "{status:?}; log:\n{}", flint.log());
}

#[test]
fn a_looping_plugin_does_not_hold_up_another_socket() {
    let tree = Tree::new();
    let slow = write_wat(&tree, Wat::InfiniteLoop, "0.1.0");
    let slow_port = free_port();
    // The loop runs until its 10 s deadline, then fails open.
    echo_socket(
        &tree,
        "slow",
        slow_port,
        "slow",
        &format!(
            "[X-Flint-Plugin-spin]\nPath={}\nFailMode=open\nTimeoutSec=10s\n",
            slow.display()
        ),
    );
    let plain_port = free_port();
    echo_socket(&tree, "plain", plain_port, "plain", "");
    let mut flint = run(&tree, &["slow.socket", "plain.socket"]);
    let waiting: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || exchange(slow_port, b"")))
        .collect();
    // Let flint take the slow connections into their decisions.
    std::thread::sleep(Duration::from_millis(500));
    // While they are decided, the other socket answers ...
    assert_eq!(exchange(plain_port, b"").trim(), "plain");
    // ... before the looping plugin reached its deadline.
    assert!(
        !flint.log().contains("policy plugin failed"),
        "the plain socket was served only after the looping plugin's deadline; log:\n{}",
        flint.log()
    );
    for w in waiting {
        assert_eq!(w.join().unwrap().trim(), "slow", "fail open serves it");
    }
    assert!(flint.wait_log("policy plugin failed"));
    assert_alive(&mut flint);
}

#[test]
fn accept_no_deny_refuses_the_activation_and_drops_one_queued_connection() {
    let tree = Tree::new();
    let deny = write_wat(&tree, Wat::Deny, "0.1.0");
    let port = free_port();
    tree.write(
        "gate.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\n\
             [X-Flint-Plugin-gate]\nPath={}\nTimeoutSec=2s\n",
            deny.display()
        ),
    );
    let marker = tree.path().join("started");
    tree.write(
        "gate.service",
        &format!(
            "[Service]\nExecStart=/bin/sh -c 'echo started > {}'\n",
            marker.display()
        ),
    );
    let mut flint = run(&tree, &["gate.socket"]);
    // Each queued connection triggers one activation, which the plugin
    // refuses: flint accepts and closes that one connection, and listens
    // again for the next.
    for round in 1..=3 {
        let answer = exchange(port, b"hello");
        assert_eq!(answer, "", "round {round}: the connection is closed");
        let denials = wait_for(Duration::from_secs(20), || {
            let n = flint
                .log()
                .matches("gate.socket: activation denied by policy: denied by wat")
                .count();
            (n >= round).then_some(n)
        });
        assert!(denials.is_some(), "round {round}; log:\n{}", flint.log());
    }
    assert!(!marker.exists(), "the service never started");
    assert!(!flint.log().contains("gate.service: started"));
    assert_alive(&mut flint);
}

// ---------------------------------------------------------------------------
// `flint plugin check`.

fn plugin_check(file: &Path, config: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(flint_bin());
    cmd.args(["plugin", "check"]).arg(file);
    for c in config {
        cmd.args(["--config", c]);
    }
    let out = cmd.output().expect("run flint plugin check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugin_check_reports_and_sets_the_exit_status() {
    let allowlist = example("allowlist");
    let (code, out, err) = plugin_check(&allowlist, &["allow=127.0.0.1", "deny=10.0.0.0/8"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("interface:  flint:policy@0.1.0"), "{out}");
    assert!(out.contains("sample:     Allow"), "{out}");
    assert!(out.contains("sha256"), "{out}");

    // A sample decision that denies is still a valid plugin.
    let (code, out, _) = plugin_check(&allowlist, &["allow=10.0.0.0/8"]);
    assert_eq!(code, 0);
    assert!(out.contains("sample:     Deny"), "{out}");

    // init refuses an unknown key.
    let (code, out, err) = plugin_check(&allowlist, &["colour=blue"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("init refused the configuration"), "{err}");

    let tree = Tree::new();
    let future = write_wat(&tree, Wat::Allow, "0.2.0");
    let (code, _, err) = plugin_check(&future, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("built for flint:policy@0.2.0"), "{err}");

    let junk = tree.write("junk.wasm", "not wasm");
    let (code, _, err) = plugin_check(&junk, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.is_empty());

    let (code, _, err) = plugin_check(&allowlist, &["no-equals-sign"]);
    assert_eq!(code, 2, "a malformed --config is a usage error: {err}");
}

// ---------------------------------------------------------------------------
// The C example of docs/plugins.md.

/// The code block after `marker` in `docs/plugins.md`.
fn doc_block(marker: &str) -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugins.md"))
            .expect("read docs/plugins.md");
    let start = doc
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in docs/plugins.md"));
    let body = &doc[start..];
    let open = body.find("```c\n").expect("a ```c block") + 5;
    let close = body[open..].find("```").expect("end of the block") + open;
    body[open..close].to_string()
}

#[test]
fn c_example_from_the_docs_builds_into_a_working_component() {
    if !require("clang", "compiles the C example to wasm32")
        || !require("wasm-ld", "links the C example (package lld)")
        || !require(
            "wit-bindgen",
            "generates the C bindings (cargo install wit-bindgen-cli@0.61.1)",
        )
    {
        return;
    }
    let tree = Tree::new();
    let dir = tree.path();
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let src = tree.write("plugin.c", &doc_block("<!-- c-example-start -->"));
    let shim = doc_block("<!-- c-shim-start -->");
    tree.write("shim/stdlib.h", &shim);
    tree.write("shim/string.h", &shim);
    let status = Command::new("wit-bindgen")
        .args(["c", "--world", "policy", "--out-dir"])
        .arg(dir)
        .arg(&wit)
        .status()
        .expect("run wit-bindgen");
    assert!(status.success(), "wit-bindgen c failed");
    let core = dir.join("plugin.core.wasm");
    let out = Command::new("clang")
        .args([
            "--target=wasm32-unknown-unknown",
            "-O2",
            "-nostdlib",
            "-ffreestanding",
            "-Wl,--no-entry",
            "-Wl,--export-dynamic",
        ])
        .arg("-isystem")
        .arg(dir.join("shim"))
        .arg("-I")
        .arg(dir)
        .arg(&src)
        .arg(dir.join("policy.c"))
        .arg(dir.join("policy_component_type.o"))
        .arg("-o")
        .arg(&core)
        .output()
        .expect("run clang");
    assert!(
        out.status.success(),
        "clang failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let module = std::fs::read(&core).unwrap();
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("the module carries its component type")
        .validate(true)
        .encode()
        .expect("componentize");
    let plugin = dir.join("c-example.wasm");
    std::fs::write(&plugin, component).unwrap();

    // The example caps connections per source and tags the ones it admits.
    let (code, out, err) = plugin_check(&plugin, &["max-per-source=4"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("sample:     Allow"), "{out}");
    assert!(out.contains("SOURCE_CONNECTIONS"), "{out}");
    let (code, out, _) = plugin_check(&plugin, &["max-per-source=0"]);
    assert_eq!(code, 0);
    assert!(out.contains("sample:     Deny"), "{out}");
    let (code, _, err) = plugin_check(&plugin, &["colour=blue"]);
    assert_eq!(code, 1, "{err}");

    // And it runs in flint.
    let port = free_port();
    echo_socket(
        &tree,
        "c",
        port,
        "served-by-c-plugin",
        &format!(
            "[X-Flint-Plugin-c]\nPath={}\nTimeoutSec=2s\n",
            plugin.display()
        ),
    );
    let flint = run(&tree, &["c.socket"]);
    assert_eq!(
        exchange(port, b"").trim(),
        "served-by-c-plugin",
        "log:\n{}",
        flint.log()
    );
    assert!(
        wait_log(&flint, "c plugin: admitted"),
        "the plugin's log reaches flint's; log:\n{}",
        flint.log()
    );
}
