//! Push (ntfy) and webhook end to end: a webhook opens an alert, the user is
//! paged by both channels at local receivers that check the requests, and
//! pressing the push notification's Accept button (a POST to the signed
//! link, as the ntfy app does) accepts the alert.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

const KEY: &str = "push-key-0123456789abcdef01";
const TOKEN: &str = "push-token-0123456789abcdef";
const HOOK_SECRET: &str = "hook-secret-0123456789abcdef";

type Seen = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

async fn receivers(seen: Seen) -> u16 {
    let app =
        axum::Router::new()
            .route(
                "/ntfy/{topic}",
                axum::routing::post(
                    |State(seen): State<Seen>,
                     Path(topic): Path<String>,
                     h: HeaderMap,
                     b: Bytes| async move {
                        seen.lock().unwrap().push((format!("ntfy:{topic}"), h, b));
                        (StatusCode::OK, r#"{"event":"message"}"#)
                    },
                ),
            )
            .route(
                "/hook",
                axum::routing::post(
                    |State(seen): State<Seen>, h: HeaderMap, b: Bytes| async move {
                        let ts = h["x-tocsin-timestamp"].to_str().unwrap().to_owned();
                        let mut mac =
                            <Hmac<Sha256> as KeyInit>::new_from_slice(HOOK_SECRET.as_bytes())
                                .unwrap();
                        mac.update(format!("{ts}.").as_bytes());
                        mac.update(&b);
                        let ok = h["x-tocsin-signature"].to_str().unwrap()
                            == format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                        seen.lock().unwrap().push(("hook".into(), h, b));
                        if ok {
                            StatusCode::OK
                        } else {
                            StatusCode::UNAUTHORIZED
                        }
                    },
                ),
            )
            .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_by_push_and_webhook_and_accepted_from_the_push_button() {
    let dir = tempfile::tempdir().unwrap();
    let seen: Seen = Arc::default();
    let rport = receivers(seen.clone()).await;
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
providers:
  ntfy: {{base_url: "http://127.0.0.1:{rport}/ntfy"}}
users:
  - id: alice
    contacts:
      - {{id: push, type: push, topic: alice-7f3k}}
      - {{id: hook, type: webhook, url: "http://127.0.0.1:{rport}/hook", secret: {HOOK_SECRET}}}
    notify: {{high: [{{contact: push, after: 0m}}, {{contact: hook, after: 0m}}]}}
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:alice"], escalate_after: 1h}}]}}
sources: [{{id: am, type: prometheus, escalation_policy: p, key: {KEY}}}]
"#,
            db = dir.path().join("t.db").display()
        ),
    )
    .unwrap();
    let _tocsin = serve(dir.path(), &cfg, 0);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;

    let id = post_fixture(&base, KEY, "firing-single.json").await;

    let got = wait_for(
        "the push and the webhook",
        Duration::from_secs(10),
        || async {
            let s = seen.lock().unwrap().clone();
            if s.len() < 2 {
                let a: Value = http()
                    .get(format!("{base}/api/v1/alerts/{id}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                eprintln!("notifications so far: {}", a["notifications"]);
            }
            (s.len() >= 2).then_some(s)
        },
    )
    .await;
    let push = got
        .iter()
        .find(|(k, _, _)| k == "ntfy:alice-7f3k")
        .expect("push published");
    assert_eq!(push.1["priority"], "5");
    let hook = got
        .iter()
        .find(|(k, _, _)| k == "hook")
        .expect("webhook called");
    let payload: Value = serde_json::from_slice(&hook.2).unwrap();
    assert_eq!(
        (
            payload["alert"]["id"].as_i64(),
            payload["recipient"].as_str()
        ),
        (Some(id), Some("alice"))
    );

    let alert = || async { api_get(&base, TOKEN, &format!("/api/v1/alerts/{id}")).await };
    let a = wait_for("both delivered", Duration::from_secs(5), || async {
        let a = alert().await;
        a["notifications"]
            .as_array()
            .filter(|n| n.len() == 2 && n.iter().all(|x| x["status"] == "sent"))
            .map(|_| a.clone())
    })
    .await;
    assert_eq!(a["status"], "pending");

    // The phone's Accept button: ntfy POSTs to the action's URL.
    let actions = push.1["actions"].to_str().unwrap().to_owned();
    let accept = actions
        .split("; ")
        .find(|a| a.starts_with("http, Accept, "))
        .and_then(|a| a.split(", ").nth(2))
        .unwrap()
        .to_owned();
    let res = http().post(&accept).send().await.unwrap();
    assert!(res.status().is_success());
    let a = alert().await;
    assert_eq!(
        (a["status"].as_str(), a["accepted_by"].as_str()),
        (Some("accepted"), Some("user:alice"))
    );
}
