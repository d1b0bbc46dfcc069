//! Integers as systemd's `safe_atou*()`/`safe_atoi*()` read them.
//!
//! systemd parses numbers with C's `strtoul()` plus its own rules, and unit
//! files rely on the result: leading whitespace is skipped (except for ports),
//! a `+` sign is fine, `0x` means hex, a leading `0` means octal (so `080` is
//! invalid and `010` is 8), `0b`/`0o` are accepted, trailing garbage is
//! invalid, and a `-` sign on an unsigned value is out of range ("-0" is 0).
//! Flint reproduces those rules exactly so that a unit means the same number
//! under flint as under systemd.

use super::{ValueError, WHITESPACE};

/// Options of systemd's `safe_ato*_full()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntOptions {
    /// Fixed base (2, 8, 10, 16); `0` means C-style autodetection plus `0b`/`0o`.
    pub base: u32,
    /// Refuse leading whitespace (ports).
    pub refuse_leading_whitespace: bool,
    /// Refuse a leading `+` or `-` (file modes).
    pub refuse_plus_minus: bool,
    /// Refuse a leading `0` unless the value is exactly `0`.
    pub refuse_leading_zero: bool,
}

/// Result of the `strtoul()`/`strtol()` emulation: magnitude, sign, and how
/// far the conversion went.
struct Strto {
    magnitude: u64,
    overflow: bool,
    negative: bool,
    /// Index of the first unconsumed byte; 0 when nothing was converted.
    end: usize,
}

/// C's `isspace()` in the C locale.
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn digit_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 10),
        b'A'..=b'Z' => Some(u32::from(b - b'A') + 10),
        _ => None,
    }
}

/// Emulates glibc's `strtoull()` number scanning (base 0, 2, 8, 10 or 16).
fn strto(s: &[u8], mut base: u32) -> Strto {
    let mut i = 0;
    while i < s.len() && c_isspace(s[i]) {
        i += 1;
    }
    let mut negative = false;
    if let Some(&sign @ (b'+' | b'-')) = s.get(i) {
        negative = sign == b'-';
        i += 1;
    }
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    if (base == 0 || base == 16)
        && at(i) == b'0'
        && (at(i + 1) | 0x20) == b'x'
        && digit_value(at(i + 2)).is_some_and(|d| d < 16)
    {
        i += 2;
        base = 16;
    } else if base == 0 {
        base = if at(i) == b'0' { 8 } else { 10 };
    }
    let start = i;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).and_then(|&b| digit_value(b)).filter(|&d| d < base) {
        match magnitude
            .checked_mul(u64::from(base))
            .and_then(|m| m.checked_add(u64::from(d)))
        {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return Strto {
            magnitude: 0,
            overflow: false,
            negative: false,
            end: 0,
        };
    }
    Strto {
        magnitude,
        overflow,
        negative,
        end: i,
    }
}

/// systemd's `mangle_base()`: Python-style `0b`/`0o` prefixes when the base is
/// autodetected.
fn mangle_base(s: &str, base: u32) -> (&str, u32) {
    if base != 0 {
        return (s, base);
    }
    if let Some(rest) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        return (rest, 2);
    }
    if let Some(rest) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        return (rest, 8);
    }
    (s, base)
}

fn skip_ws(s: &str) -> &str {
    s.trim_start_matches(|c: char| c.is_ascii() && WHITESPACE.contains(&(c as u8)))
}

fn not_a_number(s: &str) -> ValueError {
    ValueError::invalid(format_args!("not a number: '{s}'"))
}

fn too_big(s: &str) -> ValueError {
    ValueError::range(format_args!("number out of range: '{s}'"))
}

/// systemd's `safe_atollu_full()`: an unsigned 64-bit number with options.
pub fn parse_u64_with(input: &str, opts: IntOptions) -> Result<u64, ValueError> {
    if opts.refuse_leading_whitespace
        && input
            .as_bytes()
            .first()
            .is_some_and(|b| WHITESPACE.contains(b))
    {
        return Err(not_a_number(input));
    }
    let s = skip_ws(input);
    if opts.refuse_plus_minus && (s.starts_with('+') || s.starts_with('-')) {
        return Err(not_a_number(input));
    }
    if opts.refuse_leading_zero && s.starts_with('0') && s != "0" {
        return Err(not_a_number(input));
    }
    let (s, base) = mangle_base(s, opts.base);
    let r = strto(s.as_bytes(), base);
    if r.overflow {
        return Err(too_big(input));
    }
    if r.end == 0 || r.end != s.len() {
        return Err(not_a_number(input));
    }
    if r.negative && r.magnitude != 0 {
        return Err(too_big(input));
    }
    Ok(r.magnitude)
}

