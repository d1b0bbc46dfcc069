//! Opening the listeners of a socket unit: a typed [`ListenKind`] plus
//! [`SocketOptions`] in, an open fd with every option applied out.
//!
//! [`open`] follows systemd's creation order per listener (reference §4.2):
//! `socket()` with CLOEXEC|NONBLOCK → `IPV6_V6ONLY` per `BindIPv6Only=` →
//! (IP only) `SO_BINDTODEVICE`, `SO_REUSEPORT`, `IP_FREEBIND`,
//! `IP_TRANSPARENT` → `SO_REUSEADDR` → parent directories and `bind()` (a
//! stale AF_UNIX node is unlinked and the bind retried once) → `listen()` for
//! stream and seqpacket → touch the node → the option list → `Symlinks=` →
//! `SocketUser=`/`SocketGroup=` ownership.
//!
//! What fails the listener (an error naming the address and the errno) and
//! what only warns is systemd's split: socket, bind, listen, `IPV6_V6ONLY`,
//! `SO_BINDTODEVICE`, `SO_REUSEADDR`, node mode and chown fail; the option
//! list, `SO_REUSEPORT`/`FREEBIND`/`TRANSPARENT` and symlinks only add to
//! [`Listener::warnings`].
//!
//! `SocketMode=` without touching the process-wide umask: systemd binds
//! under `umask(~SocketMode)`, which is not thread-safe in flint. Instead the
//! unbound socket gets `fchmod(SocketMode)` (Linux creates the node from the
//! socket inode's mode minus the umask, so the node is never more open than
//! `SocketMode=`), and after `bind()` the node is `chmod`ed to exactly
//! `SocketMode=`. FIFOs and message queues keep systemd's rule of
//! `SocketMode=` minus the umask, created by `mkfifo`/`mq_open` with the mode.

mod netlink;
mod options;
#[cfg(test)]
mod tests;

use std::ffi::{CString, OsStr};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::unit::value::address::SocketAddress;

pub use netlink::netlink_family_from_name;

/// One `Listen*=` line of a socket unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenKind {
    Stream(SocketAddress),
    Datagram(SocketAddress),
    SequentialPacket(SocketAddress),
    Fifo(PathBuf),
    Special(PathBuf),
    /// `ListenNetlink=FAMILY [GROUP]`; the family is a name from systemd's
    /// table (`route`, `audit`, `kobject-uevent`, …) or a number.
    Netlink {
        family: String,
        group: u32,
    },
    /// POSIX message queue name, starting with `/`.
    MessageQueue(String),
}

impl ListenKind {
    /// The file-system node this listener creates, if any: the AF_UNIX path
    /// or the FIFO. `Symlinks=` point to it.
    pub fn node_path(&self) -> Option<&Path> {
        match self {
            ListenKind::Stream(SocketAddress::Unix(p))
            | ListenKind::Datagram(SocketAddress::Unix(p))
            | ListenKind::SequentialPacket(SocketAddress::Unix(p))
            | ListenKind::Fifo(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for ListenKind {
    /// The address as systemd prints it (`127.0.0.1:80`, `[::]:80`, `/run/x`,
    /// `@name`, `vsock:2:80`), or the path, netlink family or queue name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenKind::Stream(a) | ListenKind::Datagram(a) | ListenKind::SequentialPacket(a) => {
                match a {
                    SocketAddress::Inet(sa) => write!(f, "{sa}"),
                    SocketAddress::Unix(p) => write!(f, "{}", p.display()),
                    SocketAddress::Abstract(name) => {
                        write!(f, "@{}", String::from_utf8_lossy(name))
                    }
                    SocketAddress::Vsock { cid, port } if *cid == u32::MAX => {
                        write!(f, "vsock::{port}")
                    }
                    SocketAddress::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
                }
            }
            ListenKind::Fifo(p) | ListenKind::Special(p) => write!(f, "{}", p.display()),
            ListenKind::Netlink { family, group } => write!(f, "netlink {family} {group}"),
            ListenKind::MessageQueue(name) => f.write_str(name),
        }
    }
}

/// `BindIPv6Only=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindIpv6Only {
    /// Leave `IPV6_V6ONLY` to the `net.ipv6.bindv6only` sysctl.
    #[default]
    Default,
    /// `IPV6_V6ONLY=0`: an `[::]` listener also takes IPv4 clients.
    Both,
    /// `IPV6_V6ONLY=1`.
    Ipv6Only,
}

