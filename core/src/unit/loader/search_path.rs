//! The ordered list of directories flint reads unit files from.
//!
//! [`SearchPath::system`] and [`SearchPath::user`] reproduce systemd's lookup
//! order for the system and user managers (the system one with flint's own
//! [`FLINT_SYSTEM_UNIT_DIR`] in front), including `$SYSTEMD_UNIT_PATH`
//! (which replaces the defaults, or extends them when it ends in `:`) and
//! the XDG variables of the user manager. Entries are absolute, lexically
//! normalised and unique; earlier entries take priority. Directories that do
//! not exist are kept: they may appear later, and scanning skips them.

use std::path::{Component, Path, PathBuf};

/// Directories searched for unit files, highest priority first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPath {
    pub dirs: Vec<PathBuf>,
    /// Whether these are the directories of a user manager.
    pub user_mode: bool,
}

/// flint's own directory of system units, searched before every directory
/// systemd searches, so that a unit placed there overrides the
/// distribution's unit of the same name for flint only.
pub const FLINT_SYSTEM_UNIT_DIR: &str = "/etc/flint/system";

/// The runtime directory of the system flint (its control socket and its
/// generators' output, `generator*`).
pub const FLINT_SYSTEM_RUNTIME_DIR: &str = "/run/flint";

/// The default system search path of systemd 252 as built by Debian, which
/// keeps `/lib/systemd/system` before `/usr/lib/systemd/system`.
pub const SYSTEM_UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// Lexically normalises an absolute path: drops `.`, empty components and
/// a trailing slash, and resolves `..` against the preceding component.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    // `..` above the root or a relative start stays as is.
                    if p.is_absolute() {
                        out.push("/");
                    } else {
                        out.push("..");
                    }
                }
            }
            Component::Normal(s) => out.push(s),
            Component::Prefix(_) => {}
        }
    }
    out
}

fn absolutize(p: &str, cwd: Option<&Path>) -> Option<PathBuf> {
    let path = Path::new(p);
    if path.is_absolute() {
        Some(normalize(path))
    } else {
        cwd.map(|c| normalize(&c.join(path)))
    }
}

fn push_unique(dirs: &mut Vec<PathBuf>, p: PathBuf) {
    if !dirs.contains(&p) {
        dirs.push(p);
    }
}

/// Splits a colon-separated list, dropping empty entries.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(':').filter(|e| !e.is_empty())
}

/// Whether `p` is absolute and free of `.`/`..` components and doubled
/// slashes (the test systemd applies to `$HOME`).
fn absolute_normalized(p: &str) -> bool {
    p.starts_with('/') && !p.split('/').any(|c| c == "." || c == "..") && !p[1..].contains("//")
}

/// The home directory as systemd's `get_home_dir()` finds it: `$HOME` when
/// it is an absolute normalised path, else `/root` for UID 0, else the
/// password database.
pub fn home_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(h) = env("HOME").filter(|h| absolute_normalized(h)) {
        return Some(h);
    }
    let uid = nix::unistd::Uid::current();
    if uid.is_root() {
        return Some("/root".to_owned());
    }
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.dir.to_string_lossy().into_owned())
}

impl SearchPath {
    /// The system manager's search path: [`FLINT_SYSTEM_UNIT_DIR`], then
    /// systemd's, honouring `$SYSTEMD_UNIT_PATH`.
    pub fn system() -> SearchPath {
        let cwd = std::env::current_dir().ok();
        SearchPath::system_with(&|k| std::env::var(k).ok(), cwd.as_deref())
    }

    /// The user manager's search path, honouring `$SYSTEMD_UNIT_PATH` and
    /// the XDG variables.
    pub fn user() -> SearchPath {
        let cwd = std::env::current_dir().ok();
        SearchPath::user_with(&|k| std::env::var(k).ok(), cwd.as_deref())
    }

    /// Exactly these directories, as `--unit-dir` gives them (relative ones
    /// are taken relative to the current directory).
    pub fn from_dirs(dirs: Vec<PathBuf>, user_mode: bool) -> SearchPath {
        let cwd = std::env::current_dir().ok();
        let mut out = Vec::new();
        for d in dirs {
            let p = if d.is_absolute() {
                normalize(&d)
            } else {
                cwd.as_deref()
                    .map_or_else(|| d.clone(), |c| normalize(&c.join(&d)))
            };
            push_unique(&mut out, p);
        }
        SearchPath {
            dirs: out,
            user_mode,
        }
    }

