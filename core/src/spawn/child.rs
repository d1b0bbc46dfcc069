//! The code that runs in the cloned child, between `clone()` and `execve()`.
//!
//! The child shares flint's memory (`CLONE_VM`) while the parent thread is
//! suspended (`CLONE_VFORK`), so everything here is restricted to
//! async-signal-safe calls: raw syscalls or the thin libc wrappers POSIX lists
//! as async-signal-safe (`fcntl`, `dup3`, `open`, `close`, `fstat`, `write`,
//! `sigaction`, `_exit`). Nothing here allocates, takes a lock, panics on
//! purpose or touches Rust std state. The only memory written outside the
//! child's own stack is what the parent reserved for it: the `LISTEN_PID`
//! slots, the envp entry after them and the scratch array of high fds.
//!
//! Order of the steps (systemd's order in `exec_invoke()`): move into the
//! service's cgroup (systemd does it before `exec_invoke()`), reset signal
//! dispositions, `setsid`, the terminal reset, stdio (acquiring the
//! terminal) and passed fds (then close everything else), OOM score,
//! coredump filter, CPU scheduling policy, nice, CPU affinity, I/O priority,
//! timer slack, personality, the terminal's owner, rlimits, umask, the
//! sandbox's namespaces (`namespace.rs`), chroot,
//! setgroups, setresgid, setresuid, chdir, secure bits, no-new-privileges,
//! the seccomp filters,
//! `LISTEN_PID` and the other pid variables, clear the signal mask, execve.

use std::ffi::{c_char, c_int, c_long, c_void};
use std::io;
use std::ptr;

use super::namespace::{self, NamespacePlan};
use super::{BpfInsn, ChildStep, CpuSched, PassFd, Stdio, TtyAcquire, TtyReset};

/// What a child that could not exec leaves for the parent: the failed step
/// (0: none, the exec succeeded) and its errno. The child shares the
/// parent's memory (`CLONE_VM`) and the parent waits until it has exec'd or
/// exited (`CLONE_VFORK`), so the child writes this where the parent reads
/// it, as glibc's `posix_spawn` does; no pipe is needed.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Report {
    pub step: u32,
    pub errno: c_int,
    /// Which part of the step failed, where it has parts: the mount step
    /// of a namespace plan (its index plus one), else 0.
    pub detail: u32,
}

/// Size of the child's stack, not counting the guard page. Pages are only
/// touched on use; the child's frames need a few KiB.
const STACK_SIZE: usize = 256 * 1024;

/// Signal numbers the kernel knows on the architectures flint supports.
const KERNEL_NSIG: c_int = 65;

/// `statfs.f_type` of pidfs, the file system pidfds live on since Linux 6.9;
/// only there is the pidfd inode number a stable 64-bit process id.
const PID_FS_MAGIC: i64 = 0x5049_4446;

#[cfg(any(target_arch = "x86", target_arch = "arm"))]
mod cred_sys {
    pub const SETGROUPS: libc::c_long = libc::SYS_setgroups32;
    pub const SETRESGID: libc::c_long = libc::SYS_setresgid32;
    pub const SETRESUID: libc::c_long = libc::SYS_setresuid32;
    pub const SETREGID: libc::c_long = libc::SYS_setregid32;
    pub const SETREUID: libc::c_long = libc::SYS_setreuid32;
    pub const GETUID: libc::c_long = libc::SYS_getuid32;
    pub const GETGID: libc::c_long = libc::SYS_getgid32;
}
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
mod cred_sys {
    pub const SETGROUPS: libc::c_long = libc::SYS_setgroups;
    pub const SETRESGID: libc::c_long = libc::SYS_setresgid;
    pub const SETRESUID: libc::c_long = libc::SYS_setresuid;
    pub const SETREGID: libc::c_long = libc::SYS_setregid;
    pub const SETREUID: libc::c_long = libc::SYS_setreuid;
    pub const GETUID: libc::c_long = libc::SYS_getuid;
    pub const GETGID: libc::c_long = libc::SYS_getgid;
}

/// Where the child writes `LISTEN_PID=` and `LISTEN_PIDFDID=`.
pub(super) struct ListenPidSlot {
    /// Index in envp of the `LISTEN_PID` entry; the `LISTEN_PIDFDID` entry
    /// follows it and is replaced by NULL when the kernel has no pidfd ids.
    pub envp_index: usize,
    pub pid_buf: *mut u8,
    pub pidfdid_buf: *mut u8,
    /// Length of each of the two buffers.
    pub len: usize,
    /// Whether `LISTEN_PIDFDID=` is wanted at all.
    pub pidfdid: bool,
}

/// A variable the child sets to its own pid: `prefix` (`NAME=`) and the
/// buffer of `len` bytes its envp entry points to.
pub(super) struct PidSlot<'a> {
    pub prefix: &'a [u8],
    pub buf: *mut u8,
    pub len: usize,
}

/// Everything the child reads, prepared by the parent. All pointers point
/// into memory the parent keeps alive and does not touch until the child has
/// exec'd or exited.
pub(super) struct ChildContext<'a> {
    pub path: *const c_char,
    pub argv: *const *const c_char,
    pub envp: *mut *const c_char,
    pub listen_pid: Option<ListenPidSlot>,
    pub pass_fds: &'a [PassFd],
    /// Scratch array with one entry per `pass_fds` element.
    pub high_fds: *mut c_int,
    /// 3 + number of passed fds: the first fd number that is not a target.
    pub first_free: c_int,
    pub stdio: [Stdio; 3],
    pub dev_null: *const c_char,
    pub oom_path: *const c_char,
    pub oom_text: Option<&'a [u8]>,
    pub coredump_path: *const c_char,
    pub coredump_text: Option<&'a [u8]>,
    pub pid_slots: &'a [PidSlot<'a>],
    pub tty_path: Option<*const c_char>,
    pub tty0: *const c_char,
    pub tty_reset: TtyReset,
    pub tty_owner: Option<u32>,
    pub cpu_sched: Option<CpuSched>,
    pub cpu_affinity: Option<&'a [u64]>,
    /// The CPU mask to put back where the unit sets no `CPUAffinity=`: the
    /// child was made on the spawner's CPU alone (`cpu.rs`).
    pub spawner_affinity: Option<&'a [u64]>,
    pub ioprio: Option<i32>,
    pub timer_slack_nsec: Option<u64>,
    pub parent_death_signal: Option<i32>,
    /// The spawning process, for the check after `PR_SET_PDEATHSIG`.
    pub parent_pid: libc::pid_t,
    pub personality: Option<u64>,
    pub secure_bits: Option<u32>,
    pub capability_bounding_set: Option<u64>,
    pub ambient_capabilities: u64,
    pub cap_last_cap: u32,
    pub cgroup_procs: Option<*const c_char>,
    /// `cgroup.procs` of cgroup v1 hierarchies to join (`TasksMax=` on v1).
    pub legacy_procs: &'a [std::ffi::CString],
    pub nice: Option<i32>,
    pub rlimits: &'a [(c_int, libc::rlimit64)],
    pub umask: u32,
    pub chroot: Option<*const c_char>,
    pub root: *const c_char,
    pub groups: Option<&'a [libc::gid_t]>,
    pub gid: Option<u32>,
    pub uid: Option<u32>,
    pub cwd: Option<*const c_char>,
    pub cwd_optional: bool,
    pub new_session: bool,
    pub ignore_sigpipe: bool,
    /// Signals whose disposition the child puts back to the default: bit
    /// `n - 1` for signal `n` ([`signals_to_reset`]); the clone sets it to
    /// the set its way of cloning needs.
    pub reset_signals: u64,
    /// The dispositions looked at in the parent, from which the clone
    /// picks `reset_signals`.
    pub signals: SignalsToReset,
    pub no_new_privileges: bool,
    pub namespace: Option<&'a NamespacePlan>,
    pub seccomp: &'a [Vec<BpfInsn>],
    /// `KeyringMode=private|shared`: a session keyring of the service's.
    pub keyring: Option<&'a super::Keyring>,
    /// Where a failure before exec is written for the parent.
    pub report: *mut Report,
}

impl ChildContext<'_> {
    /// For a child whose handlers the kernel does not put back (`clone()`,
    /// or `clone3()` without `CLONE_CLEAR_SIGHAND`): it resets every signal
    /// that is not the default, from a look at most a second old.
    pub(super) fn reset_every_signal(&mut self) {
        self.signals = handlers_fresh();
        self.reset_signals = self.signals.all;
    }
}

type Failure = (ChildStep, c_int);

