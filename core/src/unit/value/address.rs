//! The address grammar of `ListenStream=`, `ListenDatagram=` and
//! `ListenSequentialPacket=`, as systemd's `socket_address_parse()` reads it.

use std::net::SocketAddr;

/// A parsed listen address. `Display` prints systemd's normalised form
/// (`[::]:8080`, `127.0.0.1:8080`, `/path`, `@name`, `vsock::1234`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SocketAddress {
    /// IPv4 or IPv6 with port. A bare port parses as `[::]:port`.
    /// For IPv6 a `%iface` scope is resolved to its index and kept in the
    /// `SocketAddrV6` scope id.
    Inet(SocketAddr),
    /// AF_UNIX file-system path (absolute, at most 107 bytes).
    Unix(std::path::PathBuf),
    /// AF_UNIX abstract name, without the leading `@`/NUL.
    Abstract(Vec<u8>),
    /// AF_VSOCK; `cid` is `u32::MAX` (VMADDR_CID_ANY) when empty.
    Vsock { cid: u32, port: u32 },
}
