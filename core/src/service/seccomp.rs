//! The sandbox settings that systemd enforces with seccomp filters, built
//! in flint with `seccompiler` (rust-vmm's BPF compiler, made for exactly
//! this) and loaded by the child as its last step before `execve()`:
//! `RestrictAddressFamilies=`, `RestrictNamespaces=`,
//! `MemoryDenyWriteExecute=`, `RestrictRealtime=`, `RestrictSUIDSGID=`,
//! `LockPersonality=`, `SystemCallArchitectures=`, and the system calls
//! that `ProtectClock=`, `ProtectKernelModules=`, `ProtectKernelLogs=`,
//! `ProtectKernelTunables=`, `ProtectHostname=` and `PrivateDevices=` take
//! away (systemd's `seccomp-util.c`, each with its error number). Each
//! setting is a filter of its own, as in systemd; the kernel applies the
//! strictest answer.
//!
//! `SystemCallFilter=` (with `SystemCallErrorNumber=`), loaded last, takes
//! its groups from `syscall_groups.rs` (what `systemd-analyze
//! syscall-filter` lists) and system call numbers from the `syscalls`
//! crate; names this architecture lacks are skipped, as systemd skips them.
//!
//! Every filter also refuses system calls of another architecture (the
//! 32-bit ones of an x86-64 process), as `SystemCallArchitectures=native`
//! does.

use std::collections::BTreeMap;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::spawn::BpfInsn;
use crate::unit::load::{Unit, Value};

/// Why the filters could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("building the seccomp filter: {0}")]
    Build(String),
    #[error("seccomp filters are not built for this architecture")]
    Arch,
}

fn on(unit: &Unit, section: &str, key: &str) -> bool {
    unit.get_bool(section, key).unwrap_or(false)
}

fn arch() -> Result<TargetArch, SeccompError> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else if cfg!(target_arch = "riscv64") {
        Ok(TargetArch::riscv64)
    } else {
        Err(SeccompError::Arch)
    }
}

/// One filter: the listed system calls (each with its rules; none: always)
/// answer `errno`, everything else is allowed.
fn deny(rules: Vec<(i64, Vec<SeccompRule>)>, errno: i32) -> Result<Vec<BpfInsn>, SeccompError> {
    program(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno.unsigned_abs()),
    )
}

/// One filter: the listed calls (with their rules) get `matched`, the
/// others `otherwise`.
fn program(
    rules: Vec<(i64, Vec<SeccompRule>)>,
    otherwise: SeccompAction,
    matched: SeccompAction,
) -> Result<Vec<BpfInsn>, SeccompError> {
    with_abi_check(raw_program(rules, otherwise, matched)?)
}

/// `program` as seccompiler writes it: its first three instructions check
/// the architecture and kill on another.
fn raw_program(
    rules: Vec<(i64, Vec<SeccompRule>)>,
    otherwise: SeccompAction,
    matched: SeccompAction,
) -> Result<Vec<BpfInsn>, SeccompError> {
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, r) in rules {
        map.entry(nr).or_default().extend(r);
    }
    let filter = SeccompFilter::new(map, otherwise, matched, arch()?)
        .map_err(|e| SeccompError::Build(e.to_string()))?;
    let program: seccompiler::BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| SeccompError::Build(e.to_string()))?;
    let program: Vec<BpfInsn> = program
        .into_iter()
        .map(|i| BpfInsn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    Ok(program)
}

/// Classic BPF opcodes (`linux/bpf_common.h`): `BPF_LD | BPF_W | BPF_ABS`,
/// `BPF_JMP | BPF_JEQ | BPF_K`, `BPF_JMP | BPF_JGE | BPF_K`,
/// `BPF_RET | BPF_K`.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
/// `SECCOMP_RET_ALLOW`.
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// `offsetof(struct seccomp_data, arch)` and `nr`.
const SECCOMP_DATA_ARCH: u32 = 4;
const SECCOMP_DATA_NR: u32 = 0;
/// The bit that marks an x32 system call of an x86-64 process
/// (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// seccompiler's program starts by killing the process on a system call of
/// another architecture (`AUDIT_ARCH_*` other than this one). On x86-64 the
/// x32 ABI's calls come with this architecture's value and their number
/// ORed with `X32_SYSCALL_BIT`, so no rule, written with x86-64 numbers,
/// would ever match them: a deny list could be passed by the same call
/// made through x32, where the kernel has that ABI. The check is extended
/// to kill those too, so every filter refuses the other ABIs as
/// `SystemCallArchitectures=native` does.
fn with_abi_check(program: Vec<BpfInsn>) -> Result<Vec<BpfInsn>, SeccompError> {
    let prologue_ok = program.len() > 3
        && program[0].code == BPF_LD_W_ABS
        && program[0].k == SECCOMP_DATA_ARCH
        && program[1].code == BPF_JEQ_K
        && (program[1].jt, program[1].jf) == (1, 0)
        && program[2].code == BPF_RET_K;
    if !prologue_ok {
        return Err(SeccompError::Build(
            "seccompiler's program does not start with its architecture check".into(),
        ));
    }
    if !cfg!(target_arch = "x86_64") {
        return Ok(program);
    }
    let kill = program[2];
    let mut out = Vec::with_capacity(program.len() + 4);
    out.extend_from_slice(&program[..3]);
    out.push(BpfInsn {
        code: BPF_LD_W_ABS,
        jt: 0,
        jf: 0,
        k: SECCOMP_DATA_NR,
    });
    out.push(BpfInsn {
        code: BPF_JGE_K,
        jt: 0,
        jf: 2,
        k: X32_SYSCALL_BIT,
    });
    // -1, which a tracer sets to skip a call (seccomp runs again after
    // ptrace), is not x32's: libseccomp lets it through the same way.
    out.push(BpfInsn {
        code: BPF_JEQ_K,
        jt: 1,
        jf: 0,
        k: u32::MAX,
    });
    out.push(kill);
    out.extend_from_slice(&program[3..]);
    Ok(out)
}

