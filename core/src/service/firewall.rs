//! `IPAddressAllow=` and `IPAddressDeny=`: which peers a unit's IPv4 and
//! IPv6 packets may come from and go to.
//!
//! systemd's rule (`systemd.resource-control(5)`, `bpf-firewall.c`): a
//! packet whose remote address (the source of one received, the
//! destination of one sent) matches an `IPAddressAllow=` prefix passes;
//! else one that matches an `IPAddressDeny=` prefix is dropped; else it
//! passes. So `IPAddressDeny=any` with `IPAddressAllow=localhost` allows
//! the loopback alone, and a list of allowed prefixes without a deny list
//! drops nothing.
//!
//! Where flint enforces it:
//! - **A service's own sockets**: two `BPF_PROG_TYPE_CGROUP_SKB` programs
//!   (ingress and egress) on the service's cgroup, as systemd attaches
//!   them, so every socket a process of the service opens is filtered.
//!   systemd looks the address up in LPM-trie maps; flint compares it
//!   with each prefix in the program itself (a handful of instructions per
//!   prefix, and no maps to create or pin), which decides the same.
//! - **A socket unit's listeners**: systemd creates them inside the socket
//!   unit's cgroup, so its programs see what arrives on them and on the
//!   connections accepted from them. flint's listeners live in flint's own
//!   cgroup, so it gives each IPv4/IPv6 listener a classic socket filter
//!   (`SO_ATTACH_FILTER`) that drops what arrives from a denied address;
//!   accepted connections inherit it (a denied peer's `SYN` is dropped, so
//!   it never connects), and it needs no privilege, so a user flint
//!   enforces it too. What differs: packets a service sends on a passed
//!   socket to a denied address are not dropped (only what arrives is
//!   filtered), and a service may replace the filter with its own.
//!
//! As in systemd, the lists of a socket unit do not apply to the sockets
//! the service makes, nor the service's to the sockets passed to it.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use super::bpf::{
    self, ADD64_K, AND32_K, Asm, CALL, EXIT, JA, JEQ_K, JNE_K, JNE32_K, LDX_W, MOV32_X, MOV64_K,
    MOV64_X, imm,
};
use crate::unit::load::Unit;

/// An address prefix; host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub v6: bool,
    /// The address; an IPv4 one in the first four bytes.
    pub addr: [u8; 16],
    pub len: u8,
}

impl Prefix {
    pub fn new(ip: IpAddr, len: u8) -> Prefix {
        let (v6, bytes, max) = match ip {
            IpAddr::V4(a) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                (false, b, 32)
            }
            IpAddr::V6(a) => (true, a.octets(), 128),
        };
        let mut p = Prefix {
            v6,
            addr: bytes,
            len: len.min(max),
        };
        let mask = p.mask();
        for (a, m) in p.addr.iter_mut().zip(mask) {
            *a &= m;
        }
        p
    }

    /// The mask of the prefix, byte by byte.
    fn mask(&self) -> [u8; 16] {
        let mut m = [0u8; 16];
        let mut left = u32::from(self.len);
        for b in &mut m {
            let bits = left.min(8);
            *b = if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
            left -= bits;
        }
        m
    }

    /// The number of 32-bit words of the address.
    fn words(&self) -> usize {
        if self.v6 { 4 } else { 1 }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.v6 {
            write!(f, "{}/{}", Ipv6Addr::from(self.addr), self.len)
        } else {
            let a = Ipv4Addr::new(self.addr[0], self.addr[1], self.addr[2], self.addr[3]);
            write!(f, "{a}/{}", self.len)
        }
    }
}

