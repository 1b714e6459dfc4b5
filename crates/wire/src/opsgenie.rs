//! The Opsgenie Alert API subset Alertmanager's `opsgenie_configs` uses:
//! `POST /v2/alerts` (create), `POST /v2/alerts/{id}/close` and
//! `/acknowledge` with `identifierType=id|alias|tiny`. The key travels in
//! `Authorization: GenieKey <key>`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_domain::{DedupKey, Severity};

use crate::alertmanager::PrometheusSettings;
use crate::command::{Trigger, cut, key, parse_object, present, trigger_event};
use crate::{Command, WireError};

/// A create request. Only `message` is required.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CreateAlert {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// The key from `Authorization: GenieKey <key>`.
pub fn genie_key(authorization: &str) -> Option<&str> {
    let (scheme, key) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("GenieKey")
        .then_some(key.trim())
        .filter(|k| !k.is_empty())
}

/// A body that is not a JSON object of the right shape.
pub fn parse_create(body: &[u8]) -> Result<CreateAlert, WireError> {
    parse_object(body)
}

/// `P1`…`P5` → `SEV0`…`SEV4`.
pub fn severity(priority: &str) -> Option<Severity> {
    match priority.trim() {
        "P1" => Some(Severity::Sev0),
        "P2" => Some(Severity::Sev1),
        "P3" => Some(Severity::Sev2),
        "P4" => Some(Severity::Sev3),
        "P5" => Some(Severity::Sev4),
        _ => None,
    }
}

/// Check a create request (a 422 names what is wrong) and turn it into a
/// trigger. `generated_key` keys a create without an alias.
pub fn map_create(
    c: &CreateAlert,
    settings: &PrometheusSettings,
    generated_key: &str,
    now: DateTime<Utc>,
) -> Result<Command, WireError> {
    let message = present(&c.message)
        .ok_or_else(|| WireError::new("message", "Message can not be empty."))?;
    let sev = match present(&c.priority) {
        None => Severity::Sev2,
        Some(p) => severity(p).ok_or_else(|| {
            WireError::new(
                "priority",
                format!("Priority should be one of [P1, P2, P3, P4, P5], not `{p}`."),
            )
        })?,
    };
    let alias = present(&c.alias);
    if alias.is_some_and(|a| a.chars().count() > 512) {
        return Err(WireError::new(
            "alias",
            "Alias can be at most 512 characters.",
        ));
    }
    let k = key("alias", alias.unwrap_or(generated_key))?;
    let mut labels = c.details.clone();
    for (name, v) in [
        ("entity", &c.entity),
        ("source", &c.source),
        ("user", &c.user),
    ] {
        if let Some(v) = present(v) {
            labels.insert(name.to_owned(), v.to_owned());
        }
    }
    if !c.tags.is_empty() {
        labels.insert("tags".to_owned(), c.tags.join(","));
    }
    let mut details = present(&c.description).unwrap_or_default().to_owned();
    if let Some(note) = present(&c.note) {
        details.push_str(&format!("\n\nNote: {note}"));
    }
    if !c.details.is_empty() {
        details.push_str("\n\n");
        for (k, v) in &c.details {
            details.push_str(&format!("{k}: {v}\n"));
        }
    }
    Ok(Command::Trigger(trigger_event(
        k,
        Trigger {
            summary: cut(message, 130),
            details: details.trim().to_owned(),
            severity: Some(sev),
            priority: None,
            labels,
            links: Vec::new(),
            routing_key: None,
            notes: Vec::new(),
            detected_at: None,
        }
        .templated(settings.templates.as_ref(), c),
        settings.severity_map.default_severity(),
        settings.high_priority_from(),
        now,
    )))
}

/// How `/v2/alerts/{identifier}/…` names the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    /// Tocsin's alert id (`identifierType=id` or `tiny`).
    Id(i64),
    /// The dedup key (`identifierType=alias`).
    Alias(DedupKey),
}

/// Read the identifier and its `identifierType` (default `id`).
pub fn identifier(value: &str, kind: Option<&str>) -> Result<Identifier, WireError> {
    match kind.unwrap_or("id") {
        "alias" => Ok(Identifier::Alias(key("identifier", value)?)),
        "id" | "tiny" => value
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Identifier::Id)
            .ok_or_else(|| {
                WireError::new(
                    "identifier",
                    format!("`{value}` is not a Tocsin alert id; use identifierType=alias to close by alias"),
                )
            }),
        other => Err(WireError::new(
            "identifierType",
            format!("`{other}` is not one of id, alias or tiny"),
        )),
    }
}
