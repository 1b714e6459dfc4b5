//! A provider outage: the SMTP server refuses connections while alerts come
//! in. Every page is retried on the configured schedule (visible on each
//! alert's timeline), and once a real SMTP server (aiosmtpd) is back, each
//! alert is emailed exactly once.
//!
//! In CI the outage lasts 8 s with the retry policy scaled down (backoff
//! 1 s, at most 2 s). `TOCSIN_OUTAGE_SECS=600` runs the full ten-minute
//! outage with the default policy (backoff 10 s doubling to 5 min, 8
//! attempts) instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;

const KEY: &str = "outage-key-0123456789abcdef";
const TOKEN: &str = "outage-token-0123456789abcd";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_wait_out_an_smtp_outage_and_arrive_once() {
    let outage: u64 = std::env::var("TOCSIN_OUTAGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let retry = if outage >= 60 {
        String::new()
    } else {
        ", retry: {attempts: 30, backoff: 1s, max_backoff: 2s}".to_owned()
    };
    let dir = scratch("outage");
    let smtp = free_port();
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
providers:
  smtp: {{host: 127.0.0.1, port: {smtp}, from: tocsin@example.com, tls: none}}
notifications: {{bundle_window: 10s{retry}}}
users:
  - id: alice
    contacts: [{{id: mail, type: email, address: alice@example.com}}]
    notify: {{high: [{{contact: mail, after: 0m}}]}}
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:alice"], escalate_after: 1h}}]}}
sources: [{{id: am, type: prometheus, grouping: alert, escalation_policy: p, key: {KEY}}}]
"#,
            db = dir.join("t.db").display()
        ),
    )
    .unwrap();
    let _tocsin = serve(&dir, &cfg, 0);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;

    // The outage begins: nothing listens on the SMTP port. Five alerts
    // come in.
    let started = Instant::now();
    let ids = post_alerts(&base, KEY, alertmanager_body("outage", 5, "firing")).await;
    tokio::time::sleep(Duration::from_secs(outage)).await;
    // The first page has been tried several times by now, each failure on
    // its timeline with the next try's time.
    let a = api_get(&base, TOKEN, &format!("/api/v1/alerts/{}", ids[0])).await;
    let failures: Vec<String> = a["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "notification")
        .filter_map(|e| e["message"].as_str())
        .filter(|m| m.contains("failed"))
        .map(str::to_owned)
        .collect();
    assert!(failures.len() >= 3, "{failures:?}");
    for f in &failures {
        assert!(
            f.starts_with("attempt ")
                && f.contains("to alice by email (contact `mail`) failed: SMTP:")
                && f.contains("; retrying at "),
            "{f}"
        );
    }
    assert_eq!(a["notifications"][0]["status"], "pending");

    // The provider is back.
    let _smtp = smtp_server(&dir, smtp);
    let back = Instant::now();
    for id in &ids {
        wait_for("every page sent", Duration::from_secs(400), || async {
            let a = api_get(&base, TOKEN, &format!("/api/v1/alerts/{id}")).await;
            (a["notifications"][0]["status"] == "sent").then_some(())
        })
        .await;
    }
    eprintln!(
        "outage of {outage} s: {} failed attempts on the first page, all delivered {:?} after the provider came back ({:?} after the alerts)",
        failures.len(),
        back.elapsed(),
        started.elapsed()
    );
    // Past another retry period: each alert was emailed exactly once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = delivered(&dir);
    for id in &ids {
        let n = mails
            .iter()
            .filter(|m| decode_body(m).contains(&format!("/api/v1/alerts/{id}\n")))
            .count();
        assert_eq!(n, 1, "alert {id} in {n} emails");
        let a = api_get(&base, TOKEN, &format!("/api/v1/alerts/{id}")).await;
        let n = a["notifications"].as_array().unwrap();
        assert_eq!((n.len(), n[0]["status"].as_str()), (1, Some("sent")));
        let last = a["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e["kind"] == "notification")
            .unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(last.contains(": delivered (250"), "{last}");
    }
    assert!(mails.len() <= 2, "{} emails for 5 alerts", mails.len());
}
