//! One cgroup v2 per service, where flint may create them.
//!
//! systemd's `KillMode=control-group` means "every process the service
//! started", and systemd knows them by the service's cgroup. Where flint
//! runs in a cgroup v2 directory it can write to (root in a container with
//! its own cgroup namespace, a delegated subtree, a machine without
//! systemd), it creates `flint-<pid>-<pid namespace>.slice/` there and one
//! directory per service in it, named like the unit. A service's processes
//! are created in it (`clone3` with `CLONE_INTO_CGROUP`; on kernels before
//! 5.7 they move themselves in before anything else runs), so a daemon
//! that forks, calls `setsid()` and forks again stays inside: stops
//! signal every process in the cgroup (reading it again for processes
//! forked meanwhile), and a stop waits until the cgroup is empty.
//!
//! Where no cgroup v2 hierarchy is mounted, flint's own cgroup is not
//! writable (`/sys/fs/cgroup` read-only in most containers, an ordinary
//! user), or systemd runs the machine and has not delegated flint's cgroup
//! to it (a unit without `Delegate=yes`, a login session), flint tracks a
//! service's processes without cgroups: the session and process group it
//! started in, with flint as the subreaper.
//!
//! Three controllers carry resource control ([`Controller`]): `pids`
//! (`TasksMax=`), `memory` and `cpu`. Where flint's subtree may enable one
//! (its `cgroup.controllers` lists it), flint writes `+name` to the
//! subtree's `cgroup.subtree_control` and each service's settings into its
//! cgroup. On hosts whose controllers are on cgroup v1 hierarchies (the
//! hybrid layout), flint makes the same subtree in the controller's v1
//! hierarchy, and a service that needs the controller joins a cgroup there
//! too (its processes write themselves into its `cgroup.procs` before
//! anything else runs). flint's own subtree holds no processes, so the
//! controllers may be enabled in it while flint stays where it was started.

use std::io;
use std::path::{Path, PathBuf};

/// Whether `flint run` uses cgroups (where flint's own cgroup is writable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// A cgroup per service; `Accept=yes` instances are followed by session
    /// and process group, which spares every connection the kernel's work
    /// of creating, entering and removing a cgroup (about a quarter of a
    /// millisecond, a quarter of a small handler's whole run).
    #[default]
    Services,
    /// A cgroup per service and per `Accept=yes` instance, as systemd.
    All,
    /// Never: processes are tracked by session and process group.
    Off,
}

impl Mode {
    /// Whether a service (`instance`: an `Accept=yes` instance) gets a cgroup.
    pub fn covers(self, instance: bool) -> bool {
        match self {
            Mode::All => true,
            Mode::Services => !instance,
            Mode::Off => false,
        }
    }
}

/// Why flint runs without cgroups.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("no cgroup v2 hierarchy in /proc/self/cgroup")]
    NoUnified,
    #[error("no cgroup2 mount holds {0}")]
    NotMounted(String),
    #[error("cannot create {path}: {source}")]
    NotWritable { path: PathBuf, source: io::Error },
    #[error("systemd manages {0} and has not delegated it (Delegate=yes)")]
    NotDelegated(PathBuf),
}

/// flint's subtree of the cgroup v2 hierarchy, `<flint's cgroup>/flint-<pid>-<pidns>.slice`
/// (see [`subtree_name`]). Dropping it removes the directories that are empty.
#[derive(Debug)]
pub struct Cgroups {
    root: PathBuf,
    /// The subtree as the cgroup v2 hierarchy names it (`/proc/PID/cgroup`
    /// of flint's services starts with it).
    name: String,
    /// The controllers flint applies settings through, and where.
    controllers: Vec<(Controller, Hierarchy)>,
    /// v2 controllers enabled in the subtree so far (bit per controller).
    enabled: std::sync::atomic::AtomicU8,
    /// Where units with `Slice=` are, below the subtree
    /// (`a.slice/a-b.slice/x.service`); every other unit is right in it.
    placed: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The directory [`Cgroups::present`] last found (or made) in its
    /// place, and when: the [`Cgroups::prepare`] that follows it on a
    /// start does not look it up again.
    checked: std::sync::Mutex<Option<(PathBuf, std::time::Instant)>>,
}

/// What [`Cgroups::apply`] did.
#[derive(Debug)]
pub struct Applied {
    /// The v1 `cgroup.procs` the unit's processes join, if any.
    pub procs: Option<PathBuf>,
    /// Files whose write failed, with the error.
    pub failed: Vec<(String, io::Error)>,
}

/// A cgroup controller flint applies settings through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// `TasksMax=`.
    Pids,
    /// `MemoryMax=`, `MemoryHigh=`, `MemoryLow=`, `MemoryMin=`,
    /// `MemorySwapMax=`, `MemoryLimit=`.
    Memory,
    /// `CPUWeight=`, `CPUShares=`, `CPUQuota=`.
    Cpu,
}

