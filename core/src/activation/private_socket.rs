//! systemd's private socket for `flint run --user`:
//! `$XDG_RUNTIME_DIR/systemd/private`, where `systemctl --user` talks to
//! its manager (peer-to-peer D-Bus, no bus daemon); for a system flint
//! `/run/systemd/private`, where root's `systemctl` does, served only
//! where `/run/systemd/system` exists (elsewhere systemctl says the
//! machine was not booted with systemd and calls nothing).
//!
//! Without it, `systemctl --user` falls back to the session bus, and when
//! flint itself is about to start that bus (Debian's user `dbus.socket`
//! runs `systemctl --user set-environment DBUS_SESSION_BUS_ADDRESS=…` in
//! its `ExecStartPost=`, before flint watches the bus socket), it waits on
//! a socket nobody serves yet until the hook's timeout. flint answers
//! here the environment calls (`SetEnvironment`, `UnsetEnvironment`,
//! `UnsetAndSetEnvironment` of `org.freedesktop.systemd1.Manager`: the
//! block services started from then on get, as under systemd, and the
//! manager's `Environment` property), the calls `systemctl` makes for its
//! jobs and units ([`super::manager_api`]), and every other call with an
//! error, so `systemctl --user` never waits. A socket that a running
//! systemd user manager serves is left alone.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::bus::{self, Bus, Message, Sender, Value};

use super::manager_api::{MANAGER, ROOT};

/// Peers served at once on the private socket, each on a thread of its
/// own (a script's many `systemctl is-active` at once: 200 in parallel
/// all got their answer; with 32, 46 of them failed).
const PEERS: usize = 512;

/// Connections waiting to be accepted (std's 128 refused the 129th of a
/// burst; systemd's sockets take 4096).
const BACKLOG: i32 = 4096;

/// The peers connected now: the manager's signals go to every one, as
/// systemd sends them to every direct connection, subscribed or not.
static PEERS_NOW: Mutex<Vec<Peer>> = Mutex::new(Vec::new());

/// The number of the next peer.
static NEXT_PEER: AtomicU64 = AtomicU64::new(1);

/// Whether flint's start has finished (`StartupFinished` was sent).
static STARTUP_FINISHED: AtomicBool = AtomicBool::new(false);

/// A peer of the private socket, as the signals reach it.
struct Peer {
    id: u64,
    out: Sender,
    /// Its count of what it waits for: while flint starts, a silent peer
    /// is kept (`systemctl is-system-running --wait` waits for
    /// `StartupFinished` without a word).
    pending: Arc<AtomicUsize>,
    held: bool,
}

/// Notes a new peer; returns its number, for [`forget_peer`].
fn note_peer(out: &Sender, pending: &Arc<AtomicUsize>) -> u64 {
    let id = NEXT_PEER.fetch_add(1, Ordering::Relaxed);
    let mut peers = PEERS_NOW.lock().unwrap_or_else(PoisonError::into_inner);
    let held = !STARTUP_FINISHED.load(Ordering::Acquire);
    if held {
        pending.fetch_add(1, Ordering::AcqRel);
    }
    peers.push(Peer {
        id,
        out: out.clone(),
        pending: pending.clone(),
        held,
    });
    id
}

/// A peer that went.
fn forget_peer(id: u64) {
    PEERS_NOW
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|p| p.id != id);
}