fn cond(arg: u8, len: Len, op: Op, value: u64) -> Result<Cond, SeccompError> {
    Cond::new(arg, len, op, value).map_err(|e| SeccompError::Build(e.to_string()))
}

fn rule(conds: Vec<Cond>) -> Result<SeccompRule, SeccompError> {
    SeccompRule::new(conds).map_err(|e| SeccompError::Build(e.to_string()))
}

/// A rule matching when all of `bits` are set in argument `arg`.
fn bits_set(arg: u8, bits: u64) -> Result<SeccompRule, SeccompError> {
    rule(vec![cond(arg, Len::Qword, Op::MaskedEq(bits), bits)?])
}

/// `SYS_*` as the `i64` seccompiler takes (`c_long` is `i64` on the
/// architectures it builds filters for).
#[allow(clippy::useless_conversion)]
fn nr(n: libc::c_long) -> i64 {
    i64::from(n)
}

/// Address family names (`AF_*`) and their numbers.
const FAMILIES: &[(&str, u64)] = &[
    ("AF_UNIX", 1),
    ("AF_LOCAL", 1),
    ("AF_INET", 2),
    ("AF_AX25", 3),
    ("AF_IPX", 4),
    ("AF_APPLETALK", 5),
    ("AF_NETROM", 6),
    ("AF_BRIDGE", 7),
    ("AF_ATMPVC", 8),
    ("AF_X25", 9),
    ("AF_INET6", 10),
    ("AF_ROSE", 11),
    ("AF_DECnet", 12),
    ("AF_NETBEUI", 13),
    ("AF_SECURITY", 14),
    ("AF_KEY", 15),
    ("AF_NETLINK", 16),
    ("AF_ROUTE", 16),
    ("AF_PACKET", 17),
    ("AF_ASH", 18),
    ("AF_ECONET", 19),
    ("AF_ATMSVC", 20),
    ("AF_RDS", 21),
    ("AF_SNA", 22),
    ("AF_IRDA", 23),
    ("AF_PPPOX", 24),
    ("AF_WANPIPE", 25),
    ("AF_LLC", 26),
    ("AF_IB", 27),
    ("AF_MPLS", 28),
    ("AF_CAN", 29),
    ("AF_TIPC", 30),
    ("AF_BLUETOOTH", 31),
    ("AF_IUCV", 32),
    ("AF_RXRPC", 33),
    ("AF_ISDN", 34),
    ("AF_PHONET", 35),
    ("AF_IEEE802154", 36),
    ("AF_CAIF", 37),
    ("AF_ALG", 38),
    ("AF_NFC", 39),
    ("AF_VSOCK", 40),
    ("AF_KCM", 41),
    ("AF_QIPCRTR", 42),
    ("AF_SMC", 43),
    ("AF_XDP", 44),
    ("AF_MCTP", 45),
];

/// `RestrictAddressFamilies=`: the first assignment decides between an
/// allow list and a deny list (`~`), later ones add to it or take from it,
/// an empty one resets, `none` allows no family (systemd's
/// `config_parse_address_families()`). `None`: no restriction.
fn address_families(values: &[&str]) -> Option<(bool, Vec<u64>)> {
    let mut state: Option<(bool, Vec<u64>)> = None;
    for v in values {
        let v = v.trim();
        if v.is_empty() {
            state = None;
            continue;
        }
        if v == "none" {
            state = Some((true, Vec::new()));
            continue;
        }
        let (invert, list) = v.strip_prefix('~').map_or((false, v), |r| (true, r));
        let (allow, set) = state.get_or_insert_with(|| (!invert, Vec::new()));
        for name in list.split_whitespace() {
            let Some((_, n)) = FAMILIES.iter().find(|(f, _)| *f == name) else {
                // As systemd: "Failed to parse address family, ignoring".
                tracing::warn!(
                    "RestrictAddressFamilies=: unknown address family, ignoring: {name}"
                );
                continue;
            };
            // Adding to the list of its own kind, or taking from the other.
            if *allow == invert {
                set.retain(|x| x != n);
            } else if !set.contains(n) {
                set.push(*n);
            }
        }
    }
    state
}

/// Namespace names and their `CLONE_NEW*` flags.
const NAMESPACES: &[(&str, u64)] = &[
    ("cgroup", libc::CLONE_NEWCGROUP as u64),
    ("ipc", libc::CLONE_NEWIPC as u64),
    ("net", libc::CLONE_NEWNET as u64),
    ("mnt", libc::CLONE_NEWNS as u64),
    ("pid", libc::CLONE_NEWPID as u64),
    ("user", libc::CLONE_NEWUSER as u64),
    ("uts", libc::CLONE_NEWUTS as u64),
    // CLONE_NEWTIME: unshare() and clone3() only.
    ("time", 0x80),
];

