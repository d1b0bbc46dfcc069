//! The activation loop: it holds the listening sockets of socket units and
//! starts their services on demand, exactly as systemd's `socket.c` and
//! `service.c` do.
//!
//! One manager owns every socket and service and receives events through a
//! channel: a listener became readable (`Accept=no`), a connection was
//! accepted (`Accept=yes`), a process exited, a restart timer fired, a
//! signal arrived. No state is shared between tasks; the tasks only watch
//! file descriptors and report.
//!
//! Promises: in `Accept=no` mode flint never reads or accepts on a listener,
//! stops watching it while the service runs and re-arms it when the service
//! is gone, so connections queued in the kernel backlog survive a service
//! exit, crash or restart. In `Accept=yes` mode every connection gets its own
//! instance of the template, named as systemd names it, and connections over
//! `MaxConnections=`/`MaxConnectionsPerSource=` are accepted and closed while
//! the socket stays healthy.
//!
//! A socket's policy plugins decide in a task of the event loop, as
//! asynchronous WebAssembly calls that yield every half millisecond or so, so
//! a slow plugin shares the loop until its timeout: the spawn waits (its
//! connection holding its slots, or its `Accept=no` socket disarmed) until
//! the outcome arrives as an event, while every other socket and service
//! goes on. Main processes are spawned on blocking threads, at most one per
//! CPU at a time, in arrival order (`turns`).

mod bus_activation;
mod control;
mod dev_log;
mod jobs;
mod lifecycle;
mod limit;
mod manager_api;
mod path_unit;
pub mod policy;
mod private_socket;
mod socket;
mod timer;
mod transient_api;
pub(crate) use socket::address_text;
mod socket_hooks;
mod step_timers;
mod switch;
mod target;
mod turns;
mod unit_cache;
mod unit_files;

use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::service::exec::{self as exec, SpawnInputs};
use crate::spawn::ExitStatus;
use crate::unit::load::{self, Unit, Value};
use crate::unit::loader::{self, SearchPath};
use crate::unit::name::{UnitName, UnitType};

pub use socket::SocketConfig;

use lifecycle::{ServiceRt, State, signal_group};
use socket::{Peer, SocketRt};

/// Why `flint run` could not start at all. Problems with single units are
/// logged and do not stop the others.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No unit could be started.
    #[error("nothing to run: {0}")]
    Nothing(String),
    /// The async runtime or a signal handler could not be set up.
    #[error("failed to set up the event loop: {0}")]
    Runtime(#[from] std::io::Error),
    /// Another flint runs as this user's manager already.
    #[error(
        "another flint runs as this user's manager ({0}); a second one would take over its sockets. Stop it first (a flint for other units needs its own XDG_RUNTIME_DIR, or --control PATH and units whose sockets are not under %t)"
    )]
    UserManagerRuns(String),
}

/// Events the manager reacts to.
#[derive(Debug)]
enum Event {
    /// A listener of an `Accept=no` socket is readable.
    Readable { socket: usize },
    /// An `Accept=yes` socket accepted a connection.
    Accepted {
        socket: usize,
        listener: usize,
        conn: OwnedFd,
    },
    /// The peek of an accepted connection ended (`PeekBytes=`).
    Peeked {
        socket: usize,
        listener: usize,
        conn: OwnedFd,
        peer: Option<Peer>,
        bytes: Vec<u8>,
    },
    /// A watcher failed on a listener (e.g. POLLHUP).
    ListenerFailed { socket: usize, error: String },
    /// A process of a service exited.
    Exited {
        service: u64,
        pid: i32,
        status: ExitStatus,
    },
    /// A process of a service was spawned (or not) off the loop: the main
    /// process (`state` is `Start`) or a control command.
    Spawned {
        service: u64,
        state: State,
        result: Result<crate::spawn::Child, lifecycle::StartFailure>,
        log: Option<OwnedFd>,
        path: String,
        /// Credentials the spawn's thread made for the run.
        credentials: Option<crate::service::credentials::Credentials>,
        /// Which spawn of the service this is (and whether its run ended
        /// before it came back).
        token: std::sync::Arc<std::sync::atomic::AtomicBool>,
    },
    /// The restart delay of a service is over.
    RestartDue { service: u64 },
    /// The cgroup of a service became empty (see `watch_cgroup_empty`).
    /// `launches` is the service's start it was watched in: an event of
    /// an earlier run is dropped.
    CgroupEmpty { service: u64, launches: u64 },
    /// `OnFailure=`/`OnSuccess=` of a unit (`key`) name units to start.
    StartUnits {
        by: String,
        key: &'static str,
        units: Vec<String>,
    },
    /// The watchdog of a service expired.
    Watchdog { service: u64, generation: u64 },
    /// The step timer of a service fired (start/stop/runtime timeouts).
    Timer { service: u64, generation: u64 },
    /// `JobTimeoutSec=` of a job passed.
    JobTimeout { id: u64, serial: u64 },
    /// The bus watch of a `Type=dbus` service answered: its name has an
    /// owner (`Ok(true)`), the watch was stopped (`Ok(false)`), or the bus
    /// could not be asked.
    BusName {
        service: u64,
        launches: u64,
        name: String,
        result: Result<bool, String>,
    },
    /// Time to look for the `PIDFile=` of a forking service again.
    PidFileDue { service: u64, launches: u64 },
    /// A message arrived on the notify socket.
    Notify(crate::notify::Message),
    /// A syslog message arrived on `--dev-log`'s socket.
    Syslog(crate::syslog::Record),
    /// The bus daemon asks for a unit to be started (D-Bus activation).
    BusActivation { unit: String },
    /// flint took `org.freedesktop.systemd1` on the bus.
    BusActivatorUp {
        activator: bus_activation::Activator,
    },
    /// flint's connection as `org.freedesktop.systemd1` ended, or could
    /// not be made.
    BusActivatorGone { error: String },
    /// A peer of the bus subscribed to the units' changes, the first one.
    BusSubscribed,
    /// A timer unit's wait for its next elapse is over.
    TimerDue { timer: String, generation: u64 },
    /// The wall clock was set.
    ClockChanged,
    /// `/etc/localtime` changed.
    TimezoneChanged,
    /// Something happened to a path a path unit watches (`changed`: to the
    /// path itself, for `PathChanged=`/`PathModified=`).
    PathChanged {
        unit: String,
        generation: u64,
        spec: usize,
        changed: bool,
    },
    /// SIGTERM or SIGINT: stop everything and exit.
    Shutdown,
    /// SIGCHLD: collect the exits of the processes flint spawned, and reap
    /// orphans that were re-parented to flint.
    ChildSignal,
    /// A request on the control socket, and where to send the answer.
    Control {
        request: serde_json::Value,
        reply: tokio::sync::oneshot::Sender<serde_json::Value>,
        /// The fds passed with the request (`systemd-run --pipe`'s stdio).
        fds: Vec<OwnedFd>,
        /// Told once the request's jobs are queued (`"queued": true`).
        queued: Option<tokio::sync::oneshot::Sender<Option<u64>>>,
    },
    /// Watch the listeners of a socket again (after a switch changed them).
    Rewatch { socket: usize },
    /// The grace period of a removed socket's `Accept=yes` instances is over.
    InstancesGrace { socket: usize },
    /// SIGHUP: switch to the unit tree as it is now.
    Hangup,
    /// Wakes the loop (a deadline of a waiting switch answer).
    Tick,
    /// The listeners a socket's stop closed are closed now (one turn of
    /// the loop after the stop): its restart may open them again.
    ListenersClosed { socket: usize },
    /// A spawn waiting for its turn may start now if a running one stalled.
    TurnsDue,
    /// `--watch`: the unit tree changed on disk.
    TreeChanged,
    /// The `ExecStartPre=` (or other `key`) commands of a socket ended.
    SocketHooks {
        name: String,
        key: &'static str,
        result: Result<(), String>,
    },
    /// A socket's plugin chain decided about a spawn.
    Decided {
        socket: usize,
        pending: Pending,
        outcome: crate::policy::ChainOutcome,
    },
}

/// A spawn waiting for its socket's plugin chain.
#[derive(Debug)]
enum Pending {
    /// An accepted connection (`Accept=yes`).
    Connection(Box<PendingConnection>),
    /// An activation of this service (`Accept=no`).
    Activation { service: u64 },
}

/// An accepted connection, named and with its unit loaded.
#[derive(Debug)]
struct PendingConnection {
    conn: OwnedFd,
    peer: Option<Peer>,
    instance: String,
    name: UnitName,
    unit: Unit,
}

/// How far the start of flint's units is, as systemd's boot: what
/// `systemctl is-system-running` says (`starting` until the start's jobs
/// are done) and when `systemd-analyze` says the start finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boot {
    /// The units are loaded and their jobs planned.
    Loading,
    /// The start's sockets open and its jobs run.
    Starting,
    /// Every job of the start was done, at this time: µs since the epoch
    /// and of `CLOCK_MONOTONIC` (`FinishTimestamp=`).
    Finished { realtime: u64, monotonic: u64 },
}

