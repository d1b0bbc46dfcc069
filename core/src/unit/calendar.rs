//! Calendar events: the `OnCalendar=` values of `.timer` units, as
//! `systemd.time(7)` describes them under "CALENDAR EVENTS".
//!
//! [`CalendarSpec::parse`] reads a specification such as
//! `Mon..Fri *-*-* 09..17/2:00 Europe/Berlin`, [`CalendarSpec::normalized`]
//! prints it the way `systemd-analyze calendar` does ("Normalized form:"), and
//! [`CalendarSpec::next_after`] finds when it elapses next. All three follow
//! systemd's `src/shared/calendarspec.c` (v252+): the same grammar and
//! limits (years 1970 to 2199), the same normalization, and the same
//! field-by-field search for the next elapse, including what it does with
//! wall-clock times that a daylight saving change skips or repeats (there it
//! leans on glibc's `mktime()`, whose choices are reproduced here).
//!
//! It is hand-written because no crate parses systemd's calendar grammar;
//! `jiff` supplies the time zone database and the civil-time arithmetic.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::{Offset, TimeZone};

/// The years a specification may name, and past which no search goes.
const MIN_YEAR: i32 = 1970;
const MAX_YEAR: i32 = 2199;
const USEC_PER_SEC: i32 = 1_000_000;
/// All seven weekday bits (bit 0 is Monday).
const ALL_WEEKDAYS: u8 = 0x7f;
/// A field holds at most this many comma-separated values, plus one.
const COMPONENTS_MAX: usize = 240;
/// The search gives up after this many steps (systemd's safety valve).
const MAX_ITERATIONS: u32 = 1000;
/// systemd computes no elapse from after 9999-12-30 23:59:59 UTC.
const USEC_FORMATTABLE_MAX: i64 = 253_402_214_399_000_000;
/// Where time zone names are looked up after `$TZDIR`: systemd's place,
/// and NixOS's (whose systemd is patched to look there).
const ZONEINFO: [&str; 2] = ["/usr/share/zoneinfo", "/etc/zoneinfo"];

/// A parsed calendar event (`OnCalendar=` value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarSpec {
    /// Bit 0 Monday .. bit 6 Sunday; 0 when any day will do.
    weekdays: u8,
    /// The values of each field, sorted; empty means `*`.
    year: Vec<Component>,
    month: Vec<Component>,
    day: Vec<Component>,
    hour: Vec<Component>,
    minute: Vec<Component>,
    /// Seconds, in microseconds.
    microsecond: Vec<Component>,
    /// `~`: the days count back from the end of the month.
    end_of_month: bool,
    zone: Zone,
}

/// Why a calendar specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Not systemd's grammar, or a value outside its field's bounds.
    #[error("invalid calendar specification {0:?}")]
    Invalid(String),
    /// A number too large for systemd to hold, or a repetition of 0.
    #[error("value out of range in calendar specification {0:?}")]
    OutOfRange(String),
    /// More than 241 comma-separated values in one field.
    #[error("too many values in one field of calendar specification {0:?}")]
    TooManyValues(String),
    /// The specification does not parse and its last word reads like a time
    /// zone that is not installed.
    #[error("unknown time zone {zone:?} in calendar specification {spec:?}")]
    UnknownTimeZone { spec: String, zone: String },
}

/// One value of a field: `start`, `start..stop`, `start/repeat` or
/// `start..stop/repeat`; `stop` is -1 when there is none. Ordered as
/// systemd sorts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Component {
    start: i32,
    stop: i32,
    repeat: i32,
}

impl Component {
    const fn at(value: i32) -> Component {
        Component {
            start: value,
            stop: -1,
            repeat: 0,
        }
    }
}

/// The clock a specification is read in.
#[derive(Debug, Clone)]
enum Zone {
    /// The system's local time zone.
    Local,
    /// Local time, but only while the local zone is on standard time
    /// (`dst: false`) or daylight saving time: the specification ended in
    /// one of the local zone's two abbreviations (`CET`, `CEST`).
    LocalAbbreviation {
        dst: bool,
        name: String,
    },
    Utc,
    /// A zone of the tz database, loaded when the specification was parsed.
    Named {
        name: String,
        tz: TimeZone,
    },
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        match (self, other) {
            (Zone::Local, Zone::Local) | (Zone::Utc, Zone::Utc) => true,
            (
                Zone::LocalAbbreviation { dst: a, name: x },
                Zone::LocalAbbreviation { dst: b, name: y },
            ) => a == b && x == y,
            (Zone::Named { name: x, .. }, Zone::Named { name: y, .. }) => x == y,
            _ => false,
        }
    }
}

impl Eq for Zone {}

/// How parsing failed, before the input is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Invalid,
    Range,
    TooMany,
}

type Parsed<T> = Result<T, Fail>;

impl CalendarSpec {
    /// Parses a calendar event as systemd does. A trailing time zone name is
    /// looked up in the tz database (`$TZDIR`, `/usr/share/zoneinfo`,
    /// `/etc/zoneinfo`) and loaded then; the abbreviations of the local
    /// zone (`CET`, `CEST` under `Europe/Berlin`) come from the system's
    /// time zone.
    pub fn parse(s: &str) -> Result<CalendarSpec, CalendarError> {
        Self::parse_with_local(s, &TimeZone::system())
    }

    /// [`Self::parse`], with `local` as the system's time zone.
    fn parse_with_local(s: &str, local: &TimeZone) -> Result<CalendarSpec, CalendarError> {
        parse_spec(s, local).map_err(|fail| match fail {
            Fail::Range => CalendarError::OutOfRange(s.to_string()),
            Fail::TooMany => CalendarError::TooManyValues(s.to_string()),
            Fail::Invalid => match unknown_zone(s) {
                Some(zone) => CalendarError::UnknownTimeZone {
                    spec: s.to_string(),
                    zone,
                },
                None => CalendarError::Invalid(s.to_string()),
            },
        })
    }

    /// The normalized form systemd prints (`systemd-analyze calendar`
    /// "Normalized form:").
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        if self.weekdays != 0 {
            format_weekdays(&mut out, self.weekdays);
            out.push(' ');
        }
        format_chain(&mut out, 4, &self.year, false);
        out.push('-');
        format_chain(&mut out, 2, &self.month, false);
        out.push(if self.end_of_month { '~' } else { '-' });
        format_chain(&mut out, 2, &self.day, false);
        out.push(' ');
        format_chain(&mut out, 2, &self.hour, false);
        out.push(':');
        format_chain(&mut out, 2, &self.minute, false);
        out.push(':');
        format_chain(&mut out, 2, &self.microsecond, true);
        match &self.zone {
            Zone::Local => {}
            Zone::Utc => out.push_str(" UTC"),
            Zone::LocalAbbreviation { name, .. } | Zone::Named { name, .. } => {
                out.push(' ');
                out.push_str(name);
            }
        }
        out
    }

    /// The first time strictly after `after` that matches, as systemd's
    /// calendar_spec_next_usec(); None when there is none. Like systemd it
    /// works in whole microseconds since the epoch: nothing before 1970
    /// matches, and the search stops at the end of 2199 or after 1000 steps.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self.zone {
            Zone::Local | Zone::LocalAbbreviation { .. } => {
                self.next_with_local(after, &TimeZone::system())
            }
            Zone::Utc | Zone::Named { .. } => self.next_with_local(after, &TimeZone::UTC),
        }
    }

    /// [`Self::next_after`], with `local` as the system's time zone.
    #[cfg(test)]
    fn next_after_in(&self, after: Timestamp, local: &TimeZone) -> Option<Timestamp> {
        self.next_with_local(after, local)
    }

    fn next_with_local(&self, after: Timestamp, local: &TimeZone) -> Option<Timestamp> {
        let mut clock = match &self.zone {
            Zone::Utc => Clock::new(None),
            Zone::Named { tz, .. } => Clock::new(Some(tz)),
            Zone::Local | Zone::LocalAbbreviation { .. } => Clock::new(Some(local)),
        };
        // Microseconds, rounded down; an instant before the epoch searches
        // from the epoch, where systemd's unsigned clock starts.
        let usec = i64::try_from(after.as_nanosecond().div_euclid(1000))
            .ok()?
            .max(-1);
        if usec > USEC_FORMATTABLE_MAX {
            return None;
        }
        let usec = usec + 1;
        let start = clock.breakdown(usec.div_euclid(1_000_000))?.0;
        let sub = i32::try_from(usec.rem_euclid(1_000_000)).ok()?;
        let (mut tm, sub) = self.find_next(&mut clock, start, sub)?;
        let t = clock.mktime(&mut tm).filter(|&t| t >= 0)?;
        Timestamp::from_microsecond(t.checked_mul(1_000_000)? + i64::from(sub)).ok()
    }

    /// The isdst hint handed to `mktime()`: -1 unless the specification
    /// named one of the local zone's abbreviations.
    fn dst_hint(&self) -> i32 {
        match self.zone {
            Zone::LocalAbbreviation { dst, .. } => i32::from(dst),
            _ => -1,
        }
    }

    /// systemd's find_next(): starting at `c` (plus `usec` microseconds),
    /// fit the fields from the year down to the second, restarting from a
    /// normalized time whenever a field overflows or `mktime()` moves the
    /// time. Returns the broken-down match and its microseconds.
    fn find_next(&self, clock: &mut Clock<'_>, start: Tm, start_usec: i32) -> Option<(Tm, i32)> {
        let (mut c, mut usec) = (start, start_usec);
        // Set once a match lands before the start (a wall-clock time that
        // normalizes backward, as with Europe/Dublin's negative DST): from
        // then on mktime() keeps the isdst it found.
        let mut invalidate_dst = false;
        for _ in 0..MAX_ITERATIONS {
            // Normalize the current date.
            let _ = clock.mktime(&mut c);
            if !invalidate_dst {
                c.isdst = self.dst_hint();
            }

            let mut v = c.year;
            let r = self.find_matching(clock, &self.year, false, &c, &mut v);
            c.year = v;
            match r {
                Err(()) => return None,
                Ok(true) => {
                    c.mon = 0;
                    c.mday = 1;
                    c.reset_time(&mut usec);
                }
                Ok(false) => {}
            }
            if within_bounds(clock, &mut c) != Ok(true) {
                return None;
            }

            let mut v = c.mon + 1;
            let r = self.find_matching(clock, &self.month, false, &c, &mut v);
            c.mon = v - 1;
            if r == Ok(true) {
                c.mday = 1;
                c.reset_time(&mut usec);
            }
            match r.and_then(|_| within_bounds(clock, &mut c)) {
                Err(()) => {
                    c.year += 1;
                    c.mon = 0;
                    c.mday = 1;
                    c.reset_time(&mut usec);
                    continue;
                }
                Ok(false) => continue,
                Ok(true) => {}
            }

            let mut v = c.mday;
            let r = self.find_matching(clock, &self.day, true, &c, &mut v);
            c.mday = v;
            if r == Ok(true) {
                c.reset_time(&mut usec);
            }
            match r.and_then(|_| within_bounds(clock, &mut c)) {
                Err(()) => {
                    c.mon += 1;
                    c.mday = 1;
                    c.reset_time(&mut usec);
                    continue;
                }
                Ok(false) => continue,
                Ok(true) => {}
            }

            if !self.matches_weekday(clock, &c) {
                c.mday += 1;
                c.reset_time(&mut usec);
                continue;
            }

            let mut v = c.hour;
            let r = self.find_matching(clock, &self.hour, false, &c, &mut v);
            c.hour = v;
            if r == Ok(true) {
                c.min = 0;
                c.sec = 0;
                usec = 0;
            }
            match r.and_then(|_| within_bounds(clock, &mut c)) {
                Err(()) => {
                    c.mday += 1;
                    c.reset_time(&mut usec);
                    continue;
                }
                // The hour set may be missing around a DST change: start
                // over from the normalized time.
                Ok(false) => continue,
                Ok(true) => {}
            }

            let mut v = c.min;
            let r = self.find_matching(clock, &self.minute, false, &c, &mut v);
            c.min = v;
            if r == Ok(true) {
                c.sec = 0;
                usec = 0;
            }
            match r.and_then(|_| within_bounds(clock, &mut c)) {
                Err(()) => {
                    c.hour += 1;
                    c.min = 0;
                    c.sec = 0;
                    usec = 0;
                    continue;
                }
                Ok(false) => continue,
                Ok(true) => {}
            }

            let mut v = c.sec * USEC_PER_SEC + usec;
            let r = self.find_matching(clock, &self.microsecond, false, &c, &mut v);
            usec = v % USEC_PER_SEC;
            c.sec = v / USEC_PER_SEC;
            match r.and_then(|_| within_bounds(clock, &mut c)) {
                Err(()) => {
                    c.min += 1;
                    c.sec = 0;
                    usec = 0;
                    continue;
                }
                Ok(false) => continue,
                Ok(true) => {}
            }
            // Stuck before the start: step on and let mktime() settle the
            // DST transition.
            if start.wall_cmp(&c).then(start_usec.cmp(&(usec + 1))).is_ge() {
                invalidate_dst = true;
                c.hour += 1;
                continue;
            }
            return Some((c, usec));
        }
        None
    }

    /// systemd's find_matching_component(): the earliest value of `chain`
    /// at or after `*val`. `Ok(true)` when `*val` changed, `Err` when the
    /// field has no such value; an empty chain (`*`) matches anything.
    fn find_matching(
        &self,
        clock: &mut Clock<'_>,
        chain: &[Component],
        is_day: bool,
        tm: &Tm,
        val: &mut i32,
    ) -> Result<bool, ()> {
        if chain.is_empty() {
            return Ok(false);
        }
        let end_of_month = self.end_of_month && is_day;
        let mut best: Option<i64> = None;
        let cur = i64::from(*val);
        for c in chain {
            let (mut start, mut stop) = (c.start, c.stop);
            if end_of_month {
                // `~N` counts back from the month's last day, so the range
                // turns around.
                start = end_of_month_day(clock, tm, c.start);
                stop = end_of_month_day(clock, tm, c.stop);
                if stop > 0 {
                    std::mem::swap(&mut start, &mut stop);
                }
            }
            let start = i64::from(start);
            if start >= cur {
                if best.is_none_or(|d| start < d) {
                    best = Some(start);
                }
            } else if c.repeat > 0 {
                let repeat = i64::from(c.repeat);
                let k = start + (cur - start + repeat - 1) / repeat * repeat;
                if best.is_none_or(|d| k < d) && (stop < 0 || k <= i64::from(stop)) {
                    best = Some(k);
                }
            }
        }
        let d = i32::try_from(best.ok_or(())?).map_err(|_| ())?;
        let changed = *val != d;
        *val = d;
        Ok(changed)
    }

    fn matches_weekday(&self, clock: &mut Clock<'_>, tm: &Tm) -> bool {
        if self.weekdays == 0 {
            return true;
        }
        let mut t = *tm;
        if clock.mktime(&mut t).is_none_or(|s| s < 0) {
            return false;
        }
        t.weekday().is_some_and(|k| self.weekdays & (1 << k) != 0)
    }
}

