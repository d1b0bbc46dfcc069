//! `flint set-property` (and `systemctl set-property`): resource-control
//! settings of a unit changed at runtime, as systemd 252 changes them. Each
//! setting is kept as a drop-in of its own in the control directory
//! (`/etc/systemd/system.control/UNIT.d/50-KEY.conf`, below `/run` with
//! `--runtime`, `~/.config/systemd/user.control` for `--user`), written in
//! the normalized form systemd writes (`MemoryMax=104857600` for `100M`;
//! a share in `50-KEYScale.conf`, `MemoryMax=50.00%`), and the running
//! flint applies it to the unit's cgroup at once.
//!
//! Like systemd, a name it does not know is "Unknown assignment", a
//! setting that is not a resource-control one cannot be set, and a value
//! that does not parse is refused before anything is written. One
//! difference: a share of `TasksMax=` is written as given (`15%`), where
//! systemd 252 writes a tenth of it (`1.5%`).

use std::path::{Path, PathBuf};

use crate::service::resources::{self, Memory};
use crate::unit::value::percent::parse_permyriad;

/// Why a property cannot be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetPropertyError {
    #[error("Unknown assignment: {0}")]
    Unknown(String),
    #[error("Not an assignment: {0}")]
    NotAssignment(String),
    #[error(
        "Failed to set unit properties on {unit}: Cannot set property {key}, or unknown property."
    )]
    NotSettable { unit: String, key: String },
    #[error("Failed to parse {0}: Invalid argument")]
    Invalid(String),
}

/// One drop-in to write: its file name and its `[Section]` line and
/// setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropIn {
    /// `50-MemoryMax.conf`.
    pub file: String,
    /// The setting as written (`MemoryMax=104857600`).
    pub line: String,
}

impl DropIn {
    /// The file's whole text, as systemd writes it.
    pub fn text(&self, section: &str) -> String {
        format!(
            "# This is a drop-in unit file extension, created via \"systemctl set-property\"\n\
             # or an equivalent operation. Do not edit.\n[{section}]\n{}\n",
            self.line
        )
    }
}

/// The settings `set-property` changes (systemd 252's
/// `bus_cgroup_set_property()`).
const SETTABLE: &[&str] = &[
    "CPUAccounting",
    "MemoryAccounting",
    "TasksAccounting",
    "IOAccounting",
    "BlockIOAccounting",
    "IPAccounting",
    "CPUWeight",
    "StartupCPUWeight",
    "CPUShares",
    "StartupCPUShares",
    "CPUQuota",
    "CPUQuotaPeriodSec",
    "IOWeight",
    "StartupIOWeight",
    "BlockIOWeight",
    "StartupBlockIOWeight",
    "MemoryMin",
    "MemoryLow",
    "MemoryHigh",
    "MemoryMax",
    "MemorySwapMax",
    "MemoryLimit",
    "TasksMax",
    "AllowedCPUs",
    "AllowedMemoryNodes",
    "DevicePolicy",
    "ManagedOOMSwap",
    "ManagedOOMMemoryPressure",
    "ManagedOOMPreference",
];

