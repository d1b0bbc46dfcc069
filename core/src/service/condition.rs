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

/// The conditions (`prefix` `Condition` or `Assert`) that failed, as
/// systemctl's status lists them ("ConditionPathExists=/x was not met"):
/// the triggering ones that did not hold, and the first other one that
/// did not (systemd evaluates no further); empty when they all hold.
pub fn failed(unit: &Unit, prefix: &str) -> Vec<String> {
    walk(unit, prefix)
        .into_iter()
        .map(|(text, _)| text)
        .collect()
}

/// [`failed`], each with whether it is a triggering one (`|`).
fn walk(unit: &Unit, prefix: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut trigger_held = false;
    for ((section, key), setting) in unit.settings.iter() {
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
            // What cannot be evaluated counts as failed, negated or not.
            let held = matches!(verdict(kind, argument), Ok(v) if v != *negate);
            trigger_held |= *trigger && held;
            if !held {
                let text = format!(
                    "{key}={}{}{argument}",
                    if *trigger { "|" } else { "" },
                    if *negate { "!" } else { "" }
                );
                out.push((text, *trigger));
                if !*trigger {
                    return out;
                }
            }
        }
    }
    if trigger_held {
        out.clear();
    }
    out
}

/// Whether the unit's `prefix` conditions hold; else why not: the first
/// that failed, or the first triggering one when none of them held.
fn evaluate(unit: &Unit, prefix: &str) -> Result<(), String> {
    let failed = walk(unit, prefix);
    match failed.last() {
        None => Ok(()),
        Some((text, false)) => Err(text.clone()),
        Some((_, true)) => Err(format!("{} (no triggering condition held)", failed[0].0)),
    }
}

/// One `Condition*=` or `Assert*=` as `systemd-analyze condition` takes
/// it from its command line: the key, whether it triggers (`|`), whether
/// it is negated (`!`), and the argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub key: String,
    pub trigger: bool,
    pub negate: bool,
    pub argument: String,
}

impl Written {
    /// Parses `KEY=VALUE` as systemd reads it from its command line.
    pub fn parse(text: &str) -> Parsed {
        Written::parse_expanding(text, &|s| Ok(s.to_owned()))
    }

    /// [`Written::parse`], with the argument's specifiers expanded by
    /// `expand` after its `|` and `!` (an error is the reason, in systemd's
    /// words), before a path's check and simplification, as systemd's
    /// `config_parse_unit_condition_path()` does.
    pub fn parse_expanding(text: &str, expand: &dyn Fn(&str) -> Result<String, String>) -> Parsed {
        let Some((key, value)) = text.split_once('=') else {
            return Parsed::Invalid;
        };
        let Some(kind) = key
            .strip_prefix("Condition")
            .or_else(|| key.strip_prefix("Assert"))
        else {
            return Parsed::Invalid;
        };
        if !KINDS.contains(&kind) {
            return Parsed::Invalid;
        }
        let mut rest = value.trim();
        if rest.is_empty() {
            return Parsed::Reset(key.to_owned());
        }
        let trigger = rest.starts_with('|');
        if trigger {
            rest = rest[1..].trim_start();
        }
        let negate = rest.starts_with('!');
        if negate {
            rest = rest[1..].trim_start();
        }
        let mut argument = match expand(rest) {
            Ok(expanded) => expanded,
            Err(why) => {
                return Parsed::Ignored(format!(
                    "Failed to resolve unit specifiers in {rest}, ignoring: {why}"
                ));
            }
        };
        if crate::unit::load::is_path_condition(key) {
            if !argument.starts_with('/') {
                return Parsed::Ignored(format!(
                    "{key}= path is not absolute, ignoring: {argument}"
                ));
            }
            argument = crate::unit::value::exec::path_simplify(&argument);
        }
        Parsed::Condition(Written {
            key: key.to_owned(),
            trigger,
            negate,
            argument,
        })
    }

    /// The condition as systemd writes it (`ConditionPathExists=|!/x`).
    pub fn text(&self) -> String {
        format!(
            "{}={}{}{}",
            self.key,
            if self.trigger { "|" } else { "" },
            if self.negate { "!" } else { "" },
            self.argument
        )
    }

    /// Whether it holds (negation applied), or why systemd cannot
    /// evaluate it (which counts as failed).
    pub fn verdict(&self) -> Result<bool, &'static str> {
        let kind = self
            .key
            .strip_prefix("Condition")
            .or_else(|| self.key.strip_prefix("Assert"))
            .unwrap_or(&self.key);
        verdict(kind, &self.argument).map(|v| v != self.negate)
    }
}

/// What one command-line condition is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Condition(Written),
    /// An empty value: the conditions of that key so far are dropped.
    Reset(String),
    /// Not taken, with systemd's warning.
    Ignored(String),
    /// Not a condition or assertion systemd knows.
    Invalid,
}

/// The kinds of condition systemd 252 knows.
const KINDS: &[&str] = &[
    "Architecture",
    "Firmware",
    "Virtualization",
    "Host",
    "KernelCommandLine",
    "KernelVersion",
    "Credential",
    "Security",
    "Capability",
    "ACPower",
    "NeedsUpdate",
    "FirstBoot",
    "PathExists",
    "PathExistsGlob",
    "PathIsDirectory",
    "PathIsSymbolicLink",
    "PathIsMountPoint",
    "PathIsReadWrite",
    "PathIsEncrypted",
    "DirectoryNotEmpty",
    "FileNotEmpty",
    "FileIsExecutable",
    "User",
    "Group",
    "ControlGroupController",
    "CPUs",
    "Memory",
    "Environment",
    "CPUFeature",
    "OSRelease",
    "MemoryPressure",
    "CPUPressure",
    "IOPressure",
];

/// systemd's `condition_test_list()` as `systemd-analyze condition` shows
/// it: the conditions are tested last written first, each reported
/// through `report` (with its [`Written::verdict`]), until one that does
/// not trigger fails; of the triggering ones one must hold.
pub fn test_list(
    list: &[Written],
    report: &mut dyn FnMut(&Written, Result<bool, &'static str>),
) -> bool {
    let mut any_trigger = false;
    let mut trigger_held = false;
    for c in list.iter().rev() {
        let verdict = c.verdict();
        report(c, verdict);
        let held = verdict.unwrap_or(false);
        if c.trigger {
            any_trigger = true;
            trigger_held |= held;
        } else if !held {
            return false;
        }
    }
    !any_trigger || trigger_held
}

/// What systemd says of a condition whose argument it cannot evaluate.
const INVALID: &str = "Invalid argument";

/// Whether one condition of kind `kind` (`PathExists`, ...) holds; what
/// cannot be evaluated counts as failed.
pub fn test(kind: &str, arg: &str) -> bool {
    verdict(kind, arg).unwrap_or(false)
}

/// Whether one condition of kind `kind` holds, or why systemd cannot
/// evaluate it with `arg` (its `condition_test()` fails: the errno's text),
/// which counts as failed, negated or not. Kinds flint cannot check hold,
/// as systemd treats conditions it does not know of on the running kernel.
pub fn verdict(kind: &str, arg: &str) -> Result<bool, &'static str> {
    let path = Path::new(arg);
    let parse_bool = |s| crate::unit::value::bool::parse_bool(s).map_err(|_| INVALID);
    Ok(match kind {
        "PathExists" => path.symlink_metadata().is_ok() && path.exists(),
        "PathExistsGlob" => glob_exists(arg),
        "PathIsDirectory" => path.is_dir(),
        "PathIsSymbolicLink" => path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink()),
        "PathIsMountPoint" => is_mount_point(path),
        "PathIsEncrypted" => path_is_encrypted(path),
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
        "FirstBoot" => parse_bool(arg)? != Path::new("/etc/machine-id").exists(),
        "NeedsUpdate" => needs_update(arg, Path::new("/usr/")),
        "ControlGroupController" => {
            let unified = all_unified();
            let root = cgroup_root();
            control_group_controllers_hold(arg, unified, &|c| {
                controller_supported(c, unified, root.as_deref())
            })
        }
        "MemoryPressure" | "CPUPressure" | "IOPressure" => pressure_below(kind, arg)?,
        "CPUFeature" => crate::virt::has_cpu_feature(arg),
        "ACPower" => parse_bool(arg)? == on_ac_power(Path::new("/sys")),
        // Tested word by word, as systemd: a word that does not parse after
        // one that failed is never looked at.
        "KernelVersion" => kernel_version_matches(arg, &kernel_release()).map_err(|()| INVALID)?,
        "OSRelease" => os_release_matches(arg, &os_release()).map_err(|()| INVALID)?,
        "Firmware" => firmware_matches(arg),
        "Credential" => credential_passed(
            arg,
            &[
                std::env::var_os("CREDENTIALS_DIRECTORY"),
                std::env::var_os("ENCRYPTED_CREDENTIALS_DIRECTORY"),
            ],
        ),
        "Capability" => has_capability(arg).ok_or(INVALID)?,
        "Security" => security_enabled(arg),
        "CPUs" => compare_count(arg, cpus_in_affinity_mask(), |s| s.parse().ok())?,
        "Memory" => compare_count(arg, Some(super::resources::physical_memory()), |s| {
            crate::unit::value::size::parse_size_iec(s).ok()
        })?,
        _ => true,
    })
}

