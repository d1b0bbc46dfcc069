//! Which files make up a unit: the fragment, its aliases, masks, drop-ins
//! and `.wants/`/`.requires/` links, found on a [`SearchPath`] exactly as
//! systemd finds them.
//!
//! A [`UnitIndex`] scans the search directories once (first match wins,
//! hidden and backup files ignored) and then answers [`UnitIndex::resolve`]
//! for any number of names. The rules it promises:
//!
//! * an instance without a file of its own uses its template's file;
//! * a symlink to a file inside the search path is an alias (the type must
//!   match; plain to plain, template to template, instance to the same
//!   instance or to a template) and the unit takes the target's name; a
//!   symlink that leaves the search path (e.g. into `/nix/store`) is a
//!   linked unit, read through the link under the link's own name;
//! * a fragment that is `/dev/null` (or any device) or an empty file masks
//!   the unit, which is reported as `masked`, not as an error;
//! * drop-in directories are searched for the name, its template, its
//!   dash-truncated prefixes, every alias, and last the type-level
//!   `service.d/`; among `*.conf` files with the same name the earliest
//!   directory wins, and the survivors apply in lexicographic order.
//!
//! Nothing is parsed here: the result, [`UnitSources`], lists paths for the
//! lexer to read.

mod search_path;
pub(crate) use search_path::{normalize, paths_from_env};

pub use search_path::{
    FLINT_SYSTEM_RUNTIME_DIR, FLINT_SYSTEM_UNIT_DIR, SYSTEM_UNIT_DIRS, SearchPath, home_dir,
};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::name::{UnitName, is_hidden_or_backup};
use super::{Diagnostic, Severity};

/// How many alias links are followed before giving up, as in systemd.
const FOLLOW_MAX: usize = 8;

/// Why a unit's files could not be determined.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No file on the search path provides this unit.
    #[error("unit {0} not found")]
    NotFound(UnitName),
    /// The unit's only file is an alias symlink systemd rejects, so the unit
    /// is not found.
    #[error("{path}: {reason}")]
    BadAlias { path: PathBuf, reason: String },
    /// Alias symlinks form a loop or a chain longer than 8 links.
    #[error("unit {0}: too many levels of alias symlinks")]
    AliasLoop(UnitName),
    /// The fragment exists but cannot be opened or examined.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A unit given as a file has a file name that is not a unit name.
    #[error("{}: file name is not a valid unit name", path.display())]
    BadFileName { path: PathBuf },
}

/// The files that make up one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSources {
    /// The name that was asked for.
    pub name: UnitName,
    /// The unit's own name once aliases are followed: the fragment's file
    /// name, with the requested instance filled in for templates.
    pub id: UnitName,
    /// The file to read. For an instance without its own file, the
    /// template's file; for a symlink out of the search path (a linked
    /// unit), the path of the link in the search directory, read through
    /// the link. [`resolve`] always fills it in (a unit without a file is
    /// `NotFound`); it is an `Option` for callers that build sources by hand.
    pub fragment: Option<PathBuf>,
    /// What [`resolve`] found at `fragment` (through links): the loader
    /// reads the file, or reuses what it read, by this stamp instead of
    /// looking at the file again.
    pub fragment_stamp: Option<crate::stamp::FileStamp>,
    /// The fragment is `/dev/null`, a device, or an empty file: the unit
    /// must not be started.
    pub masked: bool,
    /// Other names of the unit (not including `id`), sorted.
    pub aliases: Vec<UnitName>,
    /// Drop-in files in application order (lexicographic by file name). A
    /// drop-in masked by a same-named `/dev/null` link is listed as that
    /// link, which reads as empty, exactly as systemd lists it.
    pub dropins: Vec<PathBuf>,
    /// Units named by symlinks in `.wants/` directories.
    pub wants: Vec<UnitName>,
    /// Units named by symlinks in `.requires/` directories.
    pub requires: Vec<UnitName>,
    /// Units named by symlinks in `.upholds/` directories.
    pub upholds: Vec<UnitName>,
    /// Notices about ignored entries (non-symlinks in `.wants/`, bad names).
    pub diagnostics: Vec<Diagnostic>,
}

