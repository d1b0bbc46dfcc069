//! Addresses as plugins want them: `std::net` types and CIDR prefixes.
//!
//! Peers on a dual-stack `[::]` socket show up as IPv4-mapped IPv6 addresses
//! (`::ffff:127.0.0.1`); [`peer_ip`] returns them as plain IPv4 so that IPv4
//! rules match them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{IpAddress, Request, SocketAddress};

impl From<IpAddress> for IpAddr {
    fn from(address: IpAddress) -> IpAddr {
        match address {
            IpAddress::Ipv4(o) => IpAddr::V4(Ipv4Addr::new(o.0, o.1, o.2, o.3)),
            IpAddress::Ipv6(s) => IpAddr::V6(Ipv6Addr::new(s.0, s.1, s.2, s.3, s.4, s.5, s.6, s.7)),
        }
    }
}

/// The IP address and port of a socket address, if it is an IP one, with
/// IPv4-mapped IPv6 addresses turned into IPv4.
pub fn ip_of(address: &SocketAddress) -> Option<(IpAddr, u16)> {
    match address {
        SocketAddress::Ip(sa) => Some((IpAddr::from(sa.address).to_canonical(), sa.port)),
        _ => None,
    }
}

/// The peer's IP address and port, if the peer is on an IP socket.
pub fn peer_ip(request: &Request) -> Option<(IpAddr, u16)> {
    request.peer_address.as_ref().and_then(ip_of)
}

/// An IP prefix such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is a
/// prefix of its full length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    len: u8,
}

impl Cidr {
    /// Parses `addr` or `addr/len`. Host bits set below the prefix are
    /// cleared (`10.1.2.3/8` means `10.0.0.0/8`).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR prefix"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("`{text}`: prefix length must be 0..={max}"))?,
        };
        Ok(Cidr {
            network: mask(ip, len),
            len,
        })
    }

    /// Whether `ip` lies in this prefix. IPv4-mapped IPv6 addresses match
    /// IPv4 prefixes.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.len) == self.network
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

/// `ip` with every bit after the first `len` cleared.
pub fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_matches_v4_v6_and_mapped() {
        let c = Cidr::parse("127.0.0.1").unwrap();
        assert!(c.contains(ip("127.0.0.1")));
        assert!(!c.contains(ip("127.0.0.2")));
        assert!(c.contains(ip("::ffff:127.0.0.1")));
        let n = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        assert!(n.contains(ip("10.255.0.1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("1.2.3.4/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }
}
