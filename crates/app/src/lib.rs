//! Tocsin's application layer: the use-cases that every entry point runs
//! (HTTP handlers, the UI, the link/Slack/Twilio callbacks, workers and
//! the CLI), so that each rule has one path. It knows neither HTTP nor SQL:
//! it takes a [`Store`](tocsin_store::Store) and the time as parameters.
//!
//! - [`catalog`]: the catalog as data: provisioning and planning a file,
//!   loading the stored catalog, keeping every node's copy current.
//! - [`Application`]: ingest (support hours, routing, maintenance, then
//!   `Store::ingest`) and the alert actions, with the clock as a parameter.
//! - [`edit`]: catalog changes through the API (create, replace, delete,
//!   rotate a key), checked like the file.

pub mod access;
mod application;
pub mod audit;
pub mod catalog;
pub mod edit;
pub mod incidents;
pub mod notices;
pub mod signin;
pub mod status;

pub use application::{Application, Assignee, Clock, FixedClock, Origin, SystemClock};
pub use catalog::{Catalogs, Change, Loaded, Op, Plan, Secrets};
use tocsin_config::Problem;

/// Why a use-case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input breaks a rule; every problem names its key path.
    #[error("{}", .0.iter().map(|p| if p.path.is_empty() { p.message.clone() } else { format!("{}: {}", p.path, p.message) }).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// The caller is not known (no token, an unknown, revoked or expired one).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller lacks a permission; the message names it.
    #[error("{0}")]
    Forbidden(String),
    /// No such object.
    #[error("{0}")]
    NotFound(String),
    /// The change cannot be made as things are (the object is provisioned
    /// from a file, exists already, or others refer to it).
    #[error("{0}")]
    Conflict(String),
    /// The object changed since the caller read it (`If-Match`).
    #[error("{0}")]
    Stale(String),
    /// Storage failed (or a write lost to a concurrent one: `Conflict`).
    #[error(transparent)]
    Store(#[from] tocsin_store::StoreError),
    /// Too many attempts lately; the message says how long to wait.
    #[error("{0}")]
    Limited(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}
