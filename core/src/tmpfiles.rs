//! tmpfiles.d: the files, directories and links a system's packages ask to
//! exist, created as `systemd-tmpfiles --create` does. Under systemd,
//! `systemd-tmpfiles-setup.service` applies them at boot, before any daemon
//! starts; daemons then rely on them (`/run/mysqld` for MariaDB,
//! `/run/postgresql` for PostgreSQL, the directories NixOS's
//! `systemd.tmpfiles.rules` name). `flint tmpfiles` and `flint run
//! --tmpfiles` do the same where systemd is absent.
//!
//! Written by hand: the one crate that parses this format brings a
//! workspace-hack crate and its own string types, applies nothing, and the
//! line grammar is systemd's word splitting, which [`crate::unit::value::words`]
//! already implements. What is applied: `f f+ F w w+ d D e v q Q p p+ L L+
//! c c+ b b+ C C+ z Z` on create, `r R` and `D`'s contents with `--remove`;
//! `x X` exclude nothing here (they matter for cleaning, which flint does not
//! do); extended attributes, file attributes and ACLs (`t T h H a A`) are
//! reported and skipped, and so are lines whose content is a credential
//! (`^`), which only a credential-passing manager has.
//!
//! It runs as root on directories that services own, so it is as careful
//! as systemd's: the directories of a path are resolved inside `--root`
//! (an absolute link starts again at the root) and a link from one
//! non-root user's directory to another user's node is refused; the last
//! component is never followed (files are opened `O_NOFOLLOW`, modes and
//! owners changed through an `O_PATH` descriptor, owners before modes so a
//! chown does not clear set-id bits); removal never follows a link nor
//! enters a file system mounted below; new files get their mode when they
//! are made. Everything is removed before anything is created.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::unit::value::words::{ExtractFlags, cunescape_bytes, extract_first_word};

/// A line that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The mode column: bits, and its `~` (masked by the existing bits) and `:`
/// (only when created) prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeSpec {
    pub bits: u32,
    pub masked: bool,
    pub only_create: bool,
}

/// An owner column: a user or group name or number, and its `:` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSpec {
    pub name: String,
    pub only_create: bool,
}

/// One configuration line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The type letter (`d`, `f`, `L`, ...).
    pub kind: char,
    /// The `+` modifier.
    pub plus: bool,
    /// `!`: only with `--boot`.
    pub boot_only: bool,
    /// `-`: a failure to create is not an error.
    pub ignore_errors: bool,
    /// `=`: an existing node of another type is removed first.
    pub replace_wrong_type: bool,
    pub path: PathBuf,
    pub mode: Option<ModeSpec>,
    pub user: Option<OwnerSpec>,
    pub group: Option<OwnerSpec>,
    pub argument: Option<String>,
    /// What `f`, `F` and `w` lines write: the argument with its escapes
    /// (or base64) decoded.
    pub content: Option<Vec<u8>>,
    /// Where the line was read, for messages.
    pub origin: String,
}

/// The directories tmpfiles.d files are read from, most important first:
/// a file in an earlier one hides the file of the same name in later ones.
pub fn config_dirs(user: bool) -> Vec<PathBuf> {
    if !user {
        return [
            "/etc/tmpfiles.d",
            "/run/tmpfiles.d",
            "/usr/local/lib/tmpfiles.d",
            "/usr/lib/tmpfiles.d",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".local/share")));
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let list = |var: &str, default: &str| -> Vec<PathBuf> {
        let v = std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned());
        v.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| Path::new(d).join("user-tmpfiles.d"))
            .collect()
    };
    // systemd's order: $XDG_CONFIG_DIRS (NixOS puts its rules in
    // /etc/xdg/user-tmpfiles.d), ~/.config, $XDG_RUNTIME_DIR,
    // ~/.local/share, $XDG_DATA_DIRS.
    let mut dirs = list("XDG_CONFIG_DIRS", "/etc/xdg");
    dirs.extend(config.map(|c| c.join("user-tmpfiles.d")));
    dirs.extend(runtime.map(|r| r.join("user-tmpfiles.d")));
    dirs.extend(data.map(|d| d.join("user-tmpfiles.d")));
    dirs.extend(list("XDG_DATA_DIRS", "/usr/local/share:/usr/share"));
    dirs
}

/// The `*.conf` files of `dirs` (below `root`), ordered by file name, each
/// name taken from the first directory that has it; a file linked to
/// /dev/null (or empty) masks the name.
pub fn config_files(root: &Path, dirs: &[PathBuf]) -> Vec<PathBuf> {
    crate::conf_files::list(dirs.iter().map(|d| reroot(root, d)), |name, _| {
        name.as_bytes().ends_with(b".conf")
    })
}

