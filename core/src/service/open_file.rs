//! `OpenFile=PATH[:FD-NAME[:OPTIONS]]` (systemd 253): files and unix sockets
//! the manager opens for a service's main process and passes after its
//! sockets and stored fds, counted in `LISTEN_FDS` and named in
//! `LISTEN_FDNAMES`, so a service can read a file its own user may not open.
//!
//! As systemd's `open_file_parse()` and `get_open_file_fd()` (v255): the value
//! is split at `:` with C escapes decoded, the name defaults to the path's last
//! component, the options are `read-only`, `append`, `truncate` (at most one of
//! them) and `graceful`. A socket is connected (datagram, then stream, then
//! sequential packet, whichever its type is) and shut for writing when
//! read-only; anything else is opened read-write unless read-only. A path
//! that cannot be opened fails the start with 202/FDS, unless `graceful`.
//!
//! systemd opens them in the service's child before any other setup, with the
//! manager's privileges and mount namespace; flint opens them on the spawn's
//! thread right before the spawn, with the same privileges, so a path on a
//! hung file system holds up that start and not the event loop. One
//! difference: the open never waits (`O_NONBLOCK` at open, then cleared), so
//! a read-only FIFO without a writer, or a unix socket whose backlog is full,
//! does not hold the spawn up. The FIFO is passed without a writer (the
//! service's first read sees the end of the file), the socket fails to
//! connect (`EAGAIN`).

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, fcntl, open};
use nix::sys::socket::{
    AddressFamily, Shutdown, SockFlag, SockType, UnixAddr, connect, shutdown, socket,
};
use nix::sys::stat::{Mode, SFlag, fstat};

use crate::unit::value::words::{ExtractFlags, extract_first_word};

/// One `OpenFile=` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFile {
    pub path: String,
    pub fd_name: String,
    pub read_only: bool,
    pub append: bool,
    pub truncate: bool,
    pub graceful: bool,
}

/// Why an `OpenFile=` value is refused (systemd: `EINVAL`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Failed to parse OpenFile= setting, ignoring: {0}")]
pub struct ParseError(pub String);

/// Why an entry could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("Could not open \"{path}\": {errno}")]
    Open { path: String, errno: Errno },
    #[error("Failed to connect socket for {path}: {errno}")]
    Connect { path: String, errno: Errno },
    #[error("Failed to shutdown send for socket {path}: {errno}")]
    Shutdown { path: String, errno: Errno },
}

impl OpenFile {
    /// systemd's `open_file_parse()`.
    pub fn parse(value: &str) -> Result<OpenFile, ParseError> {
        let bad = || ParseError(value.to_string());
        let flags = ExtractFlags {
            dont_coalesce_separators: true,
            cunescape: true,
            ..ExtractFlags::default()
        };
        let mut cursor = Some(value);
        let mut words: Vec<String> = Vec::with_capacity(3);
        while words.len() < 3 {
            match extract_first_word(&mut cursor, Some(":"), flags).map_err(|_| bad())? {
                Some(w) => words.push(w),
                None => break,
            }
        }
        // At most three words.
        if cursor.is_some_and(|rest| !rest.is_empty()) {
            return Err(bad());
        }
        let mut words = words.into_iter();
        let path = words.next().ok_or_else(bad)?;
        let mut fd_name = words.next().unwrap_or_default();
        let options = words.next().unwrap_or_default();
        let mut of = OpenFile {
            path,
            fd_name: String::new(),
            read_only: false,
            append: false,
            truncate: false,
            graceful: false,
        };
        for word in options.split(',').filter(|w| !w.is_empty()) {
            let flag = match word {
                "read-only" => &mut of.read_only,
                "append" => &mut of.append,
                "truncate" => &mut of.truncate,
                "graceful" => &mut of.graceful,
                _ => return Err(bad()),
            };
            if *flag {
                return Err(bad());
            }
            *flag = true;
        }
        if fd_name.is_empty() {
            fd_name = last_component(&of.path).ok_or_else(bad)?.to_string();
        }
        of.fd_name = fd_name;
        let exclusive = [of.read_only, of.append, of.truncate]
            .iter()
            .filter(|f| **f)
            .count();
        if !of.path.starts_with('/')
            || !crate::unit::value::exec::path_is_valid(&of.path)
            || !crate::unit::load::fdname_is_valid(&of.fd_name)
            || exclusive > 1
        {
            return Err(bad());
        }
        Ok(of)
    }

