//! The practical limit of this machine for the ingest benchmark: parse the
//! same Alertmanager JSON, upsert one row per alert, one transaction per
//! request, answer 202 after the commit. No dedup logic, no routing, no
//! timeline, no paging.
//!
//! - SQLite: rusqlite on a thread of its own that owns the one connection
//!   (WAL, `synchronous=NORMAL`, cached statements); requests reach it over
//!   a channel. No async driver, so no hand-off per statement.
//! - PostgreSQL: a pool of connections (sqlx), one transaction per request.
//!
//! Usage: tocsin-bench-reference LISTEN_ADDR sqlite FILE
//!        tocsin-bench-reference LISTEN_ADDR postgres URL

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::oneshot;

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

/// One alert's row.
struct Row {
    group_key: String,
    fingerprint: String,
    status: String,
    starts_at: String,
    summary: String,
    labels: String,
}

fn rows(hook: Webhook) -> Vec<Row> {
    hook.alerts
        .into_iter()
        .map(|a| Row {
            group_key: hook.group_key.clone(),
            labels: serde_json::to_string(&a.labels).unwrap_or_default(),
            summary: a.annotations.get("summary").cloned().unwrap_or_default(),
            fingerprint: a.fingerprint,
            status: a.status,
            starts_at: a.starts_at,
        })
        .collect()
}

const UPSERT: &str = "INSERT INTO alerts (group_key, fingerprint, status, starts_at, summary, labels) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (group_key, fingerprint) DO UPDATE SET status = excluded.status, starts_at = excluded.starts_at, summary = excluded.summary, labels = excluded.labels";

enum Db {
    /// Requests to the SQLite thread: rows, and where to say it committed.
    Sqlite(
        std::sync::mpsc::SyncSender<(Vec<Row>, oneshot::Sender<bool>)>,
        String,
    ),
    Postgres(sqlx::PgPool),
}

async fn ingest(State(db): State<Arc<Db>>, body: axum::body::Bytes) -> StatusCode {
    let Ok(hook) = serde_json::from_slice::<Webhook>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let rows = rows(hook);
    let ok = match db.as_ref() {
        Db::Sqlite(tx, _) => {
            let (reply, answer) = oneshot::channel();
            tx.send((rows, reply)).is_ok() && answer.await.unwrap_or(false)
        }
        Db::Postgres(pool) => pg_insert(pool, &rows).await.is_ok(),
    };
    if ok {
        StatusCode::ACCEPTED
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn pg_insert(pool: &sqlx::PgPool, rows: &[Row]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for r in rows {
        sqlx::query(UPSERT)
            .bind(&r.group_key)
            .bind(&r.fingerprint)
            .bind(&r.status)
            .bind(&r.starts_at)
            .bind(&r.summary)
            .bind(&r.labels)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The SQLite thread: one transaction per request, one upsert per alert.
fn sqlite_thread(
    conn: rusqlite::Connection,
    rx: std::sync::mpsc::Receiver<(Vec<Row>, oneshot::Sender<bool>)>,
) {
    let mut conn = conn;
    while let Ok((rows, reply)) = rx.recv() {
        let ok = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare_cached(UPSERT)?;
                for r in &rows {
                    st.execute(rusqlite::params![
                        r.group_key,
                        r.fingerprint,
                        r.status,
                        r.starts_at,
                        r.summary,
                        r.labels
                    ])?;
                }
            }
            tx.commit()
        })()
        .is_ok();
        let _ = reply.send(ok);
    }
}

async fn count(State(db): State<Arc<Db>>) -> Result<Json<serde_json::Value>, StatusCode> {
    let n: i64 = match db.as_ref() {
        Db::Sqlite(_, file) => rusqlite::Connection::open(file)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0)))
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?,
        Db::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM alerts")
            .fetch_one(pool)
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?,
    };
    Ok(Json(serde_json::json!({"rows": n})))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(kind), Some(target)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: tocsin-bench-reference LISTEN_ADDR sqlite FILE | postgres URL".into());
    };
    let table = "CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, group_key TEXT NOT NULL, fingerprint TEXT NOT NULL, status TEXT, starts_at TEXT, summary TEXT, labels TEXT, UNIQUE (group_key, fingerprint))";
    let db = match kind.as_str() {
        "sqlite" => {
            let conn = rusqlite::Connection::open(target)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(table)?;
            let (tx, rx) = std::sync::mpsc::sync_channel(1024);
            std::thread::spawn(move || sqlite_thread(conn, rx));
            Db::Sqlite(tx, target.clone())
        }
        "postgres" => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(target)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(
                table.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY"),
            ))
            .execute(&pool)
            .await?;
            Db::Postgres(pool)
        }
        other => return Err(format!("unknown database kind {other}").into()),
    };
    let app = axum::Router::new()
        .route("/ingest", post(ingest))
        .route("/count", get(count))
        .with_state(Arc::new(db));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("reference listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
