//! Turns the files of one unit into the typed [`Unit`]: the `RawUnit` ->
//! `Unit` step of the engine.
//!
//! The files come from [`super::loader`] (fragment first, then drop-ins in
//! application order), each goes through [`super::lexer`], and every
//! assignment is parsed by the grammar its [`Directive`] names. The rules are
//! systemd's: the last assignment of a single setting wins, lists accumulate,
//! an empty assignment resets (except dependency lists), an invalid value is a
//! warning and leaves the previous value, a broken command line or section
//! header fails the unit, and the load-time refusals of `socket.c` and
//! `service.c` (`Accept=yes` on a datagram socket and so on) are made after all
//! files are read. `X-` sections and keys are kept for plugins.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value as Json, json};

use crate::stamp::FileStamp;

use super::directive::{self, Directive, Grammar, Kind, ListenType, Support};
use super::lexer;
use super::loader::{self, SearchPath, UnitIndex, UnitSources};
use super::name::{UnitName, UnitType};
use super::specifier::{self, SpecifierContext, SpecifierTable};
use super::value::address::SocketAddress;
use super::value::exec::{self, ExecCommand};
use super::value::{
    bool as vbool, env, exit_status, int, mode, process, signal, size, time, words,
};
use super::{Diagnostic, Severity};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub path: PathBuf,
    pub line: u32,
}

/// What a `Listen*=` line describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenTarget {
    /// A socket address (stream, datagram, sequential packet).
    Address(SocketAddress),
    /// A file-system path (FIFO, special file, USB function directory).
    Path(PathBuf),
    /// `ListenNetlink=FAMILY [GROUP]`.
    Netlink { family: String, group: u32 },
    /// `ListenMessageQueue=/name`.
    MessageQueue(String),
}

/// One listener of a socket unit, in the order of the `Listen*=` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub kind: ListenType,
    pub target: ListenTarget,
}

impl Listen {
    /// Whether `Accept=yes` can accept on this listener.
    pub fn can_accept(&self) -> bool {
        matches!(
            (&self.kind, &self.target),
            (ListenType::Stream, _)
                | (
                    ListenType::SequentialPacket,
                    ListenTarget::Address(
                        SocketAddress::Unix(_)
                            | SocketAddress::Abstract(_)
                            | SocketAddress::Vsock { .. }
                    ),
                )
        )
    }

    /// The path of the file-system node this listener creates, if any.
    pub fn node_path(&self) -> Option<&Path> {
        match &self.target {
            ListenTarget::Address(SocketAddress::Unix(p)) => Some(p),
            ListenTarget::Path(p) if self.kind == ListenType::Fifo => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for ListenTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenTarget::Address(a) => write!(f, "{a}"),
            ListenTarget::Path(p) => write!(f, "{}", p.display()),
            ListenTarget::Netlink { family, group } => write!(f, "{family} {group}"),
            ListenTarget::MessageQueue(q) => f.write_str(q),
        }
    }
}

/// A typed setting value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Str(String),
    Path(PathBuf),
    /// Microseconds; `u64::MAX` is infinity.
    Usec(u64),
    U64(u64),
    Int(i64),
    Mode(u32),
    Size(u64),
    Signal(i32),
    /// One of the words of a [`Grammar::Enum`].
    Word(String),
    Listen(Listen),
    Exec(ExecCommand),
    Env(String, String),
    EnvFile {
        path: PathBuf,
        optional: bool,
    },
    Unit(String),
    ExitStatus {
        codes: Vec<u8>,
        signals: Vec<i32>,
    },
    /// Soft and hard limit; `u64::MAX` is infinity.
    Limit {
        soft: u64,
        hard: u64,
    },
    Condition {
        trigger: bool,
        negate: bool,
        argument: String,
    },
    WorkingDirectory {
        path: String,
        optional: bool,
    },
    /// `StandardInput=`/`StandardOutput=`/`StandardError=` in systemd's words (`null`, `file:/x`, ...).
    Stdio(String),
    Raw(String),
}

/// A unit's settings by section name and directive key.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    map: BTreeMap<(String, &'static str), Setting>,
    /// A bit for each `(section, key)` set ([`Settings::bit`]): flint asks
    /// a unit for a hundred-odd keys per start, of which it sets a dozen,
    /// and a key whose bit is clear needs no search of the map (a bit
    /// stays set after a removal, which costs a search, never a value).
    present: u128,
}

impl Settings {
    /// Which of the 128 bits of [`Settings::present`] stands for the key.
    /// A few bytes and the lengths, mixed by one multiplication: a
    /// lookup asks for this about a hundred times per start, and hashing
    /// whole names cost more than the lookups it saved.
    #[inline]
    fn bit(section: &str, key: &str) -> u128 {
        let (s, k) = (section.as_bytes(), key.as_bytes());
        let at = |b: &[u8], i: usize| u64::from(b.get(i).copied().unwrap_or(0));
        let n = k.len();
        let mixed = (n as u64)
            | at(k, 0) << 8
            | at(k, 1) << 16
            | at(k, n / 2) << 24
            | at(k, n.wrapping_sub(2)) << 32
            | at(k, n.wrapping_sub(1)) << 40
            | (s.len() as u64) << 48
            | at(s, 0) << 56;
        1 << (mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 57)
    }

    /// Inlined, so that a lookup by literal names tests a bit computed at
    /// compile time, and the map is searched only for keys that may be set.
    #[inline]
    pub fn get(&self, section: &str, key: &str) -> Option<&Setting> {
        if self.present & Settings::bit(section, key) == 0 {
            return None;
        }
        self.find(section, key)
    }

    #[inline(never)]
    fn find(&self, section: &str, key: &str) -> Option<&Setting> {
        self.map.get(&(section, key) as &dyn SettingKey)
    }

    pub fn insert(&mut self, at: (String, &'static str), setting: Setting) -> Option<Setting> {
        self.present |= Settings::bit(&at.0, at.1);
        self.map.insert(at, setting)
    }

    pub fn remove(&mut self, at: &(String, &'static str)) -> Option<Setting> {
        self.map.remove(at)
    }

    /// The setting at `at`, made empty first when there is none.
    pub fn entry(
        &mut self,
        at: (String, &'static str),
        directive: &'static Directive,
    ) -> &mut Setting {
        self.present |= Settings::bit(&at.0, at.1);
        self.map.entry(at).or_insert_with(|| Setting {
            directive,
            entries: Vec::new(),
        })
    }

    /// How many settings there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every setting, by section then key.
    pub fn iter(&self) -> std::collections::btree_map::Iter<'_, (String, &'static str), Setting> {
        self.map.iter()
    }
}

impl<'a> IntoIterator for &'a Settings {
    type Item = (&'a (String, &'static str), &'a Setting);
    type IntoIter = std::collections::btree_map::Iter<'a, (String, &'static str), Setting>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

/// A key of [`Settings`] as borrowed strings, so that a lookup builds no
/// `String`: `(section, key)` in the order of the map's own keys.
trait SettingKey {
    fn section(&self) -> &str;
    fn key(&self) -> &str;
}

impl SettingKey for (String, &'static str) {
    fn section(&self) -> &str {
        &self.0
    }
    fn key(&self) -> &str {
        self.1
    }
}

impl SettingKey for (&str, &str) {
    fn section(&self) -> &str {
        self.0
    }
    fn key(&self) -> &str {
        self.1
    }
}

impl<'a> std::borrow::Borrow<dyn SettingKey + 'a> for (String, &'static str) {
    fn borrow(&self) -> &(dyn SettingKey + 'a) {
        self
    }
}

impl PartialEq for dyn SettingKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.section() == other.section() && self.key() == other.key()
    }
}

impl Eq for dyn SettingKey + '_ {}

impl PartialOrd for dyn SettingKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn SettingKey + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.section(), self.key()).cmp(&(other.section(), other.key()))
    }
}

/// One directive's effective value(s).
#[derive(Debug, Clone)]
pub struct Setting {
    pub directive: &'static Directive,
    /// Single settings hold one entry; lists hold one per item.
    pub entries: Vec<(Value, Origin)>,
}

/// An assignment in an `X-` section or with an `X-` key, kept for plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    pub section: String,
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

/// systemd's load states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadState {
    Loaded,
    NotFound,
    Masked,
    /// A setting makes the unit unusable (systemd's `bad-setting`).
    BadSetting,
    /// The file could not be read or parsed.
    Error,
}

impl LoadState {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadState::Loaded => "loaded",
            LoadState::NotFound => "not-found",
            LoadState::Masked => "masked",
            LoadState::BadSetting => "bad-setting",
            LoadState::Error => "error",
        }
    }

    /// Why unit `id` in this state cannot be used, in systemd's words (its
    /// bus error's message); `None` for a loaded unit.
    pub fn reason(self, id: &str) -> Option<String> {
        Some(match self {
            LoadState::Loaded => return None,
            LoadState::NotFound => format!("Unit {id} not found."),
            LoadState::Masked => format!("Unit {id} is masked."),
            LoadState::BadSetting => format!("Unit {id} has a bad unit file setting."),
            LoadState::Error => format!("Unit {id} failed to load properly."),
        })
    }
}

/// A loaded unit: what systemd's manager holds after `unit_load()`.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The name that was asked for.
    pub name: UnitName,
    /// The canonical name (after alias resolution).
    pub id: UnitName,
    pub load_state: LoadState,
    pub fragment: Option<PathBuf>,
    pub dropins: Vec<PathBuf>,
    pub aliases: Vec<UnitName>,
    pub wants: Vec<UnitName>,
    pub requires: Vec<UnitName>,
    /// Settings keyed by section name and directive key; shared by the
    /// instances of a template that parse alike (see `instances`).
    pub settings: Arc<Settings>,
    pub extras: Vec<Extra>,
    pub diagnostics: Vec<Diagnostic>,
    /// When it was read: a file of it changed after that asks for a
    /// daemon-reload ([`Unit::needs_reload`]).
    pub loaded_at: std::time::SystemTime,
}

/// How a unit is named on the command line of `flint check`/`show`.
#[derive(Debug, Clone)]
pub enum UnitRef {
    Name(UnitName),
    File(PathBuf),
}

impl Unit {
    fn empty(name: UnitName, sources: Option<&UnitSources>) -> Unit {
        Unit {
            id: sources.map_or_else(|| name.clone(), |s| s.id.clone()),
            name,
            load_state: LoadState::Loaded,
            fragment: sources.and_then(|s| s.fragment.clone()),
            dropins: sources.map(|s| s.dropins.clone()).unwrap_or_default(),
            aliases: sources.map(|s| s.aliases.clone()).unwrap_or_default(),
            wants: sources.map(|s| s.wants.clone()).unwrap_or_default(),
            requires: sources.map(|s| s.requires.clone()).unwrap_or_default(),
            settings: Arc::default(),
            extras: Vec::new(),
            diagnostics: Vec::new(),
            loaded_at: std::time::SystemTime::now(),
        }
    }

    /// systemd's `NeedDaemonReload`: a file it was read from changed or
    /// went since, or its drop-ins on disk are others now.
    pub fn needs_reload(&self, search: &SearchPath) -> bool {
        self.needs_reload_with(&|name| crate::unit::loader::resolve(search, name))
    }

