//! Time spans (`TimeoutSec=`, `RestartSec=`, `TriggerLimitIntervalSec=` …) as
//! systemd's `parse_time()`/`parse_sec()` read them and `format_timespan()`
//! prints them.
//!
//! A span is `infinity` or a sum of `<number>[.<fraction>][<unit>]` terms; a
//! bare number uses the setting's default unit (seconds for `…Sec=`). Units
//! are matched longest-first from systemd's table, fractions below one
//! microsecond are dropped, and every overflow is an error rather than a
//! silent saturation, so `flint show` prints the same value as systemd's dump.

use std::fmt::Write as _;

use super::{ValueError, WHITESPACE};

/// Microseconds, systemd's `usec_t`.
pub type Usec = u64;
/// "No limit" (systemd's `USEC_INFINITY`).
pub const USEC_INFINITY: u64 = u64::MAX;
pub const USEC_PER_MSEC: u64 = 1_000;
pub const USEC_PER_SEC: u64 = 1_000_000;
pub const USEC_PER_MINUTE: u64 = 60 * USEC_PER_SEC;
pub const USEC_PER_HOUR: u64 = 60 * USEC_PER_MINUTE;
pub const USEC_PER_DAY: u64 = 24 * USEC_PER_HOUR;
pub const USEC_PER_WEEK: u64 = 7 * USEC_PER_DAY;
/// 30.44 days, as systemd counts a month.
pub const USEC_PER_MONTH: u64 = 2_629_800 * USEC_PER_SEC;
/// 365.25 days, as systemd counts a year.
pub const USEC_PER_YEAR: u64 = 31_557_600 * USEC_PER_SEC;

/// systemd's unit table, in its matching order (first prefix match wins).
const UNITS: &[(&str, u64)] = &[
    ("seconds", USEC_PER_SEC),
    ("second", USEC_PER_SEC),
    ("sec", USEC_PER_SEC),
    ("s", USEC_PER_SEC),
    ("minutes", USEC_PER_MINUTE),
    ("minute", USEC_PER_MINUTE),
    ("min", USEC_PER_MINUTE),
    ("months", USEC_PER_MONTH),
    ("month", USEC_PER_MONTH),
    ("M", USEC_PER_MONTH),
    ("msec", USEC_PER_MSEC),
    ("ms", USEC_PER_MSEC),
    ("m", USEC_PER_MINUTE),
    ("hours", USEC_PER_HOUR),
    ("hour", USEC_PER_HOUR),
    ("hr", USEC_PER_HOUR),
    ("h", USEC_PER_HOUR),
    ("days", USEC_PER_DAY),
    ("day", USEC_PER_DAY),
    ("d", USEC_PER_DAY),
    ("weeks", USEC_PER_WEEK),
    ("week", USEC_PER_WEEK),
    ("w", USEC_PER_WEEK),
    ("years", USEC_PER_YEAR),
    ("year", USEC_PER_YEAR),
    ("y", USEC_PER_YEAR),
    ("usec", 1),
    ("us", 1),
    ("\u{3bc}s", 1),
    ("\u{b5}s", 1),
];

fn skip(b: &[u8], mut i: usize, pred: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && pred(b[i]) {
        i += 1;
    }
    i
}

fn is_ws(c: u8) -> bool {
    WHITESPACE.contains(&c)
}

/// `strtoll(p, &e, 10)` as far as `parse_time` needs it: returns
/// (value or None on overflow, negative, bytes consumed; 0 = no digits).
fn strtoll10(b: &[u8]) -> (Option<u64>, bool, usize) {
    let mut i = skip(b, 0, |c| {
        matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
    });
    let mut negative = false;
    if let Some(&sign @ (b'+' | b'-')) = b.get(i) {
        negative = sign == b'-';
        i += 1;
    }
    let start = i;
    let mut v: Option<u64> = Some(0);
    while let Some(&d @ b'0'..=b'9') = b.get(i) {
        v = v
            .and_then(|v| v.checked_mul(10))
            .and_then(|v| v.checked_add(u64::from(d - b'0')));
        i += 1;
    }
    if i == start {
        return (Some(0), false, 0);
    }
    // strtoll() saturates at LLONG_MAX with ERANGE.
    let v = v.filter(|&v| v <= i64::MAX.unsigned_abs());
    (v, negative, i)
}

