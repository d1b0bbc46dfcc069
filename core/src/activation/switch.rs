//! Switching a running flint to a new unit tree: `flint ctl switch [DIR]`,
//! `SIGHUP`, and `flint run --watch`.
//!
//! The new tree is loaded completely first: every unit the run would start,
//! the services its sockets trigger, their socket settings and their plugin
//! chains. If anything fails to load, the switch is refused as a whole with
//! every error and nothing running is touched. Otherwise the difference is
//! computed with the rules of NixOS's `switch-to-configuration` (its
//! `compare_units` and `handle_modified_unit`), which the hints NixOS
//! writes into units steer: `X-RestartIfChanged=`, `X-ReloadIfChanged=`,
//! `X-StopIfChanged=`, `X-Restart-Triggers=`, `X-Reload-Triggers=`,
//! `X-StopOnRemoval=`, `X-OnlyManualStart=`, `X-NotSocketActivated=`,
//! `RefuseManualStop=`.
//!
//! Where flint does better than NixOS: a changed `.socket` unit is not
//! ignored, and a listener whose address is unchanged is never closed. The
//! changed options are applied to the open file descriptor where the kernel
//! allows; only listeners whose address changed are opened or closed. A
//! socket-activated service that has to stop for a change is stopped while
//! its socket keeps listening, so clients queue in the backlog and the next
//! connection starts the new version. `Accept=yes` instances already
//! running are left to finish; those of a removed socket are stopped after
//! a grace period.
//!
//! The plan is printed in the words `switch-to-configuration` uses, so the
//! tools that read its output read flint's too.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use super::lifecycle::State;
use super::limit::RateLimit;
use super::{Event, Manager, SocketConfig, SocketPolicy};
use crate::listen::ListenKind;
use crate::unit::load::{self, Unit};
use crate::unit::loader::{self, SearchPath};
use crate::unit::name::{UnitName, UnitType};

/// A unit's settings as `switch-to-configuration` compares them: section,
/// key, the values in order. `[Install]` is left out, as NixOS does.
pub(super) type Sections = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// The settings of `unit` for comparison.
pub(super) fn sections(unit: &Unit) -> Sections {
    let mut out = Sections::new();
    for ((section, key), setting) in unit.settings.iter() {
        if section == "Install" {
            continue;
        }
        let values: Vec<String> = setting
            .entries
            .iter()
            .map(|(v, _)| v.to_json().to_string())
            .collect();
        if !values.is_empty() {
            out.entry(section.clone())
                .or_default()
                .insert((*key).to_string(), values);
        }
    }
    for e in &unit.extras {
        if e.section == "Install" {
            continue;
        }
        let values = out
            .entry(e.section.clone())
            .or_default()
            .entry(e.key.clone())
            .or_default();
        // An empty assignment resets the list, as in NixOS's parser.
        if e.value.is_empty() {
            values.clear();
        } else {
            values.push(e.value.clone());
        }
    }
    for section in out.values_mut() {
        section.retain(|_, v| !v.is_empty());
    }
    out.retain(|_, s| !s.is_empty());
    out
}

/// How two definitions of a unit differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Diff {
    Same,
    /// Only `X-Reload-Triggers=` (or ignored keys besides it) changed.
    Reload,
    Restart,
}

/// `[Unit]` keys whose change needs no action (NixOS's list).
const UNIT_IGNORED: &[&str] = &[
    "X-Reload-Triggers",
    "Description",
    "Documentation",
    "OnFailure",
    "OnSuccess",
    "OnFailureJobMode",
    "IgnoreOnIsolate",
    "StopWhenUnneeded",
    "RefuseManualStart",
    "RefuseManualStop",
    "AllowIsolate",
    "CollectMode",
    "SourcePath",
];

/// NixOS's `compare_units`: restart on any change outside the ignored
/// `[Unit]` keys, reload when only `X-Reload-Triggers=` changed or was
/// added (removed triggers need nothing, as there).
pub(super) fn compare(cur: &Sections, new: &Sections) -> Diff {
    let empty = BTreeMap::new();
    let mut result = Diff::Same;
    let names: BTreeSet<&String> = cur.keys().chain(new.keys()).collect();
    for name in names {
        let a = cur.get(name).unwrap_or(&empty);
        let b = new.get(name).unwrap_or(&empty);
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            if a.get(key) == b.get(key) {
                continue;
            }
            if name == "Unit" && key == "X-Reload-Triggers" {
                if b.contains_key(key) {
                    result = Diff::Reload;
                }
            } else if name == "Unit" && UNIT_IGNORED.contains(&key.as_str()) {
            } else {
                return Diff::Restart;
            }
        }
    }
    result
}

/// A boolean hint as NixOS reads it: the last value, `1`/`yes`/`true`/`on`
/// is true, anything else false; `default` when unset.
pub(super) fn hint(sections: &Sections, section: &str, key: &str, default: bool) -> bool {
    match sections
        .get(section)
        .and_then(|s| s.get(key))
        .and_then(|v| v.last())
    {
        None => default,
        Some(v) => {
            let v = v.trim_matches('"');
            v == "1" || v == "yes" || v == "true" || v == "on"
        }
    }
}

/// Whether a unit is a socket or a service, for planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Socket,
    Service,
}

/// A unit of the running flint, as the planner sees it.
#[derive(Debug, Clone)]
pub(super) struct Current {
    pub name: String,
    pub kind: Kind,
    /// Active or activating (a listening socket, a running service).
    pub active: bool,
    pub sections: Sections,
    /// The listeners of a socket.
    pub listens: Vec<ListenKind>,
    /// A service that sockets trigger.
    pub socket_activated: bool,
}

/// A unit of the new tree.
#[derive(Debug, Clone)]
pub(super) struct Desired {
    pub kind: Kind,
    pub sections: Sections,
    pub listens: Vec<ListenKind>,
    /// Started by the run (named, enabled or wanted), not only triggered.
    pub wanted: bool,
    /// The socket's plugin chain differs from the running one.
    pub plugins_changed: bool,
}

/// What a switch does, by unit.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct Plan {
    pub stop: BTreeSet<String>,
    /// Changed, but the hints say not to restart.
    pub skip: BTreeSet<String>,
    pub reload: BTreeSet<String>,
    pub restart: BTreeSet<String>,
    pub start: BTreeSet<String>,
    /// Changed sockets whose listeners all stay open.
    pub keep: BTreeSet<String>,
    /// Sockets whose plugin chain is loaded anew.
    pub plugins: BTreeSet<String>,
    /// Stopped only to be started again (a changed service that is not
    /// socket-activated, or says `X-NotSocketActivated=true`, with
    /// `X-StopIfChanged=` on).
    #[serde(skip)]
    pub stop_start: BTreeSet<String>,
}

impl Plan {
    /// The plan in `switch-to-configuration`'s words, one line per action
    /// that has units.
    pub fn lines(&self) -> Vec<String> {
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        let mut out = Vec::new();
        let mut line = |label: &str, set: &BTreeSet<String>| {
            if !set.is_empty() {
                out.push(format!("{label}: {}", list(set)));
            }
        };
        line("stopping the following units", &self.stop);
        line("NOT restarting the following changed units", &self.skip);
        line(
            "keeping the listeners of the following changed units",
            &self.keep,
        );
        line(
            "reloading the plugins of the following units",
            &self.plugins,
        );
        line("reloading the following units", &self.reload);
        line("restarting the following units", &self.restart);
        line("starting the following units", &self.start);
        out
    }
}

