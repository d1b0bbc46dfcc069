//! `flint enable`, `disable`, `reenable`, `mask`, `unmask` and
//! `is-enabled`: the `[Install]` section applied exactly as `systemctl`
//! applies it, so a tree prepared by flint reads the same to systemd and
//! the other way round.
//!
//! The rules come from systemd's `src/shared/install.c` (version 252, as
//! Debian 12 ships it) and are checked against `systemctl --root` by the
//! `install` integration test:
//!
//! * `enable` finds the unit on the search path (an instance falls back to
//!   its template; aliases are followed, the instance carried over), reads
//!   `[Install]` from the file and its `name.d/`/`template.d/` drop-ins, and
//!   creates in the configuration directory (`/etc/systemd/system`, or
//!   `~/.config/systemd/user`, below `--root`): `Alias=` links, one link per
//!   `WantedBy=`/`RequiredBy=`/`UpheldBy=` in `<target>.wants/`,
//!   `.requires/`, `.upholds/`, and a link to the file itself when it lies
//!   outside the search path. Link targets are absolute paths without the
//!   root. A template links as its `DefaultInstance=` instance, or only when
//!   an instance is named; values expand `%i %n %p …` (see [`printf`]).
//!   Units named by `Also=` are enabled too, each once, cycles included; one
//!   that is missing is only a warning.
//! * `disable` removes, below the configuration directory, every link named
//!   like the unit (or its template) or leading to a file of that name, for
//!   the unit and its `Also=` units, and empty `.wants/` directories.
//! * `mask` links the name to `/dev/null`; `unmask` removes that link.
//! * [`unit_file_state`] answers `is-enabled`: `enabled`, `static`,
//!   `disabled`, `alias`, `indirect`, `masked`, `linked`, … .
//!
//! Masked units are not enabled (an error, as in systemctl), nor are
//! generated or transient ones. flint's own directory `/etc/flint/system`
//! is searched first, so units placed there can be enabled too; the links
//! still go where systemd and flint both read them.
//!
//! Every operation returns an [`Outcome`]: the [`Change`]s made or refused,
//! in order, and the overall result; [`Outcome::messages`] words them as
//! systemctl does.

pub mod command;
mod discover;
mod links;
mod paths;
mod preset;
mod printf;

#[cfg(test)]
mod tests;

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

pub use paths::{LookupPaths, Scope};
pub use preset::{PresetAction, PresetMode, Presets, preset, preset_all};

use discover::{Context, Flags, InstallInfo, Mode};
use links::{Marks, create_symlink, find_symlinks_in_scope, remove_marked_symlinks};
use printf::install_printf;

use crate::unit::name::{NameKind, UnitName};

/// Why an operation, or one step of it, failed. Each variant is the errno
/// systemd uses for the case, and displays as that errno's text, which is
/// what systemctl prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// `ENOENT`: no such unit file.
    #[error("No such file or directory")]
    NotFound,
    /// `ENOTDIR`
    #[error("Not a directory")]
    NotDirectory,
    /// `EACCES`
    #[error("Permission denied")]
    PermissionDenied,
    /// `ELOOP`: a link to the unit itself, an alias in the configuration
    /// directory named instead of the unit, or a chain of aliases too long.
    #[error("Too many levels of symbolic links")]
    Loop,
    /// `EXDEV`: an `Alias=` that does not fit the unit.
    #[error("Invalid cross-device link")]
    BadAlias,
    /// `ERFKILL`: the unit is masked.
    #[error("Operation not possible due to RF-kill")]
    Masked,
    /// `EADDRNOTAVAIL`: the unit is transient or generated.
    #[error("Cannot assign requested address")]
    Generated,
    /// `EEXIST`: another file is in the way of a link.
    #[error("File exists")]
    Exists,
    /// `EIDRM`: a template without `DefaultInstance=` wanted by a plain unit.
    #[error("Identifier removed")]
    NotTemplate,
    /// `EUCLEAN`: not a valid unit name.
    #[error("Structure needs cleaning")]
    BadName,
    /// `EBADSLT`: an unknown `%` specifier.
    #[error("Invalid slot")]
    BadSpecifier,
    /// `EUNATCH`: a specifier whose value is unknown (e.g. `%m` in a root
    /// without `/etc/machine-id`).
    #[error("Protocol driver not attached")]
    Unresolvable,
    /// `EINVAL`
    #[error("Invalid argument")]
    Invalid,
    /// `ENOLINK`: an alias to a unit that does not exist.
    #[error("Link has been severed")]
    Dangling,
    /// `EISDIR`
    #[error("Is a directory")]
    IsDirectory,
    /// `ENOTTY`: neither a file nor a link.
    #[error("Inappropriate ioctl for device")]
    NotRegular,
    /// `ENXIO`: no such directory (e.g. `--runtime` without
    /// `$XDG_RUNTIME_DIR`).
    #[error("No such device or address")]
    NoDevice,
    /// `ENAMETOOLONG`
    #[error("File name too long")]
    NameTooLong,
    /// `ETXTBSY`: `link` of a file in a directory below the search path.
    #[error("Text file busy")]
    UnderHierarchy,
    /// Any other system error.
    #[error("{}", .0.desc())]
    Os(nix::errno::Errno),
}

impl InstallError {
    /// The variant for an I/O error.
    pub fn from_io(e: &std::io::Error) -> InstallError {
        use nix::errno::Errno;
        match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOENT) => InstallError::NotFound,
            Some(Errno::ENOTDIR) => InstallError::NotDirectory,
            Some(Errno::EACCES) => InstallError::PermissionDenied,
            Some(Errno::ELOOP) => InstallError::Loop,
            Some(Errno::EEXIST) => InstallError::Exists,
            Some(Errno::EISDIR) => InstallError::IsDirectory,
            Some(Errno::EINVAL) => InstallError::Invalid,
            Some(Errno::ENAMETOOLONG) => InstallError::NameTooLong,
            Some(e) => InstallError::Os(e),
            None => InstallError::Os(Errno::EIO),
        }
    }
}

