//! The HTTP contract of ingest and the alert API, against a real server on
//! loopback with SQLite storage. Every bad input gets its status code, and
//! the server keeps serving afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

const KEY: &str = "group-key-0123456789abcdef";
const ALERT_KEY: &str = "alert-key-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789";
const OBSERVER: &str = "observer-token-0123456789";
const RESPONDER: &str = "responder-token-0123456789";
use common::LINK_SECRET;

const CONFIG: &str = r#"
server: {body_limit_bytes: 65536}
providers:
  slack: {signing_secret: slack-signing-secret-0123}
  twilio: {account_sid: AC123, auth_token: twilio-auth-token-0123, from: "+15550001111"}
api_tokens:
  - {name: admin, token: admin-token-0123456789, role: admin}
  - {name: watcher, token: observer-token-0123456789, role: observer}
  - {name: oncall, token: responder-token-0123456789, role: responder}
users:
  - {id: alice, name: Alice Example, contacts: [{id: mail, type: email, address: a@example.com}, {id: hook, type: webhook, url: "RECEIVER/hook"}], notify: {high: [{contact: mail, after: 0m}]}}
  - {id: bob, name: Bob Example, contacts: [{id: phone, type: sms, number: "+1 555 000 2222"}, {id: call, type: voice, number: "+15550002222"}]}
  - {id: carol, name: Carol Example, contacts: [{id: slack, type: slack, channel: U0CAROL}]}
schedules:
  - id: primary
    name: SRE primary
    timezone: Europe/Berlin
    layers:
      - {name: weekly, users: [alice, bob], rotation: 1w, handoff: "2026-01-05T09:00"}
    overrides:
      - {user: carol, from: "2026-03-28T18:00", to: "2026-03-30T09:00"}
