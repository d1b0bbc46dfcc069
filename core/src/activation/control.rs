//! `flint ctl` on the manager's side: the control socket's accept loop and
//! the answers to each command, computed from the manager's own state.

use serde_json::{Value as Json, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::jobs::JobKind;
use super::lifecycle::State;
use super::{Event, Manager};
use crate::control::{self, PROTOCOL_VERSION};

/// How long the record of a collected transient service stays: long
/// enough for `systemd-run --wait` to read how it ended.
pub(super) const COLLECT_GRACE: std::time::Duration = std::time::Duration::from_mins(1);

/// How long the standard I/O passed by `systemd-run --pipe` waits for the
/// start of its service (the next request of the same systemd-run).
pub(super) const STDIO_UNCLAIMED: std::time::Duration = std::time::Duration::from_secs(10);

/// Answers the manager was asked for and that are not written yet.
static ANSWERING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Waits (at most a second) until the answers asked for are written: the
/// answer to `systemctl exit` or `poweroff` is computed by the turn that
/// ends flint, and reaches its client only through here.
pub(super) async fn answers_written() {
    use std::sync::atomic::Ordering;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while ANSWERING.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Serves the control socket: each connection sends one request line and
/// gets one answer line, computed by the manager.
pub(super) fn serve(listener: std::os::unix::net::UnixListener, tx: mpsc::UnboundedSender<Event>) {
    tokio::task::spawn_local(async move {
        let Ok(listener) = tokio::net::UnixListener::from_std(listener) else {
            return;
        };
        let mut said = false;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    said = false;
                    stream
                }
                // Out of fds or memory (thousands of idle clients): back
                // off briefly instead of spinning on the failing accept,
                // and say so once, as the listeners of sockets do.
                Err(e) => {
                    if !said {
                        tracing::warn!(
                            "flint: control socket: accept failed: {e}; retrying in 100 ms"
                        );
                        said = true;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let tx = tx.clone();
            tokio::task::spawn_local(async move {
                let allowed = stream
                    .peer_cred()
                    .is_ok_and(|c| c.uid() == 0 || c.uid() == nix::unistd::geteuid().as_raw());
                // A request is one line, read for at most 5 s and 1 MiB,
                // with the fds passed along with it; a peer that may not
                // control flint passes none (the kernel closes them). Its
                // line is read all the same: a socket closed with unread
                // data would reset the connection before the peer read
                // why it was refused.
                let got = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    read_request(&stream, REQUEST_LIMIT, allowed),
                )
                .await;
                let mut write = stream;
                let (line, fds) = match got {
                    Ok(Ok((line, fds))) if !line.is_empty() => (line, fds),
                    _ => (String::new(), Vec::new()),
                };
                let answer = if !allowed {
                    control::error(
                        1,
                        "permission denied: only root and flint's own user may control it",
                    )
                } else if line.is_empty() {
                    control::error(1, "no request")
                } else if line.len() >= REQUEST_LIMIT && !line.ends_with('\n') {
                    control::error(1, "request longer than 1 MiB: refused")
                } else {
                    match serde_json::from_str::<Json>(&line) {
                        Ok(req)
                            if req.get("version").and_then(Json::as_u64)
                                == Some(PROTOCOL_VERSION) =>
                        {
                            let (reply, wait) = oneshot::channel();
                            let (queued, on_queued) = if req["queued"] == true {
                                let (q, w) = oneshot::channel();
                                (Some(q), Some(w))
                            } else {
                                (None, None)
                            };
                            ANSWERING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if tx
                                .send(Event::Control {
                                    request: req,
                                    reply,
                                    fds,
                                    queued,
                                })
                                .is_err()
                            {
                                ANSWERING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                                return;
                            }
                            if let Some(w) = on_queued
                                && let Ok(job) = w.await
                            {
                                let line = crate::control::queued_text(job);
                                let _ = write.write_all(line.as_bytes()).await;
                            }
                            let answer = wait
                                .await
                                .unwrap_or_else(|_| control::error(1, "flint is stopping"));
                            let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
                            ANSWERING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                        Ok(_) => control::error(
                            1,
                            &format!(
                                "unsupported protocol version (this flint speaks {PROTOCOL_VERSION})"
                            ),
                        ),
                        Err(e) => control::error(1, &format!("request is not JSON: {e}")),
                    }
                };
                let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
            });
        }
    });
}

/// The longest request line flint reads.
const REQUEST_LIMIT: usize = 1024 * 1024;

/// Reads one request line (at most `limit` bytes) and the fds passed with
/// it (`SCM_RIGHTS`, close-on-exec; any beyond
/// [`control::MAX_PASSED_FDS`] are closed).
async fn read_request(
    stream: &tokio::net::UnixStream,
    limit: usize,
    take_fds: bool,
) -> std::io::Result<(String, Vec<std::os::fd::OwnedFd>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut line = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        stream.readable().await?;
        let got = stream.try_io(tokio::io::Interest::READABLE, || {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let mut space = nix::cmsg_space!([std::os::fd::RawFd; 8]);
            let msg = recvmsg::<()>(
                stream.as_raw_fd(),
                &mut iov,
                take_fds.then_some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(std::io::Error::from)?;
            let mut passed = Vec::new();
            // (Without room for them the kernel closed any fds passed.)
            if !take_fds {
                return Ok((msg.bytes, passed));
            }
            for c in msg.cmsgs().map_err(std::io::Error::from)? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    // SAFETY: the kernel just installed these fds in this
                    // process for this message; nothing else owns them.
                    passed.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
            Ok((msg.bytes, passed))
        });
        let (n, passed) = match got {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        fds.extend(passed);
        fds.truncate(control::MAX_PASSED_FDS);
        let chunk = &buf[..n];
        // What follows the line (nothing, from flint's own clients) is
        // dropped.
        if let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&chunk[..=end]);
            break;
        }
        line.extend_from_slice(chunk);
        if n == 0 || line.len() >= limit {
            break;
        }
    }
    line.truncate(limit);
    Ok((String::from_utf8_lossy(&line).into_owned(), fds))
}

/// Log lines `status` shows, as `systemctl status` does.
pub(super) const STATUS_LINES: usize = 10;

fn service_state(state: State, remain: bool) -> (&'static str, &'static str) {
    match state {
        State::Dead => ("inactive", "dead"),
        State::Failed => ("failed", "failed"),
        State::Condition(_) => ("activating", "condition"),
        State::StartPre(_) => ("activating", "start-pre"),
        State::Start(_) => ("activating", "start"),
        State::StartPost(_) => ("activating", "start-post"),
        State::Running if remain => ("active", "exited"),
        State::Running => ("active", "running"),
        State::Reload(_) | State::ReloadNotify => ("reloading", "reload"),
        State::Stop(_) => ("deactivating", "stop"),
        State::StopSigterm => ("deactivating", "stop-sigterm"),
        State::StopWatchdog => ("deactivating", "stop-watchdog"),
        State::StopSigkill => ("deactivating", "stop-sigkill"),
        State::StopPost(_) => ("deactivating", "stop-post"),
        State::AutoRestart => ("activating", "auto-restart"),
    }
}

use super::lifecycle::{ServiceRt, cgroup_of};

/// How `list-dependencies` draws its tree.
#[derive(Debug, Clone, Copy)]
struct TreeShape {
    /// Follow every unit, not only targets (`--all`).
    all: bool,
    /// No glyphs and no tree (`--plain`).
    plain: bool,
    /// What pulls each unit in, not what it pulls in (`--reverse`).
    reverse: bool,
}

/// One line of `list-dependencies` (systemctl's
/// `list_dependencies_print()`): the state glyph (two spaces without one
/// or with `--plain`), the tree, the name.
fn tree_line(
    glyph: Option<&str>,
    name: &str,
    level: usize,
    branches: u64,
    last: bool,
    shape: TreeShape,
) -> String {
    let mut line = match glyph {
        Some(g) if !shape.plain => format!("{g} "),
        _ => "  ".to_string(),
    };
    if !shape.plain {
        for i in (0..level).rev() {
            line.push_str(if branches & (1 << i) != 0 {
                "│ "
            } else {
                "  "
            });
        }
        line.push_str(if last { "└─" } else { "├─" });
    }
    line.push_str(name);
    line
}
use crate::cgroup::Controller;

/// A service's description; an `Accept=yes` instance's with its peer, as
/// systemd's `service_set_socket_fd()` sets it: "Telnet server
/// (127.0.0.1:58678)", or the peer alone without a description.
fn instance_description(svc: &super::lifecycle::ServiceRt) -> String {
    let own = svc.unit.get_str("Unit", "Description").unwrap_or("");
    match svc
        .conn
        .as_ref()
        .and_then(|(_, _, peer)| peer.as_ref()?.pretty())
    {
        Some(peer) if own.is_empty() => peer,
        Some(peer) => format!("{own} ({peer})"),
        None => own.to_string(),
    }
}

/// One word of a list as `systemctl show` prints it: in double quotes
/// where it holds a space or a quote (an assignment of `Environment=`).
fn list_word(word: &str) -> String {
    if word.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\')) {
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        word.to_string()
    }
}

/// A unit's `Documentation=` addresses, each on its own (a line may hold
/// several).
fn documentation(unit: &crate::unit::load::Unit) -> Vec<String> {
    unit.strings("Unit", "Documentation")
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_string)
        .collect()
}

/// The commands of a service that ran, in systemd's order of the
/// command lists, each as `systemctl status` names it (`ExecStartPre=/usr/sbin/nginx -t`)
/// with its pid, times and end (`[CLD_*, status]`, null while it runs):
/// its other commands' last runs and the main process that ended.
fn commands_json(svc: &super::lifecycle::ServiceRt) -> Json {
    let line = |key: &str, index: usize| {
        svc.unit
            .commands("Service", key)
            .get(index)
            .map(|c| format!("{key}={}", c.argv.join(" ")))
    };
    let mut rows: Vec<(usize, usize, Json)> = svc
        .command_runs
        .iter()
        .filter_map(|r| {
            let order = crate::unit::verify::SERVICE_COMMANDS
                .iter()
                .position(|k| *k == r.key)?;
            Some((
                order,
                r.index,
                json!({
                    "key": r.key,
                    "index": r.index,
                    "line": line(r.key, r.index)?,
                    "pid": r.pid,
                    "start_usec": r.start_usec,
                    "exit_usec": r.exit_usec,
                    "code": r.status.map(crate::spawn::ExitStatus::cld),
                }),
            ))
        })
        .collect();
    let starts = svc.unit.commands("Service", "ExecStart").len();
    // (A forking service's `ExecStart=` has its run above; its daemon's
    // end is the "Main PID" line's.)
    if svc.service_type() != "forking"
        && let (Some(pid), Some(status), Some(last)) = (
            svc.main_pid
                .is_none()
                .then_some(svc.main_exit_pid)
                .flatten(),
            svc.main_status,
            starts.checked_sub(1),
        )
        && let Some(order) = crate::unit::verify::SERVICE_COMMANDS
            .iter()
            .position(|k| *k == "ExecStart")
        && let Some(text) = line("ExecStart", last)
    {
        rows.push((
            order,
            last,
            json!({"key": "ExecStart", "index": last, "line": text, "pid": pid,
                   "code": status.cld()}),
        ));
    }
    rows.sort_by_key(|(order, index, _)| (*order, *index));
    rows.into_iter().map(|(_, _, row)| row).collect()
}

/// The service of a socket restart that concerns the socket alone (no
/// service id is this).
pub(super) const SOCKET_ALONE: u64 = u64::MAX;

/// The way flint ends that starting target `name` asks for: systemd's
/// `poweroff.target`, `reboot.target` (and `ctrl-alt-del.target`, which is
/// its alias), `halt.target`, `kexec.target` and `exit.target`, which
/// logind's `PowerOff` and `systemctl poweroff` start.
pub(super) fn ending_target(name: &str) -> Option<&'static str> {
    Some(match name {
        "poweroff.target" => "poweroff",
        "reboot.target" | "ctrl-alt-del.target" => "reboot",
        "halt.target" => "halt",
        "kexec.target" => "kexec",
        "exit.target" => "exit",
        _ => return None,
    })
}

/// The way flint ends that job `command` on `names` asks for: a start (or
/// restart) of one of them that [`ending_target`] names.
pub(super) fn ending_job(command: &str, names: &[String]) -> Option<&'static str> {
    if !matches!(command, "start" | "restart" | "reload-or-restart") {
        return None;
    }
    names.iter().find_map(|n| ending_target(n))
}

