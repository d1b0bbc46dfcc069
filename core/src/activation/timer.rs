//! `.timer` units, after systemd's `timer.c`: a timer waits for the
//! earliest of its elapses and then starts the unit it triggers (`Unit=`,
//! by default the service of the same name).
//!
//! - Monotonic elapses count from the timer's start (`OnActiveSec=`), the
//!   boot (`OnBootSec=`; in a container from flint's start, as systemd
//!   counts from its own), flint's start (`OnStartupSec=`), or the last
//!   time the triggered unit left (`OnUnitActiveSec=`) or entered
//!   (`OnUnitInactiveSec=`) the inactive state, whichever is later of that
//!   and the timer's own last trigger. The first three fire once: an
//!   elapse already past after a trigger is dropped, as systemd does.
//! - Calendar elapses (`OnCalendar=`, [`crate::unit::calendar`]) follow the
//!   wall clock from the last trigger, or from the timer's start. An
//!   elapse before flint started is moved to flint's start, so a missed
//!   one runs at once; with `Persistent=yes` the last trigger is kept in
//!   systemd's stamp file (`/var/lib/systemd/timers/stamp-NAME`, or below
//!   `$XDG_DATA_HOME` for a user flint), and a run missed while flint was
//!   down runs when the timer starts.
//! - `RandomizedDelaySec=` adds a random delay to each elapse
//!   (`FixedRandomDelay=yes`: the same one every time, systemd's hash of
//!   the machine id, the manager's kind, the user and the timer's name);
//!   `AccuracySec=` is met by firing on time.
//! - While the triggered unit runs, the timer is `running`; when the unit
//!   is down again, the timer computes its next elapse. A timer with no
//!   elapse left is `elapsed` (`RemainAfterElapse=yes`, the default) or
//!   goes dead.
//! - A change of the wall clock (a settimeofday, a resume) is seen through
//!   a `TFD_TIMER_CANCEL_ON_SET` timerfd: calendar elapses are computed
//!   again, and `OnClockChange=yes` timers fire.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::jobs::{Class, JobKind};
use super::lifecycle::TimerGuard;
use super::path_unit::next_generation;
use super::{Event, Manager};
use crate::unit::calendar::CalendarSpec;
use crate::unit::load::{Unit, Value};
use crate::unit::name::{UnitName, UnitType};

/// What a monotonic elapse counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Active,
    Boot,
    Startup,
    UnitActive,
    UnitInactive,
}

impl Base {
    const ALL: [(Base, &'static str); 5] = [
        (Base::Active, "OnActiveSec"),
        (Base::Boot, "OnBootSec"),
        (Base::Startup, "OnStartupSec"),
        (Base::UnitActive, "OnUnitActiveSec"),
        (Base::UnitInactive, "OnUnitInactiveSec"),
    ];
}

#[derive(Debug)]
enum Elapse {
    Monotonic { base: Base, usec: u64 },
    Calendar(CalendarSpec),
}

#[derive(Debug)]
struct TimerValue {
    elapse: Elapse,
    /// A one-time elapse that already passed.
    disabled: bool,
}

/// A timer's state, in systemd's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimerState {
    Dead,
    Waiting,
    Running,
    Elapsed,
    Failed,
}

impl TimerState {
    /// The active state and sub-state, as `systemctl` shows them.
    pub(super) fn words(self) -> (&'static str, &'static str) {
        match self {
            TimerState::Dead => ("inactive", "dead"),
            TimerState::Waiting => ("active", "waiting"),
            TimerState::Running => ("active", "running"),
            TimerState::Elapsed => ("active", "elapsed"),
            TimerState::Failed => ("failed", "failed"),
        }
    }

    fn active(self) -> bool {
        matches!(
            self,
            TimerState::Waiting | TimerState::Running | TimerState::Elapsed
        )
    }
}

/// A moment on both clocks (systemd's `dual_timestamp`); a trigger read
/// back from a stamp file has only the wall-clock half.
#[derive(Debug, Clone, Copy, Default)]
struct Dual {
    mono: Option<Instant>,
    real: Option<SystemTime>,
}

impl Dual {
    fn now() -> Dual {
        Dual {
            mono: Some(Instant::now()),
            real: Some(SystemTime::now()),
        }
    }

    fn is_set(self) -> bool {
        self.mono.is_some() || self.real.is_some()
    }
}

