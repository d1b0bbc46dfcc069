//! `systemd-run` as a front to a running flint: the flint binary called by
//! that name (a link) reads `systemd-run`'s command line, writes the
//! transient service (and timer) as unit files, and has the running flint
//! start them, as systemd-run asks systemd over the bus. Scripts written
//! for systemd machines (`systemd-run --unit=backup -p Nice=10 --wait
//! /usr/bin/backup`, `systemd-run --on-active=30 /bin/cleanup`) keep
//! working where flint runs the units.
//!
//! - The command is looked up in `$PATH` here, as systemd-run does, and
//!   runs as `ExecStart=` with its words quoted for a unit file (`%` kept
//!   as it is; `$VAR` expanded at exec, as systemd does for a command sent
//!   over the bus).
//! - `-p KEY=VALUE` goes to `[Unit]` for the unit section's settings and
//!   conditions, else to `[Service]`; `--timer-property=` to `[Timer]`.
//! - Without `--unit=`, the name is `run-r` and 32 random hex digits, as
//!   systemd-run names its units when it talks to systemd directly.
//! - `--wait` waits for the service to end and reports its result as
//!   systemd-run does, exiting with the service's exit status.
//! - `--pipe` (`-P`) gives the service systemd-run's own standard input,
//!   output and error: they travel to the running flint over its control
//!   socket (`SCM_RIGHTS`), as systemd-run hands them to systemd over the
//!   bus, and systemd-run waits for the service to end and exits with its
//!   status. flint lets go of them once the service has ended, so a pipeline
//!   behind systemd-run sees its end.
//! - `--pty` (`-t`) runs the service on a pseudo terminal that systemd-run
//!   opens and carries over to its own standard input and output until the
//!   service has ended ([`super::pty`]); `--shell` (`-S`) is `--pty
//!   --same-dir --wait --collect --service-type=exec $SHELL`. `--pty` with
//!   `--pipe` is `--pty` when all three of systemd-run's standard I/O are
//!   terminals, else `--pipe`, as systemd-run chooses.
//! - `--scope`, `--host` and `--machine` have no counterpart in flint and
//!   are refused by name.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why a `systemd-run` command line cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("unrecognized option '{0}'")]
    UnknownOption(String),
    #[error("option '{0}' requires an argument")]
    MissingValue(String),
    #[error("{0}: flint runs services, not scopes or remote units")]
    Unsupported(String),
    #[error("Command line to execute required.")]
    NoCommand,
    #[error("Failed to find executable {0}: No such file or directory")]
    NotFound(String),
    #[error("Invalid unit name: {0}")]
    BadName(String),
    #[error("Invalid property assignment: {0}")]
    BadProperty(String),
    #[error("{0}")]
    Conflict(&'static str),
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemdRun {
    Run(Run),
    Help,
    Version,
}

/// A transient service, and its timer if one was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub user: bool,
    /// The service's name (`NAME.service`).
    pub service: String,
    /// The service's unit file (`None`: a timer of a unit that is there).
    pub service_text: Option<String>,
    /// The timer's name and unit file, when a `--on-*` option asks for one.
    pub timer: Option<(String, String)>,
    pub wait: bool,
    pub no_block: bool,
    pub quiet: bool,
    /// `--pipe`: the service gets systemd-run's stdin, stdout and stderr,
    /// and systemd-run waits for its end.
    pub pipe: bool,
    /// `--pty` (or `--shell`): the service runs on a pseudo terminal that
    /// systemd-run forwards to its own, until the service has ended.
    pub pty: bool,
}

/// `systemd-run --help`.
pub const HELP: &str = "systemd-run [OPTIONS...] COMMAND [ARGUMENTS...]