/// The manager: owns every socket and service.
struct Manager {
    search: SearchPath,
    /// Main-process spawns running on blocking threads and waiting.
    turns: turns::Turns,
    /// When the armed [`Event::TurnsDue`] fires, if one is armed.
    turns_check: Option<Instant>,
    /// With `--watch`, the search path the watcher polls (kept equal to
    /// `search`).
    watched: Option<Watched>,
    /// The units named on the command line (empty: what the tree enables),
    /// planned again at every switch.
    requested: Vec<UnitName>,
    /// What the command line or the tree's targets start: pinned as an
    /// active target pins what it wants (`StopWhenUnneeded=`).
    roots: std::collections::HashSet<String>,
    /// The search path's index for per-connection loads.
    units: unit_cache::UnitCache,
    /// The slices whose settings were written, by their cgroup path below
    /// flint's subtree: what their unit said then, and the controllers it
    /// set (reset to the kernel's defaults when it no longer does).
    slices_applied: HashMap<String, (String, Vec<crate::cgroup::Controller>)>,
    sockets: Vec<SocketRt>,
    // The maps the event loop looks into several times per connection hash
    // with rustc-hash's FxHash: SipHash was a twentieth of the loop's time.
    // Their keys are flint's own ids and unit names whose peer-chosen part
    // (an `Accept=yes` instance's addresses) is bounded by MaxConnections=.
    services: FxHashMap<u64, ServiceRt>,
    by_name: FxHashMap<String, u64>,
    next_id: u64,
    tx: mpsc::UnboundedSender<Event>,
    /// The services' step timers ([`lifecycle::ServiceRt::timer`]).
    step_timers: step_timers::StepTimers,
    shutting_down: bool,
    /// Sockets whose stop job waits for the stop jobs of services ordered
    /// after them (their own service, `After=` the socket): the services
    /// stop first, then the listeners close, as systemd orders a stop
    /// transaction. Meanwhile the socket refuses what arrives.
    socket_stops: Vec<(usize, Vec<u64>)>,
    /// Socket stops installed by the transaction being installed, ordered
    /// once all its jobs are in ([`Manager::order_socket_stops`]).
    socket_stops_new: Vec<usize>,
    /// The sockets that were running their start commands as flint
    /// started its units: the services with default dependencies start
    /// after them ([`Manager::sockets_starting_for`]).
    startup_sockets: Vec<String>,
    /// Sockets stopped for a restart whose listeners are still to close
    /// ([`Event::ListenersClosed`]): they open again after that.
    closing_sockets: Vec<usize>,
    /// flint's exit status (`SuccessAction=exit` and friends set it).
    exit_status: u8,
    /// `exit-force`: leave the loop now, stopping nothing.
    exit_now: bool,
    /// Transient services (`systemd-run`) that ended, with when: their
    /// files are gone, their records go after a grace period
    /// ([`Manager::sweep_collected`]), so that `systemd-run --wait` reads
    /// how they ended.
    collected: Vec<(u64, std::time::Instant)>,
    options: RunOptions,
    /// A SIGCHLD came while a spawn was in flight.
    reap_pending: bool,
    /// The processes flint spawned for services, by pid, until they are
    /// reaped ([`Manager::reap_children`]).
    children: FxHashMap<i32, lifecycle::Waited>,
    /// The services whose jobs the control answer being made waits for
    /// (a switch's, or those of `ctl start|stop|restart`), and what for.
    answer_jobs: Vec<u64>,
    /// The socket units the control answer being made waits for: their
    /// `ExecStartPre=`/`ExecStartPost=` (`ctl start x.socket`).
    answer_sockets: Vec<String>,
    answer_kind: switch::WaitFor,
    /// The fds passed with the control request being answered.
    passed_fds: Vec<OwnedFd>,
    /// `systemd-run --pipe`: the caller's stdin, stdout and stderr, by
    /// transient service, given to its processes in place of its own
    /// standard I/O until it has ended.
    transient_stdio: FxHashMap<String, (std::sync::Arc<[OwnedFd; 3]>, Instant)>,
    /// Switch answers waiting for their services to settle.
    waiting: Vec<switch::Waiting>,
    /// During a switch, listeners of removed or changed sockets, with their
    /// options, for a new socket with the same address to take over; what
    /// is left is closed when the switch ends.
    spare: Vec<(socket::OpenListener, crate::listen::SocketOptions)>,
    /// Connections a socket accepted just before a switch removed it (the
    /// accept was still on its way to the loop), with the listener they
    /// came from: the socket that takes the listener over serves them as
    /// it starts listening; they close with the listener otherwise.
    parked: Vec<(crate::listen::ListenKind, OwnedFd)>,
    /// Notify messages whose sender was not known yet (its spawn was in flight).
    pending_notify: Vec<(std::time::Instant, crate::notify::Message)>,
    /// The value of `NOTIFY_SOCKET` for services.
    notify_path: Option<String>,
    /// The syslog socket of `--dev-log` and the task that reads it.
    dev_log_socket: Option<dev_log::Served>,
    /// flint's control socket, which the calls of systemd's manager API
    /// (`systemctl` on the private socket or the user's bus) go through.
    control_node: Option<std::path::PathBuf>,
    /// The notify socket itself, read before a process's exit is reported
    /// (see [`lifecycle::ExitReport`]).
    notify_socket: Option<std::rc::Rc<crate::notify::NotifySocket>>,
    /// The WebAssembly host, created when the first socket with plugins loads.
    host: Option<crate::policy::PolicyHost>,
    /// The pending and running jobs, by service.
    jobs: FxHashMap<u64, jobs::Job>,
    /// A cgroup v2 per service, where flint's own cgroup is writable.
    cgroups: Option<crate::cgroup::Cgroups>,
    /// Socket units whose own commands run (`socket_hooks`), by name.
    hooks: HashMap<String, socket_hooks::SocketHooks>,
    /// Socket units whose start failed before they had listeners (their
    /// `ExecStartPre=` failed, or a listener could not be opened), with
    /// their result; a start that opens them again clears them.
    socket_failures: HashMap<String, &'static str>,
    /// The running pid (0: none) of each socket's stop commands that run
    /// with nothing waiting for them (`socket_hooks`).
    loose_hooks: Vec<std::rc::Rc<socket_hooks::CommandPid>>,
    /// Until every planned socket listens: how many units `flint run`
    /// started, and its `--notify-fd`.
    ready: Option<(usize, Option<i32>)>,
    /// How far the start of flint's units is (`SystemState=`).
    boot: Boot,
    /// The `Accept=yes` templates (by file) whose warnings were logged.
    warned_instances: std::collections::HashSet<Option<std::path::PathBuf>>,
    /// Every unit a loaded service names in `OnFailure=`/`OnSuccess=`: only
    /// their commands look for `MONITOR_*` (`lifecycle::monitor_env`).
    on_result_targets: std::collections::HashSet<String>,
    /// The last `Accept=yes` instances that named units there, after they
    /// were let go of (`lifecycle::remember_ended`).
    ended: std::collections::VecDeque<lifecycle::Ended>,
    /// `Accept=yes` instances kept loaded in the failed state, oldest
    /// first (at most [`lifecycle::FAILED_INSTANCES_KEPT`]).
    failed_instances: std::collections::VecDeque<u64>,
    /// Units whose last start a condition skipped: when (µs since the
    /// epoch) and the conditions that failed, for systemctl's
    /// "Condition: start condition failed" lines.
    condition_failures: HashMap<String, (u64, Vec<String>)>,
    /// The invocation ID of each socket unit's current activation.
    socket_invocations: HashMap<String, String>,
    /// Services whose `Sockets=` are being opened: opening one of them
    /// asks again for the same list, which must not try (and log) a socket
    /// that failed a moment ago a second time.
    listing_sockets: Vec<u64>,
    /// flint as `org.freedesktop.systemd1` on the bus of the bus daemon it
    /// runs, and the units it was asked to start there and has not seen
    /// start yet.
    activator: Option<bus_activation::Activator>,
    /// The states of sockets and targets last signalled on the bus.
    bus_seen: bus_activation::Seen,
    /// The bus daemon the activator is for (set while it connects, too).
    activator_for: Option<String>,
    bus_activations: Vec<(String, u64)>,
    /// The timer units flint runs.
    timers: timer::Timers,
    /// The path units flint runs.
    path_units: path_unit::PathUnits,
    /// The target units flint has loaded, by id (from the services' ids).
    targets: FxHashMap<u64, target::TargetRt>,
    target_names: FxHashMap<String, u64>,
    /// `NAccepted=`/`NRefused=` of socket units opened again, carried to
    /// their new entry.
    socket_counts: HashMap<String, (u64, u64)>,
    /// Sockets restarted with the service that needs them: opened again,
    /// and the service started, once that service is down.
    socket_restarts: Vec<(String, u64)>,
}

/// A socket's plugin chain and peek settings.
#[derive(Debug)]
pub struct SocketPolicy {
    pub chain: crate::policy::Chain,
    /// What the chain was loaded from, to tell whether a switch changes it.
    pub specs: Vec<crate::policy::PluginSpec>,
    pub peek_bytes: usize,
    pub peek_timeout: Duration,
}

/// Runs the named units (or the enabled ones) until SIGTERM/SIGINT.
/// Returns the process exit code.
/// Choices of `flint run` beyond the unit tree.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where the control socket is (`None`: the default path).
    pub control: Option<std::path::PathBuf>,
    /// Refuse to start units that set directives flint accepts but does
    /// not enforce (sandboxing and the like), instead of warning.
    pub refuse_unenforced: bool,
    /// Switch to the unit tree whenever it changes on disk.
    pub watch: bool,
    /// s6's readiness protocol: write a newline to this fd and close it once
    /// every unit is started (listeners open).
    pub notify_fd: Option<i32>,
    /// Whether services get a cgroup v2 each.
    pub cgroups: crate::cgroup::Mode,
    /// The unit generators to run before the tree is read, at start and at
    /// every reload of the same search path (`None`: none).
    pub generators: Option<crate::generators::Generators>,
    /// Where to take the services' syslog messages (`/dev/log`).
    pub dev_log: Option<std::path::PathBuf>,
}

/// How long an idle blocking thread (spawns, the `--watch` scan) stays.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_hours(24);

pub fn run(search: SearchPath, names: Vec<UnitName>, options: RunOptions) -> Result<u8, RunError> {
    // When flint started, taken now on every clock (`systemd-analyze`
    // measures the start from it), before a clock may be stepped.
    let _ = control::process_start();
    // Before any thread is made: they all inherit the blocked SIGCHLD.
    let child_signals = child_signal_fd()?;
    // What every service starts from: the default limits (flint's own
    // open-file limit raised) and the manager's environment block, with
    // what the environment generators add.
    for problem in crate::service::defaults::init(search.user_mode) {
        tracing::warn!("environment generator {problem}");
    }
    crate::service::defaults::init_limits(!search.user_mode);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // The loop's log lines are written once per turn (crate::logs::hold_stderr).
        .on_thread_park(crate::logs::flush_held)
        // Spawns run on blocking threads (at most one per CPU, `turns`);
        // creating one costs more than the rest of a cold `Accept=no` start
        // here, so they stay once made and the first is made now.
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()?;
    runtime.spawn_blocking(|| {});
    let _held = crate::logs::hold_stderr();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        run_async(search, names, options, child_signals).await
    })
}

/// Runs the unit generators of `options` (at start) when this flint holds
/// its control socket; without it, the output directories are another
/// flint's: neither run nor searched, now or at a reload.
fn run_generators(search: &mut SearchPath, options: &mut RunOptions, own_control: bool) {
    let Some(generators) = &options.generators else {
        return;
    };
    if own_control {
        log_generators(&generators.run());
        return;
    }
    tracing::warn!(
        "flint: the unit generators do not run without a control socket of this flint's \
         own (their output, {}, is the other flint's)",
        generators.output.normal.display()
    );
    search
        .dirs
        .retain(|d| !generators.output.all().contains(&d.as_path()));
    options.generators = None;
}

/// What a run of the unit generators did, in flint's log.
pub(super) fn log_generators(report: &crate::generators::Report) {
    for line in &report.output {
        tracing::info!("generator {line}");
    }
    for problem in &report.problems {
        tracing::warn!("generator {problem}");
    }
    tracing::debug!("{} unit generator(s) ran", report.ran.len());
}

/// `SIGCHLD` as a file: back to its default disposition (a parent may have
/// left it ignored, which would reap flint's children before it could) and
/// blocked in the calling thread, and so in every thread it makes from now
/// on, then read from a signalfd by the event loop. A handler would run on
/// whichever thread the kernel picks and wake the loop through a pipe for
/// every exited child; the signalfd is one fd in the loop's epoll set for
/// all of them, and its reader collects their exits
/// ([`Manager::reap_children`]). Services get an empty signal mask
/// (`spawn`), as from systemd.
fn child_signal_fd() -> std::io::Result<nix::sys::signalfd::SignalFd> {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask, signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    // SAFETY: the default disposition runs no code of ours.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }?;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    Ok(SignalFd::with_flags(
        &mask,
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )?)
}

/// The targets whose links `flint run` follows when no unit is named.
const DEFAULT_TARGETS: [&str; 5] = [
    "sockets.target",
    "timers.target",
    "paths.target",
    "multi-user.target",
    "default.target",
];

/// The units `flint run` starts when none are named: what `sockets.target`,
/// `multi-user.target` and `default.target` want (through their `.wants/`
/// and `.requires/` links, as `flint enable` makes them, even when no file
/// provides the target itself), or else every socket unit.
pub fn default_units(search: &SearchPath) -> Vec<UnitName> {
    let index = loader::UnitIndex::build(search);
    let mut out: Vec<UnitName> = Vec::new();
    for target in DEFAULT_TARGETS {
        let Ok(name) = target.parse::<UnitName>() else {
            continue;
        };
        let (wants, requires) = match index.resolve(&name) {
            Ok(src) => (src.wants, src.requires),
            Err(loader::LoadError::NotFound(_)) => index.dependency_links(&name),
            Err(_) => continue,
        };
        for u in wants.iter().chain(requires.iter()) {
            if !out.contains(u) {
                out.push(u.clone());
            }
        }
    }
    if out.is_empty() {
        out = loader::list_units(search)
            .into_iter()
            .filter(|n| n.unit_type() == UnitType::Socket && !n.is_template())
            .collect();
    }
    out
}