impl fmt::Display for CalendarSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

impl FromStr for CalendarSpec {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<CalendarSpec, CalendarError> {
        CalendarSpec::parse(s)
    }
}

// ---------------------------------------------------------------------------
// Parsing

/// A specification as read, before systemd's normalization.
#[derive(Default)]
struct Raw {
    weekdays: u8,
    year: Vec<Component>,
    month: Vec<Component>,
    day: Vec<Component>,
    hour: Vec<Component>,
    minute: Vec<Component>,
    microsecond: Vec<Component>,
    end_of_month: bool,
    utc: bool,
    named: Option<(String, TimeZone)>,
    abbreviation: Option<(bool, String)>,
}

fn parse_spec(input: &str, local: &TimeZone) -> Parsed<CalendarSpec> {
    if input.contains('\0') {
        return Err(Fail::Invalid);
    }
    let mut raw = Raw::default();
    let rest = split_zone(input, local, &mut raw);
    if rest.is_empty() {
        return Err(Fail::Invalid);
    }
    if !shorthand(rest, &mut raw) {
        let mut cur = Cursor {
            s: rest.as_bytes(),
            pos: 0,
        };
        parse_weekdays(&mut cur, &mut raw.weekdays)?;
        if !parse_date(&mut cur, &mut raw)? {
            parse_time(&mut cur, &mut raw)?;
        }
        if !cur.at_end() {
            return Err(Fail::Invalid);
        }
    }
    let spec = normalize(raw);
    if !spec.valid() {
        return Err(Fail::Invalid);
    }
    Ok(spec)
}

/// Takes the time zone off the end of `input`: ` UTC` (any case), one of
/// the local zone's two abbreviations, or a tz database name after the last
/// space, in that order, as systemd tries them. Returns the rest.
fn split_zone<'a>(input: &'a str, local: &TimeZone, raw: &mut Raw) -> &'a str {
    if let Some(rest) = strip_suffix_ignore_case(input, " UTC") {
        raw.utc = true;
        return rest;
    }
    let names = local_abbreviations(local);
    for (dst, name) in [false, true].into_iter().zip(&names) {
        if name.is_empty() {
            continue;
        }
        if let Some(rest) = strip_suffix_ignore_case(input, name)
            && let Some(rest) = rest.strip_suffix(' ')
        {
            raw.abbreviation = Some((dst, name.clone()));
            return rest;
        }
    }
    if let Some((rest, name)) = input.rsplit_once(' ')
        && let Some(tz) = load_zone(name)
    {
        raw.named = Some((name.to_string(), tz));
        return rest;
    }
    input
}

/// The shorthands (`daily`, ...), matched in any case; false when `s` is
/// none of them.
fn shorthand(s: &str, raw: &mut Raw) -> bool {
    let is = |names: &[&str]| names.iter().any(|n| s.eq_ignore_ascii_case(n));
    let midnight = |raw: &mut Raw| {
        raw.hour = vec![Component::at(0)];
        raw.minute = vec![Component::at(0)];
        raw.microsecond = vec![Component::at(0)];
    };
    if is(&["minutely"]) {
        raw.microsecond = vec![Component::at(0)];
    } else if is(&["hourly"]) {
        raw.minute = vec![Component::at(0)];
        raw.microsecond = vec![Component::at(0)];
    } else if is(&["daily"]) {
        midnight(raw);
    } else if is(&["monthly"]) {
        raw.day = vec![Component::at(1)];
        midnight(raw);
    } else if is(&["annually", "yearly", "anually"]) {
        raw.month = vec![Component::at(1)];
        raw.day = vec![Component::at(1)];
        midnight(raw);
    } else if is(&["weekly"]) {
        raw.weekdays = 1;
        midnight(raw);
    } else if is(&["quarterly"]) {
        raw.month = [1, 4, 7, 10].map(Component::at).to_vec();
        raw.day = vec![Component::at(1)];
        midnight(raw);
    } else if is(&["biannually", "bi-annually", "semiannually", "semi-annually"]) {
        raw.month = vec![Component::at(1), Component::at(7)];
        raw.day = vec![Component::at(1)];
        midnight(raw);
    } else {
        return false;
    }
    true
}

/// A position in the text; reads as 0 past the end, like the C string
/// systemd walks.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn at(&self, i: usize) -> u8 {
        self.s.get(self.pos + i).copied().unwrap_or(0)
    }
    fn peek(&self) -> u8 {
        self.at(0)
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn skip_spaces(&mut self) {
        while self.peek() == b' ' {
            self.pos += 1;
        }
    }
    fn rest(&self) -> &[u8] {
        self.s.get(self.pos..).unwrap_or_default()
    }
}

/// Weekday names, long before short as systemd tries them.
const WEEKDAYS: [(&str, u8); 14] = [
    ("monday", 0),
    ("mon", 0),
    ("tuesday", 1),
    ("tue", 1),
    ("wednesday", 2),
    ("wed", 2),
    ("thursday", 3),
    ("thu", 3),
    ("friday", 4),
    ("fri", 4),
    ("saturday", 5),
    ("sat", 5),
    ("sunday", 6),
    ("sun", 6),
];

