//! Word splitting, quoting and C escapes, as systemd's `extract_first_word()`
//! (src/basic/extract-word.c) and `cunescape()` (src/basic/escape.c) do them.
//!
//! `ExecStart=`, `Environment=` and most list settings are split into words
//! by this code, so a single difference would change the argv a service
//! receives. The state machine below follows systemd's byte by byte: quotes
//! may open and close inside a word, C escapes are decoded inside and outside
//! quotes when asked, separators may be coalesced or not, and a relaxed mode
//! keeps unknown escapes verbatim. Two things differ, both because flint's
//! words are Rust strings: a word whose decoded bytes are not UTF-8 (`\xff`)
//! is an error, and `\u` escapes naming a UTF-16 surrogate are treated as
//! unknown escapes. A NUL in the input ends it, as it ends a C string.

use super::{ValueError, unichar_is_valid};

/// The flags of systemd's `extract_first_word()` (`EXTRACT_*`), as plain
/// booleans. `Default` is all off, i.e. split at separators, drop nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractFlags {
    /// `EXTRACT_RELAX`: accept an unbalanced quote and eat a trailing backslash.
    pub relax: bool,
    /// `EXTRACT_CUNESCAPE`: decode C escapes.
    pub cunescape: bool,
    /// `EXTRACT_UNESCAPE_RELAX`: keep unknown escapes and a trailing backslash verbatim.
    pub unescape_relax: bool,
    /// `EXTRACT_UNESCAPE_SEPARATORS`: a backslash before a separator (or a
    /// backslash) yields that character.
    pub unescape_separators: bool,
    /// `EXTRACT_KEEP_QUOTE`: quotes group words but stay in the word.
    pub keep_quote: bool,
    /// `EXTRACT_UNQUOTE`: quotes group words and are removed.
    pub unquote: bool,
    /// `EXTRACT_DONT_COALESCE_SEPARATORS`: every separator ends a (possibly empty) word.
    pub dont_coalesce_separators: bool,
    /// `EXTRACT_RETAIN_ESCAPE`: a backslash is an ordinary character.
    pub retain_escape: bool,
    /// `EXTRACT_RETAIN_SEPARATORS`: leave the separator at the cursor.
    pub retain_separators: bool,
}

impl ExtractFlags {
    /// `EXTRACT_UNQUOTE` alone.
    pub const UNQUOTE: ExtractFlags = ExtractFlags {
        relax: false,
        cunescape: false,
        unescape_relax: false,
        unescape_separators: false,
        keep_quote: false,
        unquote: true,
        dont_coalesce_separators: false,
        retain_escape: false,
        retain_separators: false,
    };
    /// `EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE`: the flags of `Exec*=` and `Environment=`.
    pub const UNQUOTE_CUNESCAPE: ExtractFlags = ExtractFlags {
        relax: false,
        cunescape: true,
        unescape_relax: false,
        unescape_separators: false,
        keep_quote: false,
        unquote: true,
        dont_coalesce_separators: false,
        retain_escape: false,
        retain_separators: false,
    };
    /// `EXTRACT_RELAX|EXTRACT_UNQUOTE`: how `$VAR` values are split in Exec lines.
    pub const RELAX_UNQUOTE: ExtractFlags = ExtractFlags {
        relax: true,
        cunescape: false,
        unescape_relax: false,
        unescape_separators: false,
        keep_quote: false,
        unquote: true,
        dont_coalesce_separators: false,
        retain_escape: false,
        retain_separators: false,
    };
}

/// systemd's default separators (`WHITESPACE`).
pub const DEFAULT_SEPARATORS: &str = " \t\n\r";