/// One thing an operation did, or refused to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A link was created: `path` → `target` (target without the root).
    Symlink { path: PathBuf, target: PathBuf },
    /// A link was removed.
    Unlink { path: PathBuf },
    /// A unit named by `Also=` (or being disabled) is masked and was left
    /// alone.
    IsMasked { path: String },
    /// An alias leads nowhere; only the name was removed.
    IsDangling { path: String },
    /// `unit` wants a unit that has no file (yet).
    DestinationNotPresent { unit: String, source: PathBuf },
    /// A unit named by `Also=` could not be found or enabled.
    AuxiliaryFailed { unit: String },
    /// A step failed: about `path` (a file or a unit name), with `source`
    /// saying more for some errors (the existing link's target, the unit).
    Failed {
        error: InstallError,
        path: String,
        source: Option<String>,
    },
}

impl Change {
    pub(crate) fn failed(error: InstallError, path: &str, source: Option<String>) -> Change {
        Change::Failed {
            error,
            path: simplify(path),
            source: source.map(|s| simplify(&s)),
        }
    }

    /// Whether the change modified the file system.
    pub fn is_modification(&self) -> bool {
        matches!(self, Change::Symlink { .. } | Change::Unlink { .. })
    }
}

/// How loud a [`Message`] is (systemctl prints all of them on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// One line for the user, as systemctl words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub level: Level,
    pub text: String,
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What an operation did: its changes in order, and the result (for
/// `enable`, how many units carried installation rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub changes: Vec<Change>,
    pub result: Result<usize, InstallError>,
    /// What reading the unit files had to ignore (`FILE:LINE: message`).
    pub warnings: Vec<String>,
}

impl Outcome {
    /// The messages systemctl prints for these changes after the verb
    /// (`enable`, `disable`, …): `Created symlink A → B.`, `Removed "A".`,
    /// `Failed to enable unit, unit X is masked.`, … and, when the
    /// operation failed without a failed step, `Failed to VERB: ERROR.`.
    pub fn messages(&self, verb: &str, utf8: bool) -> Vec<Message> {
        let arrow = if utf8 { "→" } else { "->" };
        let mut out: Vec<Message> = self
            .warnings
            .iter()
            .map(|w| Message {
                level: Level::Warning,
                text: w.clone(),
            })
            .collect();
        let mut logged_error = false;
        let info = |text: String| Message {
            level: Level::Info,
            text,
        };
        let warn = |text: String| Message {
            level: Level::Warning,
            text,
        };
        for c in &self.changes {
            match c {
                Change::Symlink { path, target } => out.push(info(format!(
                    "Created symlink {} {arrow} {}.",
                    path.display(),
                    target.display()
                ))),
                Change::Unlink { path } => {
                    out.push(info(format!("Removed \"{}\".", path.display())));
                }
                Change::IsMasked { path } => {
                    out.push(info(format!("Unit {path} is masked, ignoring.")));
                }
                Change::IsDangling { path } => out.push(info(format!(
                    "Unit {path} is an alias to a unit that is not present, ignoring."
                ))),
                Change::DestinationNotPresent { unit, source } => out.push(warn(format!(
                    "Unit {} is added as a dependency to a non-existent unit {unit}.",
                    source.display()
                ))),
                Change::AuxiliaryFailed { unit } => out.push(warn(format!(
                    "Failed to enable auxiliary unit {unit}, ignoring."
                ))),
                Change::Failed {
                    error,
                    path,
                    source,
                } => {
                    logged_error = true;
                    out.push(Message {
                        level: Level::Error,
                        text: failure_text(verb, *error, path, source.as_deref()),
                    });
                }
            }
        }
        if let Err(e) = self.result
            && !logged_error
        {
            out.push(Message {
                level: Level::Error,
                text: format!("Failed to {verb}: {e}."),
            });
        }
        out
    }
}

/// systemctl's words for a failed step.
fn failure_text(verb: &str, error: InstallError, path: &str, source: Option<&str>) -> String {
    match (error, source) {
        (InstallError::Exists, Some(s)) => format!(
            "Failed to {verb} unit, file \"{path}\" already exists and is a symlink to \"{s}\"."
        ),
        (InstallError::Exists, None) => {
            format!("Failed to {verb} unit, file \"{path}\" already exists.")
        }
        (InstallError::Masked, _) => format!("Failed to {verb} unit, unit {path} is masked."),
        (InstallError::Generated, _) => {
            format!("Failed to {verb} unit, unit {path} is transient or generated.")
        }
        (InstallError::BadSpecifier, _) => {
            format!("Failed to {verb} unit, invalid specifier in \"{path}\".")
        }
        (InstallError::NotTemplate, s) => format!(
            "Failed to {verb} {}, destination unit {path} is a non-template unit.",
            s.unwrap_or_default()
        ),
        (InstallError::BadName, _) => {
            format!("Failed to {verb} unit, \"{path}\" is not a valid unit name.")
        }
        (InstallError::Loop, _) => {
            format!("Failed to {verb} unit, refusing to operate on linked unit file {path}.")
        }
        (InstallError::BadAlias, Some(s)) => {
            format!("Failed to {verb} unit, cannot alias {s} as {path}.")
        }
        (InstallError::BadAlias, None) => {
            format!("Failed to {verb} unit, invalid unit reference \"{path}\".")
        }
        (InstallError::NotFound, _) => {
            format!("Failed to {verb} unit, unit {path} does not exist.")
        }
        (InstallError::UnderHierarchy, _) => format!(
            "Failed to {verb} unit, file {path} is under the systemd unit hierarchy already."
        ),
        (InstallError::Unresolvable, _) => {
            format!("Failed to {verb} unit, cannot resolve specifiers in \"{path}\".")
        }
        (e, _) => format!("Failed to {verb} unit, file \"{path}\": {e}"),
    }
}

