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
//! started as one with an empty file. A target with neither, and the
//! targets of systemd's own boot and shutdown ([`BOOT_TARGETS`]), are the
//! host's business: flint is not the system's init, so they count as
//! reached, get no jobs and pull nothing in (`multi-user.target`'s
//! `Requires=basic.target` does not start `sysinit.target`'s journald,
//! udev and tmpfiles services), as a target the tree lacks did before
//! targets were units.

use super::Manager;
use super::jobs::{Deps, JobResult};
use crate::unit::load::{LoadState, Unit};
use crate::unit::name::UnitName;

/// systemd's targets of early boot, shutdown and sleep (systemd.special(7)),
/// which only the system's init reaches.
pub(super) const BOOT_TARGETS: &[&str] = &[
    "basic.target",
    "sysinit.target",
    "local-fs.target",
    "local-fs-pre.target",
    "remote-fs.target",
    "remote-fs-pre.target",
    "swap.target",
    "cryptsetup.target",
    "cryptsetup-pre.target",
    "remote-cryptsetup.target",
    "veritysetup.target",
    "veritysetup-pre.target",
    "remote-veritysetup.target",
    "integritysetup.target",
    "integritysetup-pre.target",
    "initrd.target",
    "initrd-fs.target",
    "initrd-root-fs.target",
    "initrd-root-device.target",
    "initrd-switch-root.target",
    "initrd-usr-fs.target",
    "emergency.target",
    "rescue.target",
    "shutdown.target",
    "final.target",
    "umount.target",
    "reboot.target",
    "poweroff.target",
    "halt.target",
    "kexec.target",
    "soft-reboot.target",
    "exit.target",
    "ctrl-alt-del.target",
    "sleep.target",
    "suspend.target",
    "hibernate.target",
    "hybrid-sleep.target",
    "suspend-then-hibernate.target",
    "system-update.target",
    "system-update-pre.target",
    "factory-reset.target",
    "first-boot-complete.target",
    "usb-gadget.target",
];

/// The [`BOOT_TARGETS`] a booted system has reached: `sysinit.target`,
/// `basic.target` and what they are after. A system flint shows them
/// active (their files loaded, since flint started), as systemd does once
/// the system is up: Debian's `invoke-rc.d` asks `systemctl is-active
/// sysinit.target` where no runlevel is recorded, and says "could not
/// determine current runlevel" in every package's scripts otherwise.
/// (Not the passive `*-pre` targets, nor the remote setup targets only
/// an initrd pulls in.)
pub(super) const REACHED_BOOT_TARGETS: &[&str] = &[
    "basic.target",
    "sysinit.target",
    "local-fs.target",
    "remote-fs.target",
    "swap.target",
    "cryptsetup.target",
    "veritysetup.target",
    "integritysetup.target",
];

/// Whether `name` is one of [`BOOT_TARGETS`]. A user manager has no
/// early boot: its `basic.target` is a target like another (it wants
/// `sockets.target`, `timers.target` and `paths.target`, and
/// `default.target` requires it), reached by flint as by systemd --user.
pub(super) fn is_boot_target(name: &str, user_mode: bool) -> bool {
    BOOT_TARGETS.contains(&name) && !(user_mode && name == "basic.target")
}

/// A target flint has loaded.
#[derive(Debug)]
pub(super) struct TargetRt {
    pub unit: Unit,
    /// Its dependencies, the default ordering included.
    pub deps: Deps,
    pub active: bool,
    /// When it last became active or inactive (µs since the epoch).
    pub changed_usec: Option<u64>,
    /// The same on `CLOCK_MONOTONIC` (0: never).
    pub changed_monotonic: u64,
    /// How its last job ended.
    pub last_job: Option<JobResult>,
}

impl Manager {
    /// The ids of the loaded targets, in the order they were loaded.
    pub(super) fn target_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.targets.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The id of the target named `name`, when it is loaded.
    pub(super) fn find_target(&self, name: &str) -> Option<u64> {
        self.target_names.get(name).copied()
    }