flint called as systemd-run: runs COMMAND as a transient service of the
running flint.

  -u --unit=UNIT              Run under the specified unit name
  -p --property=NAME=VALUE    Set service or unit property
     --description=TEXT       Description for unit
     --slice=SLICE            Run in the specified slice
  -r --remain-after-exit      Leave service around until explicitly stopped
     --wait                   Wait until service stopped again
  -t --pty                    Run service on pseudo TTY as STDIN/STDOUT/STDERR
  -P --pipe                   Pass STDIN/STDOUT/STDERR directly to service
  -S --shell                  Invoke a $SHELL interactively
     --service-type=TYPE      Service type
     --uid=USER               Run as system user
     --gid=GROUP              Run as system group
     --nice=NICE              Nice level
     --working-directory=PATH Set working directory
  -d --same-dir               Inside the same working directory as the caller
  -E --setenv=NAME[=VALUE]    Set environment variable
     --send-sighup            Send SIGHUP when terminating
  -G --collect                Unload unit after it ran, even when failed
     --user                   Run as user unit
     --system                 Run as system unit
     --no-block               Do not wait until operation finished
  -q --quiet                  Suppress information messages during runtime
     --on-active=SECONDS      Run after SECONDS delay
     --on-boot=SECONDS        Run SECONDS after machine was booted up
     --on-startup=SECONDS     Run SECONDS after flint was first started
     --on-unit-active=SECONDS Run SECONDS after the last activation
     --on-unit-inactive=SECONDS Run SECONDS after the last deactivation
     --on-calendar=SPEC       Realtime timer
     --on-timezone-change     Run when the timezone changes
     --on-clock-change        Run when the realtime clock jumps
     --timer-property=NAME=VALUE Set timer unit property
  -h --help                   Show this help
     --version                Show package version

--scope, --host and --machine have no counterpart in flint and are refused.
";

/// The settings of a unit file's `[Unit]` section; other `-p` settings go
/// to `[Service]`.
const UNIT_SECTION: &[&str] = &[
    "Description",
    "Documentation",
    "Wants",
    "Requires",
    "Requisite",
    "BindsTo",
    "PartOf",
    "Upholds",
    "Conflicts",
    "Before",
    "After",
    "OnFailure",
    "OnSuccess",
    "PropagatesReloadTo",
    "ReloadPropagatedFrom",
    "PropagatesStopTo",
    "StopPropagatedFrom",
    "JoinsNamespaceOf",
    "RequiresMountsFor",
    "OnFailureJobMode",
    "IgnoreOnIsolate",
    "StopWhenUnneeded",
    "RefuseManualStart",
    "RefuseManualStop",
    "AllowIsolate",
    "DefaultDependencies",
    "CollectMode",
    "FailureAction",
    "SuccessAction",
    "FailureActionExitStatus",
    "SuccessActionExitStatus",
    "JobTimeoutSec",
    "JobRunningTimeoutSec",
    "JobTimeoutAction",
    "JobTimeoutRebootArgument",
    "StartLimitIntervalSec",
    "StartLimitBurst",
    "StartLimitAction",
    "RebootArgument",
    "SourcePath",
];

/// Whether `key` belongs in a unit file's `[Unit]` section (its settings,
/// conditions and assertions), not in the unit type's own.
pub(crate) fn in_unit_section(key: &str) -> bool {
    UNIT_SECTION.contains(&key) || key.starts_with("Condition") || key.starts_with("Assert")
}

/// Options that take a value, by every name systemd-run gives them.
fn option_with_value(name: &str) -> Option<&'static str> {
    Some(match name {
        "-u" | "--unit" => "unit",
        "-p" | "--property" => "property",
        "--description" => "description",
        "--slice" => "slice",
        "--service-type" => "service-type",
        "--uid" => "uid",
        "--gid" => "gid",
        "--nice" => "nice",
        "--working-directory" => "working-directory",
        "-E" | "--setenv" => "setenv",
        "--on-active" => "OnActiveSec",
        "--on-boot" => "OnBootSec",
        "--on-startup" => "OnStartupSec",
        "--on-unit-active" => "OnUnitActiveSec",
        "--on-unit-inactive" => "OnUnitInactiveSec",
        "--on-calendar" => "OnCalendar",
        "--timer-property" => "timer-property",
        "--path-property" | "--socket-property" => "unsupported",
        "-H" | "--host" | "-M" | "--machine" => "unsupported",
        _ => return None,
    })
}

