//! What every command a unit runs starts from unless the unit says
//! otherwise: the manager's environment block and the default resource
//! limits, as systemd's manager computes them once at start.
//!
//! - The environment (`manager_default_environment()` in
//!   src/core/manager.c): the system manager starts from a clean block,
//!   `PATH` and the locale of `/etc/locale.conf` (`LANG=C.UTF-8` when none
//!   is configured); the user manager passes its own environment on, with
//!   its own `PATH`. Either way the variables the manager sets itself for
//!   its children (`LISTEN_*`, `INVOCATION_ID`, `JOURNAL_STREAM`, ...) are
//!   taken out, so that a flint started from a service does not hand its
//!   own on. Then the environment generators run
//!   (`system-environment-generators/`, `user-environment-generators/`,
//!   `$SYSTEMD_ENVIRONMENT_GENERATOR_PATH`), in name order, each seeing
//!   the block as the ones before left it and printing assignments to add;
//!   `30-systemd-environment-d-generator` is what makes `environment.d`
//!   (home-manager's session variables among them) reach user services.
//! - The limits (`fallback_rlimit_nofile()`, `fallback_rlimit_memlock()`
//!   and `bump_rlimit_nofile()` in src/core/main.c): flint raises its own
//!   open-file limit as far as the kernel lets it, since it holds every
//!   listener and connection, while services get the limit flint was
//!   started with, its soft value at most 1024 (`select()` cannot handle
//!   higher fds) and, for the system manager, its hard value at least
//!   524288. `RLIMIT_MEMLOCK` is passed on as flint found it, raised to
//!   8 MiB for the system manager.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use nix::sys::resource::Resource;

use crate::spawn::default_path;
use crate::unit::value::env::{
    env_assignment_is_valid, env_name_is_valid, env_replace, parse_env_file_full,
};

/// What systemd's `sanitize_environment()` takes out of the manager's block:
/// variables it sets itself for its children.
const SANITIZED: &[&str] = &[
    "CACHE_DIRECTORY",
    "CONFIGURATION_DIRECTORY",
    "CREDENTIALS_DIRECTORY",
    "EXIT_CODE",
    "EXIT_STATUS",
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "LISTEN_FDNAMES",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_PIDFDID",
    "LOGS_DIRECTORY",
    "LOG_NAMESPACE",
    "MAINPID",
    "MANAGERPID",
    "MEMORY_PRESSURE_WATCH",
    "MEMORY_PRESSURE_WRITE",
    "MONITOR_EXIT_CODE",
    "MONITOR_EXIT_STATUS",
    "MONITOR_INVOCATION_ID",
    "MONITOR_SERVICE_RESULT",
    "MONITOR_UNIT",
    "NOTIFY_SOCKET",
    "PIDFILE",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "RUNTIME_DIRECTORY",
    "SERVICE_RESULT",
    "STATE_DIRECTORY",
    "SYSTEMD_EXEC_PID",
    "TRIGGER_PATH",
    "TRIGGER_TIMER_MONOTONIC_USEC",
    "TRIGGER_TIMER_REALTIME_USEC",
    "TRIGGER_UNIT",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
];

/// The locale variables systemd reads from `/etc/locale.conf`.
const LOCALE_VARS: &[&str] = &[
    "LANG",
    "LANGUAGE",
    "LC_CTYPE",
    "LC_NUMERIC",
    "LC_TIME",
    "LC_COLLATE",
    "LC_MONETARY",
    "LC_MESSAGES",
    "LC_PAPER",
    "LC_NAME",
    "LC_ADDRESS",
    "LC_TELEPHONE",
    "LC_MEASUREMENT",
    "LC_IDENTIFICATION",
];

/// How long all environment generators together may run (systemd's
/// `DEFAULT_TIMEOUT_USEC`).
const GENERATOR_TIMEOUT: Duration = Duration::from_secs(90);

