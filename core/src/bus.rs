//! Just enough of D-Bus for flint: a client that tells when a
//! `Type=dbus` service has taken its `BusName=` (connect to the bus,
//! authenticate (`EXTERNAL`), `Hello`, then ask `NameHasOwner` until the
//! answer is yes), that stands in for systemd's activator on a bus flint
//! runs (own `org.freedesktop.systemd1`, read the bus daemon's
//! `ActivationRequest` signals, signal `ActivationFailure`), and the
//! server side of systemd's private socket, where `systemctl` calls the
//! manager's methods and reads its units' properties ([`marshal`] writes
//! the values those answers hold).
//!
//! Written here rather than taken from a D-Bus crate: flint makes a few
//! method calls, answers a few with plain values and reads strings,
//! numbers and string arrays, on threads of its own, while the crates made
//! for D-Bus (zbus, dbus-rs) bring an executor or libdbus, dozens of
//! dependencies and their code into a daemon whose idle memory is measured
//! in pages. The wire format below (little-endian messages, header fields
//! as `a(yv)`, 8-byte alignment) is the D-Bus specification's, and the
//! tests run it against a real `dbus-daemon` and Debian's `systemctl`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

mod marshal;
pub use marshal::{Any, Value, body as marshal_body, complete_types, read_any, read_args};

/// Message types.
pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;
/// The `NO_REPLY_EXPECTED` header flag.
const NO_REPLY_EXPECTED: u8 = 1;

/// Why the bus could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("no bus address: {0}")]
    Address(String),
    #[error("cannot connect to the bus at {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("bus i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("the bus refused authentication: {0}")]
    Auth(String),
    #[error("the bus answered with an error: {0}")]
    Call(String),
    #[error("malformed message from the bus")]
    Malformed,
}

/// Where a bus listens: a path or an abstract name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

/// Reads the first `unix:path=` or `unix:abstract=` address of a D-Bus
/// address list (`;`-separated, values `%`-escaped).
pub fn parse_address(list: &str) -> Option<Address> {
    for addr in list.split(';') {
        let Some(rest) = addr.strip_prefix("unix:") else {
            continue;
        };
        for kv in rest.split(',') {
            if let Some(v) = kv.strip_prefix("path=") {
                return Some(Address::Path(PathBuf::from(
                    String::from_utf8_lossy(&unescape(v)).into_owned(),
                )));
            }
            if let Some(v) = kv.strip_prefix("abstract=") {
                return Some(Address::Abstract(unescape(v)));
            }
        }
    }
    None
}

