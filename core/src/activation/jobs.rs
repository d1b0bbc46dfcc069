//! Jobs and the dependencies between units, after systemd's `job.c`,
//! `transaction.c` and `unit.c`.
//!
//! Every start, stop and restart of a service is a job. A request (the
//! units of `flint run`, `flint ctl start/stop/restart`, a socket
//! activation, an automatic restart, the stop of everything at shutdown)
//! becomes a transaction: the job for the unit asked for plus what its
//! dependencies pull in: starts for `Requires=`, `BindsTo=` and `Wants=`,
//! stops for `Conflicts=` (both ways), stops or restarts for the units that
//! `Requires=`, `BindsTo=`, `Requisite=` or are `PartOf=` a stopped or
//! restarted one. Jobs then wait for each other by `After=`/`Before=`
//! exactly as systemd's `job_compare()` orders them:
//!
//! - a start waits for every job of the units it is ordered after: it runs
//!   once those units finished starting (`READY=1` for notify, the exit
//!   for oneshot, the PID file for forking, the fork for simple, the
//!   `execve()` for exec) or stopping;
//! - any job waits for the stops (and restarts) of the units it is ordered
//!   before: stops run in the reverse order of starts.
//!
//! A start that fails fails the waiting starts of the units that
//! `Requires=`, `BindsTo=` or `Requisite=` it with result `dependency`
//! ("Dependency failed for ..."); `Wants=` ones go on. A unit that goes
//! down on its own takes the units `BindsTo=` it down, and a unit running
//! while a unit it `BindsTo=` is inactive is stopped.
//!
//! Targets get jobs as services do (see `target`): their start waits for
//! their ordering and pulls in what they want. Units flint does not run
//! (mounts, devices, ...) count as active and have no jobs; slices pull
//! in their parents without a job. Socket, timer and path units are
//! started and stopped at once and have no jobs either: a socket is active
//! while it listens. A request by hand (`flint ctl`) is refused whole when
//! it requires a unit that does not load or its jobs are ordered in a
//! cycle that leaving out wanted units does not break
//! (`transaction_verify_order()`); flint's own requests run their jobs and
//! break such a cycle as they run.

use std::collections::{HashMap, VecDeque};

use super::Manager;
use super::lifecycle::{State, signal_group};
use crate::unit::load::{Unit, Value};
use crate::unit::name::{UnitName, UnitType};

/// The dependencies of a unit on others, by unit name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Deps {
    pub after: Vec<String>,
    pub before: Vec<String>,
    /// `Requires=` and `.requires/` links.
    pub requires: Vec<String>,
    pub requisite: Vec<String>,
    /// `Wants=` and `.wants/` links.
    pub wants: Vec<String>,
    pub binds_to: Vec<String>,
    pub part_of: Vec<String>,
    pub conflicts: Vec<String>,
    /// `Upholds=`: wanted, and started again whenever it is down while
    /// this unit is active.
    pub upholds: Vec<String>,
    /// `StopWhenUnneeded=yes`.
    pub stop_when_unneeded: bool,
    /// `PropagatesStopTo=`: stopped when this one stops.
    pub propagates_stop_to: Vec<String>,
    /// `StopPropagatedFrom=`: this one stops when these do.
    pub stop_propagated_from: Vec<String>,
    /// `ReloadPropagatedFrom=`: reloaded when these are.
    pub reload_from: Vec<String>,
    /// `PropagatesReloadTo=` (and its old name `PropagateReloadTo=`):
    /// these are reloaded when this one is.
    pub reload_to: Vec<String>,
}

impl Deps {
    pub fn of(unit: &Unit) -> Deps {
        let names = |key: &str| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for (v, _) in unit.entries("Unit", key) {
                if let Value::Unit(n) = v
                    && !out.contains(n)
                {
                    out.push(n.clone());
                }
            }
            out
        };
        let with_links = |mut list: Vec<String>, links: &[UnitName]| {
            for l in links {
                if !list.iter().any(|n| n == l.as_str()) {
                    list.push(l.to_string());
                }
            }
            list
        };
        // `Slice=` implies `Requires=` and `After=` on the slice, and a
        // slice has both on its parent (systemd's
        // `unit_add_slice_dependencies()`), so a masked or broken slice
        // fails what runs in it. A service names every slice it is in, as
        // a failure propagates through them in systemd.
        let slices: Vec<String> = match unit.name.unit_type() {
            UnitType::Service => unit
                .get_str("Service", "Slice")
                .and_then(crate::cgroup::slice_chain)
                .unwrap_or_default(),
            UnitType::Slice => crate::cgroup::slice_chain(unit.id.as_str())
                .and_then(|mut chain| {
                    chain.pop();
                    chain.pop()
                })
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        let with_slice = |mut list: Vec<String>| {
            for s in &slices {
                if !list.contains(s) {
                    list.push(s.clone());
                }
            }
            list
        };
        Deps {
            after: with_slice(names("After")),
            before: names("Before"),
            requires: with_slice(with_links(names("Requires"), &unit.requires)),
            requisite: names("Requisite"),
            wants: with_links(names("Wants"), &unit.wants),
            binds_to: names("BindsTo"),
            part_of: names("PartOf"),
            conflicts: names("Conflicts"),
            upholds: names("Upholds"),
            reload_from: names("ReloadPropagatedFrom"),
            reload_to: {
                let mut to = names("PropagatesReloadTo");
                for n in names("PropagateReloadTo") {
                    if !to.contains(&n) {
                        to.push(n);
                    }
                }
                to
            },
            stop_when_unneeded: unit.get_bool("Unit", "StopWhenUnneeded").unwrap_or(false),
            propagates_stop_to: names("PropagatesStopTo"),
            stop_propagated_from: names("StopPropagatedFrom"),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Deps::default()
    }

    /// Whether a stop or restart of `other` reaches this unit (systemd's
    /// `PROPAGATE_STOP`/`PROPAGATE_RESTART`: `Requires=`, `BindsTo=`,
    /// `Requisite=`, `PartOf=`).
    pub fn follows_stop_of(&self, other: &str) -> bool {
        [
            &self.requires,
            &self.binds_to,
            &self.requisite,
            &self.part_of,
        ]
        .iter()
        .any(|l| l.iter().any(|n| n == other))
    }

    /// Whether a failed start of `other` fails this unit's start
    /// (`PROPAGATE_START_FAILURE`: `Requires=`, `BindsTo=`, `Requisite=`).
    pub fn needs(&self, other: &str) -> bool {
        [&self.requires, &self.binds_to, &self.requisite]
            .iter()
            .any(|l| l.iter().any(|n| n == other))
    }
}

/// What a unit is doing, as systemd's `UnitActiveState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Class {
    #[default]
    Inactive,
    Failed,
    Activating,
    Active,
    Deactivating,
}

impl Class {
    pub fn of(state: State) -> Class {
        match state {
            State::Dead => Class::Inactive,
            State::Failed => Class::Failed,
            State::Condition(_)
            | State::StartPre(_)
            | State::Start(_)
            | State::StartPost(_)
            | State::AutoRestart => Class::Activating,
            State::Running | State::Reload(_) | State::ReloadNotify => Class::Active,
            State::Stop(_)
            | State::StopSigterm
            | State::StopWatchdog
            | State::StopSigkill
            | State::StopPost(_) => Class::Deactivating,
        }
    }

    fn up(self) -> bool {
        matches!(self, Class::Active | Class::Activating)
    }

    fn down(self) -> bool {
        matches!(self, Class::Inactive | Class::Failed)
    }
}

/// Why a request was refused as a whole, with `flint ctl`'s exit status.
#[derive(Debug)]
pub(super) struct Refused {
    pub exit: u8,
    pub why: String,
}

/// What the job engine saw of a service at its last look.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Seen {
    class: Class,
    downs: u64,
    launches: u64,
}

/// When a unit last changed between systemd's active states, in µs since
/// the epoch (0: never), as its `InactiveExitTimestamp=`,
/// `ActiveEnterTimestamp=`, `ActiveExitTimestamp=` and
/// `InactiveEnterTimestamp=`; `status` says "since" from them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct StateTimes {
    pub inactive_exit: u64,
    pub active_enter: u64,
    pub active_exit: u64,
    pub inactive_enter: u64,
    /// The same four on `CLOCK_MONOTONIC` (systemd's dual timestamps:
    /// `systemd-analyze` measures with these, whatever the wall clock did).
    monotonic: [u64; 4],
}

impl StateTimes {
    /// Notes a change from `from` to `to`, now.
    pub fn note(&mut self, from: Class, to: Class) {
        let down = |c: Class| matches!(c, Class::Inactive | Class::Failed);
        let at = crate::logs::epoch_usec();
        let mono = crate::logs::mono_usec();
        if down(from) && !down(to) {
            self.inactive_exit = at;
            self.monotonic[0] = mono;
        }
        if from != Class::Active && to == Class::Active {
            self.active_enter = at;
            self.monotonic[1] = mono;
        }
        if from == Class::Active && to != Class::Active {
            self.active_exit = at;
            self.monotonic[2] = mono;
        }
        if !down(from) && down(to) {
            self.inactive_enter = at;
            self.monotonic[3] = mono;
        }
    }

    /// The time systemctl's status says the state holds since (0: none):
    /// by the state's name.
    pub fn since(&self, state: &str) -> u64 {
        match state {
            "active" | "reloading" => self.active_enter,
            "inactive" | "failed" => self.inactive_enter,
            "activating" => self.inactive_exit,
            _ => self.active_exit,
        }
    }

    /// systemd's names of the four, in `show`'s order.
    pub const NAMES: [&'static str; 4] = [
        "InactiveExitTimestamp",
        "ActiveEnterTimestamp",
        "ActiveExitTimestamp",
        "InactiveEnterTimestamp",
    ];

    /// The names of their monotonic halves, in the same order.
    pub const MONOTONIC_NAMES: [&'static str; 4] = [
        "InactiveExitTimestampMonotonic",
        "ActiveEnterTimestampMonotonic",
        "ActiveExitTimestampMonotonic",
        "InactiveEnterTimestampMonotonic",
    ];