/// The most an environment generator may print: more is a flood, and
/// ignored.
const OUTPUT_CAP: usize = 1024 * 1024;

/// systemd's `HIGH_RLIMIT_NOFILE`: the least hard open-file limit the system
/// manager gives services.
const HIGH_RLIMIT_NOFILE: u64 = 512 * 1024;

/// The soft open-file limit services get at most (`FD_SETSIZE`).
const FD_SETSIZE: u64 = 1024;

/// The least `RLIMIT_MEMLOCK` the system manager gives services (the
/// kernel's default since 5.16).
const DEFAULT_RLIMIT_MEMLOCK: u64 = 8 << 20;

type Block = Arc<Vec<(String, String)>>;

static ENVIRONMENT: RwLock<Option<(bool, Block)>> = RwLock::new(None);

/// The manager's environment block for the given mode: what [`init`]
/// computed, or, before it ran (a one-shot command), the block without
/// generators.
pub fn environment(user_mode: bool) -> Block {
    if let Ok(guard) = ENVIRONMENT.read()
        && let Some((mode, block)) = guard.as_ref()
        && *mode == user_mode
    {
        return Arc::clone(block);
    }
    let block = Arc::new(base_environment(user_mode, &process_env(), &read_file));
    if let Ok(mut guard) = ENVIRONMENT.write()
        && guard.is_none()
    {
        *guard = Some((user_mode, Arc::clone(&block)));
    }
    block
}

/// What clients set in the manager's environment (`systemctl
/// set-environment`, as Debian's user `dbus.socket` sets
/// `DBUS_SESSION_BUS_ADDRESS`; `unset-environment` takes entries out of
/// it): systemd's client environment, kept across [`init`] and merged over
/// the block computed there ([`BASE`]).
static CLIENT: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// The block [`init`] computed, before the client environment.
static BASE: RwLock<Option<(bool, Block)>> = RwLock::new(None);

