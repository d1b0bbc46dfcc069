//! Starting service processes: an [`ExecPlan`] in, a running [`Child`] out.
//!
//! This is the only place in flint with unsafe process code. Everything the
//! new process needs (argv, envp, the fd map, credentials, limits, working
//! directory) is built in the parent before the child exists. The child is
//! created with `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD)` on its
//! own guard-paged stack, so spawning costs the same however large flint's
//! address space is (reference §10). Because the child shares flint's memory,
//! it runs only async-signal-safe raw syscalls: no allocation, no locks, no
//! glibc credential wrappers. It places the passed fds at 3, 4, … without
//! CLOEXEC, closes every other fd, writes `LISTEN_PID=` (and `LISTEN_PIDFDID=`
//! where the kernel has pidfd inode ids) with its own pid into a slot reserved
//! in the environment, and execs. A failure before exec is left as (step,
//! errno) in a report in the parent's memory, which the parent reads once
//! the child is gone from it (`CLONE_VFORK`), as glibc's `posix_spawn` does;
//! the child then exits with systemd's exit code for that step (200/CHDIR,
//! 203/EXEC, 217/USER, …), and [`spawn`] returns [`SpawnError::Child`] after
//! reaping it.
//!
//! The process attributes of systemd's execution environment are applied in
//! the child in `exec_invoke()`'s order, each failure with systemd's exit
//! code: the terminal reset of `TTYReset=`/`TTYVHangup=`/`TTYVTDisallocate=`
//! right after `setsid()`, the terminal of `StandardInput=tty*` acquired as
//! controlling terminal while placing stdio, then `OOMScoreAdjust=`,
//! `CoredumpFilter=`, the CPU scheduling policy, `Nice=`, `CPUAffinity=`,
//! the I/O priority, `TimerSlackNSec=`, `Personality=`, the terminal's
//! owner, the resource limits, and `SecureBits=` after the user switch.
//!
//! Promises: [`spawn`] never leaves a zombie behind when it returns an error;
//! on success the caller owns the child through its pidfd and reaps it with
//! [`Child::try_wait`], [`Child::wait`] or [`Child::wait_blocking`].

mod child;
mod cpu;
mod namespace;
mod resolve;
#[cfg(test)]
pub(crate) mod tests;

use std::ffi::{CString, c_int, c_void};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

pub use namespace::{
    ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY, MountOp, NamespacePlan,
    SLOTS as NAMESPACE_SLOTS, make_run_namespaces, make_user_namespace,
};
pub use resolve::{default_path, resolve_executable};

use child::{ChildContext, ListenPidSlot, PidSlot};

/// Everything needed to start one process, prepared by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPlan {
    /// Absolute path of the executable, already resolved.
    pub path: CString,
    /// `argv`, including `argv[0]`.
    pub argv: Vec<CString>,
    /// The environment as `K=V` entries, in order.
    pub env: Vec<CString>,
    /// Add `LISTEN_PID=<the child's own pid>` (and `LISTEN_PIDFDID=` where the
    /// kernel gives pidfd inode ids) after `env`. Entries for these two names in
    /// `env` are dropped when this is set, so the value is always the pid that
    /// execs the service.
    pub listen_pid_slot: bool,
    /// With [`Self::listen_pid_slot`]: whether `LISTEN_PIDFDID=` is set
    /// too (not when `UnsetEnvironment=` names it).
    pub listen_pidfdid: bool,
    /// fds placed at 3, 4, … in this order, with `FD_CLOEXEC` cleared.
    pub fds: Vec<PassFd>,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// Working directory, applied after the user switch (the directory may
    /// only be reachable by the service's user). `None` keeps flint's.
    pub cwd: Option<CString>,
    /// `WorkingDirectory=-…`: a failing `chdir` is not fatal.
    pub cwd_optional: bool,
    pub umask: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Supplementary groups. `None` with `uid` or `gid` set clears flint's own
    /// supplementary groups, so a service never keeps root's groups by accident;
    /// `None` without a credential change leaves them alone.
    pub groups: Option<Vec<u32>>,
    /// `(resource, soft, hard)` as for `prlimit(2)`; `u64::MAX` is infinity.
    pub rlimits: Vec<(i32, u64, u64)>,
    pub nice: Option<i32>,
    pub oom_score_adjust: Option<i32>,
    /// `setsid()` in the child (systemd always does this).
    pub new_session: bool,
    /// Ignore SIGPIPE in the child (`IgnoreSIGPIPE=`, default yes). All other
    /// dispositions are reset to default and the signal mask is cleared.
    pub ignore_sigpipe: bool,
    pub no_new_privileges: bool,
    /// `RootDirectory=`: `chroot` followed by `chdir("/")`, before `cwd`.
    pub chroot: Option<CString>,
    /// Variables the child sets to its own pid (`SYSTEMD_EXEC_PID`,
    /// `WATCHDOG_PID`), added after `env`.
    pub pid_vars: Vec<CString>,
    /// The terminal of [`Stdio::TtyInput`], [`Stdio::TtyOutput`] and
    /// [`ExecPlan::tty_reset`] (`TTYPath=`, default `/dev/console`).
    pub tty_path: Option<CString>,
    /// What is done to `tty_path` right after `setsid()`.
    pub tty_reset: TtyReset,
    /// `chown`/`chmod 0620` the terminal on stdin to this user, as systemd
    /// does for `User=`.
    pub tty_owner: Option<u32>,
    /// `CoredumpFilter=`, written to `/proc/self/coredump_filter`.
    pub coredump_filter: Option<u64>,
    /// `CPUSchedulingPolicy=`/`CPUSchedulingPriority=`/`CPUSchedulingResetOnFork=`.
    pub cpu_sched: Option<CpuSched>,
    /// `CPUAffinity=` as `sched_setaffinity(2)` mask words.
    pub cpu_affinity: Option<Vec<u64>>,
    /// `IOSchedulingClass=`/`IOSchedulingPriority=` as `ioprio_set(2)` takes it.
    pub ioprio: Option<i32>,
    /// `TimerSlackNSec=`.
    pub timer_slack_nsec: Option<u64>,
    /// A signal the child gets when the thread that spawned it ends
    /// (`PR_SET_PDEATHSIG`; systemd's `FORK_DEATHSIG_SIGTERM`). A parent
    /// gone before the child could ask for it sends it at once.
    pub parent_death_signal: Option<i32>,
    /// `Personality=` as `personality(2)` takes it.
    pub personality: Option<u64>,
    /// `SecureBits=` (0 when unset): set after the user switch when they
    /// differ from the current ones. `None` leaves them alone (`+` commands).
    pub secure_bits: Option<u32>,
    /// `CapabilityBoundingSet=` as a mask of capability numbers; the others
    /// are dropped from the bounding set before the user switch. `None`
    /// keeps it (all, or `+` commands).
    pub capability_bounding_set: Option<u64>,
    /// `AmbientCapabilities=` as a mask (0: none): raised before the user
    /// switch, kept through it and raised again after, as systemd does.
    pub ambient_capabilities: u64,
    /// The highest capability number the kernel knows
    /// (`/proc/sys/kernel/cap_last_cap`).
    pub cap_last_cap: u32,
    /// The directory of the service's cgroup v2. The child is created in it
    /// (`clone3` with `CLONE_INTO_CGROUP`), or where the kernel lacks that
    /// (before 5.7), moves itself there first by writing `0` to its
    /// `cgroup.procs`; either way everything it starts stays in the cgroup.
    pub cgroup: Option<CString>,
    /// `cgroup.procs` files of cgroup v1 hierarchies (the `pids` one, for
    /// `TasksMax=` on hosts whose controllers are on v1) that the child
    /// joins right after its v2 cgroup, before anything else runs.
    pub legacy_cgroups: Vec<CString>,
    /// The sandbox's namespaces (`PrivateTmp=`, `ProtectSystem=`,
    /// `PrivateNetwork=`, ...), entered after the resource limits.
    pub namespace: Option<NamespacePlan>,
    /// Seccomp filters, loaded in order as the last step before exec.
    pub seccomp: Vec<Vec<BpfInsn>>,
    /// `KeyringMode=private|shared` (`None`: `inherit`).
    pub keyring: Option<Keyring>,
}

