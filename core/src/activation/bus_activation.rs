//! D-Bus activation through flint, as through systemd.
//!
//! A bus daemon told to leave activation to systemd (`dbus-daemon
//! --systemd-activation`, as Debian's and NixOS's `dbus.service` run it)
//! starts nothing itself for a bus name whose
//! `.service` file names a unit in `SystemdService=`: it signals
//! `ActivationRequest(unit)` to `org.freedesktop.systemd1` and holds the
//! caller's message until the name has an owner, or until systemd signals
//! `ActivationFailure(unit, error, text)`. Once the service flint runs as
//! `dbus.service` is up, flint takes `org.freedesktop.systemd1` on that bus
//! and does systemd's part: it starts the unit asked for (its aliases
//! resolved, `dbus-org.freedesktop.hostname1.service` is
//! `systemd-hostnamed.service`), and a unit it cannot load, or whose start
//! fails, it answers with `ActivationFailure`, so the waiting call fails at
//! once instead of at the bus daemon's timeout. systemctl's method calls
//! are answered as on the private socket (`manager_api`), those that
//! change units on the system bus only for root; peers that subscribed
//! are told of each service's change (`PropertiesChanged`), which
//! `systemctl --wait` waits for.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::bus::{self, Address, Bus, BusError};
use crate::listen::ListenKind;
use crate::unit::load::Unit;
use crate::unit::value::address::SocketAddress;

use super::Event;

/// The name systemd owns on the bus.
pub(super) const NAME: &str = "org.freedesktop.systemd1";
const ACTIVATOR: &str = "org.freedesktop.systemd1.Activator";

/// Whether `unit` is a bus daemon that leaves activation to systemd.
pub(super) fn is_bus_daemon(unit: &Unit) -> bool {
    let named = unit.id.as_str() == "dbus.service" || unit.name.as_str() == "dbus.service";
    named
        && unit
            .commands("Service", "ExecStart")
            .iter()
            .any(|c| c.argv.iter().any(|a| a == "--systemd-activation"))
}

/// flint's connection as `org.freedesktop.systemd1`.
#[derive(Debug)]
pub(super) struct Activator {
    sender: bus::Sender,
    /// How many peers called `Subscribe` and are still on the bus: unit
    /// changes are signalled while any is (systemd's `m->subscribed`).
    subscribers: Arc<AtomicUsize>,
}

/// The peers of the bus that subscribed, and the uids of callers looked
/// up (on the system bus, where only root's calls may change units).
#[derive(Default)]
struct Peers {
    subscribed: HashSet<String>,
    uids: HashMap<String, u32>,
}

impl Peers {
    /// A peer left the bus.
    fn gone(&mut self, name: &str) {
        self.subscribed.remove(name);
        self.uids.remove(name);
    }
}

