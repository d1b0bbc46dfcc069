//! `flint run --dev-log`: the services' syslog messages in flint's log,
//! each under the unit whose process sent it (see [`crate::syslog`]).

use std::rc::Rc;

use tokio::sync::mpsc;

use super::lifecycle::{cgroup_of, pgid_and_session_of};
use super::{Event, Manager};
use crate::syslog::{DevLog, Record};

/// Binds the socket at `path` and forwards what arrives to the manager;
/// the socket (and its node) lives as long as the returned value.
pub(super) fn serve(
    path: &std::path::Path,
    tx: &mpsc::UnboundedSender<Event>,
) -> Option<Rc<DevLog>> {
    let log = match DevLog::bind(path) {
        Ok(l) => Rc::new(l),
        Err(e) => {
            tracing::warn!("flint: {e}; services' syslog messages do not reach flint");
            return None;
        }
    };
    tracing::debug!("syslog messages are read from {}", path.display());
    // At most a batch per turn, so a flood cannot hold the loop.
    super::forward_datagrams(
        Rc::clone(&log),
        log.raw_fd(),
        "syslog socket",
        Some(64),
        DevLog::recv,
        Event::Syslog,
        tx.clone(),
    );
    Some(log)
}

impl Manager {
    /// A syslog message: a line of the unit that sent it, or of flint's
    /// own log when no unit's process did.
    pub(super) fn on_syslog(&mut self, record: &Record) {
        let line = match &record.identifier {
            Some(ident) => format!("{ident}: {}", record.text),
            None => record.text.clone(),
        };
        if let Some(unit) = self.service_of_pid(record.pid) {
            crate::logs::record(&unit, record.pid, &line);
        } else {
            tracing::info!("syslog[{}]: {line}", record.pid);
        }
    }

    /// The unit a process belongs to: the main or control process of a
    /// service, a process in its cgroup, or one in its process group or
    /// session (where services have no cgroups).
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
            for (id, svc) in &self.services {
                if let Some(cg) = cgroup_of(self.cgroups.as_ref(), self.options.cgroups, svc) {
                    let dir = cg.dir(svc.unit.id.as_ref());
                    if dir.to_string_lossy().ends_with(&own) {
                        return Some(name(id));
                    }
                }
            }
        }
        let (pgid, session) = pgid_and_session_of(pid)?;
        self.services
            .iter()
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
