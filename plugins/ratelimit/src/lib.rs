//! A per-source token-bucket rate limiter.
//!
//! Each source has a bucket of `burst` tokens that refills at `rate` tokens
//! per second; a connection takes one token, and a connection that finds the
//! bucket empty is refused. The buckets live in flint's host store (every
//! decision runs in a fresh instance) and expire once they would be full
//! again, so idle sources cost nothing.
//!
//! The source is the peer's IP address (IPv6 peers grouped by their
//! `ipv6-prefix`, /64 by default), the peer's uid on unix sockets, and the
//! socket as a whole otherwise.
//!
//! Configuration:
//! - `rate=N`: tokens per second (a decimal number, default 10).
//! - `burst=N`: bucket size (default 20).
//! - `ipv6-prefix=N`: prefix length grouping IPv6 peers (default 64).
//! - `when-full=allow|deny`: what to do when the host store is full
//!   (default `allow`, logged).
//!
//! Reading and writing a bucket are two store calls, so two decisions that
//! run at the same moment for the same source may both take the last token:
//! the overshoot is bounded by the number of concurrent decisions.

use std::net::IpAddr;

use flint_plugin_sdk::net::{mask, peer_ip};
use flint_plugin_sdk::store::{self, StoreError};
use flint_plugin_sdk::{Config, Decision, Level, Policy, Request, clock, log};

/// Tokens are counted in millionths so that fractional refills add up.
const UNIT: u128 = 1_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;

#[derive(Debug)]
pub struct RateLimit {
    /// Refill, in millionths of a token per second.
    rate_micro: u128,
    /// Bucket size, in millionths of a token.
    capacity: u128,
    ipv6_prefix: u8,
    allow_when_full: bool,
}

impl RateLimit {
    fn source(&self, request: &Request) -> String {
        if let Some((ip, _)) = peer_ip(request) {
            return match ip {
                IpAddr::V4(_) => format!("ip:{ip}"),
                IpAddr::V6(_) => format!("ip:{}/{}", mask(ip, self.ipv6_prefix), self.ipv6_prefix),
            };
        }
        if let Some(cred) = &request.peer_credentials {
            return format!("uid:{}", cred.uid);
        }
        format!("socket:{}", request.socket_unit)
    }

    /// Takes one token from the bucket in `state` at `now`; returns whether it
    /// could, and the new state.
    fn take(&self, state: Option<(u128, u64)>, now: u64) -> (bool, u128) {
        let tokens = match state {
            None => self.capacity,
            Some((tokens, last)) => {
                let elapsed = u128::from(now.saturating_sub(last));
                let refill = elapsed.saturating_mul(self.rate_micro) / NANOS_PER_SEC;
                tokens.saturating_add(refill).min(self.capacity)
            }
        };
        if tokens >= UNIT {
            (true, tokens - UNIT)
        } else {
            (false, tokens)
        }
    }

    /// Nanoseconds until a bucket holding `tokens` is full again.
    fn time_to_full(&self, tokens: u128) -> u64 {
        let missing = self.capacity - tokens.min(self.capacity);
        let nanos = missing.saturating_mul(NANOS_PER_SEC) / self.rate_micro.max(1);
        u64::try_from(nanos).unwrap_or(u64::MAX).saturating_add(1)
    }
}

fn decode(bytes: &[u8]) -> Option<(u128, u64)> {
    let tokens = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
    let last = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((u128::from(tokens), last))
}

fn encode(tokens: u128, now: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&u64::try_from(tokens).unwrap_or(u64::MAX).to_le_bytes());
    v.extend_from_slice(&now.to_le_bytes());
    v
}

impl Policy for RateLimit {
    fn init(config: &Config) -> Result<Self, String> {
        config.check_keys(&["rate", "burst", "ipv6-prefix", "when-full"], &[])?;
        let rate: f64 = config.parse_or("rate", 10.0)?;
        if !(rate.is_finite() && rate > 0.0 && rate <= 1e9) {
            return Err(format!("config key `rate`: {rate} is not a positive rate"));
        }
        let burst: u32 = config.parse_or("burst", 20)?;
        if burst == 0 {
            return Err("config key `burst`: must be at least 1".into());
        }
        let ipv6_prefix: u8 = config.parse_or("ipv6-prefix", 64)?;
        if ipv6_prefix > 128 {
            return Err("config key `ipv6-prefix`: must be 0..=128".into());
        }
        let allow_when_full = match config.get("when-full") {
            None | Some("allow") => true,
            Some("deny") => false,
            Some(other) => {
                return Err(format!(
                    "config key `when-full`: `{other}` is not allow or deny"
                ));
            }
        };
        // `rate` is checked to be in (0, 1e9], so this is in range.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate_micro = (rate * 1e6).round().max(1.0) as u128;
        Ok(RateLimit {
            rate_micro,
            capacity: u128::from(burst) * UNIT,
            ipv6_prefix,
            allow_when_full,
        })
    }

    fn decide(&self, request: &Request) -> Decision {
        let source = self.source(request);
        let key = format!("bucket/{source}");
        let now = clock::now();
        let state = store::get(&key).as_deref().and_then(decode);
        let (admitted, tokens) = self.take(state, now);
        match store::set(&key, &encode(tokens, now), Some(self.time_to_full(tokens))) {
            Ok(()) => {}
            Err(e) => {
                let what = match e {
                    StoreError::Full => "store is full",
                    StoreError::TooLarge => "key too large",
                    StoreError::NotACounter => "unexpected value",
                };
                log(
                    Level::Warn,
                    &format!("cannot record bucket for {source}: {what}"),
                );
                if state.is_none() {
                    return if self.allow_when_full {
                        Decision::allow()
                    } else {
                        Decision::deny(format!("rate limiter cannot track {source}"))
                    };
                }
            }
        }
        if admitted {
            Decision::allow()
        } else {
            Decision::deny(format!("rate limit exceeded for {source}"))
        }
    }
}

flint_plugin_sdk::export_plugin!(RateLimit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_drains_and_refills() {
        let rl = RateLimit {
            rate_micro: 2 * UNIT,
            capacity: 3 * UNIT,
            ipv6_prefix: 64,
            allow_when_full: true,
        };
        let mut state = None;
        let mut admitted = 0;
        for _ in 0..5 {
            let (ok, tokens) = rl.take(state, 1000);
            state = Some((tokens, 1000));
            admitted += u32::from(ok);
        }
        assert_eq!(admitted, 3);
        // Half a second later, one token (2/s) is back.
        let (ok, _) = rl.take(state, 1000 + 500_000_000);
        assert!(ok);
        assert_eq!(rl.time_to_full(3 * UNIT), 1);
        assert_eq!(rl.time_to_full(UNIT), 1_000_000_001);
        assert_eq!(decode(&encode(5, 7)), Some((5, 7)));
    }
}
