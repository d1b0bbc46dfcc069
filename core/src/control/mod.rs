//! The control socket of a running flint and its small protocol, used by
//! `flint ctl`.
//!
//! One request per connection, one JSON object per line each way:
//! `{"version":1,"command":"status","units":["foo.service"]}` is answered by
//! `{"version":1,"ok":true,"exit":0,"units":[...]}` or
//! `{"version":1,"ok":false,"exit":4,"error":"..."}`. `exit` is the exit code
//! `systemctl` would use for the same answer (0 ok, 3 not active, 4 no such
//! unit, 1 other failures). Only root and the user flint runs as may talk to
//! it; the peer is known from `SO_PEERCRED`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value as Json, json};

pub mod journalctl;
pub mod pty;
pub mod systemctl;
pub mod systemd_run;

/// The protocol version both sides speak.
pub const PROTOCOL_VERSION: u64 = 1;

/// Where the control socket lives by default: `$FLINT_CONTROL` when set,
/// else `/run/flint/control` for a system flint run by root,
/// `$XDG_RUNTIME_DIR/flint/control` otherwise.
pub fn default_path(user_mode: bool) -> PathBuf {
    if let Some(path) = std::env::var_os("FLINT_CONTROL").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    if !user_mode && nix::unistd::geteuid().is_root() {
        return Path::new(crate::unit::loader::FLINT_SYSTEM_RUNTIME_DIR).join("control");
    }
    user_runtime_dir().join("flint/control")
}

/// Where a flint that is not the system's keeps its sockets (control,
/// notify): `$XDG_RUNTIME_DIR`, else a directory of the user's own in the
/// temporary directory (`/tmp/flint-UID`, made private), so that flints of
/// different users never share one.
pub fn user_runtime_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let me = nix::unistd::geteuid();
    let dir = std::env::temp_dir().join(format!("flint-{me}"));
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    // Another user could have made it first, to take flint's sockets
    // over: said, as systemd says of a runtime directory not the user's.
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() && m.uid() == me.as_raw() => {
            if m.mode() & 0o077 != 0 {
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
        }
        Ok(_) => tracing::warn!(
            "flint: {} is not a directory of this user: another user can take its sockets over; set XDG_RUNTIME_DIR",
            dir.display()
        ),
        Err(_) => {}
    }
    dir
}

/// Why the control socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot reach flint at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad answer from flint: {0}")]
    Protocol(String),
}

/// The control socket, and the lock that makes it this flint's.
#[derive(Debug)]
pub struct Bound {
    pub listener: UnixListener,
    /// `PATH.lock`, locked (`flock`) for as long as it lives; the kernel
    /// lets go of it when flint dies, however it dies.
    pub lock: nix::fcntl::Flock<std::fs::File>,
}

/// Binds the control socket (mode 0600). Whoever holds the lock file
/// beside it (`PATH.lock`) owns it: of flints starting at once on the same
/// path, one gets it and the others are told it is taken (holding the
/// control socket is also what makes the runtime directory's generator
/// output this flint's). A node left by a flint that died is replaced; one
/// something still answers on is left alone.
pub fn bind(path: &Path) -> Result<Bound, ControlError> {
    use std::os::unix::fs::OpenOptionsExt;
    let error = |source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let taken = || {
        error(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another flint is running there",
        ))
    };
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&lock_path)
        .map_err(error)?;
    let lock = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Err(taken()),
        Err((_, e)) => return Err(error(e.into())),
    };
    if UnixStream::connect(path).is_ok() {
        return Err(taken());
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(error)?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    listener.set_nonblocking(true).map_err(error)?;
    Ok(Bound { listener, lock })
}

/// Whether the peer of `stream` may control flint: root or flint's own
/// user (a stand-in flint of the tests; the running flint's server is
/// `activation::control`).
#[cfg(test)]
fn authorized(stream: &UnixStream) -> bool {
    nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .is_ok_and(|c| c.uid() == 0 || c.uid() == nix::unistd::geteuid().as_raw())
}

/// Reads one request line (bounded) from a connected client (a stand-in
/// flint of the tests).
#[cfg(test)]
fn read_request(stream: &UnixStream) -> Result<Json, String> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    BufReader::new(stream.take_limit())
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if !line.ends_with('\n') && line.len() >= REQUEST_LIMIT {
        return Err(format!(
            "request longer than {} KiB: refused",
            REQUEST_LIMIT / 1024
        ));
    }
    let v: Json = serde_json::from_str(&line).map_err(|e| format!("request is not JSON: {e}"))?;
    if v.get("version").and_then(Json::as_u64) != Some(PROTOCOL_VERSION) {
        return Err(format!(
            "unsupported protocol version (this flint speaks {PROTOCOL_VERSION})"
        ));
    }
    Ok(v)
}

#[cfg(test)]
trait TakeLimit {
    fn take_limit(&self) -> std::io::Take<&UnixStream>;
}

/// The longest request line the stand-in reads.
#[cfg(test)]
const REQUEST_LIMIT: usize = 64 * 1024;

#[cfg(test)]
impl TakeLimit for UnixStream {
    fn take_limit(&self) -> std::io::Take<&UnixStream> {
        std::io::Read::take(self, REQUEST_LIMIT as u64)
    }
}

/// An error answer.
pub fn error(exit: u8, message: &str) -> Json {
    json!({"version": PROTOCOL_VERSION, "ok": false, "exit": exit, "error": message})
}

/// The most fds a request may pass ([`call_passing`]); the running flint
/// closes any beyond them.
pub const MAX_PASSED_FDS: usize = 3;

/// Sends `request` to the flint listening at `path` and returns its answer.
pub fn call(path: &Path, request: &Json) -> Result<Json, ControlError> {
    call_passing(path, request, &[])
}

/// [`call`], passing `fds` along with the request (`SCM_RIGHTS`): the
/// running flint gets its own copies of them (at most [`MAX_PASSED_FDS`]).
pub fn call_passing(
    path: &Path,
    request: &Json,
    fds: &[std::os::fd::RawFd],
) -> Result<Json, ControlError> {
    exchange(path, request, fds, &mut |_| {})
}

/// [`call`] of a job command, with `"queued": true` added: `queued` runs
/// once the running flint has queued the request's jobs (systemd's API
/// answers a job method then), with the number of the first unit's job
/// when it has one, and the answer follows once they are done.
pub fn call_queued(
    path: &Path,
    request: &Json,
    queued: &mut dyn FnMut(Option<u64>),
) -> Result<Json, ControlError> {
    let mut request = request.clone();
    request["queued"] = true.into();
    exchange(path, &request, &[], queued)
}

