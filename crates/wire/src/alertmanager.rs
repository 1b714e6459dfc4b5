//! Prometheus Alertmanager `webhook_configs` bodies (version 4) and their
//! mapping to Tocsin alerts (SPEC §2.2).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tocsin_domain::{
    AlertEvent, DedupKey, Grouping, Link, Member, MemberStatus, Priority, RoutingHint, Severity,
    SeverityMap,
};

use crate::error::WireError;
use crate::template::Templates;

/// Labels that steer routing and presentation; they count only on firing alerts.
pub const ROUTING_KEY_LABELS: [&str; 2] = ["ilert_routingkey", "routing_key"];

/// The top-level webhook body. Unknown fields (`notification_reason`,
/// `routeLabels`, …) are ignored.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub group_key: Option<String>,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: AmStatus,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    pub alerts: Vec<AmAlert>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AmStatus {
    Firing,
    Resolved,
}

/// One alert of the group.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmAlert {
    pub status: AmStatus,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

impl AmAlert {
    fn is_firing(&self) -> bool {
        self.status == AmStatus::Firing
    }

    /// The end time, with Go's zero time (`0001-01-01T00:00:00Z`) read as "none".
    fn end(&self) -> Option<DateTime<Utc>> {
        self.ends_at.filter(|t| t.year() > 1)
    }

    /// The sender's fingerprint, or a stable hash of the sorted labels.
    pub fn fingerprint(&self) -> String {
        match &self.fingerprint {
            Some(f) if !f.is_empty() => f.clone(),
            _ => {
                let mut h = Sha256::new();
                for (k, v) in &self.labels {
                    h.update(k.as_bytes());
                    h.update([0]);
                    h.update(v.as_bytes());
                    h.update([0]);
                }
                hex::encode(&h.finalize()[..8])
            }
        }
    }

    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// How one Prometheus source maps notifications.
#[derive(Debug, Default)]
pub struct PrometheusSettings {
    pub grouping: Grouping,
    pub severity_map: SeverityMap,
    pub high_priority_from: Option<Severity>,
    pub templates: Option<Templates>,
}

impl PrometheusSettings {
    pub fn high_priority_from(&self) -> Severity {
        self.high_priority_from.unwrap_or(Severity::Sev1)
    }
}

/// Parse a webhook body; the error names the offending field.
pub fn parse(body: &[u8]) -> Result<Webhook, WireError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(WireError::new(
            "",
            "the body must be a JSON object (an Alertmanager webhook, version 4)",
        ));
    }
    let hook: Webhook = WireError::parse_json(body)?;
    for (i, a) in hook.alerts.iter().enumerate() {
        if a.status == AmStatus::Resolved && a.end().is_none() {
            return Err(WireError::new(
                format!("alerts[{i}].endsAt"),
                "a resolved alert needs its end time",
            ));
        }
    }
    Ok(hook)
}

/// Map a webhook to the events it stands for: one per group, or one per alert.
pub fn map(
    hook: &Webhook,
    settings: &PrometheusSettings,
    now: DateTime<Utc>,
) -> Result<Vec<AlertEvent>, WireError> {
    if hook.alerts.is_empty() {
        return Err(WireError::new(
            "alerts",
            "the list is empty; nothing to record",
        ));
    }
    match settings.grouping {
        Grouping::Group => {
            let key = hook
                .group_key
                .as_deref()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    WireError::new(
                        "groupKey",
                        "missing; `grouping: group` uses it as the dedup key",
                    )
                })?;
            let key = DedupKey::new(key).map_err(|e| WireError::new("groupKey", e.0))?;
            let alerts: Vec<&AmAlert> = hook.alerts.iter().collect();
            let resolved = hook.status == AmStatus::Resolved;
            Ok(vec![build(key, &alerts, resolved, hook, settings, now)])
        }
        Grouping::Alert => hook
            .alerts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let key = DedupKey::new(a.fingerprint())
                    .map_err(|e| WireError::new(format!("alerts[{i}].fingerprint"), e.0))?;
                Ok(build(key, &[a], !a.is_firing(), hook, settings, now))
            })
            .collect(),
    }
}

/// The variables templates see: Alertmanager's own names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplateContext<'a> {
    status: &'a str,
    alerts: &'a [&'a AmAlert],
    group_labels: &'a BTreeMap<String, String>,
    common_labels: &'a BTreeMap<String, String>,
    common_annotations: &'a BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    receiver: &'a str,
}

