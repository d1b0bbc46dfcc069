//! systemctl's unit-file verbs run by the manager (`enable`, `disable`,
//! `is-enabled`, `list-unit-files`, `set-default`, ...), as systemd runs
//! them where it is the running manager: systemctl does them itself only
//! offline or in a chroot, and otherwise calls `EnableUnitFiles` and its
//! siblings (cockpit's services page calls them too). The operations are
//! `crate::install`'s, on the manager's own search path; this module
//! turns their outcome into the changes and errors systemd's
//! `reply_install_changes_and_free()` and `install_error()` give.

use serde_json::{Value as Json, json};

use crate::control::{self, PROTOCOL_VERSION};
use crate::install::{Change, InstallError, LookupPaths, Options, Outcome, PresetMode};

use super::Manager;

/// systemd's D-Bus error names (`bus-common-errors.h`).
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
const UNIT_MASKED: &str = "org.freedesktop.systemd1.UnitMasked";
const UNIT_GENERATED: &str = "org.freedesktop.systemd1.UnitGenerated";
const UNIT_LINKED: &str = "org.freedesktop.systemd1.UnitLinked";
const UNIT_BAD_PATH: &str = "org.freedesktop.systemd1.UnitBadPath";
const BAD_UNIT_SETTING: &str = "org.freedesktop.systemd1.BadUnitSetting";

impl Manager {
    /// The paths the install operations work on: the manager's search
    /// path, its configuration directories.
    pub(super) fn install_paths(&self) -> Result<LookupPaths, InstallError> {
        if self.search.user_mode {
            // The user's configuration directories, flint's search path
            // (`--unit-dir` trees too).
            LookupPaths::user().map(|mut lp| {
                lp.search_path.clone_from(&self.search.dirs);
                lp
            })
        } else {
            LookupPaths::system_from(None, &self.search)
        }
    }

