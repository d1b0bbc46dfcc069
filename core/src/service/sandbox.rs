//! The sandbox settings that take namespaces, worked out before the spawn:
//! `PrivateTmp=`, `ProtectSystem=`, `ProtectHome=`, `ReadWritePaths=`,
//! `ReadOnlyPaths=`, `InaccessiblePaths=`, `BindPaths=`, `PrivateDevices=`,
//! `TemporaryFileSystem=`, `NoExecPaths=`, `ExecPaths=`,
//! `BindReadOnlyPaths=`, `ProtectKernelTunables=`, `ProtectKernelModules=`,
//! `ProtectKernelLogs=`, `ProtectControlGroups=`, `PrivateMounts=`, `PrivateNetwork=`,
//! `PrivateIPC=` and `ProtectHostname=`, and what `DynamicUser=` implies.
//!
//! As systemd's `namespace.c`, every setting becomes mount entries (a path
//! and a mode), sorted so that a parent comes before what is below it and,
//! for one path, the stronger mode first (the duplicates then dropped, their
//! read-only flag kept). Paths that are not mount points yet become ones (a
//! bind mount onto themselves), so that making one read-only leaves the
//! others alone. Then each mount in the namespace, those found in
//! `/proc/self/mountinfo` and those just made, takes the read-only flag of
//! the deepest entry at or above it. A writable entry below a read-only one
//! is only left alone, never made writable, so a mount that was read-only
//! on the host stays read-only (systemd's deny list in
//! `bind_remount_recursive()`).
//!
//! The child does the mounts ([`crate::spawn::NamespacePlan`]); here only
//! paths are looked at.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::spawn::{ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY, MountOp, NamespacePlan};
use crate::unit::load::Unit;

/// Where flint keeps the empty, mode-0000 nodes that `InaccessiblePaths=`
/// mounts over a path (systemd: `/run/systemd/inaccessible/`).
const INACCESSIBLE_DIR: &str = "/run/flint/inaccessible";

/// Why a sandbox could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{setting}: path is not absolute: {path}")]
    NotAbsolute { setting: &'static str, path: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("path contains a NUL byte")]
    Nul,
}

/// A mount entry's mode; for one path, the lower wins (systemd's
/// `MountMode` order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Inaccessible,
    Bind,
    BindRecursive,
    PrivateTmp,
    PrivateDev,
    /// `ProtectProc=`, `ProcSubset=`: a procfs of its own on `/proc`.
    Procfs,
    ReadOnly,
    ReadWrite,
    /// `NoExecPaths=`, `ExecPaths=`: only whether programs run from there.
    /// Above a tmpfs, as in systemd: `NoExecPaths=/x` with
    /// `TemporaryFileSystem=/x` leaves /x as it is, without programs.
    NoExec,
    Exec,
    Tmpfs,
    ReadWriteImplicit,
}

#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    mode: Mode,
    /// Bind mounts: what is mounted.
    source: Option<PathBuf>,
    read_only: bool,
    /// `-`: a missing path drops the entry.
    ignore: bool,
    /// The path may be gone once the mounts before it are made (below a
    /// procfs of the plan with `subset=pid`): then the entry is skipped.
    missing_ok: bool,
    /// Tmpfs: mount flags and options.
    tmpfs: Option<(libc::c_ulong, String)>,
    /// Whether programs may run from here: `Some(false)` for
    /// `NoExecPaths=` and inaccessible paths, `Some(true)` for
    /// `ExecPaths=`.
    exec: Option<bool>,
}

impl Entry {
    fn new(path: impl Into<PathBuf>, mode: Mode, ignore: bool) -> Entry {
        Entry {
            path: path.into(),
            read_only: matches!(mode, Mode::ReadOnly | Mode::Inaccessible),
            mode,
            source: None,
            ignore,
            missing_ok: false,
            tmpfs: None,
            exec: match mode {
                Mode::NoExec | Mode::Inaccessible => Some(false),
                Mode::Exec => Some(true),
                _ => None,
            },
        }
    }
}

/// The private `/tmp` and `/var/tmp` of one service run: directories
/// named as systemd names them (`systemd-private-BOOTID-UNIT-XXXXXX`, which
/// tmpfiles.d's `tmp.conf` keeps from being cleaned), each holding a `tmp`
/// with mode 1777 that the service sees. They live as long as the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateTmp {
    /// The outer directories, removed with everything in them.
    outer: Vec<PathBuf>,
    pub tmp: PathBuf,
    pub var_tmp: PathBuf,
}

impl PrivateTmp {
    /// Creates both for `unit`.
    pub fn create(unit: &str) -> Result<PrivateTmp, SandboxError> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().replace('-', ""))
            .unwrap_or_default();
        let mut outer = Vec::new();
        let mut inner = Vec::new();
        for base in ["/tmp", "/var/tmp"] {
            let dir = make_unique_dir(Path::new(base), &format!("systemd-private-{boot}-{unit}-"))?;
            outer.push(dir.clone());
            let tmp = dir.join("tmp");
            let made = std::fs::DirBuilder::new()
                .mode(0o1777)
                .create(&tmp)
                .and_then(|()| {
                    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
                });
            if let Err(source) = made {
                let created = PrivateTmp {
                    outer,
                    tmp: PathBuf::new(),
                    var_tmp: PathBuf::new(),
                };
                created.remove();
                return Err(SandboxError::Io {
                    what: "creating the private temporary directory",
                    path: tmp,
                    source,
                });
            }
            inner.push(tmp);
        }
        let var_tmp = inner.pop().unwrap_or_default();
        let tmp = inner.pop().unwrap_or_default();
        Ok(PrivateTmp {
            outer,
            tmp,
            var_tmp,
        })
    }

    /// Removes both with their contents: on a blocking thread when called
    /// from flint's event loop (a service may leave a large tree behind;
    /// systemd removes it in the background too), else right away.
    pub fn remove_in_background(self) {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || self.remove());
            }
            Err(_) => self.remove(),
        }
    }

    /// Removes both with their contents.
    pub fn remove(&self) {
        for dir in &self.outer {
            if let Err(e) = std::fs::remove_dir_all(dir)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!("cannot remove {}: {e}", dir.display());
            }
        }
    }
}

/// The network, IPC and user namespaces of one run (`PrivateNetwork=`,
/// `PrivateIPC=`, `PrivateUsers=`): every command of the run joins them,
/// so that `ExecStop=` reaches the main process over its loopback and IPC
/// objects made by `ExecStartPre=` are there for `ExecStart=`, as under
/// systemd. They go with the last holder of these fds.
#[derive(Debug, Clone, Default)]
pub struct RunNamespaces {
    pub network: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    pub ipc: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    pub user: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
}

