//! `Condition*=` and `Assert*=`, evaluated before a unit starts, as
//! systemd's `condition.c` does: every non-triggering condition must hold,
//! and of the triggering ones (`|` prefix) at least one; `!` negates. A
//! failed condition skips the unit quietly; a failed assertion fails it.

use std::path::Path;

use crate::unit::load::{Unit, Value};

/// Why a unit does not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionOutcome {
    /// Every condition and assertion holds.
    Pass,
    /// A condition does not hold: the unit is skipped, not failed.
    Skip(String),
    /// An assertion does not hold: the unit fails.
    AssertFailed(String),
}

/// Evaluates the unit's conditions, then its assertions.
pub fn check(unit: &Unit) -> ConditionOutcome {
    if let Err(why) = evaluate(unit, "Condition") {
        return ConditionOutcome::Skip(why);
    }
    if let Err(why) = evaluate(unit, "Assert") {
        return ConditionOutcome::AssertFailed(why);
    }
    ConditionOutcome::Pass
}

fn evaluate(unit: &Unit, prefix: &str) -> Result<(), String> {
    let mut any_trigger = false;
    let mut trigger_held = false;
    let mut first_trigger = String::new();
    for ((section, key), setting) in &unit.settings {
        if section != "Unit" || !key.starts_with(prefix) {
            continue;
        }
        let kind = &key[prefix.len()..];
        for (value, _) in &setting.entries {
            let Value::Condition {
                trigger,
                negate,
                argument,
            } = value
            else {
                continue;
            };
            let held = test(kind, argument) != *negate;
            let text = format!(
                "{key}={}{}{argument}",
                if *trigger { "|" } else { "" },
                if *negate { "!" } else { "" }
            );
            if *trigger {
                if !any_trigger {
                    first_trigger = text;
                }
                any_trigger = true;
                trigger_held |= held;
            } else if !held {
                return Err(text);
            }
        }
    }
    if any_trigger && !trigger_held {
        return Err(format!("{first_trigger} (no triggering condition held)"));
    }
    Ok(())
}

/// Whether one condition of kind `kind` (`PathExists`, ...) holds.
/// Kinds flint cannot check hold, as systemd treats conditions it does not
/// know of on the running kernel.
pub fn test(kind: &str, arg: &str) -> bool {
    let path = Path::new(arg);
    match kind {
        "PathExists" => path.symlink_metadata().is_ok() && path.exists(),
        "PathExistsGlob" => glob_exists(arg),
        "PathIsDirectory" => path.is_dir(),
        "PathIsSymbolicLink" => path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink()),
        "PathIsMountPoint" => is_mount_point(path),
        "PathIsReadWrite" => nix::sys::statvfs::statvfs(path)
            .is_ok_and(|s| !s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)),
        "DirectoryNotEmpty" => std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()),
        "FileNotEmpty" => path.metadata().is_ok_and(|m| m.is_file() && m.len() > 0),
        "FileIsExecutable" => {
            use std::os::unix::fs::PermissionsExt;
            path.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        }
        "User" => user_matches(arg),
        "Group" => group_matches(arg),
        "Host" => host_matches(arg),
        "KernelCommandLine" => kernel_cmdline_has(arg),
        "Virtualization" => virtualization_matches(arg),
        "Environment" => environment_has(arg),
        "Architecture" => {
            arg == crate::unit::specifier::architecture_from_machine(std::env::consts::ARCH)
                || arg == "native"
        }
        "FirstBoot" => crate::unit::value::bool::parse_bool(arg)
            .is_ok_and(|want| want != Path::new("/etc/machine-id").exists()),
        "NeedsUpdate" => false,
        "ACPower" => true,
        _ => true,
    }
}

fn glob_exists(pattern: &str) -> bool {
    // Patterns with wildcards only in the last component cover real units.
    let path = Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| wildcard(name.as_bytes(), n.as_bytes()))
    })
}

/// `fnmatch` with `*` and `?` (and literal characters).
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], text) || (!text.is_empty() && wildcard(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => wildcard(&pattern[1..], &text[1..]),
        _ => false,
    }
}

fn is_mount_point(path: &Path) -> bool {
    let Ok(target) = std::fs::canonicalize(path) else {
        return false;
    };
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        m.lines().any(|l| {
            l.split_whitespace()
                .nth(4)
                .is_some_and(|p| Path::new(p) == target)
        })
    })
}

fn user_matches(arg: &str) -> bool {
    let uid = nix::unistd::getuid();
    if arg == "@system" {
        return uid.as_raw() < 1000;
    }
    if let Ok(n) = arg.parse::<u32>() {
        return uid.as_raw() == n;
    }
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .is_some_and(|u| u.name == arg)
}

fn group_matches(arg: &str) -> bool {
    let gid = match arg.parse::<u32>() {
        Ok(n) => n,
        Err(_) => match nix::unistd::Group::from_name(arg).ok().flatten() {
            Some(g) => g.gid.as_raw(),
            None => return false,
        },
    };
    nix::unistd::getgid().as_raw() == gid
        || nix::unistd::getgroups().is_ok_and(|g| g.iter().any(|x| x.as_raw() == gid))
}

