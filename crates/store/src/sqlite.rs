//! SQLite: the default. One file in WAL mode, one writer connection (SQLite
//! serialises writers anyway; one connection never meets `SQLITE_BUSY`) and
//! a few read-only connections.
//!
//! Writes run on the calling task itself through rusqlite, without a
//! hand-off to another thread per statement: in WAL mode with
//! `synchronous=NORMAL` a statement and a commit take microseconds, so a
//! thread round trip would cost more than the work. Reads, which may scan
//! many rows, run on a blocking thread.
//!
//! Ingest uses group commit (`group.rs`): under load many small commits,
//! each writing every touched page to the WAL, become one.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::OpenFlags;
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore, mpsc};

use crate::db::{Backend, Conn, DbError, Row, Tx, Value};
use crate::dialect::{Dialect, SQLITE};
use crate::group::{Begin, GroupCommit, PlannerSlot};
use crate::{Actor, IngestResult, RoutedEvent, StoreError, Wake, WakeTopic};

pub struct SqliteStore {
    writer: Arc<Mutex<rusqlite::Connection>>,
    readers: Arc<Readers>,
    ingests: GroupCommit,
    planner: PlannerSlot,
    /// Dropped with the store: the checkpointer thread then ends.
    _checkpointer: std::sync::mpsc::Sender<()>,
}

/// Read-only connections, each used by one task at a time.
struct Readers {
    free: std::sync::Mutex<Vec<rusqlite::Connection>>,
    permits: Semaphore,
}

/// How many read-only connections a store opens.
const READERS: usize = 4;

/// Prepared statements each connection keeps (every statement of the store
/// fits, so none is prepared twice).
const STATEMENT_CACHE: usize = 256;

/// WAL pages after which a commit checkpoints (4 KiB each): a backstop for
/// the [`checkpointer`].
const WAL_CHECKPOINT_PAGES: i64 = 10_000;

/// How often the checkpointer runs. Often: the database file's fsync at
/// the end of a checkpoint costs with the pages it copied, and a long wait
/// lets the WAL reach the writer's backstop (measured at 16 connections:
/// ingest p99 18.9 ms at 100 ms, 11.7 ms at 50 ms, 8.3 ms at 20 ms). An
/// idle checkpoint finds nothing to copy and costs microseconds.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);

impl SqliteStore {
    /// Open (creating if missing) the database at `url` (`sqlite://FILE`)
    /// and apply migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let path: PathBuf = opts.get_filename().to_path_buf();
        if url.contains(":memory:") || path.as_os_str().is_empty() {
            return Err(StoreError::Config(format!(
                "{url}: an in-memory SQLite database is not supported (each connection would see its own); name a file, such as sqlite:///var/lib/tocsin/tocsin.db"
            )));
        }
        let cannot_open = |e: &dyn std::fmt::Display| {
            StoreError::Config(format!(
                "cannot open SQLite database {url}: {e}; check that the directory exists and is writable"
            ))
        };
        // Migrations run through sqlx's migrator (its bookkeeping table is
        // the one earlier versions wrote); then the connection closes.
        {
            use sqlx::ConnectOptions;
            let mut c = opts.connect().await.map_err(|e| cannot_open(&e))?;
            sqlx::migrate!("./migrations/sqlite")
                .run(&mut c)
                .await
                .map_err(|e| StoreError::Migration(e.to_string()))?;
            sqlx::Connection::close(c).await.ok();
        }
        let writer = open(&path, false).map_err(|e| cannot_open(&e))?;
        let mut free = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            free.push(open(&path, true).map_err(|e| cannot_open(&e))?);
        }
        let checkpoints = open(&path, false).map_err(|e| cannot_open(&e))?;
        let (stop, stopped) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("tocsin-sqlite-checkpoint".into())
            .spawn(move || checkpointer(&checkpoints, &stopped))
            .map_err(|e| StoreError::Internal(format!("cannot start the checkpointer: {e}")))?;
        let writer = Arc::new(Mutex::new(writer));
        let readers = Arc::new(Readers {
            free: std::sync::Mutex::new(free),
            permits: Semaphore::new(READERS),
        });
        let planner = PlannerSlot::default();
        let ingests = GroupCommit::start(SqliteWriter(writer.clone()), planner.clone());
        Ok(SqliteStore {
            writer,
            readers,
            ingests,
            planner,
            _checkpointer: stop,
        })
    }
}

