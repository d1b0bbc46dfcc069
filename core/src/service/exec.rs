//! Builds the [`ExecPlan`] of one command of a unit: systemd's execution
//! environment, computed entirely in the parent.
//!
//! The order of environment sources is `exec-invoke.c`'s: the manager's base
//! environment (only `PATH` for the system manager, the whole environment
//! for the user manager), the per-spawn variables (`REMOTE_ADDR`, ...), the
//! exec variables (`LISTEN_*`, `INVOCATION_ID`, `USER`, ...),
//! `PassEnvironment=`, `Environment=`, `EnvironmentFile=` (read at every
//! spawn), and last `UnsetEnvironment=`. `$VAR`/`${VAR}` in the arguments are
//! expanded on the result, unless the command has the `:` prefix. Executables
//! named without a `/` are looked up in `ExecSearchPath=` or systemd's built-in
//! path, never in the unit's `PATH`.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::spawn::{
    CpuSched, ExecPlan, NamespacePlan, PassFd, Stdio, TtyAcquire, TtyReset, resolve_executable,
};
use crate::unit::load::{Unit, Value};
use crate::unit::value::env::{parse_env_file, replace_env_argv};
use crate::unit::value::exec::ExecCommand;
use crate::unit::value::process;

/// Why a command could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The executable was not found in the search path.
    #[error("executable '{0}' not found in the search path")]
    NotFound(String),
    /// An `EnvironmentFile=` without `-` could not be read.
    #[error("failed to read environment file {path}: {source}")]
    EnvironmentFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `User=` or `Group=` names nobody.
    #[error("unknown {what} '{name}'")]
    UnknownIdentity { what: &'static str, name: String },
    /// A value contains a NUL byte.
    #[error("argument or variable contains a NUL byte")]
    Nul,
    /// A file for standard input or output could not be opened.
    #[error("failed to open {path} for {what}: {source}")]
    StdioFile {
        path: String,
        what: &'static str,
        source: std::io::Error,
    },
    /// A standard stream set to `socket` without exactly one socket.
    #[error("a standard stream set to socket needs exactly one socket, got {0}")]
    SocketCount(usize),
    /// `StandardInput=fd:NAME` (or an output's) names no passed fd.
    #[error("Failed to load a named file descriptor '{0}': No such file or directory")]
    NamedFd(String),
    /// The sandbox's namespaces could not be worked out.
    #[error("failed to set up namespacing: {0}")]
    Sandbox(#[from] super::sandbox::SandboxError),
    /// The sandbox's seccomp filters could not be built.
    #[error("failed to set up the seccomp filters: {0}")]
    Seccomp(#[from] super::seccomp::SeccompError),
}

impl ExecError {
    /// The exit status systemd's child would end with for this failure
    /// (systemd finds the executable and the credentials in the child:
    /// 203/EXEC, 216/GROUP, 217/USER), or `None` when systemd fails the start
    /// in the manager instead (result `resources`).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ExecError::NotFound(_) => Some(203),
            ExecError::UnknownIdentity { what: "group", .. } => Some(216),
            ExecError::UnknownIdentity { .. } => Some(217),
            ExecError::Sandbox(_) => Some(226),
            ExecError::Seccomp(_) => Some(228),
            _ => None,
        }
    }
}

/// What the caller hands to one spawn besides the unit.
#[derive(Debug, Default)]
pub struct SpawnInputs {
    /// File descriptors to pass at 3.., with their names (`LISTEN_FDNAMES`).
    pub fds: Vec<(RawFd, String)>,
    /// File descriptors from the fd store, passed after `fds` (their
    /// blocking mode is left alone), with their names.
    pub stored_fds: Vec<(RawFd, String)>,
    /// The names of the `OpenFile=` fds, which the spawn opens and passes
    /// after the stored ones ([`add_open_files`]); counted in `LISTEN_FDS`
    /// and named in `LISTEN_FDNAMES` as if every one opens.
    pub open_files: Vec<String>,
    /// Whether the passed fds are sockets subject to `NonBlocking=`.
    pub fds_are_sockets: bool,
    /// Variables the manager sets for this spawn (`REMOTE_ADDR`, ...).
    pub extra_env: Vec<(String, String)>,
    /// The user manager passes its own environment; the system manager does not.
    pub user_mode: bool,
    /// The main process gets `LISTEN_*`; other commands only get the fds on stdio.
    pub main_process: bool,
    /// Edits from the policy plugins, applied after everything else.
    pub env_edits: Vec<crate::policy::EnvEdit>,
    /// The run's private `/tmp` and `/var/tmp` (`PrivateTmp=`).
    pub private_tmp: Option<super::sandbox::PrivateTmp>,
    /// The run's network and IPC namespaces (`PrivateNetwork=`,
    /// `PrivateIPC=`), joined instead of made per command.
    pub namespaces: Option<super::sandbox::RunNamespaces>,
    /// The run's credentials (`$CREDENTIALS_DIRECTORY`).
    pub credentials: Option<super::credentials::Credentials>,
    /// Standard input, output and error given by the caller (`systemd-run
    /// --pipe`), in place of what the unit's `Standard*=` settings say.
    pub stdio_fds: Option<[RawFd; 3]>,
}

/// A prepared command plus the files it needs kept open until it is spawned.
#[derive(Debug)]
pub struct PreparedExec {
    pub plan: ExecPlan,
    /// Files opened for stdio; dropped after the spawn.
    pub keep_open: Vec<OwnedFd>,
    /// The read end of the pipe that carries the command's output to
    /// flint's log (`StandardOutput=journal` and friends).
    pub log: Option<OwnedFd>,
    /// `OpenFile=` entries the spawn opens ([`add_open_files`]).
    pub open_files: Vec<crate::service::open_file::OpenFile>,
}

/// The capabilities systemd drops from the bounding set for
/// `PrivateDevices=` (`CAP_MKNOD`, `CAP_SYS_RAWIO`), `ProtectKernelModules=`
/// (`CAP_SYS_MODULE`), `ProtectKernelLogs=` (`CAP_SYSLOG`) and
/// `ProtectClock=` (`CAP_SYS_TIME`, `CAP_WAKE_ALARM`).
fn implied_capability_drops(unit: &Unit, section: &str) -> u64 {
    let on = |key| unit.get_bool(section, key).unwrap_or(false);
    let bit = |name| process::capability_from_name(name).map_or(0, |c| 1u64 << c);
    let mut drop = 0;
    if on("PrivateDevices") {
        drop |= bit("cap_mknod") | bit("cap_sys_rawio");
    }
    if on("ProtectKernelModules") {
        drop |= bit("cap_sys_module");
    }
    if on("ProtectKernelLogs") {
        drop |= bit("cap_syslog");
    }
    if on("ProtectClock") {
        drop |= bit("cap_sys_time") | bit("cap_wake_alarm");
    }
    drop
}

/// Whether flint may change the bounding set (`CAP_SETPCAP` in its
/// permitted set). A user flint may not: systemd's user manager runs such
/// services in a user namespace of their own, which flint does not build,
/// so the drops implied by the settings above are left out there.
fn can_drop_capabilities() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(|| {
        crate::unit::value::process::own_capabilities("CapPrm")
            .is_some_and(|prm| prm & (1u64 << 8) != 0)
    })
}

/// Makes the lookups every spawn needs (the capability numbers, whether
/// namespaces can be made, root's passwd entry, flint's signal
/// dispositions), so that the first connection after a start does not wait
/// for them.
pub fn warm_lookups(user_mode: bool) {
    cap_last_cap();
    can_drop_capabilities();
    super::sandbox::can_make_namespaces();
    crate::spawn::warm_up();
    if !user_mode {
        root_user();
    }
}

/// The highest capability number the running kernel knows
/// (`/proc/sys/kernel/cap_last_cap`, read once).
fn cap_last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
            .min(63)
    })
}

fn cstring(s: impl Into<Vec<u8>>) -> Result<CString, ExecError> {
    CString::new(s).map_err(|_| ExecError::Nul)
}

fn set_var(env: &mut Vec<(String, String)>, name: &str, value: String) {
    match env.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name.to_string(), value)),
    }
}

/// A fresh 128-bit id as 32 hex digits, like systemd's `INVOCATION_ID`: a
/// random v4 UUID (`sd_id128_randomize()`). The random bytes are fetched
/// for 16 ids at a time (one `getrandom(2)` instead of one per id; up to
/// 256 bytes it is never cut short by a signal).
pub fn invocation_id() -> String {
    use std::cell::RefCell;
    const IDS: usize = 16;
    thread_local! {
        static POOL: RefCell<([u8; 16 * IDS], usize)> = const { RefCell::new(([0; 16 * IDS], 16 * IDS)) };
    }
    let mut bytes = POOL.with_borrow_mut(|(buf, used)| {
        if *used == buf.len() {
            // getrandom(2) only fails for bad arguments or before the pool
            // is ready at early boot; a zero id is still a valid (if
            // unlucky) value.
            buf.fill(0);
            // SAFETY: the buffer is valid for writes of its length.
            let _ = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
            *used = 0;
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&buf[*used..*used + 16]);
        *used += 16;
        id
    });
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    crate::policy::hex(&bytes)
}

/// 32 hex digits as the 16 bytes they spell.
fn hex_id(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn dynamic_user(unit: &Unit, section: &str) -> bool {
    unit.get_bool(section, "DynamicUser").unwrap_or(false)
}

/// The user a unit's commands run as: `User=`, or with `DynamicUser=yes`
/// that name (or the unit's name) allocated from the dynamic range.
fn unit_user(unit: &Unit, section: &str) -> Result<Option<nix::unistd::User>, ExecError> {
    if dynamic_user(unit, section) {
        let name = unit
            .get_str(section, "User")
            .map_or_else(|| unit.id.prefix().to_string(), str::to_string);
        return super::dynamic_user::resolve(&name)
            .map(Some)
            .ok_or(ExecError::UnknownIdentity {
                what: "dynamic user",
                name,
            });
    }
    unit.get_str(section, "User").map(lookup_user).transpose()
}

/// The uid and gid that own what flint makes for a unit (its directories,
/// its credentials): `User=` with `Group=` or the user's group; `None`
/// for root.
fn owner_of(
    unit: &Unit,
    section: &str,
    user: Option<&nix::unistd::User>,
) -> Result<Option<(u32, u32)>, ExecError> {
    let Some(u) = user else {
        return Ok(None);
    };
    let gid = match unit.get_str(section, "Group") {
        Some(g) if !dynamic_user(unit, section) => lookup_group(g)?,
        _ => u.gid.as_raw(),
    };
    Ok(Some((u.uid.as_raw(), gid)))
}

/// The owner of a unit's directories and credentials (see `owner_of`).
pub fn unit_owner(unit: &Unit, section: &str) -> Result<Option<(u32, u32)>, ExecError> {
    owner_of(unit, section, unit_user(unit, section)?.as_ref())
}

/// The password database's entry for uid 0, which every system service
/// without `User=` needs for `$USER`. Looked up again only when
/// `/etc/passwd` changed (and not while it was changed a moment ago): an
/// NSS lookup per spawn costs more than the rest of the environment. The
/// file is looked at once per [`PASSWD_RECHECK`] at most: under a stream of
/// connections that `stat` was a tenth of building the environment.
fn root_user() -> Option<nix::unistd::User> {
    use crate::stamp::FileStamp;
    use std::time::Instant;
    struct Entry {
        stamp: FileStamp,
        checked: Instant,
        user: Option<nix::unistd::User>,
    }
    static CACHE: std::sync::Mutex<Option<Entry>> = std::sync::Mutex::new(None);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    if let Some(entry) = cache.as_mut() {
        if now.duration_since(entry.checked) < PASSWD_RECHECK {
            return entry.user.clone();
        }
        if FileStamp::of(std::path::Path::new("/etc/passwd")).is_ok_and(|s| s == entry.stamp) {
            entry.checked = now;
            return entry.user.clone();
        }
    }
    let stamp = FileStamp::of(std::path::Path::new("/etc/passwd")).ok();
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(0))
        .ok()
        .flatten();
    *cache = stamp.filter(FileStamp::settled).map(|stamp| Entry {
        stamp,
        checked: now,
        user: user.clone(),
    });
    user
}

/// How long [`root_user`] trusts its answer without looking at
/// `/etc/passwd`.
const PASSWD_RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

fn lookup_user(name: &str) -> Result<nix::unistd::User, ExecError> {
    let found = if let Ok(uid) = name.parse::<u32>() {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
    } else {
        nix::unistd::User::from_name(name).ok().flatten()
    };
    found.ok_or_else(|| ExecError::UnknownIdentity {
        what: "user",
        name: name.to_string(),
    })
}

fn lookup_group(name: &str) -> Result<u32, ExecError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
        .ok_or_else(|| ExecError::UnknownIdentity {
            what: "group",
            name: name.to_string(),
        })
}

