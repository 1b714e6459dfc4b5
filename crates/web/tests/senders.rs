//! HTTP contract of the drop-in endpoints: PagerDuty Events v2 (alert and
//! change events), the Opsgenie Alert API subset and the ilert Events API,
//! with their documented status codes and bodies, and per-key rate limits
//! (never on Alertmanager webhooks), and heartbeat pings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};

const PD: &str = "pd-key-0123456789abcdef0123";
const OG: &str = "og-key-0123456789abcdef0123";
const IL: &str = "il-key-0123456789abcdef0123";
const AM: &str = "am-key-0123456789abcdef0123";
const ADMIN: &str = "admin-token-0123456789";
const HB: &str = "hb-key-0123456789abcdef0123";

const CONFIG: &str = r#"
api_tokens: [{name: admin, token: admin-token-0123456789, role: admin}]
users:
  - {id: alice, contacts: [{id: mail, type: email, address: a@example.com}], notify: {high: [{contact: mail, after: 0m}]}}
escalation_policies:
  - {id: default, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
  - {id: dbteam, routing_key: db-team, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
services:
  - {id: checkout, name: Checkout}
sources:
  - {id: pd, type: pagerduty, escalation_policy: default, service: checkout, key: pd-key-0123456789abcdef0123, rate_limit_per_minute: 30}
  - {id: og, type: opsgenie, escalation_policy: default, key: og-key-0123456789abcdef0123}
  - id: pdt
    type: pagerduty
    escalation_policy: default
    key: pdt-key-0123456789abcdef012
    templates: {summary: "{{ payload.component | upper }}: {{ payload.summary }}", details: "{{ payload.custom_details.nope.deeper() }}"}
  - {id: il, type: ilert, escalation_policy: default, key: il-key-0123456789abcdef0123, rate_limit_per_minute: 10}
  - {id: am, type: prometheus, escalation_policy: default, key: am-key-0123456789abcdef0123, rate_limit_per_minute: 1}
heartbeats:
  - {id: watchdog, name: Prometheus watchdog, key: hb-key-0123456789abcdef0123, interval: 1m, grace: 30s, escalation_policy: default}
"#;

struct Server {
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let (base, dir) = common::serve(CONFIG, vec![]).await;
    Server {
        base,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Server {
    async fn send(&self, path: &str, auth: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let retry_after = res.headers().get("retry-after").cloned();
        let text = res.text().await.unwrap();
        let mut v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if let Some(r) = retry_after {
            v["__retry_after"] = json!(r.to_str().unwrap());
        }
        (status, v)
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn alerts(&self, source: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/alerts?source={source}")).await["alerts"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn pd_trigger(key: Option<&str>, summary: &str) -> Value {
    let mut v = json!({
        "routing_key": PD,
        "event_action": "trigger",
        "payload": {
            "summary": summary,
            "source": "db-1.example.com",
            "severity": "critical",
            "component": "postgres",
            "custom_details": {"free": "2%", "mount": "/var"}
        },
        "links": [{"href": "https://grafana.example/d/db", "text": "Dashboard"}],
        "images": [{"src": "https://grafana.example/render/db.png", "alt": "Disk graph"}],
        "client": "Alertmanager",
        "client_url": "https://am.example/#/alerts"
    });
    if let Some(k) = key {
        v["dedup_key"] = json!(k);
    }
    v
}

#[tokio::test]
async fn pagerduty_trigger_acknowledge_resolve_and_errors() {
    let s = start().await;
    let (st, v) = s
        .send(
            "/v2/enqueue",
            None,
            &pd_trigger(Some("db-1/disk"), "Disk full on db-1"),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(
        v,
        json!({"status": "success", "message": "Event processed", "dedup_key": "db-1/disk"})
    );
    let a = &s.alerts("pd").await[0];
    assert_eq!(a["summary"], "Disk full on db-1");
    assert_eq!(a["severity"], "SEV0");
    assert_eq!(a["priority"], "high");
    assert_eq!(a["service_id"], "checkout");
    assert_eq!(a["labels"]["source"], "db-1.example.com");
    assert_eq!(a["labels"]["component"], "postgres");
    assert!(a["details"].as_str().unwrap().contains("free: 2%"), "{a}");
    let links: Vec<&str> = a["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(links, ["Dashboard", "Disk graph", "Alertmanager"]);
    let id = a["id"].as_i64().unwrap();

    // A repeat changes nothing; a new summary updates the same alert.
    s.send(
        "/v2/enqueue",
        None,
        &pd_trigger(Some("db-1/disk"), "Disk full on db-1"),
    )
    .await;
    assert_eq!(s.alerts("pd").await.len(), 1);
    assert_eq!(s.alerts("pd").await[0]["seen_count"], 2);
    s.send(
        "/v2/enqueue",
        None,
        &pd_trigger(Some("db-1/disk"), "Disk 99% on db-1"),
    )
    .await;
    let a = &s.alerts("pd").await[0];
    assert_eq!(
        (a["id"].as_i64(), a["summary"].as_str()),
        (Some(id), Some("Disk 99% on db-1"))
    );

    // acknowledge accepts; resolve resolves and keeps the summary.
    let ack = json!({"routing_key": PD, "event_action": "acknowledge", "dedup_key": "db-1/disk"});
    let (st, v) = s.send("/v2/enqueue", None, &ack).await;
    assert_eq!(
        (st, v["dedup_key"].as_str()),
        (StatusCode::ACCEPTED, Some("db-1/disk"))
    );
    assert_eq!(s.alerts("pd").await[0]["status"], "accepted");
    let res = json!({"routing_key": PD, "event_action": "resolve", "dedup_key": "db-1/disk"});
    assert_eq!(
        s.send("/v2/enqueue", None, &res).await.0,
        StatusCode::ACCEPTED
    );
    let a = &s.alerts("pd").await[0];
    assert_eq!(a["status"], "resolved");
    assert_eq!(a["summary"], "Disk 99% on db-1");
    // After the resolve, a trigger opens a new alert; acknowledge/resolve are dropped.
    s.send(
        "/v2/enqueue",
        None,
        &pd_trigger(Some("db-1/disk"), "Disk full again"),
    )
    .await;
    let all = s.alerts("pd").await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["status"], "pending");
    let ghost = json!({"routing_key": PD, "event_action": "resolve", "dedup_key": "never-seen"});
    assert_eq!(
        s.send("/v2/enqueue", None, &ghost).await.0,
        StatusCode::ACCEPTED
    );

    // payload.timestamp is when the problem was detected.
    let mut dated = pd_trigger(Some("dated"), "dated");
    dated["payload"]["timestamp"] = json!("2026-01-01T00:00:00Z");
    s.send("/v2/enqueue", None, &dated).await;
    let all = s.alerts("pd").await;
    let a = all.iter().find(|a| a["dedup_key"] == "dated").unwrap();
    assert_eq!(a["detected_at"], "2026-01-01T00:00:00Z");

    // A trigger without dedup_key gets one, generated and returned.
    let (st, v) = s
        .send("/v2/enqueue", None, &pd_trigger(None, "no key"))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let generated = v["dedup_key"].as_str().unwrap();
    assert_eq!(generated.len(), 32);
    assert!(
        s.alerts("pd")
            .await
            .iter()
            .any(|a| a["dedup_key"] == generated)
    );

    // 400 with errors[] naming each field.
    let bad =
        json!({"routing_key": PD, "event_action": "trigger", "payload": {"severity": "fatal"}});
    let (st, v) = s.send("/v2/enqueue", None, &bad).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["status"], "invalid event");
    assert_eq!(v["message"], "Event object is invalid");
    assert_eq!(
        v["errors"],
        json!([
            "'payload.summary' is missing or blank",
            "'payload.source' is missing or blank",
            "'payload.severity' is invalid: 'fatal' (expected critical, error, warning or info)"
        ])
    );
    let (st, v) = s
        .send(
            "/v2/enqueue",
            None,
            &json!({"routing_key": PD, "event_action": "resolve"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["errors"],
        json!(["'dedup_key' is required for event_action 'resolve'"])
    );
    let (st, v) = s
        .send(
            "/v2/enqueue",
            None,
            &json!({"routing_key": OG, "event_action": "trigger"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a key of another source type");
    assert!(
        v["errors"][0].as_str().unwrap().contains("routing_key"),
        "{v}"
    );
    let (st, v) = s.send("/v2/enqueue", None, &json!([1, 2])).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid event"))
    );
}

#[tokio::test]
async fn pagerduty_change_events_are_recorded_and_page_nobody() {
    let s = start().await;
    let change = json!({
        "routing_key": PD,
        "payload": {"summary": "Deployed checkout v42", "source": "ci", "timestamp": "2026-11-21T10:00:00Z",
                    "custom_details": {"build": "42"}},
        "links": [{"href": "https://ci.example/42", "text": "Build 42"}]
    });
    let (st, v) = s.send("/v2/change/enqueue", None, &change).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "success");
    let c = s.get("/api/v1/changes?service=checkout").await;
    let c = &c["changes"][0];
    assert_eq!(c["summary"], "Deployed checkout v42");
    assert_eq!(c["origin"], "ci");
    assert_eq!(c["at"], "2026-11-21T10:00:00Z");
    assert_eq!(c["details"], "build: 42");
    assert_eq!(c["links"][0]["text"], "Build 42");
    assert!(s.alerts("pd").await.is_empty(), "a change is not an alert");
    let (st, v) = s
        .send(
            "/v2/change/enqueue",
            None,
            &json!({"routing_key": PD, "payload": {}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["errors"],
        json!(["'payload.summary' is missing or blank"])
    );
}

#[tokio::test]
async fn opsgenie_create_acknowledge_close() {
    let s = start().await;
    let auth = format!("GenieKey {OG}");
    let create = json!({
        "message": "[FIRING:1] DiskFull db-1",
        "alias": "6f3c0ab1",
        "description": "disk is full",
        "priority": "P2",
        "tags": ["db", "disk"],
        "details": {"node": "db-1"},
        "source": "http://am.example"
    });
    let (st, v) = s.send("/v2/alerts", Some(&auth), &create).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(v["result"], "Request will be processed");
    assert!(v["took"].is_number());
    assert_eq!(v["requestId"].as_str().unwrap().len(), 36);
    let a = &s.alerts("og").await[0];
    assert_eq!(a["summary"], "[FIRING:1] DiskFull db-1");
    assert_eq!(a["severity"], "SEV1");
    assert_eq!(a["dedup_key"], "6f3c0ab1");
    assert_eq!(a["labels"]["node"], "db-1");
    assert_eq!(a["labels"]["tags"], "db,disk");
    let id = a["id"].as_i64().unwrap();
    // A repeat create on an open alias only counts.
    s.send("/v2/alerts", Some(&auth), &create).await;
    assert_eq!(s.alerts("og").await.len(), 1);

    let (st, _) = s
        .send(
            "/v2/alerts/6f3c0ab1/acknowledge?identifierType=alias",
            Some(&auth),
            &json!({"source": "x"}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(s.alerts("og").await[0]["status"], "accepted");
    let (st, _) = s
        .send(
            &format!("/v2/alerts/{id}/close"),
            Some(&auth),
            &json!({"note": "fixed by hand"}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let shown = s.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(shown["status"], "resolved");
    assert!(
        shown["timeline"].to_string().contains("fixed by hand"),
        "{shown}"
    );

    // P1…P5 map to SEV0…SEV4; no priority is P3.
    for (p, sev) in [("P1", "SEV0"), ("P3", "SEV2"), ("P5", "SEV4")] {
        let body = json!({"message": format!("m {p}"), "alias": format!("a-{p}"), "priority": p});
        s.send("/v2/alerts", Some(&auth), &body).await;
        let all = s.alerts("og").await;
        let a = all
            .iter()
            .find(|a| a["dedup_key"] == format!("a-{p}"))
            .unwrap();
        assert_eq!(a["severity"], sev);
    }
    let body = json!({"message": "close me", "alias": "by-alias"});
    s.send("/v2/alerts", Some(&auth), &body).await;
    s.send(
        "/v2/alerts/by-alias/close?identifierType=alias",
        Some(&auth),
        &json!({}),
    )
    .await;
    let all = s.alerts("og").await;
    assert_eq!(
        all.iter().find(|a| a["dedup_key"] == "by-alias").unwrap()["status"],
        "resolved"
    );

    // Errors: 401 without the key, 422 for a bad request, 404 for an unknown id.
    let (st, v) = s.send("/v2/alerts", None, &create).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(v["code"], 401);
    assert!(v["requestId"].is_string());
    let (st, _) = s
        .send("/v2/alerts", Some(&format!("GenieKey {PD}")), &create)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = s
        .send("/v2/alerts", Some(&auth), &json!({"alias": "x"}))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("Message can not be empty"),
        "{v}"
    );
    let (st, _) = s
        .send(
            "/v2/alerts",
            Some(&auth),
            &json!({"message": "m", "priority": "P9"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = s
        .send(
            "/v2/alerts/x/close?identifierType=bogus",
            Some(&auth),
            &json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = s
        .send("/v2/alerts/999999/close", Some(&auth), &json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ilert_alert_accept_resolve_with_either_key_field() {
    let s = start().await;
    let alert = json!({
        "integrationKey": IL, "eventType": "ALERT", "alertKey": "DB-1/Disk",
        "summary": "Disk 95% on db-1", "details": "on /var", "priority": "LOW",
        "links": [{"href": "https://grafana.example/d/db", "text": "Dashboard"}],
        "customDetails": {"free": "5%"}, "labels": {"team": "db"}, "routingKey": "db-team"
    });
    let (st, v) = s.send("/api/events", None, &alert).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["alertKey"], "db-1/disk");
    assert_eq!(v["responseCode"], "CREATED");
    assert!(
        v["alertUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://tocsin.test/api/v1/alerts/")
    );
    let a = &s.alerts("il").await[0];
    assert_eq!(a["priority"], "low");
    assert_eq!(a["policy_id"], "dbteam", "routingKey overrides the policy");
    assert_eq!(a["labels"]["team"], "db");
    assert!(a["details"].as_str().unwrap().contains("free: 5%"));

    // Keys compare case-insensitively; the legacy path and apiKey work too.
    let accept = json!({"apiKey": IL, "eventType": "ACCEPT", "alertKey": "db-1/DISK"});
    let (st, v) = s.send("/api/v1/events", None, &accept).await;
    assert_eq!(
        (st, v["responseCode"].as_str()),
        (StatusCode::ACCEPTED, Some("ACCEPTED"))
    );
    assert_eq!(s.alerts("il").await[0]["status"], "accepted");
    let resolve = json!({"integrationKey": IL, "eventType": "RESOLVE", "alertKey": "Db-1/Disk"});
    assert_eq!(
        s.send("/api/events", None, &resolve).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(s.alerts("il").await[0]["status"], "resolved");

    // Errors name the field.
    let (st, v) = s
        .send(
            "/api/events",
            None,
            &json!({"integrationKey": IL, "eventType": "ALERT"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().starts_with("summary:"),
        "{v}"
    );
    let (st, v) = s
        .send(
            "/api/events",
            None,
            &json!({"eventType": "ALERT", "summary": "s"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("integrationKey:"),
        "{v}"
    );
    let (st, _) = s
        .send("/api/events", None, &json!({"integrationKey": "nope-0123456789abcdef", "eventType": "ALERT", "summary": "s"}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = s
        .send(
            "/api/events",
            None,
            &json!({"integrationKey": IL, "eventType": "RESOLVE"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().starts_with("alertKey:"),
        "{v}"
    );
}

#[tokio::test]
async fn rate_limits_answer_429_per_key_but_never_to_alertmanager() {
    let s = start().await;
    // ilert key: 10 a minute.
    let mut codes = Vec::new();
    for i in 0..12 {
        let ev = json!({"integrationKey": IL, "eventType": "ALERT", "alertKey": format!("k{i}"), "summary": "s"});
        codes.push(s.send("/api/events", None, &ev).await);
    }
    assert!(
        codes[..10]
            .iter()
            .all(|(st, _)| *st == StatusCode::ACCEPTED)
    );
    let (st, v) = &codes[10];
    assert_eq!(*st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(v["__retry_after"], "6", "one event every 6 s comes back");
    // The limit is per key: PagerDuty's own bucket is untouched.
    let (st, _) = s
        .send("/v2/enqueue", None, &pd_trigger(Some("x"), "s"))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    // The Alertmanager webhook is never limited, whatever the source says.
    let body: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/alertmanager/firing-single.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for _ in 0..5 {
        let (st, _) = s
            .send(&format!("/api/v1/events/prometheus/{AM}"), None, &body)
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
    }
}

#[tokio::test]
async fn a_repeated_trigger_is_on_the_timeline_and_never_lowers_severity() {
    let s = start().await;
    let ev = |summary: &str, severity: &str| {
        let mut v = pd_trigger(Some("db-2/disk"), summary);
        v["payload"]["severity"] = json!(severity);
        v
    };
    let (st, _) = s
        .send("/v2/enqueue", None, &ev("Disk 90% on db-2", "error"))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let a = s.alerts("pd").await[0].clone();
    let id = a["id"].as_i64().unwrap();
    assert_eq!(
        (a["severity"].as_str(), a["priority"].as_str()),
        (Some("SEV1"), Some("high"))
    );
    // The same trigger again: a duplicate, nothing on the timeline.
    s.send("/v2/enqueue", None, &ev("Disk 90% on db-2", "error"))
        .await;
    // A lower severity with a new summary: the summary changes, the
    // severity and priority stay, and the timeline says so.
    s.send("/v2/enqueue", None, &ev("Disk 91% on db-2", "info"))
        .await;
    let a = s.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(a["summary"], "Disk 91% on db-2");
    assert_eq!(
        (a["severity"].as_str(), a["priority"].as_str()),
        (Some("SEV1"), Some("high"))
    );
    // A higher one raises it.
    s.send("/v2/enqueue", None, &ev("Disk 99% on db-2", "critical"))
        .await;
    let a = s.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(a["severity"], "SEV0");
    let updates: Vec<&str> = a["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "updated")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        updates,
        [
            "triggered again: summary \"Disk 90% on db-2\" → \"Disk 91% on db-2\"; severity stays SEV1 (SEV4 sent; it does not fall while the alert is open); priority stays high (low sent; it does not fall while the alert is open)",
            "triggered again: summary \"Disk 91% on db-2\" → \"Disk 99% on db-2\"; severity SEV1 → SEV0",
        ]
    );
    assert_eq!(a["seen_count"], 4);
    assert_eq!(s.alerts("pd").await.len(), 1);
}

#[tokio::test]
async fn a_key_works_only_on_its_own_types_endpoints() {
    let s = start().await;
    let body: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/alertmanager/firing-single.json"
        ))
        .unwrap(),
    )
    .unwrap();
    // Another type's key on the Alertmanager webhook is an unknown key:
    // 404, no alert, and no way around that key's rate limit.
    for key in [PD, OG, IL, HB] {
        let (st, v) = s
            .send(&format!("/api/v1/events/prometheus/{key}"), None, &body)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{key}: {v}");
    }
    for source in ["pd", "og", "il"] {
        assert!(s.alerts(source).await.is_empty(), "{source}");
    }
    // And the other way round.
    let mut ev = pd_trigger(Some("x"), "s");
    ev["routing_key"] = json!(AM);
    assert_eq!(
        s.send("/v2/enqueue", None, &ev).await.0,
        StatusCode::BAD_REQUEST
    );
    let il = json!({"integrationKey": PD, "eventType": "ALERT", "alertKey": "k", "summary": "s"});
    assert_eq!(
        s.send("/api/events", None, &il).await.0,
        StatusCode::NOT_FOUND
    );
    let og = json!({"message": "m", "alias": "a"});
    assert_eq!(
        s.send("/v2/alerts", Some(&format!("GenieKey {IL}")), &og)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert!(s.alerts("am").await.is_empty());
}

#[tokio::test]
async fn heartbeat_pings_by_head_get_and_post_and_the_list() {
    let s = start().await;
    let list = s.get("/api/v1/heartbeats").await;
    assert_eq!(list["heartbeats"][0]["state"], "unknown", "not armed yet");
    assert_eq!(list["heartbeats"][0]["pings"], 0);

    // HEAD (what ilert-go sends), GET and POST all count, on both paths.
    let head = s
        .http
        .head(format!("{}/api/heartbeats/{HB}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::ACCEPTED);
    let get = s
        .http
        .get(format!("{}/api/v1/heartbeats/{HB}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::ACCEPTED);
    let v: Value = get.json().await.unwrap();
    assert_eq!(
        (v["status"].as_str(), v["armed"].as_bool()),
        (Some("ok"), Some(false))
    );
    let (st, v) = s
        .send(
            &format!("/api/v1/heartbeats/{HB}"),
            None,
            &json!({"status": "firing", "alerts": [{"status": "firing"}]}),
        )
        .await;
    assert_eq!(
        (st, v["state"].as_str()),
        (StatusCode::ACCEPTED, Some("healthy"))
    );
    let hb = &s.get("/api/v1/heartbeats").await["heartbeats"][0];
    assert_eq!(hb["state"], "healthy");
    assert_eq!(hb["pings"], 3);
    assert_eq!(hb["name"], "Prometheus watchdog");
    assert_eq!(
        (hb["interval"].as_str(), hb["grace"].as_str()),
        (Some("1m"), Some("30s"))
    );
    let last: chrono::DateTime<chrono::Utc> = hb["last_ping_at"].as_str().unwrap().parse().unwrap();
    let due: chrono::DateTime<chrono::Utc> = hb["overdue_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        due - last,
        chrono::TimeDelta::seconds(90),
        "interval + grace"
    );

    // A resolved Alertmanager webhook is not a ping (202, so no retry).
    let resolved = json!({"version": "4", "status": "resolved", "alerts": [{"status": "resolved", "labels": {"alertname": "Watchdog"}}]});
    let (st, v) = s
        .send(&format!("/api/heartbeats/{HB}"), None, &resolved)
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::ACCEPTED, Some("ignored"))
    );
    assert_eq!(
        s.get("/api/v1/heartbeats").await["heartbeats"][0]["pings"],
        3
    );

    // A maintenance window can cover a heartbeat (as source `heartbeat:ID`).
    let (st, v) = s
        .send(
            "/api/v1/maintenance",
            Some(&format!("Bearer {ADMIN}")),
            &json!({"source": "heartbeat:watchdog", "duration": "1h"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    // Unknown key: 404; never 429, however often.
    let (st, _) = s
        .send("/api/v1/heartbeats/nope-0123456789", None, &json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    for _ in 0..200 {
        let (st, _) = s
            .send(&format!("/api/v1/heartbeats/{HB}"), None, &json!({}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
    }
}

#[tokio::test]
async fn templates_render_over_the_senders_payload() {
    let s = start().await;
    let mut ev = pd_trigger(Some("t1"), "Disk full on db-1");
    ev["routing_key"] = json!("pdt-key-0123456789abcdef012");
    let (st, _) = s.send("/v2/enqueue", None, &ev).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let a = &s.alerts("pdt").await[0];
    assert_eq!(a["summary"], "POSTGRES: Disk full on db-1");
    // The details template fails: the default details stay, the timeline says why.
    assert!(a["details"].as_str().unwrap().contains("free: 2%"), "{a}");
    let shown = s.get(&format!("/api/v1/alerts/{}", a["id"])).await;
    assert!(
        shown["timeline"]
            .to_string()
            .contains("details template failed"),
        "{shown}"
    );
}

/// GET `path` with an `Authorization` header; status and JSON.
async fn get_with(s: &Server, path: &str, auth: &str) -> (StatusCode, Value) {
    let res = s
        .http
        .get(format!("{}{path}", s.base))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn refusals_on_sender_paths_answer_in_the_senders_shape() {
    let s = start().await;
    let pd_shape =
        |v: &Value| v["status"].is_string() && v["message"].is_string() && v["errors"].is_array();
    let og_shape =
        |v: &Value| v["message"].is_string() && v["code"].is_number() && v["requestId"].is_string();
    // PagerDuty: unknown path, wrong method, too large, not JSON.
    let (status, v) = s.send("/v2/nope", None, &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(pd_shape(&v), "{v}");
    let res = s
        .http
        .get(format!("{}/v2/enqueue", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(pd_shape(&res.json().await.unwrap()));
    let big = json!({"routing_key": PD, "event_action": "trigger", "payload": {"summary": "x".repeat(6 << 20), "source": "s", "severity": "error"}});
    let (status, v) = s.send("/v2/enqueue", None, &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(pd_shape(&v), "{v}");
    let res = s
        .http
        .post(format!("{}/v2/enqueue", s.base))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(pd_shape(&res.json().await.unwrap()));
    // Opsgenie: anything under /v2/alerts.
    let (status, v) = s
        .send(
            "/v2/alerts/1/snooze",
            Some(&format!("GenieKey {OG}")),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(og_shape(&v), "{v}");
    let res = s
        .http
        .delete(format!("{}/v2/alerts", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(og_shape(&res.json().await.unwrap()));
    // Elsewhere: Tocsin's own error object.
    let res = s.http.get(format!("{}/nope", s.base)).send().await.unwrap();
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]["code"].is_string(), "{v}");
}

#[tokio::test]
async fn opsgenie_request_status_and_get_alert_follow_the_sdk_flow() {
    let s = start().await;
    let auth = format!("GenieKey {OG}");
    // Create, then look the request up for the alert id, as the SDK does.
    let (status, created) = s
        .send(
            "/v2/alerts",
            Some(&auth),
            &json!({"message": "disk full on db-1", "alias": "disk-db-1", "priority": "P2"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let rid = created["requestId"].as_str().unwrap();
    let (status, req) = get_with(&s, &format!("/v2/alerts/requests/{rid}"), &auth).await;
    assert_eq!(status, StatusCode::OK, "{req}");
    assert_eq!(req["data"]["isSuccess"], true);
    assert_eq!(req["data"]["action"], "Create");
    assert_eq!(req["data"]["alias"], "disk-db-1");
    let alert_id = req["data"]["alertId"].as_str().unwrap().to_owned();
    // The alert, by id and by alias, in Opsgenie's shape.
    let (status, got) = get_with(&s, &format!("/v2/alerts/{alert_id}"), &auth).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["data"]["message"], "disk full on db-1");
    assert_eq!(got["data"]["status"], "open");
    assert_eq!(got["data"]["priority"], "P2");
    assert_eq!(got["data"]["acknowledged"], false);
    let (_, by_alias) = get_with(&s, "/v2/alerts/disk-db-1?identifierType=alias", &auth).await;
    assert_eq!(by_alias["data"]["id"], alert_id.as_str());
    // Close by id; the close's request id names the close.
    let (status, closed) = s
        .send(
            &format!("/v2/alerts/{alert_id}/close"),
            Some(&auth),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let rid = closed["requestId"].as_str().unwrap();
    let (_, req) = get_with(&s, &format!("/v2/alerts/requests/{rid}"), &auth).await;
    assert_eq!(req["data"]["action"], "Close");
    let (_, got) = get_with(&s, &format!("/v2/alerts/{alert_id}"), &auth).await;
    assert_eq!(got["data"]["status"], "closed");
    // Another source's key sees neither the request nor the alert.
    let other = format!("GenieKey {PD}");
    let (status, _) = get_with(&s, &format!("/v2/alerts/{alert_id}"), &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, v) = get_with(
        &s,
        "/v2/alerts/requests/00000000-0000-4000-8000-000000000000",
        &auth,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["message"].as_str().unwrap().contains("Request not found"));
    let (status, _) = get_with(&s, "/v2/alerts/999999", &auth).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A test alert through each source type is written in that type's own
/// format and made by its own parser and mapping: the severity asked for
/// comes out, and the alert carries the source and the caller as actor.
#[tokio::test]
async fn test_alerts_take_each_sources_own_format() {
    let s = start().await;
    for (source, severity) in [
        ("am", "SEV1"),
        ("pd", "SEV0"),
        ("og", "SEV3"),
        ("il", "SEV4"),
    ] {
        let res = s
            .http
            .post(format!("{}/api/v1/sources/{source}/test-alert", s.base))
            .bearer_auth(ADMIN)
            .json(&json!({"severity": severity, "labels": {"team": "sre"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "{source}");
        let alert: Value = res.json().await.unwrap();
        let alert = &alert["alert"];
        assert_eq!(alert["source_id"], source);
        assert_eq!(alert["severity"], severity, "{source}: {alert}");
        let shown = s.get(&format!("/api/v1/alerts/{}", alert["id"])).await;
        let first = &shown["timeline"][0];
        assert_eq!(first["actor"], "token:admin");
        assert!(
            first["channel"]
                .as_str()
                .unwrap()
                .starts_with("test alert ("),
            "{first}"
        );
    }
}