fn unescape(v: &str) -> Vec<u8> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = v.get(i + 1..i + 3)
            && let Ok(x) = u8::from_str_radix(h, 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The bus a service of this flint uses: the system bus
/// (`$DBUS_SYSTEM_BUS_ADDRESS`, else `/run/dbus/system_bus_socket`), or
/// with `--user` the session bus (`$DBUS_SESSION_BUS_ADDRESS`, else
/// `$XDG_RUNTIME_DIR/bus`).
pub fn default_address(user: bool) -> Result<Address, BusError> {
    let var = if user {
        "DBUS_SESSION_BUS_ADDRESS"
    } else {
        "DBUS_SYSTEM_BUS_ADDRESS"
    };
    if let Ok(list) = std::env::var(var) {
        return parse_address(&list)
            .ok_or_else(|| BusError::Address(format!("${var}={list}: no unix address")));
    }
    if user {
        let dir = std::env::var_os("XDG_RUNTIME_DIR").ok_or_else(|| {
            BusError::Address(
                "neither $DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR is set".into(),
            )
        })?;
        Ok(Address::Path(PathBuf::from(dir).join("bus")))
    } else {
        Ok(Address::Path(PathBuf::from("/run/dbus/system_bus_socket")))
    }
}

/// A connection to a bus, after `Hello`.
#[derive(Debug)]
pub struct Bus {
    stream: BufReader<UnixStream>,
    /// The writing side, shared with every [`Sender`] of the connection so
    /// that messages written from several threads never interleave.
    writer: Arc<Mutex<UnixStream>>,
    serial: Arc<AtomicU32>,
    /// Messages that arrived while a call waited for its reply (the bus
    /// daemon's requests right after flint took a name), for
    /// [`Bus::next_message`].
    queued: std::collections::VecDeque<Message>,
}

/// The header fields of a received message that flint reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub flags: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub signature: Option<String>,
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Message {
    pub header: Header,
    pub body: Vec<u8>,
}

impl Message {
    /// The first argument, if it is a string.
    pub fn first_string(&self) -> Option<String> {
        self.header
            .signature
            .as_deref()
            .is_some_and(|s| s.starts_with('s'))
            .then(|| read_string(&self.body, 0))
            .flatten()
    }

    /// The two arguments of a call of signature `ss`
    /// (`org.freedesktop.DBus.Properties.Get`: interface, property).
    pub fn two_strings(&self) -> Option<(String, String)> {
        if self.header.signature.as_deref() != Some("ss") {
            return None;
        }
        let first = read_string(&self.body, 0)?;
        // The second string starts at the next multiple of 4 after the
        // first one's length, bytes and NUL.
        let at = (4 + first.len() + 1).next_multiple_of(4);
        Some((first, read_string(&self.body, at)?))
    }
}

/// The writing half of a [`Bus`], for another thread: it shares the
/// connection's serial numbers and its writer.
#[derive(Debug, Clone)]
pub struct Sender {
    writer: Arc<Mutex<UnixStream>>,
    serial: Arc<AtomicU32>,
    /// The `SENDER` every message carries where no bus daemon sets it
    /// (sd-bus's `sd_bus_set_sender()`: systemd's private socket).
    name: Option<&'static str>,
}

/// Writes one whole message under the connection's lock.
fn write_locked(writer: &Mutex<UnixStream>, msg: &[u8]) -> Result<(), BusError> {
    let mut w = writer.lock().unwrap_or_else(PoisonError::into_inner);
    w.write_all(msg)?;
    Ok(())
}

impl Sender {
    /// A sender writing to `stream` (tests: one end of a socket pair).
    #[cfg(test)]
    pub(crate) fn over(stream: UnixStream) -> Sender {
        Sender {
            writer: Arc::new(Mutex::new(stream)),
            serial: Arc::new(AtomicU32::new(0)),
            name: None,
        }
    }

    /// This sender, its messages sent as from `name`: on a connection
    /// without a bus daemon, where a peer matches signals by their sender
    /// (systemctl's `is-system-running --wait` matches `StartupFinished`
    /// of `org.freedesktop.systemd1`, as systemd's private socket names
    /// itself).
    #[must_use]
    pub fn named(mut self, name: &'static str) -> Sender {
        self.name = Some(name);
        self
    }

    fn write(&self, msg: &[u8]) -> Result<(), BusError> {
        write_locked(&self.writer, msg)
    }

    /// Emits a signal whose arguments are all strings.
    pub fn signal(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[&str],
    ) -> Result<(), BusError> {
        let args: Vec<Value> = args.iter().map(|a| Value::Str((*a).to_string())).collect();
        self.signal_values(Some(destination), path, interface, member, &args)
    }

    /// Emits a signal with `args` (to `destination`, on a bus).
    pub fn signal_values(
        &self,
        destination: Option<&str>,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<(), BusError> {
        let serial = next_serial(&self.serial);
        self.write(&signal(
            serial,
            (self.name, destination),
            path,
            interface,
            member,
            args,
        ))
    }

    /// Answers the call `to` with `args`.
    pub fn reply(&self, to: &Header, args: &[Value]) -> Result<(), BusError> {
        let serial = next_serial(&self.serial);
        let (signature, body) = marshal::body(args);
        let mut fields = Vec::new();
        push_reply_fields(&mut fields, to);
        if !signature.is_empty() {
            push_field(&mut fields, 8, b'g', &signature);
        }
        if let Some(name) = self.name {
            push_field(&mut fields, 7, b's', name);
        }
        self.write(&message(
            METHOD_RETURN,
            NO_REPLY_EXPECTED,
            serial,
            &fields,
            &body,
        ))
    }

    /// Answers the call `to` with the error `name` and a text.
    pub fn reply_error(&self, to: &Header, name: &str, text: &str) -> Result<(), BusError> {
        let serial = next_serial(&self.serial);
        self.write(&error_reply(
            serial,
            to.serial,
            (self.name, to.sender.as_deref()),
            name,
            text,
        ))
    }
}

fn next_serial(serial: &AtomicU32) -> u32 {
    serial
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_add(1)
        .max(1)
}

impl Bus {
    /// Connects, authenticates as this process's uid and says `Hello`.
    /// Every read and write is bounded by `timeout`.
    pub fn connect(address: &Address, timeout: Duration) -> Result<Bus, BusError> {
        let stream = match address {
            Address::Path(p) => UnixStream::connect(p).map_err(|source| BusError::Connect {
                path: p.display().to_string(),
                source,
            })?,
            Address::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                UnixStream::connect_addr(&addr).map_err(|source| BusError::Connect {
                    path: format!("@{}", String::from_utf8_lossy(name)),
                    source,
                })?
            }
        };
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut bus = Bus {
            writer: Arc::new(Mutex::new(stream.try_clone()?)),
            stream: BufReader::new(stream),
            serial: Arc::new(AtomicU32::new(0)),
            queued: std::collections::VecDeque::new(),
        };
        bus.authenticate()?;
        bus.call("Hello", None)?;
        Ok(bus)
    }

    fn authenticate(&mut self) -> Result<(), BusError> {
        let uid = nix::unistd::geteuid().as_raw().to_string();
        // The uid's decimal digits, each as two hex digits ("0" is "30").
        let hex: String = uid
            .bytes()
            .flat_map(|b| [b >> 4, b & 15])
            .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
            .collect();
        let out = self.stream.get_mut();
        out.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(BusError::Auth(line.trim_end().to_string()));
        }
        self.stream.get_mut().write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    /// The server's side of a peer-to-peer connection that a client
    /// opened (systemd's private socket): SASL `EXTERNAL` as sd-bus and
    /// libdbus speak it (with the uid in `AUTH` or in a `DATA` answer to
    /// the server's empty challenge), `NEGOTIATE_UNIX_FD` agreed, then
    /// `BEGIN`. Every read and write is bounded by `timeout`.
    pub fn accept_peer(stream: UnixStream, timeout: Duration) -> Result<Bus, BusError> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut reader = BufReader::new(stream);
        let mut nul = [0u8; 1];
        reader.read_exact(&mut nul)?;
        if nul[0] != 0 {
            return Err(BusError::Auth("no leading NUL byte".into()));
        }
        let guid: String = {
            let mut g = [0u8; 16];
            // A server's GUID only has to differ between servers.
            let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut g));
            g.iter().fold(String::with_capacity(32), |mut hex, b| {
                use std::fmt::Write as _;
                let _ = write!(hex, "{b:02x}");
                hex
            })
        };
        let mut authed = false;
        loop {
            let mut line = String::new();
            // sd-bus's limit on an authentication line's length.
            if (&mut reader).take(16 * 1024).read_line(&mut line)? == 0 || !line.ends_with('\n') {
                return Err(BusError::Auth(
                    "the client left during authentication".into(),
                ));
            }
            let words: Vec<&str> = line.trim_end().split(' ').collect();
            let answer = match words.as_slice() {
                ["AUTH", "EXTERNAL"] => "DATA\r\n".to_string(),
                ["AUTH", "EXTERNAL", _] | ["DATA"] | ["DATA", _] => {
                    authed = true;
                    format!("OK {guid}\r\n")
                }
                ["NEGOTIATE_UNIX_FD"] if authed => "AGREE_UNIX_FD\r\n".to_string(),
                ["BEGIN"] if authed => break,
                ["CANCEL"] | ["ERROR", ..] => "REJECTED EXTERNAL\r\n".to_string(),
                _ if authed => "ERROR\r\n".to_string(),
                _ => "REJECTED EXTERNAL\r\n".to_string(),
            };
            reader.get_mut().write_all(answer.as_bytes())?;
        }
        Ok(Bus {
            writer: Arc::new(Mutex::new(reader.get_ref().try_clone()?)),
            stream: reader,
            serial: Arc::new(AtomicU32::new(0)),
            queued: std::collections::VecDeque::new(),
        })
    }

    /// Writes one whole message (under the lock every [`Sender`] takes).
    fn write(&self, msg: &[u8]) -> Result<(), BusError> {
        write_locked(&self.writer, msg)
    }

    /// Reads the next message a peer sends.
    pub fn read(&mut self) -> Result<Message, BusError> {
        self.read_message()
    }

    /// Whether someone owns `name` on the bus.
    pub fn name_has_owner(&mut self, name: &str) -> Result<bool, BusError> {
        let body = self.call("NameHasOwner", Some(name))?;
        let v = body.get(..4).ok_or(BusError::Malformed)?;
        Ok(u32::from_le_bytes([v[0], v[1], v[2], v[3]]) != 0)
    }

    /// Asks for `name` without queueing (`DBUS_NAME_FLAG_DO_NOT_QUEUE`);
    /// whether this connection is its primary owner now.
    pub fn request_name(&mut self, name: &str) -> Result<bool, BusError> {
        let mut body = Vec::new();
        push_string(&mut body, name);
        align(&mut body, 4);
        body.extend_from_slice(&4u32.to_le_bytes());
        let reply = self.call_body("RequestName", "su", &body)?;
        // 1: DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER, 4: ALREADY_OWNER.
        Ok(matches!(read_u32(&reply, 0), Some(1 | 4)))
    }

    /// Asks the bus for the signals of rule `rule` (`AddMatch`).
    pub fn add_match(&mut self, rule: &str) -> Result<(), BusError> {
        self.call("AddMatch", Some(rule)).map(|_| ())
    }

    /// The uid of the peer that owns `name` (`GetConnectionUnixUser`).
    pub fn unix_user(&mut self, name: &str) -> Result<u32, BusError> {
        let body = self.call("GetConnectionUnixUser", Some(name))?;
        read_u32(&body, 0).ok_or(BusError::Malformed)
    }

    /// A sender of signals on this connection, for another thread.
    pub fn sender(&self) -> Result<Sender, BusError> {
        Ok(Sender {
            writer: self.writer.clone(),
            serial: self.serial.clone(),
            name: None,
        })
    }

    /// Lifts the read timeout: the peer may stay silent for long (a
    /// `systemctl` waiting for its job's end).
    pub fn wait_without_timeout(&self) -> Result<(), BusError> {
        self.stream.get_ref().set_read_timeout(None)?;
        Ok(())
    }

    /// Waits for the next message without a time limit (the connection's
    /// read timeout is lifted): what arrived while a call waited for its
    /// reply first.
    pub fn next_message(&mut self) -> Result<Message, BusError> {
        self.stream.get_ref().set_read_timeout(None)?;
        match self.queued.pop_front() {
            Some(m) => Ok(m),
            None => self.read_message(),
        }
    }

    /// Calls `member` of the bus itself, with no argument or one string;
    /// returns the reply's body.
    fn call(&mut self, member: &str, arg: Option<&str>) -> Result<Vec<u8>, BusError> {
        let mut body = Vec::new();
        if let Some(a) = arg {
            push_string(&mut body, a);
        }
        self.call_body(member, if arg.is_some() { "s" } else { "" }, &body)
    }

    /// Calls `member` of the bus itself with a body of `signature`.
    fn call_body(
        &mut self,
        member: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, BusError> {
        let serial = next_serial(&self.serial);
        let msg = method_call_body(serial, member, signature, body);
        self.write(&msg)?;
        loop {
            let msg = self.read_message()?;
            match (msg.header.kind, msg.header.reply_serial) {
                (METHOD_RETURN, Some(s)) if s == serial => return Ok(msg.body),
                (ERROR, Some(s)) if s == serial => {
                    return Err(BusError::Call(
                        msg.header
                            .error_name
                            .or_else(|| read_string(&msg.body, 0))
                            .unwrap_or_default(),
                    ));
                }
                // Signals (NameAcquired after Hello, a request right after
                // a name was taken) and calls, for whoever reads next.
                // (Bounded: a bus daemon that floods a caller gets its
                // excess dropped rather than flint's memory filled.)
                (SIGNAL | METHOD_CALL, _) if self.queued.len() < 4096 => {
                    self.queued.push_back(msg);
                }
                _ => {}
            }
        }
    }

    /// Reads one message.
    fn read_message(&mut self) -> Result<Message, BusError> {
        loop {
            let mut fixed = [0u8; 16];
            self.stream.read_exact(&mut fixed)?;
            let big = match fixed[0] {
                b'l' => false,
                b'B' => true,
                _ => return Err(BusError::Malformed),
            };
            let word = |at: usize| {
                let b = [fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]];
                if big {
                    u32::from_be_bytes(b)
                } else {
                    u32::from_le_bytes(b)
                }
            };
            let body_len = u64::from(word(4));
            let fields_len = u64::from(word(12));
            let padded = (fields_len + 7) & !7;
            // A message flint does not read (in the other byte order, which
            // a bus passes on as its sender wrote it, or larger than flint
            // needs) is skipped whole, and the connection goes on.
            if big || body_len > 1 << 20 || fields_len > 1 << 16 {
                let skipped = std::io::copy(
                    &mut (&mut self.stream).take(padded + body_len),
                    &mut std::io::sink(),
                )?;
                if skipped < padded + body_len {
                    return Err(BusError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
                continue;
            }
            let (fields_len, padded, body_len) = (
                usize::try_from(fields_len).unwrap_or(0),
                usize::try_from(padded).unwrap_or(0),
                usize::try_from(body_len).unwrap_or(0),
            );
            let mut rest = vec![0u8; padded + body_len];
            self.stream.read_exact(&mut rest)?;
            // Header fields start at offset 16 of the message: offsets below
            // are from there, and 16 is a multiple of 8.
            let Ok(mut header) = header_fields(&rest[..fields_len]) else {
                continue;
            };
            header.kind = fixed[1];
            header.flags = fixed[2];
            header.serial = word(8);
            return Ok(Message {
                header,
                body: rest[padded..].to_vec(),
            });
        }
    }
}

/// A length as the wire's `u32` (flint's messages are a few hundred bytes).
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn align(buf: &mut Vec<u8>, to: usize) {
    while !buf.len().is_multiple_of(to) {
        buf.push(0);
    }
}

fn push_string(buf: &mut Vec<u8>, s: &str) {
    align(buf, 4);
    buf.extend_from_slice(&len32(s.len()).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

fn push_field(fields: &mut Vec<u8>, code: u8, sig: u8, value: &str) {
    align(fields, 8);
    fields.push(code);
    fields.extend_from_slice(&[1, sig, 0]);
    if sig == b'g' {
        fields.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    } else {
        push_string(fields, value);
    }
}

/// A method call to `org.freedesktop.DBus` with no argument or one string.
#[cfg(test)]
fn method_call(serial: u32, member: &str, arg: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(a) = arg {
        push_string(&mut body, a);
    }
    method_call_body(serial, member, if arg.is_some() { "s" } else { "" }, &body)
}

/// A method call to `org.freedesktop.DBus` with a body of `signature`.
fn method_call_body(serial: u32, member: &str, signature: &str, body: &[u8]) -> Vec<u8> {
    // Fields are laid out as if at offset 16 of the message (a multiple
    // of 8), so aligning within this buffer is the same.
    let mut fields = Vec::new();
    push_field(&mut fields, 1, b'o', "/org/freedesktop/DBus");
    push_field(&mut fields, 2, b's', "org.freedesktop.DBus");
    push_field(&mut fields, 3, b's', member);
    push_field(&mut fields, 6, b's', "org.freedesktop.DBus");
    if !signature.is_empty() {
        push_field(&mut fields, 8, b'g', signature);
    }
    message(METHOD_CALL, 0, serial, &fields, body)
}

/// A signal with `args`; `(sender, destination)`: the fields a bus
/// daemon sets or reads (a sender where there is no bus daemon, a
/// destination on a bus).
fn signal(
    serial: u32,
    (sender, destination): (Option<&str>, Option<&str>),
    path: &str,
    interface: &str,
    member: &str,
    args: &[Value],
) -> Vec<u8> {
    let (signature, body) = marshal::body(args);
    let mut fields = Vec::new();
    push_field(&mut fields, 1, b'o', path);
    push_field(&mut fields, 2, b's', interface);
    push_field(&mut fields, 3, b's', member);
    if let Some(d) = destination {
        push_field(&mut fields, 6, b's', d);
    }
    if let Some(s) = sender {
        push_field(&mut fields, 7, b's', s);
    }
    if !signature.is_empty() {
        push_field(&mut fields, 8, b'g', &signature);
    }
    message(SIGNAL, NO_REPLY_EXPECTED, serial, &fields, &body)
}

/// An error answering the call `reply_to` (of `destination`, on a bus),
/// with a text.
fn error_reply(
    serial: u32,
    reply_to: u32,
    (sender, destination): (Option<&str>, Option<&str>),
    name: &str,
    text: &str,
) -> Vec<u8> {
    let mut body = Vec::new();
    push_string(&mut body, text);
    let mut fields = Vec::new();
    push_field(&mut fields, 4, b's', name);
    align(&mut fields, 8);
    fields.extend_from_slice(&[5, 1, b'u', 0]);
    fields.extend_from_slice(&reply_to.to_le_bytes());
    if let Some(d) = destination {
        push_field(&mut fields, 6, b's', d);
    }
    if let Some(s) = sender {
        push_field(&mut fields, 7, b's', s);
    }
    push_field(&mut fields, 8, b'g', "s");
    message(ERROR, NO_REPLY_EXPECTED, serial, &fields, &body)
}

/// `REPLY_SERIAL` and, on a bus, `DESTINATION` of an answer to `to`.
fn push_reply_fields(fields: &mut Vec<u8>, to: &Header) {
    align(fields, 8);
    fields.extend_from_slice(&[5, 1, b'u', 0]);
    fields.extend_from_slice(&to.serial.to_le_bytes());
    if let Some(d) = &to.sender {
        push_field(fields, 6, b's', d);
    }
}

/// The first `count` arguments of a body whose signature starts with
/// `count` times `as`.
pub fn read_string_arrays(body: &[u8], count: usize) -> Option<Vec<Vec<String>>> {
    let mut arrays = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        at = (at + 3) & !3;
        let len = read_u32(body, at)? as usize;
        at += 4;
        let end = at.checked_add(len)?;
        if end > body.len() {
            return None;
        }
        let mut out = Vec::new();
        while at < end {
            at = (at + 3) & !3;
            let n = read_u32(body, at)? as usize;
            out.push(read_string(body, at)?);
            at += 4 + n + 1;
        }
        arrays.push(out);
    }
    Some(arrays)
}

/// A whole message: the fixed header, the fields, the body.
fn message(kind: u8, flags: u8, serial: u32, fields: &[u8], body: &[u8]) -> Vec<u8> {
    let mut msg = vec![b'l', kind, flags, 1];
    msg.extend_from_slice(&len32(body.len()).to_le_bytes());
    msg.extend_from_slice(&serial.to_le_bytes());
    msg.extend_from_slice(&len32(fields.len()).to_le_bytes());
    msg.extend_from_slice(fields);
    align(&mut msg, 8);
    msg.extend_from_slice(body);
    msg
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let v = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
}

fn read_string(b: &[u8], at: usize) -> Option<String> {
    let len = read_u32(b, at)? as usize;
    let s = b.get(at + 4..at + 4 + len)?;
    Some(String::from_utf8_lossy(s).into_owned())
}

/// The `REPLY_SERIAL` header field (code 5), if any.
#[cfg(test)]
fn reply_serial(fields: &[u8]) -> Result<Option<u32>, BusError> {
    Ok(header_fields(fields)?.reply_serial)
}

/// The header fields flint reads (kind, flags and serial are left 0).
fn header_fields(fields: &[u8]) -> Result<Header, BusError> {
    let mut h = Header::default();
    let mut at = 0;
    while at < fields.len() {
        at = (at + 7) & !7;
        if at >= fields.len() {
            break;
        }
        let code = fields[at];
        let sig_len = *fields.get(at + 1).ok_or(BusError::Malformed)? as usize;
        let sig = fields
            .get(at + 2..at + 2 + sig_len)
            .ok_or(BusError::Malformed)?;
        at += 2 + sig_len + 1;
        match sig {
            b"u" => {
                at = (at + 3) & !3;
                let v = read_u32(fields, at).ok_or(BusError::Malformed)?;
                if code == 5 {
                    h.reply_serial = Some(v);
                }
                at += 4;
            }
            b"s" | b"o" => {
                at = (at + 3) & !3;
                let len = read_u32(fields, at).ok_or(BusError::Malformed)? as usize;
                let v = read_string(fields, at).ok_or(BusError::Malformed)?;
                at += 4 + len + 1;
                let slot = match code {
                    1 => &mut h.path,
                    2 => &mut h.interface,
                    3 => &mut h.member,
                    4 => &mut h.error_name,
                    6 => &mut h.destination,
                    7 => &mut h.sender,
                    _ => continue,
                };
                *slot = Some(v);
            }
            b"g" => {
                let len = *fields.get(at).ok_or(BusError::Malformed)? as usize;
                let v = fields
                    .get(at + 1..at + 1 + len)
                    .ok_or(BusError::Malformed)?;
                if code == 8 {
                    h.signature = Some(String::from_utf8_lossy(v).into_owned());
                }
                at += 1 + len + 1;
            }
            // Header fields hold no other types.
            _ => return Err(BusError::Malformed),
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_as_dbus_writes_them() {
        assert_eq!(
            parse_address("unix:path=/run/dbus/system_bus_socket"),
            Some(Address::Path("/run/dbus/system_bus_socket".into()))
        );
        assert_eq!(
            parse_address("tcp:host=x,port=1;unix:abstract=/tmp/dbus-x%2cy,guid=00"),
            Some(Address::Abstract(b"/tmp/dbus-x,y".to_vec()))
        );
        assert_eq!(parse_address("tcp:host=localhost,port=1"), None);
    }

    /// The header fields of a whole message built here.
    fn fields_of(m: &[u8]) -> Header {
        let fields_len = read_u32(m, 12).unwrap() as usize;
        header_fields(&m[16..16 + fields_len]).unwrap()
    }

    #[test]
    fn signals_and_error_replies_carry_the_fields_a_bus_daemon_reads() {
        let m = signal(
            3,
            (None, Some("org.freedesktop.DBus")),
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Activator",
            "ActivationFailure",
            &[
                Value::Str("a.service".into()),
                Value::Str("org.freedesktop.systemd1.NoSuchUnit".into()),
                Value::Str("Unit a.service not found.".into()),
            ],
        );
        assert_eq!(&m[..4], &[b'l', SIGNAL, NO_REPLY_EXPECTED, 1]);
        let h = fields_of(&m);
        assert_eq!(h.path.as_deref(), Some("/org/freedesktop/systemd1"));
        assert_eq!(
            h.interface.as_deref(),
            Some("org.freedesktop.systemd1.Activator")
        );
        assert_eq!(h.member.as_deref(), Some("ActivationFailure"));
        assert_eq!(h.destination.as_deref(), Some("org.freedesktop.DBus"));
        assert_eq!(h.sender, None);
        assert_eq!(h.signature.as_deref(), Some("sss"));
        let body_at = (16 + read_u32(&m, 12).unwrap() as usize + 7) & !7;
        assert_eq!(read_string(&m, body_at).as_deref(), Some("a.service"));
        let e = error_reply(
            4,
            9,
            (Some("org.freedesktop.systemd1"), Some(":1.7")),
            "org.freedesktop.DBus.Error.UnknownMethod",
            "no",
        );
        assert_eq!(e[1], ERROR);
        let h = fields_of(&e);
        assert_eq!(h.reply_serial, Some(9));
        assert_eq!(h.destination.as_deref(), Some(":1.7"));
        assert_eq!(h.sender.as_deref(), Some("org.freedesktop.systemd1"));
        assert_eq!(
            h.error_name.as_deref(),
            Some("org.freedesktop.DBus.Error.UnknownMethod")
        );
    }

    #[test]
    fn a_peer_is_authenticated_as_sd_bus_asks_and_its_calls_read() {
        let (client, server) = UnixStream::pair().unwrap();
        let peer = std::thread::spawn(move || {
            let mut bus = Bus::accept_peer(server, Duration::from_secs(5)).unwrap();
            bus.read().unwrap()
        });
        let mut client = BufReader::new(client);
        // sd-bus sends its whole greeting at once, the uid left to DATA.
        client
            .get_mut()
            .write_all(b"\0AUTH EXTERNAL\r\nDATA\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n")
            .unwrap();
        let mut lines = Vec::new();
        for _ in 0..3 {
            let mut l = String::new();
            client.read_line(&mut l).unwrap();
            lines.push(l);
        }
        assert_eq!(lines[0], "DATA\r\n");
        assert!(
            lines[1].starts_with("OK ") && lines[1].len() == 37,
            "{lines:?}"
        );
        assert_eq!(lines[2], "AGREE_UNIX_FD\r\n");
        // SetEnvironment(as) with two assignments.
        let mut body = Vec::new();
        let mut items = Vec::new();
        push_string(&mut items, "A=1");
        push_string(&mut items, "B=two");
        body.extend_from_slice(&len32(items.len()).to_le_bytes());
        body.extend_from_slice(&items);
        let mut fields = Vec::new();
        push_field(&mut fields, 1, b'o', "/org/freedesktop/systemd1");
        push_field(&mut fields, 2, b's', "org.freedesktop.systemd1.Manager");
        push_field(&mut fields, 3, b's', "SetEnvironment");
        push_field(&mut fields, 8, b'g', "as");
        let call = message(METHOD_CALL, 0, 5, &fields, &body);
        client.get_mut().write_all(&call).unwrap();
        let got = peer.join().unwrap();
        assert_eq!(got.header.serial, 5);
        assert_eq!(got.header.member.as_deref(), Some("SetEnvironment"));
        assert_eq!(
            read_string_arrays(&got.body, 1),
            Some(vec![vec!["A=1".to_string(), "B=two".to_string()]])
        );
        // Two arrays in a row, the second aligned after the first.
        let mut two = body.clone();
        align(&mut two, 4);
        two.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            read_string_arrays(&two, 2).unwrap()[1],
            Vec::<String>::new()
        );
        assert_eq!(read_string_arrays(&body[..body.len() - 1], 1), None);
    }

    #[test]
    fn a_method_call_is_laid_out_as_the_specification_says() {
        let m = method_call(7, "NameHasOwner", Some("org.example.A"));
        assert_eq!(&m[..4], &[b'l', 1, 0, 1]);
        let body_len = read_u32(&m, 4).unwrap() as usize;
        assert_eq!(read_u32(&m, 8), Some(7));
        let fields_len = read_u32(&m, 12).unwrap() as usize;
        let body_at = (16 + fields_len + 7) & !7;
        assert_eq!(m.len(), body_at + body_len);
        assert_eq!(read_string(&m, body_at).as_deref(), Some("org.example.A"));
        // The header holds no REPLY_SERIAL; a reply's does.
        assert_eq!(reply_serial(&m[16..16 + fields_len]).unwrap(), None);
        let mut f = Vec::new();
        push_field(&mut f, 6, b's', ":1.5");
        align(&mut f, 8);
        f.extend_from_slice(&[5, 1, b'u', 0]);
        f.extend_from_slice(&42u32.to_le_bytes());
        assert_eq!(reply_serial(&f).unwrap(), Some(42));
        assert!(reply_serial(&[5, 1, b'x', 0, 0, 0, 0, 0]).is_err());
    }
}
