//! Logs without journald: the recent output of each unit, kept in a
//! bounded in-memory ring (for `flint ctl logs` and `flint ctl status`), and
//! flint's own log destinations (stderr as text or JSON, or syslog's
//! `/dev/log`).
//!
//! Every line a service writes to `journal`, `syslog`, `kmsg` or `inherit`
//! output reaches [`record_output`] (a syslog message [`record_syslog`]),
//! which logs it with the unit and pid and keeps it in the unit's ring;
//! flint's own lines about a unit are kept beside them ([`Capture`]), for
//! `journalctl`. The rings are bounded: [`LINES_PER_UNIT`] lines per unit
//! and [`MAX_UNITS`] units (the unit that logged least recently is
//! forgotten first), so a flood of `Accept=yes` instances cannot grow
//! memory without bound.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

mod text;
pub use text::Text;

/// Lines kept per unit.
pub const LINES_PER_UNIT: usize = 1000;
/// Units whose lines are kept.
pub const MAX_UNITS: usize = 512;
/// Longest line kept, in bytes; longer ones are cut (at a char boundary).
pub const MAX_LINE: usize = 4096;

/// How a line reached flint: what journald calls its `_TRANSPORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A service's standard output or error.
    Stdout,
    /// A syslog message on `/dev/log`.
    Syslog,
    /// flint's own line about the unit ("Deactivated successfully."), as
    /// systemd's manager logs its lines about a unit with `UNIT=`.
    Manager,
    /// The kernel's: flint keeps none (`journalctl -k` shows nothing).
    Kernel,
}

/// Names this run of flint's lines in journal cursors (journald's seqnum
/// id): random, made once.
pub fn journal_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/uuid").map_or_else(
            |_| format!("{:x}{:x}", std::process::id(), epoch_usec()),
            |s| s.trim().replace('-', ""),
        )
    })
}

/// One line a unit wrote, or flint wrote about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Increases with every line of every unit; `ctl logs -f` asks for
    /// lines after the last it saw.
    pub seq: u64,
    /// Microseconds since the epoch.
    pub usec: u64,
    /// Microseconds of `CLOCK_MONOTONIC` (journald's monotonic timestamp).
    pub mono: u64,
    /// The unit; empty for a line of no unit (flint's own, or a syslog
    /// message of a process outside the units).
    pub unit: String,
    pub pid: i32,
    /// The severity, 0 (emergency) to 7 (debugging).
    pub priority: u8,
    /// What journald keeps as `SYSLOG_IDENTIFIER`: the syslog tag, the
    /// command's name (or `SyslogIdentifier=`) for its output, `flint` for
    /// flint's lines.
    pub ident: Cow<'static, str>,
    pub transport: Transport,
    pub line: String,
}

#[derive(Default)]
struct Rings {
    next: u64,
    units: rustc_hash::FxHashMap<String, (u64, VecDeque<Entry>)>,
}

static RINGS: Mutex<Option<Rings>> = Mutex::new(None);
static JSON: AtomicBool = AtomicBool::new(false);

/// Whether flint logs JSON objects (set once by `main`).
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

