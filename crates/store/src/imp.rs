//! The SQL of the [`Store`](crate::Store) trait, written once over
//! [`Backend`]: every backend gets this implementation. Placeholders are
//! `$1…` (both backends accept them) and appear in the order they are bound;
//! what differs per backend is in [`Dialect`](crate::dialect::Dialect).

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tocsin_domain::{AlertStatus, Priority, TimelineKind};

use crate::db::{Backend, Conn, DbError, Row, Tx, Value, args};
use crate::dialect::{Bulk, Dialect, KeyLookup, ReserveIds};
use crate::plan::{JobRef, Key, Newest, Stored, TimelineRow};
use crate::{
    Actor, Alert, AlertFilter, AlertPage, AuditFilter, AuditPage, AuditRecord, CatalogCommit,
    CatalogWrite, ChangeEvent, ClaimedBundle, ClaimedStep, Delivery, DeliveryOutcome, DueHeartbeat,
    EscalationStep, HeartbeatRow, Incident, IncidentChange, IncidentEvent, IncidentFilter,
    IncidentNote, IngestResult, MaintenanceWindow, NewChange, NewIncident, NewMaintenance,
    NewNotice, NewToken, Notice, NoticeOutcome, NoticeRow, PersonalToken, PingResult, PublicEvent,
    RoutedEvent, ServiceSpan, StatusVersion, StepDone, StepPlanner, Store, StoreError,
    StoredCatalog, Subscriber, TimelineEntry, Transition, TransitionResult, Wake, WakeTopic,
};

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

pub(crate) fn enc<T: serde::Serialize>(v: &T) -> Result<String, DbError> {
    serde_json::to_string(v).map_err(DbError::decode)
}

pub(crate) fn spec_hash(spec: &serde_json::Value) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(spec.to_string().as_bytes()))
}

const DELIVERY_COLUMNS: &str = "id, alert_id, step_id, user_id, contact_id, channel, address, due_at, status, attempts, last_error, sent_at";
pub(crate) const ALERT_COLUMNS: &str = "id, source_id, dedup_key, status, severity, priority, summary, details, labels, links, members, policy_id, service_id, detected_at, created_at, updated_at, last_seen_at, seen_count, accepted_at, accepted_by, resolved_at, resolved_by";

pub(crate) const WINDOW_COLUMNS: &str = "id, target_kind, target_id, starts_at, ends_at, reason, created_by, created_at, ended_at, title, public";

const CHANGE_COLUMNS: &str =
    "id, source_id, service_id, at, received_at, summary, origin, details, links";

/// Conditions on a step's status for statements that name the steps by id.
/// The status is compared as an expression (`|| ''`), so neither SQLite
/// nor PostgreSQL walks a status index (every pending step, including next
/// levels due in minutes) instead of looking the ids up.
const BY_ID_PENDING: &str = "status || '' = 'pending'";
const BY_ID_RUNNING: &str = "status || '' = 'running'";

/// A contact's place in the queue: its oldest pending page.
const GATE_DUE_AT: &str = "(SELECT MIN(o.next_attempt_at) FROM outbox o WHERE o.user_id = contact_gates.user_id AND o.contact_id = contact_gates.contact_id AND o.status = 'pending')";

/// The timeline entry of one attempt of a bundle. It names the user, the
/// channel and the contact's id, never its address: a Slack or webhook URL
/// is a secret, and the timeline is readable by every observer.
pub(crate) fn attempt_note(b: &ClaimedBundle, attempt: i64, outcome: &DeliveryOutcome) -> String {
    let who = format!(
        "attempt {attempt} to {} by {} (contact `{}`)",
        b.user_id, b.channel, b.contact_id
    );
    let bundled = if b.alert_count > 1 {
        format!("; one message about {} alerts", b.alert_count)
    } else {
        String::new()
    };
    match outcome {
        DeliveryOutcome::Sent { detail } if detail.is_empty() => {
            format!("{who}: delivered{bundled}")
        }
        DeliveryOutcome::Sent { detail } => format!("{who}: delivered ({detail}){bundled}"),
        DeliveryOutcome::Retry { error, next_at } => format!(
            "{who} failed: {error}; retrying at {}{bundled}",
            next_at.to_rfc3339()
        ),
        DeliveryOutcome::Failed { error } => format!("{who} failed: {error}; giving up{bundled}"),
    }
}

/// "2 firing, 1 resolved".
pub(crate) fn member_counts(members: &[tocsin_domain::Member]) -> String {
    let firing = members.iter().filter(|m| m.is_firing()).count();
    format!("{firing} firing, {} resolved", members.len() - firing)
}

fn alert_from_row(r: &Row) -> Result<Alert, DbError> {
    Ok(Alert {
        id: r.get("id")?,
        source_id: r.get("source_id")?,
        dedup_key: r.get("dedup_key")?,
        status: r.parse("status")?,
        severity: r.parse("severity")?,
        priority: r.parse("priority")?,
        summary: r.get("summary")?,
        details: r.get("details")?,
        labels: r.json("labels")?,
        links: r.json("links")?,
        members: r.json("members")?,
        policy_id: r.get("policy_id")?,
        service_id: r.get("service_id")?,
        detected_at: r.time("detected_at")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        last_seen_at: r.time("last_seen_at")?,
        seen_count: r.get("seen_count")?,
        accepted_at: r.time_opt("accepted_at")?,
        accepted_by: r.get("accepted_by")?,
        resolved_at: r.time_opt("resolved_at")?,
        resolved_by: r.get("resolved_by")?,
    })
}

pub(crate) fn window_from_row(r: &Row) -> Result<MaintenanceWindow, DbError> {
    Ok(MaintenanceWindow {
        id: r.get("id")?,
        target_kind: r.get("target_kind")?,
        target_id: r.get("target_id")?,
        starts_at: r.time("starts_at")?,
        ends_at: r.time("ends_at")?,
        reason: r.get("reason")?,
        created_by: r.get("created_by")?,
        created_at: r.time("created_at")?,
        ended_at: r.time_opt("ended_at")?,
        title: r.get("title")?,
        public: r.get::<i64>("public")? != 0,
    })
}

fn change_from_row(r: &Row) -> Result<ChangeEvent, DbError> {
    Ok(ChangeEvent {
        id: r.get("id")?,
        source_id: r.get("source_id")?,
        service_id: r.get("service_id")?,
        at: r.time("at")?,
        received_at: r.time("received_at")?,
        summary: r.get("summary")?,
        origin: r.get("origin")?,
        details: r.get("details")?,
        links: r.json("links")?,
    })
}

fn entry_from_row(r: &Row) -> Result<TimelineEntry, DbError> {
    Ok(TimelineEntry {
        id: r.get("id")?,
        alert_id: r.get("alert_id")?,
        at: r.time("at")?,
        kind: r.get("kind")?,
        actor: r.get("actor")?,
        channel: r.get("channel")?,
        message: r.get("message")?,
    })
}

fn all<T>(rows: &[Row], f: impl Fn(&Row) -> Result<T, DbError>) -> Result<Vec<T>, StoreError> {
    Ok(rows.iter().map(f).collect::<Result<Vec<_>, _>>()?)
}

/// Run a read on one of the readers; each row through `f`.
async fn read_all<B: Backend, T>(
    b: &B,
    sql: &str,
    args: Vec<Value>,
    f: impl Fn(&Row) -> Result<T, DbError> + Send,
) -> Result<Vec<T>, StoreError> {
    let rows = b.reader().await?.fetch(sql, args).await?;
    all(&rows, f)
}

/// `ids` as the one parameter of an `IN (…)` list.
fn delivery_from_row(r: &Row) -> Result<Delivery, DbError> {
    Ok(Delivery {
        id: r.get("id")?,
        alert_id: r.get("alert_id")?,
        step_id: r.get("step_id")?,
        user_id: r.get("user_id")?,
        contact_id: r.get("contact_id")?,
        channel: r.get("channel")?,
        address: r.get("address")?,
        due_at: r.time("due_at")?,
        status: r.get("status")?,
        attempts: r.get("attempts")?,
        last_error: r.get("last_error")?,
        sent_at: r.time_opt("sent_at")?,
    })
}

pub(crate) fn in_ids(d: &Dialect, param: &str) -> String {
    format!("{}{param}{}", d.ids_open, d.ids_close)
}

/// Write `rows` (each in the statement's placeholder order) with `stmt`.
pub(crate) async fn bulk(
    tx: &mut impl Conn,
    stmt: &Bulk,
    rows: Vec<Vec<Value>>,
) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    match stmt {
        Bulk::PerRow(sql) => {
            for row in rows {
                tx.execute(sql, row).await?;
            }
        }
        Bulk::JsonArray(sql) => {
            tx.execute(sql, args![enc(&rows)?]).await?;
        }
    }
    Ok(())
}

