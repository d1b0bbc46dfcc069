//! The namespaces of a service's sandbox, as the child sets them up between
//! its resource limits and its capabilities (systemd's `exec_invoke()`
//! order: the network namespace, the IPC namespace, the mount namespace,
//! then the UTS namespace).
//!
//! The parent works out every mount in advance ([`NamespacePlan`], built by
//! `service::sandbox`); the child only walks the list with raw `mount()`
//! and `mount_setattr()` calls, which allocate nothing.

use std::ffi::{CString, c_char, c_int, c_long, c_ulong};
use std::ptr;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `open_tree(2)`: a copy of the mount, not the mount itself.
const OPEN_TREE_CLONE: c_int = 1;
/// `open_tree(2)`: with the mounts below.
const AT_RECURSIVE: c_int = 0x8000;
/// `move_mount(2)`: the source is the fd itself.
const MOVE_MOUNT_F_EMPTY_PATH: c_ulong = 0x4;

/// `MOUNT_ATTR_*` bits of `mount_setattr(2)`.
pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;

/// Everything the child does to enter its namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespacePlan {
    /// `CLONE_NEWNET`: `PrivateNetwork=`, with the loopback brought up.
    pub network: bool,
    /// The run's network namespace, joined (`setns()`) instead of making
    /// one: every command of a run shares it, as under systemd. The fd
    /// stays open until the spawn returns (the caller keeps it).
    pub join_network: Option<std::os::fd::RawFd>,
    /// `CLONE_NEWIPC`: `PrivateIPC=`.
    pub ipc: bool,
    /// The run's IPC namespace, joined like `join_network`.
    pub join_ipc: Option<std::os::fd::RawFd>,
    /// `PrivateUsers=`: the run's user namespace, joined after the other
    /// namespaces and the group switch, before the capabilities and the
    /// user switch (systemd's order for a privileged manager). Kept open
    /// through the placing of fds (see `child::place_fds`).
    pub join_user: Option<std::os::fd::RawFd>,
    /// `CLONE_NEWUTS`: `ProtectHostname=`.
    pub uts: bool,
    /// `CLONE_NEWNS`: a mount namespace of its own (where nothing mounted
    /// inside reaches flint's), then `mounts` in order.
    pub mount: bool,
    pub mounts: Vec<MountOp>,
    /// Whether a namespace the kernel refuses for lack of privilege is
    /// skipped (systemd: "assuming containerized execution") rather than
    /// failing the start: true unless the plan mounts something of its own
    /// (`BindPaths=`, `TemporaryFileSystem=`), which would change what the
    /// service sees.
    pub optional: bool,
}

/// One step in the mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// Creates a missing mount point: a directory (mode 0755), or with
    /// `file` an empty file (mode 0644), whatever the umask; one that
    /// exists by now is fine.
    Create { path: CString, file: bool },
    /// `mount(src, dst, NULL, MS_BIND [| MS_REC])`. With `optional`, a
    /// missing `dst` skips the step (an entry below a procfs of the plan
    /// that may not have it).
    Bind {
        src: CString,
        dst: CString,
        recursive: bool,
        optional: bool,
    },
    /// `mount("tmpfs", dst, "tmpfs", flags, data)`.
    Tmpfs {
        dst: CString,
        flags: c_ulong,
        data: CString,
    },
    /// `mount("proc", dst, "proc", flags, data)`: a procfs of its own
    /// (`ProtectProc=`, `ProcSubset=`). A kernel without per-mount
    /// `hidepid=` (`EINVAL`) gets one without options; where flint may not
    /// mount procfs (`EPERM`), the host's stays, as under systemd.
    Proc {
        dst: CString,
        flags: c_ulong,
        data: CString,
    },
    /// `open_tree(src, OPEN_TREE_CLONE)`: a detached copy of what is
    /// mounted at `src` (a directory or a single node), held in `slot`
    /// until [`MountOp::Attach`]. With `optional`, a missing `src` leaves
    /// the slot empty. `PrivateDevices=` takes what it keeps of the host's
    /// `/dev` this way before covering it.
    Detach {
        src: CString,
        slot: usize,
        optional: bool,
        /// With what is mounted below `src` (`AT_RECURSIVE`).
        recursive: bool,
    },
    /// `move_mount()` of the copy in `slot` onto `dst`; an empty slot does
    /// nothing, and with `optional` neither does a missing `dst`.
    Attach {
        slot: usize,
        dst: CString,
        optional: bool,
    },
    /// `symlink(target, path)`.
    Symlink { target: CString, path: CString },
    /// `mknod(path, mode, dev)`, then `chmod(path, mode)` (past the
    /// umask): `/dev/ptmx`, which finds its `pts` beside the node it is
    /// opened through, so a bind mount of the host's node is only the
    /// fallback. Where flint may not make device nodes (`EPERM`: no
    /// `CAP_MKNOD`, or a user namespace), the node in `fallback` (an
    /// [`MountOp::Detach`] slot) is mounted on an empty file instead, as
    /// systemd's `clone_device_node()` does.
    Mknod {
        path: CString,
        mode: libc::mode_t,
        dev: libc::dev_t,
        fallback: usize,
    },
    /// Sets attributes on the mount at `path` (not those below it). With
    /// `below`, `path` is a mount found beneath an entry, which a later
    /// mount may have hidden: then a missing path or one that is no longer
    /// a mount is skipped. `fallback` holds the `MS_*` flags of the mount
    /// to keep when the kernel lacks `mount_setattr()` and a remount is used.
    SetAttr {
        path: CString,
        attr: u64,
        /// Attributes taken away (`noexec` for `ExecPaths=`).
        clear: u64,
        below: bool,
        fallback: c_ulong,
    },
}

