//! Ingest planning: what a batch of events does to storage, decided in Rust
//! without SQL. The backends look up the newest alert of every key the batch
//! touches, call [`plan`], and apply the plan with a fixed handful of
//! set-based statements, whatever the batch size. Events are applied in
//! order, so two events for one key in one batch behave as if sent one
//! after the other.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tocsin_domain::{
    AlertStatus, Decision, ExistingAlert, Link, Member, Priority, Severity, TimelineKind,
};

use crate::imp::member_counts;
use crate::{Actor, IngestOutcome, IngestResult, RoutedEvent};

/// One request's events.
pub(crate) struct JobRef<'a> {
    pub source_id: &'a str,
    pub actor: &'a Actor,
    pub events: &'a [RoutedEvent],
    pub now: DateTime<Utc>,
}

/// The newest stored alert of a (source, dedup key).
pub(crate) struct Newest {
    pub id: i64,
    pub status: AlertStatus,
    pub members: Vec<Member>,
    pub stored: Stored,
}

/// What a stored alert says, as far as a repeated trigger may change it.
#[derive(Clone)]
pub(crate) struct Stored {
    pub severity: Severity,
    pub priority: Priority,
    pub summary: String,
    pub details: String,
    pub links: Vec<Link>,
}

pub(crate) type Key = (String, String);

/// What an event sets on an alert.
pub(crate) struct Content {
    pub severity: Severity,
    pub priority: Priority,
    pub summary: String,
    pub details: String,
    pub labels: BTreeMap<String, String>,
    /// The members' label pairs that `labels` (the common ones) lacks, so
    /// a label filter finds a group by any member's label.
    pub extra_labels: Vec<(String, String)>,
    pub links: Vec<Link>,
}

/// The final state of one alert the batch touches.
pub(crate) struct Draft {
    pub id: i64,
    pub is_new: bool,
    pub source_id: String,
    pub dedup_key: String,
    pub status: AlertStatus,
    /// Set when the alert's content changes (always for new alerts).
    pub content: Option<Content>,
    /// The stored content of an existing alert.
    pub stored: Option<Stored>,
    pub members: Vec<Member>,
    pub policy_id: Option<String>,
    pub service_id: Option<String>,
    pub detected_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Deliveries seen in this batch (the initial count for a new alert).
    pub seen: i64,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    /// Anything to write at all.
    pub dirty: bool,
    /// When a new alert's first escalation step is due.
    pub first_step_at: Option<DateTime<Utc>>,
    /// Whether a new alert starts escalating at all.
    pub page: bool,
    /// The incident its service opens for it, or that it joins.
    pub incident: Option<crate::AutoIncident>,
}

#[derive(Serialize)]
pub(crate) struct TimelineRow {
    pub alert_id: i64,
    pub at: i64,
    pub actor: String,
    pub channel: String,
    pub kind: &'static str,
    pub message: String,
}

pub(crate) struct Plan {
    pub drafts: Vec<Draft>,
    pub timeline: Vec<TimelineRow>,
    pub results: Vec<Vec<IngestResult>>,
    /// Resolves a sender commanded (by dedup key), for the
    /// audit log; state a monitoring system reports is on the timeline only.
    pub audit: Vec<Commanded>,
}

/// A resolve a sender commanded, for the audit log.
pub(crate) struct Commanded {
    pub alert_id: i64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub before: AlertStatus,
}

impl Commanded {
    pub fn record(&self) -> crate::AuditRecord {
        crate::AuditRecord::status_change(
            &self.actor,
            self.alert_id,
            "resolve",
            self.before,
            AlertStatus::Resolved,
        )
    }
}

impl Plan {
    pub fn new_alerts(&self) -> usize {
        self.drafts.iter().filter(|d| d.is_new).count()
    }