/// Builds the environment a command of `unit` starts with, before `$VAR`
/// expansion. The variables systemd sets to the child's own pid
/// (`SYSTEMD_EXEC_PID`, `WATCHDOG_PID`) are left out; [`prepare`] has the
/// child add them.
pub fn environment(
    unit: &Unit,
    section: &str,
    inputs: &SpawnInputs,
    user: Option<&nix::unistd::User>,
) -> Result<Vec<(String, String)>, ExecError> {
    let mut env = environment_with_pid_vars(unit, section, inputs, user)?;
    env.retain(|(_, v)| v != PID_PLACEHOLDER);
    Ok(env)
}

/// The value that marks a variable the child sets to its own pid, as long
/// as no later source (`Environment=`, ...) replaces it.
const PID_PLACEHOLDER: &str = "\u{1}flint-child-pid";

fn environment_with_pid_vars(
    unit: &Unit,
    section: &str,
    inputs: &SpawnInputs,
    user: Option<&nix::unistd::User>,
) -> Result<Vec<(String, String)>, ExecError> {
    // The manager's block: its own environment (user mode) or a clean one
    // with the locale (system), then what environment generators added.
    let mut env: Vec<(String, String)> = super::defaults::environment(inputs.user_mode).to_vec();
    for (k, v) in &inputs.extra_env {
        set_var(&mut env, k, v.clone());
    }
    // The user manager's services (not its socket commands) learn its pid.
    if inputs.user_mode && section == "Service" {
        set_var(&mut env, "MANAGERPID", crate::own_pid().to_string());
    }
    let inetd = stdio_is_socket(unit, section);
    let passed = if inetd {
        inputs.stored_fds.len()
    } else {
        inputs.fds.len() + inputs.stored_fds.len()
    } + inputs.open_files.len();
    if inputs.main_process && passed > 0 {
        set_var(&mut env, "LISTEN_FDS", passed.to_string());
        let names: Vec<&str> = inputs
            .fds
            .iter()
            .filter(|_| !inetd)
            .chain(inputs.stored_fds.iter())
            .map(|(_, n)| n.as_str())
            .chain(inputs.open_files.iter().map(String::as_str))
            .collect();
        set_var(&mut env, "LISTEN_FDNAMES", names.join(":"));
    }
    if inputs.extra_env.iter().any(|(k, _)| k == "WATCHDOG_USEC") {
        set_var(&mut env, "WATCHDOG_PID", PID_PLACEHOLDER.into());
    }
    // `$USER` is always set (`root` for system units without `User=`);
    // `$LOGNAME`, `$HOME` and `$SHELL` with `SetLoginEnvironment=`, which
    // defaults to on when a user is given.
    let root;
    let login_user = match user {
        Some(u) => Some(u),
        None if !inputs.user_mode && !dynamic_user(unit, section) => {
            root = root_user();
            root.as_ref()
        }
        None => None,
    };
    let login_env = unit
        .get_bool(section, "SetLoginEnvironment")
        .unwrap_or(user.is_some());
    if let Some(u) = login_user {
        set_var(&mut env, "USER", u.name.clone());
        if login_env {
            set_var(&mut env, "LOGNAME", u.name.clone());
            let home = u.dir.to_string_lossy().into_owned();
            if !home.is_empty() && home != "/" {
                set_var(&mut env, "HOME", home);
            }
            let shell = u.shell.to_string_lossy().into_owned();
            if !shell.ends_with("/nologin") && !shell.ends_with("/false") {
                set_var(&mut env, "SHELL", shell);
            }
        }
    }
    if let Some(term) = term_for(unit, section) {
        set_var(&mut env, "TERM", term);
    }
    set_var(&mut env, "SYSTEMD_EXEC_PID", PID_PLACEHOLDER.into());
    if let Some(Value::Raw(p) | Value::Str(p)) = unit.get(section, "ExecSearchPath") {
        set_var(&mut env, "PATH", p.clone());
    }
    for (v, _) in unit.entries(section, "PassEnvironment") {
        if let Value::Str(name) = v
            && let Ok(val) = std::env::var(name)
        {
            set_var(&mut env, name, val);
        }
    }
    for (v, _) in unit.entries(section, "Environment") {
        if let Value::Env(k, val) = v {
            set_var(&mut env, k, val.clone());
        }
    }
    for (v, _) in unit.entries(section, "EnvironmentFile") {
        if let Value::EnvFile { path, optional } = v {
            match std::fs::read(path) {
                Ok(bytes) => match parse_env_file(&bytes) {
                    Ok(pairs) => {
                        for (k, val) in pairs {
                            set_var(&mut env, &k, val);
                        }
                    }
                    Err(e) if !optional => {
                        return Err(ExecError::EnvironmentFile {
                            path: path.clone(),
                            source: std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                e.to_string(),
                            ),
                        });
                    }
                    Err(_) => {}
                },
                Err(e) if !optional => {
                    return Err(ExecError::EnvironmentFile {
                        path: path.clone(),
                        source: e,
                    });
                }
                Err(_) => {}
            }
        }
    }
    for (v, _) in unit.entries(section, "UnsetEnvironment") {
        if let Value::Str(spec) = v {
            if spec.contains('=') {
                env.retain(|(k, val)| format!("{k}={val}") != *spec);
            } else {
                env.retain(|(k, _)| k != spec);
            }
        }
    }
    for edit in &inputs.env_edits {
        edit.apply(&mut env);
    }
    Ok(env)
}

/// Whether `UnsetEnvironment=` removes variable `name` whatever its value
/// (by name; an assignment names a value flint's own variables never
/// match).
fn unsets(unit: &Unit, section: &str, name: &str) -> bool {
    unit.entries(section, "UnsetEnvironment")
        .iter()
        .any(|(v, _)| matches!(v, Value::Str(spec) if spec == name))
}

/// Whether a standard stream of the unit's commands is its socket
/// (`StandardInput=`, `StandardOutput=` or `StandardError=socket`): the one
/// socket then goes to the stdio only, without `LISTEN_*`, as systemd's
/// `exec_invoke()` hands it on.
pub(crate) fn stdio_is_socket(unit: &Unit, section: &str) -> bool {
    ["StandardInput", "StandardOutput", "StandardError"]
        .iter()
        .any(|key| unit.get_str(section, key) == Some("socket"))
}

/// `StandardInput=` as systemd holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    Null,
    Tty(TtyAcquire),
    Socket,
    /// `fd:NAME` (the name defaults to `stdin`).
    Named(String),
    Data,
    File(String),
}

impl Input {
    fn is_terminal(&self) -> bool {
        matches!(self, Input::Tty(_))
    }
}

/// `StandardOutput=`/`StandardError=` as systemd holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    Inherit,
    Null,
    Tty,
    /// journal, syslog, kmsg; `console` also for their `+console` forms.
    Log {
        console: bool,
    },
    Socket,
    Named(String),
    /// `file:`, `append:`, `truncate:`.
    File {
        path: String,
        append: bool,
        truncate: bool,
    },
}

impl Output {
    fn parse(spec: &str, fd_default: &str) -> Output {
        let file = |path: &str, append, truncate| Output::File {
            path: path.to_string(),
            append,
            truncate,
        };
        match spec {
            "null" => Output::Null,
            "tty" => Output::Tty,
            "socket" => Output::Socket,
            s if s.ends_with("+console") => Output::Log { console: true },
            s if s.starts_with("journal") || s.starts_with("syslog") || s.starts_with("kmsg") => {
                Output::Log { console: false }
            }
            s => {
                if let Some(n) = s.strip_prefix("fd:") {
                    Output::Named(if n.is_empty() { fd_default } else { n }.to_string())
                } else if let Some(p) = s.strip_prefix("file:") {
                    file(p, false, false)
                } else if let Some(p) = s.strip_prefix("append:") {
                    file(p, true, false)
                } else if let Some(p) = s.strip_prefix("truncate:") {
                    file(p, false, true)
                } else {
                    Output::Inherit
                }
            }
        }
    }

    /// systemd's `is_terminal_output()`.
    fn is_terminal(&self) -> bool {
        matches!(self, Output::Tty | Output::Log { console: true })
    }
}

/// The standard I/O settings of a unit after systemd's load-time fixes.
struct StdioSpec {
    input: Input,
    output: Output,
    error: Output,
    data: Vec<u8>,
    tty_path_set: bool,
}

impl StdioSpec {
    fn of(unit: &Unit, section: &str) -> StdioSpec {
        let data = stdin_data(unit, section);
        let input = match unit.get_str(section, "StandardInput") {
            Some("tty") => Input::Tty(TtyAcquire::Wait),
            Some("tty-force") => Input::Tty(TtyAcquire::Force),
            Some("tty-fail") => Input::Tty(TtyAcquire::Try),
            Some("socket") => Input::Socket,
            Some("data") => Input::Data,
            Some(s) if s.starts_with("fd:") => Input::Named(match &s[3..] {
                "" => "stdin".to_string(),
                n => n.to_string(),
            }),
            Some(s) if s.starts_with("file:") => Input::File(s[5..].to_string()),
            // `null`, also when unset; with data it becomes `data`
            // (service_fix_stdio()).
            _ if !data.is_empty() => Input::Data,
            _ => Input::Null,
        };
        let spec = |key, default| {
            unit.get_str(section, key)
                .map_or(Output::Inherit, |s| Output::parse(s, default))
        };
        let mut output = spec("StandardOutput", "stdout");
        let mut error = spec("StandardError", "stderr");
        let set = |key| unit.get_str(section, key).is_some();
        if section == "Service" {
            // service_fix_stdio(): inputs that are streams in both
            // directions keep `inherit`; otherwise `inherit` means the
            // manager's defaults (journal, and stderr like stdout).
            if !matches!(input, Input::Tty(_) | Input::Socket | Input::Named(_))
                && output == Output::Inherit
            {
                output = Output::Log { console: false };
            }
        } else if !set("StandardOutput") {
            // Socket units start from the manager's default output.
            output = Output::Log { console: false };
        }
        if !set("StandardError") {
            error = Output::Inherit;
        }
        StdioSpec {
            input,
            output,
            error,
            data,
            tty_path_set: set("TTYPath"),
        }
    }

    /// Whether the command uses the terminal of `TTYPath=` (systemd's
    /// `exec_context_needs_term()`), which also decides the terminal reset.
    fn touches_tty(&self) -> bool {
        self.input.is_terminal()
            || self.output.is_terminal()
            || self.error.is_terminal()
            || self.tty_path_set
    }
}

/// Sets up stdio the way systemd's `setup_input()`/`setup_output()` do.
struct StdioSetup<'a> {
    spec: &'a StdioSpec,
    inputs: &'a SpawnInputs,
    umask: u32,
    keep_open: &'a mut Vec<OwnedFd>,
    log: &'a mut Option<(OwnedFd, RawFd)>,
}

