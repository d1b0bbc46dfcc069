//! The engine, the loading of plugins, and one plugin call.
//!
//! [`PolicyHost`] holds the process's single wasmtime [`Engine`] (fuel
//! metering, pooling allocator), the strict linker and the compiled
//! cache. A [`Plugin`] is a validated, pre-instantiated component with its
//! configuration, its host store and its counters; it is cheap to clone and
//! safe to share between threads.
//!
//! Every decision runs in a fresh instance: a new [`Store`] with the
//! plugin's memory cap and a deadline, instantiated from the
//! `InstancePre`, given `init(config)`, then `decide(request)` once, then
//! dropped. No instance ever sees two requests, so nothing a plugin keeps in
//! its memory survives a decision; state lives in the host store.
//!
//! Instantiation and `init` cost tens of microseconds, more than `decide`.
//! So that this is not paid while a connection waits, each plugin keeps a
//! few *warm* instances: created and initialised ahead of time by the
//! `flint-warm` thread, each used for exactly one decision and then
//! discarded, and replaced in the background. A decision that finds no warm
//! instance (a burst faster than the refill, or a plugin whose `init` fails)
//! takes the cold path: all steps inline. Both paths give the same result.
//!
//! Each live instance holds one slot of the pooling allocator (the gate);
//! warm instances may take at most half of the slots, shared evenly
//! between the loaded plugins (so that one plugin's pool never starves the
//! next one's), and decisions never wait for them. Any error is classified into a [`PluginFailure`]; nothing
//! here panics on what a plugin does.
//!
//! Every call into a plugin is asynchronous: the wasm runs on a fiber and
//! yields to whoever polls it every [`YIELD_FUEL`] units of fuel; each time
//! it does, the poller reads the clock and drops the call once its timeout
//! is past ([`bounded`]). `flint run` decides on its event loop this way,
//! with no hand-off to another thread, and a plugin that spins shares the
//! loop with the other sockets instead of holding it. Synchronous callers
//! (loading, the `flint-warm` thread, tests) drive the same futures with
//! [`block_on`]. Fuel rather than wasmtime's epochs: an epoch deadline
//! needs a thread that advances the epoch, and under a steady stream of
//! decisions its wake-ups every 2 ms cost more than the fuel checks in the
//! compiled plugin (measured: about 20 µs of CPU per decision at 1,500
//! decisions a second on two CPUs). Used instances wait on their plugin once the
//! caller is done with the decision ([`Spent`]); the `flint-warm` thread
//! frees them and makes their replacements when it is woken, once half of
//! a plugin's warm instances are used (see `PluginInner::tend`).

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::component::{
    Component, ComponentExportIndex, Func, HasSelf, Instance, InstancePre, Linker, TypedFunc,
};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, Trap,
};

use super::PolicyError;
use super::bindings::flint::policy::{clock, log, store, types as wit};
use super::bindings::{Policy, PolicyIndices};
use super::cache::{Cache, CacheStatus, sha256_hex};
use super::kv::{KvError, KvLimits, KvStore};
use super::types::{MAX_REASON_LEN, truncate};

/// Bytes of each pool slot's memory and tables kept resident between
/// instances (see `with_options`).
const KEEP_RESIDENT: usize = 2 << 20;

/// Instances whose memory is decommitted together (see `with_options`).
const DECOMMIT_BATCH: usize = 8;

/// Fuel a plugin call burns between two yields to its caller (about half
/// a millisecond of wasm on a current CPU): the granularity of plugin
/// timeouts, and how long a spinning plugin holds flint's event loop at
/// most before other tasks run.
const YIELD_FUEL: u64 = 500_000;
/// How long after a plugin is loaded its first warm instances are made.
const FIRST_FILL_DELAY: Duration = Duration::from_millis(50);
/// Messages one call may log; later ones are dropped.
const MAX_LOGS_PER_CALL: u32 = 32;
/// Longest logged message, in bytes.
const MAX_LOG_LEN: usize = 1024;
/// The interfaces a plugin may import, without their `@version`.
const ALLOWED_IMPORTS: &[&str] = &[
    "flint:policy/types",
    "flint:policy/log",
    "flint:policy/clock",
    "flint:policy/store",
];
const HANDLER: &str = "flint:policy/handler";

/// What happens to a connection when a plugin fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailMode {
    /// Skip the plugin: the chain goes on as if it had allowed.
    Open,
    /// Deny the connection.
    #[default]
    Closed,
}

impl fmt::Display for FailMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailMode::Open => "open",
            FailMode::Closed => "closed",
        })
    }
}

/// How a plugin call went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFailure {
    /// The call ran past the plugin's timeout and was interrupted.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The plugin tried to grow its memory past its limit.
    #[error("exceeded its memory limit of {0} bytes")]
    MemoryLimit(u64),
    /// The plugin overflowed its stack.
    #[error("overflowed its stack")]
    StackOverflow,
    /// The plugin trapped (`unreachable`, a panic, a division by zero...).
    /// `panic` holds the panic message if the plugin logged one.
    #[error("trapped: {message}{}", panic.as_ref().map(|p| format!(" ({p})")).unwrap_or_default())]
    Trap {
        message: String,
        panic: Option<String>,
    },
    /// The plugin's result could not be read (a pointer out of bounds, an
    /// invalid discriminant, a string that is not UTF-8...).
    #[error("returned an invalid result: {0}")]
    InvalidResult(String),
    /// The result was read, but makes no sense (a route to something that
    /// is not a service unit).
    #[error("returned an invalid decision: {0}")]
    InvalidDecision(String),
    /// `init` refused the configuration in a fresh instance.
    #[error("init refused the configuration: {0}")]
    InitRejected(String),
    /// The instance could not be created.
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
}