fn host_matches(arg: &str) -> bool {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    if host.eq_ignore_ascii_case(arg) {
        return true;
    }
    let id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    !arg.is_empty() && id.trim().eq_ignore_ascii_case(&arg.replace('-', ""))
}

fn kernel_cmdline_has(arg: &str) -> bool {
    let line = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    line.split_whitespace().any(|w| {
        if arg.contains('=') {
            w == arg
        } else {
            w == arg || w.split_once('=').is_some_and(|(k, _)| k == arg)
        }
    })
}

fn environment_has(arg: &str) -> bool {
    match arg.split_once('=') {
        Some((k, v)) => std::env::var(k).is_ok_and(|x| x == v),
        None => std::env::var_os(arg).is_some(),
    }
}

/// The container flint runs in, by systemd's names, if any.
pub fn container() -> Option<String> {
    if let Ok(c) = std::env::var("container")
        && !c.is_empty()
    {
        return Some(c);
    }
    if let Ok(c) = std::fs::read_to_string("/run/systemd/container") {
        return Some(c.trim().to_string());
    }
    if Path::new("/.dockerenv").exists() {
        return Some("docker".into());
    }
    if Path::new("/run/.containerenv").exists() {
        return Some("podman".into());
    }
    None
}

fn virtualization_matches(arg: &str) -> bool {
    let container = container();
    match arg {
        "container" => container.is_some(),
        // Without a hypervisor probe, a VM counts as "not a container".
        "vm" => false,
        v => {
            if let Ok(b) = crate::unit::value::bool::parse_bool(v) {
                return b == container.is_some();
            }
            container.as_deref() == Some(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::load;
    use crate::unit::loader::SearchPath;

    fn unit(text: &str) -> (tempfile::TempDir, Unit) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.service"), text).unwrap();
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        let u = load::load(&search, &"c.service".parse().unwrap());
        (dir, u)
    }

    #[test]
    fn path_conditions() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        let e = dir.path().join("empty");
        std::fs::write(&e, "").unwrap();
        let d = dir.path().display();
        assert!(test("PathExists", &f.display().to_string()));
        assert!(!test("PathExists", &format!("{d}/nope")));
        assert!(test("PathIsDirectory", &d.to_string()));
        assert!(test("FileNotEmpty", &f.display().to_string()));
        assert!(!test("FileNotEmpty", &e.display().to_string()));
        assert!(test("DirectoryNotEmpty", &d.to_string()));
        assert!(test("PathExistsGlob", &format!("{d}/f*")));
        assert!(!test("PathExistsGlob", &format!("{d}/z*")));
        assert!(test("FileIsExecutable", "/bin/sh"));
        assert!(test("PathIsMountPoint", "/proc"));
        assert!(!test("PathIsMountPoint", &d.to_string()));
        assert!(test("PathIsReadWrite", &d.to_string()));
    }

    #[test]
    fn trigger_and_negation_follow_systemd() {
        let (_d, u) = unit(
            "[Unit]\nConditionPathExists=/\nConditionPathExists=!/nonexistent\n[Service]\nExecStart=/bin/true\n",
        );
        assert_eq!(check(&u), ConditionOutcome::Pass);
        let (_d, u) =
            unit("[Unit]\nConditionPathExists=/nonexistent\n[Service]\nExecStart=/bin/true\n");
        assert!(
            matches!(check(&u), ConditionOutcome::Skip(w) if w.contains("ConditionPathExists=/nonexistent"))
        );
        // Of the triggering conditions one is enough.
        let (_d, u) = unit(
            "[Unit]\nConditionPathExists=|/nonexistent\nConditionPathExists=|/\n[Service]\nExecStart=/bin/true\n",
        );
        assert_eq!(check(&u), ConditionOutcome::Pass);
        let (_d, u) = unit(
            "[Unit]\nConditionPathExists=|/nonexistent\nConditionPathExists=|/also-not\n[Service]\nExecStart=/bin/true\n",
        );
        assert!(matches!(check(&u), ConditionOutcome::Skip(_)));
        let (_d, u) =
            unit("[Unit]\nAssertPathExists=/nonexistent\n[Service]\nExecStart=/bin/true\n");
        assert!(matches!(check(&u), ConditionOutcome::AssertFailed(_)));
        // An empty assignment resets the list.
        let (_d, u) = unit(
            "[Unit]\nConditionPathExists=/nonexistent\nConditionPathExists=\n[Service]\nExecStart=/bin/true\n",
        );
        assert_eq!(check(&u), ConditionOutcome::Pass);
    }

    #[test]
    fn identity_and_environment_conditions() {
        let me = nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .unwrap();
        assert!(test("User", &me.name));
        assert!(test("User", &nix::unistd::getuid().as_raw().to_string()));
        assert!(!test("User", "no-such-user-flint"));
        assert!(test("Group", &nix::unistd::getgid().as_raw().to_string()));
        assert!(test("Environment", "PATH"));
        assert!(!test("Environment", "FLINT_SURELY_UNSET_VARIABLE"));
        let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
        assert!(test("Host", &host));
        assert!(wildcard(b"a*c?", b"abbbcd"));
        assert!(!wildcard(b"a*c", b"ab"));
    }
}
