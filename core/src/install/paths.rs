//! Where `flint enable` and friends look for unit files and where they write
//! links: systemd's `LookupPaths`, optionally below a root directory.
//!
//! Every path here already carries the root prefix, as in systemd, so that
//! the rest of the install code never has to think about `--root` except
//! when it writes a link target (which is stored without the root).

use std::path::{Path, PathBuf};

use super::InstallError;
use crate::unit::loader::SearchPath;

/// Whose units are operated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The system manager's units (`/etc/systemd/system`).
    System,
    /// The calling user's units (`~/.config/systemd/user`).
    User,
    /// Every user's units (`--global`: `/etc/systemd/user`).
    Global,
}

/// The directories of one scope, with the root prefix applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupPaths {
    pub scope: Scope,
    /// The root directory given with `--root`, canonical; `None` for `/`.
    pub root: Option<PathBuf>,
    /// Where unit files are searched, highest priority first.
    pub search_path: Vec<PathBuf>,
    /// Where `enable` and `mask` write: `/etc/systemd/system` or
    /// `~/.config/systemd/user`.
    pub persistent_config: PathBuf,
    /// Where `--runtime` writes: `/run/systemd/system` or
    /// `$XDG_RUNTIME_DIR/systemd/user` (none without `XDG_RUNTIME_DIR`).
    pub runtime_config: Option<PathBuf>,
    pub persistent_control: Option<PathBuf>,
    pub runtime_control: Option<PathBuf>,
    /// Directory of transient units; units there are never enabled.
    pub transient: Option<PathBuf>,
    /// Generator output directories; units there are never enabled.
    pub generators: Vec<PathBuf>,
    /// Directories whose links enable a unit for every user (user scope:
    /// `/etc/systemd/user`).
    pub global_config: Vec<PathBuf>,
}

/// `root` joined with the absolute path `p`.
pub(crate) fn under(root: Option<&Path>, p: &Path) -> PathBuf {
    match root {
        None => p.to_path_buf(),
        Some(r) => r.join(p.strip_prefix("/").unwrap_or(p)),
    }
}

/// Resolves a search directory as systemd's `path_strv_resolve_uniq()`:
/// symlinks in it are followed (staying below the root), a directory that
/// does not exist is kept as written.
fn resolve_dir(root: Option<&Path>, p: &Path) -> PathBuf {
    let Ok(canon) = std::fs::canonicalize(p) else {
        return p.to_path_buf();
    };
    match root {
        Some(r) if !canon.starts_with(r) => p.to_path_buf(),
        _ => canon,
    }
}

/// systemd's generator output directories and flint's, which the search
/// path has beside them (`generator*` in a `flint` directory).
fn generator_dirs(systemds: impl IntoIterator<Item = PathBuf>, search: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = systemds.into_iter().collect();
    for d in search {
        let generated = d
            .file_name()
            .is_some_and(|n| n == "generator" || n == "generator.early" || n == "generator.late")
            && d.parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "flint");
        if generated && !out.contains(d) {
            out.push(d.clone());
        }
    }
    out
}

impl LookupPaths {
    /// The system scope, below `root` when given (`--root=DIR`).
    pub fn system(root: Option<&Path>) -> Result<LookupPaths, InstallError> {
        let cwd = std::env::current_dir().ok();
        let search = SearchPath::system_with(&|k| std::env::var(k).ok(), cwd.as_deref());
        Self::system_from(root, &search)
    }