    /// [`Unit::needs_reload`], finding the unit's files on disk now with
    /// `resolve` (an index of the search path kept while it is unchanged).
    pub fn needs_reload_with(
        &self,
        resolve: &dyn Fn(
            &UnitName,
        ) -> Result<
            crate::unit::loader::UnitSources,
            crate::unit::loader::LoadError,
        >,
    ) -> bool {
        let changed = self.fragment.iter().chain(&self.dropins).any(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > self.loaded_at)
                || !p.exists()
        });
        changed
            || resolve(&self.name)
                .is_ok_and(|now| now.fragment != self.fragment || now.dropins != self.dropins)
    }

    /// Whether the unit can be started.
    pub fn is_loaded(&self) -> bool {
        self.load_state == LoadState::Loaded
    }

    /// The unit's type section name (`Service`, `Socket`, ...).
    pub fn type_section(&self) -> &'static str {
        directive::type_section(self.id.unit_type()).unwrap_or("Unit")
    }

    /// The entries of `key` in `section`; empty when unset.
    #[inline]
    pub fn entries(&self, section: &str, key: &str) -> &[(Value, Origin)] {
        self.settings
            .get(section, key)
            .map_or(&[], |v| v.entries.as_slice())
    }

    /// The settings to change (copied first when shared).
    fn settings_mut(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }

    /// The effective value of a single setting.
    #[inline]
    pub fn get(&self, section: &str, key: &str) -> Option<&Value> {
        self.entries(section, key).last().map(|(v, _)| v)
    }

    #[inline]
    pub fn get_bool(&self, section: &str, key: &str) -> Option<bool> {
        match self.get(section, key) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    #[inline]
    pub fn get_usec(&self, section: &str, key: &str) -> Option<u64> {
        match self.get(section, key) {
            Some(Value::Usec(u)) => Some(*u),
            _ => None,
        }
    }

    #[inline]
    pub fn get_u64(&self, section: &str, key: &str) -> Option<u64> {
        match self.get(section, key) {
            Some(Value::U64(u) | Value::Size(u)) => Some(*u),
            _ => None,
        }
    }

    #[inline]
    pub fn get_str(&self, section: &str, key: &str) -> Option<&str> {
        match self.get(section, key) {
            Some(
                Value::Str(s) | Value::Word(s) | Value::Unit(s) | Value::Raw(s) | Value::Stdio(s),
            ) => Some(s),
            _ => None,
        }
    }

    /// A setting that names a path (`SourcePath=`, `PIDFile=`, ...).
    pub fn get_path(&self, section: &str, key: &str) -> Option<&std::path::Path> {
        match self.get(section, key) {
            Some(Value::Path(p)) => Some(p),
            _ => None,
        }
    }

    /// The text of every assignment of a list setting kept as text
    /// (`Str` or `Raw` values), in order.
    pub fn strings(&self, section: &str, key: &str) -> Vec<&str> {
        self.entries(section, key)
            .iter()
            .filter_map(|(v, _)| match v {
                Value::Str(s) | Value::Raw(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The listeners of a socket unit, in order.
    pub fn listens(&self) -> impl Iterator<Item = &Listen> {
        self.entries("Socket", "Listen")
            .iter()
            .filter_map(|(v, _)| match v {
                Value::Listen(l) => Some(l),
                _ => None,
            })
    }

    /// The commands of an `Exec*=` setting, in order.
    pub fn commands(&self, section: &str, key: &str) -> Vec<&ExecCommand> {
        self.entries(section, key)
            .iter()
            .filter_map(|(v, _)| match v {
                Value::Exec(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// Assignments of one `X-` section (or `X-` keys of a regular section).
    pub fn extras_in<'a>(&'a self, section: &'a str) -> impl Iterator<Item = &'a Extra> + 'a {
        self.extras.iter().filter(move |e| e.section == section)
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    fn warn(&mut self, origin: &Origin, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::warning(&origin.path, origin.line, message));
    }

    fn fail(&mut self, state: LoadState, path: &Path, line: u32, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(path, line, message));
        if self.load_state == LoadState::Loaded {
            self.load_state = state;
        }
    }
}

/// Whether `key` labels processes for a security module this kernel does
/// not run: systemd skips the setting there (`mac_apparmor_use()`,
/// `mac_selinux_use()`, `mac_smack_use()`), so flint, which applies none of
/// them, does what systemd does (Debian's `tor@.service` has
/// `AppArmorProfile=-system_tor`).
fn security_module_absent(key: &str) -> bool {
    let path = match key {
        "AppArmorProfile" => {
            return std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .map_or(true, |v| !v.trim().eq_ignore_ascii_case("y"));
        }
        "SELinuxContext" | "SELinuxContextFromNet" => "/sys/fs/selinux/enforce",
        "SmackProcessLabel" | "SmackLabel" | "SmackLabelIPIn" | "SmackLabelIPOut" => {
            "/sys/fs/smackfs"
        }
        _ => return false,
    };
    !std::path::Path::new(path).exists()
}

/// Loads a unit by name from the search path. This scans the search path;
/// to load many units, build a [`UnitIndex`] once and use [`load_indexed`].
pub fn load(search: &SearchPath, name: &UnitName) -> Unit {
    load_indexed(&UnitIndex::build(search), name)
}

/// Loads a unit by name through an index of the search path built once.
pub fn load_indexed(index: &UnitIndex, name: &UnitName) -> Unit {
    match index.resolve(name) {
        Ok(sources) => load_sources(index.search_path(), name.clone(), &sources),
        Err(e) => not_found(name, &e.to_string()),
    }
}

/// Loads an instance for a connection, as [`load_indexed`] does but
/// trusting a look at its fragment of less than `within` ago
/// ([`UnitIndex::resolve_recent`]).
pub fn load_instance(index: &UnitIndex, name: &UnitName, within: std::time::Duration) -> Unit {
    match index.resolve_recent(name, within) {
        Ok(sources) => load_sources(index.search_path(), name.clone(), &sources),
        Err(e) => not_found(name, &e.to_string()),
    }
}

/// Loads a unit given as a file (as `systemd-analyze verify ./foo.service`):
/// its drop-ins still come from the search path.
pub fn load_file(search: &SearchPath, path: &Path) -> Result<Unit, loader::LoadError> {
    let sources = loader::resolve_file(search, path)?;
    Ok(load_sources(search, sources.name.clone(), &sources))
}

/// Loads a unit given either way.
pub fn load_ref(search: &SearchPath, unit: &UnitRef) -> Result<Unit, String> {
    match unit {
        UnitRef::Name(n) => Ok(load(search, n)),
        UnitRef::File(p) => load_file(search, p).map_err(|e| format!("{}: {e}", p.display())),
    }
}

fn not_found(name: &UnitName, why: &str) -> Unit {
    let mut unit = Unit::empty(name.clone(), None);
    unit.load_state = LoadState::NotFound;
    unit.diagnostics.push(Diagnostic::error(
        PathBuf::from(name.as_str()),
        0,
        format!("Unit {name} not found: {why}"),
    ));
    unit
}

/// A unit file or drop-in as the lexer leaves it (or its syntax error),
/// read and lexed again only when its [`FileStamp`] changed. Every
/// `Accept=yes` connection loads its instance from the same template: one
/// `statx` instead of open, read, close and lexing, and none when the
/// caller knows the stamp (the fragment, which [`UnitIndex::resolve`]
/// looked at). Files changed in the last second are always read. Bounded:
/// the cache is emptied when it holds more than 1024 files.
fn lexed_unit_file(
    path: &Path,
    known: Option<FileStamp>,
) -> std::io::Result<std::sync::Arc<Lexed>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, PoisonError};
    type Files = HashMap<PathBuf, (FileStamp, Arc<Lexed>)>;
    static CACHE: Mutex<Option<Files>> = Mutex::new(None);
    let stamp = match known {
        Some(stamp) => stamp,
        None => FileStamp::of(path)?,
    };
    {
        let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((then, lexed)) = cache.as_ref().and_then(|c| c.get(path))
            && *then == stamp
        {
            return Ok(lexed.clone());
        }
    }
    let bytes = std::fs::read(path)?;
    let lexed = Arc::new(lexer::parse(path, &bytes));
    if stamp.settled() {
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        let map = cache.get_or_insert_with(HashMap::new);
        if map.len() >= 1024 {
            map.clear();
        }
        map.insert(path.to_path_buf(), (stamp, lexed.clone()));
    }
    Ok(lexed)
}

/// What [`lexer::parse`] makes of a file.
type Lexed = Result<lexer::ParsedFile, Diagnostic>;

fn load_sources(search: &SearchPath, name: UnitName, sources: &UnitSources) -> Unit {
    let mut unit = Unit::empty(name, Some(sources));
    if sources.masked {
        unit.load_state = LoadState::Masked;
        return unit;
    }
    let Some(fragment) = sources.fragment.clone() else {
        unit.load_state = LoadState::NotFound;
        unit.diagnostics.push(Diagnostic::error(
            PathBuf::from(unit.name.as_str()),
            0,
            "Unit has no unit file",
        ));
        return unit;
    };
    let files: Vec<PathBuf> = std::iter::once(fragment.clone())
        .chain(sources.dropins.iter().cloned())
        .collect();
    let mut lexed_files = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let known = if i == 0 { sources.fragment_stamp } else { None };
        match lexed_unit_file(file, known) {
            Ok(l) => lexed_files.push(l),
            Err(e) => {
                unit.fail(
                    LoadState::Error,
                    file,
                    0,
                    format!("Failed to read unit file: {e}"),
                );
                return unit;
            }
        }
    }
    if unit.id.instance().is_some() && instances::reuse(&mut unit, search.user_mode, &lexed_files) {
        return unit;
    }
    let ctx = SpecifierContext::new(unit.id.clone(), Some(fragment), search.user_mode);
    let mut parser = Parser {
        unit: &mut unit,
        ctx: &ctx,
        unknown: Vec::new(),
        not_enforced: Vec::new(),
        foreign_type_noted: false,
    };
    for (file, lexed) in files.iter().zip(&lexed_files) {
        match lexed.as_ref() {
            Ok(parsed) => parser.apply_file(file, parsed),
            Err(diag) => {
                let (path, line) = (diag.path.clone(), diag.line);
                parser
                    .unit
                    .fail(LoadState::Error, &path, line, diag.message.clone());
                return unit;
            }
        }
    }
    let not_enforced = std::mem::take(&mut parser.not_enforced);
    drop(parser);
    if !not_enforced.is_empty() {
        let path = unit.fragment.clone().unwrap_or_default();
        unit.diagnostics.push(Diagnostic::new(
            path,
            0,
            Severity::Notice,
            format!("accepted, not enforced: {}", not_enforced.join(" ")),
        ));
    }
    validate(&mut unit);
    if unit.id.instance().is_some() && !ctx.instance_used() {
        instances::keep(&unit, search.user_mode, lexed_files);
    }
    unit
}

/// Instances of a template whose files expand no instance specifier parse
/// to the same settings: every `Accept=yes` connection loads one, so the
/// settings of the last one parsed are reused while its files (the same
/// lexed contents, [`lexed_unit_file`]) are unchanged. Bounded: emptied when
/// it holds more than 64 templates.
mod instances {
    use super::{Lexed, Unit};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, PoisonError};

    struct Parsed {
        files: Vec<Arc<Lexed>>,
        /// Its instance, which no diagnostic may name.
        unit: Unit,
    }

    type Templates = HashMap<(String, bool), Parsed>;
    static CACHE: Mutex<Option<Templates>> = Mutex::new(None);

    fn key(unit: &Unit, user_mode: bool) -> Option<(String, bool)> {
        Some((unit.id.template()?.as_str().to_owned(), user_mode))
    }

    fn same(a: &[Arc<Lexed>], b: &[Arc<Lexed>]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
    }

    /// Fills `unit` (names and sources set) with the settings parsed for
    /// another instance from the same `files`; whether there were any.
    pub(super) fn reuse(unit: &mut Unit, user_mode: bool, files: &[Arc<Lexed>]) -> bool {
        let Some(key) = key(unit, user_mode) else {
            return false;
        };
        let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(parsed) = cache.as_ref().and_then(|c| c.get(&key)) else {
            return false;
        };
        if !same(&parsed.files, files) {
            return false;
        }
        unit.load_state = parsed.unit.load_state;
        unit.settings.clone_from(&parsed.unit.settings);
        unit.extras.clone_from(&parsed.unit.extras);
        unit.diagnostics.clone_from(&parsed.unit.diagnostics);
        true
    }

    /// Keeps what `unit` parsed to from `files`, unless a message names its
    /// instance.
    pub(super) fn keep(unit: &Unit, user_mode: bool, files: Vec<Arc<Lexed>>) {
        let (Some(key), Some(instance)) = (key(unit, user_mode), unit.id.instance()) else {
            return;
        };
        if unit
            .diagnostics
            .iter()
            .any(|d| d.message.contains(instance))
        {
            return;
        }
        let mut kept = Unit::empty(unit.id.clone(), None);
        kept.load_state = unit.load_state;
        kept.settings.clone_from(&unit.settings);
        kept.extras.clone_from(&unit.extras);
        kept.diagnostics.clone_from(&unit.diagnostics);
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        let map = cache.get_or_insert_with(HashMap::new);
        if map.len() >= 64 && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, Parsed { files, unit: kept });
    }
}

struct Parser<'a> {
    unit: &'a mut Unit,
    ctx: &'a SpecifierContext,
    unknown: Vec<String>,
    not_enforced: Vec<String>,
    /// The notice that flint does not run this unit's type was given.
    foreign_type_noted: bool,
}