fn all_namespaces() -> u64 {
    NAMESPACES.iter().fold(0, |a, (_, f)| a | f)
}

/// `RestrictNamespaces=`: the namespaces the service may still make, or
/// `None` when all. A list allows those (a second list adds to it), `~`
/// takes them away, `yes` allows none, `no` all (systemd's
/// `config_parse_restrict_namespaces()`); names it does not know are
/// ignored, as systemd ignores them.
fn namespaces_allowed(values: &[&str]) -> Option<u64> {
    let all = all_namespaces();
    let mut allowed: Option<u64> = None;
    for v in values {
        let v = v.trim();
        if v.is_empty() || v == "no" || v == "false" || v == "0" || v == "off" {
            allowed = None;
            continue;
        }
        if v == "yes" || v == "true" || v == "1" || v == "on" {
            allowed = Some(0);
            continue;
        }
        let (invert, list) = v.strip_prefix('~').map_or((false, v), |r| (true, r));
        let flags = list
            .split_whitespace()
            .filter_map(|n| NAMESPACES.iter().find(|(name, _)| *name == n))
            .fold(0, |a, (_, f)| a | f);
        allowed = Some(if invert {
            allowed.unwrap_or(all) & !flags
        } else {
            match allowed {
                None => flags,
                Some(a) => a | flags,
            }
        });
    }
    allowed.filter(|a| *a & all != all)
}

