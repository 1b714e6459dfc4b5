//! The SQL of incidents and of the state history the status page reads.
//!
//! An incident's services are rows of `incident_services`; the one marked
//! `current` for a service is the incident that service's new alerts join
//! (a unique index allows one per service, which is what keeps two nodes,
//! or a redelivery, from opening a second one). Every change writes an
//! event on the incident's timeline, closes or opens the affected spans of
//! `service_impacts` (the uptime history), bumps `status_state.version`
//! (every node's cached status page) and, for a person's change, appends
//! its audit entry, all in the change's transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tocsin_domain::Severity;
use tocsin_domain::incident::{Impact, ImpactSpan, IncidentStatus};

use crate::audit::record;
use crate::db::{Backend, Conn, DbError, Row, Tx, args};
use crate::dialect::Dialect;
use crate::imp::{enc, in_ids, ms};
use crate::{Actor, AuditRecord, StoreError};

/// A service an incident affects, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IncidentService {
    /// The service's id.
    pub id: String,
    pub impact: Impact,
}

/// A stored incident.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Incident {
    pub id: i64,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub opened_at: DateTime<Utc>,
    /// `user:ID`, `token:NAME`, or `source:ID` for one an alert opened.
    pub opened_by: String,
    /// Opened by an alert (`auto_incident_from`).
    pub auto_opened: bool,
    /// A person posted an update: it no longer resolves by itself.
    pub held: bool,
    pub responders: Vec<String>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub services: Vec<IncidentService>,
    pub alert_ids: Vec<i64>,
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IncidentEvent {
    pub id: i64,
    pub incident_id: i64,
    pub at: DateTime<Utc>,
    /// `opened`, `update`, `linked`, `unlinked`, `severity`, `impact`,
    /// `services`, `title`, `responders` or `resolved`.
    pub kind: String,
    /// The incident's status after this entry.
    pub status: IncidentStatus,
    pub message: String,
    /// Shown on the status page, in the feed, and told to subscribers.
    pub public: bool,
    pub actor: String,
    pub channel: String,
}

impl IncidentEvent {
    /// What people said, as opposed to what changed: the updates the API
    /// lists, the status page shows (when public) and subscribers are told.
    pub fn is_update(&self) -> bool {
        matches!(self.kind.as_str(), "opened" | "update" | "resolved")
    }
}

/// An incident to open.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIncident {
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub services: Vec<IncidentService>,
    pub responders: Vec<String>,
    /// The first update.
    pub message: String,
    pub public: bool,
    pub alert_ids: Vec<i64>,
}

/// An update a person posts.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentNote {
    pub message: String,
    pub public: bool,
    /// The new status; `None` keeps it. `resolved` resolves the incident.
    pub status: Option<IncidentStatus>,
}

/// A change of an incident's fields; `None` keeps one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentChange {
    pub title: Option<String>,
    pub severity: Option<Severity>,
    pub services: Option<Vec<IncidentService>>,
    pub responders: Option<Vec<String>>,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentFilter {
    /// `Some(true)`: open only; `Some(false)`: resolved only.
    pub open: Option<bool>,
    pub service: Option<String>,
    /// Incidents with a smaller id (paging on, newest first).
    pub before: Option<i64>,
    pub limit: u32,
}

/// What an alert's service does with it, decided by the application: the
/// alert opens (or joins) the service's incident with this impact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoIncident {
    pub service_id: String,
    pub impact: Impact,
    /// The title should the alert open one.
    pub title: String,
    /// The public first update should it open one.
    pub message: String,
}

/// A public entry of the status page's feed, with its incident's title.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicEvent {
    pub event: IncidentEvent,
    pub title: String,
    pub services: Vec<String>,
}

/// A span of a service's state history.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpan {
    pub service_id: String,
    pub incident_id: i64,
    pub span: ImpactSpan,
}

const INCIDENT_COLUMNS: &str = "id, title, severity, status, opened_at, opened_by, auto_opened, held, responders, updated_at, resolved_at, resolved_by";
pub(crate) const EVENT_COLUMNS: &str =
    "id, incident_id, at, kind, status, message, public, actor, channel";

fn incident_row(r: &Row) -> Result<Incident, DbError> {
    Ok(Incident {
        id: r.get("id")?,
        title: r.get("title")?,
        severity: r.parse("severity")?,
        status: r.parse("status")?,
        opened_at: r.time("opened_at")?,
        opened_by: r.get("opened_by")?,
        auto_opened: r.get::<i64>("auto_opened")? != 0,
        held: r.get::<i64>("held")? != 0,
        responders: r.json("responders")?,
        updated_at: r.time("updated_at")?,
        resolved_at: r.time_opt("resolved_at")?,
        resolved_by: r.get("resolved_by")?,
        services: Vec::new(),
        alert_ids: Vec::new(),
    })
}

pub(crate) fn event_row(r: &Row) -> Result<IncidentEvent, DbError> {
    Ok(IncidentEvent {
        id: r.get("id")?,
        incident_id: r.get("incident_id")?,
        at: r.time("at")?,
        kind: r.get("kind")?,
        status: r.parse("status")?,
        message: r.get("message")?,
        public: r.get::<i64>("public")? != 0,
        actor: r.get("actor")?,
        channel: r.get("channel")?,
    })
}