/// A session keyring of the service's own (`KeyringMode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyring {
    /// `shared`: the user keyring linked into it.
    pub shared: bool,
    /// The invocation id, stored in it as the key `invocation_id`.
    pub invocation_id: Option<[u8; 16]>,
}

/// One BPF instruction of a seccomp filter (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The "destructive" terminal reset systemd does right after `setsid()`, on
/// [`ExecPlan::tty_path`]; every part of it is best effort.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TtyReset {
    /// `TTYReset=`: exclusive mode off, text mode, default keyboard mode,
    /// sane termios, queues flushed.
    pub reset: bool,
    /// `TTYVHangup=`: `TIOCVHANGUP`, so earlier users of the terminal lose it.
    pub vhangup: bool,
    /// `TTYVTDisallocate=`: `VT_DISALLOCATE` of a virtual console, or at
    /// least clearing the screen and scrollback.
    pub vt_disallocate: bool,
    /// The virtual console number (`/dev/ttyN`), when the terminal is one.
    pub vt: Option<u32>,
    /// The keyboard mode for `KDSKBMODE` (`K_UNICODE` unless the kernel's
    /// VT default is not UTF-8).
    pub keyboard_mode: i32,
}

impl TtyReset {
    fn any(&self) -> bool {
        self.reset || self.vhangup || self.vt_disallocate
    }
}

/// A CPU scheduling policy for `sched_setattr(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSched {
    pub policy: u32,
    pub priority: u32,
    /// `SCHED_FLAG_RESET_ON_FORK`.
    pub reset_on_fork: bool,
}

/// How [`Stdio::TtyInput`] becomes the controlling process of its terminal
/// (systemd's `acquire_terminal()` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtyAcquire {
    /// `StandardInput=tty-fail`: fail when another session has it.
    Try,
    /// `StandardInput=tty`: wait until the other session closes it.
    Wait,
    /// `StandardInput=tty-force`: take it from another session.
    Force,
}

impl ExecPlan {
    /// A plan with systemd's defaults: empty environment, stdin `/dev/null`,
    /// stdout and stderr inherited, umask 0022, new session, SIGPIPE ignored.
    pub fn new(path: CString, argv: Vec<CString>) -> Self {
        ExecPlan {
            path,
            argv,
            env: Vec::new(),
            listen_pid_slot: false,
            listen_pidfdid: true,
            fds: Vec::new(),
            stdin: Stdio::Null,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            cwd: None,
            cwd_optional: false,
            umask: 0o022,
            uid: None,
            gid: None,
            groups: None,
            rlimits: Vec::new(),
            nice: None,
            oom_score_adjust: None,
            new_session: true,
            ignore_sigpipe: true,
            no_new_privileges: false,
            chroot: None,
            pid_vars: Vec::new(),
            tty_path: None,
            tty_reset: TtyReset::default(),
            tty_owner: None,
            coredump_filter: None,
            cpu_sched: None,
            cpu_affinity: None,
            ioprio: None,
            timer_slack_nsec: None,
            parent_death_signal: None,
            personality: None,
            secure_bits: None,
            capability_bounding_set: None,
            ambient_capabilities: 0,
            cap_last_cap: 40,
            cgroup: None,
            legacy_cgroups: Vec::new(),
            namespace: None,
            keyring: None,
            seccomp: Vec::new(),
        }
    }
}

