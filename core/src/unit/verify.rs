//! What `systemd-analyze verify` checks of a loaded unit beyond its own
//! files (systemd's `verify_unit()`): that a start job can be made (every
//! unit it requires, directly or through others, loads), that a socket's
//! service loads, and that every command it runs is an executable file.
//! Each problem is one line, worded as systemd words it.

use std::collections::{HashSet, VecDeque};

use super::load::{LoadState, Unit, Value, load};
use super::loader::SearchPath;
use super::name::{UnitName, UnitType};

/// The commands of each unit type whose executables are checked, in
/// systemd's order (`ExecStart=` and friends).
pub const SERVICE_COMMANDS: [&str; 7] = [
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
];
const SOCKET_COMMANDS: [&str; 4] = [
    "ExecStartPre",
    "ExecStartPost",
    "ExecStopPre",
    "ExecStopPost",
];

/// Where a command given by a bare name is looked for (systemd's
/// `find_executable_full()` without `$PATH`, split-usr included).
const SEARCH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The problems `systemd-analyze verify` reports for `unit`, a unit that
/// loaded: each line starts with the unit's name.
pub fn problems(search: &SearchPath, unit: &Unit) -> Vec<String> {
    let id = unit.id.as_str();
    let mut out = Vec::new();
    if let Some(why) = start_refused(search, unit) {
        out.push(format!("{id}: Failed to create {id}/start: {why}"));
    }
    if let Some(service) = socket_service(unit)
        && load(search, &service).load_state != LoadState::Loaded
    {
        out.push(format!(
            "{id}: service {service} not loaded, socket cannot be started."
        ));
    }
    let (section, keys): (&str, &[&str]) = match unit.id.unit_type() {
        UnitType::Service => ("Service", &SERVICE_COMMANDS),
        UnitType::Socket => ("Socket", &SOCKET_COMMANDS),
        _ => return out,
    };
    // The first command of each setting, as systemd's
    // `verify_executables()` looks at the head of each list.
    for key in keys {
        if let Some(cmd) = unit.commands(section, key).first() {
            if cmd.ignore_failure {
                continue;
            }
            if let Err(e) = executable(&cmd.path) {
                out.push(format!(
                    "{id}: Command {} is not executable: {}",
                    cmd.path,
                    e.desc()
                ));
            }
        }
    }
    out
}

/// Why a start job of `unit` cannot be made: the first unit it requires
/// (`Requires=`, `BindsTo=`, through the units they require in turn, and
/// `Requisite=`, whose own requirements are not followed: it gets a
/// verify-active job, not a start) that does not load, as systemd's
/// transaction refuses it.
fn start_refused(search: &SearchPath, unit: &Unit) -> Option<String> {
    let mut seen: HashSet<String> = HashSet::from([unit.id.to_string()]);
    let mut queue: VecDeque<Vec<(UnitName, bool)>> = VecDeque::from([required(unit)]);
    while let Some(names) = queue.pop_front() {
        for (name, started) in names {
            if !seen.insert(name.to_string()) {
                continue;
            }
            let dep = load(search, &name);
            if let Some(why) = dep.load_state.reason(name.as_str()) {
                return Some(why);
            }
            if started {
                queue.push_back(required(&dep));
            }
        }
    }
    None
}

/// The units `unit` requires for its start, each with whether it is
/// started with it (not for `Requisite=`).
fn required(unit: &Unit) -> Vec<(UnitName, bool)> {
    [("Requires", true), ("Requisite", false), ("BindsTo", true)]
        .iter()
        .flat_map(|(key, started)| {
            unit.entries("Unit", key)
                .iter()
                .filter_map(move |(v, _)| match v {
                    Value::Unit(n) => n.parse().ok().map(|n| (n, *started)),
                    _ => None,
                })
        })
        .collect()
}

/// The service a socket unit starts: `Service=`, the same name, or for
/// `Accept=yes` an instance of the template (systemd names the one it
/// checks `PREFIX@internal.service`).
fn socket_service(unit: &Unit) -> Option<UnitName> {
    if unit.id.unit_type() != UnitType::Socket {
        return None;
    }
    let prefix = unit.id.prefix();
    let name = if unit.get_bool("Socket", "Accept").unwrap_or(false) {
        format!("{prefix}@internal.service")
    } else if let Some(name) = unit.get_str("Socket", "Service") {
        name.to_string()
    } else {
        format!("{}.service", unit.id.prefix_and_instance())
    };
    name.parse().ok()
}

/// Whether `path` (absolute, or a bare name looked for in [`SEARCH`]) is
/// an executable file; the errno that says why not.
fn executable(path: &str) -> Result<(), nix::errno::Errno> {
    use nix::unistd::{AccessFlags, access};
    let check = |p: &std::path::Path| -> Result<(), nix::errno::Errno> {
        access(p, AccessFlags::X_OK)?;
        if p.is_dir() {
            return Err(nix::errno::Errno::EISDIR);
        }
        Ok(())
    };
    if path.contains('/') {
        return check(std::path::Path::new(path));
    }
    // As systemd's `find_executable_full()`: a directory whose entry may
    // not be run (EACCES) is passed over, as per tradition; another error
    // is kept unless a later directory has the command.
    let mut last = nix::errno::Errno::ENOENT;
    for dir in SEARCH.split(':') {
        match check(&std::path::Path::new(dir).join(path)) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EACCES) => {}
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_looked_for_as_systemd_looks() {
        assert_eq!(executable("/bin/sh"), Ok(()));
        assert_eq!(executable("sh"), Ok(()));
        assert_eq!(executable("/no/such"), Err(nix::errno::Errno::ENOENT));
        assert_eq!(
            executable("no-such-command-x"),
            Err(nix::errno::Errno::ENOENT)
        );
        assert_eq!(executable("/"), Err(nix::errno::Errno::EISDIR));
    }
}