    /// As `show` lists them: systemd's names, µs since the epoch, then
    /// the monotonic halves (µs since boot).
    pub fn properties(&self) -> [(&'static str, u64); 8] {
        let [a, b, c, d] = Self::NAMES;
        let [ma, mb, mc, md] = Self::MONOTONIC_NAMES;
        let [m0, m1, m2, m3] = self.monotonic;
        [
            (a, self.inactive_exit),
            (b, self.active_enter),
            (c, self.active_exit),
            (d, self.inactive_enter),
            (ma, m0),
            (mb, m1),
            (mc, m2),
            (md, m3),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JobKind {
    Start,
    Stop,
    /// Stop, then start (the job becomes a start once the unit is down).
    Restart,
    /// Restart when active, else nothing (what a restart propagates).
    TryRestart,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Start => "start",
            JobKind::Stop => "stop",
            JobKind::Restart => "restart",
            JobKind::TryRestart => "try-restart",
        }
    }
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JobResult {
    Done,
    Canceled,
    Failed,
    Dependency,
    /// `JobTimeoutSec=` passed before the job was done.
    Timeout,
}

/// A job installed for a service.
#[derive(Debug)]
pub(super) struct Job {
    pub kind: JobKind,
    /// Acting on the unit (not waiting for ordering any more).
    pub running: bool,
    /// Ordering is ignored (it was part of an ordering cycle).
    ignore_order: bool,
    /// The service's counters when the job began to act.
    ups: u64,
    downs: u64,
    /// Tells this job's `JobTimeoutSec=` from that of an earlier one.
    pub serial: u64,
}

/// The serial of the next job.
static JOB_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Job {
    fn new(kind: JobKind) -> Job {
        Job {
            kind,
            running: false,
            ignore_order: false,
            ups: 0,
            downs: 0,
            serial: JOB_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// systemd's `job_compare()`: whether a job of kind `mine` waits for a job
/// of kind `other` on a unit it is ordered after (`after`) or before
/// (`before`). Stops go first; among starts, the unit ordered first; among
/// stops, the unit ordered last.
pub(super) fn job_waits(mine: JobKind, other: JobKind, after: bool, before: bool) -> bool {
    let other_stops = matches!(other, JobKind::Stop | JobKind::Restart);
    (after && mine == JobKind::Start) || (before && other_stops)
}

/// A unit as a transaction sees it.
pub(super) enum Node {
    /// A service, socket or target flint runs; it gets a job.
    Runs(Deps),
    /// A slice: no job, but it pulls in its parent.
    Group(Deps),
    /// A unit of a type flint does not run: it counts as there.
    Foreign,
    /// A service or socket that does not load.
    Missing,
}

/// The units a transaction is built from.
pub(super) trait Graph {
    /// `name` as a transaction sees it (loading it when needed).
    fn node(&mut self, name: &str) -> Node;
    /// Every unit with jobs and dependencies, for the reverse directions.
    fn each(&self, f: &mut dyn FnMut(&str, &Deps));
    /// Whether a job `kind` for `name` (not the anchor) would change
    /// nothing: a start of an active unit, a stop of an inactive one, with
    /// no job of their own (systemd's `transaction_drop_redundant()`).
    fn redundant(&self, _name: &str, _kind: JobKind) -> bool {
        false
    }
}

/// The jobs a request needs, in the order they were found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Transaction {
    pub jobs: Vec<(String, JobKind)>,
    /// Units that `Requires=`/`BindsTo=` pulled in but that do not load.
    pub missing: Vec<String>,
    /// Those of them the anchor needs (through requirements only, not
    /// through a unit it merely wants): systemd refuses such a request.
    pub missing_needed: Vec<String>,
    /// Units both to start and to stop where both jobs matter to the
    /// request (systemd refuses it): they keep their start.
    pub contradictions: Vec<String>,
    /// Jobs left out to break an ordering cycle (only pulled in by
    /// `Wants=`), with the cycle.
    pub dropped: Vec<(String, Vec<String>)>,
    /// An ordering cycle among jobs that all matter to the request: the
    /// whole request is refused ("Transaction order is cyclic").
    pub cyclic: Option<Vec<String>>,
}

/// Builds the transaction for `kind` on `anchor`, as systemd's
/// `transaction_add_job_and_dependencies()`.
pub(super) fn transaction(graph: &mut dyn Graph, anchor: &str, kind: JobKind) -> Transaction {
    let mut tr = Transaction::default();
    // (unit, job, required by the unit that pulled it in, matters to the
    // anchor: reached from it through requirements, not `Wants=`; a stop
    // asked for by the `Conflicts=` of the unit that pulled it in).
    let mut queue: VecDeque<(String, JobKind, bool, bool, bool)> = VecDeque::new();
    queue.push_back((anchor.to_string(), kind, true, true, false));
    // Per unit: the job it got (or would have got, for slices).
    let mut planned: HashMap<String, JobKind> = HashMap::new();
    let mut matter: HashMap<String, bool> = HashMap::new();
    let mut deps_of: HashMap<String, Deps> = HashMap::new();
    // Units whose stop a `Conflicts=` of another unit asked for.
    let mut conflicted_stops: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut steps = 0usize;
    while let Some((name, kind, required, matters, by_conflict)) = queue.pop_front() {
        steps += 1;
        if steps > 100_000 {
            break;
        }
        let had_matters = matter.get(&name).copied().unwrap_or(false);
        *matter.entry(name.clone()).or_insert(false) |= matters;
        // A stop merged into one planned before still counts as asked for
        // by a `Conflicts=` (systemd keeps the job's "conflicted by").
        if kind == JobKind::Stop && by_conflict {
            conflicted_stops.insert(name.clone());
        }
        if let Some(&had) = planned.get(&name) {
            // systemd's job merging: a start and a (try-)restart of the
            // same unit are a restart, which reaches what is part of it
            // (a restarted unit that also wants its PartOf= instance).
            let restarts = |k: JobKind| matches!(k, JobKind::Restart | JobKind::TryRestart);
            if (had == JobKind::Start && restarts(kind))
                || (restarts(had) && kind == JobKind::Start && had != JobKind::Restart)
            {
                planned.insert(name.clone(), JobKind::Restart);
                let mut upgraded = false;
                for (n, k) in &mut tr.jobs {
                    if *n == name {
                        *k = JobKind::Restart;
                        upgraded = true;
                    }
                }
                if upgraded {
                    graph.each(&mut |other, d| {
                        if d.follows_stop_of(&name) {
                            queue.push_back((
                                other.to_string(),
                                JobKind::TryRestart,
                                false,
                                matters,
                                false,
                            ));
                        }
                    });
                    // A start merged into a try-restart still pulls in
                    // what the unit needs and wants.
                    if kind == JobKind::Start
                        && let Some(d) = deps_of.get(&name).cloned()
                    {
                        for r in d.requires.iter().chain(&d.binds_to) {
                            queue.push_back((r.clone(), JobKind::Start, true, matters, false));
                        }
                        for w in d.wants.iter().chain(&d.upholds) {
                            queue.push_back((w.clone(), JobKind::Start, false, false, false));
                        }
                        for c in &d.conflicts {
                            queue.push_back((c.clone(), JobKind::Stop, false, matters, true));
                        }
                    }
                }
                continue;
            }
            let starts = |k: JobKind| matches!(k, JobKind::Start | JobKind::Restart);
            let contradicts =
                starts(had) && kind == JobKind::Stop || had == JobKind::Stop && starts(kind);
            if !contradicts {
                continue;
            }
            // systemd's `delete_one_unmergeable_job()`: the job that
            // matters to the request stays; of two that do not, the stop
            // stays where a `Conflicts=` of another unit asked for it
            // (the unit that declares the conflict wins), else the start.
            let (start_matters, stop_matters, conflicted) = if had == JobKind::Stop {
                (matters, had_matters, conflicted_stops.contains(&name))
            } else {
                (had_matters, matters, by_conflict)
            };
            let keep_stop = match (start_matters, stop_matters) {
                (false, false) => conflicted,
                (false, true) => true,
                // Both matter: systemd refuses the request; flint keeps
                // the start and says so.
                (true, _) => {
                    if stop_matters && !tr.contradictions.contains(&name) {
                        tr.contradictions.push(name.clone());
                    }
                    false
                }
            };
            if keep_stop == (had == JobKind::Stop) {
                continue;
            }
            // The job planned before gives way (what it pulled in stays).
            tr.jobs.retain(|(n, _)| *n != name);
        }
        let node = graph.node(&name);
        planned.insert(name.clone(), kind);
        let deps = match node {
            Node::Runs(d) => {
                tr.jobs.push((name.clone(), kind));
                deps_of.insert(name.clone(), d.clone());
                d
            }
            Node::Group(d) => d,
            Node::Foreign => continue,
            Node::Missing => {
                if required && kind != JobKind::Stop && name != anchor {
                    if matters {
                        tr.missing_needed.push(name.clone());
                    }
                    tr.missing.push(name);
                }
                continue;
            }
        };
        let is_anchor = name == anchor;
        // A start of a unit that is up already, other than the one asked
        // for, is dropped, and with it what only it pulled in (systemd's
        // `transaction_drop_redundant()`, then `_collect_garbage()`): a
        // service's start through its active socket does not run the
        // oneshot the socket wants again.
        let redundant_start = !is_anchor && kind == JobKind::Start && graph.redundant(&name, kind);
        if (matches!(kind, JobKind::Start) && !redundant_start)
            || (kind == JobKind::Restart && is_anchor)
        {
            for r in deps.requires.iter().chain(&deps.binds_to) {
                queue.push_back((r.clone(), JobKind::Start, true, matters, false));
            }
            for w in deps.wants.iter().chain(&deps.upholds) {
                queue.push_back((w.clone(), JobKind::Start, false, false, false));
            }
            for c in &deps.conflicts {
                queue.push_back((c.clone(), JobKind::Stop, false, matters, true));
            }
            graph.each(&mut |other, d| {
                if d.conflicts.contains(&name) {
                    queue.push_back((other.to_string(), JobKind::Stop, false, false, false));
                }
            });
        }
        let propagate = match kind {
            JobKind::Stop => Some(JobKind::Stop),
            JobKind::Restart | JobKind::TryRestart => Some(JobKind::TryRestart),
            JobKind::Start => None,
        };
        if let Some(p) = propagate {
            graph.each(&mut |other, d| {
                if d.follows_stop_of(&name) {
                    queue.push_back((other.to_string(), p, false, matters, false));
                }
            });
        }
        // `PropagatesStopTo=`/`StopPropagatedFrom=`: a stop (not a
        // restart) reaches them; a unit this request starts keeps its start.
        if kind == JobKind::Stop {
            for o in &deps.propagates_stop_to {
                queue.push_back((o.clone(), JobKind::Stop, false, matters, false));
            }
            graph.each(&mut |other, d| {
                if d.stop_propagated_from.contains(&name) {
                    queue.push_back((other.to_string(), JobKind::Stop, false, matters, false));
                }
            });
        }
    }
    let redundant: Vec<String> = tr
        .jobs
        .iter()
        .filter(|(n, k)| n != anchor && graph.redundant(n, *k))
        .map(|(n, _)| n.clone())
        .collect();
    break_cycles(&mut tr, &deps_of, &matter, &redundant);
    tr
}

/// systemd's `transaction_verify_order()`: an ordering cycle among the
/// jobs of a transaction is broken by leaving out a job that does not
/// matter to the request (one only `Wants=` pulled in); a cycle of jobs
/// that all matter refuses the request.
fn break_cycles(
    tr: &mut Transaction,
    deps_of: &HashMap<String, Deps>,
    matter: &HashMap<String, bool>,
    redundant: &[String],
) {
    let empty = Deps::default();
    for _ in 0..tr.jobs.len() {
        let deps = |n: &str| deps_of.get(n).unwrap_or(&empty);
        // Jobs that will be left out as redundant wait for nothing.
        let idle = |n: &String| redundant.contains(n);
        let edges: Vec<Vec<usize>> = tr
            .jobs
            .iter()
            .map(|(me, mine)| {
                if idle(me) {
                    return Vec::new();
                }
                tr.jobs
                    .iter()
                    .enumerate()
                    .filter(|(_, (other, _))| other != me && !idle(other))
                    .filter(|(_, (other, theirs))| {
                        let after =
                            deps(me).after.contains(other) || deps(other).before.contains(me);
                        let before =
                            deps(me).before.contains(other) || deps(other).after.contains(me);
                        job_waits(*mine, *theirs, after, before)
                    })
                    .map(|(j, _)| j)
                    .collect()
            })
            .collect();
        let Some(cycle) = find_cycle(&edges) else {
            return;
        };
        let names: Vec<String> = cycle.iter().map(|&i| tr.jobs[i].0.clone()).collect();
        let Some(&drop) = cycle
            .iter()
            .find(|&&i| !matter.get(&tr.jobs[i].0).copied().unwrap_or(false))
        else {
            tr.cyclic = Some(names);
            return;
        };
        let (gone, _) = tr.jobs.remove(drop);
        // What requires the job left out goes with it (systemd deletes a
        // job's dependents with it).
        let mut gone_all = vec![gone];
        let mut i = 0;
        while i < gone_all.len() {
            let g = gone_all[i].clone();
            let needers: Vec<String> = tr
                .jobs
                .iter()
                .filter(|(n, _)| {
                    let d = deps(n);
                    d.requires.contains(&g) || d.binds_to.contains(&g)
                })
                .map(|(n, _)| n.clone())
                .collect();
            tr.jobs.retain(|(n, _)| !needers.contains(n));
            gone_all.extend(needers);
            i += 1;
        }
        for gone in gone_all {
            tr.dropped.push((gone, names.clone()));
        }
    }
}

/// A cycle in a wait-for graph (`edges[i]`: the jobs job `i` waits for),
/// as the jobs on it; `None` when every wait ends.
pub(super) fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    // 0: unvisited, 1: on the current path, 2: done.
    let mut mark = vec![0u8; edges.len()];
    let mut path: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        edges: &[Vec<usize>],
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[i] = 1;
        path.push(i);
        for &j in &edges[i] {
            if mark[j] == 1 {
                let at = path.iter().position(|&p| p == j).unwrap_or(0);
                return Some(path[at..].to_vec());
            }
            if mark[j] == 0
                && let Some(c) = visit(j, edges, mark, path)
            {
                return Some(c);
            }
        }
        path.pop();
        mark[i] = 2;
        None
    }
    for i in 0..edges.len() {
        if mark[i] == 0
            && let Some(c) = visit(i, edges, &mut mark, &mut path)
        {
            return Some(c);
        }
    }
    None
}

/// The manager as a transaction's graph: services it holds or can load,
/// sockets, targets from the unit tree.
struct ManagerGraph<'a>(&'a mut Manager);

/// A graph in which no job is redundant: a transaction on it holds every
/// unit its anchor reaches, running or not, as systemd's holds them until
/// `transaction_drop_redundant()`.
struct Whole<'a>(&'a mut dyn Graph);

impl Graph for Whole<'_> {
    fn node(&mut self, name: &str) -> Node {
        self.0.node(name)
    }
    fn each(&self, f: &mut dyn FnMut(&str, &Deps)) {
        self.0.each(f);
    }
}

