//! systemd's `conf_files_list_strv()`: the files of a list of directories
//! by file name, the first directory's file of each name winning, a mask
//! (a link to `/dev/null`, or an empty file) dropping the name, sorted by
//! name. tmpfiles.d and the environment generators are read this way.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

/// `path`'s temporary sibling, named as systemd's `tempfn_random()` names
/// it: `.#NAME` and 16 random hex digits.
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let random = crate::service::exec::invocation_id();
    path.with_file_name(format!(".#{name}{}", &random[..16]))
}

/// Creates the new file `path` (never through a link) holding `text`,
/// with `mode` set explicitly (the umask does not narrow it); removed
/// again when it cannot be written.
pub fn create_new(path: &Path, text: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let written = f
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| f.write_all(text));
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Puts `text` at `path` (a unit file or drop-in that a manager may be
/// reading) through a fresh file beside it, mode 0644, renamed into place:
/// readers see the old text or the new, and a link in the way is never
/// written through. `path`'s directory must exist.
pub fn replace(path: &Path, text: &[u8]) -> std::io::Result<()> {
    let fresh = temp_beside(path);
    create_new(&fresh, text, 0o644)?;
    std::fs::rename(&fresh, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&fresh);
    })
}

/// Whether a file's metadata makes it a mask: an empty file, or a
/// character device (`/dev/null`).
pub(crate) fn null_or_empty(meta: &Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    (ft.is_file() && meta.len() == 0) || ft.is_char_device()
}

/// The files of `dirs` (highest priority first) that `accept` takes, given
/// the name and, where it can be read, the metadata (links followed); a
/// name taken by a mask, or by an accepted file of an earlier directory,
/// is not looked at again.
pub fn list(
    dirs: impl IntoIterator<Item = PathBuf>,
    accept: impl Fn(&str, Option<&Metadata>) -> bool,
) -> Vec<PathBuf> {
    let mut by_name: BTreeMap<OsString, Option<PathBuf>> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if by_name.contains_key(&name) {
                continue;
            }
            let path = entry.path();
            let meta = std::fs::metadata(&path).ok();
            if meta.as_ref().is_some_and(null_or_empty) {
                by_name.insert(name, None);
            } else if accept(&name.to_string_lossy(), meta.as_ref()) {
                by_name.insert(name, Some(path));
            }
        }
    }
    by_name.into_values().flatten().collect()
}