/// One name in a search directory: a file to read, or an alias to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// A regular file, or a symlink leaving the search path (linked unit or
    /// mask); the path is the entry's own path in the search directory.
    File(PathBuf),
    /// A symlink to another unit file inside the search path.
    Alias(String),
}

/// The unit names visible on a search path, built by one scan.
#[derive(Debug, Clone)]
pub struct UnitIndex {
    search: SearchPath,
    ids: HashMap<String, Entry>,
    /// Alias symlinks systemd rejects, by name, with the reason.
    rejected: HashMap<String, (PathBuf, String)>,
    /// name of a canonical unit → every name that resolves to it.
    names: HashMap<String, Vec<String>>,
    /// Search directories whose entries were listed by the scan (or that
    /// did not exist, which have none).
    listed: HashSet<PathBuf>,
    /// Entries of listed directories named like drop-in or dependency
    /// directories (`*.d`, `*.wants`, `*.requires`, `*.upholds`), so that
    /// looking for a unit's drop-ins does not probe names that do not exist.
    subdirs: HashSet<PathBuf>,
    /// The file names of [`Self::subdirs`], whatever their directory.
    subdir_names: HashSet<String>,
    /// Notices about entries that were skipped while scanning.
    pub diagnostics: Vec<Diagnostic>,
    /// The fragment [`UnitIndex::resolve_recent`] last looked at.
    recent: RecentFragment,
}

/// A fragment's metadata and when it was read: every `Accept=yes`
/// connection loads its instance from the same template, and one `statx`
/// of it per [`UnitIndex::resolve_recent`] window does for all of them.
#[derive(Debug, Default)]
struct RecentFragment(std::sync::Mutex<Option<(PathBuf, std::time::Instant, std::fs::Metadata)>>);

impl Clone for RecentFragment {
    /// A copy of the index looks at its fragments afresh.
    fn clone(&self) -> RecentFragment {
        RecentFragment::default()
    }
}

impl RecentFragment {
    /// `path`'s metadata, read again unless it was read less than `within`
    /// ago.
    fn metadata(&self, path: &Path, within: std::time::Duration) -> io::Result<std::fs::Metadata> {
        let mut recent = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((p, at, meta)) = recent.as_ref()
            && p == path
            && at.elapsed() < within
        {
            return Ok(meta.clone());
        }
        let meta = std::fs::metadata(path)?;
        *recent = Some((path.to_path_buf(), std::time::Instant::now(), meta.clone()));
        Ok(meta)
    }
}

/// Whether a file's metadata marks a mask: any device node, or an empty
/// regular file.
fn is_mask(meta: &std::fs::Metadata) -> bool {
    let ft = meta.file_type();
    ft.is_char_device() || ft.is_block_device() || (ft.is_file() && meta.len() == 0)
}

/// Whether `p` (following symlinks) is a mask; unreadable paths are not.
fn path_is_mask(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| is_mask(&m))
}

/// Resolves `target` of a symlink in `dir` the way systemd does before
/// deciding alias versus linked unit: relative to `dir`, every directory
/// component followed (so `..` applies after symlinks), the last component
/// left as it is.
fn chase_parent(dir: &Path, target: &Path) -> PathBuf {
    let abs = if target.is_absolute() {
        target.to_path_buf()
    } else {
        dir.join(target)
    };
    let normalized = search_path::normalize(&abs);
    let last = abs.file_name().map(OsStr::to_os_string);
    let parent = abs.parent().map(Path::to_path_buf);
    match (parent, last) {
        (Some(parent), Some(last)) => match std::fs::canonicalize(&parent) {
            Ok(p) => p.join(last),
            Err(_) => normalized,
        },
        // The target ends in `..` or `.`, or is `/`.
        _ => std::fs::canonicalize(&abs).unwrap_or(normalized),
    }
}

