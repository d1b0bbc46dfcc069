//! One socket unit at run time: its configuration taken from the typed unit,
//! its open listeners, the tasks that watch them, and the per-connection
//! facts systemd derives from an accepted connection (instance name,
//! `REMOTE_ADDR`/`REMOTE_PORT`, the source used by
//! `MaxConnectionsPerSource=`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{self, AddressFamily, SockaddrLike, SockaddrStorage};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::Event;
use super::limit::RateLimit;
use crate::listen::{self, BindIpv6Only, ListenKind, SocketOptions};
use crate::unit::directive::ListenType;
use crate::unit::load::{ListenTarget, Unit, Value};
use crate::unit::name::UnitName;

/// What flint needs of a `[Socket]` section to run it.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    pub listens: Vec<ListenKind>,
    pub options: SocketOptions,
    pub accept: bool,
    /// The service to start (`Accept=no`) or the template (`Accept=yes`).
    pub service: UnitName,
    /// `FileDescriptorName=`, if set.
    pub fd_name: Option<String>,
    pub max_connections: u32,
    pub max_connections_per_source: u32,
    pub trigger_interval: Duration,
    pub trigger_burst: u64,
    /// `PollLimitIntervalSec=`/`PollLimitBurst=`, per listener.
    pub poll_interval: Duration,
    pub poll_burst: u64,
    pub flush_pending: bool,
}

fn usec(v: Option<u64>) -> Option<Duration> {
    v.filter(|u| *u != u64::MAX).map(Duration::from_micros)
}

fn user_id(name: &str) -> Result<u32, String> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
        .ok_or_else(|| format!("unknown user '{name}'"))
}

fn group_id(name: &str) -> Result<u32, String> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
        .ok_or_else(|| format!("unknown group '{name}'"))
}

