//! The SQL of status page subscribers and of notices: messages that
//! belong to no alert (subscriber messages, incident announcements,
//! handoff notices), kept in a durable outbox of their own and sent with
//! retries like pages. A notice's `dedup` names its event and recipient,
//! so queueing it again (a worker retrying after a crash, another node)
//! queues nothing.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::db::{Backend, Conn, DbError, Row, Tx, args};
use crate::imp::{WINDOW_COLUMNS, enc, in_ids, ms, window_from_row};
use crate::incident::{EVENT_COLUMNS, event_row};
use crate::{IncidentEvent, MaintenanceWindow, StoreError};

/// A status page subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Subscriber {
    pub id: i64,
    /// `email` or `webhook`.
    pub kind: String,
    /// The email address or webhook URL.
    #[serde(skip)]
    pub address: String,
    /// Only these services (empty: every public service).
    pub services: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Email subscribers confirm first; webhooks are confirmed when made.
    pub confirmed_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A notice to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    /// Unique per event and recipient (`incident-event:12:subscriber:3`).
    pub dedup: String,
    /// `confirm`, `incident`, `maintenance`, `announce` or `handoff`.
    pub kind: String,
    /// The channel: `email`, `webhook`, `slack`, `push`, `sms`, `voice`.
    pub channel: String,
    pub address: String,
    pub subscriber_id: Option<i64>,
    pub subject: String,
    pub body: String,
    /// JSON for webhooks.
    pub payload: serde_json::Value,
    pub due_at: DateTime<Utc>,
}

/// A claimed notice.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub id: i64,
    pub kind: String,
    pub channel: String,
    pub address: String,
    pub subscriber_id: Option<i64>,
    pub subject: String,
    pub body: String,
    pub payload: serde_json::Value,
    pub attempts: i64,
    pub claim: String,
    pub created_at: DateTime<Utc>,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    Sent(String),
    Retry { at: DateTime<Utc>, error: String },
    Failed(String),
}

/// A notice as the admin page and tests read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoticeRow {
    pub id: i64,
    pub dedup: String,
    pub kind: String,
    pub channel: String,
    pub subscriber_id: Option<i64>,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_result: String,
}

const SUBSCRIBER_COLUMNS: &str =
    "id, kind, address, services, created_at, created_by, confirmed_at, ended_at";

fn subscriber_row(r: &Row) -> Result<Subscriber, DbError> {
    Ok(Subscriber {
        id: r.get("id")?,
        kind: r.get("kind")?,
        address: r.get("address")?,
        services: r.json("services")?,
        created_at: r.time("created_at")?,
        created_by: r.get("created_by")?,
        confirmed_at: r.time_opt("confirmed_at")?,
        ended_at: r.time_opt("ended_at")?,
    })
}

