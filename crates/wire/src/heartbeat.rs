//! Heartbeat pings and the alert an overdue heartbeat raises.
//!
//! A ping's body is ignored, with one exception: an Alertmanager webhook
//! whose `status` is `resolved` is not a ping, because a resolved Watchdog
//! means the always-firing alert stopped firing: trouble, not health.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tocsin_domain::{AlertEvent, DedupKey, Priority, Severity};

use crate::WireError;
use crate::command::{Trigger, resolve_event, trigger_event};

/// Why a request to a heartbeat URL does not count as a ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAPing {
    /// An Alertmanager webhook reporting that its alerts resolved.
    ResolvedAlertmanager,
}

#[derive(Deserialize)]
struct MaybeWebhook {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    alerts: Option<serde_json::Value>,
}

/// Does this body count as a ping? Anything that is not a resolved
/// Alertmanager webhook does (no body, text, other JSON).
pub fn check_ping(body: &[u8]) -> Result<(), NotAPing> {
    let Ok(w) = serde_json::from_slice::<MaybeWebhook>(body) else {
        return Ok(());
    };
    if w.alerts.is_some() && w.status.as_deref() == Some("resolved") {
        Err(NotAPing::ResolvedAlertmanager)
    } else {
        Ok(())
    }
}

/// The source id of heartbeat `id`'s alerts (and of its key).
pub fn source_id(id: &str) -> String {
    format!("heartbeat:{id}")
}

fn key() -> Result<DedupKey, WireError> {
    DedupKey::new("overdue").map_err(|e| WireError::new("heartbeat", e.0))
}

/// The alert an overdue heartbeat raises.
pub fn overdue_event(
    id: &str,
    name: &str,
    last_ping: DateTime<Utc>,
    interval_secs: i64,
    grace_secs: i64,
    now: DateTime<Utc>,
) -> Result<AlertEvent, WireError> {
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("heartbeat".to_owned(), id.to_owned());
    let cmd = trigger_event(
        key()?,
        Trigger {
            summary: format!(
                "Heartbeat {name} is overdue: no ping since {}",
                last_ping.to_rfc3339()
            ),
            details: format!(
                "The heartbeat `{id}` expects a ping every {interval_secs} s, with {grace_secs} s of grace. The last ping came at {}; it fell due at {}.\nThe next ping resolves this alert.",
                last_ping.to_rfc3339(),
                (last_ping + chrono::TimeDelta::seconds(interval_secs + grace_secs)).to_rfc3339()
            ),
            severity: Some(Severity::Sev1),
            priority: Some(Priority::High),
            labels,
            links: Vec::new(),
            routing_key: None,
            notes: Vec::new(),
            detected_at: None,
        },
        Severity::Sev1,
        Severity::Sev1,
        now,
    );
    Ok(cmd)
}

/// The resolve of an overdue heartbeat's alert (it is pinging again).
pub fn recovered(now: DateTime<Utc>) -> Result<AlertEvent, WireError> {
    Ok(resolve_event(key()?, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_resolved_alertmanager_webhook_is_not_a_ping() {
        assert_eq!(check_ping(b""), Ok(()));
        assert_eq!(check_ping(b"ping"), Ok(()));
        assert_eq!(
            check_ping(br#"{"status":"resolved"}"#),
            Ok(()),
            "not a webhook"
        );
        assert_eq!(check_ping(br#"{"status":"firing","alerts":[]}"#), Ok(()));
        assert_eq!(
            check_ping(br#"{"version":"4","status":"resolved","alerts":[{"status":"resolved"}]}"#),
            Err(NotAPing::ResolvedAlertmanager)
        );
    }
}