/// Every filter the unit's settings ask for.
pub fn filters(unit: &Unit, section: &str) -> Result<Vec<Vec<BpfInsn>>, SeccompError> {
    let mut out = Vec::new();
    let dword = Len::Dword;

    // RestrictAddressFamilies=: socket() of another family fails with
    // EAFNOSUPPORT.
    if let Some((allow, list)) = address_families(&unit.strings(section, "RestrictAddressFamilies"))
    {
        let rules = if allow {
            // Every number below, between and above the listed families;
            // none listed: socket() always fails (an empty chain matches
            // every call).
            let mut sorted = list.clone();
            sorted.sort_unstable();
            let mut rules = Vec::new();
            if !sorted.is_empty() {
                let mut low = 0;
                for f in &sorted {
                    for n in low..*f {
                        rules.push(rule(vec![cond(0, dword.clone(), Op::Eq, n)?])?);
                    }
                    low = f + 1;
                }
                rules.push(rule(vec![cond(0, dword.clone(), Op::Ge, low)?])?);
            }
            rules
        } else {
            list.iter()
                .map(|f| rule(vec![cond(0, dword.clone(), Op::Eq, *f)?]))
                .collect::<Result<_, _>>()?
        };
        if allow || !rules.is_empty() {
            out.push(deny(
                vec![(nr(libc::SYS_socket), rules)],
                libc::EAFNOSUPPORT,
            )?);
        }
    }

    // RestrictNamespaces=: unshare() and clone() with a namespace flag it
    // does not allow, setns() into one (or of any kind), fail with EPERM;
    // clone3() with ENOSYS, so that the C library falls back to clone(),
    // whose flags a filter can read.
    let ns_values = unit.strings(section, "RestrictNamespaces");
    if let Some(allowed) = namespaces_allowed(&ns_values) {
        let mut rules = Vec::new();
        // setns() with no flags joins whatever the fd is; with a pidfd,
        // several kinds at once (any forbidden one refuses the call). With
        // nothing allowed, setns() is refused altogether (systemd's
        // `seccomp_restrict_namespaces()`).
        let mut setns = if allowed & all_namespaces() == 0 {
            Vec::new()
        } else {
            vec![rule(vec![cond(1, dword.clone(), Op::Eq, 0)?])?]
        };
        for (_, f) in NAMESPACES.iter().filter(|(_, f)| allowed & f == 0) {
            rules.push((nr(libc::SYS_unshare), vec![bits_set(0, *f)?]));
            rules.push((nr(libc::SYS_clone), vec![bits_set(clone_flags_arg(), *f)?]));
            if !setns.is_empty() {
                setns.push(bits_set(1, *f)?);
            }
        }
        rules.push((nr(libc::SYS_setns), setns));
        out.push(deny(rules, libc::EPERM)?);
        out.push(deny(
            vec![(nr(libc::SYS_clone3), Vec::new())],
            libc::ENOSYS,
        )?);
    }

    // MemoryDenyWriteExecute=: no mapping both writable and executable, no
    // turning a mapping executable, no executable shared memory.
    if on(unit, section, "MemoryDenyWriteExecute") {
        let wx = (libc::PROT_WRITE | libc::PROT_EXEC) as u64;
        let x = libc::PROT_EXEC as u64;
        out.push(deny(
            vec![
                (nr(libc::SYS_mmap), vec![bits_set(2, wx)?]),
                (nr(libc::SYS_mprotect), vec![bits_set(2, x)?]),
                (nr(libc::SYS_pkey_mprotect), vec![bits_set(2, x)?]),
                (
                    nr(libc::SYS_shmat),
                    vec![bits_set(2, libc::SHM_EXEC as u64)?],
                ),
            ],
            libc::EPERM,
        )?);
    }

    // RestrictRealtime=: no real-time or deadline scheduling policy.
    if on(unit, section, "RestrictRealtime") {
        // SCHED_OTHER, SCHED_BATCH and SCHED_IDLE (0, 3, 5) pass; every
        // other value, a real-time one with SCHED_RESET_ON_FORK included,
        // is refused, as systemd's `seccomp_restrict_realtime()` refuses
        // all policies above SCHED_IDLE.
        let rules = vec![
            rule(vec![cond(1, dword.clone(), Op::Eq, 1)?])?,
            rule(vec![cond(1, dword.clone(), Op::Eq, 2)?])?,
            rule(vec![cond(1, dword.clone(), Op::Eq, 4)?])?,
            rule(vec![cond(1, dword.clone(), Op::Gt, 5)?])?,
        ];
        out.push(deny(
            vec![(nr(libc::SYS_sched_setscheduler), rules)],
            libc::EPERM,
        )?);
    }

    // RestrictSUIDSGID=: no set-user-ID or set-group-ID file made
    // (implied by DynamicUser=, so that a dynamic user leaves none behind).
    if on(unit, section, "RestrictSUIDSGID") || on(unit, section, "DynamicUser") {
        out.push(deny(suid_sgid_rules()?, libc::EPERM)?);
    }

    // LockPersonality=: personality() may only ask, or set what it is.
    if on(unit, section, "LockPersonality") {
        let current = match unit.get(section, "Personality") {
            Some(Value::U64(p)) => *p,
            _ => 0,
        };
        out.push(deny(
            vec![(
                nr(libc::SYS_personality),
                vec![rule(vec![
                    cond(0, dword.clone(), Op::Ne, 0xffff_ffff)?,
                    cond(0, dword.clone(), Op::Ne, current)?,
                ])?],
            )],
            libc::EPERM,
        )?);
    }

    // The system calls that the Protect*= settings and PrivateDevices= take
    // away, each set with EPERM.
    let mut sets: Vec<Vec<libc::c_long>> = Vec::new();
    if on(unit, section, "ProtectClock") {
        sets.push(vec![
            libc::SYS_adjtimex,
            libc::SYS_clock_adjtime,
            libc::SYS_clock_settime,
            libc::SYS_settimeofday,
        ]);
    }
    if on(unit, section, "ProtectKernelModules") {
        sets.push(vec![
            libc::SYS_delete_module,
            libc::SYS_finit_module,
            libc::SYS_init_module,
        ]);
    }
    if on(unit, section, "ProtectKernelLogs") {
        sets.push(vec![libc::SYS_syslog]);
    }
    if on(unit, section, "ProtectHostname") {
        sets.push(vec![libc::SYS_sethostname, libc::SYS_setdomainname]);
    }
    #[cfg(target_arch = "x86_64")]
    {
        if on(unit, section, "ProtectKernelTunables") {
            sets.push(vec![libc::SYS__sysctl]);
        }
        if on(unit, section, "PrivateDevices") {
            sets.push(vec![libc::SYS_ioperm, libc::SYS_iopl]);
        }
    }
    for set in sets {
        out.push(deny(
            set.into_iter().map(|n| (nr(n), Vec::new())).collect(),
            libc::EPERM,
        )?);
    }

    // SystemCallLog=, before SystemCallFilter= (systemd's order).
    out.extend(system_call_log(unit, section)?);
    out.extend(system_call_filter(unit, section)?);

    // SystemCallArchitectures=: every filter already refuses calls of
    // another architecture; `native` alone still needs one loaded.
    if out.is_empty()
        && unit
            .strings(section, "SystemCallArchitectures")
            .iter()
            .any(|v| !v.trim().is_empty())
    {
        out.push(deny(Vec::new(), libc::EPERM)?);
    }
    Ok(out)
}

/// What a listed system call does, besides what the list's kind says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The list's own action (allowed in an allow list, refused in a deny
    /// list with `SystemCallErrorNumber=`).
    Listed,
    Errno(u32),
    Kill,
}

/// Whether the list allows (else denies), and each call's outcome.
type CallList = (bool, BTreeMap<String, Outcome>);

/// `SystemCallFilter=` as systemd reads it (`config_parse_syscall_filter()`):
/// the first assignment makes an allow list (with `@default` in it) or,
/// with `~`, a deny list; later ones add to it or take from it; an empty
/// one resets. `NAME:ERRNO` and `NAME:kill` give one call its own outcome,
/// also in an allow list. `None`: no filter.
fn parse_system_call_filter(values: &[&str]) -> Option<CallList> {
    parse_call_list(values, Some("@default"))
}

