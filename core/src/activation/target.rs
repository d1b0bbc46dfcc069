//! Target units at runtime, after systemd's `target.c`.
//!
//! A target runs nothing: its start job waits for its ordering like any
//! other job, then the target is active; its stop job makes it inactive.
//! What makes targets matter is the jobs around them:
//!
//! - a start of a target pulls in what it `Wants=`/`Requires=` (in its
//!   file and through its `.wants/`/`.requires/` links), and the units
//!   `Requires=`, `PartOf=` or `BindsTo=` it follow its stop;
//! - with `DefaultDependencies=yes` on both sides, a target is ordered
//!   after every unit it pulls in (systemd's
//!   `target_add_default_dependencies()`), unless it is explicitly ordered
//!   before it; so `After=network-online.target` waits for the oneshot
//!   that network-online.target wants, and a unit ordered after a target
//!   waits for what the target is ordered after.
//!
//! A target with no file but with `.wants/`/`.requires/` links (what
//! `flint enable` makes in a tree that lacks systemd's own targets) is
//! started as one with an empty file.

use super::Manager;
use super::jobs::{Deps, JobResult};
use crate::unit::load::{LoadState, Unit};
use crate::unit::name::UnitName;

/// A target flint has loaded.
#[derive(Debug)]
pub(super) struct TargetRt {
    pub unit: Unit,
    /// Its dependencies, the default ordering included.
    pub deps: Deps,
    pub active: bool,
    /// When it last became active or inactive (µs since the epoch).
    pub changed_usec: Option<u64>,
    /// How its last job ended.
    pub last_job: Option<JobResult>,
}

impl Manager {
    /// The id of the target named `name`, when it is loaded.
    pub(super) fn find_target(&self, name: &str) -> Option<u64> {
        self.target_names.get(name).copied()
    }

    /// Loads target `name` (once). `None` when it cannot be started: it
    /// is masked or broken, or it has neither a file nor links.
    pub(super) fn add_target(&mut self, name: &UnitName) -> Option<u64> {
        if let Some(id) = self.find_target(name.as_str()) {
            return Some(id);
        }
        let mut unit = self.units.load(&self.search, name);
        if !unit.is_loaded() {
            if unit.load_state != LoadState::NotFound {
                return None;
            }
            let index = crate::unit::loader::UnitIndex::build(&self.search);
            let (wants, requires) = index.dependency_links(name);
            if wants.is_empty() && requires.is_empty() {
                return None;
            }
            unit.wants = wants;
            unit.requires = requires;
        }
        let deps = self.target_deps(&unit);
        let id = self.new_id();
        self.target_names.insert(name.to_string(), id);
        if unit.id.as_str() != name.as_str() {
            self.target_names.insert(unit.id.to_string(), id);
        }
        self.targets.insert(
            id,
            TargetRt {
                unit,
                deps,
                active: false,
                changed_usec: None,
                last_job: None,
            },
        );
        Some(id)
    }

    /// A target's dependencies with systemd's default ordering: after what
    /// it requires, requisites, wants and binds to, when neither side
    /// says `DefaultDependencies=no` and the target is not ordered before
    /// that unit.
    fn target_deps(&mut self, unit: &Unit) -> Deps {
        let mut deps = Deps::of(unit);
        if unit.get_bool("Unit", "DefaultDependencies") == Some(false) {
            return deps;
        }
        let pulled: Vec<String> = deps
            .requires
            .iter()
            .chain(&deps.requisite)
            .chain(&deps.wants)
            .chain(&deps.binds_to)
            .cloned()
            .collect();
        for other in pulled {
            if deps.after.contains(&other) || deps.before.contains(&other) {
                continue;
            }
            let Ok(parsed) = other.parse::<UnitName>() else {
                continue;
            };
            let loaded = self.units.load(&self.search, &parsed);
            if loaded.is_loaded() && loaded.get_bool("Unit", "DefaultDependencies") != Some(false) {
                deps.after.push(other);
            }
        }
        deps
    }

    /// Marks target `id` active or inactive.
    pub(super) fn set_target_active(&mut self, id: u64, active: bool) {
        let Some(t) = self.targets.get_mut(&id) else {
            return;
        };
        if t.active == active {
            return;
        }
        t.active = active;
        t.changed_usec = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_micros()).ok());
        let name = t.unit.id.to_string();
        let description = t
            .unit
            .get_str("Unit", "Description")
            .filter(|d| !d.is_empty())
            .unwrap_or(&name)
            .to_string();
        if active {
            tracing::info!("{name}: Reached target {description}.");
        } else {
            tracing::info!("{name}: Stopped target {description}.");
        }
    }

    /// A target's row for `status` and the listings.
    pub(super) fn target_json(&self, id: u64) -> serde_json::Value {
        let Some(t) = self.targets.get(&id) else {
            return serde_json::Value::Null;
        };
        let name = t.unit.id.to_string();
        let (state, sub) = if t.active {
            ("active", "active")
        } else {
            ("inactive", "dead")
        };
        serde_json::json!({
            "name": name,
            "type": "target",
            "description": t.unit.get_str("Unit", "Description").unwrap_or(""),
            "state": state,
            "sub": sub,
            "load": "loaded",
            "since_usec": t.changed_usec,
            "job": self.job_text(id),
            "log": crate::logs::recent(&name, super::control::STATUS_LINES, 0),
        })
    }
}
