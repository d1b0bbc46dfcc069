//! Environment variables: `Environment=` lines, `EnvironmentFile=` contents
//! and the `$VAR`/`${VAR}` expansion of command lines, as systemd does them
//! (src/core/load-fragment.c `config_parse_environ`, src/basic/env-file.c,
//! src/basic/env-util.c).
//!
//! A service must see exactly the environment and argv it would see under
//! systemd: names are `[A-Za-z_][A-Za-z0-9_]*`, a repeated name keeps the
//! position of its first assignment and the value of its last, env files use
//! shell-like quoting, and in command lines a whole-word `$NAME` is split
//! into words while `${NAME}` is substituted verbatim.

use super::words::{ExtractFlags, extract_first_word};
use super::{ValueError, utf8_valid};

/// The largest environment block the kernel accepts on the systems flint
/// targets (`sysconf(_SC_ARG_MAX)` with the default 8 MiB stack limit).
const ARG_MAX: usize = 2 * 1024 * 1024;

/// systemd's `env_name_is_valid()`: ASCII letters, digits and `_`, not
/// starting with a digit, not empty.
pub fn env_name_is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.len() <= ARG_MAX - 2
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// systemd's `env_value_is_valid()`: UTF-8 (without non-characters) and not
/// longer than the kernel allows. Control characters are allowed.
pub fn env_value_is_valid(value: &str) -> bool {
    utf8_valid(value.as_bytes()).is_some() && value.len() <= ARG_MAX - 3
}

/// systemd's `env_assignment_is_valid()` for a `NAME=VALUE` string.
pub fn env_assignment_is_valid(assignment: &str) -> bool {
    match assignment.split_once('=') {
        Some((name, value)) => {
            env_name_is_valid(name) && env_value_is_valid(value) && assignment.len() < ARG_MAX
        }
        None => false,
    }
}

/// Set `name` in `list` as systemd's `strv_env_replace()` does: an existing
/// entry keeps its position and takes the new value; otherwise the entry is
/// appended.
pub fn env_replace(list: &mut Vec<(String, String)>, name: &str, value: &str) {
    if let Some(slot) = list.iter_mut().find(|(n, _)| n == name) {
        value.clone_into(&mut slot.1);
    } else {
        list.push((name.to_owned(), value.to_owned()));
    }
}

/// Parse one `Environment=` value. Returns the assignments (a name repeated
/// on the line is replaced in place) and systemd's warnings for the words it
/// skips. An empty value yields nothing; resetting the accumulated list on an
/// empty assignment is the caller's job.
pub fn parse_environment(value: &str) -> (Vec<(String, String)>, Vec<String>) {
    parse_environment_with(value, &mut |word| Ok(word.to_owned()))
}

/// Like [`parse_environment`], with `%` specifier expansion applied to each
/// word after unquoting (systemd's `unit_env_printf`). A word whose expansion
/// fails is skipped with a warning.
pub fn parse_environment_with(
    value: &str,
    expand: &mut dyn FnMut(&str) -> Result<String, String>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut cursor = Some(value);
    loop {
        let word = match extract_first_word(&mut cursor, None, ExtractFlags::UNQUOTE_CUNESCAPE) {
            Ok(Some(w)) => w,
            Ok(None) => break,
            Err(_) => {
                warnings.push(format!("Invalid syntax, ignoring: {value}"));
                break;
            }
        };
        let resolved = match expand(&word) {
            Ok(r) => r,
            Err(e) => {
                warnings.push(format!(
                    "Failed to resolve specifiers in {word}, ignoring: {e}"
                ));
                continue;
            }
        };
        if !env_assignment_is_valid(&resolved) {
            warnings.push(format!(
                "Invalid environment assignment, ignoring: {resolved}"
            ));
            continue;
        }
        if let Some((name, val)) = resolved.split_once('=') {
            env_replace(&mut out, name, val);
        }
    }
    (out, warnings)
}