/// Settings of the host, fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Where compiled plugins are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Instances that may be alive at once (decisions in progress, warm
    /// and used ones); a decision that finds no free slot waits for one.
    /// Each slot reserves address space up front: `max_memory_limit` for
    /// each of its memories.
    pub max_concurrent_decisions: u32,
    /// The largest memory limit a plugin may be given, in bytes.
    pub max_memory_limit: u64,
    /// Initialised instances each plugin keeps ready (see the module
    /// documentation); 0 runs every decision on the cold path.
    pub warm_instances: u32,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            cache_dir: super::cache::default_dir(),
            max_concurrent_decisions: 64,
            max_memory_limit: 256 * 1024 * 1024,
            warm_instances: 8,
        }
    }
}

/// How to load one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// The name used in logs and events.
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// Configuration pairs passed to `init`, in order.
    pub config: Vec<(String, String)>,
    pub fail_mode: FailMode,
    /// Wall-clock limit of one call (`init` plus `decide`).
    pub timeout: Duration,
    /// Limit of the plugin's linear memory, in bytes.
    pub memory_limit: u64,
    /// Bounds of the plugin's host store.
    pub store_limits: KvLimits,
}

impl PluginSpec {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(20);
    pub const DEFAULT_MEMORY_LIMIT: u64 = 16 * 1024 * 1024;

    /// A spec with the defaults: named after the file's stem, no
    /// configuration, fail closed, 20 ms, 16 MiB.
    pub fn new(path: impl Into<PathBuf>) -> PluginSpec {
        let path = path.into();
        let name = path.file_stem().map_or_else(
            || "plugin".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        PluginSpec {
            name,
            path,
            config: Vec::new(),
            fail_mode: FailMode::default(),
            timeout: Self::DEFAULT_TIMEOUT,
            memory_limit: Self::DEFAULT_MEMORY_LIMIT,
            store_limits: KvLimits::default(),
        }
    }

    #[must_use]
    pub fn config<K: Into<String>, V: Into<String>>(mut self, key: K, value: V) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    #[must_use]
    pub fn fail_mode(mut self, mode: FailMode) -> Self {
        self.fail_mode = mode;
        self
    }

    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

/// Counters of one plugin's decisions since it was loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginStats {
    pub allowed: u64,
    pub denied: u64,
    pub routed: u64,
    /// Calls that failed (and were resolved by the fail mode).
    pub failed: u64,
    /// Environment edits dropped because they touched protected variables
    /// or were malformed.
    pub edits_refused: u64,
    /// Decisions that ran in a warm instance (the rest were cold).
    pub warm: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) allowed: AtomicU64,
    pub(crate) denied: AtomicU64,
    pub(crate) routed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) edits_refused: AtomicU64,
    pub(crate) warm: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> PluginStats {
        PluginStats {
            allowed: self.allowed.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
            routed: self.routed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            edits_refused: self.edits_refused.load(Ordering::Relaxed),
            warm: self.warm.load(Ordering::Relaxed),
        }
    }
}

/// Counts live instances against the pooling allocator's slots.
#[derive(Debug)]
struct Gate {
    /// One permit per pool slot. An async semaphore, so that a decision on
    /// flint's event loop waits for a slot without blocking the loop.
    slots: Arc<tokio::sync::Semaphore>,
    max: u32,
    /// Warm instances alive; at most `max / 2`.
    warm: AtomicUsize,
    /// Plugins loaded (or being loaded), which share the warm slots.
    plugins: AtomicUsize,
}

/// One pool slot, held by a live instance.
struct Slot(#[allow(dead_code, reason = "held for its Drop")] tokio::sync::OwnedSemaphorePermit);

impl Gate {
    /// Waits for a free slot.
    async fn acquire(&self) -> Result<Slot, PluginFailure> {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map(Slot)
            .map_err(|_| PluginFailure::Instantiate("the plugin host is shutting down".into()))
    }

    /// A free slot, if there is one now.
    fn try_acquire(&self) -> Option<Slot> {
        self.slots.clone().try_acquire_owned().ok().map(Slot)
    }

    /// A slot for a warm instance, if one is free and warm instances hold
    /// fewer than half of them.
    fn try_acquire_warm(&self) -> Option<Slot> {
        let cap = usize::try_from(self.max / 2).unwrap_or(usize::MAX);
        if self.warm.load(Ordering::Acquire) >= cap {
            return None;
        }
        self.try_acquire()
    }

    /// How many warm instances each plugin keeps, at most `wanted`: the
    /// warm half of the slots split evenly between the loaded plugins,
    /// and at least one each.
    fn warm_share(&self, wanted: usize) -> usize {
        let cap = usize::try_from(self.max / 2).unwrap_or(usize::MAX);
        let plugins = self.plugins.load(Ordering::Acquire).max(1);
        wanted.min((cap / plugins).max(1))
    }
}

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    linker: Linker<CallState>,
    cache: Cache,
    gate: Arc<Gate>,
    /// Plugins whose warm instances need topping up, to the `flint-warm`
    /// thread. The thread ends when this sender is dropped.
    refill: mpsc::Sender<Chore>,
    warm_instances: usize,
    clock_origin: Instant,
    max_memory_limit: u64,
}