impl Manager {
    /// Ends flint as `word` says (`exit`, `poweroff`, `halt`, `reboot`,
    /// `kexec`): its units stop, then it exits, or as a container's or the
    /// machine's init ends the system. Refused where flint is not the
    /// system's init (all but `exit`), and `exit` where flint is the
    /// machine's own init.
    pub(super) fn end_request(&mut self, word: &str, force: bool, status: Option<u8>) -> Json {
        if !["exit", "poweroff", "halt", "reboot", "kexec"].contains(&word) {
            return control::error(1, &format!("unknown way to end: {word}"));
        }
        // As systemd's user manager takes only exit; flint ends the
        // system only where it is the system's init, a container's.
        if word != "exit" && (self.search.user_mode || crate::own_pid() != 1) {
            return control::error(
                1,
                &format!(
                    "Refusing to {word}: flint is not this system's init (it runs as PID {}). \
                             `systemctl exit` stops flint and its units.",
                    crate::own_pid()
                ),
            );
        }
        // As systemd refuses Exit outside a container: flint as the
        // machine's own init would panic the kernel by ending.
        if word == "exit"
            && !self.search.user_mode
            && crate::own_pid() == 1
            && crate::in_initial_pid_namespace()
        {
            return control::error(
                1,
                "Refusing to exit: flint is this machine's init (PID 1 outside a container); \
                         poweroff, reboot or halt end it.",
            );
        }
        self.act(&super::lifecycle::Action::requested(word, force, status));
        json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0, "units": []})
    }

    /// A start of socket `name` by hand, the socket opened (or listening
    /// already): what it `Requires=`, `BindsTo=` and `Wants=` starts too,
    /// as the start job of systemd's transaction pulls them in
    /// (`cockpit-wsinstance-https@x.socket` its `BindsTo=` service).
    /// Before socket `name` opens by hand: the listening sockets it
    /// conflicts with, either way, close first, as systemd's transaction
    /// stops them before it starts the socket (they may listen on the same
    /// port or path).
    fn stop_conflicting_sockets(&mut self, name: &str) {
        let clash: Vec<usize> = self
            .sockets_in_conflict_with(name)
            .into_iter()
            .filter(|&j| !self.sockets[j].stopped && !self.sockets[j].failed)
            .collect();
        for j in clash {
            tracing::info!(
                "{}: conflicts with {name}, which starts; stopping",
                self.sockets[j].name
            );
            self.stop_socket(j);
        }
    }

    /// And the units that declare `Conflicts=` with it stop
    /// (`pipewire-pulse.socket` when `pulseaudio.socket` starts: both
    /// listen on one path).
    fn pull_in_for_socket(&mut self, name: &str) {
        if self
            .socket_index(name)
            .is_some_and(|i| !super::jobs::Deps::of(&self.sockets[i].unit).is_empty())
            || self.conflicted_by_any(name)
        {
            self.enqueue_name(name, JobKind::Start);
        }
    }

    /// A service's active and sub state in systemd's words.
    pub(super) fn service_words(&self, id: u64) -> (&'static str, &'static str) {
        let Some(svc) = self.services.get(&id) else {
            return ("inactive", "dead");
        };
        match (svc.state, svc.final_stage) {
            // A timed-out ExecStopPost= being signalled: systemd's names.
            (State::StopPost(_), 1) => ("deactivating", "final-sigterm"),
            (State::StopPost(_), 2) => ("deactivating", "final-sigkill"),
            (state, _) => service_state(
                state,
                svc.main_pid.is_none() && (svc.service_type() == "oneshot" || svc.main_exited),
            ),
        }
    }

    fn service_json(&self, id: u64) -> Json {
        let Some(svc) = self.services.get(&id) else {
            return Json::Null;
        };
        let (state, sub) = self.service_words(id);
        let cgroup = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc);
        let unit = svc.unit.id.as_str();
        // A unit that is down has no tasks, memory or CPU time to show (its
        // cgroup may be made ahead of its next start, empty), as systemd
        // reports none.
        let running = cgroup.filter(|_| !matches!(state, "inactive" | "failed"));
        let tasks = cgroup.map(|cg| cg.pids(unit));
        // Its cgroup while it runs, or while processes are left in it.
        let control_group = cgroup
            .filter(|_| running.is_some() || tasks.as_ref().is_some_and(|t| !t.is_empty()))
            .map(|cg| cg.control_group(unit));
        json!({
            "name": svc.unit.id.to_string(),
            "type": "service",
            "description": instance_description(svc),
            "state": state,
            "sub": sub,
            "main_pid": svc.main_pid,
            "cgroup": cgroup.map(|cg| cg.dir(unit)),
            "control_group": control_group,
            "tasks": tasks,
            "tasks_max": cgroup.and_then(|cg| tasks_max(cg, svc)),
            "tasks_current": running.and_then(|cg| tasks_current(cg, unit)),
            "memory": running.and_then(|cg| memory(cg, unit)),
            "cpu_usec": running.and_then(|cg| cpu_usec(cg, unit)),
            "status": svc.status_text,
            "result": svc.result,
            // How its last start job ended, when a unit it needs failed.
            "job_result": svc.job_failed,
            "restarts": svc.restarts,
            "last_exit": svc.last_status.map(|s| s.to_string()),
            "main_exit": svc.main_status.map(|s| s.to_string()),
            // The main process that ended, as systemctl shows it ("Main
            // PID: 42 (code=exited, status=1/FAILURE)").
            "main_exit_pid": svc.main_pid.is_none().then_some(svc.main_exit_pid).flatten(),
            // How it ended as CLD_* and the status or signal.
            "main_exit_code": svc.main_status.map(crate::spawn::ExitStatus::cld),
            "commands": commands_json(svc),
            "job": self.job_text(id),
            "job_id": self.jobs.get(&id).map(|j| j.serial),
            "since_usec": svc.times.since(state),
            "times": times_json(&svc.times),
            "triggered_by": self.triggered_by(svc),
            "log": crate::logs::recent(svc.unit.id.as_str(), STATUS_LINES, 0),
        })
    }

    /// The sockets, timers and path units that start service `svc`, each
    /// with its state, as systemctl's `TriggeredBy:` lists them.
    fn triggered_by(&self, svc: &super::lifecycle::ServiceRt) -> Vec<Json> {
        let me = svc.unit.id.as_str();
        let template = svc.unit.id.template();
        let listed: Vec<&str> = super::listed_sockets(&svc.unit).collect();
        let mut out = Vec::new();
        for (i, s) in self.sockets.iter().enumerate().filter(|(_, s)| !s.removed) {
            let service = s.config.service.as_str();
            let mine = service == me
                || svc.unit.aliases.iter().any(|a| a.as_str() == service)
                || template.as_ref().is_some_and(|t| t.as_str() == service)
                || listed.contains(&s.name.as_str());
            if mine {
                out.push(json!({"name": s.name, "state": self.socket_state(i).0}));
            }
        }
        for (name, t) in &self.timers.map {
            if t.target == me {
                out.push(json!({"name": name, "state": t.state.words().0}));
            }
        }
        for (name, p) in &self.path_units.map {
            if p.target == me {
                out.push(json!({"name": name, "state": p.state.words().0}));
            }
        }
        out
    }

    /// A socket's state and sub-state, as systemctl shows them.
    pub(super) fn socket_state(&self, index: usize) -> (&'static str, &'static str) {
        let s = &self.sockets[index];
        if let Some(sub) = self.hooks_state(&s.name) {
            (
                if sub == "stop-pre" {
                    "deactivating"
                } else {
                    "activating"
                },
                sub,
            )
        } else if s.stopped {
            ("inactive", "dead")
        } else if s.failed {
            ("failed", "failed")
        } else if s.is_listening() {
            ("active", "listening")
        } else {
            ("active", "running")
        }
    }

    fn socket_json(&self, index: usize) -> Json {
        let s = &self.sockets[index];
        let (state, sub) = self.socket_state(index);
        let plugins: Vec<Json> = s
            .policy
            .as_ref()
            .map(|p| {
                p.chain
                    .plugins()
                    .iter()
                    .map(|pl| {
                        let st = pl.stats();
                        json!({"name": pl.name(), "allowed": st.allowed, "denied": st.denied, "routed": st.routed, "failed": st.failed})
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "name": s.name,
            "type": "socket",
            "description": s.unit.get_str("Unit", "Description").unwrap_or(""),
            "state": state,
            "sub": sub,
            // What it listens on, or (failed, stopped) what it is to
            // listen on, as systemd's `Listen` property.
            "listen": if s.listeners.is_empty() {
                s.config.listens.iter().map(super::socket::describe_listen).collect::<Vec<_>>()
            } else {
                s.listeners.iter().map(super::socket::OpenListener::describe).collect::<Vec<_>>()
            },
            // An `Accept=yes` socket triggers no unit of its own (its
            // template is none), as systemd's lists it.
            // A service named through an alias (`syslog.socket` starts
            // `syslog.service`, rsyslog's alias) by its own name, once
            // loaded.
            "triggers": if s.config.accept {
                String::new()
            } else {
                self.find_service(s.config.service.as_str())
                    .and_then(|id| self.services.get(&id))
                    .map_or_else(|| s.config.service.to_string(), |svc| svc.unit.id.to_string())
            },
            "since_usec": s.times.since(state),
            "times": times_json(&s.times),
            "result": s.result,
            "accept": s.config.accept,
            "connections": s.active,
            "accepted": s.accepted,
            "refused": s.refused,
            "plugins": if plugins.is_empty() { Json::Null } else { Json::Array(plugins) },
            // Its own lines (its commands' output, flint's lines about
            // it), not its service's, as systemctl's status of a socket.
            "log": crate::logs::recent_with_manager(&s.name, STATUS_LINES),
        })
    }

    /// The service of `Accept=no` socket `name` when it runs (or starts,
    /// or stops) without the socket: systemd's `socket_start()` refuses
    /// then ("Socket service ... already active, refusing."), as the socket
    /// would listen beside the fds the service already has.
    fn socket_service_busy(&mut self, name: &str) -> Option<String> {
        let parsed: crate::unit::name::UnitName = name.parse().ok()?;
        if parsed.unit_type() != crate::unit::name::UnitType::Socket {
            return None;
        }
        let config = match self.socket_index(name) {
            Some(i) => self.sockets[i].config.clone(),
            None => super::SocketConfig::from_unit(&self.unit_on_disk(name)?).ok()?,
        };
        if config.accept {
            return None;
        }
        let id = self.find_service(config.service.as_str())?;
        let svc = self.services.get(&id)?;
        (!matches!(svc.state, State::Dead | State::Failed | State::AutoRestart))
            .then(|| svc.unit.id.to_string())
    }

    /// `status` of a socket without listeners that is not a stopped one:
    /// its `ExecStartPre=` runs (activating, or deactivating in its
    /// `ExecStopPre=`), or its start failed before it had listeners.
    fn unopened_socket_json(&self, name: &str) -> Option<Json> {
        let (state, sub, result) = if let Some(sub) = self.hooks_state(name) {
            let state = if sub == "stop-pre" {
                "deactivating"
            } else {
                "activating"
            };
            (state, sub, "success")
        } else {
            ("failed", "failed", *self.socket_failures.get(name)?)
        };
        Some(json!({
            "name": name, "type": "socket", "description": "",
            "state": state, "sub": sub, "result": result, "listen": [],
            "triggers": Json::Null, "connections": 0, "accepted": 0,
            "refused": 0, "plugins": Json::Null,
            "log": crate::logs::recent(name, STATUS_LINES, 0),
        }))
    }

    /// The sockets whose start failed before they had listeners (and that
    /// have none now).
    fn unopened_failures(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .socket_failures
            .keys()
            .map(String::as_str)
            .filter(|n| self.socket_index(n).is_none())
            .collect();
        names.sort_unstable();
        names
    }

    /// `systemd-run`: writes the transient units of `req` (`units`: name
    /// and unit file text each) into the transient directory of flint's
    /// search path, where the next start finds them. A unit that runs, or
    /// that has a file of its own elsewhere, is refused, as systemd refuses
    /// a transient unit whose name is taken.
    fn write_transient(&mut self, req: &Json) -> Json {
        let Some(dir) = self
            .search
            .dirs
            .iter()
            .find(|d| d.file_name().is_some_and(|n| n == "transient"))
            .cloned()
        else {
            return control::error(
                1,
                "Failed to start transient unit: this flint's search path has no transient \
                 directory (/run/systemd/transient, or one named \"transient\" in \
                 $SYSTEMD_UNIT_PATH)",
            );
        };
        let units: Vec<(String, String)> = req
            .get("units")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|u| {
                Some((
                    u.get("name")?.as_str()?.to_string(),
                    u.get("text")?.as_str()?.to_string(),
                ))
            })
            .collect();
        if units.is_empty() {
            return control::error(1, "Too few arguments.");
        }
        self.sweep_collected(COLLECT_GRACE);
        self.sweep_transient_timers();
        let mut reload = false;
        for (name, _) in &units {
            let Ok(parsed) = name.parse::<crate::unit::name::UnitName>() else {
                return control::error(1, &format!("Invalid unit name: {name}"));
            };
            if parsed.is_template() || name.contains('/') {
                return control::error(1, &format!("Invalid unit name: {name}"));
            }
            let taken = || {
                control::error(
                    1,
                    &format!(
                        "Failed to start transient {} unit: Unit {name} was already loaded or has a fragment file.",
                        parsed.unit_type().suffix()
                    ),
                )
            };
            let running = match self.find_service(name) {
                Some(id) => {
                    self.jobs.contains_key(&id)
                        || self.services.get(&id).is_some_and(|s| {
                            !matches!(s.state, State::Dead | State::Failed) || s.spawning
                        })
                }
                None => self
                    .timers
                    .map
                    .get(name.as_str())
                    .is_some_and(|t| t.state.words().0 == "active"),
            };
            if running {
                return taken();
            }
            if let Ok(sources) = crate::unit::loader::resolve(&self.search, &parsed)
                && sources
                    .fragment
                    .as_ref()
                    .is_some_and(|f| f.parent() != Some(dir.as_path()))
            {
                return taken();
            }
            reload |= self.timers.map.contains_key(name.as_str());
        }
        // `--pipe`: the service gets the caller's standard I/O.
        let stdio = if req.get("stdio").and_then(Json::as_str) == Some("pipe") {
            let Ok(fds) =
                <[std::os::fd::OwnedFd; 3]>::try_from(std::mem::take(&mut self.passed_fds))
            else {
                return control::error(
                    1,
                    "Failed to start transient unit: --pipe needs standard input, output and error passed along",
                );
            };
            let Some((service, _)) = units.iter().find(|(n, _)| n.ends_with(".service")) else {
                return control::error(1, "Failed to start transient unit: --pipe needs a service");
            };
            Some((service.clone(), std::sync::Arc::new(fds)))
        } else {
            None
        };
        // A name used before (and ended) starts afresh from its new file.
        for (name, _) in &units {
            if let Some(id) = self.find_service(name) {
                self.drop_service(id);
            }
            self.transient_stdio.remove(name);
        }
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return control::error(
                1,
                &format!("Failed to start transient unit: {}: {e}", dir.display()),
            );
        }
        for (name, text) in &units {
            let path = dir.join(name);
            if let Err(e) = crate::conf_files::replace(&path, text.as_bytes()) {
                return control::error(
                    1,
                    &format!("Failed to start transient unit: {}: {e}", path.display()),
                );
            }
        }
        if let Some((service, fds)) = stdio {
            self.transient_stdio
                .insert(service, (fds, std::time::Instant::now()));
            // Looked at again once an unclaimed one is due to go.
            let tx = self.tx.clone();
            tokio::task::spawn_local(async move {
                tokio::time::sleep(STDIO_UNCLAIMED).await;
                let _ = tx.send(super::Event::Tick);
            });
        }
        // A timer used before takes its new definition.
        if reload {
            self.daemon_reload();
        }
        json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0, "units": []})
    }

    /// The service `name` names: its own name, the name it was loaded as,
    /// or one of its aliases (systemd's `Names=`).
    pub(super) fn find_service(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).copied().or_else(|| {
            self.services
                .iter()
                .filter(|(_, s)| {
                    s.unit.id.as_str() == name || s.unit.aliases.iter().any(|a| a.as_str() == name)
                })
                .map(|(id, _)| *id)
                .min()
        })
    }

    /// The `ActiveState=` word of a unit flint holds (`inactive` for one it
    /// does not).
    fn active_word(&self, name: &str) -> &'static str {
        if let Some(i) = self.socket_index(name) {
            self.socket_state(i).0
        } else if let Some(id) = self.find_service(name) {
            self.service_words(id).0
        } else if let Some(t) = self.timers.map.get(name) {
            t.state.words().0
        } else if let Some(p) = self.path_units.map.get(name) {
            p.state.words().0
        } else if self
            .find_target(name)
            .is_some_and(|id| self.targets[&id].active)
        {
            "active"
        } else {
            "inactive"
        }
    }

    /// The names of the units flint has loaded: its sockets, then its
    /// services (each in the order flint holds them).
    fn loaded_names(&self) -> Vec<String> {
        let mut ids: Vec<u64> = self.services.keys().copied().collect();
        ids.sort_unstable();
        self.sockets
            .iter()
            .filter(|s| !s.removed)
            .map(|s| s.name.clone())
            .chain(ids.iter().map(|id| self.services[id].unit.id.to_string()))
            .chain(self.timers.map.keys().cloned())
            .chain(self.path_units.map.keys().cloned())
            .chain(
                self.target_ids()
                    .into_iter()
                    .map(|id| self.targets[&id].unit.id.to_string()),
            )
            .collect()
    }

    /// A path unit's row for `status` and the listings.
    fn path_json(&self, name: &str) -> Json {
        let Some(p) = self.path_units.map.get(name) else {
            return Json::Null;
        };
        let (state, sub) = p.state.words();
        json!({
            "name": name,
            "type": "path",
            "description": p.unit.get_str("Unit", "Description").unwrap_or(""),
            "state": state,
            "sub": sub,
            "triggers": p.target,
            "result": p.result,
            "paths": p.paths(),
            "since_usec": p.since().and_then(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .and_then(|d| u64::try_from(d.as_micros()).ok())
            }),
            "log": crate::logs::recent(name, STATUS_LINES, 0),
        })
    }

    /// A timer's row for `status` and the listings; its next elapse and
    /// last trigger in µs since the epoch (a monotonic elapse mapped to
    /// the wall clock now).
    fn timer_json(&self, name: &str) -> Json {
        let Some(t) = self.timers.map.get(name) else {
            return Json::Null;
        };
        let usec = |w: std::time::SystemTime| {
            w.duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|d| u64::try_from(d.as_micros()).ok())
        };
        let next_mono = t
            .next_mono
            .map(|m| m.saturating_duration_since(std::time::Instant::now()))
            .map(|left| super::timer::uptime() + left)
            .and_then(|d| u64::try_from(d.as_micros()).ok());
        let mono = t.next_mono.map(|m| {
            let (now_m, now_r) = (std::time::Instant::now(), std::time::SystemTime::now());
            if m >= now_m {
                now_r + (m - now_m)
            } else {
                now_r - (now_m - m)
            }
        });
        let next = match (mono, t.next_real) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (state, sub) = t.state.words();
        json!({
            "name": name,
            "type": "timer",
            "description": t.unit.get_str("Unit", "Description").unwrap_or(""),
            "state": state,
            "sub": sub,
            "triggers": t.target,
            "result": t.result,
            "next_usec": next.and_then(usec),
            "next_realtime_usec": t.next_real.and_then(usec),
            "next_monotonic_usec": next_mono,
            "last_usec": t.last_trigger().and_then(usec),
            "since_usec": t.since().and_then(usec),
            "log": crate::logs::recent(name, STATUS_LINES, 0),
        })
    }

    /// The units `names` stands for, as `systemctl` expands them: a glob
    /// (`*`, `?`, `[...]`) stands for every loaded unit whose name it
    /// matches (none when it matches none), any other name for itself.
    fn expand_patterns(&self, names: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut loaded: Option<Vec<String>> = None;
        for n in names {
            let found: Vec<String> = if control::is_glob(n) {
                loaded
                    .get_or_insert_with(|| self.loaded_names())
                    .iter()
                    .filter(|u| crate::service::condition::wildcard(n.as_bytes(), u.as_bytes()))
                    .cloned()
                    .collect()
            } else {
                vec![n.clone()]
            };
            for f in found {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        out
    }

    /// `systemctl reset-failed`: a failed service becomes inactive with
    /// result `success`, its restart count and start limit begin anew; a
    /// failed socket becomes inactive (dead), and a start opens it again.
    /// A unit that has not failed keeps its state; its counters are reset
    /// all the same, as systemd's `unit_reset_failed()` does.
    fn reset_failed(&mut self, name: &str) -> bool {
        if let Some(p) = self.path_units.map.get_mut(name) {
            // systemd's path_reset_failed().
            if p.state == super::path_unit::PathState::Failed {
                p.state = super::path_unit::PathState::Dead;
            }
            p.result = "success";
            return true;
        }
        if let Some(t) = self.timers.map.get_mut(name) {
            // systemd's timer_reset_failed().
            if t.state == super::timer::TimerState::Failed {
                t.state = super::timer::TimerState::Dead;
            }
            t.result = "success";
            return true;
        }
        let failed_to_open = self.socket_failures.remove(name).is_some();
        if let Some(i) = self.socket_index(name) {
            let s = &self.sockets[i];
            if s.failed && !s.stopped && self.hooks_state(name).is_none() {
                self.sockets[i].stopped = true;
            }
            self.sockets[i].result = "success";
            return true;
        }
        if failed_to_open {
            return true;
        }
        if self.find_target(name).is_some() {
            return true;
        }
        let Some(id) = self.find_service(name) else {
            return false;
        };
        let Some(svc) = self.services.get_mut(&id) else {
            return false;
        };
        if svc.state == State::Failed {
            svc.state = State::Dead;
        }
        svc.result = "success";
        svc.start_limit_hit = false;
        svc.restarts = 0;
        svc.starts.clear();
        // A failed `Accept=yes` instance kept for this is let go of now,
        // as systemd collects it once it is no longer failed.
        if self.failed_instances.contains(&id) {
            self.forget_failed_instance(id);
        }
        true
    }

    /// A unit flint holds no state of, read from the search path as
    /// systemctl shows a unit it has loaded but not started; `None` when no
    /// unit file has the name.
    pub(super) fn unit_on_disk(&mut self, name: &str) -> Option<crate::unit::load::Unit> {
        let parsed: crate::unit::name::UnitName = name.parse().ok()?;
        let unit = self.units.load(&self.search, &parsed);
        (unit.load_state != crate::unit::load::LoadState::NotFound).then_some(unit)
    }

    /// Whether unit `name`'s file is masked now: a look at the search
    /// path's cached index, without loading the unit (`list-units` asks it
    /// of every unit it lists).
    pub(super) fn masked_on_disk(&mut self, name: &str) -> bool {
        name.parse::<crate::unit::name::UnitName>().is_ok_and(|n| {
            self.units
                .index(&self.search)
                .resolve(&n)
                .is_ok_and(|s| s.masked)
        })
    }

    /// How unit `name` loads from disk (`None` for a name that is none).
    fn load_state(&mut self, name: &str) -> Option<crate::unit::load::LoadState> {
        let parsed: crate::unit::name::UnitName = name.parse().ok()?;
        Some(self.units.load(&self.search, &parsed).load_state)
    }

    /// systemctl's answer to a job for a unit that flint holds no such
    /// unit for: a stop of it is refused as "not loaded" (exit 5); for the
    /// others it is looked up on disk: "not found" (exit 5), or of a bad
    /// setting, or failing to load (exit 1), as systemd's bus errors read.
    /// A masked unit is inactive: a stop or try-restart of it has nothing
    /// to do (`None`), a start or reload is refused.
    fn job_refused(&mut self, command: &str, n: &str) -> Option<Json> {
        use crate::unit::load::LoadState as L;
        let state = self.load_state(n);
        // Nothing runs it: a stop has nothing to do, as a try-restart of a
        // masked unit (systemd refuses a stop only for a broken unit).
        if (state == Some(L::Masked) && command.starts_with("try"))
            || (matches!(state, Some(L::Masked | L::Loaded)) && command == "stop")
        {
            return None;
        }
        if command == "stop" {
            return Some(control::error(
                5,
                &format!("Failed to stop {n}: Unit {n} not loaded."),
            ));
        }
        let state = state.unwrap_or(L::NotFound);
        if state == L::Loaded && command == "reload" {
            // On disk and sound, but nothing runs it.
            let unit = self.unit_on_disk(n)?;
            let can = !unit.commands("Service", "ExecReload").is_empty()
                || unit.get_str("Service", "Type") == Some("notify-reload");
            return Some(if can { inactive(n) } else { not_reloadable(n) });
        }
        // A unit that could be started but was not (a template, say) is
        // one that did not load properly, as far as this job goes.
        let why = match state {
            L::Loaded => L::Error,
            s => s,
        }
        .reason(n)?;
        let failed = format!("Failed to {command} {n}: {why}");
        Some(match state {
            L::NotFound => control::error(5, &failed),
            L::Masked => control::error(1, &failed),
            _ => control::error(
                1,
                &format!("{failed}\nSee flint's log and 'flint ctl status {n}' for details."),
            ),
        })
    }

    /// `UnitFileState=` of `name` (`enabled`, `static`, ...; empty when it
    /// cannot be told).
    fn file_state(&mut self, name: &str) -> String {
        // (Looking at the search directories first: a unit file added
        // since, or a transient one, is worked out anew.)
        self.units.index(&self.search);
        if let Some(s) = self.units.file_states.borrow().get(name) {
            return s.clone();
        }
        let state = self
            .install_paths()
            .ok()
            .and_then(|lp| crate::install::unit_file_state(&lp, name).ok())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        self.units
            .file_states
            .borrow_mut()
            .insert(name.to_string(), state.clone());
        state
    }

    /// The unit process `pid` belongs to: the service whose main process
    /// it is, else the unit whose cgroup holds it (the innermost one flint
    /// holds, on any hierarchy).
    fn unit_of_pid(&self, pid: u64) -> Option<String> {
        if pid == 0 {
            return None;
        }
        if let Some(svc) = self.services.values().find(|s| {
            s.main_pid
                .is_some_and(|m| u64::try_from(m).ok() == Some(pid))
        }) {
            return Some(svc.unit.id.to_string());
        }
        // A cgroup of flint's own subtree (`…/flint-PID-NS.slice/unit/…`,
        // below the slices of `Slice=`), not one of the same name
        // elsewhere (a host manager's, a delegated tree's).
        let subtree = crate::cgroup::subtree_name(crate::own_pid(), crate::cgroup::pid_namespace());
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        text.lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .find_map(|path| {
                let mut parts = path.split('/');
                parts.find(|c| *c == subtree)?;
                parts
                    .find(|c| c.rsplit_once('.').is_none_or(|(_, kind)| kind != "slice"))
                    // Unescaped as systemd's `cg_unescape()` (`_cpu.service`).
                    .map(|c| c.strip_prefix('_').unwrap_or(c))
                    .filter(|c| self.find_service(c).is_some())
            })
            .map(str::to_string)
    }

    /// `UnitFilePreset=` of `unit`: what the presets say of its file's
    /// name (`enabled` or `disabled`; empty without a file), as systemd's
    /// `unit_get_unit_file_preset()`.
    fn file_preset(&self, unit: &crate::unit::load::Unit) -> String {
        let Some(file) = unit
            .fragment
            .as_ref()
            .and_then(|f| f.file_name())
            .map(|f| f.to_string_lossy().into_owned())
        else {
            return String::new();
        };
        if let Some(p) = self.units.file_presets.borrow().get(&file) {
            return p.clone();
        }
        let preset = match self.install_paths() {
            Ok(lp) => match crate::install::Presets::read(&lp).query(&file).0 {
                crate::install::PresetAction::Enable => "enabled",
                _ => "disabled",
            },
            Err(_) => "",
        }
        .to_string();
        self.units
            .file_presets
            .borrow_mut()
            .insert(file, preset.clone());
        preset
    }

    /// What `name` pulls in, as `systemctl list-dependencies` follows it:
    /// `Requires=`, `Requisite=`, `Wants=`, `BindsTo=`, `Upholds=` (with
    /// the `.wants/`/`.requires/` links) and the units `PartOf=` it.
    fn forward_dependencies(&mut self, name: &str) -> Vec<String> {
        let Some(unit) = self.unit_of(name) else {
            return Vec::new();
        };
        let deps = super::jobs::Deps::of(&unit);
        let mut out: Vec<String> = Vec::new();
        for list in [
            &deps.requires,
            &deps.requisite,
            &deps.wants,
            &deps.binds_to,
            &deps.upholds,
        ] {
            for n in list {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
        }
        let own = unit.id.to_string();
        let part_of = self
            .services
            .values()
            .filter(|s| s.deps.part_of.iter().any(|p| *p == own || p == name))
            .map(|s| s.unit.id.to_string())
            .chain(
                self.targets
                    .values()
                    .filter(|t| t.deps.part_of.iter().any(|p| *p == own || p == name))
                    .map(|t| t.unit.id.to_string()),
            )
            .collect::<Vec<_>>();
        for n in part_of {
            if !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }

    /// What pulls `name` in (`systemctl list-dependencies --reverse`): the
    /// units flint has loaded whose dependencies, as
    /// [`Manager::forward_dependencies`] follows them, name it
    /// (`RequiredBy=`, `RequisiteOf=`, `WantedBy=`, `BoundBy=`,
    /// `UpheldBy=`, and the units it is `PartOf=`).
    fn reverse_dependencies(&mut self, name: &str) -> Vec<String> {
        let own = self.unit_of(name).map(|u| u.id.to_string());
        let mut loaded: Vec<String> = self
            .services
            .values()
            .map(|s| s.unit.id.to_string())
            .chain(self.sockets.iter().map(|s| s.unit.id.to_string()))
            .chain(self.targets.values().map(|t| t.unit.id.to_string()))
            .chain(self.timers.map.keys().cloned())
            .chain(self.path_units.map.keys().cloned())
            .collect();
        loaded.sort();
        loaded.dedup();
        loaded
            .into_iter()
            .filter(|u| {
                self.forward_dependencies(u)
                    .iter()
                    .any(|d| d == name || own.as_deref() == Some(d.as_str()))
            })
            .collect()
    }

    /// systemctl's `list_dependencies_one()`: the lines below `name`, a
    /// glyph for each unit's state, the tree drawn by `branches` (a bit per
    /// level: whether that level goes on below), targets followed further
    /// (every unit with `all`), a unit already on the path shown once as
    /// `...`.
    fn dependency_lines(
        &mut self,
        name: &str,
        level: usize,
        branches: u64,
        path: &mut Vec<String>,
        shape: TreeShape,
        out: &mut Vec<String>,
    ) {
        path.push(name.to_string());
        let mut deps = if shape.reverse {
            self.reverse_dependencies(name)
        } else {
            self.forward_dependencies(name)
        };
        deps.sort_by_key(|d| (d.ends_with(".target"), d.to_lowercase()));
        let mut circular = false;
        let n = deps.len();
        for (i, c) in deps.iter().enumerate() {
            if path.contains(c) {
                circular = true;
                continue;
            }
            let more = i + 1 < n;
            let glyph = match self.class_of_name(c) {
                super::jobs::Class::Inactive => "○",
                super::jobs::Class::Failed => "×",
                _ => "●",
            };
            out.push(tree_line(
                Some(glyph),
                c,
                level,
                branches,
                !more && !circular,
                shape,
            ));
            // Deep enough for any real tree; the bits of `branches` last.
            if (shape.all || c.ends_with(".target")) && level < 60 {
                let below = (branches << 1) | u64::from(more);
                self.dependency_lines(c, level + 1, below, path, shape, out);
            }
        }
        if circular && !shape.plain {
            out.push(tree_line(None, "...", level, branches, true, shape));
        }
        if !shape.plain {
            path.retain(|p| p != name);
        }
    }

    /// The unit flint runs as `name`, or else the one on disk.
    pub(super) fn unit_of(&mut self, name: &str) -> Option<crate::unit::load::Unit> {
        if let Some(id) = self.find_service(name) {
            return Some((*self.services[&id].unit).clone());
        }
        if let Some(i) = self.socket_index(name) {
            return Some(self.sockets[i].unit.clone());
        }
        if let Some(id) = self.find_target(name) {
            return Some(self.targets[&id].unit.clone());
        }
        if let Some(t) = self.timers.map.get(name) {
            return Some(t.unit.clone());
        }
        if let Some(p) = self.path_units.map.get(name) {
            return Some(p.unit.clone());
        }
        self.unit_on_disk(name)
    }

    /// `isolate TARGET`: the units to stop as `target` starts, as systemd's
    /// `transaction_add_isolate_jobs()` finds them: every unit that runs
    /// and that the target's start neither needs nor wants
    /// ([`Manager::isolate_keeps`]), unless it has `IgnoreOnIsolate=yes`
    /// or something that starts it stays (the socket of a service it
    /// activated, a timer). Refused, as systemd refuses it, for a unit
    /// without `AllowIsolate=yes`.
    fn isolate_stops(&mut self, target: &str) -> Result<Vec<String>, Json> {
        let allowed = self
            .unit_of(target)
            .filter(crate::unit::load::Unit::is_loaded)
            .is_some_and(|u| u.get_bool("Unit", "AllowIsolate") == Some(true));
        if !allowed {
            let (exit, why) = match self.load_state(target) {
                Some(crate::unit::load::LoadState::NotFound) | None => {
                    (5, format!("Unit {target} not found."))
                }
                Some(state) if state != crate::unit::load::LoadState::Loaded => (
                    1,
                    state
                        .reason(target)
                        .unwrap_or_else(|| format!("Unit {target} failed to load properly.")),
                ),
                _ => (
                    1,
                    "Operation refused, unit may not be isolated.".to_string(),
                ),
            };
            return Err(control::error(
                exit,
                &format!("Failed to start {target}: {why}"),
            ));
        }
        let keep = self.isolate_keeps(target);
        // What runs (or starts, or stops): the units flint holds that are
        // neither inactive nor failed.
        let mut running: Vec<String> = self
            .loaded_names()
            .into_iter()
            .filter(|n| !matches!(self.active_word(n), "inactive" | "failed"))
            .collect();
        running.retain(|name| !self.stays_on_isolate(name, &keep));
        Ok(running)
    }

    /// Whether unit `name` stays as `isolate` stops what the target does
    /// not keep (systemd's `shall_stop_on_isolate()`).
    fn stays_on_isolate(&mut self, name: &str, keep: &std::collections::HashSet<String>) -> bool {
        let stays = |m: &mut Self, n: &str| {
            keep.contains(n)
                || m.unit_of(n)
                    .is_some_and(|u| u.get_bool("Unit", "IgnoreOnIsolate") == Some(true))
        };
        // systemd's boot targets are the host's (see `target`).
        if stays(self, name) || super::target::is_boot_target(name, self.search.user_mode) {
            return true;
        }
        // A service stays while what starts it stays (its sockets, timers
        // and path units have no triggers of their own).
        let Some(id) = self.find_service(name) else {
            return false;
        };
        let triggers: Vec<String> = self
            .triggered_by(&self.services[&id])
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
        triggers.iter().any(|t| stays(self, t))
    }

    /// `RefuseManualStart=`/`RefuseManualStop=`: systemd refuses a start,
    /// stop or restart asked for by hand (exit 4) of a unit that may only
    /// be pulled in by a dependency (`bus_unit_queue_job()`); a
    /// reload-or-restart only where it would start the unit.
    fn manual_job_refused(&mut self, command: &str, n: &str) -> Option<Json> {
        let unit = self.unit_of(n).filter(crate::unit::load::Unit::is_loaded)?;
        let start = unit.get_bool("Unit", "RefuseManualStart") == Some(true);
        let stop = unit.get_bool("Unit", "RefuseManualStop") == Some(true);
        // The reload forms reload a unit that can (and runs, for
        // reload-or-restart); otherwise they are a restart or try-restart.
        let can_reload = !unit.commands("Service", "ExecReload").is_empty()
            || unit.get_str("Service", "Type") == Some("notify-reload");
        let active = super::jobs::Class::Active == self.class_of_name(unit.id.as_str());
        let refuse = match command {
            "start" => start,
            "stop" => stop,
            "restart" | "try-restart" => start || stop,
            "reload-or-restart" if can_reload => start && !active,
            "reload-or-restart" | "try-reload-or-restart" if !can_reload => start || stop,
            _ => false,
        };
        refuse.then(|| {
            control::error(
                4,
                &format!(
                    "Failed to {command} {n}: Operation refused, unit {n} may be requested by \
                     dependency only (it is configured to refuse manual start/stop).\n\
                     See flint's log and 'flint ctl status {n}' for details."
                ),
            )
        })
    }

    /// `status` of a unit read from disk: inactive (dead), as systemctl
    /// shows one that never started, and why it did not load.
    fn resting_json(unit: &crate::unit::load::Unit) -> Json {
        let name = unit.id.to_string();
        json!({
            "load_reason": unit.load_state.reason(&name),
            "name": name,
            "type": name.rsplit('.').next().unwrap_or(""),
            "description": unit.get_str("Unit", "Description").unwrap_or(""),
            "state": "inactive",
            "sub": "dead",
            "load": unit.load_state.as_str(),
            "log": crate::logs::recent(&name, STATUS_LINES, 0),
        })
    }

    /// `systemctl show`'s properties of one unit, by systemd's names: those
    /// of its type, then the unit's own. A unit flint has not loaded is read
    /// from disk (inactive, dead); one with no file is `not-found` with its
    /// `LoadError`, as systemd shows it.
    fn show_json(&mut self, name: &str) -> Json {
        let (status, unit) = if let Some(i) = self.socket_index(name) {
            (self.socket_json(i), Some(self.sockets[i].unit.clone()))
        } else if let Some(id) = self.find_service(name) {
            let mut status = self.service_json(id);
            status["invocation_id"] = self.services[&id].invocation_id.clone().into();
            (status, Some((*self.services[&id].unit).clone()))
        } else if let Some(t) = self.timers.map.get(name) {
            (self.timer_json(name), Some(t.unit.clone()))
        } else if let Some(p) = self.path_units.map.get(name) {
            (self.path_json(name), Some(p.unit.clone()))
        } else if let Some(id) = self.find_target(name) {
            (self.target_json(id), Some(self.targets[&id].unit.clone()))
        } else if let Some(status) = self.unopened_socket_json(name) {
            (status, self.unit_on_disk(name))
        } else if let Some(status) = self.reached_boot_target_json(name) {
            (status, self.unit_on_disk(name))
        } else {
            (Json::Null, self.unit_on_disk(name))
        };
        let text = |key: &str| status[key].as_str().unwrap_or("").to_string();
        let count = |key: &str| status[key].as_u64().unwrap_or(0).to_string();
        let set = |v: Option<u64>| v.map_or_else(|| "[not set]".to_string(), |v| v.to_string());
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        let mut p: Vec<(&str, String)> = Vec::new();
        // Numbers that `p` holds as text, as they are (systemd's API).
        let mut raw: Vec<(&str, u64)> = Vec::new();
        // A service's commands, for systemd's API (typed there).
        let mut exec = serde_json::Map::new();
        let id = unit
            .as_ref()
            .map_or_else(|| name.to_string(), |u| u.id.to_string());
        let is = |suffix: &str| id.ends_with(suffix);
        let loaded = unit
            .as_ref()
            .is_some_and(crate::unit::load::Unit::is_loaded);
        // A unit without a file has its type's defaults, as in systemd.
        let usable = unit.as_ref().filter(|_| loaded);
        if is(".service") {
            p.push((
                "Type",
                usable
                    .map_or("simple", super::lifecycle::service_type)
                    .to_string(),
            ));
            p.push((
                "Restart",
                usable
                    .and_then(|u| u.get_str("Service", "Restart"))
                    .unwrap_or("no")
                    .to_string(),
            ));
            p.push((
                "NotifyAccess",
                usable
                    .map_or("none", super::lifecycle::notify_access)
                    .to_string(),
            ));
            p.push(("MainPID", count("main_pid")));
            // Where its processes are, as the hierarchy names it (empty
            // while it is down), systemctl's "CGroup:" line.
            p.push(("ControlGroup", text("control_group")));
            p.push((
                "ExecMainPID",
                status["main_pid"]
                    .as_u64()
                    .or_else(|| status["main_exit_pid"].as_u64())
                    .unwrap_or(0)
                    .to_string(),
            ));
            p.push(("StatusText", text("status")));
            p.push((
                "Result",
                status["result"].as_str().unwrap_or("success").to_string(),
            ));
            p.push(("NRestarts", count("restarts")));
            // Its own, else what services get (a manager that is not root
            // adds 100 to its own), else the manager's, as systemd shows it.
            let oom = usable
                .and_then(|u| match u.get("Service", "OOMScoreAdjust") {
                    Some(crate::unit::load::Value::Int(n)) => Some(*n),
                    _ => None,
                })
                .or_else(|| crate::service::defaults::oom_score_adjust().map(i64::from))
                .or_else(|| {
                    std::fs::read_to_string("/proc/self/oom_score_adj")
                        .ok()
                        .and_then(|t| t.trim().parse().ok())
                })
                .unwrap_or(0);
            p.push(("OOMScoreAdjust", oom.to_string()));
            // Time spans as systemctl prints them (the numbers go to the
            // API as they are).
            let oneshot = usable.is_some_and(|u| super::lifecycle::service_type(u) == "oneshot");
            for (name, key, default) in [
                (
                    "TimeoutStartUSec",
                    "TimeoutStartSec",
                    if oneshot { u64::MAX } else { 90_000_000 },
                ),
                ("TimeoutStopUSec", "TimeoutStopSec", 90_000_000),
                ("RestartUSec", "RestartSec", 100_000),
                ("RuntimeMaxUSec", "RuntimeMaxSec", u64::MAX),
                ("WatchdogUSec", "WatchdogSec", 0),
            ] {
                let usec = usable
                    .and_then(|u| {
                        u.get_usec("Service", key).or_else(|| {
                            key.starts_with("Timeout")
                                .then(|| u.get_usec("Service", "TimeoutSec"))
                                .flatten()
                        })
                    })
                    .unwrap_or(default);
                p.push((
                    name,
                    if usec == u64::MAX {
                        "infinity".to_string()
                    } else {
                        crate::unit::value::time::format_timespan(usec)
                    },
                ));
                raw.push((name, usec));
            }
            let word = |key: &str, default: &str| {
                usable
                    .and_then(|u| u.get_str("Service", key))
                    .unwrap_or(default)
                    .to_string()
            };
            p.push((
                "RemainAfterExit",
                yes(usable.is_some_and(|u| u.get_bool("Service", "RemainAfterExit") == Some(true))),
            ));
            p.push(("KillMode", word("KillMode", "control-group")));
            p.push((
                "KillSignal",
                match usable.and_then(|u| u.get("Service", "KillSignal")) {
                    Some(crate::unit::load::Value::Signal(n)) => n.to_string(),
                    _ => libc::SIGTERM.to_string(),
                },
            ));
            p.push(("User", word("User", "")));
            p.push(("Group", word("Group", "")));
            p.push(("WorkingDirectory", word("WorkingDirectory", "")));
            // `A=1 "B=two words"`, as systemctl prints a list.
            let environment: Vec<String> = usable
                .map(|u| {
                    u.entries("Service", "Environment")
                        .iter()
                        .filter_map(|(v, _)| match v {
                            crate::unit::load::Value::Env(k, v) => Some(format!("{k}={v}")),
                            _ => None,
                        })
                        .map(|e| list_word(&e))
                        .collect()
                })
                .unwrap_or_default();
            p.push(("Environment", environment.join(" ")));
            // How the last main process ended (CLD_*: 1 exited, 2 killed,
            // 3 dumped core) and its status or signal; 0, 0 while none did.
            let (code, value) = match status["main_exit_code"].as_array() {
                Some(a) => (a[0].as_i64().unwrap_or(0), a[1].as_i64().unwrap_or(0)),
                None => (0, 0),
            };
            p.push(("ExecMainCode", code.to_string()));
            p.push(("ExecMainStatus", value.to_string()));
            // The commands, the main one (the last `ExecStart=`) with its
            // pid and how it ended.
            let main_pid = status["main_pid"]
                .as_u64()
                .or_else(|| status["main_exit_pid"].as_u64())
                .unwrap_or(0);
            // (A forking service's `ExecStart=` is no main process: its
            // own run is shown, as systemd's control process of the start.)
            let forking = usable.is_some_and(|u| super::lifecycle::service_type(u) == "forking");
            for key in crate::unit::verify::SERVICE_COMMANDS {
                let commands = usable
                    .map(|u| u.commands("Service", key))
                    .unwrap_or_default();
                let mut rows = Vec::new();
                let mut text = Vec::new();
                for (i, c) in commands.iter().enumerate() {
                    let main = key == "ExecStart" && i + 1 == commands.len() && !forking;
                    // A command other than the main one: its last run.
                    let run = status["commands"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|r| r["key"] == key && r["index"] == i && !main);
                    let (pid, code, value) = if main {
                        (main_pid, code, value)
                    } else if let Some(r) = run {
                        let end = |n: usize| r["code"][n].as_i64().unwrap_or(0);
                        (r["pid"].as_u64().unwrap_or(0), end(0), end(1))
                    } else {
                        (0, 0, 0)
                    };
                    let (start, exit) = run.map_or((0, 0), |r| {
                        (
                            r["start_usec"].as_u64().unwrap_or(0),
                            r["exit_usec"].as_u64().unwrap_or(0),
                        )
                    });
                    let how = match code {
                        1 => "exited",
                        2 => "killed",
                        3 => "dumped",
                        _ => "(null)",
                    };
                    text.push(format!(
                        "{{ path={} ; argv[]={} ; ignore_errors={} ; start_time=[n/a] ; stop_time=[n/a] ; pid={pid} ; code={how} ; status={value} }}",
                        c.path,
                        c.argv.join(" "),
                        yes(c.ignore_failure),
                    ));
                    rows.push(
                        json!({"path": c.path, "argv": c.argv, "ignore": c.ignore_failure,
                                     "pid": pid, "code": code, "status": value,
                                     "start": start, "exit": exit}),
                    );
                }
                if !rows.is_empty() {
                    p.push((key, text.join(" ")));
                    exec.insert(key.to_string(), Json::Array(rows));
                }
            }
            p.push(("MemoryCurrent", set(status["memory"]["current"].as_u64())));
            p.push(("TasksCurrent", set(status["tasks_current"].as_u64())));
            p.push((
                "CPUUsageNSec",
                set(status["cpu_usec"].as_u64().map(|u| u.saturating_mul(1000))),
            ));
        } else if is(".socket") {
            p.push((
                "Accept",
                yes(usable.is_some_and(|u| u.get_bool("Socket", "Accept") == Some(true))),
            ));
            // As systemd's: one `Listen=` per listener, "ADDRESS (Type)".
            let listens: Vec<String> = match status["listen"].as_array() {
                Some(l) if !l.is_empty() => l
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => usable
                    .and_then(|u| super::SocketConfig::from_unit(u).ok())
                    .map(|c| {
                        c.listens
                            .iter()
                            .map(super::socket::describe_listen)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            for l in listens {
                p.push(("Listen", l));
            }
            p.push((
                "MaxConnections",
                usable
                    .and_then(|u| u.get_u64("Socket", "MaxConnections"))
                    .unwrap_or(64)
                    .to_string(),
            ));
            p.push((
                "Result",
                status["result"].as_str().unwrap_or("success").to_string(),
            ));
            p.push(("NConnections", count("connections")));
            p.push(("NAccepted", count("accepted")));
            p.push(("NRefused", count("refused")));
            p.push((
                "FileDescriptorName",
                usable
                    .and_then(|u| u.get_str("Socket", "FileDescriptorName"))
                    .map_or_else(|| id.clone(), str::to_string),
            ));
        } else if is(".timer") {
            // systemctl prints the times as timestamps, `n/a` when unset.
            let when = |key: &str| {
                status[key]
                    .as_u64()
                    .map_or_else(|| "n/a".to_string(), crate::control::timestamp)
            };
            p.push((
                "Unit",
                usable.map_or_else(
                    || format!("{}.service", id.trim_end_matches(".timer")),
                    super::timer::target_of,
                ),
            ));
            p.push(("NextElapseUSecRealtime", when("next_realtime_usec")));
            // As systemctl prints a monotonic time: a span since boot.
            p.push((
                "NextElapseUSecMonotonic",
                status["next_monotonic_usec"]
                    .as_u64()
                    .map_or_else(String::new, crate::unit::value::time::format_timespan),
            ));
            p.push(("LastTriggerUSec", when("last_usec")));
            p.push((
                "Result",
                status["result"].as_str().unwrap_or("success").to_string(),
            ));
            let flag = |key: &str, default: bool| {
                yes(usable
                    .and_then(|u| u.get_bool("Timer", key))
                    .unwrap_or(default))
            };
            p.push(("Persistent", flag("Persistent", false)));
            p.push(("WakeSystem", flag("WakeSystem", false)));
            p.push(("RemainAfterElapse", flag("RemainAfterElapse", true)));
            let span = |key: &str, default: u64| {
                crate::unit::value::time::format_timespan(
                    usable
                        .and_then(|u| u.get_usec("Timer", key))
                        .unwrap_or(default),
                )
            };
            p.push(("AccuracyUSec", span("AccuracySec", 60_000_000)));
            p.push(("RandomizedDelayUSec", span("RandomizedDelaySec", 0)));
            for (name, key, default) in [
                ("AccuracyUSec", "AccuracySec", 60_000_000),
                ("RandomizedDelayUSec", "RandomizedDelaySec", 0),
            ] {
                raw.push((
                    name,
                    usable
                        .and_then(|u| u.get_usec("Timer", key))
                        .unwrap_or(default),
                ));
            }
        } else if is(".path") {
            p.push((
                "Unit",
                usable.map_or_else(
                    || format!("{}.service", id.trim_end_matches(".path")),
                    super::path_unit::target_of,
                ),
            ));
            p.push((
                "Result",
                status["result"].as_str().unwrap_or("success").to_string(),
            ));
            p.push((
                "MakeDirectory",
                yes(usable.is_some_and(|u| u.get_bool("Path", "MakeDirectory") == Some(true))),
            ));
        }
        let names: Vec<String> = std::iter::once(id.clone())
            .chain(
                unit.iter()
                    .flat_map(|u| u.aliases.iter().map(ToString::to_string)),
            )
            .collect();
        p.push(("Id", id.clone()));
        p.push(("Names", names.join(" ")));
        if let Some(t) = status["triggers"].as_str() {
            p.push(("Triggers", t.to_string()));
        }
        // The sockets, timers and path units that start it (none for
        // those).
        let by: Vec<&str> = status["triggered_by"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        p.push(("TriggeredBy", by.join(" ")));
        // An instance's with its peer (`status`'s description).
        let described = status["description"].as_str().filter(|d| !d.is_empty());
        p.push((
            "Description",
            described
                .or_else(|| unit.as_ref().and_then(|u| u.get_str("Unit", "Description")))
                .unwrap_or(&id)
                .to_string(),
        ));
        let mut load = unit
            .as_ref()
            .map_or(crate::unit::load::LoadState::NotFound, |u| u.load_state);
        // Held, with its file masked since (see `list-units`).
        if load == crate::unit::load::LoadState::Loaded
            && !status.is_null()
            && self.masked_on_disk(&id)
        {
            load = crate::unit::load::LoadState::Masked;
        }
        p.push(("LoadState", load.as_str().to_string()));
        let (active, sub) = if status.is_null() {
            ("inactive".to_string(), "dead".to_string())
        } else {
            (text("state"), text("sub"))
        };
        p.push(("ActiveState", active));
        p.push(("SubState", sub));
        // The unit's job's number, as systemctl shows it (none without).
        if let Some(job) = status["job_id"].as_u64() {
            p.push(("Job", job.to_string()));
        }
        p.push((
            "FragmentPath",
            unit.as_ref()
                .and_then(|u| u.fragment.as_ref())
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
        ));
        p.push((
            "DropInPaths",
            unit.iter()
                .flat_map(|u| u.dropins.iter().map(|d| d.display().to_string()))
                .collect::<Vec<_>>()
                .join(" "),
        ));
        // The dependencies its unit file and links name, as systemd lists
        // them (its implicit ones are not among them here).
        if let Some(u) = usable {
            let deps = super::jobs::Deps::of(u);
            for (name, list) in [
                ("Requires", &deps.requires),
                ("Requisite", &deps.requisite),
                ("Wants", &deps.wants),
                ("BindsTo", &deps.binds_to),
                ("PartOf", &deps.part_of),
                ("Upholds", &deps.upholds),
                ("Conflicts", &deps.conflicts),
                ("Before", &deps.before),
                ("After", &deps.after),
            ] {
                if !list.is_empty() {
                    p.push((name, list.join(" ")));
                }
            }
        }
        // What names it, as systemd keeps the inverse dependencies.
        for (prop, list) in self.inverse_dependencies(&id) {
            if !list.is_empty() {
                p.push((prop, list.join(" ")));
            }
        }
        p.push(("UnitFileState", self.file_state(&id)));
        p.push((
            "UnitFilePreset",
            unit.as_ref()
                .map(|u| self.file_preset(u))
                .unwrap_or_default(),
        ));
        p.push((
            "Documentation",
            usable
                .map(|u| documentation(u).join(" "))
                .unwrap_or_default(),
        ));
        // A transient unit collected (its file gone with it, its record
        // kept a while for its result) needs no reload.
        let collected = self
            .find_service(&id)
            .is_some_and(|sid| self.collected.iter().any(|(c, _)| *c == sid));
        let transient = unit.as_ref().is_some_and(|u| {
            u.fragment
                .as_ref()
                .and_then(|f| f.parent())
                .and_then(std::path::Path::file_name)
                == Some(std::ffi::OsStr::new("transient"))
        });
        p.push(("Transient", yes(transient)));
        // Where a generated unit comes from (an init script), which
        // systemctl shows on the Loaded: line.
        if let Some(source) = usable.and_then(|u| u.get_path("Unit", "SourcePath")) {
            p.push(("SourcePath", source.display().to_string()));
        }
        let index = self.units.index(&self.search);
        p.push((
            "NeedDaemonReload",
            // (A unit masked since it loaded keeps what it loaded until it
            // stops; the reload that showed the mask is done.)
            yes(!collected
                && load != crate::unit::load::LoadState::Masked
                && usable.is_some_and(|u| u.needs_reload_with(&|n| index.resolve(n)))),
        ));
        p.push(("CanStart", yes(loaded)));
        p.push(("CanStop", yes(loaded)));
        let reload = unit.as_ref().is_some_and(|u| {
            !u.commands("Service", "ExecReload").is_empty()
                || u.get_str("Service", "Type") == Some("notify-reload")
        });
        p.push(("CanReload", yes(loaded && reload)));
        let kind = {
            use crate::unit::load::LoadState as L;
            match load {
                L::NotFound => "NoSuchUnit",
                L::Masked => "UnitMasked",
                L::BadSetting => "BadUnitSetting",
                L::Error | L::Loaded => "LoadFailed",
            }
        };
        if let Some(message) = load.reason(&id) {
            p.push((
                "LoadError",
                format!("org.freedesktop.systemd1.{kind} \"{message}\""),
            ));
        }
        p.push(("InvocationID", text("invocation_id")));
        // As systemctl prints them (empty when never); the numbers go
        // along for systemd's API, which sends them as they are.
        let mut times = status["times"].as_object().cloned().unwrap_or_default();
        // Timers and path units keep only when they last changed: that is
        // the timestamp of the state they are in (systemctl's "since").
        if times.is_empty()
            && let Some(since) = status["since_usec"].as_u64()
        {
            let names: &[&str] = match status["state"].as_str().unwrap_or("") {
                "active" | "reloading" => &["ActiveEnterTimestamp", "InactiveExitTimestamp"],
                "activating" => &["InactiveExitTimestamp"],
                "deactivating" => &["ActiveExitTimestamp"],
                _ => &["InactiveEnterTimestamp"],
            };
            let mono = status["since_monotonic_usec"]
                .as_u64()
                .unwrap_or_else(|| monotonic_of(since));
            for n in names {
                times.insert((*n).to_string(), since.into());
                times.insert(format!("{n}Monotonic"), mono.into());
            }
        }
        // A timer's times, as numbers too (systemctl list-timers reads
        // them so on systemd's API).
        for (key, name) in [
            ("next_realtime_usec", "NextElapseUSecRealtime"),
            ("next_monotonic_usec", "NextElapseUSecMonotonic"),
            ("last_usec", "LastTriggerUSec"),
        ] {
            if let Some(usec) = status[key].as_u64() {
                times.insert(name.to_string(), usec.into());
            }
        }
        for (name, value) in raw {
            times.insert(name.to_string(), value.into());
        }
        // The last of them: when it last changed state.
        let last = |names: [&str; 4]| {
            names
                .iter()
                .filter_map(|n| times.get(*n).and_then(Json::as_u64))
                .max()
                .unwrap_or(0)
        };
        let changed = last(super::jobs::StateTimes::NAMES);
        let changed_mono = last(super::jobs::StateTimes::MONOTONIC_NAMES);
        times.insert("StateChangeTimestamp".into(), changed.into());
        times.insert("StateChangeTimestampMonotonic".into(), changed_mono.into());
        for name in std::iter::once("StateChangeTimestamp").chain(super::jobs::StateTimes::NAMES) {
            let usec = times.get(name).and_then(Json::as_u64).unwrap_or(0);
            p.push((
                name,
                if usec == 0 {
                    String::new()
                } else {
                    crate::control::timestamp(usec)
                },
            ));
        }
        // The monotonic halves as numbers, as systemctl shows them.
        for name in std::iter::once("StateChangeTimestampMonotonic")
            .chain(super::jobs::StateTimes::MONOTONIC_NAMES)
        {
            let usec = times.get(name).and_then(Json::as_u64).unwrap_or(0);
            p.push((name, usec.to_string()));
        }
        json!({
            "name": id,
            "properties": p.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "times": times,
            "exec": exec,
        })
    }

    /// `systemctl show` without units: the properties of the manager that
    /// tools read (systemd's `org.freedesktop.systemd1.Manager` names),
    /// with flint's values.
    fn manager_json(&self) -> Json {
        use crate::unit::value::time::format_timespan;
        let units: Vec<Json> = (0..self.sockets.len())
            .filter(|i| !self.sockets[*i].removed)
            .map(|i| self.socket_json(i))
            .chain(self.services.keys().map(|id| self.service_json(*id)))
            .collect();
        // (Failed timers and path units too, as systemd counts every
        // unit type.)
        let failed = units.iter().filter(|u| u["state"] == "failed").count()
            + self.unopened_failures().len()
            + self
                .timers
                .map
                .values()
                .filter(|t| t.state == super::timer::TimerState::Failed)
                .count()
            + self
                .path_units
                .map
                .values()
                .filter(|p| p.state == super::path_unit::PathState::Failed)
                .count();
        let state = if self.shutting_down {
            "stopping"
        } else if !matches!(self.boot, super::Boot::Finished { .. }) {
            // The start's sockets open or its jobs run.
            "starting"
        } else if failed > 0 {
            "degraded"
        } else {
            "running"
        };
        let machine = nix::sys::utsname::uname()
            .map(|u| u.machine().to_string_lossy().into_owned())
            .unwrap_or_default();
        let environment: Vec<String> = crate::service::defaults::environment(self.search.user_mode)
            .iter()
            .map(|(k, v)| list_word(&format!("{k}={v}")))
            .collect();
        let limits = crate::service::defaults::limits();
        let limit = |pick: fn(&crate::service::defaults::Limits) -> (u64, u64), soft: bool| {
            limits.map_or_else(String::new, |l| {
                let (s, h) = pick(l);
                let v = if soft { s } else { h };
                if v == libc::RLIM_INFINITY {
                    "infinity".to_string()
                } else {
                    v.to_string()
                }
            })
        };
        let p: Vec<(&str, String)> = vec![
            // The systemd whose interface flint answers first, as tools
            // read the number there (cockpit gates features on it).
            (
                "Version",
                format!(
                    "{} (flint {})",
                    crate::control::systemctl::SYSTEMD_VERSION,
                    env!("CARGO_PKG_VERSION")
                ),
            ),
            (
                "Architecture",
                crate::unit::specifier::architecture_from_machine(&machine),
            ),
            (
                "Virtualization",
                crate::virt::detect()
                    .map(|(name, _)| name.to_owned())
                    .unwrap_or_default(),
            ),
            ("NNames", units.len().to_string()),
            ("NFailedUnits", failed.to_string()),
            ("NJobs", self.jobs.len().to_string()),
            ("Progress", "1".to_string()),
            ("Environment", environment.join(" ")),
            (
                "UnitPath",
                self.search
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ("SystemState", state.to_string()),
            ("ConfirmSpawn", "no".to_string()),
            ("ServiceWatchdogs", "yes".to_string()),
            ("DefaultStandardOutput", "journal".to_string()),
            ("DefaultStandardError", "inherit".to_string()),
            ("DefaultTimeoutStartUSec", format_timespan(90_000_000)),
            ("DefaultTimeoutStopUSec", format_timespan(90_000_000)),
            ("DefaultTimeoutAbortUSec", format_timespan(90_000_000)),
            ("DefaultRestartUSec", format_timespan(100_000)),
            ("DefaultStartLimitIntervalUSec", format_timespan(10_000_000)),
            ("DefaultStartLimitBurst", "5".to_string()),
            ("DefaultLimitNOFILE", limit(|l| l.nofile, false)),
            ("DefaultLimitNOFILESoft", limit(|l| l.nofile, true)),
            ("DefaultLimitMEMLOCK", limit(|l| l.memlock, false)),
            ("DefaultLimitMEMLOCKSoft", limit(|l| l.memlock, true)),
        ];
        let mut p = p;
        // When flint started: what status says the machine runs "since";
        // and when its start finished (systemd-analyze measures between
        // the two).
        let (started, userspace_mono) = process_start().unwrap_or((0, 0));
        let (finished, finished_mono) = match self.boot {
            super::Boot::Finished {
                realtime,
                monotonic,
            } => (realtime, monotonic),
            _ => (0, 0),
        };
        let shown = |usec: u64| {
            if usec == 0 {
                String::new()
            } else {
                crate::control::timestamp(usec)
            }
        };
        p.push(("UserspaceTimestamp", shown(started)));
        p.push(("UserspaceTimestampMonotonic", userspace_mono.to_string()));
        p.push(("FinishTimestamp", shown(finished)));
        p.push(("FinishTimestampMonotonic", finished_mono.to_string()));
        json!({
            "name": "",
            "properties": p.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "times": {
                "UserspaceTimestamp": started,
                "UserspaceTimestampMonotonic": userspace_mono,
                "FinishTimestamp": finished,
                "FinishTimestampMonotonic": finished_mono,
            },
        })
    }

    /// Answers one control request.
    pub(super) fn control(&mut self, req: &Json) -> Json {
        let command = req.get("command").and_then(Json::as_str).unwrap_or("");
        let given = strings(req, "units");
        let names = self.expand_patterns(&given);
        let ok = |units: Vec<Json>, exit: u8| json!({"version": PROTOCOL_VERSION, "ok": true, "exit": exit, "units": units});
        match command {
            "show" => {
                // No unit: the manager's own properties, as systemctl.
                if given.is_empty() {
                    return ok(vec![self.manager_json()], 0);
                }
                let units = names.iter().map(|n| self.show_json(n)).collect();
                ok(units, 0)
            }
            "reset-failed" => {
                let targets = if given.is_empty() {
                    let mut all = self.loaded_names();
                    all.extend(self.socket_failures.keys().cloned());
                    all
                } else {
                    names
                };
                let mut missing = None;
                for n in &targets {
                    if !self.reset_failed(n) && missing.is_none() {
                        missing = Some(n.clone());
                    }
                }
                match missing {
                    Some(n) => control::error(
                        1,
                        &format!("Failed to reset failed state of unit {n}: Unit {n} not loaded."),
                    ),
                    None => ok(Vec::new(), 0),
                }
            }
            "list-units" | "list-sockets" | "status" => {
                let mut units = Vec::new();
                let mut exit = 0;
                let mut missing: Vec<String> = Vec::new();
                // `list-*` shows what matches (a unit flint has not loaded
                // is no error); `status` names units.
                let listing = command != "status";
                if given.is_empty() {
                    units.extend(
                        (0..self.sockets.len())
                            .filter(|i| !self.sockets[*i].removed)
                            .map(|i| self.socket_json(i)),
                    );
                    units.extend(
                        self.unopened_failures()
                            .into_iter()
                            .filter_map(|n| self.unopened_socket_json(n)),
                    );
                    if command != "list-sockets" {
                        let mut ids: Vec<u64> = self.services.keys().copied().collect();
                        ids.sort_unstable();
                        units.extend(ids.into_iter().map(|id| self.service_json(id)));
                        units.extend(self.timers.map.keys().map(|n| self.timer_json(n)));
                        units.extend(self.path_units.map.keys().map(|n| self.path_json(n)));
                        units.extend(self.target_ids().into_iter().map(|id| self.target_json(id)));
                    }
                } else {
                    for n in &names {
                        if let Some(i) = self.socket_index(n) {
                            units.push(self.socket_json(i));
                        } else if command != "list-sockets" && self.timers.map.contains_key(n) {
                            units.push(self.timer_json(n));
                        } else if command != "list-sockets" && self.path_units.map.contains_key(n) {
                            units.push(self.path_json(n));
                        } else if command != "list-sockets"
                            && let Some(id) = self.find_service(n)
                        {
                            units.push(self.service_json(id));
                        } else if command != "list-sockets"
                            && let Some(id) = self.find_target(n)
                        {
                            units.push(self.target_json(id));
                        } else if let Some(status) = self.unopened_socket_json(n) {
                            // No listeners yet, or none it could open.
                            units.push(status);
                        } else if let Some(status) = self.reached_boot_target_json(n) {
                            units.push(status);
                        } else if !listing {
                            // On disk, never started: inactive (dead). One
                            // that is nowhere is named after the others, as
                            // systemctl does (exit 4).
                            let Some(unit) = self.unit_on_disk(n) else {
                                missing.push(format!("Unit {n} could not be found."));
                                continue;
                            };
                            units.push(Self::resting_json(&unit));
                        }
                    }
                }
                // A unit flint holds whose file was masked since (`systemctl
                // mask` of a running unit): `masked`, as systemd's after
                // the reload, while it runs with what it loaded.
                for u in &mut units {
                    if let Some(name) = u["name"].as_str().map(str::to_string)
                        && u["load"].is_null()
                        && self.masked_on_disk(&name)
                    {
                        u["load"] = "masked".into();
                        u["load_reason"] =
                            crate::unit::load::LoadState::Masked.reason(&name).into();
                    }
                }
                // `--state=` (an active or sub state, or a load state:
                // `loaded` for every unit flint holds but a masked one) and
                // `--type=`.
                let states = strings(req, "states");
                let types = strings(req, "types");
                // Listings leave out inactive units unless `--all` or a
                // `--state=` asks for them (systemctl's output_show_unit()).
                let all = !listing || !states.is_empty() || req["all"].as_bool() == Some(true);
                units.retain(|u| {
                    (all || u["state"] != "inactive")
                        && (states.is_empty()
                            || states.iter().any(|s| {
                                u["load"].as_str().unwrap_or("loaded") == s
                                    || u["state"] == **s
                                    || u["sub"] == **s
                            }))
                        && (types.is_empty() || types.iter().any(|t| u["type"] == **t))
                });
                if command == "status"
                    && units
                        .iter()
                        .any(|u| u["state"] != "active" && u["state"] != "reloading")
                {
                    exit = 3;
                }
                if command == "status" {
                    // systemctl's "Loaded: loaded (PATH; STATE)" line.
                    for u in &mut units {
                        let Some(name) = u["name"].as_str().map(str::to_string) else {
                            continue;
                        };
                        if let Some(unit) = self
                            .unit_of(&name)
                            .filter(crate::unit::load::Unit::is_loaded)
                        {
                            u["fragment"] = unit
                                .fragment
                                .as_ref()
                                .map(|f| f.display().to_string())
                                .into();
                            u["file_state"] = self.file_state(&name).into();
                            u["preset"] = self.file_preset(&unit).into();
                            u["documentation"] = documentation(&unit).into();
                            u["dropins"] = unit
                                .dropins
                                .iter()
                                .map(|d| d.display().to_string())
                                .collect::<Vec<_>>()
                                .into();
                        }
                        if let Some((usec, failed)) = self.condition_failures.get(&name) {
                            u["condition_failed"] = json!({"usec": usec, "failed": failed});
                        }
                    }
                }
                if missing.is_empty() {
                    return ok(units, exit);
                }
                if units.is_empty() {
                    return control::error(4, &missing.join("\n"));
                }
                let mut answer = ok(units, 4);
                answer["missing"] = missing.into();
                answer
            }
            "list-timers" => {
                // As `systemctl list-timers`: the active timers (all with
                // `--all`), soonest first, those with no next elapse last.
                let all = req["all"].as_bool() == Some(true);
                let mut rows: Vec<Json> = self
                    .timers
                    .map
                    .iter()
                    .filter(|(n, t)| {
                        (all || t.state.words().0 != "inactive")
                            && (given.is_empty() || names.contains(n))
                    })
                    .map(|(n, _)| self.timer_json(n))
                    .collect();
                rows.sort_by_key(|r| r["next_usec"].as_u64().unwrap_or(u64::MAX));
                ok(rows, 0)
            }
            "list-paths" => {
                // As `systemctl list-paths`: the active path units (all
                // with `--all`), by name.
                let all = req["all"].as_bool() == Some(true);
                let rows: Vec<Json> = self
                    .path_units
                    .map
                    .iter()
                    .filter(|(n, p)| {
                        (all || p.state.words().0 != "inactive")
                            && (given.is_empty() || names.contains(n))
                    })
                    .map(|(n, _)| self.path_json(n))
                    .collect();
                ok(rows, 0)
            }
            "reload" => {
                if given.is_empty() {
                    return control::error(1, "Too few arguments.");
                }
                let mut waited = Vec::new();
                // As systemctl: a name refused does not keep the others
                // from their jobs; the first refusal is the answer.
                let mut refused = None;
                for n in &names {
                    let Some(id) = self.find_service(n) else {
                        if let Some(no) = self.job_refused("reload", n) {
                            refused.get_or_insert(no);
                        }
                        continue;
                    };
                    let no = if !self.reloadable(id) {
                        not_reloadable(n)
                    } else if self.services.get(&id).is_some_and(|s| {
                        matches!(s.state, State::Dead | State::Failed | State::AutoRestart)
                    }) {
                        inactive(n)
                    } else {
                        match self.reload(id) {
                            Ok(()) => {
                                self.propagate_reload(id);
                                waited.push(id);
                                continue;
                            }
                            Err(e) => control::error(1, &format!("Failed to reload {n}: {e}")),
                        }
                    };
                    refused.get_or_insert(no);
                }
                // The answer goes once the reloads are done, as systemctl
                // waits for its reload jobs.
                if !req.get("no_block").and_then(Json::as_bool).unwrap_or(false) {
                    self.answer_jobs.extend(waited);
                    self.answer_kind = super::switch::WaitFor::Reload;
                }
                refused.unwrap_or_else(|| ok(Vec::new(), 0))
            }
            "start"
            | "stop"
            | "restart"
            | "try-restart"
            | "reload-or-restart"
            | "try-reload-or-restart"
            | "isolate" => {
                if given.is_empty() {
                    return control::error(1, "Too few arguments.");
                }
                // `isolate`: a start of the target that also stops what
                // runs and the target does not keep (see
                // `isolate_stops`); systemctl says "start" of it.
                let isolate = command == "isolate";
                if isolate && names.len() != 1 {
                    return control::error(1, "isolate takes one unit.");
                }
                let command = if isolate { "start" } else { command };
                // exit.target ends the manager, as systemd's does (its
                // systemd-exit.service, after everything stopped through
                // shutdown.target's conflicts): as `flint ctl exit`; and
                // poweroff.target and the others that end the system
                // (`systemctl poweroff`, logind's `PowerOff` start them)
                // as `flint ctl poweroff` and the others.
                if let Some(word) = ending_job(command, &names) {
                    // (A masked one is refused, as systemd refuses it:
                    // `ctrl-alt-del.target` masked against a stray
                    // reboot.)
                    if let Some(n) = names
                        .iter()
                        .find(|n| ending_target(n).is_some() && self.masked_on_disk(n))
                    {
                        return control::error(
                            1,
                            &format!("Failed to {command} {n}: Unit {n} is masked."),
                        );
                    }
                    return self.end_request(word, false, None);
                }
                let mut isolating = if isolate {
                    // Refused before any job (the API answers the call
                    // itself with the error).
                    let before_job = |mut answer: Json| {
                        answer["before_job"] = true.into();
                        answer
                    };
                    let n = &names[0];
                    if !n
                        .parse::<crate::unit::name::UnitName>()
                        .is_ok_and(|u| u.unit_type() == crate::unit::name::UnitType::Target)
                    {
                        return before_job(control::error(
                            1,
                            &format!("Failed to start {n}: flint isolates targets only."),
                        ));
                    }
                    // (`rescue.target`, `emergency.target`: the host's
                    // boot targets pull nothing in here, see `target`.)
                    if super::target::is_boot_target(n, self.search.user_mode) {
                        return before_job(control::error(
                            1,
                            &format!(
                                "Failed to start {n}: {n} is one of systemd's boot targets, \
                                 which are the host's; flint does not isolate them."
                            ),
                        ));
                    }
                    match self.isolate_stops(n) {
                        Ok(stops) => Some(stops),
                        Err(refused) => return before_job(refused),
                    }
                } else {
                    None
                };
                let kind = match command {
                    "start" => JobKind::Start,
                    "stop" => JobKind::Stop,
                    "try-restart" | "try-reload-or-restart" => JobKind::TryRestart,
                    _ => JobKind::Restart,
                };
                let mut waited = Vec::new();
                // As systemctl: a name refused does not keep the others
                // from their jobs; the first refusal is the answer, once
                // they are done.
                let mut refused = None;
                let mut sockets_awaited: Vec<String> = Vec::new();
                for n in &names {
                    // A stop cancels an open that waits for the sockets
                    // it conflicts with to close.
                    if command == "stop" {
                        self.socket_restarts
                            .retain(|(r, s)| !(r == n && *s == SOCKET_ALONE));
                    }
                    // A template is no unit to act on, as systemd refuses
                    // its name.
                    if n.parse::<crate::unit::name::UnitName>()
                        .is_ok_and(|u| u.is_template())
                    {
                        refused.get_or_insert(control::error(
                            1,
                            &format!(
                                "Failed to {command} {n}: Unit name {n} is missing the instance name.\n\
                                 See flint's log and 'flint ctl status {n}' for details."
                            ),
                        ));
                        continue;
                    }
                    if let Some(no) = self.manual_job_refused(command, n) {
                        refused.get_or_insert(no);
                        continue;
                    }
                    // Masked since it was loaded (`systemctl mask`): a
                    // start is refused, as systemd's after the reload that
                    // systemctl makes.
                    if command != "stop"
                        && !command.starts_with("try")
                        && self.load_state(n) == Some(crate::unit::load::LoadState::Masked)
                    {
                        refused.get_or_insert(control::error(
                            1,
                            &format!("Failed to {command} {n}: Unit {n} is masked."),
                        ));
                        continue;
                    }
                    if let Ok(timer) = n.parse::<crate::unit::name::UnitName>()
                        && matches!(
                            timer.unit_type(),
                            crate::unit::name::UnitType::Timer | crate::unit::name::UnitType::Path
                        )
                    {
                        let is_timer = timer.unit_type() == crate::unit::name::UnitType::Timer;
                        let active = if is_timer {
                            self.timers
                                .map
                                .get(n)
                                .is_some_and(|t| t.state.words().0 == "active")
                        } else {
                            self.path_units
                                .map
                                .get(n)
                                .is_some_and(|p| p.state.words().0 == "active")
                        };
                        let known = self.timers.map.contains_key(n)
                            || self.path_units.map.contains_key(n)
                            || crate::unit::loader::resolve(&self.search, &timer).is_ok();
                        if !known && (command == "stop" || command.starts_with("try")) {
                            return control::error(
                                5,
                                &format!("Failed to {command} {n}: Unit {n} not loaded."),
                            );
                        }
                        let stop = |m: &mut Self| {
                            if is_timer {
                                m.stop_timer(n);
                            } else {
                                m.stop_path_unit(n);
                            }
                        };
                        match command {
                            "stop" => {
                                stop(self);
                                continue;
                            }
                            "start" if active => continue,
                            c if c.starts_with("try") && !active => continue,
                            "start" => {}
                            _ => stop(self),
                        }
                        if crate::unit::loader::resolve(&self.search, &timer).is_err() {
                            return control::error(
                                5,
                                &format!("Failed to {command} {n}: Unit {n} not found."),
                            );
                        }
                        // Through a transaction: what the unit wants and
                        // requires comes with it, a missing requirement
                        // refuses the request.
                        if let Err(e) = self.try_enqueue_name(n, JobKind::Start, true) {
                            refused.get_or_insert(transaction_refused(command, n, &e));
                            continue;
                        }
                        let up = |state: &str| state != "inactive" && state != "failed";
                        let started = if is_timer {
                            self.timers
                                .map
                                .get(n)
                                .is_some_and(|t| up(t.state.words().0))
                        } else {
                            self.path_units
                                .map
                                .get(n)
                                .is_some_and(|p| up(p.state.words().0))
                        };
                        if !started {
                            return control::error(
                                1,
                                &format!("Job for {n} failed; see flint's log"),
                            );
                        }
                        continue;
                    }
                    // A target: its job waits for its ordering and pulls in
                    // what it wants (a stop, what requires it or is part
                    // of it).
                    if let Ok(name) = n.parse::<crate::unit::name::UnitName>()
                        && name.unit_type() == crate::unit::name::UnitType::Target
                    {
                        let id = if command == "stop" || command.starts_with("try") {
                            // Not loaded, but units that are part of it
                            // (bound to it, require it) run: loaded for its
                            // stop, which reaches them, as systemd holds a
                            // unit others name (`systemctl stop
                            // stunnel.target` stops every tunnel).
                            self.find_target(n).or_else(|| {
                                (command == "stop" && self.stop_reaches_any(n))
                                    .then(|| self.add_target(&name))
                                    .flatten()
                            })
                        } else {
                            self.add_target(&name)
                        };
                        let Some(id) = id else {
                            // systemd's boot targets are the host's (see
                            // `target`); a target not loaded has nothing
                            // to stop or restart.
                            let quiet = super::target::is_boot_target(n, self.search.user_mode)
                                || ((command == "stop" || command.starts_with("try"))
                                    && self.load_state(n)
                                        != Some(crate::unit::load::LoadState::NotFound));
                            if !quiet && let Some(no) = self.job_refused(command, n) {
                                refused.get_or_insert(no);
                            }
                            continue;
                        };
                        match self.try_enqueue_name(n, kind, true) {
                            Ok(_) => {
                                waited.push(id);
                                for stop in isolating.take().unwrap_or_default() {
                                    tracing::info!("{stop}: stopping, {n} is isolated");
                                    self.enqueue_name(&stop, JobKind::Stop);
                                }
                            }
                            Err(e) => {
                                refused.get_or_insert(transaction_refused(command, n, &e));
                            }
                        }
                        continue;
                    }
                    // `try-*`: a unit that does not run is left as it is;
                    // `*reload-or-restart`: reloaded where it runs and can
                    // be, restarted (or started) otherwise, as systemctl.
                    if !matches!(command, "start" | "stop" | "restart") {
                        let found = self.find_service(n);
                        let running = found.filter(|id| {
                            self.services
                                .get(id)
                                .is_some_and(|s| s.state == State::Running)
                        });
                        if command.contains("reload")
                            && let Some(id) = running
                            && self.reloadable(id)
                        {
                            if let Err(e) = self.reload(id) {
                                return control::error(1, &format!("Failed to reload {n}: {e}"));
                            }
                            self.propagate_reload(id);
                            continue;
                        }
                        if kind == JobKind::TryRestart && found.is_none() {
                            if self.socket_index(n).is_none()
                                && self.load_state(n) != Some(crate::unit::load::LoadState::Loaded)
                                && let Some(no) = self.job_refused(command, n)
                            {
                                refused.get_or_insert(no);
                            }
                            continue;
                        }
                    }
                    // A socket whose service runs (with the fds it got) is
                    // not started beside it: systemd refuses (EBUSY); a
                    // restart stops it and then refuses the start.
                    if command != "stop"
                        && !command.starts_with("try")
                        && let Some(busy) = self.socket_service_busy(n)
                    {
                        let listening = self
                            .socket_index(n)
                            .is_some_and(|i| !self.sockets[i].failed);
                        if listening && command == "start" {
                            if let Some(i) = self.socket_index(n) {
                                self.cancel_socket_stop(i);
                            }
                            self.pull_in_for_socket(n);
                            continue;
                        }
                        // A restart of a socket its service needs
                        // (Requires=, BindsTo=, PartOf=) restarts the
                        // service with it: the service stops, then the
                        // socket opens again and the service starts, as
                        // systemd's restart propagates to it.
                        let needed = self
                            .find_service(&busy)
                            .is_some_and(|id| self.services[&id].deps.follows_stop_of(n));
                        if listening && needed && command != "start" {
                            self.enqueue_name(n, JobKind::Stop);
                            // Only while the stop this request installed is
                            // the service's job (a later job of it drops the
                            // second half, see `install_job`).
                            if let Some(id) = self.find_service(&busy)
                                && self.jobs.get(&id).is_some_and(|j| j.kind == JobKind::Stop)
                            {
                                self.socket_restarts.push((n.clone(), id));
                            }
                            continue;
                        }
                        if listening {
                            self.enqueue_name(n, JobKind::Stop);
                        }
                        refused.get_or_insert(control::error(
                            1,
                            &format!(
                                "Job for {n} failed: Socket service {busy} already active, refusing."
                            ),
                        ));
                        continue;
                    }
                    if let Some(i) = self.socket_index(n) {
                        match command {
                            // What requires the socket or is part of it
                            // stops too. A restart of a listening socket (its
                            // service does not run): closed, then opened
                            // again once its listeners are closed, with its
                            // unit as it is now (after daemon-reload), as
                            // systemd's. The answer waits for the services
                            // the socket's stop waits for, then for the
                            // socket's own commands.
                            c if c == "stop"
                                || (c.contains("restart") && !self.sockets[i].failed) =>
                            {
                                self.enqueue_name(n, JobKind::Stop);
                                if let Some(waits) = self.socket_stop_waits(n) {
                                    waited.extend_from_slice(waits);
                                }
                                if c != "stop" {
                                    self.socket_restarts.push((n.clone(), SOCKET_ALONE));
                                }
                                sockets_awaited.push(n.clone());
                            }
                            // A stopped or failed socket is opened again.
                            _ if self.sockets[i].failed && !command.starts_with("try") => {
                                self.stop_conflicting_sockets(n);
                                if self.open_after_conflicts(n) {
                                    self.pull_in_for_socket(n);
                                    sockets_awaited.push(n.clone());
                                    continue;
                                }
                                let opened = n
                                    .parse::<crate::unit::name::UnitName>()
                                    .is_ok_and(|name| self.reopen_socket(i, &name));
                                if !opened {
                                    return control::error(
                                        1,
                                        &format!("Job for {n} failed; see flint's log"),
                                    );
                                }
                                self.pull_in_for_socket(n);
                                sockets_awaited.push(n.clone());
                            }
                            _ if !command.starts_with("try") => {
                                self.cancel_socket_stop(i);
                                self.pull_in_for_socket(n);
                            }
                            _ => {}
                        }
                        continue;
                    }
                    // A socket of the tree not open yet (never started, or
                    // skipped by a condition, which is checked again now).
                    if command != "stop"
                        && !command.starts_with("try")
                        && let Ok(name) = n.parse::<crate::unit::name::UnitName>()
                        && name.unit_type() == crate::unit::name::UnitType::Socket
                        && crate::unit::loader::resolve(&self.search, &name).is_ok()
                    {
                        // A unit file that does not load is refused as
                        // systemctl refuses it.
                        if self.load_state(n) != Some(crate::unit::load::LoadState::Loaded) {
                            if let Some(no) = self.job_refused(command, n) {
                                refused.get_or_insert(no);
                            }
                            continue;
                        }
                        self.stop_conflicting_sockets(n);
                        if self.open_after_conflicts(n) {
                            self.pull_in_for_socket(n);
                            sockets_awaited.push(n.clone());
                            continue;
                        }
                        if !self.add_socket(&name) {
                            return control::error(
                                1,
                                &format!("Job for {n} failed; see flint's log"),
                            );
                        }
                        self.pull_in_for_socket(n);
                        sockets_awaited.push(n.clone());
                        continue;
                    }
                    let found = self.find_service(n).or_else(|| {
                        // A service of the tree that nothing has loaded yet.
                        let name = n.parse::<crate::unit::name::UnitName>().ok()?;
                        (command != "stop"
                            && name.unit_type() == crate::unit::name::UnitType::Service
                            && !name.is_template()
                            && crate::unit::loader::resolve(&self.search, &name).is_ok())
                        .then(|| self.add_service(&name))
                        .flatten()
                    });
                    let Some(id) = found else {
                        if let Some(no) = self.job_refused(command, n) {
                            refused.get_or_insert(no);
                        }
                        continue;
                    };
                    match self.try_enqueue(id, kind, true) {
                        Ok(_) => waited.push(id),
                        Err(e) => {
                            refused.get_or_insert(transaction_refused(command, n, &e));
                        }
                    }
                }
                // As systemctl: a service stopped while a socket, timer
                // or path unit that starts it stays active (one not
                // stopped by the same request) is warned about.
                let mut notices: Vec<String> = Vec::new();
                if command == "stop" && refused.is_none() {
                    for n in &names {
                        let Some(svc) = self.find_service(n).and_then(|id| self.services.get(&id))
                        else {
                            continue;
                        };
                        let active: Vec<String> = self
                            .triggered_by(svc)
                            .into_iter()
                            .filter(|t| t["state"] == "active")
                            .filter_map(|t| t["name"].as_str().map(str::to_string))
                            .filter(|t| !names.contains(t))
                            // A socket this stop reaches (`PartOf=` the
                            // service) is stopping too: no warning, as
                            // systemctl looks once the jobs are done.
                            .filter(|t| {
                                !self.socket_index(t).is_some_and(|i| {
                                    self.socket_stops.iter().any(|(s, _)| *s == i)
                                        || self.closing_sockets.contains(&i)
                                })
                            })
                            .collect();
                        if !active.is_empty() {
                            notices.push(format!(
                                "Warning: Stopping {}, but it can still be activated by:",
                                svc.unit.id
                            ));
                            notices.extend(active.iter().map(|t| format!("  {t}")));
                        }
                    }
                }
                let no_block = req.get("no_block").and_then(Json::as_bool).unwrap_or(false);
                if !no_block {
                    // The answer goes once the jobs are done (see
                    // `answer_settled`), as systemctl waits for its jobs,
                    // and the sockets started or stopped have run their
                    // commands.
                    self.answer_jobs.extend(waited);
                    self.answer_sockets.extend(sockets_awaited);
                    self.answer_kind = if kind == JobKind::Stop {
                        super::switch::WaitFor::Stop
                    } else {
                        super::switch::WaitFor::Start
                    };
                }
                let mut answer = refused.unwrap_or_else(|| ok(Vec::new(), 0));
                // Refused before any job ("Failed to start x: ..."), not a
                // job that failed ("Job for x failed ..."): systemd's API
                // answers the call itself with an error then.
                if answer["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("Failed to "))
                {
                    answer["before_job"] = true.into();
                }
                if !notices.is_empty() {
                    answer["notices"] = notices.into();
                }
                answer
            }
            "logs" => {
                // A pattern selects the lines of every unit it matches,
                // also of instances no longer loaded.
                let [name] = given.as_slice() else {
                    return control::error(1, "logs takes one unit.");
                };
                let lines = req
                    .get("lines")
                    .and_then(Json::as_u64)
                    .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
                let after = req.get("after").and_then(Json::as_u64).unwrap_or(0);
                let entries = crate::logs::recent(name, lines, after);
                json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0, "entries": entries})
            }
            "list-dependencies" => {
                // What each unit pulls in, as a tree (default.target when
                // none is named), as `systemctl list-dependencies`.
                let roots = if given.is_empty() {
                    vec!["default.target".to_string()]
                } else {
                    given.clone()
                };
                let all = req.get("all").and_then(Json::as_bool) == Some(true);
                let plain = req.get("plain").and_then(Json::as_bool) == Some(true);
                let reverse = req.get("reverse").and_then(Json::as_bool) == Some(true);
                let mut lines = Vec::new();
                for (k, root) in roots.iter().enumerate() {
                    if k > 0 {
                        lines.push(String::new());
                    }
                    lines.push(root.clone());
                    let mut done = Vec::new();
                    let shape = TreeShape {
                        all,
                        plain,
                        reverse,
                    };
                    self.dependency_lines(root, 0, 0, &mut done, shape, &mut lines);
                }
                json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0, "lines": lines})
            }
            "cancel" => {
                // Job numbers; none: every job (systemd's ClearJobs).
                let serials: Vec<Result<u64, String>> = if given.is_empty() {
                    self.job_serials().into_iter().map(Ok).collect()
                } else {
                    given
                        .iter()
                        .map(|g| {
                            g.parse::<u32>().map(u64::from).map_err(|_| {
                                format!("Failed to parse job id \"{g}\": Invalid argument")
                            })
                        })
                        .collect()
                };
                let mut errors = Vec::new();
                for serial in serials {
                    match serial {
                        Ok(n) if self.cancel_job(n) => {}
                        Ok(n) if !given.is_empty() => {
                            errors
                                .push(format!("Failed to cancel job {n}: Job {n} does not exist."));
                        }
                        Ok(_) => {}
                        Err(e) => errors.push(e),
                    }
                }
                if errors.is_empty() {
                    json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0})
                } else {
                    control::error(1, &errors.join("\n"))
                }
            }
            "list-jobs" => {
                // Patterns pick jobs by their unit's name.
                let rows = self.job_rows();
                let total = rows.len();
                let jobs: Vec<Json> = rows
                    .into_iter()
                    .filter(|(_, unit, _, _)| {
                        given.is_empty()
                            || given.iter().any(|p| {
                                crate::service::condition::wildcard(p.as_bytes(), unit.as_bytes())
                            })
                    })
                    .map(|(id, unit, kind, state)| {
                        json!({"id": id, "unit": unit, "type": kind, "state": state})
                    })
                    .collect();
                let skipped = jobs.len() < total;
                json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0, "jobs": jobs,
                       "skipped": skipped})
            }
            "journal" => {
                // journalctl's query: every line kept that it selects.
                let query: crate::logs::Query = match req.get("query") {
                    Some(q) => match serde_json::from_value(q.clone()) {
                        Ok(q) => q,
                        Err(e) => return control::error(1, &format!("Bad journal query: {e}")),
                    },
                    None => crate::logs::Query::default(),
                };
                let pattern = match query.pattern() {
                    Ok(p) => p,
                    Err(e) => return control::error(1, &e.to_string()),
                };
                let (entries, last_seq) = query.run(pattern.as_ref());
                json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0, "entries": entries,
                       "last_seq": last_seq,
                       "journal_id": crate::logs::journal_id(),
                       "uid": nix::unistd::geteuid().as_raw()})
            }
            "kill" => {
                let signal = match req.get("signal") {
                    None | Some(Json::Null) => "SIGTERM",
                    Some(Json::String(s)) => s.as_str(),
                    Some(other) => {
                        return control::error(
                            1,
                            &format!("Failed to parse signal string {other}."),
                        );
                    }
                };
                let Ok(signo) = crate::unit::value::signal::parse_signal(signal) else {
                    return control::error(1, &format!("Failed to parse signal string {signal}."));
                };
                let all = req.get("whom").and_then(Json::as_str) != Some("main");
                if given.is_empty() {
                    return control::error(1, "Too few arguments.");
                }
                for n in &names {
                    // A socket's processes are its commands (ExecStartPre=
                    // and the like) while they run; it has no main one.
                    let found = self.find_service(n);
                    if found.is_none()
                        && (self.socket_index(n).is_some() || self.hooks.contains_key(n.as_str()))
                    {
                        if !all {
                            return control::error(
                                1,
                                &format!("Failed to kill unit {n}: No main process to kill"),
                            );
                        }
                        if let Some(pid) = self
                            .hooks
                            .get(n.as_str())
                            .map(super::socket_hooks::SocketHooks::running_pid)
                            .filter(|p| *p > 0)
                        {
                            super::lifecycle::signal_group(pid, signo);
                        }
                        continue;
                    }
                    let Some(id) = found else {
                        return control::error(
                            1,
                            &format!("Failed to kill unit {n}: Unit {n} not loaded."),
                        );
                    };
                    let svc = &self.services[&id];
                    if all
                        && let Some(cg) =
                            cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc)
                        && !cg.kill(svc.unit.id.as_str(), signo, &[]).is_empty()
                    {
                        continue;
                    }
                    match (svc.main_pid, svc.main_pgid) {
                        (Some(_), Some(pgid)) if all => {
                            super::lifecycle::signal_group(pgid, signo);
                        }
                        (Some(pid), _) => super::lifecycle::signal_pid(pid, signo),
                        // As systemd's `unit_kill()`: only a kill of the main
                        // process asks for one; for all of them, nothing left
                        // is not an error.
                        (None, _) if all => {}
                        _ => {
                            return control::error(
                                1,
                                &format!("Failed to kill unit {n}: No main process to kill"),
                            );
                        }
                    }
                    if let Some(pid) = svc.control_pid.filter(|_| all) {
                        super::lifecycle::signal_pid(pid, signo);
                    }
                }
                ok(Vec::new(), 0)
            }
            "daemon-reload" => {
                self.daemon_reload();
                ok(Vec::new(), 0)
            }
            "transient" => self.write_transient(req),
            "unit-files" => self.unit_files_request(req),
            // systemctl status PID (GetUnitByPID): the unit whose main
            // process it is, else the one whose cgroup holds it.
            "unit-of-pid" => {
                let pid = req["pid"].as_u64().unwrap_or(0);
                match self.unit_of_pid(pid) {
                    Some(name) => {
                        json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0, "unit": name})
                    }
                    None => {
                        control::error(1, &format!("PID {pid} does not belong to any loaded unit."))
                    }
                }
            }
            // `systemctl exit N`: the status flint ends with (systemd's
            // SetExitCode, before its start of exit.target).
            "set-exit-code" => match req["status"].as_u64().and_then(|s| u8::try_from(s).ok()) {
                Some(s) => {
                    self.exit_status = s;
                    ok(Vec::new(), 0)
                }
                None => control::error(1, "an exit status is 0 to 255"),
            },
            "set-property" => {
                let files: Vec<std::path::PathBuf> = strings(req, "files")
                    .into_iter()
                    .map(std::path::PathBuf::from)
                    .collect();
                for n in &names {
                    if std::path::Path::new(n)
                        .extension()
                        .is_some_and(|e| e == "slice")
                    {
                        self.reapply_slice(n);
                        continue;
                    }
                    if let Some(id) = self.find_service(n)
                        && let Err(e) = self.reapply_resources(id, &files)
                    {
                        return control::error(
                            1,
                            &format!("Failed to set unit properties on {n}: {e}"),
                        );
                    }
                }
                json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0, "units": []})
            }
            "exit" => {
                let word = req.get("word").and_then(Json::as_str).unwrap_or("exit");
                let force = req.get("force").and_then(Json::as_bool).unwrap_or(false);
                let status = req
                    .get("status")
                    .and_then(Json::as_u64)
                    .and_then(|s| u8::try_from(s).ok());
                self.end_request(word, force, status)
            }
            "switch" => {
                let dir = req
                    .get("dir")
                    .and_then(Json::as_str)
                    .map(std::path::PathBuf::from);
                let dry_run = req.get("dry_run").and_then(Json::as_bool).unwrap_or(false);
                match self.switch(dir.as_deref(), dry_run) {
                    Ok(done) => {
                        self.answer_jobs.clone_from(&done.jobs);
                        json!({
                        "version": PROTOCOL_VERSION,
                        "ok": true,
                        "exit": 0,
                        "dry_run": dry_run,
                        "lines": done.plan.lines(),
                        "plan": done.plan,
                        "warnings": done.warnings,
                        })
                    }
                    Err(errors) => json!({
                        "version": PROTOCOL_VERSION,
                        "ok": false,
                        "exit": 1,
                        "error": "the new unit tree does not load; nothing was changed",
                        "errors": errors,
                    }),
                }
            }
            "set-environment" | "unset-environment" => {
                let (unset, set) = if command == "set-environment" {
                    (Vec::new(), strings(req, "assignments"))
                } else {
                    (strings(req, "names"), Vec::new())
                };
                change_environment(self.search.user_mode, &unset, &set)
            }
            "show-environment" => {
                let mut block: Vec<String> =
                    crate::service::defaults::environment(self.search.user_mode)
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                block.sort();
                json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0, "environment": block})
            }
            other => control::error(1, &format!("Unknown command '{other}'.")),
        }
    }
}

