//! `flint edit` (and `systemctl edit`): a drop-in, or a whole copy of a unit
//! file, written through the user's editor, as systemd's `systemctl edit`
//! (`systemctl-edit.c` of systemd 252) writes it.
//!
//! - Without `--full` the file is `UNIT.d/override.conf` (or the name
//!   `--drop-in=` gives) in the configuration directory of the scope:
//!   `/etc/systemd/system`, `~/.config/systemd/user`, `/run/...` with
//!   `--runtime`, or the first `--unit-dir`. The editor gets a temporary
//!   file beside it with the drop-in's present text between two marker
//!   lines, and below them every file the unit is read from, commented out.
//!   Only what is between the markers is kept.
//! - With `--full` the editor gets a copy of the unit file, which then
//!   takes the unit file's place in the configuration directory.
//! - A unit without a file is created only with `--force`.
//! - An empty result leaves the file as it was ("canceled"); an editor that
//!   fails (vim's `:cq`) leaves every file as it was.
//!
//! Where flint differs from systemd 252, it is on the side of not losing
//! an edit:
//! - A file read before the configuration directory (flint's own
//!   `/etc/flint/system`, searched first) is edited where it is: a unit
//!   file there with `--full`, a drop-in of the same name there without.
//!   A copy in `/etc/systemd/system` would have no effect.
//! - `--force` on a unit that has no file but a drop-in shows that
//!   drop-in's text, as systemd does since 254.
//! - The written file ends with a newline, as systemd writes it since 253.
//! - Files are handled as bytes: a unit with a Latin-1 comment can be
//!   edited too. The temporary file is private (0600) while the editor has
//!   it, since it shows every drop-in of the unit; the result is written
//!   through a fresh file (mode 0644) renamed into place, so a link put in
//!   the temporary file's place is never followed.
//!
//! The editor is `$SYSTEMD_EDITOR`, `$EDITOR` or `$VISUAL` (the first that
//! is set; split at whitespace), else the first of `editor`, `nano`, `vim`,
//! `vi` found in `$PATH`; it gets every temporary file at once. `--stdin`
//! (systemd 256) takes the new text from standard input instead, for
//! scripts. The caller reloads the running flint afterwards.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::conf_files;
use crate::install::LookupPaths;
use crate::unit::loader::{self, LoadError, SearchPath};
use crate::unit::name::UnitName;

/// The line after which the new text starts.
pub const MARKER_START: &str =
    "### Anything between here and the comment below will become the new contents of the file";
/// The line at which the new text ends.
pub const MARKER_END: &str = "### Lines below this comment will be discarded";

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("Cannot edit units if not on a tty.")]
    NotOnTty,
    #[error("Cannot edit {0}: unit is masked.")]
    Masked(String),
    #[error(
        "No files found for {name}.\nRun '{command} --force --full {name}' to create a new unit."
    )]
    NotFound { name: String, command: String },
    #[error("Cannot edit {name}: {source}")]
    Load { name: String, source: LoadError },
    #[error("Refusing to create \"{run}\" because it would be overridden by \"{path}\" anyway.")]
    Overridden { run: PathBuf, path: PathBuf },
    #[error("--runtime: this scope has no runtime directory (is $XDG_RUNTIME_DIR set?)")]
    NoRuntimeDir,
    #[error("--drop-in= and --full exclude each other: --full edits the unit file itself")]
    DropInWithFull,
    #[error("Invalid drop-in file name \"{0}\".")]
    BadDropIn(String),
    #[error("{0} skipped.")]
    Skipped(String),
    #[error(
        "Cannot edit units, no editor available. Please set either $SYSTEMD_EDITOR, $EDITOR or $VISUAL."
    )]
    NoEditor,
    #[error("Failed to execute {editor}: {source}")]
    Exec {
        editor: String,
        source: std::io::Error,
    },
    #[error("(editor) failed with {0}; nothing was changed.")]
    EditorFailed(std::process::ExitStatus),
    #[error("{what} \"{path}\": {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> EditError + 'a {
    move |source| EditError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// What was asked for besides the units.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Edit a copy of the whole unit file (`--full`).
    pub full: bool,
    /// Create a unit that has no file yet (`--force`).
    pub force: bool,
    /// Write below the runtime directory (`--runtime`).
    pub runtime: bool,
    /// The drop-in's file name (`--drop-in=`); `override.conf` when `None`.
    pub drop_in: Option<String>,
}