/// Checks an alias symlink `src` → `dst` (file names) as systemd's
/// `unit_validate_alias_symlink_or_warn()` does.
pub fn validate_alias(src: &str, dst: &str) -> Result<(), String> {
    let s = UnitName::parse(src).map_err(|e| format!("not a valid unit name \"{src}\": {e}"))?;
    if !s.unit_type().may_alias() {
        return Err("symlinks are not allowed for units of this type, rejecting.".to_owned());
    }
    if !s.is_plain() && !s.unit_type().may_template() {
        return Err(format!(
            "templates not allowed for {} units, rejecting.",
            s.unit_type()
        ));
    }
    let d = UnitName::parse(dst)
        .map_err(|_| format!("points to \"{dst}\" which is not a valid unit name"))?;
    let kinds_ok = s.kind() == d.kind() || (s.is_instance() && d.is_template());
    if !kinds_ok {
        return Err(format!(
            "symlink target name type \"{dst}\" does not match source, rejecting."
        ));
    }
    if d.is_instance() && s.instance() != d.instance() {
        return Err(format!(
            "unit symlink target \"{dst}\" instance name doesn't match, rejecting."
        ));
    }
    if s.unit_type() != d.unit_type() {
        return Err(format!(
            "symlink target \"{dst}\" has incompatible suffix, rejecting."
        ));
    }
    Ok(())
}

fn file_name_str(p: &Path) -> Option<&str> {
    p.file_name().and_then(OsStr::to_str)
}

impl UnitIndex {
    /// Scans every directory of `search`.
    pub fn build(search: &SearchPath) -> UnitIndex {
        let mut idx = UnitIndex {
            search: search.clone(),
            ids: HashMap::new(),
            rejected: HashMap::new(),
            names: HashMap::new(),
            listed: HashSet::new(),
            subdirs: HashSet::new(),
            subdir_names: HashSet::new(),
            diagnostics: Vec::new(),
            recent: RecentFragment::default(),
        };
        // Search directories as the kernel sees them, so that links through
        // a symlinked directory (NixOS: /etc/systemd/system -> /etc/static/…)
        // still count as inside the search path.
        let canonical: Vec<PathBuf> = search
            .dirs
            .iter()
            .filter_map(|d| std::fs::canonicalize(d).ok())
            .filter(|c| !search.dirs.contains(c))
            .collect();
        for dir in &search.dirs {
            idx.scan_dir(dir, &canonical);
        }
        idx.build_names();
        idx
    }

    /// The search path this index was built from.
    pub fn search_path(&self) -> &SearchPath {
        &self.search
    }

    fn notice(&mut self, path: &Path, message: String) {
        self.diagnostics
            .push(Diagnostic::new(path, 0, Severity::Notice, message));
    }