/// Computes the plan from the running units and the new tree.
pub(super) fn plan(current: &[Current], desired: &BTreeMap<String, Desired>) -> Plan {
    let mut p = Plan::default();
    let active: BTreeSet<&str> = current
        .iter()
        .filter(|c| c.active)
        .map(|c| c.name.as_str())
        .collect();
    for cur in current.iter().filter(|c| c.active) {
        let name = cur.name.clone();
        let Some(new) = desired.get(&cur.name).filter(|d| d.kind == cur.kind) else {
            if hint(&cur.sections, "Unit", "X-StopOnRemoval", true) {
                p.stop.insert(name);
            }
            continue;
        };
        if cur.kind == Kind::Socket && new.plugins_changed {
            p.plugins.insert(name.clone());
        }
        match (compare(&cur.sections, &new.sections), cur.kind) {
            (Diff::Same, _) | (Diff::Reload, Kind::Socket) => {}
            (Diff::Reload, Kind::Service) => {
                p.reload.insert(name);
            }
            (Diff::Restart, Kind::Socket) => {
                if cur.listens == new.listens {
                    p.keep.insert(name);
                } else {
                    p.restart.insert(name);
                }
            }
            (Diff::Restart, Kind::Service) => {
                let s = &new.sections;
                if hint(s, "Service", "X-ReloadIfChanged", false) {
                    p.reload.insert(name);
                } else if !hint(s, "Service", "X-RestartIfChanged", true)
                    || hint(s, "Unit", "RefuseManualStop", false)
                    || hint(s, "Unit", "X-OnlyManualStart", false)
                {
                    p.skip.insert(name);
                } else if !hint(s, "Service", "X-StopIfChanged", true) {
                    p.restart.insert(name);
                } else {
                    p.stop.insert(name.clone());
                    // A socket-activated service waits for its socket,
                    // unless the tree wants it (NixOS starts the active
                    // targets after a switch, which start it again) or
                    // NixOS marks it `X-NotSocketActivated=`.
                    if !cur.socket_activated
                        || new.wanted
                        || hint(s, "Service", "X-NotSocketActivated", false)
                    {
                        p.start.insert(name.clone());
                        p.stop_start.insert(name);
                    }
                }
            }
        }
    }
    // A socket whose listeners change hands its service new fds: a running
    // socket-activated service restarts with them.
    for cur in current
        .iter()
        .filter(|c| c.active && c.kind == Kind::Socket)
    {
        if p.restart.contains(&cur.name)
            && let Some(service) = socket_service(current, &cur.name)
            && !p.stop.contains(&service)
            && !p.skip.contains(&service)
        {
            p.reload.remove(&service);
            p.restart.insert(service);
        }
    }
    for (name, new) in desired {
        if new.wanted && !active.contains(name.as_str()) {
            p.start.insert(name.clone());
        }
    }
    p
}

/// The running service of the same base name as `socket`, if it is
/// socket-activated and active (the usual `foo.socket` → `foo.service`).
fn socket_service(current: &[Current], socket: &str) -> Option<String> {
    let base = socket.strip_suffix(".socket")?;
    let service = format!("{base}.service");
    current
        .iter()
        .find(|c| c.name == service && c.active && c.socket_activated)
        .map(|c| c.name.clone())
}

/// The running units the new tree does not start but still has a file
/// for: as in NixOS, they are compared with it, not stopped, though
/// nothing wants them any more.
fn still_in_tree<T>(
    current: &[Current],
    loaded: &BTreeMap<String, T>,
    search: &SearchPath,
) -> Vec<UnitName> {
    current
        .iter()
        .filter(|c| c.active && !loaded.contains_key(&c.name))
        .filter_map(|c| c.name.parse::<UnitName>().ok())
        .filter(|n| loader::resolve(search, n).is_ok())
        .collect()
}

/// A unit of the new tree, loaded and checked.
struct NewUnit {
    unit: Unit,
    kind: Kind,
    wanted: bool,
    socket: Option<SocketConfig>,
    policy: PolicyChange,
}

/// A socket's plugin chain in the new tree.
enum PolicyChange {
    /// The running chain stays.
    Keep,
    /// A chain loaded anew (`None`: the socket no longer has plugins).
    Replace(Option<SocketPolicy>),
}

/// What a switch did, for the caller to report.
#[derive(Debug, Default)]
pub(super) struct Switched {
    pub plan: Plan,
    /// Problems while applying (a new listener that could not be opened, an
    /// option the kernel refused); the rest of the switch went on.
    pub warnings: Vec<String>,
    /// The services stopped, started, restarted or reloaded.
    pub jobs: Vec<u64>,
}

/// How long a switch answer waits for its services to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(100);

/// A switch answer waiting until the services it touched have settled, as
/// `switch-to-configuration` waits for its `systemctl` jobs.
#[derive(Debug)]
pub(super) struct Waiting {
    jobs: Vec<u64>,
    /// Socket units whose start commands are waited for.
    sockets: Vec<String>,
    kind: WaitFor,
    answer: serde_json::Value,
    reply: tokio::sync::oneshot::Sender<serde_json::Value>,
    deadline: std::time::Instant,
}

/// What a waiting control answer is for, which decides its wording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum WaitFor {
    /// `flint ctl switch`: switch-to-configuration's words, exit 4.
    #[default]
    Switch,
    /// `flint ctl start|restart`: a failed unit fails the command.
    Start,
    /// `flint ctl stop`.
    Stop,
    /// `flint ctl reload`: a failed reload fails the command.
    Reload,
}

/// Grace period for the `Accept=yes` instances of a removed socket.
const INSTANCE_GRACE: Duration = Duration::from_secs(90);