fn cut(line: &str) -> &str {
    if line.len() <= MAX_LINE {
        return line;
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// A syslog priority's level in flint's log: emergencies to errors are
/// errors, warnings warnings, notices and information information,
/// debugging debugging.
pub fn level_of(priority: u16) -> tracing::Level {
    match priority & 7 {
        0..=3 => tracing::Level::ERROR,
        4 => tracing::Level::WARN,
        5 | 6 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    }
}

/// A `tracing` event of the services' log (target `service`) at the level
/// of the syslog `priority` ([`level_of`]).
macro_rules! at_priority {
    ($priority:expr, $($arg:tt)+) => {
        match $crate::logs::level_of($priority) {
            tracing::Level::ERROR => tracing::event!(target: "service", tracing::Level::ERROR, $($arg)+),
            tracing::Level::WARN => tracing::event!(target: "service", tracing::Level::WARN, $($arg)+),
            tracing::Level::INFO => tracing::event!(target: "service", tracing::Level::INFO, $($arg)+),
            _ => tracing::event!(target: "service", tracing::Level::DEBUG, $($arg)+),
        }
    };
}

/// Logs one output line of `unit`'s process `pid`, whose command is known
/// as `ident`, and keeps it in the ring.
pub fn record_output(unit: &str, pid: i32, ident: &str, line: &str, priority: u16) {
    let line = cut(line);
    if JSON.load(Ordering::Relaxed) {
        at_priority!(priority, unit, pid, "{line}");
    } else {
        at_priority!(priority, "{unit}[{pid}]: {line}");
    }
    keep(
        unit,
        pid,
        Cow::Owned(ident.to_string()),
        Transport::Stdout,
        line.to_string(),
        priority,
    );
}

/// Logs a syslog message of `unit`'s process `pid` (`unit` empty for a
/// process of no unit) and keeps it in the ring.
pub fn record_syslog(unit: &str, pid: i32, ident: Option<&str>, text: &str, priority: u16) {
    let text = cut(text);
    let who = if unit.is_empty() { "syslog" } else { unit };
    match (ident, JSON.load(Ordering::Relaxed)) {
        (Some(ident), false) => at_priority!(priority, "{who}[{pid}]: {ident}: {text}"),
        (None, false) => at_priority!(priority, "{who}[{pid}]: {text}"),
        (Some(ident), true) => at_priority!(priority, unit = who, pid, "{ident}: {text}"),
        (None, true) => at_priority!(priority, unit = who, pid, "{text}"),
    }
    keep(
        unit,
        pid,
        Cow::Owned(ident.unwrap_or("").to_string()),
        Transport::Syslog,
        text.to_string(),
        priority,
    );
}

/// Microseconds since the epoch, now.
pub fn epoch_usec() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Microseconds of `CLOCK_MONOTONIC`, now.
pub fn mono_usec() -> u64 {
    u64::try_from(uptime().as_micros()).unwrap_or(u64::MAX)
}

/// The time since boot on `CLOCK_MONOTONIC`, which `Instant` counts on.
pub fn uptime() -> std::time::Duration {
    clock(libc::CLOCK_MONOTONIC)
}

/// Microseconds of `CLOCK_BOOTTIME` (the monotonic clock with the time
/// suspended counted in: what `/proc/PID/stat` gives start times on).
pub fn boottime_usec() -> u64 {
    u64::try_from(clock(libc::CLOCK_BOOTTIME).as_micros()).unwrap_or(u64::MAX)
}

/// The time on clock `id`.
fn clock(id: libc::clockid_t) -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec, which is ours.
    unsafe { libc::clock_gettime(id, &raw mut ts) };
    std::time::Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Keeps one line in `unit`'s ring. flint's own lines go to the unit's
/// ring only when it has one (it wrote something), else to the ring of
/// no unit: an `Accept=yes` instance that writes nothing then takes no
/// ring, and cannot push the rings of units that write out of the store.
fn keep(
    unit: &str,
    pid: i32,
    ident: Cow<'static, str>,
    transport: Transport,
    line: String,
    priority: u16,
) {
    let (usec, mono) = (epoch_usec(), mono_usec());
    let mut guard = RINGS.lock().unwrap_or_else(PoisonError::into_inner);
    let rings = guard.get_or_insert_with(Rings::default);
    rings.next += 1;
    let seq = rings.next;
    let ring_name = if transport == Transport::Manager && !rings.units.contains_key(unit) {
        ""
    } else {
        unit
    };
    // The name is copied only for a new ring (a line per event otherwise).
    if !rings.units.contains_key(ring_name) {
        if rings.units.len() >= MAX_UNITS {
            let oldest = rings
                .units
                .iter()
                .min_by_key(|(_, (last, _))| *last)
                .map(|(name, _)| name.clone());
            if let Some(name) = oldest {
                rings.units.remove(&name);
            }
        }
        rings
            .units
            .insert(ring_name.to_string(), (0, VecDeque::new()));
    }
    let Some((last, ring)) = rings.units.get_mut(ring_name) else {
        return;
    };
    *last = seq;
    if ring.len() >= LINES_PER_UNIT {
        ring.pop_front();
    }
    ring.push_back(Entry {
        seq,
        usec,
        mono,
        unit: unit.to_string(),
        pid,
        priority: u8::try_from(priority & 7).unwrap_or(6),
        ident,
        transport,
        line,
    });
}

/// Whether flint's own lines are kept ([`Capture`]): in `flint run` only.
static CAPTURE: AtomicBool = AtomicBool::new(false);

/// Keeps flint's own lines from now on (`flint run`), for `journalctl`.
pub fn capture_manager_lines() {
    CAPTURE.store(true, Ordering::Relaxed);
}

/// The unit a line of flint's is about: the name before its first `": "`
/// when that is a unit's name ("web.service: Deactivated successfully.").
fn unit_of_line(line: &str) -> Option<&str> {
    let (name, _) = line.split_once(": ")?;
    let (_, suffix) = name.rsplit_once('.')?;
    (crate::unit::name::UnitType::from_suffix(suffix).is_some()
        && !name.contains(char::is_whitespace))
    .then_some(name)
}

/// A `tracing` layer that keeps flint's own lines in the rings (those about
/// a unit in the unit's, the others in the ring of no unit), as journald
/// keeps systemd's lines beside the services' output: `journalctl -u`
/// shows both. The services' own lines (target `service`) are kept where
/// they are logged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capture;

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if !CAPTURE.load(Ordering::Relaxed) || event.metadata().target() == "service" {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if !message.0.is_empty() {
            keep_manager_line(cut(&message.0), *event.metadata().level());
        }
    }
}

/// Keeps one of flint's own lines, logged at `level`, in the ring of the
/// unit it is about ([`unit_of_line`]).
fn keep_manager_line(line: &str, level: tracing::Level) {
    let priority = match level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    };
    let pid = i32::try_from(crate::own_pid()).unwrap_or(0);
    let unit = unit_of_line(line).unwrap_or("");
    keep(
        unit,
        pid,
        Cow::Borrowed("flint"),
        Transport::Manager,
        line.to_owned(),
        priority,
    );
}