/// Append timeline rows.
async fn insert_timeline(
    d: &Dialect,
    tx: &mut impl Conn,
    rows: &[TimelineRow],
) -> Result<(), DbError> {
    let rows = rows
        .iter()
        .map(|r| args![r.alert_id, r.at, &r.actor, &r.channel, r.kind, &r.message])
        .collect();
    bulk(tx, &d.insert_timeline, rows).await
}

/// Make each contact's place in the queue no later than `due` (user,
/// contact, epoch ms), creating its gate if need be.
async fn upsert_gates(
    d: &Dialect,
    tx: &mut impl Conn,
    due: Vec<(String, String, i64)>,
) -> Result<(), DbError> {
    // One row per contact (PostgreSQL refuses to update a row twice in one
    // statement), in key order (no lock-order deadlock between two writers).
    let mut first: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (user, contact, at) in due {
        let e = first.entry((user, contact)).or_insert(at);
        *e = (*e).min(at);
    }
    if first.is_empty() {
        return Ok(());
    }
    let rows = first
        .into_iter()
        .map(|((u, c), at)| args![u, c, at])
        .collect();
    bulk(tx, &d.upsert_gates, rows).await
}

/// Lock a contact's gate before letting it go at its oldest page left: a
/// writer queueing a page for this contact holds the gate until it
/// commits, so the statement after this one sees that page (on PostgreSQL a
/// statement reads what was committed when it began; an update that waited
/// for the row would still compute the gate's due time without the page,
/// and strand it).
async fn lock_gate(
    d: &Dialect,
    tx: &mut impl Conn,
    user_id: &str,
    contact_id: &str,
) -> Result<(), DbError> {
    let sql = format!(
        "SELECT user_id FROM contact_gates WHERE user_id = $1 AND contact_id = $2{}",
        d.for_update
    );
    tx.fetch(&sql, args![user_id, contact_id]).await?;
    Ok(())
}

/// Cancel the pending escalation steps and notifications of an alert.
async fn stop_escalation(tx: &mut impl Conn, alert_id: i64) -> Result<(), DbError> {
    tx.execute(
        "UPDATE escalation_steps SET status = 'cancelled' WHERE alert_id = $1 AND status IN ('pending', 'running')",
        args![alert_id],
    )
    .await?;
    tx.execute(
        "UPDATE outbox SET status = 'cancelled' WHERE alert_id = $1 AND status = 'pending'",
        args![alert_id],
    )
    .await?;
    Ok(())
}

/// Start escalation again at level 1, now (of `policy_id`, or of the
/// alert's own policy).
async fn restart_escalation(
    tx: &mut impl Conn,
    alert_id: i64,
    policy_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) SELECT id, COALESCE($1, policy_id), 0, 0, $2, 'pending', $2 FROM alerts WHERE id = $3 AND COALESCE($1, policy_id) IS NOT NULL",
        args![policy_id, ms(now), alert_id],
    )
    .await?;
    Ok(())
}

/// A step that ran: what it writes besides its own row.
struct StepRun<'a> {
    step_id: i64,
    alert_id: i64,
    policy_id: &'a str,
    done: &'a StepDone,
    now: DateTime<Utc>,
}

/// Rows a transaction writes once, at its end, in this order: each
/// contact's place in the queue (user, contact, due), then its pages
/// (`insert_outbox` order), escalation steps (`insert_steps_full` order) and
/// timeline entries.
#[derive(Default)]
struct Appends {
    gates: Vec<(String, String, i64)>,
    outbox: Vec<Vec<Value>>,
    steps: Vec<Vec<Value>>,
    timeline: Vec<TimelineRow>,
}

impl Appends {
    async fn write(self, d: &Dialect, tx: &mut impl Conn) -> Result<(), DbError> {
        upsert_gates(d, tx, self.gates).await?;
        bulk(tx, &d.insert_outbox, self.outbox).await?;
        bulk(tx, &d.insert_steps_full, self.steps).await?;
        insert_timeline(d, tx, &self.timeline).await
    }
}