impl StdioSetup<'_> {
    fn keep(&mut self, fd: OwnedFd) -> Stdio {
        let raw = fd.as_raw_fd();
        self.keep_open.push(fd);
        Stdio::Fd(raw)
    }

    fn socket(&self) -> Result<RawFd, ExecError> {
        match self.inputs.fds.first() {
            Some((fd, _)) if self.inputs.fds.len() == 1 => Ok(*fd),
            _ => Err(ExecError::SocketCount(self.inputs.fds.len())),
        }
    }

    /// systemd's `exec_context_named_iofds()`: for each of stdin, stdout and
    /// stderr that names an fd, the first passed fd (socket or stored) with
    /// that name not taken by an earlier one. Every name must be found,
    /// even for a stderr that will copy stdout.
    fn named_fds(&self) -> Result<[Option<RawFd>; 3], ExecError> {
        let wanted: [Option<&str>; 3] = [
            match &self.spec.input {
                Input::Named(n) => Some(n),
                _ => None,
            },
            match &self.spec.output {
                Output::Named(n) => Some(n),
                _ => None,
            },
            match &self.spec.error {
                Output::Named(n) => Some(n),
                _ => None,
            },
        ];
        let mut found: [Option<RawFd>; 3] = [None; 3];
        for (fd, name) in self.inputs.fds.iter().chain(&self.inputs.stored_fds) {
            if let Some(slot) = (0..3).find(|&i| found[i].is_none() && wanted[i] == Some(name)) {
                found[slot] = Some(*fd);
            }
        }
        for (want, got) in wanted.iter().zip(found) {
            if let (Some(name), None) = (want, got) {
                return Err(ExecError::NamedFd((*name).to_string()));
            }
        }
        Ok(found)
    }

    fn named(&self, index: usize) -> Result<RawFd, ExecError> {
        self.named_fds()?[index].ok_or_else(|| ExecError::NamedFd(String::new()))
    }

    /// Standard input, and the input kind after `fixup_input()`.
    fn input(&mut self, apply_tty_stdin: bool) -> Result<(Stdio, Input), ExecError> {
        let input = match &self.spec.input {
            // Only the main process gets the terminal (EXEC_APPLY_TTY_STDIN).
            Input::Tty(_) if !apply_tty_stdin => Input::Null,
            Input::Data if self.spec.data.is_empty() => Input::Null,
            other => other.clone(),
        };
        let stdio = match &input {
            Input::Null => Stdio::Null,
            Input::Tty(mode) => Stdio::TtyInput(*mode),
            Input::Socket => Stdio::Fd(self.socket()?),
            Input::Named(_) => Stdio::Fd(self.named(0)?),
            Input::Data => {
                let fd = data_fd(&self.spec.data)?;
                self.keep(fd)
            }
            Input::File(path) => {
                // Read-write when an output names the same file.
                let rw = [&self.spec.output, &self.spec.error]
                    .iter()
                    .any(|o| matches!(o, Output::File { path: p, append: false, truncate: false } if p == path));
                let fd = acquire_path(path, "standard input", rw, false, false, self.umask)?;
                self.keep(fd)
            }
        };
        Ok((stdio, input))
    }

    /// Standard output (`index` 1) or error (2), given the fixed-up input.
    fn output(&mut self, index: usize, input: &Input) -> Result<Stdio, ExecError> {
        let (what, spec) = if index == 1 {
            ("standard output", &self.spec.output)
        } else {
            ("standard error", &self.spec.error)
        };
        let fixup = |o: &Output| {
            if *o == Output::Socket && self.inputs.fds.len() != 1 {
                Output::Inherit
            } else {
                o.clone()
            }
        };
        let pid1 = crate::own_pid() == 1;
        let stdout = fixup(&self.spec.output);
        let mut o = fixup(spec);
        if index == 2 {
            let e = o.clone();
            if e == Output::Inherit
                && stdout == Output::Inherit
                && *input == Input::Null
                && !self.spec.input.is_terminal()
                && !pid1
            {
                return Ok(Stdio::Inherit);
            }
            // can_inherit_stderr_from_stdout()
            let same = match (&e, &stdout) {
                (Output::Inherit, _) | (Output::Log { .. }, Output::Log { .. }) => true,
                (Output::Named(x), Output::Named(y)) => x == y,
                (a, b) => a == b,
            };
            if same {
                return Ok(Stdio::SameAsStdout);
            }
            o = e;
        } else if o == Output::Inherit {
            if *input == Input::Null && self.spec.input.is_terminal() {
                return Ok(Stdio::TtyOutput);
            }
            if !matches!(input, Input::Null | Input::Data) {
                return Ok(Stdio::SameAsStdin);
            }
            return Ok(if pid1 { Stdio::Null } else { Stdio::Inherit });
        }
        Ok(match o {
            Output::Inherit => Stdio::Inherit,
            Output::Null => Stdio::Null,
            Output::Tty if input.is_terminal() => Stdio::SameAsStdin,
            Output::Tty => Stdio::TtyOutput,
            Output::Socket => Stdio::Fd(self.socket()?),
            Output::Named(_) => Stdio::Fd(self.named(index)?),
            Output::File {
                path,
                append,
                truncate,
            } => {
                if matches!(input, Input::File(p) if *p == path) {
                    Stdio::SameAsStdin
                } else {
                    let fd = acquire_path(&path, what, true, append, truncate, self.umask)?;
                    self.keep(fd)
                }
            }
            // journal, syslog, kmsg and their +console forms: flint's own
            // log, one pipe per command, read line by line by flint.
            Output::Log { .. } => {
                if self.log.is_none() {
                    let (read, write) =
                        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
                            ExecError::StdioFile {
                                path: "pipe".into(),
                                what,
                                source: std::io::Error::from(e),
                            }
                        })?;
                    let raw = write.as_raw_fd();
                    self.keep_open.push(write);
                    *self.log = Some((read, raw));
                }
                self.log
                    .as_ref()
                    .map_or(Stdio::Inherit, |(_, w)| Stdio::Fd(*w))
            }
        })
    }
}

/// systemd's `acquire_path()`: opens a `file:`/`append:`/`truncate:` path
/// (created with `0666 & ~UMask` when written), or connects to it when it is
/// an `AF_UNIX` socket (`ENXIO`), shutting down the unused direction.
///
/// systemd opens the path in the forked child, so an open that waits (a
/// FIFO without a writer or reader, a serial line without carrier) holds up
/// only that service. flint opens it while preparing the command, on its
/// event loop, so the open must never wait: it is made with `O_NONBLOCK`
/// (cleared afterwards, the service gets a blocking fd), and a FIFO is
/// opened read-write, which Linux completes at once (fifo(7); `O_TRUNC` is
/// ignored for it, open(2)). The service
/// then waits in its first read for a writer's data, or in its writes once
/// the pipe is full, instead of in the open. Unlike under systemd, it keeps
/// the other end itself: its reads do not see end-of-file when the last
/// writer goes, nor its writes `EPIPE` when the last reader goes.
fn acquire_path(
    path: &str,
    what: &'static str,
    write: bool,
    append: bool,
    truncate: bool,
    umask: u32,
) -> Result<OwnedFd, ExecError> {
    let err = |source| ExecError::StdioFile {
        path: path.to_string(),
        what,
        source,
    };
    let fifo = std::fs::metadata(path)
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
    let mut opts = OpenOptions::new();
    opts.read(!write || what == "standard input" || fifo);
    if write || fifo {
        opts.write(true)
            .create(true)
            .append(append)
            .truncate(truncate);
    }
    opts.mode(0o666 & !umask)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK);
    match opts.open(path) {
        Ok(f) => {
            let fd = OwnedFd::from(f);
            set_blocking(&fd).map_err(err)?;
            Ok(fd)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            let stream = std::os::unix::net::UnixStream::connect(path).map_err(|ce| {
                if matches!(ce.raw_os_error(), Some(libc::ENOTSOCK | libc::EINVAL)) {
                    err(e)
                } else {
                    err(ce)
                }
            })?;
            let half = if what == "standard input" && !write {
                std::net::Shutdown::Write
            } else {
                std::net::Shutdown::Read
            };
            if !(what == "standard input" && write) {
                stream.shutdown(half).map_err(err)?;
            }
            Ok(OwnedFd::from(stream))
        }
        Err(e) => Err(err(e)),
    }
}

/// Clears `O_NONBLOCK` on `fd`.
fn set_blocking(fd: &OwnedFd) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags & !OFlag::O_NONBLOCK))?;
    Ok(())
}

/// `TTYPath=`, or `/dev/console`.
fn tty_path(unit: &Unit, section: &str) -> String {
    match unit.get(section, "TTYPath") {
        Some(Value::Path(p)) => p.to_string_lossy().into_owned(),
        _ => "/dev/console".to_string(),
    }
}

/// systemd's `vtnr_from_tty()`: `N` of `/dev/ttyN` (0..=63).
fn vt_number(path: &str) -> Option<u32> {
    let name = path.strip_prefix("/dev/").unwrap_or(path);
    let digits = name.strip_prefix("tty")?;
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().filter(|n| *n <= 63)
}

/// The keyboard mode systemd's `vt_reset_keyboard()` sets: Unicode unless
/// the kernel's VT default is not UTF-8.
fn vt_keyboard_mode() -> i32 {
    const K_XLATE: i32 = 1;
    const K_UNICODE: i32 = 3;
    match std::fs::read_to_string("/sys/module/vt/parameters/default_utf8") {
        Ok(v) if crate::unit::value::bool::parse_bool(v.trim()) == Ok(false) => K_XLATE,
        _ => K_UNICODE,
    }
}

/// `$TERM` for a unit that uses a terminal (systemd's `build_environment()`):
/// flint's own `$TERM` for `/dev/console` when flint is PID 1, the kernel's
/// `systemd.tty.term.TTY=`, else `linux` for virtual consoles and `vt220`.
fn term_for(unit: &Unit, section: &str) -> Option<String> {
    let spec = StdioSpec::of(unit, section);
    if !spec.touches_tty() {
        return None;
    }
    let path = tty_path(unit, section);
    let name = path.strip_prefix("/dev/").unwrap_or(&path).to_string();
    if path == "/dev/console" && crate::own_pid() == 1 {
        if let Ok(t) = std::env::var("TERM") {
            return Some(t);
        }
    } else if !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric()) {
        let key = format!("systemd.tty.term.{name}=");
        if let Ok(cmdline) = std::fs::read_to_string("/proc/cmdline")
            && let Some(v) = cmdline
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&key))
        {
            return Some(v.to_string());
        }
    }
    let resolved = if name == "console" {
        std::fs::read_to_string("/sys/class/tty/console/active")
            .ok()
            .and_then(|a| a.split_whitespace().last().map(str::to_string))
            .map(|t| {
                if t == "tty0" {
                    std::fs::read_to_string("/sys/class/tty/tty0/active")
                        .map(|a| a.trim().to_string())
                        .unwrap_or(t)
                } else {
                    t
                }
            })
            .unwrap_or_default()
    } else {
        name
    };
    Some(
        if vt_number(&resolved).is_some() {
            "linux"
        } else {
            "vt220"
        }
        .to_string(),
    )
}

/// What systemd's `exec_context_revert_tty()` does when a service stops:
/// the terminal reset of `TTYReset=`/`TTYVHangup=`/`TTYVTDisallocate=` again,
/// then the terminal of `TTYPath=` back to `root:tty` mode 0620 (undoing
/// the `User=` ownership the child gave it). Only for units that use a
/// terminal; best effort.
pub fn revert_tty(unit: &Unit, section: &str) {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let flag = |k| unit.get_bool(section, k).unwrap_or(false);
    let (reset, vhangup, vt_disallocate) = (
        flag("TTYReset"),
        flag("TTYVHangup"),
        flag("TTYVTDisallocate"),
    );
    // exec_context_may_touch_tty(), checked before anything that reads a
    // file: this runs for every service that stops, every `Accept=yes`
    // instance included.
    let may_touch = reset || vhangup || vt_disallocate || {
        let spec = StdioSpec::of(unit, section);
        spec.input.is_terminal() || spec.output.is_terminal() || spec.error.is_terminal()
    };
    if !may_touch {
        return;
    }
    let how = TtyReset {
        reset,
        vhangup,
        vt_disallocate,
        vt: None,
        keyboard_mode: vt_keyboard_mode(),
    };
    let path = tty_path(unit, section);
    let Ok(c_path) = CString::new(path.clone()) else {
        return;
    };
    crate::spawn::reset_terminal(
        &c_path,
        &TtyReset {
            vt: vt_number(&path),
            ..how
        },
    );
    match std::fs::metadata(&path) {
        Ok(m) if m.file_type().is_char_device() => {
            // The `tty` group (TTY_GID).
            let _ = std::os::unix::fs::chown(&path, Some(0), Some(5));
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620));
        }
        _ => {}
    }
}

/// The scheduling and process settings that need nothing but the unit.
fn apply_process_attributes(unit: &Unit, section: &str, plan: &mut ExecPlan) {
    if let Some(text) = unit.get_str(section, "CoredumpFilter") {
        plan.coredump_filter = u64::from_str_radix(text.trim_start_matches("0x"), 16).ok();
    }
    if let (Some(Value::Word(policy)), Some(Value::U64(priority))) = (
        unit.get(section, "CPUSchedulingPolicy"),
        unit.get(section, "CPUSchedulingPriority"),
    ) {
        plan.cpu_sched = process::sched_policy(policy).map(|policy| CpuSched {
            policy,
            priority: u32::try_from(*priority).unwrap_or(0),
            reset_on_fork: unit
                .get_bool(section, "CPUSchedulingResetOnFork")
                .unwrap_or(false),
        });
    }
    // `numa` (the mask of `NUMAMask=`) is not supported: no affinity.
    if let Some(Value::Str(cpus)) = unit.get(section, "CPUAffinity") {
        let mask = process::parse_cpu_set(cpus)
            .map(|(set, _)| set.mask())
            .unwrap_or_default();
        // An empty set is kept, as in systemd: the kernel refuses it.
        plan.cpu_affinity = Some(if mask.is_empty() { vec![0] } else { mask });
    }
    if let (Some(Value::Word(class)), Some(Value::U64(data))) = (
        unit.get(section, "IOSchedulingClass"),
        unit.get(section, "IOSchedulingPriority"),
    ) {
        plan.ioprio = process::ioprio_class(class)
            .map(|c| process::ioprio_value(c, u32::try_from(*data).unwrap_or(0)));
    }
    if let Some(Value::U64(ns)) = unit.get(section, "TimerSlackNSec") {
        plan.timer_slack_nsec = Some(*ns);
    }
    if let Some(name) = unit.get_str(section, "Personality") {
        plan.personality = process::personality(name);
    }
}