impl Options {
    /// The drop-in's file name: `override.conf`, or the given one with
    /// `.conf` added when it does not end so (as systemd 254).
    fn drop_in_name(&self) -> Result<String, EditError> {
        let Some(name) = &self.drop_in else {
            return Ok("override.conf".to_owned());
        };
        if self.full {
            return Err(EditError::DropInWithFull);
        }
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(EditError::BadDropIn(name.clone()));
        }
        Ok(if name.as_bytes().ends_with(b".conf") {
            name.clone()
        } else {
            format!("{name}.conf")
        })
    }
}

/// One file being edited: where it goes and the temporary file the editor
/// gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The file written in the end.
    pub path: PathBuf,
    /// The temporary file beside it.
    pub temp: PathBuf,
    /// Whether `path` is a drop-in (its directory is removed again when
    /// left empty).
    pub drop_in: bool,
}

/// C's whitespace, which systemd's `strstrip()` takes off.
fn is_c_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn strip(mut text: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = text
        && is_c_whitespace(*first)
    {
        text = rest;
    }
    while let [rest @ .., last] = text
        && is_c_whitespace(*last)
    {
        text = rest;
    }
    text
}

fn find(hay: &[u8], needle: &str) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w == needle.as_bytes())
}

/// The text the editor starts with for a drop-in: the drop-in's present
/// text between the markers, then each file the unit is read from
/// (other than the drop-in itself), commented out under its path.
pub fn drop_in_template(
    path: &Path,
    present: Option<&[u8]>,
    sources: &[(PathBuf, Vec<u8>)],
) -> Vec<u8> {
    let present = present.unwrap_or(b"");
    let mut out = format!("### Editing {}\n{MARKER_START}\n\n", path.display()).into_bytes();
    out.extend_from_slice(present);
    if !present.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(MARKER_END.as_bytes());
    for (source, text) in sources {
        if source == path {
            continue;
        }
        out.extend_from_slice(format!("\n\n### {}", source.display()).as_bytes());
        let text = strip(text);
        if !text.is_empty() {
            out.extend_from_slice(b"\n# ");
            for (i, line) in text.split(|b| *b == b'\n').enumerate() {
                if i > 0 {
                    out.extend_from_slice(b"\n# ");
                }
                out.extend_from_slice(line);
            }
        }
    }
    out
}

/// What of an edited file is kept: the text between the markers (from the
/// start, or to the end, where a marker is gone), without whitespace
/// around it and with a final newline; `None` when nothing is left.
pub fn kept_text(edited: &[u8]) -> Option<Vec<u8>> {
    let start = find(edited, MARKER_START).map_or(edited, |i| &edited[i + MARKER_START.len()..]);
    let body = find(start, MARKER_END).map_or(start, |i| &start[..i]);
    let body = strip(body);
    (!body.is_empty()).then(|| {
        let mut v = body.to_vec();
        v.push(b'\n');
        v
    })
}

/// Where a file named `name` in the configuration directory goes:
/// the persistent one, or with `--runtime` the runtime one, which is
/// refused when a persistent file would override it.
fn file_to_edit(lp: &LookupPaths, name: &str, runtime: bool) -> Result<PathBuf, EditError> {
    let path = lp.persistent_config.join(name);
    if !runtime {
        return Ok(path);
    }
    let run = lp
        .runtime_config
        .as_ref()
        .ok_or(EditError::NoRuntimeDir)?
        .join(name);
    if path.symlink_metadata().is_ok() {
        return Err(EditError::Overridden { run, path });
    }
    Ok(run)
}

/// [`conf_files::create_new`], with the path in the error.
fn create_file(path: &Path, text: &[u8], mode: u32) -> Result<(), EditError> {
    conf_files::create_new(path, text, mode).map_err(io("Failed to create temporary file", path))
}

/// Creates `path`'s temporary file with `text` (private: it may show
/// drop-ins that only root may read), and the directories above it.
fn create_temp(path: &Path, text: Option<&[u8]>) -> Result<PathBuf, EditError> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(io("Failed to create directories for", path))?;
    }
    let temp = conf_files::temp_beside(path);
    if let Some(text) = text {
        create_file(&temp, text, 0o600)?;
    }
    Ok(temp)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, EditError> {
    match std::fs::read(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("Failed to read", path)(e)),
    }
}

