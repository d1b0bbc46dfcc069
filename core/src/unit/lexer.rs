//! The unit-file lexer: bytes in, `[Section]` headers and `Key=Value`
//! assignments out, exactly as systemd's `config_parse()`
//! (src/shared/conf-parser.c) reads them.
//!
//! It is hand-written because the ini crates get the details that real units
//! depend on wrong: a trailing backslash continues a line (replaced by a
//! space, the next line appended with its indentation), a comment line
//! *inside* a continuation is skipped and the continuation resumes after it,
//! an empty line ends a continuation, an open continuation at end of file is
//! still parsed, `#`/`;` start a comment only at the start of a line, and
//! quotes mean nothing at this level (they belong to the value grammars).
//! Lines end at `\n`, `\r`, `\r\n`, `\n\r` or NUL, as systemd's `read_line()`
//! has it.
//!
//! The lexer does not know which sections and keys exist; the directive
//! table judges them. What makes systemd refuse the whole file is an `Err`
//! here: a `[Section` header without `]`, control characters or quotes in a
//! section name, a line of 1 MiB or more, and (as systemd 252–262 actually
//! behave, whatever their message says) a line that is not valid UTF-8.
//! Everything systemd merely warns about becomes a warning in
//! [`ParsedFile::warnings`].

use std::path::Path;

use super::Diagnostic;
use super::value::{strip_ws, utf8_valid};

/// systemd's `LONG_LINE_MAX`: a line (or a joined continuation) must be
/// shorter than this.
pub const LONG_LINE_MAX: usize = 1024 * 1024;

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";
const WHITESPACE: &[u8] = b" \t\n\r";

/// One `Key=Value` line (after joining continuations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The section the assignment is in, exactly as written in its header.
    pub section: String,
    /// The key, whitespace-trimmed. Keys are case-sensitive.
    pub key: String,
    /// The value, whitespace-trimmed; may be empty (the "reset" idiom).
    pub value: String,
    /// The physical line (1-based) where the assignment starts.
    pub line: u32,
}

/// The result of lexing one unit file or drop-in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedFile {
    /// Assignments in file order.
    pub assignments: Vec<Assignment>,
    /// Every section header seen, in order, with its line (repeats included).
    pub sections: Vec<(String, u32)>,
    /// Lines systemd ignores with a warning.
    pub warnings: Vec<Diagnostic>,
}

/// Split `bytes` into physical lines the way systemd's `read_line()` does.
/// Returns (line content, too long?) pairs.
fn physical_lines(bytes: &[u8]) -> Vec<(&[u8], bool)> {
    const TEN: u8 = 1;
    const THIRTEEN: u8 = 2;
    const ZERO: u8 = 4;
    let category = |c: u8| match c {
        b'\n' => TEN,
        b'\r' => THIRTEEN,
        0 => ZERO,
        _ => 0,
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let mut content_end = None;
        let mut previous = 0u8;
        let mut too_long = false;
        while i < bytes.len() {
            let eol = category(bytes[i]);
            if previous & ZERO != 0
                || (eol == 0 && previous != 0)
                || (eol != 0 && previous & eol != 0)
            {
                break;
            }
            if eol != 0 {
                content_end.get_or_insert(i);
                previous |= eol;
            } else if i - start >= LONG_LINE_MAX {
                too_long = true;
            }
            i += 1;
        }
        let end = content_end.unwrap_or(i);
        too_long |= end - start >= LONG_LINE_MAX;
        out.push((&bytes[start..end], too_long));
    }
    out
}

fn strip_bytes(mut b: &[u8]) -> &[u8] {
    while let Some((first, rest)) = b.split_first() {
        if !WHITESPACE.contains(first) {
            break;
        }
        b = rest;
    }
    while let Some((last, rest)) = b.split_last() {
        if !WHITESPACE.contains(last) {
            break;
        }
        b = rest;
    }
    b
}

/// systemd's `string_is_safe()`: no control characters, quotes, backslash or DEL.
fn string_is_safe(s: &str) -> bool {
    !s.bytes()
        .any(|c| (1..b' ').contains(&c) || matches!(c, b'"' | b'\'' | b'\\' | 0x7f))
}

/// Odd number of trailing backslashes, counted the way systemd's scan does.
fn ends_escaped(p: &[u8]) -> bool {
    let mut escaped = false;
    for &c in p {
        if escaped {
            escaped = false;
        } else if c == b'\\' {
            escaped = true;
        }
    }
    escaped
}

