//! `flint plugin check`: validate a component before a unit uses it.
//!
//! Checking loads the plugin exactly as the daemon would (interface version,
//! imports, linking, `init` with the given configuration) and then runs one
//! decision on a synthetic TCP connection from 127.0.0.1, so that a plugin
//! that traps on every request is caught as well. The report says what the
//! component is, what it imports, and what it decided.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::PolicyError;
use super::chain::{Chain, ChainOutcome};
use super::host::{HostOptions, PluginSpec, PolicyHost};
use super::types::{ActivationMode, ConnectionCounts, Request, SocketAddress, Transport};

/// What `flint plugin check` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginReport {
    pub name: String,
    pub path: PathBuf,
    pub size_bytes: u64,
    pub sha256: String,
    /// The `flint:policy` version the plugin was built against.
    pub interface_version: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// Compile (or cache load) plus `init`.
    pub load_time: Duration,
    /// The decision on the synthetic request.
    pub sample: ChainOutcome,
    /// Time of that decision, fresh instance and `init` included.
    pub sample_time: Duration,
}

/// The request a check decides on: a TCP connection from 127.0.0.1:40000 to
/// 127.0.0.1:8080 on `check.socket`.
pub fn sample_request() -> Request {
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000));
    Request {
        socket_unit: "check.socket".into(),
        listen_address: "127.0.0.1:8080".into(),
        fd_name: "check.socket".into(),
        transport: Transport::Stream,
        mode: ActivationMode::PerConnection,
        local_address: Some(SocketAddress::Ip(local)),
        peer_address: Some(SocketAddress::Ip(peer)),
        peer_credentials: None,
        active_connections: ConnectionCounts::default(),
        target_service: "check@0-127.0.0.1:8080-127.0.0.1:40000.service".into(),
        environment: vec![("PATH".into(), "/usr/bin:/bin".into())],
        peeked: None,
    }
}

/// Validates the component at `path` with `config` on a private host (no
/// cache, one slot, a 1 s timeout, the default memory limit) and reports on
/// it. A load failure is the error; a
/// failure of the sample decision is in the report.
pub fn check_plugin(path: &Path, config: &[(String, String)]) -> Result<PluginReport, PolicyError> {
    let host = PolicyHost::with_options(HostOptions {
        cache_dir: None,
        max_concurrent_decisions: 1,
        warm_instances: 0,
        ..HostOptions::default()
    })?;
    let mut spec = PluginSpec::new(path);
    spec.config = config.to_vec();
    // Generous, so that a slow or loaded machine does not fail the check;
    // the report shows the time actually taken.
    spec.timeout = Duration::from_secs(1);
    host.check(spec)
}

impl PolicyHost {
    /// Loads `spec` as the daemon would and reports on it (see
    /// [`check_plugin`]).
    pub fn check(&self, spec: PluginSpec) -> Result<PluginReport, PolicyError> {
        let size_bytes = std::fs::metadata(&spec.path).map_or(0, |m| m.len());
        let plugin = self.load(spec)?;
        let chain = Chain::new(vec![plugin.clone()]);
        let started = Instant::now();
        let sample = chain.decide(&sample_request());
        let sample_time = started.elapsed();
        Ok(PluginReport {
            name: plugin.name().to_string(),
            path: plugin.path().to_path_buf(),
            size_bytes,
            sha256: plugin.sha256().to_string(),
            interface_version: plugin.interface_version().to_string(),
            imports: plugin.inner.interface.imports.clone(),
            exports: plugin.inner.interface.exports.clone(),
            load_time: plugin.load_time(),
            sample,
            sample_time,
        })
    }
}

impl fmt::Display for PluginReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plugin:     {} ({})", self.name, self.path.display())?;
        writeln!(
            f,
            "size:       {} bytes, sha256 {}",
            self.size_bytes, self.sha256
        )?;
        writeln!(f, "interface:  flint:policy@{}", self.interface_version)?;
        writeln!(f, "imports:    {}", list(&self.imports))?;
        writeln!(f, "exports:    {}", list(&self.exports))?;
        writeln!(f, "load+init:  {:?}", self.load_time)?;
        writeln!(
            f,
            "sample:     {:?} in {:?}",
            self.sample.verdict, self.sample_time
        )?;
        for edit in &self.sample.env_edits {
            writeln!(f, "  env:      {edit:?}")?;
        }
        for event in &self.sample.events {
            writeln!(f, "  event:    {:?}", event.kind)?;
        }
        Ok(())
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}