escalation_policies:
  - {id: default, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
  - {id: harness, routing_key: harness-routing-key, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
  - {id: payments, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
services:
  - {id: payments-svc, name: Payments, escalation_policy: payments}
support_hours:
  - {id: office, timezone: UTC, weekly: {SUPPORT_DAY: "00:00-00:01"}}
sources:
  - {id: am, type: prometheus, escalation_policy: default, key: group-key-0123456789abcdef}
  - {id: am-office, type: prometheus, escalation_policy: default, key: office-key-0123456789abcdef, support_hours: office}
  - {id: am-lowered, type: prometheus, escalation_policy: default, key: lowered-key-0123456789abcd, support_hours: office, outside_support_hours: low}
  - {id: am-per-alert, type: prometheus, escalation_policy: default, grouping: alert, key: alert-key-0123456789abcdef}
"#;

struct Server {
    base: String,
    webhook_hits: Arc<std::sync::atomic::AtomicUsize>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    // A receiver for webhook notifications (test notifications use it).
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_url = format!("http://{}", receiver.local_addr().unwrap());
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["event"], "alert.notification");
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, app).await });
    // Support hours that are certainly not now: one minute, three days ahead.
    let support_day = (chrono::Utc::now() + chrono::TimeDelta::days(3))
        .format("%a")
        .to_string()
        .to_lowercase();
    let config_text = CONFIG
        .replace("RECEIVER", &receiver_url)
        .replace("SUPPORT_DAY", &support_day);
    // reqwest is built with rustls but no provider: install ring first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let channels: Vec<Arc<dyn tocsin_notify::Channel>> = vec![Arc::new(
        tocsin_notify::webhook::Webhook::new(Default::default()).unwrap(),
    )];
    let (base, dir) = common::serve(&config_text, channels).await;
    Server {
        base,
        webhook_hits: hits,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../fixtures/alertmanager/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

impl Server {
    async fn post(&self, path: &str, ct: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn hook(&self, key: &str, body: Vec<u8>) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/events/prometheus/{key}"),
            Some("application/json"),
            body,
        )
        .await
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "text/plain").body(b.to_owned());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.api(reqwest::Method::GET, path, Some(ADMIN), None)
            .await
    }

    async fn alerts(&self, query: &str) -> Vec<Value> {
        let (s, v) = self.get(&format!("/api/v1/alerts{query}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["alerts"].as_array().unwrap().clone()
    }

    async fn still_serving(&self) {
        let (s, v) = self.hook(KEY, fixture("firing-single.json")).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {v}"))
}

#[tokio::test]
async fn group_lifecycle_is_idempotent_and_mapped() {
    let s = start().await;
    let (st, v) = s.hook(KEY, fixture("firing-single.json")).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(
        v,
        json!({"status": "accepted", "alerts": [{"id": 1, "status": "pending"}]})
    );

    // Retries and repeats: same alert, no second one.
    for _ in 0..3 {
        let (st, v) = s
            .post(
                &format!("/webhooks/{KEY}"),
                Some("application/json"),
                fixture("firing-single.json"),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        assert_eq!(v["alerts"][0]["id"], 1);
    }
    s.hook(KEY, fixture("firing-multi.json")).await;
    s.hook(KEY, fixture("mixed.json")).await;
    let all = s.alerts("").await;
    assert_eq!(all.len(), 1);
    let a = &all[0];
    assert_eq!(a["summary"], "HarnessConditionFiring: 2 firing");
    assert_eq!(a["severity"], "SEV0");
    assert_eq!(a["priority"], "high");
    assert_eq!(
        a["policy_id"], "harness",
        "routing key label picks the policy"
    );
    assert_eq!(a["seen_count"], 6);
    assert_eq!(a["members"].as_array().unwrap().len(), 3);

    let (st, v) = s.hook(KEY, fixture("resolved.json")).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(v["alerts"][0]["status"], "resolved");
    // The resolved notification again: nothing new.
    s.hook(KEY, fixture("resolved.json")).await;
    // A late firing from before the resolve: ignored.
    let (_, v) = s.hook(KEY, fixture("mixed.json")).await;
    assert_eq!(v["alerts"][0]["status"], "resolved");
    assert_eq!(s.alerts("").await.len(), 1);

    let (_, detail) = s.get("/api/v1/alerts/1").await;
    assert_eq!(detail["resolved_at"], "2026-11-21T05:02:43.226Z");
    assert_eq!(detail["detected_at"], "2026-11-21T05:02:34.226Z");
    let kinds: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["created", "updated", "updated", "resolved", "ignored"]
    );
    assert_eq!(detail["timeline"][0]["actor"], "source:am");
    assert_eq!(detail["timeline"][0]["channel"], "prometheus webhook");
}

#[tokio::test]
async fn per_alert_grouping_and_fallback_routing() {
    let s = start().await;
    let (st, v) = s.hook(ALERT_KEY, fixture("mixed.json")).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    // node-2 is resolved in its first notification: nothing to open for it.
    assert_eq!(v["alerts"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = s.hook(ALERT_KEY, fixture("resolved.json")).await;
    let statuses: Vec<&str> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["resolved", "resolved"]);

    // An unknown routing key falls back to the source's policy, recorded.
    let mut body: Value = serde_json::from_slice(&fixture("api-firing.json")).unwrap();
    body["alerts"][0]["labels"]["routing_key"] = json!("no-such-key");
    let (_, v) = s.hook(KEY, serde_json::to_vec(&body).unwrap()).await;
    let id = v["alerts"][0]["id"].as_i64().unwrap();
    let (_, a) = s.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(a["policy_id"], "default");
    let routed = a["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "created")
        .unwrap();
    assert!(
        routed["message"]
            .as_str()
            .unwrap()
            .contains("`no-such-key` matches no escalation policy"),
        "{routed}"
    );

    // service_id picks the service and its policy.
    let mut body: Value = serde_json::from_slice(&fixture("truncated.json")).unwrap();
    body["alerts"][0]["labels"]["service_id"] = json!("payments-svc");
    let (_, v) = s.hook(KEY, serde_json::to_vec(&body).unwrap()).await;
    let id = v["alerts"][0]["id"].as_i64().unwrap();
    let (_, a) = s.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(
        (a["policy_id"].as_str(), a["service_id"].as_str()),
        (Some("payments"), Some("payments-svc"))
    );
}

#[tokio::test]
async fn every_bad_input_gets_its_status_and_the_server_keeps_serving() {
    let s = start().await;

    // 404: unknown key, and the key is not echoed.
    let (st, v) = s
        .hook("not-a-real-key-123456", fixture("firing-single.json"))
        .await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    assert!(!v.to_string().contains("not-a-real-key"), "{v}");
    s.still_serving().await;

    // 415: not JSON.
    let (st, v) = s
        .post(
            &format!("/api/v1/events/prometheus/{KEY}"),
            Some("application/x-www-form-urlencoded"),
            fixture("firing-single.json"),
        )
        .await;
    assert_eq!(
        (st, error_code(&v)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
    s.still_serving().await;

    // 413: above the body limit (64 KiB here), declared and streamed.
    let big = vec![b' '; 70_000];
    let (st, v) = s.hook(KEY, big.clone()).await;
    assert_eq!(
        (st, error_code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let status_line = post_chunked(&s.base, &format!("/webhooks/{KEY}"), &big).await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    s.still_serving().await;

    // 400: malformed bodies, each naming the field.
    let cases: Vec<(&[u8], &str)> = vec![
        (b"{not json", "invalid Alertmanager webhook"),
        (b"[]", "must be a JSON object"),
        (br#"{"status":"firing"}"#, "missing field `alerts`"),
        (br#"{"status":"weird","alerts":[]}"#, "status:"),
        (br#"{"status":"firing","groupKey":"g","alerts":[{"status":"firing","labels":{},"startsAt":"nope"}]}"#, "alerts[0].startsAt"),
        (br#"{"status":"firing","groupKey":"g","alerts":[{"status":"firing","labels":"x","startsAt":"2026-01-01T00:00:00Z"}]}"#, "alerts[0].labels"),
        (br#"{"status":"firing","alerts":[{"status":"firing","labels":{},"startsAt":"2026-01-01T00:00:00Z"}]}"#, "groupKey"),
        (br#"{"status":"firing","groupKey":"g","alerts":[]}"#, "alerts: the list is empty"),
    ];
    for (body, needle) in cases {
        let (st, v) = s.hook(KEY, body.to_vec()).await;
        assert_eq!(
            (st, error_code(&v)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{}",
            String::from_utf8_lossy(body)
        );
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "`{msg}` should mention `{needle}`");
        s.still_serving().await;
    }

    // Unknown fields (newer Alertmanagers) are fine; missing content type is accepted.
    let mut body: Value = serde_json::from_slice(&fixture("firing-single.json")).unwrap();
    body["notification_reason"] = json!("first notification");
    body["routeLabels"] = json!({"team": "sre"});
    let (st, _) = s
        .post(
            &format!("/webhooks/{KEY}"),
            None,
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);

    // Wrong method and unknown path: JSON errors too.
    let (st, v) = s
        .api(
            reqwest::Method::GET,
            &format!("/webhooks/{KEY}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (st, error_code(&v)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let (st, v) = s.api(reqwest::Method::GET, "/nope", None, None).await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    s.still_serving().await;
}

/// Send a chunked body (no Content-Length) over a raw connection; returns the status line.
async fn post_chunked(base: &str, path: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(8192) {
        let frame = format!("{:x}\r\n", chunk.len());
        // The server may answer and close before the whole body is sent.
        if conn.write_all(frame.as_bytes()).await.is_err()
            || conn.write_all(chunk).await.is_err()
            || conn.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn api_needs_tokens_and_roles() {
    let s = start().await;
    s.hook(KEY, fixture("firing-single.json")).await;
    use reqwest::Method;

    let (st, v) = s.api(Method::GET, "/api/v1/alerts", None, None).await;
    assert_eq!(
        (st, error_code(&v)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (st, _) = s
        .api(
            Method::GET,
            "/api/v1/alerts",
            Some("wrong-token-0123456789"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let res = s
        .http
        .get(format!("{}/api/v1/alerts", s.base))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");

    // Observers read but may not act.
    let (st, _) = s
        .api(Method::GET, "/api/v1/alerts/1", Some(OBSERVER), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    for action in ["accept", "resolve"] {
        let (st, v) = s
            .api(
                Method::POST,
                &format!("/api/v1/alerts/1/{action}"),
                Some(OBSERVER),
                None,
            )
            .await;
        assert_eq!((st, error_code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    }
    let (st, _) = s
        .api(
            Method::POST,
            "/api/v1/alerts/1/comment",
            Some(OBSERVER),
            Some("hi"),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Responders act.
    let (st, v) = s
        .api(
            Method::POST,
            "/api/v1/alerts/1/accept",
            Some(RESPONDER),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (v["status"].as_str(), v["accepted_by"].as_str()),
        (Some("accepted"), Some("token:oncall"))
    );
    let (st, v) = s
        .api(
            Method::POST,
            "/api/v1/alerts/1/comment",
            Some(RESPONDER),
            Some("  on it  "),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(
        (v["kind"].as_str(), v["message"].as_str()),
        (Some("comment"), Some("on it"))
    );
    let res = s
        .http
        .post(format!("{}/api/v1/alerts/1/comment", s.base))
        .bearer_auth(ADMIN)
        .json(&json!({"text": "json works"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let (st, v) = s
        .api(
            Method::POST,
            "/api/v1/alerts/1/comment",
            Some(ADMIN),
            Some("   "),
        )
        .await;
    assert_eq!(
        (st, error_code(&v)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let (st, v) = s
        .api(Method::POST, "/api/v1/alerts/1/resolve", Some(ADMIN), None)
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("resolved"))
    );
    let (st, v) = s
        .api(Method::POST, "/api/v1/alerts/1/accept", Some(ADMIN), None)
        .await;
    assert_eq!((st, error_code(&v)), (StatusCode::CONFLICT, "conflict"));
    let (st, v) = s
        .api(Method::POST, "/api/v1/alerts/999/accept", Some(ADMIN), None)
        .await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (st, v) = s
        .api(Method::GET, "/api/v1/alerts/abc", Some(ADMIN), None)
        .await;
    assert_eq!(
        (st, error_code(&v)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );

    let (_, v) = s.get("/api/v1/alerts/1").await;
    let tl: Vec<(&str, &str)> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tl,
        [
            ("created", "source:am"),
            ("accepted", "token:oncall"),
            ("comment", "token:oncall"),
            ("comment", "token:admin"),
            ("resolved", "token:admin")
        ]
    );
}

#[tokio::test]
async fn list_filters_and_pagination() {
    let s = start().await;
    s.hook(KEY, fixture("firing-single.json")).await; // 1: SEV0, harness policy
    s.hook(ALERT_KEY, fixture("api-firing.json")).await; // 2, 3: per alert
    s.hook(KEY, fixture("truncated.json")).await; // 4
    s.api(
        reqwest::Method::POST,
        "/api/v1/alerts/4/resolve",
        Some(ADMIN),
        None,
    )
    .await;

    let ids = |v: Vec<Value>| {
        v.iter()
            .map(|a| a["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(s.alerts("").await), [4, 3, 2, 1]);
    assert_eq!(ids(s.alerts("?status=resolved").await), [4]);
    assert_eq!(ids(s.alerts("?source=am-per-alert").await), [3, 2]);
    assert_eq!(
        ids(s.alerts("?severity=SEV0&status=pending").await),
        [3, 2, 1]
    );
    assert_eq!(ids(s.alerts("?label=instance%3Dapi-2").await), [3]);
    assert_eq!(
        ids(s.alerts("?label=node=node-1&label=cluster=harness").await),
        [1]
    );

    let (_, page) = s.get("/api/v1/alerts?limit=3").await;
    assert_eq!(ids(page["alerts"].as_array().unwrap().clone()), [4, 3, 2]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page2) = s
        .get(&format!("/api/v1/alerts?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(ids(page2["alerts"].as_array().unwrap().clone()), [1]);
    assert!(page2["next_cursor"].is_null());

    for bad in [
        "?status=open",
        "?severity=SEV9",
        "?limit=0",
        "?limit=x",
        "?cursor=zz",
        "?label=novalue",
        "?colour=red",
    ] {
        let (st, v) = s.get(&format!("/api/v1/alerts{bad}")).await;
        assert_eq!(
            (st, error_code(&v)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = start().await;
    let (st, v) = s.api(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (st, v) = s.api(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (st, v["storage"].as_str()),
        (StatusCode::OK, Some("sqlite"))
    );

    s.hook(KEY, fixture("firing-single.json")).await;
    s.hook(KEY, fixture("firing-single.json")).await;
    s.hook(KEY, b"{".to_vec()).await;
    s.hook("unknown-key-0123456789", fixture("firing-single.json"))
        .await;
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"tocsin_events_ingested_total{source="am",outcome="created"} 1"#,
        r#"tocsin_events_ingested_total{source="am",outcome="duplicate"} 1"#,
        r#"tocsin_events_ingested_total{source="am",outcome="invalid"} 1"#,
        r#"tocsin_events_ingested_total{source="unknown",outcome="unknown_key"} 1"#,
        r#"tocsin_alerts{status="pending"} 1"#,
        r#"tocsin_alerts{status="resolved"} 0"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
}

#[tokio::test]
async fn schedules_on_call_shifts_and_feeds() {
    let s = start().await;
    let (st, v) = s.get("/api/v1/schedules").await;
    assert_eq!(st, StatusCode::OK);
    let sched = &v["schedules"][0];
    assert_eq!(
        (sched["id"].as_str(), sched["timezone"].as_str()),
        (Some("primary"), Some("Europe/Berlin"))
    );
    assert_eq!(
        sched["ical_url"],
        "http://tocsin.test/ical/feed-primary-0123456789abcdef.ics"
    );
    assert!(sched["on_call"]["user"].is_string());

    // Summer: Monday 30 March 09:00 CEST (07:00 UTC) ends carol's override; week 12 is alice's.
    let (_, v) = s
        .get("/api/v1/schedules/primary/oncall?at=2026-03-30T06:59:00Z")
        .await;
    assert_eq!(v["on_call"]["user"], "carol");
    assert_eq!(
        v["on_call"]["source"],
        json!({"kind": "override", "index": 0})
    );
    let (_, v) = s
        .get("/api/v1/schedules/primary/oncall?at=2026-03-30T07:00:00Z")
        .await;
    assert_eq!(
        (v["on_call"]["user"].as_str(), v["on_call"]["name"].as_str()),
        (Some("alice"), Some("Alice Example"))
    );
    assert_eq!(v["on_call"]["source_name"], "weekly");

    let (st, v) = s
        .get("/api/v1/schedules/primary/shifts?from=2026-03-23T00:00:00Z&to=2026-04-06T00:00:00Z")
        .await;
    assert_eq!(st, StatusCode::OK);
    let shifts: Vec<(&str, &str, &str)> = v["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["user"].as_str().unwrap(),
                x["start"].as_str().unwrap(),
                x["end"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shifts,
        [
            ("alice", "2026-03-23T00:00:00Z", "2026-03-23T08:00:00Z"),
            ("bob", "2026-03-23T08:00:00Z", "2026-03-28T17:00:00Z"),
            ("carol", "2026-03-28T17:00:00Z", "2026-03-30T07:00:00Z"),
            ("alice", "2026-03-30T07:00:00Z", "2026-04-06T00:00:00Z"),
        ]
    );

    for bad in [
        "/api/v1/schedules/primary/oncall?at=yesterday",
        "/api/v1/schedules/primary/shifts?from=2026-03-23T00:00:00Z&to=2026-03-22T00:00:00Z",
        "/api/v1/schedules/primary/shifts?from=2026-01-01T00:00:00Z&to=2028-01-01T00:00:00Z",
    ] {
        let (st, v) = s.get(bad).await;
        assert_eq!(
            (st, error_code(&v)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{bad}"
        );
    }
    let (st, _) = s.get("/api/v1/schedules/nope/oncall").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .api(reqwest::Method::GET, "/api/v1/schedules", None, None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    let (_, v) = s.get("/api/v1/users").await;
    let alice = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(
        alice["ical_url"],
        "http://tocsin.test/ical/feed-user-alice-0123456789.ics"
    );

    // Feeds: no API token needed (the URL's token is the credential); valid iCalendar.
    for (path, who) in [
        ("/ical/feed-primary-0123456789abcdef.ics", None),
        (
            "/ical/feed-user-alice-0123456789.ics",
            Some("Alice Example"),
        ),
    ] {
        let res = s
            .http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/calendar")
        );
        let text = res.text().await.unwrap();
        let cal: icalendar::Calendar = text
            .parse()
            .unwrap_or_else(|e| panic!("not iCalendar: {e}\n{text}"));
        use icalendar::Component;
        let events: Vec<&icalendar::Event> =
            cal.components.iter().filter_map(|c| c.as_event()).collect();
        assert!(!events.is_empty(), "{text}");
        for e in &events {
            assert!(e.get_uid().is_some_and(|u| u.ends_with("@tocsin")));
            assert!(e.get_start().is_some() && e.get_end().is_some());
            let summary = e.get_summary().unwrap();
            assert!(summary.starts_with("On call: "), "{summary}");
            if let Some(name) = who {
                assert!(
                    summary.contains(name),
                    "a user's feed holds only their shifts: {summary}"
                );
            }
        }
        assert!(
            text.contains("BEGIN:VCALENDAR\r\n")
                && text.contains("VERSION:2.0\r\n")
                && text.contains("PRODID:"),
            "{text}"
        );
    }
    let res = s
        .http
        .get(format!("{}/ical/wrong-token.ics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn action_links_confirm_on_get_and_act_on_post_only_when_signed() {
    use tocsin_domain::links::{ActionLink, LinkAction, LinkSigner};
    let s = start().await;
    s.hook(KEY, fixture("firing-single.json")).await;
    let signer = LinkSigner::new(LINK_SECRET);
    let link = |action, user: &str, expires: i64| ActionLink {
        alert_id: 1,
        action,
        user: user.into(),
        expires,
    };
    let future = chrono::Utc::now().timestamp() + 3600;
    let url = |l: &ActionLink| format!("{}/act/{}?{}", s.base, l.action, signer.query(l));

    // GET shows a confirmation form and changes nothing.
    let accept = link(LinkAction::Accept, "alice", future);
    let res = s.http.get(url(&accept)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(html.contains("Accept alert #1?"), "{html}");
    let (_, a) = s.get("/api/v1/alerts/1").await;
    assert_eq!(a["status"], "pending");

    // Tampered, re-targeted or expired links: 403, nothing changes.
    let mut tampered = url(&accept);
    tampered = tampered.replace("user=alice", "user=mallory");
    let expired = link(LinkAction::Accept, "alice", 1_000_000_000);
    let wrong_key = format!(
        "{}/act/accept?{}",
        s.base,
        LinkSigner::new("other-secret").query(&accept)
    );
    let as_resolve = url(&accept).replace("/act/accept", "/act/resolve");
    for bad in [tampered, url(&expired), wrong_key, as_resolve] {
        for method in [reqwest::Method::GET, reqwest::Method::POST] {
            let res = s.http.request(method.clone(), &bad).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{method} {bad}");
        }
    }
    let res = s
        .http
        .post(format!("{}/act/accept?alert=1", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let (_, a) = s.get("/api/v1/alerts/1").await;
    assert_eq!(a["status"], "pending");

    // The POST acts, as the user the link was sent to.
    let res = s.http.post(url(&accept)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, a) = s.get("/api/v1/alerts/1").await;
    assert_eq!(
        (a["status"].as_str(), a["accepted_by"].as_str()),
        (Some("accepted"), Some("user:alice"))
    );
    let last = a["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["actor"].as_str(), last["channel"].as_str()),
        (Some("user:alice"), Some("link"))
    );
    let res = s
        .http
        .post(url(&link(LinkAction::Resolve, "alice", future)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, a) = s.get("/api/v1/alerts/1").await;
    assert_eq!(a["status"], "resolved");
}

#[tokio::test]
async fn unaccept_and_reassign() {
    let s = start().await;
    s.hook(KEY, fixture("firing-single.json")).await;
    use reqwest::Method;
    let post_json = |path: String, body: Value| {
        let req = s
            .http
            .post(format!("{}{path}", s.base))
            .bearer_auth(ADMIN)
            .json(&body);
        async move {
            let res = req.send().await.unwrap();
            let st = res.status();
            (st, res.json::<Value>().await.unwrap())
        }
    };
    s.api(Method::POST, "/api/v1/alerts/1/accept", Some(ADMIN), None)
        .await;
    let (st, v) = s
        .api(Method::POST, "/api/v1/alerts/1/unaccept", Some(ADMIN), None)
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("pending"))
    );
    let (st, _) = s
        .api(
            Method::POST,
            "/api/v1/alerts/1/unaccept",
            Some(OBSERVER),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let (st, v) = post_json("/api/v1/alerts/1/reassign".into(), json!({"user": "bob"})).await;
    assert_eq!(
        (st, v["policy_id"].as_str()),
        (StatusCode::OK, Some("user:bob"))
    );
    let (st, v) = post_json(
        "/api/v1/alerts/1/reassign".into(),
        json!({"escalation_policy": "payments"}),
    )
    .await;
    assert_eq!(
        (st, v["policy_id"].as_str()),
        (StatusCode::OK, Some("payments"))
    );
    for bad in [
        json!({"user": "zed"}),
        json!({"escalation_policy": "nope"}),
        json!({}),
        json!({"user": "bob", "escalation_policy": "payments"}),
        json!({"team": "x"}),
    ] {
        let (st, v) = post_json("/api/v1/alerts/1/reassign".into(), bad.clone()).await;
        assert_eq!(
            (st, error_code(&v)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{bad}"
        );
    }
    let (_, v) = s.get("/api/v1/alerts/1").await;
    let pending: Vec<&str> = v["escalation"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == "pending")
        .map(|x| x["policy_id"].as_str().unwrap())
        .collect();
    assert_eq!(pending, ["payments"]);
    s.api(Method::POST, "/api/v1/alerts/1/resolve", Some(ADMIN), None)
        .await;
    let (st, v) = post_json("/api/v1/alerts/1/reassign".into(), json!({"user": "bob"})).await;
    assert_eq!((st, error_code(&v)), (StatusCode::CONFLICT, "conflict"));
}

#[tokio::test]
async fn slack_buttons_act_only_with_a_valid_fresh_signature() {
    use hmac::{Hmac, KeyInit, Mac};
    let s = start().await;
    s.hook(KEY, fixture("firing-single.json")).await;
    let payload = json!({"type": "block_actions", "user": {"id": "U0CAROL", "username": "carol"},
        "actions": [{"action_id": "accept", "value": "1", "block_id": "tocsin-alert-1"}],
        "response_url": "http://127.0.0.1:1/unused"});
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let sign = |ts: i64, secret: &str| {
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    };
    let post = |ts: i64, sig: String| {
        s.http
            .post(format!("{}/api/v1/slack/interactivity", s.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sig)
            .body(body.clone())
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    for (ts, sig) in [
        (now, sign(now, "wrong-secret")),
        (now - 600, sign(now - 600, "slack-signing-secret-0123")),
        (now, "v0=00".to_owned()),
    ] {
        let res = post(ts, sig).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let (_, a) = s.get("/api/v1/alerts/1").await;
    assert_eq!(a["status"], "pending", "refused requests change nothing");

    let res = post(now, sign(now, "slack-signing-secret-0123"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, a) = s.get("/api/v1/alerts/1").await;
    assert_eq!(
        (a["status"].as_str(), a["accepted_by"].as_str()),
        (Some("accepted"), Some("user:carol"))
    );
    let last = a["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["channel"], "slack");
}

fn twilio_sign(url: &str, params: &[(&str, &str)], token: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn twilio_sms_replies_and_voice_keypresses_act_only_when_signed() {
    let s = start().await;
    s.hook(KEY, fixture("firing-single.json")).await; // alert 1
    s.hook(KEY, fixture("truncated.json")).await; // alert 2
    let post = |path: &str, params: Vec<(&'static str, &'static str)>, sig: String| {
        s.http
            .post(format!("{}{path}", s.base))
            .header("x-twilio-signature", sig)
            .form(&params)
            .send()
    };
    let token = "twilio-auth-token-0123";
    let reply = vec![
        ("From", "+15550002222"),
        ("To", "+15550001111"),
        ("Body", "ACK 1"),
        ("MessageSid", "SM1"),
    ];

    // Wrong token or tampered body: 403, nothing changes.
    let res = post(
        "/api/v1/twilio/sms",
        reply.clone(),
        twilio_sign("http://tocsin.test/api/v1/twilio/sms", &reply, "wrong"),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let tampered = vec![
        ("From", "+15550002222"),
        ("To", "+15550001111"),
        ("Body", "RES 1"),
        ("MessageSid", "SM1"),
    ];
    let res = post(
        "/api/v1/twilio/sms",
        tampered,
        twilio_sign("http://tocsin.test/api/v1/twilio/sms", &reply, token),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, a) = s.get("/api/v1/alerts/1").await;
    assert_eq!(a["status"], "pending");

    // Signed: bob accepts alert 1 by SMS; the reply is TwiML.
    let res = post(
        "/api/v1/twilio/sms",
        reply.clone(),
        twilio_sign("http://tocsin.test/api/v1/twilio/sms", &reply, token),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    let xml = res.text().await.unwrap();
    assert!(
        xml.contains("<Message>Alert #1 is accepted.</Message>"),
        "{xml}"
    );
    let (_, a) = s.get("/api/v1/alerts/1").await;
    assert_eq!(
        (
            a["accepted_by"].as_str(),
            a["timeline"].as_array().unwrap().last().unwrap()["channel"].as_str()
        ),
        (Some("user:bob"), Some("sms"))
    );

    // A stranger's number changes nothing.
    let stranger = vec![("From", "+19990000000"), ("Body", "RES 1")];
    let res = post(
        "/api/v1/twilio/sms",
        stranger.clone(),
        twilio_sign("http://tocsin.test/api/v1/twilio/sms", &stranger, token),
    )
    .await
    .unwrap();
    assert!(res.text().await.unwrap().contains("not a Tocsin contact"));

    // Voice: the call's TwiML gathers a digit; pressing 1 accepts alert 2.
    let call = vec![
        ("CallSid", "CA1"),
        ("From", "+15550001111"),
        ("To", "+15550002222"),
    ];
    let url = "http://tocsin.test/api/v1/twilio/voice?alert=2";
    let res = post(
        "/api/v1/twilio/voice?alert=2",
        call.clone(),
        twilio_sign(url, &call, token),
    )
    .await
    .unwrap();
    let xml = res.text().await.unwrap();
    assert!(xml.contains("<Gather numDigits=\"1\" action=\"http://tocsin.test/api/v1/twilio/voice/gather?alert=2\""), "{xml}");
    assert!(xml.contains("Press 1 to accept alert 2."), "{xml}");
    assert!(!xml.contains("more alert"), "{xml}");
    // A bundled call counts the other alerts.
    let burl = "http://tocsin.test/api/v1/twilio/voice?alert=2&more=3";
    let res = post(
        "/api/v1/twilio/voice?alert=2&more=3",
        call.clone(),
        twilio_sign(burl, &call, token),
    )
    .await
    .unwrap();
    let xml = res.text().await.unwrap();
    assert!(
        xml.contains(
            "There are 3 more alerts for you; see your messages. Press 1 to accept alert 2."
        ),
        "{xml}"
    );
    let press = vec![
        ("CallSid", "CA1"),
        ("From", "+15550001111"),
        ("To", "+15550002222"),
        ("Digits", "1"),
    ];
    let gurl = "http://tocsin.test/api/v1/twilio/voice/gather?alert=2";
    let res = post(
        "/api/v1/twilio/voice/gather?alert=2",
        press.clone(),
        twilio_sign(url, &press, token),
    )
    .await
    .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "signed for another URL"
    );
    let res = post(
        "/api/v1/twilio/voice/gather?alert=2",
        press.clone(),
        twilio_sign(gurl, &press, token),
    )
    .await
    .unwrap();
    assert!(res.text().await.unwrap().contains("Alert #2 is accepted."));
    let (_, a) = s.get("/api/v1/alerts/2").await;
    assert_eq!(
        (
            a["accepted_by"].as_str(),
            a["timeline"].as_array().unwrap().last().unwrap()["channel"].as_str()
        ),
        (Some("user:bob"), Some("voice"))
    );
}

#[tokio::test]
async fn test_notification_reports_each_contact() {
    let s = start().await;
    let (st, v) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/users/alice/test-notification",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[0]["contact"].as_str(), r[0]["ok"].as_bool()),
        (Some("mail"), Some(false))
    );
    assert!(
        r[0]["error"]
            .as_str()
            .unwrap()
            .contains("no provider is configured for email")
    );
    assert_eq!(
        (r[1]["contact"].as_str(), r[1]["ok"].as_bool()),
        (Some("hook"), Some(true))
    );
    assert_eq!(r[1]["detail"], "the webhook answered 200");
    assert_eq!(s.webhook_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let (st, _) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/users/zed/test-notification",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/users/alice/test-notification",
            Some(OBSERVER),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn outside_support_hours_low_alerts_wait_and_sources_can_lower_priority() {
    let s = start().await;
    let next_start = (chrono::Utc::now() + chrono::TimeDelta::days(3))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();

    // A warning (LOW): created now, level 1 delayed until support hours start.
    let mut warning: Value = serde_json::from_slice(&fixture("firing-single.json")).unwrap();
    warning["alerts"][0]["labels"]["severity"] = json!("warning");
    let (_, v) = s
        .hook(
            "office-key-0123456789abcdef",
            serde_json::to_vec(&warning).unwrap(),
        )
        .await;
    let id = v["alerts"][0]["id"].as_i64().unwrap();
    let (_, a) = s.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(a["priority"], "low");
    let due = chrono::DateTime::parse_from_rfc3339(a["escalation"][0]["due_at"].as_str().unwrap())
        .unwrap();
    assert_eq!(due.to_utc(), next_start);
    let note = a["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "note")
        .unwrap()
        .clone();
    assert!(
        note["message"]
            .as_str()
            .unwrap()
            .starts_with("outside support hours `office`: delayed until "),
        "{note}"
    );

    // A critical (HIGH) alert is not delayed.
    let (_, v) = s
        .hook("office-key-0123456789abcdef", fixture("api-firing.json"))
        .await;
    let (_, a) = s
        .get(&format!("/api/v1/alerts/{}", v["alerts"][0]["id"]))
        .await;
    assert_eq!(a["priority"], "high");
    let due = chrono::DateTime::parse_from_rfc3339(a["escalation"][0]["due_at"].as_str().unwrap())
        .unwrap();
    assert!((chrono::Utc::now() - due.to_utc()).num_seconds().abs() < 60);

    // `outside_support_hours: low` lowers even a critical alert.
    let (_, v) = s
        .hook("lowered-key-0123456789abcd", fixture("firing-single.json"))
        .await;
    let (_, a) = s
        .get(&format!("/api/v1/alerts/{}", v["alerts"][0]["id"]))
        .await;
    assert_eq!(
        (a["severity"].as_str(), a["priority"].as_str()),
        (Some("SEV0"), Some("low"))
    );
}

#[tokio::test]
async fn maintenance_windows_store_alerts_but_page_nobody() {
    let s = start().await;
    let post = |path: &str, body: Value| {
        s.http
            .post(format!("{}{path}", s.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    let res = post(
        "/api/v1/maintenance",
        json!({"source": "am", "duration": "2h", "reason": "upgrade"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let w: Value = res.json().await.unwrap();
    let wid = w["id"].as_i64().unwrap();
    let (_, list) = s.get("/api/v1/maintenance").await;
    assert_eq!(list["windows"][0]["active"], true);

    // Stored and visible, but no escalation.
    let (st, v) = s.hook(KEY, fixture("firing-single.json")).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let id = v["alerts"][0]["id"].as_i64().unwrap();
    let (_, a) = s.get(&format!("/api/v1/alerts/{id}")).await;
    assert!(a["escalation"].as_array().unwrap().is_empty());
    let note = a["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "note")
        .unwrap()
        .clone();
    assert!(
        note["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("in maintenance window #{wid} (source `am`")),
        "{note}"
    );

    // Bad requests.
    for bad in [
        json!({"source": "nope", "duration": "1h"}),
        json!({"duration": "1h"}),
        json!({"source": "am"}),
        json!({"source": "am", "duration": "soon"}),
        json!({"service": "payments-svc", "ends_at": "2001-01-01T00:00:00Z"}),
    ] {
        let res = post("/api/v1/maintenance", bad.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let res = s
        .http
        .post(format!("{}/api/v1/maintenance", s.base))
        .bearer_auth(OBSERVER)
        .json(&json!({"source": "am", "duration": "1h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Ended: the next new alert escalates again.
    let res = post(&format!("/api/v1/maintenance/{wid}/end"), json!({}))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, v) = s.hook(KEY, fixture("api-firing.json")).await;
    let (_, a) = s
        .get(&format!("/api/v1/alerts/{}", v["alerts"][0]["id"]))
        .await;
    assert_eq!(a["escalation"].as_array().unwrap().len(), 1);
    let res = post("/api/v1/maintenance/999/end", json!({}))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