/// One timer unit flint runs.
#[derive(Debug)]
pub(super) struct TimerRt {
    pub unit: Unit,
    /// The unit it triggers.
    pub target: String,
    values: Vec<TimerValue>,
    pub state: TimerState,
    /// `success`, or why it failed.
    pub result: &'static str,
    last_trigger: Dual,
    /// When the timer last started (systemd's `inactive_exit_timestamp`).
    activated: Dual,
    /// When it last stopped or failed.
    pub stopped: Option<SystemTime>,
    /// The next elapse on either clock, as computed last.
    pub next_mono: Option<Instant>,
    pub next_real: Option<SystemTime>,
    wake: Option<TimerGuard>,
    generation: u64,
    /// The triggered service's start and stop counts when last looked at.
    seen: (u64, u64),
    stamp: Option<PathBuf>,
    random_usec: u64,
    fixed_random_delay: bool,
    remain_after_elapse: bool,
    on_clock_change: bool,
    on_timezone_change: bool,
}

impl TimerRt {
    /// Since when it is in its state, as status says it: since it started
    /// while active, since it stopped or failed otherwise.
    pub(super) fn since(&self) -> Option<SystemTime> {
        match self.state {
            TimerState::Dead | TimerState::Failed => self.stopped,
            _ => self.activated.real,
        }
    }

    /// The last trigger's wall-clock time, for listings.
    pub(super) fn last_trigger(&self) -> Option<SystemTime> {
        self.last_trigger.real
    }
}

/// Every timer flint runs, and the clocks they count from.
#[derive(Debug)]
pub(super) struct Timers {
    pub map: BTreeMap<String, TimerRt>,
    /// flint's start, on both clocks (systemd's userspace timestamp).
    started: (Instant, SystemTime),
    /// The watches for changes of the wall clock and of the time zone,
    /// once a timer needs them.
    clock_watch: Option<TimerGuard>,
    zone_watch: Option<TimerGuard>,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            map: BTreeMap::new(),
            started: (Instant::now(), SystemTime::now()),
            clock_watch: None,
            zone_watch: None,
        }
    }
}

/// The time since boot on `CLOCK_MONOTONIC`, which `Instant` counts on.
pub(super) fn uptime() -> Duration {
    crate::logs::uptime()
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: the buffer is valid for writes of its length.
    let _ = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    u64::from_ne_bytes(b)
}

/// systemd's `timer_get_fixed_delay_hash()`: SipHash-2-4 with its key over
/// the machine id, whether this is the system manager, the user id and the
/// timer's name, so `FixedRandomDelay=yes` delays as under systemd.
fn fixed_delay_hash(name: &str, system: bool) -> u64 {
    #[allow(deprecated)] // std's SipHasher is SipHash-2-4, as systemd's siphash24.
    use std::hash::{Hasher, SipHasher};
    const KEY: [u8; 16] = [
        0x51, 0x0a, 0xdb, 0x76, 0x29, 0x51, 0x42, 0xc2, 0x80, 0x35, 0xea, 0xe6, 0x8e, 0x3a, 0x37,
        0xbd,
    ];
    let machine = std::fs::read_to_string("/etc/machine-id")
        .ok()
        .and_then(|s| id128(s.trim()))
        .unwrap_or([0; 16]);
    let k0 = u64::from_le_bytes(KEY[..8].try_into().unwrap_or_default());
    let k1 = u64::from_le_bytes(KEY[8..].try_into().unwrap_or_default());
    #[allow(deprecated)]
    let mut h = SipHasher::new_with_keys(k0, k1);
    h.write(&machine);
    h.write(&[u8::from(system)]);
    h.write(&nix::unistd::getuid().as_raw().to_ne_bytes());
    h.write(name.as_bytes());
    h.finish()
}

/// 32 hex digits as the 16 bytes they spell.
fn id128(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Where `Persistent=yes` keeps a timer's last trigger (systemd's
/// `timer_setup_persistent()`).
fn stamp_path(name: &str, user_mode: bool) -> Option<PathBuf> {
    let dir = if user_mode {
        match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".local/share"),
        }
        .join("systemd/timers")
    } else {
        PathBuf::from("/var/lib/systemd/timers")
    };
    Some(dir.join(format!("stamp-{name}")))
}

/// Creates (with its directory) or dates a stamp file.
fn touch(path: &std::path::Path, when: SystemTime) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.set_modified(when)
}

/// The `Instant` at which the wall clock is expected to read `when`.
fn instant_for(when: SystemTime) -> Instant {
    let now = Instant::now();
    match when.duration_since(SystemTime::now()) {
        Ok(d) => now
            .checked_add(d)
            .unwrap_or(now + Duration::from_hours(24 * 365 * 100)),
        Err(_) => now,
    }
}

