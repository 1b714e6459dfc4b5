//! What the engine's tests share: a fresh store on either backend.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tocsin_store::Store;

/// A fresh store: SQLite in a temporary directory (kept alive by the
/// returned directory), or a new database on the test PostgreSQL. `None`
/// for PostgreSQL when there is none outside CI.
pub async fn fresh_store(pg: bool) -> Option<(Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let (url, dir) = if pg {
        let Ok(base) = std::env::var("TOCSIN_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("CI").is_err(),
                "TOCSIN_TEST_POSTGRES_URL must be set under CI"
            );
            return None;
        };
        use sqlx::Connection;
        let name = format!("tocsin_e_{}", unique_suffix());
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        (format!("{}/{name}", base.rsplit_once('/').unwrap().0), None)
    } else {
        let dir = tempfile::tempdir().unwrap();
        (
            format!("sqlite://{}", dir.path().join("e.db").display()),
            Some(dir),
        )
    };
    let store: Arc<dyn Store> = Arc::from(tocsin_store::connect(&url, 4).await.unwrap());
    Some((store, dir))
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