/// The result of reading an `EnvironmentFile=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    /// Valid assignments, in file order (first position, last value).
    pub entries: Vec<(String, String)>,
    /// Assignments systemd drops at spawn time ("Ignoring invalid environment
    /// assignment"), e.g. `export FOO=1` or `1X=2`.
    pub warnings: Vec<String>,
}

/// Parse `EnvironmentFile=` contents exactly as systemd's
/// `load_env_file()` followed by `strv_env_clean()`: shell-like quoting,
/// comments at line start, backslash continuations. Invalid UTF-8 anywhere
/// in a key or value fails the whole file (`Err`), as in systemd.
pub fn parse_env_file_full(bytes: &[u8]) -> Result<EnvFile, ValueError> {
    let mut out = EnvFile::default();
    for (line, key, value) in env_file_pairs(bytes) {
        let Some(key) = utf8_valid(&key) else {
            return Err(ValueError::invalid(format_args!(
                "line {line}: invalid UTF-8 in key"
            )));
        };
        let Some(value) = utf8_valid(&value) else {
            return Err(ValueError::invalid(format_args!(
                "line {line}: invalid UTF-8 value for key {key}"
            )));
        };
        let assignment = format!("{key}={value}");
        if env_assignment_is_valid(&assignment) {
            env_replace(&mut out.entries, key, value);
        } else {
            out.warnings.push(format!(
                "Ignoring invalid environment assignment '{assignment}'"
            ));
        }
    }
    Ok(out)
}

/// Parse `EnvironmentFile=` contents into the assignments a service sees
/// (see [`parse_env_file_full`] for the dropped ones).
pub fn parse_env_file(bytes: &[u8]) -> Result<Vec<(String, String)>, ValueError> {
    parse_env_file_full(bytes).map(|f| f.entries)
}

/// The state machine of systemd's `parse_env_file_internal()`: yields
/// (line, key, value) in file order, before any validation.
fn env_file_pairs(bytes: &[u8]) -> Vec<(u32, Vec<u8>, Vec<u8>)> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        PreKey,
        Key,
        PreValue,
        Value,
        ValueEscape,
        SingleQuote,
        DoubleQuote,
        DoubleQuoteEscape,
        Comment,
        CommentEscape,
    }
    const WS: &[u8] = b" \t\n\r";
    const NL: &[u8] = b"\n\r";
    const SHELL_NEED_ESCAPE: &[u8] = b"\"\\`$";

    fn truncate_at(v: &mut Vec<u8>, at: Option<usize>) {
        if let Some(n) = at {
            v.truncate(n);
        }
    }

    let mut out = Vec::new();
    let mut state = State::PreKey;
    let mut key: Vec<u8> = Vec::new();
    let mut value: Vec<u8> = Vec::new();
    let mut last_key_ws: Option<usize> = None;
    let mut last_value_ws: Option<usize> = None;
    let mut line: u32 = 1;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());

    for &c in &bytes[..end] {
        match state {
            State::PreKey => {
                if c == b'#' || c == b';' {
                    state = State::Comment;
                } else if !WS.contains(&c) {
                    state = State::Key;
                    last_key_ws = None;
                    key.push(c);
                }
            }
            State::Key => {
                if NL.contains(&c) {
                    state = State::PreKey;
                    line = line.saturating_add(1);
                    key.clear();
                } else if c == b'=' {
                    state = State::PreValue;
                    last_value_ws = None;
                } else {
                    if !WS.contains(&c) {
                        last_key_ws = None;
                    } else if last_key_ws.is_none() {
                        last_key_ws = Some(key.len());
                    }
                    key.push(c);
                }
            }
            State::PreValue => {
                if NL.contains(&c) {
                    state = State::PreKey;
                    line = line.saturating_add(1);
                    truncate_at(&mut key, last_key_ws);
                    out.push((line, std::mem::take(&mut key), std::mem::take(&mut value)));
                } else if c == b'\'' {
                    state = State::SingleQuote;
                } else if c == b'"' {
                    state = State::DoubleQuote;
                } else if c == b'\\' {
                    state = State::ValueEscape;
                } else if !WS.contains(&c) {
                    state = State::Value;
                    value.push(c);
                }
            }
            State::Value => {
                if NL.contains(&c) {
                    state = State::PreKey;
                    line = line.saturating_add(1);
                    truncate_at(&mut value, last_value_ws);
                    truncate_at(&mut key, last_key_ws);
                    out.push((line, std::mem::take(&mut key), std::mem::take(&mut value)));
                } else if c == b'\\' {
                    state = State::ValueEscape;
                    last_value_ws = None;
                } else {
                    if !WS.contains(&c) {
                        last_value_ws = None;
                    } else if last_value_ws.is_none() {
                        last_value_ws = Some(value.len());
                    }
                    value.push(c);
                }
            }
            State::ValueEscape => {
                state = State::Value;
                if !NL.contains(&c) {
                    value.push(c);
                }
            }
            State::SingleQuote => {
                if c == b'\'' {
                    state = State::PreValue;
                } else {
                    value.push(c);
                }
            }
            State::DoubleQuote => {
                if c == b'"' {
                    state = State::PreValue;
                } else if c == b'\\' {
                    state = State::DoubleQuoteEscape;
                } else {
                    value.push(c);
                }
            }
            State::DoubleQuoteEscape => {
                state = State::DoubleQuote;
                if SHELL_NEED_ESCAPE.contains(&c) {
                    value.push(c);
                } else if c != b'\n' {
                    value.push(b'\\');
                    value.push(c);
                }
            }
            State::Comment => {
                if c == b'\\' {
                    state = State::CommentEscape;
                } else if NL.contains(&c) {
                    state = State::PreKey;
                    line = line.saturating_add(1);
                }
            }
            State::CommentEscape => state = State::Comment,
        }
    }
    if matches!(
        state,
        State::PreValue
            | State::Value
            | State::ValueEscape
            | State::SingleQuote
            | State::DoubleQuote
            | State::DoubleQuoteEscape
    ) {
        if state == State::Value {
            truncate_at(&mut value, last_value_ws);
        }
        truncate_at(&mut key, last_key_ws);
        out.push((line, key, value));
    }
    out
}

