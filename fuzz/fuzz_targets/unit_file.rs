//! Fuzzes the unit-file lexer: any bytes, as a fragment or as a drop-in.
//! The lexer must never panic, and every assignment it returns must carry a
//! line number inside the file and a non-empty key. (A `[]` header is a
//! section named "", which the loader ignores as unknown, as systemd does.)

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/fuzz/fuzz.service");
    // Lines end at `\n`, `\r`, `\r\n`, `\n\r` or NUL, as in systemd's
    // `read_line()`, so this is an upper bound on the line count.
    let ends = data
        .iter()
        .filter(|&&b| matches!(b, b'\n' | b'\r' | 0))
        .count();
    let lines = u32::try_from(ends + 1).unwrap_or(u32::MAX);
    if let Ok(parsed) = flint::unit::lexer::parse(path, data) {
        for a in &parsed.assignments {
            assert!(a.line >= 1 && a.line <= lines, "line {} of {lines}", a.line);
            assert!(!a.key.is_empty());
        }
        for (section, line) in &parsed.sections {
            assert!(
                *line >= 1 && *line <= lines,
                "section {section} at line {line}"
            );
        }
    }
});