    fn scan_dir(&mut self, dir: &Path, canonical: &[PathBuf]) {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                // Nothing there: listed, with no entries, so that lookups
                // below it need no `stat` (most of the default search path
                // does not exist on a given machine, and every `Accept=yes`
                // connection looks for drop-ins in each directory).
                self.listed.insert(dir.to_path_buf());
                return;
            }
            Err(e) => {
                self.diagnostics.push(Diagnostic::warning(
                    dir,
                    0,
                    format!("cannot open directory, ignoring: {e}"),
                ));
                return;
            }
        };
        self.listed.insert(dir.to_path_buf());
        let mut entries: Vec<(String, std::fs::DirEntry)> = Vec::new();
        for de in rd.flatten() {
            let Ok(name) = de.file_name().into_string() else {
                continue;
            };
            if [".d", ".wants", ".requires", ".upholds"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                self.subdirs.insert(dir.join(&name));
                self.subdir_names.insert(name);
            } else {
                entries.push((name, de));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, de) in entries {
            if is_hidden_or_backup(&name)
                || UnitName::parse(&name).is_err()
                || self.ids.contains_key(&name)
            {
                continue;
            }
            let path = dir.join(&name);
            let is_link = de.file_type().is_ok_and(|t| t.is_symlink());
            if !is_link {
                self.ids.insert(name, Entry::File(path));
                continue;
            }
            let target = match std::fs::read_link(&path) {
                Ok(t) => t,
                Err(e) => {
                    self.notice(&path, format!("cannot read symlink, ignoring: {e}"));
                    continue;
                }
            };
            let chased = chase_parent(dir, &target);
            let Some(tail) = self.search.strip_search_prefix(&chased, canonical) else {
                // Leaves the search path: a linked unit or a mask, read
                // through the link under its own name.
                self.ids.insert(name, Entry::File(path));
                continue;
            };
            let nested = tail.components().count() > 1;
            let Some(dst) = file_name_str(&chased).map(str::to_owned) else {
                self.reject(
                    name,
                    path,
                    "symlink target has no usable file name".to_owned(),
                );
                continue;
            };
            if let Err(reason) = validate_alias(&name, &dst) {
                self.reject(name, path, reason);
                continue;
            }
            if dst == name {
                // A self-alias has no effect; lower directories decide.
                continue;
            }
            if nested {
                self.diagnostics.push(Diagnostic::warning(
                    &path,
                    0,
                    format!(
                        "suspicious symlink to {}, treating as alias",
                        chased.display()
                    ),
                ));
            }
            self.ids.insert(name, Entry::Alias(dst));
        }
    }

    fn reject(&mut self, name: String, path: PathBuf, reason: String) {
        self.notice(&path, reason.clone());
        self.rejected.entry(name).or_insert((path, reason));
    }

    /// Follows aliases from `name` to a file, as systemd's
    /// `unit_ids_map_get()`: `Ok(None)` when the name or an alias target is
    /// unknown (an instance target falls back to its template).
    fn follow(&self, name: &str) -> Result<Option<&Path>, ()> {
        let mut id: Option<&str> = None;
        for _ in 0..FOLLOW_MAX {
            let key = id.unwrap_or(name);
            let entry = self.ids.get(key).or_else(|| {
                let template = UnitName::parse(id?).ok()?.template()?;
                self.ids.get(template.as_str())
            });
            let Some(entry) = entry else { return Ok(None) };
            match entry {
                Entry::File(p) => return Ok(Some(p)),
                Entry::Alias(next) => id = Some(next),
            }
        }
        Err(())
    }

    /// Builds the reverse map: for every unit file, all names leading to it.
    fn build_names(&mut self) {
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        for src in self.ids.keys() {
            let Ok(Some(dst)) = self.follow(src) else {
                continue;
            };
            if path_is_mask(dst) {
                continue;
            }
            let Some(dst_name) = file_name_str(dst) else {
                continue;
            };
            let instance = UnitName::parse(src)
                .ok()
                .and_then(|n| n.instance().filter(|i| !i.is_empty()).map(str::to_owned));
            let key = match instance {
                // An instance linked to a template is an alias for that
                // instance only.
                Some(inst) if dst_name != src => {
                    match UnitName::parse(dst_name)
                        .ok()
                        .and_then(|d| d.with_instance(&inst).ok())
                    {
                        Some(k) => k.as_str().to_owned(),
                        None => continue,
                    }
                }
                _ => dst_name.to_owned(),
            };
            names.entry(key).or_default().push(src.clone());
        }
        self.names = names;
    }

    /// Every unit name visible on the search path (files, aliases, masks,
    /// templates), sorted.
    pub fn unit_names(&self) -> Vec<UnitName> {
        let mut v: Vec<UnitName> = self
            .ids
            .keys()
            .filter_map(|k| UnitName::parse(k).ok())
            .collect();
        v.sort();
        v
    }

    /// Finds the files of `name`.
    pub fn resolve(&self, name: &UnitName) -> Result<UnitSources, LoadError> {
        self.resolve_within(name, None)
    }

    /// Finds the files of `name`, trusting what was read of its fragment
    /// less than `within` ago when the last call read the same one: for
    /// the instances of a stream of connections, which all load the same
    /// template. An edit to the fragment is seen at most `within` later.
    pub fn resolve_recent(
        &self,
        name: &UnitName,
        within: std::time::Duration,
    ) -> Result<UnitSources, LoadError> {
        self.resolve_within(name, Some(within))
    }

    fn resolve_within(
        &self,
        name: &UnitName,
        within: Option<std::time::Duration>,
    ) -> Result<UnitSources, LoadError> {
        let mut fragment = self
            .follow(name.as_str())
            .map_err(|()| LoadError::AliasLoop(name.clone()))?;
        if fragment.is_none()
            && let Some(t) = name.template()
        {
            fragment = self
                .follow(t.as_str())
                .map_err(|()| LoadError::AliasLoop(name.clone()))?;
        }
        let Some(fragment) = fragment.map(Path::to_path_buf) else {
            if let Some((path, reason)) = self.rejected.get(name.as_str()) {
                return Err(LoadError::BadAlias {
                    path: path.clone(),
                    reason: reason.clone(),
                });
            }
            return Err(LoadError::NotFound(name.clone()));
        };

        let meta = match within {
            Some(within) => self.recent.metadata(&fragment, within),
            None => std::fs::metadata(&fragment),
        }
        .map_err(|source| LoadError::Io {
            path: fragment.clone(),
            source,
        })?;
        if meta.is_dir() {
            return Err(LoadError::Io {
                path: fragment,
                source: io::Error::from(io::ErrorKind::IsADirectory),
            });
        }
        let masked = is_mask(&meta);

        let id = Self::canonical_id(name, &fragment);
        let aliases = self.aliases_of(name, &id, &fragment);

        let mut diagnostics = Vec::new();
        let mut all_names = vec![id.clone()];
        all_names.extend(aliases.iter().cloned());
        let dropins = self.collect_dropins(&all_names, &id, ".d", Some(".conf"));
        let wants = self.collect_deps(&all_names, &id, ".wants", &mut diagnostics);
        let requires = self.collect_deps(&all_names, &id, ".requires", &mut diagnostics);
        let upholds = self.collect_deps(&all_names, &id, ".upholds", &mut diagnostics);

        Ok(UnitSources {
            name: name.clone(),
            id,
            fragment: Some(fragment),
            fragment_stamp: Some(crate::stamp::FileStamp::from(&meta)),
            masked,
            aliases,
            dropins,
            wants,
            requires,
            upholds,
            diagnostics,
        })
    }

    /// The units named by links in `NAME.wants/` and `NAME.requires/`
    /// directories, whether or not a file provides `name` itself: a target
    /// that `flint enable` linked units to may exist only as those
    /// directories.
    pub fn dependency_links(&self, name: &UnitName) -> (Vec<UnitName>, Vec<UnitName>) {
        let names = [name.clone()];
        let mut ignored = Vec::new();
        (
            self.collect_deps(&names, name, ".wants", &mut ignored),
            self.collect_deps(&names, name, ".requires", &mut ignored),
        )
    }

    /// The unit's own name: the fragment's file name, with the requested
    /// instance filled in when the fragment is a template.
    fn canonical_id(name: &UnitName, fragment: &Path) -> UnitName {
        let Some(base) = file_name_str(fragment).and_then(|b| UnitName::parse(b).ok()) else {
            return name.clone();
        };
        if base.unit_type() != name.unit_type() {
            return name.clone();
        }
        match (base.is_template(), name.instance()) {
            (true, Some(inst)) if !inst.is_empty() => {
                base.with_instance(inst).unwrap_or_else(|_| name.clone())
            }
            _ => base,
        }
    }

    fn aliases_of(&self, name: &UnitName, id: &UnitName, fragment: &Path) -> Vec<UnitName> {
        let frag_base = file_name_str(fragment).unwrap_or("");
        // An instance asked for by its own name, of a template file that
        // only the template's name leads to (every `Accept=yes`
        // connection's): the only name found below would be `id` itself.
        if name == id
            && !self.names.contains_key(id.as_str())
            && let Some(t) = id.template()
            && self
                .names
                .get(t.as_str())
                .is_some_and(|n| n.len() == 1 && n[0] == t.as_str())
        {
            return Vec::new();
        }
        let mut set: BTreeSet<UnitName> = BTreeSet::new();
        if !name.is_template() {
            set.insert(name.clone());
        }
        let mut add_group = |key: &str| {
            for n in self.names.get(key).into_iter().flatten() {
                let Ok(n) = UnitName::parse(n) else { continue };
                match (n.is_template(), id.instance()) {
                    (true, Some(inst)) if !inst.is_empty() => {
                        let Ok(inst_name) = n.with_instance(inst) else {
                            continue;
                        };
                        // An instance name that has a file of its own (or
                        // points elsewhere) is a different unit.
                        if let Ok(Some(other)) = self.follow(inst_name.as_str())
                            && file_name_str(other) != Some(frag_base)
                        {
                            continue;
                        }
                        set.insert(inst_name);
                    }
                    _ => {
                        set.insert(n);
                    }
                }
            }
        };
        add_group(id.as_str());
        if let Some(t) = id.template() {
            add_group(t.as_str());
        }
        set.remove(id);
        set.into_iter()
            .filter(|n| n.unit_type() == id.unit_type())
            .collect()
    }

    /// Whether `p`, an entry of the search directory `dir`, is a directory
    /// (following symlinks). Entries the scan did not see are not probed.
    fn is_dir(&self, dir: &Path, p: &Path) -> bool {
        (!self.listed.contains(dir) || self.subdirs.contains(p)) && p.is_dir()
    }

    /// The names whose `<name><suffix>` directories hold settings for
    /// `name`, in systemd's order: the name, its template, then the
    /// dash-truncated prefixes (keeping the instance), each of which expands
    /// the same way.
    fn candidate_names(name: &UnitName, out: &mut Vec<UnitName>) {
        out.push(name.clone());
        if let Some(t) = name.template() {
            Self::candidate_names(&t, out);
        }
        let Some(prefix) = truncate_at_dash(name.prefix()) else {
            return;
        };
        // Instances keep their instance; a template's prefixes are plain
        // names (`a-b@.service` → `a-.service`).
        let instance = if name.is_instance() {
            name.instance()
        } else {
            None
        };
        if let Ok(next) = UnitName::build(&prefix, instance, name.unit_type()) {
            Self::candidate_names(&next, out);
        }
    }

    /// Whether the directory `<dir>/<entry>` may exist: in a listed search
    /// directory only an entry the scan saw may (no `stat` needed to rule
    /// the others out, which every `Accept=yes` connection asks about for
    /// each search directory and suffix).
    fn may_hold(&self, dir: &Path, entry: &str) -> bool {
        !self.listed.contains(dir) || self.subdir_names.contains(entry)
    }

    fn candidate_dirs(&self, names: &[UnitName], id: &UnitName, suffix: &str) -> Vec<PathBuf> {
        // Every search directory was listed and none has an entry ending
        // in `suffix`: there is nothing to find (the common case, checked
        // once per connection for `Accept=yes` instances).
        if self.search.dirs.iter().all(|d| self.listed.contains(d))
            && !self.subdirs.iter().any(|p| {
                p.as_os_str()
                    .as_encoded_bytes()
                    .ends_with(suffix.as_bytes())
            })
        {
            return Vec::new();
        }
        let mut dirs = Vec::new();
        let mut candidates = Vec::new();
        for n in names {
            candidates.clear();
            Self::candidate_names(n, &mut candidates);
            let entries: Vec<String> = candidates
                .iter()
                .map(|c| format!("{}{suffix}", c.as_str()))
                .collect();
            for d in &self.search.dirs {
                for entry in &entries {
                    if !self.may_hold(d, entry) {
                        continue;
                    }
                    let p = d.join(entry);
                    if self.is_dir(d, &p) {
                        dirs.push(p);
                    }
                }
            }
        }
        let top = format!("{}{suffix}", id.unit_type().suffix());
        for d in &self.search.dirs {
            if !self.may_hold(d, &top) {
                continue;
            }
            let p = d.join(&top);
            if self.is_dir(d, &p) {
                dirs.push(p);
            }
        }
        // systemd chases each directory's symlinks (`unit_file_find_dir()`)
        // and reads, and reports, its files under the resolved path: a
        // drop-in of a symlinked unit directory (NixOS's
        // /etc/systemd/system -> /nix/store/…-system-units) or of a
        // symlinked `.d` directory is named by where it really lives. Two
        // candidates resolving to one directory count once.
        let mut chased: Vec<PathBuf> = Vec::with_capacity(dirs.len());
        for d in dirs {
            let c = std::fs::canonicalize(&d).unwrap_or(d);
            if !chased.contains(&c) {
                chased.push(c);
            }
        }
        chased
    }

    /// Files in the candidate directories, first directory winning per file
    /// name, sorted by file name.
    fn collect_dropins(
        &self,
        names: &[UnitName],
        id: &UnitName,
        suffix: &str,
        ext: Option<&str>,
    ) -> Vec<PathBuf> {
        let mut chosen: BTreeMap<String, PathBuf> = BTreeMap::new();
        for dir in self.candidate_dirs(names, id, suffix) {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for de in rd.flatten() {
                let Ok(fname) = de.file_name().into_string() else {
                    continue;
                };
                if is_hidden_or_backup(&fname) || ext.is_some_and(|e| !fname.ends_with(e)) {
                    continue;
                }
                if chosen.contains_key(&fname) {
                    continue;
                }
                let path = dir.join(&fname);
                // Directories are never drop-ins or dependency links.
                if ext.is_some() && path.is_dir() {
                    continue;
                }
                chosen.insert(fname, path);
            }
        }
        chosen.into_values().collect()
    }

    fn collect_deps(
        &self,
        names: &[UnitName],
        id: &UnitName,
        suffix: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Vec<UnitName> {
        let mut out = Vec::new();
        for p in self.collect_dropins(names, id, suffix, None) {
            let Some(entry) = file_name_str(&p) else {
                continue;
            };
            if path_is_mask(&p) {
                continue;
            }
            let is_link = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
            if !is_link {
                diagnostics.push(Diagnostic::warning(
                    &p,
                    0,
                    format!("{suffix} entry is not a symlink, ignoring"),
                ));
                continue;
            }
            let Ok(dep) = UnitName::parse(entry) else {
                diagnostics.push(Diagnostic::warning(
                    &p,
                    0,
                    format!("{suffix} entry is not a valid unit name, ignoring"),
                ));
                continue;
            };
            let dep = if dep.is_template() {
                // A template link names the instance of this unit, or for a
                // plain unit the instance spelled like its prefix.
                let inst = id
                    .instance()
                    .filter(|i| !i.is_empty())
                    .unwrap_or(id.prefix());
                match dep.with_instance(inst) {
                    Ok(d) => d,
                    Err(e) => {
                        diagnostics.push(Diagnostic::warning(
                            &p,
                            0,
                            format!("cannot instantiate {dep}: {e}"),
                        ));
                        continue;
                    }
                }
            } else {
                dep
            };
            if !out.contains(&dep) {
                out.push(dep);
            }
        }
        out
    }
}

