//! The sd_notify server: the datagram socket a service finds in
//! `NOTIFY_SOCKET`, and the parsing of what services send on it.
//!
//! As in systemd's `manager_dispatch_notify_fd()`: one datagram is one
//! message of newline-separated `KEY=VALUE` lines, at most 4096 bytes;
//! larger or NUL-containing datagrams are dropped; the sender is known only
//! from `SCM_CREDENTIALS` (messages without them are dropped), and file
//! descriptors may ride along with `SCM_RIGHTS` (`FDSTORE=1`, `BARRIER=1`).
//! Which service a message belongs to, and whether `NotifyAccess=` lets it
//! through, is the caller's decision.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, UnixCredentials, sockopt};

/// Largest message systemd accepts (`PIPE_BUF`).
pub const MAX_MESSAGE: usize = 4096;
/// Largest number of fds taken from one message.
pub const MAX_FDS: usize = 768;

/// Why the notify socket could not be set up or read.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The socket could not be created or bound.
    #[error("cannot bind the notify socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A socket option could not be set.
    #[error("cannot set {what} on the notify socket: {source}")]
    Option {
        what: &'static str,
        source: nix::Error,
    },
}

/// One message from a service.
#[derive(Debug)]
pub struct Message {
    /// The sender, from `SCM_CREDENTIALS`.
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// The `KEY=VALUE` lines, in order (lines without `=` are dropped).
    pub fields: Vec<(String, String)>,
    /// File descriptors sent along.
    pub fds: Vec<OwnedFd>,
}

impl Message {
    /// The value of the last `key=` line.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key=1` was sent.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("1")
    }
}

/// Parses a datagram's text. `None` when systemd would drop it: empty,
/// too long, an embedded NUL (one trailing NUL is tolerated), not UTF-8.
pub fn parse_fields(data: &[u8]) -> Option<Vec<(String, String)>> {
    if data.is_empty() || data.len() > MAX_MESSAGE {
        return None;
    }
    let data = data.strip_suffix(b"\0").unwrap_or(data);
    if data.contains(&0) {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    Some(
        text.split('\n')
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// The bound notify socket.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds the socket at `path` (a stale node is replaced), with
    /// `SO_PASSCRED` and a large receive buffer, non-blocking.
    pub fn bind(path: &Path) -> Result<NotifySocket, NotifyError> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::remove_file(path);
        let socket = UnixDatagram::bind(path).map_err(|source| NotifyError::Bind {
            path: path.to_path_buf(),
            source,
        })?;
        socket
            .set_nonblocking(true)
            .map_err(|source| NotifyError::Bind {
                path: path.to_path_buf(),
                source,
            })?;
        socket::setsockopt(&socket, sockopt::PassCred, &true).map_err(|source| {
            NotifyError::Option {
                what: "SO_PASSCRED",
                source,
            }
        })?;
        // Best effort: a big buffer keeps bursts of messages from being lost.
        let _ = socket::setsockopt(&socket, sockopt::RcvBuf, &(8 * 1024 * 1024));
        // Services under another user must be able to send (systemd: 0777).
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777));
        Ok(NotifySocket {
            socket,
            path: path.to_path_buf(),
        })
    }

    /// The value for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads one datagram: `Ok(None)` when nothing is queued,
    /// `Ok(Some(None))` for one dropped, so that a reader can count those
    /// too and a flood of junk cannot hold it.
    pub fn recv_one(&self) -> std::io::Result<Option<Option<Message>>> {
        loop {
            let mut buf = vec![0u8; MAX_MESSAGE + 1];
            let mut cmsg = nix::cmsg_space!(UnixCredentials, [RawFd; MAX_FDS]);
            let (len, creds, fds) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = match socket::recvmsg::<()>(
                    self.socket.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_TRUNC,
                ) {
                    Ok(m) => m,
                    Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(std::io::Error::from(e)),
                };
                let mut creds = None;
                let mut fds: Vec<OwnedFd> = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        match c {
                            ControlMessageOwned::ScmCredentials(cr) => creds = Some(cr),
                            ControlMessageOwned::ScmRights(list) => {
                                // SAFETY: the kernel installed these fds in our table for us.
                                fds.extend(
                                    list.into_iter()
                                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                                );
                            }
                            _ => {}
                        }
                    }
                }
                (msg.bytes, creds, fds)
            };
            let Some(creds) = creds else {
                warn_limited(format_args!(
                    "notify: message without credentials, dropping"
                ));
                return Ok(Some(None));
            };
            if len > MAX_MESSAGE {
                warn_limited(format_args!(
                    "notify: message from pid {} too long, dropping",
                    creds.pid()
                ));
                return Ok(Some(None));
            }
            let Some(fields) = parse_fields(&buf[..len]) else {
                warn_limited(format_args!(
                    "notify: malformed message from pid {}, dropping",
                    creds.pid()
                ));
                return Ok(Some(None));
            };
            return Ok(Some(Some(Message {
                pid: creds.pid(),
                uid: creds.uid(),
                gid: creds.gid(),
                fields,
                fds,
            })));
        }
    }
}