/// A path with doubled slashes, `.` components and a trailing slash
/// removed, as systemd stores the paths of changes; anything else as is.
fn simplify(s: &str) -> String {
    if !s.contains('/') {
        return s.to_owned();
    }
    let simple = crate::unit::value::exec::path_simplify(s);
    if simple.is_empty() {
        ".".to_owned()
    } else {
        simple
    }
}

/// A command-line unit argument as systemctl's `mangle_names()` takes it:
/// a path (anything with a `/`) is made absolute against `cwd`; a name
/// that is not valid is escaped (`/` to `-`, other bytes to `\xHH`) and
/// gets `.service` when it has no unit type suffix. Returns the name and
/// the notices systemctl prints about it; `operation` is e.g. `to enable`.
pub fn mangle_arg(
    arg: &str,
    operation: &str,
    cwd: &Path,
) -> Result<(String, Vec<String>), InstallError> {
    let mut notices = Vec::new();
    if arg.contains('/') {
        if arg.starts_with('/') {
            return Ok((arg.to_owned(), notices));
        }
        let base = cwd.display().to_string();
        return Ok((format!("{}/{arg}", base.trim_end_matches('/')), notices));
    }
    if UnitName::parse(arg).is_ok() {
        return Ok((arg.to_owned(), notices));
    }
    let mut suggest_escape = true;
    if arg.contains(['*', '?', '[']) {
        let glob_chars = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@[]!*?".contains(c);
        if arg.chars().all(glob_chars) {
            notices.push(format!(
                "Glob pattern passed {operation}, but globs are not supported for this."
            ));
            suggest_escape = false;
        }
    }
    let mut escaped = String::with_capacity(arg.len() * 4);
    for b in arg.bytes() {
        if b == b'/' {
            escaped.push('-');
        } else if b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b) {
            escaped.push(char::from(b));
        } else {
            let _ = write!(escaped, "\\x{b:02x}");
        }
    }
    if escaped != arg {
        notices.push(format!(
            "Invalid unit name \"{arg}\" escaped as \"{escaped}\"{}.",
            if suggest_escape {
                " (maybe you should use systemd-escape?)"
            } else {
                ""
            }
        ));
    }
    let typed = escaped
        .rfind('.')
        .is_some_and(|d| crate::unit::name::UnitType::from_suffix(&escaped[d + 1..]).is_some());
    if !typed {
        escaped.push_str(".service");
    }
    if UnitName::parse(&escaped).is_err() {
        return Err(InstallError::Invalid);
    }
    Ok((escaped, notices))
}

/// The notice systemctl prints when `enable` found no installation rules.
pub fn no_install_info_notice(utf8: bool) -> String {
    let bullet = if utf8 { "•" } else { "*" };
    format!(
        "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\n\
         Alias= settings in the [Install] section, and DefaultInstance= for template\n\
         units). This means they are not meant to be enabled using systemctl.\n \n\
         Possible reasons for having this kind of units are:\n\
         {bullet} A unit may be statically enabled by being symlinked from another unit's\n  \
         .wants/ or .requires/ directory.\n\
         {bullet} A unit's purpose may be to act as a helper for some other unit which has\n  \
         a requirement dependency on it.\n\
         {bullet} A unit may be started when needed via activation (socket, path, timer,\n  \
         D-Bus, udev, scripted systemctl call, ...).\n\
         {bullet} In case of template units, the unit is meant to be enabled with some\n  \
         instance name specified."
    )
}

/// Whether the locale asks for UTF-8 output (systemd's `is_locale_utf8()`):
/// `$SYSTEMD_UTF8` decides when set; an unset locale counts as UTF-8.
pub fn locale_is_utf8(env: &dyn Fn(&str) -> Option<String>) -> bool {
    if let Some(v) = env("SYSTEMD_UTF8") {
        return crate::unit::value::bool::parse_bool(&v).unwrap_or(true);
    }
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| env(k).filter(|v| !v.is_empty()));
    match locale {
        None => true,
        Some(l) => {
            let l = l.to_ascii_lowercase();
            l.contains("utf-8") || l.contains("utf8")
        }
    }
}

/// The options `enable`, `disable`, `mask` and `unmask` share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Replace links that are in the way (`--force`).
    pub force: bool,
    /// Work in the runtime directory, `/run/systemd/system` (`--runtime`).
    pub runtime: bool,
    /// Which half of the presets `preset` applies (`--preset-mode=`).
    pub preset_mode: PresetMode,
}

/// The state `is-enabled` reports (systemd's `UnitFileState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitFileState {
    Enabled,
    EnabledRuntime,
    Linked,
    LinkedRuntime,
    Alias,
    Masked,
    MaskedRuntime,
    Static,
    Disabled,
    Indirect,
    Generated,
    Transient,
    Bad,
}

impl UnitFileState {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitFileState::Enabled => "enabled",
            UnitFileState::EnabledRuntime => "enabled-runtime",
            UnitFileState::Linked => "linked",
            UnitFileState::LinkedRuntime => "linked-runtime",
            UnitFileState::Alias => "alias",
            UnitFileState::Masked => "masked",
            UnitFileState::MaskedRuntime => "masked-runtime",
            UnitFileState::Static => "static",
            UnitFileState::Disabled => "disabled",
            UnitFileState::Indirect => "indirect",
            UnitFileState::Generated => "generated",
            UnitFileState::Transient => "transient",
            UnitFileState::Bad => "bad",
        }
    }

    /// The states for which `is-enabled` exits 0.
    pub fn counts_as_enabled(self) -> bool {
        matches!(
            self,
            UnitFileState::Enabled
                | UnitFileState::EnabledRuntime
                | UnitFileState::Static
                | UnitFileState::Alias
                | UnitFileState::Indirect
                | UnitFileState::Generated
        )
    }
}

