//! Service credentials as systemd passes them (`systemd.exec(5)`,
//! "Credentials"): `LoadCredential=ID[:PATH]`, `SetCredential=ID:DATA` and
//! `ImportCredential=GLOB` fill a directory of the run,
//! `/run/credentials/UNIT` (`$XDG_RUNTIME_DIR/credentials/UNIT` for a
//! user flint), whose path the commands get in `$CREDENTIALS_DIRECTORY`
//! and units in `%d`. Each file is readable by the service's user only
//! (mode 0400, the directory 0500, both owned by it), made before the
//! run's first command and removed when it ends.
//!
//! The sources, in systemd's order (`exec-credential.c`):
//! - `LoadCredential=` with an absolute path reads that file, every file
//!   below a directory (as `ID_sub_file`), or what a unix socket there
//!   sends; a missing file fails the start (243/CREDENTIALS) unless
//!   `SetCredential=` has the same ID. With a credential name instead of a
//!   path (or none: the ID), it is looked for in the credentials flint
//!   itself got (`$CREDENTIALS_DIRECTORY`) and the credential stores
//!   (`/etc/credstore`, `/run/credstore`, `/usr/local/lib/credstore`,
//!   `/usr/lib/credstore`); missing is fine there.
//! - `ImportCredential=` copies the matching credentials of those places
//!   (`GLOB[:RENAME]`), never over one already loaded.
//! - `SetCredential=` gives the data (C escapes allowed) of an ID nothing
//!   loaded.
//!
//! Each credential may hold 1 MiB, all of them together 1 MiB, as in
//! systemd. The `*Encrypted=` forms need systemd's host key or TPM, which
//! flint does not have: a unit that uses them fails to start with a
//! message that says so.

use std::io::{self, Read};

use nix::mount::MsFlags;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::unit::load::Unit;

/// systemd's `CREDENTIAL_SIZE_MAX` and `CREDENTIALS_TOTAL_SIZE_MAX`.
const SIZE_MAX: usize = 1024 * 1024;
const TOTAL_SIZE_MAX: usize = 1024 * 1024;

/// How long a unix socket source may take to answer.
const SOCKET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The credential stores searched for a credential given by name.
const STORES: &[&str] = &[
    "/etc/credstore",
    "/run/credstore",
    "/usr/local/lib/credstore",
    "/usr/lib/credstore",
];

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The caller no longer wants them (the run is over).
    #[error("the run they were for is over")]
    Superseded,
    #[error("{key}={value}: {message}")]
    Invalid {
        key: &'static str,
        value: String,
        message: String,
    },
    #[error("credential '{id}': {source} ({path})")]
    Read {
        id: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("credential '{id}' is larger than 1 MiB, or all together are")]
    TooLarge { id: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Whether the unit configures any credential (then its commands get
/// `$CREDENTIALS_DIRECTORY`, even when none was found).
pub fn configured(unit: &Unit, section: &str) -> bool {
    [
        "LoadCredential",
        "LoadCredentialEncrypted",
        "SetCredential",
        "SetCredentialEncrypted",
        "ImportCredential",
    ]
    .iter()
    .any(|k| !values(unit, section, k).is_empty())
}

fn values<'a>(unit: &'a Unit, section: &str, key: &str) -> Vec<&'a str> {
    let mut v = unit.strings(section, key);
    v.retain(|s| !s.is_empty());
    v
}

/// The ID of `ID` or `ID:`.
fn id_of(v: &str) -> &str {
    v.split_once(':').map_or(v, |(id, _)| id)
}

/// systemd's `credential_name_valid()`: a file name, not `.` or `..`.
fn name_valid(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id != "." && id != ".." && !id.contains('/')
}

/// The directory of `unit`'s credentials (what `%d` names).
pub fn directory(unit: &str, user_mode: bool) -> PathBuf {
    let base = if user_mode {
        std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|v| !v.is_empty())
            .map_or_else(std::env::temp_dir, PathBuf::from)
    } else {
        PathBuf::from("/run")
    };
    base.join("credentials").join(unit)
}