impl SocketConfig {
    /// Reads the run-time configuration of a loaded socket unit.
    pub fn from_unit(unit: &Unit) -> Result<SocketConfig, String> {
        let s = "Socket";
        let mut listens = Vec::new();
        for l in unit.listens() {
            let kind = match (l.kind, &l.target) {
                (ListenType::Stream, ListenTarget::Address(a)) => ListenKind::Stream(a.clone()),
                (ListenType::Datagram, ListenTarget::Address(a)) => ListenKind::Datagram(a.clone()),
                (ListenType::SequentialPacket, ListenTarget::Address(a)) => {
                    ListenKind::SequentialPacket(a.clone())
                }
                (ListenType::Fifo, ListenTarget::Path(p)) => ListenKind::Fifo(p.clone()),
                (ListenType::Special, ListenTarget::Path(p)) => ListenKind::Special(p.clone()),
                (ListenType::Netlink, ListenTarget::Netlink { family, group }) => {
                    ListenKind::Netlink {
                        family: family.clone(),
                        group: *group,
                    }
                }
                (ListenType::MessageQueue, ListenTarget::MessageQueue(q)) => {
                    ListenKind::MessageQueue(q.clone())
                }
                (kind, _) => {
                    return Err(format!("{}= is not supported by flint", kind.directive()));
                }
            };
            listens.push(kind);
        }
        let mut o = SocketOptions::default();
        if let Some(Value::Mode(m)) = unit.get(s, "SocketMode") {
            o.socket_mode = *m;
        }
        if let Some(Value::Mode(m)) = unit.get(s, "DirectoryMode") {
            o.directory_mode = *m;
        }
        o.bind_ipv6_only = match unit.get_str(s, "BindIPv6Only") {
            Some("both") => BindIpv6Only::Both,
            Some("ipv6-only") => BindIpv6Only::Ipv6Only,
            _ => BindIpv6Only::Default,
        };
        if let Some(b) = unit.get_u64(s, "Backlog") {
            o.backlog = u32::try_from(b).unwrap_or(u32::MAX);
        }
        o.bind_to_device = unit.get_str(s, "BindToDevice").map(str::to_string);
        let flag = |k: &str| unit.get_bool(s, k).unwrap_or(false);
        o.free_bind = flag("FreeBind");
        o.transparent = flag("Transparent");
        o.reuse_port = flag("ReusePort");
        o.keep_alive = flag("KeepAlive");
        o.no_delay = flag("NoDelay");
        o.pass_credentials = flag("PassCredentials");
        o.pass_pidfd = flag("PassPIDFD");
        o.pass_rights = unit.get_bool(s, "AcceptFileDescriptors").unwrap_or(true);
        o.pass_security = flag("PassSecurity");
        o.pass_packet_info = flag("PassPacketInfo");
        o.broadcast = flag("Broadcast");
        o.writable = flag("Writable");
        o.remove_on_stop = flag("RemoveOnStop");
        o.keep_alive_time = usec(unit.get_usec(s, "KeepAliveTimeSec"));
        o.keep_alive_interval = usec(unit.get_usec(s, "KeepAliveIntervalSec"));
        o.keep_alive_probes = unit
            .get_u64(s, "KeepAliveProbes")
            .and_then(|v| u32::try_from(v).ok());
        o.defer_accept = usec(unit.get_usec(s, "DeferAcceptSec")).filter(|d| !d.is_zero());
        if let Some(Value::Int(p)) = unit.get(s, "Priority") {
            o.priority = i32::try_from(*p).ok();
        }
        if let Some(Value::Int(m)) = unit.get(s, "Mark") {
            o.mark = u32::try_from(*m).ok();
        }
        if let Some(Value::Int(t)) = unit.get(s, "IPTTL") {
            o.ip_ttl = u32::try_from(*t).ok();
        }
        if let Some(tos) = unit.get_str(s, "IPTOS") {
            o.ip_tos = match tos {
                "low-delay" => Some(0x10),
                "throughput" => Some(0x08),
                "reliability" => Some(0x04),
                "low-cost" => Some(0x02),
                n => n.parse().ok(),
            };
        }
        o.receive_buffer = unit.get_u64(s, "ReceiveBuffer");
        o.send_buffer = unit.get_u64(s, "SendBuffer");
        o.pipe_size = unit.get_u64(s, "PipeSize");
        o.tcp_congestion = unit.get_str(s, "TCPCongestion").map(str::to_string);
        if let Some(Value::Int(n)) = unit.get(s, "MessageQueueMaxMessages") {
            o.mq_max_messages = Some(*n);
        }
        if let Some(Value::Int(n)) = unit.get(s, "MessageQueueMessageSize") {
            o.mq_message_size = Some(*n);
        }
        if let Some(user) = unit.get_str(s, "SocketUser") {
            o.socket_user = Some(user_id(user)?);
            if unit.get_str(s, "SocketGroup").is_none() {
                o.socket_group = nix::unistd::User::from_name(user)
                    .ok()
                    .flatten()
                    .map(|u| u.gid.as_raw());
            }
        }
        if let Some(group) = unit.get_str(s, "SocketGroup") {
            o.socket_group = Some(group_id(group)?);
        }
        o.ip_access = crate::service::firewall::access_list(unit, s);
        o.symlinks = unit
            .entries(s, "Symlinks")
            .iter()
            .filter_map(|(v, _)| {
                if let Value::Str(p) = v {
                    Some(p.into())
                } else {
                    None
                }
            })
            .collect();

        let accept = unit.get_bool(s, "Accept").unwrap_or(false);
        let prefix = unit
            .id
            .as_str()
            .strip_suffix(".socket")
            .unwrap_or(unit.id.as_str())
            .to_string();
        let service: UnitName = if accept {
            format!("{}@.service", prefix.split('@').next().unwrap_or(&prefix))
                .parse()
                .map_err(|e| format!("cannot name the template service: {e}"))?
        } else if let Some(name) = unit.get_str(s, "Service") {
            name.parse().map_err(|e| format!("Service={name}: {e}"))?
        } else {
            format!("{prefix}.service")
                .parse()
                .map_err(|e| format!("cannot name the service: {e}"))?
        };
        let fd_name = unit
            .get_str(s, "FileDescriptorName")
            .filter(|n| valid_fd_name(n))
            .map(str::to_string);
        Ok(SocketConfig {
            listens,
            options: o,
            accept,
            service,
            fd_name,
            max_connections: unit
                .get_u64(s, "MaxConnections")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(64),
            max_connections_per_source: unit
                .get_u64(s, "MaxConnectionsPerSource")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            poll_interval: usec(unit.get_usec(s, "PollLimitIntervalSec"))
                .unwrap_or(Duration::from_secs(2)),
            poll_burst: unit
                .get_u64(s, "PollLimitBurst")
                .unwrap_or(if accept { 150 } else { 15 }),
            trigger_interval: usec(unit.get_usec(s, "TriggerLimitIntervalSec"))
                .unwrap_or(Duration::from_secs(2)),
            trigger_burst: unit.get_u64(s, "TriggerLimitBurst").unwrap_or(if accept {
                200
            } else {
                20
            }),
            flush_pending: flag("FlushPending"),
        })
    }
}

/// systemd's rule for fd names: printable ASCII without `:`, at most 255 bytes.
pub fn valid_fd_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b':')
}

/// An open listener.
#[derive(Debug)]
pub struct OpenListener {
    pub fd: OwnedFd,
    pub kind: ListenKind,
}

impl OpenListener {
    /// The listener as `systemctl status` shows it ([`describe_listen`]).
    pub fn describe(&self) -> String {
        describe_listen(&self.kind)
    }
}

