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
//! Order of the steps (systemd's order in `exec_invoke()`): reset signal
//! dispositions, `setsid`, stdio and passed fds (then close everything else),
//! OOM score, nice, rlimits, umask, chroot, setgroups, setresgid, setresuid,
//! chdir, no-new-privileges, `LISTEN_PID`, clear the signal mask, execve.

use std::ffi::{c_char, c_int, c_long, c_void};
use std::io;
use std::ptr;

use super::{ChildStep, PassFd, Stdio};

/// Size of the (step, errno) report written to the report pipe.
pub(super) const REPORT_LEN: usize = 8;

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
}
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
mod cred_sys {
    pub const SETGROUPS: libc::c_long = libc::SYS_setgroups;
    pub const SETRESGID: libc::c_long = libc::SYS_setresgid;
    pub const SETRESUID: libc::c_long = libc::SYS_setresuid;
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
    pub no_new_privileges: bool,
    pub report_fd: c_int,
}

type Failure = (ChildStep, c_int);

pub(super) fn decode_report(buf: [u8; REPORT_LEN]) -> (u32, i32) {
    (
        u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]),
        i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]),
    )
}

/// The child's entry point, called by `clone()` on the child's stack.
pub(super) extern "C" fn entry(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `&mut ChildContext` that `clone_child` passed; it
    // stays valid and unaliased by writes while the parent is suspended.
    let ctx = unsafe { &*arg.cast::<ChildContext<'_>>() };
    let mut report_fd = ctx.report_fd;
    // SAFETY: we are the freshly cloned child described in the module docs;
    // `setup_and_exec` only returns on failure.
    let (step, errno) = unsafe { setup_and_exec(ctx, &mut report_fd) };
    let mut buf = [0u8; REPORT_LEN];
    let (a, b) = buf.split_at_mut(4);
    a.copy_from_slice(&(step as u32).to_ne_bytes());
    b.copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: write reads REPORT_LEN bytes from `buf`; a short or failed write
    // only loses the detail, the exit code still tells the step.
    unsafe {
        libc::write(report_fd, buf.as_ptr().cast(), buf.len());
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
unsafe fn setup_and_exec(ctx: &ChildContext<'_>, report_fd: &mut c_int) -> Failure {
    // SAFETY: (whole function) every call below is a raw syscall or an
    // async-signal-safe libc wrapper, given pointers that `spawn` prepared and
    // keeps alive: NUL-terminated C strings, NULL-terminated pointer arrays,
    // slices with their true lengths.
    unsafe {
        reset_signal_dispositions(ctx.ignore_sigpipe);

        if ctx.new_session
            && let Err(e) = check(libc::syscall(libc::SYS_setsid))
        {
            return (ChildStep::Setsid, e);
        }

        if let Err(failure) = place_fds(ctx, report_fd) {
            return failure;
        }

        if let Some(text) = ctx.oom_text
            && let Err(e) = write_file(ctx.oom_path, text)
        {
            return (ChildStep::OomScoreAdjust, e);
        }

        if let Some(nice) = ctx.nice
            && let Err(e) = check(libc::syscall(
                libc::SYS_setpriority,
                libc::PRIO_PROCESS,
                0,
                nice,
            ))
        {
            return (ChildStep::Nice, e);
        }

        for (resource, limit) in ctx.rlimits {
            if let Err(e) = check(libc::syscall(
                libc::SYS_prlimit64,
                0,
                *resource,
                ptr::from_ref(limit),
                ptr::null_mut::<libc::rlimit64>(),
            )) {
                return (ChildStep::Limits, e);
            }
        }

        libc::syscall(libc::SYS_umask, ctx.umask);

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
        if let Some(uid) = ctx.uid
            && let Err(e) = check(libc::syscall(cred_sys::SETRESUID, uid, uid, uid))
        {
            return (ChildStep::Setuid, e);
        }

        if let Some(cwd) = ctx.cwd
            && let Err(e) = check(libc::syscall(libc::SYS_chdir, cwd))
            && !ctx.cwd_optional
        {
            return (ChildStep::Chdir, e);
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

        libc::syscall(libc::SYS_execve, ctx.path, ctx.argv, ctx.envp);
        (ChildStep::Exec, errno())
    }
}

/// Every signal back to its default action (SIGPIPE ignored if asked), so
/// nothing of flint's handlers or ignores survives into the service. The mask
/// stays blocked until just before exec.
///
/// # Safety
/// Child only.
unsafe fn reset_signal_dispositions(ignore_sigpipe: bool) {
    // SAFETY: `sigaction` is plain data; all-zero is SIG_DFL, no flags, an
    // empty mask.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    for signal in 1..KERNEL_NSIG {
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

/// Places stdio and passed fds, then closes every fd from `first_free` up
/// except the report pipe (which is close-on-exec).
///
/// Sources may overlap targets (passing fd 4 then fd 3), so every source is
/// first copied above the target range with `F_DUPFD_CLOEXEC`, then `dup3`'d
/// into place, which also clears `FD_CLOEXEC` on the target.
///
/// # Safety
/// Child only; `ctx.high_fds` has room for `ctx.pass_fds.len()` entries.
unsafe fn place_fds(ctx: &ChildContext<'_>, report_fd: &mut c_int) -> Result<(), Failure> {
    let base = ctx.first_free;
    let fds_failed = |e| (ChildStep::Fds, e);

    // SAFETY: (whole function) fcntl/dup3/open/close/fstat on integer fds and
    // the prepared /dev/null path; `high_fds.add(i)` stays within the
    // parent's array of pass_fds.len() entries.
    unsafe {
        *report_fd = check_int(libc::fcntl(*report_fd, libc::F_DUPFD_CLOEXEC, base))
            .map_err(fds_failed)? as c_int;

        for (i, pass) in ctx.pass_fds.iter().enumerate() {
            let high =
                check_int(libc::fcntl(pass.fd, libc::F_DUPFD_CLOEXEC, base)).map_err(fds_failed)?;
            *ctx.high_fds.add(i) = high;
        }

        let mut stdio_high: [c_int; 3] = [-1; 3];
        for (target, (stdio, high)) in ctx.stdio.iter().zip(stdio_high.iter_mut()).enumerate() {
            let step = stdio_step(target);
            match *stdio {
                Stdio::Inherit => {}
                Stdio::Fd(source) => {
                    *high = check_int(libc::fcntl(source, libc::F_DUPFD_CLOEXEC, base))
                        .map_err(|e| (step, e))?;
                }
                Stdio::Null => {
                    let fd = check_int(libc::open(
                        ctx.dev_null,
                        libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOCTTY,
                    ))
                    .map_err(|e| (step, e))?;
                    let moved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, base);
                    let moved_errno = errno();
                    libc::close(fd);
                    if moved < 0 {
                        return Err((step, moved_errno));
                    }
                    *high = moved;
                }
            }
        }

        for (target, (stdio, high)) in ctx.stdio.iter().zip(stdio_high.iter()).enumerate() {
            if *high < 0 {
                continue;
            }
            let step = stdio_step(target);
            #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
            let target = target as c_int;
            check_int(libc::dup3(*high, target, 0)).map_err(|e| (step, e))?;
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

        close_from(base, *report_fd).map_err(fds_failed)
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

/// Closes every fd >= `low` except `keep` (which is >= `low`). Uses
/// `close_range` (Linux 5.9+), falling back to a loop up to the fd limit.
///
/// # Safety
/// Child only.
unsafe fn close_from(low: c_int, keep: c_int) -> Result<(), c_int> {
    #[allow(clippy::cast_sign_loss)]
    let (low_u, keep_u) = (low as u32, keep as u32);
    // SAFETY: close_range only closes fds of this (child) process.
    let ranged = unsafe {
        let below = if keep_u > low_u {
            check(libc::syscall(
                libc::SYS_close_range,
                low_u,
                keep_u - 1,
                0u32,
            ))
        } else {
            Ok(0)
        };
        below.and_then(|_| {
            check(libc::syscall(
                libc::SYS_close_range,
                keep_u + 1,
                u32::MAX,
                0u32,
            ))
        })
    };
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
                if fd != keep {
                    // SAFETY: closing an fd of this process; EBADF is expected
                    // for numbers that are not open.
                    unsafe {
                        libc::close(fd);
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
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

        let id = pidfd_inode_id(pid);
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
        // f_type is i64 here but a narrower type on some architectures.
        #[allow(clippy::useless_conversion)]
        let on_pidfs = |fs: &libc::statfs| i64::from(fs.f_type) == PID_FS_MAGIC;
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

/// The child's stack: an anonymous mapping with a PROT_NONE guard page at
/// its low end, so an overflow faults instead of writing into flint's heap.
pub(super) struct Stack {
    base: *mut c_void,
    len: usize,
}

impl Stack {
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
