//! The escalation worker driven by tick(now) with an injected clock, through
//! whole escalations, on SQLite and PostgreSQL. No sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tocsin_domain::catalog::SharedCatalog;
use tocsin_domain::{AlertEvent, DedupKey, Member, MemberStatus, Priority, RoutingHint, Severity};
use tocsin_engine::EscalationWorker;
use tocsin_store::{Actor, RoutedEvent, Store, Transition};

const CONFIG: &str = r#"
users:
  - id: alice
    contacts: [{id: mail, type: email, address: alice@example.com}, {id: phone, type: sms, number: "+491701234567"}]
    notify: {high: [{contact: mail, after: 0m}, {contact: phone, after: 1m}], low: [{contact: mail, after: 0m}]}
  - id: bob
    contacts: [{id: mail, type: email, address: bob@example.com}]
    notify: {high: [{contact: mail, after: 0m}], low: [{contact: mail, after: 0m}]}
  - id: carol
    contacts: [{id: mail, type: email, address: carol@example.com}]
    notify: {high: [{contact: mail, after: 0m}]}
schedules:
  - id: primary
    timezone: Europe/Berlin
    layers:
      - users: [alice, bob]
        rotation: 1w
        handoff: "2026-01-05T09:00"
        restrict: [{days: mon-fri, from: "08:00", to: "20:00"}]
escalation_policies:
  - id: main
    repeat: 1
    levels:
      - {notify: ["schedule:primary"], escalate_after: 5m}
      - {notify: ["user:carol"], escalate_after: 10m}
"#;

struct Env {
    store: Arc<dyn Store>,
    worker: EscalationWorker,
    _dir: Option<tempfile::TempDir>,
}

/// The application layer over `store` with the catalog of `text`
/// provisioned, as the server has it.
async fn application(store: &Arc<dyn Store>, text: &str) -> Arc<tocsin_app::Application> {
    let (config, refs) =
        tocsin_config::from_str_with_refs(text, Path::new("."), &|_| None).unwrap();
    tocsin_app::catalog::provision(
        store.as_ref(),
        "test.yaml",
        &config,
        &refs,
        &tocsin_app::catalog::file_actor("test.yaml"),
        t(0),
    )
    .await
    .unwrap();
    let catalogs = tocsin_app::Catalogs::open(store.clone(), t(0))
        .await
        .unwrap();
    tocsin_app::Application::new(
        store.clone(),
        catalogs,
        Arc::new(tocsin_app::FixedClock(t(0))),
    )
}

/// The catalog of `text`, as the server builds it from storage.
fn catalog(text: &str) -> Arc<SharedCatalog> {
    let config = tocsin_config::from_str(text, Path::new("."), &|_| None).unwrap();
    Arc::new(SharedCatalog::new(tocsin_config::catalog::build(
        &config, 1,
    )))
}

async fn env(pg: bool) -> Option<Env> {
    let (store, dir) = common::fresh_store(pg).await?;
    let worker = EscalationWorker::new(store.clone(), catalog(CONFIG));
    Some(Env {
        store,
        worker,
        _dir: dir,
    })
}

/// Monday 2026-03-02 10:00 Berlin (09:00 UTC): alice is on call (week 8).
fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

fn event(key: &str, priority: Priority) -> RoutedEvent {
    RoutedEvent {
        event: AlertEvent {
            dedup_key: DedupKey::new(key).unwrap(),
            members: vec![Member {
                fingerprint: "f".into(),
                status: MemberStatus::Firing,
                starts_at: t(0),
                ends_at: None,
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                generator_url: None,
            }],
            resolved: false,
            summary: "disk full".into(),
            details: String::new(),
            labels: BTreeMap::new(),
            all_labels: BTreeSet::new(),
            links: vec![],
            severity: Severity::Sev1,
            priority,
            routing: RoutingHint::default(),
            detected_at: t(0),
            resolved_at: None,
            notes: vec![],
            stateless: false,
        },
        policy_id: "main".into(),
        service_id: None,
        route_note: "routed".into(),
        first_step_at: None,
        page: true,
        incident: None,
    }
}

async fn open(e: &Env, key: &str, priority: Priority, at: DateTime<Utc>) -> i64 {
    e.store
        .ingest(
            "src",
            &Actor::new("source:src", "test"),
            vec![event(key, priority)],
            at,
        )
        .await
        .unwrap()[0]
        .alert_id
        .unwrap()
}

