//! `DevicePolicy=` and `DeviceAllow=`: which device nodes a service may
//! open (or `mknod`), enforced as systemd enforces it on cgroup v2, by a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the service's cgroup
//! (systemd's `bpf-devices.c`). The program is a list of allow rules, each
//! a device type with an optional major and minor and the access it
//! grants; anything else is refused (`EPERM`).
//!
//! No crate builds such a program (aya and libbpf-rs load programs
//! compiled elsewhere); it is a dozen instructions per rule, written here
//! as systemd writes them.
//!
//! The rules, as systemd's `cgroup.c` makes them:
//! - `DevicePolicy=auto` (the default) restricts only when `DeviceAllow=`
//!   lists something, as `closed`;
//! - `closed` allows `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`,
//!   `/dev/urandom`, `/dev/tty`, `/dev/ptmx` and the pseudo terminals
//!   (`char-pts`), plus `DeviceAllow=`;
//! - `strict` allows `DeviceAllow=` alone;
//! - `PrivateDevices=yes` implies `closed`, `ProtectClock=yes` adds
//!   `char-rtc r`.
//!
//! `DeviceAllow=` takes a node path (`/dev/sda`, its type and numbers read
//! from the node), `char-NAME` or `block-NAME` (the majors `/proc/devices`
//! lists under that driver name, which may be a glob, such as `char-*`),
//! and the access: `r`, `w`, `m` (mknod), default `rwm`.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use super::bpf::{
    self, AND32_K, EXIT, Insn, JNE_K, JNE_X, LDX_W, MOV32_X, MOV64_K, RSH32_K, imm, insn,
};
use crate::unit::load::Unit;

/// `BPF_DEVCG_DEV_BLOCK`, `BPF_DEVCG_DEV_CHAR`.
const BLOCK: u32 = 1;
const CHAR: u32 = 2;
/// `BPF_DEVCG_ACC_MKNOD`, `_READ`, `_WRITE`.
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;

/// One allow rule: a device type, a major and a minor (`None`: any), and
/// the access bits it grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: u32,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

fn access_of(s: &str) -> u32 {
    if s.is_empty() {
        return ACC_READ | ACC_WRITE | ACC_MKNOD;
    }
    s.chars().fold(0, |a, c| match c {
        'r' => a | ACC_READ,
        'w' => a | ACC_WRITE,
        'm' => a | ACC_MKNOD,
        _ => a,
    })
}

/// The majors `/proc/devices` lists for drivers matching `pattern` in its
/// `Character devices:` or `Block devices:` part.
fn majors(kind: u32, pattern: &str) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string("/proc/devices") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut part = 0;
    for line in text.lines() {
        match line.trim() {
            "Character devices:" => part = CHAR,
            "Block devices:" => part = BLOCK,
            l if part == kind => {
                if let Some((n, name)) = l.split_once(' ')
                    && let Ok(n) = n.trim().parse::<u32>()
                    && super::condition::wildcard(pattern.as_bytes(), name.trim().as_bytes())
                    && !out.contains(&n)
                {
                    out.push(n);
                }
            }
            _ => {}
        }
    }
    out
}

/// The rules of one `DeviceAllow=` value; none when it names nothing
/// there is (a node that does not exist, a driver the kernel lacks), as
/// systemd then allows nothing for it.
fn parse_allow(value: &str) -> Vec<Rule> {
    let mut words = value.split_whitespace();
    let Some(spec) = words.next() else {
        return Vec::new();
    };
    let access = access_of(words.next().unwrap_or(""));
    let by_name = |kind: u32, name: &str| -> Vec<Rule> {
        if name == "*" {
            return vec![Rule {
                kind,
                major: None,
                minor: None,
                access,
            }];
        }
        majors(kind, name)
            .into_iter()
            .map(|m| Rule {
                kind,
                major: Some(m),
                minor: None,
                access,
            })
            .collect()
    };
    if let Some(name) = spec.strip_prefix("char-") {
        // `char-/dev/console`: a node given with its type.
        if name.starts_with('/') {
            return node(name, access).into_iter().collect();
        }
        return by_name(CHAR, name);
    }
    if let Some(name) = spec.strip_prefix("block-") {
        if name.starts_with('/') {
            return node(name, access).into_iter().collect();
        }
        return by_name(BLOCK, name);
    }
    node(spec, access).into_iter().collect()
}

/// A rule for the node at `path`.
fn node(path: &str, access: u32) -> Option<Rule> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(path).ok()?;
    let kind = if m.file_type().is_char_device() {
        CHAR
    } else if m.file_type().is_block_device() {
        BLOCK
    } else {
        return None;
    };
    let rdev = m.rdev();
    Some(Rule {
        kind,
        major: Some(libc::major(rdev)),
        minor: Some(libc::minor(rdev)),
        access,
    })
}

/// The unit's device policy (`auto`, `closed`, `strict`) with what
/// `PrivateDevices=` implies, and whether it restricts anything.
fn policy<'a>(unit: &'a Unit, section: &str) -> (&'a str, bool) {
    let on = |k: &str| unit.get_bool(section, k).unwrap_or(false);
    let mut policy = unit.get_str(section, "DevicePolicy").unwrap_or("auto");
    if on("PrivateDevices") && policy == "auto" {
        policy = "closed";
    }
    let restricts = policy != "auto"
        || on("ProtectClock")
        || unit
            .strings(section, "DeviceAllow")
            .iter()
            .any(|s| !s.trim().is_empty());
    (policy, restricts)
}