impl Controller {
    /// In the order systemd applies them.
    pub const ALL: [Controller; 3] = [Controller::Cpu, Controller::Memory, Controller::Pids];

    /// The kernel's name of the controller.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Pids => "pids",
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
        }
    }
}

/// Where flint has a controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Enabled in flint's cgroup v2 subtree.
    Unified,
    /// flint's subtree in the controller's cgroup v1 hierarchy, beside the
    /// v2 one.
    Legacy(PathBuf),
}

impl Cgroups {
    /// Finds flint's own cgroup v2 directory and creates flint's subtree in it.
    pub fn create() -> Result<Self, Unavailable> {
        let dir = own_directory()?;
        // Under systemd, a cgroup belongs to systemd unless the unit was
        // given Delegate=yes, which systemd marks with an extended attribute.
        if systemd_is_pid1() && !delegated(&dir) {
            return Err(Unavailable::NotDelegated(dir));
        }
        let subtree = subtree_name(std::process::id(), pid_namespace());
        let root = dir.join(&subtree);
        let name = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|own| unified_path(&own).map(str::to_string))
            .map_or_else(
                || format!("/{subtree}"),
                |own| format!("{}/{subtree}", own.trim_end_matches('/')),
            );
        match std::fs::create_dir(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(Unavailable::NotWritable { path: root, source }),
        }
        remove_stale(&dir, &root);
        let controllers = Controller::ALL
            .into_iter()
            .filter_map(|c| find_controller(&root, c).map(|h| (c, h)))
            .collect();
        Ok(Cgroups {
            root,
            name,
            controllers,
            enabled: std::sync::atomic::AtomicU8::new(0),
            placed: std::sync::Mutex::default(),
            checked: std::sync::Mutex::default(),
        })
    }

    /// Where flint has `controller` (`None`: nowhere on this host).
    pub fn hierarchy(&self, controller: Controller) -> Option<&Hierarchy> {
        self.controllers
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, h)| h)
    }

    /// Writes a controller's settings (file name and value, in order) for
    /// the unit: into its v2 cgroup, which [`Cgroups::prepare`] made, or
    /// into a cgroup of the controller's v1 hierarchy made here. A v2
    /// controller is enabled in flint's subtree the first time a unit
    /// needs it (so services that set nothing are not weighed against each
    /// other). Returns the `cgroup.procs` file that the unit's processes
    /// must join in the v1 case, and each write that failed (every file is
    /// tried).
    pub fn apply(
        &self,
        unit: &str,
        controller: Controller,
        files: &[(&str, String)],
    ) -> io::Result<Applied> {
        let (dir, procs) = match self.hierarchy(controller) {
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "no {} controller is available to flint's cgroup",
                        controller.name()
                    ),
                ));
            }
            Some(Hierarchy::Unified) => {
                self.enable(controller)?;
                // And in each slice above it.
                if let Some((slices, _)) = self.relative(unit).rsplit_once('/') {
                    let mut slice = self.root.clone();
                    for part in slices.split('/') {
                        slice.push(part);
                        write_subtree_control(&slice, controller)?;
                    }
                }
                (self.dir(unit), None)
            }
            Some(Hierarchy::Legacy(root)) => {
                let dir = root.join(self.relative(unit));
                make_dir(&dir)?;
                let procs = dir.join("cgroup.procs");
                (dir, Some(procs))
            }
        };
        let failed = files
            .iter()
            .filter_map(|(file, value)| {
                std::fs::write(dir.join(file), value)
                    .err()
                    .map(|e| ((*file).to_string(), e))
            })
            .collect();
        Ok(Applied { procs, failed })
    }

    /// A file of the unit's cgroup: its v2 cgroup's `v2_file` without a
    /// controller (`cpu.stat` is always there), or for `controller`, where
    /// flint has it: `v2_file` in v2, `v1_file` in the unit's cgroup of the
    /// v1 hierarchy (present only if the unit needed the controller).
    pub fn read(
        &self,
        unit: &str,
        controller: Option<Controller>,
        v2_file: &str,
        v1_file: &str,
    ) -> Option<String> {
        let path = match controller.map(|c| self.hierarchy(c)) {
            None => self.dir(unit).join(v2_file),
            Some(None) => return None,
            Some(Some(Hierarchy::Unified)) => self.dir(unit).join(v2_file),
            Some(Some(Hierarchy::Legacy(root))) => root.join(self.relative(unit)).join(v1_file),
        };
        std::fs::read_to_string(path).ok()
    }

    /// flint's subtrees in cgroup v1 hierarchies.
    fn legacy_roots(&self) -> impl Iterator<Item = &Path> {
        self.controllers.iter().filter_map(|(_, h)| match h {
            Hierarchy::Legacy(root) => Some(root.as_path()),
            Hierarchy::Unified => None,
        })
    }

    /// Enables a v2 controller in flint's subtree, once.
    fn enable(&self, controller: Controller) -> io::Result<()> {
        let bit = 1u8 << (controller as u8);
        if self.enabled.load(std::sync::atomic::Ordering::Relaxed) & bit != 0 {
            return Ok(());
        }
        write_subtree_control(&self.root, controller)?;
        self.enabled
            .fetch_or(bit, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// flint's subtree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a unit's cgroup (which may not exist yet). A
    /// path below the subtree (`a.slice/a-b.slice`) names a slice.
    pub fn dir(&self, unit: &str) -> PathBuf {
        self.root.join(self.relative(unit))
    }

    /// A unit's cgroup as the hierarchy names it (systemd's
    /// `ControlGroup=`, what `/proc/PID/cgroup` of its processes says):
    /// `/flint-1-4026531836.slice/x.service` for flint as a container's
    /// manager.
    pub fn control_group(&self, unit: &str) -> String {
        format!("{}/{}", self.name, self.relative(unit))
    }

    /// A unit's cgroup below the subtree: in the slices it was placed in,
    /// each name escaped as systemd escapes it ([`cg_escape`]).
    fn relative(&self, unit: &str) -> String {
        self.logical(unit)
            .split('/')
            .map(cg_escape)
            .collect::<Vec<_>>()
            .join("/")
    }

    /// [`Cgroups::relative`] before escaping: the unit's name, or the
    /// names of the slices it was placed in and its own.
    fn logical(&self, unit: &str) -> String {
        self.placed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(unit)
            .cloned()
            .unwrap_or_else(|| unit.to_string())
    }

    /// Puts a unit's cgroup in `slices` (outermost first, as
    /// [`slice_chain`] gives them; none: right in the subtree), from its
    /// next [`Cgroups::prepare`] on. Returns the slices' directories below
    /// the subtree, outermost first (`a.slice`, `a.slice/a-b.slice`).
    ///
    /// A unit whose slice changed (a switch) leaves its old cgroup, and the
    /// slices that held only it, first; while processes of its last run
    /// are still there (`KillMode=process`), it stays where it is and the
    /// old directory is returned as the error.
    pub fn place(&self, unit: &str, slices: &[String]) -> Result<Vec<String>, PathBuf> {
        let paths = slice_paths(slices);
        let wanted = placed_path(unit, &paths);
        let old = self.dir(unit);
        if self.logical(unit) != wanted && old.exists() {
            self.remove(unit);
            if old.exists() {
                return Err(old);
            }
        }
        let mut placed = self
            .placed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if wanted == unit {
            placed.remove(unit);
        } else {
            placed.insert(unit.to_string(), wanted);
        }
        Ok(paths)
    }

    /// Creates the unit's cgroup if needed; returns its directory. Right
    /// after [`Cgroups::present`] found or made it, it is not looked up
    /// again: on a connection that starts a service, each path lookup in
    /// the cgroup file system is a system call on the way.
    pub fn prepare(&self, unit: &str) -> io::Result<PathBuf> {
        let dir = self.dir(unit);
        let checked = self
            .checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if !checked.is_some_and(|(d, at)| d == dir && at.elapsed() < CHECKED_FRESH) {
            make_dir(&dir)?;
        }
        Ok(dir)
    }

    /// Whether the unit's cgroup is where `slices` put it, with its slices:
    /// placed there ([`Cgroups::place`]) and not removed since (its
    /// directory is made again if it alone is gone, as systemd makes a
    /// unit's cgroup at every start; a slice that is gone is not, since
    /// its settings went with it).
    pub fn present(&self, unit: &str, slices: &[String]) -> bool {
        let wanted = placed_path(unit, &slice_paths(slices));
        if self.logical(unit) != wanted {
            return false;
        }
        let dir = self.dir(unit);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(_) => return false,
        }
        *self
            .checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((dir, std::time::Instant::now()));
        true
    }

    /// Every process in the unit's cgroup and the cgroups below it (a
    /// service with `Delegate=` may make its own).
    pub fn pids(&self, unit: &str) -> Vec<i32> {
        let mut pids = Vec::new();
        collect_pids(&self.dir(unit), &mut pids, 0);
        pids
    }

    /// Whether any process is left in the unit's cgroup (`cgroup.events`).
    pub fn populated(&self, unit: &str) -> bool {
        populated(&self.dir(unit).join("cgroup.events"))
    }

    /// Sends `sig` to every process in the unit's cgroup, each followed by
    /// `also` (SIGCONT, SIGHUP) in order, as systemd's `cg_kill()`: the
    /// cgroup is read again until a pass finds no process it has not
    /// signalled, so children forked meanwhile get it too. Returns the
    /// processes signalled.
    ///
    /// `cgroup.kill` is not used: on some kernels, once it was written, every
    /// child later created in that cgroup with `CLONE_INTO_CGROUP` is killed
    /// at birth (the fork compares the kill sequence of the wrong cgroup).
    pub fn kill(&self, unit: &str, sig: i32, also: &[i32]) -> Vec<i32> {
        let own = std::process::id().cast_signed();
        let mut done: Vec<i32> = Vec::new();
        for _ in 0..KILL_PASSES {
            let fresh: Vec<i32> = self
                .pids(unit)
                .into_iter()
                .filter(|p| *p != own && !done.contains(p))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for pid in &fresh {
                for s in std::iter::once(sig).chain(also.iter().copied()) {
                    // SAFETY: kill takes a pid and a signal number; no memory is involved.
                    unsafe {
                        libc::kill(*pid, s);
                    }
                }
            }
            done.extend(fresh);
        }
        done
    }

    /// Removes the unit's cgroup (and any below it) if empty; a cgroup with
    /// processes left (`KillMode=process`) stays.
    pub fn remove(&self, unit: &str) {
        let rel = self.relative(unit);
        let dir = self.root.join(&rel);
        // Whatever `present` found is looked up again.
        self.checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        // Nearly always an empty leaf: one rmdir.
        if std::fs::remove_dir(&dir).is_err() {
            remove_tree(&dir, 0);
        }
        for root in self.legacy_roots() {
            let _ = std::fs::remove_dir(root.join(&rel));
        }
        if !rel.contains('/') {
            return;
        }
        // The slices it was in go once empty, as systemd's slices of no
        // unit are stopped; the next unit in them makes them again.
        if !dir.exists() {
            self.placed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(unit);
        }
        let mut up = Path::new(&rel).parent();
        while let Some(p) = up.filter(|p| !p.as_os_str().is_empty()) {
            let gone = std::fs::remove_dir(self.root.join(p)).is_ok();
            for root in self.legacy_roots() {
                let _ = std::fs::remove_dir(root.join(p));
            }
            if !gone {
                break;
            }
            up = p.parent();
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        remove_tree(&self.root, 0);
        for root in self.legacy_roots() {
            remove_tree(root, 0);
        }
    }
}

/// Enables a v2 controller for the cgroups below `dir`.
fn write_subtree_control(dir: &Path, controller: Controller) -> io::Result<()> {
    std::fs::write(
        dir.join("cgroup.subtree_control"),
        format!("+{}", controller.name()),
    )
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot enable the {} controller in {}: {e}",
                controller.name(),
                dir.display()
            ),
        )
    })
}