/// Look `name` up the way systemd's `strv_env_get()` does (the last entry wins).
fn env_get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// What [`replace_env_argv_full`] did not find.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpansionReport {
    /// Valid names that were referenced but are not set (sorted, unique).
    pub unset: Vec<String>,
    /// Referenced names that are not valid variable names (sorted, unique).
    pub invalid: Vec<String>,
}

/// systemd's `replace_env()` without extensions: `${NAME}` becomes the value
/// (or nothing), `$$` becomes `$`, everything else stays.
pub fn replace_env(s: &str, env: &[(String, String)]) -> String {
    let mut report = ExpansionReport::default();
    replace_env_reporting(s, env, &mut report)
}

fn replace_env_reporting(
    s: &str,
    env: &[(String, String)],
    report: &mut ExpansionReport,
) -> String {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Word,
        Curly,
        Variable,
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut state = State::Word;
    // Start of the not yet copied text.
    let mut word = 0usize;
    for (i, &c) in b.iter().enumerate() {
        match state {
            State::Word => {
                if c == b'$' {
                    state = State::Curly;
                }
            }
            State::Curly => {
                if c == b'{' {
                    out.push_str(s.get(word..i - 1).unwrap_or_default());
                    word = i - 1;
                    state = State::Variable;
                } else if c == b'$' {
                    out.push_str(s.get(word..i).unwrap_or_default());
                    word = i + 1;
                    state = State::Word;
                } else {
                    state = State::Word;
                }
            }
            State::Variable => {
                if c == b'}' {
                    let name = s.get(word + 2..i).unwrap_or_default();
                    if !env_name_is_valid(name) {
                        report.invalid.push(name.to_owned());
                    } else if let Some(v) = env_get(env, name) {
                        out.push_str(v);
                    } else {
                        report.unset.push(name.to_owned());
                    }
                    word = i + 1;
                    state = State::Word;
                } else if c == b':' {
                    // `${NAME:-…}` is not supported in command lines: kept literally.
                    state = State::Word;
                }
            }
        }
    }
    out.push_str(s.get(word..).unwrap_or_default());
    out
}

