//! systemd's manager API (`org.freedesktop.systemd1`), as Debian's own
//! `systemctl` uses it on the private socket: start, stop, restart,
//! reload and try-restart as jobs whose end is signalled (`JobRemoved`),
//! `is-active`, `show` and `status` through the units' properties, `kill`,
//! `reset-failed`, `daemon-reload` and `list-units`.
//!
//! Each call becomes a request to flint's own control socket, the one
//! `flint ctl` talks to, so that `systemctl --user start x` and
//! `flint ctl start x` are one code path with one answer; this module only
//! translates. A job method is answered with a job's object path at once
//! and its `JobRemoved` follows when the control request returns; the
//! refusals systemd makes before it queues a job (a unit not found,
//! masked, without a reload command) are errors of the call itself, with
//! systemd's error names, which `systemctl` turns into its exit statuses.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use serde_json::{Value as Json, json};

use crate::bus::{BusError, Message, Sender, Value};

pub(super) const MANAGER: &str = "org.freedesktop.systemd1.Manager";
pub(super) const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
pub(super) const ROOT: &str = "/org/freedesktop/systemd1";
const UNIT_PREFIX: &str = "/org/freedesktop/systemd1/unit/";
const UNITS: &str = "/org/freedesktop/systemd1/unit";
const INTROSPECTABLE: &str = "org.freedesktop.DBus.Introspectable";

/// The manager's methods flint answers, with their arguments' and
/// results' signatures, for introspection.
const METHODS: &[(&str, &str, &str)] = &[
    ("StartUnit", "ss", "o"),
    ("StopUnit", "ss", "o"),
    ("ReloadUnit", "ss", "o"),
    ("RestartUnit", "ss", "o"),
    ("TryRestartUnit", "ss", "o"),
    ("ReloadOrRestartUnit", "ss", "o"),
    ("ReloadOrTryRestartUnit", "ss", "o"),
    ("StartTransientUnit", "ssa(sv)a(sa(sv))", "o"),
    ("GetUnit", "s", "o"),
    ("GetUnitByPID", "u", "o"),
    ("GetUnitProcesses", "s", "a(sus)"),
    ("LoadUnit", "s", "o"),
    ("KillUnit", "ssi", ""),
    ("ResetFailed", "", ""),
    ("ResetFailedUnit", "s", ""),
    ("ListUnits", "", "a(ssssssouso)"),
    ("ListUnitsFiltered", "as", "a(ssssssouso)"),
    ("ListUnitsByPatterns", "asas", "a(ssssssouso)"),
    ("ListUnitsByNames", "as", "a(ssssssouso)"),
    ("ListJobs", "", "a(usssoo)"),
    ("CancelJob", "u", ""),
    ("ClearJobs", "", ""),
    ("Subscribe", "", ""),
    ("Unsubscribe", "", ""),
    ("Reload", "", ""),
    ("Reexecute", "", ""),
    ("Exit", "", ""),
    ("PowerOff", "", ""),
    ("Reboot", "", ""),
    ("Halt", "", ""),
    ("KExec", "", ""),
    ("SetExitCode", "y", ""),
    ("SetEnvironment", "as", ""),
    ("UnsetEnvironment", "as", ""),
    ("UnsetAndSetEnvironment", "asas", ""),
    ("GetDefaultTarget", "", "s"),
    ("SetDefaultTarget", "sb", "a(sss)"),
    ("GetUnitFileState", "s", "s"),
    ("ListUnitFiles", "", "a(ss)"),
    ("ListUnitFilesByPatterns", "asas", "a(ss)"),
    ("EnableUnitFiles", "asbb", "ba(sss)"),
    ("EnableUnitFilesWithFlags", "ast", "ba(sss)"),
    ("DisableUnitFiles", "asb", "a(sss)"),
    ("DisableUnitFilesWithFlags", "ast", "a(sss)"),
    ("ReenableUnitFiles", "asbb", "ba(sss)"),
    ("LinkUnitFiles", "asbb", "a(sss)"),
    ("PresetUnitFiles", "asbb", "ba(sss)"),
    ("PresetUnitFilesWithMode", "assbb", "ba(sss)"),
    ("PresetAllUnitFiles", "sbb", "a(sss)"),
    ("MaskUnitFiles", "asbb", "a(sss)"),
    ("UnmaskUnitFiles", "asb", "a(sss)"),
    ("RevertUnitFiles", "as", "a(sss)"),
    ("AddDependencyUnitFiles", "asssbb", "a(sss)"),
];

/// The introspection data of `path`: the manager's interface and its
/// child nodes, a unit's properties with their types, or the nodes on
/// the way to the manager.
fn introspect(control: &Path, path: &str) -> Result<String, CallError> {
    use std::fmt::Write as _;
    let mut xml = String::from(
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n\
         \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n",
    );
    let standard = " <interface name=\"org.freedesktop.DBus.Peer\">\n  \
         <method name=\"Ping\"/>\n </interface>\n \
         <interface name=\"org.freedesktop.DBus.Introspectable\">\n  \
         <method name=\"Introspect\"><arg name=\"xml\" type=\"s\" direction=\"out\"/></method>\n \
         </interface>\n \
         <interface name=\"org.freedesktop.DBus.Properties\">\n  \
         <method name=\"Get\"><arg type=\"s\" direction=\"in\"/><arg type=\"s\" direction=\"in\"/><arg type=\"v\" direction=\"out\"/></method>\n  \
         <method name=\"GetAll\"><arg type=\"s\" direction=\"in\"/><arg type=\"a{sv}\" direction=\"out\"/></method>\n \
         </interface>\n";
    let args = |xml: &mut String, sig: &str, direction: &str| {
        for one in crate::bus::complete_types(sig).unwrap_or_default() {
            let _ = write!(xml, "<arg type=\"{one}\" direction=\"{direction}\"/>");
        }
    };
    if path == ROOT {
        xml.push_str(standard);
        xml.push_str(" <interface name=\"org.freedesktop.systemd1.Manager\">\n");
        for (name, input, output) in METHODS {
            let _ = write!(xml, "  <method name=\"{name}\">");
            args(&mut xml, input, "in");
            args(&mut xml, output, "out");
            xml.push_str("</method>\n");
        }
        for signal in [
            "UnitFilesChanged",
            "Reloading",
            "JobRemoved",
            "StartupFinished",
        ] {
            let _ = writeln!(xml, "  <signal name=\"{signal}\"/>");
        }
        xml.push_str(" </interface>\n <node name=\"unit\"/>\n");
    } else if path == UNITS {
        let answer = checked(request(control, "list-units", &[], json!({"all": true})))?;
        for u in answer["units"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(name) = u["name"].as_str() {
                let label = unit_path(name);
                let _ = writeln!(xml, " <node name=\"{}\"/>", &label[UNIT_PREFIX.len()..]);
            }
        }
    } else if let Some(name) = unit_of_path(path) {
        valid_name(&name)?;
        let props = typed_properties(control, &name)?;
        xml.push_str(standard);
        xml.push_str(" <interface name=\"org.freedesktop.systemd1.Unit\">\n");
        for (prop, value) in &props {
            let _ = writeln!(
                xml,
                "  <property name=\"{prop}\" type=\"{}\" access=\"read\"/>",
                value.signature()
            );
        }
        xml.push_str(" </interface>\n");
    } else {
        // On the way: the next component of the manager's path.
        let rest = ROOT[path.len().min(ROOT.len())..].trim_start_matches('/');
        let next = rest.split('/').next().unwrap_or("");
        let _ = writeln!(xml, " <node name=\"{next}\"/>");
    }
    xml.push_str("</node>\n");
    Ok(xml)
}