/// The child's entry point, called by `clone()` on the child's stack.
pub(super) extern "C" fn entry(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `&mut ChildContext` that `clone_child` passed; it
    // stays valid and unaliased by writes while the parent is suspended.
    let ctx = unsafe { &*arg.cast::<ChildContext<'_>>() };
    // SAFETY: we are the freshly cloned child described in the module docs;
    // `setup_and_exec` only returns on failure.
    let (step, errno) = unsafe { setup_and_exec(ctx) };
    // SAFETY: `ctx.report` points to the parent's `Report`, which it reads
    // only after this process has exited (CLONE_VFORK); volatile, so the
    // stores are not dropped as writes nobody in this process reads.
    unsafe {
        ptr::write_volatile(&raw mut (*ctx.report).step, step as u32);
        ptr::write_volatile(&raw mut (*ctx.report).errno, errno);
    }
    // SAFETY: _exit ends only this process (no CLONE_THREAD) without running
    // any of flint's atexit handlers or destructors.
    unsafe { libc::_exit(step.exit_code()) }
}

fn errno() -> c_int {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Maps a raw syscall result to `Err(errno)` on failure.
fn check(ret: c_long) -> Result<c_long, c_int> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

/// Maps a libc wrapper's `int` result to `Err(errno)` on failure.
fn check_int(ret: c_int) -> Result<c_int, c_int> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

/// Performs every step and execs; returns only the failing step and errno.
///
/// # Safety
/// Must run only in the child created by `clone_child`, with `ctx` prepared
/// by `spawn`.
unsafe fn setup_and_exec(ctx: &ChildContext<'_>) -> Failure {
    // SAFETY: (whole function) every call below is a raw syscall or an
    // async-signal-safe libc wrapper, given pointers that `spawn` prepared and
    // keeps alive: NUL-terminated C strings, NULL-terminated pointer arrays,
    // slices with their true lengths.
    unsafe {
        // First of all, as systemd attaches before anything runs: whatever
        // the service starts from here on is in its cgroup.
        if let Some(procs) = ctx.cgroup_procs
            && let Err(e) = write_file(procs, b"0")
        {
            return (ChildStep::Cgroup, e);
        }
        // The v1 hierarchies (resource control on hybrid hosts): best
        // effort, as systemd's cg_attach_everywhere() treats them.
        for procs in ctx.legacy_procs {
            let _ = write_file(procs.as_ptr(), b"0");
        }

        reset_signal_dispositions(ctx.reset_signals, ctx.ignore_sigpipe);

        // The only failure is an invalid signal, which the plan never has.
        if let Some(signal) = ctx.parent_death_signal {
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_PDEATHSIG,
                c_long::from(signal),
                0 as c_long,
                0 as c_long,
                0 as c_long,
            );
            // Re-parented already: the parent ended before the request.
            if libc::syscall(libc::SYS_getppid) != c_long::from(ctx.parent_pid) {
                libc::syscall(libc::SYS_kill, libc::syscall(libc::SYS_getpid), signal);
            }
        }

        if ctx.new_session
            && let Err(e) = check(libc::syscall(libc::SYS_setsid))
        {
            return (ChildStep::Setsid, e);
        }

        if let (Some(path), true) = (ctx.tty_path, ctx.tty_reset.any()) {
            reset_terminal(path, ctx.tty0, &ctx.tty_reset);
        }

        // The run's shared network and IPC namespaces, while the fds that
        // hold them are still open.
        if let Some(plan) = ctx.namespace {
            match namespace::join(plan) {
                Ok(()) => {}
                Err(namespace::Failed::Network(e)) => return (ChildStep::Network, e),
                Err(namespace::Failed::Namespace(e, _)) => return (ChildStep::Namespace, e),
            }
        }

        let userns = match place_fds(ctx) {
            Ok(fd) => fd,
            Err(failure) => return failure,
        };

        // Like systemd, a refused OOM adjustment or coredump filter (user
        // namespaces, containers) is skipped.
        if let Some(text) = ctx.oom_text
            && let Err(e) = write_file(ctx.oom_path, text)
            && !is_privilege_error(e)
        {
            return (ChildStep::OomScoreAdjust, e);
        }
        if let Some(text) = ctx.coredump_text
            && let Err(e) = write_file(ctx.coredump_path, text)
            && !is_privilege_error(e)
        {
            return (ChildStep::CoredumpFilter, e);
        }

        // The policy before the nice level: sched_setattr() resets it.
        if let Some(sched) = ctx.cpu_sched
            && let Err(e) = set_scheduler(sched)
        {
            return (ChildStep::CpuScheduling, e);
        }

        if let Some(nice) = ctx.nice
            && let Err(e) = setpriority_closest(nice)
        {
            return (ChildStep::Nice, e);
        }

        if let Some(mask) = ctx.cpu_affinity.or(ctx.spawner_affinity)
            && let Err(e) = check(libc::syscall(
                libc::SYS_sched_setaffinity,
                0,
                size_of_val(mask),
                mask.as_ptr(),
            ))
        {
            if ctx.cpu_affinity.is_some() {
                return (ChildStep::CpuAffinity, e);
            }
            // The spawner's mask, refused: none of its CPUs is in what the
            // service's cgroup allows. Asking for every CPU cannot be
            // refused, and leaves no request of the one CPU the child was
            // made on, which would cut it down to that CPU if the cgroup
            // gained it later.
            let every = [u64::MAX; super::cpu::WORDS];
            libc::syscall(
                libc::SYS_sched_setaffinity,
                0,
                size_of_val(mask).min(size_of_val(&every)),
                every.as_ptr(),
            );
        }

        if let Some(prio) = ctx.ioprio
            && let Err(e) = check(libc::syscall(
                libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                0,
                prio,
            ))
        {
            return (ChildStep::IoPriority, e);
        }

        if let Some(ns) = ctx.timer_slack_nsec
            && let Err(e) = check(libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_TIMERSLACK,
                ns,
                0 as c_long,
                0 as c_long,
                0 as c_long,
            ))
        {
            return (ChildStep::TimerSlack, e);
        }

        if let Some(persona) = ctx.personality
            && let Err(e) = check(libc::syscall(libc::SYS_personality, persona))
        {
            return (ChildStep::Personality, e);
        }

        if let Some(uid) = ctx.tty_owner
            && let Err(e) = chown_terminal(0, uid)
        {
            return (ChildStep::TtyOwner, e);
        }

        for (resource, limit) in ctx.rlimits {
            if let Err(e) = setrlimit_closest(*resource, limit) {
                return (ChildStep::Limits, e);
            }
        }

        libc::syscall(libc::SYS_umask, ctx.umask);

        // The sandbox's namespaces, while the capabilities to make them are
        // still there (systemd's order: network, IPC, mounts, UTS).
        if let Some(plan) = ctx.namespace {
            match namespace::enter(plan) {
                Ok(()) => {}
                Err(namespace::Failed::Network(e)) => return (ChildStep::Network, e),
                Err(namespace::Failed::Namespace(e, detail)) => {
                    // SAFETY: `ctx.report` is the parent's `Report`, read
                    // only once this process has exited; `entry` leaves
                    // this field as it is.
                    ptr::write_volatile(&raw mut (*ctx.report).detail, detail);
                    return (ChildStep::Namespace, e);
                }
            }
        }

        // KeyringMode=: a session keyring of its own, owned by the
        // service's user, before the capabilities go.
        if let Some(keyring) = ctx.keyring
            && let Err(e) = setup_keyring(keyring, ctx.uid, ctx.gid)
        {
            return (ChildStep::Keyring, e);
        }

        // Capabilities, before chroot and the user switch (systemd's order):
        // the bounding set first, then the ambient ones (in the inheritable
        // set too, so that they can be raised again after the switch).
        // With a user namespace, after joining it (which gives a full set).
        if userns.is_none()
            && let Err(e) = apply_capabilities_before_user(ctx)
        {
            return (ChildStep::Capabilities, e);
        }

        if let Some(root) = ctx.chroot {
            if let Err(e) = check(libc::syscall(libc::SYS_chroot, root)) {
                return (ChildStep::Chroot, e);
            }
            if let Err(e) = check(libc::syscall(libc::SYS_chdir, ctx.root)) {
                return (ChildStep::Chroot, e);
            }
        }

        if let Some(groups) = ctx.groups
            && let Err(e) = check(libc::syscall(
                cred_sys::SETGROUPS,
                groups.len(),
                groups.as_ptr(),
            ))
        {
            return (ChildStep::Groups, e);
        }
        if let Some(gid) = ctx.gid
            && let Err(e) = check(libc::syscall(cred_sys::SETRESGID, gid, gid, gid))
        {
            return (ChildStep::Setgid, e);
        }
        // PrivateUsers=: the run's user namespace, after the other
        // namespaces and the group switch (the groups are set while the
        // host's ids apply; the namespace denies setgroups()), before the
        // capabilities and the user switch, as systemd's exec_invoke()
        // orders them for a privileged manager.
        if let Some(fd) = userns {
            if let Err(e) = check(libc::syscall(libc::SYS_setns, fd, libc::CLONE_NEWUSER)) {
                return (ChildStep::UserNamespace, e);
            }
            libc::syscall(libc::SYS_close, fd);
            if let Err(e) = apply_capabilities_before_user(ctx) {
                return (ChildStep::Capabilities, e);
            }
        }

        if let Some(uid) = ctx.uid {
            // Capabilities survive the switch only with keep-caps set.
            if ctx.ambient_capabilities != 0
                && uid != 0
                && let Err(e) = check(libc::syscall(
                    libc::SYS_prctl,
                    libc::PR_SET_KEEPCAPS,
                    1 as c_long,
                    0 as c_long,
                    0 as c_long,
                    0 as c_long,
                ))
            {
                return (ChildStep::Setuid, e);
            }
            if let Err(e) = check(libc::syscall(cred_sys::SETRESUID, uid, uid, uid)) {
                return (ChildStep::Setuid, e);
            }
            if ctx.ambient_capabilities != 0 && uid != 0 {
                // Keep-caps did its part; cleared (it shows in the secure
                // bits, which are set next).
                libc::syscall(
                    libc::SYS_prctl,
                    libc::PR_SET_KEEPCAPS,
                    0 as c_long,
                    0 as c_long,
                    0 as c_long,
                    0 as c_long,
                );
            }
            // The switch cleared the ambient set: raised again.
            if ctx.ambient_capabilities != 0
                && let Err(e) = raise_ambient(ctx.ambient_capabilities, ctx.cap_last_cap)
            {
                return (ChildStep::Capabilities, e);
            }
        }

        if let Some(cwd) = ctx.cwd
            && let Err(e) = check(libc::syscall(libc::SYS_chdir, cwd))
            && !ctx.cwd_optional
        {
            return (ChildStep::Chdir, e);
        }

        // PR_SET_SECUREBITS needs CAP_SETPCAP; only call it for a change.
        if let Some(bits) = ctx.secure_bits {
            let current = libc::syscall(
                libc::SYS_prctl,
                libc::PR_GET_SECUREBITS,
                0 as c_long,
                0 as c_long,
                0 as c_long,
                0 as c_long,
            );
            if current < 0 {
                return (ChildStep::SecureBits, errno());
            }
            if current != c_long::from(bits)
                && let Err(e) = check(libc::syscall(
                    libc::SYS_prctl,
                    libc::PR_SET_SECUREBITS,
                    c_long::from(bits),
                    0 as c_long,
                    0 as c_long,
                    0 as c_long,
                ))
            {
                return (ChildStep::SecureBits, e);
            }
        }

        if ctx.no_new_privileges
            && let Err(e) = check(libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_NO_NEW_PRIVS,
                1 as c_long,
                0 as c_long,
                0 as c_long,
                0 as c_long,
            ))
        {
            return (ChildStep::NoNewPrivileges, e);
        }

        if !ctx.pid_slots.is_empty() {
            let pid = libc::syscall(libc::SYS_getpid).unsigned_abs();
            for slot in ctx.pid_slots {
                let buf = std::slice::from_raw_parts_mut(slot.buf, slot.len);
                write_entry(buf, slot.prefix, pid);
            }
        }
        if let Some(slot) = &ctx.listen_pid {
            fill_listen_pid(slot, ctx.envp);
        }

        let empty: u64 = 0;
        if let Err(e) = check(libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &raw const empty,
            ptr::null_mut::<u64>(),
            size_of::<u64>(),
        )) {
            return (ChildStep::SignalMask, e);
        }

        // The seccomp filters, as close to the exec as may be (systemd's
        // order): after no-new-privileges, which they need without
        // CAP_SYS_ADMIN, and after every other step, which an allow list
        // may not allow.
        for program in ctx.seccomp {
            let prog = SockFprog {
                len: u16::try_from(program.len()).unwrap_or(u16::MAX),
                filter: program.as_ptr(),
            };
            if let Err(e) = check(libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                0 as c_long,
                &raw const prog,
            )) {
                return (ChildStep::Seccomp, e);
            }
        }

        libc::syscall(libc::SYS_execve, ctx.path, ctx.argv, ctx.envp);
        (ChildStep::Exec, errno())
    }
}

