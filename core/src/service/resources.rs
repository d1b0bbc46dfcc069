//! Resource control: what a service's cgroup settings write into each
//! controller's files, in cgroup v2 and in cgroup v1 (see
//! [`crate::cgroup`]), as systemd 252's `cgroup_context_apply()` does.
//!
//! - `TasksMax=` ([`super::tasks`]): `pids.max`, for every service.
//! - `MemoryMin=`, `MemoryLow=`, `MemoryHigh=`, `MemoryMax=`,
//!   `MemorySwapMax=`: `memory.min`, `.low`, `.high`, `.max`, `.swap.max`
//!   in v2; `MemoryLimit=` stands in for `MemoryMax=` where no v2 setting is
//!   given. In v1 only one limit exists, `memory.limit_in_bytes`:
//!   `MemoryMax=` if any v2 setting is given, else `MemoryLimit=`.
//! - `CPUWeight=` (or `CPUShares=` converted), `CPUQuota=` with
//!   `CPUQuotaPeriodSec=`: `cpu.weight` (`cpu.idle` for `idle`) and
//!   `cpu.max` in v2; `cpu.shares`, `cpu.cfs_period_us` and
//!   `cpu.cfs_quota_us` in v1.
//!
//! A controller is used only for a service that sets one of its settings,
//! except that every service gets `DefaultTasksMax=` where `pids` is a v2
//! controller. Joining a v1 hierarchy costs each process start an RCU
//! grace period in the kernel (about 30 ms on a busy machine, while the
//! spawn waits), so on v1 only a service that sets `TasksMax=` gets a
//! `pids` cgroup.

use crate::cgroup::{Controller, Hierarchy};
use crate::unit::load::Unit;

/// `CGROUP_LIMIT_MAX`: no limit.
const LIMIT_MAX: u64 = u64::MAX;
/// `CGROUP_WEIGHT_DEFAULT` and its bounds.
const WEIGHT_DEFAULT: u64 = 100;
const WEIGHT_MIN: u64 = 1;
const WEIGHT_MAX: u64 = 10_000;
/// `CGROUP_CPU_SHARES_DEFAULT` and its bounds.
const SHARES_DEFAULT: u64 = 1024;
const SHARES_MIN: u64 = 2;
const SHARES_MAX: u64 = 262_144;
const USEC_PER_SEC: u64 = 1_000_000;
const USEC_PER_MSEC: u64 = 1_000;
/// `CGROUP_CPU_QUOTA_DEFAULT_PERIOD_USEC`.
const DEFAULT_PERIOD: u64 = 100 * USEC_PER_MSEC;

/// A memory setting's value: bytes, a share of physical memory, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    Infinity,
    Bytes(u64),
    /// Permyriad of physical memory (`50%` is 5000).
    Permyriad(u64),
}

impl Memory {
    /// The limit in bytes (`u64::MAX` for none).
    pub fn bytes(self) -> u64 {
        match self {
            Memory::Infinity => LIMIT_MAX,
            Memory::Bytes(n) => n,
            // systemd's physical_memory_scale(): in whole pages.
            Memory::Permyriad(p) => {
                let page = page_size();
                let pages = physical_memory() / page;
                pages.saturating_mul(p) / 10_000 * page
            }
        }
    }
}

/// Parses a memory setting as systemd's `config_parse_memory_limit()`:
/// `infinity`, a share of physical memory (`%`, `‰`, `‱`, at most 100%),
/// or a size with base-1024 suffixes. Zero (also a share that comes to
/// less than a page) is refused except where it means "no protection"
/// (`MemoryMin=`, `MemoryLow=`, `MemorySwapMax=`). The error is systemd's
/// warning.
pub fn parse_memory(key: &str, value: &str) -> Result<Memory, String> {
    let v = value.trim();
    if v == "infinity" {
        return Ok(Memory::Infinity);
    }
    let (memory, bytes) = if let Ok(p) = crate::unit::value::percent::parse_permyriad(v) {
        (Memory::Permyriad(p), Memory::Permyriad(p).bytes())
    } else {
        let bytes = crate::unit::value::size::parse_size_iec(v)
            .map_err(|e| format!("Invalid memory limit '{value}', ignoring: {}", e.strerror()))?;
        (Memory::Bytes(bytes), bytes)
    };
    let zero_ok = matches!(key, "MemorySwapMax" | "MemoryLow" | "MemoryMin");
    if bytes == LIMIT_MAX || (bytes == 0 && !zero_ok) {
        return Err(format!("Memory limit '{value}' out of range, ignoring."));
    }
    Ok(memory)
}