/// Job numbers handed out on the bus.
static JOBS: AtomicU32 = AtomicU32::new(0);

/// What a peer connection needs to answer the API.
pub(super) struct Api<'a> {
    /// Where flint's control socket is, if it has one.
    pub control: Option<&'a Path>,
    /// Whether calls that change something are taken (not on the system
    /// bus, where any user may call).
    pub changes: bool,
    /// Jobs whose `JobRemoved` is still to be sent on this connection.
    pub pending: &'a Arc<AtomicUsize>,
}

/// systemd's object path of a unit: `bus_label_escape()` of its name.
pub fn unit_path(name: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(UNIT_PREFIX);
    if name.is_empty() {
        out.push('_');
    }
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "_{b:02x}");
        }
    }
    out
}

/// The unit a unit object path names (`bus_label_unescape()`).
pub fn unit_of_path(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PREFIX)?;
    if label == "_" {
        return Some(String::new());
    }
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The control command a job method becomes.
fn job_command(member: &str) -> Option<&'static str> {
    Some(match member {
        "StartUnit" => "start",
        "StopUnit" => "stop",
        "RestartUnit" => "restart",
        "ReloadUnit" => "reload",
        "TryRestartUnit" => "try-restart",
        "ReloadOrRestartUnit" => "reload-or-restart",
        "ReloadOrTryRestartUnit" => "try-reload-or-restart",
        _ => return None,
    })
}

/// Whether the manager's method `member` changes units (the others read).
pub(super) fn changes_units(member: &str) -> bool {
    job_command(member).is_some()
        || file_verb(member).is_some()
        || matches!(
            member,
            "Reload"
                | "KillUnit"
                | "ResetFailed"
                | "ResetFailedUnit"
                | "Exit"
                | "PowerOff"
                | "Reboot"
                | "Halt"
                | "KExec"
                | "StartTransientUnit"
                | "CancelJob"
                | "ClearJobs"
                | "SetExitCode"
                | "Reexecute"
        )
}

/// The unit-file verb a method that changes unit files is (`unit-files`
/// of the control socket), and whether its answer says if the units
/// carry installation rules.
fn file_verb(member: &str) -> Option<(&'static str, bool)> {
    Some(match member {
        "EnableUnitFiles" | "EnableUnitFilesWithFlags" => ("enable", true),
        "DisableUnitFiles" | "DisableUnitFilesWithFlags" => ("disable", false),
        "ReenableUnitFiles" => ("reenable", true),
        "LinkUnitFiles" => ("link", false),
        "PresetUnitFiles" | "PresetUnitFilesWithMode" => ("preset", true),
        "PresetAllUnitFiles" => ("preset-all", false),
        "MaskUnitFiles" => ("mask", false),
        "UnmaskUnitFiles" => ("unmask", false),
        "RevertUnitFiles" => ("revert", false),
        "SetDefaultTarget" => ("set-default", false),
        "AddDependencyUnitFiles" => ("add-dependency", false),
        _ => return None,
    })
}

/// Answers `msg` if it is a call of the API; `false` when it is not one
/// (the caller answers it).
pub(super) fn answer(out: &Sender, msg: &Message, api: &Api) -> Result<bool, BusError> {
    let h = &msg.header;
    let member = h.member.as_deref().unwrap_or("");
    let path = h.path.as_deref().unwrap_or("");
    let on_unit = path.starts_with(UNIT_PREFIX);
    let ours = match h.interface.as_deref() {
        Some(MANAGER) => {
            path == ROOT
                && (job_command(member).is_some()
                    || file_verb(member).is_some()
                    || matches!(
                        member,
                        "GetUnit"
                            | "GetUnitByPID"
                            | "GetUnitProcesses"
                            | "LoadUnit"
                            | "ListJobs"
                            | "GetDefaultTarget"
                            | "Subscribe"
                            | "Unsubscribe"
                            | "Exit"
                            | "PowerOff"
                            | "Reboot"
                            | "Halt"
                            | "KExec"
                            | "Reload"
                            | "KillUnit"
                            | "ResetFailed"
                            | "ResetFailedUnit"
                            | "ListUnits"
                            | "ListUnitsFiltered"
                            | "ListUnitsByPatterns"
                            | "ListUnitsByNames"
                            | "GetUnitFileState"
                            | "StartTransientUnit"
                            | "CancelJob"
                            | "ClearJobs"
                            | "SetExitCode"
                            | "Reexecute"
                            | "ListUnitFiles"
                            | "ListUnitFilesByPatterns"
                    ))
        }
        // The manager's own properties (`is-system-running`, `show` and
        // `status` without a unit), but not its `Environment`, which the
        // environment calls answer (`private_socket`).
        Some(PROPERTIES) if path == ROOT => {
            member == "GetAll"
                || (member == "Get" && msg.two_strings().is_some_and(|(_, p)| p != "Environment"))
        }
        Some(PROPERTIES) => on_unit && matches!(member, "Get" | "GetAll"),
        // `busctl introspect`/`tree`, `gdbus introspect`, proxies.
        Some(INTROSPECTABLE) => {
            member == "Introspect"
                && (on_unit
                    || path == UNITS
                    || path == "/"
                    || (ROOT.starts_with(path) && ROOT[path.len()..].is_empty())
                    || (ROOT.starts_with(path) && ROOT[path.len()..].starts_with('/')))
        }
        _ => false,
    };
    if !ours {
        return Ok(false);
    }
    let wants_reply = h.flags & 1 == 0;
    let result = call(out, msg, member, path, api);
    match result {
        Ok(Some(args)) if wants_reply => out.reply(h, &args)?,
        Ok(_) => {}
        Err((name, text)) if wants_reply => out.reply_error(h, name, &text)?,
        Err(_) => {}
    }
    Ok(true)
}

/// Where the answer to a job method stands.
enum Phase {
    /// flint has not said yet.
    Waiting,
    /// The job is queued, with flint's number for it.
    Queued(Option<u64>),
    /// Refused before any job, with flint's answer.
    Refused(Json),
    /// The job's path went out.
    Replied,
}