fn exchange(
    path: &Path,
    request: &Json,
    fds: &[std::os::fd::RawFd],
    queued: &mut dyn FnMut(Option<u64>),
) -> Result<Json, ControlError> {
    let mut stream = UnixStream::connect(path).map_err(|source| ControlError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    // Long enough for the slowest answer: a switch that runs the unit
    // generators (90 s at most) and waits for its jobs to settle (100 s).
    let _ = stream.set_read_timeout(Some(Duration::from_mins(4)));
    let mut text = request.to_string();
    text.push('\n');
    let failed = |source| ControlError::Connect {
        path: path.to_path_buf(),
        source,
    };
    let mut sent = 0;
    if !fds.is_empty() {
        use std::os::fd::AsRawFd;
        let iov = [std::io::IoSlice::new(text.as_bytes())];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(fds)];
        sent = nix::sys::socket::sendmsg::<()>(
            stream.as_raw_fd(),
            &iov,
            &cmsg,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| failed(std::io::Error::from(e)))?;
    }
    // A request the running flint refuses before reading it all (too
    // long) is answered all the same: its answer is read, not the write's
    // broken pipe reported.
    match stream.write_all(&text.as_bytes()[sent..]) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.map_err(failed)?,
    }
    let mut reader = BufReader::new(&stream);
    loop {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| ControlError::Protocol(e.to_string()))?;
        // The line that says the jobs are queued comes before the answer.
        if let Queued::Yes(job) = queued_line(&line) {
            queued(job);
            continue;
        }
        return serde_json::from_str(&line).map_err(|e| ControlError::Protocol(e.to_string()));
    }
}

/// The strings of a JSON array (none for anything else).
fn strs(v: &Json) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .collect()
}

/// systemctl's "Drop-In:" lines of `status`: each directory, then its
/// files after a tree glyph, comma-separated, as `print_status_info()`
/// writes them (a file whose path does not start with the directory
/// before it begins the next).
fn dropin_lines(dropins: &[&str]) -> String {
    let mut out = String::new();
    let mut dir: Option<&str> = None;
    let mut last = false;
    for (i, d) in dropins.iter().enumerate() {
        if dir.is_none() || last {
            out.push_str(if dir.is_some() {
                "             "
            } else {
                "    Drop-In: "
            });
            let parent = d.rsplit_once('/').map_or("", |(p, _)| p);
            dir = Some(parent);
            let _ = write!(out, "{parent}\n             \u{2514}\u{2500}");
        }
        let dir_now = dir.unwrap_or("");
        last = !dropins.get(i + 1).is_some_and(|n| n.starts_with(dir_now));
        let base = d.rsplit_once('/').map_or(*d, |(_, b)| b);
        out.push_str(base);
        out.push_str(if last { "\n" } else { ", " });
    }
    out
}

/// The line a running flint writes when the jobs of a request with
/// `"queued": true` are queued, before its answer: `{"queued":true}`,
/// with `"job":N` for the first unit's job.
pub fn queued_text(job: Option<u64>) -> String {
    match job {
        Some(n) => format!("{{\"queued\":true,\"job\":{n}}}\n"),
        None => "{\"queued\":true}\n".to_string(),
    }
}

/// What the queued line of [`queued_text`] says.
enum Queued {
    /// Not that line.
    No,
    /// Queued, with the first unit's job number when it has one.
    Yes(Option<u64>),
}

fn queued_line(line: &str) -> Queued {
    match serde_json::from_str::<Json>(line.trim_end()) {
        Ok(v) if v["queued"] == true && v.as_object().is_some_and(|o| o.len() <= 2) => {
            Queued::Yes(v["job"].as_u64())
        }
        _ => Queued::No,
    }
}

/// A log entry as a line: UTC time, unit, pid, text.
pub fn log_line(e: &Json) -> String {
    let usec = e["usec"].as_u64().unwrap_or(0);
    let line = e["line"].as_str().unwrap_or("");
    let unit = match e["unit"].as_str() {
        Some(u) if !u.is_empty() => u,
        _ => "syslog",
    };
    match (e["transport"].as_str(), e["ident"].as_str()) {
        (Some("manager"), _) => format!("{} flint[{}]: {line}", utc(usec), e["pid"]),
        (Some("syslog"), Some(ident)) if !ident.is_empty() => {
            format!("{} {unit}[{}]: {ident}: {line}", utc(usec), e["pid"])
        }
        _ => format!("{} {unit}[{}]: {line}", utc(usec), e["pid"]),
    }
}

/// Year, month and day of `days` since 1970-01-01 (Howard Hinnant's
/// days-to-civil algorithm).
pub fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for microseconds since the epoch.
fn utc(usec: u64) -> String {
    let secs = usec / 1_000_000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        usec % 1_000_000 / 1000
    )
}

/// `systemctl import-environment NAME...` on the client's side: the
/// `NAME=value` assignments of the named variables in `env` (the caller's
/// environment), and a notice for each one that is not set. With no names,
/// every valid assignment of `env` (systemd warns that this is deprecated).
/// A name that is not a valid variable name is an error.
pub fn import_assignments(
    names: &[String],
    env: &[(std::ffi::OsString, std::ffi::OsString)],
) -> Result<(Vec<String>, Vec<String>), String> {
    use crate::unit::value::env::{env_assignment_is_valid, env_name_is_valid};
    let text = |(k, v): &(std::ffi::OsString, std::ffi::OsString)| {
        Some(format!("{}={}", k.to_str()?, v.to_str()?))
    };
    if names.is_empty() {
        let mut seen = std::collections::HashSet::new();
        let all = env
            .iter()
            .filter_map(text)
            .filter(|a| env_assignment_is_valid(a))
            .filter(|a| seen.insert(a.split_once('=').map_or("", |(n, _)| n).to_string()))
            .collect();
        return Ok((all, Vec::new()));
    }
    let mut assignments = Vec::new();
    let mut notices = Vec::new();
    for name in names {
        if !env_name_is_valid(name) {
            return Err(format!("Not a valid environment variable name: {name}"));
        }
        match env
            .iter()
            .find(|(k, _)| k.as_encoded_bytes() == name.as_bytes())
        {
            Some(pair) => match text(pair) {
                Some(a) => assignments.push(a),
                None => notices.push(format!(
                    "Environment variable ${name} is not UTF-8, ignoring."
                )),
            },
            None => notices.push(format!("Environment variable ${name} not set, ignoring.")),
        }
    }
    Ok((assignments, notices))
}

