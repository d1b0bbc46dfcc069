//! `journalctl` as a front to flint's logs: the flint binary called by the
//! name `journalctl` (a link) reads `journalctl`'s command line, asks the
//! running flint for the lines it keeps (each unit's recent output and
//! syslog messages, and flint's own lines about the unit, as journald
//! keeps systemd's beside a service's output) and prints them in
//! journalctl's formats (`short` and its variants, `cat`, `with-unit`,
//! `json`, `json-pretty`, `json-seq`, `json-sse`, `export`, `verbose`), so
//! that `journalctl -u web -n 50`, `journalctl -fu web`, `journalctl -p err
//! --since "1 hour ago"` and tools that read `journalctl -o json` keep
//! working where flint runs the units.
//!
//! flint keeps its lines in memory ([`crate::logs`]), for this boot only,
//! at most [`crate::logs::LINES_PER_UNIT`] per unit: options that read
//! journal files (`--directory`, `--file`, `--root`, `--machine`) are
//! refused by name, maintenance options that act on files (`--vacuum-*`,
//! `--rotate`, `--flush`, `--sync`) have nothing to do and succeed, and an
//! earlier boot (`-b -1`) is not available, as journalctl says of a boot
//! its journal no longer holds.

use std::fmt::Write as _;

use serde_json::{Value as Json, json};

use crate::logs::{Query, Transport};

/// Why a `journalctl` command line cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalctlError {
    #[error("unrecognized option '{0}'")]
    UnknownOption(String),
    #[error("option '{0}' requires an argument")]
    MissingValue(String),
    #[error("{0}: flint keeps its logs in memory and reads no journal files")]
    Files(String),
    #[error("'{0}' is not an option flint's journalctl has a counterpart for")]
    Unsupported(String),
    #[error("Unknown log level {0}")]
    Level(String),
    #[error("Failed to parse timestamp: {0}")]
    Timestamp(String),
    #[error("Failed to parse --lines='{0}'.")]
    Lines(String),
    #[error("Unknown output format '{0}'.")]
    Output(String),
    #[error("Failed to add match '{0}': Invalid argument")]
    Match(String),
    #[error("Data from the specified boot ({0}) is not available: No such boot ID in journal")]
    Boot(String),
    #[error("Failed to parse boolean argument to --case-sensitive=: {0}")]
    Bool(String),
    #[error("{0}")]
    Conflict(&'static str),
}

/// How each line is printed (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Short,
    ShortFull,
    ShortIso,
    ShortIsoPrecise,
    ShortPrecise,
    ShortMonotonic,
    ShortUnix,
    WithUnit,
    Cat,
    Json,
    JsonPretty,
    JsonSeq,
    JsonSse,
    Export,
    Verbose,
}

impl Output {
    fn parse(s: &str) -> Result<Output, JournalctlError> {
        Ok(match s {
            "short" => Output::Short,
            "short-full" => Output::ShortFull,
            "short-iso" => Output::ShortIso,
            "short-iso-precise" => Output::ShortIsoPrecise,
            "short-precise" => Output::ShortPrecise,
            "short-monotonic" => Output::ShortMonotonic,
            "short-unix" => Output::ShortUnix,
            "with-unit" => Output::WithUnit,
            "cat" => Output::Cat,
            "json" => Output::Json,
            "json-pretty" => Output::JsonPretty,
            "json-seq" => Output::JsonSeq,
            "json-sse" => Output::JsonSse,
            "export" => Output::Export,
            "verbose" => Output::Verbose,
            _ => return Err(JournalctlError::Output(s.to_string())),
        })
    }
}

/// What a `journalctl` command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journalctl {
    /// Print lines.
    Show(Box<Options>),
    /// Distinct values of a field (`-F`).
    Field {
        field: String,
        user: bool,
    },
    /// The boots flint has lines of (`--list-boots`): this one.
    ListBoots {
        user: bool,
    },
    /// `--disk-usage`: flint keeps nothing on disk.
    DiskUsage,
    /// A maintenance option with nothing to act on (`--vacuum-size=`,
    /// `--rotate`, `--flush`, `--sync`).
    Nothing,
    Version,
    Help,
}

/// Options of a `journalctl` run that prints lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub query: Query,
    /// `-n` was given (or implied by `-e`/`-f`).
    pub follow: bool,
    pub output: Output,
    pub utc: bool,
    pub no_hostname: bool,
    pub quiet: bool,
    pub reverse: bool,
    /// The user's flint (`--user`, `--user-unit=`).
    pub user: bool,
    pub show_cursor: bool,
    /// `--cursor=`, `--after-cursor=`, `--cursor-file=`: where to begin.
    pub cursor: Option<Cursor>,
    pub cursor_file: Option<String>,
}

/// Where `--cursor=`/`--after-cursor=` begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub text: String,
    /// `--after-cursor`: the line of the cursor itself is left out.
    pub after: bool,
}

/// journalctl's `-n` without a number: the last 10 lines.
const DEFAULT_LINES: usize = 10;

/// The severity of a name or number (`log_level_from_string()`).
fn level(s: &str) -> Result<u8, JournalctlError> {
    const NAMES: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    if let Some(i) = NAMES.iter().position(|n| *n == s) {
        return Ok(u8::try_from(i).unwrap_or(7));
    }
    match s.parse::<u8>() {
        Ok(n) if n <= 7 => Ok(n),
        _ => Err(JournalctlError::Level(s.to_string())),
    }
}

/// `-p`: one level (that one and those more severe) or a range `A..B`.
fn priorities(s: &str) -> Result<u8, JournalctlError> {
    let bits = |from: u8, to: u8| (from.min(to)..=from.max(to)).fold(0u8, |set, i| set | 1 << i);
    match s.split_once("..") {
        Some((a, b)) => Ok(bits(level(a)?, level(b)?)),
        None => Ok(bits(0, level(s)?)),
    }
}

/// A unit name as `journalctl -u` mangles it: a name without a type is a
/// service's; patterns stay as they are.
fn unit_name(name: &str) -> String {
    crate::control::systemctl::unit_name(name)
}

