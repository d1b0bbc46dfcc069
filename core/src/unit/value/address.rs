//! The address grammar of `ListenStream=`, `ListenDatagram=` and
//! `ListenSequentialPacket=`, as systemd's `socket_address_parse()` reads it.
//!
//! Accepted forms, tried in systemd's order: `/path` (file-system AF_UNIX,
//! at most 107 bytes), `@name` (abstract AF_UNIX, at most 106 name bytes),
//! `vsock:CID:PORT` (empty CID = any), a bare port (`[::]:port`; flint decides
//! about dual-stack when binding), `IPv4:port`, `[IPv6]:port`, each IP form
//! optionally followed by `%ifname` or `%ifindex`. Host names are never
//! resolved. `Display` prints the form systemd prints in its dumps and logs.
//! The typed vsock prefixes of newer systemd (`vsock-stream:` …) are refused,
//! as systemd 252 refuses them: this type has no room for a socket type that
//! would override the directive's.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;

use super::ValueError;
use super::int::{parse_i32, parse_port, parse_u32};

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

/// `VMADDR_CID_ANY`.
pub const VMADDR_CID_ANY: u32 = u32::MAX;
/// Size of `sockaddr_un.sun_path` on Linux.
const SUN_PATH_LEN: usize = 108;

fn invalid(s: &str) -> ValueError {
    ValueError::invalid(format_args!("not a listen address: '{s}'"))
}

/// systemd's `ifname_valid_full(…, IFNAME_VALID_ALTERNATIVE | IFNAME_VALID_NUMERIC)`.
fn ifname_valid(name: &str) -> bool {
    const ALTIFNAMSIZ: usize = 128;
    !name.is_empty()
        && name.len() < ALTIFNAMSIZ
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|c| c > b' ' && c < 0x7f && !matches!(c, b':' | b'/' | b'%'))
}

/// systemd's `rtnl_resolve_interface()`: a positive number is an index as
/// is; otherwise the name must exist.
fn resolve_interface(name: &str) -> Result<u32, ValueError> {
    if let Ok(index) = parse_i32(name)
        && let Ok(index) = u32::try_from(index)
        && index > 0
    {
        return Ok(index);
    }
    nix::net::if_::if_nametoindex(name)
        .map_err(|_| ValueError::NoDevice(format!("no network interface '{name}'")))
}

/// systemd's `in_addr_port_ifindex_name_from_string_auto()` without the
/// `#servername` part. Returns the IP, the port (0 if none) and the scope.
fn parse_ip_port_ifindex(s: &str) -> Result<(IpAddr, u16, u32), ValueError> {
    if s.contains('#') {
        return Err(invalid(s));
    }
    let mut s = s;
    let mut ifindex = 0;
    if let Some((addr, iface)) = s.split_once('%') {
        if !ifname_valid(iface) {
            return Err(invalid(s));
        }
        ifindex = resolve_interface(iface)?;
        s = addr;
    }
    let Some(colon) = s.rfind(':') else {
        let ip = Ipv4Addr::from_str(s).map_err(|_| invalid(s))?;
        return Ok((IpAddr::V4(ip), 0, ifindex));
    };
    if let Some(inner) = s.strip_prefix('[') {
        let (ip, port) = (&s[..colon], &s[colon + 1..]);
        let ip = ip
            .strip_suffix(']')
            .and_then(|_| inner.get(..colon.checked_sub(2)?))
            .ok_or_else(|| invalid(s))?;
        let port = parse_port(port)?;
        let ip = Ipv6Addr::from_str(ip).map_err(|_| invalid(s))?;
        return Ok((IpAddr::V6(ip), port, ifindex));
    }
    if let Ok(ip) = Ipv6Addr::from_str(s) {
        // An IPv6 address without brackets has no port.
        return Ok((IpAddr::V6(ip), 0, ifindex));
    }
    let ip = Ipv4Addr::from_str(&s[..colon]).map_err(|_| invalid(s))?;
    let port = parse_port(&s[colon + 1..])?;
    Ok((IpAddr::V4(ip), port, ifindex))
}

impl FromStr for SocketAddress {
    type Err = ValueError;