/// systemd's `path_is_encrypted()`: whether the block device under `path`
/// is dm-crypt (its `dm/uuid` begins with `CRYPT-`), or built only of such
/// devices (each of its `slaves`, ten levels at most). A file system
/// without a block device is not encrypted.
fn path_is_encrypted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fn encrypted(dev: &Path, depth: u32) -> bool {
        if depth == 0 {
            return false;
        }
        if std::fs::read_to_string(dev.join("dm/uuid")).is_ok_and(|u| u.starts_with("CRYPT-")) {
            return true;
        }
        let Ok(slaves) = std::fs::read_dir(dev.join("slaves")) else {
            return false;
        };
        let mut any = false;
        for s in slaves.flatten() {
            if !encrypted(&s.path(), depth - 1) {
                return false;
            }
            any = true;
        }
        any
    }
    let Ok(meta) = path.metadata() else {
        return false;
    };
    let dev = meta.dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    if major == 0 {
        return false;
    }
    encrypted(Path::new(&format!("/sys/dev/block/{major}:{minor}")), 10)
}

/// The comparisons of systemd's `parse_order()`, in the order they are
/// tried (the glob ones only where allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    GlobEqual,
    GlobUnequal,
    LowerOrEqual,
    GreaterOrEqual,
    Lower,
    Greater,
    Equal,
    Unequal,
}

const ORDERS: [(&str, Order); 8] = [
    ("$=", Order::GlobEqual),
    ("!$=", Order::GlobUnequal),
    ("<=", Order::LowerOrEqual),
    (">=", Order::GreaterOrEqual),
    ("<", Order::Lower),
    (">", Order::Greater),
    ("=", Order::Equal),
    ("!=", Order::Unequal),
];

/// The operator `s` starts with, and the rest.
fn parse_order(s: &str, globs: bool) -> Option<(Order, &str)> {
    ORDERS
        .iter()
        .filter(|(_, o)| globs || !matches!(o, Order::GlobEqual | Order::GlobUnequal))
        .find_map(|(prefix, o)| s.strip_prefix(prefix).map(|rest| (*o, rest)))
}

fn test_order(cmp: std::cmp::Ordering, order: Order) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match order {
        Order::LowerOrEqual => cmp != Greater,
        Order::GreaterOrEqual => cmp != Less,
        Order::Lower => cmp == Less,
        Order::Greater => cmp == Greater,
        Order::Equal | Order::GlobEqual => cmp == Equal,
        Order::Unequal | Order::GlobUnequal => cmp != Equal,
    }
}

/// systemd's `version_or_fnmatch_compare()`: a glob match for `$=` and
/// `!$=`, else a version comparison of `actual` (none: the empty one) with
/// `wanted`.
fn version_or_glob(order: Order, actual: Option<&str>, wanted: &str) -> bool {
    let actual = actual.unwrap_or_default();
    match order {
        Order::GlobEqual => wildcard(wanted.as_bytes(), actual.as_bytes()),
        Order::GlobUnequal => !wildcard(wanted.as_bytes(), actual.as_bytes()),
        _ => test_order(strverscmp_improved(actual, wanted), order),
    }
}