/// `keyctl(2)` operations and special keyring ids (`linux/keyctl.h`).
const KEYCTL_SETPERM: c_long = 5;
const KEYCTL_LINK: c_long = 8;
const KEYCTL_JOIN_SESSION_KEYRING: c_long = 1;
const KEY_SPEC_SESSION_KEYRING: c_long = -3;
const KEY_SPEC_USER_KEYRING: c_long = -4;
/// `KEY_POS_VIEW | KEY_POS_READ | KEY_POS_SEARCH | KEY_USR_VIEW |
/// KEY_USR_READ | KEY_USR_SEARCH`.
const INVOCATION_KEY_PERM: c_long = 0x0b0b_0000;

/// systemd's `setup_keyring()`: a new session keyring, made while the real
/// ids are the service's so that it is theirs, with the user keyring
/// linked in for `shared`, and the invocation id in it as the `user` key
/// `invocation_id` (readable by the owner, viewable by the user). A kernel
/// without keyrings, or one that refuses them, is not an error.
///
/// # Safety
/// Child only: raw system calls on constant strings and the plan's bytes.
unsafe fn setup_keyring(
    keyring: &super::Keyring,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), c_int> {
    // SAFETY: (whole function) raw credential and keyring system calls.
    unsafe {
        // The real ids are read only for a switch (a service without
        // `User=`/`Group=` makes its keyring as flint's ids are).
        let ouid = if uid.is_some() {
            libc::syscall(cred_sys::GETUID)
        } else {
            -1
        };
        let ogid = if gid.is_some() {
            libc::syscall(cred_sys::GETGID)
        } else {
            -1
        };
        let gid = gid.map(c_long::from).filter(|g| *g != ogid);
        let uid = uid.map(c_long::from).filter(|u| *u != ouid);
        if let Some(g) = gid {
            check(libc::syscall(cred_sys::SETREGID, g, -1 as c_long))?;
        }
        if let Some(u) = uid
            && let Err(e) = check(libc::syscall(cred_sys::SETREUID, u, -1 as c_long))
        {
            libc::syscall(cred_sys::SETREGID, ogid, -1 as c_long);
            return Err(e);
        }
        let ring = libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0 as c_long);
        let mut result = Ok(());
        if ring < 0 {
            let e = errno();
            if !matches!(e, libc::ENOSYS | libc::EPERM | libc::EACCES | libc::EDQUOT) {
                result = Err(e);
            }
        } else if keyring.shared
            && libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_LINK,
                KEY_SPEC_USER_KEYRING,
                KEY_SPEC_SESSION_KEYRING,
            ) < 0
        {
            result = Err(errno());
        }
        if uid.is_some() {
            libc::syscall(cred_sys::SETREUID, ouid, -1 as c_long);
        }
        if gid.is_some() {
            libc::syscall(cred_sys::SETREGID, ogid, -1 as c_long);
        }
        if ring >= 0
            && result.is_ok()
            && let Some(id) = &keyring.invocation_id
        {
            let key = libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c"invocation_id".as_ptr(),
                id.as_ptr(),
                id.len(),
                KEY_SPEC_SESSION_KEYRING,
            );
            // As systemd: a key that cannot be added is only noted there.
            if key >= 0
                && libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, key, INVOCATION_KEY_PERM) < 0
            {
                result = Err(errno());
            }
        }
        result
    }
}

/// `seccomp(2)`: install a filter.
const SECCOMP_SET_MODE_FILTER: c_long = 1;

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const BpfInsn,
}

/// `capget`/`capset` version 3: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `CapabilityBoundingSet=`: drops what is not in it; `AmbientCapabilities=`:
/// only those still in the bounding set, added to the inheritable set, the
/// ambient set cleared and those raised (systemd's
/// `capability_ambient_set_apply(set, true)`).
///
/// # Safety
/// Child only.
unsafe fn apply_capabilities_before_user(ctx: &ChildContext<'_>) -> Result<(), c_int> {
    // SAFETY: (whole function) prctl with integer arguments; capget/capset
    // read and write the header and the two data words on our stack.
    unsafe {
        if let Some(keep) = ctx.capability_bounding_set {
            for cap in 0..=ctx.cap_last_cap {
                // Only what is still there: a set that changes nothing
                // needs no CAP_SETPCAP.
                if keep & (1u64 << cap) == 0 && in_bounding_set(cap) {
                    check(libc::syscall(
                        libc::SYS_prctl,
                        libc::PR_CAPBSET_DROP,
                        c_long::from(cap),
                        0 as c_long,
                        0 as c_long,
                        0 as c_long,
                    ))?;
                }
            }
        }
        let mut ambient = ctx.ambient_capabilities;
        if ambient == 0 {
            return Ok(());
        }
        for cap in 0..=ctx.cap_last_cap {
            if ambient & (1u64 << cap) != 0 && !in_bounding_set(cap) {
                ambient &= !(1u64 << cap);
            }
        }
        let mut header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        check(libc::syscall(
            libc::SYS_capget,
            &raw mut header,
            data.as_mut_ptr(),
        ))?;
        #[allow(clippy::cast_possible_truncation)]
        {
            data[0].inheritable |= ambient as u32;
            data[1].inheritable |= (ambient >> 32) as u32;
        }
        check(libc::syscall(
            libc::SYS_capset,
            &raw mut header,
            data.as_ptr(),
        ))?;
        raise_ambient(ambient, ctx.cap_last_cap)
    }
}