/// Fill in the services and linked alerts of `incidents`.
async fn fill(d: &Dialect, c: &mut impl Conn, incidents: &mut [Incident]) -> Result<(), DbError> {
    fill_some(d, c, incidents, true).await
}

/// Fill in the services of `incidents`, and their linked alerts when
/// `alerts` (the status page needs none: a storm's incident links
/// thousands).
async fn fill_some(
    d: &Dialect,
    c: &mut impl Conn,
    incidents: &mut [Incident],
    alerts: bool,
) -> Result<(), DbError> {
    if incidents.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = incidents.iter().map(|i| i.id).collect();
    let mut services: HashMap<i64, Vec<IncidentService>> = HashMap::new();
    for r in c
        .fetch(
            &format!("SELECT incident_id, service_id, impact FROM incident_services WHERE incident_id IN ({}) ORDER BY incident_id, service_id", in_ids(d, "$1")),
            args![enc(&ids)?],
        )
        .await?
    {
        services
            .entry(r.get("incident_id")?)
            .or_default()
            .push(IncidentService {
                id: r.get("service_id")?,
                impact: r.parse("impact")?,
            });
    }
    let mut linked: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in if !alerts {
        Vec::new()
    } else {
        c.fetch(
            &format!("SELECT incident_id, alert_id FROM incident_alerts WHERE incident_id IN ({}) ORDER BY incident_id, alert_id", in_ids(d, "$1")),
            args![enc(&ids)?],
        )
        .await?
    } {
        linked
            .entry(r.get("incident_id")?)
            .or_default()
            .push(r.get("alert_id")?);
    }
    for i in incidents {
        i.services = services.remove(&i.id).unwrap_or_default();
        i.alert_ids = linked.remove(&i.id).unwrap_or_default();
    }
    Ok(())
}

async fn load(d: &Dialect, c: &mut impl Conn, id: i64) -> Result<Option<Incident>, DbError> {
    read_one(c, d, id, "").await
}

/// Lock an incident for a change (PostgreSQL; SQLite has one writer).
async fn lock(d: &Dialect, tx: &mut impl Conn, id: i64) -> Result<Option<Incident>, DbError> {
    read_one(tx, d, id, d.for_update).await
}

/// One incident with its services and links; `suffix` may lock it.
async fn read_one(
    c: &mut impl Conn,
    d: &Dialect,
    id: i64,
    suffix: &str,
) -> Result<Option<Incident>, DbError> {
    let Some(row) = c
        .fetch_optional(
            &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1{suffix}"),
            args![id],
        )
        .await?
    else {
        return Ok(None);
    };
    let mut one = [incident_row(&row)?];
    fill(d, c, &mut one).await?;
    let [i] = one;
    Ok(Some(i))
}

/// Lock an incident that must still be open; `Conflict` once resolved.
async fn lock_open(
    d: &Dialect,
    tx: &mut impl Conn,
    id: i64,
) -> Result<Option<Incident>, StoreError> {
    match lock(d, tx, id).await? {
        Some(i) if !i.status.is_open() => Err(resolved_already(&i)),
        other => Ok(other),
    }
}

/// One timeline entry; an update is marked for the status worker to tell
/// subscribers and announcement channels.
#[allow(clippy::too_many_arguments)]
async fn event(
    tx: &mut impl Conn,
    incident_id: i64,
    now: DateTime<Utc>,
    kind: &str,
    status: IncidentStatus,
    message: &str,
    public: bool,
    actor: &Actor,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO incident_events (incident_id, at, kind, status, message, public, actor, channel, fanout) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![
            incident_id,
            ms(now),
            kind,
            status.as_str(),
            message,
            i64::from(public),
            &actor.name,
            &actor.channel,
            // What was said goes to subscribers (when public) and to the
            // services' announcement channels.
            i64::from(matches!(kind, "opened" | "update" | "resolved"))
        ],
    )
    .await?;
    Ok(())
}

/// Every node's cached status page is stale from now on.
pub(crate) async fn bump(tx: &mut impl Conn, now: DateTime<Utc>) -> Result<(), DbError> {
    tx.execute(
        "UPDATE status_state SET version = version + 1, changed_at = $1 WHERE id = 1",
        args![ms(now)],
    )
    .await?;
    Ok(())
}

/// Close the service's span of this incident and, with an impact, open
/// the next one.
async fn set_impact(
    tx: &mut impl Conn,
    incident_id: i64,
    service_id: &str,
    impact: Option<Impact>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE service_impacts SET to_at = $1 WHERE incident_id = $2 AND service_id = $3 AND to_at IS NULL",
        args![ms(now), incident_id, service_id],
    )
    .await?;
    if let Some(i) = impact {
        tx.execute(
            "INSERT INTO service_impacts (service_id, incident_id, impact, from_at) VALUES ($1, $2, $3, $4)",
            args![service_id, incident_id, i.as_str(), ms(now)],
        )
        .await?;
    }
    Ok(())
}

/// Add a service to an incident; it becomes the service's current
/// incident when the service has none.
async fn add_service(
    tx: &mut impl Conn,
    incident_id: i64,
    s: &IncidentService,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO incident_services (incident_id, service_id, impact, current) VALUES ($1, $2, $3, CASE WHEN EXISTS (SELECT 1 FROM incident_services WHERE service_id = $2 AND current = 1) THEN 0 ELSE 1 END)",
        args![incident_id, &s.id, s.impact.as_str()],
    )
    .await?;
    set_impact(tx, incident_id, &s.id, Some(s.impact), now).await
}

