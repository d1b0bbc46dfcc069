//! Starting and stopping a socket unit with its own commands:
//! `ExecStartPre=` (before the listeners exist), `ExecStartPost=` (listeners
//! open, not watched yet), `ExecStopPre=` (still open) and `ExecStopPost=`
//! (closed), as systemd's `socket.c` runs them.
//!
//! The commands run as tasks of the event loop that wait for each process
//! on its pidfd, so a slow or hung command holds up only its own socket:
//! every other socket goes on accepting and every service goes on being
//! supervised meanwhile. A socket whose `ExecStartPre=` or `ExecStartPost=`
//! runs is *starting*; the start job of the service it triggers waits for it
//! (as systemd orders a service after its sockets), and flint's readiness
//! (`--notify-fd`) waits for every starting socket. Each command is bounded
//! by the socket's `TimeoutSec=` (default 90 s) and killed after it.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicI32;
use std::time::Duration;

use super::socket::OpenListener;
use super::{Event, Manager, SocketConfig, SocketPolicy, SocketRt, signal_group};
use crate::listen::SocketOptions;
use crate::service::exec::{self as exec, SpawnInputs};
use crate::spawn;
use crate::unit::load::Unit;
use crate::unit::loader;
use crate::unit::name::UnitName;

/// `running` while a command is being spawned.
const SPAWNING: i32 = -1;
/// `running` while a command is being spawned that a stop ends as soon as
/// it exists.
const SPAWNING_STOPPED: i32 = -2;

/// The command a socket runs now: for the reaper, for a stop and for
/// shutdown.
#[derive(Debug, Default)]
pub(super) struct CommandPid {
    /// Its pid (0: none; [`SPAWNING`] or [`SPAWNING_STOPPED`] while it is
    /// being spawned).
    state: Cell<i32>,
    /// While it is being spawned: its child's pid as soon as the child
    /// exists ([`spawn::spawn_noting_pid`]).
    child: Arc<AtomicI32>,
}

impl CommandPid {
    pub(super) fn get(&self) -> i32 {
        self.state.get()
    }

    pub(super) fn set(&self, state: i32) {
        self.state.set(state);
    }

    /// While being spawned: what the reaper must leave alone.
    fn spawning_child(&self) -> Option<&Arc<AtomicI32>> {
        (self.state.get() < 0).then_some(&self.child)
    }
}

/// A socket unit whose start (or stop) commands are running.
pub(super) struct SocketHooks {
    /// What happens when the commands succeed.
    next: Next,
    /// The service the socket triggers (`Accept=no`), whose start waits.
    service: Option<u64>,
    /// The command running now.
    running: Rc<CommandPid>,
    /// The units the socket's `Before=` names: their start waits for it
    /// while it starts, also before its listeners are open.
    before: Vec<String>,
}

impl SocketHooks {
    /// The pid of the command running now (0 or less: none yet).
    pub(super) fn running_pid(&self) -> i32 {
        self.running.get()
    }
}

/// The step after a socket's commands.
enum Next {
    /// `ExecStartPre=` ran: open the listeners.
    Open(Box<Opening>),
    /// `ExecStartPost=` ran: watch socket `index`.
    Arm(usize),
    /// `ExecStopPre=` ran: close socket `index`, then run `ExecStopPost=`.
    Close(usize),
}

/// A loaded socket unit not listening yet.
pub(super) struct Opening {
    unit: Unit,
    config: SocketConfig,
    policy: Option<SocketPolicy>,
    service: Option<u64>,
    /// Listeners with its addresses that a switch let go of, kept open
    /// while its `ExecStartPre=` runs, for it to take over.
    reserved: Vec<(OpenListener, SocketOptions)>,
}

fn has_commands(unit: &Unit, key: &str) -> bool {
    !unit.commands("Socket", key).is_empty()
}

impl Manager {
    /// Loads a socket unit and its service, opens its listeners and starts
    /// watching them (after its `ExecStartPre=`/`ExecStartPost=`, which
    /// run while the loop goes on). Failures are logged; the other units go
    /// on. Returns whether the socket is listening or on its way there.
    pub(super) fn add_socket(&mut self, name: &UnitName) -> bool {
        self.add_socket_for(name, None)
    }