    /// systemd's `get_open_file_fd()`: a connected socket or an open file,
    /// close-on-exec (the child clears that on the fds it passes).
    pub fn open(&self) -> Result<OwnedFd, OpenError> {
        let path = self.path.as_str();
        let opened = |errno| OpenError::Open {
            path: path.to_string(),
            errno,
        };
        let probe = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(opened)?;
        let st = fstat(&probe).map_err(opened)?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK {
            let fd = self.connect(&probe)?;
            if self.read_only {
                shutdown(fd.as_raw_fd(), Shutdown::Write).map_err(|errno| OpenError::Shutdown {
                    path: path.to_string(),
                    errno,
                })?;
            }
            return Ok(fd);
        }
        let mut flags = if self.read_only {
            OFlag::O_RDONLY
        } else {
            OFlag::O_RDWR
        };
        if self.append {
            flags |= OFlag::O_APPEND;
        } else if self.truncate {
            flags |= OFlag::O_TRUNC;
        }
        // Reopened through /proc, as systemd's fd_reopen(), so the file is
        // the one the probe found; without /proc, by its path.
        let via_proc = format!("/proc/self/fd/{}", probe.as_raw_fd());
        let flags = flags | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = match open(via_proc.as_str(), flags, Mode::empty()) {
            Err(Errno::ENOENT) => open(path, flags, Mode::empty()),
            other => other,
        }
        .map_err(opened)?;
        // Blocking again: what the service gets is what systemd's open
        // gives it.
        let fl = OFlag::from_bits_truncate(fcntl(&fd, nix::fcntl::F_GETFL).map_err(opened)?);
        fcntl(&fd, nix::fcntl::F_SETFL(fl - OFlag::O_NONBLOCK)).map_err(opened)?;
        Ok(fd)
    }

    /// systemd's `connect_unix_harder()`: the socket's type is not known
    /// from its inode, so each type is tried until one is not the wrong one.
    fn connect(&self, probe: &OwnedFd) -> Result<OwnedFd, OpenError> {
        let failed = |errno| OpenError::Connect {
            path: self.path.clone(),
            errno,
        };
        // The probe's /proc path reaches the socket even where its own path
        // is longer than a socket address holds.
        let via_proc = format!("/proc/self/fd/{}", probe.as_raw_fd());
        let addr = UnixAddr::new(via_proc.as_str()).map_err(failed)?;
        for ty in [SockType::Datagram, SockType::Stream, SockType::SeqPacket] {
            let fd = socket(
                AddressFamily::Unix,
                ty,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                None,
            )
            .map_err(failed)?;
            match connect(fd.as_raw_fd(), &addr) {
                Err(Errno::EPROTOTYPE) => {}
                Err(e) => return Err(failed(e)),
                Ok(()) => {
                    let fl =
                        OFlag::from_bits_truncate(fcntl(&fd, nix::fcntl::F_GETFL).map_err(failed)?);
                    fcntl(&fd, nix::fcntl::F_SETFL(fl - OFlag::O_NONBLOCK)).map_err(failed)?;
                    return Ok(fd);
                }
            }
        }
        Err(failed(Errno::EPROTOTYPE))
    }
}

impl fmt::Display for OpenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)
    }
}

/// systemd's `path_extract_filename()`: the last component, `None` for `/`.
fn last_component(path: &str) -> Option<&str> {
    path.split('/')
        .rev()
        .find(|c| !c.is_empty() && *c != ".")
        .filter(|c| *c != "..")
}

/// The entries of a unit's `OpenFile=` lines that parse, in line order.
pub fn of_unit(unit: &crate::unit::load::Unit, section: &str) -> Vec<OpenFile> {
    unit.entries(section, "OpenFile")
        .iter()
        .filter_map(|(v, _)| match v {
            crate::unit::load::Value::Raw(s) | crate::unit::load::Value::Str(s) => {
                OpenFile::parse(s).ok()
            }
            _ => None,
        })
        .collect()
}