/// systemd's cgroup controllers, real and BPF-based (the names its
/// `cg_mask_from_string()` knows).
pub const SYSTEMD_CONTROLLERS: [&str; 13] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "io",
    "blkio",
    "memory",
    "devices",
    "pids",
    "bpf-firewall",
    "bpf-devices",
    "bpf-foreign",
    "bpf-socket-bind",
    "bpf-restrict-network-interfaces",
];

/// systemd's `cg_escape()`: the name of a unit's (or slice's) cgroup
/// directory. A name that could be taken for one of the kernel's files (a
/// controller's `cpu.…`, `cgroup.…`, `tasks`, …) or that starts with `_` or
/// `.` gets a `_` in front, so that removing one leading `_` always gives
/// the unit's name back (`cg_unescape()`).
pub fn cg_escape(name: &str) -> std::borrow::Cow<'_, str> {
    let kernel_like = name.starts_with(['_', '.'])
        || matches!(name, "notify_on_release" | "release_agent" | "tasks")
        || name.starts_with("cgroup.")
        || SYSTEMD_CONTROLLERS.iter().any(|c| {
            name.strip_prefix(c)
                .is_some_and(|rest| rest.starts_with('.'))
        });
    if kernel_like {
        std::borrow::Cow::Owned(format!("_{name}"))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// The slices a unit in slice `name` is nested in, outermost first, as
/// systemd derives a slice's parent from its name: `a-b-c.slice` is in
/// `a-b.slice`, which is in `a.slice`, which is in the root slice `-.slice`
/// (flint's subtree). `None` for a name that is not a slice's.
pub fn slice_chain(name: &str) -> Option<Vec<String>> {
    let prefix = name.strip_suffix(".slice")?;
    if prefix == "-" {
        return Some(Vec::new());
    }
    let valid = !prefix.is_empty()
        && !prefix.starts_with('-')
        && !prefix.ends_with('-')
        && !prefix.contains("--")
        && name.len() <= 255
        && prefix
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b":-_.\\".contains(&c));
    if !valid {
        return None;
    }
    Some(
        prefix
            .match_indices('-')
            .map(|(i, _)| format!("{}.slice", &prefix[..i]))
            .chain(std::iter::once(name.to_string()))
            .collect(),
    )
}

