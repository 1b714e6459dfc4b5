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
}

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
        Ok(PgStore {
            write: pool.clone(),
            read: pool,
        })
    }
}

impl_store!(
    PgStore,
    sqlx::Postgres,
    backend = "postgres",
    for_update = " FOR UPDATE"
);