/// One fd to pass at position 3 + index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassFd {
    /// The source fd; the caller keeps it open until [`spawn`] returns.
    pub fd: RawFd,
    /// `Some(v)`: set `O_NONBLOCK` to `v` (socket fds, per `NonBlocking=`).
    /// `None`: leave the flag as it is (fd-store fds). `O_NONBLOCK` lives on the
    /// open file description, so flint's copy changes too.
    pub nonblocking: Option<bool>,
}

/// Where one of fds 0, 1, 2 comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// `/dev/null`, opened read-only as stdin, write-only as output.
    Null,
    /// Keep flint's own fd.
    Inherit,
    /// A dup of this fd. A socket is made blocking first (inetd style,
    /// `StandardInput=socket`), as systemd does.
    Fd(RawFd),
    /// The terminal at [`ExecPlan::tty_path`], opened read-write and made
    /// the controlling terminal (`StandardInput=tty*`).
    TtyInput(TtyAcquire),
    /// The terminal at [`ExecPlan::tty_path`], opened write-only
    /// (`StandardOutput=tty`).
    TtyOutput,
    /// A copy of the child's own standard input once it is in place.
    SameAsStdin,
    /// A copy of the child's own standard output once it is in place.
    SameAsStdout,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    /// The exit code, if the child exited normally.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(code) => Some(code),
            ExitStatus::Signaled { .. } => None,
        }
    }

    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

impl ExitStatus {
    /// How it ended as `CLD_*` (1 exited, 2 killed, 3 dumped core) and the
    /// status or signal, as systemd's API gives it.
    pub fn cld(self) -> [i32; 2] {
        match self {
            ExitStatus::Exited(c) => [1, c],
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => [if core_dumped { 3 } else { 2 }, signal],
        }
    }

    /// The end [`ExitStatus::cld`] describes.
    pub fn from_cld(code: i32, value: i32) -> Option<ExitStatus> {
        match code {
            1 => Some(ExitStatus::Exited(value)),
            2 | 3 => Some(ExitStatus::Signaled {
                signal: value,
                core_dumped: code == 3,
            }),
            _ => None,
        }
    }

