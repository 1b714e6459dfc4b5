//! Tocsin's background work, each piece a worker with `tick(now)` so that
//! tests drive it with an injected clock and the binary drives it with the
//! wall clock:
//!
//! - [`EscalationWorker`]: claims due escalation steps, decides whom to
//!   notify (schedules resolved at that instant), queues notifications in the
//!   outbox and the next step, all in one transaction per step.
//! - [`Dispatcher`]: claims due notifications from the outbox, sends each
//!   through its channel, and records every attempt; failures retry with
//!   exponential backoff until they are marked failed.
//! - [`HeartbeatWorker`]: raises an alert for each heartbeat whose stored
//!   due time (last ping + interval + grace) has passed.
//! - [`StatusWorker`]: resolves incidents whose linked alerts are all
//!   resolved, unless a person posted an update.

mod dispatch;
mod escalation;
mod heartbeat;
mod status;

pub use dispatch::{DispatchReport, Dispatcher, RetryPolicy};
pub use escalation::{EscalationPlanner, EscalationWorker, TickReport};
pub use heartbeat::{HeartbeatReport, HeartbeatWorker};
pub use status::{StatusReport, StatusWorker};

/// A timer for a worker loop that ticks every `period`. A tick missed while
/// the loop was busy is not made up in a burst: the next one is a full
/// period after the loop got back.
pub fn poll_every(period: std::time::Duration) -> tokio::time::Interval {
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every
}

/// A worker failed to talk to storage; the next tick tries again.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] tocsin_store::StoreError),
    /// A use-case of the application layer failed.
    #[error(transparent)]
    App(#[from] tocsin_app::AppError),
    /// An event could not be built (a bug, not bad input).
    #[error("{0}")]
    Invalid(String),
}

/// Where workers get the time: the application layer's clock.
pub use tocsin_app::{Clock, FixedClock, SystemClock};

/// A random claim token for leases.
pub(crate) fn claim_token() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}