/// A list of system calls as `SystemCallFilter=` and `SystemCallLog=`
/// read them; an allow list starts with `default` (`@default` for the
/// filter, nothing for the log).
fn parse_call_list(values: &[&str], default: Option<&str>) -> Option<CallList> {
    let mut state: Option<CallList> = None;
    for v in values {
        let v = v.trim();
        if v.is_empty() {
            state = None;
            continue;
        }
        let (invert, list) = v.strip_prefix('~').map_or((false, v), |r| (true, r));
        let (allow, set) = state.get_or_insert_with(|| {
            let mut set = BTreeMap::new();
            if !invert && let Some(group) = default {
                expand(group, Outcome::Listed, &mut set, 0);
            }
            (!invert, set)
        });
        for word in list.split_whitespace() {
            let (name, outcome) = match word.split_once(':') {
                Some((n, "kill")) => (n, Outcome::Kill),
                Some((n, e)) => {
                    let Some(v) = errno_value(e) else {
                        // As systemd: the word is ignored.
                        tracing::warn!("SystemCallFilter=: unknown error number, ignoring: {word}");
                        continue;
                    };
                    (n, Outcome::Errno(v))
                }
                None => (word, Outcome::Listed),
            };
            if *allow != invert {
                expand(name, outcome, set, 0);
            } else if outcome != Outcome::Listed {
                // `~name:ERRNO` in an allow list: the call fails with it.
                expand(name, outcome, set, 0);
            } else {
                let mut gone = BTreeMap::new();
                expand(name, Outcome::Listed, &mut gone, 0);
                for k in gone.keys() {
                    set.remove(k);
                }
            }
        }
    }
    state
}

/// Adds `name` (a system call or an `@group`, recursively) to `set`.
fn expand(name: &str, outcome: Outcome, set: &mut BTreeMap<String, Outcome>, depth: u8) {
    if let Some(group) = name.strip_prefix('@') {
        let Some((_, members)) = super::syscall_groups::GROUPS
            .iter()
            .find(|(g, _)| g.strip_prefix('@') == Some(group))
        else {
            tracing::debug!("SystemCallFilter=: unknown group @{group}, ignoring");
            return;
        };
        if depth < 8 {
            for m in *members {
                expand(m, outcome, set, depth + 1);
            }
        }
    } else {
        set.insert(name.to_string(), outcome);
    }
}

/// The error names `SystemCallFilter=` and `SystemCallErrorNumber=` take.
const ERRNO_NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("ESRCH", libc::ESRCH),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("ENXIO", libc::ENXIO),
    ("E2BIG", libc::E2BIG),
    ("ENOEXEC", libc::ENOEXEC),
    ("EBADF", libc::EBADF),
    ("ECHILD", libc::ECHILD),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("ENOTBLK", libc::ENOTBLK),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("EXDEV", libc::EXDEV),
    ("ENODEV", libc::ENODEV),
    ("ENOTDIR", libc::ENOTDIR),
    ("EISDIR", libc::EISDIR),
    ("EINVAL", libc::EINVAL),
    ("ENFILE", libc::ENFILE),
    ("EMFILE", libc::EMFILE),
    ("ENOTTY", libc::ENOTTY),
    ("ETXTBSY", libc::ETXTBSY),
    ("EFBIG", libc::EFBIG),
    ("ENOSPC", libc::ENOSPC),
    ("ESPIPE", libc::ESPIPE),
    ("EROFS", libc::EROFS),
    ("EMLINK", libc::EMLINK),
    ("EPIPE", libc::EPIPE),
    ("EDOM", libc::EDOM),
    ("ERANGE", libc::ERANGE),
    ("EDEADLK", libc::EDEADLK),
    ("ENAMETOOLONG", libc::ENAMETOOLONG),
    ("ENOLCK", libc::ENOLCK),
    ("ENOSYS", libc::ENOSYS),
    ("ENOTEMPTY", libc::ENOTEMPTY),
    ("ELOOP", libc::ELOOP),
    ("EWOULDBLOCK", libc::EWOULDBLOCK),
    ("ENOMSG", libc::ENOMSG),
    ("EIDRM", libc::EIDRM),
    ("ECHRNG", libc::ECHRNG),
    ("EL2NSYNC", libc::EL2NSYNC),
    ("EL3HLT", libc::EL3HLT),
    ("EL3RST", libc::EL3RST),
    ("ELNRNG", libc::ELNRNG),
    ("EUNATCH", libc::EUNATCH),
    ("ENOCSI", libc::ENOCSI),
    ("EL2HLT", libc::EL2HLT),
    ("EBADE", libc::EBADE),
    ("EBADR", libc::EBADR),
    ("EXFULL", libc::EXFULL),
    ("ENOANO", libc::ENOANO),
    ("EBADRQC", libc::EBADRQC),
    ("EBADSLT", libc::EBADSLT),
    ("EDEADLOCK", libc::EDEADLOCK),
    ("EBFONT", libc::EBFONT),
    ("ENOSTR", libc::ENOSTR),
    ("ENODATA", libc::ENODATA),
    ("ETIME", libc::ETIME),
    ("ENOSR", libc::ENOSR),
    ("ENONET", libc::ENONET),
    ("ENOPKG", libc::ENOPKG),
    ("EREMOTE", libc::EREMOTE),
    ("ENOLINK", libc::ENOLINK),
    ("EADV", libc::EADV),
    ("ESRMNT", libc::ESRMNT),
    ("ECOMM", libc::ECOMM),
    ("EPROTO", libc::EPROTO),
    ("EMULTIHOP", libc::EMULTIHOP),
    ("EDOTDOT", libc::EDOTDOT),
    ("EBADMSG", libc::EBADMSG),
    ("EOVERFLOW", libc::EOVERFLOW),
    ("ENOTUNIQ", libc::ENOTUNIQ),
    ("EBADFD", libc::EBADFD),
    ("EREMCHG", libc::EREMCHG),
    ("ELIBACC", libc::ELIBACC),
    ("ELIBBAD", libc::ELIBBAD),
    ("ELIBSCN", libc::ELIBSCN),
    ("ELIBMAX", libc::ELIBMAX),
    ("ELIBEXEC", libc::ELIBEXEC),
    ("EILSEQ", libc::EILSEQ),
    ("ERESTART", libc::ERESTART),
    ("ESTRPIPE", libc::ESTRPIPE),
    ("EUSERS", libc::EUSERS),
    ("ENOTSOCK", libc::ENOTSOCK),
    ("EDESTADDRREQ", libc::EDESTADDRREQ),
    ("EMSGSIZE", libc::EMSGSIZE),
    ("EPROTOTYPE", libc::EPROTOTYPE),
    ("ENOPROTOOPT", libc::ENOPROTOOPT),
    ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT),
    ("ESOCKTNOSUPPORT", libc::ESOCKTNOSUPPORT),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("ENOTSUP", libc::ENOTSUP),
    ("EPFNOSUPPORT", libc::EPFNOSUPPORT),
    ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("ENETDOWN", libc::ENETDOWN),
    ("ENETUNREACH", libc::ENETUNREACH),
    ("ENETRESET", libc::ENETRESET),
    ("ECONNABORTED", libc::ECONNABORTED),
    ("ECONNRESET", libc::ECONNRESET),
    ("ENOBUFS", libc::ENOBUFS),
    ("EISCONN", libc::EISCONN),
    ("ENOTCONN", libc::ENOTCONN),
    ("ESHUTDOWN", libc::ESHUTDOWN),
    ("ETOOMANYREFS", libc::ETOOMANYREFS),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("EHOSTDOWN", libc::EHOSTDOWN),
    ("EHOSTUNREACH", libc::EHOSTUNREACH),
    ("EALREADY", libc::EALREADY),
    ("EINPROGRESS", libc::EINPROGRESS),
    ("ESTALE", libc::ESTALE),
    ("EUCLEAN", libc::EUCLEAN),
    ("ENOTNAM", libc::ENOTNAM),
    ("ENAVAIL", libc::ENAVAIL),
    ("EISNAM", libc::EISNAM),
    ("EREMOTEIO", libc::EREMOTEIO),
    ("EDQUOT", libc::EDQUOT),
    ("ENOMEDIUM", libc::ENOMEDIUM),
    ("EMEDIUMTYPE", libc::EMEDIUMTYPE),
    ("ECANCELED", libc::ECANCELED),
    ("ENOKEY", libc::ENOKEY),
    ("EKEYEXPIRED", libc::EKEYEXPIRED),
    ("EKEYREVOKED", libc::EKEYREVOKED),
    ("EKEYREJECTED", libc::EKEYREJECTED),
    ("EOWNERDEAD", libc::EOWNERDEAD),
    ("ENOTRECOVERABLE", libc::ENOTRECOVERABLE),
    ("ERFKILL", libc::ERFKILL),
    ("EHWPOISON", libc::EHWPOISON),
];

