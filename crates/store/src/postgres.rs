//! PostgreSQL: for several nodes sharing one database. Rows that a
//! transaction will change are locked with `FOR UPDATE`; a unique index on
//! open alerts makes racing inserts retry instead of duplicating.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::StoreError;
use crate::imp::impl_store;

pub struct PgStore {
    write: PgPool,
    read: PgPool,
    /// Ingest requests with many events (a storm's big groups) share half
    /// the pool; small ones (another team's page) never wait behind them.
    big_ingests: tokio::sync::Semaphore,
    /// Topics to tell the other nodes about (see [`PgStore::wake_others`]).
    wakes: std::sync::Arc<Wakes>,
}

/// Pending wake-ups for other nodes, sent by one task.
#[derive(Default)]
struct Wakes {
    escalate: std::sync::atomic::AtomicBool,
    dispatch: std::sync::atomic::AtomicBool,
    poke: std::sync::Arc<tokio::sync::Notify>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Let the wake-up task see the store is gone and end.
        self.wakes.poke.notify_one();
    }
}

/// How long wake-ups are gathered before one `NOTIFY` per topic goes out.
const WAKE_COALESCE: Duration = Duration::from_millis(5);

/// Requests with more events than this count as big.
const SMALL_REQUEST: usize = 10;

impl PgStore {
    /// Connect to `url` and apply migrations (serialised across nodes by an
    /// advisory lock).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            // Answer 503 quickly when the database is gone, so that
            // Alertmanager retries within its flush budget.
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let half = usize::try_from(max_connections.max(2) / 2).unwrap_or(1);
        let wakes = std::sync::Arc::new(Wakes::default());
        tokio::spawn(send_wakes(
            pool.clone(),
            wakes.poke.clone(),
            std::sync::Arc::downgrade(&wakes),
        ));
        Ok(PgStore {
            write: pool.clone(),
            read: pool,
            big_ingests: tokio::sync::Semaphore::new(half),
            wakes,
        })
    }
}

impl_store!(
    PgStore,
    sqlx::Postgres,
    backend = "postgres",
    for_update = " FOR UPDATE",
    lookup = "SELECT a.id, a.source_id, a.dedup_key, a.status, a.members, a.severity, a.priority, a.summary, a.details, a.links FROM jsonb_array_elements($1::jsonb) AS j(v) JOIN LATERAL (SELECT b.id FROM alerts b WHERE b.source_id = j.v ->> 0 AND b.dedup_key = j.v ->> 1 ORDER BY b.id DESC LIMIT 1) AS newest ON true JOIN alerts a ON a.id = newest.id FOR UPDATE OF a",
    reserve_ids = "SELECT nextval(pg_get_serial_sequence('alerts', 'id')) AS id FROM generate_series(1, $1::bigint) AS g(i) ORDER BY g.i",
    insert_alerts = "INSERT INTO alerts (id, source_id, dedup_key, status, severity, priority, summary, details, labels, links, members, policy_id, service_id, detected_at, created_at, updated_at, last_seen_at, seen_count, resolved_at, resolved_by) SELECT (j.v ->> 0)::bigint, j.v ->> 1, j.v ->> 2, j.v ->> 3, j.v ->> 4, j.v ->> 5, j.v ->> 6, j.v ->> 7, j.v ->> 8, j.v ->> 9, j.v ->> 10, j.v ->> 11, j.v ->> 12, (j.v ->> 13)::bigint, (j.v ->> 14)::bigint, (j.v ->> 15)::bigint, (j.v ->> 16)::bigint, (j.v ->> 17)::bigint, (j.v ->> 18)::bigint, j.v ->> 19 FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    update_alerts = "UPDATE alerts SET status = j.v ->> 1, severity = COALESCE(j.v ->> 2, alerts.severity), priority = COALESCE(j.v ->> 3, alerts.priority), summary = COALESCE(j.v ->> 4, alerts.summary), details = COALESCE(j.v ->> 5, alerts.details), labels = COALESCE(j.v ->> 6, alerts.labels), links = COALESCE(j.v ->> 7, alerts.links), members = COALESCE(j.v ->> 8, alerts.members), updated_at = COALESCE((j.v ->> 9)::bigint, alerts.updated_at), last_seen_at = (j.v ->> 10)::bigint, seen_count = alerts.seen_count + (j.v ->> 11)::bigint, resolved_at = COALESCE((j.v ->> 12)::bigint, alerts.resolved_at), resolved_by = COALESCE(j.v ->> 13, alerts.resolved_by) FROM jsonb_array_elements($1::jsonb) AS j(v) WHERE alerts.id = (j.v ->> 0)::bigint",
    insert_labels = "INSERT INTO alert_labels (alert_id, name, value) SELECT (j.v ->> 0)::bigint, j.v ->> 1, j.v ->> 2 FROM jsonb_array_elements($1::jsonb) AS j(v) ON CONFLICT DO NOTHING",
    insert_timeline = "INSERT INTO alert_timeline (alert_id, at, actor, channel, kind, message) SELECT (j.v ->> 'alert_id')::bigint, (j.v ->> 'at')::bigint, j.v ->> 'actor', j.v ->> 'channel', j.v ->> 'kind', j.v ->> 'message' FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    insert_steps = "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) SELECT (j.v ->> 0)::bigint, j.v ->> 1, 0, 0, (j.v ->> 2)::bigint, 'pending', (j.v ->> 3)::bigint FROM jsonb_array_elements($1::jsonb) AS j(v)",
    skip_locked = " FOR UPDATE SKIP LOCKED",
    ids_open = "SELECT (jsonb_array_elements_text(",
    ids_close = "::jsonb))::bigint",
    insert_outbox = "INSERT INTO outbox (alert_id, step_id, user_id, contact_id, channel, address, due_at, status, next_attempt_at, created_at) SELECT (j.v ->> 0)::bigint, (j.v ->> 1)::bigint, j.v ->> 2, j.v ->> 3, j.v ->> 4, j.v ->> 5, (j.v ->> 6)::bigint, 'pending', (j.v ->> 6)::bigint, (j.v ->> 7)::bigint FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    insert_next_steps = "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) SELECT (j.v ->> 0)::bigint, j.v ->> 1, (j.v ->> 2)::bigint, (j.v ->> 3)::bigint, (j.v ->> 4)::bigint, 'pending', (j.v ->> 5)::bigint FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    upsert_gates = "INSERT INTO contact_gates (user_id, contact_id, open_at, due_at) SELECT j.v ->> 0, j.v ->> 1, 0, (j.v ->> 2)::bigint FROM jsonb_array_elements($1::jsonb) AS j(v) ON CONFLICT (user_id, contact_id) DO UPDATE SET due_at = CASE WHEN contact_gates.due_at IS NULL OR excluded.due_at < contact_gates.due_at THEN excluded.due_at ELSE contact_gates.due_at END"
);

