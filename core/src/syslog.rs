//! `/dev/log` for the services: a datagram socket that takes what they send
//! through `syslog(3)` (or `logger`) and puts it in flint's log under the
//! unit that sent it, as journald's `/dev/log` does under systemd.
//!
//! In a container or on a system without a syslog daemon, `/dev/log` does
//! not exist and what daemons log this way is lost: haproxy refuses to log,
//! postfix, cron, sshd, dovecot and vsftpd log nothing. `flint run
//! --dev-log` makes it, as systemd does with journald's
//! `systemd-journald-dev-log.socket`.
//!
//! Parsing follows journald's `server_process_syslog_message()`: a
//! `<PRI>` prefix, then either an RFC 5424 header (`1 TIMESTAMP HOST APP
//! PROCID MSGID SD`) or an RFC 3164 one (an optional `Mmm dd hh:mm:ss `
//! date, then `IDENTIFIER[PID]: `), then the text. The sender is known from
//! its credentials (`SO_PASSCRED`), not from what it claims.

use std::io::IoSliceMut;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, UnixCredentials, sockopt};

/// The longest datagram read; longer ones are cut, as journald cuts them.
const MAX_MESSAGE: usize = 64 * 1024;

/// One message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The sender's pid, from its credentials.
    pub pid: i32,
    /// The syslog priority (severity and facility), 13 (user.notice) when
    /// the message has none.
    pub priority: u8,
    /// The identifier (`TAG` of `TAG[PID]:`, or RFC 5424's APP-NAME).
    pub identifier: Option<String>,
    pub text: String,
}

/// Why the socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    #[error("{}: another logger serves it", .0.display())]
    Taken(PathBuf),
    #[error("{}: {source}", path.display())]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("SO_PASSCRED: {0}")]
    Option(nix::errno::Errno),
}

/// The bound socket; the node is removed when it is dropped.
#[derive(Debug)]
pub struct DevLog {
    socket: UnixDatagram,
    path: PathBuf,
}

impl DevLog {
    /// Binds a datagram socket at `path`, every user may send to it. A
    /// socket there that nobody serves any more is replaced; one that
    /// answers (a syslog daemon, journald) is left alone, as is anything
    /// that is not a socket.
    pub fn bind(path: &Path) -> Result<DevLog, SyslogError> {
        use std::os::unix::fs::FileTypeExt;
        match std::fs::symlink_metadata(path) {
            Ok(meta) => {
                let live = UnixDatagram::unbound()
                    .and_then(|s| s.connect(path))
                    .is_ok();
                let socket_like = meta.file_type().is_socket() || meta.file_type().is_symlink();
                if live || !socket_like {
                    return Err(SyslogError::Taken(path.to_path_buf()));
                }
                let _ = std::fs::remove_file(path);
            }
            Err(_) => {
                if let Some(parent) = path.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
            }
        }
        let bind_err = |source| SyslogError::Bind {
            path: path.to_path_buf(),
            source,
        };
        let socket = UnixDatagram::bind(path).map_err(bind_err)?;
        socket.set_nonblocking(true).map_err(bind_err)?;
        socket::setsockopt(&socket, sockopt::PassCred, &true).map_err(SyslogError::Option)?;
        // Best effort: a burst of messages waits here instead of being lost.
        let _ = socket::setsockopt(&socket, sockopt::RcvBuf, &(8 * 1024 * 1024));
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666));
        Ok(DevLog {
            socket,
            path: path.to_path_buf(),
        })
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads one message; `Ok(None)` when nothing is queued. A message
    /// without credentials or with nothing to say is skipped.
    pub fn recv(&self) -> std::io::Result<Option<Record>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let mut cmsg = nix::cmsg_space!(UnixCredentials);
            let (len, pid) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = match socket::recvmsg::<()>(
                    self.socket.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Ok(m) => m,
                    Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(std::io::Error::from(e)),
                };
                let mut pid = None;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmCredentials(cr) = c {
                            pid = Some(cr.pid());
                        }
                    }
                }
                (msg.bytes, pid)
            };
            let Some(pid) = pid else { continue };
            if let Some(record) = parse(pid, &buf[..len.min(MAX_MESSAGE)]) {
                return Ok(Some(record));
            }
        }
    }
}

impl Drop for DevLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Parses one datagram from `pid` (see the module documentation); `None`
/// when nothing is left to say.
pub fn parse(pid: i32, data: &[u8]) -> Option<Record> {
    let text = String::from_utf8_lossy(data);
    // Trailing newlines and NULs, as journald strips them.
    let mut rest: &str = text.trim_end_matches(['\n', '\r', '\0']);
    let mut priority = 13u8;
    if let Some(after) = rest.strip_prefix('<')
        && let Some(end) = after.find('>')
        && (1..=3).contains(&end)
        && let Ok(p) = after[..end].parse::<u8>()
        && p < 192
    {
        priority = p;
        rest = &after[end + 1..];
    }
    let (identifier, text) = if let Some(body) = rest.strip_prefix("1 ") {
        rfc5424(body)
    } else {
        rfc3164(rest)
    };
    let text = text.trim_start().to_string();
    if text.is_empty() {
        return None;
    }
    Some(Record {
        pid,
        priority,
        identifier,
        text,
    })
}

