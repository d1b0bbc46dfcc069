//! A socket's chain of plugins, and how their decisions combine.
//!
//! Plugins run in order, each in a fresh instance. The first `deny` stops
//! the chain; a `route` changes the target service that the later plugins
//! see and that is started; environment edits accumulate in order, and each
//! plugin sees the environment as edited by the ones before it. Edits of
//! `LISTEN_*` and `NOTIFY_SOCKET` (and malformed ones) are dropped, logged
//! and counted. A plugin that fails is resolved by its fail mode: open skips
//! it, closed denies. [`Chain::decide`] always returns an outcome; it never
//! panics and never returns an error.

use std::sync::atomic::Ordering;

use super::bindings::flint::policy::types as wit;
use super::host::{FailMode, Plugin, PluginFailure, Spent};
use super::types::{
    EnvEdit, MAX_REASON_LEN, Request, Verdict, check_route, refuse_env_edit, truncate,
};

/// The plugins of one socket, in chain order.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    plugins: Vec<Plugin>,
}

/// What the chain decided about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainOutcome {
    pub verdict: Verdict,
    /// Edits to apply to the service's environment, in order (empty when
    /// the verdict is a deny).
    pub env_edits: Vec<EnvEdit>,
    /// Failures and refused edits, in order; each was also logged.
    pub events: Vec<PluginEvent>,
}

/// Something that went wrong with a plugin during a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEvent {
    pub plugin: String,
    pub kind: PluginEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginEventKind {
    /// The call failed, and `fail_mode` was applied.
    Failed {
        failure: PluginFailure,
        fail_mode: FailMode,
    },
    /// An environment edit was dropped.
    EditRefused { variable: String, reason: String },
}

impl Chain {
    pub fn new(plugins: Vec<Plugin>) -> Chain {
        Chain { plugins }
    }

    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Runs the chain on `request`. Blocks the calling thread for the
    /// plugins' run time, bounded by their timeouts (see the module
    /// documentation of [`super`]).
    pub fn decide(&self, request: &Request) -> ChainOutcome {
        self.decide_with(request, &|_| true)
    }

    /// Like [`Chain::decide`], but a route to a unit for which `routable`
    /// returns false (one flint has not loaded) denies the connection at
    /// once, with a logged reason naming the plugin and the unit.
    pub fn decide_with(&self, request: &Request, routable: &dyn Fn(&str) -> bool) -> ChainOutcome {
        let mut spent = Spent::default();
        super::host::block_on(self.decide_async(request, routable, &mut spent))
    }

    /// Like [`Chain::decide_with`], as a future for an event loop: each
    /// plugin yields every so much fuel (about half a millisecond), so that other tasks run while a
    /// slow one decides (up to its timeout). The instances used are put in
    /// `spent`; dropping it frees them and starts their replacements.
    pub async fn decide_async(
        &self,
        request: &Request,
        routable: &dyn Fn(&str) -> bool,
        spent: &mut Spent,
    ) -> ChainOutcome {
        let mut wit_request = request.to_wit();
        let mut routed: Option<String> = None;
        let mut env_edits = Vec::new();
        let mut events = Vec::new();
        for plugin in &self.plugins {
            let name = plugin.name();
            let counters = &plugin.inner.counters;
            let decision = plugin
                .inner
                .decide(&wit_request, spent)
                .await
                .and_then(validate);
            let decision = match decision {
                Ok(d) => d,
                Err(failure) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    let fail_mode = plugin.fail_mode();
                    tracing::warn!(plugin = name, %fail_mode, "policy plugin failed: {failure}");
                    let reason = format!("policy plugin {name} failed: {failure}");
                    events.push(PluginEvent {
                        plugin: name.to_string(),
                        kind: PluginEventKind::Failed { failure, fail_mode },
                    });
                    match fail_mode {
                        FailMode::Open => continue,
                        FailMode::Closed => {
                            return ChainOutcome {
                                verdict: Verdict::Deny(reason),
                                env_edits: Vec::new(),
                                events,
                            };
                        }
                    }
                }
            };
            for edit in decision.env.into_iter().map(EnvEdit::from) {
                if let Some(reason) = refuse_env_edit(&edit) {
                    counters.edits_refused.fetch_add(1, Ordering::Relaxed);
                    let variable = truncate(edit.name().to_string(), 256);
                    tracing::warn!(
                        plugin = name,
                        variable,
                        "environment edit refused: {reason}"
                    );
                    events.push(PluginEvent {
                        plugin: name.to_string(),
                        kind: PluginEventKind::EditRefused { variable, reason },
                    });
                    continue;
                }
                edit.apply_wit(&mut wit_request.environment);
                env_edits.push(edit);
            }
            match decision.verdict {
                wit::Verdict::Allow => {
                    counters.allowed.fetch_add(1, Ordering::Relaxed);
                }
                wit::Verdict::Deny(reason) => {
                    counters.denied.fetch_add(1, Ordering::Relaxed);
                    let reason = truncate(reason, MAX_REASON_LEN);
                    tracing::debug!(plugin = name, "denied: {reason}");
                    return ChainOutcome {
                        verdict: Verdict::Deny(reason),
                        env_edits: Vec::new(),
                        events,
                    };
                }
                wit::Verdict::Route(unit) => {
                    counters.routed.fetch_add(1, Ordering::Relaxed);
                    if !routable(&unit) {
                        let reason =
                            format!("policy plugin {name} routed to {unit}, which is not loaded");
                        tracing::warn!(plugin = name, "{reason}");
                        return ChainOutcome {
                            verdict: Verdict::Deny(reason),
                            env_edits: Vec::new(),
                            events,
                        };
                    }
                    tracing::debug!(plugin = name, "routed to {unit}");
                    wit_request.target_service.clone_from(&unit);
                    routed = Some(unit);
                }
            }
        }
        ChainOutcome {
            verdict: routed.map_or(Verdict::Allow, Verdict::Route),
            env_edits,
            events,
        }
    }
}

/// Refuses decisions that were read correctly but make no sense.
fn validate(decision: wit::Decision) -> Result<wit::Decision, PluginFailure> {
    if let wit::Verdict::Route(unit) = &decision.verdict {
        check_route(unit).map_err(PluginFailure::InvalidDecision)?;
    }
    Ok(decision)
}
