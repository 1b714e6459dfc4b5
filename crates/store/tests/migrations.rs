//! Upgrading a database that already holds alerts: the rows and id counters
//! survive migrations that rebuild tables.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;

use sqlx::{ConnectOptions, Connection, Row};

/// SQLite's migration 0015 rebuilds the timeline, steps and outbox tables
/// without their foreign keys. A database written by the version before
/// keeps every row, every index, and the step and page id counters (a step
/// id once handed out is never handed out again, even if its row is gone).
#[tokio::test]
async fn sqlite_0015_keeps_rows_ids_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());

    // The database as the version before 0015 left it.
    let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut c = opts
        .clone()
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    let mut before = sqlx::migrate!("./migrations/sqlite");
    before.migrations = Cow::Owned(
        before
            .migrations
            .iter()
            .filter(|m| m.version < 15)
            .cloned()
            .collect(),
    );
    assert_eq!(before.migrations.len(), 14, "the migrations before 0015");
    before.run(&mut c).await.unwrap();
    for sql in [
        "INSERT INTO alerts (id, source_id, dedup_key, status, severity, priority, summary, details, labels, links, members, policy_id, detected_at, created_at, updated_at, last_seen_at) VALUES (1, 'am', 'k1', 'pending', 'SEV1', 'high', 'disk full', '', '{}', '[]', '[]', 'p', 1000, 1000, 1000, 1000)",
        "INSERT INTO alert_timeline (alert_id, at, kind, actor, channel, message) VALUES (1, 1000, 'created', 'source:am', 'alertmanager', 'created: disk full')",
        "INSERT INTO alert_timeline (alert_id, at, kind, actor, channel, message) VALUES (1, 1000, 'escalation', 'system', 'engine', 'level 1: notifying u')",
        "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at, done_at) VALUES (1, 'p', 0, 0, 1000, 'done', 1000, 1000)",
        "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) VALUES (1, 'p', 1, 0, 301000, 'pending', 1000)",
        "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) VALUES (1, 'p', 1, 0, 301000, 'cancelled', 1000)",
        "DELETE FROM escalation_steps WHERE id = 3",
        "INSERT INTO outbox (alert_id, step_id, user_id, contact_id, channel, address, due_at, status, next_attempt_at, created_at) VALUES (1, 1, 'u', 'mail', 'email', 'u@example.com', 1000, 'pending', 1000, 1000)",
        "INSERT INTO outbox (alert_id, step_id, user_id, contact_id, channel, address, due_at, status, next_attempt_at, created_at) VALUES (1, 1, 'u', 'sms', 'sms', '+15550100', 1000, 'pending', 1000, 1000)",
        "DELETE FROM outbox WHERE id = 2",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await
            .unwrap();
    }
    c.close().await.unwrap();

    // The current version opens it and applies 0015.
    let store = tocsin_store::connect(&url, 4).await.unwrap();
    let timeline = store.timeline(1).await.unwrap();
    assert_eq!(
        timeline
            .iter()
            .map(|e| (e.id, e.kind.as_str(), e.message.as_str()))
            .collect::<Vec<_>>(),
        [
            (1, "created", "created: disk full"),
            (2, "escalation", "level 1: notifying u")
        ]
    );
    let steps = store.steps(1).await.unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.id, s.level, s.status.as_str()))
            .collect::<Vec<_>>(),
        [(1, 0, "done"), (2, 1, "pending")]
    );
    drop(store);

    let mut c = opts.connect().await.unwrap();
    let seq = |table: &'static str| {
        sqlx::query("SELECT seq FROM sqlite_sequence WHERE name = ?").bind(table)
    };
    for (table, counter) in [("escalation_steps", 3_i64), ("outbox", 2), ("alerts", 1)] {
        let row = seq(table).fetch_one(&mut c).await.unwrap();
        assert_eq!(row.get::<i64, _>("seq"), counter, "{table}'s id counter");
    }
    for table in ["alert_timeline", "escalation_steps", "outbox"] {
        let fks = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM pragma_foreign_key_list('{table}')"
        )))
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(fks.get::<i64, _>("n"), 0, "{table} has no foreign key");
    }
    let indexes: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('alert_timeline', 'escalation_steps', 'outbox') ORDER BY name",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("name"))
    .collect();
    assert_eq!(
        indexes,
        [
            "alert_timeline_by_alert",
            "escalation_steps_by_alert",
            "escalation_steps_by_policy",
            "escalation_steps_due",
            "escalation_steps_leased",
            "outbox_by_alert",
            "outbox_by_contact",
            // Added by 0018 (the failed-deliveries page).
            "outbox_failed"
        ]
    );
    // The next step and page take ids after the counters, not after the
    // rows left.
    sqlx::query("INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) VALUES (1, 'p', 2, 0, 601000, 'pending', 1000)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("INSERT INTO outbox (alert_id, step_id, user_id, contact_id, channel, address, due_at, status, next_attempt_at, created_at) VALUES (1, 2, 'u', 'mail', 'email', 'u@example.com', 1000, 'pending', 1000, 1000)")
        .execute(&mut c)
        .await
        .unwrap();
    for (table, id) in [("escalation_steps", 4_i64), ("outbox", 3)] {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT MAX(id) AS id FROM {table}"
        )))
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(row.get::<i64, _>("id"), id, "{table}'s next id");
    }
    c.close().await.unwrap();
}