fn reroot(root: &Path, path: &Path) -> PathBuf {
    if root == Path::new("/") {
        return path.to_path_buf();
    }
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Expands the specifiers tmpfiles.d knows (`%%`, `%t`, `%S`, `%C`, `%L`,
/// `%T`, `%V`, `%E`, `%h`, `%u`, `%U`, `%g`, `%G`, the host ones ...).
pub fn expand(s: &str, user: bool) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    // The unit specifiers have no meaning here.
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '%'
            && let Some(n) = chars.next()
            && "iIjJnNpPfyYdsc".contains(n)
        {
            return Err(format!("specifier %{n} is not valid in tmpfiles.d"));
        }
    }
    let unit: crate::unit::name::UnitName = "systemd-tmpfiles-setup.service"
        .parse()
        .map_err(|e| format!("{e}"))?;
    let ctx = crate::unit::specifier::SpecifierContext::new(unit, None, user);
    crate::unit::specifier::expand(s, &ctx, crate::unit::specifier::SpecifierTable::Full)
        .map_err(|e| e.to_string())
}

/// Parses one file's text.
pub fn parse(text: &str, origin: &str, user: bool) -> (Vec<Item>, Vec<ParseError>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line, user) {
            Ok(Some(mut item)) => {
                item.origin = format!("{origin}:{}", n + 1);
                items.push(item);
            }
            Ok(None) => {}
            Err(message) => errors.push(ParseError {
                file: origin.to_owned(),
                line: n + 1,
                message,
            }),
        }
    }
    (items, errors)
}

const KNOWN: &str = "fFwdDevqQpLcbCxXrRzZtThHaA";

fn parse_line(line: &str, user: bool) -> Result<Option<Item>, String> {
    let mut cursor = Some(line);
    let mut fields = Vec::new();
    for _ in 0..6 {
        match extract_first_word(&mut cursor, None, ExtractFlags::UNQUOTE_CUNESCAPE) {
            Ok(Some(w)) => fields.push(w),
            Ok(None) => break,
            Err(e) => return Err(format!("cannot split the line: {e}")),
        }
    }
    let rest = cursor.map(str::trim_start).unwrap_or_default();
    if fields.len() < 2 {
        return Err("a line needs at least a type and a path".into());
    }
    let action = &fields[0];
    let mut chars = action.chars();
    let kind = chars.next().unwrap_or(' ');
    if !KNOWN.contains(kind) {
        return Err(format!("unknown line type '{kind}'"));
    }
    let mut item = Item {
        kind,
        plus: false,
        boot_only: false,
        ignore_errors: false,
        replace_wrong_type: false,
        path: PathBuf::new(),
        mode: None,
        user: None,
        group: None,
        argument: None,
        content: None,
        origin: String::new(),
    };
    let mut base64 = false;
    for m in chars {
        match m {
            '+' => item.plus = true,
            '!' => item.boot_only = true,
            '-' => item.ignore_errors = true,
            '=' => item.replace_wrong_type = true,
            '~' => base64 = true,
            // The content comes from a service credential, which only a
            // credential-passing manager has: as systemd does without the
            // credential, the line is skipped.
            '^' => return Ok(None),
            '$' => {}
            other => return Err(format!("unknown modifier '{other}'")),
        }
    }
    let path = expand(&fields[1], user)?;
    if !path.starts_with('/') {
        return Err(format!("path {path:?} is not absolute"));
    }
    if path.split('/').any(|c| c == "." || c == "..") {
        return Err(format!("path {path:?} is not normalized"));
    }
    item.path = normalize(Path::new(&path));
    // As systemd: paths below the legacy /var/run are below /run (not
    // /var/run itself, which a line may make the link to /run).
    if let Ok(rest) = item.path.strip_prefix("/var/run")
        && !rest.as_os_str().is_empty()
    {
        item.path = Path::new("/run").join(rest);
    }
    let column = |i: usize| fields.get(i).filter(|f| f.as_str() != "-").cloned();
    if let Some(m) = column(2) {
        item.mode = Some(parse_mode(&m)?);
    }
    item.user = column(3).map(owner_spec);
    item.group = column(4).map(owner_spec);
    // The age (column 5) is for cleaning, which flint does not do; it is
    // still checked, as systemd checks it.
    if let Some(age) = column(5) {
        let span = age.strip_prefix('~').unwrap_or(&age);
        crate::unit::value::time::parse_sec(span).map_err(|_| format!("invalid age {age:?}"))?;
    }
    if !rest.is_empty() && (rest != "-" || matches!(kind, 'f' | 'F' | 'w')) {
        let mut arg = rest.to_owned();
        if matches!(kind, 'L' | 'C' | 'f' | 'F' | 'w') {
            arg = expand(&arg, user)?;
        }
        if matches!(kind, 'f' | 'F' | 'w') {
            // The content may be any bytes (`\xff`, or base64 of binary data).
            item.content = Some(if base64 {
                crate::service::exec::decode_base64(&arg)
                    .ok_or_else(|| "invalid base64 argument".to_owned())?
            } else {
                cunescape_bytes(arg.as_bytes(), true, false)
                    .map_err(|e| format!("bad escape in the argument: {e}"))?
            });
        }
        item.argument = Some(arg);
    }
    if kind == 'w' && item.argument.is_none() {
        return Err("w needs an argument".into());
    }
    if matches!(kind, 'c' | 'b') && item.argument.is_none() {
        return Err(format!("{kind} needs a device number (MAJOR:MINOR)"));
    }
    Ok(Some(item))
}

