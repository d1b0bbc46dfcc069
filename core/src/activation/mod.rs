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

mod limit;
mod socket;

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::service::exec::{self as exec, SpawnInputs};
use crate::spawn::{self, ExitStatus};
use crate::unit::load::{self, Unit, Value};
use crate::unit::loader::{self, SearchPath};
use crate::unit::name::{UnitName, UnitType};

pub use socket::SocketConfig;

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
}

/// Events the manager reacts to.
#[derive(Debug)]
enum Event {
    /// A listener of an `Accept=no` socket is readable.
    Readable { socket: usize },
    /// An `Accept=yes` socket accepted a connection.
    Accepted { socket: usize, conn: OwnedFd },
    /// A watcher failed on a listener (e.g. POLLHUP).
    ListenerFailed { socket: usize, error: String },
    /// A process of a service exited.
    Exited {
        service: u64,
        pid: i32,
        status: ExitStatus,
    },
    /// The restart delay of a service is over.
    RestartDue { service: u64 },
    /// The stop timeout of a service is over.
    StopTimeout { service: u64 },
    /// SIGTERM or SIGINT: stop everything and exit.
    Shutdown,
}

/// Where a service is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Dead,
    /// Running `ExecStartPre=` command number `n`.
    StartPre(usize),
    Running,
    /// Running `ExecStopPost=` command number `n`.
    StopPost(usize),
    /// Waiting `RestartSec=` before starting again.
    AutoRestart,
    Failed,
}

struct ServiceRt {
    unit: Unit,
    state: State,
    /// Main process pid while running; control process pid otherwise.
    pid: Option<i32>,
    /// The sockets that trigger it (`Accept=no`), whose fds it receives.
    sockets: Vec<usize>,
    /// The connection of an `Accept=yes` instance, and its socket and source.
    conn: Option<(OwnedFd, usize, Option<Peer>)>,
    /// Start times for `StartLimitIntervalSec=`/`StartLimitBurst=`.
    starts: VecDeque<Instant>,
    /// Whether a stop was requested (no restart then).
    stopping: bool,
    /// The result of the last run: `success`, `exit-code`, `signal`, ...
    result: &'static str,
    last_status: Option<ExitStatus>,
    restarts: u32,
}

/// The manager: owns every socket and service.
struct Manager {
    search: SearchPath,
    sockets: Vec<SocketRt>,
    services: HashMap<u64, ServiceRt>,
    by_name: HashMap<String, u64>,
    next_id: u64,
    tx: mpsc::UnboundedSender<Event>,
    shutting_down: bool,
}

/// Runs the named units (or the enabled ones) until SIGTERM/SIGINT.
/// Returns the process exit code.
pub fn run(search: SearchPath, names: Vec<UnitName>) -> Result<u8, RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move { run_async(search, names).await })
}

