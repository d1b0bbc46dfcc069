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
//! Parsing follows journald's `server_process_syslog_message()`: the text
//! up to a NUL, whitespace stripped at both ends, a `<PRI>` prefix
//! (`syslog_parse_priority()`, user.info when there is none), an optional
//! `Mmm dd hh:mm:ss ` date (`syslog_skip_timestamp()`), then
//! `IDENTIFIER[PID]: ` (`syslog_parse_identifier()`: the first word, when
//! it ends in `:`), then the text. Beyond journald, which stores an RFC
//! 5424 message as it came, its header (`1 TIMESTAMP HOST APP PROCID MSGID
//! SD`) is taken apart as rsyslog does, APP becoming the identifier. The
//! sender is known from its credentials (`SO_PASSCRED`), not from what it
//! claims.

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
    /// The syslog priority (facility * 8 + severity), 14 (user.info) when
    /// the message has none.
    pub priority: u16,
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

/// The bound socket; the node is removed when it is dropped (if it is
/// still the one flint made).
#[derive(Debug)]
pub struct DevLog {
    socket: UnixDatagram,
    path: PathBuf,
    /// The node's device and inode.
    node: (u64, u64),
    buf: std::cell::RefCell<Vec<u8>>,
}

impl DevLog {
    /// Binds a datagram socket at `path`, every user may send to it. A
    /// socket there that nobody serves any more (it refuses a connection)
    /// is replaced; one that answers (a syslog daemon, journald), or that
    /// flint may not reach, is left alone, as is anything that is not a
    /// socket. The socket is bound under a staged name, given its mode
    /// through an `O_PATH` fd (never by following a link), and moved into
    /// place.
    pub fn bind(path: &Path) -> Result<DevLog, SyslogError> {
        Self::bind_following(path, 8)
    }

    /// [`DevLog::bind`], following at most `links` links that lead where
    /// nothing is yet.
    fn bind_following(path: &Path, links: u32) -> Result<DevLog, SyslogError> {
        use std::os::unix::fs::FileTypeExt;
        let bind_err = |source| SyslogError::Bind {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) => {
                let probe = UnixDatagram::unbound().and_then(|s| s.connect(path));
                let errno = probe.as_ref().err().and_then(std::io::Error::raw_os_error);
                // A link to where no logger listens yet (Debian's /dev/log
                // leads to /run/systemd/journal/dev-log, absent on a fresh
                // /run): flint listens at its target and the link stays,
                // as journald binds the target.
                if meta.file_type().is_symlink() && errno == Some(libc::ENOENT) && links > 0 {
                    let target = std::fs::read_link(path).map_err(bind_err)?;
                    let target = match path.parent() {
                        Some(dir) if target.is_relative() => dir.join(target),
                        _ => target,
                    };
                    return Self::bind_following(&target, links - 1);
                }
                let dead = errno == Some(libc::ECONNREFUSED);
                let socket_like = meta.file_type().is_socket() || meta.file_type().is_symlink();
                if !dead || !socket_like {
                    return Err(SyslogError::Taken(path.to_path_buf()));
                }
            }
            Err(_) => {
                if let Some(parent) = path.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
            }
        }
        let mut staged = path.as_os_str().to_owned();
        staged.push(format!(".{}.new", std::process::id()));
        let staged = PathBuf::from(staged);
        let _ = std::fs::remove_file(&staged);
        let socket = UnixDatagram::bind(&staged).map_err(bind_err)?;
        let placed = make_world_writable(&staged).and_then(|node| {
            std::fs::rename(&staged, path)?;
            Ok(node)
        });
        let node = match placed {
            Ok(node) => node,
            Err(e) => {
                let _ = std::fs::remove_file(&staged);
                return Err(bind_err(e));
            }
        };
        socket.set_nonblocking(true).map_err(bind_err)?;
        socket::setsockopt(&socket, sockopt::PassCred, &true).map_err(SyslogError::Option)?;
        // Best effort: a burst of messages waits here instead of being lost.
        let _ = socket::setsockopt(&socket, sockopt::RcvBuf, &(8 * 1024 * 1024));
        Ok(DevLog {
            socket,
            path: path.to_path_buf(),
            node,
            buf: std::cell::RefCell::new(vec![0; MAX_MESSAGE]),
        })
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads one datagram: `Ok(None)` when nothing is queued,
    /// `Ok(Some(None))` for one skipped (no credentials, nothing to say),
    /// so that a reader counts those too and junk cannot hold it.
    pub fn recv_one(&self) -> std::io::Result<Option<Option<Record>>> {
        let mut buf = self.buf.borrow_mut();
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
            let Some(pid) = pid else {
                return Ok(Some(None));
            };
            return Ok(Some(parse(pid, &buf[..len.min(MAX_MESSAGE)])));
        }
    }
}