/// Whether capability `cap` is in the bounding set.
///
/// # Safety
/// Child only (a raw syscall).
unsafe fn in_bounding_set(cap: u32) -> bool {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::syscall(
            libc::SYS_prctl,
            libc::PR_CAPBSET_READ,
            c_long::from(cap),
            0 as c_long,
            0 as c_long,
            0 as c_long,
        ) == 1
    }
}

/// Clears the ambient set and raises the capabilities of `set` in it.
///
/// # Safety
/// Child only.
unsafe fn raise_ambient(set: u64, last_cap: u32) -> Result<(), c_int> {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        check(libc::syscall(
            libc::SYS_prctl,
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0 as c_long,
            0 as c_long,
            0 as c_long,
        ))?;
        for cap in 0..=last_cap {
            if set & (1u64 << cap) != 0 && in_bounding_set(cap) {
                check(libc::syscall(
                    libc::SYS_prctl,
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    c_long::from(cap),
                    0 as c_long,
                    0 as c_long,
                ))?;
            }
        }
    }
    Ok(())
}

/// The signals in `set` back to their default action (SIGPIPE ignored if
/// asked), so nothing of flint's handlers or ignores survives into the
/// service. The mask stays blocked until just before exec.
///
/// # Safety
/// Child only.
unsafe fn reset_signal_dispositions(set: u64, ignore_sigpipe: bool) {
    // SAFETY: `sigaction` is plain data; all-zero is SIG_DFL, no flags, an
    // empty mask.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    let mut left = set;
    while left != 0 {
        let bit = left.trailing_zeros();
        left &= left - 1;
        let signal = bit.cast_signed() + 1;
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        action.sa_sigaction = if signal == libc::SIGPIPE && ignore_sigpipe {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: sigaction reads `action`; signals the C library reserves
        // for itself fail with EINVAL, which is harmless here.
        unsafe {
            libc::sigaction(signal, &raw const action, ptr::null_mut());
        }
    }
}

/// Signals flint may have a handler for or ignore: always reset, whatever
/// the last look at the dispositions found.
const USUAL_SIGNALS: &[c_int] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGUSR1,
    libc::SIGSEGV,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGCHLD,
    libc::SIGWINCH,
    libc::SIGIO,
    libc::SIGXCPU,
    libc::SIGXFSZ,
];

/// The last look at flint's signal dispositions: when, and what it found.
/// Code of flint's that ignores a signal after start must have the next
/// spawn look again, as `changing_dispositions` does in the tests.
static LAST_DISPOSITIONS: std::sync::Mutex<Option<(std::time::Instant, SignalsToReset)>> =
    std::sync::Mutex::new(None);

/// Runs `change` (which changes signal dispositions) while no spawn reads
/// them, and has the next spawn look again.
#[cfg(test)]
pub(super) fn changing_dispositions<T>(change: impl FnOnce() -> T) -> T {
    let mut last = LAST_DISPOSITIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = change();
    *last = None;
    out
}

/// How long a look at flint's signal handlers is trusted (the ignored
/// signals are trusted for good: see [`SignalsToReset`]).
const HANDLERS_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The signals a child resets before its exec.
///
/// Handlers need resetting only for the moment between unblocking the
/// signals and the exec (which resets caught signals itself), but an
/// ignored signal stays ignored across exec. systemd resets all 64 in every
/// child; that is 62 `sigaction` calls on each connection's path, while
/// flint has fewer than ten that are not the default. They are read here,
/// in the parent, the first time a spawn or [`super::warm_up`] needs them.
///
/// The ignored ones are set before flint's `main` (inherited, and the
/// SIGPIPE the Rust runtime ignores) and nothing in flint ignores a signal
/// later, so that first look stays good: a child made by
/// `clone3(CLONE_CLEAR_SIGHAND)` needs nothing else, and the first
/// connection after an hour of quiet does not read 64 dispositions first.
/// Handlers may be installed later (`tokio`'s, a runtime's fault
/// handlers); a child made by `clone()` needs them all, so there they are
/// read again when the last look is older than a second
/// ([`handlers_fresh`]), and anything installed since is among the usual
/// signals, always reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SignalsToReset {
    /// Every signal whose disposition in flint is not the default, plus
    /// [`USUAL_SIGNALS`]: what a child made by `clone()` resets.
    pub all: u64,
    /// The ignored ones (and SIGPIPE, which flint ignores from its start):
    /// all a child resets when the kernel has already put every handler
    /// back to the default (`clone3(CLONE_CLEAR_SIGHAND)`), since ignored
    /// signals are the only dispositions that cross both the clone and the
    /// exec.
    pub ignored: u64,
}

pub(super) fn signals_to_reset() -> SignalsToReset {
    dispositions(None)
}

/// [`signals_to_reset`] for a child made by `clone()`, which resets every
/// handler itself: read again when the last look is older than
/// [`HANDLERS_FRESH`].
fn handlers_fresh() -> SignalsToReset {
    dispositions(Some(HANDLERS_FRESH))
}

/// The last look at the dispositions, or a new one where there is none or
/// it is older than `trusted`.
fn dispositions(trusted: Option<std::time::Duration>) -> SignalsToReset {
    let mut last = LAST_DISPOSITIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    look_or_reuse(
        &mut last,
        std::time::Instant::now(),
        trusted,
        read_dispositions,
    )
}

/// `last` where it is younger than `trusted` (or `trusted` is `None`),
/// else a new look from `read`, kept in `last`.
fn look_or_reuse(
    last: &mut Option<(std::time::Instant, SignalsToReset)>,
    now: std::time::Instant,
    trusted: Option<std::time::Duration>,
    read: impl FnOnce() -> SignalsToReset,
) -> SignalsToReset {
    if let Some((at, set)) = *last
        && trusted.is_none_or(|t| now.saturating_duration_since(at) < t)
    {
        return set;
    }
    let set = read();
    *last = Some((now, set));
    set
}

/// Reads every signal's disposition in flint.
fn read_dispositions() -> SignalsToReset {
    let bit = |signal: c_int| 1u64 << (signal - 1);
    let mut set = SignalsToReset {
        all: USUAL_SIGNALS.iter().fold(0u64, |acc, &s| acc | bit(s)),
        ignored: bit(libc::SIGPIPE),
    };
    for signal in 1..KERNEL_NSIG {
        // SAFETY: `sigaction` is plain data that the call below fills.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a NULL new action only reads the current one into `old`.
        let ret = unsafe { libc::sigaction(signal, ptr::null(), &raw mut old) };
        if ret == 0 && old.sa_sigaction != libc::SIG_DFL {
            set.all |= bit(signal);
            if old.sa_sigaction == libc::SIG_IGN {
                set.ignored |= bit(signal);
            }
        }
    }
    set
}

