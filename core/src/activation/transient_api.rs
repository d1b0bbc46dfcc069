//! `StartTransientUnit` of systemd's manager API: the unit's properties,
//! as `systemd-run` (Debian's own) and other clients send them, turned into
//! the unit file flint writes for a transient unit (the one
//! `flint`'s own `systemd-run` writes), so that the manager starts it as
//! any other.
//!
//! A property's D-Bus name is mostly its unit file key; systemd's
//! renamings are undone: a time span `FooUSec` (`t`, µs) is `FooSec=`
//! with `us`, a resource scale `FooScale` (`u`, of 2³²) is `Foo=` in
//! percent, `CPUQuotaPerSecUSec` is `CPUQuota=`, `LimitFOO` and
//! `LimitFOOSoft` are one `LimitFOO=soft:hard`, and the commands
//! (`a(sasb)`, or `a(sasas)` for the `Ex` ones) are command lines. A
//! property of a type that has no such line (file descriptors for
//! standard I/O, structures) is refused with systemd's words for a
//! property it does not know.

use crate::bus::Any;
use crate::control::systemd_run::{in_unit_section, quote_word, setting_value};

/// An error of the call: its D-Bus name and text.
pub(super) type CallError = (&'static str, String);

const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
const READ_ONLY: &str = "org.freedesktop.DBus.Error.PropertyReadOnly";
const NOT_SUPPORTED: &str = "org.freedesktop.DBus.Error.NotSupported";

/// The unit files of a transient unit `name` with `properties`
/// (`a(sv)`) and its auxiliary units (`a(sa(sv))`, a timer's service),
/// each as (name, text).
pub(super) fn unit_files(
    name: &str,
    properties: &Any,
    aux: &Any,
) -> Result<Vec<(String, String)>, CallError> {
    let mut out = vec![(name.to_string(), unit_text(name, properties)?)];
    if let Any::Array(_, units) = aux {
        for u in units {
            let Any::Struct(f) = u else { continue };
            let (Some(Any::Str(n)), Some(props)) = (f.first(), f.get(1)) else {
                continue;
            };
            out.push((n.clone(), unit_text(n, props)?));
        }
    }
    Ok(out)
}

/// The section of the unit type's own settings.
fn type_section(name: &str) -> Result<&'static str, CallError> {
    let parsed = name
        .parse::<crate::unit::name::UnitName>()
        .ok()
        .filter(|n| !n.is_template())
        .ok_or_else(|| (INVALID_ARGS, format!("Invalid unit name or type: {name}")))?;
    match parsed.unit_type() {
        crate::unit::name::UnitType::Service => Ok("Service"),
        crate::unit::name::UnitType::Timer => Ok("Timer"),
        t => Err((
            NOT_SUPPORTED,
            format!(
                "flint starts transient services and timers, not {} units",
                t.suffix()
            ),
        )),
    }
}

/// The unit file of one transient unit.
fn unit_text(name: &str, properties: &Any) -> Result<String, CallError> {
    let section = type_section(name)?;
    let Any::Array(_, props) = properties else {
        return Err((INVALID_ARGS, "properties are not a(sv)".into()));
    };
    let mut unit = Vec::new();
    let mut own = Vec::new();
    // LimitFOO (hard) and LimitFOOSoft, joined once both are known.
    let mut limits: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for p in props {
        let Any::Struct(f) = p else { continue };
        let (Some(Any::Str(key)), Some(Any::Variant(sig, value))) = (f.first(), f.get(1)) else {
            return Err((INVALID_ARGS, "a property is not (sv)".into()));
        };
        // A key is a name: nothing in it can start another line or section.
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(unknown(key));
        }
        if let Some(base) = key.strip_prefix("Limit") {
            let (base, soft) = match base.strip_suffix("Soft") {
                Some(b) => (b, true),
                None => (base, false),
            };
            let Any::Int(n) = **value else {
                return Err(unknown(key));
            };
            let v = number(n);
            let limit = format!("Limit{base}");
            let i = if let Some(i) = limits.iter().position(|(k, _, _)| *k == limit) {
                i
            } else {
                limits.push((limit, None, None));
                limits.len() - 1
            };
            if soft {
                limits[i].2 = Some(v);
            } else {
                limits[i].1 = Some(v);
            }
            continue;
        }
        for (k, v) in lines(section, key, sig, value)? {
            if in_unit_section(&k) {
                unit.push(format!("{k}={v}"));
            } else {
                own.push(format!("{k}={v}"));
            }
        }
    }
    for (k, hard, soft) in limits {
        let v = match (soft, hard) {
            (Some(s), Some(h)) if s != h => format!("{s}:{h}"),
            (_, Some(h)) => h,
            (Some(s), None) => format!("{s}:infinity"),
            (None, None) => continue,
        };
        own.push(format!("{k}={v}"));
    }
    Ok(format!(
        "# A transient unit: sent to the running flint (StartTransientUnit).\n\
         [Unit]\n{}{}\n[{section}]\n{}{}",
        unit.join("\n"),
        if unit.is_empty() { "" } else { "\n" },
        own.join("\n"),
        if own.is_empty() { "" } else { "\n" },
    ))
}