impl Manager {
    /// The units that `target`'s start reaches (what it requires and
    /// wants, and theirs), running or not, with the target itself: what
    /// `isolate` keeps (systemd's `transaction_add_isolate_jobs()` leaves
    /// every unit with a job in the transaction).
    pub(super) fn isolate_keeps(&mut self, target: &str) -> std::collections::HashSet<String> {
        let mut graph = ManagerGraph(self);
        let tr = transaction(&mut Whole(&mut graph), target, JobKind::Start);
        std::iter::once(target.to_string())
            .chain(tr.jobs.into_iter().map(|(unit, _)| unit))
            .collect()
    }
}

impl Manager {
    /// The units flint holds that name `name` in their dependencies, as
    /// systemd's inverse properties list them (`WantedBy=`, `RequiredBy=`,
    /// `BoundBy=`, `ConsistsOf=` of what is `PartOf=` it, ...).
    pub(super) fn inverse_dependencies(&mut self, name: &str) -> Vec<(&'static str, Vec<String>)> {
        let mut out: Vec<(&'static str, Vec<String>)> = [
            "RequiredBy",
            "RequisiteOf",
            "WantedBy",
            "BoundBy",
            "ConsistsOf",
            "UpheldBy",
            "ConflictedBy",
        ]
        .into_iter()
        .map(|p| (p, Vec::new()))
        .collect();
        ManagerGraph(self).each(&mut |other, d| {
            for (i, list) in [
                &d.requires,
                &d.requisite,
                &d.wants,
                &d.binds_to,
                &d.part_of,
                &d.upholds,
                &d.conflicts,
            ]
            .into_iter()
            .enumerate()
            {
                if list.iter().any(|n| n == name) && !out[i].1.iter().any(|o| o == other) {
                    out[i].1.push(other.to_string());
                }
            }
        });
        for (_, list) in &mut out {
            list.sort();
        }
        out
    }

    /// Whether a socket that conflicts with socket `name` (either one
    /// declares it) is on its way down but still holds its listeners: its
    /// stop waits for the services ordered after it, runs its
    /// `ExecStopPre=`, or its listeners close a turn of the loop later.
    /// `name` opens after that, as systemd's transaction runs the stop job
    /// before the start (two sockets on one TCP port: the new bind met
    /// `EADDRINUSE`).
    pub(super) fn conflicting_socket_closing(&mut self, name: &str) -> bool {
        self.sockets_in_conflict_with(name).into_iter().any(|j| {
            self.closing_sockets.contains(&j)
                || self.hooks.contains_key(&self.sockets[j].name)
                || self.socket_stops_new.contains(&j)
                || self.socket_stops.iter().any(|(k, _)| *k == j)
        })
    }

    /// The sockets flint holds (not removed) that conflict with socket
    /// `name`, either one declaring it.
    pub(super) fn sockets_in_conflict_with(&mut self, name: &str) -> Vec<usize> {
        let own = self
            .unit_of(name)
            .map(|u| Deps::of(&u).conflicts)
            .unwrap_or_default();
        (0..self.sockets.len())
            .filter(|&j| {
                let s = &self.sockets[j];
                s.name != name
                    && !s.removed
                    && (own.contains(&s.name)
                        || Deps::of(&s.unit).conflicts.iter().any(|c| c == name))
            })
            .collect()
    }

    /// Opens socket `name` once [`Self::conflicting_socket_closing`] says
    /// no more: returns whether it waits (it opens with the socket
    /// restarts then).
    pub(super) fn open_after_conflicts(&mut self, name: &str) -> bool {
        if !self.conflicting_socket_closing(name) {
            return false;
        }
        if !self.socket_restarts.iter().any(|(n, _)| n == name) {
            tracing::info!("{name}: opens once the sockets it conflicts with have closed");
            self.socket_restarts
                .push((name.to_string(), super::control::SOCKET_ALONE));
        }
        true
    }

    /// Whether a unit flint holds follows a stop of `name` (it is
    /// `PartOf=`, `BindsTo=` or `Requires=` it: systemd's `ConsistsOf=`,
    /// `BoundBy=`, `RequiredBy=`).
    pub(super) fn stop_reaches_any(&mut self, name: &str) -> bool {
        let mut any = false;
        ManagerGraph(self).each(&mut |_, d| any |= d.follows_stop_of(name));
        any
    }

    /// Whether a unit flint holds names `name` in its `Conflicts=` (its
    /// start then stops that unit: systemd's `ConflictedBy=`).
    pub(super) fn conflicted_by_any(&mut self, name: &str) -> bool {
        let mut any = false;
        ManagerGraph(self).each(&mut |_, d| any |= d.conflicts.iter().any(|c| c == name));
        any
    }
}

impl Graph for ManagerGraph<'_> {
    fn node(&mut self, name: &str) -> Node {
        let m = &mut *self.0;
        let Ok(unit_name) = name.parse::<UnitName>() else {
            return Node::Foreign;
        };
        match unit_name.unit_type() {
            UnitType::Service => {
                if let Some(id) = m.find_service(name) {
                    return Node::Runs(m.services[&id].deps.clone());
                }
                if unit_name.is_template() {
                    return Node::Missing;
                }
                // A unit the tree does not have: quietly missing, as systemd
                // treats a `Wants=` or `Conflicts=` on it (what `Requires=`
                // it fails with result `dependency`, and says so).
                if crate::unit::loader::resolve(&m.search, &unit_name).is_err() {
                    tracing::debug!("{name}: not in the unit tree");
                    return Node::Missing;
                }
                match m.add_service(&unit_name) {
                    Some(id) => Node::Runs(m.services[&id].deps.clone()),
                    None => Node::Missing,
                }
            }
            UnitType::Socket => {
                if let Some(i) = m.socket_index(name) {
                    return Node::Runs(Deps::of(&m.sockets[i].unit));
                }
                if crate::unit::loader::resolve(&m.search, &unit_name).is_ok_and(|s| !s.masked) {
                    let unit = m.units.load(&m.search, &unit_name);
                    Node::Runs(if unit.is_loaded() {
                        Deps::of(&unit)
                    } else {
                        Deps::default()
                    })
                } else {
                    Node::Missing
                }
            }
            // A target without a file still has its links; one with
            // neither, and systemd's boot targets, are the host's (counted
            // as reached); a masked or broken one is missing.
            UnitType::Target => match m.add_target(&unit_name) {
                Some(id) => Node::Runs(m.targets[&id].deps.clone()),
                None if super::target::is_boot_target(name, m.search.user_mode)
                    || m.units.load(&m.search, &unit_name).load_state
                        == crate::unit::load::LoadState::NotFound =>
                {
                    Node::Foreign
                }
                None => Node::Missing,
            },
            // Timers and path units take part as sockets do: started and
            // stopped at once (no job), their dependencies followed.
            UnitType::Timer | UnitType::Path => {
                let held = if unit_name.unit_type() == UnitType::Timer {
                    m.timers.map.get(name).map(|t| t.unit.clone())
                } else {
                    m.path_units.map.get(name).map(|p| p.unit.clone())
                };
                let unit = held.unwrap_or_else(|| m.units.load(&m.search, &unit_name));
                if unit.is_loaded() {
                    Node::Runs(Deps::of(&unit))
                } else {
                    Node::Missing
                }
            }
            // A slice needs no file; one that is masked or fails to load
            // fails what `Requires=` it (everything in it).
            UnitType::Slice => match m.usable_slice(&unit_name) {
                Some(unit) => Node::Group(Deps::of(&unit)),
                None => Node::Missing,
            },
            _ => Node::Foreign,
        }
    }

    fn redundant(&self, name: &str, kind: JobKind) -> bool {
        let m = &*self.0;
        // A socket listening (or taken over by its service) with no stop
        // pending: a start changes nothing.
        if let Some(i) = m.socket_index(name) {
            let pending = m.socket_stops.iter().any(|(s, _)| *s == i)
                || m.socket_stops_new.contains(&i)
                || m.closing_sockets.contains(&i);
            return kind == JobKind::Start && !pending && m.socket_state(i).0 == "active";
        }
        let Some(id) = m.find_service(name).or_else(|| m.find_target(name)) else {
            return false;
        };
        if m.jobs.contains_key(&id) {
            return false;
        }
        match (kind, m.holder_class(id)) {
            (JobKind::Start, Some(c)) => c == Class::Active,
            (JobKind::Stop, Some(c)) => c.down(),
            _ => false,
        }
    }

    fn each(&self, f: &mut dyn FnMut(&str, &Deps)) {
        let mut ids: Vec<&u64> = self.0.services.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let svc = &self.0.services[id];
            if !svc.deps.is_empty() {
                f(svc.unit.id.as_str(), &svc.deps);
            }
        }
        let mut ids: Vec<&u64> = self.0.targets.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let t = &self.0.targets[id];
            f(t.unit.id.as_str(), &t.deps);
        }
        // Timers and path units: a stop of what they are `PartOf=` or
        // `Requires=` stops them too.
        for (name, t) in &self.0.timers.map {
            let deps = Deps::of(&t.unit);
            if !deps.is_empty() {
                f(name, &deps);
            }
        }
        for (name, p) in &self.0.path_units.map {
            let deps = Deps::of(&p.unit);
            if !deps.is_empty() {
                f(name, &deps);
            }
        }
        // Listening sockets: a stop of the service they are `PartOf=` or
        // `BindsTo=` stops them too (cups.socket, cockpit's sockets).
        for sock in self.0.sockets.iter().filter(|s| !s.failed && !s.removed) {
            let deps = Deps::of(&sock.unit);
            if !deps.is_empty() {
                f(sock.name.as_str(), &deps);
            }
        }
    }
}

/// Whether `name` names this service (by its id or the name it was
/// loaded as).
fn names(svc: &super::lifecycle::ServiceRt, name: &str) -> bool {
    svc.unit.id.as_str() == name || svc.unit.name.as_str() == name
}

