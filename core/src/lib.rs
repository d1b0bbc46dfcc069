//! flint runs real, unmodified systemd `.socket` and `.service` units without
//! systemd. This crate is the whole daemon as a library; `main.rs` only wires
//! the command line to it.
//!
//! Data flows top to bottom: [`unit`] turns text into typed units, [`listen`]
//! opens the sockets they describe, [`spawn`] starts processes from a prepared
//! plan. [`install`] applies `[Install]` sections as `systemctl enable` does.

pub mod activation;
pub mod bus;
pub mod cgroup;
pub mod conf_files;
pub mod control;
pub mod edit;
pub mod generators;
pub mod install;
pub mod listen;
pub mod logs;
pub mod notify;
pub mod policy;
pub mod service;
pub mod set_property;
pub mod socket_activate;
pub mod spawn;
pub mod stamp;
pub mod syslog;
pub mod tmpfiles;
pub mod unit;
pub mod virt;

/// Whether flint runs in the machine's first PID namespace (not in a
/// container's): there, PID 1 ending panics the kernel, so flint as PID 1
/// ends the machine with `reboot(2)` instead ([`end_machine`]).
pub fn in_initial_pid_namespace() -> bool {
    // The kernel's PROC_PID_INIT_INO. Where /proc cannot tell (not mounted
    // yet), the first namespace is assumed: a reboot(2) in a container's
    // namespace only ends that namespace.
    std::fs::read_link("/proc/self/ns/pid").map_or(true, |l| l.as_os_str() == "pid:[4026531836]")
}

/// How flint as the machine's init is to end, once every unit has
/// stopped: 0 nothing asked, else a `reboot(2)` command
/// ([`request_machine_end`]).
static MACHINE_END: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Notes that the system action `word` (`poweroff`, `reboot`, `halt`,
/// `kexec`, `soft-reboot`, with `-force`/`-immediate`) ends flint; where
/// flint is the machine's init, [`end_machine`] then carries it out.
pub fn request_machine_end(word: &str) {
    MACHINE_END.store(machine_end_code(word), std::sync::atomic::Ordering::Relaxed);
}

/// The [`MACHINE_END`] code of a system action.
fn machine_end_code(word: &str) -> u8 {
    let base = word
        .strip_suffix("-immediate")
        .or_else(|| word.strip_suffix("-force"))
        .unwrap_or(word);
    match base {
        "poweroff" => 1,
        "reboot" | "soft-reboot" => 2,
        "halt" => 3,
        "kexec" => 4,
        _ => 0,
    }
}

/// Where flint is PID 1 of the machine's first PID namespace, its end is
/// the machine's: syncs the file systems and powers off, reboots, halts or
/// kexecs the machine as the system action asked, as systemd-shutdown does
/// in the end (a kexec without a loaded kernel reboots). Ending any other
/// way (SIGTERM, an error, `exit`) powers off: PID 1 must not exit, or the
/// kernel panics. Never returns there (a failed call leaves flint asleep,
/// as systemd freezes); returns at once anywhere else.
pub fn end_machine() {
    use nix::sys::reboot::{RebootMode, reboot};
    if own_pid() != 1 || !in_initial_pid_namespace() {
        return;
    }
    let code = match MACHINE_END.load(std::sync::atomic::Ordering::Relaxed) {
        0 => 1,
        c => c,
    };
    nix::unistd::sync();
    let mode = match code {
        1 => RebootMode::RB_POWER_OFF,
        3 => RebootMode::RB_HALT_SYSTEM,
        4 => RebootMode::RB_KEXEC,
        _ => RebootMode::RB_AUTOBOOT,
    };
    let Err(e) = reboot(mode);
    eprintln!("flint: reboot(2) failed: {e}");
    if code == 4 {
        let _ = reboot(RebootMode::RB_AUTOBOOT);
    }
    loop {
        nix::unistd::pause();
    }
}

/// Gives what the start used and let go of (the command line's parser,
/// the units' text) back to the kernel, once a server is up: an idle flint
/// keeps only what it holds (about 200 KiB of heap less; see
/// bench/README.md). With glibc's allocator; musl's keeps little free.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory of the allocator's
    // arenas to the kernel; no block in use moves.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// flint's own pid, asked of the kernel once: glibc does not cache
/// `getpid()`, and a connection's way through the event loop and the spawn
/// thread asked four times. flint never forks a copy of itself that goes on
/// running this code (its children exec or exit).
pub fn own_pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

#[cfg(test)]
mod machine_end_tests {
    #[test]
    fn system_actions_name_their_reboot_command() {
        for (word, code) in [
            ("poweroff", 1),
            ("poweroff-force", 1),
            ("poweroff-immediate", 1),
            ("reboot", 2),
            ("soft-reboot-force", 2),
            ("halt-immediate", 3),
            ("kexec", 4),
            ("exit", 0),
            ("exit-force", 0),
            ("none", 0),
        ] {
            assert_eq!(super::machine_end_code(word), code, "{word}");
        }
    }
}