/// `EPERM`, `EACCES`, ... or a number (1-4095).
fn errno_value(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=4095).contains(&n).then_some(n);
    }
    ERRNO_NAMES
        .iter()
        .find(|(n, _)| *n == s)
        .and_then(|(_, v)| u32::try_from(*v).ok())
}

/// `SystemCallErrorNumber=`: the error of a refused call, or `None` to kill
/// the process.
fn error_number(unit: &Unit, section: &str) -> Option<u32> {
    match unit
        .strings(section, "SystemCallErrorNumber")
        .last()
        .map(|v| v.trim())
    {
        None | Some("" | "kill") => None,
        Some(v) => errno_value(v).or_else(|| {
            // As systemd: the setting is ignored (the process is killed).
            tracing::warn!("SystemCallErrorNumber=: unknown error number, ignoring: {v}");
            None
        }),
    }
}

/// The number of a system call on this architecture.
fn syscall_number(name: &str) -> Option<i64> {
    use std::str::FromStr;
    syscalls::Sysno::from_str(name)
        .ok()
        .map(|s| i64::from(s.id()))
}

/// The filter of `SystemCallLog=` (systemd's `apply_syscall_log()`): the
/// listed calls are logged (`SECCOMP_RET_LOG`, an audit record in the
/// kernel's log), or with `~` every call but them; all are let through.
fn system_call_log(unit: &Unit, section: &str) -> Result<Option<Vec<BpfInsn>>, SeccompError> {
    log_filter(&unit.strings(section, "SystemCallLog"))
}

fn log_filter(values: &[&str]) -> Result<Option<Vec<BpfInsn>>, SeccompError> {
    let Some((allow, set)) = parse_call_list(values, None) else {
        return Ok(None);
    };
    let listed: Vec<(i64, Vec<SeccompRule>)> = set
        .keys()
        .filter_map(|name| syscall_number(name))
        .map(|n| (n, Vec::new()))
        .collect();
    if allow && listed.is_empty() {
        return Ok(None);
    }
    let (otherwise, matched) = if allow {
        (SeccompAction::Allow, SeccompAction::Log)
    } else {
        (SeccompAction::Log, SeccompAction::Allow)
    };
    // Only logs: calls of another architecture (32-bit programs, x32) are
    // let through, not killed as by the filters that refuse.
    let mut p = raw_program(listed, otherwise, matched)?;
    match p.get_mut(2) {
        Some(ret) if ret.code == BPF_RET_K => ret.k = SECCOMP_RET_ALLOW,
        _ => {
            return Err(SeccompError::Build(
                "seccompiler's program does not start with its architecture check".into(),
            ));
        }
    }
    Ok(Some(p))
}

