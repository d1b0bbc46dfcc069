//! Sets environment variables for the service from who the peer is.
//!
//! Always set (with the default `prefix=FLINT_`):
//! - `FLINT_PEER_UID`, `FLINT_PEER_GID`, `FLINT_PEER_PID` when the peer is on
//!   a unix socket (from `SO_PEERCRED`);
//! - `FLINT_PEER_ADDR`, `FLINT_PEER_PORT`, `FLINT_PEER_FAMILY` (`ipv4`,
//!   `ipv6`, `unix`, `vsock`) from the peer's address.
//!
//! Configuration:
//! - `prefix=P`: the prefix of the variables above (may be empty).
//! - `set=NAME=VALUE` (repeatable): set for every connection.
//! - `uid.N=NAME=VALUE` (repeatable): set when the peer's uid is `N`.
//! - `net.PREFIX=NAME=VALUE` (repeatable): set when the peer's IP address is
//!   in `PREFIX` (e.g. `net.10.0.0.0/8=ZONE=internal`).
//! - `unset=NAME` (repeatable): remove from the environment.
//!
//! flint refuses edits of `LISTEN_*` and `NOTIFY_SOCKET` whatever the
//! configuration says.

use flint_plugin_sdk::net::{Cidr, peer_ip};
use flint_plugin_sdk::{Config, Decision, Policy, Request, SocketAddress};

#[derive(Debug)]
pub struct EnvTagger {
    prefix: String,
    always: Vec<(String, String)>,
    by_uid: Vec<(u32, String, String)>,
    by_net: Vec<(Cidr, String, String)>,
    unset: Vec<String>,
}

fn assignment(key: &str, value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((name, v)) if !name.is_empty() => Ok((name.to_string(), v.to_string())),
        _ => Err(format!("config key `{key}`: `{value}` is not NAME=VALUE")),
    }
}

impl Policy for EnvTagger {
    fn init(config: &Config) -> Result<Self, String> {
        config.check_keys(&["prefix", "set", "unset"], &["uid.", "net."])?;
        let always = config
            .all("set")
            .map(|v| assignment("set", v))
            .collect::<Result<_, _>>()?;
        let mut by_uid = Vec::new();
        for (uid, v) in config.with_prefix("uid.") {
            let uid: u32 = uid
                .parse()
                .map_err(|_| format!("config key `uid.{uid}`: `{uid}` is not a uid"))?;
            let (n, val) = assignment(&format!("uid.{uid}"), v)?;
            by_uid.push((uid, n, val));
        }
        let mut by_net = Vec::new();
        for (net, v) in config.with_prefix("net.") {
            let cidr = Cidr::parse(net).map_err(|e| format!("config key `net.{net}`: {e}"))?;
            let (n, val) = assignment(&format!("net.{net}"), v)?;
            by_net.push((cidr, n, val));
        }
        Ok(EnvTagger {
            prefix: config.get("prefix").unwrap_or("FLINT_").to_string(),
            always,
            by_uid,
            by_net,
            unset: config.list("unset").map(str::to_string).collect(),
        })
    }

    fn decide(&self, request: &Request) -> Decision {
        let p = &self.prefix;
        let mut d = Decision::allow();
        if let Some(cred) = &request.peer_credentials {
            d = d
                .set_env(format!("{p}PEER_UID"), cred.uid.to_string())
                .set_env(format!("{p}PEER_GID"), cred.gid.to_string())
                .set_env(format!("{p}PEER_PID"), cred.pid.to_string());
        }
        let family = match &request.peer_address {
            Some(SocketAddress::Ip(_)) => {
                peer_ip(request).map(|(ip, _)| if ip.is_ipv4() { "ipv4" } else { "ipv6" })
            }
            Some(
                SocketAddress::UnixPath(_)
                | SocketAddress::UnixAbstract(_)
                | SocketAddress::Unnamed,
            ) => Some("unix"),
            Some(SocketAddress::Vsock(_)) => Some("vsock"),
            None => None,
        };
        if let Some(family) = family {
            d = d.set_env(format!("{p}PEER_FAMILY"), family);
        }
        let ip = peer_ip(request);
        if let Some((ip, port)) = ip {
            d = d
                .set_env(format!("{p}PEER_ADDR"), ip.to_string())
                .set_env(format!("{p}PEER_PORT"), port.to_string());
        }
        if let Some(SocketAddress::Vsock(v)) = &request.peer_address {
            d = d
                .set_env(format!("{p}PEER_ADDR"), v.cid.to_string())
                .set_env(format!("{p}PEER_PORT"), v.port.to_string());
        }
        for (name, value) in &self.always {
            d = d.set_env(name.clone(), value.clone());
        }
        if let Some(cred) = &request.peer_credentials {
            for (_, name, value) in self.by_uid.iter().filter(|(u, _, _)| *u == cred.uid) {
                d = d.set_env(name.clone(), value.clone());
            }
        }
        if let Some((ip, _)) = ip {
            for (_, name, value) in self.by_net.iter().filter(|(c, _, _)| c.contains(ip)) {
                d = d.set_env(name.clone(), value.clone());
            }
        }
        for name in &self.unset {
            d = d.unset_env(name.clone());
        }
        d
    }
}

flint_plugin_sdk::export_plugin!(EnvTagger);
