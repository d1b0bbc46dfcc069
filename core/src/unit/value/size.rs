//! Byte sizes (`ReceiveBuffer=`, `SendBuffer=`, `PipeSize=` …) as systemd's
//! `parse_size()` reads them.
//!
//! A size is a sum of `<number>[.<fraction>][<suffix>]` terms with suffixes in
//! strictly decreasing order (`4T3G3B`), each suffix one of `E P T G M K B`
//! (powers of 1024 for IEC, of 1000 for SI). Whitespace may precede a number
//! and separate a number from its suffix. Negative values are out of range.

use super::{ValueError, WHITESPACE};

const IEC: [(&str, u64); 8] = [
    ("E", 1 << 60),
    ("P", 1 << 50),
    ("T", 1 << 40),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
    ("B", 1),
    ("", 1),
];

const SI: [(&str, u64); 8] = [
    ("E", 1_000_000_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("T", 1_000_000_000_000),
    ("G", 1_000_000_000),
    ("M", 1_000_000),
    ("K", 1_000),
    ("B", 1),
    ("", 1),
];

/// A byte count as systemd's `format_bytes()` prints it: base 1024, one
/// decimal, truncated (`1.2M`, `32.0M`), plain bytes below 1K (`512B`).
pub fn format_bytes(t: u64) -> String {
    // E down to K: the suffixed rows of the parser's table.
    let table = &IEC[..6];
    for (i, (suffix, factor)) in table.iter().enumerate() {
        if t >= *factor {
            let decimal = match table.get(i + 1) {
                Some((_, next)) => (t / next * 10 / 1024) % 10,
                None => (t * 10 / factor) % 10,
            };
            return format!("{}.{decimal}{suffix}", t / factor);
        }
    }
    format!("{t}B")
}

/// A size with base-1024 suffixes (systemd's `parse_size(…, 1024, …)`).
pub fn parse_size_iec(s: &str) -> Result<u64, ValueError> {
    parse_size(s, &IEC)
}

/// A size with base-1000 suffixes (systemd's `parse_size(…, 1000, …)`).
pub fn parse_size_si(s: &str) -> Result<u64, ValueError> {
    parse_size(s, &SI)
}

fn skip(b: &[u8], mut i: usize, pred: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && pred(b[i]) {
        i += 1;
    }
    i
}

fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Decimal digits as `strtoull(…, 10)` reads them after its own whitespace
/// and sign handling: (value or overflow, negative, bytes consumed; 0 = none).
fn strtoull10(b: &[u8]) -> (Option<u64>, bool, usize) {
    let mut i = skip(b, 0, c_isspace);
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
        (Some(0), false, 0)
    } else {
        (v, negative, i)
    }
}

