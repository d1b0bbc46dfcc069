//! `flint socket-activate` (also flint called by the name
//! `systemd-socket-activate`): systemd's `systemd-socket-activate` tool on
//! hosts without systemd, with its command line and its behaviour
//! (systemd 255's `socket-activate.c`).
//!
//! - The fds a caller passed with `LISTEN_FDS`/`LISTEN_PID` stay at 3, 4, …;
//!   with `--listen`, every other fd from 3 up is closed, and each address
//!   (the syntax of `ListenStream=`) is opened at the next number: blocking,
//!   `SO_REUSEADDR`, the largest backlog, AF_UNIX nodes with mode 0644 in
//!   directories made 0755.
//! - Without `--accept` it waits for the first event on any of them (not
//!   with `--now`) and then execs the command in its own process, so
//!   `LISTEN_PID` is its own pid and the command's exit is the tool's.
//! - With `--accept` the listeners are close-on-exec; each connection is
//!   accepted (blocking) and given to a new process of the command at fd 3
//!   with `LISTEN_FDS=1` and `LISTEN_PID` of that process (flint's spawn:
//!   no fork of the tool's memory). Children are reaped and logged as they
//!   end.
//! - `--inetd` gives the fd as standard input and output instead, without
//!   `LISTEN_*`; without `--accept` only for a single fd.
//! - The command's environment is `TERM`, `PATH`, `USER` and `HOME` from the
//!   tool's own, the `LISTEN_*` variables and the `--setenv` assignments
//!   (`NAME` alone takes the tool's value, empty when unset);
//!   `LISTEN_FDNAMES` only with `--fdname` (one name stands for every fd).
//! - Messages go to standard error in the tool's words ("Listening on …
//!   as 3.", "Execing …", "Spawned … as PID …", "Child … died with code …").

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;

use crate::listen::{self, ListenKind, SocketOptions};
use crate::unit::value::address::SocketAddress;

/// The first passed fd (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// The kind of socket `--listen` opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SocketType {
    #[default]
    Stream,
    Datagram,
    SequentialPacket,
}

/// The tool's command line, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub listen: Vec<String>,
    pub socket_type: SocketType,
    pub accept: bool,
    /// `--setenv` values as given (`NAME=VALUE` or `NAME`).
    pub setenv: Vec<String>,
    /// `--fdname` values as given (each may hold several names split by `:`).
    pub fdnames: Vec<String>,
    pub inetd: bool,
    /// `--now`: exec at once instead of waiting for traffic.
    pub now: bool,
    /// The command and its arguments.
    pub command: Vec<OsString>,
}

