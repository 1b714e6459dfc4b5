//! The little a backend must provide so that the store's SQL, written once
//! in `imp.rs`, runs on it: connections that execute a statement with
//! arguments and return rows of plain values, transactions, and the
//! [`Dialect`](crate::dialect::Dialect) of its statements that differ.
//!
//! Values are Tocsin's few column types: integers (times are epoch
//! milliseconds), text (JSON for structured fields), booleans and NULL.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::dialect::Dialect;
use crate::{Actor, IngestResult, RoutedEvent, StoreError, Wake, WakeTopic};

/// A value bound to a statement or read from a row. NULLs carry their type:
/// PostgreSQL wants one for every parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Text(String),
    Bool(bool),
    NullInt,
    NullText,
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::NullInt, Value::Int)
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Value::NullText, |s| Value::Text(s.to_owned()))
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::NullText, Value::Text)
    }
}

impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Self {
        Value::from(v.as_deref())
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Int(v) => s.serialize_i64(*v),
            Value::Text(v) => s.serialize_str(v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::NullInt | Value::NullText => s.serialize_none(),
        }
    }
}

/// The arguments of a statement, in placeholder order: `args![a, b]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::db::Value::from($v)),*]
    };
}
pub(crate) use args;

/// A failure of the database or of reading what it returned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data: {0}")]
    Decode(String),
    /// The store cannot serve the call now (closed, or a connection was
    /// lost): the caller may try again.
    #[error("{0}")]
    Unavailable(String),
    /// A value the database cannot store (a NUL character in text).
    #[error("{0}")]
    Invalid(String),
}

/// Refuse text with a NUL character, which PostgreSQL cannot store (and
/// SQLite would): both backends answer the same.
pub(crate) fn check_text(args: &[Value]) -> Result<(), DbError> {
    if args
        .iter()
        .any(|v| matches!(v, Value::Text(t) if t.contains('\0')))
    {
        return Err(DbError::Invalid(
            "a text value contains a NUL character (\\0); remove it".into(),
        ));
    }
    Ok(())
}

impl DbError {
    pub(crate) fn decode(e: impl std::fmt::Display) -> Self {
        DbError::Decode(e.to_string())
    }
}

/// One row: column names (shared by the rows of one result) and values.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub(crate) fn new(names: Arc<[String]>, values: Vec<Value>) -> Self {
        Row { names, values }
    }

    /// The value of column `name`, converted.
    pub(crate) fn get<T: FromValue>(&self, name: &str) -> Result<T, DbError> {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| DbError::Decode(format!("no column `{name}` in the result")))?;
        let v = self
            .values
            .get(i)
            .ok_or_else(|| DbError::Decode(format!("no value for column `{name}`")))?;
        T::from_value(v).ok_or_else(|| {
            DbError::Decode(format!(
                "column `{name}` holds {v:?}, not {}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// Column `name` as text, parsed (a status, a severity).
    pub(crate) fn parse<T: std::str::FromStr>(&self, name: &str) -> Result<T, DbError>
    where
        T::Err: std::fmt::Display,
    {
        let s: String = self.get(name)?;
        s.parse()
            .map_err(|e: T::Err| DbError::Decode(format!("column `{name}`: {e}")))
    }

    /// Column `name` as JSON text, decoded.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, DbError> {
        let s: String = self.get(name)?;
        serde_json::from_str(&s).map_err(|e| DbError::Decode(format!("column `{name}`: {e}")))
    }

    /// Column `name`, an epoch-millisecond time.
    pub(crate) fn time(&self, name: &str) -> Result<DateTime<Utc>, DbError> {
        Ok(crate::imp::from_ms(self.get(name)?))
    }

    /// Column `name`, an epoch-millisecond time or NULL.
    pub(crate) fn time_opt(&self, name: &str) -> Result<Option<DateTime<Utc>>, DbError> {
        Ok(self.get::<Option<i64>>(name)?.map(crate::imp::from_ms))
    }
}

/// A Rust type a column value converts to.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(*b),
            // SQLite has no boolean type: comparisons give 0 or 1.
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::NullInt | Value::NullText => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A connection: statements run one after the other.
#[async_trait]
pub(crate) trait Conn: Send {
    /// Run a statement; the number of rows it changed.
    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<u64, DbError>;

    /// Run a statement; every row it returned.
    async fn fetch(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>, DbError>;

    /// Run a statement; its first row, if any.
    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: Vec<Value>,
    ) -> Result<Option<Row>, DbError> {
        Ok(self.fetch(sql, args).await?.into_iter().next())
    }

    /// Run a statement that returns exactly one row.
    async fn fetch_one(&mut self, sql: &str, args: Vec<Value>) -> Result<Row, DbError> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or_else(|| DbError::Decode("the statement returned no row".into()))
    }
}

/// A transaction: dropped without [`Tx::commit`], it rolls back.
#[async_trait]
pub(crate) trait Tx: Conn + Sized {
    async fn commit(self) -> Result<(), DbError>;
}

/// A database Tocsin can run on. Everything else about the [`Store`]
/// (`crate::Store`) is written once, over this trait.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// A pooled connection outside any transaction.
    type Conn: Conn;
    /// A write transaction.
    type Tx: Tx;

    /// `sqlite` or `postgres`.
    const NAME: &'static str;
    /// The statements that differ between backends.
    const SQL: &'static Dialect;

    /// A connection for reads (on SQLite, one of the readers).
    async fn reader(&self) -> Result<Self::Conn, DbError>;

    /// A connection for one write in its own transaction.
    async fn writer(&self) -> Result<Self::Conn, DbError>;

    /// Begin a write transaction.
    async fn begin(&self) -> Result<Self::Tx, DbError>;

    /// Apply one request's events: handed to a group-commit writer
    /// (`group.rs`), answered once committed.
    async fn ingest(
        &self,
        source_id: &str,
        actor: &Actor,
        events: Vec<RoutedEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<IngestResult>, StoreError>;

    /// Where the planner of first escalation levels is kept.
    fn planner(&self) -> &crate::group::PlannerSlot;

    /// Tell the other nodes sharing the database that work was queued.
    fn wake_others(&self, topic: WakeTopic);

    /// Wake-ups from other nodes (`None`: there are none).
    async fn listen(&self) -> Result<Option<mpsc::Receiver<Wake>>, StoreError>;
}
