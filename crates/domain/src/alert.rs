//! The alert and its parts, as stored and shown.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::types::ParseError;

/// `pending` escalates, `accepted` stops escalation, `resolved` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Pending,
    Accepted,
    Resolved,
}

impl AlertStatus {
    pub const ALL: [AlertStatus; 3] = [
        AlertStatus::Pending,
        AlertStatus::Accepted,
        AlertStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Accepted => "accepted",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(self, AlertStatus::Resolved)
    }
}

impl FromStr for AlertStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(AlertStatus::Pending),
            "accepted" => Ok(AlertStatus::Accepted),
            "resolved" => Ok(AlertStatus::Resolved),
            _ => Err(ParseError(format!(
                "`{s}` is not an alert status; expected pending, accepted or resolved"
            ))),
        }
    }
}

impl fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// State of one sender-side alert inside a Tocsin alert (for Alertmanager, one
/// Prometheus alert of the group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    Firing,
    Resolved,
}

/// One sender-side alert inside a Tocsin alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Member {
    pub fingerprint: String,
    pub status: MemberStatus,
    pub starts_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

impl Member {
    pub fn is_firing(&self) -> bool {
        self.status == MemberStatus::Firing
    }
}

/// A link shown with an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Link {
    pub href: String,
    pub text: String,
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Created,
    Updated,
    Accepted,
    Resolved,
    Comment,
    Routed,
    Ignored,
    Note,
    /// An escalation step ran: who was notified, what comes next.
    Escalation,
    /// A notification was queued, attempted, delivered or failed.
    Notification,
}

impl TimelineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Created => "created",
            TimelineKind::Updated => "updated",
            TimelineKind::Accepted => "accepted",
            TimelineKind::Resolved => "resolved",
            TimelineKind::Comment => "comment",
            TimelineKind::Routed => "routed",
            TimelineKind::Ignored => "ignored",
            TimelineKind::Note => "note",
            TimelineKind::Escalation => "escalation",
            TimelineKind::Notification => "notification",
        }
    }
}