/// Sends [`Event::TimerDue`] for `timer` at `due` (unless dropped first).
fn wake_at(
    due: Instant,
    timer: &str,
    generation: u64,
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
) -> TimerGuard {
    let timer = timer.to_string();
    let task = tokio::task::spawn_local(async move {
        tokio::time::sleep_until(due.into()).await;
        let _ = tx.send(Event::TimerDue { timer, generation });
    });
    TimerGuard(task.abort_handle())
}

/// The settings of a timer unit that are about time.
fn values_of(unit: &Unit) -> Vec<TimerValue> {
    let mut out = Vec::new();
    for (base, key) in Base::ALL {
        for (v, _) in unit.entries("Timer", key) {
            if let Value::Usec(usec) = v {
                out.push(TimerValue {
                    elapse: Elapse::Monotonic { base, usec: *usec },
                    disabled: false,
                });
            }
        }
    }
    for (v, _) in unit.entries("Timer", "OnCalendar") {
        if let Value::Str(text) = v
            && let Ok(spec) = CalendarSpec::parse(text)
        {
            out.push(TimerValue {
                elapse: Elapse::Calendar(spec),
                disabled: false,
            });
        }
    }
    out
}

/// The unit a timer triggers: `Unit=`, or the service of its name.
pub(super) fn target_of(unit: &Unit) -> String {
    if let Some(Value::Unit(n)) = unit.get("Timer", "Unit") {
        n.clone()
    } else {
        let id = unit.id.as_str();
        format!("{}.service", id.strip_suffix(".timer").unwrap_or(id))
    }
}

/// Watches the wall clock: a `CLOCK_REALTIME` timerfd set far ahead with
/// `TFD_TIMER_CANCEL_ON_SET` turns readable (reads fail with `ECANCELED`)
/// whenever the clock is set, as systemd's manager watches it.
fn watch_clock(tx: tokio::sync::mpsc::UnboundedSender<Event>) -> std::io::Result<TimerGuard> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: timerfd_create takes flags only; the fd is owned below.
    let fd = unsafe {
        libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let arm = |fd: &OwnedFd| -> std::io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            // Far ahead (year 2200): only a change of the clock wakes it.
            it_value: libc::timespec {
                tv_sec: 7_258_118_400,
                tv_nsec: 0,
            },
        };
        // SAFETY: the fd is a timerfd of ours; the spec is a valid value
        // and the old value is not asked for.
        let r = unsafe {
            libc::timerfd_settime(
                fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
                &raw const spec,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    arm(&fd)?;
    // SAFETY: the timerfd is moved into the AsyncFd, which keeps it open
    // for as long as it is registered.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }?;
    let task = tokio::task::spawn_local(async move {
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return;
            };
            let mut buf = [0u8; 8];
            // SAFETY: reads at most 8 bytes into the buffer, which is ours.
            let n = unsafe { libc::read(fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
            let err = std::io::Error::last_os_error();
            if n < 0 && err.kind() == std::io::ErrorKind::WouldBlock {
                ready.clear_ready();
                continue;
            }
            ready.clear_ready();
            if arm(fd.get_ref()).is_err() {
                return;
            }
            if n < 0
                && err.raw_os_error() == Some(libc::ECANCELED)
                && tx.send(Event::ClockChanged).is_err()
            {
                return;
            }
        }
    });
    Ok(TimerGuard(task.abort_handle()))
}

/// Watches the system's time zone as systemd's manager does: `/etc/localtime`
/// itself (written, its mode changed, moved or deleted, the link not
/// followed) and `/etc` for a new `localtime` put in its place (a rename,
/// as `timedatectl set-timezone` or `ln -sf` make it). The watch on the
/// node is made again after every event, as the node may be a new one.
fn watch_timezone(tx: tokio::sync::mpsc::UnboundedSender<Event>) -> std::io::Result<TimerGuard> {
    use std::os::fd::{AsRawFd, OwnedFd};
    let fd = super::path_unit::inotify_fd()?;
    let watch = |fd: &OwnedFd, path: &std::ffi::CStr, mask: u32| {
        // SAFETY: the path is a NUL-terminated string; a failed watch (no
        // /etc/localtime yet) only returns -1.
        unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) }
    };
    let node = libc::IN_ATTRIB
        | libc::IN_MOVE_SELF
        | libc::IN_CLOSE_WRITE
        | libc::IN_DELETE_SELF
        | libc::IN_DONT_FOLLOW;
    let _ = watch(&fd, c"/etc/localtime", node);
    if watch(
        &fd,
        c"/etc",
        libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_ONLYDIR,
    ) < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the inotify fd is moved into the AsyncFd, which keeps it open
    // for as long as it is registered.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }?;
    let task = tokio::task::spawn_local(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return;
            };
            let mut changed = false;
            super::path_unit::read_inotify(fd.get_ref(), &mut buf, |_, mask, name| {
                if name.is_empty() || name == b"localtime" {
                    changed |= mask & libc::IN_IGNORED == 0;
                }
            });
            ready.clear_ready();
            if changed {
                let _ = watch(fd.get_ref(), c"/etc/localtime", node);
                if tx.send(Event::TimezoneChanged).is_err() {
                    return;
                }
            }
        }
    });
    Ok(TimerGuard(task.abort_handle()))
}