/// systemd's `replace_env_argv()`: a word that is `$NAME` is replaced by the
/// value split at whitespace (quotes removed; nothing if unset or if NAME is
/// not a valid name); in other words `${NAME}` is replaced verbatim and `$$`
/// becomes `$`.
pub fn replace_env_argv(argv: &[String], env: &[(String, String)]) -> Vec<String> {
    replace_env_argv_full(argv, env).0
}

/// [`replace_env_argv`] plus the names it could not resolve, for systemd's
/// "Referenced but unset environment variable" notices.
pub fn replace_env_argv_full(
    argv: &[String],
    env: &[(String, String)],
) -> (Vec<String>, ExpansionReport) {
    let mut out = Vec::with_capacity(argv.len());
    let mut report = ExpansionReport::default();
    for word in argv {
        let b = word.as_bytes();
        if b.first() == Some(&b'$') && !matches!(b.get(1), Some(b'{' | b'$')) {
            let name = &word[1..];
            if !env_name_is_valid(name) {
                report.invalid.push(name.to_owned());
            } else if let Some(value) = env_get(env, name) {
                let mut cursor = Some(value);
                while let Ok(Some(w)) =
                    extract_first_word(&mut cursor, None, ExtractFlags::RELAX_UNQUOTE)
                {
                    out.push(w);
                }
            } else {
                report.unset.push(name.to_owned());
            }
            continue;
        }
        out.push(replace_env_reporting(word, env, &mut report));
    }
    report.unset.sort();
    report.unset.dedup();
    report.invalid.sort();
    report.invalid.dedup();
    (out, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    // Vectors from systemd src/test/test-env-util.c (TEST(env_name_is_valid)).
    #[test]
    fn names() {
        assert!(env_name_is_valid("test"));
        assert!(env_name_is_valid("_"));
        assert!(env_name_is_valid("A_1"));
        assert!(!env_name_is_valid(""));
        assert!(!env_name_is_valid("xxx\x07"));
        assert!(!env_name_is_valid("xxx\x07b"));
        assert!(!env_name_is_valid("\x07\x009"));
        assert!(!env_name_is_valid("5_starting_with_a_number_is_wrong"));
        assert!(!env_name_is_valid(
            "#¤%&?_only_numbers_letters_and_underscore_allowed"
        ));
        assert!(!env_name_is_valid("A-B"));
    }

    // Vectors from systemd src/test/test-env-util.c (TEST(env_assignment_is_valid)).
    #[test]
    fn assignments() {
        assert!(env_assignment_is_valid("a="));
        assert!(env_assignment_is_valid("b=głąb kapuściany"));
        assert!(env_assignment_is_valid("c=\\007\\009\\011"));
        assert!(env_assignment_is_valid(
            "e=printf \"\\x1b]0;<mock-chroot>\\x07<mock-chroot>\""
        ));
        assert!(env_assignment_is_valid("f=tab\tcharacter"));
        assert!(env_assignment_is_valid("g=new\nline"));
        assert!(!env_assignment_is_valid("="));
        assert!(!env_assignment_is_valid("a b="));
        assert!(!env_assignment_is_valid("a ="));
        assert!(!env_assignment_is_valid(" b="));
        assert!(!env_assignment_is_valid("a.b="));
        assert!(!env_assignment_is_valid("a-b="));
        assert!(!env_assignment_is_valid("\x07=głąb kapuściany"));
        assert!(!env_assignment_is_valid("\x07\x09\x11=głąb kapuściany"));
        assert!(!env_assignment_is_valid("noequals"));
        assert!(!env_assignment_is_valid("h=\u{fffe}"));
    }

    // The oracle example of section 6.1 of flint's systemd reference (systemd
    // 252 dump), and config_parse_environ rules.
    #[test]
    fn environment_lines() {
        let (e, w) = parse_environment("Y=2 \"Z=3 4\" W");
        assert_eq!(e, env(&[("Y", "2"), ("Z", "3 4")]));
        assert_eq!(w, strs(&["Invalid environment assignment, ignoring: W"]));
        let (e, w) = parse_environment("A=1 B=2 A=3");
        assert_eq!(e, env(&[("A", "3"), ("B", "2")]));
        assert!(w.is_empty());
        let (e, _) = parse_environment("A=a\\tb 'B=x y' C=\\x41 D= E=$HOME");
        assert_eq!(
            e,
            env(&[
                ("A", "a\tb"),
                ("B", "x y"),
                ("C", "A"),
                ("D", ""),
                ("E", "$HOME")
            ])
        );
        let (e, w) = parse_environment("A=1 \"B=2");
        assert_eq!(e, env(&[("A", "1")]));
        assert_eq!(w.len(), 1);
        let (e, w) = parse_environment("A=1 B=\\q C=3");
        assert_eq!(e, env(&[("A", "1")]));
        assert_eq!(w.len(), 1);
        let (e, w) = parse_environment("");
        assert!(e.is_empty() && w.is_empty());
        let (e, w) = parse_environment("1A=x A-B=y =z");
        assert!(e.is_empty());
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn environment_with_specifiers() {
        let (e, w) = parse_environment_with("N=%n BAD=%Z", &mut |s| {
            if s.contains("%Z") {
                Err("Invalid slot".into())
            } else {
                Ok(s.replace("%n", "foo.service"))
            }
        });
        assert_eq!(e, env(&[("N", "foo.service")]));
        assert_eq!(w.len(), 1);
    }

    const ENV_FILE_1: &str =
        "a=a\na=b\na=b\na=a\nb=b\\\nc\nd= d\\\ne  \\\nf  \ng=g\\ \nh= ąęół\\ śćńźżµ \ni=i\\";
    const ENV_FILE_3: &str = "#SPAMD_ARGS=\"-d --socketpath=/var/lib/bulwark/spamd \\\n#--nouser-config                                     \\\nnormal=line                                          \\\n;normal=ignored                                      \\\nnormal_ignored                                       \\\nnormal ignored                                       \\\n";
    const ENV_FILE_4: &str = "# Generated\n\nHWMON_MODULES=\"coretemp f71882fg\"\n\n# For compatibility reasons\n\nMODULE_0=coretemp\nMODULE_1=f71882fg";
    const ENV_FILE_6: &str = "a=\\ \\n \\t \\x \\y \\' \nb= \\$'                  \nc= ' \\n\\t\\$\\`\\\\\n'   \nd= \" \\n\\t\\$\\`\\\\\n\"   \n";

    // Vectors from systemd src/test/test-env-file.c (TEST(load_env_file_1..6),
    // TEST(load_env_file_invalid_utf8)). systemd keeps the first position of a
    // repeated key with the last value.
    #[test]
    fn env_file_vectors() {
        let rows: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (
                ENV_FILE_1,
                vec![
                    ("a", "a"),
                    ("b", "bc"),
                    ("d", "de  f"),
                    ("g", "g "),
                    ("h", "ąęół śćńźżµ"),
                    ("i", "i"),
                ],
            ),
            ("a=a\\\n", vec![("a", "a")]),
            (ENV_FILE_3, vec![]),
            (
                ENV_FILE_4,
                vec![
                    ("HWMON_MODULES", "coretemp f71882fg"),
                    ("MODULE_0", "coretemp"),
                    ("MODULE_1", "f71882fg"),
                ],
            ),
            ("a=\nb=", vec![("a", ""), ("b", "")]),
            (
                ENV_FILE_6,
                vec![
                    ("a", " n t x y '"),
                    ("b", "$'"),
                    ("c", " \\n\\t\\$\\`\\\\\n"),
                    ("d", " \\n\\t$`\\\n"),
                ],
            ),
        ];
        for (text, want) in rows {
            assert_eq!(
                parse_env_file(text.as_bytes()).ok(),
                Some(env(&want)),
                "file {text:?}"
            );
        }
        for bad in [
            "fo\u{fffe}o=bar",
            "foo=b\u{ffff}ar",
            "baz=hello world\u{fffe}",
        ] {
            assert!(parse_env_file(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(parse_env_file(b"A=\xff").is_err());
    }

    #[test]
    fn env_file_edge_cases() {
        let f = parse_env_file_full(
            b"export A=1\nB = 2 \n1X=3\n C='x' 'y'\nD=a#b\n# c\\\nE=skipped\nF=1\0G=2",
        )
        .unwrap_or_default();
        assert_eq!(
            f.entries,
            env(&[("B", "2"), ("C", "xy"), ("D", "a#b"), ("F", "1")])
        );
        assert_eq!(f.warnings.len(), 2);
        assert_eq!(
            parse_env_file(b"A='multi\nline'\nB=\"q\\\"x\"").ok(),
            Some(env(&[("A", "multi\nline"), ("B", "q\"x")]))
        );
        assert_eq!(
            parse_env_file(b"A=1\r\nB=2\r\n").ok(),
            Some(env(&[("A", "1"), ("B", "2")]))
        );
        assert_eq!(parse_env_file(b"").ok(), Some(vec![]));
        assert_eq!(parse_env_file(b"NOEQUALS\nA").ok(), Some(vec![]));
    }

    // Vectors from systemd src/test/test-env-util.c (TEST(replace_env_argv)).
    #[test]
    fn replace_env_argv_vectors() {
        let e = env(&[("FOO", "BAR BAR"), ("BAR", "waldo")]);
        let line = strs(&[
            "FOO$FOO",
            "FOO$FOOFOO",
            "FOO${FOO}$FOO",
            "FOO${FOO}",
            "${FOO}",
            "$FOO",
            "$FOO$FOO",
            "${FOO}${BAR}",
            "${FOO",
            "FOO$$${FOO}",
            "$$FOO${FOO}",
            "${FOO:-${BAR}}",
            "${QUUX:-${FOO}}",
            "${FOO:+${BAR}}",
            "${QUUX:+${BAR}}",
            "${FOO:+|${BAR}|}}",
            "${FOO:+|${BAR}{|}",
        ]);
        let want = strs(&[
            "FOO$FOO",
            "FOO$FOOFOO",
            "FOOBAR BAR$FOO",
            "FOOBAR BAR",
            "BAR BAR",
            "BAR",
            "BAR",
            "BAR BARwaldo",
            "${FOO",
            "FOO$BAR BAR",
            "$FOOBAR BAR",
            "${FOO:-waldo}",
            "${QUUX:-BAR BAR}",
            "${FOO:+waldo}",
            "${QUUX:+waldo}",
            "${FOO:+|waldo|}}",
            "${FOO:+|waldo{|}",
        ]);
        assert_eq!(replace_env_argv(&line, &e), want);
    }

    // Section 5.2 of flint's systemd reference: unset and invalid names.
    #[test]
    fn replace_env_unset_and_quotes() {
        let e = env(&[("Q", "'a b' \"c\" d\\ e"), ("EMPTY", ""), ("X", "1")]);
        let (out, report) = replace_env_argv_full(
            &strs(&[
                "/bin/x",
                "$Q",
                "$UNSET",
                "${UNSET2}x",
                "$EMPTY",
                "$",
                "$X-y",
                "a$X",
                "$$X",
                "${X}${X}",
            ]),
            &e,
        );
        assert_eq!(
            out,
            strs(&["/bin/x", "a b", "c", "d e", "x", "a$X", "$X", "11"])
        );
        assert_eq!(report.unset, strs(&["UNSET", "UNSET2"]));
        assert_eq!(report.invalid, strs(&["", "X-y"]));
        assert_eq!(replace_env("${X}$$${NOPE}", &e), "1$");
        // The last assignment of a name wins, as in systemd's strv_env_get().
        let dup = env(&[("A", "1"), ("A", "2")]);
        assert_eq!(replace_env("${A}", &dup), "2");
    }
}