    /// Parse as `socket_address_parse()` does. The input is not trimmed.
    fn from_str(s: &str) -> Result<Self, ValueError> {
        if let Some(name) = s.strip_prefix('@') {
            if name.is_empty() {
                return Err(invalid(s));
            }
            if s.len() + 1 > SUN_PATH_LEN {
                return Err(ValueError::invalid(format_args!(
                    "abstract socket name too long: '{s}'"
                )));
            }
            return Ok(SocketAddress::Abstract(name.as_bytes().to_vec()));
        }
        if s.starts_with('/') {
            if s.len() < 2 {
                return Err(invalid(s));
            }
            if s.len() + 1 > SUN_PATH_LEN {
                return Err(ValueError::NameTooLong(format!(
                    "socket path longer than 107 bytes: '{s}'"
                )));
            }
            return Ok(SocketAddress::Unix(s.into()));
        }
        if let Some(rest) = s.strip_prefix("vsock:") {
            let (cid, port) = rest.split_once(':').ok_or_else(|| invalid(s))?;
            let port = parse_u32(port)?;
            if port == u32::MAX {
                return Err(ValueError::invalid(
                    "vsock port 4294967295 is VMADDR_PORT_ANY",
                ));
            }
            let cid = match cid {
                "" => VMADDR_CID_ANY,
                "hypervisor" => 0,
                "local" => 1,
                "host" => 2,
                n => parse_u32(n)?,
            };
            return Ok(SocketAddress::Vsock { cid, port });
        }
        match parse_port(s) {
            Ok(port) => {
                return Ok(SocketAddress::Inet(SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    port,
                )));
            }
            Err(e @ ValueError::OutOfRange(_)) => return Err(e),
            Err(_) => {}
        }
        let (ip, port, ifindex) = parse_ip_port_ifindex(s)?;
        if port == 0 {
            return Err(ValueError::invalid(format_args!("no port in '{s}'")));
        }
        Ok(SocketAddress::Inet(match ip {
            IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, port)),
            IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, port, 0, ifindex)),
        }))
    }
}

/// An IPv6 address as glibc's `inet_ntop()` prints it: like Rust, except
/// that IPv4-compatible addresses (`::a.b.c.d`) keep the dotted tail.
#[allow(clippy::many_single_char_names)]
fn fmt_ipv6(ip: &Ipv6Addr, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let seg = ip.segments();
    if seg[..6].iter().all(|&s| s == 0) && seg[6] != 0 {
        let [a, b] = seg[6].to_be_bytes();
        let [c, d] = seg[7].to_be_bytes();
        return write!(f, "::{a}.{b}.{c}.{d}");
    }
    write!(f, "{ip}")
}

