//! What the store takes and returns.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tocsin_domain::{AlertEvent, AlertStatus, Link, Member, Priority, Severity};

/// Where a catalog object came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "origin", rename_all = "lowercase")]
pub enum Origin {
    /// Written by provisioning a config file (`serve --config`, SIGHUP or
    /// `tocsin apply`), recorded by the file's name. Only that file changes
    /// or removes it.
    Provisioned { file: String },
    /// Created through the API.
    Managed,
}

/// One object of the catalog as stored: its spec in the shape of the
/// object in tocsin.yaml (secrets included, for the server's own use).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogObject {
    /// `users`, `escalation_policies`, … (the tocsin.yaml key).
    pub kind: String,
    pub id: String,
    pub spec: serde_json::Value,
    /// How each secret field was written in its file (`${ENV}` or a
    /// `*_file` path), by the field's path in the spec.
    pub secret_refs: BTreeMap<String, String>,
    pub origin: Origin,
    /// The catalog version of the object's last change: its ETag.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The whole catalog at one version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredCatalog {
    /// Bumped by every write that changed an object; 0 before the first.
    pub version: i64,
    /// Ordered by kind, then id.
    pub objects: Vec<CatalogObject>,
}

impl StoredCatalog {
    /// The object of `kind` with `id`.
    pub fn object(&self, kind: &str, id: &str) -> Option<&CatalogObject> {
        self.objects.iter().find(|o| o.kind == kind && o.id == id)
    }
}

/// What a catalog write expects to find, checked in its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there.
    Any,
    /// No object of this kind and id (a create).
    Absent,
    /// The object, at this revision (`If-Match`, or a plan made earlier).
    Revision(i64),
}

/// One change in a catalog write.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogWrite {
    /// Create or replace. An object whose spec, secret refs and origin are
    /// already the stored ones is left as it is (its revision unchanged).
    Put {
        kind: String,
        id: String,
        spec: serde_json::Value,
        secret_refs: BTreeMap<String, String>,
        origin: Origin,
        expect: Expect,
    },
    /// Remove (nothing to do when it is not there and `expect` is `Any`).
    Delete {
        kind: String,
        id: String,
        expect: Expect,
    },
    /// Set a source's key (`heartbeat:ID` for a heartbeat), or forget it
    /// (`None`). Always a change: every node loads the keys again.
    Key {
        source_id: String,
        key: Option<String>,
    },
}

/// What a catalog write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CatalogCommit {
    /// The catalog version after the write (unchanged when nothing changed).
    pub version: i64,
    pub created: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
}

impl CatalogCommit {
    /// Whether the write changed anything.
    pub fn changed(&self) -> bool {
        self.created + self.updated + self.removed > 0
    }
}

/// Who did something, and through which channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// `source:prometheus`, `token:ci`, `system`, …
    pub name: String,
    /// `prometheus webhook`, `api`, …
    pub channel: String,
}

impl Actor {
    pub fn new(name: impl Into<String>, channel: impl Into<String>) -> Self {
        Actor {
            name: name.into(),
            channel: channel.into(),
        }
    }
}

/// An event with its routing decided.
#[derive(Debug, Clone)]
pub struct RoutedEvent {
    pub event: AlertEvent,
    pub policy_id: String,
    pub service_id: Option<String>,
    /// How the policy was chosen (goes on the timeline of a new alert).
    pub route_note: String,
    /// When a new alert's first escalation step is due (support hours may
    /// delay it); `None`: at once.
    pub first_step_at: Option<DateTime<Utc>>,
    /// False during a maintenance window: a new alert is stored, nobody paged.
    pub page: bool,
    /// The alert's service opens an incident for it (or it joins the
    /// service's open one): `auto_incident_from`, decided by the caller.
    pub incident: Option<crate::AutoIncident>,
}

/// What ingesting one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestOutcome {
    Created,
    Updated,
    Resolved,
    Duplicate,
    Stale,
    Ignored,
}

impl IngestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestOutcome::Created => "created",
            IngestOutcome::Updated => "updated",
            IngestOutcome::Resolved => "resolved",
            IngestOutcome::Duplicate => "duplicate",
            IngestOutcome::Stale => "stale",
            IngestOutcome::Ignored => "ignored",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestResult {
    pub alert_id: Option<i64>,
    pub status: Option<AlertStatus>,
    pub outcome: IngestOutcome,
    /// The notifications that the alert's first escalation level queued,
    /// when it ran in the ingest transaction (see [`StepPlanner`]).
    #[serde(skip)]
    pub first_level: Option<usize>,
}

