//! PagerDuty Events API v2: `POST /v2/enqueue` (alert events) and
//! `POST /v2/change/enqueue` (change events). The integration key travels in
//! the body as `routing_key`.
//!
//! Errors are collected the way PagerDuty reports them: every problem of
//! the event, each naming its field, for the `errors[]` of a 400.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tocsin_domain::Link;

use crate::alertmanager::PrometheusSettings;
use crate::command::{
    Command, ImageIn, LinkIn, Trigger, cut, key, links, parse_object, present, resolve_event,
    trigger_event,
};

/// An alert event as sent. Every field is optional here so that all
/// problems can be reported at once by [`map`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Event {
    #[serde(default)]
    pub routing_key: Option<String>,
    #[serde(default)]
    pub event_action: Option<String>,
    #[serde(default)]
    pub dedup_key: Option<String>,
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(default)]
    pub images: Vec<ImageIn>,
    #[serde(default)]
    pub links: Vec<LinkIn>,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub client_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Payload {
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub component: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub custom_details: Option<Value>,
}

/// A body that is not a JSON object of the right shape: one error naming
/// the field.
/// The values of `payload.severity`, most severe first.
pub const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

pub fn parse(body: &[u8]) -> Result<Event, Vec<String>> {
    parse_object(body).map_err(|e| vec![e.to_string()])
}

/// The integration key of the event (`routing_key`), if it has one.
pub fn routing_key(e: &Event) -> Option<&str> {
    present(&e.routing_key)
}

/// Check the event and say what it asks for. `generated_key` is the dedup
/// key of a trigger that brings none. Every problem is reported, each
/// naming its field.
pub fn map(
    e: &Event,
    settings: &PrometheusSettings,
    generated_key: &str,
    now: DateTime<Utc>,
) -> Result<Command, Vec<String>> {
    let mut errors = Vec::new();
    if routing_key(e).is_none() {
        errors.push("'routing_key' is missing or blank".to_owned());
    }
    let action = present(&e.event_action);
    let dedup = present(&e.dedup_key);
    if dedup.is_some_and(|k| k.chars().count() > 255) {
        errors.push("'dedup_key' is longer than 255 characters".to_owned());
    }
    match action {
        None => errors.push("'event_action' is missing or blank".to_owned()),
        Some("trigger") => {}
        Some("acknowledge" | "resolve") => {
            if dedup.is_none() {
                errors.push(format!(
                    "'dedup_key' is required for event_action '{}'",
                    action.unwrap_or_default()
                ));
            }
        }
        Some(other) => errors.push(format!(
            "'event_action' is invalid: '{other}' (expected trigger, acknowledge or resolve)"
        )),
    }
    if action == Some("trigger") {
        let p = e.payload.clone().unwrap_or_default();
        if e.payload.is_none() {
            errors.push("'payload' is missing".to_owned());
        } else {
            if present(&p.summary).is_none() {
                errors.push("'payload.summary' is missing or blank".to_owned());
            }
            if present(&p.source).is_none() {
                errors.push("'payload.source' is missing or blank".to_owned());
            }
            match present(&p.severity) {
                None => errors.push("'payload.severity' is missing or blank".to_owned()),
                Some(s) if SEVERITIES.contains(&s) => {}
                Some(other) => errors.push(format!(
                    "'payload.severity' is invalid: '{other}' (expected critical, error, warning or info)"
                )),
            }
            if let Some(ts) = present(&p.timestamp)
                && DateTime::parse_from_rfc3339(ts).is_err()
            {
                errors.push(format!(
                    "'payload.timestamp' is not an ISO 8601 date and time: '{ts}'"
                ));
            }
        }
        for (i, img) in e.images.iter().enumerate() {
            if present(&img.src).is_none() {
                errors.push(format!("'images[{i}].src' is missing or blank"));
            }
        }
        for (i, l) in e.links.iter().enumerate() {
            if present(&l.href).is_none() {
                errors.push(format!("'links[{i}].href' is missing or blank"));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let k = key("dedup_key", dedup.unwrap_or(generated_key)).map_err(|e| vec![e.to_string()])?;
    match action {
        Some("acknowledge") => Ok(Command::Accept(k)),
        Some("resolve") => Ok(Command::Resolve(resolve_event(k, now))),
        _ => {
            let p = e.payload.clone().unwrap_or_default();
            Ok(Command::Trigger(trigger_event(
                k,
                trigger(e, &p, settings),
                settings.severity_map.default_severity(),
                settings.high_priority_from(),
                now,
            )))
        }
    }
}

fn trigger(e: &Event, p: &Payload, settings: &PrometheusSettings) -> Trigger {
    let mut labels = BTreeMap::new();
    for (name, v) in [
        ("source", &p.source),
        ("component", &p.component),
        ("group", &p.group),
        ("class", &p.class),
    ] {
        if let Some(v) = present(v) {
            labels.insert(name.to_owned(), v.to_owned());
        }
    }
    let mut details = String::new();
    for (name, v) in &labels {
        details.push_str(&format!("{name}: {v}\n"));
    }
    if let Some(ts) = present(&p.timestamp) {
        details.push_str(&format!("timestamp: {ts}\n"));
    }
    if let Some(cd) = p.custom_details.as_ref().filter(|v| !v.is_null()) {
        details.push('\n');
        details.push_str(&describe(cd));
    }
    let mut links = links(&e.links, &e.images);
    if let Some(url) = present(&e.client_url) {
        links.push(Link {
            href: url.to_owned(),
            text: present(&e.client).unwrap_or("Source").to_owned(),
        });
    }
    Trigger {
        summary: cut(present(&p.summary).unwrap_or_default(), 1024),
        details: details.trim_end().to_owned(),
        severity: Some(settings.severity_map.lookup(present(&p.severity))),
        priority: None,
        labels,
        links,
        routing_key: None,
        notes: Vec::new(),
        detected_at: present(&p.timestamp)
            .and_then(|ts| DateTime::parse_from_rfc3339(ts).ok())
            .map(|t| t.to_utc()),
    }
    .templated(settings.templates.as_ref(), e)
}

/// `custom_details` as text: an object as `key: value` lines, anything
/// else as JSON.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A change event: recorded, pages nobody.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ChangeEvent {
    #[serde(default)]
    pub routing_key: Option<String>,
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(default)]
    pub links: Vec<LinkIn>,
}

/// What Tocsin keeps of a change event.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub summary: String,
    pub source: Option<String>,
    pub at: DateTime<Utc>,
    pub details: String,
    pub links: Vec<Link>,
}