/// The policy plugin host: one per process.
#[derive(Clone)]
pub struct PolicyHost {
    inner: Arc<HostInner>,
}

impl fmt::Debug for PolicyHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyHost")
            .field("cache_dir", &self.inner.cache.dir())
            .field("max_concurrent_decisions", &self.inner.gate.max)
            .finish_non_exhaustive()
    }
}

impl PolicyHost {
    /// A host with default options, caching compiled plugins in `cache_dir`
    /// or, when `None`, in the default directory (see [`HostOptions`]).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<PolicyHost, PolicyError> {
        let mut options = HostOptions::default();
        if cache_dir.is_some() {
            options.cache_dir = cache_dir;
        }
        PolicyHost::with_options(options)
    }

    pub fn with_options(options: HostOptions) -> Result<PolicyHost, PolicyError> {
        let slots = options.max_concurrent_decisions.max(1);
        let max_memory = usize::try_from(options.max_memory_limit)
            .map_err(|_| PolicyError::Engine("max_memory_limit too large".into()))?;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .max_core_instances_per_component(32)
            .total_core_instances(slots.saturating_mul(32))
            .max_memories_per_component(4)
            .total_memories(slots.saturating_mul(4))
            .max_tables_per_component(8)
            .total_tables(slots.saturating_mul(8))
            .max_memory_size(max_memory)
            // Used instances give their memory back in batches: each
            // decommit is an madvise whose TLB shootdown interrupts every
            // CPU flint runs on, which costs more than the decision.
            .decommit_batch_size(DECOMMIT_BATCH)
            // What a used instance touched is reset in place (PAGEMAP_SCAN
            // finds those pages, Linux 6.7+) instead of being given back and
            // faulted in again by the next instance: no madvise, no TLB
            // shootdown, no page faults, up to this much per slot.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto)
            // Every call runs on a fiber stack of the pool (see
            // `PluginInner::decide`); one per slot.
            .total_stacks(slots);
        let mut config = Config::new();
        config
            // Calls yield to their caller every YIELD_FUEL units of fuel,
            // and the caller reads the clock then (see `bounded`): timeouts
            // with no thread ticking beside the wasm.
            .consume_fuel(true)
            // Function tables are filled at first use: an instance makes
            // one decision and calls through few of its table's entries,
            // while filling all of them when it is created (a function
            // lookup each) was a tenth of the flint-warm thread's time. The
            // table pages stay resident between instances
            // (`table_keep_resident`), so a first use costs no page fault.
            .table_lazy_init(true)
            .max_wasm_stack(512 * 1024)
            // The fiber stack holds the wasm stack and the host calls above it.
            .async_stack_size(1 << 20)
            // Bounds are checked by the compiled code, not by guard pages:
            // with guard pages every instance whose plugin grew its memory
            // costs an `mprotect` back to the initial size when its slot is
            // reused, and that TLB shootdown interrupts every CPU flint runs
            // on (measured: a quarter of the refill thread's time). The
            // checks cost nothing noticeable in code this small.
            .signals_based_traps(false)
            .memory_guard_size(0)
            .memory_reservation(u64::try_from(max_memory).unwrap_or(u64::MAX))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| PolicyError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        Policy::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
            .map_err(|e| PolicyError::Engine(format!("{e:#}")))?;

        let (refill, requests) = mpsc::channel();
        thread::Builder::new()
            .name("flint-warm".into())
            .spawn(move || run_refill(&requests))
            .map_err(|e| PolicyError::Engine(format!("cannot start the refill thread: {e}")))?;
        let cache = Cache::open(&engine, options.cache_dir);
        Ok(PolicyHost {
            inner: Arc::new(HostInner {
                gate: Arc::new(Gate {
                    slots: Arc::new(tokio::sync::Semaphore::new(
                        usize::try_from(slots).unwrap_or(usize::MAX),
                    )),
                    max: slots,
                    warm: AtomicUsize::new(0),
                    plugins: AtomicUsize::new(0),
                }),
                refill,
                warm_instances: usize::try_from(options.warm_instances).unwrap_or(0),
                engine,
                linker,
                cache,
                clock_origin: Instant::now(),
                max_memory_limit: options.max_memory_limit,
            }),
        })
    }

    /// The cache directory in use, if the cache is on.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.inner.cache.dir()
    }

    /// Loads a plugin: reads and compiles (or fetches from the cache) the
    /// component, checks it against the interface, links it, and runs its
    /// `init` once with the spec's configuration.
    pub fn load(&self, spec: PluginSpec) -> Result<Plugin, PolicyError> {
        let started = Instant::now();
        let name = spec.name.clone();
        let invalid = |message: String| PolicyError::InvalidSpec {
            name: name.clone(),
            message,
        };
        if spec.timeout < Duration::from_millis(1) || spec.timeout > Duration::from_mins(1) {
            return Err(invalid(format!(
                "timeout {:?} is outside 1 ms..60 s",
                spec.timeout
            )));
        }
        if spec.memory_limit < 64 * 1024 || spec.memory_limit > self.inner.max_memory_limit {
            return Err(invalid(format!(
                "memory limit {} is outside 64 KiB..{} bytes",
                spec.memory_limit, self.inner.max_memory_limit
            )));
        }
        let memory_limit = usize::try_from(spec.memory_limit)
            .map_err(|_| invalid("memory limit too large".into()))?;

        let wasm = std::fs::read(&spec.path).map_err(|source| PolicyError::Read {
            name: name.clone(),
            path: spec.path.clone(),
            source,
        })?;
        if wasm.starts_with(b"\0asm\x01\0\0\0") {
            return Err(PolicyError::NotAComponent {
                name,
                path: spec.path.clone(),
            });
        }
        let wasm_sha256 = sha256_hex(&wasm);
        let (component, cache_status) = self
            .inner
            .cache
            .component(&self.inner.engine, &wasm, &wasm_sha256)
            .map_err(|e| PolicyError::Compile {
                name: name.clone(),
                path: spec.path.clone(),
                message: format!("{e:#}"),
            })?;
        let interface = check_interface(&self.inner.engine, &component, &name)?;
        let link_error = |e: wasmtime::Error| PolicyError::Link {
            name: name.clone(),
            message: format!("{e:#}"),
        };
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(link_error)?;
        let indices = PolicyIndices::new(&instance_pre).map_err(link_error)?;
        let exports = Exports::find(&instance_pre).map_err(link_error)?;

        // Counted until the plugin is dropped (`Drop for PluginInner`).
        self.inner.gate.plugins.fetch_add(1, Ordering::AcqRel);
        let plugin = Plugin {
            inner: Arc::new_cyclic(|me| PluginInner {
                me: me.clone(),
                warm: Mutex::new(Vec::new()),
                retired: Mutex::new(Vec::new()),
                refill_queued: AtomicBool::new(false),
                warm_paused_until: Mutex::new(None),
                host: self.inner.clone(),
                name: Arc::from(spec.name.as_str()),
                path: spec.path,
                config: spec.config,
                fail_mode: spec.fail_mode,
                timeout: spec.timeout,
                memory_limit,
                memory_limit_bytes: spec.memory_limit,
                pre: instance_pre,
                indices,
                exports,
                kv: Arc::new(KvStore::new(spec.store_limits)),
                counters: Counters::default(),
                cache_status,
                wasm_sha256,
                interface,
                load_time: OnceLock::new(),
            }),
        };
        match plugin.inner.check_init() {
            Ok(()) => {}
            Err(PluginFailure::InitRejected(message)) => {
                return Err(PolicyError::InitRejected { name, message });
            }
            Err(failure) => return Err(PolicyError::InitFailed { name, failure }),
        }
        let _ = plugin.inner.load_time.set(started.elapsed());
        tracing::info!(
            plugin = %plugin.name(),
            cache = ?plugin.cache_status(),
            elapsed = ?plugin.load_time(),
            "policy plugin loaded"
        );
        // The first warm instances are made a moment later: at start flint
        // loads every socket's plugins one after another, and making
        // instances of this one beside the next one's loading slows both.
        *plugin
            .inner
            .warm_paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + FIRST_FILL_DELAY);
        plugin.inner.queue_refill();
        Ok(plugin)
    }
}