/// The strings of a request's array `key` (none when it has no such array).
fn strings(req: &Json, key: &str) -> Vec<String> {
    req.get(key)
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `systemctl set-environment`/`unset-environment` (D-Bus
/// `SetEnvironment`/`UnsetEnvironment`): the client environment that
/// units started from now on get, changed as a whole or not at all.
fn change_environment(user_mode: bool, unset: &[String], set: &[String]) -> Json {
    if unset.is_empty() && set.is_empty() {
        return control::error(1, "Too few arguments.");
    }
    match crate::service::defaults::change_client_environment(user_mode, unset, set) {
        Ok(()) => json!({"version": PROTOCOL_VERSION, "ok": true, "exit": 0, "units": []}),
        Err(e) => control::error(1, &format!("Failed to set environment: {e}")),
    }
}

/// When flint started (`UserspaceTimestamp=`, what status says the
/// machine runs "since"), µs since the epoch.
pub(super) fn process_start_usec() -> Option<u64> {
    process_start().map(|(realtime, _)| realtime)
}

/// When flint started on `CLOCK_MONOTONIC` (`UserspaceTimestampMonotonic=`;
/// 0: not known).
pub(super) fn userspace_monotonic() -> u64 {
    process_start().map_or(0, |(_, monotonic)| monotonic)
}

/// When flint's process started, on the wall clock and on
/// `CLOCK_MONOTONIC` (µs): its start in clock ticks of `CLOCK_BOOTTIME`
/// (`/proc/self/stat`) set against that clock and the two others, once
/// (flint takes it as it starts, before the wall clock may be stepped).
pub(super) fn process_start() -> Option<(u64, u64)> {
    static AT: std::sync::OnceLock<Option<(u64, u64)>> = std::sync::OnceLock::new();
    *AT.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command, which may hold spaces and
        // parentheses.
        let after = stat.rsplit_once(')')?.1;
        let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|h| u64::try_from(h).ok())
            .filter(|h| *h > 0)?;
        let ago = crate::logs::boottime_usec().saturating_sub(ticks * 1_000_000 / hz);
        Some((
            crate::logs::epoch_usec().saturating_sub(ago),
            crate::logs::mono_usec().saturating_sub(ago),
        ))
    })
}