/// The units `flint run` starts when none are named: what `sockets.target`,
/// `multi-user.target` and `default.target` want, or else every socket unit.
pub fn default_units(search: &SearchPath) -> Vec<UnitName> {
    let mut out: Vec<UnitName> = Vec::new();
    for target in ["sockets.target", "multi-user.target", "default.target"] {
        let Ok(name) = target.parse::<UnitName>() else {
            continue;
        };
        if let Ok(src) = loader::resolve(search, &name) {
            for u in src.wants.iter().chain(src.requires.iter()) {
                if !out.contains(u) {
                    out.push(u.clone());
                }
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

async fn run_async(search: SearchPath, mut names: Vec<UnitName>) -> Result<u8, RunError> {
    if names.is_empty() {
        names = default_units(&search);
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut mgr = Manager {
        search,
        sockets: Vec::new(),
        services: HashMap::new(),
        by_name: HashMap::new(),
        next_id: 1,
        tx: tx.clone(),
        shutting_down: false,
    };
    let mut started = 0usize;
    for name in &names {
        match name.unit_type() {
            UnitType::Socket => {
                if mgr.add_socket(name) {
                    started += 1;
                }
            }
            UnitType::Service => {
                if let Some(id) = mgr.add_service(name) {
                    mgr.start(id);
                    started += 1;
                }
            }
            _ => tracing::warn!("{name}: flint runs socket and service units; ignoring"),
        }
    }
    if started == 0 {
        return Err(RunError::Nothing(if names.is_empty() {
            "no socket units found in the unit tree".into()
        } else {
            "no named unit could be started".into()
        }));
    }
    spawn_signal_watch(tx.clone())?;
    tracing::info!("flint: {started} unit(s) running");
    while let Some(event) = rx.recv().await {
        mgr.handle(event);
        if mgr.shutting_down && mgr.all_dead() {
            break;
        }
    }
    mgr.close_sockets();
    tracing::info!("flint: stopped");
    Ok(0)
}

fn spawn_signal_watch(tx: mpsc::UnboundedSender<Event>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::task::spawn_local(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = tx.send(Event::Shutdown);
    });
    Ok(())
}

impl Manager {
    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Loads a socket unit and its service, opens its listeners and starts
    /// watching them. Failures are logged; the other units go on.
    fn add_socket(&mut self, name: &UnitName) -> bool {
        let unit = load::load(&self.search, name);
        if !unit.is_loaded() {
            for d in &unit.diagnostics {
                tracing::error!("{d}");
            }
            tracing::error!("{name}: failed to load ({})", unit.load_state.as_str());
            return false;
        }
        let config = match SocketConfig::from_unit(&unit) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{name}: {e}");
                return false;
            }
        };
        // The service must exist before the socket listens.
        let service_id = if config.accept {
            let template = config.service.clone();
            match loader::resolve(&self.search, &template) {
                Ok(src) if !src.masked => None,
                _ => {
                    tracing::error!("{name}: template {template} not found; refusing to listen");
                    return false;
                }
            }
        } else if let Some(id) = self.add_service(&config.service) {
            Some(id)
        } else {
            tracing::error!(
                "{name}: service {} cannot be loaded; refusing to listen",
                config.service
            );
            return false;
        };
        let index = self.sockets.len();
        let rt = match SocketRt::open(index, unit, config, &self.tx) {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("{name}: {e}");
                return false;
            }
        };
        for l in &rt.listeners {
            tracing::info!("{name}: listening on {}", l.describe());
        }
        self.sockets.push(rt);
        if let Some(id) = service_id
            && let Some(svc) = self.services.get_mut(&id)
        {
            svc.sockets.push(index);
        }
        self.sockets[index].arm();
        true
    }

    /// Loads a service by name once; returns its id.
    fn add_service(&mut self, name: &UnitName) -> Option<u64> {
        if let Some(id) = self.by_name.get(name.as_str()) {
            return Some(*id);
        }
        let unit = load::load(&self.search, name);
        if !unit.is_loaded() {
            for d in &unit.diagnostics {
                tracing::error!("{d}");
            }
            tracing::error!("{name}: failed to load ({})", unit.load_state.as_str());
            return None;
        }
        let id = self.new_id();
        self.services.insert(id, ServiceRt::new(unit));
        self.by_name.insert(name.to_string(), id);
        Some(id)
    }

    fn all_dead(&self) -> bool {
        self.services
            .values()
            .all(|s| matches!(s.state, State::Dead | State::Failed | State::AutoRestart))
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Readable { socket } => self.on_readable(socket),
            Event::Accepted { socket, conn } => self.on_accepted(socket, conn),
            Event::ListenerFailed { socket, error } => {
                let name = self.sockets[socket].name.clone();
                tracing::error!("{name}: {error}; closing its listeners");
                self.sockets[socket].fail();
            }
            Event::Exited {
                service,
                pid,
                status,
            } => self.on_exit(service, pid, status),
            Event::RestartDue { service } => {
                if self
                    .services
                    .get(&service)
                    .is_some_and(|s| s.state == State::AutoRestart)
                    && !self.shutting_down
                {
                    self.start(service);
                }
            }
            Event::StopTimeout { service } => {
                if let Some(svc) = self.services.get(&service)
                    && let (Some(pid), State::Running | State::StartPre(_) | State::StopPost(_)) =
                        (svc.pid, svc.state)
                    && svc.unit.get_bool("Service", "SendSIGKILL").unwrap_or(true)
                {
                    tracing::warn!("{}: stop timeout; sending SIGKILL", svc.unit.id);
                    signal_group(pid, libc::SIGKILL);
                }
            }
            Event::Shutdown => self.shutdown(),
        }
    }

    fn on_readable(&mut self, socket: usize) {
        if self.shutting_down {
            return;
        }
        let sock = &mut self.sockets[socket];
        if !sock.trigger_limit.allow() {
            tracing::error!(
                "{}: Trigger limit hit, refusing further activation.",
                sock.name
            );
            sock.fail();
            return;
        }
        sock.disarm();
        let service = sock.config.service.clone();
        let Some(&id) = self.by_name.get(service.as_str()) else {
            return;
        };
        // A pending restart just waits; the traffic stays queued for it.
        if let Some(State::Dead | State::Failed) = self.services.get(&id).map(|s| s.state) {
            self.start(id);
        }
    }

    fn on_accepted(&mut self, socket: usize, conn: OwnedFd) {
        if self.shutting_down {
            return;
        }
        let sock = &mut self.sockets[socket];
        if !sock.trigger_limit.allow() {
            tracing::error!(
                "{}: Trigger limit hit, refusing further activation.",
                sock.name
            );
            sock.fail();
            return;
        }
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
        if sock.config.max_connections_per_source > 0
            && let Some(key) = peer.as_ref().and_then(Peer::source_key)
            && sock.per_source.get(&key).copied().unwrap_or(0)
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
        let Some(instance) = socket::instance_name(sock.accepted, &conn) else {
            // The peer is already gone: drop silently, as systemd does.
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
            return;
        };
        let unit = load::load(&self.search, &name);
        if !unit.is_loaded() {
            for d in &unit.diagnostics {
                tracing::error!("{d}");
            }
            tracing::error!(
                "{}: instance {name} failed to load; closing the socket",
                sock.name
            );
            sock.fail();
            return;
        }
        sock.active += 1;
        if let Some(key) = peer.as_ref().and_then(Peer::source_key) {
            *sock.per_source.entry(key).or_insert(0) += 1;
        }
        let id = self.new_id();
        let mut svc = ServiceRt::new(unit);
        svc.conn = Some((conn, socket, peer));
        self.services.insert(id, svc);
        self.start(id);
    }

    /// Starts a service: start limit, then `ExecStartPre=`, then the main process.
    fn start(&mut self, id: u64) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let interval = start_limit_interval(&svc.unit);
        let burst = usize::try_from(start_limit_burst(&svc.unit)).unwrap_or(usize::MAX);
        if interval > Duration::ZERO && burst > 0 {
            let now = Instant::now();
            while svc
                .starts
                .front()
                .is_some_and(|t| now.duration_since(*t) > interval)
            {
                svc.starts.pop_front();
            }
            if svc.starts.len() >= burst {
                tracing::error!("{}: Start request repeated too quickly.", svc.unit.id);
                svc.state = State::Failed;
                svc.result = "start-limit-hit";
                let sockets = svc.sockets.clone();
                for s in sockets {
                    tracing::error!(
                        "{}: Failed with result 'service-start-limit-hit'.",
                        self.sockets[s].name
                    );
                    self.sockets[s].fail();
                }
                return;
            }
            svc.starts.push_back(now);
        }
        svc.stopping = false;
        svc.result = "success";
        self.run_step(id, State::StartPre(0));
    }

    /// Runs the command of `state` or moves past it when there is none.
    fn run_step(&mut self, id: u64, mut state: State) {
        loop {
            let Some(svc) = self.services.get(&id) else {
                return;
            };
            let (key, n) = match state {
                State::StartPre(n) => ("ExecStartPre", n),
                State::Running => ("ExecStart", 0),
                State::StopPost(n) => ("ExecStopPost", n),
                _ => return,
            };
            let commands = svc.unit.commands("Service", key);
            let Some(cmd) = commands.get(n).map(|c| (*c).clone()) else {
                match state {
                    State::StartPre(_) => {
                        state = State::Running;
                        continue;
                    }
                    State::StopPost(_) => {
                        self.after_stop(id);
                        return;
                    }
                    _ => {
                        // No ExecStart= (oneshot with RemainAfterExit=): done.
                        if let Some(svc) = self.services.get_mut(&id) {
                            svc.state = State::Running;
                            svc.pid = None;
                        }
                        return;
                    }
                }
            };
            match self.spawn_command(id, &cmd, state) {
                Ok(pid) => {
                    if let Some(svc) = self.services.get_mut(&id) {
                        svc.state = state;
                        svc.pid = Some(pid);
                    }
                    return;
                }
                Err(msg) => {
                    let name = self
                        .services
                        .get(&id)
                        .map(|s| s.unit.id.to_string())
                        .unwrap_or_default();
                    tracing::error!("{name}: {msg}");
                    if cmd.ignore_failure {
                        state = next_state(state);
                        continue;
                    }
                    if let Some(svc) = self.services.get_mut(&id) {
                        svc.result = "resources";
                    }
                    if let State::StopPost(_) = state {
                        self.after_stop(id);
                        return;
                    }
                    state = State::StopPost(0);
                }
            }
        }
    }

    fn spawn_command(
        &mut self,
        id: u64,
        cmd: &crate::unit::value::exec::ExecCommand,
        state: State,
    ) -> Result<i32, String> {
        let svc = self.services.get(&id).ok_or("unknown service")?;
        let main = state == State::Running;
        let mut inputs = SpawnInputs {
            user_mode: self.search.user_mode,
            main_process: main,
            fds_are_sockets: true,
            ..Default::default()
        };
        if let Some((conn, socket, peer)) = &svc.conn {
            let sock = &self.sockets[*socket];
            let name = sock
                .config
                .fd_name
                .clone()
                .unwrap_or_else(|| "connection".to_string());
            inputs.fds.push((conn.as_raw_fd(), name));
            if let Some(p) = peer {
                inputs.extra_env.extend(p.remote_env());
            }
        } else {
            for s in &svc.sockets {
                let sock = &self.sockets[*s];
                let name = sock
                    .config
                    .fd_name
                    .clone()
                    .unwrap_or_else(|| sock.name.clone());
                for l in &sock.listeners {
                    inputs.fds.push((l.fd.as_raw_fd(), name.clone()));
                }
            }
        }
        // Only the main process gets the fds, unless they are its stdio.
        let inetd = svc.unit.get_str("Service", "StandardInput") == Some("socket");
        if !main && !inetd {
            inputs.fds.clear();
        }
        inputs
            .extra_env
            .push(("INVOCATION_ID".into(), exec::invocation_id()));
        if matches!(state, State::StopPost(_)) {
            inputs
                .extra_env
                .push(("SERVICE_RESULT".into(), svc.result.to_string()));
            if let Some(st) = svc.last_status {
                let (code, status) = match st {
                    ExitStatus::Exited(c) => ("exited", c.to_string()),
                    ExitStatus::Signaled {
                        signal,
                        core_dumped,
                    } => {
                        let name = crate::unit::value::signal::signal_name(signal).map_or_else(
                            || signal.to_string(),
                            |n| n.trim_start_matches("SIG").to_string(),
                        );
                        (if core_dumped { "dumped" } else { "killed" }, name)
                    }
                };
                inputs.extra_env.push(("EXIT_CODE".into(), code.into()));
                inputs.extra_env.push(("EXIT_STATUS".into(), status));
            }
        }
        let prepared = exec::prepare(&svc.unit, "Service", cmd, &inputs)
            .map_err(|e| format!("failed to prepare {}: {e}", cmd.path))?;
        let child = spawn::spawn(&prepared.plan)
            .map_err(|e| format!("failed to start {}: {e}", cmd.path))?;
        drop(prepared);
        let pid = child.pid;
        tracing::info!("{}: started {} (pid {pid})", svc.unit.id, cmd.path);
        let tx = self.tx.clone();
        tokio::task::spawn_local(async move {
            let status = match child.wait().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("waiting for pid {pid} failed: {e}");
                    ExitStatus::Exited(255)
                }
            };
            let _ = tx.send(Event::Exited {
                service: id,
                pid,
                status,
            });
        });
        Ok(pid)
    }

    fn on_exit(&mut self, id: u64, pid: i32, status: ExitStatus) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        if svc.pid != Some(pid) {
            return;
        }
        svc.pid = None;
        let state = svc.state;
        let clean = is_clean(&svc.unit, status, state == State::Running);
        let name = svc.unit.id.to_string();
        match state {
            State::StartPre(n) => {
                let ignore = svc
                    .unit
                    .commands("Service", "ExecStartPre")
                    .get(n)
                    .is_some_and(|c| c.ignore_failure);
                if clean || ignore {
                    self.run_step(id, State::StartPre(n + 1));
                } else {
                    tracing::warn!("{name}: ExecStartPre= failed: {status}");
                    svc.result = result_of(status);
                    svc.last_status = Some(status);
                    self.run_step(id, State::StopPost(0));
                }
            }
            State::Running => {
                svc.last_status = Some(status);
                let ignore = svc
                    .unit
                    .commands("Service", "ExecStart")
                    .first()
                    .is_some_and(|c| c.ignore_failure);
                if clean || ignore {
                    tracing::info!("{name}: exited ({status})");
                } else {
                    svc.result = result_of(status);
                    tracing::warn!("{name}: failed ({status}), result '{}'", svc.result);
                }
                // Remaining processes of the service are stopped with it.
                signal_group(pid, libc::SIGTERM);
                self.run_step(id, State::StopPost(0));
            }
            State::StopPost(n) => self.run_step(id, State::StopPost(n + 1)),
            _ => {}
        }
    }

    /// After the last `ExecStopPost=`: restart, or go dead and re-arm the sockets.
    fn after_stop(&mut self, id: u64) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let failed = svc.result != "success";
        svc.state = if failed { State::Failed } else { State::Dead };
        let restart = !svc.stopping
            && !self.shutting_down
            && should_restart(&svc.unit, svc.result, svc.last_status);
        if restart && svc.conn.is_none() {
            svc.state = State::AutoRestart;
            svc.restarts += 1;
            let delay = Duration::from_micros(
                svc.unit
                    .get_usec("Service", "RestartSec")
                    .unwrap_or(100_000),
            );
            tracing::info!("{}: scheduling restart in {delay:?}", svc.unit.id);
            let tx = self.tx.clone();
            tokio::task::spawn_local(async move {
                tokio::time::sleep(delay).await;
                let _ = tx.send(Event::RestartDue { service: id });
            });
        }
        if let Some((_, socket, peer)) = &svc.conn {
            let (socket, key) = (*socket, peer.as_ref().and_then(Peer::source_key));
            let sock = &mut self.sockets[socket];
            sock.active = sock.active.saturating_sub(1);
            if let Some(key) = key
                && let Some(n) = sock.per_source.get_mut(&key)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    sock.per_source.remove(&key);
                }
            }
            self.services.remove(&id);
            return;
        }
        // Accept=no: the sockets listen again (also during a restart delay).
        if !self.shutting_down {
            let sockets = svc.sockets.clone();
            for s in sockets {
                self.sockets[s].rearm();
            }
        }
    }

    fn shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        tracing::info!("flint: stopping");
        self.shutting_down = true;
        for s in &mut self.sockets {
            s.disarm();
        }
        let ids: Vec<u64> = self.services.keys().copied().collect();
        for id in ids {
            let Some(svc) = self.services.get_mut(&id) else {
                continue;
            };
            svc.stopping = true;
            if svc.state == State::AutoRestart {
                svc.state = State::Dead;
            }
            if let Some(pid) = svc.pid {
                let sig = match svc.unit.get("Service", "KillSignal") {
                    Some(Value::Signal(s)) => *s,
                    _ => libc::SIGTERM,
                };
                signal_group(pid, sig);
                if svc.unit.get_bool("Service", "SendSIGHUP").unwrap_or(false) {
                    signal_group(pid, libc::SIGHUP);
                }
                signal_group(pid, libc::SIGCONT);
                let timeout = svc
                    .unit
                    .get_usec("Service", "TimeoutStopSec")
                    .or_else(|| svc.unit.get_usec("Service", "TimeoutSec"))
                    .unwrap_or(90_000_000);
                if timeout != u64::MAX {
                    let tx = self.tx.clone();
                    tokio::task::spawn_local(async move {
                        tokio::time::sleep(Duration::from_micros(timeout)).await;
                        let _ = tx.send(Event::StopTimeout { service: id });
                    });
                }
            }
        }
    }

    fn close_sockets(&mut self) {
        for s in &mut self.sockets {
            s.close();
        }
    }
}

