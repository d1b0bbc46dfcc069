//! The service state machine, after systemd's `service.c`: conditions,
//! `ExecStartPre=`, the main process and its readiness by `Type=`,
//! `ExecStartPost=`, running, `ExecStop=`, the kill procedure, `ExecStopPost=`,
//! and then restart or rest.
//!
//! A service has at most one main process and one control process at a
//! time, as in systemd. Every process is watched through its pidfd; exits,
//! notify messages and timers arrive as events at the manager. Timers carry
//! a generation number, so a timer armed for an earlier step never acts on a
//! later one.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::jobs::{Deps, Seen};
use super::socket::Peer;
use super::turns::{self, Then};
use super::{Event, Manager};
use crate::notify::Message;
use crate::service::exec::{self, SpawnInputs};
use crate::spawn::{self, ExitStatus};
use crate::unit::load::{Unit, Value};
use crate::unit::value::exec::ExecCommand;

/// Where a service is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Dead,
    /// Running `ExecCondition=` command number `n`.
    Condition(usize),
    /// Running `ExecStartPre=` command number `n`.
    StartPre(usize),
    /// The main process runs; waiting for it to count as started
    /// (`READY=1` for notify, its exit for forking and oneshot; for
    /// oneshot `n` is the `ExecStart=` being run).
    Start(usize),
    /// Running `ExecStartPost=` command number `n`.
    StartPost(usize),
    Running,
    /// Running `ExecReload=` command number `n`.
    Reload(usize),
    /// `Type=notify-reload` (or `RELOADING=1`): waiting for `READY=1`.
    ReloadNotify,
    /// Running `ExecStop=` command number `n`.
    Stop(usize),
    /// The kill signal was sent; waiting for the main process to go.
    StopSigterm,
    /// The watchdog expired and `WatchdogSignal=` was sent; waiting
    /// `TimeoutAbortSec=` for the main process to go.
    StopWatchdog,
    /// `FinalKillSignal=` was sent after a timeout; waiting once more.
    StopSigkill,
    /// Running `ExecStopPost=` command number `n`.
    StopPost(usize),
    /// Waiting `RestartSec=` before starting again.
    AutoRestart,
    Failed,
}

/// The last run of one command of a service (not its main process).
#[derive(Debug, Clone, Copy)]
pub(super) struct CommandRun {
    /// `ExecStartPre`, `ExecReload`, ...
    pub key: &'static str,
    /// Which of the key's commands.
    pub index: usize,
    pub pid: i32,
    /// When it started and ended, µs since the epoch (0: not yet).
    pub start_usec: u64,
    pub exit_usec: u64,
    /// How it ended, once it did.
    pub status: Option<ExitStatus>,
}

/// Now, µs since the epoch.
fn realtime_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// One service (or one `Accept=yes` instance) at run time.
#[derive(Debug)]
pub(super) struct ServiceRt {
    /// Shared with the spawns of its commands ([`PendingCommand`]).
    pub unit: std::sync::Arc<Unit>,
    /// The controllers the slices it is in set something through
    /// ([`Manager::place_in_slice`]): on a cgroup v1 hierarchy, the
    /// service joins those too, so that the slice's limit holds for it.
    pub slice_controllers: Vec<crate::cgroup::Controller>,
    /// The `Slice=` its cgroup was last placed under (`""`: none), so that
    /// the other commands of a run do not place it again.
    pub placed_in: Option<String>,
    pub state: State,
    pub main_pid: Option<i32>,
    /// The process group of the main process (its pid at spawn: every
    /// service starts in a new session), used to stop what it left behind.
    pub main_pgid: Option<i32>,
    pub control_pid: Option<i32>,
    /// The sockets that trigger it (`Accept=no`), whose fds it receives.
    pub sockets: Vec<usize>,
    /// The connection of an `Accept=yes` instance, and its socket and
    /// source. flint lets go of the fd once no command of the instance can
    /// need it any more (see [`needs_connection_after_start`]), so the peer
    /// sees EOF as soon as the handler closes its copy.
    pub conn: Option<(Option<OwnedFd>, usize, Option<Peer>)>,
    /// An `Accept=yes` instance kept loaded after it failed: its slots on
    /// its socket are let go of already (see [`Manager::forget_failed_instance`]).
    pub kept_failed: bool,
    /// Start times for `StartLimitIntervalSec=`/`StartLimitBurst=`.
    pub starts: VecDeque<Instant>,
    /// Whether a stop was requested (no restart then).
    pub stopping: bool,
    /// The service said `STOPPING=1`: its exit goes without `ExecStop=`
    /// and it does not remain, but `Restart=` applies (systemd's
    /// `service_enter_stop_by_notify()`).
    pub stop_announced: bool,
    /// The result of the last run: `success`, `exit-code`, `signal`, ...
    pub result: &'static str,
    /// The result of the last reload, apart from the run's (systemd's
    /// `reload_result`).
    pub reload_result: &'static str,
    pub last_status: Option<ExitStatus>,
    pub restarts: u32,
    /// `flint ctl restart`: start again once stopped.
    pub restart_requested: bool,
    /// The main process is being spawned on a blocking thread.
    pub spawning: bool,
    /// While `spawning`: the child's pid as soon as it exists
    /// ([`spawn::spawn_noting_pid`]), for the reaper of orphans.
    pub spawn_pid: Option<std::sync::Arc<std::sync::atomic::AtomicI32>>,
    /// The current spawn's token: set when its run is over, or a later
    /// spawn supersedes it, before it came back, so that it starts nothing
    /// ([`Manager::stale_spawn`]).
    pub spawn_cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Environment edits the plugin chain made for this start.
    pub env_edits: Vec<crate::policy::EnvEdit>,
    /// What started the current activation, for its commands
    /// (`TRIGGER_UNIT` and a timer's trigger times, systemd's activation
    /// details), and what the next start is to take over.
    pub activation_env: Vec<crate::policy::EnvEdit>,
    pub next_activation_env: Vec<crate::policy::EnvEdit>,
    /// The last `STATUS=` the service sent.
    pub status_text: Option<String>,
    /// When a `STATUS=` or a full fd store was last logged at the
    /// default level: a service that sends them in a loop is logged once
    /// a second, the rest at debug level (systemd logs neither).
    pub notify_logged: Option<Instant>,
    /// The last pid its `PIDFile=` named that was refused: said once, not
    /// at every look while the start waits for the file.
    pub pid_refused: std::cell::Cell<Option<i32>>,
    /// Bumped at every step; a timer from an older step is ignored.
    pub generation: u64,
    /// The pending step timer, cancelled when a new one is armed or the
    /// service is dropped, so finished instances leave no timer behind.
    pub timer: Option<super::step_timers::StepTimer>,
    /// When the pending step timer elapses.
    pub timer_due: Option<Instant>,
    /// When the running service's timer (`RuntimeMaxSec=`) elapses, kept
    /// while a reload's own timeout is armed.
    pub runtime_due: Option<Instant>,
    /// The running control command has the `-` prefix (its failure is
    /// ignored, also when a stop kills it).
    pub control_ignore: bool,
    /// The last start was refused by the start limit (whatever its
    /// result says: a restart's keeps the failure that led to it).
    pub start_limit_hit: bool,
    /// How its last job failed without the service failing: `dependency`
    /// (a unit it needs failed) or `timeout` (`JobTimeoutSec=`), systemd's
    /// job results, which are no result of the service.
    pub job_failed: Option<&'static str>,
    /// How far the end of a timed-out `ExecStopPost=` went: 1 once its
    /// processes got the stop signal, 2 once they got the final kill.
    pub final_stage: u8,
    /// Bumped when the watchdog is re-armed or cancelled.
    pub watchdog_generation: u64,
    /// When the armed watchdog elapses.
    pub watchdog_due: Option<Instant>,
    /// `WATCHDOG_USEC=` the service sent: its watchdog timeout instead of
    /// `WatchdogSec=`, until it starts again.
    pub watchdog_override: Option<u64>,
    /// The fd store (`FDSTORE=1`): fds and names, handed back at every start.
    pub fd_store: Vec<(OwnedFd, String)>,
    /// `PrivateTmp=`: the run's private `/tmp` and `/var/tmp`, made at its
    /// first command and removed when it ends (kept across a restart).
    pub private_tmp: Option<crate::service::sandbox::PrivateTmp>,
    /// `PrivateNetwork=`, `PrivateIPC=`: the run's namespaces, made and
    /// dropped with `private_tmp`.
    pub namespaces: Option<crate::service::sandbox::RunNamespaces>,
    /// `LoadCredential=` and friends: the run's credentials directory,
    /// made and removed with `private_tmp`.
    pub credentials: Option<crate::service::credentials::Credentials>,
    /// What the unit's `[Unit]` section says about other units.
    pub deps: Deps,
    /// Start-ups completed (the start sequence reached its end).
    pub ups: u64,
    /// Times the service came to rest (dead, failed or waiting to restart).
    pub downs: u64,
    /// Start sequences begun (past the start limit).
    pub launches: u64,
    /// When the service last left the inactive state (a start sequence
    /// began) and last entered it: what `OnUnitActiveSec=` and
    /// `OnUnitInactiveSec=` of a timer count from.
    pub inactive_exit_at: Option<Instant>,
    pub inactive_enter_at: Option<Instant>,
    /// What the job engine saw last (see `jobs::Manager::observe`).
    pub seen: Seen,
    /// When it last changed between active states, as it saw them.
    pub times: super::jobs::StateTimes,
    /// The stop under way is the first half of a restart: the kill signal
    /// is `RestartKillSignal=`.
    pub restart_kill: bool,
    /// With cgroups: the task waiting for the service's cgroup to empty
    /// (during a stop, or while it runs without a known main process), and
    /// the longest it waits between two looks.
    pub cgroup_watch: Option<(Duration, TimerGuard)>,
    /// `$INVOCATION_ID` of the current (or last) start: one per start, shared
    /// by every command of it, from `ExecCondition=` to `ExecStopPost=`, as
    /// systemd acquires one per activation.
    pub invocation_id: String,
    /// The main process exited while `ExecStartPost=` or `ExecReload=` ran:
    /// as systemd, flint lets that command finish, then stops the service.
    pub main_exited: bool,
    /// How the main process of the current run ended (systemd's
    /// `main_exec_status`), unlike `last_status` never a control command's.
    pub main_status: Option<ExitStatus>,
    /// The pid of the main process that ended (systemd's `ExecMainPID=`,
    /// kept until the next start).
    pub main_exit_pid: Option<u32>,
    /// Its commands other than the main process that ran, the last run of
    /// each (systemd keeps an `ExecStatus` per command): `systemctl
    /// status`'s `Process:` lines, `show`'s `ExecStartPre=` and the others.
    pub command_runs: Vec<CommandRun>,
    /// The units this one names in `OnFailure=` and `OnSuccess=`.
    pub on_result: Vec<String>,
    /// `Type=dbus`: the thread asking the bus for `BusName=`, stopped when
    /// this is dropped.
    pub bus_watch: Option<BusWatch>,
    /// A command of the current start was spawned (a start that a
    /// condition skipped or an assertion failed ran nothing, and triggers
    /// no `SuccessAction=`/`FailureAction=`/`OnSuccess=`/`OnFailure=`, as
    /// in systemd).
    pub ran: bool,
}

/// Stops a bus watch when dropped.
#[derive(Debug)]
pub(super) struct BusWatch(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for BusWatch {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// A service's `Type=` with systemd's default (oneshot without
/// `ExecStart=`, dbus with `BusName=`, else simple).
pub fn service_type(unit: &Unit) -> &str {
    match unit.get_str("Service", "Type") {
        Some(t) => t,
        None if unit.commands("Service", "ExecStart").is_empty() => "oneshot",
        None if unit.get("Service", "BusName").is_some() => "dbus",
        None => "simple",
    }
}

/// A service's `NotifyAccess=` with systemd's implied default: `main` for
/// the notify types, a watchdog or an fd store, else `none`.
pub fn notify_access(unit: &Unit) -> &str {
    if let Some(a) = unit.get_str("Service", "NotifyAccess") {
        return a;
    }
    let implied = matches!(service_type(unit), "notify" | "notify-reload")
        || unit
            .get_usec("Service", "WatchdogSec")
            .is_some_and(|u| u > 0)
        || unit
            .get_u64("Service", "FileDescriptorStoreMax")
            .is_some_and(|n| n > 0);
    if implied { "main" } else { "none" }
}

/// A pending timer task, aborted when dropped.
#[derive(Debug)]
pub(super) struct TimerGuard(pub(super) tokio::task::AbortHandle);

impl Drop for TimerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ServiceRt {
    pub fn new(unit: Unit) -> ServiceRt {
        ServiceRt {
            slice_controllers: Vec::new(),
            placed_in: None,
            private_tmp: None,
            namespaces: None,
            credentials: None,
            state: State::Dead,
            main_pid: None,
            main_pgid: None,
            control_pid: None,
            sockets: Vec::new(),
            conn: None,
            kept_failed: false,
            starts: VecDeque::new(),
            stopping: false,
            stop_announced: false,
            result: "success",
            reload_result: "success",
            last_status: None,
            restarts: 0,
            restart_requested: false,
            spawning: false,
            spawn_pid: None,
            spawn_cancel: None,
            env_edits: Vec::new(),
            activation_env: Vec::new(),
            next_activation_env: Vec::new(),
            status_text: None,
            notify_logged: None,
            pid_refused: std::cell::Cell::new(None),
            generation: 0,
            timer: None,
            watchdog_generation: 0,
            watchdog_due: None,
            watchdog_override: None,
            timer_due: None,
            runtime_due: None,
            final_stage: 0,
            start_limit_hit: false,
            job_failed: None,
            control_ignore: false,
            fd_store: Vec::new(),
            deps: Deps::of(&unit),
            ups: 0,
            downs: 0,
            launches: 0,
            inactive_exit_at: None,
            inactive_enter_at: None,
            seen: Seen::default(),
            times: super::jobs::StateTimes::default(),
            restart_kill: false,
            cgroup_watch: None,
            invocation_id: String::new(),
            main_exited: false,
            main_status: None,
            main_exit_pid: None,
            command_runs: Vec::new(),
            ran: false,
            on_result: ["OnFailure", "OnSuccess"]
                .iter()
                .flat_map(|k| unit.entries("Unit", k))
                .filter_map(|(v, _)| match v {
                    Value::Unit(n) => Some(n.clone()),
                    _ => None,
                })
                .collect(),
            bus_watch: None,
            unit: unit.into(),
        }
    }

    /// `Type=` with systemd's default ([`service_type`]).
    pub fn service_type(&self) -> &str {
        service_type(&self.unit)
    }

    /// `NotifyAccess=` with systemd's implied default ([`notify_access`]).
    pub fn notify_access(&self) -> &str {
        notify_access(&self.unit)
    }

    fn timeout(&self, key: &str, default: u64) -> Option<Duration> {
        let us = self
            .unit
            .get_usec("Service", key)
            .or_else(|| self.unit.get_usec("Service", "TimeoutSec"))
            .unwrap_or(default);
        (us != u64::MAX).then(|| Duration::from_micros(us))
    }

    fn signal(&self, key: &str) -> Option<i32> {
        match self.unit.get("Service", key) {
            Some(Value::Signal(s)) => Some(*s),
            _ => None,
        }
    }

    /// `KillSignal=`, or for the stop of a restart `RestartKillSignal=`
    /// (which defaults to `KillSignal=`).
    fn kill_signal(&self) -> i32 {
        let plain = self.signal("KillSignal").unwrap_or(libc::SIGTERM);
        if self.restart_kill || self.restart_requested {
            self.signal("RestartKillSignal").unwrap_or(plain)
        } else {
            plain
        }
    }

    /// `FinalKillSignal=` (default SIGKILL), sent when a stop times out.
    fn final_kill_signal(&self) -> i32 {
        self.signal("FinalKillSignal").unwrap_or(libc::SIGKILL)
    }

    /// `TimeoutStopSec=` (or `TimeoutSec=`; default 90 s).
    pub(super) fn stop_timeout(&self) -> Option<Duration> {
        self.timeout("TimeoutStopSec", 90_000_000)
    }

    /// `TimeoutAbortSec=`, by default `TimeoutStopSec=`.
    fn abort_timeout(&self) -> Option<Duration> {
        match self.unit.get_usec("Service", "TimeoutAbortSec") {
            Some(u64::MAX) => None,
            Some(us) => Some(Duration::from_micros(us)),
            None => self.stop_timeout(),
        }
    }
}

/// The name of a signal as systemd logs it (`SIGKILL`).
fn signal_text(signal: i32) -> String {
    crate::unit::value::signal::signal_name(signal)
        .map_or_else(|| signal.to_string(), str::to_string)
}

/// Sends `signal` to process group `pgid`; false when no process of it
/// could be signalled (none is left, most often).
pub(super) fn signal_group(pgid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) takes plain integers and has no memory effects.
    pgid > 1 && unsafe { libc::kill(-pgid, signal) } == 0
}

pub(super) fn signal_pid(pid: i32, signal: i32) {
    if pid > 1 {
        // SAFETY: kill(2) takes plain integers and has no memory effects.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Why a command did not start.
#[derive(Debug)]
pub(super) struct StartFailure {
    msg: String,
    /// The status systemd's child ends with when the failing step is one
    /// systemd takes in the child (203/EXEC for a missing executable, …);
    /// the unit then fails with `exit-code` rather than `resources`.
    status: Option<ExitStatus>,
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} ({status})", self.msg),
            None => f.write_str(&self.msg),
        }
    }
}

impl StartFailure {
    fn result(&self) -> &'static str {
        if self.status.is_some() {
            "exit-code"
        } else {
            "resources"
        }
    }
}

impl From<&str> for StartFailure {
    fn from(msg: &str) -> Self {
        StartFailure {
            msg: msg.to_string(),
            status: None,
        }
    }
}

/// Whether a kill left a main process to wait for.
enum Killed {
    Nothing,
    Waiting,
}

/// Which command list a control step runs.
fn step_key(state: State) -> Option<(&'static str, usize)> {
    match state {
        State::Condition(n) => Some(("ExecCondition", n)),
        State::StartPre(n) => Some(("ExecStartPre", n)),
        State::StartPost(n) => Some(("ExecStartPost", n)),
        State::Reload(n) => Some(("ExecReload", n)),
        State::Stop(n) => Some(("ExecStop", n)),
        State::StopPost(n) => Some(("ExecStopPost", n)),
        _ => None,
    }
}