async fn queued(e: &Env, id: i64) -> Vec<(String, String, i64)> {
    e.store
        .deliveries(id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.user_id, d.channel, (d.due_at - t(0)).num_seconds()))
        .collect()
}

fn q(user: &str, channel: &str, at: i64) -> (String, String, i64) {
    (user.into(), channel.into(), at)
}

async fn whole_high_escalation(e: Env) {
    let id = open(&e, "k", Priority::High, t(0)).await;
    // Level 1 at once: the schedule's on-call user (alice), by every HIGH rule.
    let r = e.worker.tick(t(0)).await.unwrap();
    assert_eq!((r.steps, r.notifications), (1, 2));
    assert_eq!(
        queued(&e, id).await,
        [q("alice", "email", 0), q("alice", "sms", 60)]
    );
    // Nothing more until escalate_after (5m) has passed.
    assert_eq!(e.worker.tick(t(299)).await.unwrap().steps, 0);
    // Level 2 after 5 minutes: carol.
    assert_eq!(e.worker.tick(t(300)).await.unwrap().steps, 1);
    assert_eq!(queued(&e, id).await.last(), Some(&q("carol", "email", 300)));
    // Repeat once (after level 2's 10 minutes), then the final step.
    assert_eq!(e.worker.tick(t(900)).await.unwrap().steps, 1);
    assert_eq!(
        queued(&e, id).await.len(),
        5,
        "alice again by email and sms"
    );
    assert_eq!(e.worker.tick(t(1200)).await.unwrap().steps, 1);
    let r = e.worker.tick(t(1800)).await.unwrap();
    assert_eq!((r.steps, r.notifications), (1, 0));
    assert_eq!(
        e.worker.tick(t(99_999)).await.unwrap().steps,
        0,
        "escalation has ended"
    );
    let tl: Vec<String> = e
        .store
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.kind == "escalation")
        .map(|x| x.message)
        .collect();
    assert_eq!(
        tl,
        [
            "level 1: notifying alice (on call in primary); queued: alice by email, alice by sms in 60s",
            "level 2: notifying carol; queued: carol by email",
            "level 1: notifying alice (on call in primary) (repeat 1 of 1); queued: alice by email, alice by sms in 60s",
            "level 2: notifying carol (repeat 1 of 1); queued: carol by email",
            "nobody accepted after 2 runs of escalation policy `main`; the alert stays pending",
        ]
    );
}

async fn accept_stops_and_late_tick_sends_each_step_once(e: Env) {
    let id = open(&e, "k", Priority::High, t(0)).await;
    // The worker was down: a tick long after both levels fell due runs level 1
    // once, then level 2 is due 5 minutes after level 1 ran, not before.
    let r = e.worker.tick(t(1000)).await.unwrap();
    assert_eq!(r.steps, 1);
    assert_eq!(r.max_lag_ms, 1_000_000);
    assert_eq!(
        e.worker.tick(t(1000)).await.unwrap().steps,
        0,
        "never twice"
    );
    assert_eq!(e.worker.tick(t(1299)).await.unwrap().steps, 0);
    // Accepting stops escalation and cancels the queued SMS.
    e.store
        .transition(
            id,
            Transition::Accept,
            &Actor::new("token:t", "api"),
            t(1010),
        )
        .await
        .unwrap();
    assert_eq!(e.worker.tick(t(5000)).await.unwrap().steps, 0);
    let d = e.store.deliveries(id).await.unwrap();
    assert!(d.iter().all(|d| d.status == "cancelled"), "{d:?}");
}

async fn low_priority_notifies_level_one_only(e: Env) {
    let id = open(&e, "low", Priority::Low, t(0)).await;
    assert_eq!(e.worker.tick(t(0)).await.unwrap().notifications, 1);
    assert_eq!(queued(&e, id).await, [q("alice", "email", 0)]);
    assert_eq!(e.worker.tick(t(100_000)).await.unwrap().steps, 0);
}

