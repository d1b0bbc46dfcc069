//! The plugin chain of one socket unit: its configuration, read from `X-`
//! sections that systemd ignores (so the same tree still loads under real
//! systemd), and the request flint hands to the chain before a spawn.
//!
//! ```ini
//! [X-Flint]
//! # Optional: the chain order (default: the order of the plugin sections).
//! Plugins=allow tagger
//! # Optional, Accept=yes stream sockets: peek up to N bytes before deciding.
//! PeekBytes=512
//! PeekTimeoutSec=200ms
//!
//! [X-Flint-Plugin-allow]
//! Path=allowlist
//! Config=allow=127.0.0.0/8
//! FailMode=closed
//! TimeoutSec=20ms
//! MemoryMax=16M
//! ```
//!
//! `Path=` is a file (absolute, or relative to the unit file's directory) or
//! a plugin name looked up in `$FLINT_PLUGIN_PATH`, `/etc/flint/plugins`,
//! `/usr/local/lib/flint/plugins`, `/usr/lib/flint/plugins` and last the
//! example plugins built with this flint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::policy::{FailMode, PluginSpec};
use crate::unit::load::{Extra, Unit};
use crate::unit::value::{int, size, time};

/// The section with the chain-wide settings.
pub const CHAIN_SECTION: &str = "X-Flint";
/// The prefix of one section per plugin.
pub const PLUGIN_SECTION_PREFIX: &str = "X-Flint-Plugin-";

/// A socket's plugin configuration.
#[derive(Debug, Clone, Default)]
pub struct PolicyConfig {
    pub plugins: Vec<PluginSpec>,
    /// `PeekBytes=`: 0 means no peek.
    pub peek_bytes: usize,
    pub peek_timeout: Duration,
}

fn origin(e: &Extra) -> String {
    format!("{}:{}", e.origin.path.display(), e.origin.line)
}

/// Where plugin names are looked up, in order.
pub fn plugin_search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("FLINT_PLUGIN_PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(
        [
            "/etc/flint/plugins",
            "/usr/local/lib/flint/plugins",
            "/usr/lib/flint/plugins",
        ]
        .map(PathBuf::from),
    );
    dirs.push(PathBuf::from(env!("FLINT_PLUGIN_DIR")));
    dirs
}

/// Resolves `Path=`: a path, or a plugin name with or without `.wasm`.
pub fn resolve_plugin(value: &str, unit_dir: Option<&Path>) -> Option<PathBuf> {
    let p = Path::new(value);
    if p.is_absolute() {
        return Some(p.to_path_buf());
    }
    if value.contains('/') {
        return unit_dir.map(|d| d.join(p));
    }
    let file = if Path::new(value)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("wasm"))
    {
        value.to_string()
    } else {
        format!("{value}.wasm")
    };
    unit_dir
        .into_iter()
        .map(Path::to_path_buf)
        .chain(plugin_search_path())
        .map(|d| d.join(&file))
        .find(|c| c.is_file())
}