/// A listener as `systemctl status` and `list-sockets` show it:
/// `0.0.0.0:111 (Stream)`, `0.0.0.0:111 (Datagram)`, `route 1 (Netlink)`.
pub fn describe_listen(kind: &crate::listen::ListenKind) -> String {
    use crate::listen::ListenKind;
    let name = match kind {
        ListenKind::Stream(_) => "Stream",
        ListenKind::Datagram(_) => "Datagram",
        ListenKind::SequentialPacket(_) => "SequentialPacket",
        ListenKind::Fifo(_) => "FIFO",
        ListenKind::Special(_) => "Special",
        ListenKind::Netlink { family, group } => {
            return format!("{family} {group} (Netlink)");
        }
        ListenKind::MessageQueue(_) => "MessageQueue",
    };
    format!("{kind} ({name})")
}

/// A running socket unit.
#[derive(Debug)]
pub struct SocketRt {
    pub name: String,
    pub unit: Unit,
    pub config: SocketConfig,
    pub listeners: Vec<OpenListener>,
    /// Live `Accept=yes` instances, and per source.
    pub active: u32,
    pub per_source: HashMap<String, u32>,
    /// Connections handed to services (systemd's `NAccepted`).
    pub accepted: u64,
    /// Connections closed over the limits (`NRefused`).
    pub refused: u64,
    pub trigger_limit: RateLimit,
    /// The plugin chain and its peek settings, when the unit has plugins.
    pub policy: Option<super::SocketPolicy>,
    armed: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    pub failed: bool,
    /// Why it failed, as systemd's socket results read (`resources`,
    /// `exit-code`, `timeout`, `trigger-limit-hit`,
    /// `service-start-limit-hit`); `success` otherwise.
    pub result: &'static str,
    /// Not listening because it was stopped (not because it failed):
    /// `inactive (dead)`, as systemd shows a stopped socket.
    pub stopped: bool,
    /// Gone from the unit tree after a switch (its index stays valid).
    pub removed: bool,
    /// When it began to listen and stopped, as systemd's timestamps.
    pub times: super::jobs::StateTimes,
}

impl SocketRt {
    /// Opens every listener; on any failure the ones already open are
    /// closed and their nodes removed, as systemd does.
    ///
    /// A listener in `spare` (left by a socket a switch removed or changed)
    /// with the same address is taken over instead of opened: its file
    /// descriptor stays, with the new options applied.
    pub fn open(
        index: usize,
        unit: Unit,
        config: SocketConfig,
        tx: &mpsc::UnboundedSender<Event>,
        spare: &mut Vec<(OpenListener, SocketOptions)>,
    ) -> Result<SocketRt, String> {
        let mut listeners = Vec::new();
        // Whether each listener was taken over from `spare`.
        let mut taken: Vec<bool> = Vec::new();
        for kind in &config.listens {
            if let Some((l, warnings)) = take_spare(spare, kind, &config.options) {
                for w in warnings {
                    tracing::warn!("{}: {w}", unit.id);
                }
                tracing::info!("{}: took over {}", unit.id, l.describe());
                taken.push(true);
                listeners.push(l);
                continue;
            }
            match listen::open(kind, &config.options) {
                Ok(l) => {
                    for w in &l.warnings {
                        tracing::warn!("{}: {w}", unit.id);
                    }
                    taken.push(false);
                    listeners.push(OpenListener {
                        fd: l.fd,
                        kind: l.kind,
                    });
                }
                Err(e) => {
                    // Listeners taken over go back (open for whoever takes
                    // them next, or closed with the spares); new ones close.
                    for (l, was_spare) in listeners.into_iter().zip(taken) {
                        if was_spare {
                            spare.push((l, config.options.clone()));
                        } else {
                            listen::remove_nodes(&l.kind, &config.options);
                        }
                    }
                    return Err(format!("failed to listen on {kind}: {e}"));
                }
            }
        }
        let (armed, _) = watch::channel(false);
        let mut rt = SocketRt {
            name: unit.id.to_string(),
            trigger_limit: RateLimit::new(config.trigger_interval, config.trigger_burst),
            policy: None,
            unit,
            config,
            listeners,
            active: 0,
            per_source: HashMap::new(),
            accepted: 0,
            refused: 0,
            armed,
            tasks: Vec::new(),
            failed: false,
            result: "success",
            stopped: false,
            removed: false,
            times: super::jobs::StateTimes::default(),
        };
        rt.times
            .note(super::jobs::Class::Inactive, super::jobs::Class::Active);
        if taken.contains(&true) {
            // The watchers of the socket that had these listeners were
            // aborted but may not be dropped yet (they deregister the fds
            // when dropped): watch once they are.
            let tx = tx.clone();
            tokio::task::spawn_local(async move {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                let _ = tx.send(Event::Rewatch { socket: index });
            });
        } else {
            rt.watch(index, tx);
        }
        Ok(rt)
    }