/// The bytes of `StandardInputText=` (C-unescaped, each followed by a
/// newline) and `StandardInputData=` (base64), in the order of the lines
/// that give them; an empty assignment of either drops everything before it.
pub fn stdin_data(unit: &Unit, section: &str) -> Vec<u8> {
    // Fragment first, then the drop-ins in order, each by line.
    let position = |o: &crate::unit::load::Origin| {
        let file = unit
            .dropins
            .iter()
            .position(|d| *d == o.path)
            .map_or(0, |i| i + 1);
        (file, o.line)
    };
    // (where the line is, its bytes or `None` for a reset)
    type Part = ((usize, u32), Option<Vec<u8>>);
    let mut parts: Vec<Part> = Vec::new();
    for (key, text) in [("StandardInputText", true), ("StandardInputData", false)] {
        for (v, origin) in unit.entries(section, key) {
            let raw = match v {
                Value::Str(s) | Value::Raw(s) => s.as_str(),
                _ => continue,
            };
            let bytes = if raw.is_empty() {
                None
            } else if text {
                match crate::unit::value::words::cunescape_bytes(raw.as_bytes(), false, false) {
                    Ok(mut b) => {
                        b.push(b'\n');
                        Some(b)
                    }
                    Err(_) => continue,
                }
            } else {
                match decode_base64(raw) {
                    Some(b) => Some(b),
                    None => continue,
                }
            };
            parts.push((position(origin), bytes));
        }
    }
    parts.sort_by_key(|(pos, _)| *pos);
    let mut out = Vec::new();
    for (_, bytes) in parts {
        match bytes {
            Some(b) => out.extend_from_slice(&b),
            None => out.clear(),
        }
    }
    out
}

/// Decodes base64 (standard alphabet, `=` padding optional), ignoring
/// whitespace as systemd's `unbase64mem()` does. `None` for anything else.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padding = false;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding = true;
                continue;
            }
            _ => return None,
        };
        if padding {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// A sealed-size memfd holding `data`, positioned at its start, for
/// `StandardInput=data`.
fn data_fd(data: &[u8]) -> Result<OwnedFd, ExecError> {
    use std::io::{Seek, Write};
    use std::os::fd::FromRawFd;
    let err = |source: std::io::Error| ExecError::StdioFile {
        path: "memfd".into(),
        what: "standard input data",
        source,
    };
    // Named and sealed as systemd's `acquire_data_fd()` makes it.
    // SAFETY: memfd_create takes a NUL-terminated name and flags and returns
    // a new fd or -1.
    let fd = unsafe {
        libc::memfd_create(
            c"data-fd".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(data).map_err(err)?;
    file.rewind().map_err(err)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on a memfd this function owns.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(OwnedFd::from(file))
}

/// Prepares one command of `unit` (`section` is `Service` or `Socket`).
pub fn prepare(
    unit: &Unit,
    section: &str,
    cmd: &ExecCommand,
    inputs: &SpawnInputs,
) -> Result<PreparedExec, ExecError> {
    let privileged = cmd.full_privileges || cmd.no_setuid;
    let unit_user = unit_user(unit, section)?;
    let user = if privileged { None } else { unit_user.clone() };
    // `$USER` and friends come from `User=` also for `+`/`!` commands.
    let mut env = environment_with_pid_vars(unit, section, inputs, unit_user.as_ref())?;
    // The directories belong to the unit's user, also for `+`/`!` commands;
    // a system unit with `Group=` but no `User=` gets them as root and that
    // group (systemd's `setup_exec_directory()` takes only an unset id as
    // 0): squid's `/run/squid`, 0775 for its workers' sockets.
    let owner = match owner_of(unit, section, unit_user.as_ref())? {
        None if !inputs.user_mode && !dynamic_user(unit, section) => {
            match unit.get_str(section, "Group") {
                Some(g) => Some((0, lookup_group(g)?)),
                None => None,
            }
        }
        owner => owner,
    };
    setup_directories(unit, section, inputs.user_mode, owner, &mut env)?;
    if let Some(c) = &inputs.credentials {
        set_var(
            &mut env,
            "CREDENTIALS_DIRECTORY",
            c.dir.to_string_lossy().into_owned(),
        );
    }
    let pid_vars: Vec<String> = env
        .iter()
        .filter(|(_, v)| v == PID_PLACEHOLDER)
        .map(|(k, _)| k.clone())
        .collect();
    env.retain(|(_, v)| v != PID_PLACEHOLDER);

    // Arguments: $VAR expansion unless ':'; argv[0] is never expanded.
    let argv: Vec<String> = if cmd.no_env_expand || cmd.argv.is_empty() {
        cmd.argv.clone()
    } else {
        let mut out = vec![cmd.argv[0].clone()];
        out.extend(replace_env_argv(&cmd.argv[1..], &env));
        out
    };
    let search: Option<Vec<PathBuf>> = match unit.get(section, "ExecSearchPath") {
        Some(Value::Raw(p) | Value::Str(p)) => Some(p.split(':').map(PathBuf::from).collect()),
        _ => None,
    };
    let path = if cmd.path.contains('/') {
        PathBuf::from(&cmd.path)
    } else {
        resolve_executable(&cmd.path, search.as_deref())
            .ok_or_else(|| ExecError::NotFound(cmd.path.clone()))?
    };

    let mut plan = ExecPlan::new(
        cstring(path.into_os_string().into_encoded_bytes())?,
        argv.into_iter().map(cstring).collect::<Result<_, _>>()?,
    );
    plan.env = env
        .iter()
        .map(|(k, v)| cstring(format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    // KeyringMode=: `private` by default for a system manager's units,
    // `inherit` for a user manager's (systemd's defaults).
    let keyring_mode = unit
        .get_str(section, "KeyringMode")
        .unwrap_or(if inputs.user_mode {
            "inherit"
        } else {
            "private"
        });
    if keyring_mode != "inherit" {
        let invocation_id = env
            .iter()
            .find(|(k, _)| k == "INVOCATION_ID")
            .and_then(|(_, v)| hex_id(v));
        plan.keyring = Some(crate::spawn::Keyring {
            shared: keyring_mode == "shared",
            invocation_id,
        });
    }
    plan.pid_vars = pid_vars
        .into_iter()
        .map(cstring)
        .collect::<Result<_, _>>()?;
    let inetd = stdio_is_socket(unit, section);
    let nonblocking = unit.get_bool(section, "NonBlocking").unwrap_or(false);
    let mut keep_open = Vec::new();

    if inetd {
        if inputs.fds.len() != 1 {
            return Err(ExecError::SocketCount(inputs.fds.len()));
        }
        plan.stdin = Stdio::Fd(inputs.fds[0].0);
    } else if inputs.main_process && !inputs.fds.is_empty() {
        plan.listen_pid_slot = true;
        plan.fds = inputs
            .fds
            .iter()
            .map(|(fd, _)| PassFd {
                fd: *fd,
                nonblocking: if inputs.fds_are_sockets {
                    Some(nonblocking)
                } else {
                    None
                },
            })
            .collect();
    }
    // Stored fds follow the sockets (also in inetd style, as systemd 262);
    // the `OpenFile=` ones come at the spawn.
    if inputs.main_process && !inputs.stored_fds.is_empty() {
        plan.listen_pid_slot = true;
        plan.fds
            .extend(inputs.stored_fds.iter().map(|(fd, _)| PassFd {
                fd: *fd,
                nonblocking: None,
            }));
    }
    if inputs.main_process && !inputs.open_files.is_empty() {
        plan.listen_pid_slot = true;
    }
    // `UnsetEnvironment=` is the last step, also for what flint sets
    // itself (Debian's foot-server@.service unsets `LISTEN_PID`).
    if plan.listen_pid_slot {
        if unsets(unit, section, "LISTEN_PID") {
            plan.listen_pid_slot = false;
        } else if unsets(unit, section, "LISTEN_PIDFDID") {
            plan.listen_pidfdid = false;
        }
    }
    let umask = match unit.get(section, "UMask") {
        Some(Value::Mode(m)) => *m,
        _ => 0o022,
    };
    let stdio = StdioSpec::of(unit, section);
    let tty_path = tty_path(unit, section);
    let mut log: Option<(OwnedFd, RawFd)> = None;
    let mut io = StdioSetup {
        spec: &stdio,
        inputs,
        umask,
        keep_open: &mut keep_open,
        log: &mut log,
    };
    if let Some([stdin, stdout, stderr]) = inputs.stdio_fds {
        plan.stdin = Stdio::Fd(stdin);
        plan.stdout = Stdio::Fd(stdout);
        plan.stderr = Stdio::Fd(stderr);
    } else {
        io.named_fds()?;
        let (stdin, input) = io.input(inputs.main_process)?;
        plan.stdin = stdin;
        plan.stdout = io.output(1, &input)?;
        plan.stderr = io.output(2, &input)?;
    }
    if stdio.touches_tty() && inputs.stdio_fds.is_none() {
        plan.tty_path = Some(cstring(tty_path.clone())?);
        plan.tty_reset = TtyReset {
            reset: unit.get_bool(section, "TTYReset").unwrap_or(false),
            vhangup: unit.get_bool(section, "TTYVHangup").unwrap_or(false),
            vt_disallocate: unit.get_bool(section, "TTYVTDisallocate").unwrap_or(false),
            vt: vt_number(&tty_path),
            keyboard_mode: vt_keyboard_mode(),
        };
    }
    plan.tty_owner = unit_user.as_ref().map(|u| u.uid.as_raw());

    // Working directory: `~` is the user's home; system units default to `/`.
    if let Some(Value::WorkingDirectory { path, optional }) = unit.get(section, "WorkingDirectory")
    {
        let dir = if path == "~" {
            user.as_ref().map_or_else(
                || std::env::var("HOME").unwrap_or_else(|_| "/".into()),
                |u| u.dir.to_string_lossy().into_owned(),
            )
        } else {
            path.clone()
        };
        plan.cwd = Some(cstring(dir)?);
        plan.cwd_optional = *optional;
    } else {
        let dir = if inputs.user_mode {
            std::env::var("HOME").unwrap_or_else(|_| "/".into())
        } else {
            "/".into()
        };
        plan.cwd = Some(cstring(dir)?);
    }
    plan.umask = umask;
    let root = match unit.get(section, "RootDirectory") {
        Some(Value::Path(p)) => Some(p.clone()),
        _ => None,
    };
    if let Some(p) = &root {
        plan.chroot = Some(cstring(p.clone().into_os_string().into_encoded_bytes())?);
    }
    // The sandbox's namespaces, which `+` commands run without; where
    // flint may not make them, skipped as systemd skips them in a
    // container without the privilege.
    if !cmd.full_privileges
        && super::sandbox::is_sandboxed(unit, section)
        && super::sandbox::can_make_namespaces()
    {
        let mut writable: Vec<PathBuf> = Vec::new();
        let mut private: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (key, _, p) in unit_directories(unit, section, inputs.user_mode) {
            match private_dir(unit, section, inputs.user_mode, key, &p) {
                Some(pair) if root.is_none() => private.push(pair),
                _ => writable.push(p),
            }
        }
        plan.namespace = super::sandbox::plan(
            unit,
            section,
            root.as_deref(),
            inputs.private_tmp.as_ref(),
            &writable,
            &private,
        )?;
    }
    // The run's network and IPC namespaces: joined by every command, `+`
    // ones too (systemd joins them outside `needs_sandboxing`).
    if let Some(run) = inputs.namespaces.as_ref() {
        let ns = plan.namespace.get_or_insert_with(|| NamespacePlan {
            network: run.network.is_some(),
            ipc: run.ipc.is_some(),
            optional: true,
            ..NamespacePlan::default()
        });
        let mut join = |want: bool,
                        fd: &Option<std::sync::Arc<OwnedFd>>|
         -> Result<Option<RawFd>, ExecError> {
            let Some(fd) = fd.as_ref().filter(|_| want) else {
                return Ok(None);
            };
            // A duplicate the spawn keeps open: the run may end (and close
            // its own) while the spawn is on its way.
            let dup = fd.try_clone().map_err(|source| {
                ExecError::Sandbox(super::sandbox::SandboxError::Io {
                    what: "duplicating the namespace fd of",
                    path: PathBuf::from(unit.id.as_str()),
                    source,
                })
            })?;
            let raw = dup.as_raw_fd();
            keep_open.push(dup);
            Ok(Some(raw))
        };
        ns.join_network = join(ns.network, &run.network)?;
        ns.join_ipc = join(ns.ipc, &run.ipc)?;
        // The user namespace is part of the sandbox a `+` command runs
        // without.
        ns.join_user = join(!cmd.full_privileges, &run.user)?;
    }
    if let Some(ns) = &plan.namespace {
        tracing::debug!("{}: namespaces: {ns:?}", unit.id);
    }
    if let Some(Value::Int(n)) = unit.get(section, "Nice") {
        plan.nice = i32::try_from(*n).ok();
    }
    plan.oom_score_adjust = match unit.get(section, "OOMScoreAdjust") {
        Some(Value::Int(n)) => i32::try_from(*n).ok(),
        _ => crate::service::defaults::oom_score_adjust(),
    };
    apply_process_attributes(unit, section, &mut plan);
    // Secure bits and resource limits are part of the sandbox a `+` command
    // runs without.
    if !cmd.full_privileges {
        plan.secure_bits = Some(match unit.get_str(section, "SecureBits") {
            Some(words) => process::parse_secure_bits(words).unwrap_or(0),
            None => 0,
        });
        let values = |key| unit.strings(section, key);
        let last = cap_last_cap();
        let known = if last >= 63 {
            u64::MAX
        } else {
            (1u64 << (last + 1)) - 1
        };
        let mut bounding = process::capability_set(values("CapabilityBoundingSet"), u64::MAX);
        // What systemd takes out of the bounding set for these settings
        // (`unit_patch_contexts()`), where flint may (it does not build
        // their namespaces).
        let implied = implied_capability_drops(unit, section);
        if implied != 0 && can_drop_capabilities() {
            bounding &= !implied;
        }
        plan.capability_bounding_set = (bounding & known != known).then_some(bounding);
        plan.ambient_capabilities =
            process::capability_set(values("AmbientCapabilities"), 0) & known;
        plan.cap_last_cap = last;
    }
    plan.ignore_sigpipe = unit.get_bool(section, "IgnoreSIGPIPE").unwrap_or(true);
    // DynamicUser= implies it: the service may neither gain privileges
    // through set-ID programs nor leave any behind. Part of the sandbox,
    // which `+` commands run without (systemd's `needs_sandboxing`).
    plan.no_new_privileges = !cmd.full_privileges
        && (unit.get_bool(section, "NoNewPrivileges").unwrap_or(false)
            || super::sandbox::dynamic_user(unit, section));
    for (key, resource) in RLIMITS.iter().filter(|_| !cmd.full_privileges) {
        if let Some(Value::Limit { soft, hard }) = unit.get(section, key) {
            let conv = |v: u64| {
                if v == u64::MAX {
                    libc::RLIM_INFINITY
                } else {
                    v
                }
            };
            plan.rlimits.push((*resource, conv(*soft), conv(*hard)));
        }
    }
    // Without `Limit*=`, the manager's defaults (not flint's own raised
    // open-file limit), as systemd's `unit_patch_contexts()` fills them in.
    if let (false, Some(d)) = (cmd.full_privileges, super::defaults::limits()) {
        #[allow(clippy::cast_possible_wrap, clippy::unnecessary_cast)]
        let defaults = [
            (
                "LimitNOFILE",
                libc::RLIMIT_NOFILE as i32,
                d.nofile,
                d.own_nofile,
            ),
            (
                "LimitMEMLOCK",
                libc::RLIMIT_MEMLOCK as i32,
                d.memlock,
                d.own_memlock,
            ),
        ];
        for (key, resource, (soft, hard), own) in defaults {
            if unit.get(section, key).is_none() && (soft, hard) != own {
                plan.rlimits.push((resource, soft, hard));
            }
        }
    }
    // The seccomp filters, which `+` commands run without. A process that
    // will not have CAP_SYS_ADMIN may load them only with no-new-privileges,
    // which they then imply (systemd's `context_has_no_new_privileges()`).
    if !cmd.full_privileges {
        plan.seccomp = super::seccomp::filters(unit, section)?;
        let keeps_sys_admin = match user.as_ref().map(|u| u.uid.as_raw()) {
            None | Some(0) => super::sandbox::can_make_namespaces(),
            Some(_) => plan.ambient_capabilities & (1 << 21) != 0,
        };
        if !plan.seccomp.is_empty() && !keeps_sys_admin {
            plan.no_new_privileges = true;
        }
    }
    if let Some(u) = &user {
        let gid = match unit.get_str(section, "Group") {
            Some(g) if !dynamic_user(unit, section) => lookup_group(g)?,
            _ => u.gid.as_raw(),
        };
        let mut groups: Vec<u32> = CString::new(u.name.clone())
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid)).ok())
            .map(|g| g.into_iter().map(nix::unistd::Gid::as_raw).collect())
            .unwrap_or_default();
        for (v, _) in unit.entries(section, "SupplementaryGroups") {
            if let Value::Str(g) = v {
                groups.push(lookup_group(g)?);
            }
        }
        plan.uid = Some(u.uid.as_raw());
        plan.gid = Some(gid);
        plan.groups = Some(groups);
    } else if !privileged {
        // Without `User=`, the supplementary groups are exactly
        // `SupplementaryGroups=` (none when `Group=` alone is given).
        let mut groups = Vec::new();
        for (v, _) in unit.entries(section, "SupplementaryGroups") {
            if let Value::Str(g) = v {
                groups.push(lookup_group(g)?);
            }
        }
        if let Some(g) = unit.get_str(section, "Group") {
            plan.gid = Some(lookup_group(g)?);
            plan.groups = Some(groups);
        } else if !groups.is_empty() {
            plan.groups = Some(groups);
        }
    }
    Ok(PreparedExec {
        plan,
        keep_open,
        log: log.map(|(read, _)| read),
        open_files: Vec::new(),
    })
}

/// Adds the `OpenFile=` fds the spawn opened to a plan [`prepare`] made
/// with `expected` as [`SpawnInputs::open_files`]: they go after the other
/// fds, and where a `graceful` one was skipped, `LISTEN_FDS` and
/// `LISTEN_FDNAMES` are counted and named again without it.
pub fn add_open_files(plan: &mut ExecPlan, expected: &[String], opened: &[(RawFd, String)]) {
    plan.fds.extend(opened.iter().map(|(fd, _)| PassFd {
        fd: *fd,
        nonblocking: None,
    }));
    if opened.len() == expected.len() {
        return;
    }
    let value = |env: &[CString], key: &str| {
        env.iter().find_map(|e| {
            e.to_str()
                .ok()?
                .strip_prefix(key)?
                .strip_prefix('=')
                .map(str::to_string)
        })
    };
    let (Some(count), Some(names)) = (
        value(&plan.env, "LISTEN_FDS").and_then(|c| c.parse::<usize>().ok()),
        value(&plan.env, "LISTEN_FDNAMES"),
    ) else {
        return;
    };
    let mut names: Vec<&str> = names.split(':').collect();
    names.truncate(names.len().saturating_sub(expected.len()));
    names.extend(opened.iter().map(|(_, n)| n.as_str()));
    let count = count.saturating_sub(expected.len()) + opened.len();
    plan.env.retain(|e| {
        let b = e.as_bytes();
        !b.starts_with(b"LISTEN_FDS=") && !b.starts_with(b"LISTEN_FDNAMES=")
    });
    if count > 0 {
        plan.env.extend(
            [
                format!("LISTEN_FDS={count}"),
                format!("LISTEN_FDNAMES={}", names.join(":")),
            ]
            .into_iter()
            .filter_map(|e| CString::new(e).ok()),
        );
    } else {
        plan.listen_pid_slot = false;
    }
}

/// The `*Directory=` settings: the environment variable, the system base,
/// and the user-mode base (an XDG variable and its default under `$HOME`).
const DIRECTORIES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "RuntimeDirectory",
        "RUNTIME_DIRECTORY",
        "/run",
        "XDG_RUNTIME_DIR",
        "",
    ),
    (
        "StateDirectory",
        "STATE_DIRECTORY",
        "/var/lib",
        "XDG_STATE_HOME",
        ".local/state",
    ),
    (
        "CacheDirectory",
        "CACHE_DIRECTORY",
        "/var/cache",
        "XDG_CACHE_HOME",
        ".cache",
    ),
    (
        "LogsDirectory",
        "LOGS_DIRECTORY",
        "/var/log",
        "XDG_STATE_HOME",
        ".local/state/log",
    ),
    (
        "ConfigurationDirectory",
        "CONFIGURATION_DIRECTORY",
        "/etc",
        "XDG_CONFIG_HOME",
        ".config",
    ),
];

