//! End to end with the real thing: Prometheus and Alertmanager from Debian,
//! pointed at a real `tocsin serve` process, on SQLite and on PostgreSQL.
//!
//! A scrape target inside the test sets `harness_condition{node=…}`; a rule
//! fires while it is above 0; Alertmanager sends every notification to two
//! Tocsin sources: one with `grouping: group`, one with `grouping: alert`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const GROUP_KEY: &str = "e2e-group-key-0123456789abcdef";
const ALERT_KEY: &str = "e2e-alert-key-0123456789abcdef";
const TOKEN: &str = "e2e-admin-token-0123456789";

struct Stack {
    dir: PathBuf,
    tocsin_port: u16,
    db_url: String,
    tocsin: Option<Proc>,
    monitoring: Monitoring,
    http: reqwest::Client,
    runs: usize,
}

fn tocsin_config(dir: &Path, port: u16, db_url: &str) -> PathBuf {
    let text = format!(
        r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "{db_url}"}}
api_tokens: [{{name: e2e, token: {TOKEN}, role: admin}}]
users:
  - {{id: alice, contacts: [{{id: mail, type: email, address: alice@example.com}}], notify: {{high: [{{contact: mail, after: 0m}}]}}}}
escalation_policies:
  - {{id: fallback, levels: [{{notify: ["user:alice"], escalate_after: 5m}}]}}
  - {{id: checkout-oncall, levels: [{{notify: ["user:alice"], escalate_after: 5m}}]}}
services:
  - {{id: checkout, name: Checkout, escalation_policy: checkout-oncall}}
sources:
  - {{id: am-group, type: prometheus, escalation_policy: fallback, key: {GROUP_KEY}}}
  - {{id: am-alert, type: prometheus, escalation_policy: fallback, grouping: alert, key: {ALERT_KEY}}}
