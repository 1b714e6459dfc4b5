//! Three `tocsin serve` nodes on one PostgreSQL. Node A holds claimed work
//! when it is killed with `kill -9`: a message about three alerts in flight
//! (to a webhook that never answers it) and an escalation step it claimed
//! but could not complete yet (the test holds a lock its transaction waits
//! for). Another node takes each over once its lease has run out, within
//! 5 s of that, and every page is delivered exactly once. Afterwards an
//! alert posted to any node is paged, other nodes hear the wake-ups, and
//! each node's /metrics shows its claims and takeovers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::*;
use serde_json::Value;
use sqlx::Connection;

const KEY: &str = "nodes-key-0123456789abcdef01";
/// A source whose policy notifies nobody at level 1 and alice at level 2,
/// one second later: its level 2 is a step a worker claims.
const LATER_KEY: &str = "nodes-later-0123456789abcdef";
const TOKEN: &str = "nodes-token-0123456789abcdef";

/// What the webhook saw: requests begun (alert ids) and answered ones with
/// when they were answered.
#[derive(Default)]
struct Sink {
    messages: usize,
    begun: Vec<i64>,
    answered: Vec<(i64, Instant)>,
}

type Shared = Arc<Mutex<Sink>>;

/// The first `hang` messages never get an answer (their sender is killed
/// meanwhile); every later one is answered 200 at once.
async fn webhook(shared: Shared, hang: usize) -> u16 {
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(move |State(s): State<Shared>, b: Bytes| async move {
                let v: Value = serde_json::from_slice(&b).unwrap();
                // The message's alerts: the first, and those bundled with it.
                let ids: Vec<i64> = std::iter::once(&v["alert"])
                    .chain(v["also"].as_array().into_iter().flatten())
                    .map(|a| a["id"].as_i64().unwrap())
                    .collect();
                let n = {
                    let mut s = s.lock().unwrap();
                    s.begun.extend(&ids);
                    s.messages += 1;
                    s.messages
                };
                if n <= hang {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                }
                let at = Instant::now();
                s.lock()
                    .unwrap()
                    .answered
                    .extend(ids.iter().map(|id| (*id, at)));
                StatusCode::OK
            }),
        )
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn node(dir: &Path, cfg: &Path, name: &str, port: u16) -> Proc {
    let out = std::fs::File::create(dir.join(format!("out-{name}"))).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    cmd.args(["serve", "--config"])
        .arg(cfg)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("TOCSIN_LOG", "info,sqlx=warn");
    Proc::spawn_split(name, &mut cmd, out, &dir.join(format!("err-{name}")))
}

async fn post(base: &str, group: &str, n: usize) -> Vec<i64> {
    post_alerts(base, KEY, alertmanager_body(group, n, "firing")).await
}