fn directory_base(system: &str, xdg: &str, home_default: &str, user_mode: bool) -> PathBuf {
    if !user_mode {
        return PathBuf::from(system);
    }
    if let Some(v) = std::env::var_os(xdg).filter(|v| !v.is_empty()) {
        let base = PathBuf::from(v);
        return if xdg == "XDG_STATE_HOME" && system == "/var/log" {
            base.join("log")
        } else {
            base
        };
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    if home_default.is_empty() {
        std::env::temp_dir()
    } else {
        home.join(home_default)
    }
}

/// The directories of `RuntimeDirectory=` and friends, as absolute paths,
/// with the variable each is exported in.
pub fn unit_directories(
    unit: &Unit,
    section: &str,
    user_mode: bool,
) -> Vec<(&'static str, &'static str, PathBuf)> {
    let mut out = Vec::new();
    for (key, var, system, xdg, home_default) in DIRECTORIES {
        let base = directory_base(system, xdg, home_default, user_mode);
        for (v, _) in unit.entries(section, key) {
            if let Value::Str(name) = v {
                // `path:symlink[:ro]` forms: only the first part is created.
                let name = name.split(':').next().unwrap_or(name);
                out.push((*key, *var, base.join(name)));
            }
        }
    }
    out
}

/// Where a `DynamicUser=` service's `StateDirectory=`, `CacheDirectory=`
/// or `LogsDirectory=` (`key`, at `path`) really is: below `private/` of
/// its base (`/var/lib/private/x`), a 0700 directory of root's, so that no
/// other user can reach it once its uid goes to another unit; `path` is a
/// link to it (systemd's `setup_exec_directory()`). Returns `private/`
/// and the directory; `None` for every other directory.
pub fn private_dir(
    unit: &Unit,
    section: &str,
    user_mode: bool,
    key: &str,
    path: &Path,
) -> Option<(PathBuf, PathBuf)> {
    // Only where the service's namespace can make `private/` reachable
    // for it (not in a container without the privilege, where the
    // sandbox is skipped), and not below a `RootDirectory=`.
    if user_mode
        || !super::sandbox::dynamic_user(unit, section)
        || !super::sandbox::can_make_namespaces()
        || unit.get(section, "RootDirectory").is_some()
    {
        return None;
    }
    private_place(key, path)
}

/// `private/` of `key`'s base and the place of `path` below it, for the
/// directories that may be a dynamic user's (`StateDirectory=`,
/// `CacheDirectory=`, `LogsDirectory=`; `None` for the others).
fn private_place(key: &str, path: &Path) -> Option<(PathBuf, PathBuf)> {
    let base = Path::new(match key {
        "StateDirectory" => "/var/lib",
        "CacheDirectory" => "/var/cache",
        "LogsDirectory" => "/var/log",
        _ => return None,
    });
    let rel = path.strip_prefix(base).ok()?;
    let root = base.join("private");
    let dir = root.join(rel);
    Some((root, dir))
}

/// The error of a unit directory (`key`) at `p` that could not be made.
fn dir_error(key: &'static str, p: &Path, source: std::io::Error) -> ExecError {
    ExecError::StdioFile {
        path: p.display().to_string(),
        what: key,
        source,
    }
}

/// Makes a dynamic user's directory `dir` below `private_root` and `path`
/// a relative link to it; moves a directory at `path` of an earlier run
/// without `DynamicUser=` there first, as systemd does.
fn setup_private_dir(
    key: &'static str,
    path: &Path,
    private_root: &Path,
    dir: &Path,
) -> Result<(), ExecError> {
    use std::os::unix::fs::DirBuilderExt;
    let failed = |p: &Path, e| dir_error(key, p, e);
    match std::fs::DirBuilder::new().mode(0o700).create(private_root) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(failed(private_root, e));
        }
        _ => {}
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed(parent, e))?;
    }
    let public_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if public_dir && std::fs::symlink_metadata(dir).is_err() {
        tracing::info!(
            "Found pre-existing public {key}= directory {}, migrating to {}.",
            path.display(),
            dir.display()
        );
        std::fs::rename(path, dir).map_err(|e| failed(path, e))?;
    } else {
        std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed(parent, e))?;
    }
    // `x/y` links to `../private/x/y`.
    let rel = dir.strip_prefix(private_root).unwrap_or(dir);
    let mut target = PathBuf::new();
    for _ in 1..rel.components().count() {
        target.push("..");
    }
    target.push("private");
    target.push(rel);
    match std::fs::read_link(path) {
        Ok(t) if t == target => Ok(()),
        // `StateDirectory=foo foo/bar`: `foo` is the link already, and
        // `foo/bar` the directory itself through it.
        _ if std::fs::canonicalize(path)
            .is_ok_and(|p| std::fs::canonicalize(dir).is_ok_and(|d| d == p)) =>
        {
            Ok(())
        }
        _ => std::os::unix::fs::symlink(&target, path).map_err(|e| failed(path, e)),
    }
}