impl Manager {
    /// Switches to the unit tree in `dir` (or the current search path read
    /// anew). With `dry_run`, only the plan. Errors: every reason the new
    /// tree was refused; nothing was changed then.
    /// `systemctl daemon-reload`: the generators run again and the unit
    /// files are read anew; loaded units take their new definitions (for
    /// their next start, their dependencies at once), and nothing is
    /// started, stopped or restarted, as in systemd (a switch does that).
    /// A unit whose file no longer loads keeps its old definition while it
    /// runs; a start of it is refused by what is on disk.
    pub(super) fn daemon_reload(&mut self) {
        if let Some(generators) = &self.options.generators
            && self.search.dirs.contains(&generators.output.normal)
        {
            super::log_generators(&generators.run());
        }
        for problem in crate::service::defaults::init(self.search.user_mode) {
            tracing::warn!("environment generator {problem}");
        }
        self.units = super::unit_cache::UnitCache::default();
        self.sweep_collected(super::control::COLLECT_GRACE);
        let collected: Vec<u64> = self.collected.iter().map(|(id, _)| *id).collect();
        let mut ids: Vec<u64> = self
            .services
            .iter()
            // A collected transient service has no file any more.
            .filter(|(id, s)| s.conn.is_none() && !collected.contains(id))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let mut gone = Vec::new();
        for id in ids {
            let Some(name) = self.services.get(&id).map(|s| s.unit.name.clone()) else {
                continue;
            };
            let unit = self.units.load(&self.search, &name);
            let Some(svc) = self.services.get_mut(&id) else {
                continue;
            };
            if unit.is_loaded() {
                svc.unit = unit.into();
                svc.deps = super::jobs::Deps::of(&svc.unit);
            } else if svc.state == super::lifecycle::State::Dead
                && matches!(
                    unit.load_state,
                    crate::unit::load::LoadState::NotFound | crate::unit::load::LoadState::Masked
                )
                && !svc.spawning
                && svc.sockets.is_empty()
                && !self.jobs.contains_key(&id)
            {
                // Stopped (a failed one stays until reset-failed), and its
                // file gone (a package purged) or masked: forgotten, as
                // systemd collects a unit that nothing holds; `status`
                // then says it cannot be found.
                gone.push(id);
            } else {
                tracing::warn!(
                    "{name}: {} after the reload; it keeps its old definition",
                    unit.load_state.as_str()
                );
            }
        }
        for id in gone {
            self.release_run(id);
            self.drop_service(id);
        }
        self.reload_targets();
        self.refresh_names();
        tracing::info!("flint: unit files read again (daemon-reload)");
    }

    /// Keeps only the names that still name their service after its
    /// definition was read again (an alias removed, or now a unit of its
    /// own, names it no longer).
    pub(super) fn refresh_names(&mut self) {
        let services = &self.services;
        self.by_name.retain(|n, id| {
            services.get(id).is_some_and(|s| {
                s.unit.id.as_str() == n
                    || s.unit.name.as_str() == n
                    || s.unit.aliases.iter().any(|a| a.as_str() == n)
            })
        });
    }