/// Subscribe; a live subscription of the same address takes the new
/// services instead. Returns it and whether it is new.
pub(crate) async fn subscribe<B: Backend>(
    b: &B,
    kind: &str,
    address: &str,
    services: &[String],
    confirmed: bool,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(Subscriber, bool), StoreError> {
    let mut tx = b.begin().await?;
    let existing = tx
        .fetch_optional(
            &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE kind = $1 AND address = $2 AND ended_at IS NULL"),
            args![kind, address],
        )
        .await?;
    let (row, new) = match existing {
        Some(r) => {
            let id: i64 = r.get("id")?;
            let row = tx
                .fetch_one(
                    &format!("UPDATE subscribers SET services = $1, confirmed_at = COALESCE(confirmed_at, $2) WHERE id = $3 RETURNING {SUBSCRIBER_COLUMNS}"),
                    args![enc(&services)?, confirmed.then(|| ms(now)), id],
                )
                .await?;
            (row, false)
        }
        None => {
            let row = tx
                .fetch_one(
                    &format!("INSERT INTO subscribers (kind, address, services, created_at, created_by, confirmed_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {SUBSCRIBER_COLUMNS}"),
                    args![kind, address, enc(&services)?, ms(now), by, confirmed.then(|| ms(now))],
                )
                .await?;
            (row, true)
        }
    };
    let s = subscriber_row(&row)?;
    tx.commit().await?;
    Ok((s, new))
}

pub(crate) async fn subscriber<B: Backend>(
    b: &B,
    id: i64,
) -> Result<Option<Subscriber>, StoreError> {
    let row = b
        .reader()
        .await?
        .fetch_optional(
            &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = $1"),
            args![id],
        )
        .await?;
    Ok(row.map(|r| subscriber_row(&r)).transpose()?)
}

/// Confirm (`confirm`) or end a subscription; `None` when there is none
/// live with this id.
pub(crate) async fn set_subscriber<B: Backend>(
    b: &B,
    id: i64,
    confirm: bool,
    now: DateTime<Utc>,
) -> Result<Option<Subscriber>, StoreError> {
    let sql = if confirm {
        format!(
            "UPDATE subscribers SET confirmed_at = COALESCE(confirmed_at, $1) WHERE id = $2 AND ended_at IS NULL RETURNING {SUBSCRIBER_COLUMNS}"
        )
    } else {
        format!(
            "UPDATE subscribers SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL RETURNING {SUBSCRIBER_COLUMNS}"
        )
    };
    let mut tx = b.begin().await?;
    let row = tx.fetch_optional(&sql, args![ms(now), id]).await?;
    let out = row.map(|r| subscriber_row(&r)).transpose()?;
    tx.commit().await?;
    Ok(out)
}

/// Live subscribers (confirmed ones only, when `confirmed`).
pub(crate) async fn subscribers<B: Backend>(
    b: &B,
    confirmed: bool,
) -> Result<Vec<Subscriber>, StoreError> {
    let cond = if confirmed {
        " AND confirmed_at IS NOT NULL"
    } else {
        ""
    };
    let rows = b
        .reader()
        .await?
        .fetch(
            &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE ended_at IS NULL{cond} ORDER BY id"),
            Vec::new(),
        )
        .await?;
    Ok(rows.iter().map(subscriber_row).collect::<Result<_, _>>()?)
}

async fn insert_notices(
    tx: &mut impl Conn,
    notices: &[NewNotice],
    now: DateTime<Utc>,
) -> Result<u64, DbError> {
    let mut n = 0;
    for x in notices {
        n += tx
            .execute(
                "INSERT INTO notices (dedup, kind, channel, address, subscriber_id, subject, body, payload, status, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $10) ON CONFLICT (dedup) DO NOTHING",
                args![
                    &x.dedup,
                    &x.kind,
                    &x.channel,
                    &x.address,
                    x.subscriber_id,
                    &x.subject,
                    &x.body,
                    enc(&x.payload)?,
                    ms(x.due_at),
                    ms(now)
                ],
            )
            .await?;
    }
    Ok(n)
}

/// Queue notices (those queued already are skipped). Returns how many
/// are new.
pub(crate) async fn queue<B: Backend>(
    b: &B,
    notices: &[NewNotice],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = b.begin().await?;
    let n = insert_notices(&mut tx, notices, now).await?;
    tx.commit().await?;
    Ok(n)
}

/// Incident updates and public maintenance windows whose subscribers and
/// announcements are still to be queued, oldest first.
pub(crate) async fn fanout_pending<B: Backend>(
    b: &B,
    limit: u32,
) -> Result<(Vec<IncidentEvent>, Vec<MaintenanceWindow>), StoreError> {
    let mut c = b.reader().await?;
    let events = c
        .fetch(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM incident_events WHERE fanout = 1 ORDER BY id LIMIT $1"
            ),
            args![i64::from(limit)],
        )
        .await?
        .iter()
        .map(event_row)
        .collect::<Result<Vec<_>, DbError>>()?;
    let windows = c
        .fetch(
            &format!("SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE fanout = 1 ORDER BY id LIMIT $1"),
            args![i64::from(limit)],
        )
        .await?
        .iter()
        .map(window_from_row)
        .collect::<Result<Vec<_>, DbError>>()?;
    Ok((events, windows))
}

