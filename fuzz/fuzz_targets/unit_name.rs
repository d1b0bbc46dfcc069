//! Fuzzes unit names and unit-name escaping. Round trips:
//! `unescape(escape(s)) == s` (`systemd-escape` and `--unescape`), the path
//! forms (`--path`) give back the simplified path, `UnitName` parses its own
//! print form, and templates and instances convert into each other.

#![no_main]

use flint::unit::name::{
    self, UnitName, UnitType, escape, escape_path, try_escape_path, unescape, unescape_bytes,
    unescape_path,
};
use libfuzzer_sys::fuzz_target;

/// The path `systemd-escape --path` stands for once simplified: always
/// absolute, without empty or `.` components.
fn simplified(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(n) = UnitName::parse(s) {
        assert_eq!(n.as_str(), s);
        assert_eq!(UnitName::parse(&n.to_string()).as_ref(), Ok(&n));
        assert_eq!(
            n.unit_type().suffix(),
            &s[s.rfind('.').map_or(0, |d| d + 1)..]
        );
        if let Some(t) = n.template() {
            assert!(t.is_template(), "{t}");
            let inst = n.instance().unwrap_or_default();
            assert_eq!(t.with_instance(inst).as_ref(), Ok(&n));
        }
        if let Ok(other) = n.with_type(UnitType::Socket) {
            assert_eq!(other.prefix_and_instance(), n.prefix_and_instance());
        }
        let _ = n.to_path();
    }

    let nul_free = !s.contains('\0');
    let e = escape(s);
    assert!(
        e.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.\\-".contains(&b)),
        "{e:?}"
    );
    assert!(!e.starts_with('.'), "{e:?}");
    if nul_free {
        assert_eq!(unescape(&e).as_deref(), Ok(s), "escape gave {e:?}");
        if !s.is_empty() && e.len() < 200 {
            let inst = format!("fuzz@{e}.service");
            let n = UnitName::parse(&inst).unwrap_or_else(|err| panic!("{inst:?}: {err}"));
            assert_eq!(n.instance(), Some(e.as_str()));
        }
    }
    let _ = unescape_bytes(s);
    let _ = unescape_path(s);
    let _ = escape_path(s);
    if let Ok(p) = try_escape_path(s)
        && nul_free
        && p.len() < 4000
    {
        assert_eq!(
            unescape_path(&p).as_deref(),
            Ok(simplified(s).as_str()),
            "{p:?}"
        );
        if let Ok(m) = UnitName::from_path(s, UnitType::Mount) {
            assert_eq!(m.to_path().as_deref(), Ok(simplified(s).as_str()));
        }
    }
    let _ = UnitName::from_path_instance("fuzz", s, UnitType::Service);
    if let Ok(m) = name::mangle(s) {
        assert_eq!(UnitName::parse(m.as_str()).as_ref(), Ok(&m));
    }
    let _ = name::is_hidden_or_backup(s);
    let _ = name::is_valid_prefix(s);
    let _ = name::is_valid_instance(s);
});