/// A timer or path unit loaded to start, with the service it triggers.
pub(super) enum Loaded {
    Ready {
        unit: Box<Unit>,
        target: String,
        /// The service it triggers; `None` for a timer's target.
        id: Option<u64>,
    },
    /// A condition of its own skipped it (it starts nothing, fails nothing).
    Skipped,
    /// It, or what it triggers, cannot run (logged).
    Failed,
}

impl Manager {
    /// What starting a timer or path unit first does (systemd's
    /// `unit_test_trigger_loaded()` and the unit's conditions): loads it,
    /// logs the settings its load ignored, checks its conditions and loads
    /// the service it triggers (`target_of`).
    pub(super) fn load_trigger_unit(
        &mut self,
        name: &UnitName,
        target_of: fn(&Unit) -> String,
    ) -> Loaded {
        // (Its load logs the settings it ignores.)
        let Some(unit) = self.load_startable(name) else {
            return Loaded::Failed;
        };
        match crate::service::condition::check(&unit) {
            crate::service::condition::ConditionOutcome::Pass => {}
            crate::service::condition::ConditionOutcome::Skip(why) => {
                tracing::info!("{name}: condition check resulted in it being skipped ({why})");
                return Loaded::Skipped;
            }
            crate::service::condition::ConditionOutcome::AssertFailed(why) => {
                tracing::error!("{name}: assertion failed ({why})");
                return Loaded::Failed;
            }
        }
        let target = target_of(&unit);
        // A timer may start a target (`Unit=poweroff.target` at a set
        // time, a target that pulls in several services), as systemd's.
        if name.unit_type() == UnitType::Timer
            && let Some(t) = target
                .parse::<UnitName>()
                .ok()
                .filter(|n| n.unit_type() == UnitType::Target)
        {
            if self.masked_on_disk(t.as_str()) {
                tracing::error!("{name}: Refusing to start, unit {target} to trigger is masked.");
                return Loaded::Failed;
            }
            if !self.timer_can_start(t.as_str()) {
                if super::target::is_boot_target(t.as_str(), self.search.user_mode) {
                    tracing::error!(
                        "{name}: Refusing to start: {target} is one of systemd's own targets, which flint does not start."
                    );
                } else {
                    tracing::error!(
                        "{name}: Refusing to start, unit {target} to trigger not loaded."
                    );
                }
                return Loaded::Failed;
            }
            return Loaded::Ready {
                unit: Box::new(unit),
                target,
                id: None,
            };
        }
        let service = target
            .parse::<UnitName>()
            .ok()
            .filter(|n| n.unit_type() == UnitType::Service);
        let Some(service) = service else {
            let starts = if name.unit_type() == UnitType::Timer {
                "timers start services and targets"
            } else {
                "path units start services"
            };
            tracing::error!(
                "{name}: Refusing to start: flint's {starts}, and {target} is not one."
            );
            return Loaded::Failed;
        };
        let Some(id) = self.add_service(&service) else {
            tracing::error!("{name}: Refusing to start, unit {target} to trigger not loaded.");
            return Loaded::Failed;
        };
        Loaded::Ready {
            unit: Box::new(unit),
            target,
            id: Some(id),
        }
    }