/// The optional weekday list: `Mon,Wed`, `Mon..Fri`, `Mon-Fri` (the old
/// range syntax), any case, a trailing comma allowed, ranges not wrapping
/// past Sunday.
fn parse_weekdays(cur: &mut Cursor<'_>, bits: &mut u8) -> Parsed<()> {
    let mut range_from: Option<u8> = None;
    let mut first = true;
    loop {
        let Some((len, day)) = WEEKDAYS.iter().find_map(|&(name, day)| {
            let rest = cur.rest();
            (rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name.as_bytes()))
                .then_some((name.len(), day))
        }) else {
            // No weekday here: the date follows (unless a list was begun).
            return if first { Ok(()) } else { Err(Fail::Invalid) };
        };
        if !matches!(cur.at(len), 0 | b'-' | b'.' | b',' | b' ') {
            return Err(Fail::Invalid);
        }
        *bits |= 1 << day;
        if let Some(from) = range_from {
            if from > day {
                return Err(Fail::Invalid);
            }
            for d in from + 1..day {
                *bits |= 1 << d;
            }
        }
        cur.pos += len;
        match cur.peek() {
            0 => return Ok(()),
            b' ' => {
                cur.skip_spaces();
                return Ok(());
            }
            b'.' => {
                if range_from.is_some() || cur.at(1) != b'.' {
                    return Err(Fail::Invalid);
                }
                range_from = Some(day);
                cur.pos += 2;
            }
            b'-' => {
                if range_from.is_some() {
                    return Err(Fail::Invalid);
                }
                range_from = Some(day);
                cur.pos += 1;
            }
            _ => {
                // ','
                range_from = None;
                cur.pos += 1;
            }
        }
        // A trailing comma is fine, an open range is not.
        if matches!(cur.peek(), 0 | b' ') {
            cur.skip_spaces();
            return if range_from.is_none() {
                Ok(())
            } else {
                Err(Fail::Invalid)
            };
        }
        first = false;
    }
}

/// The date, `[YEAR-]MONTH-DAY` (`~` before the day counts from the end of
/// the month), or `@SECONDS`. Ok(true) for `@SECONDS`, which takes no time
/// after it. Leaves the cursor where it was when the text turns out to be
/// a time.
fn parse_date(cur: &mut Cursor<'_>, raw: &mut Raw) -> Parsed<bool> {
    if cur.at_end() {
        return Ok(false);
    }
    if cur.peek() == b'@' {
        cur.pos += 1;
        let t = parse_unix_seconds(cur)?;
        from_unix_seconds(t, raw)?;
        return Ok(true);
    }
    let start = cur.pos;
    let first = parse_chain(cur, false)?;
    // Already the end, or a ':': this was a time, not a date.
    if matches!(cur.peek(), 0 | b':') {
        cur.pos = start;
        return Ok(false);
    }
    match cur.peek() {
        b'~' => raw.end_of_month = true,
        b'-' => {}
        _ => return Err(Fail::Invalid),
    }
    cur.pos += 1;
    let second = parse_chain(cur, false)?;
    if matches!(cur.peek(), 0 | b' ') {
        cur.skip_spaces();
        raw.month = first;
        raw.day = second;
        return Ok(false);
    }
    if raw.end_of_month {
        return Err(Fail::Invalid);
    }
    match cur.peek() {
        b'~' => raw.end_of_month = true,
        b'-' => {}
        _ => return Err(Fail::Invalid),
    }
    cur.pos += 1;
    let third = parse_chain(cur, false)?;
    if !matches!(cur.peek(), 0 | b' ') {
        return Err(Fail::Invalid);
    }
    cur.skip_spaces();
    raw.year = first;
    raw.month = second;
    raw.day = third;
    Ok(false)
}

/// The number after `@`, read as C's strtoul() reads it: leading white
/// space and a sign allowed, a negative number wrapping around.
fn parse_unix_seconds(cur: &mut Cursor<'_>) -> Parsed<i64> {
    while matches!(cur.peek(), b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        cur.pos += 1;
    }
    let negative = match cur.peek() {
        b'-' => {
            cur.pos += 1;
            true
        }
        b'+' => {
            cur.pos += 1;
            false
        }
        _ => false,
    };
    if !cur.peek().is_ascii_digit() {
        return Err(Fail::Invalid);
    }
    let value = parse_digits(cur)?;
    let value = if negative {
        value.wrapping_neg()
    } else {
        value
    };
    // time_t takes the bits as they are.
    Ok(i64::from_ne_bytes(value.to_ne_bytes()))
}

/// `@SECONDS`: that second, in UTC.
fn from_unix_seconds(t: i64, raw: &mut Raw) -> Parsed<()> {
    let Some(tm) = Timestamp::from_second(t)
        .ok()
        .map(|ts| Tm::from_datetime(Offset::UTC.to_datetime(ts), 0))
    else {
        // Beyond what a broken-down time holds (year 2^31): out of range;
        // any nearer year is refused by the year's bounds.
        let years = t / 31_556_952;
        return Err(if years.abs() > i64::from(i32::MAX) {
            Fail::Range
        } else {
            Fail::Invalid
        });
    };
    raw.year = vec![Component::at(tm.year)];
    raw.month = vec![Component::at(tm.mon + 1)];
    raw.day = vec![Component::at(tm.mday)];
    raw.hour = vec![Component::at(tm.hour)];
    raw.minute = vec![Component::at(tm.min)];
    raw.microsecond = vec![Component::at(tm.sec * USEC_PER_SEC)];
    raw.utc = true;
    Ok(())
}

/// `HOUR:MINUTE[:SECOND]`, or midnight when the text is over.
fn parse_time(cur: &mut Cursor<'_>, raw: &mut Raw) -> Parsed<()> {
    if cur.at_end() {
        raw.hour = vec![Component::at(0)];
        raw.minute = vec![Component::at(0)];
        raw.microsecond = vec![Component::at(0)];
        return Ok(());
    }
    let hour = parse_chain(cur, false)?;
    if cur.peek() != b':' {
        return Err(Fail::Invalid);
    }
    cur.pos += 1;
    let minute = parse_chain(cur, false)?;
    let second = if cur.at_end() {
        vec![Component::at(0)]
    } else {
        if cur.peek() != b':' {
            return Err(Fail::Invalid);
        }
        cur.pos += 1;
        let second = parse_chain(cur, true)?;
        if !cur.at_end() {
            return Err(Fail::Invalid);
        }
        second
    };
    raw.hour = hour;
    raw.minute = minute;
    raw.microsecond = second;
    Ok(())
}

/// One field: `*` or a comma-separated list of values. Seconds (`usec`)
/// take fractions and count in microseconds; their `*` is "every second".
fn parse_chain(cur: &mut Cursor<'_>, usec: bool) -> Parsed<Vec<Component>> {
    if cur.peek() == b'*' {
        cur.pos += 1;
        return Ok(if usec {
            vec![Component {
                start: 0,
                stop: -1,
                repeat: USEC_PER_SEC,
            }]
        } else {
            Vec::new()
        });
    }
    let mut chain = Vec::new();
    loop {
        if chain.len() > COMPONENTS_MAX {
            return Err(Fail::TooMany);
        }
        let start = parse_decimal(cur, usec)?;
        let mut stop = -1;
        let mut repeat = 0;
        if cur.peek() == b'.' && cur.at(1) == b'.' {
            cur.pos += 2;
            stop = parse_decimal(cur, usec)?;
            repeat = if usec { USEC_PER_SEC } else { 1 };
        }
        if cur.peek() == b'/' {
            cur.pos += 1;
            repeat = parse_decimal(cur, usec)?;
            if repeat == 0 {
                return Err(Fail::Range);
            }
        } else {
            if start > i32::MAX - repeat {
                return Err(Fail::Range);
            }
            // A range of seconds without a repetition steps by a second, so
            // it must span one.
            if usec && stop >= 0 && start + repeat > stop {
                return Err(Fail::Invalid);
            }
        }
        if !matches!(cur.peek(), 0 | b' ' | b',' | b'-' | b'~' | b':') {
            return Err(Fail::Invalid);
        }
        chain.push(Component {
            start,
            stop,
            repeat,
        });
        if cur.peek() != b',' {
            return Ok(chain);
        }
        cur.pos += 1;
    }
}

/// A decimal number; for seconds with an optional fraction (one `.`; two
/// are a range), in microseconds, rounded at the seventh digit.
fn parse_decimal(cur: &mut Cursor<'_>, usec: bool) -> Parsed<i32> {
    if !cur.peek().is_ascii_digit() {
        return Err(Fail::Invalid);
    }
    let mut value = parse_digits(cur)?;
    if usec {
        value = value
            .checked_mul(u64::from(USEC_PER_SEC.unsigned_abs()))
            .ok_or(Fail::Range)?;
        if cur.peek() == b'.' && cur.at(1) != b'.' {
            cur.pos += 1;
            let fraction = parse_fraction(cur)?;
            value = value.checked_add(fraction).ok_or(Fail::Range)?;
        }
    }
    i32::try_from(value).map_err(|_| Fail::Range)
}

/// Digits as an unsigned 64-bit number (all of them are consumed even when
/// it overflows, which is an error).
fn parse_digits(cur: &mut Cursor<'_>) -> Parsed<u64> {
    let mut value: Option<u64> = Some(0);
    while cur.peek().is_ascii_digit() {
        let d = u64::from(cur.peek() - b'0');
        value = value
            .and_then(|v| v.checked_mul(10))
            .and_then(|v| v.checked_add(d));
        cur.pos += 1;
    }
    value.ok_or(Fail::Range)
}

/// Six digits of fraction (padded with zeros), the seventh rounding, any
/// more ignored; at least one digit.
fn parse_fraction(cur: &mut Cursor<'_>) -> Parsed<u64> {
    let mut value = 0;
    for i in 0..6 {
        let c = cur.peek();
        if !c.is_ascii_digit() {
            if i == 0 {
                return Err(Fail::Invalid);
            }
            value *= 10_u64.pow(6 - i);
            break;
        }
        value = value * 10 + u64::from(c - b'0');
        cur.pos += 1;
    }
    if matches!(cur.peek(), b'5'..=b'9') {
        value += 1;
    }
    while cur.peek().is_ascii_digit() {
        cur.pos += 1;
    }
    Ok(value)
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let at = s.len().checked_sub(suffix.len())?;
    let tail = s.as_bytes().get(at..)?;
    if tail.eq_ignore_ascii_case(suffix.as_bytes()) {
        s.get(..at)
    } else {
        None
    }
}

/// The two abbreviations glibc's tzset() puts in `tzname` for `tz`, as a
/// fresh process (`systemd-analyze`) has them: those of the last
/// standard-time and the last daylight-saving-time transitions in its tz
/// file (whose transitions run to 2037); the standard one for both when the
/// zone never observed daylight saving time.
fn local_abbreviations(tz: &TimeZone) -> [String; 2] {
    let mut names: [Option<String>; 2] = [None, None];
    if let Ok(end) = Timestamp::from_second(2_147_483_648) {
        for transition in tz.preceding(end) {
            let i = usize::from(transition.dst().is_dst());
            if names[i].is_none() {
                names[i] = Some(transition.abbreviation().to_string());
                if names[1 - i].is_some() {
                    break;
                }
            }
        }
        if names[0].is_none() {
            names[0] = Some(tz.to_offset_info(end).abbreviation().to_string());
        }
    }
    let [standard, daylight] = names;
    let standard = standard.unwrap_or_default();
    let daylight = daylight.unwrap_or_else(|| standard.clone());
    [standard, daylight]
}