/// A time as `--since`/`--until` take it (systemd's `parse_timestamp()`):
/// `now`, `today`, `yesterday`, `tomorrow`, `@SECONDS`, `+SPAN`, `-SPAN`,
/// `SPAN ago`, `SPAN left`, and `[WEEKDAY] [YYYY-]MM-DD [HH:MM[:SS[.FRAC]]]`
/// or `HH:MM[:SS]` (today) in the local time zone or with a trailing `UTC`.
pub fn parse_timestamp(
    text: &str,
    now: u64,
    tz: &jiff::tz::TimeZone,
) -> Result<u64, JournalctlError> {
    let bad = || JournalctlError::Timestamp(text.to_string());
    let t = text.trim();
    let span = |x: &str| crate::unit::value::time::parse_sec(x.trim()).map_err(|_| bad());
    if let Some(rest) = t.strip_prefix('@') {
        let secs: f64 = rest.parse().map_err(|_| bad())?;
        if !secs.is_finite() || secs < 0.0 {
            return Err(bad());
        }
        // Whole microseconds of a non-negative, finite number of seconds.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Ok((secs * 1e6) as u64);
    }
    if let Some(rest) = t.strip_prefix('+') {
        return Ok(now.saturating_add(span(rest)?));
    }
    if let Some(rest) = t.strip_prefix('-') {
        return Ok(now.saturating_sub(span(rest)?));
    }
    if let Some(rest) = t.strip_suffix(" ago") {
        return Ok(now.saturating_sub(span(rest)?));
    }
    if let Some(rest) = t.strip_suffix(" left") {
        return Ok(now.saturating_add(span(rest)?));
    }
    let (t, tz) = match t.len().checked_sub(4).filter(|&at| t.is_char_boundary(at)) {
        Some(at) if t[at..].eq_ignore_ascii_case(" utc") => {
            (t[..at].trim(), jiff::tz::TimeZone::UTC)
        }
        _ => (t, tz.clone()),
    };
    let now_ts = jiff::Timestamp::from_microsecond(i64::try_from(now).map_err(|_| bad())?)
        .map_err(|_| bad())?;
    let today = now_ts.to_zoned(tz.clone()).date();
    let at = |date: jiff::civil::Date, time: jiff::civil::Time| -> Result<u64, JournalctlError> {
        let zoned = date
            .to_datetime(time)
            .to_zoned(tz.clone())
            .map_err(|_| bad())?;
        u64::try_from(zoned.timestamp().as_microsecond()).map_err(|_| bad())
    };
    let midnight = jiff::civil::Time::midnight();
    match t {
        "now" => return Ok(now),
        "today" => return at(today, midnight),
        "yesterday" => return at(today.yesterday().map_err(|_| bad())?, midnight),
        "tomorrow" => return at(today.tomorrow().map_err(|_| bad())?, midnight),
        _ => {}
    }
    // journalctl's own short form, "Dec 06 08:52:31" (this year), so that
    // a time copied from its output can be given back.
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = t.split_once(' ').and_then(|(m, rest)| {
        let m = m.to_ascii_lowercase();
        MONTHS
            .iter()
            .position(|x| *x == m)
            .map(|i| (i, rest.trim()))
    });
    let rewritten;
    let t = match month {
        Some((i, rest)) => {
            let (day, time) = rest.split_once(' ').unwrap_or((rest, "00:00:00"));
            rewritten = format!("{}-{:02}-{day} {}", today.year(), i + 1, time.trim());
            rewritten.as_str()
        }
        None => t,
    };
    // An optional weekday first ("Sat 2026-12-05 10:00").
    let t = match t.split_once(' ') {
        Some((day, rest)) if day.len() >= 3 && day.chars().all(|c| c.is_ascii_alphabetic()) => {
            rest.trim()
        }
        _ => t,
    };
    let (date_part, time_part) = match t.split_once([' ', 'T']) {
        Some((d, r)) => (Some(d), Some(r.trim())),
        None if t.contains('-') => (Some(t), None),
        None => (None, Some(t)),
    };
    let date = match date_part {
        None => today,
        Some(d) => {
            let fields: Vec<&str> = d.split('-').collect();
            let num = |x: &str| x.parse::<i16>().map_err(|_| bad());
            let (y, m, dd) = match fields.as_slice() {
                // Two digits: 1969 to 2068, as strptime's %y.
                [y, m, dd] if y.len() == 2 => {
                    let y = num(y)?;
                    (if y >= 69 { 1900 + y } else { 2000 + y }, num(m)?, num(dd)?)
                }
                [y, m, dd] => (num(y)?, num(m)?, num(dd)?),
                [m, dd] => (today.year(), num(m)?, num(dd)?),
                _ => return Err(bad()),
            };
            let m = i8::try_from(m).map_err(|_| bad())?;
            let dd = i8::try_from(dd).map_err(|_| bad())?;
            jiff::civil::Date::new(y, m, dd).map_err(|_| bad())?
        }
    };
    let time = match time_part {
        None => midnight,
        Some(tp) => {
            let (hms, frac) = match tp.split_once('.') {
                Some((a, b)) => (a, Some(b)),
                None => (tp, None),
            };
            let fields: Vec<&str> = hms.split(':').collect();
            let num = |x: &str| x.parse::<i8>().map_err(|_| bad());
            let (h, mi, sec) = match fields.as_slice() {
                [h, mi] => (num(h)?, num(mi)?, 0),
                [h, mi, sec] => (num(h)?, num(mi)?, num(sec)?),
                _ => return Err(bad()),
            };
            let nanos = match frac {
                None => 0,
                Some(f)
                    if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    let digits: i32 = f.parse().map_err(|_| bad())?;
                    digits * 10i32.pow(9 - u32::try_from(f.len()).unwrap_or(9))
                }
                Some(_) => return Err(bad()),
            };
            jiff::civil::Time::new(h, mi, sec, nanos).map_err(|_| bad())?
        }
    };
    at(date, time)
}

/// The optional argument of `-n`/`-b`: glued, after `=`, or the next word
/// when `takes` accepts it (journalctl looks at the next word).
fn optional_value<'a>(
    arg: &'a str,
    short: &str,
    long: &str,
    args: &'a [String],
    i: &mut usize,
    takes: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    if let Some(v) = arg.strip_prefix(&format!("{long}=")) {
        return Some(v);
    }
    if arg != long && arg != short && arg.starts_with(short) && !arg.starts_with("--") {
        return Some(&arg[short.len()..]);
    }
    match args.get(*i + 1) {
        Some(next) if takes(next) => {
            *i += 1;
            Some(next)
        }
        _ => None,
    }
}

/// Whether `s` is a count of lines (`-n 5`, `-n +5`, `-n all`).
fn is_lines(s: &str) -> bool {
    s == "all" || s.strip_prefix('+').unwrap_or(s).parse::<u64>().is_ok()
}

