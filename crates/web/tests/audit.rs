//! Personal tokens, `/api/v1/me` and the audit log against a real server on
//! SQLite: every kind of change leaves one entry with its actor, channel
//! and a diff without secrets; the log is filtered, paged and read-only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CONFIG: &str = r#"
api_tokens:
  - {name: root, token: root-token-0123456789abcdef, role: admin}
  - {name: alice-cli, token: alice-token-0123456789abcd, role: responder, user: alice}
teams:
  - {id: sre}
users:
  - {id: alice, name: Alice Example, email: alice@example.com, teams: [sre], contacts: [{id: mail, type: email, address: alice@example.com}], notify: {high: [{contact: mail, after: 0m}]}}
  - {id: olga, teams: [sre], role: observer}
escalation_policies:
  - {id: sre-pager, team: sre, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
  - {id: other-pager, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
services:
  - {id: checkout, team: sre, escalation_policy: sre-pager}
sources:
  - {id: events, type: pagerduty, team: sre, key: events-key-0123456789abcdef, escalation_policy: sre-pager}
schedules:
  - id: rota
    team: sre
    timezone: Europe/Berlin
    layers:
      - {users: [alice], rotation: 1w, handoff: "2026-01-05T09:00"}
"#;

const ROOT: &str = "root-token-0123456789abcdef";
const ALICE: &str = "alice-token-0123456789abcd";

struct Api(common::Server);

impl std::ops::Deref for Api {
    type Target = common::Server;

    fn deref(&self) -> &common::Server {
        &self.0
    }
}

impl Api {
    async fn new() -> Self {
        Api(common::Server::start(CONFIG).await)
    }

    async fn ok(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method.clone(), path, token, body).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }

    /// The newest audit entry of `kind`/`object` with `action`.
    async fn entry(&self, kind: &str, object: &str, action: &str) -> Value {
        let v = self
            .ok(
                Method::GET,
                &format!("/api/v1/audit?kind={kind}&object={object}&limit=1000"),
                ROOT,
                None,
            )
            .await;
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("no {action} of {kind} {object} in {v}"))
    }
}