impl RunNamespaces {
    /// The namespaces `unit` asks for, or `None` when it asks for none.
    /// `ids`: the service's user and group (`None`: root), which its user
    /// namespace maps.
    ///
    /// `join`: the namespaces of a unit it joins (`JoinsNamespaceOf=`): its
    /// network and IPC namespaces are taken where both units ask for them,
    /// instead of new ones (a user namespace is always its own).
    pub fn create(
        unit: &Unit,
        section: &str,
        ids: Option<(u32, u32)>,
        join: Option<&RunNamespaces>,
    ) -> Result<Option<RunNamespaces>, SandboxError> {
        let (network, ipc, user) = (
            on(unit, section, "PrivateNetwork"),
            on(unit, section, "PrivateIPC"),
            on(unit, section, "PrivateUsers"),
        );
        if !network && !ipc && !user {
            return Ok(None);
        }
        let fail = |what, source| SandboxError::Io {
            what,
            path: PathBuf::from(unit.id.as_str()),
            source,
        };
        let joined_net = join.and_then(|j| j.network.clone()).filter(|_| network);
        let joined_ipc = join.and_then(|j| j.ipc.clone()).filter(|_| ipc);
        let (make_net, make_ipc) = (network && joined_net.is_none(), ipc && joined_ipc.is_none());
        let (net, ipc) = if make_net || make_ipc {
            crate::spawn::make_run_namespaces(make_net, make_ipc)
                .map_err(|e| fail("making the network and IPC namespaces for", e))?
        } else {
            (None, None)
        };
        let user = if user {
            Some(
                crate::spawn::make_user_namespace(ids)
                    .map_err(|e| fail("making the user namespace for", e))?,
            )
        } else {
            None
        };
        Ok(Some(RunNamespaces {
            network: joined_net.or_else(|| net.map(std::sync::Arc::new)),
            ipc: joined_ipc.or_else(|| ipc.map(std::sync::Arc::new)),
            user: user.map(std::sync::Arc::new),
        }))
    }
}

/// `mkdtemp()`: `base/prefixXXXXXX`, mode 0700.
fn make_unique_dir(base: &Path, prefix: &str) -> Result<PathBuf, SandboxError> {
    let mut last = None;
    for _ in 0..16 {
        let suffix: String = crate::service::exec::invocation_id()
            .chars()
            .take(6)
            .collect();
        let dir = base.join(format!("{prefix}{suffix}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(source) => {
                return Err(SandboxError::Io {
                    what: "creating the private temporary directory",
                    path: dir,
                    source,
                });
            }
        }
    }
    Err(SandboxError::Io {
        what: "creating the private temporary directory",
        path: base.to_path_buf(),
        source: last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
    })
}

fn on(unit: &Unit, section: &str, key: &str) -> bool {
    unit.get_bool(section, key).unwrap_or(false)
}

pub(crate) fn dynamic_user(unit: &Unit, section: &str) -> bool {
    on(unit, section, "DynamicUser")
}

/// Whether the unit's commands get a private `/tmp` (`PrivateTmp=`, or
/// implied by `DynamicUser=`).
pub fn wants_private_tmp(unit: &Unit, section: &str) -> bool {
    on(unit, section, "PrivateTmp") || dynamic_user(unit, section)
}

/// `ProtectSystem=`: `no`, `yes`, `full` or `strict` (`strict` forced by
/// `DynamicUser=`).
fn protect_system(unit: &Unit, section: &str) -> &'static str {
    let set = match unit.get_str(section, "ProtectSystem") {
        Some("full") => "full",
        Some("strict") => "strict",
        Some(v) if crate::unit::value::bool::parse_bool(v).ok() == Some(true) => "yes",
        _ => "no",
    };
    if dynamic_user(unit, section) {
        // Whatever the unit says (systemd's `unit_patch_contexts()`).
        "strict"
    } else {
        set
    }
}

/// `ProtectHome=`: `no`, `yes`, `read-only` or `tmpfs` (`read-only`
/// implied by `DynamicUser=`).
fn protect_home(unit: &Unit, section: &str) -> &'static str {
    let set = match unit.get_str(section, "ProtectHome") {
        Some("read-only") => "read-only",
        Some("tmpfs") => "tmpfs",
        Some(v) if crate::unit::value::bool::parse_bool(v).ok() == Some(true) => "yes",
        _ => "no",
    };
    if set == "no" && dynamic_user(unit, section) {
        "read-only"
    } else {
        set
    }
}

/// `-` (ignore a missing path) and `+` (below `RootDirectory=`) prefixes.
fn prefixes(mut s: &str) -> (&str, bool, bool) {
    let ignore = s.starts_with('-');
    if ignore {
        s = &s[1..];
    }
    let rooted = s.starts_with('+');
    if rooted {
        s = &s[1..];
    }
    (s, ignore, rooted)
}

/// `/a//b/./c/` → `/a/b/c`.
fn simplify(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        if let Component::Normal(n) = c {
            out.push(n);
        }
    }
    out
}

fn below_root(root: Option<&Path>, p: &Path) -> PathBuf {
    match root {
        Some(r) => simplify(&r.join(p.strip_prefix("/").unwrap_or(p))),
        None => simplify(p),
    }
}

/// Whether the unit sets anything this module enforces.
pub fn is_sandboxed(unit: &Unit, section: &str) -> bool {
    [
        "PrivateTmp",
        "PrivateDevices",
        "PrivateMounts",
        "PrivateNetwork",
        "PrivateIPC",
        "PrivateUsers",
        "ProtectHostname",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "DynamicUser",
    ]
    .iter()
    .any(|k| on(unit, section, k))
        || protect_system(unit, section) != "no"
        || protect_home(unit, section) != "no"
        || proc_options(unit, section).is_some()
        || mount_api_vfs(unit, section)
        || [
            "ReadWritePaths",
            "ReadOnlyPaths",
            "InaccessiblePaths",
            "BindPaths",
            "BindReadOnlyPaths",
            "TemporaryFileSystem",
            "NoExecPaths",
            "ExecPaths",
        ]
        .iter()
        .any(|k| !unit.entries(section, k).is_empty())
}

/// Whether flint may make namespaces (and load seccomp filters without
/// no-new-privileges): `CAP_SYS_ADMIN` in its effective set. Root without
/// it (a container's default) may not; systemd asks the same question
/// (`have_effective_cap(CAP_SYS_ADMIN)`).
/// flint never changes its own capabilities, so the answer is read once.
pub fn can_make_namespaces() -> bool {
    static SYS_ADMIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SYS_ADMIN.get_or_init(|| {
        crate::unit::value::process::own_capabilities("CapEff")
            .is_some_and(|caps| caps & (1 << 21) != 0)
    })
}