/// Why a client's change was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid environment {0}")]
pub struct ClientEnvError(pub &'static str);

/// Takes the entries `unset` names out of the client environment (a name,
/// or a `NAME=value` that matches only that value), then sets the
/// `NAME=value` assignments of `set` (systemd's
/// `UnsetAndSetEnvironment`); services started from now on get the
/// result. Nothing changes when any entry is invalid.
pub fn change_client_environment(
    user_mode: bool,
    unset: &[String],
    set: &[String],
) -> Result<(), ClientEnvError> {
    for u in unset {
        let name = u.split_once('=').map_or(u.as_str(), |(n, _)| n);
        if !env_name_is_valid(name) || (u.contains('=') && !env_assignment_is_valid(u)) {
            return Err(ClientEnvError("variable names or assignments"));
        }
    }
    // systemd's strv_env_is_valid(): each name once.
    let mut names = std::collections::HashSet::new();
    if set.iter().any(|a| {
        !env_assignment_is_valid(a) || !names.insert(a.split_once('=').map_or("", |(n, _)| n))
    }) {
        return Err(ClientEnvError("assignments"));
    }
    // An entry to take out named twice is refused too.
    let mut entries = std::collections::HashSet::new();
    if unset.iter().any(|u| !entries.insert(u.as_str())) {
        return Err(ClientEnvError("variable names or assignments"));
    }
    // Held until the new block is in place, so that two changes (or a
    // change and a switch's `init`) do not lose one another.
    let mut client = CLIENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    modify_client(&mut client, unset, set);
    let base = BASE
        .read()
        .ok()
        .and_then(|g| {
            g.as_ref()
                .filter(|(m, _)| *m == user_mode)
                .map(|(_, b)| Arc::clone(b))
        })
        .unwrap_or_else(|| environment(user_mode));
    let block = merge_client(&base, &client);
    if let Ok(mut guard) = ENVIRONMENT.write() {
        *guard = Some((user_mode, Arc::new(block)));
    }
    tracing::info!(
        "flint: environment for units started from now on: {}",
        unset
            .iter()
            .map(|u| format!("-{u}"))
            .chain(set.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// systemd's `manager_client_environment_modify()` on `client`.
fn modify_client(client: &mut Vec<(String, String)>, unset: &[String], set: &[String]) {
    client.retain(|(n, v)| {
        !unset.iter().any(|u| match u.split_once('=') {
            Some((un, uv)) => un == n && uv == v,
            None => u == n,
        })
    });
    for a in set {
        if let Some((n, v)) = a.split_once('=') {
            env_replace(client, n, v);
        }
    }
    client.retain(|(n, _)| !SANITIZED.contains(&n.as_str()));
    client.sort();
}

/// The block services get: `base` with the client environment over it.
fn merge_client(base: &[(String, String)], client: &[(String, String)]) -> Vec<(String, String)> {
    let mut block = base.to_vec();
    for (n, v) in client {
        env_replace(&mut block, n, v);
    }
    block
}

/// Computes the manager's environment block, environment generators
/// included, and makes it the one every later spawn starts from. Returns
/// what went wrong with generators (each a line for the log). Called
/// before [`init_limits`], so that generators get the limits flint was
/// started with.
pub fn init(user_mode: bool) -> Vec<String> {
    let base = base_environment(user_mode, &process_env(), &read_file);
    let dirs = generator_dirs(user_mode, &env_of_process);
    let (block, problems) = run_generators(&dirs, base);
    let client = CLIENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let effective = merge_client(&block, &client);
    if let Ok(mut guard) = BASE.write() {
        *guard = Some((user_mode, Arc::new(block)));
    }
    if let Ok(mut guard) = ENVIRONMENT.write() {
        *guard = Some((user_mode, Arc::new(effective)));
    }
    drop(client);
    problems
}

/// The `oom_score_adj` services get when their unit sets none: a manager
/// that is not root runs them at its own value plus 100 (at most 1000),
/// so that the kernel picks a service before its manager
/// (`determine_default_oom_score_adjust()` in src/core/main.c); root's
/// services keep the value they inherit. Worked out once.
pub fn oom_score_adjust() -> Option<i32> {
    static DEFAULT: OnceLock<Option<i32>> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        if nix::unistd::getuid().is_root() {
            return None;
        }
        let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        raised_oom_score(own)
    })
}

/// `own` plus 100, at most 1000; `None` where that changes nothing.
fn raised_oom_score(own: i32) -> Option<i32> {
    let raised = if own >= 900 { 1000 } else { own + 100 };
    (raised != own).then_some(raised)
}

fn env_of_process(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// flint's own environment, as far as it is UTF-8.
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn read_file(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// systemd's `manager_default_environment()`, before the generators.
fn base_environment(
    user_mode: bool,
    process_env: &[(String, String)],
    read: &dyn Fn(&Path) -> Option<Vec<u8>>,
) -> Vec<(String, String)> {
    let mut block = Vec::new();
    if user_mode {
        for (k, v) in process_env {
            if env_name_is_valid(k) {
                env_replace(&mut block, k, v);
            }
        }
        env_replace(&mut block, "PATH", default_path());
    } else {
        block.push(("PATH".into(), default_path().into()));
        for (k, v) in locale(read) {
            env_replace(&mut block, &k, &v);
        }
    }
    block.retain(|(k, _)| !SANITIZED.contains(&k.as_str()));
    block.sort();
    block
}

/// systemd's `locale_setup()`: the locale variables of `/etc/locale.conf`
/// (or, where a system keeps them there, `/etc/default/locale`), or
/// `LANG=C.UTF-8` when none is set.
fn locale(read: &dyn Fn(&Path) -> Option<Vec<u8>>) -> Vec<(String, String)> {
    let text = read(Path::new("/etc/locale.conf"))
        .or_else(|| read(Path::new("/etc/default/locale")))
        .unwrap_or_default();
    let mut vars: Vec<(String, String)> = parse_env_file_full(&text)
        .map(|f| f.entries)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| LOCALE_VARS.contains(&k.as_str()) && !v.is_empty())
        .collect();
    if vars.is_empty() {
        vars.push(("LANG".into(), "C.UTF-8".into()));
    }
    vars
}

/// The directories environment generators are looked up in, highest
/// priority first: `$SYSTEMD_ENVIRONMENT_GENERATOR_PATH` (a trailing `:`
/// adds the defaults after it, an empty value means none), else systemd's
/// defaults for the mode.
fn generator_dirs(user_mode: bool, env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let kind = if user_mode {
        "user-environment-generators"
    } else {
        "system-environment-generators"
    };
    crate::generators::lookup_dirs("SYSTEMD_ENVIRONMENT_GENERATOR_PATH", kind, env)
}

/// The executables of `dirs` in the order they run (see
/// [`crate::conf_files`]), hidden files and backup copies left out.
fn generators(dirs: &[PathBuf]) -> Vec<PathBuf> {
    crate::generators::executables(dirs, |_| true)
}

/// Runs the generators of `dirs` in order, each with the block as the ones
/// before left it, and adds what each prints (systemd's
/// `gather_environment`): `NAME=value` lines in `EnvironmentFile=` syntax.
/// A generator that exits with an error still adds what it printed; one
/// killed, or still running at the deadline, adds nothing.
fn run_generators(
    dirs: &[PathBuf],
    mut block: Vec<(String, String)>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut problems = Vec::new();
    let deadline = Instant::now() + GENERATOR_TIMEOUT;
    let programs = generators(dirs);
    if programs.is_empty() {
        return (block, problems);
    }
    // Generators run with umask 0022, as systemd runs them.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    for program in programs {
        let shown = program.display().to_string();
        match run_one(&program, &block, deadline) {
            Ok((out, failure)) => match parse_env_file_full(&out) {
                Ok(parsed) => {
                    for (k, v) in parsed.entries {
                        if env_name_is_valid(&k) {
                            env_replace(&mut block, &k, &v);
                        }
                    }
                    problems.extend(parsed.warnings.into_iter().map(|w| format!("{shown}: {w}")));
                    problems.extend(failure.map(|f| format!("{shown}: {f}")));
                }
                Err(e) => problems.push(format!("{shown}: {e}")),
            },
            Err(e) => problems.push(format!("{shown}: {e}")),
        }
    }
    nix::sys::stat::umask(umask);
    (block, problems)
}

/// Runs one generator and returns what it printed, and whether it failed.
/// Its output is drained while it runs (see [`crate::generators::Output`]),
/// and no longer once it has exited, so that a background process it left
/// holding its stdout cannot hold flint up.
fn run_one(
    program: &Path,
    block: &[(String, String)],
    deadline: Instant,
) -> Result<(Vec<u8>, Option<String>), String> {
    let (mut out, write) = crate::generators::Output::new(OUTPUT_CAP)
        .map_err(|e| format!("cannot make its output pipe: {e}"))?;
    let mut child = std::process::Command::new(program)
        .env_clear()
        .envs(block.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(write)
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let pidfd = crate::spawn::pidfd_open(child.id().cast_signed()).ok();
    let mut status = None;
    let mut failure = None;
    crate::generators::pump_until(&mut [&mut out], deadline, || match child.try_wait() {
        Ok(Some(s)) => {
            status = Some(s);
            (true, Vec::new())
        }
        // Without a pidfd, a short poll wakes the wait.
        Ok(None) => (
            false,
            pidfd.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect(),
        ),
        Err(e) => {
            failure = Some(format!("cannot wait for it: {e}"));
            (true, Vec::new())
        }
    });
    if let Some(failure) = failure {
        return Err(failure);
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("timed out and was killed".into());
    };
    if out.cut() {
        return Err(format!(
            "printed more than {} KiB; its output is ignored",
            OUTPUT_CAP / 1024
        ));
    }
    let text = out.kept;
    // As systemd (`EXEC_DIR_IGNORE_ERRORS`): a generator that exits with an
    // error still adds what it printed; one killed by a signal adds nothing.
    match (status.code(), status.success()) {
        (_, true) => Ok((text, None)),
        (Some(_), false) => Ok((text, Some(format!("failed ({status})")))),
        (None, _) => Err(format!("failed ({status}); its output is ignored")),
    }
}

/// The default limits of services, and flint's own open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `RLIMIT_NOFILE` (soft, hard) for services without `LimitNOFILE=`.
    pub nofile: (u64, u64),
    /// `RLIMIT_MEMLOCK` (soft, hard) for services without `LimitMEMLOCK=`.
    pub memlock: (u64, u64),
    /// flint's own `RLIMIT_NOFILE` and `RLIMIT_MEMLOCK` after the bump,
    /// which children inherit unless told otherwise.
    pub own_nofile: (u64, u64),
    pub own_memlock: (u64, u64),
}

static LIMITS: OnceLock<Limits> = OnceLock::new();

/// The default limits, once [`init_limits`] ran.
pub fn limits() -> Option<&'static Limits> {
    LIMITS.get()
}

fn getrlimit(resource: Resource) -> (u64, u64) {
    nix::sys::resource::getrlimit(resource).unwrap_or((libc::RLIM_INFINITY, libc::RLIM_INFINITY))
}

fn setrlimit(resource: Resource, (soft, hard): (u64, u64)) -> bool {
    nix::sys::resource::setrlimit(resource, soft, hard).is_ok()
}

fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024 * 1024)
}

