//! Tests of the policy host with real components: the example plugins built
//! by `build.rs`, and hostile plugins written in WAT here and componentized
//! at test time (infinite loop, memory bomb, trap, stack overflow, garbage
//! results, wrong interface version, imports beyond the WIT). Each hostile
//! plugin is run with both fail modes, and the host must serve a good
//! decision right after.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

/// The host's handles cross threads: the daemon moves chains into blocking
/// tasks.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<PolicyHost>();
    shared::<Plugin>();
    shared::<Chain>();
    shared::<KvStore>();
};

fn host() -> PolicyHost {
    PolicyHost::with_options(HostOptions {
        cache_dir: None,
        max_concurrent_decisions: 4,
        max_memory_limit: 64 * 1024 * 1024,
        warm_instances: 2,
    })
    .expect("host")
}

fn example(name: &str) -> PathBuf {
    let path = Path::new(env!("FLINT_PLUGIN_DIR")).join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: the example plugins were not built (is FLINT_SKIP_PLUGIN_BUILD set?)",
        path.display()
    );
    path
}

/// Timeout of well-behaved plugins in these tests: the host is a debug
/// build on a shared machine, where a decision takes a few hundred
/// microseconds and, under load, occasionally several milliseconds.
const GENEROUS: Duration = Duration::from_secs(2);

/// A spec for `path` with the test timeout.
fn spec(path: impl Into<PathBuf>) -> PluginSpec {
    PluginSpec::new(path).timeout(GENEROUS)
}

fn load(host: &PolicyHost, name: &str, config: &[(&str, &str)]) -> Plugin {
    let mut spec = spec(example(name));
    for (k, v) in config {
        spec = spec.config(*k, *v);
    }
    host.load(spec).expect("load example plugin")
}

fn tcp_request(peer: &str) -> Request {
    let peer: SocketAddr = peer.parse().expect("peer address");
    Request {
        socket_unit: "web.socket".into(),
        listen_address: "0.0.0.0:8443".into(),
        fd_name: "web.socket".into(),
        transport: Transport::Stream,
        mode: ActivationMode::PerConnection,
        local_address: Some(SocketAddress::Ip("127.0.0.1:8443".parse().expect("local"))),
        peer_address: Some(SocketAddress::Ip(peer)),
        peer_credentials: None,
        active_connections: ConnectionCounts {
            socket: 3,
            source: 1,
        },
        target_service: "web@0.service".into(),
        environment: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        peeked: None,
    }
}

fn unix_request(uid: u32) -> Request {
    Request {
        socket_unit: "ctl.socket".into(),
        listen_address: "/run/ctl.sock".into(),
        fd_name: "ctl".into(),
        local_address: Some(SocketAddress::UnixPath("/run/ctl.sock".into())),
        peer_address: Some(SocketAddress::Unnamed),
        peer_credentials: Some(PeerCredentials {
            pid: 4242,
            uid,
            gid: 100,
        }),
        ..tcp_request("127.0.0.1:1")
    }
}

fn decide(plugin: &Plugin, request: &Request) -> ChainOutcome {
    Chain::new(vec![plugin.clone()]).decide(request)
}

fn is_deny(v: &Verdict) -> bool {
    matches!(v, Verdict::Deny(_))
}

// ---------------------------------------------------------------------------
// The example plugins.

#[test]
fn allowlist_admits_listed_peer_and_refuses_others() {
    let host = host();
    let p = load(
        &host,
        "allowlist",
        &[("allow", "127.0.0.1, ::1"), ("deny", "10.0.0.0/8")],
    );
    assert_eq!(
        decide(&p, &tcp_request("127.0.0.1:5000")).verdict,
        Verdict::Allow
    );
    let refused = decide(&p, &tcp_request("127.0.0.2:5000"));
    assert_eq!(
        refused.verdict,
        Verdict::Deny("127.0.0.2 is not in allow list".into())
    );
    assert_eq!(
        decide(&p, &tcp_request("[::1]:5000")).verdict,
        Verdict::Allow
    );
    // A dual-stack socket sees IPv4 peers as mapped IPv6 addresses.
    assert_eq!(
        decide(&p, &tcp_request("[::ffff:127.0.0.1]:5000")).verdict,
        Verdict::Allow
    );
    assert!(is_deny(&decide(&p, &tcp_request("10.1.2.3:5000")).verdict));
    // A unix peer has no IP address: refused when an allow list is given.
    assert!(is_deny(&decide(&p, &unix_request(0)).verdict));
    let stats = p.stats();
    assert_eq!((stats.allowed, stats.denied, stats.failed), (3, 3, 0));
}