impl NamespacePlan {
    /// Whether there is anything to do.
    pub fn is_empty(&self) -> bool {
        !self.network && !self.ipc && !self.uts && !self.mount && self.join_user.is_none()
    }
}

impl MountOp {
    /// The step in words, for the error that names it (parent side only).
    pub fn describe(&self) -> String {
        let p = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            MountOp::Create { path, file: true } => format!("creating the file {}", p(path)),
            MountOp::Create { path, file: false } => format!("creating the directory {}", p(path)),
            MountOp::Bind { src, dst, .. } => format!("bind mount of {} on {}", p(src), p(dst)),
            MountOp::Tmpfs { dst, .. } => format!("tmpfs on {}", p(dst)),
            MountOp::Proc { dst, .. } => format!("procfs on {}", p(dst)),
            MountOp::Detach { src, .. } => format!("taking a copy of {}", p(src)),
            MountOp::Attach { dst, .. } => format!("mounting on {}", p(dst)),
            MountOp::Symlink { target, path } => {
                format!("symbolic link {} -> {}", p(path), p(target))
            }
            MountOp::Mknod { path, .. } => format!("device node {}", p(path)),
            MountOp::SetAttr { path, .. } => format!("mount attributes of {}", p(path)),
        }
    }
}

/// How many detached copies one plan may hold at once.
pub const SLOTS: usize = 64;

/// What failed, for the exit status: the network namespace (225/NETWORK)
/// or another (226/NAMESPACE), with the errno and, for a mount step, its
/// index in [`NamespacePlan::mounts`] plus one (else 0).
pub(super) enum Failed {
    Network(c_int),
    Namespace(c_int, u32),
}

fn errno() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn is_privilege_error(e: c_int) -> bool {
    e == libc::EPERM || e == libc::EACCES
}

/// Enters the namespaces of `plan`.
///
/// # Safety
/// Child only (see `child.rs`): raw syscalls on the plan's C strings.
pub(super) unsafe fn enter(plan: &NamespacePlan) -> Result<(), Failed> {
    // SAFETY: (whole function) raw syscalls given NUL-terminated strings the
    // plan owns and structures on this stack.
    unsafe {
        if plan.network && plan.join_network.is_none() {
            if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWNET) < 0 {
                let e = errno();
                if !(plan.optional && is_privilege_error(e)) {
                    return Err(Failed::Network(e));
                }
            } else {
                loopback_up().map_err(Failed::Network)?;
            }
        }
        if plan.ipc
            && plan.join_ipc.is_none()
            && libc::syscall(libc::SYS_unshare, libc::CLONE_NEWIPC) < 0
            && !(plan.optional && is_privilege_error(errno()))
        {
            return Err(Failed::Namespace(errno(), 0));
        }
        if plan.mount {
            if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWNS) < 0 {
                let e = errno();
                if !(plan.optional && is_privilege_error(e)) {
                    return Err(Failed::Namespace(e, 0));
                }
            } else {
                mounts(&plan.mounts).map_err(|(step, e)| Failed::Namespace(e, step))?;
            }
        }
        if plan.uts
            && libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUTS) < 0
            && !(plan.optional && is_privilege_error(errno()))
        {
            return Err(Failed::Namespace(errno(), 0));
        }
    }
    Ok(())
}