/// Copy the WAL into the database every [`CHECKPOINT_EVERY`], on a thread
/// and connection of its own, until `stop` is dropped. A passive checkpoint
/// never blocks the writer, so the copying and the database file's fsync
/// leave the writer's path (measured: commits that checkpointed took about
/// 45 ms and held every ingest request that long). It completes whenever it
/// catches up, and the writer then starts the WAL from its beginning again;
/// under load that never lets up, the writer's own checkpoint after
/// [`WAL_CHECKPOINT_PAGES`] is the backstop and finds little left to copy.
fn checkpointer(c: &rusqlite::Connection, stop: &std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "SQLite checkpoint failed; the next one retries");
        }
    }
}

/// Open one connection with Tocsin's settings.
fn open(path: &std::path::Path, read_only: bool) -> Result<rusqlite::Connection, rusqlite::Error> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let c = rusqlite::Connection::open_with_flags(path, flags)?;
    c.busy_timeout(Duration::from_secs(5))?;
    if !read_only {
        c.pragma_update(None, "journal_mode", "wal")?;
        c.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
        // In WAL mode NORMAL keeps every committed transaction across a
        // process crash; only a power loss may drop the last ones.
        c.pragma_update(None, "synchronous", "normal")?;
    }
    c.pragma_update(None, "foreign_keys", "on")?;
    // A statement keeps the plan it was prepared with whatever its bound
    // values. Without this SQLite prepares anew, at every run, a statement
    // whose plan a bound value may change (`LIMIT $n` is one): measured,
    // the step claim took 226 µs a run instead of about 40.
    c.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    c.pragma_update(None, "temp_store", "memory")?;
    c.pragma_update(None, "cache_size", -16000)?;
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(c)
}

/// Bind `args` to a prepared statement by placeholder name: `$2` takes the
/// second argument wherever it appears (SQLite numbers parameters in the
/// order they first appear, not by their digits).
fn bind(st: &mut rusqlite::CachedStatement<'_>, args: &[Value]) -> Result<(), DbError> {
    crate::db::check_text(args)?;
    for i in 1..=st.parameter_count() {
        let name = st.parameter_name(i).unwrap_or_default();
        let n: usize = name
            .trim_start_matches(['$', '?'])
            .parse()
            .map_err(|_| DbError::Decode(format!("placeholder `{name}` is not `$N`")))?;
        let v = args
            .get(n.wrapping_sub(1))
            .ok_or_else(|| DbError::Decode(format!("no argument for `{name}`")))?;
        match v {
            Value::Int(x) => st.raw_bind_parameter(i, x)?,
            Value::Text(x) => st.raw_bind_parameter(i, x)?,
            Value::Bool(x) => st.raw_bind_parameter(i, x)?,
            Value::NullInt | Value::NullText => st.raw_bind_parameter(i, rusqlite::types::Null)?,
        }
    }
    Ok(())
}

fn execute(c: &rusqlite::Connection, sql: &str, args: &[Value]) -> Result<u64, DbError> {
    let mut st = c.prepare_cached(sql)?;
    bind(&mut st, args)?;
    Ok(u64::try_from(st.raw_execute()?).unwrap_or(u64::MAX))
}

fn fetch(c: &rusqlite::Connection, sql: &str, args: &[Value]) -> Result<Vec<Row>, DbError> {
    use rusqlite::types::ValueRef;
    let mut st = c.prepare_cached(sql)?;
    bind(&mut st, args)?;
    let names: Arc<[String]> = st.column_names().into_iter().map(str::to_owned).collect();
    let width = names.len();
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match r.get_ref(i)? {
                ValueRef::Null => Value::NullText,
                ValueRef::Integer(x) => Value::Int(x),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Real(x) => Value::Text(x.to_string()),
                ValueRef::Blob(_) => {
                    return Err(DbError::Decode(format!(
                        "column `{}` holds a blob",
                        names.get(i).map_or("?", |s| s.as_str())
                    )));
                }
            });
        }
        out.push(Row::new(names.clone(), values));
    }
    Ok(out)
}

/// A connection of the store: one of the readers, or the writer.
pub(crate) enum LiteConn {
    Reader(Lease),
    Writer(OwnedMutexGuard<rusqlite::Connection>),
}