/// `Timestamping=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timestamping {
    #[default]
    Off,
    /// `SO_TIMESTAMP`.
    Microseconds,
    /// `SO_TIMESTAMPNS`.
    Nanoseconds,
}

/// `SocketProtocol=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketProtocol {
    UdpLite,
    Sctp,
    Mptcp,
}

impl SocketProtocol {
    fn number(self) -> i32 {
        match self {
            SocketProtocol::UdpLite => libc::IPPROTO_UDPLITE,
            SocketProtocol::Sctp => libc::IPPROTO_SCTP,
            SocketProtocol::Mptcp => libc::IPPROTO_MPTCP,
        }
    }
}

/// The `[Socket]` options that shape a listener. `Default` is systemd's
/// default for every field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// `SocketMode=` (0666).
    pub socket_mode: u32,
    /// `DirectoryMode=` (0755) for parent directories flint creates.
    pub directory_mode: u32,
    pub bind_ipv6_only: BindIpv6Only,
    /// `Backlog=`; values above `i32::MAX` are clamped (the kernel caps at
    /// `somaxconn` anyway).
    pub backlog: u32,
    pub bind_to_device: Option<String>,
    pub free_bind: bool,
    pub transparent: bool,
    pub reuse_port: bool,
    pub socket_protocol: Option<SocketProtocol>,
    pub keep_alive: bool,
    pub keep_alive_time: Option<Duration>,
    pub keep_alive_interval: Option<Duration>,
    pub keep_alive_probes: Option<u32>,
    pub no_delay: bool,
    pub defer_accept: Option<Duration>,
    pub priority: Option<i32>,
    pub mark: Option<u32>,
    pub receive_buffer: Option<u64>,
    pub send_buffer: Option<u64>,
    pub pass_credentials: bool,
    pub pass_pidfd: bool,
    pub pass_security: bool,
    pub pass_packet_info: bool,
    /// `AcceptFileDescriptors=` (yes); `false` sets `SO_PASSRIGHTS=0`.
    pub pass_rights: bool,
    pub broadcast: bool,
    pub timestamping: Timestamping,
    pub ip_tos: Option<i32>,
    pub ip_ttl: Option<u32>,
    pub tcp_congestion: Option<String>,
    pub pipe_size: Option<u64>,
    /// `Writable=`: open `ListenSpecial=` read-write.
    pub writable: bool,
    /// `SocketUser=`/`SocketGroup=` as numeric ids; the caller resolves names
    /// and the user's primary group. `None` leaves that id unchanged.
    pub socket_user: Option<u32>,
    pub socket_group: Option<u32>,
    pub symlinks: Vec<PathBuf>,
    /// `RemoveOnStop=`; also lets `Symlinks=` replace an existing file.
    pub remove_on_stop: bool,
    pub mq_max_messages: Option<i64>,
    pub mq_message_size: Option<i64>,
    /// `IPAddressAllow=`/`IPAddressDeny=` of the socket unit: a filter on
    /// IPv4 and IPv6 sockets for what arrives.
    pub ip_access: Option<crate::service::firewall::AccessList>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            socket_mode: 0o666,
            directory_mode: 0o755,
            bind_ipv6_only: BindIpv6Only::Default,
            backlog: i32::MAX.unsigned_abs(),
            bind_to_device: None,
            free_bind: false,
            transparent: false,
            reuse_port: false,
            socket_protocol: None,
            keep_alive: false,
            keep_alive_time: None,
            keep_alive_interval: None,
            keep_alive_probes: None,
            no_delay: false,
            defer_accept: None,
            priority: None,
            mark: None,
            receive_buffer: None,
            send_buffer: None,
            pass_credentials: false,
            pass_pidfd: false,
            pass_security: false,
            pass_packet_info: false,
            pass_rights: true,
            broadcast: false,
            timestamping: Timestamping::Off,
            ip_tos: None,
            ip_ttl: None,
            tcp_congestion: None,
            pipe_size: None,
            writable: false,
            socket_user: None,
            socket_group: None,
            symlinks: Vec::new(),
            remove_on_stop: false,
            mq_max_messages: None,
            mq_message_size: None,
            ip_access: None,
        }
    }
}