    /// Opens again a socket that failed or was stopped: its old entry is
    /// retired (services no longer count it as theirs), then it is loaded
    /// and opened as new. Returns what [`Self::add_socket`] returns.
    pub(super) fn reopen_socket(&mut self, index: usize, name: &UnitName) -> bool {
        if self.sockets[index].failed && !self.hooks.contains_key(name.as_str()) {
            self.sockets[index].removed = true;
            // Its counters go on (systemd keeps NAccepted=/NRefused= for
            // as long as the unit is loaded).
            let old = &self.sockets[index];
            self.socket_counts
                .insert(name.to_string(), (old.accepted, old.refused));
            for svc in self.services.values_mut() {
                if svc.conn.is_none() {
                    svc.sockets.retain(|s| *s != index);
                }
            }
        }
        self.add_socket(name)
    }

    /// [`Self::add_socket`] for a socket that `owner` lists in `Sockets=`: as
    /// in systemd, such a socket without `Service=` triggers `owner` when no
    /// service of its own name exists. A socket already open is left alone.
    pub(super) fn add_socket_for(&mut self, name: &UnitName, owner: Option<u64>) -> bool {
        if self.socket_index(name.as_str()).is_some() || self.hooks.contains_key(name.as_str()) {
            return true;
        }
        // A new start: an earlier failure to open is history now.
        self.socket_failures.remove(name.as_str());
        let Some(unit) = self.load_startable(name) else {
            return false;
        };
        // Conditions and assertions of the socket itself, checked at its
        // start as systemd does: a condition that fails leaves it inactive
        // (not failed: what requires it still starts), an assertion fails it.
        let outcome = crate::service::condition::check(&unit);
        self.note_conditions(&unit, &outcome);
        match outcome {
            crate::service::condition::ConditionOutcome::Pass => {}
            crate::service::condition::ConditionOutcome::Skip(why) => {
                tracing::info!("{name}: condition check resulted in it being skipped ({why})");
                return true;
            }
            crate::service::condition::ConditionOutcome::AssertFailed(why) => {
                tracing::error!("{name}: assertion failed ({why}); not listening");
                return false;
            }
        }
        let mut config = match SocketConfig::from_unit(&unit) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{name}: {e}");
                return false;
            }
        };
        if let Some(owner) = owner.and_then(|o| self.services.get(&o))
            && !config.accept
            && unit.get_str("Socket", "Service").is_none()
            && loader::resolve(&self.search, &config.service).is_err()
        {
            config.service = owner.unit.id.clone();
        }
        let policy = match self.load_policy(&unit) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{name}: {e}; refusing to listen");
                return false;
            }
        };
        // The service must exist before the socket listens.
        let service = if config.accept {
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
        // A new activation of the socket: one invocation ID for its start
        // commands and, later, its stop commands (systemd acquires it as the
        // unit starts).
        self.socket_invocations
            .insert(name.to_string(), exec::invocation_id());
        let mut opening = Opening {
            unit,
            config,
            policy,
            service,
            reserved: Vec::new(),
        };
        // The socket's own ExecStartPre= runs before the listeners exist.
        if has_commands(&opening.unit, "ExecStartPre") {
            // In a switch: what it would take over stays open meanwhile.
            let listens = &opening.config.listens;
            opening.reserved = self
                .spare
                .extract_if(.., |(l, _)| listens.contains(&l.kind))
                .collect();
            let unit = opening.unit.clone();
            self.run_hooks(unit, "ExecStartPre", service, Next::Open(Box::new(opening)));
            return true;
        }
        self.open_socket(opening)
    }

    /// Opens the listeners of a loaded socket; they are watched at once,
    /// or after the socket's `ExecStartPost=`.
    fn open_socket(&mut self, opening: Opening) -> bool {
        let Opening {
            unit,
            config,
            policy,
            service,
            reserved,
        } = opening;
        self.spare.extend(reserved);
        let name = unit.id.to_string();
        let index = self.sockets.len();
        let mut rt = match SocketRt::open(index, unit, config, &self.tx, &mut self.spare) {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("{name}: {e}");
                tracing::error!("{name}: Failed with result 'resources'.");
                self.socket_failures.insert(name, "resources");
                return false;
            }
        };
        self.socket_failures.remove(&name);
        for l in &rt.listeners {
            tracing::info!("{name}: listening on {}", l.describe());
        }
        if let Some(p) = &policy {
            let names: Vec<&str> = p
                .chain
                .plugins()
                .iter()
                .map(crate::policy::Plugin::name)
                .collect();
            tracing::info!("{name}: policy plugins {}", names.join(", "));
        }
        rt.policy = policy;
        if let Some((accepted, refused)) = self.socket_counts.remove(&name) {
            rt.accepted += accepted;
            rt.refused += refused;
        }
        self.sockets.push(rt);
        if let Some(id) = service {
            if let Some(svc) = self.services.get_mut(&id) {
                svc.sockets.push(index);
            }
            self.cgroup_ahead(id);
        }
        if has_commands(&self.sockets[index].unit, "ExecStartPost") {
            let unit = self.sockets[index].unit.clone();
            self.run_hooks(unit, "ExecStartPost", service, Next::Arm(index));
            return true;
        }
        self.sockets[index].arm();
        self.serve_parked(index);
        true
    }

    /// The connections parked for a listener socket `index` now holds (see
    /// `parked`): accepted again through it, as if they had just come.
    pub(super) fn serve_parked(&mut self, index: usize) {
        if self.parked.is_empty() {
            return;
        }
        let listens = self.sockets[index].config.listens.clone();
        let accept = self.sockets[index].config.accept;
        let parked = std::mem::take(&mut self.parked);
        for (kind, conn) in parked {
            match listens.iter().position(|k| *k == kind) {
                Some(listener) if accept => self.on_accepted(index, listener, conn),
                Some(_) => tracing::warn!(
                    "{}: a connection accepted for an Accept=yes socket before the switch cannot go to this Accept=no one; closing it",
                    self.sockets[index].name
                ),
                None => self.parked.push((kind, conn)),
            }
        }
    }

    /// The socket stops a transaction installed: each waits for the stop
    /// jobs of the services ordered after the socket (the service it
    /// triggers, its `Accept=yes` instances, one with `After=` the socket
    /// or named in the socket's `Before=`), as systemd runs a stop
    /// transaction in the reverse of the start order; one with none to
    /// wait for stops at once.
    pub(super) fn order_socket_stops(&mut self) {
        for i in std::mem::take(&mut self.socket_stops_new) {
            if self.socket_stops.iter().any(|(s, _)| *s == i) {
                continue;
            }
            let socket = &self.sockets[i];
            let before = super::jobs::Deps::of(&socket.unit).before;
            let waits: Vec<u64> = self
                .services
                .iter()
                .filter(|(id, svc)| {
                    self.jobs
                        .get(id)
                        .is_some_and(|j| j.kind == super::jobs::JobKind::Stop)
                        && (svc.sockets.contains(&i)
                            || svc.conn.as_ref().is_some_and(|(_, s, _)| *s == i)
                            || svc.unit.id.as_str() == socket.config.service.as_str()
                            || svc.deps.after.contains(&socket.name)
                            || before.iter().any(|b| b == svc.unit.id.as_str()))
                })
                .map(|(id, _)| *id)
                .collect();
            if waits.is_empty() {
                self.stop_socket(i);
            } else {
                tracing::debug!(
                    "{}: stop waits for {} service(s) ordered after it",
                    self.sockets[i].name,
                    waits.len()
                );
                self.socket_stops.push((i, waits));
            }
        }
    }

    /// Runs the socket stops whose services have stopped (their stop
    /// jobs are over, or replaced by another job).
    pub(super) fn run_ordered_socket_stops(&mut self) {
        let ready: Vec<usize> = self
            .socket_stops
            .iter()
            .filter(|(_, waits)| {
                waits.iter().all(|id| {
                    self.jobs
                        .get(id)
                        .is_none_or(|j| j.kind != super::jobs::JobKind::Stop)
                })
            })
            .map(|(i, _)| *i)
            .collect();
        if ready.is_empty() {
            return;
        }
        self.socket_stops.retain(|(i, _)| !ready.contains(i));
        for i in ready {
            if !self.sockets[i].failed {
                self.stop_socket(i);
            }
        }
    }

    /// A start of socket `index` replaces its stop that still waits.
    pub(super) fn cancel_socket_stop(&mut self, index: usize) {
        let before = self.socket_stops.len();
        self.socket_stops.retain(|(i, _)| *i != index);
        if self.socket_stops.len() != before {
            tracing::debug!("{}: job stop replaced by start", self.sockets[index].name);
        }
    }

    /// The services socket `name`'s stop still waits for, if it waits.
    pub(super) fn socket_stop_waits(&self, name: &str) -> Option<&[u64]> {
        self.socket_stops
            .iter()
            .find(|(i, _)| self.sockets[*i].name == name)
            .map(|(_, waits)| waits.as_slice())
    }

    /// Stops socket `index` for a stop job: `ExecStopPre=`, closing its
    /// listeners, `ExecStopPost=`.
    pub(super) fn stop_socket(&mut self, index: usize) {
        let s = &self.sockets[index];
        if let Some(hooks) = self.hooks.get(&s.name) {
            // Still starting (ExecStartPost=): its command is stopped, which
            // fails the start and closes the listeners.
            if matches!(hooks.next, Next::Arm(_)) {
                match hooks.running.get() {
                    SPAWNING => hooks.running.set(SPAWNING_STOPPED),
                    pid if pid > 0 => {
                        signal_group(pid, libc::SIGTERM);
                    }
                    _ => {}
                }
            }
            return;
        }
        if s.failed {
            return;
        }
        tracing::info!("{}: stopping; closing its listeners", s.name);
        if has_commands(&s.unit, "ExecStopPre") {
            let unit = s.unit.clone();
            self.sockets[index].disarm();
            self.run_hooks(unit, "ExecStopPre", None, Next::Close(index));
        } else {
            self.close_stopped(index);
        }
    }

    /// Fails a socket with `result`: its listeners close a turn of the loop
    /// later, and a start of it waits for that ([`Event::ListenersClosed`];
    /// a restart that cut its `ExecStartPost=` short met `EADDRINUSE`).
    pub(super) fn fail_socket(&mut self, index: usize, result: &'static str) {
        self.closing_sockets.push(index);
        let closed = Some((
            self.tx.clone(),
            super::Event::ListenersClosed { socket: index },
        ));
        self.sockets[index].fail(result, closed);
    }

    /// Closes a stopped socket's listeners and runs its `ExecStopPost=`,
    /// whose outcome is only logged.
    fn close_stopped(&mut self, index: usize) {
        let s = &mut self.sockets[index];
        s.failed = true;
        s.stopped = true;
        s.close(None);
        // The listeners are closed one turn of the loop later, and its
        // `ExecStopPost=` runs after that; a restart waiting for both opens
        // the socket again then.
        self.closing_sockets.push(index);
        let unit = s.unit.clone();
        self.run_commands_then(
            unit,
            &["ExecStopPost"],
            Some(super::Event::ListenersClosed { socket: index }),
        );
    }

    /// Runs the `keys` commands of a socket in a task, one key after the
    /// other; failures are logged.
    pub(super) fn run_commands_logged(&mut self, unit: Unit, keys: &'static [&'static str]) {
        self.run_commands_then(unit, keys, None);
    }

    /// [`Self::run_commands_logged`], then `done` is sent (also when
    /// there is nothing to run, a turn of the loop later).
    fn run_commands_then(
        &mut self,
        unit: Unit,
        keys: &'static [&'static str],
        done: Option<super::Event>,
    ) {
        if !keys.iter().any(|k| has_commands(&unit, k)) {
            if let Some(event) = done {
                let tx = self.tx.clone();
                tokio::task::spawn_local(async move {
                    tokio::task::yield_now().await;
                    tokio::task::yield_now().await;
                    let _ = tx.send(event);
                });
            }
            return;
        }
        let ctx = self.hook_context(&unit);
        let running = Rc::new(CommandPid::default());
        // Tracked until the task ends, for the reaper (see `hook_pids`).
        self.loose_hooks.retain(|r| Rc::strong_count(r) > 1);
        self.loose_hooks.push(running.clone());
        let tx = self.tx.clone();
        tokio::task::spawn_local(async move {
            // After a stop, the listeners are closed one turn of the loop
            // later (`SocketRt::close_later`); ExecStopPost= runs after that.
            tokio::task::yield_now().await;
            for key in keys {
                logged_socket_commands(&unit, key, &ctx, &running).await;
            }
            if let Some(event) = done {
                let _ = tx.send(event);
            }
        });
    }

    /// The mode and the current invocation ID of a socket's commands.
    fn hook_context(&self, unit: &Unit) -> HookContext {
        HookContext {
            user_mode: self.search.user_mode,
            invocation: self
                .socket_invocations
                .get(unit.id.as_str())
                .cloned()
                .unwrap_or_else(exec::invocation_id),
        }
    }

    /// Runs the `key` commands of `unit` as a task; their outcome comes
    /// back as [`Event::SocketHooks`].
    fn run_hooks(&mut self, unit: Unit, key: &'static str, service: Option<u64>, next: Next) {
        let name = unit.id.to_string();
        let running = Rc::new(CommandPid::default());
        self.hooks.insert(
            name.clone(),
            SocketHooks {
                next,
                service,
                running: running.clone(),
                before: super::jobs::Deps::of(&unit).before,
            },
        );
        let (ctx, tx) = (self.hook_context(&unit), self.tx.clone());
        tokio::task::spawn_local(async move {
            let result = socket_commands(&unit, key, &ctx, &running).await;
            let _ = tx.send(Event::SocketHooks { name, key, result });
        });
    }

    /// The commands of a socket ended: go on with its start or stop.
    pub(super) fn on_socket_hooks(
        &mut self,
        name: &str,
        key: &'static str,
        result: Result<(), String>,
    ) {
        let Some(hooks) = self.hooks.remove(name) else {
            return;
        };
        match (hooks.next, result) {
            // Shutting down: a socket that is open is closed with the rest.
            (Next::Open(_) | Next::Arm(_), _) if self.shutting_down => {}
            (Next::Open(opening), Ok(()))
                if loader::resolve(&self.search, &opening.unit.id).is_err() =>
            {
                // A switch took it out of the tree meanwhile.
                tracing::info!("{name}: no longer in the unit tree; not listening");
                self.spare.extend(opening.reserved);
                self.close_spare();
            }
            (Next::Open(opening), Ok(())) => {
                let opened = self.open_socket(*opening);
                self.close_spare();
                if !opened {
                    self.fail_dependents(name);
                }
            }
            (Next::Open(opening), Err(e)) => {
                tracing::error!("{name}: {e}; refusing to listen");
                self.socket_failures
                    .insert(name.to_string(), hook_result(&e));
                self.spare.extend(opening.reserved);
                self.close_spare();
                self.fail_dependents(name);
            }
            (Next::Arm(index), Ok(())) => {
                self.sockets[index].arm();
                self.serve_parked(index);
            }
            (Next::Arm(index), Err(e)) => {
                tracing::error!("{name}: {e}; closing its listeners");
                self.fail_socket(index, hook_result(&e));
                self.fail_dependents(name);
            }
            (Next::Close(index), result) => {
                if let Err(e) = result {
                    tracing::warn!("{name}: {e}");
                }
                self.close_stopped(index);
            }
        }
        tracing::debug!("{name}: {key} done");
        // Its start is over unless its next commands run now.
        if !self.hooks.contains_key(name) {
            self.startup_sockets.retain(|s| s != name);
        }
        self.announce_ready();
        self.dispatch();
    }

    /// Once no socket is starting: logs that flint's units run and tells
    /// the supervisor (`--notify-fd`), once.
    pub(super) fn announce_ready(&mut self) {
        if !self.hooks.is_empty() {
            return;
        }
        if let Some((started, fd)) = self.ready.take()
            && !self.shutting_down
        {
            tracing::info!("flint: {started} unit(s) running");
            if let Some(fd) = fd {
                super::notify_ready_fd(fd);
            }
        }
        self.check_startup_finished();
    }

    /// Whether a socket that service `id` starts after is still running
    /// its start commands (`ExecStartPre=`, `ExecStartPost=`): its start
    /// job waits. Those are the sockets that trigger it (systemd's
    /// implicit `After=`), those of its `Sockets=`, a socket it is
    /// ordered after (`After=` it, or its `Before=` naming the service),
    /// and, with `DefaultDependencies=yes`, every socket flint started
    /// with its units: systemd orders such a service after
    /// `basic.target`, which is after `sockets.target` and the sockets it
    /// pulls in (dbus.socket's `ExecStartPost=` hands the session bus's
    /// address to the services that start after it).
    pub(super) fn sockets_starting_for(&self, id: u64) -> bool {
        if self.hooks.is_empty() {
            return false;
        }
        let Some(svc) = self.services.get(&id) else {
            return false;
        };
        let listed: Vec<&str> = super::listed_sockets(&svc.unit).collect();
        let me = svc.unit.id.as_str();
        let default_deps = svc.unit.get_bool("Unit", "DefaultDependencies") != Some(false);
        self.hooks.iter().any(|(name, h)| {
            if h.service == Some(id) || listed.contains(&name.as_str()) {
                return true;
            }
            if matches!(h.next, Next::Close(_)) {
                return false;
            }
            svc.deps.after.iter().any(|a| a == name)
                || (default_deps && self.startup_sockets.iter().any(|s| s == name))
                || h.before.iter().any(|b| b == me)
        })
    }

    /// Closes the listeners that no socket took over (at the end of a
    /// switch, or after a socket's `ExecStartPre=`).
    pub(super) fn close_spare(&mut self) {
        let mut closing = Vec::new();
        for (l, options) in std::mem::take(&mut self.spare) {
            tracing::info!("flint: closing {}", l.describe());
            if options.remove_on_stop {
                crate::listen::remove_nodes(&l.kind, &options);
            }
            // What was parked for it goes with it.
            self.parked.retain(|(kind, _)| *kind != l.kind);
            closing.push(l);
        }
        SocketRt::close_later(closing, None);
    }

    /// What a socket whose commands run is doing, as systemd's sub-state.
    pub(super) fn hooks_state(&self, name: &str) -> Option<&'static str> {
        self.hooks.get(name).map(|h| match h.next {
            Next::Open(_) => "start-pre",
            Next::Arm(_) => "start-post",
            Next::Close(_) => "stop-pre",
        })
    }

    /// The socket commands being spawned: where each one's child pid
    /// appears, for the reaper of orphans to leave them alone.
    pub(super) fn hooks_spawning(&self) -> impl Iterator<Item = &Arc<AtomicI32>> + '_ {
        self.hooks
            .values()
            .map(|h| &h.running)
            .chain(self.loose_hooks.iter())
            .filter_map(|r| r.spawning_child())
    }

    /// The pids of running socket commands (left to their own waiters by
    /// the reaper of orphans).
    pub(super) fn hook_pids(&self) -> impl Iterator<Item = i32> + '_ {
        self.hooks
            .values()
            .map(|h| &h.running)
            .chain(self.loose_hooks.iter())
            .map(|r| r.get())
            .filter(|p| *p > 0)
    }

    /// At shutdown: the socket commands still running are killed.
    pub(super) fn kill_hooks(&self) {
        for pid in self.hook_pids() {
            signal_group(pid, libc::SIGKILL);
        }
    }

    /// After the loop: every socket still open runs `ExecStopPre=`, is
    /// closed (`RemoveOnStop=` paths removed), then runs `ExecStopPost=`.
    pub(super) async fn close_sockets(&mut self) {
        let contexts: Vec<HookContext> = self
            .sockets
            .iter()
            .map(|s| self.hook_context(&s.unit))
            .collect();
        for (s, ctx) in self.sockets.iter_mut().zip(&contexts) {
            if s.failed {
                continue;
            }
            let running = CommandPid::default();
            logged_socket_commands(&s.unit, "ExecStopPre", ctx, &running).await;
            s.close(None);
            logged_socket_commands(&s.unit, "ExecStopPost", ctx, &running).await;
        }
    }
}

