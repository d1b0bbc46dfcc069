//! The plain Rust form of what a plugin sees and returns.
//!
//! These types mirror the WIT's `request`, `verdict` and `env-edit` so that
//! the rest of flint never touches generated bindings or wasmtime. The
//! conversions to and from the WIT forms live here and are total: every
//! Rust value has a WIT form (unix paths that are not UTF-8 are converted
//! lossily), and every WIT value a plugin returns becomes either a Rust
//! value or a reason why it is refused.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::bindings::flint::policy::types as wit;

/// The kind of socket a unit listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ListenStream=`
    Stream,
    /// `ListenDatagram=`
    Datagram,
    /// `ListenSequentialPacket=`
    SequentialPacket,
    /// `ListenFIFO=`
    Fifo,
    /// `ListenSpecial=`
    Special,
    /// `ListenNetlink=`
    Netlink,
    /// `ListenMessageQueue=`
    MessageQueue,
    /// `ListenUSBFunction=`
    UsbFunction,
}

/// How the service is activated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationMode {
    /// `Accept=yes`: one service instance per connection.
    PerConnection,
    /// `Accept=no`: one service for the listening socket.
    WholeSocket,
}

/// One end of a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAddress {
    Ip(SocketAddr),
    UnixPath(PathBuf),
    /// Abstract namespace name, without the leading NUL.
    UnixAbstract(Vec<u8>),
    Vsock {
        cid: u32,
        port: u32,
    },
    Unnamed,
}

/// `SO_PEERCRED` of a unix socket peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Connections flint holds right now, before this one is counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Of this socket unit.
    pub socket: u32,
    /// From the same source address.
    pub source: u32,
}

/// The connection about to be handed to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub socket_unit: String,
    /// The listen directive's value as written in the unit.
    pub listen_address: String,
    pub fd_name: String,
    pub transport: Transport,
    pub mode: ActivationMode,
    pub local_address: Option<SocketAddress>,
    pub peer_address: Option<SocketAddress>,
    pub peer_credentials: Option<PeerCredentials>,
    pub active_connections: ConnectionCounts,
    /// The service that would be started.
    pub target_service: String,
    /// The environment the service would get, without the `LISTEN_*`
    /// variables (those are written at spawn).
    pub environment: Vec<(String, String)>,
    /// Bytes peeked from the connection (`PeekBytes=`), if any.
    pub peeked: Option<Vec<u8>>,
}

/// What the chain decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Start the target service.
    Allow,
    /// Refuse the connection, with a reason for the log.
    Deny(String),
    /// Start this unit instead of the target.
    Route(String),
}

/// An edit of the service's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvEdit {
    Set { name: String, value: String },
    Unset(String),
}

impl EnvEdit {
    /// The variable this edit touches.
    pub fn name(&self) -> &str {
        match self {
            EnvEdit::Set { name, .. } | EnvEdit::Unset(name) => name,
        }
    }

    /// Applies the edit to an environment list, keeping its order: a set
    /// replaces the first variable of that name (and drops duplicates) or
    /// appends; an unset removes every variable of that name.
    pub fn apply(&self, env: &mut Vec<(String, String)>) {
        match self {
            EnvEdit::Set { name, value } => {
                let mut found = false;
                env.retain_mut(|(n, v)| {
                    if n != name {
                        return true;
                    }
                    if found {
                        return false;
                    }
                    found = true;
                    v.clone_from(value);
                    true
                });
                if !found {
                    env.push((name.clone(), value.clone()));
                }
            }
            EnvEdit::Unset(name) => env.retain(|(n, _)| n != name),
        }
    }
}

impl Transport {
    fn to_wit(self) -> wit::Transport {
        match self {
            Transport::Stream => wit::Transport::StreamSocket,
            Transport::Datagram => wit::Transport::DatagramSocket,
            Transport::SequentialPacket => wit::Transport::SequentialPacketSocket,
            Transport::Fifo => wit::Transport::Fifo,
            Transport::Special => wit::Transport::Special,
            Transport::Netlink => wit::Transport::Netlink,
            Transport::MessageQueue => wit::Transport::MessageQueue,
            Transport::UsbFunction => wit::Transport::UsbFunction,
        }
    }
}

impl SocketAddress {
    fn to_wit(&self) -> wit::SocketAddress {
        match self {
            SocketAddress::Ip(sa) => {
                let address = match sa.ip() {
                    IpAddr::V4(v4) => {
                        let o = v4.octets();
                        wit::IpAddress::Ipv4((o[0], o[1], o[2], o[3]))
                    }
                    IpAddr::V6(v6) => {
                        let s = v6.segments();
                        wit::IpAddress::Ipv6((s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]))
                    }
                };
                wit::SocketAddress::Ip(wit::IpSocketAddress {
                    address,
                    port: sa.port(),
                })
            }
            SocketAddress::UnixPath(p) => {
                wit::SocketAddress::UnixPath(p.to_string_lossy().into_owned())
            }
            SocketAddress::UnixAbstract(name) => wit::SocketAddress::UnixAbstract(name.clone()),
            SocketAddress::Vsock { cid, port } => wit::SocketAddress::Vsock(wit::VsockAddress {
                cid: *cid,
                port: *port,
            }),
            SocketAddress::Unnamed => wit::SocketAddress::Unnamed,
        }
    }
}

