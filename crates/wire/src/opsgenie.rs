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

/// What a request did, as Opsgenie's request status names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestAction {
    Create,
    Close,
    Acknowledge,
}

impl RequestAction {
    pub fn name(self) -> &'static str {
        match self {
            RequestAction::Create => "Create",
            RequestAction::Close => "Close",
            RequestAction::Acknowledge => "Acknowledge",
        }
    }

    fn code(self) -> u8 {
        match self {
            RequestAction::Create => 1,
            RequestAction::Close => 2,
            RequestAction::Acknowledge => 3,
        }
    }
}

/// A UUID-shaped `requestId` that carries the alert it was about and the
/// action, so that `GET /v2/alerts/requests/{id}` answers on any node
/// without storing anything: the last group is the alert id (hex), the
/// fourth starts with 9, a or b for create, close and acknowledge. `random`
/// fills the rest (at least 19 hex digits). Requests about no alert carry
/// a fourth group starting with 8 and match nothing.
pub fn request_id(about: Option<(RequestAction, i64)>, random: &str) -> String {
    let r = |a: usize, b: usize| random.get(a..b).unwrap_or("0");
    let (marker, alert) = match about {
        Some((action, id)) if id > 0 => (8 + action.code(), id),
        _ => (8, 0),
    };
    format!(
        "{}-{}-4{}-{marker:x}{}-{:012x}",
        r(0, 8),
        r(8, 12),
        r(12, 15),
        r(15, 18),
        alert & 0xffff_ffff_ffff
    )
}

/// The action and alert a `requestId` made by [`request_id`] is about.
pub fn parse_request_id(id: &str) -> Option<(RequestAction, i64)> {
    let parts: Vec<&str> = id.trim().split('-').collect();
    let [a, b, c, d, e] = parts.as_slice() else {
        return None;
    };
    if a.len() != 8 || b.len() != 4 || c.len() != 4 || d.len() != 4 || e.len() != 12 {
        return None;
    }
    let action = match d.chars().next()? {
        '9' => RequestAction::Create,
        'a' => RequestAction::Close,
        'b' => RequestAction::Acknowledge,
        _ => return None,
    };
    let alert = i64::from_str_radix(e, 16).ok().filter(|n| *n > 0)?;
    Some((action, alert))
}

#[cfg(test)]
mod request_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_ids_carry_their_alert_and_action() {
        let random = "0123456789abcdef0123456789abcdef";
        for (action, id) in [
            (RequestAction::Create, 1),
            (RequestAction::Close, 42),
            (RequestAction::Acknowledge, 0xffff_ffff),
        ] {
            let rid = request_id(Some((action, id)), random);
            assert_eq!(rid.len(), 36, "{rid}");
            assert_eq!(parse_request_id(&rid), Some((action, id)), "{rid}");
        }
        let none = request_id(None, random);
        assert_eq!(none.len(), 36);
        assert_eq!(parse_request_id(&none), None);
        assert_eq!(parse_request_id("not-a-request"), None);
        assert_eq!(
            parse_request_id("00000000-0000-4000-9000-00000000000g"),
            None
        );
    }
}
