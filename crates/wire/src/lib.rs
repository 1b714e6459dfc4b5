//! Wire formats of the senders Tocsin accepts, parsed into domain events.
//!
//! Each sender has a module with its body types (serde), a `parse_*`
//! function that turns bytes into those types with errors that name the
//! offending field, and a mapping into [`tocsin_domain::AlertEvent`]s.

pub mod alertmanager;
pub mod command;
pub mod error;
pub mod fuzz;
pub mod heartbeat;
pub mod ilert;
pub mod opsgenie;
pub mod pagerduty;
pub mod template;

pub use command::Command;
pub use error::WireError;
pub use template::{TemplateError, Templates};
