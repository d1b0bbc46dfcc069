//! The few eBPF pieces flint's cgroup programs need: instructions with
//! labels, `BPF_PROG_LOAD`, `BPF_PROG_QUERY` and `BPF_PROG_ATTACH`.
//!
//! No crate fits: aya and libbpf-rs load programs compiled elsewhere (an
//! object file and a BPF toolchain in the build), while flint's programs
//! are a handful of instructions per rule, generated from the unit at start
//! as systemd's `bpf-devices.c` and `bpf-firewall.c` generate them.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

pub const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// Opcodes: `BPF_LDX|BPF_MEM|BPF_W`, `BPF_ALU|BPF_AND|BPF_K`,
/// `BPF_ALU|BPF_RSH|BPF_K`, `BPF_ALU|BPF_MOV|BPF_X`, `BPF_ALU64|BPF_MOV|BPF_X`,
/// `BPF_ALU64|BPF_ADD|BPF_K`, `BPF_JMP|BPF_JNE|BPF_X`, `BPF_JMP|BPF_JNE|BPF_K`,
/// `BPF_JMP|BPF_JEQ|BPF_K`, `BPF_JMP32|BPF_JNE|BPF_K`,
/// `BPF_JMP|BPF_JA`, `BPF_JMP|BPF_CALL`, `BPF_ALU64|BPF_MOV|BPF_K`,
/// `BPF_JMP|BPF_EXIT`.
pub const LDX_W: u8 = 0x61;
pub const AND32_K: u8 = 0x54;
pub const RSH32_K: u8 = 0x74;
pub const MOV32_X: u8 = 0xbc;
pub const MOV64_X: u8 = 0xbf;
pub const ADD64_K: u8 = 0x07;
pub const JNE_X: u8 = 0x5d;
pub const JNE_K: u8 = 0x55;
pub const JEQ_K: u8 = 0x15;
pub const JNE32_K: u8 = 0x56;
pub const JA: u8 = 0x05;
pub const CALL: u8 = 0x85;
pub const MOV64_K: u8 = 0xb7;
pub const EXIT: u8 = 0x95;

/// Whether `code` is a jump whose offset a label fills in.
fn is_jump(code: u8) -> bool {
    matches!(code & 0x07, 0x05 | 0x06) && !matches!(code, CALL | EXIT)
}

/// The 32 bits of `v` as an immediate.
#[allow(clippy::cast_possible_wrap)]
pub fn imm(v: u32) -> i32 {
    v as i32
}

/// A program being written, with forward jumps to labels.
#[derive(Debug, Default)]
pub struct Asm {
    code: Vec<Insn>,
    /// Per label, where it was bound.
    labels: Vec<Option<usize>>,
    /// Jumps waiting for their label: (instruction, label).
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    /// A new label, bound later with [`Asm::bind`].
    pub fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    /// The next instruction is where `label` jumps to.
    pub fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }

    pub fn emit(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.code.push(insn(code, dst, src, off, imm));
    }

    /// A jump (`code` one of the jump opcodes) to `label`.
    pub fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, label: usize) {
        debug_assert!(is_jump(code));
        self.fixups.push((self.code.len(), label));
        self.code.push(insn(code, dst, src, 0, imm));
    }

    /// The instructions, jumps resolved; `None` when a label was never
    /// bound or a jump is too far.
    pub fn finish(mut self) -> Option<Vec<Insn>> {
        for (at, label) in self.fixups {
            let to = self.labels[label]?;
            let off = i64::try_from(to).ok()? - i64::try_from(at).ok()? - 1;
            self.code[at].off = i16::try_from(off).ok()?;
        }
        Some(self.code)
    }
}

