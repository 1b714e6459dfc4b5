//! PostgreSQL: for several nodes sharing one database. Rows that a
//! transaction will change are locked with `FOR UPDATE`; a unique index on
//! open alerts makes racing inserts retry instead of duplicating.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};

use crate::db::{Backend, Conn, DbError, Row, Tx, Value};
use crate::dialect::{Dialect, POSTGRES};
use crate::group::{Begin, GroupCommit, PlannerSlot, SMALL_REQUEST};
use crate::{Actor, IngestResult, RoutedEvent, StoreError, Wake, WakeTopic};

pub struct PgStore {
    write: PgPool,
    read: PgPool,
    /// Ingest: group commit, as on SQLite (requests waiting at the same
    /// moment share one transaction). Writers of their own for one-event
    /// requests, for small ones and for big ones (a storm's big groups), so
    /// that a small request never waits behind a batch of big ones.
    single_ingests: Writers,
    small_ingests: Writers,
    big_ingests: Writers,
    planner: PlannerSlot,
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

/// Group-commit writers of each kind: requests are handed to them in turn,
/// so a few transactions run at once (PostgreSQL runs them in parallel).
/// One-event requests cost little a row and several statements a batch:
/// one writer, whose batches grow under load, did 3,700 requests/s at 16
/// connections where two did 3,400 and four 2,800 (bench/README.md).
/// Bigger requests spend more a row, where two transactions at once win.
const SINGLE_WRITERS: usize = 1;
const WRITERS: usize = 2;

/// Writers that take requests in turn.
struct Writers {
    writers: Vec<GroupCommit>,
    next: std::sync::atomic::AtomicUsize,
}

impl Writers {
    fn start(pool: &PgPool, planner: &PlannerSlot, n: usize) -> Self {
        Writers {
            writers: (0..n)
                .map(|_| GroupCommit::start(PgWriter(pool.clone()), planner.clone()))
                .collect(),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn next(&self) -> Result<&GroupCommit, StoreError> {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.writers
            .get(i % self.writers.len().max(1))
            .ok_or_else(|| StoreError::Internal("no ingest writer".into()))
    }
}

/// How long wake-ups are gathered before one `NOTIFY` per topic goes out.
const WAKE_COALESCE: Duration = Duration::from_millis(5);

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
        let wakes = std::sync::Arc::new(Wakes::default());
        tokio::spawn(send_wakes(
            pool.clone(),
            wakes.poke.clone(),
            std::sync::Arc::downgrade(&wakes),
        ));
        let planner = PlannerSlot::default();
        Ok(PgStore {
            write: pool.clone(),
            single_ingests: Writers::start(&pool, &planner, SINGLE_WRITERS),
            small_ingests: Writers::start(&pool, &planner, WRITERS),
            big_ingests: Writers::start(&pool, &planner, WRITERS),
            planner,
            read: pool,
            wakes,
        })
    }
}

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

#[async_trait]
impl Backend for PgStore {
    type Conn = PgConn;
    type Tx = PgTx;
    const NAME: &'static str = "postgres";
    const SQL: &'static Dialect = &POSTGRES;

    async fn reader(&self) -> Result<PgConn, DbError> {
        Ok(Pg(self.read.acquire().await?))
    }

    async fn writer(&self) -> Result<PgConn, DbError> {
        Ok(Pg(self.write.acquire().await?))
    }

    async fn begin(&self) -> Result<PgTx, DbError> {
        Ok(Pg(self.write.begin().await?))
    }

    fn planner(&self) -> &PlannerSlot {
        &self.planner
    }

    /// Tell the other nodes that work was queued (`NOTIFY` soon after).
    fn wake_others(&self, topic: WakeTopic) {
        use std::sync::atomic::Ordering;
        let flag = match topic {
            crate::WakeTopic::Escalate => &self.wakes.escalate,
            crate::WakeTopic::Dispatch => &self.wakes.dispatch,
        };
        flag.store(true, Ordering::Release);
        self.wakes.poke.notify_one();
    }