impl Manager {
    /// Starts a service: start limit, then the start sequence.
    pub(super) fn start(&mut self, id: u64) {
        // `Sockets=` implies `Wants=` and `After=` of those sockets (systemd's
        // load-fragment): a service started by itself opens them first.
        // Its sockets stop being watched while it runs. Not for an
        // `Accept=yes` instance: its socket goes on accepting.
        if self.services.get(&id).is_some_and(|s| s.conn.is_none()) {
            // A start job opened them already, before it waited for them.
            if !self.jobs.get(&id).is_some_and(|j| j.running) {
                self.add_listed_sockets(id);
            }
            let sockets = self
                .services
                .get(&id)
                .map(|s| s.sockets.clone())
                .unwrap_or_default();
            for s in sockets {
                self.sockets[s].disarm();
            }
        }
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        // A new activation: a new invocation ID for all of its commands,
        // and what started it (an automatic restart goes on with what
        // started the run it repeats).
        svc.invocation_id = exec::invocation_id();
        if svc.state != State::AutoRestart || !svc.next_activation_env.is_empty() {
            svc.activation_env = std::mem::take(&mut svc.next_activation_env);
        }
        svc.main_exited = false;
        svc.ran = false;
        // An automatic restart is no new start: systemd does not check
        // conditions and assertions of a unit that is activating.
        let outcome = if svc.state == State::AutoRestart {
            crate::service::condition::ConditionOutcome::Pass
        } else {
            crate::service::condition::check(&svc.unit)
        };
        if svc.state != State::AutoRestart {
            let unit = svc.unit.clone();
            self.note_conditions(&unit, &outcome);
        }
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        match outcome {
            crate::service::condition::ConditionOutcome::Pass => {}
            crate::service::condition::ConditionOutcome::Skip(why) => {
                tracing::info!(
                    "{}: condition check resulted in it being skipped ({why})",
                    svc.unit.id
                );
                svc.stopping = true;
                svc.result = "success";
                self.after_stop(id);
                return;
            }
            // The unit stays as it was; only its job fails (systemd's
            // JOB_ASSERT), which fails what requires it.
            crate::service::condition::ConditionOutcome::AssertFailed(why) => {
                tracing::error!("{}: assertion failed ({why})", svc.unit.id);
                tracing::warn!("{}: Assertion failed for {}.", svc.unit.id, svc.unit.id);
                svc.job_failed = Some("assert");
                self.let_go_unstarted(id);
                if self.jobs.contains_key(&id) {
                    self.finish_job(id, super::jobs::JobResult::Failed);
                } else {
                    self.jobs.remove(&id);
                }
                return;
            }
        }
        // The start limit after the conditions and assertions, as
        // systemd's unit_start() checks them (a skipped start counts for
        // nothing; what triggers a skipped unit again and again meets its
        // own trigger limit).
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
                // A restart's start keeps the result that led to it (systemd's
                // `service_enter_dead()` sets only a successful one).
                if matches!(svc.result, "success" | "exec-condition") {
                    svc.result = "start-limit-hit";
                }
                svc.start_limit_hit = true;
                svc.downs += 1;
                trigger_on_result(&self.tx, &svc.unit, true);
                // StartLimitAction=, then the FailureAction= of the unit
                // that failed, as systemd does both.
                let actions: Vec<Action> = ["StartLimitAction", "FailureAction"]
                    .into_iter()
                    .filter_map(|key| emergency_action(&svc.unit, key, None))
                    .collect();
                // Each socket says so once ("Failed with result
                // 'service-start-limit-hit'; listeners closed").
                for s in svc.sockets.clone() {
                    self.fail_socket(s, "service-start-limit-hit");
                }
                for action in &actions {
                    self.act(action);
                }
                return;
            }
            svc.starts.push_back(now);
        }
        // From here on the start counts as run (a failure before the first
        // command still starts OnFailure= and FailureAction=).
        svc.ran = true;
        svc.stopping = false;
        svc.stop_announced = false;
        svc.restart_kill = false;
        svc.watchdog_override = None;
        svc.watchdog_due = None;
        svc.watchdog_generation += 1;
        svc.start_limit_hit = false;
        svc.launches += 1;
        svc.inactive_exit_at = Some(Instant::now());
        svc.result = "success";
        svc.last_status = None;
        svc.main_status = None;
        svc.main_exit_pid = None;
        // Each command's last run is of this start on (systemd's
        // `service_start()` resets them).
        svc.command_runs.clear();
        svc.status_text = None;
        let timeout = svc.timeout(
            "TimeoutStartSec",
            if svc.service_type() == "oneshot" {
                u64::MAX
            } else {
                90_000_000
            },
        );
        self.arm_timer(id, timeout);
        self.warn_leftovers(id);
        self.step(id, State::Condition(0));
    }

    /// Processes left in services' cgroups as flint ends (a unit with
    /// `KillMode=process` or `none` left them on purpose: containerd's
    /// shims): named, and left running in their cgroups, which stay.
    fn name_cgroup_leftovers(&self) {
        let mut ids: Vec<u64> = self.services.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let svc = &self.services[&id];
            let name = svc.unit.id.as_str();
            for (pid, comm, dir) in self.cgroup_leftovers(svc) {
                tracing::warn!(
                    "{name}: left-over process {pid} ({comm}) keeps running after flint (KillMode={}); its cgroup {} stays",
                    svc.unit
                        .get_str("Service", "KillMode")
                        .unwrap_or("control-group"),
                    dir.display()
                );
            }
        }
    }

    /// Processes still in a service's cgroup as a run starts (left by
    /// `KillMode=process` or `none`, or by a run that was not stopped
    /// cleanly) are named and left alone, as systemd's
    /// `unit_warn_leftover_processes()`. Not for `Accept=yes` instances,
    /// whose cgroups are new.
    fn warn_leftovers(&self, id: u64) {
        let Some(svc) = self.services.get(&id).filter(|s| s.conn.is_none()) else {
            return;
        };
        let name = svc.unit.id.as_str();
        let left = self.cgroup_leftovers(svc);
        for (pid, comm, _) in &left {
            tracing::warn!(
                "{name}: Found left-over process {pid} ({comm}) in control group while starting unit. Ignoring."
            );
        }
        if !left.is_empty() {
            tracing::warn!(
                "{name}: This usually indicates unclean termination of a previous run, or service implementation deficiencies."
            );
        }
    }

    /// The processes in a service's cgroup (none without one), each with
    /// its name, and the cgroup's directory.
    fn cgroup_leftovers(&self, svc: &ServiceRt) -> Vec<(i32, String, std::path::PathBuf)> {
        let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) else {
            return Vec::new();
        };
        let name = svc.unit.id.as_str();
        if !cg.populated(name) {
            return Vec::new();
        }
        cg.pids(name)
            .into_iter()
            .map(|pid| (pid, comm_of(pid), cg.dir(name)))
            .collect()
    }

    /// Arms the step timer of a service (a new generation).
    pub(super) fn arm_timer(&mut self, id: u64, after: Option<Duration>) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        svc.generation += 1;
        let generation = svc.generation;
        svc.timer = None;
        svc.timer_due = after.and_then(|a| Instant::now().checked_add(a));
        // One too far away to be told from never is not armed.
        if let Some(due) = svc.timer_due {
            svc.timer = Some(self.step_timers.arm(due, id, generation));
        }
    }

    /// Enters `state`, running its command or moving past it.
    pub(super) fn step(&mut self, id: u64, mut state: State) {
        loop {
            if !matches!(state, State::Start(_))
                && let Some(svc) = self.services.get_mut(&id)
            {
                // A bus watch serves only the start.
                svc.bus_watch = None;
            }
            if state == State::Stop(0)
                && let Some(svc) = self.services.get(&id)
                && !matches!(svc.state, State::Stop(_))
            {
                // ExecStop= gets TimeoutStopSec=, as each later stop phase does.
                let timeout = svc.stop_timeout();
                self.arm_timer(id, timeout);
            }
            if state == State::StopPost(0)
                && let Some(svc) = self.services.get_mut(&id)
                && !matches!(svc.state, State::StopPost(_))
            {
                // ExecStopPost= gets TimeoutStopSec= however it is reached
                // (systemd's `service_enter_stop_post()`), then the staged
                // final kill (see `on_timer`).
                svc.final_stage = 0;
                let timeout = svc.stop_timeout();
                self.arm_timer(id, timeout);
            }
            let Some(svc) = self.services.get(&id) else {
                return;
            };
            let name = svc.unit.id.to_string();
            if matches!(state, State::Start(_)) {
                match self.start_main(id, state) {
                    Ok(next) => match next {
                        Some(next) => {
                            state = next;
                            continue;
                        }
                        None => return,
                    },
                    Err(failure) => {
                        tracing::error!("{name}: {failure}");
                        if self.start_failure_ignored(id, state, &failure) {
                            return;
                        }
                        let result = failure.result();
                        if let Some(svc) = self.services.get_mut(&id) {
                            svc.result = result;
                            if failure.status.is_some() {
                                svc.last_status = failure.status;
                            }
                        }
                        state = State::StopPost(0);
                        continue;
                    }
                }
            }
            if state == State::StopSigterm {
                // Straight to signalling what is left, without ExecStop=
                // (systemd's `service_enter_signal(STOP_SIGTERM)`).
                self.kill_remaining(id);
                return;
            }
            let Some((key, n)) = step_key(state) else {
                if let Some(svc) = self.services.get_mut(&id) {
                    svc.state = state;
                }
                return;
            };
            let commands = svc.unit.commands("Service", key);
            let Some(cmd) = commands.get(n).map(|c| (*c).clone()) else {
                state = match state {
                    State::Condition(_) => State::StartPre(0),
                    State::StartPre(_) => State::Start(0),
                    State::StartPost(_) => {
                        let oneshot_done = self.services.get(&id).is_some_and(|s| {
                            s.service_type() == "oneshot"
                                && !s
                                    .unit
                                    .get_bool("Service", "RemainAfterExit")
                                    .unwrap_or(false)
                        });
                        // Start-up is over: the start timer no longer
                        // applies, and `RuntimeMaxSec=` does while the main
                        // process runs (not once a service remains without it).
                        let gone = self
                            .services
                            .get(&id)
                            .is_some_and(|s| s.main_exited || s.service_type() == "oneshot");
                        let runtime = self
                            .services
                            .get(&id)
                            .filter(|_| !gone)
                            .and_then(|s| s.unit.get_usec("Service", "RuntimeMaxSec"))
                            .filter(|u| *u != u64::MAX)
                            .map(Duration::from_micros);
                        self.arm_timer(id, runtime);
                        if let Some(svc) = self.services.get_mut(&id) {
                            svc.ups += 1;
                        }
                        // The main process failed meanwhile (while
                        // ExecStartPost= ran, or with ExitType=cgroup): what
                        // is left is signalled, without ExecStop= (systemd's
                        // `service_enter_running()`). One that exited cleanly
                        // stops the service, unless it remains after its exit.
                        let exited = self.services.get(&id).is_some_and(|s| s.main_exited);
                        if self.services.get(&id).is_some_and(main_failed) {
                            State::StopSigterm
                        } else if oneshot_done || (exited && !self.remains_after_exit(id)) {
                            State::Stop(0)
                        } else if !exited
                            && self.services.get(&id).is_some_and(|s| s.stop_announced)
                        {
                            // It sent STOPPING=1 while starting.
                            self.stop_by_notify(id);
                            return;
                        } else {
                            self.on_service_up(id);
                            if !exited {
                                self.watch_for_empty(id);
                            }
                            State::Running
                        }
                    }
                    State::Reload(_) => {
                        if let Some(svc) = self.services.get(&id) {
                            tracing::info!("{}: reloaded", svc.unit.id);
                        }
                        self.reload_over(id)
                    }
                    State::Stop(_) => {
                        self.kill_remaining(id);
                        return;
                    }
                    State::StopPost(_) => {
                        self.after_stop(id);
                        return;
                    }
                    s => s,
                };
                continue;
            };
            match self.spawn_async(id, &cmd, state) {
                // Recorded when the spawn comes back (`on_control_spawned`).
                Ok(()) => return,
                Err(failure) => {
                    tracing::error!("{name}: {failure}");
                    state = self.control_start_failed(id, state, &failure, cmd.ignore_failure);
                }
            }
        }
    }

    /// Starts the main process (or, for oneshot, `ExecStart=` number `n`).
    /// Returns the next state when there is nothing to start.
    fn start_main(&mut self, id: u64, state: State) -> Result<Option<State>, StartFailure> {
        let State::Start(n) = state else {
            return Ok(None);
        };
        let svc = self.services.get(&id).ok_or("unknown service")?;
        let commands = svc.unit.commands("Service", "ExecStart");
        let Some(cmd) = commands.get(n).map(|c| (*c).clone()) else {
            // No (more) ExecStart=: oneshot is done starting.
            return Ok(Some(State::StartPost(0)));
        };
        self.spawn_async(id, &cmd, state)?;
        Ok(None)
    }

    /// Starts a process of a service off the event loop: the spawn (which
    /// returns once the child has exec'd) runs on a blocking thread with its
    /// own duplicates of the fds it passes, when its turn comes ([`turns`]),
    /// so a busy socket keeps accepting meanwhile and an exec that hangs (a
    /// binary on a stuck network file system, a `TTYPath=` whose open waits)
    /// holds up no other unit; the result comes back as [`Event::Spawned`].
    /// The main process (`state` is `Start`) and control commands alike.
    fn spawn_async(
        &mut self,
        id: u64,
        cmd: &ExecCommand,
        state: State,
    ) -> Result<(), StartFailure> {
        self.prepare_run(id)?;
        self.place_in_slice(id);
        let mut pending = self.prepare_command(id, cmd, state)?;
        // The spawn holds its own copy of an accepted connection now. When
        // nothing after the main process gets it, flint lets go of its copy
        // at once, so the handler's own close is the last one: the peer sees
        // EOF as the handler ends, even before the spawn's result is back on
        // the loop, and the loop does not pay for the connection's teardown.
        if matches!(state, State::Start(_))
            && let Some(svc) = self.services.get_mut(&id)
            && !needs_connection_after_start(&svc.unit)
            && !may_restart(&svc.unit)
            && let Some((conn, _, _)) = &mut svc.conn
        {
            *conn = None;
        }
        let make_credentials = self.credentials_due(id, state);
        let user_mode = self.search.user_mode;
        let slot = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(spawn::NO_CHILD_YET));
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(svc) = self.services.get_mut(&id) {
            svc.spawning = true;
            svc.ran = true;
            svc.spawn_pid = Some(slot.clone());
            // A spawn of the service still under way is superseded: it
            // starts nothing now ([`Manager::stale_spawn`]).
            if let Some(old) = svc.spawn_cancel.replace(cancel.clone()) {
                old.store(true, std::sync::atomic::Ordering::Release);
            }
            svc.state = state;
        }
        let tx = self.tx.clone();
        let path = cmd.path.clone();
        let job: turns::Job = Box::new(move || {
            let over = || cancel.load(std::sync::atomic::Ordering::Acquire);
            let cancelled = || {
                over().then(|| StartFailure {
                    msg: format!("{path} not started: the run was stopped meanwhile"),
                    status: None,
                })
            };
            let (result, log, credentials) = (|| {
                if let Some(failure) = cancelled() {
                    return (Err(failure), None, None);
                }
                let credentials = if make_credentials {
                    match make_credentials_for(&pending.unit, user_mode, &over) {
                        Ok(made) => {
                            pending.inputs.credentials.clone_from(&made);
                            made
                        }
                        Err(failure) => return (Err(cancelled().unwrap_or(failure)), None, None),
                    }
                } else {
                    None
                };
                let (result, log) = match pending.prepare() {
                    Ok((mut prepared, held)) => {
                        let result = open_files_for(&mut prepared).and_then(|_opened| {
                            // The last moment a stop can still prevent the spawn.
                            if let Some(failure) = cancelled() {
                                return Err(failure);
                            }
                            spawn::spawn_noting_pid(&prepared.plan, Some(&slot)).map_err(|e| {
                                StartFailure {
                                    msg: format!("failed to start {path}: {e}"),
                                    status: e.exit_code().map(ExitStatus::Exited),
                                }
                            })
                        });
                        let log = prepared.log.take();
                        drop(prepared);
                        drop(held);
                        (result, log)
                    }
                    Err(failure) => (Err(failure), None),
                };
                (result, log, credentials)
            })();
            let _ = tx.send(Event::Spawned {
                service: id,
                state,
                result,
                log,
                path,
                credentials,
                token: cancel,
            });
        });
        let then = self.turns.submit(job, Instant::now(), start_turn);
        self.turns_then(then);
        Ok(())
    }

    /// Arms the check a waiting spawn needs ([`Then::CheckAt`]), unless an
    /// earlier one is armed.
    pub(super) fn turns_then(&mut self, then: Then) {
        let Then::CheckAt(at) = then else {
            return;
        };
        if self.turns_check.is_some_and(|armed| armed <= at) {
            return;
        }
        self.turns_check = Some(at);
        let tx = self.tx.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(at.into()).await;
            let _ = tx.send(Event::TurnsDue);
        });
    }

    /// A spawn came back that is no longer the service's current one: its
    /// run ended while it was under way (`after_stop`), or a later spawn of
    /// the service (an `ExecStopPost=` of a stop, the next run) replaced
    /// it. Its process goes, and it changes nothing of the service. The
    /// credentials it made go too, unless a later spawn or run owns their
    /// directory now (each run makes them anew in the same directory).
    /// Returns whether the spawn was such a one.
    pub(super) fn stale_spawn(
        &mut self,
        id: u64,
        token: &std::sync::Arc<std::sync::atomic::AtomicBool>,
        result: &Result<spawn::Child, StartFailure>,
        credentials: Option<&crate::service::credentials::Credentials>,
    ) -> bool {
        let Some(svc) = self.services.get_mut(&id) else {
            return false;
        };
        if svc
            .spawn_cancel
            .as_ref()
            .is_some_and(|current| std::sync::Arc::ptr_eq(current, token))
        {
            return false;
        }
        let name = svc.unit.id.to_string();
        match result {
            Ok(child) => {
                tracing::info!(
                    "{name}: stopping pid {}, started for a run that is over",
                    child.pid
                );
                // Through its pidfd: nothing waits for this process any
                // more, so it may have been reaped as an orphan already and
                // its pid given to another.
                let _ = child.send_signal(libc::SIGKILL);
            }
            Err(failure) => tracing::debug!("{name}: {failure}"),
        }
        if let Some(made) = credentials
            && svc.spawn_cancel.is_none()
            && svc.credentials.is_none()
        {
            made.remove();
        }
        // No later spawn: the service waits for none any more.
        if svc.spawn_cancel.is_none() {
            svc.spawning = false;
            svc.spawn_pid = None;
        }
        if self.reap_pending {
            let _ = self.tx.send(Event::ChildSignal);
        }
        self.redispatch_notify();
        true
    }

    /// Whether the command about to spawn makes the run's credentials
    /// (`LoadCredential=` and friends): they are read again for every
    /// `ExecStartPre=` and the first `ExecStart=`, so that one written or
    /// renewed by an `ExecStartPre=` (or since the last start) is what the
    /// service gets (systemd's `EXEC_SETUP_CREDENTIALS_FRESH`); later
    /// commands use the run's. The spawn's thread makes them
    /// ([`make_credentials_for`]): a credential read from a unix socket
    /// whose server is slow, or a file on a hung file system, holds up that
    /// start only, as systemd reads them in its forked child.
    fn credentials_due(&self, id: u64, state: State) -> bool {
        let Some(svc) = self.services.get(&id) else {
            return false;
        };
        let fresh = matches!(state, State::StartPre(_) | State::Start(0));
        (svc.credentials.is_none() || fresh)
            && crate::service::credentials::configured(&svc.unit, "Service")
    }

    /// Credentials the service's current spawn made: the run's from now on
    /// (they replace the last ones in the same directory), or removed when
    /// the service is gone.
    pub(super) fn credentials_made(
        &mut self,
        id: u64,
        made: crate::service::credentials::Credentials,
    ) {
        match self.services.get_mut(&id) {
            Some(svc) => svc.credentials = Some(made),
            None => made.remove(),
        }
    }

    /// A spawn came back: the service no longer waits for it, and orphans
    /// held back meanwhile are reaped once the child is recorded. Returns
    /// the service's name, or `None` when the service is gone (its child,
    /// if any, is killed).
    fn spawn_returned(
        &mut self,
        id: u64,
        result: &Result<spawn::Child, StartFailure>,
    ) -> Option<String> {
        if self.reap_pending {
            // The caller records this child first, then reaping goes on.
            // Also when the service is gone (an `Accept=yes` instance
            // stopped while its spawn was under way): a round may have
            // stopped at this child's exit, and the exits behind it wait
            // for the next one.
            let _ = self.tx.send(Event::ChildSignal);
        }
        let Some(svc) = self.services.get_mut(&id) else {
            if let Ok(child) = result {
                // Through its pidfd, as in `stale_spawn`.
                let _ = child.send_signal(libc::SIGKILL);
            }
            return None;
        };
        svc.spawning = false;
        svc.spawn_pid = None;
        svc.spawn_cancel = None;
        Some(svc.unit.id.to_string())
    }

    /// An `ExecStart=` command with the `-` prefix that could not be run
    /// counts as one that exited cleanly (systemd's 203/EXEC under
    /// `EXEC_COMMAND_IGNORE_FAILURE`): a oneshot goes on with its next
    /// command; another service stops the normal way. Whether it was.
    fn start_failure_ignored(&mut self, id: u64, state: State, failure: &StartFailure) -> bool {
        let State::Start(n) = state else {
            return false;
        };
        let Some(svc) = self.services.get_mut(&id) else {
            return false;
        };
        let ignored = failure.status.is_some()
            && svc
                .unit
                .commands("Service", "ExecStart")
                .get(n)
                .is_some_and(|c| c.ignore_failure);
        if !ignored {
            return false;
        }
        svc.last_status = failure.status;
        svc.main_status = failure.status;
        let next = if svc.service_type() == "oneshot" {
            State::Start(n + 1)
        } else {
            State::Stop(0)
        };
        self.step(id, next);
        true
    }

    /// The main process was spawned (or could not be).
    pub(super) fn on_main_spawned(
        &mut self,
        id: u64,
        state: State,
        result: Result<spawn::Child, StartFailure>,
        log: Option<OwnedFd>,
        path: &str,
    ) {
        let Some(name) = self.spawn_returned(id, &result) else {
            return;
        };
        let report = self.exit_report(id);
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let child = match result {
            Ok(c) => c,
            Err(failure) => {
                tracing::error!("{name}: {failure}");
                if svc.state == state && self.start_failure_ignored(id, state, &failure) {
                    self.redispatch_notify();
                    return;
                }
                let Some(svc) = self.services.get_mut(&id) else {
                    return;
                };
                if svc.state == state {
                    svc.result = failure.result();
                    if failure.status.is_some() {
                        svc.last_status = failure.status;
                        svc.main_status = failure.status;
                    }
                    self.step(id, State::StopPost(0));
                }
                self.redispatch_notify();
                return;
            }
        };
        let pid = child.pid;
        let output = log.and_then(|pipe| {
            let prefix = svc
                .unit
                .get_bool("Service", "SyslogLevelPrefix")
                .unwrap_or(true);
            let ident = exec::log_identifier(&svc.unit, "Service", path);
            exec::forward_log(pipe, name.clone(), ident, pid, prefix)
        });
        self.children
            .insert(pid, Waited::new(report, id, child, output));
        svc.main_pid = Some(pid);
        svc.main_pgid = Some(pid);
        // A forking service's `ExecStart=` is a command of its own (systemd's
        // control process of the start): its run is shown as the others'
        // ("Process: 42 ExecStart=... (code=exited, status=0/SUCCESS)").
        if let State::Start(index) = state
            && svc.service_type() == "forking"
        {
            svc.command_runs
                .retain(|r| (r.key, r.index) != ("ExecStart", index));
            svc.command_runs.push(CommandRun {
                key: "ExecStart",
                index,
                pid,
                start_usec: realtime_usec(),
                exit_usec: 0,
                status: None,
            });
        }
        if !needs_connection_after_start(&svc.unit)
            && let Some((conn, _, _)) = &mut svc.conn
        {
            *conn = None;
        }
        if svc.state != state {
            // A stop came while the process was being started: it goes too.
            tracing::info!("{name}: stopping {path} (pid {pid}), started during a stop");
            signal_group(pid, svc.kill_signal());
            signal_group(pid, libc::SIGCONT);
            return;
        }
        let kind = svc.service_type().to_string();
        let watchdog = svc
            .unit
            .get_usec("Service", "WatchdogSec")
            .is_some_and(|u| u > 0 && u != u64::MAX);
        tracing::info!("{name}: started {path} (pid {pid})");
        if watchdog {
            self.arm_watchdog(id);
        }
        self.redispatch_notify();
        // Started once the process exists (exec: once execve succeeded,
        // which the spawn has waited for); notify waits for READY=1,
        // forking and oneshot for the exit.
        if matches!(kind.as_str(), "simple" | "exec" | "idle") {
            self.step(id, State::StartPost(0));
        } else if kind == "dbus" {
            self.watch_bus_name(id);
        }
    }

    /// `Type=dbus`: the service is started once its `BusName=` has an owner
    /// on the bus. A thread asks the bus (`NameHasOwner`, every 50 ms) and
    /// reports [`Event::BusName`]. Where no bus answers, the service counts
    /// as started at once, as `Type=simple`, with a warning.
    fn watch_bus_name(&mut self, id: u64) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let user = self.search.user_mode;
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let Some(name) = svc.unit.get_str("Service", "BusName").map(str::to_string) else {
            self.step(id, State::StartPost(0));
            return;
        };
        let launches = svc.launches;
        let unit_name = svc.unit.id.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        svc.bus_watch = Some(BusWatch(stop.clone()));
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("flint-bus".into())
            .spawn(move || {
                let asked = (|| {
                    let address = crate::bus::default_address(user)?;
                    // The bus may be starting beside the service: a few
                    // tries while nothing listens yet. A bus that accepts
                    // (one socket-activated by this flint waits in the
                    // backlog) answers within the 5 s of each read.
                    let mut tries = 0;
                    let mut bus = loop {
                        match crate::bus::Bus::connect(&address, Duration::from_secs(5)) {
                            Ok(bus) => break bus,
                            Err(crate::bus::BusError::Connect { .. })
                                if tries < 20 && !stop.load(Ordering::Acquire) =>
                            {
                                tries += 1;
                            }
                            Err(e) => return Err(e),
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    };
                    while !stop.load(Ordering::Acquire) {
                        if bus.name_has_owner(&name)? {
                            return Ok(true);
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Ok(false)
                })();
                let _ = tx.send(Event::BusName {
                    service: id,
                    launches,
                    name,
                    result: asked.map_err(|e: crate::bus::BusError| e.to_string()),
                });
            });
        if let Err(e) = spawned {
            tracing::warn!("{unit_name}: cannot watch the bus: {e}");
            self.step(id, State::StartPost(0));
        }
    }

    /// The bus watch of a `Type=dbus` service answered.
    pub(super) fn on_bus_name(
        &mut self,
        id: u64,
        launches: u64,
        name: &str,
        result: Result<bool, String>,
    ) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        if svc.launches != launches
            || !matches!(svc.state, State::Start(_))
            || svc.service_type() != "dbus"
        {
            return;
        }
        // Leaving the start drops the watch (`step`).
        match result {
            Ok(true) => {
                tracing::info!("{}: {name} is on the bus", svc.unit.id);
                self.step(id, State::StartPost(0));
            }
            // Stopped: the start moved on without it.
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(
                    "{}: Type=dbus: cannot ask the bus for {name} ({e}); the service counts \
                     as started, as with Type=simple",
                    svc.unit.id
                );
                self.step(id, State::StartPost(0));
            }
        }
    }

    /// A control command (`ExecCondition=`, `ExecStartPre=`, ...) was
    /// spawned (or could not be).
    pub(super) fn on_control_spawned(
        &mut self,
        id: u64,
        state: State,
        result: Result<spawn::Child, StartFailure>,
        log: Option<OwnedFd>,
        path: &str,
    ) {
        let Some(name) = self.spawn_returned(id, &result) else {
            return;
        };
        let report = self.exit_report(id);
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let child = match result {
            Ok(child) => child,
            // A stop moved the service on meanwhile: nothing waits for it.
            Err(_) if svc.state != state => return,
            Err(failure) => {
                tracing::error!("{name}: {failure}");
                let ignore = step_key(state).is_some_and(|(key, n)| {
                    svc.unit
                        .commands("Service", key)
                        .get(n)
                        .is_some_and(|c| c.ignore_failure)
                });
                let next = self.control_start_failed(id, state, &failure, ignore);
                self.step(id, next);
                return;
            }
        };
        let pid = child.pid;
        let output = log.and_then(|pipe| {
            let prefix = svc
                .unit
                .get_bool("Service", "SyslogLevelPrefix")
                .unwrap_or(true);
            let ident = exec::log_identifier(&svc.unit, "Service", path);
            exec::forward_log(pipe, name.clone(), ident, pid, prefix)
        });
        self.children
            .insert(pid, Waited::new(report, id, child, output));
        if svc.state != state {
            // The service moved on (a stop, a timeout) while the command was
            // being started: it goes.
            tracing::info!("{name}: stopping {path} (pid {pid}), started during a stop");
            signal_group(pid, libc::SIGTERM);
            signal_group(pid, libc::SIGCONT);
            return;
        }
        tracing::debug!("{name}: running {path} (pid {pid})");
        svc.control_pid = Some(pid);
        if let Some((key, index)) = step_key(state) {
            svc.command_runs
                .retain(|r| (r.key, r.index) != (key, index));
            svc.command_runs.push(CommandRun {
                key,
                index,
                pid,
                start_usec: realtime_usec(),
                exit_usec: 0,
                status: None,
            });
        }
        svc.control_ignore = step_key(state).is_some_and(|(key, n)| {
            svc.unit
                .commands("Service", key)
                .get(n)
                .is_some_and(|c| c.ignore_failure)
        });
        self.redispatch_notify();
    }

    /// Notify messages that arrived before their sender's spawn was
    /// recorded get another look.
    fn redispatch_notify(&mut self) {
        let now = Instant::now();
        let pending: Vec<(Instant, Message)> = std::mem::take(&mut self.pending_notify);
        for (at, msg) in pending {
            if now.duration_since(at) < Duration::from_secs(5) {
                self.on_notify(msg);
            }
        }
    }

    /// systemd's `service_get_triggering_service()`: the `MONITOR_*`
    /// variables of the one loaded service that names `svc` in
    /// `OnFailure=` or `OnSuccess=`, as that service stands now; none when
    /// several do. An `Accept=yes` instance is let go of as it ends, while
    /// systemd keeps it loaded: the last ones that named such units count
    /// as loaded ([`Manager::remember_ended`]).
    fn monitor_env(&self, svc: &ServiceRt) -> Vec<(String, String)> {
        let me = svc.unit.id.as_str();
        if !self.on_result_targets.contains(me) {
            return Vec::new();
        }
        let live = self
            .services
            .values()
            .filter(|o| o.on_result.iter().any(|n| n == me))
            .map(Ended::of);
        let ended = self
            .ended
            .iter()
            .filter(|e| e.on_result.iter().any(|n| n == me) && !self.by_name.contains_key(&e.unit));
        let mut naming = live.chain(ended.cloned());
        let (Some(t), None) = (naming.next(), naming.next()) else {
            return Vec::new();
        };
        let mut env = vec![("MONITOR_SERVICE_RESULT".to_string(), t.result.to_string())];
        if let Some(st) = t.main_status {
            let (code, status) = exit_code_and_status(st);
            env.push(("MONITOR_EXIT_CODE".into(), code.into()));
            env.push(("MONITOR_EXIT_STATUS".into(), status));
        }
        if !t.invocation_id.is_empty() {
            env.push(("MONITOR_INVOCATION_ID".into(), t.invocation_id));
        }
        env.push(("MONITOR_UNIT".into(), t.unit));
        env
    }

    /// Keeps what [`Manager::monitor_env`] needs of an instance let go of,
    /// when it names units in `OnFailure=`/`OnSuccess=` (the last
    /// [`ENDED_KEPT`]).
    pub(super) fn remember_ended(&mut self, svc: &ServiceRt) {
        if svc.on_result.is_empty() {
            return;
        }
        if self.ended.len() >= ENDED_KEPT {
            self.ended.pop_front();
        }
        self.ended.push_back(Ended::of(svc));
    }

    /// Lets go of a failed `Accept=yes` instance kept loaded (after
    /// `reset-failed`, or when newer ones take its place), unless it was
    /// started again meanwhile.
    pub(super) fn forget_failed_instance(&mut self, id: u64) {
        self.failed_instances.retain(|i| *i != id);
        let idle = self.services.get(&id).is_some_and(|s| {
            matches!(s.state, State::Dead | State::Failed) && !s.spawning && s.kept_failed
        }) && !self.jobs.contains_key(&id);
        if idle && let Some(svc) = self.services.remove(&id) {
            self.remember_ended(&svc);
        }
    }

    /// The namespaces and private temporary directories of a running unit
    /// that service `id` joins: one its `JoinsNamespaceOf=` names, or one
    /// that names it (systemd implies the inverse), whichever runs with
    /// them first. Each is taken only where both units ask for it
    /// (`PrivateNetwork=`, `PrivateIPC=`, `PrivateTmp=`); the
    /// systemd-socket-proxyd of a socket reaches a server in a private
    /// network this way.
    fn joined_namespaces(
        &self,
        id: u64,
    ) -> (
        Option<crate::service::sandbox::RunNamespaces>,
        Option<crate::service::sandbox::PrivateTmp>,
    ) {
        let Some(svc) = self.services.get(&id) else {
            return (None, None);
        };
        let named = |u: &Unit| -> Vec<String> {
            u.entries("Unit", "JoinsNamespaceOf")
                .iter()
                .filter_map(|(v, _)| match v {
                    Value::Unit(n) => Some(n.clone()),
                    _ => None,
                })
                .collect()
        };
        let own = named(&svc.unit);
        let me = svc.unit.id.as_str();
        // (One that is down holds nothing to join: a run's namespaces and
        // /tmp go with it, or wait for its restart.)
        let mut others: Vec<&ServiceRt> = self
            .services
            .iter()
            .filter(|(other, o)| {
                **other != id
                    && !matches!(o.state, State::Dead | State::Failed)
                    && (own.iter().any(|n| n == o.unit.id.as_str())
                        || named(&o.unit).iter().any(|n| n == me))
            })
            .map(|(_, o)| o)
            .collect();
        // Those it names first, in its order.
        others.sort_by_key(|o| {
            own.iter()
                .position(|n| n == o.unit.id.as_str())
                .unwrap_or(usize::MAX)
        });
        // The network and the IPC namespace each from the first that has
        // one.
        let network = others
            .iter()
            .find_map(|o| o.namespaces.as_ref()?.network.clone());
        let ipc = others
            .iter()
            .find_map(|o| o.namespaces.as_ref()?.ipc.clone());
        let ns =
            (network.is_some() || ipc.is_some()).then(|| crate::service::sandbox::RunNamespaces {
                network,
                ipc,
                user: None,
            });
        let tmp = others.iter().find_map(|o| o.private_tmp.clone());
        (ns, tmp)
    }

    /// What a run keeps for its commands, made before the command about to
    /// spawn: the network and IPC namespaces its commands share
    /// (`PrivateNetwork=`, `PrivateIPC=`) and its private temporary
    /// directories (`PrivateTmp=`, `DynamicUser=`), where flint may make
    /// namespaces. Its credentials are made on the spawn's thread
    /// ([`Manager::credentials_due`]).
    fn prepare_run(&mut self, id: u64) -> Result<(), StartFailure> {
        use crate::service::sandbox;
        let (join_ns, join_tmp) = self.joined_namespaces(id);
        let Some(svc) = self.services.get_mut(&id) else {
            return Ok(());
        };
        if svc.namespaces.is_none()
            && !sandbox::can_make_namespaces()
            && svc.unit.get_bool("Service", "PrivateUsers") == Some(true)
            && warn_once(&format!("PrivateUsers {}", svc.unit.id))
        {
            tracing::warn!(
                "{}: PrivateUsers= is not applied: flint may not make namespaces here (no CAP_SYS_ADMIN); flint run --refuse-unenforced refuses such units",
                svc.unit.id
            );
        }
        if svc.namespaces.is_none() && sandbox::can_make_namespaces() {
            let ids = exec::unit_owner(&svc.unit, "Service").ok().flatten();
            match sandbox::RunNamespaces::create(&svc.unit, "Service", ids, join_ns.as_ref()) {
                Ok(ns) => svc.namespaces = ns,
                // A user namespace has no fallback: the start fails, as
                // systemd's "Failed to set up user namespacing" (217/USER).
                Err(e) if svc.unit.get_bool("Service", "PrivateUsers") == Some(true) => {
                    return Err(StartFailure {
                        msg: format!("failed to set up user namespacing: {e}"),
                        status: Some(ExitStatus::Exited(
                            spawn::ChildStep::UserNamespace.exit_code(),
                        )),
                    });
                }
                // Each command then makes its own, as before, and fails
                // or goes on without as the sandbox says.
                Err(e) => tracing::debug!("{}: {e}", svc.unit.id),
            }
        }
        if svc.private_tmp.is_some()
            || !sandbox::wants_private_tmp(&svc.unit, "Service")
            || !sandbox::can_make_namespaces()
        {
            return Ok(());
        }
        if let Some(shared) = join_tmp {
            svc.private_tmp = Some(shared);
            return Ok(());
        }
        let made = sandbox::PrivateTmp::create(svc.unit.id.as_str()).map_err(|e| StartFailure {
            msg: format!("failed to set up the private temporary directories: {e}"),
            status: Some(ExitStatus::Exited(spawn::ChildStep::Namespace.exit_code())),
        })?;
        svc.private_tmp = Some(made);
        Ok(())
    }

    /// `Slice=`: the service's cgroup goes in the slice's, nested in the
    /// slices its name implies (`a-b.slice` in `a.slice`), each with the
    /// resource settings of its `.slice` unit (`TasksMax=`, `MemoryMax=`,
    /// `CPUWeight=`, ...), device and address lists written before the
    /// service's first process, as systemd realizes a unit's slices first:
    /// when the slice's cgroup is made, and again when its unit changed. A
    /// slice without a unit file is used with none, as systemd's implicit
    /// slices. Without `Slice=` the cgroup is right in flint's subtree,
    /// which stands for the root slice.
    fn place_in_slice(&mut self, id: u64) {
        use crate::cgroup::Controller;
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) else {
            return;
        };
        let name = svc.unit.id.to_string();
        let slice = svc.unit.get_str("Service", "Slice").unwrap_or_default();
        let chain = crate::cgroup::slice_chain(slice).unwrap_or_default();
        // Placed for this run already (its cgroup is made and removed with
        // the run, or made ahead of it).
        if svc.placed_in.as_deref() == Some(slice) && cg.present(&name, &chain) {
            return;
        }
        let slice = slice.to_string();
        let slices: Vec<Unit> = chain
            .iter()
            .filter_map(|s| s.parse::<crate::unit::name::UnitName>().ok())
            .map(|n| self.units.load_instance(&self.search, &n))
            .collect();
        // A masked or broken slice fails the start (`Slice=` requires it,
        // see jobs.rs); nothing is placed in it.
        if slices.len() != chain.len() || !slices.iter().all(super::jobs::slice_is_usable) {
            return;
        }
        let slice_controllers: Vec<Controller> = Controller::ALL
            .into_iter()
            .filter(|c| {
                slices
                    .iter()
                    .filter(|u| u.is_loaded())
                    .any(|u| crate::service::resources::configured(u, "Slice", *c))
            })
            .collect();
        let Some(cg) = self.cgroups.as_ref() else {
            return;
        };
        let paths = match cg.place(&name, &chain) {
            Ok(paths) => paths,
            Err(left) => {
                tracing::warn!(
                    "{name}: Slice= changed, but processes of its last run are still in {}; it stays there",
                    left.display()
                );
                return;
            }
        };
        if let Some(svc) = self.services.get_mut(&id) {
            svc.slice_controllers = slice_controllers;
            svc.placed_in = Some(slice);
        }
        for (slice, path) in slices.iter().zip(&paths) {
            let fresh = !cg.dir(path).exists();
            let dir = match cg.prepare(path) {
                Ok(dir) => dir,
                Err(e) => {
                    tracing::warn!(
                        "{name}: cannot create the control group of {}: {e}",
                        slice.id
                    );
                    continue;
                }
            };
            // What the slice's unit says, to write it once per change.
            let said = format!(
                "{}{:?}",
                slice.load_state.as_str(),
                crate::unit::directive::SLICE_KEYS
                    .iter()
                    .map(|k| slice.entries("Slice", k))
                    .collect::<Vec<_>>()
            );
            let before = self.slices_applied.get(path);
            if !fresh && before.is_some_and(|(b, _)| *b == said) {
                continue;
            }
            let was: Vec<Controller> = before.map(|(_, c)| c.clone()).unwrap_or_default();
            let set: Vec<Controller> = Controller::ALL
                .into_iter()
                .filter(|c| {
                    slice.is_loaded() && crate::service::resources::configured(slice, "Slice", *c)
                })
                .collect();
            self.slices_applied
                .insert(path.clone(), (said, set.clone()));
            // A controller the slice no longer sets goes back to the
            // kernel's defaults.
            for c in was.iter().filter(|c| !fresh && !set.contains(c)) {
                if let Some(h) = cg.hierarchy(*c) {
                    let _ = cg.apply(path, *c, &crate::service::resources::defaults(*c, h));
                }
            }
            if !slice.is_loaded() {
                continue;
            }
            apply_unit_resources(slice, "Slice", cg, path, None);
            // Device and address programs on a slice hold for every
            // cgroup below it (attached with BPF_F_ALLOW_MULTI, each once).
            if let Some(rules) = crate::service::devices::rules(slice, "Slice")
                && let Err(e) = crate::service::devices::apply(&dir, &rules)
            {
                tracing::warn!(
                    "{}: device access is not restricted (DevicePolicy=, DeviceAllow=): {e}",
                    slice.id
                );
            }
            if let Some(list) = crate::service::firewall::access_list(slice, "Slice")
                && let Err(e) = crate::service::firewall::apply(&dir, &list)
            {
                tracing::warn!(
                    "{}: IP addresses are not restricted (IPAddressAllow=, IPAddressDeny=): {e}",
                    slice.id
                );
            }
        }
    }

    /// Makes the cgroup of a socket-activated service (and its slices)
    /// while it does not run, so that the connection that starts it does
    /// not wait for the kernel to make one (about 0.1 ms). An empty cgroup
    /// changes nothing for the service; flint's subtree goes at exit.
    pub(super) fn cgroup_ahead(&mut self, id: u64) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        if cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc).is_none() {
            return;
        }
        self.place_in_slice(id);
        if let (Some(cg), Some(svc)) = (self.cgroups.as_ref(), self.services.get(&id))
            && let Err(e) = cg.prepare(svc.unit.id.as_str())
        {
            tracing::debug!("{}: {e}", svc.unit.id);
        }
    }

    /// Prepares a command of a service: its whole execution environment.
    fn prepare_command(
        &self,
        id: u64,
        cmd: &ExecCommand,
        state: State,
    ) -> Result<PendingCommand, StartFailure> {
        let svc = self.services.get(&id).ok_or("unknown service")?;
        let main = matches!(state, State::Start(_));
        let mut inputs = SpawnInputs {
            env_edits: svc
                .activation_env
                .iter()
                .chain(&svc.env_edits)
                .cloned()
                .collect(),
            user_mode: self.search.user_mode,
            main_process: main,
            fds_are_sockets: true,
            private_tmp: svc.private_tmp.clone(),
            namespaces: svc.namespaces.clone(),
            credentials: svc.credentials.clone(),
            ..Default::default()
        };
        if let Some((conn, socket, peer)) = &svc.conn {
            let sock = &self.sockets[*socket];
            let name = sock
                .config
                .fd_name
                .clone()
                .unwrap_or_else(|| "connection".to_string());
            let Some(conn) = conn else {
                return Err(StartFailure {
                    msg: format!(
                        "{}: the connection went to the instance's first run; an Accept=yes instance cannot start again",
                        svc.unit.id
                    ),
                    status: None,
                });
            };
            inputs.fds.push((conn.as_raw_fd(), name));
            if let Some(p) = peer {
                inputs.extra_env.extend(p.remote_env());
            }
        } else {
            for s in self.service_sockets(svc) {
                let sock = &self.sockets[s];
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
        // OpenFile=: opened at each start of the main process, by the
        // spawn job (off the event loop, as systemd opens them in its
        // child); here only their names are counted in.
        let mut open_files = Vec::new();
        if main {
            inputs.stored_fds = svc
                .fd_store
                .iter()
                .map(|(fd, name)| (fd.as_raw_fd(), name.clone()))
                .collect();
            open_files = crate::service::open_file::of_unit(&svc.unit, "Service");
            inputs.open_files = open_files.iter().map(|o| o.fd_name.clone()).collect();
        }
        // Only the main process gets the fds, unless they are its stdio.
        let inetd = crate::service::exec::stdio_is_socket(&svc.unit, "Service");
        if !main && !inetd {
            inputs.fds.clear();
        }
        let access = svc.notify_access();
        let notify_allowed = if main {
            access != "none"
        } else {
            matches!(access, "exec" | "all")
        };
        if let (true, Some(path)) = (notify_allowed, self.notify_path.as_ref()) {
            inputs
                .extra_env
                .push(("NOTIFY_SOCKET".into(), path.clone()));
        }
        if let (false, Some(pid)) = (main, svc.main_pid) {
            inputs.extra_env.push(("MAINPID".into(), pid.to_string()));
        }
        if main
            && let Some(us) = svc
                .unit
                .get_usec("Service", "WatchdogSec")
                .filter(|u| *u > 0 && *u != u64::MAX)
        {
            inputs
                .extra_env
                .push(("WATCHDOG_USEC".into(), us.to_string()));
        }
        if let Some(Value::Path(p)) = svc.unit.get("Service", "PIDFile") {
            inputs
                .extra_env
                .push(("PIDFILE".into(), p.to_string_lossy().into_owned()));
        }
        let invocation = if svc.invocation_id.is_empty() {
            exec::invocation_id()
        } else {
            svc.invocation_id.clone()
        };
        inputs.extra_env.push(("INVOCATION_ID".into(), invocation));
        // An init script's unit (systemd-sysv-generator's `SourcePath=`):
        // Debian's LSB hook (`/lib/lsb/init-functions.d/40-systemd`) sends
        // a script run by anyone but PID 1 to `systemctl`, so under a flint
        // that is not PID 1 its start would wait for its own job until the
        // timeout. systemd runs it as PID 1; flint says the same thing the
        // hook's way.
        if crate::own_pid() != 1
            && svc
                .unit
                .get_path("Unit", "SourcePath")
                .is_some_and(|p| p.starts_with("/etc/init.d"))
        {
            inputs
                .extra_env
                .push(("SYSTEMCTL_SKIP_REDIRECT".into(), "1".into()));
        }
        // `ExecStartPre=` and `ExecStart=` learn of the unit whose
        // `OnFailure=`/`OnSuccess=` names this one (systemd's
        // `EXEC_SETENV_MONITOR_RESULT`).
        if matches!(state, State::StartPre(_) | State::Start(_)) {
            inputs.extra_env.extend(self.monitor_env(svc));
        }
        if matches!(state, State::Stop(_) | State::StopPost(_)) {
            inputs
                .extra_env
                .push(("SERVICE_RESULT".into(), svc.result.to_string()));
            // The main process's end only (systemd's `main_exec_status`),
            // never a command's of the start.
            if let Some(st) = svc.main_status {
                let (code, status) = exit_code_and_status(st);
                inputs.extra_env.push(("EXIT_CODE".into(), code.into()));
                inputs.extra_env.push(("EXIT_STATUS".into(), status));
            }
        }
        // `systemd-run --pipe`: every command of the service runs on the
        // caller's standard I/O (systemd's `stdio_as_fds`).
        if let Some((fds, _)) = self.transient_stdio.get(svc.unit.id.as_str()) {
            inputs.stdio_fds = Some([fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()]);
        }
        // The fds the command passes, duplicated: the spawn's thread
        // prepares and spawns with these whatever happens to the
        // originals meanwhile.
        let held = own_input_fds(&mut inputs).map_err(|e| StartFailure {
            msg: format!("failed to start {}: {e}", cmd.path),
            status: None,
        })?;
        let mut pending = PendingCommand {
            unit: svc.unit.clone(),
            cmd: control_command(&svc.unit, cmd, main),
            inputs,
            open_files,
            held,
            cgroup: None,
            delegate: false,
            legacy_cgroups: Vec::new(),
        };
        if let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) {
            let dir = cg.prepare(svc.unit.id.as_str()).map_err(|e| StartFailure {
                msg: format!(
                    "failed to create the control group {}: {e}",
                    cg.dir(svc.unit.id.as_str()).display()
                ),
                status: Some(ExitStatus::Exited(spawn::ChildStep::Cgroup.exit_code())),
            })?;
            // Delegate=: handed over once the user is known
            // (`PendingCommand::prepare`).
            pending.delegate = delegates(&svc.unit);
            // DevicePolicy=, DeviceAllow= (and what PrivateDevices= and
            // ProtectClock= imply): a device program on the cgroup, before
            // its first process. Where the kernel or flint's privileges
            // refuse one, the service runs without, as under systemd.
            if let Some(rules) = crate::service::devices::rules(&svc.unit, "Service")
                && let Err(e) = crate::service::devices::apply(&dir, &rules)
            {
                tracing::warn!(
                    "{}: device access is not restricted (DevicePolicy=, DeviceAllow=): {e}",
                    svc.unit.id
                );
            }
            // IPAddressAllow=, IPAddressDeny=: address filters for the
            // sockets the service opens, likewise.
            if let Some(list) = crate::service::firewall::access_list(&svc.unit, "Service")
                && let Err(e) = crate::service::firewall::apply(&dir, &list)
            {
                tracing::warn!(
                    "{}: IP addresses are not restricted (IPAddressAllow=, IPAddressDeny=): {e}",
                    svc.unit.id
                );
            }
            // Resource control: TasksMax= (or DefaultTasksMax=, as
            // systemd gives every service), memory and CPU settings,
            // through the controllers flint has (v2, or a v1 hierarchy
            // the service's processes then join too).
            apply_resources(svc, cg, &mut pending.legacy_cgroups);
            pending.cgroup = Some(dir);
        } else {
            // Device rules only say so at debug level (PrivateDevices=
            // alone asks for them). An address filter the unit asked for
            // is warned about, unless the service is an Accept=yes
            // instance (no cgroup of its own unless --cgroups all; the
            // connection is the socket unit's), which would say so per
            // connection.
            if crate::service::devices::restricts(&svc.unit, "Service") {
                tracing::debug!(
                    "{}: device access is not restricted (DevicePolicy=, DeviceAllow=): no cgroup of its own",
                    svc.unit.id
                );
            }
            let mut unenforced = Vec::new();
            if crate::service::firewall::restricts(&svc.unit, "Service") {
                unenforced
                    .push("IP addresses are not restricted (IPAddressAllow=, IPAddressDeny=)");
            }
            for (controller, what) in [
                (
                    crate::cgroup::Controller::Pids,
                    "the number of tasks is not limited (TasksMax=)",
                ),
                (
                    crate::cgroup::Controller::Memory,
                    "memory is not limited (MemoryMax= and the like)",
                ),
                (
                    crate::cgroup::Controller::Cpu,
                    "CPU time is not controlled (CPUQuota=, CPUWeight=, CPUShares=)",
                ),
            ] {
                if crate::service::resources::configured(&svc.unit, "Service", controller) {
                    unenforced.push(what);
                }
            }
            for what in unenforced {
                if svc.conn.is_some() {
                    // Once per template: instances come per connection.
                    let template = svc
                        .unit
                        .id
                        .template()
                        .map_or_else(|| svc.unit.id.to_string(), |t| t.to_string());
                    if warn_once(&format!("{template}: {what}")) {
                        tracing::warn!(
                            "{template}: {what} for its Accept=yes instances, which have no cgroup of their own (flint run --cgroups all gives them one)"
                        );
                    }
                } else {
                    tracing::warn!("{}: {what}: no cgroup of its own", svc.unit.id);
                }
            }
        }
        Ok(pending)
    }

    /// Where a control command that could not be started leads: the next
    /// command when it has the `-` prefix (`ignore`), else as a failure.
    fn control_start_failed(
        &mut self,
        id: u64,
        state: State,
        failure: &StartFailure,
        ignore: bool,
    ) -> State {
        if ignore {
            return next_step(state);
        }
        if let (Some(svc), Some(_)) = (self.services.get_mut(&id), failure.status) {
            svc.last_status = failure.status;
        }
        self.after_control_failure(id, state, failure.result())
    }

    /// Where a failed control command leads.
    fn after_control_failure(&mut self, id: u64, state: State, result: &'static str) -> State {
        let Some(svc) = self.services.get_mut(&id) else {
            return State::Dead;
        };
        // A failed reload is the reload's result, not the unit's (systemd's
        // `reload_result`): a later clean stop still ends in success.
        if let State::Reload(_) = state {
            svc.reload_result = result;
        } else if svc.result == "success" {
            svc.result = result;
        }
        let stop_posts = svc.unit.commands("Service", "ExecStopPost").len();
        match state {
            State::Condition(_) | State::StartPre(_) => State::StopPost(0),
            // ExecStartPost= failing signals what runs, without ExecStop=
            // (systemd's `service_sigchld_event()` in START_POST).
            State::StartPost(_) => State::StopSigterm,
            // A failed reload leaves the service running (see `reload_over`).
            State::Reload(_) => self.reload_over(id),
            // A failed ExecStop= ends the list: what is left is signalled
            // (systemd's `service_sigchld_event()` runs the next command only
            // after a success); a failed ExecStopPost= ends its list too.
            State::Stop(_) => State::StopSigterm,
            State::StopPost(_) => State::StopPost(stop_posts),
            s => s,
        }
    }

    /// A process of a service exited.
    pub(super) fn on_exit(&mut self, id: u64, pid: i32, status: ExitStatus) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        if let Some(run) = svc
            .command_runs
            .iter_mut()
            .find(|r| r.pid == pid && r.status.is_none())
        {
            run.exit_usec = realtime_usec();
            run.status = Some(status);
        }
        if svc.main_pid == Some(pid) {
            svc.main_pid = None;
            self.on_main_exit(id, pid, status);
        } else if svc.control_pid == Some(pid) {
            svc.control_pid = None;
            self.on_control_exit(id, status);
        }
    }

    fn on_control_exit(&mut self, id: u64, status: ExitStatus) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let state = svc.state;
        if matches!(
            state,
            State::StopSigterm | State::StopWatchdog | State::StopSigkill
        ) {
            // A command of the start (or a reload) that the stop signalled:
            // an unclean end of it is the service's result, as systemd's
            // (a command killed by SIGTERM fails it with `signal`). The
            // stop goes on once the main process is gone too.
            if !status.success() && !svc.control_ignore && svc.result == "success" {
                svc.result = result_of(status);
            }
            if svc.main_pid.is_none() {
                self.stop_settled(id);
            }
            return;
        }
        let Some((key, n)) = step_key(state) else {
            return;
        };
        let ignore = svc
            .unit
            .commands("Service", key)
            .get(n)
            .is_some_and(|c| c.ignore_failure);
        let clean = status.success();
        if let State::Condition(_) = state
            && !clean
        {
            // 1..254: the unit is skipped, not failed; 255 or a signal fails it.
            let skip = matches!(status, ExitStatus::Exited(c) if (1..255).contains(&c));
            tracing::info!(
                "{}: ExecCondition= {} ({status})",
                svc.unit.id,
                if skip { "is false, skipping" } else { "failed" }
            );
            if skip {
                // systemd's result `exec-condition`: inactive, not failed.
                svc.result = "exec-condition";
                svc.stopping = true;
                self.step(id, State::StopPost(0));
            } else {
                svc.last_status = Some(status);
                let next = self.after_control_failure(id, state, result_of(status));
                self.step(id, next);
            }
            return;
        }
        if clean || ignore {
            self.step(id, next_step(state));
        } else {
            tracing::warn!("{}: {key}= failed ({status})", svc.unit.id);
            let next = self.after_control_failure(id, state, result_of(status));
            self.step(id, next);
        }
    }

    fn on_main_exit(&mut self, id: u64, pid: i32, status: ExitStatus) {
        // A daemon may move to a new pid: as long as it writes its
        // `PIDFile=` before the old one exits, it lives on there (systemd's
        // `service_sigchld_event()` reads the file again first).
        if let Some(new) = self.moved_main_pid(id, pid)
            && self.watch_foreign(id, new)
        {
            if let Some(svc) = self.services.get_mut(&id) {
                tracing::info!(
                    "{}: main process exited ({status}); main pid is now {new}",
                    svc.unit.id
                );
                svc.main_pid = Some(new);
            }
            return;
        }
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let state = svc.state;
        let kind = svc.service_type().to_string();
        // A oneshot's commands are not daemons: a SIGPIPE/SIGTERM/... death
        // is a failure there, as in systemd (`EXIT_CLEAN_COMMAND`).
        let clean = is_clean(&svc.unit, status, kind != "oneshot");
        // The `-` prefix of the command that ran (a oneshot's n-th).
        let running = match state {
            State::Start(n) => n,
            _ => 0,
        };
        let ignore = svc
            .unit
            .commands("Service", "ExecStart")
            .get(running)
            .is_some_and(|c| c.ignore_failure);
        let name = svc.unit.id.to_string();
        svc.last_status = Some(status);
        // A forking service's parent is no main process (systemd's control
        // process of the start): its end is not the main process's.
        let forking_parent = matches!(state, State::Start(_)) && kind == "forking";
        if !forking_parent {
            svc.main_status = Some(status);
            svc.main_exit_pid = u32::try_from(pid).ok();
        }
        // `ExitType=cgroup`: the service lives on while any of its
        // processes does (systemd's `service_sigchld_event()` does not act
        // on the main process's exit then); a failure of it is the
        // service's result when the last one is gone.
        if exit_type_cgroup(svc)
            && !forking_parent
            && matches!(
                state,
                State::Start(_)
                    | State::StartPost(_)
                    | State::Running
                    | State::Reload(_)
                    | State::ReloadNotify
            )
            && populated(self.cgroups.as_ref(), self.options.cgroups, svc)
        {
            if !(clean || ignore) && svc.result == "success" {
                svc.result = result_of(status);
            }
            tracing::info!(
                "{name}: main process exited ({status}); the service goes on while its processes run (ExitType=cgroup)"
            );
            self.watch_cgroup_empty(id, Duration::from_millis(500));
            return;
        }
        match (state, kind.as_str()) {
            (State::Start(n), "oneshot") => {
                if clean || ignore {
                    self.step(id, State::Start(n + 1));
                } else {
                    if svc.result == "success" {
                        svc.result = result_of(status);
                    }
                    tracing::warn!("{name}: failed ({status}), result '{}'", svc.result);
                    self.step(id, State::StopPost(0));
                }
            }
            (State::Start(_), "notify" | "notify-reload")
                if clean
                    && svc.unit.get_bool("Service", "RemainAfterExit") == Some(true)
                    && svc
                        .unit
                        .get_str("Service", "NotifyAccess")
                        .is_some_and(|a| a != "main" && a != "none") =>
            {
                // READY=1 may still come from another process of the
                // service (NotifyAccess=), as systemd waits for it; the
                // service then remains without its main process.
                svc.main_exited = true;
                tracing::debug!("{name}: main process exited ({status}); waiting for READY=1");
                // Once none of its processes is left, none can send it.
                self.watch_cgroup_empty(id, Duration::from_millis(500));
            }
            (State::Start(_), "notify" | "notify-reload" | "dbus") => {
                // Exited before READY=1 (or before it took its bus name):
                // the service never got ready, and never will (systemd's
                // result `protocol` for a clean exit).
                if svc.result == "success" {
                    svc.result = if clean || ignore {
                        "protocol"
                    } else {
                        result_of(status)
                    };
                }
                let awaited = if kind == "dbus" {
                    "it took its bus name"
                } else {
                    "READY=1"
                };
                tracing::warn!(
                    "{name}: main process exited before {awaited} ({status}), result '{}'",
                    svc.result
                );
                self.step(id, State::Stop(0));
            }
            (State::Start(_), "forking") => {
                if clean || ignore {
                    // The daemon is up: its main pid comes from PIDFile=,
                    // which it may write a moment after its parent exits.
                    let pid_file = match svc.unit.get("Service", "PIDFile") {
                        Some(Value::Path(p)) => Some(p.clone()),
                        _ => None,
                    };
                    let read = pid_file.as_ref().map(|p| self.pid_from_file(id, p));
                    let from_file = match (pid_file, read) {
                        (Some(p), Some(read)) => match read {
                            None if self.pid_file_never_written(id, &p) => return,
                            None => {
                                tracing::info!(
                                    "{name}: PID file {} not readable (yet?) after start.",
                                    p.display()
                                );
                                self.wait_pid_file(id);
                                return;
                            }
                            pid => pid,
                        },
                        _ => None,
                    };
                    self.forking_started(id, from_file);
                } else {
                    svc.result = result_of(status);
                    self.step(id, State::StopPost(0));
                }
            }
            (State::Stop(_) | State::StopSigterm | State::StopWatchdog | State::StopSigkill, _) => {
                // An unclean end counts while stopping too (KillSignal=SIGKILL,
                // an ExecStop= that kills it), as systemd's result.
                if !(clean || ignore) && svc.result == "success" {
                    svc.result = result_of(status);
                }
                tracing::info!("{name}: stopped ({status})");
                // A control process the stop signalled goes first.
                if !matches!(state, State::Stop(_)) && svc.control_pid.is_none() {
                    self.stop_settled(id);
                }
            }
            (State::StopPost(_) | State::Dead | State::Failed | State::AutoRestart, _) => {}
            _ => {
                if clean {
                    // As systemd: a clean exit of the main process is a
                    // debug message; "Deactivated successfully." follows.
                    tracing::debug!("{name}: exited ({status})");
                } else if ignore {
                    tracing::info!("{name}: exited ({status})");
                } else {
                    if svc.result == "success" {
                        svc.result = result_of(status);
                    }
                    tracing::warn!("{name}: failed ({status}), result '{}'", svc.result);
                }
                if matches!(state, State::StartPost(_) | State::Reload(_))
                    && (svc.control_pid.is_some() || svc.spawning)
                {
                    // As systemd: the running ExecStartPost=/ExecReload=
                    // finishes first; then the service stops (see `step`),
                    // or remains after its exit.
                    svc.main_exited = true;
                    return;
                }
                if state == State::Running
                    && (clean || ignore)
                    && !svc.stop_announced
                    && remains_after_exit(svc)
                {
                    // systemd's `service_enter_running()`: nothing of the
                    // service runs any more, and it stays active (exited),
                    // where `RuntimeMaxSec=` no longer applies.
                    svc.main_exited = true;
                    self.arm_timer(id, None);
                    return;
                }
                // A running service whose main process failed, or that
                // announced its stop (STOPPING=1), goes without ExecStop=:
                // what is left of it is signalled at once (systemd's
                // `service_enter_running()` with a failed result, and
                // `service_enter_stop_by_notify()`). A clean exit stops it
                // the normal way.
                let skip_exec_stop =
                    state == State::Running && (!(clean || ignore) || svc.stop_announced);
                if let Some(c) = svc.control_pid {
                    signal_group(c, libc::SIGTERM);
                }
                if skip_exec_stop {
                    self.kill_remaining(id);
                } else {
                    self.step(id, State::Stop(0));
                }
            }
        }
    }

    /// The pid a service's `PIDFile=` names now that its main process
    /// `old` exited, if it is a live process of the service: in its cgroup,
    /// or without cgroups a child left to flint (its subreaper) that is no
    /// main or control process of another service. While starting, the
    /// process that exits is the forking parent, and the file is read
    /// where that is handled.
    fn moved_main_pid(&self, id: u64, old: i32) -> Option<i32> {
        let svc = self.services.get(&id)?;
        if matches!(svc.state, State::Start(_)) {
            return None;
        }
        let Some(Value::Path(file)) = svc.unit.get("Service", "PIDFile") else {
            return None;
        };
        let new = read_pid_file_safely(file)
            .map(|(pid, _)| pid)
            .filter(|&p| p != old && process_alive(p))?;
        let ours = match cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) {
            Some(cg) => cg.pids(svc.unit.id.as_str()).contains(&new),
            None => {
                stat_field(new, 4) == i32::try_from(std::process::id()).ok()
                    && !self.tracked_pids().contains(&new)
            }
        };
        ours.then_some(new)
    }

    /// The main pid a service's `PIDFile=` names, if it is one systemd
    /// takes (`service_load_pid_file()`): alive, not flint itself, not
    /// the service's control process, and a process of the service, or
    /// else named in a file owned by root (with a warning). A pid refused
    /// is logged and counts as no pid yet (the start waits for the file
    /// to change, until `TimeoutStartSec=`): a service running as another
    /// user cannot have flint signal a process not its own, flint least of
    /// all.
    fn pid_from_file(&self, id: u64, path: &std::path::Path) -> Option<i32> {
        let svc = self.services.get(&id)?;
        let (pid, root_owned) = read_pid_file_safely(path)?;
        if !process_alive(pid) {
            return None;
        }
        let name = svc.unit.id.as_str();
        // Said once per pid refused (the start looks again every 20 ms).
        let refuse = |why: &str| {
            if svc.pid_refused.replace(Some(pid)) != Some(pid) {
                tracing::error!("{name}: {why}");
            }
            None
        };
        if let Some(why) = unsuitable_main_pid(svc, pid) {
            return refuse(&why);
        }
        let ours = match cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) {
            Some(cg) => cg.pids(name).contains(&pid),
            // Without a cgroup: a daemon re-parented to flint (its
            // forking parent exited) that no other unit follows, or one
            // still in the session its command started.
            None => {
                (stat_field(pid, 4) == i32::try_from(std::process::id()).ok()
                    && !self.tracked_pids().contains(&pid))
                    || (svc.main_pgid.is_some() && session_of(pid) == svc.main_pgid)
            }
        };
        if ours {
            return Some(pid);
        }
        if root_owned {
            if svc.pid_refused.replace(Some(pid)) != Some(pid) {
                tracing::warn!(
                    "{name}: New main PID {pid} does not belong to service, but we'll accept it since PID file is owned by root."
                );
            }
            Some(pid)
        } else {
            refuse(&format!(
                "New main PID {pid} does not belong to service, and PID file is not owned by root. Refusing."
            ))
        }
    }

    /// A forking service's parent exited cleanly and its `PIDFile=` (if
    /// any) was read: the main pid is the file's `from_file` (or, without
    /// a file, a guess), and the start goes on.
    fn forking_started(&mut self, id: u64, from_file: Option<i32>) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        let name = svc.unit.id.to_string();
        let pid = from_file;
        let guess = svc.unit.get_bool("Service", "GuessMainPID").unwrap_or(true);
        let pid = pid.or_else(|| if guess { self.guess_main_pid(id) } else { None });
        if let Some(pid) = pid {
            tracing::info!("{name}: main pid is {pid}");
            if let Some(svc) = self.services.get_mut(&id) {
                svc.main_pid = Some(pid);
            }
            self.watch_foreign(id, pid);
        }
        self.step(id, State::StartPost(0));
    }

    /// Looks for the `PIDFile=` again shortly, as systemd watches for it
    /// after "PID file ... not readable (yet?)": the start waits for it
    /// until `TimeoutStartSec=`, whose timer stays armed meanwhile.
    fn wait_pid_file(&mut self, id: u64) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        let launches = svc.launches;
        let tx = self.tx.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(Event::PidFileDue {
                service: id,
                launches,
            });
        });
    }

    /// A running service without a known main process (a forking daemon
    /// with `GuessMainPID=no` or none to guess) stops once its control
    /// group is empty, as systemd's does on the cgroup-empty notification
    /// ([`Manager::on_cgroup_empty`]); `cgroup.events` is looked at every
    /// half second meanwhile. Oneshot services stay up, as there, and with
    /// `RemainAfterExit=yes` any service does, as exited.
    fn watch_for_empty(&mut self, id: u64) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        if svc.main_pid.is_none() && svc.service_type() != "oneshot" && !svc.main_exited {
            self.watch_cgroup_empty(id, Duration::from_millis(500));
        }
    }

    /// The look [`Manager::wait_pid_file`] asked for.
    pub(super) fn on_pid_file_due(&mut self, id: u64, launches: u64) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        if svc.launches != launches
            || !matches!(svc.state, State::Start(_))
            || svc.main_pid.is_some()
        {
            return;
        }
        let Some(Value::Path(path)) = svc.unit.get("Service", "PIDFile") else {
            return self.wait_pid_file(id);
        };
        let path = path.clone();
        match self.pid_from_file(id, &path) {
            Some(pid) => self.forking_started(id, Some(pid)),
            // The daemon died before it wrote the file (or wrote a pid
            // that is gone): the wait ends now, not at TimeoutStartSec=.
            None if self.pid_file_never_written(id, &path) => {}
            None => self.wait_pid_file(id),
        }
    }

    /// With no process of service `id` left to write its `PIDFile=`
    /// (`path`), fails it with result `protocol`, as systemd does when the
    /// control group empties while it waits (`cgroup_good() == 0`,
    /// "Daemon never wrote its PID file. Failing."); whether it did.
    /// Without a cgroup to tell, `TimeoutStartSec=` ends the wait.
    fn pid_file_never_written(&mut self, id: u64, path: &std::path::Path) -> bool {
        let Some(svc) = self.services.get_mut(&id) else {
            return false;
        };
        let name = svc.unit.id.to_string();
        let empty = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc)
            .is_some_and(|cg| !cg.populated(&name));
        if !empty {
            return false;
        }
        if svc.result == "success" {
            svc.result = "protocol";
        }
        tracing::warn!(
            "{name}: Daemon never wrote its PID file {}. Failing. (no process of the service is left, result 'protocol')",
            path.display()
        );
        self.step(id, State::StopSigterm);
        true
    }

    /// Watches a main process that flint did not spawn (`PIDFile=`,
    /// `MAINPID=`): its pidfd turns readable when it exits.
    /// Whether it is watched: not when the process is gone already.
    fn watch_foreign(&mut self, id: u64, pid: i32) -> bool {
        if self.children.contains_key(&pid) {
            // A process flint spawned (`MAINPID=` naming it): its exit is
            // collected already, and reported once, to this service.
            let report = self.exit_report(id);
            if let Some(waited) = self.children.get_mut(&pid) {
                waited.service = id;
                waited.report = report;
            }
            return true;
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let Ok(fd) = i32::try_from(fd) else {
            return false;
        };
        if fd < 0 {
            return false;
        }
        // SAFETY: pidfd_open returned a new fd that nothing else owns.
        let pidfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let report = self.exit_report(id);
        tokio::task::spawn_local(async move {
            // SAFETY: the pidfd is moved in and stays open while registered.
            let Ok(afd) = (unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    pidfd,
                    tokio::io::Interest::READABLE,
                )
            }) else {
                return;
            };
            let _ = afd.readable().await;
            // Reap it if it became our child (flint is a subreaper).
            // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid with P_PIDFD on our pidfd and a valid siginfo buffer.
            let r = unsafe {
                libc::waitid(
                    libc::P_PIDFD,
                    afd.get_ref().as_raw_fd().cast_unsigned(),
                    &raw mut info,
                    libc::WEXITED | libc::WNOHANG,
                )
            };
            let status = if r == 0 {
                // SAFETY: waitid filled in the child fields.
                let (code, st) = unsafe { (info.si_code, info.si_status()) };
                if code == libc::CLD_EXITED {
                    ExitStatus::Exited(st)
                } else {
                    ExitStatus::Signaled {
                        signal: st,
                        core_dumped: code == libc::CLD_DUMPED,
                    }
                }
            } else {
                ExitStatus::Exited(0)
            };
            report.send(id, pid, status);
        });
        true
    }

    /// `GuessMainPID=` without cgroups: the daemon a forking service leaves
    /// behind is re-parented to flint (a subreaper); when exactly one child
    /// of flint belongs to no service, that is it.
    fn guess_main_pid(&self, id: u64) -> Option<i32> {
        if let Some(svc) = self.services.get(&id)
            && let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc)
        {
            return guess_in_cgroup(&cg.pids(svc.unit.id.as_str()), svc.control_pid);
        }
        let tracked = self.tracked_pids();
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            found.extend(
                children
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                    .filter(|p| !tracked.contains(p)),
            );
        }
        found.dedup();
        if found.len() == 1 { found.pop() } else { None }
    }

    /// After `ExecStop=`: the kill procedure for what is left, with
    /// `KillSignal=` (`RestartKillSignal=` when the stop is half of a restart).
    fn kill_remaining(&mut self, id: u64) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        let sig = svc.kill_signal();
        self.kill_remaining_with(id, sig);
    }

    /// [`Manager::kill_remaining`] with signal `sig`.
    fn kill_remaining_with(&mut self, id: u64, sig: i32) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        // SendSIGHUP= goes with the plain stop signal only, as systemd's
        // KILL_TERMINATE (not with a restart's, and not twice).
        let sighup = svc.unit.get_bool("Service", "SendSIGHUP").unwrap_or(false)
            && !(svc.restart_kill || svc.restart_requested)
            && sig == svc.kill_signal()
            && sig != libc::SIGHUP;
        let timeout = svc.stop_timeout();
        let control =
            svc.control_pid.is_some() && svc.unit.get_str("Service", "KillMode") != Some("none");
        match self.kill_processes(id, sig, sighup) {
            // A control process the stop signalled (an ExecStartPost=, a
            // reload) is waited for (see `on_control_exit`).
            Killed::Nothing if !control => self.finish_stop(id),
            Killed::Nothing | Killed::Waiting => {
                if let Some(svc) = self.services.get_mut(&id) {
                    svc.state = State::StopSigterm;
                }
                self.arm_timer(id, timeout);
            }
        }
    }

    /// Sends `sig` to the processes of a service as `KillMode=` says
    /// (without cgroups, "the control group" is the process group the
    /// service started in plus the main process and its own group, for a
    /// daemon that called setsid()), each followed by SIGCONT, and with
    /// `sighup` a SIGHUP after it.
    fn kill_processes(&mut self, id: u64, sig: i32, sighup: bool) -> Killed {
        let Some(svc) = self.services.get(&id) else {
            return Killed::Nothing;
        };
        let mode = svc
            .unit
            .get_str("Service", "KillMode")
            .unwrap_or("control-group");
        let main = svc.main_pid;
        let group = svc.main_pgid;
        let control = svc.control_pid;
        if mode == "control-group"
            && let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc)
        {
            // Every process in the cgroup, once; a main process outside it
            // (MAINPID= of a root sender) on its own.
            let name = svc.unit.id.to_string();
            let also: &[i32] = if sighup {
                &[libc::SIGHUP, libc::SIGCONT]
            } else {
                &[libc::SIGCONT]
            };
            // The common end of an instance: its process exited and took
            // nothing with it; one read of cgroup.events tells.
            if main.is_none() && !cg.populated(&name) {
                return Killed::Nothing;
            }
            let pids = cg.kill(&name, sig, also);
            if let Some(p) = main.filter(|p| !pids.contains(p)) {
                for s in std::iter::once(sig).chain(also.iter().copied()) {
                    signal_pid(p, s);
                }
            }
            return if main.is_some() || !pids.is_empty() {
                self.watch_cgroup_empty(id, STOP_WATCH_SLOWEST);
                Killed::Waiting
            } else {
                Killed::Nothing
            };
        }
        if mode == "none" || (main.is_none() && group.is_none() && control.is_none()) {
            return Killed::Nothing;
        }
        let to_pid = |p: i32| {
            signal_pid(p, sig);
            if sighup {
                signal_pid(p, libc::SIGHUP);
            }
            signal_pid(p, libc::SIGCONT);
        };
        if mode == "control-group" {
            // Every process once: the groups hold the main process (and
            // the control process its own).
            let main_group = main.and_then(pgid_of);
            let mut groups: Vec<i32> = group.into_iter().chain(main_group).collect();
            groups.extend(control);
            groups.dedup();
            for (i, g) in groups.iter().enumerate() {
                if groups[..i].contains(g) {
                    continue;
                }
                // An empty group (the usual end of an instance) needs no
                // more signals.
                if !signal_group(*g, sig) {
                    continue;
                }
                if sighup {
                    signal_group(*g, libc::SIGHUP);
                }
                signal_group(*g, libc::SIGCONT);
            }
            if main_group.is_none()
                && let Some(p) = main
            {
                to_pid(p);
            }
        } else {
            // "process" and "mixed": the main (and control) process only.
            for p in main.into_iter().chain(control) {
                to_pid(p);
            }
        }
        if main.is_some() {
            Killed::Waiting
        } else {
            // Only leftovers: they got the signal; go on.
            Killed::Nothing
        }
    }

    /// The main process of a stopping service is gone: with a cgroup and
    /// `KillMode=control-group`, the stop goes on once the cgroup is empty
    /// as well (systemd waits for it too); otherwise at once.
    fn stop_settled(&mut self, id: u64) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        let waits = svc
            .unit
            .get_str("Service", "KillMode")
            .unwrap_or("control-group")
            == "control-group"
            && cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc)
                .is_some_and(|cg| cg.populated(svc.unit.id.as_str()));
        if waits {
            self.watch_cgroup_empty(id, STOP_WATCH_SLOWEST);
        } else {
            self.finish_stop(id);
        }
    }

    /// Waits (off the loop) until the service's cgroup is empty, then
    /// [`Event::CgroupEmpty`]. The kernel only tells through
    /// `cgroup.events`, which is polled, quickly at first, then at most
    /// `slowest` apart. A watch that looks as often already is kept; a
    /// slower one is replaced (a stop's replaces a running service's).
    fn watch_cgroup_empty(&mut self, id: u64, slowest: Duration) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        // Without cgroups, a service whose processes count as one
        // (ExitType=cgroup), or one waiting for READY=1 from what its
        // exited main process left, is watched by the process group it
        // started in.
        let probe: Box<dyn Fn() -> bool> =
            match cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) {
                Some(cg) => {
                    let events = cg.dir(svc.unit.id.as_str()).join("cgroup.events");
                    Box::new(move || crate::cgroup::populated(&events))
                }
                // Not for a forking service: its group is its parent's,
                // which the daemon left.
                None => match svc.main_pgid.filter(|_| {
                    svc.service_type() != "forking"
                        && (exit_type_cgroup(svc)
                            || (svc.main_exited && matches!(svc.state, State::Start(_))))
                }) {
                    Some(group) => Box::new(move || group_alive(group)),
                    None => return,
                },
            };
        if svc
            .cgroup_watch
            .as_ref()
            .is_some_and(|(then, _)| *then <= slowest)
        {
            return;
        }
        let tx = self.tx.clone();
        let launches = svc.launches;
        let task = tokio::task::spawn_local(async move {
            let mut delay = Duration::from_millis(1);
            while probe() {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(slowest);
            }
            let _ = tx.send(Event::CgroupEmpty {
                service: id,
                launches,
            });
        });
        svc.cgroup_watch = Some((slowest, TimerGuard(task.abort_handle())));
    }

    /// The cgroup of a service is empty: a stopping service's stop goes
    /// on; a running one without a known main process stops.
    pub(super) fn on_cgroup_empty(&mut self, id: u64, launches: u64) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        if svc.launches != launches {
            return;
        }
        svc.cgroup_watch = None;
        if svc.main_pid.is_some() {
            return;
        }
        let notify = matches!(svc.service_type(), "notify" | "notify-reload");
        match svc.state {
            // A control process the stop signalled is waited for: its exit
            // goes on with the stop (see `on_control_exit`).
            State::StopSigterm | State::StopWatchdog | State::StopSigkill
                if svc.control_pid.is_some() => {}
            State::StopSigterm | State::StopWatchdog | State::StopSigkill => self.finish_stop(id),
            // Nothing of it is left to send READY=1 (systemd's
            // `service_notify_cgroup_empty_event()`).
            State::Start(_)
                if notify
                    && svc.control_pid.is_none()
                    && !svc.spawning
                    && (svc.main_exited || exit_type_cgroup(svc)) =>
            {
                if svc.result == "success" {
                    svc.result = "protocol";
                }
                tracing::warn!(
                    "{}: no process of the service is left and none sent READY=1, result '{}'",
                    svc.unit.id,
                    svc.result
                );
                self.step(id, State::StopPost(0));
            }
            State::Start(_)
                if exit_type_cgroup(svc) && svc.control_pid.is_none() && !svc.spawning =>
            {
                self.step(id, State::StopPost(0));
            }
            // What failed (ExitType=cgroup's main process) fails the
            // service, without ExecStop= (systemd's `service_enter_running()`).
            State::Running if !svc.main_exited && main_failed(svc) => {
                tracing::warn!(
                    "{}: no process of the service is left, result '{}'",
                    svc.unit.id,
                    svc.result
                );
                self.step(id, State::StopSigterm);
            }
            // Nothing of it runs any more (systemd's `service_enter_running()`
            // from the cgroup-empty notification): it remains, or stops.
            State::Running if !svc.main_exited && remains_after_exit(svc) => {
                svc.main_exited = true;
                self.arm_timer(id, None);
            }
            State::Running if svc.main_exited => {}
            State::Running => {
                tracing::info!(
                    "{}: no process of the service is left; stopping",
                    svc.unit.id
                );
                self.step(id, State::Stop(0));
            }
            // Its control process was in the cgroup a moment ago: look
            // again once the reload is over.
            State::Reload(_) | State::ReloadNotify => self.watch_for_empty(id),
            _ => {}
        }
    }

    /// The main process is gone: `ExecStopPost=`.
    fn finish_stop(&mut self, id: u64) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        svc.cgroup_watch = None;
        if svc.unit.get_str("Service", "KillMode") == Some("mixed") {
            if let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) {
                cg.kill(svc.unit.id.as_str(), libc::SIGKILL, &[]);
            } else if let Some(g) = svc.main_pgid {
                signal_group(g, libc::SIGKILL);
            }
        }
        // What the stop signalled is not waited for any longer.
        if let Some(svc) = self.services.get_mut(&id) {
            svc.control_pid = None;
        }
        // ExecStopPost= gets TimeoutStopSec= (armed as `step` enters it).
        self.step(id, State::StopPost(0));
    }

    /// A stop phase timed out: `FinalKillSignal=` to everything left (with
    /// `SendSIGKILL=yes`, the default), then one more `TimeoutStopSec=`.
    fn final_kill(&mut self, id: u64, phase: &str) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let name = svc.unit.id.to_string();
        if svc.result == "success" {
            svc.result = "timeout";
        }
        if !svc.unit.get_bool("Service", "SendSIGKILL").unwrap_or(true) {
            tracing::warn!("{name}: State '{phase}' timed out. Skipping SIGKILL.");
            self.finish_stop(id);
            return;
        }
        let sig = svc.final_kill_signal();
        let text = signal_text(sig);
        tracing::warn!("{name}: State '{phase}' timed out. Killing.");
        tracing::warn!("{name}: stop timed out; sending {text}");
        if let Some(p) = svc.main_pid {
            tracing::info!("{name}: Killing process {p} with signal {text}.");
        }
        // The final kill reaches the whole group, whatever KillMode= says
        // (systemd's KILL_KILL), except with KillMode=none.
        // Each process gets the signal once (a second FinalKillSignal= may
        // run a handler twice): the main and control processes on their own
        // only when the cgroup or group kill did not reach them.
        let mode = svc.unit.get_str("Service", "KillMode");
        let reached = match cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) {
            Some(cg) if mode != Some("none") => cg.kill(svc.unit.id.as_str(), sig, &[]),
            _ => Vec::new(),
        };
        let in_cgroup = !reached.is_empty();
        let mut groups = Vec::new();
        if mode != Some("none")
            && cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc).is_none()
        {
            for g in [svc.main_pgid, svc.control_pid].into_iter().flatten() {
                signal_group(g, sig);
                groups.push(g);
            }
        }
        for p in [svc.main_pid, svc.control_pid].into_iter().flatten() {
            if !reached.contains(&p) && !pgid_of(p).is_some_and(|g| groups.contains(&g)) {
                signal_pid(p, sig);
            }
        }
        let timeout = svc.stop_timeout();
        if svc.main_pid.is_none() && svc.control_pid.is_none() && !in_cgroup {
            self.finish_stop(id);
            return;
        }
        svc.state = State::StopSigkill;
        self.arm_timer(id, timeout);
        if in_cgroup {
            self.watch_cgroup_empty(id, STOP_WATCH_SLOWEST);
        }
    }

    /// A start or `ExecStop=` timed out: its control process and what is
    /// left of the service get the signal `key` (`TimeoutStartFailureMode=`
    /// or `TimeoutStopFailureMode=`) names: the stop signal (`terminate`,
    /// the default), `WatchdogSignal=` (`abort`), or the final kill (`kill`;
    /// with `SendSIGKILL=no`, none, and the stop goes on).
    fn timeout_kill(&mut self, id: u64, phase: &str, key: &str) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let name = svc.unit.id.to_string();
        let mode = svc.unit.get_str("Service", key).unwrap_or("terminate");
        let send_kill = svc.unit.get_bool("Service", "SendSIGKILL").unwrap_or(true);
        let (sig, word) = match mode {
            "abort" => (
                svc.signal("WatchdogSignal").unwrap_or(libc::SIGABRT),
                "Aborting",
            ),
            "kill" if send_kill => (svc.final_kill_signal(), "Killing"),
            "kill" => {
                tracing::warn!("{name}: {phase} operation timed out. Skipping SIGKILL.");
                if let Some(c) = svc.control_pid.take() {
                    signal_group(c, libc::SIGCONT);
                }
                self.finish_stop(id);
                return;
            }
            _ => (svc.kill_signal(), "Terminating"),
        };
        tracing::warn!("{name}: {phase} operation timed out. {word}.");
        // The control process gets it with the rest (`kill_processes`).
        self.kill_remaining_with(id, sig);
    }

    /// Where a reload that is over (done, failed or timed out) leads:
    /// systemd's `service_enter_running()`. A failed main process fails
    /// the service without ExecStop=; one that exited cleanly stops it,
    /// unless it remains after its exit; otherwise it runs on, under the
    /// `RuntimeMaxSec=` it had.
    fn reload_over(&mut self, id: u64) -> State {
        let Some(svc) = self.services.get(&id) else {
            return State::Dead;
        };
        if main_failed(svc) {
            return State::StopSigterm;
        }
        if svc.main_exited && !remains_after_exit(svc) {
            return State::Stop(0);
        }
        self.resume_runtime_timer(id);
        State::Running
    }

    /// A reload begins: it gets `TimeoutStartSec=` (systemd's
    /// `service_enter_reload()`), and the running service's timer
    /// (`RuntimeMaxSec=`) is kept to resume after it.
    fn arm_reload_timer(&mut self, id: u64) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        svc.runtime_due = svc.timer.as_ref().and(svc.timer_due);
        let timeout = svc.timeout("TimeoutStartSec", 90_000_000);
        self.arm_timer(id, timeout);
    }

    /// A reload is over: the running service's timer is back, due when it
    /// was (see [`Manager::arm_reload_timer`]).
    fn resume_runtime_timer(&mut self, id: u64) {
        let runtime = self.services.get(&id).and_then(|s| s.runtime_due);
        self.arm_timer(
            id,
            runtime.map(|due| due.saturating_duration_since(Instant::now())),
        );
    }

    /// The step timer of a service fired.
    pub(super) fn on_timer(&mut self, id: u64, generation: u64) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        if svc.generation != generation {
            return;
        }
        let name = svc.unit.id.to_string();
        match svc.state {
            State::Condition(_) | State::StartPre(_) | State::Start(_) | State::StartPost(_) => {
                // Straight to the signal `TimeoutStartFailureMode=` names,
                // without ExecStop= (systemd's `service_dispatch_timer()`).
                let phase = match svc.state {
                    State::Condition(_) => "condition",
                    State::StartPre(_) => "start-pre",
                    State::StartPost(_) => "start-post",
                    _ => "start",
                };
                svc.result = "timeout";
                self.timeout_kill(id, phase, "TimeoutStartFailureMode");
            }
            State::Reload(_) | State::ReloadNotify => {
                tracing::warn!("{name}: Reload operation timed out. Killing reload process.");
                if let Some(c) = svc.control_pid.take() {
                    signal_group(c, libc::SIGKILL);
                }
                svc.reload_result = "timeout";
                let next = self.reload_over(id);
                self.step(id, next);
            }
            State::Running => {
                tracing::warn!("{name}: RuntimeMaxSec= passed. Stopping.");
                svc.result = "timeout";
                self.step(id, State::Stop(0));
            }
            State::Stop(_) => {
                // ExecStop= took too long: it goes with what is left, by
                // the signal `TimeoutStopFailureMode=` names.
                if svc.result == "success" {
                    svc.result = "timeout";
                }
                self.timeout_kill(id, "stop", "TimeoutStopFailureMode");
            }
            State::StopSigterm => self.final_kill(id, "stop-sigterm"),
            State::StopWatchdog => self.final_kill(id, "stop-watchdog"),
            State::StopSigkill => {
                tracing::warn!("{name}: Processes still around after final SIGKILL. Ignoring.");
                self.finish_stop(id);
            }
            State::StopPost(_) => {
                // systemd's final-sigterm, then final-sigkill: the signal
                // `TimeoutStopFailureMode=` names, then FinalKillSignal=
                // (unless SendSIGKILL=no), then the unit fails regardless.
                if svc.result == "success" {
                    svc.result = "timeout";
                }
                let send_kill = svc.unit.get_bool("Service", "SendSIGKILL").unwrap_or(true);
                let mode = svc
                    .unit
                    .get_str("Service", "TimeoutStopFailureMode")
                    .unwrap_or("terminate");
                let sig = match (svc.final_stage, mode) {
                    (0, "abort") => Some(svc.signal("WatchdogSignal").unwrap_or(libc::SIGABRT)),
                    (0, "kill") | (1, _) if send_kill => Some(svc.final_kill_signal()),
                    (0, "terminate") => Some(svc.kill_signal()),
                    _ => None,
                };
                let Some(sig) = sig else {
                    tracing::warn!("{name}: State 'stop-post' timed out. Entering failed mode.");
                    self.after_stop(id);
                    return;
                };
                tracing::warn!(
                    "{name}: State 'stop-post' timed out; sending {}",
                    signal_text(sig)
                );
                svc.final_stage = if sig == svc.final_kill_signal() { 2 } else { 1 };
                let control = svc.control_pid;
                let timeout = svc.stop_timeout();
                if let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) {
                    cg.kill(svc.unit.id.as_str(), sig, &[libc::SIGCONT]);
                }
                if let Some(c) = control {
                    signal_group(c, sig);
                    signal_group(c, libc::SIGCONT);
                }
                self.arm_timer(id, timeout);
            }
            _ => {}
        }
    }

    /// Whether service `id` stays active once its main process is gone
    /// (see [`remains_after_exit`]).
    fn remains_after_exit(&self, id: u64) -> bool {
        self.services.get(&id).is_some_and(remains_after_exit)
    }

    /// How the exit of a process of service `id` reaches the loop (see
    /// [`ExitReport`]).
    pub(super) fn exit_report(&self, id: u64) -> ExitReport {
        let notify = self
            .services
            .get(&id)
            .filter(|s| s.notify_access() != "none")
            .and(self.notify_socket.clone());
        ExitReport {
            tx: self.tx.clone(),
            notify,
        }
    }

    /// A message on the notify socket.
    #[allow(clippy::needless_pass_by_value)] // dropping `msg` closes its fds on purpose
    pub(super) fn on_notify(&mut self, msg: Message) {
        let Some((&id, svc)) = self.services.iter_mut().find(|(_, s)| {
            s.main_pid == Some(msg.pid)
                || s.control_pid == Some(msg.pid)
                || (s.notify_access() == "all"
                    && s.main_pgid.is_some()
                    && pgid_of(msg.pid) == s.main_pgid)
        }) else {
            if self.services.values().any(|s| s.spawning) && self.pending_notify.len() < 64 {
                // Its service may not have recorded the spawn yet.
                self.pending_notify.push((Instant::now(), msg));
                return;
            }
            tracing::debug!(
                "notify: message from pid {} that belongs to no service, ignoring",
                msg.pid
            );
            return;
        };
        let access = svc.notify_access();
        let from_main = svc.main_pid == Some(msg.pid);
        let from_control = svc.control_pid == Some(msg.pid);
        let allowed = match access {
            "main" => from_main,
            "exec" => from_main || from_control,
            "all" => true,
            _ => false,
        };
        if !allowed {
            tracing::warn!(
                "{}: got notification message from PID {}, but reception is disabled (NotifyAccess={access})",
                svc.unit.id,
                msg.pid
            );
            return;
        }
        if let Some(s) = msg.get("STATUS") {
            if svc.status_text.as_deref() != Some(s) {
                if notify_log_due(&mut svc.notify_logged) {
                    tracing::info!("{}: status: {s}", svc.unit.id);
                } else {
                    tracing::debug!("{}: status: {s}", svc.unit.id);
                }
            }
            svc.status_text = Some(s.to_string());
        }
        // Once the main process is gone and the service remains, nothing
        // moves it again (systemd takes MAINPID= from START to RELOAD and
        // RELOADING=1 in RUNNING, not in EXITED).
        let exited = svc.main_exited;
        if let Some(p) = msg
            .get("MAINPID")
            .and_then(|p| p.parse::<i32>().ok())
            .filter(|_| !exited)
        {
            // Only a process of the service itself (or root) may move it.
            let ours = if let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc)
            {
                msg.uid == 0 && session_of(p).is_some()
                    || cg.pids(svc.unit.id.as_str()).contains(&p)
            } else {
                let session = session_of(p);
                session.is_some() && (msg.uid == 0 || session == svc.main_pgid)
            };
            if let Some(why) = (svc.main_pid != Some(p))
                .then(|| unsuitable_main_pid(svc, p))
                .flatten()
            {
                tracing::warn!("{}: {why}", svc.unit.id);
            } else if ours && p > 1 && svc.main_pid != Some(p) {
                tracing::info!("{}: main pid is now {p}", svc.unit.id);
                svc.main_pid = Some(p);
                self.watch_foreign(id, p);
            }
        }
        if let Some(us) = msg
            .get("EXTEND_TIMEOUT_USEC")
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && *u != u64::MAX)
        {
            self.extend_timeouts(id, Duration::from_micros(us));
        }
        if let Some(us) = msg.get("WATCHDOG_USEC").and_then(|u| u.parse::<u64>().ok())
            && let Some(svc) = self.services.get_mut(&id)
        {
            // systemd's `service_override_watchdog_timeout()`: the new
            // timeout counts from now.
            svc.watchdog_override = Some(us);
            if matches!(
                svc.state,
                State::Start(_) | State::StartPost(_) | State::Running | State::Reload(_)
            ) {
                self.arm_watchdog(id);
            }
        }
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        if msg.flag("STOPPING") {
            svc.stop_announced = true;
            if matches!(svc.state, State::Running | State::ReloadNotify) && !svc.main_exited {
                self.stop_by_notify(id);
                return;
            }
        }
        if msg.flag("RELOADING") && svc.state == State::Running && !svc.main_exited {
            // systemd's `service_enter_reload_by_notify()`: the reload gets
            // TimeoutStartSec=, and `RuntimeMaxSec=` resumes after it.
            tracing::info!("{}: reloading", svc.unit.id);
            svc.state = State::ReloadNotify;
            self.arm_reload_timer(id);
        }
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        if msg.flag("READY") && svc.state == State::ReloadNotify {
            tracing::info!("{}: reloaded", svc.unit.id);
            svc.state = State::Running;
            self.resume_runtime_timer(id);
        }
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        if msg.get("WATCHDOG") == Some("trigger") {
            let generation = svc.watchdog_generation;
            self.on_watchdog(id, generation);
            return;
        }
        if msg.flag("WATCHDOG") {
            self.arm_watchdog(id);
        }
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        if msg.flag("FDSTOREREMOVE") {
            if let Some(name) = msg.get("FDNAME") {
                svc.fd_store.retain(|(_, n)| n != name);
            }
        } else if msg.flag("FDSTORE") {
            let max = usize::try_from(
                svc.unit
                    .get_u64("Service", "FileDescriptorStoreMax")
                    .unwrap_or(0),
            )
            .unwrap_or(usize::MAX);
            let name = msg
                .get("FDNAME")
                .filter(|n| super::socket::valid_fd_name(n))
                .unwrap_or("stored")
                .to_string();
            for fd in msg.fds.iter().filter_map(|f| f.try_clone().ok()) {
                if svc.fd_store.len() >= max {
                    if notify_log_due(&mut svc.notify_logged) {
                        tracing::warn!(
                            "{}: fd store is full (FileDescriptorStoreMax={max}), closing the fd",
                            svc.unit.id
                        );
                    }
                    break;
                }
                svc.fd_store.push((fd, name.clone()));
            }
        }
        if msg.flag("READY")
            && matches!(svc.state, State::Start(_))
            && matches!(svc.service_type(), "notify" | "notify-reload")
        {
            tracing::info!("{}: ready", svc.unit.id);
            self.step(id, State::StartPost(0));
        }
        // fds that nothing stores are closed when `msg` is dropped
        // (BARRIER=1 needs exactly that).
    }

    /// Whether service `id` has a way to reload (`ExecReload=`, or
    /// `Type=notify-reload`).
    pub(super) fn reloadable(&self, id: u64) -> bool {
        self.services.get(&id).is_some_and(|svc| {
            svc.service_type() == "notify-reload"
                || !svc.unit.commands("Service", "ExecReload").is_empty()
        })
    }

    /// `flint ctl reload`: `ExecReload=`, or for `Type=notify-reload` the
    /// reload signal and the `RELOADING=1`…`READY=1` handshake.
    pub(super) fn reload(&mut self, id: u64) -> Result<(), String> {
        let Some(svc) = self.services.get_mut(&id) else {
            return Err("no such service".into());
        };
        let name = svc.unit.id.to_string();
        if svc.state != State::Running {
            return Err(format!("{name} is not running; nothing to reload"));
        }
        svc.reload_result = "success";
        if svc.service_type() == "notify-reload" {
            let sig = match svc.unit.get("Service", "ReloadSignal") {
                Some(Value::Signal(s)) => *s,
                _ => libc::SIGHUP,
            };
            if let Some(pid) = svc.main_pid {
                svc.state = State::ReloadNotify;
                signal_pid(pid, sig);
                self.arm_reload_timer(id);
                return Ok(());
            }
            if !svc.main_exited {
                return Err(format!("{name} has no main process"));
            }
            // Remaining after its exit (systemd's `service_enter_reload()`
            // without a main process): `ExecReload=` if there is one, else
            // the service stays as it is.
            if svc.unit.commands("Service", "ExecReload").is_empty() {
                tracing::info!("{name}: reloaded");
                return Ok(());
            }
        }
        if svc.unit.commands("Service", "ExecReload").is_empty() {
            return Err(format!(
                "Job type reload is not applicable for unit {name}."
            ));
        }
        self.arm_reload_timer(id);
        self.step(id, State::Reload(0));
        Ok(())
    }

    /// After `from` began a reload: the running units that name it in
    /// `ReloadPropagatedFrom=`, or that it names in `PropagatesReloadTo=`,
    /// are reloaded too, and so on from each of them (systemd's
    /// try-reload jobs: a unit that is not running, or has nothing to
    /// reload with, is left as it is).
    pub(super) fn propagate_reload(&mut self, from: u64) {
        let mut todo = vec![from];
        let mut seen = std::collections::HashSet::from([from]);
        while let Some(x) = todo.pop() {
            let Some(xs) = self.services.get(&x) else {
                continue;
            };
            let name = xs.unit.id.to_string();
            let to = xs.deps.reload_to.clone();
            let mut targets: Vec<u64> = self
                .services
                .iter()
                .filter(|(id, s)| {
                    !seen.contains(*id)
                        && s.conn.is_none()
                        && (s.deps.reload_from.contains(&name)
                            || to.iter().any(|t| t == s.unit.id.as_str()))
                })
                .map(|(id, _)| *id)
                .collect();
            targets.sort_unstable();
            for id in targets {
                seen.insert(id);
                match self.reload(id) {
                    Ok(()) => todo.push(id),
                    Err(e) => tracing::debug!("reload propagated from {name}: {e}"),
                }
            }
        }
    }

    /// (Re)starts the watchdog of a service with `WatchdogSec=`.
    fn arm_watchdog(&mut self, id: u64) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        svc.watchdog_generation += 1;
        svc.watchdog_due = None;
        let Some(us) = svc
            .watchdog_override
            .or_else(|| svc.unit.get_usec("Service", "WatchdogSec"))
            .filter(|u| *u > 0 && *u != u64::MAX)
        else {
            return;
        };
        self.arm_watchdog_in(id, Duration::from_micros(us));
    }

    /// Arms the watchdog of a service to elapse after `after`.
    fn arm_watchdog_in(&mut self, id: u64, after: Duration) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        svc.watchdog_generation += 1;
        svc.watchdog_due = Instant::now().checked_add(after);
        let generation = svc.watchdog_generation;
        let tx = self.tx.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(Event::Watchdog {
                service: id,
                generation,
            });
        });
    }

    /// `STOPPING=1` of a running service: it is deactivating, and its
    /// main process has `TimeoutStopSec=` to go before the final kill;
    /// nothing is signalled (systemd's `service_enter_stop_by_notify()`).
    /// `Restart=` applies after it, as this is no stop request.
    fn stop_by_notify(&mut self, id: u64) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        tracing::info!("{}: stopping (STOPPING=1)", svc.unit.id);
        svc.state = State::StopSigterm;
        let timeout = svc.stop_timeout();
        self.arm_timer(id, timeout);
    }

    /// `EXTEND_TIMEOUT_USEC=`: the step timer and the watchdog, where
    /// armed, elapse no sooner than `after` from now; one due later stays
    /// (systemd's `service_extend_timeout()` only ever lengthens).
    fn extend_timeouts(&mut self, id: u64, after: Duration) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        let Some(extended) = Instant::now().checked_add(after) else {
            return;
        };
        let timer = svc.timer.is_some() && svc.timer_due.is_some_and(|due| due < extended);
        // The watchdog of this run only, while it applies.
        let watchdog = matches!(
            svc.state,
            State::Start(_) | State::StartPost(_) | State::Running | State::Reload(_)
        ) && svc.watchdog_due.is_some_and(|due| due < extended);
        if timer {
            self.arm_timer(id, Some(after));
        }
        if watchdog {
            self.arm_watchdog_in(id, after);
        }
    }

    /// The watchdog expired (or `WATCHDOG=trigger`): result `watchdog`,
    /// `WatchdogSignal=` (default SIGABRT) to the processes as `KillMode=`
    /// says, and `TimeoutAbortSec=` (default `TimeoutStopSec=`) for them
    /// to go before `FinalKillSignal=`; then `Restart=` decides.
    pub(super) fn on_watchdog(&mut self, id: u64, generation: u64) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        if svc.watchdog_generation != generation
            || !matches!(
                svc.state,
                State::Start(_) | State::StartPost(_) | State::Running
            )
        {
            return;
        }
        let Some(pid) = svc.main_pid else { return };
        let limit = svc
            .unit
            .get_usec("Service", "WatchdogSec")
            .map(|us| format!(" (limit {})", crate::unit::value::time::format_timespan(us)))
            .unwrap_or_default();
        tracing::warn!(
            "{}: watchdog timeout{limit}! Killing the main process {pid}.",
            svc.unit.id
        );
        svc.watchdog_generation += 1;
        svc.watchdog_due = None;
        svc.result = "watchdog";
        let sig = svc.signal("WatchdogSignal").unwrap_or(libc::SIGABRT);
        let timeout = svc.abort_timeout();
        if let Some(c) = svc.control_pid.take() {
            signal_group(c, sig);
        }
        match self.kill_processes(id, sig, false) {
            Killed::Nothing => self.finish_stop(id),
            Killed::Waiting => {
                if let Some(svc) = self.services.get_mut(&id) {
                    svc.state = State::StopWatchdog;
                }
                self.arm_timer(id, timeout);
            }
        }
    }

    /// After the last `ExecStopPost=`: restart, or go dead and re-arm the sockets.
    pub(super) fn after_stop(&mut self, id: u64) {
        // (Not for each `Accept=yes` instance: a syslog daemon is none.)
        if self.services.get(&id).is_some_and(|s| s.conn.is_none()) {
            self.dev_log_again();
        }
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        svc.downs += 1;
        // The PID file is out of date now, and may confuse what reads it
        // (the daemon's next start, an init script): systemd removes it
        // (`service_enter_dead()`).
        // (Not where a condition skipped the start: it never ran, and
        // `ConditionPathExists=!` may name that very file.)
        if !matches!(svc.state, State::Dead | State::Failed)
            && let Some(Value::Path(pid_file)) = svc.unit.get("Service", "PIDFile")
        {
            let _ = std::fs::remove_file(pid_file);
        }
        // Only a unit that was up enters the inactive state (a start a
        // condition skipped never left it), as systemd's timestamps go.
        if !matches!(svc.state, State::Dead | State::Failed) {
            svc.inactive_enter_at = Some(Instant::now());
        }
        svc.restart_kill = false;
        // A spawn of this run still under way starts nothing now.
        if let Some(cancel) = svc.spawn_cancel.take() {
            cancel.store(true, std::sync::atomic::Ordering::Release);
        }
        if std::mem::take(&mut svc.restart_requested) && !self.shutting_down {
            svc.main_pid = None;
            svc.control_pid = None;
            svc.state = State::Dead;
            self.start(id);
            return;
        }
        svc.main_pid = None;
        svc.control_pid = None;
        svc.generation += 1;
        // A start ExecCondition= skipped is no failure.
        let failed = !matches!(svc.result, "success" | "exec-condition");
        svc.state = if failed { State::Failed } else { State::Dead };
        // The terminal goes back as it was (systemd's exec_context_revert_tty).
        exec::revert_tty(&svc.unit, "Service");
        if failed {
            tracing::warn!("{}: Failed with result '{}'.", svc.unit.id, svc.result);
        } else if svc.ran {
            tracing::info!("{}: Deactivated successfully.", svc.unit.id);
        }
        let restart = !svc.stopping
            && !self.shutting_down
            && should_restart(&svc.unit, svc.result, svc.last_status);
        // D-Bus activations waiting for it: a restart may still take the
        // name; otherwise they end, failing if the service did.
        if !restart {
            super::bus_activation::ended(
                &mut self.bus_activations,
                self.activator.as_mut(),
                id,
                failed.then_some(svc.result),
            );
        }
        let preserve = svc
            .unit
            .get_str("Service", "RuntimeDirectoryPreserve")
            .unwrap_or("no");
        let restarting = restart && svc.conn.is_none();
        let mut action = None;
        // A start a condition skipped or an assertion failed never left
        // the inactive state: no OnSuccess=/OnFailure= (systemd's
        // unit_notify() starts them on a change of state only).
        if !restarting && !self.shutting_down {
            if svc.ran {
                trigger_on_result(&self.tx, &svc.unit, failed);
            }
            let status = match svc.main_status {
                Some(ExitStatus::Exited(code)) => u8::try_from(code).ok(),
                _ => None,
            };
            action = emergency_action(
                &svc.unit,
                if failed {
                    "FailureAction"
                } else {
                    "SuccessAction"
                },
                status,
            )
            .filter(|_| svc.ran);
        }
        svc.cgroup_watch = None;
        let mut ahead = false;
        if !restarting && let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc)
        {
            // What `KillMode=process` or `none` left running, named as
            // systemd names it when a unit stops.
            for pid in cg.pids(svc.unit.id.as_str()) {
                tracing::info!(
                    "{}: Unit process {pid} ({}) remains running after unit stopped.",
                    svc.unit.id,
                    comm_of(pid)
                );
            }
            cg.remove(svc.unit.id.as_str());
            ahead = !self.shutting_down && !svc.sockets.is_empty();
        }
        // (Removed below, unless a unit that joined it still has it.)
        let private_tmp = if restarting {
            None
        } else {
            svc.private_tmp.take()
        };
        if !restarting {
            svc.namespaces = None;
            if let Some(c) = svc.credentials.take() {
                c.remove();
            }
        }
        // RemoveIPC= (implied by DynamicUser=): the user's IPC objects go
        // once no other running unit has that user (checked below, when
        // this service is no longer borrowed); also between automatic
        // restarts, as systemd lets go of the user at every stop.
        let remove_ipc = (svc.unit.get_bool("Service", "RemoveIPC") == Some(true)
            || svc.unit.get_bool("Service", "DynamicUser") == Some(true))
        .then(|| exec::unit_owner(&svc.unit, "Service").ok().flatten())
        .flatten()
        .filter(|(uid, _)| *uid != 0);
        if !(preserve == "yes" || (preserve == "restart" && restarting)) {
            for (key, _, path) in
                exec::unit_directories(&svc.unit, "Service", self.search.user_mode)
            {
                if key == "RuntimeDirectory" {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
        }
        // The fd store is kept across restarts; on a real stop only with
        // FileDescriptorStorePreserve=yes.
        if !restarting && svc.unit.get_str("Service", "FileDescriptorStorePreserve") != Some("yes")
        {
            svc.fd_store.clear();
        }
        if restart && svc.conn.is_none() {
            svc.state = State::AutoRestart;
            // NRestarts= counts the restart when it happens (systemd's
            // `service_enter_restart()`, see `on_restart_due`).
            let delay = restart_delay(&svc.unit, svc.restarts + 1);
            tracing::info!("{}: scheduling restart in {delay:?}", svc.unit.id);
            let tx = self.tx.clone();
            tokio::task::spawn_local(async move {
                tokio::time::sleep(delay).await;
                let _ = tx.send(Event::RestartDue { service: id });
            });
        }
        let accepted = svc.conn.is_some();
        if let Some(t) = private_tmp {
            self.let_go_of_tmp(t);
        }
        if let Some(owner) = remove_ipc {
            self.remove_ipc_of(id, owner);
        }
        if let Some(action) = action {
            self.act(&action);
        }
        if accepted {
            // One that failed stays loaded, failed, as systemd keeps it
            // (`list-units --failed`, `is-system-running` says degraded)
            // until `reset-failed`; the last FAILED_INSTANCES_KEPT of them,
            // so that failing connections cannot fill flint's memory.
            // (Not with `CollectMode=inactive-or-failed`, which systemd
            // collects at once.)
            let collect = |m: &Self| {
                m.services.get(&id).is_some_and(|s| {
                    s.unit.get_str("Unit", "CollectMode") == Some("inactive-or-failed")
                })
            };
            if failed && !self.shutting_down && !collect(self) {
                let released = self.services.get_mut(&id).and_then(|s| {
                    let (fd, socket, peer) = s.conn.as_mut()?;
                    drop(fd.take());
                    (!std::mem::replace(&mut s.kept_failed, true)).then(|| (*socket, peer.clone()))
                });
                if let Some((socket, peer)) = released {
                    self.release(socket, peer.as_ref());
                }
                if !self.failed_instances.contains(&id) {
                    self.failed_instances.push_back(id);
                }
                while self.failed_instances.len() > FAILED_INSTANCES_KEPT {
                    if let Some(old) = self.failed_instances.pop_front() {
                        self.forget_failed_instance(old);
                    }
                }
                return;
            }
            self.failed_instances.retain(|i| *i != id);
            if let Some(svc) = self.services.remove(&id) {
                self.remember_ended(&svc);
                if let Some((_, socket, peer)) = svc.conn.filter(|_| !svc.kept_failed) {
                    self.release(socket, peer.as_ref());
                }
            }
            return;
        }
        if !restart {
            self.collect_transient(id);
        }
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        // Accept=no: the sockets listen again (also during a restart delay;
        // while flint shuts down, to refuse what arrives, see `on_readable`).
        for s in svc.sockets.clone() {
            self.sockets[s].rearm();
        }
        // A socket-activated service's next cgroup is made now, off the
        // path of the connection that will start it.
        if ahead {
            self.cgroup_ahead(id);
        }
    }

    /// `RemoveIPC=`: removes the IPC objects of `owner` (uid, gid) now (a
    /// few `/proc` reads and two directory scans; done before the next
    /// start can make new ones, as systemd does it), unless another unit
    /// that runs as that user (or group) is running; systemd cleans when
    /// the last of them stops.
    fn remove_ipc_of(&self, id: u64, owner: (u32, u32)) {
        let shared = self.services.iter().any(|(other, svc)| {
            *other != id
                && !matches!(svc.state, State::Dead | State::Failed)
                // Only units with a user of their own can share it (no
                // user database lookup for the others).
                && (svc.unit.get_str("Service", "User").is_some()
                    || svc.unit.get_str("Service", "Group").is_some()
                    || svc.unit.get_bool("Service", "DynamicUser") == Some(true))
                && exec::unit_owner(&svc.unit, "Service")
                    .ok()
                    .flatten()
                    .is_some_and(|(u, g)| u == owner.0 || g == owner.1)
        });
        if shared {
            return;
        }
        let n = crate::service::ipc::remove_owned(Some(owner.0), Some(owner.1));
        if n > 0 {
            let unit = self.services.get(&id).map(|s| s.unit.id.to_string());
            tracing::debug!(
                "{}: removed {n} IPC object(s) of uid {} (RemoveIPC=)",
                unit.unwrap_or_default(),
                owner.0
            );
        }
    }

    /// The restart delay is over: a restart job, as systemd's, so the
    /// units that require it or are part of it are restarted too.
    pub(super) fn on_restart_due(&mut self, id: u64) {
        if self.shutting_down {
            return;
        }
        if let Some(svc) = self
            .services
            .get_mut(&id)
            .filter(|s| s.state == State::AutoRestart)
        {
            svc.restarts += 1;
            self.enqueue(id, super::jobs::JobKind::Restart);
        }
    }

    /// Once every unit has stopped: the processes still there that flint
    /// started and no unit follows any more, escaped from what followed
    /// them (an `Accept=yes` instance's daemon that forked and called
    /// `setsid()` leaves the process group and session that flint follows
    /// an instance by, unless `--cgroups all` gives it a cgroup). They are
    /// flint's children now (it is their subreaper) and in flint's own
    /// cgroup; systemd's `KillMode=control-group` would have stopped them
    /// with their unit, so flint stops them before it ends (SIGTERM, then
    /// SIGKILL after 5 s; what they leave behind in turn is looked for
    /// again each round). Where a loaded unit asks for `KillMode=process`
    /// or `none` and has no cgroup of its own, nothing tells its processes
    /// from these: they are named and left.
    pub(super) async fn stop_leftovers(&mut self) {
        use std::time::Duration;
        self.name_cgroup_leftovers();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let known: Vec<i32> = self
            .tracked_pids()
            .into_iter()
            .chain(self.children.keys().copied())
            .collect();
        // Flint's children in its own cgroup that no unit follows, each
        // with its name and whether it has ended already (a zombie, reaped
        // without a word).
        let leftovers = || -> Vec<(i32, String, bool)> {
            child_pids()
                .into_iter()
                .filter(|pid| !known.contains(pid))
                .filter_map(|pid| {
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                    let ended = stat
                        .rsplit_once(") ")
                        .is_some_and(|(_, rest)| rest.starts_with('Z'));
                    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
                    (ended || cgroup == own).then(|| (pid, comm_of(pid), ended))
                })
                .collect()
        };
        let reap = |pid: i32| {
            matches!(
                nix::sys::wait::waitpid(
                    nix::unistd::Pid::from_raw(pid),
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                ),
                Ok(status) if status != nix::sys::wait::WaitStatus::StillAlive
            )
        };
        let running: Vec<(i32, String, bool)> = leftovers()
            .into_iter()
            .filter(|(_, _, ended)| !ended)
            .collect();
        if running.is_empty() {
            return;
        }
        let kept_by = |unit: &Unit| {
            matches!(
                unit.get_str("Service", "KillMode"),
                Some("process" | "none")
            )
        };
        let mut keep: Option<String> = self
            .services
            .values()
            .find(|s| {
                kept_by(&s.unit)
                    && cgroup_of(self.cgroups.as_ref(), self.options.cgroups, s).is_none()
            })
            .map(|s| s.unit.id.to_string());
        if keep.is_none() && (self.cgroups.is_none() || !self.options.cgroups.covers(true)) {
            let templates: Vec<crate::unit::name::UnitName> = self
                .sockets
                .iter()
                .filter(|s| s.config.accept)
                .map(|s| s.config.service.clone())
                .collect();
            for t in templates {
                if kept_by(&self.units.load(&self.search, &t)) {
                    keep = Some(t.to_string());
                    break;
                }
            }
        }
        if let Some(unit) = keep {
            for (pid, comm, _) in &running {
                tracing::warn!(
                    "{comm} (pid {pid}) is still running, started by a unit that no longer follows it; \
                     left running, since {unit} asks for KillMode=process or none"
                );
            }
            return;
        }
        // Rounds until none is left: SIGTERM to each as it turns up, then
        // SIGKILL once 5 s have passed, then at most another second.
        let term_until = Instant::now() + Duration::from_secs(5);
        let give_up = term_until + Duration::from_secs(1);
        let mut told: Vec<i32> = Vec::new();
        loop {
            let now = Instant::now();
            let left: Vec<(i32, String, bool)> = leftovers();
            let mut running = false;
            for (pid, comm, ended) in &left {
                if *ended {
                    reap(*pid);
                    continue;
                }
                running = true;
                let signal = if now >= term_until {
                    libc::SIGKILL
                } else if told.contains(pid) {
                    continue;
                } else {
                    tracing::warn!(
                        "{comm} (pid {pid}) outlived the unit that started it (it left the process \
                         group and session flint follows an Accept=yes instance by; `--cgroups all` \
                         follows each in a cgroup); stopping it"
                    );
                    told.push(*pid);
                    libc::SIGTERM
                };
                // SAFETY: kill takes integers; the pid is an unreaped child
                // of flint's (only this loop reaps now), so it names no
                // other process.
                unsafe { libc::kill(*pid, signal) };
            }
            if !running || now >= give_up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM/SIGINT: a stop job for every service, so that they stop
    /// in the reverse order of their `After=`/`Before=` (`ExecStop=`, then
    /// the kill procedure); flint exits when all are down. Meanwhile the
    /// sockets whose service is not running refuse what arrives (see
    /// `on_readable`), as systemd's do once their stop is pending.
    pub(super) fn shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        tracing::info!("flint: stopping");
        self.shutting_down = true;
        self.kill_hooks();
        let mut ids: Vec<u64> = self.services.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.install_job(id, super::jobs::JobKind::Stop, false);
        }
        // Active targets stop too: what is ordered after one stops before
        // what it is ordered after.
        let mut targets: Vec<u64> = self.targets.keys().copied().collect();
        targets.sort_unstable();
        for id in targets {
            self.install_job(id, super::jobs::JobKind::Stop, false);
        }
    }

    /// A transient service (its file in a `transient` directory, written
    /// by `systemd-run`) that ended is collected as systemd collects it:
    /// when inactive, or also when failed with
    /// `CollectMode=inactive-or-failed`, unless a timer triggers it. Its
    /// file goes now; its record after a grace period.
    pub(super) fn collect_transient(&mut self, id: u64) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        let Some(fragment) = svc.unit.fragment.clone() else {
            return;
        };
        if fragment.parent().and_then(std::path::Path::file_name)
            != Some(std::ffi::OsStr::new("transient"))
        {
            return;
        }
        let collect = match svc.state {
            State::Dead => true,
            State::Failed => svc.unit.get_str("Unit", "CollectMode") == Some("inactive-or-failed"),
            _ => false,
        };
        let name = svc.unit.id.as_str();
        // A timer that will start it again keeps it.
        let timer_needs = self
            .timers
            .map
            .values()
            .any(|t| t.target == name && t.state.words().0 == "active");
        if !collect || svc.spawning || self.jobs.contains_key(&id) || timer_needs {
            return;
        }
        let _ = std::fs::remove_file(&fragment);
        self.collected.retain(|(c, _)| *c != id);
        self.collected.push((id, Instant::now()));
    }

    /// Lets go of the standard I/O of `systemd-run --pipe` of every
    /// service that has ended, however it ended (its main process, a
    /// condition, a failed spawn) and has no job or spawn under way, so
    /// that the pipeline it is in sees its end; also of names no service
    /// has any more. Looked at after every event while any is held.
    pub(super) fn release_ended_stdio(&mut self) {
        let ended: Vec<String> = self
            .transient_stdio
            .iter()
            .filter(|(name, (_, since))| match self.find_service(name) {
                Some(id) => self.services.get(&id).is_none_or(|svc| {
                    matches!(svc.state, State::Dead | State::Failed)
                        && !svc.spawning
                        && !self.jobs.contains_key(&id)
                }),
                // Not loaded: its start is still to come, unless it did not
                // come soon (systemd-run ended, or the unit did not load).
                None => since.elapsed() >= super::control::STDIO_UNCLAIMED,
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in ended {
            self.transient_stdio.remove(&name);
        }
    }

    /// Drops the records of collected transient services that ended
    /// `grace` ago or more and have not started again.
    pub(super) fn sweep_collected(&mut self, grace: std::time::Duration) {
        let due: Vec<u64> = self
            .collected
            .iter()
            .filter(|(_, at)| at.elapsed() >= grace)
            .map(|(id, _)| *id)
            .collect();
        if due.is_empty() {
            return;
        }
        self.collected.retain(|(id, _)| !due.contains(id));
        for id in due {
            let ended = !self.jobs.contains_key(&id)
                && self
                    .services
                    .get(&id)
                    .is_some_and(|s| matches!(s.state, State::Dead | State::Failed) && !s.spawning);
            if ended {
                self.drop_service(id);
            }
        }
    }

    /// What a service's run may still hold where its stop took a short way
    /// (stopped while it waited to restart): its private `/tmp` (unless a
    /// unit that joined it has it too), credentials, namespaces and empty
    /// cgroup go, before its record is forgotten.
    pub(super) fn release_run(&mut self, id: u64) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let tmp = svc.private_tmp.take();
        svc.namespaces = None;
        if let Some(c) = svc.credentials.take() {
            c.remove();
        }
        if let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) {
            cg.remove(svc.unit.id.as_str());
        }
        if let Some(t) = tmp {
            self.let_go_of_tmp(t);
        }
    }

    /// Removes a run's private `/tmp` unless a unit that joined it
    /// (`JoinsNamespaceOf=`) still has it: the last one removes it.
    fn let_go_of_tmp(&self, t: crate::service::sandbox::PrivateTmp) {
        if !self
            .services
            .values()
            .any(|o| o.private_tmp.as_ref() == Some(&t))
        {
            t.remove_in_background();
        }
    }

    /// Forgets an ended service's record (kept among the ended ones, as
    /// an instance's is), and its names.
    pub(super) fn drop_service(&mut self, id: u64) {
        if let Some(svc) = self.services.remove(&id) {
            self.remember_ended(&svc);
        }
        self.collected.retain(|(c, _)| *c != id);
        self.refresh_names();
    }

    /// Transient timers (`systemd-run --on-*`) that are no longer active
    /// (systemd-run's `RemainAfterElapse=no`: once elapsed) go, file and
    /// record, as systemd collects them.
    pub(super) fn sweep_transient_timers(&mut self) {
        let ended: Vec<String> = self
            .timers
            .map
            .iter()
            .filter(|(_, t)| {
                t.state.words().0 != "active"
                    && t.unit.fragment.as_ref().is_some_and(|f| {
                        f.parent().and_then(std::path::Path::file_name)
                            == Some(std::ffi::OsStr::new("transient"))
                    })
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in ended {
            let Some(t) = self.timers.map.remove(&name) else {
                continue;
            };
            if let Some(f) = &t.unit.fragment {
                let _ = std::fs::remove_file(f);
            }
            // Its service, kept for it, goes too once it has ended.
            if let Some(id) = self.find_service(&t.target) {
                self.collect_transient(id);
            }
        }
    }

    /// `set-property` of a slice: the running services placed in it (or
    /// below it) are placed again, which writes the slice's settings to
    /// its cgroup where they changed (and puts back the defaults of what
    /// it no longer sets). On a cgroup v1 hierarchy, a controller the
    /// slice newly sets reaches its services at their next start.
    pub(super) fn reapply_slice(&mut self, slice: &str) {
        self.units = super::unit_cache::UnitCache::default();
        let mut running = Vec::new();
        for (id, svc) in &mut self.services {
            let in_slice = svc.placed_in.as_deref().is_some_and(|placed| {
                crate::cgroup::slice_chain(placed)
                    .is_some_and(|chain| chain.iter().any(|s| s == slice))
            });
            if !in_slice {
                continue;
            }
            // Placed again at its next start, also when it is not running.
            svc.placed_in = None;
            if !matches!(svc.state, State::Dead | State::Failed) {
                running.push(*id);
            }
        }
        for id in running {
            self.place_in_slice(id);
        }
    }

    /// `set-property`: the service reads its unit again (its new
    /// control drop-ins), and while it runs its cgroup takes the resource
    /// settings at once; on a v1 hierarchy it joins now, with all its
    /// processes, a controller it did not need before.
    pub(super) fn reapply_resources(
        &mut self,
        id: u64,
        files: &[std::path::PathBuf],
    ) -> Result<(), String> {
        use crate::cgroup::Controller;
        self.units = super::unit_cache::UnitCache::default();
        let Some(name) = self.services.get(&id).map(|s| s.unit.name.clone()) else {
            return Ok(());
        };
        let unit = self.units.load(&self.search, &name);
        let Some(svc) = self.services.get_mut(&id) else {
            return Ok(());
        };
        if !unit.is_loaded() {
            return Err(format!(
                "{name} is {} after the change; it keeps its old definition",
                unit.load_state.as_str()
            ));
        }
        // A drop-in this flint does not read (its search path lacks the
        // control directory) changes nothing here: said, not hidden.
        if let Some(missing) = files.iter().find(|f| !unit.dropins.contains(f)) {
            return Err(format!(
                "flint does not read {} (its directory is not in flint's search path)",
                missing.display()
            ));
        }
        let was: Vec<Controller> = Controller::ALL
            .into_iter()
            .filter(|c| crate::service::resources::configured(&svc.unit, "Service", *c))
            .collect();
        svc.unit = unit.into();
        svc.deps = super::jobs::Deps::of(&svc.unit);
        let svc = &self.services[&id];
        let running = !matches!(svc.state, State::Dead | State::Failed);
        let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) else {
            return Ok(());
        };
        if !running {
            return Ok(());
        }
        let cg_name = svc.unit.id.to_string();
        let mut legacy = Vec::new();
        apply_unit_resources(&svc.unit, "Service", cg, &cg_name, Some(&mut legacy));
        // A setting reset (`KEY=`): its controller's files go back to
        // their defaults.
        for c in was {
            if !crate::service::resources::configured(&svc.unit, "Service", c)
                && let Some(h) = cg.hierarchy(c)
            {
                let _ = cg.apply(&cg_name, c, &crate::service::resources::defaults(c, h));
            }
        }
        let mut pids = cg.pids(&cg_name);
        pids.extend(svc.main_pid);
        pids.extend(svc.control_pid);
        pids.sort_unstable();
        pids.dedup();
        for procs in legacy {
            let path = std::path::PathBuf::from(
                <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(
                    procs.into_bytes(),
                ),
            );
            for pid in &pids {
                // A process that ended meanwhile is no matter.
                let _ = std::fs::write(&path, pid.to_string());
            }
        }
        tracing::info!("{cg_name}: resource settings applied (set-property)");
        Ok(())
    }

    pub(super) fn all_dead(&self) -> bool {
        self.services.values().all(|s| {
            !s.spawning && matches!(s.state, State::Dead | State::Failed | State::AutoRestart)
        })
    }

    /// Carries out an emergency action. `exit` stops every unit and ends
    /// flint with the action's exit status, `exit-force` ends it at once;
    /// the system actions (`reboot`, `poweroff`, `halt`, `kexec`,
    /// `soft-reboot`, with `-force`/`-immediate`) do the same where flint
    /// is the container's init (PID 1), whose end is the container's, and
    /// are refused elsewhere: flint does not reboot the machine it merely
    /// runs on (a user flint accepts only `exit`, as systemd's user manager).
    pub(super) fn act(&mut self, action: &Action) {
        let exit = action.word == "exit" || action.word == "exit-force";
        if !exit && (self.search.user_mode || crate::own_pid() != 1) {
            tracing::warn!(
                "{}: {}={} ignored: flint is not this system's init (only exit and exit-force act here)",
                action.unit,
                action.key,
                action.word
            );
            return;
        }
        tracing::info!(
            "{}: {}={}: flint exits{}",
            action.unit,
            action.key,
            action.word,
            action
                .status
                .map(|s| format!(" with status {s}"))
                .unwrap_or_default()
        );
        if !exit {
            crate::request_machine_end(&action.word);
        }
        if let Some(s) = action.status {
            self.exit_status = s;
        }
        // A unit's `exit-force` where flint's end does not take its units
        // along (it is not a container's init, whose end takes its whole
        // PID namespace; no service manager stops a user manager's cgroup
        // after it): its units stop first, or they would outlive it, as
        // the `shutdown.target` conflicts stop them first before
        // systemd's systemd-exit.service acts.
        if action.force && (action.key == "command" || crate::own_pid() == 1) {
            self.exit_now = true;
        } else {
            self.shutdown();
        }
    }
}