    pub(super) fn switch(
        &mut self,
        dir: Option<&Path>,
        dry_run: bool,
    ) -> Result<Switched, Vec<String>> {
        let search = match dir {
            Some(d) => {
                if !d.is_dir() {
                    return Err(vec![format!("{}: not a directory", d.display())]);
                }
                let d = std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf());
                SearchPath::from_dirs(vec![d], self.search.user_mode)
            }
            None => self.search.clone(),
        };
        // As systemd's daemon-reload: the unit generators run again first,
        // where the tree is the one they write to.
        if dir.is_none()
            && !dry_run
            && let Some(generators) = &self.options.generators
            && search.dirs.contains(&generators.output.normal)
        {
            super::log_generators(&generators.run());
        }
        // The tree as it is before loading it, for `--watch`.
        let stamp = super::tree_stamp(&search);
        let names = if self.requested.is_empty() {
            super::default_units(&search)
        } else {
            self.requested.clone()
        };
        let mut errors = Vec::new();
        let mut new: BTreeMap<String, NewUnit> = BTreeMap::new();
        // Timers are compared and applied on their own (`switch_timers`),
        // after the rest: a changed timer restarts, as NixOS restarts it.
        let (timers, planned): (Vec<UnitName>, Vec<UnitName>) = super::plan_units(&search, &names)
            .into_iter()
            .partition(|n| matches!(n.unit_type(), UnitType::Timer | UnitType::Path));
        for name in planned {
            self.load_new(&search, &name, true, &mut new, &mut errors);
        }
        // Timers and path units started by hand stay while their file
        // does, as services do (`still_in_tree`).
        let mut timers = timers;
        let running = self
            .timers
            .map
            .iter()
            .map(|(n, t)| (n, t.state.words().0))
            .chain(
                self.path_units
                    .map
                    .iter()
                    .map(|(n, p)| (n, p.state.words().0)),
            );
        for (name, state) in running {
            if state != "inactive"
                && !timers.iter().any(|n| n.as_str() == name.as_str())
                && let Ok(n) = name.parse::<UnitName>()
                && loader::resolve(&search, &n).is_ok()
            {
                timers.push(n);
            }
        }
        for name in &timers {
            let unit = load::load(&search, name);
            if !unit.is_loaded() {
                errors.extend(unit.diagnostics.iter().map(ToString::to_string));
                errors.push(format!(
                    "{name}: failed to load ({})",
                    unit.load_state.as_str()
                ));
                continue;
            }
            // What the timer starts is read anew too (not started by the
            // switch), so its next run is the new definition's.
            let target = if name.unit_type() == UnitType::Timer {
                super::timer::target_of(&unit)
            } else {
                super::path_unit::target_of(&unit)
            };
            if let Ok(target) = target.parse::<UnitName>()
                && loader::resolve(&search, &target).is_ok()
            {
                self.load_new(&search, &target, false, &mut new, &mut errors);
            }
        }
        if new.is_empty() && timers.is_empty() && errors.is_empty() {
            errors.push("the new unit tree has nothing to run".into());
        }
        for name in still_in_tree(&self.current_units(), &new, &search) {
            self.load_new(&search, &name, false, &mut new, &mut errors);
        }
        if !errors.is_empty() {
            // `--watch` takes the refused tree as seen: it tries again when
            // the tree changes, not because the generators rewrote their
            // output for this attempt.
            if dir.is_none()
                && !dry_run
                && let Some(watched) = &self.watched
            {
                watched.replace((self.search.clone(), stamp));
            }
            return Err(errors);
        }
        let mut current = self.current_units();
        // As NixOS: a service none of whose sockets is in the new tree is no
        // longer socket-activated.
        for c in current.iter_mut().filter(|c| c.socket_activated) {
            c.socket_activated = self
                .find_service(&c.name)
                .and_then(|id| self.services.get(&id))
                .is_some_and(|svc| {
                    svc.sockets.iter().any(|&i| {
                        new.get(&self.sockets[i].name)
                            .is_some_and(|n| n.kind == Kind::Socket)
                    })
                });
        }
        let desired: BTreeMap<String, Desired> = new
            .iter()
            .map(|(name, n)| {
                let plugins_changed = matches!(n.policy, PolicyChange::Replace(_))
                    && self
                        .socket_index(name)
                        .is_some_and(|i| !self.sockets[i].failed);
                (
                    name.clone(),
                    Desired {
                        kind: n.kind,
                        sections: sections(&n.unit),
                        listens: n
                            .socket
                            .as_ref()
                            .map(|c| c.listens.clone())
                            .unwrap_or_default(),
                        wanted: n.wanted,
                        plugins_changed,
                    },
                )
            })
            .collect();
        let mut plan = plan(&current, &desired);
        let triggering = self.plan_triggering(&search, &timers);
        plan.stop.extend(triggering.stop.iter().cloned());
        plan.restart.extend(triggering.restart.iter().cloned());
        plan.start.extend(triggering.start.iter().cloned());
        if !dry_run {
            self.roots = names.iter().map(ToString::to_string).collect();
        }
        if dry_run {
            return Ok(Switched {
                plan,
                ..Switched::default()
            });
        }
        // As systemd's daemon-reload: the environment generators run again,
        // for the units started from now on.
        for problem in crate::service::defaults::init(self.search.user_mode) {
            tracing::warn!("environment generator {problem}");
        }
        let (mut warnings, jobs) = self.apply(search, new, &plan, stamp);
        warnings.extend(self.switch_triggering(&triggering));
        Ok(Switched {
            plan,
            warnings,
            jobs,
        })
    }

    /// What a switch does to the timers and path units (NixOS's words):
    /// those no longer in the new tree stop, new ones start, and changed
    /// (or not running) ones start again, as NixOS restarts a changed
    /// timer. Kept in the switch's plan, so a dry run lists them too.
    fn plan_triggering(&self, search: &SearchPath, wanted: &[UnitName]) -> Plan {
        let mut plan = Plan::default();
        let held = self
            .timers
            .map
            .iter()
            .map(|(n, t)| (n, &t.unit, t.state.words().0))
            .chain(
                self.path_units
                    .map
                    .iter()
                    .map(|(n, p)| (n, &p.unit, p.state.words().0)),
            );
        for (name, unit, state) in held {
            match wanted.iter().find(|w| w.as_str() == name.as_str()) {
                None => {
                    plan.stop.insert(name.clone());
                }
                Some(w) => {
                    let new = load::load(search, w);
                    if state != "active" || sections(unit) != sections(&new) {
                        plan.restart.insert(name.clone());
                    }
                }
            }
        }
        for w in wanted {
            let key = w.to_string();
            if !self.timers.map.contains_key(&key) && !self.path_units.map.contains_key(&key) {
                plan.start.insert(key);
            }
        }
        plan
    }

    /// Carries out [`Self::plan_triggering`]'s plan. Returns warnings for
    /// the switch's answer.
    fn switch_triggering(&mut self, plan: &Plan) -> Vec<String> {
        let mut warnings = Vec::new();
        for name in plan.stop.iter().chain(&plan.restart) {
            self.stop_timer(name);
            self.stop_path_unit(name);
            self.timers.map.remove(name);
            self.path_units.map.remove(name);
        }
        for key in plan.restart.iter().chain(&plan.start) {
            let Ok(name) = key.parse::<UnitName>() else {
                continue;
            };
            let started = if name.unit_type() == UnitType::Timer {
                self.start_timer(&name)
            } else {
                self.start_path_unit(&name)
            };
            if !started {
                warnings.push(format!("{key}: could not be started; see the log"));
            }
        }
        warnings
    }

    /// The running socket (not removed) named `name`.
    pub(super) fn socket_index(&self, name: &str) -> Option<usize> {
        self.sockets
            .iter()
            .position(|s| s.name == name && !s.removed)
    }

    /// Loads `name` from the new tree into `new`, with what it pulls in: the
    /// service an `Accept=no` socket triggers, the sockets a service lists.
    fn load_new(
        &mut self,
        search: &SearchPath,
        name: &UnitName,
        wanted: bool,
        new: &mut BTreeMap<String, NewUnit>,
        errors: &mut Vec<String>,
    ) {
        let kind = match name.unit_type() {
            UnitType::Socket => Kind::Socket,
            UnitType::Service => Kind::Service,
            _ => return,
        };
        if let Some(n) = new.get_mut(name.as_str()) {
            n.wanted |= wanted;
            return;
        }
        let unit = load::load(search, name);
        if unit.load_state == load::LoadState::Masked {
            return;
        }
        if !unit.is_loaded() {
            errors.extend(unit.diagnostics.iter().map(ToString::to_string));
            errors.push(format!(
                "{name}: failed to load ({})",
                unit.load_state.as_str()
            ));
            return;
        }
        if let Some(why) = self.refused(&unit) {
            errors.push(format!("{name}: {why}"));
            return;
        }
        let mut pulled: Vec<UnitName> = Vec::new();
        let mut socket = None;
        let mut policy = PolicyChange::Keep;
        if kind == Kind::Socket {
            let config = match SocketConfig::from_unit(&unit) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("{name}: {e}"));
                    return;
                }
            };
            if config.accept {
                match loader::resolve(search, &config.service) {
                    Ok(src) if !src.masked => {}
                    _ => errors.push(format!("{name}: template {} not found", config.service)),
                }
            } else {
                pulled.push(config.service.clone());
            }
            match self.new_policy(name.as_str(), &unit) {
                Ok(p) => policy = p,
                Err(e) => errors.push(format!("{name}: {e}")),
            }
            socket = Some(config);
        } else {
            pulled.extend(super::listed_sockets(&unit).filter_map(|n| n.parse().ok()));
        }
        new.insert(
            name.to_string(),
            NewUnit {
                unit,
                kind,
                wanted,
                socket,
                policy,
            },
        );
        for p in pulled {
            let listed = p.unit_type() == UnitType::Socket;
            self.load_new(search, &p, listed, new, errors);
        }
    }

    /// The plugin chain of a socket in the new tree: the running one when
    /// nothing about it changed (plugins, files, settings), else loaded anew.
    fn new_policy(&mut self, name: &str, unit: &Unit) -> Result<PolicyChange, String> {
        let config = super::policy::PolicyConfig::from_unit(unit)?;
        let running = self
            .socket_index(name)
            .and_then(|i| self.sockets[i].policy.as_ref());
        let same = match (&config, running) {
            (None, None) => true,
            (Some(c), Some(r)) => {
                c.plugins == r.specs
                    && c.peek_bytes == r.peek_bytes
                    && c.peek_timeout == r.peek_timeout
                    && r.chain.plugins().iter().zip(&c.plugins).all(|(p, spec)| {
                        std::fs::read(&spec.path)
                            .is_ok_and(|b| crate::policy::sha256_hex(&b) == p.sha256())
                    })
            }
            _ => false,
        };
        if same && self.socket_index(name).is_some() {
            return Ok(PolicyChange::Keep);
        }
        Ok(PolicyChange::Replace(self.load_policy(unit)?))
    }

    /// The running units, as the planner sees them. `Accept=yes` instances
    /// are not units of the tree and are left out.
    fn current_units(&self) -> Vec<Current> {
        let mut out: Vec<Current> = self
            .sockets
            .iter()
            .filter(|s| !s.removed)
            .map(|s| Current {
                name: s.name.clone(),
                kind: Kind::Socket,
                active: !s.failed,
                sections: sections(&s.unit),
                listens: s.config.listens.clone(),
                socket_activated: false,
            })
            .collect();
        let mut ids: Vec<u64> = self
            .services
            .iter()
            .filter(|(_, s)| s.conn.is_none())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            let svc = &self.services[&id];
            out.push(Current {
                name: svc.unit.id.to_string(),
                kind: Kind::Service,
                active: !matches!(svc.state, State::Dead | State::Failed),
                sections: sections(&svc.unit),
                listens: Vec::new(),
                socket_activated: !svc.sockets.is_empty(),
            });
        }
        out
    }

    /// Applies a plan; returns the warnings.
    fn apply(
        &mut self,
        search: SearchPath,
        mut new: BTreeMap<String, NewUnit>,
        plan: &Plan,
        stamp: u64,
    ) -> (Vec<String>, Vec<u64>) {
        let mut warnings = Vec::new();
        let mut jobs: Vec<u64> = Vec::new();
        self.search = search;
        if let Some(watched) = &self.watched {
            watched.replace((self.search.clone(), stamp));
        }
        self.units = super::unit_cache::UnitCache::default();
        for line in plan.lines() {
            tracing::info!("flint: {line}");
        }
        // Stop.
        for name in &plan.stop {
            if let Some(index) = self.socket_index(name) {
                if !new.contains_key(name) {
                    self.remove_socket(index);
                }
            } else if let Some(id) = self.find_service(name) {
                self.stop_service(id, plan.stop_start.contains(name));
                jobs.push(id);
            }
        }
        // New definitions, kept and changed sockets.
        for (name, n) in &mut new {
            match n.kind {
                Kind::Service => {
                    if let Some(id) = self.find_service(name)
                        && let Some(svc) = self.services.get_mut(&id)
                    {
                        svc.unit = n.unit.clone().into();
                        svc.deps = super::jobs::Deps::of(&svc.unit);
                    }
                }
                Kind::Socket => {
                    let Some(index) = self.socket_index(name) else {
                        continue;
                    };
                    if self.sockets[index].failed {
                        continue;
                    }
                    if let Some(config) = n.socket.take() {
                        let unit = n.unit.clone();
                        let policy = std::mem::replace(&mut n.policy, PolicyChange::Keep);
                        warnings.extend(self.update_socket(index, unit, config, policy));
                    }
                }
            }
        }
        // Targets: their files, links and ordering as the new tree has them.
        self.reload_targets();
        self.refresh_names();
        // Reload.
        for name in &plan.reload {
            if let Some(id) = self.find_service(name) {
                jobs.push(id);
                if let Err(e) = self.reload(id) {
                    warnings.push(format!("{name}: reload failed: {e}"));
                }
            }
        }
        // Restart.
        for name in &plan.restart {
            if self.socket_index(name).is_some() {
                continue;
            }
            if let Some(id) = self.find_service(name) {
                jobs.push(id);
                match self.services.get(&id).map(|s| s.state) {
                    Some(State::Dead | State::Failed) => {
                        self.enqueue(id, super::jobs::JobKind::Start);
                    }
                    Some(_) => self.stop_service(id, true),
                    None => {}
                }
            }
        }
        // Start.
        for name in &plan.start {
            if plan.stop_start.contains(name) {
                continue;
            }
            let Ok(unit_name) = name.parse::<UnitName>() else {
                continue;
            };
            match unit_name.unit_type() {
                UnitType::Socket => {
                    // A socket that failed (or was stopped) is opened anew.
                    let opened = match self.socket_index(name) {
                        Some(i) => self.reopen_socket(i, &unit_name),
                        None => self.add_socket(&unit_name),
                    };
                    if !opened {
                        warnings.push(format!("{name}: could not be started; see the log"));
                    }
                }
                UnitType::Service => {
                    if let Some(id) = self.add_service(&unit_name) {
                        jobs.push(id);
                        self.add_listed_sockets(id);
                        if self
                            .services
                            .get(&id)
                            .is_some_and(|s| matches!(s.state, State::Dead | State::Failed))
                        {
                            self.enqueue(id, super::jobs::JobKind::Start);
                        }
                    } else {
                        warnings.push(format!("{name}: could not be started; see the log"));
                    }
                }
                _ => {}
            }
        }
        // Listeners nobody took over close now.
        self.close_spare();
        for w in &warnings {
            tracing::warn!("flint: {w}");
        }
        jobs.sort_unstable();
        jobs.dedup();
        (warnings, jobs)
    }

    /// Answers a control request now, or once the services of a switch
    /// have settled (bounded by [`SETTLE_TIMEOUT`]).
    pub(super) fn wait_for_jobs(
        &mut self,
        jobs: Vec<u64>,
        sockets: Vec<String>,
        kind: WaitFor,
        answer: serde_json::Value,
        reply: tokio::sync::oneshot::Sender<serde_json::Value>,
    ) {
        if jobs.is_empty() && sockets.is_empty() {
            let _ = reply.send(answer);
            return;
        }
        let tx = self.tx.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(SETTLE_TIMEOUT).await;
            let _ = tx.send(Event::Tick);
        });
        self.waiting.push(Waiting {
            jobs,
            sockets,
            kind,
            answer,
            reply,
            deadline: std::time::Instant::now() + SETTLE_TIMEOUT,
        });
    }

    /// Whether a service has no start, stop or reload in progress.
    fn settled(&self, id: u64) -> bool {
        !self.jobs.contains_key(&id)
            // Stopped for a socket's restart, it starts again once the
            // socket is open.
            && !self.socket_restarts.iter().any(|(_, s)| *s == id)
            && self.services.get(&id).is_none_or(|s| {
                // A job that timed out or was canceled by hand is over,
                // whatever the unit does.
                matches!(s.job_failed, Some("timeout" | "canceled"))
                    || !s.spawning
                        && !s.restart_requested
                        && matches!(
                            s.state,
                            State::Running | State::Dead | State::Failed | State::AutoRestart
                        )
            })
    }

    /// Sends the waiting switch answers whose services have settled (or
    /// whose time is up), naming the services that failed, as
    /// `switch-to-configuration` does (exit 4).
    pub(super) fn answer_settled(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        let mut i = 0;
        while i < self.waiting.len() {
            let w = &self.waiting[i];
            let done = w.jobs.iter().all(|id| self.settled(*id))
                && w.sockets.iter().all(|n| {
                    self.hooks_state(n).is_none()
                        && !self.socket_restarts.iter().any(|(r, _)| r == n)
                        // Its listeners closing, its ExecStopPost= running.
                        && !self
                            .socket_index(n)
                            .is_some_and(|i| self.closing_sockets.contains(&i))
                });
            if !done && now < w.deadline {
                i += 1;
                continue;
            }
            let w = self.waiting.swap_remove(i);
            let mut answer = w.answer;
            if w.kind != WaitFor::Switch {
                self.answer_job(w.kind, &w.jobs, &mut answer);
                // A stop waits for the sockets' stop commands; a socket
                // that ended failed (its start cut short) is stopped all
                // the same, as systemd's stop job succeeds.
                if w.kind != WaitFor::Stop {
                    self.answer_sockets(&w.sockets, &mut answer);
                }
                let _ = w.reply.send(answer);
                continue;
            }
            let failed: Vec<String> = w
                .jobs
                .iter()
                .filter_map(|id| self.services.get(id))
                .filter(|s| matches!(s.state, State::Failed | State::AutoRestart))
                .map(|s| s.unit.id.to_string())
                .collect();
            let pending: Vec<String> = w
                .jobs
                .iter()
                .filter(|id| !self.settled(**id))
                .filter_map(|id| self.services.get(id))
                .map(|s| s.unit.id.to_string())
                .collect();
            if let Some(lines) = answer["lines"].as_array_mut() {
                if !failed.is_empty() {
                    lines.push(
                        format!("warning: the following units failed: {}", failed.join(", "))
                            .into(),
                    );
                }
                if !pending.is_empty() {
                    lines.push(
                        format!(
                            "warning: still in progress after {}s: {}",
                            SETTLE_TIMEOUT.as_secs(),
                            pending.join(", ")
                        )
                        .into(),
                    );
                }
            }
            if !failed.is_empty() || !pending.is_empty() {
                answer["exit"] = 4.into();
            }
            let _ = w.reply.send(answer);
        }
    }

    /// The answer of `flint ctl start|stop|restart` once its jobs are done,
    /// in systemctl's words: a start or restart that ended failed, or is
    /// still going after [`SETTLE_TIMEOUT`], exits 1.
    fn answer_job(&self, kind: WaitFor, jobs: &[u64], answer: &mut serde_json::Value) {
        let start = kind == WaitFor::Start;
        let mut exit = 0;
        let mut lines: Vec<serde_json::Value> = Vec::new();
        for id in jobs {
            if let Some(t) = self.targets.get(id) {
                let name = t.unit.id.to_string();
                if !self.settled(*id) {
                    lines.push(job_still_running(&name));
                    exit = 1;
                } else if start && t.last_job == Some(super::jobs::JobResult::Dependency) {
                    lines.push(dependency_failed(&name));
                    exit = 1;
                } else if t.last_job == Some(super::jobs::JobResult::Timeout) {
                    lines.push(job_timed_out(&name));
                    exit = 1;
                } else if start && t.last_job == Some(super::jobs::JobResult::Canceled) {
                    lines.push(format!("Job for {name} canceled.").into());
                    exit = 1;
                }
                continue;
            }
            let Some(svc) = self.services.get(id) else {
                continue;
            };
            let name = svc.unit.id.to_string();
            if !self.settled(*id) {
                lines.push(job_still_running(&name));
                exit = 1;
            } else if start && svc.job_failed == Some("assert") {
                lines.push(format!("Assertion failed on job for {name}.").into());
                exit = 1;
            } else if svc.job_failed == Some("timeout") {
                lines.push(job_timed_out(&name));
                exit = 1;
            } else if start && svc.job_failed == Some("canceled") {
                lines.push(format!("Job for {name} canceled.").into());
                exit = 1;
            } else if start
                && svc.job_failed == Some("dependency")
                && !matches!(svc.state, State::Failed)
            {
                // A unit it requires failed, so its own job did (systemctl's
                // words for JOB_DEPENDENCY).
                lines.push(dependency_failed(&name));
                exit = 1;
            } else if (start && svc.job_failed == Some("failed"))
                || (kind == WaitFor::Reload && svc.state == State::Failed)
            {
                // A start that failed, or a service that failed during its
                // reload (its main process).
                lines.push(job_failed(&name, svc.result));
                exit = 1;
            } else if kind == WaitFor::Reload && svc.reload_result != "success" {
                // systemctl's words for a failed reload job.
                // (systemctl explains by the unit's result, which a
                // failed reload leaves alone.)
                lines.push(job_failed(&name, ""));
                exit = 1;
            }
        }
        if answer["ok"] == false {
            // A name was refused before the jobs ran: that is the answer,
            // and its exit status (systemctl's first error wins).
            if !lines.is_empty() {
                answer["errors"] = lines.into();
            }
        } else if exit != 0 {
            answer["ok"] = false.into();
            answer["exit"] = exit.into();
            answer["error"] = lines.remove(0);
            answer["errors"] = lines.into();
        }
    }

    /// The answer of `flint ctl start` for socket units whose start
    /// commands ran: one that failed (or still starts after
    /// [`SETTLE_TIMEOUT`]) fails the answer with exit 1, as systemctl's
    /// job does, unless a refusal answered already.
    fn answer_sockets(&self, sockets: &[String], answer: &mut serde_json::Value) {
        let mut lines: Vec<serde_json::Value> = Vec::new();
        for name in sockets {
            let result = self.socket_failures.get(name).copied().or_else(|| {
                self.socket_index(name)
                    .map(|i| &self.sockets[i])
                    .filter(|s| s.failed && !s.stopped)
                    .map(|s| s.result)
            });
            if self.hooks_state(name).is_some() {
                lines.push(job_still_running(name));
            } else if let Some(result) = result {
                lines.push(job_failed(name, result));
            }
        }
        if lines.is_empty() {
            return;
        }
        if answer["ok"] == false {
            let mut errors = answer["errors"].as_array().cloned().unwrap_or_default();
            errors.extend(lines);
            answer["errors"] = errors.into();
        } else {
            answer["ok"] = false.into();
            answer["exit"] = 1.into();
            answer["error"] = lines.remove(0);
            answer["errors"] = lines.into();
        }
    }

    /// Stops a service for a switch; with `again`, starts it once stopped.
    fn stop_service(&mut self, id: u64, again: bool) {
        if !again
            && self
                .jobs
                .get(&id)
                .is_some_and(|j| j.kind != super::jobs::JobKind::Stop)
        {
            // A start (or restart) waiting for its turn does not happen.
            self.finish_job(id, super::jobs::JobResult::Canceled);
        }
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        match svc.state {
            State::Dead | State::Failed => {
                if again {
                    self.start(id);
                }
            }
            State::AutoRestart => {
                svc.state = State::Dead;
                svc.stopping = !again;
                if again {
                    self.start(id);
                }
            }
            State::Stop(_)
            | State::StopSigterm
            | State::StopWatchdog
            | State::StopSigkill
            | State::StopPost(_) => {
                svc.restart_requested = again;
                svc.stopping = !again;
            }
            _ => {
                svc.stopping = !again;
                svc.restart_requested = again;
                self.step(id, State::Stop(0));
            }
        }
    }

    /// Removes a socket of the old tree: its listeners close now, its
    /// `Accept=yes` instances may finish within the grace period.
    fn remove_socket(&mut self, index: usize) {
        let rt = &mut self.sockets[index];
        tracing::info!(
            "{}: removed from the unit tree; closing its listeners",
            rt.name
        );
        // The listeners close at the end of the switch, unless a new socket
        // with the same address takes them over.
        rt.disarm();
        rt.stop_watching();
        let options = rt.config.options.clone();
        let listeners = std::mem::take(&mut rt.listeners);
        self.spare
            .extend(listeners.into_iter().map(|l| (l, options.clone())));
        let rt = &mut self.sockets[index];
        rt.failed = true;
        rt.removed = true;
        for svc in self.services.values_mut() {
            if svc.conn.is_none() {
                svc.sockets.retain(|s| *s != index);
            }
        }
        if rt.active > 0 {
            let tx = self.tx.clone();
            tokio::task::spawn_local(async move {
                tokio::time::sleep(INSTANCE_GRACE).await;
                let _ = tx.send(Event::InstancesGrace { socket: index });
            });
        }
        // Stopped as `systemctl stop` would: its stop commands run (their
        // outcome is only logged) while the switch goes on.
        let unit = self.sockets[index].unit.clone();
        self.run_commands_logged(unit, &["ExecStopPre", "ExecStopPost"]);
    }

    /// The grace period of a removed socket's instances is over: stop them.
    pub(super) fn on_instances_grace(&mut self, socket: usize) {
        let ids: Vec<u64> = self
            .services
            .iter()
            .filter(|(_, s)| s.conn.as_ref().is_some_and(|(_, i, _)| *i == socket))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.stop_service(id, false);
        }
    }

    /// Brings a running socket to its new definition. Listeners whose
    /// address is unchanged keep their file descriptor, with changed
    /// options applied in place; the others are opened or closed.
    fn update_socket(
        &mut self,
        index: usize,
        unit: Unit,
        config: SocketConfig,
        policy: PolicyChange,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        let name = self.sockets[index].name.clone();
        let old_service = self.sockets[index].config.service.clone();
        let rt = &mut self.sockets[index];
        let rewatch = rt.config.listens != config.listens
            || rt.config.accept != config.accept
            || rt.config.poll_interval != config.poll_interval
            || rt.config.poll_burst != config.poll_burst;
        if rewatch {
            rt.stop_watching();
        }
        let mut old: Vec<super::socket::OpenListener> = std::mem::take(&mut rt.listeners);
        let mut listeners = Vec::new();
        for kind in &config.listens {
            if let Some(pos) = old.iter().position(|l| l.kind == *kind) {
                let l = old.remove(pos);
                for w in
                    crate::listen::update(l.fd.as_fd(), kind, &rt.config.options, &config.options)
                {
                    warnings.push(format!("{name}: {w}"));
                }
                listeners.push(l);
                continue;
            }
            if let Some((l, took)) =
                super::socket::take_spare(&mut self.spare, kind, &config.options)
            {
                warnings.extend(took.into_iter().map(|w| format!("{name}: {w}")));
                tracing::info!("{name}: took over {}", l.describe());
                listeners.push(l);
                continue;
            }
            match crate::listen::open(kind, &config.options) {
                Ok(l) => {
                    tracing::info!("{name}: listening on {kind}");
                    warnings.extend(l.warnings.iter().map(|w| format!("{name}: {w}")));
                    listeners.push(super::socket::OpenListener {
                        fd: l.fd,
                        kind: l.kind,
                    });
                }
                Err(e) => warnings.push(format!("{name}: failed to listen on {kind}: {e}")),
            }
        }
        // Listeners this socket no longer has: another socket may take them
        // over; the rest close at the end of the switch.
        let options = rt.config.options.clone();
        self.spare
            .extend(old.drain(..).map(|l| (l, options.clone())));
        let rt = &mut self.sockets[index];
        rt.listeners = listeners;
        if rt.config.trigger_interval != config.trigger_interval
            || rt.config.trigger_burst != config.trigger_burst
        {
            rt.trigger_limit = RateLimit::new(config.trigger_interval, config.trigger_burst);
        }
        rt.unit = unit;
        rt.config = config;
        if let PolicyChange::Replace(p) = policy {
            rt.policy = p;
        }
        if rewatch {
            let tx = self.tx.clone();
            tokio::task::spawn_local(async move {
                // Let the aborted watchers drop (and deregister their fds)
                // before new ones register the same fds.
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                let _ = tx.send(Event::Rewatch { socket: index });
            });
        }
        // Accept=no: the socket may trigger another service now.
        let rt = &self.sockets[index];
        if !rt.config.accept && rt.config.service != old_service {
            let service = rt.config.service.clone();
            for svc in self.services.values_mut() {
                if svc.conn.is_none() {
                    svc.sockets.retain(|s| *s != index);
                }
            }
            if let Some(id) = self.add_service(&service)
                && let Some(svc) = self.services.get_mut(&id)
                && !svc.sockets.contains(&index)
            {
                svc.sockets.push(index);
            }
        }
        warnings
    }
}

