//! Booleans as systemd's `parse_boolean()` reads them.
//!
//! Flint accepts exactly the spellings systemd accepts, case-insensitively:
//! `1 yes y true t on` and `0 no n false f off`. Nothing else, not even the
//! empty string or surrounding whitespace (the lexer has already trimmed the
//! value of a unit-file line).

use super::ValueError;

const TRUE_WORDS: [&str; 6] = ["1", "yes", "y", "true", "t", "on"];
const FALSE_WORDS: [&str; 6] = ["0", "no", "n", "false", "f", "off"];

/// Parse a systemd boolean.
pub fn parse_bool(s: &str) -> Result<bool, ValueError> {
    if TRUE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Ok(true)
    } else if FALSE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Ok(false)
    } else {
        Err(ValueError::invalid(format_args!("not a boolean: '{s}'")))
    }
}

/// How systemd prints a boolean in dumps (`yes`/`no`).
pub fn format_bool(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from systemd src/test/test-parse-util.c (TEST(parse_boolean)),
    // plus the case-insensitive spellings.
    const TABLE: &[(&str, Option<bool>)] = &[
        ("1", Some(true)),
        ("y", Some(true)),
        ("Y", Some(true)),
        ("yes", Some(true)),
        ("YES", Some(true)),
        ("true", Some(true)),
        ("TRUE", Some(true)),
        ("on", Some(true)),
        ("ON", Some(true)),
        ("t", Some(true)),
        ("T", Some(true)),
        ("0", Some(false)),
        ("n", Some(false)),
        ("N", Some(false)),
        ("no", Some(false)),
        ("NO", Some(false)),
        ("false", Some(false)),
        ("FALSE", Some(false)),
        ("off", Some(false)),
        ("OFF", Some(false)),
        ("f", Some(false)),
        ("F", Some(false)),
        ("garbage", None),
        ("", None),
        ("full", None),
        (" yes", None),
        ("yes ", None),
        ("2", None),
        ("01", None),
    ];

    #[test]
    fn boolean_table() {
        for &(input, want) in TABLE {
            assert_eq!(parse_bool(input).ok(), want, "input {input:?}");
        }
    }

    #[test]
    fn format() {
        assert_eq!(format_bool(true), "yes");
        assert_eq!(format_bool(false), "no");
    }
}