/// Joins the run's network and IPC namespaces, if it has them. Called
/// before the child's fds are put in place (which may close or reuse the
/// fds named in the plan).
///
/// # Safety
/// Child only (see `child.rs`); the plan's fds are open in this process.
pub(super) unsafe fn join(plan: &NamespacePlan) -> Result<(), Failed> {
    // SAFETY: setns() on fds the caller keeps open.
    unsafe {
        if let Some(fd) = plan.join_network
            && libc::syscall(libc::SYS_setns, fd, libc::CLONE_NEWNET) < 0
        {
            return Err(Failed::Network(errno()));
        }
        if let Some(fd) = plan.join_ipc
            && libc::syscall(libc::SYS_setns, fd, libc::CLONE_NEWIPC) < 0
        {
            return Err(Failed::Namespace(errno(), 0));
        }
    }
    Ok(())
}

/// Makes the network and IPC namespaces a run's commands will share, on a
/// thread of its own (namespaces belong to a thread; the thread ends, the
/// namespaces live on in the returned fds), the network one with its
/// loopback up.
pub fn make_run_namespaces(
    network: bool,
    ipc: bool,
) -> std::io::Result<(Option<std::os::fd::OwnedFd>, Option<std::os::fd::OwnedFd>)> {
    use std::os::fd::OwnedFd;
    let make = move || -> std::io::Result<(Option<OwnedFd>, Option<OwnedFd>)> {
        let mut out = (None, None);
        if network {
            // SAFETY: unshare() changes only this thread's namespaces.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: a socket and two ioctls on a zeroed ifreq.
            unsafe { loopback_up() }.map_err(std::io::Error::from_raw_os_error)?;
            out.0 = Some(std::fs::File::open("/proc/thread-self/ns/net")?.into());
        }
        if ipc {
            // SAFETY: as above.
            if unsafe { libc::unshare(libc::CLONE_NEWIPC) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            out.1 = Some(std::fs::File::open("/proc/thread-self/ns/ipc")?.into());
        }
        Ok(out)
    };
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("flint-netns".into())
            .spawn_scoped(s, make)?
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")))
    })
}

/// Makes the user namespace of a run (`PrivateUsers=`), as systemd's
/// `setup_private_users()` maps it: root to root and the service's user
/// and group to themselves (`ids`, when not root), everything else to the
/// overflow id (`nobody`), and `setgroups()` denied for good. A process of
/// the new namespace is needed to write its maps from here (flint keeps
/// `CAP_SETUID` in its own namespace): a child cloned into it that only
/// waits, killed once the namespace is held by the returned fd. It costs a
/// fork of flint's page tables, once per run.
pub fn make_user_namespace(ids: Option<(u32, u32)>) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    // SAFETY: geteuid/getegid have no memory effects.
    let (ouid, ogid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let map = |own: u32, other: Option<u32>| match other {
        Some(id) if id != own => format!("{own} {own} 1\n{id} {id} 1\n"),
        _ => format!("{own} {own} 1\n"),
    };
    let uid_map = map(ouid, ids.map(|i| i.0));
    let gid_map = map(ogid, ids.map(|i| i.1));
    // A child of its own (a copy of flint's memory, as fork() makes, not
    // shared with it), which only waits for its SIGKILL in raw system
    // calls. No exit signal: flint's reaper of orphans does not see it,
    // and `__WALL` reaps it here.
    // SAFETY: clone() without CLONE_VM or a new stack returns twice like
    // fork(); the child runs nothing but raw pause() calls on its copy of
    // this stack and never returns.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::c_long::from(libc::CLONE_NEWUSER),
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    if ret == 0 {
        loop {
            // SAFETY: pause() has no memory effects.
            unsafe {
                libc::syscall(libc::SYS_pause);
            }
        }
    }
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(ret).unwrap_or(-1));
    let held = (|| -> std::io::Result<std::os::fd::OwnedFd> {
        let proc = format!("/proc/{pid}");
        std::fs::write(format!("{proc}/setgroups"), "deny\n")?;
        std::fs::write(format!("{proc}/uid_map"), &uid_map)?;
        std::fs::write(format!("{proc}/gid_map"), &gid_map)?;
        Ok(std::fs::File::open(format!("{proc}/ns/user"))?.into())
    })();
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = waitpid(pid, Some(WaitPidFlag::__WALL));
    held
}