    /// As systemctl's `status` describes an ended process:
    /// `code=exited, status=1/FAILURE`, `code=killed, signal=HUP`,
    /// `code=dumped, signal=SEGV`.
    pub fn systemd_words(self) -> String {
        match self {
            ExitStatus::Exited(code) => {
                // systemctl names the libc and systemd statuses only (not
                // the LSB or BSD ones: `status=3`, not `3/NOTIMPLEMENTED`).
                let name = u8::try_from(code)
                    .ok()
                    .filter(|c| *c <= 1 || *c >= 200)
                    .and_then(crate::unit::value::exit_status::exit_status_name);
                match name {
                    Some(n) => format!("code=exited, status={code}/{n}"),
                    None => format!("code=exited, status={code}"),
                }
            }
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => {
                let name = nix::sys::signal::Signal::try_from(signal).map_or_else(
                    |_| signal.to_string(),
                    |s| s.as_str().trim_start_matches("SIG").to_string(),
                );
                let code = if core_dumped { "dumped" } else { "killed" };
                format!("code={code}, signal={name}")
            }
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exited with status {code}"),
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => {
                write!(f, "killed by signal {signal}")?;
                if *core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// The step of the child's setup that failed. Each maps to the exit code
/// systemd uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ChildStep {
    Setsid = 1,
    Stdin,
    Stdout,
    Stderr,
    Fds,
    OomScoreAdjust,
    Nice,
    Limits,
    Chroot,
    Groups,
    Setgid,
    Setuid,
    Chdir,
    NoNewPrivileges,
    SignalMask,
    Exec,
    CoredumpFilter,
    CpuScheduling,
    CpuAffinity,
    IoPriority,
    TimerSlack,
    Personality,
    TtyOwner,
    SecureBits,
    Cgroup,
    Capabilities,
    Namespace,
    Network,
    Seccomp,
    UserNamespace,
    Keyring,
}

impl ChildStep {
    const ALL: [ChildStep; 31] = [
        ChildStep::Setsid,
        ChildStep::Stdin,
        ChildStep::Stdout,
        ChildStep::Stderr,
        ChildStep::Fds,
        ChildStep::OomScoreAdjust,
        ChildStep::Nice,
        ChildStep::Limits,
        ChildStep::Chroot,
        ChildStep::Groups,
        ChildStep::Setgid,
        ChildStep::Setuid,
        ChildStep::Chdir,
        ChildStep::NoNewPrivileges,
        ChildStep::SignalMask,
        ChildStep::Exec,
        ChildStep::CoredumpFilter,
        ChildStep::CpuScheduling,
        ChildStep::CpuAffinity,
        ChildStep::IoPriority,
        ChildStep::TimerSlack,
        ChildStep::Personality,
        ChildStep::TtyOwner,
        ChildStep::SecureBits,
        ChildStep::Cgroup,
        ChildStep::Capabilities,
        ChildStep::Namespace,
        ChildStep::Network,
        ChildStep::Seccomp,
        ChildStep::UserNamespace,
        ChildStep::Keyring,
    ];

    /// systemd's exit code for a failure in this step (`exit-status.h`).
    pub fn exit_code(self) -> i32 {
        match self {
            ChildStep::Chdir => 200,
            ChildStep::Nice => 201,
            ChildStep::Fds => 202,
            ChildStep::Exec => 203,
            ChildStep::Limits | ChildStep::CoredumpFilter => 205,
            ChildStep::OomScoreAdjust => 206,
            ChildStep::SignalMask => 207,
            ChildStep::Stdin | ChildStep::TtyOwner => 208,
            ChildStep::Stdout => 209,
            ChildStep::Chroot => 210,
            ChildStep::IoPriority => 211,
            ChildStep::TimerSlack => 212,
            ChildStep::SecureBits => 213,
            ChildStep::CpuScheduling => 214,
            ChildStep::CpuAffinity => 215,
            ChildStep::Groups | ChildStep::Setgid => 216,
            ChildStep::Setuid | ChildStep::UserNamespace => 217,
            ChildStep::Capabilities => 218,
            ChildStep::Cgroup => 219,
            ChildStep::Setsid => 220,
            ChildStep::Stderr => 222,
            ChildStep::Network => 225,
            ChildStep::Namespace => 226,
            ChildStep::NoNewPrivileges => 227,
            ChildStep::Seccomp => 228,
            ChildStep::Personality => 230,
            ChildStep::Keyring => 237,
        }
    }

    /// systemd's short name of the exit code (`CHDIR`, `EXEC`, …).
    pub fn exit_code_name(self) -> &'static str {
        match self {
            ChildStep::Chdir => "CHDIR",
            ChildStep::Nice => "NICE",
            ChildStep::Fds => "FDS",
            ChildStep::Exec => "EXEC",
            ChildStep::Limits | ChildStep::CoredumpFilter => "LIMITS",
            ChildStep::OomScoreAdjust => "OOM_ADJUST",
            ChildStep::SignalMask => "SIGNAL_MASK",
            ChildStep::Stdin | ChildStep::TtyOwner => "STDIN",
            ChildStep::Stdout => "STDOUT",
            ChildStep::Chroot => "CHROOT",
            ChildStep::IoPriority => "IOPRIO",
            ChildStep::TimerSlack => "TIMERSLACK",
            ChildStep::SecureBits => "SECUREBITS",
            ChildStep::CpuScheduling => "SETSCHEDULER",
            ChildStep::CpuAffinity => "CPUAFFINITY",
            ChildStep::Groups | ChildStep::Setgid => "GROUP",
            ChildStep::Setuid | ChildStep::UserNamespace => "USER",
            ChildStep::Capabilities => "CAPABILITIES",
            ChildStep::Cgroup => "CGROUP",
            ChildStep::Setsid => "SETSID",
            ChildStep::Stderr => "STDERR",
            ChildStep::Network => "NETWORK",
            ChildStep::Namespace => "NAMESPACE",
            ChildStep::NoNewPrivileges => "NO_NEW_PRIVILEGES",
            ChildStep::Seccomp => "SECCOMP",
            ChildStep::Personality => "PERSONALITY",
            ChildStep::Keyring => "KEYRING",
        }
    }

    fn from_wire(value: u32) -> Option<ChildStep> {
        ChildStep::ALL.into_iter().find(|s| *s as u32 == value)
    }
}

impl fmt::Display for ChildStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChildStep::Setsid => "setsid",
            ChildStep::Stdin => "setting up standard input",
            ChildStep::Stdout => "setting up standard output",
            ChildStep::Stderr => "setting up standard error",
            ChildStep::Fds => "placing file descriptors",
            ChildStep::OomScoreAdjust => "setting the OOM score adjustment",
            ChildStep::Nice => "setting the nice level",
            ChildStep::Limits => "setting resource limits",
            ChildStep::Chroot => "changing the root directory",
            ChildStep::Groups => "setting supplementary groups",
            ChildStep::Setgid => "changing group",
            ChildStep::Setuid => "changing user",
            ChildStep::UserNamespace => "setting up user namespacing",
            ChildStep::Keyring => "setting up the kernel keyring",
            ChildStep::Chdir => "changing the working directory",
            ChildStep::NoNewPrivileges => "setting no-new-privileges",
            ChildStep::SignalMask => "resetting the signal mask",
            ChildStep::Exec => "executing the program",
            ChildStep::CoredumpFilter => "adjusting coredump_filter",
            ChildStep::CpuScheduling => "setting up CPU scheduling",
            ChildStep::CpuAffinity => "setting up CPU affinity",
            ChildStep::IoPriority => "setting up IO scheduling priority",
            ChildStep::TimerSlack => "setting up timer slack",
            ChildStep::Personality => "setting up execution domain (personality)",
            ChildStep::TtyOwner => "changing ownership of terminal",
            ChildStep::SecureBits => "setting process secure bits",
            ChildStep::Cgroup => "attaching to the control group",
            ChildStep::Capabilities => "setting capabilities",
            ChildStep::Namespace => "setting up mount namespacing",
            ChildStep::Network => "setting up network namespacing",
            ChildStep::Seccomp => "loading the seccomp filters",
        })
    }
}

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The plan cannot be turned into a process (empty argv, negative fd, …).
    #[error("invalid exec plan: {0}")]
    InvalidPlan(&'static str),
    /// flint could not prepare the child (stack, pipe, signal mask).
    #[error("cannot prepare the child process ({what}): {source}")]
    Prepare {
        what: &'static str,
        source: io::Error,
    },
    /// `clone()` failed; no process was created.
    #[error("cannot create the child process: {0}")]
    Clone(io::Error),
    /// The child was created but no pidfd could be obtained for it; it has
    /// been killed and reaped.
    #[error("cannot obtain a pidfd for the child: {0}")]
    Pidfd(io::Error),
    /// A setup step in the child failed before exec; the child exited with
    /// [`ChildStep::exit_code`] and has been reaped.
    #[error(
        "{step} failed: {}{}",
        .detail.as_ref().map(|d| format!("{d}: ")).unwrap_or_default(),
        io::Error::from_raw_os_error(*.errno)
    )]
    Child {
        step: ChildStep,
        errno: i32,
        /// The part of the step that failed (a mount step of the sandbox).
        detail: Option<String>,
    },
}