impl ServiceRt {
    fn new(unit: Unit) -> ServiceRt {
        ServiceRt {
            unit,
            state: State::Dead,
            pid: None,
            sockets: Vec::new(),
            conn: None,
            starts: VecDeque::new(),
            stopping: false,
            result: "success",
            last_status: None,
            restarts: 0,
        }
    }
}

fn next_state(state: State) -> State {
    match state {
        State::StartPre(n) => State::StartPre(n + 1),
        State::StopPost(n) => State::StopPost(n + 1),
        s => s,
    }
}

/// Sends `signal` to the process group the service's process leads (every
/// service starts in a new session, so its pid is its group id).
fn signal_group(pid: i32, signal: i32) {
    // SAFETY: kill(2) takes plain integers and has no memory effects.
    unsafe {
        libc::kill(-pid, signal);
    }
}

fn start_limit_interval(unit: &Unit) -> Duration {
    let us = unit
        .get_usec("Unit", "StartLimitIntervalSec")
        .or_else(|| unit.get_usec("Unit", "StartLimitInterval"))
        .or_else(|| unit.get_usec("Service", "StartLimitInterval"))
        .unwrap_or(10_000_000);
    if us == u64::MAX {
        Duration::MAX
    } else {
        Duration::from_micros(us)
    }
}