impl IngestResult {
    /// A new alert whose first escalation level did not run at ingest
    /// (deferred, or no planner): an escalation worker has to look.
    pub fn awaits_escalation(&self) -> bool {
        self.outcome == IngestOutcome::Created && self.first_level.is_none()
    }
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: i64,
    pub source_id: String,
    pub dedup_key: String,
    pub status: AlertStatus,
    pub severity: Severity,
    pub priority: Priority,
    pub summary: String,
    pub details: String,
    pub labels: BTreeMap<String, String>,
    pub links: Vec<Link>,
    pub members: Vec<Member>,
    pub policy_id: Option<String>,
    pub service_id: Option<String>,
    pub detected_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub seen_count: i64,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
}

/// One entry of an alert's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub id: i64,
    pub alert_id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor: String,
    pub channel: String,
    pub message: String,
}

/// Filters of the alert list. All given filters must match.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub source_id: Option<String>,
    pub service_id: Option<String>,
    pub severity: Option<Severity>,
    /// Label pairs the alert (any of its members) must carry.
    pub labels: Vec<(String, String)>,
    /// Only alerts with an id below this (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

impl AlertFilter {
    /// Whether `a` passes the filters (not the page: `before_id`, `limit`),
    /// as `list_alerts` would decide it.
    pub fn matches(&self, a: &Alert) -> bool {
        self.status.is_none_or(|s| s == a.status)
            && self.source_id.as_ref().is_none_or(|s| *s == a.source_id)
            && self
                .service_id
                .as_ref()
                .is_none_or(|s| a.service_id.as_ref() == Some(s))
            && self.severity.is_none_or(|s| s == a.severity)
            && self.labels.iter().all(|(n, v)| {
                a.labels.get(n) == Some(v) || a.members.iter().any(|m| m.labels.get(n) == Some(v))
            })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertPage {
    pub alerts: Vec<Alert>,
    /// Pass as `before_id` to get the next page; `None` on the last page.
    pub next_before_id: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Accept,
    Resolve,
    /// Back to pending; escalation restarts at level 1.
    Unaccept,
}

impl Transition {
    /// `accept`, `resolve` or `unaccept` (the audit log's action).
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Accept => "accept",
            Transition::Resolve => "resolve",
            Transition::Unaccept => "unaccept",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TransitionResult {
    /// The alert changed.
    Done(Box<Alert>),
    /// The alert was already in that state (or an accept on a resolved alert).
    Unchanged(Box<Alert>),
    /// Accepting a resolved alert is not possible.
    Conflict(Box<Alert>),
    NotFound,
}

/// An escalation step a worker has claimed (it holds the lease until
/// `claimed_until`; `claim` proves it when completing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedStep {
    pub id: i64,
    pub alert_id: i64,
    pub policy_id: String,
    pub level: i64,
    pub round: i64,
    pub due_at: DateTime<Utc>,
    pub priority: Priority,
    pub claim: String,
    /// The step was claimed before and its lease ran out (its worker died):
    /// this claim takes it over.
    pub taken_over: bool,
}

/// What a wake-up from another node (PostgreSQL `NOTIFY`) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeTopic {
    /// New escalation steps are due (alerts were created).
    Escalate,
    /// New notifications are queued.
    Dispatch,
}

/// A wake-up from another node, with when it was sent (its commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    pub topic: WakeTopic,
    pub sent_at: DateTime<Utc>,
}

/// A notification to queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewDelivery {
    pub user_id: String,
    pub contact_id: String,
    pub channel: String,
    pub address: String,
    pub due_at: DateTime<Utc>,
}

/// The next step of an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextStep {
    pub level: i64,
    pub round: i64,
    pub due_at: DateTime<Utc>,
}

/// Plans an escalation step: who is notified, what comes next (the
/// engine's escalation rules over its catalog). With one set
/// ([`crate::Store::run_first_levels`]), ingest runs the first level of
/// every new alert due at once in its own transaction: the step is written
/// done with its notifications, and no worker has to claim it.
pub trait StepPlanner: Send + Sync {
    fn plan(&self, step: &ClaimedStep, now: DateTime<Utc>) -> StepDone;
}