/// One word of an `IPAddressAllow=`/`IPAddressDeny=` value: `any`,
/// `localhost`, `link-local`, `multicast`, or an address with an optional
/// prefix length (the whole address without one). `None` when it is none
/// of these (systemd ignores such a word, with a warning).
pub fn parse_word(word: &str) -> Option<Vec<Prefix>> {
    let v4 = |a: [u8; 4], len| Prefix::new(IpAddr::V4(Ipv4Addr::from(a)), len);
    let v6 = |a: Ipv6Addr, len| Prefix::new(IpAddr::V6(a), len);
    let named = match word {
        "any" => vec![v4([0; 4], 0), v6(Ipv6Addr::UNSPECIFIED, 0)],
        "localhost" => vec![v4([127, 0, 0, 0], 8), v6(Ipv6Addr::LOCALHOST, 128)],
        "link-local" => vec![
            v4([169, 254, 0, 0], 16),
            v6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 64),
        ],
        "multicast" => vec![
            v4([224, 0, 0, 0], 4),
            v6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
        ],
        _ => Vec::new(),
    };
    if !named.is_empty() {
        return Some(named);
    }
    let (addr, len) = match word.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (word, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max)?,
    };
    Some(vec![Prefix::new(ip, len)])
}

/// A unit's lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessList {
    pub allow: Vec<Prefix>,
    pub deny: Vec<Prefix>,
}

impl AccessList {
    fn of(&self, allow: bool) -> &[Prefix] {
        if allow { &self.allow } else { &self.deny }
    }
}