async fn run_async(
    search: SearchPath,
    mut names: Vec<UnitName>,
    options: RunOptions,
    child_signals: nix::sys::signalfd::SignalFd,
) -> Result<u8, RunError> {
    let requested = names.clone();
    let named = !names.is_empty();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut search, mut options) = (search, options);
    // The control socket first: holding it makes this flint's runtime
    // directory its own, where the unit generators write.
    let control_path = options
        .control
        .clone()
        .unwrap_or_else(|| crate::control::default_path(search.user_mode));
    // The lock that makes the control socket this flint's is held until
    // flint ends.
    let (control_node, _control_lock) = match crate::control::bind(&control_path) {
        Ok(bound) => {
            control::serve(bound.listener, tx.clone());
            (Some(control_path), Some(bound.lock))
        }
        // One user manager per runtime directory, as systemd --user: a
        // second one would bind the same `%t` sockets and leave the first
        // one's listeners unreachable.
        Err(crate::control::ControlError::Bind { path, source })
            if search.user_mode
                && options.control.is_none()
                && source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            return Err(RunError::UserManagerRuns(path.display().to_string()));
        }
        Err(e) => {
            tracing::warn!("flint: {e}; `flint ctl` cannot reach this flint");
            (None, None)
        }
    };
    // Then the generators: while they run, SIGTERM and SIGINT still end
    // flint at once (nothing is up yet), and no socket of flint's waits
    // unread.
    run_generators(&mut search, &mut options, control_node.is_some());
    // systemd's runtime directory is there for the services of a system
    // manager (ReadWritePaths=/run/systemd in systemd-hostnamed and the
    // like, sockets of D-Bus services under it); `/run/systemd/system`,
    // which tells tools that systemd booted, is not made.
    if !search.user_mode && nix::unistd::geteuid().is_root() {
        let _ = std::fs::create_dir_all("/run/systemd");
    }
    if names.is_empty() {
        names = default_units(&search);
    }
    if let Err(e) = spawn_signal_watch(tx.clone(), child_signals) {
        if let Some(path) = control_node {
            let _ = std::fs::remove_file(path);
        }
        return Err(e.into());
    }
    // Orphans of the services come to flint, which reaps them (and can then
    // follow a forking daemon's main process as its parent).
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let mut mgr = Manager {
        search,
        turns: turns::Turns::per_cpu(),
        turns_check: None,
        watched: None,
        requested,
        roots: names.iter().map(ToString::to_string).collect(),
        units: unit_cache::UnitCache::default(),
        slices_applied: HashMap::new(),
        sockets: Vec::new(),
        services: FxHashMap::default(),
        by_name: FxHashMap::default(),
        next_id: 1,
        tx: tx.clone(),
        step_timers: step_timers::StepTimers::start(tx.clone()),
        shutting_down: false,
        socket_stops: Vec::new(),
        socket_stops_new: Vec::new(),
        startup_sockets: Vec::new(),
        closing_sockets: Vec::new(),
        exit_status: 0,
        exit_now: false,
        collected: Vec::new(),
        notify_path: None,
        control_node: control_node.clone(),
        dev_log_socket: None,
        notify_socket: None,
        host: None,
        options,
        pending_notify: Vec::new(),
        reap_pending: false,
        children: FxHashMap::default(),
        answer_jobs: Vec::new(),
        answer_sockets: Vec::new(),
        answer_kind: switch::WaitFor::Switch,
        passed_fds: Vec::new(),
        transient_stdio: FxHashMap::default(),
        waiting: Vec::new(),
        spare: Vec::new(),
        parked: Vec::new(),
        jobs: FxHashMap::default(),
        cgroups: None,
        hooks: HashMap::new(),
        socket_failures: HashMap::new(),
        loose_hooks: Vec::new(),
        ready: None,
        boot: Boot::Loading,
        warned_instances: std::collections::HashSet::new(),
        on_result_targets: std::collections::HashSet::new(),
        ended: std::collections::VecDeque::new(),
        failed_instances: std::collections::VecDeque::new(),
        condition_failures: HashMap::new(),
        socket_invocations: HashMap::new(),
        listing_sockets: Vec::new(),
        activator: None,
        bus_seen: bus_activation::Seen::default(),
        activator_for: None,
        bus_activations: Vec::new(),
        timers: timer::Timers::default(),
        path_units: path_unit::PathUnits::default(),
        targets: FxHashMap::default(),
        target_names: FxHashMap::default(),
        socket_counts: HashMap::new(),
        socket_restarts: Vec::new(),
    };
    if mgr.options.cgroups != crate::cgroup::Mode::Off {
        match crate::cgroup::Cgroups::create() {
            Ok(cg) => {
                tracing::debug!("a cgroup per service under {}", cg.root().display());
                mgr.cgroups = Some(cg);
            }
            Err(e) => tracing::debug!(
                "no cgroups ({e}): a service's processes are tracked by session and process group"
            ),
        }
    }
    mgr.dev_log_socket = mgr
        .options
        .dev_log
        .clone()
        .and_then(|path| dev_log::serve(&path, &tx));
    match start_notify(&tx, mgr.search.user_mode) {
        Ok(n) => {
            mgr.notify_path = Some(n.path().to_string_lossy().into_owned());
            mgr.notify_socket = Some(n);
        }
        Err(e) => tracing::warn!(
            "flint: {e}; services get no NOTIFY_SOCKET (a Type=notify one cannot say it is ready, and its start times out)"
        ),
    }
    let private_node = private_socket::serve(mgr.search.user_mode, control_node.clone());
    for n in &names {
        if !matches!(
            n.unit_type(),
            UnitType::Socket
                | UnitType::Service
                | UnitType::Target
                | UnitType::Timer
                | UnitType::Path
        ) {
            tracing::error!(
                "{n}: flint runs socket, service, timer and path units (and targets that group them); \
                 .{} units are not supported; ignoring it",
                n.unit_type()
            );
        }
    }
    let asked = !names.is_empty();
    let asked_targets: Vec<UnitName> = names
        .iter()
        .filter(|n| n.unit_type() == UnitType::Target)
        .cloned()
        .collect();
    let names = plan_units(&mgr.search, &names);
    let started = mgr.start_planned(&names, &asked_targets, !named);
    if started == 0 {
        // Nobody is served: the sockets' nodes go, as at a stop.
        for path in control_node.into_iter().chain(private_node) {
            let _ = std::fs::remove_file(path);
        }
        return Err(RunError::Nothing(if names.is_empty() && !asked {
            "no socket units found in the unit tree".into()
        } else {
            "no named unit could be started".into()
        }));
    }
    // Ready once no socket's ExecStartPre=/ExecStartPost= runs.
    mgr.ready = Some((started, mgr.options.notify_fd));
    mgr.boot = Boot::Starting;
    mgr.announce_ready();
    // What every spawn looks up is at hand before the first connection.
    crate::service::exec::warm_lookups(mgr.search.user_mode);
    crate::release_free_memory();
    if mgr.options.watch {
        let stamp = tree_stamp(&mgr.search);
        let watched = std::rc::Rc::new(std::cell::RefCell::new((mgr.search.clone(), stamp)));
        spawn_tree_watch(watched.clone(), tx.clone());
        mgr.watched = Some(watched);
    }
    let mut batch = std::collections::VecDeque::new();
    // What else waits in the queue, up to a batch.
    let fill = |batch: &mut std::collections::VecDeque<Event>,
                rx: &mut mpsc::UnboundedReceiver<Event>| {
        while batch.len() < EVENT_BATCH
            && let Ok(event) = rx.try_recv()
        {
            batch.push_back(event);
        }
    };
    'events: while let Some(event) = rx.recv().await {
        batch.push_back(event);
        fill(&mut batch, &mut rx);
        if batch
            .iter()
            .any(|e| matches!(e, Event::Exited { .. } | Event::ChildSignal))
        {
            // A client whose service just exited reconnects at once: let
            // the listeners accept (one look at the sockets, no waiting)
            // so that its connection can go ahead of the exit's
            // bookkeeping.
            tokio::task::yield_now().await;
            fill(&mut batch, &mut rx);
        }
        mgr.connections_first(&mut batch);
        while let Some(event) = batch.pop_front() {
            mgr.handle(event);
            mgr.observe_timers();
            // Until nothing moves (bounded: the trigger limit ends a loop).
            for _ in 0..1024 {
                if !mgr.observe_path_units() {
                    break;
                }
            }
            mgr.answer_settled();
            if mgr.exit_now || (mgr.shutting_down && mgr.all_dead() && mgr.hooks.is_empty()) {
                break 'events;
            }
        }
    }
    // After an orderly stop only (`exit-force` stops nothing).
    if mgr.shutting_down && !mgr.exit_now && mgr.all_dead() {
        mgr.stop_leftovers().await;
    }
    mgr.close_sockets().await;
    // Private /tmp directories kept for a restart that will not come now
    // (a service that died on its own and waited for its restart): gone
    // with flint, as systemd removes them when the unit goes.
    for svc in mgr.services.values_mut() {
        if let Some(t) = svc.private_tmp.take() {
            t.remove();
        }
    }
    control::answers_written().await;
    for path in control_node.into_iter().chain(private_node) {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("flint: stopped");
    Ok(mgr.exit_status)
}

/// [`Manager::connections_first`], with `admits(socket, n)` telling
/// whether `socket` admits a connection whatever the events before it
/// change, with `n` of its connections moved ahead already, and
/// `alone(service)` whether a connection may pass the end or spawn of
/// that service.
fn connections_first(
    batch: &mut std::collections::VecDeque<Event>,
    admits: impl Fn(usize, u32) -> bool,
    alone: impl Fn(u64) -> bool,
) {
    // Nothing to do unless a connection waits behind another event.
    let is_conn = |e: &Event| matches!(e, Event::Accepted { .. });
    let Some(other) = batch.iter().position(|e| !is_conn(e)) else {
        return;
    };
    if !batch.iter().skip(other).any(is_conn) {
        return;
    }
    let mut ahead: Vec<Event> = Vec::new();
    let mut rest: Vec<Event> = Vec::new();
    let mut moving = true;
    let mut moved: Vec<usize> = Vec::new();
    for event in batch.drain(..) {
        match &event {
            Event::Accepted { socket, .. } if moving => {
                let already = moved.iter().filter(|&&s| s == *socket).count();
                if admits(*socket, u32::try_from(already).unwrap_or(u32::MAX)) {
                    moved.push(*socket);
                    ahead.push(event);
                } else {
                    moving = false;
                    rest.push(event);
                }
            }
            Event::Exited { service, .. } | Event::Spawned { service, .. } if alone(*service) => {
                rest.push(event);
            }
            Event::ChildSignal => rest.push(event),
            _ => {
                moving = false;
                rest.push(event);
            }
        }
    }
    batch.extend(ahead);
    batch.extend(rest);
}

/// Events the loop takes from its queue at once: enough for every
/// connection and exit of a busy turn, few enough that a flood of one
/// kind cannot keep another waiting long.
const EVENT_BATCH: usize = 64;