/// journald's default rate limit of one service's lines
/// (`RateLimitIntervalSec=30s`, `RateLimitBurst=10000`).
pub const RATE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
pub const RATE_BURST: u32 = 10_000;

/// Events counted in fixed windows: the first `burst` of each window
/// pass (systemd's `ratelimit`, also its `log_ratelimit_*`).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    since: std::time::Instant,
    count: u32,
}

impl Window {
    pub fn new(now: std::time::Instant) -> Window {
        Window {
            since: now,
            count: 0,
        }
    }

    /// Counts one event at `now`: whether it passes, and how many the
    /// window that just ended (if one did) refused.
    pub fn count(
        &mut self,
        now: std::time::Instant,
        interval: std::time::Duration,
        burst: u32,
    ) -> (bool, u32) {
        let mut refused = 0;
        if self.ended(now, interval) {
            refused = self.count.saturating_sub(burst);
            *self = Window::new(now);
        }
        self.count += 1;
        (self.count <= burst, refused)
    }

    /// Whether the window is over with nothing refused in it.
    pub fn idle(&self, now: std::time::Instant, interval: std::time::Duration, burst: u32) -> bool {
        self.count <= burst && self.ended(now, interval)
    }

    fn ended(&self, now: std::time::Instant, interval: std::time::Duration) -> bool {
        now.duration_since(self.since) >= interval
    }
}

/// One sender's lines in the current [`RATE_INTERVAL`].
#[derive(Debug, Clone)]
pub struct RateLimit(Window);

impl RateLimit {
    pub fn new(now: std::time::Instant) -> RateLimit {
        RateLimit(Window::new(now))
    }

