//! Fuzzes `%` specifier expansion with every table, for a plain unit, a
//! template instance and a user-manager context. Round trip: text passed
//! through `escape_specifiers` expands to itself.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use flint::unit::specifier::{SpecifierTable, escape_specifiers, expand};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    let name = ["plain.service", "fuzz@a\\x2fb-c.socket", "x-y-z@.service"][usize::from(sel % 3)]
        .parse()
        .expect("a valid unit name");
    let ctx = common::context(name, sel & 0x80 != 0);
    for table in [
        SpecifierTable::Full,
        SpecifierTable::UnitName,
        SpecifierTable::Path,
    ] {
        let _ = expand(s, &ctx, table);
    }
    let escaped = escape_specifiers(s);
    if s.len() < 4000 {
        assert_eq!(
            expand(&escaped, &ctx, SpecifierTable::Path).as_deref(),
            Ok(s),
            "{escaped:?}"
        );
    }
});
