//! Netlink family names for `ListenNetlink=`, from systemd's
//! `netlink_family` table; a decimal number is accepted as well.

/// `(name, protocol)` pairs as systemd spells them.
const FAMILIES: [(&str, i32); 18] = [
    ("route", libc::NETLINK_ROUTE),
    ("firewall", libc::NETLINK_FIREWALL),
    ("inet-diag", libc::NETLINK_INET_DIAG),
    ("nflog", libc::NETLINK_NFLOG),
    ("xfrm", libc::NETLINK_XFRM),
    ("selinux", libc::NETLINK_SELINUX),
    ("iscsi", libc::NETLINK_ISCSI),
    ("audit", libc::NETLINK_AUDIT),
    ("fib-lookup", libc::NETLINK_FIB_LOOKUP),
    ("connector", libc::NETLINK_CONNECTOR),
    ("netfilter", libc::NETLINK_NETFILTER),
    ("ip6-fw", libc::NETLINK_IP6_FW),
    ("dnrtmsg", libc::NETLINK_DNRTMSG),
    ("kobject-uevent", libc::NETLINK_KOBJECT_UEVENT),
    ("generic", libc::NETLINK_GENERIC),
    ("scsitransport", libc::NETLINK_SCSITRANSPORT),
    ("ecryptfs", libc::NETLINK_ECRYPTFS),
    ("rdma", libc::NETLINK_RDMA),
];

/// The netlink protocol number for a family name or decimal number.
pub fn netlink_family_from_name(name: &str) -> Option<i32> {
    FAMILIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
        .or_else(|| name.parse::<i32>().ok().filter(|p| *p >= 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_resolve() {
        assert_eq!(netlink_family_from_name("route"), Some(0));
        assert_eq!(netlink_family_from_name("audit"), Some(9));
        assert_eq!(netlink_family_from_name("kobject-uevent"), Some(15));
        assert_eq!(netlink_family_from_name("16"), Some(16));
        assert_eq!(netlink_family_from_name("-1"), None);
        assert_eq!(netlink_family_from_name("kobject_uevent"), None);
    }
}