/// Decode one C escape; `p` starts right after the backslash. Returns the
/// code point, the number of input bytes used, and whether the value is a raw
/// byte (`\xHH`, `\ooo`) rather than a Unicode scalar.
#[allow(clippy::many_single_char_names)]
pub(crate) fn cunescape_one(p: &[u8], accept_nul: bool) -> Option<(u32, usize, bool)> {
    let at = |i: usize| p.get(i).copied().unwrap_or(0);
    let hex = |i: usize| char::from(at(i)).to_digit(16);
    let oct = |i: usize| char::from(at(i)).to_digit(8);
    let simple = |c: u8| Some((u32::from(c), 1, false));
    match at(0) {
        b'a' => simple(0x07),
        b'b' => simple(0x08),
        b'f' => simple(0x0c),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(0x0b),
        b'\\' => simple(b'\\'),
        b'"' => simple(b'"'),
        b'\'' => simple(b'\''),
        b's' => simple(b' '),
        b'x' => {
            let (a, b) = (hex(1)?, hex(2)?);
            if a == 0 && b == 0 && !accept_nul {
                return None;
            }
            Some(((a << 4) | b, 3, true))
        }
        b'u' => {
            let mut c = 0u32;
            for i in 1..=4 {
                c = (c << 4) | hex(i)?;
            }
            if c == 0 && !accept_nul {
                return None;
            }
            // A surrogate cannot be encoded in a Rust string.
            char::from_u32(c)?;
            Some((c, 5, false))
        }
        b'U' => {
            let mut c = 0u32;
            for i in 1..=8 {
                c = (c << 4) | hex(i)?;
            }
            if c == 0 && !accept_nul {
                return None;
            }
            if !unichar_is_valid(c) {
                return None;
            }
            Some((c, 9, false))
        }
        b'0'..=b'7' => {
            let (a, b, c) = (oct(0)?, oct(1)?, oct(2)?);
            if a == 0 && b == 0 && c == 0 && !accept_nul {
                return None;
            }
            let m = (a << 6) | (b << 3) | c;
            if m > 255 {
                return None;
            }
            Some((m, 3, true))
        }
        _ => None,
    }
}