/// systemd's `shell_maybe_quote(SHELL_ESCAPE_POSIX)`, as `systemctl
/// show-environment` prints a value: as it is when a shell reads it so,
/// else in `$'...'` with `\\`, `\'` and control characters escaped.
pub fn shell_maybe_quote(value: &str) -> String {
    const NEED_QUOTES: &str = "\"\\`$*?['()<>|&;! \t\n\r";
    let control = |c: char| c < ' ' || c == '\x7f';
    if !value.chars().any(|c| control(c) || NEED_QUOTES.contains(c)) {
        return value.to_string();
    }
    let mut out = String::from("$'");
    for c in value.chars() {
        match c {
            c if control(c) => out.push_str(&crate::unit::value::cescape(&[c as u8])),
            '\\' | '\'' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Whether a unit name given to a command is a pattern (`*`, `?` or `[`),
/// which `systemctl` matches against the loaded units instead of taking as
/// a name (systemd's `string_is_glob()`).
pub fn is_glob(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// The glyph systemctl puts before a unit: ○ inactive, × failed,
/// ↻ reloading, ● otherwise.
fn state_glyph(state: &str) -> &'static str {
    match state {
        "inactive" => "○",
        "failed" => "×",
        "reloading" => "↻",
        _ => "●",
    }
}

/// Renders an answer for a person: aligned columns, one unit per block.
pub fn render(command: &str, answer: &Json, color: bool) -> String {
    let mut out = String::new();
    if answer.get("ok").and_then(Json::as_bool) != Some(true) {
        let mut text = format!(
            "flint: {}\n",
            answer
                .get("error")
                .and_then(Json::as_str)
                .unwrap_or("failed")
        );
        for e in answer["errors"].as_array().into_iter().flatten() {
            let _ = writeln!(text, "{}", e.as_str().unwrap_or(""));
        }
        return text;
    }
    if command == "logs" {
        for e in answer["entries"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "{}", log_line(e));
        }
        return out;
    }
    if command == "list-jobs" {
        return jobs_table(answer);
    }
    if command == "list-dependencies" {
        for line in answer["lines"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "{}", line.as_str().unwrap_or(""));
        }
        return out;
    }
    if command == "show-environment" {
        for entry in answer["environment"].as_array().into_iter().flatten() {
            let entry = entry.as_str().unwrap_or("");
            let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
            let _ = writeln!(out, "{name}={}", shell_maybe_quote(value));
        }
        return out;
    }
    if command == "switch" {
        for line in answer["lines"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "{}", line.as_str().unwrap_or(""));
        }
        for w in answer["warnings"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "warning: {}", w.as_str().unwrap_or(""));
        }
        if answer["lines"].as_array().is_none_or(Vec::is_empty) {
            out.push_str("nothing to do: the running units match the tree\n");
        }
        return out;
    }
    let units = answer
        .get("units")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    // Commands that act (start, stop, restart, reload, kill, ...) say
    // nothing when they succeed, as systemctl does.
    if !matches!(
        command,
        "status" | "list-units" | "list-sockets" | "list-timers" | "list-paths"
    ) && units.is_empty()
    {
        for w in answer["warnings"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "warning: {}", w.as_str().unwrap_or(""));
        }
        return out;
    }
    let paint = |state: &str| -> String {
        if !color {
            return state.to_string();
        }
        match state {
            "active" | "listening" | "running" => format!("\x1b[32m{state}\x1b[0m"),
            "failed" => format!("\x1b[31m{state}\x1b[0m"),
            _ => state.to_string(),
        }
    };
    if command == "status" {
        for u in &units {
            let name = u["name"].as_str().unwrap_or("?");
            let state = u["state"].as_str().unwrap_or("?");
            // As systemctl: the description after the name unless there is
            // none (or it is the name).
            let glyph = state_glyph(state);
            match u["description"]
                .as_str()
                .filter(|d| !d.is_empty() && *d != name)
            {
                Some(d) => {
                    let _ = writeln!(out, "{glyph} {name} - {d}");
                }
                None => {
                    let _ = writeln!(out, "{glyph} {name}");
                }
            }
            // A unit that did not load says why, as systemctl's
            // "Loaded: bad-setting (Reason: ...)".
            if let (Some(load), Some(reason)) = (u["load"].as_str(), u["load_reason"].as_str()) {
                let _ = writeln!(out, "     Loaded: {load} (Reason: {reason})");
            } else if let Some(path) = u["fragment"].as_str() {
                match u["file_state"].as_str().filter(|s| !s.is_empty()) {
                    // The preset, except where it would only confuse
                    // (systemctl's show_preset_for_state()).
                    Some(state)
                        if !matches!(state, "alias" | "static" | "generated" | "transient")
                            && u["preset"].as_str().is_some_and(|p| !p.is_empty()) =>
                    {
                        let _ = writeln!(
                            out,
                            "     Loaded: loaded ({path}; {state}; preset: {})",
                            u["preset"].as_str().unwrap_or("")
                        );
                    }
                    Some(state) => {
                        let _ = writeln!(out, "     Loaded: loaded ({path}; {state})");
                    }
                    None => {
                        let _ = writeln!(out, "     Loaded: loaded ({path})");
                    }
                }
            }
            out.push_str(&dropin_lines(&strs(&u["dropins"])));
            // As systemctl: the sub-state where it differs from the
            // state, then a result that is not success ("failed (Result:
            // exit-code)").
            let mut active = format!("     Active: {}", paint(state));
            if let Some(sub) = u["sub"].as_str().filter(|s| !s.is_empty() && *s != state) {
                let _ = write!(active, " ({sub})");
            }
            if let Some(result) = u["result"].as_str().filter(|r| *r != "success") {
                let _ = write!(active, " (Result: {result})");
            }
            if let Some(since) = u["since_usec"].as_u64().filter(|t| *t > 0) {
                let _ = write!(
                    active,
                    " since {}; {}",
                    timestamp(since),
                    relative(since, false)
                );
            }
            let _ = writeln!(out, "{active}");
            // How long its last run was up, once it is down (systemctl's
            // "Duration: 1min 2.003s").
            let at = |k: &str| u["times"][k].as_u64().filter(|t| *t > 0);
            if matches!(state, "inactive" | "failed")
                && let (Some(enter), Some(exit)) =
                    (at("ActiveEnterTimestamp"), at("ActiveExitTimestamp"))
                && exit >= enter
            {
                let _ = writeln!(
                    out,
                    "   Duration: {}",
                    crate::unit::value::time::format_timespan_accuracy(exit - enter, 1000)
                );
            }
            // As systemctl: "TriggeredBy: ● web.socket", one unit a line.
            let triggers: Vec<&Json> = u["triggered_by"].as_array().into_iter().flatten().collect();
            for (i, t) in triggers.iter().enumerate() {
                let glyph = state_glyph(t["state"].as_str().unwrap_or(""));
                let label = if i == 0 { "TriggeredBy:" } else { "" };
                let _ = writeln!(
                    out,
                    "{label:>12} {glyph} {}",
                    t["name"].as_str().unwrap_or("?")
                );
            }
            if u["type"] == "timer" {
                let trigger = u["next_usec"].as_u64().map_or_else(
                    || "n/a".to_string(),
                    |t| format!("{}; {}", timestamp(t), relative(t, false)),
                );
                let _ = writeln!(out, "{:>11}: {trigger}", "Trigger");
            }
            // What it starts: "Triggers: ● web.service".
            if let Some(t) = u["triggers"].as_str().filter(|t| !t.is_empty()) {
                let _ = writeln!(out, "{:>11}: ● {t}", "Triggers");
            }
            // Why its last start was skipped, each condition that failed.
            if let Some(at) = u["condition_failed"]["usec"].as_u64() {
                let _ = writeln!(
                    out,
                    "  Condition: start condition failed at {}; {}",
                    timestamp(at),
                    relative(at, false)
                );
                let failed = strs(&u["condition_failed"]["failed"]);
                for (i, c) in failed.iter().enumerate() {
                    let glyph = if i + 1 < failed.len() {
                        "\u{251c}\u{2500}"
                    } else {
                        "\u{2514}\u{2500}"
                    };
                    let _ = writeln!(out, "             {glyph} {c} was not met");
                }
            }
            // Its documentation, one a line.
            for (i, d) in strs(&u["documentation"]).iter().enumerate() {
                let label = if i == 0 { "Docs:" } else { "" };
                let _ = writeln!(out, "   {label:>9} {d}");
            }
            // A socket's addresses, the label on the first only, then an
            // `Accept=yes` socket's counts ("Accepted: 5; Connected: 1;",
            // what it refused when it did).
            let listens = strs(&u["listen"]);
            for (i, l) in listens.iter().enumerate() {
                let label = if i == 0 { "Listen:" } else { "" };
                let _ = writeln!(out, "{label:>12} {l}");
            }
            if u["accept"] == true {
                let n = |k: &str| u[k].as_u64().unwrap_or(0);
                let mut line = format!(
                    "{:>11}: {}; Connected: {};",
                    "Accepted",
                    n("accepted"),
                    n("connections")
                );
                if n("refused") > 0 {
                    let _ = write!(line, "   Refused: {}", n("refused"));
                }
                let _ = writeln!(out, "{line}");
            }
            // How a process ended, from its `[CLD_*, status]`.
            let end_of = |code: &Json| {
                let c = code.as_array()?;
                let n = |i: usize| c.get(i)?.as_i64().and_then(|v| i32::try_from(v).ok());
                crate::spawn::ExitStatus::from_cld(n(0)?, n(1)?)
            };
            // The commands that ran and ended, as systemctl's "Process:"
            // lines.
            let mut ends_shown = false;
            for c in u["commands"].as_array().into_iter().flatten() {
                if let (Some(pid), Some(line), Some(end)) =
                    (c["pid"].as_u64(), c["line"].as_str(), end_of(&c["code"]))
                {
                    ends_shown = true;
                    let _ = writeln!(
                        out,
                        "{:>11}: {pid} {line} ({})",
                        "Process",
                        end.systemd_words()
                    );
                }
            }
            // A main process that ended: its pid and how it ended.
            let ended = end_of(&u["main_exit_code"]);
            if u["main_pid"].is_null()
                && let (Some(pid), Some(ended)) = (u["main_exit_pid"].as_u64(), ended)
            {
                ends_shown = true;
                let _ = writeln!(out, "{:>11}: {pid} ({})", "Main PID", ended.systemd_words());
            }
            // A command that never ran (203/EXEC, 217/USER: flint found
            // it could not be run before there was a process) has no line
            // above: how it ended.
            if !ends_shown && let Some(last) = u["last_exit"].as_str() {
                let _ = writeln!(out, "{:>11}: {last}", "Last exit");
            }
            for (label, key) in [
                ("Main PID", "main_pid"),
                ("Status", "status"),
                ("Restarts", "restarts"),
            ] {
                match &u[key] {
                    Json::Null => {}
                    // As systemctl: the process's name after its pid, the
                    // status text quoted.
                    Json::Number(pid) if key == "main_pid" => {
                        match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
                            Ok(comm) => {
                                let _ = writeln!(out, "{label:>11}: {pid} ({})", comm.trim_end());
                            }
                            Err(_) => {
                                let _ = writeln!(out, "{label:>11}: {pid}");
                            }
                        }
                    }
                    Json::String(s) if key == "status" => {
                        let _ = writeln!(out, "{label:>11}: \"{s}\"");
                    }
                    Json::String(s) => {
                        let _ = writeln!(out, "{label:>11}: {s}");
                    }
                    v => {
                        let _ = writeln!(out, "{label:>11}: {v}");
                    }
                }
            }
            // A unit that is down and has nothing left in its cgroup shows
            // none, as systemctl.
            let tasks: Vec<i64> = u["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Json::as_i64)
                .collect();
            let down = matches!(state, "inactive" | "failed") && tasks.is_empty();
            if let Some(cg) = u["cgroup"].as_str().filter(|_| !down) {
                // As systemctl: "Tasks: 2 (limit: 4915)".
                // systemctl leaves out a limit of infinity.
                // Threads count as tasks, as systemctl counts them
                // (pids.current), where flint has the pids controller.
                let count = u["tasks_current"].as_u64().unwrap_or(tasks.len() as u64);
                match u["tasks_max"].as_str().filter(|m| *m != "infinity") {
                    Some(max) => {
                        let _ = writeln!(out, "{:>11}: {count} (limit: {max})", "Tasks");
                    }
                    None => {
                        let _ = writeln!(out, "{:>11}: {count}", "Tasks");
                    }
                }
                // As systemctl: "Memory: 1.2M (max: 32.0M)", "CPU: 110ms".
                if let Some(current) = u["memory"]["current"].as_u64() {
                    match u["memory"]["max"].as_u64() {
                        Some(max) => {
                            let _ = writeln!(
                                out,
                                "{:>11}: {} (max: {})",
                                "Memory",
                                crate::unit::value::size::format_bytes(current),
                                crate::unit::value::size::format_bytes(max)
                            );
                        }
                        None => {
                            let _ = writeln!(
                                out,
                                "{:>11}: {}",
                                "Memory",
                                crate::unit::value::size::format_bytes(current)
                            );
                        }
                    }
                }
                if let Some(usec) = u["cpu_usec"].as_u64() {
                    let _ = writeln!(
                        out,
                        "{:>11}: {}",
                        "CPU",
                        crate::unit::value::time::format_timespan_accuracy(usec, 1000)
                    );
                }
                // As the hierarchy names it, as systemctl shows it.
                let cg = u["control_group"].as_str().unwrap_or(cg);
                let _ = writeln!(out, "{:>11}: {cg}", "CGroup");
                for (i, pid) in tasks.iter().enumerate() {
                    let branch = if i + 1 == tasks.len() {
                        "└─"
                    } else {
                        "├─"
                    };
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| {
                            String::from_utf8_lossy(&c)
                                .trim_end_matches('\0')
                                .replace('\0', " ")
                        })
                        .unwrap_or_default();
                    let _ = writeln!(out, "{:>13}{branch}{pid} {cmd}", "");
                }
            }
            if let Some(plugins) = u["plugins"].as_array() {
                for p in plugins {
                    let _ = writeln!(
                        out,
                        "{:>11}: {} (allowed {}, denied {}, routed {}, failed {})",
                        "Plugin",
                        p["name"].as_str().unwrap_or(""),
                        p["allowed"],
                        p["denied"],
                        p["routed"],
                        p["failed"]
                    );
                }
            }
            let log: Vec<&Json> = u["log"].as_array().into_iter().flatten().collect();
            if !log.is_empty() {
                out.push('\n');
                for e in log {
                    let _ = writeln!(out, "{}", log_line(e));
                }
            }
            out.push('\n');
        }
    } else if command == "list-timers" {
        // As `systemctl list-timers`.
        let mut rows: Vec<Vec<String>> = Vec::new();
        for u in &units {
            let at = |key: &str, implicit_left: bool| match u[key].as_u64() {
                Some(t) => (timestamp(t), relative(t, implicit_left)),
                None => ("-".to_string(), "-".to_string()),
            };
            // "11h left", "5 days ago", as systemctl 252 prints them.
            let (next, left) = at("next_usec", false);
            let (last, passed) = at("last_usec", false);
            rows.push(vec![
                next,
                left,
                last,
                passed,
                u["name"].as_str().unwrap_or("?").to_string(),
                u["triggers"].as_str().unwrap_or("").to_string(),
            ]);
        }
        table(
            &mut out,
            &["NEXT", "LEFT", "LAST", "PASSED", "UNIT", "ACTIVATES"],
            &rows,
            " ",
        );
        let _ = write!(out, "\n{} timers listed.\n", rows.len());
        if rows.is_empty() {
            out.push_str("Pass --all to see loaded but inactive timers, too.\n");
        }
    } else if command == "list-paths" {
        // As `systemctl list-paths`: one line per watched path.
        let mut rows: Vec<Vec<String>> = Vec::new();
        for u in &units {
            for p in u["paths"].as_array().into_iter().flatten() {
                let (condition, path) =
                    p.as_str().unwrap_or("").split_once('=').unwrap_or(("", ""));
                rows.push(vec![
                    path.to_string(),
                    condition.to_string(),
                    u["name"].as_str().unwrap_or("?").to_string(),
                    u["triggers"].as_str().unwrap_or("").to_string(),
                ]);
            }
        }
        table(
            &mut out,
            &["PATH", "CONDITION", "UNIT", "ACTIVATES"],
            &rows,
            " ",
        );
        let _ = write!(out, "\n{} paths listed.\n", rows.len());
    } else if command == "list-sockets" {
        // As `systemctl list-sockets`: one line per listener, by address
        // then type; the TYPE column with `--show-types`; "-" for a socket
        // that activates nothing; the count and the hint below unless
        // `--no-legend`.
        let show_types = answer["show_types"].as_bool() == Some(true);
        let legend = answer["no_legend"].as_bool() != Some(true);
        let mut rows: Vec<Vec<String>> = Vec::new();
        for u in &units {
            for l in u["listen"].as_array().into_iter().flatten() {
                let l = l.as_str().unwrap_or("");
                let (addr, kind) = l
                    .strip_suffix(')')
                    .and_then(|x| x.rsplit_once(" ("))
                    .unwrap_or((l, ""));
                let mut row = vec![addr.to_string()];
                if show_types {
                    row.push(kind.to_string());
                }
                row.push(u["name"].as_str().unwrap_or("?").to_string());
                row.push(
                    u["triggers"]
                        .as_str()
                        .filter(|t| !t.is_empty())
                        .unwrap_or("-")
                        .to_string(),
                );
                rows.push(row);
            }
        }
        rows.sort_by(|a, b| (&a[0], &a[1]).cmp(&(&b[0], &b[1])));
        let head: &[&str] = if show_types {
            &["LISTEN", "TYPE", "UNIT", "ACTIVATES"]
        } else {
            &["LISTEN", "UNIT", "ACTIVATES"]
        };
        if legend {
            table(&mut out, head, &rows, " ");
            let _ = write!(out, "\n{} sockets listed.\n", rows.len());
            if answer["all"].as_bool() != Some(true) {
                out.push_str("Pass --all to see loaded but inactive sockets, too.\n");
            }
        } else {
            let mut body = String::new();
            table(&mut body, head, &rows, " ");
            out.push_str(body.split_once('\n').map_or("", |(_, rest)| rest));
        }
    } else {
        // As `systemctl list-units`: by type, then name; a bullet before
        // failed units (none with `--plain`), a legend after (none with
        // `--no-legend`).
        let plain = answer["plain"].as_bool() == Some(true);
        let legend = answer["no_legend"].as_bool() != Some(true);
        let mut units = units;
        units.sort_by_key(|u| {
            let name = u["name"].as_str().unwrap_or("").to_ascii_lowercase();
            let suffix = name
                .rsplit_once('.')
                .map(|(_, t)| t.to_string())
                .unwrap_or_default();
            (suffix, name)
        });
        let rows: Vec<Vec<String>> = units
            .iter()
            .map(|u| {
                let name = u["name"].as_str().unwrap_or("?");
                vec![
                    name.to_string(),
                    u["load"].as_str().unwrap_or("loaded").to_string(),
                    u["state"].as_str().unwrap_or("?").to_string(),
                    u["sub"].as_str().unwrap_or("").to_string(),
                    // A unit without a description is described by its name.
                    u["description"]
                        .as_str()
                        .filter(|d| !d.is_empty())
                        .unwrap_or(name)
                        .to_string(),
                ]
            })
            .collect();
        let head = ["UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION"];
        let widths: Vec<usize> = (0..4)
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].chars().count())
                    .chain([head[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |out: &mut String, mark: &str, cells: &[&str], active: String| {
            if !plain {
                out.push_str(mark);
            }
            let _ = writeln!(
                out,
                "{:w0$} {:w1$} {} {:w3$} {}",
                cells[0],
                cells[1],
                active,
                cells[3],
                cells[4],
                w0 = widths[0],
                w1 = widths[1],
                w3 = widths[3],
            );
        };
        if legend && !rows.is_empty() {
            line(
                &mut out,
                "  ",
                &head,
                format!("{:w$}", head[2], w = widths[2]),
            );
        }
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            let failed = r[2] == "failed" || r[1] != "loaded";
            let mark = if failed { "● " } else { "  " };
            let padded = format!("{:w$}", r[2], w = widths[2]);
            line(&mut out, mark, &cells, paint(&padded));
        }
        if legend {
            if !rows.is_empty() {
                out.push('\n');
                out.push_str(
                    "LOAD   = Reflects whether the unit definition was properly loaded.\n\
                     ACTIVE = The high-level unit activation state, i.e. generalization of SUB.\n\
                     SUB    = The low-level unit activation state, values depend on unit type.\n",
                );
            }
            let all = answer["all"].as_bool() == Some(true);
            let _ = writeln!(
                out,
                "{} loaded units listed.{}",
                rows.len(),
                if all {
                    ""
                } else {
                    " Pass --all to see loaded but inactive units, too."
                }
            );
            out.push_str("To show all installed unit files use 'flint list-unit-files'.\n");
        }
    }
    out
}