/// Places stdio and passed fds, then closes every fd from `first_free` up.
///
/// Sources may overlap targets (passing fd 4 then fd 3), so every source is
/// first copied above the target range with `F_DUPFD_CLOEXEC`, then `dup3`'d
/// into place, which also clears `FD_CLOEXEC` on the target.
///
/// # Safety
/// Child only; `ctx.high_fds` has room for `ctx.pass_fds.len()` entries.
unsafe fn place_fds(ctx: &ChildContext<'_>) -> Result<Option<c_int>, Failure> {
    let base = ctx.first_free;
    let fds_failed = |e| (ChildStep::Fds, e);
    let userns = ctx.namespace.and_then(|plan| plan.join_user);

    // SAFETY: (whole function) fcntl/dup3/open/close/fstat on integer fds and
    // the prepared /dev/null path; `high_fds.add(i)` stays within the
    // parent's array of pass_fds.len() entries.
    unsafe {
        for (i, pass) in ctx.pass_fds.iter().enumerate() {
            let high =
                check_int(libc::fcntl(pass.fd, libc::F_DUPFD_CLOEXEC, base)).map_err(fds_failed)?;
            *ctx.high_fds.add(i) = high;
        }
        // The run's user namespace is joined later (after the group
        // switch): kept above the fds being placed, then at `base`.
        let user_high = match userns {
            Some(fd) => Some(
                check_int(libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, base))
                    .map_err(|e| (ChildStep::UserNamespace, e))?,
            ),
            None => None,
        };

        let mut stdio_high: [c_int; 3] = [-1; 3];
        for (target, (stdio, high)) in ctx.stdio.iter().zip(stdio_high.iter_mut()).enumerate() {
            let step = stdio_step(target);
            let opened = match *stdio {
                Stdio::Inherit | Stdio::SameAsStdin | Stdio::SameAsStdout => None,
                Stdio::Fd(source) => {
                    *high = check_int(libc::fcntl(source, libc::F_DUPFD_CLOEXEC, base))
                        .map_err(|e| (step, e))?;
                    None
                }
                // Read-only as stdin, write-only as output, as systemd's
                // `open_null_as()`.
                Stdio::Null => Some(check_int(libc::open(
                    ctx.dev_null,
                    if target == 0 {
                        libc::O_RDONLY
                    } else {
                        libc::O_WRONLY
                    } | libc::O_CLOEXEC
                        | libc::O_NOCTTY,
                ))),
                Stdio::TtyInput(mode) => Some(match ctx.tty_path {
                    Some(path) => acquire_terminal(path, mode),
                    None => Err(libc::EINVAL),
                }),
                Stdio::TtyOutput => Some(match ctx.tty_path {
                    Some(path) => {
                        open_terminal(path, libc::O_WRONLY | libc::O_NOCTTY | libc::O_CLOEXEC)
                    }
                    None => Err(libc::EINVAL),
                }),
            };
            if let Some(opened) = opened {
                let fd = opened.map_err(|e| (step, e))?;
                let moved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, base);
                let moved_errno = errno();
                libc::close(fd);
                if moved < 0 {
                    return Err((step, moved_errno));
                }
                *high = moved;
            }
        }

        for (target, (stdio, high)) in ctx.stdio.iter().zip(stdio_high.iter()).enumerate() {
            let step = stdio_step(target);
            #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
            let target = target as c_int;
            let source = match stdio {
                Stdio::SameAsStdin => 0,
                Stdio::SameAsStdout => 1,
                _ if *high < 0 => continue,
                _ => *high,
            };
            check_int(libc::dup3(source, target, 0)).map_err(|e| (step, e))?;
            if matches!(stdio, Stdio::Fd(_)) && is_socket(target) {
                set_nonblocking(target, false).map_err(|e| (step, e))?;
            }
        }

        for (i, pass) in ctx.pass_fds.iter().enumerate() {
            #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
            let target = 3 + i as c_int;
            check_int(libc::dup3(*ctx.high_fds.add(i), target, 0)).map_err(fds_failed)?;
            if let Some(nonblocking) = pass.nonblocking {
                set_nonblocking(target, nonblocking).map_err(fds_failed)?;
            }
        }

        let Some(high) = user_high else {
            close_from(base).map_err(fds_failed)?;
            return Ok(None);
        };
        // `base` is past every fd placed, so free to take (a copy above
        // it is no longer needed); close-on-exec.
        if high != base {
            check_int(libc::dup3(high, base, libc::O_CLOEXEC))
                .map_err(|e| (ChildStep::UserNamespace, e))?;
        }
        close_from(base + 1).map_err(fds_failed)?;
        Ok(Some(base))
    }
}

fn stdio_step(target: usize) -> ChildStep {
    match target {
        0 => ChildStep::Stdin,
        1 => ChildStep::Stdout,
        _ => ChildStep::Stderr,
    }
}

/// # Safety
/// Child only (plain fstat on an fd).
unsafe fn is_socket(fd: c_int) -> bool {
    // SAFETY: fstat writes into `st`, a plain-data struct on our stack.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &raw mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    }
}

/// # Safety
/// Child only (fcntl on an fd).
unsafe fn set_nonblocking(fd: c_int, nonblocking: bool) -> Result<(), c_int> {
    // SAFETY: F_GETFL/F_SETFL on an integer fd touch no memory of ours.
    unsafe {
        let flags = check_int(libc::fcntl(fd, libc::F_GETFL))?;
        let wanted = if nonblocking {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        if wanted != flags {
            check_int(libc::fcntl(fd, libc::F_SETFL, wanted))?;
        }
    }
    Ok(())
}

/// Closes every fd >= `low`. Uses
/// `close_range` (Linux 5.9+), falling back to a loop up to the fd limit.
///
/// # Safety
/// Child only.
unsafe fn close_from(low: c_int) -> Result<(), c_int> {
    #[allow(clippy::cast_sign_loss)]
    let low_u = low as u32;
    // SAFETY: close_range only closes fds of this (child) process.
    let ranged = unsafe { check(libc::syscall(libc::SYS_close_range, low_u, u32::MAX, 0u32)) };
    match ranged {
        Ok(_) => Ok(()),
        Err(libc::ENOSYS | libc::EINVAL) => {
            let mut limit = libc::rlimit64 {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: prlimit64 with a null new limit only writes `limit`.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    libc::RLIMIT_NOFILE,
                    ptr::null::<libc::rlimit64>(),
                    &raw mut limit,
                )
            };
            let max = if r < 0 {
                65_536
            } else {
                limit.rlim_cur.min(1 << 20)
            };
            #[allow(clippy::cast_possible_truncation)]
            let max = max as c_int;
            for fd in low..max {
                // SAFETY: closing an fd of this process; EBADF is expected
                // for numbers that are not open.
                unsafe {
                    libc::close(fd);
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn is_privilege_error(e: c_int) -> bool {
    e == libc::EPERM || e == libc::EACCES
}

/// `IOPRIO_WHO_PROCESS` of `ioprio_set(2)`.
const IOPRIO_WHO_PROCESS: c_int = 1;
/// `SCHED_FLAG_RESET_ON_FORK` of `sched_setattr(2)`.
const SCHED_FLAG_RESET_ON_FORK: u64 = 1;
/// `KDSETMODE`, `KD_TEXT`, `KDSKBMODE`, `VT_DISALLOCATE` of `linux/kd.h`
/// and `linux/vt.h` (the same on every architecture).
const KDSETMODE: libc::Ioctl = 0x4B3A;
const KD_TEXT: c_long = 0;
const KDSKBMODE: libc::Ioctl = 0x4B45;
const VT_DISALLOCATE: libc::Ioctl = 0x5608;

/// `struct sched_attr` (`SCHED_ATTR_SIZE_VER0`).
#[repr(C)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

/// `sched_setattr(2)` as systemd calls it: policy, priority and
/// reset-on-fork; the nice level it leaves at 0 is set afterwards.
///
/// # Safety
/// Child only.
unsafe fn set_scheduler(sched: CpuSched) -> Result<(), c_int> {
    let attr = SchedAttr {
        #[allow(clippy::cast_possible_truncation)]
        size: size_of::<SchedAttr>() as u32,
        sched_policy: sched.policy,
        sched_flags: if sched.reset_on_fork {
            SCHED_FLAG_RESET_ON_FORK
        } else {
            0
        },
        sched_nice: 0,
        sched_priority: sched.priority,
        sched_runtime: 0,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: sched_setattr reads `attr`, which lives for the call.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const attr, 0) }).map(|_| ())
}

/// systemd's `setpriority_closest()`: the requested nice level, or when
/// that is not permitted, the closest one `RLIMIT_NICE` allows.
///
/// # Safety
/// Child only.
unsafe fn setpriority_closest(nice: i32) -> Result<(), c_int> {
    // SAFETY: (whole function) getpriority/setpriority/prlimit64 on this
    // process; prlimit64 writes only into `limit` on our stack.
    unsafe {
        let set = |n: i32| {
            check(libc::syscall(
                libc::SYS_setpriority,
                libc::PRIO_PROCESS,
                0,
                n,
            ))
        };
        let Err(e) = set(nice) else {
            return Ok(());
        };
        if !is_privilege_error(e) {
            return Err(e);
        }
        // The raw syscall returns 20 - nice.
        let raw = check(libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0))?;
        #[allow(clippy::cast_possible_truncation)]
        let current = 20 - raw as i32;
        if nice == current {
            return Ok(());
        }
        if nice > current {
            return Err(e);
        }
        let mut limit = libc::rlimit64 {
            rlim_cur: 0,
            rlim_max: 0,
        };
        check(libc::syscall(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_NICE,
            ptr::null::<libc::rlimit64>(),
            &raw mut limit,
        ))?;
        let allowed = match limit.rlim_cur {
            0 | 1 => 19,
            n if n >= 40 => -20,
            #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
            n => 20 - n as i32,
        };
        if current > allowed {
            set(allowed)?;
        }
        Ok(())
    }
}

/// systemd's `setrlimit_closest()`: the requested limit, or when raising the
/// hard limit is not permitted, both values capped at the current hard limit.
///
/// # Safety
/// Child only.
unsafe fn setrlimit_closest(resource: c_int, wanted: &libc::rlimit64) -> Result<(), c_int> {
    // SAFETY: prlimit64 on this process reads `wanted`/`fixed` and writes
    // only `highest`, all on our stack.
    unsafe {
        let set = |l: &libc::rlimit64| {
            check(libc::syscall(
                libc::SYS_prlimit64,
                0,
                resource,
                ptr::from_ref(l),
                ptr::null_mut::<libc::rlimit64>(),
            ))
        };
        let Err(e) = set(wanted) else {
            return Ok(());
        };
        if e != libc::EPERM {
            return Err(e);
        }
        let mut highest = libc::rlimit64 {
            rlim_cur: 0,
            rlim_max: 0,
        };
        check(libc::syscall(
            libc::SYS_prlimit64,
            0,
            resource,
            ptr::null::<libc::rlimit64>(),
            &raw mut highest,
        ))?;
        if highest.rlim_max == libc::RLIM64_INFINITY {
            return Err(libc::EPERM);
        }
        let fixed = libc::rlimit64 {
            rlim_cur: wanted.rlim_cur.min(highest.rlim_max),
            rlim_max: wanted.rlim_max.min(highest.rlim_max),
        };
        if fixed.rlim_cur == highest.rlim_cur && fixed.rlim_max == highest.rlim_max {
            return Ok(());
        }
        set(&fixed).map(|_| ())
    }
}

/// Whether `fd` is a terminal (`TCGETS` succeeds).
///
/// # Safety
/// Child only.
unsafe fn is_tty(fd: c_int) -> bool {
    // SAFETY: TCGETS writes a termios into `t`, plain data on our stack.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        libc::ioctl(fd, libc::TCGETS, &raw mut t) == 0
    }
}

/// systemd's `open_terminal()`: `open` retried for up to a second while a
/// closing terminal answers `EIO`, then refused unless it is a terminal.
///
/// # Safety
/// Child only; `path` is a NUL-terminated string.
unsafe fn open_terminal(path: *const c_char, flags: c_int) -> Result<c_int, c_int> {
    // SAFETY: open/close/nanosleep/ioctl with a valid path and our own fds.
    unsafe {
        let mut tries = 0;
        let fd = loop {
            let fd = libc::open(path, flags, 0);
            if fd >= 0 {
                break fd;
            }
            let e = errno();
            if e != libc::EIO || tries >= 20 {
                return Err(e);
            }
            tries += 1;
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            libc::nanosleep(&raw const pause, ptr::null_mut());
        };
        if !is_tty(fd) {
            libc::close(fd);
            return Err(libc::ENOTTY);
        }
        Ok(fd)
    }
}

/// Sets SIGHUP's disposition (a blocked, pending SIGHUP is discarded when it
/// becomes ignored).
///
/// # Safety
/// Child only.
unsafe fn sighup(handler: libc::sighandler_t) {
    // SAFETY: `action` is plain data; all-zero plus the handler is a valid
    // disposition.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigaction(libc::SIGHUP, &raw const action, ptr::null_mut());
    }
}