impl Request {
    /// The WIT form handed to plugins.
    pub(crate) fn to_wit(&self) -> wit::Request {
        wit::Request {
            socket_unit: self.socket_unit.clone(),
            listen_address: self.listen_address.clone(),
            fd_name: self.fd_name.clone(),
            transport: self.transport.to_wit(),
            mode: match self.mode {
                ActivationMode::PerConnection => wit::ActivationMode::PerConnection,
                ActivationMode::WholeSocket => wit::ActivationMode::WholeSocket,
            },
            local_address: self.local_address.as_ref().map(SocketAddress::to_wit),
            peer_address: self.peer_address.as_ref().map(SocketAddress::to_wit),
            peer_credentials: self.peer_credentials.map(|c| wit::PeerCredentials {
                pid: c.pid,
                uid: c.uid,
                gid: c.gid,
            }),
            active_connections: wit::ConnectionCounts {
                socket: self.active_connections.socket,
                source: self.active_connections.source,
            },
            target_service: self.target_service.clone(),
            environment: self
                .environment
                .iter()
                .map(|(name, value)| wit::EnvVar {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            peeked: self.peeked.clone(),
        }
    }
}

/// Longest deny reason kept; longer ones are cut (on a char boundary).
pub(crate) const MAX_REASON_LEN: usize = 1024;
/// systemd's limit on unit names.
const MAX_UNIT_NAME_LEN: usize = 255;
/// Longest variable name or value a plugin may set.
const MAX_ENV_NAME_LEN: usize = 1024;
const MAX_ENV_VALUE_LEN: usize = 64 * 1024;

/// Cuts `s` to at most `max` bytes on a char boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Checks a routed unit name: a `.service` unit with only the characters
/// systemd allows in unit names.
pub(crate) fn check_route(unit: &str) -> Result<(), String> {
    let ok_chars = unit
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
    let stem = unit.strip_suffix(".service").unwrap_or("");
    if unit.len() > MAX_UNIT_NAME_LEN || !ok_chars || stem.is_empty() || stem.starts_with('@') {
        return Err(format!(
            "route to {:?}, which is not a valid .service unit name",
            truncate(unit.to_string(), 300)
        ));
    }
    Ok(())
}

/// Why an environment edit is refused, if it is.
pub(crate) fn refuse_env_edit(edit: &EnvEdit) -> Option<String> {
    let name = edit.name();
    if name.starts_with("LISTEN_") || name == "NOTIFY_SOCKET" {
        return Some("LISTEN_* and NOTIFY_SOCKET are set by flint".to_string());
    }
    if name.is_empty() || name.len() > MAX_ENV_NAME_LEN || name.contains(['=', '\0']) {
        return Some("not a valid variable name".to_string());
    }
    if let EnvEdit::Set { value, .. } = edit
        && (value.len() > MAX_ENV_VALUE_LEN || value.contains('\0'))
    {
        return Some("value too long or contains NUL".to_string());
    }
    None
}

impl From<wit::EnvEdit> for EnvEdit {
    fn from(e: wit::EnvEdit) -> EnvEdit {
        match e {
            wit::EnvEdit::Set(var) => EnvEdit::Set {
                name: var.name,
                value: var.value,
            },
            wit::EnvEdit::Unset(name) => EnvEdit::Unset(name),
        }
    }
}

impl EnvEdit {
    pub(crate) fn apply_wit(&self, env: &mut Vec<wit::EnvVar>) {
        let mut pairs: Vec<(String, String)> = env.drain(..).map(|v| (v.name, v.value)).collect();
        self.apply(&mut pairs);
        env.extend(
            pairs
                .into_iter()
                .map(|(name, value)| wit::EnvVar { name, value }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_edits_apply_in_place() {
        let mut env = vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "2".to_string()),
            ("A".to_string(), "3".to_string()),
        ];
        EnvEdit::Set {
            name: "A".into(),
            value: "x".into(),
        }
        .apply(&mut env);
        assert_eq!(env, [("A".into(), "x".into()), ("B".into(), "2".into())]);
        EnvEdit::Unset("B".into()).apply(&mut env);
        EnvEdit::Set {
            name: "C".into(),
            value: "y".into(),
        }
        .apply(&mut env);
        assert_eq!(env, [("A".into(), "x".into()), ("C".into(), "y".into())]);
    }

    #[test]
    fn protected_and_malformed_edits_are_refused() {
        let set = |n: &str, v: &str| EnvEdit::Set {
            name: n.into(),
            value: v.into(),
        };
        assert!(refuse_env_edit(&set("LISTEN_FDS", "3")).is_some());
        assert!(refuse_env_edit(&EnvEdit::Unset("LISTEN_PID".into())).is_some());
        assert!(refuse_env_edit(&set("NOTIFY_SOCKET", "/x")).is_some());
        assert!(refuse_env_edit(&set("A=B", "1")).is_some());
        assert!(refuse_env_edit(&set("", "1")).is_some());
        assert!(refuse_env_edit(&set("A", "x\0y")).is_some());
        assert!(refuse_env_edit(&set("LISTENER", "ok")).is_none());
    }

    #[test]
    fn routes_must_name_services() {
        assert!(check_route("web-a.test@.service").is_ok());
        assert!(check_route("other.service").is_ok());
        assert!(check_route("other.socket").is_err());
        assert!(check_route(".service").is_err());
        assert!(check_route("a/b.service").is_err());
        assert!(check_route("a b.service").is_err());
        assert!(check_route(&format!("{}.service", "a".repeat(300))).is_err());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo".to_string(), 2), "h");
        assert_eq!(truncate("abc".to_string(), 10), "abc");
    }
}
