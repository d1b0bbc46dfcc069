//! Finding a unit's file and reading its `[Install]` section, following
//! aliases and linked files the way systemd's `install_info_traverse()`
//! does, and the set of units one operation works on (the named units plus
//! everything their `Also=` pulls in, each once).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::links::chase;
use super::paths::LookupPaths;
use super::printf::install_printf;
use super::{Change, InstallError};
use crate::unit::lexer;
use crate::unit::loader::validate_alias;
use crate::unit::name::{UnitName, is_hidden_or_backup, is_valid_instance};
use crate::unit::value::words::{self, ExtractFlags};

/// How often an alias is followed before giving up, as systemd's
/// `UNIT_FILE_FOLLOW_SYMLINK_MAX`.
const FOLLOW_MAX: usize = 64;

/// What a name turned out to be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A unit file to read.
    Regular,
    /// A symlink out of the search path (`systemctl link`).
    Linked,
    /// A symlink to another unit file in the search path.
    Alias,
    /// A symlink to `/dev/null`, or an empty file.
    Masked,
}

/// How far [`search`] goes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Flags {
    /// Read the `[Install]` section (and drop-ins), not only find the file.
    pub load: bool,
    /// Follow aliases that live in the configuration directories
    /// (`/etc/systemd/system`); without it such an alias is an error.
    pub follow_config: bool,
}

impl Flags {
    pub const FIND: Flags = Flags {
        load: false,
        follow_config: false,
    };
    pub const LOAD: Flags = Flags {
        load: true,
        follow_config: false,
    };
    pub const FOLLOW: Flags = Flags {
        load: false,
        follow_config: true,
    };
    pub const LOAD_FOLLOW: Flags = Flags {
        load: true,
        follow_config: true,
    };
}

/// One unit of an operation: systemd's `InstallInfo`.
#[derive(Debug, Clone, Default)]
pub(crate) struct InstallInfo {
    pub name: String,
    /// The file found for the name (below the root).
    pub path: Option<PathBuf>,
    /// `None` until the file was found.
    pub mode: Option<Mode>,
    pub aliases: Vec<String>,
    pub wanted_by: Vec<String>,
    pub required_by: Vec<String>,
    pub upheld_by: Vec<String>,
    /// `Also=` names, specifiers expanded.
    pub also: Vec<String>,
    pub default_instance: Option<String>,
    /// For [`Mode::Alias`] and [`Mode::Linked`]: the link's target.
    pub symlink_target: Option<PathBuf>,
    /// Pulled in by `Also=`: failing to find it is only a warning.
    pub auxiliary: bool,
    /// What reading the files had to ignore, as `FILE:LINE: message`.
    pub warnings: Vec<String>,
}

impl InstallInfo {
    pub fn named(name: &str) -> InstallInfo {
        InstallInfo {
            name: name.to_owned(),
            ..InstallInfo::default()
        }
    }

    /// `WantedBy=`, `RequiredBy=`, `UpheldBy=` or `Alias=` present.
    pub fn has_rules(&self) -> bool {
        !self.aliases.is_empty()
            || !self.wanted_by.is_empty()
            || !self.required_by.is_empty()
            || !self.upheld_by.is_empty()
    }

    pub fn has_also(&self) -> bool {
        !self.also.is_empty()
    }

    fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// The found file, for messages (empty before the search).
    pub fn path_string(&self) -> String {
        self.path().display().to_string()
    }
}

pub(crate) use crate::conf_files::null_or_empty;

fn io(e: &std::io::Error) -> InstallError {
    InstallError::from_io(e)
}

