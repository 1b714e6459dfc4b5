//! Durable escalation in the real binary: a webhook opens an alert, level 1
//! is queued within a second, `kill -9` while level 2 is pending, restart
//! after its due time → level 2 runs exactly once. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const KEY: &str = "esc-key-0123456789abcdef01";
const TOKEN: &str = "esc-token-0123456789abcdef";

fn start(dir: &Path, port: u16, db: &str, run: usize) -> Proc {
    let cfg = dir.join("tocsin.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "{db}"}}
api_tokens: [{{name: t, token: {TOKEN}, role: admin}}]
users:
  - {{id: alice, contacts: [{{id: mail, type: email, address: alice@example.com}}], notify: {{high: [{{contact: mail, after: 0m}}]}}}}
  - {{id: carol, contacts: [{{id: mail, type: email, address: carol@example.com}}], notify: {{high: [{{contact: mail, after: 0m}}]}}}}
escalation_policies:
  - id: p
    levels:
      - {{notify: ["user:alice"], escalate_after: 4s}}
      - {{notify: ["user:carol"], escalate_after: 1h}}
sources: [{{id: am, type: prometheus, escalation_policy: p, key: {KEY}}}]
"#
        ),
    )
    .unwrap();
    let out = std::fs::File::create(dir.join(format!("out{run}"))).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    cmd.args(["serve", "--config"]).arg(&cfg);
    Proc::spawn_split("tocsin", &mut cmd, out, &dir.join(format!("err{run}")))
}

/// The alert as the API shows it (retried while the server answers an error,
/// e.g. right after a restart).
async fn alert(base: &str, id: i64) -> Value {
    api_get(base, TOKEN, &format!("/api/v1/alerts/{id}")).await
}

fn count(a: &Value, field: &str) -> usize {
    a[field].as_array().map_or(0, Vec::len)
}

async fn scenario(dir: &Path, db: &str) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut p = start(dir, port, db, 0);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
    let id = post_fixture(&base, KEY, "firing-single.json").await;

    // Level 1 runs at once (the worker looks every 250 ms).
    let a = wait_for("level 1", Duration::from_secs(5), || async {
        let a = alert(&base, id).await;
        (count(&a, "notifications") == 1 && count(&a, "escalation") == 2).then_some(a)
    })
    .await;
    assert_eq!(a["notifications"][0]["user_id"], "alice");
    assert_eq!(a["notifications"][0]["channel"], "email");
    assert_eq!(a["escalation"][1]["level"], 1, "level 2 is pending");
    assert_eq!(a["escalation"][1]["status"], "pending");

    // Crash while level 2 is pending; come back after its due time.
    p.kill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _p = start(dir, port, db, 1);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
    let a = wait_for(
        "level 2 after the restart",
        Duration::from_secs(5),
        || async {
            let a = alert(&base, id).await;
            (count(&a, "notifications") >= 2).then_some(a)
        },
    )
    .await;
    // Give a second worker round the chance to (wrongly) run it again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a2 = alert(&base, id).await;
    let ids = |a: &Value| -> Vec<i64> {
        a["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&a), ids(&a2), "no notification was queued twice");
    let users: Vec<&str> = a2["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["alice", "carol"], "level 2 ran exactly once");
    let steps: Vec<(i64, &str)> = a2["escalation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["level"].as_i64().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [(0, "done"), (1, "done"), (2, "pending")]);
    let escalations = a2["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "escalation")
        .count();
    assert_eq!(escalations, 2);

    // Accepting stops it.
    let res = http()
        .post(format!("{base}/api/v1/alerts/{id}/accept"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let a = alert(&base, id).await;
    assert_eq!(a["escalation"][2]["status"], "cancelled");
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tocsin-esc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_a_step_is_pending_on_sqlite() {
    let dir = scratch("sqlite");
    scenario(&dir, &format!("sqlite://{}", dir.join("t.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_a_step_is_pending_on_postgres() {
    let dir = scratch("pg");
    let pg = Postgres::start(&dir.join("pg"));
    scenario(&dir, &pg.url).await;
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}