    /// [`SearchPath::system`] with the environment and working directory
    /// given explicitly.
    pub fn system_with(env: &dyn Fn(&str) -> Option<String>, cwd: Option<&Path>) -> SearchPath {
        let defaults = SearchPath {
            dirs: std::iter::once(FLINT_SYSTEM_UNIT_DIR)
                .chain(SYSTEM_UNIT_DIRS.iter().copied())
                .map(PathBuf::from)
                .collect(),
            user_mode: false,
        };
        SearchPath {
            dirs: paths_from_env("SYSTEMD_UNIT_PATH", env, cwd, defaults.dirs),
            user_mode: false,
        }
    }

    /// [`SearchPath::user`] with the environment and working directory given
    /// explicitly. Runtime directories are left out when `$XDG_RUNTIME_DIR`
    /// is unset, as systemd does.
    pub fn user_with(env: &dyn Fn(&str) -> Option<String>, cwd: Option<&Path>) -> SearchPath {
        let home = home_dir(env).unwrap_or_else(|| "/".to_owned());
        let home = home.trim_end_matches('/');
        let config_home = env("XDG_CONFIG_HOME").unwrap_or_else(|| format!("{home}/.config"));
        let data_home = env("XDG_DATA_HOME").unwrap_or_else(|| format!("{home}/.local/share"));
        let runtime = env("XDG_RUNTIME_DIR");
        let config_dirs: Vec<String> = match env("XDG_CONFIG_DIRS") {
            Some(v) => split_list(&v).map(str::to_owned).collect(),
            None => vec!["/etc/xdg".to_owned()],
        };
        let data_dirs: Vec<String> = match env("XDG_DATA_DIRS") {
            Some(v) => split_list(&v).map(str::to_owned).collect(),
            None => vec!["/usr/local/share".to_owned(), "/usr/share".to_owned()],
        };
        let rt = |suffix: &str| runtime.as_ref().map(|r| format!("{r}/systemd/{suffix}"));

        let mut list: Vec<String> = Vec::new();
        list.push(format!("{config_home}/systemd/user.control"));
        list.extend(rt("user.control"));
        list.extend(rt("transient"));
        list.extend(rt("generator.early"));
        list.push(format!("{config_home}/systemd/user"));
        list.extend(config_dirs.iter().map(|d| format!("{d}/systemd/user")));
        list.push("/etc/systemd/user".to_owned());
        list.extend(rt("user"));
        list.push("/run/systemd/user".to_owned());
        list.extend(rt("generator"));
        list.push(format!("{data_home}/systemd/user"));
        list.extend(data_dirs.iter().map(|d| format!("{d}/systemd/user")));
        list.push("/usr/local/lib/systemd/user".to_owned());
        list.push("/usr/lib/systemd/user".to_owned());
        list.extend(rt("generator.late"));

        let defaults = SearchPath {
            dirs: list.iter().filter_map(|p| absolutize(p, cwd)).collect(),
            user_mode: true,
        };
        SearchPath {
            dirs: paths_from_env("SYSTEMD_UNIT_PATH", env, cwd, defaults.dirs),
            user_mode: true,
        }
    }

