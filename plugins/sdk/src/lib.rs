//! The Rust SDK for flint policy plugins.
//!
//! A plugin is a type that implements [`Policy`] and is exported with
//! [`export_plugin!`]. flint instantiates the plugin afresh for every
//! decision, calls [`Policy::init`] with the plugin's configuration (the
//! `Config=KEY=VALUE` lines of the socket unit's `[X-Flint-Plugin-NAME]`
//! section) and then [`Policy::decide`] with the
//! connection. Nothing survives in the instance between two decisions; state
//! that must outlive one (counters, token buckets, sticky routes) goes into
//! the host's [`store`].
//!
//! Build plugins for `wasm32-unknown-unknown` and turn the core module into a
//! component with `wit-component` (flint's build does both for the plugins in
//! this workspace). WASI is not available: there is no filesystem, network,
//! environment or wall clock, and `println!` goes nowhere; use [`log`]. A
//! panic is reported through [`log`] with its message before the instance
//! traps, and flint then applies the plugin's fail mode.
//!
//! ```ignore
//! use flint_plugin_sdk::{Config, Decision, Policy, Request};
//!
//! struct DenyAll;
//!
//! impl Policy for DenyAll {
//!     fn init(_config: &Config) -> Result<Self, String> {
//!         Ok(DenyAll)
//!     }
//!     fn decide(&self, _request: &Request) -> Decision {
//!         Decision::deny("closed for maintenance")
//!     }
//! }
//!
//! flint_plugin_sdk::export_plugin!(DenyAll);
//! ```

extern crate self as flint_plugin_sdk;

pub mod net;

use std::any::Any;
use std::cell::RefCell;
use std::str::FromStr;

/// The bindings generated from flint's WIT (`flint:policy@0.1.0`).
#[allow(missing_docs, missing_debug_implementations, clippy::pedantic)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "::flint_plugin_sdk::bindings",
        runtime_path: "::flint_plugin_sdk::__private::wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

pub use bindings::flint::policy::clock;
pub use bindings::flint::policy::log::Level;
pub use bindings::flint::policy::store;
pub use bindings::flint::policy::types::{
    ActivationMode, ConnectionCounts, Decision, EnvEdit, EnvVar, IpAddress, IpSocketAddress,
    PeerCredentials, Request, SocketAddress, Transport, Verdict, VsockAddress,
};

/// Sends a message to flint's log, tagged with the plugin's name.
pub fn log(level: Level, message: &str) {
    bindings::flint::policy::log::log(level, message);
}

/// What a plugin implements.
pub trait Policy: Sized + 'static {
    /// Builds the plugin from its configuration. Called in every fresh
    /// instance before [`Policy::decide`], and once when flint loads the
    /// plugin: an `Err` there makes the load fail with this message.
    fn init(config: &Config) -> Result<Self, String>;

    /// Decides about one connection.
    fn decide(&self, request: &Request) -> Decision;
}

/// The plugin's configuration: the `key=value` pairs of the unit, in order.
/// A key may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Config { pairs }
    }

    /// All pairs in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for `key`, with each value also split at commas and
    /// whitespace, so that `allow=10.0.0.0/8, 192.168.0.0/16` and two `allow=`
    /// lines mean the same.
    pub fn list<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all(key).flat_map(|v| {
            v.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
        })
    }

    /// Pairs whose key starts with `prefix`, as (rest of the key, value).
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.pairs
            .iter()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v.as_str())))
    }

    /// Parses the last value of `key`, or returns `default` when absent.
    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e| format!("config key `{key}`: cannot parse `{v}`: {e}")),
        }
    }

    /// Fails with a clear message on a key that is neither in `known` nor
    /// starts with one of `known_prefixes`: a typo in a unit should not be
    /// silently ignored.
    pub fn check_keys(&self, known: &[&str], known_prefixes: &[&str]) -> Result<(), String> {
        for (k, _) in &self.pairs {
            let ok = known.contains(&k.as_str()) || known_prefixes.iter().any(|p| k.starts_with(p));
            if !ok {
                let mut all: Vec<String> = known.iter().map(|s| format!("`{s}`")).collect();
                all.extend(known_prefixes.iter().map(|p| format!("`{p}…`")));
                return Err(format!(
                    "unknown config key `{k}` (known: {})",
                    all.join(", ")
                ));
            }
        }
        Ok(())
    }
}

impl Decision {
    /// Start the target service, with no environment edits.
    pub fn allow() -> Self {
        Decision {
            verdict: Verdict::Allow,
            env: Vec::new(),
        }
    }

    /// Refuse the connection.
    pub fn deny(reason: impl Into<String>) -> Self {
        Decision {
            verdict: Verdict::Deny(reason.into()),
            env: Vec::new(),
        }
    }

    /// Start `unit` instead of the target.
    pub fn route(unit: impl Into<String>) -> Self {
        Decision {
            verdict: Verdict::Route(unit.into()),
            env: Vec::new(),
        }
    }

    /// Adds an edit that sets `name` in the service's environment.
    #[must_use]
    pub fn set_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push(EnvEdit::Set(EnvVar {
            name: name.into(),
            value: value.into(),
        }));
        self
    }

    /// Adds an edit that removes `name` from the service's environment.
    #[must_use]
    pub fn unset_env(mut self, name: impl Into<String>) -> Self {
        self.env.push(EnvEdit::Unset(name.into()));
        self
    }
}

thread_local! {
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            log(Level::Error, &format!("panic: {info}"));
        }));
    });
}

#[doc(hidden)]
pub fn __init<P: Policy>(config: Vec<(String, String)>) -> Result<(), String> {
    install_panic_hook();
    let plugin = P::init(&Config::new(config))?;
    STATE.with(|s| *s.borrow_mut() = Some(Box::new(plugin)));
    Ok(())
}

#[doc(hidden)]
pub fn __decide<P: Policy>(request: &Request) -> Decision {
    install_panic_hook();
    STATE.with(
        |s| match s.borrow().as_ref().and_then(|b| b.downcast_ref::<P>()) {
            Some(plugin) => plugin.decide(request),
            None => Decision::deny("plugin was not initialised"),
        },
    )
}

/// Exports a type implementing [`Policy`] as the plugin's `handler`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __FlintPluginExport;

        impl $crate::bindings::exports::flint::policy::handler::Guest for __FlintPluginExport {
            fn init(config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>)
                -> ::std::result::Result<(), ::std::string::String>
            {
                $crate::__init::<$plugin>(config)
            }

            fn decide(request: $crate::Request) -> $crate::Decision {
                $crate::__decide::<$plugin>(&request)
            }
        }

        $crate::bindings::__export_policy_world!(__FlintPluginExport with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        Config::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        )
    }

    #[test]
    fn config_last_value_wins_and_lists_split() {
        let c = cfg(&[("a", "1"), ("l", "x, y"), ("a", "2"), ("l", "z")]);
        assert_eq!(c.get("a"), Some("2"));
        assert_eq!(c.list("l").collect::<Vec<_>>(), ["x", "y", "z"]);
        assert_eq!(c.parse_or("a", 0u32), Ok(2));
        assert_eq!(c.parse_or("missing", 7u32), Ok(7));
        assert!(c.parse_or::<u32>("l", 0).is_err());
    }

    #[test]
    fn unknown_keys_are_reported() {
        let c = cfg(&[("allow", "x"), ("uid.5", "A=b"), ("alow", "y")]);
        let err = c.check_keys(&["allow"], &["uid."]).unwrap_err();
        assert!(err.contains("`alow`"), "{err}");
    }
}