struct Lexer<'a> {
    path: &'a Path,
    section: Option<String>,
    out: ParsedFile,
}

impl Lexer<'_> {
    /// systemd's `parse_line()` for one logical line.
    fn logical_line(&mut self, raw: &[u8], line: u32) -> Result<(), Diagnostic> {
        let l = strip_bytes(raw);
        if l.is_empty() {
            return Ok(());
        }
        let Some(l) = utf8_valid(l) else {
            return Err(Diagnostic::error(
                self.path,
                line,
                format!(
                    "String is not UTF-8 clean, ignoring assignment: {}",
                    String::from_utf8_lossy(l)
                ),
            ));
        };
        if let Some(inner) = l.strip_prefix('[') {
            let Some(name) = inner.strip_suffix(']') else {
                return Err(Diagnostic::error(
                    self.path,
                    line,
                    format!("Invalid section header '{l}'"),
                ));
            };
            if !string_is_safe(name) {
                return Err(Diagnostic::error(
                    self.path,
                    line,
                    format!("Bad characters in section header '{l}'"),
                ));
            }
            self.section = Some(name.to_owned());
            self.out.sections.push((name.to_owned(), line));
            return Ok(());
        }
        let Some(section) = &self.section else {
            self.out.warnings.push(Diagnostic::warning(
                self.path,
                line,
                "Assignment outside of section. Ignoring.",
            ));
            return Ok(());
        };
        match l.split_once('=') {
            None => {
                self.out.warnings.push(Diagnostic::warning(
                    self.path,
                    line,
                    "Missing '=', ignoring line.",
                ));
            }
            Some(("", _)) => {
                self.out.warnings.push(Diagnostic::warning(
                    self.path,
                    line,
                    "Missing key name before '=', ignoring line.",
                ));
            }
            Some((key, value)) => self.out.assignments.push(Assignment {
                section: section.clone(),
                key: strip_ws(key).to_owned(),
                value: strip_ws(value).to_owned(),
                line,
            }),
        }
        Ok(())
    }
}

