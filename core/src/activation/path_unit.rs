//! `.path` units, after systemd's `path.c`: a path unit watches files and
//! directories with inotify and starts the unit it triggers (`Unit=`, by
//! default the service of the same name) when
//!
//! - `PathExists=`: the path exists;
//! - `PathExistsGlob=`: something matches the glob;
//! - `DirectoryNotEmpty=`: the directory has an entry (hidden and backup
//!   files do not count);
//! - `PathChanged=`: the file was written and closed, or it (or an entry of
//!   the directory) was created, deleted, moved, or its attributes changed;
//! - `PathModified=`: the same, and every write.
//!
//! Each path is watched as systemd watches it: every existing component of
//! it (for the next one to appear), the path itself with the events of its
//! kind, both the link and what it points to. While the unit runs, the path
//! unit is `running` and watches nothing; once the unit is down it checks
//! the paths again (a file still there starts it again at once) and waits.
//! `MakeDirectory=`/`DirectoryMode=` create the watched directories first;
//! `TriggerLimitIntervalSec=`/`TriggerLimitBurst=` (2 s, 200) stop a path
//! unit that triggers in a loop. The service gets `TRIGGER_UNIT` and
//! `TRIGGER_PATH`, as from systemd.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::jobs::{Class, JobKind};
use super::lifecycle::TimerGuard;
use super::limit::RateLimit;
use super::{Event, Manager};
use crate::unit::load::{Unit, Value};
use crate::unit::name::UnitName;

/// What a path is watched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exists,
    ExistsGlob,
    Changed,
    Modified,
    DirectoryNotEmpty,
}

impl Kind {
    const ALL: [(Kind, &'static str); 5] = [
        (Kind::Exists, "PathExists"),
        (Kind::ExistsGlob, "PathExistsGlob"),
        (Kind::Changed, "PathChanged"),
        (Kind::Modified, "PathModified"),
        (Kind::DirectoryNotEmpty, "DirectoryNotEmpty"),
    ];

    /// The inotify events on the path itself (systemd's `flags_table`).
    fn mask(self) -> u32 {
        let base = libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_ATTRIB;
        let changes = libc::IN_CLOSE_WRITE
            | libc::IN_CREATE
            | libc::IN_DELETE
            | libc::IN_MOVED_FROM
            | libc::IN_MOVED_TO;
        match self {
            Kind::Exists | Kind::ExistsGlob => base,
            Kind::Changed => base | changes,
            Kind::Modified => base | changes | libc::IN_MODIFY,
            Kind::DirectoryNotEmpty => base | libc::IN_CREATE | libc::IN_MOVED_TO,
        }
    }
}

#[derive(Debug)]
struct Spec {
    kind: Kind,
    path: PathBuf,
    /// `PathChanged=`/`PathModified=`: whether the path existed at the
    /// last look (a change of that is a change).
    previous_exists: bool,
}

/// A path unit's state, in systemd's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PathState {
    Dead,
    Waiting,
    Running,
    Failed,
}

impl PathState {
    pub(super) fn words(self) -> (&'static str, &'static str) {
        match self {
            PathState::Dead => ("inactive", "dead"),
            PathState::Waiting => ("active", "waiting"),
            PathState::Running => ("active", "running"),
            PathState::Failed => ("failed", "failed"),
        }
    }

    fn up(self) -> bool {
        matches!(self, PathState::Waiting | PathState::Running)
    }
}

/// One path unit flint runs.
#[derive(Debug)]
pub(super) struct PathRt {
    pub unit: Unit,
    pub target: String,
    specs: Vec<Spec>,
    pub state: PathState,
    pub result: &'static str,
    /// The inotify watches while waiting, one task per path.
    watches: Vec<TimerGuard>,
    generation: u64,
    trigger_limit: RateLimit,
    /// When it last started, and last stopped or failed.
    started: std::time::SystemTime,
    stopped: Option<std::time::SystemTime>,
}