    /// Replace the temporary ids of new alerts (-1, -2, …) by the ids the
    /// backend reserved, in order.
    pub fn assign_ids(&mut self, ids: &[i64]) {
        let real = |id: i64| {
            if id < 0 {
                usize::try_from(-id - 1)
                    .ok()
                    .and_then(|k| ids.get(k).copied())
                    .unwrap_or(id)
            } else {
                id
            }
        };
        for d in &mut self.drafts {
            d.id = real(d.id);
        }
        for t in &mut self.timeline {
            t.alert_id = real(t.alert_id);
        }
        for r in self.results.iter_mut().flatten() {
            r.alert_id = r.alert_id.map(real);
        }
        for a in &mut self.audit {
            a.alert_id = real(a.alert_id);
        }
    }
}

/// `decide` named an alert that is not the key's newest: cannot happen, as
/// it only names the alerts it was given; answered as ignored, not a panic.
fn lost(alert_id: i64) -> IngestResult {
    tracing::error!(alert_id, "ingest plan: decision named an unknown alert");
    IngestResult {
        alert_id: None,
        status: None,
        outcome: IngestOutcome::Ignored,
        first_level: None,
    }
}

/// A repeated trigger of a command-style sender (PagerDuty, Opsgenie,
/// ilert) on an open alert, as PagerDuty treats it: the alert takes the new
/// summary, details and links, but its severity and priority only rise
/// while it is open, never fall (a second trigger must not turn a HIGH
/// alert LOW mid-escalation). Returns the content and the timeline note
/// saying what changed, or `None` when nothing did (a plain repeat).
fn retrigger(current: &Stored, ev: &tocsin_domain::AlertEvent) -> Option<(Content, String)> {
    let mut changes = Vec::new();
    if ev.summary != current.summary {
        changes.push(format!(
            "summary \"{}\" → \"{}\"",
            current.summary, ev.summary
        ));
    }
    // SEV0 is the most severe: the lower one wins.
    let severity = ev.severity.min(current.severity);
    if ev.severity < current.severity {
        changes.push(format!("severity {} → {}", current.severity, ev.severity));
    } else if ev.severity > current.severity {
        changes.push(format!(
            "severity stays {} ({} sent; it does not fall while the alert is open)",
            current.severity, ev.severity
        ));
    }
    let priority = if ev.priority == Priority::High || current.priority == Priority::High {
        Priority::High
    } else {
        Priority::Low
    };
    if ev.priority != current.priority {
        if priority == ev.priority {
            changes.push(format!("priority {} → {}", current.priority, ev.priority));
        } else {
            changes.push(format!(
                "priority stays {} ({} sent; it does not fall while the alert is open)",
                current.priority, ev.priority
            ));
        }
    }
    if ev.details != current.details {
        changes.push("details changed".to_owned());
    }
    if ev.links != current.links {
        changes.push("links changed".to_owned());
    }
    if changes.is_empty() {
        return None;
    }
    let mut c = content(ev);
    c.severity = severity;
    c.priority = priority;
    Some((c, format!("triggered again: {}", changes.join("; "))))
}

impl Draft {
    /// What the alert says now: as changed in this batch, else as stored.
    fn current(&self) -> Option<Stored> {
        match &self.content {
            Some(c) => Some(Stored {
                severity: c.severity,
                priority: c.priority,
                summary: c.summary.clone(),
                details: c.details.clone(),
                links: c.links.clone(),
            }),
            None => self.stored.clone(),
        }
    }
}

fn content(ev: &tocsin_domain::AlertEvent) -> Content {
    Content {
        severity: ev.severity,
        priority: ev.priority,
        summary: ev.summary.clone(),
        details: ev.details.clone(),
        labels: ev.labels.clone(),
        extra_labels: ev
            .all_labels
            .iter()
            .filter(|(n, v)| ev.labels.get(n) != Some(v))
            .cloned()
            .collect(),
        links: ev.links.clone(),
    }
}