/// The filters of `SystemCallFilter=`.
fn system_call_filter(unit: &Unit, section: &str) -> Result<Vec<Vec<BpfInsn>>, SeccompError> {
    let Some((allow, set)) = parse_system_call_filter(&unit.strings(section, "SystemCallFilter"))
    else {
        return Ok(Vec::new());
    };
    let refuse = match error_number(unit, section) {
        Some(e) => SeccompAction::Errno(e),
        None => SeccompAction::KillProcess,
    };
    let mut by_action: BTreeMap<u64, (SeccompAction, Vec<i64>)> = BTreeMap::new();
    let mut allowed = Vec::new();
    for (name, outcome) in &set {
        let Some(nr) = syscall_number(name) else {
            continue;
        };
        let action = match (outcome, allow) {
            (Outcome::Listed, true) => {
                allowed.push(nr);
                continue;
            }
            (Outcome::Listed, false) => refuse.clone(),
            (Outcome::Errno(e), _) => SeccompAction::Errno(*e),
            (Outcome::Kill, _) => SeccompAction::KillProcess,
        };
        // In an allow list, a call with an error number of its own is let
        // through by the allow list and refused by a filter of its own (the
        // kernel takes the strictest answer).
        if allow && matches!(action, SeccompAction::Errno(_)) {
            allowed.push(nr);
        }
        let key = match action {
            SeccompAction::Errno(e) => u64::from(e),
            _ => u64::MAX,
        };
        by_action
            .entry(key)
            .or_insert_with(|| (action, Vec::new()))
            .1
            .push(nr);
    }
    let mut out = Vec::new();
    for (_, (action, nrs)) in by_action {
        out.push(program(
            nrs.into_iter().map(|n| (n, Vec::new())).collect(),
            SeccompAction::Allow,
            action,
        )?);
    }
    // The allow list last: it may not allow seccomp() itself.
    if allow {
        out.push(program(
            allowed.into_iter().map(|n| (n, Vec::new())).collect(),
            refuse,
            SeccompAction::Allow,
        )?);
    }
    Ok(out)
}

/// The argument of `clone()` that holds its flags: the first, except on
/// s390 (not a target here).
fn clone_flags_arg() -> u8 {
    0
}

const SYS_FCHMODAT2: i64 = 452;