    /// Where systemd's generator output directory of `kind`
    /// (`generator.early`, `generator`, `generator.late`) is in this path.
    fn systemd_generator_dir(&self, kind: &str) -> Option<usize> {
        self.dirs.iter().position(|d| {
            d.file_name().is_some_and(|n| n == kind)
                && d.parent()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == "systemd")
        })
    }

    /// Whether systemd's generator output directories are searched: the
    /// default paths are, a `$SYSTEMD_UNIT_PATH` or `--unit-dir` list
    /// without them is not.
    pub fn has_generator_dirs(&self) -> bool {
        self.systemd_generator_dir("generator").is_some()
    }

    /// Adds flint's generator output directories (`early`, `normal`,
    /// `late`), each just before systemd's of the same kind, so that they
    /// rank as systemd ranks its own; without those, `early` goes first
    /// and the other two last.
    #[must_use]
    pub fn with_generator_output(mut self, early: &Path, normal: &Path, late: &Path) -> SearchPath {
        for (kind, dir) in [
            ("generator.early", early),
            ("generator", normal),
            ("generator.late", late),
        ] {
            let dir = normalize(dir);
            if self.dirs.contains(&dir) {
                continue;
            }
            match self.systemd_generator_dir(kind) {
                Some(i) => self.dirs.insert(i, dir),
                None if kind == "generator.early" => self.dirs.insert(0, dir),
                None => self.dirs.push(dir),
            }
        }
        self
    }

    /// Whether `p` (absolute, normalised) lies inside one of the search
    /// directories; returns the part below that directory.
    pub(crate) fn strip_search_prefix<'a>(
        &self,
        p: &'a Path,
        canonical: &[PathBuf],
    ) -> Option<&'a Path> {
        self.dirs
            .iter()
            .chain(canonical.iter())
            .find_map(|d| p.strip_prefix(d).ok())
    }
}

