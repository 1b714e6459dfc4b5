//! The ilert Events API: `POST /api/events` (and the legacy
//! `/api/v1/events`). The source's key travels in the body, as
//! `integrationKey` or, from older clients, `apiKey`. `alertKey` (legacy
//! `incidentKey`) is compared case-insensitively.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tocsin_domain::{Priority, Severity};

use crate::alertmanager::PrometheusSettings;
use crate::command::{
    ImageIn, LinkIn, Trigger, cut, key, links, parse_object, present, resolve_event, trigger_event,
};
use crate::pagerduty::describe;
use crate::{Command, WireError};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default)]
    pub integration_key: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub alert_key: Option<String>,
    #[serde(default)]
    pub incident_key: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub severity: Option<i64>,
    #[serde(default)]
    pub images: Vec<ImageIn>,
    #[serde(default)]
    pub links: Vec<LinkIn>,
    #[serde(default)]
    pub custom_details: Option<Value>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub routing_key: Option<String>,
}

pub fn parse(body: &[u8]) -> Result<Event, WireError> {
    parse_object(body)
}

/// The source key of the event: `integrationKey`, else `apiKey`.
pub fn integration_key(e: &Event) -> Option<&str> {
    present(&e.integration_key).or_else(|| present(&e.api_key))
}

/// `alertKey` (or legacy `incidentKey`), lower-cased: ilert compares alert
/// keys case-insensitively.
pub fn alert_key(e: &Event) -> Option<String> {
    present(&e.alert_key)
        .or_else(|| present(&e.incident_key))
        .map(str::to_lowercase)
}

/// Check the event and say what it asks for. `generated_key` keys an ALERT
/// without an `alertKey`.
pub fn map(
    e: &Event,
    settings: &PrometheusSettings,
    generated_key: &str,
    now: DateTime<Utc>,
) -> Result<Command, WireError> {
    let kind = present(&e.event_type)
        .ok_or_else(|| WireError::new("eventType", "missing; use ALERT, ACCEPT or RESOLVE"))?;
    let alert_key = alert_key(e);
    match kind.to_ascii_uppercase().as_str() {
        "ALERT" => {
            let summary = present(&e.summary)
                .ok_or_else(|| WireError::new("summary", "missing; an ALERT needs a summary"))?;
            let priority = match present(&e.priority) {
                None => None,
                Some(p) => Some(p.parse::<Priority>().map_err(|_| {
                    WireError::new("priority", format!("`{p}` is not HIGH or LOW"))
                })?),
            };
            let severity = match e.severity {
                None => None,
                Some(n) => Some(severity(n).ok_or_else(|| {
                    WireError::new("severity", format!("{n} is not between 1 and 5"))
                })?),
            };
            let k = key(
                "alertKey",
                alert_key
                    .as_deref()
                    .unwrap_or(&generated_key.to_lowercase()),
            )?;
            let mut details = present(&e.details).unwrap_or_default().to_owned();
            if let Some(cd) = e.custom_details.as_ref().filter(|v| !v.is_null()) {
                details.push_str("\n\n");
                details.push_str(&describe(cd));
            }
            let links = links(&e.links, &e.images);
            Ok(Command::Trigger(trigger_event(
                k,
                Trigger {
                    summary: cut(summary, 1024),
                    details: details.trim().to_owned(),
                    severity,
                    priority,
                    labels: e.labels.clone(),
                    links,
                    routing_key: present(&e.routing_key).map(str::to_owned),
                    notes: Vec::new(),
                    detected_at: None,
                }
                .templated(settings.templates.as_ref(), e),
                settings.severity_map.default_severity(),
                settings.high_priority_from(),
                now,
            )))
        }
        "ACCEPT" | "RESOLVE" => {
            let k = alert_key.ok_or_else(|| {
                WireError::new("alertKey", format!("missing; {kind} needs the alert's key"))
            })?;
            let k = key("alertKey", &k)?;
            if kind.eq_ignore_ascii_case("ACCEPT") {
                Ok(Command::Accept(k))
            } else {
                Ok(Command::Resolve(resolve_event(k, now)))
            }
        }
        other => Err(WireError::new(
            "eventType",
            format!("`{other}` is not supported; use ALERT, ACCEPT or RESOLVE"),
        )),
    }
}

/// ilert's severity 1 (highest) … 5 as SEV0 … SEV4.
fn severity(n: i64) -> Option<Severity> {
    match n {
        1 => Some(Severity::Sev0),
        2 => Some(Severity::Sev1),
        3 => Some(Severity::Sev2),
        4 => Some(Severity::Sev3),
        5 => Some(Severity::Sev4),
        _ => None,
    }
}