/// Runs the `key` commands of a socket unit one after another, each waited
/// for on its pidfd and bounded by the socket's `TimeoutSec=` (default
/// 90 s, then killed); a failure without the `-` prefix stops the sequence.
/// `running` holds the pid of the command running.
async fn socket_commands(
    unit: &Unit,
    key: &str,
    ctx: &HookContext,
    running: &CommandPid,
) -> Result<(), String> {
    let timeout = unit.get_usec("Socket", "TimeoutSec").unwrap_or(90_000_000);
    // `PrivateTmp=`: one private /tmp for the commands of this list,
    // removed after the last (systemd keeps one for the socket's whole
    // activation).
    let private_tmp = if unit.commands("Socket", key).is_empty()
        || !crate::service::sandbox::wants_private_tmp(unit, "Socket")
        || !crate::service::sandbox::can_make_namespaces()
    {
        None
    } else {
        Some(
            crate::service::sandbox::PrivateTmp::create(unit.id.as_str())
                .map_err(|e| format!("{key}=: {e}"))?,
        )
    };
    let _remove = private_tmp.clone().map(|t| RemoveTmp(Some(t)));
    for cmd in unit.commands("Socket", key) {
        let inputs = SpawnInputs {
            user_mode: ctx.user_mode,
            extra_env: vec![("INVOCATION_ID".into(), ctx.invocation.clone())],
            private_tmp: private_tmp.clone(),
            ..Default::default()
        };
        let prepared = exec::prepare(unit, "Socket", cmd, &inputs)
            .map_err(|e| format!("{key}={}: {e}", cmd.path))?;
        // Spawned on a blocking thread (it returns once the child has
        // exec'd): an exec that waits holds up only this socket. Meanwhile
        // the reaper leaves its child alone (`hooks_spawning`).
        running
            .child
            .store(spawn::NO_CHILD_YET, std::sync::atomic::Ordering::Release);
        running.set(SPAWNING);
        let slot = Arc::clone(&running.child);
        let spawned = tokio::task::spawn_blocking(move || {
            let child = spawn::spawn_noting_pid(&prepared.plan, Some(&slot));
            (child, prepared)
        })
        .await;
        let stopped = running.get() == SPAWNING_STOPPED;
        running.set(0);
        let (child, mut prepared) = spawned.map_err(|e| format!("{key}={}: {e}", cmd.path))?;
        let child = child.map_err(|e| format!("{key}={}: {e}", cmd.path))?;
        running.set(child.pid);
        if stopped {
            signal_group(child.pid, libc::SIGTERM);
        }
        if let Some(pipe) = prepared.log.take() {
            let prefix = unit.get_bool("Socket", "SyslogLevelPrefix").unwrap_or(true);
            let ident = exec::log_identifier(unit, "Socket", &cmd.path);
            let _ = exec::forward_log(pipe, unit.id.to_string(), ident, child.pid, prefix);
        }
        drop(prepared);
        let waited = if timeout == u64::MAX || timeout == 0 {
            Ok(child.wait().await)
        } else {
            tokio::time::timeout(Duration::from_micros(timeout), child.wait()).await
        };
        let status = match waited {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) => Err(format!("{key}={}: waiting failed: {e}", cmd.path)),
            Err(_) => {
                signal_group(child.pid, libc::SIGKILL);
                let _ = child.wait().await;
                Err(format!("{key}={} timed out", cmd.path))
            }
        };
        running.set(0);
        let status = status?;
        if !status.success() && !cmd.ignore_failure {
            return Err(format!("{key}={} failed: {status}", cmd.path));
        }
    }
    Ok(())
}

/// Removes a private /tmp when dropped (in the background).
struct RemoveTmp(Option<crate::service::sandbox::PrivateTmp>);

impl Drop for RemoveTmp {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.remove_in_background();
        }
    }
}

/// What every command of one socket activation shares.
#[derive(Debug, Clone)]
struct HookContext {
    user_mode: bool,
    /// The socket's `INVOCATION_ID`.
    invocation: String,
}

/// [`socket_commands`] whose failure is only logged (stop commands).
async fn logged_socket_commands(unit: &Unit, key: &str, ctx: &HookContext, running: &CommandPid) {
    if let Err(e) = socket_commands(unit, key, ctx, running).await {
        tracing::warn!("{}: {e}", unit.id);
    }
}

/// The socket result of a failed command of its own, as systemd's:
/// `timeout` when it was killed for taking too long, `signal` or
/// `core-dump` when a signal ended it, else `exit-code`.
fn hook_result(error: &str) -> &'static str {
    if error.ends_with("timed out") {
        "timeout"
    } else if error.ends_with("(core dumped)") {
        "core-dump"
    } else if error.contains("killed by signal ") {
        "signal"
    } else {
        "exit-code"
    }
}