impl SpawnError {
    /// The systemd exit code for this failure (`203` for a failed exec, …),
    /// or `None` when no child ran (systemd then fails the unit with result
    /// `resources` instead of an exit code).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            SpawnError::Child { step, .. } => Some(step.exit_code()),
            _ => None,
        }
    }

    /// The errno of a failed step in the child.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SpawnError::Child { errno, .. } => Some(*errno),
            SpawnError::Prepare { source, .. }
            | SpawnError::Clone(source)
            | SpawnError::Pidfd(source) => source.raw_os_error(),
            SpawnError::InvalidPlan(_) => None,
        }
    }
}

/// A running child, owned through its pidfd.
///
/// Dropping a `Child` closes the pidfd but neither kills nor reaps the
/// process; the owner reaps it through one of the wait methods.
#[derive(Debug)]
pub struct Child {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

impl Child {
    /// Reaps the child if it has exited; `Ok(None)` while it runs.
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        self.waitid(libc::WEXITED | libc::WNOHANG)
    }

    /// Blocks the calling thread until the child exits, then reaps it.
    pub fn wait_blocking(&self) -> io::Result<ExitStatus> {
        loop {
            match self.waitid(libc::WEXITED) {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits on the pidfd through tokio (the pidfd turns readable when the
    /// child exits), then reaps the child. Outside a tokio runtime with I/O
    /// enabled this returns an error instead of waiting.
    pub async fn wait(&self) -> io::Result<ExitStatus> {
        use tokio::io::Interest;
        use tokio::io::unix::AsyncFd;

        if tokio::runtime::Handle::try_current().is_err() {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            return Err(io::Error::other("Child::wait needs a tokio runtime"));
        }
        // No look before the registration: epoll reports a pidfd that is
        // already readable (the child has exited) as soon as it is added.
        // SAFETY: the registered fd is our pidfd, which `self` keeps open and
        // unchanged for longer than `readiness` lives (it is dropped at the
        // end of this function, while `&self` is still borrowed).
        let readiness =
            unsafe { AsyncFd::register_with_interest(self.pidfd.as_raw_fd(), Interest::READABLE) }?;
        loop {
            let mut guard = readiness.readable().await?;
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            guard.clear_ready();
        }
    }

    /// Sends `signal` through the pidfd, so it can never reach a recycled pid.
    pub fn send_signal(&self, signal: i32) -> io::Result<()> {
        // SAFETY: pidfd_send_signal takes an fd we own, a signal number, a
        // null siginfo (kernel fills a default one) and flags 0; it touches no
        // memory of ours.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal,
                ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn waitid(&self, options: c_int) -> io::Result<Option<ExitStatus>> {
        // SAFETY: siginfo_t is plain data; all-zero is a valid value and lets
        // us see si_pid == 0 when WNOHANG finds nothing.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let id = libc::id_t::try_from(self.pidfd.as_raw_fd())
            .map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: waitid writes only into `info`, which lives for the call.
        let r = unsafe { libc::waitid(libc::P_PIDFD, id, &raw mut info, options) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: after a successful waitid the SIGCHLD fields of the union
        // (si_pid, si_status) are the initialised ones.
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus::Exited(status),
            libc::CLD_DUMPED => ExitStatus::Signaled {
                signal: status,
                core_dumped: true,
            },
            _ => ExitStatus::Signaled {
                signal: status,
                core_dumped: false,
            },
        }))
    }
}

/// Bytes reserved for `LISTEN_PID=<u64>\0` and `LISTEN_PIDFDID=<u64>\0`.
const LISTEN_PID_SLOT_LEN: usize = 40;

/// Reads flint's signal dispositions now (what a child resets), its
/// secure bits and the CPUs its threads may run on, and makes a child's
/// stack, so that a spawn soon after does none of this on its way.
pub fn warm_up() {
    let _ = child::signals_to_reset();
    let _ = own_secure_bits();
    let _ = child::Stack::make_spare();
    cpu::warm_up();
}

/// flint's own secure bits (`PR_GET_SECUREBITS`), read once: a child
/// starts with the spawning thread's, and flint never changes its own, so
/// a child whose plan asks for the same ones has nothing to change (unless
/// it joins a user namespace, which clears them).
fn own_secure_bits() -> Option<u32> {
    static OWN: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *OWN.get_or_init(|| {
        // SAFETY: PR_GET_SECUREBITS takes no pointers and changes nothing.
        let bits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
        u32::try_from(bits).ok()
    })
}

/// Starts a process from `plan`. See the module documentation for what
/// happens in the child and in which order.
pub fn spawn(plan: &ExecPlan) -> Result<Child, SpawnError> {
    spawn_noting_pid(plan, None)
}

/// `pid` of [`spawn_noting_pid`] before the clone: no child yet.
pub const NO_CHILD_YET: i32 = 0;
/// `pid` of [`spawn_noting_pid`] when this kernel cannot tell the child's
/// pid before the spawn returns.
pub const CHILD_UNKNOWN: i32 = -1;

/// [`spawn`], telling the child's pid through `pid` as soon as the child
/// exists, while the spawn itself may still wait for the child's exec: the
/// kernel stores it there before the child runs (`CLONE_PARENT_SETTID`), so
/// another thread that sees the child exit (a reaper of orphans) can tell it
/// is this spawn's. `pid` holds [`NO_CHILD_YET`] before; where the kernel
/// cannot, it is set to [`CHILD_UNKNOWN`] before the clone.
pub fn spawn_noting_pid(
    plan: &ExecPlan,
    pid: Option<&std::sync::atomic::AtomicI32>,
) -> Result<Child, SpawnError> {
    if plan.argv.is_empty() {
        return Err(SpawnError::InvalidPlan("argv is empty"));
    }
    if plan.fds.iter().any(|p| p.fd < 0) {
        return Err(SpawnError::InvalidPlan("negative fd in the fd list"));
    }
    let stdio = [plan.stdin, plan.stdout, plan.stderr];
    if stdio.iter().any(|s| matches!(s, Stdio::Fd(fd) if *fd < 0)) {
        return Err(SpawnError::InvalidPlan("negative fd for standard I/O"));
    }
    if plan.tty_path.is_none()
        && stdio
            .iter()
            .any(|s| matches!(s, Stdio::TtyInput(_) | Stdio::TtyOutput))
    {
        return Err(SpawnError::InvalidPlan(
            "terminal I/O without a terminal path",
        ));
    }
    if matches!(plan.stdin, Stdio::SameAsStdin | Stdio::SameAsStdout)
        || plan.stdout == Stdio::SameAsStdout
    {
        return Err(SpawnError::InvalidPlan("standard I/O copies a later fd"));
    }
    let fd_count =
        c_int::try_from(plan.fds.len()).map_err(|_| SpawnError::InvalidPlan("too many fds"))?;
    let first_free = fd_count
        .checked_add(3)
        .ok_or(SpawnError::InvalidPlan("too many fds"))?;

    // argv and envp as NULL-terminated pointer arrays into the plan's CStrings.
    let mut argv: Vec<*const libc::c_char> = plan.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(ptr::null());

    let mut envp: Vec<*const libc::c_char> =
        Vec::with_capacity(plan.env.len() + plan.pid_vars.len() + 3);
    envp.extend(
        plan.env
            .iter()
            .filter(|e| !(plan.listen_pid_slot && is_listen_pid_entry(e.as_bytes())))
            .map(|e| e.as_ptr()),
    );
    // `NAME=` prefixes and buffers for the variables that hold the child's pid.
    let pid_prefixes: Vec<Vec<u8>> = plan
        .pid_vars
        .iter()
        .map(|n| [n.as_bytes(), b"="].concat())
        .collect();
    let mut pid_bufs: Vec<Vec<u8>> = pid_prefixes
        .iter()
        .map(|p| vec![0u8; p.len() + 21])
        .collect();
    let pid_slots: Vec<PidSlot> = pid_prefixes
        .iter()
        .zip(pid_bufs.iter_mut())
        .map(|(prefix, buf)| {
            envp.push(buf.as_ptr().cast());
            PidSlot {
                prefix,
                buf: buf.as_mut_ptr(),
                len: buf.len(),
            }
        })
        .collect();
    let mut pid_buf = [0u8; LISTEN_PID_SLOT_LEN];
    let mut pidfdid_buf = [0u8; LISTEN_PID_SLOT_LEN];
    let listen_pid = if plan.listen_pid_slot {
        let index = envp.len();
        envp.push(pid_buf.as_ptr().cast());
        envp.push(pidfdid_buf.as_ptr().cast());
        Some(index)
    } else {
        None
    };
    envp.push(ptr::null());

    let groups: Option<Vec<libc::gid_t>> = match (&plan.groups, plan.uid.or(plan.gid)) {
        (Some(g), _) => Some(g.clone()),
        (None, Some(_)) => Some(Vec::new()),
        (None, None) => None,
    };
    let rlimits: Vec<(c_int, libc::rlimit64)> = plan
        .rlimits
        .iter()
        .map(|&(resource, soft, hard)| {
            (
                resource,
                libc::rlimit64 {
                    rlim_cur: soft,
                    rlim_max: hard,
                },
            )
        })
        .collect();
    let oom_text = plan.oom_score_adjust.map(|v| format!("{v}\n").into_bytes());
    let coredump_text = plan.coredump_filter.map(|v| format!("{v:#x}").into_bytes());
    let mut high_fds: Vec<c_int> = vec![-1; plan.fds.len()];

    let stack = child::Stack::take().map_err(|source| SpawnError::Prepare {
        what: "stack",
        source,
    })?;
    let mut report = child::Report::default();
    let cgroup = match &plan.cgroup {
        Some(dir) => Some(CgroupTarget::open(dir)?),
        None => None,
    };

    let mut ctx = ChildContext {
        path: plan.path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_mut_ptr(),
        listen_pid: listen_pid.map(|index| ListenPidSlot {
            envp_index: index,
            pid_buf: pid_buf.as_mut_ptr(),
            pidfdid_buf: pidfdid_buf.as_mut_ptr(),
            len: LISTEN_PID_SLOT_LEN,
            pidfdid: plan.listen_pidfdid,
        }),
        pass_fds: &plan.fds,
        high_fds: high_fds.as_mut_ptr(),
        first_free,
        stdio,
        dev_null: c"/dev/null".as_ptr(),
        oom_path: c"/proc/self/oom_score_adj".as_ptr(),
        oom_text: oom_text.as_deref(),
        coredump_path: c"/proc/self/coredump_filter".as_ptr(),
        coredump_text: coredump_text.as_deref(),
        pid_slots: &pid_slots,
        tty_path: plan.tty_path.as_ref().map(|c| c.as_ptr()),
        tty0: c"/dev/tty0".as_ptr(),
        tty_reset: plan.tty_reset,
        tty_owner: plan.tty_owner,
        cpu_sched: plan.cpu_sched,
        cpu_affinity: plan.cpu_affinity.as_deref(),
        spawner_affinity: None,
        ioprio: plan.ioprio,
        timer_slack_nsec: plan.timer_slack_nsec,
        parent_death_signal: plan.parent_death_signal,
        // Only asked for where it is needed: a system call on the spawn path.
        parent_pid: plan
            .parent_death_signal
            .map_or(0, |_| i32::try_from(std::process::id()).unwrap_or(0)),
        personality: plan.personality,
        // Joining a user namespace clears the secure bits: then they are
        // always set.
        secure_bits: plan.secure_bits.filter(|&bits| {
            Some(bits) != own_secure_bits()
                || plan
                    .namespace
                    .as_ref()
                    .is_some_and(|n| n.join_user.is_some())
        }),
        capability_bounding_set: plan.capability_bounding_set,
        ambient_capabilities: plan.ambient_capabilities,
        cap_last_cap: plan.cap_last_cap.min(63),
        // Set by clone_child when the kernel cannot clone into the cgroup.
        cgroup_procs: None,
        legacy_procs: &plan.legacy_cgroups,
        nice: plan.nice,
        rlimits: &rlimits,
        umask: plan.umask & 0o7777,
        chroot: plan.chroot.as_ref().map(|c| c.as_ptr()),
        root: c"/".as_ptr(),
        groups: groups.as_deref(),
        gid: plan.gid,
        uid: plan.uid,
        cwd: plan.cwd.as_ref().map(|c| c.as_ptr()),
        cwd_optional: plan.cwd_optional,
        new_session: plan.new_session,
        ignore_sigpipe: plan.ignore_sigpipe,
        reset_signals: 0,
        signals: child::signals_to_reset(),
        no_new_privileges: plan.no_new_privileges,
        namespace: plan.namespace.as_ref().filter(|n| !n.is_empty()),
        seccomp: &plan.seccomp,
        keyring: plan.keyring.as_ref(),
        report: &raw mut report,
    };

    // After a quiet spell, the child starts on this thread's CPU, which
    // this thread leaves idle until the child execs, and puts the mask back
    // itself.
    let here = cpu::Here::pin_if_quiet();
    ctx.spawner_affinity = here.as_ref().map(cpu::Here::mask);
    let cloned = {
        let _blocked = child::SignalsBlocked::new();
        clone_child(&mut ctx, &stack, cgroup.as_ref(), pid)
    };
    drop(here);
    let (pid, pidfd) = cloned?;
    // The child has exec'd or exited (CLONE_VFORK): the report is final.
    stack.put_back();
    // SAFETY: `report` is ours and initialised; the child that may have
    // written it through `ctx.report` is gone from this address space.
    let report = unsafe { ptr::read_volatile(&raw const report) };
    let report = (report.step != 0).then(|| {
        let step = ChildStep::from_wire(report.step).unwrap_or(ChildStep::Exec);
        let detail = match (step, report.detail.checked_sub(1), &plan.namespace) {
            (ChildStep::Namespace, Some(i), Some(ns)) => usize::try_from(i)
                .ok()
                .and_then(|i| ns.mounts.get(i))
                .map(MountOp::describe),
            _ => None,
        };
        (step, report.errno, detail)
    });
    let pidfd = match pidfd {
        Some(fd) => fd,
        None => match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                // No handle: kill and reap by pid so nothing is left behind.
                // SAFETY: `pid` is our unreaped child, so it cannot be recycled.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, ptr::null_mut(), 0);
                }
                return Err(SpawnError::Pidfd(e));
            }
        },
    };
    let child = Child { pid, pidfd };
    if let Some((step, errno, detail)) = report {
        // The child has already exited; reap it so no zombie stays.
        let _ = child.wait_blocking();
        return Err(SpawnError::Child {
            step,
            errno,
            detail,
        });
    }
    Ok(child)
}