    /// Whether one more line is kept at `now`; logs (under `who`) when the
    /// limit starts dropping, and at the start of the next interval how
    /// many were dropped.
    pub fn admit(&mut self, now: std::time::Instant, who: &str) -> bool {
        let (kept, dropped) = self.0.count(now, RATE_INTERVAL, RATE_BURST);
        if dropped > 0 {
            tracing::warn!(
                "{who}: {dropped} lines dropped (more than {RATE_BURST} in {}s)",
                RATE_INTERVAL.as_secs()
            );
        }
        if !kept && self.0.count == RATE_BURST + 1 {
            tracing::warn!(
                "{who}: more than {RATE_BURST} lines in {}s; dropping the rest of the interval",
                RATE_INTERVAL.as_secs()
            );
        }
        kept
    }

    /// Whether the interval is over with nothing dropped (nothing to say
    /// any more: it may be forgotten).
    pub fn idle(&self, now: std::time::Instant) -> bool {
        self.0.idle(now, RATE_INTERVAL, RATE_BURST)
    }
}

/// How many units' rate limits are kept before the idle ones are pruned
/// (an instance per connection would otherwise grow the table forever).
const RATES_KEPT: usize = 1024;

static RATES: Mutex<Option<HashMap<String, RateLimit>>> = Mutex::new(None);

/// Whether one more line of `unit` fits journald's rate limit, which
/// counts a service's lines together: its output streams and its syslog
/// messages. `""` stands for the syslog messages of processes of no unit.
pub fn admit(unit: &str) -> bool {
    let now = std::time::Instant::now();
    let mut guard = RATES.lock().unwrap_or_else(PoisonError::into_inner);
    let rates = guard.get_or_insert_with(HashMap::new);
    if rates.len() >= RATES_KEPT && !rates.contains_key(unit) {
        rates.retain(|_, r| !r.idle(now));
    }
    let who = if unit.is_empty() {
        "syslog of processes of no unit"
    } else {
        unit
    };
    rates
        .entry(unit.to_owned())
        .or_insert_with(|| RateLimit::new(now))
        .admit(now, who)
}

/// A `<N>` prefix on a line of output (`SyslogLevelPrefix=`, on by
/// default), as systemd's stdout stream reads it
/// (`syslog_parse_priority()` without a facility): one to three digits
/// making a severity of 0 to 7. The severity (6, info, without one) and
/// the line without the prefix.
pub fn level_prefix(line: &[u8]) -> (u16, &[u8]) {
    if let Some(after) = line.strip_prefix(b"<")
        && let Some(end) = after.iter().position(|&b| b == b'>')
        && (1..=3).contains(&end)
        && after[..end].iter().all(u8::is_ascii_digit)
    {
        let value = after[..end]
            .iter()
            .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        if value <= 7 {
            return (value, &after[end + 1..]);
        }
    }
    (6, line)
}

/// Whether `name` selects `unit`: the same name, or for a template
/// (`web@.service`) every instance of it.
fn selects(name: &str, unit: &str) -> bool {
    if name == unit {
        return true;
    }
    // A pattern, as `journalctl -u 'web@*'`: every unit it matches,
    // instances that have ended included.
    if crate::control::is_glob(name) {
        return crate::service::condition::wildcard(name.as_bytes(), unit.as_bytes());
    }
    match name.split_once("@.") {
        Some((prefix, suffix)) => {
            unit.starts_with(prefix)
                && unit[prefix.len()..].starts_with('@')
                && unit.ends_with(&format!(".{suffix}"))
        }
        None => false,
    }
}

/// The last `n` lines the units `name` selects wrote (their output and
/// syslog messages, not flint's lines about them) with `seq` above
/// `after`, oldest first: what `flint ctl logs` and `status` show.
pub fn recent(name: &str, n: usize, after: u64) -> Vec<Entry> {
    last_lines(name, n, after, vec![Transport::Stdout, Transport::Syslog])
}

/// Like [`recent`], with flint's own lines about the unit too (a
/// socket's "listening on", "Failed with result"), as systemctl's status
/// of a socket shows the manager's lines about it.
pub fn recent_with_manager(name: &str, n: usize) -> Vec<Entry> {
    let all = vec![Transport::Stdout, Transport::Syslog, Transport::Manager];
    last_lines(name, n, 0, all)
}