/// systemd's `get_paths_from_environ()`: the directories of the
/// colon-separated `var` (`$SYSTEMD_UNIT_PATH`,
/// `$SYSTEMD_ENVIRONMENT_GENERATOR_PATH`) instead of `defaults`, or before
/// them when the list ends with `:`; `defaults` when it is unset.
pub(crate) fn paths_from_env(
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: Option<&Path>,
    defaults: Vec<PathBuf>,
) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match env(var) {
        None => {
            for d in defaults {
                push_unique(&mut dirs, d);
            }
        }
        Some(v) => {
            let (list, append) = match v.strip_suffix(':') {
                Some(l) => (l, true),
                None => (v.as_str(), false),
            };
            for e in split_list(list) {
                if let Some(p) = absolutize(e, cwd) {
                    push_unique(&mut dirs, p);
                }
            }
            if append {
                for d in defaults {
                    push_unique(&mut dirs, d);
                }
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| owned.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone())
    }

    fn strs(s: &SearchPath) -> Vec<String> {
        s.dirs
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect()
    }

    /// `/etc/flint/system`, then `systemd-analyze unit-paths` of systemd
    /// 252 on Debian 12.
    #[test]
    fn system_defaults_are_flints_dir_then_systemd_analyze() {
        let s = SearchPath::system_with(&env_of(&[]), Some(Path::new("/")));
        assert_eq!(strs(&s)[0], "/etc/flint/system");
        assert_eq!(
            strs(&s)[1..],
            SYSTEM_UNIT_DIRS
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>()
        );
        assert!(!s.user_mode);
    }

    /// A unit in `/etc/flint/system` wins over one of the same name in
    /// `/etc/systemd/system` and `/lib/systemd/system`.
    #[test]
    fn flints_dir_comes_first() {
        let s = SearchPath::system_with(&env_of(&[]), None);
        let pos = |d: &str| s.dirs.iter().position(|p| p == Path::new(d)).unwrap();
        assert_eq!(pos(FLINT_SYSTEM_UNIT_DIR), 0);
        assert!(pos(FLINT_SYSTEM_UNIT_DIR) < pos("/etc/systemd/system.control"));
        assert!(pos(FLINT_SYSTEM_UNIT_DIR) < pos("/etc/systemd/system"));
        // Only the system manager reads it.
        let u = SearchPath::user_with(&env_of(&[("HOME", "/h")]), None);
        assert!(!u.dirs.iter().any(|d| d.starts_with("/etc/flint")));
        // SYSTEMD_UNIT_PATH without a trailing colon replaces it too.
        let s = SearchPath::system_with(&env_of(&[("SYSTEMD_UNIT_PATH", "/a")]), None);
        assert_eq!(strs(&s), ["/a"]);
    }

    /// Modelled on systemd src/test/test-path-lookup.c (SYSTEMD_UNIT_PATH
    /// with and without a trailing colon) and checked against
    /// `SYSTEMD_UNIT_PATH=… systemd-analyze unit-paths` (252).
    #[test]
    fn systemd_unit_path_env() {
        let cwd = Some(Path::new("/tmp/sp"));
        let s = SearchPath::system_with(&env_of(&[("SYSTEMD_UNIT_PATH", "/a:/b")]), cwd);
        assert_eq!(strs(&s), ["/a", "/b"]);

        // flint's own unit directory.
        let own = 1;
        let s = SearchPath::system_with(&env_of(&[("SYSTEMD_UNIT_PATH", "/a:/b:")]), cwd);
        assert_eq!(strs(&s)[..3], ["/a", "/b", FLINT_SYSTEM_UNIT_DIR]);
        assert_eq!(s.dirs.len(), 2 + own + SYSTEM_UNIT_DIRS.len());

        let s = SearchPath::system_with(&env_of(&[("SYSTEMD_UNIT_PATH", "/a::/b")]), cwd);
        assert_eq!(strs(&s), ["/a", "/b"]);

        let s = SearchPath::system_with(&env_of(&[("SYSTEMD_UNIT_PATH", "")]), cwd);
        assert!(s.dirs.is_empty());

        let s = SearchPath::system_with(&env_of(&[("SYSTEMD_UNIT_PATH", ":")]), cwd);
        assert_eq!(s.dirs.len(), own + SYSTEM_UNIT_DIRS.len());

        let s = SearchPath::system_with(
            &env_of(&[(
                "SYSTEMD_UNIT_PATH",
                "/tmp/sp/link:rel:/tmp/sp/real:/tmp/sp/link/",
            )]),
            cwd,
        );
        assert_eq!(strs(&s), ["/tmp/sp/link", "/tmp/sp/rel", "/tmp/sp/real"]);

        let s = SearchPath::system_with(
            &env_of(&[("SYSTEMD_UNIT_PATH", "/etc/systemd/system:")]),
            cwd,
        );
        assert_eq!(
            s.dirs.len(),
            own + SYSTEM_UNIT_DIRS.len(),
            "duplicates are dropped"
        );
        assert_eq!(strs(&s)[0], "/etc/systemd/system");
    }

    /// `systemd-analyze unit-paths --user` (252) as root, without and with
    /// `XDG_RUNTIME_DIR`.
    #[test]
    fn user_defaults_match_systemd_analyze() {
        let s = SearchPath::user_with(&env_of(&[("HOME", "/root")]), None);
        assert_eq!(
            strs(&s),
            [
                "/root/.config/systemd/user.control",
                "/root/.config/systemd/user",
                "/etc/xdg/systemd/user",
                "/etc/systemd/user",
                "/run/systemd/user",
                "/root/.local/share/systemd/user",
                "/usr/local/share/systemd/user",
                "/usr/share/systemd/user",
                "/usr/local/lib/systemd/user",
                "/usr/lib/systemd/user",
            ]
        );
        assert!(s.user_mode);

        let s = SearchPath::user_with(
            &env_of(&[("HOME", "/root"), ("XDG_RUNTIME_DIR", "/run/user/0")]),
            None,
        );
        assert_eq!(
            strs(&s),
            [
                "/root/.config/systemd/user.control",
                "/run/user/0/systemd/user.control",
                "/run/user/0/systemd/transient",
                "/run/user/0/systemd/generator.early",
                "/root/.config/systemd/user",
                "/etc/xdg/systemd/user",
                "/etc/systemd/user",
                "/run/user/0/systemd/user",
                "/run/systemd/user",
                "/run/user/0/systemd/generator",
                "/root/.local/share/systemd/user",
                "/usr/local/share/systemd/user",
                "/usr/share/systemd/user",
                "/usr/local/lib/systemd/user",
                "/usr/lib/systemd/user",
                "/run/user/0/systemd/generator.late",
            ]
        );
    }

    #[test]
    fn user_xdg_variables() {
        let s = SearchPath::user_with(
            &env_of(&[
                ("HOME", "/home/u"),
                ("XDG_CONFIG_HOME", "/cfg"),
                ("XDG_DATA_HOME", "/data"),
                ("XDG_CONFIG_DIRS", "/c1::/c2"),
                ("XDG_DATA_DIRS", "/d1"),
            ]),
            None,
        );
        assert_eq!(
            strs(&s),
            [
                "/cfg/systemd/user.control",
                "/cfg/systemd/user",
                "/c1/systemd/user",
                "/c2/systemd/user",
                "/etc/systemd/user",
                "/run/systemd/user",
                "/data/systemd/user",
                "/d1/systemd/user",
                "/usr/local/lib/systemd/user",
                "/usr/lib/systemd/user",
            ]
        );
        let s = SearchPath::user_with(
            &env_of(&[("HOME", "/h"), ("SYSTEMD_UNIT_PATH", "/only")]),
            None,
        );
        assert_eq!(strs(&s), ["/only"]);
        let s = SearchPath::user_with(&env_of(&[("HOME", "/h"), ("XDG_CONFIG_DIRS", "")]), None);
        assert!(!strs(&s).iter().any(|d| d.contains("xdg")));
    }

    #[test]
    fn from_dirs_normalises_and_dedups() {
        let s = SearchPath::from_dirs(
            vec!["/a/./b/".into(), "/a/b".into(), "/c/../d".into()],
            false,
        );
        assert_eq!(strs(&s), ["/a/b", "/d"]);
        let s = SearchPath::from_dirs(vec!["rel".into()], true);
        assert!(s.dirs[0].is_absolute() && s.user_mode);
    }

    #[test]
    fn normalize_paths() {
        for (i, o) in [
            ("/a/b/../c", "/a/c"),
            ("/../x", "/x"),
            ("/a/./b//", "/a/b"),
            ("/", "/"),
        ] {
            assert_eq!(normalize(Path::new(i)), PathBuf::from(o), "{i}");
        }
    }

    /// flint's generator output goes just before systemd's of each kind in
    /// the default paths, and around the given directories otherwise.
    #[test]
    fn generator_output_ranks_as_systemds() {
        let (early, normal, late) = (
            Path::new("/run/flint/generator.early"),
            Path::new("/run/flint/generator"),
            Path::new("/run/flint/generator.late"),
        );
        let sys = SearchPath::system_with(&env_of(&[]), Some(Path::new("/")));
        assert!(sys.has_generator_dirs());
        // None of flint's in the library's defaults: the commands add the
        // default flint's, and `flint run` its own.
        assert!(!strs(&sys).iter().any(|d| d.starts_with("/run/flint")));
        let sys = sys.with_generator_output(early, normal, late);
        let dirs = strs(&sys);
        let pos = |d: &str| dirs.iter().position(|x| x == d).unwrap();
        assert_eq!(
            pos("/run/flint/generator.early") + 1,
            pos("/run/systemd/generator.early")
        );
        assert_eq!(
            pos("/run/flint/generator") + 1,
            pos("/run/systemd/generator")
        );
        assert_eq!(
            pos("/run/flint/generator.late") + 1,
            pos("/run/systemd/generator.late")
        );
        assert!(pos("/etc/systemd/system") < pos("/run/flint/generator"));
        assert!(pos("/run/flint/generator") < pos("/lib/systemd/system"));
        // Added once only.
        let again = sys.clone().with_generator_output(early, normal, late);
        assert_eq!(again.dirs, sys.dirs);

        let given = SearchPath::from_dirs(vec!["/units".into()], false);
        assert!(!given.has_generator_dirs());
        assert_eq!(
            strs(&given.with_generator_output(early, normal, late)),
            [
                "/run/flint/generator.early",
                "/units",
                "/run/flint/generator",
                "/run/flint/generator.late"
            ]
        );
        let user = SearchPath::user_with(
            &env_of(&[("HOME", "/h"), ("XDG_RUNTIME_DIR", "/run/user/7")]),
            None,
        );
        assert!(user.has_generator_dirs());
        let user = user.with_generator_output(
            Path::new("/run/user/7/flint/generator.early"),
            Path::new("/run/user/7/flint/generator"),
            Path::new("/run/user/7/flint/generator.late"),
        );
        let dirs = strs(&user);
        let pos = |d: &str| dirs.iter().position(|x| x == d).unwrap();
        assert_eq!(
            pos("/run/user/7/flint/generator") + 1,
            pos("/run/user/7/systemd/generator")
        );
    }
}