impl PathRt {
    /// Since when it is in its state, as status says it.
    pub(super) fn since(&self) -> Option<std::time::SystemTime> {
        match self.state {
            PathState::Dead | PathState::Failed => self.stopped,
            _ => Some(self.started),
        }
    }

    /// The watched paths, as `Kind=path`, for listings.
    pub(super) fn paths(&self) -> Vec<String> {
        self.specs
            .iter()
            .map(|s| {
                let key = Kind::ALL
                    .iter()
                    .find(|(k, _)| *k == s.kind)
                    .map_or("", |(_, n)| n);
                format!("{key}={}", s.path.display())
            })
            .collect()
    }
}

/// Every path unit flint runs, by name.
#[derive(Debug, Default)]
pub(super) struct PathUnits {
    pub map: BTreeMap<String, PathRt>,
}

/// The unit a path unit triggers: `Unit=`, or the service of its name.
pub(super) fn target_of(unit: &Unit) -> String {
    if let Some(Value::Unit(n)) = unit.get("Path", "Unit") {
        n.clone()
    } else {
        let id = unit.id.as_str();
        format!("{}.service", id.strip_suffix(".path").unwrap_or(id))
    }
}

/// The paths of a unit in systemd's order: `config_parse_path_spec()`
/// prepends, so the last one written is looked at first, whatever its kind.
fn specs_of(unit: &Unit) -> Vec<Spec> {
    let file = |path: &Path| {
        if unit.fragment.as_deref() == Some(path) {
            0
        } else {
            unit.dropins
                .iter()
                .position(|d| d == path)
                .map_or(usize::MAX, |i| i + 1)
        }
    };
    let mut out: Vec<((usize, u32), Spec)> = Vec::new();
    for (kind, key) in Kind::ALL {
        for (v, origin) in unit.entries("Path", key) {
            if let Value::Path(p) = v {
                out.push((
                    (file(&origin.path), origin.line),
                    Spec {
                        kind,
                        path: p.clone(),
                        previous_exists: false,
                    },
                ));
            }
        }
    }
    out.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    out.into_iter().map(|(_, s)| s).collect()
}

/// systemd's `hidden_or_backup_file()`: what `DirectoryNotEmpty=` ignores.
fn hidden_or_backup(name: &str) -> bool {
    const SUFFIXES: [&str; 18] = [
        "rpmnew",
        "rpmsave",
        "rpmorig",
        "dpkg-old",
        "dpkg-new",
        "dpkg-tmp",
        "dpkg-dist",
        "dpkg-bak",
        "dpkg-backup",
        "dpkg-remove",
        "ucf-new",
        "ucf-old",
        "ucf-dist",
        "swp",
        "bak",
        "old",
        "new",
        "tmp",
    ];
    name.starts_with('.')
        || name.ends_with('~')
        || matches!(name, "lost+found" | "aquota.user" | "aquota.group")
        || name
            .rsplit_once('.')
            .is_some_and(|(_, suffix)| SUFFIXES.contains(&suffix))
}

/// The first path the glob matches (systemd's `glob_first()`).
fn glob_first(pattern: &Path) -> Option<PathBuf> {
    fn walk(base: PathBuf, rest: &[&std::ffi::OsStr]) -> Option<PathBuf> {
        let Some((first, tail)) = rest.split_first() else {
            return std::fs::symlink_metadata(&base).is_ok().then_some(base);
        };
        let bytes = first.as_encoded_bytes();
        if !bytes.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            return walk(base.join(first), tail);
        }
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&base)
            .ok()?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        names.into_iter().find_map(|name| {
            let n = name.as_encoded_bytes();
            // As glob(3): a leading dot is matched only by a leading dot.
            if n.first() == Some(&b'.') && bytes.first() != Some(&b'.') {
                return None;
            }
            if crate::service::condition::wildcard(bytes, n) {
                walk(base.join(&name), tail)
            } else {
                None
            }
        })
    }
    // glob(3) with GLOB_BRACE, as systemd asks for: `{a,b}` first.
    let text = pattern.to_string_lossy();
    if text.contains('{') {
        return crate::service::condition::expand_braces(&text)
            .into_iter()
            .filter(|p| *p != text)
            .find_map(|p| glob_first(Path::new(&p)));
    }
    let parts: Vec<&std::ffi::OsStr> = pattern
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    walk(PathBuf::from("/"), &parts)
}

