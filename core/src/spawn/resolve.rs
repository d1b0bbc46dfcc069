//! Finding the executable of an `ExecStart=` line the way systemd does.
//!
//! A name with a `/` must be absolute and is used as it is (a missing file is
//! then reported by exec with its errno, as 203/EXEC). A bare name is looked up
//! in systemd's built-in search path, never in flint's own `$PATH`, so a unit
//! behaves the same whatever environment flint was started from.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// systemd's built-in search path on a system whose `/bin` and `/sbin` are
/// `/usr/bin` and `/usr/sbin` (merged `/usr`).
const MERGED_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";

/// The same with `/sbin` and `/bin` after it, as a systemd built for a split
/// `/usr` has it (Debian 12's systemd 252 gives services this `PATH`).
const SPLIT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// systemd's built-in executable search path for unit commands, also the
/// `PATH` services get: with `/sbin:/bin` where they are directories of
/// their own (Alpine, Void, Gentoo without merged `/usr`: `ip` and `sh` are
/// in `/sbin` and `/bin` only, and a unit's bare `sh` or a script's `ip`
/// would not be found), without them where they are `/usr`'s.
pub fn default_path() -> &'static str {
    static PATH: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    PATH.get_or_init(|| path_for_root(Path::new("/")))
}

/// [`default_path`] for the tree under `root`.
fn path_for_root(root: &Path) -> &'static str {
    use std::os::unix::fs::MetadataExt;
    let usr_s = |top: &str| {
        match (
            std::fs::metadata(root.join(top)),
            std::fs::metadata(root.join("usr").join(top)),
        ) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            // No `/bin` at all: nothing to search there.
            (Err(_), _) => true,
            (Ok(_), Err(_)) => false,
        }
    };
    if usr_s("bin") && usr_s("sbin") {
        MERGED_PATH
    } else {
        SPLIT_PATH
    }
}

/// Resolves `name` to the path to exec. `search_path` replaces the built-in
/// path when given (`ExecSearchPath=`). Returns `None` for an empty or
/// relative-with-slash name, or when no directory holds an executable regular
/// file of that name; the caller reports that as 203/EXEC with ENOENT.
pub fn resolve_executable(name: &str, search_path: Option<&[PathBuf]>) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        return Path::new(name).is_absolute().then(|| PathBuf::from(name));
    }
    let found = |dir: &Path| {
        let candidate = dir.join(name);
        is_executable_file(&candidate).then_some(candidate)
    };
    match search_path {
        Some(dirs) => dirs
            .iter()
            .filter(|d| d.is_absolute())
            .find_map(|d| found(d)),
        None => default_path().split(':').find_map(|d| found(Path::new(d))),
    }
}

fn is_executable_file(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access() only reads the NUL-terminated path.
    unsafe { libc::access(c_path.as_ptr(), libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_name_is_found_in_the_builtin_path_not_in_dollar_path() {
        let sh = resolve_executable("sh", None).expect("sh in /usr/bin");
        assert!(
            default_path().split(':').any(|d| sh.starts_with(d)),
            "{sh:?}"
        );
    }

    #[test]
    fn sbin_and_bin_are_searched_where_usr_is_not_merged() {
        let merged = tempfile::tempdir().unwrap();
        for d in ["usr/bin", "usr/sbin"] {
            std::fs::create_dir_all(merged.path().join(d)).unwrap();
        }
        std::os::unix::fs::symlink("usr/bin", merged.path().join("bin")).unwrap();
        std::os::unix::fs::symlink("usr/sbin", merged.path().join("sbin")).unwrap();
        assert_eq!(path_for_root(merged.path()), MERGED_PATH);
        // Alpine: /bin and /sbin of their own.
        let split = tempfile::tempdir().unwrap();
        for d in ["bin", "sbin", "usr/bin", "usr/sbin"] {
            std::fs::create_dir_all(split.path().join(d)).unwrap();
        }
        assert_eq!(path_for_root(split.path()), SPLIT_PATH);
        // Only /sbin of its own (a half-merged tree).
        std::fs::remove_dir(split.path().join("bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", split.path().join("bin")).unwrap();
        assert_eq!(path_for_root(split.path()), SPLIT_PATH);
        // This machine's own.
        let root_merged = std::fs::canonicalize("/bin").ok().as_deref()
            == Some(Path::new("/usr/bin"))
            && std::fs::canonicalize("/sbin").ok().as_deref() == Some(Path::new("/usr/sbin"));
        assert_eq!(default_path() == MERGED_PATH, root_merged);
    }

    #[test]
    fn absolute_names_are_kept_and_relative_ones_refused() {
        assert_eq!(
            resolve_executable("/no/such/file", None),
            Some(PathBuf::from("/no/such/file"))
        );
        assert_eq!(resolve_executable("./sh", None), None);
        assert_eq!(resolve_executable("", None), None);
        assert_eq!(resolve_executable("flint-no-such-program", None), None);
    }

    #[test]
    fn explicit_search_path_replaces_the_builtin_one_and_skips_non_executables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("tool");
        std::fs::write(&plain, b"#!/bin/sh\n").expect("write");
        let dirs = [dir.path().to_path_buf()];
        assert_eq!(resolve_executable("tool", Some(&dirs)), None);
        std::fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        assert_eq!(resolve_executable("tool", Some(&dirs)), Some(plain));
        assert_eq!(resolve_executable("sh", Some(&dirs)), None);
        std::fs::create_dir(dir.path().join("adir")).expect("mkdir");
        assert_eq!(resolve_executable("adir", Some(&dirs)), None);
    }
}