/// `BPF_PROG_TYPE_CGROUP_SKB`, `BPF_PROG_TYPE_CGROUP_DEVICE`.
pub const PROG_TYPE_CGROUP_SKB: u32 = 8;
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_INET_INGRESS`, `BPF_CGROUP_INET_EGRESS`, `BPF_CGROUP_DEVICE`.
pub const ATTACH_INET_INGRESS: u32 = 0;
pub const ATTACH_INET_EGRESS: u32 = 1;
pub const ATTACH_DEVICE: u32 = 6;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_F_ALLOW_MULTI: u32 = 2;

fn put32(attr: &mut [u8; 128], at: usize, v: u32) {
    attr[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(attr: &mut [u8; 128], at: usize, v: u64) {
    attr[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> io::Result<libc::c_long> {
    // SAFETY: bpf(2) reads (and for queries writes) `attr`, a zeroed buffer
    // of the size passed whose fields the caller set; pointers in it point
    // to buffers that outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(0)
}

/// How many programs of `attach_type` are attached to the cgroup itself.
pub fn attached(cgroup: BorrowedFd<'_>, attach_type: u32) -> io::Result<u32> {
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, fd_u32(cgroup));
    put32(&mut attr, 4, attach_type);
    bpf(BPF_PROG_QUERY, &mut attr)?;
    Ok(u32::from_ne_bytes(
        attr[24..28].try_into().unwrap_or([0; 4]),
    ))
}

/// Loads `program` as a program of `prog_type`; a refusal says what the
/// verifier said last. `what` names the program in that error.
pub fn load(prog_type: u32, program: &[Insn], what: &str) -> io::Result<OwnedFd> {
    let insns: Vec<u64> = program
        .iter()
        .map(|i| {
            let mut b = [0u8; 8];
            b[0] = i.code;
            b[1] = i.regs;
            b[2..4].copy_from_slice(&i.off.to_ne_bytes());
            b[4..8].copy_from_slice(&i.imm.to_ne_bytes());
            u64::from_ne_bytes(b)
        })
        .collect();
    let license = c"GPL";
    let load = |log: Option<&mut Vec<u8>>| {
        let mut attr = [0u8; 128];
        put32(&mut attr, 0, prog_type);
        put32(&mut attr, 4, u32::try_from(insns.len()).unwrap_or(u32::MAX));
        put64(&mut attr, 8, insns.as_ptr() as u64);
        put64(&mut attr, 16, license.as_ptr() as u64);
        if let Some(log) = log {
            put32(&mut attr, 24, 1);
            put32(&mut attr, 28, u32::try_from(log.len()).unwrap_or(0));
            put64(&mut attr, 32, log.as_mut_ptr() as u64);
        }
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    let prog = load(None).map_err(|e| {
        // Again with the verifier's log, to say why.
        let mut log = vec![0u8; 1 << 16];
        let _ = load(Some(&mut log));
        let text = String::from_utf8_lossy(&log);
        let text = text.trim_end_matches('\0').trim();
        tracing::debug!("the kernel refused the {what}; its verifier said:\n{text}");
        // The reason is the last line before the statistics.
        let last = text
            .lines()
            .rev()
            .find(|l| !l.starts_with("processed ") && !l.trim().is_empty())
            .unwrap_or_default();
        io::Error::new(e.kind(), format!("loading the {what}: {e}: {last}"))
    })?;
    // SAFETY: BPF_PROG_LOAD returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(i32::try_from(prog).unwrap_or(-1)) })
}

/// Attaches `prog` to the cgroup (beside programs already there).
pub fn attach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>, attach_type: u32) -> io::Result<()> {
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, fd_u32(cgroup));
    put32(&mut attr, 4, fd_u32(prog));
    put32(&mut attr, 8, attach_type);
    put32(&mut attr, 12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_resolve_forward_and_backward() {
        let mut a = Asm::default();
        let end = a.label();
        let top = a.label();
        a.bind(top);
        a.jump(JEQ_K, 1, 0, 0, end);
        a.emit(MOV64_K, 0, 0, 0, 1);
        a.jump(JA, 0, 0, 0, top);
        a.bind(end);
        a.emit(EXIT, 0, 0, 0, 0);
        let p = a.finish().expect("resolved");
        assert_eq!(p[0].off, 2);
        assert_eq!(p[2].off, -3);
        let mut b = Asm::default();
        let never = b.label();
        b.jump(JA, 0, 0, 0, never);
        assert!(b.finish().is_none());
    }
}