/// Prepares the files of `names`: checks them, makes each temporary file
/// and returns the list. `confirm` asks whether an existing copy may be
/// overwritten by `--full` (systemctl's `[(y)es, (n)o]` question);
/// `command` names the command for the hint about `--force`.
pub fn prepare(
    lp: &LookupPaths,
    search: &SearchPath,
    names: &[UnitName],
    opts: &Options,
    command: &str,
    confirm: &mut dyn FnMut(&str) -> bool,
) -> Result<Vec<Edit>, EditError> {
    let drop_in = opts.drop_in_name()?;
    let index = loader::UnitIndex::build(search);
    let mut units = Vec::new();
    for name in names {
        let sources = match index.resolve(name) {
            Ok(s) if s.masked => return Err(EditError::Masked(name.to_string())),
            Ok(s) => Some(s),
            Err(LoadError::NotFound(_)) => None,
            Err(source) => {
                return Err(EditError::Load {
                    name: name.to_string(),
                    source,
                });
            }
        };
        units.push((name, sources));
    }
    let mut edits: Vec<Edit> = Vec::new();
    for (name, sources) in units {
        let prepared = prepare_one(
            lp,
            search,
            name,
            sources.as_ref(),
            opts,
            &drop_in,
            command,
            confirm,
        );
        match prepared {
            // A unit named twice (or by an alias and its own name) is
            // edited once.
            Ok(e) if edits.iter().any(|x| x.path == e.path) => discard(std::slice::from_ref(&e)),
            Ok(e) => edits.push(e),
            Err(e) => {
                discard(&edits);
                return Err(e);
            }
        }
    }
    Ok(edits)
}

/// Where the unit files of `dir`'s rank are searched: its position in the
/// search path, `None` when it is not searched.
fn rank(search: &SearchPath, dir: &Path) -> Option<usize> {
    search.dirs.iter().position(|d| d == dir)
}

/// Whether a file in `dir` may be edited in place because it is read
/// before the configuration directory `config`: a directory of
/// configuration, not one of generated or transient units.
fn edit_in_place(lp: &LookupPaths, search: &SearchPath, dir: &Path, config: &Path) -> bool {
    let (Some(here), Some(there)) = (rank(search, dir), rank(search, config)) else {
        return false;
    };
    let generated = lp.generators.iter().any(|g| g == dir)
        || lp.transient.as_deref() == Some(dir)
        || [&lp.persistent_control, &lp.runtime_control]
            .iter()
            .any(|c| c.as_deref() == Some(dir));
    here < there && !generated
}

#[allow(clippy::too_many_arguments)]
fn prepare_one(
    lp: &LookupPaths,
    search: &SearchPath,
    name: &UnitName,
    sources: Option<&loader::UnitSources>,
    opts: &Options,
    drop_in: &str,
    command: &str,
    confirm: &mut dyn FnMut(&str) -> bool,
) -> Result<Edit, EditError> {
    let config = lp
        .config_path(opts.runtime)
        .map_err(|_| EditError::NoRuntimeDir)?;
    let fragment = sources.and_then(|s| s.fragment.as_ref());
    let Some(fragment) = fragment else {
        if !opts.force {
            return Err(EditError::NotFound {
                name: name.to_string(),
                command: command.to_owned(),
            });
        }
        // A new unit from nothing: the editor starts with an empty file,
        // or with the drop-in that is already there.
        if opts.full {
            let path = file_to_edit(lp, name.as_str(), opts.runtime)?;
            let temp = create_temp(&path, None)?;
            return Ok(Edit {
                path,
                temp,
                drop_in: false,
            });
        }
        let path = file_to_edit(lp, &format!("{name}.d/{drop_in}"), opts.runtime)?;
        let present = read_optional(&path)?;
        let temp = match present {
            Some(text) => create_temp(&path, Some(&drop_in_template(&path, Some(&text), &[])))?,
            None => create_temp(&path, None)?,
        };
        return Ok(Edit {
            path,
            temp,
            drop_in: true,
        });
    };
    let sources = sources.expect("a fragment comes with its sources");
    // The unit's own name: an alias leads to the file's unit, and an
    // instance keeps its instance.
    let id = sources.id.to_string();
    if opts.full {
        let fragment_dir = fragment.parent().unwrap_or(Path::new("/"));
        let target = file_to_edit(lp, &id, opts.runtime)?;
        let path = if edit_in_place(lp, search, fragment_dir, config) {
            fragment.clone()
        } else {
            target
        };
        if *fragment != path && path.symlink_metadata().is_ok() {
            let question = format!(
                "\"{}\" already exists. Overwrite with \"{}\"? [(y)es, (n)o] ",
                path.display(),
                fragment.display()
            );
            if !confirm(&question) {
                return Err(EditError::Skipped(id));
            }
        }
        let text = std::fs::read(fragment).map_err(io("Failed to read", fragment))?;
        let temp = create_temp(&path, Some(&text))?;
        return Ok(Edit {
            path,
            temp,
            drop_in: false,
        });
    }
    // A drop-in of this name read before the configuration directory's
    // would hide the one written there: that one is edited instead.
    let shadowing = sources.dropins.iter().find(|d| {
        d.file_name().is_some_and(|n| n == drop_in)
            && d.parent()
                .and_then(Path::parent)
                .is_some_and(|dir| edit_in_place(lp, search, dir, config))
    });
    let target = file_to_edit(lp, &format!("{id}.d/{drop_in}"), opts.runtime)?;
    let path = shadowing.cloned().unwrap_or(target);
    let present = read_optional(&path)?;
    let mut texts = Vec::new();
    for source in std::iter::once(fragment).chain(&sources.dropins) {
        let text = std::fs::read(source).map_err(io("Failed to read", source))?;
        texts.push((source.clone(), text));
    }
    let text = drop_in_template(&path, present.as_deref(), &texts);
    let temp = create_temp(&path, Some(&text))?;
    Ok(Edit {
        path,
        temp,
        drop_in: true,
    })
}