/// Whether the unit's device access is restricted (without working out
/// the rules, which read `/proc/devices` and the nodes).
pub fn restricts(unit: &Unit, section: &str) -> bool {
    policy(unit, section).1
}

/// The allow rules of the unit, or `None` when it may open any device.
pub fn rules(unit: &Unit, section: &str) -> Option<Vec<Rule>> {
    let (policy, restricts) = policy(unit, section);
    if !restricts {
        return None;
    }
    let mut allow = unit.strings(section, "DeviceAllow");
    allow.retain(|s| !s.trim().is_empty());
    let clock = unit.get_bool(section, "ProtectClock").unwrap_or(false);
    let mut out = Vec::new();
    if policy != "strict" {
        for n in [
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
            "/dev/ptmx",
        ] {
            out.extend(node(n, ACC_READ | ACC_WRITE | ACC_MKNOD));
        }
        out.extend(parse_allow("char-pts rw"));
    }
    if clock {
        out.extend(parse_allow("char-rtc r"));
    }
    for a in allow {
        out.extend(parse_allow(a));
    }
    Some(out)
}

/// The program: r2 = device type, r3 = requested access, r4 = major,
/// r5 = minor (`struct bpf_cgroup_dev_ctx`); then one block per rule that
/// returns 1 when it matches; at the end 0.
fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules {
        // Built as (opcode, dst, src, imm) with the jumps filled in below:
        // r1 = r3 & access, which must be r3 (the request within it), then
        // the type, the major and the minor.
        let mut block: Vec<(u8, u8, u8, i32)> = vec![
            (MOV32_X, 1, 3, 0),
            (AND32_K, 1, 0, imm(r.access)),
            (JNE_X, 1, 3, 0),
            (JNE_K, 2, 0, imm(r.kind)),
        ];
        if let Some(m) = r.major {
            block.push((JNE_K, 4, 0, imm(m)));
        }
        if let Some(m) = r.minor {
            block.push((JNE_K, 5, 0, imm(m)));
        }
        block.push((MOV64_K, 0, 0, 1));
        block.push((EXIT, 0, 0, 0));
        let n = block.len();
        for (i, (code, dst, src, k)) in block.into_iter().enumerate() {
            // A failed check jumps past the rest of this block.
            let off = if matches!(code, JNE_X | JNE_K) {
                i16::try_from(n - i - 1).unwrap_or(i16::MAX)
            } else {
                0
            };
            p.push(insn(code, dst, src, off, k));
        }
    }
    p.push(insn(MOV64_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Attaches the program of `rules` to the cgroup at `dir`, unless a device
/// program is attached there already (an earlier command of the run).
pub fn apply(dir: &Path, rules: &[Rule]) -> io::Result<()> {
    let cgroup = std::fs::File::open(dir)?;
    if bpf::attached(cgroup.as_fd(), bpf::ATTACH_DEVICE)? > 0 {
        return Ok(());
    }
    let prog = bpf::load(
        bpf::PROG_TYPE_CGROUP_DEVICE,
        &program(rules),
        "device program",
    )?;
    bpf::attach(cgroup.as_fd(), prog.as_fd(), bpf::ATTACH_DEVICE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_defaults_to_everything() {
        assert_eq!(access_of(""), ACC_READ | ACC_WRITE | ACC_MKNOD);
        assert_eq!(access_of("r"), ACC_READ);
        assert_eq!(access_of("rw"), ACC_READ | ACC_WRITE);
    }

    #[test]
    fn rules_name_nodes_and_drivers() {
        let null = parse_allow("/dev/null rw");
        assert_eq!(
            null,
            [Rule {
                kind: CHAR,
                major: Some(1),
                minor: Some(3),
                access: ACC_READ | ACC_WRITE
            }]
        );
        assert_eq!(
            parse_allow("block-* r"),
            [Rule {
                kind: BLOCK,
                major: None,
                minor: None,
                access: ACC_READ
            }]
        );
        // /proc/devices lists "1 mem" among the character devices.
        assert!(parse_allow("char-mem").iter().any(|r| r.major == Some(1)));
        assert!(parse_allow("/nonexistent/flint").is_empty());
    }

    #[test]
    fn each_rule_jumps_past_itself_when_a_check_fails() {
        let r = Rule {
            kind: CHAR,
            major: Some(1),
            minor: None,
            access: ACC_READ,
        };
        let p = program(&[r]);
        // 6 loads, 7 of the rule (4 checks, the major, return 1), 2 at the end.
        assert_eq!(p.len(), 6 + 7 + 2);
        let block = &p[6..13];
        assert_eq!(block[2].off, 4);
        assert_eq!(block[3].off, 3);
        assert_eq!(block[4].off, 2);
        assert_eq!((block[5].code, block[5].imm), (MOV64_K, 1));
        assert_eq!(block[6].code, EXIT);
        assert_eq!((p[13].code, p[13].imm), (MOV64_K, 0));
    }
}