/// Gives the socket node at `path` mode 0666 through an `O_PATH` fd of it
/// (a link put in its place is not followed), checking it is a socket;
/// returns its device and inode.
fn make_world_writable(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    let node = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let meta = node.metadata()?;
    if !meta.file_type().is_socket() {
        return Err(std::io::Error::other("not the socket flint bound"));
    }
    let via = format!("/proc/self/fd/{}", node.as_raw_fd());
    std::fs::set_permissions(&via, std::fs::Permissions::from_mode(0o666))?;
    Ok((meta.dev(), meta.ino()))
}

impl Drop for DevLog {
    fn drop(&mut self) {
        // Only flint's own node: not one a logger started since put there.
        use std::os::unix::fs::MetadataExt;
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.node) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Parses one datagram from `pid` (see the module documentation); `None`
/// when nothing is left to say.
pub fn parse(pid: i32, data: &[u8]) -> Option<Record> {
    // A C string: up to the first NUL.
    let data = data.split(|&b| b == 0).next().unwrap_or_default();
    let text = String::from_utf8_lossy(data);
    let mut rest: &str = text.trim_matches(is_space);
    let mut priority = 14u16;
    if let Some((p, after)) = parse_priority(rest) {
        priority = p;
        rest = after;
        if let Some(body) = rest.strip_prefix("1 ")
            && rfc5424_timestamp(body)
        {
            let (identifier, text) = rfc5424(body);
            return record(pid, priority, identifier, text);
        }
    }
    let rest = skip_timestamp(rest);
    let (identifier, text) = parse_identifier(rest);
    record(pid, priority, identifier, text)
}

fn record(pid: i32, priority: u16, identifier: Option<&str>, text: &str) -> Option<Record> {
    (!text.is_empty()).then(|| Record {
        pid,
        priority,
        identifier: identifier.map(str::to_owned),
        text: text.to_owned(),
    })
}

/// journald's `WHITESPACE`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// `syslog_parse_priority()` with the facility: `<` one to three digits
/// `>`; anything else leaves the text as it is.
fn parse_priority(s: &str) -> Option<(u16, &str)> {
    let after = s.strip_prefix('<')?;
    let end = after.find('>')?;
    let digits = &after[..end];
    if !(1..=3).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &after[end + 1..]))
}

/// Whether an RFC 5424 header follows the version: its timestamp is `-`
/// or a date and time (`2026-12-05T14:21:43...`).
fn rfc5424_timestamp(body: &str) -> bool {
    let stamp = body.split(' ').next().unwrap_or_default();
    stamp == "-" || (stamp.starts_with(|c: char| c.is_ascii_digit()) && stamp.contains('T'))
}

/// `syslog_skip_timestamp()`: `Mmm dd hh:mm:ss ` at the start, skipped.
fn skip_timestamp(s: &str) -> &str {
    #[derive(Clone, Copy)]
    enum C {
        Letter,
        Space,
        Number,
        SpaceOrNumber,
        Colon,
    }
    use C::{Colon, Letter, Number, Space, SpaceOrNumber};
    const SEQUENCE: [C; 16] = [
        Letter,
        Letter,
        Letter,
        Space,
        SpaceOrNumber,
        Number,
        Space,
        SpaceOrNumber,
        Number,
        Colon,
        SpaceOrNumber,
        Number,
        Colon,
        SpaceOrNumber,
        Number,
        Space,
    ];
    let b = s.as_bytes();
    if b.len() < SEQUENCE.len() {
        return s;
    }
    let ok = SEQUENCE.iter().zip(b).all(|(c, &x)| match c {
        Letter => x.is_ascii_alphabetic(),
        Space => x == b' ',
        Number => x.is_ascii_digit(),
        SpaceOrNumber => x == b' ' || x.is_ascii_digit(),
        Colon => x == b':',
    });
    if ok { &s[SEQUENCE.len()..] } else { s }
}

/// `syslog_parse_identifier()`: the first word, when it ends in `:`, is
/// `IDENTIFIER` or `IDENTIFIER[PID]`; one blank after it is the separator.
fn parse_identifier(s: &str) -> (Option<&str>, &str) {
    let p = s.trim_start_matches(is_space);
    let l = p.find(is_space).unwrap_or(p.len());
    let Some(word) = p[..l].strip_suffix(':') else {
        return (None, s);
    };
    let mut ident = word;
    if let Some(open) = word.strip_suffix(']').and_then(|w| w.rfind('[')) {
        ident = &word[..open];
    }
    let mut rest = &p[l..];
    if rest.starts_with(is_space) {
        rest = &rest[1..];
    }
    (Some(ident), rest)
}