fn start_limit_burst(unit: &Unit) -> u64 {
    unit.get_u64("Unit", "StartLimitBurst")
        .or_else(|| unit.get_u64("Service", "StartLimitBurst"))
        .unwrap_or(5)
}

/// systemd's "clean exit": 0, SIGHUP/SIGINT/SIGTERM/SIGPIPE for the main
/// process, or a `SuccessExitStatus=` entry.
fn is_clean(unit: &Unit, status: ExitStatus, main: bool) -> bool {
    let listed = |code: Option<i32>, sig: Option<i32>| {
        unit.entries("Service", "SuccessExitStatus")
            .iter()
            .any(|(v, _)| match v {
                Value::ExitStatus { codes, signals } => {
                    code.is_some_and(|c| codes.iter().any(|x| i32::from(*x) == c))
                        || sig.is_some_and(|s| signals.contains(&s))
                }
                _ => false,
            })
    };
    match status {
        ExitStatus::Exited(0) => true,
        ExitStatus::Exited(c) => listed(Some(c), None),
        ExitStatus::Signaled { signal, .. } => {
            (main
                && matches!(
                    signal,
                    libc::SIGHUP | libc::SIGINT | libc::SIGTERM | libc::SIGPIPE
                ))
                || listed(None, Some(signal))
        }
    }
}