/// A reader taken from the pool; it goes back when dropped.
pub(crate) struct Lease {
    conn: Option<rusqlite::Connection>,
    readers: Arc<Readers>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut free)) = (self.conn.take(), self.readers.free.lock()) {
            free.push(c);
        }
        self.readers.permits.add_permits(1);
    }
}

impl Lease {
    /// Run `f` on this reader on a blocking thread: a read may scan many
    /// rows (a storm's bundle), and on a runtime worker it would stall
    /// every task waiting there, ingest included.
    async fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let conn = self
            .conn
            .take()
            .ok_or_else(|| DbError::Unavailable("the SQLite reader was lost".into()))?;
        let (conn, r) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (conn, r)
        })
        .await
        .map_err(|e| DbError::Unavailable(format!("a SQLite read failed: {e}")))?;
        self.conn = Some(conn);
        r
    }
}

#[async_trait]
impl Conn for LiteConn {
    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<u64, DbError> {
        match self {
            LiteConn::Reader(l) => {
                let sql = sql.to_owned();
                l.run(move |c| execute(c, &sql, &args)).await
            }
            LiteConn::Writer(g) => execute(g, sql, &args),
        }
    }

    async fn fetch(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>, DbError> {
        match self {
            LiteConn::Reader(l) => {
                let sql = sql.to_owned();
                l.run(move |c| fetch(c, &sql, &args)).await
            }
            LiteConn::Writer(g) => fetch(g, sql, &args),
        }
    }
}

/// The write transaction: `BEGIN IMMEDIATE` on the writer; rolled back when
/// dropped uncommitted.
pub(crate) struct LiteTx {
    conn: OwnedMutexGuard<rusqlite::Connection>,
    open: bool,
}

impl LiteTx {
    async fn begin(writer: &Arc<Mutex<rusqlite::Connection>>) -> Result<Self, DbError> {
        let conn = writer.clone().lock_owned().await;
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(LiteTx { conn, open: true })
    }
}

impl Drop for LiteTx {
    fn drop(&mut self) {
        if self.open
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "SQLite rollback failed");
        }
    }
}

#[async_trait]
impl Conn for LiteTx {
    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<u64, DbError> {
        execute(&self.conn, sql, &args)
    }

    async fn fetch(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>, DbError> {
        fetch(&self.conn, sql, &args)
    }
}

#[async_trait]
impl Tx for LiteTx {
    async fn commit(mut self) -> Result<(), DbError> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

#[async_trait]
impl Backend for SqliteStore {
    type Conn = LiteConn;
    type Tx = LiteTx;
    const NAME: &'static str = "sqlite";
    const SQL: &'static Dialect = &SQLITE;

    async fn reader(&self) -> Result<LiteConn, DbError> {
        let permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| DbError::Unavailable("the SQLite store is closed".into()))?;
        permit.forget();
        let conn = self.readers.free.lock().ok().and_then(|mut f| f.pop());
        let lease = Lease {
            conn,
            readers: self.readers.clone(),
        };
        if lease.conn.is_none() {
            return Err(DbError::Unavailable("no free SQLite reader".into()));
        }
        Ok(LiteConn::Reader(lease))
    }

    async fn writer(&self) -> Result<LiteConn, DbError> {
        Ok(LiteConn::Writer(self.writer.clone().lock_owned().await))
    }

    async fn begin(&self) -> Result<LiteTx, DbError> {
        LiteTx::begin(&self.writer).await
    }

    async fn ingest(
        &self,
        source_id: &str,
        actor: &Actor,
        events: Vec<RoutedEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<IngestResult>, StoreError> {
        self.ingests.submit(source_id, actor, events, now).await
    }

    fn planner(&self) -> &PlannerSlot {
        &self.planner
    }

    /// One node: nobody else to wake.
    fn wake_others(&self, _topic: WakeTopic) {}

    async fn listen(&self) -> Result<Option<mpsc::Receiver<Wake>>, StoreError> {
        Ok(None)
    }
}

/// The writer, as group commit begins its transactions.
struct SqliteWriter(Arc<Mutex<rusqlite::Connection>>);

#[async_trait]
impl Begin for SqliteWriter {
    type Tx = LiteTx;
    const SQL: &'static Dialect = &SQLITE;

    async fn begin(&self) -> Result<LiteTx, DbError> {
        LiteTx::begin(&self.0).await
    }
}