#[test]
fn allowlist_reports_bad_config_at_load() {
    let host = host();
    let err = host
        .load(spec(example("allowlist")).config("allow", "300.1.2.3"))
        .expect_err("bad prefix");
    let msg = err.to_string();
    assert!(matches!(err, PolicyError::InitRejected { .. }), "{msg}");
    assert!(msg.contains("300.1.2.3"), "{msg}");
    let err = host
        .load(spec(example("allowlist")).config("alow", "1.2.3.4"))
        .expect_err("typo");
    assert!(
        err.to_string().contains("unknown config key `alow`"),
        "{err}"
    );
}

#[test]
fn ratelimit_throttles_a_burst_per_source() {
    let host = host();
    let p = load(&host, "ratelimit", &[("rate", "0.5"), ("burst", "3")]);
    let verdicts: Vec<bool> = (0..6)
        .map(|_| decide(&p, &tcp_request("192.0.2.7:1000")).verdict == Verdict::Allow)
        .collect();
    assert_eq!(verdicts, [true, true, true, false, false, false]);
    assert_eq!(
        decide(&p, &tcp_request("192.0.2.7:1001")).verdict,
        Verdict::Deny("rate limit exceeded for ip:192.0.2.7".into())
    );
    // Another source has its own bucket.
    assert_eq!(
        decide(&p, &tcp_request("192.0.2.8:1000")).verdict,
        Verdict::Allow
    );
    // IPv6 peers in one /64 share a bucket.
    for i in 0..3 {
        let peer = format!("[2001:db8::{i}]:1000");
        assert_eq!(decide(&p, &tcp_request(&peer)).verdict, Verdict::Allow);
    }
    assert!(is_deny(
        &decide(&p, &tcp_request("[2001:db8::99]:1")).verdict
    ));
    // The buckets live in the plugin's host store.
    assert_eq!(p.store().usage().0, 3);
}