/// Parses `CPUQuota=`: a share of one CPU (`%`, `‰`, `‱`), which may
/// exceed 100% (several CPUs), in permyriad.
pub fn parse_cpu_quota(value: &str) -> Result<u64, String> {
    match crate::unit::value::percent::parse_permyriad_unbounded(value.trim()) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("Invalid CPU quota '{value}', ignoring.")),
    }
}

/// Parses `CPUWeight=` (1-10000, or `idle`, stored as 0).
pub fn parse_cpu_weight(value: &str) -> Result<u64, String> {
    let v = value.trim();
    if v == "idle" {
        return Ok(0);
    }
    crate::unit::value::int::parse_u64(v)
        .ok()
        .filter(|w| (WEIGHT_MIN..=WEIGHT_MAX).contains(w))
        .ok_or_else(|| format!("Invalid CPU weight, ignoring: {value}"))
}

/// Parses `CPUShares=` (2-262144).
pub fn parse_cpu_shares(value: &str) -> Result<u64, String> {
    crate::unit::value::int::parse_u64(value.trim())
        .ok()
        .filter(|s| (SHARES_MIN..=SHARES_MAX).contains(s))
        .ok_or_else(|| format!("Invalid CPU shares, ignoring: {value}"))
}

/// What one controller gets for a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    /// Files and values, in the order they are written.
    pub files: Vec<(&'static str, String)>,
    /// Settings the unit gives that this hierarchy has no file for.
    pub unsupported: Vec<&'static str>,
}

/// Whether the unit sets any of the controller's settings itself (for
/// `pids`: `TasksMax=`; its default applies to every service anyway).
pub fn configured(unit: &Unit, section: &str, controller: Controller) -> bool {
    let keys: &[&str] = match controller {
        Controller::Pids => &["TasksMax"],
        Controller::Memory => &[
            "MemoryMin",
            "MemoryLow",
            "MemoryHigh",
            "MemoryMax",
            "MemorySwapMax",
            "MemoryLimit",
        ],
        Controller::Cpu => &["CPUWeight", "CPUShares", "CPUQuota"],
    };
    keys.iter().any(|k| unit.get(section, k).is_some())
}