impl fmt::Display for UnitFileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runs `f` and packs its changes and warnings with its result.
fn outcome(
    f: impl FnOnce(&mut Vec<Change>, &mut Vec<String>) -> Result<usize, InstallError>,
) -> Outcome {
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    let result = f(&mut changes, &mut warnings);
    Outcome {
        changes,
        result,
        warnings,
    }
}

/// The check Debian's systemctl makes before `enable`, `disable` and
/// `is-enabled` of system `.service` units (to hand SysV init scripts to
/// `systemd-sysv-install`): looking a name up must not fail for another
/// reason than the unit being masked, generated or an alias in
/// `/etc/systemd/system`. A dangling alias, for one, fails here.
pub fn check_names(lp: &LookupPaths, names: &[String]) -> Result<(), InstallError> {
    if lp.scope != Scope::System {
        return Ok(());
    }
    for n in names {
        if !n.ends_with(".service") || n.starts_with('/') {
            continue;
        }
        match discover::unit_file_exists(lp, n) {
            Ok(_) | Err(InstallError::Loop | InstallError::Masked | InstallError::Generated) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Enables units: names, or absolute paths of unit files (below the root).
pub fn enable(lp: &LookupPaths, names: &[String], opts: Options) -> Outcome {
    outcome(|changes, warnings| {
        let config = lp.config_path(opts.runtime)?.to_path_buf();
        do_enable(lp, &config, names, opts, changes, warnings)
    })
}

fn do_enable(
    lp: &LookupPaths,
    config: &Path,
    names: &[String],
    opts: Options,
    changes: &mut Vec<Change>,
    warnings: &mut Vec<String>,
) -> Result<usize, InstallError> {
    let mut ctx = Context::new(lp);
    let mut r = Ok(0);
    for n in names {
        if let Err(e) = ctx.discover_and_check(n, Flags::LOAD_FOLLOW, changes) {
            r = Err(e);
            break;
        }
    }
    if r.is_ok() {
        r = context_apply(&mut ctx, config, opts.force, false, changes);
    }
    warnings.append(&mut ctx.warnings);
    r
}

/// systemd's `install_context_apply()`: creates the links of every unit of
/// the context. Returns how many units had something to install. With
/// `presets` (`UNIT_FILE_IGNORE_AUXILIARY_FAILURE`), a `WantedBy=` that
/// cannot name a link (a template without `DefaultInstance=` wanted by a
/// plain unit) is passed over instead of failing.
fn context_apply(
    ctx: &mut Context<'_>,
    config: &Path,
    force: bool,
    presets: bool,
    changes: &mut Vec<Change>,
) -> Result<usize, InstallError> {
    let mut r: Result<usize, InstallError> = Ok(0);
    while let Some(i) = ctx.next_unprocessed() {
        if let Err(e) = ctx.traverse(i, Flags::LOAD) {
            let name = ctx.infos[i].name.clone();
            if ctx.infos[i].auxiliary {
                changes.push(Change::AuxiliaryFailed { unit: name });
                continue;
            }
            changes.push(Change::failed(e, &name, None));
            return Err(e);
        }
        let info = &ctx.infos[i];
        if info.mode == Some(Mode::Masked) {
            changes.push(Change::IsMasked {
                path: info.path_string(),
            });
            if let Ok(n) = &mut r {
                *n += 1;
            }
            continue;
        }
        if info.mode != Some(Mode::Regular) {
            continue;
        }
        let q = apply(ctx.lp, &ctx.infos[i], config, force, presets, changes);
        if let Ok(n) = r {
            r = q.map(|k| n + k);
        }
    }
    r
}

/// systemd's `install_info_apply()` for one regular unit: 1 when it has
/// something to install, 0 when not.
fn apply(
    lp: &LookupPaths,
    info: &InstallInfo,
    config: &Path,
    force: bool,
    presets: bool,
    changes: &mut Vec<Change>,
) -> Result<usize, InstallError> {
    let path = info.path.clone().unwrap_or_default();
    if !lp.in_search_path(&path) {
        // A unit file outside the search path is linked in first; when that
        // fails, nothing else is linked to it.
        create_symlink(lp, &path, &config.join(&info.name), force, changes)?;
    }
    let mut r = symlink_aliases(lp, info, config, force, changes);
    for (list, suffix) in [
        (&info.wanted_by, ".wants/"),
        (&info.required_by, ".requires/"),
        (&info.upheld_by, ".upholds/"),
    ] {
        let q = symlink_wants(lp, info, config, list, suffix, presets, changes);
        if r == Ok(0) {
            r = q;
        }
    }
    r
}

/// systemd's `unit_symlink_name_compatible()`.
fn name_compatible(symlink: &str, target: &str, instance_propagation: bool) -> bool {
    let Ok(s) = UnitName::parse(symlink) else {
        return false;
    };
    if symlink == target && matches!(s.kind(), NameKind::Plain | NameKind::Instance) {
        return true;
    }
    let template = match s.kind() {
        NameKind::Plain => return false,
        NameKind::Template => s.clone(),
        NameKind::Instance => match s.template() {
            Some(t) => t,
            None => return false,
        },
    };
    let t_kind = UnitName::parse(target).map(|t| t.kind()).ok();
    if template.as_str() != target {
        return false;
    }
    (s.is_instance() && t_kind == Some(NameKind::Template))
        || (instance_propagation && s.is_template() && t_kind == Some(NameKind::Template))
}

/// systemd's `unit_file_verify_alias()`: checks `Alias=` value `dst` for
/// `info`; returns the name with the instance filled in when it was a
/// template and `info` an instance. `Loop` (an alias to itself) is ignored
/// by the caller; other failures are recorded as changes.
fn verify_alias(
    info: &InstallInfo,
    dst: &str,
    changes: &mut Vec<Change>,
) -> Result<Option<String>, InstallError> {
    if let Some((dir, alias)) = dst.rsplit_once('/') {
        // The old use of Alias= to create .wants/ and .requires/ links.
        let Some(unit_dir) = dir
            .strip_suffix(".wants")
            .or_else(|| dir.strip_suffix(".requires"))
        else {
            changes.push(Change::failed(InstallError::BadAlias, dst, None));
            return Err(InstallError::BadAlias);
        };
        let Ok(u) = UnitName::parse(unit_dir) else {
            changes.push(Change::failed(InstallError::BadAlias, dst, None));
            return Err(InstallError::BadAlias);
        };
        if !name_compatible(alias, &info.name, u.is_template()) {
            changes.push(Change::failed(
                InstallError::BadAlias,
                dst,
                Some(info.name.clone()),
            ));
            return Err(InstallError::BadAlias);
        }
        return Ok(None);
    }
    let mut updated = None;
    if let Ok(d) = UnitName::parse(dst)
        && d.is_template()
    {
        let Ok(me) = UnitName::parse(&info.name) else {
            changes.push(Change::failed(InstallError::BadName, &info.name, None));
            return Err(InstallError::BadName);
        };
        if let Some(inst) = me.instance().filter(|i| !i.is_empty()) {
            updated = Some(
                d.with_instance(inst)
                    .map_err(|_| InstallError::Invalid)?
                    .as_str()
                    .to_owned(),
            );
        }
    }
    let name = updated.as_deref().unwrap_or(dst);
    match discover::check_alias(name, &info.name) {
        Ok(()) => Ok(updated),
        Err(InstallError::Loop) => Err(InstallError::Loop),
        Err(e) => {
            let e = if e == InstallError::Invalid {
                InstallError::BadAlias
            } else {
                e
            };
            changes.push(Change::failed(e, name, Some(info.name.clone())));
            Err(e)
        }
    }
}

/// systemd's `install_info_symlink_alias()`.
fn symlink_aliases(
    lp: &LookupPaths,
    info: &InstallInfo,
    config: &Path,
    force: bool,
    changes: &mut Vec<Change>,
) -> Result<usize, InstallError> {
    let mut r: Result<usize, InstallError> = Ok(0);
    let path = info.path.clone().unwrap_or_default();
    for s in &info.aliases {
        let dst = match install_printf(lp, info, s) {
            Ok(d) => d,
            Err(e) => {
                changes.push(Change::failed(e, s, None));
                if r.is_ok() {
                    r = Err(e);
                }
                continue;
            }
        };
        let updated = match verify_alias(info, &dst, changes) {
            Ok(u) => u,
            Err(InstallError::Loop) => continue,
            Err(e) => {
                if r.is_ok() {
                    r = Err(e);
                }
                continue;
            }
        };
        let alias_path = config.join(updated.as_deref().unwrap_or(&dst));
        let q = create_symlink(lp, &path, &alias_path, force, changes).map(|()| 1);
        if r.is_ok() {
            r = q;
        }
    }
    r
}

/// systemd's `install_info_symlink_wants()`: one link per entry of `list`
/// in `<entry><suffix>`. Links here always replace what is in the way.
fn symlink_wants(
    lp: &LookupPaths,
    info: &InstallInfo,
    config: &Path,
    list: &[String],
    suffix: &str,
    presets: bool,
    changes: &mut Vec<Change>,
) -> Result<usize, InstallError> {
    if list.is_empty() {
        return Ok(0);
    }
    let me = UnitName::parse(&info.name).map_err(|_| InstallError::Invalid)?;
    let mut templates_only = false;
    let n = if !me.is_template() {
        info.name.clone()
    } else if let Some(d) = &info.default_instance {
        // A template with DefaultInstance= links as that instance.
        let inst = me.with_instance(d).map_err(|_| InstallError::Invalid)?;
        let mut instance = InstallInfo::named(inst.as_str());
        discover::search(lp, &mut instance, Flags::FOLLOW)?;
        if instance.mode == Some(Mode::Masked) {
            changes.push(Change::failed(
                InstallError::Masked,
                &instance.path_string(),
                None,
            ));
            return Err(InstallError::Masked);
        }
        instance.name
    } else {
        // A template without an instance may only be wanted by templates
        // and instances, which give it theirs.
        templates_only = true;
        info.name.clone()
    };
    let path = info.path.clone().unwrap_or_default();
    let mut r: Result<usize, InstallError> = Ok(0);
    for s in list {
        let dst = match install_printf(lp, info, s) {
            Ok(d) => d,
            Err(e) => {
                changes.push(Change::failed(e, s, None));
                if r.is_ok() {
                    r = Err(e);
                }
                continue;
            }
        };
        let parsed = UnitName::parse(&dst);
        let valid = match &parsed {
            Ok(d) => !templates_only || !d.is_plain(),
            Err(_) => false,
        };
        if !valid {
            if presets {
                continue;
            }
            let e = if parsed.is_ok() {
                changes.push(Change::failed(
                    InstallError::NotTemplate,
                    &dst,
                    Some(n.clone()),
                ));
                InstallError::NotTemplate
            } else {
                changes.push(Change::failed(InstallError::BadName, &dst, None));
                InstallError::BadName
            };
            if r.is_ok() {
                r = Err(e);
            }
            continue;
        }
        let link = config.join(format!("{dst}{suffix}{n}"));
        let q = create_symlink(lp, &path, &link, true, changes).map(|()| 1);
        if (q.is_err() && r.is_ok()) || r == Ok(0) {
            r = q;
        }
        if discover::unit_file_exists(lp, &dst) == Ok(false) {
            changes.push(Change::DestinationNotPresent {
                unit: dst,
                source: path.clone(),
            });
        }
    }
    r
}

/// `add-wants`/`add-requires TARGET UNIT...` (systemd's
/// `unit_file_add_dependency()`): links each unit into `TARGET.wants/`
/// (`.requires/` with `requires`) as if its `[Install]` said so, whatever
/// it says.
pub fn add_dependency(
    lp: &LookupPaths,
    names: &[String],
    target: &str,
    requires: bool,
    opts: Options,
) -> Outcome {
    outcome(|changes, warnings| {
        if UnitName::parse(target).is_err() {
            changes.push(Change::failed(InstallError::BadName, target, None));
            return Err(InstallError::BadName);
        }
        let config = lp.config_path(opts.runtime)?.to_path_buf();
        let mut ctx = Context::new(lp);
        let t = ctx.discover_and_check(target, Flags::FOLLOW, changes)?;
        let target_name = ctx.infos[t].name.clone();
        for n in names {
            let i = ctx.discover_and_check(n, Flags::FOLLOW, changes)?;
            let info = &mut ctx.infos[i];
            if requires {
                info.required_by = vec![target_name.clone()];
            } else {
                info.wanted_by = vec![target_name.clone()];
            }
        }
        let r = context_apply(&mut ctx, &config, opts.force, false, changes);
        warnings.append(&mut ctx.warnings);
        r
    })
}

/// `link PATH...` (systemd's `unit_file_link()`): a unit file outside the
/// search path linked into the configuration directory under its name; a
/// file already in a search directory is left as it is.
pub fn link(lp: &LookupPaths, files: &[String], opts: Options) -> Outcome {
    outcome(|changes, _| {
        let config = lp.config_path(opts.runtime)?.to_path_buf();
        let mut todo: Vec<PathBuf> = Vec::new();
        for f in files {
            let file = Path::new(f);
            let fail = |changes: &mut Vec<Change>, e: InstallError| {
                changes.push(Change::failed(e, f, None));
                Err(e)
            };
            if !file.is_absolute() {
                return fail(changes, InstallError::Invalid);
            }
            let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
                return fail(changes, InstallError::BadName);
            };
            if UnitName::parse(name).is_err() {
                return fail(changes, InstallError::BadName);
            }
            let full = lp.prefix_root(file);
            match std::fs::symlink_metadata(&full) {
                Err(e) => return fail(changes, InstallError::from_io(&e)),
                Ok(m) if m.is_dir() => return fail(changes, InstallError::IsDirectory),
                Ok(m) if !m.is_file() => return fail(changes, InstallError::NotRegular),
                Ok(_) => {}
            }
            // As systemd compares them: the path as given against the
            // search path, which has the root in front (so that with
            // --root a file of the tree's own search path is linked too).
            if lp.in_search_path(file) {
                continue;
            }
            if lp.search_path.iter().any(|d| file.starts_with(d)) {
                return fail(changes, InstallError::UnderHierarchy);
            }
            if !todo.iter().any(|t| t == file) {
                todo.push(file.to_path_buf());
            }
        }
        let mut r = Ok(0);
        for file in todo {
            let name = file.file_name().unwrap_or_default();
            let q = create_symlink(lp, &file, &config.join(name), opts.force, changes);
            if let (Err(e), Ok(_)) = (q, &r) {
                r = Err(e);
            }
        }
        r
    })
}

/// `revert UNIT...` (systemd's `unit_file_revert()`): a unit put back to
/// its vendor state. The drop-in directories an administrator added
/// (`/etc`, `/run`, the control and transient directories) go; where a
/// vendor file exists (below `/usr` or `/lib`, or generated), the copies
/// and masks of it in `/etc` and `/run` go too; links that led to what was
/// removed go with it.
pub fn revert(lp: &LookupPaths, names: &[String]) -> Outcome {
    outcome(|changes, _| {
        let mut todo: Vec<PathBuf> = Vec::new();
        let push = |todo: &mut Vec<PathBuf>, p: PathBuf| {
            if !todo.contains(&p) {
                todo.push(p);
            }
        };
        let stat = |p: &Path, changes: &mut Vec<Change>| match std::fs::symlink_metadata(p) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                let e = InstallError::from_io(&e);
                changes.push(Change::failed(e, &p.display().to_string(), None));
                Err(e)
            }
        };
        for name in names {
            if UnitName::parse(name).is_err() {
                return Err(InstallError::Invalid);
            }
            let mut has_vendor = false;
            for dir in &lp.search_path {
                let path = dir.join(name);
                if stat(&path, changes)?.is_some_and(|m| m.is_file()) && lp.is_vendor(&path) {
                    has_vendor = true;
                }
                let dropin = PathBuf::from(format!("{}.d", path.display()));
                if stat(&dropin, changes)?.is_some_and(|m| m.is_dir())
                    && dropin.parent().is_some_and(|d| lp.is_admin_dir(d))
                {
                    push(&mut todo, dropin);
                }
            }
            if !has_vendor {
                continue;
            }
            for dir in &lp.search_path {
                let path = dir.join(name);
                if stat(&path, changes)?.is_some_and(|m| m.is_file() || m.is_symlink())
                    && lp.is_config_dir(dir)
                {
                    push(&mut todo, path);
                }
            }
        }
        let mut r = Ok(0);
        let mut marks = Marks::new();
        for path in todo {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(&path)
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            inside.sort();
            let removed = if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed
                && e.kind() != std::io::ErrorKind::NotFound
            {
                if r.is_ok() {
                    r = Err(InstallError::from_io(&e));
                }
                continue;
            }
            for p in inside {
                changes.push(Change::Unlink { path: p });
            }
            changes.push(Change::Unlink { path: path.clone() });
            marks.insert(lp.skip_root(&path).display().to_string());
        }
        let mut configs: Vec<PathBuf> = lp.runtime_config.iter().cloned().collect();
        configs.push(lp.persistent_config.clone());
        for config in configs {
            let q = remove_marked_symlinks(lp, &mut marks, &config, false, changes);
            if r.is_ok() {
                r = q.map(|()| 0);
            }
        }
        r
    })
}

