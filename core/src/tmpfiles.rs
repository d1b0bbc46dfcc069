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

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::unit::value::words::{ExtractFlags, cunescape, extract_first_word};

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
    let mut dirs = Vec::new();
    dirs.extend(config.map(|c| c.join("user-tmpfiles.d")));
    dirs.extend(runtime.map(|r| r.join("user-tmpfiles.d")));
    dirs.extend(data.map(|d| d.join("user-tmpfiles.d")));
    dirs.push(PathBuf::from("/usr/local/share/user-tmpfiles.d"));
    dirs.push(PathBuf::from("/usr/share/user-tmpfiles.d"));
    dirs
}

/// The `*.conf` files of `dirs` (below `root`), ordered by file name, each
/// name taken from the first directory that has it; a file linked to
/// /dev/null masks the name.
pub fn config_files(root: &Path, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut by_name: HashMap<std::ffi::OsString, PathBuf> = HashMap::new();
    for dir in dirs {
        let dir = reroot(root, dir);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.as_bytes().ends_with(b".conf") {
                continue;
            }
            by_name.entry(name).or_insert_with(|| e.path());
        }
    }
    let mut names: Vec<_> = by_name.into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    names
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| fs::read_link(p).map_or(true, |t| t != Path::new("/dev/null")))
        .collect()
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
    item.path = normalize(Path::new(&path));
    let column = |i: usize| fields.get(i).filter(|f| f.as_str() != "-").cloned();
    if let Some(m) = column(2) {
        item.mode = Some(parse_mode(&m)?);
    }
    item.user = column(3).map(owner_spec);
    item.group = column(4).map(owner_spec);
    // The age (column 5) is for cleaning, which flint does not do.
    if !rest.is_empty() && (rest != "-" || matches!(kind, 'f' | 'F' | 'w')) {
        let mut arg = rest.to_owned();
        if matches!(kind, 'L' | 'C' | 'f' | 'F' | 'w') {
            arg = expand(&arg, user)?;
        }
        if matches!(kind, 'f' | 'F' | 'w') {
            arg = if base64 {
                String::from_utf8(decode_base64(&arg)?)
                    .map_err(|_| "the base64 argument is not UTF-8".to_owned())?
            } else {
                cunescape(&arg, true).map_err(|e| format!("bad escape in the argument: {e}"))?
            };
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

fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err("invalid base64 argument".into()),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    Ok(out)
}

/// `a//b/./c/` as `a/b/c`.
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
    /// The user's lines (`--user`): owners default to the caller.
    pub user: bool,
}