fn owner_spec(s: String) -> OwnerSpec {
    match s.strip_prefix(':') {
        Some(rest) => OwnerSpec {
            name: rest.to_owned(),
            only_create: true,
        },
        None => OwnerSpec {
            name: s,
            only_create: false,
        },
    }
}

fn parse_mode(s: &str) -> Result<ModeSpec, String> {
    let mut spec = ModeSpec {
        bits: 0,
        masked: false,
        only_create: false,
    };
    let mut rest = s;
    loop {
        if let Some(r) = rest.strip_prefix('~') {
            spec.masked = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix(':') {
            spec.only_create = true;
            rest = r;
        } else {
            break;
        }
    }
    spec.bits = u32::from_str_radix(rest, 8)
        .ok()
        .filter(|b| *b <= 0o7777)
        .ok_or_else(|| format!("invalid mode {s:?}"))?;
    Ok(spec)
}

/// `/a//b/c/` as `/a/b/c`.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        if let Component::Normal(n) = c {
            out.push(n);
        }
    }
    out
}

/// What to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Create what the lines ask for (`--create`).
    pub create: bool,
    /// Remove what `r`, `R` and `D` lines name (`--remove`).
    pub remove: bool,
    /// Also the `!` lines.
    pub boot: bool,
    /// Only paths below one of these (all when empty).
    pub prefixes: Vec<PathBuf>,
    /// No paths below these.
    pub exclude_prefixes: Vec<PathBuf>,
    /// Paths are below this directory (`/` by default).
    pub root: Option<PathBuf>,
    /// The user's configuration (`--user`): the user's directories, and
    /// specifiers resolved for the user.
    pub user: bool,
}

/// What an application did: one message per problem.
#[derive(Debug, Default)]
pub struct Report {
    pub applied: usize,
    /// What could not be created, written or removed.
    pub errors: Vec<String>,
    /// Lines that name what does not exist here (an unknown user or
    /// group): configuration errors, as systemd reports them when parsing.
    pub invalid: Vec<String>,
    pub skipped: Vec<String>,
}

/// Reads and parses `files`; parse errors are returned beside the items.
pub fn load(files: &[PathBuf], user: bool) -> (Vec<Item>, Vec<String>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match fs::read_to_string(f) {
            Ok(text) => {
                let (i, e) = parse(&text, &f.display().to_string(), user);
                items.extend(i);
                errors.extend(e.into_iter().map(|e| e.to_string()));
            }
            Err(e) => errors.push(format!("{}: {e}", f.display())),
        }
    }
    (items, errors)
}

/// What reading and applying a configuration came to.
#[derive(Debug)]
pub struct Outcome {
    /// Configuration files read.
    pub files: usize,
    /// Lines (or files) that could not be read.
    pub parse_errors: Vec<String>,
    pub report: Report,
}

/// What `flint tmpfiles` and `flint run --tmpfiles` do: reads `files`, or
/// when none are given every configuration file of [`config_dirs`] (below
/// the root), and applies them.
pub fn run(opts: &Options, files: &[PathBuf]) -> Outcome {
    let files = if files.is_empty() {
        let root = opts.root.clone().unwrap_or_else(|| PathBuf::from("/"));
        config_files(&root, &config_dirs(opts.user))
    } else {
        files.to_vec()
    };
    let (items, parse_errors) = load(&files, opts.user);
    Outcome {
        files: files.len(),
        parse_errors,
        report: apply(&items, opts),
    }
}

/// The types that own their path (systemd's `takes_ownership()`): of two
/// such lines for one path only the first counts. `w` and the adjusting
/// types may accompany them.
fn is_creating(kind: char) -> bool {
    "fFdDvqQpLcbC".contains(kind)
}

fn is_adjusting(kind: char) -> bool {
    "ezZxXrRtThHaA".contains(kind)
}