    /// The control request `unit-files`: `verb` is one of `enable`,
    /// `disable`, `reenable`, `link`, `preset`, `preset-all`, `mask`,
    /// `unmask`, `revert`, `set-default`, `add-dependency` (answered with
    /// `changes`, `[type, path, source]` each, and for `enable`,
    /// `reenable` and `preset` whether the units carry installation
    /// rules), `state` (`state`), `list` (`files`, `[path, state]` each)
    /// and `get-default` (`name`). A refusal has `bus_error`, systemd's
    /// error name.
    pub(super) fn unit_files_request(&mut self, req: &Json) -> Json {
        let verb = req["verb"].as_str().unwrap_or("");
        let list = |key: &str| -> Vec<String> {
            req[key]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let files = list("files");
        let flag = |key: &str| req[key].as_bool() == Some(true);
        let lp = match self.install_paths() {
            Ok(lp) => lp,
            Err(e) => return errno_error(e),
        };
        let mut opts = Options {
            force: flag("force"),
            runtime: flag("runtime"),
            ..Options::default()
        };
        let mode = req["mode"].as_str();
        if let Some(m) = mode {
            match PresetMode::parse(m) {
                Some(m) => opts.preset_mode = m,
                None if m.is_empty() => {}
                None => return errno_error(InstallError::Invalid),
            }
        }
        let outcome = match verb {
            "enable" => crate::install::enable(&lp, &files, opts),
            "disable" => crate::install::disable(&lp, &files, opts),
            "reenable" => crate::install::reenable(&lp, &files, opts),
            "link" => crate::install::link(&lp, &files, opts),
            "preset" => crate::install::preset(&lp, &files, opts.preset_mode, opts),
            "preset-all" => crate::install::preset_all(&lp, opts.preset_mode, opts),
            "mask" => crate::install::mask(&lp, &files, opts),
            "unmask" => crate::install::unmask(&lp, &files, opts),
            "revert" => crate::install::revert(&lp, &files),
            "set-default" => {
                crate::install::set_default(&lp, files.first().map_or("", String::as_str))
            }
            "add-dependency" => {
                let requires = match req["type"].as_str() {
                    Some("Wants") => false,
                    Some("Requires") => true,
                    _ => return errno_error(InstallError::Invalid),
                };
                let target = req["target"].as_str().unwrap_or("");
                crate::install::add_dependency(&lp, &files, target, requires, opts)
            }
            "state" => {
                let name = files.first().map_or("", String::as_str);
                return match crate::install::unit_file_state(&lp, name) {
                    Ok(s) => json!({"version": PROTOCOL_VERSION, "ok": true, "state": s.as_str()}),
                    Err(e) => errno_error(e),
                };
            }
            "list" => {
                let states = list("states");
                let rows: Vec<Json> = crate::install::unit_files(&lp, &list("patterns"))
                    .into_iter()
                    .filter_map(|(name, state)| {
                        // systemd's UNIT_FILE_BAD for a file it cannot read.
                        let state = state.map_or("bad", |s| s.as_str());
                        if !states.is_empty() && !states.iter().any(|s| s == state) {
                            return None;
                        }
                        // The file where it is first found, as systemd's
                        // list names it.
                        let path = lp
                            .search_path
                            .iter()
                            .map(|d| d.join(&name))
                            .find(|p| p.symlink_metadata().is_ok())?;
                        Some(json!([path.to_string_lossy(), state]))
                    })
                    .collect();
                return json!({"version": PROTOCOL_VERSION, "ok": true, "files": rows});
            }
            "get-default" => {
                return match crate::install::get_default(&lp) {
                    Ok(name) => json!({"version": PROTOCOL_VERSION, "ok": true, "name": name}),
                    Err(e) => errno_error(e),
                };
            }
            _ => {
                return control::error(2, &format!("unknown unit-files verb \"{verb}\""));
            }
        };
        if outcome.changes.iter().any(Change::is_modification) {
            // What `UnitFileState=` said may have changed.
            self.units.forget_file_states();
        }
        for w in &outcome.warnings {
            tracing::warn!("{w}");
        }
        changes_answer(&outcome)
    }
}

/// The answer for an operation's outcome, as systemd's
/// `reply_install_changes_and_free()`: the changes made and noted, or,
/// when the operation failed or every change is a failure, the first
/// failure as the error of the call.
fn changes_answer(outcome: &Outcome) -> Json {
    let failed = outcome.changes.iter().find_map(|c| match c {
        Change::Failed {
            error,
            path,
            source,
        } => Some((*error, path.as_str(), source.as_deref())),
        _ => None,
    });
    let done: Vec<Json> = outcome.changes.iter().filter_map(change_row).collect();
    let error = match (outcome.result, failed) {
        (Err(_), Some(f)) => Some(step_error(f.0, f.1, f.2)),
        (Err(e), None) => return errno_error(e),
        (Ok(_), Some(f)) if done.is_empty() => Some(step_error(f.0, f.1, f.2)),
        (Ok(_), _) => None,
    };
    if let Some((name, text)) = error {
        return refusal(name, &text);
    }
    let carries = matches!(outcome.result, Ok(n) if n > 0);
    json!({"version": PROTOCOL_VERSION, "ok": true, "changes": done, "carries": carries})
}

/// A change as systemd sends it: its type's name, the path and the source
/// (empty where systemd has none).
fn change_row(c: &Change) -> Option<Json> {
    let (kind, path, source) = match c {
        Change::Symlink { path, target } => (
            "symlink",
            path.to_string_lossy().into_owned(),
            target.to_string_lossy().into_owned(),
        ),
        Change::Unlink { path } => ("unlink", path.to_string_lossy().into_owned(), String::new()),
        Change::IsMasked { path } => ("masked", path.clone(), String::new()),
        Change::IsDangling { path } => ("dangling", path.clone(), String::new()),
        Change::DestinationNotPresent { unit, source } => (
            "destination not present",
            unit.clone(),
            source.to_string_lossy().into_owned(),
        ),
        Change::AuxiliaryFailed { unit } => ("auxiliary unit failed", unit.clone(), String::new()),
        Change::Failed { .. } => return None,
    };
    Some(json!([kind, path, source]))
}

/// A failed step as systemd's `install_error()` words it.
fn step_error(error: InstallError, path: &str, source: Option<&str>) -> (&'static str, String) {
    use InstallError as E;
    match (error, source) {
        (E::Exists, Some(s)) => (
            UNIT_EXISTS,
            format!("File {path} already exists and is a symlink to {s}."),
        ),
        (E::Exists, None) => (UNIT_EXISTS, format!("File {path} already exists.")),
        (E::Masked, _) => (UNIT_MASKED, format!("Unit file {path} is masked.")),
        (E::Generated, _) => (
            UNIT_GENERATED,
            format!("Unit {path} is transient or generated."),
        ),
        (E::UnderHierarchy, _) => (
            UNIT_BAD_PATH,
            format!("File {path} is under the systemd unit hierarchy already."),
        ),
        (E::BadSpecifier, _) => (BAD_UNIT_SETTING, format!("Invalid specifier in {path}.")),
        (E::NotTemplate, _) => (
            BAD_UNIT_SETTING,
            format!("Destination unit {path} is a non-template unit."),
        ),
        (E::BadName, _) => (
            BAD_UNIT_SETTING,
            format!("\"{path}\" is not a valid unit name."),
        ),
        (E::Loop, _) => (
            UNIT_LINKED,
            format!("Refusing to operate on alias name or linked unit file: {path}"),
        ),
        (E::BadAlias, Some(s)) => (BAD_UNIT_SETTING, format!("Cannot alias {s} as {path}.")),
        (E::BadAlias, None) => (BAD_UNIT_SETTING, format!("Invalid unit reference {path}.")),
        (E::NotFound, _) => (NO_SUCH_UNIT, format!("Unit file {path} does not exist.")),
        (E::Unresolvable, _) => (
            BAD_UNIT_SETTING,
            format!("Cannot resolve specifiers in {path}."),
        ),
        (e, _) => (errno_name(e), format!("File {path}: {e}")),
    }
}

/// The D-Bus error sd-bus makes of an errno (`sd_bus_error_set_errno()`):
/// a standard name for some, `System.Error.E...` for the rest.
fn errno_name(e: InstallError) -> &'static str {
    use InstallError as E;
    match e {
        E::NotFound => "org.freedesktop.DBus.Error.FileNotFound",
        E::PermissionDenied => "org.freedesktop.DBus.Error.AccessDenied",
        E::Invalid => "org.freedesktop.DBus.Error.InvalidArgs",
        E::Exists => "org.freedesktop.DBus.Error.FileExists",
        E::Generated => "org.freedesktop.DBus.Error.BadAddress",
        E::NotDirectory => "System.Error.ENOTDIR",
        E::Loop => "System.Error.ELOOP",
        E::BadAlias => "System.Error.EXDEV",
        E::Masked => "System.Error.ERFKILL",
        E::NotTemplate => "System.Error.EIDRM",
        E::BadName => "System.Error.EUCLEAN",
        E::BadSpecifier => "System.Error.EBADSLT",
        E::Unresolvable => "System.Error.EUNATCH",
        E::Dangling => "System.Error.ENOLINK",
        E::IsDirectory => "System.Error.EISDIR",
        E::NotRegular => "System.Error.ENOTTY",
        E::NoDevice => "System.Error.ENXIO",
        E::NameTooLong => "System.Error.ENAMETOOLONG",
        E::UnderHierarchy => "System.Error.ETXTBSY",
        E::Os(_) => "org.freedesktop.DBus.Error.Failed",
    }
}