/// Whether `name` has the shape systemd accepts for a time zone name:
/// ASCII letters, digits, `-_+/`, no leading, trailing or doubled `/`.
fn zone_name_shaped(name: &str) -> bool {
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return false;
    }
    name.len() < 4096
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/'))
}

/// The time zone `name` as systemd's timezone_is_valid() accepts one:
/// `UTC`, or a regular file in TZif format under the zoneinfo directory
/// (`$TZDIR`, `/usr/share/zoneinfo` or `/etc/zoneinfo`, the first that has
/// the name; the name's case counts).
fn load_zone(name: &str) -> Option<TimeZone> {
    if name == "UTC" {
        return Some(TimeZone::UTC);
    }
    if !zone_name_shaped(name) {
        return None;
    }
    let tzdir = std::env::var_os("TZDIR").map(std::path::PathBuf::from);
    let mut dirs = tzdir
        .into_iter()
        .chain(ZONEINFO.iter().map(std::path::PathBuf::from));
    let mut file = dirs.find_map(|d| std::fs::File::open(d.join(name)).ok())?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut data = Vec::new();
    file.read_to_end(&mut data).ok()?;
    if !data.starts_with(b"TZif") {
        return None;
    }
    TimeZone::tzif(name, &data).ok()
}

/// For the error message: the last word of a specification that failed,
/// when it reads like a time zone name that is not installed.
fn unknown_zone(s: &str) -> Option<String> {
    let (_, last) = s.rsplit_once(' ')?;
    (zone_name_shaped(last)
        && last.bytes().any(|b| b.is_ascii_alphabetic())
        && !last.eq_ignore_ascii_case("UTC")
        && load_zone(last).is_none())
    .then(|| last.to_string())
}

// ---------------------------------------------------------------------------
// Normalization and validation

/// systemd's calendar_spec_normalize(): two-digit years, sorted and
/// deduplicated fields, ranges trimmed to their repetitions.
fn normalize(raw: Raw) -> CalendarSpec {
    let zone = if raw.utc {
        Zone::Utc
    } else if let Some((name, tz)) = raw.named {
        if name == "UTC" {
            Zone::Utc
        } else {
            Zone::Named { name, tz }
        }
    } else if let Some((dst, name)) = raw.abbreviation {
        Zone::LocalAbbreviation { dst, name }
    } else {
        Zone::Local
    };
    let weekdays = if raw.weekdays >= ALL_WEEKDAYS {
        0
    } else {
        raw.weekdays
    };
    let mut year = raw.year;
    // 12 is 2012, 89 is 1989.
    for c in &mut year {
        for v in [&mut c.start, &mut c.stop] {
            if (0..70).contains(v) {
                *v += 2000;
            } else if (70..100).contains(v) {
                *v += 1900;
            }
        }
    }
    CalendarSpec {
        weekdays,
        year: normalize_chain(year),
        month: normalize_chain(raw.month),
        end_of_month: raw.end_of_month && !raw.day.is_empty(),
        day: normalize_chain(raw.day),
        hour: normalize_chain(raw.hour),
        minute: normalize_chain(raw.minute),
        microsecond: normalize_chain(raw.microsecond),
        zone,
    }
}

fn normalize_chain(mut chain: Vec<Component>) -> Vec<Component> {
    for c in &mut chain {
        // A range ends on its last repetition.
        if c.stop > c.start && c.repeat > 0 {
            c.stop -= (c.stop - c.start) % c.repeat;
        }
        // A repetition that never fires, or an empty range, is one value.
        if (c.stop > c.start && c.repeat > 0 && c.start + c.repeat > c.stop) || c.start == c.stop {
            c.repeat = 0;
            c.stop = -1;
        }
    }
    chain.sort_unstable();
    chain.dedup();
    chain
}

impl CalendarSpec {
    /// systemd's calendar_spec_valid().
    fn valid(&self) -> bool {
        chain_valid(&self.year, MIN_YEAR, MAX_YEAR, false)
            && chain_valid(&self.month, 1, 12, false)
            && chain_valid(&self.day, 1, 31, self.end_of_month)
            && chain_valid(&self.hour, 0, 23, false)
            && chain_valid(&self.minute, 0, 59, false)
            && chain_valid(&self.microsecond, 0, 60 * USEC_PER_SEC - 1, false)
    }
}

fn chain_valid(chain: &[Component], from: i32, mut to: i32, end_of_month: bool) -> bool {
    for c in chain {
        // `~` days stay 28 from the end of the month. (systemd lowers the
        // bound again for each further value of the list: `~1,28` is
        // refused while `~28` is not.)
        if end_of_month {
            to -= 3;
        }
        if c.start < from || c.start > to || c.repeat > to - from {
            return false;
        }
        // A repetition must fire at least once within the range.
        if c.stop >= 0 {
            if c.stop < from || c.stop > to || c.start + c.repeat > c.stop {
                return false;
            }
        } else if end_of_month {
            if c.start - c.repeat < from {
                return false;
            }
        } else if c.start + c.repeat > to {
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------
// Formatting

fn format_weekdays(out: &mut String, bits: u8) {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    // Runs of three or more days fold into `a..b`; two stay `a,b`.
    let mut run_start: Option<usize> = None;
    let mut need_comma = false;
    let close = |out: &mut String, from: usize, x: usize| {
        if x > from + 1 {
            out.push_str(if x > from + 2 { ".." } else { "," });
            out.push_str(DAYS[x - 1]);
        }
    };
    for (x, day) in DAYS.iter().enumerate() {
        if bits & (1 << x) != 0 {
            if run_start.is_none() {
                if need_comma {
                    out.push(',');
                }
                need_comma = true;
                out.push_str(day);
                run_start = Some(x);
            }
        } else if let Some(from) = run_start.take() {
            close(out, from, x);
        }
    }
    if let Some(from) = run_start {
        close(out, from, DAYS.len());
    }
}

fn format_chain(out: &mut String, width: usize, chain: &[Component], usec: bool) {
    use std::fmt::Write as _;
    let d = if usec { USEC_PER_SEC } else { 1 };
    // `*` when the field is open, or (for seconds) one value is "every
    // second".
    if chain.is_empty()
        || (usec
            && chain
                .iter()
                .any(|c| c.start == 0 && c.stop < 0 && c.repeat == USEC_PER_SEC))
    {
        out.push('*');
        return;
    }
    for (i, c) in chain.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{:0width$}", c.start / d);
        if c.start % d > 0 {
            let _ = write!(out, ".{:06}", c.start % d);
        }
        if c.stop > 0 {
            let _ = write!(out, "..{:0width$}", c.stop / d);
        }
        if c.stop % d > 0 {
            let _ = write!(out, ".{:06}", c.stop % d);
        }
        // A range's implied step of one is not printed.
        if c.repeat > 0 && !(c.stop > 0 && c.repeat == d) {
            let _ = write!(out, "/{}", c.repeat / d);
        }
        if c.repeat % d > 0 {
            let _ = write!(out, ".{:06}", c.repeat % d);
        }
    }
}

// ---------------------------------------------------------------------------
// The clock: broken-down time and mktime()

/// A broken-down time as C's `struct tm` holds it: fields may be out of
/// range until normalized; `mon` counts from 0; `isdst` is -1 (unknown),
/// 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tm {
    year: i32,
    mon: i32,
    mday: i32,
    hour: i32,
    min: i32,
    sec: i32,
    isdst: i32,
}

impl Tm {
    fn from_datetime(dt: jiff::civil::DateTime, isdst: i32) -> Tm {
        Tm {
            year: dt.year().into(),
            mon: i32::from(dt.month()) - 1,
            mday: dt.day().into(),
            hour: dt.hour().into(),
            min: dt.minute().into(),
            sec: dt.second().into(),
            isdst,
        }
    }

    /// Compares the wall-clock fields, year down to second.
    fn wall_cmp(&self, other: &Tm) -> std::cmp::Ordering {
        (
            self.year, self.mon, self.mday, self.hour, self.min, self.sec,
        )
            .cmp(&(
                other.year, other.mon, other.mday, other.hour, other.min, other.sec,
            ))
    }

    fn reset_time(&mut self, usec: &mut i32) {
        self.hour = 0;
        self.min = 0;
        self.sec = 0;
        *usec = 0;
    }

    /// Seconds since 1970-01-01 00:00 of this wall-clock time, read as if
    /// it were UTC, with out-of-range fields carried over (as mktime() does).
    fn civil_seconds(&self) -> Option<i64> {
        let year = i64::from(self.year) + i64::from(self.mon.div_euclid(12));
        let month = self.mon.rem_euclid(12) + 1;
        let first = Date::new(i16::try_from(year).ok()?, i8::try_from(month).ok()?, 1).ok()?;
        let base = Offset::UTC
            .to_timestamp(first.to_datetime(Time::midnight()))
            .ok()?
            .as_second();
        Some(
            base + (i64::from(self.mday) - 1) * 86_400
                + i64::from(self.hour) * 3600
                + i64::from(self.min) * 60
                + i64::from(self.sec),
        )
    }

    /// 0 for Monday .. 6 for Sunday, of a normalized time.
    fn weekday(&self) -> Option<i8> {
        let date = Date::new(
            i16::try_from(self.year).ok()?,
            i8::try_from(self.mon + 1).ok()?,
            i8::try_from(self.mday).ok()?,
        )
        .ok()?;
        Some(date.weekday().to_monday_zero_offset())
    }
}

/// The clock systemd searches in: UTC (timegm/gmtime) or a time zone
/// (mktime/localtime). `guess` is glibc's memory of the offset mktime()
/// found last, which decides between the two readings of a repeated
/// wall-clock time.
struct Clock<'a> {
    tz: Option<&'a TimeZone>,
    guess: i64,
}

/// How far apart glibc's mktime() probes when it looks for a time with the
/// requested isdst, and the span it searches (glibc 2.36).
const PROBE_STRIDE: i64 = 601_200;
const PROBE_BOUND: i64 = 457_243_209 / 2 + PROBE_STRIDE;

/// glibc's isdst_differ().
fn isdst_differ(a: i32, b: i32) -> bool {
    (a == 0) != (b == 0) && a >= 0 && b >= 0
}