/// Whether `s` names a boot (`-b 0`, `-b -1`, `-b ID`).
fn is_boot(s: &str) -> bool {
    s.parse::<i64>().is_ok()
        || (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        || s == "all"
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`, without dashes).
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().replace('-', ""))
        .unwrap_or_default()
}

/// The value of an option that takes one: after `=`, glued to the short
/// form, or the next word; `None` when `arg` is not this option.
fn option_value(
    args: &[String],
    i: &mut usize,
    arg: &str,
    short: &str,
    long: &str,
) -> Result<Option<String>, JournalctlError> {
    if let Some(v) = arg.strip_prefix(&format!("{long}=")) {
        return Ok(Some(v.to_string()));
    }
    if arg == long || (!short.is_empty() && arg == short) {
        *i += 1;
        return args
            .get(*i)
            .cloned()
            .map(Some)
            .ok_or_else(|| JournalctlError::MissingValue(arg.to_string()));
    }
    if !short.is_empty() && arg.starts_with(short) && !arg.starts_with("--") {
        return Ok(Some(arg[short.len()..].to_string()));
    }
    Ok(None)
}

/// A word that is no option: a match `FIELD=VALUE`.
fn match_word(arg: &str, query: &mut Query) -> Result<(), JournalctlError> {
    if arg == "+" {
        return Err(JournalctlError::Unsupported(arg.to_string()));
    }
    let Some((name, value)) = arg.split_once('=') else {
        return Err(JournalctlError::Match(arg.to_string()));
    };
    match name {
        "_SYSTEMD_UNIT" => query.systemd_units.push(value.to_string()),
        "UNIT" | "OBJECT_SYSTEMD_UNIT" => query.units.push(value.to_string()),
        "_PID" => query.pids.push(
            value
                .parse()
                .map_err(|_| JournalctlError::Match(arg.to_string()))?,
        ),
        "SYSLOG_IDENTIFIER" => query.idents.push(value.to_string()),
        "PRIORITY" => {
            let p = level(value).map_err(|_| JournalctlError::Match(arg.to_string()))?;
            query.priorities = Some(query.priorities.unwrap_or(0) | 1 << p);
        }
        "_TRANSPORT" => query.transports.push(match value {
            "stdout" => Transport::Stdout,
            "syslog" => Transport::Syslog,
            "journal" => Transport::Manager,
            _ => Transport::Kernel,
        }),
        _ => return Err(JournalctlError::Unsupported(arg.to_string())),
    }
    Ok(())
}

/// Reads a `journalctl` command line (without the program name).
#[allow(clippy::too_many_lines)]
pub fn parse(args: &[String]) -> Result<Journalctl, JournalctlError> {
    let mut o = Options {
        query: Query::default(),
        follow: false,
        output: Output::Short,
        utc: false,
        no_hostname: false,
        quiet: false,
        reverse: false,
        user: false,
        show_cursor: false,
        cursor: None,
        cursor_file: None,
    };
    // None: not given; Some(None): all.
    let mut lines: Option<Option<usize>> = None;
    let mut oldest = false;
    let mut pager_end = false;
    let mut field = None;
    let mut list_boots = false;
    let mut since_set = false;
    let mut case_sensitive = None;
    let mut grep = None;
    let mut no_tail = false;
    let mut i = 0;
    let mut args: Vec<String> = args.to_vec();
    let mut only_matches = false;
    while i < args.len() {
        // Short options grouped where an option may stand (`-fu web`,
        // `-xe`): the first flag, then the rest as an option of its own.
        if !only_matches
            && let Some(rest) = args[i].strip_prefix('-')
            && !rest.starts_with('-')
            && rest.len() > 1
            && rest.starts_with(['f', 'e', 'x', 'a', 'l', 'q', 'r', 'm', 'k', 'N'])
        {
            let tail = format!("-{}", &rest[1..]);
            args[i].truncate(2);
            args.insert(i + 1, tail);
        }
        let arg = args[i].clone();
        let arg = arg.as_str();
        macro_rules! with_value {
            ($short:expr, $long:expr) => {
                option_value(&args, &mut i, arg, $short, $long)?
            };
        }
        if only_matches || !arg.starts_with('-') || arg == "-" {
            match_word(arg, &mut o.query)?;
            i += 1;
            continue;
        }
        if arg == "--" {
            only_matches = true;
        } else if arg == "-h" || arg == "--help" {
            return Ok(Journalctl::Help);
        } else if arg == "--version" {
            return Ok(Journalctl::Version);
        } else if matches!(
            arg,
            "--no-pager"
                | "-a"
                | "--all"
                | "-l"
                | "--full"
                | "--no-full"
                | "-x"
                | "--catalog"
                | "-m"
                | "--merge"
                | "--system"
                | "--this-boot"
        ) {
        } else if arg == "--no-tail" {
            no_tail = true;
        } else if arg == "-f" || arg == "--follow" {
            o.follow = true;
        } else if arg == "-e" || arg == "--pager-end" {
            pager_end = true;
        } else if arg == "-q" || arg == "--quiet" {
            o.quiet = true;
        } else if arg == "-r" || arg == "--reverse" {
            o.reverse = true;
        } else if arg == "--utc" {
            o.utc = true;
        } else if arg == "--no-hostname" {
            o.no_hostname = true;
        } else if arg == "--user" {
            o.user = true;
        } else if arg == "--show-cursor" {
            o.show_cursor = true;
        } else if arg == "-k" || arg == "--dmesg" {
            // Kernel messages are not kept: no line is the kernel's.
            o.query.transports.push(Transport::Kernel);
        } else if arg == "--list-boots" {
            list_boots = true;
        } else if arg == "--disk-usage" {
            return Ok(Journalctl::DiskUsage);
        } else if matches!(
            arg,
            "--rotate" | "--flush" | "--sync" | "--relinquish-var" | "--smart-relinquish-var"
        ) || ["--vacuum-size", "--vacuum-time", "--vacuum-files"]
            .iter()
            .any(|v| arg == *v || arg.starts_with(&format!("{v}=")))
        {
            return Ok(Journalctl::Nothing);
        } else if arg == "-n"
            || arg == "--lines"
            || arg.starts_with("--lines=")
            || (arg.starts_with("-n") && !arg.starts_with("--"))
        {
            match optional_value(arg, "-n", "--lines", &args, &mut i, is_lines) {
                None => lines = Some(Some(DEFAULT_LINES)),
                Some("all") => lines = Some(None),
                Some(v) => {
                    let plus = v.strip_prefix('+');
                    let n: usize = plus
                        .unwrap_or(v)
                        .parse()
                        .map_err(|_| JournalctlError::Lines(v.to_string()))?;
                    lines = Some(Some(n));
                    oldest = plus.is_some();
                }
            }
        } else if arg == "-b"
            || arg == "--boot"
            || arg.starts_with("--boot=")
            || (arg.starts_with("-b") && !arg.starts_with("--"))
        {
            if let Some(v) = optional_value(arg, "-b", "--boot", &args, &mut i, is_boot) {
                let this = boot_id();
                let ok = v == "all"
                    || v == "0"
                    || v.eq_ignore_ascii_case(&this)
                    || v.strip_suffix("+0")
                        .is_some_and(|id| id.eq_ignore_ascii_case(&this));
                if !ok {
                    return Err(JournalctlError::Boot(v.to_string()));
                }
            }
        } else if let Some(v) = with_value!("-o", "--output") {
            o.output = Output::parse(&v)?;
        } else if with_value!("", "--output-fields").is_some() {
        } else if let Some(v) = with_value!("-u", "--unit") {
            o.query.units.push(unit_name(&v));
        } else if let Some(v) = with_value!("", "--user-unit") {
            o.user = true;
            o.query.units.push(unit_name(&v));
        } else if let Some(v) = with_value!("-t", "--identifier") {
            o.query.idents.push(v);
        } else if let Some(v) = with_value!("-p", "--priority") {
            let set = priorities(&v)?;
            o.query.priorities = Some(o.query.priorities.map_or(set, |old| old & set));
        } else if let Some(v) = with_value!("-g", "--grep") {
            grep = Some(v);
        } else if arg == "--case-sensitive" {
            case_sensitive = Some(true);
        } else if let Some(v) = arg.strip_prefix("--case-sensitive=") {
            case_sensitive = Some(match v {
                "1" | "yes" | "y" | "true" | "t" | "on" => true,
                "0" | "no" | "n" | "false" | "f" | "off" => false,
                _ => return Err(JournalctlError::Bool(v.to_string())),
            });
        } else if let Some(v) = with_value!("-S", "--since") {
            since_set = true;
            o.query.since = Some(parse_timestamp(
                &v,
                crate::logs::epoch_usec(),
                &time_zone(false),
            )?);
        } else if let Some(v) = with_value!("-U", "--until") {
            o.query.until = Some(parse_timestamp(
                &v,
                crate::logs::epoch_usec(),
                &time_zone(false),
            )?);
        } else if let Some(v) = with_value!("-c", "--cursor") {
            o.cursor = Some(Cursor {
                text: v,
                after: false,
            });
        } else if let Some(v) = with_value!("", "--after-cursor") {
            o.cursor = Some(Cursor {
                text: v,
                after: true,
            });
        } else if let Some(v) = with_value!("", "--cursor-file") {
            o.cursor_file = Some(v);
        } else if let Some(v) = with_value!("-F", "--field") {
            field = Some(v);
        } else if arg == "-N" || arg == "--fields" {
            field = Some(String::new());
        } else if let Some(v) = [
            "-D",
            "--directory",
            "--file",
            "--root",
            "--image",
            "-M",
            "--machine",
            "-i",
            "--namespace",
        ]
        .iter()
        .find(|o| {
            arg == **o
                || arg.starts_with(&format!("{o}="))
                || (o.len() == 2 && arg.starts_with(**o) && !arg.starts_with("--"))
        }) {
            return Err(JournalctlError::Files((*v).to_string()));
        } else {
            return Err(JournalctlError::UnknownOption(arg.to_string()));
        }
        i += 1;
    }
    if o.follow && o.reverse {
        return Err(JournalctlError::Conflict(
            "Please specify either --reverse or --follow, not both.",
        ));
    }
    if let (Some(since), Some(until)) = (o.query.since, o.query.until)
        && since > until
    {
        return Err(JournalctlError::Conflict(
            "--since= must be before --until=.",
        ));
    }
    if u8::from(since_set) + u8::from(o.cursor.is_some()) + u8::from(o.cursor_file.is_some()) > 1 {
        return Err(JournalctlError::Conflict(
            "Please specify only one of --since=, --cursor=, and --after-cursor=.",
        ));
    }
    if let Some(field) = field {
        return Ok(Journalctl::Field {
            field,
            user: o.user,
        });
    }
    if list_boots {
        return Ok(Journalctl::ListBoots { user: o.user });
    }
    if let Some(g) = grep {
        // journalctl's smart case: a pattern with no capital letter matches
        // either case unless told otherwise.
        o.query.case_sensitive =
            case_sensitive.unwrap_or_else(|| g.chars().any(char::is_uppercase));
        o.query.grep = Some(g);
    }
    if lines.is_none() && pager_end {
        lines = Some(Some(1000));
    }
    if lines.is_none() && o.follow && !since_set {
        lines = Some(Some(DEFAULT_LINES));
    }
    if no_tail {
        lines = Some(None);
    }
    o.query.lines = lines.flatten();
    // From a cursor or a time, journalctl shows the lines that follow it.
    o.query.oldest =
        oldest || (!o.reverse && (since_set || o.cursor.is_some() || o.cursor_file.is_some()));
    Ok(Journalctl::Show(Box::new(o)))
}

/// The time zone lines are shown in: the system's, or UTC (`--utc`).
pub fn time_zone(utc: bool) -> jiff::tz::TimeZone {
    if utc {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::system()
    }
}

/// What is the same for every line printed: the host, the boot, this
/// flint's journal id, the time zone.
#[derive(Debug, Clone)]
pub struct Context {
    pub hostname: String,
    pub boot_id: String,
    /// Names this flint's run in cursors (`s=`).
    pub journal_id: String,
    /// The user flint runs as: `_UID` of its own lines.
    pub uid: Option<u64>,
    pub tz: jiff::tz::TimeZone,
}

/// The journal fields of one line, in the order journalctl's `export` and
/// `verbose` print them (after the cursor and timestamps).
fn fields(e: &Json, ctx: &Context) -> Vec<(&'static str, String)> {
    let transport = e["transport"].as_str().unwrap_or("stdout");
    let unit = e["unit"].as_str().unwrap_or("");
    let mut out = vec![
        ("_BOOT_ID", ctx.boot_id.clone()),
        ("_HOSTNAME", ctx.hostname.clone()),
        (
            "_TRANSPORT",
            if transport == "manager" {
                "journal"
            } else {
                transport
            }
            .to_string(),
        ),
        ("PRIORITY", e["priority"].as_u64().unwrap_or(6).to_string()),
    ];
    let ident = ident_of(e);
    if !ident.is_empty() {
        out.push(("SYSLOG_IDENTIFIER", ident));
    }
    out.push(("_PID", e["pid"].as_i64().unwrap_or(0).to_string()));
    if transport == "manager"
        && let Some(uid) = ctx.uid
    {
        out.push(("_UID", uid.to_string()));
    }
    if !unit.is_empty() {
        if transport == "manager" {
            // As systemd's lines about a unit (`UNIT=`), and as a
            // privileged daemon's (`OBJECT_SYSTEMD_UNIT=`), which
            // `journalctl -u` also matches on journal files exported here.
            out.push(("UNIT", unit.to_string()));
            out.push(("OBJECT_SYSTEMD_UNIT", unit.to_string()));
        } else {
            out.push(("_SYSTEMD_UNIT", unit.to_string()));
        }
    }
    out.push(("MESSAGE", e["line"].as_str().unwrap_or("").to_string()));
    out
}

/// `SYSLOG_IDENTIFIER`: what the line carries, else the unit's name
/// without its type (the command's name is not known for it).
fn ident_of(e: &Json) -> String {
    match e["ident"].as_str() {
        Some(i) if !i.is_empty() => i.to_string(),
        _ => {
            let unit = e["unit"].as_str().unwrap_or("");
            unit.rsplit_once('.').map_or(unit, |(n, _)| n).to_string()
        }
    }
}

/// The cursor of one line: `s=` this flint's journal, `i=` the line's
/// sequence number, then boot, monotonic and real time, as journald's.
pub fn cursor(e: &Json, ctx: &Context) -> String {
    format!(
        "s={};i={:x};b={};m={:x};t={:x};x=0",
        ctx.journal_id,
        e["seq"].as_u64().unwrap_or(0),
        ctx.boot_id,
        e["mono"].as_u64().unwrap_or(0),
        e["usec"].as_u64().unwrap_or(0)
    )
}

/// The sequence number a cursor of this flint's journal names.
pub fn cursor_seq(cursor: &str, journal_id: &str) -> Option<u64> {
    let mut id = None;
    let mut seq = None;
    for part in cursor.split(';') {
        match part.split_once('=') {
            Some(("s", v)) => id = Some(v),
            Some(("i", v)) => seq = u64::from_str_radix(v, 16).ok(),
            _ => {}
        }
    }
    (id == Some(journal_id)).then_some(seq).flatten()
}

fn zoned(usec: u64, tz: &jiff::tz::TimeZone) -> jiff::Zoned {
    let ts = i64::try_from(usec)
        .ok()
        .and_then(|u| jiff::Timestamp::from_microsecond(u).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned(tz.clone())
}

/// One line in `output`'s format, with its final newline (none for the
/// formats that separate lines otherwise).
pub fn format_line(e: &Json, output: Output, no_hostname: bool, ctx: &Context) -> String {
    let usec = e["usec"].as_u64().unwrap_or(0);
    let micros = usec % 1_000_000;
    let message = e["line"].as_str().unwrap_or("");
    let z = zoned(usec, &ctx.tz);
    let stamp = match output {
        Output::Short => z.strftime("%b %d %H:%M:%S").to_string(),
        Output::ShortPrecise => format!("{}.{micros:06}", z.strftime("%b %d %H:%M:%S")),
        Output::ShortIso => z.strftime("%Y-%m-%dT%H:%M:%S%z").to_string(),
        Output::ShortIsoPrecise => {
            format!(
                "{}.{micros:06}{}",
                z.strftime("%Y-%m-%dT%H:%M:%S"),
                z.strftime("%z")
            )
        }
        Output::ShortFull | Output::WithUnit => z.strftime("%a %Y-%m-%d %H:%M:%S %Z").to_string(),
        Output::ShortUnix => format!("{}.{micros:06}", usec / 1_000_000),
        Output::ShortMonotonic => {
            let mono = e["mono"].as_u64().unwrap_or(0);
            format!("[{:5}.{:06}]", mono / 1_000_000, mono % 1_000_000)
        }
        Output::Cat => return format!("{message}\n"),
        Output::Json | Output::JsonPretty | Output::JsonSeq | Output::JsonSse => {
            let mut object = serde_json::Map::new();
            object.insert("__CURSOR".into(), json!(cursor(e, ctx)));
            object.insert("__REALTIME_TIMESTAMP".into(), json!(usec.to_string()));
            object.insert(
                "__MONOTONIC_TIMESTAMP".into(),
                json!(e["mono"].as_u64().unwrap_or(0).to_string()),
            );
            for (k, v) in fields(e, ctx) {
                // An unprintable value as its bytes, as journalctl's JSON.
                let value = if printable(&v) {
                    json!(v)
                } else {
                    json!(v.as_bytes())
                };
                object.insert(k.into(), value);
            }
            let object = Json::Object(object);
            return match output {
                Output::JsonPretty => {
                    format!(
                        "{}\n",
                        serde_json::to_string_pretty(&object).unwrap_or_default()
                    )
                }
                Output::JsonSeq => format!("\u{1e}{object}\n"),
                Output::JsonSse => format!("data: {object}\n\n"),
                _ => format!("{object}\n"),
            };
        }
        Output::Export => {
            return String::from_utf8_lossy(&export_entry(e, ctx)).into_owned();
        }
        Output::Verbose => {
            let mut out = format!(
                "{}.{micros:06} {} [{}]\n",
                z.strftime("%a %Y-%m-%d %H:%M:%S"),
                z.strftime("%Z"),
                cursor(e, ctx)
            );
            for (k, v) in fields(e, ctx) {
                if printable(&v) {
                    let _ = writeln!(out, "    {k}={v}");
                } else {
                    let _ = writeln!(out, "    {k}={}", blob(&v));
                }
            }
            return out;
        }
    };
    let who = if output == Output::WithUnit {
        match e["unit"].as_str() {
            Some(u) if !u.is_empty() && e["transport"].as_str() != Some("manager") => u.to_string(),
            _ => ident_of(e),
        }
    } else {
        ident_of(e)
    };
    let host = if no_hostname {
        String::new()
    } else {
        format!(" {}", ctx.hostname)
    };
    let message = shown(message);
    format!("{stamp}{host} {who}[{}]: {message}\n", e["pid"])
}

/// A message as journalctl's short formats show it: colour sequences
/// taken out, a tab as eight spaces, and a message with other control
/// characters as `[SIZE blob data]`, so a service's output cannot drive
/// the reader's terminal.
fn shown(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                // Parameters and intermediates up to the final byte.
                for f in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&f) {
                        break;
                    }
                }
            }
            '\t' => out.push_str("        "),
            c if c.is_control() => return blob(message),
            c => out.push(c),
        }
    }
    out
}

/// Whether journalctl prints a value as it is: no control character but
/// tabs and newlines.
fn printable(value: &str) -> bool {
    !value
        .chars()
        .any(|c| c.is_control() && c != '\t' && c != '\n')
}

/// `[SIZE blob data]`, the size as systemd's `format_bytes()` gives it.
fn blob(value: &str) -> String {
    let n = value.len();
    if n < 1024 {
        format!("[{n}B blob data]")
    } else {
        #[allow(clippy::cast_precision_loss)]
        let k = n as f64 / 1024.0;
        format!("[{k:.1}K blob data]")
    }
}

/// One line in journalctl's export format: `FIELD=value` lines and an
/// empty line; a value that is not printable as it is (a control
/// character, a newline) in the binary-safe form, the field name, a
/// newline, the length as 64-bit little endian and the bytes.
pub fn export_entry(e: &Json, ctx: &Context) -> Vec<u8> {
    let usec = e["usec"].as_u64().unwrap_or(0);
    let mut out = format!(
        "__CURSOR={}\n__REALTIME_TIMESTAMP={usec}\n__MONOTONIC_TIMESTAMP={}\n",
        cursor(e, ctx),
        e["mono"].as_u64().unwrap_or(0)
    )
    .into_bytes();
    for (k, v) in fields(e, ctx) {
        out.extend_from_slice(k.as_bytes());
        if v.bytes().all(|b| b >= b' ' || b == b'\t') {
            out.push(b'=');
        } else {
            out.push(b'\n');
            out.extend_from_slice(&u64::try_from(v.len()).unwrap_or(0).to_le_bytes());
        }
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// journalctl's `--help`.
pub const HELP: &str = "journalctl [OPTIONS...] [MATCHES...]

Query the lines flint keeps: each unit's recent output and syslog messages,
and flint's own lines about the units.

  -u --unit=UNIT             Show lines of the specified unit (or pattern)
     --user-unit=UNIT        Show lines of the unit of the user's flint
  -t --identifier=STRING     Show lines with the specified syslog identifier
  -p --priority=RANGE        Show lines within the specified priority range
  -g --grep=PATTERN          Show lines whose message matches PATTERN
     --case-sensitive[=BOOL] Force case sensitive or insensitive matching
  -S --since=DATE            Show lines not older than the specified date
  -U --until=DATE            Show lines not newer than the specified date
  -b --boot[=0]              Show lines of this boot (the only one kept)
  -k --dmesg                 Show kernel lines (none are kept)
  -c --cursor=CURSOR         Show lines starting at the specified cursor
     --after-cursor=CURSOR   Show lines after the specified cursor
     --cursor-file=FILE      Show lines after the cursor in FILE and update it
     --show-cursor           Print the cursor after all the lines
  -n --lines[=[+]INTEGER]    Number of lines to show (+N: the first N)
  -e --pager-end             Show the last 1000 lines
  -f --follow                Follow the log
  -r --reverse               Show the newest lines first
  -o --output=STRING         short, short-full, short-iso, short-iso-precise,
                             short-precise, short-monotonic, short-unix,
                             with-unit, cat, json, json-pretty, json-seq,
                             json-sse, export, verbose
     --utc                   Express time in Coordinated Universal Time
     --no-hostname           Suppress output of hostname field
  -q --quiet                 Do not show info messages
  -F --field=FIELD           List all values that a specified field takes
  -N --fields                List all field names currently used
     --list-boots            Show terse information about recorded boots
     --user                  Show the lines of the user's flint
     --no-pager -a -l -x -m  Accepted; they change nothing here
  -h --help                  Show this help text
     --version               Show package version

MATCHES: _SYSTEMD_UNIT=, UNIT=, _PID=, SYSLOG_IDENTIFIER=, PRIORITY=, _TRANSPORT=
";

/// The fields `-N` lists.
pub const FIELDS: &[&str] = &[
    "__CURSOR",
    "__REALTIME_TIMESTAMP",
    "__MONOTONIC_TIMESTAMP",
    "_BOOT_ID",
    "_HOSTNAME",
    "_TRANSPORT",
    "PRIORITY",
    "SYSLOG_IDENTIFIER",
    "_PID",
    "_SYSTEMD_UNIT",
    "UNIT",
    "MESSAGE",
];

/// The distinct values of `field` over `entries`, in first-seen order.
pub fn field_values(field: &str, entries: &[Json], ctx: &Context) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in entries {
        for (k, v) in fields(e, ctx) {
            if k == field && !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// What the flint answering is: its journal id and user.
#[derive(Debug, Clone, Default)]
struct Answer {
    journal_id: String,
    uid: Option<u64>,
    /// The sequence number of the last line the flint keeps.
    last_seq: u64,
}

/// Asks the flint at `path` for the lines `query` selects; the lines and
/// the flint's journal id.
fn fetch(path: &std::path::Path, query: &Query) -> Result<(Vec<Json>, Answer), String> {
    let request = json!({"version": crate::control::PROTOCOL_VERSION, "command": "journal",
                         "units": [], "query": query});
    match crate::control::call(path, &request) {
        Ok(answer) if answer["ok"] == true => Ok((
            answer["entries"].as_array().cloned().unwrap_or_default(),
            Answer {
                journal_id: answer["journal_id"].as_str().unwrap_or("").to_string(),
                uid: answer["uid"].as_u64(),
                last_seq: answer["last_seq"].as_u64().unwrap_or(0),
            },
        )),
        Ok(answer) => Err(answer["error"]
            .as_str()
            .unwrap_or("flint refused the request")
            .to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes, or ends quietly when the reader went away (`journalctl | head`).
macro_rules! out {
    ($w:expr, $($arg:tt)*) => {
        if write!($w, $($arg)*).is_err() {
            return 0;
        }
    };
}

/// Writes one line as `opts` asks; false when the reader went away.
fn print(w: &mut impl std::io::Write, e: &Json, opts: &Options, ctx: &Context) -> bool {
    if opts.output == Output::Export {
        w.write_all(&export_entry(e, ctx)).is_ok()
    } else {
        w.write_all(format_line(e, opts.output, opts.no_hostname, ctx).as_bytes())
            .is_ok()
    }
}

/// Runs a `journalctl` command line (without the program name): prints to
/// stdout, errors to stderr; the exit code.
#[allow(clippy::too_many_lines)]
pub fn main(args: &[String]) -> u8 {
    use std::io::Write as _;
    let parsed = match parse(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let ctx = |answer: Answer, utc: bool| Context {
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        boot_id: boot_id(),
        journal_id: answer.journal_id,
        uid: answer.uid,
        tz: time_zone(utc),
    };
    let all = Query::default();
    let (opts, user) = match parsed {
        Journalctl::Help => {
            out!(w, "{HELP}");
            return 0;
        }
        Journalctl::Version => {
            out!(w, "{}\n", crate::control::systemctl::version_line());
            return 0;
        }
        Journalctl::DiskUsage => {
            out!(
                w,
                "Archived and active journals take up 0B in the file system.\n"
            );
            return 0;
        }
        Journalctl::Nothing => return 0,
        Journalctl::Field { field, .. } if field.is_empty() => {
            for f in FIELDS {
                out!(w, "{f}\n");
            }
            return 0;
        }
        Journalctl::Field { field, user } => {
            let path = crate::control::default_path(user);
            let (entries, id) = match fetch(&path, &all) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("{e}");
                    return 1;
                }
            };
            for v in field_values(&field, &entries, &ctx(id, false)) {
                out!(w, "{v}\n");
            }
            return 0;
        }
        Journalctl::ListBoots { user } => {
            let path = crate::control::default_path(user);
            // The first line and the last, not the whole store.
            let end = |oldest| {
                fetch(
                    &path,
                    &Query {
                        lines: Some(1),
                        oldest,
                        ..Query::default()
                    },
                )
            };
            let (first, last, id) = match (end(true), end(false)) {
                (Ok((first, id)), Ok((last, _))) => (first, last, id),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("{e}");
                    return 1;
                }
            };
            let c = ctx(id, false);
            let (Some(first), Some(last)) = (first.first(), last.first()) else {
                return 0;
            };
            let when = |e: &Json| {
                zoned(e["usec"].as_u64().unwrap_or(0), &c.tz)
                    .strftime("%a %Y-%m-%d %H:%M:%S %Z")
                    .to_string()
            };
            let (a, b) = (when(first), when(last));
            out!(
                w,
                "IDX BOOT ID                          {:<w$} LAST ENTRY\n  0 {} {a} {b}\n",
                "FIRST ENTRY",
                c.boot_id,
                w = a.len()
            );
            return 0;
        }
        Journalctl::Show(o) => {
            let user = o.user;
            (o, user)
        }
    };
    let path = crate::control::default_path(user);
    let mut query = opts.query.clone();
    let start = match (&opts.cursor, &opts.cursor_file) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(file)) => std::fs::read_to_string(file)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .map(|text| Cursor { text, after: true }),
        (None, None) => None,
    };
    if let Some(c) = &start {
        // The journal id first, to read the cursor against.
        let probe = Query {
            lines: Some(0),
            ..Query::default()
        };
        let id = match fetch(&path, &probe) {
            Ok((_, answer)) => answer.journal_id,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        if let Some(seq) = cursor_seq(&c.text, &id) {
            query.after = if c.after { seq } else { seq.saturating_sub(1) };
        } else if let Some(t) = c
            .text
            .split(';')
            .find_map(|p| p.strip_prefix("t="))
            .and_then(|t| u64::from_str_radix(t, 16).ok())
        {
            // A cursor of another run of flint: by its time.
            query.since = Some(if c.after { t + 1 } else { t });
        } else {
            eprintln!("Failed to seek to cursor: Invalid argument");
            return 1;
        }
    }
    let (mut entries, answer) = match fetch(&path, &query) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    // Following goes on after what the flint kept when asked (lines left
    // out by -n are not shown later), in this run of the flint.
    let (journal_id, mut follow_after) = (answer.journal_id.clone(), answer.last_seq);
    let c = ctx(answer, opts.utc);
    if opts.reverse {
        entries.reverse();
    }
    for e in &entries {
        if !print(&mut w, e, &opts, &c) {
            return 0;
        }
    }
    let last = if opts.reverse {
        entries.first()
    } else {
        entries.last()
    }
    .cloned();
    if entries.is_empty() && !opts.follow {
        if !opts.quiet {
            out!(w, "-- No entries --\n");
        }
        // As grep: a pattern that matched nothing fails.
        if query.grep.is_some() {
            return 1;
        }
    }
    if opts.follow {
        let _ = w.flush();
        query.lines = None;
        query.oldest = false;
        let mut journal_id = journal_id;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            query.after = follow_after;
            let (mut more, answer) = match fetch(&path, &query) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("{e}");
                    return 1;
                }
            };
            if answer.journal_id != journal_id {
                // Another flint answers (the one before stopped): its
                // lines from its first on.
                journal_id.clone_from(&answer.journal_id);
                query.after = 0;
                more = match fetch(&path, &query) {
                    Ok((more, _)) => more,
                    Err(e) => {
                        eprintln!("{e}");
                        return 1;
                    }
                };
            }
            follow_after = more
                .last()
                .and_then(|e| e["seq"].as_u64())
                .unwrap_or(query.after);
            for e in &more {
                if !print(&mut w, e, &opts, &c) {
                    return 0;
                }
            }
            if !more.is_empty() && w.flush().is_err() {
                return 0;
            }
        }
    }
    if let Some(e) = &last {
        let text = cursor(e, &c);
        if opts.show_cursor {
            out!(w, "-- cursor: {text}\n");
        }
        if let Some(file) = &opts.cursor_file
            && let Err(err) = std::fs::write(file, &text)
        {
            eprintln!("Failed to write new cursor to {file}: {err}");
            return 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn show(s: &str) -> Options {
        match parse(&args(s)).unwrap() {
            Journalctl::Show(o) => *o,
            other => panic!("{other:?}"),
        }
    }

    fn ctx() -> Context {
        Context {
            hostname: "myhost".into(),
            boot_id: "0123456789abcdef0123456789abcdef".into(),
            journal_id: "feed".into(),
            uid: Some(0),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    #[test]
    fn options_as_journalctl_reads_them() {
        let o = show("-u web -n 5 --no-pager");
        assert_eq!(o.query.units, ["web.service"]);
        assert_eq!(o.query.lines, Some(5));
        assert_eq!(show("-n").query.lines, Some(10));
        assert_eq!(show("-n all").query.lines, None);
        let o = show("-n +2");
        assert_eq!((o.query.lines, o.query.oldest), (Some(2), true));
        assert_eq!(show("--lines=3").query.lines, Some(3));
        assert_eq!(show("-n3").query.lines, Some(3));
        // -n does not take a word that is no number: it is a match.
        assert!(matches!(
            parse(&args("-n web")),
            Err(JournalctlError::Match(_))
        ));
        let o = show("-fu web.socket");
        assert!(o.follow);
        assert_eq!(o.query.units, ["web.socket"]);
        assert_eq!(o.query.lines, Some(10), "follow shows the last 10 first");
        assert_eq!(show("-xe").query.lines, Some(1000));
        assert_eq!(show("-e -n 2").query.lines, Some(2));
        assert_eq!(show("-p err").query.priorities, Some(0b1111));
        assert_eq!(show("-p warning..err").query.priorities, Some(0b11000));
        assert_eq!(show("-p 6..3").query.priorities, Some(0b111_1000));
        assert!(matches!(
            parse(&args("-p bogus")),
            Err(JournalctlError::Level(_))
        ));
        let o = show("-g bad");
        assert!(!o.query.case_sensitive);
        assert!(show("-g Bad").query.case_sensitive);
        assert!(!show("-g Bad --case-sensitive=no").query.case_sensitive);
        assert_eq!(show("_PID=7 _SYSTEMD_UNIT=a.service").query.pids, [7]);
        assert!(matches!(
            parse(&args("--file x.journal")),
            Err(JournalctlError::Files(_))
        ));
        assert!(matches!(
            parse(&args("-D /var/log/journal")),
            Err(JournalctlError::Files(_))
        ));
        assert!(matches!(
            parse(&args("-b -1")),
            Err(JournalctlError::Boot(_))
        ));
        assert!(show("-b -u x").query.units == ["x.service"]);
        assert_eq!(
            parse(&args("--vacuum-time 2d")).unwrap(),
            Journalctl::Nothing
        );
        assert_eq!(
            parse(&args("-F _SYSTEMD_UNIT")).unwrap(),
            Journalctl::Field {
                field: "_SYSTEMD_UNIT".into(),
                user: false
            }
        );
        assert!(matches!(
            parse(&args("--bogus")),
            Err(JournalctlError::UnknownOption(_))
        ));
        assert!(matches!(
            parse(&args("-o nope")),
            Err(JournalctlError::Output(_))
        ));
        // A value that looks like grouped flags is a value.
        assert_eq!(show("-g -error").query.grep.as_deref(), Some("-error"));
        assert_eq!(show("-fuweb").query.units, ["web.service"]);
        assert_eq!(show("-- _PID=3").query.pids, [3]);
        assert!(matches!(
            parse(&args("-f -r")),
            Err(JournalctlError::Conflict(_))
        ));
        assert!(matches!(
            parse(&args("--since=@20 --until=@10")),
            Err(JournalctlError::Conflict(_))
        ));
        assert_eq!(show("-f --no-tail").query.lines, None);
    }

    #[test]
    fn timestamps_as_systemd_parses_them() {
        let utc = jiff::tz::TimeZone::UTC;
        // 2026-12-06 08:32:06.5 UTC
        let now = 1_796_545_926_500_000;
        let p = |s: &str| parse_timestamp(s, now, &utc).unwrap();
        assert_eq!(p("now"), now);
        assert_eq!(p("today"), 1_796_515_200_000_000);
        assert_eq!(p("yesterday"), 1_796_515_200_000_000 - 86_400_000_000);
        assert_eq!(p("1 hour ago"), now - 3_600_000_000);
        assert_eq!(p("-5min"), now - 300_000_000);
        assert_eq!(p("+1s"), now + 1_000_000);
        assert_eq!(p("@1796545926.25"), 1_796_545_926_250_000);
        assert_eq!(p("2026-12-06 08:32:06"), 1_796_545_926_000_000);
        assert_eq!(p("2026-12-06 08:32"), 1_796_545_920_000_000);
        assert_eq!(p("2026-12-06"), 1_796_515_200_000_000);
        assert_eq!(p("Sun 2026-12-06 08:32:06 UTC"), 1_796_545_926_000_000);
        assert_eq!(p("08:32:06.25"), 1_796_545_926_250_000);
        assert_eq!(p("26-12-06 08:32"), 1_796_545_920_000_000);
        assert_eq!(p("2026-12-06 08:32 utc"), 1_796_545_920_000_000);
        assert_eq!(p("70-01-01 00:00:01"), 1_000_000);
        // As journalctl's short output prints a time.
        assert_eq!(p("Dec 06 08:32:06"), 1_796_545_926_000_000);
        assert_eq!(p("dec 6 08:32:06 UTC"), 1_796_545_926_000_000);
        assert!(parse_timestamp("Dec 32 08:32:06", now, &utc).is_err());
        assert!(parse_timestamp("garbage", now, &utc).is_err());
        assert!(parse_timestamp("2026-13-01", now, &utc).is_err());
    }

    #[test]
    fn lines_print_as_journalctl_prints_them() {
        // As `journalctl --file` printed the same fields (systemd 252).
        let service = json!({"seq": 3, "usec": 1_796_545_926_387_071u64, "mono": 3500, "unit": "b.service",
            "pid": 9903, "priority": 3, "ident": "sh", "transport": "stdout", "line": "bad thing"});
        let manager = json!({"seq": 1, "usec": 1_796_545_926_384_571u64, "mono": 1000, "unit": "b.service",
            "pid": 1, "priority": 6, "ident": "flint", "transport": "manager", "line": "b.service: started"});
        let context = ctx();
        let f = |o| format_line(&service, o, false, &context);
        for (output, line) in [
            (
                Output::Short,
                "Dec 06 08:32:06 myhost sh[9903]: bad thing\n",
            ),
            (
                Output::ShortIso,
                "2026-12-06T08:32:06+0000 myhost sh[9903]: bad thing\n",
            ),
            (
                Output::ShortPrecise,
                "Dec 06 08:32:06.387071 myhost sh[9903]: bad thing\n",
            ),
            (
                Output::ShortIsoPrecise,
                "2026-12-06T08:32:06.387071+0000 myhost sh[9903]: bad thing\n",
            ),
            (
                Output::ShortUnix,
                "1796545926.387071 myhost sh[9903]: bad thing\n",
            ),
            (
                Output::ShortMonotonic,
                "[    0.003500] myhost sh[9903]: bad thing\n",
            ),
            (Output::Cat, "bad thing\n"),
            (
                Output::WithUnit,
                "Sun 2026-12-06 08:32:06 UTC myhost b.service[9903]: bad thing\n",
            ),
        ] {
            assert_eq!(f(output), line, "{output:?}");
        }
        assert_eq!(
            format_line(&manager, Output::WithUnit, true, &context),
            "Sun 2026-12-06 08:32:06 UTC flint[1]: b.service: started\n"
        );
        let v = f(Output::Verbose);
        assert!(v.starts_with("Sun 2026-12-06 08:32:06.387071 UTC [s=feed;i=3;b=0123456789abcdef0123456789abcdef;m=dac;t=661f2f1c3d57f;x=0]\n"), "{v}");
        assert!(
            v.contains("\n    _SYSTEMD_UNIT=b.service\n    MESSAGE=bad thing\n"),
            "{v}"
        );
        let j: Json = serde_json::from_str(&f(Output::Json)).unwrap();
        assert_eq!(j["MESSAGE"], "bad thing");
        assert_eq!(j["PRIORITY"], "3");
        assert_eq!(j["_PID"], "9903");
        assert_eq!(j["__REALTIME_TIMESTAMP"], "1796545926387071");
        let m: Json =
            serde_json::from_str(&format_line(&manager, Output::Json, false, &context)).unwrap();
        assert_eq!(
            (m["UNIT"].as_str(), m["_SYSTEMD_UNIT"].as_str()),
            (Some("b.service"), None)
        );
        assert_eq!(cursor_seq(j["__CURSOR"].as_str().unwrap(), "feed"), Some(3));
        assert_eq!(cursor_seq(j["__CURSOR"].as_str().unwrap(), "other"), None);
    }
}