/// Brings up `lo` in a fresh network namespace (the kernel gives it
/// 127.0.0.1 and ::1 as it goes up).
unsafe fn loopback_up() -> Result<(), c_int> {
    // SAFETY: (whole function) a socket, two ioctls on a zeroed `ifreq`
    // naming "lo", and a close.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_socket,
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(errno());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = c_char::from_ne_bytes([b'l']);
        req.ifr_name[1] = c_char::from_ne_bytes([b'o']);
        let mut result = Ok(());
        if libc::syscall(libc::SYS_ioctl, fd, libc::SIOCGIFFLAGS, &raw mut req) < 0 {
            result = Err(errno());
        } else {
            req.ifr_ifru.ifru_flags |=
                libc::c_short::try_from(libc::IFF_UP | libc::IFF_RUNNING).unwrap_or(1);
            if libc::syscall(libc::SYS_ioctl, fd, libc::SIOCSIFFLAGS, &raw const req) < 0 {
                result = Err(errno());
            }
        }
        libc::syscall(libc::SYS_close, fd);
        result
    }
}

/// The mount namespace: nothing propagates back to flint's (`MS_SLAVE`),
/// the plan's steps, then shared again within the namespace, as systemd
/// leaves it (`MountFlags=` unset). An error names the step that failed
/// (its index in `ops` plus one; 0 for the propagation changes).
unsafe fn mounts(ops: &[MountOp]) -> Result<(), (u32, c_int)> {
    let null = ptr::null::<c_char>();
    let mut slots: [c_int; SLOTS] = [-1; SLOTS];
    // SAFETY: (whole function) mount(), mount_setattr(), open_tree(),
    // move_mount(), mkdir(), symlink() and close() with NUL-terminated
    // paths from the plan or static strings, and fds this function owns.
    unsafe {
        let propagation = |flag: c_ulong| {
            if libc::syscall(
                libc::SYS_mount,
                null,
                c"/".as_ptr(),
                null,
                flag | libc::MS_REC,
                null,
            ) < 0
            {
                return Err((0, errno()));
            }
            Ok(())
        };
        propagation(libc::MS_SLAVE)?;
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = run_op(op, &mut slots) {
                return Err((u32::try_from(i + 1).unwrap_or(u32::MAX), e));
            }
        }
        propagation(libc::MS_SHARED)?;
    }
    Ok(())
}

/// Creates an empty file (mode 0644 before the umask) where nothing is;
/// `O_EXCL`, so that whatever stands there (a FIFO, a device) is never
/// opened. Returns the syscall's result (an existing path: `EEXIST`).
///
/// # Safety
/// Child only: `path` is NUL-terminated.
unsafe fn make_file(path: &CString) -> c_long {
    // SAFETY: openat with a NUL-terminated path; the fd is closed at once.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC | libc::O_NOCTTY,
            0o644,
        );
        if fd >= 0 {
            libc::syscall(libc::SYS_close, fd);
        }
        fd
    }
}