/// Every error name the requests answer with.
const ERROR_NAMES: &[&str] = &[
    NO_SUCH_UNIT,
    UNIT_EXISTS,
    UNIT_MASKED,
    UNIT_GENERATED,
    UNIT_LINKED,
    UNIT_BAD_PATH,
    BAD_UNIT_SETTING,
    "org.freedesktop.DBus.Error.FileNotFound",
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.InvalidArgs",
    "org.freedesktop.DBus.Error.FileExists",
    "org.freedesktop.DBus.Error.BadAddress",
    "org.freedesktop.DBus.Error.Failed",
    "System.Error.ENOTDIR",
    "System.Error.ELOOP",
    "System.Error.EXDEV",
    "System.Error.ERFKILL",
    "System.Error.EIDRM",
    "System.Error.EUCLEAN",
    "System.Error.EBADSLT",
    "System.Error.EUNATCH",
    "System.Error.ENOLINK",
    "System.Error.EISDIR",
    "System.Error.ENOTTY",
    "System.Error.ENXIO",
    "System.Error.ENAMETOOLONG",
    "System.Error.ETXTBSY",
];

/// The error name `name` of an answer, as the static string a call's
/// error carries.
pub(super) fn error_name(name: &str) -> Option<&'static str> {
    ERROR_NAMES.iter().find(|k| **k == name).copied()
}