/// How long a directory [`Cgroups::present`] found is taken as there by
/// the [`Cgroups::prepare`] that follows it.
const CHECKED_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The slices' directories below the subtree, outermost first
/// (`a.slice`, `a.slice/a-b.slice`).
fn slice_paths(slices: &[String]) -> Vec<String> {
    let mut paths: Vec<String> = Vec::with_capacity(slices.len());
    for s in slices {
        paths.push(match paths.last() {
            Some(up) => format!("{up}/{s}"),
            None => s.clone(),
        });
    }
    paths
}

/// A unit's path below the subtree in the slices of `paths` ([`slice_paths`]).
fn placed_path(unit: &str, paths: &[String]) -> String {
    paths
        .last()
        .map_or_else(|| unit.to_string(), |up| format!("{up}/{unit}"))
}

/// Makes a unit's cgroup directory unless it is there; when flint's own
/// subtree went (removed from outside while empty), makes it again.
fn make_dir(dir: &Path) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir_all(dir),
        Err(e) => Err(e),
    }
}

/// Finds where flint has `controller` for its subtree `root`: in cgroup
/// v2 where the subtree is offered it (enabled once a unit needs it), or
/// else flint's own cgroup of the controller's v1 hierarchy, where the
/// same subtree is made.
fn find_controller(root: &Path, controller: Controller) -> Option<Hierarchy> {
    let name = controller.name();
    let offered = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    if offered.split_whitespace().any(|c| c == name) {
        return Some(Hierarchy::Unified);
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = legacy_path(&own, name)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let dir = directory_in(&mountinfo, path, |fstype, options| {
        fstype == "cgroup" && options.split(',').any(|o| o == name)
    })?;
    let legacy = dir.join(root.file_name()?);
    match std::fs::create_dir(&legacy) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            tracing::debug!("cannot create {}: {e}", legacy.display());
            return None;
        }
    }
    remove_stale(&dir, &legacy);
    Some(Hierarchy::Legacy(legacy))
}