/// A run's credentials directory, removed with [`Credentials::remove`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub dir: PathBuf,
    /// Whether it is a tmpfs of its own.
    mounted: bool,
}

/// What is gathered before anything is written.
struct Gathered {
    files: Vec<(String, Vec<u8>)>,
    total: usize,
}

impl Gathered {
    fn has(&self, id: &str) -> bool {
        self.files.iter().any(|(i, _)| i == id)
    }

    fn add(&mut self, id: String, data: Vec<u8>) -> Result<(), CredentialError> {
        let replaced = self
            .files
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(0, |(i, d)| i.len() + d.len());
        let total = self.total - replaced + id.len() + data.len();
        if data.len() > SIZE_MAX || total > TOTAL_SIZE_MAX {
            return Err(CredentialError::TooLarge { id });
        }
        self.total = total;
        match self.files.iter_mut().find(|(i, _)| *i == id) {
            Some(slot) => slot.1 = data,
            None => self.files.push((id, data)),
        }
        Ok(())
    }
}

/// Where credentials given by name are looked for: those flint got, then
/// the stores (a user flint's own: `$XDG_CONFIG_HOME/credstore`,
/// `$XDG_RUNTIME_DIR/credstore`, `~/.local/lib/credstore`, as systemd's
/// user scope).
fn search_path(user_mode: bool) -> Vec<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut out = Vec::new();
    if let Some(d) = var("CREDENTIALS_DIRECTORY") {
        out.push(d);
    }
    if user_mode {
        let home = var("HOME");
        if let Some(c) = var("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
        {
            out.push(c.join("credstore"));
        }
        if let Some(r) = var("XDG_RUNTIME_DIR") {
            out.push(r.join("credstore"));
        }
        if let Some(h) = home {
            out.push(h.join(".local/lib/credstore"));
        }
    } else {
        out.extend(STORES.iter().map(PathBuf::from));
    }
    out
}

/// A source that is not there, or that flint may not look into (a
/// root-only store seen by a user flint): a credential handed down by
/// name is then just missing.
fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::NotADirectory
    )
}

/// Reads a credential source: a file, or what a unix socket sends (flint
/// connects from the abstract address `@RANDOM/unit/UNIT/ID`, as systemd
/// does, so that the server can tell who asks).
fn read_source(path: &Path, unit: &str, id: &str) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path)?;
    let mut data = Vec::new();
    if meta.file_type().is_socket() {
        let stream = connect_as(path, unit, id)?;
        // Read on the spawn's thread: a server that stops answering gives
        // up the start instead of holding that thread.
        stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
        stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
        stream.shutdown(std::net::Shutdown::Write)?;
        stream.take(SIZE_MAX as u64 + 1).read_to_end(&mut data)?;
    } else if meta.is_file() {
        std::fs::File::open(path)?
            .take(SIZE_MAX as u64 + 1)
            .read_to_end(&mut data)?;
    } else {
        // A FIFO or a device would block flint, or never end.
        return Err(io::Error::other("not a regular file or a unix socket"));
    }
    Ok(data)
}

fn connect_as(path: &Path, unit: &str, id: &str) -> io::Result<std::os::unix::net::UnixStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, bind, connect, socket};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let random: u64 = {
        let mut b = [0u8; 8];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
        u64::from_ne_bytes(b)
    };
    let name = format!("{random:x}/unit/{unit}/{id}");
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &UnixAddr::new_abstract(name.as_bytes())?,
    )?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &UnixAddr::new(path)?)?;
    Ok(std::os::unix::net::UnixStream::from(fd))
}

