//! Process attributes of the execution environment, read the way systemd's
//! `load-fragment.c` reads them: I/O scheduling classes, CPU scheduling
//! policies, CPU sets (`CPUAffinity=`), nanosecond spans (`TimerSlackNSec=`),
//! `SecureBits=`, `CoredumpFilter=` and `Personality=`.

use super::int;
use super::words::{self, ExtractFlags};
use super::{ValueError, WHITESPACE};

/// The I/O scheduling classes by number (`IOPRIO_CLASS_*`).
pub const IOPRIO_CLASSES: [&str; 4] = ["none", "realtime", "best-effort", "idle"];
/// `IOPRIO_CLASS_BE`.
pub const IOPRIO_CLASS_BE: u32 = 2;
/// The priority systemd pairs with a class when none was given, and what
/// `IOPRIO_CLASS_NONE` means (`IOPRIO_DEFAULT_CLASS_AND_PRIO`: best-effort, 4).
pub const IOPRIO_DEFAULT_PRIORITY: u32 = 4;

/// `ioprio_class_from_string()`: a class name or a number up to
/// `IOPRIO_N_CLASSES` (8; the kernel refuses the unnamed ones at exec).
pub fn ioprio_class(s: &str) -> Option<u32> {
    if let Some(i) = IOPRIO_CLASSES.iter().position(|n| *n == s) {
        return u32::try_from(i).ok();
    }
    int::parse_u32(s).ok().filter(|n| *n <= 8)
}

/// The name systemd prints for an I/O scheduling class: its word, or the
/// number.
pub fn ioprio_class_name(class: u32) -> String {
    usize::try_from(class)
        .ok()
        .and_then(|i| IOPRIO_CLASSES.get(i))
        .map_or_else(|| class.to_string(), |n| (*n).to_string())
}

/// `IOPRIO_PRIO_VALUE(class, data)` as `ioprio_set(2)` takes it.
pub fn ioprio_value(class: u32, data: u32) -> i32 {
    i32::try_from((class << 13) | (data & 0x1fff)).unwrap_or(0)
}

/// The CPU scheduling policies systemd names (`sched_policy_table`).
const SCHED_POLICIES: [(&str, u32); 5] = [
    ("other", 0),
    ("fifo", 1),
    ("rr", 2),
    ("batch", 3),
    ("idle", 5),
];

/// `sched_policy_from_string()`: a policy name or any number up to `INT_MAX`.
pub fn sched_policy(s: &str) -> Option<u32> {
    if let Some((_, p)) = SCHED_POLICIES.iter().find(|(n, _)| *n == s) {
        return Some(*p);
    }
    int::parse_u32(s).ok().filter(|n| i32::try_from(*n).is_ok())
}

/// The name systemd prints for a policy: its word, or the number.
pub fn sched_policy_name(policy: u32) -> String {
    SCHED_POLICIES
        .iter()
        .find(|(_, p)| *p == policy)
        .map_or_else(|| policy.to_string(), |(n, _)| (*n).to_string())
}

/// `sched_get_priority_min()`/`_max()` of a policy systemd names.
pub fn sched_priority_range(policy: u32) -> Option<(u32, u32)> {
    match policy {
        1 | 2 => Some((1, 99)),
        0 | 3 | 5 => Some((0, 0)),
        _ => None,
    }
}

/// The largest CPU number a set can hold (systemd's `CPU_SIZE_MAX` is 8192
/// bits).
pub const CPU_SET_MAX: u32 = 8192;

/// A set of CPUs. `allocated` distinguishes an empty set that was written
/// (`CPUAffinity=3-1`, which systemd keeps and the kernel refuses) from no
/// set at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSet {
    pub cpus: Vec<u32>,
}

