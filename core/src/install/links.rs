//! The symlinks themselves: creating one (or finding the right one already
//! there), removing every link that belongs to a set of units, and finding
//! the links that make a unit enabled.

use std::collections::HashSet;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::discover::InstallInfo;
use super::paths::{LookupPaths, Scope};
use super::{Change, InstallError, UnitFileState};
use crate::unit::name::UnitName;

/// How many symlinks [`chase`] follows before giving up.
const CHASE_MAX: usize = 32;

/// The names and `..` of `path`, last first (a stack for [`chase`]).
fn reversed_parts(path: &Path) -> Vec<std::ffi::OsString> {
    let mut parts: Vec<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    parts.reverse();
    parts
}

/// Follows every symlink in `path` (absolute, below the root) as the
/// kernel would inside the root: absolute targets start again at the root,
/// `..` never climbs above it. Components that do not exist end the walk;
/// the rest of the path is appended as written.
pub(crate) fn chase(lp: &LookupPaths, path: &Path) -> io::Result<PathBuf> {
    let root = lp.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let rel = path.strip_prefix(&root).unwrap_or(path);
    let mut todo = reversed_parts(rel);
    let mut out = root.clone();
    let mut hops = 0;
    let mut missing = false;
    while let Some(c) = todo.pop() {
        if c == ".." {
            if out != root {
                out.pop();
            }
            continue;
        }
        let next = out.join(&c);
        if missing {
            out = next;
            continue;
        }
        match std::fs::symlink_metadata(&next) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = true;
                out = next;
            }
            Err(e) => return Err(e),
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > CHASE_MAX {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&next)?;
                if target.is_absolute() {
                    out.clone_from(&root);
                }
                todo.extend(reversed_parts(&target));
            }
            Ok(_) => out = next,
        }
    }
    Ok(out)
}

/// `p` with `.` and repeated separators removed (no `..` handling), for
/// comparing paths as systemd's `path_equal()` does.
fn simplify(p: &Path) -> PathBuf {
    p.components().collect()
}

/// systemd's `chroot_unit_symlinks_equivalent()`: whether a link at `src`
/// reading `a` and one reading `b` point to the same unit for installation
/// purposes (same file, or same unit name inside the search path).
fn equivalent(lp: &LookupPaths, src: &Path, a: &Path, b: &Path) -> bool {
    let dir = src.parent().unwrap_or(Path::new("/"));
    let full = |t: &Path| {
        if t.is_absolute() {
            lp.prefix_root(t)
        } else {
            dir.join(t)
        }
    };
    let (fa, fb) = (simplify(&full(a)), simplify(&full(b)));
    if fa == fb {
        return true;
    }
    if let (Ok(ma), Ok(mb)) = (std::fs::metadata(&fa), std::fs::metadata(&fb)) {
        use std::os::unix::fs::MetadataExt as _;
        if ma.dev() == mb.dev() && ma.ino() == mb.ino() {
            return true;
        }
    }
    fa.file_name() == fb.file_name()
        && lp.search_path.iter().any(|d| fa.starts_with(d))
        && lp.search_path.iter().any(|d| fb.starts_with(d))
}