/// Whether units may run in `slice`: it loaded, or it has no file (a
/// slice needs none); not when it is masked or fails to load.
pub(super) fn slice_is_usable(slice: &Unit) -> bool {
    slice.is_loaded() || slice.load_state == crate::unit::load::LoadState::NotFound
}

impl Manager {
    /// The slice unit `name` when a unit may run in it: loaded, or without
    /// a file (a slice needs none). A masked slice, or one that fails to
    /// load, is `None`, and its diagnostics are logged.
    pub(super) fn usable_slice(&mut self, name: &UnitName) -> Option<Unit> {
        let unit = self.units.load(&self.search, name);
        if slice_is_usable(&unit) {
            return Some(unit);
        }
        for d in &unit.diagnostics {
            tracing::warn!("{d}");
        }
        tracing::warn!("{name}: {}", unit.load_state.as_str());
        None
    }

    /// Requests `kind` for service `id` with everything its dependencies
    /// pull in; the jobs run from [`Self::dispatch`].
    /// Returns the required units that do not load (their dependents'
    /// starts failed), as [`Self::enqueue_name`].
    pub(super) fn enqueue(&mut self, id: u64, kind: JobKind) -> Vec<String> {
        self.try_enqueue(id, kind, false).unwrap_or_default()
    }

    /// [`Self::enqueue`], refusing a request ordered in a cycle it cannot
    /// break, or with `strict` one that requires a unit that does not load
    /// (see [`Self::try_enqueue_name`]).
    pub(super) fn try_enqueue(
        &mut self,
        id: u64,
        kind: JobKind,
        strict: bool,
    ) -> Result<Vec<String>, Refused> {
        let Some(name) = self.services.get(&id).map(|s| s.unit.id.to_string()) else {
            return Ok(Vec::new());
        };
        // The common case, a unit that names no other and that none names
        // in Conflicts=: no transaction to build.
        if self.services[&id].deps.is_empty()
            && kind == JobKind::Start
            && !self
                .services
                .values()
                .any(|s| s.deps.conflicts.contains(&name))
        {
            self.install_job(id, kind, true);
            return Ok(Vec::new());
        }
        self.try_enqueue_name(&name, kind, strict)
    }

    /// Like [`Self::enqueue`] for a unit by name (a socket too). Returns
    /// the units the request requires that do not load (masked, missing,
    /// broken): systemd refuses such a transaction ("Failed to queue ...
    /// job"); here the starts that need them fail with result
    /// `dependency`.
    pub(super) fn enqueue_name(&mut self, name: &str, kind: JobKind) -> Vec<String> {
        self.try_enqueue_name(name, kind, false).unwrap_or_default()
    }

    /// [`Self::enqueue_name`], refusing a request whose jobs are ordered
    /// in a cycle that leaving out wanted units does not break (systemd's
    /// "Transaction order is cyclic"), and with `strict` (a request by
    /// hand) one that requires a unit that does not load (systemd refuses
    /// the transaction: "Unit x not found."): nothing is queued then.
    pub(super) fn try_enqueue_name(
        &mut self,
        name: &str,
        kind: JobKind,
        strict: bool,
    ) -> Result<Vec<String>, Refused> {
        // A target that ends flint or the system, asked for by name
        // (`OnFailure=reboot.target`, `OnSuccess=exit.target`, a timer's
        // `Unit=`), ends it as a start by hand does, or is refused as one
        // is. (Pulled in through another unit's `Wants=`, it is the host's
        // and does nothing.)
        if matches!(kind, JobKind::Start | JobKind::Restart)
            && let Some(word) = super::control::ending_target(name)
        {
            let why = if self.masked_on_disk(name) {
                format!("Unit {name} is masked.")
            } else {
                let answer = self.end_request(word, false, None);
                if answer["ok"] == true {
                    return Ok(Vec::new());
                }
                answer["error"].as_str().unwrap_or("refused").to_string()
            };
            tracing::error!("{name}: start refused: {why}");
            return Err(Refused { exit: 1, why });
        }
        let tr = transaction(&mut ManagerGraph(self), name, kind);
        if strict
            && kind != JobKind::Stop
            && let Some(m) = tr.missing_needed.first()
        {
            let state = m
                .parse::<UnitName>()
                .map_or(crate::unit::load::LoadState::NotFound, |n| {
                    self.units.load(&self.search, &n).load_state
                });
            tracing::error!("{name}: requires {m}, which does not load; request refused");
            return Err(Refused {
                exit: if state == crate::unit::load::LoadState::NotFound {
                    5
                } else {
                    1
                },
                why: state
                    .reason(m)
                    .unwrap_or_else(|| format!("Unit {m} failed to load properly.")),
            });
        }
        for (gone, cycle) in &tr.dropped {
            tracing::warn!(
                "{name}: Found ordering cycle: {}; the job of {gone} (only wanted) deleted to break it",
                cycle.join(" -> ")
            );
        }
        // flint's own requests (socket activations, restarts, bindings) go
        // on: the cycle is broken when its jobs run, by running one of them
        // regardless of its order.
        if let Some(cycle) = tr.cyclic.as_ref().filter(|_| strict) {
            tracing::error!(
                "{name}: Found ordering cycle: {}; unable to break it: Requested transaction contains an unfixable cyclic ordering dependency",
                cycle.join(" -> ")
            );
            return Err(Refused {
                exit: 1,
                why: "Transaction order is cyclic.".into(),
            });
        }
        for c in &tr.contradictions {
            tracing::warn!(
                "{name}: {c} is both to be started and (by Conflicts=) stopped; starting it"
            );
        }
        // Sockets last: a socket's restart turns the restarts of the
        // services it follows into stops (see `install`). Their stops
        // before their starts: a socket that conflicts with one that stops
        // opens after it ([`Self::open_after_conflicts`]).
        let (mut sockets, others): (Vec<_>, Vec<_>) = tr
            .jobs
            .iter()
            .partition(|(unit, _)| unit.ends_with(".socket"));
        sockets.sort_by_key(|(_, kind)| *kind != JobKind::Stop);
        for (unit, kind) in others.into_iter().chain(sockets) {
            self.install(unit, *kind, unit == name);
        }
        self.order_socket_stops();
        for m in &tr.missing {
            tracing::error!("{m}: required, but it cannot be loaded; what requires it fails");
            self.fail_dependents(m);
        }
        Ok(tr.missing)
    }

    /// Installs one job of a transaction.
    fn install(&mut self, name: &str, kind: JobKind, anchor: bool) {
        if let Some(id) = self.find_service(name).or_else(|| self.find_target(name)) {
            self.install_job(id, kind, anchor);
            return;
        }
        if name
            .parse::<UnitName>()
            .is_ok_and(|n| matches!(n.unit_type(), UnitType::Timer | UnitType::Path))
        {
            self.install_trigger_unit(name, kind);
            return;
        }
        if !name.ends_with(".socket") {
            return;
        }
        match (kind, self.socket_index(name)) {
            // After the services ordered after it ([`Manager::order_socket_stops`]).
            (JobKind::Stop, Some(i)) if !self.sockets[i].failed => self.socket_stops_new.push(i),
            // A start replaces a stop that still waits, as a job does.
            (JobKind::Start, Some(i)) if !self.sockets[i].failed => self.cancel_socket_stop(i),
            (JobKind::Start, _) if self.open_after_conflicts(name) => {}
            (JobKind::Start, None) => {
                let opened = name.parse::<UnitName>().is_ok_and(|n| self.add_socket(&n));
                if !opened {
                    self.fail_dependents(name);
                }
            }
            // A restart that reaches a listening socket through what it is
            // `PartOf=` (greylistd.socket, cups.socket of their services):
            // the services restarting in this transaction that it follows
            // stop, then the socket closes, opens again (a new node, with
            // its unit as it is now) and they start, as systemd's restart
            // propagates. (A daemon that removes its socket's node when it
            // stops, as greylistd does, finds it there again.)
            (JobKind::Restart | JobKind::TryRestart, Some(i)) if !self.sockets[i].failed => {
                // (A try-restart of a service that does not run reaches
                // its sockets with nothing to do.)
                let deps = Deps::of(&self.sockets[i].unit);
                let restarting: Vec<u64> = self
                    .jobs
                    .iter()
                    .filter(|(id, j)| {
                        matches!(j.kind, JobKind::Restart | JobKind::TryRestart)
                            && !j.running
                            && self
                                .services
                                .get(id)
                                .is_some_and(|s| deps.follows_stop_of(s.unit.id.as_str()))
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for id in &restarting {
                    if let Some(j) = self.jobs.get_mut(id) {
                        j.kind = JobKind::Stop;
                    }
                    self.socket_restarts.push((name.to_string(), *id));
                }
                if restarting.is_empty() {
                    if !anchor {
                        return;
                    }
                    self.socket_restarts
                        .push((name.to_string(), super::control::SOCKET_ALONE));
                }
                self.socket_stops_new.push(i);
            }
            // Stopped (or failed) before: opened again, as systemd starts a
            // socket unit again (cockpit.service pulls in the sockets bound
            // to it each time it starts).
            // Its listeners are still to close: it opens once they are.
            (JobKind::Start, Some(i))
                if self.sockets[i].failed
                    && self.closing_sockets.contains(&i)
                    && !self.socket_restarts.iter().any(|(n, _)| n == name) =>
            {
                self.socket_restarts
                    .push((name.to_string(), super::control::SOCKET_ALONE));
            }
            (JobKind::Start, Some(i))
                if self.sockets[i].failed && self.closing_sockets.contains(&i) => {}
            (JobKind::Start, Some(i)) if self.sockets[i].failed => {
                let opened = name
                    .parse::<UnitName>()
                    .is_ok_and(|n| self.reopen_socket(i, &n));
                if !opened {
                    self.fail_dependents(name);
                }
            }
            _ => {}
        }
    }

    /// A transaction's job for a timer or path unit, carried out at once.
    fn install_trigger_unit(&mut self, name: &str, kind: JobKind) {
        let timer = name
            .parse::<UnitName>()
            .is_ok_and(|n| n.unit_type() == UnitType::Timer);
        let active = if timer {
            self.timers
                .map
                .get(name)
                .is_some_and(|t| t.state.words().0 == "active")
        } else {
            self.path_units
                .map
                .get(name)
                .is_some_and(|p| p.state.words().0 == "active")
        };
        let stop = |m: &mut Self| {
            if timer {
                m.stop_timer(name);
            } else {
                m.stop_path_unit(name);
            }
        };
        let start = |m: &mut Self| {
            let started = name.parse::<UnitName>().is_ok_and(|n| {
                if timer {
                    m.start_timer(&n)
                } else {
                    m.start_path_unit(&n)
                }
            });
            if !started {
                m.fail_dependents(name);
            }
        };
        match kind {
            JobKind::Stop if active => stop(self),
            JobKind::Start if !active => start(self),
            JobKind::Restart | JobKind::TryRestart if active => {
                stop(self);
                start(self);
            }
            _ => {}
        }
    }

    /// Installs a job for a service, replacing a different one (as
    /// systemd's job mode `replace`). Outside the anchor of a request, a
    /// job that would change nothing is left out.
    pub(super) fn install_job(&mut self, id: u64, kind: JobKind, anchor: bool) {
        let (Some(class), Some(unit_name)) = (
            self.holder_class(id),
            self.holder_name(id).map(str::to_string),
        ) else {
            return;
        };
        let kind = match kind {
            JobKind::TryRestart if class == Class::Active => JobKind::Restart,
            JobKind::TryRestart => return,
            k => k,
        };
        // The service stops for a socket's restart and starts once the
        // socket is open again: a stop asked meanwhile ends that plan (the
        // socket's stop goes on, so both stay down, as systemd's stop job
        // replaces both restarts).
        if kind == JobKind::Stop {
            self.socket_restarts.retain(|(_, s)| *s != id);
        }
        if let Some(existing) = self.jobs.get(&id) {
            if existing.kind == kind
                || (existing.kind == JobKind::Restart && kind == JobKind::Start)
            {
                return;
            }
            tracing::debug!(
                "{unit_name}: job {} replaced by {}",
                existing.kind.as_str(),
                kind.as_str()
            );
            self.jobs.remove(&id);
        } else if !anchor {
            let redundant = match kind {
                JobKind::Start => class == Class::Active,
                JobKind::Stop => class.down(),
                JobKind::Restart | JobKind::TryRestart => false,
            };
            if redundant {
                return;
            }
        }
        tracing::debug!("{unit_name}: job {} queued", kind.as_str());
        if let Some(svc) = self.services.get_mut(&id) {
            svc.job_failed = None;
        }
        // A new job of a service replaces the rest of a socket restart
        // waiting for it (as systemd's job replaces the restart job); the
        // socket's stop, if it still waits for the service, is made now,
        // so that a start the new job pulls in opens the socket again.
        let replaced: Vec<String> = self
            .socket_restarts
            .iter()
            .filter(|(_, s)| *s == id)
            .map(|(n, _)| n.clone())
            .collect();
        if !replaced.is_empty() {
            // The socket still opens again, on its own.
            for (_, s) in &mut self.socket_restarts {
                if *s == id {
                    *s = super::control::SOCKET_ALONE;
                }
            }
            for name in replaced {
                if let Some(i) = self.socket_index(&name)
                    && self.socket_stops.iter().any(|(s, _)| *s == i)
                {
                    self.socket_stops.retain(|(s, _)| *s != i);
                    self.stop_socket(i);
                }
            }
        }
        let job = Job::new(kind);
        self.arm_job_timeout(id, job.serial);
        self.jobs.insert(id, job);
    }

    /// `JobTimeoutSec=` of the service or target `id` (0 and infinity:
    /// none), counted from when its job is queued, as systemd's.
    fn arm_job_timeout(&self, id: u64, serial: u64) {
        let unit = match self.services.get(&id) {
            Some(s) => &s.unit,
            None => match self.targets.get(&id) {
                Some(t) => &t.unit,
                None => return,
            },
        };
        let Some(us) = unit
            .get_usec("Unit", "JobTimeoutSec")
            .filter(|us| *us != 0 && *us != u64::MAX)
        else {
            return;
        };
        let tx = self.tx.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(std::time::Duration::from_micros(us)).await;
            let _ = tx.send(super::Event::JobTimeout { id, serial });
        });
    }