/// The entries of every setting, before sorting.
fn entries(
    unit: &Unit,
    section: &str,
    root: Option<&Path>,
    private_tmp: Option<&PrivateTmp>,
    writable: &[PathBuf],
) -> Result<Vec<Entry>, SandboxError> {
    let mut out = Vec::new();
    for (key, mode) in [
        ("ReadWritePaths", Mode::ReadWrite),
        ("ReadOnlyPaths", Mode::ReadOnly),
        ("InaccessiblePaths", Mode::Inaccessible),
        ("NoExecPaths", Mode::NoExec),
        ("ExecPaths", Mode::Exec),
    ] {
        for w in unit.strings(section, key) {
            let (p, ignore, rooted) = prefixes(w);
            if !p.starts_with('/') {
                return Err(SandboxError::NotAbsolute {
                    setting: key,
                    path: w.to_string(),
                });
            }
            let path = if rooted {
                below_root(root, Path::new(p))
            } else {
                simplify(Path::new(p))
            };
            out.push(Entry::new(path, mode, ignore));
        }
    }
    // The *Directory= directories stay writable (systemd's
    // `compile_read_write_paths()`).
    for dir in writable {
        out.push(Entry::new(simplify(dir), Mode::ReadWrite, true));
    }
    for (key, read_only) in [("BindPaths", false), ("BindReadOnlyPaths", true)] {
        for w in unit.strings(section, key) {
            let (spec, ignore, _) = prefixes(w);
            let mut parts = spec.splitn(3, ':');
            let src = parts.next().unwrap_or_default();
            let dst = parts.next().filter(|d| !d.is_empty()).unwrap_or(src);
            let recursive = parts.next() != Some("norbind");
            if !src.starts_with('/') || !dst.starts_with('/') {
                return Err(SandboxError::NotAbsolute {
                    setting: key,
                    path: w.to_string(),
                });
            }
            let mut e = Entry::new(
                below_root(root, Path::new(dst)),
                if recursive {
                    Mode::BindRecursive
                } else {
                    Mode::Bind
                },
                ignore,
            );
            e.source = Some(simplify(Path::new(src)));
            e.read_only = read_only;
            out.push(e);
        }
    }
    for w in unit.strings(section, "TemporaryFileSystem") {
        let (p, options) = w.split_once(':').unwrap_or((w, ""));
        if !p.starts_with('/') {
            return Err(SandboxError::NotAbsolute {
                setting: "TemporaryFileSystem",
                path: w.to_string(),
            });
        }
        let (flags, data, read_only) = tmpfs_options(options);
        let mut e = Entry::new(below_root(root, Path::new(p)), Mode::Tmpfs, false);
        e.read_only = read_only;
        e.tmpfs = Some((flags, data));
        out.push(e);
    }
    if let Some(t) = private_tmp {
        for (dst, src) in [("/tmp", &t.tmp), ("/var/tmp", &t.var_tmp)] {
            let mut e = Entry::new(below_root(root, Path::new(dst)), Mode::PrivateTmp, false);
            e.source = Some(src.clone());
            out.push(e);
        }
    }
    if on(unit, section, "PrivateDevices") {
        out.push(Entry::new(
            below_root(root, Path::new("/dev")),
            Mode::PrivateDev,
            false,
        ));
    }
    let table = |list: &[(&str, Mode, bool)], out: &mut Vec<Entry>| {
        for (p, mode, ignore) in list {
            out.push(Entry::new(below_root(root, Path::new(p)), *mode, *ignore));
        }
    };
    use Mode::{Inaccessible as I, ReadOnly as RO, ReadWriteImplicit as RWI};
    match protect_system(unit, section) {
        "yes" => table(
            &[("/usr", RO, false), ("/boot", RO, true), ("/efi", RO, true)],
            &mut out,
        ),
        "full" => table(
            &[
                ("/usr", RO, false),
                ("/boot", RO, true),
                ("/efi", RO, true),
                ("/etc", RO, false),
            ],
            &mut out,
        ),
        "strict" => table(
            &[
                ("/", RO, false),
                ("/proc", RWI, false),
                ("/sys", RWI, false),
                ("/dev", RWI, false),
                ("/home", RWI, true),
                ("/run/user", RWI, true),
                ("/root", RWI, true),
            ],
            &mut out,
        ),
        _ => {}
    }
    let home = ["/home", "/run/user", "/root"];
    match protect_home(unit, section) {
        "yes" => {
            for p in home {
                table(&[(p, I, true)], &mut out);
            }
        }
        "read-only" => {
            for p in home {
                table(&[(p, RO, true)], &mut out);
            }
        }
        "tmpfs" => {
            for p in home {
                let mut e = Entry::new(below_root(root, Path::new(p)), Mode::Tmpfs, true);
                e.read_only = true;
                let options = if p == "/root" {
                    "mode=0700"
                } else {
                    "mode=0755"
                };
                e.tmpfs = Some((libc::MS_NODEV | libc::MS_STRICTATIME, options.to_string()));
                out.push(e);
            }
        }
        _ => {}
    }
    let api = mount_api_vfs(unit, section);
    let proc = proc_options(unit, section);
    if api || proc.is_some() {
        let mut e = Entry::new(below_root(root, Path::new("/proc")), Mode::Procfs, false);
        e.tmpfs = Some((
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            proc.unwrap_or_default(),
        ));
        out.push(e);
    }
    if api {
        // systemd's API file systems: the host's /dev (unless
        // PrivateDevices= makes one) and /sys, and a /run of its own where
        // the root has none mounted.
        let mut binds = vec!["/sys"];
        if !on(unit, section, "PrivateDevices") {
            binds.push("/dev");
        }
        for p in binds {
            let mut e = Entry::new(below_root(root, Path::new(p)), Mode::BindRecursive, false);
            e.source = Some(PathBuf::from(p));
            out.push(e);
        }
        if let Some(r) = root {
            let run = below_root(Some(r), Path::new("/run"));
            let real = std::fs::canonicalize(&run).unwrap_or_else(|_| run.clone());
            if !mount_table().iter().any(|m| m.path == real) {
                let mut e = Entry::new(run, Mode::Tmpfs, false);
                e.tmpfs = Some((
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_STRICTATIME,
                    "mode=0755".to_string(),
                ));
                out.push(e);
            }
        }
    }
    if on(unit, section, "ProtectKernelTunables") {
        table(
            &[
                ("/proc/acpi", RO, true),
                ("/proc/apm", RO, true),
                ("/proc/asound", RO, true),
                ("/proc/bus", RO, true),
                ("/proc/fs", RO, true),
                ("/proc/irq", RO, true),
                ("/proc/kallsyms", I, true),
                ("/proc/kcore", I, true),
                ("/proc/latency_stats", RO, true),
                ("/proc/mtrr", RO, true),
                ("/proc/scsi", RO, true),
                ("/proc/sys", RO, true),
                ("/proc/sysrq-trigger", RO, true),
                ("/proc/timer_stats", RO, true),
                ("/sys", RO, false),
                ("/sys/fs/bpf", RO, true),
                ("/sys/fs/cgroup", RWI, false),
                ("/sys/fs/selinux", RWI, true),
                ("/sys/kernel/debug", RO, true),
                ("/sys/kernel/tracing", RO, true),
            ],
            &mut out,
        );
    }
    if on(unit, section, "ProtectKernelModules") {
        table(&[("/usr/lib/modules", I, true)], &mut out);
        // Split /usr: /lib/modules is a directory of its own.
        if std::fs::symlink_metadata("/lib").is_ok_and(|m| m.is_dir()) {
            table(&[("/lib/modules", I, true)], &mut out);
        }
    }
    if on(unit, section, "ProtectKernelLogs") {
        table(&[("/proc/kmsg", I, true), ("/dev/kmsg", I, true)], &mut out);
    }
    if on(unit, section, "ProtectControlGroups") {
        table(&[("/sys/fs/cgroup", RO, false)], &mut out);
    }
    Ok(out)
}