/// A limit set on the top of the cgroup hierarchies this process sees
/// (`v2_file` in the cgroup2 mount, `v1_file` in the v1 mount of
/// `controller`): in a container with its own cgroup namespace, the
/// container's limit; on a host, nothing. systemd takes the same from its
/// root cgroup for `system_tasks_max()` and `physical_memory()`.
pub fn top_limit(controller: &str, v2_file: &str, v1_file: &str) -> Option<u64> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    top_limit_in(&mountinfo, controller, v2_file, v1_file, |path| {
        std::fs::read_to_string(path).ok()
    })
}

fn top_limit_in(
    mountinfo: &str,
    controller: &str,
    v2_file: &str,
    v1_file: &str,
    read: impl Fn(&Path) -> Option<String>,
) -> Option<u64> {
    let v2 = directory_in(mountinfo, "/", |t, _| t == "cgroup2").map(|d| d.join(v2_file));
    let v1 = directory_in(mountinfo, "/", |t, o| {
        t == "cgroup" && o.split(',').any(|o| o == controller)
    })
    .map(|d| d.join(v1_file));
    [v2, v1]
        .into_iter()
        .flatten()
        .filter_map(|f| read(&f)?.trim().parse::<u64>().ok())
        .min()
}

/// The path of the v1 hierarchy with `controller` in `/proc/self/cgroup`
/// (`N:pids:/path`).
pub(crate) fn legacy_path<'a>(proc_cgroup: &'a str, controller: &str) -> Option<&'a str> {
    proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        (controllers.split(',').any(|c| c == controller) && path.starts_with('/'))
            .then_some(path.trim_end())
    })
}

/// Hands a service's cgroup to its user (`Delegate=`): the directory and
/// the files through which a delegatee manages it, as systemd chowns them.
pub fn delegate(dir: &Path, uid: u32, gid: Option<u32>) -> io::Result<()> {
    let owner = Some(uid);
    std::os::unix::fs::chown(dir, owner, gid)?;
    for file in ["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"] {
        std::os::unix::fs::chown(dir.join(file), owner, gid)?;
    }
    Ok(())
}

/// This process's cgroup v2 directory in the file system (from
/// `/proc/self/cgroup` and `/proc/self/mountinfo`).
pub fn own_directory() -> Result<PathBuf, Unavailable> {
    let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|_| Unavailable::NoUnified)?;
    let path = unified_path(&own).ok_or(Unavailable::NoUnified)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|_| Unavailable::NotMounted(path.to_string()))?;
    directory_of(&mountinfo, path).ok_or_else(|| Unavailable::NotMounted(path.to_string()))
}