/// systemd's answer for a property it does not take.
fn unknown(key: &str) -> CallError {
    (
        READ_ONLY,
        format!("Cannot set property {key}, or unknown property."),
    )
}

/// A number as a unit file writes it: `UINT64_MAX` is `infinity`.
fn number(n: i128) -> String {
    if n == i128::from(u64::MAX) {
        "infinity".into()
    } else {
        n.to_string()
    }
}

/// The unit file lines (key, value) of one property.
fn lines(
    section: &str,
    key: &str,
    sig: &str,
    value: &Any,
) -> Result<Vec<(String, String)>, CallError> {
    let bad = |e: crate::control::systemd_run::RunError| (INVALID_ARGS, e.to_string());
    // Only while this call lasts: systemd-run's pin on a bus.
    if key == "AddRef" {
        return Ok(Vec::new());
    }
    // Commands.
    if key.starts_with("Exec") && (sig == "a(sasb)" || sig == "a(sasas)") {
        let line_key = key.strip_suffix("Ex").unwrap_or(key).to_string();
        let Any::Array(_, cmds) = value else {
            return Err(unknown(key));
        };
        let mut out = Vec::new();
        for c in cmds {
            out.push((line_key.clone(), command_line(key, c)?));
        }
        // An empty list resets the commands, as an empty assignment.
        if out.is_empty() {
            out.push((line_key, String::new()));
        }
        return Ok(out);
    }
    // A timer's events: `a(st)` of (base, µs), `a(ss)` of (base, spec).
    if (key == "TimersMonotonic" && sig == "a(st)") || (key == "TimersCalendar" && sig == "a(ss)") {
        let Any::Array(_, events) = value else {
            return Err(unknown(key));
        };
        let mut out = Vec::new();
        for e in events {
            match e {
                Any::Struct(f) => match (f.first(), f.get(1)) {
                    (Some(Any::Str(base)), Some(Any::Int(usec)))
                        if base.chars().all(|c| c.is_ascii_alphanumeric()) =>
                    {
                        let k = base.strip_suffix("USec").unwrap_or(base);
                        out.push((
                            format!("{}Sec", k.trim_end_matches("Sec")),
                            format!("{usec}us"),
                        ));
                    }
                    (Some(Any::Str(base)), Some(Any::Str(spec)))
                        if base.chars().all(|c| c.is_ascii_alphanumeric()) =>
                    {
                        out.push((
                            base.clone(),
                            setting_value("Timer", base, spec).map_err(bad)?,
                        ));
                    }
                    _ => return Err(unknown(key)),
                },
                _ => return Err(unknown(key)),
            }
        }
        return Ok(out);
    }
    let text = match (sig, value) {
        ("s" | "o", Any::Str(s)) => {
            setting_value(section_for(section, key), key, s).map_err(bad)?
        }
        ("b", Any::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
        ("t", Any::Int(n)) if key == "CPUQuotaPerSecUSec" => {
            let percent = if *n == i128::from(u64::MAX) {
                String::new()
            } else {
                // µs per second: hundredths of a percent are µs / 100.
                format!("{}%", hundredths(*n / 100))
            };
            return Ok(vec![("CPUQuota".into(), percent)]);
        }
        ("t", Any::Int(n)) if key.ends_with("USec") => {
            let k = format!("{}Sec", &key[..key.len() - 4]);
            let v = if *n == i128::from(u64::MAX) {
                "infinity".to_string()
            } else {
                format!("{n}us")
            };
            return Ok(vec![(k, v)]);
        }
        ("u", Any::Int(n)) if key.ends_with("Scale") => {
            let k = key[..key.len() - 5].to_string();
            // Rounded, as systemd's UINT32_SCALE_TO_PERMYRIAD().
            let max = i128::from(u32::MAX);
            let percent = hundredths((*n * 10_000 + max / 2) / max);
            return Ok(vec![(k, format!("{percent}%"))]);
        }
        ("y" | "n" | "q" | "i" | "u" | "x" | "t", Any::Int(n)) => number(*n),
        ("d", Any::Double(d)) => decimal(*d),
        ("as", Any::Array(_, items)) => {
            let mut words = Vec::new();
            for i in items {
                let Any::Str(s) = i else {
                    return Err(unknown(key));
                };
                // Assignments and other words that may hold spaces are
                // quoted; names and paths without them are not.
                if matches!(key, "Environment" | "PassEnvironment" | "UnsetEnvironment")
                    || s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
                {
                    if !crate::unit::load::expands_specifiers(section_for(section, key), key)
                        && s.contains('%')
                    {
                        return Err((INVALID_ARGS, format!("Invalid value of {key}: {s}")));
                    }
                    words.push(quote_word(s));
                } else {
                    words.push(setting_value(section_for(section, key), key, s).map_err(bad)?);
                }
            }
            words.join(" ")
        }
        ("h", _) => {
            return Err((
                NOT_SUPPORTED,
                format!(
                    "{key}: flint takes no file descriptors over D-Bus \
                     (flint's own systemd-run passes standard I/O with --pipe and --pty)"
                ),
            ));
        }
        _ => return Err(unknown(key)),
    };
    Ok(vec![(key.to_string(), text)])
}

/// The section whose rules a key's value follows.
fn section_for<'a>(section: &'a str, key: &str) -> &'a str {
    if in_unit_section(key) {
        "Unit"
    } else {
        section
    }
}