/// Every file below `dir`, sorted, as (`ID_sub_file`, path).
fn walk(dir: &Path, id: &str, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let sub = format!("{id}_{name}");
        let t = e.file_type()?;
        if t.is_dir() {
            walk(&e.path(), &sub, out)?;
        } else if t.is_file() {
            out.push((sub, e.path()));
        }
    }
    Ok(())
}

/// Gathers the unit's credentials from their sources, in systemd's order.
fn gather(unit: &Unit, section: &str, user_mode: bool) -> Result<Gathered, CredentialError> {
    let name = unit.id.as_str();
    for key in ["LoadCredentialEncrypted", "SetCredentialEncrypted"] {
        if let Some(v) = values(unit, section, key).first() {
            return Err(CredentialError::Invalid {
                key: if key.starts_with("Load") {
                    "LoadCredentialEncrypted"
                } else {
                    "SetCredentialEncrypted"
                },
                value: (*v).to_string(),
                message: "encrypted credentials need systemd's host key or TPM, which flint \
                          does not have; use LoadCredential= with the plain file"
                    .into(),
            });
        }
    }
    // SetCredential=: the fallbacks, the last assignment of an ID winning.
    let mut set: Vec<(String, Vec<u8>)> = Vec::new();
    for v in values(unit, section, "SetCredential") {
        let (id, data) = v.split_once(':').ok_or_else(|| CredentialError::Invalid {
            key: "SetCredential",
            value: v.to_string(),
            message: "expected ID:DATA".into(),
        })?;
        if !name_valid(id) {
            return Err(CredentialError::Invalid {
                key: "SetCredential",
                value: v.to_string(),
                message: format!("'{id}' is not a valid credential name"),
            });
        }
        let data = crate::unit::value::words::cunescape_bytes(data.as_bytes(), false, true)
            .map_err(|e| CredentialError::Invalid {
                key: "SetCredential",
                value: v.to_string(),
                message: e.to_string(),
            })?;
        set.retain(|(i, _)| i != id);
        set.push((id.to_string(), data));
    }
    let mut got = Gathered {
        files: Vec::new(),
        total: 0,
    };
    // LoadCredential=: one source per ID, the last assignment winning.
    let mut load: Vec<(String, String)> = Vec::new();
    for v in values(unit, section, "LoadCredential") {
        // `ID`, `ID:` and `ID:PATH`; the first two take a credential
        // handed down under that name.
        let (id, path) = match v.split_once(':') {
            Some((_, "")) | None => (id_of(v), id_of(v)),
            Some((id, path)) => (id, path),
        };
        if !name_valid(id) {
            // As systemd: the line is ignored.
            tracing::warn!("{name}: LoadCredential={v}: not a valid credential name, ignoring");
            continue;
        }
        load.retain(|(i, _)| i != id);
        load.push((id.to_string(), path.to_string()));
    }
    for (id, path) in &load {
        let p = Path::new(path);
        let read_err = |path: &Path, source: io::Error| CredentialError::Read {
            id: id.clone(),
            path: path.to_path_buf(),
            source,
        };
        if p.is_absolute() {
            if p.is_dir() {
                let mut files = Vec::new();
                walk(p, id, &mut files).map_err(|e| read_err(p, e))?;
                for (sub, file) in files {
                    if !name_valid(&sub) || got.has(&sub) {
                        continue;
                    }
                    match read_source(&file, name, &sub) {
                        Ok(data) => got.add(sub, data)?,
                        // Vanished while being listed: as systemd, fine.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(read_err(&file, e)),
                    }
                }
                continue;
            }
            match read_source(p, name, id) {
                Ok(data) => got.add(id.clone(), data)?,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound && set.iter().any(|(i, _)| i == id) =>
                {
                    tracing::debug!(
                        "{name}: credential '{id}' not at {path}, using SetCredential="
                    );
                }
                Err(e) => return Err(read_err(p, e)),
            }
        } else if name_valid(path) {
            // A credential handed down: missing is not an error.
            let mut found = false;
            for dir in search_path(user_mode) {
                match read_source(&dir.join(path), name, id) {
                    Ok(data) => {
                        got.add(id.clone(), data)?;
                        found = true;
                        break;
                    }
                    Err(e) if absent(&e) => {}
                    Err(e) => return Err(read_err(&dir.join(path), e)),
                }
            }
            if !found && !set.iter().any(|(i, _)| i == id) {
                tracing::info!("{name}: couldn't read inherited credential '{path}', skipping");
            }
        } else {
            tracing::warn!(
                "{name}: LoadCredential={id}:{path}: neither an absolute path nor a credential \
                 name, ignoring"
            );
        }
    }
    // ImportCredential=GLOB[:RENAME]: never over one already there.
    for v in values(unit, section, "ImportCredential") {
        let (glob, rename) = match v.split_once(':') {
            Some((g, "")) => (g, None),
            Some((g, r)) => (g, Some(r)),
            None => (v, None),
        };
        // systemd's `credential_glob_valid()`: a name, or a name's start
        // and `*`.
        let stem = glob.strip_suffix('*').unwrap_or(glob);
        let whole_store = stem.is_empty() && glob == "*";
        if !(whole_store || name_valid(stem)) || stem.contains(['*', '?', '[']) {
            tracing::warn!(
                "{name}: ImportCredential={v}: not a credential name or prefix, ignoring"
            );
            continue;
        }
        for dir in search_path(user_mode) {
            let Ok(list) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = list
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| super::condition::wildcard(glob.as_bytes(), n.as_bytes()))
                // Links followed, as systemd's glob and read follow them.
                .filter(|n| std::fs::metadata(dir.join(n)).is_ok_and(|m| m.is_file()))
                .collect();
            names.sort();
            for file in names {
                let id = match rename {
                    Some(r) => format!(
                        "{r}{}",
                        file.get(glob.len() - usize::from(glob.ends_with('*'))..)
                            .unwrap_or_default()
                    ),
                    None => file.clone(),
                };
                if !name_valid(&id) || got.has(&id) {
                    continue;
                }
                let data = read_source(&dir.join(&file), name, &id)
                    .map_err(|e| read_err_of(&id, &dir.join(&file), e))?;
                got.add(id, data)?;
            }
        }
    }
    for (id, data) in set {
        if !got.has(&id) {
            got.add(id, data)?;
        }
    }
    Ok(got)
}