/// Take a service off an incident; another open incident of the service,
/// the oldest, becomes its current one.
async fn drop_service(
    tx: &mut impl Conn,
    incident_id: i64,
    service_id: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.execute(
        "DELETE FROM incident_services WHERE incident_id = $1 AND service_id = $2",
        args![incident_id, service_id],
    )
    .await?;
    set_impact(tx, incident_id, service_id, None, now).await?;
    promote(tx, service_id).await
}

/// Make the oldest open incident of a service its current one, if it has
/// none.
async fn promote(tx: &mut impl Conn, service_id: &str) -> Result<(), DbError> {
    tx.execute(
        "UPDATE incident_services SET current = 1 WHERE service_id = $1 AND NOT EXISTS (SELECT 1 FROM incident_services c WHERE c.service_id = $1 AND c.current = 1) AND incident_id = (SELECT MIN(s.incident_id) FROM incident_services s JOIN incidents i ON i.id = s.incident_id WHERE s.service_id = $1 AND i.status <> 'resolved')",
        args![service_id],
    )
    .await?;
    Ok(())
}

/// Link an alert (if it exists); `false` when it was linked already.
async fn link(
    tx: &mut impl Conn,
    incident_id: i64,
    alert_id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            "INSERT INTO incident_alerts (incident_id, alert_id, linked_at, linked_by) VALUES ($1, $2, $3, $4) ON CONFLICT (incident_id, alert_id) DO NOTHING",
            args![incident_id, alert_id, ms(now), &actor.name],
        )
        .await?;
    Ok(n > 0)
}

async fn alert_brief(tx: &mut impl Conn, alert_id: i64) -> Result<Option<String>, DbError> {
    let row = tx
        .fetch_optional(
            "SELECT severity, summary FROM alerts WHERE id = $1",
            args![alert_id],
        )
        .await?;
    row.map(|r| {
        Ok(format!(
            "#{alert_id} {}: {}",
            r.get::<String>("severity")?,
            r.get::<String>("summary")?
        ))
    })
    .transpose()
}

fn not_found(id: i64) -> StoreError {
    StoreError::Conflict {
        kind: "incident".into(),
        id: id.to_string(),
        current: None,
        message: format!("there is no incident {id}"),
    }
}

fn resolved_already(i: &Incident) -> StoreError {
    StoreError::Conflict {
        kind: "incident".into(),
        id: i.id.to_string(),
        current: Some(i.id),
        message: format!(
            "incident {} was resolved at {} by {}; open a new incident instead",
            i.id,
            i.resolved_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            i.resolved_by.as_deref().unwrap_or("?")
        ),
    }
}

fn audit(actor: &Actor, id: i64, action: &str, diff: serde_json::Value) -> AuditRecord {
    AuditRecord::new(actor, "incident", id.to_string(), action, diff)
}

