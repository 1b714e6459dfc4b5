//! SQLite: the default. One file, WAL mode, one writer connection (SQLite
//! serialises writers anyway; one connection avoids SQLITE_BUSY) and a small
//! pool of readers.
//!
//! Ingest uses group commit: one writer task takes every request waiting at
//! that moment, applies each inside its own savepoint, commits once and only
//! then answers each. Under load this turns many small commits (each writing
//! every touched page to the WAL) into one.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::imp::impl_store;
use crate::plan::JobRef;
use crate::{Actor, IngestResult, RoutedEvent, StoreError};

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    jobs: mpsc::Sender<Job>,
}

/// Most requests one group commit takes.
const MAX_BATCH: usize = 128;

/// Most events one group commit takes (a request's own events always fit):
/// a batch holds SQLite's one writer, so an alert storm in big requests must
/// not keep the workers (another team's page) waiting for long.
const MAX_BATCH_EVENTS: usize = 300;

/// Requests with at most this many events go first in a batch.
const SMALL_REQUEST: usize = 10;

struct Job {
    source_id: String,
    actor: Actor,
    events: Vec<RoutedEvent>,
    now: DateTime<Utc>,
    reply: oneshot::Sender<Result<Vec<IngestResult>, StoreError>>,
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url` (`sqlite://FILE`)
    /// and apply migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL keeps every committed transaction across a
            // process crash; only a power loss may drop the last ones.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts.clone())
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(_) | sqlx::Error::Io(_) => StoreError::Config(format!(
                    "cannot open SQLite database {url}: {e}; check that the directory exists and is writable"
                )),
                other => other.into(),
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let read = if url.contains(":memory:") {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(opts.read_only(true))
                .await?
        };
        let (jobs, rx) = mpsc::channel(1024);
        tokio::spawn(run_writer(write.clone(), rx));
        Ok(SqliteStore { write, read, jobs })
    }

    /// One node: nobody else to wake.
    fn wake_others(&self, _topic: crate::WakeTopic) {}

    async fn listen_impl(&self) -> Result<Option<mpsc::Receiver<crate::Wake>>, StoreError> {
        Ok(None)
    }

    async fn ingest_impl(
        &self,
        source_id: &str,
        actor: &Actor,
        events: Vec<RoutedEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<IngestResult>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            source_id: source_id.to_owned(),
            actor: actor.clone(),
            events,
            now,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer dropped the request".into()))?
    }
}

/// The group-commit loop: runs until every sender is gone.
///
/// Each batch takes what is waiting, fairly: first the oldest request of
/// every source and every small request, then the rest in arrival order, up to
/// [`MAX_BATCH`] requests and [`MAX_BATCH_EVENTS`] events. So one source's
/// storm of big requests delays another source's alert by one batch at
/// most, not by the whole queue.
async fn run_writer(pool: SqlitePool, mut rx: mpsc::Receiver<Job>) {
    let mut waiting: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(j) => waiting.push_back(j),
                None => return,
            }
        }
        while let Ok(j) = rx.try_recv() {
            waiting.push_back(j);
        }
        commit_batch(&pool, take_batch(&mut waiting)).await;
    }
}

/// The next batch from `waiting` (never empty when `waiting` is not).
fn take_batch(waiting: &mut std::collections::VecDeque<Job>) -> Vec<Job> {
    let mut picked = vec![false; waiting.len()];
    let mut events = 0usize;
    let mut count = 0usize;
    let mut seen = std::collections::HashSet::new();
    // The oldest request of each source, then everything in order.
    for first_pass in [true, false] {
        for (i, j) in waiting.iter().enumerate() {
            if count >= MAX_BATCH {
                break;
            }
            let already = picked.get(i).copied().unwrap_or(true);
            // First pass: the oldest request of each source, and every
            // small one (another team's page in a storm of big groups from
            // the same Alertmanager).
            let small = j.events.len() <= SMALL_REQUEST;
            if already || (first_pass && !small && !seen.insert(j.source_id.as_str())) {
                continue;
            }
            // A request's own events always fit into an empty batch.
            if count > 0 && events + j.events.len() > MAX_BATCH_EVENTS {
                continue;
            }
            if let Some(p) = picked.get_mut(i) {
                *p = true;
            }
            events += j.events.len();
            count += 1;
        }
    }
    let mut batch = Vec::with_capacity(count);
    let mut rest = std::collections::VecDeque::with_capacity(waiting.len() - count);
    for (j, p) in waiting.drain(..).zip(picked) {
        if p {
            batch.push(j);
        } else {
            rest.push_back(j);
        }
    }
    *waiting = rest;
    batch
}