impl<'a> Clock<'a> {
    fn new(tz: Option<&'a TimeZone>) -> Clock<'a> {
        Clock { tz, guess: 0 }
    }

    /// localtime_r()/gmtime_r(): the broken-down time of `t` and its UTC
    /// offset in seconds.
    fn breakdown(&self, t: i64) -> Option<(Tm, i64)> {
        let ts = Timestamp::from_second(t).ok()?;
        let (offset, isdst) = match self.tz {
            None => (Offset::UTC, 0),
            Some(tz) => {
                let info = tz.to_offset_info(ts);
                (info.offset(), i32::from(info.dst().is_dst()))
            }
        };
        Some((
            Tm::from_datetime(offset.to_datetime(ts), isdst),
            i64::from(offset.seconds()),
        ))
    }

    /// mktime()/timegm(): the time `tm` names, with `tm` normalized to it.
    /// None (and `tm` untouched) when it cannot be computed.
    ///
    /// For a zone this is glibc's algorithm: start from the last offset
    /// found, correct until the local time matches. A wall-clock time
    /// skipped by a DST change makes it oscillate; it then settles on one
    /// side, preferring DST unless `isdst` asks otherwise. A repeated time
    /// takes the reading the start guess leads to, then `isdst` (when 0 or
    /// 1) picks the reading with that flag.
    fn mktime(&mut self, tm: &mut Tm) -> Option<i64> {
        let wall = tm.civil_seconds()?;
        if self.tz.is_none() {
            *tm = self.breakdown(wall)?.0;
            return Some(wall);
        }
        let isdst = tm.isdst;
        let t0 = wall + self.guess;
        let (mut t, mut t1, mut t2) = (t0, t0, t0);
        let mut dst2 = 0;
        let mut probes = 6;
        let (mut found, converged) = loop {
            let (lt, offset) = self.breakdown(t)?;
            let dt = wall - (t + offset);
            if dt == 0 {
                break (lt, true);
            }
            let oscillating = t == t1
                && t != t2
                && if isdst < 0 {
                    dst2 <= i32::from(lt.isdst != 0)
                } else {
                    (isdst != 0) != (lt.isdst != 0)
                };
            if oscillating {
                break (lt, false);
            }
            probes -= 1;
            if probes == 0 {
                return None;
            }
            t1 = t2;
            t2 = t;
            t += dt;
            dst2 = i32::from(lt.isdst != 0);
        };
        if converged && isdst_differ(isdst, found.isdst) {
            // Use the offset of the nearest time that has the requested
            // isdst; failing that, assume DST is one hour ahead.
            let dst_difference = i64::from(isdst == 0) - i64::from(found.isdst == 0);
            let mut hit = None;
            let mut delta = PROBE_STRIDE;
            'probe: while delta < PROBE_BOUND {
                for ot in [t - delta, t + delta] {
                    let (otm, offset) = self.breakdown(ot)?;
                    if !isdst_differ(isdst, otm.isdst) {
                        let gt = wall - offset;
                        if let Some((gtm, _)) = self.breakdown(gt) {
                            hit = Some((gt, gtm));
                            break 'probe;
                        }
                    }
                }
                delta += PROBE_STRIDE;
            }
            if let Some((gt, gtm)) = hit {
                t = gt;
                found = gtm;
            } else {
                t += 3600 * dst_difference;
                found = self.breakdown(t)?.0;
            }
        }
        self.guess = t - wall;
        *tm = found;
        Some(t)
    }
}

/// systemd's find_end_of_month(): the day of `tm`'s month that is `day`
/// days before its end (`~1` is the last day); -1 when there is none.
fn end_of_month_day(clock: &mut Clock<'_>, tm: &Tm, day: i32) -> i32 {
    let mut t = *tm;
    t.mon += 1;
    t.mday = 1 - day;
    match clock.mktime(&mut t) {
        Some(s) if s >= 0 && t.mon == tm.mon => t.mday,
        _ => -1,
    }
}