/// systemd's `path_spec_check_good()`: whether the path's condition holds,
/// and the path that made it so.
fn check_good(spec: &mut Spec, initial: bool, from_trigger_notify: bool) -> Option<PathBuf> {
    // access(F_OK), as systemd asks: a link counts by what it points to.
    let exists = |p: &Path| p.exists();
    let good = match spec.kind {
        Kind::Exists => exists(&spec.path),
        Kind::ExistsGlob => return glob_first(&spec.path),
        // Only a directory that is missing, not one, or empty is not good
        // (systemd's dir_is_empty(): any other error counts as not empty).
        Kind::DirectoryNotEmpty => match std::fs::read_dir(&spec.path) {
            Ok(mut d) => {
                d.any(|e| e.is_ok_and(|e| !hidden_or_backup(&e.file_name().to_string_lossy())))
            }
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ),
        },
        Kind::Changed | Kind::Modified => {
            let now = exists(&spec.path);
            let good = !initial && !from_trigger_notify && now != spec.previous_exists;
            spec.previous_exists = now;
            good
        }
    };
    good.then(|| spec.path.clone())
}

/// A new inotify fd, non-blocking and close-on-exec.
pub(super) fn inotify_fd() -> std::io::Result<OwnedFd> {
    // SAFETY: inotify_init1 takes flags only; the fd is owned below.
    let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Reads every queued inotify event of `fd` (until it would block), each
/// as its watch, mask and name (empty for the watched node itself).
/// Returns whether there was any.
pub(super) fn read_inotify(
    fd: &OwnedFd,
    buf: &mut [u8],
    mut each: impl FnMut(i32, u32, &[u8]),
) -> bool {
    let mut any = false;
    loop {
        // SAFETY: reads at most the buffer's length into it.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let Ok(n) = usize::try_from(n) else { break };
        if n == 0 {
            break;
        }
        any = true;
        // Events: a fixed header (wd, mask, cookie, len) and `len` bytes
        // of NUL-padded name.
        let mut at = 0;
        while at + 16 <= n {
            let word = |i: usize| {
                u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap_or_default())
            };
            let (wd, mask, len) = (word(0).cast_signed(), word(4), word(12) as usize);
            let name = buf.get(at + 16..at + 16 + len).unwrap_or_default();
            each(wd, mask, name.split(|b| *b == 0).next().unwrap_or_default());
            at += 16 + len;
        }
    }
    any
}

/// Generations of timer and path-unit wake-ups, unique across units that
/// are stopped and made again, so an event already on its way never acts
/// on a newer one.
pub(super) fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn inotify_watch(fd: &OwnedFd, path: &Path, mask: u32) -> std::io::Result<i32> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: the path is a NUL-terminated string; the fd is an inotify fd.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) };
    if wd < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(wd)
    }
}