/// flint's start is finished: `StartupFinished` with `args` (systemd's
/// `tttttt`) to every peer, and the peers held for it may go idle again.
/// Written on a thread of its own: a peer that reads nothing (its socket
/// full, each write bounded by the peer's 5 s timeout) holds up no one
/// but the others' signals, never flint's event loop.
pub(super) fn startup_finished(args: &[Value]) {
    let mut to: Vec<(Sender, Option<Arc<AtomicUsize>>)> = Vec::new();
    {
        let mut peers = PEERS_NOW.lock().unwrap_or_else(PoisonError::into_inner);
        STARTUP_FINISHED.store(true, Ordering::Release);
        for p in peers.iter_mut() {
            let held = std::mem::take(&mut p.held).then(|| p.pending.clone());
            to.push((p.out.clone(), held));
        }
    }
    if to.is_empty() {
        return;
    }
    let args = args.to_vec();
    let send = move || {
        for (out, held) in to {
            let _ = out.signal_values(None, ROOT, MANAGER, "StartupFinished", &args);
            if let Some(pending) = held {
                pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("private-signals".into())
        .spawn(send)
    {
        tracing::warn!("flint: cannot send StartupFinished to systemctl's peers: {e}");
    }
}

/// Binds the private socket with [`BACKLOG`].
fn bind_private(path: &std::path::Path) -> std::io::Result<UnixListener> {
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Serves the private socket on a thread of its own; returns its path,
/// to be removed when flint stops, or `None` where there is none to serve.
pub(super) fn serve(user_mode: bool, control: Option<PathBuf>) -> Option<PathBuf> {
    let dir = if user_mode {
        PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?).join("systemd")
    } else {
        // systemctl talks to a system manager only where /run/systemd/system
        // says systemd booted the machine (a container's setup may make it
        // so for flint): then root's systemctl finds this flint on
        // /run/systemd/private, as systemd's, and needs no bus (cockpit's
        // ExecStartPost= runs `systemctl show`, which through the system
        // bus waited for the bus daemon its own socket's start held back).
        if !std::path::Path::new("/run/systemd/system").is_dir() {
            return None;
        }
        PathBuf::from("/run/systemd")
    };
    let path = dir.join("private");
    if UnixStream::connect(&path).is_ok() {
        tracing::debug!(
            "{}: served by a systemd manager; left alone",
            path.display()
        );
        return None;
    }
    let bound = std::fs::create_dir_all(&dir)
        .and_then(|()| match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .and_then(|()| bind_private(&path))
        .and_then(|l| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            Ok(l)
        });
    let listener = match bound {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(
                "flint: {}: {e}; systemctl cannot reach this flint",
                path.display()
            );
            return None;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("private-socket".into())
        .spawn(move || {
            // Each peer on a thread of its own, so one that holds its
            // connection open (or stalls in the handshake) keeps no other
            // waiting; at most PEERS at once, further ones are closed.
            let open = Arc::new(AtomicUsize::new(0));
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let me = nix::unistd::geteuid().as_raw();
                let peer =
                    nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials)
                        .map(|c| c.uid());
                if !matches!(peer, Ok(uid) if uid == me || uid == 0) {
                    continue;
                }
                if open.fetch_add(1, Ordering::AcqRel) >= PEERS {
                    open.fetch_sub(1, Ordering::AcqRel);
                    tracing::warn!(
                        "flint: {PEERS} peers on the private socket already; closing a new one"
                    );
                    continue;
                }
                let count = open.clone();
                let control = control.clone();
                let served = std::thread::Builder::new()
                    .name("private-peer".into())
                    .spawn(move || {
                        let Ok(mut peer) = Bus::accept_peer(conn, Duration::from_secs(5)) else {
                            count.fetch_sub(1, Ordering::AcqRel);
                            return;
                        };
                        // As systemd's private socket: every message
                        // from `org.freedesktop.systemd1`.
                        let Ok(out) = peer.sender().map(|s| s.named(super::bus_activation::NAME))
                        else {
                            count.fetch_sub(1, Ordering::AcqRel);
                            return;
                        };
                        let pending = Arc::new(AtomicUsize::new(0));
                        let peer_id = note_peer(&out, &pending);
                        let api = super::manager_api::Api {
                            control: control.as_deref(),
                            changes: true,
                            pending: &pending,
                        };
                        loop {
                            match peer.read() {
                                Ok(msg) => {
                                    if answer(&out, &msg, true, user_mode, &api).is_err() {
                                        break;
                                    }
                                }
                                // A peer silent for 5 s goes, unless it
                                // waits for the end of a job.
                                Err(bus::BusError::Io(e))
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) && pending.load(Ordering::Acquire) > 0 => {}
                                Err(_) => break,
                            }
                        }
                        forget_peer(peer_id);
                        count.fetch_sub(1, Ordering::AcqRel);
                    });
                if served.is_err() {
                    open.fetch_sub(1, Ordering::AcqRel);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("flint: cannot serve {}: {e}", path.display());
        let _ = std::fs::remove_file(&path);
        return None;
    }
    Some(path)
}

/// Answers one message of a peer on the private socket, or of a client of
/// the user's bus (`dbus-update-activation-environment --systemd` calls
/// the same methods there). `environment`: whether the environment calls
/// are taken (on the system bus they are refused: any user may send them
/// there, and systemd asks polkit first); `user_mode`: whose environment
/// they read and change, the user manager's or the system manager's.
pub(super) fn answer(
    peer: &Sender,
    msg: &Message,
    environment: bool,
    user_mode: bool,
    api: &super::manager_api::Api,
) -> Result<(), bus::BusError> {
    let h = &msg.header;
    if h.kind != bus::METHOD_CALL {
        return Ok(());
    }
    if super::manager_api::answer(peer, msg, api)? {
        return Ok(());
    }
    let wants_reply = h.flags & 1 == 0;
    let member = h.member.as_deref().unwrap_or("");
    let change = match (h.interface.as_deref(), member) {
        (Some(MANAGER), "SetEnvironment") => {
            bus::read_string_arrays(&msg.body, 1).map(|mut a| (Vec::new(), a.remove(0)))
        }
        (Some(MANAGER), "UnsetEnvironment") => {
            bus::read_string_arrays(&msg.body, 1).map(|mut a| (a.remove(0), Vec::new()))
        }
        (Some(MANAGER), "UnsetAndSetEnvironment") => {
            bus::read_string_arrays(&msg.body, 2).map(|mut a| {
                let set = a.remove(1);
                (a.remove(0), set)
            })
        }
        // `systemctl --user show-environment`: the manager's
        // `Environment` property, the block services get.
        (Some("org.freedesktop.DBus.Properties"), "Get")
            if environment
                && msg
                    .two_strings()
                    .is_some_and(|(i, p)| i == MANAGER && p == "Environment") =>
        {
            if !wants_reply {
                return Ok(());
            }
            let mut block: Vec<String> = crate::service::defaults::environment(user_mode)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            block.sort();
            return peer.reply(h, &[Value::Variant(Box::new(Value::Strings(block)))]);
        }
        (Some("org.freedesktop.DBus.Peer"), "Ping") => {
            return if wants_reply {
                peer.reply(h, &[])
            } else {
                Ok(())
            };
        }
        _ => {
            if !wants_reply {
                return Ok(());
            }
            let text = format!(
                "flint answers D-Bus activation, the calls of {MANAGER} that systemctl makes for its jobs, units and environment, and the units' properties; {}.{member} is not handled",
                h.interface.as_deref().unwrap_or("?")
            );
            return peer.reply_error(h, "org.freedesktop.DBus.Error.UnknownMethod", &text);
        }
    };
    if !environment {
        return if wants_reply {
            peer.reply_error(
                h,
                "org.freedesktop.DBus.Error.AccessDenied",
                "flint changes its environment only for the user's own bus and for systemctl --user",
            )
        } else {
            Ok(())
        };
    }
    let arrays = if member == "UnsetAndSetEnvironment" {
        "asas"
    } else {
        "as"
    };
    let Some((unset, set)) = change.filter(|_| h.signature.as_deref() == Some(arrays)) else {
        return if wants_reply {
            peer.reply_error(
                h,
                "org.freedesktop.DBus.Error.InvalidArgs",
                &format!("expected arguments of signature {arrays}"),
            )
        } else {
            Ok(())
        };
    };
    match crate::service::defaults::change_client_environment(user_mode, &unset, &set) {
        Ok(()) => {
            if wants_reply {
                peer.reply(h, &[])
            } else {
                Ok(())
            }
        }
        Err(e) if wants_reply => {
            peer.reply_error(h, "org.freedesktop.DBus.Error.InvalidArgs", &e.to_string())
        }
        Err(_) => Ok(()),
    }
}