/// Applies `items` in path order (parents before children). For one path,
/// the first line that creates something wins over later ones (as systemd
/// warns "duplicate line"), and lines that only adjust are applied beside it.
pub fn apply(items: &[Item], opts: &Options) -> Report {
    let mut report = Report::default();
    let mut seen_create: HashMap<&Path, &Item> = HashMap::new();
    let mut chosen: Vec<&Item> = Vec::new();
    for item in items {
        if item.boot_only && !opts.boot {
            continue;
        }
        if !opts.prefixes.is_empty() && !opts.prefixes.iter().any(|p| item.path.starts_with(p)) {
            continue;
        }
        if opts
            .exclude_prefixes
            .iter()
            .any(|p| item.path.starts_with(p))
        {
            continue;
        }
        if is_creating(item.kind) {
            if let Some(first) = seen_create.get(item.path.as_path()) {
                // As systemd: a second line that asks for the same (mode,
                // owners, argument) is applied too; a different one is not.
                let same = first.mode == item.mode
                    && first.user == item.user
                    && first.group == item.group
                    && first.argument == item.argument;
                if !same {
                    report.skipped.push(format!(
                        "{}: duplicate line for path {}, {} wins",
                        item.origin,
                        item.path.display(),
                        first.origin
                    ));
                    continue;
                }
            } else {
                seen_create.insert(&item.path, item);
            }
        }
        chosen.push(item);
    }
    // As systemd: the lines of one path form a group, in the order the path
    // first appears, the line that creates first; before a group, the
    // group of its nearest ancestor path is applied.
    let mut groups: Vec<(&Path, Vec<&Item>)> = Vec::new();
    let mut index: HashMap<&Path, usize> = HashMap::new();
    for item in chosen {
        if let Some(&k) = index.get(item.path.as_path()) {
            groups[k].1.push(item);
        } else {
            index.insert(&item.path, groups.len());
            groups.push((&item.path, vec![item]));
        }
    }
    for (_, g) in &mut groups {
        g.sort_by_key(|i| is_adjusting(i.kind));
    }
    let mut order: Vec<usize> = Vec::new();
    let mut done = vec![false; groups.len()];
    for (start, (path, _)) in groups.iter().enumerate() {
        let mut chain = vec![start];
        let mut at = *path;
        while let Some(parent) = at.parent() {
            if let Some(&k) = index.get(parent) {
                chain.push(k);
            }
            at = parent;
        }
        for k in chain.into_iter().rev() {
            if !done[k] {
                done[k] = true;
                order.push(k);
            }
        }
    }
    let root = opts.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let users = Accounts::of(&root);
    let items: Vec<(&Item, Owners)> = order
        .into_iter()
        .flat_map(|k| groups[k].1.iter().copied())
        .filter_map(|item| match users.owners(item) {
            Ok(o) => Some((item, o)),
            Err(e) => {
                report.invalid.push(format!("{}: {e}", item.origin));
                None
            }
        })
        .collect();
    // As systemd: everything is removed before anything is created.
    let mut results: Vec<Result<(), Problem>> = vec![Ok(()); items.len()];
    for (pass, wanted) in [(0, opts.remove), (1, opts.create)] {
        if !wanted {
            continue;
        }
        for ((item, owners), result) in items.iter().zip(results.iter_mut()) {
            if result.is_err() {
                continue;
            }
            *result = resolve(&root, &item.path).and_then(|target| {
                if pass == 0 {
                    remove(item, &target)
                } else {
                    create(item, owners, &target, &root)
                }
            });
        }
    }
    for ((item, _), result) in items.iter().zip(results) {
        match result {
            Ok(()) => report.applied += 1,
            Err(Problem::Skip(why)) => report.skipped.push(format!("{}: {why}", item.origin)),
            Err(Problem::Fail(why)) if item.ignore_errors => {
                report
                    .skipped
                    .push(format!("{}: {why} (ignored, '-')", item.origin));
            }
            Err(Problem::Fail(why)) => report.errors.push(format!("{}: {why}", item.origin)),
        }
    }
    report
}

#[derive(Clone)]
enum Problem {
    Skip(String),
    Fail(String),
}

/// The owners a line asks for, resolved: `(uid, only at creation)`.
#[derive(Clone, Copy, Default)]
struct Owners {
    uid: Option<(u32, bool)>,
    gid: Option<(u32, bool)>,
}

impl Owners {
    /// The uid and gid to set on a node just `created` or already there.
    fn wanted(&self, created: bool) -> (Option<u32>, Option<u32>) {
        let pick =
            |o: Option<(u32, bool)>| o.filter(|(_, only)| !only || created).map(|(id, _)| id);
        (pick(self.uid), pick(self.gid))
    }
}