/// Reads the `[Install]` section of one file into `info`. Returns the
/// number of `Alias=`, `WantedBy=`, `RequiredBy=` and `UpheldBy=` entries
/// (after this file), as systemd's `unit_file_load()`.
fn load(
    lp: &LookupPaths,
    info: &mut InstallInfo,
    path: &Path,
    flags: Flags,
    dropin: bool,
) -> Result<usize, InstallError> {
    let name = UnitName::parse(&info.name).map_err(|_| InstallError::Invalid)?;
    let file = if dropin {
        if !flags.load {
            return Ok(0);
        }
        let real = chase(lp, path).map_err(|e| io(&e))?;
        File::open(real).map_err(|e| io(&e))?
    } else {
        if !name.is_plain() && !name.unit_type().may_template() {
            return Err(InstallError::Invalid);
        }
        if !flags.load {
            let meta = std::fs::symlink_metadata(path).map_err(|e| io(&e))?;
            let ft = meta.file_type();
            info.mode = Some(if null_or_empty(&meta) {
                Mode::Masked
            } else if ft.is_file() {
                Mode::Regular
            } else if ft.is_symlink() {
                return Err(InstallError::Loop);
            } else if ft.is_dir() {
                return Err(InstallError::IsDirectory);
            } else {
                return Err(InstallError::NotRegular);
            });
            return Ok(0);
        }
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| io(&e))?
    };
    let meta = file.metadata().map_err(|e| io(&e))?;
    if null_or_empty(&meta) {
        if !dropin {
            info.mode = Some(Mode::Masked);
        }
        return Ok(0);
    }
    if meta.is_dir() {
        return Err(InstallError::IsDirectory);
    }
    if !meta.is_file() {
        return Err(InstallError::Os(nix::errno::Errno::EBADFD));
    }
    let mut bytes = Vec::new();
    (&file).read_to_end(&mut bytes).map_err(|e| io(&e))?;
    let parsed =
        lexer::parse(path, &bytes).map_err(|_| InstallError::Os(nix::errno::Errno::EBADMSG))?;
    let at = |line: u32, msg: &str| format!("{}:{line}: {msg}", path.display());
    // Messages in line order; a line that fails the file ends it, and
    // nothing after it is reported (systemd stops reading there).
    // Lines in sections systemd does not read are skipped unseen.
    let ignored_at = |line: u32| {
        parsed
            .sections
            .iter()
            .rev()
            .find(|(_, l)| *l < line)
            .is_some_and(|(s, _)| !KNOWN_SECTIONS.contains(&s.as_str()))
    };
    let mut events: Vec<(u32, String)> = parsed
        .warnings
        .iter()
        .filter(|d| !ignored_at(d.line))
        .map(|d| (d.line, d.to_string()))
        .collect();
    for (section, line) in &parsed.sections {
        if !KNOWN_SECTIONS.contains(&section.as_str()) && !section.starts_with("X-") {
            events.push((
                *line,
                at(*line, &format!("Unknown section '{section}'. Ignoring.")),
            ));
        }
    }
    let mut failure = None;
    for a in parsed.assignments.iter().filter(|a| a.section == "Install") {
        let r = match a.key.as_str() {
            "Alias" if !name.unit_type().may_alias() => Ok(Some(format!(
                "Alias= is not allowed for {} units, ignoring.",
                name.unit_type()
            ))),
            "Alias" => Ok(parse_list(&a.value, &mut info.aliases)),
            "WantedBy" => Ok(parse_list(&a.value, &mut info.wanted_by)),
            "RequiredBy" => Ok(parse_list(&a.value, &mut info.required_by)),
            "UpheldBy" => Ok(parse_list(&a.value, &mut info.upheld_by)),
            "DefaultInstance" => parse_default_instance(lp, info, &name, &a.value),
            "Also" => parse_also(lp, info, &a.value),
            key => Ok(Some(format!(
                "Unknown key '{key}' in section [Install], ignoring."
            ))),
        };
        match r {
            Ok(None) => {}
            Ok(Some(w)) => events.push((a.line, at(a.line, &w))),
            Err((e, w)) => {
                if let Some(w) = w {
                    events.push((a.line, at(a.line, &w)));
                }
                failure = Some((a.line, e));
                break;
            }
        }
    }
    if let Some((line, _)) = failure {
        events.retain(|(l, _)| *l <= line);
    }
    events.sort_by_key(|(l, _)| *l);
    info.warnings.extend(events.into_iter().map(|(_, w)| w));
    if let Some((_, e)) = failure {
        return Err(e);
    }
    if !dropin {
        info.mode = Some(Mode::Regular);
    }
    Ok(info.aliases.len() + info.wanted_by.len() + info.required_by.len() + info.upheld_by.len())
}

