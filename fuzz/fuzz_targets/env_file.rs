//! Fuzzes `EnvironmentFile=` contents as systemd's `load_env_file()` reads
//! them (quoting, comments, continuations). Properties: the plain and full
//! readers agree, and every entry kept is a valid assignment.

#![no_main]

use flint::unit::value::env::{env_assignment_is_valid, parse_env_file, parse_env_file_full};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let full = parse_env_file_full(data);
    let plain = parse_env_file(data);
    match (&full, &plain) {
        (Ok(f), Ok(p)) => {
            assert_eq!(&f.entries, p);
            for (k, v) in p {
                assert!(env_assignment_is_valid(&format!("{k}={v}")), "{k:?}={v:?}");
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!("readers disagree: {full:?} vs {plain:?}"),
    }
});