    /// The system scope with the search directories given (before the root
    /// is applied).
    pub fn system_from(
        root: Option<&Path>,
        search: &SearchPath,
    ) -> Result<LookupPaths, InstallError> {
        let root = canonical_root(root)?;
        let r = root.as_deref();
        let at = |p: &str| under(r, Path::new(p));
        // As systemd's lookup_paths_reduce(): a directory that is another's
        // (`/lib/systemd/system` where `/lib` leads to `/usr/lib`) is
        // searched once, under the name that comes first, which is also
        // the name links made to its files use.
        let mut search_path = Vec::new();
        let mut seen = Vec::new();
        for d in &search.dirs {
            let p = under(r, d);
            let same = resolve_dir(r, &p);
            if !seen.contains(&same) {
                seen.push(same);
                search_path.push(p);
            }
        }
        let generators = generator_dirs(
            [
                at("/run/systemd/generator"),
                at("/run/systemd/generator.early"),
                at("/run/systemd/generator.late"),
            ],
            &search_path,
        );
        Ok(LookupPaths {
            scope: Scope::System,
            search_path,
            persistent_config: at("/etc/systemd/system"),
            runtime_config: Some(at("/run/systemd/system")),
            persistent_control: Some(at("/etc/systemd/system.control")),
            runtime_control: Some(at("/run/systemd/system.control")),
            transient: Some(at("/run/systemd/transient")),
            generators,
            global_config: Vec::new(),
            root,
        })
    }

    /// The units of every user (`--global`), below `root` when given:
    /// systemd's global search path, links made in `/etc/systemd/user`.
    pub fn global(root: Option<&Path>) -> Result<LookupPaths, InstallError> {
        let root = canonical_root(root)?;
        let r = root.as_deref();
        let at = |p: &str| under(r, Path::new(p));
        let mut search_path = Vec::new();
        let mut seen = Vec::new();
        for d in [
            "/etc/systemd/user",
            "/run/systemd/user",
            "/usr/local/share/systemd/user",
            "/usr/share/systemd/user",
            "/usr/local/lib/systemd/user",
            "/usr/lib/systemd/user",
        ] {
            let p = at(d);
            let same = resolve_dir(r, &p);
            if !seen.contains(&same) {
                seen.push(same);
                search_path.push(p);
            }
        }
        Ok(LookupPaths {
            scope: Scope::Global,
            search_path,
            persistent_config: at("/etc/systemd/user"),
            runtime_config: Some(at("/run/systemd/user")),
            persistent_control: None,
            runtime_control: None,
            transient: None,
            generators: Vec::new(),
            global_config: Vec::new(),
            root,
        })
    }

    /// The user scope of the calling user, from `$HOME` and the XDG
    /// variables, as `systemctl --user` finds it.
    pub fn user() -> Result<LookupPaths, InstallError> {
        let cwd = std::env::current_dir().ok();
        Ok(Self::user_with(&|k| std::env::var(k).ok(), cwd.as_deref()))
    }

    /// [`LookupPaths::user`] with the environment given explicitly.
    pub fn user_with(env: &dyn Fn(&str) -> Option<String>, cwd: Option<&Path>) -> LookupPaths {
        let search = SearchPath::user_with(env, cwd);
        let home = crate::unit::loader::home_dir(env).unwrap_or_else(|| "/".to_owned());
        let home = home.trim_end_matches('/');
        let config_home = env("XDG_CONFIG_HOME")
            .filter(|v| v.starts_with('/'))
            .unwrap_or_else(|| format!("{home}/.config"));
        let runtime = env("XDG_RUNTIME_DIR").filter(|v| v.starts_with('/'));
        let rt = |s: &str| {
            runtime
                .as_ref()
                .map(|r| PathBuf::from(format!("{r}/systemd/{s}")))
        };
        let generators = generator_dirs(
            ["generator", "generator.early", "generator.late"]
                .iter()
                .filter_map(|g| rt(g)),
            &search.dirs,
        );
        LookupPaths {
            scope: Scope::User,
            root: None,
            search_path: search.dirs,
            persistent_config: PathBuf::from(format!("{config_home}/systemd/user")),
            runtime_config: rt("user"),
            persistent_control: Some(PathBuf::from(format!("{config_home}/systemd/user.control"))),
            runtime_control: rt("user.control"),
            transient: rt("transient"),
            generators,
            global_config: vec![PathBuf::from("/etc/systemd/user")],
        }
    }

