//! `RemoveIPC=` (and `DynamicUser=`, which implies it): when the last
//! running unit of a user stops, the System V and POSIX IPC objects that
//! user or its group owns are removed, as systemd's `clean-ipc.c` removes
//! them: shared memory segments nothing is attached to, semaphore sets
//! and message queues (`/proc/sysvipc`), and the files of `/dev/shm` and
//! `/dev/mqueue`. Objects of root (uid or gid 0) are never removed.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The System V object kinds, as `/proc/sysvipc` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Shm,
    Sem,
    Msg,
}

/// The id, owner and attach count (0 but for shared memory) of each object
/// listed in a `/proc/sysvipc` file's text.
fn sysv_objects(kind: Kind, text: &str) -> Vec<(i32, u32, u32, u64)> {
    // Columns: shm `key shmid perms size cpid lpid nattch uid gid ...`,
    // sem `key semid perms nsems uid gid ...`, msg `key msqid perms cbytes
    // qnum lspid lrpid uid gid ...`.
    let (uid_col, nattch_col) = match kind {
        Kind::Shm => (7, Some(6)),
        Kind::Sem => (4, None),
        Kind::Msg => (7, None),
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let id = f.get(1)?.parse().ok()?;
            let uid = f.get(uid_col)?.parse().ok()?;
            let gid = f.get(uid_col + 1)?.parse().ok()?;
            let attached = match nattch_col {
                Some(c) => f.get(c)?.parse().ok()?,
                None => 0,
            };
            Some((id, uid, gid, attached))
        })
        .collect()
}

/// Whether an object of `uid`/`gid` belongs to the user being cleaned
/// (root's never does).
fn owned(uid: u32, gid: u32, by_uid: Option<u32>, by_gid: Option<u32>) -> bool {
    by_uid.is_some_and(|u| u != 0 && u == uid) || by_gid.is_some_and(|g| g != 0 && g == gid)
}

/// Removes what `uid` or `gid` owns; returns how many objects went.
pub fn remove_owned(uid: Option<u32>, gid: Option<u32>) -> usize {
    let mut removed = 0;
    for (kind, file) in [
        (Kind::Shm, "/proc/sysvipc/shm"),
        (Kind::Sem, "/proc/sysvipc/sem"),
        (Kind::Msg, "/proc/sysvipc/msg"),
    ] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (id, ouid, ogid, attached) in sysv_objects(kind, &text) {
            if attached > 0 || !owned(ouid, ogid, uid, gid) {
                continue;
            }
            // SAFETY: IPC_RMID with a null buffer on an id the kernel just
            // listed; a stale id fails with EINVAL/EIDRM, which is fine.
            let r = unsafe {
                match kind {
                    Kind::Shm => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
                    Kind::Sem => libc::semctl(id, 0, libc::IPC_RMID),
                    Kind::Msg => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
                }
            };
            if r == 0 {
                removed += 1;
            }
        }
    }
    removed += remove_files(Path::new("/dev/shm"), uid, gid, 0);
    removed += remove_files(Path::new("/dev/mqueue"), uid, gid, 0);
    removed
}

/// Removes the entries below `dir` that the user or group owns (a
/// directory with everything in it), never leaving the file system.
fn remove_files(dir: &Path, uid: Option<u32>, gid: Option<u32>, depth: usize) -> usize {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.dev() != top.dev() {
            continue;
        }
        let path = e.path();
        if owned(m.uid(), m.gid(), uid, gid) {
            let r: io::Result<()> = if m.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if r.is_ok() {
                removed += 1;
            }
        } else if m.is_dir() && depth < 16 {
            removed += remove_files(&path, uid, gid, depth + 1);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysvipc_tables_are_read_by_column() {
        let shm = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                   0 32768   600 1024 10 0 0 1000 1001 1000 1001 0 0 0 4096 0\n\
                   7 32769   600 1024 10 0 2 1000 1001 1000 1001 0 0 0 4096 0\n";
        assert_eq!(
            sysv_objects(Kind::Shm, shm),
            [(32768, 1000, 1001, 0), (32769, 1000, 1001, 2)]
        );
        let sem = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n\
                   1234 5 600 1 65534 65534 0 0 0 0\n";
        assert_eq!(sysv_objects(Kind::Sem, sem), [(5, 65534, 65534, 0)]);
        let msg = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n\
                   99 3 600 0 0 0 0 42 43 0 0 0 0 0\n";
        assert_eq!(sysv_objects(Kind::Msg, msg), [(3, 42, 43, 0)]);
    }

    #[test]
    fn root_owns_nothing_that_is_removed() {
        assert!(owned(1000, 5, Some(1000), None));
        assert!(owned(7, 1001, Some(1000), Some(1001)));
        assert!(!owned(0, 0, Some(0), Some(0)));
        assert!(!owned(1000, 1000, Some(1001), Some(1001)));
    }
}
