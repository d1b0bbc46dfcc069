//! Services at run time. [`exec`] builds the execution environment of one
//! command; the lifecycle (start, restart, stop) is driven by
//! [`crate::activation`].

pub mod bpf;
pub mod condition;
pub mod credentials;
pub mod defaults;
pub mod devices;
pub mod dynamic_user;
pub mod exec;
pub mod firewall;
pub mod ipc;
pub mod open_file;
pub mod resources;
pub mod sandbox;
pub mod seccomp;
mod syscall_groups;
pub mod tasks;