    /// Starts a timer unit (systemd's `timer_start()`); false when it
    /// cannot run (it fails to load, or what it triggers does).
    pub(super) fn start_timer(&mut self, name: &UnitName) -> bool {
        let key = name.to_string();
        if self.timers.map.get(&key).is_some_and(|t| t.state.active()) {
            return true;
        }
        let (unit, target, id) = match self.load_trigger_unit(name, target_of) {
            Loaded::Ready { unit, target, id } => (*unit, target, id),
            Loaded::Skipped => return true,
            Loaded::Failed => {
                if let Some(t) = self.timers.map.get_mut(&key) {
                    t.state = TimerState::Failed;
                    t.result = "resources";
                    t.stopped = Some(SystemTime::now());
                }
                return false;
            }
        };
        let values = values_of(&unit);
        let on_clock_change = unit.get_bool("Timer", "OnClockChange") == Some(true);
        let on_timezone_change = unit.get_bool("Timer", "OnTimezoneChange") == Some(true);
        if values.is_empty() && !on_clock_change && !on_timezone_change {
            tracing::error!(
                "{key}: Timer unit lacks value setting. Refusing. (OnCalendar=, OnActiveSec= or another On…= is needed)"
            );
            return false;
        }
        let persistent = unit.get_bool("Timer", "Persistent") == Some(true);
        let stamp = persistent
            .then(|| stamp_path(&key, self.search.user_mode))
            .flatten();
        let mut last_trigger = Dual::default();
        if let Some(path) = &stamp {
            match std::fs::metadata(path).and_then(|m| m.modified()) {
                Ok(when) if when < SystemTime::now() => last_trigger.real = Some(when),
                Ok(_) => tracing::warn!(
                    "{key}: Not using persistent file timestamp {} as it is in the future.",
                    path.display()
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Never ran: the stamp is made now, as systemd does.
                    if let Err(e) = touch(path, SystemTime::now()) {
                        tracing::warn!("{key}: {}: {e}", path.display());
                    }
                }
                Err(e) => tracing::warn!("{key}: {}: {e}", path.display()),
            }
        }
        let seen = id
            .and_then(|id| self.services.get(&id))
            .map_or((0, 0), |s| (s.launches, s.downs));
        let needs_clock = on_clock_change
            || on_timezone_change
            || values
                .iter()
                .any(|v| matches!(v.elapse, Elapse::Calendar(_)));
        let timer = TimerRt {
            target,
            values,
            state: TimerState::Dead,
            result: "success",
            last_trigger,
            activated: Dual::now(),
            stopped: None,
            next_mono: None,
            next_real: None,
            wake: None,
            generation: next_generation(),
            seen,
            stamp,
            random_usec: unit.get_usec("Timer", "RandomizedDelaySec").unwrap_or(0),
            fixed_random_delay: unit.get_bool("Timer", "FixedRandomDelay") == Some(true),
            remain_after_elapse: unit.get_bool("Timer", "RemainAfterElapse") != Some(false),
            on_clock_change,
            on_timezone_change,
            unit,
        };
        self.timers.map.insert(key.clone(), timer);
        if needs_clock && self.timers.clock_watch.is_none() {
            match watch_clock(self.tx.clone()) {
                Ok(guard) => self.timers.clock_watch = Some(guard),
                Err(e) => tracing::warn!("flint: cannot watch the wall clock for changes: {e}"),
            }
            match watch_timezone(self.tx.clone()) {
                Ok(guard) => self.timers.zone_watch = Some(guard),
                Err(e) => tracing::warn!("flint: cannot watch /etc/localtime for changes: {e}"),
            }
        }
        self.timer_enter_waiting(&key, false);
        true
    }

    /// When target `name` was last reached and last stopped (as a
    /// service's `inactive_exit_at`/`inactive_enter_at`), from its last
    /// change on `CLOCK_MONOTONIC`.
    fn target_times(&self, name: &str) -> (Option<Instant>, Option<Instant>) {
        let Some(t) = self.find_target(name).and_then(|id| self.targets.get(&id)) else {
            return (None, None);
        };
        if t.changed_monotonic == 0 {
            return (None, None);
        }
        let ago = crate::logs::mono_usec().saturating_sub(t.changed_monotonic);
        let at = Instant::now().checked_sub(Duration::from_micros(ago));
        if t.active { (at, None) } else { (None, at) }
    }

    /// Stops a timer: it fires no more until started again.
    pub(super) fn stop_timer(&mut self, name: &str) {
        if let Some(t) = self.timers.map.get_mut(name) {
            t.wake = None;
            t.generation = next_generation();
            t.next_mono = None;
            t.next_real = None;
            if t.state != TimerState::Failed {
                t.state = TimerState::Dead;
            }
            t.stopped = Some(SystemTime::now());
        }
    }