/// The unit's lists (as the parser stored them, one prefix per entry), or
/// `None` when they drop nothing (no `IPAddressDeny=`).
pub fn access_list(unit: &Unit, section: &str) -> Option<AccessList> {
    let read = |key: &str| -> Vec<Prefix> {
        let mut out: Vec<Prefix> = Vec::new();
        for p in unit
            .strings(section, key)
            .iter()
            .flat_map(|s| s.split_whitespace())
            .filter_map(parse_word)
            .flatten()
        {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    };
    let deny = read("IPAddressDeny");
    if deny.is_empty() {
        return None;
    }
    Some(AccessList {
        allow: read("IPAddressAllow"),
        deny,
    })
}

/// Whether the unit restricts addresses (without parsing the lists).
pub fn restricts(unit: &Unit, section: &str) -> bool {
    unit.strings(section, "IPAddressDeny")
        .iter()
        .any(|s| !s.trim().is_empty())
}

/// Offsets of the source and destination address in an IPv4 and an IPv6
/// header.
const V4_SRC: u32 = 12;
const V4_DST: u32 = 16;
const V6_SRC: u32 = 8;
const V6_DST: u32 = 24;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

/// The 32-bit words of a prefix and its mask, each read from the bytes
/// with `word` (big-endian for classic BPF, which loads in network order;
/// native for eBPF, which loads memory as it is).
fn words(p: &Prefix, word: fn([u8; 4]) -> u32) -> Vec<(u32, u32)> {
    let mask = p.mask();
    (0..p.words())
        .map(|i| {
            let at = |b: &[u8; 16]| word([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
            (at(&p.addr), at(&mask))
        })
        .collect()
}

// ---- Classic BPF on a socket unit's listeners ----

/// Classic BPF opcodes: `BPF_LD|BPF_W|BPF_ABS`, `BPF_LD|BPF_MEM`,
/// `BPF_ST`, `BPF_MISC|BPF_TAX`, `BPF_MISC|BPF_TXA`, `BPF_ALU|BPF_AND|BPF_K`,
/// `BPF_JMP|BPF_JEQ|BPF_K`, `BPF_JMP|BPF_JA`, `BPF_RET|BPF_K`.
const C_LD_ABS: u16 = 0x20;
const C_LD_MEM: u16 = 0x60;
const C_ST: u16 = 0x02;
const C_TAX: u16 = 0x07;
const C_TXA: u16 = 0x87;
const C_AND_K: u16 = 0x54;
const C_JEQ_K: u16 = 0x15;
const C_JA: u16 = 0x05;
const C_RET_K: u16 = 0x06;
/// `SKF_AD_OFF + SKF_AD_PROTOCOL`, `SKF_NET_OFF`.
const SKF_AD_PROTOCOL: u32 = 0xffff_f000;
const SKF_NET_OFF: u32 = 0xfff0_0000;
/// `BPF_MAXINSNS`.
const MAX_CLASSIC: usize = 4096;
const KEEP: u32 = u32::MAX;
const DROP: u32 = 0;

fn c(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// One family's part of the classic filter: the address (`words` of it
/// at `at` in the network header) against the allow list, then the deny
/// list.
fn classic_family(list: &AccessList, v6: bool, at: u32) -> Vec<libc::sock_filter> {
    let mut p = Vec::new();
    if v6 {
        for i in 0..4u32 {
            p.push(c(C_LD_ABS, 0, 0, SKF_NET_OFF + at + 4 * i));
            p.push(c(C_ST, 0, 0, i));
        }
    } else {
        p.push(c(C_LD_ABS, 0, 0, SKF_NET_OFF + at));
        p.push(c(C_TAX, 0, 0, 0));
    }
    for allow in [true, false] {
        for prefix in list.of(allow).iter().filter(|x| x.v6 == v6) {
            let verdict = c(C_RET_K, 0, 0, if allow { KEEP } else { DROP });
            let mut checks: Vec<Vec<libc::sock_filter>> = Vec::new();
            for (i, (a, m)) in words(prefix, u32::from_be_bytes).into_iter().enumerate() {
                if m == 0 {
                    continue;
                }
                let mut w = vec![if v6 {
                    c(C_LD_MEM, 0, 0, u32::try_from(i).unwrap_or(0))
                } else {
                    c(C_TXA, 0, 0, 0)
                }];
                if m != u32::MAX {
                    w.push(c(C_AND_K, 0, 0, m));
                }
                w.push(c(C_JEQ_K, 0, 0, a));
                checks.push(w);
            }
            // Each failed comparison skips the rest of this prefix, the
            // verdict included (at most 13 instructions, within a jump's
            // reach).
            let total: usize = checks.iter().map(Vec::len).sum::<usize>() + 1;
            let mut done = 0;
            for w in checks {
                done += w.len();
                let mut w = w;
                if let Some(last) = w.last_mut() {
                    last.jf = u8::try_from(total - done).unwrap_or(u8::MAX);
                }
                p.extend(w);
            }
            p.push(verdict);
        }
    }
    p.push(c(C_RET_K, 0, 0, KEEP));
    p
}

/// The classic filter for what arrives on a socket of a unit with `list`;
/// `None` when it would be longer than the kernel takes.
pub fn socket_filter(list: &AccessList) -> Option<Vec<libc::sock_filter>> {
    let v4 = classic_family(list, false, V4_SRC);
    let v6 = classic_family(list, true, V6_SRC);
    // ld proto; IPv4 → v4; IPv6 → v6; anything else is kept.
    let mut p = vec![
        c(C_LD_ABS, 0, 0, SKF_AD_PROTOCOL),
        c(C_JEQ_K, 0, 1, u32::from(ETH_P_IP)),
        c(C_JA, 0, 0, 3),
        c(C_JEQ_K, 0, 1, u32::from(ETH_P_IPV6)),
        c(C_JA, 0, 0, u32::try_from(1 + v4.len()).ok()?),
        c(C_RET_K, 0, 0, KEEP),
    ];
    p.extend(v4);
    p.extend(v6);
    (p.len() <= MAX_CLASSIC).then_some(p)
}

/// Gives the socket the filter of `list` (`SO_ATTACH_FILTER`), replacing
/// one it had; `None` removes the filter.
pub fn set_socket_filter(fd: BorrowedFd<'_>, list: Option<&AccessList>) -> io::Result<()> {
    let Some(list) = list else {
        // SAFETY: SO_DETACH_FILTER on an fd this process owns; the value
        // is ignored.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_DETACH_FILTER,
                std::ptr::null(),
                0,
            )
        };
        return match r {
            0 => Ok(()),
            _ => match io::Error::last_os_error() {
                e if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                e => Err(e),
            },
        };
    };
    let mut filter = socket_filter(list).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "IPAddressAllow=/IPAddressDeny= list too long for a socket filter",
        )
    })?;
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).unwrap_or(u16::MAX),
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: SO_ATTACH_FILTER copies the program `prog` points to, which
    // lives until the call returns; the size is that of `sock_fprog`.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const prog).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::sock_fprog>()).unwrap_or(0),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---- eBPF on a service's cgroup ----