/// The sections systemd's install code reads or knowingly skips.
const KNOWN_SECTIONS: &[&str] = &[
    "Install",
    "Unit",
    "Automount",
    "Device",
    "Mount",
    "Path",
    "Scope",
    "Service",
    "Slice",
    "Socket",
    "Swap",
    "Target",
    "Timer",
];

/// systemd's `config_parse_strv()`: an empty value empties the list,
/// words are unquoted with backslashes kept; a syntax error ends the line
/// (with a warning, returned).
fn parse_list(value: &str, list: &mut Vec<String>) -> Option<String> {
    if value.is_empty() {
        list.clear();
        return None;
    }
    let flags = ExtractFlags {
        unquote: true,
        retain_escape: true,
        ..ExtractFlags::default()
    };
    let mut cursor = Some(value);
    loop {
        match words::extract_first_word(&mut cursor, None, flags) {
            Ok(Some(w)) => list.push(w),
            Ok(None) => return None,
            Err(_) => return Some(format!("Invalid syntax, ignoring: {value}")),
        }
    }
}

/// What one `[Install]` line gave: maybe a warning; or a failure of the
/// whole file, maybe with the warning systemd logs for it.
type LineResult = Result<Option<String>, (InstallError, Option<String>)>;

/// `DefaultInstance=`: only for templates; ignored (silently) when an
/// instance is being enabled; specifiers expanded; empty unsets. A value
/// that cannot be expanded or is not an instance fails the file.
fn parse_default_instance(
    lp: &LookupPaths,
    info: &mut InstallInfo,
    name: &UnitName,
    value: &str,
) -> LineResult {
    if name.is_instance() {
        return Ok(None);
    }
    if !name.is_template() {
        return Ok(Some(
            "DefaultInstance= only makes sense for template units, ignoring.".to_owned(),
        ));
    }
    let printed = install_printf(lp, info, value).map_err(|e| {
        let w = format!("Failed to resolve instance name in DefaultInstance=\"{value}\": {e}");
        (e, Some(w))
    })?;
    if printed.is_empty() {
        info.default_instance = None;
    } else if is_valid_instance(&printed) {
        info.default_instance = Some(printed);
    } else {
        let w = format!("Invalid DefaultInstance= value \"{printed}\".");
        return Err((InstallError::Invalid, Some(w)));
    }
    Ok(None)
}

/// `Also=`: words (no unquoting), specifiers expanded. A word that cannot
/// be expanded, or is not a unit name, fails the file.
fn parse_also(lp: &LookupPaths, info: &mut InstallInfo, value: &str) -> LineResult {
    let mut cursor = Some(value);
    loop {
        let word = match words::extract_first_word(&mut cursor, None, ExtractFlags::default()) {
            Ok(Some(w)) => w,
            Ok(None) => return Ok(None),
            Err(_) => return Err((InstallError::Invalid, None)),
        };
        let printed = install_printf(lp, info, &word).map_err(|e| {
            let w = format!("Failed to resolve unit name in Also=\"{word}\": {e}");
            (e, Some(w))
        })?;
        if UnitName::parse(&printed).is_err() {
            return Err((InstallError::Invalid, None));
        }
        info.also.push(printed);
    }
}

/// systemd's `unit_file_load_or_readlink()`: loads `path`, or when it is a
/// symlink, records where it points and whether that is an alias, a linked
/// unit file or a mask.
fn load_or_readlink(
    lp: &LookupPaths,
    info: &mut InstallInfo,
    path: &Path,
    flags: Flags,
) -> Result<usize, InstallError> {
    match load(lp, info, path, flags, false) {
        Err(InstallError::Loop) => {}
        other => return other,
    }
    let (target, linked) = resolve_symlink(lp, path)?;
    // A link to /dev/null masks. Below a root, that is all systemd checks:
    // it looks for the target with the root prefixed a second time, which
    // finds nothing. Without a root, a link to an empty file masks too.
    let masked = if lp.skip_root(&target) == Path::new("/dev/null") {
        true
    } else if lp.root.is_some() {
        false
    } else {
        match std::fs::metadata(&target) {
            Ok(m) => null_or_empty(&m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io(&e)),
        }
    };
    info.mode = Some(if masked {
        Mode::Masked
    } else if linked {
        Mode::Linked
    } else {
        Mode::Alias
    });
    info.symlink_target = Some(target);
    Ok(0)
}