/// An open listener.
#[derive(Debug)]
pub struct Listener {
    pub fd: OwnedFd,
    pub kind: ListenKind,
    /// Option failures systemd only warns about, one message each.
    pub warnings: Vec<String>,
}

/// Why a listener could not be opened. `address` is the listener as
/// [`ListenKind`] displays it.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot create a socket for {address}: {source}")]
    Socket { address: String, source: io::Error },
    #[error("cannot set {option} on {address}: {source}")]
    SetOption {
        address: String,
        option: &'static str,
        source: io::Error,
    },
    #[error("cannot create the parent directories of {address}: {source}")]
    Directory { address: String, source: io::Error },
    #[error("cannot bind {address}: {source}")]
    Bind { address: String, source: io::Error },
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: io::Error },
    #[error("cannot set mode {mode:04o} on {address}: {source}")]
    Mode {
        address: String,
        mode: u32,
        source: io::Error,
    },
    #[error("cannot create {address}: {source}")]
    Create { address: String, source: io::Error },
    #[error("cannot open {address}: {source}")]
    Open { address: String, source: io::Error },
    #[error("{address} exists but is not a FIFO")]
    NotFifo { address: String },
    #[error("{address} exists with another mode or owner than configured")]
    ModeOrOwnerMismatch { address: String },
    #[error("{address} is neither a regular file nor a character device")]
    NotSpecial { address: String },
    #[error("unknown netlink family {0:?}")]
    NetlinkFamily(String),
    #[error("invalid message queue name {0:?}: must be '/' followed by a name without '/'")]
    MessageQueueName(String),
    #[error("cannot change the owner of {address}: {source}")]
    Chown { address: String, source: io::Error },
}

/// Opens one listener with every option applied, in systemd's order.
pub fn open(kind: &ListenKind, opts: &SocketOptions) -> Result<Listener, ListenError> {
    let address = kind.to_string();
    let mut warnings = Vec::new();
    let fd = match kind {
        ListenKind::Stream(a) => open_socket(a, Type::STREAM, &address, opts, &mut warnings)?,
        ListenKind::Datagram(a) => open_socket(a, Type::DGRAM, &address, opts, &mut warnings)?,
        ListenKind::SequentialPacket(a) => {
            open_socket(a, Type::SEQPACKET, &address, opts, &mut warnings)?
        }
        ListenKind::Fifo(path) => open_fifo(path, &address, opts, &mut warnings)?,
        ListenKind::Special(path) => open_special(path, &address, opts)?,
        ListenKind::Netlink { family, group } => {
            open_netlink(family, *group, &address, opts, &mut warnings)?
        }
        ListenKind::MessageQueue(name) => open_mqueue(name, &address, opts)?,
    };
    if let Some(target) = kind.node_path() {
        create_symlinks(target, opts, &mut warnings);
    }
    chown_node(kind, fd.as_fd(), &address, opts)?;
    Ok(Listener {
        fd,
        kind: kind.clone(),
        warnings,
    })
}

/// Errors of `accept4()` that concern one connection, not the listener:
/// the peer reset or abandoned it before it was taken, or the kernel passes
/// on a network error pending on it (accept(2), "Error handling"), or a
/// firewall refused it (`EPERM`). The listener goes on accepting. This is
/// systemd's `ERRNO_IS_ACCEPT_AGAIN()` (`EAGAIN` included), plus `EPERM`.
pub fn accept_again(e: nix::errno::Errno) -> bool {
    use nix::errno::Errno;
    matches!(
        e,
        Errno::EAGAIN
            | Errno::EINTR
            | Errno::ENETDOWN
            | Errno::EPROTO
            | Errno::ENOPROTOOPT
            | Errno::EHOSTDOWN
            | Errno::ENONET
            | Errno::EHOSTUNREACH
            | Errno::EOPNOTSUPP
            | Errno::ENETUNREACH
            | Errno::ECONNABORTED
            | Errno::ECONNREFUSED
            | Errno::ECONNRESET
            | Errno::ETIMEDOUT
            | Errno::EPERM
    )
}

