//! Who may do what: one test per cell of the roles table in README.md
//! (operation × role), each against a fresh server on SQLite. A refused
//! operation answers 403 naming the missing permission and changes
//! nothing (the audit log, where every change lands, stays as it was).
//! `readme_table_matches_these_tests` keeps README's table and this one
//! the same.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CONFIG: &str = r#"
api_tokens:
  - {name: root, token: root-token-0123456789abcdef, role: admin}
  - {name: alice-cli, token: alice-token-0123456789abcd, role: responder, user: alice}
  - {name: dan-cli, token: dan-token-0123456789abcdef, role: responder, user: dan}
  - {name: olga-cli, token: olga-token-0123456789abcde, role: observer, user: olga}
teams:
  - {id: sre}
  - {id: db}
users:
  - {id: alice, teams: [sre], contacts: [{id: mail, type: email, address: alice@example.com}], notify: {high: [{contact: mail, after: 0m}]}}
  - {id: dan, teams: [db], contacts: [{id: mail, type: email, address: dan@example.com}], notify: {high: [{contact: mail, after: 0m}]}}
  - {id: olga, teams: [sre], role: observer}
escalation_policies:
  - {id: sre-pager, team: sre, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
  - {id: open-pager, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
services:
  - {id: checkout, team: sre, escalation_policy: sre-pager}
sources:
  - {id: sre-events, type: pagerduty, team: sre, key: sre-events-key-0123456789ab, escalation_policy: sre-pager, service: checkout}
  - {id: open-events, type: pagerduty, key: open-events-key-0123456789a, escalation_policy: open-pager}
schedules:
  - id: sre-rota
    team: sre
    timezone: Europe/Berlin
    layers:
      - {users: [alice], rotation: 1w, handoff: "2026-01-05T09:00"}
"#;

/// The roles table: each operation, then whether admin, a responder who
/// owns the object (in its team; for a profile or a token: its user), a
/// responder who does not (in another team; another user), and an
/// observer may do it.
const TABLE: &[(&str, [bool; 4])] = &[
    (
        "read alerts, the catalog and the audit log",
        [true, true, true, true],
    ),
    (
        "accept, un-accept, resolve an alert",
        [true, true, false, false],
    ),
    ("comment on an alert", [true, true, false, false]),
    ("reassign an alert", [true, true, false, false]),
    (
        "act on an alert whose objects have no team",
        [true, true, true, false],
    ),
    (
        "start and end maintenance windows",
        [true, true, false, false],
    ),
    (
        "create and delete schedule overrides",
        [true, true, false, false],
    ),
    (
        "change own contact methods and notify rules",
        [true, true, false, false],
    ),
    (
        "send a test notification to a user",
        [true, true, false, false],
    ),
    (
        "send a test alert through a source",
        [true, true, false, false],
    ),
    (
        "create and revoke own API tokens",
        [true, true, false, false],
    ),
    (
        "create, replace and delete catalog objects",
        [true, false, false, false],
    ),
    ("rotate a source key", [true, false, false, false]),
    ("apply a file to the catalog", [true, false, false, false]),
    (
        "open, update, change and resolve incidents; link alerts",
        [true, true, false, false],
    ),
    (
        "subscribe a webhook to the status page",
        [true, false, false, false],
    ),
];

const ROOT: &str = "root-token-0123456789abcdef";
const ALICE: &str = "alice-token-0123456789abcd";
const DAN: &str = "dan-token-0123456789abcdef";
const OLGA: &str = "olga-token-0123456789abcde";

#[derive(Clone, Copy, Debug)]
enum Who {
    Admin,
    Owner,
    Other,
    Observer,
}

impl Who {
    fn column(self) -> usize {
        self as usize
    }
}

struct World(common::Server);

impl std::ops::Deref for World {
    type Target = common::Server;

    fn deref(&self) -> &common::Server {
        &self.0
    }
}

impl World {
    async fn new() -> Self {
        World(common::Server::start(CONFIG).await)
    }

    /// Raise an alert through a source's PagerDuty endpoint; its id.
    async fn alert(&self, key: &str, dedup: &str) -> i64 {
        let res = self
            .http
            .post(format!("{}/v2/enqueue", self.base))
            .json(&json!({
                "routing_key": key,
                "event_action": "trigger",
                "dedup_key": dedup,
                "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let (_, list) = self.call(Method::GET, "/api/v1/alerts", ROOT, None).await;
        list["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["dedup_key"] == dedup)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    }

    async fn audit_len(&self) -> usize {
        let (s, v) = self
            .call(Method::GET, "/api/v1/audit?limit=1000", ROOT, None)
            .await;
        assert_eq!(s, StatusCode::OK);
        v["entries"].as_array().unwrap().len()
    }

    /// A managed user `erin` of team sre with a personal token; the token.
    async fn erin(&self) -> String {
        let (s, v) = self
            .call(
                Method::POST,
                "/api/v1/users",
                ROOT,
                Some(json!({"id": "erin", "teams": ["sre"], "contacts": [{"id": "mail", "type": "email", "address": "erin@example.com"}]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        self.token_for("erin").await.1
    }

    /// A personal token an admin issued for `user`: (id, secret).
    async fn token_for(&self, user: &str) -> (String, String) {
        let (s, v) = self
            .call(
                Method::POST,
                "/api/v1/tokens",
                ROOT,
                Some(json!({"name": format!("{user}-laptop"), "user": user})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }
}

fn token(who: Who) -> &'static str {
    match who {
        Who::Admin => ROOT,
        Who::Owner => ALICE,
        Who::Other => DAN,
        Who::Observer => OLGA,
    }
}

/// Perform the operation of `row` as `who`; every status it got.
async fn perform(w: &World, row: &str, who: Who) -> Vec<(String, StatusCode)> {
    let t = token(who);
    let mut out = Vec::new();
    let mut note = |what: &str, (s, v): (StatusCode, Value)| {
        if s == StatusCode::FORBIDDEN {
            let m = v["error"]["message"].as_str().unwrap_or_default();
            assert!(
                m.contains("missing permission `"),
                "{what}: 403 without the permission: {v}"
            );
        }
        out.push((format!("{what} → {v}"), s));
    };
    match row {
        "read alerts, the catalog and the audit log" => {
            for path in [
                "/api/v1/alerts",
                "/api/v1/sources",
                "/api/v1/audit",
                "/api/v1/me",
            ] {
                note(path, w.call(Method::GET, path, t, None).await);
            }
        }
        "accept, un-accept, resolve an alert" => {
            let id = w.alert("sre-events-key-0123456789ab", "a1").await;
            for action in ["accept", "unaccept", "resolve"] {
                let path = format!("/api/v1/alerts/{id}/{action}");
                note(&path, w.call(Method::POST, &path, t, None).await);
            }
        }
        "comment on an alert" => {
            let id = w.alert("sre-events-key-0123456789ab", "a1").await;
            let path = format!("/api/v1/alerts/{id}/comment");
            note(
                &path,
                w.call(Method::POST, &path, t, Some(json!({"text": "on it"})))
                    .await,
            );
        }
        "reassign an alert" => {
            let id = w.alert("sre-events-key-0123456789ab", "a1").await;
            let path = format!("/api/v1/alerts/{id}/reassign");
            note(
                &path,
                w.call(Method::POST, &path, t, Some(json!({"user": "alice"})))
                    .await,
            );
        }
        "act on an alert whose objects have no team" => {
            let id = w.alert("open-events-key-0123456789a", "o1").await;
            let path = format!("/api/v1/alerts/{id}/accept");
            note(&path, w.call(Method::POST, &path, t, None).await);
        }
        "start and end maintenance windows" => {
            let (s, v) = w
                .call(
                    Method::POST,
                    "/api/v1/maintenance",
                    t,
                    Some(json!({"service": "checkout", "duration": "1h"})),
                )
                .await;
            note("start", (s, v.clone()));
            // End one an admin started (the caller's own start may have been refused).
            let (_, mine) = w
                .call(
                    Method::POST,
                    "/api/v1/maintenance",
                    ROOT,
                    Some(json!({"source": "sre-events", "duration": "1h"})),
                )
                .await;
            let before = w.audit_len().await;
            let path = format!("/api/v1/maintenance/{}/end", mine["id"]);
            let r = w.call(Method::POST, &path, t, None).await;
            if r.0 == StatusCode::FORBIDDEN {
                assert_eq!(w.audit_len().await, before, "a refused end changes nothing");
            }
            note(&path, r);
        }
        "create and delete schedule overrides" => {
            let body =
                json!({"user": "alice", "from": "2030-01-01T09:00", "to": "2030-01-02T09:00"});
            let r = w
                .call(
                    Method::POST,
                    "/api/v1/schedules/sre-rota/overrides",
                    t,
                    Some(body.clone()),
                )
                .await;
            note("create", r);
            let (s, made) = w
                .call(
                    Method::POST,
                    "/api/v1/schedules/sre-rota/overrides",
                    ROOT,
                    Some(body),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{made}");
            let path = format!(
                "/api/v1/schedules/sre-rota/overrides/{}",
                made["id"].as_str().unwrap()
            );
            note(&path, w.call(Method::DELETE, &path, t, None).await);
        }
        "change own contact methods and notify rules" => {
            // erin is a managed user of team sre; the owner is erin herself.
            let erin = w.erin().await;
            let t = if matches!(who, Who::Owner) {
                erin.as_str()
            } else {
                t
            };
            let (_, user) = w.call(Method::GET, "/api/v1/users/erin", ROOT, None).await;
            let mut body = user.clone();
            body["contacts"] =
                json!([{"id": "mail", "type": "email", "address": "erin@example.org"}]);
            body["notify"] = json!({"high": [{"contact": "mail", "after": "0m"}]});
            note(
                "PUT /api/v1/users/erin",
                w.call(Method::PUT, "/api/v1/users/erin", t, Some(body))
                    .await,
            );
            if matches!(who, Who::Owner) {
                // ... but not her teams or role: that is an admin's.
                let mut more = user;
                more["teams"] = json!(["sre", "db"]);
                let (s, v) = w
                    .call(Method::PUT, "/api/v1/users/erin", t, Some(more))
                    .await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
                assert!(
                    v["error"]["message"].as_str().unwrap().contains("`teams`"),
                    "{v}"
                );
            }
        }
        "send a test notification to a user" => {
            let t = if matches!(who, Who::Owner) { ALICE } else { t };
            let path = "/api/v1/users/alice/test-notification";
            note(path, w.call(Method::POST, path, t, None).await);
        }
        "send a test alert through a source" => {
            let path = "/api/v1/sources/sre-events/test-alert";
            note(
                path,
                w.call(Method::POST, path, t, Some(json!({"severity": "SEV1"})))
                    .await,
            );
        }
        "create and revoke own API tokens" => {
            // The owner is the user the tokens are for: alice for admin,
            // owner and the responder of another team (who may not), olga
            // for the observer.
            let user = if matches!(who, Who::Observer) {
                "olga"
            } else {
                "alice"
            };
            let body = match who {
                Who::Owner | Who::Observer => json!({"name": "mine"}),
                Who::Admin | Who::Other => json!({"name": "mine", "user": user}),
            };
            note(
                "create",
                w.call(Method::POST, "/api/v1/tokens", t, Some(body)).await,
            );
            let (id, _) = w.token_for(user).await;
            let path = format!("/api/v1/tokens/{id}");
            note(&path, w.call(Method::DELETE, &path, t, None).await);
        }
        "create, replace and delete catalog objects" => {
            note(
                "create",
                w.call(Method::POST, "/api/v1/teams", t, Some(json!({"id": "web"})))
                    .await,
            );
            w.call(
                Method::POST,
                "/api/v1/teams",
                ROOT,
                Some(json!({"id": "ops"})),
            )
            .await;
            note(
                "replace",
                w.call(
                    Method::PUT,
                    "/api/v1/teams/ops",
                    t,
                    Some(json!({"id": "ops", "name": "Ops"})),
                )
                .await,
            );
            note(
                "delete",
                w.call(Method::DELETE, "/api/v1/teams/ops", t, None).await,
            );
        }
        "rotate a source key" => {
            w.call(
                Method::POST,
                "/api/v1/sources",
                ROOT,
                Some(json!({"id": "managed", "type": "prometheus", "escalation_policy": "sre-pager", "team": "sre"})),
            )
            .await;
            let path = "/api/v1/sources/managed/rotate-key";
            note(path, w.call(Method::POST, path, t, None).await);
        }
        "apply a file to the catalog" => {
            let body = json!({"file": "team.yaml", "document": {"teams": [{"id": "web"}]}});
            note(
                "apply",
                w.call(Method::POST, "/api/v1/catalog/apply", t, Some(body))
                    .await,
            );
        }
        "open, update, change and resolve incidents; link alerts" => {
            let body = json!({"title": "Checkout slow", "severity": "SEV2", "services": [{"id": "checkout", "impact": "degraded"}], "public": false});
            note(
                "open",
                w.call(Method::POST, "/api/v1/incidents", t, Some(body.clone()))
                    .await,
            );
            // The rest on one an admin opened.
            let (_, made) = w
                .call(Method::POST, "/api/v1/incidents", ROOT, Some(body))
                .await;
            let id = made["id"].as_i64().unwrap();
            let alert = w.alert("sre-events-key-0123456789ab", "i1").await;
            let calls = [
                (
                    Method::POST,
                    format!("/api/v1/incidents/{id}/updates"),
                    Some(json!({"message": "looking", "public": false})),
                ),
                (
                    Method::PATCH,
                    format!("/api/v1/incidents/{id}"),
                    Some(json!({"severity": "SEV1"})),
                ),
                (
                    Method::POST,
                    format!("/api/v1/incidents/{id}/alerts"),
                    Some(json!({"alert_id": alert})),
                ),
                (
                    Method::DELETE,
                    format!("/api/v1/incidents/{id}/alerts/{alert}"),
                    None,
                ),
                (
                    Method::POST,
                    format!("/api/v1/incidents/{id}/resolve"),
                    Some(json!({"message": "done"})),
                ),
            ];
            for (m, path, b) in calls {
                let r = w.call(m, &path, t, b).await;
                // Unlinking what the refused link did not link is a 404.
                if path.contains("/alerts/") && r.0 == StatusCode::NOT_FOUND {
                    continue;
                }
                note(&path, r);
            }
        }
        "subscribe a webhook to the status page" => {
            let r = w
                .call(
                    Method::POST,
                    "/api/v1/status/subscribers",
                    t,
                    Some(json!({"webhook_url": "https://hooks.example.com/status"})),
                )
                .await;
            note("subscribe", r);
        }
        other => panic!("no operation `{other}`"),
    }
    out
}

async fn cell(row: &str, who: Who) {
    let allowed = TABLE
        .iter()
        .find(|(r, _)| *r == row)
        .unwrap_or_else(|| panic!("`{row}` is not in TABLE"))
        .1[who.column()];
    let w = World::new().await;
    let before = w.audit_len().await;
    let results = perform(&w, row, who).await;
    assert!(!results.is_empty());
    for (what, status) in &results {
        if allowed {
            assert!(
                status.is_success(),
                "{row} as {who:?}: {what} got {status}, expected success"
            );
        } else {
            assert_eq!(*status, StatusCode::FORBIDDEN, "{row} as {who:?}: {what}");
        }
    }
    // Refused: nothing changed but what the setup did as admin. (The
    // setup's own changes are audited; count only the caller's.)
    if !allowed {
        let (_, v) = w
            .call(Method::GET, "/api/v1/audit?limit=1000", ROOT, None)
            .await;
        let by_caller = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                let a = e["actor"].as_str().unwrap();
                a != "token:root" && !a.starts_with("config:")
            })
            .count();
        assert_eq!(by_caller, 0, "{row} as {who:?} changed something: {v}");
        assert!(w.audit_len().await >= before);
    }
}

macro_rules! row {
    ($name:ident, $row:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn admin() {
                cell($row, Who::Admin).await
            }
            #[tokio::test]
            async fn responder_owner() {
                cell($row, Who::Owner).await
            }
            #[tokio::test]
            async fn responder_other_team() {
                cell($row, Who::Other).await
            }
            #[tokio::test]
            async fn observer() {
                cell($row, Who::Observer).await
            }
        }
    };
}

row!(read, "read alerts, the catalog and the audit log");
row!(alert_transitions, "accept, un-accept, resolve an alert");
row!(alert_comment, "comment on an alert");
row!(alert_reassign, "reassign an alert");
row!(
    alert_of_no_team,
    "act on an alert whose objects have no team"
);
row!(maintenance, "start and end maintenance windows");
row!(overrides, "create and delete schedule overrides");
row!(own_profile, "change own contact methods and notify rules");
row!(test_notification, "send a test notification to a user");
row!(test_alert, "send a test alert through a source");
row!(own_tokens, "create and revoke own API tokens");
row!(catalog_edits, "create, replace and delete catalog objects");
row!(rotate_key, "rotate a source key");
row!(apply, "apply a file to the catalog");
row!(
    incidents,
    "open, update, change and resolve incidents; link alerts"
);
row!(status_webhooks, "subscribe a webhook to the status page");

#[test]
fn readme_table_matches_these_tests() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut found = Vec::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.len() != 5 {
            continue;
        }
        if let Some((row, _)) = TABLE.iter().find(|(r, _)| *r == cells[0]) {
            let marks: Vec<bool> = cells[1..].iter().map(|c| *c == "yes").collect();
            found.push((*row, [marks[0], marks[1], marks[2], marks[3]]));
        }
    }
    assert_eq!(
        found,
        TABLE.to_vec(),
        "README.md's roles table differs from TABLE"
    );
}