/// systemd's `strverscmp_improved()`: versions compared segment by
/// segment; `.`, `-` and `^` separate, `~` marks a pre-release (older),
/// numbers compare by value and are newer than letters, and a version with
/// more segments is newer.
pub(crate) fn strverscmp_improved(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::Equal;
    if a.is_empty() || b.is_empty() {
        return a.cmp(b);
    }
    let valid = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'~' | b'-' | b'^' | b'.');
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut ia, mut ib) = (0, 0);
    let at = |s: &[u8], k: usize| s.get(k).copied().unwrap_or(0);
    loop {
        while ia < a.len() && !valid(a[ia]) {
            ia += 1;
        }
        while ib < b.len() && !valid(b[ib]) {
            ib += 1;
        }
        // `~` marks a pre-release: the side with it is older.
        if at(a, ia) == b'~' || at(b, ib) == b'~' {
            let ord = (at(a, ia) != b'~').cmp(&(at(b, ib) != b'~'));
            if ord != Equal {
                return ord;
            }
            ia += 1;
            ib += 1;
        }
        // At an end, the longer is newer.
        if at(a, ia) == 0 || at(b, ib) == 0 {
            return at(a, ia).cmp(&at(b, ib));
        }
        // `-` (the release), `^` (a patch), `.` (a point release): the side
        // without the separator is newer.
        for sep in [b'-', b'^', b'.'] {
            if at(a, ia) == sep || at(b, ib) == sep {
                let ord = (at(a, ia) != sep).cmp(&(at(b, ib) != sep));
                if ord != Equal {
                    return ord;
                }
                ia += 1;
                ib += 1;
            }
        }
        if at(a, ia).is_ascii_digit() || at(b, ib).is_ascii_digit() {
            let end_a = ia + a[ia..].iter().take_while(|c| c.is_ascii_digit()).count();
            let end_b = ib + b[ib..].iter().take_while(|c| c.is_ascii_digit()).count();
            let ord = (end_a != ia).cmp(&(end_b != ib));
            if ord != Equal {
                return ord;
            }
            while ia < end_a && a[ia] == b'0' {
                ia += 1;
            }
            while ib < end_b && b[ib] == b'0' {
                ib += 1;
            }
            let ord = (end_a - ia)
                .cmp(&(end_b - ib))
                .then_with(|| a[ia..end_a].cmp(&b[ib..end_b]));
            if ord != Equal {
                return ord;
            }
            (ia, ib) = (end_a, end_b);
        } else {
            let end_a = ia
                + a[ia..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count();
            let end_b = ib
                + b[ib..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count();
            let n = (end_a - ia).min(end_b - ib);
            let ord = a[ia..ia + n]
                .cmp(&b[ib..ib + n])
                .then_with(|| (end_a - ia).cmp(&(end_b - ib)));
            if ord != Equal {
                return ord;
            }
            (ia, ib) = (end_a, end_b);
        }
    }
}

fn kernel_release() -> String {
    crate::unit::specifier::HostFacts::shared()
        .kernel_release
        .clone()
}

/// systemd's `condition_test_kernel_version()`: every expression (a glob
/// without an operator) holds for `release`; the first one may have
/// whitespace between its operator and its value. `Err` where a word does
/// not parse before one failed (systemd's `-EINVAL`).
fn kernel_version_matches(arg: &str, release: &str) -> Result<bool, ()> {
    use crate::unit::value::words::{ExtractFlags, extract_first_word};
    let mut cursor = Some(arg);
    let mut first = true;
    loop {
        let word = match extract_first_word(&mut cursor, None, ExtractFlags::UNQUOTE) {
            Ok(Some(w)) => w,
            Ok(None) => return Ok(true),
            Err(_) => return Err(()),
        };
        let word = word.trim();
        match parse_order(word, true) {
            Some((order, rest)) => {
                let mut value = rest.trim_start().to_owned();
                if value.is_empty() {
                    if !first {
                        return Err(());
                    }
                    match extract_first_word(&mut cursor, None, ExtractFlags::default()) {
                        Ok(Some(w)) => value = w,
                        _ => return Err(()),
                    }
                }
                if !version_or_glob(order, Some(release), &value) {
                    return Ok(false);
                }
            }
            None => {
                if !wildcard(word.as_bytes(), release.as_bytes()) {
                    return Ok(false);
                }
            }
        }
        first = false;
    }
}

/// The machine's os-release (`/etc/os-release`, else `/usr/lib/os-release`).
fn os_release() -> Vec<(String, String)> {
    crate::unit::specifier::read_os_release().unwrap_or_default()
}

/// systemd's `condition_test_osrelease()`: every `KEY` operator `VALUE`
/// expression holds for `fields` (a missing key compares as empty); `Err`
/// where a word does not parse before one failed.
fn os_release_matches(arg: &str, fields: &[(String, String)]) -> Result<bool, ()> {
    use crate::unit::value::words::{ExtractFlags, extract_first_word};
    let mut cursor = Some(arg);
    loop {
        let word = match extract_first_word(&mut cursor, None, ExtractFlags::UNQUOTE) {
            Ok(Some(w)) => w,
            Ok(None) => return Ok(true),
            Err(_) => return Err(()),
        };
        let Some(at) = word.find(['!', '<', '=', '>', '$']) else {
            return Err(());
        };
        let (key, rest) = word.split_at(at);
        let valid_key = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let Some((order, value)) = parse_order(rest, true) else {
            return Err(());
        };
        if !valid_key || value.is_empty() || value.starts_with(char::is_whitespace) {
            return Err(());
        }
        let actual = fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str());
        if !version_or_glob(order, actual, value) {
            return Ok(false);
        }
    }
}

/// systemd 252's `condition_test_firmware()`: `uefi`, `device-tree`, or
/// `device-tree-compatible(VALUE)` (one of the device tree's compatible
/// strings).
/// systemd's `condition_test_needs_update()`: whether `dir` (`/etc`,
/// `/var`) was last updated before `usr` was (`dir/.updated`, which
/// `systemd-update-done` writes, against `/usr`'s modification time), so
/// that update tools run after an image's `/usr` changed. Holds where
/// systemd errs on the side of running them: a kernel command line that
/// says so, an initrd, a relative path, a stamp that cannot be read; never
/// on a read-only file system.
fn needs_update(dir: &str, usr: &Path) -> bool {
    if let Some(v) = kernel_cmdline_bool("systemd.condition-needs-update") {
        return v;
    }
    // No updates in an initrd (systemd 252: "not doing any updates").
    if Path::new("/etc/initrd-release").exists() {
        return false;
    }
    if !dir.starts_with('/') {
        return true;
    }
    if nix::sys::statvfs::statvfs(dir)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    {
        return false;
    }
    use std::os::unix::fs::MetadataExt;
    let stamp = Path::new(dir).join(".updated");
    let (Ok(other), Ok(usr)) = (stamp.symlink_metadata(), usr.symlink_metadata()) else {
        return true;
    };
    if usr.mtime() != other.mtime() {
        return usr.mtime() > other.mtime();
    }
    if usr.mtime_nsec() == 0 || other.mtime_nsec() > 0 {
        return usr.mtime_nsec() > other.mtime_nsec();
    }
    // A file system without nanoseconds: the stamp's TIMESTAMP_NSEC=.
    let text = std::fs::read_to_string(&stamp).unwrap_or_default();
    let stamped = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("TIMESTAMP_NSEC=")
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    let usr_nsec = u64::try_from(usr.mtime()).unwrap_or(0) * 1_000_000_000
        + u64::try_from(usr.mtime_nsec()).unwrap_or(0);
    stamped.is_none_or(|t| usr_nsec > t)
}

/// systemd's `condition_test_control_group_controller()`: `v2` (every
/// hierarchy unified) or `v1`, else every controller named that systemd
/// knows must be supported (`supported`); names it does not know are left
/// out, and a list of none holds.
fn control_group_controllers_hold(
    arg: &str,
    all_unified: bool,
    supported: &dyn Fn(&str) -> bool,
) -> bool {
    match arg {
        "v2" => return all_unified,
        "v1" => return !all_unified,
        _ => {}
    }
    let wanted: Vec<&str> = arg
        .split_whitespace()
        .filter(|w| crate::cgroup::SYSTEMD_CONTROLLERS.contains(w))
        .collect();
    wanted.iter().all(|c| supported(c))
}

/// Whether `/sys/fs/cgroup` is the unified (v2) hierarchy itself.
fn all_unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// The manager's root cgroup as systemd's `cg_get_root_path()` finds it:
/// PID 1's cgroup (of the unified hierarchy, or of `name=systemd`),
/// without a trailing `/init.scope`, `/system.slice` or `/system`.
fn cgroup_root() -> Option<String> {
    let text = std::fs::read_to_string("/proc/1/cgroup").ok()?;
    let path = if all_unified() {
        crate::cgroup::unified_path(&text)
    } else {
        crate::cgroup::legacy_path(&text, "name=systemd")
    }?;
    let trimmed = ["/init.scope", "/system.slice", "/system"]
        .iter()
        .find_map(|t| path.strip_suffix(t))
        .unwrap_or(path);
    Some(trimmed.to_owned())
}