/// One step of the plan.
///
/// # Safety
/// Child only: raw syscalls on the plan's C strings and the slots' fds.
unsafe fn run_op(op: &MountOp, slots: &mut [c_int; SLOTS]) -> Result<(), c_int> {
    let null = ptr::null::<c_char>();
    // SAFETY: (whole function) mount(), mount_setattr(), open_tree(),
    // move_mount(), mkdir(), symlink() and close() with NUL-terminated
    // paths from the plan or static strings, and fds in `slots`.
    unsafe {
        match op {
            MountOp::Detach {
                src,
                slot,
                optional,
                recursive,
            } => {
                let flags =
                    OPEN_TREE_CLONE | libc::O_CLOEXEC | if *recursive { AT_RECURSIVE } else { 0 };
                let fd = libc::syscall(
                    libc::SYS_open_tree,
                    libc::AT_FDCWD,
                    src.as_ptr(),
                    flags.cast_unsigned(),
                );
                if fd < 0 {
                    if !(*optional && errno() == libc::ENOENT) {
                        return Err(errno());
                    }
                } else if let Some(s) = slots.get_mut(*slot) {
                    *s = c_int::try_from(fd).unwrap_or(-1);
                }
            }
            MountOp::Attach {
                slot,
                dst,
                optional,
            } => {
                let Some(fd) = slots.get_mut(*slot).filter(|fd| **fd >= 0) else {
                    return Ok(());
                };
                let r = libc::syscall(
                    libc::SYS_move_mount,
                    *fd,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    dst.as_ptr(),
                    MOVE_MOUNT_F_EMPTY_PATH,
                );
                let e = errno();
                libc::syscall(libc::SYS_close, *fd);
                *fd = -1;
                if r < 0 && !(*optional && e == libc::ENOENT) {
                    return Err(e);
                }
            }
            MountOp::Mknod {
                path,
                mode,
                dev,
                fallback,
            } => {
                if libc::syscall(
                    libc::SYS_mknodat,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    *mode,
                    *dev,
                ) < 0
                    && errno() != libc::EEXIST
                {
                    let e = errno();
                    let Some(fd) = slots.get_mut(*fallback).filter(|fd| **fd >= 0) else {
                        return Err(e);
                    };
                    if e != libc::EPERM {
                        return Err(e);
                    }
                    if make_file(path) < 0 {
                        return Err(errno());
                    }
                    let r = libc::syscall(
                        libc::SYS_move_mount,
                        *fd,
                        c"".as_ptr(),
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    );
                    libc::syscall(libc::SYS_close, *fd);
                    *fd = -1;
                    if r < 0 {
                        return Err(errno());
                    }
                    return Ok(());
                }
                if libc::syscall(
                    libc::SYS_fchmodat,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    *mode & 0o7777,
                ) < 0
                {
                    return Err(errno());
                }
            }
            MountOp::Symlink { target, path } => {
                if libc::syscall(
                    libc::SYS_symlinkat,
                    target.as_ptr(),
                    libc::AT_FDCWD,
                    path.as_ptr(),
                ) < 0
                    && errno() != libc::EEXIST
                {
                    return Err(errno());
                }
            }
            MountOp::Create { path, file } => {
                let r = if *file {
                    make_file(path)
                } else {
                    libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, path.as_ptr(), 0o755)
                };
                if r < 0 {
                    if errno() != libc::EEXIST {
                        return Err(errno());
                    }
                } else if libc::syscall(
                    libc::SYS_fchmodat,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    if *file { 0o644 } else { 0o755 },
                ) < 0
                {
                    // Made past the service's umask.
                    return Err(errno());
                }
            }
            MountOp::Bind {
                src,
                dst,
                recursive,
                optional,
            } => {
                let flags = libc::MS_BIND | if *recursive { libc::MS_REC } else { 0 };
                if libc::syscall(
                    libc::SYS_mount,
                    src.as_ptr(),
                    dst.as_ptr(),
                    null,
                    flags as c_ulong,
                    null,
                ) < 0
                    && !(*optional && errno() == libc::ENOENT)
                {
                    return Err(errno());
                }
            }
            MountOp::Tmpfs { dst, flags, data } => {
                if libc::syscall(
                    libc::SYS_mount,
                    c"tmpfs".as_ptr(),
                    dst.as_ptr(),
                    c"tmpfs".as_ptr(),
                    *flags,
                    data.as_ptr(),
                ) < 0
                {
                    return Err(errno());
                }
            }
            MountOp::Proc { dst, flags, data } => {
                let mount = |data: *const c_char| {
                    libc::syscall(
                        libc::SYS_mount,
                        c"proc".as_ptr(),
                        dst.as_ptr(),
                        c"proc".as_ptr(),
                        *flags,
                        data,
                    )
                };
                if mount(data.as_ptr()) < 0 {
                    let e = errno();
                    if e == libc::EINVAL && !data.is_empty() {
                        if mount(null) < 0 && errno() != libc::EPERM {
                            return Err(errno());
                        }
                    } else if e != libc::EPERM {
                        return Err(e);
                    }
                }
            }
            MountOp::SetAttr {
                path,
                attr,
                clear,
                below,
                fallback,
            } => {
                if let Err(e) = set_attr(path.as_ptr(), *attr, *clear, *fallback)
                    && !(*below && (e == libc::ENOENT || e == libc::EINVAL))
                {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// `mount_setattr()` on one mount, or a bind remount where the kernel is
/// older than 5.12.
unsafe fn set_attr(
    path: *const c_char,
    attr: u64,
    clear: u64,
    fallback: c_ulong,
) -> Result<(), c_int> {
    let set = MountAttr {
        attr_set: attr,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr with a NUL-terminated path and a mount_attr of
    // the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path,
            0 as c_long,
            &raw const set,
            size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = errno();
    if e != libc::ENOSYS {
        return Err(e);
    }
    let mut flags = fallback | libc::MS_BIND | libc::MS_REMOUNT;
    for (bit, ms) in [
        (ATTR_RDONLY, libc::MS_RDONLY),
        (ATTR_NOSUID, libc::MS_NOSUID),
        (ATTR_NODEV, libc::MS_NODEV),
        (ATTR_NOEXEC, libc::MS_NOEXEC),
    ] {
        if attr & bit != 0 {
            flags |= ms;
        }
        if clear & bit != 0 {
            flags &= !ms;
        }
    }
    let null = ptr::null::<c_char>();
    // SAFETY: a remount of the mount at `path`, NUL-terminated.
    if unsafe { libc::syscall(libc::SYS_mount, null, path, null, flags, null) } < 0 {
        return Err(errno());
    }
    Ok(())
}
