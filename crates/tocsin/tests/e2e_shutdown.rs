//! A clean shutdown never causes a second send. Eighty alerts page eight
//! users (ten each, one message per page, one message at a time per
//! contact) by a webhook that takes 1.5 s to answer; SIGTERM arrives while
//! eight deliveries are in flight and most pages wait. Tocsin stops claiming, waits for the sends in
//! flight, records them as sent and exits by itself. After a restart, and
//! past the lease of anything it held, every page has been delivered
//! exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use common::*;
use serde_json::Value;

const KEY: &str = "shutdown-key-0123456789abcdef";
const TOKEN: &str = "shutdown-token-0123456789abcd";

/// Alert ids of every request the slow webhook got, in arrival order.
type Calls = Arc<Mutex<Vec<i64>>>;

async fn slow_webhook(calls: Calls) -> u16 {
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|State(calls): State<Calls>, b: Bytes| async move {
                let v: Value = serde_json::from_slice(&b).unwrap();
                calls
                    .lock()
                    .unwrap()
                    .push(v["alert"]["id"].as_i64().unwrap());
                tokio::time::sleep(Duration::from_millis(1500)).await;
                StatusCode::OK
            }),
        )
        .with_state(calls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_sends_in_flight_and_nothing_is_sent_twice() {
    let dir = tempfile::tempdir().unwrap();
    let calls: Calls = Arc::default();
    let hook = slow_webhook(calls.clone()).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = dir.path().join("tocsin.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "sqlite://{db}"}}
api_tokens: [{{name: t, token: {TOKEN}, role: admin}}]
notifications: {{bundle_window: 0s}}
users:
{users}
escalation_policies:
{policies}
sources: [{{id: am, type: prometheus, grouping: alert, escalation_policy: p0, key: {KEY}}}]
"#,
            db = dir.path().join("t.db").display(),
            users = (0..8)
                .map(|i| format!("  - {{id: u{i}, contacts: [{{id: hook, type: webhook, url: \"http://127.0.0.1:{hook}/hook\"}}], notify: {{high: [{{contact: hook, after: 0m}}]}}}}"))
                .collect::<Vec<_>>()
                .join("\n"),
            policies = (0..8)
                .map(|i| format!("  - {{id: p{i}, routing_key: r{i}, levels: [{{notify: [\"user:u{i}\"], escalate_after: 1h}}]}}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    )
    .unwrap();
    let mut tocsin = serve(dir.path(), &cfg, 0);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;

    // Ten alerts for each of the eight users (the routing_key label picks
    // the user's policy).
    let mut body: Value =
        serde_json::from_str(&alertmanager_body("shutdown", 80, "firing")).unwrap();
    for (i, a) in body["alerts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        a["labels"]["routing_key"] = Value::from(format!("r{}", i % 8));
    }
    let body = body.to_string();
    let ids = post_alerts(&base, KEY, body).await;
    assert_eq!(ids.len(), 80);

    // Several sends in flight, then SIGTERM.
    wait_for("sends in flight", Duration::from_secs(10), || async {
        (calls.lock().unwrap().len() >= 8).then_some(())
    })
    .await;
    let in_flight = calls.lock().unwrap().len();
    let asked = Instant::now();
    nix_term(tocsin.pid());
    let status = wait_for("tocsin to exit by itself", Duration::from_secs(40), || {
        let st = tocsin.child.try_wait().unwrap();
        async move { st }
    })
    .await;
    assert!(status.success(), "exit status {status:?}");
    let took = asked.elapsed();
    let log = tocsin.log_text();
    assert!(
        log.contains("finishing the messages being sent"),
        "the shutdown waited for the sends in flight: {log}"
    );
    eprintln!("SIGTERM with {in_flight} sends in flight: exited after {took:?}");
    let before_restart = calls.lock().unwrap().len();
    assert!(
        before_restart < ids.len(),
        "some pages were still queued at the stop"
    );

    // Restart: what was in flight is recorded as sent, the rest is sent
    // now, each once.
    let _tocsin = serve(dir.path(), &cfg, 1);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
    for id in &ids {
        wait_for("every page sent", Duration::from_secs(30), || async {
            let a = api_get(&base, TOKEN, &format!("/api/v1/alerts/{id}")).await;
            (a["notifications"][0]["status"] == "sent").then_some(())
        })
        .await;
    }
    // Past every lease a dead claim could hold (15 s): still one call per
    // alert.
    tokio::time::sleep(Duration::from_secs(17)).await;
    let mut got = calls.lock().unwrap().clone();
    got.sort_unstable();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(got, want, "every alert paged exactly once");
    for id in &ids {
        let a = api_get(&base, TOKEN, &format!("/api/v1/alerts/{id}")).await;
        let n = a["notifications"].as_array().unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(
            (n[0]["status"].as_str(), n[0]["attempts"].as_i64()),
            (Some("sent"), Some(1))
        );
    }
}

fn nix_term(pid: u32) {
    let ok = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