async fn nobody_on_call_escalates_at_once(e: Env) {
    // Monday 21:00 Berlin: outside the schedule's 08:00-20:00 restriction.
    let night = Utc.with_ymd_and_hms(2026, 3, 2, 20, 0, 0).unwrap();
    let id = open(&e, "night", Priority::High, night).await;
    let r = e.worker.tick(night).await.unwrap();
    assert_eq!(r.steps, 2, "level 1 (empty) and level 2 in the same tick");
    let d = e.store.deliveries(id).await.unwrap();
    assert_eq!(
        d.iter().map(|d| d.user_id.as_str()).collect::<Vec<_>>(),
        ["carol"]
    );
    let tl: Vec<String> = e
        .store
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.kind == "escalation")
        .map(|x| x.message)
        .collect();
    assert_eq!(
        tl[0],
        "level 1: notifying nobody; nobody is on call in schedule `primary`; escalating at once"
    );
}

async fn two_workers_share_the_work_without_doubles(e: Env) {
    for i in 0..30 {
        open(&e, &format!("k{i}"), Priority::High, t(0)).await;
    }
    let other = EscalationWorker::new(e.store.clone(), catalog(CONFIG));
    let (a, b) = tokio::join!(e.worker.tick(t(0)), other.tick(t(0)));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.steps + b.steps, 30);
    assert_eq!(a.notifications + b.notifications, 60);
}

async fn reassign_to_a_person_and_unaccept(e: Env) {
    let id = open(&e, "k", Priority::High, t(0)).await;
    e.worker.tick(t(0)).await.unwrap();
    let who = Actor::new("token:t", "api");
    e.store.reassign(id, "user:bob", &who, t(10)).await.unwrap();
    assert_eq!(e.worker.tick(t(10)).await.unwrap().steps, 1);
    assert_eq!(queued(&e, id).await.last(), Some(&q("bob", "email", 10)));
    // Bob alone; after 15 minutes the timeline says nobody accepted.
    assert_eq!(e.worker.tick(t(10 + 899)).await.unwrap().steps, 0);
    assert_eq!(e.worker.tick(t(10 + 900)).await.unwrap().steps, 1);
    let last = e
        .store
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .rfind(|x| x.kind == "escalation")
        .unwrap();
    assert_eq!(
        last.message,
        "nobody accepted after 1 run of escalation policy `user:bob`; the alert stays pending"
    );

    // Accept, then un-accept: level 1 of the alert's policy (bob's, now) again.
    e.store
        .transition(id, Transition::Accept, &who, t(1000))
        .await
        .unwrap();
    e.store
        .transition(id, Transition::Unaccept, &who, t(1001))
        .await
        .unwrap();
    assert_eq!(e.worker.tick(t(1001)).await.unwrap().steps, 1);
    assert_eq!(queued(&e, id).await.last(), Some(&q("bob", "email", 1001)));
}

/// What the ping endpoint does for an overdue heartbeat: resolve its alert.
async fn resolve_heartbeat(e: &Env, at: DateTime<Utc>) {
    let resolved = RoutedEvent {
        event: tocsin_wire::heartbeat::recovered(at).unwrap(),
        policy_id: "main".into(),
        service_id: None,
        route_note: String::new(),
        first_step_at: None,
        page: true,
        incident: None,
    };
    e.store
        .ingest(
            "heartbeat:cron",
            &Actor::new("heartbeat:cron", "ping"),
            vec![resolved],
            at,
        )
        .await
        .unwrap();
}