/// systemd's `safe_atou64()`.
pub fn parse_u64(s: &str) -> Result<u64, ValueError> {
    parse_u64_with(s, IntOptions::default())
}

/// systemd's `safe_atou_full()`.
pub fn parse_u32_with(s: &str, opts: IntOptions) -> Result<u32, ValueError> {
    let v = parse_u64_with(s, opts)?;
    u32::try_from(v).map_err(|_| too_big(s))
}

/// systemd's `safe_atou()`.
pub fn parse_u32(s: &str) -> Result<u32, ValueError> {
    parse_u32_with(s, IntOptions::default())
}

/// systemd's `safe_atou16()`.
pub fn parse_u16(s: &str) -> Result<u16, ValueError> {
    let v = parse_u64(s)?;
    u16::try_from(v).map_err(|_| too_big(s))
}

/// systemd's `safe_atou8()`.
pub fn parse_u8(s: &str) -> Result<u8, ValueError> {
    let v = parse_u64(s)?;
    u8::try_from(v).map_err(|_| too_big(s))
}

/// systemd's `safe_atolli()`: a signed 64-bit number.
pub fn parse_i64(input: &str) -> Result<i64, ValueError> {
    let s = skip_ws(input);
    let (s, base) = mangle_base(s, 0);
    let r = strto(s.as_bytes(), base);
    if r.end == 0 {
        return Err(not_a_number(input));
    }
    let value = if r.negative {
        if r.overflow || r.magnitude > i64::MIN.unsigned_abs() {
            return Err(too_big(input));
        }
        0i64.checked_sub_unsigned(r.magnitude)
            .ok_or_else(|| too_big(input))?
    } else {
        if r.overflow {
            return Err(too_big(input));
        }
        i64::try_from(r.magnitude).map_err(|_| too_big(input))?
    };
    if r.end != s.len() {
        return Err(not_a_number(input));
    }
    Ok(value)
}

/// systemd's `safe_atoi()`.
pub fn parse_i32(s: &str) -> Result<i32, ValueError> {
    let v = parse_i64(s)?;
    i32::try_from(v).map_err(|_| too_big(s))
}