fn spawn_signal_watch(
    tx: mpsc::UnboundedSender<Event>,
    child_signals: nix::sys::signalfd::SignalFd,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // What a container runtime or machinectl sends systemd as the init of
    // a container: SIGRTMIN+3 (halt, Docker's STOPSIGNAL in images made
    // for systemd), +4 (poweroff), +5 (reboot), +6 (kexec). flint stops
    // everything in order and exits, as at SIGTERM.
    let end = |n: i32| signal(SignalKind::from_raw(libc::SIGRTMIN() + n));
    let (mut halt, mut poweroff, mut reboot, mut kexec) = (end(3)?, end(4)?, end(5)?, end(6)?);
    // SAFETY: the signalfd is moved into the AsyncFd, which keeps it open
    // for as long as it is registered.
    let child = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(
            child_signals,
            tokio::io::Interest::READABLE,
        )
    }?;
    tokio::task::spawn_local(async move {
        loop {
            let event = tokio::select! {
                _ = term.recv() => Event::Shutdown,
                _ = halt.recv() => { crate::request_machine_end("halt"); Event::Shutdown }
                _ = poweroff.recv() => { crate::request_machine_end("poweroff"); Event::Shutdown }
                _ = reboot.recv() => { crate::request_machine_end("reboot"); Event::Shutdown }
                _ = kexec.recv() => { crate::request_machine_end("kexec"); Event::Shutdown }
                // Ctrl-Alt-Del to the machine's init: a reboot, as
                // systemd's ctrl-alt-del.target.
                _ = int.recv() => {
                    if crate::own_pid() == 1 {
                        crate::request_machine_end("reboot");
                    }
                    Event::Shutdown
                }
                _ = hup.recv() => Event::Hangup,
                ready = child.readable() => {
                    let Ok(mut ready) = ready else { return };
                    // Pending SIGCHLDs merge into one; read it (and any
                    // that came since) and reap once.
                    while let Ok(Some(_)) = ready.get_inner().read_signal() {}
                    ready.clear_ready();
                    Event::ChildSignal
                }
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Tells a supervisor that flint is ready: a newline on `fd`, then the fd is
/// closed (s6's `notification-fd`). An fd that is not open is reported.
fn notify_ready_fd(fd: i32) {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: F_GETFD only inspects the fd number.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        tracing::warn!("flint: --notify-fd {fd} is not open; no readiness sent");
        return;
    }
    // SAFETY: the fd is open and was handed to flint for this purpose only;
    // the File owns and closes it.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    if let Err(e) = f.write_all(b"\n") {
        tracing::warn!("flint: readiness on fd {fd} failed: {e}");
    }
}

/// What identifies the state of a unit tree on disk: every entry of the
/// search directories and of their `.d`/`.wants`/`.requires` directories,
/// with symlink targets resolved (a profile symlink flipped to another
/// store path changes it), sizes and modification times.
fn tree_stamp(search: &SearchPath) -> u64 {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    fn walk(dir: &std::path::Path, depth: u32, h: &mut std::collections::hash_map::DefaultHasher) {
        let canonical = std::fs::canonicalize(dir).ok();
        canonical.hash(h);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            path.hash(h);
            if let Ok(target) = std::fs::read_link(&path) {
                target.hash(h);
            }
            if let Ok(m) = std::fs::metadata(&path) {
                (m.len(), m.mtime(), m.mtime_nsec(), m.ino()).hash(h);
                if m.is_dir() && depth > 0 {
                    walk(&path, depth - 1, h);
                }
            }
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for dir in &search.dirs {
        walk(dir, 1, &mut h);
    }
    h.finish()
}

/// The tree `--watch` polls and the stamp of the tree last applied.
type Watched = std::rc::Rc<std::cell::RefCell<(SearchPath, u64)>>;

/// `flint run --watch`: polls the unit tree once a second and reports a
/// change once it has settled (the same stamp twice in a row). The search
/// path is the manager's current one: after `flint ctl switch DIR`, DIR is
/// watched.
fn spawn_tree_watch(shared: Watched, tx: mpsc::UnboundedSender<Event>) {
    tokio::task::spawn_local(async move {
        let stamp_of = |search: SearchPath| async move {
            tokio::task::spawn_blocking(move || tree_stamp(&search))
                .await
                .unwrap_or(0)
        };
        let (mut watched, mut applied) = shared.borrow().clone();
        let mut last = applied;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            // A switch (from any cause) records the tree it applied.
            let (current, stamp) = shared.borrow().clone();
            if current != watched || stamp != applied {
                watched = current;
                applied = stamp;
            }
            let now = stamp_of(watched.clone()).await;
            if now == last && now != applied {
                applied = now;
                if tx.send(Event::TreeChanged).is_err() {
                    return;
                }
            }
            last = now;
        }
    });
}

/// The pid of an exited child of flint, left waitable (the kernel shows one
/// at a time, whichever thread made it); `None` when none has exited.
fn exited_child() -> Option<i32> {
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: waitid writes into `info`, which is zero-initialised and ours;
    // WNOWAIT leaves the child waitable.
    let r = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r < 0 {
        // ECHILD: no children at all.
        return None;
    }
    // SAFETY: initialised (zeroed, then possibly filled by waitid).
    let pid = unsafe { info.assume_init().si_pid() };
    // 0: children, none of them exited.
    (pid != 0).then_some(pid)
}

impl Manager {
    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Loads the plugin chain of a socket unit; the WebAssembly host is
    /// created on first use, so a flint without plugins never pays for it.
    fn load_policy(&mut self, unit: &Unit) -> Result<Option<SocketPolicy>, String> {
        let Some(config) = policy::PolicyConfig::from_unit(unit)? else {
            return Ok(None);
        };
        if self.host.is_none() {
            self.host = Some(
                crate::policy::PolicyHost::with_options(crate::policy::HostOptions::default())
                    .map_err(|e| format!("cannot start the plugin host: {e}"))?,
            );
        }
        let host = self.host.as_ref().ok_or("no plugin host")?;
        let mut plugins = Vec::new();
        let specs = config.plugins.clone();
        for spec in config.plugins {
            let name = spec.name.clone();
            let path = spec.path.clone();
            let plugin = host
                .load(spec)
                .map_err(|e| format!("plugin {name} ({}): {e}", path.display()))?;
            plugins.push(plugin);
        }
        Ok(Some(SocketPolicy {
            chain: crate::policy::Chain::new(plugins),
            specs,
            peek_bytes: config.peek_bytes,
            peek_timeout: config.peek_timeout,
        }))
    }

    /// Opens the sockets a service names in `Sockets=` (systemd's implied
    /// `Wants=`), so the service receives their fds too.
    pub(super) fn add_listed_sockets(&mut self, id: u64) {
        if self.listing_sockets.contains(&id) {
            return;
        }
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        let listed: Vec<UnitName> = listed_sockets(&svc.unit)
            .filter_map(|n| n.parse().ok())
            .collect();
        self.listing_sockets.push(id);
        for name in listed {
            if self.add_socket_for(&name, Some(id))
                && let Some(index) = self.socket_index(name.as_str())
                && let Some(svc) = self.services.get_mut(&id)
                && !svc.sockets.contains(&index)
            {
                svc.sockets.push(index);
            }
        }
        self.listing_sockets.retain(|&s| s != id);
    }

    /// With `--refuse-unenforced`, why a unit may not start: it sets
    /// directives flint accepts without enforcing them.
    fn refused(&self, unit: &Unit) -> Option<String> {
        if !self.options.refuse_unenforced {
            return None;
        }
        let section = if unit.id.unit_type() == crate::unit::name::UnitType::Socket {
            "Socket"
        } else {
            "Service"
        };
        if crate::service::sandbox::is_sandboxed(unit, section)
            && !crate::service::sandbox::can_make_namespaces()
        {
            return Some(
                "refusing to start (--refuse-unenforced): its sandboxing needs namespaces, which flint may not make without root".to_string(),
            );
        }
        unit.diagnostics
            .iter()
            .find(|d| d.message.starts_with("accepted, not enforced"))
            .map(|d| format!("refusing to start (--refuse-unenforced): {}", d.message))
    }

    /// The main and control processes of every service, and the commands
    /// of socket units.
    fn tracked_pids(&self) -> Vec<i32> {
        self.services
            .values()
            .flat_map(|s| [s.main_pid, s.control_pid])
            .flatten()
            .chain(self.hook_pids())
            .collect()
    }

    /// What `SIGCHLD` announces, collected: each exited process flint
    /// spawned for a service is reaped and its exit reported
    /// ([`lifecycle::Waited`]); orphans (daemons' children re-parented to
    /// flint, a subreaper or PID 1 in a container) are reaped and forgotten.
    /// The exit of a process that something else waits for stops the
    /// round (the kernel shows one waitable child at a time); it goes on
    /// once that exit is collected ([`Manager::reap_pending`]). So does the
    /// child of a spawn in flight, not recorded yet: the kernel tells its
    /// pid as it creates it ([`crate::spawn::spawn_noting_pid`]); where it
    /// cannot tell, no orphan is reaped while such a spawn is in flight.
    pub(super) fn reap_children(&mut self) {
        use std::sync::atomic::Ordering;
        // Who waits for what is asked only when an orphan or a foreign
        // process turns up, not for every exit of a spawned one.
        type Slots = Vec<std::sync::Arc<std::sync::atomic::AtomicI32>>;
        let mut others: Option<(Vec<i32>, Slots, Slots)> = None;
        // At most as many rounds as there can be zombies worth a look; each
        // reaps one.
        for _ in 0..4096 {
            let Some(pid) = exited_child() else {
                self.reap_pending = false;
                return;
            };
            if let Some(waited) = self.children.get(&pid) {
                if !waited.collect() {
                    // Not collected after all: tried again at the next exit.
                    self.reap_pending = true;
                    return;
                }
                self.children.remove(&pid);
                continue;
            }
            let (tracked, services, hooks) = others.get_or_insert_with(|| {
                let services = self
                    .services
                    .values()
                    .filter_map(|s| s.spawn_pid.clone())
                    .collect();
                let hooks = self.hooks_spawning().cloned().collect();
                (self.tracked_pids(), services, hooks)
            });
            // Read again for every zombie: a child created since is already there.
            let spawned = |slots: &Slots| {
                slots.iter().any(|s| {
                    let p = s.load(Ordering::Acquire);
                    p == pid || p == crate::spawn::CHILD_UNKNOWN
                })
            };
            if spawned(services) {
                // Its spawn asks for another round once it is recorded
                // (`spawn_returned`).
                self.reap_pending = true;
                return;
            }
            if spawned(hooks) || tracked.contains(&pid) {
                // Its own waiter reaps it, perhaps not soon (a socket
                // command's task, a process whose watch could not be
                // set up), and asks for no other round: the spawned
                // processes that exited behind it are collected one by
                // one meanwhile.
                self.reap_pending = true;
                self.sweep_children();
                return;
            }
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            tracing::debug!("reaped orphan pid {pid}");
        }
        // A round reaps at most 4096 zombies; the rest are reaped in the
        // next, as if another SIGCHLD had come.
        self.reap_pending = exited_child().is_some();
        if self.reap_pending {
            let _ = self.tx.send(Event::ChildSignal);
        }
    }

    /// Collects each spawned process that has exited, in no kernel order
    /// (one `waitid` on each pidfd).
    fn sweep_children(&mut self) {
        self.children.retain(|_, waited| !waited.collect());
    }

    /// Loads a unit to run it: a unit that fails to load is reported with
    /// every diagnostic, and with `--refuse-unenforced` one that sets
    /// directives flint cannot enforce is refused.
    fn load_startable(&mut self, name: &UnitName) -> Option<Unit> {
        let unit = self.units.load(&self.search, name);
        // Masked on purpose (`flint mask`, a link to /dev/null): not
        // started, and no error, as systemd says nothing of a masked unit
        // a target wants.
        if unit.load_state == crate::unit::load::LoadState::Masked {
            tracing::info!("{name}: masked; not starting it");
            return None;
        }
        if !unit.is_loaded() {
            for d in &unit.diagnostics {
                tracing::error!("{d}");
            }
            tracing::error!("{name}: failed to load ({})", unit.load_state.as_str());
            return None;
        }
        if let Some(why) = self.refused(&unit) {
            tracing::error!("{name}: {why}");
            return None;
        }
        // What its files hold that flint ignores or does not enforce
        // (systemd logs unknown keys so as it loads a unit).
        for d in &unit.diagnostics {
            tracing::warn!("{d}");
        }
        Some(unit)
    }

    /// Loads a service by name once; returns its id.
    fn add_service(&mut self, name: &UnitName) -> Option<u64> {
        if let Some(id) = self.by_name.get(name.as_str()) {
            return Some(*id);
        }
        let unit = self.load_startable(name)?;
        // Loaded already under another of its names (syslog.service, a link
        // to rsyslog.service; redis.service to redis-server.service): the
        // same unit, never a second copy of the daemon.
        let known = std::iter::once(&unit.id)
            .chain(unit.aliases.iter())
            .find_map(|n| self.find_service(n.as_str()));
        if let Some(id) = known {
            self.by_name.insert(name.to_string(), id);
            return Some(id);
        }
        let names: Vec<String> = std::iter::once(name.to_string())
            .chain(std::iter::once(unit.id.to_string()))
            .chain(unit.aliases.iter().map(ToString::to_string))
            .collect();
        let id = self.new_id();
        let svc = ServiceRt::new(unit);
        self.on_result_targets.extend(svc.on_result.iter().cloned());
        self.services.insert(id, svc);
        for n in names {
            self.by_name.entry(n).or_insert(id);
        }
        Some(id)
    }

    fn handle(&mut self, event: Event) {
        self.handle_one(event);
        if !self.socket_stops.is_empty() {
            self.run_ordered_socket_stops();
        }
        if !self.transient_stdio.is_empty() {
            self.release_ended_stdio();
        }
    }

    /// Whether socket `index` refuses what arrives: flint stops, or the
    /// socket's own stop waits for its services to stop first.
    /// Notes how the conditions of `unit` came out at its start (`outcome`):
    /// the ones that failed, when they skipped it. (Nothing to do on a
    /// start's path where none ever did.)
    fn note_conditions(
        &mut self,
        unit: &crate::unit::load::Unit,
        outcome: &crate::service::condition::ConditionOutcome,
    ) {
        if matches!(
            outcome,
            crate::service::condition::ConditionOutcome::Skip(_)
        ) {
            let failed = crate::service::condition::failed(unit, "Condition");
            self.condition_failures
                .insert(unit.id.to_string(), (crate::logs::epoch_usec(), failed));
        } else if !self.condition_failures.is_empty() {
            self.condition_failures.remove(unit.id.as_str());
        }
    }

    fn stop_pending(&self, index: usize) -> bool {
        self.shutting_down || self.socket_stops.iter().any(|(i, _)| *i == index)
    }

    fn handle_one(&mut self, event: Event) {
        match event {
            Event::Readable { socket } => self.on_readable(socket),
            Event::Accepted {
                socket,
                listener,
                conn,
            } => self.on_accepted(socket, listener, conn),
            Event::Peeked {
                socket,
                listener,
                conn,
                peer,
                bytes,
            } => self.admit(socket, listener, conn, peer, Some(bytes)),
            Event::ListenerFailed { socket, error } => {
                let name = self.sockets[socket].name.clone();
                tracing::error!("{name}: {error}; closing its listeners");
                self.fail_socket(socket, "resources");
            }
            Event::Exited {
                service,
                pid,
                status,
            } => {
                self.on_exit(service, pid, status);
                if self.reap_pending {
                    self.reap_children();
                }
            }
            Event::RestartDue { service } => self.on_restart_due(service),
            Event::CgroupEmpty { service, launches } => self.on_cgroup_empty(service, launches),
            // Nothing starts while flint stops.
            Event::StartUnits { .. } if self.shutting_down => {}
            Event::StartUnits { by, key, units } => {
                for u in units {
                    // (One of them may have ended flint: the rest stay.)
                    if self.shutting_down {
                        break;
                    }
                    tracing::info!("{by}: starting {u} ({key}=)");
                    self.enqueue_name(&u, jobs::JobKind::Start);
                }
            }
            Event::Timer {
                service,
                generation,
            } => self.on_timer(service, generation),
            Event::JobTimeout { id, serial } => self.job_timed_out(id, serial),
            Event::Notify(msg) => self.on_notify(msg),
            Event::Syslog(record) => self.on_syslog(&record),
            Event::Spawned {
                service,
                state,
                result,
                log,
                path,
                credentials,
                token,
            } => {
                // A spawn of a run that is over changes nothing of the
                // service's current one.
                if !self.stale_spawn(service, &token, &result, credentials.as_ref()) {
                    if let Some(made) = credentials {
                        self.credentials_made(service, made);
                    }
                    if matches!(state, lifecycle::State::Start(_)) {
                        self.on_main_spawned(service, state, result, log, &path);
                    } else {
                        self.on_control_spawned(service, state, result, log, &path);
                    }
                }
            }
            Event::TurnsDue => {
                self.turns_check = None;
                let then = self.turns.start_due(Instant::now(), lifecycle::start_turn);
                self.turns_then(then);
            }
            Event::Watchdog {
                service,
                generation,
            } => self.on_watchdog(service, generation),
            Event::BusName {
                service,
                launches,
                name,
                result,
            } => self.on_bus_name(service, launches, &name, result),
            Event::PidFileDue { service, launches } => self.on_pid_file_due(service, launches),
            Event::BusActivation { unit } => self.bus_activate(&unit),
            Event::BusActivatorUp { activator } => self.on_activator_up(activator),
            Event::BusActivatorGone { error } => self.on_activator_gone(&error),
            Event::BusSubscribed => self.tell_bus_other_units(),
            Event::TimerDue { timer, generation } => self.on_timer_due(&timer, generation),
            Event::ClockChanged => self.on_clock_changed(),
            Event::TimezoneChanged => self.on_timezone_changed(),
            Event::PathChanged {
                unit,
                generation,
                spec,
                changed,
            } => self.on_path_event(&unit, generation, spec, changed),
            Event::Shutdown => self.shutdown(),
            Event::SocketHooks { name, key, result } => self.on_socket_hooks(&name, key, result),
            Event::Control {
                request,
                reply,
                fds,
                queued,
            } => {
                self.passed_fds = fds;
                let answer = self.control(&request);
                // Whatever the command did not take is closed.
                self.passed_fds.clear();
                let jobs = std::mem::take(&mut self.answer_jobs);
                let sockets = std::mem::take(&mut self.answer_sockets);
                let kind = std::mem::take(&mut self.answer_kind);
                // (A request refused before any job is only answered.)
                if let Some(q) = queued
                    && answer["before_job"] != true
                {
                    // The number of the first unit's job, which systemd's
                    // API answers a job method with.
                    let job = request["units"][0]
                        .as_str()
                        .and_then(|n| self.find_service(n).or_else(|| self.find_target(n)))
                        .and_then(|id| self.jobs.get(&id))
                        .map(|j| j.serial);
                    let _ = q.send(job);
                }
                self.wait_for_jobs(jobs, sockets, kind, answer, reply);
            }
            Event::Tick => {}
            Event::ListenersClosed { socket } => self.closing_sockets.retain(|s| *s != socket),
            Event::ChildSignal => self.reap_children(),
            Event::Rewatch { socket } => {
                let tx = self.tx.clone();
                self.sockets[socket].watch(socket, &tx);
            }
            Event::InstancesGrace { socket } => self.on_instances_grace(socket),
            Event::Hangup | Event::TreeChanged => {
                let why = if matches!(event, Event::Hangup) {
                    "SIGHUP"
                } else {
                    "the unit tree changed"
                };
                tracing::info!("flint: {why}; switching to the unit tree on disk");
                if let Err(errors) = self.switch(None, false) {
                    for e in &errors {
                        tracing::error!("{e}");
                    }
                    tracing::error!("flint: the new unit tree does not load; nothing was changed");
                }
            }
            Event::Decided {
                socket,
                pending,
                outcome,
            } => self.decided(socket, pending, outcome),
        }
        self.dispatch();
    }

    /// Of the planned units, those left out for a conflict, each with the
    /// unit that starts instead, as systemd fixes the conflicting jobs of
    /// the transaction that starts them all: the unit that declares
    /// `Conflicts=` starts and the one it names does not (two sockets of
    /// one path, pulseaudio.socket and pipewire-pulse.socket); of two
    /// that name each other, the first planned starts.
    fn conflict_losers(&mut self, names: &[UnitName]) -> FxHashMap<String, String> {
        let conflicts: Vec<(String, Vec<String>)> = names
            .iter()
            .map(|n| {
                let unit = self.units.load(&self.search, n);
                let id = unit.id.to_string();
                (id, jobs::Deps::of(&unit).conflicts)
            })
            .collect();
        let mut losers: FxHashMap<String, String> = FxHashMap::default();
        for (i, (me, mine)) in conflicts.iter().enumerate() {
            if losers.contains_key(me) {
                continue;
            }
            for (j, (other, theirs)) in conflicts.iter().enumerate() {
                if i == j || losers.contains_key(other) || !mine.contains(other) {
                    continue;
                }
                // Named by each other: the later one gives way.
                if theirs.contains(me) && j < i {
                    continue;
                }
                losers.insert(other.clone(), me.clone());
            }
        }
        // Keyed by the names as planned (an alias planned is its unit).
        names
            .iter()
            .zip(&conflicts)
            .filter_map(|(n, (id, _))| losers.get(id).map(|w| (n.to_string(), w.clone())))
            .collect()
    }

    /// Starts the units of `flint run` (from [`plan_units`]): opens the
    /// sockets, then queues a start job for every service, which run in
    /// their `After=`/`Before=` order. A socket or service that cannot be
    /// loaded fails the units that require it. Returns how many units were
    /// started or queued.
    /// Starts the planned units, then the targets: those named
    /// (`targets`), those the units pull in, and with `tree_targets` the
    /// tree's [`DEFAULT_TARGETS`], each reached once what it wants has
    /// started. Returns how many units started.
    fn start_planned(
        &mut self,
        names: &[UnitName],
        targets: &[UnitName],
        tree_targets: bool,
    ) -> usize {
        let mut started = 0usize;
        let mut failed: Vec<String> = Vec::new();
        let mut queued: Vec<u64> = Vec::new();
        let losers = self.conflict_losers(names);
        for name in names {
            if let Some(winner) = losers.get(name.as_str()) {
                tracing::info!(
                    "{name}: not started: {winner} conflicts with it (Conflicts=) and starts instead"
                );
                continue;
            }
            match name.unit_type() {
                UnitType::Socket => {
                    if self.add_socket(name) {
                        started += 1;
                    } else {
                        failed.push(name.to_string());
                    }
                }
                UnitType::Service => {
                    if let Some(id) = self.add_service(name) {
                        self.add_listed_sockets(id);
                        queued.push(id);
                        started += 1;
                    } else {
                        failed.push(name.to_string());
                    }
                }
                UnitType::Timer | UnitType::Path => {
                    let up = if name.unit_type() == UnitType::Timer {
                        self.start_timer(name)
                    } else {
                        self.start_path_unit(name)
                    };
                    if up {
                        started += 1;
                    } else {
                        failed.push(name.to_string());
                    }
                }
                _ => tracing::warn!(
                    "{name}: flint runs socket, service, timer and path units; ignoring"
                ),
            }
        }
        for &id in &queued {
            self.install_job(id, jobs::JobKind::Start, true);
        }
        // The targets they pull in get their start jobs, so that what is
        // ordered after a target waits for what the target pulls in.
        let mut pulled: Vec<String> = Vec::new();
        for id in &queued {
            let Some(svc) = self.services.get(id) else {
                continue;
            };
            for d in svc
                .deps
                .requires
                .iter()
                .chain(&svc.deps.wants)
                .chain(&svc.deps.binds_to)
                .chain(&svc.deps.upholds)
            {
                if d.ends_with(".target") && !pulled.contains(d) {
                    pulled.push(d.clone());
                }
            }
        }
        for t in pulled {
            if self.find_target(&t).is_none() {
                self.enqueue_name(&t, jobs::JobKind::Start);
            }
        }
        for t in targets {
            if self.add_target(t).is_some() {
                self.enqueue_name(t.as_str(), jobs::JobKind::Start);
                started += 1;
            } else if target::is_boot_target(t.as_str(), self.search.user_mode) {
                tracing::info!("{t}: systemd's boot target, the host's to reach; nothing to start");
            } else if self.units.load(&self.search, t).load_state
                == crate::unit::load::LoadState::Masked
            {
                // As a masked service a target wants: quietly not started.
                tracing::info!("{t}: masked; not starting it");
            } else {
                tracing::error!(
                    "{t}: cannot be started: it has no file and no links, or does not load"
                );
            }
        }
        // With no unit named, the tree's targets whose links were followed
        // are reached once what they want has started. Their own
        // requirements are not pulled in: what the tree enables is what
        // runs (a distribution's multi-user.target requires basic.target).
        if tree_targets {
            // A user manager's basic.target is no boot target: it is
            // reached as default.target requires it (see
            // `target::is_boot_target`).
            let user_basic = self.search.user_mode.then_some("basic.target");
            for t in user_basic.into_iter().chain(DEFAULT_TARGETS) {
                if let Ok(name) = t.parse::<UnitName>()
                    && let Some(id) = self.add_target(&name)
                {
                    self.install_job(id, jobs::JobKind::Start, true);
                }
            }
        }
        // Required units the tree lacks (left out of the plan): what
        // requires them fails, and the log says which.
        let mut absent: Vec<String> = Vec::new();
        let mut slices: Vec<UnitName> = Vec::new();
        for id in &queued {
            let Some(svc) = self.services.get(id) else {
                continue;
            };
            for d in svc
                .deps
                .requires
                .iter()
                .chain(&svc.deps.binds_to)
                .chain(&svc.deps.requisite)
            {
                let Ok(n) = d.parse::<UnitName>() else {
                    continue;
                };
                match n.unit_type() {
                    UnitType::Service
                        if !self.by_name.contains_key(d)
                            && loader::resolve(&self.search, &n).is_err()
                            && !absent.contains(d) =>
                    {
                        absent.push(d.clone());
                    }
                    // Loaded below, once each (and may log why not).
                    UnitType::Slice if !slices.contains(&n) => slices.push(n),
                    _ => {}
                }
            }
        }
        for n in slices {
            if self.usable_slice(&n).is_none() {
                absent.push(n.to_string());
            }
        }
        for name in absent {
            tracing::error!("{name}: required, but it cannot be loaded; what requires it fails");
            failed.push(name);
        }
        for name in failed {
            self.fail_dependents(&name);
        }
        // Every socket opened with the units (named, or pulled in by a
        // target) that still runs its start commands, unless it says
        // `DefaultDependencies=no` (then systemd does not order it before
        // sockets.target).
        let starting: Vec<String> = self.hooks.keys().cloned().collect();
        for name in starting {
            let default_deps = name.parse::<UnitName>().is_ok_and(|n| {
                self.units
                    .load(&self.search, &n)
                    .get_bool("Unit", "DefaultDependencies")
                    != Some(false)
            });
            if default_deps {
                self.startup_sockets.push(name);
            }
        }
        self.dispatch();
        started
    }

    /// `TriggerLimitIntervalSec=`/`TriggerLimitBurst=`: counts one
    /// activation; past the limit the socket fails, as in systemd.
    fn trigger_allowed(&mut self, socket: usize) -> bool {
        let sock = &mut self.sockets[socket];
        // Failed already (events queued before it failed): not counted
        // and not said again for each of them; the caller drops what
        // arrives for a failed socket (or parks it for the socket that
        // takes over a removed one).
        if sock.failed {
            return true;
        }
        if sock.trigger_limit.allow() {
            return true;
        }
        tracing::error!(
            "{}: Trigger limit hit, refusing further activation.",
            sock.name
        );
        sock.refused += 1;
        self.fail_socket(socket, "trigger-limit-hit");
        false
    }

    fn on_readable(&mut self, socket: usize) {
        if self.sockets[socket].failed {
            return;
        }
        if self.stop_pending(socket) {
            tracing::debug!(
                "{}: suppressing connection request since unit stop is scheduled",
                self.sockets[socket].name
            );
            self.sockets[socket].refuse_pending();
            return;
        }
        if !self.trigger_allowed(socket) {
            return;
        }
        let sock = &mut self.sockets[socket];
        sock.disarm();
        let service = sock.config.service.clone();
        let Some(&id) = self.by_name.get(service.as_str()) else {
            return;
        };
        // A pending restart just waits; the traffic stays queued for it.
        if !matches!(
            self.services.get(&id).map(|s| s.state),
            Some(State::Dead | State::Failed)
        ) {
            return;
        }
        if self.sockets[socket].policy.is_some() {
            let request = match self.services.get(&id) {
                Some(svc) => self.request(socket, 0, None, None, &svc.unit, None),
                None => return,
            };
            // The socket stays disarmed while its chain decides.
            self.spawn_decision(socket, request, Pending::Activation { service: id });
            return;
        }
        self.activate(socket, id, None);
    }

    /// Goes on with an `Accept=no` activation of service `id`: at once for a
    /// socket without plugins, or with the chain's `outcome`.
    fn activate(&mut self, socket: usize, id: u64, outcome: Option<crate::policy::ChainOutcome>) {
        let mut id = id;
        if let Some(outcome) = outcome {
            if self.stop_pending(socket) || self.sockets[socket].failed {
                return;
            }
            // Started meanwhile through another of its sockets: that start
            // disarmed this socket too, and the service's end re-arms it.
            if !matches!(
                self.services.get(&id).map(|s| s.state),
                Some(State::Dead | State::Failed)
            ) {
                return;
            }
            match outcome.verdict {
                crate::policy::Verdict::Allow => {}
                crate::policy::Verdict::Deny(reason) => {
                    // Refuse this activation: drop what triggered it, listen again.
                    tracing::info!(
                        "{}: activation denied by policy: {reason}",
                        self.sockets[socket].name
                    );
                    self.sockets[socket].drop_one_pending();
                    self.sockets[socket].arm();
                    return;
                }
                crate::policy::Verdict::Route(target) => {
                    let routed = target
                        .parse::<UnitName>()
                        .ok()
                        .filter(|n| n.unit_type() == UnitType::Service && !n.is_template())
                        .and_then(|n| self.add_service(&n));
                    if let Some(r) = routed {
                        tracing::info!(
                            "{}: activation routed to {target}",
                            self.sockets[socket].name
                        );
                        if let Some(svc) = self.services.get_mut(&r)
                            && !svc.sockets.contains(&socket)
                        {
                            svc.sockets.push(socket);
                        }
                        if !matches!(
                            self.services.get(&r).map(|s| s.state),
                            Some(State::Dead | State::Failed)
                        ) {
                            return;
                        }
                        id = r;
                    } else {
                        tracing::warn!(
                            "{}: policy routed to '{target}', which flint cannot load; refusing activation",
                            self.sockets[socket].name
                        );
                        self.sockets[socket].drop_one_pending();
                        self.sockets[socket].arm();
                        return;
                    }
                }
            }
            if let Some(svc) = self.services.get_mut(&id) {
                svc.env_edits = outcome.env_edits;
            }
        }
        // Every socket of the service stops being watched while it runs.
        if let Some(svc) = self.services.get(&id) {
            for s in svc.sockets.clone() {
                self.sockets[s].disarm();
            }
        }
        let missing = self.enqueue(id, jobs::JobKind::Start);
        self.queue_failed(socket, &missing);
    }

    /// A socket's start of its service could not be queued, since units it
    /// requires do not load: the socket fails, as systemd's
    /// `socket_enter_running()` does on a queue error (result `resources`).
    fn queue_failed(&mut self, socket: usize, missing: &[String]) {
        let Some(m) = missing.first() else {
            return;
        };
        let sock = &mut self.sockets[socket];
        if sock.failed {
            return;
        }
        tracing::warn!(
            "{}: Failed to queue service startup job: {m} does not load",
            sock.name
        );
        self.fail_socket(socket, "resources");
    }

    /// Puts the connections that wait in `batch` behind the ends and
    /// spawns of processes (and the reaping of orphans) ahead of them: a
    /// connection's service is then on its way before the loop does the
    /// bookkeeping of the instance that just exited (its stop, its log
    /// lines, its cgroup), which is what a client that reconnects at once
    /// otherwise waits for. Only a connection that the socket admits
    /// whatever those events would change (below `MaxConnections=`, no
    /// `MaxConnectionsPerSource=`) moves, only past the ends of instances
    /// that end alone ([`Manager::ends_alone`]), and none past any other
    /// event (a stop of the socket, a request) or past a connection that
    /// stays.
    fn connections_first(&self, batch: &mut std::collections::VecDeque<Event>) {
        if self.shutting_down {
            return;
        }
        connections_first(
            batch,
            |socket, already| {
                let sock = &self.sockets[socket];
                sock.config.max_connections_per_source == 0
                    && sock.active.saturating_add(already) < sock.config.max_connections
            },
            |service| self.ends_alone(service),
        );
    }

    /// Whether the end (or spawn) of service `id` changes nothing that a
    /// new connection's start depends on: an `Accept=yes` instance (whose
    /// name, cgroup, credentials and private /tmp are its own, and which
    /// no other unit names), with no `SuccessAction=`/`FailureAction=`
    /// (which may stop flint) and no `RuntimeDirectory=` (which a template
    /// without `%i` shares between its instances and removes at each
    /// stop).
    fn ends_alone(&self, id: u64) -> bool {
        self.services.get(&id).is_some_and(|svc| {
            let unit = &svc.unit;
            svc.conn.is_some()
                && ["SuccessAction", "FailureAction"]
                    .iter()
                    .all(|key| unit.get_str("Unit", key).is_none_or(|v| v == "none"))
                && unit.entries("Service", "RuntimeDirectory").is_empty()
        })
    }

    fn on_accepted(&mut self, socket: usize, listener: usize, conn: OwnedFd) {
        // Also while the socket's own stop waits for its services: refused
        // before the trigger limit, which it must not use up.
        if self.stop_pending(socket) {
            // Closed at once: the peer is refused, not left waiting.
            tracing::debug!(
                "{}: suppressing connection request since unit stop is scheduled",
                self.sockets[socket].name
            );
            drop(conn);
            return;
        }
        if !self.trigger_allowed(socket) {
            return;
        }
        let sock = &mut self.sockets[socket];
        if sock.active >= sock.config.max_connections {
            sock.refused += 1;
            tracing::warn!(
                "{}: Too many incoming connections ({}), dropping connection.",
                sock.name,
                sock.active
            );
            return;
        }
        let peer = Peer::of(&conn);
        let source = peer.as_ref().and_then(Peer::source_key);
        if sock.config.max_connections_per_source > 0
            && let Some(key) = &source
            && sock.per_source.get(key).copied().unwrap_or(0)
                >= sock.config.max_connections_per_source
        {
            sock.refused += 1;
            tracing::warn!(
                "{}: Too many incoming connections ({}) from source {key}, dropping connection.",
                sock.name,
                sock.active
            );
            return;
        }
        // The connection holds its slots from now on, also while it is peeked.
        sock.active += 1;
        if let Some(key) = source {
            *sock.per_source.entry(key).or_insert(0) += 1;
        }
        let peek = sock
            .policy
            .as_ref()
            .filter(|p| p.peek_bytes > 0)
            .map(|p| (p.peek_bytes, p.peek_timeout));
        match peek {
            Some((bytes, timeout))
                if matches!(
                    sock.config.listens.get(listener),
                    Some(crate::listen::ListenKind::Stream(_))
                ) =>
            {
                socket::spawn_peek(
                    socket,
                    listener,
                    conn,
                    peer,
                    bytes,
                    timeout,
                    self.tx.clone(),
                );
            }
            _ => self.admit(socket, listener, conn, peer, None),
        }
    }

    /// Releases the slots an accepted connection held.
    fn release(&mut self, socket: usize, peer: Option<&Peer>) {
        let sock = &mut self.sockets[socket];
        sock.active = sock.active.saturating_sub(1);
        if let Some(key) = peer.and_then(Peer::source_key)
            && let Some(n) = sock.per_source.get_mut(&key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                sock.per_source.remove(&key);
            }
        }
    }

    /// Names the instance, asks the plugin chain, loads the unit and starts it.
    fn admit(
        &mut self,
        socket: usize,
        listener: usize,
        conn: OwnedFd,
        peer: Option<Peer>,
        peeked: Option<Vec<u8>>,
    ) {
        if !self.shutting_down
            && self.sockets[socket].removed
            && let Some(kind) = self.sockets[socket].config.listens.get(listener).cloned()
        {
            tracing::debug!(
                "{}: a connection accepted as a switch removed the socket waits for the socket that takes over {kind}",
                self.sockets[socket].name
            );
            self.release(socket, peer.as_ref());
            // The socket that takes over may be listening already (armed
            // before this connection, accepted by the old one, came here):
            // then it is served now, not when a later switch arms one.
            let taker = self.sockets.iter().position(|s| {
                !s.removed && !s.failed && s.is_listening() && s.config.listens.contains(&kind)
            });
            self.parked.push((kind, conn));
            if let Some(index) = taker {
                self.serve_parked(index);
            }
            return;
        }
        if self.stop_pending(socket) || self.sockets[socket].failed {
            self.release(socket, peer.as_ref());
            return;
        }
        // The peer as accepted; after a peek, which may have waited, as it
        // is now. One already gone is dropped silently, as systemd does.
        let reread = peeked.as_ref().map(|_| Peer::of(&conn));
        let now_peer = match &reread {
            Some(p) => p.as_ref(),
            None => peer.as_ref(),
        };
        let sock = &mut self.sockets[socket];
        let Some(instance) = now_peer.and_then(|p| socket::instance_name(sock.accepted, &conn, p))
        else {
            self.release(socket, peer.as_ref());
            return;
        };
        sock.accepted += 1;
        for w in crate::listen::apply_accepted_options(
            std::os::fd::AsFd::as_fd(&conn),
            &sock.config.options,
        ) {
            tracing::debug!("{}: {w}", sock.name);
        }
        let Ok(name) = sock.config.service.with_instance(&instance) else {
            tracing::warn!("{}: cannot name an instance for {instance}", sock.name);
            self.release(socket, peer.as_ref());
            return;
        };
        let unit = self.units.load_instance(&self.search, &name);
        let pending = PendingConnection {
            conn,
            peer,
            instance,
            name,
            unit,
        };
        if pending.unit.is_loaded() && self.sockets[socket].policy.is_some() {
            let request = self.request(
                socket,
                listener,
                Some(&pending.conn),
                pending.peer.as_ref(),
                &pending.unit,
                peeked,
            );
            // The connection holds its slots while its chain decides.
            self.spawn_decision(socket, request, Pending::Connection(Box::new(pending)));
            return;
        }
        self.spawn_connection(socket, pending, None);
    }

    /// Goes on with an accepted connection: at once for a socket without
    /// plugins, or with the chain's `outcome`; then loads and starts the
    /// instance.
    fn spawn_connection(
        &mut self,
        socket: usize,
        pending: PendingConnection,
        outcome: Option<crate::policy::ChainOutcome>,
    ) {
        let PendingConnection {
            conn,
            peer,
            instance,
            mut name,
            mut unit,
        } = pending;
        let mut env_edits = Vec::new();
        if let Some(outcome) = outcome {
            if self.stop_pending(socket) || self.sockets[socket].failed {
                self.release(socket, peer.as_ref());
                return;
            }
            match outcome.verdict {
                crate::policy::Verdict::Allow => {}
                crate::policy::Verdict::Deny(reason) => {
                    tracing::info!(
                        "{}: connection from {} denied by policy: {reason}",
                        self.sockets[socket].name,
                        peer_text(peer.as_ref())
                    );
                    self.release(socket, peer.as_ref());
                    return;
                }
                crate::policy::Verdict::Route(target) => {
                    if let Some(n) = self.route_target(&target, &instance) {
                        tracing::info!(
                            "{}: connection from {} routed to {n}",
                            self.sockets[socket].name,
                            peer_text(peer.as_ref())
                        );
                        unit = self.units.load(&self.search, &n);
                        name = n;
                    } else {
                        tracing::warn!(
                            "{}: policy routed to '{target}', which is not a service flint can load; denying",
                            self.sockets[socket].name
                        );
                        self.release(socket, peer.as_ref());
                        return;
                    }
                }
            }
            env_edits = outcome.env_edits;
        }
        if !unit.is_loaded() {
            for d in &unit.diagnostics {
                tracing::error!("{d}");
            }
            let sock = &mut self.sockets[socket];
            tracing::error!(
                "{}: instance {name} failed to load; closing the socket",
                sock.name
            );
            self.release(socket, peer.as_ref());
            self.fail_socket(socket, "resources");
            return;
        }
        // What its template's files hold that flint ignores, logged at its
        // first instance (as for the units flint loads by name).
        if !unit.diagnostics.is_empty() && !self.warned_instances.contains(&unit.fragment) {
            self.warned_instances.insert(unit.fragment.clone());
            for d in &unit.diagnostics {
                tracing::warn!("{d}");
            }
        }
        let id = self.new_id();
        let mut svc = ServiceRt::new(unit);
        self.on_result_targets.extend(svc.on_result.iter().cloned());
        svc.conn = Some((Some(conn), socket, peer));
        svc.env_edits = env_edits;
        let plain = svc.deps.is_empty();
        self.services.insert(id, svc);
        if plain {
            // An instance that names no other unit starts at once.
            self.start(id);
        } else {
            let missing = self.enqueue(id, jobs::JobKind::Start);
            self.queue_failed(socket, &missing);
        }
    }

    /// The unit a `route` verdict names, as this connection's unit: a
    /// template gets the connection's instance.
    fn route_target(&self, target: &str, instance: &str) -> Option<UnitName> {
        let name: UnitName = target.parse().ok()?;
        if name.unit_type() != UnitType::Service {
            return None;
        }
        let name = if name.is_template() {
            name.with_instance(instance).ok()?
        } else {
            name
        };
        let src = loader::resolve(&self.search, &name).ok()?;
        (!src.masked).then_some(name)
    }

    /// Runs the socket's chain on `request` and goes on with its outcome.
    /// The chain is polled once here: a plugin that decides within its
    /// first slice of fuel (nearly all do) is acted on at once, with no
    /// task and no event. Otherwise the chain goes on as a task of the
    /// event loop and reports as `Event::Decided`; plugins yield to the
    /// loop every half millisecond or so, so a slow one (up to its
    /// `TimeoutSec=`) never holds up the other sockets.
    fn spawn_decision(&mut self, socket: usize, request: crate::policy::Request, pending: Pending) {
        let chain = self.sockets[socket]
            .policy
            .as_ref()
            .map(|p| p.chain.clone())
            .unwrap_or_default();
        let search = self.search.clone();
        let mut decision = Box::pin(async move {
            let routable = |n: &str| {
                n.parse::<UnitName>().ok().is_some_and(|u| {
                    let probe = if u.is_template() {
                        u.with_instance("probe").ok()
                    } else {
                        Some(u)
                    };
                    probe.is_some_and(|p| loader::resolve(&search, &p).is_ok_and(|s| !s.masked))
                })
            };
            let mut spent = crate::policy::Spent::default();
            let outcome = chain.decide_async(&request, &routable, &mut spent).await;
            (outcome, spent)
        });
        // A waker that does nothing is enough for this one poll: the task
        // below polls the chain again at once if it is not done, and what
        // the chain waits for (a pool slot) takes that task's waker then.
        use std::future::Future as _;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if let std::task::Poll::Ready((outcome, spent)) = decision.as_mut().poll(&mut cx) {
            self.decided(socket, pending, outcome);
            // Used instances are handed back once the spawn is under way:
            // that may wake another thread.
            drop(spent);
            return;
        }
        let tx = self.tx.clone();
        tokio::task::spawn_local(async move {
            let (outcome, spent) = decision.await;
            let _ = tx.send(Event::Decided {
                socket,
                pending,
                outcome,
            });
            // Let the loop act on the decision (start the spawn) before the
            // used instances are handed back.
            tokio::task::yield_now().await;
            drop(spent);
        });
    }

    /// Goes on with what a chain decided for `pending`.
    fn decided(&mut self, socket: usize, pending: Pending, outcome: crate::policy::ChainOutcome) {
        match pending {
            Pending::Connection(c) => self.spawn_connection(socket, *c, Some(outcome)),
            Pending::Activation { service } => self.activate(socket, service, Some(outcome)),
        }
    }

    /// Describes a spawn to the plugins.
    fn request(
        &self,
        socket: usize,
        listener: usize,
        conn: Option<&OwnedFd>,
        peer: Option<&Peer>,
        unit: &Unit,
        peeked: Option<Vec<u8>>,
    ) -> crate::policy::Request {
        use crate::policy::{ActivationMode, ConnectionCounts, Request, Transport};
        let sock = &self.sockets[socket];
        let kind = sock.config.listens.get(listener);
        let transport = match kind {
            Some(crate::listen::ListenKind::Stream(_)) | None => Transport::Stream,
            Some(crate::listen::ListenKind::Datagram(_)) => Transport::Datagram,
            Some(crate::listen::ListenKind::SequentialPacket(_)) => Transport::SequentialPacket,
            Some(crate::listen::ListenKind::Fifo(_)) => Transport::Fifo,
            Some(crate::listen::ListenKind::Special(_)) => Transport::Special,
            Some(crate::listen::ListenKind::Netlink { .. }) => Transport::Netlink,
            Some(crate::listen::ListenKind::MessageQueue(_)) => Transport::MessageQueue,
        };
        let source = peer.and_then(Peer::source_key);
        let inputs = SpawnInputs {
            user_mode: self.search.user_mode,
            main_process: true,
            ..Default::default()
        };
        let environment = exec::environment(unit, "Service", &inputs, None).unwrap_or_default();
        let mut env = environment;
        if let Some(p) = peer {
            env.extend(p.remote_env());
        }
        Request {
            socket_unit: sock.name.clone(),
            listen_address: kind.map(ToString::to_string).unwrap_or_default(),
            fd_name: sock.config.fd_name.clone().unwrap_or_else(|| {
                if sock.config.accept {
                    "connection".into()
                } else {
                    sock.name.clone()
                }
            }),
            transport,
            mode: if sock.config.accept {
                ActivationMode::PerConnection
            } else {
                ActivationMode::WholeSocket
            },
            local_address: conn.and_then(|c| socket::policy_local_address(c.as_raw_fd())),
            // Read at accept (`Peer::of`).
            peer_address: peer.map(socket::policy_peer),
            peer_credentials: peer.and_then(socket::policy_credentials),
            active_connections: ConnectionCounts {
                socket: sock.active.saturating_sub(u32::from(conn.is_some())),
                source: source
                    .and_then(|k| sock.per_source.get(&k).copied())
                    .unwrap_or(0)
                    .saturating_sub(u32::from(conn.is_some())),
            },
            target_service: unit.id.to_string(),
            environment: env,
            peeked,
        }
    }

    /// The sockets whose fds a service receives, in a fixed order: those
    /// named in `Sockets=` in that order, then the other sockets that
    /// trigger it by unit name. Failed sockets contribute nothing.
    fn service_sockets(&self, svc: &ServiceRt) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for name in listed_sockets(&svc.unit) {
            if let Some(i) = self.sockets.iter().position(|s| s.name == name)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
        let mut rest: Vec<usize> = svc
            .sockets
            .iter()
            .copied()
            .filter(|i| !out.contains(i))
            .collect();
        rest.sort_by(|a, b| self.sockets[*a].name.cmp(&self.sockets[*b].name));
        out.extend(rest);
        out.retain(|i| !self.sockets[*i].failed);
        out
    }
}

/// The units to start for `names`, in start order: the named socket and
/// service units plus what they (and named targets) pull in through
/// `Wants=`, `Requires=`, `BindsTo=` and `.wants/`/`.requires/` links;
/// socket units first (as `sockets.target` comes first at boot), then
/// services in `After=`/`Before=` order, then timers. Other unit types are
/// left out.
pub fn plan_units(search: &SearchPath, names: &[UnitName]) -> Vec<UnitName> {
    use std::collections::{HashSet, VecDeque};
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<UnitName> = names.iter().cloned().collect();
    let mut found: Vec<Unit> = Vec::new();
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.to_string()) || seen.len() > 4096 {
            continue;
        }
        if !matches!(
            name.unit_type(),
            UnitType::Socket
                | UnitType::Service
                | UnitType::Target
                | UnitType::Timer
                | UnitType::Path
        ) || name.is_template()
            || target::is_boot_target(name.as_str(), search.user_mode)
        {
            continue;
        }
        let unit = load::load(search, &name);
        let mut deps: Vec<UnitName> = unit
            .wants
            .iter()
            .chain(unit.requires.iter())
            .cloned()
            .collect();
        for key in ["Wants", "Requires", "BindsTo", "Upholds"] {
            deps.extend(
                unit.entries("Unit", key)
                    .iter()
                    .filter_map(|(v, _)| match v {
                        Value::Unit(n) => n.parse().ok(),
                        _ => None,
                    }),
            );
        }
        // A unit that cannot start (masked, broken) pulls in nothing, as
        // systemd's transaction refuses its job before it adds the jobs of
        // its dependencies; a target with links but no file is flint's
        // (see `target`).
        let startable = unit.is_loaded()
            || (name.unit_type() == UnitType::Target
                && unit.load_state == load::LoadState::NotFound);
        if startable {
            queue.extend(deps);
        }
        // A unit that only a dependency names and that the tree lacks is
        // left to the jobs: quiet for `Wants=`, a failure of what
        // `Requires=` it.
        let absent = unit.load_state == load::LoadState::NotFound && !names.contains(&name);
        if name.unit_type() != UnitType::Target && !absent {
            found.push(unit);
        }
    }
    let mut sockets: Vec<UnitName> = Vec::new();
    let mut timers: Vec<UnitName> = Vec::new();
    let mut services: Vec<&Unit> = Vec::new();
    for u in &found {
        match u.name.unit_type() {
            UnitType::Socket => sockets.push(u.name.clone()),
            UnitType::Timer | UnitType::Path => timers.push(u.name.clone()),
            _ => services.push(u),
        }
    }
    // Kahn's algorithm over After=/Before= among the services; ties and
    // cycles keep the discovery order.
    let names_of = |u: &Unit, key: &str| -> Vec<String> {
        u.entries("Unit", key)
            .iter()
            .filter_map(|(v, _)| {
                if let Value::Unit(n) = v {
                    Some(n.clone())
                } else {
                    None
                }
            })
            .collect()
    };
    let index: HashMap<String, usize> = services
        .iter()
        .enumerate()
        .map(|(i, u)| (u.name.to_string(), i))
        .collect();
    let mut before: Vec<Vec<usize>> = vec![Vec::new(); services.len()];
    let mut indegree = vec![0usize; services.len()];
    for (i, u) in services.iter().enumerate() {
        for a in names_of(u, "After") {
            if let Some(&j) = index.get(&a) {
                before[j].push(i);
                indegree[i] += 1;
            }
        }
        for b in names_of(u, "Before") {
            if let Some(&j) = index.get(&b) {
                before[i].push(j);
                indegree[j] += 1;
            }
        }
    }
    let mut order = Vec::new();
    let mut done = vec![false; services.len()];
    while order.len() < services.len() {
        let next = (0..services.len())
            .find(|&i| !done[i] && indegree[i] == 0)
            .or_else(|| (0..services.len()).find(|&i| !done[i]));
        let Some(i) = next else { break };
        done[i] = true;
        for &j in &before[i] {
            indegree[j] = indegree[j].saturating_sub(1);
        }
        order.push(services[i].name.clone());
    }
    // Timers and path units last, once what they trigger is loaded
    // (systemd orders them before their unit only for the jobs of both).
    sockets.into_iter().chain(order).chain(timers).collect()
}

