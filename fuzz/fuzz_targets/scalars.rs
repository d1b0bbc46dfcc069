//! Fuzzes the scalar grammars: integers (with systemd's `safe_atou*`
//! quirks and every base), ports, IEC/SI sizes, octal modes, signals,
//! booleans and exit statuses (single and lists). Round trips: printed
//! integers, modes, signals, booleans and exit-status names parse back to the
//! same value.

#![no_main]

use flint::unit::value::bool::{format_bool, parse_bool};
use flint::unit::value::exit_status::{
    exit_status_name, parse_exit_status, parse_exit_status_list, parse_exit_status_list_full,
};
use flint::unit::value::int::{
    IntOptions, parse_i32, parse_i64, parse_port, parse_u8, parse_u16, parse_u32, parse_u32_with,
    parse_u64, parse_u64_with,
};
use flint::unit::value::mode::{format_mode, parse_mode};
use flint::unit::value::signal::{format_signal, parse_signal, signal_name};
use flint::unit::value::size::{parse_size_iec, parse_size_si};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    let opts = IntOptions {
        base: [0, 2, 8, 10, 16, 0, 10, 16][usize::from(sel & 7)],
        refuse_leading_whitespace: sel & 8 != 0,
        refuse_plus_minus: sel & 16 != 0,
        refuse_leading_zero: sel & 32 != 0,
    };
    let _ = parse_u64_with(s, opts);
    let _ = parse_u32_with(s, opts);
    if let Ok(n) = parse_u64(s) {
        assert_eq!(parse_u64(&n.to_string()), Ok(n), "{s:?}");
    }
    if let Ok(n) = parse_u32(s) {
        assert_eq!(parse_u64(s), Ok(u64::from(n)), "{s:?}");
    }
    let _ = (parse_u16(s), parse_u8(s), parse_port(s));
    if let Ok(n) = parse_i64(s) {
        assert_eq!(parse_i64(&n.to_string()), Ok(n), "{s:?}");
    }
    if let Ok(n) = parse_i32(s) {
        assert_eq!(parse_i64(s), Ok(i64::from(n)), "{s:?}");
    }
    let _ = (parse_size_iec(s), parse_size_si(s));
    if let Ok(m) = parse_mode(s) {
        assert!(m <= 0o7777, "{s:?} gave {m:o}");
        assert_eq!(parse_mode(&format_mode(m)), Ok(m), "{s:?}");
    }
    if let Ok(sig) = parse_signal(s) {
        assert_eq!(parse_signal(&format_signal(sig)), Ok(sig), "{s:?}");
        if let Some(name) = signal_name(sig) {
            assert_eq!(parse_signal(name), Ok(sig));
        }
    }
    if let Ok(b) = parse_bool(s) {
        assert_eq!(parse_bool(format_bool(b)), Ok(b));
    }
    if let Ok(status) = parse_exit_status(s)
        && let Some(name) = exit_status_name(status)
    {
        assert_eq!(parse_exit_status(name), Ok(status), "{name}");
    }
    if let Ok(list) = parse_exit_status_list_full(s) {
        assert!(list.statuses.windows(2).all(|w| w[0] < w[1]), "{s:?}");
        assert!(list.signals.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    }
    let _ = parse_exit_status_list(s);
});