/// Gives the directory open as `fd` ([`DIR_NOFOLLOW`]) to `uid`:`gid`,
/// and everything below it, when it was not theirs already (a new dynamic
/// uid, a unit whose `User=` changed), as systemd's
/// `path_chown_recursive()`: every step goes through a descriptor opened
/// without following links, so a link put in the tree never leads root
/// elsewhere; for a dynamic user the set-user-ID and set-group-ID bits go.
fn chown_tree(fd: &OwnedFd, uid: u32, gid: u32, dynamic: bool) -> std::io::Result<()> {
    let st = nix::sys::stat::fstat(fd)?;
    if st.st_uid == uid && st.st_gid == gid && (!dynamic || st.st_mode & 0o6000 == 0) {
        return Ok(());
    }
    chown_below(fd, uid, gid, dynamic, 0);
    Ok(())
}

/// How a unit's directory, and each one below it, is opened: never
/// through a link (`ELOOP` for one).
const DIR_NOFOLLOW: nix::fcntl::OFlag = nix::fcntl::OFlag::O_DIRECTORY
    .union(nix::fcntl::OFlag::O_NOFOLLOW)
    .union(nix::fcntl::OFlag::O_CLOEXEC)
    .union(nix::fcntl::OFlag::O_RDONLY);

/// Drops the POSIX ACLs of the file open as `fd` (any kind of descriptor,
/// `O_PATH` too, through its `/proc/self/fd` link), as systemd's
/// `chown_one()` does before it gives a file away: an ACL entry would
/// leave the old owner (or another user) access the new owner does not
/// expect.
fn drop_acls(fd: &OwnedFd) {
    let Ok(path) = std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return;
    };
    for name in [c"system.posix_acl_access", c"system.posix_acl_default"] {
        // SAFETY: both strings are NUL-terminated; an absent attribute or
        // a file system without ACLs only fails the call.
        unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) };
    }
}

/// Sets the mode of the file open as `fd` (`O_PATH` too) to `mode`, as
/// systemd's `fchmod_opath()`.
fn chmod_fd(fd: &OwnedFd, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        std::fs::Permissions::from_mode(mode),
    );
}

/// [`chown_tree`] of the directory open as `fd` and what is in it. Each
/// file loses its ACLs and keeps its mode (the kernel clears the set-id
/// bits at a chown, also root's; systemd sets the mode again), but for a
/// dynamic user the set-id bits go.
fn chown_below(fd: &OwnedFd, uid: u32, gid: u32, dynamic: bool, depth: usize) {
    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{Mode, SFlag};
    use nix::unistd::{Gid, Uid};
    let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    let mask = if dynamic { 0o1777 } else { 0o7777 };
    if let Ok(st) = nix::sys::stat::fstat(fd) {
        drop_acls(fd);
        let _ = nix::unistd::fchown(fd, u, g);
        chmod_fd(fd, st.st_mode & mask);
    }
    if depth > 256 {
        return;
    }
    // The directory this descriptor holds, not whatever its path names now.
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Ok(st) = nix::sys::stat::fstatat(fd, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        else {
            continue;
        };
        let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
        if kind == SFlag::S_IFDIR {
            if let Ok(sub) = nix::fcntl::openat(fd, name.as_os_str(), DIR_NOFOLLOW, Mode::empty()) {
                chown_below(&sub, uid, gid, dynamic, depth + 1);
            }
            continue;
        }
        // A link is only chowned (it has no ACLs, and its mode means
        // nothing); anything else through an `O_PATH` descriptor, which
        // opens no device and no FIFO.
        if kind == SFlag::S_IFLNK {
            let _ = nix::unistd::fchownat(fd, name.as_os_str(), u, g, AtFlags::AT_SYMLINK_NOFOLLOW);
            continue;
        }
        let Ok(f) = nix::fcntl::openat(
            fd,
            name.as_os_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        // What was opened, not what the name held a moment before.
        let Ok(st) = nix::sys::stat::fstat(&f) else {
            continue;
        };
        let link = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) == SFlag::S_IFLNK;
        if !link {
            drop_acls(&f);
        }
        let _ = nix::unistd::fchownat(&f, "", u, g, AtFlags::AT_EMPTY_PATH);
        if !link {
            chmod_fd(&f, st.st_mode & mask);
        }
    }
}

/// A directory of a service that had `DynamicUser=` once, and no longer
/// has it: `path` is still the link into `private/`; the directory moves
/// back to `path`, as systemd moves it ("Apparently, service previously
/// had DynamicUser= turned on, and has now turned it off.").
fn reclaim_private_dir(key: &'static str, path: &Path) -> std::io::Result<()> {
    let (Some((_, private)), Ok(target), Some(parent)) = (
        private_place(key, path),
        std::fs::read_link(path),
        path.parent(),
    ) else {
        return Ok(());
    };
    let target = parent.join(target);
    let same = |a: &Path, b: &Path| matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y);
    if !same(&private, &target) {
        return Ok(());
    }
    tracing::info!(
        "Found pre-existing private {key}= directory {}, migrating to {}.",
        private.display(),
        path.display()
    );
    std::fs::remove_file(path)?;
    std::fs::rename(&private, path)
}

/// Creates the `*Directory=` directories with their mode and owner, as
/// systemd does before running a command, and exports their variables.
fn setup_directories(
    unit: &Unit,
    section: &str,
    user_mode: bool,
    uid_gid: Option<(u32, u32)>,
    env: &mut Vec<(String, String)>,
) -> Result<(), ExecError> {
    let mut vars: Vec<(&str, Vec<String>)> = Vec::new();
    for (key, var, path) in unit_directories(unit, section, user_mode) {
        let mode = match unit.get(section, &format!("{key}Mode")) {
            Some(Value::Mode(m)) => *m,
            _ => 0o755,
        };
        let failed = |p: &Path, e| dir_error(key, p, e);
        // An existing ConfigurationDirectory= is the administrator's: its
        // mode and owner stay (systemd only warns about a mode that
        // differs).
        let config_existed = key == "ConfigurationDirectory" && path.exists();
        let made =
            if let Some((private_root, dir)) = private_dir(unit, section, user_mode, key, &path) {
                setup_private_dir(key, &path, &private_root, &dir)?;
                dir
            } else {
                reclaim_private_dir(key, &path).map_err(|e| failed(&path, e))?;
                std::fs::create_dir_all(&path).map_err(|e| failed(&path, e))?;
                path.clone()
            };
        if !config_existed {
            // The mode and owner go through a descriptor of the directory
            // itself: a link at its place fails the start (`ELOOP`), as
            // under systemd, instead of leading root to whatever it names.
            let fd = nix::fcntl::open(&made, DIR_NOFOLLOW, nix::sys::stat::Mode::empty())
                .map_err(|e| failed(&made, e.into()))?;
            let _ = nix::sys::stat::fchmod(&fd, nix::sys::stat::Mode::from_bits_truncate(mode));
            // A system manager's units without a user get theirs as root's
            // (systemd's `EXEC_CHOWN_DIRECTORIES` with uid 0).
            let owner = uid_gid.or((!user_mode).then_some((0, 0)));
            if let Some((uid, gid)) = owner {
                chown_tree(&fd, uid, gid, super::sandbox::dynamic_user(unit, section))
                    .map_err(|e| failed(&made, e))?;
            }
        }
        match vars.iter_mut().find(|(v, _)| *v == var) {
            Some((_, list)) => list.push(path.display().to_string()),
            None => vars.push((var, vec![path.display().to_string()])),
        }
    }
    // Exec variables: `Environment=` set earlier wins.
    for (var, list) in vars {
        if !env.iter().any(|(k, _)| k == var) {
            set_var(env, var, list.join(":"));
        }
    }
    Ok(())
}

/// What journald records as the `SYSLOG_IDENTIFIER` of a command's output:
/// `SyslogIdentifier=`, or the name of the command's file (systemd passes
/// `basename(command->path)` to its stdout stream).
pub fn log_identifier(unit: &Unit, section: &str, path: &str) -> String {
    match unit.get_str(section, "SyslogIdentifier") {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => path.rsplit('/').next().unwrap_or(path).to_string(),
    }
}

/// journald's `LINE_MAX`: a longer line is logged in pieces of this size.
const LINE_MAX: usize = 48 * 1024;

/// Forwards a command's output pipe to flint's log, one line per line,
/// prefixed with the unit name and pid (what journald would record): bytes
/// that are not UTF-8 are replaced, not an end of the output, a line
/// longer than [`LINE_MAX`] is cut in pieces, and with `level_prefix`
/// (`SyslogLevelPrefix=`) a `<N>` before a line is its severity.
/// In flint's event loop a task reads the pipe as it fills, and the
/// [`OutputPipe`] returned lets the report of the process's exit read what is
/// left first ([`OutputPipe::read_now`]), so that what a process wrote before
/// it exited is logged before its exit is. Outside a tokio runtime a
/// thread reads the pipe, and `None` is returned.
pub fn forward_log(
    pipe: OwnedFd,
    unit: String,
    ident: String,
    pid: i32,
    level_prefix: bool,
) -> Option<std::rc::Rc<OutputPipe>> {
    // As journald's stdout stream: a NUL ends a line too, trailing
    // whitespace goes, and a line with nothing left is not logged.
    let forward = move |raw: &[u8]| {
        for line in raw.split(|&b| b == 0) {
            let end = line
                .iter()
                .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(0, |i| i + 1);
            let line = &line[..end];
            let (priority, text) = if level_prefix {
                crate::logs::level_prefix(line)
            } else {
                (6, line)
            };
            if !text.is_empty() && crate::logs::admit(&unit) {
                let text = String::from_utf8_lossy(text);
                crate::logs::record_output(&unit, pid, &ident, &text, priority);
            }
        }
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        let rx = tokio::net::unix::pipe::Receiver::from_owned_fd(pipe).ok()?;
        let output = std::rc::Rc::new(OutputPipe {
            rx,
            line: std::cell::RefCell::new(Vec::new()),
            done: std::cell::Cell::new(false),
            forward: Box::new(forward),
        });
        let reader = output.clone();
        tokio::task::spawn_local(async move {
            loop {
                if reader.rx.readable().await.is_err() {
                    return;
                }
                match reader.read_ready(OUTPUT_TURN) {
                    PipeRead::End => return,
                    PipeRead::Wait => {}
                    // A chatty service lets the loop do other work now and then.
                    PipeRead::More => tokio::task::yield_now().await,
                }
            }
        });
        Some(output)
    } else {
        std::thread::spawn(move || {
            use std::io::{BufRead, Read};
            let mut reader = std::io::BufReader::new(std::fs::File::from(pipe));
            let mut line = Vec::new();
            loop {
                line.clear();
                match (&mut reader)
                    .take(LINE_MAX as u64)
                    .read_until(b'\n', &mut line)
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) => forward(&line),
                }
            }
        });
        None
    }
}

/// Bytes of output read in one go before the reader lets other work run.
const OUTPUT_TURN: usize = 64 * 1024;

/// What [`OutputPipe::read_now`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeRead {
    /// The pipe is empty; more may come.
    Wait,
    /// The budget is spent; more waits in the pipe.
    More,
    /// The end of the output (every writer closed it), or an error.
    End,
}

/// The read end of a process's output pipe in flint's event loop, with the
/// part of a line read so far (see [`forward_log`]). Shared by the task
/// that reads it and the report of the process's exit; neither holds a
/// borrow across a wait.
pub struct OutputPipe {
    rx: tokio::net::unix::pipe::Receiver,
    line: std::cell::RefCell<Vec<u8>>,
    done: std::cell::Cell<bool>,
    forward: Forward,
}

/// What logs one line of output (see [`forward_log`]).
type Forward = Box<dyn Fn(&[u8])>;