impl CpuSet {
    /// The union of two sets.
    #[must_use]
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        let mut cpus: Vec<u32> = self.cpus.iter().chain(&other.cpus).copied().collect();
        cpus.sort_unstable();
        cpus.dedup();
        CpuSet { cpus }
    }

    /// `cpu_set_to_range_string()`: `0 2-3 5`.
    pub fn to_range_string(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < self.cpus.len() {
            let start = self.cpus[i];
            let mut end = start;
            while i + 1 < self.cpus.len() && self.cpus[i + 1] == end + 1 {
                i += 1;
                end = self.cpus[i];
            }
            out.push(if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            });
            i += 1;
        }
        out.join(" ")
    }

    /// The set as the `unsigned long` words `sched_setaffinity(2)` takes.
    pub fn mask(&self) -> Vec<u64> {
        let words = self.cpus.last().map_or(0, |m| m / 64 + 1);
        let mut mask = vec![0u64; usize::try_from(words).unwrap_or(0)];
        for c in &self.cpus {
            if let Some(w) = usize::try_from(c / 64).ok().and_then(|i| mask.get_mut(i)) {
                *w |= 1 << (c % 64);
            }
        }
        mask
    }
}

/// Why a CPU set was refused, in systemd's words; the first part of the
/// message names the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuSetError {
    /// `Failed to parse CPU affinity '<word>'`.
    Word(String),
    /// `Cannot add CPU <n> to set: Numerical result out of range`.
    Range(u32),
    /// `Invalid value for CPUAffinity=: <value>` (unbalanced quotes).
    Syntax,
}

