//! `systemctl` as a front to flint: the flint binary called by the name
//! `systemctl` (a link) reads `systemctl`'s command line and runs the flint
//! command that does the same (`systemctl restart foo` is
//! `flint ctl restart foo.service`, `systemctl enable --now foo` is
//! `flint enable --now foo.service`, `systemctl daemon-reload` is
//! `flint ctl daemon-reload`), so that administrators and scripts used to
//! systemd keep their commands where flint runs the units.
//!
//! Options may come before or after the verb, as `systemctl` takes them;
//! those that only shape `systemctl`'s output (`--no-pager`, `--full`,
//! `--no-legend`, ...) are accepted and change nothing. A verb or an option
//! flint has no counterpart for is refused with a message naming it, never
//! ignored silently.

/// Why a `systemctl` command line has no flint counterpart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemctlError {
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    #[error("option '{0}' needs a value")]
    MissingValue(String),
    #[error("'{0}' is not a command flint runs as systemctl (flint --help lists what it does)")]
    UnknownVerb(String),
    #[error("'{verb}' needs a unit name")]
    NoUnits { verb: String },
    #[error("Too few arguments.")]
    TooFewArguments,
}

/// What a `systemctl` command line asks of flint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Systemctl {
    /// The flint command line (without the program name) that does it.
    Flint(Vec<String>),
    /// `--version`.
    Version,
    /// `--help`, `-h`.
    Help,
}

/// Set when flint runs as `systemctl`: answers are worded as systemctl's.
pub static FRONT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// flint's answer text as systemctl words it: no `flint: ` before a
/// message, and the hints name `systemctl` and `journalctl` (which flint
/// also answers as) instead of `flint ctl`: `See "systemctl status X" and
/// "journalctl -xeu X" for details.`
pub fn reword(text: &str, user: bool) -> String {
    let (sc, jc) = if user {
        ("systemctl --user", "journalctl --user")
    } else {
        ("systemctl", "journalctl")
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.strip_prefix("flint: ").unwrap_or(line);
        let reworded = if let Some(unit) = line
            .strip_prefix("See \"flint ctl status ")
            .and_then(|r| r.split_once("\" and \"flint ctl logs "))
            .map(|(u, _)| u)
        {
            format!("See \"{sc} status {unit}\" and \"{jc} -xeu {unit}\" for details.")
        } else if let Some((head, _)) = line
            .split_once(" See \"flint ctl status ")
            .filter(|(h, _)| h.starts_with("A dependency job for "))
        {
            format!("{head} See '{jc} -xe' for details.")
        } else if let Some(unit) = line
            .strip_prefix("See flint's log and 'flint ctl status ")
            .and_then(|r| r.strip_suffix("' for details."))
        {
            format!("See system logs and '{sc} status {unit}' for details.")
        } else {
            line.to_string()
        };
        out.push_str(&reworded);
        out.push('\n');
    }
    out
}

/// The systemd version whose `systemctl` and `journalctl` the fronts
/// follow (Debian 12's): `--version` names it first, as
/// `systemd 252 (flint 0.1.0)`, since scripts read the number there
/// (Debian's deb-systemd-invoke acts on user instances from 249 on).
pub const SYSTEMD_VERSION: u32 = 252;