    async fn listen(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Wake>>, StoreError> {
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

    async fn ingest(
        &self,
        source_id: &str,
        actor: &Actor,
        events: Vec<RoutedEvent>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<IngestResult>, StoreError> {
        let writer = match events.len() {
            0 | 1 => self.single_ingests.next()?,
            n if n <= SMALL_REQUEST => self.small_ingests.next()?,
            _ => self.big_ingests.next()?,
        };
        let r = writer.submit(source_id, actor, events, now).await?;
        // Maybe another node's escalation worker is free to look.
        if r.iter().any(IngestResult::awaits_escalation) {
            self.wake_others(WakeTopic::Escalate);
        }
        if r.iter().any(|x| x.first_level.is_some_and(|n| n > 0)) {
            self.wake_others(WakeTopic::Dispatch);
        }
        Ok(r)
    }
}

/// The pool, as group commit begins its transactions.
struct PgWriter(PgPool);

#[async_trait]
impl Begin for PgWriter {
    type Tx = PgTx;
    const SQL: &'static Dialect = &POSTGRES;

    async fn begin(&self) -> Result<PgTx, DbError> {
        Ok(Pg(self.0.begin().await?))
    }
}

/// A PostgreSQL connection: pooled (`PgConn`) or in a transaction (`PgTx`,
/// rolled back when dropped uncommitted).
pub(crate) struct Pg<C>(C);

pub(crate) type PgConn = Pg<sqlx::pool::PoolConnection<sqlx::Postgres>>;
pub(crate) type PgTx = Pg<sqlx::Transaction<'static, sqlx::Postgres>>;

fn query(
    sql: &str,
    args: Vec<Value>,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in args {
        q = match a {
            Value::Int(x) => q.bind(x),
            Value::Text(x) => q.bind(x),
            Value::Bool(x) => q.bind(x),
            Value::NullInt => q.bind(None::<i64>),
            Value::NullText => q.bind(None::<String>),
        };
    }
    q
}

/// PostgreSQL rows as plain values (Tocsin's columns are `BIGINT`, `TEXT`
/// and, from comparisons, `BOOLEAN`).
fn rows(rows: Vec<PgRow>) -> Result<Vec<Row>, DbError> {
    use sqlx::{Column, TypeInfo, ValueRef};
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let names: std::sync::Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut values = Vec::with_capacity(names.len());
        for (i, c) in r.columns().iter().enumerate() {
            let ty = c.type_info().name().to_owned();
            let null = r.try_get_raw(i)?.is_null();
            values.push(match (ty.as_str(), null) {
                ("INT8" | "INT4" | "INT2", true) => Value::NullInt,
                (_, true) => Value::NullText,
                ("INT8", false) => Value::Int(r.try_get::<i64, _>(i)?),
                ("INT4", false) => Value::Int(i64::from(r.try_get::<i32, _>(i)?)),
                ("INT2", false) => Value::Int(i64::from(r.try_get::<i16, _>(i)?)),
                ("BOOL", false) => Value::Bool(r.try_get::<bool, _>(i)?),
                ("TEXT" | "VARCHAR" | "NAME" | "BPCHAR", false) => {
                    Value::Text(r.try_get::<String, _>(i)?)
                }
                (other, false) => {
                    return Err(DbError::Decode(format!(
                        "column `{}` has type {other}",
                        c.name()
                    )));
                }
            });
        }
        out.push(Row::new(names.clone(), values));
    }
    Ok(out)
}

#[async_trait]
impl<C> Conn for Pg<C>
where
    C: std::ops::DerefMut<Target = sqlx::PgConnection> + Send,
{
    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<u64, DbError> {
        crate::db::check_text(&args)?;
        Ok(query(sql, args)
            .execute(&mut *self.0)
            .await?
            .rows_affected())
    }

    async fn fetch(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>, DbError> {
        crate::db::check_text(&args)?;
        rows(query(sql, args).fetch_all(&mut *self.0).await?)
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn commit(self) -> Result<(), DbError> {
        Ok(self.0.commit().await?)
    }
}
