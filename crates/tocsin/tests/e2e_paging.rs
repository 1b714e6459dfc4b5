//! The whole paging path with real components, on SQLite and PostgreSQL:
//! Prometheus (Debian) evaluates a rule, Alertmanager (Debian) sends it to
//! `tocsin serve`, and Tocsin pages through a real SMTP server (aiosmtpd).
//!
//! 1. The rule fires → the user on call in the schedule (alice, by an
//!    override over carol's layer) gets an email.
//! 2. `kill -9` while level 2 is pending; restart after its due time → bob
//!    (level 2) gets exactly one email.
//! 3. Accepting through alice's email link stops escalation: the next
//!    round's step is cancelled and nobody is emailed again.
//! 4. A second alert is resolved by its rule before level 2: the alert
//!    resolves and bob is not paged for it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use serde_json::Value;

const KEY: &str = "paging-key-0123456789abcdef01";
const TOKEN: &str = "paging-token-0123456789abcdef";

struct Stack {
    dir: PathBuf,
    base: String,
    cfg: PathBuf,
    tocsin: Option<Proc>,
    runs: usize,
    monitoring: Monitoring,
    _smtp: Proc,
}

fn config(dir: &Path, port: u16, smtp_port: u16, db: &str) -> PathBuf {
    let now = Utc::now();
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let text = format!(
        r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "{db}"}}
api_tokens: [{{name: t, token: {TOKEN}, role: admin}}]
providers:
  smtp: {{host: 127.0.0.1, port: {smtp_port}, from: "Tocsin <tocsin@example.com>", tls: none}}
users:
  - {{id: alice, contacts: [{{id: mail, type: email, address: alice@example.com}}], notify: {{high: [{{contact: mail, after: 0m}}]}}}}
  - {{id: bob, contacts: [{{id: mail, type: email, address: bob@example.com}}], notify: {{high: [{{contact: mail, after: 0m}}]}}}}
  - {{id: carol, contacts: [{{id: mail, type: email, address: carol@example.com}}], notify: {{high: [{{contact: mail, after: 0m}}]}}}}
schedules:
  - id: primary
    timezone: UTC
    layers: [{{users: [carol], rotation: 1w, handoff: "2020-01-06T09:00"}}]
    overrides: [{{user: alice, from: "{from}", to: "{to}"}}]
escalation_policies:
  - id: p
    repeat: 3
    levels:
      - {{notify: ["schedule:primary"], escalate_after: 10s}}
      - {{notify: ["user:bob"], escalate_after: 20s}}