/// Heartbeats are durable timers too: armed by a ping, overdue exactly at
/// interval + grace, raised once (also by a worker started after the due
/// time), paged through the escalation engine; a ping in the middle of
/// raising undoes the alert.
async fn heartbeat_falls_due_once_and_pages(e: Env) {
    use tocsin_engine::HeartbeatWorker;
    let text = format!(
        "{CONFIG}heartbeats:\n  - {{id: cron, name: nightly cron, key: cron-key-0123456789, interval: 60s, grace: 30s, escalation_policy: main}}\n"
    );
    let hw = HeartbeatWorker::new(application(&e.store, &text).await);
    let period = TimeDelta::seconds(90);
    assert!(
        hw.tick(t(1000)).await.unwrap().overdue.is_empty(),
        "not armed: never due"
    );
    let first = e
        .store
        .heartbeat_ping("cron", t(0), t(0) + period)
        .await
        .unwrap();
    assert_eq!(first.previous, None, "the first ping arms it");
    assert!(hw.tick(t(89)).await.unwrap().overdue.is_empty());
    assert_eq!(hw.tick(t(90)).await.unwrap().overdue, ["cron"]);
    let rows = e.store.heartbeat_rows().await.unwrap();
    assert_eq!(rows[0].state, "overdue");
    let alert_id = rows[0].alert_id.unwrap();
    let a = e.store.get_alert(alert_id).await.unwrap().unwrap();
    assert_eq!(
        (a.source_id.as_str(), a.policy_id.as_deref()),
        ("heartbeat:cron", Some("main"))
    );
    assert!(
        a.summary.starts_with("Heartbeat nightly cron is overdue"),
        "{}",
        a.summary
    );
    assert_eq!(a.priority, Priority::High);
    // It pages through the engine like any alert.
    assert!(e.worker.tick(t(90)).await.unwrap().notifications > 0);
    // A worker started later (a restart) raises nothing more.
    let again = HeartbeatWorker::new(application(&e.store, &text).await);
    assert!(again.tick(t(500)).await.unwrap().overdue.is_empty());

    // The next ping finds it overdue, with the alert to resolve.
    let ping = e
        .store
        .heartbeat_ping("cron", t(600), t(600) + period)
        .await
        .unwrap();
    assert_eq!(
        (ping.previous.as_deref(), ping.overdue_alert),
        (Some("overdue"), Some(alert_id))
    );
    // What the ping endpoint does with it: resolve the alert.
    resolve_heartbeat(&e, t(600)).await;
    assert_eq!(
        e.store.get_alert(alert_id).await.unwrap().unwrap().status,
        tocsin_domain::AlertStatus::Resolved
    );
    // Down from t(600) to t(5000): the worker that starts then raises it once.
    let late = HeartbeatWorker::new(application(&e.store, &text).await);
    assert_eq!(late.tick(t(5000)).await.unwrap().overdue, ["cron"]);
    assert!(late.tick(t(5001)).await.unwrap().overdue.is_empty());
    let rows = e.store.heartbeat_rows().await.unwrap();
    assert_ne!(
        rows[0].alert_id,
        Some(alert_id),
        "a new episode, a new alert"
    );

    // A ping that lands between the claim and the mark: the worker resolves
    // the alert it has just raised.
    e.store
        .heartbeat_ping("cron", t(6000), t(6000) + period)
        .await
        .unwrap();
    let claimed = e
        .store
        .claim_overdue_heartbeats(t(6100), TimeDelta::seconds(30), "manual")
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    e.store
        .heartbeat_ping("cron", t(6101), t(6101) + period)
        .await
        .unwrap();
    assert!(
        !e.store
            .mark_heartbeat_overdue(&claimed[0], None)
            .await
            .unwrap()
    );
    assert_eq!(e.store.heartbeat_rows().await.unwrap()[0].state, "healthy");

    // In a maintenance window on the heartbeat, the alert is stored and
    // nobody is paged. (First resolve the open one, as a ping would.)
    resolve_heartbeat(&e, t(6500)).await;
    e.store
        .create_maintenance(
            &tocsin_store::NewMaintenance {
                target_kind: "source".into(),
                target_id: "heartbeat:cron".into(),
                starts_at: t(7000),
                ends_at: t(9000),
                reason: "upgrade".into(),
                title: String::new(),
                public: false,
            },
            &tocsin_store::Actor::new("token:t", "api"),
            t(7000),
        )
        .await
        .unwrap();
    e.store
        .heartbeat_ping("cron", t(7000), t(7000) + period)
        .await
        .unwrap();
    let hw = HeartbeatWorker::new(application(&e.store, &text).await);
    assert_eq!(hw.tick(t(7100)).await.unwrap().overdue, ["cron"]);
    let quiet = e.store.heartbeat_rows().await.unwrap()[0].alert_id.unwrap();
    assert!(
        e.store.steps(quiet).await.unwrap().is_empty(),
        "nobody paged"
    );
    let notes = e.store.timeline(quiet).await.unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.message.contains("maintenance window")),
        "{notes:?}"
    );
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::env(false).await.unwrap()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(e) = super::env(true).await {
                    super::$name(e).await;
                }
            }
        }
    };
}

both!(whole_high_escalation);
both!(accept_stops_and_late_tick_sends_each_step_once);
both!(low_priority_notifies_level_one_only);
both!(nobody_on_call_escalates_at_once);
both!(two_workers_share_the_work_without_doubles);
both!(reassign_to_a_person_and_unaccept);
both!(heartbeat_falls_due_once_and_pages);