/// The first line of `--version` of the fronts.
pub fn version_line() -> String {
    format!(
        "systemd {SYSTEMD_VERSION} (flint {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// `systemctl --help`: what the front takes.
pub const HELP: &str = "systemctl [OPTIONS...] COMMAND ...

flint called as systemctl: the systemctl command line on a running flint.

Unit commands: start, stop, restart, try-restart, reload, reload-or-restart,
  try-reload-or-restart, kill, status, show, cat, is-active, is-failed,
  list-units, list-sockets, list-timers, list-paths, list-jobs, cancel,
  list-dependencies, reset-failed
Unit file commands: enable, disable, reenable, mask, unmask, preset,
  preset-all, add-wants, add-requires, link, revert, is-enabled, list-unit-files,
  set-default, get-default, edit, set-property
Manager commands: daemon-reload, is-system-running, set-environment,
  unset-environment, import-environment, show-environment, exit [CODE]
System commands (where flint is a container's init): poweroff, halt,
  reboot, kexec

Options: --user, --system, --root=DIR, --runtime, --now, --no-block, -q,
  -f, -a, -t TYPE, --state=STATE, --failed, -p PROPERTY, -P PROPERTY,
  --value, --no-legend, --plain, --reverse, -s SIGNAL, --kill-whom=WHOM,
  --preset-mode=MODE, --full, --drop-in=NAME, --stdin, --no-reload,
  --no-pager (and other options that
  only shape systemd's output, accepted and without effect)

flint --help lists what flint itself does.
";

/// Unit types `systemctl` recognises by suffix; a name without one is a
/// service's.
const SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "target",
    "slice",
    "scope",
    "mount",
    "automount",
    "swap",
    "path",
    "timer",
    "device",
];

/// `foo` → `foo.service`, as `systemctl` completes a name without a type;
/// a pattern (`foo@*`) is left as it is, to match loaded units.
pub fn unit_name(name: &str) -> String {
    completed(name, "service")
}

/// A unit name as `systemctl isolate` completes it: `.target` added to a
/// name without a type.
pub fn target_name(name: &str) -> String {
    completed(name, "target")
}

/// `name`, with `.SUFFIX` added where it has no type and is no pattern.
fn completed(name: &str, suffix: &str) -> String {
    let typed = crate::control::is_glob(name)
        || name
            .rsplit_once('.')
            .is_some_and(|(_, s)| SUFFIXES.contains(&s));
    if typed {
        name.to_string()
    } else {
        format!("{name}.{suffix}")
    }
}

/// Options that take a value, by every name `systemctl` gives them.
fn option_with_value(arg: &str) -> Option<&'static str> {
    Some(match arg {
        "--root" => "root",
        "-s" | "--signal" => "signal",
        "--kill-whom" | "--kill-who" => "kill-whom",
        "-n" | "--lines" => "lines",
        "-t" | "--type" => "type",
        "--state" => "state",
        "-o" | "--output" => "output",
        "-p" | "--property" => "property",
        "-P" => "property-value",
        "--preset-mode" => "preset-mode",
        "--drop-in" => "drop-in",
        _ => return None,
    })
}

/// Translates `systemctl`'s arguments (without the program name).
pub fn translate(args: &[String]) -> Result<Systemctl, SystemctlError> {
    let mut words: Vec<String> = Vec::new();
    let mut user = false;
    let mut global = false;
    let mut no_block = false;
    let mut quiet = false;
    let mut now = false;
    let mut runtime = false;
    let mut force = false;
    let mut no_legend = false;
    let mut plain = false;
    let mut reverse = false;
    let mut value_only = false;
    let mut failed = false;
    let mut all = false;
    let mut full = false;
    let mut no_reload = false;
    let mut stdin = false;
    let mut show_types = false;
    let mut wait = false;
    // `start --job-mode=isolate` is `isolate`.
    let mut isolate_mode = false;
    let mut values: Vec<(&'static str, String)> = Vec::new();
    let mut iter = args.iter();
    let mut only_words = false;
    while let Some(arg) = iter.next() {
        if only_words || !arg.starts_with('-') || arg == "-" {
            words.push(arg.clone());
            continue;
        }
        match arg.as_str() {
            "--" => only_words = true,
            "--version" => return Ok(Systemctl::Version),
            "-h" | "--help" => return Ok(Systemctl::Help),
            "--user" => user = true,
            "--global" => global = true,
            "--system" => user = false,
            "--no-block" => no_block = true,
            "-q" | "--quiet" => quiet = true,
            "--now" => now = true,
            "--runtime" => runtime = true,
            "-f" | "--force" => force = true,
            "--no-legend" => no_legend = true,
            "--value" => value_only = true,
            "--failed" => failed = true,
            "-a" | "--all" => all = true,
            // Output shaping and prompts, which flint's answers do not have.
            "--plain" => plain = true,
            "--reverse" => reverse = true,
            "--legend=false" | "--legend=no" | "--legend=0" => no_legend = true,
            "--legend=true" | "--legend=yes" | "--legend=1" => no_legend = false,
            "-l" | "--full" => full = true,
            "--no-reload" => no_reload = true,
            "--show-types" => show_types = true,
            "--stdin" => stdin = true,
            // (What `--wait` asks of start and stop, flint's control
            // requests do already.)
            "--wait" => wait = true,
            "--no-pager"
            | "--no-ask-password"
            | "--no-warn"
            | "--no-wall"
            | "-i"
            | "--ignore-inhibitors" => {}
            // The other job modes and the inhibitor checks shape
            // systemd's jobs only.
            _ if arg.starts_with("--job-mode=") => isolate_mode = arg == "--job-mode=isolate",
            _ if arg.starts_with("--check-inhibitors=") => {}
            // getopt's forms: a short option's value glued to it
            // (`-pActiveState`, `-n0`), and short flags together (`-qa`).
            _ if arg.len() > 2 && !arg.starts_with("--") => {
                if let (Some(flag), Some(rest)) = (arg.get(..2), arg.get(2..))
                    && let Some(key) = option_with_value(flag)
                {
                    values.push((key, rest.to_string()));
                    continue;
                }
                for c in arg[1..].chars() {
                    match c {
                        'q' => quiet = true,
                        'a' => all = true,
                        'f' => force = true,
                        'l' => full = true,
                        'i' => {}
                        _ => return Err(SystemctlError::UnknownOption(arg.clone())),
                    }
                }
            }
            _ => {
                let (name, inline) = match arg.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (arg.as_str(), None),
                };
                let Some(key) = option_with_value(name) else {
                    return Err(SystemctlError::UnknownOption(arg.clone()));
                };
                let value = match inline {
                    Some(v) => v,
                    None => iter
                        .next()
                        .cloned()
                        .ok_or_else(|| SystemctlError::MissingValue(name.to_string()))?,
                };
                values.push((key, value));
            }
        }
    }
    let value = |key: &str| {
        values
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    };
    let mut words = words.into_iter();
    let mut verb = words.next().unwrap_or_else(|| "list-units".to_string());
    if isolate_mode && verb == "start" {
        verb = "isolate".into();
    }
    let raw_units: Vec<String> = words.collect();
    let units: Vec<String> = raw_units.iter().map(|w| unit_name(w)).collect();
    let needs_units = |units: &[String]| {
        if units.is_empty() {
            Err(SystemctlError::NoUnits { verb: verb.clone() })
        } else {
            Ok(())
        }
    };
    let mut out: Vec<String> = Vec::new();
    let ctl = |out: &mut Vec<String>, sub: &str| {
        out.push("ctl".into());
        if user {
            out.push("--user".into());
        }
        out.push(sub.into());
    };
    // --global names every user's unit files: only the verbs that work on
    // them take it.
    if global
        && !matches!(
            verb.as_str(),
            "enable"
                | "disable"
                | "reenable"
                | "mask"
                | "unmask"
                | "is-enabled"
                | "revert"
                | "edit"
                | "preset"
                | "add-wants"
                | "add-requires"
                | "link"
        )
    {
        return Err(SystemctlError::UnknownOption("--global".into()));
    }
    match verb.as_str() {
        "start"
        | "stop"
        | "restart"
        | "try-restart"
        | "condrestart"
        | "reload-or-restart"
        | "try-reload-or-restart"
        | "force-reload" => {
            needs_units(&units)?;
            let sub = match verb.as_str() {
                "condrestart" => "try-restart",
                "force-reload" => "try-reload-or-restart",
                v => v,
            };
            ctl(&mut out, sub);
            if no_block {
                out.push("--no-block".into());
            }
        }
        "reload" => {
            needs_units(&units)?;
            ctl(&mut out, "reload");
            if no_block {
                out.push("--no-block".into());
            }
        }
        "kill" => {
            needs_units(&units)?;
            ctl(&mut out, "kill");
            if let Some(s) = value("signal") {
                out.extend(["--signal".into(), s]);
            }
            if let Some(w) = value("kill-whom") {
                out.extend(["--kill-whom".into(), w]);
            }
        }
        "status" => ctl(&mut out, "status"),
        "list-dependencies" => {
            ctl(&mut out, "list-dependencies");
            if all {
                out.push("--all".into());
            }
            if plain {
                out.push("--plain".into());
            }
            if reverse {
                out.push("--reverse".into());
            }
        }
        "cancel" => {
            // Job numbers, not unit names.
            ctl(&mut out, "cancel");
            out.extend(raw_units.iter().cloned());
            return Ok(Systemctl::Flint(out));
        }
        "list-jobs" => {
            ctl(&mut out, "list-jobs");
            if no_legend {
                out.push("--no-legend".into());
            }
            out.extend(raw_units.iter().cloned());
            return Ok(Systemctl::Flint(out));
        }
        "list-timers" | "list-paths" => {
            ctl(&mut out, &verb);
            if all {
                out.push("--all".into());
            }
            out.extend(raw_units.iter().cloned());
            return Ok(Systemctl::Flint(out));
        }
        "list-units" | "list-sockets" => {
            ctl(&mut out, &verb);
            for (key, v) in &values {
                if *key == "state" || (*key == "type" && verb == "list-units") {
                    out.extend([format!("--{key}"), v.clone()]);
                }
            }
            if failed {
                out.push("--state=failed".into());
            }
            if all {
                out.push("--all".into());
            }
            if no_legend {
                out.push("--no-legend".into());
            }
            if verb == "list-units" && plain {
                out.push("--plain".into());
            }
            if verb == "list-sockets" && show_types {
                out.push("--show-types".into());
            }
            // Patterns, as given.
            out.extend(raw_units.iter().cloned());
            return Ok(Systemctl::Flint(out));
        }
        "reset-failed" => ctl(&mut out, "reset-failed"),
        "is-active" | "is-failed" => {
            needs_units(&units)?;
            ctl(&mut out, &verb);
            if quiet {
                out.push("--quiet".into());
            }
        }
        "daemon-reload" | "daemon-reexec" => ctl(&mut out, "daemon-reload"),
        "exit" => {
            ctl(&mut out, "exit");
            // The exit code, when given.
            out.extend(raw_units.iter().take(1).cloned());
            return Ok(Systemctl::Flint(out));
        }
        "poweroff" | "halt" | "reboot" | "kexec" => {
            ctl(&mut out, &verb);
            if force {
                out.push("--force".into());
            }
            return Ok(Systemctl::Flint(out));
        }
        "list-unit-files" => {
            out.push("list-unit-files".into());
            if let Some(root) = value("root") {
                out.extend(["--root".into(), root]);
            }
            if user {
                out.push("--user".into());
            }
            for (key, v) in &values {
                if *key == "state" || *key == "type" {
                    out.extend([format!("--{key}"), v.clone()]);
                }
            }
            if no_legend {
                out.push("--no-legend".into());
            }
            // Patterns, as given.
            out.extend(raw_units.iter().cloned());
            return Ok(Systemctl::Flint(out));
        }
        "set-environment" | "unset-environment" | "import-environment" | "show-environment" => {
            if matches!(verb.as_str(), "set-environment" | "unset-environment")
                && raw_units.is_empty()
            {
                return Err(SystemctlError::TooFewArguments);
            }
            ctl(&mut out, &verb);
            // Assignments and names, as given.
            out.extend(raw_units.iter().cloned());
            return Ok(Systemctl::Flint(out));
        }
        "cat" => {
            needs_units(&units)?;
            out.push("cat".into());
            if user {
                out.push("--user".into());
            }
        }
        "is-system-running" => {
            ctl(&mut out, "is-system-running");
            if quiet {
                out.push("--quiet".into());
            }
            if wait {
                out.push("--wait".into());
            }
        }
        "show" => {
            // Without units: the manager's properties.
            ctl(&mut out, "show");
            let mut value_only = value_only;
            for (key, v) in &values {
                if *key == "property" || *key == "property-value" {
                    out.extend(["--property".into(), v.clone()]);
                    value_only |= *key == "property-value";
                }
            }
            if value_only {
                out.push("--value".into());
            }
        }
        "enable" | "disable" | "reenable" | "mask" | "unmask" | "is-enabled" | "revert"
        | "preset" | "preset-all" | "add-wants" | "add-requires" | "link" => {
            if verb != "preset-all" {
                needs_units(&units)?;
            }
            out.push(verb.clone());
            if let Some(root) = value("root") {
                out.extend(["--root".into(), root]);
            }
            if let Some(mode) = value("preset-mode").filter(|_| verb.starts_with("preset")) {
                out.extend(["--preset-mode".into(), mode]);
            }
            let takes_now = matches!(
                verb.as_str(),
                "enable" | "disable" | "reenable" | "mask" | "unmask" | "is-enabled" | "revert"
            );
            for (on, flag) in [
                (global, "--global"),
                (user, "--user"),
                (runtime, "--runtime"),
                (force, "--force"),
                (quiet, "--quiet"),
                (now && takes_now, "--now"),
            ] {
                if on {
                    out.push(flag.into());
                }
            }
            if matches!(verb.as_str(), "add-wants" | "add-requires" | "link") {
                // The target of add-wants is a target's name, and link
                // takes paths: the words go as they are.
                if raw_units.iter().any(|u| u.starts_with('-')) {
                    out.push("--".into());
                }
                out.extend(raw_units.iter().cloned());
                return Ok(Systemctl::Flint(out));
            }
        }
        "set-property" => {
            let Some((unit, assignments)) = raw_units.split_first().filter(|(_, a)| !a.is_empty())
            else {
                return Err(SystemctlError::TooFewArguments);
            };
            out.push("set-property".into());
            for (on, flag) in [(user, "--user"), (runtime, "--runtime")] {
                if on {
                    out.push(flag.into());
                }
            }
            out.push("--".into());
            out.push(unit_name(unit));
            out.extend(assignments.iter().cloned());
            return Ok(Systemctl::Flint(out));
        }
        "edit" => {
            needs_units(&units)?;
            out.push("edit".into());
            if let Some(root) = value("root") {
                out.extend(["--root".into(), root]);
            }
            if let Some(name) = value("drop-in") {
                out.extend(["--drop-in".into(), name]);
            }
            for (on, flag) in [
                (user, "--user"),
                (global, "--global"),
                (runtime, "--runtime"),
                (full, "--full"),
                (force, "--force"),
                (stdin, "--stdin"),
                (no_reload, "--no-reload"),
            ] {
                if on {
                    out.push(flag.into());
                }
            }
            // The names as given: `flint edit` completes them as systemctl
            // does.
            out.push("--".into());
            out.extend(raw_units.iter().cloned());
            return Ok(Systemctl::Flint(out));
        }
        // A name without a type is a target's (systemctl's mangling for
        // isolate).
        "isolate" => {
            let [target] = raw_units.as_slice() else {
                return Err(SystemctlError::NoUnits { verb: verb.clone() });
            };
            ctl(&mut out, "isolate");
            if no_block {
                out.push("--no-block".into());
            }
            out.push("--".into());
            out.push(target_name(target));
            return Ok(Systemctl::Flint(out));
        }
        "set-default" | "get-default" => {
            out.push(verb.clone());
            if let Some(root) = value("root") {
                out.extend(["--root".into(), root]);
            }
            if user {
                out.push("--user".into());
            }
            if verb == "set-default" {
                let [target] = raw_units.as_slice() else {
                    return Err(SystemctlError::NoUnits { verb: verb.clone() });
                };
                out.push(target.clone());
            }
            return Ok(Systemctl::Flint(out));
        }
        other => return Err(SystemctlError::UnknownVerb(other.to_string())),
    }
    if !matches!(
        verb.as_str(),
        "daemon-reload" | "daemon-reexec" | "is-system-running"
    ) {
        // A name such as `-.slice` is no option.
        if units.iter().any(|u| u.starts_with('-')) {
            out.push("--".into());
        }
        out.extend(units);
    }
    Ok(Systemctl::Flint(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flint(line: &str) -> Vec<String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        match translate(&args) {
            Ok(Systemctl::Flint(v)) => v,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn verbs_map_to_flint_commands_with_service_names_completed() {
        assert_eq!(flint("restart nginx"), words("ctl restart nginx.service"));
        assert_eq!(
            flint("--no-block start a b.socket c@x"),
            words("ctl start --no-block a.service b.socket c@x.service")
        );
        assert_eq!(
            flint("start --user --no-pager foo"),
            words("ctl --user start foo.service")
        );
        assert_eq!(flint("condrestart a"), words("ctl try-restart a.service"));
        // isolate completes a target's name.
        assert_eq!(
            flint("isolate rescue"),
            words("ctl isolate -- rescue.target")
        );
        assert_eq!(
            flint("start --job-mode=isolate work.target"),
            words("ctl isolate -- work.target")
        );
        assert_eq!(
            flint("start --job-mode=replace-irreversibly a"),
            words("ctl start a.service")
        );
        assert_eq!(
            flint("--user --no-block isolate work.target"),
            words("ctl --user isolate --no-block -- work.target")
        );
        assert_eq!(
            translate(&words("isolate a b")),
            Err(SystemctlError::NoUnits {
                verb: "isolate".into()
            })
        );
        assert_eq!(
            flint("force-reload a"),
            words("ctl try-reload-or-restart a.service")
        );
        assert_eq!(flint(""), words("ctl list-units"));
        assert_eq!(flint("status"), words("ctl status"));
        assert_eq!(flint("cat --user foo"), words("cat --user foo.service"));
        assert_eq!(
            flint("--user set-environment A=1 B=two"),
            words("ctl --user set-environment A=1 B=two")
        );
        assert_eq!(
            flint("unset-environment A B=two"),
            words("ctl unset-environment A B=two")
        );
        assert_eq!(
            flint("import-environment DISPLAY"),
            words("ctl import-environment DISPLAY")
        );
        assert_eq!(flint("show-environment"), words("ctl show-environment"));
        assert_eq!(
            flint("list-unit-files --state=enabled -t service --no-legend ssh*"),
            words("list-unit-files --state enabled --type service --no-legend ssh*")
        );
        assert_eq!(flint("daemon-reload"), words("ctl daemon-reload"));
        assert_eq!(
            flint("list-units --type=socket --all"),
            words("ctl list-units --type socket --all")
        );
        assert_eq!(flint("list-sockets -a"), words("ctl list-sockets --all"));
        assert_eq!(
            flint("list-sockets --show-types --no-legend"),
            words("ctl list-sockets --no-legend --show-types")
        );
        assert_eq!(flint("--failed"), words("ctl list-units --state=failed"));
        assert_eq!(
            flint("list-units --state=failed,running web@* ssh*"),
            words("ctl list-units --state failed,running web@* ssh*")
        );
        assert_eq!(
            flint("list-sockets --state listening 'ssh*'"),
            words("ctl list-sockets --state listening 'ssh*'")
        );
        assert_eq!(flint("reset-failed"), words("ctl reset-failed"));
        assert_eq!(
            flint("reset-failed foo web@* bar.socket"),
            words("ctl reset-failed foo.service web@* bar.socket")
        );
        assert_eq!(flint("status web@*"), words("ctl status web@*"));
        assert_eq!(
            flint("kill -s HUP --kill-whom=main foo"),
            words("ctl kill --signal HUP --kill-whom main foo.service")
        );
        assert_eq!(
            flint("-q is-active foo"),
            words("ctl is-active --quiet foo.service")
        );
        assert_eq!(
            flint("enable --now --root=/mnt foo.socket"),
            words("enable --root /mnt --now foo.socket")
        );
        assert_eq!(
            flint("is-enabled --user -q foo"),
            words("is-enabled --user --quiet foo.service")
        );
        assert_eq!(flint("stop -- -odd"), words("ctl stop -- -odd.service"));
        // getopt's forms.
        assert_eq!(
            flint("show -pActiveState foo"),
            words("ctl show --property ActiveState foo.service")
        );
        assert_eq!(
            flint("is-active -qa foo"),
            words("ctl is-active --quiet foo.service")
        );
        assert_eq!(
            flint("list-units --legend=false --job-mode=replace"),
            words("ctl list-units --no-legend")
        );
        assert_eq!(translate(&words("--version")), Ok(Systemctl::Version));
        assert_eq!(
            flint("show -p MainPID,ActiveState --value foo"),
            words("ctl show --property MainPID,ActiveState --value foo.service")
        );
        assert_eq!(
            flint("show -P MainPID foo"),
            words("ctl show --property MainPID --value foo.service")
        );
        assert_eq!(
            flint("is-system-running --quiet"),
            words("ctl is-system-running --quiet")
        );
        assert_eq!(
            flint("is-system-running --wait"),
            words("ctl is-system-running --wait")
        );
    }

    #[test]
    fn answers_are_worded_as_systemctls() {
        assert_eq!(
            reword(
                "flint: Job for a.service failed because the control process exited with error code.\nSee \"flint ctl status a.service\" and \"flint ctl logs a.service\" for details.\n",
                false
            ),
            "Job for a.service failed because the control process exited with error code.\nSee \"systemctl status a.service\" and \"journalctl -xeu a.service\" for details.\n"
        );
        assert_eq!(
            reword(
                "flint: A dependency job for b.service failed. See \"flint ctl status b.service\" for details.\n",
                true
            ),
            "A dependency job for b.service failed. See 'journalctl --user -xe' for details.\n"
        );
        assert_eq!(
            reword(
                "flint: Failed to start c.service: Unit d.service is masked.\nSee flint's log and 'flint ctl status c.service' for details.\n",
                false
            ),
            "Failed to start c.service: Unit d.service is masked.\nSee system logs and 'systemctl status c.service' for details.\n"
        );
    }

    #[test]
    fn presets_as_packaging_runs_them() {
        assert_eq!(flint("--no-reload preset foo"), words("preset foo.service"));
        assert_eq!(flint("edit foo"), words("edit -- foo"));
        assert_eq!(
            flint("set-property --runtime web MemoryMax=1G CPUQuota=50%"),
            words("set-property --runtime -- web.service MemoryMax=1G CPUQuota=50%")
        );
        assert_eq!(flint("--user exit"), words("ctl --user exit"));
        assert_eq!(flint("exit 3"), words("ctl exit 3"));
        assert_eq!(flint("poweroff"), words("ctl poweroff"));
        assert_eq!(flint("reboot -f"), words("ctl reboot --force"));
        assert_eq!(flint("--force halt"), words("ctl halt --force"));
        assert_eq!(
            flint("edit --user --full -f --no-reload a.socket b"),
            words("edit --user --full --force --no-reload -- a.socket b")
        );
        assert_eq!(
            flint("--runtime edit --drop-in=limits --stdin x"),
            words("edit --drop-in limits --runtime --stdin -- x")
        );
        assert_eq!(
            flint("edit --global -l x"),
            words("edit --global --full -- x")
        );
        assert_eq!(
            flint("--root=/ --system --preset-mode=enable-only preset foo.service"),
            words("preset --root / --preset-mode enable-only foo.service")
        );
        assert_eq!(flint("preset-all --user"), words("preset-all --user"));
        assert_eq!(translate(&words("--help")), Ok(Systemctl::Help));
    }

    #[test]
    fn what_flint_cannot_do_is_refused_by_name() {
        assert_eq!(
            translate(&words("switch-root /sysroot")),
            Err(SystemctlError::UnknownVerb("switch-root".into()))
        );
        assert_eq!(
            translate(&words("--global daemon-reload")),
            Err(SystemctlError::UnknownOption("--global".into()))
        );
        assert_eq!(
            translate(&words("start")),
            Err(SystemctlError::NoUnits {
                verb: "start".into()
            })
        );
        assert_eq!(
            translate(&words("kill foo -s")),
            Err(SystemctlError::MissingValue("-s".into()))
        );
    }
}