/// systemd's `parse_cpu_set_full()`: words separated by whitespace or
/// commas, each `N` or `N-M`. A reversed range adds nothing (with a warning,
/// returned in the second element) but still counts as a set.
pub fn parse_cpu_set(s: &str) -> Result<(CpuSet, Vec<String>), CpuSetError> {
    let mut seps = String::from_utf8_lossy(WHITESPACE).into_owned();
    seps.push(',');
    let flags = ExtractFlags {
        unquote: true,
        ..ExtractFlags::default()
    };
    let list = words::extract_words_with(s, &seps, flags).map_err(|_| CpuSetError::Syntax)?;
    let mut cpus = Vec::new();
    let mut warnings = Vec::new();
    for word in list {
        let (lower, upper) = parse_range(&word).ok_or_else(|| CpuSetError::Word(word.clone()))?;
        if lower > upper {
            warnings.push(format!(
                "Range '{word}' is invalid, {lower} > {upper}, ignoring."
            ));
            continue;
        }
        for c in lower..=upper {
            if c >= CPU_SET_MAX {
                return Err(CpuSetError::Range(c));
            }
            cpus.push(c);
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok((CpuSet { cpus }, warnings))
}

/// systemd's `parse_range()`: `N` or `N-M`, each a `safe_atou()` number.
fn parse_range(word: &str) -> Option<(u32, u32)> {
    match word.split_once('-') {
        None => int::parse_u32(word).ok().map(|n| (n, n)),
        Some((_, "")) => None,
        Some((l, u)) => Some((int::parse_u32(l).ok()?, int::parse_u32(u).ok()?)),
    }
}

/// systemd's `parse_nsec()`: a sum of `<number>[.<fraction>][<unit>]`
/// terms, a bare number being nanoseconds, or `infinity` (`u64::MAX`).
pub fn parse_nsec(input: &str) -> Result<u64, ValueError> {
    const NSEC_PER_USEC: u64 = 1_000;
    const NSEC_PER_MSEC: u64 = 1_000_000;
    const NSEC_PER_SEC: u64 = 1_000_000_000;
    const NSEC_PER_MINUTE: u64 = 60 * NSEC_PER_SEC;
    const NSEC_PER_HOUR: u64 = 60 * NSEC_PER_MINUTE;
    const NSEC_PER_DAY: u64 = 24 * NSEC_PER_HOUR;
    const NSEC_PER_WEEK: u64 = 7 * NSEC_PER_DAY;
    const NSEC_PER_MONTH: u64 = 2_629_800 * NSEC_PER_SEC;
    const NSEC_PER_YEAR: u64 = 31_557_600 * NSEC_PER_SEC;
    const UNITS: &[(&str, u64)] = &[
        ("seconds", NSEC_PER_SEC),
        ("second", NSEC_PER_SEC),
        ("sec", NSEC_PER_SEC),
        ("s", NSEC_PER_SEC),
        ("minutes", NSEC_PER_MINUTE),
        ("minute", NSEC_PER_MINUTE),
        ("min", NSEC_PER_MINUTE),
        ("months", NSEC_PER_MONTH),
        ("month", NSEC_PER_MONTH),
        ("M", NSEC_PER_MONTH),
        ("msec", NSEC_PER_MSEC),
        ("ms", NSEC_PER_MSEC),
        ("m", NSEC_PER_MINUTE),
        ("hours", NSEC_PER_HOUR),
        ("hour", NSEC_PER_HOUR),
        ("hr", NSEC_PER_HOUR),
        ("h", NSEC_PER_HOUR),
        ("days", NSEC_PER_DAY),
        ("day", NSEC_PER_DAY),
        ("d", NSEC_PER_DAY),
        ("weeks", NSEC_PER_WEEK),
        ("week", NSEC_PER_WEEK),
        ("w", NSEC_PER_WEEK),
        ("years", NSEC_PER_YEAR),
        ("year", NSEC_PER_YEAR),
        ("y", NSEC_PER_YEAR),
        ("usec", NSEC_PER_USEC),
        ("us", NSEC_PER_USEC),
        ("\u{3bc}s", NSEC_PER_USEC),
        ("\u{b5}s", NSEC_PER_USEC),
        ("nsec", 1),
        ("ns", 1),
    ];
    let invalid = || ValueError::invalid(format_args!("not a nanosecond span: '{input}'"));
    let range = || ValueError::range(format_args!("nanosecond span out of range: '{input}'"));
    let is_ws = |c: u8| WHITESPACE.contains(&c);
    let text = input.trim_matches(|c: char| u8::try_from(c).is_ok_and(is_ws));
    if text == "infinity" {
        return Ok(u64::MAX);
    }
    let bytes = text.as_bytes();
    let skip = |mut at: usize, pred: &dyn Fn(u8) -> bool| {
        while at < bytes.len() && pred(bytes[at]) {
            at += 1;
        }
        at
    };
    let mut pos = 0;
    let mut total: u64 = 0;
    let mut something = false;
    loop {
        pos = skip(pos, &is_ws);
        if pos >= bytes.len() {
            return if something { Ok(total) } else { Err(invalid()) };
        }
        let start = pos;
        pos = skip(pos, &|c| c.is_ascii_digit());
        let whole = &text[start..pos];
        let mut fraction = "";
        if bytes.get(pos) == Some(&b'.') {
            let from = pos + 1;
            pos = skip(from, &|c| c.is_ascii_digit());
            fraction = &text[from..pos];
            if fraction.is_empty() {
                return Err(invalid());
            }
        } else if whole.is_empty() {
            return Err(invalid());
        }
        let number: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| range())?
        };
        let unit_at = skip(pos, &is_ws);
        let (after, multiplier) = UNITS
            .iter()
            .find(|(name, _)| text[unit_at..].starts_with(name))
            .map_or((unit_at, 1), |&(name, m)| (unit_at + name.len(), m));
        if after == pos && after < bytes.len() && !is_ws(bytes[after]) {
            return Err(invalid());
        }
        pos = after;
        total = number
            .checked_mul(multiplier)
            .and_then(|k| total.checked_add(k))
            .ok_or_else(range)?;
        let mut scale = multiplier / 10;
        for digit in fraction.bytes() {
            total = total
                .checked_add(u64::from(digit - b'0') * scale)
                .ok_or_else(range)?;
            scale /= 10;
        }
        if total == u64::MAX {
            return Err(range());
        }
        something = true;
    }
}

