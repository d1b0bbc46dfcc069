//! The policy plugin host: WebAssembly components that decide, before every
//! spawn, whether a connection is allowed, denied or routed to another
//! service, and how the service's environment is rewritten.
//!
//! The contract with plugins is `wit/policy.wit` (`flint:policy@0.1.0`).
//! [`PolicyHost`] owns one wasmtime engine per process: fuel-driven yields
//! for deadlines (a call yields every so much fuel and its caller reads the
//! clock then, so no thread ticks beside the wasm), a
//! pooling allocator sized for the concurrent decisions it admits, and an
//! on-disk cache of compiled components keyed by the component's sha256 and
//! the engine's compatibility hash. [`PolicyHost::load`] validates a plugin
//! against the interface (a wrong version or an import beyond the WIT is
//! refused with a message that says so) and runs its `init` once, so a bad
//! plugin is reported before traffic arrives. A [`Chain`] of plugins decides
//! about one [`Request`] and returns a [`ChainOutcome`].
//!
//! Invariants:
//! - Every decision runs in a fresh instance: no state survives in a plugin
//!   between two decisions except what it puts in its host [`KvStore`].
//! - A plugin that traps, loops, exhausts its memory, overflows its stack or
//!   returns garbage never panics the host and never poisons a later
//!   decision; the plugin's [`FailMode`] decides, and the failure is logged,
//!   counted and returned as a [`PluginEvent`].
//! - A plugin can reach nothing but the WIT's imports: `log`, a monotonic
//!   `clock` and its own bounded `store`. No WASI, no files, no network.
//! - `LISTEN_*` and `NOTIFY_SOCKET` are never edited by a plugin.
//!
//! Blocking: [`Chain::decide_async`] runs the plugins as asynchronous calls on
//! a fiber stack of the pool; they yield every 500,000 units of fuel (about
//! half a millisecond of wasm) and are dropped at the first yield past their
//! timeout (default 20 ms), and waiting for a free slot
//! (more decisions in flight than the pool admits) is an await, so an event
//! loop can run it as one of its tasks (`flint run` does). [`Chain::decide`]
//! and [`Chain::decide_with`] drive the same future on the calling thread and
//! block it for the plugins' run time: tens of microseconds per plugin
//! normally, at most each plugin's timeout when one misbehaves.

mod bindings;
mod cache;
pub(crate) use cache::hex;
mod chain;
mod check;
mod host;
mod kv;
mod types;

#[cfg(test)]
mod tests;

pub use cache::{CacheStatus, sha256_hex};
pub use chain::{Chain, ChainOutcome, PluginEvent, PluginEventKind};
pub use check::{PluginReport, check_plugin};
pub use host::{
    FailMode, HostOptions, Plugin, PluginFailure, PluginSpec, PluginStats, PolicyHost, Spent,
};
pub use kv::{KvError, KvLimits, KvStore};
pub use types::{
    ActivationMode, ConnectionCounts, EnvEdit, PeerCredentials, Request, SocketAddress, Transport,
    Verdict,
};

use std::path::PathBuf;

/// The interface version this host implements. Plugins built against any
/// `0.1.x` load if they use nothing this host lacks.
pub const INTERFACE_VERSION: &str = "0.1.0";

/// Why a plugin could not be loaded, or the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The wasmtime engine could not be configured (for example, the
    /// instance pool could not reserve its address space under `ulimit -v`).
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The plugin file could not be read.
    #[error("plugin {name}: cannot read {}: {source}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is a core module, not a component.
    #[error(
        "plugin {name}: {} is a core WebAssembly module, not a component; \
         turn it into one with wit-component (`wasm-tools component new`)",
        path.display()
    )]
    NotAComponent { name: String, path: PathBuf },
    /// The component does not compile (invalid WebAssembly, unsupported
    /// proposal, ...).
    #[error("plugin {name}: cannot compile {}: {message}", path.display())]
    Compile {
        name: String,
        path: PathBuf,
        message: String,
    },
    /// The component implements another version of the interface.
    #[error(
        "plugin {name}: built for flint:policy@{found}, but this flint speaks \
         flint:policy@{INTERFACE_VERSION} (plugins built for 0.1.x load); \
         rebuild the plugin against this version of the interface"
    )]
    InterfaceVersion { name: String, found: String },
    /// The component does not export the handler interface at all.
    #[error(
        "plugin {name}: does not export flint:policy/handler@{INTERFACE_VERSION} \
         (it exports: {exports})"
    )]
    MissingHandler { name: String, exports: String },
    /// The component imports something beyond the WIT.
    #[error(
        "plugin {name}: imports {imports}, which flint does not offer; a policy \
         plugin may import only flint:policy/log, clock, store and types \
         (a Rust plugin built for wasm32-wasip2 imports WASI through std: \
         build it for wasm32-unknown-unknown and componentize it)"
    )]
    ForbiddenImports { name: String, imports: String },
    /// The component's imports or exports do not match the interface's types
    /// (for example, a function this host does not have).
    #[error("plugin {name}: does not match flint:policy@{INTERFACE_VERSION}: {message}")]
    Link { name: String, message: String },
    /// `init` returned an error for this configuration.
    #[error("plugin {name}: init refused the configuration: {message}")]
    InitRejected { name: String, message: String },
    /// `init` trapped, timed out or exhausted its memory.
    #[error("plugin {name}: init failed: {failure}")]
    InitFailed {
        name: String,
        failure: PluginFailure,
    },
    /// The plugin's settings (timeout, memory limit) are out of range.
    #[error("plugin {name}: {message}")]
    InvalidSpec { name: String, message: String },
}