    /// systemd's `timer_enter_waiting()`: computes the next elapse and
    /// waits for it, or leaves the timer elapsed when there is none.
    fn timer_enter_waiting(&mut self, name: &str, time_change: bool) {
        let now_m = Instant::now();
        let now_r = SystemTime::now();
        let (started_m, _) = self.timers.started;
        // flint's start on the wall clock, mapped now (the wall clock may
        // have been off at the start).
        let started_r = now_r
            .checked_sub(now_m.duration_since(started_m))
            .unwrap_or(now_r);
        let boot = if crate::service::condition::container().is_some() {
            started_m
        } else {
            now_m.checked_sub(uptime()).unwrap_or(started_m)
        };
        let Some(target) = self.timers.map.get(name).map(|t| t.target.clone()) else {
            return;
        };
        let (unit_active, unit_inactive) = if let Some(s) = self
            .find_service(&target)
            .and_then(|id| self.services.get(&id))
        {
            (s.inactive_exit_at, s.inactive_enter_at)
        } else {
            // A target: when it was last reached, or last stopped.
            self.target_times(&target)
        };
        let system = !self.search.user_mode;
        let tx = self.tx.clone();
        let Some(t) = self.timers.map.get_mut(name) else {
            return;
        };
        let active = t.state.active();
        let mut next_mono: Option<Instant> = None;
        let mut next_real: Option<SystemTime> = None;
        let mut leave_around = false;
        let last = t.last_trigger;
        for v in &mut t.values {
            if v.disabled {
                continue;
            }
            match &v.elapse {
                Elapse::Calendar(spec) => {
                    let from = last
                        .real
                        .or(t.activated.real.filter(|_| active))
                        .unwrap_or(now_r);
                    let Some(next) = jiff::Timestamp::try_from(from)
                        .ok()
                        .and_then(|ts| spec.next_after(ts))
                    else {
                        continue;
                    };
                    let next = SystemTime::from(next).max(started_r);
                    next_real = Some(next_real.map_or(next, |n| n.min(next)));
                }
                Elapse::Monotonic { base, usec } => {
                    let from = match base {
                        Base::Active if active => t.activated.mono.unwrap_or(now_m),
                        Base::Active => now_m,
                        Base::Boot => boot,
                        Base::Startup => started_m,
                        Base::UnitActive | Base::UnitInactive => {
                            leave_around = true;
                            let unit = if *base == Base::UnitActive {
                                unit_active
                            } else {
                                unit_inactive
                            };
                            match unit.max(last.mono) {
                                Some(b) => b,
                                None => continue,
                            }
                        }
                    };
                    let Some(next) = from.checked_add(Duration::from_micros(*usec)) else {
                        continue;
                    };
                    if last.is_set()
                        && !time_change
                        && next < now_m
                        && matches!(base, Base::Active | Base::Boot | Base::Startup)
                    {
                        // A one-time elapse, passed: done with it.
                        v.disabled = true;
                        continue;
                    }
                    next_mono = Some(next_mono.map_or(next, |n| n.min(next)));
                }
            }
        }
        t.wake = None;
        t.generation = next_generation();
        if next_mono.is_none() && next_real.is_none() && !t.on_clock_change && !t.on_timezone_change
        {
            tracing::debug!("{name}: Timer is elapsed.");
            t.next_mono = None;
            t.next_real = None;
            t.state = if t.remain_after_elapse || leave_around {
                TimerState::Elapsed
            } else {
                TimerState::Dead
            };
            return;
        }
        let random = |t: &TimerRt| -> Duration {
            if t.random_usec == 0 {
                return Duration::ZERO;
            }
            let r = if t.fixed_random_delay {
                fixed_delay_hash(name, system)
            } else {
                random_u64()
            };
            Duration::from_micros(r % t.random_usec)
        };
        let next_mono = next_mono.map(|n| n.checked_add(random(t)).unwrap_or(n));
        let next_real = next_real.map(|n| n.checked_add(random(t)).unwrap_or(n));
        t.next_mono = next_mono;
        t.next_real = next_real;
        t.state = TimerState::Waiting;
        let due = match (next_mono, next_real.map(instant_for)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(due) = due {
            tracing::debug!(
                "{name}: elapses in {}",
                crate::unit::value::time::format_timespan(
                    u64::try_from(due.saturating_duration_since(now_m).as_micros())
                        .unwrap_or(u64::MAX)
                )
            );
            t.wake = Some(wake_at(due, name, t.generation, tx));
        }
    }

    /// The wake-up of a waiting timer.
    pub(super) fn on_timer_due(&mut self, name: &str, generation: u64) {
        let Some(t) = self.timers.map.get(name) else {
            return;
        };
        if t.generation != generation || t.state != TimerState::Waiting {
            return;
        }
        // The wall clock may run a little behind the monotonic estimate
        // made when the wait began: wait again for what is left.
        let mono_due = t.next_mono.is_some_and(|n| n <= Instant::now());
        // Never before the wall clock reads the elapse (a trigger recorded
        // a moment early would find the same elapse next and run twice).
        let real_due = t.next_real.is_some_and(|n| n <= SystemTime::now());
        if !mono_due && !real_due {
            if t.next_mono.is_some() || t.next_real.is_some() {
                let (mono, real) = (t.next_mono, t.next_real);
                let tx = self.tx.clone();
                let due = match (mono, real.map(instant_for)) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => a.or(b).unwrap_or_else(Instant::now),
                };
                let guard = wake_at(due, name, generation, tx);
                if let Some(t) = self.timers.map.get_mut(name) {
                    t.wake = Some(guard);
                }
            }
            return;
        }
        self.timer_enter_running(name);
    }