/// `SecureBits=` words and their bits, in the order systemd prints them.
const SECURE_BITS: [(&str, u32); 6] = [
    ("keep-caps", 4),
    ("keep-caps-locked", 5),
    ("no-setuid-fixup", 2),
    ("no-setuid-fixup-locked", 3),
    ("noroot", 0),
    ("noroot-locked", 1),
];

/// systemd's `secure_bits_from_string()`: the bits of the known words;
/// unknown words are skipped. `None` for unbalanced quotes.
pub fn parse_secure_bits(s: &str) -> Option<u32> {
    let flags = ExtractFlags {
        unquote: true,
        retain_escape: true,
        ..ExtractFlags::default()
    };
    let list = words::extract_words(s, flags).ok()?;
    Some(
        list.iter()
            .filter_map(|w| SECURE_BITS.iter().find(|(n, _)| n == w))
            .fold(0, |acc, (_, bit)| acc | (1 << bit)),
    )
}

/// systemd's `secure_bits_to_string()`.
pub fn secure_bits_to_string(bits: u32) -> String {
    SECURE_BITS
        .iter()
        .filter(|(_, bit)| bits & (1 << bit) != 0)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `CoredumpFilter=` words, by bit.
const COREDUMP_FILTERS: [&str; 9] = [
    "private-anonymous",
    "shared-anonymous",
    "private-file-backed",
    "shared-file-backed",
    "elf-headers",
    "private-huge",
    "shared-huge",
    "private-dax",
    "shared-dax",
];

/// systemd's `coredump_filter_mask_from_string()`: words, `default`
/// (`0x33`), `all` (`0xffffffff`) or hexadecimal numbers, OR'ed together.
pub fn parse_coredump_filter(s: &str) -> Result<u64, ValueError> {
    let list = words::extract_words(s, ExtractFlags::default())?;
    let mut mask: u64 = 0;
    for w in list {
        match w.as_str() {
            "default" => mask |= 0x33,
            "all" => mask = u64::from(u32::MAX),
            _ => {
                if let Some(bit) = COREDUMP_FILTERS.iter().position(|n| *n == w) {
                    mask |= 1 << bit;
                    continue;
                }
                let hex = w
                    .strip_prefix("0x")
                    .or_else(|| w.strip_prefix("0X"))
                    .unwrap_or(&w);
                if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(ValueError::invalid(format_args!("not a filter: '{w}'")));
                }
                mask |= u64::from_str_radix(hex, 16)
                    .map_err(|_| ValueError::range(format_args!("too large: '{w}'")))?;
            }
        }
    }
    Ok(mask)
}

/// `PER_LINUX`.
pub const PER_LINUX: u64 = 0;
/// `PER_LINUX32`.
pub const PER_LINUX32: u64 = 0x0008;

/// The architecture this build runs on and its secondary one, in systemd's
/// names (`architecture_to_string()`).
const fn native_architectures() -> (&'static str, Option<&'static str>) {
    if cfg!(target_arch = "x86_64") {
        ("x86-64", Some("x86"))
    } else if cfg!(target_arch = "x86") {
        ("x86", None)
    } else if cfg!(all(target_arch = "aarch64", target_endian = "little")) {
        ("arm64", Some("arm"))
    } else if cfg!(all(target_arch = "aarch64", target_endian = "big")) {
        ("arm64-be", Some("arm-be"))
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        ("ppc64-le", None)
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "big")) {
        ("ppc64", Some("ppc"))
    } else if cfg!(target_arch = "s390x") {
        ("s390x", Some("s390"))
    } else if cfg!(target_arch = "riscv64") {
        ("riscv64", None)
    } else if cfg!(target_arch = "loongarch64") {
        ("loongarch64", None)
    } else {
        ("", None)
    }
}