fn build(
    dedup_key: DedupKey,
    alerts: &[&AmAlert],
    resolved: bool,
    hook: &Webhook,
    settings: &PrometheusSettings,
    now: DateTime<Utc>,
) -> AlertEvent {
    let firing: Vec<&AmAlert> = alerts.iter().copied().filter(|a| a.is_firing()).collect();
    // What the alert shows: the firing alerts, or all of them once none fire.
    let relevant: Vec<&AmAlert> = if firing.is_empty() {
        alerts.to_vec()
    } else {
        firing.clone()
    };

    let members: Vec<Member> = alerts
        .iter()
        .map(|a| Member {
            fingerprint: a.fingerprint(),
            status: if a.is_firing() {
                MemberStatus::Firing
            } else {
                MemberStatus::Resolved
            },
            starts_at: a.starts_at,
            ends_at: if a.is_firing() { None } else { a.end() },
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            generator_url: Some(a.generator_url.clone()).filter(|u| !u.is_empty()),
        })
        .collect();

    let mut summary = default_summary(&relevant, firing.len());
    if let Some(project) = firing.iter().find_map(|a| a.label("gcp_project")) {
        summary.push_str(&format!(" [{project}]"));
    }
    let mut details = default_details(alerts);
    let mut notes = Vec::new();

    if let Some(t) = &settings.templates {
        let status = if resolved { "resolved" } else { "firing" };
        let ctx = TemplateContext {
            status,
            alerts,
            group_labels: &hook.group_labels,
            common_labels: &hook.common_labels,
            common_annotations: &hook.common_annotations,
            external_url: &hook.external_url,
            receiver: &hook.receiver,
        };
        match t.summary(&ctx) {
            Some(Ok(s)) if !s.is_empty() => summary = s,
            Some(Ok(_)) => {
                notes.push("summary template rendered nothing; used the default summary".to_owned())
            }
            Some(Err(e)) => notes.push(format!(
                "summary template failed ({e}); used the default summary"
            )),
            None => {}
        }
        match t.details(&ctx) {
            Some(Ok(d)) => details = d,
            Some(Err(e)) => notes.push(format!(
                "details template failed ({e}); used the default details"
            )),
            None => {}
        }
    }

    let severity = relevant
        .iter()
        .map(|a| settings.severity_map.lookup(a.label("severity")))
        .reduce(Severity::most_severe)
        .unwrap_or_else(|| settings.severity_map.default_severity());
    let priority = firing
        .iter()
        .find_map(|a| a.label("priority").and_then(|p| p.parse::<Priority>().ok()))
        .unwrap_or(if severity.is_at_or_above(settings.high_priority_from()) {
            Priority::High
        } else {
            Priority::Low
        });

    let routing = RoutingHint {
        routing_key: firing.iter().find_map(|a| {
            ROUTING_KEY_LABELS
                .iter()
                .find_map(|l| a.label(l))
                .map(str::to_owned)
        }),
        service_id: firing
            .iter()
            .find_map(|a| a.label("service_id"))
            .map(str::to_owned),
    };

    AlertEvent {
        dedup_key,
        resolved,
        summary: truncate(&summary, 1024),
        details,
        labels: common_labels(&relevant),
        all_labels: alerts
            .iter()
            .flat_map(|a| a.labels.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect(),
        links: links(&firing, &relevant),
        severity,
        priority,
        routing,
        detected_at: alerts.iter().map(|a| a.starts_at).min().unwrap_or(now),
        resolved_at: alerts
            .iter()
            .filter(|a| !a.is_firing())
            .filter_map(|a| a.end())
            .max(),
        notes,
        stateless: false,
        members,
    }
}

fn default_summary(relevant: &[&AmAlert], n_firing: usize) -> String {
    let name = |a: &AmAlert| a.label("alertname").unwrap_or("alert").to_owned();
    match relevant {
        [] => "alert".to_owned(),
        [one] => one
            .annotation("summary")
            .map(str::to_owned)
            .unwrap_or_else(|| name(one)),
        [first, rest @ ..] => {
            let alertname = name(first);
            let mut s = if n_firing > 0 {
                format!("{alertname}: {n_firing} firing")
            } else {
                format!("{alertname}: {} resolved", relevant.len())
            };
            let common = first.annotation("summary");
            if let Some(c) = common
                && rest.iter().all(|a| a.annotation("summary") == Some(c))
            {
                s.push_str(" - ");
                s.push_str(c);
            }
            s
        }
    }
}

fn default_details(alerts: &[&AmAlert]) -> String {
    let mut out = String::new();
    let mut seen = BTreeSet::new();
    for a in alerts {
        if let Some(d) = a.annotation("description")
            && seen.insert(d)
        {
            out.push_str(d);
            out.push('\n');
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let firing = alerts.iter().filter(|a| a.is_firing()).count();
    out.push_str(&format!(
        "Alerts: {firing} firing, {} resolved\n",
        alerts.len() - firing
    ));
    for a in alerts {
        let labels: Vec<String> = a
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let state = match a.end() {
            Some(end) if !a.is_firing() => format!(
                "resolved, {} to {}",
                a.starts_at.to_rfc3339(),
                end.to_rfc3339()
            ),
            _ => format!("firing since {}", a.starts_at.to_rfc3339()),
        };
        out.push_str(&format!("- {{{}}} {state}\n", labels.join(", ")));
    }
    out
}

fn common_labels(alerts: &[&AmAlert]) -> BTreeMap<String, String> {
    let Some((first, rest)) = alerts.split_first() else {
        return BTreeMap::new();
    };
    first
        .labels
        .iter()
        .filter(|(k, v)| rest.iter().all(|a| a.labels.get(*k) == Some(v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn links(firing: &[&AmAlert], relevant: &[&AmAlert]) -> Vec<Link> {
    let mut out: Vec<Link> = Vec::new();
    let mut push = |href: &str, text: &str| {
        if !href.is_empty() && !out.iter().any(|l| l.href == href) {
            out.push(Link {
                href: href.to_owned(),
                text: text.to_owned(),
            });
        }
    };
    for a in firing {
        if let Some(url) = a.label("url") {
            push(url, a.label("urlLabel").unwrap_or(url));
        }
    }
    for a in relevant {
        if let Some(u) = a.annotation("runbook_url") {
            push(u, "Runbook");
        }
        if let Some(u) = a.annotation("dashboard_url") {
            push(u, "Dashboard");
        }
        push(&a.generator_url, "Source");
    }
    out
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}