    /// systemd's `timer_enter_running()`: starts the triggered unit.
    fn timer_enter_running(&mut self, name: &str) {
        if self.shutting_down {
            return;
        }
        let Some(target) = self.timers.map.get(name).map(|t| t.target.clone()) else {
            return;
        };
        if target.ends_with(".target") {
            if !self.timer_can_start(&target) {
                tracing::error!("{name}: Unit to trigger vanished.");
                self.fail_timer(name);
                return;
            }
            tracing::info!("{name}: elapsed; starting {target}");
            // (A target that ends flint or the system does so here.)
            let queued = self.try_enqueue_name(&target, JobKind::Start, true);
            self.timer_triggered(name, &target, Dual::now(), queued.is_ok());
            return;
        }
        let id = self.find_service(&target).or_else(|| {
            target
                .parse::<UnitName>()
                .ok()
                .filter(|n| n.unit_type() == UnitType::Service)
                .and_then(|n| self.add_service(&n))
        });
        let Some(id) = id else {
            tracing::error!("{name}: Unit to trigger vanished.");
            self.fail_timer(name);
            return;
        };
        tracing::info!("{name}: elapsed; starting {target}");
        let trigger = Dual::now();
        // systemd's activation details: the start gets TRIGGER_UNIT and the
        // trigger's time on both clocks (a unit already running keeps the
        // environment it started with).
        if let Some(svc) = self.services.get_mut(&id)
            && matches!(Class::of(svc.state), Class::Inactive | Class::Failed)
        {
            let usec = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            let realtime = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, usec);
            let set = |name: &str, value: String| crate::policy::EnvEdit::Set {
                name: name.to_string(),
                value,
            };
            svc.next_activation_env = vec![
                set("TRIGGER_UNIT", name.to_string()),
                set("TRIGGER_TIMER_REALTIME_USEC", realtime.to_string()),
                set("TRIGGER_TIMER_MONOTONIC_USEC", usec(uptime()).to_string()),
            ];
        }
        let queued = self.try_enqueue(id, JobKind::Start, true).is_ok();
        self.timer_triggered(name, &target, trigger, queued);
    }

    /// Whether a timer can start target `name`: one that ends flint or the
    /// system, or one flint loads (not systemd's own boot targets).
    fn timer_can_start(&mut self, name: &str) -> bool {
        super::control::ending_target(name).is_some()
            || name
                .parse::<UnitName>()
                .ok()
                .is_some_and(|n| self.add_target(&n).is_some())
    }

    /// A timer that cannot start its unit fails (`resources`) and waits
    /// no more.
    fn fail_timer(&mut self, name: &str) {
        if let Some(t) = self.timers.map.get_mut(name) {
            t.wake = None;
            t.state = TimerState::Failed;
            t.result = "resources";
        }
    }

    /// After the triggered unit's start was asked for at `trigger`: the
    /// timer runs until the unit is down again, or, where the start was
    /// refused, fails.
    fn timer_triggered(&mut self, name: &str, target: &str, trigger: Dual, queued: bool) {
        if !queued {
            // A requirement that cannot load: the start was refused
            // ("Failed to queue unit startup job"), and the timer fails.
            tracing::error!("{name}: Failed to queue unit startup job for {target}");
            self.fail_timer(name);
            return;
        }
        let Some(t) = self.timers.map.get_mut(name) else {
            return;
        };
        t.last_trigger = trigger;
        if let (Some(path), Some(when)) = (&t.stamp, t.last_trigger.real)
            && let Err(e) = touch(path, when)
        {
            tracing::warn!("{name}: {}: {e}", path.display());
        }
        t.wake = None;
        t.generation = next_generation();
        t.next_mono = None;
        t.next_real = None;
        t.state = TimerState::Running;
        self.dispatch();
    }

    /// Follows the units the timers trigger (systemd's
    /// `timer_trigger_notify()`): a running timer waits again once its
    /// unit is down, and a waiting one counts again from the unit's last
    /// start or stop.
    pub(super) fn observe_timers(&mut self) {
        if self.timers.map.is_empty() {
            return;
        }
        let names: Vec<String> = self
            .timers
            .map
            .iter()
            .filter(|(_, t)| t.state.active())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Some(target) = self.timers.map.get(&name).map(|t| t.target.clone()) else {
                continue;
            };
            let (counts, down, job) = if let Some(id) = self.find_service(&target)
                && let Some(svc) = self.services.get(&id)
            {
                (
                    (svc.launches, svc.downs),
                    matches!(Class::of(svc.state), Class::Inactive | Class::Failed),
                    self.jobs.contains_key(&id),
                )
            } else if let Some(id) = self.find_target(&target)
                && let Some(t) = self.targets.get(&id)
            {
                // A target runs the timer until it is stopped (as in
                // systemd, one that stays reached never fires it again);
                // each change of it counts as a service's start or stop.
                (
                    (t.changed_monotonic, u64::from(t.active)),
                    !t.active,
                    self.jobs.contains_key(&id),
                )
            } else {
                continue;
            };
            let Some(t) = self.timers.map.get_mut(&name) else {
                continue;
            };
            let changed = counts != t.seen;
            t.seen = counts;
            if changed {
                for v in &mut t.values {
                    if matches!(
                        v.elapse,
                        Elapse::Monotonic {
                            base: Base::UnitActive | Base::UnitInactive,
                            ..
                        }
                    ) {
                        v.disabled = false;
                    }
                }
            }
            let again = match t.state {
                TimerState::Running => down && !job,
                TimerState::Waiting | TimerState::Elapsed => changed,
                TimerState::Dead | TimerState::Failed => false,
            };
            if again {
                self.timer_enter_waiting(&name, false);
            }
        }
    }

    /// The timers waiting for an elapse.
    fn waiting_timers(&self) -> Vec<String> {
        self.timers
            .map
            .iter()
            .filter(|(_, t)| t.state == TimerState::Waiting)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The system's time zone changed (systemd's
    /// `timer_timezone_change()`): local-time calendar elapses are
    /// computed again, and `OnTimezoneChange=yes` timers fire.
    pub(super) fn on_timezone_changed(&mut self) {
        jiff::tz::reset_system_time_zone_cache();
        let names = self.waiting_timers();
        for name in names {
            if self
                .timers
                .map
                .get(&name)
                .is_some_and(|t| t.on_timezone_change)
            {
                tracing::debug!("{name}: Timezone change, triggering activation.");
                self.timer_enter_running(&name);
            } else {
                tracing::debug!("{name}: Timezone change, recalculating next elapse.");
                self.timer_enter_waiting(&name, false);
            }
        }
    }

    /// The wall clock was set (systemd's `timer_time_change()`).
    pub(super) fn on_clock_changed(&mut self) {
        let now = SystemTime::now();
        let names = self.waiting_timers();
        for name in names {
            let Some(t) = self.timers.map.get_mut(&name) else {
                continue;
            };
            // The wall-clock halves of the timer's start and last trigger
            // are read again from their monotonic halves: a clock stepped
            // at boot (no RTC, then NTP) must not make every calendar
            // elapse since 1970 look missed.
            let now_m = Instant::now();
            let remap = |d: Dual| {
                d.mono
                    .and_then(|m| now.checked_sub(now_m.saturating_duration_since(m)))
                    .or(d.real)
            };
            t.activated.real = remap(t.activated);
            t.last_trigger.real = remap(t.last_trigger);
            // Triggered "in the future": the clock went back; the elapses
            // since count again.
            if t.last_trigger.real.is_some_and(|r| r > now) {
                t.last_trigger.real = Some(now);
            }
            if t.on_clock_change {
                tracing::debug!("{name}: Time change, triggering activation.");
                self.timer_enter_running(&name);
            } else {
                tracing::debug!("{name}: Time change, recalculating next elapse.");
                self.timer_enter_waiting(&name, true);
            }
        }
    }
}