/// Applies systemd's option list to an accepted connection (`Accept=yes`),
/// as systemd does for every connection it accepts: keep-alive settings,
/// `NoDelay=`, buffers, priority, mark, `IPTOS=`, `IPTTL=`, congestion
/// control and the pass-* flags. Returns the warnings.
pub fn apply_accepted_options(fd: BorrowedFd<'_>, opts: &SocketOptions) -> Vec<String> {
    let mut warnings = Vec::new();
    // Most sockets set no option that depends on the family.
    let family = if options::needs_family(opts) {
        options::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN).unwrap_or(0)
    } else {
        0
    };
    options::apply(fd, family, opts, "accepted connection", &mut warnings);
    warnings
}

/// Applies changed options to a listener that stays open (a switch to a
/// new unit tree kept its address). What the kernel allows changes in
/// place: the option list, `Backlog=` (by listening again), and the mode
/// and owner of an AF_UNIX node. Options that only take effect at `bind()`
/// (`BindIPv6Only=`, `BindToDevice=`, `FreeBind=`, `Transparent=`,
/// `ReusePort=`, `SocketProtocol=`) are reported as needing the socket to be
/// stopped and started; the listener is never closed here. Returns the
/// warnings.
pub fn update(
    fd: BorrowedFd<'_>,
    kind: &ListenKind,
    old: &SocketOptions,
    new: &SocketOptions,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if old == new {
        return warnings;
    }
    let text = kind.to_string();
    let bind_time = [
        ("BindIPv6Only=", old.bind_ipv6_only != new.bind_ipv6_only),
        ("BindToDevice=", old.bind_to_device != new.bind_to_device),
        ("FreeBind=", old.free_bind != new.free_bind),
        ("Transparent=", old.transparent != new.transparent),
        ("ReusePort=", old.reuse_port != new.reuse_port),
        (
            "SocketProtocol=",
            old.socket_protocol != new.socket_protocol,
        ),
    ];
    for (name, changed) in bind_time {
        if changed {
            warnings.push(format!(
                "{text}: {name} changed; it takes effect when the socket is stopped and started"
            ));
        }
    }
    let family = options::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN).unwrap_or(0);
    // Flags turned off are cleared first: the option list only sets.
    let sol = libc::SOL_SOCKET;
    let cleared = [
        (
            old.keep_alive && !new.keep_alive,
            sol,
            libc::SO_KEEPALIVE,
            "SO_KEEPALIVE",
        ),
        (
            old.broadcast && !new.broadcast,
            sol,
            libc::SO_BROADCAST,
            "SO_BROADCAST",
        ),
        (
            old.pass_credentials && !new.pass_credentials,
            sol,
            libc::SO_PASSCRED,
            "SO_PASSCRED",
        ),
        (
            old.no_delay && !new.no_delay,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            "TCP_NODELAY",
        ),
    ];
    for (clear, level, name, label) in cleared {
        if clear && let Err(e) = options::setsockopt_int(fd, level, name, 0) {
            warnings.push(format!("{text}: clearing {label} failed: {e}"));
        }
    }
    if old.pass_pidfd
        && !new.pass_pidfd
        && let Err(e) = options::setsockopt_int(fd, sol, options::SO_PASSPIDFD, 0)
    {
        warnings.push(format!("{text}: clearing SO_PASSPIDFD failed: {e}"));
    }
    // AcceptFileDescriptors= back to yes: file descriptors pass again.
    if !old.pass_rights
        && new.pass_rights
        && let Err(e) = options::setsockopt_int(fd, sol, options::SO_PASSRIGHTS, 1)
    {
        warnings.push(format!("{text}: setting SO_PASSRIGHTS failed: {e}"));
    }
    options::apply(fd, family, new, &text, &mut warnings);
    if old.ip_access != new.ip_access
        && matches!(family, libc::AF_INET | libc::AF_INET6)
        && let Err(e) = crate::service::firewall::set_socket_filter(fd, new.ip_access.as_ref())
    {
        warnings.push(format!(
            "{text}: IPAddressAllow=/IPAddressDeny= could not be changed: {e}"
        ));
    }
    let listening = options::getsockopt_int(fd, sol, libc::SO_ACCEPTCONN).unwrap_or(0) != 0;
    if listening && old.backlog != new.backlog {
        let backlog = i32::try_from(new.backlog).unwrap_or(i32::MAX);
        // SAFETY: listen() on an fd this process owns, with an int backlog;
        // on a listening socket it only changes the backlog.
        if unsafe { libc::listen(fd.as_raw_fd(), backlog) } != 0 {
            warnings.push(format!(
                "{text}: Backlog= could not be changed: {}",
                io::Error::last_os_error()
            ));
        }
    }
    if let Some(path) = kind.node_path() {
        if old.socket_mode != new.socket_mode {
            use std::os::unix::fs::PermissionsExt;
            if let Err(e) = std::fs::set_permissions(
                path,
                std::fs::Permissions::from_mode(new.socket_mode & 0o7777),
            ) {
                warnings.push(format!("{text}: SocketMode= could not be applied: {e}"));
            }
        }
        if (old.socket_user, old.socket_group) != (new.socket_user, new.socket_group)
            && let Err(e) = std::os::unix::fs::chown(path, new.socket_user, new.socket_group)
        {
            warnings.push(format!(
                "{text}: SocketUser=/SocketGroup= could not be applied: {e}"
            ));
        }
    }
    warnings
}

