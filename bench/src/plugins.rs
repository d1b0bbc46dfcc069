//! `flint-bench-plugins`: what flint's WebAssembly policy plugins cost.
//!
//! Not a test: it prints three tables, all in one run and with the same
//! machine load. First the time a cached plugin takes to be ready (load
//! from the compiled-plugin cache plus `init`). Then the decision cost
//! (fresh instances, `init` and `decide`, through [`Chain::decide`]) with 0,
//! 1 and 3 plugins, as p50/p99/max over many decisions. Last, the
//! `Accept=yes` throughput of a real `flint run` (the `flint` binary beside
//! this one) with three sockets that differ only in their chains of 0, 1
//! and 3 plugins, each hammered in turn by concurrent loopback clients, the
//! chains taking turns for several rounds.
//! `bench/plugins.sh` builds both binaries in release mode and runs it.

use std::fmt::Write as _;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flint::activation::policy::resolve_plugin;
use flint::policy::{
    ActivationMode, Chain, ConnectionCounts, HostOptions, PluginSpec, PolicyHost, Request,
    SocketAddress, Transport, Verdict,
};

/// The chains measured: (label, plugins with their configuration).
type ChainSpec = (
    &'static str,
    Vec<(&'static str, Vec<(&'static str, &'static str)>)>,
);

fn chains() -> Vec<ChainSpec> {
    let allow = ("allowlist", vec![("allow", "127.0.0.0/8, ::1")]);
    // A bucket that never runs dry during the benchmark.
    let rate = (
        "ratelimit",
        vec![("rate", "1000000000"), ("burst", "1000000000")],
    );
    let tag = (
        "env-tagger",
        vec![("set", "TIER=bench"), ("net.127.0.0.0/8", "ZONE=loopback")],
    );
    vec![
        ("0 plugins", vec![]),
        ("1 plugin (allowlist)", vec![allow.clone()]),
        (
            "3 plugins (allowlist, ratelimit, env-tagger)",
            vec![allow, rate, tag],
        ),
    ]
}

fn arg(name: &str, default: u64) -> u64 {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == name {
            return args
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage());
        }
    }
    default
}

fn usage() -> ! {
    eprintln!(
        "usage: flint-bench-plugins [--decisions N] [--seconds S] [--clients N] [--rounds R] [--warm N]"
    );
    std::process::exit(2);
}

fn request() -> Request {
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000));
    Request {
        socket_unit: "bench.socket".into(),
        listen_address: "127.0.0.1:8080".into(),
        fd_name: "connection".into(),
        transport: Transport::Stream,
        mode: ActivationMode::PerConnection,
        local_address: Some(SocketAddress::Ip(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            8080,
        )))),
        peer_address: Some(SocketAddress::Ip(peer)),
        peer_credentials: None,
        active_connections: ConnectionCounts::default(),
        target_service: "bench@0-127.0.0.1:8080-127.0.0.1:40000.service".into(),
        environment: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("REMOTE_ADDR".into(), "127.0.0.1".into()),
        ],
        peeked: None,
    }
}

fn plugin_path(name: &str) -> PathBuf {
    resolve_plugin(name, None).unwrap_or_else(|| {
        eprintln!("plugin {name} not found: build flint first (cargo build --release)");
        std::process::exit(1);
    })
}

fn load_chain(host: &PolicyHost, spec: &ChainSpec) -> (Chain, Vec<Duration>) {
    let mut plugins = Vec::new();
    let mut times = Vec::new();
    for (name, config) in &spec.1 {
        let mut s = PluginSpec::new(plugin_path(name)).name(*name);
        for (k, v) in config {
            s = s.config(*k, *v);
        }
        let p = host.load(s).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1);
        });
        times.push(p.load_time());
        plugins.push(p);
    }
    (Chain::new(plugins), times)
}

/// The `pct`-th percentile of sorted samples (nearest rank).
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) * pct).div_ceil(100)]
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn decision_costs(decisions: u64, warm: u64) {
    let cache = tempfile::tempdir().expect("tempdir");
    let options = || HostOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        warm_instances: u32::try_from(warm).unwrap_or(u32::MAX),
        ..HostOptions::default()
    };
    // Fill the cache, then measure loads from it in a fresh host, as a
    // restarted flint would.
    let specs = chains();
    {
        let host = PolicyHost::with_options(options()).expect("host");
        for spec in &specs {
            let _ = load_chain(&host, spec);
        }
    }
    let host = PolicyHost::with_options(options()).expect("host");
    let loaded: Vec<(&str, Chain, Vec<Duration>)> = specs
        .iter()
        .map(|spec| {
            let (chain, times) = load_chain(&host, spec);
            (spec.0, chain, times)
        })
        .collect();
    println!("## Cached plugin ready (load from cache + init)\n");
    println!("| plugin | time (ms) |\n| --- | ---: |");
    if let Some((_, chain, times)) = loaded.last() {
        for (p, t) in chain.plugins().iter().zip(times) {
            println!("| {} | {:.3} |", p.name(), t.as_secs_f64() * 1e3);
        }
    }
    println!("\n## Decision cost ({decisions} decisions per chain, each in a fresh instance)\n");
    println!(
        "Paced: one decision every {PACE_US} µs ({} per second, above flint's \
         peak Accept=yes rate), so warm instances are refilled between \
         decisions, as in service. Back-to-back: no pause, so the refill \
         falls behind and most decisions take the cold path \
         (instantiate + init + decide).\n",
        1_000_000 / PACE_US
    );
    println!(
        "| chain | paced p50 (µs) | paced p99 (µs) | paced max (µs) | back-to-back p50 (µs) | back-to-back p99 (µs) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let req = request();
    for (label, chain, _) in &loaded {
        for _ in 0..200 {
            let _ = chain.decide(&req);
        }
        let run = |pace: Option<Duration>| {
            let mut samples = Vec::with_capacity(usize::try_from(decisions).unwrap_or(0));
            for _ in 0..decisions {
                if let Some(pace) = pace {
                    std::thread::sleep(pace);
                }
                let t = Instant::now();
                let out = chain.decide(&req);
                samples.push(t.elapsed());
                assert_eq!(out.verdict, Verdict::Allow, "{label}: {out:?}");
            }
            samples.sort();
            samples
        };
        let before: u64 = chain.plugins().iter().map(|p| p.stats().warm).sum();
        let paced = run(Some(Duration::from_micros(PACE_US)));
        let warm: u64 = chain.plugins().iter().map(|p| p.stats().warm).sum::<u64>() - before;
        let calls = decisions * chain.plugins().len() as u64;
        if calls > 0 {
            eprintln!("{label}: {warm} of {calls} paced plugin calls ran in a warm instance");
        }
        let burst = run(None);
        println!(
            "| {label} | {} | {} | {} | {} | {} |",
            us(percentile(&paced, 50)),
            us(percentile(&paced, 99)),
            us(paced.last().copied().unwrap_or_default()),
            us(percentile(&burst, 50)),
            us(percentile(&burst, 99)),
        );
    }
}

