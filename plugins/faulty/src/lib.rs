//! A plugin that fails on purpose, to try a unit's fail mode and to see how
//! flint reports a plugin's panic (the message reaches flint's log and the
//! failure event through the SDK's panic hook).
//!
//! Configuration:
//! - `panic=decide` (default): panic in every decision.
//! - `panic=init`: panic in `init`, so loading the plugin fails.
//! - `panic=never`: allow everything (to compare).
//! - `message=TEXT`: the panic message.

use flint_plugin_sdk::{Config, Decision, Policy, Request};

#[derive(Debug)]
pub struct Faulty {
    panic_in_decide: bool,
    message: String,
}

impl Policy for Faulty {
    fn init(config: &Config) -> Result<Self, String> {
        config.check_keys(&["panic", "message"], &[])?;
        let message = config
            .get("message")
            .unwrap_or("faulty plugin failed on purpose")
            .to_string();
        let panic_in_decide = match config.get("panic").unwrap_or("decide") {
            "decide" => true,
            "never" => false,
            "init" => panic!("{message}"),
            other => {
                return Err(format!(
                    "config key `panic`: `{other}` is not decide, init or never"
                ));
            }
        };
        Ok(Faulty {
            panic_in_decide,
            message,
        })
    }

    fn decide(&self, _request: &Request) -> Decision {
        assert!(!self.panic_in_decide, "{}", self.message);
        Decision::allow()
    }
}

flint_plugin_sdk::export_plugin!(Faulty);
