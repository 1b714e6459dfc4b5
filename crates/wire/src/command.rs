//! What the command-style senders (PagerDuty, Opsgenie, ilert) ask for, as
//! one shape: each of their events names a dedup key and says trigger,
//! accept or resolve.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_domain::{
    AlertEvent, DedupKey, Link, Member, MemberStatus, Priority, RoutingHint, Severity,
};

use crate::{Templates, WireError};

/// The member fingerprint of a command-style alert (it has exactly one).
pub const MEMBER: &str = "event";

/// What one event asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Create the alert, or update the open one with this key.
    Trigger(AlertEvent),
    /// Accept the open alert with this key (nothing if there is none).
    Accept(DedupKey),
    /// Resolve the open alert with this key (nothing if there is none).
    Resolve(AlertEvent),
}

impl Command {
    pub fn key(&self) -> &DedupKey {
        match self {
            Command::Trigger(e) | Command::Resolve(e) => &e.dedup_key,
            Command::Accept(k) => k,
        }
    }
}

/// The content of a trigger.
#[derive(Debug, Clone, Default)]
pub struct Trigger {
    pub summary: String,
    pub details: String,
    pub severity: Option<Severity>,
    pub priority: Option<Priority>,
    pub labels: BTreeMap<String, String>,
    pub links: Vec<Link>,
    pub routing_key: Option<String>,
    /// Remarks for the timeline (a template that failed, …).
    pub notes: Vec<String>,
    /// When the sender says the problem began (default: on receipt).
    pub detected_at: Option<DateTime<Utc>>,
}

impl Trigger {
    /// Render the source's templates (SPEC §2.4) over the sender's payload.
    /// A template that fails, or renders an empty summary, keeps the
    /// default and says so on the timeline.
    pub fn templated(mut self, templates: Option<&Templates>, payload: &impl Serialize) -> Self {
        let Some(t) = templates else {
            return self;
        };
        match t.summary(payload) {
            Some(Ok(s)) if !s.is_empty() => self.summary = cut(&s, 1024),
            Some(Ok(_)) => self
                .notes
                .push("summary template rendered nothing; used the default summary".to_owned()),
            Some(Err(e)) => self.notes.push(format!(
                "summary template failed ({e}); used the default summary"
            )),
            None => {}
        }
        match t.details(payload) {
            Some(Ok(d)) => self.details = d,
            Some(Err(e)) => self.notes.push(format!(
                "details template failed ({e}); used the default details"
            )),
            None => {}
        }
        self
    }
}

/// A link as PagerDuty and ilert send it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct LinkIn {
    #[serde(default)]
    pub href: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

/// An image as PagerDuty and ilert send it (shown as a link).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ImageIn {
    #[serde(default)]
    pub src: Option<String>,
    #[serde(default)]
    pub href: Option<String>,
    #[serde(default)]
    pub alt: Option<String>,
}

/// A field's value, trimmed, if it is there and not blank.
pub fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Links, then images as links (text: `alt`, else `Image`); entries
/// without their URL are left out.
pub fn links(links: &[LinkIn], images: &[ImageIn]) -> Vec<Link> {
    let mut out: Vec<Link> = links
        .iter()
        .filter_map(|l| {
            let href = present(&l.href)?;
            Some(Link {
                href: href.to_owned(),
                text: present(&l.text).unwrap_or(href).to_owned(),
            })
        })
        .collect();
    out.extend(images.iter().filter_map(|i| {
        let src = present(&i.src)?;
        Some(Link {
            href: present(&i.href).unwrap_or(src).to_owned(),
            text: present(&i.alt).unwrap_or("Image").to_owned(),
        })
    }));
    out
}

/// A body that must be a JSON object of type `T`; the error names the field.
pub fn parse_object<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, WireError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(WireError::new("", "the body must be a JSON object"));
    }
    WireError::parse_json(body)
}

/// A dedup key from a sender's field, naming the field when it is bad.
pub fn key(field: &str, value: &str) -> Result<DedupKey, WireError> {
    DedupKey::new(value).map_err(|e| WireError::new(field, e.0))
}

/// Cut `s` to at most `max` characters.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max).collect()
    }
}

/// A trigger as a domain event: one firing member that carries the
/// content, so that a change of summary or severity is an update and a
/// repeat is a duplicate.
pub fn trigger_event(
    key: DedupKey,
    t: Trigger,
    default_severity: Severity,
    high_from: Severity,
    now: DateTime<Utc>,
) -> AlertEvent {
    let severity = t.severity.unwrap_or(default_severity);
    let priority = t.priority.unwrap_or(if severity.is_at_or_above(high_from) {
        Priority::High
    } else {
        Priority::Low
    });
    let mut annotations = BTreeMap::from([
        ("summary".to_owned(), t.summary.clone()),
        ("severity".to_owned(), severity.as_str().to_owned()),
        ("priority".to_owned(), priority.as_str().to_owned()),
    ]);
    if !t.details.is_empty() {
        annotations.insert("details".to_owned(), t.details.clone());
    }
    for (i, l) in t.links.iter().enumerate() {
        annotations.insert(format!("link{i}"), format!("{} {}", l.href, l.text));
    }
    let all_labels: BTreeSet<(String, String)> = t
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    AlertEvent {
        dedup_key: key,
        members: vec![Member {
            fingerprint: MEMBER.to_owned(),
            status: MemberStatus::Firing,
            starts_at: now,
            ends_at: None,
            labels: t.labels.clone(),
            annotations,
            generator_url: None,
        }],
        resolved: false,
        summary: cut(&t.summary, 1024),
        details: t.details,
        labels: t.labels,
        all_labels,
        links: t.links,
        severity,
        priority,
        routing: RoutingHint {
            routing_key: t.routing_key,
            service_id: None,
        },
        detected_at: t.detected_at.filter(|d| *d <= now).unwrap_or(now),
        resolved_at: None,
        notes: t.notes,
        stateless: true,
    }
}

/// A resolve as a domain event: it ends the one member, and carries no
/// content (the alert keeps its own).
pub fn resolve_event(key: DedupKey, now: DateTime<Utc>) -> AlertEvent {
    AlertEvent {
        dedup_key: key,
        members: vec![Member {
            fingerprint: MEMBER.to_owned(),
            status: MemberStatus::Resolved,
            starts_at: now,
            ends_at: Some(now),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            generator_url: None,
        }],
        resolved: true,
        summary: String::new(),
        details: String::new(),
        labels: BTreeMap::new(),
        all_labels: BTreeSet::new(),
        links: Vec::new(),
        severity: Severity::Sev4,
        priority: Priority::Low,
        routing: RoutingHint::default(),
        detected_at: now,
        resolved_at: Some(now),
        notes: Vec::new(),
        stateless: true,
    }
}