/// systemd's `create_symlink()`: links `new_path` to `old_path` (the root
/// prefix removed from the target). A link already pointing to the same
/// unit is fine; another one is an error unless `force`, which replaces
/// it. Directories are created as needed.
pub(crate) fn create_symlink(
    lp: &LookupPaths,
    old_path: &Path,
    new_path: &Path,
    force: bool,
    changes: &mut Vec<Change>,
) -> Result<(), InstallError> {
    let old = lp.skip_root(old_path).to_path_buf();
    if let Some(parent) = new_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let fail = |changes: &mut Vec<Change>, e: InstallError, source: Option<&Path>| {
        changes.push(Change::failed(
            e,
            &new_path.display().to_string(),
            source.map(|s| s.display().to_string()),
        ));
        Err(e)
    };
    match std::os::unix::fs::symlink(&old, new_path) {
        Ok(()) => {
            changes.push(Change::Symlink {
                path: new_path.to_path_buf(),
                target: old,
            });
            return Ok(());
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return fail(changes, InstallError::from_io(&e), None),
    }
    let dest = match std::fs::read_link(new_path) {
        Ok(d) => d,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            return fail(changes, InstallError::Exists, None);
        }
        Err(e) => return fail(changes, InstallError::from_io(&e), None),
    };
    if equivalent(lp, new_path, &dest, &old) {
        return Ok(());
    }
    if !force {
        return fail(changes, InstallError::Exists, Some(&dest));
    }
    let tmp = new_path.with_file_name(format!(
        ".#{}{:08x}",
        new_path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default(),
        std::process::id()
    ));
    let replaced = std::os::unix::fs::symlink(&old, &tmp).and_then(|()| {
        std::fs::rename(&tmp, new_path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    });
    if let Err(e) = replaced {
        return fail(changes, InstallError::from_io(&e), None);
    }
    changes.push(Change::Unlink {
        path: new_path.to_path_buf(),
    });
    changes.push(Change::Symlink {
        path: new_path.to_path_buf(),
        target: old,
    });
    Ok(())
}

/// Removes the directories between `path` and `stop` that became empty.
fn rmdir_parents(path: &Path, stop: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == stop || !d.starts_with(stop) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// The names and paths whose links are to be removed.
pub(crate) type Marks = HashSet<String>;

/// systemd's `remove_marked_symlinks()`: removes, anywhere below
/// `config_path`, every symlink that has a marked name, whose name without
/// the instance is marked, or that ends (after following links) at a
/// marked path or a file with a marked name. Each removed link is marked
/// too, and the walk repeats until nothing more is found. Returns the first
/// error; the walk goes on past errors.
pub(crate) fn remove_marked_symlinks(
    lp: &LookupPaths,
    marks: &mut Marks,
    config_path: &Path,
    dry_run: bool,
    changes: &mut Vec<Change>,
) -> Result<(), InstallError> {
    if marks.is_empty() || !config_path.is_dir() {
        return Ok(());
    }
    let mut result = Ok(());
    loop {
        let mut restart = false;
        let r = remove_in(
            lp,
            marks,
            config_path,
            config_path,
            dry_run,
            &mut restart,
            changes,
        );
        if result.is_ok() {
            result = r;
        }
        if !restart {
            return result;
        }
    }
}

fn remove_in(
    lp: &LookupPaths,
    marks: &mut Marks,
    dir: &Path,
    config_path: &Path,
    dry_run: bool,
    restart: &mut bool,
    changes: &mut Vec<Change>,
) -> Result<(), InstallError> {
    let mut entries: Vec<(String, std::fs::FileType)> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .filter_map(|de| Some((de.file_name().into_string().ok()?, de.file_type().ok()?)))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(InstallError::from_io(&e)),
    };
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut result = Ok(());
    for (name, ft) in entries {
        let p = dir.join(&name);
        if ft.is_dir() {
            let r = remove_in(lp, marks, &p, config_path, dry_run, restart, changes);
            if result.is_ok() {
                result = r;
            }
            continue;
        }
        if !ft.is_symlink() {
            continue;
        }
        let Ok(unit) = UnitName::parse(&name) else {
            continue;
        };
        let mut found =
            marks.contains(&name) || unit.template().is_some_and(|t| marks.contains(t.as_str()));
        if !found {
            let dest = match chase(lp, &p) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    let e = InstallError::from_io(&e);
                    changes.push(Change::failed(e, &p.display().to_string(), None));
                    if result.is_ok() {
                        result = Err(e);
                    }
                    continue;
                }
            };
            let stripped = lp.skip_root(&dest).display().to_string();
            found = marks.contains(&stripped)
                || marks.contains(&dest.display().to_string())
                || dest
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| marks.contains(n));
        }
        if !found {
            continue;
        }
        if !dry_run {
            if let Err(e) = std::fs::remove_file(&p)
                && e.kind() != io::ErrorKind::NotFound
            {
                let e = InstallError::from_io(&e);
                changes.push(Change::failed(e, &p.display().to_string(), None));
                if result.is_ok() {
                    result = Err(e);
                }
                continue;
            }
            rmdir_parents(&p, config_path);
        }
        changes.push(Change::Unlink { path: p.clone() });
        // Links to the link just removed go too.
        if marks.insert(lp.skip_root(&p).display().to_string()) && !dry_run {
            *restart = true;
        }
    }
    result
}

/// Whether `name` is one of the names `enable` would create for `info`:
/// its own, an `Alias=`, or the `DefaultInstance=` instance of a template.
fn is_known_name(info: &InstallInfo, name: &str) -> bool {
    if name == info.name || info.aliases.iter().any(|a| a == name) {
        return true;
    }
    match (&info.default_instance, UnitName::parse(&info.name)) {
        (Some(d), Ok(n)) if n.is_template() => n.with_instance(d).is_ok_and(|x| x.as_str() == name),
        _ => false,
    }
}