/// Cuts the last dash-separated component off a prefix, keeping the dash:
/// `a-b-c` → `a-b-`, `a-b-` → `a-`, `a-` → none (systemd's rule, which
/// also stops at a leading dash).
fn truncate_at_dash(prefix: &str) -> Option<String> {
    let mut p = prefix.to_owned();
    let mut chopped = false;
    loop {
        let dash = p.rfind('-')?;
        if dash == 0 {
            return None;
        }
        if dash + 1 < p.len() || chopped {
            p.truncate(dash + 1);
            return Some(p);
        }
        p.truncate(dash);
        chopped = true;
    }
}

/// Finds the files of `name` on `search` (one scan of the search path).
pub fn resolve(search: &SearchPath, name: &UnitName) -> Result<UnitSources, LoadError> {
    UnitIndex::build(search).resolve(name)
}

/// Finds the files of a unit given as a file path, as `systemd-analyze
/// verify ./foo.service` does: the file's directory is searched first, then
/// `search`, so the file is the fragment while drop-ins and aliases still
/// come from the whole search path.
pub fn resolve_file(search: &SearchPath, path: &Path) -> Result<UnitSources, LoadError> {
    let abs = if path.is_absolute() {
        search_path::normalize(path)
    } else {
        let cwd = std::env::current_dir().map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        search_path::normalize(&cwd.join(path))
    };
    let name = file_name_str(&abs)
        .and_then(|n| UnitName::parse(n).ok())
        .ok_or_else(|| LoadError::BadFileName { path: abs.clone() })?;
    std::fs::symlink_metadata(&abs).map_err(|source| LoadError::Io {
        path: abs.clone(),
        source,
    })?;
    let parent = abs
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut dirs = vec![parent];
    dirs.extend(search.dirs.iter().cloned());
    let widened = SearchPath::from_dirs(dirs, search.user_mode);
    UnitIndex::build(&widened).resolve(&name)
}

/// Every unit name visible on `search`, sorted; the first directory that
/// has a name wins, hidden and backup files are skipped.
pub fn list_units(search: &SearchPath) -> Vec<UnitName> {
    UnitIndex::build(search).unit_names()
}

#[cfg(test)]
mod tests;