/// Disables units (by name; a path stands for its file name).
pub fn disable(lp: &LookupPaths, names: &[String], opts: Options) -> Outcome {
    outcome(|changes, warnings| {
        let config = lp.config_path(opts.runtime)?.to_path_buf();
        do_disable(lp, &config, names, changes, warnings)
    })
}

fn do_disable(
    lp: &LookupPaths,
    config: &Path,
    names: &[String],
    changes: &mut Vec<Change>,
    warnings: &mut Vec<String>,
) -> Result<usize, InstallError> {
    let mut ctx = Context::new(lp);
    for n in names {
        if UnitName::parse(n).is_err() {
            changes.push(Change::failed(InstallError::BadName, n, None));
            return Err(InstallError::BadName);
        }
        if let Err(e) = ctx.add(Some(n), None, false) {
            changes.push(Change::failed(e, n, None));
            return Err(e);
        }
    }
    let mut marks = Marks::new();
    mark_for_removal(&mut ctx, &mut marks, changes);
    warnings.append(&mut ctx.warnings);
    remove_marked_symlinks(lp, &mut marks, config, false, changes)?;
    Ok(0)
}

/// systemd's `install_context_mark_for_removal()`: every unit of the
/// context (and its `Also=` units) marked by name. Units that cannot be
/// found are reported and still marked; masked ones are left alone.
fn mark_for_removal(ctx: &mut Context<'_>, marks: &mut Marks, changes: &mut Vec<Change>) {
    while let Some(i) = ctx.next_unprocessed() {
        let r = ctx.traverse(i, Flags::LOAD_FOLLOW);
        let info = &ctx.infos[i];
        let what = info
            .path
            .as_ref()
            .map_or_else(|| info.name.clone(), |p| p.display().to_string());
        match r {
            Err(InstallError::Dangling) => changes.push(Change::IsDangling { path: what }),
            Err(InstallError::NotFound) => {
                if !info.auxiliary {
                    changes.push(Change::failed(InstallError::NotFound, &what, None));
                }
            }
            Err(e) => changes.push(Change::failed(e, &what, None)),
            Ok(_) if info.mode == Some(Mode::Masked) => {
                changes.push(Change::IsMasked { path: what });
                continue;
            }
            Ok(_) if info.mode != Some(Mode::Regular) => continue,
            Ok(_) => {}
        }
        marks.insert(info.name.clone());
    }
}