/// systemd's tm_within_bounds(): Ok(true) when `tm` is a real time as it
/// stands; Ok(false) when normalizing moved it forward (it is then the
/// normalized time, the unit below the changed one reset); Err when it is
/// past 2199, cannot be computed, or normalizing moved it backward.
fn within_bounds(clock: &mut Clock<'_>, tm: &mut Tm) -> Result<bool, ()> {
    if tm.year > MAX_YEAR {
        return Err(());
    }
    let mut t = *tm;
    if clock.mktime(&mut t).is_none_or(|s| s < 0) {
        return Err(());
    }
    // When a unit moved, the one below it may have skipped a valid value
    // (3-33 becomes 4-2, passing 4-1): start it over.
    let cmp = if t.year != tm.year {
        t.mon = 0;
        t.year.cmp(&tm.year)
    } else if t.mon != tm.mon {
        t.mday = 1;
        t.mon.cmp(&tm.mon)
    } else if t.mday != tm.mday {
        t.hour = 0;
        t.mday.cmp(&tm.mday)
    } else if t.hour != tm.hour {
        t.min = 0;
        t.hour.cmp(&tm.hour)
    } else if t.min != tm.min {
        t.sec = 0;
        t.min.cmp(&tm.min)
    } else {
        t.sec.cmp(&tm.sec)
    };
    match cmp {
        std::cmp::Ordering::Less => Err(()),
        std::cmp::Ordering::Greater => {
            *tm = t;
            Ok(false)
        }
        std::cmp::Ordering::Equal => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zone of the tz database, as the test machine has it installed.
    fn tz(name: &str) -> TimeZone {
        load_zone(name).unwrap_or_else(|| panic!("time zone {name} is not installed"))
    }

    /// Parses with UTC as the system's zone.
    fn parse(s: &str) -> Result<CalendarSpec, CalendarError> {
        CalendarSpec::parse_with_local(s, &TimeZone::UTC)
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Input and the normalized form `systemd-analyze calendar` (systemd
    /// 252) prints: the cases of systemd's test-calendarspec.c, then more.
    const NORMALIZED: &[(&str, &str)] = &[
        ("Sat,Thu,Mon-Wed,Sat-Sun", "Mon..Thu,Sat,Sun *-*-* 00:00:00"),
        (
            "Sat,Thu,Mon..Wed,Sat..Sun",
            "Mon..Thu,Sat,Sun *-*-* 00:00:00",
        ),
        ("Mon,Sun 12-*-* 2,1:23", "Mon,Sun 2012-*-* 01,02:23:00"),
        ("Wed *-1", "Wed *-*-01 00:00:00"),
        ("Wed-Wed,Wed *-1", "Wed *-*-01 00:00:00"),
        ("Wed..Wed,Wed *-1", "Wed *-*-01 00:00:00"),
        ("Wed, 17:48", "Wed *-*-* 17:48:00"),
        ("Wednesday,", "Wed *-*-* 00:00:00"),
        ("Wed-Sat,Tue 12-10-15 1:2:3", "Tue..Sat 2012-10-15 01:02:03"),
        (
            "Wed..Sat,Tue 12-10-15 1:2:3",
            "Tue..Sat 2012-10-15 01:02:03",
        ),
        ("*-*-7 0:0:0", "*-*-07 00:00:00"),
        ("10-15", "*-10-15 00:00:00"),
        ("monday *-12-* 17:00", "Mon *-12-* 17:00:00"),
        ("Mon,Fri *-*-3,1,2 *:30:45", "Mon,Fri *-*-01,02,03 *:30:45"),
        ("12,14,13,12:20,10,30", "*-*-* 12,13,14:10,20,30:00"),
        ("mon,fri *-1/2-1,3 *:30:45", "Mon,Fri *-01/2-01,03 *:30:45"),
        ("03-05 08:05:40", "*-03-05 08:05:40"),
        ("08:05:40", "*-*-* 08:05:40"),
        ("05:40", "*-*-* 05:40:00"),
        ("Sat,Sun 12-05 08:05:40", "Sat,Sun *-12-05 08:05:40"),
        ("Sat,Sun 08:05:40", "Sat,Sun *-*-* 08:05:40"),
        ("2003-03-05 05:40", "2003-03-05 05:40:00"),
        ("2003-03-05", "2003-03-05 00:00:00"),
        ("03-05", "*-03-05 00:00:00"),
        ("hourly", "*-*-* *:00:00"),
        ("daily", "*-*-* 00:00:00"),
        ("monthly", "*-*-01 00:00:00"),
        ("weekly", "Mon *-*-* 00:00:00"),
        ("minutely", "*-*-* *:*:00"),
        ("quarterly", "*-01,04,07,10-01 00:00:00"),
        ("semi-annually", "*-01,07-01 00:00:00"),
        ("annually", "*-01-01 00:00:00"),
        ("*:2/3", "*-*-* *:02/3:00"),
        ("2015-10-25 01:00:00 uTc", "2015-10-25 01:00:00 UTC"),
        (
            "2015-10-25 01:00:00 Asia/Vladivostok",
            "2015-10-25 01:00:00 Asia/Vladivostok",
        ),
        (
            "weekly Pacific/Auckland",
            "Mon *-*-* 00:00:00 Pacific/Auckland",
        ),
        ("2016-03-27 03:17:00.4200005", "2016-03-27 03:17:00.420001"),
        ("2016-03-27 03:17:00/0.42", "2016-03-27 03:17:00/0.420000"),
        ("9..11,13:00,30", "*-*-* 09..11,13:00,30:00"),
        ("1..3-1..3 1..3:1..3", "*-01..03-01..03 01..03:01..03:00"),
        ("00:00:1.125..2.125", "*-*-* 00:00:01.125000..02.125000"),
        ("00:00:1.0..3.8", "*-*-* 00:00:01..03"),
        ("00:00:01..03", "*-*-* 00:00:01..03"),
        ("00:00:01/2,02..03", "*-*-* 00:00:01/2,02..03"),
        ("*:4,30:0..3", "*-*-* *:04,30:00..03"),
        ("*:4,30:0/1", "*-*-* *:04,30:*"),
        ("*:4,30:0/1,3,5", "*-*-* *:04,30:*"),
        ("*-*~1 Utc", "*-*~01 00:00:00 UTC"),
        ("*-*~05,3 ", "*-*~03,05 00:00:00"),
        ("*-*~* 00:00:00", "*-*-* 00:00:00"),
        ("Monday", "Mon *-*-* 00:00:00"),
        ("Monday *-*-*", "Mon *-*-* 00:00:00"),
        ("*-*-*", "*-*-* 00:00:00"),
        ("*:*:*", "*-*-* *:*:*"),
        ("*:*", "*-*-* *:*:00"),
        ("12:*", "*-*-* 12:*:00"),
        ("*:30", "*-*-* *:30:00"),
        ("93..00-*-*", "1993..2000-*-* 00:00:00"),
        ("00..07-*-*", "2000..2007-*-* 00:00:00"),
        ("*:20..39/5", "*-*-* *:20..35/5:00"),
        ("00:00:20..40/1", "*-*-* 00:00:20..40"),
        ("*~03/1,03..05", "*-*~03/1,03..05 00:00:00"),
        ("@1493187147", "2017-04-26 06:12:27 UTC"),
        ("@1493187147 UTC", "2017-04-26 06:12:27 UTC"),
        ("@0", "1970-01-01 00:00:00 UTC"),
        ("@0 UTC", "1970-01-01 00:00:00 UTC"),
        ("*:05..05", "*-*-* *:05:00"),
        ("*:05..10/6", "*-*-* *:05:00"),
        // Checked against `systemd-analyze calendar` (252).
        ("Mon..Fri *-*-* 9..17/2:00", "Mon..Fri *-*-* 09..17/2:00:00"),
        ("Sat,Sun", "Sat,Sun *-*-* 00:00:00"),
        ("Mon,Tue,Wed,Fri,Sat", "Mon..Wed,Fri,Sat *-*-* 00:00:00"),
        ("Tue,Wed,Fri,Sat,Sun", "Tue,Wed,Fri..Sun *-*-* 00:00:00"),
        ("Mon,Wed,Fri,Sun", "Mon,Wed,Fri,Sun *-*-* 00:00:00"),
        ("Sun,Sat,Fri,Thu,Wed,Tue,Mon", "*-*-* 00:00:00"),
        ("MONDAY..friday", "Mon..Fri *-*-* 00:00:00"),
        ("Mon..Sun 12:00", "*-*-* 12:00:00"),
        ("Thu,Fri", "Thu,Fri *-*-* 00:00:00"),
        ("Mon-Tue,Thu-Fri", "Mon,Tue,Thu,Fri *-*-* 00:00:00"),
        ("Mon  12:00", "Mon *-*-* 12:00:00"),
        ("*:*:0/2.5", "*-*-* *:*:00/2.500000"),
        ("*:*:1.5..3.5", "*-*-* *:*:01.500000..03.500000"),
        ("*-*-* 00:00:00.0000004", "*-*-* 00:00:00"),
        ("*-02~03", "*-02~03 00:00:00"),
        ("*-05~07/1", "*-05~07/1 00:00:00"),
        ("*-*~1,25", "*-*~01,25 00:00:00"),
        ("*-*~7/3", "*-*~07/3 00:00:00"),
        ("yearly", "*-01-01 00:00:00"),
        ("anually", "*-01-01 00:00:00"),
        ("bi-annually", "*-01,07-01 00:00:00"),
        ("semiannually", "*-01,07-01 00:00:00"),
        ("daily Europe/Berlin", "*-*-* 00:00:00 Europe/Berlin"),
        ("*:0/15", "*-*-* *:00/15:00"),
        ("*-*-1..31/7 00:00", "*-*-01..29/7 00:00:00"),
        ("*-*-1..31/30 00:00", "*-*-01..31/30 00:00:00"),
        ("*-*-1..31/32", "*-*-01 00:00:00"),
        ("*-*-1/30", "*-*-01/30 00:00:00"),
        ("*-1..12/11-1", "*-01..12/11-01 00:00:00"),
        ("*-*-1,5,3,5,1", "*-*-01,03,05 00:00:00"),
        ("*-*-1..5,3..7", "*-*-01..05,03..07 00:00:00"),
        ("2023..2025/2-*-*", "2023..2025/2-*-* 00:00:00"),
        ("1970..2199/229-01-01", "1970..2199/229-01-01 00:00:00"),
        ("*-*-* 9..17:00..59/15", "*-*-* 09..17:00..45/15:00"),
        ("@-18446744073709551615", "1970-01-01 00:00:01 UTC"),
        ("@ 5", "1970-01-01 00:00:05 UTC"),
        ("@+5", "1970-01-01 00:00:05 UTC"),
        ("@1700000000 Europe/Berlin", "2023-11-14 22:13:20 UTC"),
        ("Mon @5", "Mon 1970-01-01 00:00:05 UTC"),
    ];

    #[test]
    fn normalized_forms_are_systemds() {
        for &(input, want) in NORMALIZED {
            let spec = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(spec.normalized(), want, "{input:?}");
            assert_eq!(spec.to_string(), want, "{input:?}");
            // The normalized form reads back as itself.
            let again = parse(want).unwrap_or_else(|e| panic!("{want:?}: {e}"));
            assert_eq!(again.normalized(), want, "{want:?}");
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Refused {
        Invalid,
        Range,
    }

    /// What systemd 252 refuses, and whether with EINVAL or ERANGE: the
    /// cases of test-calendarspec.c, then more.
    const REFUSED: &[(&str, Refused)] = &[
        ("test", Refused::Invalid),
        (" utc", Refused::Invalid),
        ("    ", Refused::Invalid),
        ("", Refused::Invalid),
        ("7", Refused::Invalid),
        ("121212:1:2", Refused::Invalid),
        ("2000-03-05.23 00:00:00", Refused::Invalid),
        ("2000-03-05 00:00.1:00", Refused::Invalid),
        ("00:00:00/0.00000001", Refused::Range),
        ("00:00:00.0..00.9", Refused::Invalid),
        ("2016~11-22", Refused::Invalid),
        ("*-*~5/5", Refused::Invalid),
        ("Monday.. 12:00", Refused::Invalid),
        ("Monday..", Refused::Invalid),
        ("-00:+00/-5", Refused::Invalid),
        ("00:+00/-5", Refused::Invalid),
        ("2016- 11- 24 12: 30: 00", Refused::Invalid),
        ("*~29", Refused::Invalid),
        ("*~16..31", Refused::Invalid),
        ("12..1/2-*", Refused::Invalid),
        ("20/4:00", Refused::Invalid),
        ("00:00/60", Refused::Invalid),
        ("00:00:2300", Refused::Range),
        ("00:00:18446744073709551615", Refused::Range),
        ("@88588582097858858", Refused::Range),
        ("*:4,30:*,5", Refused::Invalid),
        ("*:4,30:5,*", Refused::Invalid),
        ("*:4,30:*\n", Refused::Invalid),
        // Checked against `systemd-analyze calendar` (252).
        ("now", Refused::Invalid),
        ("today", Refused::Invalid),
        ("tomorrow", Refused::Invalid),
        ("UTC", Refused::Invalid),
        ("daily UTC UTC", Refused::Invalid),
        ("daily  UTC", Refused::Invalid),
        ("daily Europe/Nowhere", Refused::Invalid),
        ("daily europe/berlin", Refused::Invalid),
        ("daily Europe//Berlin", Refused::Invalid),
        ("daily Europe/Berlin/", Refused::Invalid),
        ("*-05~1/2", Refused::Invalid),
        ("*-*~1,28", Refused::Invalid),
        ("*-*~1,26", Refused::Invalid),
        ("*-*~3..1", Refused::Invalid),
        ("Fri..Mon", Refused::Invalid),
        ("Mon..Wed..Fri", Refused::Invalid),
        ("Mon-Wed-Fri", Refused::Invalid),
        ("Thu,,Fri", Refused::Invalid),
        ("Mon ,Tue", Refused::Invalid),
        ("Monx", Refused::Invalid),
        ("Mo", Refused::Invalid),
        ("Mon..", Refused::Invalid),
        ("Wed.Fri", Refused::Invalid),
        ("*-02-29 24:00", Refused::Invalid),
        ("*-*-* 23:60", Refused::Invalid),
        ("*-*-* 23:59:60", Refused::Invalid),
        ("*-*-* 23:59:59.9999995", Refused::Invalid),
        ("*:*:1..", Refused::Invalid),
        ("*:*:.5", Refused::Invalid),
        ("*:*:1.", Refused::Invalid),
        ("0/0:00", Refused::Range),
        ("*-*-1/0", Refused::Range),
        ("1969-12-31", Refused::Invalid),
        ("2200-01-01", Refused::Invalid),
        ("2023/230-01-01", Refused::Invalid),
        ("1-2-3-4", Refused::Invalid),
        ("1~2~3", Refused::Invalid),
        ("*-*-*-*", Refused::Invalid),
        ("**", Refused::Invalid),
        ("*:*:*:*", Refused::Invalid),
        ("2023-01-01 12:00 ", Refused::Invalid),
        ("@", Refused::Invalid),
        ("@x", Refused::Invalid),
        ("@5 junk", Refused::Invalid),
        ("@-1", Refused::Invalid),
        ("12:00\0", Refused::Invalid),
    ];

    #[test]
    fn refuses_what_systemd_refuses() {
        for &(input, want) in REFUSED {
            let got = match parse(input) {
                Ok(spec) => panic!("{input:?} parsed as {spec}"),
                Err(CalendarError::OutOfRange(s)) => {
                    assert_eq!(s, input);
                    Refused::Range
                }
                Err(CalendarError::Invalid(s) | CalendarError::UnknownTimeZone { spec: s, .. }) => {
                    assert_eq!(s, input);
                    Refused::Invalid
                }
                Err(e) => panic!("{input:?}: {e}"),
            };
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn a_field_holds_at_most_241_values() {
        let values = |n: usize| vec!["0"; n].join(",");
        let spec = parse(&format!("*-*-* 00:00:{}", values(241))).unwrap();
        assert_eq!(spec.normalized(), "*-*-* 00:00:00");
        let long = format!("*-*-* 00:00:{}", values(242));
        assert_eq!(
            parse(&long),
            Err(CalendarError::TooManyValues(long.clone()))
        );
    }

    #[test]
    fn errors_name_the_spec_and_an_unknown_zone() {
        assert_eq!(
            parse("daily Europe/Nowhere"),
            Err(CalendarError::UnknownTimeZone {
                spec: "daily Europe/Nowhere".into(),
                zone: "Europe/Nowhere".into(),
            })
        );
        assert_eq!(
            parse("daily Europe/Nowhere").unwrap_err().to_string(),
            "unknown time zone \"Europe/Nowhere\" in calendar specification \"daily Europe/Nowhere\""
        );
        assert_eq!(
            parse("Mon..").unwrap_err().to_string(),
            "invalid calendar specification \"Mon..\""
        );
        assert_eq!(
            parse("00:00:2300").unwrap_err().to_string(),
            "value out of range in calendar specification \"00:00:2300\""
        );
    }

    #[test]
    fn from_str_and_display() {
        let spec: CalendarSpec = "sat,sun 9:00 UTC".parse().unwrap();
        assert_eq!(spec.to_string(), "Sat,Sun *-*-* 09:00:00 UTC");
        assert_eq!(
            spec,
            CalendarSpec::parse("Sun,Sat *-*-* 09:00 utc").unwrap()
        );
        assert_ne!(spec, CalendarSpec::parse("Sat,Sun *-*-* 09:00").unwrap());
        assert!("Sat..".parse::<CalendarSpec>().is_err());
    }

    #[test]
    fn local_zone_abbreviations() {
        // glibc's tzname: the last standard and daylight saving names.
        assert_eq!(local_abbreviations(&tz("Europe/Berlin")), ["CET", "CEST"]);
        assert_eq!(local_abbreviations(&tz("America/New_York")), ["EST", "EDT"]);
        // Ireland's winter time is its negative DST.
        assert_eq!(local_abbreviations(&tz("Europe/Dublin")), ["IST", "GMT"]);
        assert_eq!(local_abbreviations(&tz("Asia/Tokyo")), ["JST", "JDT"]);
        assert_eq!(local_abbreviations(&TimeZone::UTC), ["UTC", "UTC"]);

        let berlin = tz("Europe/Berlin");
        let at = |s: &str| CalendarSpec::parse_with_local(s, &berlin).map(|c| c.normalized());
        assert_eq!(at("12:00 cest").unwrap(), "*-*-* 12:00:00 CEST");
        assert_eq!(at("12:00 CET").unwrap(), "*-*-* 12:00:00 CET");
        assert_eq!(at("12:00 UTC").unwrap(), "*-*-* 12:00:00 UTC");
        // Not the local zone's: a name of the tz database (there is a "CET").
        let utc = CalendarSpec::parse_with_local("12:00 CET", &TimeZone::UTC).unwrap();
        assert_eq!(
            utc.zone,
            Zone::Named {
                name: "CET".into(),
                tz: tz("CET")
            }
        );
        assert!(CalendarSpec::parse_with_local("12:00 CEST", &TimeZone::UTC).is_err());
        assert!(CalendarSpec::parse_with_local("CEST", &berlin).is_err());
    }

    /// (spec, the system's zone, after, the elapses that follow one after
    /// the other; None: no more) as systemd 252 computes them. First the
    /// cases of test-calendarspec.c.
    const ELAPSES: &[(&str, &str, &str, &[Option<&str>])] = &[
        (
            "2016-03-27 03:17:00",
            "UTC",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2016-03-27T03:17:00Z")],
        ),
        (
            "2016-03-27 03:17:00",
            "Europe/Berlin",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2016-03-27T01:17:00Z")],
        ),
        (
            "2016-03-27 03:17:00",
            "Europe/Kyiv",
            "1970-01-01T00:00:00.012345Z",
            &[None],
        ),
        (
            "2016-03-27 03:17:00 UTC",
            "Europe/Kyiv",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2016-03-27T03:17:00Z")],
        ),
        (
            "2016-03-27 03:17:00.420000001 UTC",
            "Europe/Kyiv",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2016-03-27T03:17:00.42Z")],
        ),
        (
            "2016-03-27 03:17:00.4200005 UTC",
            "Europe/Kyiv",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2016-03-27T03:17:00.420001Z")],
        ),
        (
            "2015-11-13 09:11:23.42",
            "Europe/Kyiv",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2015-11-13T07:11:23.42Z")],
        ),
        (
            "2015-11-13 09:11:23.42/1.77",
            "Europe/Kyiv",
            "2015-11-13T07:11:23.42Z",
            &[
                Some("2015-11-13T07:11:25.19Z"),
                Some("2015-11-13T07:11:26.96Z"),
                Some("2015-11-13T07:11:28.73Z"),
            ],
        ),
        (
            "2015-11-13 09:11:23.42/1.77",
            "Europe/Kyiv",
            "2015-11-13T07:11:23.419999Z",
            &[Some("2015-11-13T07:11:23.42Z")],
        ),
        (
            "Sun 16:00:00",
            "Europe/Berlin",
            "2016-02-21T08:00:00.123456Z",
            &[Some("2016-02-21T15:00:00Z"), Some("2016-02-28T15:00:00Z")],
        ),
        ("*-04-31", "UTC", "1970-01-01T00:00:00.012345Z", &[None]),
        (
            "2016-02~01 UTC",
            "UTC",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2016-02-29T00:00:00Z")],
        ),
        (
            "Mon 2017-05~01..07 UTC",
            "UTC",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2017-05-29T00:00:00Z"), None],
        ),
        (
            "Mon 2017-05~07/1 UTC",
            "UTC",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2017-05-29T00:00:00Z"), None],
        ),
        (
            "*-*-01/5 04:00:00 UTC",
            "UTC",
            "2022-02-28T01:00:00Z",
            &[
                Some("2022-03-01T04:00:00Z"),
                Some("2022-03-06T04:00:00Z"),
                Some("2022-03-11T04:00:00Z"),
                Some("2022-03-16T04:00:00Z"),
            ],
        ),
        (
            "*-01/7-01 04:00:00 UTC",
            "UTC",
            "2022-10-01T07:00:00Z",
            &[
                Some("2023-01-01T04:00:00Z"),
                Some("2023-08-01T04:00:00Z"),
                Some("2024-01-01T04:00:00Z"),
            ],
        ),
        (
            "2017-08-06 9,11,13,15,17:00 UTC",
            "UTC",
            "2017-08-06T14:30:00Z",
            &[Some("2017-08-06T15:00:00Z"), Some("2017-08-06T17:00:00Z")],
        ),
        (
            "2017-08-06 9..17/2:00 UTC",
            "UTC",
            "2017-08-06T14:30:00Z",
            &[Some("2017-08-06T15:00:00Z"), Some("2017-08-06T17:00:00Z")],
        ),
        (
            "2016-12-* 3..21/6:00 UTC",
            "UTC",
            "2016-12-24T21:00:00.000001Z",
            &[
                Some("2016-12-25T03:00:00Z"),
                Some("2016-12-25T09:00:00Z"),
                Some("2016-12-25T15:00:00Z"),
            ],
        ),
        (
            "2017-09-24 03:30:00 Pacific/Auckland",
            "UTC",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2017-09-23T14:30:00Z")],
        ),
        (
            "2017-09-24 02:30:00 Pacific/Auckland",
            "UTC",
            "1970-01-01T00:00:00.012345Z",
            &[None],
        ),
        (
            "2017-04-02 02:30:00 Pacific/Auckland",
            "UTC",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2017-04-01T13:30:00Z"), None],
        ),
        (
            "2017-04-02 03:30:00 Pacific/Auckland",
            "UTC",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2017-04-01T15:30:00Z")],
        ),
        (
            "2017-09-09 20:42:00 Pacific/Auckland",
            "UTC",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2017-09-09T08:42:00Z")],
        ),
        (
            "2017-09-09 20:42:00 Pacific/Auckland",
            "Europe/Kyiv",
            "1970-01-01T00:00:00.012345Z",
            &[Some("2017-09-09T08:42:00Z")],
        ),
        (
            "Sun *-*-* 01:00:00 Europe/Dublin",
            "UTC",
            "2021-03-22T11:27:58Z",
            &[
                Some("2021-04-04T00:00:00Z"),
                Some("2021-04-11T00:00:00Z"),
                Some("2021-04-18T00:00:00Z"),
            ],
        ),
        (
            "hourly",
            "Europe/Dublin",
            "2025-03-30T00:00:00Z",
            &[
                Some("2025-03-30T01:00:00Z"),
                Some("2025-03-30T02:00:00Z"),
                Some("2025-03-30T03:00:00Z"),
                Some("2025-03-30T04:00:00Z"),
            ],
        ),
        // Checked against `systemd-analyze calendar` (252): weekdays,
        // repetitions, fractions of seconds.
        (
            "Mon..Fri *-*-* 9..17/2:00",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-01-01T09:00:00Z"),
                Some("2026-01-01T11:00:00Z"),
                Some("2026-01-01T13:00:00Z"),
                Some("2026-01-01T15:00:00Z"),
                Some("2026-01-01T17:00:00Z"),
                Some("2026-01-02T09:00:00Z"),
                Some("2026-01-02T11:00:00Z"),
            ],
        ),
        (
            "Sat,Sun 10:00",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-01-03T10:00:00Z"),
                Some("2026-01-04T10:00:00Z"),
                Some("2026-01-10T10:00:00Z"),
            ],
        ),
        (
            "weekly",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[Some("2026-01-05T00:00:00Z"), Some("2026-01-12T00:00:00Z")],
        ),
        (
            "quarterly UTC",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-04-01T00:00:00Z"),
                Some("2026-07-01T00:00:00Z"),
                Some("2026-10-01T00:00:00Z"),
                Some("2027-01-01T00:00:00Z"),
            ],
        ),
        (
            "semiannually",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-07-01T00:00:00Z"),
                Some("2027-01-01T00:00:00Z"),
                Some("2027-07-01T00:00:00Z"),
            ],
        ),
        (
            "minutely",
            "UTC",
            "2026-01-01T23:58:30Z",
            &[
                Some("2026-01-01T23:59:00Z"),
                Some("2026-01-02T00:00:00Z"),
                Some("2026-01-02T00:01:00Z"),
            ],
        ),
        (
            "*:*:0/2.5",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-01-01T00:00:02.5Z"),
                Some("2026-01-01T00:00:05Z"),
                Some("2026-01-01T00:00:07.5Z"),
                Some("2026-01-01T00:00:10Z"),
            ],
        ),
        (
            "*:*:*",
            "UTC",
            "2026-01-01T00:00:00.5Z",
            &[Some("2026-01-01T00:00:01Z"), Some("2026-01-01T00:00:02Z")],
        ),
        (
            "*-*-* *:59:58..59",
            "UTC",
            "2026-12-31T23:59:57Z",
            &[
                Some("2026-12-31T23:59:58Z"),
                Some("2026-12-31T23:59:59Z"),
                Some("2027-01-01T00:59:58Z"),
                Some("2027-01-01T00:59:59Z"),
            ],
        ),
        (
            "*:0/25",
            "UTC",
            "2026-01-01T00:40:00Z",
            &[
                Some("2026-01-01T00:50:00Z"),
                Some("2026-01-01T01:00:00Z"),
                Some("2026-01-01T01:25:00Z"),
            ],
        ),
        (
            "*:20..39/5",
            "UTC",
            "2026-01-01T00:30:00Z",
            &[
                Some("2026-01-01T00:35:00Z"),
                Some("2026-01-01T01:20:00Z"),
                Some("2026-01-01T01:25:00Z"),
                Some("2026-01-01T01:30:00Z"),
            ],
        ),
        (
            "*-*-* 23:59:59.999999",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-01-01T23:59:59.999999Z"),
                Some("2026-01-02T23:59:59.999999Z"),
            ],
        ),
        (
            "Fri *-*-13",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-02-13T00:00:00Z"),
                Some("2026-03-13T00:00:00Z"),
                Some("2026-11-13T00:00:00Z"),
                Some("2027-08-13T00:00:00Z"),
            ],
        ),
        // Month ends, leap years, `~`.
        (
            "*-02-29",
            "UTC",
            "2025-01-01T00:00:00Z",
            &[Some("2028-02-29T00:00:00Z"), Some("2032-02-29T00:00:00Z")],
        ),
        (
            "*-02~01",
            "UTC",
            "2024-01-01T00:00:00Z",
            &[
                Some("2024-02-29T00:00:00Z"),
                Some("2025-02-28T00:00:00Z"),
                Some("2026-02-28T00:00:00Z"),
            ],
        ),
        (
            "*-02~03",
            "UTC",
            "2024-01-01T00:00:00Z",
            &[
                Some("2024-02-27T00:00:00Z"),
                Some("2025-02-26T00:00:00Z"),
                Some("2026-02-26T00:00:00Z"),
            ],
        ),
        (
            "*-*~01 12:00",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-01-31T12:00:00Z"),
                Some("2026-02-28T12:00:00Z"),
                Some("2026-03-31T12:00:00Z"),
                Some("2026-04-30T12:00:00Z"),
            ],
        ),
        (
            "*-*~07/3",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-01-25T00:00:00Z"),
                Some("2026-01-28T00:00:00Z"),
                Some("2026-01-31T00:00:00Z"),
                Some("2026-02-22T00:00:00Z"),
                Some("2026-02-25T00:00:00Z"),
            ],
        ),
        (
            "*-05~07/1",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-05-25T00:00:00Z"),
                Some("2026-05-26T00:00:00Z"),
                Some("2026-05-27T00:00:00Z"),
            ],
        ),
        (
            "Mon..Fri *-*~01..03",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-01-29T00:00:00Z"),
                Some("2026-01-30T00:00:00Z"),
                Some("2026-02-26T00:00:00Z"),
                Some("2026-02-27T00:00:00Z"),
            ],
        ),
        (
            "*-*-31",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                Some("2026-01-31T00:00:00Z"),
                Some("2026-03-31T00:00:00Z"),
                Some("2026-05-31T00:00:00Z"),
                Some("2026-07-31T00:00:00Z"),
            ],
        ),
        (
            "*-*-29..31/2 06:00",
            "UTC",
            "2026-01-29T07:00:00Z",
            &[
                Some("2026-01-31T06:00:00Z"),
                Some("2026-03-29T06:00:00Z"),
                Some("2026-03-31T06:00:00Z"),
                Some("2026-04-29T06:00:00Z"),
            ],
        ),
        ("*-02-30", "UTC", "2026-01-01T00:00:00Z", &[None]),
        (
            "Mon *-02-29",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[Some("2044-02-29T00:00:00Z"), Some("2072-02-29T00:00:00Z")],
        ),
        (
            "2023..2025/2-*-* 00:00",
            "UTC",
            "2024-12-31T12:00:00Z",
            &[Some("2025-01-01T00:00:00Z"), Some("2025-01-02T00:00:00Z")],
        ),
        // The end of 2199, `@`.
        (
            "2199-12-31 23:59:59 UTC",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[Some("2199-12-31T23:59:59Z"), None],
        ),
        ("daily", "UTC", "2199-12-31T00:00:00Z", &[None]),
        (
            "@1700000000",
            "UTC",
            "2023-01-01T00:00:00Z",
            &[Some("2023-11-14T22:13:20Z"), None],
        ),
        ("@1700000000", "UTC", "2023-11-14T22:13:20Z", &[None]),
        // Wall-clock times a DST change skips or repeats; zones named in the
        // spec; the local zone's abbreviations.
        (
            "*-*-* 02:30",
            "Europe/Berlin",
            "2023-03-25T00:00:00Z",
            &[
                Some("2023-03-25T01:30:00Z"),
                Some("2023-03-27T00:30:00Z"),
                Some("2023-03-28T00:30:00Z"),
            ],
        ),
        (
            "*:30",
            "Europe/Berlin",
            "2023-10-28T23:00:00Z",
            &[
                Some("2023-10-28T23:30:00Z"),
                Some("2023-10-29T00:30:00Z"),
                Some("2023-10-29T02:30:00Z"),
                Some("2023-10-29T03:30:00Z"),
            ],
        ),
        (
            "*:0/20",
            "Europe/Berlin",
            "2023-03-26T00:30:00Z",
            &[
                Some("2023-03-26T00:40:00Z"),
                Some("2023-03-26T01:00:00Z"),
                Some("2023-03-26T01:20:00Z"),
                Some("2023-03-26T01:40:00Z"),
            ],
        ),
        (
            "*-*-* 02:30",
            "America/New_York",
            "2024-03-09T12:00:00Z",
            &[Some("2024-03-11T06:30:00Z"), Some("2024-03-12T06:30:00Z")],
        ),
        (
            "*-*-* 01:30",
            "America/New_York",
            "2024-11-02T12:00:00Z",
            &[
                Some("2024-11-03T05:30:00Z"),
                Some("2024-11-04T06:30:00Z"),
                Some("2024-11-05T06:30:00Z"),
            ],
        ),
        (
            "daily",
            "Europe/Dublin",
            "2023-03-25T23:30:00Z",
            &[
                Some("2023-03-26T00:00:00Z"),
                Some("2023-03-26T23:00:00Z"),
                Some("2023-03-27T23:00:00Z"),
            ],
        ),
        (
            "*:0/15",
            "Australia/Lord_Howe",
            "2024-04-06T14:00:00Z",
            &[
                Some("2024-04-06T14:15:00Z"),
                Some("2024-04-06T14:30:00Z"),
                Some("2024-04-06T14:45:00Z"),
                Some("2024-04-06T15:30:00Z"),
                Some("2024-04-06T15:45:00Z"),
                Some("2024-04-06T16:00:00Z"),
            ],
        ),
        (
            "daily",
            "America/Santiago",
            "2024-09-06T12:00:00Z",
            &[
                Some("2024-09-07T04:00:00Z"),
                Some("2024-09-09T03:00:00Z"),
                Some("2024-09-10T03:00:00Z"),
            ],
        ),
        (
            "*-*-* 12:00 Pacific/Auckland",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[Some("2026-01-01T23:00:00Z"), Some("2026-01-02T23:00:00Z")],
        ),
        (
            "weekly Pacific/Auckland",
            "Europe/Berlin",
            "2026-01-01T00:00:00Z",
            &[Some("2026-01-04T11:00:00Z"), Some("2026-01-11T11:00:00Z")],
        ),
        (
            "*-*-* 12:00 CEST",
            "Europe/Berlin",
            "2026-06-01T00:00:00Z",
            &[Some("2026-06-01T10:00:00Z"), Some("2026-06-02T10:00:00Z")],
        ),
        (
            "*-*-* 12:00 CEST",
            "Europe/Berlin",
            "2026-11-01T00:00:00Z",
            &[None],
        ),
        (
            "*-*-* 12:00 CET",
            "Europe/Berlin",
            "2026-11-01T00:00:00Z",
            &[Some("2026-11-01T11:00:00Z"), Some("2026-11-02T11:00:00Z")],
        ),
        // systemd gives up after 1000 steps.
        (
            "*:0/30 CEST",
            "Europe/Berlin",
            "2026-10-25T00:00:00Z",
            &[
                Some("2026-10-25T00:30:00Z"),
                Some("2026-10-25T02:00:00Z"),
                None,
            ],
        ),
        ("11/8:*:*", "Europe/Dublin", "2023-03-25T23:30:00Z", &[None]),
        (
            "*-14/13,28",
            "Australia/Lord_Howe",
            "2017-09-23T14:30:00Z",
            &[
                Some("2017-09-26T13:30:00Z"),
                Some("2017-09-27T13:30:00Z"),
                None,
            ],
        ),
    ];

    #[test]
    fn elapses_are_systemds() {
        for &(input, zone, after, want) in ELAPSES {
            let local = if zone == "UTC" {
                TimeZone::UTC
            } else {
                tz(zone)
            };
            let spec = CalendarSpec::parse_with_local(input, &local)
                .unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let mut at = ts(after);
            for (i, want) in want.iter().enumerate() {
                let got = spec.next_after_in(at, &local);
                assert_eq!(
                    got.map(|t| t.to_string()).as_deref(),
                    *want,
                    "{input:?} in {zone} after {after}, elapse {}",
                    i + 1
                );
                match got {
                    Some(t) => at = t,
                    None => break,
                }
            }
        }
    }

    #[test]
    fn elapses_under_a_posix_tz_string() {
        // systemd 252.39's test for Europe/Dublin's rules written as $TZ.
        let dublin = TimeZone::posix("IST-1GMT-0,M10.5.0/1,M3.5.0/1").unwrap();
        let spec = CalendarSpec::parse_with_local("hourly", &dublin).unwrap();
        let next = spec.next_after_in(ts("2025-03-30T00:00:00Z"), &dublin);
        assert_eq!(next, Some(ts("2025-03-30T01:00:00Z")));
    }

    #[test]
    fn next_after_is_strictly_after_in_microseconds() {
        let spec = parse("*-*-* 09:00 UTC").unwrap();
        let next = |s: &str| spec.next_after(ts(s)).map(|t| t.to_string());
        assert_eq!(
            next("2026-01-01T08:59:59.9999995Z").as_deref(),
            Some("2026-01-01T09:00:00Z")
        );
        assert_eq!(
            next("2026-01-01T09:00:00Z").as_deref(),
            Some("2026-01-02T09:00:00Z")
        );
        assert_eq!(
            next("2026-01-01T09:00:00.0000005Z").as_deref(),
            Some("2026-01-02T09:00:00Z")
        );
        // Before the epoch the search starts at it.
        let daily = parse("daily UTC").unwrap();
        assert_eq!(
            daily.next_after(ts("1969-06-01T00:00:00Z")),
            Some(ts("1970-01-01T00:00:00Z"))
        );
        assert_eq!(daily.next_after(Timestamp::MAX), None);
        // A zone named in the spec does not depend on the system's.
        let auckland = parse("2017-09-09 20:42:00 Pacific/Auckland").unwrap();
        assert_eq!(
            auckland.next_after(Timestamp::UNIX_EPOCH),
            Some(ts("2017-09-09T08:42:00Z"))
        );
    }
}
