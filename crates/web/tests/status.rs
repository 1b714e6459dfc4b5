//! The incidents API and the status page over HTTP: the settled shapes,
//! refusals that name what is wrong, the Markdown report, and the public
//! page's cache (ETag, Last-Modified, 304; a change shows at once), on
//! SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

const CONFIG: &str = r#"
api_tokens:
  - {name: root, token: root-token-0123456789abcdef, role: admin}
  - {name: olga-cli, token: olga-token-0123456789abcde, role: observer, user: olga}
users:
  - {id: alice, contacts: [{id: mail, type: email, address: alice@example.com}], notify: {high: [{contact: mail, after: 0m}]}}
  - {id: olga, role: observer}
escalation_policies:
  - {id: p, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
services:
  - {id: checkout, name: Checkout, public: true, auto_incident_from: SEV1}
  - {id: billing, name: Billing}
sources:
  - {id: pd, type: pagerduty, key: pd-events-key-0123456789abc, escalation_policy: p, service: checkout}
status_page: {title: Example status, timezone: Europe/Berlin}
"#;

const ROOT: &str = "root-token-0123456789abcdef";
const OLGA: &str = "olga-token-0123456789abcde";

async fn open_one(s: &common::Server, body: Value) -> Value {
    let (st, v) = s
        .call(Method::POST, "/api/v1/incidents", ROOT, Some(body))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn the_incident_api_keeps_its_settled_shape_and_says_what_is_wrong(s: common::Server) {
    // `public` is required: announcing is explicit.
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/incidents",
            ROOT,
            Some(json!({"title": "x", "severity": "SEV2"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("public"),
        "{v}"
    );
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/incidents",
            ROOT,
            Some(json!({"title": " ", "severity": "SEV2", "public": true, "services": [{"id": "nope", "impact": "degraded"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let paths: Vec<&str> = v["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["title", "services[0].id"], "{v}");

    let i = open_one(
        &s,
        json!({"title": "Checkout slow", "severity": "SEV2", "services": [{"id": "checkout", "impact": "degraded"}, {"id": "billing", "impact": "partial_outage"}], "message": "Looking.", "public": true, "responders": ["alice"]}),
    )
    .await;
    for key in [
        "id",
        "title",
        "severity",
        "status",
        "services",
        "alert_ids",
        "updates",
    ] {
        assert!(i.get(key).is_some(), "{key} in {i}");
    }
    assert_eq!(i["status"], "investigating");
    assert_eq!(
        i["services"],
        json!([{"id": "billing", "impact": "partial_outage"}, {"id": "checkout", "impact": "degraded"}])
    );
    let id = i["id"].as_i64().unwrap();
    let u = &i["updates"][0];
    for key in ["id", "at", "status", "message", "public"] {
        assert!(u.get(key).is_some(), "{key} in {u}");
    }

    // An observer reads but may not act.
    let (st, _) = s
        .call(Method::GET, &format!("/api/v1/incidents/{id}"), OLGA, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/updates"),
            OLGA,
            Some(json!({"message": "x", "public": true})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("incidents.manage"),
        "{v}"
    );

    // Link an alert (422 for one that does not exist), post an update.
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/alerts"),
            ROOT,
            Some(json!({"alert_id": 999})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let res = s
        .http
        .post(format!("{}/v2/enqueue", s.base))
        .json(&json!({"routing_key": "pd-events-key-0123456789abc", "event_action": "trigger", "dedup_key": "d1", "payload": {"summary": "disk full", "source": "db1", "severity": "warning"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let (_, alerts) = s.call(Method::GET, "/api/v1/alerts", ROOT, None).await;
    let alert = alerts["alerts"][0]["id"].as_i64().unwrap();
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/alerts"),
            ROOT,
            Some(json!({"alert_id": alert})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["alert_ids"], json!([alert]));
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/updates"),
            ROOT,
            Some(json!({"message": "Fix deployed.", "public": true, "status": "monitoring"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "monitoring");
    assert_eq!(v["updates"].as_array().unwrap().len(), 2);
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/incidents/{id}/alerts/{alert}"),
            ROOT,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/incidents/{id}/alerts/{alert}"),
            ROOT,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "not linked any more");

    // The report.
    let res = s
        .http
        .get(format!("{}/api/v1/incidents/{id}/report", s.base))
        .bearer_auth(ROOT)
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let md = res.text().await.unwrap();
    for part in [
        "# Incident",
        "## Impact",
        "| Checkout | degraded |",
        "| Billing | partial_outage |",
        "## Timeline",
        "**Monitoring** (public): Fix deployed.",
        "linked alert #",
        "unlinked alert #",
    ] {
        assert!(md.contains(part), "{part} in\n{md}");
    }

    // Resolve, then everything but reading is a 409.
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/resolve"),
            ROOT,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "resolved");
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/resolve"),
            ROOT,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/incidents/{id}"),
            ROOT,
            Some(json!({"title": "y"})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (_, list) = s
        .call(Method::GET, "/api/v1/incidents?status=resolved", ROOT, None)
        .await;
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1);
    let (st, _) = s
        .call(Method::GET, "/api/v1/incidents?status=maybe", ROOT, None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .call(Method::GET, "/api/v1/incidents/12345", ROOT, None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

async fn the_status_page_is_cached_validated_and_changes_at_once(s: common::Server) {
    let get = |path: &str, extra: Option<(header::HeaderName, String)>| {
        let mut r = s.http.get(format!("{}{path}", s.base));
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        r.send()
    };
    let first = get("/status.json", None).await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
    let modified = first.headers()[header::LAST_MODIFIED]
        .to_str()
        .unwrap()
        .to_owned();
    let v: Value = first.json().await.unwrap();
    assert_eq!(v["page"]["name"], "Example status");
    assert_eq!(v["page"]["time_zone"], "Europe/Berlin");
    assert_eq!(v["status"]["indicator"], "none");
    assert_eq!(
        v["components"].as_array().unwrap().len(),
        1,
        "billing is not public"
    );
    assert_eq!(
        v["components"][0]["uptime_days"].as_array().unwrap().len(),
        90
    );
    let again = get("/status.json", Some((header::IF_NONE_MATCH, etag.clone())))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let again = get("/status.json", Some((header::IF_MODIFIED_SINCE, modified)))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // A change on this node shows at once.
    let i = open_one(
        &s,
        json!({"title": "Checkout down", "severity": "SEV0", "services": [{"id": "checkout", "impact": "major_outage"}], "message": "We are on it.", "public": true}),
    )
    .await;
    let id = i["id"].as_i64().unwrap();
    s.call(
        Method::POST,
        &format!("/api/v1/incidents/{id}/updates"),
        ROOT,
        Some(json!({"message": "secret internal detail", "public": false})),
    )
    .await;
    let now = get("/status.json", Some((header::IF_NONE_MATCH, etag.clone())))
        .await
        .unwrap();
    assert_eq!(now.status(), 200, "a new ETag");
    assert_ne!(now.headers()[header::ETAG].to_str().unwrap(), etag);
    let v: Value = now.json().await.unwrap();
    assert_eq!(v["status"]["indicator"], "critical");
    assert_eq!(v["components"][0]["status"], "major_outage");
    let updates = v["incidents"][0]["incident_updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "the internal update stays internal: {v}");
    assert_eq!(updates[0]["body"], "We are on it.");

    let html = get("/status", None).await.unwrap();
    assert!(
        html.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = html.text().await.unwrap();
    assert!(html.contains("Major System Outage"), "{html}");
    assert!(html.contains("Checkout down"));
    assert!(!html.contains("secret internal detail"));
    assert!(!html.contains("Billing"));
    assert!(!html.contains("<script"), "no script needed");
    assert!(html.contains("How uptime is computed"));
    assert!(html.contains("href=\"/status/feed.atom\""));

    let badge = get("/status/badge/checkout.svg", None).await.unwrap();
    assert_eq!(badge.headers()[header::CONTENT_TYPE], "image/svg+xml");
    assert!(badge.text().await.unwrap().contains("major outage"));
    assert_eq!(
        get("/status/badge/billing.svg", None)
            .await
            .unwrap()
            .status(),
        404,
        "not public"
    );
    let page = get(&format!("/status/incidents/{id}"), None).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("We are on it."));
    // The internal page wants a session.
    let internal = s
        .http
        .get(format!("{}/status/internal", s.base))
        .send()
        .await
        .unwrap();
    assert!(
        internal.url().path().starts_with("/login"),
        "{}",
        internal.url()
    );

    // Public maintenance scheduled ahead is announced on the page.
    let starts = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    let (st, v) = s
        .call(Method::POST, "/api/v1/maintenance", ROOT, Some(json!({"service": "checkout", "starts_at": starts, "duration": "2h", "title": "Database upgrade", "public": true})))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    s.call(Method::POST, "/api/v1/maintenance", ROOT, Some(json!({"service": "checkout", "starts_at": starts, "duration": "2h", "title": "Hidden work"}))).await;
    let v: Value = get("/status.json", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = v["scheduled_maintenances"].as_array().unwrap();
    assert_eq!(m.len(), 1, "only the public window: {v}");
    assert_eq!(
        (m[0]["name"].as_str(), m[0]["status"].as_str()),
        (Some("Database upgrade"), Some("scheduled"))
    );
    assert_eq!(
        v["components"][0]["status"], "major_outage",
        "the incident wins over maintenance"
    );
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let s = super::common::Server::start_on(super::CONFIG, false)
                    .await
                    .unwrap();
                super::$name(s).await;
            }
            #[tokio::test]
            async fn postgres() {
                let Some(s) = super::common::Server::start_on(super::CONFIG, true).await else {
                    return;
                };
                super::$name(s).await;
            }
        }
    };
}

both!(the_incident_api_keeps_its_settled_shape_and_says_what_is_wrong);
both!(the_status_page_is_cached_validated_and_changes_at_once);