/// Removes the notify sockets in `dir` that no flint holds any more (one
/// killed before it could remove its own): a datagram socket nobody has
/// bound refuses a connection. Asking the socket rather than looking for
/// the pid in its name keeps the sockets of flints in other PID namespaces.
fn remove_dead_notify_sockets(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_notify = name.to_str().is_some_and(|n| {
            n.strip_prefix("notify.")
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        });
        if !is_notify {
            continue;
        }
        let path = entry.path();
        // Only sockets, and none made in the last seconds: a flint starting
        // beside this one may be between creating its node and binding it.
        let settled = std::fs::symlink_metadata(&path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
                && m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= Duration::from_secs(5))
        });
        if !settled {
            continue;
        }
        let dead = std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.connect(&path))
            .is_err_and(|e| e.raw_os_error() == Some(libc::ECONNREFUSED));
        if dead {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Binds the notify socket (under `/run/flint` for a root system flint,
/// else under `$XDG_RUNTIME_DIR/flint` or the temporary directory; one per
/// flint process) and forwards its messages to the manager.
fn start_notify(
    tx: &mpsc::UnboundedSender<Event>,
    user_mode: bool,
) -> Result<std::rc::Rc<crate::notify::NotifySocket>, String> {
    let base = if !user_mode && nix::unistd::geteuid().is_root() {
        std::path::PathBuf::from("/run")
    } else {
        crate::control::user_runtime_dir()
    };
    remove_dead_notify_sockets(&base.join("flint"));
    let path = base
        .join("flint")
        .join(format!("notify.{}", std::process::id()));
    let sock =
        std::rc::Rc::new(crate::notify::NotifySocket::bind(&path).map_err(|e| e.to_string())?);
    forward_datagrams(
        std::rc::Rc::clone(&sock),
        sock.raw_fd(),
        "notify",
        64,
        crate::notify::NotifySocket::recv_one,
        Event::Notify,
        tx.clone(),
    );
    Ok(sock)
}

/// Reads what the datagram socket `socket` (its fd `fd`) receives, one
/// datagram per `recv` (`Ok(Some(None))` for one it dropped), and sends
/// each message to the manager as `event` makes it:
/// at most `batch` before the task lets the loop do other work.
fn forward_datagrams<S: 'static, T: 'static>(
    socket: std::rc::Rc<S>,
    fd: std::os::fd::RawFd,
    what: &'static str,
    batch: usize,
    recv: fn(&S) -> std::io::Result<Option<Option<T>>>,
    event: fn(T) -> Event,
    tx: mpsc::UnboundedSender<Event>,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_local(async move {
        // SAFETY: `fd` is `socket`'s, which this task holds (`Rc`) for
        // longer than the registration lives.
        let Ok(afd) = (unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }) else {
            return;
        };
        loop {
            let Ok(mut guard) = afd.readable().await else {
                return;
            };
            for _ in 0..batch {
                match recv(&socket) {
                    Ok(Some(Some(m))) => {
                        if tx.send(event(m)).is_err() {
                            return;
                        }
                    }
                    // Dropped (junk): counted against the batch all the same.
                    Ok(Some(None)) => {}
                    Ok(None) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("{what}: {e}");
                        guard.clear_ready();
                        break;
                    }
                }
            }
            tokio::task::yield_now().await;
        }
    })
}