pub fn parse_change(body: &[u8]) -> Result<ChangeEvent, Vec<String>> {
    parse_object(body).map_err(|e| vec![e.to_string()])
}

pub fn map_change(e: &ChangeEvent, now: DateTime<Utc>) -> Result<Change, Vec<String>> {
    let mut errors = Vec::new();
    if present(&e.routing_key).is_none() {
        errors.push("'routing_key' is missing or blank".to_owned());
    }
    let p = e.payload.clone().unwrap_or_default();
    let summary = present(&p.summary).map(str::to_owned);
    if summary.is_none() {
        errors.push("'payload.summary' is missing or blank".to_owned());
    }
    let at = match present(&p.timestamp) {
        None => now,
        Some(ts) => match DateTime::parse_from_rfc3339(ts) {
            Ok(t) => t.to_utc(),
            Err(_) => {
                errors.push(format!(
                    "'payload.timestamp' is not an ISO 8601 date and time: '{ts}'"
                ));
                now
            }
        },
    };
    for (i, l) in e.links.iter().enumerate() {
        if present(&l.href).is_none() {
            errors.push(format!("'links[{i}].href' is missing or blank"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Change {
        summary: cut(summary.as_deref().unwrap_or_default(), 1024),
        source: present(&p.source).map(str::to_owned),
        at,
        details: p
            .custom_details
            .as_ref()
            .filter(|v| !v.is_null())
            .map(describe)
            .unwrap_or_default(),
        links: links(&e.links, &[]),
    })
}