impl Parser<'_> {
    fn apply_file(&mut self, file: &Path, parsed: &lexer::ParsedFile) {
        self.unit
            .diagnostics
            .extend(parsed.warnings.iter().cloned());
        let type_section = self.unit.type_section();
        for (section, line) in &parsed.sections {
            let known = section == "Unit"
                || section == "Install"
                || section == type_section
                || section.starts_with("X-");
            if !known {
                self.unit.diagnostics.push(Diagnostic::warning(
                    file,
                    *line,
                    format!("Unknown section '{section}'. Ignoring."),
                ));
            }
        }
        for a in &parsed.assignments {
            let origin = Origin {
                path: file.to_path_buf(),
                line: a.line,
            };
            if a.section.starts_with("X-") || a.key.starts_with("X-") {
                self.unit.extras.push(Extra {
                    section: a.section.clone(),
                    key: a.key.clone(),
                    value: a.value.clone(),
                    origin,
                });
                continue;
            }
            if a.section != "Unit" && a.section != "Install" && a.section != type_section {
                continue; // warned once at the section header
            }
            if a.section == type_section
                && a.section != "Unit"
                && !matches!(
                    self.unit.id.unit_type(),
                    UnitType::Socket
                        | UnitType::Service
                        | UnitType::Slice
                        | UnitType::Timer
                        | UnitType::Path
                )
            {
                // A .path, .mount, ... unit: its own section is
                // systemd's to read; flint does not run such units (a
                // slice's resource settings it applies to the cgroup its
                // services nest in).
                if !self.foreign_type_noted {
                    self.foreign_type_noted = true;
                    self.unit.diagnostics.push(Diagnostic::new(
                        file.to_path_buf(),
                        a.line,
                        Severity::Notice,
                        format!(
                            "flint does not run .{} units; [{}] is not checked",
                            self.unit.id.unit_type(),
                            a.section
                        ),
                    ));
                }
                continue;
            }
            let Some(dir) = directive::lookup(&a.section, &a.key) else {
                self.unit.warn(
                    &origin,
                    format!(
                        "Unknown key '{}' in section [{}], ignoring.",
                        a.key, a.section
                    ),
                );
                self.unknown.push(a.key.clone());
                continue;
            };
            // Slice= places a service's cgroup; a socket's own commands
            // stay where flint runs them.
            let not_enforced = (dir.support == Support::NotEnforced
                && !security_module_absent(dir.key))
                || (a.section == "Socket" && dir.key == "Slice");
            if not_enforced
                && !a.value.is_empty()
                && !self
                    .not_enforced
                    .iter()
                    .any(|k| k.trim_end_matches('=') == dir.key)
            {
                self.not_enforced.push(format!("{}=", dir.key));
            }
            self.assign(&a.section, dir, &a.value, &origin);
        }
    }

    fn assign(&mut self, section: &str, dir: &'static Directive, value: &str, origin: &Origin) {
        const TIMER_VALUES: [&str; 6] = [
            "OnActiveSec",
            "OnBootSec",
            "OnStartupSec",
            "OnUnitActiveSec",
            "OnUnitInactiveSec",
            "OnCalendar",
        ];
        const PATH_SPECS: [&str; 5] = [
            "PathExists",
            "PathExistsGlob",
            "PathChanged",
            "PathModified",
            "DirectoryNotEmpty",
        ];
        if self.assign_process_setting(section, dir, value, origin) {
            return;
        }
        // All Listen*= lines share one ordered list; an empty one clears all.
        let key: &'static str = if matches!(dir.grammar, Grammar::Listen(_)) {
            "Listen"
        } else {
            dir.key
        };
        let slot = (section.to_string(), key);
        if value.is_empty() {
            match dir.kind {
                Kind::Single | Kind::List => {
                    self.unit.settings_mut().remove(&slot);
                }
                Kind::ListNoReset => {}
            }
            // systemd's config_parse_timer(): an empty `On…=` clears every
            // elapse of the timer, of all six kinds; config_parse_path_spec()
            // the same for the paths of a path unit.
            for group in [&TIMER_VALUES[..], &PATH_SPECS[..]] {
                if (section == "Timer" || section == "Path") && group.contains(&key) {
                    for k in group {
                        self.unit.settings_mut().remove(&(section.to_string(), *k));
                    }
                }
            }
            // For a capability set the empty assignment is itself a value
            // (the empty set), which later lists add to.
            if matches!(key, "CapabilityBoundingSet" | "AmbientCapabilities") {
                self.unit.settings_mut().insert(
                    slot,
                    Setting {
                        directive: dir,
                        entries: vec![(Value::Raw(String::new()), origin.clone())],
                    },
                );
            }
            return;
        }
        let values = match self.parse(dir, value, origin) {
            Ok(v) => v,
            Err(Problem::Warn(msg)) => {
                self.unit.warn(origin, msg);
                return;
            }
            Err(Problem::Fatal(msg)) => {
                self.unit
                    .fail(LoadState::BadSetting, &origin.path, origin.line, msg);
                return;
            }
        };
        // systemd reads syslog as journal and says so (a notice that
        // `systemd-analyze verify` prints); flint's journal is its log.
        let mut values = values;
        if dir.grammar == Grammar::StdOutput
            && let [Value::Stdio(v)] = values.as_mut_slice()
            && let Some(rest) = v.strip_prefix("syslog").map(str::to_string)
        {
            self.unit.warn(
                origin,
                format!(
                    "Standard output type {v} is obsolete, automatically updating to journal{rest}. \
                     Please update your unit file, and consider removing the setting altogether."
                ),
            );
            *v = format!("journal{rest}");
        }
        let setting = self.unit.settings_mut().entry(slot, dir);
        if dir.kind == Kind::Single {
            setting.entries.clear();
        }
        if dir.grammar == Grammar::Environment {
            // systemd keeps one assignment per variable
            // (`strv_env_replace_consume()`): a later one replaces the
            // earlier in its place, as a drop-in's `Environment=` does over
            // the unit's (NixOS's overrides.conf over a package unit).
            for v in values {
                let name = match &v {
                    Value::Env(n, _) => n.clone(),
                    _ => String::new(),
                };
                match setting
                    .entries
                    .iter_mut()
                    .find(|(e, _)| matches!(e, Value::Env(n, _) if *n == name))
                {
                    Some(slot) => *slot = (v, origin.clone()),
                    None => setting.entries.push((v, origin.clone())),
                }
            }
        } else {
            setting
                .entries
                .extend(values.into_iter().map(|v| (v, origin.clone())));
        }
        if setting.entries.is_empty() {
            let slot = (section.to_string(), key);
            self.unit.settings_mut().remove(&slot);
        }
    }

    fn expand(&self, s: &str, table: SpecifierTable) -> Result<String, String> {
        specifier::expand(s, self.ctx, table)
            .map_err(|e| format!("Failed to resolve unit specifiers in {s}: {e}"))
    }

    /// The words of `value` (quotes and escapes as systemd reads them),
    /// each with its specifiers expanded.
    fn expanded_words(&self, value: &str) -> Result<Vec<String>, Problem> {
        split_words(value, true)?
            .iter()
            .map(|w| self.expand(w, SpecifierTable::Full).map_err(Problem::Warn))
            .collect()
    }

    fn parse(
        &mut self,
        dir: &'static Directive,
        value: &str,
        origin: &Origin,
    ) -> Result<Vec<Value>, Problem> {
        let key = dir.key;
        let bad = |what: &str, e: &dyn fmt::Display| {
            Problem::Warn(format!("Failed to parse {what}, ignoring: {value} ({e})"))
        };
        let one = |v: Value| Ok(vec![v]);
        match dir.grammar {
            Grammar::Raw => one(Value::Raw(value.to_string())),
            // systemd's config_parse_timer(): specifiers, then the calendar
            // grammar; flint computes the elapses from the text kept.
            Grammar::Calendar => {
                let v = self
                    .expand(value, SpecifierTable::Full)
                    .map_err(Problem::Warn)?;
                crate::unit::calendar::CalendarSpec::parse(&v).map_err(|_| {
                    Problem::Warn(format!(
                        "Failed to parse calendar specification, ignoring: {v}"
                    ))
                })?;
                one(Value::Str(v))
            }
            // systemd's config_parse_unit_slice(): a slice unit's name,
            // specifiers expanded; flint nests the cgroup in it.
            Grammar::Slice => {
                let v = self
                    .expand(value.trim(), SpecifierTable::UnitName)
                    .map_err(Problem::Warn)?;
                // A template's `%i` is empty until an instance is made.
                if !self.unit.id.is_template() && crate::cgroup::slice_chain(&v).is_none() {
                    return Err(Problem::Warn(format!(
                        "Failed to assign slice {v} to unit {}, ignoring: Invalid argument",
                        self.unit.id
                    )));
                }
                one(Value::Str(v))
            }
            // Checked here, opened at each start of the main process.
            Grammar::OpenFile => crate::service::open_file::OpenFile::parse(value)
                .map(|_| vec![Value::Raw(value.to_string())])
                .map_err(|e| Problem::Warn(e.to_string())),
            Grammar::Str => one(Value::Str(
                self.expand(value, SpecifierTable::Full)
                    .map_err(Problem::Warn)?,
            )),
            Grammar::Path => {
                let p = self
                    .expand(value, SpecifierTable::Full)
                    .map_err(Problem::Warn)?;
                if !p.starts_with('/') {
                    return Err(Problem::Warn(format!(
                        "{key}= path is not absolute, ignoring: {p}"
                    )));
                }
                one(Value::Path(PathBuf::from(exec::path_simplify(&p))))
            }
            Grammar::WorkingDirectory => {
                let (optional, rest) = value
                    .strip_prefix('-')
                    .map_or((false, value), |r| (true, r));
                let p = self
                    .expand(rest, SpecifierTable::Full)
                    .map_err(Problem::Warn)?;
                if p != "~" && !p.starts_with('/') {
                    return Err(Problem::Warn(format!(
                        "Working directory path '{p}' is not absolute, ignoring."
                    )));
                }
                let path = if p == "~" { p } else { exec::path_simplify(&p) };
                one(Value::WorkingDirectory { path, optional })
            }
            Grammar::Bool => vbool::parse_bool(value)
                .map(|b| vec![Value::Bool(b)])
                .map_err(|_| {
                    Problem::Warn(format!("Failed to parse boolean value, ignoring: {value}"))
                }),
            Grammar::Sec => time::parse_timespan(value, 1_000_000)
                .map(|u| vec![Value::Usec(u)])
                .map_err(|_| {
                    Problem::Warn(format!(
                        "Failed to parse {key}= parameter, ignoring: {value}"
                    ))
                }),
            Grammar::SecFix0 => time::parse_sec_fix_0(value)
                .map(|u| vec![Value::Usec(u)])
                .map_err(|_| {
                    Problem::Warn(format!(
                        "Failed to parse {key}= parameter, ignoring: {value}"
                    ))
                }),
            Grammar::U32 => int::parse_u32(value)
                .map(|u| vec![Value::U64(u64::from(u))])
                .map_err(|e| bad(key, &e)),
            Grammar::Int if key == "Nice" => match int::parse_i32(value) {
                Ok(n) if (-20..=19).contains(&n) => one(Value::Int(i64::from(n))),
                Ok(_) => Err(Problem::Warn(format!(
                    "Nice priority out of range, ignoring: {value}"
                ))),
                Err(e) => Err(Problem::Warn(format!(
                    "Failed to parse nice priority '{value}', ignoring: {}",
                    e.strerror()
                ))),
            },
            Grammar::Int if key == "OOMScoreAdjust" => match int::parse_i32(value) {
                Ok(n) if (-1000..=1000).contains(&n) => one(Value::Int(i64::from(n))),
                Ok(_) => Err(Problem::Warn(format!(
                    "OOM score adjust value out of range, ignoring: {value}"
                ))),
                Err(e) => Err(Problem::Warn(format!(
                    "Failed to parse the OOM score adjust value '{value}', ignoring: {}",
                    e.strerror()
                ))),
            },
            Grammar::U64 => int::parse_u64(value)
                .map(|u| vec![Value::U64(u)])
                .map_err(|e| bad(key, &e)),
            Grammar::Int => int::parse_i64(value)
                .map(|u| vec![Value::Int(u)])
                .map_err(|e| bad(key, &e)),
            Grammar::Size => size::parse_size_iec(value)
                .map(|u| vec![Value::Size(u)])
                .map_err(|e| bad(key, &e)),
            Grammar::Mode => mode::parse_mode(value)
                .map(|m| vec![Value::Mode(m)])
                .map_err(|e| bad(key, &e)),
            Grammar::Signal => signal::parse_signal(value)
                .map(|s| vec![Value::Signal(s)])
                .map_err(|e| bad(key, &e)),
            // A boolean first, as systemd tries it first.
            Grammar::EnumOrBool(_, yes, no)
                if let Ok(b) = super::value::bool::parse_bool(value) =>
            {
                one(Value::Word((if b { yes } else { no }).to_string()))
            }
            Grammar::Enum(words) | Grammar::EnumOrBool(words, _, _) => {
                match words.iter().find(|w| **w == value) {
                    Some(w) => one(Value::Word((*w).to_string())),
                    None => Err(Problem::Warn(format!(
                        "Failed to parse {key}= value, ignoring: {value}"
                    ))),
                }
            }
            Grammar::Listen(kind) => self
                .parse_listen(kind, value)
                .map(|l| vec![Value::Listen(l)]),
            Grammar::Exec => self.parse_exec(value, origin),
            Grammar::Environment => {
                let mut out = Vec::new();
                for w in self.expanded_words(value)? {
                    match w.split_once('=') {
                        Some((n, v)) if env::env_name_is_valid(n) => {
                            out.push(Value::Env(n.to_string(), v.to_string()));
                        }
                        _ => self.unit.warn(
                            origin,
                            format!("Invalid environment assignment, ignoring: {w}"),
                        ),
                    }
                }
                Ok(out)
            }
            Grammar::EnvironmentFile => {
                let (optional, rest) = value
                    .strip_prefix('-')
                    .map_or((false, value), |r| (true, r));
                let p = self
                    .expand(rest, SpecifierTable::Full)
                    .map_err(Problem::Warn)?;
                if !p.starts_with('/') {
                    return Err(Problem::Warn(format!(
                        "Path '{p}' is not absolute, ignoring."
                    )));
                }
                one(Value::EnvFile {
                    path: PathBuf::from(p),
                    optional,
                })
            }
            Grammar::Words if is_exec_directory(key) => {
                self.parse_exec_directories(key, value, origin)
            }
            Grammar::Words if is_namespace_path_list(key) => {
                let mut out = Vec::new();
                for w in self.expanded_words(value)? {
                    match normalize_namespace_path(key, &w) {
                        Some(n) => out.push(Value::Str(n)),
                        None => self
                            .unit
                            .warn(origin, format!("Not an absolute path, ignoring: {w}")),
                    }
                }
                Ok(out)
            }
            Grammar::Words => Ok(self
                .expanded_words(value)?
                .into_iter()
                .map(Value::Str)
                .collect()),
            Grammar::Units | Grammar::Unit => {
                let list = split_words(value, false)?;
                let mut out = Vec::new();
                for w in list {
                    let w = self
                        .expand(&w, SpecifierTable::UnitName)
                        .map_err(Problem::Warn)?;
                    if w.parse::<UnitName>().is_ok() {
                        out.push(Value::Unit(w));
                    } else {
                        self.unit.warn(
                            origin,
                            format!("Failed to add dependency on {w}, ignoring: Invalid argument"),
                        );
                    }
                }
                if dir.grammar == Grammar::Unit {
                    if out.len() != 1 {
                        return Err(Problem::Warn(format!(
                            "Failed to parse {key}= value, ignoring: {value}"
                        )));
                    }
                    // systemd's config_parse_trigger_unit(): a timer or
                    // path unit triggers anything but its own kind.
                    let own = match self.unit.id.unit_type() {
                        UnitType::Timer => Some("timer"),
                        UnitType::Path => Some("path"),
                        _ => None,
                    };
                    if key == "Unit" && own.is_some() && value.trim().rsplit('.').next() == own {
                        return Err(Problem::Warn(format!(
                            "Unit cannot be of same type, ignoring: {value}"
                        )));
                    }
                    if key == "Service" && !value.ends_with(".service") {
                        return Err(Problem::Warn(format!(
                            "Unit must be of type service, ignoring: {value}"
                        )));
                    }
                }
                Ok(out)
            }
            Grammar::ExitStatus => exit_status::parse_exit_status_list(value)
                .map(|(codes, signals)| vec![Value::ExitStatus { codes, signals }])
                .map_err(|e| bad(key, &e)),
            Grammar::Limit => parse_limit(key, value)
                .map(|(soft, hard)| vec![Value::Limit { soft, hard }])
                .map_err(|e| {
                    Problem::Warn(format!(
                        "Failed to parse resource value, ignoring: {value} ({e})"
                    ))
                }),
            Grammar::Condition => {
                let mut rest = value;
                let mut trigger = false;
                let mut negate = false;
                if let Some(r) = rest.strip_prefix('|') {
                    trigger = true;
                    rest = r.trim_start();
                }
                if let Some(r) = rest.strip_prefix('!') {
                    negate = true;
                    rest = r.trim_start();
                }
                let mut argument = self
                    .expand(rest, SpecifierTable::Full)
                    .map_err(Problem::Warn)?;
                if is_path_condition(key) {
                    // systemd's config_parse_unit_condition_path(): absolute,
                    // then simplified (a trailing `/` would follow symlinks).
                    if !argument.starts_with('/') {
                        return Err(Problem::Warn(format!(
                            "Path in condition not absolute, ignoring: {argument}"
                        )));
                    }
                    argument = exec::path_simplify(&argument);
                }
                one(Value::Condition {
                    trigger,
                    negate,
                    argument,
                })
            }
            Grammar::CpuSchedPolicy => match process::sched_policy(value) {
                Some(p) => one(Value::Word(process::sched_policy_name(p))),
                None => Err(Problem::Warn(format!(
                    "Failed to parse CPU scheduling policy, ignoring: {value}"
                ))),
            },
            Grammar::Nsec => process::parse_nsec(value)
                .map(|ns| vec![Value::U64(ns)])
                .map_err(|_| {
                    Problem::Warn(format!("Failed to parse nsec value, ignoring: {value}"))
                }),
            Grammar::CpuSet => {
                // Handled with its merging in `assign_process_setting`.
                let (set, _) = process::parse_cpu_set(value).map_err(|_| {
                    Problem::Warn(format!("Failed to parse CPU affinity '{value}'"))
                })?;
                one(Value::Str(set.to_range_string()))
            }
            Grammar::SecureBits => match process::parse_secure_bits(value) {
                Some(bits) => one(Value::Str(process::secure_bits_to_string(bits))),
                None => Err(Problem::Warn(format!("Invalid syntax, ignoring: {value}"))),
            },
            Grammar::CoredumpFilter => match process::parse_coredump_filter(value) {
                Ok(mask) => one(Value::Str(format!("{mask:#x}"))),
                Err(e) => Err(Problem::Warn(format!(
                    "Failed to parse the CoredumpFilter={value}, ignoring: {}",
                    e.strerror()
                ))),
            },
            Grammar::AddressPrefixes => {
                // Each word alone: a bad one is skipped, as systemd does.
                let mut out = Vec::new();
                for w in value.split_whitespace() {
                    match crate::service::firewall::parse_word(w) {
                        Some(ps) => out.extend(ps.iter().map(|p| Value::Raw(p.to_string()))),
                        None => self.unit.warn(
                            origin,
                            format!("Address prefix is invalid, ignoring assignment: {w}"),
                        ),
                    }
                }
                Ok(out)
            }
            // Resolved as systemd shows them: bytes, u64::MAX for none.
            Grammar::MemoryLimit => {
                if key == "MemoryLimit" {
                    self.unit.warn(
                        origin,
                        "Unit uses MemoryLimit=; please use MemoryMax= instead. Support for MemoryLimit= will be removed soon.",
                    );
                }
                crate::service::resources::parse_memory(key, value)
                    .map(|m| vec![Value::U64(m.bytes())])
                    .map_err(Problem::Warn)
            }
            Grammar::CpuQuota => crate::service::resources::parse_cpu_quota(value)
                .map(|_| vec![Value::Raw(value.trim().to_string())])
                .map_err(Problem::Warn),
            Grammar::CpuWeight => crate::service::resources::parse_cpu_weight(value)
                .map(|_| vec![Value::Raw(value.trim().to_string())])
                .map_err(Problem::Warn),
            Grammar::CpuShares => {
                self.unit.warn(
                    origin,
                    format!(
                        "Unit uses {key}=; please use {}= instead. Support for {key}= will be removed soon.",
                        if key == "CPUShares" { "CPUWeight" } else { "StartupCPUWeight" }
                    ),
                );
                crate::service::resources::parse_cpu_shares(value)
                    .map(|_| vec![Value::Raw(value.trim().to_string())])
                    .map_err(Problem::Warn)
            }
            // Resolved as systemd shows it: a count, u64::MAX for none.
            Grammar::TasksMax => match crate::service::tasks::parse(value) {
                Ok(v) => one(Value::U64(
                    v.resolve(crate::service::tasks::system_max())
                        .unwrap_or(u64::MAX),
                )),
                Err(e) => Err(Problem::Warn(e.to_string())),
            },
            Grammar::Personality => match process::personality(value) {
                Some(_) => one(Value::Word(value.to_string())),
                None => Err(Problem::Warn(format!(
                    "Failed to parse personality, ignoring: {value}"
                ))),
            },
            Grammar::StdInput | Grammar::StdOutput
                if value
                    .strip_prefix("fd:")
                    .is_some_and(|n| !n.is_empty() && !fdname_is_valid(n)) =>
            {
                Err(Problem::Warn(format!(
                    "Invalid file descriptor name, ignoring: {}",
                    &value[3..]
                )))
            }
            Grammar::StdInput => {
                let v = self
                    .expand(value, SpecifierTable::Full)
                    .map_err(Problem::Warn)?;
                let ok = matches!(
                    v.as_str(),
                    "null" | "tty" | "tty-force" | "tty-fail" | "data" | "socket"
                ) || v.strip_prefix("file:").is_some_and(|p| p.starts_with('/'))
                    || v.starts_with("fd:");
                if ok {
                    one(Value::Stdio(v))
                } else {
                    Err(Problem::Warn(format!(
                        "Failed to parse input specifier, ignoring: {value}"
                    )))
                }
            }
            Grammar::StdOutput => {
                let v = self
                    .expand(value, SpecifierTable::Full)
                    .map_err(Problem::Warn)?;
                let ok = matches!(
                    v.as_str(),
                    "inherit"
                        | "null"
                        | "tty"
                        | "journal"
                        | "kmsg"
                        | "journal+console"
                        | "kmsg+console"
                        | "syslog"
                        | "syslog+console"
                        | "socket"
                ) || ["file:", "append:", "truncate:"]
                    .iter()
                    .any(|p| v.strip_prefix(p).is_some_and(|p| p.starts_with('/')))
                    || v.starts_with("fd:");
                if ok {
                    one(Value::Stdio(v))
                } else {
                    Err(Problem::Warn(format!(
                        "Failed to parse output specifier, ignoring: {value}"
                    )))
                }
            }
        }
    }

    /// The process attributes whose assignments systemd folds into one
    /// state, so that their order matters (`load-fragment.c`):
    /// `IOSchedulingClass=` keeps the priority and `IOSchedulingPriority=`
    /// the class (an empty one of either resets both, class `none` means
    /// best-effort 4); `CPUSchedulingPolicy=` clamps the priority into the
    /// policy's range (an empty one resets both; an empty priority is only
    /// a warning); `CPUAffinity=` adds to the set, `numa` replaces it;
    /// `TimerSlackNSec=infinity` resets. Both halves of a pair are stored
    /// with their effective values, as systemd's dump prints them. Returns
    /// false for any other directive.
    fn assign_process_setting(
        &mut self,
        section: &str,
        dir: &'static Directive,
        value: &str,
        origin: &Origin,
    ) -> bool {
        const IO_CLASS: &str = "IOSchedulingClass";
        const IO_PRIO: &str = "IOSchedulingPriority";
        const CPU_POLICY: &str = "CPUSchedulingPolicy";
        const CPU_PRIO: &str = "CPUSchedulingPriority";
        let key = dir.key;
        if ![
            IO_CLASS,
            IO_PRIO,
            CPU_POLICY,
            CPU_PRIO,
            "CPUAffinity",
            "TimerSlackNSec",
        ]
        .contains(&key)
        {
            return false;
        }
        let current = |unit: &Unit, k: &str| unit.get(section, k).cloned();
        if value.is_empty() {
            match key {
                IO_CLASS | IO_PRIO => self.unset(section, &[IO_CLASS, IO_PRIO]),
                CPU_POLICY => self.unset(section, &[CPU_POLICY, CPU_PRIO]),
                CPU_PRIO => self.unit.warn(
                    origin,
                    "Failed to parse CPU scheduling priority, ignoring: ",
                ),
                _ => self.unset(section, &[key]),
            }
            return true;
        }
        match key {
            IO_CLASS => {
                let Some(class) = process::ioprio_class(value) else {
                    self.unit.warn(
                        origin,
                        format!("Failed to parse IO scheduling class, ignoring: {value}"),
                    );
                    return true;
                };
                let data = match current(self.unit, IO_PRIO) {
                    Some(Value::U64(p)) => u32::try_from(p).unwrap_or(0),
                    _ => process::IOPRIO_DEFAULT_PRIORITY,
                };
                // IOPRIO_CLASS_NONE is best-effort at the default level.
                let (class, data) = if class == 0 {
                    (process::IOPRIO_CLASS_BE, process::IOPRIO_DEFAULT_PRIORITY)
                } else {
                    (class, data)
                };
                self.set_single(
                    section,
                    IO_CLASS,
                    Value::Word(process::ioprio_class_name(class)),
                    origin,
                );
                self.set_single(section, IO_PRIO, Value::U64(u64::from(data)), origin);
            }
            IO_PRIO => {
                let Some(p) = int::parse_i32(value)
                    .ok()
                    .and_then(|p| u32::try_from(p).ok())
                    .filter(|p| *p < 8)
                else {
                    self.unit.warn(
                        origin,
                        format!("Failed to parse IO priority, ignoring: {value}"),
                    );
                    return true;
                };
                let class = match current(self.unit, IO_CLASS) {
                    Some(Value::Word(w)) => {
                        process::ioprio_class(&w).unwrap_or(process::IOPRIO_CLASS_BE)
                    }
                    _ => process::IOPRIO_CLASS_BE,
                };
                self.set_single(
                    section,
                    IO_CLASS,
                    Value::Word(process::ioprio_class_name(class)),
                    origin,
                );
                self.set_single(section, IO_PRIO, Value::U64(u64::from(p)), origin);
            }
            CPU_POLICY => {
                let Some(policy) = process::sched_policy(value) else {
                    self.unit.warn(
                        origin,
                        format!("Failed to parse CPU scheduling policy, ignoring: {value}"),
                    );
                    return true;
                };
                let mut prio = match current(self.unit, CPU_PRIO) {
                    Some(Value::U64(p)) => p,
                    _ => 0,
                };
                if let Some((lo, hi)) = process::sched_priority_range(policy) {
                    prio = prio.clamp(u64::from(lo), u64::from(hi));
                }
                self.set_single(
                    section,
                    CPU_POLICY,
                    Value::Word(process::sched_policy_name(policy)),
                    origin,
                );
                self.set_single(section, CPU_PRIO, Value::U64(prio), origin);
            }
            CPU_PRIO => {
                let Ok(p) = int::parse_i32(value) else {
                    self.unit.warn(
                        origin,
                        format!("Failed to parse CPU scheduling priority, ignoring: {value}"),
                    );
                    return true;
                };
                let Some(p) = u32::try_from(p).ok().filter(|p| *p <= 99) else {
                    self.unit.warn(
                        origin,
                        format!("CPU scheduling priority is out of range, ignoring: {value}"),
                    );
                    return true;
                };
                let policy = match current(self.unit, CPU_POLICY) {
                    Some(Value::Word(w)) => w,
                    _ => process::sched_policy_name(0),
                };
                self.set_single(section, CPU_POLICY, Value::Word(policy), origin);
                self.set_single(section, CPU_PRIO, Value::U64(u64::from(p)), origin);
            }
            "CPUAffinity" => {
                if value == "numa" {
                    self.set_single(section, key, Value::Word("numa".into()), origin);
                    return true;
                }
                let text = match self.expand(value, SpecifierTable::Full) {
                    Ok(t) => t,
                    Err(e) => {
                        self.unit.warn(origin, e);
                        return true;
                    }
                };
                let (set, warnings) = match process::parse_cpu_set(&text) {
                    Ok(r) => r,
                    Err(e) => {
                        let msg = match e {
                            process::CpuSetError::Word(w) => {
                                format!("Failed to parse CPU affinity '{w}'")
                            }
                            process::CpuSetError::Range(c) => {
                                format!("Cannot add CPU {c} to set: Numerical result out of range")
                            }
                            process::CpuSetError::Syntax => {
                                format!("Invalid value for CPUAffinity=: {value}")
                            }
                        };
                        self.unit.warn(origin, msg);
                        return true;
                    }
                };
                for w in warnings {
                    self.unit.warn(origin, w);
                }
                let merged = match current(self.unit, key) {
                    Some(Value::Str(prev)) => process::parse_cpu_set(&prev)
                        .map(|(p, _)| p.union(&set))
                        .unwrap_or(set),
                    _ => set,
                };
                self.set_single(section, key, Value::Str(merged.to_range_string()), origin);
            }
            _ => match process::parse_nsec(value) {
                Ok(u64::MAX) => self.unset(section, &[key]),
                Ok(ns) => self.set_single(section, key, Value::U64(ns), origin),
                Err(_) => self.unit.warn(
                    origin,
                    format!("Failed to parse nsec value, ignoring: {value}"),
                ),
            },
        }
        true
    }

    fn unset(&mut self, section: &str, keys: &[&'static str]) {
        for k in keys {
            self.unit.settings_mut().remove(&(section.to_string(), *k));
        }
    }

    /// Stores `value` as the one entry of the single setting `key`.
    fn set_single(&mut self, section: &str, key: &'static str, value: Value, origin: &Origin) {
        let Some(directive) = directive::lookup(section, key) else {
            return;
        };
        self.unit.settings_mut().insert(
            (section.to_string(), key),
            Setting {
                directive,
                entries: vec![(value, origin.clone())],
            },
        );
    }

    /// `RuntimeDirectory=` and friends: relative paths, each optionally
    /// `path:symlink`, simplified; `..` and absolute paths are refused per
    /// item (systemd's `config_parse_exec_directories()`).
    fn parse_exec_directories(
        &mut self,
        key: &str,
        value: &str,
        origin: &Origin,
    ) -> Result<Vec<Value>, Problem> {
        let mut out = Vec::new();
        for w in self.expanded_words(value)? {
            let (dir, link) = match w.split_once(':') {
                Some((d, l)) => (d, Some(l)),
                None => (w.as_str(), None),
            };
            let valid =
                |p: &str| !p.is_empty() && !p.starts_with('/') && !p.split('/').any(|c| c == "..");
            if !valid(dir) || link.is_some_and(|l| !valid(l)) {
                self.unit.warn(
                    origin,
                    format!("{key}= path is not valid, ignoring assignment: {w}"),
                );
                continue;
            }
            let mut item = exec::path_simplify(dir);
            // `.` (the base itself) is no directory of the unit's; nor is
            // `private/`, where dynamic users' directories are.
            if item.is_empty() || item == "." {
                self.unit.warn(
                    origin,
                    format!("{key}= path is not normalized, ignoring: {dir}"),
                );
                continue;
            }
            if item.split('/').next() == Some("private") {
                self.unit.warn(
                    origin,
                    format!("{key}= path can't be 'private', ignoring assignment: {w}"),
                );
                continue;
            }
            if let Some(l) = link {
                item.push(':');
                item.push_str(&exec::path_simplify(l));
            }
            out.push(Value::Str(item));
        }
        Ok(out)
    }

    fn parse_listen(&self, kind: ListenType, value: &str) -> Result<Listen, Problem> {
        let v = self
            .expand(value, SpecifierTable::Full)
            .map_err(Problem::Warn)?;
        let target = match kind {
            ListenType::Stream | ListenType::Datagram | ListenType::SequentialPacket => {
                let v = match v.strip_prefix("/var/run/") {
                    Some(rest) => format!("/run/{rest}"),
                    None => v,
                };
                let addr: SocketAddress = v.parse().map_err(|e| {
                    Problem::Warn(format!(
                        "Failed to parse address value in '{}', ignoring: {e}",
                        kind.directive()
                    ))
                })?;
                if kind == ListenType::SequentialPacket
                    && !matches!(
                        addr,
                        SocketAddress::Unix(_)
                            | SocketAddress::Abstract(_)
                            | SocketAddress::Vsock { .. }
                    )
                {
                    return Err(Problem::Warn("Address family not supported, ignoring: ListenSequentialPacket= needs a unix or vsock address".to_string()));
                }
                ListenTarget::Address(addr)
            }
            ListenType::Fifo | ListenType::Special | ListenType::UsbFunction => {
                if !v.starts_with('/') {
                    return Err(Problem::Warn(format!(
                        "Path '{v}' is not absolute, ignoring."
                    )));
                }
                ListenTarget::Path(PathBuf::from(v))
            }
            ListenType::Netlink => {
                let mut parts = v.split_whitespace();
                let family = parts.next().unwrap_or_default().to_string();
                let group = match parts.next() {
                    Some(g) => int::parse_u32(g).map_err(|e| {
                        Problem::Warn(format!(
                            "Failed to parse netlink group, ignoring: {g} ({e})"
                        ))
                    })?,
                    None => 0,
                };
                if family.is_empty() || parts.next().is_some() {
                    return Err(Problem::Warn(format!(
                        "Failed to parse address value, ignoring: {v}"
                    )));
                }
                ListenTarget::Netlink { family, group }
            }
            ListenType::MessageQueue => {
                if !v.starts_with('/') || v.len() < 2 || v[1..].contains('/') {
                    return Err(Problem::Warn(format!(
                        "Invalid message queue name, ignoring: {v}"
                    )));
                }
                ListenTarget::MessageQueue(v)
            }
        };
        Ok(Listen { kind, target })
    }

    fn parse_exec(&mut self, value: &str, origin: &Origin) -> Result<Vec<Value>, Problem> {
        let ctx = self.ctx;
        let mut expand = |s: &str, is_path: bool| {
            let table = if is_path {
                SpecifierTable::Path
            } else {
                SpecifierTable::Full
            };
            specifier::expand(s, ctx, table)
                .map_err(|e| format!("Failed to resolve unit specifiers in {s}: {e}"))
        };
        let line = exec::parse_exec_detailed(value, &mut expand);
        let out: Vec<Value> = line.commands.into_iter().map(Value::Exec).collect();
        for w in line.warnings {
            self.unit
                .diagnostics
                .push(Diagnostic::warning(&origin.path, origin.line, w));
        }
        match line.error {
            None => Ok(out),
            Some(e) if e.fatal => Err(Problem::Fatal(e.error.to_string())),
            Some(e) => {
                // The commands before the error are kept, as systemd keeps them.
                self.unit.warn(origin, e.error.to_string());
                Ok(out)
            }
        }
    }
}