/// What a component imports and exports, checked against the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterfaceInfo {
    /// The version of `flint:policy/handler` it exports, e.g. `0.1.0`.
    pub(crate) version: String,
    pub(crate) imports: Vec<String>,
    pub(crate) exports: Vec<String>,
}

/// Whether `version` is a 0.1.x release this host can serve.
fn compatible(version: &str) -> bool {
    version
        .strip_prefix("0.1.")
        .is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()))
}

fn check_interface(
    engine: &Engine,
    component: &Component,
    name: &str,
) -> Result<InterfaceInfo, PolicyError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let handler = exports.iter().find_map(|e| {
        let (iface, version) = e.split_once('@').unwrap_or((e.as_str(), ""));
        (iface == HANDLER).then(|| version.to_string())
    });
    let version = match handler {
        Some(v) if compatible(&v) => v,
        Some(v) => {
            return Err(PolicyError::InterfaceVersion {
                name: name.to_string(),
                found: if v.is_empty() {
                    "(unversioned)".into()
                } else {
                    v
                },
            });
        }
        None => {
            return Err(PolicyError::MissingHandler {
                name: name.to_string(),
                exports: if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                },
            });
        }
    };
    let forbidden: Vec<&str> = imports
        .iter()
        .map(String::as_str)
        .filter(|i| {
            let (iface, v) = i.split_once('@').unwrap_or((i, ""));
            !(ALLOWED_IMPORTS.contains(&iface) && compatible(v))
        })
        .collect();
    if !forbidden.is_empty() {
        return Err(PolicyError::ForbiddenImports {
            name: name.to_string(),
            imports: forbidden.join(", "),
        });
    }
    Ok(InterfaceInfo {
        version,
        imports,
        exports,
    })
}