/// Whether systemd's `cg_mask_supported()` has `controller`: on the
/// unified hierarchy one of the root's `cgroup.controllers` that systemd
/// runs there (cpu, cpuset, io, memory, pids); otherwise a v1 controller
/// systemd runs (cpu, cpuacct, blkio, memory, devices, pids) whose
/// hierarchy lets flint add processes below the root.
fn controller_supported(controller: &str, all_unified: bool, root: Option<&str>) -> bool {
    let Some(root) = root else {
        // No cgroup of PID 1 to start from: systemd cannot tell and the
        // condition fails.
        return false;
    };
    if all_unified {
        if !["cpu", "cpuset", "io", "memory", "pids"].contains(&controller) {
            return false;
        }
        let path = format!("/sys/fs/cgroup{root}/cgroup.controllers");
        return std::fs::read_to_string(path)
            .is_ok_and(|t| t.split_whitespace().any(|c| c == controller));
    }
    if !["cpu", "cpuacct", "blkio", "memory", "devices", "pids"].contains(&controller) {
        return false;
    }
    let path = format!("/sys/fs/cgroup/{controller}{root}/cgroup.procs");
    nix::unistd::faccessat(
        nix::fcntl::AT_FDCWD,
        path.as_str(),
        nix::unistd::AccessFlags::W_OK,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok()
}

/// systemd's `condition_test_psi()` (`ConditionMemoryPressure=`,
/// `CPUPressure=`, `IOPressure=`): `[SLICE:]LIMIT[/WINDOW]`, whether the
/// pressure stall average over `10sec`, `1min` or `5min` (the default) is at
/// most LIMIT (a percentage): the machine's in `/proc/pressure`, or a
/// slice's cgroup (unified hierarchy only). Memory and I/O count the time
/// all tasks stalled (`full`), CPU the time some did (`some`). Where the
/// kernel, the hierarchy or the slice gives no figure, systemd skips the
/// check and the condition holds; a malformed value is an error (its
/// errno's text), which counts as failed.
fn pressure_below(kind: &str, arg: &str) -> Result<bool, &'static str> {
    let resource = match kind {
        "MemoryPressure" => "memory",
        "CPUPressure" => "cpu",
        _ => "io",
    };
    if !Path::new("/proc/pressure").join(resource).exists() {
        return Ok(true);
    }
    let (file, value) = match arg.split_once(':') {
        None => (Path::new("/proc/pressure").join(resource), arg),
        Some((slice, value)) => {
            let value = value.split(':').next().unwrap_or(value);
            match slice_pressure_file(slice.trim(), resource) {
                SlicePressure::File(file) => (file, value),
                SlicePressure::Skipped => return Ok(true),
                SlicePressure::BadSlice => return Err(INVALID),
            }
        }
    };
    let Some((limit, window)) = parse_pressure_limit(value) else {
        let limit = value.split_once('/').map_or(value, |(l, _)| l).trim();
        return Err(
            match crate::unit::value::percent::parse_permyriad_unbounded(limit) {
                Ok(p) if p > 10_000 => "Numerical result out of range",
                _ => INVALID,
            },
        );
    };
    let Ok(text) = std::fs::read_to_string(&file) else {
        // The slice has no cgroup (yet): skipped.
        return Ok(true);
    };
    let line = if resource == "cpu" { "some" } else { "full" };
    Ok(pressure_average(&text, line, window).is_some_and(|current| current <= limit))
}

/// `LIMIT[/WINDOW]`: the limit in hundredths of a percent and the
/// average's field (`avg10`, `avg60`, `avg300`).
fn parse_pressure_limit(value: &str) -> Option<(u64, &'static str)> {
    let (limit, window) = match value.split_once('/') {
        Some((l, w)) => (l, Some(w)),
        None => (value, None),
    };
    let limit = crate::unit::value::percent::parse_permyriad(limit.trim()).ok()?;
    let window = match window.map(str::trim) {
        None => "avg300",
        Some("10sec") => "avg10",
        Some("1min") => "avg60",
        Some("5min") => "avg300",
        Some(_) => return None,
    };
    Some((limit, window))
}

/// The average `field` of the `line` (`some`, `full`) of a pressure file
/// (`some avg10=0.12 avg60=...`), in hundredths of a percent.
fn pressure_average(text: &str, line: &str, field: &str) -> Option<u64> {
    let words = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(line))?;
    let value = words
        .split_whitespace()
        .find_map(|w| w.strip_prefix(field)?.strip_prefix('='))?;
    let (whole, frac) = value.split_once('.').unwrap_or((value, "0"));
    let frac = format!("{frac:0<2}");
    Some(whole.parse::<u64>().ok()? * 100 + frac.get(..2)?.parse::<u64>().ok()?)
}

/// Where a slice's pressure is read.
enum SlicePressure {
    File(std::path::PathBuf),
    /// systemd skips the check (no unified hierarchy, the controller not
    /// there): the condition holds.
    Skipped,
    /// Not a slice's name: the condition does not hold.
    BadSlice,
}

/// A slice's pressure file, as systemd finds it: on the unified hierarchy,
/// below flint's own cgroup (without `/init.scope`), with the slice's
/// path (`a-b.slice` is `a.slice/a-b.slice`).
fn slice_pressure_file(slice: &str, resource: &str) -> SlicePressure {
    if !all_unified() {
        return SlicePressure::Skipped;
    }
    let root = cgroup_root();
    if !controller_supported(resource, true, root.as_deref()) {
        return SlicePressure::Skipped;
    }
    let Some(stem) = slice.strip_suffix(".slice").filter(|s| {
        *s == "-"
            || (!s.is_empty()
                && !s.starts_with('-')
                && !s.ends_with('-')
                && !s.contains("--")
                && !s.contains('/'))
    }) else {
        return SlicePressure::BadSlice;
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own = crate::cgroup::unified_path(&own).unwrap_or("");
    let own = own
        .strip_suffix("/init.scope")
        .unwrap_or(own)
        .trim_end_matches('/');
    let mut path = format!("/sys/fs/cgroup{own}");
    if stem != "-" {
        let mut prefix = String::new();
        for part in stem.split('-') {
            if !prefix.is_empty() {
                prefix.push('-');
            }
            prefix.push_str(part);
            path.push('/');
            path.push_str(&prefix);
            path.push_str(".slice");
        }
    }
    SlicePressure::File(std::path::PathBuf::from(format!(
        "{path}/{resource}.pressure"
    )))
}

/// A boolean switch of the kernel command line, as systemd's
/// `proc_cmdline_get_bool()` reads it: the last `key=BOOL`, or `key` alone
/// for yes, with `-` and `_` alike in the key; `None` when absent or not a
/// boolean.
fn kernel_cmdline_bool(key: &str) -> Option<bool> {
    let line = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    cmdline_bool(&line, key)
}

fn cmdline_bool(line: &str, key: &str) -> Option<bool> {
    let same = |a: &str| {
        a.len() == key.len()
            && a.bytes()
                .zip(key.bytes())
                .all(|(x, y)| x == y || (matches!(x, b'-' | b'_') && matches!(y, b'-' | b'_')))
    };
    let mut found = None;
    for w in line.split_whitespace() {
        match w.split_once('=') {
            None if same(w) => found = Some(true),
            Some((k, v)) if same(k) => found = crate::unit::value::bool::parse_bool(v).ok(),
            _ => {}
        }
    }
    found
}

/// systemd's `on_ac_power()` over the power supplies below `sys`: on AC
/// when a supply other than a battery is online (a USB-C one only where
/// it feeds this machine), else not when a battery discharges, else (no
/// supply, as in most servers and containers) on AC.
fn on_ac_power(sys: &Path) -> bool {
    let read = |p: &Path, attr: &str| {
        std::fs::read_to_string(p.join(attr))
            .ok()
            .map(|v| v.trim().to_owned())
    };
    let Ok(supplies) = std::fs::read_dir(sys.join("class/power_supply")) else {
        return true;
    };
    let mut online = false;
    let mut discharging = false;
    for supply in supplies.flatten() {
        let dev = supply.path();
        let Some(kind) = read(&dev, "type") else {
            continue;
        };
        if kind == "USB" && !usb_is_power_sink(sys, &dev) {
            continue;
        }
        if kind == "Battery" {
            let device_battery = read(&dev, "scope").is_some_and(|s| s == "Device");
            let absent = read(&dev, "present").is_some_and(|p| p == "0");
            if !device_battery && !absent && read(&dev, "status").is_none_or(|s| s == "Discharging")
            {
                discharging = true;
            }
            continue;
        }
        if read(&dev, "online")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|v| v > 0)
        {
            online = true;
        }
    }
    online || !discharging
}