/// The terminal reset of `TTYReset=`, `TTYVHangup=` and
/// `TTYVTDisallocate=`, done by flint itself (systemd repeats it when a
/// service stops). Best effort, like in the child.
pub fn reset_terminal(path: &std::ffi::CStr, how: &TtyReset) {
    if how.any() {
        // SAFETY: both paths are NUL-terminated; the function only makes
        // syscalls on fds it opens and closes itself and blocks no signals.
        unsafe { child::reset_terminal(path.as_ptr(), c"/dev/tty0".as_ptr(), how) }
    }
}

fn is_listen_pid_entry(entry: &[u8]) -> bool {
    entry.starts_with(b"LISTEN_PID=") || entry.starts_with(b"LISTEN_PIDFDID=")
}

/// The cgroup a child is created in: its directory, open, and the path of
/// its `cgroup.procs` for kernels without `CLONE_INTO_CGROUP`.
struct CgroupTarget {
    dir: OwnedFd,
    procs: CString,
}

impl CgroupTarget {
    fn open(dir: &std::ffi::CStr) -> Result<CgroupTarget, SpawnError> {
        // SAFETY: open with a NUL-terminated path; the result is checked.
        let fd = unsafe {
            libc::open(
                dir.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(SpawnError::Prepare {
                what: "cgroup directory",
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: open returned a new fd that nothing else owns.
        let dir_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut procs = dir.to_bytes().to_vec();
        procs.extend_from_slice(b"/cgroup.procs");
        let procs =
            CString::new(procs).map_err(|_| SpawnError::InvalidPlan("NUL in the cgroup path"))?;
        Ok(CgroupTarget { dir: dir_fd, procs })
    }
}

/// Set once `clone3()` failed as a kernel without it (or without its
/// `cgroup` argument) fails: every later child is made by `clone()`.
static CLONE3_MISSING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `clone3()` (or, where the kernel lacks it, `clone()`) with the
/// child entry point. Signals must be blocked by the
/// caller. Returns the pid and, when the kernel supports `CLONE_PIDFD`, the
/// pidfd. With a cgroup, the child is created in it by `clone3()`; where
/// the kernel or the architecture cannot, the child moves itself. With
/// `pid_out`, `clone3()` stores the child's pid there as it creates it;
/// where it cannot, [`CHILD_UNKNOWN`] is stored before `clone()`.
fn clone_child(
    ctx: &mut ChildContext<'_>,
    stack: &child::Stack,
    cgroup: Option<&CgroupTarget>,
    pid_out: Option<&std::sync::atomic::AtomicI32>,
) -> Result<(i32, Option<OwnedFd>), SpawnError> {
    if !CLONE3_MISSING.load(std::sync::atomic::Ordering::Relaxed) {
        ctx.cgroup_procs = None;
        #[cfg(test)]
        let forced = tests::FORCE_CLONE3_FALLBACK.load(std::sync::atomic::Ordering::SeqCst);
        #[cfg(not(test))]
        let forced = false;
        let result = if forced {
            Err(io::Error::from_raw_os_error(libc::ENOSYS))
        } else {
            child::clone3(ctx, stack, cgroup.map(|t| t.dir.as_raw_fd()), pid_out)
        };
        match result {
            Ok(done) => return Ok(done),
            // EPERM: a container's seccomp filter that refuses clone3()
            // (older Docker profiles); the child's own move into its
            // cgroup then says whether that was the cgroup's refusal.
            Err(e)
                if e.raw_os_error().is_some_and(|n| {
                    [libc::ENOSYS, libc::EINVAL, libc::E2BIG, libc::EPERM].contains(&n)
                }) =>
            {
                // Without clone3() (or with one too old for its arguments)
                // the kernel will not have it later; EINVAL and EPERM are
                // met again (one spawn's arguments may be what was
                // refused). The test's forcing says nothing.
                #[cfg(not(test))]
                if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::E2BIG)) {
                    CLONE3_MISSING.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Err(e) => return Err(SpawnError::Clone(e)),
        }
    }
    // However this was reached (clone3() failed now or before): the child
    // moves itself into its cgroup, its pid is not known before clone()
    // returns, and it resets every handler itself.
    ctx.cgroup_procs = cgroup.map(|t| t.procs.as_ptr());
    if let Some(slot) = pid_out {
        slot.store(CHILD_UNKNOWN, std::sync::atomic::Ordering::Release);
    }
    ctx.reset_every_signal();
    let mut pidfd: c_int = -1;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
    let arg: *mut c_void = ptr::from_mut(ctx).cast();
    // SAFETY: the child runs `child::entry` on `stack`, a separate mapping
    // that outlives the child's use of it (CLONE_VFORK suspends us until the
    // child execs or exits, and the stack is only unmapped after that). `arg`
    // points to `ctx`, which lives on our suspended stack frame for the same
    // span. CLONE_PIDFD makes the kernel store the pidfd into `pidfd` (the
    // parent_tid argument). All signals are blocked, so no handler of ours can
    // run on the child's stack before it resets dispositions.
    let mut pid = unsafe { libc::clone(child::entry, stack.top(), flags, arg, &raw mut pidfd) };
    if pid < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Kernels before 5.2 refuse CLONE_PIDFD; fall back to pidfd_open().
        pidfd = -1;
        // SAFETY: as above, without CLONE_PIDFD (no parent_tid write).
        pid = unsafe { libc::clone(child::entry, stack.top(), flags & !libc::CLONE_PIDFD, arg) };
    }
    if pid < 0 {
        return Err(SpawnError::Clone(io::Error::last_os_error()));
    }
    let pidfd = if pidfd >= 0 {
        // SAFETY: the kernel just created this fd for us (CLONE_PIDFD).
        Some(unsafe { OwnedFd::from_raw_fd(pidfd) })
    } else {
        None
    };
    Ok((pid, pidfd))
}

pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = c_int::try_from(r).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