#[tokio::test]
async fn provisioning_and_api_catalog_writes_are_audited_without_secrets() {
    let api = Api::new().await;
    // Provisioning at start: the file is the actor.
    let e = api.entry("sources", "events", "create").await;
    assert_eq!(e["actor"], "config:test.yaml");
    assert_eq!(e["channel"], "provisioning");
    assert_eq!(e["diff"]["escalation_policy"]["after"], "sre-pager");
    assert!(
        !e.to_string().contains("events-key-0123456789abcdef"),
        "{e}"
    );

    // Through the API: create, update, rotate the key, delete.
    let made = api
        .ok(
            Method::POST,
            "/api/v1/sources",
            ROOT,
            Some(json!({"id": "managed", "type": "prometheus", "key": "managed-key-0123456789abcd", "escalation_policy": "sre-pager"})),
        )
        .await;
    let e = api.entry("sources", "managed", "create").await;
    assert_eq!(
        (e["actor"].as_str(), e["channel"].as_str()),
        (Some("token:root"), Some("api"))
    );
    assert!(!e.to_string().contains("managed-key"), "{e}");
    assert_eq!(made["key"], "managed-key-0123456789abcd");
    // What GET shows can be PUT back; the key left out is kept.
    let mut body = api
        .ok(Method::GET, "/api/v1/sources/managed", ROOT, None)
        .await;
    body["escalation_policy"] = json!("other-pager");
    api.ok(
        Method::PUT,
        "/api/v1/sources/managed",
        ROOT,
        Some(body.clone()),
    )
    .await;
    let e = api.entry("sources", "managed", "update").await;
    assert_eq!(
        e["diff"],
        json!({"escalation_policy": {"before": "sre-pager", "after": "other-pager"}}),
        "only what changed; the kept key is no change"
    );
    body["key"] = json!("managed-key-new-0123456789");
    api.ok(Method::PUT, "/api/v1/sources/managed", ROOT, Some(body))
        .await;
    let v = api
        .ok(
            Method::GET,
            "/api/v1/audit?kind=sources&object=managed",
            ROOT,
            None,
        )
        .await;
    let newest = &v["entries"][0];
    assert_eq!(newest["diff"], json!({"key": {"secret": "changed"}}), "{v}");
    api.ok(Method::DELETE, "/api/v1/sources/managed", ROOT, None)
        .await;
    let e = api.entry("sources", "managed", "delete").await;
    assert_eq!(e["diff"]["type"]["before"], "prometheus");
    assert!(e["diff"]["type"]["after"].is_null());

    // A key rotation of a source whose key Tocsin generated.
    api.ok(
        Method::POST,
        "/api/v1/sources",
        ROOT,
        Some(json!({"id": "gen", "type": "prometheus", "escalation_policy": "sre-pager"})),
    )
    .await;
    api.ok(Method::POST, "/api/v1/sources/gen/rotate-key", ROOT, None)
        .await;
    let e = api.entry("sources", "gen", "rotate-key").await;
    assert_eq!(e["diff"], json!({"key": {"secret": "changed"}}));

    // `tocsin apply`: the caller, through the file's name.
    api.ok(
        Method::POST,
        "/api/v1/catalog/apply",
        ROOT,
        Some(json!({"file": "team.yaml", "document": {"teams": [{"id": "web", "name": "Web"}]}})),
    )
    .await;
    let e = api.entry("teams", "web", "create").await;
    assert_eq!(e["actor"], "token:root");
    assert_eq!(e["channel"], "apply team.yaml");
    assert_eq!(e["diff"]["name"]["after"], "Web");

    // Overrides, made by a responder of the schedule's team.
    let o = api
        .ok(
            Method::POST,
            "/api/v1/schedules/rota/overrides",
            ALICE,
            Some(json!({"user": "alice", "from": "2030-01-01T09:00", "to": "2030-01-02T09:00"})),
        )
        .await;
    let oid = o["id"].as_str().unwrap();
    let e = api.entry("overrides", oid, "create").await;
    assert_eq!(e["actor"], "user:alice");
    assert_eq!(e["channel"], "api (token alice-cli)");
    api.ok(
        Method::DELETE,
        &format!("/api/v1/schedules/rota/overrides/{oid}"),
        ALICE,
        None,
    )
    .await;
    api.entry("overrides", oid, "delete").await;
}