/// The drop-in for `assignment` (`KEY=VALUE`) of `unit`, whose settings
/// are in `section` (`Service`, `Socket`, `Slice`, ...).
pub fn drop_in(unit: &str, section: &str, assignment: &str) -> Result<DropIn, SetPropertyError> {
    let invalid = || SetPropertyError::Invalid(assignment.to_owned());
    let Some((key, value)) = assignment.split_once('=') else {
        return Err(SetPropertyError::NotAssignment(assignment.to_owned()));
    };
    let known = crate::unit::directive::lookup(section, key).is_some()
        || crate::unit::directive::lookup("Unit", key).is_some();
    if !known {
        return Err(SetPropertyError::Unknown(assignment.to_owned()));
    }
    if !SETTABLE.contains(&key) {
        return Err(SetPropertyError::NotSettable {
            unit: unit.to_owned(),
            key: key.to_owned(),
        });
    }
    if value.chars().any(char::is_control) || value.ends_with('\\') {
        return Err(invalid());
    }
    let plain = |line: String| DropIn {
        file: format!("50-{key}.conf"),
        line,
    };
    let v = value.trim();
    // An empty value resets the setting, in its own drop-in.
    if v.is_empty() {
        return Ok(plain(format!("{key}=")));
    }
    Ok(match key {
        "MemoryMin" | "MemoryLow" | "MemoryHigh" | "MemoryMax" | "MemorySwapMax"
        | "MemoryLimit" => match resources::parse_memory(key, v).map_err(|_| invalid())? {
            Memory::Infinity => plain(format!("{key}=infinity")),
            Memory::Bytes(b) => plain(format!("{key}={b}")),
            Memory::Permyriad(p) => DropIn {
                file: format!("50-{key}Scale.conf"),
                line: format!("{key}={}.{:02}%", p / 100, p % 100),
            },
        },
        "TasksMax" => {
            if v == "infinity" {
                plain("TasksMax=infinity".into())
            } else if let Ok(p) = parse_permyriad(v) {
                if p == 0 {
                    return Err(invalid());
                }
                DropIn {
                    file: "50-TasksMaxScale.conf".into(),
                    line: format!("TasksMax={v}"),
                }
            } else {
                let n = crate::unit::value::int::parse_u64(v).map_err(|_| invalid())?;
                if n == 0 {
                    return Err(invalid());
                }
                plain(format!("TasksMax={n}"))
            }
        }
        "CPUQuota" => {
            let p = resources::parse_cpu_quota(v).map_err(|_| invalid())?;
            // As systemd writes it: whole percent; below one, with the
            // hundredths (systemd's `0%` would be refused when read).
            plain(if p >= 100 {
                format!("CPUQuota={}%", p / 100)
            } else {
                format!("CPUQuota=0.{p:02}%")
            })
        }
        "CPUQuotaPeriodSec" => {
            let usec = crate::unit::value::time::parse_sec(v).map_err(|_| invalid())?;
            plain(format!(
                "CPUQuotaPeriodSec={}",
                crate::unit::value::time::format_timespan_accuracy(usec, 1)
            ))
        }
        "CPUWeight" | "StartupCPUWeight" => {
            let w = resources::parse_cpu_weight(v).map_err(|_| invalid())?;
            plain(if w == 0 {
                format!("{key}=idle")
            } else {
                format!("{key}={w}")
            })
        }
        "CPUShares" | "StartupCPUShares" => {
            let s = resources::parse_cpu_shares(v).map_err(|_| invalid())?;
            plain(format!("{key}={s}"))
        }
        k if k.ends_with("Accounting") => {
            let b = crate::unit::value::bool::parse_bool(v).map_err(|_| invalid())?;
            plain(format!("{key}={}", if b { "yes" } else { "no" }))
        }
        k if k.ends_with("Weight") => {
            let range = if k.contains("BlockIO") {
                10..=1000
            } else {
                1..=10_000
            };
            let w = crate::unit::value::int::parse_u64(v)
                .ok()
                .filter(|w| range.contains(w))
                .ok_or_else(invalid)?;
            plain(format!("{key}={w}"))
        }
        "DevicePolicy" if !matches!(v, "auto" | "closed" | "strict") => return Err(invalid()),
        "ManagedOOMSwap" | "ManagedOOMMemoryPressure" if !matches!(v, "auto" | "kill") => {
            return Err(invalid());
        }
        "ManagedOOMPreference" if !matches!(v, "none" | "avoid" | "omit") => return Err(invalid()),
        // The rest as given, one line.
        _ => plain(format!("{key}={v}")),
    })
}

/// The other file of the same setting (`50-MemoryMaxScale.conf` beside
/// `50-MemoryMax.conf`), which would otherwise shadow the new one or be
/// shadowed by it: removed when the new one is written.
pub fn other_form(file: &str) -> Option<String> {
    let stem = file.strip_suffix(".conf")?;
    Some(match stem.strip_suffix("Scale") {
        Some(plain) => format!("{plain}.conf"),
        None => format!("{stem}Scale.conf"),
    })
}

