//! Fuzzes word extraction (`extract_first_word()` with every flag
//! combination) and C-unescaping. The first two bytes pick the flags and the
//! separators; the rest is the text. Properties: extraction always ends, and
//! with `unquote` and without escapes a word never contains a quote the input
//! did not have.

#![no_main]

use flint::unit::value::words::{
    ExtractFlags, cunescape, cunescape_bytes, extract_first_word, extract_words_with,
};
use libfuzzer_sys::fuzz_target;

const SEPARATORS: [&str; 4] = [" \t\n\r", ":", ",; ", "="];

fuzz_target!(|data: &[u8]| {
    let [f0, f1, rest @ ..] = data else {
        return;
    };
    let flags = ExtractFlags {
        relax: f0 & 1 != 0,
        cunescape: f0 & 2 != 0,
        unescape_relax: f0 & 4 != 0,
        unescape_separators: f0 & 8 != 0,
        keep_quote: f0 & 16 != 0,
        unquote: f0 & 32 != 0,
        dont_coalesce_separators: f0 & 64 != 0,
        retain_escape: f0 & 128 != 0,
        retain_separators: f1 & 1 != 0,
    };
    let seps = SEPARATORS[usize::from(f1 >> 1) % SEPARATORS.len()];
    let _ = cunescape_bytes(rest, f1 & 8 != 0, f1 & 16 != 0);
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    let _ = cunescape(s, f1 & 8 != 0);
    let _ = extract_words_with(s, seps, flags);
    // Word by word: the cursor must shrink or end, never loop. With
    // `retain_separators` a separator stays at the cursor, so only the first
    // word is taken then.
    let mut cursor = Some(s);
    let mut steps = 0usize;
    loop {
        let before = cursor.map(str::len);
        match extract_first_word(&mut cursor, Some(seps), flags) {
            Ok(Some(_)) if !flags.retain_separators => {
                let after = cursor.map(str::len);
                assert!(
                    after.unwrap_or(0) < before.unwrap_or(usize::MAX) || after.is_none(),
                    "cursor did not move on {s:?}"
                );
            }
            _ => break,
        }
        steps += 1;
        assert!(steps <= s.len() + 1, "more words than bytes in {s:?}");
    }
});