fn last_lines(name: &str, n: usize, after: u64, transports: Vec<Transport>) -> Vec<Entry> {
    let query = Query {
        units: vec![name.to_string()],
        transports,
        after,
        lines: Some(n),
        ..Query::default()
    };
    query.run(None).0
}

/// Which lines `journalctl` asks for; every condition given must hold
/// (journalctl's matches of different fields), each list is a choice.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Query {
    /// Lines of these units and flint's lines about them (`-u`): names,
    /// patterns, or templates for all their instances. None: every line.
    pub units: Vec<String>,
    /// Lines of exactly these units, without flint's (`_SYSTEMD_UNIT=`).
    pub systemd_units: Vec<String>,
    pub pids: Vec<i32>,
    /// `SYSLOG_IDENTIFIER=` (`-t`).
    pub idents: Vec<String>,
    pub transports: Vec<Transport>,
    /// Severities kept, as a bit set (bit 0 emergency ... bit 7 debugging).
    pub priorities: Option<u8>,
    /// Microseconds since the epoch: lines at or after `since`, at or
    /// before `until`.
    pub since: Option<u64>,
    pub until: Option<u64>,
    /// A regular expression the line must match (`-g`).
    pub grep: Option<String>,
    pub case_sensitive: bool,
    /// Only lines with a higher sequence number.
    pub after: u64,
    /// At most this many: the newest, or the oldest with `oldest`.
    pub lines: Option<usize>,
    pub oldest: bool,
}

/// A `grep` pattern that is not a regular expression (or too large).
#[derive(Debug, thiserror::Error)]
#[error("Failed to compile pattern: {0}")]
pub struct PatternError(String);

impl Query {
    /// The pattern of `grep`, compiled.
    pub fn pattern(&self) -> Result<Option<regex_lite::Regex>, PatternError> {
        let Some(grep) = &self.grep else {
            return Ok(None);
        };
        regex_lite::RegexBuilder::new(grep)
            .case_insensitive(!self.case_sensitive)
            .size_limit(1 << 20)
            .build()
            .map(Some)
            .map_err(|e| PatternError(e.to_string()))
    }

    /// Whether a ring may hold lines this query selects: the ring of no
    /// unit always (flint's lines about units without a ring of their
    /// own are there).
    fn wants_ring(&self, unit: &str) -> bool {
        if self.units.is_empty() && self.systemd_units.is_empty() || unit.is_empty() {
            return true;
        }
        self.units.iter().any(|u| selects(u, unit)) || self.systemd_units.iter().any(|u| u == unit)
    }

    fn wants(&self, e: &Entry, pattern: Option<&regex_lite::Regex>) -> bool {
        let unit_ok = (self.units.is_empty() && self.systemd_units.is_empty())
            || self.units.iter().any(|u| selects(u, &e.unit))
            || (e.transport != Transport::Manager && self.systemd_units.contains(&e.unit));
        unit_ok
            && e.seq > self.after
            && (self.pids.is_empty() || self.pids.contains(&e.pid))
            && (self.idents.is_empty() || self.idents.iter().any(|i| *i == *e.ident))
            && (self.transports.is_empty() || self.transports.contains(&e.transport))
            && self
                .priorities
                .is_none_or(|set| set & (1 << e.priority) != 0)
            && self.since.is_none_or(|t| e.usec >= t)
            && self.until.is_none_or(|t| e.usec <= t)
            && pattern.is_none_or(|p| p.is_match(&e.line))
    }

    /// The lines kept that this query selects, oldest first, and the
    /// sequence number of the last line kept of any unit (where a reader
    /// that follows goes on from). `pattern` is [`Query::pattern`]'s.
    pub fn run(&self, pattern: Option<&regex_lite::Regex>) -> (Vec<Entry>, u64) {
        let guard = RINGS.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(rings) = guard.as_ref() else {
            return (Vec::new(), 0);
        };
        // References first, each ring from `after` on (a ring is in
        // sequence order); only the lines kept are copied.
        let mut found: Vec<&Entry> = rings
            .units
            .iter()
            .filter(|(unit, _)| self.wants_ring(unit))
            .flat_map(|(_, (_, ring))| {
                let from = ring.partition_point(|e| e.seq <= self.after);
                ring.range(from..).filter(|e| self.wants(e, pattern))
            })
            .collect();
        found.sort_unstable_by_key(|e| e.seq);
        if let Some(n) = self.lines {
            if self.oldest {
                found.truncate(n);
            } else {
                let skip = found.len().saturating_sub(n);
                found.drain(..skip);
            }
        }
        (found.into_iter().cloned().collect(), rings.next)
    }
}