/// systemd's `parse_ip_port()`: 1..=65535, no leading whitespace, otherwise
/// the `safe_atou` rules (`+80`, `0x50` are 80; `080` is invalid).
pub fn parse_port(s: &str) -> Result<u16, ValueError> {
    let v = parse_u32_with(
        s,
        IntOptions {
            refuse_leading_whitespace: true,
            ..IntOptions::default()
        },
    )?;
    let port = u16::try_from(v).map_err(|_| too_big(s))?;
    if port == 0 {
        return Err(ValueError::invalid("port 0 is not allowed"));
    }
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum E {
        Inval,
        Range,
    }

    fn class<T>(r: Result<T, ValueError>) -> Result<T, E> {
        r.map_err(|e| match e {
            ValueError::OutOfRange(_) => E::Range,
            _ => E::Inval,
        })
    }

    // Vectors from systemd src/test/test-parse-util.c (TEST(safe_atou),
    // TEST(safe_atou64), TEST(safe_atoi), TEST(safe_atoi64), TEST(safe_atou_bases),
    // TEST(safe_atou8)), extended with the strtoul() corner cases.
    const U32: &[(&str, Result<u32, E>)] = &[
        ("12345", Ok(12345)),
        ("  12345", Ok(12345)),
        ("\n12345", Ok(12345)),
        ("+12345", Ok(12345)),
        ("  +12345", Ok(12345)),
        ("-12345", Err(E::Range)),
        ("  -12345", Err(E::Range)),
        ("-0", Ok(0)),
        ("12345 ", Err(E::Inval)),
        ("junk", Err(E::Inval)),
        ("123x", Err(E::Inval)),
        ("", Err(E::Inval)),
        ("4294967295", Ok(u32::MAX)),
        ("4294967296", Err(E::Range)),
        ("99999999999999999999999", Err(E::Range)),
        ("0x1F90", Ok(8080)),
        ("0X10", Ok(16)),
        ("010", Ok(8)),
        ("080", Err(E::Inval)),
        ("0b101", Ok(5)),
        ("0B101", Ok(5)),
        ("0o17", Ok(15)),
        ("0O17", Ok(15)),
        ("0b", Err(E::Inval)),
        ("0x", Err(E::Inval)),
        ("0o", Err(E::Inval)),
        ("0b2", Err(E::Inval)),
        ("+0b1", Err(E::Inval)),
        ("0", Ok(0)),
        ("00", Ok(0)),
        ("+", Err(E::Inval)),
        ("-", Err(E::Inval)),
    ];

    #[test]
    fn u32_table() {
        for (input, want) in U32 {
            assert_eq!(&class(parse_u32(input)), want, "input {input:?}");
        }
    }

    const U64: &[(&str, Result<u64, E>)] = &[
        ("12345", Ok(12345)),
        ("  12345", Ok(12345)),
        ("-12345", Err(E::Range)),
        ("18446744073709551615", Ok(u64::MAX)),
        ("18446744073709551616", Err(E::Range)),
        ("0xffffffffffffffff", Ok(u64::MAX)),
        ("junk", Err(E::Inval)),
        ("123x", Err(E::Inval)),
        ("12345 ", Err(E::Inval)),
    ];

    #[test]
    fn u64_table() {
        for (input, want) in U64 {
            assert_eq!(&class(parse_u64(input)), want, "input {input:?}");
        }
    }

    const I32: &[(&str, Result<i32, E>)] = &[
        ("-12345", Ok(-12345)),
        ("  -12345", Ok(-12345)),
        ("+12345", Ok(12345)),
        ("2147483647", Ok(i32::MAX)),
        ("-2147483648", Ok(i32::MIN)),
        ("2147483648", Err(E::Range)),
        ("-2147483649", Err(E::Range)),
        ("junk", Err(E::Inval)),
        ("123x", Err(E::Inval)),
        ("-0x10", Ok(-16)),
        ("0b11", Ok(3)),
        ("-0b11", Err(E::Inval)),
        ("012", Ok(10)),
        ("", Err(E::Inval)),
    ];

    #[test]
    fn i32_table() {
        for (input, want) in I32 {
            assert_eq!(&class(parse_i32(input)), want, "input {input:?}");
        }
    }

    const I64: &[(&str, Result<i64, E>)] = &[
        ("-12345", Ok(-12345)),
        ("9223372036854775807", Ok(i64::MAX)),
        ("-9223372036854775808", Ok(i64::MIN)),
        ("9223372036854775808", Err(E::Range)),
        ("-9223372036854775809", Err(E::Range)),
        ("12345 ", Err(E::Inval)),
    ];

    #[test]
    fn i64_table() {
        for (input, want) in I64 {
            assert_eq!(&class(parse_i64(input)), want, "input {input:?}");
        }
    }

    #[test]
    fn u8_and_u16() {
        assert_eq!(class(parse_u8("255")), Ok(255));
        assert_eq!(class(parse_u8("256")), Err(E::Range));
        assert_eq!(class(parse_u16("65535")), Ok(65535));
        assert_eq!(class(parse_u16("65536")), Err(E::Range));
    }

    // Port rows observed with systemd 252 (systemd-socket-activate -l PORT) and
    // systemd src/test/test-parse-util.c (TEST(parse_ip_port)).
    const PORTS: &[(&str, Result<u16, E>)] = &[
        ("1", Ok(1)),
        ("80", Ok(80)),
        ("65535", Ok(65535)),
        ("+80", Ok(80)),
        ("0x50", Ok(80)),
        ("0x1F90", Ok(8080)),
        ("65536", Err(E::Range)),
        ("0", Err(E::Inval)),
        ("080", Err(E::Inval)),
        (" 80", Err(E::Inval)),
        ("80 ", Err(E::Inval)),
        ("-1", Err(E::Range)),
        ("", Err(E::Inval)),
        ("http", Err(E::Inval)),
    ];

    #[test]
    fn port_table() {
        for (input, want) in PORTS {
            assert_eq!(&class(parse_port(input)), want, "input {input:?}");
        }
    }

    #[test]
    fn fixed_base_options() {
        let hex = IntOptions {
            base: 16,
            ..IntOptions::default()
        };
        assert_eq!(class(parse_u32_with("ff", hex)), Ok(255));
        assert_eq!(class(parse_u32_with("0xff", hex)), Ok(255));
        let no_zero = IntOptions {
            refuse_leading_zero: true,
            ..IntOptions::default()
        };
        assert_eq!(class(parse_u32_with("0", no_zero)), Ok(0));
        assert_eq!(class(parse_u32_with("010", no_zero)), Err(E::Inval));
    }
}