fn result_of(status: ExitStatus) -> &'static str {
    match status {
        ExitStatus::Exited(_) => "exit-code",
        ExitStatus::Signaled {
            core_dumped: true, ..
        } => "core-dump",
        ExitStatus::Signaled { .. } => "signal",
    }
}

/// `Restart=` with `RestartPreventExitStatus=`/`RestartForceExitStatus=`.
fn should_restart(unit: &Unit, result: &str, status: Option<ExitStatus>) -> bool {
    let in_list = |key: &str| {
        let Some(st) = status else { return false };
        unit.entries("Service", key)
            .iter()
            .any(|(v, _)| match (v, st) {
                (Value::ExitStatus { codes, .. }, ExitStatus::Exited(c)) => {
                    codes.iter().any(|x| i32::from(*x) == c)
                }
                (Value::ExitStatus { signals, .. }, ExitStatus::Signaled { signal, .. }) => {
                    signals.contains(&signal)
                }
                _ => false,
            })
    };
    if in_list("RestartPreventExitStatus") {
        return false;
    }
    if in_list("RestartForceExitStatus") {
        return true;
    }
    let policy = unit.get_str("Service", "Restart").unwrap_or("no");
    let success = result == "success";
    match policy {
        "always" => true,
        "on-success" => success,
        "on-failure" => !success,
        "on-abnormal" => matches!(result, "signal" | "core-dump" | "timeout" | "watchdog"),
        "on-abort" => matches!(result, "signal" | "core-dump"),
        "on-watchdog" => result == "watchdog",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::load::LoadState;

    #[test]
    fn restart_policies_follow_systemd_table() {
        // (policy, result) -> restart?  From systemd.service(5), "Restart=".
        let table = [
            ("no", "exit-code", false),
            ("always", "success", true),
            ("on-success", "success", true),
            ("on-success", "exit-code", false),
            ("on-failure", "exit-code", true),
            ("on-failure", "success", false),
            ("on-failure", "signal", true),
            ("on-abnormal", "exit-code", false),
            ("on-abnormal", "signal", true),
            ("on-abort", "signal", true),
            ("on-abort", "timeout", false),
            ("on-watchdog", "watchdog", true),
        ];
        for (policy, result, expect) in table {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("t.service"),
                format!("[Service]\nExecStart=/bin/true\nRestart={policy}\n"),
            )
            .unwrap();
            let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
            let unit = load::load(&search, &"t.service".parse().unwrap());
            assert_eq!(unit.load_state, LoadState::Loaded);
            assert_eq!(
                should_restart(&unit, result, Some(ExitStatus::Exited(1))),
                expect,
                "Restart={policy} result={result}"
            );
        }
    }
}