/// The sum of a metric's samples whose line starts with `prefix`.
async fn metric(base: &str, prefix: &str) -> f64 {
    let text = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_take_over_a_killed_nodes_claims_each_once() {
    let dir = scratch("nodes");
    let pg = Postgres::start(&dir.join("pg"));
    let shared: Shared = Arc::default();
    let hook = webhook(shared.clone(), 1).await;
    let cfg = dir.join("tocsin.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
database: {{url: "{db}"}}
api_tokens: [{{name: t, token: {TOKEN}, role: admin}}]
notifications: {{bundle_window: 1s}}
users:
  - id: alice
    contacts: [{{id: hook, type: webhook, url: "http://127.0.0.1:{hook}/hook"}}]
    notify: {{high: [{{contact: hook, after: 0m}}]}}
  - id: bob
    contacts: [{{id: hook, type: webhook, url: "http://127.0.0.1:{hook}/bob"}}]
    notify: {{low: [{{contact: hook, after: 0m}}]}}
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:alice"], escalate_after: 1h}}]}}
  - {{id: q, levels: [{{notify: ["user:bob"], escalate_after: 1s}}, {{notify: ["user:alice"], escalate_after: 1h}}]}}
sources:
  - {{id: am, type: prometheus, grouping: alert, escalation_policy: p, key: {KEY}}}
  - {{id: later, type: prometheus, grouping: alert, escalation_policy: q, key: {LATER_KEY}}}
"#,
            db = pg.url
        ),
    )
    .unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();

    // Node A alone: three pages go out as one message that hangs at the
    // webhook.
    let mut a = node(&dir, &cfg, "a", ports[0]);
    wait_http_ok(&format!("{}/readyz", bases[0]), Duration::from_secs(30)).await;
    let hung = post(&bases[0], "hung", 3).await;
    wait_for(
        "a message in flight on A",
        Duration::from_secs(10),
        || async { (shared.lock().unwrap().begun.len() == 3).then_some(()) },
    )
    .await;

    // A step A has claimed but cannot complete: the test locks alice's
    // contact gate, which completing the step must update. (A new alert's
    // first level runs in its ingest transaction; this alert's level 2,
    // one second later, is the worker's.)
    let mut lock = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("SELECT 1 FROM contact_gates WHERE user_id = 'alice' FOR UPDATE")
        .execute(&mut lock)
        .await
        .unwrap();
    let blocked = post_alerts(
        &bases[0],
        LATER_KEY,
        alertmanager_body("blocked", 1, "firing"),
    )
    .await[0];
    let mut db = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = sqlx::query_scalar::<_, String>(
            "SELECT status FROM escalation_steps WHERE alert_id = $1 AND level = 1",
        )
        .bind(blocked)
        .fetch_optional(&mut db)
        .await
        .unwrap();
        if status.as_deref() == Some("running") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A did not claim the step: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // B and C join; then A dies holding all of that.
    let b = node(&dir, &cfg, "b", ports[1]);
    let c = node(&dir, &cfg, "c", ports[2]);
    for base in &bases[1..] {
        wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
    }
    a.kill();
    let killed = Instant::now();
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    // When each lease runs out (as A last renewed it): A holds alice's
    // contact for the message in flight.
    let contact_lease = from_ms(
        sqlx::query_scalar::<_, i64>(
            "SELECT claimed_until FROM contact_gates WHERE user_id = 'alice' AND claim IS NOT NULL",
        )
        .fetch_one(&mut db)
        .await
        .unwrap(),
    );
    let page_leases: BTreeMap<i64, DateTime<Utc>> =
        hung.iter().map(|id| (*id, contact_lease)).collect();
    let step_lease = from_ms(
        sqlx::query_scalar::<_, i64>(
            "SELECT claimed_until FROM escalation_steps WHERE alert_id = $1 AND level = 1",
        )
        .bind(blocked)
        .fetch_one(&mut db)
        .await
        .unwrap(),
    );

    // B or C delivers all four, each after its lease ran out and within 5 s
    // of that.
    let mut want: Vec<i64> = hung.iter().copied().chain([blocked]).collect();
    want.sort_unstable();
    let answered = wait_for("the takeover", Duration::from_secs(40), || {
        let s = shared.lock().unwrap();
        let mut got: Vec<(i64, Instant)> = s.answered.clone();
        got.sort_unstable_by_key(|(id, _)| *id);
        let ids: Vec<i64> = got.iter().map(|(id, _)| *id).collect();
        let done = ids == want;
        async move { done.then_some(got) }
    })
    .await;
    let now_wall = Utc::now();
    let now_mono = Instant::now();
    let wall = |at: Instant| now_wall - chrono::TimeDelta::from_std(now_mono - at).unwrap();
    let killed_wall = wall(killed);
    for (id, at) in &answered {
        // The blocked alert's page waits for its step, then for alice's
        // contact (held under A's lease) like the others.
        let lease = if *id == blocked {
            step_lease.max(contact_lease)
        } else {
            page_leases[id]
        };
        // Free to take over from the later of the lease's end and the kill
        // (A's step lease may have run out while A still held the step).
        let free = lease.max(killed_wall);
        let late = (wall(*at) - free).num_milliseconds();
        eprintln!(
            "alert {id}: free to take over {} ms after the kill, delivered {late} ms after that",
            (free - killed_wall).num_milliseconds()
        );
        assert!(
            wall(*at) >= lease - chrono::TimeDelta::milliseconds(100),
            "alert {id} was taken over before its lease ran out"
        );
        assert!(
            late < 5000,
            "alert {id} delivered {late} ms after it was free to take over"
        );
    }

    // An alert posted to C is paged by whichever node is free.
    let fresh = post(&bases[2], "fresh", 1).await[0];
    wait_for(
        "the fresh alert's page",
        Duration::from_secs(10),
        || async {
            shared
                .lock()
                .unwrap()
                .answered
                .iter()
                .any(|(id, _)| *id == fresh)
                .then_some(())
        },
    )
    .await;
    // Past every lease again: nothing was sent twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut got: Vec<i64> = shared
        .lock()
        .unwrap()
        .answered
        .iter()
        .map(|(id, _)| *id)
        .collect();
    got.sort_unstable();
    let mut all = want.clone();
    all.push(fresh);
    all.sort_unstable();
    assert_eq!(got, all, "every page answered exactly once");
    for id in &all {
        let alert = api_get(&bases[1], TOKEN, &format!("/api/v1/alerts/{id}")).await;
        let n = alert["notifications"].as_array().unwrap();
        assert_eq!(n.len(), 1, "{alert}");
        assert_eq!(n[0]["status"], "sent");
    }

    // Each surviving node reports its share; together they took over A's.
    let mut takeovers = (0.0, 0.0);
    let mut wakeups = 0.0;
    for base in &bases[1..] {
        takeovers.0 += metric(base, "tocsin_lease_takeovers_total{kind=\"page\"}").await;
        takeovers.1 += metric(base, "tocsin_lease_takeovers_total{kind=\"step\"}").await;
        wakeups += metric(base, "tocsin_wakeup_latency_seconds_count").await;
        assert!(metric(base, "tocsin_claims_total").await >= 0.0);
    }
    assert!(
        takeovers.0 >= 3.0,
        "A's three pages taken over: {takeovers:?}"
    );
    assert_eq!(takeovers.1, 1.0, "A's step taken over");
    assert!(wakeups > 0.0, "the nodes heard each other's wake-ups");
    drop((b, c));
}