/// `list-jobs` as systemctl prints it: each job's number (right-aligned),
/// unit, type and state, or `No jobs running.`.
fn jobs_table(answer: &Json) -> String {
    let legend = answer["no_legend"] != true;
    let jobs: Vec<&Json> = answer["jobs"].as_array().into_iter().flatten().collect();
    let mut out = String::new();
    if jobs.is_empty() {
        if legend {
            let skipped = answer["skipped"] == true;
            let _ = writeln!(
                out,
                "No jobs {}.",
                if skipped { "listed" } else { "running" }
            );
        }
        return out;
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            ["id", "unit", "type", "state"]
                .iter()
                .map(|k| match &j[*k] {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let width = |i: usize, head: &str| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([if legend { head.len() } else { 0 }])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0, "JOB"), width(1, "UNIT"), width(2, "TYPE"));
    if legend {
        let _ = writeln!(out, "{:w0$} {:w1$} {:w2$} STATE", "JOB", "UNIT", "TYPE");
    }
    for r in &rows {
        let _ = writeln!(out, "{:>w0$} {:w1$} {:w2$} {}", r[0], r[1], r[2], r[3]);
    }
    if legend {
        let _ = writeln!(out, "\n{} jobs listed.", rows.len());
    }
    out
}

/// A table as systemctl's listings print one: the header, then a line per
/// row, each column but the last padded to its widest cell.
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>], sep: &str) {
    let last = head.len().saturating_sub(1);
    let widths: Vec<usize> = (0..last)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let header: Vec<String> = head.iter().map(|h| (*h).to_string()).collect();
    for r in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, w) in widths.iter().enumerate() {
            let _ = write!(line, "{:w$}{sep}", r.get(i).map_or("", String::as_str));
        }
        line.push_str(r.get(last).map_or("", String::as_str));
        out.push_str(&line);
        out.push('\n');
    }
}