    /// The directory `enable`/`mask` write to.
    pub fn config_path(&self, runtime: bool) -> Result<&Path, InstallError> {
        if runtime {
            self.runtime_config.as_deref().ok_or(InstallError::NoDevice)
        } else {
            Ok(&self.persistent_config)
        }
    }

    /// `path` without the root prefix (systemd's `skip_root()`); the path
    /// itself when it is not below the root.
    pub fn skip_root<'a>(&self, path: &'a Path) -> &'a Path {
        self.strip_root(path).unwrap_or(path)
    }

    fn strip_root<'a>(&self, path: &'a Path) -> Option<&'a Path> {
        let root = self.root.as_deref()?;
        let rest = path.strip_prefix(root).ok()?;
        let (s, tail) = (path.to_str()?, rest.to_str()?);
        if tail.is_empty() {
            return Some(Path::new("/"));
        }
        // `rest` is relative; give it back its leading slash by slicing the
        // original string.
        s.get(s.len() - tail.len() - 1..).map(Path::new)
    }

    /// `p` (absolute) below the root.
    pub fn prefix_root(&self, p: &Path) -> PathBuf {
        under(self.root.as_deref(), p)
    }

    pub(crate) fn in_search_path(&self, path: &Path) -> bool {
        path.parent()
            .is_some_and(|parent| self.search_path.iter().any(|d| d == parent))
    }

    pub(crate) fn is_generator(&self, path: &Path) -> bool {
        path.parent()
            .is_some_and(|parent| self.generators.iter().any(|g| g == parent))
    }

    pub(crate) fn is_transient(&self, path: &Path) -> bool {
        path.parent()
            .is_some_and(|parent| self.transient.as_deref() == Some(parent))
    }

    /// Whether `path` is a vendor's unit file (systemd's
    /// `path_is_vendor_or_generator()`): below `/usr` or `/lib`, or
    /// generated.
    pub(crate) fn is_vendor(&self, path: &Path) -> bool {
        let rel = self.skip_root(path);
        rel.starts_with("/usr") || rel.starts_with("/lib") || self.is_generator(path)
    }

    /// Whether `dir` is where an administrator's changes go: the
    /// configuration, control or transient directories (systemd's
    /// `path_shall_revert()` of a drop-in directory there).
    pub(crate) fn is_admin_dir(&self, dir: &Path) -> bool {
        self.is_config_dir(dir)
            || self.persistent_control.as_deref() == Some(dir)
            || self.runtime_control.as_deref() == Some(dir)
            || self.transient.as_deref() == Some(dir)
    }

    /// Whether `dir` is one of the configuration directories (`/etc`, or
    /// `/run` for runtime) that `enable` writes.
    pub(crate) fn is_config_dir(&self, dir: &Path) -> bool {
        dir == self.persistent_config || self.runtime_config.as_deref() == Some(dir)
    }

    /// Whether `dir` holds runtime state (below `/run`, or one of the
    /// runtime, generator, transient or control directories).
    pub(crate) fn is_runtime_dir(&self, dir: &Path) -> bool {
        let below_root = if self.root.is_some() {
            self.strip_root(dir)
        } else {
            Some(dir)
        };
        if below_root.is_some_and(|p| p.starts_with("/run")) {
            return true;
        }
        self.runtime_config.as_deref() == Some(dir)
            || self.generators.iter().any(|g| g == dir)
            || self.transient.as_deref() == Some(dir)
            || self.runtime_control.as_deref() == Some(dir)
    }
}

/// The root given with `--root`: canonical, `None` for `/`.
fn canonical_root(root: Option<&Path>) -> Result<Option<PathBuf>, InstallError> {
    let Some(root) = root else { return Ok(None) };
    if root.as_os_str().is_empty() {
        return Ok(None);
    }
    let canon = std::fs::canonicalize(root).map_err(|e| InstallError::from_io(&e))?;
    if canon == Path::new("/") {
        Ok(None)
    } else {
        Ok(Some(canon))
    }
}
