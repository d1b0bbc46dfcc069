//! A CIDR allow/deny list for IPv4 and IPv6 peers.
//!
//! Configuration (each key may repeat, and a value may hold several prefixes
//! separated by commas or spaces):
//! - `deny=PREFIX…`: peers in these prefixes are refused; checked first.
//! - `allow=PREFIX…`: when given, only peers in these prefixes are admitted.
//! - `non-ip=allow|deny`: what to do with a peer that has no IP address
//!   (unix sockets, `Accept=no`); by default `deny` when an allow list is
//!   given, `allow` otherwise.
//!
//! Peers on dual-stack sockets (`::ffff:a.b.c.d`) match IPv4 prefixes.
//!
//! In the `.socket` unit (systemd ignores `X-` sections):
//!
//! ```ini
//! [X-Flint-Plugin-allow]
//! Path=allowlist
//! Config=allow=127.0.0.1, ::1
//! Config=deny=127.0.0.2
//! FailMode=closed
//! ```

use flint_plugin_sdk::net::{Cidr, peer_ip};
use flint_plugin_sdk::{Config, Decision, Policy, Request};

#[derive(Debug)]
pub struct Allowlist {
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
    admit_non_ip: bool,
}

fn prefixes(config: &Config, key: &str) -> Result<Vec<Cidr>, String> {
    config
        .list(key)
        .map(|p| Cidr::parse(p).map_err(|e| format!("config key `{key}`: {e}")))
        .collect()
}

impl Policy for Allowlist {
    fn init(config: &Config) -> Result<Self, String> {
        config.check_keys(&["allow", "deny", "non-ip"], &[])?;
        let allow = prefixes(config, "allow")?;
        let deny = prefixes(config, "deny")?;
        let admit_non_ip = match config.get("non-ip") {
            None => allow.is_empty(),
            Some("allow") => true,
            Some("deny") => false,
            Some(other) => {
                return Err(format!(
                    "config key `non-ip`: `{other}` is not allow or deny"
                ));
            }
        };
        Ok(Allowlist {
            allow,
            deny,
            admit_non_ip,
        })
    }

    fn decide(&self, request: &Request) -> Decision {
        let Some((ip, _)) = peer_ip(request) else {
            return if self.admit_non_ip {
                Decision::allow()
            } else {
                Decision::deny("peer has no IP address")
            };
        };
        if let Some(c) = self.deny.iter().find(|c| c.contains(ip)) {
            return Decision::deny(format!("{ip} is in deny list ({c})"));
        }
        if self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip)) {
            Decision::allow()
        } else {
            Decision::deny(format!("{ip} is not in allow list"))
        }
    }
}

flint_plugin_sdk::export_plugin!(Allowlist);
