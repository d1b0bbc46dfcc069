//! A fixed-window rate limit, systemd's `RateLimit`: at most `burst` events
//! per `interval`; either set to zero turns it off. Used for
//! `TriggerLimitIntervalSec=`/`TriggerLimitBurst=`.

use std::time::{Duration, Instant};

/// At most `burst` events in each `interval`.
#[derive(Debug, Clone)]
pub struct RateLimit {
    interval: Duration,
    burst: u64,
    begin: Option<Instant>,
    count: u64,
}

impl RateLimit {
    pub fn new(interval: Duration, burst: u64) -> RateLimit {
        RateLimit {
            interval,
            burst,
            begin: None,
            count: 0,
        }
    }

    /// When the current window ends (and events are allowed again).
    pub fn window_end(&self) -> Option<Instant> {
        self.begin.map(|b| b + self.interval)
    }

    /// Counts one event now; false when it exceeds the limit.
    pub fn allow(&mut self) -> bool {
        self.allow_at(Instant::now())
    }

    /// Counts one event at `now`.
    pub fn allow_at(&mut self, now: Instant) -> bool {
        if self.interval.is_zero() || self.burst == 0 {
            return true;
        }
        match self.begin {
            Some(b) if now.saturating_duration_since(b) < self.interval => {}
            _ => {
                self.begin = Some(now);
                self.count = 0;
            }
        }
        self.count += 1;
        self.count <= self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_then_new_window() {
        let mut rl = RateLimit::new(Duration::from_secs(2), 3);
        let t0 = Instant::now();
        assert!(rl.allow_at(t0));
        assert!(rl.allow_at(t0));
        assert!(rl.allow_at(t0 + Duration::from_millis(10)));
        assert!(
            !rl.allow_at(t0 + Duration::from_millis(20)),
            "fourth event within the window is refused"
        );
        assert!(
            rl.allow_at(t0 + Duration::from_secs(2)),
            "a new window starts after the interval"
        );
    }

    #[test]
    fn zero_disables() {
        let mut a = RateLimit::new(Duration::ZERO, 1);
        let mut b = RateLimit::new(Duration::from_secs(1), 0);
        for _ in 0..1000 {
            assert!(a.allow() && b.allow());
        }
    }
}
