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
pub mod socket_activate;
pub mod spawn;
pub mod stamp;
pub mod syslog;
pub mod tmpfiles;
pub mod unit;
pub mod virt;

/// flint's own pid, asked of the kernel once: glibc does not cache
/// `getpid()`, and a connection's way through the event loop and the spawn
/// thread asked four times. flint never forks a copy of itself that goes on
/// running this code (its children exec or exit).
pub fn own_pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}