/// systemd's `parse_time()`: `default_unit_usec` is the unit of a bare number.
#[allow(clippy::many_single_char_names)]
pub fn parse_timespan(s: &str, default_unit_usec: u64) -> Result<Usec, ValueError> {
    let invalid = || ValueError::invalid(format_args!("not a time span: '{s}'"));
    let range = || ValueError::range(format_args!("time span out of range: '{s}'"));
    let default_unit = default_unit_usec.max(1);
    let b = s.as_bytes();
    let mut p = skip(b, 0, is_ws);
    if let Some(rest) = b.get(p..).and_then(|r| r.strip_prefix(b"infinity")) {
        return if skip(rest, 0, is_ws) == rest.len() {
            Ok(USEC_INFINITY)
        } else {
            Err(invalid())
        };
    }
    let mut total: u64 = 0;
    let mut something = false;
    loop {
        p = skip(b, p, is_ws);
        if p >= b.len() {
            return if something { Ok(total) } else { Err(invalid()) };
        }
        if b[p] == b'-' {
            return Err(range());
        }
        let (l, negative, used) = strtoll10(&b[p..]);
        let l = l.ok_or_else(range)?;
        if negative && l != 0 {
            return Err(range());
        }
        let e = p + used;
        let has_fraction = b.get(e) == Some(&b'.');
        if has_fraction {
            p = skip(b, e + 1, |c| c.is_ascii_digit());
        } else if used == 0 {
            return Err(invalid());
        } else {
            p = e;
        }
        let q = skip(b, p, is_ws);
        let tail = &b[q..];
        let (after_unit, multiplier) = UNITS
            .iter()
            .find(|(name, _)| tail.starts_with(name.as_bytes()))
            .map_or((q, default_unit), |&(name, mult)| (q + name.len(), mult));
        if after_unit == p && after_unit < b.len() {
            // "12.34.56" is refused, "12.34 .56" and "12.34s.56" are sums.
            return Err(invalid());
        }
        p = after_unit;
        if l >= USEC_INFINITY / multiplier {
            return Err(range());
        }
        let k = l * multiplier;
        if k >= USEC_INFINITY - total {
            return Err(range());
        }
        total += k;
        something = true;
        if has_fraction {
            let mut m = multiplier / 10;
            let mut i = e + 1;
            while let Some(&d @ b'0'..=b'9') = b.get(i) {
                let k = u64::from(d - b'0') * m;
                if k >= USEC_INFINITY - total {
                    return Err(range());
                }
                total += k;
                m /= 10;
                i += 1;
            }
            if i == e + 1 {
                // "3.", "3.sec", "0.-0" are refused.
                return Err(invalid());
            }
        }
    }
}

/// systemd's `parse_sec()`: a bare number is seconds.
pub fn parse_sec(s: &str) -> Result<Usec, ValueError> {
    parse_timespan(s, USEC_PER_SEC)
}

/// systemd's `parse_sec_fix_0()`: like [`parse_sec`], but `0` means infinity
/// (`TimeoutSec=`, `TimeoutStartSec=`, `TimeoutStopSec=` …).
pub fn parse_sec_fix_0(s: &str) -> Result<Usec, ValueError> {
    parse_sec(s).map(|v| if v == 0 { USEC_INFINITY } else { v })
}

/// systemd's `parse_sec_def_infinity()`: like [`parse_sec`], but an empty
/// value means infinity.
pub fn parse_sec_def_infinity(s: &str) -> Result<Usec, ValueError> {
    if s.bytes().all(is_ws) {
        Ok(USEC_INFINITY)
    } else {
        parse_sec(s)
    }
}