/// Bytes of held lines that are written at once, without waiting for the
/// thread to call [`flush_held`].
pub const HELD_MAX: usize = 16 * 1024;

thread_local! {
    /// The lines this thread holds back ([`hold_stderr`]), if it does.
    static HELD: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// flint's log on stderr, for `tracing_subscriber`'s `with_writer`.
///
/// A line logged on a thread that holds its lines ([`hold_stderr`]: the
/// event loop of `flint run`) is kept until the thread calls [`flush_held`]
/// (the loop does before it waits for events) or [`HELD_MAX`] bytes are
/// kept, so a busy loop writes its lines with one `write` per turn instead
/// of one per line (three lines per `Accept=yes` connection cost a fifth of
/// the loop's time). Lines of other threads are written at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

/// The writer [`Stderr`] makes for one line.
#[derive(Debug)]
pub struct StderrLine;

impl Write for StderrLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        write_stderr(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = StderrLine;

    fn make_writer(&'a self) -> Self::Writer {
        StderrLine
    }
}

/// Writes log lines to stderr, or holds them when the calling thread holds
/// its lines ([`hold_stderr`]). A failed write to stderr loses the lines:
/// there is nowhere better to tell.
fn write_stderr(b: &[u8]) {
    let full = HELD.with_borrow_mut(|held| match held {
        Some(buf) => {
            buf.extend_from_slice(b);
            Some(buf.len() >= HELD_MAX)
        }
        None => None,
    });
    match full {
        Some(true) => flush_held(),
        Some(false) => {}
        None => {
            let _ = std::io::stderr().write_all(b);
        }
    }
}

/// Makes the calling thread hold its log lines until [`flush_held`] or until
/// the returned guard is dropped (also when unwinding), which writes them.
#[must_use = "the lines are held only while the guard lives"]
pub fn hold_stderr() -> HoldGuard {
    HELD.with_borrow_mut(|held| {
        held.get_or_insert_with(|| Vec::with_capacity(HELD_MAX));
    });
    HoldGuard {
        _not_send: std::marker::PhantomData,
    }
}

/// Writes the lines the calling thread holds, with one `write`.
pub fn flush_held() {
    // Nothing better to do with a failed write to stderr than to drop the
    // lines, as an unheld line would be.
    drain_held(|lines| {
        let _ = std::io::stderr().write_all(lines);
    });
}

/// Gives `write` the lines the calling thread holds, if any, and keeps
/// none, the buffer kept for the next lines: a fresh one per turn made
/// every turn's first line a 16 KiB allocation, which has glibc's malloc
/// sort all its small free chunks first. Safe to call from a panic hook: a
/// thread that panicked while adding a line (or is being torn down) gives
/// nothing.
fn drain_held(write: impl FnOnce(&[u8])) {
    let _ = HELD.try_with(|held| {
        let Ok(mut held) = held.try_borrow_mut() else {
            return;
        };
        if let Some(buf) = held.as_mut()
            && !buf.is_empty()
        {
            write(buf);
            buf.clear();
            // One long line made it grow: back to the usual size.
            buf.shrink_to(HELD_MAX);
        }
    });
}

#[cfg(test)]
fn take_held() -> Option<Vec<u8>> {
    let mut taken = None;
    drain_held(|lines| taken = Some(lines.to_vec()));
    taken
}

/// Makes a panic write the panicking thread's held lines before the panic
/// message (flint's release builds abort on panic, so no guard's drop runs).
pub fn flush_held_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush_held();
        default(info);
    }));
}

