//! Fuzzes `Exec*=` command lines: prefixes `- @ : + ! !!`, quoting, C
//! escapes, `;` separators, with and without `%` specifier expansion, then
//! `$VAR` expansion of the resulting argv. Properties: every command kept
//! has an executable and an argv, and the executable path is simplified.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use flint::unit::specifier::{SpecifierTable, expand};
use flint::unit::value::env::replace_env_argv_full;
use flint::unit::value::exec::parse_exec_detailed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = common::default_context();
    let plain = parse_exec_detailed(s, &mut |w, _| Ok(w.to_owned()));
    let expanded = parse_exec_detailed(s, &mut |w, is_path| {
        let table = if is_path {
            SpecifierTable::Path
        } else {
            SpecifierTable::Full
        };
        expand(w, &ctx, table).map_err(|e| e.to_string())
    });
    let env = vec![
        ("A".to_owned(), "one two".to_owned()),
        ("EMPTY".to_owned(), String::new()),
        ("Q".to_owned(), "\"quoted word\" x".to_owned()),
    ];
    for line in [&plain, &expanded] {
        for cmd in &line.commands {
            assert!(!cmd.path.is_empty(), "empty path from {s:?}");
            assert!(!cmd.argv.is_empty(), "empty argv from {s:?}");
            assert!(!cmd.path.contains("//"), "unsimplified {:?}", cmd.path);
            assert!(!cmd.path.contains("/./"), "unsimplified {:?}", cmd.path);
            let _ = replace_env_argv_full(&cmd.argv, &env);
        }
    }
    // Without `%` in the input the expansion is the identity. A C escape
    // (`\x25`) can produce a `%` after unquoting, which is then expanded
    // (as in systemd), so inputs with backslashes are left out.
    if !s.contains('%') && !s.contains('\\') {
        assert_eq!(plain, expanded, "{s:?}");
    }
});