/// `MountAPIVFS=`, or implied by `RootDirectory=` (systemd's
/// `exec_context_get_effective_mount_apivfs()`): `/proc`, `/sys`, `/dev`
/// and `/run` in the service's file system.
fn mount_api_vfs(unit: &Unit, section: &str) -> bool {
    unit.get_bool(section, "MountAPIVFS")
        .unwrap_or_else(|| unit.get(section, "RootDirectory").is_some())
}

/// `ProtectProc=` and `ProcSubset=` as procfs options (`hidepid=`,
/// `subset=pid`), or `None` when both are at their defaults (systemd then
/// leaves the host's `/proc`).
fn proc_options(unit: &Unit, section: &str) -> Option<String> {
    let mut opts = Vec::new();
    if let Some(v @ ("noaccess" | "invisible" | "ptraceable")) =
        unit.get_str(section, "ProtectProc")
    {
        opts.push(format!("hidepid={v}"));
    }
    if unit.get_str(section, "ProcSubset") == Some("pid") {
        opts.push("subset=pid".to_string());
    }
    (!opts.is_empty()).then(|| opts.join(","))
}

/// Whether `p` is still there in a procfs on `proc` mounted with
/// `subset=pid`: `proc` itself, the process directories, `self` and
/// `thread-self`.
fn in_pid_subset(proc: &Path, p: &Path) -> bool {
    let Ok(rest) = p.strip_prefix(proc) else {
        return true;
    };
    match rest.components().next() {
        None => true,
        Some(c) => {
            let c = c.as_os_str().to_string_lossy();
            c == "self" || c == "thread-self" || c.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// `TemporaryFileSystem=`'s `OPTIONS`: mount flags (after systemd's
/// `nodev,strictatime`), the tmpfs options (after its `mode=0755`), and
/// whether it is read-only (systemd's `mount_option_mangle()`).
fn tmpfs_options(options: &str) -> (libc::c_ulong, String, bool) {
    let mut flags = libc::MS_NODEV | libc::MS_STRICTATIME;
    let mut data = String::from("mode=0755");
    let mut read_only = false;
    for o in options.split(',').filter(|o| !o.is_empty()) {
        let (set, clear): (libc::c_ulong, libc::c_ulong) = match o {
            "ro" => {
                read_only = true;
                continue;
            }
            "rw" => {
                read_only = false;
                continue;
            }
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "noatime" => (libc::MS_NOATIME, 0),
            "atime" => (0, libc::MS_NOATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "lazytime" => (libc::MS_LAZYTIME, 0),
            "nolazytime" => (0, libc::MS_LAZYTIME),
            "silent" => (libc::MS_SILENT, 0),
            "loud" => (0, libc::MS_SILENT),
            other => {
                data.push(',');
                data.push_str(other);
                continue;
            }
        };
        flags = (flags | set) & !clear;
    }
    (flags, data, read_only)
}

/// A mount in the namespace: its path and its `MS_*` flags (for a remount
/// where the kernel lacks `mount_setattr()`).
#[derive(Debug, Clone)]
struct Mounted {
    path: PathBuf,
    flags: libc::c_ulong,
}

/// A mount on `path`: what was mounted below it is hidden (the entry for
/// `path` itself stays, as the mount below the new one).
fn cover(mounts: &mut Vec<Mounted>, path: &Path, flags: libc::c_ulong) {
    mounts.retain(|m| !m.path.starts_with(path) || m.path == path);
    mounts.push(Mounted {
        path: path.to_path_buf(),
        flags,
    });
}

/// The mount points of flint's mount namespace, in mount order.
/// The mounts that path lookups reach. mountinfo also lists mounts that a
/// later one covers (a sysfs mounted again over /sys hides the cgroup
/// mounts of the old one, whose mount points are then plain directories of
/// the new): only entries whose mount point resolves to the entry's own
/// mount are kept (`STATX_MNT_ID`; a kernel without it, before 5.8, keeps
/// them all).
fn mount_table() -> Vec<Mounted> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let entries = parse_mountinfo_ids(&text);
    // Only an entry that a later one could cover (mounted at its mount
    // point or above it) is looked at: most are not, and a mount point on
    // a dead network file system is best not touched at all. Walked from
    // the last entry, with the mount points seen so far.
    let mut later: std::collections::HashSet<&Path> = std::collections::HashSet::new();
    let mut kept: Vec<Mounted> = Vec::with_capacity(entries.len());
    for (id, m) in entries.iter().rev() {
        let coverable = m.path.ancestors().any(|a| later.contains(a));
        if !coverable || reached_mount(&m.path).is_none_or(|reached| reached == *id) {
            kept.push(m.clone());
        }
        later.insert(&m.path);
    }
    kept.reverse();
    kept
}

/// The id of the mount that `path` lies on (`None` where the kernel cannot
/// tell), or `Some(0)` where it cannot be reached at all.
fn reached_mount(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statx is plain data; all-zero is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx with a NUL-terminated path and a buffer of its type,
    // which lives for the call.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT | libc::AT_STATX_DONT_SYNC,
            libc::STATX_MNT_ID,
            &raw mut st,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error().raw_os_error();
        return matches!(e, Some(libc::ENOENT | libc::ENOTDIR)).then_some(0);
    }
    (st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
}

#[cfg(test)]
fn parse_mountinfo(text: &str) -> Vec<Mounted> {
    parse_mountinfo_ids(text)
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

/// mountinfo's entries with their mount ids.
fn parse_mountinfo_ids(text: &str) -> Vec<(u64, Mounted)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.parse().ok()?;
            let point = f.nth(3)?;
            let options = f.next()?;
            let mut flags = 0;
            for o in options.split(',') {
                flags |= match o {
                    "ro" => libc::MS_RDONLY,
                    "nosuid" => libc::MS_NOSUID,
                    "nodev" => libc::MS_NODEV,
                    "noexec" => libc::MS_NOEXEC,
                    "noatime" => libc::MS_NOATIME,
                    "nodiratime" => libc::MS_NODIRATIME,
                    "relatime" => libc::MS_RELATIME,
                    _ => 0,
                };
            }
            Some((
                id,
                Mounted {
                    path: PathBuf::from(
                        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(
                            unescape_octal(point),
                        ),
                    ),
                    flags,
                },
            ))
        })
        .collect()
}

/// mountinfo's `\040`-style escapes.
fn unescape_octal(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn cstr(p: &Path) -> Result<CString, SandboxError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| SandboxError::Nul)
}