/// Why the tool stops. Each is printed once, and the process exits 1.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error(
        "Datagram sockets do not accept connections. The --datagram and --accept options may not be combined."
    )]
    DatagramAccept,
    #[error("--now may not be combined with --accept.")]
    NowAccept,
    #[error("Cannot assign environment variable {0}: Invalid argument")]
    Setenv(String),
    #[error("Failed to open '{address}': {reason}")]
    Open { address: String, reason: String },
    #[error("Failed to read listening file descriptors from environment: {0}")]
    Inherited(String),
    #[error("No sockets to listen on specified or passed in.")]
    NoSockets,
    #[error("--inetd only supported for single file descriptors.")]
    InetdFds,
    #[error("Failed to execp {name} ({joined}): {source}")]
    Exec {
        name: String,
        joined: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

fn errno(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> ActivateError {
    move |e| ActivateError::Io {
        what,
        source: std::io::Error::from(e),
    }
}

/// Checks what the tool refuses before it opens anything.
/// (`--datagram` with `--seqpacket` cannot be given: [`SocketType`] is one
/// of them.)
pub fn validate(opts: &Options) -> Result<(), ActivateError> {
    if opts.socket_type == SocketType::Datagram && opts.accept {
        return Err(ActivateError::DatagramAccept);
    }
    if opts.now && opts.accept {
        return Err(ActivateError::NowAccept);
    }
    for s in &opts.setenv {
        let name = s.split_once('=').map_or(s.as_str(), |(n, _)| n);
        if !crate::unit::value::env::env_name_is_valid(name) {
            return Err(ActivateError::Setenv(s.clone()));
        }
    }
    Ok(())
}

/// The `--setenv` assignments, a bare `NAME` completed from `env` (empty
/// when unset), as systemd's `strv_env_replace_strdup_passthrough()`.
pub fn assignments(setenv: &[String], env: &dyn Fn(&str) -> Option<OsString>) -> Vec<OsString> {
    setenv
        .iter()
        .map(|s| {
            if s.contains('=') {
                OsString::from(s)
            } else {
                let mut a = OsString::from(format!("{s}="));
                a.push(env(s).unwrap_or_default());
                a
            }
        })
        .collect()
}

/// The names of `LISTEN_FDNAMES` for `n` fds: each `--fdname` split at `:`
/// (an empty value is one empty name), one name repeated for every fd;
/// `None` without `--fdname`. A count that differs only warns, as in
/// systemd (a client's `sd_listen_fds_with_names()` then fails).
pub fn fd_names(fdnames: &[String], n: usize) -> Option<String> {
    if fdnames.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = Vec::new();
    for v in fdnames {
        if v.is_empty() {
            names.push("");
        } else {
            names.extend(v.split(':'));
        }
    }
    if names.len() == 1 {
        return Some(vec![names[0]; n.max(1)].join(":"));
    }
    if names.len() != n {
        eprintln!(
            "The number of fd names is different than number of fds: {} vs {n}",
            names.len()
        );
    }
    Some(names.join(":"))
}

/// The command's environment: `TERM`, `PATH`, `USER`, `HOME` from `env`,
/// then `listen` (the `LISTEN_*` entries), then the `--setenv` assignments,
/// each replacing an entry of its name.
pub fn environment(
    env: &dyn Fn(&str) -> Option<OsString>,
    listen: &[String],
    setenv: &[OsString],
) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for name in ["TERM", "PATH", "USER", "HOME"] {
        if let Some(v) = env(name) {
            let mut e = OsString::from(format!("{name}="));
            e.push(v);
            out.push(e);
        }
    }
    out.extend(listen.iter().map(OsString::from));
    for a in setenv {
        let name_len = a.as_bytes().iter().position(|b| *b == b'=').unwrap_or(0);
        let name = &a.as_bytes()[..=name_len];
        match out.iter_mut().find(|e| e.as_bytes().starts_with(name)) {
            Some(e) => e.clone_from(a),
            None => out.push(a.clone()),
        }
    }
    out
}

/// The fds a caller passed to this process (`sd_listen_fds()`): how many,
/// from 3 up; 0 when `LISTEN_PID` is not this process.
fn inherited(env: &dyn Fn(&str) -> Option<OsString>) -> Result<i32, ActivateError> {
    let pid = env("LISTEN_PID").and_then(|p| p.to_str()?.parse::<i32>().ok());
    if pid != Some(std::process::id().cast_signed()) {
        return Ok(0);
    }
    let Some(n) = env("LISTEN_FDS") else {
        return Ok(0);
    };
    n.to_str()
        .and_then(|n| n.parse::<i32>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| ActivateError::Inherited("Invalid argument".into()))
}

fn set_cloexec(fd: RawFd, on: bool) -> Result<(), ActivateError> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // SAFETY: `fd` is one of this process's open fds for the whole call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd, FcntlArg::F_SETFD(flags)).map_err(errno("Failed to set close-on-exec"))?;
    Ok(())
}

fn set_blocking(fd: RawFd) -> Result<(), ActivateError> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    // SAFETY: `fd` is one of this process's open fds for the whole call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = OFlag::from_bits_truncate(
        fcntl(fd, FcntlArg::F_GETFL).map_err(errno("Failed to read fd flags"))?,
    );
    fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))
        .map_err(errno("Failed to make fd blocking"))?;
    Ok(())
}

/// Opens `address` as the tool does and places it at `target`.
fn open_at(address: &str, kind: SocketType, target: RawFd) -> Result<(), ActivateError> {
    let fail = |reason: String| ActivateError::Open {
        address: address.to_string(),
        reason,
    };
    let parsed: SocketAddress = address
        .parse()
        .map_err(|_| fail("Invalid argument".into()))?;
    let listen_kind = match kind {
        SocketType::Stream => ListenKind::Stream(parsed),
        SocketType::Datagram => ListenKind::Datagram(parsed),
        SocketType::SequentialPacket => ListenKind::SequentialPacket(parsed),
    };
    let opts = SocketOptions {
        socket_mode: 0o644,
        directory_mode: 0o755,
        backlog: i32::MAX.cast_unsigned(),
        ..SocketOptions::default()
    };
    let listener = listen::open(&listen_kind, &opts).map_err(|e| fail(e.to_string()))?;
    let fd = listener.fd;
    if fd.as_raw_fd() == target {
        // Already in place: the fd stays open for the command.
        let _ = fd.into_raw_fd();
    } else {
        // SAFETY: dup3 takes two integers; `target` is free or ours to replace.
        let r = unsafe { libc::dup3(fd.as_raw_fd(), target, libc::O_CLOEXEC) };
        if r < 0 {
            return Err(fail(std::io::Error::last_os_error().to_string()));
        }
        drop(fd);
    }
    set_blocking(target)
}