/// An error of a call: its D-Bus name and text.
type CallError = (&'static str, String);

const FAILED: &str = "org.freedesktop.DBus.Error.Failed";
const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";

/// Runs one call; the reply's arguments (`None`: answered already).
fn call(
    out: &Sender,
    msg: &Message,
    member: &str,
    path: &str,
    api: &Api,
) -> Result<Option<Vec<Value>>, CallError> {
    let h = &msg.header;
    let signature = h.signature.as_deref().unwrap_or("");
    let args = |sig: &str| {
        if signature != sig {
            return Err((
                INVALID_ARGS,
                format!("{member} takes ({sig}), not ({signature})"),
            ));
        }
        crate::bus::read_args(sig, &msg.body)
            .ok_or_else(|| (INVALID_ARGS, format!("malformed arguments of {member}")))
    };
    let Some(control) = api.control else {
        return Err((
            FAILED,
            "this flint has no control socket, which systemctl's calls go through".into(),
        ));
    };
    if changes_units(member) && !api.changes {
        return Err((
            "org.freedesktop.DBus.Error.AccessDenied",
            "flint changes units only for systemctl on its private socket and the user's own bus"
                .into(),
        ));
    }
    let string = |v: &Value| match v {
        Value::Str(s) => s.clone(),
        _ => String::new(),
    };
    if let Some(command) = job_command(member) {
        let a = args("ss")?;
        let name = string(&a[0]);
        let mode = string(&a[1]);
        job_mode(&mode)?;
        valid_name(&name)?;
        // `systemctl isolate`: a start in mode isolate.
        let command = if command == "start" && mode == "isolate" {
            "isolate"
        } else {
            command
        };
        // exit.target ends the manager, poweroff.target and the others the
        // system, found in the tree or not (flint's start of them is `flint
        // ctl exit`, `poweroff`, ...).
        if super::control::ending_job(command, std::slice::from_ref(&name)).is_none() {
            refuse_before_job(control, command, &name)?;
        }
        return queue_job(out, h, api, control, command, name);
    }
    if member == "StartTransientUnit" {
        if signature != "ssa(sv)a(sa(sv))" {
            return Err((
                INVALID_ARGS,
                format!("{member} takes (ssa(sv)a(sa(sv))), not ({signature})"),
            ));
        }
        let a = crate::bus::read_any(signature, &msg.body)
            .ok_or_else(|| (INVALID_ARGS, format!("malformed arguments of {member}")))?;
        let (crate::bus::Any::Str(name), crate::bus::Any::Str(mode)) = (&a[0], &a[1]) else {
            return Err((INVALID_ARGS, format!("malformed arguments of {member}")));
        };
        job_mode(mode)?;
        valid_name(name)?;
        let units: Vec<Json> = super::transient_api::unit_files(name, &a[2], &a[3])?
            .into_iter()
            .map(|(name, text)| json!({"name": name, "text": text}))
            .collect();
        checked(request(control, "transient", &[], json!({"units": units})))?;
        return queue_job(out, h, api, control, "start", name.clone());
    }
    match member {
        "GetUnit" | "LoadUnit" => {
            let name = string(&args("s")?[0]);
            let props = properties(control, &name)?;
            if member == "GetUnit"
                && prop(&props, "LoadState") == Some("not-found")
                && prop(&props, "ActiveState") == Some("inactive")
            {
                return Err((
                    "org.freedesktop.systemd1.NoSuchUnit",
                    format!("Unit {name} not loaded."),
                ));
            }
            Ok(Some(vec![Value::Path(unit_path(&name))]))
        }
        // `systemctl daemon-reexec`: flint reads its units again (it keeps
        // running; systemd's re-execution keeps its state all the same).
        "Reexecute" => {
            args("")?;
            checked(request(control, "daemon-reload", &[], json!({})))?;
            Ok(Some(Vec::new()))
        }
        "SetExitCode" => {
            let code = match crate::bus::read_any(signature, &msg.body).as_deref() {
                Some([crate::bus::Any::Int(n)]) if signature == "y" => *n,
                _ => return Err((INVALID_ARGS, format!("{member} takes (y)"))),
            };
            checked(request(
                control,
                "set-exit-code",
                &[],
                json!({"status": code}),
            ))?;
            Ok(Some(Vec::new()))
        }
        "GetUnitByPID" => {
            let Value::U32(pid) = args("u")?[0] else {
                return Err((INVALID_ARGS, "no pid".into()));
            };
            let answer = request(control, "unit-of-pid", &[], json!({"pid": pid}))
                .map_err(|e| (FAILED, e))?;
            match answer["unit"].as_str() {
                Some(unit) => Ok(Some(vec![Value::Path(unit_path(unit))])),
                None => Err((
                    "org.freedesktop.systemd1.NoUnitForPID",
                    answer["error"].as_str().unwrap_or("no unit").to_string(),
                )),
            }
        }
        // `systemctl status`'s process tree under its "CGroup:" line: each
        // process of the unit's cgroup with its own cgroup and command
        // line, as systemd's; where flint has no cgroup, the main process.
        "GetUnitProcesses" => {
            let name = string(&args("s")?[0]);
            valid_name(&name)?;
            // The root slice (`systemctl status` without a unit): flint
            // and every process of its units.
            let root = name == "-.slice";
            let names: &[&str] = if root { &[] } else { &[name.as_str()] };
            let answer = request(control, "status", names, json!({})).map_err(|e| (FAILED, e))?;
            let units = answer["units"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if units.is_empty() && !root {
                return Err((
                    "org.freedesktop.systemd1.NoSuchUnit",
                    format!("Unit {name} not loaded."),
                ));
            }
            let mut pids: Vec<u64> = Vec::new();
            if root {
                pids.push(u64::from(std::process::id()));
            }
            for u in units {
                let tasks = u["tasks"].as_array().into_iter().flatten();
                for pid in tasks
                    .chain(std::iter::once(&u["main_pid"]))
                    .filter_map(Json::as_u64)
                {
                    if !pids.contains(&pid) {
                        pids.push(pid);
                    }
                }
            }
            let rows = pids
                .into_iter()
                .filter_map(|pid| {
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                        .ok()
                        .and_then(|t| crate::cgroup::unified_path(&t).map(str::to_string))
                        .unwrap_or_default();
                    let cmdline = String::from_utf8_lossy(&cmdline)
                        .trim_end_matches('\0')
                        .replace('\0', " ");
                    Some(Value::Struct(vec![
                        Value::Str(cgroup),
                        Value::U32(u32::try_from(pid).ok()?),
                        Value::Str(cmdline),
                    ]))
                })
                .collect();
            Ok(Some(vec![Value::Array("(sus)".into(), rows)]))
        }
        "Reload" => {
            args("")?;
            checked(request(control, "daemon-reload", &[], json!({})))?;
            Ok(Some(Vec::new()))
        }
        // `systemctl --user exit`: every unit stops, then flint ends.
        "Exit" => {
            args("")?;
            checked(request(control, "exit", &[], json!({})))?;
            Ok(Some(Vec::new()))
        }
        // `systemctl --force poweroff` and the like: the system ends at
        // once, without the jobs of the target (flint's units still stop
        // in order first).
        "PowerOff" | "Reboot" | "Halt" | "KExec" => {
            args("")?;
            let word = member.to_ascii_lowercase();
            checked(request(
                control,
                "exit",
                &[],
                json!({"word": word, "force": true}),
            ))?;
            Ok(Some(Vec::new()))
        }
        "KillUnit" => {
            let a = args("ssi")?;
            let (name, whom) = (string(&a[0]), string(&a[1]));
            let Value::I32(signal) = a[2] else {
                return Err((INVALID_ARGS, "no signal".into()));
            };
            let whom = whom.strip_suffix("-fail").unwrap_or(&whom);
            let whom = if whom.is_empty() { "all" } else { whom };
            if !matches!(whom, "main" | "control" | "all") {
                return Err((INVALID_ARGS, format!("Invalid whom argument: {whom}")));
            }
            if !(1..=64).contains(&signal) {
                return Err((INVALID_ARGS, "Signal number out of range.".into()));
            }
            checked(request(
                control,
                "kill",
                &[name.as_str()],
                json!({"signal": signal.to_string(), "whom": whom}),
            ))?;
            Ok(Some(Vec::new()))
        }
        // `systemctl cancel [N...]`: the job numbers `list-jobs` shows.
        "CancelJob" | "ClearJobs" => {
            let id = if member == "CancelJob" {
                match args("u")?[0] {
                    Value::U32(n) => Some(n.to_string()),
                    _ => None,
                }
            } else {
                args("")?;
                None
            };
            let ids: Vec<&str> = id.iter().map(String::as_str).collect();
            let answer = request(control, "cancel", &ids, json!({})).map_err(|e| (FAILED, e))?;
            if answer["ok"].as_bool() != Some(true) {
                let text = answer["error"].as_str().unwrap_or("failed");
                let words = text.split_once(": ").map_or(text, |(_, w)| w);
                return Err(("org.freedesktop.systemd1.NoSuchJob", words.to_string()));
            }
            Ok(Some(Vec::new()))
        }
        "ResetFailed" => {
            args("")?;
            checked(request(control, "reset-failed", &[], json!({})))?;
            Ok(Some(Vec::new()))
        }
        "ResetFailedUnit" => {
            let name = string(&args("s")?[0]);
            checked(request(
                control,
                "reset-failed",
                &[name.as_str()],
                json!({}),
            ))?;
            Ok(Some(Vec::new()))
        }
        "ListUnits" | "ListUnitsFiltered" | "ListUnitsByPatterns" | "ListUnitsByNames" => {
            let (states, patterns) = match member {
                "ListUnits" => (Vec::new(), Vec::new()),
                "ListUnitsFiltered" => (bounded(strings(&args("as")?[0]))?, Vec::new()),
                "ListUnitsByNames" => (Vec::new(), bounded(strings(&args("as")?[0]))?),
                _ => {
                    let a = args("asas")?;
                    (bounded(strings(&a[0]))?, bounded(strings(&a[1]))?)
                }
            };
            let names: Vec<&str> = patterns.iter().map(String::as_str).collect();
            let answer = checked(request(
                control,
                "list-units",
                &names,
                json!({"states": states, "all": true}),
            ))?;
            let rows = answer["units"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(list_row)
                .collect();
            Ok(Some(vec![Value::Array("(ssssssouso)".into(), rows)]))
        }
        "ListJobs" => {
            args("")?;
            let answer = checked(request(control, "list-jobs", &[], json!({})))?;
            let rows = answer["jobs"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|j| {
                    let id = u32::try_from(j["id"].as_u64().unwrap_or(0)).unwrap_or(0);
                    let unit = j["unit"].as_str().unwrap_or("").to_string();
                    Value::Struct(vec![
                        Value::U32(id),
                        Value::Str(unit.clone()),
                        Value::Str(j["type"].as_str().unwrap_or("").to_string()),
                        Value::Str(j["state"].as_str().unwrap_or("").to_string()),
                        Value::Path(format!("{ROOT}/job/{id}")),
                        Value::Path(unit_path(&unit)),
                    ])
                })
                .collect();
            Ok(Some(vec![Value::Array("(usssoo)".into(), rows)]))
        }
        "GetDefaultTarget" => {
            args("")?;
            let answer = unit_files(control, "get-default", json!({}))?;
            let name = answer["name"].as_str().unwrap_or("default.target");
            Ok(Some(vec![Value::Str(name.to_string())]))
        }
        "GetUnitFileState" => {
            let name = string(&args("s")?[0]);
            let answer = unit_files(control, "state", json!({"files": [name]}))?;
            let state = answer["state"].as_str().unwrap_or("");
            Ok(Some(vec![Value::Str(state.to_string())]))
        }
        "ListUnitFiles" | "ListUnitFilesByPatterns" => {
            let (states, patterns) = if member == "ListUnitFiles" {
                args("")?;
                (Vec::new(), Vec::new())
            } else {
                let a = args("asas")?;
                (bounded(strings(&a[0]))?, bounded(strings(&a[1]))?)
            };
            let answer = unit_files(
                control,
                "list",
                json!({"states": states, "patterns": patterns}),
            )?;
            let rows = answer["files"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|f| {
                    Value::Struct(vec![
                        Value::Str(f[0].as_str().unwrap_or("").to_string()),
                        Value::Str(f[1].as_str().unwrap_or("").to_string()),
                    ])
                })
                .collect();
            Ok(Some(vec![Value::Array("(ss)".into(), rows)]))
        }
        _ if let Some((verb, carries)) = file_verb(member) => {
            let request = file_request(member, &args)?;
            let answer = unit_files(control, verb, request)?;
            let changes = answer["changes"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let rows: Vec<Value> = changes
                .iter()
                .map(|c| {
                    Value::Struct(
                        (0..3)
                            .map(|i| Value::Str(c[i].as_str().unwrap_or("").to_string()))
                            .collect(),
                    )
                })
                .collect();
            // Subscribers learn that unit files changed, as systemd tells
            // them before its answer.
            if changes
                .iter()
                .any(|c| c[0] == "symlink" || c[0] == "unlink")
            {
                let _ = out.signal_values(None, ROOT, MANAGER, "UnitFilesChanged", &[]);
            }
            let mut reply = Vec::new();
            if carries {
                reply.push(Value::Bool(answer["carries"].as_bool() == Some(true)));
            }
            reply.push(Value::Array("(sss)".into(), rows));
            Ok(Some(reply))
        }
        "Introspect" => {
            args("")?;
            Ok(Some(vec![Value::Str(introspect(control, path)?)]))
        }
        // The bus's subscribers are counted where its messages are read
        // (`bus_activation`); on the private socket flint sends
        // `JobRemoved` to the caller of the job and `StartupFinished` to
        // every peer.
        "Subscribe" | "Unsubscribe" => Ok(Some(Vec::new())),
        // Properties of the manager or of a unit: `GetAll` of every
        // interface ("") or of one is answered with all flint knows.
        _ => {
            let wanted = if member == "Get" {
                Some(string(&args("ss")?[1]))
            } else {
                args("s")?;
                None
            };
            let (props, of) = if path == ROOT {
                (manager_properties(control)?, "the manager".to_string())
            } else {
                let name = unit_of_path(path).ok_or_else(unknown_object)?;
                valid_name(&name)?;
                (typed_properties(control, &name)?, name)
            };
            let Some(wanted) = wanted else {
                return Ok(Some(vec![Value::Properties(props)]));
            };
            props
                .into_iter()
                .find(|(n, _)| *n == wanted)
                .map(|(_, v)| Some(vec![Value::Variant(Box::new(v))]))
                .ok_or((
                    "org.freedesktop.DBus.Error.UnknownProperty",
                    format!("flint does not know property {wanted} of {of}"),
                ))
        }
    }
}

/// The job modes systemd takes.
fn job_mode(mode: &str) -> Result<(), CallError> {
    if matches!(
        mode,
        "replace"
            | "fail"
            | "isolate"
            | "ignore-dependencies"
            | "ignore-requirements"
            | "flush"
            | "triggering"
            | "replace-irreversibly"
    ) {
        Ok(())
    } else {
        Err((INVALID_ARGS, format!("Job mode {mode} invalid")))
    }
}

/// Queues job `command` of unit `name` through the control socket and
/// answers with the job's path once it is queued; its `JobRemoved`
/// follows when the job ends.
fn queue_job(
    out: &Sender,
    h: &crate::bus::Header,
    api: &Api,
    control: &Path,
    command: &'static str,
    name: String,
) -> Result<Option<Vec<Value>>, CallError> {
    // The job's number is flint's (what `ListJobs`, `Job` and `CancelJob`
    // use); where flint gives none (a socket's start, no answer in time),
    // one of the API's own, above flint's.
    let fallback = 0x8000_0000 | (JOBS.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff);
    let pick = move |serial: Option<u64>| {
        serial
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| *s > 0 && *s < 0x8000_0000)
            .unwrap_or(fallback)
    };
    api.pending.fetch_add(1, Ordering::AcqRel);
    let (job_out, control, pending) = (out.clone(), control.to_path_buf(), api.pending.clone());
    let destination = h.sender.clone();
    // The call is answered once the job is queued, as systemd's is: a
    // `GetAll` right after it (`systemctl --wait`) sees the job, and an
    // `is-active` after `--no-block` sees the unit activating. A request
    // refused before any job is the error of the call instead; the two
    // sides decide under one lock, so that a refusal that comes after
    // the job's path went out (flint slower than the bound) still ends
    // with `JobRemoved`.
    let phase = Arc::new((
        std::sync::Mutex::new(Phase::Waiting),
        std::sync::Condvar::new(),
    ));
    // And `JobRemoved` goes after that answer.
    let (replied, on_replied) = std::sync::mpsc::channel::<u32>();
    let theirs = phase.clone();
    let spawned = std::thread::Builder::new()
        .name("flint-job".into())
        .spawn(move || {
            let set = |to: Phase| {
                let (lock, cv) = &*theirs;
                let mut p = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let waiting = matches!(*p, Phase::Waiting);
                if waiting {
                    *p = to;
                    cv.notify_all();
                }
                waiting
            };
            let req = json!({"version": crate::control::PROTOCOL_VERSION,
                             "command": command, "units": [name]});
            let mut serial = None;
            let answer = crate::control::call_queued(&control, &req, &mut |job| {
                serial = job;
                set(Phase::Queued(job));
            })
            .map_err(|e| e.to_string());
            // Still waiting when flint answered: refused before a job.
            if let Ok(refused) = &answer
                && set(Phase::Refused(refused.clone()))
            {
                pending.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            // (A control socket that failed: the path goes, then the
            // job's end as failed.)
            set(Phase::Queued(None));
            let result = settled_result(&control, command, &name, &answer);
            // The number the call was answered with.
            let id = on_replied
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| pick(serial));
            let job = format!("{ROOT}/job/{id}");
            let _ = job_out.signal_values(
                destination.as_deref(),
                ROOT,
                MANAGER,
                "JobRemoved",
                &[
                    Value::U32(id),
                    Value::Path(job),
                    Value::Str(name),
                    Value::Str(result.into()),
                ],
            );
            // systemctl asks more once its job is over (a failed
            // service's `Result`, a stopped unit's triggers): the peer
            // is kept past its idle limit a while longer.
            std::thread::sleep(std::time::Duration::from_secs(5));
            pending.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        api.pending.fetch_sub(1, Ordering::AcqRel);
        return Err((FAILED, "cannot start a thread for the job".into()));
    }
    let id = {
        let (lock, cv) = &*phase;
        let p = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mut p, _) = cv
            .wait_timeout_while(p, std::time::Duration::from_secs(10), |p| {
                matches!(p, Phase::Waiting)
            })
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Phase::Refused(refused) = &*p {
            return Err(refusal(refused));
        }
        // Queued, or flint too busy to say within the bound: the
        // job's path; its end follows in any case.
        let id = match *p {
            Phase::Queued(serial) => pick(serial),
            _ => fallback,
        };
        *p = Phase::Replied;
        id
    };
    let sent = if h.flags & 1 == 0 {
        out.reply(h, &[Value::Path(format!("{ROOT}/job/{id}"))])
    } else {
        Ok(())
    };
    let _ = replied.send(id);
    sent.map_err(|e| (FAILED, e.to_string()))?;
    Ok(None)
}

/// The `unit-files` request of a method that changes unit files, from its
/// arguments: the files (or the one target of `SetDefaultTarget`),
/// `runtime` and `force` from the booleans or the flags
/// (`UNIT_FILE_RUNTIME`, `UNIT_FILE_FORCE`; `UNIT_FILE_PORTABLE` changes
/// nothing here), the preset mode, and `AddDependencyUnitFiles`'s target
/// and dependency type.
fn file_request(
    member: &str,
    args: &dyn Fn(&str) -> Result<Vec<Value>, CallError>,
) -> Result<Json, CallError> {
    let signature = match member {
        "EnableUnitFilesWithFlags" | "DisableUnitFilesWithFlags" => "ast",
        // (No force for these: their one boolean is `runtime`.)
        "DisableUnitFiles" | "UnmaskUnitFiles" => "asb",
        "RevertUnitFiles" => "as",
        "PresetUnitFilesWithMode" => "assbb",
        "PresetAllUnitFiles" => "sbb",
        "SetDefaultTarget" => "sb",
        "AddDependencyUnitFiles" => "asssbb",
        _ => "asbb",
    };
    let a = args(signature)?;
    let mut texts = a.iter().filter_map(|v| match v {
        Value::Str(s) => Some(s.clone()),
        _ => None,
    });
    let bools: Vec<bool> = a
        .iter()
        .filter_map(|v| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        })
        .collect();
    let (mut runtime, mut force) = (bools.first() == Some(&true), bools.get(1) == Some(&true));
    if let Some(Value::U64(flags)) = a.iter().find(|v| matches!(v, Value::U64(_))) {
        if flags & !0b111 != 0 {
            return Err((INVALID_ARGS, "Invalid argument".into()));
        }
        runtime = flags & 1 != 0;
        force = flags & 2 != 0;
    }
    let mut request = json!({"runtime": runtime, "force": force,
                             "files": a.first().map(strings).unwrap_or_default()});
    match member {
        "SetDefaultTarget" => {
            // (name, force): always in the persistent configuration.
            request["files"] = json!([texts.next().unwrap_or_default()]);
            request["force"] = json!(runtime);
            request["runtime"] = json!(false);
        }
        "PresetAllUnitFiles" | "PresetUnitFilesWithMode" => {
            request["mode"] = json!(texts.next().unwrap_or_default());
        }
        "AddDependencyUnitFiles" => {
            request["target"] = json!(texts.next().unwrap_or_default());
            request["type"] = json!(texts.next().unwrap_or_default());
        }
        _ => {}
    }
    Ok(request)
}

/// One `unit-files` request: the answer, or the error systemd gives (its
/// name from flint's answer).
fn unit_files(control: &Path, verb: &str, mut extra: Json) -> Result<Json, CallError> {
    extra["verb"] = json!(verb);
    let answer = request(control, "unit-files", &[], extra).map_err(|e| (FAILED, e))?;
    if answer["ok"].as_bool() == Some(true) {
        return Ok(answer);
    }
    let text = answer["error"].as_str().unwrap_or("failed").to_string();
    let name = answer["bus_error"]
        .as_str()
        .and_then(super::unit_files::error_name)
        .unwrap_or(FAILED);
    Err((name, text))
}

/// The error for an object path that names no unit.
fn unknown_object() -> CallError {
    (
        "org.freedesktop.DBus.Error.UnknownObject",
        "Unknown object.".into(),
    )
}

/// A unit's name as systemd takes it: a name of a type, with an instance
/// where it is a template's.
fn valid_name(name: &str) -> Result<(), CallError> {
    match name.parse::<crate::unit::name::UnitName>() {
        Ok(n) if !n.is_template() => Ok(()),
        Ok(_) => Err((
            INVALID_ARGS,
            format!("Unit name {name} is missing the instance name."),
        )),
        Err(_) => Err((INVALID_ARGS, format!("Unit name {name} is not valid."))),
    }
}

/// The manager's properties that systemctl reads (`is-system-running`,
/// `show` and `status` without a unit), with systemd's types.
fn manager_properties(control: &Path) -> Result<Vec<(String, Value)>, CallError> {
    let answer = checked(request(control, "show", &[], json!({})))?;
    let times = &answer["units"][0]["times"];
    let mut out = Vec::new();
    for p in answer["units"][0]["properties"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (Some(name), Some(text)) = (p[0].as_str(), p[1].as_str()) else {
            continue;
        };
        let value = match name {
            "Version"
            | "Architecture"
            | "Virtualization"
            | "SystemState"
            | "DefaultStandardOutput"
            | "DefaultStandardError" => Value::Str(text.to_string()),
            "NNames" | "NFailedUnits" | "NJobs" | "DefaultStartLimitBurst" => {
                Value::U32(text.parse().unwrap_or(0))
            }
            "ConfirmSpawn" | "ServiceWatchdogs" => Value::Bool(text == "yes"),
            "UnitPath" => Value::Strings(text.split_whitespace().map(str::to_string).collect()),
            "UserspaceTimestamp"
            | "UserspaceTimestampMonotonic"
            | "FinishTimestamp"
            | "FinishTimestampMonotonic" => Value::U64(times[name].as_u64().unwrap_or(0)),
            // (Environment: `show-environment`'s, answered beside; the
            // rest are numbers shown as text here.)
            _ => continue,
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// A list of names or patterns a reading call takes (any user may send
/// them on the system bus, and flint matches them on its event loop): at
/// most 128, each at most 256 bytes, far beyond any unit name.
fn bounded(list: Vec<String>) -> Result<Vec<String>, CallError> {
    if list.len() > 128 || list.iter().any(|p| p.len() > 256) {
        return Err((
            INVALID_ARGS,
            "too many or too long names or patterns".into(),
        ));
    }
    Ok(list)
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Strings(s) => s.clone(),
        _ => Vec::new(),
    }
}

/// One request to flint's control socket.
fn request(control: &Path, command: &str, units: &[&str], extra: Json) -> Result<Json, String> {
    let mut req =
        json!({"version": crate::control::PROTOCOL_VERSION, "command": command, "units": units});
    if let (Some(r), Json::Object(extra)) = (req.as_object_mut(), extra) {
        r.extend(extra);
    }
    crate::control::call(control, &req).map_err(|e| e.to_string())
}

/// The answer if it says the command did what was asked, else the error
/// systemd gives for what went wrong.
fn checked(answer: Result<Json, String>) -> Result<Json, CallError> {
    let answer = answer.map_err(|e| (FAILED, e))?;
    if answer["ok"].as_bool() == Some(true) {
        return Ok(answer);
    }
    let text = answer["error"].as_str().unwrap_or("failed").to_string();
    // The text after flint's "Failed to kill x: " is systemd's message.
    let text = match text.split_once(": ") {
        Some((head, rest)) if head.starts_with("Failed to ") => rest.to_string(),
        _ => text,
    };
    let name = match answer["exit"].as_u64() {
        Some(5) => "org.freedesktop.systemd1.NoSuchUnit",
        Some(3) => "org.freedesktop.systemd1.JobTypeNotApplicable",
        Some(6) => "org.freedesktop.systemd1.LoadFailed",
        _ => FAILED,
    };
    Err((name, text))
}

/// How long a job through the API is waited for at most: systemctl waits
/// for its `JobRemoved` without a limit, flint's answer comes after 100 s.
const JOB_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_hours(1);

/// A job's result for `JobRemoved`: from the control answer, or, when
/// the answer says the job still runs (after flint's 100 s), once the
/// unit has no job left, by the state it is in then.
fn settled_result(
    control: &Path,
    command: &str,
    name: &str,
    answer: &Result<Json, String>,
) -> &'static str {
    let still = answer.as_ref().is_ok_and(|a| {
        a["error"]
            .as_str()
            .is_some_and(|e| e.contains(" is still running after "))
    });
    if !still {
        return job_result(answer);
    }
    let started = std::time::Instant::now();
    loop {
        let busy = request(control, "list-jobs", &[], json!({})).is_ok_and(|j| {
            j["jobs"]
                .as_array()
                .is_some_and(|jobs| jobs.iter().any(|job| job["unit"] == name))
        });
        if !busy {
            break;
        }
        if started.elapsed() > JOB_WAIT_LIMIT {
            return "timeout";
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let state = properties(control, name)
        .ok()
        .and_then(|p| prop(&p, "ActiveState").map(str::to_string))
        .unwrap_or_default();
    match (command, state.as_str()) {
        ("stop", "inactive" | "failed") => "done",
        ("stop", _) => "failed",
        (_, "active" | "reloading") => "done",
        _ => "failed",
    }
}

/// A job's result as `JobRemoved` carries it, from the control answer.
fn job_result(answer: &Result<Json, String>) -> &'static str {
    let Ok(answer) = answer else {
        return "failed";
    };
    if answer["ok"].as_bool() == Some(true) {
        return "done";
    }
    let text = answer["error"].as_str().unwrap_or("");
    if text.contains("canceled") {
        "canceled"
    } else if text.contains("timed out") {
        "timeout"
    } else if text.starts_with("A dependency job") {
        "dependency"
    } else if text.starts_with("Assertion failed") {
        "assert"
    } else if text.contains("is not active, cannot reload") {
        "invalid"
    } else {
        "failed"
    }
}

/// The refusals systemd makes before it queues a job, as errors of the
/// call (`bus_unit_queue_job()`): a stop of a unit not loaded and not
/// running, a unit not found, masked or failing to load, a reload of a
/// unit that cannot.
fn refuse_before_job(control: &Path, command: &str, name: &str) -> Result<(), CallError> {
    let props = properties(control, name)?;
    let load = prop(&props, "LoadState").unwrap_or("");
    let inactive = prop(&props, "ActiveState") == Some("inactive");
    if command == "stop" && load != "loaded" && load != "masked" && inactive {
        return Err((
            "org.freedesktop.systemd1.NoSuchUnit",
            format!("Unit {name} not loaded."),
        ));
    }
    if command == "stop" {
        return Ok(());
    }
    // A unit that did not load: its `LoadError`, the name and words flint
    // gives it everywhere (as `flint ctl` refuses it).
    if load != "loaded"
        && let Some((kind, message)) = prop(&props, "LoadError").and_then(|e| e.split_once(' '))
    {
        let kind = [
            "org.freedesktop.systemd1.NoSuchUnit",
            "org.freedesktop.systemd1.UnitMasked",
            "org.freedesktop.systemd1.BadUnitSetting",
        ]
        .into_iter()
        .find(|k| *k == kind)
        .unwrap_or("org.freedesktop.systemd1.LoadFailed");
        return Err((kind, message.trim_matches('"').to_string()));
    }
    if command == "reload" && prop(&props, "CanReload") != Some("yes") {
        return Err((
            "org.freedesktop.systemd1.JobTypeNotApplicable",
            format!("Job type reload is not applicable for unit {name}."),
        ));
    }
    Ok(())
}

/// systemd's error for a job flint refused before queuing it: exit 4 is
/// `RefuseManualStart=`/`RefuseManualStop=` (`OnlyByDependency`, which
/// systemctl turns into its exit 4), in systemd's words, which follow
/// flint's "Failed to start x: " on its answer's first line.
fn refusal(answer: &Json) -> CallError {
    let text = answer["error"].as_str().unwrap_or("refused");
    let first = text.lines().next().unwrap_or(text);
    let words = first.split_once(": ").map_or(first, |(_, w)| w).to_string();
    // The names systemctl turns into flint's exit statuses
    // (`translate_bus_error_to_exit_status()`).
    let name = match answer["exit"].as_u64() {
        Some(4) => "org.freedesktop.systemd1.OnlyByDependency",
        Some(5) => "org.freedesktop.systemd1.NoSuchUnit",
        Some(3) => "org.freedesktop.systemd1.JobTypeNotApplicable",
        Some(6) => "org.freedesktop.systemd1.LoadFailed",
        _ => FAILED,
    };
    (name, words)
}

/// `flint ctl show`'s properties of `name`, as strings.
fn properties(control: &Path, name: &str) -> Result<Vec<(String, String)>, CallError> {
    Ok(show(control, name)?.0)
}

/// `flint ctl show`'s properties of `name`, as strings, and its state
/// timestamps as numbers.
fn show(control: &Path, name: &str) -> Result<(Vec<(String, String)>, Json), CallError> {
    let answer = checked(request(control, "show", &[name], json!({})))?;
    let unit = &answer["units"][0];
    let props = unit["properties"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
        .collect();
    Ok((props, unit.clone()))
}

fn prop<'a>(props: &'a [(String, String)], name: &str) -> Option<&'a str> {
    props
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The dependency lists of systemd's `org.freedesktop.systemd1.Unit`.
const DEPENDENCIES: &[&str] = &[
    "Requires",
    "Requisite",
    "Wants",
    "BindsTo",
    "PartOf",
    "Upholds",
    "RequiredBy",
    "RequisiteOf",
    "WantedBy",
    "BoundBy",
    "UpheldBy",
    "ConsistsOf",
    "Conflicts",
    "ConflictedBy",
    "Before",
    "After",
];

/// The properties of `name` with systemd's D-Bus types; the timestamps
/// and a timer's times as numbers (µs, 0 for never).
fn typed_properties(control: &Path, name: &str) -> Result<Vec<(String, Value)>, CallError> {
    let (props, unit) = show(control, name)?;
    let times = &unit["times"];
    let mut typed = typed(props);
    // Every unit has each dependency list, empty or not (`systemd-analyze
    // critical-chain` asks each unit's `After`).
    for dep in DEPENDENCIES {
        if !typed.iter().any(|(n, _)| n == dep) {
            typed.push(((*dep).to_string(), Value::Strings(Vec::new())));
        }
    }
    for (n, v) in &mut typed {
        if n.ends_with("Timestamp") || n.ends_with("TimestampMonotonic") || n.contains("USec") {
            *v = Value::U64(times[n.as_str()].as_u64().unwrap_or(0));
        }
    }
    // A service's commands as systemd's `a(sasbttttuii)`: path, argv,
    // ignore failure, start and exit times, pid, how it ended (CLD_*),
    // its status; systemctl's status prints the ended ones as "Process:".
    if let Some(exec) = unit["exec"].as_object() {
        for (key, commands) in exec {
            let rows = commands
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    let n = |k: &str| c[k].as_i64().unwrap_or(0);
                    Value::Struct(vec![
                        Value::Str(c["path"].as_str().unwrap_or("").to_string()),
                        Value::Strings(
                            c["argv"]
                                .as_array()
                                .map(Vec::as_slice)
                                .unwrap_or_default()
                                .iter()
                                .filter_map(|a| a.as_str().map(str::to_string))
                                .collect(),
                        ),
                        Value::Bool(c["ignore"] == true),
                        Value::U64(c["start"].as_u64().unwrap_or(0)),
                        Value::U64(0),
                        Value::U64(c["exit"].as_u64().unwrap_or(0)),
                        Value::U64(0),
                        Value::U32(u32::try_from(n("pid")).unwrap_or(0)),
                        Value::I32(i32::try_from(n("code")).unwrap_or(0)),
                        Value::I32(i32::try_from(n("status")).unwrap_or(0)),
                    ])
                })
                .collect();
            let value = Value::Array("(sasbttttuii)".into(), rows);
            match typed.iter_mut().find(|(n, _)| n == key) {
                Some((_, v)) => *v = value,
                None => typed.push((key.clone(), value)),
            }
        }
    }
    Ok(typed)
}

/// systemd's D-Bus types of `show`'s properties. Each `Listen=` line joins
/// one `a(ss)` of (type, address); a number not set is `UINT64_MAX`, as
/// systemd sends it.
fn typed(props: Vec<(String, String)>) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut listen: Vec<Value> = Vec::new();
    for (name, text) in props {
        let number = || text.parse::<u64>().ok();
        let value = match name.as_str() {
            "MainPID" | "ExecMainPID" | "ControlPID" | "NRestarts" | "NConnections"
            | "NAccepted" | "NRefused" | "MaxConnections" => {
                Value::U32(u32::try_from(number().unwrap_or(0)).unwrap_or(u32::MAX))
            }
            "ExecMainCode" | "ExecMainStatus" | "StatusErrno" | "OOMScoreAdjust" => {
                Value::I32(text.parse().unwrap_or(0))
            }
            "MemoryCurrent" | "TasksCurrent" | "TasksMax" | "CPUUsageNSec" => {
                Value::U64(number().unwrap_or(u64::MAX))
            }
            "Accept" | "CanStart" | "CanStop" | "CanReload" | "Persistent" | "WakeSystem"
            | "RemainAfterElapse" | "MakeDirectory" | "NeedDaemonReload" | "Transient" => {
                Value::Bool(text == "yes")
            }
            "Names" | "DropInPaths" | "Triggers" | "TriggeredBy" | "Documentation" => {
                Value::Strings(text.split_whitespace().map(str::to_string).collect())
            }
            _ if DEPENDENCIES.contains(&name.as_str()) => {
                Value::Strings(text.split_whitespace().map(str::to_string).collect())
            }
            // Quoted where an assignment holds spaces.
            "Environment" => Value::Strings(
                crate::unit::value::words::extract_words(
                    &text,
                    crate::unit::value::words::ExtractFlags::UNQUOTE_CUNESCAPE,
                )
                .unwrap_or_default(),
            ),
            "RemainAfterExit" => Value::Bool(text == "yes"),
            "KillSignal" => Value::I32(text.parse().unwrap_or(15)),
            "InvocationID" => Value::Bytes(
                (0..text.len() / 2)
                    .filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect(),
            ),
            "LoadError" => {
                let (kind, message) = text.split_once(' ').unwrap_or((&text, ""));
                Value::Struct(vec![
                    Value::Str(kind.to_string()),
                    Value::Str(message.trim_matches('"').to_string()),
                ])
            }
            // (number, path) of the unit's job; (0, "/") without one.
            "Job" => job_value(number()),
            "Listen" => {
                // "ADDRESS (Type)"
                let (address, kind) = text
                    .rsplit_once(" (")
                    .map_or((text.as_str(), ""), |(a, k)| (a, k.trim_end_matches(')')));
                listen.push(Value::Struct(vec![
                    Value::Str(kind.to_string()),
                    Value::Str(address.to_string()),
                ]));
                continue;
            }
            _ => Value::Str(text),
        };
        out.push((name, value));
    }
    if !listen.is_empty() {
        out.push(("Listen".into(), Value::Array("(ss)".into(), listen)));
    }
    if !out.iter().any(|(n, _)| n == "Job") {
        out.push(("Job".into(), job_value(None)));
    }
    out
}

/// A unit's `Job` property, `(uo)`: its job's number and path, `(0, "/")`
/// without one.
pub(super) fn job_value(job: Option<u64>) -> Value {
    match job.and_then(|j| u32::try_from(j).ok()).filter(|n| *n > 0) {
        Some(n) => Value::Struct(vec![Value::U32(n), Value::Path(format!("{ROOT}/job/{n}"))]),
        None => Value::Struct(vec![Value::U32(0), Value::Path("/".into())]),
    }
}

/// A `list-units` row as `ListUnits` returns it: id, description, load,
/// active and sub state, following, unit path, job id, type and path.
fn list_row(u: &Json) -> Value {
    let name = u["name"].as_str().unwrap_or("").to_string();
    let text = |k: &str, default: &str| Value::Str(u[k].as_str().unwrap_or(default).to_string());
    // A unit without a description is described by its name, as systemd's.
    let description = u["description"]
        .as_str()
        .filter(|d| !d.is_empty())
        .unwrap_or(&name)
        .to_string();
    Value::Struct(vec![
        Value::Str(name.clone()),
        Value::Str(description),
        text("load", "loaded"),
        text("state", "inactive"),
        text("sub", "dead"),
        Value::Str(String::new()),
        Value::Path(unit_path(&name)),
        Value::U32(0),
        Value::Str(String::new()),
        Value::Path("/".into()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_a_reading_call_takes_are_bounded() {
        assert!(bounded(vec!["*.service".into(); 128]).is_ok());
        assert!(bounded(vec!["a".into(); 129]).is_err());
        assert!(bounded(vec!["*[".repeat(129)]).is_err());
    }

    #[test]
    fn unit_paths_are_escaped_as_systemd_does() {
        for (name, label) in [
            ("demo.service", "demo_2eservice"),
            ("foo-bar@1x_y.service", "foo_2dbar_401x_5fy_2eservice"),
            ("1abc.socket", "_31abc_2esocket"),
            ("", "_"),
        ] {
            let path = unit_path(name);
            assert_eq!(path, format!("{UNIT_PREFIX}{label}"));
            assert_eq!(unit_of_path(&path).as_deref(), Some(name));
        }
        assert_eq!(unit_of_path("/org/freedesktop/systemd1/unit/a_zz"), None);
        assert_eq!(unit_of_path("/elsewhere"), None);
    }

    #[test]
    fn properties_get_systemds_types() {
        let props = typed(vec![
            ("MainPID".into(), "42".into()),
            ("MemoryCurrent".into(), "[not set]".into()),
            ("CanReload".into(), "no".into()),
            ("Names".into(), "a.service b.service".into()),
            ("InvocationID".into(), "0a0b".into()),
            ("Listen".into(), "127.0.0.1:80 (Stream)".into()),
            ("Listen".into(), "/run/a.sock (Stream)".into()),
            (
                "LoadError".into(),
                "org.freedesktop.systemd1.NoSuchUnit \"Unit x not found.\"".into(),
            ),
            ("Description".into(), "D".into()),
        ]);
        let get = |n: &str| props.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("MainPID"), Some(Value::U32(42)));
        assert_eq!(get("MemoryCurrent"), Some(Value::U64(u64::MAX)));
        assert_eq!(get("CanReload"), Some(Value::Bool(false)));
        assert_eq!(
            get("Names"),
            Some(Value::Strings(vec!["a.service".into(), "b.service".into()]))
        );
        assert_eq!(get("InvocationID"), Some(Value::Bytes(vec![10, 11])));
        assert_eq!(get("Description"), Some(Value::Str("D".into())));
        assert_eq!(
            get("LoadError"),
            Some(Value::Struct(vec![
                Value::Str("org.freedesktop.systemd1.NoSuchUnit".into()),
                Value::Str("Unit x not found.".into())
            ]))
        );
        let Some(Value::Array(sig, listen)) = get("Listen") else {
            panic!("Listen: {props:?}");
        };
        assert_eq!(sig, "(ss)");
        assert_eq!(
            listen[1],
            Value::Struct(vec![
                Value::Str("Stream".into()),
                Value::Str("/run/a.sock".into())
            ])
        );
    }

    /// A call as systemctl sends it.
    fn message(path: &str, interface: &str, member: &str, args: &[Value]) -> Message {
        let (signature, body) = crate::bus::marshal_body(args);
        Message {
            header: crate::bus::Header {
                kind: crate::bus::METHOD_CALL,
                serial: 1,
                path: Some(path.into()),
                interface: Some(interface.into()),
                member: Some(member.into()),
                signature: Some(signature),
                ..Default::default()
            },
            body,
        }
    }

    /// Calls flint's checks refuse before anything is asked of the running
    /// flint, with systemd's words: a bad job mode, an unknown `whom` or
    /// signal of `KillUnit`, a template without an instance, a path whose
    /// name holds a NUL byte.
    #[test]
    fn bad_arguments_are_refused_as_systemd_refuses_them() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let out = Sender::over(a);
        let pending = Arc::new(AtomicUsize::new(0));
        // Nothing listens here: a call that got that far would fail so.
        let nowhere = std::path::Path::new("/nonexistent/flint-control");
        let api = Api {
            control: Some(nowhere),
            changes: true,
            pending: &pending,
        };
        let run = |m: Message| {
            let member = m.header.member.clone().unwrap();
            let path = m.header.path.clone().unwrap();
            call(&out, &m, &member, &path, &api)
                .map(|_| ())
                .unwrap_err()
        };
        let s = |v: &str| Value::Str(v.into());
        assert_eq!(
            run(message(
                ROOT,
                MANAGER,
                "StartUnit",
                &[s("a.service"), s("bogus")]
            )),
            (INVALID_ARGS, "Job mode bogus invalid".to_string())
        );
        assert_eq!(
            run(message(
                ROOT,
                MANAGER,
                "StartUnit",
                &[s("a@.service"), s("replace")]
            )),
            (
                INVALID_ARGS,
                "Unit name a@.service is missing the instance name.".to_string()
            )
        );
        assert_eq!(
            run(message(
                ROOT,
                MANAGER,
                "KillUnit",
                &[s("a.service"), s("nobody"), Value::I32(15)]
            )),
            (INVALID_ARGS, "Invalid whom argument: nobody".to_string())
        );
        assert_eq!(
            run(message(
                ROOT,
                MANAGER,
                "KillUnit",
                &[s("a.service"), s("all"), Value::I32(99)]
            )),
            (INVALID_ARGS, "Signal number out of range.".to_string())
        );
        assert_eq!(
            run(message(
                &format!("{UNIT_PREFIX}_00"),
                PROPERTIES,
                "GetAll",
                &[s("")]
            ))
            .0,
            INVALID_ARGS
        );
        assert_eq!(
            run(message(ROOT, MANAGER, "StartUnit", &[s("a.service")])).0,
            INVALID_ARGS
        );
        // A good call gets as far as the control socket.
        assert_eq!(
            run(message(
                ROOT,
                MANAGER,
                "StartUnit",
                &[s("a.service"), s("replace")]
            ))
            .0,
            FAILED
        );
        assert_eq!(pending.load(Ordering::Relaxed), 0);
    }

    /// A job flint's answer says still runs (after its 100 s) ends for
    /// systemctl once the unit has no job left, by its state then.
    #[test]
    fn a_long_job_is_waited_for_to_its_end() {
        use std::io::{BufRead, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            // list-jobs: the job twice, then none; show: active.
            let mut listed = 0;
            for conn in listener.incoming().take(4) {
                let conn = conn.unwrap();
                let mut line = String::new();
                std::io::BufReader::new(&conn).read_line(&mut line).unwrap();
                let req: Json = serde_json::from_str(&line).unwrap();
                let answer = match req["command"].as_str().unwrap() {
                    "list-jobs" => {
                        listed += 1;
                        let jobs = if listed < 3 {
                            json!([{"id": 7, "unit": "slow.service", "type": "start", "state": "running"}])
                        } else {
                            json!([])
                        };
                        json!({"version": 1, "ok": true, "exit": 0, "jobs": jobs})
                    }
                    _ => json!({"version": 1, "ok": true, "exit": 0, "units": [
                        {"name": "slow.service", "properties": [["ActiveState", "active"]]}]}),
                };
                (&conn).write_all(format!("{answer}\n").as_bytes()).unwrap();
            }
        });
        let still = Ok(json!({"ok": false, "exit": 1,
            "error": "Job for slow.service is still running after 100s; see \"flint ctl status slow.service\"."}));
        assert_eq!(
            settled_result(&path, "start", "slow.service", &still),
            "done"
        );
        server.join().unwrap();
        // Any other answer is taken as it is.
        let failed = Ok(json!({"ok": false, "error": "Job for a.service failed."}));
        assert_eq!(
            settled_result(&path, "start", "a.service", &failed),
            "failed"
        );
    }

    #[test]
    fn job_results_follow_the_control_answer() {
        let ok = Ok(json!({"ok": true}));
        assert_eq!(job_result(&ok), "done");
        let failed = Ok(
            json!({"ok": false, "error": "Job for a.service failed because the control process exited with error code."}),
        );
        assert_eq!(job_result(&failed), "failed");
        let dep = Ok(
            json!({"ok": false, "error": "A dependency job for a.service failed. See 'flint ctl logs' for details."}),
        );
        assert_eq!(job_result(&dep), "dependency");
        assert_eq!(job_result(&Err("gone".into())), "failed");
    }
}