/// `offsetof(struct __sk_buff, protocol)`; `BPF_FUNC_skb_load_bytes`.
const SKB_PROTOCOL: i16 = 16;
const FUNC_SKB_LOAD_BYTES: i32 = 26;

/// The cgroup program for one direction: r6 = skb; the protocol decides
/// the family; the remote address (source when `ingress`, else
/// destination) is copied to the stack with `bpf_skb_load_bytes()` and
/// compared, word by word, with each prefix of the allow list (a match
/// returns 1, pass), then the deny list (0, drop); at the end 1.
fn cgroup_program(list: &AccessList, ingress: bool) -> Option<Vec<bpf::Insn>> {
    let mut a = Asm::default();
    let (pass, drop, v4, v6) = (a.label(), a.label(), a.label(), a.label());
    a.emit(MOV64_X, 6, 1, 0, 0);
    a.emit(LDX_W, 7, 6, SKB_PROTOCOL, 0);
    // `protocol` is in network order as the skb holds it.
    a.jump(JEQ_K, 7, 0, i32::from(ETH_P_IP.to_be()), v4);
    a.jump(JEQ_K, 7, 0, i32::from(ETH_P_IPV6.to_be()), v6);
    a.jump(JA, 0, 0, 0, pass);
    let mut drop_used = false;
    for v6_family in [false, true] {
        a.bind(if v6_family { v6 } else { v4 });
        let (at, size) = match (v6_family, ingress) {
            (false, true) => (V4_SRC, 4),
            (false, false) => (V4_DST, 4),
            (true, true) => (V6_SRC, 16),
            (true, false) => (V6_DST, 16),
        };
        // bpf_skb_load_bytes(skb, at, r10 - 16, size); a packet too short
        // to hold the address passes.
        a.emit(MOV64_X, 1, 6, 0, 0);
        a.emit(MOV64_K, 2, 0, 0, imm(at));
        a.emit(MOV64_X, 3, 10, 0, 0);
        a.emit(ADD64_K, 3, 0, 0, -16);
        a.emit(MOV64_K, 4, 0, 0, size);
        a.emit(CALL, 0, 0, 0, FUNC_SKB_LOAD_BYTES);
        a.jump(JNE_K, 0, 0, 0, pass);
        // r1..r4 = the address's words.
        let n: u8 = if v6_family { 4 } else { 1 };
        for i in 0..n {
            a.emit(LDX_W, 1 + i, 10, -16 + 4 * i16::from(i), 0);
        }
        // The verifier refuses code no path reaches: after a prefix of
        // length 0 (`any`), which matches without a comparison, nothing
        // more of this family is written.
        let mut matched_all = false;
        'rules: for allow in [true, false] {
            for prefix in list.of(allow).iter().filter(|p| p.v6 == v6_family) {
                let next = a.label();
                let mut compared = false;
                for (i, (addr, mask)) in words(prefix, u32::from_ne_bytes).into_iter().enumerate() {
                    let reg = 1 + u8::try_from(i).unwrap_or(0);
                    match mask {
                        0 => continue,
                        u32::MAX => a.jump(JNE32_K, reg, 0, imm(addr), next),
                        m => {
                            a.emit(MOV32_X, 0, reg, 0, 0);
                            a.emit(AND32_K, 0, 0, 0, imm(m));
                            a.jump(JNE32_K, 0, 0, imm(addr), next);
                        }
                    }
                    compared = true;
                }
                drop_used |= !allow;
                a.jump(JA, 0, 0, 0, if allow { pass } else { drop });
                a.bind(next);
                if !compared {
                    matched_all = true;
                    break 'rules;
                }
            }
        }
        if !matched_all {
            a.jump(JA, 0, 0, 0, pass);
        }
    }
    if drop_used {
        a.bind(drop);
        a.emit(MOV64_K, 0, 0, 0, 0);
        a.emit(EXIT, 0, 0, 0, 0);
    }
    a.bind(pass);
    a.emit(MOV64_K, 0, 0, 0, 1);
    a.emit(EXIT, 0, 0, 0, 0);
    a.finish()
}