/// The editor's command line for `files`: the candidates in the order they
/// are tried.
pub fn editor_candidates(env: &dyn Fn(&str) -> Option<String>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // The first variable that is set counts, even when empty (which then
    // means the built-in list), as in systemd.
    let chosen = ["SYSTEMD_EDITOR", "EDITOR", "VISUAL"]
        .iter()
        .find_map(|k| env(k));
    if let Some(v) = chosen {
        let words: Vec<String> = v.split_ascii_whitespace().map(str::to_owned).collect();
        if !words.is_empty() {
            out.push(words);
        }
    }
    for name in ["editor", "nano", "vim", "vi"] {
        out.push(vec![name.to_owned()]);
    }
    out
}

/// Runs the editor on every temporary file at once and waits for it. As
/// in systemd, an editor of the variables that cannot be started gives way
/// to the built-in list, whose entries give way only when missing.
pub fn run_editor(edits: &[Edit], env: &dyn Fn(&str) -> Option<String>) -> Result<(), EditError> {
    let candidates = editor_candidates(env);
    let chosen = candidates.len() > 4;
    for (i, candidate) in candidates.iter().enumerate() {
        let mut cmd = std::process::Command::new(&candidate[0]);
        cmd.args(&candidate[1..])
            .args(edits.iter().map(|e| &e.temp));
        match cmd.status() {
            Ok(s) if s.success() => return Ok(()),
            Ok(s) => return Err(EditError::EditorFailed(s)),
            Err(e) if chosen && i == 0 => {
                eprintln!("Failed to execute {}: {e}", candidate[0]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(EditError::Exec {
                    editor: candidate[0].clone(),
                    source,
                });
            }
        }
    }
    Err(EditError::NoEditor)
}

/// Writes standard input's text into every temporary file (`--stdin`).
pub fn fill_from(edits: &[Edit], mut input: impl Read) -> Result<(), EditError> {
    let mut text = Vec::new();
    input
        .read_to_end(&mut text)
        .map_err(io("Failed to read", Path::new("standard input")))?;
    for e in edits {
        let _ = std::fs::remove_file(&e.temp);
        create_file(&e.temp, &text, 0o600)?;
    }
    Ok(())
}

/// How one file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file was written.
    Written(PathBuf),
    /// Nothing was left: the file stays as it was.
    Canceled(PathBuf),
}

/// Puts each edited file in place (what is kept of it; with `--full` the
/// whole text without whitespace around it), then removes the temporary
/// files and drop-in directories left empty. Stops at the first file that
/// cannot be put in place.
pub fn finish(edits: &[Edit]) -> Result<Vec<Outcome>, EditError> {
    let result = finish_inner(edits);
    discard(edits);
    result
}

fn finish_inner(edits: &[Edit]) -> Result<Vec<Outcome>, EditError> {
    let mut out = Vec::new();
    for e in edits {
        let edited = read_optional(&e.temp)?.unwrap_or_default();
        let Some(text) = kept_text(&edited) else {
            out.push(Outcome::Canceled(e.path.clone()));
            continue;
        };
        // A fresh file, renamed into place: never written through a link
        // that took the editor's file's place.
        conf_files::replace(&e.path, &text).map_err(io("Failed to write", &e.path))?;
        out.push(Outcome::Written(e.path.clone()));
    }
    Ok(out)
}

