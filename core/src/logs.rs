//! Logs without journald: the recent output of each unit, kept in a
//! bounded in-memory ring (for `flint ctl logs` and `flint ctl status`), and
//! flint's own log destinations (stderr as text or JSON, or syslog's
//! `/dev/log`).
//!
//! Every line a service writes to `journal`, `syslog`, `kmsg` or `inherit`
//! output reaches [`record`], which logs it with the unit and pid and keeps
//! it in the unit's ring. The rings are bounded: [`LINES_PER_UNIT`] lines per
//! unit and [`MAX_UNITS`] units (the unit that logged least recently is
//! forgotten first), so a flood of `Accept=yes` instances cannot grow memory
//! without bound.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// Lines kept per unit.
pub const LINES_PER_UNIT: usize = 1000;
/// Units whose lines are kept.
pub const MAX_UNITS: usize = 512;
/// Longest line kept, in bytes; longer ones are cut (at a char boundary).
pub const MAX_LINE: usize = 4096;

/// One line a unit wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Increases with every line of every unit; `ctl logs -f` asks for
    /// lines after the last it saw.
    pub seq: u64,
    /// Microseconds since the epoch.
    pub usec: u64,
    pub unit: String,
    pub pid: i32,
    pub line: String,
}

#[derive(Default)]
struct Rings {
    next: u64,
    units: HashMap<String, (u64, VecDeque<Entry>)>,
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

/// Logs one output line of `unit`'s process `pid` and keeps it in the ring.
pub fn record(unit: &str, pid: i32, line: &str) {
    let line = cut(line);
    if JSON.load(Ordering::Relaxed) {
        tracing::info!(target: "service", unit, pid, "{line}");
    } else {
        tracing::info!(target: "service", "{unit}[{pid}]: {line}");
    }
    let usec = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let mut guard = RINGS.lock().unwrap_or_else(PoisonError::into_inner);
    let rings = guard.get_or_insert_with(Rings::default);
    rings.next += 1;
    let seq = rings.next;
    if !rings.units.contains_key(unit) && rings.units.len() >= MAX_UNITS {
        let oldest = rings
            .units
            .iter()
            .min_by_key(|(_, (last, _))| *last)
            .map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            rings.units.remove(&name);
        }
    }
    let (last, ring) = rings
        .units
        .entry(unit.to_string())
        .or_insert_with(|| (0, VecDeque::new()));
    *last = seq;
    if ring.len() >= LINES_PER_UNIT {
        ring.pop_front();
    }
    ring.push_back(Entry {
        seq,
        usec,
        unit: unit.to_string(),
        pid,
        line: line.to_string(),
    });
}

/// Whether `name` selects `unit`: the same name, or for a template
/// (`web@.service`) every instance of it.
fn selects(name: &str, unit: &str) -> bool {
    if name == unit {
        return true;
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

/// The last `n` lines of the units `name` selects with `seq` above `after`,
/// oldest first.
pub fn recent(name: &str, n: usize, after: u64) -> Vec<Entry> {
    let guard = RINGS.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(rings) = guard.as_ref() else {
        return Vec::new();
    };
    let mut out: Vec<Entry> = rings
        .units
        .iter()
        .filter(|(unit, _)| selects(name, unit))
        .flat_map(|(_, (_, ring))| ring.iter().filter(|e| e.seq > after).cloned())
        .collect();
    out.sort_by_key(|e| e.seq);
    let skip = out.len().saturating_sub(n);
    out.drain(..skip);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_keep_recent_lines_per_unit_and_templates_select_instances() {
        record("logs-a.service", 1, "one");
        record("logs-b@1.service", 2, "two");
        record("logs-b@2.service", 3, "three");
        record("logs-a.service", 1, "four");
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
            record("logs-bound.service", 1, &format!("{i}"));
        }
        let all = recent("logs-bound.service", usize::MAX, 0);
        assert_eq!(all.len(), LINES_PER_UNIT);
        assert_eq!(all[0].line, "10");
        let long = "é".repeat(MAX_LINE);
        record("logs-long.service", 1, &long);
        assert!(recent("logs-long.service", 1, 0)[0].line.len() <= MAX_LINE);
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