fn next_step(state: State) -> State {
    match state {
        State::Condition(n) => State::Condition(n + 1),
        State::StartPre(n) => State::StartPre(n + 1),
        State::StartPost(n) => State::StartPost(n + 1),
        State::Reload(n) => State::Reload(n + 1),
        State::Stop(n) => State::Stop(n + 1),
        State::StopPost(n) => State::StopPost(n + 1),
        s => s,
    }
}

/// Field `n` (1-based, after the command name) of `/proc/PID/stat`.
fn stat_field(pid: i32, n: usize) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split_whitespace().nth(n.checked_sub(3)?)?.parse().ok()
}

fn pgid_of(pid: i32) -> Option<i32> {
    stat_field(pid, 5)
}

/// The process group and session of `pid`.
pub(super) fn pgid_and_session_of(pid: i32) -> Option<(i32, i32)> {
    Some((stat_field(pid, 5)?, stat_field(pid, 6)?))
}

/// Whether the unit sets `Delegate=` to yes or to a list of controllers.
fn delegates(unit: &Unit) -> bool {
    unit.get_str("Service", "Delegate").is_some_and(|v| {
        let v = v.trim();
        !v.is_empty() && !matches!(crate::unit::value::bool::parse_bool(v), Ok(false))
    })
}

/// Writes the unit's resource settings into its cgroups, one controller
/// at a time; the v1 cgroups the command must join go into its plan.
/// A controller flint lacks, or a write the kernel refuses, is warned
/// about where the unit asked for the setting, and the service runs
/// without it (systemd logs such writes and goes on too).
fn apply_resources(svc: &ServiceRt, cg: &crate::cgroup::Cgroups, plan: &mut Vec<CString>) {
    apply_unit_resources(&svc.unit, "Service", cg, svc.unit.id.as_str(), Some(plan));
    // A controller only its slices set, on a v1 hierarchy: the service
    // joins its cgroup there (in the slice's), with no settings of its own.
    for controller in &svc.slice_controllers {
        if !matches!(
            cg.hierarchy(*controller),
            Some(crate::cgroup::Hierarchy::Legacy(_))
        ) || crate::service::resources::configured(&svc.unit, "Service", *controller)
        {
            continue;
        }
        match cg.apply(svc.unit.id.as_str(), *controller, &[]) {
            Ok(applied) => join_legacy(plan, applied.procs),
            Err(e) => tracing::warn!("{}: {e}", svc.unit.id),
        }
    }
}