/// systemd's `unit_file_resolve_symlink()` for installation: the link's
/// target as an absolute path below the root (`.` and `..` removed,
/// nothing followed), and whether it leaves the search path (a linked unit
/// file) rather than being an alias. An alias must be one systemd accepts.
pub(crate) fn resolve_symlink(
    lp: &LookupPaths,
    path: &Path,
) -> Result<(PathBuf, bool), InstallError> {
    let target = std::fs::read_link(path).map_err(|e| io(&e))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let abs = if target.is_absolute() {
        lp.prefix_root(&target)
    } else {
        dir.join(&target)
    };
    let simplified = normalize_below(lp, &abs);
    let inside = lp
        .search_path
        .iter()
        .any(|d| simplified.starts_with(d) && simplified != *d);
    if inside {
        let src = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or(InstallError::Invalid)?;
        let dst = simplified
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or(InstallError::BadAlias)?;
        check_alias(src, dst)?;
    }
    Ok((simplified, !inside))
}

/// systemd's `unit_validate_alias_symlink_or_warn()` for the alias `src`
/// of the unit `dst`: `Invalid` when `src` may not be an alias at all,
/// `BadAlias` when it does not match `dst`, `Loop` for an alias to itself.
pub(crate) fn check_alias(src: &str, dst: &str) -> Result<(), InstallError> {
    let src_ok = UnitName::parse(src)
        .is_ok_and(|s| s.unit_type().may_alias() && (s.is_plain() || s.unit_type().may_template()));
    if !src_ok {
        return Err(InstallError::Invalid);
    }
    if src == dst {
        return Err(InstallError::Loop);
    }
    validate_alias(src, dst).map_err(|_| InstallError::BadAlias)
}