"#
    );
    let path = dir.join("tocsin.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

impl Stack {
    async fn start(dir: &Path, db_url: String) -> Stack {
        let tocsin_port = free_port();
        let tocsin_cfg = tocsin_config(dir, tocsin_port, &db_url);
        let tocsin = spawn_tocsin(dir, &tocsin_cfg, 0);
        wait_http_ok(
            &format!("http://127.0.0.1:{tocsin_port}/readyz"),
            Duration::from_secs(30),
        )
        .await;
        let monitoring = Monitoring::start(
            dir,
            &format!(
                r#"
  - name: tocsin
    webhook_configs:
      - url: http://127.0.0.1:{tocsin_port}/api/v1/events/prometheus/{GROUP_KEY}
        send_resolved: true
      - url: http://127.0.0.1:{tocsin_port}/webhooks/{ALERT_KEY}
        send_resolved: true
"#
            ),
        )
        .await;
        Stack {
            dir: dir.to_owned(),
            tocsin_port,
            db_url,
            tocsin: Some(tocsin),
            monitoring,
            http: http(),
            runs: 1,
        }
    }

    fn set(&self, node: &str, v: f64) {
        self.monitoring.set(node, v);
    }

    async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.tocsin_port))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap()
    }

    async fn alerts(&self, source: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/alerts?source={source}&limit=500"))
            .await["alerts"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Wait until `pred` holds for the alerts of `source`; return them.
    async fn until(&self, what: &str, source: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        wait_for(what, Duration::from_secs(60), || async {
            let a = self.alerts(source).await;
            pred(&a).then_some(a)
        })
        .await
    }

    fn stop_tocsin(&mut self) {
        if let Some(mut p) = self.tocsin.take() {
            p.terminate();
        }
    }

    async fn start_tocsin(&mut self) {
        let cfg = self.dir.join("tocsin.yaml");
        let p = spawn_tocsin(&self.dir, &cfg, self.runs);
        self.runs += 1;
        self.tocsin = Some(p);
        wait_http_ok(
            &format!("http://127.0.0.1:{}/readyz", self.tocsin_port),
            Duration::from_secs(30),
        )
        .await;
    }

    /// Every log line tocsin wrote (all runs).
    fn tocsin_logs(&self) -> String {
        (0..self.runs)
            .map(|i| {
                std::fs::read_to_string(self.dir.join(format!("tocsin-{i}.err")))
                    .unwrap_or_default()
            })
            .collect()
    }
}

fn spawn_tocsin(dir: &Path, cfg: &Path, run: usize) -> Proc {
    let out = std::fs::File::create(dir.join(format!("tocsin-{run}.out"))).unwrap();
    let log = dir.join(format!("tocsin-{run}.err"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    cmd.arg("serve")
        .arg("--config")
        .arg(cfg)
        .env("TOCSIN_LOG", "debug,sqlx=warn,hyper=info");
    // The banner (with keys, on stdout) is kept apart from the logs (stderr).
    let mut p = Proc::spawn_split("tocsin", &mut cmd, out, &log);
    p.name = format!("tocsin run {run}");
    p
}

fn labels_of(a: &Value, key: &str) -> Vec<String> {
    a["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["labels"][key].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn scenario(stack: &mut Stack) {
    // 1. A firing rule creates exactly one alert, correctly mapped.
    stack.set("node-1", 1.0);
    let group = stack
        .until("the group alert", "am-group", |a| !a.is_empty())
        .await;
    assert_eq!(group.len(), 1);
    let a = &group[0];
    assert_eq!(a["summary"], "harness down on node-1");
    assert_eq!(a["severity"], "SEV0");
    assert_eq!(a["priority"], "high");
    assert_eq!(
        a["policy_id"], "checkout-oncall",
        "service_id label → service → its policy"
    );
    assert_eq!(a["service_id"], "checkout");
    assert_eq!(a["status"], "pending");
    let links: Vec<(String, String)> = a["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["text"].as_str().unwrap().to_owned(),
                l["href"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        links[0],
        (
            "Harness dashboard".to_owned(),
            "http://dashboards.example.test/d/harness".to_owned()
        )
    );
    assert_eq!(
        links[1],
        (
            "Runbook".to_owned(),
            "http://runbooks.example.test/harness".to_owned()
        )
    );
    assert_eq!(links[2].0, "Source");
    assert!(links[2].1.contains("/graph?g0.expr="), "{links:?}");
    let group_id = a["id"].as_i64().unwrap();
    stack
        .until("the per-alert alert", "am-alert", |a| a.len() == 1)
        .await;

    // 2. Repeats (repeat_interval 4s) create nothing; only last seen moves.
    let first_seen = a["last_seen_at"].as_str().unwrap().to_owned();
    let group = stack
        .until("three deliveries of the same group", "am-group", |a| {
            a[0]["seen_count"].as_i64().unwrap() >= 3
        })
        .await;
    assert_eq!(group.len(), 1);
    assert_ne!(group[0]["last_seen_at"].as_str().unwrap(), first_seen);
    assert_eq!(stack.alerts("am-alert").await.len(), 1);

    // 3. A second node fires: the group has two, per-alert has two alerts.
    stack.set("node-2", 1.0);
    let group = stack
        .until("node-2 in the group", "am-group", |a| {
            labels_of(&a[0], "node").len() == 2
        })
        .await;
    assert_eq!(group.len(), 1);
    assert_eq!(group[0]["summary"], "HarnessDown: 2 firing");
    stack
        .until("two per-alert alerts", "am-alert", |a| a.len() == 2)
        .await;

    // 4. node-2 resolves: a mixed notification. The group stays open and
    //    records it; the per-alert alert for node-2 resolves.
    stack.set("node-2", 0.0);
    let group = stack
        .until("a mixed group", "am-group", |a| {
            a[0]["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["status"] == "resolved")
        })
        .await;
    assert_eq!(group[0]["status"], "pending");
    assert_eq!(group[0]["summary"], "harness down on node-1");
    let per_alert = stack
        .until("node-2's own alert resolved", "am-alert", |a| {
            a.iter().any(|x| x["status"] == "resolved")
        })
        .await;
    let resolved: Vec<&Value> = per_alert
        .iter()
        .filter(|x| x["status"] == "resolved")
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(labels_of(resolved[0], "node"), ["node-2"]);
    let detail = stack.get(&format!("/api/v1/alerts/{group_id}")).await;
    assert!(
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"] == "updated: 1 firing, 1 resolved"),
        "{detail}"
    );

    // 5. Resolving the rule resolves the alert.
    stack.set("node-1", 0.0);
    let group = stack
        .until("the group resolved", "am-group", |a| {
            a[0]["status"] == "resolved"
        })
        .await;
    assert_eq!(group.len(), 1);
    assert!(group[0]["resolved_at"].is_string());
    stack
        .until("every per-alert alert resolved", "am-alert", |a| {
            a.iter().all(|x| x["status"] == "resolved")
        })
        .await;

    // 6. Tocsin is down while a new alert fires; Alertmanager's retries
    //    deliver it once Tocsin is back. The new firing opens a new alert.
    stack.stop_tocsin();
    stack.set("node-3", 1.0);
    tokio::time::sleep(Duration::from_secs(6)).await;
    stack.start_tocsin().await;
    let group = stack
        .until("the alert delivered after restart", "am-group", |a| {
            a.len() == 2
        })
        .await;
    assert_eq!(group[0]["status"], "pending");
    assert_eq!(labels_of(&group[0], "node"), ["node-3"]);
    assert_eq!(group[1]["id"].as_i64(), Some(group_id));
    assert_eq!(group[1]["status"], "resolved");

    // Keys never appear in logs (request logs show <redacted>).
    let logs = stack.tocsin_logs();
    assert!(
        logs.contains("<redacted>"),
        "request logs should show redacted paths"
    );
    assert!(
        !logs.contains(GROUP_KEY) && !logs.contains(ALERT_KEY),
        "a key leaked into the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_to_tocsin_on_sqlite() {
    let dir = scratch("sqlite");
    let db = format!("sqlite://{}", dir.join("tocsin.db").display());
    let mut stack = Stack::start(&dir, db).await;
    scenario(&mut stack).await;
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_to_tocsin_on_postgres_and_503_while_it_is_down() {
    let dir = scratch("pg");
    let pg = Postgres::start(&dir.join("pg"));
    let mut stack = Stack::start(&dir, pg.url.clone()).await;
    assert!(stack.db_url.starts_with("postgres://"));
    scenario(&mut stack).await;

    // Storage down: 503 (Alertmanager retries); back: 202 again.
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/alertmanager/api-firing.json"
    ))
    .unwrap();
    let url = format!(
        "http://127.0.0.1:{}/api/v1/events/prometheus/{GROUP_KEY}",
        stack.tocsin_port
    );
    pg.stop();
    let res = stack
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "storage_unavailable");
    let ready = stack
        .http
        .get(format!("http://127.0.0.1:{}/readyz", stack.tocsin_port))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    pg.restart();
    let status = wait_for("ingest to recover", Duration::from_secs(30), || async {
        let r = stack
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .ok()?;
        (r.status() == reqwest::StatusCode::ACCEPTED).then_some(r.status())
    })
    .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    drop(stack);
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}