/// The command joins the v1 cgroup whose `cgroup.procs` this is, if any
/// (`legacy`: the plan's `legacy_cgroups` to be).
fn join_legacy(legacy: &mut Vec<CString>, procs: Option<std::path::PathBuf>) {
    if let Some(procs) = procs
        && let Ok(path) = CString::new(procs.into_os_string().into_encoded_bytes())
        && !legacy.contains(&path)
    {
        legacy.push(path);
    }
}

/// [`apply_resources`] for any unit with resource settings in `section`,
/// into the cgroup `cg_name` names (a unit, or a slice's path below
/// flint's subtree). A slice (no plan: it has no processes) gets only the
/// controllers it sets, as systemd's defaults (`DefaultTasksMax=`) are
/// not a slice's.
fn apply_unit_resources(
    unit_def: &Unit,
    section: &str,
    cg: &crate::cgroup::Cgroups,
    cg_name: &str,
    mut plan: Option<&mut Vec<CString>>,
) {
    use crate::cgroup::Controller;
    use crate::service::resources;
    let unit = unit_def.id.as_str();
    for controller in Controller::ALL {
        let asked = resources::configured(unit_def, section, controller);
        if plan.is_none() && !asked {
            continue;
        }
        let Some(hierarchy) = cg.hierarchy(controller) else {
            if asked {
                tracing::warn!(
                    "{unit}: {} settings are not applied: no {} controller is available to flint's cgroup",
                    controller.name(),
                    controller.name()
                );
            }
            continue;
        };
        let Some(apply) = resources::plan(unit_def, section, controller, hierarchy) else {
            continue;
        };
        if !apply.unsupported.is_empty() {
            // systemd passes over them silently.
            tracing::debug!(
                "{unit}: {}= not applied: the {} controller is on cgroup v1, which has no such setting",
                apply.unsupported.join("=, "),
                controller.name()
            );
        }
        match cg.apply(cg_name, controller, &apply.files) {
            Ok(applied) => {
                if let Some(plan) = plan.as_deref_mut() {
                    join_legacy(plan, applied.procs);
                }
                for (file, e) in applied.failed {
                    // As systemd's LOG_LEVEL_CGROUP_WRITE: a file that is
                    // missing or refused to us is a debug matter.
                    let quiet = matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT | libc::EROFS | libc::EACCES | libc::EPERM)
                    );
                    if asked && !quiet {
                        tracing::warn!("{unit}: failed to set {file}: {e}");
                    } else {
                        tracing::debug!("{unit}: failed to set {file}: {e}");
                    }
                }
            }
            Err(e) if asked => tracing::warn!(
                "{unit}: {} settings are not applied: {e}",
                controller.name()
            ),
            Err(e) => tracing::debug!("{unit}: {e}"),
        }
    }
}