/// The `*Directory=` settings systemd creates under a base directory.
/// systemd's `fdname_is_valid()`: printable ASCII without `:`, at most 255
/// characters.
pub(crate) fn fdname_is_valid(name: &str) -> bool {
    name.len() <= 255
        && name
            .bytes()
            .all(|c| (b' '..=b'~').contains(&c) && c != b':')
}

fn is_exec_directory(key: &str) -> bool {
    matches!(
        key,
        "RuntimeDirectory"
            | "StateDirectory"
            | "CacheDirectory"
            | "LogsDirectory"
            | "ConfigurationDirectory"
    )
}

/// The `Condition*=`/`Assert*=` settings whose argument is a path.
/// Whether flint expands `%` specifiers in `key` of `section` when it
/// reads a unit file: a value written for such a key doubles a `%` it
/// means as it is (`-p MemoryMax=50%` stays as it is, `-p
/// Environment=A=50%` becomes `A=50%%`). Unknown keys count as expanding.
pub fn expands_specifiers(section: &str, key: &str) -> bool {
    if key == "CPUAffinity" {
        return true;
    }
    directive::lookup(section, key).is_none_or(|d| {
        matches!(
            d.grammar,
            Grammar::Listen(_)
                | Grammar::Exec
                | Grammar::Environment
                | Grammar::EnvironmentFile
                | Grammar::Words
                | Grammar::Calendar
                | Grammar::Slice
                | Grammar::Str
                | Grammar::Path
                | Grammar::WorkingDirectory
                | Grammar::Units
                | Grammar::Unit
                | Grammar::Condition
                | Grammar::StdInput
                | Grammar::StdOutput
        )
    })
}