/// Open an incident by hand.
pub(crate) async fn open<B: Backend>(
    b: &B,
    new: &NewIncident,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Incident, StoreError> {
    let d = B::SQL;
    let mut tx = b.begin().await?;
    let id: i64 = tx
        .fetch_one(
            "INSERT INTO incidents (title, severity, status, opened_at, opened_by, auto_opened, held, responders, updated_at) VALUES ($1, $2, $3, $4, $5, 0, 1, $6, $4) RETURNING id",
            args![
                &new.title,
                new.severity.as_str(),
                new.status.as_str(),
                ms(now),
                &actor.name,
                enc(&new.responders)?
            ],
        )
        .await?
        .get("id")?;
    for s in &new.services {
        add_service(&mut tx, id, s, now).await?;
    }
    event(
        &mut tx,
        id,
        now,
        "opened",
        new.status,
        &new.message,
        new.public,
        actor,
    )
    .await?;
    let mut linked = Vec::new();
    for a in &new.alert_ids {
        let Some(brief) = alert_brief(&mut tx, *a).await? else {
            return Err(StoreError::Conflict {
                kind: "alert".into(),
                id: a.to_string(),
                current: None,
                message: format!("there is no alert {a} to link"),
            });
        };
        if link(&mut tx, id, *a, actor, now).await? {
            event(
                &mut tx,
                id,
                now,
                "linked",
                new.status,
                &format!("linked alert {brief}"),
                false,
                actor,
            )
            .await?;
            linked.push(*a);
        }
    }
    bump(&mut tx, now).await?;
    let diff = serde_json::json!({
        "title": {"after": new.title},
        "severity": {"after": new.severity},
        "status": {"after": new.status},
        "services": {"after": new.services},
        "responders": {"after": new.responders},
        "alerts": {"after": linked},
    });
    record(&mut tx, &audit(actor, id, "open", diff), now).await?;
    let out = load(d, &mut tx, id).await?.ok_or_else(|| not_found(id))?;
    tx.commit().await?;
    Ok(out)
}

/// Post an update; a person's update holds the incident open until a
/// person resolves it.
pub(crate) async fn post_update<B: Backend>(
    b: &B,
    id: i64,
    note: &IncidentNote,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<Incident>, StoreError> {
    let d = B::SQL;
    let mut tx = b.begin().await?;
    let Some(before) = lock_open(d, &mut tx, id).await? else {
        return Ok(None);
    };
    let status = note.status.unwrap_or(before.status);
    if status == IncidentStatus::Resolved {
        resolve_locked(&mut tx, &before, &note.message, note.public, actor, now).await?;
    } else {
        tx.execute(
            "UPDATE incidents SET status = $1, held = 1, updated_at = $2 WHERE id = $3",
            args![status.as_str(), ms(now), id],
        )
        .await?;
        event(
            &mut tx,
            id,
            now,
            "update",
            status,
            &note.message,
            note.public,
            actor,
        )
        .await?;
        bump(&mut tx, now).await?;
    }
    let diff = serde_json::json!({
        "status": {"before": before.status, "after": status},
        "message": {"after": note.message},
        "public": {"after": note.public},
    });
    record(&mut tx, &audit(actor, id, "update", diff), now).await?;
    let out = load(d, &mut tx, id).await?;
    tx.commit().await?;
    Ok(out)
}

/// Resolve an incident that is locked and open.
async fn resolve_locked(
    tx: &mut impl Conn,
    i: &Incident,
    message: &str,
    public: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE incidents SET status = 'resolved', resolved_at = $1, resolved_by = $2, updated_at = $1 WHERE id = $3",
        args![ms(now), &actor.name, i.id],
    )
    .await?;
    tx.execute(
        "UPDATE incident_services SET current = 0 WHERE incident_id = $1",
        args![i.id],
    )
    .await?;
    tx.execute(
        "UPDATE service_impacts SET to_at = $1 WHERE incident_id = $2 AND to_at IS NULL",
        args![ms(now), i.id],
    )
    .await?;
    for s in &i.services {
        promote(tx, &s.id).await?;
    }
    event(
        tx,
        i.id,
        now,
        "resolved",
        IncidentStatus::Resolved,
        message,
        public,
        actor,
    )
    .await?;
    bump(tx, now).await
}

/// Resolve by hand. `None`: no such incident.
pub(crate) async fn resolve<B: Backend>(
    b: &B,
    id: i64,
    message: &str,
    public: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<Incident>, StoreError> {
    let d = B::SQL;
    let mut tx = b.begin().await?;
    let Some(before) = lock_open(d, &mut tx, id).await? else {
        return Ok(None);
    };
    resolve_locked(&mut tx, &before, message, public, actor, now).await?;
    let diff = serde_json::json!({
        "status": {"before": before.status, "after": IncidentStatus::Resolved},
        "message": {"after": message},
    });
    record(&mut tx, &audit(actor, id, "resolve", diff), now).await?;
    let out = load(d, &mut tx, id).await?;
    tx.commit().await?;
    Ok(out)
}

/// Change title, severity, services (with their impacts) or responders.
pub(crate) async fn change<B: Backend>(
    b: &B,
    id: i64,
    ch: &IncidentChange,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<Incident>, StoreError> {
    let d = B::SQL;
    let mut tx = b.begin().await?;
    let Some(before) = lock_open(d, &mut tx, id).await? else {
        return Ok(None);
    };
    let mut diff = serde_json::Map::new();
    let st = before.status;
    if let Some(t) = ch.title.as_ref().filter(|t| **t != before.title) {
        tx.execute(
            "UPDATE incidents SET title = $1 WHERE id = $2",
            args![t, id],
        )
        .await?;
        event(
            &mut tx,
            id,
            now,
            "title",
            st,
            &format!("title: {t}"),
            false,
            actor,
        )
        .await?;
        diff.insert(
            "title".into(),
            serde_json::json!({"before": before.title, "after": t}),
        );
    }
    if let Some(s) = ch.severity.filter(|s| *s != before.severity) {
        tx.execute(
            "UPDATE incidents SET severity = $1 WHERE id = $2",
            args![s.as_str(), id],
        )
        .await?;
        event(
            &mut tx,
            id,
            now,
            "severity",
            st,
            &format!("severity {} → {s}", before.severity),
            false,
            actor,
        )
        .await?;
        diff.insert(
            "severity".into(),
            serde_json::json!({"before": before.severity, "after": s}),
        );
    }
    if let Some(r) = ch.responders.as_ref().filter(|r| **r != before.responders) {
        tx.execute(
            "UPDATE incidents SET responders = $1 WHERE id = $2",
            args![enc(r)?, id],
        )
        .await?;
        event(
            &mut tx,
            id,
            now,
            "responders",
            st,
            &format!("responders: {}", r.join(", ")),
            false,
            actor,
        )
        .await?;
        diff.insert(
            "responders".into(),
            serde_json::json!({"before": before.responders, "after": r}),
        );
    }
    if let Some(services) = &ch.services {
        let was: BTreeMap<&str, Impact> = before
            .services
            .iter()
            .map(|s| (s.id.as_str(), s.impact))
            .collect();
        let now_: BTreeMap<&str, Impact> =
            services.iter().map(|s| (s.id.as_str(), s.impact)).collect();
        let mut notes = Vec::new();
        for (sid, _) in was.iter().filter(|(s, _)| !now_.contains_key(*s)) {
            drop_service(&mut tx, id, sid, now).await?;
            notes.push(format!("{sid} no longer affected"));
        }
        for s in services {
            match was.get(s.id.as_str()) {
                None => {
                    add_service(&mut tx, id, s, now).await?;
                    notes.push(format!("{}: {}", s.id, s.impact));
                }
                Some(old) if *old != s.impact => {
                    tx.execute(
                        "UPDATE incident_services SET impact = $1 WHERE incident_id = $2 AND service_id = $3",
                        args![s.impact.as_str(), id, &s.id],
                    )
                    .await?;
                    set_impact(&mut tx, id, &s.id, Some(s.impact), now).await?;
                    notes.push(format!("{}: {old} → {}", s.id, s.impact));
                }
                Some(_) => {}
            }
        }
        if !notes.is_empty() {
            event(
                &mut tx,
                id,
                now,
                "impact",
                st,
                &format!("impact: {}", notes.join("; ")),
                false,
                actor,
            )
            .await?;
            diff.insert(
                "services".into(),
                serde_json::json!({"before": before.services, "after": services}),
            );
        }
    }
    if !diff.is_empty() {
        tx.execute(
            "UPDATE incidents SET updated_at = $1 WHERE id = $2",
            args![ms(now), id],
        )
        .await?;
        bump(&mut tx, now).await?;
        record(
            &mut tx,
            &audit(actor, id, "change", serde_json::Value::Object(diff)),
            now,
        )
        .await?;
    }
    let out = load(d, &mut tx, id).await?;
    tx.commit().await?;
    Ok(out)
}

/// Link (`true`) or unlink an alert by hand. `None`: no such incident.
pub(crate) async fn set_link<B: Backend>(
    b: &B,
    id: i64,
    alert_id: i64,
    linked: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<Incident>, StoreError> {
    let d = B::SQL;
    let mut tx = b.begin().await?;
    let Some(before) = lock(d, &mut tx, id).await? else {
        return Ok(None);
    };
    if linked && !before.status.is_open() {
        return Err(resolved_already(&before));
    }
    let brief = alert_brief(&mut tx, alert_id)
        .await?
        .unwrap_or_else(|| format!("#{alert_id}"));
    let changed = if linked {
        if !before.alert_ids.contains(&alert_id) && alert_brief(&mut tx, alert_id).await?.is_none()
        {
            return Err(StoreError::Conflict {
                kind: "alert".into(),
                id: alert_id.to_string(),
                current: None,
                message: format!("there is no alert {alert_id} to link"),
            });
        }
        link(&mut tx, id, alert_id, actor, now).await?
    } else {
        tx.execute(
            "DELETE FROM incident_alerts WHERE incident_id = $1 AND alert_id = $2",
            args![id, alert_id],
        )
        .await?
            > 0
    };
    if changed {
        let (kind, text) = if linked {
            ("linked", format!("linked alert {brief}"))
        } else {
            ("unlinked", format!("unlinked alert {brief}"))
        };
        event(&mut tx, id, now, kind, before.status, &text, false, actor).await?;
        tx.execute(
            "UPDATE incidents SET updated_at = $1 WHERE id = $2",
            args![ms(now), id],
        )
        .await?;
        let diff = if linked {
            serde_json::json!({"alerts": {"after": alert_id}})
        } else {
            serde_json::json!({"alerts": {"before": alert_id}})
        };
        record(
            &mut tx,
            &audit(actor, id, if linked { "link" } else { "unlink" }, diff),
            now,
        )
        .await?;
    }
    let out = load(d, &mut tx, id).await?;
    tx.commit().await?;
    Ok(out)
}

/// One new or changed alert of an ingest batch that its service turns
/// into an incident.
pub(crate) struct AutoAlert<'a> {
    pub alert_id: i64,
    pub is_new: bool,
    pub source_id: &'a str,
    pub severity: Severity,
    pub summary: &'a str,
    pub auto: &'a AutoIncident,
}

/// Inside an ingest transaction: each alert joins its service's current
/// incident, or opens one. An alert already linked to an incident (a
/// change of an old alert) is left where it is. Only the person-free path:
/// a held incident keeps its severity and impact.
pub(crate) async fn auto_link(
    d: &Dialect,
    tx: &mut impl Conn,
    alerts: &[AutoAlert<'_>],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    if alerts.is_empty() {
        return Ok(());
    }
    // Old alerts that changed join only if no incident has them yet.
    let old: Vec<i64> = alerts
        .iter()
        .filter(|a| !a.is_new)
        .map(|a| a.alert_id)
        .collect();
    let mut taken = BTreeSet::new();
    if !old.is_empty() {
        for r in tx
            .fetch(
                &format!(
                    "SELECT DISTINCT alert_id FROM incident_alerts WHERE alert_id IN ({})",
                    in_ids(d, "$1")
                ),
                args![enc(&old)?],
            )
            .await?
        {
            taken.insert(r.get::<i64>("alert_id")?);
        }
    }
    let mut by_service: BTreeMap<&str, Vec<&AutoAlert<'_>>> = BTreeMap::new();
    for a in alerts.iter().filter(|a| !taken.contains(&a.alert_id)) {
        by_service
            .entry(a.auto.service_id.as_str())
            .or_default()
            .push(a);
    }
    if by_service.is_empty() {
        return Ok(());
    }
    // The status page shows openings and impacts, not links: only those
    // move its version.
    let mut shown = false;
    for (service, group) in by_service {
        // The incident is opened (and joined) in the name of the source
        // of the batch's first alert for the service.
        let actor = &Actor::new(
            format!("source:{}", group[0].source_id),
            "auto_incident_from",
        );
        let worst_impact = group
            .iter()
            .map(|a| a.auto.impact)
            .max()
            .unwrap_or(Impact::Degraded);
        let worst_sev = group
            .iter()
            .map(|a| a.severity)
            .min()
            .unwrap_or(Severity::Sev4);
        let current = tx
            .fetch_optional(
                &format!("SELECT i.id, i.severity, i.status, i.held, s.impact FROM incident_services s JOIN incidents i ON i.id = s.incident_id WHERE s.service_id = $1 AND s.current = 1{}", d.for_update),
                args![service],
            )
            .await?;
        let incident_id = match current {
            None => {
                shown = true;
                let first = group[0];
                let id: i64 = tx
                    .fetch_one(
                        "INSERT INTO incidents (title, severity, status, opened_at, opened_by, auto_opened, held, responders, updated_at) VALUES ($1, $2, 'investigating', $3, $4, 1, 0, '[]', $3) RETURNING id",
                        args![&first.auto.title, worst_sev.as_str(), ms(now), &actor.name],
                    )
                    .await?
                    .get("id")?;
                tx.execute(
                    "INSERT INTO incident_services (incident_id, service_id, impact, current) VALUES ($1, $2, $3, 1)",
                    args![id, service, worst_impact.as_str()],
                )
                .await?;
                set_impact(tx, id, service, Some(worst_impact), now).await?;
                event(
                    tx,
                    id,
                    now,
                    "opened",
                    IncidentStatus::Investigating,
                    &first.auto.message,
                    true,
                    actor,
                )
                .await?;
                let diff = serde_json::json!({
                    "title": {"after": first.auto.title},
                    "severity": {"after": worst_sev},
                    "services": {"after": [{"id": service, "impact": worst_impact}]},
                    "opened_by_alert": {"after": first.alert_id},
                });
                record(tx, &audit(actor, id, "open", diff), now).await?;
                id
            }
            Some(r) => {
                let id: i64 = r.get("id")?;
                let held = r.get::<i64>("held")? != 0;
                let status: IncidentStatus = r.parse("status")?;
                let severity: Severity = r.parse("severity")?;
                let impact: Impact = r.parse("impact")?;
                if !held && worst_sev < severity {
                    shown = true;
                    tx.execute(
                        "UPDATE incidents SET severity = $1 WHERE id = $2",
                        args![worst_sev.as_str(), id],
                    )
                    .await?;
                    event(
                        tx,
                        id,
                        now,
                        "severity",
                        status,
                        &format!("severity {severity} → {worst_sev} (a linked alert)"),
                        false,
                        actor,
                    )
                    .await?;
                }
                if !held && worst_impact > impact {
                    shown = true;
                    tx.execute(
                        "UPDATE incident_services SET impact = $1 WHERE incident_id = $2 AND service_id = $3",
                        args![worst_impact.as_str(), id, service],
                    )
                    .await?;
                    set_impact(tx, id, service, Some(worst_impact), now).await?;
                    event(
                        tx,
                        id,
                        now,
                        "impact",
                        status,
                        &format!("impact: {service}: {impact} → {worst_impact} (a linked alert)"),
                        false,
                        actor,
                    )
                    .await?;
                }
                id
            }
        };
        let rows: Vec<Vec<crate::db::Value>> = group
            .iter()
            .map(|a| args![incident_id, a.alert_id, ms(now), &actor.name])
            .collect();
        crate::imp::bulk(tx, &d.insert_incident_alerts, rows).await?;
        // The audit log has the links too, one entry a batch.
        let ids: Vec<i64> = group.iter().take(100).map(|a| a.alert_id).collect();
        let diff = serde_json::json!({"alerts": {"after": ids}, "linked": {"after": group.len()}});
        record(tx, &audit(actor, incident_id, "link", diff), now).await?;
        // One entry for the batch: a storm is one line, not thousands.
        let mut listed: Vec<String> = group
            .iter()
            .take(5)
            .map(|a| format!("#{} {}: {}", a.alert_id, a.severity, a.summary))
            .collect();
        if group.len() > 5 {
            listed.push(format!("and {} more", group.len() - 5));
        }
        let text = if group.len() == 1 {
            format!("linked alert {}", listed[0])
        } else {
            format!("linked {} alerts: {}", group.len(), listed.join("; "))
        };
        let status = IncidentStatus::Investigating;
        event(tx, incident_id, now, "linked", status, &text, false, actor).await?;
        tx.execute(
            "UPDATE incidents SET updated_at = $1 WHERE id = $2",
            args![ms(now), incident_id],
        )
        .await?;
    }
    if shown {
        bump(tx, now).await?;
    }
    Ok(())
}

/// Open incidents that no person holds whose linked alerts are all
/// resolved (or gone), oldest first.
pub(crate) async fn resolvable<B: Backend>(b: &B, limit: u32) -> Result<Vec<i64>, StoreError> {
    let rows = b
        .reader()
        .await?
        .fetch(
            &format!("SELECT i.id FROM incidents i WHERE i.status <> 'resolved' AND i.held = 0 AND {ALL_RESOLVED} ORDER BY i.id LIMIT $1"),
            args![i64::from(limit)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.get("id"))
        .collect::<Result<Vec<i64>, _>>()?)
}

const ALL_RESOLVED: &str = "EXISTS (SELECT 1 FROM incident_alerts l WHERE l.incident_id = i.id) AND NOT EXISTS (SELECT 1 FROM incident_alerts l JOIN alerts a ON a.id = l.alert_id WHERE l.incident_id = i.id AND a.status <> 'resolved')";

/// Resolve an incident whose linked alerts are all resolved, unless a
/// person took it over meanwhile. `false`: nothing to do (another node
/// did it, or it no longer qualifies).
pub(crate) async fn auto_resolve<B: Backend>(
    b: &B,
    id: i64,
    message: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let d = B::SQL;
    let mut tx = b.begin().await?;
    let Some(i) = lock(d, &mut tx, id).await? else {
        return Ok(false);
    };
    if !i.status.is_open() || i.held {
        return Ok(false);
    }
    let still = tx
        .fetch_optional(
            &format!("SELECT i.id FROM incidents i WHERE i.id = $1 AND {ALL_RESOLVED}"),
            args![id],
        )
        .await?
        .is_some();
    if !still {
        return Ok(false);
    }
    resolve_locked(&mut tx, &i, message, true, actor, now).await?;
    record(
        &mut tx,
        &audit(actor, id, "resolve", serde_json::json!({"status": {"before": i.status, "after": IncidentStatus::Resolved}, "message": {"after": message}})),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn get<B: Backend>(b: &B, id: i64) -> Result<Option<Incident>, StoreError> {
    let mut c = b.reader().await?;
    Ok(load(B::SQL, &mut c, id).await?)
}

pub(crate) async fn events<B: Backend>(b: &B, id: i64) -> Result<Vec<IncidentEvent>, StoreError> {
    let rows = b
        .reader()
        .await?
        .fetch(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM incident_events WHERE incident_id = $1 ORDER BY id"
            ),
            args![id],
        )
        .await?;
    Ok(rows.iter().map(event_row).collect::<Result<_, _>>()?)
}

pub(crate) async fn list<B: Backend>(
    b: &B,
    f: &IncidentFilter,
) -> Result<Vec<Incident>, StoreError> {
    let mut c = b.reader().await?;
    let status = match f.open {
        Some(true) => " AND status <> 'resolved'",
        Some(false) => " AND status = 'resolved'",
        None => "",
    };
    let rows = c
        .fetch(
            &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id < $1{status} AND ($2 = '' OR EXISTS (SELECT 1 FROM incident_services s WHERE s.incident_id = incidents.id AND s.service_id = $2)) ORDER BY id DESC LIMIT $3"),
            args![f.before.unwrap_or(i64::MAX), f.service.as_deref().unwrap_or(""), i64::from(f.limit.max(1))],
        )
        .await?;
    let mut out: Vec<Incident> = rows.iter().map(incident_row).collect::<Result<_, _>>()?;
    fill(B::SQL, &mut c, &mut out).await?;
    Ok(out)
}

/// Incidents linked to an alert, newest first.
pub(crate) async fn of_alert<B: Backend>(b: &B, alert_id: i64) -> Result<Vec<i64>, StoreError> {
    let rows = b
        .reader()
        .await?
        .fetch(
            "SELECT incident_id FROM incident_alerts WHERE alert_id = $1 ORDER BY incident_id DESC",
            args![alert_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.get("incident_id"))
        .collect::<Result<Vec<i64>, _>>()?)
}

/// Where the status page's data stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusVersion {
    /// Moves with every change the page shows.
    pub version: i64,
    pub changed_at: DateTime<Utc>,
    /// Since when state history is kept (uptime before it is unknown).
    pub since: DateTime<Utc>,
}

/// The status page's version.
pub(crate) async fn status_version<B: Backend>(b: &B) -> Result<StatusVersion, StoreError> {
    let r = b
        .reader()
        .await?
        .fetch_one(
            "SELECT version, changed_at, since FROM status_state WHERE id = 1",
            Vec::new(),
        )
        .await?;
    Ok(StatusVersion {
        version: r.get("version")?,
        changed_at: r.time("changed_at")?,
        since: r.time("since")?,
    })
}

/// Every span of state history that overlaps `[since, now]`.
pub(crate) async fn spans<B: Backend>(
    b: &B,
    since: DateTime<Utc>,
) -> Result<Vec<ServiceSpan>, StoreError> {
    let rows = b
        .reader()
        .await?
        .fetch(
            "SELECT service_id, incident_id, impact, from_at, to_at FROM service_impacts WHERE to_at IS NULL OR to_at >= $1 ORDER BY service_id, from_at",
            args![ms(since)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ServiceSpan {
                service_id: r.get("service_id")?,
                incident_id: r.get("incident_id")?,
                span: ImpactSpan {
                    impact: r.parse("impact")?,
                    from: r.time("from_at")?,
                    to: r.time_opt("to_at")?,
                },
            })
        })
        .collect::<Result<_, DbError>>()
        .map_err(StoreError::from)
}

/// Public updates, newest first, with their incident's title and services.
pub(crate) async fn public_events<B: Backend>(
    b: &B,
    limit: u32,
) -> Result<Vec<PublicEvent>, StoreError> {
    let d = B::SQL;
    let mut c = b.reader().await?;
    let rows = c
        .fetch(
            &format!("SELECT {EVENT_COLUMNS} FROM incident_events WHERE public = 1 ORDER BY at DESC, id DESC LIMIT $1"),
            args![i64::from(limit)],
        )
        .await?;
    let events: Vec<IncidentEvent> = rows.iter().map(event_row).collect::<Result<_, _>>()?;
    let ids: BTreeSet<i64> = events.iter().map(|e| e.incident_id).collect();
    let mut incidents: Vec<Incident> = Vec::new();
    if !ids.is_empty() {
        let ids: Vec<i64> = ids.into_iter().collect();
        let rows = c
            .fetch(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id IN ({})",
                    in_ids(d, "$1")
                ),
                args![enc(&ids)?],
            )
            .await?;
        incidents = rows.iter().map(incident_row).collect::<Result<_, _>>()?;
        fill_some(d, &mut c, &mut incidents, false).await?;
    }
    let by_id: HashMap<i64, &Incident> = incidents.iter().map(|i| (i.id, i)).collect();
    Ok(events
        .into_iter()
        .filter_map(|e| {
            let i = by_id.get(&e.incident_id)?;
            Some(PublicEvent {
                title: i.title.clone(),
                services: i.services.iter().map(|s| s.id.clone()).collect(),
                event: e,
            })
        })
        .collect())
}

/// Open incidents and those resolved since `since`, with their timelines,
/// newest first (the status page).
pub(crate) async fn recent<B: Backend>(
    b: &B,
    since: DateTime<Utc>,
) -> Result<Vec<(Incident, Vec<IncidentEvent>)>, StoreError> {
    let d = B::SQL;
    let mut c = b.reader().await?;
    let rows = c
        .fetch(
            &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE status <> 'resolved' OR resolved_at >= $1 ORDER BY id DESC LIMIT 200"),
            args![ms(since)],
        )
        .await?;
    let mut incidents: Vec<Incident> = rows.iter().map(incident_row).collect::<Result<_, _>>()?;
    fill_some(d, &mut c, &mut incidents, false).await?;
    let ids: Vec<i64> = incidents.iter().map(|i| i.id).collect();
    let mut events: HashMap<i64, Vec<IncidentEvent>> = HashMap::new();
    if !ids.is_empty() {
        for r in c
            .fetch(
                &format!("SELECT {EVENT_COLUMNS} FROM incident_events WHERE incident_id IN ({}) ORDER BY id", in_ids(d, "$1")),
                args![enc(&ids)?],
            )
            .await?
        {
            let e = event_row(&r)?;
            events.entry(e.incident_id).or_default().push(e);
        }
    }
    Ok(incidents
        .into_iter()
        .map(|i| {
            let ev = events.remove(&i.id).unwrap_or_default();
            (i, ev)
        })
        .collect())
}

/// The titles of incidents by id (the uptime bars name each day's).
pub(crate) async fn titles<B: Backend>(
    b: &B,
    ids: &[i64],
) -> Result<HashMap<i64, String>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = b
        .reader()
        .await?
        .fetch(
            &format!(
                "SELECT id, title FROM incidents WHERE id IN ({})",
                in_ids(B::SQL, "$1")
            ),
            args![enc(&ids)?],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.get("id")?, r.get("title")?)))
        .collect::<Result<_, DbError>>()
        .map_err(StoreError::from)
}