/// Whether `p` is `base` or below it.
fn at_or_below(p: &Path, base: &Path) -> bool {
    p.starts_with(base)
}

/// The inaccessible node for a path of this kind, created on first use.
fn inaccessible_node(dir: bool) -> Result<PathBuf, SandboxError> {
    let base = Path::new(INACCESSIBLE_DIR);
    let node = base.join(if dir { "dir" } else { "reg" });
    if std::fs::symlink_metadata(&node).is_ok() {
        return Ok(node);
    }
    let io = |path: &Path, source| SandboxError::Io {
        what: "creating the inaccessible node",
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(base).map_err(|e| io(base, e))?;
    let made = if dir {
        std::fs::create_dir(&node)
    } else {
        std::fs::File::create(&node).map(drop)
    };
    match made {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(&node, e)),
    }
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o000))
        .map_err(|e| io(&node, e))?;
    Ok(node)
}

/// The namespaces of one command, or `None` when it needs none.
/// `writable` are the unit's `*Directory=` directories; `root` is
/// `RootDirectory=`.
pub fn plan(
    unit: &Unit,
    section: &str,
    root: Option<&Path>,
    private_tmp: Option<&PrivateTmp>,
    writable: &[PathBuf],
    private_dirs: &[(PathBuf, PathBuf)],
) -> Result<Option<NamespacePlan>, SandboxError> {
    let mut plan = NamespacePlan {
        network: on(unit, section, "PrivateNetwork"),
        ipc: on(unit, section, "PrivateIPC"),
        uts: on(unit, section, "ProtectHostname"),
        optional: true,
        ..NamespacePlan::default()
    };
    let mut list = entries(unit, section, root, private_tmp, writable)?;
    // A dynamic user's own directories below the host's 0700 `private/`:
    // in its namespace `private/` is an empty tmpfs that holds only them,
    // bound from the host (systemd's `compile_bind_mounts()`).
    for (private_root, dir) in private_dirs {
        if !list
            .iter()
            .any(|e| e.path == *private_root && e.mode == Mode::Tmpfs)
        {
            let (flags, data, _) = tmpfs_options("");
            let mut e = Entry::new(private_root.clone(), Mode::Tmpfs, false);
            e.tmpfs = Some((flags, data));
            list.push(e);
        }
        let mut e = Entry::new(dir.clone(), Mode::BindRecursive, false);
        e.source = Some(dir.clone());
        list.push(e);
    }
    plan.mount = on(unit, section, "PrivateMounts");
    if !list.is_empty() {
        plan.mount = true;
        // Without its namespace a service runs unprotected only when it
        // asked for nothing that it could not do without: binds, a tmpfs,
        // a dynamic user's read-only system, a root directory (systemd's
        // `insist_on_sandboxing()`).
        plan.optional = root.is_none()
            && !dynamic_user(unit, section)
            && !list.iter().any(|e| {
                matches!(e.mode, Mode::Bind | Mode::BindRecursive)
                    || (e.mode == Mode::Tmpfs && !e.ignore)
            });
        plan.mounts = mount_ops(list, &mount_table())?;
    }
    Ok((!plan.is_empty()).then_some(plan))
}

/// The flags of the mount `p` is on.
fn flags_at(mounts: &[Mounted], p: &Path) -> libc::c_ulong {
    mounts
        .iter()
        .rev()
        .filter(|m| p.starts_with(&m.path))
        .max_by_key(|m| m.path.components().count())
        .map_or(0, |m| m.flags)
}

/// The slots of detached mounts: the private /dev's below this, bind
/// mounts from it.
const BIND_SLOTS_FROM: usize = 16;