/// The `CLOCK_MONOTONIC` time of `usec` since the epoch, by the clocks'
/// distance now, as systemd's `map_clock_usec()`: for the times flint
/// keeps on the wall clock only (a timer's or a path unit's last change).
/// 0 (never), and a time before this boot, give 0.
pub(super) fn monotonic_of(usec: u64) -> u64 {
    if usec == 0 {
        return 0;
    }
    let (now, mono) = (crate::logs::epoch_usec(), crate::logs::mono_usec());
    if usec >= now {
        mono.saturating_add(usec - now)
    } else {
        mono.saturating_sub(now - usec)
    }
}

/// A unit's state timestamps by systemd's property names (µs, 0: never).
fn times_json(times: &super::jobs::StateTimes) -> Json {
    Json::Object(
        times
            .properties()
            .into_iter()
            .map(|(name, usec)| (name.to_string(), usec.into()))
            .collect(),
    )
}

/// The tasks (threads) of a unit's cgroup, as systemd's `TasksCurrent`:
/// `pids.current` where the pids controller counts them, else the threads
/// its cgroup lists.
fn tasks_current(cg: &crate::cgroup::Cgroups, unit: &str) -> Option<u64> {
    number(cg.read(unit, Some(Controller::Pids), "pids.current", "pids.current")).or_else(|| {
        let threads = std::fs::read_to_string(cg.dir(unit).join("cgroup.threads")).ok()?;
        u64::try_from(threads.lines().count()).ok()
    })
}