#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::many_single_char_names
)]
fn parse_size(s: &str, table: &[(&str, u64); 8]) -> Result<u64, ValueError> {
    let b = s.as_bytes();
    let invalid = || ValueError::invalid(format_args!("not a size: '{s}'"));
    let range = || ValueError::range(format_args!("size out of range: '{s}'"));
    let mut p = 0;
    let mut total: u64 = 0;
    let mut start_pos = 0;
    loop {
        p = skip(b, p, |c| WHITESPACE.contains(&c));
        let rest = b.get(p..).unwrap_or_default();
        let (l, negative, used) = strtoull10(rest);
        let l = l.ok_or_else(range)?;
        if used == 0 {
            return Err(invalid());
        }
        if negative || rest.first() == Some(&b'-') {
            return Err(range());
        }
        let mut e = p + used;
        let mut frac = 0f64;
        if b.get(e) == Some(&b'.') {
            e += 1;
            if b.get(e).is_some_and(u8::is_ascii_digit) {
                let (l2, _, used2) = strtoull10(b.get(e..).unwrap_or_default());
                let l2 = l2.ok_or_else(range)?;
                frac = l2 as f64;
                for _ in 0..used2 {
                    frac /= 10.0;
                }
                e += used2;
            }
        }
        e = skip(b, e, |c| WHITESPACE.contains(&c));
        let tail = b.get(e..).unwrap_or_default();
        let i = (start_pos..table.len())
            .find(|&i| tail.starts_with(table[i].0.as_bytes()))
            .ok_or_else(invalid)?;
        let (suffix, factor) = table[i];
        if l.saturating_add(u64::from(frac > 0.0)) > u64::MAX / factor {
            return Err(range());
        }
        let tmp = l * factor + (frac * factor as f64) as u64;
        total = total.checked_add(tmp).ok_or_else(range)?;
        p = e + suffix.len();
        start_pos = i + 1;
        if p >= b.len() {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes_as_systemd() {
        assert_eq!(format_bytes(512), "512B");
        assert_eq!(format_bytes(1024), "1.0K");
        assert_eq!(format_bytes(32 << 20), "32.0M");
        // Truncated, not rounded, as systemd does.
        assert_eq!(format_bytes(1_258_291), "1.1M");
        assert_eq!(format_bytes(1_310_720), "1.2M");
        assert_eq!(format_bytes(1536 << 20), "1.5G");
    }

    #[derive(Debug, PartialEq)]
    enum E {
        Inval,
        Range,
    }

    const K: u64 = 1024;

    // Vectors from systemd src/test/test-parse-util.c (TEST(parse_size)).
    fn iec_table() -> Vec<(&'static str, Result<u64, E>)> {
        vec![
            ("", Err(E::Inval)),
            ("111", Ok(111)),
            ("111.4", Ok(111)),
            (" 112 B", Ok(112)),
            (" 112.6 B", Ok(112)),
            ("3.5 K", Ok(3 * K + 512)),
            ("3. K", Ok(3 * K)),
            ("3.0 K", Ok(3 * K)),
            ("3. 0 K", Err(E::Inval)),
            (" 4 M 11.5K", Ok(4 * K * K + 11 * K + 512)),
            ("3B3.5G", Err(E::Inval)),
            ("3.5G3B", Ok(3 * K * K * K + 512 * K * K + 3)),
            ("3.5G 4B", Ok(3 * K * K * K + 512 * K * K + 4)),
            ("3B3G4T", Err(E::Inval)),
            ("4T3G3B", Ok((4 * K + 3) * K * K * K + 3)),
            (" 4 T 3 G 3 B", Ok((4 * K + 3) * K * K * K + 3)),
            ("12P", Ok(12 * K * K * K * K * K)),
            ("12P12P", Err(E::Inval)),
            ("3E 2P", Ok((3 * K + 2) * K * K * K * K * K)),
            ("12X", Err(E::Inval)),
            ("12.5X", Err(E::Inval)),
            ("12.5e3", Err(E::Inval)),
            ("1024E", Err(E::Range)),
            ("-1", Err(E::Range)),
            ("-1024E", Err(E::Range)),
            ("-1024P", Err(E::Range)),
            ("-10B 20K", Err(E::Range)),
            // flint additions: the suffix forms units use.
            ("8M", Ok(8 * K * K)),
            ("1G", Ok(K * K * K)),
            ("64K", Ok(64 * K)),
            ("1.5M", Ok(K * K + 512 * K)),
            ("5 ", Ok(5)),
            ("5K ", Err(E::Inval)),
            ("99999999999999999999", Err(E::Range)),
        ]
    }

    fn class(r: Result<u64, ValueError>) -> Result<u64, E> {
        r.map_err(|e| {
            if matches!(e, ValueError::OutOfRange(_)) {
                E::Range
            } else {
                E::Inval
            }
        })
    }

    #[test]
    fn iec() {
        for (input, want) in iec_table() {
            assert_eq!(class(parse_size_iec(input)), want, "input {input:?}");
        }
    }

    #[test]
    fn si() {
        assert_eq!(class(parse_size_si("3.5 K")), Ok(3500));
        assert_eq!(class(parse_size_si("4T3G3B")), Ok(4_003_000_000_003));
        assert_eq!(class(parse_size_si("1000E")), Err(E::Range));
        assert_eq!(class(parse_size_si("3E 2P")), Ok(3_002_000_000_000_000_000));
    }
}
