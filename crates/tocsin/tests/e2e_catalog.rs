//! The catalog changes while `tocsin serve` runs. SIGHUP re-provisions the
//! config file: a new source takes alerts and a user removed from the file
//! is gone, without a restart; a broken file changes nothing and its
//! problem is logged with its key path. With two nodes on one PostgreSQL,
//! a change made through one node is in effect on the other within 2 s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "catalog-token-0123456789abcdef";
const KEY1: &str = "first-source-key-0123456789";
const KEY2: &str = "second-source-key-0123456789";

fn config(db: &str, port: u16, second_source: bool, users: &[&str]) -> String {
    let mut text = format!(
        r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "{db}"}}
api_tokens: [{{name: t, token: {TOKEN}, role: admin}}]
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:alice"], escalate_after: 5m}}]}}
sources:
  - {{id: one, type: prometheus, key: {KEY1}, escalation_policy: p}}
"#
    );
    if second_source {
        text.push_str(&format!(
            "  - {{id: two, type: prometheus, key: {KEY2}, escalation_policy: p}}\n"
        ));
    }
    text.push_str("users:\n");
    for u in users {
        text.push_str(&format!("  - {{id: {u}}}\n"));
    }
    text
}

fn hangup(p: &Proc) {
    let ok = Command::new("kill")
        .args(["-HUP", &p.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP failed");
}

async fn user_ids(base: &str) -> Vec<String> {
    api_get(base, TOKEN, "/api/v1/users").await["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn post_status(base: &str, key: &str) -> u16 {
    send_fixture(base, key, "firing-single.json")
        .await
        .status()
        .as_u16()
}

fn start(dir: &Path, cfg: &Path, run: usize) -> Proc {
    serve(dir, cfg, run)
}

#[tokio::test]
async fn sighup_reprovisions_the_file_and_a_broken_file_changes_nothing() {
    let dir = scratch("catalog-hup");
    let db = format!("sqlite://{}", dir.join("t.db").display());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = dir.join("tocsin.yaml");
    std::fs::write(&cfg, config(&db, port, false, &["alice", "bob"])).unwrap();
    let mut server = start(&dir, &cfg, 0);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
    assert_eq!(user_ids(&base).await, ["alice", "bob"]);
    assert_eq!(post_status(&base, KEY2).await, 404, "no such source yet");

    std::fs::write(&cfg, config(&db, port, true, &["alice", "carol"])).unwrap();
    hangup(&server);
    wait_for("the new catalog in effect", Duration::from_secs(10), || {
        let base = base.clone();
        async move { (user_ids(&base).await == ["alice", "carol"]).then_some(()) }
    })
    .await;
    assert_eq!(
        post_status(&base, KEY2).await,
        202,
        "the new source takes alerts"
    );
    assert_eq!(post_status(&base, KEY1).await, 202);
    // The audit log names the file as the actor of the change.
    let audit = api_get(&base, TOKEN, "/api/v1/audit?kind=sources&object=two").await;
    let entry = &audit["entries"][0];
    let file = cfg.canonicalize().unwrap().display().to_string();
    assert_eq!(entry["actor"], format!("config:{file}"), "{audit}");
    assert_eq!(entry["action"], "create");
    assert!(
        !audit.to_string().contains(KEY2),
        "no key in the log: {audit}"
    );

    // A file with an error: logged with its key path, and nothing changes.
    let broken = config(&db, port, true, &["alice"]).replace("user:alice", "user:nobody");
    std::fs::write(&cfg, broken).unwrap();
    hangup(&server);
    wait_for("the error in the log", Duration::from_secs(10), || {
        let log = server.log_text();
        async move {
            (log.contains("escalation_policies[0].levels[0].notify[0]")
                && log.contains("nothing changed"))
            .then_some(())
        }
    })
    .await;
    assert_eq!(user_ids(&base).await, ["alice", "carol"]);
    assert_eq!(post_status(&base, KEY2).await, 202);
    server.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_node_is_in_effect_on_the_other_within_two_seconds() {
    let dir = scratch("catalog-nodes");
    let pg = Postgres::start(&dir.join("pg"));
    let (port_a, port_b) = (free_port(), free_port());
    let (cfg_a, cfg_b) = (
        dir.join("a").join("tocsin.yaml"),
        dir.join("b").join("tocsin.yaml"),
    );
    for (cfg, port) in [(&cfg_a, port_a), (&cfg_b, port_b)] {
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        std::fs::write(cfg, config(&pg.url, port, false, &["alice"])).unwrap();
    }
    let mut a = start(&dir, &cfg_a, 0);
    wait_http_ok(
        &format!("http://127.0.0.1:{port_a}/readyz"),
        Duration::from_secs(30),
    )
    .await;
    let mut b = start(&dir, &cfg_b, 1);
    let base_b = format!("http://127.0.0.1:{port_b}");
    wait_http_ok(&format!("{base_b}/readyz"), Duration::from_secs(30)).await;
    assert_eq!(post_status(&base_b, KEY2).await, 404);

    // Node A's file gains a source; only node A is told.
    std::fs::write(&cfg_a, config(&pg.url, port_a, true, &["alice"])).unwrap();
    hangup(&a);
    wait_for("node A provisioned", Duration::from_secs(10), || {
        let log = a.log_text();
        async move { log.contains("+ create sources/two").then_some(()) }
    })
    .await;
    let changed = Instant::now();
    let took = wait_for("the source on node B", Duration::from_secs(10), || {
        let base_b = base_b.clone();
        async move { (post_status(&base_b, KEY2).await == 202).then(|| changed.elapsed()) }
    })
    .await;
    assert!(
        took < Duration::from_secs(2),
        "node B took {took:?} to see the change"
    );

    // A policy made through node A's API routes an alert posted to node B.
    let base_a = format!("http://127.0.0.1:{port_a}");
    let created = http()
        .post(format!("{base_a}/api/v1/escalation_policies"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "id": "db", "routing_key": "db-team",
            "levels": [{"notify": ["user:alice"], "escalate_after": "5m"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let changed = Instant::now();
    let took = wait_for("the policy on node B", Duration::from_secs(10), || {
        let base_b = base_b.clone();
        async move {
            let res = http()
                .get(format!("{base_b}/api/v1/escalation_policies/db"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .ok()?;
            (res.status() == 200).then(|| changed.elapsed())
        }
    })
    .await;
    assert!(took < Duration::from_secs(2), "node B took {took:?}");
    let mut body: serde_json::Value =
        serde_json::from_str(&alertmanager_body("DbDown", 1, "firing")).unwrap();
    body["commonLabels"]["routing_key"] = "db-team".into();
    body["alerts"][0]["labels"]["routing_key"] = "db-team".into();
    let res = http()
        .post(format!("{base_b}/api/v1/events/prometheus/{KEY1}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let answer: serde_json::Value = res.json().await.unwrap();
    let id = answer["alerts"][0]["id"].as_i64().unwrap();
    let alert = api_get(&base_b, TOKEN, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(alert["policy_id"], "db", "{alert}");

    // A personal token made on node A works on node B; revoked on node A,
    // node B refuses it within 2 s.
    let made: serde_json::Value = http()
        .post(format!("{base_a}/api/v1/tokens"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "laptop", "user": "alice"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = made["token"].as_str().unwrap().to_owned();
    let me = |base: String, secret: String| async move {
        http()
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(secret)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(me(base_b.clone(), secret.clone()).await, 200);
    let revoked = http()
        .delete(format!(
            "{base_a}/api/v1/tokens/{}",
            made["id"].as_str().unwrap()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let changed = Instant::now();
    let took = wait_for("the revocation on node B", Duration::from_secs(10), || {
        let (base_b, secret) = (base_b.clone(), secret.clone());
        async move { (me(base_b, secret).await == 401).then(|| changed.elapsed()) }
    })
    .await;
    assert!(took < Duration::from_secs(2), "node B took {took:?}");

    a.terminate();
    b.terminate();
    pg.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
