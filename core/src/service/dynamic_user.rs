//! `DynamicUser=`: a user and group allocated for a unit from systemd's
//! dynamic range (61184–65519) when no static user of that name exists.
//!
//! systemd keeps its allocations in a registry under `/run/systemd/dynamic-uid`
//! and releases them when the unit stops. flint derives the uid from the
//! name (stable across restarts, as systemd's hash-first allocation is in
//! practice) and probes past uids that the password database or another
//! unit of this flint already uses; nothing is written to disk, so nothing
//! outlives flint.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The first and last uid of systemd's dynamic range.
pub const DYNAMIC_UID_MIN: u32 = 61184;
pub const DYNAMIC_UID_MAX: u32 = 65519;

fn registry() -> &'static Mutex<HashMap<String, u32>> {
    static REG: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
    REG.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The user a `DynamicUser=yes` unit runs as: the static user `name` if it
/// exists, else a uid (and equal gid) from the dynamic range for `name`.
pub fn resolve(name: &str) -> Option<nix::unistd::User> {
    if let Ok(Some(u)) = nix::unistd::User::from_name(name) {
        return Some(u);
    }
    let mut reg = registry().lock().ok()?;
    let uid = if let Some(uid) = reg.get(name) {
        *uid
    } else {
        let span = DYNAMIC_UID_MAX - DYNAMIC_UID_MIN + 1;
        // FNV-1a of the name picks the first candidate.
        let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let taken: Vec<u32> = reg.values().copied().collect();
        let uid = (0..span)
            .map(|i| DYNAMIC_UID_MIN + (hash.wrapping_add(i) % span))
            .find(|uid| {
                !taken.contains(uid)
                    && nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(*uid))
                        .ok()
                        .flatten()
                        .is_none()
                    && nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(*uid))
                        .ok()
                        .flatten()
                        .is_none()
            })?;
        reg.insert(name.to_string(), uid);
        uid
    };
    Some(nix::unistd::User {
        name: name.to_string(),
        passwd: std::ffi::CString::default(),
        uid: nix::unistd::Uid::from_raw(uid),
        gid: nix::unistd::Gid::from_raw(uid),
        gecos: std::ffi::CString::default(),
        dir: "/".into(),
        shell: "/usr/sbin/nologin".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_users_win_and_dynamic_ones_are_stable_and_in_range() {
        assert_eq!(resolve("root").map(|u| u.uid.as_raw()), Some(0));
        let a = resolve("flint-dynamic-test-a").unwrap();
        let b = resolve("flint-dynamic-test-b").unwrap();
        for u in [&a, &b] {
            assert!((DYNAMIC_UID_MIN..=DYNAMIC_UID_MAX).contains(&u.uid.as_raw()));
            assert_eq!(u.uid.as_raw(), u.gid.as_raw());
        }
        assert_ne!(a.uid, b.uid);
        assert_eq!(
            resolve("flint-dynamic-test-a").unwrap().uid,
            a.uid,
            "the same name keeps its uid"
        );
    }
}