/// Runs the tool: returns only when it fails (it execs the command, or
/// with `--accept` serves until it is killed).
pub fn run(opts: &Options) -> ActivateError {
    match run_inner(opts) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn os_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

fn run_inner(opts: &Options) -> Result<std::convert::Infallible, ActivateError> {
    validate(opts)?;
    let setenv = assignments(&opts.setenv, &os_env);
    let passed = inherited(&os_env)?;
    if passed > 0 {
        eprintln!("Received {passed} descriptors via the environment.");
        for fd in FIRST_FD..FIRST_FD + passed {
            set_cloexec(fd, opts.accept)?;
        }
    }
    let mut count = passed;
    if !opts.listen.is_empty() {
        // SAFETY: close_range takes integers; every fd it closes belongs to
        // no Rust object of this process yet (nothing is open above the
        // passed fds but what the caller left behind).
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                (FIRST_FD + passed).cast_unsigned(),
                u32::MAX,
                0u32,
            )
        };
    }
    for address in &opts.listen {
        open_at(address, opts.socket_type, FIRST_FD + count)?;
        set_cloexec(FIRST_FD + count, opts.accept)?;
        count += 1;
    }
    if count == 0 {
        return Err(ActivateError::NoSockets);
    }
    let fds: Vec<RawFd> = (FIRST_FD..FIRST_FD + count).collect();
    for fd in &fds {
        eprintln!("Listening on {} as {fd}.", pretty_local(*fd));
    }
    if opts.accept {
        return serve(opts, &fds, &setenv);
    }
    if !opts.now
        && let Ready::Listener(fd) = wait_readable(&fds, &[])?
    {
        eprintln!("Communication attempt on fd {fd}.");
    }
    Err(exec_here(opts, count, &setenv))
}

/// The command's name and its argv joined by spaces, for messages.
fn describe(command: &[OsString]) -> (String, String) {
    let name = command
        .first()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    let joined = command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    (name, joined)
}

fn cstrings(items: &[OsString]) -> Vec<CString> {
    items
        .iter()
        .filter_map(|s| CString::new(s.as_bytes()).ok())
        .collect()
}

/// Execs the command in this process with the `n` fds from 3 up.
fn exec_here(opts: &Options, n: i32, setenv: &[OsString]) -> ActivateError {
    if opts.inetd && n != 1 {
        return ActivateError::InetdFds;
    }
    let mut listen_vars = Vec::new();
    if opts.inetd {
        // SAFETY: dup2 and close take integers; fd 3 is the one passed fd.
        unsafe {
            libc::dup2(FIRST_FD, 0);
            libc::dup2(FIRST_FD, 1);
            libc::close(FIRST_FD);
        }
    } else {
        listen_vars.push(format!("LISTEN_FDS={n}"));
        listen_vars.push(format!("LISTEN_PID={}", std::process::id()));
        if let Some(names) = fd_names(&opts.fdnames, usize::try_from(n).unwrap_or(0)) {
            listen_vars.push(format!("LISTEN_FDNAMES={names}"));
        }
    }
    let env = cstrings(&environment(&os_env, &listen_vars, setenv));
    let argv = cstrings(&opts.command);
    let (name, joined) = describe(&opts.command);
    eprintln!("Execing {name} ({joined})");
    let file = CString::new(opts.command[0].as_bytes()).unwrap_or_default();
    let e = nix::unistd::execvpe(&file, &argv, &env).unwrap_err();
    ActivateError::Exec {
        name,
        joined,
        source: e.into(),
    }
}

/// What woke the tool up.
enum Ready {
    /// A listener with something to accept (or read).
    Listener(RawFd),
    /// The child at this index has ended.
    Child(usize),
}