/// The channels nodes wake each other on.
const WAKE_CHANNELS: [&str; 2] = ["tocsin_escalate", "tocsin_dispatch"];

/// Send the wake-ups other nodes are owed: after a commit queued work, one
/// `NOTIFY` per topic for everything committed in the last few
/// milliseconds. Not inside the transactions that queue the work: PostgreSQL
/// serialises the commits of transactions that `NOTIFY`, which would make
/// every ingest request wait for every other.
async fn send_wakes(
    pool: PgPool,
    poke: std::sync::Arc<tokio::sync::Notify>,
    wakes: std::sync::Weak<Wakes>,
) {
    use std::sync::atomic::Ordering;
    loop {
        poke.notified().await;
        tokio::time::sleep(WAKE_COALESCE).await;
        let Some(w) = wakes.upgrade() else { return };
        let now = crate::imp::ms(chrono::Utc::now()).to_string();
        for (flag, channel) in [
            (&w.escalate, "tocsin_escalate"),
            (&w.dispatch, "tocsin_dispatch"),
        ] {
            if flag.swap(false, Ordering::AcqRel) {
                let sent = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(channel)
                    .bind(&now)
                    .execute(&pool)
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "could not wake the other nodes; they poll");
                }
            }
        }
    }
}

impl PgStore {
    /// Tell the other nodes that work was queued (`NOTIFY` soon after).
    fn wake_others(&self, topic: crate::WakeTopic) {
        use std::sync::atomic::Ordering;
        let flag = match topic {
            crate::WakeTopic::Escalate => &self.wakes.escalate,
            crate::WakeTopic::Dispatch => &self.wakes.dispatch,
        };
        flag.store(true, Ordering::Release);
        self.wakes.poke.notify_one();
    }

    async fn listen_impl(
        &self,
    ) -> Result<Option<tokio::sync::mpsc::Receiver<crate::Wake>>, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.read).await?;
        listener.listen_all(WAKE_CHANNELS).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                // `recv` reconnects (and listens again) after a lost
                // connection; it fails only when it cannot.
                let n = match listener.recv().await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "wake-ups from other nodes: connection lost; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let topic = match n.channel() {
                    "tocsin_escalate" => crate::WakeTopic::Escalate,
                    _ => crate::WakeTopic::Dispatch,
                };
                let sent_at = n
                    .payload()
                    .parse::<i64>()
                    .map(crate::imp::from_ms)
                    .unwrap_or_else(|_| chrono::Utc::now());
                // A full channel already holds a wake-up: dropping this one
                // loses nothing.
                match tx.try_send(crate::Wake { topic, sent_at }) {
                    Ok(()) | Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        });
        Ok(Some(rx))
    }

    async fn ingest_impl(
        &self,
        source_id: &str,
        actor: &crate::Actor,
        events: Vec<crate::RoutedEvent>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::IngestResult>, StoreError> {
        let _turn = if events.len() > SMALL_REQUEST {
            Some(self.big_ingests.acquire().await.map_err(|_| {
                StoreError::Unavailable("the PostgreSQL store is shutting down".into())
            })?)
        } else {
            None
        };
        let mut attempt = 0;
        loop {
            let run = async {
                let mut tx = self.write.begin().await?;
                let job = crate::plan::JobRef {
                    source_id,
                    actor,
                    events: &events,
                    now,
                };
                let mut r = Self::ingest_batch(&mut tx, std::slice::from_ref(&job)).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(r.pop().unwrap_or_default())
            };
            let run = async {
                let r = run.await?;
                if r.iter().any(|x| x.outcome == crate::IngestOutcome::Created) {
                    self.wake_others(crate::WakeTopic::Escalate);
                }
                Ok::<_, sqlx::Error>(r)
            };
            match run.await {
                // Two nodes (or requests) raced to open the same alert: the
                // loser retries and then sees the winner's alert.
                Err(e) if StoreError::is_unique_violation(&e) && attempt < 3 => attempt += 1,
                other => return other.map_err(Into::into),
            }
        }
    }
}