/// Disables, then enables units again (links reset to what `[Install]`
/// says now). An alias is enabled through the file it leads to.
pub fn reenable(lp: &LookupPaths, names: &[String], opts: Options) -> Outcome {
    outcome(|changes, warnings| {
        let config = lp.config_path(opts.runtime)?.to_path_buf();
        let mut base_names = Vec::new();
        let mut files = Vec::new();
        for a in names {
            let n = Path::new(a)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(a)
                .to_owned();
            let mut file = a.clone();
            let is_instance = UnitName::parse(a).is_ok_and(|u| u.is_instance());
            if !a.contains('/') && !is_instance && lp.root.is_some() {
                let mut ctx = Context::new(lp);
                let mut ignored = Vec::new();
                if let Ok(i) = ctx.discover(&n, Flags::LOAD_FOLLOW, &mut ignored)
                    && let Some(p) = &ctx.infos[i].path
                {
                    file = lp.skip_root(p).display().to_string();
                }
                warnings.append(&mut ctx.warnings);
            }
            base_names.push(n);
            files.push(file);
        }
        do_disable(lp, &config, &base_names, changes, warnings)?;
        do_enable(lp, &config, &files, opts, changes, warnings)
    })
}

/// Masks units: links each name to `/dev/null` in the configuration
/// directory.
pub fn mask(lp: &LookupPaths, names: &[String], opts: Options) -> Outcome {
    outcome(|changes, _| {
        let config = lp.config_path(opts.runtime)?.to_path_buf();
        let mut r = Ok(0);
        for n in names {
            if UnitName::parse(n).is_err() {
                if r.is_ok() {
                    r = Err(InstallError::Invalid);
                }
                continue;
            }
            let q = create_symlink(
                lp,
                Path::new("/dev/null"),
                &config.join(n),
                opts.force,
                changes,
            );
            if let (Err(e), true) = (q, r.is_ok()) {
                r = Err(e);
            }
        }
        r
    })
}