pub fn is_path_condition(key: &str) -> bool {
    let Some(rest) = key
        .strip_prefix("Condition")
        .or_else(|| key.strip_prefix("Assert"))
    else {
        return false;
    };
    matches!(
        rest,
        "PathExists"
            | "PathExistsGlob"
            | "PathIsDirectory"
            | "PathIsSymbolicLink"
            | "PathIsMountPoint"
            | "PathIsReadWrite"
            | "PathIsEncrypted"
            | "DirectoryNotEmpty"
            | "FileNotEmpty"
            | "FileIsExecutable"
            | "NeedsUpdate"
    )
}

/// Splits a list value into words as systemd's list settings do
/// (`EXTRACT_RELAX|EXTRACT_UNQUOTE`, with `EXTRACT_CUNESCAPE` where asked).
fn split_words(value: &str, cunescape: bool) -> Result<Vec<String>, Problem> {
    let flags = words::ExtractFlags {
        cunescape,
        ..words::ExtractFlags::RELAX_UNQUOTE
    };
    words::extract_words(value, flags)
        .map_err(|_| Problem::Warn(format!("Invalid syntax, ignoring: {value}")))
}

enum Problem {
    /// The assignment is ignored with a warning.
    Warn(String),
    /// The unit fails to load.
    Fatal(String),
}

