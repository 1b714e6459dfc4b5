//! The catalog API against a real server on SQLite: every kind listed and
//! read with its origin and ETag, managed objects created, replaced and
//! deleted with the rules of `check-config`, provisioned ones read-only,
//! stale edits refused, and a change in effect for the next request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789";
const OBSERVER: &str = "observer-token-0123456789";
const KEY: &str = "provisioned-key-0123456789";

const CONFIG: &str = r#"
api_tokens:
  - {name: admin, token: admin-token-0123456789, role: admin}
  - {name: watcher, token: observer-token-0123456789, role: observer}
teams:
  - {id: sre, name: SRE}
users:
  - {id: alice, name: Alice Example, contacts: [{id: mail, type: email, address: a@example.com}], notify: {high: [{contact: mail, after: 0m}]}}
escalation_policies:
  - {id: p, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
sources:
  - {id: prom, type: prometheus, key: provisioned-key-0123456789, escalation_policy: p}
heartbeats:
  - {id: cron, key: cron-key-0123456789abc, interval: 1m, escalation_policy: p}
schedules:
  - id: primary
    timezone: Europe/Berlin
    layers:
      - {users: [alice], rotation: 1w, handoff: "2026-01-05T09:00"}
"#;

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let etag = res
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, etag, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Option<String>, Value) {
        self.call(Method::GET, path, OBSERVER, None, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Option<String>, Value) {
        self.call(Method::POST, path, ADMIN, Some(body), None).await
    }

    async fn alert(&self, key: &str) -> StatusCode {
        let body = std::fs::read(format!(
            "{}/../../fixtures/alertmanager/firing-single.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        self.http
            .post(format!("{}/api/v1/events/prometheus/{key}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }
}

async fn api() -> (Api, tempfile::TempDir) {
    let (base, dir) = common::serve(CONFIG, vec![]).await;
    (
        Api {
            base,
            http: reqwest::Client::new(),
        },
        dir,
    )
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn every_role_reads_every_kind_with_origin_and_etag_and_no_secrets() {
    let (api, _dir) = api().await;
    for kind in [
        "teams",
        "users",
        "support_hours",
        "schedules",
        "escalation_policies",
        "services",
        "sources",
        "heartbeats",
    ] {
        let (status, _, body) = api.get(&format!("/api/v1/{kind}")).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        assert!(body[kind].is_array(), "{kind}: {body}");
    }
    let (_, _, teams) = api.get("/api/v1/teams").await;
    assert_eq!(teams["teams"][0]["id"], "sre");
    assert_eq!(
        teams["teams"][0]["origin"],
        json!({"kind": "provisioned", "file": "test.yaml"})
    );
    let (status, etag, p) = api.get("/api/v1/escalation_policies/p").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(etag.unwrap(), format!("\"{}\"", p["revision"]));
    assert_eq!(p["levels"][0]["notify"], json!(["user:alice"]));
    // Keys are never shown, neither in the list nor in one object.
    let (_, _, sources) = api.get("/api/v1/sources").await;
    assert!(!sources.to_string().contains(KEY), "{sources}");
    let (_, _, prom) = api.get("/api/v1/sources/prom").await;
    assert!(prom.get("key").is_none(), "{prom}");
    // The list views keep their computed fields beside the object's own.
    let (_, _, users) = api.get("/api/v1/users").await;
    assert!(users["users"][0]["ical_url"].is_string());
    assert_eq!(users["users"][0]["contacts"][0]["id"], "mail");
    let (status, _, cron) = api.get("/api/v1/heartbeats/cron").await;
    assert_eq!(status, StatusCode::OK, "{cron}");
    assert_eq!(cron["interval"], "1m");
    assert!(cron.get("key").is_none());
    let (status, _, _) = api.get("/api/v1/escalation_policies/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn managed_objects_are_created_checked_replaced_and_deleted() {
    let (api, _dir) = api().await;
    let q = json!({"id": "q", "levels": [{"notify": ["user:nobody"], "escalate_after": "5m"}]});
    // Only admins change the catalog.
    let (status, _, body) = api
        .call(
            Method::POST,
            "/api/v1/escalation_policies",
            OBSERVER,
            Some(q.clone()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The same checks as check-config, at paths inside the body.
    let (status, _, body) = api.post("/api/v1/escalation_policies", q).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        message(&body).starts_with("levels[0].notify[0]: unknown users id `nobody`"),
        "{body}"
    );
    let (status, _, body) = api
        .post(
            "/api/v1/escalation_policies",
            json!({"id": "q", "levels": [], "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("colour"), "{body}");

    let q = json!({"id": "q", "levels": [{"notify": ["user:alice"], "escalate_after": "10m"}]});
    let (status, etag, body) = api.post("/api/v1/escalation_policies", q.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["origin"], json!({"kind": "managed"}));
    let etag = etag.unwrap();
    let (status, _, _) = api.post("/api/v1/escalation_policies", q.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "a second create");

    // A new source on the new policy: its key and URL are shown once, and
    // the next alert on it routes to the new policy.
    let (status, _, s2) = api
        .post(
            "/api/v1/sources",
            json!({"id": "s2", "type": "prometheus", "escalation_policy": "q"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{s2}");
    let key = s2["key"].as_str().unwrap().to_owned();
    assert!(s2["webhook_url"].as_str().unwrap().ends_with(&key));
    let (_, _, again) = api.get("/api/v1/sources/s2").await;
    assert!(again.get("key").is_none() && again.get("webhook_url").is_none());
    assert_eq!(api.alert(&key).await, StatusCode::ACCEPTED);
    let (_, _, alerts) = api.get("/api/v1/alerts?source=s2").await;
    assert_eq!(alerts["alerts"][0]["policy_id"], "q", "{alerts}");

    // Replace: a stale ETag is refused, the current one works.
    let mut q2 = q.clone();
    q2["repeat"] = json!(2);
    let (status, new_etag, body) = api
        .call(
            Method::PUT,
            "/api/v1/escalation_policies/q",
            ADMIN,
            Some(q2.clone()),
            Some(&etag),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["repeat"], 2);
    assert_ne!(new_etag.as_deref(), Some(etag.as_str()));
    let (status, _, body) = api
        .call(
            Method::PUT,
            "/api/v1/escalation_policies/q",
            ADMIN,
            Some(q2.clone()),
            Some(&etag),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    // A broken body is 422 whatever If-Match says: the body is checked
    // before the precondition.
    let mut broken = q2.clone();
    broken["levels"][0]["escalate_after"] = json!("soon");
    let (status, _, body) = api
        .call(
            Method::PUT,
            "/api/v1/escalation_policies/q",
            ADMIN,
            Some(broken),
            Some(&etag),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // What a GET shows can be PUT back as it is.
    let (_, tag, shown) = api.get("/api/v1/escalation_policies/q").await;
    let (status, _, body) = api
        .call(
            Method::PUT,
            "/api/v1/escalation_policies/q",
            ADMIN,
            Some(shown),
            tag.as_deref(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Provisioned objects are read-only, naming their file.
    let (status, _, body) = api
        .call(
            Method::PUT,
            "/api/v1/escalation_policies/p",
            ADMIN,
            Some(q2),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        message(&body).contains("provisioned from test.yaml"),
        "{body}"
    );
    let (status, _, _) = api
        .call(Method::DELETE, "/api/v1/sources/prom", ADMIN, None, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A delete that would leave a reference dangling names who refers.
    let (status, _, body) = api
        .call(
            Method::DELETE,
            "/api/v1/escalation_policies/q",
            ADMIN,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(message(&body).contains("sources `s2`"), "{body}");
    let (status, _, _) = api
        .call(Method::DELETE, "/api/v1/sources/s2", ADMIN, None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.alert(&key).await,
        StatusCode::NOT_FOUND,
        "its key is gone"
    );
    let (status, _, _) = api
        .call(
            Method::DELETE,
            "/api/v1/escalation_policies/q",
            ADMIN,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = api.get("/api/v1/escalation_policies/q").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rotating_a_key_retires_the_old_one_at_once() {
    let (api, _dir) = api().await;
    let (_, _, s) = api
        .post(
            "/api/v1/sources",
            json!({"id": "s3", "type": "prometheus", "escalation_policy": "p"}),
        )
        .await;
    let old = s["key"].as_str().unwrap().to_owned();
    assert_eq!(api.alert(&old).await, StatusCode::ACCEPTED);
    let (status, _, rotated) = api.post("/api/v1/sources/s3/rotate-key", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["key"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(api.alert(new).await, StatusCode::ACCEPTED);
    assert_eq!(api.alert(&old).await, StatusCode::NOT_FOUND);
    // A key the file sets is changed in the file.
    let (status, _, body) = api.post("/api/v1/sources/prom/rotate-key", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn secrets_are_write_only() {
    let (api, _dir) = api().await;
    let user = json!({"id": "dave", "contacts": [
        {"id": "hook", "type": "webhook", "url": "https://hooks.example.com/d", "secret": "dave-hook-secret-0123"},
        {"id": "chat", "type": "slack", "webhook_url": "https://hooks.slack.example/T0/B0/dave-secret-path"}
    ]});
    let (status, tag, body) = api.post("/api/v1/users", user).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, _, shown) = api.get("/api/v1/users/dave").await;
    let text = shown.to_string();
    assert!(
        !text.contains("dave-hook-secret") && !text.contains("dave-secret-path"),
        "{text}"
    );
    assert_eq!(shown["contacts"][0]["url"], "https://hooks.example.com/d");
    // Putting back what was shown keeps the secrets (the Slack contact
    // would be invalid without its webhook URL).
    let (status, _, body) = api
        .call(
            Method::PUT,
            "/api/v1/users/dave",
            ADMIN,
            Some(shown),
            tag.as_deref(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn overrides_are_managed_even_on_a_provisioned_schedule() {
    let (api, _dir) = api().await;
    let oncall = |at: &'static str| {
        let api = &api;
        async move {
            let (_, _, v) = api
                .get(&format!("/api/v1/schedules/primary/oncall?at={at}"))
                .await;
            v["on_call"]["user"].as_str().unwrap_or_default().to_owned()
        }
    };
    let (status, _, erin) = api.post("/api/v1/users", json!({"id": "erin"})).await;
    assert_eq!(status, StatusCode::CREATED, "{erin}");
    assert_eq!(oncall("2026-12-24T20:00:00Z").await, "alice");
    // In the schedule's local time, as in tocsin.yaml ...
    let (status, _, o1) = api
        .post(
            "/api/v1/schedules/primary/overrides",
            json!({"user": "erin", "from": "2026-12-24T18:00", "to": "2026-12-27T09:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{o1}");
    assert_eq!(o1["origin"], json!({"kind": "managed"}));
    assert_eq!(oncall("2026-12-24T20:00:00Z").await, "erin");
    // ... or RFC 3339 with an offset.
    let (status, _, o2) = api
        .post(
            "/api/v1/schedules/primary/overrides",
            json!({"user": "erin", "from": "2026-12-31T10:00:00+01:00", "to": "2026-12-31T12:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{o2}");
    assert_eq!(o2["from"], "2026-12-31T10:00:00");
    assert_eq!(o2["to"], "2026-12-31T13:00:00");
    assert_eq!(oncall("2026-12-31T11:30:00Z").await, "erin");
    let (status, _, body) = api
        .post(
            "/api/v1/schedules/primary/overrides",
            json!({"user": "nobody", "from": "2026-12-24T18:00", "to": "2026-12-25T09:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message(&body).starts_with("user: unknown users id `nobody`"),
        "{body}"
    );
    let (_, _, list) = api.get("/api/v1/schedules/primary/overrides").await;
    assert_eq!(list["overrides"].as_array().unwrap().len(), 2, "{list}");

    // Who an override names cannot be deleted from under it.
    let (status, _, body) = api
        .call(Method::DELETE, "/api/v1/users/erin", ADMIN, None, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(message(&body).contains("override `"), "{body}");

    for o in [&o1, &o2] {
        let path = format!(
            "/api/v1/schedules/primary/overrides/{}",
            o["id"].as_str().unwrap()
        );
        let (status, _, _) = api.call(Method::DELETE, &path, ADMIN, None, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(oncall("2026-12-24T20:00:00Z").await, "alice");
    let (status, _, _) = api
        .call(Method::DELETE, "/api/v1/users/erin", ADMIN, None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn every_kind_is_created_read_replaced_and_deleted() {
    let (api, _dir) = api().await;
    let objects = [
        (
            "teams",
            json!({"id": "db", "name": "Databases"}),
            "name",
            json!("DB team"),
        ),
        (
            "support_hours",
            json!({"id": "office", "timezone": "Europe/Berlin", "weekly": {"mon-fri": "09:00-18:00"}}),
            "timezone",
            json!("UTC"),
        ),
        (
            "schedules",
            json!({"id": "db-oncall", "timezone": "UTC", "layers": [{"users": ["alice"], "rotation": "1w", "handoff": "2026-01-05T09:00"}]}),
            "name",
            json!("DB on call"),
        ),
        (
            "services",
            json!({"id": "billing", "escalation_policy": "p"}),
            "public",
            json!(true),
        ),
        (
            "heartbeats",
            json!({"id": "backup", "interval": "1h", "escalation_policy": "p"}),
            "grace",
            json!("10m"),
        ),
    ];
    for (kind, body, key, value) in objects {
        let id = body["id"].as_str().unwrap().to_owned();
        let (status, tag, created) = api.post(&format!("/api/v1/{kind}"), body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{kind}: {created}");
        let path = format!("/api/v1/{kind}/{id}");
        let (status, read_tag, shown) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {shown}");
        assert_eq!(
            read_tag, tag,
            "{kind}: the ETag of the create is the ETag of the read"
        );
        let mut changed = shown.clone();
        changed[key] = value.clone();
        let (status, _, replaced) = api
            .call(Method::PUT, &path, ADMIN, Some(changed), tag.as_deref())
            .await;
        assert_eq!(status, StatusCode::OK, "{kind}: {replaced}");
        assert_eq!(replaced[key], value, "{kind}");
        let (_, _, list) = api.get(&format!("/api/v1/{kind}")).await;
        assert!(
            list[kind]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["id"] == id.as_str()),
            "{kind}: {list}"
        );
        if kind == "heartbeats" {
            // Its key and ping URL came once, and the URL pings it.
            let url = created["ping_url"].as_str().unwrap();
            assert!(url.ends_with(created["key"].as_str().unwrap()));
            let key = created["key"].as_str().unwrap();
            let ping = api
                .http
                .post(format!("{}/api/v1/heartbeats/{key}", api.base))
                .send()
                .await
                .unwrap();
            assert_eq!(ping.status(), StatusCode::ACCEPTED);
        }
        let (status, _, body) = api.call(Method::DELETE, &path, ADMIN, None, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{kind}: {body}");
        let (status, _, _) = api.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{kind}: gone");
    }
}