/// `TIMESTAMP HOST APP PROCID MSGID SD MSG` after the version.
fn rfc5424(body: &str) -> (Option<String>, &str) {
    let mut rest = body;
    let mut fields = Vec::new();
    for _ in 0..5 {
        let (field, after) = rest.split_once(' ').unwrap_or((rest, ""));
        fields.push(field);
        rest = after;
    }
    // Structured data: `-`, or one or more `[...]` elements.
    if let Some(after) = rest.strip_prefix("- ") {
        rest = after;
    } else if rest == "-" {
        rest = "";
    } else {
        while rest.starts_with('[') {
            let mut escaped = false;
            let mut end = None;
            for (i, c) in rest.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    ']' if !escaped => {
                        end = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            if let Some(i) = end {
                rest = &rest[i + 1..];
            } else {
                rest = "";
                break;
            }
        }
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    }
    // A byte-order mark may start the text.
    let rest = rest.strip_prefix('\u{feff}').unwrap_or(rest);
    let app = fields
        .get(2)
        .copied()
        .filter(|a| !a.is_empty() && *a != "-");
    (app.map(str::to_owned), rest)
}

/// An optional `Mmm dd hh:mm:ss ` date, then `IDENTIFIER[PID]: ` or
/// `IDENTIFIER: `.
fn rfc3164(body: &str) -> (Option<String>, &str) {
    let rest = skip_date(body);
    // The identifier: up to `[` or `:`, without blanks.
    let end = rest
        .find(|c: char| c == '[' || c == ':' || c.is_whitespace())
        .unwrap_or(rest.len());
    if end == 0 {
        return (None, rest);
    }
    let ident = &rest[..end];
    let mut after = &rest[end..];
    if let Some(p) = after.strip_prefix('[') {
        match p.find(']') {
            Some(close) => after = &p[close + 1..],
            None => return (None, rest),
        }
    }
    match after.strip_prefix(':') {
        Some(text) => (Some(ident.to_owned()), text),
        None => (None, rest),
    }
}

/// `Mmm dd hh:mm:ss ` (`Dec  5 14:21:43 `) at the start, skipped.
fn skip_date(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() < 16 {
        return s;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digit_or_space = |c: u8| c.is_ascii_digit() || c == b' ';
    let ok = MONTHS.iter().any(|m| s.starts_with(m))
        && b[3] == b' '
        && digit_or_space(b[4])
        && b[5].is_ascii_digit()
        && b[6] == b' '
        && b[7].is_ascii_digit()
        && b[8].is_ascii_digit()
        && b[9] == b':'
        && b[10].is_ascii_digit()
        && b[11].is_ascii_digit()
        && b[12] == b':'
        && b[13].is_ascii_digit()
        && b[14].is_ascii_digit()
        && b[15] == b' ';
    if ok { &s[16..] } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(data: &str) -> Record {
        parse(7, data.as_bytes()).expect("a record")
    }

    #[test]
    fn what_glibc_and_logger_send_is_parsed_as_journald_parses_it() {
        // glibc's syslog() with LOG_PID.
        let r = p("<30>Dec  5 14:21:43 haproxy[123]: Proxy web started.");
        assert_eq!(r.priority, 30);
        assert_eq!(r.identifier.as_deref(), Some("haproxy"));
        assert_eq!(r.text, "Proxy web started.");
        assert_eq!(r.pid, 7, "the pid is the sender's, not the claimed one");
        // logger's default: no pid.
        let r = p("<13>Dec 15 01:02:03 mytag: hello there\n");
        assert_eq!(
            (r.identifier.as_deref(), r.text.as_str()),
            (Some("mytag"), "hello there")
        );
        // postfix's identifiers carry a slash.
        let r = p("<22>Dec  5 14:21:43 postfix/smtpd[99]: connect from x");
        assert_eq!(r.identifier.as_deref(), Some("postfix/smtpd"));
        // RFC 5424, with structured data.
        let r = p(
            "<13>1 2026-12-05T14:21:43.489619+00:00 vm tag2 - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hi 5424",
        );
        assert_eq!(
            (r.identifier.as_deref(), r.text.as_str()),
            (Some("tag2"), "hi 5424")
        );
        let r = p("<165>1 2003-10-11T22:14:15.003Z host app 1 ID47 - text here");
        assert_eq!(
            (r.priority, r.identifier.as_deref(), r.text.as_str()),
            (165, Some("app"), "text here")
        );
        // No header at all: the text as it is, user.notice.
        let r = p("just words");
        assert_eq!(
            (r.priority, r.identifier, r.text.as_str()),
            (13, None, "just words")
        );
        // A bad priority is no priority (journald then takes it as part
        // of the identifier).
        let r = p("<999>x: y");
        assert_eq!(
            (r.priority, r.identifier.as_deref(), r.text.as_str()),
            (13, Some("<999>x"), "y")
        );
        // Nothing to say.
        assert_eq!(parse(7, b"<13>Dec  5 14:21:43 tag: \n"), None);
        assert_eq!(parse(7, b""), None);
    }

    #[test]
    fn a_live_socket_is_left_alone_and_a_dead_one_replaced() {
        let t = tempfile::tempdir().unwrap();
        let live = t.path().join("live");
        let _held = UnixDatagram::bind(&live).unwrap();
        assert!(matches!(DevLog::bind(&live), Err(SyslogError::Taken(_))));
        let file = t.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(DevLog::bind(&file), Err(SyslogError::Taken(_))));
        let dead = t.path().join("dead");
        drop(UnixDatagram::bind(&dead).unwrap());
        let log = DevLog::bind(&dead).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        sender
            .send_to(b"<11>Dec  5 14:21:43 me[1]: oops", &dead)
            .unwrap();
        let r = log.recv().unwrap().unwrap();
        assert_eq!(r.pid, i32::try_from(std::process::id()).unwrap());
        assert_eq!((r.priority, r.text.as_str()), (11, "oops"));
        assert_eq!(log.recv().unwrap(), None);
        drop(log);
        assert!(!dead.exists(), "the node goes with it");
    }
}