/// The users and groups of the root: the host's (NSS) for `/`, otherwise
/// the root's own /etc/passwd and /etc/group, as systemd-tmpfiles --root.
enum Accounts {
    Host,
    Files {
        users: HashMap<String, u32>,
        groups: HashMap<String, u32>,
    },
}

impl Accounts {
    fn of(root: &Path) -> Accounts {
        if root == Path::new("/") {
            return Accounts::Host;
        }
        let table = |file: &str| -> HashMap<String, u32> {
            fs::read_to_string(root.join("etc").join(file))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let id = f.nth(1)?.parse().ok()?;
                    Some((name.to_owned(), id))
                })
                .collect()
        };
        Accounts::Files {
            users: table("passwd"),
            groups: table("group"),
        }
    }

    fn id(&self, name: &str, group: bool) -> Option<u32> {
        if let Ok(n) = name.parse::<u32>() {
            return Some(n);
        }
        match self {
            Accounts::Host if group => nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw()),
            Accounts::Host => nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw()),
            Accounts::Files { users, groups } => {
                if group { groups } else { users }.get(name).copied()
            }
        }
    }

    fn owners(&self, item: &Item) -> Result<Owners, String> {
        let one = |spec: &Option<OwnerSpec>, group: bool| -> Result<Option<(u32, bool)>, String> {
            match spec {
                None => Ok(None),
                Some(o) => self
                    .id(&o.name, group)
                    .map(|id| Some((id, o.only_create)))
                    .ok_or_else(|| {
                        format!(
                            "unknown {} {:?}",
                            if group { "group" } else { "user" },
                            o.name
                        )
                    }),
            }
        };
        Ok(Owners {
            uid: one(&item.user, false)?,
            gid: one(&item.group, true)?,
        })
    }
}

/// Where `path` of the configuration is below `root`, the symlinks of its
/// directories followed inside `root` (a link to an absolute path starts
/// again at `root`), as systemd's `chase()` with `CHASE_PREFIX_ROOT` and
/// `CHASE_SAFE`: the last component is not followed, and a link in a
/// directory of one non-root user that leads to a node of another user is
/// refused (the way a service user could otherwise make root change a file
/// that is not theirs).
fn resolve(root: &Path, path: &Path) -> Result<PathBuf, Problem> {
    use std::collections::VecDeque;
    let mut done = root.to_path_buf();
    let mut todo: VecDeque<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    // (components left when a link's target has been consumed, the uid of
    // the directory that held the link)
    let mut checks: Vec<(usize, u32)> = Vec::new();
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            if done != root {
                done.pop();
            }
        } else {
            let next = done.join(&c);
            if todo.is_empty() {
                return Ok(next);
            }
            match fs::symlink_metadata(&next) {
                Err(_) => {
                    let mut p = next;
                    p.extend(todo);
                    return Ok(p);
                }
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > 32 {
                        return Err(fail(
                            "cannot resolve",
                            path,
                            "too many levels of symbolic links",
                        ));
                    }
                    let target =
                        fs::read_link(&next).map_err(|e| fail("cannot read link", &next, e))?;
                    let dir_uid = fs::symlink_metadata(&done).map_or(0, |m| m.uid());
                    checks.push((todo.len(), dir_uid));
                    if target.is_absolute() {
                        done = root.to_path_buf();
                    }
                    for part in target.components().rev() {
                        match part {
                            Component::Normal(n) => todo.push_front(n.to_owned()),
                            Component::ParentDir => todo.push_front("..".into()),
                            _ => {}
                        }
                    }
                }
                Ok(_) => done = next,
            }
        }
        while let Some(&(left, dir_uid)) = checks.last() {
            if todo.len() > left {
                break;
            }
            checks.pop();
            let uid = fs::symlink_metadata(&done).map_or(0, |m| m.uid());
            if dir_uid != 0 && dir_uid != uid {
                return Err(fail(
                    "refusing",
                    path,
                    "a symbolic link of one user leads to a node of another (unsafe transition)",
                ));
            }
        }
    }
    Ok(done)
}

/// Where `L` and `C` lines without an argument take their source from.
fn factory(path: &Path) -> PathBuf {
    Path::new("/usr/share/factory").join(path.strip_prefix("/").unwrap_or(path))
}

fn fail(what: &str, path: &Path, e: impl std::fmt::Display) -> Problem {
    Problem::Fail(format!("{what} {}: {e}", path.display()))
}