/// Removes `.` and `..` lexically, never climbing above the root.
fn normalize_below(lp: &LookupPaths, p: &Path) -> PathBuf {
    let root = lp.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let rel = p.strip_prefix(&root).unwrap_or(p);
    let mut out = root.clone();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(s) => out.push(s),
            std::path::Component::ParentDir if out != root => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// systemd's `unit_file_search()`: finds the file of `info.name` (or of
/// its template), then its drop-ins. Returns what [`load`] returns.
pub(crate) fn search(
    lp: &LookupPaths,
    info: &mut InstallInfo,
    flags: Flags,
) -> Result<usize, InstallError> {
    if info.mode.is_some() {
        return Ok(0);
    }
    if let Some(p) = info.path.clone() {
        return load_or_readlink(lp, info, &p, flags);
    }
    let name = UnitName::parse(&info.name).map_err(|_| InstallError::Invalid)?;
    let template = name.template();
    let mut found = None;
    'names: for n in std::iter::once(&name).chain(template.as_ref()) {
        for dir in &lp.search_path {
            let path = dir.join(n.as_str());
            match load_or_readlink(lp, info, &path, flags) {
                Ok(r) => {
                    info.path = Some(path);
                    found = Some(r);
                    break 'names;
                }
                Err(
                    InstallError::NotFound
                    | InstallError::NotDirectory
                    | InstallError::PermissionDenied,
                ) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let Some(mut result) = found else {
        return Err(InstallError::NotFound);
    };
    if info.mode == Some(Mode::Masked) {
        return Ok(result);
    }
    // Drop-ins: `name.d/` then `template.d/` in every search directory;
    // the first file of each name wins, applied in name order.
    let mut chosen: std::collections::BTreeMap<String, PathBuf> = std::collections::BTreeMap::new();
    for n in std::iter::once(&name).chain(template.as_ref()) {
        for dir in &lp.search_path {
            let d = dir.join(format!("{}.d", n.as_str()));
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for de in rd.flatten() {
                let Ok(f) = de.file_name().into_string() else {
                    continue;
                };
                let is_file = de.file_type().is_ok_and(|t| t.is_file() || t.is_symlink());
                if !is_file
                    || Path::new(&f).extension().is_none_or(|e| e != "conf")
                    || is_hidden_or_backup(&f)
                    || chosen.contains_key(&f)
                {
                    continue;
                }
                // A drop-in linked to /dev/null (or empty) masks the ones
                // of the same name below it: it reads as nothing. Below a
                // root, /dev/null is looked for inside the root, where it
                // usually is not, and the unit is then not found (as with
                // systemctl --root).
                let p = d.join(&f);
                chosen.insert(f, p);
            }
        }
    }
    for p in chosen.values() {
        result = load(lp, info, p, flags, true)?;
    }
    Ok(result)
}

/// The units of one operation, in the order they were met: systemd's
/// `InstallContext` with its `will_process` and `have_processed` maps.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub lp: &'a LookupPaths,
    pub infos: Vec<InstallInfo>,
    processed: Vec<bool>,
    by_name: HashMap<String, usize>,
    /// Warnings from reading unit files, in order.
    pub warnings: Vec<String>,
}

impl<'a> Context<'a> {
    pub fn new(lp: &'a LookupPaths) -> Context<'a> {
        Context {
            lp,
            infos: Vec::new(),
            processed: Vec::new(),
            by_name: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    /// systemd's `install_info_add()`: the entry for `name` (or the file
    /// name of `path`), created when new. An entry stays auxiliary only as
    /// long as every mention of it is.
    pub fn add(
        &mut self,
        name: Option<&str>,
        path: Option<PathBuf>,
        auxiliary: bool,
    ) -> Result<usize, InstallError> {
        let name = match name {
            Some(n) => n.to_owned(),
            None => path
                .as_deref()
                .and_then(Path::file_name)
                .and_then(|n| n.to_str())
                .ok_or(InstallError::Invalid)?
                .to_owned(),
        };
        if UnitName::parse(&name).is_err() {
            return Err(InstallError::Invalid);
        }
        if let Some(&i) = self.by_name.get(&name) {
            self.infos[i].auxiliary &= auxiliary;
            return Ok(i);
        }
        let i = self.infos.len();
        self.infos.push(InstallInfo {
            name: name.clone(),
            path,
            auxiliary,
            ..InstallInfo::default()
        });
        self.processed.push(false);
        self.by_name.insert(name, i);
        Ok(i)
    }

    /// Whether `name` has an entry.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The next entry not processed yet, now marked processed.
    pub fn next_unprocessed(&mut self) -> Option<usize> {
        let i = self.processed.iter().position(|p| !p)?;
        self.processed[i] = true;
        Some(i)
    }

    /// [`search`] on entry `i`; the units its `Also=` names join the
    /// context (auxiliary).
    fn search_entry(&mut self, i: usize, flags: Flags) -> Result<usize, InstallError> {
        let mut info = std::mem::take(&mut self.infos[i]);
        let r = search(self.lp, &mut info, flags);
        let also = info.also.clone();
        self.warnings.append(&mut info.warnings);
        self.infos[i] = info;
        for a in also {
            self.add(Some(&a), None, true)?;
        }
        r
    }

    /// systemd's `install_info_follow()`.
    fn follow(
        &mut self,
        i: usize,
        flags: Flags,
        ignore_different_name: bool,
    ) -> Result<usize, InstallError> {
        let info = &mut self.infos[i];
        if !matches!(info.mode, Some(Mode::Alias | Mode::Linked)) {
            return Err(InstallError::Invalid);
        }
        let Some(target) = info.symlink_target.clone() else {
            return Err(InstallError::Invalid);
        };
        let same = target.file_name().and_then(|n| n.to_str()) == Some(info.name.as_str());
        if !ignore_different_name && !same {
            return Err(InstallError::BadAlias);
        }
        info.path = Some(target);
        info.symlink_target = None;
        info.mode = None;
        let path = info.path.clone().unwrap_or_default();
        let mut taken = std::mem::take(&mut self.infos[i]);
        let r = load_or_readlink(self.lp, &mut taken, &path, flags);
        let also = taken.also.clone();
        self.warnings.append(&mut taken.warnings);
        self.infos[i] = taken;
        for a in also {
            self.add(Some(&a), None, true)?;
        }
        r
    }

    /// systemd's `install_info_traverse()`: finds entry `start`'s file and
    /// follows aliases (filling in the instance) to the unit that really
    /// gets installed, which may be a new entry. Returns that entry.
    pub fn traverse(&mut self, start: usize, flags: Flags) -> Result<usize, InstallError> {
        self.search_entry(start, flags)?;
        let mut i = start;
        let mut k = 0;
        while matches!(self.infos[i].mode, Some(Mode::Alias | Mode::Linked)) {
            k += 1;
            if k > FOLLOW_MAX {
                return Err(InstallError::Loop);
            }
            if !flags.follow_config {
                let in_config = self.infos[i]
                    .path
                    .as_deref()
                    .and_then(Path::parent)
                    .is_some_and(|d| self.lp.is_config_dir(d));
                if in_config {
                    return Err(InstallError::Loop);
                }
            }
            let linked = self.infos[i].mode == Some(Mode::Linked);
            match self.follow(i, flags, linked) {
                Err(InstallError::BadAlias) if self.infos[i].symlink_target.is_some() => {
                    let target = self.infos[i].symlink_target.clone().unwrap_or_default();
                    let mut bn = target
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                        .to_owned();
                    let name = UnitName::parse(&self.infos[i].name).ok();
                    let target_name = UnitName::parse(&bn).ok();
                    if let (Some(n), Some(t)) = (&name, &target_name)
                        && n.is_instance()
                        && t.is_template()
                    {
                        let inst = n.instance().unwrap_or_default();
                        let filled = t.with_instance(inst).map_err(|_| InstallError::Invalid)?;
                        if filled.as_str() == n.as_str() {
                            // The instance filled in gives the same name:
                            // honour the link as it is.
                            self.follow(i, flags, true)?;
                            continue;
                        }
                        filled.as_str().clone_into(&mut bn);
                    }
                    i = self.add(Some(&bn), None, false)?;
                    match self.search_entry(i, flags) {
                        Err(InstallError::NotFound) => return Err(InstallError::Dangling),
                        Err(e) => return Err(e),
                        Ok(_) => {}
                    }
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        Ok(i)
    }

    /// systemd's `install_info_discover()`: adds a name, or an absolute
    /// path (below the root), and traverses it. A failure is also
    /// recorded as a change against `name_or_path`.
    pub fn discover(
        &mut self,
        name_or_path: &str,
        flags: Flags,
        changes: &mut Vec<Change>,
    ) -> Result<usize, InstallError> {
        let r = if name_or_path.starts_with('/') {
            let p = self.lp.prefix_root(Path::new(name_or_path));
            self.add(None, Some(p), false)
        } else {
            self.add(Some(name_or_path), None, false)
        }
        .and_then(|i| self.traverse(i, flags));
        if let Err(e) = r {
            changes.push(Change::failed(e, name_or_path, None));
        }
        r
    }

    /// `discover` followed by [`may_process`].
    pub fn discover_and_check(
        &mut self,
        name_or_path: &str,
        flags: Flags,
        changes: &mut Vec<Change>,
    ) -> Result<usize, InstallError> {
        let i = self.discover(name_or_path, flags, changes)?;
        may_process(self.lp, &self.infos[i], changes)?;
        Ok(i)
    }
}

/// systemd's `install_info_may_process()`: masked, transient and
/// generated units are not enabled or disabled.
pub(crate) fn may_process(
    lp: &LookupPaths,
    info: &InstallInfo,
    changes: &mut Vec<Change>,
) -> Result<(), InstallError> {
    let path = info.path();
    let e = if info.mode == Some(Mode::Masked) {
        InstallError::Masked
    } else if lp.is_generator(path) || lp.is_transient(path) {
        InstallError::Generated
    } else {
        return Ok(());
    };
    changes.push(Change::failed(e, &info.path_string(), None));
    Err(e)
}

/// Whether a unit file exists for `name` (systemd's `unit_file_exists()`):
/// `Ok(false)` only when none is found.
pub(crate) fn unit_file_exists(lp: &LookupPaths, name: &str) -> Result<bool, InstallError> {
    if UnitName::parse(name).is_err() {
        return Err(InstallError::Invalid);
    }
    let mut ctx = Context::new(lp);
    let mut changes = Vec::new();
    match ctx.discover(name, Flags::FIND, &mut changes) {
        Ok(_) => Ok(true),
        Err(InstallError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}
