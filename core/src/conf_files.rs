//! systemd's `conf_files_list_strv()`: the files of a list of directories
//! by file name, the first directory's file of each name winning, a mask
//! (a link to `/dev/null`, or an empty file) dropping the name, sorted by
//! name. tmpfiles.d and the environment generators are read this way.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::path::PathBuf;

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