/// Discards what is queued on `fd` (an inotify fd) without blocking.
///
/// # Safety
/// Child only.
unsafe fn flush_fd(fd: c_int) {
    // SAFETY: poll/read on our own fd into a buffer on our stack.
    unsafe {
        let mut buf = [0u8; 1024];
        loop {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&raw mut pfd, 1, 0) <= 0 {
                return;
            }
            if libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) <= 0 {
                return;
            }
        }
    }
}

/// systemd's `acquire_terminal()`: opens the terminal and makes it the
/// controlling terminal of our (new) session. When another session has it,
/// `Try` fails with `EPERM`, `Force` steals it, and `Wait` waits (through
/// inotify) until the terminal is closed and tries again.
///
/// # Safety
/// Child only; `path` is a NUL-terminated string.
unsafe fn acquire_terminal(path: *const c_char, mode: TtyAcquire) -> Result<c_int, c_int> {
    // SAFETY: (whole function) inotify/open/ioctl/read/close on our own fds,
    // with buffers on our stack.
    unsafe {
        let mut notify = -1;
        let mut wd = -1;
        if mode == TtyAcquire::Wait {
            #[allow(clippy::cast_possible_truncation)]
            {
                notify = check(libc::syscall(libc::SYS_inotify_init1, libc::IN_CLOEXEC))? as c_int;
            }
            match check(libc::syscall(
                libc::SYS_inotify_add_watch,
                notify,
                path,
                libc::IN_CLOSE,
            )) {
                #[allow(clippy::cast_possible_truncation)]
                Ok(w) => wd = w as c_int,
                Err(e) => {
                    libc::close(notify);
                    return Err(e);
                }
            }
        }
        let done = |r: Result<c_int, c_int>| {
            if notify >= 0 {
                libc::close(notify);
            }
            r
        };
        loop {
            if notify >= 0 {
                flush_fd(notify);
            }
            let fd = match open_terminal(path, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) {
                Ok(fd) => fd,
                Err(e) => return done(Err(e)),
            };
            sighup(libc::SIG_IGN);
            let r = libc::ioctl(fd, libc::TIOCSCTTY, c_int::from(mode == TtyAcquire::Force));
            let e = errno();
            sighup(libc::SIG_IGN);
            sighup(libc::SIG_DFL);
            if r >= 0 {
                return done(Ok(fd));
            }
            if e != libc::EPERM || mode != TtyAcquire::Wait {
                libc::close(fd);
                return done(Err(e));
            }
            // Wait until someone closes the terminal.
            let mut buf = [0u8; 4096];
            loop {
                let n = libc::read(notify, buf.as_mut_ptr().cast(), buf.len());
                if n < 0 {
                    let e = errno();
                    if e == libc::EINTR || e == libc::EAGAIN {
                        continue;
                    }
                    libc::close(fd);
                    return done(Err(e));
                }
                let n = n.unsigned_abs();
                let mut off = 0;
                let mut bad = false;
                let header = size_of::<libc::inotify_event>();
                while off + header <= n {
                    let ev: libc::inotify_event = ptr::read_unaligned(buf.as_ptr().add(off).cast());
                    if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                        break;
                    }
                    if ev.wd != wd || ev.mask & libc::IN_CLOSE == 0 {
                        bad = true;
                        break;
                    }
                    off += header + ev.len as usize;
                }
                if bad {
                    libc::close(fd);
                    return done(Err(libc::EIO));
                }
                break;
            }
            libc::close(fd);
        }
    }
}