/// Whether `key` is seen for the first time (for warnings given once).
fn warn_once(key: &str) -> bool {
    static SEEN: std::sync::Mutex<Option<std::collections::HashSet<String>>> =
        std::sync::Mutex::new(None);
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    seen.get_or_insert_with(Default::default)
        .insert(key.to_string())
}

/// What `SuccessAction=`, `FailureAction=` or `StartLimitAction=` asks of
/// flint once a unit got there (systemd's emergency actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Action {
    unit: String,
    key: &'static str,
    word: String,
    /// `exit-force` and the `-force`/`-immediate` system actions: no stop.
    force: bool,
    status: Option<u8>,
}

impl Action {
    /// What `systemctl exit`, `poweroff`, `halt`, `reboot` or `kexec` asks
    /// (`force`: without stopping the units first, as `--force`).
    pub(super) fn requested(word: &str, force: bool, status: Option<u8>) -> Action {
        Action {
            unit: "systemctl".to_string(),
            key: "command",
            word: if force {
                format!("{word}-force")
            } else {
                word.to_string()
            },
            force,
            status,
        }
    }
}

/// The action `key` names for `unit` (`None`: `none`, or unset), with the
/// exit status flint is to end with: `SuccessActionExitStatus=`/
/// `FailureActionExitStatus=`, else the main process's (`status`).
fn emergency_action(unit: &Unit, key: &'static str, status: Option<u8>) -> Option<Action> {
    let word = unit
        .get_str("Unit", key)
        .or_else(|| unit.get_str("Service", key))?
        .trim()
        .to_string();
    if word.is_empty() || word == "none" {
        return None;
    }
    // systemd's emergency actions; anything else is ignored, as systemd
    // ignores it when it reads the unit.
    const KNOWN: &[&str] = &[
        "reboot",
        "reboot-force",
        "reboot-immediate",
        "poweroff",
        "poweroff-force",
        "poweroff-immediate",
        "exit",
        "exit-force",
        "soft-reboot",
        "soft-reboot-force",
        "kexec",
        "kexec-force",
        "halt",
        "halt-force",
        "halt-immediate",
    ];
    if !KNOWN.contains(&word.as_str()) {
        tracing::warn!("{}: {key}={word} is not an action; ignoring it", unit.id);
        return None;
    }
    let own = match key {
        "SuccessAction" => unit.get_str("Unit", "SuccessActionExitStatus"),
        "FailureAction" => unit.get_str("Unit", "FailureActionExitStatus"),
        _ => None,
    }
    .and_then(|v| v.trim().parse::<u8>().ok());
    Some(Action {
        unit: unit.id.to_string(),
        key,
        force: word.ends_with("-force") || word.ends_with("-immediate"),
        word,
        status: own.or(status),
    })
}

