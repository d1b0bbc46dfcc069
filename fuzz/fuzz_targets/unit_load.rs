//! Fuzzes the whole load of a unit: the input is written to a unit file (and
//! optionally a drop-in) in a private search directory and loaded through
//! `flint::unit::load::load_file`, then rendered as `flint show` JSON.
//!
//! Input layout: byte 0 picks the unit name (plain service, socket, template
//! instance); the rest is the fragment, and everything after the first
//! `\0--\0` goes to `<name>.d/fuzz.conf`.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use flint::unit::load;
use flint::unit::loader::SearchPath;
use libfuzzer_sys::fuzz_target;

const NAMES: [(&str, &str); 4] = [
    ("fuzz.service", "fuzz.service"),
    ("fuzz.socket", "fuzz.socket"),
    ("fuzz@.service", "fuzz@inst\\x2dance.service"),
    ("fuzz@.socket", "fuzz@a-b.socket"),
];

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("flint-fuzz-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create fuzz dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (file, instance) = NAMES[usize::from(sel) % NAMES.len()];
    let (fragment, dropin) = match rest.windows(4).position(|w| w == b"\0--\0") {
        Some(i) => (&rest[..i], Some(&rest[i + 4..])),
        None => (rest, None),
    };
    let d = dir();
    for (f, _) in NAMES {
        let _ = std::fs::remove_file(d.join(f));
        let _ = std::fs::remove_dir_all(d.join(format!("{f}.d")));
    }
    std::fs::write(d.join(file), fragment).expect("write fragment");
    if let Some(dropin) = dropin {
        let dd = d.join(format!("{file}.d"));
        std::fs::create_dir_all(&dd).expect("create drop-in dir");
        std::fs::write(dd.join("fuzz.conf"), dropin).expect("write drop-in");
    }
    let search = SearchPath::from_dirs(vec![d.clone()], sel & 0x80 != 0);
    // By file, as `flint check ./file` does.
    if let Ok(unit) = load::load_file(&search, &d.join(file)) {
        let _ = unit.to_json();
        let _ = unit.has_errors();
        for l in unit.listens() {
            let _ = (l.target.to_string(), l.can_accept(), l.node_path());
        }
    }
    // By name, with the instance filled in, as `flint show NAME` does.
    if let Ok(name) = instance.parse() {
        let unit = load::load(&search, &name);
        let _ = unit.to_json();
    }
});