    /// The `JobTimeoutSec=` of job `serial` of `id` passed: the job ends
    /// with result `timeout` (what needs it fails, `OnFailure=` starts);
    /// the unit goes on with what it was doing (systemd's `job_timeout()`).
    pub(super) fn job_timed_out(&mut self, id: u64, serial: u64) {
        // While flint stops, every stop runs to its end.
        if self.shutting_down {
            return;
        }
        let Some(job) = self.jobs.get(&id).filter(|j| j.serial == serial) else {
            return;
        };
        let kind = job.kind;
        let name = self.holder_name(id).unwrap_or("").to_string();
        tracing::warn!("{name}: Job {name}/{} timed out.", kind.as_str());
        self.finish_job(id, JobResult::Timeout);
        self.dispatch();
    }

    /// The name of the service or target `id`.
    fn holder_name(&self, id: u64) -> Option<&str> {
        match self.services.get(&id) {
            Some(s) => Some(s.unit.id.as_str()),
            None => self.targets.get(&id).map(|t| t.unit.id.as_str()),
        }
    }

    /// What the service or target `id` is doing.
    fn holder_class(&self, id: u64) -> Option<Class> {
        match self.services.get(&id) {
            Some(s) => Some(Class::of(s.state)),
            None => self.targets.get(&id).map(|t| {
                if t.active {
                    Class::Active
                } else {
                    Class::Inactive
                }
            }),
        }
    }

    /// The dependencies of the service or target `id`.
    fn holder_deps(&self, id: u64) -> Option<&Deps> {
        match self.services.get(&id) {
            Some(s) => Some(&s.deps),
            None => self.targets.get(&id).map(|t| &t.deps),
        }
    }

    /// Whether `name` names the service or target `id`.
    fn holder_is(&self, id: u64, name: &str) -> bool {
        match self.services.get(&id) {
            Some(s) => names(s, name),
            None => self.targets.get(&id).is_some_and(|t| {
                t.unit.id.as_str() == name
                    || t.unit.name.as_str() == name
                    || t.unit.aliases.iter().any(|a| a.as_str() == name)
            }),
        }
    }

    /// Whether the service or target named `name` has a job.
    fn has_job(&self, name: &str) -> bool {
        self.find_service(name)
            .or_else(|| self.find_target(name))
            .is_some_and(|id| self.jobs.contains_key(&id))
    }

    /// What the unit named `name` is doing. Units flint does not run
    /// count as active.
    pub(super) fn class_of_name(&self, name: &str) -> Class {
        if let Some(id) = self.find_service(name) {
            return Class::of(self.services[&id].state);
        }
        if let Some(i) = self.socket_index(name) {
            return if self.sockets[i].failed {
                Class::Failed
            } else {
                Class::Active
            };
        }
        if let Some(id) = self.find_target(name) {
            return self.holder_class(id).unwrap_or_default();
        }
        // A target flint has not loaded: a boot target or one the tree
        // lacks is the host's, counted as reached; one in the tree has not
        // been started.
        match name.parse::<UnitName>() {
            Ok(n) if matches!(n.unit_type(), UnitType::Service | UnitType::Socket) => {
                Class::Inactive
            }
            Ok(n)
                if n.unit_type() == UnitType::Target
                    && !super::target::is_boot_target(name, self.search.user_mode)
                    && crate::unit::loader::resolve(&self.search, &n).is_ok_and(|s| !s.masked) =>
            {
                Class::Inactive
            }
            _ => Class::Active,
        }
    }

    /// Runs jobs until nothing moves: notes what the services did, ends
    /// the jobs that are done, starts the jobs whose turn it is.
    pub(super) fn dispatch(&mut self) {
        for _ in 0..1000 {
            self.socket_restarts_due();
            let observed = self.observe();
            let ran = self.run_queue();
            if !observed && !ran {
                break;
            }
        }
        self.tell_bus_other_units();
        self.check_startup_finished();
    }

    /// Once the start's sockets listen and no job is left, the start is
    /// finished, once, as systemd's `manager_check_finished()`:
    /// `SystemState=` leaves `starting`, `FinishTimestamp=` is set,
    /// "Startup finished in …." is logged and `StartupFinished` goes to
    /// every peer of the private socket and to the bus's subscribers
    /// (`systemctl is-system-running --wait` waits for it).
    pub(super) fn check_startup_finished(&mut self) {
        if self.boot != super::Boot::Starting
            || self.ready.is_some()
            || !self.hooks.is_empty()
            || !self.jobs.is_empty()
            || self.shutting_down
        {
            return;
        }
        let (realtime, monotonic) = (crate::logs::epoch_usec(), crate::logs::mono_usec());
        self.boot = super::Boot::Finished {
            realtime,
            monotonic,
        };
        let userspace = super::control::userspace_monotonic();
        let total = monotonic.saturating_sub(userspace);
        // To the millisecond, as systemd's.
        let shown = crate::unit::value::time::format_timespan_accuracy(total, 1000);
        tracing::info!("flint: Startup finished in {shown}.");
        // firmware, loader, kernel, initrd, userspace, total: a container's
        // and a user manager's have only the last two.
        let args = [0, 0, 0, 0, total, total].map(crate::bus::Value::U64);
        super::private_socket::startup_finished(&args);
        if let Some(activator) = self.activator.as_ref().filter(|a| a.subscribed()) {
            activator.manager_signal("StartupFinished", &args);
        }
    }