/// What steps that ran queued, to `out`: each contact's place in the queue,
/// the pages, the next steps and the timeline. Returns the pages queued.
fn write_step_results(ran: &[StepRun<'_>], out: &mut Appends) -> usize {
    let mut queued = 0;
    for r in ran {
        queued += r.done.deliveries.len();
        for p in &r.done.deliveries {
            out.gates
                .push((p.user_id.clone(), p.contact_id.clone(), ms(p.due_at)));
            out.outbox.push(args![
                r.alert_id,
                r.step_id,
                &p.user_id,
                &p.contact_id,
                &p.channel,
                &p.address,
                ms(p.due_at),
                ms(r.now)
            ]);
        }
        if let Some(n) = r.done.next {
            out.steps.push(args![
                None::<i64>,
                r.alert_id,
                r.policy_id,
                n.level,
                n.round,
                ms(n.due_at),
                "pending",
                ms(r.now),
                None::<i64>
            ]);
        }
        out.timeline
            .extend(r.done.timeline.iter().map(|(k, m)| TimelineRow {
                alert_id: r.alert_id,
                at: ms(r.now),
                actor: r.done.actor.name.clone(),
                channel: r.done.actor.channel.clone(),
                kind: k.as_str(),
                message: m.clone(),
            }));
    }
    queued
}

/// Reserve `alerts` alert ids and `steps` escalation step ids, each
/// ascending, in one statement.
async fn reserve(
    tx: &mut impl Conn,
    how: &ReserveIds,
    alerts: usize,
    steps: usize,
) -> Result<(Vec<i64>, Vec<i64>), DbError> {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let (alerts, steps) = (count(alerts), count(steps));
    match how {
        ReserveIds::After(sql) => {
            let last = tx.fetch_one(sql, args![]).await?;
            let (a, s): (i64, i64) = (last.get("alerts")?, last.get("steps")?);
            Ok((
                (1..=alerts).map(|i| a + i).collect(),
                (1..=steps).map(|i| s + i).collect(),
            ))
        }
        ReserveIds::Sequence(sql) => {
            let (mut a, mut s) = (Vec::new(), Vec::new());
            for r in tx.fetch(sql, args![alerts, steps]).await? {
                let id: i64 = r.get("id")?;
                if r.get::<bool>("is_step")? {
                    s.push(id);
                } else {
                    a.push(id);
                }
            }
            a.sort_unstable();
            s.sort_unstable();
            Ok((a, s))
        }
    }
}

/// Run the first escalation level of new alerts (drafts, with their
/// policy) inside the ingest transaction: each step is written done with
/// its pages and next step (to `out`), as a worker would have. A level's
/// plan depends on the policy, the priority and the time only, so a storm
/// plans it once. Returns the pages queued per alert.
fn first_levels(
    planner: &dyn StepPlanner,
    drafts: &[(&crate::plan::Draft, &str)],
    ids: &[i64],
    out: &mut Appends,
) -> Result<HashMap<i64, usize>, DbError> {
    if ids.len() != drafts.len() {
        // A level without an id would silently not run: refuse the batch.
        return Err(DbError::Decode(format!(
            "{} step ids reserved for {} first levels",
            ids.len(),
            drafts.len()
        )));
    }
    let mut plans: HashMap<(&str, Priority, i64), StepDone> = HashMap::new();
    let mut keys = Vec::with_capacity(drafts.len());
    for ((a, policy), id) in drafts.iter().zip(ids) {
        let priority = a.content.as_ref().map_or(Priority::High, |c| c.priority);
        let now = a.created_at;
        let key = (*policy, priority, ms(now));
        keys.push(key);
        if let std::collections::hash_map::Entry::Vacant(e) = plans.entry(key) {
            let step = ClaimedStep {
                id: *id,
                alert_id: a.id,
                policy_id: (*policy).to_owned(),
                level: 0,
                round: 0,
                due_at: now,
                priority,
                claim: String::new(),
                taken_over: false,
            };
            e.insert(planner.plan(&step, now));
        }
        out.steps.push(args![
            *id,
            a.id,
            *policy,
            0,
            0,
            ms(now),
            "done",
            ms(now),
            ms(now)
        ]);
    }
    let mut queued = HashMap::with_capacity(drafts.len());
    let mut ran = Vec::with_capacity(drafts.len());
    for (((a, policy), id), key) in drafts.iter().zip(ids).zip(&keys) {
        if let Some(done) = plans.get(key) {
            queued.insert(a.id, done.deliveries.len());
            ran.push(StepRun {
                step_id: *id,
                alert_id: a.id,
                policy_id: policy,
                done,
                now: a.created_at,
            });
        }
    }
    write_step_results(&ran, out);
    Ok(queued)
}

/// Apply the events of several requests inside `tx` (the caller commits):
/// one lookup, one plan, and a fixed set of statements.
pub(crate) async fn ingest_batch(
    d: &Dialect,
    tx: &mut impl Conn,
    jobs: &[JobRef<'_>],
    planner: Option<&dyn StepPlanner>,
) -> Result<Vec<Vec<IngestResult>>, DbError> {
    let mut keys: Vec<(&str, &str)> = jobs
        .iter()
        .flat_map(|j| {
            j.events
                .iter()
                .map(move |e| (j.source_id, e.event.dedup_key.as_str()))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut newest = HashMap::with_capacity(keys.len());
    if !keys.is_empty() {
        let rows = match &d.lookup {
            KeyLookup::PerKey(sql) => {
                let mut rows = Vec::with_capacity(keys.len());
                for (source, key) in &keys {
                    rows.extend(tx.fetch_optional(sql, args![*source, *key]).await?);
                }
                rows
            }
            KeyLookup::JsonArray(sql) => tx.fetch(sql, args![enc(&keys)?]).await?,
        };
        for r in rows {
            let key: Key = (r.get("source_id")?, r.get("dedup_key")?);
            newest.insert(
                key,
                Newest {
                    id: r.get("id")?,
                    status: r.parse("status")?,
                    members: r.json("members")?,
                    stored: Stored {
                        severity: r.parse("severity")?,
                        priority: r.parse("priority")?,
                        summary: r.get("summary")?,
                        details: r.get("details")?,
                        links: r.json("links")?,
                    },
                },
            );
        }
    }

    let mut plan = crate::plan::plan(jobs, newest);
    let n_new = plan.new_alerts();
    // Every new alert starts its escalation at level 1. With a planner, a
    // level due at once runs here (its step id reserved with the alert
    // ids); otherwise, or when it is due later (outside support hours), a
    // pending step waits for the worker.
    let inline = |a: &crate::plan::Draft| {
        planner.is_some() && a.first_step_at.is_none_or(|due| due <= a.created_at)
    };
    let n_inline = plan
        .drafts
        .iter()
        .filter(|a| a.is_new && a.page && a.policy_id.is_some() && inline(a))
        .count();
    let mut step_ids = Vec::new();
    if n_new > 0 {
        let (ids, steps) = reserve(tx, &d.reserve_ids, n_new, n_inline).await?;
        plan.assign_ids(&ids);
        step_ids = steps;
    }

    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    for a in &plan.drafts {
        let c = a.content.as_ref();
        let labels = c.map(|c| enc(&c.labels)).transpose()?;
        let extra_labels = c.map(|c| enc(&c.extra_labels)).transpose()?;
        let links = c.map(|c| enc(&c.links)).transpose()?;
        if a.is_new {
            inserts.push(args![
                a.id,
                &a.source_id,
                &a.dedup_key,
                a.status.as_str(),
                c.map(|c| c.severity.as_str()),
                c.map(|c| c.priority.as_str()),
                c.map(|c| c.summary.as_str()),
                c.map(|c| c.details.as_str()),
                labels,
                links,
                enc(&a.members)?,
                &a.policy_id,
                &a.service_id,
                ms(a.detected_at),
                ms(a.created_at),
                ms(a.updated_at),
                ms(a.last_seen_at),
                a.seen,
                a.resolved_at.map(ms),
                &a.resolved_by,
                extra_labels,
            ]);
        } else {
            updates.push(args![
                a.id,
                a.status.as_str(),
                c.map(|c| c.severity.as_str()),
                c.map(|c| c.priority.as_str()),
                c.map(|c| c.summary.as_str()),
                c.map(|c| c.details.as_str()),
                labels,
                links,
                c.map(|_| enc(&a.members)).transpose()?,
                c.map(|_| ms(a.updated_at)),
                ms(a.last_seen_at),
                a.seen,
                a.resolved_at.map(ms),
                &a.resolved_by,
                extra_labels,
            ]);
        }
    }
    bulk(tx, &d.insert_alerts, inserts).await?;
    bulk(tx, &d.update_alerts, updates).await?;
    // The creation entries first: the timeline reads in order. Steps with
    // reserved ids before those numbered as written (SQLite hands out the
    // next id after the highest).
    let mut out = Appends {
        timeline: std::mem::take(&mut plan.timeline),
        ..Appends::default()
    };
    let mut pending = Vec::new();
    let mut now_due = Vec::new();
    for a in plan.drafts.iter().filter(|a| a.is_new && a.page) {
        let Some(policy) = a.policy_id.as_deref() else {
            continue;
        };
        if inline(a) {
            now_due.push((a, policy));
        } else {
            let due = a.first_step_at.unwrap_or(a.created_at);
            pending.push(args![
                None::<i64>,
                a.id,
                policy,
                0,
                0,
                ms(due),
                "pending",
                ms(a.created_at),
                None::<i64>
            ]);
        }
    }
    // Alerts the source resolved stop escalating.
    for a in plan
        .drafts
        .iter()
        .filter(|a| !a.is_new && a.status == AlertStatus::Resolved)
    {
        stop_escalation(tx, a.id).await?;
    }
    let queued = match planner {
        Some(p) if !now_due.is_empty() => first_levels(p, &now_due, &step_ids, &mut out)?,
        _ => HashMap::new(),
    };
    out.steps.extend(pending);
    out.write(d, tx).await?;
    // Alerts at or above their service's `auto_incident_from` open or
    // join its incident, in this transaction: a redelivery finds the link.
    let auto: Vec<crate::incident::AutoAlert<'_>> = plan
        .drafts
        .iter()
        .filter(|a| a.status.is_open() && (a.page || !a.is_new))
        .filter_map(|a| {
            let c = a.content.as_ref()?;
            Some(crate::incident::AutoAlert {
                alert_id: a.id,
                is_new: a.is_new,
                source_id: &a.source_id,
                severity: c.severity,
                summary: &c.summary,
                auto: a.incident.as_ref()?,
            })
        })
        .collect();
    if let Some(now) = jobs.iter().map(|j| j.now).max() {
        crate::incident::auto_link(d, tx, &auto, now).await?;
    }
    for c in &plan.audit {
        crate::audit::record(tx, &c.record(), c.at).await?;
    }
    let mut results = plan.results;
    if !queued.is_empty() {
        for r in results.iter_mut().flatten() {
            if r.outcome == crate::IngestOutcome::Created {
                r.first_level = r.alert_id.and_then(|id| queued.get(&id).copied());
            }
        }
    }
    Ok(results)
}

/// A write of one statement in its own transaction.
async fn write_one<B: Backend>(b: &B, sql: &str, args: Vec<Value>) -> Result<u64, DbError> {
    b.writer().await?.execute(sql, args).await
}

#[async_trait]
impl<B: Backend> Store for B {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.reader().await?.fetch("SELECT 1", args![]).await?;
        Ok(())
    }

    async fn catalog(&self) -> Result<StoredCatalog, StoreError> {
        crate::catalog::read(self).await
    }

    async fn catalog_version(&self) -> Result<i64, StoreError> {
        let row = self
            .reader()
            .await?
            .fetch_one("SELECT version FROM catalog_state WHERE id = 1", args![])
            .await?;
        Ok(row.get("version")?)
    }

    async fn write_catalog(
        &self,
        writes: &[CatalogWrite],
        audit: &[AuditRecord],
        now: DateTime<Utc>,
    ) -> Result<CatalogCommit, StoreError> {
        crate::catalog::write(self, writes, audit, now).await
    }

    async fn source_key(
        &self,
        source_id: &str,
        configured: Option<&str>,
        generated: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let now = ms(now);
        let mut c = self.writer().await?;
        if let Some(k) = configured {
            c.execute(
                "INSERT INTO source_keys (source_id, key, created_at) VALUES ($1, $2, $3) ON CONFLICT (source_id) DO UPDATE SET key = excluded.key",
                args![source_id, k, now],
            )
            .await?;
            return Ok(k.to_owned());
        }
        c.execute(
            "INSERT INTO source_keys (source_id, key, created_at) VALUES ($1, $2, $3) ON CONFLICT (source_id) DO NOTHING",
            args![source_id, generated, now],
        )
        .await?;
        let row = c
            .fetch_one(
                "SELECT key FROM source_keys WHERE source_id = $1",
                args![source_id],
            )
            .await?;
        Ok(row.get("key")?)
    }

    async fn named_secret(
        &self,
        scope: &str,
        id: &str,
        generated: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let mut c = self.writer().await?;
        c.execute(
            "INSERT INTO secrets (scope, id, value, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (scope, id) DO NOTHING",
            args![scope, id, generated, ms(now)],
        )
        .await?;
        let row = c
            .fetch_one(
                "SELECT value FROM secrets WHERE scope = $1 AND id = $2",
                args![scope, id],
            )
            .await?;
        Ok(row.get("value")?)
    }

    async fn ingest(
        &self,
        source_id: &str,
        actor: &Actor,
        events: Vec<RoutedEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<IngestResult>, StoreError> {
        Backend::ingest(self, source_id, actor, events, now).await
    }

    fn run_first_levels(&self, planner: std::sync::Arc<dyn StepPlanner>) {
        if let Ok(mut slot) = self.planner().write() {
            *slot = Some(planner);
        }
    }

    async fn listen(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Wake>>, StoreError> {
        Backend::listen(self).await
    }

    async fn list_alerts(&self, f: &AlertFilter) -> Result<AlertPage, StoreError> {
        let mut binds: Vec<Value> = Vec::new();
        let mut next = |b: Value| {
            binds.push(b);
            format!("${}", binds.len())
        };
        let mut sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE 1 = 1");
        if let Some(s) = f.status {
            sql.push_str(&format!(" AND status = {}", next(s.as_str().into())));
        }
        if let Some(s) = &f.source_id {
            sql.push_str(&format!(" AND source_id = {}", next(s.into())));
        }
        if let Some(s) = &f.service_id {
            sql.push_str(&format!(" AND service_id = {}", next(s.into())));
        }
        if let Some(s) = f.severity {
            sql.push_str(&format!(" AND severity = {}", next(s.as_str().into())));
        }
        for (n, v) in &f.labels {
            let pn = next(n.into());
            let pv = next(v.into());
            sql.push_str(" AND ");
            sql.push_str(&B::SQL.has_label.replace("{n}", &pn).replace("{v}", &pv));
        }
        if let Some(b) = f.before_id {
            sql.push_str(&format!(" AND id < {}", next(b.into())));
        }
        let limit = i64::from(f.limit.clamp(1, 1000));
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT {}",
            next((limit + 1).into())
        ));
        let rows = self.reader().await?.fetch(&sql, binds).await?;
        let mut alerts = all(&rows, alert_from_row)?;
        let more = alerts.len() as i64 > limit;
        alerts.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_before_id = if more {
            alerts.last().map(|a| a.id)
        } else {
            None
        };
        Ok(AlertPage {
            alerts,
            next_before_id,
        })
    }

    async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
        let row = self.reader().await?.fetch_optional(&sql, args![id]).await?;
        Ok(row.as_ref().map(alert_from_row).transpose()?)
    }

    async fn timeline(&self, alert_id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        read_all(
            self,
            "SELECT id, alert_id, at, kind, actor, channel, message FROM alert_timeline WHERE alert_id = $1 ORDER BY id",
            args![alert_id],
            entry_from_row,
        )
        .await
    }

    async fn transition(
        &self,
        alert_id: i64,
        action: Transition,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult, StoreError> {
        enum Step {
            Change,
            Same,
            Conflict,
        }
        let mut tx = self.begin().await?;
        let sql = format!(
            "SELECT status FROM alerts WHERE id = $1{}",
            B::SQL.for_update
        );
        let Some(row) = tx.fetch_optional(&sql, args![alert_id]).await? else {
            return Ok(TransitionResult::NotFound);
        };
        let status: AlertStatus = row.parse("status")?;
        let step = match (action, status) {
            (Transition::Accept, AlertStatus::Pending) => Step::Change,
            (Transition::Accept, AlertStatus::Accepted) => Step::Same,
            (Transition::Accept, AlertStatus::Resolved) => Step::Conflict,
            (Transition::Resolve, AlertStatus::Resolved) => Step::Same,
            (Transition::Resolve, _) => Step::Change,
            (Transition::Unaccept, AlertStatus::Accepted) => Step::Change,
            (Transition::Unaccept, AlertStatus::Pending) => Step::Same,
            (Transition::Unaccept, AlertStatus::Resolved) => Step::Conflict,
        };
        if let Step::Change = step {
            let now_ms = ms(now);
            let (sql, kind, msg) = match action {
                Transition::Accept => (
                    "UPDATE alerts SET status = 'accepted', accepted_at = $1, accepted_by = $2, updated_at = $1 WHERE id = $3",
                    TimelineKind::Accepted,
                    format!("accepted by {} via {}", actor.name, actor.channel),
                ),
                Transition::Resolve => (
                    "UPDATE alerts SET status = 'resolved', resolved_seq = id, resolved_at = $1, resolved_by = $2, updated_at = $1 WHERE id = $3",
                    TimelineKind::Resolved,
                    format!("resolved by {} via {}", actor.name, actor.channel),
                ),
                Transition::Unaccept => (
                    "UPDATE alerts SET status = 'pending', accepted_at = NULL, accepted_by = NULL, updated_at = $1 WHERE id = $3 AND $2 = $2",
                    TimelineKind::Escalation,
                    format!(
                        "un-accepted by {} via {}; escalation restarts at level 1",
                        actor.name, actor.channel
                    ),
                ),
            };
            tx.execute(sql, args![now_ms, &actor.name, alert_id])
                .await?;
            let row = TimelineRow {
                alert_id,
                at: now_ms,
                actor: actor.name.clone(),
                channel: actor.channel.clone(),
                kind: kind.as_str(),
                message: msg,
            };
            insert_timeline(B::SQL, &mut tx, std::slice::from_ref(&row)).await?;
            let after = match action {
                Transition::Accept => AlertStatus::Accepted,
                Transition::Resolve => AlertStatus::Resolved,
                Transition::Unaccept => AlertStatus::Pending,
            };
            let audit = AuditRecord::status_change(actor, alert_id, action.as_str(), status, after);
            crate::audit::record(&mut tx, &audit, now).await?;
            stop_escalation(&mut tx, alert_id).await?;
            if action == Transition::Unaccept {
                restart_escalation(&mut tx, alert_id, None, now).await?;
            }
        }
        tx.commit().await?;
        let alert = self
            .get_alert(alert_id)
            .await?
            .ok_or_else(|| StoreError::Internal("alert vanished after its transition".into()))?;
        Ok(match step {
            Step::Change => TransitionResult::Done(Box::new(alert)),
            Step::Same => TransitionResult::Unchanged(Box::new(alert)),
            Step::Conflict => TransitionResult::Conflict(Box::new(alert)),
        })
    }

    async fn reassign(
        &self,
        alert_id: i64,
        policy_id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult, StoreError> {
        let vanished = || StoreError::Internal("alert vanished".into());
        let mut tx = self.begin().await?;
        let sql = format!(
            "SELECT status, policy_id FROM alerts WHERE id = $1{}",
            B::SQL.for_update
        );
        let Some(row) = tx.fetch_optional(&sql, args![alert_id]).await? else {
            return Ok(TransitionResult::NotFound);
        };
        let status: AlertStatus = row.parse("status")?;
        let before: Option<String> = row.get("policy_id")?;
        if status == AlertStatus::Resolved {
            drop(tx);
            let a = self.get_alert(alert_id).await?.ok_or_else(vanished)?;
            return Ok(TransitionResult::Conflict(Box::new(a)));
        }
        let now_ms = ms(now);
        tx.execute(
            "UPDATE alerts SET policy_id = $1, status = 'pending', accepted_at = NULL, accepted_by = NULL, updated_at = $2 WHERE id = $3",
            args![policy_id, now_ms, alert_id],
        )
        .await?;
        stop_escalation(&mut tx, alert_id).await?;
        restart_escalation(&mut tx, alert_id, Some(policy_id), now).await?;
        let row = TimelineRow {
            alert_id,
            at: now_ms,
            actor: actor.name.clone(),
            channel: actor.channel.clone(),
            kind: TimelineKind::Escalation.as_str(),
            message: format!(
                "reassigned to {policy_id} by {}; escalation restarts at level 1",
                actor.name
            ),
        };
        insert_timeline(B::SQL, &mut tx, std::slice::from_ref(&row)).await?;
        let audit = AuditRecord::new(
            actor,
            "alert",
            alert_id.to_string(),
            "reassign",
            serde_json::json!({
                "escalation_policy": {"before": before, "after": policy_id},
                "status": {"before": status, "after": AlertStatus::Pending},
            }),
        );
        crate::audit::record(&mut tx, &audit, now).await?;
        tx.commit().await?;
        let a = self.get_alert(alert_id).await?.ok_or_else(vanished)?;
        Ok(TransitionResult::Done(Box::new(a)))
    }

    async fn comment(
        &self,
        alert_id: i64,
        actor: &Actor,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TimelineEntry>, StoreError> {
        let mut tx = self.begin().await?;
        let exists = tx
            .fetch_optional("SELECT id FROM alerts WHERE id = $1", args![alert_id])
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let row = tx
            .fetch_one(
                "INSERT INTO alert_timeline (alert_id, at, actor, channel, kind, message) VALUES ($1, $2, $3, $4, 'comment', $5) RETURNING id, alert_id, at, kind, actor, channel, message",
                args![alert_id, ms(now), &actor.name, &actor.channel, text],
            )
            .await?;
        let entry = entry_from_row(&row)?;
        let audit = AuditRecord::new(
            actor,
            "alert",
            alert_id.to_string(),
            "comment",
            serde_json::json!({"comment": {"after": text}}),
        );
        crate::audit::record(&mut tx, &audit, now).await?;
        tx.commit().await?;
        Ok(Some(entry))
    }

    async fn prune_resolved(
        &self,
        resolved_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let d = B::SQL;
        let mut tx = self.begin().await?;
        let ids = tx
            .fetch(
                &format!(
                    "SELECT id FROM alerts WHERE status = 'resolved' AND resolved_at < $1 ORDER BY id LIMIT $2{}",
                    d.for_update
                ),
                args![ms(resolved_before), i64::from(limit)],
            )
            .await?
            .iter()
            .map(|r| r.get::<i64>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ids = enc(&ids)?;
        // The alerts' own rows first: neither backend has foreign keys to
        // cascade along (migration 0015 on both).
        for table in ["alert_timeline", "escalation_steps", "outbox"] {
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE alert_id IN ({})",
                    in_ids(d, "$1")
                ),
                args![ids.clone()],
            )
            .await?;
        }
        let pruned = tx
            .execute(
                &format!("DELETE FROM alerts WHERE id IN ({})", in_ids(d, "$1")),
                args![ids],
            )
            .await?;
        tx.commit().await?;
        Ok(pruned)
    }

    async fn claim_due_steps(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
        claim: &str,
    ) -> Result<Vec<ClaimedStep>, StoreError> {
        let d = B::SQL;
        let mut tx = self.begin().await?;
        // Steps whose lease ran out (their worker died) are due again.
        let expired = tx
            .fetch(
                &format!(
                    "UPDATE escalation_steps SET status = 'pending', claim = NULL WHERE id IN (SELECT id FROM escalation_steps WHERE status = 'running' AND claimed_until < $1 LIMIT 10000{}) RETURNING id",
                    d.skip_locked
                ),
                args![ms(now)],
            )
            .await?
            .iter()
            .map(|r| r.get::<i64>("id"))
            .collect::<Result<HashSet<i64>, _>>()?;
        // Fairness first: the oldest due step of every policy that has one.
        // Policies are walked one index seek at a time, so the cost grows
        // with the number of policies, not steps.
        let heads: Vec<i64> = tx
            .fetch(
                "WITH RECURSIVE p(policy_id) AS (SELECT MIN(policy_id) FROM escalation_steps WHERE status = 'pending' UNION ALL SELECT (SELECT MIN(s.policy_id) FROM escalation_steps s WHERE s.status = 'pending' AND s.policy_id > p.policy_id) FROM p WHERE p.policy_id IS NOT NULL) SELECT (SELECT s.id FROM escalation_steps s WHERE s.status = 'pending' AND s.policy_id = p.policy_id AND s.due_at <= $1 ORDER BY s.due_at LIMIT 1) AS id FROM p WHERE p.policy_id IS NOT NULL",
                args![ms(now)],
            )
            .await?
            .iter()
            .filter_map(|r| r.get::<Option<i64>>("id").transpose())
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect::<Result<_, _>>()?;
        let claimed = "RETURNING id, alert_id, policy_id, level, round, due_at";
        let mut rows = Vec::new();
        if !heads.is_empty() {
            rows = tx
                .fetch(
                    &format!(
                        "UPDATE escalation_steps SET status = 'running', claim = $1, claimed_until = $2 WHERE id IN (SELECT id FROM escalation_steps WHERE id IN ({}) AND {BY_ID_PENDING}{}) {claimed}",
                        in_ids(d, "$3"),
                        d.skip_locked
                    ),
                    args![claim, ms(now + lease), enc(&heads)?],
                )
                .await?;
        }
        // Then the oldest due steps overall.
        let rest = i64::from(limit) - i64::try_from(rows.len()).unwrap_or(0);
        if rest > 0 {
            rows.extend(
                tx.fetch(
                    &format!(
                        "UPDATE escalation_steps SET status = 'running', claim = $1, claimed_until = $2 WHERE id IN (SELECT id FROM escalation_steps WHERE status = 'pending' AND due_at <= $3 ORDER BY due_at LIMIT $4{}) {claimed}",
                        d.skip_locked
                    ),
                    args![claim, ms(now + lease), ms(now), rest],
                )
                .await?,
            );
        }
        let alert_ids: Vec<i64> = rows
            .iter()
            .map(|r| r.get::<i64>("alert_id"))
            .collect::<Result<_, _>>()?;
        let mut priorities = HashMap::new();
        if !alert_ids.is_empty() {
            let sql = format!(
                "SELECT id, priority FROM alerts WHERE id IN ({})",
                in_ids(d, "$1")
            );
            for p in tx.fetch(&sql, args![enc(&alert_ids)?]).await? {
                priorities.insert(p.get::<i64>("id")?, p.parse::<Priority>("priority")?);
            }
        }
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let alert_id: i64 = r.get("alert_id")?;
            let id: i64 = r.get("id")?;
            out.push(ClaimedStep {
                id,
                taken_over: expired.contains(&id),
                alert_id,
                policy_id: r.get("policy_id")?,
                level: r.get("level")?,
                round: r.get("round")?,
                due_at: r.time("due_at")?,
                priority: priorities.get(&alert_id).copied().unwrap_or(Priority::High),
                claim: claim.to_owned(),
            });
        }
        tx.commit().await?;
        out.sort_by_key(|s| (s.due_at, s.id));
        Ok(out)
    }

    async fn complete_step(
        &self,
        step: &ClaimedStep,
        done: StepDone,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut r = self.complete_steps(vec![(step.clone(), done)], now).await?;
        Ok(r.pop().unwrap_or(false))
    }

    async fn complete_steps(
        &self,
        items: Vec<(ClaimedStep, StepDone)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        let d = B::SQL;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        // Mark done every step whose claim still holds (one statement per
        // claim token).
        let mut held = HashSet::new();
        let mut claims: Vec<&str> = items.iter().map(|(s, _)| s.claim.as_str()).collect();
        claims.sort_unstable();
        claims.dedup();
        let sql = format!(
            "UPDATE escalation_steps SET status = 'done', done_at = $1 WHERE id IN ({}) AND {BY_ID_RUNNING} AND claim = $2 RETURNING id",
            in_ids(d, "$3")
        );
        for claim in claims {
            let ids: Vec<i64> = items
                .iter()
                .filter(|(s, _)| s.claim == claim)
                .map(|(s, _)| s.id)
                .collect();
            for r in tx.fetch(&sql, args![ms(now), claim, enc(&ids)?]).await? {
                held.insert(r.get::<i64>("id")?);
            }
        }
        let ran: Vec<StepRun<'_>> = items
            .iter()
            .filter(|(s, _)| held.contains(&s.id))
            .map(|(s, done)| StepRun {
                step_id: s.id,
                alert_id: s.alert_id,
                policy_id: &s.policy_id,
                done,
                now,
            })
            .collect();
        let mut out = Appends::default();
        let queued = write_step_results(&ran, &mut out) > 0;
        out.write(d, &mut tx).await?;
        tx.commit().await?;
        if queued {
            self.wake_others(WakeTopic::Dispatch);
        }
        Ok(items.iter().map(|(s, _)| held.contains(&s.id)).collect())
    }

    async fn claim_bundles(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        contacts: u32,
        bundle: TimeDelta,
        listed: u32,
        claim: &str,
    ) -> Result<Vec<ClaimedBundle>, StoreError> {
        let d = B::SQL;
        // 1. Lease contacts, not pages: the ones whose oldest page fell due
        // first, whose window is over and that nobody holds (or whose
        // holder's lease ran out: it died). A short transaction: the gates
        // it locks are wanted by every escalation round that pages these
        // people.
        let mut tx = self.begin().await?;
        let picked = tx
            .fetch(
                &format!(
                    "SELECT user_id, contact_id, open_at, claim IS NOT NULL AS taken_over FROM contact_gates WHERE due_at <= $1 AND open_at <= $1 AND (claim IS NULL OR claimed_until < $1) ORDER BY due_at LIMIT $2{}",
                    d.skip_locked_gates
                ),
                args![ms(now), i64::from(contacts)],
            )
            .await?;
        let mut held = Vec::with_capacity(picked.len());
        for g in picked {
            let user_id: String = g.get("user_id")?;
            let contact_id: String = g.get("contact_id")?;
            tx.execute(
                "UPDATE contact_gates SET claim = $1, claimed_until = $2, open_at = $3 WHERE user_id = $4 AND contact_id = $5",
                args![claim, ms(now + lease), ms(now + bundle), &user_id, &contact_id],
            )
            .await?;
            held.push((
                user_id,
                contact_id,
                g.get::<i64>("open_at")?,
                g.get::<bool>("taken_over")?,
            ));
        }
        tx.commit().await?;

        // 2. Each held contact's bundle, read without holding the writer:
        // every page pending and due now (with bundling), or the oldest one
        // (without). Nobody else claims these contacts while the lease
        // holds.
        let mut read = self.reader().await?;
        let head_sql = if bundle > TimeDelta::zero() {
            "SELECT MIN(id) AS first_page, MAX(id) AS last_page, COUNT(*) AS pages, COUNT(DISTINCT alert_id) AS alerts, MAX(attempts) AS attempts, MIN(channel) AS channel, MIN(address) AS address FROM outbox WHERE user_id = $1 AND contact_id = $2 AND status = 'pending' AND next_attempt_at <= $3"
        } else {
            "SELECT id AS first_page, id AS last_page, CAST(1 AS BIGINT) AS pages, CAST(1 AS BIGINT) AS alerts, attempts, channel, address FROM outbox WHERE user_id = $1 AND contact_id = $2 AND status = 'pending' AND next_attempt_at <= $3 ORDER BY next_attempt_at, id LIMIT 1"
        };
        let mut out = Vec::with_capacity(held.len());
        let mut empty = Vec::new();
        let mut alert_ids = Vec::new();
        for (user_id, contact_id, open_at, taken_over) in held {
            let head = read
                .fetch_optional(head_sql, args![&user_id, &contact_id, ms(now)])
                .await?;
            let pages: i64 = match &head {
                Some(h) => h.get::<Option<i64>>("pages")?.unwrap_or(0),
                None => 0,
            };
            let Some(h) = head.filter(|_| pages > 0) else {
                empty.push((user_id, contact_id, open_at));
                continue;
            };
            let first_page: i64 = h.get("first_page")?;
            let last_page: i64 = h.get("last_page")?;
            let listed_ids: Vec<i64> = read
                .fetch(
                    "SELECT o.alert_id FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE o.user_id = $1 AND o.contact_id = $2 AND o.status = 'pending' AND o.next_attempt_at <= $3 AND o.id BETWEEN $4 AND $5 GROUP BY o.alert_id, a.severity ORDER BY a.severity, o.alert_id LIMIT $6",
                    args![&user_id, &contact_id, ms(now), first_page, last_page, i64::from(listed)],
                )
                .await?
                .iter()
                .map(|r| r.get::<i64>("alert_id"))
                .collect::<Result<_, _>>()?;
            alert_ids.extend(listed_ids.iter().copied());
            out.push((
                ClaimedBundle {
                    claim: claim.to_owned(),
                    user_id,
                    contact_id,
                    channel: h.get("channel")?,
                    address: h.get("address")?,
                    attempts: h.get("attempts")?,
                    first_page,
                    last_page,
                    cutoff: now,
                    pages,
                    taken_over: if taken_over { pages } else { 0 },
                    alert_count: h.get("alerts")?,
                    alerts: Vec::new(),
                },
                listed_ids,
            ));
        }
        let mut alerts = HashMap::new();
        if !alert_ids.is_empty() {
            alert_ids.sort_unstable();
            alert_ids.dedup();
            let sql = format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE id IN ({})",
                in_ids(d, "$1")
            );
            for a in read.fetch(&sql, args![enc(&alert_ids)?]).await? {
                let alert = alert_from_row(&a)?;
                alerts.insert(alert.id, alert);
            }
        }
        drop(read);
        // A contact with nothing due after all (its pages were cancelled):
        // let it go as it was, at its oldest page left.
        if !empty.is_empty() {
            let mut tx = self.begin().await?;
            let sql = format!(
                "UPDATE contact_gates SET due_at = {GATE_DUE_AT}, claim = NULL, claimed_until = NULL, open_at = $1 WHERE user_id = $2 AND contact_id = $3 AND claim = $4"
            );
            for (user_id, contact_id, open_at) in &empty {
                lock_gate(d, &mut tx, user_id, contact_id).await?;
                tx.execute(&sql, args![*open_at, user_id, contact_id, claim])
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(out
            .into_iter()
            .map(|(mut b, ids)| {
                b.alerts = ids
                    .iter()
                    .filter_map(|id| alerts.get(id).cloned())
                    .collect();
                b
            })
            .collect())
    }

    async fn finish_bundle(
        &self,
        b: &ClaimedBundle,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let chunk = B::SQL.bundle_chunk;
        let attempt = b.attempts + 1;
        let note = attempt_note(b, attempt, &outcome);
        let (status, next_at, error, sent_at) = match &outcome {
            DeliveryOutcome::Sent { .. } => ("sent", ms(now), None, Some(ms(now))),
            DeliveryOutcome::Retry { error, next_at } => {
                ("pending", ms(*next_at), Some(error.as_str()), None)
            }
            DeliveryOutcome::Failed { error } => ("failed", ms(now), Some(error.as_str()), None),
        };
        let mut recorded = 0u64;
        loop {
            let mut tx = self.begin().await?;
            // Only while the claim holds (not taken over meanwhile; a plain
            // read, so escalation rounds paging this person do not wait for
            // the chunk).
            let mine = tx
                .fetch_optional(
                    "SELECT user_id FROM contact_gates WHERE user_id = $1 AND contact_id = $2 AND claim = $3",
                    args![&b.user_id, &b.contact_id, &b.claim],
                )
                .await?;
            if mine.is_none() {
                return Ok(recorded);
            }
            // The bundle's pages still pending (an accept or resolve
            // cancelled the others), one chunk at a time.
            let rows = tx
                .fetch(
                    "UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, sent_at = $5 WHERE id IN (SELECT id FROM outbox WHERE user_id = $6 AND contact_id = $7 AND status = 'pending' AND next_attempt_at <= $8 AND id BETWEEN $9 AND $10 ORDER BY id LIMIT $11) RETURNING alert_id",
                    args![
                        status,
                        attempt,
                        next_at,
                        error,
                        sent_at,
                        &b.user_id,
                        &b.contact_id,
                        ms(b.cutoff),
                        b.first_page,
                        b.last_page,
                        chunk
                    ],
                )
                .await?;
            let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            let mut ids: Vec<i64> = rows
                .iter()
                .map(|r| r.get::<i64>("alert_id"))
                .collect::<Result<_, _>>()?;
            ids.sort_unstable();
            ids.dedup();
            let timeline: Vec<TimelineRow> = ids
                .into_iter()
                .map(|alert_id| TimelineRow {
                    alert_id,
                    at: ms(now),
                    actor: "system".to_owned(),
                    channel: b.channel.clone(),
                    kind: TimelineKind::Notification.as_str(),
                    message: note.clone(),
                })
                .collect();
            insert_timeline(B::SQL, &mut tx, &timeline).await?;
            recorded += u64::try_from(n).unwrap_or(0);
            if n == chunk {
                tx.commit().await?;
                continue;
            }
            // The last chunk: let the contact go, at its oldest page left. A
            // message that did not reach it opened no window.
            lock_gate(B::SQL, &mut tx, &b.user_id, &b.contact_id).await?;
            tx.execute(
                &format!(
                    "UPDATE contact_gates SET claim = NULL, claimed_until = NULL, due_at = {GATE_DUE_AT}, open_at = CASE WHEN $1 AND open_at > $2 THEN $2 ELSE open_at END WHERE user_id = $3 AND contact_id = $4 AND claim = $5"
                ),
                args![status != "sent", next_at, &b.user_id, &b.contact_id, &b.claim],
            )
            .await?;
            tx.commit().await?;
            return Ok(recorded);
        }
    }

    async fn renew_bundles(
        &self,
        claims: &[String],
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if claims.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for claim in claims {
            tx.execute(
                "UPDATE contact_gates SET claimed_until = $1 WHERE claim = $2",
                args![ms(until), claim],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn outbox_depth(&self) -> Result<i64, StoreError> {
        let r = self
            .reader()
            .await?
            .fetch_one(
                "SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'",
                args![],
            )
            .await?;
        Ok(r.get("n")?)
    }

    async fn steps(&self, alert_id: i64) -> Result<Vec<EscalationStep>, StoreError> {
        read_all(
            self,
            "SELECT id, alert_id, policy_id, level, round, due_at, status FROM escalation_steps WHERE alert_id = $1 ORDER BY id",
            args![alert_id],
            |r| {
            Ok(EscalationStep {
                id: r.get("id")?,
                alert_id: r.get("alert_id")?,
                policy_id: r.get("policy_id")?,
                level: r.get("level")?,
                round: r.get("round")?,
                due_at: r.time("due_at")?,
                status: r.get("status")?,
            })
        })
        .await
    }

    async fn deliveries(&self, alert_id: i64) -> Result<Vec<Delivery>, StoreError> {
        read_all(
            self,
            &format!("SELECT {DELIVERY_COLUMNS} FROM outbox WHERE alert_id = $1 ORDER BY id"),
            args![alert_id],
            delivery_from_row,
        )
        .await
    }

    async fn failed_deliveries(&self, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        read_all(
            self,
            &format!("SELECT {DELIVERY_COLUMNS} FROM outbox WHERE status = 'failed' ORDER BY id DESC LIMIT $1"),
            args![i64::from(limit)],
            delivery_from_row,
        )
        .await
    }

    async fn open_alerts_of_user(&self, user: &str, limit: u32) -> Result<Vec<Alert>, StoreError> {
        read_all(
            self,
            &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE status IN ('pending', 'accepted') AND (accepted_by = $1 OR EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = alerts.id AND o.user_id = $2)) ORDER BY id DESC LIMIT $3"),
            args![format!("user:{user}"), user, i64::from(limit)],
            alert_from_row,
        )
        .await
    }

    async fn create_maintenance(
        &self,
        m: &NewMaintenance,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<MaintenanceWindow, StoreError> {
        let mut tx = self.begin().await?;
        let row = tx
            .fetch_one(
                &format!("INSERT INTO maintenance_windows (target_kind, target_id, starts_at, ends_at, reason, created_by, created_at, title, public, fanout) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {WINDOW_COLUMNS}"),
                args![&m.target_kind, &m.target_id, ms(m.starts_at), ms(m.ends_at), &m.reason, &actor.name, ms(now), &m.title, i64::from(m.public)],
            )
            .await?;
        let w = window_from_row(&row)?;
        let audit = AuditRecord::new(
            actor,
            "maintenance",
            w.id.to_string(),
            "create",
            serde_json::json!({
                "target": {"after": format!("{}:{}", m.target_kind, m.target_id)},
                "starts_at": {"after": w.starts_at},
                "ends_at": {"after": w.ends_at},
                "reason": {"after": w.reason},
                "title": {"after": w.title},
                "public": {"after": w.public},
            }),
        );
        crate::audit::record(&mut tx, &audit, now).await?;
        crate::incident::bump(&mut tx, now).await?;
        tx.commit().await?;
        Ok(w)
    }

    async fn end_maintenance(
        &self,
        id: i64,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<MaintenanceWindow>, StoreError> {
        let mut tx = self.begin().await?;
        let row = tx
            .fetch_optional(
                &format!("UPDATE maintenance_windows SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL RETURNING {WINDOW_COLUMNS}"),
                args![ms(now), id],
            )
            .await?;
        let Some(row) = row else {
            drop(tx);
            return self.maintenance_window(id).await;
        };
        let w = window_from_row(&row)?;
        let audit = AuditRecord::new(
            actor,
            "maintenance",
            id.to_string(),
            "end",
            serde_json::json!({"ended_at": {"before": null, "after": w.ended_at}}),
        );
        crate::audit::record(&mut tx, &audit, now).await?;
        crate::incident::bump(&mut tx, now).await?;
        tx.commit().await?;
        Ok(Some(w))
    }

    async fn maintenance_window(&self, id: i64) -> Result<Option<MaintenanceWindow>, StoreError> {
        let rows = read_all(
            self,
            &format!("SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE id = $1"),
            args![id],
            window_from_row,
        )
        .await?;
        Ok(rows.into_iter().next())
    }

    async fn maintenance_windows(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaintenanceWindow>, StoreError> {
        read_all(
            self,
            &format!("SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE ended_at IS NULL AND ends_at > $1 ORDER BY starts_at, id"),
            args![ms(now)],
            window_from_row)
        .await
    }

    async fn count_by_status(&self) -> Result<Vec<(AlertStatus, i64)>, StoreError> {
        let rows = self
            .reader()
            .await?
            .fetch(
                "SELECT status, COUNT(*) AS n FROM alerts GROUP BY status",
                args![],
            )
            .await?;
        let mut out: Vec<(AlertStatus, i64)> = AlertStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for r in rows {
            let s: AlertStatus = r.parse("status")?;
            let n: i64 = r.get("n")?;
            if let Some(slot) = out.iter_mut().find(|(st, _)| *st == s) {
                slot.1 = n;
            }
        }
        Ok(out)
    }

    async fn open_alert_id(
        &self,
        source_id: &str,
        dedup_key: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = self
            .reader()
            .await?
            .fetch_optional(
                "SELECT id FROM alerts WHERE source_id = $1 AND dedup_key = $2 AND resolved_seq = 0",
                args![source_id, dedup_key],
            )
            .await?;
        Ok(row.map(|r| r.get::<i64>("id")).transpose()?)
    }

    async fn record_change(&self, c: NewChange) -> Result<ChangeEvent, StoreError> {
        let row = self
            .writer()
            .await?
            .fetch_one(
                &format!("INSERT INTO change_events (source_id, service_id, at, received_at, summary, origin, details, links) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {CHANGE_COLUMNS}"),
                args![
                    &c.source_id,
                    &c.service_id,
                    ms(c.at),
                    ms(c.received_at),
                    &c.summary,
                    &c.origin,
                    &c.details,
                    enc(&c.links)?
                ],
            )
            .await?;
        Ok(change_from_row(&row)?)
    }

    async fn heartbeat_ping(
        &self,
        id: &str,
        now: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> Result<PingResult, StoreError> {
        let mut tx = self.begin().await?;
        let before = tx
            .fetch_optional(
                &format!(
                    "SELECT state, alert_id FROM heartbeats WHERE id = $1{}",
                    B::SQL.for_update
                ),
                args![id],
            )
            .await?;
        tx.execute(
            "INSERT INTO heartbeats (id, state, last_ping_at, due_at, pings) VALUES ($1, 'healthy', $2, $3, 1) ON CONFLICT (id) DO UPDATE SET state = 'healthy', last_ping_at = excluded.last_ping_at, due_at = excluded.due_at, pings = heartbeats.pings + 1, alert_id = NULL, claim = NULL, claimed_until = NULL",
            args![id, ms(now), ms(due_at)],
        )
        .await?;
        tx.commit().await?;
        let previous: Option<String> = before.as_ref().map(|r| r.get("state")).transpose()?;
        let overdue_alert = match (&previous, &before) {
            (Some(st), Some(r)) if st == "overdue" => r.get::<Option<i64>>("alert_id")?,
            _ => None,
        };
        Ok(PingResult {
            previous,
            overdue_alert,
        })
    }

    async fn claim_overdue_heartbeats(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        claim: &str,
    ) -> Result<Vec<DueHeartbeat>, StoreError> {
        let rows = self
            .writer()
            .await?
            .fetch(
                &format!(
                    "UPDATE heartbeats SET claim = $1, claimed_until = $2 WHERE id IN (SELECT id FROM heartbeats WHERE state = 'healthy' AND due_at <= $3 AND (claim IS NULL OR claimed_until < $3){}) RETURNING id, last_ping_at, due_at",
                    B::SQL.skip_locked
                ),
                args![claim, ms(now + lease), ms(now)],
            )
            .await?;
        all(&rows, |r| {
            Ok(DueHeartbeat {
                id: r.get("id")?,
                last_ping_at: r.time("last_ping_at")?,
                due_at: r.time("due_at")?,
                claim: claim.to_owned(),
            })
        })
    }

    async fn mark_heartbeat_overdue(
        &self,
        due: &DueHeartbeat,
        alert_id: Option<i64>,
    ) -> Result<bool, StoreError> {
        let n = write_one(
            self,
            "UPDATE heartbeats SET state = 'overdue', alert_id = $1, claim = NULL, claimed_until = NULL WHERE id = $2 AND claim = $3 AND state = 'healthy'",
            args![alert_id, &due.id, &due.claim],
        )
        .await?;
        Ok(n == 1)
    }

    async fn heartbeat_rows(&self) -> Result<Vec<HeartbeatRow>, StoreError> {
        read_all(
            self,
            "SELECT id, state, last_ping_at, due_at, pings, alert_id FROM heartbeats ORDER BY id",
            args![],
            |r| {
                Ok(HeartbeatRow {
                    id: r.get("id")?,
                    state: r.get("state")?,
                    last_ping_at: r.time("last_ping_at")?,
                    due_at: r.time("due_at")?,
                    pings: r.get("pings")?,
                    alert_id: r.get("alert_id")?,
                })
            },
        )
        .await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError> {
        crate::audit::read(self, filter).await
    }

    async fn prune_audit(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        crate::audit::prune(self, before, limit).await
    }

    async fn create_token(
        &self,
        token: &NewToken,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<PersonalToken, StoreError> {
        crate::audit::create_token(self, token, actor, now).await
    }

    async fn token_with_digest(
        &self,
        id: &str,
    ) -> Result<Option<(PersonalToken, tocsin_domain::TokenDigest)>, StoreError> {
        crate::audit::token_with_digest(self, id).await
    }

    async fn token(&self, id: &str) -> Result<Option<PersonalToken>, StoreError> {
        crate::audit::token_by_id(self, id).await
    }

    async fn tokens(&self, user: Option<&str>) -> Result<Vec<PersonalToken>, StoreError> {
        crate::audit::tokens(self, user).await
    }

    async fn revoke_token(
        &self,
        id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<PersonalToken>, StoreError> {
        crate::audit::revoke_token(self, id, actor, now).await
    }

    async fn touch_token(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        crate::audit::touch_token(self, id, now).await
    }

    async fn alerts_changed_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        read_all(
            self,
            &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE updated_at >= $1 ORDER BY updated_at, id LIMIT $2"),
            args![ms(since), i64::from(limit)],
            alert_from_row,
        )
        .await
    }

    async fn set_password(
        &self,
        user: &str,
        hash: &str,
        keep: Option<&str>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        crate::session::set_password(self, user, hash, keep, actor, now).await
    }

    async fn password_hash(&self, user: &str) -> Result<Option<String>, StoreError> {
        crate::session::password_hash(self, user).await
    }

    async fn users_with_password(&self) -> Result<Vec<String>, StoreError> {
        crate::session::users_with_password(self).await
    }

    async fn create_session(
        &self,
        session: &crate::NewSession,
        now: DateTime<Utc>,
    ) -> Result<crate::Session, StoreError> {
        crate::session::create_session(self, session, now).await
    }

    async fn session_by_digest(
        &self,
        digest: &tocsin_domain::TokenDigest,
    ) -> Result<Option<crate::Session>, StoreError> {
        crate::session::session_by_digest(self, digest).await
    }

    async fn touch_session(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        crate::session::touch_session(self, id, now).await
    }

    async fn end_session(
        &self,
        user: &str,
        id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::Session>, StoreError> {
        crate::session::end_session(self, user, id, actor, now).await
    }

    async fn sessions(
        &self,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::Session>, StoreError> {
        crate::session::sessions(self, user, now).await
    }

    async fn record_sign_in_failure(
        &self,
        subjects: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        crate::session::record_sign_in_failure(self, subjects, now).await
    }

    async fn sign_in_failures(
        &self,
        subject: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        crate::session::sign_in_failures(self, subject, since).await
    }

    async fn clear_sign_in_failures(&self, subject: &str) -> Result<(), StoreError> {
        crate::session::clear_sign_in_failures(self, subject).await
    }

    async fn prune_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        crate::session::prune_sessions(self, before).await
    }

    async fn create_setup_link(
        &self,
        digest: &tocsin_domain::TokenDigest,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        crate::session::create_setup_link(self, digest, now).await
    }

    async fn setup_link_open(
        &self,
        digest: &tocsin_domain::TokenDigest,
    ) -> Result<bool, StoreError> {
        crate::session::setup_link_open(self, digest).await
    }

    async fn use_setup_link(
        &self,
        digest: &tocsin_domain::TokenDigest,
        user: &str,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        crate::session::use_setup_link(self, digest, user, hash, now).await
    }

    async fn changes(
        &self,
        service_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        read_all(
            self,
            &format!("SELECT {CHANGE_COLUMNS} FROM change_events WHERE ($1 IS NULL OR service_id = $1) ORDER BY at DESC, id DESC LIMIT $2"),
            args![service_id, i64::from(limit)],
            change_from_row)
        .await
    }

    async fn open_incident(
        &self,
        new: &NewIncident,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Incident, StoreError> {
        crate::incident::open(self, new, actor, now).await
    }

    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        crate::incident::get(self, id).await
    }

    async fn incident_events(&self, id: i64) -> Result<Vec<IncidentEvent>, StoreError> {
        crate::incident::events(self, id).await
    }

    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        crate::incident::list(self, filter).await
    }

    async fn post_incident_update(
        &self,
        id: i64,
        note: &IncidentNote,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError> {
        crate::incident::post_update(self, id, note, actor, now).await
    }

    async fn change_incident(
        &self,
        id: i64,
        change: &IncidentChange,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError> {
        crate::incident::change(self, id, change, actor, now).await
    }

    async fn resolve_incident(
        &self,
        id: i64,
        message: &str,
        public: bool,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError> {
        crate::incident::resolve(self, id, message, public, actor, now).await
    }

    async fn link_incident_alert(
        &self,
        id: i64,
        alert_id: i64,
        linked: bool,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError> {
        crate::incident::set_link(self, id, alert_id, linked, actor, now).await
    }

    async fn incidents_of_alert(&self, alert_id: i64) -> Result<Vec<i64>, StoreError> {
        crate::incident::of_alert(self, alert_id).await
    }

    async fn resolvable_incidents(&self, limit: u32) -> Result<Vec<i64>, StoreError> {
        crate::incident::resolvable(self, limit).await
    }

    async fn auto_resolve_incident(
        &self,
        id: i64,
        message: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        crate::incident::auto_resolve(self, id, message, actor, now).await
    }

    async fn status_version(&self) -> Result<StatusVersion, StoreError> {
        crate::incident::status_version(self).await
    }

    async fn service_spans(&self, since: DateTime<Utc>) -> Result<Vec<ServiceSpan>, StoreError> {
        crate::incident::spans(self, since).await
    }

    async fn public_incident_events(&self, limit: u32) -> Result<Vec<PublicEvent>, StoreError> {
        crate::incident::public_events(self, limit).await
    }

    async fn recent_incidents(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Incident, Vec<IncidentEvent>)>, StoreError> {
        crate::incident::recent(self, since).await
    }

    async fn incident_titles(&self, ids: &[i64]) -> Result<HashMap<i64, String>, StoreError> {
        crate::incident::titles(self, ids).await
    }

    async fn subscribe(
        &self,
        kind: &str,
        address: &str,
        services: &[String],
        confirmed: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(Subscriber, bool), StoreError> {
        crate::notice::subscribe(self, kind, address, services, confirmed, by, now).await
    }

    async fn subscriber(&self, id: i64) -> Result<Option<Subscriber>, StoreError> {
        crate::notice::subscriber(self, id).await
    }

    async fn confirm_subscriber(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscriber>, StoreError> {
        crate::notice::set_subscriber(self, id, true, now).await
    }

    async fn unsubscribe(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscriber>, StoreError> {
        crate::notice::set_subscriber(self, id, false, now).await
    }

    async fn subscribers(&self, confirmed: bool) -> Result<Vec<Subscriber>, StoreError> {
        crate::notice::subscribers(self, confirmed).await
    }

    async fn queue_notices(
        &self,
        notices: &[NewNotice],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        crate::notice::queue(self, notices, now).await
    }

    async fn fanout_pending(
        &self,
        limit: u32,
    ) -> Result<(Vec<IncidentEvent>, Vec<MaintenanceWindow>), StoreError> {
        crate::notice::fanout_pending(self, limit).await
    }

    async fn fan_out(
        &self,
        events: &[i64],
        windows: &[i64],
        notices: &[NewNotice],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        crate::notice::fan_out(self, events, windows, notices, now).await
    }

    async fn claim_notices(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
        claim: &str,
    ) -> Result<Vec<Notice>, StoreError> {
        crate::notice::claim(self, now, lease, limit, claim).await
    }

    async fn finish_notice(
        &self,
        notice: &Notice,
        outcome: &NoticeOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        crate::notice::finish(self, notice, outcome, now).await
    }

    async fn notices(&self, limit: u32) -> Result<Vec<NoticeRow>, StoreError> {
        crate::notice::list(self, limit).await
    }

    async fn claim_chart_fetch(
        &self,
        chart: &str,
        now: DateTime<Utc>,
        every: TimeDelta,
    ) -> Result<bool, StoreError> {
        crate::incident::claim_chart_fetch(self, chart, now, every).await
    }

    async fn store_chart(&self, chart: &str, body: &str) -> Result<(), StoreError> {
        crate::incident::store_chart(self, chart, body).await
    }

    async fn chart(&self, chart: &str) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
        crate::incident::chart(self, chart).await
    }

    async fn handoff_mark(&self, user: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        crate::notice::handoff_mark(self, user).await
    }

    async fn set_handoff_mark(&self, user: &str, upto: DateTime<Utc>) -> Result<(), StoreError> {
        crate::notice::set_handoff_mark(self, user, upto).await
    }
}