/// The cgroups that hold `svc`'s processes, when it has a cgroup.
pub(super) fn cgroup_of<'a>(
    cgroups: Option<&'a crate::cgroup::Cgroups>,
    mode: crate::cgroup::Mode,
    svc: &ServiceRt,
) -> Option<&'a crate::cgroup::Cgroups> {
    cgroups.filter(|_| mode.covers(svc.conn.is_some()))
}

/// The live children of flint's threads (`/proc/self/task/*/children`),
/// which include the orphans reparented to flint as their subreaper.
fn child_pids() -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return pids;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// `RemainAfterExit=yes` with nothing failed so far: the service stays
/// active once its main process is gone (systemd's `SERVICE_EXITED`).
fn remains_after_exit(svc: &ServiceRt) -> bool {
    svc.result == "success" && svc.unit.get_bool("Service", "RemainAfterExit") == Some(true)
}

/// How many ended `Accept=yes` instances [`Manager::monitor_env`] still
/// counts.
const ENDED_KEPT: usize = 16;

/// How many failed `Accept=yes` instances stay loaded (the newest).
pub(super) const FAILED_INSTANCES_KEPT: usize = 64;

/// How many notify messages an [`ExitReport`] reads at most before an
/// exit (the kernel queues 512 datagrams per socket by default).
const DRAIN_NOTIFY_MAX: usize = 1024;