    /// The second half of a socket restarted with the service that needs
    /// it: once the service is down, the socket opens again and the
    /// service starts.
    fn socket_restarts_due(&mut self) {
        if self.socket_restarts.is_empty() {
            return;
        }
        // A service whose stop for the restart was canceled or timed out
        // (no job, still up): the plan is over; the socket opens again
        // without a start.
        let abandoned: Vec<u64> = self
            .socket_restarts
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| {
                !self.jobs.contains_key(id)
                    && self
                        .services
                        .get(id)
                        .is_some_and(|s| !Class::of(s.state).down())
            })
            .collect();
        for (_, id) in &mut self.socket_restarts {
            if abandoned.contains(id) {
                *id = super::control::SOCKET_ALONE;
            }
        }
        let names: Vec<String> = self
            .socket_restarts
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        let blocked: Vec<String> = names
            .into_iter()
            .filter(|n| self.conflicting_socket_closing(n))
            .collect();
        let due: Vec<(String, u64)> = self
            .socket_restarts
            .iter()
            .filter(|(name, id)| {
                let index = self.socket_index(name);
                !self.jobs.contains_key(id)
                    && self
                        .services
                        .get(id)
                        .is_none_or(|s| Class::of(s.state).down())
                    // Its stop still waits for services ordered after it,
                    // runs its stop commands, or its listeners are still
                    // to close (`Event::ListenersClosed`): it opens again
                    // after that.
                    && !self.hooks.contains_key(name)
                    && !blocked.contains(name)
                    && !index.is_some_and(|i| {
                        self.closing_sockets.contains(&i)
                            || self.socket_stops.iter().any(|(s, _)| *s == i)
                    })
            })
            .cloned()
            .collect();
        self.socket_restarts.retain(|r| !due.contains(r));
        for (name, id) in due {
            if self.shutting_down {
                continue;
            }
            let opened = match (name.parse::<UnitName>(), self.socket_index(&name)) {
                (Ok(n), Some(i)) if self.sockets[i].failed => self.reopen_socket(i, &n),
                (Ok(n), None) => self.add_socket(&n),
                (Ok(_), Some(_)) => true,
                (Err(_), _) => false,
            };
            // (A restart of the socket alone names no service.) A socket
            // that does not open again leaves its service to start all the
            // same, as systemd's restart job does; it then fails or runs
            // without the socket.
            if !opened {
                tracing::warn!("{name}: did not open again; its service starts without it");
            }
            if self.services.contains_key(&id) {
                self.enqueue(id, JobKind::Start);
            }
        }
    }

    /// Looks at every service: units that went down take down the units
    /// bound to them, finished jobs end, units bound to an inactive unit
    /// stop. Returns whether anything changed.
    fn observe(&mut self) -> bool {
        let mut changed = false;
        // Units that went down unexpectedly (no stop or restart job of
        // their own): what BindsTo= them follows (systemd's
        // retroactively_stop_dependencies()).
        let mut went_down: Vec<(u64, String)> = Vec::new();
        // For `systemctl --wait` and the like on the bus.
        let tell = self.signals_listened();
        let mut told: Vec<u64> = Vec::new();
        for (&id, svc) in &mut self.services {
            let now = Class::of(svc.state);
            let prev = svc.seen;
            if now != prev.class {
                svc.times.note(prev.class, now);
                if tell {
                    told.push(id);
                }
            }
            // From up to down, or down and up again (or up and down) since
            // the last look.
            let down = prev.class.up() && (now == Class::Deactivating || now.down())
                || svc.downs > prev.downs && (prev.class.up() || svc.launches > prev.launches);
            svc.seen = Seen {
                class: now,
                downs: svc.downs,
                launches: svc.launches,
            };
            if down
                && !matches!(
                    self.jobs.get(&id).map(|j| j.kind),
                    Some(JobKind::Stop | JobKind::Restart)
                )
            {
                went_down.push((id, svc.unit.id.to_string()));
            }
        }
        for id in told {
            self.tell_bus_unit_changed(id);
        }
        went_down.sort_unstable();
        for (_, name) in went_down {
            // Sockets bound to it stop as well (their listeners close).
            let bound_sockets: Vec<usize> = (0..self.sockets.len())
                .filter(|&i| {
                    let s = &self.sockets[i];
                    !s.failed
                        && !s.removed
                        && !self.hooks.contains_key(&s.name)
                        && Deps::of(&s.unit).binds_to.contains(&name)
                })
                .collect();
            for i in bound_sockets {
                tracing::info!(
                    "{}: {name}, which it is bound to (BindsTo=), went down; stopping, too",
                    self.sockets[i].name
                );
                self.stop_socket(i);
                changed = true;
            }
            // And what it propagates its stop to (systemd's
            // `retroactively_stop_dependencies()` for `PropagatesStopTo=`).
            let propagates: Vec<String> = self
                .find_service(&name)
                .map(|id| self.services[&id].deps.propagates_stop_to.clone())
                .unwrap_or_default();
            let candidates = if propagates.is_empty() {
                self.ids_where(|s| {
                    !s.deps.binds_to.is_empty() || !s.deps.stop_propagated_from.is_empty()
                })
            } else {
                self.ids_where(|_| true)
            };
            let bound: Vec<u64> = candidates
                .into_iter()
                .filter(|b| {
                    self.services.get(b).is_some_and(|s| {
                        (s.deps.binds_to.contains(&name)
                            || s.deps.stop_propagated_from.contains(&name)
                            || propagates.iter().any(|p| names(s, p)))
                            && !matches!(
                                Class::of(s.state),
                                Class::Inactive | Class::Failed | Class::Deactivating
                            )
                    }) && !matches!(self.jobs.get(b).map(|j| j.kind), Some(JobKind::Stop))
                })
                .collect();
            for b in bound {
                tracing::info!(
                    "{}: {name}, which it is bound to (BindsTo=) or whose stop propagates to it (PropagatesStopTo=), went down; stopping, too",
                    self.services[&b].unit.id
                );
                self.enqueue(b, JobKind::Stop);
                changed = true;
            }
        }
        // Jobs that are done.
        let mut running: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.running)
            .map(|(id, _)| *id)
            .collect();
        running.sort_unstable();
        for id in running {
            if self.targets.contains_key(&id) {
                continue;
            }
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            let Some(svc) = self.services.get_mut(&id) else {
                // The service is gone (a finished Accept=yes instance).
                self.jobs.remove(&id);
                changed = true;
                continue;
            };
            let result = match job.kind {
                JobKind::Start => {
                    if svc.ups > job.ups {
                        Some(JobResult::Done)
                    } else if svc.downs > job.downs {
                        match svc.state {
                            State::Dead => Some(JobResult::Done),
                            State::Failed => Some(JobResult::Failed),
                            // Restart= will try again; the job waits for it.
                            _ => {
                                job.downs = svc.downs;
                                None
                            }
                        }
                    } else {
                        None
                    }
                }
                JobKind::Stop | JobKind::Restart | JobKind::TryRestart => match svc.state {
                    State::Dead | State::Failed => Some(JobResult::Done),
                    State::AutoRestart => {
                        svc.state = State::Dead;
                        Some(JobResult::Done)
                    }
                    _ => None,
                },
            };
            if let Some(result) = result {
                self.finish_job(id, result);
                changed = true;
            }
        }
        // Units bound to a unit that is down, without a job of either
        // (systemd's unit_is_bound_by_inactive()): also when it was down
        // when they started.
        let binding: Vec<u64> = self.ids_where(|s| !s.deps.binds_to.is_empty());
        for b in binding {
            let Some(svc) = self.services.get(&b) else {
                continue;
            };
            if svc.state != State::Running || self.jobs.contains_key(&b) {
                continue;
            }
            let culprit = svc
                .deps
                .binds_to
                .iter()
                .find(|o| !self.has_job(o) && self.class_of_name(o).down())
                .cloned();
            if let Some(o) = culprit {
                tracing::info!(
                    "{}: Unit is bound to inactive unit {o}. Stopping, too.",
                    svc.unit.id
                );
                self.enqueue(b, JobKind::Stop);
                changed = true;
            }
        }
        changed | self.uphold() | self.stop_unneeded()
    }

    /// The services for which `which` holds, in the order they were made.
    /// Most of what [`Self::observe`] looks at concerns few units (those
    /// with `BindsTo=`, `Upholds=`, `StopWhenUnneeded=`): picking them out
    /// first keeps a look at many `Accept=yes` instances from costing a
    /// hash lookup or three per instance on every event.
    fn ids_where(&self, which: impl Fn(&super::ServiceRt) -> bool) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .services
            .iter()
            .filter(|(_, s)| which(s))
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// `StopWhenUnneeded=` (systemd's `unit_is_unneeded()`): an active unit
    /// without a job that no unit pins any more (a unit that is not
    /// inactive, or has a job, and `Requires=`, `Requisite=`, `Wants=`,
    /// `BindsTo=` or `Upholds=` it; the units flint was asked to run count
    /// as wanted by an active target) is stopped.
    fn stop_unneeded(&mut self) -> bool {
        let mut unneeded: Vec<(u64, String)> = Vec::new();
        // Services and targets alike (graphical-session.target has it).
        let candidates: Vec<u64> = self
            .ids_where(|s| s.deps.stop_when_unneeded)
            .into_iter()
            .chain(self.target_ids())
            .collect();
        for id in candidates {
            let (Some(deps), Some(class), Some(name)) = (
                self.holder_deps(id),
                self.holder_class(id),
                self.holder_name(id),
            ) else {
                continue;
            };
            let asked = |n: &str| self.roots.contains(n);
            let alias = self.services.get(&id).map(|s| s.unit.name.as_str());
            if !deps.stop_when_unneeded
                || class != Class::Active
                || self.jobs.contains_key(&id)
                || asked(name)
                || alias.is_some_and(asked)
            {
                continue;
            }
            let pins = |d: &Deps| {
                [&d.requires, &d.requisite, &d.wants, &d.binds_to, &d.upholds]
                    .iter()
                    .any(|l| l.iter().any(|n| n == name))
            };
            let pinned = self.services.iter().any(|(oid, o)| {
                *oid != id
                    && (self.jobs.contains_key(oid) || !Class::of(o.state).down())
                    && pins(&o.deps)
            }) || self.targets.iter().any(|(tid, t)| {
                *tid != id && (t.active || self.jobs.contains_key(tid)) && pins(&t.deps)
            });
            if !pinned {
                unneeded.push((id, name.to_string()));
            }
        }
        let changed = !unneeded.is_empty();
        for (id, name) in unneeded {
            tracing::info!("{name}: Unit not needed anymore. Stopping.");
            if self.services.contains_key(&id) {
                self.enqueue(id, JobKind::Stop);
            } else {
                self.enqueue_name(&name, JobKind::Stop);
            }
        }
        changed
    }

    /// `Upholds=` (systemd's start-when-upheld queue): a unit upheld by an
    /// active unit without a stop job, itself down without a job, is
    /// started. One that failed on its start limit is left alone, as
    /// systemd's start would fail again at once; its `Restart=` and start
    /// limit bound how often a failing upheld unit is started.
    fn uphold(&mut self) -> bool {
        let mut starts: Vec<(String, String)> = Vec::new();
        for id in &self.ids_where(|s| !s.deps.upholds.is_empty()) {
            let Some(svc) = self.services.get(id) else {
                continue;
            };
            if Class::of(svc.state) != Class::Active
                || matches!(self.jobs.get(id).map(|j| j.kind), Some(JobKind::Stop))
            {
                continue;
            }
            for o in &svc.deps.upholds {
                // The upholder's start loaded it (Upholds= pulls in as
                // Wants= does); one that did not load is not there to start.
                let Some(u) = self.find_service(o) else {
                    continue;
                };
                if !self.jobs.contains_key(&u)
                    && Class::of(self.services[&u].state).down()
                    && !self.services[&u].start_limit_hit
                    && !starts.iter().any(|(n, _)| n == o)
                {
                    starts.push((o.clone(), svc.unit.id.to_string()));
                }
            }
        }
        let changed = !starts.is_empty();
        for (o, by) in starts {
            tracing::info!("{o}: upheld by {by} (Upholds=); starting");
            self.enqueue_name(&o, JobKind::Start);
        }
        changed
    }

    /// Ends the job of service `id` with `result`: a restart whose stop
    /// is done becomes a start; a failed start fails the starts waiting
    /// on it through `Requires=`, `BindsTo=` or `Requisite=`.
    pub(super) fn finish_job(&mut self, id: u64, result: JobResult) {
        let Some(job) = self.jobs.remove(&id) else {
            return;
        };
        // (A restart's stop is not its end: its start follows.)
        if !(job.kind == JobKind::Restart && result == JobResult::Done) {
            self.tell_bus_unit_changed(id);
        }
        if self.targets.contains_key(&id) {
            self.finish_target_job(id, job.kind, job.serial, result);
            return;
        }
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        let name = svc.unit.id.to_string();
        if job.kind == JobKind::Restart && result == JobResult::Done {
            // Its stop is done; the start follows (systemd's "Converting
            // job x/restart -> x/start").
            tracing::debug!("{name}: job restart stopped the unit; converting it to start");
            let mut start = Job::new(JobKind::Start);
            start.serial = job.serial;
            self.jobs.insert(id, start);
            return;
        }
        tracing::debug!(
            "{name}: job {} finished, result={result:?}",
            job.kind.as_str()
        );
        // How the start ended, for `flint ctl start`'s answer: a simple
        // service that fails after its start job was done answers 0, as
        // systemctl's.
        if result == JobResult::Failed && svc.job_failed.is_none() {
            svc.job_failed = Some("failed");
        }
        if matches!(result, JobResult::Dependency | JobResult::Timeout) {
            if result == JobResult::Dependency {
                log_dependency_failed(&svc.unit, job.kind);
                svc.job_failed = Some("dependency");
            } else {
                svc.job_failed = Some("timeout");
            }
            // A failed job may change nothing of the unit: OnFailure= is
            // started here (systemd's `job_finish_and_invalidate()`), not
            // while flint stops.
            if !self.shutting_down {
                super::lifecycle::trigger_on_result(&self.tx, &svc.unit, true);
            }
            if Class::of(svc.state).down() {
                self.let_go_unstarted(id);
            }
        }
        if job.kind == JobKind::Start
            && matches!(
                result,
                JobResult::Failed | JobResult::Dependency | JobResult::Timeout
            )
        {
            self.fail_dependents(&name);
        }
    }

    /// `systemctl cancel`: the job numbered `serial` ends with result
    /// `canceled` (systemd's `job_finish_and_invalidate()`): a start that
    /// was waiting never happens and what requires it fails, a unit
    /// already acting goes on; whoever waits for the job is told. Whether
    /// there was such a job.
    pub(super) fn cancel_job(&mut self, serial: u64) -> bool {
        let Some(id) = self
            .jobs
            .iter()
            .find(|(_, j)| j.serial == serial)
            .map(|(&id, _)| id)
        else {
            return false;
        };
        let kind = self.jobs[&id].kind;
        let name = self.holder_name(id).unwrap_or("").to_string();
        tracing::info!("{name}: Job {name}/{} canceled.", kind.as_str());
        // Told to whoever waits (flint's own cancellations, at a stop or
        // a switch, replace a job instead and say nothing).
        if let Some(svc) = self.services.get_mut(&id) {
            svc.job_failed = Some("canceled");
        }
        self.finish_job(id, JobResult::Canceled);
        if kind == JobKind::Start {
            if self
                .services
                .get(&id)
                .is_some_and(|s| Class::of(s.state).down())
            {
                self.let_go_unstarted(id);
            }
            // systemd's recursive cancel: what requires the start fails.
            self.fail_dependents(&name);
        }
        self.dispatch();
        true
    }

    /// The numbers of every job, for `systemctl cancel` without any.
    pub(super) fn job_serials(&self) -> Vec<u64> {
        let mut serials: Vec<u64> = self.jobs.values().map(|j| j.serial).collect();
        serials.sort_unstable();
        serials
    }

    /// [`Self::finish_job`] for a target: as systemd's job results for it.
    fn finish_target_job(&mut self, id: u64, kind: JobKind, serial: u64, result: JobResult) {
        let Some(t) = self.targets.get_mut(&id) else {
            return;
        };
        t.last_job = Some(result);
        let name = t.unit.id.to_string();
        tracing::debug!("{name}: job {} finished, result={result:?}", kind.as_str());
        if kind == JobKind::Restart && result == JobResult::Done {
            let mut start = Job::new(JobKind::Start);
            start.serial = serial;
            self.jobs.insert(id, start);
            return;
        }
        if result == JobResult::Timeout && !self.shutting_down {
            super::lifecycle::trigger_on_result(&self.tx, &t.unit, true);
        }
        if result == JobResult::Dependency {
            log_dependency_failed(&t.unit, kind);
            if !self.shutting_down {
                super::lifecycle::trigger_on_result(&self.tx, &t.unit, true);
            }
        }
        if kind == JobKind::Start
            && matches!(
                result,
                JobResult::Failed | JobResult::Dependency | JobResult::Timeout
            )
        {
            self.fail_dependents(&name);
        }
    }

    /// A service whose start will not happen (its job failed without it
    /// running): an `Accept=yes` instance lets go of its connection, a
    /// service's sockets listen again, as systemd's `socket_trigger_notify()`
    /// has them once the job is gone (what waits there triggers the next
    /// attempt).
    pub(super) fn let_go_unstarted(&mut self, id: u64) {
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        if svc.conn.is_some() {
            if let Some(svc) = self.services.remove(&id) {
                self.failed_instances.retain(|i| *i != id);
                self.remember_ended(&svc);
                if let Some((_, socket, peer)) = svc.conn.filter(|_| !svc.kept_failed) {
                    self.release(socket, peer.as_ref());
                }
            }
        } else {
            for s in svc.sockets.clone() {
                self.sockets[s].rearm();
            }
        }
    }

    /// The start of `name` failed (or it does not load): the starts that
    /// need it fail with result `dependency`.
    pub(super) fn fail_dependents(&mut self, name: &str) {
        let mut ids: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(id, j)| {
                j.kind == JobKind::Start && self.holder_deps(**id).is_some_and(|d| d.needs(name))
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            self.finish_job(id, JobResult::Dependency);
        }
    }

    /// The job of service `id` that keeps it waiting, if any.
    fn blocker(&self, id: u64) -> Option<u64> {
        if self.jobs.get(&id)?.ignore_order {
            return None;
        }
        self.blockers(id).into_iter().min()
    }

    /// Starts the jobs that wait for nothing; breaks an ordering cycle
    /// when nothing else can move. Returns whether a job moved.
    fn run_queue(&mut self) -> bool {
        let mut moved = false;
        let mut waiting: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| !j.running)
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        for &id in &waiting {
            if self.jobs.get(&id).is_some_and(|j| !j.running) && self.blocker(id).is_none() {
                moved |= self.run_job(id);
            }
        }
        if moved {
            return true;
        }
        // Nothing ran: an ordering cycle among waiting jobs never clears.
        let waiting: Vec<u64> = waiting
            .into_iter()
            .filter(|id| self.jobs.get(id).is_some_and(|j| !j.running))
            .collect();
        let edges: Vec<Vec<usize>> = waiting
            .iter()
            .map(|&id| {
                self.blockers(id)
                    .into_iter()
                    .filter_map(|b| waiting.iter().position(|w| *w == b))
                    .collect()
            })
            .collect();
        if let Some(cycle) = find_cycle(&edges) {
            let names: Vec<String> = cycle
                .iter()
                .filter_map(|&i| self.holder_name(waiting[i]).map(str::to_string))
                .collect();
            let first = waiting[cycle[0]];
            tracing::warn!(
                "flint: found an ordering cycle: {}; running {} regardless of its order",
                names.join(" -> "),
                names.first().map_or("", String::as_str)
            );
            if let Some(j) = self.jobs.get_mut(&first) {
                j.ignore_order = true;
            }
            return true;
        }
        false
    }

    /// Every job that keeps service `id` waiting.
    fn blockers(&self, id: u64) -> Vec<u64> {
        let (Some(job), Some(mine)) = (self.jobs.get(&id), self.holder_deps(id)) else {
            return Vec::new();
        };
        if job.ignore_order {
            return Vec::new();
        }
        self.jobs
            .iter()
            .filter(|(o, _)| **o != id)
            .filter_map(|(&oid, other)| {
                let theirs = self.holder_deps(oid)?;
                let after = mine.after.iter().any(|n| self.holder_is(oid, n))
                    || theirs.before.iter().any(|n| self.holder_is(id, n));
                let before = mine.before.iter().any(|n| self.holder_is(oid, n))
                    || theirs.after.iter().any(|n| self.holder_is(id, n));
                job_waits(job.kind, other.kind, after, before).then_some(oid)
            })
            .collect()
    }

    /// Acts on the job of service `id`, whose turn it is. Returns whether
    /// it moved (began, ended or changed).
    fn run_job(&mut self, id: u64) -> bool {
        let Some(kind) = self.jobs.get(&id).map(|j| j.kind) else {
            return false;
        };
        if self.targets.contains_key(&id) {
            return self.run_target_job(id, kind);
        }
        let Some(svc) = self.services.get(&id) else {
            self.jobs.remove(&id);
            return true;
        };
        let state = svc.state;
        let name = svc.unit.id.to_string();
        match kind {
            JobKind::Start => {
                if self.shutting_down {
                    self.finish_job(id, JobResult::Canceled);
                    return true;
                }
                match Class::of(state) {
                    Class::Active => {
                        self.finish_job(id, JobResult::Done);
                        return true;
                    }
                    // Already on its way up: the job waits for the result.
                    Class::Activating => {}
                    // Still stopping: start once it is down.
                    Class::Deactivating => return false,
                    Class::Inactive | Class::Failed => {
                        for r in svc.deps.requisite.clone() {
                            match self.class_of_name(&r) {
                                Class::Active => {}
                                Class::Activating if self.has_job(&r) => return false,
                                _ => {
                                    tracing::warn!("{name}: {r} (Requisite=) is not active");
                                    self.finish_job(id, JobResult::Dependency);
                                    return true;
                                }
                            }
                        }
                    }
                }
                if Class::of(state).down() && !self.bound_units_active(id) {
                    self.finish_job(id, JobResult::Dependency);
                    return true;
                }
                // It starts after its sockets (systemd's implicit After=),
                // those of `Sockets=` too, which its start pulls in.
                if Class::of(state).down() {
                    self.add_listed_sockets(id);
                    if self.sockets_starting_for(id) {
                        return false;
                    }
                }
                let Some(svc) = self.services.get(&id) else {
                    return true;
                };
                let (ups, downs) = (svc.ups, svc.downs);
                if let Some(j) = self.jobs.get_mut(&id) {
                    j.running = true;
                    j.ups = ups;
                    j.downs = downs;
                }
                if Class::of(state).down() {
                    // Its sockets stop being watched while it runs (see
                    // `start`, which opens those of `Sockets=` first).
                    self.start(id);
                }
                true
            }
            JobKind::Stop | JobKind::Restart | JobKind::TryRestart => {
                let restart = kind != JobKind::Stop;
                if restart && (Class::of(state).down() || state == State::AutoRestart) {
                    if state == State::AutoRestart
                        && let Some(svc) = self.services.get_mut(&id)
                    {
                        svc.state = State::Dead;
                    }
                    self.finish_job(id, JobResult::Done);
                    return true;
                }
                if let Some(j) = self.jobs.get_mut(&id) {
                    j.running = true;
                }
                self.begin_stop(id, restart);
                true
            }
        }
    }

    /// systemd's `unit_verify_deps()`, when a start job's turn comes:
    /// every unit it `BindsTo=` and is ordered after is active (a skipped
    /// or failed one fails the start with result `dependency`). Without
    /// `After=` the check would be a race, and is left out as in systemd.
    fn bound_units_active(&self, id: u64) -> bool {
        let Some(deps) = self.holder_deps(id) else {
            return true;
        };
        let me = self.holder_name(id).unwrap_or("");
        for other in &deps.binds_to {
            let ordered = deps.after.contains(other)
                || self
                    .find_service(other)
                    .or_else(|| self.find_target(other))
                    .and_then(|o| self.holder_deps(o))
                    .is_some_and(|d| d.before.iter().any(|b| b == me));
            if ordered && self.class_of_name(other) != Class::Active {
                tracing::info!("{me}: Bound to unit {other}, but unit isn't active.");
                return false;
            }
        }
        true
    }

    /// [`Self::run_job`] for a target: a start makes it active once its
    /// requisites are, a stop inactive (systemd's `target_start()`,
    /// `target_stop()`).
    fn run_target_job(&mut self, id: u64, kind: JobKind) -> bool {
        match kind {
            JobKind::Start => {
                if self.shutting_down {
                    self.finish_job(id, JobResult::Canceled);
                    return true;
                }
                let Some(t) = self.targets.get(&id) else {
                    return false;
                };
                let name = t.unit.id.to_string();
                if !t.active && !self.bound_units_active(id) {
                    self.finish_job(id, JobResult::Dependency);
                    return true;
                }
                if !t.active {
                    for r in t.deps.requisite.clone() {
                        match self.class_of_name(&r) {
                            Class::Active => {}
                            Class::Activating if self.has_job(&r) => return false,
                            _ => {
                                tracing::warn!("{name}: {r} (Requisite=) is not active");
                                self.finish_job(id, JobResult::Dependency);
                                return true;
                            }
                        }
                    }
                }
                // A socket it is ordered after (the sockets sockets.target
                // wants) is up once its start commands are done, as a
                // socket unit is active only after its ExecStartPost=.
                let starting = t.deps.after.iter().any(|a| {
                    a.ends_with(".socket")
                        && matches!(self.hooks_state(a), Some("start-pre" | "start-post"))
                });
                if starting {
                    return false;
                }
                self.set_target_active(id, true);
                self.finish_job(id, JobResult::Done);
            }
            JobKind::Stop | JobKind::Restart | JobKind::TryRestart => {
                self.set_target_active(id, false);
                self.finish_job(id, JobResult::Done);
            }
        }
        true
    }

    /// Stops a service for a job: `ExecStop=`, then the kill procedure
    /// (with `RestartKillSignal=` when `restart`).
    fn begin_stop(&mut self, id: u64, restart: bool) {
        let Some(svc) = self.services.get_mut(&id) else {
            return;
        };
        svc.stopping = true;
        svc.restart_requested = false;
        svc.restart_kill = restart;
        match svc.state {
            State::Dead | State::Failed => {}
            State::AutoRestart => svc.state = State::Dead,
            State::Stop(_)
            | State::StopSigterm
            | State::StopWatchdog
            | State::StopSigkill
            | State::StopPost(_) => {}
            // Something of the start or reload still runs: straight to the
            // kill signal, without ExecStop= (systemd's `service_stop()`);
            // the control process gets it with the rest, and its end counts.
            State::Condition(_)
            | State::StartPre(_)
            | State::Start(_)
            | State::StartPost(_)
            | State::Reload(_)
            | State::ReloadNotify => {
                self.step(id, State::StopSigterm);
            }
            State::Running => {
                if let Some(c) = svc.control_pid.take() {
                    signal_group(c, libc::SIGTERM);
                }
                self.step(id, State::Stop(0));
            }
        }
    }

    /// The job of a service, for `flint ctl status`.
    pub(super) fn job_text(&self, id: u64) -> Option<String> {
        self.jobs.get(&id).map(|j| {
            format!(
                "{} ({})",
                j.kind.as_str(),
                if j.running { "running" } else { "waiting" }
            )
        })
    }
}