/// systemd's `personality_from_string()`: the native architecture is
/// `PER_LINUX`, the secondary one (`x86` on `x86-64`) `PER_LINUX32`; any
/// other name is refused.
pub fn personality(s: &str) -> Option<u64> {
    let (native, secondary) = native_architectures();
    if !native.is_empty() && s == native {
        Some(PER_LINUX)
    } else if secondary == Some(s) {
        Some(PER_LINUX32)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_sets_read_and_print_as_systemd_does() {
        let (set, warn) = parse_cpu_set("0 2-3").unwrap();
        assert_eq!(set.to_range_string(), "0 2-3");
        assert!(warn.is_empty());
        let (set, _) = parse_cpu_set("1,,2 3").unwrap();
        assert_eq!(set.to_range_string(), "1-3");
        let (set, warn) = parse_cpu_set("3-1").unwrap();
        assert!(set.cpus.is_empty());
        assert_eq!(warn, ["Range '3-1' is invalid, 3 > 1, ignoring."]);
        assert_eq!(parse_cpu_set("abc"), Err(CpuSetError::Word("abc".into())));
        assert_eq!(
            parse_cpu_set("\"1 2\""),
            Err(CpuSetError::Word("1 2".into()))
        );
        assert_eq!(parse_cpu_set("0-8192"), Err(CpuSetError::Range(8192)));
        assert_eq!(
            parse_cpu_set("1-").map(|_| ()),
            Err(CpuSetError::Word("1-".into()))
        );
        let (a, _) = parse_cpu_set("0,1").unwrap();
        let (b, _) = parse_cpu_set("1-2 65").unwrap();
        let u = a.union(&b);
        assert_eq!(u.to_range_string(), "0-2 65");
        assert_eq!(u.mask(), vec![0b111, 0b10]);
    }

    #[test]
    fn nanoseconds_take_units_and_fractions() {
        assert_eq!(parse_nsec("50us"), Ok(50_000));
        assert_eq!(parse_nsec("1.5us 3ns"), Ok(1503));
        assert_eq!(parse_nsec("1s"), Ok(1_000_000_000));
        assert_eq!(parse_nsec("7"), Ok(7));
        assert_eq!(parse_nsec("0"), Ok(0));
        assert_eq!(parse_nsec("infinity"), Ok(u64::MAX));
        assert!(parse_nsec("abc").is_err());
        assert!(parse_nsec("").is_err());
        assert!(parse_nsec("3.").is_err());
    }

    #[test]
    fn secure_bits_and_coredump_filters() {
        assert_eq!(parse_secure_bits("noroot keep-caps bogus"), Some(0b1_0001));
        assert_eq!(secure_bits_to_string(0b1_0001), "keep-caps noroot");
        assert_eq!(
            secure_bits_to_string(
                parse_secure_bits(
                    "keep-caps-locked no-setuid-fixup no-setuid-fixup-locked noroot-locked"
                )
                .unwrap()
            ),
            "keep-caps-locked no-setuid-fixup no-setuid-fixup-locked noroot-locked"
        );
        assert_eq!(
            parse_coredump_filter("default private-huge 0x200"),
            Ok(0x233)
        );
        assert_eq!(parse_coredump_filter("all"), Ok(0xffff_ffff));
        assert_eq!(
            parse_coredump_filter(
                "private-anonymous shared-anonymous private-file-backed shared-file-backed elf-headers private-huge shared-huge private-dax shared-dax"
            ),
            Ok(0x1ff)
        );
        assert!(parse_coredump_filter("0xG").is_err());
        assert!(parse_coredump_filter("bogus").is_err());
    }

    #[test]
    fn scheduling_names() {
        assert_eq!(ioprio_class("idle"), Some(3));
        assert_eq!(ioprio_class("1"), Some(1));
        assert_eq!(ioprio_class("8"), Some(8));
        assert_eq!(ioprio_class("9"), None);
        assert_eq!(ioprio_class_name(8), "8");
        assert_eq!(ioprio_value(2, 4), (2 << 13) | 4);
        assert_eq!(sched_policy("rr"), Some(2));
        assert_eq!(sched_policy("4"), Some(4));
        assert_eq!(sched_policy_name(5), "idle");
        assert_eq!(sched_policy_name(4), "4");
        assert_eq!(sched_priority_range(1), Some((1, 99)));
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn personalities_of_this_machine() {
        assert_eq!(personality("x86-64"), Some(PER_LINUX));
        assert_eq!(personality("x86"), Some(PER_LINUX32));
        assert_eq!(personality("arm64"), None);
    }
}

/// Capability names by number, as the kernel numbers them (0 to 40).
pub const CAPABILITIES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// One of flint's own capability sets from `/proc/self/status` (`field`:
/// `CapPrm`, `CapEff`, `CapBnd`, ...); `None` where it cannot be read.
pub fn own_capabilities(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// One capability by name (any case) or number, as systemd's
/// `capability_from_name()`.
pub fn capability_from_name(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return (n < 64).then_some(n);
    }
    let lower = name.to_ascii_lowercase();
    CAPABILITIES
        .iter()
        .position(|c| *c == lower)
        .and_then(|i| u32::try_from(i).ok())
}

/// The capability set that `assignments` of `CapabilityBoundingSet=` or
/// `AmbientCapabilities=` give, starting from `initial` (all for the
/// bounding set, none for the ambient one), as systemd's
/// `config_parse_capability_set()`: a leading `~` inverts a list; the first
/// list replaces the set, later ones add to it (or, inverted, take away from
/// it); an empty assignment is the empty set (`~` alone: all). Unknown
/// names are skipped.
pub fn capability_set<'a>(assignments: impl IntoIterator<Item = &'a str>, initial: u64) -> u64 {
    let mut set = initial;
    for value in assignments {
        let (invert, list) = match value.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let sum = list
            .split_whitespace()
            .filter_map(capability_from_name)
            .fold(0u64, |acc, c| acc | (1u64 << c));
        if sum == 0 || set == initial {
            set = if invert { !sum } else { sum };
        } else if invert {
            set &= !sum;
        } else {
            set |= sum;
        }
    }
    set
}

#[cfg(test)]
mod capability_tests {
    use super::*;

    #[test]
    fn capability_sets_follow_systemds_rules() {
        let all = u64::MAX;
        let bind = 1u64 << 10;
        let raw = 1u64 << 13;
        assert_eq!(capability_from_name("CAP_NET_BIND_SERVICE"), Some(10));
        assert_eq!(capability_from_name("cap_net_raw"), Some(13));
        assert_eq!(capability_from_name("12"), Some(12));
        assert_eq!(capability_from_name("CAP_NOPE"), None);
        assert_eq!(capability_set(["CAP_NET_BIND_SERVICE"], 0), bind);
        // Later lists add; an empty assignment resets.
        assert_eq!(
            capability_set(["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"], 0),
            bind | raw
        );
        assert_eq!(capability_set(["CAP_NET_RAW", ""], 0), 0);
        // An empty assignment is the empty set, which later lists add to.
        assert_eq!(capability_set(["CAP_NET_RAW", ""], all), 0);
        assert_eq!(capability_set(["", "CAP_NET_RAW"], all), raw);
        // Bounding set: the first list replaces "all"; ~ inverts.
        assert_eq!(capability_set(["CAP_NET_BIND_SERVICE"], all), bind);
        assert_eq!(capability_set(["~CAP_NET_RAW"], all), !raw);
        assert_eq!(
            capability_set(["CAP_NET_BIND_SERVICE CAP_NET_RAW", "~CAP_NET_RAW"], all),
            bind
        );
        assert_eq!(capability_set(["CAP_NOPE"], all), 0);
        assert_eq!(capability_set(["~"], all), all);
    }
}