/// Stops holding the thread's lines and writes what it held.
#[derive(Debug)]
pub struct HoldGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        flush_held();
        HELD.with_borrow_mut(|held| *held = None);
    }
}

/// Writes flint's log lines to syslog (`/dev/log`), one datagram per line
/// with the priority of its level, facility daemon. Lines that cannot be
/// sent go to stderr, so nothing is lost when syslog is down.
#[derive(Debug)]
pub struct Syslog {
    socket: Option<UnixDatagram>,
    pid: u32,
}

impl Syslog {
    pub fn open() -> Syslog {
        let socket = UnixDatagram::unbound()
            .ok()
            .filter(|s| s.connect("/dev/log").is_ok());
        Syslog {
            socket,
            pid: std::process::id(),
        }
    }

    /// Whether `/dev/log` was reached.
    pub fn connected(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one message at syslog `severity` (0 emerg .. 7 debug).
    pub fn send(&self, severity: u8, message: &str) {
        let text = format!(
            "<{}>flint[{}]: {}",
            3 * 8 + u32::from(severity),
            self.pid,
            message.trim_end()
        );
        let sent = self
            .socket
            .as_ref()
            .is_some_and(|s| s.send(text.as_bytes()).is_ok());
        if !sent {
            let _ = writeln!(std::io::stderr(), "{}", message.trim_end());
        }
    }
}

/// A `tracing` writer for one event, sent to syslog when dropped.
#[derive(Debug)]
pub struct SyslogLine<'a> {
    syslog: &'a Syslog,
    severity: u8,
    buf: Vec<u8>,
}

impl Write for SyslogLine<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.syslog
                .send(self.severity, &String::from_utf8_lossy(&self.buf));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Syslog {
    type Writer = SyslogLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        SyslogLine {
            syslog: self,
            severity: 6,
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        let severity = match *meta.level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            tracing::Level::DEBUG | tracing::Level::TRACE => 7,
        };
        SyslogLine {
            syslog: self,
            severity,
            buf: Vec::new(),
        }
    }
}

/// flint's log timestamps: RFC 3339 in UTC with microseconds
/// (`2026-12-03T02:22:11.284016Z`), as tracing-subscriber's `SystemTime`
/// writes them, with the part up to the second formatted once per second
/// and thread instead of for every line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock;

impl tracing_subscriber::fmt::time::FormatTime for Clock {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        write_time(w, now)
    }
}

