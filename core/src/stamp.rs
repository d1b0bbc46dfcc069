//! What identifies one version of a file or directory, for the caches that
//! read something again only when it changed (unit files, the unit index,
//! the password database entry of root) and for the unit tree's watch.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Device, inode, size, and modification and change times (with their
/// nanoseconds) of a path, following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of what `path` names now.
    pub fn of(path: &Path) -> io::Result<FileStamp> {
        std::fs::metadata(path).map(|m| FileStamp::from(&m))
    }

    /// Whether the last change is more than a second old. A later change
    /// then moves the times; two changes within one tick of a coarse clock
    /// may leave them equal, so what changed just now is not cached.
    pub fn settled(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.mtime.0 + 1 < now && self.ctime.0 + 1 < now
    }
}

impl From<&std::fs::Metadata> for FileStamp {
    fn from(m: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_changes_the_stamp_and_a_fresh_file_is_not_settled() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "one").unwrap();
        let first = FileStamp::of(&f).unwrap();
        assert!(!first.settled(), "written just now");
        std::fs::write(&f, "three").unwrap();
        assert_ne!(FileStamp::of(&f).unwrap(), first, "the size moved");
        assert!(FileStamp::of(&dir.path().join("missing")).is_err());
    }
}