/// What an application did: one message per problem.
#[derive(Debug, Default)]
pub struct Report {
    pub applied: usize,
    pub errors: Vec<String>,
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
    let mut seen_create: HashMap<&Path, &str> = HashMap::new();
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
                report.skipped.push(format!(
                    "{}: duplicate line for path {}, {first} wins",
                    item.origin,
                    item.path.display()
                ));
                continue;
            }
            seen_create.insert(&item.path, &item.origin);
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
    for item in order.into_iter().flat_map(|k| groups[k].1.iter().copied()) {
        let target = reroot(&root, &item.path);
        let result = if opts.create {
            create(item, &target, &root)
        } else {
            Ok(())
        };
        let result = result.and_then(|()| {
            if opts.remove {
                remove(item, &target)
            } else {
                Ok(())
            }
        });
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

enum Problem {
    Skip(String),
    Fail(String),
}

fn fail(what: &str, path: &Path, e: impl std::fmt::Display) -> Problem {
    Problem::Fail(format!("{what} {}: {e}", path.display()))
}

fn create(item: &Item, target: &Path, root: &Path) -> Result<(), Problem> {
    match item.kind {
        'd' | 'D' | 'v' | 'q' | 'Q' => {
            let existed = target.is_dir();
            if !existed {
                if item.replace_wrong_type {
                    remove_any(target);
                }
                make_parents(target)?;
                match fs::create_dir(target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && target.is_dir() => {}
                    Err(e) => return Err(fail("cannot create directory", target, e)),
                }
            }
            fix(item, target, !existed, 0o755)
        }
        'f' | 'F' => {
            let truncate = item.plus || item.kind == 'F';
            let existed = fs::symlink_metadata(target).is_ok();
            if existed && !target.is_file() {
                if item.replace_wrong_type {
                    remove_any(target);
                } else {
                    return Err(fail("not a regular file:", target, "left alone"));
                }
            }
            let existed = target.is_file();
            if !existed || truncate {
                make_parents(target)?;
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(target)
                    .map_err(|e| fail("cannot create", target, e))?;
                if let Some(a) = &item.argument {
                    f.write_all(a.as_bytes())
                        .map_err(|e| fail("cannot write", target, e))?;
                }
            }
            fix(item, target, !existed, 0o644)
        }
        'w' => {
            let text = item.argument.as_deref().unwrap_or_default();
            for p in glob(target) {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .append(item.plus)
                    .open(&p);
                match f {
                    Ok(mut f) => f
                        .write_all(text.as_bytes())
                        .map_err(|e| fail("cannot write", &p, e))?,
                    // Only existing files are written to.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(fail("cannot open", &p, e)),
                }
            }
            Ok(())
        }
        'p' => {
            if item.plus {
                remove_any(target);
            }
            let existed = fs::symlink_metadata(target).is_ok();
            if !existed {
                make_parents(target)?;
                nix::unistd::mkfifo(target, nix::sys::stat::Mode::from_bits_truncate(0o644))
                    .map_err(|e| fail("cannot create FIFO", target, e))?;
            }
            fix(item, target, !existed, 0o644)
        }
        'L' => {
            let dest = match &item.argument {
                Some(a) => PathBuf::from(a),
                None => Path::new("/usr/share/factory")
                    .join(item.path.strip_prefix("/").unwrap_or(item.path.as_path())),
            };
            if fs::read_link(target).is_ok_and(|current| current == dest) {
                return Ok(());
            }
            if fs::symlink_metadata(target).is_ok() {
                if item.plus || item.replace_wrong_type {
                    remove_any(target);
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
            chown_opt(item, target, true, false)
        }
        'c' | 'b' => {
            if item.plus {
                remove_any(target);
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
                    nix::sys::stat::Mode::from_bits_truncate(0o644),
                    nix::sys::stat::makedev(major, minor),
                )
                .map_err(|e| fail("cannot create device node", target, e))?;
            }
            fix(item, target, !existed, 0o644)
        }
        'C' => {
            let source = match &item.argument {
                Some(a) => reroot(root, Path::new(a)),
                None => reroot(
                    root,
                    &Path::new("/usr/share/factory")
                        .join(item.path.strip_prefix("/").unwrap_or(item.path.as_path())),
                ),
            };
            let exists = fs::symlink_metadata(target).is_ok();
            let empty_dir =
                target.is_dir() && fs::read_dir(target).is_ok_and(|mut d| d.next().is_none());
            if exists && !empty_dir && !item.plus {
                return Ok(());
            }
            if !source.exists() {
                // As systemd: nothing to copy is not a failure.
                return Ok(());
            }
            make_parents(target)?;
            copy_tree(&source, target).map_err(|e| fail("cannot copy to", target, e))?;
            Ok(())
        }
        'e' | 'z' | 'Z' => {
            for p in glob(target) {
                if fs::symlink_metadata(&p).is_err() || (item.kind == 'e' && !p.is_dir()) {
                    continue;
                }
                fix(item, &p, false, 0)?;
                if item.kind == 'Z' && p.is_dir() && !p.is_symlink() {
                    for sub in walk(&p) {
                        fix(item, &sub, false, 0)?;
                    }
                }
            }
            Ok(())
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
                let r = if p.is_dir() && !p.is_symlink() {
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
                remove_any(&p);
            }
            Ok(())
        }
        'D' => {
            if let Ok(entries) = fs::read_dir(target) {
                for e in entries.flatten() {
                    remove_any(&e.path());
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn remove_any(p: &Path) {
    if p.is_dir() && !p.is_symlink() {
        let _ = fs::remove_dir_all(p);
    } else {
        let _ = fs::remove_file(p);
    }
}

/// Creates the missing parents of `p` (mode 0755, as systemd does).
fn make_parents(p: &Path) -> Result<(), Problem> {
    if let Some(parent) = p.parent()
        && !parent.is_dir()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| fail("cannot create parent directory", parent, e))?;
    }
    Ok(())
}

use std::os::unix::fs::DirBuilderExt;

/// Applies the mode and owners of `item` to `p`: on creation, the line's
/// mode or `default_mode` (when not 0); on an existing node, the mode and
/// owners the line gives, except those marked `:` (only at creation).
fn fix(item: &Item, p: &Path, created: bool, default_mode: u32) -> Result<(), Problem> {
    let meta = fs::symlink_metadata(p).map_err(|e| fail("cannot stat", p, e))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = match item.mode {
        Some(m) if !m.only_create || created => Some(m.bits),
        Some(_) => None,
        None if created && default_mode != 0 => Some(default_mode),
        None => None,
    };
    if let Some(mut bits) = mode {
        if item.mode.is_some_and(|m| m.masked) && !created {
            bits = masked_mode(bits, meta.mode(), meta.is_dir());
        }
        if meta.mode() & 0o7777 != bits {
            fs::set_permissions(p, fs::Permissions::from_mode(bits))
                .map_err(|e| fail("cannot set the mode of", p, e))?;
        }
    }
    chown_opt(item, p, created, true)
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

fn chown_opt(item: &Item, p: &Path, created: bool, follow: bool) -> Result<(), Problem> {
    let pick = |o: &Option<OwnerSpec>| {
        o.as_ref()
            .filter(|o| !o.only_create || created)
            .map(|o| o.name.clone())
    };
    let user = pick(&item.user);
    let group = pick(&item.group);
    // Without an owner column, a node flint creates belongs to the caller
    // (root for the system), which it already does.
    if user.is_none() && group.is_none() {
        return Ok(());
    }
    let uid = match user {
        Some(u) => Some(
            lookup_user(&u)
                .ok_or_else(|| Problem::Fail(format!("unknown user {u:?} for {}", p.display())))?,
        ),
        None => None,
    };
    let gid = match group {
        Some(g) => Some(
            lookup_group(&g)
                .ok_or_else(|| Problem::Fail(format!("unknown group {g:?} for {}", p.display())))?,
        ),
        None => None,
    };
    let flag = if follow {
        nix::fcntl::AtFlags::empty()
    } else {
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW
    };
    let meta = fs::symlink_metadata(p).map_err(|e| fail("cannot stat", p, e))?;
    if uid.is_none_or(|u| u == meta.uid()) && gid.is_none_or(|g| g == meta.gid()) {
        return Ok(());
    }
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        uid.map(nix::unistd::Uid::from_raw),
        gid.map(nix::unistd::Gid::from_raw),
        flag,
    )
    .map_err(|e| fail("cannot change the owner of", p, e))
}

fn lookup_user(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

fn lookup_group(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// The existing paths a glob names (`*`, `?`, `[...]` in any component);
/// a path without glob characters names itself.
fn glob(p: &Path) -> Vec<PathBuf> {
    let s = p.as_os_str().as_bytes();
    if !s.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
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
            if !bytes.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
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