/// Attaches the ingress and egress programs of `list` to the cgroup at
/// `dir`, unless programs are attached there already (an earlier command
/// of the run).
pub fn apply(dir: &Path, list: &AccessList) -> io::Result<()> {
    let cgroup = std::fs::File::open(dir)?;
    let program = |ingress| {
        cgroup_program(list, ingress).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "IPAddressAllow=/IPAddressDeny= list too long",
            )
        })
    };
    // Each direction once: an earlier command of the run attached it (or
    // attached one and failed on the other).
    for (attach, ingress, what) in [
        (bpf::ATTACH_INET_EGRESS, false, "egress address filter"),
        (bpf::ATTACH_INET_INGRESS, true, "ingress address filter"),
    ] {
        if bpf::attached(cgroup.as_fd(), attach)? > 0 {
            continue;
        }
        let prog = bpf::load(bpf::PROG_TYPE_CGROUP_SKB, &program(ingress)?, what)?;
        bpf::attach(cgroup.as_fd(), prog.as_fd(), attach)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        parse_word(s)
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn words_parse_as_systemd_reads_them() {
        assert_eq!(p("any"), ["0.0.0.0/0", "::/0"]);
        assert_eq!(p("localhost"), ["127.0.0.0/8", "::1/128"]);
        assert_eq!(p("link-local"), ["169.254.0.0/16", "fe80::/64"]);
        assert_eq!(p("multicast"), ["224.0.0.0/4", "ff00::/8"]);
        // Host bits are dropped, as in systemd's dump.
        assert_eq!(p("10.1.2.3/8"), ["10.0.0.0/8"]);
        assert_eq!(p("fe80::1/10"), ["fe80::/10"]);
        assert_eq!(p("192.168.1.1"), ["192.168.1.1/32"]);
        assert_eq!(p("2001:db8::5"), ["2001:db8::5/128"]);
        for bad in ["bogus", "1.2.3.4/33", "::/129", "1.2.3.4/x", ""] {
            assert!(parse_word(bad).is_none(), "{bad}");
        }
    }

    /// Runs a classic program over a packet whose network header is
    /// `net` and whose protocol is `proto`: what the kernel's interpreter
    /// does for the instructions `socket_filter` uses.
    fn run_classic(prog: &[libc::sock_filter], proto: u16, net: &[u8]) -> u32 {
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
        let mut pc = 0;
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                C_LD_ABS if i.k == SKF_AD_PROTOCOL => a = u32::from(proto),
                C_LD_ABS => {
                    let at = (i.k - SKF_NET_OFF) as usize;
                    let Some(b) = net.get(at..at + 4) else {
                        return 0;
                    };
                    a = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                }
                C_LD_MEM => a = mem[i.k as usize],
                C_ST => mem[i.k as usize] = a,
                C_TAX => x = a,
                C_TXA => a = x,
                C_AND_K => a &= i.k,
                C_JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                C_JA => pc += i.k as usize,
                C_RET_K => return i.k,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    fn v4_packet(src: [u8; 4]) -> Vec<u8> {
        let mut h = vec![0x45u8; 20];
        h[12..16].copy_from_slice(&src);
        h
    }

    fn v6_packet(src: Ipv6Addr) -> Vec<u8> {
        let mut h = vec![0x60u8; 40];
        h[8..24].copy_from_slice(&src.octets());
        h
    }

    fn list(allow: &[&str], deny: &[&str]) -> AccessList {
        let all = |w: &[&str]| w.iter().flat_map(|w| parse_word(w).expect(w)).collect();
        AccessList {
            allow: all(allow),
            deny: all(deny),
        }
    }

    #[test]
    fn the_socket_filter_allows_first_then_denies() {
        let l = list(&["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"], &["any"]);
        let f = socket_filter(&l).expect("fits");
        let v4 = |a| run_classic(&f, ETH_P_IP, &v4_packet(a));
        let v6 = |a: &str| run_classic(&f, ETH_P_IPV6, &v6_packet(a.parse().expect("v6")));
        assert_eq!(v4([127, 0, 0, 1]), KEEP);
        assert_eq!(v4([127, 0, 0, 2]), DROP);
        assert_eq!(v4([10, 200, 3, 4]), KEEP);
        assert_eq!(v4([11, 0, 0, 1]), DROP);
        assert_eq!(v6("::1"), KEEP);
        assert_eq!(v6("::2"), DROP);
        assert_eq!(v6("fd12:3456::1"), KEEP);
        assert_eq!(v6("fe80::1"), DROP);
        // Neither IPv4 nor IPv6 (ARP, say) is not for these lists.
        assert_eq!(run_classic(&f, 0x0806, &[]), KEEP);
    }

    #[test]
    fn the_socket_filter_passes_what_no_list_names() {
        let l = list(&[], &["192.168.0.0/16", "2001:db8::/32"]);
        let f = socket_filter(&l).expect("fits");
        assert_eq!(
            run_classic(&f, ETH_P_IP, &v4_packet([192, 168, 9, 9])),
            DROP
        );
        assert_eq!(
            run_classic(&f, ETH_P_IP, &v4_packet([192, 169, 0, 1])),
            KEEP
        );
        let a: Ipv6Addr = "2001:db8:1::1".parse().expect("v6");
        assert_eq!(run_classic(&f, ETH_P_IPV6, &v6_packet(a)), DROP);
        let b: Ipv6Addr = "2001:db9::1".parse().expect("v6");
        assert_eq!(run_classic(&f, ETH_P_IPV6, &v6_packet(b)), KEEP);
    }

    #[test]
    fn a_list_too_long_for_a_socket_filter_is_refused() {
        let deny: Vec<Prefix> = (0..500u16)
            .map(|i| Prefix::new(IpAddr::V6(Ipv6Addr::new(0x2001, i, 0, 0, 0, 0, 0, 1)), 127))
            .collect();
        let l = AccessList {
            allow: Vec::new(),
            deny,
        };
        assert!(socket_filter(&l).is_none());
    }

    /// Which instructions some path reaches (the kernel's verifier
    /// refuses a program with any it does not).
    fn reachable(p: &[bpf::Insn]) -> Vec<bool> {
        let mut seen = vec![false; p.len()];
        let mut todo = vec![0usize];
        while let Some(at) = todo.pop() {
            if at >= p.len() || seen[at] {
                continue;
            }
            seen[at] = true;
            let i = p[at];
            let target = usize::try_from(i64::try_from(at).unwrap() + 1 + i64::from(i.off))
                .unwrap_or(usize::MAX);
            match i.code {
                EXIT => {}
                JA => todo.push(target),
                c if c & 0x07 == 0x05 && c != CALL || c & 0x07 == 0x06 => {
                    todo.push(target);
                    todo.push(at + 1);
                }
                _ => todo.push(at + 1),
            }
        }
        seen
    }

    #[test]
    fn the_cgroup_program_reaches_every_instruction() {
        let lists = [
            list(&["localhost", "10.0.0.0/8"], &["any", "2001:db8::/32"]),
            list(&["127.0.0.2", "::1"], &["any"]),
            // Nothing is dropped: `any` is allowed first.
            list(&["any"], &["any"]),
            list(&[], &["192.168.0.0/16"]),
            list(&["::/0"], &["0.0.0.0/0", "::1"]),
        ];
        for l in &lists {
            for ingress in [true, false] {
                let p = cgroup_program(l, ingress).expect("resolved");
                let seen = reachable(&p);
                assert!(seen.iter().all(|s| *s), "{l:?}: {seen:?}");
                assert_eq!(p.last().map(|i| i.code), Some(EXIT));
            }
        }
    }
}