/// Queue the notices of some fanned-out events and windows and mark them
/// done, in one transaction.
pub(crate) async fn fan_out<B: Backend>(
    b: &B,
    events: &[i64],
    windows: &[i64],
    notices: &[NewNotice],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let d = B::SQL;
    let mut tx = b.begin().await?;
    let n = insert_notices(&mut tx, notices, now).await?;
    if !events.is_empty() {
        tx.execute(
            &format!(
                "UPDATE incident_events SET fanout = 0 WHERE id IN ({})",
                in_ids(d, "$1")
            ),
            args![enc(&events)?],
        )
        .await?;
    }
    if !windows.is_empty() {
        tx.execute(
            &format!(
                "UPDATE maintenance_windows SET fanout = 0 WHERE id IN ({})",
                in_ids(d, "$1")
            ),
            args![enc(&windows)?],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// Claim due notices (or ones whose lease ran out), leased until
/// `now + lease`. On PostgreSQL rows another node claims are skipped.
pub(crate) async fn claim<B: Backend>(
    b: &B,
    now: DateTime<Utc>,
    lease: TimeDelta,
    limit: u32,
    claim: &str,
) -> Result<Vec<Notice>, StoreError> {
    let d = B::SQL;
    let mut tx = b.begin().await?;
    let ids: Vec<i64> = tx
        .fetch(
            &format!(
                "SELECT id FROM notices WHERE status = 'pending' AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY next_attempt_at LIMIT $2{}",
                d.skip_locked
            ),
            args![ms(now), i64::from(limit)],
        )
        .await?
        .iter()
        .map(|r| r.get("id"))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = tx
        .fetch(
            &format!("UPDATE notices SET claim = $1, claimed_until = $2 WHERE id IN ({}) RETURNING id, kind, channel, address, subscriber_id, subject, body, payload, attempts, claim, created_at", in_ids(d, "$3")),
            args![claim, ms(now + lease), enc(&ids)?],
        )
        .await?;
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(Notice {
                id: r.get("id")?,
                kind: r.get("kind")?,
                channel: r.get("channel")?,
                address: r.get("address")?,
                subscriber_id: r.get("subscriber_id")?,
                subject: r.get("subject")?,
                body: r.get("body")?,
                payload: r.json("payload")?,
                attempts: r.get("attempts")?,
                claim: r.get("claim")?,
                created_at: r.time("created_at")?,
            })
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    out.sort_by_key(|n| n.id);
    tx.commit().await?;
    Ok(out)
}

/// Record an attempt, if the claim still holds. `false`: it does not.
pub(crate) async fn finish<B: Backend>(
    b: &B,
    n: &Notice,
    outcome: &NoticeOutcome,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (status, next, sent, result) = match outcome {
        NoticeOutcome::Sent(r) => ("sent", now, Some(ms(now)), r.clone()),
        NoticeOutcome::Retry { at, error } => ("pending", *at, None, error.clone()),
        NoticeOutcome::Failed(e) => ("failed", now, None, e.clone()),
    };
    let mut tx = b.begin().await?;
    let changed = tx
        .execute(
            "UPDATE notices SET status = $1, attempts = attempts + 1, next_attempt_at = $2, sent_at = $3, last_result = $4, claim = NULL, claimed_until = NULL WHERE id = $5 AND claim = $6",
            args![status, ms(next), sent, result, n.id, &n.claim],
        )
        .await?;
    tx.commit().await?;
    Ok(changed > 0)
}

/// Notices, newest first (the admin page, tests).
pub(crate) async fn list<B: Backend>(b: &B, limit: u32) -> Result<Vec<NoticeRow>, StoreError> {
    let rows = b
        .reader()
        .await?
        .fetch(
            "SELECT id, dedup, kind, channel, subscriber_id, subject, status, attempts, next_attempt_at, sent_at, last_result FROM notices ORDER BY id DESC LIMIT $1",
            args![i64::from(limit)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(NoticeRow {
                id: r.get("id")?,
                dedup: r.get("dedup")?,
                kind: r.get("kind")?,
                channel: r.get("channel")?,
                subscriber_id: r.get("subscriber_id")?,
                subject: r.get("subject")?,
                status: r.get("status")?,
                attempts: r.get("attempts")?,
                next_attempt_at: r.time("next_attempt_at")?,
                sent_at: r.time_opt("sent_at")?,
                last_result: r.get("last_result")?,
            })
        })
        .collect::<Result<_, DbError>>()
        .map_err(StoreError::from)
}

/// Where a user's handoff watch got to (`None`: never looked).
pub(crate) async fn handoff_mark<B: Backend>(
    b: &B,
    user: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let row = b
        .reader()
        .await?
        .fetch_optional(
            "SELECT upto FROM handoff_marks WHERE user_id = $1",
            args![user],
        )
        .await?;
    Ok(row.map(|r| r.time("upto")).transpose()?)
}

/// Move a user's handoff watch forward to `upto` (never back).
pub(crate) async fn set_handoff_mark<B: Backend>(
    b: &B,
    user: &str,
    upto: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = b.begin().await?;
    tx.execute(
        "INSERT INTO handoff_marks (user_id, upto) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET upto = excluded.upto WHERE handoff_marks.upto < excluded.upto",
        args![user, ms(upto)],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