impl Activator {
    /// On a thread of its own (the event loop never waits for the bus):
    /// connects to the bus at `address`, takes the name, sends
    /// [`Event::BusActivatorUp`], then reads the bus, sending
    /// [`Event::BusActivation`] for each request and
    /// [`Event::BusActivatorGone`] when the connection ends or cannot be
    /// made.
    pub(super) fn start(
        address: Address,
        user_mode: bool,
        control: Option<std::path::PathBuf>,
        tx: &UnboundedSender<Event>,
    ) {
        let subscribers = Arc::new(AtomicUsize::new(0));
        let spawned = std::thread::Builder::new()
            .name("bus-activator".into())
            .spawn({
                let tx = tx.clone();
                let subscribers = subscribers.clone();
                move || {
                    let gone = |e: BusError| {
                        let error = match e {
                            BusError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                                "the bus daemon closed the connection".to_string()
                            }
                            e => e.to_string(),
                        };
                        let _ = tx.send(Event::BusActivatorGone { error });
                    };
                    let setup = || -> Result<(Bus, bus::Sender), BusError> {
                        let mut conn = Bus::connect(&address, Duration::from_secs(5))?;
                        if !conn.request_name(NAME)? {
                            return Err(BusError::Call(format!("{NAME} has another owner")));
                        }
                        // Subscribers that leave the bus stop counting.
                        conn.add_match(
                            "type='signal',sender='org.freedesktop.DBus',\
                             interface='org.freedesktop.DBus',member='NameOwnerChanged',arg2=''",
                        )?;
                        let sender = conn.sender()?;
                        Ok((conn, sender))
                    };
                    // A bus daemon that reported ready may not answer yet
                    // (or be restarting): a few tries over about ten
                    // seconds before activation through flint is off.
                    let mut tried = setup();
                    for delay_ms in [100, 200, 400, 800, 1600, 2000, 2000, 2000] {
                        if tried.is_ok() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(delay_ms));
                        tried = setup();
                    }
                    let mut conn = match tried {
                        Ok((conn, sender)) => {
                            let up = Event::BusActivatorUp {
                                activator: Activator {
                                    sender,
                                    subscribers: subscribers.clone(),
                                },
                            };
                            if tx.send(up).is_err() {
                                return;
                            }
                            conn
                        }
                        Err(e) => return gone(e),
                    };
                    let Ok(out) = conn.sender() else {
                        return gone(BusError::Call("cannot share the connection".into()));
                    };
                    let pending = Arc::new(AtomicUsize::new(0));
                    let mut peers = Peers::default();
                    loop {
                        let m = match conn.next_message() {
                            Ok(m) => m,
                            Err(e) => return gone(e),
                        };
                        let h = &m.header;
                        let from_bus = h.sender.as_deref() == Some("org.freedesktop.DBus");
                        if h.kind == bus::METHOD_CALL {
                            let caller = h.sender.clone().unwrap_or_default();
                            let manager =
                                h.interface.as_deref() == Some(super::manager_api::MANAGER);
                            if manager {
                                match h.member.as_deref() {
                                    // A transient unit's starter pins it
                                    // (`AddRef`, which systemd-run sends
                                    // on a bus): systemd then signals it
                                    // the unit's changes, which
                                    // `systemd-run --wait` waits for.
                                    // The first subscriber: the manager
                                    // notes the units' states now, so that
                                    // the next change is told.
                                    Some("Subscribe" | "StartTransientUnit")
                                        if peers.subscribed.insert(caller.clone())
                                            && peers.subscribed.len() == 1 =>
                                    {
                                        subscribers.store(1, Ordering::Relaxed);
                                        let _ = tx.send(Event::BusSubscribed);
                                    }
                                    Some("Unsubscribe") => {
                                        peers.subscribed.remove(&caller);
                                    }
                                    _ => {}
                                }
                                subscribers.store(peers.subscribed.len(), Ordering::Relaxed);
                            }
                            // On the system bus any user may call: only
                            // root's calls change units there (systemd asks
                            // polkit for the others'), the rest only read.
                            // (The caller is looked up for those calls only.)
                            let changing = manager
                                && h.member
                                    .as_deref()
                                    .is_some_and(super::manager_api::changes_units);
                            let changes = user_mode
                                || changing && {
                                    let uid = match peers.uids.get(&caller) {
                                        Some(uid) => Some(*uid),
                                        None => conn.unix_user(&caller).ok(),
                                    };
                                    if let Some(uid) = uid {
                                        peers.uids.insert(caller, uid);
                                    }
                                    uid == Some(0)
                                };
                            let api = super::manager_api::Api {
                                control: control.as_deref(),
                                changes,
                                pending: &pending,
                            };
                            if let Err(e) =
                                super::private_socket::answer(&out, &m, user_mode, user_mode, &api)
                            {
                                return gone(e);
                            }
                        } else if h.kind == bus::SIGNAL
                            && from_bus
                            && h.member.as_deref() == Some("NameOwnerChanged")
                        {
                            if let Some(args) = bus::read_args("sss", &m.body)
                                && let [bus::Value::Str(name), _, bus::Value::Str(new)] =
                                    args.as_slice()
                                && new.is_empty()
                            {
                                peers.gone(name);
                                subscribers.store(peers.subscribed.len(), Ordering::Relaxed);
                            }
                        } else if h.kind == bus::SIGNAL
                            // Only the bus daemon's own requests count, as
                            // systemd checks (anyone may send the signal).
                            && h.sender.as_deref() == Some("org.freedesktop.DBus")
                            && h.path.as_deref() == Some("/org/freedesktop/DBus")
                            && h.interface.as_deref() == Some(ACTIVATOR)
                            && h.member.as_deref() == Some("ActivationRequest")
                            && let Some(unit) = m.first_string()
                            && tx.send(Event::BusActivation { unit }).is_err()
                        {
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            let _ = tx.send(Event::BusActivatorGone {
                error: format!("cannot start a thread: {e}"),
            });
        }
    }

    /// Signals that `unit`'s state or job changed (`PropertiesChanged` of
    /// its `org.freedesktop.systemd1.Unit` interface): `systemctl --wait`
    /// waits for these. (Only while a peer is subscribed, see
    /// [`super::Manager::tell_bus_unit_changed`].)
    fn unit_changed(&self, unit: &str, args: &[crate::bus::Value]) {
        if let Err(e) = self.sender.signal_values(
            None,
            &super::manager_api::unit_path(unit),
            super::manager_api::PROPERTIES,
            "PropertiesChanged",
            args,
        ) {
            tracing::debug!("{unit}: cannot signal its change on the bus: {e}");
        }
    }

    /// Sends the manager's signal `member` to the bus.
    pub(super) fn manager_signal(&self, member: &str, args: &[crate::bus::Value]) {
        if let Err(e) = self.sender.signal_values(
            None,
            super::manager_api::ROOT,
            super::manager_api::MANAGER,
            member,
            args,
        ) {
            tracing::debug!("flint: cannot send {member} on the bus: {e}");
        }
    }

    /// Whether any peer of the bus subscribed.
    pub(super) fn subscribed(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    /// Tells the bus daemon that `unit` cannot be started.
    pub(super) fn fail(&mut self, unit: &str, error: &str, text: &str) {
        if let Err(e) = self.sender.signal(
            "org.freedesktop.DBus",
            "/org/freedesktop/systemd1",
            ACTIVATOR,
            "ActivationFailure",
            &[unit, error, text],
        ) {
            tracing::debug!("{unit}: cannot tell the bus that its activation failed: {e}");
        }
    }
}

/// The states of the units other than services as last signalled to the
/// bus's subscribers: `ActiveState`, `SubState` and job by unit name.
#[derive(Default)]
pub(super) struct Seen {
    /// Whether `words` holds the states of the last look (the first look
    /// after a peer subscribed notes them without signalling).
    primed: bool,
    words: std::collections::HashMap<String, (&'static str, &'static str, Option<u64>)>,
}

impl super::Manager {
    /// Signals the changes of state and job of sockets and targets to the
    /// bus's subscribers (services' are signalled where they change), as
    /// systemd signals every unit's: cockpit's services page follows them.
    /// Nothing is looked at while no peer subscribed.
    pub(super) fn tell_bus_other_units(&mut self) {
        if !self.signals_listened() {
            if self.bus_seen.primed {
                self.bus_seen = Seen::default();
            }
            return;
        }
        let mut now: Vec<(String, &'static str, &'static str, Option<u64>)> = Vec::new();
        for i in 0..self.sockets.len() {
            if !self.sockets[i].removed {
                let (active, sub) = self.socket_state(i);
                now.push((self.sockets[i].name.clone(), active, sub, None));
            }
        }
        for (id, t) in &self.targets {
            let (active, sub) = if t.active {
                ("active", "active")
            } else {
                ("inactive", "dead")
            };
            let job = self.jobs.get(id).map(|j| j.serial);
            now.push((t.unit.id.to_string(), active, sub, job));
        }
        let primed = self.bus_seen.primed;
        for (name, active, sub, job) in now {
            let words = (active, sub, job);
            if self.bus_seen.words.get(&name) == Some(&words) {
                continue;
            }
            if primed {
                self.signal_unit_changed(&name, active, sub, job);
            }
            self.bus_seen.words.insert(name, words);
        }
        self.bus_seen.primed = true;
    }

    /// Signals a service's state and job on the bus, if anyone there
    /// subscribed.
    pub(super) fn tell_bus_unit_changed(&self, id: u64) {
        if !self.signals_listened() {
            return;
        }
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        let (active, sub) = self.service_words(id);
        let job = self.jobs.get(&id).map(|j| j.serial);
        self.signal_unit_changed(svc.unit.id.as_str(), active, sub, job);
    }

    /// Whether anyone listens for the units' changes: a subscriber of the
    /// bus (on the private socket flint signals only a job's end to its
    /// caller; `systemd-run --wait` and `systemctl --wait` follow units
    /// on the bus).
    pub(super) fn signals_listened(&self) -> bool {
        self.activator.as_ref().is_some_and(Activator::subscribed)
    }

    /// Signals that `unit`'s state or job changed (`PropertiesChanged` of
    /// its `org.freedesktop.systemd1.Unit` interface) to the bus's
    /// subscribers.
    fn signal_unit_changed(&self, unit: &str, active: &str, sub: &str, job: Option<u64>) {
        use crate::bus::Value;
        let changed = vec![
            ("ActiveState".to_string(), Value::Str(active.to_string())),
            ("SubState".to_string(), Value::Str(sub.to_string())),
            ("Job".to_string(), super::manager_api::job_value(job)),
        ];
        let args = vec![
            Value::Str("org.freedesktop.systemd1.Unit".into()),
            Value::Properties(changed),
            Value::Strings(Vec::new()),
        ];
        if let Some(activator) = self.activator.as_ref().filter(|a| Activator::subscribed(a)) {
            activator.unit_changed(unit, &args);
        }
    }

    /// A service is up: if it is the bus daemon, flint takes
    /// `org.freedesktop.systemd1` on its bus; the units asked for through
    /// the bus are no longer waited for.
    pub(super) fn on_service_up(&mut self, id: u64) {
        self.bus_activations.retain(|(_, waiting)| *waiting != id);
        let Some(svc) = self.services.get(&id) else {
            return;
        };
        if self.activator_for.is_some() || !is_bus_daemon(&svc.unit) {
            return;
        }
        let name = svc.unit.id.to_string();
        // The bus is where the socket flint passes to the bus daemon
        // listens; a bus daemon without one listens where buses do.
        let passed = svc.sockets.iter().find_map(|&i| {
            self.sockets
                .get(i)?
                .listeners
                .iter()
                .find_map(|l| match &l.kind {
                    ListenKind::Stream(SocketAddress::Unix(p)) => Some(Address::Path(p.clone())),
                    ListenKind::Stream(SocketAddress::Abstract(n)) => {
                        Some(Address::Abstract(n.clone()))
                    }
                    _ => None,
                })
        });
        let address = match passed.map_or_else(|| bus::default_address(self.search.user_mode), Ok) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("{name}: D-Bus activation through flint is off: {e}");
                return;
            }
        };
        tracing::debug!("{name}: taking {NAME} on its bus, for D-Bus activation");
        self.activator_for = Some(name);
        Activator::start(
            address,
            self.search.user_mode,
            self.control_node.clone(),
            &self.tx,
        );
    }

    /// flint took `org.freedesktop.systemd1` on the bus.
    pub(super) fn on_activator_up(&mut self, activator: Activator) {
        let name = self.activator_for.clone().unwrap_or_default();
        tracing::info!("{name}: flint is {NAME} on its bus, for D-Bus activation");
        self.activator = Some(activator);
    }

    /// flint's connection as `org.freedesktop.systemd1` ended, or could
    /// not be made.
    pub(super) fn on_activator_gone(&mut self, error: &str) {
        let name = self.activator_for.take().unwrap_or_default();
        if self.activator.take().is_some() {
            tracing::info!("{name}: flint is no longer {NAME} on its bus: {error}");
        } else {
            tracing::warn!("{name}: D-Bus activation through flint is off: {error}");
        }
        self.bus_activations.clear();
    }

    /// The bus daemon asks for `unit` (`ActivationRequest`).
    pub(super) fn bus_activate(&mut self, unit: &str) {
        let known = unit
            .parse::<crate::unit::name::UnitName>()
            .ok()
            .filter(|n| crate::unit::loader::resolve(&self.search, n).is_ok());
        if known.is_none() {
            tracing::warn!("{unit}: D-Bus activation requested, but the unit cannot be found");
            if let Some(a) = &mut self.activator {
                a.fail(
                    unit,
                    "org.freedesktop.systemd1.NoSuchUnit",
                    &format!("Unit {unit} not found."),
                );
            }
            return;
        }
        tracing::info!("{unit}: starting on a D-Bus activation request");
        self.enqueue_name(unit, super::jobs::JobKind::Start);
        match self.find_service(unit) {
            Some(id) => {
                let running = self
                    .services
                    .get(&id)
                    .is_some_and(|s| s.state == super::lifecycle::State::Running);
                let entry = (unit.to_string(), id);
                if !running && !self.bus_activations.contains(&entry) {
                    self.bus_activations.push(entry);
                }
            }
            None => {
                if let Some(a) = &mut self.activator {
                    a.fail(
                        unit,
                        "org.freedesktop.systemd1.LoadFailed",
                        &format!("Unit {unit} failed to load; see flint's log."),
                    );
                }
            }
        }
    }
}

/// A service ended without a restart: the bus activations waiting for it
/// (in `waiting`) end too, with `ActivationFailure` if it failed (its
/// `result`).
pub(super) fn ended(
    waiting: &mut Vec<(String, u64)>,
    activator: Option<&mut Activator>,
    id: u64,
    result: Option<&str>,
) {
    let (ended, rest): (Vec<_>, Vec<_>) = std::mem::take(waiting)
        .into_iter()
        .partition(|(_, w)| *w == id);
    *waiting = rest;
    let (Some(a), Some(result)) = (activator, result) else {
        return;
    };
    for (unit, _) in ended {
        a.fail(
            &unit,
            "org.freedesktop.systemd1.UnitFailed",
            &format!("Unit {unit} failed with result '{result}'."),
        );
    }
}