fn number(text: Option<String>) -> Option<u64> {
    text?.trim().parse().ok()
}

/// The pids controller's limit (`TasksMax=`), where flint applies one.
fn tasks_max(cg: &crate::cgroup::Cgroups, svc: &ServiceRt) -> Option<String> {
    let hierarchy = cg.hierarchy(Controller::Pids)?;
    crate::service::resources::plan(&svc.unit, "Service", Controller::Pids, hierarchy)?;
    Some(
        crate::service::tasks::limit(&svc.unit, "Service")
            .map_or_else(|| "infinity".to_string(), |n| n.to_string()),
    )
}

/// Memory in use and its limit, where the memory controller is the unit's.
fn memory(cg: &crate::cgroup::Cgroups, unit: &str) -> Option<Json> {
    let memory = Some(Controller::Memory);
    let current = number(cg.read(unit, memory, "memory.current", "memory.usage_in_bytes"))?;
    // v1 reports no limit as the largest page-aligned number.
    let max = number(cg.read(unit, memory, "memory.max", "memory.limit_in_bytes"))
        .filter(|m| *m < (1 << 62));
    Some(json!({"current": current, "max": max}))
}

/// CPU time used, from v2's `cpu.stat` (there without a controller).
fn cpu_usec(cg: &crate::cgroup::Cgroups, unit: &str) -> Option<u64> {
    cg.read(unit, None, "cpu.stat", "")?
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))?
        .trim()
        .parse()
        .ok()
}

/// systemctl's answer to a reload of a unit that cannot reload (no
/// `ExecReload=`, not `Type=notify-reload`): the job type is not
/// applicable (exit 3, as systemctl's for
/// `BUS_ERROR_JOB_TYPE_NOT_APPLICABLE`).
/// systemctl's answer to a request refused as a whole: a required unit
/// that does not load, an ordering cycle.
fn transaction_refused(command: &str, n: &str, refused: &super::jobs::Refused) -> Json {
    let why = &refused.why;
    control::error(
        refused.exit,
        &if refused.exit == 5 {
            format!("Failed to {command} {n}: {why}")
        } else {
            format!(
                "Failed to {command} {n}: {why}\nSee flint's log and 'flint ctl status {n}' for details."
            )
        },
    )
}

fn not_reloadable(n: &str) -> Json {
    control::error(
        3,
        &format!("Failed to reload {n}: Job type reload is not applicable for unit {n}."),
    )
}

/// systemctl's answer to a reload of a unit that could reload but does not
/// run (exit 1).
fn inactive(n: &str) -> Json {
    control::error(1, &format!("{n} is not active, cannot reload."))
}
