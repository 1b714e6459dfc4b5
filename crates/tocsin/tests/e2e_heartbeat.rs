//! The dead man's switch with the real thing: Prometheus (Debian) fires the
//! always-on `Watchdog` rule (`vector(1)`), Alertmanager (Debian) routes it
//! to Tocsin's heartbeat URL on every repeat. Stop Alertmanager: Tocsin
//! raises an alert once interval + grace pass without a ping. Start it
//! again: the next ping resolves the alert.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use serde_json::Value;

const HB_KEY: &str = "e2e-watchdog-key-0123456789abcd";
const TOKEN: &str = "e2e-heartbeat-token-0123456789";

async fn get(base: &str, path: &str) -> Value {
    api_get(base, TOKEN, path).await
}

async fn heartbeat(base: &str) -> Value {
    get(base, "/api/v1/heartbeats").await["heartbeats"][0].clone()
}

async fn alerts(base: &str) -> Vec<Value> {
    get(base, "/api/v1/alerts?source=heartbeat:watchdog").await["alerts"]
        .as_array()
        .unwrap()
        .clone()
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_through_alertmanager_arms_goes_overdue_and_recovers() {
    let dir = scratch("heartbeat");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = dir.join("tocsin.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "sqlite://{db}"}}
api_tokens: [{{name: t, token: {TOKEN}, role: admin}}]
users:
  - {{id: alice, contacts: [{{id: mail, type: email, address: alice@example.com}}], notify: {{high: [{{contact: mail, after: 0m}}]}}}}
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:alice"], escalate_after: 1h}}]}}
heartbeats:
  - {{id: watchdog, name: Prometheus watchdog, key: {HB_KEY}, interval: 4s, grace: 3s, escalation_policy: p}}
"#,
            db = dir.join("t.db").display()
        ),
    )
    .unwrap();
    let _tocsin = serve(&dir, &cfg, 0);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
    assert_eq!(heartbeat(&base).await["state"], "unknown");

    let mut monitoring = Monitoring::start_with(
        &dir,
        r#"
    - matchers: ['alertname = "Watchdog"']
      receiver: heartbeat
      group_wait: 0s
      group_interval: 1s
      repeat_interval: 2s
"#,
        &format!(
            r#"
  - name: tocsin
    webhook_configs:
      - url: {base}/api/v1/events/prometheus/unused
  - name: heartbeat
    webhook_configs:
      - url: {base}/api/v1/heartbeats/{HB_KEY}
        send_resolved: false
"#
        ),
        r#"
      - alert: Watchdog
        expr: vector(1)
        labels: {severity: none}
"#,
    )
    .await;

    // Armed by Alertmanager's first ping, kept healthy by its repeats.
    let hb = wait_for(
        "pings from Alertmanager",
        Duration::from_secs(60),
        || async {
            let hb = heartbeat(&base).await;
            (hb["pings"].as_i64().unwrap_or(0) >= 3).then_some(hb)
        },
    )
    .await;
    assert_eq!(hb["state"], "healthy");
    assert!(alerts(&base).await.is_empty());

    // Alertmanager stops: after interval + grace without a ping, an alert.
    monitoring.stop_alertmanager();
    let last_ping = at(&heartbeat(&base).await["last_ping_at"]);
    let raised = wait_for("the overdue alert", Duration::from_secs(60), || async {
        let a = alerts(&base).await;
        a.first().cloned()
    })
    .await;
    let hb = heartbeat(&base).await;
    assert_eq!(hb["state"], "overdue");
    assert_eq!(hb["alert_id"], raised["id"]);
    assert_eq!(
        at(&hb["last_ping_at"]),
        last_ping,
        "no ping while it was down"
    );
    let created = at(&raised["created_at"]);
    let due = at(&hb["overdue_at"]);
    assert_eq!((due - last_ping).num_seconds(), 7, "interval 4s + grace 3s");
    assert!(
        created >= due,
        "raised at {created}, due {due}: never early"
    );
    eprintln!(
        "overdue noticed {} ms after its due time",
        (created - due).num_milliseconds()
    );
    assert_eq!(raised["status"], "pending");
    assert_eq!(raised["priority"], "high");
    assert_eq!(raised["policy_id"], "p");
    assert!(
        raised["summary"]
            .as_str()
            .unwrap()
            .starts_with("Heartbeat Prometheus watchdog is overdue"),
        "{raised}"
    );
    let id = raised["id"].as_i64().unwrap();
    let metrics = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tocsin_heartbeat_overdue{heartbeat="watchdog"} 1"#),
        "{metrics}"
    );
    let shown = get(&base, &format!("/api/v1/alerts/{id}")).await;
    assert!(
        !shown["escalation"].as_array().unwrap().is_empty(),
        "it pages through the escalation engine: {shown}"
    );

    // Alertmanager is back: its next ping resolves the alert.
    monitoring.start_alertmanager().await;
    let resolved = wait_for("the alert resolved", Duration::from_secs(60), || async {
        let a = get(&base, &format!("/api/v1/alerts/{id}")).await;
        (a["status"] == "resolved").then_some(a)
    })
    .await;
    assert_eq!(resolved["resolved_by"], "heartbeat:watchdog");
    let hb = heartbeat(&base).await;
    assert_eq!(hb["state"], "healthy");
    assert_eq!(alerts(&base).await.len(), 1, "one alert for one outage");
    drop(monitoring);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The due time is stored: a heartbeat that falls due while Tocsin is down
/// (killed with -9) is raised once, right after it starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_that_fell_due_during_a_crash_is_raised_once_after_restart() {
    let dir = scratch("heartbeat-restart");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = dir.join("tocsin.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "sqlite://{db}"}}
api_tokens: [{{name: t, token: {TOKEN}, role: admin}}]
users:
  - {{id: alice, contacts: [{{id: mail, type: email, address: alice@example.com}}], notify: {{high: [{{contact: mail, after: 0m}}]}}}}
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:alice"], escalate_after: 1h}}]}}
heartbeats:
  - {{id: watchdog, key: {HB_KEY}, interval: 2s, grace: 1s, escalation_policy: p}}
"#,
            db = dir.join("t.db").display()
        ),
    )
    .unwrap();
    let mut tocsin = serve(&dir, &cfg, 0);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
    let res = http()
        .post(format!("{base}/api/heartbeats/{HB_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::ACCEPTED);
    let due = at(&heartbeat(&base).await["overdue_at"]);
    tocsin.kill();
    let wait = (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
    tokio::time::sleep(wait).await;
    assert!(Utc::now() > due);
    let _tocsin = serve(&dir, &cfg, 1);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
    let raised = wait_for(
        "the alert after restart",
        Duration::from_secs(30),
        || async { alerts(&base).await.first().cloned() },
    )
    .await;
    assert_eq!(raised["status"], "pending");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(alerts(&base).await.len(), 1, "raised once");
    let hb = heartbeat(&base).await;
    assert_eq!(hb["state"], "overdue");
    assert_eq!(hb["alert_id"], raised["id"]);
    let _ = std::fs::remove_dir_all(&dir);
}