/// One word of `ExecStart=`, quoted for a unit file: in double quotes with
/// C escapes, a lone `;` escaped (it would end the command).
pub fn quote_word(word: &str) -> String {
    if word == ";" {
        return "\\;".to_owned();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // A specifier is not one in a command sent over the bus.
            '%' => out.push_str("%%"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value given for `key` of `section`, as a unit file line holds it:
/// a `%` doubled where flint would take it for a specifier (systemd takes
/// nothing sent over the bus for one); refused with a control character
/// or a trailing backslash, which would end the line or join the next.
pub(crate) fn setting_value(section: &str, key: &str, value: &str) -> Result<String, RunError> {
    if value.chars().any(char::is_control) || value.ends_with('\\') {
        return Err(RunError::BadProperty(format!("{key}={value}")));
    }
    Ok(if crate::unit::load::expands_specifiers(section, key) {
        value.replace('%', "%%")
    } else {
        value.to_owned()
    })
}

/// The description made of the command line: control characters become
/// spaces and a trailing backslash goes, so that it stays one line.
fn description_of(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.trim_end_matches('\\').replace('%', "%%")
}

/// `name` found in `path` (`$PATH`) as an executable file.
pub fn find_in_path(name: &str, path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    // As systemd: a relative entry is no place to look.
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Translates `systemd-run`'s arguments (without the program name).
pub fn translate(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<SystemdRun, RunError> {
    translate_for(args, env, cwd, [false; 3], None)
}

/// [`translate`] for a caller whose standard input, output and error are
/// terminals or not (`ttys`): `--pipe` then passes `$TERM` on, and `--pty`
/// with `--pipe` asks for a terminal only when all three are one. A run
/// on a pseudo terminal ([`Run::pty`]) names its terminal (`pty_path`) in
/// the unit; without it the unit has none yet.
pub fn translate_for(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
    ttys: [bool; 3],
    pty_path: Option<&str>,
) -> Result<SystemdRun, RunError> {
    let mut user = false;
    let mut pipe = false;
    let mut pty = false;
    let mut shell = false;
    let mut wait = false;
    let mut no_block = false;
    let mut quiet = false;
    let mut remain = false;
    let mut collect = false;
    let mut same_dir = false;
    let mut send_sighup = false;
    let mut timer_events: Vec<(&'static str, String)> = Vec::new();
    let mut values: Vec<(&'static str, String)> = Vec::new();
    let mut command: Vec<String> = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        // As systemd-run's getopt ("+"): the first word that is no option
        // begins the command, whose own options are its own.
        if !arg.starts_with('-') || arg == "-" {
            command.push(arg.clone());
            command.extend(iter.by_ref().cloned());
            break;
        }
        match arg.as_str() {
            "--" => {
                command.extend(iter.by_ref().cloned());
                break;
            }
            "-h" | "--help" => return Ok(SystemdRun::Help),
            "--version" => return Ok(SystemdRun::Version),
            "--user" => user = true,
            "--system" => user = false,
            "--wait" => wait = true,
            "--no-block" => no_block = true,
            "-q" | "--quiet" => quiet = true,
            "-r" | "--remain-after-exit" => remain = true,
            "-G" | "--collect" => collect = true,
            "-d" | "--same-dir" => same_dir = true,
            "--send-sighup" => send_sighup = true,
            "--no-ask-password" => {}
            "--on-clock-change" => timer_events.push(("OnClockChange", "yes".into())),
            "--on-timezone-change" => timer_events.push(("OnTimezoneChange", "yes".into())),
            "-P" | "--pipe" => pipe = true,
            "-t" | "--pty" => pty = true,
            "-S" | "--shell" => shell = true,
            "--scope" => {
                return Err(RunError::Unsupported(arg.clone()));
            }
            // Short flags together (`-rq`), as getopt takes them.
            _ if !arg.starts_with("--")
                && arg.len() > 2
                && arg[1..].chars().all(|c| "rqGdPtS".contains(c)) =>
            {
                for c in arg[1..].chars() {
                    match c {
                        'r' => remain = true,
                        'q' => quiet = true,
                        'G' => collect = true,
                        'P' => pipe = true,
                        't' => pty = true,
                        'S' => shell = true,
                        _ => same_dir = true,
                    }
                }
            }
            _ => {
                let (name, inline) = match arg.split_once('=') {
                    Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                    _ if !arg.starts_with("--") && arg.len() > 2 => {
                        (&arg[..2], Some(arg[2..].to_string()))
                    }
                    _ => (arg.as_str(), None),
                };
                let Some(key) = option_with_value(name) else {
                    return Err(RunError::UnknownOption(arg.clone()));
                };
                if key == "unsupported" {
                    return Err(RunError::Unsupported(name.to_owned()));
                }
                let value = match inline {
                    Some(v) => v,
                    None => iter
                        .next()
                        .cloned()
                        .ok_or_else(|| RunError::MissingValue(name.to_owned()))?,
                };
                if key.starts_with("On") {
                    timer_events.push((key, value));
                } else {
                    values.push((key, value));
                }
            }
        }
    }
    // `--shell`: "--pty --same-dir --wait --collect --service-type=exec
    // $SHELL", as systemd-run's manual says (the wait is taken below, once
    // the options that exclude it were looked at).
    if shell {
        if !command.is_empty() {
            return Err(RunError::Conflict(
                "If --shell is used, no command line is expected.",
            ));
        }
        pty = true;
        same_dir = true;
        collect = true;
        values.push(("service-type", "exec".into()));
        // `$SHELL`, else the caller's login shell, as systemd's
        // `get_shell()`.
        let login = || {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.shell.display().to_string())
                .filter(|s| s.starts_with('/'))
        };
        command.push(
            env("SHELL")
                .filter(|s| s.starts_with('/'))
                .or_else(login)
                .unwrap_or_else(|| "/bin/sh".into()),
        );
    }
    let value = |key: &str| {
        values
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    };
    let timer_properties: Vec<String> = values
        .iter()
        .filter(|(k, _)| *k == "timer-property")
        .map(|(_, v)| v.clone())
        .collect();
    let want_timer = !timer_events.is_empty();
    if timer_events.is_empty() && !timer_properties.is_empty() {
        return Err(RunError::Conflict(
            "--timer-property= has no effect without any other timer options.",
        ));
    }
    if wait && want_timer {
        return Err(RunError::Conflict(
            "--wait may not be combined with path, socket or timer operations.",
        ));
    }
    if wait && no_block {
        return Err(RunError::Conflict(
            "--wait may not be combined with --no-block.",
        ));
    }
    // `--pty` and `--pipe` together: a terminal when all three are one.
    if pty && pipe {
        if ttys.iter().all(|t| *t) {
            pipe = false;
        } else {
            pty = false;
        }
    }
    if (pipe || pty) && no_block {
        return Err(RunError::Conflict(
            "--pty/--pipe is not compatible with --no-block.",
        ));
    }
    if (pipe || pty) && want_timer {
        return Err(RunError::Conflict(
            "--pty/--pipe is not compatible in timer or --scope mode.",
        ));
    }
    wait |= shell;
    // A timer of a unit that is there already needs no command.
    let timer_only = want_timer && command.is_empty() && value("unit").is_some();
    if command.is_empty() && !timer_only {
        return Err(RunError::NoCommand);
    }
    // The command, found here as systemd-run finds it.
    if let Some(first) = command.first_mut() {
        if first.contains('/') {
            // A path is looked at too, relative to this directory.
            let path = cwd.join(&*first);
            if !path.exists() {
                return Err(RunError::NotFound(first.clone()));
            }
            *first = path.display().to_string();
        } else {
            let path = env("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
            let found =
                find_in_path(first, &path).ok_or_else(|| RunError::NotFound(first.clone()))?;
            *first = found.display().to_string();
        }
    }
    let base = match value("unit") {
        Some(u) => {
            let stem = u
                .strip_suffix(".service")
                .or_else(|| u.strip_suffix(".timer"))
                .unwrap_or(&u)
                .to_owned();
            let valid = format!("{stem}.service")
                .parse::<crate::unit::name::UnitName>()
                .is_ok_and(|n| !n.is_template());
            if !valid {
                return Err(RunError::BadName(u));
            }
            stem
        }
        None => format!("run-r{}", crate::service::exec::invocation_id()),
    };
    let service = format!("{base}.service");
    let description = match value("description") {
        Some(d) => setting_value("Unit", "Description", &d)?,
        None if timer_only => format!("Timer for {base}.service"),
        None => description_of(&command.join(" ")),
    };
    let mut unit_lines = vec![format!("Description={description}")];
    let mut service_lines = Vec::new();
    if let Some(path) = pty_path.filter(|_| pty) {
        for key in ["StandardInput", "StandardOutput", "StandardError"] {
            service_lines.push(format!("{key}=tty"));
        }
        service_lines.push(format!(
            "TTYPath={}",
            setting_value("Service", "TTYPath", path)?
        ));
    }
    // As systemd-run: a service on a terminal gets the caller's `$TERM`.
    if (pty || (pipe && ttys.iter().any(|t| *t)))
        && let Some(term) = env("TERM")
    {
        service_lines.push(format!(
            "Environment={}",
            quote_word(&format!("TERM={term}"))
        ));
    }
    if collect {
        unit_lines.push("CollectMode=inactive-or-failed".into());
    }
    for (key, v) in &values {
        match *key {
            "property" => {
                let Some((k, val)) = v.split_once('=') else {
                    return Err(RunError::BadProperty(v.clone()));
                };
                let k = k.trim();
                if k.is_empty() || k.contains(char::is_whitespace) {
                    return Err(RunError::BadProperty(v.clone()));
                }
                if in_unit_section(k) {
                    unit_lines.push(format!("{k}={}", setting_value("Unit", k, val)?));
                } else {
                    service_lines.push(format!("{k}={}", setting_value("Service", k, val)?));
                }
            }
            "slice" | "service-type" | "uid" | "gid" | "nice" | "working-directory" => {
                let k = match *key {
                    "slice" => "Slice",
                    "service-type" => "Type",
                    "uid" => "User",
                    "gid" => "Group",
                    "nice" => "Nice",
                    _ => "WorkingDirectory",
                };
                service_lines.push(format!("{k}={}", setting_value("Service", k, v)?));
            }
            "setenv" => {
                let assignment = if v.contains('=') {
                    v.clone()
                } else {
                    match env(v) {
                        Some(val) => format!("{v}={val}"),
                        None => continue,
                    }
                };
                service_lines.push(format!("Environment={}", quote_word(&assignment)));
            }
            _ => {}
        }
    }
    if same_dir {
        service_lines.push(format!(
            "WorkingDirectory={}",
            setting_value("Service", "WorkingDirectory", &cwd.display().to_string())?
        ));
    }
    if remain {
        service_lines.push("RemainAfterExit=yes".into());
    }
    if send_sighup {
        service_lines.push("SendSIGHUP=yes".into());
    }
    let exec: Vec<String> = command.iter().map(|w| quote_word(w)).collect();
    service_lines.push(format!("ExecStart={}", exec.join(" ")));
    let header = "# A transient unit: written by systemd-run (flint) for the running flint.\n";
    let service_text = format!(
        "{header}[Unit]\n{}\n\n[Service]\n{}\n",
        unit_lines.join("\n"),
        service_lines.join("\n")
    );
    let timer = if want_timer {
        let mut lines = Vec::new();
        for (k, v) in &timer_events {
            lines.push(format!("{k}={}", setting_value("Timer", k, v)?));
        }
        for p in &timer_properties {
            let Some((k, v)) = p.split_once('=') else {
                return Err(RunError::BadProperty(p.clone()));
            };
            let k = k.trim();
            lines.push(format!("{k}={}", setting_value("Timer", k, v)?));
        }
        // As systemd-run's: the timer ends once it elapsed, and its name
        // can be used again.
        lines.push("RemainAfterElapse=no".into());
        lines.push(format!("Unit={service}"));
        Some((
            format!("{base}.timer"),
            format!(
                "{header}[Unit]\nDescription={description}\n\n[Timer]\n{}\n",
                lines.join("\n")
            ),
        ))
    } else {
        None
    };
    Ok(SystemdRun::Run(Run {
        user,
        service,
        service_text: (!timer_only).then_some(service_text),
        timer,
        wait,
        no_block,
        quiet,
        pipe,
        pty,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &[&str]) -> Result<Run, RunError> {
        let args: Vec<String> = line.iter().map(|s| (*s).to_string()).collect();
        let env = |k: &str| match k {
            "PATH" => Some("/usr/bin:/bin".to_owned()),
            "FROM_CALLER" => Some("yes".to_owned()),
            _ => None,
        };
        match translate(&args, &env, Path::new("/usr"))? {
            SystemdRun::Run(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_command_becomes_a_transient_service() {
        let r = run(&[
            "--unit=backup",
            "-p",
            "Nice=5",
            "-p",
            "After=network.target",
            "-E",
            "A=1 2",
            "-E",
            "FROM_CALLER",
            "-E",
            "UNSET",
            "--wait",
            "sh",
            "-c",
            "echo \"$A\" 100% done; exit 3",
            ";",
        ])
        .unwrap();
        assert_eq!(r.service, "backup.service");
        assert!(r.wait && !r.user && r.timer.is_none());
        let sh = find_in_path("sh", "/usr/bin:/bin").unwrap();
        assert_eq!(
            r.service_text.unwrap(),
            format!(
                "# A transient unit: written by systemd-run (flint) for the running flint.\n\
                 [Unit]\nDescription={sh} -c echo \"$A\" 100%% done; exit 3 ;\nAfter=network.target\n\n\
                 [Service]\nNice=5\nEnvironment=\"A=1 2\"\nEnvironment=\"FROM_CALLER=yes\"\n\
                 ExecStart=\"{sh}\" \"-c\" \"echo \\\"$A\\\" 100%% done; exit 3\" \\;\n",
                sh = sh.display()
            )
        );
    }

    #[test]
    fn names_timers_and_refusals() {
        let r = run(&["/bin/true"]).unwrap();
        let stem = r.service.strip_suffix(".service").unwrap();
        assert!(stem.starts_with("run-r") && stem.len() == 5 + 32, "{stem}");
        let r = run(&[
            "--on-active=30",
            "-u",
            "tick.service",
            "--timer-property=AccuracySec=1s",
            "true",
        ])
        .unwrap();
        assert_eq!(r.service, "tick.service");
        let (name, text) = r.timer.unwrap();
        assert_eq!(name, "tick.timer");
        assert!(
            text.ends_with(
                "[Timer]\nOnActiveSec=30\nAccuracySec=1s\nRemainAfterElapse=no\nUnit=tick.service\n"
            ),
            "{text}"
        );
        let r = run(&["-d", "-r", "--uid=nobody", "--", "./bin/sh", "-x"]).unwrap();
        assert!(r.service_text.as_deref().unwrap().contains("User=nobody\nWorkingDirectory=/usr\nRemainAfterExit=yes\nExecStart=\"/usr/./bin/sh\" \"-x\"\n"), "{:?}", r.service_text);
        // A path is looked at too, as systemd-run looks.
        assert_eq!(
            run(&["./no-such-tool"]).unwrap_err(),
            RunError::NotFound("./no-such-tool".into())
        );
        assert_eq!(
            run(&["/no/such/tool"]).unwrap_err(),
            RunError::NotFound("/no/such/tool".into())
        );
        assert_eq!(run(&[]).unwrap_err(), RunError::NoCommand);
        assert_eq!(
            run(&["--scope", "true"]).unwrap_err(),
            RunError::Unsupported("--scope".into())
        );
        assert_eq!(
            run(&["-M", "box", "true"]).unwrap_err(),
            RunError::Unsupported("-M".into())
        );
        assert_eq!(
            run(&["no-such-command-here"]).unwrap_err(),
            RunError::NotFound("no-such-command-here".into())
        );
        assert!(matches!(
            run(&["--wait", "--on-active=1", "true"]),
            Err(RunError::Conflict(_))
        ));
        assert!(matches!(
            run(&["-u", "a/b", "true"]),
            Err(RunError::BadName(_))
        ));
        assert!(matches!(
            run(&["-p", "Nice", "true"]),
            Err(RunError::BadProperty(_))
        ));
        assert!(matches!(
            run(&["--bogus", "true"]),
            Err(RunError::UnknownOption(_))
        ));
        // The command's own options are its own.
        let r = run(&["true", "--wait", "-q"]).unwrap();
        assert!(!r.wait && !r.quiet);
        assert!(
            r.service_text
                .as_deref()
                .unwrap()
                .contains("\"--wait\" \"-q\"")
        );
    }

    #[test]
    fn values_stay_on_their_line_and_percent_is_doubled_only_where_expanded() {
        let r = run(&[
            "-p",
            "MemoryMax=50%",
            "-p",
            "CPUQuota=20%",
            "-p",
            "Environment=A=5%",
            "--description=100% sure",
            "true",
        ])
        .unwrap();
        let text = r.service_text.unwrap();
        assert!(
            text.contains("\nMemoryMax=50%\nCPUQuota=20%\nEnvironment=A=5%%\n"),
            "{text}"
        );
        assert!(text.contains("Description=100%% sure\n"), "{text}");
        for bad in ["Description=a\nAfter=x", "Description=a\rb", "After=x\\"] {
            assert!(
                matches!(run(&["-p", bad, "true"]), Err(RunError::BadProperty(_))),
                "{bad:?}"
            );
        }
        // The description made of a command line stays one line.
        let r = run(&["sh", "-c", "a\nb\\"]).unwrap();
        let text = r.service_text.unwrap();
        assert!(text.contains("Description=/"), "{text}");
        assert!(text.lines().any(|l| l.ends_with("-c a b")), "{text}");
        assert!(
            text.contains("ExecStart=") && text.contains("\"a\\nb\\\\\""),
            "{text}"
        );
    }

    #[test]
    fn pipe_and_pty_take_the_callers_stdio_and_refuse_what_systemd_run_refuses() {
        let r = run(&["-P", "true"]).unwrap();
        assert!(r.pipe && !r.wait);
        assert!(!r.service_text.unwrap().contains("TERM="));
        let r = run(&["-qP", "true"]).unwrap();
        assert!(r.pipe && r.quiet);
        let args: Vec<String> = ["--pipe", "--pty", "true"].map(String::from).to_vec();
        let env = |k: &str| (k == "TERM").then(|| "xterm-256color".to_string());
        let cwd = Path::new("/");
        // Not all three a terminal: --pty with --pipe is --pipe, and the
        // service gets $TERM since one of them is.
        let Ok(SystemdRun::Run(r)) = translate_for(&args, &env, cwd, [false, true, false], None)
        else {
            panic!("refused");
        };
        assert!(r.pipe && !r.pty);
        assert!(
            r.service_text
                .unwrap()
                .contains("\nEnvironment=\"TERM=xterm-256color\"\n")
        );
        // All three terminals: a pseudo terminal, named in the unit.
        let Ok(SystemdRun::Run(r)) = translate_for(&args, &env, cwd, [true; 3], Some("/dev/pts/7"))
        else {
            panic!("refused");
        };
        assert!(r.pty && !r.pipe && !r.wait);
        assert!(r.service_text.unwrap().contains(
            "\nStandardInput=tty\nStandardOutput=tty\nStandardError=tty\nTTYPath=/dev/pts/7\n\
                 Environment=\"TERM=xterm-256color\"\n"
        ));
        // --shell: $SHELL on a terminal, in this directory, waited for,
        // collected, Type=exec.
        let shell: Vec<String> = vec!["-S".into()];
        let env = |k: &str| (k == "SHELL").then(|| "/bin/bash".to_string());
        let Ok(SystemdRun::Run(r)) = translate_for(
            &shell,
            &env,
            Path::new("/srv"),
            [true; 3],
            Some("/dev/pts/7"),
        ) else {
            panic!("refused");
        };
        assert!(r.pty && r.wait);
        let text = r.service_text.unwrap();
        for line in [
            "CollectMode=inactive-or-failed\n",
            "Type=exec\n",
            "WorkingDirectory=/srv\n",
            "TTYPath=/dev/pts/7\n",
            "ExecStart=\"/bin/bash\"\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert_eq!(
            run(&["-S", "true"]).unwrap_err(),
            RunError::Conflict("If --shell is used, no command line is expected.")
        );
        assert_eq!(
            run(&["-t", "--no-block", "true"]).unwrap_err(),
            RunError::Conflict("--pty/--pipe is not compatible with --no-block.")
        );
        assert_eq!(
            run(&["--pipe", "--no-block", "true"]).unwrap_err(),
            RunError::Conflict("--pty/--pipe is not compatible with --no-block.")
        );
        assert_eq!(
            run(&["--pipe", "--on-active=5", "true"]).unwrap_err(),
            RunError::Conflict("--pty/--pipe is not compatible in timer or --scope mode.")
        );
    }

    #[test]
    fn options_as_getopt_takes_them() {
        let r = run(&["-rqG", "true"]).unwrap();
        assert!(r.quiet);
        let text = r.service_text.unwrap();
        assert!(
            text.contains("CollectMode=inactive-or-failed") && text.contains("RemainAfterExit=yes")
        );
        assert!(matches!(
            run(&["-W", "true"]),
            Err(RunError::UnknownOption(_))
        ));
        assert!(matches!(
            run(&["--wait", "--no-block", "true"]),
            Err(RunError::Conflict(_))
        ));
        assert!(matches!(
            run(&["--timer-property=AccuracySec=1s", "true"]),
            Err(RunError::Conflict(_))
        ));
        // A timer for a unit that is there: no command, no service file.
        let r = run(&["--on-calendar=daily", "-u", "backup"]).unwrap();
        assert!(r.service_text.is_none());
        assert_eq!(r.timer.unwrap().0, "backup.timer");
        assert_eq!(
            run(&["--on-calendar=daily"]).unwrap_err(),
            RunError::NoCommand
        );
        // Relative entries of $PATH are no place to look.
        assert_eq!(find_in_path("sh", "bin:usr/bin"), None);
    }
}