fn read_err_of(id: &str, path: &Path, source: io::Error) -> CredentialError {
    CredentialError::Read {
        id: id.to_string(),
        path: path.to_path_buf(),
        source,
    }
}

/// The lock of one credentials directory, shared by the threads that make
/// credentials there; unused ones are forgotten.
fn directory_lock(dir: &Path) -> std::sync::Arc<std::sync::Mutex<()>> {
    use std::sync::{Arc, Mutex, PoisonError, Weak};
    static LOCKS: Mutex<Vec<(PathBuf, Weak<Mutex<()>>)>> = Mutex::new(Vec::new());
    let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    locks.retain(|(_, w)| w.strong_count() > 0);
    if let Some(lock) = locks
        .iter()
        .find(|(d, _)| d == dir)
        .and_then(|(_, w)| w.upgrade())
    {
        return lock;
    }
    let lock = Arc::new(Mutex::new(()));
    locks.push((dir.to_path_buf(), Arc::downgrade(&lock)));
    lock
}

impl Credentials {
    /// Gathers the credentials of `unit` and writes them to its
    /// directory, owned by `owner` (uid, gid); `None` when the unit
    /// configures none.
    ///
    /// Where flint may mount (a system flint), the directory is a small
    /// tmpfs of its own, made read-only once written, as systemd makes it:
    /// the service's user owns its files but can neither change them nor
    /// fill `/run`. A user flint writes a plain directory in its runtime
    /// directory.
    ///
    /// `superseded` is asked once the directory is flint's to write alone:
    /// when it says yes, nothing is written (another run's credentials may
    /// be there now).
    pub fn create(
        unit: &Unit,
        section: &str,
        user_mode: bool,
        owner: Option<(u32, u32)>,
        superseded: &dyn Fn() -> bool,
    ) -> Result<Option<Credentials>, CredentialError> {
        if !configured(unit, section) {
            return Ok(None);
        }
        if user_mode && std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|v| v.is_empty()) {
            return Err(CredentialError::Io {
                what: "a user flint keeps credentials in $XDG_RUNTIME_DIR, which is not set for",
                path: PathBuf::from(unit.id.as_str()),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        let got = gather(unit, section, user_mode)?;
        let dir = directory(unit.id.as_str(), user_mode);
        // One run's credentials at a time in this directory: a spawn of a
        // run that is over may still be writing them on another thread.
        let lock = directory_lock(&dir);
        let _written_alone = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if superseded() {
            return Err(CredentialError::Superseded);
        }
        let io_err = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| CredentialError::Io { what, path, source }
        };
        let parent = dir.parent().unwrap_or(Path::new("/"));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(io_err("creating", parent))?;
        let mount = !user_mode && crate::service::sandbox::can_make_namespaces();
        // A fresh directory each time: what an earlier one left goes.
        Credentials {
            dir: dir.clone(),
            mounted: mount,
        }
        .remove();
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_err("creating", &dir))?;
        let made = Credentials {
            dir: dir.clone(),
            mounted: mount,
        };
        let fs_flags = MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID;
        if mount {
            nix::mount::mount(
                Some("tmpfs"),
                &dir,
                Some("tmpfs"),
                fs_flags,
                Some("mode=0700,size=2m,nr_inodes=1024"),
            )
            .map_err(|e| io_err("mounting a tmpfs on", &dir)(io::Error::from(e)))?;
        }
        let written = (|| {
            for (id, data) in &got.files {
                let path = dir.join(id);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(0o400)
                    .open(&path)
                    .map_err(io_err("writing", &path))?;
                io::Write::write_all(&mut f, data).map_err(io_err("writing", &path))?;
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                        .map_err(io_err("changing the owner of", &path))?;
                }
            }
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                    .map_err(io_err("changing the owner of", &dir))?;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500))
                .map_err(io_err("changing the mode of", &dir))?;
            if mount {
                nix::mount::mount(
                    None::<&str>,
                    &dir,
                    None::<&str>,
                    fs_flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&str>,
                )
                .map_err(|e| io_err("making read-only", &dir)(io::Error::from(e)))?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            made.remove();
            return Err(e);
        }
        Ok(Some(made))
    }

    /// Removes the directory (its tmpfs first) and what is in it.
    pub fn remove(&self) {
        if self.mounted {
            // Not a mount point (a stale plain directory): EINVAL, fine.
            let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        }
        // The directory is read-only (0500): made writable first, unless
        // something else stands there.
        if std::fs::symlink_metadata(&self.dir).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        }
        let gone = match std::fs::symlink_metadata(&self.dir) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&self.dir),
            Ok(_) => std::fs::remove_file(&self.dir),
            Err(e) => Err(e),
        };
        if let Err(e) = gone
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_are_file_names() {
        assert!(name_valid("db.password"));
        assert!(!name_valid("a/b"));
        assert!(!name_valid(".."));
        assert!(!name_valid(""));
    }

    #[test]
    fn sizes_are_bounded_per_credential_and_in_total() {
        let mut g = Gathered {
            files: Vec::new(),
            total: 0,
        };
        assert!(g.add("a".into(), vec![0; SIZE_MAX + 1]).is_err());
        g.add("a".into(), vec![0; SIZE_MAX - 10]).unwrap();
        assert!(g.add("b".into(), vec![0; 20]).is_err());
    }
}
