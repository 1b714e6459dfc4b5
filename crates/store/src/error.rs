use crate::db::DbError;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; try again later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database URL or options are wrong.
    #[error("storage configuration: {0}")]
    Config(String),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A catalog write found something other than it expected: the object
    /// changed since it was read (`If-Match`), already exists, or is gone.
    #[error("{kind} `{id}`: {message}")]
    Conflict {
        kind: String,
        id: String,
        /// The revision stored now (`None`: no such object).
        current: Option<i64>,
        message: String,
    },
    /// A value the database cannot store; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// Anything else (a bug, corrupt data).
    #[error("storage error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Lost a race with another transaction (two opened the same alert, or
    /// PostgreSQL broke a deadlock between them): run it again.
    pub(crate) fn is_lost_race(e: &DbError) -> bool {
        match e {
            DbError::Sqlx(e) => e
                .as_database_error()
                .is_some_and(|d| d.is_unique_violation() || d.code().is_some_and(|c| c == "40P01")),
            // SQLite has one writer: a unique violation there is no race,
            // and running the request again would meet it again.
            DbError::Sqlite(_)
            | DbError::Decode(_)
            | DbError::Unavailable(_)
            | DbError::Invalid(_) => false,
        }
    }
}

impl StoreError {
    /// The same classification as `From<sqlx::Error>`, for a batch of
    /// requests that all failed on one error.
    pub(crate) fn from_message(e: &DbError, msg: &str) -> Self {
        let class = match e {
            DbError::Sqlx(e) => StoreError::classify(e),
            DbError::Sqlite(e) => StoreError::classify_sqlite(e),
            DbError::Decode(_) => Class::Internal,
            DbError::Unavailable(_) => Class::Unavailable,
            DbError::Invalid(m) => return StoreError::Invalid(m.clone()),
        };
        match class {
            Class::Unavailable => StoreError::Unavailable(msg.to_owned()),
            Class::Config => StoreError::Config(msg.to_owned()),
            Class::Internal => StoreError::Internal(msg.to_owned()),
        }
    }

    fn classify_sqlite(e: &rusqlite::Error) -> Class {
        use rusqlite::ErrorCode;
        match e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen => Class::Unavailable,
                _ => Class::Internal,
            },
            _ => Class::Internal,
        }
    }

    fn classify(e: &sqlx::Error) -> Class {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => Class::Unavailable,
            sqlx::Error::Configuration(_) => Class::Config,
            sqlx::Error::Database(d) => {
                // PostgreSQL: class 08 (connection), 53 (resources), 57P (shutdown).
                // SQLite: 5 (BUSY), 6 (LOCKED), 10 (IOERR), 13 (FULL), 14 (CANTOPEN).
                let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
                let transient = code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || matches!(
                        code.as_str(),
                        "5" | "6" | "10" | "13" | "14" | "261" | "517"
                    );
                if transient {
                    Class::Unavailable
                } else {
                    Class::Internal
                }
            }
            _ => Class::Internal,
        }
    }
}

enum Class {
    Unavailable,
    Config,
    Internal,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from(DbError::Sqlx(e))
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        let msg = e.to_string();
        StoreError::from_message(&e, &msg)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Internal(format!("stored JSON: {e}"))
    }
}
