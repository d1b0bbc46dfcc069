//! `TasksMax=`: how many tasks (processes and threads) a service's cgroup
//! may hold, through the `pids` controller (see [`crate::cgroup`]).
//!
//! As in systemd, every service has a limit: without `TasksMax=` it is
//! `DefaultTasksMax=`, 15% of what the system allows ([`system_max`]),
//! and `infinity` lifts it. A percentage is of that same system maximum.
//! On cgroup v1 only services that set `TasksMax=` get a limit (see
//! [`super::resources`]).

use crate::unit::load::Unit;
use crate::unit::value::ValueError;
use crate::unit::value::int::parse_u64;
use crate::unit::value::percent::parse_permyriad;

/// systemd's `TASKS_MAX`: the largest pid the kernel can hand out.
const TASKS_MAX: u64 = 4_194_303;

/// `DefaultTasksMax=` of systemd 252: 15%, in permyriad.
const DEFAULT_PERMYRIAD: u64 = 1500;

/// A `TasksMax=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TasksMax {
    /// `infinity`: no limit.
    Infinity,
    /// A number of tasks (at least 1).
    Count(u64),
    /// A share of the system's maximum, in permyriad (`15%` is 1500).
    Permyriad(u64),
}

impl TasksMax {
    /// The limit on a system whose maximum is `system`; `None` for none.
    pub fn resolve(self, system: u64) -> Option<u64> {
        match self {
            TasksMax::Infinity => None,
            TasksMax::Count(n) => Some(n),
            // systemd's system_tasks_max_scale(): rounded down.
            TasksMax::Permyriad(p) => Some(system.saturating_mul(p) / 10_000),
        }
    }
}

/// Why a `TasksMax=` value is refused, in systemd's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("Invalid maximum tasks value '{0}', ignoring: Invalid argument")]
    Syntax(String),
    /// A negative number, or one too large for 64 bits.
    #[error("Invalid maximum tasks value '{0}', ignoring: Numerical result out of range")]
    Overflow(String),
    #[error("Maximum tasks value '{0}' out of range, ignoring.")]
    Range(String),
}

/// Parses a value as systemd's `config_parse_tasks_max()`: `infinity`, a
/// share of the system's maximum (`%`, `‰`, `‱`, at most 100%), or a
/// positive number (in C's bases: `010` is 8, `0x10` is 16).
pub fn parse(value: &str) -> Result<TasksMax, Invalid> {
    let v = value.trim();
    if v == "infinity" {
        return Ok(TasksMax::Infinity);
    }
    if let Ok(p) = parse_permyriad(v) {
        return Ok(TasksMax::Permyriad(p));
    }
    match parse_u64(v) {
        Ok(0 | u64::MAX) => Err(Invalid::Range(value.to_string())),
        Ok(n) => Ok(TasksMax::Count(n)),
        Err(ValueError::OutOfRange(_)) => Err(Invalid::Overflow(value.to_string())),
        Err(_) => Err(Invalid::Syntax(value.to_string())),
    }
}

/// The unit's `TasksMax=` as set (after drop-ins), if it sets one. The
/// loader keeps it resolved, as systemd shows it: a count, or `u64::MAX`
/// for `infinity`.
pub fn configured(unit: &Unit, section: &str) -> Option<TasksMax> {
    match unit.get_u64(section, "TasksMax")? {
        u64::MAX => Some(TasksMax::Infinity),
        n => Some(TasksMax::Count(n)),
    }
}

/// The unit's limit: its `TasksMax=`, or else `DefaultTasksMax=`.
pub fn limit(unit: &Unit, section: &str) -> Option<u64> {
    configured(unit, section)
        .unwrap_or(TasksMax::Permyriad(DEFAULT_PERMYRIAD))
        .resolve(system_max())
}

/// The most tasks this system allows, as systemd's `system_tasks_max()`:
/// the smallest of `kernel.threads-max`, `kernel.pid_max` minus one (pid 0
/// is no task), the `pids.max` at the top of the cgroup hierarchy (a
/// container's limit) and `TASKS_MAX`. Read once.
pub fn system_max() -> u64 {
    static MAX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        let threads = read("/proc/sys/kernel/threads-max").unwrap_or(TASKS_MAX);
        let pids = read("/proc/sys/kernel/pid_max").map_or(TASKS_MAX, |n| n - 1);
        // A container's pids.max, as systemd's third source.
        let top = crate::cgroup::top_limit("pids", "pids.max", "pids.max").unwrap_or(TASKS_MAX);
        TASKS_MAX.min(threads).min(pids).min(top)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_systemd() {
        assert_eq!(parse("infinity"), Ok(TasksMax::Infinity));
        assert_eq!(parse("512"), Ok(TasksMax::Count(512)));
        assert_eq!(parse("15%"), Ok(TasksMax::Permyriad(1500)));
        assert_eq!(parse("12.5%"), Ok(TasksMax::Permyriad(1250)));
        assert_eq!(parse("0.05%"), Ok(TasksMax::Permyriad(5)));
        assert_eq!(parse("100%"), Ok(TasksMax::Permyriad(10_000)));
        assert_eq!(parse("42‱"), Ok(TasksMax::Permyriad(42)));
        assert_eq!(parse("5.5‰"), Ok(TasksMax::Permyriad(55)));
        // C's bases, as safe_atou64().
        assert_eq!(parse("010"), Ok(TasksMax::Count(8)));
        assert_eq!(parse("0x10"), Ok(TasksMax::Count(16)));
        assert_eq!(parse("+5"), Ok(TasksMax::Count(5)));
        assert_eq!(
            parse("08"),
            Err(Invalid::Syntax("08".into())),
            "8 is no octal digit"
        );
        // systemd 252 accepts 0% (and so a limit of 0).
        assert_eq!(parse("0%"), Ok(TasksMax::Permyriad(0)));
        // What systemd 252 prints for each refused value.
        for (v, message) in [
            ("0", "Maximum tasks value '0' out of range, ignoring."),
            (
                "101%",
                "Invalid maximum tasks value '101%', ignoring: Invalid argument",
            ),
            (
                "1.234%",
                "Invalid maximum tasks value '1.234%', ignoring: Invalid argument",
            ),
            (
                "lots",
                "Invalid maximum tasks value 'lots', ignoring: Invalid argument",
            ),
            (
                "-1",
                "Invalid maximum tasks value '-1', ignoring: Numerical result out of range",
            ),
            (
                "99999999999999999999999",
                "Invalid maximum tasks value '99999999999999999999999', ignoring: Numerical result out of range",
            ),
        ] {
            assert_eq!(
                parse(v).map_err(|e| e.to_string()),
                Err(message.to_string()),
                "{v}"
            );
        }
    }

    #[test]
    fn resolves_against_the_system_maximum() {
        // pid_max 32768 and threads-max 192724: 32767, 15% of it 4915.
        assert_eq!(TasksMax::Permyriad(1500).resolve(32_767), Some(4915));
        assert_eq!(TasksMax::Count(7).resolve(32_767), Some(7));
        assert_eq!(TasksMax::Infinity.resolve(32_767), None);
        assert_eq!(TasksMax::Permyriad(10_000).resolve(32_767), Some(32_767));
        let max = system_max();
        assert!((1..=TASKS_MAX).contains(&max));
    }
}