fn push_unit(out: &mut Vec<u8>, value: u32, eight_bit: bool) {
    if eight_bit {
        out.push(u8::try_from(value).unwrap_or(b'?'));
    } else if let Some(c) = char::from_u32(value) {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

fn into_string(bytes: Vec<u8>) -> Result<String, ValueError> {
    String::from_utf8(bytes)
        .map_err(|_| ValueError::invalid("escape sequence produces bytes that are not UTF-8"))
}

/// Where the cursor goes after a word.
enum Next {
    /// The input is used up (systemd sets `*p = NULL`).
    Terminate,
    /// Continue at this byte offset.
    At(usize),
}

fn unbalanced() -> ValueError {
    ValueError::invalid("unbalanced quoting or invalid escape")
}

/// The state machine of `extract_first_word()` on bytes.
fn extract_bytes(
    input: &[u8],
    seps: &[u8],
    flags: ExtractFlags,
) -> Result<(Option<Vec<u8>>, Next), ValueError> {
    let at = |i: usize| input.get(i).copied().unwrap_or(0);
    let is_sep = |c: u8| c != 0 && seps.contains(&c);
    let mut word: Option<Vec<u8>> = flags.dont_coalesce_separators.then(Vec::new);
    let mut i = 0usize;
    let mut quote = 0u8;
    let mut backslash = false;

    loop {
        let c = at(i);
        if c == 0 {
            return Ok((word, Next::Terminate));
        }
        if is_sep(c) {
            if flags.dont_coalesce_separators {
                if !flags.retain_separators {
                    i += 1;
                }
                return Ok((word, Next::At(i)));
            }
        } else {
            word.get_or_insert_with(Vec::new);
            break;
        }
        i += 1;
    }
    let mut s = word.unwrap_or_default();

    loop {
        let c = at(i);
        if backslash {
            if c == 0 {
                if flags.unescape_relax && (quote == 0 || flags.relax) {
                    s.push(b'\\');
                    return Ok((Some(s), Next::Terminate));
                }
                if flags.relax {
                    return Ok((Some(s), Next::Terminate));
                }
                return Err(unbalanced());
            }
            if flags.cunescape || flags.unescape_separators {
                let decoded = if flags.cunescape {
                    cunescape_one(&input[i..], false)
                } else {
                    None
                };
                if let Some((value, used, eight_bit)) = decoded {
                    i += used - 1;
                    push_unit(&mut s, value, eight_bit);
                } else if flags.unescape_separators && (is_sep(c) || c == b'\\') {
                    s.push(c);
                } else if flags.unescape_relax {
                    s.push(b'\\');
                    s.push(c);
                } else {
                    return Err(ValueError::invalid(format_args!(
                        "unknown escape sequence '\\{}'",
                        char::from(c).escape_default()
                    )));
                }
            } else {
                s.push(c);
            }
            backslash = false;
        } else if quote != 0 {
            loop {
                let c = at(i);
                if c == 0 {
                    if flags.relax {
                        return Ok((Some(s), Next::Terminate));
                    }
                    return Err(unbalanced());
                } else if c == quote {
                    quote = 0;
                    if flags.unquote {
                        break;
                    }
                } else if c == b'\\' && !flags.retain_escape {
                    backslash = true;
                    break;
                }
                s.push(c);
                if quote == 0 {
                    break;
                }
                i += 1;
            }
        } else {
            loop {
                let c = at(i);
                if c == 0 {
                    return Ok((Some(s), Next::Terminate));
                } else if (c == b'\'' || c == b'"') && (flags.keep_quote || flags.unquote) {
                    quote = c;
                    if flags.unquote {
                        break;
                    }
                } else if c == b'\\' && !flags.retain_escape {
                    backslash = true;
                    break;
                } else if is_sep(c) {
                    if flags.dont_coalesce_separators {
                        if !flags.retain_separators {
                            i += 1;
                        }
                        return Ok((Some(s), Next::At(i)));
                    }
                    if !flags.retain_separators {
                        loop {
                            let c = at(i);
                            if c == 0 {
                                return Ok((Some(s), Next::Terminate));
                            }
                            if !is_sep(c) {
                                break;
                            }
                            i += 1;
                        }
                    }
                    return Ok((Some(s), Next::At(i)));
                }
                s.push(c);
                if quote != 0 {
                    break;
                }
                i += 1;
            }
        }
        i += 1;
    }
}

/// systemd's `extract_first_word()`. `cursor` is the rest of the input;
/// `None` means "used up". Returns the next word, or `Ok(None)` when there
/// is none. `separators` defaults to whitespace; only ASCII separators are
/// honoured. On error the cursor is left where it was.
pub fn extract_first_word(
    cursor: &mut Option<&str>,
    separators: Option<&str>,
    flags: ExtractFlags,
) -> Result<Option<String>, ValueError> {
    let Some(input) = *cursor else {
        return Ok(None);
    };
    let seps: Vec<u8> = separators
        .unwrap_or(DEFAULT_SEPARATORS)
        .bytes()
        .filter(u8::is_ascii)
        .collect();
    let (word, next) = extract_bytes(input.as_bytes(), &seps, flags)?;
    let word = word.map(into_string).transpose()?;
    *cursor = match next {
        Next::Terminate => None,
        // The split point is always just after or at an ASCII byte.
        Next::At(i) => Some(input.get(i..).unwrap_or_default()),
    };
    if word.is_none() {
        *cursor = None;
    }
    Ok(word)
}

/// systemd's `extract_first_word_and_warn()`: on an unknown escape the word
/// is extracted again with unknown escapes kept verbatim, and a warning
/// ("Ignoring unknown escape sequences: …") is pushed to `warnings`. An
/// unbalanced quote is still an error.
pub fn extract_first_word_and_warn(
    cursor: &mut Option<&str>,
    separators: Option<&str>,
    flags: ExtractFlags,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, ValueError> {
    let saved = *cursor;
    match extract_first_word(cursor, separators, flags) {
        Ok(w) => Ok(w),
        Err(first) if !flags.unescape_relax => {
            *cursor = saved;
            let relaxed = ExtractFlags {
                unescape_relax: true,
                ..flags
            };
            if let Ok(w) = extract_first_word(cursor, separators, relaxed) {
                warnings.push(format!(
                    "Ignoring unknown escape sequences: \"{}\"",
                    w.as_deref().unwrap_or("")
                ));
                Ok(w)
            } else {
                *cursor = saved;
                Err(if first.to_string().contains("UTF-8") {
                    first
                } else {
                    ValueError::invalid(format_args!(
                        "Unbalanced quoting: \"{}\"",
                        saved.unwrap_or("")
                    ))
                })
            }
        }
        Err(e) => Err(e),
    }
}

/// Split a whole value into words (systemd's `strv_split_full()` with
/// whitespace separators).
pub fn extract_words(s: &str, flags: ExtractFlags) -> Result<Vec<String>, ValueError> {
    extract_words_with(s, DEFAULT_SEPARATORS, flags)
}

/// Split a whole value into words at the given separators. With
/// `retain_separators` and `dont_coalesce_separators` the cursor can stop on
/// a separator, where every further call returns the same empty word; the
/// split ends there.
pub fn extract_words_with(
    s: &str,
    separators: &str,
    flags: ExtractFlags,
) -> Result<Vec<String>, ValueError> {
    let mut cursor = Some(s);
    let mut out = Vec::new();
    loop {
        let before = cursor.map(str::len);
        let Some(w) = extract_first_word(&mut cursor, Some(separators), flags)? else {
            break;
        };
        out.push(w);
        if cursor.map(str::len) == before {
            break;
        }
    }
    Ok(out)
}

/// systemd's `cunescape()` on bytes: decode C escapes. With `relax`, unknown
/// escapes and a trailing backslash are kept verbatim.
pub fn cunescape_bytes(s: &[u8], relax: bool, accept_nul: bool) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        if i + 1 == s.len() {
            if relax {
                out.push(b'\\');
                i += 1;
                continue;
            }
            return Err(ValueError::invalid("trailing backslash"));
        }
        // Escapes never read beyond the input: cunescape_one sees only the rest.
        match cunescape_one(&s[i + 1..], accept_nul) {
            Some((value, used, eight_bit)) => {
                push_unit(&mut out, value, eight_bit);
                i += 1 + used;
            }
            None if relax => {
                out.push(b'\\');
                i += 1;
            }
            None => {
                return Err(ValueError::invalid(format_args!(
                    "invalid escape sequence at '{}'",
                    String::from_utf8_lossy(&s[i..s.len().min(i + 10)])
                )));
            }
        }
    }
    Ok(out)
}

/// systemd's `cunescape()`: decode C escapes in `s`. With `relax`, unknown
/// escapes and a trailing backslash are kept verbatim. A result that is not
/// UTF-8 is an error.
pub fn cunescape(s: &str, relax: bool) -> Result<String, ValueError> {
    into_string(cunescape_bytes(s.as_bytes(), relax, false)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: ExtractFlags = ExtractFlags {
        relax: false,
        cunescape: false,
        unescape_relax: false,
        unescape_separators: false,
        keep_quote: false,
        unquote: false,
        dont_coalesce_separators: false,
        retain_escape: false,
        retain_separators: false,
    };
    const UNQUOTE: ExtractFlags = ExtractFlags::UNQUOTE;
    const RELAX: ExtractFlags = ExtractFlags {
        relax: true,
        ..NONE
    };
    const CUNESCAPE: ExtractFlags = ExtractFlags {
        cunescape: true,
        ..NONE
    };
    const UNESCAPE_RELAX: ExtractFlags = ExtractFlags {
        unescape_relax: true,
        ..NONE
    };
    const RETAIN_ESCAPE: ExtractFlags = ExtractFlags {
        retain_escape: true,
        ..NONE
    };
    const DONT_COALESCE: ExtractFlags = ExtractFlags {
        dont_coalesce_separators: true,
        ..NONE
    };
    const UNESCAPE_SEPS: ExtractFlags = ExtractFlags {
        unescape_separators: true,
        ..NONE
    };
    const KEEP_QUOTE: ExtractFlags = ExtractFlags {
        keep_quote: true,
        ..NONE
    };

    fn or(a: ExtractFlags, b: ExtractFlags) -> ExtractFlags {
        ExtractFlags {
            relax: a.relax || b.relax,
            cunescape: a.cunescape || b.cunescape,
            unescape_relax: a.unescape_relax || b.unescape_relax,
            unescape_separators: a.unescape_separators || b.unescape_separators,
            keep_quote: a.keep_quote || b.keep_quote,
            unquote: a.unquote || b.unquote,
            dont_coalesce_separators: a.dont_coalesce_separators || b.dont_coalesce_separators,
            retain_escape: a.retain_escape || b.retain_escape,
            retain_separators: a.retain_separators || b.retain_separators,
        }
    }

    /// One expected result of successive `extract_first_word()` calls:
    /// `Some(Some(word))`, `Some(None)` (no more words) or `None` (error).
    type Step = Option<Option<&'static str>>;
    const END: Step = Some(None);
    const ERR: Step = None;
    #[allow(clippy::unnecessary_wraps)]
    const fn w(s: &'static str) -> Step {
        Some(Some(s))
    }

    fn run(input: &str, seps: Option<&str>, flags: ExtractFlags, steps: &[Step]) {
        let mut cursor = Some(input);
        for (n, want) in steps.iter().enumerate() {
            let got = extract_first_word(&mut cursor, seps, flags).ok();
            let got = got.as_ref().map(|o| o.as_deref());
            assert_eq!(
                got, *want,
                "input {input:?} seps {seps:?} step {n} flags {flags:?}"
            );
            if want.is_none() {
                return;
            }
        }
    }

    // Vectors from systemd src/test/test-extract-word.c (TEST(extract_first_word)):
    // (input, separators, flags, successive results).
    #[test]
    fn extract_first_word_vectors() {
        let ws = DEFAULT_SEPARATORS;
        let rows: Vec<(&str, Option<&str>, ExtractFlags, Vec<Step>)> = vec![
            (
                "foobar waldo",
                None,
                NONE,
                vec![w("foobar"), w("waldo"), END],
            ),
            (
                "\"foobar\" 'waldo'",
                None,
                NONE,
                vec![w("\"foobar\""), w("'waldo'"), END],
            ),
            (
                "\"foobar\" 'waldo'",
                None,
                UNQUOTE,
                vec![w("foobar"), w("waldo"), END],
            ),
            ("\"", None, NONE, vec![w("\""), END]),
            ("\"", None, UNQUOTE, vec![ERR]),
            ("'", None, NONE, vec![w("'"), END]),
            ("'", None, UNQUOTE, vec![ERR]),
            ("'fooo", None, NONE, vec![w("'fooo"), END]),
            (
                "KEY=val \"KEY2=val with space\" \"KEY3=val with \\\"quotation\\\"\"",
                None,
                UNQUOTE,
                vec![
                    w("KEY=val"),
                    w("KEY2=val with space"),
                    w("KEY3=val with \"quotation\""),
                    END,
                ],
            ),
            (
                "KEY=val \"KEY2=val space\" x",
                None,
                RETAIN_ESCAPE,
                vec![w("KEY=val"), w("\"KEY2=val"), w("space\""), w("x")],
            ),
            ("'fooo", None, UNQUOTE, vec![ERR]),
            ("'fooo", None, or(UNQUOTE, RELAX), vec![w("fooo"), END]),
            ("\"fooo", None, or(UNQUOTE, RELAX), vec![w("fooo"), END]),
            ("yay'foo'bar", None, NONE, vec![w("yay'foo'bar"), END]),
            ("yay'foo'bar", None, UNQUOTE, vec![w("yayfoobar"), END]),
            ("   foobar   ", None, NONE, vec![w("foobar"), END]),
            (
                " foo\\ba\\x6ar ",
                None,
                CUNESCAPE,
                vec![w("foo\u{8}a\x6ar"), END],
            ),
            (" foo\\ba\\x6ar ", None, NONE, vec![w("foobax6ar"), END]),
            (
                "    f\\u00f6o \"pi\\U0001F4A9le\"   ",
                None,
                CUNESCAPE,
                vec![w("föo"), w("\"pi\u{1F4A9}le\""), END],
            ),
            ("fooo\\", None, RELAX, vec![w("fooo"), END]),
            ("fooo\\", None, UNESCAPE_RELAX, vec![w("fooo\\"), END]),
            (
                "fooo\\",
                None,
                or(UNESCAPE_RELAX, RELAX),
                vec![w("fooo\\"), END],
            ),
            (
                "fooo\\",
                None,
                or(CUNESCAPE, UNESCAPE_RELAX),
                vec![w("fooo\\"), END],
            ),
            ("\"foo\\", None, NONE, vec![ERR]),
            ("\"foo\\", None, or(UNQUOTE, RELAX), vec![w("foo"), END]),
            ("foo::bar", Some(":"), NONE, vec![w("foo"), w("bar"), END]),
            (
                "foo\\:bar::waldo",
                Some(":"),
                NONE,
                vec![w("foo:bar"), w("waldo"), END],
            ),
            ("\"foo\\", None, or(UNQUOTE, UNESCAPE_RELAX), vec![ERR]),
            (
                "\"foo\\",
                None,
                or(or(UNQUOTE, UNESCAPE_RELAX), RELAX),
                vec![w("foo\\"), END],
            ),
            (
                "\"foo\\",
                None,
                or(or(UNQUOTE, CUNESCAPE), or(UNESCAPE_RELAX, RELAX)),
                vec![w("foo\\"), END],
            ),
            (
                "fooo\\ bar quux",
                None,
                RELAX,
                vec![w("fooo bar"), w("quux"), END],
            ),
            (
                "fooo\\ bar quux",
                None,
                UNESCAPE_RELAX,
                vec![w("fooo bar"), w("quux"), END],
            ),
            (
                "fooo\\ bar quux",
                None,
                or(UNESCAPE_RELAX, RELAX),
                vec![w("fooo bar"), w("quux"), END],
            ),
            ("fooo\\ bar quux", None, CUNESCAPE, vec![ERR]),
            (
                "fooo\\ bar quux",
                None,
                or(CUNESCAPE, UNESCAPE_RELAX),
                vec![w("fooo\\ bar"), w("quux"), END],
            ),
            ("\\w+@\\K[\\d.]+", None, CUNESCAPE, vec![ERR]),
            (
                "\\w+@\\K[\\d.]+",
                None,
                or(CUNESCAPE, UNESCAPE_RELAX),
                vec![w("\\w+@\\K[\\d.]+"), END],
            ),
            (
                "\\w+\\b",
                None,
                or(CUNESCAPE, UNESCAPE_RELAX),
                vec![w("\\w+\u{8}"), END],
            ),
            ("-N ''", None, UNQUOTE, vec![w("-N"), w(""), END]),
            (
                ":foo\\:bar::waldo:",
                Some(":"),
                DONT_COALESCE,
                vec![w(""), w("foo:bar"), w(""), w("waldo"), w(""), END],
            ),
            ("foo\\xbar", None, NONE, vec![w("fooxbar"), END]),
            ("foo\\xbar", None, RETAIN_ESCAPE, vec![w("foo\\xbar"), END]),
            ("\\:", Some(":"), UNESCAPE_SEPS, vec![w(":"), END]),
            ("a\\:b", Some(":"), UNESCAPE_SEPS, vec![w("a:b"), END]),
            (
                "a\\ b:c",
                Some(" \t\n\r:"),
                UNESCAPE_SEPS,
                vec![w("a b"), w("c"), END],
            ),
            ("a\\ b:c\\x", Some(":"), UNESCAPE_SEPS, vec![ERR]),
            (
                "a\\\\ b:c\\\\x",
                Some(":"),
                UNESCAPE_SEPS,
                vec![w("a\\ b"), w("c\\x"), END],
            ),
            (
                "\\:",
                Some(":"),
                or(CUNESCAPE, UNESCAPE_SEPS),
                vec![w(":"), END],
            ),
            (
                "a\\:b",
                Some(":"),
                or(CUNESCAPE, UNESCAPE_SEPS),
                vec![w("a:b"), END],
            ),
            (
                "a\\ b:c",
                Some(" \t\n\r:"),
                or(CUNESCAPE, UNESCAPE_SEPS),
                vec![w("a b"), w("c"), END],
            ),
            (
                "a\\ b:c\\x",
                Some(":"),
                or(CUNESCAPE, UNESCAPE_SEPS),
                vec![ERR],
            ),
            (
                "a\\\\ b:c\\\\x",
                Some(":"),
                or(CUNESCAPE, UNESCAPE_SEPS),
                vec![w("a\\ b"), w("c\\x"), END],
            ),
            ("\\:", Some(":"), CUNESCAPE, vec![ERR]),
            ("", None, NONE, vec![END, END]),
            ("   ", None, NONE, vec![END]),
            ("a\"b c\"d", None, UNQUOTE, vec![w("ab cd"), END]),
            ("a\"b c\"d", None, KEEP_QUOTE, vec![w("a\"b c\"d"), END]),
            (
                "'a b' \"c'd\"",
                None,
                KEEP_QUOTE,
                vec![w("'a b'"), w("\"c'd\""), END],
            ),
            ("a\0b c", None, NONE, vec![w("a"), END]),
        ];
        for (input, seps, flags, steps) in rows {
            run(input, seps, flags, &steps);
        }
        let _ = ws;
    }

    // Vectors from systemd src/test/test-extract-word.c
    // (TEST(extract_first_word_and_warn)).
    #[test]
    fn and_warn_vectors() {
        let uc = ExtractFlags::UNQUOTE_CUNESCAPE;
        let cases: Vec<(&str, ExtractFlags, Option<&str>, bool)> = vec![
            ("foobar waldo", NONE, Some("foobar"), false),
            ("\"foobar\" 'waldo'", UNQUOTE, Some("foobar"), false),
            ("\"", UNQUOTE, None, false),
            (" foo\\ba\\x6ar ", CUNESCAPE, Some("foo\u{8}a\x6ar"), false),
            (" foo\\ba\\x6ar ", NONE, Some("foobax6ar"), false),
            ("fooo\\", or(CUNESCAPE, RELAX), Some("fooo"), false),
            ("\"foo\\", or(UNQUOTE, RELAX), Some("foo"), false),
            ("fooo\\ bar quux", CUNESCAPE, Some("fooo\\ bar"), true),
            ("\\w+@\\K[\\d.]+", CUNESCAPE, Some("\\w+@\\K[\\d.]+"), true),
            ("\\w+\\b", CUNESCAPE, Some("\\w+\u{8}"), true),
            ("a\\;b", uc, Some("a\\;b"), true),
            ("'x\\", uc, None, false),
        ];
        for (input, flags, want, warned) in cases {
            let mut cursor = Some(input);
            let mut warnings = Vec::new();
            let got = extract_first_word_and_warn(&mut cursor, None, flags, &mut warnings)
                .ok()
                .flatten();
            assert_eq!(got.as_deref(), want, "input {input:?}");
            assert_eq!(
                !warnings.is_empty(),
                warned,
                "input {input:?}: {warnings:?}"
            );
        }
    }

    // Vectors from systemd src/test/test-extract-word.c (TEST(extract_many_words))
    // and strv_split_full() rows of src/test/test-strv.c.
    #[test]
    fn whole_splits() {
        let uc = ExtractFlags::UNQUOTE_CUNESCAPE;
        assert_eq!(
            extract_words("  one  two three ", NONE).ok(),
            Some(vec!["one".into(), "two".into(), "three".into()])
        );
        assert_eq!(
            extract_words("/bin/echo \"hello world\" 'single q' a\"b c\"d", uc).ok(),
            Some(vec![
                "/bin/echo".into(),
                "hello world".into(),
                "single q".into(),
                "ab cd".into()
            ])
        );
        assert_eq!(
            extract_words("a\\x41\\tb", uc).ok(),
            Some(vec!["aA\tb".into()])
        );
        assert_eq!(extract_words("'unbalanced", uc).ok(), None);
        assert_eq!(extract_words("\\xff", uc).ok(), None);
        assert_eq!(
            extract_words_with("a:b::c", ":", DONT_COALESCE).ok(),
            Some(vec!["a".into(), "b".into(), String::new(), "c".into()])
        );
        assert_eq!(extract_words("", uc).ok(), Some(vec![]));
    }

    #[test]
    fn split_ends_on_a_retained_separator() {
        // Found by fuzzing: the cursor stays on the space, and the split used
        // to return empty words forever.
        let flags = ExtractFlags {
            unquote: true,
            dont_coalesce_separators: true,
            retain_separators: true,
            ..ExtractFlags::default()
        };
        assert_eq!(
            extract_words_with("devgdm ", ",; ", flags).ok(),
            Some(vec!["devgdm".into(), String::new()])
        );
    }

    // Vectors from systemd src/test/test-escape.c (TEST(cunescape)).
    #[test]
    fn cunescape_vectors() {
        assert_eq!(
            cunescape(
                "abc\\\\\\\"\\b\\f\\a\\n\\r\\t\\v\\003\\177\\234\\313\\000\\x00",
                false
            )
            .ok(),
            None
        );
        assert_eq!(
            cunescape_bytes(
                b"abc\\\\\\\"\\b\\f\\a\\n\\r\\t\\v\\003\\177\\234\\313\\000\\x00",
                true,
                false
            )
            .ok(),
            Some(b"abc\\\"\x08\x0c\x07\n\r\t\x0b\x03\x7f\x9c\xcb\\000\\x00".to_vec())
        );
        assert_eq!(
            cunescape_bytes(
                b"abc\\\\\\\"\\b\\f\\a\\n\\r\\t\\v\\003\\177\\234\\313\\000\\x00",
                true,
                true
            )
            .ok(),
            Some(b"abc\\\"\x08\x0c\x07\n\r\t\x0b\x03\x7f\x9c\xcb\0\0".to_vec())
        );
        assert_eq!(cunescape("\\u0000", false).ok(), None);
        assert_eq!(
            cunescape("\\u00DF\\U000000df\\u03a0\\U00000041", false).ok(),
            Some("ßßΠA".into())
        );
        assert_eq!(cunescape("ßßΠA", false).ok(), Some("ßßΠA".into()));
        assert_eq!(cunescape("\\073", false).ok(), Some(";".into()));
        assert_eq!(
            cunescape("A=A\\\\x0aB", false).ok(),
            Some("A=A\\x0aB".into())
        );
        assert_eq!(cunescape("A=A\\x0aB", false).ok(), Some("A=A\nB".into()));
        assert_eq!(cunescape("\\x5", false).ok(), None);
        assert_eq!(cunescape("\\x5", true).ok(), Some("\\x5".into()));
        assert_eq!(cunescape("\\", false).ok(), None);
        assert_eq!(cunescape("\\", true).ok(), Some("\\".into()));
        assert_eq!(cunescape("\\s", false).ok(), Some(" ".into()));
        assert_eq!(cunescape("\\400", false).ok(), None);
        assert_eq!(cunescape("\\U00110000", false).ok(), None);
        assert_eq!(cunescape("\\U0000FFFE", false).ok(), None);
        assert_eq!(cunescape("\\ud800", false).ok(), None);
        assert_eq!(cunescape("\\ud800", true).ok(), Some("\\ud800".into()));
        assert_eq!(cunescape("\\xc3\\xa4", false).ok(), Some("ä".into()));
        assert_eq!(cunescape("\\xff", false).ok(), None);
    }
}