/// systemd's `path_spec_watch()`: an inotify fd watching every existing
/// component of the path for the next one to appear, and the path itself
/// (the link and its target) for the events of its kind. Returns the fd
/// and the watch on the path itself (`None` while it does not exist).
fn watch_spec(spec: &Spec) -> std::io::Result<(OwnedFd, Option<i32>)> {
    let fd = inotify_fd()?;
    let mut prefixes: Vec<PathBuf> = spec.path.ancestors().map(Path::to_path_buf).collect();
    prefixes.reverse();
    let mut primary = None;
    let mut previous: Option<PathBuf> = None;
    let mut exists = false;
    let last = prefixes.len() - 1;
    for (i, p) in prefixes.iter().enumerate() {
        let mask = if i == last {
            spec.kind.mask()
        } else {
            libc::IN_MOVE_SELF | libc::IN_DELETE_SELF | libc::IN_CREATE | libc::IN_MOVED_TO
        };
        let mut wd = None;
        for follow in [false, true] {
            let m = if follow {
                mask
            } else {
                mask | libc::IN_DONT_FOLLOW
            };
            match inotify_watch(&fd, p, m) {
                Ok(w) => wd = Some(w),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::ENOENT)) => {
                    wd = None;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let Some(wd) = wd else { break };
        exists = true;
        // The path exists: its parent need only tell a move of itself.
        if let Some(parent) = &previous {
            let _ = inotify_watch(&fd, parent, libc::IN_MOVE_SELF);
        }
        previous = Some(p.clone());
        if i == last {
            primary = Some(wd);
        }
    }
    if !exists {
        return Err(std::io::Error::other(format!(
            "no component of {} can be watched",
            spec.path.display()
        )));
    }
    Ok((fd, primary))
}

/// Waits for the first batch of events on a spec's watch, then reports
/// whether one was on the path itself (for `PathChanged=`/`PathModified=`).
fn wait_for_events(
    fd: OwnedFd,
    primary: Option<i32>,
    kind: Kind,
    unit: String,
    spec: usize,
    generation: u64,
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
) -> std::io::Result<TimerGuard> {
    // SAFETY: the inotify fd is moved into the AsyncFd, which keeps it open
    // for as long as it is registered.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }?;
    let task = tokio::task::spawn_local(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return;
            };
            let mut changed = false;
            let any = read_inotify(fd.get_ref(), &mut buf, |wd, _, _| {
                changed |= Some(wd) == primary;
            });
            ready.clear_ready();
            if any {
                let changed = changed && matches!(kind, Kind::Changed | Kind::Modified);
                let _ = tx.send(Event::PathChanged {
                    unit,
                    generation,
                    spec,
                    changed,
                });
                return;
            }
        }
    });
    Ok(TimerGuard(task.abort_handle()))
}

impl Manager {
    /// Starts a path unit (systemd's `path_start()`); false when it cannot
    /// run.
    pub(super) fn start_path_unit(&mut self, name: &UnitName) -> bool {
        let key = name.to_string();
        if self.path_units.map.get(&key).is_some_and(|p| p.state.up()) {
            return true;
        }
        let (unit, target) = match self.load_trigger_unit(name, target_of) {
            super::timer::Loaded::Ready { unit, target, .. } => (*unit, target),
            super::timer::Loaded::Skipped => return true,
            super::timer::Loaded::Failed => return false,
        };
        let specs = specs_of(&unit);
        if specs.is_empty() {
            tracing::error!("{key}: Path unit lacks path setting. Refusing.");
            return false;
        }
        if unit.get_bool("Path", "MakeDirectory") == Some(true) {
            let mode = match unit.get("Path", "DirectoryMode") {
                Some(Value::Mode(m)) => *m,
                _ => 0o755,
            };
            for s in specs
                .iter()
                .filter(|s| !matches!(s.kind, Kind::Exists | Kind::ExistsGlob))
            {
                use std::os::unix::fs::DirBuilderExt;
                if let Err(e) = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(mode)
                    .create(&s.path)
                {
                    tracing::warn!("{key}: mkdir({}) failed: {e}", s.path.display());
                }
            }
        }
        let interval = unit
            .get_usec("Path", "TriggerLimitIntervalSec")
            .unwrap_or(2_000_000);
        let burst = unit.get_u64("Path", "TriggerLimitBurst").unwrap_or(200);
        // The trigger limit's count outlives a stop and start, as systemd's
        // does (a switch makes the unit anew).
        let trigger_limit = self.path_units.map.remove(&key).map_or_else(
            || RateLimit::new(Duration::from_micros(interval), burst),
            |p| p.trigger_limit,
        );
        let rt = PathRt {
            target,
            specs,
            state: PathState::Dead,
            result: "success",
            watches: Vec::new(),
            generation: next_generation(),
            trigger_limit,
            unit,
            started: std::time::SystemTime::now(),
            stopped: None,
        };
        self.path_units.map.insert(key.clone(), rt);
        self.path_enter_waiting(&key, true, false);
        true
    }