/// `RemoveOnStop=`: removes the AF_UNIX node, FIFO or message queue of
/// `kind` and every `Symlinks=` entry. Missing files are not an error; the
/// caller decides whether `RemoveOnStop=` applies.
pub fn remove_nodes(kind: &ListenKind, opts: &SocketOptions) {
    if let Some(path) = kind.node_path() {
        let _ = std::fs::remove_file(path);
    }
    if let ListenKind::MessageQueue(name) = kind
        && let Ok(c_name) = CString::new(name.as_bytes())
    {
        // SAFETY: mq_unlink only reads the NUL-terminated name.
        unsafe {
            libc::mq_unlink(c_name.as_ptr());
        }
    }
    for link in &opts.symlinks {
        let _ = std::fs::remove_file(link);
    }
}

fn io_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Creates the missing parent directories of `path` with `mode` (minus the
/// umask, as systemd's `mkdir_parents` does).
fn create_parents(path: &Path, mode: u32) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(parent),
        _ => Ok(()),
    }
}

fn open_socket(
    address: &SocketAddress,
    ty: Type,
    text: &str,
    opts: &SocketOptions,
    warnings: &mut Vec<String>,
) -> Result<OwnedFd, ListenError> {
    let (domain, sockaddr, is_ip) = match address {
        SocketAddress::Inet(sa) => (Domain::for_address(*sa), SockAddr::from(*sa), true),
        SocketAddress::Unix(path) => (
            Domain::UNIX,
            SockAddr::unix(path).map_err(|source| ListenError::Bind {
                address: text.to_string(),
                source,
            })?,
            false,
        ),
        SocketAddress::Abstract(name) => {
            let mut bytes = Vec::with_capacity(name.len() + 1);
            bytes.push(0);
            bytes.extend_from_slice(name);
            (
                Domain::UNIX,
                SockAddr::unix(OsStr::from_bytes(&bytes)).map_err(|source| ListenError::Bind {
                    address: text.to_string(),
                    source,
                })?,
                false,
            )
        }
        SocketAddress::Vsock { cid, port } => (Domain::VSOCK, SockAddr::vsock(*cid, *port), false),
    };
    let protocol = match opts.socket_protocol {
        Some(p) if is_ip => Some(Protocol::from(p.number())),
        _ => None,
    };
    let fail_option = |option: &'static str| {
        move |source: io::Error| ListenError::SetOption {
            address: text.to_string(),
            option,
            source,
        }
    };

    let socket = Socket::new(domain, ty.nonblocking().cloexec(), protocol).map_err(|source| {
        ListenError::Socket {
            address: text.to_string(),
            source,
        }
    })?;

    if domain == Domain::IPV6 {
        match opts.bind_ipv6_only {
            BindIpv6Only::Default => {}
            BindIpv6Only::Both => socket
                .set_only_v6(false)
                .map_err(fail_option("IPV6_V6ONLY"))?,
            BindIpv6Only::Ipv6Only => socket
                .set_only_v6(true)
                .map_err(fail_option("IPV6_V6ONLY"))?,
        }
    }
    if is_ip {
        // IPAddressAllow=/IPAddressDeny= of the socket unit, before the
        // socket can receive anything.
        if let Some(list) = &opts.ip_access {
            crate::service::firewall::set_socket_filter(socket.as_fd(), Some(list))
                .map_err(fail_option("SO_ATTACH_FILTER (IPAddressDeny=)"))?;
        }
        if let Some(device) = &opts.bind_to_device {
            socket
                .bind_device(Some(device.as_bytes()))
                .map_err(fail_option("SO_BINDTODEVICE"))?;
        }
        let v6 = domain == Domain::IPV6;
        if opts.reuse_port
            && let Err(e) = socket.set_reuse_port(true)
        {
            warnings.push(format!("{text}: SO_REUSEPORT failed: {e}"));
        }
        if opts.free_bind {
            let r = if v6 {
                socket.set_freebind_v6(true)
            } else {
                socket.set_freebind_v4(true)
            };
            if let Err(e) = r {
                warnings.push(format!("{text}: IP_FREEBIND/IPV6_FREEBIND failed: {e}"));
            }
        }
        if opts.transparent {
            let r = if v6 {
                socket.set_ip_transparent_v6(true)
            } else {
                socket.set_ip_transparent_v4(true)
            };
            if let Err(e) = r {
                warnings.push(format!(
                    "{text}: IP_TRANSPARENT/IPV6_TRANSPARENT failed: {e}"
                ));
            }
        }
    }
    socket
        .set_reuse_address(true)
        .map_err(fail_option("SO_REUSEADDR"))?;

    let bind_err = |source| ListenError::Bind {
        address: text.to_string(),
        source,
    };
    if let SocketAddress::Unix(path) = address {
        create_parents(path, opts.directory_mode).map_err(|source| ListenError::Directory {
            address: text.to_string(),
            source,
        })?;
        let mode = opts.socket_mode & 0o7777;
        // Never more open than SocketMode= while the node exists with the
        // umask applied; failure here is covered by the chmod below.
        let _ = nix::sys::stat::fchmod(
            socket.as_fd(),
            nix::sys::stat::Mode::from_bits_truncate(mode),
        );
        match socket.bind(&sockaddr) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                // A stale node from an earlier run: unlink and retry once.
                std::fs::remove_file(path).map_err(|_| bind_err(e))?;
                socket.bind(&sockaddr).map_err(bind_err)?;
            }
            other => other.map_err(bind_err)?,
        }
        let c = c_path(path).map_err(bind_err)?;
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            c.as_c_str(),
            nix::sys::stat::Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| ListenError::Mode {
            address: text.to_string(),
            mode,
            source: io_err(e),
        })?;
    } else {
        socket.bind(&sockaddr).map_err(bind_err)?;
    }

    if ty == Type::STREAM || ty == Type::SEQPACKET {
        let backlog = i32::try_from(opts.backlog).unwrap_or(i32::MAX);
        socket
            .listen(backlog)
            .map_err(|source| ListenError::Listen {
                address: text.to_string(),
                source,
            })?;
    }

    if let SocketAddress::Unix(path) = address {
        touch(path);
    }

    let fd = OwnedFd::from(socket);
    let family = match address {
        SocketAddress::Inet(sa) if sa.is_ipv4() => libc::AF_INET,
        SocketAddress::Inet(_) => libc::AF_INET6,
        SocketAddress::Unix(_) | SocketAddress::Abstract(_) => libc::AF_UNIX,
        SocketAddress::Vsock { .. } => libc::AF_VSOCK,
    };
    options::apply(fd.as_fd(), family, opts, text, warnings);
    Ok(fd)
}