/// Whether a cgroup's `cgroup.events` says it has processes (in it or
/// below); a cgroup that is gone has none.
pub fn populated(events: &Path) -> bool {
    match std::fs::read_to_string(events) {
        Ok(text) => text
            .lines()
            .any(|l| l.split_whitespace().eq(["populated", "1"])),
        Err(_) => false,
    }
}

/// The inode of flint's pid namespace (0 if it cannot be read).
pub fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// The name of the subtree of the flint with `pid` in the pid namespace
/// `pidns`. The namespace is part of the name because a pid means
/// something only there: flints in containers (or `flint run` as PID 1 of
/// a namespace) may share a cgroup parent, and each must tell its own
/// namespace's leftovers from the live subtrees of the others. It is a
/// slice's name (`flint-PID-NS.slice`), so that libsystemd's
/// `sd_pid_get_unit()` (`cg_path_get_unit()`, which skips slices) finds a
/// service's unit in its path as it does under systemd
/// (`/flint-1-4026531836.slice/x.service` gives `x.service`).
pub fn subtree_name(pid: u32, pidns: u64) -> String {
    format!("flint-{pid}-{pidns}.slice")
}

/// Removes what a flint that is gone (killed with SIGKILL, so its
/// directories stayed) left beside `own`: subtrees of this pid namespace
/// whose pid runs nothing. Only empty cgroups can be removed, so processes
/// a dead flint left running keep theirs. Subtrees of other pid namespaces
/// are left alone: their pids cannot be checked from here.
fn remove_stale(parent: &Path, own: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let ours = pid_namespace();
    for e in entries.flatten() {
        let path = e.path();
        let Some(pid) = e
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix("flint-"))
            // (Named without `.slice` before.)
            .map(|n| n.strip_suffix(".slice").unwrap_or(n))
            .and_then(|rest| rest.split_once('-'))
            .filter(|(_, ns)| ns.parse::<u64>().ok() == Some(ours))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let running = Path::new(&format!("/proc/{pid}")).exists();
        if path != own && !running && e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&path, 0);
        }
    }
}

/// Whether PID 1 (of this pid namespace) is systemd.
fn systemd_is_pid1() -> bool {
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd")
}

/// Whether systemd delegated the cgroup `dir`: the `trusted.delegate` (or,
/// for user managers, `user.delegate`) attribute it sets on the cgroup of a
/// unit with `Delegate=yes`.
fn delegated(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    [c"trusted.delegate", c"user.delegate"].iter().any(|name| {
        let mut value = [0u8; 8];
        // SAFETY: getxattr writes at most value.len() bytes into `value`;
        // both strings are NUL-terminated.
        let n = unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        n > 0 && value[0] == b'1'
    })
}

/// How often [`Cgroups::kill`] reads a cgroup again for processes forked
/// while it signalled.
const KILL_PASSES: usize = 16;

/// How deep flint follows cgroups a service made below its own.
const MAX_DEPTH: usize = 16;

