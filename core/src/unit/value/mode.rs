//! File modes (`SocketMode=`, `DirectoryMode=`, `UMask=`) as systemd's
//! `parse_mode()` reads them.
//!
//! Always octal, leading whitespace tolerated, no sign, at most `07777`.

use super::ValueError;
use super::int::{IntOptions, parse_u32_with};

/// Parse an octal access mode, `0`..=`0o7777`.
pub fn parse_mode(s: &str) -> Result<u32, ValueError> {
    let m = parse_u32_with(
        s,
        IntOptions {
            base: 8,
            refuse_plus_minus: true,
            ..IntOptions::default()
        },
    )?;
    if m > 0o7777 {
        return Err(ValueError::range(format_args!("mode {s} is above 07777")));
    }
    Ok(m)
}

/// How systemd prints a mode in dumps (`0666`).
pub fn format_mode(mode: u32) -> String {
    format!("{mode:04o}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from systemd src/test/test-parse-util.c (TEST(parse_mode)).
    const TABLE: &[(&str, Option<u32>)] = &[
        ("-1", None),
        ("+1", None),
        ("", None),
        ("888", None),
        ("77777", None),
        ("544", Some(0o544)),
        ("0544", Some(0o544)),
        ("0666", Some(0o666)),
        ("660", Some(0o660)),
        ("777", Some(0o777)),
        ("7777", Some(0o7777)),
        ("07777", Some(0o7777)),
        ("17777", None),
        (" 644", Some(0o644)),
        ("644 ", None),
        ("0x1ff", None),
        ("0", Some(0)),
    ];

    #[test]
    fn mode_table() {
        for &(input, want) in TABLE {
            assert_eq!(parse_mode(input).ok(), want, "input {input:?}");
        }
    }

    #[test]
    fn too_big_is_out_of_range() {
        assert!(matches!(
            parse_mode("17777"),
            Err(ValueError::OutOfRange(_))
        ));
        assert!(matches!(parse_mode("-1"), Err(ValueError::Invalid(_))));
    }

    #[test]
    fn format() {
        assert_eq!(format_mode(0o666), "0666");
        assert_eq!(format_mode(0o7777), "7777");
        assert_eq!(format_mode(0), "0000");
    }
}
