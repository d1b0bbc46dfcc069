//! Routes TLS connections by the server name (SNI) of the ClientHello.
//!
//! Needs `PeekBytes=` on the socket (a ClientHello with SNI is usually under
//! 512 bytes; 1024 is a safe setting). The peeked bytes stay in the socket, so
//! the chosen service terminates TLS on the real connection.
//!
//! Configuration:
//! - `prefix=NAME`: route to `NAME-<sni>@.service` (the template's instance is
//!   filled in by flint as for any `Accept=yes` service).
//! - `template=T`: route to `T` with `{sni}` replaced, instead of the prefix
//!   form; e.g. `template=tls-{sni}@.service`.
//! - `host=NAME…` (repeatable): the server names that may be routed; when
//!   given, any other name is handled by `unknown`.
//! - `unknown=allow|deny|UNIT`: for a name not in `host` (default `deny`).
//! - `no-sni=allow|deny|UNIT`: for a connection without a readable SNI (not
//!   TLS, no SNI extension, or too few bytes peeked; default `allow`, which
//!   keeps the socket's own service).
//!
//! Server names are lowercased and must be DNS names (letters, digits, `-`
//! and `.`), so a peer cannot inject other characters into a unit name.

use flint_plugin_sdk::{Config, Decision, Policy, Request};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fallback {
    Allow,
    Deny,
    Route(String),
}

impl Fallback {
    fn parse(key: &str, value: Option<&str>, default: Fallback) -> Result<Fallback, String> {
        Ok(match value {
            None => default,
            Some("allow") => Fallback::Allow,
            Some("deny") => Fallback::Deny,
            Some(unit) if unit.ends_with(".service") => Fallback::Route(unit.to_string()),
            Some(other) => {
                return Err(format!(
                    "config key `{key}`: `{other}` is not allow, deny or a .service unit"
                ));
            }
        })
    }

    fn decision(&self, why: &str) -> Decision {
        match self {
            Fallback::Allow => Decision::allow(),
            Fallback::Deny => Decision::deny(why),
            Fallback::Route(unit) => Decision::route(unit.clone()),
        }
    }
}

#[derive(Debug)]
pub struct SniRouter {
    template: String,
    hosts: Vec<String>,
    unknown: Fallback,
    no_sni: Fallback,
}

impl Policy for SniRouter {
    fn init(config: &Config) -> Result<Self, String> {
        config.check_keys(&["prefix", "template", "host", "unknown", "no-sni"], &[])?;
        let template = match (config.get("template"), config.get("prefix")) {
            (Some(t), _) if t.contains("{sni}") && t.ends_with(".service") => t.to_string(),
            (Some(t), _) => {
                return Err(format!(
                    "config key `template`: `{t}` must contain {{sni}} and end in .service"
                ));
            }
            (None, Some(p)) if !p.is_empty() => format!("{p}-{{sni}}@.service"),
            (None, _) => return Err("config needs `prefix` or `template`".into()),
        };
        let hosts = config
            .list("host")
            .map(|h| {
                let h = h.to_ascii_lowercase();
                if valid_dns_name(&h) {
                    Ok(h)
                } else {
                    Err(format!("config key `host`: `{h}` is not a DNS name"))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(SniRouter {
            template,
            hosts,
            unknown: Fallback::parse("unknown", config.get("unknown"), Fallback::Deny)?,
            no_sni: Fallback::parse("no-sni", config.get("no-sni"), Fallback::Allow)?,
        })
    }

    fn decide(&self, request: &Request) -> Decision {
        let bytes = request.peeked.as_deref().unwrap_or_default();
        let Some(name) = client_hello_sni(bytes) else {
            return self.no_sni.decision("no TLS server name");
        };
        let name = name.to_ascii_lowercase();
        if !valid_dns_name(&name) {
            return self.no_sni.decision("TLS server name is not a DNS name");
        }
        if !self.hosts.is_empty() && !self.hosts.contains(&name) {
            return self
                .unknown
                .decision(&format!("unknown TLS server name {name}"));
        }
        Decision::route(self.template.replace("{sni}", &name))
    }
}

flint_plugin_sdk::export_plugin!(SniRouter);

fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    /// A length-prefixed sub-reader.
    fn sub(&mut self, len: usize) -> Option<Reader<'a>> {
        self.take(len).map(|bytes| Reader { bytes })
    }
}

/// The `server_name` (host_name type) of a TLS ClientHello at the start of
/// `bytes`, if the first record holds enough of it.
pub fn client_hello_sni(bytes: &[u8]) -> Option<&str> {
    let mut r = Reader { bytes };
    // TLSPlaintext: type handshake(22), legacy version, length.
    if r.u8()? != 22 {
        return None;
    }
    r.u16()?;
    let record_len = usize::from(r.u16()?);
    // A short peek leaves the record truncated: parse what arrived.
    let mut rec = Reader {
        bytes: r.bytes.get(..record_len.min(r.bytes.len()))?,
    };
    // Handshake: type client_hello(1), 24-bit length.
    if rec.u8()? != 1 {
        return None;
    }
    rec.u24()?;
    rec.u16()?; // legacy_version
    rec.take(32)?; // random
    let sid = usize::from(rec.u8()?);
    rec.take(sid)?;
    let suites = usize::from(rec.u16()?);
    rec.take(suites)?;
    let compression = usize::from(rec.u8()?);
    rec.take(compression)?;
    let ext_len = usize::from(rec.u16()?);
    let mut exts = rec.sub(ext_len)?;
    while !exts.bytes.is_empty() {
        let kind = exts.u16()?;
        let len = usize::from(exts.u16()?);
        let mut ext = exts.sub(len)?;
        if kind != 0 {
            continue;
        }
        // ServerNameList: 16-bit length, then (type, 16-bit length, name)*.
        let list_len = usize::from(ext.u16()?);
        let mut list = ext.sub(list_len)?;
        while !list.bytes.is_empty() {
            let name_type = list.u8()?;
            let name_len = usize::from(list.u16()?);
            let name = list.take(name_len)?;
            if name_type == 0 {
                return std::str::from_utf8(name).ok();
            }
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello for `a.test` as a TLS client sends it (reduced to the
    /// fields the parser reads, with a realistic extension layout).
    pub fn hello(name: &str) -> Vec<u8> {
        let mut sni = Vec::new();
        let n = u16::try_from(name.len()).unwrap();
        sni.extend_from_slice(&(n + 3).to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&n.to_be_bytes());
        sni.extend_from_slice(name.as_bytes());
        let mut exts = Vec::new();
        // supported_versions first, then server_name.
        exts.extend_from_slice(&[0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
        exts.extend_from_slice(&[0x00, 0x00]);
        exts.extend_from_slice(&u16::try_from(sni.len()).unwrap().to_be_bytes());
        exts.extend_from_slice(&sni);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]);
        body.extend_from_slice(&[0x01, 0x00]);
        body.extend_from_slice(&u16::try_from(exts.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&u16::try_from(hs.len()).unwrap().to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn parses_sni_and_survives_truncation() {
        let h = hello("a.test");
        assert_eq!(client_hello_sni(&h), Some("a.test"));
        for cut in 0..h.len() {
            assert_eq!(client_hello_sni(&h[..cut]), None, "cut at {cut}");
        }
        assert_eq!(client_hello_sni(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn dns_names() {
        assert!(valid_dns_name("a.test"));
        assert!(!valid_dns_name("a..test"));
        assert!(!valid_dns_name("a/b"));
        assert!(!valid_dns_name("-a.test"));
    }
}
