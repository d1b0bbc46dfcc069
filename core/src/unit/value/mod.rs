//! Value grammars of unit files.
//!
//! Every setting in a unit file is a string after the [`lexer`](super::lexer)
//! has done its work; this module turns those strings into typed values the
//! way systemd 252+ does, quirks included, so that a unit accepted (or
//! refused) by systemd is accepted (or refused) by flint. Each grammar lives in
//! its own submodule and reports failures as a [`ValueError`] whose variant
//! mirrors the errno systemd would log (`EINVAL`, `ERANGE`, `ENODEV`,
//! `ENAMETOOLONG`). None of these parsers panics on any input: they are fed
//! untrusted files and are fuzzed.

pub mod address;
pub mod bool;
pub mod env;
pub mod exec;
pub mod exit_status;
pub mod int;
pub mod mode;
pub mod percent;
pub mod process;
pub mod signal;
pub mod size;
pub mod time;
pub mod words;

/// Why a value was refused. The variant is the class of error systemd reports
/// for the same input; the string says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The text does not follow the grammar (systemd: `EINVAL`, "Invalid argument").
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The text is well formed but the number does not fit (systemd: `ERANGE`,
    /// "Numerical result out of range").
    #[error("value out of range: {0}")]
    OutOfRange(String),
    /// A network interface named in the value does not exist (systemd: `ENODEV`,
    /// "No such device").
    #[error("no such device: {0}")]
    NoDevice(String),
    /// A path is too long for its destination (systemd: `ENAMETOOLONG`,
    /// "File name too long").
    #[error("name too long: {0}")]
    NameTooLong(String),
}

impl ValueError {
    /// The `strerror()` text systemd prints for this class of error, for
    /// messages that must read like systemd's ("Failed to parse …: Invalid argument").
    pub fn strerror(&self) -> &'static str {
        match self {
            ValueError::Invalid(_) => "Invalid argument",
            ValueError::OutOfRange(_) => "Numerical result out of range",
            ValueError::NoDevice(_) => "No such device",
            ValueError::NameTooLong(_) => "File name too long",
        }
    }

    pub(crate) fn invalid(what: impl std::fmt::Display) -> Self {
        ValueError::Invalid(what.to_string())
    }

    pub(crate) fn range(what: impl std::fmt::Display) -> Self {
        ValueError::OutOfRange(what.to_string())
    }
}

/// The characters systemd calls whitespace (`WHITESPACE` in its sources).
pub(crate) const WHITESPACE: &[u8] = b" \t\n\r";

/// Whether `c` is a code point systemd accepts in UTF-8 text: not a surrogate,
/// not one of the non-characters U+FDD0..U+FDEF, U+xFFFE, U+xFFFF.
pub(crate) fn unichar_is_valid(c: u32) -> bool {
    c < 0x11_0000
        && (c & 0xFFFF_F800) != 0xD800
        && !(0xFDD0..=0xFDEF).contains(&c)
        && (c & 0xFFFE) != 0xFFFE
}

/// systemd's `utf8_is_valid()`: well-formed UTF-8 without non-characters.
/// Returns the text as `&str` when valid.
pub(crate) fn utf8_valid(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    s.chars().all(|c| unichar_is_valid(c as u32)).then_some(s)
}

/// Strip systemd's whitespace (space, tab, CR, LF) from both ends.
pub(crate) fn strip_ws(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && WHITESPACE.contains(&(c as u8)))
}

/// systemd's `cescape()`: printable ASCII stays, `\\`, `"`, `'` and the usual
/// control characters get C escapes, any other byte below 0x20 or from 0x7f
/// up becomes octal `\ooo` (so non-ASCII UTF-8 is printed byte-wise).
pub(crate) fn cescape(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        match b {
            b'\x07' => out.push_str("\\a"),
            b'\x08' => out.push_str("\\b"),
            b'\x0c' => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\x0b' => out.push_str("\\v"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\'' => out.push_str("\\'"),
            b' '..=b'~' => out.push(char::from(b)),
            _ => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_rules_follow_systemd() {
        assert!(utf8_valid("grüße".as_bytes()).is_some());
        assert!(utf8_valid(b"\xff").is_none());
        assert!(utf8_valid("fo\u{fffe}o".as_bytes()).is_none());
        assert!(utf8_valid("b\u{ffff}ar".as_bytes()).is_none());
        assert!(utf8_valid("\u{fdd0}".as_bytes()).is_none());
        assert!(utf8_valid("\u{1fffe}".as_bytes()).is_none());
    }

    #[test]
    fn cescape_matches_systemd_print_form() {
        assert_eq!(cescape(b"/run/a\\x20b"), "/run/a\\\\x20b");
        assert_eq!(cescape(b"x\"y"), "x\\\"y");
        assert_eq!(cescape(b"a\tb\x01\xff"), "a\\tb\\001\\377");
    }

    #[test]
    fn strerror_texts() {
        assert_eq!(ValueError::invalid("x").strerror(), "Invalid argument");
        assert_eq!(
            ValueError::range("x").strerror(),
            "Numerical result out of range"
        );
    }
}