/// Updates the node's timestamps so inotify watchers see it appear.
fn touch(path: &Path) {
    if let Ok(c) = c_path(path) {
        // SAFETY: utimensat reads the NUL-terminated path; a null times
        // pointer means "now".
        unsafe {
            libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0);
        }
    }
}

/// The process umask, read without changing it (`/proc/self/status`).
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let value = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(value.trim(), 8).ok()
}

/// systemd refuses a FIFO or queue whose mode or owner differs from what it
/// would have created. flint also accepts the configured `SocketUser=` /
/// `SocketGroup=` as owner, so a node it chowned earlier can be reopened.
fn check_mode_and_owner(
    meta: &std::fs::Metadata,
    text: &str,
    opts: &SocketOptions,
) -> Result<(), ListenError> {
    let mismatch = || ListenError::ModeOrOwnerMismatch {
        address: text.to_string(),
    };
    if let Some(umask) = current_umask()
        && meta.mode() & 0o7777 != opts.socket_mode & 0o7777 & !umask
    {
        return Err(mismatch());
    }
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let uid_ok = meta.uid() == uid || Some(meta.uid()) == opts.socket_user;
    let gid_ok = meta.gid() == gid || Some(meta.gid()) == opts.socket_group;
    if !(uid_ok && gid_ok) {
        return Err(mismatch());
    }
    Ok(())
}