/// A number of hundredths as a decimal without trailing zeros (`50`,
/// `12.5`).
fn hundredths(h: i128) -> String {
    let s = format!("{}.{:02}", h / 100, h % 100);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A floating-point value as a unit file writes it.
fn decimal(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One command (`(sasb)`: path, argv, ignore failure; or `(sasas)`: path,
/// argv, flags) as a command line: prefixes, `@path` where `argv[0]` is
/// not the path, then the words quoted.
fn command_line(key: &str, c: &Any) -> Result<String, CallError> {
    let Any::Struct(f) = c else {
        return Err(unknown(key));
    };
    let (Some(Any::Str(path)), Some(Any::Array(_, argv)), Some(flags)) =
        (f.first(), f.get(1), f.get(2))
    else {
        return Err(unknown(key));
    };
    if !path.starts_with('/') {
        return Err((INVALID_ARGS, format!("Path {path} is not absolute.")));
    }
    let argv: Vec<&str> = argv
        .iter()
        .filter_map(|a| match a {
            Any::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    if argv.is_empty() {
        return Err((INVALID_ARGS, format!("{key} argv must not be empty.")));
    }
    let mut prefix = String::new();
    match flags {
        Any::Bool(true) => prefix.push('-'),
        Any::Bool(false) => {}
        Any::Array(_, names) => {
            for n in names {
                let Any::Str(n) = n else {
                    return Err(unknown(key));
                };
                prefix.push_str(match n.as_str() {
                    "ignore-failure" => "-",
                    "privileged" => "+",
                    "no-setuid" => "!",
                    "ambient" => "!!",
                    "no-env-expand" => ":",
                    _ => {
                        return Err((INVALID_ARGS, format!("Invalid {key} flag: {n}")));
                    }
                });
            }
        }
        _ => return Err(unknown(key)),
    }
    let words: Vec<String> = argv.iter().map(|w| quote_word(w)).collect();
    if argv[0] == path {
        Ok(format!("{prefix}{}", words.join(" ")))
    } else {
        Ok(format!("{prefix}@{} {}", quote_word(path), words.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(key: &str, sig: &str, v: Any) -> Any {
        Any::Struct(vec![
            Any::Str(key.into()),
            Any::Variant(sig.into(), Box::new(v)),
        ])
    }

    fn strs(items: &[&str]) -> Any {
        Any::Array(
            "s".into(),
            items.iter().map(|s| Any::Str((*s).into())).collect(),
        )
    }

    #[test]
    fn systemd_runs_properties_become_a_unit_file() {
        let props = Any::Array(
            "(sv)".into(),
            vec![
                prop(
                    "Description",
                    "s",
                    Any::Str("[systemd-run] /bin/echo 50%".into()),
                ),
                prop("AddRef", "b", Any::Bool(true)),
                prop("RemainAfterExit", "b", Any::Bool(true)),
                prop("Nice", "i", Any::Int(5)),
                prop("RuntimeMaxUSec", "t", Any::Int(90_000_000)),
                prop("MemoryMax", "t", Any::Int(i128::from(u64::MAX))),
                prop("CPUQuotaPerSecUSec", "t", Any::Int(250_000)),
                // systemd-run -p MemoryHigh=33% (UINT32_SCALE_FROM_PERMYRIAD).
                prop("MemoryHighScale", "u", Any::Int(1_417_339_208)),
                prop("LimitNOFILE", "t", Any::Int(4096)),
                prop("LimitNOFILESoft", "t", Any::Int(1024)),
                prop("Environment", "as", strs(&["A=1", "B=two words"])),
                prop("After", "as", strs(&["a.service", "b.service"])),
                prop(
                    "ExecStart",
                    "a(sasb)",
                    Any::Array(
                        "(sasb)".into(),
                        vec![Any::Struct(vec![
                            Any::Str("/bin/echo".into()),
                            strs(&["/bin/echo", "100%", "$HOME"]),
                            Any::Bool(false),
                        ])],
                    ),
                ),
                prop(
                    "ExecStopPostEx",
                    "a(sasas)",
                    Any::Array(
                        "(sasas)".into(),
                        vec![Any::Struct(vec![
                            Any::Str("/bin/busybox".into()),
                            strs(&["true"]),
                            strs(&["ignore-failure", "privileged"]),
                        ])],
                    ),
                ),
            ],
        );
        let files = unit_files(
            "run-x.service",
            &props,
            &Any::Array("(sa(sv))".into(), vec![]),
        )
        .unwrap();
        assert_eq!(files.len(), 1);
        let text = &files[0].1;
        for line in [
            "[Unit]\nDescription=[systemd-run] /bin/echo 50%%\nAfter=a.service b.service\n",
            "[Service]\n",
            "RemainAfterExit=yes\n",
            "Nice=5\n",
            "RuntimeMaxSec=90000000us\n",
            "MemoryMax=infinity\n",
            "CPUQuota=25%\n",
            "MemoryHigh=33%\n",
            "Environment=\"A=1\" \"B=two words\"\n",
            "ExecStart=\"/bin/echo\" \"100%%\" \"$HOME\"\n",
            "ExecStopPost=-+@\"/bin/busybox\" \"true\"\n",
            "LimitNOFILE=1024:4096\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        assert!(!text.contains("AddRef"), "{text}");
        // The text is a unit flint reads back as meant.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run-x.service"), text).unwrap();
        let search =
            crate::unit::loader::SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        let unit =
            crate::unit::load::load_file(&search, &dir.path().join("run-x.service")).unwrap();
        assert!(!unit.has_errors(), "{text}");
        assert!(unit.get("Service", "Nice").is_some());
        assert_eq!(unit.get_usec("Service", "RuntimeMaxSec"), Some(90_000_000));
        assert_eq!(
            unit.get_str("Unit", "Description"),
            Some("[systemd-run] /bin/echo 50%")
        );
        let start = unit.commands("Service", "ExecStart");
        assert_eq!(start[0].argv, ["/bin/echo", "100%", "$HOME"]);
    }

    #[test]
    fn what_has_no_line_is_refused() {
        let one = |p: Any| Any::Array("(sv)".into(), vec![p]);
        let none = Any::Array("(sa(sv))".into(), vec![]);
        let e = unit_files(
            "x.service",
            &one(prop("StandardInputFileDescriptor", "h", Any::Fd(0))),
            &none,
        )
        .unwrap_err();
        assert_eq!(e.0, NOT_SUPPORTED);
        let e = unit_files(
            "x.service",
            &one(prop(
                "BindPaths",
                "a(ssbt)",
                Any::Array("(ssbt)".into(), vec![]),
            )),
            &none,
        )
        .unwrap_err();
        assert_eq!(e, unknown("BindPaths"));
        let e = unit_files(
            "x.scope",
            &one(prop("Description", "s", Any::Str("d".into()))),
            &none,
        )
        .unwrap_err();
        assert_eq!(e.0, NOT_SUPPORTED);
        let relative = Any::Array(
            "(sasb)".into(),
            vec![Any::Struct(vec![
                Any::Str("echo".into()),
                strs(&["echo"]),
                Any::Bool(false),
            ])],
        );
        let e = unit_files(
            "x.service",
            &one(prop("ExecStart", "a(sasb)", relative)),
            &none,
        )
        .unwrap_err();
        assert_eq!(e.1, "Path echo is not absolute.");
        // Nor can a key that is not a name.
        let e = unit_files(
            "x.service",
            &one(prop("Nice=1\nUser", "s", Any::Str("root".into()))),
            &none,
        )
        .unwrap_err();
        assert_eq!(e.0, READ_ONLY);
        // A line break cannot reach the file.
        let e = unit_files(
            "x.service",
            &one(prop(
                "Description",
                "s",
                Any::Str("a\n[Service]\nUser=root".into()),
            )),
            &none,
        )
        .unwrap_err();
        assert_eq!(e.0, INVALID_ARGS);
    }

    #[test]
    fn a_timer_comes_with_its_service() {
        // As systemd-run --on-active=30 --on-calendar=daily sends them.
        let timer = Any::Array(
            "(sv)".into(),
            vec![
                prop(
                    "TimersMonotonic",
                    "a(st)",
                    Any::Array(
                        "(st)".into(),
                        vec![Any::Struct(vec![
                            Any::Str("OnActiveUSec".into()),
                            Any::Int(30_000_000),
                        ])],
                    ),
                ),
                prop(
                    "TimersCalendar",
                    "a(ss)",
                    Any::Array(
                        "(ss)".into(),
                        vec![Any::Struct(vec![
                            Any::Str("OnCalendar".into()),
                            Any::Str("daily".into()),
                        ])],
                    ),
                ),
                prop("RemainAfterElapsed", "b", Any::Bool(false)),
            ],
        );
        let aux = Any::Array(
            "(sa(sv))".into(),
            vec![Any::Struct(vec![
                Any::Str("run-t.service".into()),
                Any::Array(
                    "(sv)".into(),
                    vec![prop(
                        "ExecStart",
                        "a(sasb)",
                        Any::Array(
                            "(sasb)".into(),
                            vec![Any::Struct(vec![
                                Any::Str("/bin/true".into()),
                                strs(&["/bin/true"]),
                                Any::Bool(false),
                            ])],
                        ),
                    )],
                ),
            ])],
        );
        let files = unit_files("run-t.timer", &timer, &aux).unwrap();
        assert_eq!(files[0].0, "run-t.timer");
        assert!(
            files[0].1.contains(
                "[Timer]\nOnActiveSec=30000000us\nOnCalendar=daily\nRemainAfterElapsed=no\n"
            ),
            "{}",
            files[0].1
        );
        assert_eq!(files[1].0, "run-t.service");
        assert!(files[1].1.contains("[Service]\nExecStart=\"/bin/true\"\n"));
    }
}