/// Parses `Limit*=`: `value` or `soft:hard`, each a number, `infinity`, a
/// size (byte limits) or a time span (`LimitCPU=` in seconds, `LimitRTTIME=`
/// in microseconds).
fn parse_limit(key: &str, value: &str) -> Result<(u64, u64), String> {
    let one = |s: &str| -> Result<u64, String> {
        let s = s.trim();
        if s == "infinity" {
            return Ok(u64::MAX);
        }
        match key {
            "LimitCPU" => time::parse_timespan(s, 1_000_000)
                .map(|us| {
                    if us == u64::MAX {
                        us
                    } else {
                        us.div_ceil(1_000_000)
                    }
                })
                .map_err(|e| e.to_string()),
            "LimitRTTIME" => time::parse_timespan(s, 1).map_err(|e| e.to_string()),
            "LimitFSIZE" | "LimitDATA" | "LimitSTACK" | "LimitCORE" | "LimitRSS" | "LimitAS"
            | "LimitMEMLOCK" | "LimitMSGQUEUE" => {
                size::parse_size_iec(s).map_err(|e| e.to_string())
            }
            "LimitNICE" => {
                // "+N" or "-N" is a nice value, a bare number the raw limit.
                if let Some(n) = s.strip_prefix('-').or_else(|| s.strip_prefix('+')) {
                    let nice: i64 = n.parse().map_err(|_| format!("invalid nice value {s}"))?;
                    let nice = if s.starts_with('-') { -nice } else { nice };
                    if !(-20..=19).contains(&nice) {
                        return Err(format!("nice value out of range {s}"));
                    }
                    u64::try_from(20 - nice).map_err(|e| e.to_string())
                } else {
                    int::parse_u64(s).map_err(|e| e.to_string())
                }
            }
            _ => int::parse_u64(s).map_err(|e| e.to_string()),
        }
    };
    if let Some((soft, hard)) = value.split_once(':') {
        let (soft, hard) = (one(soft)?, one(hard)?);
        if soft > hard {
            return Err("soft limit above hard limit".to_string());
        }
        Ok((soft, hard))
    } else {
        let v = one(value)?;
        Ok((v, v))
    }
}

/// The load-time refusals systemd makes after all files are read.
fn validate(unit: &mut Unit) {
    if !unit.is_loaded() {
        return;
    }
    let path = unit
        .fragment
        .clone()
        .unwrap_or_else(|| PathBuf::from(unit.id.as_str()));
    match unit.id.unit_type() {
        UnitType::Socket => validate_socket(unit, &path),
        UnitType::Service => validate_service(unit, &path),
        _ => {}
    }
}

fn validate_socket(unit: &mut Unit, path: &Path) {
    let listens: Vec<Listen> = unit.listens().cloned().collect();
    if listens.is_empty() {
        unit.fail(LoadState::BadSetting, path, 0, "Unit has no Listen setting (ListenStream=, ListenDatagram=, ListenFIFO=, ...). Refusing.");
        return;
    }
    let accept = unit.get_bool("Socket", "Accept").unwrap_or(false);
    if accept && !listens.iter().all(Listen::can_accept) {
        unit.fail(
            LoadState::BadSetting,
            path,
            0,
            "Unit configured for accepting sockets, but sockets are non-accepting. Refusing.",
        );
    }
    if accept && unit.get("Socket", "Service").is_some() {
        unit.fail(
            LoadState::BadSetting,
            path,
            0,
            "Explicit service configuration for accepting socket units not supported. Refusing.",
        );
    }
    if accept && unit.get_u64("Socket", "MaxConnections") == Some(0) {
        unit.fail(
            LoadState::BadSetting,
            path,
            0,
            "MaxConnection= setting too small. Refusing.",
        );
    }
    let nodes = listens.iter().filter(|l| l.node_path().is_some()).count();
    if !unit.entries("Socket", "Symlinks").is_empty() && nodes != 1 {
        unit.fail(
            LoadState::BadSetting,
            path,
            0,
            "Unit has symlinks set but none or more than one node in the file system. Refusing.",
        );
    }
}

fn validate_service(unit: &mut Unit, path: &Path) {
    let starts = unit.commands("Service", "ExecStart").len();
    let stops = unit.commands("Service", "ExecStop").len();
    // systemd's service_fix_output()/service_add_extras(): with no Type=,
    // BusName= makes a dbus service, else ExecStart= a simple one.
    let service_type = unit.get_str("Service", "Type").map_or_else(
        || {
            if unit.get("Service", "BusName").is_some() {
                "dbus".into()
            } else if starts == 0 {
                "oneshot".into()
            } else {
                "simple".into()
            }
        },
        str::to_string,
    );
    // SuccessAction= runs unconditionally when no command is given, so it
    // stands in for ExecStart= (systemd's service_verify()).
    let success_action = unit
        .get_str("Unit", "SuccessAction")
        .is_some_and(|a| a != "none");
    let restart = unit
        .get_str("Service", "Restart")
        .unwrap_or("no")
        .to_string();
    let remain = unit.get_bool("Service", "RemainAfterExit").unwrap_or(false);
    if starts == 0 && stops == 0 && !success_action {
        unit.fail(
            LoadState::BadSetting,
            path,
            0,
            "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing.",
        );
    } else if service_type != "oneshot" && starts == 0 {
        unit.fail(LoadState::BadSetting, path, 0, "Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.");
    } else if starts == 0 && !remain && !success_action {
        unit.fail(
            LoadState::BadSetting,
            path,
            0,
            "Service has no ExecStart= and no RemainAfterExit=yes setting. Refusing.",
        );
    } else if service_type != "oneshot" && starts > 1 {
        unit.fail(LoadState::BadSetting, path, 0, "Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.");
    } else if service_type == "oneshot" && (restart == "always" || restart == "on-success") {
        unit.fail(LoadState::BadSetting, path, 0, "Service has Restart= set to either always or on-success, which isn't allowed for Type=oneshot services. Refusing.");
    } else if service_type == "oneshot" && unit.get_str("Service", "ExitType") == Some("cgroup") {
        unit.fail(LoadState::BadSetting, path, 0, "Service has ExitType=cgroup set, which isn't allowed for Type=oneshot services. Refusing.");
    } else if service_type == "dbus" && unit.get("Service", "BusName").is_none() {
        unit.fail(
            LoadState::BadSetting,
            path,
            0,
            "Service is of type D-Bus but no D-Bus service name has been specified. Refusing.",
        );
    }
}

impl Value {
    /// The JSON form used by `flint show` (schema in `docs/show.md`).
    pub fn to_json(&self) -> Json {
        match self {
            Value::Bool(b) => json!(b),
            Value::Str(s) | Value::Word(s) | Value::Unit(s) | Value::Raw(s) | Value::Stdio(s) => {
                json!(s)
            }
            Value::Path(p) => json!(p.to_string_lossy()),
            Value::Usec(u) => {
                if *u == u64::MAX {
                    json!({"usec": null, "text": "infinity"})
                } else {
                    json!({"usec": u, "text": time::format_timespan(*u)})
                }
            }
            Value::U64(u) | Value::Size(u) => json!(u),
            Value::Int(i) => json!(i),
            Value::Mode(m) => json!(format!("{m:04o}")),
            Value::Signal(s) => {
                json!(signal::signal_name(*s).map_or_else(|| s.to_string(), str::to_string))
            }
            Value::Listen(l) => {
                json!({"type": l.kind.directive(), "address": l.target.to_string()})
            }
            Value::Exec(c) => {
                let mut prefix = String::new();
                for (on, ch) in [
                    (c.ignore_failure, "-"),
                    (c.argv0_separate, "@"),
                    (c.no_env_expand, ":"),
                    (c.full_privileges, "+"),
                    (c.no_setuid, "!"),
                    (c.ambient_hack, "!!"),
                ] {
                    if on {
                        prefix.push_str(ch);
                    }
                }
                json!({"path": c.path, "argv": c.argv, "prefix": prefix})
            }
            Value::Env(n, v) => json!(format!("{n}={v}")),
            Value::EnvFile { path, optional } => {
                json!({"path": path.to_string_lossy(), "optional": optional})
            }
            Value::ExitStatus { codes, signals } => {
                let names: Vec<String> = signals
                    .iter()
                    .map(|s| signal::signal_name(*s).map_or_else(|| s.to_string(), str::to_string))
                    .collect();
                json!({"codes": codes, "signals": names})
            }
            Value::Limit { soft, hard } => {
                let f = |v: u64| {
                    if v == u64::MAX {
                        json!("infinity")
                    } else {
                        json!(v)
                    }
                };
                json!({"soft": f(*soft), "hard": f(*hard)})
            }
            Value::Condition {
                trigger,
                negate,
                argument,
            } => json!({"trigger": trigger, "negate": negate, "argument": argument}),
            Value::WorkingDirectory { path, optional } => {
                json!({"path": path, "optional": optional})
            }
        }
    }
}