/// Pause between paced decisions, in microseconds.
const PACE_US: u64 = 500;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.0.id().cast_signed(), libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

/// One connection: connect, read the answer to EOF.
fn one(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).is_ok() && buf.starts_with(b"ok")
}

fn throughput(seconds: u64, clients: u64, rounds: u64) {
    let flint = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("flint")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| {
            eprintln!("the flint binary is not beside this one: cargo build --release");
            std::process::exit(1);
        });
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = chains();
    let mut ports = Vec::new();
    for (i, (_, plugins)) in specs.iter().enumerate() {
        let port = free_port();
        // Connections arrive faster than the default trigger and poll
        // limits (200 and 150 in 2 s) admit.
        let mut text = format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=256\n\
             TriggerLimitIntervalSec=0\nPollLimitIntervalSec=0\n"
        );
        for (name, config) in plugins {
            let _ = writeln!(text, "[X-Flint-Plugin-{name}]\nPath={name}");
            for (k, v) in config {
                let _ = writeln!(text, "Config={k}={v}");
            }
        }
        std::fs::write(dir.path().join(format!("b{i}.socket")), text).expect("write unit");
        std::fs::write(
            dir.path().join(format!("b{i}@.service")),
            "[Service]\nStandardInput=socket\nExecStart=/bin/echo ok\n",
        )
        .expect("write unit");
        ports.push(port);
    }
    let mut child = Command::new(&flint)
        .arg("run")
        .arg("--unit-dir")
        .arg(dir.path())
        .env("FLINT_LOG", "warn")
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn flint");
    let ready = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        ports.iter().all(|p| one(*p))
    });
    if !ready {
        let _ = child.kill();
        eprintln!("flint did not answer on every socket");
        std::process::exit(1);
    }
    let _daemon = Daemon(child);
    println!(
        "\n## Accept=yes throughput ({clients} concurrent clients, {rounds} rounds of {seconds} s \
         per chain, the chains taking turns, each round starting with the next chain; one /bin/echo per connection)\n"
    );
    println!(
        "Medians over the rounds; the loss is the median of each round's ratio to the \
         0-plugin run of the same round, so that the machine's drift between rounds cancels.\n"
    );
    // rates[chain][round]
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
    let mut failures = vec![0u64; specs.len()];
    // Each round starts with the next chain: whichever is measured first in
    // a round runs a few percent faster on a small VM (the machine has been
    // idle for a moment), which must not favour one chain.
    for round in 0..rounds {
        let n = ports.len();
        for k in 0..n {
            let i = (usize::try_from(round).unwrap_or(0) + k) % n;
            let (rate, failed) = hammer(ports[i], clients, seconds);
            rates[i].push(rate);
            failures[i] += failed;
        }
    }
    println!("| chain | connections/s | vs 0 plugins |\n| --- | ---: | ---: |");
    for (i, (label, _)) in specs.iter().enumerate() {
        let ratios: Vec<f64> = rates[i]
            .iter()
            .zip(&rates[0])
            .map(|(r, base)| if *base > 0.0 { r / base } else { 0.0 })
            .collect();
        let note = if failures[i] > 0 {
            format!(" ({} failed)", failures[i])
        } else {
            String::new()
        };
        println!(
            "| {label} | {:.0}{note} | {:+.1}% |",
            median(&rates[i]),
            (median(&ratios) - 1.0) * 100.0
        );
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// `clients` threads connect to `port` one connection after another for
/// `seconds`; the rate of completed connections, and how many failed.
fn hammer(port: u16, clients: u64, seconds: u64) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if one(port) {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let count = u32::try_from(done.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
    (
        f64::from(count) / started.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed),
    )
}

fn main() {
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        usage();
    }
    let decisions = arg("--decisions", 5000);
    let seconds = arg("--seconds", 2);
    let clients = arg("--clients", 4);
    let rounds = arg("--rounds", 5).max(1);
    let warm = arg("--warm", u64::from(HostOptions::default().warm_instances));
    decision_costs(decisions, warm);
    throughput(seconds, clients, rounds);
}