fn open_fifo(
    path: &Path,
    text: &str,
    opts: &SocketOptions,
    warnings: &mut Vec<String>,
) -> Result<OwnedFd, ListenError> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;

    create_parents(path, opts.directory_mode).map_err(|source| ListenError::Directory {
        address: text.to_string(),
        source,
    })?;
    match nix::unistd::mkfifo(path, Mode::from_bits_truncate(opts.socket_mode & 0o7777)) {
        Ok(()) | Err(nix::Error::EEXIST) => {}
        Err(e) => {
            return Err(ListenError::Create {
                address: text.to_string(),
                source: io_err(e),
            });
        }
    }
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| ListenError::Open {
        address: text.to_string(),
        source: io_err(e),
    })?;
    let meta = std::fs::File::from(fd.try_clone().map_err(|source| ListenError::Open {
        address: text.to_string(),
        source,
    })?)
    .metadata()
    .map_err(|source| ListenError::Open {
        address: text.to_string(),
        source,
    })?;
    if !std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()) {
        return Err(ListenError::NotFifo {
            address: text.to_string(),
        });
    }
    check_mode_and_owner(&meta, text, opts)?;
    if let Some(size) = opts.pipe_size {
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        if let Err(e) = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(size)) {
            warnings.push(format!("{text}: F_SETPIPE_SZ failed: {}", io_err(e)));
        }
    }
    Ok(fd)
}

fn open_special(path: &Path, text: &str, opts: &SocketOptions) -> Result<OwnedFd, ListenError> {
    use nix::fcntl::OFlag;
    let access = if opts.writable {
        OFlag::O_RDWR
    } else {
        OFlag::O_RDONLY
    };
    let fd = nix::fcntl::open(
        path,
        access | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ListenError::Open {
        address: text.to_string(),
        source: io_err(e),
    })?;
    let stat = nix::sys::stat::fstat(&fd).map_err(|e| ListenError::Open {
        address: text.to_string(),
        source: io_err(e),
    })?;
    let kind = stat.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFCHR {
        return Err(ListenError::NotSpecial {
            address: text.to_string(),
        });
    }
    Ok(fd)
}

fn open_netlink(
    family: &str,
    group: u32,
    text: &str,
    opts: &SocketOptions,
    warnings: &mut Vec<String>,
) -> Result<OwnedFd, ListenError> {
    let protocol = netlink_family_from_name(family)
        .ok_or_else(|| ListenError::NetlinkFamily(family.to_string()))?;
    let socket = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW.nonblocking().cloexec(),
        Some(Protocol::from(protocol)),
    )
    .map_err(|source| ListenError::Socket {
        address: text.to_string(),
        source,
    })?;
    socket
        .set_reuse_address(true)
        .map_err(|source| ListenError::SetOption {
            address: text.to_string(),
            option: "SO_REUSEADDR",
            source,
        })?;
    // SAFETY: sockaddr_nl is plain data; zero is a valid value.
    let mut nl: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    nl.nl_family = libc::sa_family_t::try_from(libc::AF_NETLINK).unwrap_or(16);
    nl.nl_groups = group;
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_nl>())
        .unwrap_or(libc::socklen_t::MAX);
    // SAFETY: bind reads `len` bytes from `nl`, a fully initialised
    // sockaddr_nl that lives for the call.
    let r = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            std::ptr::from_ref(&nl).cast::<libc::sockaddr>(),
            len,
        )
    };
    if r < 0 {
        return Err(ListenError::Bind {
            address: text.to_string(),
            source: io::Error::last_os_error(),
        });
    }
    let fd = OwnedFd::from(socket);
    options::apply(fd.as_fd(), libc::AF_NETLINK, opts, text, warnings);
    Ok(fd)
}