#[test]
fn sni_router_routes_real_client_hellos() {
    let host = host();
    let p = load(
        &host,
        "sni-router",
        &[("prefix", "web"), ("host", "a.test b.test")],
    );
    let mut req = tcp_request("127.0.0.1:5000");
    req.peeked = Some(include_bytes!("testdata/clienthello-a.test.bin").to_vec());
    assert_eq!(
        decide(&p, &req).verdict,
        Verdict::Route("web-a.test@.service".into())
    );
    req.peeked = Some(include_bytes!("testdata/clienthello-b.test.bin").to_vec());
    assert_eq!(
        decide(&p, &req).verdict,
        Verdict::Route("web-b.test@.service".into())
    );
    // Not TLS, or nothing peeked: the socket's own service.
    req.peeked = Some(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n".to_vec());
    assert_eq!(decide(&p, &req).verdict, Verdict::Allow);
    req.peeked = None;
    assert_eq!(decide(&p, &req).verdict, Verdict::Allow);
    // A peek cut short is decided on what arrived.
    req.peeked = Some(include_bytes!("testdata/clienthello-a.test.bin")[..60].to_vec());
    assert_eq!(decide(&p, &req).verdict, Verdict::Allow);
    // A name not in `host` is refused.
    let only_b = load(
        &host,
        "sni-router",
        &[("template", "tls-{sni}.service"), ("host", "b.test")],
    );
    req.peeked = Some(include_bytes!("testdata/clienthello-a.test.bin").to_vec());
    assert!(is_deny(&decide(&only_b, &req).verdict));
    req.peeked = Some(include_bytes!("testdata/clienthello-b.test.bin").to_vec());
    assert_eq!(
        decide(&only_b, &req).verdict,
        Verdict::Route("tls-b.test.service".into())
    );
}

fn set(name: &str, value: &str) -> EnvEdit {
    EnvEdit::Set {
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn env_tagger_sets_variables_and_protected_ones_are_refused() {
    let host = host();
    let p = load(
        &host,
        "env-tagger",
        &[
            ("uid.1000", "ROLE=admin"),
            ("net.127.0.0.0/8", "ZONE=loopback"),
            ("set", "LISTEN_FDS=9"),
            ("set", "NOTIFY_SOCKET=/tmp/evil"),
            ("unset", "LANG"),
        ],
    );
    let out = decide(&p, &unix_request(1000));
    assert_eq!(out.verdict, Verdict::Allow);
    assert_eq!(
        out.env_edits,
        [
            set("FLINT_PEER_UID", "1000"),
            set("FLINT_PEER_GID", "100"),
            set("FLINT_PEER_PID", "4242"),
            set("FLINT_PEER_FAMILY", "unix"),
            set("ROLE", "admin"),
            EnvEdit::Unset("LANG".into()),
        ]
    );
    let refused: Vec<&str> = out
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            PluginEventKind::EditRefused { variable, .. } => Some(variable.as_str()),
            PluginEventKind::Failed { .. } => None,
        })
        .collect();
    assert_eq!(refused, ["LISTEN_FDS", "NOTIFY_SOCKET"]);
    assert_eq!(p.stats().edits_refused, 2);

    let out = decide(&p, &tcp_request("127.0.0.5:6000"));
    assert!(out.env_edits.contains(&set("FLINT_PEER_ADDR", "127.0.0.5")));
    assert!(out.env_edits.contains(&set("FLINT_PEER_PORT", "6000")));
    assert!(out.env_edits.contains(&set("ZONE", "loopback")));
    assert!(!out.env_edits.contains(&set("ROLE", "admin")));
}

#[test]
fn chain_first_deny_stops_route_carries_and_edits_accumulate() {
    let host = host();
    let tagger = load(&host, "env-tagger", &[("set", "TAGGED=1")]);
    let router = load(&host, "sni-router", &[("prefix", "web")]);
    let allow = load(&host, "allowlist", &[("allow", "127.0.0.1")]);
    let limiter = load(&host, "ratelimit", &[("burst", "100")]);

    let mut req = tcp_request("127.0.0.1:5000");
    req.peeked = Some(include_bytes!("testdata/clienthello-a.test.bin").to_vec());
    let chain = Chain::new(vec![
        tagger.clone(),
        router.clone(),
        allow.clone(),
        limiter.clone(),
    ]);
    let out = chain.decide(&req);
    assert_eq!(out.verdict, Verdict::Route("web-a.test@.service".into()));
    assert!(out.env_edits.contains(&set("TAGGED", "1")));
    assert!(out.events.is_empty());

    // A deny in the middle stops the chain: the limiter is not consulted,
    // and no edits are returned.
    let mut req = req.clone();
    req.peer_address = Some(SocketAddress::Ip("127.0.0.2:5000".parse().expect("addr")));
    let out = chain.decide(&req);
    assert!(is_deny(&out.verdict));
    assert!(out.env_edits.is_empty());
    assert_eq!(limiter.stats().allowed, 1);
    assert_eq!(limiter.stats().denied, 0);
    assert_eq!(router.stats().routed, 2);

    // A route to a unit flint has not loaded is a deny.
    let mut req = req.clone();
    req.peer_address = Some(SocketAddress::Ip("127.0.0.1:5000".parse().expect("addr")));
    let out = chain.decide_with(&req, &|unit| unit == "web-b.test@.service");
    assert_eq!(
        out.verdict,
        Verdict::Deny(
            "policy plugin sni-router routed to web-a.test@.service, which is not loaded".into()
        )
    );
    let out =
        Chain::new(vec![router.clone()]).decide_with(&req, &|unit| unit == "web-a.test@.service");
    assert_eq!(out.verdict, Verdict::Route("web-a.test@.service".into()));
}

#[test]
fn rust_panics_are_reported_with_their_message() {
    let host = host();
    let req = tcp_request("127.0.0.1:5000");
    for mode in [FailMode::Open, FailMode::Closed] {
        let faulty = spec(example("faulty"))
            .config("message", "boom in decide")
            .fail_mode(mode);
        let p = host.load(faulty).expect("faulty loads");
        let out = decide(&p, &req);
        let [
            PluginEvent {
                kind: PluginEventKind::Failed { failure, .. },
                ..
            },
        ] = out.events.as_slice()
        else {
            panic!("{:?}", out.events);
        };
        let PluginFailure::Trap {
            panic: Some(message),
            ..
        } = failure
        else {
            panic!("{failure:?}");
        };
        assert!(message.contains("boom in decide"), "{message}");
        match mode {
            FailMode::Open => assert_eq!(out.verdict, Verdict::Allow),
            FailMode::Closed => assert!(is_deny(&out.verdict)),
        }
    }
    let err = host
        .load(
            spec(example("faulty"))
                .config("panic", "init")
                .config("message", "boom in init"),
        )
        .expect_err("init panics");
    assert!(matches!(err, PolicyError::InitFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("boom in init"), "{err}");
}

// ---------------------------------------------------------------------------
// Hostile plugins, in WAT.

/// How a WAT plugin misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wat {
    Allow,
    Deny,
    InfiniteLoop,
    MemoryBomb,
    Unreachable,
    StackOverflow,
    ResultOutOfBounds,
    BadDiscriminant,
    LogThenTrapInInit,
    /// Allows once, traps if its instance is asked a second time.
    OneShot,
}

/// Builds a component for `flint:policy@{version}` whose `decide` behaves as
/// `kind`; `extra_import` adds an import beyond the WIT.
fn wat_component(kind: Wat, version: &str, extra_import: bool) -> Vec<u8> {
    let wit_path = Path::new(env!("FLINT_WIT_DIR")).join("policy.wit");
    let mut wit = std::fs::read_to_string(&wit_path)
        .expect("read wit")
        .replace("flint:policy@0.1.0", &format!("flint:policy@{version}"));
    let mut imports =
        format!(r#"(import "flint:policy/log@{version}" "log" (func $log (param i32 i32 i32)))"#);
    if extra_import {
        wit = wit.replace(
            "world policy {",
            "interface secrets {\n    get: func() -> u32;\n}\n\nworld policy {\n    import secrets;",
        );
        let _ = write!(
            imports,
            r#"(import "flint:policy/secrets@{version}" "get" (func $secret (result i32)))"#
        );
    }
    let decide = match kind {
        Wat::Allow | Wat::LogThenTrapInInit => "i32.const 32",
        Wat::Deny => "i32.const 96",
        Wat::InfiniteLoop => "(loop $l (br $l)) i32.const 32",
        Wat::MemoryBomb => "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) i32.const 32",
        Wat::Unreachable => "unreachable",
        Wat::StackOverflow => "(call $rec (i32.const 0))",
        Wat::ResultOutOfBounds => "i32.const 0x7ffffff0",
        Wat::BadDiscriminant => "i32.const 128",
        Wat::OneShot => {
            "(if (global.get $used) (then unreachable)) (global.set $used (i32.const 1)) i32.const 32"
        }
    };
    let init = if kind == Wat::LogThenTrapInInit {
        "(call $log (i32.const 4) (i32.const 64) (i32.const 13)) unreachable"
    } else {
        "i32.const 16"
    };
    let wat = format!(
        r#"(module
  {imports}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (global $used (mut i32) (i32.const 0))
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
    {init})
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

fn write_component(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).expect("write component");
    path
}

fn load_wat(
    host: &PolicyHost,
    dir: &Path,
    kind: Wat,
    mode: FailMode,
) -> Result<Plugin, PolicyError> {
    let path = write_component(
        dir,
        &format!("{kind:?}"),
        &wat_component(kind, "0.1.0", false),
    );
    let spec = if kind == Wat::InfiniteLoop {
        PluginSpec::new(path)
    } else {
        spec(path)
    };
    host.load(spec.fail_mode(mode))
}

#[test]
fn wat_allow_and_deny_work() {
    let host = host();
    let dir = tempfile::tempdir().expect("tempdir");
    let allow = load_wat(&host, dir.path(), Wat::Allow, FailMode::Closed).expect("allow");
    let deny = load_wat(&host, dir.path(), Wat::Deny, FailMode::Closed).expect("deny");
    let req = tcp_request("127.0.0.1:1");
    assert_eq!(decide(&allow, &req).verdict, Verdict::Allow);
    assert_eq!(
        decide(&deny, &req).verdict,
        Verdict::Deny("denied by wat".into())
    );
}

/// Waits (bounded) until `plugin` has `n` warm instances.
fn wait_warm(plugin: &Plugin, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while plugin.warm_ready() < n {
        assert!(
            Instant::now() < deadline,
            "no {n} warm instances in 10 s: {} ready, {:?}",
            plugin.warm_ready(),
            plugin.stats()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn warm_instances_serve_one_decision_each_and_are_refilled() {
    let host = host();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = load_wat(&host, dir.path(), Wat::OneShot, FailMode::Closed).expect("load");
    let req = tcp_request("127.0.0.1:1");
    for _ in 0..10 {
        wait_warm(&p, 2);
        assert_eq!(decide(&p, &req).verdict, Verdict::Allow);
    }
    // Faster than the refill: cold instances, still each used once.
    for _ in 0..10 {
        assert_eq!(decide(&p, &req).verdict, Verdict::Allow);
    }
    let stats = p.stats();
    assert_eq!(stats.failed, 0, "an instance was asked twice: {stats:?}");
    assert!(stats.warm >= 10, "{stats:?}");
    assert_eq!(stats.allowed, 20, "{stats:?}");
    wait_warm(&p, 2);
}

#[test]
fn warm_slots_are_shared_evenly_between_plugins() {
    // Four warm slots (half of eight) and three plugins that each want
    // four: every plugin gets one, none takes them all.
    let host = PolicyHost::with_options(HostOptions {
        cache_dir: None,
        max_concurrent_decisions: 8,
        max_memory_limit: 32 * 1024 * 1024,
        warm_instances: 4,
    })
    .expect("host");
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins: Vec<Plugin> = (0..3)
        .map(|_| load_wat(&host, dir.path(), Wat::OneShot, FailMode::Closed).expect("load"))
        .collect();
    let req = tcp_request("127.0.0.1:1");
    for p in &plugins {
        wait_warm(p, 1);
    }
    let total: usize = plugins.iter().map(Plugin::warm_ready).sum();
    assert!(total <= 4, "{total} warm instances in four warm slots");
    // Alone again, the last one grows to the four it asked for.
    let mut plugins = plugins;
    let last = plugins.pop().expect("three plugins");
    drop(plugins);
    assert_eq!(decide(&last, &req).verdict, Verdict::Allow);
    wait_warm(&last, 4);
}

#[test]
fn warm_instances_off_runs_every_decision_cold() {
    let host = PolicyHost::with_options(HostOptions {
        cache_dir: None,
        max_concurrent_decisions: 2,
        max_memory_limit: 32 * 1024 * 1024,
        warm_instances: 0,
    })
    .expect("host");
    let dir = tempfile::tempdir().expect("tempdir");
    let p = load_wat(&host, dir.path(), Wat::OneShot, FailMode::Closed).expect("load");
    let req = tcp_request("127.0.0.1:1");
    for _ in 0..5 {
        assert_eq!(decide(&p, &req).verdict, Verdict::Allow);
    }
    assert_eq!((p.stats().warm, p.warm_ready()), (0, 0));
}

/// Runs a hostile plugin in both fail modes and checks the failure, the
/// resolution, the counters, and that the host serves a good decision after.
fn hostile(kind: Wat, expect: fn(&PluginFailure) -> bool) {
    let host = host();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = load(&host, "allowlist", &[("allow", "127.0.0.1")]);
    let req = tcp_request("127.0.0.1:5000");
    for mode in [FailMode::Open, FailMode::Closed] {
        let bad = load_wat(&host, dir.path(), kind, mode).expect("hostile plugin loads");
        let chain = Chain::new(vec![bad.clone(), good.clone()]);
        let out = chain.decide(&req);
        let [event] = out.events.as_slice() else {
            panic!("{kind:?}: expected one event, got {:?}", out.events);
        };
        assert_eq!(event.plugin, format!("{kind:?}"));
        let PluginEventKind::Failed { failure, fail_mode } = &event.kind else {
            panic!("{kind:?}: expected a failure, got {event:?}");
        };
        assert!(expect(failure), "{kind:?}: unexpected failure {failure:?}");
        assert_eq!(*fail_mode, mode);
        match mode {
            FailMode::Open => assert_eq!(out.verdict, Verdict::Allow, "{kind:?} open"),
            FailMode::Closed => {
                let Verdict::Deny(reason) = &out.verdict else {
                    panic!("{kind:?} closed: {:?}", out.verdict);
                };
                assert!(reason.contains(&format!("{kind:?}")), "{reason}");
            }
        }
        assert_eq!(bad.stats().failed, 1);
        // The host keeps working, and so does the hostile plugin's slot.
        assert_eq!(decide(&good, &req).verdict, Verdict::Allow);
        assert_eq!(
            decide(&good, &tcp_request("127.0.0.2:1")).verdict.clone(),
            Verdict::Deny("127.0.0.2 is not in allow list".into())
        );
    }
}

#[test]
fn hostile_infinite_loop_is_interrupted_at_the_deadline() {
    let started = Instant::now();
    hostile(Wat::InfiniteLoop, |f| {
        *f == PluginFailure::Timeout(PluginSpec::DEFAULT_TIMEOUT)
    });
    // Two interrupted calls of 20 ms each: far below a second even on a
    // loaded machine, and they did not hang.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn hostile_memory_bomb_is_capped() {
    hostile(Wat::MemoryBomb, |f| {
        *f == PluginFailure::MemoryLimit(PluginSpec::DEFAULT_MEMORY_LIMIT)
    });
}

#[test]
fn hostile_unreachable_traps() {
    hostile(
        Wat::Unreachable,
        |f| matches!(f, PluginFailure::Trap { message, panic: None } if message.contains("unreachable")),
    );
}

#[test]
fn hostile_stack_overflow_is_caught() {
    hostile(Wat::StackOverflow, |f| *f == PluginFailure::StackOverflow);
}

#[test]
fn hostile_result_pointer_out_of_bounds_is_refused() {
    hostile(
        Wat::ResultOutOfBounds,
        |f| matches!(f, PluginFailure::InvalidResult(m) if m.contains("out of bounds")),
    );
}

#[test]
fn hostile_bad_discriminant_is_refused() {
    hostile(Wat::BadDiscriminant, |f| {
        matches!(f, PluginFailure::InvalidResult(_))
    });
}

#[test]
fn trap_in_init_fails_the_load_with_the_logged_message() {
    let host = host();
    let dir = tempfile::tempdir().expect("tempdir");
    let err = load_wat(&host, dir.path(), Wat::LogThenTrapInInit, FailMode::Open)
        .expect_err("init traps");
    let PolicyError::InitFailed { failure, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        *failure,
        PluginFailure::Trap {
            message: "wasm `unreachable` instruction executed".into(),
            panic: Some("denied by wat".into()),
        }
    );
    assert!(err.to_string().contains("denied by wat"), "{err}");
}

#[test]
fn wrong_interface_version_is_refused_at_load() {
    let host = host();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_component(
        dir.path(),
        "future",
        &wat_component(Wat::Allow, "0.2.0", false),
    );
    let err = host.load(spec(&path)).expect_err("0.2.0 refused");
    assert!(
        matches!(err, PolicyError::InterfaceVersion { ref found, .. } if found == "0.2.0"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("flint:policy@0.2.0") && msg.contains("flint:policy@0.1.0"),
        "{msg}"
    );

    let path = write_component(
        dir.path(),
        "rc",
        &wat_component(Wat::Allow, "0.1.0-rc1", false),
    );
    let err = host.load(spec(&path)).expect_err("prerelease refused");
    assert!(
        matches!(err, PolicyError::InterfaceVersion { .. }),
        "{err:?}"
    );

    // A later 0.1.x that uses nothing new loads.
    let path = write_component(
        dir.path(),
        "patch",
        &wat_component(Wat::Deny, "0.1.1", false),
    );
    let p = host.load(spec(&path)).expect("0.1.1 loads");
    assert_eq!(p.interface_version(), "0.1.1");
    assert!(is_deny(&decide(&p, &tcp_request("127.0.0.1:1")).verdict));
}

#[test]
fn imports_beyond_the_wit_are_refused_at_load() {
    let host = host();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_component(
        dir.path(),
        "greedy",
        &wat_component(Wat::Allow, "0.1.0", true),
    );
    let err = host.load(spec(&path)).expect_err("extra import refused");
    let PolicyError::ForbiddenImports { imports, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(imports, "flint:policy/secrets@0.1.0");
    assert!(err.to_string().contains("wasm32-unknown-unknown"), "{err}");
}

#[test]
fn core_modules_and_garbage_files_are_refused_at_load() {
    let host = host();
    let dir = tempfile::tempdir().expect("tempdir");
    let module = wat::parse_str("(module)").expect("wat");
    let path = write_component(dir.path(), "core", &module);
    let err = host.load(spec(&path)).expect_err("core module");
    assert!(matches!(err, PolicyError::NotAComponent { .. }), "{err:?}");
    let path = write_component(dir.path(), "junk", b"not wasm at all");
    let err = host.load(spec(&path)).expect_err("junk");
    assert!(matches!(err, PolicyError::Compile { .. }), "{err:?}");
    let err = host
        .load(spec(dir.path().join("missing.wasm")))
        .expect_err("missing");
    assert!(matches!(err, PolicyError::Read { .. }), "{err:?}");
    let mut spec = PluginSpec::new(example("allowlist"));
    spec.memory_limit = 1 << 40;
    assert!(matches!(
        host.load(spec),
        Err(PolicyError::InvalidSpec { .. })
    ));
}

// ---------------------------------------------------------------------------
// The compiled cache.

#[test]
fn cached_plugin_loads_from_the_cache_the_second_time() {
    let cache = tempfile::tempdir().expect("tempdir");
    let dir = cache.path().join("flint/plugins");
    let first = PolicyHost::new(Some(dir.clone())).expect("host");
    let p = load(&first, "allowlist", &[("allow", "127.0.0.1")]);
    assert_eq!(p.cache_status(), CacheStatus::Stored);
    let entries: Vec<_> = std::fs::read_dir(&dir).expect("cache dir").collect();
    assert_eq!(entries.len(), 1);
    drop((p, first));

    let second = PolicyHost::new(Some(dir.clone())).expect("host");
    let p = load(&second, "allowlist", &[("allow", "127.0.0.1")]);
    assert_eq!(p.cache_status(), CacheStatus::Hit);
    assert_eq!(
        decide(&p, &tcp_request("127.0.0.1:1")).verdict,
        Verdict::Allow
    );
    assert!(is_deny(&decide(&p, &tcp_request("127.0.0.2:1")).verdict));

    // A damaged entry (even one damaged under a running host: entries are
    // read, not mapped) is ignored and replaced.
    for entry in std::fs::read_dir(&dir).expect("cache dir") {
        std::fs::write(entry.expect("entry").path(), b"garbage").expect("damage");
    }
    let third = PolicyHost::new(Some(dir)).expect("host");
    let p = load(&third, "allowlist", &[("allow", "127.0.0.1")]);
    assert_eq!(p.cache_status(), CacheStatus::Stored);
    assert_eq!(
        decide(&p, &tcp_request("127.0.0.1:1")).verdict,
        Verdict::Allow
    );
}

#[test]
fn unwritable_cache_dir_is_tolerated() {
    let host = PolicyHost::new(Some(PathBuf::from("/proc/flint-cannot-exist"))).expect("host");
    assert!(host.cache_dir().is_none());
    let p = load(&host, "allowlist", &[]);
    assert_eq!(p.cache_status(), CacheStatus::Compiled);
    assert_eq!(
        decide(&p, &tcp_request("127.0.0.1:1")).verdict,
        Verdict::Allow
    );
}

// ---------------------------------------------------------------------------
// Concurrency, the check API, and a rough measurement.

#[test]
fn concurrent_decisions_wait_for_a_slot() {
    let host = PolicyHost::with_options(HostOptions {
        cache_dir: None,
        max_concurrent_decisions: 2,
        max_memory_limit: 32 * 1024 * 1024,
        warm_instances: 1,
    })
    .expect("host");
    let p = load(&host, "ratelimit", &[("burst", "1000"), ("rate", "1")]);
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                (0..25)
                    .filter(|_| {
                        decide(&p, &tcp_request("198.51.100.1:1")).verdict == Verdict::Allow
                    })
                    .count()
            })
        })
        .collect();
    let allowed: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(allowed, 150);
    assert_eq!(p.stats().failed, 0);
}

#[test]
fn check_plugin_reports_on_a_component() {
    let report =
        check_plugin(&example("env-tagger"), &[("set".into(), "A=1".into())]).expect("check");
    assert_eq!(report.interface_version, "0.1.0");
    assert_eq!(report.exports, ["flint:policy/handler@0.1.0"]);
    assert!(
        report
            .imports
            .iter()
            .all(|i| i.starts_with("flint:policy/")),
        "{:?}",
        report.imports
    );
    assert!(!report.imports.iter().any(|i| i.starts_with("wasi:")));
    assert_eq!(report.sample.verdict, Verdict::Allow);
    assert!(report.sample.env_edits.contains(&set("A", "1")));
    assert!(report.to_string().contains("flint:policy@0.1.0"));
    let err = check_plugin(&example("env-tagger"), &[("bogus".into(), String::new())])
        .expect_err("bad config");
    assert!(matches!(err, PolicyError::InitRejected { .. }), "{err}");
}