/// systemd's `device_is_power_sink()`: whether a USB power supply feeds
/// this machine: a USB-C port beside it (under its parent device) in sink
/// mode, or none in source mode.
fn usb_is_power_sink(sys: &Path, supply: &Path) -> bool {
    let Ok(parent) = std::fs::canonicalize(supply.join("device")) else {
        return true;
    };
    let (mut sink, mut source) = (false, false);
    for port in std::fs::read_dir(sys.join("class/typec"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(path) = std::fs::canonicalize(port.path()) else {
            continue;
        };
        if !path.starts_with(&parent) || path == parent {
            continue;
        }
        let role = std::fs::read_to_string(path.join("power_role")).unwrap_or_default();
        if role.contains("[source]") {
            source = true;
        } else if role.contains("[sink]") {
            sink = true;
        }
    }
    sink || !source
}

fn firmware_matches(arg: &str) -> bool {
    match arg {
        "uefi" => Path::new("/sys/firmware/efi/").exists(),
        "device-tree" => Path::new("/sys/firmware/devicetree/").exists(),
        _ => arg
            .strip_prefix("device-tree-compatible(")
            .and_then(|rest| rest.strip_suffix(')'))
            .is_some_and(|want| {
                std::fs::read("/proc/device-tree/compatible").is_ok_and(|list| {
                    list.split(|b| *b == 0)
                        .any(|c| !c.is_empty() && c == want.as_bytes())
                })
            }),
    }
}

/// systemd's `condition_test_credential()`: whether a credential of that
/// name was passed to flint, in `$CREDENTIALS_DIRECTORY` or
/// `$ENCRYPTED_CREDENTIALS_DIRECTORY` (`dirs`, unset ones `None`).
fn credential_passed(name: &str, dirs: &[Option<std::ffi::OsString>]) -> bool {
    let valid =
        !name.is_empty() && name != "." && name != ".." && !name.contains('/') && name.len() <= 255;
    valid
        && dirs
            .iter()
            .flatten()
            .filter(|d| Path::new(d).is_absolute())
            .any(|d| Path::new(d).join(name).symlink_metadata().is_ok())
}

/// systemd's `condition_test_capability()`: whether the capability is in
/// flint's bounding set (an unknown name: no).
fn has_capability(name: &str) -> Option<bool> {
    let cap = crate::unit::value::process::capability_from_name(name)?;
    let bounding = crate::unit::value::process::own_capabilities("CapBnd").unwrap_or(u64::MAX);
    Some(bounding & (1u64 << cap) != 0)
}

/// systemd's `condition_test_cpus()` and `condition_test_memory()`: the
/// machine's `have` against the number after an optional operator of
/// [`parse_order`] without the glob ones (none: `>=`).
fn compare_count(
    arg: &str,
    have: Option<u64>,
    parse: impl Fn(&str) -> Option<u64>,
) -> Result<bool, &'static str> {
    let (order, rest) = parse_order(arg, false).unwrap_or((Order::GreaterOrEqual, arg));
    let want = parse(rest.trim()).ok_or(INVALID)?;
    Ok(have.is_some_and(|have| test_order(have.cmp(&want), order)))
}

/// The CPUs flint may run on (systemd's `cpus_in_affinity_mask()`).
fn cpus_in_affinity_mask() -> Option<u64> {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .ok()
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|i| set.is_set(*i).unwrap_or(false))
                .count() as u64
        })
}

/// systemd's `condition_test_security()`: whether the security technology
/// is on.
fn security_enabled(what: &str) -> bool {
    let exists = |p: &str| Path::new(p).exists();
    match what {
        "selinux" => exists("/sys/fs/selinux/enforce"),
        "apparmor" => std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.trim() == "Y"),
        "tomoyo" => exists("/sys/kernel/security/tomoyo/version"),
        "ima" => exists("/sys/kernel/security/ima/"),
        "smack" => exists("/sys/fs/smackfs/"),
        "audit" => audit_available(),
        "uefi-secureboot" => std::fs::read(
            "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
        )
        .is_ok_and(|v| v.get(4) == Some(&1)),
        "tpm2" => {
            std::fs::read_dir("/sys/class/tpmrm").is_ok_and(|mut d| d.next().is_some())
                || (exists("/sys/firmware/efi") && exists("/sys/firmware/acpi/tables/TPM2"))
        }
        _ => false,
    }
}

/// systemd's `use_audit()`: whether the kernel has the audit netlink.
fn audit_available() -> bool {
    // SAFETY: socket(2) with constant arguments; the fd is closed at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_AUDIT,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error().raw_os_error();
        return !matches!(
            e,
            Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT | libc::EPERM)
        );
    }
    // SAFETY: `fd` is ours and open.
    unsafe { libc::close(fd) };
    true
}

/// Whether any path matches `pattern`, as systemd's `glob_exists()`
/// (`glob(3)` with `GLOB_BRACE`): `{a,b}` alternatives, then `*`, `?` and
/// `[...]` in any component; wildcards do not match a leading `.`.
fn glob_exists(pattern: &str) -> bool {
    expand_braces(pattern).iter().any(|p| {
        let absolute = p.starts_with('/');
        let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
        let start = if absolute {
            std::path::PathBuf::from("/")
        } else {
            std::path::PathBuf::from(".")
        };
        matches_from(&start, &parts)
    })
}

/// Whether some path below `dir` matches the components `rest`.
fn matches_from(dir: &Path, rest: &[&str]) -> bool {
    let Some((first, tail)) = rest.split_first() else {
        return dir.symlink_metadata().is_ok();
    };
    if !first.contains(['*', '?', '[']) {
        let next = dir.join(first);
        return if tail.is_empty() {
            next.symlink_metadata().is_ok()
        } else {
            matches_from(&next, tail)
        };
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        (!name.starts_with('.') || first.starts_with('.'))
            && wildcard(first.as_bytes(), name.as_bytes())
            && (tail.is_empty() || matches_from(&e.path(), tail))
    })
}

/// `{a,b}` alternatives expanded (nested ones too); a brace without a
/// comma at its own level stays as it is.
pub(crate) fn expand_braces(pattern: &str) -> Vec<String> {
    let bytes = pattern.as_bytes();
    let mut depth = 0usize;
    let mut open = None;
    let mut commas = Vec::new();
    for (i, &c) in bytes.iter().enumerate() {
        match c {
            b'{' => {
                if depth == 0 {
                    open = Some(i);
                    commas.clear();
                }
                depth += 1;
            }
            b',' if depth == 1 => commas.push(i),
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0
                    && let Some(start) = open
                    && !commas.is_empty()
                {
                    let (head, tail) = (&pattern[..start], &pattern[i + 1..]);
                    let mut cuts = vec![start];
                    cuts.extend(&commas);
                    cuts.push(i);
                    let mut out = Vec::new();
                    for w in cuts.windows(2) {
                        let alt = &pattern[w[0] + 1..w[1]];
                        out.extend(expand_braces(&format!("{head}{alt}{tail}")));
                    }
                    return out;
                }
            }
            _ => {}
        }
    }
    vec![pattern.to_string()]
}