/// Print a span the way systemd's unit dump does (`1min 30s`, `100ms`,
/// `infinity`, `0`): systemd's `format_timespan()` with an accuracy of one
/// second.
pub fn format_timespan(usec: Usec) -> String {
    format_timespan_accuracy(usec, USEC_PER_SEC)
}

/// systemd's `format_timespan()` with an explicit accuracy: components below
/// `accuracy` are dropped once something was printed, and values under one
/// minute may use a decimal point (`1.500s` at accuracy 1 ms).
#[allow(clippy::many_single_char_names)]
pub fn format_timespan_accuracy(usec: Usec, accuracy: u64) -> String {
    const TABLE: [(&str, u64); 9] = [
        ("y", USEC_PER_YEAR),
        ("month", USEC_PER_MONTH),
        ("w", USEC_PER_WEEK),
        ("d", USEC_PER_DAY),
        ("h", USEC_PER_HOUR),
        ("min", USEC_PER_MINUTE),
        ("s", USEC_PER_SEC),
        ("ms", USEC_PER_MSEC),
        ("us", 1),
    ];
    if usec == USEC_INFINITY {
        return "infinity".to_owned();
    }
    if usec == 0 {
        return "0".to_owned();
    }
    let mut out = String::new();
    let mut t = usec;
    let mut something = false;
    for (suffix, unit) in TABLE {
        if t == 0 || (t < accuracy && something) {
            break;
        }
        if t < unit {
            continue;
        }
        let a = t / unit;
        let mut b = t % unit;
        let sep = if out.is_empty() { "" } else { " " };
        let mut done = false;
        if t < USEC_PER_MINUTE && b > 0 {
            let mut j: i32 = 0;
            let mut cc = unit;
            while cc > 1 {
                j += 1;
                cc /= 10;
            }
            let mut cc = accuracy;
            while cc > 1 {
                b /= 10;
                j -= 1;
                cc /= 10;
            }
            if j > 0 {
                let width = usize::try_from(j).unwrap_or(0);
                let _ = write!(out, "{sep}{a}.{b:0width$}{suffix}");
                t = 0;
                done = true;
            }
        }
        if !done {
            let _ = write!(out, "{sep}{a}{suffix}");
            t %= unit;
        }
        something = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Observed with `systemd-analyze timespan` (systemd 252); the table of
    // section 6.2 of flint's systemd reference, plus its rejected rows.
    const ORACLE: &[(&str, Option<u64>)] = &[
        ("1min 30s", Some(90_000_000)),
        ("1min30", Some(90_000_000)),
        ("5", Some(5_000_000)),
        ("5s", Some(5_000_000)),
        ("5 s", Some(5_000_000)),
        ("infinity", Some(USEC_INFINITY)),
        ("  infinity  ", Some(USEC_INFINITY)),
        ("500ms", Some(500_000)),
        ("1h30m", Some(5_400_000_000)),
        ("2 min 200ms", Some(120_200_000)),
        ("0", Some(0)),
        ("1.5s", Some(1_500_000)),
        (".5s", Some(500_000)),
        ("1y", Some(31_557_600_000_000)),
        ("2years", Some(63_115_200_000_000)),
        ("1M", Some(2_629_800_000_000)),
        ("1month", Some(2_629_800_000_000)),
        ("4months", Some(10_519_200_000_000)),
        ("3 weeks", Some(1_814_400_000_000)),
        ("1week", Some(604_800_000_000)),
        ("1d2h", Some(93_600_000_000)),
        ("1 2", Some(3_000_000)),
        ("1 s 1", Some(2_000_000)),
        (" 1s", Some(1_000_000)),
        ("1sec", Some(1_000_000)),
        ("1us", Some(1)),
        ("1\u{3bc}s", Some(1)),
        ("1\u{b5}s", Some(1)),
        ("1m", Some(60_000_000)),
        ("1minute", Some(60_000_000)),
        ("1msec", Some(1000)),
        ("1hr", Some(3_600_000_000)),
        ("5 minutes", Some(300_000_000)),
        ("2seconds", Some(2_000_000)),
        ("1.123456789s", Some(1_123_456)),
        ("0.0000001s", Some(0)),
        ("12.34 .56", Some(12_900_000)),
        ("1h 1h", Some(7_200_000_000)),
        ("1.s", None),
        ("1e3ms", None),
        ("5x", None),
        ("", None),
        ("usec", None),
        ("1t", None),
        ("12.34.56", None),
        ("3.hoge", None),
        ("10000000000000000000s", None),
    ];

    #[test]
    fn oracle_table() {
        for &(input, want) in ORACLE {
            assert_eq!(parse_sec(input).ok(), want, "input {input:?}");
        }
        assert!(matches!(
            parse_sec("10000000000000000000s"),
            Err(ValueError::OutOfRange(_))
        ));
        assert!(matches!(parse_sec("-5s"), Err(ValueError::OutOfRange(_))));
        assert!(matches!(parse_sec("1e3ms"), Err(ValueError::Invalid(_))));
    }

    // Vectors from systemd src/test/test-time-util.c (TEST(parse_sec)).
    const PARSE_SEC: &[(&str, Option<u64>)] = &[
        ("5s", Some(5 * USEC_PER_SEC)),
        ("5s500ms", Some(5 * USEC_PER_SEC + 500 * USEC_PER_MSEC)),
        (" 5s 500ms  ", Some(5 * USEC_PER_SEC + 500 * USEC_PER_MSEC)),
        (" 5.5s  ", Some(5 * USEC_PER_SEC + 500 * USEC_PER_MSEC)),
        (
            " 5.5s 0.5ms ",
            Some(5 * USEC_PER_SEC + 500 * USEC_PER_MSEC + 500),
        ),
        (" .22s ", Some(220 * USEC_PER_MSEC)),
        (" .50y ", Some(USEC_PER_YEAR / 2)),
        ("2.5", Some(2500 * USEC_PER_MSEC)),
        (".7", Some(700 * USEC_PER_MSEC)),
        ("23us", Some(23)),
        ("23\u{3bc}s", Some(23)),
        ("23\u{b5}s", Some(23)),
        ("infinity", Some(USEC_INFINITY)),
        (" infinity ", Some(USEC_INFINITY)),
        ("+3.1s", Some(3100 * USEC_PER_MSEC)),
        ("3.1s.2", Some(3300 * USEC_PER_MSEC)),
        ("3.1 .2", Some(3300 * USEC_PER_MSEC)),
        ("3.1 sec .2 sec", Some(3300 * USEC_PER_MSEC)),
        ("3.1 sec 1.2 sec", Some(4300 * USEC_PER_MSEC)),
        (" xyz ", None),
        ("", None),
        (" . ", None),
        (" 5. ", None),
        (".s ", None),
        ("-5s ", None),
        ("-0.3s ", None),
        ("-0.0s ", None),
        ("-0.-0s ", None),
        ("0.-0s ", None),
        ("3.-0s ", None),
        (" infinity .7", None),
        (".3 infinity", None),
        ("3.+1s", None),
        ("3. 1s", None),
        ("3.s", None),
        ("12.34.56", None),
        ("12..34", None),
        ("..1234", None),
        ("1234..", None),
    ];

    #[test]
    fn parse_sec_vectors() {
        for &(input, want) in PARSE_SEC {
            assert_eq!(parse_sec(input).ok(), want, "input {input:?}");
        }
    }

    // Vectors from systemd src/test/test-time-util.c (TEST(parse_time),
    // TEST(parse_sec_fix_0), TEST(parse_sec_def_infinity)).
    #[test]
    fn parse_time_default_units() {
        assert_eq!(parse_timespan("5", 1).ok(), Some(5));
        assert_eq!(
            parse_timespan("5", USEC_PER_MSEC).ok(),
            Some(5 * USEC_PER_MSEC)
        );
        assert_eq!(
            parse_timespan("5", USEC_PER_SEC).ok(),
            Some(5 * USEC_PER_SEC)
        );
        assert_eq!(parse_timespan("5s", 1).ok(), Some(5 * USEC_PER_SEC));
        assert_eq!(
            parse_timespan("5s", USEC_PER_MSEC).ok(),
            Some(5 * USEC_PER_SEC)
        );
        assert!(matches!(
            parse_timespan("11111111111111y", 1),
            Err(ValueError::OutOfRange(_))
        ));
        assert!(parse_timespan("1.1111111111111y", 1).is_ok());
        // A zero default unit must not divide by zero.
        assert_eq!(parse_timespan("5", 0).ok(), Some(5));
    }

    #[test]
    fn fix_0_and_def_infinity() {
        assert_eq!(parse_sec_fix_0("5s").ok(), Some(5 * USEC_PER_SEC));
        assert_eq!(parse_sec_fix_0("0s").ok(), Some(USEC_INFINITY));
        assert_eq!(parse_sec_fix_0("0").ok(), Some(USEC_INFINITY));
        assert_eq!(parse_sec_fix_0(" 0").ok(), Some(USEC_INFINITY));
        assert_eq!(parse_sec_def_infinity("5s").ok(), Some(5 * USEC_PER_SEC));
        assert_eq!(parse_sec_def_infinity("").ok(), Some(USEC_INFINITY));
        assert_eq!(parse_sec_def_infinity("     ").ok(), Some(USEC_INFINITY));
        assert_eq!(parse_sec_def_infinity("0s").ok(), Some(0));
        assert_eq!(parse_sec_def_infinity("0").ok(), Some(0));
        assert_eq!(parse_sec_def_infinity(" 0").ok(), Some(0));
        assert!(parse_sec_def_infinity("-5s").is_err());
    }

    // Values printed by systemd 252's unit dump (`systemd --test`), which
    // formats with an accuracy of one second.
    const DUMP: &[(u64, &str)] = &[
        (0, "0"),
        (USEC_INFINITY, "infinity"),
        (100_000, "100ms"),
        (90_000_000, "1min 30s"),
        (1_500_000, "1s"),
        (5_000_000, "5s"),
        (2_000_000, "2s"),
        (10_000_000, "10s"),
        (3_600_000_000, "1h"),
        (93_600_000_000, "1d 2h"),
        (USEC_PER_YEAR + USEC_PER_MONTH, "1y 1month"),
        (1, "1us"),
    ];

    #[test]
    fn dump_format() {
        for &(usec, want) in DUMP {
            assert_eq!(format_timespan(usec), want, "usec {usec}");
        }
    }

    #[test]
    fn format_with_accuracy() {
        assert_eq!(format_timespan_accuracy(1_500_000, 1), "1.500000s");
        assert_eq!(format_timespan_accuracy(1_500_000, USEC_PER_MSEC), "1.500s");
        assert_eq!(
            format_timespan_accuracy(90_500_000, USEC_PER_MSEC),
            "1min 30.500s"
        );
        assert_eq!(format_timespan_accuracy(1234, 1), "1.234ms");
    }

    // systemd src/test/test-time-util.c (TEST(format_timespan)): formatting
    // and parsing back is within the accuracy.
    #[test]
    fn format_round_trip() {
        let values = [
            0,
            1,
            USEC_PER_SEC,
            999 * USEC_PER_MSEC,
            1_234_567,
            12,
            123,
            1234,
            12345,
            123_456,
            12_345_678,
            1_200_000,
            1_230_000,
            1_234_000,
            1_234_500,
            1_234_560,
            986_087,
            500 * USEC_PER_MSEC,
            9 * USEC_PER_YEAR / 5 - 23,
            USEC_INFINITY,
        ];
        for accuracy in [1, USEC_PER_MSEC, USEC_PER_SEC] {
            for x in values {
                let text = format_timespan_accuracy(x, accuracy);
                let y = parse_sec(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                if x == USEC_INFINITY {
                    assert_eq!(y, USEC_INFINITY);
                } else {
                    assert!(
                        x.abs_diff(y) < accuracy.max(1) || x == y,
                        "{x} -> {text} -> {y} at {accuracy}"
                    );
                }
            }
        }
    }
}