/// systemd's `find_symlinks_in_directory()`.
#[allow(clippy::fn_params_excessive_bools)]
fn find_in_directory(
    dir: &Path,
    info: &InstallInfo,
    ignore_destination: bool,
    match_name: bool,
    ignore_same_name: bool,
    config_path: &Path,
    same_name_link: &mut bool,
) -> Result<bool, InstallError> {
    let rd = std::fs::read_dir(dir).map_err(|e| InstallError::from_io(&e))?;
    let mut result = Ok(false);
    for de in rd.flatten() {
        if !de.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        let Ok(entry) = de.file_name().into_string() else {
            continue;
        };
        let mut found_path = false;
        let mut found_dest = false;
        if !ignore_destination {
            let dest = match std::fs::read_link(de.path()) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    if result.is_ok() {
                        result = Err(InstallError::from_io(&e));
                    }
                    continue;
                }
            };
            found_dest = dest.file_name().and_then(|n| n.to_str()) == Some(info.name.as_str());
        }
        if ignore_destination || !ignore_same_name {
            found_path = entry == info.name;
        }
        if !found_path
            && ignore_destination
            && let Some(t) = UnitName::parse(&entry).ok().and_then(|n| n.template())
        {
            found_dest = t.as_str() == info.name;
        }
        let same = found_path && found_dest && dir.join(&entry) == config_path.join(&info.name);
        if same {
            *same_name_link = true;
        } else if (found_path || found_dest) && (!match_name || is_known_name(info, &entry)) {
            return Ok(true);
        }
    }
    result
}

/// systemd's `find_symlinks()`: links for `info` in the `.wants/` and
/// `.requires/` (and `.upholds/`) directories of `config_path`, then in
/// `config_path` itself.
fn find_symlinks(
    info: &InstallInfo,
    match_name: bool,
    ignore_same_name: bool,
    config_path: &Path,
    same_name_link: &mut bool,
) -> Result<bool, InstallError> {
    let rd = match std::fs::read_dir(config_path) {
        Ok(rd) => rd,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::ENOTDIR | libc::EACCES)
            ) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(InstallError::from_io(&e)),
    };
    for de in rd.flatten() {
        if !de.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(name) = de.file_name().into_string() else {
            continue;
        };
        let suffix = name.rfind('.').map(|d| &name[d..]);
        if !matches!(suffix, Some(".wants" | ".requires" | ".upholds")) {
            continue;
        }
        let found = find_in_directory(
            &de.path(),
            info,
            true,
            match_name,
            ignore_same_name,
            config_path,
            same_name_link,
        );
        if found.is_ok_and(|f| f) {
            return Ok(true);
        }
    }
    find_in_directory(
        config_path,
        info,
        false,
        match_name,
        ignore_same_name,
        config_path,
        same_name_link,
    )
}

/// systemd's `find_symlinks_in_scope()`: how `info` is enabled by links in
/// the search path, if it is.
pub(crate) fn find_symlinks_in_scope(
    lp: &LookupPaths,
    info: &InstallInfo,
    match_name: bool,
) -> Result<Option<UnitFileState>, InstallError> {
    let mut same_name_link_runtime = false;
    let mut same_name_link_config = false;
    let mut enabled_in_runtime = false;
    let mut enabled_at_all = false;
    let mut ignore_same_name = false;
    let info_path = info.path.clone().unwrap_or_default();
    for p in &lp.search_path {
        let mut same_name_link = false;
        if find_symlinks(info, match_name, ignore_same_name, p, &mut same_name_link)? {
            if *p == lp.persistent_config {
                return Ok(Some(UnitFileState::Enabled));
            }
            if lp.scope == Scope::User && lp.global_config.contains(p) {
                return Ok(Some(UnitFileState::Enabled));
            }
            if lp.is_runtime_dir(p) {
                enabled_in_runtime = true;
            } else {
                enabled_at_all = true;
            }
        } else if same_name_link {
            if *p == lp.persistent_config {
                same_name_link_config = true;
            } else if lp.is_runtime_dir(p) {
                same_name_link_runtime = true;
            }
        }
        if !ignore_same_name && info_path.starts_with(p) {
            ignore_same_name = true;
        }
    }
    if enabled_in_runtime {
        return Ok(Some(UnitFileState::EnabledRuntime));
    }
    if enabled_at_all && UnitName::parse(&info.name).is_ok_and(|n| n.is_instance()) {
        return Ok(Some(UnitFileState::Static));
    }
    if same_name_link_config {
        return Ok(Some(UnitFileState::Linked));
    }
    if same_name_link_runtime {
        return Ok(Some(UnitFileState::LinkedRuntime));
    }
    Ok(None)
}