/// systemctl's words for a job still going after [`SETTLE_TIMEOUT`].
/// systemctl's words for a job that ended with result `timeout`.
fn job_timed_out(name: &str) -> serde_json::Value {
    format!("Job for {name} timed out.").into()
}

/// systemctl's words for a job that failed with result `dependency`.
fn dependency_failed(name: &str) -> serde_json::Value {
    format!("A dependency job for {name} failed. See \"flint ctl status {name}\" for details.")
        .into()
}

fn job_still_running(name: &str) -> serde_json::Value {
    format!(
        "Job for {name} is still running after {}s; see \"flint ctl status {name}\".",
        SETTLE_TIMEOUT.as_secs()
    )
    .into()
}

/// systemctl's words for a failed job; `what` is its result
/// (`result 'exit-code'`, `reload result 'timeout'`).
/// systemctl's words for a failed job (`log_job_error_with_service_result()`):
/// a service's result explained, "Job for X failed." otherwise.
fn job_failed(name: &str, result: &str) -> serde_json::Value {
    let why = match result {
        "resources" => Some("of unavailable resources or another system error"),
        "protocol" => Some("the service did not take the steps required by its unit configuration"),
        "timeout" => Some("a timeout was exceeded"),
        "exit-code" => Some("the control process exited with error code"),
        "signal" => Some("a fatal signal was delivered to the control process"),
        "core-dump" => {
            Some("a fatal signal was delivered causing the control process to dump core")
        }
        "watchdog" => Some("the service failed to send watchdog ping"),
        "start-limit" | "start-limit-hit" => Some("start of the service was attempted too often"),
        _ => None,
    }
    .filter(|_| name.ends_with(".service"));
    let first = match why {
        Some(why) => format!("Job for {name} failed because {why}."),
        None => format!("Job for {name} failed."),
    };
    format!("{first}\nSee \"flint ctl status {name}\" and \"flint ctl logs {name}\" for details.")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(pairs: &[(&str, &str, &str)]) -> Sections {
        let mut s = Sections::new();
        for (section, key, value) in pairs {
            s.entry((*section).to_string())
                .or_default()
                .entry((*key).to_string())
                .or_default()
                .push((*value).to_string());
        }
        s
    }

    fn service(name: &str, active: bool, sections: Sections) -> Current {
        Current {
            name: name.into(),
            kind: Kind::Service,
            active,
            sections,
            listens: Vec::new(),
            socket_activated: false,
        }
    }

    fn desired(sections: Sections) -> Desired {
        Desired {
            kind: Kind::Service,
            sections,
            listens: Vec::new(),
            wanted: true,
            plugins_changed: false,
        }
    }

    #[test]
    fn compare_follows_switch_to_configuration() {
        let a = secs(&[("Service", "ExecStart", "a"), ("Unit", "Description", "x")]);
        assert_eq!(compare(&a, &a), Diff::Same);
        let described = secs(&[("Service", "ExecStart", "a"), ("Unit", "Description", "y")]);
        assert_eq!(compare(&a, &described), Diff::Same);
        let b = secs(&[("Service", "ExecStart", "b"), ("Unit", "Description", "x")]);
        assert_eq!(compare(&a, &b), Diff::Restart);
        let mut r = a.clone();
        r.entry("Unit".into())
            .or_default()
            .insert("X-Reload-Triggers".into(), vec!["t1".into()]);
        assert_eq!(compare(&a, &r), Diff::Reload);
        // Triggers removed: nothing, as in NixOS (the key is ignored when
        // it is missing from the new unit).
        assert_eq!(compare(&r, &a), Diff::Same);
        let mut r2 = a.clone();
        r2.entry("Unit".into())
            .or_default()
            .insert("X-Reload-Triggers".into(), vec!["t2".into()]);
        assert_eq!(compare(&r, &r2), Diff::Reload);
        let only_triggers = secs(&[("Unit", "X-Reload-Triggers", "t1")]);
        assert_eq!(compare(&only_triggers, &Sections::new()), Diff::Same);
        assert_eq!(compare(&Sections::new(), &only_triggers), Diff::Reload);
        let mut rr = r.clone();
        rr.entry("Service".into())
            .or_default()
            .insert("Environment".into(), vec!["A=1".into()]);
        assert_eq!(compare(&r, &rr), Diff::Restart);
        let mut t = a.clone();
        t.entry("Unit".into())
            .or_default()
            .insert("X-Restart-Triggers".into(), vec!["t".into()]);
        assert_eq!(compare(&a, &t), Diff::Restart);
        assert_eq!(compare(&a, &Sections::new()), Diff::Restart);
    }

    #[test]
    fn hints_read_as_nixos_reads_them() {
        let s = secs(&[
            ("Service", "X-RestartIfChanged", "false"),
            ("Service", "X-StopIfChanged", "yes"),
            ("Service", "X-StopIfChanged", "0"),
        ]);
        assert!(!hint(&s, "Service", "X-RestartIfChanged", true));
        assert!(!hint(&s, "Service", "X-StopIfChanged", true));
        assert!(hint(&s, "Service", "X-ReloadIfChanged", true));
        assert!(!hint(&s, "Unit", "X-OnlyManualStart", false));
    }

    #[test]
    fn plan_applies_every_hint() {
        let old = secs(&[("Service", "ExecStart", "old")]);
        let with = |hints: &[(&str, &str, &str)]| {
            let mut s = secs(&[("Service", "ExecStart", "new")]);
            for (sec, k, v) in hints {
                s.entry((*sec).into())
                    .or_default()
                    .insert((*k).into(), vec![(*v).into()]);
            }
            s
        };
        let current = vec![
            service("plain.service", true, old.clone()),
            service("reload.service", true, old.clone()),
            service("norestart.service", true, old.clone()),
            service("manual.service", true, old.clone()),
            service("nostop.service", true, old.clone()),
            service("same.service", true, old.clone()),
            service("gone.service", true, old.clone()),
            service(
                "keep.service",
                true,
                secs(&[("Unit", "X-StopOnRemoval", "false")]),
            ),
            service("idle.service", false, old.clone()),
        ];
        let mut d = BTreeMap::new();
        d.insert("plain.service".to_string(), desired(with(&[])));
        d.insert(
            "reload.service".to_string(),
            desired(with(&[("Service", "X-ReloadIfChanged", "true")])),
        );
        d.insert(
            "norestart.service".to_string(),
            desired(with(&[("Service", "X-RestartIfChanged", "false")])),
        );
        d.insert(
            "manual.service".to_string(),
            desired(with(&[("Unit", "X-OnlyManualStart", "true")])),
        );
        d.insert(
            "nostop.service".to_string(),
            desired(with(&[("Service", "X-StopIfChanged", "false")])),
        );
        d.insert("same.service".to_string(), desired(old.clone()));
        d.insert("idle.service".to_string(), desired(with(&[])));
        d.insert("new.service".to_string(), desired(with(&[])));
        let p = plan(&current, &d);
        assert_eq!(
            p.lines(),
            [
                "stopping the following units: gone.service, plain.service",
                "NOT restarting the following changed units: manual.service, norestart.service",
                "reloading the following units: reload.service",
                "restarting the following units: nostop.service",
                "starting the following units: idle.service, new.service, plain.service",
            ]
        );
    }

    #[test]
    fn sockets_keep_listeners_unless_addresses_change() {
        let addr = |a: &str| ListenKind::Stream(a.parse().expect("address"));
        let sock = |name: &str, listens: Vec<ListenKind>, s: Sections| Current {
            name: name.into(),
            kind: Kind::Socket,
            active: true,
            sections: s,
            listens,
            socket_activated: false,
        };
        let old = secs(&[("Socket", "Backlog", "10")]);
        let new = secs(&[("Socket", "Backlog", "20")]);
        let mut svc = service("b.service", true, secs(&[("Service", "ExecStart", "x")]));
        svc.socket_activated = true;
        let current = vec![
            sock("a.socket", vec![addr("127.0.0.1:1")], old.clone()),
            sock("b.socket", vec![addr("127.0.0.1:2")], old.clone()),
            svc,
        ];
        let mut d = BTreeMap::new();
        let ds = |listens: Vec<ListenKind>, s: Sections, plugins_changed| Desired {
            kind: Kind::Socket,
            sections: s,
            listens,
            wanted: true,
            plugins_changed,
        };
        d.insert(
            "a.socket".to_string(),
            ds(vec![addr("127.0.0.1:1")], new.clone(), true),
        );
        d.insert(
            "b.socket".to_string(),
            ds(vec![addr("127.0.0.1:3")], new.clone(), false),
        );
        let mut same = desired(secs(&[("Service", "ExecStart", "x")]));
        same.wanted = false;
        d.insert("b.service".to_string(), same);
        let p = plan(&current, &d);
        assert_eq!(
            p.lines(),
            [
                "keeping the listeners of the following changed units: a.socket",
                "reloading the plugins of the following units: a.socket",
                "restarting the following units: b.service, b.socket",
            ]
        );
    }

    #[test]
    fn changed_socket_activated_service_stops_and_is_not_started() {
        let mut svc = service("s.service", true, secs(&[("Service", "ExecStart", "a")]));
        svc.socket_activated = true;
        let mut d = BTreeMap::new();
        let mut new = desired(secs(&[("Service", "ExecStart", "b")]));
        new.wanted = false;
        d.insert("s.service".to_string(), new);
        let p = plan(&[svc], &d);
        assert_eq!(p.lines(), ["stopping the following units: s.service"]);
        assert!(p.stop_start.is_empty());
    }

    #[test]
    fn running_units_whose_file_stays_are_compared_not_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in ["kept.service", "idle.service", "loaded.service"] {
            std::fs::write(dir.path().join(f), "[Service]\nExecStart=/bin/true\n").expect("write");
        }
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        let none = Sections::new();
        let current = [
            service("kept.service", true, none.clone()),
            service("gone.service", true, none.clone()),
            service("idle.service", false, none.clone()),
            service("loaded.service", true, none),
        ];
        let loaded = BTreeMap::from([("loaded.service".to_string(), 0)]);
        let names: Vec<String> = still_in_tree(&current, &loaded, &search)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["kept.service"]);
    }

    #[test]
    fn changed_socket_activated_service_is_started_again_when_wanted_or_marked() {
        // Wanted by the tree (NixOS starts the active targets afterwards),
        // or marked X-NotSocketActivated=: stopped and started again.
        for (wanted, marked) in [(true, false), (false, true)] {
            let mut svc = service("s.service", true, secs(&[("Service", "ExecStart", "a")]));
            svc.socket_activated = true;
            let mut pairs = vec![("Service", "ExecStart", "b")];
            if marked {
                pairs.push(("Service", "X-NotSocketActivated", "true"));
            }
            let mut new = desired(secs(&pairs));
            new.wanted = wanted;
            let d = BTreeMap::from([("s.service".to_string(), new)]);
            let p = plan(&[svc], &d);
            assert_eq!(
                p.lines(),
                [
                    "stopping the following units: s.service",
                    "starting the following units: s.service",
                ],
                "wanted {wanted}, marked {marked}"
            );
            assert!(p.stop_start.contains("s.service"));
        }
    }
}