fn create(item: &Item, owners: &Owners, target: &Path, root: &Path) -> Result<(), Problem> {
    match item.kind {
        'd' | 'D' | 'v' | 'q' | 'Q' => {
            let existing = fs::symlink_metadata(target).ok();
            let existed = existing.as_ref().is_some_and(fs::Metadata::is_dir);
            if !existed {
                if existing.is_some() {
                    if item.replace_wrong_type {
                        remove_tree(target);
                    } else {
                        return Err(fail("not a directory:", target, "left alone"));
                    }
                }
                make_parents(target)?;
                match fs::create_dir(target) {
                    Ok(()) => {}
                    Err(e)
                        if e.kind() == std::io::ErrorKind::AlreadyExists && is_real_dir(target) => {
                    }
                    Err(e) => return Err(fail("cannot create directory", target, e)),
                }
            }
            fix(item, owners, target, !existed, Some(0o755))
        }
        'f' | 'F' => {
            let truncate = item.plus || item.kind == 'F';
            let existing = fs::symlink_metadata(target).ok();
            if existing.as_ref().is_some_and(|m| !m.is_file()) {
                if item.replace_wrong_type {
                    remove_tree(target);
                } else {
                    return Err(fail("not a regular file:", target, "left alone"));
                }
            }
            let existed = fs::symlink_metadata(target).is_ok_and(|m| m.is_file());
            if !existed || truncate {
                make_parents(target)?;
                // Never through a link; a new file is made with its mode
                // (the umask can only take bits away), so its content is
                // never readable by more than the line allows.
                let mode = item.mode.map_or(0o644, |m| m.bits);
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(mode)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(target)
                    .map_err(|e| fail("cannot create", target, e))?;
                if let Some(a) = &item.content {
                    f.write_all(a)
                        .map_err(|e| fail("cannot write", target, e))?;
                }
            }
            fix(item, owners, target, !existed, Some(0o644))
        }
        'w' => {
            let text = item.content.as_deref().unwrap_or_default();
            for p in glob(target) {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .append(item.plus)
                    .open(&p);
                match f {
                    Ok(mut f) => f.write_all(text).map_err(|e| fail("cannot write", &p, e))?,
                    // Only existing files are written to.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(fail("cannot open", &p, e)),
                }
            }
            Ok(())
        }
        'p' => {
            if item.plus {
                remove_tree(target);
            }
            let existed = fs::symlink_metadata(target).is_ok();
            if !existed {
                make_parents(target)?;
                nix::unistd::mkfifo(target, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| fail("cannot create FIFO", target, e))?;
            }
            fix(item, owners, target, !existed, Some(0o644))
        }
        'L' => {
            let dest = item
                .argument
                .as_ref()
                .map_or_else(|| factory(&item.path), PathBuf::from);
            if fs::read_link(target).is_ok_and(|current| current == dest) {
                return chown(owners, target, false);
            }
            if fs::symlink_metadata(target).is_ok() {
                if item.plus || item.replace_wrong_type {
                    remove_tree(target);
                } else {
                    return Err(Problem::Skip(format!(
                        "{} exists and is not a link to {}, left alone",
                        target.display(),
                        dest.display()
                    )));
                }
            }
            make_parents(target)?;
            std::os::unix::fs::symlink(&dest, target)
                .map_err(|e| fail("cannot create link", target, e))?;
            chown(owners, target, true)
        }
        'c' | 'b' => {
            if item.plus {
                remove_tree(target);
            }
            let existed = fs::symlink_metadata(target).is_ok();
            if !existed {
                let (major, minor) = item
                    .argument
                    .as_deref()
                    .and_then(|a| a.split_once(':'))
                    .and_then(|(a, b)| {
                        Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?))
                    })
                    .ok_or_else(|| {
                        Problem::Fail(format!("invalid device number for {}", target.display()))
                    })?;
                let kind = if item.kind == 'c' {
                    nix::sys::stat::SFlag::S_IFCHR
                } else {
                    nix::sys::stat::SFlag::S_IFBLK
                };
                make_parents(target)?;
                nix::sys::stat::mknod(
                    target,
                    kind,
                    nix::sys::stat::Mode::from_bits_truncate(0o600),
                    nix::sys::stat::makedev(major, minor),
                )
                .map_err(|e| fail("cannot create device node", target, e))?;
            }
            fix(item, owners, target, !existed, Some(0o644))
        }
        'C' => {
            let source = reroot(
                root,
                &item
                    .argument
                    .as_ref()
                    .map_or_else(|| factory(&item.path), PathBuf::from),
            );
            let exists = fs::symlink_metadata(target).is_ok();
            let empty_dir =
                is_real_dir(target) && fs::read_dir(target).is_ok_and(|mut d| d.next().is_none());
            if exists && !empty_dir && !item.plus {
                return Ok(());
            }
            if !source.exists() {
                // As systemd: nothing to copy is not a failure.
                return Ok(());
            }
            make_parents(target)?;
            copy_tree(&source, target).map_err(|e| fail("cannot copy to", target, e))?;
            // The owner columns apply to what was copied, the mode to its top.
            fix(item, owners, target, true, None)?;
            if is_real_dir(target) {
                let owners_only = Item {
                    mode: None,
                    ..item.clone()
                };
                for sub in walk(target) {
                    fix(&owners_only, owners, &sub, true, None)?;
                }
            }
            Ok(())
        }
        'e' | 'z' | 'Z' => {
            let mut first_error = None;
            for p in glob(target) {
                if fs::symlink_metadata(&p).is_err() || (item.kind == 'e' && !is_real_dir(&p)) {
                    continue;
                }
                let mut nodes = vec![p.clone()];
                if item.kind == 'Z' && is_real_dir(&p) {
                    nodes.extend(walk(&p));
                }
                // As systemd, Z goes on past a node it cannot change.
                for n in nodes {
                    if let Err(e) = fix(item, owners, &n, false, None) {
                        first_error.get_or_insert(e);
                    }
                }
            }
            first_error.map_or(Ok(()), Err)
        }
        'x' | 'X' | 'r' | 'R' => Ok(()),
        other => Err(Problem::Skip(format!(
            "'{other}' lines (extended attributes, file attributes, ACLs) are not applied"
        ))),
    }
}