    /// Starts a watch task per listener (none may be running).
    pub fn watch(&mut self, index: usize, tx: &mpsc::UnboundedSender<Event>) {
        if self.failed || !self.tasks.is_empty() {
            return;
        }
        for (listener, l) in self.listeners.iter().enumerate() {
            let task = watch_listener(
                (index, listener),
                format!("{}: {}", self.name, l.describe()),
                l.fd.as_raw_fd(),
                self.config.accept,
                self.armed.subscribe(),
                tx.clone(),
                RateLimit::new(self.config.poll_interval, self.config.poll_burst),
            );
            self.tasks.push(task);
        }
    }

    /// Stops the watch tasks; the listeners stay open and the armed state
    /// is kept for the tasks [`Self::watch`] starts next.
    pub fn stop_watching(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    /// Starts watching the listeners.
    pub fn arm(&mut self) {
        if !self.failed {
            self.armed.send_replace(true);
        }
    }

    /// Whether flint watches the listeners right now.
    pub fn is_listening(&self) -> bool {
        *self.armed.borrow()
    }

    /// Stops watching (the service owns the listeners now).
    pub fn disarm(&mut self) {
        self.armed.send_replace(false);
    }

    /// Watches again after the service is gone; with `FlushPending=yes`,
    /// first drops what queued meanwhile.
    pub fn rearm(&mut self) {
        if self.config.flush_pending {
            for l in &self.listeners {
                flush(l);
            }
        }
        self.arm();
    }

    /// Refuses what waits on the listeners while flint shuts down, as
    /// systemd does for a socket whose stop is pending: queued connections
    /// are accepted and closed and datagrams and FIFO data dropped, so a
    /// client learns at once that nothing will answer instead of waiting in
    /// the backlog until flint exits. The socket keeps watching; a listener
    /// that cannot be drained (a message queue, a special file that stays
    /// readable) is no longer watched, so that it cannot spin the loop.
    pub fn refuse_pending(&mut self) {
        for l in &self.listeners {
            flush(l);
        }
        let stuck = self
            .listeners
            .iter()
            .any(|l| readable_now(l.fd.as_raw_fd()).unwrap_or(true));
        if stuck {
            self.disarm();
        } else {
            self.arm();
        }
    }

    /// Puts the socket into the failed state with `result`: listeners
    /// closed, `closed` sent once they are (a turn of the loop later).
    pub fn fail(&mut self, result: &'static str, closed: Closed) {
        tracing::error!(
            "{}: Failed with result '{result}'; listeners closed",
            self.unit.id
        );
        self.failed = true;
        self.result = result;
        self.close(closed);
    }

    /// Closes the listeners (and removes their nodes with `RemoveOnStop=yes`);
    /// `closed` is sent once they are.
    pub fn close(&mut self, closed: Closed) {
        if !self.listeners.is_empty() {
            self.times
                .note(super::jobs::Class::Active, super::jobs::Class::Inactive);
        }
        self.disarm();
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let listeners = std::mem::take(&mut self.listeners);
        if self.config.options.remove_on_stop {
            for l in &listeners {
                listen::remove_nodes(&l.kind, &self.config.options);
            }
        }
        SocketRt::close_later(listeners, closed);
    }

    /// Closes `listeners` once their watch tasks (already aborted) are
    /// dropped and have deregistered the fds, then sends `closed`.
    pub fn close_later(listeners: Vec<OpenListener>, closed: Closed) {
        let notify = move || {
            if let Some((tx, event)) = closed {
                let _ = tx.send(event);
            }
        };
        if listeners.is_empty() || tokio::runtime::Handle::try_current().is_err() {
            drop(listeners);
            notify();
            return;
        }
        tokio::task::spawn_local(async move {
            tokio::task::yield_now().await;
            drop(listeners);
            notify();
        });
    }
}

/// What to send once a socket's listeners are closed, if anything.
pub type Closed = Option<(mpsc::UnboundedSender<Event>, Event)>;

/// Takes the spare listener for `kind` (left by a socket that a switch
/// removed or changed), with `options` applied in place; returns it and
/// the warnings of [`listen::update`].
pub fn take_spare(
    spare: &mut Vec<(OpenListener, SocketOptions)>,
    kind: &ListenKind,
    options: &SocketOptions,
) -> Option<(OpenListener, Vec<String>)> {
    let pos = spare.iter().position(|(l, _)| l.kind == *kind)?;
    let (l, old) = spare.swap_remove(pos);
    let warnings = listen::update(l.fd.as_fd(), kind, &old, options);
    Some((l, warnings))
}

/// Drops queued connections, datagrams or FIFO data (`FlushPending=yes`,
/// and a shutting-down flint's refusal).
fn flush(l: &OpenListener) {
    for _ in 0..4096 {
        if !drop_one(l) {
            break;
        }
    }
}

/// Drops one queued connection (accepted and closed), one datagram or one
/// chunk of FIFO data from `l`; false when nothing was there, or for what
/// cannot be drained (a message queue).
fn drop_one(l: &OpenListener) -> bool {
    let fd = l.fd.as_raw_fd();
    match &l.kind {
        // The listener may be blocking (services get it as they asked,
        // `NonBlocking=no`): accept only what poll says is queued, or the
        // event loop would wait in accept4() for the next peer.
        ListenKind::Stream(_) | ListenKind::SequentialPacket(_) => {
            if !readable_now(fd).unwrap_or(false) {
                return false;
            }
            match socket::accept4(
                fd,
                socket::SockFlag::SOCK_NONBLOCK | socket::SockFlag::SOCK_CLOEXEC,
            ) {
                Ok(c) => {
                    // SAFETY: accept4 returned a new fd that nothing else owns.
                    drop(unsafe { OwnedFd::from_raw_fd(c) });
                    true
                }
                // A connection that went wrong before it was taken is gone
                // from the queue as well; the ones behind it are still there.
                Err(e) => e != nix::errno::Errno::EAGAIN && crate::listen::accept_again(e),
            }
        }
        // The FIFO is open non-blocking; a special file may not be, so it is
        // read only while poll says it is readable.
        ListenKind::Fifo(_) | ListenKind::Special(_) => {
            let mut buf = [0u8; 4096];
            readable_now(fd).unwrap_or(false)
                && matches!(nix::unistd::read(l.fd.as_fd(), &mut buf), Ok(n) if n > 0)
        }
        ListenKind::MessageQueue(_) => false,
        // A datagram: a buffer shorter than it drops the rest of it too.
        _ => {
            let mut buf = [0u8; 512];
            socket::recv(fd, &mut buf, socket::MsgFlags::MSG_DONTWAIT).is_ok()
        }
    }
}

/// Whether `fd` has something to read right now (level-triggered check).
fn readable_now(fd: RawFd) -> Result<bool, String> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid pollfd for the duration of the call and the
    // count is 1.
    let n = unsafe { libc::poll(&raw mut pfd, 1, 0) };
    if n < 0 {
        return Ok(false);
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        return Err("got POLLERR on a listening socket".into());
    }
    if pfd.revents & libc::POLLHUP != 0 && pfd.revents & libc::POLLIN == 0 {
        return Err("got POLLHUP on a listening socket".into());
    }
    Ok(pfd.revents & libc::POLLIN != 0)
}