/// systemd's `exec_context_tty_reset()`: the terminal reset of `TTYReset=`
/// (without the ANSI sequences systemd also sends to non-pty terminals),
/// `TTYVHangup=` and `TTYVTDisallocate=`. Everything is best effort.
///
/// # Safety
/// `path` and `tty0` are NUL-terminated strings. Only raw syscalls on fds
/// it opens itself, so the parent may call it too.
pub(super) unsafe fn reset_terminal(path: *const c_char, tty0: *const c_char, how: &TtyReset) {
    // SAFETY: (whole function) open/ioctl/write/close on our own fds, with a
    // termios on our stack.
    unsafe {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK;
        let Ok(fd) = open_terminal(path, flags) else {
            return;
        };
        if how.reset {
            libc::ioctl(fd, libc::TIOCNXCL);
            libc::ioctl(fd, KDSETMODE, KD_TEXT);
            libc::ioctl(fd, KDSKBMODE, c_long::from(how.keyboard_mode));
            let mut t: libc::termios = std::mem::zeroed();
            if libc::ioctl(fd, libc::TCGETS, &raw mut t) == 0 {
                t.c_iflag &= !(libc::IGNBRK
                    | libc::BRKINT
                    | libc::ISTRIP
                    | libc::INLCR
                    | libc::IGNCR
                    | libc::IUCLC);
                t.c_iflag |= libc::ICRNL | libc::IMAXBEL | libc::IUTF8;
                t.c_oflag |= libc::ONLCR | libc::OPOST;
                t.c_cflag |= libc::CREAD;
                t.c_lflag = libc::ISIG
                    | libc::ICANON
                    | libc::IEXTEN
                    | libc::ECHO
                    | libc::ECHOE
                    | libc::ECHOK
                    | libc::ECHOCTL
                    | libc::ECHOKE;
                for (i, v) in [
                    (libc::VINTR, 0o3),
                    (libc::VQUIT, 0o34),
                    (libc::VERASE, 0o177),
                    (libc::VKILL, 0o25),
                    (libc::VEOF, 0o4),
                    (libc::VSTART, 0o21),
                    (libc::VSTOP, 0o23),
                    (libc::VSUSP, 0o32),
                    (libc::VLNEXT, 0o26),
                    (libc::VWERASE, 0o27),
                    (libc::VREPRINT, 0o22),
                    (libc::VEOL, 0),
                    (libc::VEOL2, 0),
                    (libc::VTIME, 0),
                    (libc::VMIN, 1),
                ] {
                    if let Some(c) = t.c_cc.get_mut(i) {
                        *c = v;
                    }
                }
                libc::ioctl(fd, libc::TCSETS, &raw const t);
            }
            libc::ioctl(fd, libc::TCFLSH, libc::TCIOFLUSH);
        }
        if how.vhangup {
            libc::ioctl(fd, libc::TIOCVHANGUP);
        }
        libc::close(fd);
        if !how.vt_disallocate {
            return;
        }
        if let Some(vt) = how.vt.filter(|v| *v > 0) {
            let Ok(console) = open_terminal(tty0, flags) else {
                return;
            };
            let r = libc::ioctl(console, VT_DISALLOCATE, c_long::from(vt));
            let e = errno();
            libc::close(console);
            if r >= 0 || e != libc::EBUSY {
                return;
            }
        }
        // Not a virtual console, or the active one: clear it instead.
        let Ok(fd) = open_terminal(
            path,
            libc::O_WRONLY | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK,
        ) else {
            return;
        };
        let clear = b"\x1b[r\x1b[H\x1b[3J\x1bc";
        let mut done = 0;
        for _ in 0..10 {
            let rest = clear.get(done..).unwrap_or(&[]);
            if rest.is_empty() {
                break;
            }
            let n = libc::write(fd, rest.as_ptr().cast(), rest.len());
            if n > 0 {
                done += n.unsigned_abs();
                continue;
            }
            if errno() != libc::EAGAIN {
                break;
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            libc::poll(&raw mut pfd, 1, 10);
        }
        libc::close(fd);
    }
}

/// systemd's `chown_terminal()`: a terminal on `fd` is given to `uid` with
/// mode 0620, unless it already is.
///
/// # Safety
/// Child only.
unsafe fn chown_terminal(fd: c_int, uid: u32) -> Result<(), c_int> {
    // SAFETY: fstat/fchown/fchmod on our own fd; `st` is plain data.
    unsafe {
        if !is_tty(fd) {
            return Ok(());
        }
        let mut st: libc::stat = std::mem::zeroed();
        check_int(libc::fstat(fd, &raw mut st))?;
        if st.st_uid != uid {
            check_int(libc::fchown(fd, uid, u32::MAX))?;
        }
        if st.st_mode & 0o7777 != 0o620 {
            check_int(libc::fchmod(fd, 0o620))?;
        }
    }
    Ok(())
}

/// Writes `text` to the file at `path` (e.g. `/proc/self/oom_score_adj`).
///
/// # Safety
/// Child only; `path` is a NUL-terminated string.
unsafe fn write_file(path: *const c_char, text: &[u8]) -> Result<(), c_int> {
    // SAFETY: open/write/close with a valid path and the slice's own length.
    unsafe {
        let fd = check_int(libc::open(path, libc::O_WRONLY | libc::O_CLOEXEC))?;
        let written = libc::write(fd, text.as_ptr().cast(), text.len());
        let e = errno();
        libc::close(fd);
        if written < 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// Writes `LISTEN_PID=<pid>` and, where pidfds have stable inode ids,
/// `LISTEN_PIDFDID=<id>` into the reserved slots; otherwise the
/// `LISTEN_PIDFDID` envp entry becomes the terminating NULL.
///
/// # Safety
/// Child only; the slot buffers have `slot.len` bytes and `envp` has at
/// least `slot.envp_index + 3` entries.
unsafe fn fill_listen_pid(slot: &ListenPidSlot, envp: *mut *const c_char) {
    // SAFETY: the buffers and envp entries are the ones `spawn` reserved for
    // exactly this; nothing else reads them until execve.
    unsafe {
        let pid = libc::syscall(libc::SYS_getpid);
        let pid_buf = std::slice::from_raw_parts_mut(slot.pid_buf, slot.len);
        write_entry(pid_buf, b"LISTEN_PID=", pid.unsigned_abs());

        let id = if slot.pidfdid {
            pidfd_inode_id(pid)
        } else {
            None
        };
        let pidfdid_buf = std::slice::from_raw_parts_mut(slot.pidfdid_buf, slot.len);
        match id {
            Some(id) if write_entry(pidfdid_buf, b"LISTEN_PIDFDID=", id) => {}
            _ => *envp.add(slot.envp_index + 1) = ptr::null(),
        }
    }
}

/// The inode number of a pidfd for `pid`, if pidfds live on pidfs.
///
/// # Safety
/// Child only.
unsafe fn pidfd_inode_id(pid: c_long) -> Option<u64> {
    // SAFETY: pidfd_open returns a new fd that we close below; fstatfs and
    // fstat write only into plain-data structs on our stack.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if fd < 0 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        let fd = fd as c_int;
        let mut fs: libc::statfs = std::mem::zeroed();
        let mut st: libc::stat = std::mem::zeroed();
        // f_type is i64 with glibc, u64 with musl, narrower elsewhere.
        #[allow(
            clippy::useless_conversion,
            clippy::unnecessary_cast,
            clippy::cast_possible_wrap
        )]
        let on_pidfs = |fs: &libc::statfs| fs.f_type as i64 == PID_FS_MAGIC;
        let id = if libc::fstatfs(fd, &raw mut fs) == 0
            && on_pidfs(&fs)
            && libc::fstat(fd, &raw mut st) == 0
        {
            Some(st.st_ino)
        } else {
            None
        };
        libc::close(fd);
        id
    }
}

/// Writes `prefix` + decimal `value` + NUL into `buf`; false if it does not
/// fit. No allocation, no panics.
pub(super) fn write_entry(buf: &mut [u8], prefix: &[u8], value: u64) -> bool {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut v = value;
    loop {
        start -= 1;
        if let Some(d) = digits.get_mut(start) {
            #[allow(clippy::cast_possible_truncation)]
            {
                *d = b'0' + (v % 10) as u8;
            }
        }
        v /= 10;
        if v == 0 || start == 0 {
            break;
        }
    }
    let digits = digits.get(start..).unwrap_or(&[]);
    let total = prefix.len() + digits.len() + 1;
    let Some(out) = buf.get_mut(..total) else {
        return false;
    };
    let (head, tail) = out.split_at_mut(prefix.len());
    head.copy_from_slice(prefix);
    let (number, nul) = tail.split_at_mut(digits.len());
    number.copy_from_slice(digits);
    nul.fill(0);
    true
}

/// Blocks every signal in the calling thread for its lifetime, so that no
/// handler of flint's runs in the child (which shares flint's memory) before
/// the child resets dispositions. Restores the previous mask on drop.
pub(super) struct SignalsBlocked {
    old: libc::sigset_t,
}