/// An operation that failed with an errno and no step to name.
fn errno_error(e: InstallError) -> Json {
    refusal(errno_name(e), &e.to_string())
}

fn refusal(name: &str, text: &str) -> Json {
    json!({"version": PROTOCOL_VERSION, "ok": false, "exit": 1, "error": text, "bus_error": name})
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn changes_go_out_as_systemd_sends_them() {
        let outcome = Outcome {
            changes: vec![
                Change::Symlink {
                    path: PathBuf::from("/etc/systemd/system/multi-user.target.wants/a.service"),
                    target: PathBuf::from("/lib/systemd/system/a.service"),
                },
                Change::Unlink {
                    path: PathBuf::from("/etc/systemd/system/b.service"),
                },
                Change::DestinationNotPresent {
                    unit: "x.target".into(),
                    source: PathBuf::from("/lib/systemd/system/a.service"),
                },
            ],
            result: Ok(1),
            warnings: Vec::new(),
        };
        let a = changes_answer(&outcome);
        assert_eq!(a["ok"], true);
        assert_eq!(a["carries"], true);
        assert_eq!(
            a["changes"],
            json!([
                [
                    "symlink",
                    "/etc/systemd/system/multi-user.target.wants/a.service",
                    "/lib/systemd/system/a.service"
                ],
                ["unlink", "/etc/systemd/system/b.service", ""],
                [
                    "destination not present",
                    "x.target",
                    "/lib/systemd/system/a.service"
                ]
            ])
        );
    }

    #[test]
    fn a_failure_alone_is_the_error_of_the_call() {
        let failed = |error| Outcome {
            changes: vec![Change::Failed {
                error,
                path: "nope.service".into(),
                source: None,
            }],
            result: Err(error),
            warnings: Vec::new(),
        };
        let a = changes_answer(&failed(InstallError::NotFound));
        assert_eq!(a["ok"], false);
        assert_eq!(a["bus_error"], NO_SUCH_UNIT);
        assert_eq!(a["error"], "Unit file nope.service does not exist.");
        let a = changes_answer(&failed(InstallError::Masked));
        assert_eq!(a["bus_error"], UNIT_MASKED);
        assert_eq!(a["error"], "Unit file nope.service is masked.");
        // A failure beside a change made is not an error (systemd sends
        // the changes made).
        let mut partial = failed(InstallError::Exists);
        partial.result = Ok(0);
        partial.changes.insert(
            0,
            Change::Unlink {
                path: PathBuf::from("/etc/x"),
            },
        );
        let a = changes_answer(&partial);
        assert_eq!(a["ok"], true);
        assert_eq!(a["carries"], false);
        assert_eq!(a["changes"], json!([["unlink", "/etc/x", ""]]));
        // An operation that failed without a step: its errno.
        let a = changes_answer(&Outcome {
            changes: Vec::new(),
            result: Err(InstallError::NoDevice),
            warnings: Vec::new(),
        });
        assert_eq!(a["bus_error"], "System.Error.ENXIO");
        assert_eq!(a["error"], "No such device or address");
    }

    #[test]
    fn every_error_name_given_is_known_to_the_api() {
        use InstallError as E;
        for e in [
            E::NotFound,
            E::NotDirectory,
            E::PermissionDenied,
            E::Loop,
            E::BadAlias,
            E::Masked,
            E::Generated,
            E::Exists,
            E::NotTemplate,
            E::BadName,
            E::BadSpecifier,
            E::Unresolvable,
            E::Invalid,
            E::Dangling,
            E::IsDirectory,
            E::NotRegular,
            E::NoDevice,
            E::NameTooLong,
            E::UnderHierarchy,
            E::Os(nix::errno::Errno::EIO),
        ] {
            assert_eq!(error_name(errno_name(e)), Some(errno_name(e)));
            for source in [None, Some("b")] {
                let (name, _) = step_error(e, "a", source);
                assert_eq!(error_name(name), Some(name), "{e:?}");
            }
        }
    }
}