async fn commit_batch(pool: &SqlitePool, jobs: Vec<Job>) {
    // The whole batch in one transaction. If any job fails, roll back and
    // run each job in a transaction of its own, so that one bad request
    // cannot fail the others.
    match run_jobs(pool, &jobs).await {
        Ok(results) => {
            for (job, r) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(Ok(r));
            }
        }
        Err(_) if jobs.len() > 1 => {
            for job in jobs {
                let r = run_jobs(pool, std::slice::from_ref(&job)).await;
                let _ = job.reply.send(
                    r.map(|mut v| v.pop().unwrap_or_default())
                        .map_err(StoreError::from),
                );
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job
                    .reply
                    .send(Err(StoreError::from_message(&e, &e.to_string())));
            }
        }
    }
}

/// Apply jobs in one transaction; their results, in order, once committed.
async fn run_jobs(pool: &SqlitePool, jobs: &[Job]) -> Result<Vec<Vec<IngestResult>>, sqlx::Error> {
    let refs: Vec<JobRef<'_>> = jobs
        .iter()
        .map(|j| JobRef {
            source_id: &j.source_id,
            actor: &j.actor,
            events: &j.events,
            now: j.now,
        })
        .collect();
    let mut tx = pool.begin().await?;
    let results = SqliteStore::ingest_batch(&mut tx, &refs).await?;
    tx.commit().await?;
    Ok(results)
}

impl_store!(
    SqliteStore,
    sqlx::Sqlite,
    backend = "sqlite",
    for_update = "",
    lookup = "SELECT a.id, a.source_id, a.dedup_key, a.status, a.members, a.severity, a.priority, a.summary, a.details, a.links FROM alerts a WHERE a.id IN (SELECT (SELECT MAX(b.id) FROM alerts b WHERE b.source_id = j.value ->> 0 AND b.dedup_key = j.value ->> 1) FROM json_each($1) AS j)",
    reserve_ids = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'alerts'), 0) + i AS id FROM n ORDER BY i",
    insert_alerts = "INSERT INTO alerts (id, source_id, dedup_key, status, severity, priority, summary, details, labels, links, members, policy_id, service_id, detected_at, created_at, updated_at, last_seen_at, seen_count, resolved_at, resolved_by) SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 6, j.value ->> 7, j.value ->> 8, j.value ->> 9, j.value ->> 10, j.value ->> 11, j.value ->> 12, j.value ->> 13, j.value ->> 14, j.value ->> 15, j.value ->> 16, j.value ->> 17, j.value ->> 18, j.value ->> 19 FROM json_each($1) AS j ORDER BY j.key",
    update_alerts = "UPDATE alerts SET status = j.value ->> 1, severity = COALESCE(j.value ->> 2, severity), priority = COALESCE(j.value ->> 3, priority), summary = COALESCE(j.value ->> 4, summary), details = COALESCE(j.value ->> 5, details), labels = COALESCE(j.value ->> 6, labels), links = COALESCE(j.value ->> 7, links), members = COALESCE(j.value ->> 8, members), updated_at = COALESCE(j.value ->> 9, updated_at), last_seen_at = j.value ->> 10, seen_count = seen_count + (j.value ->> 11), resolved_at = COALESCE(j.value ->> 12, resolved_at), resolved_by = COALESCE(j.value ->> 13, resolved_by) FROM json_each($1) AS j WHERE alerts.id = j.value ->> 0",
    insert_labels = "INSERT INTO alert_labels (alert_id, name, value) SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each($1) AS j WHERE true ON CONFLICT DO NOTHING",
    insert_timeline = "INSERT INTO alert_timeline (alert_id, at, actor, channel, kind, message) SELECT j.value ->> 'alert_id', j.value ->> 'at', j.value ->> 'actor', j.value ->> 'channel', j.value ->> 'kind', j.value ->> 'message' FROM json_each($1) AS j ORDER BY j.key",
    insert_steps = "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) SELECT j.value ->> 0, j.value ->> 1, 0, 0, j.value ->> 2, 'pending', j.value ->> 3 FROM json_each($1) AS j",
    skip_locked = "",
    ids_open = "SELECT value FROM json_each(",
    ids_close = ")",
    insert_outbox = "INSERT INTO outbox (alert_id, step_id, user_id, contact_id, channel, address, due_at, status, next_attempt_at, created_at) SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 6, 'pending', j.value ->> 6, j.value ->> 7 FROM json_each($1) AS j ORDER BY j.key",
    insert_next_steps = "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, 'pending', j.value ->> 5 FROM json_each($1) AS j ORDER BY j.key",
    upsert_gates = "INSERT INTO contact_gates (user_id, contact_id, open_at, due_at) SELECT j.value ->> 0, j.value ->> 1, 0, j.value ->> 2 FROM json_each($1) AS j WHERE true ON CONFLICT (user_id, contact_id) DO UPDATE SET due_at = CASE WHEN contact_gates.due_at IS NULL OR excluded.due_at < contact_gates.due_at THEN excluded.due_at ELSE contact_gates.due_at END"
);