/// Removes the temporary files, and a drop-in directory that is left
/// empty.
pub fn discard(edits: &[Edit]) {
    for e in edits {
        let _ = std::fs::remove_file(&e.temp);
        if e.drop_in
            && let Some(dir) = e.path.parent()
        {
            // Fails, as it should, when the directory has files.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(path: &Path, present: Option<&str>, sources: &[(PathBuf, String)]) -> String {
        let sources: Vec<(PathBuf, Vec<u8>)> = sources
            .iter()
            .map(|(p, t)| (p.clone(), t.clone().into_bytes()))
            .collect();
        String::from_utf8(drop_in_template(path, present.map(str::as_bytes), &sources)).unwrap()
    }

    fn kept(text: &str) -> Option<String> {
        kept_text(text.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn the_template_holds_the_drop_in_between_markers_and_the_sources_commented() {
        let path = Path::new("/etc/systemd/system/a.service.d/override.conf");
        let sources = vec![
            (
                PathBuf::from("/lib/systemd/system/a.service"),
                "[Unit]\nDescription=A\n\n[Service]\nExecStart=/bin/a\n\n".to_owned(),
            ),
            (path.to_path_buf(), "[Service]\nNice=1\n".to_owned()),
            (
                PathBuf::from("/run/systemd/system/a.service.d/empty.conf"),
                "\n".to_owned(),
            ),
        ];
        let t = template(path, Some("[Service]\nNice=1\n"), &sources);
        assert_eq!(
            t,
            format!(
                "### Editing /etc/systemd/system/a.service.d/override.conf\n{MARKER_START}\n\n\
                 [Service]\nNice=1\n\n{MARKER_END}\n\n\
                 ### /lib/systemd/system/a.service\n# [Unit]\n# Description=A\n# \n# [Service]\n# ExecStart=/bin/a\n\n\
                 ### /run/systemd/system/a.service.d/empty.conf"
            )
        );
        // No drop-in yet, and one without a final newline.
        let fresh = template(path, None, &[]);
        assert_eq!(
            fresh,
            format!(
                "### Editing {}\n{MARKER_START}\n\n\n\n{MARKER_END}",
                path.display()
            )
        );
        let unterminated = template(path, Some("[Unit]"), &[]);
        assert!(
            unterminated.contains("\n\n[Unit]\n\n### Lines"),
            "{unterminated}"
        );
    }

    #[test]
    fn only_the_text_between_the_markers_is_kept() {
        let path = Path::new("/x.d/override.conf");
        let t = template(path, None, &[]);
        assert_eq!(kept(&t), None, "untouched: canceled");
        let edited = t.replacen(
            &format!("{MARKER_START}\n\n"),
            &format!("{MARKER_START}\n\n[Service]\nEnvironment=A=1\n   \n"),
            1,
        );
        assert_eq!(
            kept(&edited).as_deref(),
            Some("[Service]\nEnvironment=A=1\n")
        );
        // Markers deleted: from the start, or to the end.
        assert_eq!(
            kept("\n[Service]\nNice=2\n\n### Lines below this comment will be discarded\n# junk")
                .as_deref(),
            Some("[Service]\nNice=2\n")
        );
        assert_eq!(
            kept(&format!("# head\n{MARKER_START}\n[Unit]\n")).as_deref(),
            Some("[Unit]\n")
        );
        // A whole unit (--full) loses only the whitespace around it.
        assert_eq!(
            kept("\n\n[Unit]\nDescription=x\n\n\n").as_deref(),
            Some("[Unit]\nDescription=x\n")
        );
        assert_eq!(kept(" \n\t\n"), None);
    }

    #[test]
    fn the_editor_comes_from_the_first_variable_set() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let first = |vars: &'static [(&'static str, &'static str)]| {
            editor_candidates(&env(vars)).into_iter().next().unwrap()
        };
        assert_eq!(
            first(&[("EDITOR", "vim -u NONE"), ("VISUAL", "emacs")]),
            ["vim", "-u", "NONE"]
        );
        assert_eq!(
            first(&[("SYSTEMD_EDITOR", "ed"), ("EDITOR", "vim")]),
            ["ed"]
        );
        assert_eq!(first(&[("VISUAL", "emacs")]), ["emacs"]);
        // Set but empty: the built-in list, not the next variable.
        assert_eq!(
            first(&[("SYSTEMD_EDITOR", ""), ("EDITOR", "vim")]),
            ["editor"]
        );
        assert_eq!(
            editor_candidates(&env(&[])),
            [["editor"], ["nano"], ["vim"], ["vi"]]
        );
    }

    #[test]
    fn drop_in_names_get_conf_and_must_be_names() {
        let opts = |name: &str, full: bool| Options {
            drop_in: Some(name.to_owned()),
            full,
            ..Options::default()
        };
        assert_eq!(Options::default().drop_in_name().unwrap(), "override.conf");
        assert_eq!(
            opts("10-limits", false).drop_in_name().unwrap(),
            "10-limits.conf"
        );
        assert_eq!(opts("x.conf", false).drop_in_name().unwrap(), "x.conf");
        assert!(matches!(
            opts("../x", false).drop_in_name(),
            Err(EditError::BadDropIn(_))
        ));
        assert!(matches!(
            opts("x", true).drop_in_name(),
            Err(EditError::DropInWithFull)
        ));
    }

    fn tree() -> (tempfile::TempDir, LookupPaths, SearchPath) {
        let dir = tempfile::tempdir().unwrap();
        let vendor = dir.path().join("vendor");
        let config = dir.path().join("config");
        let run = dir.path().join("run");
        for d in [&vendor, &config, &run] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(vendor.join("a.service"), "[Service]\nExecStart=/bin/a\n").unwrap();
        std::fs::write(
            vendor.join("t@.service"),
            "[Service]\nExecStart=/bin/t %i\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("a.service", vendor.join("alias.service")).unwrap();
        std::os::unix::fs::symlink("/dev/null", config.join("m.service")).unwrap();
        let search = SearchPath::from_dirs(vec![config.clone(), run.clone(), vendor], false);
        let mut lp = LookupPaths::system_from(None, &search).unwrap();
        lp.persistent_config = config;
        lp.runtime_config = Some(run);
        (dir, lp, search)
    }

    fn name(n: &str) -> UnitName {
        n.parse().unwrap()
    }

    #[test]
    fn drop_ins_go_under_the_units_own_name_and_the_temp_file_beside_them() {
        let (_d, lp, search) = tree();
        let mut no = |_: &str| false;
        let edits = prepare(
            &lp,
            &search,
            &[name("alias.service"), name("t@x.service")],
            &Options::default(),
            "flint edit",
            &mut no,
        )
        .unwrap();
        let config = &lp.persistent_config;
        assert_eq!(edits[0].path, config.join("a.service.d/override.conf"));
        assert_eq!(edits[1].path, config.join("t@x.service.d/override.conf"));
        for e in &edits {
            assert_eq!(e.temp.parent(), e.path.parent());
            let n = e.temp.file_name().unwrap().to_str().unwrap();
            assert!(
                n.starts_with(".#override.conf") && n.len() == ".#override.conf".len() + 16,
                "{n}"
            );
            let text = std::fs::read_to_string(&e.temp).unwrap();
            assert!(text.starts_with(&format!("### Editing {}\n", e.path.display())));
        }
        assert!(
            std::fs::read_to_string(&edits[1].temp)
                .unwrap()
                .ends_with("\n# [Service]\n# ExecStart=/bin/t %i")
        );
        // Nothing written: the temporary files and the directories go.
        discard(&edits);
        assert!(!config.join("a.service.d").exists());
        assert!(!config.join("t@x.service.d").exists());
    }

    #[test]
    fn masked_missing_and_runtime_overridden_units_are_refused() {
        let (_d, lp, search) = tree();
        let mut no = |_: &str| false;
        let err = |names: &[&str], opts: Options| {
            let names: Vec<UnitName> = names.iter().map(|n| name(n)).collect();
            prepare(&lp, &search, &names, &opts, "flint edit", &mut |_: &str| {
                false
            })
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            err(&["a.service", "m.service"], Options::default()),
            "Cannot edit m.service: unit is masked."
        );
        assert_eq!(
            err(&["a.service", "new.service"], Options::default()),
            "No files found for new.service.\nRun 'flint edit --force --full new.service' to create a new unit."
        );
        // The first unit's temporary file is gone again.
        assert_eq!(std::fs::read_dir(&lp.persistent_config).unwrap().count(), 1);
        std::fs::create_dir_all(lp.persistent_config.join("a.service.d")).unwrap();
        std::fs::write(lp.persistent_config.join("a.service.d/override.conf"), "").unwrap();
        assert!(
            err(
                &["a.service"],
                Options {
                    runtime: true,
                    ..Options::default()
                }
            )
            .starts_with("Refusing to create")
        );
        // --force: a new unit, and a new drop-in, from empty files.
        let edits = prepare(
            &lp,
            &search,
            &[name("new.service")],
            &Options {
                force: true,
                full: true,
                ..Options::default()
            },
            "flint edit",
            &mut no,
        )
        .unwrap();
        assert_eq!(edits[0].path, lp.persistent_config.join("new.service"));
        assert!(!edits[0].temp.exists());
        discard(&edits);
    }

    #[test]
    fn full_copies_the_unit_file_and_asks_before_overwriting_a_copy() {
        let (_d, lp, search) = tree();
        let opts = Options {
            full: true,
            ..Options::default()
        };
        let mut asked = Vec::new();
        let edits = prepare(
            &lp,
            &search,
            &[name("a.service")],
            &opts,
            "flint edit",
            &mut |q: &str| {
                asked.push(q.to_owned());
                true
            },
        )
        .unwrap();
        assert!(asked.is_empty());
        assert_eq!(
            std::fs::read_to_string(&edits[0].temp).unwrap(),
            "[Service]\nExecStart=/bin/a\n"
        );
        std::fs::write(&edits[0].temp, "\n[Service]\nExecStart=/bin/b\n\n").unwrap();
        let done = finish(&edits).unwrap();
        let copy = lp.persistent_config.join("a.service");
        assert_eq!(done, [Outcome::Written(copy.clone())]);
        assert_eq!(
            std::fs::read_to_string(&copy).unwrap(),
            "[Service]\nExecStart=/bin/b\n"
        );
        // A copy in the configuration directory is edited in place.
        let edits = prepare(
            &lp,
            &search,
            &[name("a.service")],
            &opts,
            "flint edit",
            &mut |q: &str| {
                asked.push(q.to_owned());
                false
            },
        )
        .unwrap();
        assert!(asked.is_empty());
        discard(&edits);
        // The unit is generated into a directory read before the
        // configuration directory, which has a file of that name too:
        // asked first.
        let generated = lp
            .persistent_config
            .parent()
            .unwrap()
            .join("generator.early");
        std::fs::create_dir_all(&generated).unwrap();
        std::fs::write(generated.join("a.service"), "[Service]\nExecStart=/bin/c\n").unwrap();
        let mut dirs = vec![generated.clone()];
        dirs.extend(search.dirs.iter().cloned());
        let search = SearchPath::from_dirs(dirs, false);
        let mut lp = lp;
        lp.generators.push(generated.clone());
        let err = prepare(
            &lp,
            &search,
            &[name("a.service")],
            &opts,
            "flint edit",
            &mut |q: &str| {
                asked.push(q.to_owned());
                false
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "a.service skipped.");
        assert_eq!(
            asked,
            [format!(
                "\"{}\" already exists. Overwrite with \"{}\"? [(y)es, (n)o] ",
                copy.display(),
                generated.join("a.service").display()
            )]
        );
        let edits = prepare(
            &lp,
            &search,
            &[name("a.service")],
            &opts,
            "flint edit",
            &mut |_: &str| true,
        )
        .unwrap();
        assert_eq!(edits[0].path, copy);
        assert_eq!(
            std::fs::read_to_string(&edits[0].temp).unwrap(),
            "[Service]\nExecStart=/bin/c\n"
        );
        discard(&edits);
        assert_eq!(
            std::fs::read_to_string(&copy).unwrap(),
            "[Service]\nExecStart=/bin/b\n",
            "nothing written yet"
        );
    }

    /// A unit in a directory of configuration read before the one edits
    /// go to (flint's own /etc/flint/system) is edited where it is: a copy
    /// or a drop-in of the same name in /etc/systemd/system would have
    /// no effect.
    #[test]
    fn files_read_before_the_configuration_directory_are_edited_in_place() {
        let (_d, lp, search) = tree();
        let flints = lp.persistent_config.parent().unwrap().join("flint");
        std::fs::create_dir_all(flints.join("a.service.d")).unwrap();
        std::fs::write(flints.join("a.service"), "[Service]\nExecStart=/bin/f\n").unwrap();
        std::fs::write(
            flints.join("a.service.d/override.conf"),
            "[Service]\nNice=1\n",
        )
        .unwrap();
        let mut dirs = vec![flints.clone()];
        dirs.extend(search.dirs.iter().cloned());
        let search = SearchPath::from_dirs(dirs, false);
        let full = Options {
            full: true,
            ..Options::default()
        };
        let mut never = |q: &str| panic!("asked {q}");
        let edits = prepare(
            &lp,
            &search,
            &[name("a.service")],
            &full,
            "flint edit",
            &mut never,
        )
        .unwrap();
        assert_eq!(edits[0].path, flints.join("a.service"));
        assert_eq!(edits[0].temp.parent(), Some(flints.as_path()));
        discard(&edits);
        let edits = prepare(
            &lp,
            &search,
            &[name("a.service")],
            &Options::default(),
            "flint edit",
            &mut never,
        )
        .unwrap();
        assert_eq!(edits[0].path, flints.join("a.service.d/override.conf"));
        let text = std::fs::read_to_string(&edits[0].temp).unwrap();
        assert!(
            text.contains(&format!(
                "{MARKER_START}\n\n[Service]\nNice=1\n\n{MARKER_END}"
            )),
            "{text}"
        );
        std::fs::write(&edits[0].temp, "[Service]\nNice=2\n").unwrap();
        finish(&edits).unwrap();
        assert_eq!(
            std::fs::read_to_string(flints.join("a.service.d/override.conf")).unwrap(),
            "[Service]\nNice=2\n"
        );
        assert!(!lp.persistent_config.join("a.service.d").exists());
        // Another drop-in name goes to the configuration directory.
        let other = Options {
            drop_in: Some("20-x".into()),
            ..Options::default()
        };
        let edits = prepare(
            &lp,
            &search,
            &[name("a.service")],
            &other,
            "flint edit",
            &mut never,
        )
        .unwrap();
        assert_eq!(
            edits[0].path,
            lp.persistent_config.join("a.service.d/20-x.conf")
        );
        discard(&edits);
    }

    /// The written file is new (mode 0644 whatever the umask), and bytes
    /// that are not UTF-8 pass through.
    #[test]
    fn the_result_is_a_fresh_readable_file_and_any_bytes_pass() {
        use std::os::unix::fs::PermissionsExt;
        let (_d, lp, search) = tree();
        std::fs::write(
            lp.persistent_config.join("l.service"),
            b"[Unit]\nDescription=caf\xe9\n",
        )
        .unwrap();
        let edits = prepare(
            &lp,
            &search,
            &[name("l.service")],
            &Options::default(),
            "flint edit",
            &mut |_: &str| false,
        )
        .unwrap();
        let temp_mode = std::fs::metadata(&edits[0].temp)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(temp_mode, 0o600, "the editor's file shows every drop-in");
        let text = std::fs::read(&edits[0].temp).unwrap();
        assert!(text.ends_with(b"# Description=caf\xe9"));
        // What the editor leaves is replaced by a link: not followed.
        let victim = lp.persistent_config.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::fs::write(
            lp.persistent_config.join("payload"),
            b"[Service]\nNice=\xff\n",
        )
        .unwrap();
        std::fs::remove_file(&edits[0].temp).unwrap();
        std::os::unix::fs::symlink(lp.persistent_config.join("payload"), &edits[0].temp).unwrap();
        // SAFETY: umask(2) only sets this process's mask.
        let old = unsafe { libc::umask(0o077) };
        let done = finish(&edits);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        assert!(done.is_ok(), "{done:?}");
        let written = &edits[0].path;
        assert_eq!(std::fs::read(written).unwrap(), b"[Service]\nNice=\xff\n");
        assert!(!written.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(
            std::fs::metadata(written).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!edits[0].temp.exists() && edits[0].temp.symlink_metadata().is_err());
    }

    #[test]
    fn a_unit_named_twice_is_edited_once_and_force_shows_a_present_drop_in() {
        let (_d, lp, search) = tree();
        let edits = prepare(
            &lp,
            &search,
            &[name("a.service"), name("alias.service")],
            &Options::default(),
            "flint edit",
            &mut |_: &str| false,
        )
        .unwrap();
        assert_eq!(edits.len(), 1);
        assert_eq!(
            std::fs::read_dir(lp.persistent_config.join("a.service.d"))
                .unwrap()
                .count(),
            1
        );
        discard(&edits);
        let dir = lp.persistent_config.join("gone.service.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("override.conf"), "[Unit]\nDescription=kept\n").unwrap();
        let force = Options {
            force: true,
            ..Options::default()
        };
        let edits = prepare(
            &lp,
            &search,
            &[name("gone.service")],
            &force,
            "flint edit",
            &mut |_: &str| false,
        )
        .unwrap();
        let text = std::fs::read_to_string(&edits[0].temp).unwrap();
        assert!(
            text.contains(&format!(
                "{MARKER_START}\n\n[Unit]\nDescription=kept\n\n{MARKER_END}"
            )),
            "{text}"
        );
        discard(&edits);
        assert!(dir.join("override.conf").exists());
    }

    #[test]
    fn an_empty_result_leaves_the_drop_in_as_it_was() {
        let (_d, lp, search) = tree();
        let dir = lp.persistent_config.join("a.service.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("override.conf"), "[Service]\nNice=3\n").unwrap();
        let edits = prepare(
            &lp,
            &search,
            &[name("a.service")],
            &Options::default(),
            "flint edit",
            &mut |_: &str| false,
        )
        .unwrap();
        let text = std::fs::read_to_string(&edits[0].temp).unwrap();
        assert!(
            text.contains(&format!(
                "{MARKER_START}\n\n[Service]\nNice=3\n\n{MARKER_END}"
            )),
            "{text}"
        );
        // The present drop-in is not shown twice.
        assert_eq!(text.matches("Nice=3").count(), 1, "{text}");
        std::fs::write(&edits[0].temp, format!("{MARKER_START}\n\n{MARKER_END}\n")).unwrap();
        let done = finish(&edits).unwrap();
        assert_eq!(done, [Outcome::Canceled(dir.join("override.conf"))]);
        assert_eq!(
            std::fs::read_to_string(dir.join("override.conf")).unwrap(),
            "[Service]\nNice=3\n"
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "the temporary file is gone"
        );
    }
}
