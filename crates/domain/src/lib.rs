//! Tocsin's domain: the vocabulary of the product and the decisions that do
//! not need IO. Nothing here reads a clock, a file or a socket; callers pass
//! the current time in.

pub mod access;
pub mod alert;
pub mod catalog;
pub mod duration;
pub mod escalation;
pub mod incident;
pub mod ingest;
pub mod links;
mod openapi;
pub mod routing;
pub mod schedule;
pub mod secret;
pub mod support_hours;
pub mod types;

pub use access::{Denied, Permission, Principal, Scope};
pub use alert::{AlertStatus, Link, Member, MemberStatus, TimelineKind};
pub use catalog::{Catalog, SourceType};
pub use duration::DurationSpec;
pub use ingest::{AlertEvent, Decision, ExistingAlert, MergeResult, RoutingHint, decide};
pub use routing::{Route, Router, SourceRouting};
pub use secret::{SecretKey, TokenDigest};
pub use types::{
    DedupKey, Grouping, OutsideSupportHours, ParseError, Priority, Role, Severity, SeverityMap,
};