/// Opens every entry, in order: the fds with their names. An entry that
/// cannot be opened is skipped when it is `graceful` and fails them all
/// otherwise.
pub fn open_all(entries: &[OpenFile]) -> Result<Vec<(OwnedFd, String)>, OpenError> {
    let mut out = Vec::with_capacity(entries.len());
    for of in entries {
        match of.open() {
            Ok(fd) => out.push((fd, of.fd_name.clone())),
            Err(e) if of.graceful => {
                tracing::debug!("Failed to get OpenFile= file descriptor for {of}, ignoring: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn parse(v: &str) -> Result<OpenFile, ParseError> {
        OpenFile::parse(v)
    }

    #[test]
    fn parses_as_systemd() {
        let of = parse("/etc/hosts").unwrap();
        assert_eq!(of.fd_name, "hosts");
        assert!(!of.read_only && !of.graceful);
        let of = parse("/test-77-open.dat:open:read-only").unwrap();
        assert_eq!(
            (of.path.as_str(), of.fd_name.as_str(), of.read_only),
            ("/test-77-open.dat", "open", true)
        );
        // An empty name is the file's name; options after two colons.
        let of = parse("/a/b.dat::read-only,graceful").unwrap();
        assert_eq!(of.fd_name, "b.dat");
        assert!(of.read_only && of.graceful);
        // A colon in the path, escaped.
        let of = parse("/run/a\\x3ab:name").unwrap();
        assert_eq!(of.path, "/run/a:b");
        let of = parse("/var/log/x.log:log:append").unwrap();
        assert!(of.append);
        // systemd's test-open-file.c refusals.
        for bad in [
            "",
            "relative/path",
            "/a:b:read-only:extra",
            "/a:b:read-only,read-only",
            "/a:b:read-only,append",
            "/a:b:append,truncate",
            "/a:b:nope",
            "/a:b\x01c",
            "/",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn opens_files_with_their_modes_and_skips_graceful_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "hello\n").unwrap();
        let p = path.to_str().unwrap();
        let fd = parse(&format!("{p}::read-only")).unwrap().open().unwrap();
        let mut f = std::fs::File::from(fd);
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello\n");
        assert!(f.write_all(b"x").is_err(), "read-only");
        // Blocking, as systemd's open gives it.
        let fl = fcntl(&f, nix::fcntl::F_GETFL).unwrap();
        assert_eq!(fl & libc::O_NONBLOCK, 0);
        let fd = parse(&format!("{p}::append")).unwrap().open().unwrap();
        std::fs::File::from(fd).write_all(b"more\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\nmore\n");
        let fd = parse(&format!("{p}::truncate")).unwrap().open().unwrap();
        drop(fd);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let missing = dir.path().join("missing");
        let m = missing.to_str().unwrap();
        let entries = vec![
            parse(p).unwrap(),
            parse(&format!("{m}:gone:graceful")).unwrap(),
        ];
        let got = open_all(&entries).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, "f");
        let err = open_all(&[parse(m).unwrap()]).unwrap_err();
        assert!(err.to_string().contains("No such file"), "{err}");
    }

    #[test]
    fn connects_to_a_socket_of_either_type() {
        let dir = tempfile::tempdir().unwrap();
        let stream = dir.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&stream).unwrap();
        let fd = parse(&format!("{}:sock:read-only", stream.display()))
            .unwrap()
            .open()
            .unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        // Shut for writing: the peer reads the end at once.
        let mut buf = Vec::new();
        peer.read_to_end(&mut buf).unwrap();
        assert!(buf.is_empty());
        peer.write_all(b"Socket\n").unwrap();
        drop(peer);
        let mut s = String::new();
        std::fs::File::from(fd).read_to_string(&mut s).ok();
        assert_eq!(s, "Socket\n");
        let dgram = dir.path().join("d");
        let server = std::os::unix::net::UnixDatagram::bind(&dgram).unwrap();
        let fd = parse(dgram.to_str().unwrap()).unwrap().open().unwrap();
        nix::unistd::write(&fd, b"hi").unwrap();
        let mut b = [0u8; 8];
        let n = server.recv(&mut b).unwrap();
        assert_eq!(&b[..n], b"hi");
    }
}