/// Writes `text` to `dir/name` through a fresh file renamed into place
/// (mode 0644), making `dir` first.
pub fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    crate::conf_files::replace(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(a: &str) -> (String, String) {
        let d = drop_in("s.service", "Service", a).unwrap();
        (d.file, d.line)
    }

    /// The forms systemd 252's `systemctl --user set-property` wrote.
    #[test]
    fn settings_are_written_as_systemd_writes_them() {
        let pairs = |f: &str, l: &str| (f.to_owned(), l.to_owned());
        assert_eq!(
            line("MemoryMax=100M"),
            pairs("50-MemoryMax.conf", "MemoryMax=104857600")
        );
        assert_eq!(
            line("MemoryLow=1K"),
            pairs("50-MemoryLow.conf", "MemoryLow=1024")
        );
        assert_eq!(
            line("MemoryMin=0"),
            pairs("50-MemoryMin.conf", "MemoryMin=0")
        );
        assert_eq!(
            line("MemoryMax=infinity"),
            pairs("50-MemoryMax.conf", "MemoryMax=infinity")
        );
        assert_eq!(
            line("MemoryHigh=10%"),
            pairs("50-MemoryHighScale.conf", "MemoryHigh=10.00%")
        );
        assert_eq!(
            line("MemoryMax=50%"),
            pairs("50-MemoryMaxScale.conf", "MemoryMax=50.00%")
        );
        assert_eq!(
            line("MemorySwapMax=1G"),
            pairs("50-MemorySwapMax.conf", "MemorySwapMax=1073741824")
        );
        assert_eq!(
            line("MemoryLimit=1G"),
            pairs("50-MemoryLimit.conf", "MemoryLimit=1073741824")
        );
        assert_eq!(
            line("CPUQuota=50%"),
            pairs("50-CPUQuota.conf", "CPUQuota=50%")
        );
        assert_eq!(
            line("CPUQuota=150.5%"),
            pairs("50-CPUQuota.conf", "CPUQuota=150%")
        );
        assert_eq!(line("CPUQuota="), pairs("50-CPUQuota.conf", "CPUQuota="));
        assert_eq!(
            line("CPUQuotaPeriodSec=10ms"),
            pairs("50-CPUQuotaPeriodSec.conf", "CPUQuotaPeriodSec=10ms")
        );
        assert_eq!(
            line("CPUWeight=200"),
            pairs("50-CPUWeight.conf", "CPUWeight=200")
        );
        assert_eq!(
            line("StartupCPUWeight=50"),
            pairs("50-StartupCPUWeight.conf", "StartupCPUWeight=50")
        );
        assert_eq!(
            line("CPUShares=512"),
            pairs("50-CPUShares.conf", "CPUShares=512")
        );
        assert_eq!(
            line("IOWeight=20"),
            pairs("50-IOWeight.conf", "IOWeight=20")
        );
        assert_eq!(
            line("TasksMax=20"),
            pairs("50-TasksMax.conf", "TasksMax=20")
        );
        assert_eq!(
            line("TasksMax=infinity"),
            pairs("50-TasksMax.conf", "TasksMax=infinity")
        );
        assert_eq!(
            line("TasksMax=15%"),
            pairs("50-TasksMaxScale.conf", "TasksMax=15%")
        );
        assert_eq!(
            line("MemoryAccounting=yes"),
            pairs("50-MemoryAccounting.conf", "MemoryAccounting=yes")
        );
        assert_eq!(
            line("CPUAccounting=0"),
            pairs("50-CPUAccounting.conf", "CPUAccounting=no")
        );
        assert_eq!(
            drop_in("s.service", "Service", "CPUWeight=200")
                .unwrap()
                .text("Service"),
            "# This is a drop-in unit file extension, created via \"systemctl set-property\"\n\
             # or an equivalent operation. Do not edit.\n[Service]\nCPUWeight=200\n"
        );
    }

    #[test]
    fn what_systemd_refuses_is_refused() {
        let err = |a: &str| drop_in("s.service", "Service", a).unwrap_err().to_string();
        assert_eq!(err("Bogus=1"), "Unknown assignment: Bogus=1");
        assert_eq!(
            err("Nice=5"),
            "Failed to set unit properties on s.service: Cannot set property Nice, or unknown property."
        );
        assert_eq!(
            err("MemoryMax=lots"),
            "Failed to parse MemoryMax=lots: Invalid argument"
        );
        assert_eq!(
            err("CPUQuota=0%"),
            "Failed to parse CPUQuota=0%: Invalid argument"
        );
        assert_eq!(
            err("TasksMax=0"),
            "Failed to parse TasksMax=0: Invalid argument"
        );
        assert_eq!(
            err("CPUWeight=0"),
            "Failed to parse CPUWeight=0: Invalid argument"
        );
        assert!(err("AllowedCPUs=1\n[Service]").starts_with("Failed to parse"));
        assert_eq!(err("MemoryMax"), "Not an assignment: MemoryMax");
        assert_eq!(
            err("DevicePolicy=bogus"),
            "Failed to parse DevicePolicy=bogus: Invalid argument"
        );
        assert_eq!(
            err("BlockIOWeight=5"),
            "Failed to parse BlockIOWeight=5: Invalid argument"
        );
        assert_eq!(
            line("CPUQuota=0.5%"),
            ("50-CPUQuota.conf".to_owned(), "CPUQuota=0.50%".to_owned())
        );
        assert_eq!(
            other_form("50-MemoryMax.conf").as_deref(),
            Some("50-MemoryMaxScale.conf")
        );
        assert_eq!(
            other_form("50-TasksMaxScale.conf").as_deref(),
            Some("50-TasksMax.conf")
        );
    }
}