/// A loaded plugin. Clones share the instance template, the host store and
/// the counters.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

pub(crate) struct PluginInner {
    me: Weak<PluginInner>,
    /// Initialised instances, each for one decision.
    warm: Mutex<Vec<Warm>>,
    /// Used instances, dropped by the `flint-warm` thread in batches.
    retired: Mutex<Vec<Warm>>,
    /// A refill request is on its way to the `flint-warm` thread.
    refill_queued: AtomicBool,
    /// No refill until then: just after the load, and for a second after a
    /// warm instance failed to initialise.
    warm_paused_until: Mutex<Option<Instant>>,
    host: Arc<HostInner>,
    name: Arc<str>,
    path: PathBuf,
    config: Vec<(String, String)>,
    pub(crate) fail_mode: FailMode,
    timeout: Duration,
    memory_limit: usize,
    memory_limit_bytes: u64,
    pre: InstancePre<CallState>,
    /// The generated bindings' view of the exports: checks their types.
    indices: PolicyIndices,
    /// The same exports by index, for instances after the first.
    exports: Exports,
    kv: Arc<KvStore>,
    pub(crate) counters: Counters,
    cache_status: CacheStatus,
    wasm_sha256: String,
    pub(crate) interface: InterfaceInfo,
    load_time: OnceLock<Duration>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name())
            .field("path", &self.inner.path)
            .field("fail_mode", &self.inner.fail_mode)
            .field("timeout", &self.inner.timeout)
            .field("memory_limit", &self.inner.memory_limit)
            .field("cache", &self.inner.cache_status)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn path(&self) -> &std::path::Path {
        &self.inner.path
    }

    pub fn fail_mode(&self) -> FailMode {
        self.inner.fail_mode
    }

    /// Whether the compiled component came from the cache.
    pub fn cache_status(&self) -> CacheStatus {
        self.inner.cache_status
    }

    /// sha256 of the component file, in hex.
    pub fn sha256(&self) -> &str {
        &self.inner.wasm_sha256
    }

    /// The interface version the plugin was built against.
    pub fn interface_version(&self) -> &str {
        &self.inner.interface.version
    }

    /// Time to load the plugin, `init` included.
    pub fn load_time(&self) -> Duration {
        self.inner.load_time.get().copied().unwrap_or_default()
    }

    pub fn stats(&self) -> PluginStats {
        self.inner.counters.snapshot()
    }

    /// The plugin's host store.
    pub fn store(&self) -> &KvStore {
        &self.inner.kv
    }

    /// Warm instances ready now.
    pub fn warm_ready(&self) -> usize {
        self.inner.lock_warm().len()
    }
}

/// The instances a chain used. Dropping it puts them on their plugins'
/// lists of used instances, for the `flint-warm` thread to free (see
/// `PluginInner::tend`). A caller on an event loop holds it until the work
/// the decision was for is under way.
#[derive(Default)]
pub struct Spent {
    used: Vec<(Weak<PluginInner>, Warm)>,
}

impl fmt::Debug for Spent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spent")
            .field("instances", &self.used.len())
            .finish_non_exhaustive()
    }
}

impl Spent {
    /// Hands the instances used so far to their plugins' retired lists, and
    /// wakes the `flint-warm` thread when a plugin runs low on warm
    /// instances (or at once with `force`).
    fn flush(&mut self, force: bool) {
        let mut plugins: Vec<Arc<PluginInner>> = Vec::new();
        for (weak, warm) in std::mem::take(&mut self.used) {
            // A plugin that is gone takes its instance with it, here.
            let Some(plugin) = weak.upgrade() else {
                continue;
            };
            plugin.lock_retired().push(warm);
            if !plugins.iter().any(|p| Arc::ptr_eq(p, &plugin)) {
                plugins.push(plugin);
            }
        }
        for plugin in plugins {
            plugin.tend(force);
        }
    }
}

impl Drop for Spent {
    fn drop(&mut self) {
        self.flush(false);
    }
}

/// Whether the types of a new instance's exports still need checking.
#[derive(Debug, Clone, Copy)]
enum Checked {
    /// The first instance, at load: checked against the WIT by the
    /// generated bindings.
    Yes,
    /// Every later one: the same component, so the same types; looked up
    /// by index. (The check walks every type of the request and the
    /// decision: about a tenth of what making an instance costs.)
    Already,
}

/// Where `init` and `decide` are among the component's exports.
#[derive(Debug, Clone, Copy)]
struct Exports {
    init: ComponentExportIndex,
    decide: ComponentExportIndex,
}

impl Exports {
    /// Looks the exports up as the generated bindings do.
    fn find(pre: &InstancePre<CallState>) -> Result<Exports, wasmtime::Error> {
        const HANDLER: &str = "flint:policy/handler@0.1.0";
        let component = pre.component();
        let handler = component
            .get_export_index(None, HANDLER)
            .ok_or_else(|| wasmtime::format_err!("no exported instance named `{HANDLER}`"))?;
        let lookup = |name: &str| {
            component
                .get_export_index(Some(&handler), name)
                .ok_or_else(|| wasmtime::format_err!("`{HANDLER}` does not export `{name}`"))
        };
        Ok(Exports {
            init: lookup("init")?,
            decide: lookup("decide")?,
        })
    }