/// Writes the time `now` (since the epoch) as [`Clock`] does.
fn write_time(w: &mut impl std::fmt::Write, now: std::time::Duration) -> std::fmt::Result {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.1.is_empty() || second.0 != now.as_secs() {
            *second = (now.as_secs(), utc_seconds(now.as_secs()));
        }
        write!(w, "{}.{:06}Z", second.1, now.subsec_micros())
    })
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC for seconds since the epoch (the civil
/// calendar from a day count, as in Howard Hinnant's `civil_from_days`).
fn utc_seconds(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(super::utc_seconds(0), "1970-01-01T00:00:00");
        assert_eq!(super::utc_seconds(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(super::utc_seconds(1_798_761_599), "2026-12-31T23:59:59");
        assert_eq!(super::utc_seconds(4_107_542_400), "2100-03-01T00:00:00");
        // Every day of four centuries against a day-by-day count.
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for day in 0..146_097u64 {
            assert_eq!(
                super::utc_seconds(day * 86_400 + 3_723),
                format!("{y:04}-{m:02}-{d:02}T01:02:03")
            );
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > len[usize::try_from(m - 1).unwrap()] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    use super::*;

    #[test]
    fn held_lines_wait_for_a_flush_or_a_full_batch() {
        std::thread::spawn(|| {
            // Not holding: written at once, nothing kept.
            StderrLine.write_all(b"unheld\n").unwrap();
            assert_eq!(take_held(), None);
            let guard = hold_stderr();
            StderrLine.write_all(b"one\n").unwrap();
            StderrLine.write_all(b"two\n").unwrap();
            assert_eq!(take_held().as_deref(), Some(&b"one\ntwo\n"[..]));
            assert_eq!(take_held(), None, "taken once");
            // A batch that reaches HELD_MAX is written without a flush.
            let long = vec![b'x'; HELD_MAX / 2];
            StderrLine.write_all(&long).unwrap();
            assert_eq!(take_held().map(|b| b.len()), Some(long.len()));
            StderrLine.write_all(&long).unwrap();
            StderrLine.write_all(&long).unwrap();
            assert_eq!(take_held(), None, "written when full");
            // As from a panic hook while a line was being added: nothing,
            // and no second panic.
            StderrLine.write_all(b"last\n").unwrap();
            HELD.with_borrow_mut(|_| assert_eq!(take_held(), None));
            drop(guard);
            assert!(
                HELD.with_borrow(Option::is_none),
                "not holding after the guard"
            );
            StderrLine.write_all(b"after\n").unwrap();
            assert_eq!(take_held(), None);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn rings_keep_recent_lines_per_unit_and_templates_select_instances() {
        record_output("logs-a.service", 1, "", "one", 6);
        record_output("logs-b@1.service", 2, "", "two", 6);
        record_output("logs-b@2.service", 3, "", "three", 6);
        record_output("logs-a.service", 1, "", "four", 6);
        let a: Vec<String> = recent("logs-a.service", 10, 0)
            .into_iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(a, ["one", "four"]);
        let b: Vec<String> = recent("logs-b@.service", 10, 0)
            .into_iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(b, ["two", "three"]);
        let last = recent("logs-a.service", 1, 0);
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].line, "four");
        assert!(recent("logs-a.service", 10, last[0].seq).is_empty());
        assert!(!selects("logs-b@.service", "logs-bx@1.service"));
        assert!(!selects("logs-b@.service", "logs-b@1.socket"));
    }

    #[test]
    fn rings_are_bounded() {
        for i in 0..(LINES_PER_UNIT + 10) {
            record_output("logs-bound.service", 1, "", &format!("{i}"), 6);
        }
        let all = recent("logs-bound.service", usize::MAX, 0);
        assert_eq!(all.len(), LINES_PER_UNIT);
        assert_eq!(all[0].line, "10");
        let long = "é".repeat(MAX_LINE);
        record_output("logs-long.service", 1, "", &long, 6);
        assert!(recent("logs-long.service", 1, 0)[0].line.len() <= MAX_LINE);
    }

    #[test]
    fn the_rate_limit_keeps_a_bursts_worth_per_interval() {
        let start = std::time::Instant::now();
        let mut rate = RateLimit::new(start);
        let kept = (0..RATE_BURST + 50)
            .filter(|_| rate.admit(start, "test"))
            .count();
        assert_eq!(kept, RATE_BURST as usize);
        assert!(!rate.idle(start + RATE_INTERVAL), "it has drops to report");
        assert!(rate.admit(start + RATE_INTERVAL, "test"), "a new interval");
        assert!(rate.idle(start + RATE_INTERVAL * 2));
    }

    #[test]
    fn a_level_prefix_is_read_as_systemds_stdout_stream_reads_it() {
        assert_eq!(level_prefix(b"<3>bad"), (3, &b"bad"[..]));
        assert_eq!(level_prefix(b"<007>x"), (7, &b"x"[..]));
        // A facility, a sign, too many digits or no end: text.
        for raw in [&b"<12>x"[..], b"<+3>x", b"<0003>x", b"<3 x", b"<>x"] {
            assert_eq!(level_prefix(raw), (6, raw));
        }
        assert_eq!(level_of(3), tracing::Level::ERROR);
        assert_eq!(level_of(4), tracing::Level::WARN);
        assert_eq!(level_of(8 * 3 + 5), tracing::Level::INFO);
        assert_eq!(level_of(7), tracing::Level::DEBUG);
    }

    #[test]
    fn syslog_lines_carry_priority_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.connect(&path).unwrap();
        let s = Syslog {
            socket: Some(client),
            pid: 42,
        };
        s.send(3, "boom\n");
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<27>flint[42]: boom");
    }
}