/// Waits until one of `fds` is readable or one of `children` has ended.
fn wait_readable(fds: &[RawFd], children: &[crate::spawn::Child]) -> Result<Ready, ActivateError> {
    let mut set: Vec<libc::pollfd> = fds
        .iter()
        .copied()
        .chain(children.iter().map(|c| c.pidfd.as_raw_fd()))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let count = libc::nfds_t::try_from(set.len()).unwrap_or(libc::nfds_t::MAX);
    loop {
        // SAFETY: `set` is an array of `count` pollfd structures that lives
        // for the whole call.
        let r = unsafe { libc::poll(set.as_mut_ptr(), count, -1) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(ActivateError::Io {
                what: "poll() failed",
                source: e,
            });
        }
        // Children first: an ended one is reaped before more are started.
        if let Some(i) = set[fds.len()..].iter().position(|p| p.revents != 0) {
            return Ok(Ready::Child(i));
        }
        if let Some(p) = set[..fds.len()].iter().find(|p| p.revents != 0) {
            return Ok(Ready::Listener(p.fd));
        }
    }
}

/// The process's umask, which the children keep.
fn current_umask() -> u32 {
    // SAFETY: umask only swaps an integer of the process; it is put back at
    // once, and the tool runs no other thread.
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old
    }
}

/// `--accept`: one process of the command per connection, until killed.
fn serve(
    opts: &Options,
    fds: &[RawFd],
    setenv: &[OsString],
) -> Result<std::convert::Infallible, ActivateError> {
    use crate::spawn::{ExecPlan, PassFd, Stdio};
    let (name, joined) = describe(&opts.command);
    let search: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let program = opts.command[0].to_string_lossy();
    let path = if program.contains('/') {
        Some(std::path::PathBuf::from(opts.command[0].clone()))
    } else {
        crate::spawn::resolve_executable(&program, Some(&search))
    };
    let mut listen_vars = Vec::new();
    if !opts.inetd {
        listen_vars.push("LISTEN_FDS=1".to_string());
        if let Some(names) = fd_names(&opts.fdnames, 1) {
            listen_vars.push(format!("LISTEN_FDNAMES={names}"));
        }
    }
    let env = cstrings(&environment(&os_env, &listen_vars, setenv));
    let argv = cstrings(&opts.command);
    let umask = current_umask();
    let mut children: Vec<crate::spawn::Child> = Vec::new();
    crate::release_free_memory();
    loop {
        let fd = match wait_readable(fds, &children)? {
            Ready::Child(i) => {
                let child = children.swap_remove(i);
                match child.try_wait() {
                    Ok(Some(status)) => {
                        let code = match status {
                            crate::spawn::ExitStatus::Exited(c) => c,
                            crate::spawn::ExitStatus::Signaled { signal, .. } => signal,
                        };
                        eprintln!("Child {} died with code {code}", child.pid);
                    }
                    Ok(None) => children.push(child),
                    Err(_) => {}
                }
                continue;
            }
            Ready::Listener(fd) => fd,
        };
        eprintln!("Communication attempt on fd {fd}.");
        let conn = match nix::sys::socket::accept4(fd, nix::sys::socket::SockFlag::empty()) {
            // SAFETY: accept4 returned a new fd that nothing else owns.
            Ok(c) => unsafe { OwnedFd::from_raw_fd(c) },
            Err(e) if crate::listen::accept_again(e) => continue,
            Err(e) => {
                return Err(ActivateError::Io {
                    what: "Failed to accept connection",
                    source: e.into(),
                });
            }
        };
        eprintln!(
            "Connection from {} to {}",
            pretty_peer(conn.as_raw_fd()),
            pretty_local(conn.as_raw_fd())
        );
        let Some(path) = path.as_ref() else {
            eprintln!("Failed to execp {name} ({joined}): No such file or directory");
            continue;
        };
        let mut plan = ExecPlan::new(
            CString::new(path.as_os_str().as_bytes()).unwrap_or_default(),
            argv.clone(),
        );
        plan.env.clone_from(&env);
        plan.new_session = false;
        plan.ignore_sigpipe = false;
        plan.umask = umask;
        plan.stdin = Stdio::Inherit;
        // As systemd's tool forks them (FORK_DEATHSIG_SIGTERM,
        // FORK_RLIMIT_NOFILE_SAFE): they end with the tool, and a raised
        // soft open-file limit goes back to select()'s 1024.
        plan.parent_death_signal = Some(libc::SIGTERM);
        plan.rlimits.extend(nofile_safe());
        if opts.inetd {
            plan.stdin = Stdio::Fd(conn.as_raw_fd());
            plan.stdout = Stdio::SameAsStdin;
        } else {
            plan.fds = vec![PassFd {
                fd: conn.as_raw_fd(),
                nonblocking: Some(false),
            }];
            plan.listen_pid_slot = true;
        }
        match crate::spawn::spawn(&plan) {
            Ok(child) => {
                // systemd's tool says the second from its forked child,
                // before the exec; flint's child execs at once.
                eprintln!("Spawned {name} ({joined}) as PID {}.", child.pid);
                eprintln!("Execing {name} ({joined})");
                children.push(child);
            }
            Err(e) => eprintln!("Failed to execp {name} ({joined}): {e}"),
        }
    }
}