/// `systemctl set-default NAME`: links `default.target` in the
/// configuration directory to the file of `NAME` (replacing the link there),
/// as systemd's `unit_file_set_default()`.
pub fn set_default(lp: &LookupPaths, name: &str) -> Outcome {
    outcome(|changes, _| {
        let parsed = UnitName::parse(name).map_err(|_| InstallError::Invalid)?;
        if parsed.as_str() == "default.target"
            || parsed.unit_type() != crate::unit::name::UnitType::Target
        {
            return Err(InstallError::Invalid);
        }
        let mut info = discover::InstallInfo::named(parsed.as_str());
        discover::search(lp, &mut info, discover::Flags::FOLLOW)?;
        if info.mode == Some(discover::Mode::Masked) {
            return Err(InstallError::Masked);
        }
        let path = info.path.clone().ok_or(InstallError::NotFound)?;
        let config = lp.config_path(false)?.to_path_buf();
        create_symlink(lp, &path, &config.join("default.target"), true, changes)?;
        Ok(1)
    })
}

/// `systemctl get-default`: the unit `default.target` leads to on the
/// search path (its own name when it is a file).
pub fn get_default(lp: &LookupPaths) -> Result<String, InstallError> {
    let mut info = discover::InstallInfo::named("default.target");
    discover::search(lp, &mut info, discover::Flags::FOLLOW)?;
    // Follow the links (inside the root) to the unit file's own name.
    let mut path = info.path.ok_or(InstallError::NotFound)?;
    let mut name = path.file_name().map(|f| f.to_string_lossy().into_owned());
    for _ in 0..16 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        name = target.file_name().map(|f| f.to_string_lossy().into_owned());
        path = if target.is_absolute() {
            paths::under(lp.root.as_deref(), &target)
        } else {
            path.parent().map_or(target.clone(), |p| p.join(&target))
        };
    }
    Ok(name.unwrap_or_else(|| "default.target".to_string()))
}