    /// Loads target `name` (once, under all its names). `None` when it
    /// cannot be started: it is masked or broken, it has neither a file
    /// nor links, or it is one of [`BOOT_TARGETS`].
    pub(super) fn add_target(&mut self, name: &UnitName) -> Option<u64> {
        if let Some(id) = self.find_target(name.as_str()) {
            return Some(id);
        }
        if is_boot_target(name.as_str(), self.search.user_mode) {
            return None;
        }
        let mut unit = self.units.load(&self.search, name);
        // Loaded under another of its names (default.target, a link to
        // multi-user.target): the same unit.
        if let Some(id) = self.find_target(unit.id.as_str()) {
            self.target_names.insert(name.to_string(), id);
            return Some(id);
        }
        if is_boot_target(unit.id.as_str(), self.search.user_mode) {
            return None;
        }
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
        self.target_names.insert(unit.id.to_string(), id);
        for alias in &unit.aliases {
            self.target_names.insert(alias.to_string(), id);
        }
        self.targets.insert(
            id,
            TargetRt {
                unit,
                deps,
                active: false,
                changed_usec: None,
                changed_monotonic: 0,
                last_job: None,
            },
        );
        Some(id)
    }

    /// A target's dependencies with systemd's default ordering: after what
    /// it requires, requisites, wants and binds to, when neither side
    /// says `DefaultDependencies=no` and the two are not ordered the other
    /// way (the target `Before=` the unit, or the unit `After=` the
    /// target, as systemd keeps both directions of an ordering).
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
            let names_target = |n: &str| {
                n == unit.id.as_str()
                    || n == unit.name.as_str()
                    || unit.aliases.iter().any(|a| a.as_str() == n)
            };
            let after_target = Deps::of(&loaded).after.iter().any(|n| names_target(n));
            if loaded.is_loaded()
                && loaded.get_bool("Unit", "DefaultDependencies") != Some(false)
                && !after_target
            {
                deps.after.push(other);
            }
        }
        deps
    }

    /// Reads every loaded target again from the unit tree (after a
    /// switch): its file, links and ordering change, its state stays. A
    /// target that no longer loads is forgotten.
    pub(super) fn reload_targets(&mut self) {
        let mut ids: Vec<u64> = self.targets.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(name) = self.targets.get(&id).map(|t| t.unit.id.clone()) else {
                continue;
            };
            let mut unit = self.units.load(&self.search, &name);
            if !unit.is_loaded() && unit.load_state == LoadState::NotFound {
                let index = crate::unit::loader::UnitIndex::build(&self.search);
                let (wants, requires) = index.dependency_links(&name);
                unit.wants = wants;
                unit.requires = requires;
            }
            let gone = !unit.is_loaded() && unit.wants.is_empty() && unit.requires.is_empty();
            if gone {
                self.set_target_active(id, false);
                self.jobs.remove(&id);
                self.targets.remove(&id);
                self.target_names.retain(|_, t| *t != id);
                continue;
            }
            let deps = self.target_deps(&unit);
            for alias in &unit.aliases {
                self.target_names.insert(alias.to_string(), id);
            }
            if let Some(t) = self.targets.get_mut(&id) {
                t.unit = unit;
                t.deps = deps;
            }
        }
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
        t.changed_usec = Some(crate::logs::epoch_usec());
        t.changed_monotonic = crate::logs::mono_usec();
        let name = t.unit.id.to_string();
        let description = super::jobs::description(&t.unit);
        if active {
            tracing::info!("{name}: Reached target {description}.");
        } else {
            tracing::info!("{name}: Stopped target {description}.");
        }
    }

    /// A target's row for `status` and the listings.
    /// `status` of one of the [`REACHED_BOOT_TARGETS`] in a system flint
    /// (`None` for another name, or where its file does not load): active
    /// since flint started.
    pub(super) fn reached_boot_target_json(&mut self, name: &str) -> Option<serde_json::Value> {
        if self.search.user_mode || !REACHED_BOOT_TARGETS.contains(&name) {
            return None;
        }
        let unit = self.unit_on_disk(name).filter(Unit::is_loaded)?;
        Some(serde_json::json!({
            "name": name,
            "type": "target",
            "description": unit.get_str("Unit", "Description").unwrap_or(""),
            "state": "active",
            "sub": "active",
            "load": "loaded",
            "since_usec": super::control::process_start_usec(),
            "since_monotonic_usec": super::control::userspace_monotonic(),
            "log": [],
        }))
    }

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
            "since_monotonic_usec": t.changed_monotonic,
            // The timers that start it, as systemctl's "TriggeredBy:".
            "triggered_by": self
                .timers
                .map
                .iter()
                .filter(|(_, timer)| timer.target == name)
                .map(|(n, timer)| serde_json::json!({"name": n, "state": timer.state.words().0}))
                .collect::<Vec<_>>(),
            "job": self.job_text(id),
            "log": crate::logs::recent(&name, super::control::STATUS_LINES, 0),
        })
    }
}