/// systemd's `rlimit_nofile_safe()`: a soft `RLIMIT_NOFILE` above
/// `FD_SETSIZE` (1024) goes back to it in the child, for programs that
/// still use `select()`; the hard limit stays.
fn nofile_safe() -> Option<(i32, u64, u64)> {
    let (soft, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).ok()?;
    let fd_setsize = libc::FD_SETSIZE as u64;
    // The constant is `u32` with glibc and `c_int` with musl.
    #[allow(clippy::cast_possible_wrap, clippy::unnecessary_cast)]
    let nofile = libc::RLIMIT_NOFILE as i32;
    (soft > fd_setsize).then_some((nofile, fd_setsize, hard))
}

/// The peer of `fd` as systemd's `getpeername_pretty()` shows it.
fn pretty_peer(fd: RawFd) -> String {
    use nix::sys::socket::{SockaddrStorage, getpeername};
    getpeername::<SockaddrStorage>(fd)
        .ok()
        .and_then(|a| crate::activation::address_text(&a))
        .unwrap_or_else(|| "n/a".into())
}

/// The local address of `fd` as systemd's `getsockname_pretty()` shows it.
fn pretty_local(fd: RawFd) -> String {
    use nix::sys::socket::{SockaddrStorage, getsockname};
    getsockname::<SockaddrStorage>(fd)
        .ok()
        .and_then(|a| crate::activation::address_text(&a))
        .unwrap_or_else(|| "n/a".into())
}
#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |name| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn one_fd_name_stands_for_every_fd_and_names_split_at_colons() {
        assert_eq!(fd_names(&[], 2), None);
        assert_eq!(fd_names(&["web".into()], 3).as_deref(), Some("web:web:web"));
        assert_eq!(
            fd_names(&["a:b".into(), "c".into()], 3).as_deref(),
            Some("a:b:c")
        );
        // An empty value is one empty name.
        assert_eq!(fd_names(&[String::new()], 2).as_deref(), Some(":"));
        // A count that differs is kept as given (systemd only warns).
        assert_eq!(fd_names(&["a:b".into()], 3).as_deref(), Some("a:b"));
    }

    #[test]
    fn the_command_gets_four_variables_of_the_tools_the_listen_ones_and_setenv() {
        let env = env_of(&[
            ("HOME", "/root"),
            ("PATH", "/bin"),
            ("SECRET", "x"),
            ("TERM", "dumb"),
            ("FOO", "from-tool"),
        ]);
        let set = assignments(&["FOO".into(), "BAR=1".into(), "NONE".into()], &env);
        assert_eq!(set, ["FOO=from-tool", "BAR=1", "NONE="]);
        let set = assignments(&["HOME=/srv".into(), "BAR=1".into()], &env);
        let got = environment(&env, &["LISTEN_FDS=1".into()], &set);
        assert_eq!(
            got,
            [
                "TERM=dumb",
                "PATH=/bin",
                "HOME=/srv",
                "LISTEN_FDS=1",
                "BAR=1"
            ]
        );
    }

    #[test]
    fn refusals_are_checked_before_anything_is_opened() {
        let opts = |f: &dyn Fn(&mut Options)| {
            let mut o = Options {
                command: vec!["true".into()],
                ..Options::default()
            };
            f(&mut o);
            validate(&o)
        };
        assert!(opts(&|_| {}).is_ok());
        assert!(matches!(
            opts(&|o| {
                o.socket_type = SocketType::Datagram;
                o.accept = true;
            }),
            Err(ActivateError::DatagramAccept)
        ));
        assert!(matches!(
            opts(&|o| {
                o.now = true;
                o.accept = true;
            }),
            Err(ActivateError::NowAccept)
        ));
        assert!(matches!(
            opts(&|o| o.setenv = vec!["1BAD=x".into()]),
            Err(ActivateError::Setenv(_))
        ));
    }
}