/// A peer for the log.
fn peer_text(peer: Option<&Peer>) -> String {
    match peer {
        Some(Peer::Inet(sa)) => sa.to_string(),
        Some(Peer::Unix { path: Some(p), .. }) => p.clone(),
        Some(Peer::Unix { cred: Some(c), .. }) => format!("uid {}", c.uid()),
        Some(Peer::Vsock { cid, port }) => format!("vsock:{cid}:{port}"),
        _ => "an unknown peer".to_string(),
    }
}

/// The socket units a service names in `Sockets=`, in their order.
pub(super) fn listed_sockets(unit: &Unit) -> impl Iterator<Item = &str> {
    unit.entries("Service", "Sockets")
        .iter()
        .filter_map(|(v, _)| match v {
            Value::Unit(n) => Some(n.as_str()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the loop's batch holds, in a word per event.
    fn shape(batch: &std::collections::VecDeque<Event>) -> Vec<String> {
        batch
            .iter()
            .map(|e| match e {
                Event::Accepted { socket, conn, .. } => {
                    format!("conn{socket}.{}", conn.as_raw_fd())
                }
                Event::Exited { service, .. } => format!("exit{service}"),
                Event::ChildSignal => "sigchld".into(),
                Event::RestartDue { service } => format!("restart{service}"),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn connections_go_ahead_of_exits_only_where_the_socket_admits_them_anyway() {
        let conn = |socket: usize| {
            let conn = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
            Event::Accepted {
                socket,
                listener: 0,
                conn,
            }
        };
        let exit = |service: u64| Event::Exited {
            service,
            pid: 1,
            status: ExitStatus::Exited(0),
        };
        // Socket 0 admits two more, socket 1 none; services from 100 on
        // are not instances that end alone.
        let admits = |socket: usize, already: u32| socket == 0 && already < 2;
        let alone = |service: u64| service < 100;
        let mut batch = std::collections::VecDeque::from([
            exit(7),
            Event::ChildSignal,
            conn(0),
            exit(8),
            conn(0),
            conn(1),
            conn(0),
        ]);
        let before = shape(&batch);
        connections_first(&mut batch, admits, alone);
        // Socket 1 is at its limit: its connection stays, and so does the
        // one after it.
        assert_eq!(
            shape(&batch),
            [2, 4, 0, 1, 3, 5, 6].map(|i| before[i].clone())
        );
        // A third of socket 0 stays behind (its limit would depend on the
        // exits), and no connection passes another event.
        let mut batch = std::collections::VecDeque::from([
            exit(1),
            conn(0),
            conn(0),
            conn(0),
            Event::RestartDue { service: 3 },
            conn(0),
        ]);
        let before = shape(&batch);
        connections_first(&mut batch, admits, alone);
        assert_eq!(shape(&batch), [1, 2, 0, 3, 4, 5].map(|i| before[i].clone()));
        let mut batch =
            std::collections::VecDeque::from([exit(1), Event::RestartDue { service: 3 }, conn(0)]);
        let before = shape(&batch);
        connections_first(&mut batch, admits, alone);
        assert_eq!(shape(&batch), before, "not past another event");
        let mut batch = std::collections::VecDeque::from([conn(0), exit(1), conn(0)]);
        let before = shape(&batch);
        connections_first(&mut batch, admits, alone);
        assert_eq!(shape(&batch), [0, 2, 1].map(|i| before[i].clone()));
        let mut batch = std::collections::VecDeque::from([exit(1), exit(100), conn(0)]);
        let before = shape(&batch);
        connections_first(&mut batch, admits, alone);
        assert_eq!(
            shape(&batch),
            before,
            "not past the end of a unit whose end may matter to it"
        );
    }

    /// Links made by `flint enable` count even when the tree has no
    /// `sockets.target` file (a host without systemd's own units).
    #[test]
    fn default_units_follow_wants_links_of_a_target_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        w("on.socket", "[Socket]\nListenStream=1\n");
        w("off.socket", "[Socket]\nListenStream=2\n");
        std::fs::create_dir(dir.path().join("sockets.target.wants")).unwrap();
        std::os::unix::fs::symlink(
            "/usr/lib/systemd/system/on.socket",
            dir.path().join("sockets.target.wants/on.socket"),
        )
        .unwrap();
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        let units: Vec<String> = default_units(&search)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(units, ["on.socket"]);
        std::fs::remove_dir_all(dir.path().join("sockets.target.wants")).unwrap();
        let units: Vec<String> = default_units(&search)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(units, ["off.socket", "on.socket"]);
    }

    #[test]
    fn plan_pulls_in_dependencies_and_orders_them() {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        w(
            "app.service",
            "[Unit]\nWants=db.service\nAfter=db.service cache.service\nRequires=app.socket\n[Service]\nExecStart=/bin/true\n",
        );
        w(
            "db.service",
            "[Unit]\nAfter=log.service\n[Service]\nExecStart=/bin/true\n",
        );
        w(
            "log.service",
            "[Unit]\nBefore=db.service\n[Service]\nExecStart=/bin/true\n",
        );
        w("app.socket", "[Socket]\nListenStream=1\n");
        w("multi-user.target", "[Unit]\nDescription=m\n");
        std::fs::create_dir(dir.path().join("multi-user.target.wants")).unwrap();
        std::os::unix::fs::symlink(
            "../log.service",
            dir.path().join("multi-user.target.wants/log.service"),
        )
        .unwrap();
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        let names: Vec<UnitName> = ["app.service", "multi-user.target"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let plan: Vec<String> = plan_units(&search, &names)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            plan,
            ["app.socket", "log.service", "db.service", "app.service"]
        );
    }

    /// A masked unit a target wants pulls in nothing of its own (its
    /// `.wants/` links in a directory of lower priority, its `Wants=`).
    #[test]
    fn a_masked_unit_pulls_in_nothing() {
        let (etc, run) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let w = |name: &str, text: &str| std::fs::write(run.path().join(name), text).unwrap();
        w(
            "p.service",
            "[Unit]\nWants=q.service\n[Service]\nExecStart=/bin/true\n",
        );
        w("c.service", "[Service]\nExecStart=/bin/true\n");
        w("q.service", "[Service]\nExecStart=/bin/true\n");
        std::fs::create_dir(run.path().join("p.service.wants")).unwrap();
        std::os::unix::fs::symlink("../c.service", run.path().join("p.service.wants/c.service"))
            .unwrap();
        std::fs::create_dir(run.path().join("multi-user.target.wants")).unwrap();
        std::os::unix::fs::symlink(
            "../p.service",
            run.path().join("multi-user.target.wants/p.service"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/dev/null", etc.path().join("p.service")).unwrap();
        let search = SearchPath::from_dirs(
            vec![etc.path().to_path_buf(), run.path().to_path_buf()],
            false,
        );
        let names = default_units(&search);
        assert_eq!(names, ["p.service".parse::<UnitName>().unwrap()]);
        let plan: Vec<String> = plan_units(&search, &names)
            .iter()
            .map(ToString::to_string)
            .collect();
        // (The masked unit itself is refused at its start, quietly.)
        assert_eq!(plan, ["p.service"]);
    }
}