/// What the unit's settings write for `controller` in `hierarchy`; `None`
/// when the unit does not need the controller.
pub fn plan(
    unit: &Unit,
    section: &str,
    controller: Controller,
    hierarchy: &Hierarchy,
) -> Option<Apply> {
    let unified = *hierarchy == Hierarchy::Unified;
    let mut files = Vec::new();
    let mut unsupported = Vec::new();
    match controller {
        Controller::Pids => {
            // A v1 hierarchy is joined by each process before it runs,
            // which costs the kernel an RCU grace period (30 ms here) per
            // start: there, only a service that sets TasksMax= pays it.
            if !unified && !configured(unit, section, controller) {
                return None;
            }
            let max = super::tasks::limit(unit, section);
            files.push((
                "pids.max",
                max.map_or_else(|| "max".into(), |n| n.to_string()),
            ));
        }
        Controller::Memory => {
            if !configured(unit, section, controller) {
                return None;
            }
            // Kept in bytes by the loader, u64::MAX for infinity.
            let get = |key: &str| unit.get_u64(section, key);
            // systemd's unit_has_unified_memory_config(): a protection
            // above zero or a limit below infinity.
            let has_v2 = ["MemoryMin", "MemoryLow"]
                .iter()
                .any(|k| get(k).is_some_and(|v| v > 0))
                || ["MemoryHigh", "MemoryMax", "MemorySwapMax"]
                    .iter()
                    .any(|k| get(k).is_some_and(|v| v != LIMIT_MAX));
            if unified {
                for (key, file) in [
                    ("MemoryMin", "memory.min"),
                    ("MemoryLow", "memory.low"),
                    ("MemoryHigh", "memory.high"),
                    ("MemoryMax", "memory.max"),
                    ("MemorySwapMax", "memory.swap.max"),
                ] {
                    let value = if key == "MemoryMax" && !has_v2 {
                        // Applying MemoryLimit= as MemoryMax=.
                        get("MemoryLimit")
                    } else {
                        get(key)
                    };
                    // Every file, as systemd writes them: what a setting
                    // said before a reload does not stay behind.
                    let default = if matches!(key, "MemoryMin" | "MemoryLow") {
                        0
                    } else {
                        LIMIT_MAX
                    };
                    files.push((file, limit_text(value.unwrap_or(default), "max")));
                }
            } else {
                let limit = if has_v2 {
                    get("MemoryMax")
                } else {
                    get("MemoryLimit")
                };
                files.push((
                    "memory.limit_in_bytes",
                    limit_text(limit.unwrap_or(LIMIT_MAX), "-1"),
                ));
                for key in ["MemoryMin", "MemoryLow", "MemoryHigh", "MemorySwapMax"] {
                    if get(key).is_some() {
                        unsupported.push(key);
                    }
                }
            }
        }
        Controller::Cpu => {
            if !configured(unit, section, controller) {
                return None;
            }
            let weight = unit
                .get_str(section, "CPUWeight")
                .and_then(|v| parse_cpu_weight(v).ok());
            let shares = unit
                .get_str(section, "CPUShares")
                .and_then(|v| parse_cpu_shares(v).ok());
            let quota = unit
                .get_str(section, "CPUQuota")
                .and_then(|v| parse_cpu_quota(v).ok())
                // Permyriad of a CPU to µs of CPU time per second (p fits
                // an i32, so this cannot overflow).
                .map(|p| p * (USEC_PER_SEC / 10_000));
            let period = unit
                .get_usec(section, "CPUQuotaPeriodSec")
                .filter(|p| *p != u64::MAX)
                .unwrap_or(DEFAULT_PERIOD);
            let period = match quota {
                Some(q) => adjust_period(period, q),
                None => DEFAULT_PERIOD,
            };
            let per_period = |q: u64| (q.saturating_mul(period) / USEC_PER_SEC).max(USEC_PER_MSEC);
            if unified {
                let w = match (weight, shares) {
                    (Some(w), _) => w,
                    (None, Some(s)) => {
                        (s * WEIGHT_DEFAULT / SHARES_DEFAULT).clamp(WEIGHT_MIN, WEIGHT_MAX)
                    }
                    (None, None) => WEIGHT_DEFAULT,
                };
                // cpu.idle first, always; no weight for an idle cgroup.
                files.push(("cpu.idle", if w == 0 { "1" } else { "0" }.into()));
                if w != 0 {
                    files.push(("cpu.weight", w.to_string()));
                }
                files.push((
                    "cpu.max",
                    match quota {
                        Some(q) => format!("{} {period}", per_period(q)),
                        None => format!("max {period}"),
                    },
                ));
            } else {
                let s = match (weight, shares) {
                    (Some(w), _) => {
                        (w * SHARES_DEFAULT / WEIGHT_DEFAULT).clamp(SHARES_MIN, SHARES_MAX)
                    }
                    (None, Some(s)) => s,
                    (None, None) => SHARES_DEFAULT,
                };
                files.push(("cpu.shares", s.to_string()));
                files.push(("cpu.cfs_period_us", period.to_string()));
                files.push((
                    "cpu.cfs_quota_us",
                    quota.map_or_else(|| "-1".into(), |q| per_period(q).to_string()),
                ));
            }
        }
    }
    Some(Apply { files, unsupported })
}