/// At most this many warnings about dropped messages per
/// [`WARN_INTERVAL`] (systemd's `log_ratelimit_*`), so that a process
/// sending junk cannot flood flint's log.
const WARN_BURST: u32 = 10;
const WARN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

fn warn_limited(what: std::fmt::Arguments<'_>) {
    static STATE: std::sync::Mutex<Option<crate::logs::Window>> = std::sync::Mutex::new(None);
    let mut state = STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = std::time::Instant::now();
    let limit = state.get_or_insert(crate::logs::Window::new(now));
    let (say, unsaid) = limit.count(now, WARN_INTERVAL, WARN_BURST);
    if unsaid > 0 {
        tracing::warn!("notify: {unsaid} more messages dropped without a warning");
    }
    if say {
        tracing::warn!("{what}");
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_about_dropped_messages_are_rate_limited() {
        let start = std::time::Instant::now();
        let mut limit = crate::logs::Window::new(start);
        let said = (0..25)
            .filter(|_| limit.count(start, WARN_INTERVAL, WARN_BURST).0)
            .count();
        assert_eq!(said, WARN_BURST as usize);
        // The next interval says how many went unsaid, and speaks again.
        assert_eq!(
            limit.count(start + WARN_INTERVAL, WARN_INTERVAL, WARN_BURST),
            (true, 15)
        );
    }

    #[test]
    fn parses_like_systemd() {
        // Vectors after systemd's notify-recv.c behaviour.
        assert_eq!(
            parse_fields(b"READY=1\nSTATUS=up and running"),
            Some(vec![
                ("READY".into(), "1".into()),
                ("STATUS".into(), "up and running".into())
            ])
        );
        assert_eq!(
            parse_fields(b"READY=1\n\0"),
            Some(vec![("READY".into(), "1".into())]),
            "one trailing NUL is tolerated"
        );
        assert_eq!(
            parse_fields(b"READY=1\0STATUS=x"),
            None,
            "embedded NUL drops the message"
        );
        assert_eq!(parse_fields(b""), None);
        assert_eq!(parse_fields(&vec![b'a'; MAX_MESSAGE + 1]), None);
        assert_eq!(
            parse_fields(b"junk\nA=b=c"),
            Some(vec![("A".into(), "b=c".into())]),
            "lines without = are ignored; the value keeps later ="
        );
        assert_eq!(parse_fields(&[0xff, b'=', b'1']), None, "not UTF-8");
    }

    #[test]
    fn receives_with_credentials_and_fds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = NotifySocket::bind(&path).unwrap();
        assert!(server.recv_one().unwrap().flatten().is_none());
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"READY=1\nSTATUS=hello", &path).unwrap();
        let m = server.recv_one().unwrap().flatten().expect("a message");
        assert_eq!(m.pid, i32::try_from(std::process::id()).unwrap());
        assert!(m.flag("READY"));
        assert_eq!(m.get("STATUS"), Some("hello"));
        // With an fd attached (FDSTORE=1).
        let (a, _b) = UnixDatagram::pair().unwrap();
        let fds = [a.as_raw_fd()];
        let iov = [std::io::IoSlice::new(b"FDSTORE=1\nFDNAME=x")];
        let addr = socket::UnixAddr::new(&path).unwrap();
        socket::sendmsg(
            client.as_raw_fd(),
            &iov,
            &[socket::ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&addr),
        )
        .unwrap();
        let m = server.recv_one().unwrap().flatten().expect("a message");
        assert_eq!(m.fds.len(), 1);
        assert_eq!(m.get("FDNAME"), Some("x"));
        drop(server);
        assert!(!path.exists(), "the node is removed with the socket");
    }
}
