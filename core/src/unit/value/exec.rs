//! Command lines (`ExecStart=`, `ExecStartPre=`, `ExecStop=` …) as systemd's
//! `config_parse_exec()` reads them.
//!
//! A value holds one or more commands separated by a standalone `;`. Each
//! command starts with optional prefix characters (`-`, `@`, `:`, `+`, `!`,
//! `!!`), then the executable (an absolute path or a bare file name), then the
//! arguments. Words are split with quote removal and C unescaping; `%`
//! specifiers are expanded after unquoting through a callback, because only
//! the unit knows their values. `$VAR` expansion is not done here: it happens
//! at spawn time on the final environment
//! ([`replace_env_argv`](super::env::replace_env_argv)).
//!
//! systemd distinguishes errors that drop the line quietly from errors that
//! make the whole unit fail to load ("fatal"); [`parse_exec_detailed`] keeps
//! that distinction, [`parse_exec`] folds every error into `Err`.

use super::ValueError;
use super::words::{ExtractFlags, extract_first_word_and_warn};

/// One command of an `Exec*=` line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecCommand {
    /// The executable, specifier-expanded, with duplicate slashes and `.`
    /// components removed. A bare name is resolved at spawn time.
    pub path: String,
    /// The argument vector. `argv[0]` is the path as written unless `@` was
    /// given, in which case it is the word after the path.
    pub argv: Vec<String>,
    /// `-`: a failing exit status is recorded but counts as success.
    pub ignore_failure: bool,
    /// `@`: the second word is `argv[0]`.
    pub argv0_separate: bool,
    /// `:`: no `$VAR` expansion for this command.
    pub no_env_expand: bool,
    /// `+`: run with full privileges (no `User=`, no sandboxing).
    pub full_privileges: bool,
    /// `!`: do not apply `User=`/`Group=`/`SupplementaryGroups=`.
    pub no_setuid: bool,
    /// `!!`: the legacy ambient-capabilities fallback.
    pub ambient_hack: bool,
}

/// An error in an `Exec*=` line and whether systemd would refuse the unit
/// for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecError {
    pub error: ValueError,
    /// `true`: "Unit configuration has fatal error, unit will not be
    /// started". `false`: the rest of the line is ignored with a message.
    pub fatal: bool,
}

/// Everything [`parse_exec_detailed`] found in one value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecLine {
    /// Commands parsed before any error, in order. systemd appends these to
    /// the list even when a later command of the same line is in error.
    pub commands: Vec<ExecCommand>,
    /// Non-fatal notices, e.g. "Ignoring unknown escape sequences: …".
    pub warnings: Vec<String>,
    /// The error that ended parsing, if any.
    pub error: Option<ExecError>,
}

fn is_ws(c: u8) -> bool {
    super::WHITESPACE.contains(&c)
}

/// systemd's `string_is_safe()`: no control characters, quotes, backslash or DEL.
fn string_is_safe(s: &str) -> bool {
    !s.bytes()
        .any(|c| (1..b' ').contains(&c) || matches!(c, b'"' | b'\'' | b'\\' | 0x7f))
}

/// systemd's `filename_is_valid()`.
fn filename_is_valid(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && s.len() <= 255
}

/// systemd's `path_is_valid()` for absolute paths: every component at most
/// `NAME_MAX` bytes, the whole shorter than `PATH_MAX`.
pub(crate) fn path_is_valid(s: &str) -> bool {
    !s.is_empty() && s.len() < 4096 && s.split('/').all(|c| c.len() <= 255)
}