/// Take the turn to ask Prometheus for a chart: `true` when no node asked
/// within `every` (the caller then fetches and stores the answer).
pub(crate) async fn claim_chart_fetch<B: Backend>(
    b: &B,
    chart: &str,
    now: DateTime<Utc>,
    every: chrono::TimeDelta,
) -> Result<bool, StoreError> {
    let mut tx = b.begin().await?;
    let n = tx
        .execute(
            "INSERT INTO chart_fetches (chart, fetched_at, body) VALUES ($1, $2, '') ON CONFLICT (chart) DO UPDATE SET fetched_at = excluded.fetched_at WHERE chart_fetches.fetched_at <= $3",
            args![chart, ms(now), ms(now - every)],
        )
        .await?;
    tx.commit().await?;
    Ok(n > 0)
}

/// Store what Prometheus answered for a chart.
pub(crate) async fn store_chart<B: Backend>(
    b: &B,
    chart: &str,
    body: &str,
) -> Result<(), StoreError> {
    let mut tx = b.begin().await?;
    tx.execute(
        "UPDATE chart_fetches SET body = $1 WHERE chart = $2",
        args![body, chart],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The last stored answer for a chart and when it was asked for (its body
/// is empty while the first fetch is under way).
pub(crate) async fn chart<B: Backend>(
    b: &B,
    chart: &str,
) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
    let row = b
        .reader()
        .await?
        .fetch_optional(
            "SELECT fetched_at, body FROM chart_fetches WHERE chart = $1",
            args![chart],
        )
        .await?;
    Ok(row
        .map(|r| Ok::<_, DbError>((r.time("fetched_at")?, r.get("body")?)))
        .transpose()?)
}