/// Decide every event of every job, in order.
pub(crate) fn plan(jobs: &[JobRef<'_>], mut newest: HashMap<Key, Newest>) -> Plan {
    let mut drafts: Vec<Draft> = Vec::new();
    // Key → index in `drafts` of its newest alert, once the batch touched it.
    let mut by_key: HashMap<Key, usize> = HashMap::new();
    let mut timeline = Vec::new();
    let mut audit = Vec::new();
    let mut results = Vec::with_capacity(jobs.len());
    let mut next_temp = -1;

    for job in jobs {
        let now = job.now;
        let mut job_results = Vec::with_capacity(job.events.len());
        let mut note = |alert_id: i64, kind: TimelineKind, message: String| {
            timeline.push(TimelineRow {
                alert_id,
                at: now.timestamp_millis(),
                actor: job.actor.name.clone(),
                channel: job.actor.channel.clone(),
                kind: kind.as_str(),
                message,
            });
        };
        for routed in job.events {
            let ev = &routed.event;
            let key: Key = (job.source_id.to_owned(), ev.dedup_key.as_str().to_owned());
            let idx = match by_key.get(&key) {
                Some(i) => Some(*i),
                None => newest.remove(&key).map(|n| {
                    drafts.push(Draft {
                        id: n.id,
                        is_new: false,
                        source_id: key.0.clone(),
                        dedup_key: key.1.clone(),
                        status: n.status,
                        content: None,
                        stored: Some(n.stored),
                        members: n.members,
                        policy_id: None,
                        service_id: None,
                        detected_at: now,
                        created_at: now,
                        updated_at: now,
                        last_seen_at: now,
                        seen: 0,
                        resolved_at: None,
                        resolved_by: None,
                        dirty: false,
                        first_step_at: None,
                        page: false,
                        incident: None,
                    });
                    by_key.insert(key.clone(), drafts.len() - 1);
                    drafts.len() - 1
                }),
            };
            let current = idx.map(|i| {
                let d = &drafts[i];
                (
                    d.status,
                    ExistingAlert {
                        id: d.id,
                        members: d.members.clone(),
                    },
                )
            });
            let (open, last_resolved) = match &current {
                Some((status, e)) if status.is_open() => (Some(e), None),
                Some((_, e)) => (None, Some(e)),
                None => (None, None),
            };
            let result = match tocsin_domain::decide(open, last_resolved, ev, now) {
                Decision::Create { members } => {
                    let id = next_temp;
                    next_temp -= 1;
                    let counts = member_counts(&members);
                    drafts.push(Draft {
                        id,
                        is_new: true,
                        source_id: key.0.clone(),
                        dedup_key: key.1.clone(),
                        status: AlertStatus::Pending,
                        content: Some(content(ev)),
                        stored: None,
                        members,
                        policy_id: Some(routed.policy_id.clone()),
                        service_id: routed.service_id.clone(),
                        detected_at: ev.detected_at,
                        created_at: now,
                        updated_at: now,
                        last_seen_at: now,
                        seen: 1,
                        resolved_at: None,
                        resolved_by: None,
                        dirty: true,
                        first_step_at: routed.first_step_at,
                        page: routed.page,
                        incident: routed.incident.clone(),
                    });
                    by_key.insert(key, drafts.len() - 1);
                    // One entry says what was created and where it went:
                    // ingest writes as few rows an alert as it can.
                    note(
                        id,
                        TimelineKind::Created,
                        format!(
                            "created: {} ({}, {} priority; {counts}); {}",
                            ev.summary, ev.severity, ev.priority, routed.route_note
                        ),
                    );
                    for n in &ev.notes {
                        note(id, TimelineKind::Note, n.clone());
                    }
                    IngestResult {
                        alert_id: Some(id),
                        status: Some(AlertStatus::Pending),
                        outcome: IngestOutcome::Created,
                        first_level: None,
                    }
                }
                Decision::Update {
                    alert_id,
                    merge,
                    resolve_at,
                } => {
                    let Some(i) = idx.filter(|i| drafts[*i].id == alert_id) else {
                        job_results.push(lost(alert_id));
                        continue;
                    };
                    let d = &mut drafts[i];
                    let before = d.status;
                    d.members = merge.members;
                    if !ev.stateless {
                        d.content = Some(content(ev));
                    } else if !ev.resolved
                        && let Some((c, what)) = d.current().and_then(|cur| retrigger(&cur, ev))
                    {
                        d.content = Some(c);
                        note(alert_id, TimelineKind::Updated, what);
                    }
                    // A command-style resolve (PagerDuty, …) carries no
                    // content: the alert keeps what it had.
                    d.updated_at = now;
                    d.last_seen_at = now;
                    d.seen += 1;
                    d.dirty = true;
                    if d.content.is_some() && routed.incident.is_some() {
                        d.incident = routed.incident.clone();
                    }
                    if let Some(at) = resolve_at {
                        d.status = AlertStatus::Resolved;
                        d.resolved_at = Some(at);
                        d.resolved_by = Some(job.actor.name.clone());
                        if ev.stateless {
                            audit.push(Commanded {
                                alert_id,
                                at: now,
                                actor: job.actor.clone(),
                                before,
                            });
                        }
                        note(
                            alert_id,
                            TimelineKind::Resolved,
                            format!(
                                "resolved by the source: every alert has resolved (latest end {})",
                                at.to_rfc3339()
                            ),
                        );
                    } else if merge.state_changed {
                        note(
                            alert_id,
                            TimelineKind::Updated,
                            format!("updated: {}", member_counts(&d.members)),
                        );
                    }
                    IngestResult {
                        alert_id: Some(alert_id),
                        status: Some(d.status),
                        outcome: if resolve_at.is_some() {
                            IngestOutcome::Resolved
                        } else {
                            IngestOutcome::Updated
                        },
                        first_level: None,
                    }
                }
                Decision::Duplicate { alert_id } => {
                    let Some(i) = idx.filter(|i| drafts[*i].id == alert_id) else {
                        job_results.push(lost(alert_id));
                        continue;
                    };
                    let d = &mut drafts[i];
                    d.last_seen_at = now;
                    d.seen += 1;
                    d.dirty = true;
                    // A repeated command-style trigger on an open alert
                    // may still change what it says.
                    let changed = (ev.stateless && !ev.resolved && d.status.is_open())
                        .then(|| d.current().and_then(|cur| retrigger(&cur, ev)))
                        .flatten();
                    let outcome = match changed {
                        Some((c, what)) => {
                            d.content = Some(c);
                            d.updated_at = now;
                            if routed.incident.is_some() {
                                d.incident = routed.incident.clone();
                            }
                            note(alert_id, TimelineKind::Updated, what);
                            IngestOutcome::Updated
                        }
                        None => IngestOutcome::Duplicate,
                    };
                    IngestResult {
                        alert_id: Some(alert_id),
                        status: Some(d.status),
                        outcome,
                        first_level: None,
                    }
                }
                Decision::Stale { alert_id } => {
                    if let Some(id) = alert_id {
                        note(
                            id,
                            TimelineKind::Ignored,
                            "ignored a late notification: it is older than the state already recorded"
                                .to_owned(),
                        );
                    }
                    IngestResult {
                        alert_id,
                        status: current.as_ref().map(|(s, _)| *s),
                        outcome: IngestOutcome::Stale,
                        first_level: None,
                    }
                }
                Decision::UnknownResolve => IngestResult {
                    alert_id: None,
                    status: None,
                    outcome: IngestOutcome::Ignored,
                    first_level: None,
                },
            };
            job_results.push(result);
        }
        results.push(job_results);
    }
    drafts.retain(|d| d.dirty);
    Plan {
        drafts,
        timeline,
        results,
        audit,
    }
}