/// What a completed step writes, atomically with marking it done.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDone {
    pub next: Option<NextStep>,
    pub deliveries: Vec<NewDelivery>,
    pub timeline: Vec<(tocsin_domain::TimelineKind, String)>,
    pub actor: Actor,
}

/// A queued or finished notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub alert_id: i64,
    pub step_id: Option<i64>,
    pub user_id: String,
    pub contact_id: String,
    pub channel: String,
    /// Never shown: a Slack or webhook URL is a secret.
    #[serde(skip_serializing)]
    pub address: String,
    pub due_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A stored escalation step, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EscalationStep {
    pub id: i64,
    pub alert_id: i64,
    pub policy_id: String,
    pub level: i64,
    pub round: i64,
    pub due_at: DateTime<Utc>,
    pub status: String,
}

/// What one claim took for one contact: every page to send as one message.
///
/// With bundling, that is every page due for the contact (however many);
/// without, one page. The claim leases the contact (its gate row), not the
/// pages, which stay pending in storage until the result is recorded: a
/// bundle carries their bounds, counts and the few alerts its message
/// lists, so claiming a backlog of 100,000 pages writes one row and costs
/// no more memory than one of ten.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedBundle {
    pub claim: String,
    pub user_id: String,
    pub contact_id: String,
    pub channel: String,
    /// Where the message goes. May be a secret (a Slack or webhook URL):
    /// never write it to the timeline, logs or metrics.
    pub address: String,
    /// Attempts already made for these pages (the most among them).
    pub attempts: i64,
    /// The lowest page id in the bundle: the same on every retry and after
    /// a takeover, so a receiver can recognise a message sent again.
    pub first_page: i64,
    /// The bundle is the contact's pages from `first_page` to `last_page`
    /// that were pending and due at `cutoff` (the claim's time) and still
    /// are: pages that came in after the claim wait for the next message.
    pub last_page: i64,
    pub cutoff: DateTime<Utc>,
    /// Pages this bundle holds.
    pub pages: i64,
    /// Of those, pages whose earlier claim's lease ran out (its worker
    /// died): this claim takes them over.
    pub taken_over: i64,
    /// Distinct alerts those pages are about.
    pub alert_count: i64,
    /// The alerts the message lists one by one, most severe first (at most
    /// the number the claim asked for).
    pub alerts: Vec<Alert>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent {
        detail: String,
    },
    /// Try again at `next_at`.
    Retry {
        error: String,
        next_at: DateTime<Utc>,
    },
    /// Give up.
    Failed {
        error: String,
    },
}

/// A maintenance window on a source or a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MaintenanceWindow {
    pub id: i64,
    /// `source` or `service`.
    pub target_kind: String,
    pub target_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// What the status page calls it (empty: the reason, or "Maintenance").
    pub title: String,
    /// Shown on the status page (scheduled ahead: announced there and to
    /// subscribers).
    pub public: bool,
}

/// A maintenance window to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMaintenance {
    /// `source` or `service`.
    pub target_kind: String,
    pub target_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub title: String,
    pub public: bool,
}

impl MaintenanceWindow {
    /// The name the status page shows.
    pub fn display_title(&self) -> &str {
        if !self.title.is_empty() {
            &self.title
        } else if !self.reason.is_empty() {
            &self.reason
        } else {
            "Scheduled maintenance"
        }
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && self.starts_at <= now && now < self.ends_at
    }

    /// What the timeline of an alert this window held says.
    pub fn held_note(&self) -> String {
        format!(
            "in maintenance window #{} ({} `{}`, until {}): stored, nobody paged",
            self.id,
            self.target_kind,
            self.target_id,
            self.ends_at.to_rfc3339()
        )
    }
}

/// Of `windows` (the active ones), the one that covers a source or a
/// service, if any.
pub fn covering<'a>(
    windows: &'a [MaintenanceWindow],
    source: &str,
    service: Option<&str>,
) -> Option<&'a MaintenanceWindow> {
    windows.iter().find(|w| {
        (w.target_kind == "source" && w.target_id == source)
            || (w.target_kind == "service" && Some(w.target_id.as_str()) == service)
    })
}