/// Unmasks units: removes their `/dev/null` links from the configuration
/// directory, and links that led to them.
pub fn unmask(lp: &LookupPaths, names: &[String], opts: Options) -> Outcome {
    outcome(|changes, _| {
        let config = lp.config_path(opts.runtime)?.to_path_buf();
        let mut todo: Vec<&String> = Vec::new();
        for n in names {
            if UnitName::parse(n).is_err() {
                return Err(InstallError::Invalid);
            }
            let path = config.join(n);
            match std::fs::metadata(&path) {
                Ok(m) if discover::null_or_empty(&m) => {
                    if !todo.contains(&n) {
                        todo.push(n);
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(InstallError::from_io(&e)),
            }
        }
        let mut r = Ok(0);
        let mut marks = Marks::new();
        for n in todo {
            let path = config.join(n);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    let e = InstallError::from_io(&e);
                    changes.push(Change::failed(e, &path.display().to_string(), None));
                    if r.is_ok() {
                        r = Err(e);
                    }
                }
                continue;
            }
            changes.push(Change::Unlink { path: path.clone() });
            marks.insert(lp.skip_root(&path).display().to_string());
        }
        let q = remove_marked_symlinks(lp, &mut marks, &config, false, changes).map(|()| 0);
        if r.is_ok() {
            r = q;
        }
        r
    })
}

/// Every unit file of the search path, once per name, in systemctl's
/// order, with its state, as systemd's
/// `unit_file_get_list()` lists them for `systemctl list-unit-files`.
/// `patterns` (shell globs), when given, keep the names one of them
/// matches.
pub fn unit_files(
    lp: &LookupPaths,
    patterns: &[String],
) -> Vec<(String, Result<UnitFileState, InstallError>)> {
    let mut names: Vec<String> = Vec::new();
    for dir in &lp.search_path {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Unit files and links to them; `.wants/` and drop-in
            // directories are not.
            if entry.path().is_dir() || UnitName::parse(&name).is_err() {
                continue;
            }
            if !patterns.is_empty()
                && !patterns
                    .iter()
                    .any(|p| crate::service::condition::wildcard(p.as_bytes(), name.as_bytes()))
            {
                continue;
            }
            names.push(name);
        }
    }
    // systemctl's order: by type suffix, then by name ignoring case (the
    // name itself last, so that a name found in two directories is
    // listed once).
    names.sort_by_cached_key(|n| {
        let suffix = n.rsplit_once('.').map_or("", |(_, s)| s).to_string();
        (suffix, n.to_ascii_lowercase(), n.clone())
    });
    names.dedup();
    names
        .into_iter()
        .map(|n| {
            let state = unit_file_state(lp, &n);
            (n, state)
        })
        .collect()
}

/// The state `is-enabled` prints for `name`.
pub fn unit_file_state(lp: &LookupPaths, name: &str) -> Result<UnitFileState, InstallError> {
    unit_file_state_warn(lp, name, &mut Vec::new())
}

/// [`unit_file_state`], with what reading the unit files had to ignore
/// added to `warnings`.
pub fn unit_file_state_warn(
    lp: &LookupPaths,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<UnitFileState, InstallError> {
    if UnitName::parse(name).is_err() {
        return Err(InstallError::Invalid);
    }
    let mut ctx = Context::new(lp);
    let mut ignored = Vec::new();
    let found = ctx.discover(name, Flags::LOAD_FOLLOW, &mut ignored);
    warnings.append(&mut ctx.warnings);
    let i = found?;
    let info = &ctx.infos[i];
    let path = info.path.clone().unwrap_or_default();
    match info.mode {
        Some(Mode::Masked) => {
            let runtime = path.parent().is_some_and(|d| lp.is_runtime_dir(d));
            Ok(if runtime {
                UnitFileState::MaskedRuntime
            } else {
                UnitFileState::Masked
            })
        }
        Some(Mode::Regular) => {
            let base = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let instance = UnitName::parse(&info.name).is_ok_and(|n| n.is_instance());
            if name != base && !instance {
                return Ok(UnitFileState::Alias);
            }
            if lp.is_generator(&path) {
                return Ok(UnitFileState::Generated);
            }
            if lp.is_transient(&path) {
                return Ok(UnitFileState::Transient);
            }
            if let Some(s) = find_symlinks_in_scope(lp, info, true)? {
                return Ok(s);
            }
            if find_symlinks_in_scope(lp, info, false)?.is_some() {
                return Ok(UnitFileState::Indirect);
            }
            Ok(if info.has_rules() {
                UnitFileState::Disabled
            } else if info.has_also() {
                UnitFileState::Indirect
            } else {
                UnitFileState::Static
            })
        }
        _ => Err(InstallError::Invalid),
    }
}