impl PolicyConfig {
    /// Reads the configuration from the unit's `X-` sections. `None` when
    /// the unit has no plugins.
    pub fn from_unit(unit: &Unit) -> Result<Option<PolicyConfig>, String> {
        let mut config = PolicyConfig {
            peek_timeout: Duration::from_millis(500),
            ..PolicyConfig::default()
        };
        let mut order: Option<Vec<String>> = None;
        for e in unit.extras_in(CHAIN_SECTION) {
            match e.key.as_str() {
                "Plugins" => {
                    let list = order.get_or_insert_with(Vec::new);
                    if e.value.is_empty() {
                        list.clear();
                    } else {
                        list.extend(e.value.split_whitespace().map(str::to_string));
                    }
                }
                "PeekBytes" => {
                    config.peek_bytes = int::parse_u32(&e.value)
                        .map_err(|err| format!("{}: PeekBytes={}: {err}", origin(e), e.value))
                        .map(|v| v.min(16384) as usize)?;
                }
                "PeekTimeoutSec" => {
                    let us = time::parse_timespan(&e.value, 1_000_000).map_err(|err| {
                        format!("{}: PeekTimeoutSec={}: {err}", origin(e), e.value)
                    })?;
                    config.peek_timeout = if us == u64::MAX {
                        Duration::from_hours(1)
                    } else {
                        Duration::from_micros(us)
                    };
                }
                other => tracing::warn!(
                    "{}: unknown key {other}= in [{CHAIN_SECTION}], ignoring",
                    origin(e)
                ),
            }
        }
        // Plugin sections in order of first appearance.
        let mut names: Vec<String> = Vec::new();
        for e in &unit.extras {
            if let Some(name) = e.section.strip_prefix(PLUGIN_SECTION_PREFIX)
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_string());
            }
        }
        let chain = order.unwrap_or_else(|| names.clone());
        for name in chain {
            if !names.contains(&name) {
                return Err(format!(
                    "Plugins= names '{name}' but there is no [{PLUGIN_SECTION_PREFIX}{name}] section"
                ));
            }
            let section = format!("{PLUGIN_SECTION_PREFIX}{name}");
            let mut spec: Option<PluginSpec> = None;
            let mut cfg: Vec<(String, String)> = Vec::new();
            let mut fail_mode = FailMode::Closed;
            let mut timeout = PluginSpec::DEFAULT_TIMEOUT;
            let mut memory = PluginSpec::DEFAULT_MEMORY_LIMIT;
            for e in unit.extras_in(&section) {
                let bad = |what: &str| format!("{}: {what}", origin(e));
                match e.key.as_str() {
                    "Path" => {
                        let dir = e.origin.path.parent();
                        let path = resolve_plugin(&e.value, dir).ok_or_else(|| {
                            bad(&format!(
                                "plugin '{}' not found (searched the unit's directory and {:?})",
                                e.value,
                                plugin_search_path()
                            ))
                        })?;
                        spec = Some(PluginSpec::new(path).name(name.clone()));
                    }
                    "Config" => {
                        if e.value.is_empty() {
                            cfg.clear();
                        } else {
                            let (k, v) = e.value.split_once('=').ok_or_else(|| {
                                bad(&format!("Config= needs KEY=VALUE, got '{}'", e.value))
                            })?;
                            cfg.push((k.to_string(), v.to_string()));
                        }
                    }
                    "FailMode" => {
                        fail_mode = match e.value.as_str() {
                            "open" => FailMode::Open,
                            "closed" => FailMode::Closed,
                            v => {
                                return Err(bad(&format!(
                                    "FailMode= must be open or closed, got '{v}'"
                                )));
                            }
                        }
                    }
                    "TimeoutSec" => {
                        let us = time::parse_timespan(&e.value, 1_000_000)
                            .map_err(|err| bad(&format!("TimeoutSec={}: {err}", e.value)))?;
                        timeout = if us == u64::MAX {
                            Duration::from_hours(1)
                        } else {
                            Duration::from_micros(us.max(1000))
                        };
                    }
                    "MemoryMax" => {
                        memory = size::parse_size_iec(&e.value)
                            .map_err(|err| bad(&format!("MemoryMax={}: {err}", e.value)))?;
                    }
                    other => tracing::warn!(
                        "{}: unknown key {other}= in [{section}], ignoring",
                        origin(e)
                    ),
                }
            }
            let mut spec = spec.ok_or_else(|| format!("[{section}] has no Path="))?;
            spec.config = cfg;
            spec.fail_mode = fail_mode;
            spec.timeout = timeout;
            spec.memory_limit = memory;
            config.plugins.push(spec);
        }
        Ok(if config.plugins.is_empty() {
            None
        } else {
            Some(config)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::load;
    use crate::unit::loader::SearchPath;

    fn unit(text: &str) -> (tempfile::TempDir, Unit) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
        std::fs::write(dir.path().join("a.socket"), text).unwrap();
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        let u = load::load(&search, &"a.socket".parse().unwrap());
        (dir, u)
    }

    #[test]
    fn reads_chain_in_section_order_with_settings() {
        let (dir, u) = unit(
            "[Socket]\nListenStream=1234\n[X-Flint]\nPeekBytes=64\nPeekTimeoutSec=50ms\n[X-Flint-Plugin-b]\nPath=p.wasm\nConfig=k=v\nConfig=x=y=z\nFailMode=open\nTimeoutSec=5ms\nMemoryMax=1M\n[X-Flint-Plugin-a]\nPath=p\n",
        );
        let c = PolicyConfig::from_unit(&u).unwrap().unwrap();
        assert_eq!(c.peek_bytes, 64);
        assert_eq!(c.peek_timeout, Duration::from_millis(50));
        let names: Vec<&str> = c.plugins.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        let b = &c.plugins[0];
        assert_eq!(b.path, dir.path().join("p.wasm"));
        assert_eq!(
            b.config,
            vec![
                ("k".to_string(), "v".to_string()),
                ("x".to_string(), "y=z".to_string())
            ]
        );
        assert_eq!(b.fail_mode, FailMode::Open);
        assert_eq!(b.timeout, Duration::from_millis(5));
        assert_eq!(b.memory_limit, 1 << 20);
        assert_eq!(
            c.plugins[1].fail_mode,
            FailMode::Closed,
            "fail closed by default"
        );
    }

    #[test]
    fn plugins_key_orders_and_selects() {
        let (_d, u) = unit(
            "[Socket]\nListenStream=1234\n[X-Flint]\nPlugins=a\n[X-Flint-Plugin-b]\nPath=p\n[X-Flint-Plugin-a]\nPath=p\n",
        );
        let c = PolicyConfig::from_unit(&u).unwrap().unwrap();
        assert_eq!(c.plugins.len(), 1);
        assert_eq!(c.plugins[0].name, "a");
    }

    #[test]
    fn errors_name_file_and_line() {
        let (_d, u) =
            unit("[Socket]\nListenStream=1234\n[X-Flint-Plugin-a]\nPath=missing-plugin\n");
        let err = PolicyConfig::from_unit(&u).unwrap_err();
        assert!(
            err.contains("a.socket:4:") && err.contains("not found"),
            "{err}"
        );
        let (_d, u) =
            unit("[Socket]\nListenStream=1234\n[X-Flint-Plugin-a]\nPath=p\nFailMode=maybe\n");
        assert!(
            PolicyConfig::from_unit(&u)
                .unwrap_err()
                .contains(":5: FailMode=")
        );
        let (_d, u) = unit("[Socket]\nListenStream=1234\n");
        assert!(PolicyConfig::from_unit(&u).unwrap().is_none());
    }
}