/// What `MONITOR_*` reports of a service.
#[derive(Debug, Clone)]
pub(super) struct Ended {
    unit: String,
    on_result: Vec<String>,
    result: &'static str,
    main_status: Option<ExitStatus>,
    invocation_id: String,
}

impl Ended {
    fn of(svc: &ServiceRt) -> Ended {
        Ended {
            unit: svc.unit.id.to_string(),
            on_result: svc.on_result.clone(),
            result: svc.result,
            main_status: svc.main_status,
            invocation_id: svc.invocation_id.clone(),
        }
    }
}

/// `$EXIT_CODE` and `$EXIT_STATUS` as systemd words them: `exited` and the
/// status, or `killed`/`dumped` and the signal's name without `SIG`.
fn exit_code_and_status(st: ExitStatus) -> (&'static str, String) {
    match st {
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
    }
}

/// `OnFailure=` (the run ended failed, without a restart to come) or
/// `OnSuccess=` (it ended well): the units named there are started, as
/// systemd's `unit_start_on_failure()` does, once the event loop gets to it.
pub(super) fn trigger_on_result(
    tx: &tokio::sync::mpsc::UnboundedSender<Event>,
    unit: &Unit,
    failed: bool,
) {
    let key = if failed { "OnFailure" } else { "OnSuccess" };
    let units: Vec<String> = unit
        .entries("Unit", key)
        .iter()
        .filter_map(|(v, _)| match v {
            Value::Unit(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    if !units.is_empty() {
        let _ = tx.send(Event::StartUnits {
            by: unit.id.to_string(),
            key,
            units,
        });
    }
}

/// How far apart a stop looks at the cgroup it waits to empty, at most.
const STOP_WATCH_SLOWEST: Duration = Duration::from_millis(50);

/// Whether the service's result is a failure, as when its main process
/// failed (a failed `ExecReload=` sets the reload's result, not this one).
fn main_failed(svc: &ServiceRt) -> bool {
    svc.result != "success"
}

/// Whether the service has `ExitType=cgroup`: it is up while any of its
/// processes is, not only its main process.
fn exit_type_cgroup(svc: &ServiceRt) -> bool {
    svc.unit.get_str("Service", "ExitType") == Some("cgroup")
}

/// Whether any process of the service is left: its cgroup is populated,
/// or without cgroups, the process group it started in has a member.
fn populated(
    cgroups: Option<&crate::cgroup::Cgroups>,
    mode: crate::cgroup::Mode,
    svc: &ServiceRt,
) -> bool {
    match cgroup_of(cgroups, mode, svc) {
        Some(cg) => cg.populated(svc.unit.id.as_str()),
        None => svc.service_type() != "forking" && svc.main_pgid.is_some_and(group_alive),
    }
}

/// Whether process group `pgid` has a member (a zombie not yet reaped
/// counts, until flint reaps it; one flint may not signal counts too).
fn group_alive(pgid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks the group.
    let sent = unsafe { libc::kill(-pgid, 0) } == 0;
    sent || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether process `pid` exists and has not exited (a zombie has).
fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// Whether a notification worth a line is logged at the default level
/// now: at most once a second per service (`last` is when it last was).
fn notify_log_due(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
        return false;
    }
    *last = Some(now);
    true
}

/// Why `pid` cannot be a service's main process whoever names it, as
/// systemd's `service_is_suitable_main_pid()`: flint itself, or the
/// service's control process.
fn unsuitable_main_pid(svc: &ServiceRt, pid: i32) -> Option<String> {
    if i32::try_from(std::process::id()).ok() == Some(pid) {
        return Some(format!("New main PID {pid} is the manager, refusing."));
    }
    if svc.control_pid == Some(pid) {
        return Some(format!(
            "New main PID {pid} is the control process, refusing."
        ));
    }
    None
}

/// A `PIDFile=`'s pid (not 0, not 1, as systemd refuses those) and
/// whether the file that held it is owned by root, read and looked at
/// through one open file, so that nothing can swap it in between. A last
/// component that is a symbolic link is followed only
/// when root owns the link (`/run/x.pid` pointing into `/run/x/`), as
/// systemd's safe path lookup: a service's own link to another daemon's
/// root-owned file does not make that daemon's pid its main pid.
fn read_pid_file_safely(path: &std::path::Path) -> Option<(i32, bool)> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let open = |follow: bool| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | if follow { 0 } else { libc::O_NOFOLLOW })
            .open(path)
    };
    let mut file = match open(false) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let link = std::fs::symlink_metadata(path).ok()?;
            if link.uid() != 0 {
                return None;
            }
            open(true).ok()?
        }
        Err(_) => return None,
    };
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    let pid = text.trim().parse::<i32>().ok().filter(|p| *p > 1)?;
    Some((pid, file.metadata().ok()?.uid() == 0))
}