/// What a controller's files hold when nothing is set (the kernel's
/// defaults): written to a slice that no longer sets anything through it.
pub fn defaults(controller: Controller, hierarchy: &Hierarchy) -> Vec<(&'static str, String)> {
    let unified = *hierarchy == Hierarchy::Unified;
    let v = |pairs: &[(&'static str, &str)]| {
        pairs.iter().map(|(f, v)| (*f, (*v).to_string())).collect()
    };
    match (controller, unified) {
        (Controller::Pids, _) => v(&[("pids.max", "max")]),
        (Controller::Memory, true) => v(&[
            ("memory.min", "0"),
            ("memory.low", "0"),
            ("memory.high", "max"),
            ("memory.max", "max"),
            ("memory.swap.max", "max"),
        ]),
        (Controller::Memory, false) => v(&[("memory.limit_in_bytes", "-1")]),
        (Controller::Cpu, true) => v(&[
            ("cpu.idle", "0"),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
        ]),
        (Controller::Cpu, false) => v(&[
            ("cpu.shares", "1024"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "-1"),
        ]),
    }
}

/// systemd's `cgroup_cpu_adjust_period()`: the kernel's resolution is 1
/// ms, so the period and the quota within it must reach that; the period
/// is at most a second.
fn adjust_period(period: u64, quota_per_sec: u64) -> u64 {
    let floor = USEC_PER_MSEC * USEC_PER_SEC / quota_per_sec.max(1);
    period.max(USEC_PER_MSEC).max(floor).min(USEC_PER_SEC)
}

fn limit_text(v: u64, none: &str) -> String {
    if v == LIMIT_MAX {
        none.to_string()
    } else {
        v.to_string()
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf takes an integer and returns a value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(4096)
}

/// Physical memory (`MemTotal` of `/proc/meminfo`, or a container's
/// memory limit if lower), read once.
pub(crate) fn physical_memory() -> u64 {
    static TOTAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|rest| rest.trim().strip_suffix("kB"))
                    .and_then(|kb| kb.trim().parse::<u64>().ok())
            })
            .map_or(u64::MAX, |kb| kb * 1024)
            // A container's memory limit, as systemd's physical_memory().
            .min(
                crate::cgroup::top_limit("memory", "memory.max", "memory.limit_in_bytes")
                    .unwrap_or(u64::MAX),
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::load::load_text;

    #[test]
    fn parses_memory_as_systemd() {
        assert_eq!(
            parse_memory("MemoryMax", "1.5G"),
            Ok(Memory::Bytes(3 << 29))
        );
        assert_eq!(
            parse_memory("MemoryMax", "64M"),
            Ok(Memory::Bytes(64 << 20))
        );
        assert_eq!(
            parse_memory("MemoryMax", "50%"),
            Ok(Memory::Permyriad(5000))
        );
        assert_eq!(parse_memory("MemoryMax", "infinity"), Ok(Memory::Infinity));
        assert_eq!(parse_memory("MemoryLow", "0"), Ok(Memory::Bytes(0)));
        // systemd 252's own words for each refused value.
        for (key, v, message) in [
            ("MemoryMax", "0", "Memory limit '0' out of range, ignoring."),
            (
                "MemoryMax",
                "0%",
                "Memory limit '0%' out of range, ignoring.",
            ),
            (
                "MemoryMax",
                "16E",
                "Invalid memory limit '16E', ignoring: Numerical result out of range",
            ),
            (
                "MemoryHigh",
                "0",
                "Memory limit '0' out of range, ignoring.",
            ),
            (
                "MemoryMax",
                "lots",
                "Invalid memory limit 'lots', ignoring: Invalid argument",
            ),
            (
                "MemoryMax",
                "200%",
                "Invalid memory limit '200%', ignoring: Invalid argument",
            ),
            (
                "MemoryMax",
                "-1",
                "Invalid memory limit '-1', ignoring: Numerical result out of range",
            ),
        ] {
            assert_eq!(parse_memory(key, v), Err(message.to_string()), "{key}={v}");
        }
    }

    #[test]
    fn parses_cpu_settings_as_systemd() {
        assert_eq!(parse_cpu_quota("250%"), Ok(25_000));
        assert_eq!(parse_cpu_quota("12.5%"), Ok(1250));
        assert_eq!(parse_cpu_quota("5‰"), Ok(50));
        assert_eq!(
            parse_cpu_quota("100000000000000%"),
            Err("Invalid CPU quota '100000000000000%', ignoring.".to_string())
        );
        assert_eq!(parse_cpu_weight("0x10"), Ok(16));
        for v in ["0%", "lots", "50"] {
            assert_eq!(
                parse_cpu_quota(v),
                Err(format!("Invalid CPU quota '{v}', ignoring.")),
                "{v}"
            );
        }
        assert_eq!(parse_cpu_weight("idle"), Ok(0));
        assert_eq!(parse_cpu_weight("10000"), Ok(10_000));
        for v in ["0", "10001", "lots"] {
            assert_eq!(
                parse_cpu_weight(v),
                Err(format!("Invalid CPU weight, ignoring: {v}"))
            );
        }
        assert_eq!(
            parse_cpu_shares("1"),
            Err("Invalid CPU shares, ignoring: 1".to_string())
        );
        assert_eq!(parse_cpu_shares("2048"), Ok(2048));
    }

    fn files(
        text: &str,
        controller: Controller,
        hierarchy: &Hierarchy,
    ) -> Vec<(&'static str, String)> {
        let unit = load_text("r.service", text);
        plan(&unit, "Service", controller, hierarchy)
            .map(|a| a.files)
            .unwrap_or_default()
    }

    #[test]
    fn writes_what_systemd_writes() {
        let v1 = Hierarchy::Legacy("/x".into());
        let v2 = Hierarchy::Unified;
        let svc = |s: &str| format!("[Service]\nExecStart=/bin/true\n{s}\n");
        // Nothing set: no memory or cpu cgroup at all.
        assert!(files(&svc(""), Controller::Memory, &v1).is_empty());
        assert!(files(&svc(""), Controller::Cpu, &v2).is_empty());
        // Memory.
        assert_eq!(
            files(
                &svc("MemoryMax=64M\nMemoryHigh=48M"),
                Controller::Memory,
                &v2
            ),
            [
                ("memory.min", "0".into()),
                ("memory.low", "0".into()),
                ("memory.high", "50331648".into()),
                ("memory.max", "67108864".into()),
                ("memory.swap.max", "max".into())
            ]
        );
        assert_eq!(
            files(
                &svc("MemoryMax=64M\nMemoryHigh=48M"),
                Controller::Memory,
                &v1
            ),
            [("memory.limit_in_bytes", "67108864".into())]
        );
        // MemoryLimit= is MemoryMax= where no v2 setting is given, and is
        // ignored where one is.
        assert_eq!(
            files(&svc("MemoryLimit=1M"), Controller::Memory, &v2)[3],
            ("memory.max", "1048576".into())
        );
        assert_eq!(
            files(
                &svc("MemoryLimit=1M\nMemoryHigh=2M"),
                Controller::Memory,
                &v1
            ),
            [("memory.limit_in_bytes", "-1".into())]
        );
        // CPU: 25% of a CPU is 25 ms per 100 ms; 0.5% gets a longer period
        // (the quota must reach 1 ms), weights and shares convert.
        assert_eq!(
            files(&svc("CPUQuota=25%"), Controller::Cpu, &v2),
            [
                ("cpu.idle", "0".into()),
                ("cpu.weight", "100".into()),
                ("cpu.max", "25000 100000".into())
            ]
        );
        assert_eq!(
            files(&svc("CPUQuota=25%\nCPUWeight=50"), Controller::Cpu, &v1),
            [
                ("cpu.shares", "512".into()),
                ("cpu.cfs_period_us", "100000".into()),
                ("cpu.cfs_quota_us", "25000".into())
            ]
        );
        assert_eq!(
            files(
                &svc("CPUQuota=0.5%\nCPUQuotaPeriodSec=10ms"),
                Controller::Cpu,
                &v1
            )[1..],
            [
                ("cpu.cfs_period_us", "200000".into()),
                ("cpu.cfs_quota_us", "1000".into())
            ]
        );
        assert_eq!(
            files(&svc("CPUShares=2048"), Controller::Cpu, &v2),
            [
                ("cpu.idle", "0".into()),
                ("cpu.weight", "200".into()),
                ("cpu.max", "max 100000".into())
            ]
        );
        assert_eq!(
            files(&svc("CPUWeight=idle"), Controller::Cpu, &v1)[0],
            ("cpu.shares", "2".into())
        );
        assert_eq!(
            files(&svc("CPUWeight=idle"), Controller::Cpu, &v2)[0],
            ("cpu.idle", "1".into())
        );
        // pids: every service, TasksMax= or the default.
        assert_eq!(
            files(&svc("TasksMax=9"), Controller::Pids, &v1),
            [("pids.max", "9".into())]
        );
        assert_eq!(
            files(&svc("TasksMax=infinity"), Controller::Pids, &v2),
            [("pids.max", "max".into())]
        );
        assert_eq!(files(&svc(""), Controller::Pids, &v2).len(), 1);
        assert!(
            files(&svc(""), Controller::Pids, &v1).is_empty(),
            "on v1, DefaultTasksMax= is not worth a join per start"
        );
    }
}