    /// Stops a path unit: it watches nothing until started again.
    pub(super) fn stop_path_unit(&mut self, name: &str) {
        if let Some(p) = self.path_units.map.get_mut(name) {
            p.watches.clear();
            p.generation = next_generation();
            if p.state != PathState::Failed {
                p.state = PathState::Dead;
            }
            p.stopped = Some(std::time::SystemTime::now());
        }
    }

    fn path_enter_dead(&mut self, name: &str, result: &'static str) {
        if let Some(p) = self.path_units.map.get_mut(name) {
            p.watches.clear();
            p.generation = next_generation();
            if p.result == "success" {
                p.result = result;
            }
            p.state = if p.result == "success" {
                PathState::Dead
            } else {
                tracing::warn!("{name}: Failed with result '{}'.", p.result);
                PathState::Failed
            };
            p.stopped = Some(std::time::SystemTime::now());
        }
    }

    /// Whether the unit a path unit triggers is up (not inactive, failed
    /// or deactivating).
    fn path_target_up(&self, target: &str) -> bool {
        self.find_service(target)
            .and_then(|id| self.services.get(&id))
            .is_some_and(|s| matches!(Class::of(s.state), Class::Activating | Class::Active))
    }

    /// systemd's `path_enter_waiting()`.
    fn path_enter_waiting(&mut self, name: &str, initial: bool, from_trigger_notify: bool) {
        let Some(target) = self.path_units.map.get(name).map(|p| p.target.clone()) else {
            return;
        };
        // The unit runs: so does the path unit.
        if self.path_target_up(&target) {
            if let Some(p) = self.path_units.map.get_mut(name) {
                p.watches.clear();
                p.state = PathState::Running;
            }
            return;
        }
        let check = |p: &mut PathRt, initial: bool| {
            p.specs
                .iter_mut()
                .find_map(|s| check_good(s, initial, from_trigger_notify))
        };
        let found = self
            .path_units
            .map
            .get_mut(name)
            .and_then(|p| check(p, initial));
        if let Some(path) = found {
            self.path_enter_running(name, &path);
            return;
        }
        let tx = self.tx.clone();
        let Some(p) = self.path_units.map.get_mut(name) else {
            return;
        };
        p.watches.clear();
        p.generation = next_generation();
        let mut failed = None;
        for (i, s) in p.specs.iter().enumerate() {
            let watched = watch_spec(s).and_then(|(fd, primary)| {
                wait_for_events(
                    fd,
                    primary,
                    s.kind,
                    name.to_string(),
                    i,
                    p.generation,
                    tx.clone(),
                )
            });
            match watched {
                Ok(guard) => p.watches.push(guard),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            tracing::warn!("{name}: Failed to enter waiting state: {e}");
            self.path_enter_dead(name, "resources");
            return;
        }
        // Watched now; what changed meanwhile is seen by looking again.
        if let Some(path) = check(p, false) {
            self.path_enter_running(name, &path);
            return;
        }
        p.state = PathState::Waiting;
    }

    /// systemd's `path_enter_running()`: starts the triggered unit.
    fn path_enter_running(&mut self, name: &str, path: &Path) {
        if self.shutting_down {
            return;
        }
        let Some(p) = self.path_units.map.get_mut(name) else {
            return;
        };
        if !p.trigger_limit.allow() {
            tracing::warn!("{name}: Trigger limit hit, refusing further activation.");
            self.path_enter_dead(name, "trigger-limit-hit");
            return;
        }
        let target = p.target.clone();
        let id = self.find_service(&target).or_else(|| {
            target
                .parse::<UnitName>()
                .ok()
                .and_then(|n| self.add_service(&n))
        });
        let Some(id) = id else {
            tracing::error!("{name}: Unit to trigger vanished.");
            self.path_enter_dead(name, "resources");
            return;
        };
        tracing::info!("{name}: {} triggered; starting {target}", path.display());
        if let Some(svc) = self.services.get_mut(&id) {
            let set = |n: &str, value: String| crate::policy::EnvEdit::Set {
                name: n.to_string(),
                value,
            };
            svc.next_activation_env = vec![
                set("TRIGGER_UNIT", name.to_string()),
                set("TRIGGER_PATH", path.display().to_string()),
            ];
        }
        if !self.enqueue(id, JobKind::Start).is_empty() {
            // A requirement that cannot load: the start was refused.
            self.path_enter_dead(name, "resources");
            return;
        }
        if let Some(p) = self.path_units.map.get_mut(name) {
            p.watches.clear();
            p.generation = next_generation();
            p.state = PathState::Running;
        }
        self.dispatch();
    }

    /// Events on a waiting path unit's watch (systemd's
    /// `path_dispatch_io()`).
    pub(super) fn on_path_event(
        &mut self,
        name: &str,
        generation: u64,
        spec: usize,
        changed: bool,
    ) {
        let Some(p) = self.path_units.map.get(name) else {
            return;
        };
        if p.generation != generation || p.state != PathState::Waiting {
            return;
        }
        if changed {
            let path = p
                .specs
                .get(spec)
                .map(|s| s.path.clone())
                .unwrap_or_default();
            self.path_enter_running(name, &path);
        } else {
            self.path_enter_waiting(name, false, false);
        }
    }

    /// Follows the units the path units trigger (systemd's
    /// `path_trigger_notify()`): a running path unit waits again once its
    /// unit is down, a waiting one runs while its unit does.
    /// Returns whether a path unit moved (then look again: its unit's start
    /// may have ended at once, a condition skipping it, as systemd's
    /// deferred notification sees).
    pub(super) fn observe_path_units(&mut self) -> bool {
        let mut moved = false;
        if self.path_units.map.is_empty() {
            return moved;
        }
        let names: Vec<String> = self
            .path_units
            .map
            .iter()
            .filter(|(_, p)| p.state.up())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Some(target) = self.path_units.map.get(&name).map(|p| p.target.clone()) else {
                continue;
            };
            let Some(id) = self.find_service(&target) else {
                continue;
            };
            let Some(svc) = self.services.get(&id) else {
                continue;
            };
            if svc.start_limit_hit && svc.state == super::lifecycle::State::Failed {
                self.path_enter_dead(&name, "unit-start-limit-hit");
                moved = true;
                continue;
            }
            if self.jobs.contains_key(&id) {
                continue;
            }
            let up = self.path_target_up(&target);
            let state = self.path_units.map.get(&name).map(|p| p.state);
            if (state == Some(PathState::Running) && !up)
                || (state == Some(PathState::Waiting) && up)
            {
                self.path_enter_waiting(&name, false, true);
                moved = true;
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_find_the_first_match_and_skip_dot_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/.hidden.sock"), "").unwrap();
        assert_eq!(glob_first(&dir.path().join("s*/*.sock")), None);
        std::fs::write(dir.path().join("sub/b.sock"), "").unwrap();
        std::fs::write(dir.path().join("sub/a.sock"), "").unwrap();
        assert_eq!(
            glob_first(&dir.path().join("s*/*.sock")),
            Some(dir.path().join("sub/a.sock"))
        );
        assert_eq!(
            glob_first(&dir.path().join("sub/a.sock")),
            Some(dir.path().join("sub/a.sock"))
        );
    }

    #[test]
    fn globs_take_braces() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.sock"), "").unwrap();
        assert_eq!(
            glob_first(&dir.path().join("{a,b}.sock")),
            Some(dir.path().join("b.sock"))
        );
    }

    #[test]
    fn backup_and_hidden_files_leave_a_directory_empty() {
        for name in [
            ".x",
            "a~",
            "b.dpkg-new",
            "c.rpmsave",
            "d.swp",
            "lost+found",
            "e.old",
        ] {
            assert!(hidden_or_backup(name), "{name}");
        }
        for name in ["a", "job.conf", "x.sock", "y.orig"] {
            assert!(!hidden_or_backup(name), "{name}");
        }
    }
}