impl std::fmt::Debug for OutputPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputPipe")
            .field("line", &self.line)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl OutputPipe {
    /// Reads what the pipe holds now, up to about `budget` bytes, and logs
    /// each whole line; at the end of the output, what is left of the last.
    /// Reads the pipe whatever tokio last saw of it (a reader that has not
    /// had its turn yet has seen nothing), for the report of an exit.
    pub fn read_now(&self, budget: usize) -> PipeRead {
        self.read(budget, |buf| {
            nix::unistd::read(self.rx.as_fd(), buf).map_err(std::io::Error::from)
        })
    }

    /// [`OutputPipe::read_now`] for the reading task: through tokio, which
    /// then waits for the pipe's next readiness.
    fn read_ready(&self, budget: usize) -> PipeRead {
        self.read(budget, |buf| self.rx.try_read(buf))
    }

    fn read(&self, budget: usize, read: impl Fn(&mut [u8]) -> std::io::Result<usize>) -> PipeRead {
        if self.done.get() {
            return PipeRead::End;
        }
        let Ok(mut line) = self.line.try_borrow_mut() else {
            return PipeRead::More;
        };
        let mut chunk = [0u8; 8192];
        let mut taken = 0;
        loop {
            if taken >= budget {
                return PipeRead::More;
            }
            match read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    taken += n;
                    line.extend_from_slice(&chunk[..n]);
                    let mut start = 0;
                    loop {
                        let window = &line[start..line.len().min(start + LINE_MAX)];
                        let end = match window.iter().position(|&b| b == b'\n') {
                            Some(i) => start + i + 1,
                            None if window.len() == LINE_MAX => start + LINE_MAX,
                            None => break,
                        };
                        (self.forward)(&line[start..end]);
                        start = end;
                    }
                    line.drain(..start);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return PipeRead::Wait,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if !line.is_empty() {
            (self.forward)(&line);
            line.clear();
        }
        self.done.set(true);
        PipeRead::End
    }
}

/// `Limit*=` directives and their resources.
// The constants are `u32` with glibc and `c_int` with musl.
#[allow(clippy::cast_possible_wrap, clippy::unnecessary_cast)]
const RLIMITS: &[(&str, i32)] = &[
    ("LimitCPU", libc::RLIMIT_CPU as i32),
    ("LimitFSIZE", libc::RLIMIT_FSIZE as i32),
    ("LimitDATA", libc::RLIMIT_DATA as i32),
    ("LimitSTACK", libc::RLIMIT_STACK as i32),
    ("LimitCORE", libc::RLIMIT_CORE as i32),
    ("LimitRSS", libc::RLIMIT_RSS as i32),
    ("LimitNOFILE", libc::RLIMIT_NOFILE as i32),
    ("LimitAS", libc::RLIMIT_AS as i32),
    ("LimitNPROC", libc::RLIMIT_NPROC as i32),
    ("LimitMEMLOCK", libc::RLIMIT_MEMLOCK as i32),
    ("LimitLOCKS", libc::RLIMIT_LOCKS as i32),
    ("LimitSIGPENDING", libc::RLIMIT_SIGPENDING as i32),
    ("LimitMSGQUEUE", libc::RLIMIT_MSGQUEUE as i32),
    ("LimitNICE", libc::RLIMIT_NICE as i32),
    ("LimitRTPRIO", libc::RLIMIT_RTPRIO as i32),
    ("LimitRTTIME", libc::RLIMIT_RTTIME as i32),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::loader::SearchPath;

    /// A POSIX ACL that gives uid 4321 everything (the kernel's xattr
    /// form: version 2, then tag, permissions and id per entry).
    fn acl_for_4321() -> Vec<u8> {
        let mut acl = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (0x01u16, 7u16, u32::MAX),
            (0x02, 7, 4321),
            (0x04, 5, u32::MAX),
            (0x10, 7, u32::MAX),
            (0x20, 5, u32::MAX),
        ] {
            acl.extend(tag.to_le_bytes());
            acl.extend(perm.to_le_bytes());
            acl.extend(id.to_le_bytes());
        }
        acl
    }

    fn acl_of(path: &Path) -> Option<usize> {
        let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let mut buf = [0u8; 256];
        // SAFETY: the name is NUL-terminated and the buffer as long as said.
        let n = unsafe {
            libc::getxattr(
                p.as_ptr(),
                c"system.posix_acl_access".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        usize::try_from(n).ok()
    }

    #[test]
    fn a_tree_given_away_loses_its_acls_and_keeps_its_modes() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: chown needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let tool = sub.join("tool");
        std::fs::write(&tool, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let acl = acl_for_4321();
        for p in [&sub, &tool] {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: NUL-terminated name and path, the value as long as said.
            let r = unsafe {
                libc::setxattr(
                    c.as_ptr(),
                    c"system.posix_acl_access".as_ptr(),
                    acl.as_ptr().cast(),
                    acl.len(),
                    0,
                )
            };
            if r != 0 {
                eprintln!(
                    "SKIP: no POSIX ACLs here: {}",
                    std::io::Error::last_os_error()
                );
                return;
            }
        }
        assert!(acl_of(&tool).is_some());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        // (The ACL's mask shows in the group bits: kept as systemd keeps
        // the mode it found.)
        let before = mode(&tool);
        assert_eq!(before & 0o4000, 0o4000);
        let open = |p: &Path| -> OwnedFd {
            nix::fcntl::open(p, DIR_NOFOLLOW, nix::sys::stat::Mode::empty()).unwrap()
        };
        chown_tree(&open(dir.path()), 4242, 4243, false).unwrap();
        for p in [&sub, &tool] {
            let m = std::fs::metadata(p).unwrap();
            assert_eq!((m.uid(), m.gid()), (4242, 4243), "{}", p.display());
            assert_eq!(acl_of(p), None, "{} keeps its ACL", p.display());
        }
        // The set-user-ID bit the kernel clears at the chown is set again;
        // a dynamic user's tree loses it.
        assert_eq!(mode(&tool), before);
        chown_tree(&open(dir.path()), 61200, 61200, true).unwrap();
        assert_eq!(mode(&tool), before & 0o1777);
    }

    #[test]
    fn invocation_ids_are_distinct_v4_uuids() {
        // More ids than one fetch of random bytes holds.
        let ids: Vec<String> = (0..100).map(|_| invocation_id()).collect();
        for id in &ids {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{id}"
            );
            assert_eq!(&id[12..13], "4", "version 4: {id}");
            assert!("89ab".contains(&id[16..17]), "RFC 4122 variant: {id}");
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    fn unit(text: &str) -> Unit {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.service"), text).unwrap();
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        crate::unit::load::load(&search, &"t.service".parse().unwrap())
    }

    #[test]
    fn base64_ignores_whitespace_and_rejects_garbage() {
        assert_eq!(
            decode_base64("c29tZXRoaW5nIGVuY29kZWQhCg==").unwrap(),
            b"something encoded!\n"
        );
        assert_eq!(
            decode_base64("YW5kIGEgbW9y      ZSBiYXM2NCBk YXRhCg==").unwrap(),
            b"and a more bas64 data\n"
        );
        assert_eq!(decode_base64("").unwrap(), b"");
        assert!(decode_base64("a*b").is_none());
        assert!(decode_base64("YQ==YQ").is_none());
    }

    /// The unit of systemd's test/test-execute/exec-standardinput-data.service.
    #[test]
    fn stdin_data_interleaves_text_and_data_in_line_order() {
        let u = unit(concat!(
            "[Service]\nExecStart=/bin/cat\nStandardInput=data\n",
            "StandardInputText=this is a test\n",
            "StandardInputData=c29tZXRoaW5nIGVuY29kZWQhCg==\n",
            "StandardInputText=something \\\n in multiple lines\n",
            "StandardInputText=strange\\nembedded\\tcharacters in %n\n",
        ));
        assert_eq!(
            String::from_utf8(stdin_data(&u, "Service")).unwrap(),
            "this is a test\nsomething encoded!\nsomething   in multiple lines\n\
             strange\nembedded\tcharacters in t.service\n"
        );
        let reset =
            unit("[Service]\nStandardInputText=a\nStandardInputText=\nStandardInputText=b\n");
        assert_eq!(stdin_data(&reset, "Service"), b"b\n");
    }

    #[test]
    fn stdin_data_is_read_from_a_memfd_and_inherit_does_not_write_to_it() {
        let u =
            unit("[Service]\nExecStart=/bin/cat\nStandardInputText=hi\nStandardOutput=inherit\n");
        let cmd = &u.commands("Service", "ExecStart")[0];
        let prepared = prepare(&u, "Service", cmd, &SpawnInputs::default()).unwrap();
        let Stdio::Fd(fd) = prepared.plan.stdin else {
            panic!("stdin is not the data: {:?}", prepared.plan.stdin);
        };
        let mut text = String::new();
        // SAFETY: `fd` stays open in `prepared.keep_open`; the dup is ours.
        let dup = unsafe { libc::dup(fd) };
        assert!(dup >= 0);
        // SAFETY: `dup` is a fresh fd owned by the File.
        let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(dup) };
        std::io::Read::read_to_string(&mut f, &mut text).unwrap();
        assert_eq!(text, "hi\n");
        assert!(!matches!(prepared.plan.stdout, Stdio::Fd(o) if o == fd));
    }

    #[test]
    fn child_side_failures_carry_systemds_exit_codes() {
        assert_eq!(ExecError::NotFound("x".into()).exit_code(), Some(203));
        let user = ExecError::UnknownIdentity {
            what: "user",
            name: "x".into(),
        };
        assert_eq!(user.exit_code(), Some(217));
        assert_eq!(ExecError::Nul.exit_code(), None);
    }

    #[test]
    fn supplementary_groups_apply_without_user() {
        let u = unit("[Service]\nExecStart=/bin/true\nSupplementaryGroups=1 2\n");
        let cmd = &u.commands("Service", "ExecStart")[0];
        let prepared = prepare(&u, "Service", cmd, &SpawnInputs::default()).unwrap();
        assert_eq!(prepared.plan.groups, Some(vec![1, 2]));
        assert_eq!(prepared.plan.gid, None);
    }

    fn prepared(text: &str, inputs: &SpawnInputs) -> PreparedExec {
        let u = unit(text);
        let cmd = u.commands("Service", "ExecStart")[0].clone();
        prepare(&u, "Service", &cmd, inputs).unwrap()
    }

    fn main() -> SpawnInputs {
        SpawnInputs {
            main_process: true,
            ..SpawnInputs::default()
        }
    }

    fn env_of(p: &PreparedExec) -> Vec<String> {
        p.plan
            .env
            .iter()
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn process_attributes_reach_the_plan() {
        let p = prepared(
            "[Service]\nExecStart=/bin/true\nNice=-5\nOOMScoreAdjust=-100\n\
             IOSchedulingClass=realtime\nIOSchedulingPriority=2\n\
             CPUSchedulingPolicy=rr\nCPUSchedulingPriority=10\nCPUSchedulingResetOnFork=yes\n\
             CPUAffinity=0\nCPUAffinity=65\nTimerSlackNSec=1ms\nCoredumpFilter=0x1\n\
             SecureBits=noroot\nPersonality=x86-64\n",
            &main(),
        );
        let plan = &p.plan;
        assert_eq!(plan.nice, Some(-5));
        assert_eq!(plan.oom_score_adjust, Some(-100));
        assert_eq!(plan.ioprio, Some((1 << 13) | 2));
        assert_eq!(
            plan.cpu_sched,
            Some(CpuSched {
                policy: 2,
                priority: 10,
                reset_on_fork: true
            })
        );
        assert_eq!(plan.cpu_affinity, Some(vec![1, 2]));
        assert_eq!(plan.timer_slack_nsec, Some(1_000_000));
        assert_eq!(plan.coredump_filter, Some(1));
        assert_eq!(plan.secure_bits, Some(1));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(plan.personality, Some(process::PER_LINUX));
        }
        // Unset: nothing is applied, but the secure bits are still reset.
        let p = prepared("[Service]\nExecStart=/bin/true\n", &main());
        assert_eq!(
            (p.plan.ioprio, p.plan.cpu_sched, p.plan.cpu_affinity),
            (None, None, None)
        );
        assert_eq!(p.plan.secure_bits, Some(0));
        // An empty set is kept for the kernel to refuse (215), as systemd does.
        let p = prepared("[Service]\nExecStart=/bin/true\nCPUAffinity=3-1\n", &main());
        assert_eq!(p.plan.cpu_affinity, Some(vec![0]));
        // ResetOnFork alone does not set a policy.
        let p = prepared(
            "[Service]\nExecStart=/bin/true\nCPUSchedulingResetOnFork=yes\n",
            &main(),
        );
        assert_eq!(p.plan.cpu_sched, None);
    }

    #[test]
    fn full_privileges_skip_limits_and_secure_bits() {
        let p = prepared(
            "[Service]\nExecStart=+/bin/true\nLimitNOFILE=100\nSecureBits=noroot\nNice=3\n",
            &main(),
        );
        assert!(p.plan.rlimits.is_empty());
        assert_eq!(p.plan.secure_bits, None);
        assert_eq!(p.plan.nice, Some(3));
        let p = prepared(
            "[Service]\nExecStart=!/bin/true\nLimitNOFILE=100\nSecureBits=noroot\n",
            &main(),
        );
        assert_eq!(p.plan.rlimits.len(), 1);
        assert_eq!(p.plan.secure_bits, Some(1));
    }

    #[test]
    fn tty_input_goes_to_the_main_process_and_sets_term() {
        let text = "[Service]\nExecStart=/bin/true\nStandardInput=tty-fail\n";
        let p = prepared(text, &main());
        assert_eq!(p.plan.stdin, Stdio::TtyInput(TtyAcquire::Try));
        assert_eq!(p.plan.stdout, Stdio::SameAsStdin);
        assert_eq!(p.plan.stderr, Stdio::SameAsStdout);
        assert_eq!(p.plan.tty_path.as_deref(), Some(c"/dev/console"));
        assert!(env_of(&p).iter().any(|e| e.starts_with("TERM=")));
        // Other commands get /dev/null, and write to the terminal.
        let p = prepared(text, &SpawnInputs::default());
        assert_eq!(p.plan.stdin, Stdio::Null);
        assert_eq!(p.plan.stdout, Stdio::TtyOutput);
        assert_eq!(p.plan.stderr, Stdio::SameAsStdout);
        let p = prepared(
            "[Service]\nExecStart=/bin/true\nStandardInput=tty\nTTYPath=/dev/pts/7\n\
             StandardError=null\nTTYVHangup=yes\nTTYReset=yes\n",
            &main(),
        );
        assert_eq!(p.plan.stdin, Stdio::TtyInput(TtyAcquire::Wait));
        assert_eq!(p.plan.stderr, Stdio::Null);
        assert_eq!(p.plan.tty_path.as_deref(), Some(c"/dev/pts/7"));
        assert!(p.plan.tty_reset.vhangup && p.plan.tty_reset.reset);
        assert!(env_of(&p).contains(&"TERM=vt220".to_string()));
        // Output to the terminal only; no controlling terminal.
        let p = prepared(
            "[Service]\nExecStart=/bin/true\nStandardOutput=tty\nTTYPath=/dev/tty3\n",
            &main(),
        );
        assert_eq!(p.plan.stdin, Stdio::Null);
        assert_eq!(p.plan.stdout, Stdio::TtyOutput);
        assert_eq!(p.plan.stderr, Stdio::SameAsStdout);
        assert_eq!(p.plan.tty_reset.vt, Some(3));
        assert!(env_of(&p).contains(&"TERM=linux".to_string()));
        // No terminal at all: no TERM, no path.
        let p = prepared("[Service]\nExecStart=/bin/true\n", &main());
        assert!(p.plan.tty_path.is_none());
        assert!(!env_of(&p).iter().any(|e| e.starts_with("TERM=")));
    }

    #[test]
    fn open_files_are_counted_in_and_a_skipped_one_taken_out() {
        let inputs = SpawnInputs {
            fds: vec![(10, "web".into())],
            stored_fds: vec![(12, "kept".into())],
            open_files: vec!["a".into(), "b".into()],
            fds_are_sockets: true,
            main_process: true,
            ..SpawnInputs::default()
        };
        let mut p = prepared("[Service]\nExecStart=/bin/true\n", &inputs);
        assert!(env_of(&p).contains(&"LISTEN_FDS=4".to_string()));
        assert!(env_of(&p).contains(&"LISTEN_FDNAMES=web:kept:a:b".to_string()));
        assert_eq!(p.plan.fds.len(), 2, "the open files come at the spawn");
        // Both opened: added, the names stand.
        let mut all = prepared("[Service]\nExecStart=/bin/true\n", &inputs);
        add_open_files(
            &mut all.plan,
            &inputs.open_files,
            &[(20, "a".into()), (21, "b".into())],
        );
        assert_eq!(all.plan.fds.len(), 4);
        assert!(env_of(&all).contains(&"LISTEN_FDNAMES=web:kept:a:b".to_string()));
        // `a` was graceful and missing: counted and named without it.
        add_open_files(&mut p.plan, &inputs.open_files, &[(21, "b".into())]);
        assert_eq!(p.plan.fds.len(), 3);
        assert_eq!(p.plan.fds[2].fd, 21);
        let env = env_of(&p);
        assert!(env.contains(&"LISTEN_FDS=3".to_string()), "{env:?}");
        assert!(
            env.contains(&"LISTEN_FDNAMES=web:kept:b".to_string()),
            "{env:?}"
        );
        // Only open files, none opened: no LISTEN_* at all.
        let only = SpawnInputs {
            open_files: vec!["a".into()],
            main_process: true,
            ..SpawnInputs::default()
        };
        let mut p = prepared("[Service]\nExecStart=/bin/true\n", &only);
        assert!(p.plan.listen_pid_slot);
        add_open_files(&mut p.plan, &only.open_files, &[]);
        assert!(!p.plan.listen_pid_slot);
        assert!(!env_of(&p).iter().any(|e| e.starts_with("LISTEN_")));
    }

    #[test]
    fn named_fds_serve_stdin_and_outputs() {
        let inputs = SpawnInputs {
            fds: vec![(10, "web".into()), (11, "log".into())],
            stored_fds: vec![(12, "log".into())],
            fds_are_sockets: true,
            main_process: true,
            ..SpawnInputs::default()
        };
        let p = prepared(
            "[Service]\nExecStart=/bin/true\nStandardInput=fd:web\n",
            &inputs,
        );
        assert_eq!(p.plan.stdin, Stdio::Fd(10));
        // A bidirectional input keeps `inherit` for the outputs.
        assert_eq!(p.plan.stdout, Stdio::SameAsStdin);
        assert_eq!(p.plan.stderr, Stdio::SameAsStdout);
        // The fds are still passed as LISTEN_FDS.
        assert_eq!(p.plan.fds.len(), 3);
        // Each fd serves one of them: the second `log` goes to stderr.
        let p = prepared(
            "[Service]\nExecStart=/bin/true\nStandardOutput=fd:log\nStandardError=fd:log\n",
            &inputs,
        );
        assert_eq!(p.plan.stdout, Stdio::Fd(11));
        assert_eq!(p.plan.stderr, Stdio::SameAsStdout);
        let only_one = SpawnInputs {
            fds: vec![(11, "log".into())],
            ..SpawnInputs::default()
        };
        let u =
            unit("[Service]\nExecStart=/bin/true\nStandardOutput=fd:log\nStandardError=fd:log\n");
        let cmd = u.commands("Service", "ExecStart")[0].clone();
        assert!(matches!(
            prepare(&u, "Service", &cmd, &only_one),
            Err(ExecError::NamedFd(_))
        ));
        let u = unit("[Service]\nExecStart=/bin/true\nStandardInput=fd:nope\n");
        let cmd = u.commands("Service", "ExecStart")[0].clone();
        let err = prepare(&u, "Service", &cmd, &inputs).unwrap_err();
        assert!(
            matches!(err, ExecError::NamedFd(ref n) if n == "nope"),
            "{err}"
        );
        assert_eq!(err.exit_code(), None);
    }

    #[test]
    fn inherit_output_of_a_service_follows_service_fix_stdio() {
        // stdin null: `inherit` means the default output (flint's log).
        let p = prepared(
            "[Service]\nExecStart=/bin/true\nStandardOutput=inherit\n",
            &main(),
        );
        assert!(matches!(p.plan.stdout, Stdio::Fd(_)));
        assert!(p.log.is_some());
        assert_eq!(p.plan.stderr, Stdio::SameAsStdout);
        // stdout and stderr to the same file share one open file.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("out");
        let p = prepared(
            &format!(
                "[Service]\nExecStart=/bin/true\nStandardOutput=append:{0}\nStandardError=append:{0}\n",
                f.display()
            ),
            &main(),
        );
        assert!(matches!(p.plan.stdout, Stdio::Fd(_)));
        assert_eq!(p.plan.stderr, Stdio::SameAsStdout);
        // An input file that is also the output is opened read-write once.
        let p = prepared(
            &format!(
                "[Service]\nExecStart=/bin/true\nStandardInput=file:{0}\nStandardOutput=file:{0}\n",
                f.display()
            ),
            &main(),
        );
        assert_eq!(p.plan.stdout, Stdio::SameAsStdin);
        let Stdio::Fd(fd) = p.plan.stdin else {
            panic!("{:?}", p.plan.stdin)
        };
        // SAFETY: F_GETFL on an fd `p.keep_open` holds.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert_eq!(flags & libc::O_ACCMODE, libc::O_RDWR);
    }

    #[test]
    fn exec_pid_and_user_variables() {
        let p = prepared("[Service]\nExecStart=/bin/true\n", &main());
        assert_eq!(p.plan.pid_vars, vec![CString::from(c"SYSTEMD_EXEC_PID")]);
        let env = env_of(&p);
        assert!(env.contains(&"USER=root".to_string()), "{env:?}");
        assert!(!env.iter().any(|e| e.starts_with("LOGNAME=")), "{env:?}");
        // A later source replaces the variable, as in systemd.
        let p = prepared(
            "[Service]\nExecStart=/bin/true\nEnvironment=SYSTEMD_EXEC_PID=1\n",
            &main(),
        );
        assert!(p.plan.pid_vars.is_empty());
        assert!(env_of(&p).contains(&"SYSTEMD_EXEC_PID=1".to_string()));
        let p = prepared(
            "[Service]\nExecStart=/bin/true\nUnsetEnvironment=SYSTEMD_EXEC_PID\n",
            &main(),
        );
        assert!(p.plan.pid_vars.is_empty());
        // WATCHDOG_PID goes with WATCHDOG_USEC; the user manager adds MANAGERPID.
        let inputs = SpawnInputs {
            main_process: true,
            user_mode: true,
            extra_env: vec![("WATCHDOG_USEC".into(), "1000000".into())],
            ..SpawnInputs::default()
        };
        let p = prepared("[Service]\nExecStart=/bin/true\n", &inputs);
        assert_eq!(
            p.plan.pid_vars,
            vec![
                CString::from(c"WATCHDOG_PID"),
                CString::from(c"SYSTEMD_EXEC_PID")
            ]
        );
        assert!(
            env_of(&p).contains(&format!("MANAGERPID={}", std::process::id())),
            "{:?}",
            env_of(&p)
        );
        // The plugins' view of the environment has no placeholders.
        let u = unit("[Service]\nExecStart=/bin/true\n");
        let env = environment(&u, "Service", &inputs, None).unwrap();
        assert!(
            !env.iter()
                .any(|(k, _)| k == "SYSTEMD_EXEC_PID" || k == "WATCHDOG_PID")
        );
    }

    #[test]
    fn revert_tty_gives_the_terminal_back_to_root() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: needs root (chown of a terminal)");
            return;
        }
        let (_master, _slave, path) = crate::spawn::tests::pty();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let u = unit(&format!(
            "[Service]\nExecStart=/bin/true\nStandardInput=tty\nTTYPath={path}\nUser=nobody\n"
        ));
        revert_tty(&u, "Service");
        let meta = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (0, 5, 0o620)
        );
    }

    #[test]
    fn output_a_process_left_in_its_pipe_is_logged_when_its_exit_asks() {
        use std::io::Write as _;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let lines = |unit: &str| -> Vec<String> {
                crate::logs::recent(unit, 10, 0)
                    .into_iter()
                    .map(|e| e.line)
                    .collect()
            };
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
            let mut w = std::fs::File::from(w);
            let unit = "output-at-exit.service";
            let output = forward_log(r, unit.into(), "t".into(), 7, true).unwrap();
            // The reading task has not run yet: nothing is logged without
            // the read an exit makes.
            w.write_all(b"one\n<3>two\nthr").unwrap();
            assert!(lines(unit).is_empty());
            // Whole lines go; the part of a line waits for its end.
            assert_eq!(output.read_now(1 << 20), PipeRead::Wait);
            assert_eq!(lines(unit), ["one", "two"]);
            assert_eq!(crate::logs::recent(unit, 1, 0)[0].priority, 3);
            // A line longer than LINE_MAX is logged in pieces of LINE_MAX.
            w.write_all(b"ee\n").unwrap();
            w.write_all(&vec![b'x'; LINE_MAX + 3]).unwrap();
            w.write_all(b"\nlast, no newline").unwrap();
            drop(w);
            // A small budget stops after one read and says more waits.
            assert_eq!(output.read_now(1), PipeRead::More);
            // At the end of the output what is left of the last line goes.
            // (A process another test spawns at this moment may hold a
            // copy of the write end until its exec closes it: the end is
            // seen once that copy is gone.)
            let mut read = output.read_now(1 << 20);
            for _ in 0..500 {
                if read != PipeRead::Wait {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
                read = output.read_now(1 << 20);
            }
            assert_eq!(read, PipeRead::End);
            let got = lines(unit);
            assert_eq!(
                got.len(),
                6,
                "{:?}",
                got.iter().map(String::len).collect::<Vec<_>>()
            );
            assert_eq!(got[2], "three");
            // (the ring keeps the first MAX_LINE bytes of a line)
            assert_eq!(got[3], "x".repeat(crate::logs::MAX_LINE));
            assert_eq!(got[4], "xxx");
            assert_eq!(got[5], "last, no newline");
            // The task that reads it as it fills finds the end and stops.
            assert_eq!(output.read_now(1 << 20), PipeRead::End);
            tokio::task::yield_now().await;
            assert_eq!(lines(unit).len(), 6);
        });
    }
}
