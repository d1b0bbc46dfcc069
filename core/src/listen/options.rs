//! The `[Socket]` option list systemd applies after bind/listen (and again to
//! every accepted connection), in systemd's order. Every failure is a
//! warning, never an error: the listener stays usable.

use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{SocketOptions, SocketProtocol, Timestamping};

/// `SO_PASSPIDFD` (Linux 6.5), not in every libc.
pub(super) const SO_PASSPIDFD: c_int = 76;
/// `SO_PASSRIGHTS` (Linux 6.16), not in every libc.
pub(super) const SO_PASSRIGHTS: c_int = 83;
/// `SOL_NETLINK` level and its `NETLINK_PKTINFO` option.
const SOL_NETLINK: c_int = 270;
const NETLINK_PKTINFO: c_int = 3;
/// `SCTP_NODELAY` at level `IPPROTO_SCTP`.
const SCTP_NODELAY: c_int = 3;
/// `SO_PASSSEC`.
const SO_PASSSEC: c_int = 34;
/// `SO_TIMESTAMP` / `SO_TIMESTAMPNS` (the 64-bit-time_t "old" numbers that
/// 64-bit architectures use).
const SO_TIMESTAMP: c_int = 29;
const SO_TIMESTAMPNS: c_int = 35;

pub(super) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: c_int,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<c_int>()).unwrap_or(4);
    // SAFETY: setsockopt reads `len` bytes from `value`, which lives for the
    // call.
    let r =
        unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (&raw const value).cast(), len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(super) fn getsockopt_int(fd: BorrowedFd<'_>, level: c_int, name: c_int) -> io::Result<c_int> {
    let mut value: c_int = 0;
    let mut len = libc::socklen_t::try_from(size_of::<c_int>()).unwrap_or(4);
    // SAFETY: getsockopt writes at most `len` bytes into `value` and updates
    // `len`; both live for the call.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

fn setsockopt_bytes(fd: BorrowedFd<'_>, level: c_int, name: c_int, value: &[u8]) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: setsockopt reads `len` bytes from the slice.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, value.as_ptr().cast(), len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn seconds(d: std::time::Duration) -> c_int {
    c_int::try_from(d.as_secs()).unwrap_or(c_int::MAX)
}

fn clamp(v: impl TryInto<c_int>) -> c_int {
    v.try_into().unwrap_or(c_int::MAX)
}

/// systemd's `fd_set_rcvbuf`/`fd_set_sndbuf`: try the plain option, and if
/// the kernel capped it below the request, the privileged *FORCE variant.
fn set_buffer(fd: BorrowedFd<'_>, name: c_int, force: c_int, size: u64) -> io::Result<()> {
    let n = c_int::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::ERANGE))?;
    let wanted = i64::from(n) * 2;
    let is_set =
        || getsockopt_int(fd, libc::SOL_SOCKET, name).is_ok_and(|v| i64::from(v) == wanted);
    if is_set() {
        return Ok(());
    }
    setsockopt_int(fd, libc::SOL_SOCKET, name, n)?;
    if is_set() {
        return Ok(());
    }
    setsockopt_int(fd, libc::SOL_SOCKET, force, n)
}

/// Whether [`apply`] reads the address family for `opts` (only
/// `PassPacketInfo=` and `IPTTL=` depend on it), so that a caller that would
/// have to ask the kernel for it can skip that otherwise.
pub(super) fn needs_family(opts: &SocketOptions) -> bool {
    opts.pass_packet_info || opts.ip_ttl.is_some()
}