/// The watch task of one listener: while armed, reports readiness
/// (`Accept=no`) or accepts connections (`Accept=yes`).
fn watch_listener(
    (socket, listener): (usize, usize),
    // "web.socket: 127.0.0.1:80 (Stream)", for the log.
    what: String,
    fd: RawFd,
    accept: bool,
    mut armed: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<Event>,
    mut poll_limit: RateLimit,
) -> JoinHandle<()> {
    tokio::task::spawn_local(async move {
        // SAFETY: `fd` is a listener owned by the socket unit, which closes
        // it only after aborting this task and letting it be dropped (see
        // `SocketRt::close`), so the fd outlives this registration.
        let afd = match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
            Ok(a) => a,
            Err(e) => {
                let _ = tx.send(Event::ListenerFailed {
                    socket,
                    error: format!("cannot watch listener: {e}"),
                });
                return;
            }
        };
        loop {
            while !*armed.borrow_and_update() {
                if armed.changed().await.is_err() {
                    return;
                }
            }
            tokio::select! {
                guard = afd.readable() => {
                    let Ok(mut guard) = guard else { return };
                    // PollLimit: past the burst, this listener pauses until
                    // the interval is over (nothing is consumed meanwhile).
                    if !poll_limit.allow() {
                        let until = poll_limit.window_end().unwrap_or_else(std::time::Instant::now);
                        // Said once per pause, at the default level: the
                        // connections wait meanwhile (PollLimitBurst=,
                        // PollLimitIntervalSec=).
                        tracing::info!(
                            "{what}: poll limit hit, pausing for {:?} (PollLimitIntervalSec=, PollLimitBurst=)",
                            until.saturating_duration_since(std::time::Instant::now())
                        );
                        drop(guard);
                        tokio::time::sleep_until(until.into()).await;
                        continue;
                    }
                    if accept {
                        // One connection per dispatch, as systemd does, so the
                        // poll limit counts connections.
                        match socket::accept4(fd, socket::SockFlag::SOCK_NONBLOCK | socket::SockFlag::SOCK_CLOEXEC) {
                            Ok(c) => {
                                // SAFETY: accept4 returned a new fd that nothing else owns.
                                let conn = unsafe { OwnedFd::from_raw_fd(c) };
                                if tx.send(Event::Accepted { socket, listener, conn }).is_err() {
                                    return;
                                }
                            }
                            Err(nix::errno::Errno::EAGAIN) => {
                                guard.clear_ready();
                            }
                            // One connection's error (the peer went away, a
                            // network error pending on it): go on.
                            Err(e) if crate::listen::accept_again(e) => {}
                            // Out of fds or memory: back off briefly instead of spinning.
                            Err(e @ (nix::errno::Errno::EMFILE | nix::errno::Errno::ENFILE | nix::errno::Errno::ENOBUFS | nix::errno::Errno::ENOMEM)) => {
                                tracing::warn!("accept failed: {e}; retrying shortly");
                                drop(guard);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            Err(e) => {
                                let _ = tx.send(Event::ListenerFailed { socket, error: format!("accept failed: {e}") });
                                return;
                            }
                        }

                    } else {
                        match readable_now(fd) {
                            Ok(true) => {
                                if tx.send(Event::Readable { socket }).is_err() {
                                    return;
                                }
                                // The manager answers by disarming us, and may
                                // re-arm at once (a refused activation): wait
                                // for its answer rather than for a value, which
                                // the channel may have coalesced.
                                if armed.changed().await.is_err() {
                                    return;
                                }
                            }
                            Ok(false) => guard.clear_ready(),
                            Err(error) => {
                                let _ = tx.send(Event::ListenerFailed { socket, error });
                                return;
                            }
                        }
                    }
                }
                r = armed.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// The peer of an accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Inet(SocketAddr),
    Unix {
        path: Option<String>,
        /// `SO_PEERCRED`, read once at accept.
        cred: Option<socket::UnixCredentials>,
    },
    Vsock {
        cid: u32,
        port: u32,
    },
}

impl Peer {
    /// The peer as systemd's `getpeername_pretty()` shows it, which it
    /// adds to an `Accept=yes` instance's description: `ip:port`
    /// (`[ip6]:port`, an IPv4-mapped address as IPv4), `PID n/UID u` for a
    /// unix peer (its credentials), `vsock:cid:port`.
    pub fn pretty(&self) -> Option<String> {
        Some(match self {
            Peer::Inet(sa) => SocketAddr::new(plain_ip(sa.ip()), sa.port()).to_string(),
            Peer::Unix { cred, .. } => {
                let c = cred.as_ref()?;
                format!("PID {}/UID {}", c.pid(), c.uid())
            }
            Peer::Vsock { cid, port } => format!("vsock:{cid}:{port}"),
        })
    }
}

/// An IPv4-mapped IPv6 address shown as IPv4, as systemd prints peers.
fn plain_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Appends `ip` as [`plain_ip`] shows it: an IPv4 address (also one
/// mapped into IPv6) written digit by digit, which every `Accept=yes`
/// connection asks for four times; an IPv6 one as `Display` writes it.
fn push_ip(out: &mut String, ip: IpAddr) {
    match plain_ip(ip) {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(out, u64::from(octet));
            }
        }
        v6 @ IpAddr::V6(_) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// An address as systemd's `getsockname_pretty()`/`getpeername_pretty()`
/// show it: `ip:port` (`[ip6]:port`), a path, `@name` for an abstract
/// socket, `vsock:cid:port`; `None` for an unnamed one.
pub(crate) fn address_text(addr: &SockaddrStorage) -> Option<String> {
    Some(match storage_to_peer(addr)? {
        Peer::Inet(sa) => sa.to_string(),
        Peer::Unix { path, .. } => path?,
        Peer::Vsock { cid, port } => format!("vsock:{cid}:{port}"),
    })
}

fn storage_to_peer(addr: &SockaddrStorage) -> Option<Peer> {
    match addr.family()? {
        AddressFamily::Inet => addr
            .as_sockaddr_in()
            .map(|a| Peer::Inet(SocketAddr::from(std::net::SocketAddrV4::from(*a)))),
        AddressFamily::Inet6 => addr
            .as_sockaddr_in6()
            .map(|a| Peer::Inet(SocketAddr::from(std::net::SocketAddrV6::from(*a)))),
        AddressFamily::Unix => {
            let un = addr.as_unix_addr()?;
            let path = if let Some(p) = un.path() {
                Some(p.to_string_lossy().into_owned())
            } else {
                un.as_abstract()
                    .map(|a| format!("@{}", String::from_utf8_lossy(a)))
            };
            Some(Peer::Unix { path, cred: None })
        }
        AddressFamily::Vsock => addr.as_vsock_addr().map(|v| Peer::Vsock {
            cid: v.cid(),
            port: v.port(),
        }),
        _ => None,
    }
}

impl Peer {
    /// The peer of `conn`, or `None` when it is already gone.
    pub fn of(conn: &OwnedFd) -> Option<Peer> {
        let addr: SockaddrStorage = socket::getpeername(conn.as_raw_fd()).ok()?;
        let mut peer = storage_to_peer(&addr)?;
        if let Peer::Unix { cred, .. } = &mut peer {
            *cred = socket::getsockopt(&conn.as_fd(), socket::sockopt::PeerCredentials).ok();
        }
        Some(peer)
    }

    /// `REMOTE_ADDR` and `REMOTE_PORT` as systemd sets them.
    pub fn remote_env(&self) -> Vec<(String, String)> {
        match self {
            Peer::Inet(sa) => {
                let (mut addr, mut port) = (String::with_capacity(15), String::with_capacity(5));
                push_ip(&mut addr, sa.ip());
                push_decimal(&mut port, u64::from(sa.port()));
                vec![("REMOTE_ADDR".into(), addr), ("REMOTE_PORT".into(), port)]
            }
            Peer::Unix { path: Some(p), .. } => vec![("REMOTE_ADDR".into(), p.clone())],
            Peer::Unix { path: None, .. } => Vec::new(),
            Peer::Vsock { cid, port } => vec![
                ("REMOTE_ADDR".into(), cid.to_string()),
                ("REMOTE_PORT".into(), port.to_string()),
            ],
        }
    }

    /// The key `MaxConnectionsPerSource=` counts by: the IP address, the
    /// vsock CID, or the uid of a unix peer.
    pub fn source_key(&self) -> Option<String> {
        match self {
            Peer::Inet(sa) => Some(plain_ip(sa.ip()).to_string()),
            Peer::Unix { cred, .. } => cred.map(|c| format!("uid:{}", c.uid())),
            Peer::Vsock { cid, .. } => Some(format!("vsock:{cid}")),
        }
    }
}

/// The instance name systemd (up to v257) gives the per-connection service:
/// `<n>-<local ip>:<port>-<remote ip>:<port>`, `<n>-<pid>-<uid>` for unix
/// sockets (or `<n>-unknown`), with IPv4-mapped addresses shown as IPv4.
/// `peer` is the connection's peer as read at accept ([`Peer::of`]). `None`
/// when the peer is already gone.
pub fn instance_name(n: u64, conn: &OwnedFd, peer: &Peer) -> Option<String> {
    let local: SockaddrStorage = socket::getsockname(conn.as_raw_fd()).ok()?;
    match (storage_to_peer(&local)?, peer) {
        (Peer::Inet(l), Peer::Inet(r)) => {
            let mut name = String::with_capacity(64);
            push_decimal(&mut name, n);
            name.push('-');
            push_ip(&mut name, l.ip());
            name.push(':');
            push_decimal(&mut name, u64::from(l.port()));
            name.push('-');
            push_ip(&mut name, r.ip());
            name.push(':');
            push_decimal(&mut name, u64::from(r.port()));
            Some(name)
        }
        (Peer::Vsock { cid: lc, port: lp }, Peer::Vsock { cid: rc, port: rp }) => {
            Some(format!("{n}-{lc}:{lp}-{rc}:{rp}"))
        }
        (Peer::Unix { .. }, Peer::Unix { cred, .. }) => Some(match cred {
            Some(c) => format!("{n}-{}-{}", c.pid(), c.uid()),
            None => format!("{n}-unknown"),
        }),
        _ => None,
    }
}

impl SocketRt {
    /// Drops one queued connection, datagram or chunk of FIFO data: what a
    /// denied `Accept=no` activation consumes, so it does not trigger again
    /// at once.
    pub fn drop_one_pending(&self) {
        if let Some(l) = self
            .listeners
            .iter()
            .find(|l| readable_now(l.fd.as_raw_fd()).unwrap_or(false))
        {
            drop_one(l);
        }
    }
}

/// The local address of `fd` in the plugins' terms.
pub fn policy_local_address(fd: RawFd) -> Option<crate::policy::SocketAddress> {
    let addr: SockaddrStorage = socket::getsockname(fd).ok()?;
    Some(policy_peer(&storage_to_peer(&addr)?))
}

/// An address as plugins see it.
pub fn policy_peer(peer: &Peer) -> crate::policy::SocketAddress {
    use crate::policy::SocketAddress as P;
    match peer {
        Peer::Inet(sa) => P::Ip(SocketAddr::new(plain_ip(sa.ip()), sa.port())),
        Peer::Unix { path: Some(p), .. } => match p.strip_prefix('@') {
            Some(name) => P::UnixAbstract(name.as_bytes().to_vec()),
            None => P::UnixPath(p.into()),
        },
        Peer::Unix { path: None, .. } => P::Unnamed,
        Peer::Vsock { cid, port } => P::Vsock {
            cid: *cid,
            port: *port,
        },
    }
}

/// A unix peer's credentials as plugins see them.
pub fn policy_credentials(peer: &Peer) -> Option<crate::policy::PeerCredentials> {
    let Peer::Unix { cred: Some(c), .. } = peer else {
        return None;
    };
    Some(crate::policy::PeerCredentials {
        pid: u32::try_from(c.pid()).ok()?,
        uid: c.uid(),
        gid: c.gid(),
    })
}

/// Peeks (`MSG_PEEK`) up to `max` bytes of a new connection, waiting for
/// more until `timeout`; the bytes stay in the socket for the service. A
/// peer that sends nothing or too little is decided on what arrived; the
/// wait runs in its own task and never holds up other connections.
pub fn spawn_peek(
    socket: usize,
    listener: usize,
    conn: OwnedFd,
    peer: Option<Peer>,
    max: usize,
    timeout: Duration,
    tx: mpsc::UnboundedSender<Event>,
) {
    tokio::task::spawn_local(async move {
        let raw = conn.as_raw_fd();
        // SAFETY: `conn` is moved into the AsyncFd and taken back with
        // `into_inner` before it is used again, so the fd stays open and
        // unchanged while registered.
        let afd = match unsafe { AsyncFd::register_with_interest(conn, Interest::READABLE) } {
            Ok(a) => a,
            Err(e) => {
                let _ = tx.send(Event::Peeked {
                    socket,
                    listener,
                    conn: e.into_parts().0,
                    peer,
                    bytes: Vec::new(),
                });
                return;
            }
        };
        let mut buf = vec![0u8; max];
        let mut got = 0usize;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Checked here too: a peer whose end keeps the fd readable
            // must not keep this loop from its deadline.
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            match socket::recv(
                raw,
                &mut buf,
                socket::MsgFlags::MSG_PEEK | socket::MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(0) => break,
                Ok(n) => {
                    got = n;
                    if n >= max {
                        break;
                    }
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
            match tokio::time::timeout_at(deadline, afd.readable()).await {
                Ok(Ok(mut guard)) => {
                    // Wait for new data, unless some arrived since the peek.
                    let now = socket::recv(
                        raw,
                        &mut buf,
                        socket::MsgFlags::MSG_PEEK | socket::MsgFlags::MSG_DONTWAIT,
                    )
                    .unwrap_or(0);
                    // The peer has shut down its side (FIN after fewer
                    // bytes than PeekBytes=): no more will come, and the fd
                    // stays readable for good; decide on what is there.
                    if guard.ready().is_read_closed() {
                        got = got.max(now);
                        break;
                    }
                    if now <= got {
                        guard.clear_ready();
                    }
                }
                _ => break,
            }
        }
        buf.truncate(got);
        let conn = afd.into_inner();
        let _ = tx.send(Event::Peeked {
            socket,
            listener,
            conn,
            peer,
            bytes: buf,
        });
    });
}

#[cfg(test)]
mod flush_tests {
    use super::*;
    use crate::unit::value::address::SocketAddress;

    fn open(kind: &ListenKind) -> OpenListener {
        let l = listen::open(kind, &SocketOptions::default()).expect("open the listener");
        OpenListener {
            fd: l.fd,
            kind: l.kind,
        }
    }

    #[test]
    fn flush_drops_queued_connections_datagrams_and_fifo_data() {
        let dir = tempfile::tempdir().unwrap();
        let stream = open(&ListenKind::Stream(SocketAddress::Unix(
            dir.path().join("s"),
        )));
        let dgram = open(&ListenKind::Datagram(SocketAddress::Unix(
            dir.path().join("d"),
        )));
        let fifo = open(&ListenKind::Fifo(dir.path().join("f")));
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(std::os::unix::net::UnixStream::connect(dir.path().join("s")).unwrap());
        }
        let tx = std::os::unix::net::UnixDatagram::unbound().unwrap();
        for _ in 0..3 {
            tx.send_to(b"x", dir.path().join("d")).unwrap();
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("f"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, &[7u8; 10_000]))
            .unwrap();
        for l in [&stream, &dgram, &fifo] {
            assert_eq!(readable_now(l.fd.as_raw_fd()), Ok(true), "{:?}", l.kind);
            flush(l);
            assert_eq!(readable_now(l.fd.as_raw_fd()), Ok(false), "{:?}", l.kind);
        }
        // The connections were accepted and closed: each client sees EOF.
        for mut c in clients {
            let mut buf = [0u8; 1];
            assert_eq!(std::io::Read::read(&mut c, &mut buf).unwrap(), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_numbers_are_written_as_display_writes_them() {
        for n in [0, 1, 9, 10, 99, 255, 256, 65_535, 1_000_007, u64::MAX] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
        let ips: [IpAddr; 6] = [
            "127.0.0.1".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            "255.10.100.9".parse().unwrap(),
            "::1".parse().unwrap(),
            "fe80::1:2".parse().unwrap(),
            "::ffff:192.0.2.33".parse().unwrap(),
        ];
        for ip in ips {
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, plain_ip(ip).to_string());
        }
        let mut mapped = String::new();
        push_ip(&mut mapped, "::ffff:192.0.2.33".parse().unwrap());
        assert_eq!(mapped, "192.0.2.33");
    }
}