fn open_mqueue(name: &str, text: &str, opts: &SocketOptions) -> Result<OwnedFd, ListenError> {
    let valid =
        name.len() > 1 && name.starts_with('/') && !name[1..].contains('/') && !name.contains('\0');
    if !valid {
        return Err(ListenError::MessageQueueName(name.to_string()));
    }
    let c_name =
        CString::new(name.as_bytes()).map_err(|_| ListenError::MessageQueueName(name.into()))?;
    // SAFETY: mq_attr is plain data; zero is a valid value.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    let attr_ptr = match (opts.mq_max_messages, opts.mq_message_size) {
        (Some(max), Some(size)) => {
            attr.mq_maxmsg = max;
            attr.mq_msgsize = size;
            std::ptr::from_mut(&mut attr)
        }
        _ => std::ptr::null_mut(),
    };
    let mode = libc::mode_t::from(opts.socket_mode & 0o7777);
    // SAFETY: mq_open reads the NUL-terminated name and, with O_CREAT, the
    // mode and the attribute pointer (null or our initialised `attr`).
    let mqd = unsafe {
        libc::mq_open(
            c_name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_CREAT,
            mode,
            attr_ptr,
        )
    };
    if mqd < 0 {
        return Err(ListenError::Open {
            address: text.to_string(),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: on Linux a message queue descriptor is a file descriptor that
    // we own from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(mqd) };
    let meta = std::fs::File::from(fd.try_clone().map_err(|source| ListenError::Open {
        address: text.to_string(),
        source,
    })?)
    .metadata()
    .map_err(|source| ListenError::Open {
        address: text.to_string(),
        source,
    })?;
    check_mode_and_owner(&meta, text, opts)?;
    Ok(fd)
}

/// `Symlinks=`: each link points to `target`. An existing link to the same
/// target is fine; anything else at the link path is replaced only with
/// `RemoveOnStop=`. Failures only warn.
fn create_symlinks(target: &Path, opts: &SocketOptions, warnings: &mut Vec<String>) {
    for link in &opts.symlinks {
        let _ = create_parents(link, opts.directory_mode);
        let mut result = symlink_idempotent(target, link);
        if opts.remove_on_stop
            && matches!(&result, Err(e) if e.kind() == io::ErrorKind::AlreadyExists)
            && std::fs::remove_file(link).is_ok()
        {
            result = symlink_idempotent(target, link);
        }
        if let Err(e) = result {
            warnings.push(format!(
                "failed to create symlink {} -> {}, ignoring: {e}",
                link.display(),
                target.display()
            ));
        }
    }
}

fn symlink_idempotent(target: &Path, link: &Path) -> io::Result<()> {
    match std::os::unix::fs::symlink(target, link) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if std::fs::read_link(link).is_ok_and(|existing| existing == target) {
                Ok(())
            } else {
                Err(e)
            }
        }
        other => other,
    }
}

/// `SocketUser=`/`SocketGroup=`: chown the AF_UNIX node or FIFO by path and
/// a message queue through its fd, as systemd does.
fn chown_node(
    kind: &ListenKind,
    fd: BorrowedFd<'_>,
    text: &str,
    opts: &SocketOptions,
) -> Result<(), ListenError> {
    if opts.socket_user.is_none() && opts.socket_group.is_none() {
        return Ok(());
    }
    let uid = opts.socket_user.map(nix::unistd::Uid::from_raw);
    let gid = opts.socket_group.map(nix::unistd::Gid::from_raw);
    let result = if let Some(path) = kind.node_path() {
        nix::unistd::chown(path, uid, gid)
    } else if matches!(kind, ListenKind::MessageQueue(_)) {
        nix::unistd::fchown(fd, uid, gid)
    } else {
        Ok(())
    };
    result.map_err(|e| ListenError::Chown {
        address: text.to_string(),
        source: io_err(e),
    })
}