/// Applies the option list to `fd` of address family `family`. `what` names
/// the socket in warnings.
pub(super) fn apply(
    fd: BorrowedFd<'_>,
    family: c_int,
    opts: &SocketOptions,
    what: &str,
    warnings: &mut Vec<String>,
) {
    let mut check = |name: &str, result: io::Result<()>| {
        if let Err(e) = result {
            warnings.push(format!("{what}: {name} failed: {e}"));
        }
    };
    let sol = libc::SOL_SOCKET;
    let tcp = libc::IPPROTO_TCP;

    if opts.keep_alive {
        check(
            "SO_KEEPALIVE",
            setsockopt_int(fd, sol, libc::SO_KEEPALIVE, 1),
        );
    }
    if let Some(t) = opts.keep_alive_time {
        check(
            "TCP_KEEPIDLE",
            setsockopt_int(fd, tcp, libc::TCP_KEEPIDLE, seconds(t)),
        );
    }
    if let Some(t) = opts.keep_alive_interval {
        check(
            "TCP_KEEPINTVL",
            setsockopt_int(fd, tcp, libc::TCP_KEEPINTVL, seconds(t)),
        );
    }
    if let Some(n) = opts.keep_alive_probes {
        check(
            "TCP_KEEPCNT",
            setsockopt_int(fd, tcp, libc::TCP_KEEPCNT, clamp(n)),
        );
    }
    if let Some(t) = opts.defer_accept {
        check(
            "TCP_DEFER_ACCEPT",
            setsockopt_int(fd, tcp, libc::TCP_DEFER_ACCEPT, seconds(t)),
        );
    }
    if opts.no_delay {
        if opts.socket_protocol == Some(SocketProtocol::Sctp) {
            check(
                "SCTP_NODELAY",
                setsockopt_int(fd, libc::IPPROTO_SCTP, SCTP_NODELAY, 1),
            );
        } else {
            check("TCP_NODELAY", setsockopt_int(fd, tcp, libc::TCP_NODELAY, 1));
        }
    }
    if opts.broadcast {
        check(
            "SO_BROADCAST",
            setsockopt_int(fd, sol, libc::SO_BROADCAST, 1),
        );
    }
    if opts.pass_credentials {
        check("SO_PASSCRED", setsockopt_int(fd, sol, libc::SO_PASSCRED, 1));
    }
    if opts.pass_pidfd {
        check("SO_PASSPIDFD", setsockopt_int(fd, sol, SO_PASSPIDFD, 1));
    }
    if opts.pass_security {
        // systemd logs "not supported" only at debug level.
        match setsockopt_int(fd, sol, SO_PASSSEC, 1) {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
            r => check("SO_PASSSEC", r),
        }
    }
    if opts.pass_packet_info {
        let r = match family {
            libc::AF_INET => setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1),
            libc::AF_INET6 => setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1),
            libc::AF_NETLINK => setsockopt_int(fd, SOL_NETLINK, NETLINK_PKTINFO, 1),
            libc::AF_PACKET => setsockopt_int(fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, 1),
            _ => Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
        };
        check("packet info", r);
    }
    if !opts.pass_rights {
        check("SO_PASSRIGHTS", setsockopt_int(fd, sol, SO_PASSRIGHTS, 0));
    }
    match opts.timestamping {
        Timestamping::Off => {}
        Timestamping::Microseconds => {
            check("SO_TIMESTAMP", setsockopt_int(fd, sol, SO_TIMESTAMP, 1));
        }
        Timestamping::Nanoseconds => {
            check("SO_TIMESTAMPNS", setsockopt_int(fd, sol, SO_TIMESTAMPNS, 1));
        }
    }
    if let Some(p) = opts.priority {
        check("SO_PRIORITY", setsockopt_int(fd, sol, libc::SO_PRIORITY, p));
    }
    if let Some(size) = opts.receive_buffer {
        check(
            "SO_RCVBUF",
            set_buffer(fd, libc::SO_RCVBUF, libc::SO_RCVBUFFORCE, size),
        );
    }
    if let Some(size) = opts.send_buffer {
        check(
            "SO_SNDBUF",
            set_buffer(fd, libc::SO_SNDBUF, libc::SO_SNDBUFFORCE, size),
        );
    }
    if let Some(mark) = opts.mark {
        check(
            "SO_MARK",
            setsockopt_int(fd, sol, libc::SO_MARK, clamp(mark)),
        );
    }
    if let Some(tos) = opts.ip_tos {
        check(
            "IP_TOS",
            setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TOS, tos),
        );
    }
    if let Some(ttl) = opts.ip_ttl {
        let r = match family {
            libc::AF_INET => setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL, clamp(ttl)),
            libc::AF_INET6 => {
                setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, clamp(ttl))
            }
            _ => Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
        };
        check("IP_TTL/IPV6_UNICAST_HOPS", r);
    }
    if let Some(algorithm) = &opts.tcp_congestion {
        check(
            "TCP_CONGESTION",
            setsockopt_bytes(fd, tcp, libc::TCP_CONGESTION, algorithm.as_bytes()),
        );
    }
}