/// systemd's `path_simplify()`: drop empty and `.` components.
pub(crate) fn path_simplify(s: &str) -> String {
    let parts: Vec<&str> = s
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let joined = parts.join("/");
    if s.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Parse an `Exec*=` value following `config_parse_exec()`, keeping systemd's
/// fatal/non-fatal distinction. `expand(word, is_path)` applies `%`
/// specifiers to an unquoted word (`is_path` selects the table for the
/// executable); its `Err` text becomes part of the message. An empty value
/// yields no commands (resetting the list is the caller's job).
pub fn parse_exec_detailed(
    value: &str,
    expand: &mut dyn FnMut(&str, bool) -> Result<String, String>,
) -> ExecLine {
    let mut line = ExecLine::default();
    let flags = ExtractFlags::UNQUOTE_CUNESCAPE;
    let mut cursor: Option<&str> = Some(value);
    let mut semicolon = true;
    while semicolon {
        semicolon = false;
        let firstword =
            match extract_first_word_and_warn(&mut cursor, None, flags, &mut line.warnings) {
                Ok(Some(w)) => w,
                Ok(None) => return line,
                Err(e) => {
                    // systemd logs the first word's quoting error and ignores the line.
                    line.error = Some(ExecError {
                        error: e,
                        fatal: false,
                    });
                    return line;
                }
            };
        if firstword == ";" {
            semicolon = true;
            continue;
        }

        let mut cmd = ExecCommand::default();
        let mut f = firstword.as_str();
        loop {
            let seen_priv = cmd.full_privileges || cmd.no_setuid || cmd.ambient_hack;
            match f.as_bytes().first() {
                Some(b'-') if !cmd.ignore_failure => cmd.ignore_failure = true,
                Some(b'@') if !cmd.argv0_separate => cmd.argv0_separate = true,
                Some(b':') if !cmd.no_env_expand => cmd.no_env_expand = true,
                Some(b'+') if !seen_priv => cmd.full_privileges = true,
                Some(b'!') if !seen_priv => cmd.no_setuid = true,
                Some(b'!') if !(cmd.full_privileges || cmd.ambient_hack) => {
                    cmd.no_setuid = false;
                    cmd.ambient_hack = true;
                }
                _ => break,
            }
            f = &f[1..];
        }
        let ignore = cmd.ignore_failure;
        let suffix = if ignore { ", ignoring" } else { "" };
        let fail = |line: &mut ExecLine, msg: String| {
            line.error = Some(ExecError {
                error: ValueError::Invalid(msg),
                fatal: !ignore,
            });
        };

        let path = match expand(f, true) {
            Ok(p) => p,
            Err(e) => {
                fail(
                    &mut line,
                    format!("Failed to resolve unit specifiers in '{f}'{suffix}: {e}"),
                );
                return line;
            }
        };
        if path.is_empty() {
            fail(
                &mut line,
                format!("Empty path in command line{suffix}: '{value}'"),
            );
            return line;
        }
        if !string_is_safe(&path) {
            fail(
                &mut line,
                format!("Executable name contains special characters{suffix}: {path}"),
            );
            return line;
        }
        if path.ends_with('/') {
            fail(
                &mut line,
                format!("Executable path specifies a directory{suffix}: {path}"),
            );
            return line;
        }
        let valid = if path.starts_with('/') {
            path_is_valid(&path)
        } else {
            filename_is_valid(&path)
        };
        if !valid {
            fail(
                &mut line,
                format!("Neither a valid executable name nor an absolute path{suffix}: {path}"),
            );
            return line;
        }
        if !cmd.argv0_separate {
            cmd.argv.push(path.clone());
        }
        cmd.path = path_simplify(&path);

        while let Some(rest) = cursor.filter(|r| !r.is_empty()) {
            let b = rest.as_bytes();
            if b[0] == b';' && b.get(1).is_none_or(|&c| is_ws(c)) {
                cursor =
                    Some(rest[1..].trim_start_matches(|c: char| c.is_ascii() && is_ws(c as u8)));
                semicolon = true;
                break;
            }
            if b[0] == b'\\' && b.get(1) == Some(&b';') && b.get(2).is_none_or(|&c| is_ws(c)) {
                cursor =
                    Some(rest[2..].trim_start_matches(|c: char| c.is_ascii() && is_ws(c as u8)));
                cmd.argv.push(";".to_owned());
                continue;
            }
            let word =
                match extract_first_word_and_warn(&mut cursor, None, flags, &mut line.warnings) {
                    Ok(Some(w)) => w,
                    Ok(None) => break,
                    Err(e) => {
                        line.error = Some(ExecError {
                            error: e,
                            fatal: !ignore,
                        });
                        return line;
                    }
                };
            match expand(&word, false) {
                Ok(resolved) => cmd.argv.push(resolved),
                Err(e) => {
                    fail(
                        &mut line,
                        format!("Failed to resolve unit specifiers in {word}{suffix}: {e}"),
                    );
                    return line;
                }
            }
        }

        if cmd.argv.is_empty() {
            fail(
                &mut line,
                format!("Empty executable name or zeroeth argument{suffix}: {value}"),
            );
            return line;
        }
        line.commands.push(cmd);
    }
    line
}

/// Parse an `Exec*=` value. Any error, fatal or not, is `Err`; use
/// [`parse_exec_detailed`] to tell them apart and to keep the commands
/// systemd keeps before an error.
pub fn parse_exec(
    value: &str,
    expand: &mut dyn FnMut(&str, bool) -> Result<String, String>,
) -> Result<Vec<ExecCommand>, ValueError> {
    let line = parse_exec_detailed(value, expand);
    match line.error {
        Some(e) => Err(e.error),
        None => Ok(line.commands),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps)]
    fn no_expand(s: &str, _is_path: bool) -> Result<String, String> {
        Ok(s.to_owned())
    }

    /// A tiny specifier expander for tests: `%%` → `%`, `%n` → `foo.service`,
    /// any other letter is an error.
    fn specifiers(s: &str, _is_path: bool) -> Result<String, String> {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match it.next() {
                Some('%') => out.push('%'),
                Some('n') => out.push_str("foo.service"),
                Some(o) if o.is_ascii_alphanumeric() => return Err("Invalid slot".into()),
                Some(o) => {
                    out.push('%');
                    out.push(o);
                }
                None => out.push('%'),
            }
        }
        Ok(out)
    }

    fn parse(v: &str) -> ExecLine {
        parse_exec_detailed(v, &mut no_expand)
    }

    /// (path, argv, ignore_failure)
    type Want = (&'static str, &'static [&'static str], bool);

    /// Outcome of a line: the commands, and `Some(fatal)` if it ended in error.
    fn check(v: &str, want: &[Want], err: Option<bool>) {
        let line = parse(v);
        let got: Vec<(String, Vec<String>, bool)> = line
            .commands
            .iter()
            .map(|c| (c.path.clone(), c.argv.clone(), c.ignore_failure))
            .collect();
        let want: Vec<(String, Vec<String>, bool)> = want
            .iter()
            .map(|(p, a, i)| {
                (
                    (*p).to_owned(),
                    a.iter().map(|s| (*s).to_owned()).collect(),
                    *i,
                )
            })
            .collect();
        assert_eq!(got, want, "value {v:?}");
        assert_eq!(
            line.error.as_ref().map(|e| e.fatal),
            err,
            "value {v:?}: {:?}",
            line.error
        );
    }

    // Vectors from systemd src/test/test-load-fragment.c (TEST(config_parse_exec)).
    #[test]
    fn config_parse_exec_vectors() {
        check(
            "/RValue r1",
            &[("/RValue", &["/RValue", "r1"], false)],
            None,
        );
        check(
            "/RValue///slashes r1///",
            &[("/RValue/slashes", &["/RValue///slashes", "r1///"], false)],
            None,
        );
        check("/RValue/ argv0 r1", &[], Some(true));
        check(
            "@/RValue///slashes2 ///argv0 r1",
            &[("/RValue/slashes2", &["///argv0", "r1"], false)],
            None,
        );
        check("@/RValue", &[], Some(true));
        check("", &[], None);
        check(
            "-@/RValue///slashes3 argv0a r1",
            &[("/RValue/slashes3", &["argv0a", "r1"], true)],
            None,
        );
        check(
            "@-/RValue///slashes4 argv0b r1",
            &[("/RValue/slashes4", &["argv0b", "r1"], true)],
            None,
        );
        check("--/RValue argv0 r1", &[], Some(false));
        check("-@-/RValue argv0 r1", &[], Some(false));
        check(
            "-@/RValue argv0 r1 ; /goo/goo boo",
            &[
                ("/RValue", &["argv0", "r1"], true),
                ("/goo/goo", &["/goo/goo", "boo"], false),
            ],
            None,
        );
        check(
            "-@/RValue argv0 r1 ; ; /goo/goo boo",
            &[
                ("/RValue", &["argv0", "r1"], true),
                ("/goo/goo", &["/goo/goo", "boo"], false),
            ],
            None,
        );
        check(
            "-@/RValue argv0 r1 ; ",
            &[("/RValue", &["argv0", "r1"], true)],
            None,
        );
        check(
            "-@/RValue argv0 r1 ;",
            &[("/RValue", &["argv0", "r1"], true)],
            None,
        );
        check(
            "-@/RValue argv0 r1 ';'",
            &[("/RValue", &["argv0", "r1", ";"], true)],
            None,
        );
        check(
            "/bin/find \\;",
            &[("/bin/find", &["/bin/find", ";"], false)],
            None,
        );
        check(
            "/sbin/find \\; /x",
            &[("/sbin/find", &["/sbin/find", ";", "/x"], false)],
            None,
        );
        check(
            "/sbin/find \\;x",
            &[("/sbin/find", &["/sbin/find", "\\;x"], false)],
            None,
        );
        check(
            "/bin/find \\073",
            &[("/bin/find", &["/bin/find", ";"], false)],
            None,
        );
        check(
            "/bin/find \";\"",
            &[("/bin/find", &["/bin/find", ";"], false)],
            None,
        );
        check(
            "/sbin/find \";\" /x",
            &[("/sbin/find", &["/sbin/find", ";", "/x"], false)],
            None,
        );
        check(
            "\"/PATH WITH SPACES/daemon\" -1 -2",
            &[(
                "/PATH WITH SPACES/daemon",
                &["/PATH WITH SPACES/daemon", "-1", "-2"],
                false,
            )],
            None,
        );
        check(
            "\"/PATH WITH SPACES/daemon -1 -2\"",
            &[(
                "/PATH WITH SPACES/daemon -1 -2",
                &["/PATH WITH SPACES/daemon -1 -2"],
                false,
            )],
            None,
        );
        check(
            "\"/PATH WITH SPACES/daemon\" \"-1\" '-2'",
            &[(
                "/PATH WITH SPACES/daemon",
                &["/PATH WITH SPACES/daemon", "-1", "-2"],
                false,
            )],
            None,
        );
        check(
            "\"/PATH\\sWITH\\sSPACES/daemon\" '-1 -2'",
            &[(
                "/PATH WITH SPACES/daemon",
                &["/PATH WITH SPACES/daemon", "-1 -2"],
                false,
            )],
            None,
        );
        check(
            "\"/PATH\\x20WITH\\x20SPACES/daemon\" \"-1 -2\"",
            &[(
                "/PATH WITH SPACES/daemon",
                &["/PATH WITH SPACES/daemon", "-1 -2"],
                false,
            )],
            None,
        );
        for c in ["a", "b", "f", "n", "r", "t", "v", "\\", "'", "\"", "x"] {
            check(&format!("/path\\{c}"), &[], Some(true));
        }
        check("/path\\s", &[("/path ", &["/path "], false)], None);
        check(
            "/bin/grep '\\w+\\K'",
            &[("/bin/grep", &["/bin/grep", "\\w+\\K"], false)],
            None,
        );
        check("/path\\", &[], Some(true));
        check("/path 'foo", &[], Some(true));
        check("/path 'foo\\", &[], Some(true));
        check("- /path", &[], Some(false));
        check("-", &[], Some(false));
        let long = format!("/bin/echo {}", "x".repeat(1024 * 1024 - 200));
        let line = parse(&long);
        assert!(line.error.is_none());
        assert_eq!(line.commands[0].argv[1].len(), 1024 * 1024 - 200);
    }

    #[test]
    fn prefixes() {
        let c = &parse("+/bin/x").commands[0];
        assert!(c.full_privileges && !c.no_setuid && !c.ambient_hack);
        let c = &parse("!/bin/x").commands[0];
        assert!(c.no_setuid && !c.ambient_hack);
        let c = &parse("!!/bin/x").commands[0];
        assert!(c.ambient_hack && !c.no_setuid);
        let c = &parse(":-@/bin/x zero a").commands[0];
        assert!(c.no_env_expand && c.ignore_failure && c.argv0_separate);
        assert_eq!(c.argv, vec!["zero".to_owned(), "a".to_owned()]);
        // `+` and `!` exclude each other; a repeated prefix is not a prefix.
        assert_eq!(parse("+!/bin/x").error.map(|e| e.fatal), Some(true));
        assert_eq!(parse("!+/bin/x").error.map(|e| e.fatal), Some(true));
        assert_eq!(parse("::/bin/x").error.map(|e| e.fatal), Some(true));
        assert_eq!(parse("@@/bin/x a").error.map(|e| e.fatal), Some(true));
        assert_eq!(parse("!!!/bin/x").error.map(|e| e.fatal), Some(true));
    }

    #[test]
    fn executable_names() {
        check("true", &[("true", &["true"], false)], None);
        check(
            "sh -c 'echo hi'",
            &[("sh", &["sh", "-c", "echo hi"], false)],
            None,
        );
        check("bin/true", &[], Some(true));
        check("./true", &[], Some(true));
        check("..", &[], Some(true));
        check(
            "/bin/./true",
            &[("/bin/true", &["/bin/./true"], false)],
            None,
        );
        check("'unbalanced", &[], Some(false));
        check("/bin/x\\x01", &[], Some(true));
    }

    // The oracle example of sections 5.2 and 6.1 of flint's systemd reference
    // (systemd 252 `systemd --test` dump).
    #[test]
    fn oracle_examples() {
        let line = parse_exec_detailed(
            "/bin/echo \"hello world\" 'single q' a\"b c\"d $FOO ${BAR} %% %n",
            &mut specifiers,
        );
        assert!(line.error.is_none());
        assert_eq!(
            line.commands[0].argv,
            [
                "/bin/echo",
                "hello world",
                "single q",
                "ab cd",
                "$FOO",
                "${BAR}",
                "%",
                "foo.service"
            ]
        );
        // The joined continuation of section 6.1 (the lexer turned the
        // backslash-newline into a space and kept the indentation).
        let line = parse_exec_detailed(
            "/bin/sh -c 'echo \"$$X ${Y}\"     && echo done' \\; tail \"a\\x41\\tb\" %% $$Z $X",
            &mut specifiers,
        );
        assert!(line.error.is_none(), "{:?}", line.error);
        assert_eq!(
            line.commands[0].argv,
            [
                "/bin/sh",
                "-c",
                "echo \"$$X ${Y}\"     && echo done",
                ";",
                "tail",
                "aA\tb",
                "%",
                "$$Z",
                "$X"
            ]
        );
        let line = parse_exec_detailed("/bin/true %Z", &mut specifiers);
        assert_eq!(line.error.as_ref().map(|e| e.fatal), Some(true));
        assert!(
            line.error
                .is_some_and(|e| e.error.to_string().contains("Invalid slot"))
        );
        let line = parse_exec_detailed("-/bin/true %Z", &mut specifiers);
        assert_eq!(line.error.map(|e| e.fatal), Some(false));
    }

    #[test]
    fn warnings_and_partial_results() {
        let line = parse("/bin/grep \\d");
        assert_eq!(line.commands[0].argv, ["/bin/grep", "\\d"]);
        assert_eq!(line.warnings.len(), 1);
        let line = parse("/bin/a ; /bin/b 'x");
        assert_eq!(line.commands.len(), 1);
        assert_eq!(line.error.map(|e| e.fatal), Some(true));
        assert!(parse_exec("/bin/a ; /bin/b 'x", &mut no_expand).is_err());
        assert_eq!(
            parse_exec("/bin/a;b", &mut no_expand)
                .map(|c| c[0].argv.clone())
                .ok(),
            Some(vec!["/bin/a;b".into()])
        );
        let cmds = parse_exec("/bin/a ;/bin/b", &mut no_expand).unwrap_or_default();
        assert_eq!(cmds[0].argv, ["/bin/a", ";/bin/b"]);
    }
}