impl Unit {
    /// The JSON document `flint show` prints (schema in `docs/show.md`).
    pub fn to_json(&self) -> Json {
        let origin = |o: &Origin| json!({"file": o.path.to_string_lossy(), "line": o.line});
        let mut sections = serde_json::Map::new();
        for ((section, key), setting) in self.settings.iter() {
            let sec = sections.entry(section.clone()).or_insert_with(|| json!({}));
            let items: Vec<Json> = setting
                .entries
                .iter()
                .map(|(v, o)| {
                    let mut item = json!({"value": v.to_json()});
                    if let (Some(obj), Json::Object(src)) = (item.as_object_mut(), origin(o)) {
                        obj.extend(src);
                    }
                    item
                })
                .collect();
            let entry = if setting.directive.kind == Kind::Single && *key != "Listen" {
                items.into_iter().next_back().unwrap_or(Json::Null)
            } else {
                Json::Array(items)
            };
            if let Some(obj) = sec.as_object_mut() {
                obj.insert((*key).to_string(), entry);
            }
        }
        let mut extras = serde_json::Map::new();
        for e in &self.extras {
            let sec = extras.entry(e.section.clone()).or_insert_with(|| json!({}));
            if let Some(obj) = sec.as_object_mut() {
                let list = obj.entry(e.key.clone()).or_insert_with(|| json!([]));
                if let Some(arr) = list.as_array_mut() {
                    arr.push(json!({"value": e.value, "file": e.origin.path.to_string_lossy(), "line": e.origin.line}));
                }
            }
        }
        let names = |v: &[UnitName]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        json!({
            "name": self.name.to_string(),
            "id": self.id.to_string(),
            "load_state": self.load_state.as_str(),
            "fragment": self.fragment.as_ref().map(|p| p.to_string_lossy()),
            "dropins": self.dropins.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>(),
            "aliases": names(&self.aliases),
            "wants": names(&self.wants),
            "requires": names(&self.requires),
            "settings": sections,
            "extra": extras,
            "diagnostics": self.diagnostics.iter().map(|d| json!({"file": d.path.to_string_lossy(), "line": d.line, "severity": d.severity, "message": d.message})).collect::<Vec<_>>(),
        })
    }
}

/// The path lists of a service's mount namespace.
fn is_namespace_path_list(key: &str) -> bool {
    matches!(
        key,
        "ReadWritePaths"
            | "ReadOnlyPaths"
            | "InaccessiblePaths"
            | "BindPaths"
            | "BindReadOnlyPaths"
    )
}

/// One entry of a namespace path list as systemd holds it: paths
/// simplified (`path_simplify()`), the `-`/`+` prefixes kept, and for
/// `BindPaths=`/`BindReadOnlyPaths=` the whole `[-]SOURCE:DEST:rbind|norbind`
/// form. `None` for a path that is not absolute.
fn normalize_namespace_path(key: &str, word: &str) -> Option<String> {
    fn simplify(p: &str) -> Option<String> {
        if !p.starts_with('/') {
            return None;
        }
        let parts: Vec<&str> = p
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        Some(format!("/{}", parts.join("/")))
    }
    if key == "TemporaryFileSystem" {
        let (path, options) = word.split_once(':').unwrap_or((word, ""));
        let path = simplify(path)?;
        return Some(if options.is_empty() {
            path
        } else {
            format!("{path}:{options}")
        });
    }
    let (ignore, rest) = word.strip_prefix('-').map_or(("", word), |r| ("-", r));
    if key.starts_with("Bind") {
        let mut parts = rest.splitn(3, ':');
        let src = simplify(parts.next()?)?;
        let dst = match parts.next() {
            Some(d) if !d.is_empty() => simplify(d)?,
            _ => src.clone(),
        };
        let recursive = match parts.next() {
            None | Some("" | "rbind") => "rbind",
            Some("norbind") => "norbind",
            Some(_) => return None,
        };
        return Some(format!("{ignore}{src}:{dst}:{recursive}"));
    }
    let (rooted, rest) = rest.strip_prefix('+').map_or(("", rest), |r| ("+", r));
    Some(format!("{ignore}{rooted}{}", simplify(rest)?))
}

/// Loads `text` as the unit file `name` from a directory of its own (for
/// tests of what a setting loads to).
#[cfg(test)]
pub(crate) fn load_text(name: &str, text: &str) -> Unit {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), text).unwrap();
    let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
    load(&search, &name.parse().unwrap())
}

#[cfg(test)]
mod tests {
    //! Fixes found by the conformance test against systemd 252's test-mode
    //! dump (`tests/conformance.rs`); the expected values are the dump's.

    use super::*;

    #[test]
    fn settings_find_every_key_set_and_none_that_is_not() {
        // Every directive flint knows, in four sections, half of them set:
        // the filter of present keys never hides one that is there.
        let mut all: Vec<&'static Directive> = Vec::new();
        for d in crate::unit::directive::DIRECTIVES {
            if !all.iter().any(|a| a.key == d.key) {
                all.push(d);
            }
        }
        let sections = ["Unit", "Service", "Socket", "X-Other"];
        let mut settings = Settings::default();
        let mut set = Vec::new();
        for (i, d) in all.iter().enumerate() {
            for (j, section) in sections.iter().enumerate() {
                if (i + j) % 2 == 0 {
                    settings.insert(
                        ((*section).to_string(), d.key),
                        Setting {
                            directive: d,
                            entries: Vec::new(),
                        },
                    );
                    set.push((*section, d.key));
                }
            }
        }
        for (i, d) in all.iter().enumerate() {
            for (j, section) in sections.iter().enumerate() {
                let found = settings.get(section, d.key);
                assert_eq!(found.is_some(), (i + j) % 2 == 0, "[{section}] {}", d.key);
                if let Some(found) = found {
                    assert_eq!(found.directive.key, d.key);
                }
            }
        }
        // A removed key is gone, though its bit stays.
        let (section, key) = set[0];
        assert!(settings.remove(&(section.to_string(), key)).is_some());
        assert!(settings.get(section, key).is_none());
        assert_eq!(settings.iter().count(), set.len() - 1);
        // A small unit's filter turns most absent keys away with no search.
        let mut small = Settings::default();
        for d in all.iter().take(12) {
            small.entry(("Service".to_string(), d.key), d);
        }
        let clear = all
            .iter()
            .skip(12)
            .filter(|d| small.present & Settings::bit("Service", d.key) == 0)
            .count();
        assert!(
            clear * 10 >= (all.len() - 12) * 8,
            "{clear} of {}",
            all.len() - 12
        );
    }

    #[test]
    fn enums_that_take_a_boolean_map_it_to_their_word() {
        // systemd 252's dump: `BindIPv6Only: ipv6-only` for `yes`,
        // `RuntimeDirectoryPreserve: yes` for `true`.
        for (value, word) in [
            ("yes", Some("ipv6-only")),
            ("false", Some("both")),
            ("default", Some("default")),
            ("ipv6-only", Some("ipv6-only")),
            ("sometimes", None),
        ] {
            let unit = load_text(
                "b.socket",
                &format!("[Socket]\nListenStream=[::]:9\nBindIPv6Only={value}\n"),
            );
            assert_eq!(unit.get_str("Socket", "BindIPv6Only"), word, "{value}");
        }
        // 252's socket_timestamping_from_string_harder(): yes is ns.
        let unit = load_text("t.socket", "[Socket]\nListenDatagram=9\nTimestamping=yes\n");
        assert_eq!(unit.get_str("Socket", "Timestamping"), Some("ns"));
        for (value, word) in [("true", "yes"), ("off", "no"), ("restart", "restart")] {
            let unit = load_text(
                "p.service",
                &format!("[Service]\nExecStart=/bin/true\nRuntimeDirectoryPreserve={value}\n"),
            );
            assert_eq!(
                unit.get_str("Service", "RuntimeDirectoryPreserve"),
                Some(word),
                "{value}"
            );
        }
    }

    #[test]
    fn address_lists_reset_skip_bad_words_and_drop_host_bits() {
        // systemd 252's dump of the same unit: IPAddressAllow= 127.0.0.0/8,
        // ::1/128, 10.0.0.0/8, fe80::/64, 169.254.0.0/16, fe80::/10,
        // 224.0.0.0/4, ff00::/8, 192.168.1.1/32; IPAddressDeny=
        // 2001:db8::/32; a warning for `bogus` and `1.2.3.4/33`.
        let unit = load_text(
            "ip.service",
            "[Service]\nExecStart=/bin/true\nIPAddressDeny=any\n\
             IPAddressAllow=localhost 10.1.2.3/8 link-local\n\
             IPAddressAllow=multicast fe80::1/10 bogus 192.168.1.1\n\
             IPAddressDeny=\nIPAddressDeny=1.2.3.4/33 2001:db8::/32\n",
        );
        assert_eq!(unit.load_state, LoadState::Loaded);
        let mut allow = unit.strings("Service", "IPAddressAllow");
        allow.sort_unstable();
        assert_eq!(
            allow,
            [
                "10.0.0.0/8",
                "127.0.0.0/8",
                "169.254.0.0/16",
                "192.168.1.1/32",
                "224.0.0.0/4",
                "::1/128",
                "fe80::/10",
                "fe80::/64",
                "ff00::/8"
            ]
        );
        assert_eq!(unit.strings("Service", "IPAddressDeny"), ["2001:db8::/32"]);
        let warned: Vec<&str> = unit
            .diagnostics
            .iter()
            .filter(|d| d.message.starts_with("Address prefix is invalid"))
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(
            warned,
            [
                "Address prefix is invalid, ignoring assignment: bogus",
                "Address prefix is invalid, ignoring assignment: 1.2.3.4/33"
            ]
        );
    }

    /// An empty `On…=` clears every elapse of a timer, as systemd's
    /// config_parse_timer() does; a broken calendar is warned about and
    /// left out; `Unit=` may not name a timer.
    #[test]
    fn timer_elapses_reset_together() {
        let unit = load_text(
            "t.timer",
            "[Timer]\nOnBootSec=15min\nOnUnitActiveSec=1d\nOnCalendar=weekly\n\
             OnCalendar=\nOnCalendar=daily\nOnCalendar=Mon..Frx\nUnit=other.timer\n",
        );
        assert!(unit.get("Timer", "OnBootSec").is_none());
        assert!(unit.get("Timer", "OnUnitActiveSec").is_none());
        assert_eq!(unit.strings("Timer", "OnCalendar"), ["daily"]);
        assert!(unit.get("Timer", "Unit").is_none());
        let messages: Vec<&str> = unit
            .diagnostics
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        assert!(
            messages.contains(&"Failed to parse calendar specification, ignoring: Mon..Frx"),
            "{messages:?}"
        );
        assert!(
            messages.contains(&"Unit cannot be of same type, ignoring: other.timer"),
            "{messages:?}"
        );
    }