fn collect_pids(dir: &Path, out: &mut Vec<i32>, depth: usize) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if depth >= MAX_DEPTH {
        return;
    }
    for sub in subdirs(dir) {
        collect_pids(&sub, out, depth + 1);
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

fn remove_tree(dir: &Path, depth: usize) {
    if depth < MAX_DEPTH {
        for sub in subdirs(dir) {
            remove_tree(&sub, depth + 1);
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// The path of the unified (v2) hierarchy in `/proc/self/cgroup`: the
/// `0::/path` line.
pub(crate) fn unified_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::trim_end)
        .filter(|p| p.starts_with('/'))
}

/// Where `path` of the cgroup2 hierarchy is in the file system, from
/// `/proc/self/mountinfo`: a cgroup2 mount whose root is a prefix of `path`
/// (the one mounted at `/sys/fs/cgroup` first).
fn directory_of(mountinfo: &str, path: &str) -> Option<PathBuf> {
    directory_in(mountinfo, path, |fstype, _| fstype == "cgroup2")
}

/// Where `path` of a cgroup hierarchy is in the file system: a mount that
/// `mount` accepts (by file system type and super options) whose root is
/// a prefix of `path`; the one under `/sys/fs/cgroup` first.
fn directory_in(
    mountinfo: &str,
    path: &str,
    mount: impl Fn(&str, &str) -> bool,
) -> Option<PathBuf> {
    let mut found: Option<PathBuf> = None;
    for line in mountinfo.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let mut source = after.split_whitespace();
        let (Some(fstype), _, options) = (source.next(), source.next(), source.next()) else {
            continue;
        };
        if !mount(fstype, options.unwrap_or("")) {
            continue;
        }
        let fields: Vec<&str> = before.split_whitespace().collect();
        let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        let (root, point) = (unescape(root), unescape(point));
        let rest = if root == "/" {
            Some(path)
        } else {
            path.strip_prefix(root.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'))
        };
        let Some(rest) = rest else { continue };
        let dir = PathBuf::from(&point).join(rest.trim_start_matches('/'));
        if point == "/sys/fs/cgroup" || point.starts_with("/sys/fs/cgroup/") {
            return Some(dir);
        }
        found.get_or_insert(dir);
    }
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0')));
        if let Some(v) = octal.and_then(|v| u8::try_from(v).ok()) {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_names_are_escaped_as_systemd_escapes_them() {
        for (name, dir) in [
            ("web.service", "web.service"),
            ("cpu.service", "_cpu.service"),
            ("io.slice", "_io.slice"),
            ("memory-x.slice", "memory-x.slice"),
            ("cpuset.service", "_cpuset.service"),
            ("pids.service", "_pids.service"),
            ("bpf-firewall.service", "_bpf-firewall.service"),
            ("cgroup.service", "_cgroup.service"),
            ("_private.service", "__private.service"),
            ("tasks", "_tasks"),
            ("iostat.service", "iostat.service"),
        ] {
            assert_eq!(cg_escape(name), dir, "{name}");
        }
        let cg = Cgroups {
            root: PathBuf::from("/sys/fs/cgroup/flint-1-2.slice"),
            name: "/flint-1-2.slice".into(),
            controllers: Vec::new(),
            enabled: std::sync::atomic::AtomicU8::new(0),
            placed: std::sync::Mutex::default(),
            checked: std::sync::Mutex::default(),
        };
        assert_eq!(
            cg.dir("cpu.service"),
            Path::new("/sys/fs/cgroup/flint-1-2.slice/_cpu.service")
        );
        let slices = slice_chain("io-x.slice").unwrap();
        let paths = cg.place("memory.service", &slices).unwrap();
        assert_eq!(paths, ["io.slice", "io.slice/io-x.slice"]);
        assert_eq!(
            cg.dir(&paths[0]),
            Path::new("/sys/fs/cgroup/flint-1-2.slice/_io.slice")
        );
        assert_eq!(
            cg.dir("memory.service"),
            Path::new("/sys/fs/cgroup/flint-1-2.slice/_io.slice/io-x.slice/_memory.service")
        );
        // As the hierarchy names it.
        assert_eq!(
            cg.control_group("memory.service"),
            "/flint-1-2.slice/_io.slice/io-x.slice/_memory.service"
        );
        // Back right in the subtree.
        cg.place("memory.service", &[]).unwrap();
        assert_eq!(
            cg.dir("memory.service"),
            Path::new("/sys/fs/cgroup/flint-1-2.slice/_memory.service")
        );
    }

    /// A unit's cgroup is present where its slices put it: made again when
    /// it alone was removed, not when its slice was, and not where it was
    /// before its slice changed.
    #[test]
    fn a_unit_is_present_only_where_its_slices_put_it() {
        let tmp = std::env::temp_dir().join(format!("flint-cg-present-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let cg = Cgroups {
            root: tmp.clone(),
            name: "/x".into(),
            controllers: Vec::new(),
            enabled: std::sync::atomic::AtomicU8::new(0),
            placed: std::sync::Mutex::default(),
            checked: std::sync::Mutex::default(),
        };
        let slices = slice_chain("a.slice").unwrap();
        assert!(!cg.present("x.service", &slices), "not placed yet");
        assert!(!tmp.join("x.service").exists() && !tmp.join("a.slice").exists());
        let paths = cg.place("x.service", &slices).unwrap();
        for p in &paths {
            cg.prepare(p).unwrap();
        }
        let dir = cg.prepare("x.service").unwrap();
        assert_eq!(dir, tmp.join("a.slice/x.service"));
        assert!(cg.present("x.service", &slices));
        // The prepare right after present() takes its word for it.
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(cg.prepare("x.service").unwrap(), dir);
        assert!(!dir.exists());
        // Removed from outside: made again in its slice.
        assert!(cg.present("x.service", &slices));
        assert!(dir.is_dir());
        // Not placed in a slice it has not been placed in.
        assert!(!cg.present("x.service", &[]));
        // Removed by flint between present() and prepare(): prepare makes
        // it again.
        cg.place("y.service", &[]).unwrap();
        let y = cg.prepare("y.service").unwrap();
        assert!(cg.present("y.service", &[]));
        cg.remove("y.service");
        assert!(!y.exists());
        assert_eq!(cg.prepare("y.service").unwrap(), y);
        assert!(y.is_dir());
        cg.remove("y.service");
        // Its slice removed from outside: not present, nothing made.
        std::fs::remove_dir(&dir).unwrap();
        std::fs::remove_dir(tmp.join("a.slice")).unwrap();
        assert!(!cg.present("x.service", &slices));
        assert!(!tmp.join("a.slice").exists());
        // Removed by flint (the slice with it): placed again before present.
        let paths = cg.place("x.service", &slices).unwrap();
        for p in &paths {
            cg.prepare(p).unwrap();
        }
        cg.prepare("x.service").unwrap();
        cg.remove("x.service");
        assert!(!tmp.join("a.slice").exists());
        assert!(!cg.present("x.service", &slices));
        assert!(
            !tmp.join("x.service").exists(),
            "not made outside its slice"
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn finds_the_unified_line() {
        let text = "12:pids:/init.scope\n1:name=systemd:/x\n0::/init.scope\n";
        assert_eq!(unified_path(text), Some("/init.scope"));
        assert_eq!(unified_path("1:cpu:/\n"), None);
    }

    #[test]
    fn reads_limits_at_the_top_of_the_hierarchies() {
        let mountinfo = "\
40 30 0:35 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
42 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        let files = |p: &Path| match p.to_str()? {
            "/sys/fs/cgroup/unified/pids.max" => Some("max\n".to_string()),
            "/sys/fs/cgroup/pids/pids.max" => Some("2000\n".to_string()),
            _ => None,
        };
        assert_eq!(
            top_limit_in(mountinfo, "pids", "pids.max", "pids.max", files),
            Some(2000)
        );
        // A host: no limit file at the top, or "max".
        assert_eq!(
            top_limit_in(
                mountinfo,
                "memory",
                "memory.max",
                "memory.limit_in_bytes",
                files
            ),
            None
        );
    }

    #[test]
    fn finds_the_v1_pids_hierarchy() {
        let own =
            "9:name=systemd:/init.scope\n8:pids:/init.scope\n4:cpu,cpuacct:/\n0::/init.scope\n";
        assert_eq!(legacy_path(own, "pids"), Some("/init.scope"));
        assert_eq!(legacy_path(own, "cpuacct"), Some("/"));
        assert_eq!(legacy_path(own, "memory"), None);
        let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
40 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 30 0:36 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
42 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let pids = |t: &str, o: &str| t == "cgroup" && o.split(',').any(|o| o == "pids");
        assert_eq!(
            directory_in(mountinfo, "/init.scope", pids),
            Some(PathBuf::from("/sys/fs/cgroup/pids/init.scope"))
        );
        assert_eq!(
            directory_of(mountinfo, "/init.scope"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/init.scope"))
        );
        assert_eq!(
            directory_in(mountinfo, "/", |t, o| t == "cgroup" && o.contains("memory")),
            None
        );
    }

    #[test]
    fn maps_the_path_through_the_mount() {
        let hybrid = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
35 30 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        assert_eq!(
            directory_of(hybrid, "/init.scope"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/init.scope"))
        );
        let unified = "\
35 30 0:31 / /mnt/other\\040dir rw - cgroup2 cgroup2 rw
36 30 0:31 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        assert_eq!(
            directory_of(unified, "/a/b"),
            Some(PathBuf::from("/sys/fs/cgroup/a/b"))
        );
        // A mount of a subtree (a container's view without a cgroup namespace).
        let sub = "40 30 0:31 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            directory_of(sub, "/docker/abc/svc"),
            Some(PathBuf::from("/sys/fs/cgroup/svc"))
        );
        assert_eq!(directory_of(sub, "/docker/abcd"), None);
        assert_eq!(
            directory_of("1 0 0:1 / / rw - ext4 /dev/vda rw\n", "/"),
            None
        );
    }

    #[test]
    fn a_cgroup_is_delegated_by_systemds_attribute() {
        use std::os::unix::ffi::OsStrExt;
        let dir = std::env::temp_dir().join(format!("flint-delegate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!delegated(&dir));
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: setxattr reads the NUL-terminated strings and one byte.
        let r = unsafe {
            libc::setxattr(
                path.as_ptr(),
                c"user.delegate".as_ptr(),
                b"1".as_ptr().cast(),
                1,
                0,
            )
        };
        let set = r == 0;
        let seen = delegated(&dir);
        let _ = std::fs::remove_dir(&dir);
        if set {
            assert!(seen);
        } else {
            eprintln!("SKIP: the temporary directory's file system has no user attributes");
        }
    }

    #[test]
    fn unescapes_mountinfo_fields() {
        assert_eq!(unescape("/mnt/other\\040dir"), "/mnt/other dir");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\04"), "/end\\04");
    }
}
