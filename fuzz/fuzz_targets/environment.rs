//! Fuzzes `Environment=` lines and `${VAR}`/`$VAR` expansion. Properties:
//! every assignment kept has a valid name, and names are unique (a name
//! repeated on the line replaces the earlier value).

#![no_main]

#[path = "common/mod.rs"]
mod common;

use flint::unit::specifier::{SpecifierTable, expand};
use flint::unit::value::env::{
    env_assignment_is_valid, env_name_is_valid, parse_environment, parse_environment_with,
    replace_env, replace_env_argv,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (vars, _warnings) = parse_environment(s);
    for (i, (k, v)) in vars.iter().enumerate() {
        assert!(env_name_is_valid(k), "{k:?} from {s:?}");
        assert!(env_assignment_is_valid(&format!("{k}={v}")));
        assert!(vars[i + 1..].iter().all(|(k2, _)| k2 != k), "{k:?} twice");
    }
    let ctx = common::default_context();
    let _ = parse_environment_with(s, &mut |w| {
        expand(w, &ctx, SpecifierTable::Full).map_err(|e| e.to_string())
    });
    let _ = replace_env(s, &vars);
    let argv: Vec<String> = s.split(' ').map(str::to_owned).collect();
    let _ = replace_env_argv(&argv, &vars);
});