/// The defaults services get, from the limits flint was started with
/// (systemd's `fallback_rlimit_nofile()` and `fallback_rlimit_memlock()`).
fn fallback(
    system: bool,
    nofile: (u64, u64),
    memlock: (u64, u64),
    nr_open: u64,
) -> ((u64, u64), (u64, u64)) {
    let (mut soft, mut hard) = nofile;
    if system {
        hard = nr_open.min(hard.max(HIGH_RLIMIT_NOFILE));
    }
    soft = soft.min(FD_SETSIZE).min(hard);
    let (mut msoft, mut mhard) = memlock;
    if system {
        mhard = mhard.max(DEFAULT_RLIMIT_MEMLOCK);
        msoft = msoft.max(DEFAULT_RLIMIT_MEMLOCK);
    }
    ((soft, hard), (msoft, mhard))
}

/// Saves the limits flint was started with, computes the services'
/// defaults from them and raises flint's own open-file limit (systemd's
/// `bump_rlimit_nofile()`: as high as the kernel allows, or at least the
/// soft limit up to the hard one where flint may not raise the hard one).
/// Only the first call does anything.
pub fn init_limits(system: bool) -> &'static Limits {
    LIMITS.get_or_init(|| {
        let nofile = getrlimit(Resource::RLIMIT_NOFILE);
        let memlock = getrlimit(Resource::RLIMIT_MEMLOCK);
        let nr = nr_open();
        let (services_nofile, services_memlock) = fallback(system, nofile, memlock, nr);
        let wanted = (nr.max(nofile.0), nr.max(nofile.1));
        if wanted != nofile && !setrlimit(Resource::RLIMIT_NOFILE, wanted) {
            // Not allowed to raise the hard limit: the soft one up to it.
            setrlimit(Resource::RLIMIT_NOFILE, (nofile.1, nofile.1));
        }
        Limits {
            nofile: services_nofile,
            memlock: services_memlock,
            own_nofile: getrlimit(Resource::RLIMIT_NOFILE),
            own_memlock: memlock,
        }
    })
}

#[cfg(test)]
mod tests;
