//! `flint run --dev-log`: the services' syslog messages in flint's log,
//! each under the unit whose process sent it (see [`crate::syslog`]).

use std::rc::Rc;

use tokio::sync::mpsc;

use super::lifecycle::{State, cgroup_of, pgid_and_session_of};
use super::{Event, Manager};
use crate::syslog::{DevLog, Record};

/// The syslog socket and the task that forwards what arrives on it.
pub(super) struct Served {
    _log: Rc<DevLog>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds the socket at `path` and forwards what arrives to the manager;
/// the socket (and its node) lives as long as the returned value.
pub(super) fn serve(path: &std::path::Path, tx: &mpsc::UnboundedSender<Event>) -> Option<Served> {
    let log = match DevLog::bind(path) {
        Ok(l) => Rc::new(l),
        Err(e) => {
            tracing::warn!("flint: {e}; services' syslog messages do not reach flint");
            return None;
        }
    };
    tracing::debug!("syslog messages are read from {}", path.display());
    // At most a batch per turn, so a flood cannot hold the loop.
    let task = super::forward_datagrams(
        Rc::clone(&log),
        log.raw_fd(),
        "syslog socket",
        64,
        DevLog::recv_one,
        Event::Syslog,
        tx.clone(),
    );
    Some(Served { _log: log, task })
}

impl Manager {
    /// After a service stopped: the syslog socket's node is there again if
    /// it went (a syslog daemon that found no `/run/systemd/system`, as
    /// Debian's rsyslog, binds `/dev/log` itself in flint's place and
    /// removes it when it stops; the services after it found none).
    pub(super) fn dev_log_again(&mut self) {
        let Some(path) = self.options.dev_log.clone() else {
            return;
        };
        if self.dev_log_socket.is_none() || std::fs::symlink_metadata(&path).is_ok() {
            return;
        }
        self.dev_log_socket = None;
        self.dev_log_socket = serve(&path, &self.tx);
        if self.dev_log_socket.is_some() {
            tracing::info!(
                "flint: {} was gone (a service had bound its own there); listening on it again",
                path.display()
            );
        }
    }

    /// A syslog message: a line (a line each, for one with several) of the
    /// unit that sent it, or of flint's own log when no unit's process
    /// did; past the rate limit, dropped and counted.
    pub(super) fn on_syslog(&mut self, record: &Record) {
        let unit = self.service_of_pid(record.pid);
        for text in record.text.lines().filter(|l| !l.trim().is_empty()) {
            if !crate::logs::admit(unit.as_deref().unwrap_or("")) {
                return;
            }
            crate::logs::record_syslog(
                unit.as_deref().unwrap_or(""),
                record.pid,
                record.identifier.as_deref(),
                text,
                record.priority,
            );
        }
    }

    /// The unit a process belongs to: the main or control process of a
    /// service, a process in its cgroup (or one below it), or one in the
    /// process group or session of a service that runs (where services
    /// have no cgroups).
    fn service_of_pid(&self, pid: i32) -> Option<String> {
        let name = |id: &u64| self.services[id].unit.id.to_string();
        if let Some((id, _)) = self
            .services
            .iter()
            .find(|(_, s)| s.main_pid == Some(pid) || s.control_pid == Some(pid))
        {
            return Some(name(id));
        }
        if let Some(own) = own_cgroup(pid) {
            let dirs: Vec<(u64, String)> = self
                .services
                .iter()
                .filter_map(|(id, svc)| {
                    let cg = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc)?;
                    let dir = cg.dir(svc.unit.id.as_ref());
                    Some((*id, dir.to_string_lossy().into_owned()))
                })
                .collect();
            // The deepest of the process's cgroup and its parents that is
            // a service's: a process in a sub-cgroup (`Delegate=`) too.
            let mut at = own.as_str();
            while at.len() > 1 {
                if let Some((id, _)) = dirs.iter().find(|(_, d)| d.ends_with(at)) {
                    return Some(name(id));
                }
                at = &at[..at.rfind('/').unwrap_or(0)];
            }
        }
        let (pgid, session) = pgid_and_session_of(pid)?;
        self.services
            .iter()
            .filter(|(_, s)| !matches!(s.state, State::Dead | State::Failed))
            .find(|(_, s)| s.main_pgid.is_some_and(|g| g == pgid || g == session))
            .map(|(id, _)| name(id))
    }
}

/// The cgroup v2 path of `pid` (`/init.scope/flint-…/web.service`); none
/// for the root.
fn own_cgroup(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    (path.len() > 1).then(|| path.to_string())
}