/// The device nodes a private /dev keeps of the host's (systemd's
/// `mount_private_dev()`); `/dev/ptmx` too where it is a node.
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// `PrivateDevices=`: a tmpfs on `dev` holding copies of the host's
/// `/dev/pts`, `/dev/shm`, `/dev/mqueue` and `/dev/hugepages` mounts, bind
/// mounts of the pseudo devices (no disks, no `/dev/kmsg`), `/dev/log`, and
/// the `/dev/fd` and `/dev/std*` links. What the host's `/dev` gives is
/// taken (`open_tree()`) before the tmpfs covers it. Returns the steps and
/// the mounts that make up the new /dev.
fn private_dev(
    dev: &Path,
    mounts: &[Mounted],
) -> Result<(Vec<MountOp>, Vec<Mounted>), SandboxError> {
    let host = Path::new("/dev");
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut made = vec![Mounted {
        path: dev.to_path_buf(),
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
    }];
    let mut slot = 0;
    let mut keep = |src: PathBuf,
                    dst: PathBuf,
                    dir: bool,
                    after: &mut Vec<MountOp>|
     -> Result<(), SandboxError> {
        before.push(MountOp::Detach {
            src: cstr(&src)?,
            slot,
            optional: true,
            recursive: false,
        });
        if let Some(parent) = dst.parent().filter(|p| *p != dev) {
            after.push(MountOp::Create {
                path: cstr(parent)?,
                file: false,
            });
        }
        after.push(MountOp::Create {
            path: cstr(&dst)?,
            file: !dir,
        });
        after.push(MountOp::Attach {
            slot,
            dst: cstr(&dst)?,
            optional: false,
        });
        made.push(Mounted {
            flags: flags_at(mounts, &src),
            path: dst,
        });
        slot += 1;
        Ok(())
    };
    for sub in ["pts", "shm", "mqueue", "hugepages"] {
        let src = host.join(sub);
        if std::fs::metadata(&src).is_ok_and(|m| m.is_dir()) {
            keep(src, dev.join(sub), true, &mut after)?;
        }
    }
    // Each kept node's `/dev/char/MAJ:MIN` (or `block`) link, as
    // systemd's `clone_device_node()` makes them (`1:9` → `../urandom`).
    let mut numbered: Vec<(&str, String, String)> = Vec::new();
    let mut number = |src: &Path, name: &str| {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        if let Ok(m) = std::fs::metadata(src) {
            let kind = if m.file_type().is_char_device() {
                "char"
            } else if m.file_type().is_block_device() {
                "block"
            } else {
                return;
            };
            let (major, minor) = (libc::major(m.rdev()), libc::minor(m.rdev()));
            numbered.push((kind, format!("{major}:{minor}"), name.to_string()));
        }
    };
    for node in DEV_NODES {
        let src = host.join(node);
        if std::fs::symlink_metadata(&src).is_ok() {
            number(&src, node);
            keep(src, dev.join(node), false, &mut after)?;
        }
    }
    // /dev/log: the host's logging socket, or where journald would have it.
    let log = host.join("log");
    match std::fs::symlink_metadata(&log) {
        Ok(m) if m.file_type().is_symlink() => {
            let target = std::fs::read_link(&log).map_err(|source| SandboxError::Io {
                what: "reading",
                path: log.clone(),
                source,
            })?;
            after.push(MountOp::Symlink {
                target: cstr(&target)?,
                path: cstr(&dev.join("log"))?,
            });
        }
        Ok(_) => keep(log, dev.join("log"), false, &mut after)?,
        Err(_) => after.push(MountOp::Symlink {
            target: CString::from(c"/run/systemd/journal/dev-log"),
            path: cstr(&dev.join("log"))?,
        }),
    }
    // After the last keep(), whose slots this one follows.
    match std::fs::symlink_metadata(host.join("ptmx")) {
        Ok(m) if m.file_type().is_symlink() => after.push(MountOp::Symlink {
            target: CString::from(c"pts/ptmx"),
            path: cstr(&dev.join("ptmx"))?,
        }),
        Ok(m) => {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            if m.file_type().is_char_device() {
                number(&host.join("ptmx"), "ptmx");
                before.push(MountOp::Detach {
                    src: cstr(&host.join("ptmx"))?,
                    slot,
                    optional: true,
                    recursive: false,
                });
                after.push(MountOp::Mknod {
                    path: cstr(&dev.join("ptmx"))?,
                    mode: libc::S_IFCHR | 0o666,
                    dev: m.rdev(),
                    fallback: slot,
                });
                slot += 1;
            }
        }
        Err(_) => {}
    }
    for kind in ["char", "block"] {
        let mut made_dir = false;
        for (_, number, name) in numbered.iter().filter(|(k, _, _)| *k == kind) {
            if !std::mem::replace(&mut made_dir, true) {
                after.push(MountOp::Create {
                    path: cstr(&dev.join(kind))?,
                    file: false,
                });
            }
            after.push(MountOp::Symlink {
                target: CString::new(format!("../{name}")).map_err(|_| SandboxError::Nul)?,
                path: cstr(&dev.join(kind).join(number))?,
            });
        }
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        after.push(MountOp::Symlink {
            target: CString::new(target).map_err(|_| SandboxError::Nul)?,
            path: cstr(&dev.join(name))?,
        });
    }
    if slot > BIND_SLOTS_FROM {
        return Err(SandboxError::Io {
            what: "keeping",
            path: host.to_path_buf(),
            source: io::Error::from(io::ErrorKind::OutOfMemory),
        });
    }
    before.push(MountOp::Tmpfs {
        dst: cstr(dev)?,
        flags: libc::MS_NOSUID | libc::MS_STRICTATIME | libc::MS_NOEXEC,
        data: CString::from(c"mode=0755,size=4m,nr_inodes=64k"),
    });
    before.extend(after);
    Ok((before, made))
}