    #[test]
    fn a_refused_tasks_max_leaves_the_earlier_one() {
        let unit = load_text(
            "t.service",
            "[Service]\nExecStart=/bin/true\nTasksMax=12.5%\nTasksMax=0\nTasksMax=lots\n",
        );
        // 12.5% of the system's maximum, as systemd shows it.
        assert_eq!(
            unit.get_u64("Service", "TasksMax"),
            crate::service::tasks::TasksMax::Permyriad(1250)
                .resolve(crate::service::tasks::system_max())
        );
        let warned: Vec<&str> = unit
            .diagnostics
            .iter()
            .filter(|d| d.message.contains("tasks value"))
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(
            warned,
            [
                "Maximum tasks value '0' out of range, ignoring.",
                "Invalid maximum tasks value 'lots', ignoring: Invalid argument"
            ]
        );
        assert!(
            !unit
                .diagnostics
                .iter()
                .any(|d| d.message.contains("not enforced")),
            "{:?}",
            unit.diagnostics
        );
    }

    #[test]
    fn a_security_label_for_a_module_the_kernel_lacks_is_not_called_unenforced() {
        let unit = load_text(
            "t.service",
            "[Service]\nExecStart=/bin/true\nAppArmorProfile=-system_tor\nSELinuxContext=-system_u:system_r:tor_t:s0\n",
        );
        let notice = unit
            .diagnostics
            .iter()
            .find(|d| d.message.starts_with("accepted, not enforced"))
            .map(|d| d.message.clone())
            .unwrap_or_default();
        let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.trim() == "Y");
        let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
        assert_eq!(notice.contains("AppArmorProfile="), apparmor, "{notice}");
        assert_eq!(notice.contains("SELinuxContext="), selinux, "{notice}");
    }

    #[test]
    fn legacy_resource_settings_are_warned_about_as_systemd_does() {
        let unit = load_text(
            "l.service",
            "[Service]\nExecStart=/bin/true\nMemoryLimit=1M\nCPUShares=1\n",
        );
        let messages: Vec<&str> = unit
            .diagnostics
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        for m in [
            "Unit uses MemoryLimit=; please use MemoryMax= instead. Support for MemoryLimit= will be removed soon.",
            "Unit uses CPUShares=; please use CPUWeight= instead. Support for CPUShares= will be removed soon.",
            "Invalid CPU shares, ignoring: 1",
        ] {
            assert!(messages.contains(&m), "{m}: {messages:?}");
        }
        assert_eq!(unit.get_u64("Service", "MemoryLimit"), Some(1 << 20));
        assert_eq!(unit.get_str("Service", "CPUShares"), None);
    }

    #[test]
    fn success_action_stands_in_for_exec_start() {
        // systemd-reboot.service: no command, SuccessAction= only.
        let unit = load_text(
            "r.service",
            "[Unit]\nSuccessAction=reboot-force\n[Service]\nType=oneshot\n",
        );
        assert_eq!(unit.load_state, LoadState::Loaded, "{:?}", unit.diagnostics);
        let unit = load_text("n.service", "[Unit]\nSuccessAction=none\n[Service]\n");
        assert_eq!(unit.load_state, LoadState::BadSetting);
    }

    #[test]
    fn bus_name_without_type_makes_a_dbus_service() {
        let unit = load_text(
            "b.service",
            "[Service]\nBusName=org.example.B\nExecStop=/bin/true\n",
        );
        assert!(
            unit.diagnostics
                .iter()
                .any(|d| d.message.contains("only allowed for Type=oneshot")),
            "{:?}",
            unit.diagnostics
        );
    }

    #[test]
    fn exec_directories_are_simplified_and_checked() {
        // irqbalance.service: RuntimeDirectory=irqbalance/ -> irqbalance.
        let unit = load_text(
            "d.service",
            "[Service]\nExecStart=/bin/true\nRuntimeDirectory=irqbalance/ a//b/./c x/:y/ /abs ../up\n",
        );
        let dirs: Vec<&str> = unit
            .entries("Service", "RuntimeDirectory")
            .iter()
            .filter_map(|(v, _)| match v {
                Value::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(dirs, ["irqbalance", "a/b/c", "x:y"]);
        assert_eq!(
            unit.diagnostics
                .iter()
                .filter(|d| d.message.contains("path is not valid"))
                .count(),
            2
        );
    }

    #[test]
    fn path_conditions_are_simplified_and_absolute() {
        // systemd-sysctl.service: ConditionPathIsReadWrite=/proc/sys/net/.
        let unit = load_text(
            "c.service",
            "[Unit]\nConditionPathIsReadWrite=/proc/sys/net/\nAssertPathExists=!//etc/./x/\nConditionPathExists=relative\nConditionHost=a/\n[Service]\nExecStart=/bin/true\n",
        );
        let arg = |key: &str| match unit.get("Unit", key) {
            Some(Value::Condition { argument, .. }) => argument.clone(),
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(arg("ConditionPathIsReadWrite"), "/proc/sys/net");
        assert_eq!(arg("AssertPathExists"), "/etc/x");
        assert_eq!(arg("ConditionHost"), "a/");
        assert!(unit.get("Unit", "ConditionPathExists").is_none());
    }

    #[test]
    fn a_later_environment_assignment_replaces_the_earlier_in_place() {
        // A package unit's Environment=PRINTD_NAME=printd under NixOS's
        // overrides.conf with Environment="PRINTD_NAME=flint's printd":
        // the dump lists one PRINTD_NAME, the drop-in's, where the first was.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("e.service"),
            "[Service]\nExecStart=/bin/true\nEnvironment=A=1 B=2 A=3\nEnvironment=C=4\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("e.service.d")).unwrap();
        std::fs::write(
            dir.path().join("e.service.d/overrides.conf"),
            "[Service]\nEnvironment=\"B=drop-in\"\n",
        )
        .unwrap();
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        let unit = load(&search, &"e.service".parse().unwrap());
        let env: Vec<(String, u32)> = unit
            .entries("Service", "Environment")
            .iter()
            .map(|(v, o)| match v {
                Value::Env(n, v) => (format!("{n}={v}"), o.line),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            env,
            [
                ("A=3".to_string(), 3),
                ("B=drop-in".to_string(), 2),
                ("C=4".to_string(), 4)
            ]
        );
    }

    #[test]
    fn paths_and_working_directory_are_simplified() {
        let unit = load_text(
            "p.service",
            "[Service]\nExecStart=/bin/true\nPIDFile=/run//p/\nWorkingDirectory=-/srv/./www/\n",
        );
        assert_eq!(
            unit.get("Service", "PIDFile"),
            Some(&Value::Path(PathBuf::from("/run/p")))
        );
        assert_eq!(
            unit.get("Service", "WorkingDirectory"),
            Some(&Value::WorkingDirectory {
                path: "/srv/www".into(),
                optional: true
            })
        );
    }

    /// What systemd 252's dump prints for these lines (`systemd --test`).
    #[test]
    fn scheduling_settings_fold_in_the_order_written() {
        let show = |body: &str| {
            let u = load_text(
                "s.service",
                &format!("[Service]\nExecStart=/bin/true\n{body}"),
            );
            let warnings: Vec<String> = u.diagnostics.iter().map(|d| d.message.clone()).collect();
            let get = |k| u.get("Service", k).map(|v| v.to_json().to_string());
            (
                [
                    get("IOSchedulingClass"),
                    get("IOSchedulingPriority"),
                    get("CPUSchedulingPolicy"),
                    get("CPUSchedulingPriority"),
                ],
                warnings,
            )
        };
        let s = |v: &str| Some(v.to_string());
        // A class keeps the default priority 4; numbers name classes.
        assert_eq!(
            show("IOSchedulingClass=1\n").0,
            [s("\"realtime\""), s("4"), None, None]
        );
        // `none` is best-effort at 4, whatever the priority was.
        assert_eq!(
            show("IOSchedulingPriority=3\nIOSchedulingClass=none\n").0,
            [s("\"best-effort\""), s("4"), None, None]
        );
        assert_eq!(
            show("IOSchedulingClass=idle\nIOSchedulingPriority=5\n").0,
            [s("\"idle\""), s("5"), None, None]
        );
        // An empty assignment of either resets both.
        assert_eq!(
            show("IOSchedulingClass=idle\nIOSchedulingPriority=\n").0,
            [None, None, None, None]
        );
        // The policy clamps the priority into its range ...
        assert_eq!(
            show("CPUSchedulingPriority=50\nCPUSchedulingPolicy=other\n").0,
            [None, None, s("\"other\""), s("0")]
        );
        assert_eq!(
            show("CPUSchedulingPolicy=2\n").0,
            [None, None, s("\"rr\""), s("1")]
        );
        // ... but a later priority is only checked against 0..99.
        assert_eq!(
            show("CPUSchedulingPolicy=fifo\nCPUSchedulingPriority=0\n").0,
            [None, None, s("\"fifo\""), s("0")]
        );
        assert_eq!(
            show("CPUSchedulingPolicy=fifo\nCPUSchedulingPriority=5\nCPUSchedulingPolicy=\n").0,
            [None, None, None, None]
        );
        let (values, warnings) =
            show("CPUSchedulingPolicy=fifo\nCPUSchedulingPriority=5\nCPUSchedulingPriority=\n");
        assert_eq!(values, [None, None, s("\"fifo\""), s("5")]);
        assert_eq!(
            warnings,
            ["Failed to parse CPU scheduling priority, ignoring: "]
        );
        let (_, warnings) = show(
            "Nice=25\nIOSchedulingPriority=8\nCPUSchedulingPriority=100\nCPUAffinity=abc\n\
             Personality=bogus\nCoredumpFilter=bogus\nNice=abc\nOOMScoreAdjust=1001\n\
             TimerSlackNSec=abc\nCPUSchedulingPolicy=bogus\nIOSchedulingClass=9\n",
        );
        assert_eq!(
            warnings,
            [
                "Nice priority out of range, ignoring: 25",
                "Failed to parse IO priority, ignoring: 8",
                "CPU scheduling priority is out of range, ignoring: 100",
                "Failed to parse CPU affinity 'abc'",
                "Failed to parse personality, ignoring: bogus",
                "Failed to parse the CoredumpFilter=bogus, ignoring: Invalid argument",
                "Failed to parse nice priority 'abc', ignoring: Invalid argument",
                "OOM score adjust value out of range, ignoring: 1001",
                "Failed to parse nsec value, ignoring: abc",
                "Failed to parse CPU scheduling policy, ignoring: bogus",
                "Failed to parse IO scheduling class, ignoring: 9",
            ]
        );
    }

    #[test]
    fn cpu_affinity_adds_up_and_other_process_settings_normalise() {
        let u = load_text(
            "a.service",
            "[Service]\nExecStart=/bin/true\nCPUAffinity=0 2-3\nCPUAffinity=5,7\n\
             TimerSlackNSec=50us\nSecureBits=keep-caps noroot\n\
             CoredumpFilter=default private-huge 0x200\nPersonality=x86-64\n",
        );
        let get = |k| u.get("Service", k).cloned();
        assert_eq!(get("CPUAffinity"), Some(Value::Str("0 2-3 5 7".into())));
        assert_eq!(get("TimerSlackNSec"), Some(Value::U64(50_000)));
        assert_eq!(
            get("SecureBits"),
            Some(Value::Str("keep-caps noroot".into()))
        );
        assert_eq!(get("CoredumpFilter"), Some(Value::Str("0x233".into())));
        let reset = load_text(
            "r.service",
            "[Service]\nExecStart=/bin/true\nCPUAffinity=0-1 3\nCPUAffinity=\nCPUAffinity=0\n\
             TimerSlackNSec=1s\nTimerSlackNSec=infinity\n",
        );
        assert_eq!(
            reset.get("Service", "CPUAffinity"),
            Some(&Value::Str("0".into()))
        );
        assert_eq!(reset.get("Service", "TimerSlackNSec"), None);
        // A reversed range warns but still makes an (empty) set.
        let empty = load_text(
            "e.service",
            "[Service]\nExecStart=/bin/true\nCPUAffinity=3-1\n",
        );
        assert_eq!(
            empty.get("Service", "CPUAffinity"),
            Some(&Value::Str(String::new()))
        );
        assert!(
            empty
                .diagnostics
                .iter()
                .any(|d| d.message == "Range '3-1' is invalid, 3 > 1, ignoring.")
        );
    }
}