sources: [{{id: am, type: prometheus, escalation_policy: p, grouping: alert, key: {KEY}}}]
"#,
        from = fmt(now - chrono::TimeDelta::hours(1)),
        to = fmt(now + chrono::TimeDelta::days(1)),
    );
    let path = dir.join("tocsin.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

impl Stack {
    async fn start(dir: &Path, db: &str) -> Stack {
        let (port, smtp_port) = (free_port(), free_port());
        let smtp = smtp_server(dir, smtp_port);
        let cfg = config(dir, port, smtp_port, db);
        let mut stack = Stack {
            dir: dir.to_owned(),
            base: format!("http://127.0.0.1:{port}"),
            cfg,
            tocsin: None,
            runs: 0,
            monitoring: Monitoring::start(
                dir,
                &format!(
                    r#"
  - name: tocsin
    webhook_configs:
      - url: http://127.0.0.1:{port}/api/v1/events/prometheus/{KEY}
        send_resolved: true
"#
                ),
            )
            .await,
            _smtp: smtp,
        };
        stack.start_tocsin().await;
        stack
    }

    async fn start_tocsin(&mut self) {
        let p = serve(&self.dir, &self.cfg, self.runs);
        self.runs += 1;
        self.tocsin = Some(p);
        wait_http_ok(&format!("{}/readyz", self.base), Duration::from_secs(30)).await;
    }

    /// `kill -9`: no shutdown of any kind.
    fn kill_tocsin(&mut self) {
        if let Some(mut p) = self.tocsin.take() {
            p.kill();
        }
    }

    async fn get(&self, path: &str) -> Value {
        api_get(&self.base, TOKEN, path).await
    }

    async fn alerts(&self) -> Vec<Value> {
        let mut v = self.get("/api/v1/alerts?source=am&limit=100").await["alerts"]
            .as_array()
            .unwrap()
            .clone();
        v.sort_by_key(|a| a["id"].as_i64());
        v
    }

    /// The emails delivered to `to`, oldest first.
    fn mails_to(&self, to: &str) -> Vec<String> {
        delivered(&self.dir)
            .into_iter()
            .filter(|m| m.contains(&format!("To: {to}")))
            .collect()
    }

    async fn mail_to(&self, to: &str, n: usize) -> String {
        wait_for(
            &format!("email {n} to {to}"),
            Duration::from_secs(60),
            || async { self.mails_to(to).get(n - 1).cloned() },
        )
        .await
    }
}

fn steps(a: &Value) -> Vec<(i64, i64, String)> {
    a["escalation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["round"].as_i64().unwrap(),
                s["level"].as_i64().unwrap(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn whole_path(stack: &mut Stack) {
    // 1. The rule fires: alice, on call by override, is emailed; carol's
    //    layer is overridden, so she is not.
    stack.monitoring.set("node-1", 1.0);
    let mail = stack.mail_to("alice@example.com", 1).await;
    let alerts = stack.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let id = alerts[0]["id"].as_i64().unwrap();
    assert!(
        mail.contains(&format!(
            "Subject: [Tocsin] SEV0 #{id}: harness down on node-1"
        )),
        "{mail}"
    );
    let accept = body_line(&mail, "Accept: ").expect("an accept link");
    assert!(
        accept.starts_with(&format!("{}/act/accept?alert={id}&user=alice&", stack.base)),
        "{accept}"
    );
    let a = stack.get(&format!("/api/v1/alerts/{id}")).await;
    let timeline = a["timeline"].to_string();
    assert!(timeline.contains("alice"), "{timeline}");
    assert!(stack.mails_to("carol@example.com").is_empty());

    // 2. Level 2 is pending (due 10 s after level 1). Kill -9 now; restart
    //    after its due time: it runs once, and bob gets one email.
    let a = stack.get(&format!("/api/v1/alerts/{id}")).await;
    let pending: Vec<&Value> = a["escalation"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1, "{a}");
    assert_eq!(pending[0]["level"], 1, "level 2 (0-based 1) is next: {a}");
    let due: DateTime<Utc> = pending[0]["due_at"].as_str().unwrap().parse().unwrap();
    stack.kill_tocsin();
    assert!(stack.mails_to("bob@example.com").is_empty());
    let wait = (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
    tokio::time::sleep(wait).await;
    stack.start_tocsin().await;
    let bob = stack.mail_to("bob@example.com", 1).await;
    assert!(
        bob.contains(&format!("#{id}: harness down on node-1")),
        "{bob}"
    );
    let a = stack.get(&format!("/api/v1/alerts/{id}")).await;
    let done_level2: Vec<_> = steps(&a)
        .into_iter()
        .filter(|(r, l, s)| (*r, *l) == (0, 1) && s == "done")
        .collect();
    assert_eq!(done_level2.len(), 1, "level 2 ran exactly once: {a}");

    // 3. Accept through alice's email link: GET confirms, POST acts. The
    //    next round (due 20 s after level 2) is cancelled.
    let page = http().get(&accept).send().await.unwrap();
    assert!(page.status().is_success());
    assert_eq!(
        stack.get(&format!("/api/v1/alerts/{id}")).await["status"],
        "pending"
    );
    let res = http().post(&accept).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let a = stack.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(a["status"], "accepted");
    assert_eq!(a["accepted_by"], "user:alice");
    let st = steps(&a);
    assert!(st.iter().all(|(_, _, s)| s != "pending"), "{st:?}");
    assert!(st.iter().any(|(_, _, s)| s == "cancelled"), "{st:?}");

    // 4. node-1's rule resolves → the alert resolves. Meanwhile node-2
    //    fires and resolves before its level 2: bob is never paged for it.
    stack.monitoring.set("node-2", 1.0);
    let second = wait_for("node-2's alert", Duration::from_secs(60), || async {
        let a = stack.alerts().await;
        (a.len() == 2).then(|| a[1]["id"].as_i64().unwrap())
    })
    .await;
    stack.monitoring.set("node-1", 0.0);
    stack.monitoring.set("node-2", 0.0);
    wait_for("both alerts resolved", Duration::from_secs(60), || async {
        let a = stack.alerts().await;
        a.iter().all(|x| x["status"] == "resolved").then_some(())
    })
    .await;
    let b = stack.get(&format!("/api/v1/alerts/{second}")).await;
    let st = steps(&b);
    assert!(st.iter().all(|(_, _, s)| s != "pending"), "{st:?}");
    let a = stack.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(a["resolved_by"], "source:am");

    // Past every step that would have been due, nothing more went out:
    // alice got one email per alert (the second may be its own or bundled),
    // bob exactly one, carol none.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let alice = stack.mails_to("alice@example.com");
    assert!(
        (1..=2).contains(&alice.len()),
        "alice: {} emails",
        alice.len()
    );
    assert!(
        alice.iter().any(|m| m.contains(&format!("#{second}"))),
        "alice was paged for the second alert"
    );
    assert_eq!(stack.mails_to("bob@example.com").len(), 1);
    assert!(stack.mails_to("carol@example.com").is_empty());
    let b = stack.get(&format!("/api/v1/alerts/{second}")).await;
    assert!(
        b["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["user_id"] == "alice"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_to_email_escalation_accept_resolve_and_kill9_on_sqlite() {
    let dir = scratch("paging-sqlite");
    let db = format!("sqlite://{}", dir.join("tocsin.db").display());
    let mut stack = Stack::start(&dir, &db).await;
    whole_path(&mut stack).await;
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_to_email_escalation_accept_resolve_and_kill9_on_postgres() {
    let dir = scratch("paging-pg");
    let pg = Postgres::start(&dir.join("pg"));
    let mut stack = Stack::start(&dir, &pg.url).await;
    whole_path(&mut stack).await;
    drop(stack);
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}