/// A process's name (`/proc/PID/comm`), empty when it is gone.
fn comm_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_default()
}

/// The command as it runs: with `PermissionsStartOnly=yes`, every command
/// but the main process runs fully privileged, as if prefixed with `+`
/// (no `User=`, no sandboxing), as in systemd.
fn control_command(unit: &Unit, cmd: &ExecCommand, main: bool) -> ExecCommand {
    let mut cmd = cmd.clone();
    if !main && unit.get_bool("Service", "PermissionsStartOnly") == Some(true) {
        cmd.full_privileges = true;
        cmd.no_setuid = false;
        cmd.ambient_hack = false;
    }
    cmd
}

/// Whether a run of the service may be followed by another (`Restart=`
/// other than `no`, or exit statuses that force one): a restarted
/// `Accept=yes` instance gets the same connection, as in systemd, which
/// keeps it until the instance is dead.
fn may_restart(unit: &Unit) -> bool {
    unit.get_str("Service", "Restart").unwrap_or("no") != "no"
        || !unit.entries("Service", "RestartForceExitStatus").is_empty()
}

/// Whether a command after `ExecStart=` of an `Accept=yes` instance gets
/// the connection: only as its standard input or output (the `LISTEN_FDS`
/// fd goes to the main process alone), and only if there is such a command.
/// Otherwise flint closes its copy as soon as the main process is handed
/// to its spawn (unless the instance may restart), as
/// inetd and tcpserver do, instead of holding it until the instance is
/// dead as systemd does: the peer sees EOF when the handler is done with
/// the connection, not when flint has reaped it.
fn needs_connection_after_start(unit: &Unit) -> bool {
    crate::service::exec::stdio_is_socket(unit, "Service")
        && ["ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost"]
            .iter()
            .any(|k| !unit.commands("Service", k).is_empty())
}

/// systemd's `cgroup_guess_main_pid()`: the one process of the cgroup
/// whose parent is not in it (the daemon a forking service left behind,
/// re-parented to flint), besides the control process.
fn guess_in_cgroup(pids: &[i32], control: Option<i32>) -> Option<i32> {
    let mut found = pids.iter().copied().filter(|p| {
        Some(*p) != control && stat_field(*p, 4).is_some_and(|parent| !pids.contains(&parent))
    });
    let first = found.next()?;
    if found.next().is_some() {
        None
    } else {
        Some(first)
    }
}

fn session_of(pid: i32) -> Option<i32> {
    stat_field(pid, 6)
}

pub(super) fn start_limit_interval(unit: &Unit) -> Duration {
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

pub(super) fn start_limit_burst(unit: &Unit) -> u64 {
    unit.get_u64("Unit", "StartLimitBurst")
        .or_else(|| unit.get_u64("Service", "StartLimitBurst"))
        .unwrap_or(5)
}

/// `RestartSec=`, growing towards `RestartMaxDelaySec=` over `RestartSteps=`
/// restarts as systemd does (geometrically).
fn restart_delay(unit: &Unit, restarts: u32) -> Duration {
    let base = unit.get_usec("Service", "RestartSec").unwrap_or(100_000);
    let steps = unit.get_u64("Service", "RestartSteps").unwrap_or(0);
    let max = unit
        .get_usec("Service", "RestartMaxDelaySec")
        .unwrap_or(u64::MAX);
    let us = if steps > 0 && max != u64::MAX && max > base && base > 0 {
        let n = u64::from(restarts.saturating_sub(1)).min(steps);
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let v = (base as f64 * libm::pow(max as f64 / base as f64, n as f64 / steps as f64)).round()
            as u64;
        v.min(max)
    } else {
        base
    };
    Duration::from_micros(us)
}

/// systemd's "clean exit": 0, SIGHUP/SIGINT/SIGTERM/SIGPIPE for the main
/// process, or a `SuccessExitStatus=` entry.
pub(super) fn is_clean(unit: &Unit, status: ExitStatus, main: bool) -> bool {
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

pub(super) fn result_of(status: ExitStatus) -> &'static str {
    match status {
        ExitStatus::Exited(_) => "exit-code",
        ExitStatus::Signaled {
            core_dumped: true, ..
        } => "core-dump",
        ExitStatus::Signaled { .. } => "signal",
    }
}

/// `Restart=` with `RestartPreventExitStatus=`/`RestartForceExitStatus=`.
pub(super) fn should_restart(unit: &Unit, result: &str, status: Option<ExitStatus>) -> bool {
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

/// Starts a thread that runs spawns ([`turns`]) on tokio's blocking pool.
pub(super) fn start_turn(drain: turns::Drain) {
    tokio::task::spawn_blocking(drain);
}

/// Makes a run's credentials directory on a spawn's thread, with the
/// exit status systemd's child has when it cannot (243/CREDENTIALS).
/// `superseded` tells whether the run is over meanwhile (nothing is
/// written then).
fn make_credentials_for(
    unit: &Unit,
    user_mode: bool,
    superseded: &dyn Fn() -> bool,
) -> Result<Option<crate::service::credentials::Credentials>, StartFailure> {
    let failed = |e: &dyn std::fmt::Display| StartFailure {
        msg: format!("failed to set up the credentials: {e}"),
        status: Some(ExitStatus::Exited(243)),
    };
    let owner = exec::unit_owner(unit, "Service").map_err(|e| failed(&e))?;
    crate::service::credentials::Credentials::create(unit, "Service", user_mode, owner, superseded)
        .map_err(|e| failed(&e))
}

/// A command gathered on the event loop, to be prepared (environment
/// files read, users looked up, directories made, `$VAR`s expanded) and
/// spawned on a spawn thread: a file on a hung network file system or a
/// slow user database holds up that start only, as systemd does all of it
/// in its forked child.
pub(super) struct PendingCommand {
    unit: std::sync::Arc<Unit>,
    cmd: ExecCommand,
    inputs: SpawnInputs,
    open_files: Vec<crate::service::open_file::OpenFile>,
    /// The duplicates of the fds `inputs` names ([`own_input_fds`]).
    held: Vec<OwnedFd>,
    /// The service's cgroup directory, made and set up already.
    cgroup: Option<std::path::PathBuf>,
    /// `Delegate=`: the cgroup goes to the command's user.
    delegate: bool,
    /// The v1 cgroups the command joins.
    legacy_cgroups: Vec<CString>,
}

impl PendingCommand {
    /// The command's plan, and the fds to keep open until it is spawned.
    fn prepare(self) -> Result<(exec::PreparedExec, Vec<OwnedFd>), StartFailure> {
        let PendingCommand {
            unit,
            cmd,
            inputs,
            open_files,
            held,
            cgroup,
            delegate,
            legacy_cgroups,
        } = self;
        let mut prepared =
            exec::prepare(&unit, "Service", &cmd, &inputs).map_err(|e| StartFailure {
                msg: format!("failed to prepare {}: {e}", cmd.path),
                status: e.exit_code().map(ExitStatus::Exited),
            })?;
        prepared.open_files = open_files;
        prepared.plan.legacy_cgroups = legacy_cgroups;
        if let Some(dir) = cgroup {
            // Delegate=: the service's user may manage its cgroup (make
            // cgroups below it and move its processes), as systemd hands
            // it over (commands with full privileges run as root anyway).
            if delegate
                && let Some(uid) = prepared.plan.uid.filter(|u| *u != 0)
                && let Err(e) = crate::cgroup::delegate(&dir, uid, prepared.plan.gid)
            {
                tracing::warn!(
                    "{}: cannot delegate {} to uid {uid}: {e}",
                    unit.id,
                    dir.display()
                );
            }
            prepared.plan.cgroup = CString::new(dir.into_os_string().into_encoded_bytes()).ok();
        }
        Ok((prepared, held))
    }
}

/// Replaces every fd `inputs` names by a duplicate that the returned list
/// owns, so that what is prepared from them stays valid on another thread
/// whatever happens meanwhile to the originals (the same fd named twice
/// gets one duplicate).
fn own_input_fds(inputs: &mut SpawnInputs) -> std::io::Result<Vec<OwnedFd>> {
    use std::os::fd::{FromRawFd, RawFd};
    let mut owned: Vec<(RawFd, OwnedFd)> = Vec::new();
    let mut dup = |fd: RawFd| -> std::io::Result<RawFd> {
        if let Some((_, o)) = owned.iter().find(|(orig, _)| *orig == fd) {
            return Ok(o.as_raw_fd());
        }
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes integers and returns a new fd or -1.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if new < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `new` was just created by fcntl and nothing else owns it.
        owned.push((fd, unsafe { OwnedFd::from_raw_fd(new) }));
        Ok(new)
    };
    for (fd, _) in inputs.fds.iter_mut().chain(inputs.stored_fds.iter_mut()) {
        *fd = dup(*fd)?;
    }
    for fd in inputs.stdio_fds.iter_mut().flatten() {
        *fd = dup(*fd)?;
    }
    Ok(owned.into_iter().map(|(_, o)| o).collect())
}

/// Opens the command's `OpenFile=` entries on the spawn's thread and adds
/// them to its plan; the fds are returned to be kept open until the spawn
/// is done. One that cannot be opened without `graceful` fails the start
/// with 202/FDS, as systemd's child exits.
fn open_files_for(
    prepared: &mut crate::service::exec::PreparedExec,
) -> Result<Vec<OwnedFd>, StartFailure> {
    if prepared.open_files.is_empty() {
        return Ok(Vec::new());
    }
    let opened =
        crate::service::open_file::open_all(&prepared.open_files).map_err(|e| StartFailure {
            msg: format!("Failed to get OpenFile= file descriptors: {e}"),
            status: Some(ExitStatus::Exited(spawn::ChildStep::Fds.exit_code())),
        })?;
    let expected: Vec<String> = prepared
        .open_files
        .iter()
        .map(|o| o.fd_name.clone())
        .collect();
    let raw: Vec<(std::os::fd::RawFd, String)> = opened
        .iter()
        .map(|(fd, name)| (fd.as_raw_fd(), name.clone()))
        .collect();
    crate::service::exec::add_open_files(&mut prepared.plan, &expected, &raw);
    Ok(opened.into_iter().map(|(fd, _)| fd).collect())
}

/// Sends the exit of a process of a service to the loop. For a service
/// that may notify, what waits on the notify socket goes first: a service
/// that sends `READY=1` (or `STOPPING=1`, a new `MAINPID=`) and exits at
/// once has said so before it exited, whichever the loop would see first.
/// systemd reads notifications ahead of SIGCHLD for the same reason ("so
/// that we can still identify to which service an exit message belongs").
/// The reader of the socket sends what it reads at once, so whatever came
/// before the exit is then ahead of it in the one channel.
pub(super) struct ExitReport {
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
    notify: Option<std::rc::Rc<crate::notify::NotifySocket>>,
}

impl ExitReport {
    fn send(&self, service: u64, pid: i32, status: ExitStatus) {
        if let Some(socket) = &self.notify {
            // Bounded: what a flood keeps sending is read in its turn.
            for _ in 0..DRAIN_NOTIFY_MAX {
                match socket.recv_one() {
                    Ok(Some(Some(msg))) => {
                        let _ = self.tx.send(Event::Notify(msg));
                    }
                    Ok(Some(None)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let _ = self.tx.send(Event::Exited {
            service,
            pid,
            status,
        });
    }
}

/// A process flint spawned for a service, waited for through `SIGCHLD`
/// ([`Manager::reap_children`]): its exit costs the loop no pidfd added to
/// and taken from its epoll set and no task of its own (an `Accept=yes`
/// socket makes one such process per connection). Its pidfd stays open
/// until it is reaped, for the `waitid` that collects it.
pub(super) struct Waited {
    service: u64,
    child: spawn::Child,
    report: ExitReport,
    /// Its output pipe, when flint logs its output.
    output: Option<std::rc::Rc<exec::OutputPipe>>,
}

/// What is read of a process's output pipe when its exit is collected:
/// what it wrote before it exited (a pipe holds at most
/// `/proc/sys/fs/pipe-max-size`, 1 MiB by default), not what processes it
/// left behind go on writing.
const OUTPUT_AT_EXIT: usize = 1024 * 1024;

impl Waited {
    pub(super) fn new(
        report: ExitReport,
        service: u64,
        child: spawn::Child,
        output: Option<std::rc::Rc<exec::OutputPipe>>,
    ) -> Waited {
        Waited {
            service,
            child,
            report,
            output,
        }
    }

    /// Reaps the process and reports its exit, after what it wrote before
    /// (its output and, see [`ExitReport`], its notifications): the exit
    /// may be seen before the reader of its output has had its turn.
    /// Whether it had exited (and is collected now).
    pub(super) fn collect(&self) -> bool {
        let pid = self.child.pid;
        let status = match self.child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return false,
            Err(e) => {
                tracing::error!("waiting for pid {pid} failed: {e}");
                ExitStatus::Exited(255)
            }
        };
        if let Some(output) = &self.output {
            output.read_now(OUTPUT_AT_EXIT);
        }
        self.report.send(self.service, pid, status);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::load::{self, LoadState};
    use crate::unit::loader::SearchPath;

    #[test]
    fn a_stream_of_notifications_is_logged_once_a_second() {
        let mut last = None;
        assert!(notify_log_due(&mut last));
        // A service sending STATUS= in a loop: the rest of the second at
        // debug level only.
        assert!((0..1000).all(|_| !notify_log_due(&mut last)));
        last = last.and_then(|t: Instant| t.checked_sub(Duration::from_millis(1001)));
        assert!(notify_log_due(&mut last));
    }

    fn unit(text: &str) -> (tempfile::TempDir, Unit) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.service"), text).unwrap();
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        let u = load::load(&search, &"t.service".parse().unwrap());
        assert_eq!(u.load_state, LoadState::Loaded);
        (dir, u)
    }

    #[test]
    fn restart_policies_follow_systemds_table() {
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
            let (_d, u) = unit(&format!(
                "[Service]\nExecStart=/bin/true\nRestart={policy}\n"
            ));
            assert_eq!(
                should_restart(&u, result, Some(ExitStatus::Exited(1))),
                expect,
                "Restart={policy} result={result}"
            );
        }
        let (_d, u) = unit(
            "[Service]\nExecStart=/bin/true\nRestart=always\nRestartPreventExitStatus=3 SIGUSR1\n",
        );
        assert!(!should_restart(
            &u,
            "exit-code",
            Some(ExitStatus::Exited(3))
        ));
        assert!(!should_restart(
            &u,
            "signal",
            Some(ExitStatus::Signaled {
                signal: libc::SIGUSR1,
                core_dumped: false
            })
        ));
        let (_d, u) = unit("[Service]\nExecStart=/bin/true\nRestartForceExitStatus=7\n");
        assert!(should_restart(&u, "exit-code", Some(ExitStatus::Exited(7))));
    }

    #[test]
    fn clean_exits_and_defaults() {
        let (_d, u) = unit("[Service]\nExecStart=/bin/true\nSuccessExitStatus=42 SIGUSR2\n");
        assert!(is_clean(&u, ExitStatus::Exited(0), true));
        assert!(is_clean(&u, ExitStatus::Exited(42), true));
        assert!(!is_clean(&u, ExitStatus::Exited(1), true));
        assert!(is_clean(
            &u,
            ExitStatus::Signaled {
                signal: libc::SIGTERM,
                core_dumped: false
            },
            true
        ));
        assert!(
            !is_clean(
                &u,
                ExitStatus::Signaled {
                    signal: libc::SIGTERM,
                    core_dumped: false
                },
                false
            ),
            "only the main process may die by SIGTERM cleanly"
        );
        assert!(is_clean(
            &u,
            ExitStatus::Signaled {
                signal: libc::SIGUSR2,
                core_dumped: false
            },
            false
        ));
        let svc = ServiceRt::new(u);
        assert_eq!(svc.service_type(), "simple");
        assert_eq!(svc.notify_access(), "none");
        let (_d, u) = unit("[Service]\nType=notify\nExecStart=/bin/true\n");
        assert_eq!(
            ServiceRt::new(u).notify_access(),
            "main",
            "Type=notify implies NotifyAccess=main"
        );
        let (_d, u) = unit("[Service]\nExecStop=/bin/true\nRemainAfterExit=yes\n");
        assert_eq!(ServiceRt::new(u).service_type(), "oneshot");
    }

    #[test]
    fn restart_delay_grows_to_the_maximum() {
        let (_d, u) = unit(
            "[Service]\nExecStart=/bin/true\nRestartSec=1s\nRestartSteps=3\nRestartMaxDelaySec=8s\n",
        );
        let d: Vec<u64> = (1..=5)
            .map(|n| restart_delay(&u, n).as_millis().try_into().unwrap())
            .collect();
        assert_eq!(d, vec![1000, 2000, 4000, 8000, 8000]);
        let (_d, u) = unit("[Service]\nExecStart=/bin/true\nRestartSec=250ms\n");
        assert_eq!(restart_delay(&u, 9), Duration::from_millis(250));
    }
}
