//! Fuzzes the time-span grammar (`1min 30s`, `500ms`, `infinity`, bare
//! numbers with a default unit). Round trip: whatever parses, printed with
//! systemd's `format_timespan()` at microsecond accuracy, parses back to the
//! same value; the one-second print used by `flint show` parses too.

#![no_main]

use flint::unit::value::time::{
    USEC_PER_MSEC, USEC_PER_SEC, format_timespan, format_timespan_accuracy, parse_sec,
    parse_sec_def_infinity, parse_sec_fix_0, parse_timespan,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    let default_unit = [1, USEC_PER_MSEC, USEC_PER_SEC, 60 * USEC_PER_SEC][usize::from(sel & 3)];
    let _ = parse_sec_fix_0(s);
    let _ = parse_sec_def_infinity(s);
    let _ = parse_sec(s);
    if let Ok(usec) = parse_timespan(s, default_unit) {
        let exact = format_timespan_accuracy(usec, 1);
        assert_eq!(
            parse_timespan(&exact, default_unit).ok(),
            Some(usec),
            "{s:?} -> {usec} -> {exact:?}"
        );
        let coarse = format_timespan(usec);
        assert!(parse_sec(&coarse).is_ok(), "{usec} -> {coarse:?}");
    }
});