/// A time (µs since the epoch) as systemd prints one: local time with the
/// zone's abbreviation (`Sat 2026-12-05 22:00:00 UTC`).
pub fn timestamp(usec: u64) -> String {
    i64::try_from(usec)
        .ok()
        .and_then(|u| jiff::Timestamp::from_microsecond(u).ok())
        .map_or_else(
            || "-".to_string(),
            |ts| {
                ts.to_zoned(jiff::tz::TimeZone::system())
                    .strftime("%a %Y-%m-%d %H:%M:%S %Z")
                    .to_string()
            },
        )
}

/// How far a time (µs since the epoch) is from now, in the words of
/// systemd's `format_timestamp_relative_full()`: `1h 5min left`, `3s ago`
/// (`implicit_left`: without the `left`).
pub fn relative(usec: u64, implicit_left: bool) -> String {
    const SEC: u64 = 1_000_000;
    const MIN: u64 = 60 * SEC;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    const WEEK: u64 = 7 * DAY;
    const MONTH: u64 = 2_629_800 * SEC;
    const YEAR: u64 = 31_557_600 * SEC;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let (d, s) = if now > usec {
        (now - usec, " ago")
    } else {
        (usec - now, if implicit_left { "" } else { " left" })
    };
    // Two units, each with its count: `3 weeks 2 days`.
    let two = |big: u64, bigs: [&'static str; 2], small: u64, smalls: [&'static str; 2]| {
        let word = |n: u64, w: [&'static str; 2]| if n == 1 { w[0] } else { w[1] };
        format!(
            "{} {} {} {}{s}",
            d / big,
            word(d / big, bigs),
            d % big / small,
            word(d % big / small, smalls)
        )
    };
    match d {
        d if d >= YEAR => two(YEAR, ["year", "years"], MONTH, ["month", "months"]),
        d if d >= MONTH => two(MONTH, ["month", "months"], DAY, ["day", "days"]),
        d if d >= WEEK => two(WEEK, ["week", "weeks"], DAY, ["day", "days"]),
        d if d >= 2 * DAY => format!("{} days{s}", d / DAY),
        d if d >= 25 * HOUR => format!("1 day {}h{s}", (d - DAY) / HOUR),
        d if d >= 6 * HOUR => format!("{}h{s}", d / HOUR),
        d if d >= HOUR => format!("{}h {}min{s}", d / HOUR, d % HOUR / MIN),
        d if d >= 5 * MIN => format!("{}min{s}", d / MIN),
        d if d >= MIN => format!("{}min {}s{s}", d / MIN, d % MIN / SEC),
        d if d >= SEC => format!("{}s{s}", d / SEC),
        d if d >= 1000 => format!("{}ms{s}", d / 1000),
        d if d > 0 => format!("{d}us{s}"),
        _ => "now".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropins_are_listed_as_systemctl_lists_them() {
        assert_eq!(dropin_lines(&[]), "");
        assert_eq!(
            dropin_lines(&[
                "/etc/systemd/system/x.service.d/a.conf",
                "/etc/systemd/system/x.service.d/b.conf",
                "/run/systemd/system/service.d/c.conf",
            ]),
            "    Drop-In: /etc/systemd/system/x.service.d\n\
             \x20            \u{2514}\u{2500}a.conf, b.conf\n\
             \x20            /run/systemd/system/service.d\n\
             \x20            \u{2514}\u{2500}c.conf\n"
        );
    }

    /// systemd's relative times, as `systemctl list-timers` prints them.
    #[test]
    fn relative_times_read_as_systemd_writes_them() {
        let now = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros(),
        )
        .unwrap();
        let (min, hour, day) = (60_000_000, 3_600_000_000, 86_400_000_000);
        // Half a second of slack for the time the call takes.
        let ahead = |d: u64| now + d + 500_000;
        assert_eq!(relative(ahead(90 * min), false), "1h 30min left");
        assert_eq!(relative(ahead(90 * min), true), "1h 30min");
        assert_eq!(relative(ahead(7 * hour), false), "7h left");
        assert_eq!(relative(ahead(26 * hour), false), "1 day 2h left");
        assert_eq!(relative(ahead(23 * day), false), "3 weeks 2 days left");
        assert_eq!(relative(ahead(2 * min + 5_000_000), false), "2min 5s left");
        assert_eq!(relative(now - 3 * day - 1, false), "3 days ago");
    }

    /// Of flints binding the same control socket at once, one gets it; a
    /// stale node is replaced; the socket answers at its path.
    #[test]
    fn one_of_several_binds_at_once_gets_the_control_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        drop(UnixListener::bind(&path).unwrap());
        for _ in 0..20 {
            let _ = std::fs::remove_file(&path);
            drop(UnixListener::bind(&path).unwrap());
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
            let threads: Vec<_> = (0..6)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        bind(&path).ok()
                    })
                })
                .collect();
            let won: Vec<Bound> = threads
                .into_iter()
                .filter_map(|t| t.join().unwrap())
                .collect();
            assert_eq!(won.len(), 1);
            assert!(UnixStream::connect(&path).is_ok());
            let left = std::fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(left, 2, "the control socket and its lock file");
        }
    }

    #[test]
    fn environment_values_are_quoted_as_systemctl_show_environment_does() {
        for (value, shown) in [
            ("plain/value:1,2", "plain/value:1,2"),
            ("", ""),
            ("ünïcode", "ünïcode"),
            ("a b", "$'a b'"),
            ("it's", "$'it\\'s'"),
            ("back\\slash", "$'back\\\\slash'"),
            ("x\ny\tz", "$'x\\ny\\tz'"),
            ("del\x7f", "$'del\\177'"),
            ("$HOME", "$'$HOME'"),
            ("*", "$'*'"),
        ] {
            assert_eq!(shell_maybe_quote(value), shown, "{value:?}");
        }
        // What bash reads back is the value.
        for value in ["a b", "it's", "back\\slash", "x\ny\tz", "$HOME"] {
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(format!("printf %s {}", shell_maybe_quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
    }

    #[test]
    fn import_environment_takes_the_named_variables() {
        let env: Vec<(std::ffi::OsString, std::ffi::OsString)> = [
            ("DISPLAY", ":0"),
            ("WAYLAND_DISPLAY", "wayland-1"),
            ("1BAD", "x"),
        ]
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let (set, notices) =
            import_assignments(&names(&["WAYLAND_DISPLAY", "DISPLAY", "XAUTHORITY"]), &env)
                .unwrap();
        assert_eq!(set, ["WAYLAND_DISPLAY=wayland-1", "DISPLAY=:0"]);
        assert_eq!(
            notices,
            ["Environment variable $XAUTHORITY not set, ignoring."]
        );
        assert_eq!(
            import_assignments(&names(&["DIS*"]), &env).unwrap_err(),
            "Not a valid environment variable name: DIS*"
        );
        // All of it: the valid assignments only.
        let (all, _) = import_assignments(&[], &env).unwrap();
        assert_eq!(all, ["DISPLAY=:0", "WAYLAND_DISPLAY=wayland-1"]);
    }

    #[test]
    fn times_render_in_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000_000 + 1_500), "2000-02-29T00:00:00.001Z");
        assert_eq!(utc(1_796_169_599_999_999), "2026-12-01T23:59:59.999Z");
    }

    /// A request the running flint refuses before reading it all (too
    /// long: the sync reader stops at 64 KiB) still gets its answer to the
    /// caller, not a broken pipe.
    #[test]
    fn a_refused_long_request_is_answered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        let Bound { listener, lock } = bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let _lock = lock;
            listener.set_nonblocking(false).unwrap();
            let (s, _) = listener.accept().unwrap();
            let e = read_request(&s).unwrap_err();
            let mut w = &s;
            w.write_all(format!("{}\n", error(1, &e)).as_bytes())
                .unwrap();
        });
        let big = "x".repeat(4 * 1024 * 1024);
        let answer = call(
            &path,
            &json!({"version": 1, "command": "set-environment", "assignments": [big]}),
        )
        .unwrap();
        server.join().unwrap();
        assert_eq!(answer["error"], "request longer than 64 KiB: refused");
    }

    #[test]
    fn request_round_trip_and_authorization() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        let Bound { listener, lock } = bind(&path).unwrap();
        assert!(
            bind(&path).is_err(),
            "a live control socket is not taken over"
        );
        let server = std::thread::spawn(move || {
            let _lock = lock;
            listener.set_nonblocking(false).unwrap();
            let (s, _) = listener.accept().unwrap();
            assert!(authorized(&s), "our own user may control flint");
            let req = read_request(&s).unwrap();
            let mut w = &s;
            let answer = json!({"version": 1, "ok": true, "exit": 0, "units": [{"name": "a.service", "state": "active", "sub": "running", "description": req["command"]}]});
            w.write_all(format!("{answer}\n").as_bytes()).unwrap();
        });
        let answer = call(&path, &json!({"version": 1, "command": "list-units"})).unwrap();
        server.join().unwrap();
        assert_eq!(answer["units"][0]["description"], "list-units");
        let text = render("list-units", &answer, false);
        assert!(
            text.contains("a.service")
                && text.contains("active")
                && text.contains("1 loaded units listed."),
            "{text}"
        );
        // As systemctl's: UNIT LOAD ACTIVE SUB DESCRIPTION, sorted by type
        // then name, a bullet before a failed unit; `--no-legend --plain`
        // leaves one line per unit, its fourth field the sub state.
        let listing = json!({"version": 1, "ok": true, "exit": 0, "units": [
            {"name": "z.service", "state": "active", "sub": "running", "description": "Zed"},
            {"name": "b.socket", "state": "active", "sub": "listening", "description": ""},
            {"name": "a.service", "state": "failed", "sub": "failed", "description": "A thing"},
        ]});
        let text = render("list-units", &listing, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION"]
        );
        assert!(lines[1].starts_with("● a.service"), "{text}");
        assert!(lines[2].starts_with("  z.service"), "{text}");
        assert!(lines[3].starts_with("  b.socket"), "{text}");
        assert!(text.contains("3 loaded units listed. Pass --all"), "{text}");
        let mut bare = listing.clone();
        bare["no_legend"] = true.into();
        bare["plain"] = true.into();
        let text = render("list-units", &bare, false);
        let fields: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(fields.len(), 3, "{text}");
        assert_eq!(
            fields[0],
            ["a.service", "loaded", "failed", "failed", "A", "thing"]
        );
        assert_eq!(fields[1][3], "running");
        assert_eq!(
            fields[2],
            ["b.socket", "loaded", "active", "listening", "b.socket"]
        );
        assert!(
            render(
                "status",
                &error(4, "Unit x.service could not be found."),
                false
            )
            .contains("could not be found")
        );
        // A command that acts says nothing when it succeeds.
        let done = json!({"version": 1, "ok": true, "exit": 0, "units": []});
        for command in ["start", "stop", "restart", "reload", "kill"] {
            assert_eq!(render(command, &done, false), "", "{command}");
        }
        assert!(render("list-units", &done, false).contains("0 loaded units listed."));
    }

    #[test]
    fn status_shows_the_state_as_systemctl_does() {
        let unit = |state: &str, sub: &str, result: &str| {
            json!({"version": 1, "ok": true, "exit": 0, "units": [
                {"name": "a.service", "type": "service", "state": state, "sub": sub,
                 "result": result, "triggered_by": [
                     {"name": "a.socket", "state": "active"},
                     {"name": "a.timer", "state": "inactive"}]}]})
        };
        let text = render("status", &unit("failed", "failed", "exit-code"), false);
        assert!(
            text.contains("     Active: failed (Result: exit-code)\n"),
            "{text}"
        );
        assert!(!text.contains("Result: exit-code\n     "), "{text}");
        assert!(
            text.contains("TriggeredBy: ● a.socket\n             ○ a.timer\n"),
            "{text}"
        );
        let text = render("status", &unit("active", "running", "success"), false);
        assert!(text.contains("     Active: active (running)\n"), "{text}");
        assert!(!text.contains("Duration:"), "{text}");
        // A run that ended: how long it was up, as systemctl's.
        let mut ended = unit("failed", "failed", "exit-code");
        ended["units"][0]["times"] = json!({
            "ActiveEnterTimestamp": 1_000_000_000u64,
            "ActiveExitTimestamp": 1_062_003_000u64,
        });
        let text = render("status", &ended, false);
        assert!(
            text.contains("     Active: failed (Result: exit-code)\n   Duration: 1min 2.003s\n"),
            "{text}"
        );
        // Since when, its main process by name, its status text quoted.
        let mut since = unit("active", "running", "success");
        let ago = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
            - 5_000_000;
        since["units"][0]["since_usec"] = u64::try_from(ago).unwrap().into();
        since["units"][0]["main_pid"] = std::process::id().into();
        since["units"][0]["status"] = "Ready".into();
        let text = render("status", &since, false);
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert!(
            text.contains(&format!(
                "     Active: active (running) since {}; 5s ago\n",
                timestamp(u64::try_from(ago).unwrap())
            )) && text.contains(&format!(
                "   Main PID: {} ({})\n",
                std::process::id(),
                comm.trim_end()
            )) && text.contains("     Status: \"Ready\"\n"),
            "{text}"
        );
        // A socket's counts, for `Accept=yes` only, in systemctl's words.
        let socket = |accept: bool| {
            json!({"version": 1, "ok": true, "exit": 0, "units": [
                {"name": "e.socket", "type": "socket", "state": "active", "sub": "listening",
                 "accept": accept, "accepted": 5, "connections": 1, "refused": 2}]})
        };
        let text = render("status", &socket(true), false);
        assert!(
            text.contains("\n   Accepted: 5; Connected: 1;   Refused: 2\n"),
            "{text}"
        );
        let text = render("status", &socket(false), false);
        assert!(
            !text.contains("Accepted") && !text.contains("Connect"),
            "{text}"
        );
        // Its addresses with the label on the first, what it starts with a
        // bullet, in systemctl's order.
        let mut two = socket(true);
        two["units"][0]["listen"] = json!(["/run/e.sock (Stream)", "127.0.0.1:7 (Stream)"]);
        two["units"][0]["triggers"] = "e@.service".into();
        let text = render("status", &two, false);
        assert!(
            text.contains(
                "   Triggers: ● e@.service\n     Listen: /run/e.sock (Stream)\n             127.0.0.1:7 (Stream)\n   Accepted: 5;"
            ),
            "{text}"
        );
        // Down with nothing left: no tasks and no cgroup, as systemctl.
        let mut down = unit("inactive", "dead", "success");
        down["units"][0]["cgroup"] = "/sys/fs/cgroup/flint-1-2/a.service".into();
        down["units"][0]["tasks"] = json!([]);
        let text = render("status", &down, false);
        assert!(
            !text.contains("CGroup:") && !text.contains("Tasks:"),
            "{text}"
        );
        let mut up = unit("active", "running", "success");
        up["units"][0]["cgroup"] = "/sys/fs/cgroup/flint-1-2/a.service".into();
        up["units"][0]["tasks"] = json!([1]);
        let text = render("status", &up, false);
        assert!(
            text.contains("CGroup:") && text.contains("Tasks: 1"),
            "{text}"
        );
    }
}