/// `RestrictSUIDSGID=`: chmod and friends with the set-ID bits, files and
/// directories created with them.
fn suid_sgid_rules() -> Result<Vec<(i64, Vec<SeccompRule>)>, SeccompError> {
    let suid = u64::from(libc::S_ISUID);
    let sgid = u64::from(libc::S_ISGID);
    let creat = libc::O_CREAT as u64;
    let both = |arg: u8| -> Result<Vec<SeccompRule>, SeccompError> {
        Ok(vec![bits_set(arg, suid)?, bits_set(arg, sgid)?])
    };
    let with_create = |flags: u8, mode: u8| -> Result<Vec<SeccompRule>, SeccompError> {
        Ok(vec![
            rule(vec![
                cond(flags, Len::Qword, Op::MaskedEq(creat), creat)?,
                cond(mode, Len::Qword, Op::MaskedEq(suid), suid)?,
            ])?,
            rule(vec![
                cond(flags, Len::Qword, Op::MaskedEq(creat), creat)?,
                cond(mode, Len::Qword, Op::MaskedEq(sgid), sgid)?,
            ])?,
        ])
    };
    #[allow(unused_mut)]
    let mut rules = vec![
        (nr(libc::SYS_fchmod), both(1)?),
        (nr(libc::SYS_fchmodat), both(2)?),
        (nr(libc::SYS_mkdirat), both(2)?),
        (nr(libc::SYS_mknodat), both(2)?),
        (nr(libc::SYS_openat), with_create(2, 3)?),
        // openat2() keeps its flags and mode in a structure a filter cannot
        // read: refused altogether, as systemd refuses it.
        (nr(libc::SYS_openat2), Vec::new()),
        // fchmodat2() (Linux 6.6; the same number on every architecture).
        (SYS_FCHMODAT2, both(2)?),
    ];
    #[cfg(target_arch = "x86_64")]
    rules.extend([
        (nr(libc::SYS_chmod), both(1)?),
        (nr(libc::SYS_mkdir), both(1)?),
        (nr(libc::SYS_mknod), both(1)?),
        (nr(libc::SYS_open), with_create(1, 2)?),
        (nr(libc::SYS_creat), both(1)?),
    ]);
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_family_lists_merge_as_systemds() {
        assert_eq!(
            address_families(&["AF_UNIX AF_INET", "AF_INET6"]),
            Some((true, vec![1, 2, 10]))
        );
        assert_eq!(
            address_families(&["AF_UNIX AF_INET", "~AF_INET"]),
            Some((true, vec![1]))
        );
        assert_eq!(
            address_families(&["~AF_PACKET", "AF_PACKET"]),
            Some((false, vec![]))
        );
        assert_eq!(address_families(&["AF_UNIX", ""]), None);
        assert_eq!(address_families(&["none"]), Some((true, vec![])));
        // Unknown names are ignored, as systemd ignores them.
        assert_eq!(
            address_families(&["AF_NOPE AF_UNIX"]),
            Some((true, vec![1]))
        );
    }

    #[test]
    fn system_call_lists_merge_as_systemds() {
        // An allow list starts with @default.
        let (allow, set) = parse_system_call_filter(&["ioperm"]).unwrap();
        assert!(allow && set.contains_key("execve") && set.contains_key("ioperm"));
        // A deny list, from which later plain names are taken again.
        let (allow, set) =
            parse_system_call_filter(&["~read write open execve ioperm", "read write open execve"])
                .unwrap();
        assert!(!allow);
        assert_eq!(set.keys().collect::<Vec<_>>(), ["ioperm"]);
        // `~name:ERRNO` in an allow list gives the call its error.
        let (_, set) = parse_system_call_filter(&["@system-service", "~uname:EILSEQ"]).unwrap();
        assert_eq!(
            set.get("uname"),
            Some(&Outcome::Errno(libc::EILSEQ.unsigned_abs()))
        );
        assert_eq!(set.get("read"), Some(&Outcome::Listed));
        // Groups nest: @system-service holds @basic-io's calls.
        assert!(set.contains_key("pread64"));
        assert_eq!(parse_system_call_filter(&["ioperm", ""]), None);
        let (_, set) = parse_system_call_filter(&["~uname:ENOTANERROR mount"]).unwrap();
        assert_eq!(set.keys().collect::<Vec<_>>(), ["mount"]);
    }

    #[test]
    fn every_filter_refuses_other_abis_first() {
        let f = deny(vec![(nr(libc::SYS_uname), Vec::new())], libc::EPERM).unwrap();
        assert_eq!((f[0].code, f[0].k), (BPF_LD_W_ABS, SECCOMP_DATA_ARCH));
        assert_eq!(f[1].code, BPF_JEQ_K);
        assert_eq!(f[2].code, BPF_RET_K);
        if cfg!(target_arch = "x86_64") {
            // The number, then x32's bit: both refused before any rule.
            assert_eq!((f[3].code, f[3].k), (BPF_LD_W_ABS, SECCOMP_DATA_NR));
            assert_eq!(
                (f[4].code, f[4].k, f[4].jt, f[4].jf),
                (BPF_JGE_K, X32_SYSCALL_BIT, 0, 2)
            );
            // -1 (a tracer skipping a call) is let through to the rules.
            assert_eq!(
                (f[5].code, f[5].k, f[5].jt, f[5].jf),
                (BPF_JEQ_K, u32::MAX, 1, 0)
            );
            assert_eq!((f[6].code, f[6].k), (BPF_RET_K, f[2].k));
            // Then seccompiler's own program, from its load of the number.
            assert_eq!((f[7].code, f[7].k), (BPF_LD_W_ABS, SECCOMP_DATA_NR));
        }
    }

    #[test]
    fn the_log_filter_lets_other_abis_through() {
        let f = log_filter(&["uname"]).unwrap().expect("a filter");
        assert_eq!((f[0].code, f[0].k), (BPF_LD_W_ABS, SECCOMP_DATA_ARCH));
        assert_eq!((f[2].code, f[2].k), (BPF_RET_K, SECCOMP_RET_ALLOW));
        // No x32 check: seccompiler's load of the number comes next.
        assert_eq!((f[3].code, f[3].k), (BPF_LD_W_ABS, SECCOMP_DATA_NR));
        assert!(
            !f.iter()
                .any(|i| i.code == BPF_JGE_K && i.k == X32_SYSCALL_BIT)
        );
        // SECCOMP_RET_LOG for the listed call, nothing killed.
        assert!(f.iter().any(|i| i.code == BPF_RET_K && i.k == 0x7ffc_0000));
        assert!(
            !f.iter()
                .any(|i| i.code == BPF_RET_K && i.k & 0xffff_0000 == 0x8000_0000)
        );
        assert!(log_filter(&["nosuchcall"]).unwrap().is_none());
        assert!(log_filter(&["~uname"]).unwrap().is_some());
    }

    #[test]
    fn namespace_lists_merge_as_systemds() {
        let f = |n: &str| NAMESPACES.iter().find(|(x, _)| *x == n).unwrap().1;
        // The test-execute units' cases.
        assert_eq!(namespaces_allowed(&["mnt pid", "~mnt usr"]), Some(f("pid")));
        assert_eq!(
            namespaces_allowed(&["mnt pid", "mnt uts"]),
            Some(f("mnt") | f("pid") | f("uts"))
        );
        assert_eq!(
            namespaces_allowed(&["mnt pid cgroup net uts ipc user time", "net"]),
            None
        );
        assert_eq!(
            namespaces_allowed(&["mnt pid cgroup net uts ipc user"]),
            Some(all_namespaces() & !f("time"))
        );
        assert_eq!(namespaces_allowed(&["yes"]), Some(0));
        assert_eq!(namespaces_allowed(&["no"]), None);
        assert_eq!(
            namespaces_allowed(&["~mnt"]),
            Some(all_namespaces() & !f("mnt"))
        );
    }
}
