//! The practical limit of this machine for the ingest benchmark: parse the
//! same Alertmanager JSON, insert one row per alert into SQLite (WAL, same
//! pragmas as Tocsin), answer 202 after the commit. No dedup, no routing, no
//! timeline.
//!
//! Usage: tocsin-bench-reference LISTEN_ADDR SQLITE_FILE

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Webhook {
    #[serde(default)]
    group_key: String,
    #[allow(dead_code)]
    status: String,
    alerts: Vec<Alert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: String,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: String,
    #[serde(default)]
    fingerprint: String,
}

async fn ingest(State(pool): State<SqlitePool>, body: axum::body::Bytes) -> StatusCode {
    let Ok(hook) = serde_json::from_slice::<Webhook>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let result: Result<(), sqlx::Error> = async {
        let mut tx = pool.begin().await?;
        for a in &hook.alerts {
            let labels = serde_json::to_string(&a.labels).unwrap_or_default();
            let summary = a.annotations.get("summary").cloned().unwrap_or_default();
            sqlx::query("INSERT INTO alerts (group_key, fingerprint, status, starts_at, summary, labels) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&hook.group_key)
                .bind(&a.fingerprint)
                .bind(&a.status)
                .bind(&a.starts_at)
                .bind(summary)
                .bind(labels)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => StatusCode::ACCEPTED,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn count(State(pool): State<SqlitePool>) -> Result<Json<serde_json::Value>, StatusCode> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM alerts")
        .fetch_one(&pool)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let n: i64 = row
        .try_get("n")
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(Json(serde_json::json!({"rows": n})))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(file)) = (args.get(1), args.get(2)) else {
        return Err("usage: tocsin-bench-reference LISTEN_ADDR SQLITE_FILE".into());
    };
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{file}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, group_key TEXT, fingerprint TEXT, status TEXT, starts_at TEXT, summary TEXT, labels TEXT)")
        .execute(&pool)
        .await?;
    let app = axum::Router::new()
        .route("/ingest", post(ingest))
        .route("/count", get(count))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("reference listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