/// The unit's `Description=`, or its name when it has none, as systemd's
/// messages name a unit.
impl Manager {
    /// The jobs waiting or running, by number, for `list-jobs`: the job's
    /// number, its unit, type and state.
    pub(super) fn job_rows(&self) -> Vec<(u64, String, &'static str, &'static str)> {
        let mut rows: Vec<_> = self
            .jobs
            .iter()
            .filter_map(|(&id, job)| {
                let name = self.holder_name(id)?.to_string();
                let state = if job.running { "running" } else { "waiting" };
                Some((job.serial, name, job.kind.as_str(), state))
            })
            .collect();
        rows.sort_unstable_by_key(|r| r.0);
        rows
    }
}

pub(super) fn description(unit: &Unit) -> String {
    unit.get_str("Unit", "Description")
        .filter(|d| !d.is_empty())
        .unwrap_or(unit.id.as_str())
        .to_string()
}

/// systemd's two lines for a job that failed with result `dependency`.
fn log_dependency_failed(unit: &Unit, kind: JobKind) {
    let name = unit.id.as_str();
    tracing::warn!("{name}: Dependency failed for {}.", description(unit));
    tracing::warn!(
        "{name}: Job {name}/{} failed with result 'dependency'.",
        kind.as_str()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A graph from a list of units and their dependencies.
    struct Fake(Vec<(String, Deps)>);

    impl Graph for Fake {
        fn node(&mut self, name: &str) -> Node {
            match self.0.iter().find(|(n, _)| n == name) {
                Some((n, d)) if n.ends_with("slice") => Node::Group(d.clone()),
                Some((_, d)) => Node::Runs(d.clone()),
                None if name.ends_with("mount") => Node::Foreign,
                None => Node::Missing,
            }
        }
        fn each(&self, f: &mut dyn FnMut(&str, &Deps)) {
            for (n, d) in &self.0 {
                f(n, d);
            }
        }
    }

    fn list(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn jobs(tr: &Transaction) -> Vec<String> {
        tr.jobs
            .iter()
            .map(|(n, k)| format!("{n}/{}", k.as_str()))
            .collect()
    }

    #[test]
    fn ordering_follows_job_compare() {
        use JobKind::{Restart, Start, Stop};
        // A start waits for any job of a unit it is after…
        assert!(job_waits(Start, Start, true, false));
        assert!(job_waits(Start, Stop, true, false));
        // …a stop does not (the later unit stops first).
        assert!(!job_waits(Stop, Stop, true, false));
        assert!(!job_waits(Stop, Start, true, false));
        // Any job waits for the stop of a unit it is before.
        assert!(job_waits(Stop, Stop, false, true));
        assert!(job_waits(Start, Stop, false, true));
        assert!(job_waits(Start, Restart, false, true));
        assert!(!job_waits(Start, Start, false, true));
        // A restart in its stop half is a stop.
        assert!(!job_waits(Restart, Start, true, false));
        // Unordered jobs never wait.
        assert!(!job_waits(Start, Stop, false, false));
    }

    #[test]
    fn start_pulls_in_requirements_and_stops_conflicts() {
        let mut g = Fake(vec![
            (
                "app.service".into(),
                Deps {
                    requires: list("db.service"),
                    wants: list("cache.service gone.service"),
                    binds_to: list("log.socket"),
                    conflicts: list("old.service"),
                    after: list("db.service local-fs.mount"),
                    ..Deps::default()
                },
            ),
            (
                "db.service".into(),
                Deps {
                    requires: list("missing.service data.mount"),
                    ..Deps::default()
                },
            ),
            ("cache.service".into(), Deps::default()),
            ("log.socket".into(), Deps::default()),
            ("old.service".into(), Deps::default()),
            (
                "rival.service".into(),
                Deps {
                    conflicts: list("app.service"),
                    ..Deps::default()
                },
            ),
            (
                "user.service".into(),
                Deps {
                    requires: list("old.service"),
                    ..Deps::default()
                },
            ),
        ]);
        let tr = transaction(&mut g, "app.service", JobKind::Start);
        assert_eq!(
            jobs(&tr),
            [
                "app.service/start",
                "db.service/start",
                "log.socket/start",
                "cache.service/start",
                "old.service/stop",
                "rival.service/stop",
                "user.service/stop",
            ]
        );
        // A missing wanted unit is nothing; a missing required one fails
        // what requires it.
        assert_eq!(tr.missing, ["missing.service"]);
    }

    #[test]
    fn stop_and_restart_propagate_to_what_needs_the_unit() {
        let mut g = Fake(vec![
            ("base.service".into(), Deps::default()),
            (
                "req.service".into(),
                Deps {
                    requires: list("base.service"),
                    ..Deps::default()
                },
            ),
            (
                "bound.service".into(),
                Deps {
                    binds_to: list("base.service"),
                    ..Deps::default()
                },
            ),
            (
                "part.service".into(),
                Deps {
                    part_of: list("base.service"),
                    ..Deps::default()
                },
            ),
            (
                "deeper.service".into(),
                Deps {
                    requisite: list("part.service"),
                    ..Deps::default()
                },
            ),
            (
                "wanter.service".into(),
                Deps {
                    wants: list("base.service"),
                    after: list("base.service"),
                    ..Deps::default()
                },
            ),
        ]);
        let tr = transaction(&mut g, "base.service", JobKind::Stop);
        assert_eq!(
            jobs(&tr),
            [
                "base.service/stop",
                "req.service/stop",
                "bound.service/stop",
                "part.service/stop",
                "deeper.service/stop",
            ]
        );
        let tr = transaction(&mut g, "base.service", JobKind::Restart);
        assert_eq!(
            jobs(&tr),
            [
                "base.service/restart",
                "req.service/try-restart",
                "bound.service/try-restart",
                "part.service/try-restart",
                "deeper.service/try-restart",
            ]
        );
    }

    /// `top` (with `deps`) over a.service, which `Conflicts=b.service`,
    /// and b.service.
    fn conflicting_pair(top: &str, deps: Deps) -> Fake {
        Fake(vec![
            (top.into(), deps),
            (
                "a.service".into(),
                Deps {
                    conflicts: list("b.service"),
                    ..Deps::default()
                },
            ),
            ("b.service".into(), Deps::default()),
        ])
    }

    #[test]
    fn slices_pull_in_without_a_job_and_the_unit_declaring_a_conflict_wins() {
        let mut g = conflicting_pair(
            "machine.slice",
            Deps {
                wants: list("a.service b.service"),
                ..Deps::default()
            },
        );
        let tr = transaction(&mut g, "machine.slice", JobKind::Start);
        // Both only wanted: b's stop, asked for by a's Conflicts=, stays
        // and its start goes; a's stop (b is conflicted by it) goes, as
        // systemd fixes the conflicting jobs.
        assert_eq!(jobs(&tr), ["a.service/start", "b.service/stop"]);
        assert!(tr.contradictions.is_empty());
        // Requested by hand, b keeps its start (it matters to the
        // request) and a, which it conflicts with only through a's
        // Conflicts=, is stopped.
        let tr = transaction(&mut g, "b.service", JobKind::Start);
        assert_eq!(jobs(&tr), ["b.service/start", "a.service/stop"]);
        // a requested: b stops.
        let tr = transaction(&mut g, "a.service", JobKind::Start);
        assert_eq!(jobs(&tr), ["a.service/start", "b.service/stop"]);
    }

    #[test]
    fn contradicting_jobs_that_both_matter_keep_the_start() {
        let mut g = conflicting_pair(
            "top.service",
            Deps {
                requires: list("a.service b.service"),
                ..Deps::default()
            },
        );
        let tr = transaction(&mut g, "top.service", JobKind::Start);
        assert_eq!(
            jobs(&tr),
            ["top.service/start", "a.service/start", "b.service/start"]
        );
        assert_eq!(tr.contradictions, ["b.service"]);
    }

    #[test]
    fn a_cycle_loses_a_wanted_job_and_a_cycle_of_requirements_is_refused() {
        let after = |a: &str, more: Deps| Deps {
            after: list(a),
            ..more
        };
        let mut g = Fake(vec![
            (
                "a.service".into(),
                after(
                    "b.service",
                    Deps {
                        wants: list("b.service"),
                        ..Deps::default()
                    },
                ),
            ),
            (
                "b.service".into(),
                after(
                    "a.service",
                    Deps {
                        wants: list("a.service"),
                        ..Deps::default()
                    },
                ),
            ),
            (
                "c.service".into(),
                after(
                    "d.service",
                    Deps {
                        requires: list("d.service"),
                        ..Deps::default()
                    },
                ),
            ),
            (
                "d.service".into(),
                after(
                    "c.service",
                    Deps {
                        requires: list("c.service"),
                        ..Deps::default()
                    },
                ),
            ),
        ]);
        let tr = transaction(&mut g, "a.service", JobKind::Start);
        assert_eq!(jobs(&tr), ["a.service/start"]);
        assert_eq!(tr.dropped.len(), 1);
        assert_eq!(tr.dropped[0].0, "b.service");
        assert!(tr.cyclic.is_none());
        let tr = transaction(&mut g, "c.service", JobKind::Start);
        assert!(tr.cyclic.is_some(), "{tr:?}");
    }

    #[test]
    fn cycles_are_found_and_chains_are_not() {
        assert_eq!(find_cycle(&[vec![1], vec![2], vec![]]), None);
        assert_eq!(find_cycle(&[vec![], vec![0], vec![0, 1]]), None);
        assert_eq!(find_cycle(&[vec![1], vec![2], vec![1]]), Some(vec![1, 2]));
        assert_eq!(find_cycle(&[vec![0]]), Some(vec![0]));
    }

    #[test]
    fn deps_read_the_unit_and_its_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.service"),
            "[Unit]\nAfter=b.service c.service\nBefore=d.service\nRequires=b.service\nWants=e.service\nBindsTo=f.service\nPartOf=g.service\nConflicts=h.service\nRequisite=i.service\n[Service]\nExecStart=/bin/true\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("a.service.requires")).unwrap();
        std::os::unix::fs::symlink(
            "../j.service",
            dir.path().join("a.service.requires/j.service"),
        )
        .unwrap();
        let search =
            crate::unit::loader::SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        let unit = crate::unit::load::load(&search, &"a.service".parse().unwrap());
        let d = Deps::of(&unit);
        assert_eq!(d.after, ["b.service", "c.service"]);
        assert_eq!(d.before, ["d.service"]);
        assert_eq!(d.requires, ["b.service", "j.service"]);
        assert_eq!(d.wants, ["e.service"]);
        assert_eq!(d.binds_to, ["f.service"]);
        assert_eq!(d.part_of, ["g.service"]);
        assert_eq!(d.conflicts, ["h.service"]);
        assert_eq!(d.requisite, ["i.service"]);
        assert!(d.follows_stop_of("g.service") && d.follows_stop_of("i.service"));
        assert!(!d.follows_stop_of("e.service"));
        assert!(d.needs("f.service") && !d.needs("g.service"));
    }
}