/// `TIMESTAMP HOST APP PROCID MSGID SD MSG` after the version.
fn rfc5424(body: &str) -> (Option<&str>, &str) {
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
    (app, rest)
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
        // No header at all: the text as it is, user.info.
        let r = p("just words");
        assert_eq!(
            (r.priority, r.identifier, r.text.as_str()),
            (14, None, "just words")
        );
        // syslog_parse_priority(): up to three digits, any value; anything
        // else is no priority and stays in the text.
        let r = p("<999>x: y");
        assert_eq!(
            (r.priority, r.identifier.as_deref(), r.text.as_str()),
            (999, Some("x"), "y")
        );
        let r = p("<+5>x: y");
        assert_eq!(
            (r.priority, r.identifier.as_deref(), r.text.as_str()),
            (14, Some("<+5>x"), "y")
        );
        // syslog_parse_identifier(): only a first word that ends in `:`;
        // one blank is the separator, the rest of the indentation stays.
        let r = p("<13>http://example.org is down");
        assert_eq!(
            (r.identifier, r.text.as_str()),
            (None, "http://example.org is down")
        );
        let r = p("<13>Dec  5 14:21:43 tb[7]:    at frame 2");
        assert_eq!(
            (r.identifier.as_deref(), r.text.as_str()),
            (Some("tb"), "   at frame 2")
        );
        // Whitespace around the message goes; a NUL ends it.
        let r = p("  <13>tag: a b \t\n");
        assert_eq!((r.priority, r.text.as_str()), (13, "a b"));
        let r = parse(7, b"<13>tag: before\0after").unwrap();
        assert_eq!(r.text, "before");
        // Not RFC 5424 for a `1 ` that no timestamp follows.
        let r = p("<14>1 file(s) failed to copy");
        assert_eq!(
            (r.identifier, r.text.as_str()),
            (None, "1 file(s) failed to copy")
        );
        let r = p("<14>1 - - app - - - nil timestamp");
        assert_eq!(
            (r.identifier.as_deref(), r.text.as_str()),
            (Some("app"), "nil timestamp")
        );
        // Any three letters make the date journald skips; a space-padded
        // hour too.
        let r = p("<13>Foo  5  4:21:43 me: padded");
        assert_eq!(
            (r.identifier.as_deref(), r.text.as_str()),
            (Some("me"), "padded")
        );
        // Nothing to say.
        assert_eq!(parse(7, b"<13>Dec  5 14:21:43 tag: \n"), None);
        assert_eq!(parse(7, b""), None);
    }

    #[test]
    fn a_link_to_nothing_yet_is_followed_and_kept() {
        // Debian's /dev/log -> /run/systemd/journal/dev-log, on a /run
        // where no journald made it.
        let t = tempfile::tempdir().unwrap();
        let link = t.path().join("log");
        std::os::unix::fs::symlink("journal/dev-log", &link).unwrap();
        let log = DevLog::bind(&link).unwrap();
        let target = t.path().join("journal/dev-log");
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::symlink_metadata(&target)
                .unwrap()
                .file_type()
                .is_socket()
        );
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let sender = UnixDatagram::unbound().unwrap();
        sender
            .send_to(b"<11>Dec  5 14:21:43 me[1]: via the link", &link)
            .unwrap();
        let mut got = None;
        for _ in 0..100 {
            if let Ok(Some(Some(r))) = log.recv_one() {
                got = Some(r.text);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(got.as_deref(), Some("via the link"));
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
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dead).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o666, "anyone may log");
        }
        assert_eq!(
            std::fs::read_dir(t.path()).unwrap().count(),
            3,
            "no staged name left"
        );
        let sender = UnixDatagram::unbound().unwrap();
        sender
            .send_to(b"<11>Dec  5 14:21:43 me[1]: oops", &dead)
            .unwrap();
        let r = log.recv_one().unwrap().flatten().unwrap();
        assert_eq!(r.pid, i32::try_from(std::process::id()).unwrap());
        assert_eq!((r.priority, r.text.as_str()), (11, "oops"));
        assert_eq!(log.recv_one().unwrap(), None);
        // Junk is reported as skipped, one datagram at a time.
        sender.send_to(b"  \n", &dead).unwrap();
        assert_eq!(log.recv_one().unwrap(), Some(None));
        assert_eq!(log.recv_one().unwrap(), None);
        drop(log);
        assert!(!dead.exists(), "the node goes with it");
        // A node put in its place since is not flint's to remove.
        let log = DevLog::bind(&dead).unwrap();
        std::fs::remove_file(&dead).unwrap();
        let _other = UnixDatagram::bind(&dead).unwrap();
        drop(log);
        assert!(dead.exists(), "another logger's node stays");
    }
}