    /// The exports of `instance`, an instance of the component whose
    /// export types the load checked.
    fn handler(&self, store: &mut Store<CallState>, instance: &Instance) -> Option<Handler> {
        Some(Handler {
            init: instance.get_func(&mut *store, self.init)?,
            decide: instance.get_func(&mut *store, self.decide)?,
        })
    }
}

/// The two exported functions of one instance.
#[derive(Debug, Clone, Copy)]
struct Handler {
    init: Func,
    decide: Func,
}

impl Handler {
    fn of(policy: &Policy) -> Handler {
        let handler = policy.flint_policy_handler();
        Handler {
            init: *handler.func_init().func(),
            decide: *handler.func_decide().func(),
        }
    }

    async fn call_init(
        &self,
        store: &mut Store<CallState>,
        config: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>> {
        // SAFETY: `init`'s type was checked against this signature when the
        // plugin was loaded (`Checked::Yes`), and every instance comes from
        // the same component.
        let init = unsafe {
            TypedFunc::<(&[(String, String)],), (Result<(), String>,)>::new_unchecked(self.init)
        };
        let (result,) = init.call_async(store, (config,)).await?;
        Ok(result)
    }

    async fn call_decide(
        &self,
        store: &mut Store<CallState>,
        request: &wit::Request,
    ) -> wasmtime::Result<wit::Decision> {
        // SAFETY: as in `call_init`.
        let decide =
            unsafe { TypedFunc::<(&wit::Request,), (wit::Decision,)>::new_unchecked(self.decide) };
        let (decision,) = decide.call_async(store, (request,)).await?;
        Ok(decision)
    }
}

/// An instance that has run `init` and waits for its one decision.
struct Warm {
    store: Store<CallState>,
    handler: Handler,
    /// Released after the instance (declared last, dropped last).
    _slot: Slot,
}

impl Drop for PluginInner {
    fn drop(&mut self) {
        let n = self.lock_warm().len();
        self.host.gate.warm.fetch_sub(n, Ordering::AcqRel);
        self.host.gate.plugins.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The `flint-warm` thread: tops up the warm instances of the plugins it is
/// sent, until the host is dropped.
fn run_refill(chores: &mpsc::Receiver<Chore>) {
    // Plugins whose pool stopped short (no free slot, or a paused refill),
    // tried again after each retired instance and every 100 ms.
    let mut waiting: Vec<Weak<PluginInner>> = Vec::new();
    // Every plugin ever sent here (each is sent once at load), so that one
    // holding more warm instances than its share (made before the others
    // were loaded) can give them back to one that has none.
    let mut known: Vec<Weak<PluginInner>> = Vec::new();
    loop {
        let chore = if waiting.is_empty() {
            match chores.recv() {
                Ok(c) => Some(c),
                Err(_) => return,
            }
        } else {
            match chores.recv_timeout(Duration::from_millis(100)) {
                Ok(c) => Some(c),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        };
        match chore {
            Some(Chore::Refill(weak)) => {
                if !known.iter().any(|w| w.ptr_eq(&weak)) {
                    known.retain(|w| w.strong_count() > 0);
                    known.push(weak.clone());
                }
                if let Some(plugin) = weak.upgrade() {
                    plugin.refill_queued.store(false, Ordering::Release);
                    // Free the used instances' slots first (the refill may
                    // need them), outside the lock deciders push to.
                    let retired = std::mem::take(&mut *plugin.lock_retired());
                    drop(retired);
                    if !plugin.fill() && !waiting.iter().any(|w| w.ptr_eq(&weak)) {
                        waiting.push(weak);
                    }
                }
            }
            None => {}
        }
        if !waiting.is_empty() {
            for plugin in known.iter().filter_map(Weak::upgrade) {
                plugin.trim();
            }
        }
        waiting.retain(|w| w.upgrade().is_some_and(|p| !p.fill()));
    }
}

/// Work for the `flint-warm` thread.
enum Chore {
    /// Drop this plugin's used instances and top up its warm ones.
    /// Returning an instance's memory to the pool costs more than the
    /// decision itself, so it is done off the caller's path.
    Refill(Weak<PluginInner>),
}

#[derive(Clone, Copy)]
enum Stage {
    Instantiate,
    Call,
}

impl PluginInner {
    /// Runs `init` in a fresh instance, as at load: blocks the calling
    /// thread for its run time, bounded by the timeout.
    pub(crate) fn check_init(&self) -> Result<(), PluginFailure> {
        block_on(async {
            let slot = self.host.gate.acquire().await?;
            self.prepare(slot, Checked::Yes).await.map(drop)
        })
    }

    /// One decision in a fresh instance: a warm one when one is ready,
    /// else one created and given `init` here. The wasm runs on a fiber
    /// and yields every [`YIELD_FUEL`] units of fuel, so that on flint's event loop a slow
    /// plugin shares the loop instead of holding it, until its timeout.
    pub(crate) async fn decide(
        &self,
        request: &wit::Request,
        spent: &mut Spent,
    ) -> Result<wit::Decision, PluginFailure> {
        let warm = {
            let mut pool = self.lock_warm();
            let warm = pool.pop();
            if warm.is_some() {
                // Under the lock, so that the refill sees pool and count agree.
                self.host.gate.warm.fetch_sub(1, Ordering::AcqRel);
            }
            warm
        };
        let mut warm = if let Some(warm) = warm {
            self.counters.warm.fetch_add(1, Ordering::Relaxed);
            warm
        } else {
            let slot = if let Some(slot) = self.host.gate.try_acquire() {
                slot
            } else {
                // Used instances may be what fills the pool: let them go
                // before waiting.
                spent.flush(true);
                self.tend(true);
                self.host.gate.acquire().await?
            };
            self.prepare(slot, Checked::Already).await?
        };
        let state = warm.store.data_mut();
        state.memory_exhausted = false;
        state.logs_left = MAX_LOGS_PER_CALL;
        state.last_error = None;
        let deadline = self.arm_deadline(&mut warm.store);
        let result = bounded(deadline, warm.handler.call_decide(&mut warm.store, request)).await;
        let result = match result {
            Some(r) => r.map_err(|e| self.classify(&e, warm.store.data(), Stage::Call)),
            None => Err(PluginFailure::Timeout(self.timeout)),
        };
        spent.used.push((self.me.clone(), warm));
        result
    }

    /// The next call in `store` may run until the plugin's timeout from
    /// now: its deadline, for [`bounded`]. The fuel is topped up, so that
    /// only the clock ends a call.
    fn arm_deadline(&self, store: &mut Store<CallState>) -> Instant {
        // Cannot fail: the engine consumes fuel.
        let _ = store.set_fuel(u64::MAX);
        Instant::now() + self.timeout
    }

    /// A fresh instance in `slot`, after `init`.
    async fn prepare(&self, slot: Slot, checked: Checked) -> Result<Warm, PluginFailure> {
        let host = &self.host;
        let state = CallState {
            limits: StoreLimitsBuilder::new()
                .memory_size(self.memory_limit)
                .instances(64)
                .tables(64)
                .memories(8)
                .trap_on_grow_failure(true)
                .build(),
            memory_exhausted: false,
            kv: self.kv.clone(),
            plugin: self.name.clone(),
            clock_origin: host.clock_origin,
            logs_left: MAX_LOGS_PER_CALL,
            last_error: None,
        };
        let mut store = Store::new(&host.engine, state);
        store.limiter(|s| s);
        // Cannot fail: the engine consumes fuel.
        let _ = store.fuel_async_yield_interval(Some(YIELD_FUEL));
        let deadline = self.arm_deadline(&mut store);
        let instance = bounded(deadline, self.pre.instantiate_async(&mut store))
            .await
            .ok_or(PluginFailure::Timeout(self.timeout))?
            .map_err(|e| self.classify(&e, store.data(), Stage::Instantiate))?;
        let handler = match checked {
            Checked::Yes => self
                .indices
                .load(&mut store, &instance)
                .map(|policy| Handler::of(&policy))
                .map_err(|e| self.classify(&e, store.data(), Stage::Instantiate))?,
            Checked::Already => self
                .exports
                .handler(&mut store, &instance)
                .ok_or_else(|| PluginFailure::Instantiate("exports missing".into()))?,
        };
        let init = bounded(deadline, handler.call_init(&mut store, &self.config))
            .await
            .ok_or(PluginFailure::Timeout(self.timeout))?;
        match init {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                return Err(PluginFailure::InitRejected(truncate(
                    message,
                    MAX_REASON_LEN,
                )));
            }
            Err(e) => return Err(self.classify(&e, store.data(), Stage::Call)),
        }
        Ok(Warm {
            store,
            handler,
            _slot: slot,
        })
    }

    /// Drops the warm instances this plugin holds beyond its share.
    fn trim(&self) {
        let share = self.warm_share();
        let extra: Vec<Warm> = {
            let mut pool = self.lock_warm();
            let keep = pool.len().min(share);
            pool.split_off(keep)
        };
        self.host.gate.warm.fetch_sub(extra.len(), Ordering::AcqRel);
        drop(extra);
    }

    /// How many warm instances this plugin keeps (see [`Gate::warm_share`]).
    fn warm_share(&self) -> usize {
        self.host.gate.warm_share(self.host.warm_instances)
    }

    fn lock_warm(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        self.warm.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_retired(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        self.retired.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the `flint-warm` thread for this plugin when it runs low: at
    /// most half of its warm instances left, or as many used ones waiting
    /// as it keeps warm (or at once with `force`). Under a steady stream of
    /// decisions that is one wake-up for every few decisions instead of
    /// one for each. Also when a quarter of the pool's slots or fewer are
    /// free, so that used instances never keep decisions waiting.
    fn tend(&self, force: bool) {
        let share = self.warm_share();
        let low = self.lock_warm().len() <= share / 2;
        let piled = self.lock_retired().len() >= share.max(1);
        // Few free slots left: what waits here is better given back now.
        let scarce = self.host.gate.slots.available_permits()
            <= usize::try_from(self.host.gate.max / 4).unwrap_or(0);
        if force || low || piled || scarce {
            self.queue_refill();
        }
    }

    /// Asks the `flint-warm` thread to drop this plugin's used instances and
    /// top up its warm ones.
    fn queue_refill(&self) {
        let needed = self.lock_warm().len() < self.warm_share() || !self.lock_retired().is_empty();
        if !needed || self.refill_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if self
            .host
            .refill
            .send(Chore::Refill(self.me.clone()))
            .is_err()
        {
            self.refill_queued.store(false, Ordering::Release);
        }
    }

    /// Creates warm instances up to the host's number, while slots allow;
    /// true when the pool is full. An instance that fails to initialise
    /// pauses the refill for a second: decisions then take the cold path,
    /// which reports the failure.
    fn fill(&self) -> bool {
        let paused = self
            .warm_paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until);
        if paused {
            return false;
        }
        while self.lock_warm().len() < self.warm_share() {
            let Some(slot) = self.host.gate.try_acquire_warm() else {
                return false;
            };
            match block_on(self.prepare(slot, Checked::Already)) {
                Ok(warm) => {
                    let mut pool = self.lock_warm();
                    self.host.gate.warm.fetch_add(1, Ordering::AcqRel);
                    pool.push(warm);
                }
                Err(failure) => {
                    tracing::debug!(plugin = %self.name, "no warm instance: {failure}");
                    *self
                        .warm_paused_until
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) =
                        Some(Instant::now() + Duration::from_secs(1));
                    return false;
                }
            }
        }
        true
    }

    fn classify(&self, err: &wasmtime::Error, state: &CallState, stage: Stage) -> PluginFailure {
        if state.memory_exhausted {
            return PluginFailure::MemoryLimit(self.memory_limit_bytes);
        }
        if let Some(trap) = err.downcast_ref::<Trap>() {
            return match trap {
                Trap::StackOverflow => PluginFailure::StackOverflow,
                other => PluginFailure::Trap {
                    message: other
                        .to_string()
                        .trim_start_matches("wasm trap: ")
                        .to_string(),
                    panic: state.last_error.clone(),
                },
            };
        }
        let message = truncate(format!("{err:#}"), MAX_REASON_LEN);
        match stage {
            Stage::Instantiate => PluginFailure::Instantiate(message),
            Stage::Call => PluginFailure::InvalidResult(message),
        }
    }
}

/// The data of one call's [`Store`]: limits and what the imports need.
struct CallState {
    limits: StoreLimits,
    /// Set when the memory cap refused a growth, to tell that failure apart
    /// from other errors (it is not a `Trap`).
    memory_exhausted: bool,
    kv: Arc<KvStore>,
    plugin: Arc<str>,
    clock_origin: Instant,
    logs_left: u32,
    /// The last error-level message logged (a panic message, from the SDK's
    /// panic hook), reported with a trap.
    last_error: Option<String>,
}

impl ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let r = self.limits.memory_growing(current, desired, maximum);
        if !matches!(r, Ok(true)) {
            self.memory_exhausted = true;
        }
        r
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_exhausted = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl wit::Host for CallState {}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, message: String) {
        let message = truncate(message, MAX_LOG_LEN);
        if matches!(level, log::Level::Error) {
            self.last_error = Some(message.clone());
        }
        if self.logs_left == 0 {
            return;
        }
        self.logs_left -= 1;
        let plugin = &*self.plugin;
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
        if self.logs_left == 0 {
            tracing::warn!(plugin, "further messages of this call dropped");
        }
    }
}

impl clock::Host for CallState {
    fn now(&mut self) -> u64 {
        u64::try_from(self.clock_origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

fn store_error(e: KvError) -> store::StoreError {
    match e {
        KvError::Full => store::StoreError::Full,
        KvError::TooLarge => store::StoreError::TooLarge,
        KvError::NotACounter => store::StoreError::NotACounter,
    }
}

impl store::Host for CallState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.kv.get(&key)
    }

    fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl: Option<u64>,
    ) -> Result<(), store::StoreError> {
        self.kv
            .set(&key, value, ttl.map(Duration::from_nanos))
            .map_err(store_error)
    }

    fn increment(
        &mut self,
        key: String,
        delta: i64,
        ttl: Option<u64>,
    ) -> Result<i64, store::StoreError> {
        self.kv
            .increment(&key, delta, ttl.map(Duration::from_nanos))
            .map_err(store_error)
    }

    fn delete(&mut self, key: String) -> bool {
        self.kv.delete(&key)
    }
}

/// Polls a plugin call until it completes (`Some`), or until it yields
/// (every [`YIELD_FUEL`] units of fuel) after `deadline` (`None`); the
/// call is then dropped, which unwinds its fiber, and its store is never
/// used again.
async fn bounded<F: Future>(deadline: Instant, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending if Instant::now() >= deadline => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await
}

/// Runs `future` to completion on this thread, parking between polls: the
/// synchronous entry to plugin calls (load, the refill thread, callers
/// outside an event loop). Plugin calls wait only for their own yields
/// (which wake the waker at once) and pool slots, which wake it too.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}