fn remove(item: &Item, target: &Path) -> Result<(), Problem> {
    match item.kind {
        'r' => {
            for p in glob(target) {
                let r = if is_real_dir(&p) {
                    fs::remove_dir(&p)
                } else {
                    fs::remove_file(&p)
                };
                match r {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // A directory that is not empty stays, as with systemd.
                    Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
                    Err(e) => return Err(fail("cannot remove", &p, e)),
                }
            }
            Ok(())
        }
        'R' => {
            for p in glob(target) {
                remove_tree(&p);
            }
            Ok(())
        }
        // The contents of the directory itself, not of what a link names.
        'D' if is_real_dir(target) => {
            remove_contents(target);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether `p` is a directory itself (not a link to one).
fn is_real_dir(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// Removes `p` and what is below it, never following a link and never
/// entering another file system mounted below it.
fn remove_tree(p: &Path) {
    if is_real_dir(p) {
        remove_contents(p);
        let _ = fs::remove_dir(p);
    } else {
        let _ = fs::remove_file(p);
    }
}

/// Removes what is in the directory `dir`, on its file system only: a
/// directory below it with another device is a mount point, and stays.
fn remove_contents(dir: &Path) {
    let Ok(dev) = fs::symlink_metadata(dir).map(|m| m.dev()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() && m.dev() != dev => {}
            Ok(m) if m.is_dir() => {
                remove_contents(&p);
                let _ = fs::remove_dir(&p);
            }
            _ => {
                let _ = fs::remove_file(&p);
            }
        }
    }
}

/// Creates the missing parents of `p`, mode 0755 whatever the umask, as
/// systemd does.
fn make_parents(p: &Path) -> Result<(), Problem> {
    let Some(parent) = p.parent() else {
        return Ok(());
    };
    let missing: Vec<&Path> = parent
        .ancestors()
        .take_while(|a| fs::symlink_metadata(a).is_err())
        .collect();
    for dir in missing.into_iter().rev() {
        match fs::create_dir(dir) {
            Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .map_err(|e| fail("cannot set the mode of", dir, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail("cannot create parent directory", dir, e)),
        }
    }
    if !parent.is_dir() {
        return Err(fail(
            "cannot create parent directory",
            parent,
            "not a directory",
        ));
    }
    Ok(())
}

/// An `O_PATH` descriptor of `p` itself (a link is not followed): what
/// the mode and owners are changed through, so that a node swapped for a
/// link after it was looked at cannot redirect the change.
fn open_path(p: &Path) -> Result<std::os::fd::OwnedFd, Problem> {
    nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| fail("cannot open", p, e))
}

/// Applies the owners, then the mode, of `item` to `p` (owners first: a
/// change of owner clears the set-id bits the mode may ask for). On
/// creation, the line's mode or `default_mode`; on an existing
/// node, the mode and owners the line gives, except those marked `:`.
fn fix(
    item: &Item,
    owners: &Owners,
    p: &Path,
    created: bool,
    default_mode: Option<u32>,
) -> Result<(), Problem> {
    use std::os::fd::AsRawFd;
    let fd = open_path(p)?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| fail("cannot stat", p, e))?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind == libc::S_IFLNK {
        return Ok(());
    }
    let (uid, gid) = owners.wanted(created);
    if uid.is_some_and(|u| u != st.st_uid) || gid.is_some_and(|g| g != st.st_gid) {
        // SAFETY: `fd` is open for the call; the empty path with
        // AT_EMPTY_PATH names the descriptor itself; -1 leaves an id as it is.
        let r = unsafe {
            libc::fchownat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                uid.unwrap_or(u32::MAX),
                gid.unwrap_or(u32::MAX),
                libc::AT_EMPTY_PATH,
            )
        };
        if r != 0 {
            return Err(fail(
                "cannot change the owner of",
                p,
                std::io::Error::last_os_error(),
            ));
        }
    }
    let mode = match item.mode {
        Some(m) if !m.only_create || created => Some(m.bits),
        Some(_) => None,
        None if created => default_mode,
        None => None,
    };
    if let Some(mut bits) = mode {
        let dir = kind == libc::S_IFDIR;
        if item.mode.is_some_and(|m| m.masked) && !created {
            bits = masked_mode(bits, st.st_mode, dir);
        }
        // After a chown the set-id bits are gone: look again.
        let now = nix::sys::stat::fstat(&fd).map_or(st.st_mode, |s| s.st_mode);
        if now & 0o7777 != bits {
            // chmod through the descriptor: /proc/self/fd/N names the node
            // that was opened, not whatever the path names now.
            fs::set_permissions(
                format!("/proc/self/fd/{}", fd.as_raw_fd()),
                fs::Permissions::from_mode(bits),
            )
            .map_err(|e| fail("cannot set the mode of", p, e))?;
        }
    }
    Ok(())
}

/// The owners of a link itself (`L` lines).
fn chown(owners: &Owners, p: &Path, created: bool) -> Result<(), Problem> {
    let (uid, gid) = owners.wanted(created);
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        uid.map(nix::unistd::Uid::from_raw),
        gid.map(nix::unistd::Gid::from_raw),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| fail("cannot change the owner of", p, e))
}