impl SignalsBlocked {
    pub(super) fn new() -> Self {
        // SAFETY: sigset_t is plain data; sigfillset initialises `all`,
        // pthread_sigmask writes the previous mask into `old`.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&raw mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &raw const all, &raw mut old);
            SignalsBlocked { old }
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`, read from our own field.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &raw const self.old, ptr::null_mut());
        }
    }
}

/// `struct clone_args` of `clone3(2)`, up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `CLONE_CLEAR_SIGHAND` (Linux 5.5): the child starts with every handled
/// signal back at the default, which spares it a `sigaction` per handler.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// Set once the kernel refused `CLONE_CLEAR_SIGHAND`.
static NO_CLEAR_SIGHAND: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `clone3(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)`, with `CLONE_INTO_CGROUP`
/// when `cgroup_fd` is given (the child starts in that cgroup) and
/// `CLONE_PARENT_SETTID` when `parent_tid` is (the kernel stores the child's
/// pid there before the child runs). Moving a running process into a cgroup
/// (a write to `cgroup.procs`) waits for an RCU grace period on an idle
/// machine, several milliseconds on every cold start; a child created there
/// costs a fork's worth. Signals must be blocked by the caller.
/// `ENOSYS`/`EINVAL`/`E2BIG` mean the kernel (or this architecture) cannot,
/// and the caller falls back to `clone()`.
pub(super) fn clone3(
    ctx: &mut ChildContext<'_>,
    stack: &Stack,
    cgroup_fd: Option<c_int>,
    parent_tid: Option<&std::sync::atomic::AtomicI32>,
) -> io::Result<(i32, Option<std::os::fd::OwnedFd>)> {
    let mut pidfd: c_int = -1;
    let mut flags = (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) as u64;
    let clear_handlers = !NO_CLEAR_SIGHAND.load(std::sync::atomic::Ordering::Relaxed);
    if clear_handlers {
        flags |= CLONE_CLEAR_SIGHAND;
        ctx.reset_signals = ctx.signals.ignored;
    } else {
        ctx.reset_every_signal();
    }
    let mut cgroup = 0;
    if let Some(fd) = cgroup_fd {
        flags |= CLONE_INTO_CGROUP;
        cgroup = u64::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    }
    let mut tid_ptr = 0;
    if let Some(slot) = parent_tid {
        flags |= libc::CLONE_PARENT_SETTID as u64;
        tid_ptr = slot.as_ptr() as u64;
    }
    let mut args = CloneArgs {
        flags,
        pidfd: ptr::from_mut(&mut pidfd) as u64,
        parent_tid: tid_ptr,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.low() as u64,
        stack_size: STACK_SIZE as u64,
        cgroup,
        ..CloneArgs::default()
    };
    let arg: *mut c_void = ptr::from_mut(ctx).cast();
    // SAFETY: as for clone() in `clone_child`: the child runs `entry` on
    // `stack`, a separate mapping that outlives its use (CLONE_VFORK
    // suspends us until the child execs or exits); `arg` points to `ctx`
    // on our suspended frame; `args`, `pidfd` and the `parent_tid` slot
    // (an atomic the kernel writes an i32 into) live across the call.
    let mut ret =
        unsafe { raw_clone3(&raw mut args, std::mem::size_of::<CloneArgs>(), entry, arg) };
    if ret == -c_long::from(libc::EINVAL) && clear_handlers {
        // Linux 5.3 and 5.4 have clone3() without CLONE_CLEAR_SIGHAND: the
        // child resets every handler itself, and from now on when that
        // works.
        args.flags &= !CLONE_CLEAR_SIGHAND;
        ctx.reset_every_signal();
        // SAFETY: as above; the failed call created no child.
        ret = unsafe { raw_clone3(&raw mut args, std::mem::size_of::<CloneArgs>(), entry, arg) };
        if ret >= 0 {
            NO_CLEAR_SIGHAND.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    if ret < 0 {
        let errno = c_int::try_from(-ret).unwrap_or(libc::EINVAL);
        return Err(io::Error::from_raw_os_error(errno));
    }
    let pid = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let pidfd = (pidfd >= 0).then(|| {
        // SAFETY: the kernel just created this fd for us (CLONE_PIDFD).
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd) }
    });
    Ok((pid, pidfd))
}

/// The `clone3` system call with a child entry point, as glibc's
/// `__clone3`: the child returns from the system call on its new stack,
/// where it may not touch the caller's frame, so it calls `f(arg)` straight
/// from the assembly and exits with its result. Returns the child's pid or
/// `-errno` in the parent; `-ENOSYS` on architectures without a trampoline
/// here (the caller falls back to `clone()`).
///
/// # Safety
/// `args` must be a valid `clone_args` of `size` bytes whose stack is a
/// 16-byte aligned mapping the child may use; `f` must not return into
/// anything but this trampoline (it may return: the child then exits).
#[allow(unused_variables, clippy::needless_return)]
unsafe fn raw_clone3(
    args: *mut CloneArgs,
    size: usize,
    f: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> c_long {
    #[cfg(target_arch = "x86_64")]
    {
        let ret: c_long;
        // SAFETY: the caller's contract. The parent gets rax back with only
        // the registers the syscall instruction clobbers (rcx, r11) changed;
        // the child never leaves the block: it calls `f` on its own stack
        // (rbp cleared for unwinders) and exits.
        unsafe {
            std::arch::asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                "xor ebp, ebp",
                "mov rdi, r9",
                "call r8",
                "mov edi, eax",
                "mov eax, 60",
                "syscall",
                "ud2",
                "2:",
                inlateout("rax") libc::SYS_clone3 => ret,
                in("rdi") args,
                in("rsi") size,
                in("r8") f,
                in("r9") arg,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        return ret;
    }
    #[cfg(target_arch = "aarch64")]
    {
        let ret: usize;
        // SAFETY: the caller's contract. `svc` preserves every register but
        // x0 in the parent; the child calls `f` on its own stack (frame
        // pointer and link register cleared) and exits.
        unsafe {
            std::arch::asm!(
                "svc #0",
                "cbnz x0, 2f",
                "mov x29, xzr",
                "mov x30, xzr",
                "mov x0, x3",
                "blr x2",
                "mov x8, #93",
                "svc #0",
                "brk #1",
                "2:",
                inlateout("x0") args as usize => ret,
                in("x1") size,
                in("x2") f,
                in("x3") arg,
                in("x8") libc::SYS_clone3,
                options(nostack),
            );
        }
        return ret as c_long;
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        return -c_long::from(libc::ENOSYS);
    }
}

/// The child's stack: an anonymous mapping with a PROT_NONE guard page at
/// its low end, so an overflow faults instead of writing into flint's heap.
pub(super) struct Stack {
    base: *mut c_void,
    len: usize,
}

// SAFETY: a `Stack` owns its mapping alone (nothing else holds `base`);
// it is used by one spawn at a time, on whichever thread takes it.
unsafe impl Send for Stack {}

/// Stacks of finished spawns, kept for the next ones: a fresh mapping per
/// spawn costs an `mmap`, an `mprotect`, page faults and an `munmap` whose
/// TLB shootdown interrupts every CPU running flint. A spawn is synchronous
/// on its thread (`CLONE_VFORK` returns once the child has exec'd or
/// exited), so as many stacks serve as spawns run at once; they outlive the
/// threads that used them (a thread with no spawns to run leaves).
static SPARE_STACKS: std::sync::Mutex<Vec<Stack>> = std::sync::Mutex::new(Vec::new());

/// At most this many spare stacks are kept (more spawns at once than this
/// are rare: one thread per CPU runs them).
const SPARE_STACKS_KEPT: usize = 8;

/// Bytes at the top of a stack made ahead ([`Stack::make_spare`]) that are
/// touched at once, so that the first child does not fault them in: more
/// than a child uses before its `execve`.
const STACK_TOUCHED: usize = 16 * 1024;

impl Stack {
    /// A spare stack, or a new one.
    pub(super) fn take() -> io::Result<Stack> {
        match spare_stacks().pop() {
            Some(stack) => Ok(stack),
            None => Stack::new(),
        }
    }

    /// Keeps the stack for a later spawn. Only once no child runs on it
    /// any more.
    pub(super) fn put_back(self) {
        let mut spare = spare_stacks();
        if spare.len() < SPARE_STACKS_KEPT {
            spare.push(self);
        }
    }

    /// Makes a spare stack ahead of the first spawn, its top pages touched,
    /// unless one is kept already.
    pub(super) fn make_spare() -> io::Result<()> {
        if !spare_stacks().is_empty() {
            return Ok(());
        }
        let stack = Stack::new()?;
        let top = stack.top().cast::<u8>();
        for offset in (1..=STACK_TOUCHED / 4096).map(|page| page * 4096) {
            // SAFETY: STACK_TOUCHED is far below STACK_SIZE: the byte lies
            // inside the mapping, above its guard page; nothing else uses it.
            unsafe { top.sub(offset).write_volatile(0) };
        }
        stack.put_back();
        Ok(())
    }

    pub(super) fn new() -> io::Result<Stack> {
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = usize::try_from(page).unwrap_or(4096).max(4096);
        let len = STACK_SIZE + page;
        // SAFETY: a fresh anonymous private mapping; no existing memory is
        // affected.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base, len };
        // SAFETY: the first page lies inside the mapping we just created.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The lowest usable address (above the guard page): `top() - STACK_SIZE`.
    pub(super) fn low(&self) -> *mut c_void {
        // SAFETY: inside our own mapping, STACK_SIZE below its end.
        unsafe { self.top().cast::<u8>().sub(STACK_SIZE).cast() }
    }

    /// The initial stack pointer (stacks grow down), page aligned.
    pub(super) fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of our own mapping.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`; the child no
        // longer runs on it (CLONE_VFORK returned).
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

fn spare_stacks() -> std::sync::MutexGuard<'static, Vec<Stack>> {
    SPARE_STACKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The ignored signals are looked at once and trusted from then on; the
    /// handlers a child made by `clone()` needs are looked at again after
    /// [`HANDLERS_FRESH`].
    #[test]
    fn a_look_at_the_dispositions_is_reused_unless_handlers_must_be_fresh() {
        let old = SignalsToReset { all: 1, ignored: 1 };
        let new = SignalsToReset { all: 3, ignored: 3 };
        let start = Instant::now();
        let mut last = Some((start, old));
        let later = start + HANDLERS_FRESH + Duration::from_hours(1);
        let unread = || -> SignalsToReset { panic!("read again") };
        assert_eq!(look_or_reuse(&mut last, later, None, unread), old);
        assert_eq!(
            look_or_reuse(&mut last, start, Some(HANDLERS_FRESH), unread),
            old,
            "fresh enough"
        );
        assert_eq!(
            look_or_reuse(&mut last, later, Some(HANDLERS_FRESH), || new),
            new
        );
        assert_eq!(last, Some((later, new)), "the new look is kept");
        let mut none = None;
        assert_eq!(look_or_reuse(&mut none, start, None, || new), new);
    }
}