impl fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketAddress::Inet(SocketAddr::V4(a)) => write!(f, "{}:{}", a.ip(), a.port()),
            SocketAddress::Inet(SocketAddr::V6(a)) => {
                f.write_str("[")?;
                fmt_ipv6(a.ip(), f)?;
                write!(f, "]:{}", a.port())?;
                if a.scope_id() != 0 {
                    match nix::net::if_::if_indextoname(a.scope_id()) {
                        Ok(name) if !name.is_empty() => write!(f, "%{}", name.to_string_lossy())?,
                        _ => write!(f, "%{}", a.scope_id())?,
                    }
                }
                Ok(())
            }
            SocketAddress::Unix(path) => {
                use std::os::unix::ffi::OsStrExt as _;
                f.write_str(&super::cescape(path.as_os_str().as_bytes()))
            }
            SocketAddress::Abstract(name) => write!(f, "@{}", super::cescape(name)),
            SocketAddress::Vsock {
                cid: VMADDR_CID_ANY,
                port,
            } => write!(f, "vsock::{port}"),
            SocketAddress::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum E {
        Inval,
        Range,
        NoDev,
        TooLong,
    }

    fn parse(s: &str) -> Result<String, E> {
        s.parse::<SocketAddress>()
            .map(|a| a.to_string())
            .map_err(|e| match e {
                ValueError::Invalid(_) => E::Inval,
                ValueError::OutOfRange(_) => E::Range,
                ValueError::NoDevice(_) => E::NoDev,
                ValueError::NameTooLong(_) => E::TooLong,
            })
    }

    // The address table of section 4.3 of flint's systemd reference, observed
    // with systemd 252 (`systemd-socket-activate -l ADDR`), and the dump forms
    // of `systemd --test` for ListenStream=.
    #[test]
    fn oracle_table() {
        let ok: &[(&str, &str)] = &[
            ("18084", "[::]:18084"),
            ("127.0.0.1:18085", "127.0.0.1:18085"),
            ("0.0.0.0:18087", "0.0.0.0:18087"),
            ("[::1]:18086", "[::1]:18086"),
            ("[::]:18088", "[::]:18088"),
            ("[::ffff:127.0.0.1]:18098", "[::ffff:127.0.0.1]:18098"),
            ("@abstract-test", "@abstract-test"),
            ("/run/sa/x.sock", "/run/sa/x.sock"),
            ("[::1]:18094%lo", "[::1]:18094%lo"),
            ("[::1]:18094%1", "[::1]:18094%lo"),
            ("[::1]:86%99", "[::1]:86%99"),
            ("127.0.0.1:83%lo", "127.0.0.1:83"),
            ("vsock::18095", "vsock::18095"),
            ("vsock:2:18096", "vsock:2:18096"),
            ("vsock:4294967295:19", "vsock::19"),
            ("vsock:host:3", "vsock:2:3"),
            ("65535", "[::]:65535"),
            ("127.0.0.1:+80", "127.0.0.1:80"),
            ("0x50", "[::]:80"),
            ("+80", "[::]:80"),
            ("127.0.0.1:0x1F90", "127.0.0.1:8080"),
            ("[::1.2.3.4]:84", "[::1.2.3.4]:84"),
            ("[::ffff:1.2.3.4]:85", "[::ffff:1.2.3.4]:85"),
            (
                "[2001:db8:0:85a3:0:0:ac1f:8001]:8888",
                "[2001:db8:0:85a3::ac1f:8001]:8888",
            ),
            ("/run/a\\x20b\\\\c", "/run/a\\\\x20b\\\\\\\\c"),
            ("@abs\\ttab", "@abs\\\\ttab"),
            ("/run/x\"y", "/run/x\\\"y"),
        ];
        for &(input, want) in ok {
            assert_eq!(parse(input), Ok(want.to_owned()), "input {input:?}");
        }
        let bad: &[(&str, E)] = &[
            ("65536", E::Range),
            ("-1", E::Range),
            ("[::1]:18095%nonexistent0", E::NoDev),
            ("localhost:18089", E::Inval),
            ("18090 ", E::Inval),
            (" 18091", E::Inval),
            ("0", E::Inval),
            ("1.2.3:80", E::Inval),
            ("1.2.3.4.5:80", E::Inval),
            ("[::1]", E::Inval),
            ("::1", E::Inval),
            ("::1:18092", E::Inval),
            ("[::1]:0", E::Inval),
            ("[::1]%lo:18099", E::Inval),
            ("127.0.0.1", E::Inval),
            ("@", E::Inval),
            ("/", E::Inval),
            ("foo", E::Inval),
            ("127.0.0.1:080", E::Inval),
            ("vsock-stream:1:18097", E::Inval),
            ("", E::Inval),
            ("[::1]:65536", E::Range),
            ("127.0.0.1:65536", E::Range),
            ("127.0.0.1:80#name", E::Inval),
            ("127.0.0.1:80%", E::Inval),
            ("vsock:1", E::Inval),
            ("vsock:x:1", E::Inval),
            ("vsock::4294967295", E::Inval),
        ];
        for (input, want) in bad {
            assert_eq!(&parse(input).unwrap_err_or_ok(), want, "input {input:?}");
        }
    }

    trait ErrOrOk {
        fn unwrap_err_or_ok(self) -> E;
    }
    impl ErrOrOk for Result<String, E> {
        fn unwrap_err_or_ok(self) -> E {
            match self {
                Ok(s) => panic!("unexpectedly parsed as {s}"),
                Err(e) => e,
            }
        }
    }

    // Vectors from systemd src/test/test-socket-netlink.c
    // (TEST(socket_address_parse)); interface names other than `lo` are not
    // assumed to exist here.
    #[test]
    fn socket_netlink_vectors() {
        let rows: &[(&str, Result<&str, E>)] = &[
            ("junk", Err(E::Inval)),
            ("192.168.1.1", Err(E::Inval)),
            (".168.1.1", Err(E::Inval)),
            ("989.168.1.1", Err(E::Inval)),
            ("192.168.1.1:65536", Err(E::Range)),
            ("192.168.1.1:0", Err(E::Inval)),
            ("0", Err(E::Inval)),
            ("65536", Err(E::Range)),
            ("65535", Ok("[::]:65535")),
            ("[1:2:3:4:5:6:7:8]:65535", Ok("[1:2:3:4:5:6:7:8]:65535")),
            ("[1:2:3:4:5:6:7:8]:0", Err(E::Inval)),
            ("[::1]:0", Err(E::Inval)),
            ("[::1]:8888", Ok("[::1]:8888")),
            (
                "[2001:0db8:0000:85a3:0000:0000:ac1f:8001]:8888",
                Ok("[2001:db8:0:85a3::ac1f:8001]:8888"),
            ),
            (
                "[2001:0db8:0000:85a3:0000:0000:ac1f:8001]:8888%lo",
                Ok("[2001:db8:0:85a3::ac1f:8001]:8888%lo"),
            ),
            ("[::1]:8888%lo", Ok("[::1]:8888%lo")),
            ("[::1]%lo", Err(E::Inval)),
            ("[::1]%%lo", Err(E::Inval)),
            ("[::1]:8888%0", Err(E::NoDev)),
            ("192.168.1.254:8888", Ok("192.168.1.254:8888")),
            ("/foo/bar", Ok("/foo/bar")),
            ("/", Err(E::Inval)),
            ("@abstract", Ok("@abstract")),
            ("vsock::1234", Ok("vsock::1234")),
            ("vsock:2:1234", Ok("vsock:2:1234")),
            ("vsock:2:1234x", Err(E::Inval)),
            ("vsock:2x:1234", Err(E::Inval)),
            ("vsock:2", Err(E::Inval)),
        ];
        for (input, want) in rows {
            assert_eq!(
                parse(input),
                want.as_ref().map(|s| (*s).to_owned()).map_err(|e| match e {
                    E::Inval => E::Inval,
                    E::Range => E::Range,
                    E::NoDev => E::NoDev,
                    E::TooLong => E::TooLong,
                }),
                "input {input:?}"
            );
        }
    }

    // Path length edges from systemd src/test/test-socket-util.c
    // (TEST(sockaddr_un_set_path)): 107 bytes fit, 108 do not.
    #[test]
    fn unix_lengths() {
        let ok_path = format!("/{}", "x".repeat(106));
        assert_eq!(ok_path.len(), 107);
        assert_eq!(parse(&ok_path), Ok(ok_path.clone()));
        let long_path = format!("/{}", "x".repeat(107));
        assert_eq!(parse(&long_path), Err(E::TooLong));
        let ok_abs = format!("@{}", "x".repeat(106));
        assert_eq!(parse(&ok_abs), Ok(ok_abs.clone()));
        let long_abs = format!("@{}", "x".repeat(107));
        assert_eq!(parse(&long_abs), Err(E::Inval));
    }

    #[test]
    fn typed_values() {
        let a: Result<SocketAddress, _> = "[fe80::1]:81%1".parse();
        match a {
            Ok(SocketAddress::Inet(SocketAddr::V6(v6))) => {
                assert_eq!(v6.scope_id(), 1);
                assert_eq!(v6.port(), 81);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            "@x".parse::<SocketAddress>().ok(),
            Some(SocketAddress::Abstract(b"x".to_vec()))
        );
        assert_eq!(
            "vsock::5".parse::<SocketAddress>().ok(),
            Some(SocketAddress::Vsock {
                cid: VMADDR_CID_ANY,
                port: 5
            })
        );
        assert_eq!(
            "8080".parse::<SocketAddress>().ok(),
            Some(SocketAddress::Inet(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                8080
            )))
        );
    }
}