/// Sorts, merges and resolves the entries, then lists the mount steps.
fn mount_ops(mut list: Vec<Entry>, table: &[Mounted]) -> Result<Vec<MountOp>, SandboxError> {
    // Symbolic links are followed, as systemd chases each path; a missing
    // path drops an entry with `-` (and for a table entry that may be
    // missing), else the mount fails in the child (226/NAMESPACE).
    list.retain_mut(|e| {
        if let Ok(real) = std::fs::canonicalize(&e.path) {
            e.path = real;
        } else if e.ignore {
            return false;
        }
        if let Some(src) = &e.source {
            match std::fs::canonicalize(src) {
                Ok(real) => e.source = Some(real),
                Err(_) if e.ignore => return false,
                Err(_) => {}
            }
        }
        true
    });
    // Below a procfs with `subset=pid`, the kernel's files are gone: the
    // entries that may be missing (ProtectKernelTunables='s) are skipped
    // in the child if they are. Where flint may not mount procfs (`EPERM`)
    // the host's stays, files and all, and they apply to it, as systemd
    // skips its `ignore` entries only once it finds them missing.
    if let Some(proc) = list
        .iter()
        .find(|e| {
            e.mode == Mode::Procfs
                && e.tmpfs
                    .as_ref()
                    .is_some_and(|(_, o)| o.contains("subset=pid"))
        })
        .map(|e| e.path.clone())
    {
        for e in &mut list {
            e.missing_ok = e.ignore && !in_pid_subset(&proc, &e.path);
        }
    }
    list.sort_by(|a, b| a.path.cmp(&b.path).then(a.mode.cmp(&b.mode)));
    let mut merged: Vec<Entry> = Vec::with_capacity(list.len());
    for e in list {
        if let Some(prev) = merged.last_mut()
            && prev.path == e.path
        {
            prev.read_only |= e.read_only;
            prev.missing_ok &= e.missing_ok;
            // systemd's drop_duplicates(): noexec wins over exec.
            prev.exec = match (prev.exec, e.exec) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (a, b) => a.or(b),
            };
            continue;
        }
        // Nothing below an inaccessible path can be reached; below a
        // private /dev, what may be missing is (`/dev/kmsg` of
        // `ProtectKernelLogs=`).
        if merged.iter().any(|m| {
            e.path.starts_with(&m.path)
                && (m.mode == Mode::Inaccessible || (m.mode == Mode::PrivateDev && e.ignore))
        }) {
            continue;
        }
        merged.push(e);
    }

    let mut mounts: Vec<Mounted> = table.to_vec();
    let is_mount_point = |mounts: &[Mounted], p: &Path| mounts.iter().any(|m| m.path == p);
    let mut ops = Vec::new();
    // What bind mounts mount, taken (`open_tree()`) before any step, so
    // that a tmpfs of the plan cannot hide it (systemd builds the
    // namespace under a separate root for the same reason).
    let mut taken = Vec::new();
    // Tmpfs mounts made so far: what is below them starts empty.
    let mut fresh: Vec<&Path> = Vec::new();
    for e in &merged {
        let dst = cstr(&e.path)?;
        // A bind mount's or a tmpfs' missing mount point is made, with its
        // missing parents (systemd's `apply_one()`); below a tmpfs of the
        // plan, everything is missing.
        let exists = |p: &Path| {
            !fresh.iter().any(|f| p != *f && p.starts_with(f))
                && std::fs::symlink_metadata(p).is_ok()
        };
        if matches!(
            e.mode,
            Mode::Bind
                | Mode::BindRecursive
                | Mode::PrivateTmp
                | Mode::Tmpfs
                | Mode::Procfs
                | Mode::PrivateDev
        ) && !exists(&e.path)
        {
            let file = e
                .source
                .as_ref()
                .and_then(|s| std::fs::metadata(s).ok())
                .is_some_and(|m| !m.is_dir());
            let mut missing: Vec<&Path> = e
                .path
                .ancestors()
                .skip(1)
                .take_while(|a| !exists(a))
                .collect();
            missing.reverse();
            for dir in missing {
                ops.push(MountOp::Create {
                    path: cstr(dir)?,
                    file: false,
                });
            }
            ops.push(MountOp::Create {
                path: dst.clone(),
                file,
            });
        }
        if e.mode == Mode::Tmpfs {
            fresh.push(&e.path);
        }
        match e.mode {
            Mode::Inaccessible => {
                let dir = std::fs::metadata(&e.path).map_or(true, |m| m.is_dir());
                bind(
                    &mut taken,
                    &mut ops,
                    cstr(&inaccessible_node(dir)?)?,
                    dst,
                    false,
                    e.missing_ok,
                )?;
                cover(&mut mounts, &e.path, 0);
            }
            Mode::Tmpfs | Mode::Procfs => {
                let (flags, data) = e.tmpfs.clone().unwrap_or_default();
                let data = CString::new(data).map_err(|_| SandboxError::Nul)?;
                ops.push(if e.mode == Mode::Tmpfs {
                    MountOp::Tmpfs { dst, flags, data }
                } else {
                    MountOp::Proc { dst, flags, data }
                });
                cover(&mut mounts, &e.path, flags);
            }
            Mode::Bind | Mode::BindRecursive | Mode::PrivateTmp => {
                let src = e.source.clone().unwrap_or_default();
                let recursive = e.mode != Mode::Bind;
                bind(&mut taken, &mut ops, cstr(&src)?, dst, recursive, false)?;
                let carried: Vec<Mounted> = if recursive {
                    mounts
                        .iter()
                        .filter(|m| m.path != src && m.path.starts_with(&src))
                        .filter_map(|m| {
                            Some(Mounted {
                                path: e.path.join(m.path.strip_prefix(&src).ok()?),
                                flags: m.flags,
                            })
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let flags = flags_at(&mounts, &src);
                cover(&mut mounts, &e.path, flags);
                mounts.extend(carried);
            }
            Mode::PrivateDev => {
                let (dev_ops, dev_mounts) = private_dev(&e.path, &mounts)?;
                ops.extend(dev_ops);
                mounts.retain(|m| !m.path.starts_with(&e.path));
                mounts.extend(dev_mounts);
            }
            Mode::ReadOnly
            | Mode::ReadWrite
            | Mode::ReadWriteImplicit
            | Mode::NoExec
            | Mode::Exec => {
                if !is_mount_point(&mounts, &e.path) {
                    ops.push(MountOp::Bind {
                        src: dst.clone(),
                        dst,
                        recursive: true,
                        optional: e.missing_ok,
                    });
                    let flags = flags_at(&mounts, &e.path);
                    mounts.push(Mounted {
                        path: e.path.clone(),
                        flags,
                    });
                }
            }
        }
    }

    // Each mount takes the flags of the deepest entry at or above it.
    let mut seen: Vec<&Path> = Vec::new();
    for m in mounts.iter().rev() {
        if seen.contains(&m.path.as_path()) {
            continue;
        }
        seen.push(&m.path);
        // Read-only from the deepest entry that says anything of it,
        // exec from the deepest that says anything of that.
        let deepest = |says: &dyn Fn(&Entry) -> bool| {
            merged
                .iter()
                .filter(|e| says(e) && at_or_below(&m.path, &e.path))
                .max_by_key(|e| e.path.components().count())
        };
        let ro = deepest(&|e: &Entry| !matches!(e.mode, Mode::NoExec | Mode::Exec));
        let exec = deepest(&|e: &Entry| e.exec.is_some());
        let (mut attr, mut clear) = (0, 0);
        if ro.is_some_and(|e| e.read_only) {
            attr |= ATTR_RDONLY;
        }
        match exec.and_then(|e| e.exec) {
            Some(false) => attr |= ATTR_NOEXEC,
            Some(true) => clear |= ATTR_NOEXEC,
            None => {}
        }
        let own = |e: Option<&Entry>| e.is_some_and(|e| e.path == m.path);
        let optional = merged.iter().any(|e| e.path == m.path && e.missing_ok);
        if own(ro) && ro.is_some_and(|e| e.mode == Mode::Inaccessible) {
            attr |= ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC;
        }
        let already = |a: u64, f: libc::c_ulong| attr & a == 0 || m.flags & f != 0;
        if clear == 0
            && already(ATTR_RDONLY, libc::MS_RDONLY)
            && already(ATTR_NOEXEC, libc::MS_NOEXEC)
            && already(ATTR_NOSUID | ATTR_NODEV, libc::MS_NOSUID)
        {
            continue;
        }
        ops.push(MountOp::SetAttr {
            path: cstr(&m.path)?,
            attr,
            clear,
            below: !(own(ro) || own(exec)) || optional,
            fallback: m.flags,
        });
    }
    taken.extend(ops);
    Ok(taken)
}

/// A bind mount of `src` on `dst`: `src` taken into a slot among the first
/// steps (`taken`), then attached where it goes.
fn bind(
    taken: &mut Vec<MountOp>,
    ops: &mut Vec<MountOp>,
    src: CString,
    dst: CString,
    recursive: bool,
    optional: bool,
) -> Result<(), SandboxError> {
    let slot = BIND_SLOTS_FROM
        + taken
            .iter()
            .filter(|o| matches!(o, MountOp::Detach { .. }))
            .count();
    if slot >= crate::spawn::NAMESPACE_SLOTS {
        return Err(SandboxError::Io {
            what: "too many bind mounts for",
            path: PathBuf::from(src.to_string_lossy().into_owned()),
            source: io::Error::from(io::ErrorKind::OutOfMemory),
        });
    }
    taken.push(MountOp::Detach {
        src,
        slot,
        optional: false,
        recursive,
    });
    ops.push(MountOp::Attach {
        slot,
        dst,
        optional,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ro(path: &str) -> Entry {
        Entry::new(path, Mode::ReadOnly, false)
    }

    fn rw(path: &str) -> Entry {
        Entry::new(path, Mode::ReadWrite, false)
    }

    fn table(paths: &[(&str, libc::c_ulong)]) -> Vec<Mounted> {
        paths
            .iter()
            .map(|(p, f)| Mounted {
                path: PathBuf::from(p),
                flags: *f,
            })
            .collect()
    }

    fn describe(ops: &[MountOp]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                MountOp::Bind {
                    src,
                    dst,
                    recursive,
                    optional,
                } => format!(
                    "bind{}{} {} {}",
                    if *recursive { "-r" } else { "" },
                    if *optional { "?" } else { "" },
                    src.to_string_lossy(),
                    dst.to_string_lossy()
                ),
                MountOp::Tmpfs { dst, .. } => format!("tmpfs {}", dst.to_string_lossy()),
                MountOp::Proc { dst, .. } => format!("proc {}", dst.to_string_lossy()),
                MountOp::Create { path, file } => {
                    format!(
                        "create{} {}",
                        if *file { "-file" } else { "" },
                        path.to_string_lossy()
                    )
                }
                MountOp::Detach { src, slot, .. } => {
                    format!("detach {} {slot}", src.to_string_lossy())
                }
                MountOp::Attach {
                    slot,
                    dst,
                    optional,
                } => format!(
                    "attach{} {slot} {}",
                    if *optional { "?" } else { "" },
                    dst.to_string_lossy()
                ),
                MountOp::Mknod { path, .. } => format!("mknod {}", path.to_string_lossy()),
                MountOp::Symlink { target, path } => format!(
                    "symlink {} {}",
                    target.to_string_lossy(),
                    path.to_string_lossy()
                ),
                MountOp::SetAttr {
                    path, attr, below, ..
                } => format!(
                    "attr{} {} {attr:#x}",
                    if *below { "-below" } else { "" },
                    path.to_string_lossy()
                ),
            })
            .collect()
    }

    #[test]
    fn strict_makes_every_mount_read_only_except_writable_entries_and_what_is_below_them() {
        // "/" read-only, /proc and /sys left alone, a writable directory
        // that is not a mount point becomes one before its parent turns
        // read-only, and a host mount below it keeps its own flags.
        let t = table(&[
            ("/", 0),
            ("/proc", 0),
            ("/sys", 0),
            ("/run", libc::MS_NOSUID),
            ("/var/lib/x/sub", 0),
            ("/boot", libc::MS_RDONLY),
        ]);
        let list = vec![
            ro("/"),
            Entry::new("/proc", Mode::ReadWriteImplicit, false),
            Entry::new("/sys", Mode::ReadWriteImplicit, false),
            rw("/var/lib/x"),
        ];
        let ops = describe(&mount_ops(list, &t).unwrap());
        assert_eq!(
            ops,
            [
                "bind-r /var/lib/x /var/lib/x",
                "attr-below /run 0x1",
                "attr / 0x1",
            ],
            "{ops:#?}"
        );
    }

    #[test]
    fn one_path_keeps_the_stronger_mode_and_any_read_only_flag() {
        // ReadOnlyPaths= and ReadWritePaths= of one path: read-only wins;
        // anything below an inaccessible path is dropped.
        let t = table(&[("/", 0)]);
        let mut list = vec![rw("/"), ro("/")];
        list.push(Entry::new("/", Mode::ReadWriteImplicit, false));
        let ops = describe(&mount_ops(list, &t).unwrap());
        assert_eq!(ops, ["attr / 0x1"]);
    }

    #[test]
    fn a_private_dev_takes_what_it_keeps_before_covering_dev() {
        let t = table(&[("/", 0), ("/dev", libc::MS_NOSUID), ("/dev/pts", 0)]);
        let mut dev = Entry::new("/dev", Mode::PrivateDev, false);
        dev.read_only = false;
        let kmsg = Entry::new("/dev/kmsg", Mode::Inaccessible, true);
        let ops = describe(&mount_ops(vec![dev, kmsg], &t).unwrap());
        let tmpfs = ops.iter().position(|o| o == "tmpfs /dev").unwrap();
        assert!(
            ops[..tmpfs].iter().all(|o| o.starts_with("detach ")),
            "{ops:#?}"
        );
        assert!(ops.contains(&"attach 0 /dev/pts".to_string()), "{ops:#?}");
        assert!(
            ops.contains(&"symlink /proc/self/fd /dev/fd".to_string()),
            "{ops:#?}"
        );
        // ProtectKernelLogs='s /dev/kmsg is not in the private /dev.
        assert!(!ops.iter().any(|o| o.contains("kmsg")), "{ops:#?}");
    }

    #[test]
    fn kernel_files_below_a_pid_subset_procfs_are_skipped_only_if_missing() {
        // ProtectKernelTunables= ('-' entries) with ProcSubset=pid: the
        // fresh procfs has no /proc/sys, but the host's /proc stays where
        // procfs may not be mounted, so the entry is kept and may be
        // missing. A path the unit names without '-' must be there.
        let t = table(&[("/", 0), ("/proc", libc::MS_NOSUID)]);
        let mut proc = Entry::new("/proc", Mode::Procfs, false);
        proc.tmpfs = Some((libc::MS_NOSUID, "subset=pid".to_string()));
        let tunables = Entry::new("/proc/sys", Mode::ReadOnly, true);
        let ops = describe(&mount_ops(vec![proc, tunables, ro("/proc/irq")], &t).unwrap());
        assert_eq!(
            ops,
            [
                "proc /proc",
                "bind-r /proc/irq /proc/irq",
                "bind-r? /proc/sys /proc/sys",
                "attr-below /proc/sys 0x1",
                "attr /proc/irq 0x1",
            ],
        );
    }

    #[test]
    fn for_one_path_no_exec_paths_wins_over_a_tmpfs_as_in_systemd() {
        // systemd's MountMode order puts NOEXEC and EXEC above TMPFS: the
        // tmpfs entry of the same path is dropped, its flags kept.
        let t = table(&[("/", 0), ("/srv", 0)]);
        let mut tmpfs = Entry::new("/srv", Mode::Tmpfs, false);
        tmpfs.tmpfs = Some((libc::MS_NODEV, "mode=0755".to_string()));
        let ops =
            describe(&mount_ops(vec![tmpfs, Entry::new("/srv", Mode::NoExec, false)], &t).unwrap());
        assert_eq!(ops, ["attr /srv 0x8"]);
    }

    #[test]
    fn an_already_read_only_mount_is_left_as_it_is() {
        let t = table(&[("/", libc::MS_RDONLY)]);
        assert!(mount_ops(vec![ro("/")], &t).unwrap().is_empty());
    }

    #[test]
    fn mountinfo_paths_are_unescaped_and_flags_read() {
        let m = parse_mountinfo(
            "36 35 98:0 /mnt1 /mnt\\040with\\040space rw,nosuid,noatime master:1 - ext3 /dev/root rw\n\
             37 36 0:5 / /ro ro,nodev - tmpfs tmpfs ro\n",
        );
        assert_eq!(m[0].path, Path::new("/mnt with space"));
        assert_eq!(m[0].flags, libc::MS_NOSUID | libc::MS_NOATIME);
        assert_eq!(m[1].flags, libc::MS_RDONLY | libc::MS_NODEV);
    }

    #[test]
    fn prefixes_and_paths() {
        assert_eq!(prefixes("-+/x"), ("/x", true, true));
        assert_eq!(prefixes("/x"), ("/x", false, false));
        assert_eq!(simplify(Path::new("/a//b/./c/")), Path::new("/a/b/c"));
        assert_eq!(
            below_root(Some(Path::new("/srv/root")), Path::new("/etc")),
            Path::new("/srv/root/etc")
        );
    }
}