/// Lex a unit file. `path` is only used in diagnostics.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<ParsedFile, Diagnostic> {
    let mut lexer = Lexer {
        path,
        section: None,
        out: ParsedFile::default(),
    };
    let mut continuation: Option<(Vec<u8>, u32)> = None;
    let mut bom_seen = false;
    let mut line: u32 = 0;

    for (buf, too_long) in physical_lines(bytes) {
        if too_long {
            return Err(Diagnostic::error(path, line, "Line too long"));
        }
        line = line.saturating_add(1);
        let first = buf.iter().position(|c| !WHITESPACE.contains(c));
        if first.is_some_and(|i| matches!(buf[i], b'#' | b';')) {
            continue;
        }
        let mut l = buf;
        if !bom_seen && let Some(rest) = buf.strip_prefix(UTF8_BOM) {
            l = rest;
            bom_seen = true;
        }
        let mut joined = match continuation.take() {
            Some((mut c, start)) => {
                if c.len() + l.len() > LONG_LINE_MAX {
                    return Err(Diagnostic::error(path, line, "Continuation line too long"));
                }
                c.extend_from_slice(l);
                (c, start)
            }
            None => (l.to_vec(), line),
        };
        // Only the new piece is scanned: the joined text before it ends
        // in the blank that replaced its backslash, where systemd's scan of
        // the whole buffer is never inside an escape, so the answer is the
        // same without going over the buffer again for every line (a
        // quadratic cost: 60,000 continued lines took 12 s).
        if ends_escaped(l) {
            if let Some(last) = joined.0.last_mut() {
                *last = b' ';
            }
            continuation = Some(joined);
            continue;
        }
        lexer.logical_line(&joined.0, joined.1)?;
        joined.0.clear();
    }
    if let Some((c, start)) = continuation {
        lexer.logical_line(&c, start)?;
    }
    Ok(lexer.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::Severity;

    fn lex(text: &str) -> Result<ParsedFile, Diagnostic> {
        parse(Path::new("/x/a.service"), text.as_bytes())
    }

    fn values(text: &str, key: &str) -> Vec<String> {
        lex(text)
            .map(|p| {
                p.assignments
                    .into_iter()
                    .filter(|a| a.key == key)
                    .map(|a| a.value)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn x1000(s: &str) -> String {
        s.repeat(1000)
    }

    /// The last value of `setting1`, or `None` if the file failed.
    fn setting1(text: &str) -> Option<String> {
        let parsed = lex(text).ok()?;
        Some(
            parsed
                .assignments
                .iter()
                .rev()
                .find(|a| a.key == "setting1")
                .map(|a| a.value.clone())
                .unwrap_or_default(),
        )
    }

    // The config files of systemd src/test/test-conf-parser.c
    // (TEST(config_parse)) with the value of `setting1` systemd expects
    // (`None`: the whole file is refused with ENOBUFS).
    #[test]
    fn conf_parser_vectors() {
        let abcd = x1000("ABCD");
        let big = x1000(&format!("{}{}", x1000("x"), "abcde".repeat(10)));
        let many = x1000(&format!("{}{}\\\n", x1000("x"), "abcde".repeat(10)));
        let rows: Vec<(String, Option<String>)> = vec![
            ("[Section]\nsetting1=1\n".into(), Some("1".into())),
            ("[Section]\nsetting1=1".into(), Some("1".into())),
            ("\n\n\n\n[Section]\n\n\nsetting1=1".into(), Some("1".into())),
            ("[Section]\n[Section]\nsetting1=1\nsetting1=    2 \t\nsetting1=    1\n".into(), Some("1".into())),
            ("[Section]\n[Section]\nsetting1=1\nsetting1=2\\\n   \nsetting1=1\n".into(), Some("1".into())),
            ("[Section]\nsetting1=1\\\n2\\\n3\n".into(), Some("1 2 3".into())),
            ("[Section]\n#hogehoge\\\nsetting1=1\\\n2\\\n3\n".into(), Some("1 2 3".into())),
            ("[Section]\nsetting1=1\\\n#hogehoge\\\n2\\\n3\n".into(), Some("1 2 3".into())),
            ("[Section]\n   #hogehoge\\\n   setting1=1\\\n2\\\n3\n".into(), Some("1 2 3".into())),
            ("[Section]\n   setting1=1\\\n   #hogehoge\\\n2\\\n3\n".into(), Some("1 2 3".into())),
            ("[Section]\nsetting1=1\\\n2\\\n3\\\n".into(), Some("1 2 3".into())),
            ("[Section]\nsetting1=1\\\\\\\n\\\\2\n".into(), Some("1\\\\ \\\\2".into())),
            (format!("\n[Section]\n\nsetting1={abcd}\n"), Some(abcd.clone())),
            (format!("[Section]\nsetting1={abcd}\\\nfoobar"), Some(format!("{abcd} foobar"))),
            (format!("[Section]\nsetting1={abcd}\\\nfoobar\\\n"), Some(format!("{abcd} foobar"))),
            (format!("[Section]\nsetting1={big}\n"), None),
            (format!("[Section]\nsetting1={many}xxx"), None),
            (
                "[Section]\nsetting1=2\n[NoWarnSection]\nsetting1=3\n[WarnSection]\nsetting1=3\n[X-Section]\nsetting1=3\n"
                    .into(),
                Some("3".into()),
            ),
        ];
        for (n, (text, want)) in rows.iter().enumerate() {
            assert_eq!(&setting1(text), want, "config_file[{n}]");
        }
        // The lexer keeps the section of every assignment; the directive
        // table decides which sections count.
        let p = lex(&rows[17].0).unwrap_or_default();
        let in_section: Vec<&str> = p
            .assignments
            .iter()
            .filter(|a| a.section == "Section")
            .map(|a| a.value.as_str())
            .collect();
        assert_eq!(in_section, ["2"]);
        assert_eq!(p.sections.len(), 4);
    }

    // The oracle example of section 6.1 of flint's systemd reference
    // (systemd 252 `systemd --test` dump of a drop-in).
    #[test]
    fn oracle_dropin() {
        let text = "[Service]\nExecStart=\nExecStart=/bin/sh -c 'echo \"$$X ${Y}\" \\\n# a comment inside continuation\n   && echo done' \\; tail \"a\\x41\\tb\" %% $$Z $X\nEnvironment=X=1\nEnvironment=\nEnvironment=Y=2 \"Z=3 4\" W\nEnvironment=Y=5\n";
        let p = lex(text).unwrap_or_default();
        let got: Vec<(&str, &str, u32)> = p
            .assignments
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str(), a.line))
            .collect();
        assert_eq!(
            got,
            [
                ("ExecStart", "", 2),
                (
                    "ExecStart",
                    "/bin/sh -c 'echo \"$$X ${Y}\"     && echo done' \\; tail \"a\\x41\\tb\" %% $$Z $X",
                    3
                ),
                ("Environment", "X=1", 6),
                ("Environment", "", 7),
                ("Environment", "Y=2 \"Z=3 4\" W", 8),
                ("Environment", "Y=5", 9),
            ]
        );
        assert!(p.warnings.is_empty());
        // With the continuation line starting with `;` it is a comment, and
        // the value swallows the next line.
        let swallowed = text.replace("   && echo done'", "   ; echo done'");
        let p = lex(&swallowed).unwrap_or_default();
        assert_eq!(
            p.assignments[1].value,
            "/bin/sh -c 'echo \"$$X ${Y}\"  Environment=X=1"
        );
        assert_eq!(p.assignments.len(), 5);
    }

    #[test]
    fn section_headers() {
        let e = lex("[Service\nA=1\n").err();
        assert_eq!(
            e.as_ref().map(|d| d.message.as_str()),
            Some("Invalid section header '[Service'")
        );
        assert_eq!(
            e.as_ref().map(|d| (d.line, d.severity)),
            Some((1, Severity::Error))
        );
        assert_eq!(
            e.map(|d| d.to_string()),
            Some("/x/a.service:1: Invalid section header '[Service'".into())
        );
        assert!(lex("[Se\"rvice]\n").is_err());
        assert!(lex("[Se\\rvice]\n").is_err());
        assert!(lex("[Se\x01rvice]\n").is_err());
        assert!(lex("[").is_err());
        let p = lex("  [Unit]  \n[Service]\n[Unit]\nA=1\n[]\nB=2\n").unwrap_or_default();
        assert_eq!(
            p.sections,
            [
                ("Unit".to_owned(), 1),
                ("Service".to_owned(), 2),
                ("Unit".to_owned(), 3),
                (String::new(), 5)
            ]
        );
        assert_eq!(p.assignments[0].section, "Unit");
        assert_eq!(p.assignments[1].section, "");
        // Section names are case-sensitive and kept verbatim.
        assert_eq!(
            lex("[service]\n").unwrap_or_default().sections[0].0,
            "service"
        );
    }

    #[test]
    fn warnings() {
        let p =
            lex("A=0\n[Unit]\nNoEquals\n=value\n  Key  =  v a l  \nK=a=b\n").unwrap_or_default();
        let msgs: Vec<(u32, &str)> = p
            .warnings
            .iter()
            .map(|d| (d.line, d.message.as_str()))
            .collect();
        assert_eq!(
            msgs,
            [
                (1, "Assignment outside of section. Ignoring."),
                (3, "Missing '=', ignoring line."),
                (4, "Missing key name before '=', ignoring line."),
            ]
        );
        assert!(p.warnings.iter().all(|d| d.severity == Severity::Warning));
        let got: Vec<(&str, &str)> = p
            .assignments
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(got, [("Key", "v a l"), ("K", "a=b")]);
    }

    #[test]
    fn comments_and_quotes_are_not_lexed_in_values() {
        assert_eq!(values("[S]\nK=a # b\n", "K"), ["a # b"]);
        assert_eq!(values("[S]\nK=a ; b\n", "K"), ["a ; b"]);
        assert_eq!(values("[S]\n  # c\n\t; c\nK='x\n", "K"), ["'x"]);
        assert_eq!(values("[S]\nK=\"a\\\nb\"\n", "K"), ["\"a b\""]);
    }

    #[test]
    fn continuations() {
        // `\\` at the end is not a continuation.
        assert_eq!(values("[S]\nK=a\\\\\nL=b\n", "K"), ["a\\\\"]);
        // The next line is appended with its indentation.
        assert_eq!(values("[S]\nK=a\\\n    b\n", "K"), ["a     b"]);
        // An empty line ends a continuation; so does a whitespace-only line.
        assert_eq!(values("[S]\nK=a\\\n\nL=b\n", "K"), ["a"]);
        // A continuation open at the end of the file is parsed; its line is
        // where it started.
        let p = lex("[S]\n\nK=a\\\nb\\").unwrap_or_default();
        assert_eq!(
            (p.assignments[0].value.as_str(), p.assignments[0].line),
            ("a b", 3)
        );
        // Only comment lines in between: the continuation resumes after them.
        assert_eq!(values("[S]\nK=a\\\n#x\n;y\n  #z\nb\n", "K"), ["a b"]);
        // A continuation can join a section header.
        let p = lex("[S\\\n]\n").unwrap_or_default();
        assert_eq!(p.sections, [("S ".to_owned(), 1)]);
        // A continued piece is judged on its own: `\\` ending the second
        // piece ends the value, a lone `\` goes on.
        assert_eq!(values("[S]\nK=a\\\nb\\\\\nL=c\n", "K"), ["a b\\\\"]);
        assert_eq!(values("[S]\nK=a\\\n\\\nb\n", "K"), ["a  b"]);
        // Many continued lines join in one pass over the text.
        let long = format!("[S]\nK=a \\\n{}end\n", "x \\\n".repeat(50_000));
        let joined = values(&long, "K");
        assert_eq!(joined[0].len(), 3 + 50_000 * 3 + 3);
        assert!(joined[0].ends_with("x  end"));
    }

    #[test]
    fn line_endings_and_bom() {
        assert_eq!(values("[S]\r\nK=1\r\nL=2\r\n", "K"), ["1"]);
        assert_eq!(values("[S]\rK=1\rL=2", "K"), ["1"]);
        assert_eq!(values("[S]\n\rK=1\n\r", "K"), ["1"]);
        // "\n\n" is two lines, an empty one in between.
        let p = lex("[S]\n\nK=1").unwrap_or_default();
        assert_eq!(p.assignments[0].line, 3);
        let p = lex("[S]\r\n\r\nK=1").unwrap_or_default();
        assert_eq!(p.assignments[0].line, 3);
        // NUL ends a line too.
        assert_eq!(values("[S]\0K=1\0", "K"), ["1"]);
        let bom = "\u{feff}[Unit]\nDescription=x\n";
        let p = lex(bom).unwrap_or_default();
        assert_eq!(p.sections, [("Unit".to_owned(), 1)]);
        // Only one BOM is skipped.
        assert!(lex("\u{feff}\u{feff}[Unit]\n").is_ok_and(|p| !p.warnings.is_empty()));
        // A BOM followed by a comment is not a comment (systemd checks for
        // comments before it strips the BOM).
        assert!(lex("\u{feff}# c\n[Unit]\n").is_ok_and(|p| p.warnings.len() == 1));
    }

    #[test]
    fn invalid_utf8_fails_the_file() {
        let e = parse(
            Path::new("/x/a.service"),
            b"[Service]\nExecStart=/bin/true \xff\xfe\n",
        )
        .err();
        assert_eq!(e.map(|d| (d.line, d.severity)), Some((2, Severity::Error)));
        assert!(parse(Path::new("a"), "[S]\nK=\u{fffe}\n".as_bytes()).is_err());
        // Inside a comment it does not matter.
        assert!(parse(Path::new("a"), b"[S]\n# \xff\nK=1\n").is_ok());
    }

    #[test]
    fn long_lines() {
        let just_fits = format!("[S]\nK={}", "x".repeat(LONG_LINE_MAX - 3));
        assert_eq!(
            values(&just_fits, "K").first().map(String::len),
            Some(LONG_LINE_MAX - 3)
        );
        let too_long = format!("[S]\nK={}", "x".repeat(LONG_LINE_MAX - 2));
        assert!(lex(&too_long).is_err());
        let joined_too_long = format!(
            "[S]\nK={}\\\n{}\n",
            "x".repeat(600_000),
            "y".repeat(600_000)
        );
        assert!(lex(&joined_too_long).is_err());
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        let inputs: &[&[u8]] = &[
            b"",
            b"\\",
            b"[",
            b"]",
            b"=",
            b"\xef\xbb",
            b"\xef\xbb\xbf",
            b"[S]\n\\\n\\\n",
            b"\r\r\n\n\0\0\r\0",
            b"[S]\nK=\\",
            b"[S]\n\xff=1",
        ];
        for input in inputs {
            let _ = parse(Path::new("a"), input);
        }
    }
}