#[tokio::test]
async fn alert_actions_maintenance_and_tokens_are_audited() {
    let api = Api::new().await;
    let res = api
        .http
        .post(format!("{}/v2/enqueue", api.base))
        .json(&json!({"routing_key": "events-key-0123456789abcdef", "event_action": "trigger", "dedup_key": "disk", "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let list = api.ok(Method::GET, "/api/v1/alerts", ROOT, None).await;
    let id = list["alerts"][0]["id"].as_i64().unwrap().to_string();
    for action in ["accept", "unaccept"] {
        api.ok(
            Method::POST,
            &format!("/api/v1/alerts/{id}/{action}"),
            ALICE,
            None,
        )
        .await;
    }
    api.ok(
        Method::POST,
        &format!("/api/v1/alerts/{id}/comment"),
        ALICE,
        Some(json!({"text": "rebooting db-1"})),
    )
    .await;
    api.ok(
        Method::POST,
        &format!("/api/v1/alerts/{id}/reassign"),
        ROOT,
        Some(json!({"escalation_policy": "other-pager"})),
    )
    .await;
    api.ok(
        Method::POST,
        &format!("/api/v1/alerts/{id}/resolve"),
        ROOT,
        None,
    )
    .await;
    let e = api.entry("alert", &id, "accept").await;
    assert_eq!(e["actor"], "user:alice");
    assert_eq!(
        e["diff"],
        json!({"status": {"before": "pending", "after": "accepted"}})
    );
    let e = api.entry("alert", &id, "unaccept").await;
    assert_eq!(e["diff"]["status"]["after"], "pending");
    let e = api.entry("alert", &id, "comment").await;
    assert_eq!(e["diff"]["comment"]["after"], "rebooting db-1");
    let e = api.entry("alert", &id, "reassign").await;
    assert_eq!(
        e["diff"]["escalation_policy"],
        json!({"before": "sre-pager", "after": "other-pager"})
    );
    let e = api.entry("alert", &id, "resolve").await;
    assert_eq!(e["actor"], "token:root");

    // A sender's commands are alert actions too (`source:ID`).
    for action in ["trigger", "acknowledge", "resolve"] {
        let res = api
            .http
            .post(format!("{}/v2/enqueue", api.base))
            .json(&json!({"routing_key": "events-key-0123456789abcdef", "event_action": action, "dedup_key": "cpu", "payload": {"summary": "cpu hot", "source": "db-1", "severity": "warning"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED, "{action}");
    }
    let list = api.ok(Method::GET, "/api/v1/alerts", ROOT, None).await;
    let cpu = list["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["dedup_key"] == "cpu")
        .unwrap()["id"]
        .as_i64()
        .unwrap()
        .to_string();
    for action in ["accept", "resolve"] {
        let e = api.entry("alert", &cpu, action).await;
        assert_eq!(e["actor"], "source:events", "{e}");
        assert_eq!(e["channel"], "pagerduty events v2", "{e}");
    }

    // Maintenance windows.
    let w = api
        .ok(
            Method::POST,
            "/api/v1/maintenance",
            ALICE,
            Some(json!({"service": "checkout", "duration": "2h", "reason": "db upgrade"})),
        )
        .await;
    let wid = w["id"].to_string();
    let e = api.entry("maintenance", &wid, "create").await;
    assert_eq!(e["diff"]["target"]["after"], "service:checkout");
    assert_eq!(e["diff"]["reason"]["after"], "db upgrade");
    api.ok(
        Method::POST,
        &format!("/api/v1/maintenance/{wid}/end"),
        ALICE,
        None,
    )
    .await;
    api.entry("maintenance", &wid, "end").await;

    // Tokens: made and revoked, the secret never in the log.
    let t = api
        .ok(
            Method::POST,
            "/api/v1/tokens",
            ALICE,
            Some(json!({"name": "laptop"})),
        )
        .await;
    let tid = t["id"].as_str().unwrap();
    let secret = t["token"].as_str().unwrap();
    let e = api.entry("token", tid, "create").await;
    assert_eq!(e["diff"]["user"]["after"], "alice");
    assert!(!e.to_string().contains(secret));
    api.ok(
        Method::DELETE,
        &format!("/api/v1/tokens/{tid}"),
        ALICE,
        None,
    )
    .await;
    let e = api.entry("token", tid, "revoke").await;
    assert_eq!(e["actor"], "user:alice");

    // Filters and pages.
    let by_alice = api
        .ok(
            Method::GET,
            "/api/v1/audit?actor=user:alice&limit=1000",
            ROOT,
            None,
        )
        .await;
    let n = by_alice["entries"].as_array().unwrap().len();
    assert_eq!(
        n, 7,
        "accept, unaccept, comment, 2 maintenance, 2 token: {by_alice}"
    );
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit?actor=user:alice&limit=3&cursor={c}"),
            None => "/api/v1/audit?actor=user:alice&limit=3".to_owned(),
        };
        let page = api.ok(Method::GET, &path, ROOT, None).await;
        seen += page["entries"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, n);
    let future = api
        .ok(
            Method::GET,
            "/api/v1/audit?since=2100-01-01T00:00:00Z",
            ROOT,
            None,
        )
        .await;
    assert!(future["entries"].as_array().unwrap().is_empty());
    let (s, v) = api
        .call(Method::GET, "/api/v1/audit?since=yesterday", ROOT, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Nothing edits or deletes entries.
    for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let (s, _) = api.call(m.clone(), "/api/v1/audit", ROOT, None).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{m}");
    }
}

#[tokio::test]
async fn personal_tokens_act_as_their_user_until_revoked_or_expired() {
    let api = Api::new().await;
    // A service token and a user's config token.
    let me = api.ok(Method::GET, "/api/v1/me", ROOT, None).await;
    assert_eq!(me["kind"], "service");
    assert_eq!(me["role"], "admin");
    assert!(me["user"].is_null());
    let me = api.ok(Method::GET, "/api/v1/me", ALICE, None).await;
    assert_eq!(me["kind"], "user");
    assert_eq!(me["user"]["id"], "alice");
    assert_eq!(me["teams"], json!(["sre"]));

    // Alice makes one for herself; no higher than responder.
    let (s, v) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            ALICE,
            Some(json!({"name": "x", "role": "admin"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let t = api
        .ok(
            Method::POST,
            "/api/v1/tokens",
            ALICE,
            Some(json!({"name": "laptop", "role": "observer"})),
        )
        .await;
    let secret = t["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tcn_") && secret.len() >= 36, "{secret}");
    assert_eq!(t["user"], "alice");
    let me = api.ok(Method::GET, "/api/v1/me", &secret, None).await;
    assert_eq!(
        (me["role"].as_str(), me["user"]["id"].as_str()),
        (Some("observer"), Some("alice"))
    );
    assert_eq!(me["token"]["name"], "laptop");

    // Listed without its secret, with its last use.
    let list = api.ok(Method::GET, "/api/v1/tokens", ALICE, None).await;
    let listed = &list["tokens"][0];
    assert_eq!(listed["name"], "laptop");
    assert!(listed.get("token").is_none() && !list.to_string().contains(&secret));
    for _ in 0..50 {
        let list = api.ok(Method::GET, "/api/v1/tokens", ALICE, None).await;
        if !list["tokens"][0]["last_used_at"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let list = api.ok(Method::GET, "/api/v1/tokens", ALICE, None).await;
    assert!(!list["tokens"][0]["last_used_at"].is_null(), "{list}");
    // An admin sees everybody's; an observer of the user lists only their own.
    let all = api.ok(Method::GET, "/api/v1/tokens", ROOT, None).await;
    assert_eq!(all["tokens"].as_array().unwrap().len(), 1);
    let (s, _) = api
        .call(Method::GET, "/api/v1/tokens?user=olga", ALICE, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Revoked: 401 at once, saying so.
    api.ok(
        Method::DELETE,
        &format!("/api/v1/tokens/{}", t["id"].as_str().unwrap()),
        ALICE,
        None,
    )
    .await;
    let (s, v) = api.call(Method::GET, "/api/v1/me", &secret, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("was revoked") && m.contains("by user:alice"),
        "{m}"
    );

    // Expired: 401 saying when.
    let soon = (chrono::Utc::now() + chrono::TimeDelta::milliseconds(600)).to_rfc3339();
    let t = api
        .ok(
            Method::POST,
            "/api/v1/tokens",
            ROOT,
            Some(json!({"name": "short", "user": "alice", "expires_at": soon})),
        )
        .await;
    let short = t["token"].as_str().unwrap();
    assert_eq!(t["role"], "responder", "capped at alice's role");
    api.ok(Method::GET, "/api/v1/me", short, None).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let (s, v) = api.call(Method::GET, "/api/v1/me", short, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("expired"),
        "{v}"
    );

    // Unknown ones are told apart from revoked ones.
    let (s, v) = api.call(Method::GET, "/api/v1/me", "tcn_0000", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not known"),
        "{v}"
    );
    // A service token cannot make a token for nobody.
    let (s, v) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            ROOT,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}