/// `fnmatch` with `*`, `?`, `[...]` (ranges, `!` or `^` to negate) and
/// literal characters. Only the last `*` is ever backtracked to (what an
/// earlier one matched can always be grown instead), so a hostile pattern
/// such as `*?*?*?*?x` costs at most pattern times text steps, not an
/// exponential search.
pub(crate) fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to go on after the last `*`: its pattern position and the text
    // position it has matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => match bracket(&pattern[p + 1..], text[t]) {
                Some((true, used)) => Some(1 + used),
                Some((false, _)) => None,
                // No closing bracket: a literal `[`.
                None => (text[t] == b'[').then_some(1),
            },
            Some(&c) => (c == text[t]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(n), _) => {
                p += n;
                t += 1;
            }
            (None, Some((after, matched))) => {
                p = after;
                t = matched + 1;
                star = Some((after, matched + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A bracket expression after its `[`: whether `c` matches it and how many
/// bytes it used (up to and with its `]`); `None` when it never closes.
fn bracket(set: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(set.first(), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < set.len() {
        let lo = set[i];
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < set.len() && set[i + 1] == b'-' && set[i + 2] != b']' {
            let hi = set[i + 2];
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
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

/// systemd's `condition_test_virtualization()`: `private-users`, a
/// boolean (any virtualization), `vm`, `container`, or a name; a container
/// hides the machine it runs on ([`crate::virt::detect`]).
fn virtualization_matches(arg: &str) -> bool {
    if arg == "private-users" {
        return in_user_namespace();
    }
    virtualization_is(crate::virt::detect(), arg)
}

fn virtualization_is(found: Option<(&str, bool)>, arg: &str) -> bool {
    if let Ok(b) = crate::unit::value::bool::parse_bool(arg) {
        return b == found.is_some();
    }
    match (arg, found) {
        ("vm", Some((_, container))) => !container,
        ("container", Some((_, container))) => container,
        (name, Some((found, _))) => name == found,
        (_, None) => false,
    }
}

/// Whether flint runs in a user namespace other than the first one
/// (systemd's `running_in_userns()`: a `uid_map` or `gid_map` other than
/// the whole range mapped to itself, or `setgroups` denied).
fn in_user_namespace() -> bool {
    let mapped = |file: &str| {
        std::fs::read_to_string(file)
            .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
    };
    mapped("/proc/self/uid_map")
        || mapped("/proc/self/gid_map")
        || std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
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

    /// systemd 252's own verdict on one condition (`systemd-analyze
    /// condition`), run with `env` added; `None` where it gives none.
    fn systemd_verdict(condition: &str, env: &[(&str, &std::ffi::OsStr)]) -> Option<bool> {
        let out = std::process::Command::new("systemd-analyze")
            .args(["condition", condition])
            .envs(env.iter().copied())
            .env_remove("ENCRYPTED_CREDENTIALS_DIRECTORY")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if text.contains("Conditions succeeded.") {
            Some(true)
        } else if text.contains("Conditions failed.") {
            Some(false)
        } else {
            None
        }
    }

    /// Version and glob expressions as systemd 252's own evaluation sees
    /// them (`systemd-analyze condition`), against this kernel's release
    /// and this machine's os-release.
    #[test]
    fn kernel_and_os_release_conditions_as_systemd_analyze_says() {
        let release = kernel_release();
        let systemd = |condition: &str| systemd_verdict(condition, &[]);
        if systemd("ConditionKernelVersion=>=0").is_none() {
            eprintln!("no systemd-analyze condition to compare with");
            return;
        }
        let r = &release;
        let base = release
            .split(['-', '+'])
            .next()
            .unwrap_or_default()
            .to_owned();
        let kernel = [
            r.clone(),
            format!("={r}"),
            format!("!={r}"),
            format!("<{r}"),
            format!("<={r}"),
            format!(">{r}~rc1"),
            format!("<{r}^1"),
            format!("<{r}.1"),
            format!(">{r}-1"),
            format!(">= {base}"),
            format!("<{base}"),
            format!(">{base}.0"),
            format!("$={base}*"),
            format!("!$={base}*"),
            "*".to_owned(),
            "1.*".to_owned(),
            ">=2.6 <100".to_owned(),
            ">=2.6 >100".to_owned(),
            "<2.6.999a".to_owned(),
            ">2.6.0009".to_owned(),
            ">=\"2.6\"".to_owned(),
        ];
        for expr in kernel {
            let want = systemd(&format!("ConditionKernelVersion={expr}"));
            assert_eq!(
                Some(kernel_version_matches(&expr, &release).unwrap_or(false)),
                want,
                "ConditionKernelVersion={expr} on {release}"
            );
        }
        let fields = os_release();
        let id = fields
            .iter()
            .find(|(k, _)| k == "ID")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let os = [
            format!("ID={id}"),
            format!("ID!={id}"),
            format!("ID$={}*", id.chars().next().unwrap_or('x')),
            format!("ID!$={id}"),
            "VERSION_ID>=1".to_owned(),
            "VERSION_ID<1".to_owned(),
            "VERSION_ID>1.0~beta".to_owned(),
            "NO_SUCH_KEY=".to_owned(),
            "NO_SUCH_KEY!=x".to_owned(),
            "NO_SUCH_KEY<x".to_owned(),
            format!("ID={id} VERSION_ID>=1"),
            format!("ID={id} VERSION_ID<1"),
        ];
        for expr in os {
            let Some(want) = systemd(&format!("ConditionOSRelease={expr}")) else {
                continue;
            };
            assert_eq!(
                os_release_matches(&expr, &fields).unwrap_or(false),
                want,
                "ConditionOSRelease={expr}"
            );
        }
    }

    /// Firmware and credentials as `systemd-analyze condition` sees them,
    /// the credentials with a directory of the test's own.
    #[test]
    fn firmware_and_credential_conditions_as_systemd_analyze_says() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "x").unwrap();
        let systemd = |condition: &str| {
            systemd_verdict(
                condition,
                &[("CREDENTIALS_DIRECTORY", dir.path().as_os_str())],
            )
        };
        let dirs = [Some(dir.path().as_os_str().to_owned()), None];
        for name in ["token", "nothing", "../token", ""] {
            let ours = credential_passed(name, &dirs);
            assert_eq!(ours, name == "token", "{name:?}");
            if let Some(theirs) = systemd(&format!("ConditionCredential={name}")) {
                assert_eq!(ours, theirs, "ConditionCredential={name}");
            }
        }
        assert!(!credential_passed("token", &[None, None]));
        for what in ["uefi", "device-tree", "device-tree-compatible(foo,bar)"] {
            if let Some(theirs) = systemd(&format!("ConditionFirmware={what}")) {
                assert_eq!(firmware_matches(what), theirs, "ConditionFirmware={what}");
            }
        }
    }

    /// `ConditionNeedsUpdate=` on a directory of the test's own, stamped
    /// before, after and at the same second as `/usr`, as systemd-analyze
    /// says.
    #[test]
    fn needs_update_compares_the_stamp_with_usr_as_systemd_analyze_says() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_owned();
        let stamp = dir.path().join(".updated");
        let usr = Path::new("/usr/").metadata().unwrap();
        let set = |secs: i64, nsec: i64| {
            let at = std::time::UNIX_EPOCH
                + std::time::Duration::new(secs.cast_unsigned(), u32::try_from(nsec).unwrap());
            std::fs::File::options()
                .write(true)
                .open(&stamp)
                .unwrap()
                .set_modified(at)
                .unwrap();
        };
        let check = |want: bool, what: &str| {
            assert_eq!(needs_update(&d, Path::new("/usr/")), want, "{what}");
            if let Some(theirs) = systemd_verdict(&format!("ConditionNeedsUpdate={d}"), &[]) {
                assert_eq!(theirs, want, "systemd-analyze: {what}");
            }
        };
        check(true, "no stamp");
        std::fs::write(&stamp, "").unwrap();
        set(usr.mtime() + 10, 0);
        check(false, "stamped after /usr");
        set(usr.mtime() - 10, 0);
        check(true, "stamped before /usr");
        if usr.mtime_nsec() > 0 {
            set(usr.mtime(), usr.mtime_nsec());
            check(false, "stamped at /usr's time");
            // A stamp without nanoseconds at /usr's second: its
            // TIMESTAMP_NSEC= decides.
            let usr_nsec = usr.mtime() * 1_000_000_000 + usr.mtime_nsec();
            std::fs::write(&stamp, format!("TIMESTAMP_NSEC={usr_nsec}\n")).unwrap();
            set(usr.mtime(), 0);
            check(false, "TIMESTAMP_NSEC= at /usr's time");
            std::fs::write(&stamp, format!("TIMESTAMP_NSEC={}\n", usr_nsec - 1)).unwrap();
            set(usr.mtime(), 0);
            check(true, "TIMESTAMP_NSEC= before /usr's time");
        }
        assert!(needs_update("relative", Path::new("/usr/")));
        let k = "systemd.condition-needs-update";
        assert_eq!(
            cmdline_bool("quiet systemd.condition_needs_update=0", k),
            Some(false)
        );
        assert_eq!(
            cmdline_bool("systemd.condition-needs-update ro", k),
            Some(true)
        );
        assert_eq!(
            cmdline_bool(
                "systemd.condition-needs-update=1 systemd.condition-needs-update=no",
                k
            ),
            Some(false)
        );
        assert_eq!(cmdline_bool("systemd.condition-needs-updates=1", k), None);
    }

    /// `ConditionControlGroupController=` on this machine as
    /// systemd-analyze says, and the v2 rules over a made-up machine.
    #[test]
    fn control_group_controllers_as_systemd_analyze_says() {
        for arg in [
            "cpu",
            "memory",
            "io",
            "pids",
            "cpuset",
            "cpuacct",
            "blkio",
            "devices",
            "bpf-firewall",
            "bogus",
            "cpu memory",
            "cpu bogus",
            "io memory",
            "v1",
            "v2",
        ] {
            let ours = test("ControlGroupController", arg);
            if let Some(theirs) =
                systemd_verdict(&format!("ConditionControlGroupController={arg}"), &[])
            {
                assert_eq!(ours, theirs, "ConditionControlGroupController={arg}");
            }
        }
        let v2 = |c: &str| ["cpu", "memory", "pids"].contains(&c);
        assert!(control_group_controllers_hold("cpu memory", true, &v2));
        assert!(!control_group_controllers_hold("cpu io", true, &v2));
        assert!(control_group_controllers_hold("nothing-known", true, &v2));
        assert!(control_group_controllers_hold("v2", true, &v2));
        assert!(!control_group_controllers_hold("v1", true, &v2));
    }

    /// The pressure conditions: the figures read as systemd reads them, and
    /// on this machine what systemd-analyze says where the verdict does
    /// not hang on a figure that moves (a limit of 100%, a malformed value,
    /// a slice).
    #[test]
    fn pressure_conditions_read_the_stall_averages() {
        let text = "some avg10=19.09 avg60=31.81 avg300=19.70 total=1\nfull avg10=0.00 avg60=0.04 avg300=0.32 total=2\n";
        assert_eq!(pressure_average(text, "some", "avg10"), Some(1909));
        assert_eq!(pressure_average(text, "full", "avg60"), Some(4));
        assert_eq!(pressure_average(text, "full", "avg300"), Some(32));
        assert_eq!(
            pressure_average("some avg10=1.5 avg60=0 avg300=100.00\n", "some", "avg300"),
            Some(10_000)
        );
        assert_eq!(
            pressure_average("some avg10=1.5\n", "some", "avg10"),
            Some(150)
        );
        assert_eq!(pressure_average(text, "none", "avg10"), None);
        assert_eq!(parse_pressure_limit("20%"), Some((2000, "avg300")));
        assert_eq!(parse_pressure_limit("0.5%/10sec"), Some((50, "avg10")));
        assert_eq!(parse_pressure_limit("5‰/1min"), Some((50, "avg60")));
        assert_eq!(parse_pressure_limit("20%/2min"), None);
        assert_eq!(parse_pressure_limit("20"), None);
        assert_eq!(parse_pressure_limit("101%"), None);
        for kind in ["Memory", "CPU", "IO"] {
            for arg in [
                "100%",
                "100%/10sec",
                "bad",
                "20%/2min",
                "system.slice:100%",
                "nope.slice:0%",
                "x.slice:bad",
            ] {
                let ours = test(&format!("{kind}Pressure"), arg);
                if let Some(theirs) =
                    systemd_verdict(&format!("Condition{kind}Pressure={arg}"), &[])
                {
                    assert_eq!(ours, theirs, "Condition{kind}Pressure={arg}");
                }
            }
        }
    }

    /// `ConditionCPUFeature=` as systemd's own table has it: every name of
    /// the table, and names /proc/cpuinfo shows that the table lacks.
    #[test]
    fn cpu_features_as_systemd_analyze_says() {
        let mut names: Vec<&str> = vec![
            "hypervisor",
            "nx",
            "avx512f",
            "pclmulqdq",
            "bogus",
            "SSE2",
            "Avx2",
        ];
        for (_, _, bits) in crate::virt::CPU_FEATURES {
            names.extend(bits.iter().map(|(_, n)| *n));
        }
        let mut compared = 0;
        for name in names {
            let ours = test("CPUFeature", name);
            if let Some(theirs) = systemd_verdict(&format!("ConditionCPUFeature={name}"), &[]) {
                assert_eq!(ours, theirs, "ConditionCPUFeature={name}");
                compared += 1;
            }
        }
        if cfg!(target_arch = "x86_64") {
            assert!(
                test("CPUFeature", "sse2") && test("CPUFeature", "lm"),
                "every x86_64 CPU"
            );
        }
        assert!(!test("CPUFeature", "hypervisor"), "not in systemd's table");
        eprintln!("{compared} features compared with systemd-analyze");
    }

    /// `ConditionACPower=` over made-up power supplies, and this machine's
    /// as systemd-analyze sees it.
    #[test]
    fn ac_power_follows_the_supplies_as_systemd_does() {
        let sys = tempfile::tempdir().unwrap();
        let class = sys.path().join("class/power_supply");
        let supply = |name: &str, attrs: &[(&str, &str)]| {
            let d = class.join(name);
            std::fs::create_dir_all(&d).unwrap();
            for (k, v) in attrs {
                std::fs::write(d.join(k), format!("{v}\n")).unwrap();
            }
        };
        assert!(on_ac_power(sys.path()), "no supplies: on AC");
        supply("BAT0", &[("type", "Battery"), ("status", "Discharging")]);
        assert!(!on_ac_power(sys.path()), "a discharging battery");
        supply("AC", &[("type", "Mains"), ("online", "0")]);
        assert!(!on_ac_power(sys.path()), "the mains offline");
        supply("AC", &[("type", "Mains"), ("online", "1")]);
        assert!(on_ac_power(sys.path()), "the mains online");
        supply("AC", &[("type", "Mains"), ("online", "0")]);
        supply("BAT0", &[("type", "Battery"), ("status", "Full")]);
        assert!(on_ac_power(sys.path()), "a full battery, nothing online");
        supply(
            "BAT0",
            &[
                ("type", "Battery"),
                ("status", "Discharging"),
                ("scope", "Device"),
            ],
        );
        assert!(on_ac_power(sys.path()), "a mouse's battery");
        std::fs::remove_file(class.join("BAT0/scope")).unwrap();
        supply("BAT0", &[("type", "Battery"), ("status", "Discharging")]);
        // A USB-C supply online: it feeds the machine unless its port is
        // a source.
        let port_parent = sys.path().join("devices/usbc0");
        std::fs::create_dir_all(port_parent.join("port0")).unwrap();
        supply("ucsi", &[("type", "USB"), ("online", "1")]);
        std::os::unix::fs::symlink(&port_parent, class.join("ucsi/device")).unwrap();
        std::fs::create_dir_all(sys.path().join("class/typec")).unwrap();
        std::os::unix::fs::symlink(
            port_parent.join("port0"),
            sys.path().join("class/typec/port0"),
        )
        .unwrap();
        std::fs::write(port_parent.join("port0/power_role"), "source [sink]\n").unwrap();
        assert!(on_ac_power(sys.path()), "USB-C in sink mode");
        std::fs::write(port_parent.join("port0/power_role"), "[source] sink\n").unwrap();
        assert!(!on_ac_power(sys.path()), "USB-C in source mode");
        for (arg, want) in [("true", true), ("false", false)] {
            let ours = test("ACPower", arg);
            assert_eq!(ours, want == on_ac_power(Path::new("/sys")));
            if let Some(theirs) = systemd_verdict(&format!("ConditionACPower={arg}"), &[]) {
                assert_eq!(ours, theirs, "ConditionACPower={arg}");
            }
        }
    }

    #[test]
    fn versions_compare_as_systemds_strverscmp_improved() {
        use std::cmp::Ordering::{Equal, Greater, Less};
        for (a, b, want) in [
            ("123", "123", Equal),
            ("00123", "123", Equal),
            ("123~rc1", "123", Less),
            ("123", "123-1", Less),
            ("123-1", "123.1", Less),
            ("123^1", "123", Greater),
            ("123a", "123.a", Greater),
            ("12", "122", Less),
            ("abc", "abcd", Less),
            ("1.2", "1.10", Less),
            ("2", "10", Less),
            ("1a", "1", Greater),
            ("", "1", Less),
        ] {
            assert_eq!(strverscmp_improved(a, b), want, "{a} vs {b}");
            assert_eq!(strverscmp_improved(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn counts_compare_with_systemds_operators() {
        let parse = |s: &str| s.parse::<u64>().ok();
        for (arg, want) in [
            ("2", true),
            (">=2", true),
            ("> 2", false),
            (">1", true),
            ("<=2", true),
            ("<2", false),
            ("=2", true),
            ("!=2", false),
            ("!= 3", true),
        ] {
            assert_eq!(compare_count(arg, Some(2), parse), Ok(want), "{arg}");
        }
        assert_eq!(compare_count("=x", Some(2), parse), Err(INVALID));
        assert_eq!(
            compare_count(">=1", None, parse),
            Ok(false),
            "unknown count"
        );
    }

    /// CPUs, memory, capabilities and security: what the machine has.
    #[test]
    fn machine_conditions_look_at_the_machine() {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        assert!(test("CPUs", &format!("={cpus}")));
        assert!(test("CPUs", ">1") == (cpus > 1));
        assert!(!test("CPUs", "<1"));
        assert!(test("Memory", ">=1M"));
        assert!(!test("Memory", "<1K"));
        let bounding = crate::unit::value::process::own_capabilities("CapBnd").unwrap();
        assert_eq!(
            test("Capability", "CAP_SYS_TIME"),
            bounding & (1 << 25) != 0
        );
        assert_eq!(test("Capability", "cap_chown"), bounding & 1 != 0);
        assert!(!test("Capability", "CAP_NO_SUCH_THING"));
        assert_eq!(
            test("Security", "selinux"),
            Path::new("/sys/fs/selinux/enforce").exists()
        );
        assert!(!test("Security", "no-such-module"));
        assert!(!test("KernelVersion", "<1"));
        assert!(test("KernelVersion", ">=1"));
    }

    /// As systemd's `condition_test_virtualization()`: a container hides
    /// the VM it runs in, `yes`/`no` ask for any, names match exactly.
    #[test]
    fn virtualization_is_a_container_first_then_a_vm() {
        let kvm = Some(("kvm", false));
        let docker = Some(("docker", true));
        for (found, arg, want) in [
            (kvm, "vm", true),
            (kvm, "container", false),
            (kvm, "kvm", true),
            (kvm, "qemu", false),
            (kvm, "yes", true),
            (kvm, "no", false),
            (docker, "vm", false),
            (docker, "container", true),
            (docker, "docker", true),
            (docker, "kvm", false),
            (None, "vm", false),
            (None, "container", false),
            (None, "no", true),
            (None, "kvm", false),
        ] {
            assert_eq!(virtualization_is(found, arg), want, "{found:?} {arg}");
        }
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

    #[test]
    fn wildcards_match_as_fnmatch_and_in_bounded_time() {
        for (pattern, text, matches) in [
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*", "a", true),
            ("*a", "ba", true),
            ("*a", "ab", false),
            ("web@*.service", "web@1-127.0.0.1:80.service", true),
            ("web@*.service", "web@1.socket", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("[a-c]?x", "bzx", true),
            ("[!a-c]?x", "bzx", false),
            ("[ab", "[ab", true),
            ("*[", "x[", true),
            ("**a**", "xxaxx", true),
        ] {
            assert_eq!(
                wildcard(pattern.as_bytes(), text.as_bytes()),
                matches,
                "{pattern} {text}"
            );
        }
        // Exponential for a backtracking matcher (this test would not
        // end); pattern times text steps here.
        let hostile = "*?".repeat(30) + "x";
        let text = "a".repeat(4000);
        assert!(!wildcard(hostile.as_bytes(), text.as_bytes()));
    }

    #[test]
    fn globs_are_glob3_with_braces() {
        // clamav-daemon's ConditionPathExistsGlob=/var/lib/clamav/main.{c[vl]d,inc}
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        assert!(!glob_exists(&format!("{d}/main.{{c[vl]d,inc}}")));
        std::fs::write(dir.path().join("main.cld"), "").unwrap();
        assert!(glob_exists(&format!("{d}/main.{{c[vl]d,inc}}")));
        assert!(!glob_exists(&format!("{d}/main.{{c[!l]d,inc}}")));
        std::fs::create_dir(dir.path().join("main.inc.d")).unwrap();
        assert!(glob_exists(&format!("{d}/main.{{cvd,inc}}*")));
        assert!(!glob_exists(&format!("{d}/main.{{cvd,inc}}")));
        // Wildcards in a directory component; not matching a leading dot.
        std::fs::create_dir_all(dir.path().join("sub1/deep")).unwrap();
        std::fs::write(dir.path().join("sub1/deep/x.conf"), "").unwrap();
        assert!(glob_exists(&format!("{d}/sub?/*/x.conf")));
        assert!(glob_exists(&format!("{d}/s[a-z]b[0-9]/deep/*.conf")));
        assert!(!glob_exists(&format!("{d}/sub?/*/y.conf")));
        std::fs::write(dir.path().join(".hidden"), "").unwrap();
        assert!(!glob_exists(&format!("{d}/*hidden")));
        assert!(glob_exists(&format!("{d}/.hid*")));
        assert_eq!(expand_braces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
        assert_eq!(expand_braces("a{b}c"), ["a{b}c"]);
    }
}