/// systemd's `~` mode: execute, read and write bits the node lacks for
/// everyone stay off; set-id and sticky bits only on directories.
fn masked_mode(mut bits: u32, old: u32, dir: bool) -> u32 {
    if old & 0o111 == 0 {
        bits &= !0o111;
    }
    if old & 0o444 == 0 {
        bits &= !0o444;
    }
    if old & 0o222 == 0 {
        bits &= !0o222;
    }
    if !dir {
        bits &= !0o7000;
    }
    bits
}

/// The existing paths a glob names (`*`, `?`, `[...]` in any component);
/// a path without glob characters names itself.
fn glob(p: &Path) -> Vec<PathBuf> {
    let s = p.as_os_str().as_bytes();
    // `{a,b}` alternatives first (systemd globs with GLOB_BRACE).
    if let Some(alternatives) = expand_braces(s) {
        let mut out = Vec::new();
        for a in alternatives {
            for m in glob(Path::new(std::ffi::OsStr::from_bytes(&a))) {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        return out;
    }
    if !has_glob(s) {
        return vec![p.to_path_buf()];
    }
    let mut found = vec![PathBuf::from("/")];
    for c in p.components() {
        let Component::Normal(part) = c else {
            continue;
        };
        let bytes = part.as_bytes();
        let mut next = Vec::new();
        for base in &found {
            if !has_glob(bytes) {
                let candidate = base.join(part);
                if fs::symlink_metadata(&candidate).is_ok() {
                    next.push(candidate);
                }
                continue;
            }
            let Ok(pattern) = CString::new(bytes) else {
                continue;
            };
            let Ok(entries) = fs::read_dir(base) else {
                continue;
            };
            let mut matched: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| {
                    let Ok(name) = CString::new(e.file_name().as_bytes()) else {
                        return false;
                    };
                    // SAFETY: both arguments are NUL-terminated strings that
                    // live for the call.
                    unsafe { libc::fnmatch(pattern.as_ptr(), name.as_ptr(), libc::FNM_PERIOD) == 0 }
                })
                .map(|e| e.path())
                .collect();
            matched.sort();
            next.extend(matched);
        }
        found = next;
    }
    found
}

fn has_glob(s: &[u8]) -> bool {
    s.iter().any(|c| matches!(c, b'*' | b'?' | b'['))
}

/// The alternatives of the first `{a,b,...}` group of `s` (each with the
/// rest of `s`), or `None` when it has no such group.
fn expand_braces(s: &[u8]) -> Option<Vec<Vec<u8>>> {
    let open = s.iter().position(|&c| c == b'{')?;
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut start = open + 1;
    for (i, &c) in s.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    parts.push(&s[start..i]);
                    if parts.len() < 2 {
                        return None;
                    }
                    return Some(
                        parts
                            .into_iter()
                            .map(|p| [&s[..open], p, &s[i + 1..]].concat())
                            .collect(),
                    );
                }
            }
            b',' if depth == 1 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// Every node below `dir` (not following links).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)?;
    } else if meta.is_dir() {
        if !to.is_dir() {
            fs::create_dir(to)?;
        }
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        for e in fs::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
    } else {
        fs::copy(from, to)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