/// A change event to record (PagerDuty change events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    pub source_id: String,
    pub service_id: Option<String>,
    pub at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub summary: String,
    /// The sender's `source` field (host, tool).
    pub origin: Option<String>,
    pub details: String,
    pub links: Vec<tocsin_domain::Link>,
}

/// A recorded change event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChangeEvent {
    pub id: i64,
    pub source_id: String,
    pub service_id: Option<String>,
    pub at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub summary: String,
    pub origin: Option<String>,
    pub details: String,
    pub links: Vec<tocsin_domain::Link>,
}

/// A heartbeat as stored (there is no row until its first ping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeartbeatRow {
    pub id: String,
    /// `healthy` or `overdue`.
    pub state: String,
    pub last_ping_at: DateTime<Utc>,
    /// When it becomes overdue without another ping.
    pub due_at: DateTime<Utc>,
    pub pings: i64,
    /// The alert raised while it is overdue.
    pub alert_id: Option<i64>,
}

impl HeartbeatRow {
    /// Overdue at `now`: marked so, or healthy but past its due time (the
    /// worker raises the alert within a second).
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == "overdue" || self.due_at <= now
    }
}

/// What a ping found before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingResult {
    /// The state before the ping: `None` for the first ping (arming).
    pub previous: Option<String>,
    /// The alert that was raised while overdue, to resolve now.
    pub overdue_alert: Option<i64>,
}

/// A heartbeat a worker has claimed because it fell due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueHeartbeat {
    pub id: String,
    pub last_ping_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub claim: String,
}

/// One change for the audit log, as the writer of the change describes it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// `user:ID`, `token:NAME`, `config:FILE`, `source:ID`, `system`.
    pub actor: String,
    /// `api`, `cli`, `slack`, `link`, `provisioning`, …
    pub channel: String,
    /// What kind of object changed: a catalog kind (`sources`, …),
    /// `alert`, `maintenance` or `token`.
    pub kind: String,
    pub object_id: String,
    /// `create`, `update`, `delete`, `accept`, `resolve`, `revoke`, …
    pub action: String,
    /// `{"field": {"before": …, "after": …}}`, secrets redacted.
    pub diff: serde_json::Value,
}

impl AuditRecord {
    pub fn new(
        actor: &Actor,
        kind: &str,
        object_id: impl Into<String>,
        action: &str,
        diff: serde_json::Value,
    ) -> Self {
        AuditRecord {
            actor: actor.name.clone(),
            channel: actor.channel.clone(),
            kind: kind.to_owned(),
            object_id: object_id.into(),
            action: action.to_owned(),
            diff,
        }
    }

    /// An alert's status changed from `before` to `after` by `action`.
    pub fn status_change(
        actor: &Actor,
        alert_id: i64,
        action: &str,
        before: AlertStatus,
        after: AlertStatus,
    ) -> Self {
        Self::new(
            actor,
            "alert",
            alert_id.to_string(),
            action,
            serde_json::json!({"status": {"before": before, "after": after}}),
        )
    }
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// Which audit entries to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub kind: Option<String>,
    pub object_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Entries older than this id (the previous page's cursor).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// One page of audit entries.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_before_id: Option<i64>,
}

/// A personal API token (never its secret: only its digest is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PersonalToken {
    pub id: String,
    pub name: String,
    pub role: tocsin_domain::Role,
    pub user: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

/// A personal token to store.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub name: String,
    pub role: tocsin_domain::Role,
    pub user: String,
    pub digest: tocsin_domain::TokenDigest,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A browser session of the web UI (never its secret: only its digest is
/// stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub id: String,
    pub user: String,
    /// How the user signed in: `password`, `oidc` or `setup`.
    pub method: String,
    pub created_at: DateTime<Utc>,
    /// Written at most once a minute.
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end, whatever the activity.
    pub expires_at: DateTime<Utc>,
    /// The client's address when it signed in.
    pub address: String,
    pub user_agent: String,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
}

/// A session to store.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub digest: tocsin_domain::TokenDigest,
    pub user: String,
    pub method: String,
    pub expires_at: DateTime<Utc>,
    pub address: String,
    pub user_agent: String,
}
