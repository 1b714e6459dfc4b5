//! Per-key rate limits of the PagerDuty, Opsgenie and ilert endpoints: a
//! token bucket per source that holds a minute's worth of events and
//! refills continuously. Alertmanager webhooks and heartbeats are never
//! limited: Alertmanager does not retry a 429.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket; `per_minute == 0` never limits.
#[derive(Debug)]
pub struct Bucket {
    per_minute: u32,
    state: Mutex<(f64, Option<Instant>)>,
}

impl Bucket {
    pub fn per_minute(per_minute: u32) -> Bucket {
        Bucket {
            per_minute,
            state: Mutex::new((f64::from(per_minute), None)),
        }
    }

    /// Events a minute (0: no limit).
    pub fn limit(&self) -> u32 {
        self.per_minute
    }

    /// Take one event at `now`; `Err(wait)` when the key is over its limit,
    /// with how long until the next event would be taken.
    pub fn take(&self, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let cap = f64::from(self.per_minute);
        let rate = cap / 60.0;
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (tokens, last) = *st;
        let refilled = match last {
            Some(t) => (tokens + now.saturating_duration_since(t).as_secs_f64() * rate).min(cap),
            None => tokens,
        };
        if refilled >= 1.0 {
            *st = (refilled - 1.0, Some(now));
            Ok(())
        } else {
            *st = (refilled, Some(now));
            Err(Duration::from_secs_f64((1.0 - refilled) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_events_then_a_steady_refill() {
        let b = Bucket::per_minute(120);
        let t0 = Instant::now();
        for _ in 0..120 {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        // Two per second come back.
        assert!(b.take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take(t0 + Duration::from_millis(500)).is_err());
        assert!(b.take(t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn zero_never_limits() {
        let b = Bucket::per_minute(0);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| b.take(t0).is_ok()));
    }
}
