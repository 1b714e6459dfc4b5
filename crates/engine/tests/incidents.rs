//! Incidents and the status worker driven by tick(now), on SQLite and
//! PostgreSQL: alerts open and join their service's incident through the
//! application's ingest path (no duplicates under redelivery or a storm of
//! concurrent requests), incidents resolve by themselves unless a person
//! spoke, and updates reach announcement channels and subscribers through
//! the notice outbox (a local webhook receiver; retried when it refuses;
//! never twice), as do handoff notices.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::Value;
use tocsin_app::incidents::UpdateRequest;
use tocsin_domain::{
    AlertEvent, DedupKey, Member, MemberStatus, Principal, Priority, Role, RoutingHint, Severity,
};
use tocsin_engine::StatusWorker;
use tocsin_store::{Actor, IncidentFilter, Store};

/// Monday 2026-03-02 09:00 UTC.
fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

fn config(hook: &str) -> String {
    format!(
        r#"
users:
  - id: alice
    contacts: [{{id: hook, type: webhook, url: "{hook}/alice"}}]
    notify: {{high: [{{contact: hook, after: 0m}}], low: [{{contact: hook, after: 0m}}], handoffs: true}}
  - id: bob
    contacts: [{{id: hook, type: webhook, url: "{hook}/bob"}}]
    notify: {{high: [{{contact: hook, after: 0m}}]}}
schedules:
  - id: primary
    timezone: UTC
    layers:
      - {{users: [alice, bob], rotation: 1h, handoff: "2026-03-02T09:00"}}
escalation_policies:
  - {{id: main, levels: [{{notify: ["user:bob"], escalate_after: 5m}}]}}
services:
  - id: checkout
    name: Checkout
    public: true
    auto_incident_from: SEV1
    announce: [{{webhook_url: "{hook}/announce"}}]
sources: [{{id: am, type: prometheus, escalation_policy: main, service: checkout}}]
"#
    )
}

struct Env {
    app: Arc<tocsin_app::Application>,
    store: Arc<dyn Store>,
    worker: StatusWorker,
    hook: Hook,
    /// The receiver's URL.
    base: String,
    _dir: Option<tempfile::TempDir>,
}

/// A local webhook receiver: records each POST (path, body, delivery id)
/// and answers 503 while `refuse` is set.
#[derive(Clone, Default)]
struct Hook {
    got: Arc<Mutex<Vec<(String, Value, String)>>>,
    refuse: Arc<std::sync::atomic::AtomicBool>,
}

impl Hook {
    async fn start(&self) -> String {
        use axum::extract::{Path as P, State};
        let app = axum::Router::new()
            .route(
                "/{who}",
                axum::routing::post(
                    |State(h): State<Hook>,
                     P(who): P<String>,
                     headers: axum::http::HeaderMap,
                     body: axum::body::Bytes| async move {
                        if h.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        let id = headers
                            .get("x-tocsin-delivery")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        h.got.lock().unwrap().push((
                            who,
                            serde_json::from_slice(&body).unwrap_or(Value::Null),
                            id,
                        ));
                        axum::http::StatusCode::OK
                    },
                ),
            )
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn to(&self, who: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(w, _, _)| w == who)
            .map(|(_, b, _)| b.clone())
            .collect()
    }
}

async fn env(pg: bool) -> Option<Env> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (store, dir) = common::fresh_store(pg).await?;
    let hook = Hook::default();
    let base = hook.start().await;
    let text = config(&base);
    let (config, refs) =
        tocsin_config::from_str_with_refs(&text, Path::new("."), &|_| None).unwrap();
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
    let app = tocsin_app::Application::new(
        store.clone(),
        catalogs,
        Arc::new(tocsin_app::FixedClock(t(0))),
    );
    let webhook: Arc<dyn tocsin_notify::Channel> =
        Arc::new(tocsin_notify::webhook::Webhook::new(Default::default()).unwrap());
    let mut worker = StatusWorker::new(app.clone(), vec![webhook], "http://tocsin.test");
    worker.retry.backoff = TimeDelta::seconds(10);
    Some(Env {
        app,
        store,
        worker,
        hook,
        base,
        _dir: dir,
    })
}

fn event(key: &str, sev: Severity, firing: bool) -> AlertEvent {
    AlertEvent {
        dedup_key: DedupKey::new(key).unwrap(),
        members: vec![Member {
            fingerprint: key.into(),
            status: if firing {
                MemberStatus::Firing
            } else {
                MemberStatus::Resolved
            },
            starts_at: t(0),
            ends_at: (!firing).then(|| t(1)),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            generator_url: None,
        }],
        resolved: !firing,
        summary: format!("{key} is failing"),
        details: String::new(),
        labels: BTreeMap::new(),
        all_labels: BTreeSet::new(),
        links: vec![],
        severity: sev,
        priority: Priority::High,
        routing: RoutingHint::default(),
        detected_at: t(0),
        resolved_at: None,
        notes: vec![],
        stateless: false,
    }
}

async fn ingest(e: &Env, events: Vec<AlertEvent>, at: DateTime<Utc>) -> Vec<i64> {
    let catalog = e.app.catalog.current();
    let origin = tocsin_app::Origin {
        source_id: "am",
        policy_id: "main",
        service_id: Some("checkout"),
        support: None,
    };
    e.app
        .ingest(
            &catalog,
            origin,
            &Actor::new("source:am", "prometheus webhook"),
            events,
            at,
        )
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.alert_id)
        .collect()
}

async fn open(e: &Env) -> Vec<tocsin_store::Incident> {
    e.store
        .incidents(&IncidentFilter {
            open: Some(true),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
}

fn alice() -> Principal {
    let mut p = Principal::service("web session", Role::Responder);
    p.user = Some("alice".into());
    p
}

async fn incidents_open_join_and_resolve_by_themselves(e: Env) {
    // A SEV3 alert is below auto_incident_from: nothing opens.
    ingest(&e, vec![event("low", Severity::Sev3, true)], t(1)).await;
    assert!(open(&e).await.is_empty());
    // A SEV1 alert opens one; its redelivery and a storm of concurrent
    // requests join it.
    let first = ingest(&e, vec![event("db", Severity::Sev1, true)], t(2)).await;
    ingest(&e, vec![event("db", Severity::Sev1, true)], t(3)).await;
    let storm = (0..6).map(|r| {
        let events: Vec<AlertEvent> = (0..50)
            .map(|i| event(&format!("s{r}-{i}"), Severity::Sev1, true))
            .collect();
        ingest(&e, events, t(4))
    });
    let created: Vec<i64> = futures_util::future::join_all(storm)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(created.len(), 300);
    let incidents = open(&e).await;
    assert_eq!(incidents.len(), 1, "one incident for the service");
    assert_eq!(incidents[0].alert_ids.len(), 301);
    assert_eq!(incidents[0].alert_ids[0], first[0]);
    assert!(e.worker.tick(t(5)).await.unwrap().auto_resolved == 0);

    // Every linked alert resolves: the next tick resolves the incident.
    let mut resolving = vec![event("db", Severity::Sev1, false)];
    resolving
        .extend((0..6).flat_map(|r| {
            (0..50).map(move |i| event(&format!("s{r}-{i}"), Severity::Sev1, false))
        }));
    ingest(&e, resolving, t(6)).await;
    let r = e.worker.tick(t(7)).await.unwrap();
    assert_eq!(r.auto_resolved, 1);
    assert!(open(&e).await.is_empty());
    assert_eq!(e.worker.tick(t(8)).await.unwrap().auto_resolved, 0, "once");

    // The next alert opens a new incident; a person's update holds it.
    ingest(&e, vec![event("api", Severity::Sev0, true)], t(9)).await;
    let held = open(&e).await.remove(0);
    assert_eq!(
        held.services[0].impact,
        tocsin_domain::incident::Impact::MajorOutage
    );
    e.app
        .post_incident_update(
            &alice(),
            "web",
            held.id,
            &UpdateRequest {
                message: "on it".into(),
                public: false,
                status: None,
            },
        )
        .await
        .unwrap();
    ingest(&e, vec![event("api", Severity::Sev0, false)], t(10)).await;
    assert_eq!(e.worker.tick(t(11)).await.unwrap().auto_resolved, 0);
    assert_eq!(open(&e).await.len(), 1, "held open by the person's update");
}

async fn updates_reach_announcements_and_subscribers_once_with_retries(e: Env) {
    let admin = Principal::service("ci", Role::Admin);
    let sub = tocsin_app::notices::SubscribeRequest {
        webhook_url: Some(format!("{}/subscriber", e.base)),
        ..Default::default()
    };
    let (s, new) = e
        .app
        .subscribe(Some(&admin), &sub, "http://tocsin.test")
        .await
        .unwrap();
    assert!(new && s.confirmed_at.is_some(), "a webhook needs no opt-in");
    let refused = e
        .app
        .subscribe(Some(&alice()), &sub, "http://tocsin.test")
        .await;
    assert!(
        matches!(refused, Err(tocsin_app::AppError::Forbidden(_))),
        "webhooks are for admins: {refused:?}"
    );

    ingest(&e, vec![event("db", Severity::Sev1, true)], t(1)).await;
    let inc = open(&e).await.remove(0);
    e.app
        .post_incident_update(
            &alice(),
            "web",
            inc.id,
            &UpdateRequest {
                message: "internal note".into(),
                public: false,
                status: None,
            },
        )
        .await
        .unwrap();
    // The receivers are down: the first attempts fail and are retried.
    e.hook
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let r = e.worker.tick(t(2)).await.unwrap();
    assert_eq!(
        r.fanned_out, 3,
        "announce: opened and the note; subscriber: opened: {r:?}"
    );
    assert_eq!((r.sent, r.retried), (0, 3));
    e.hook
        .refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        e.worker.tick(t(5)).await.unwrap().sent,
        0,
        "not before the backoff"
    );
    let r = e.worker.tick(t(13)).await.unwrap();
    assert_eq!((r.sent, r.fanned_out), (3, 0), "{r:?}");
    assert_eq!(e.worker.tick(t(30)).await.unwrap().sent, 0, "never twice");
    let announced = e.hook.to("announce");
    assert_eq!(announced.len(), 2);
    assert_eq!(announced[0]["event"], "incident.opened");
    assert_eq!(announced[1]["update"]["message"], "internal note");
    let told = e.hook.to("subscriber");
    assert_eq!(told.len(), 1, "subscribers hear public updates only");
    assert_eq!(told[0]["incident"]["id"], inc.id);
    assert!(
        told[0]["delivery_id"]
            .as_str()
            .unwrap()
            .starts_with("notice-")
    );
    let rows = e.store.notices(10).await.unwrap();
    assert!(
        rows.iter().all(|n| n.status == "sent" && n.attempts == 2),
        "{rows:?}"
    );
}

async fn handoff_notices_tell_a_user_their_shift_starts_and_ends(e: Env) {
    // The first look starts the watch: nothing from before it.
    assert_eq!(e.worker.tick(t(0)).await.unwrap().handoffs, 0);
    // alice is on call 09:00–10:00, bob 10:00–11:00, alice again at 11:00.
    assert_eq!(e.worker.tick(t(1800)).await.unwrap().handoffs, 0);
    let r = e.worker.tick(t(3601)).await.unwrap();
    assert_eq!((r.handoffs, r.sent), (1, 1), "alice's shift ended: {r:?}");
    assert_eq!(e.worker.tick(t(3700)).await.unwrap().handoffs, 0);
    let r = e.worker.tick(t(7201)).await.unwrap();
    assert_eq!(
        (r.handoffs, r.sent),
        (1, 1),
        "alice's next shift started: {r:?}"
    );
    let got = e.hook.to("alice");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["event"], "shift.ends");
    assert_eq!(got[1]["event"], "shift.starts");
    assert!(
        e.hook.to("bob").is_empty(),
        "bob did not ask for handoff notices"
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
                let Some(e) = super::env(true).await else {
                    return;
                };
                super::$name(e).await;
            }
        }
    };
}

both!(incidents_open_join_and_resolve_by_themselves);
both!(updates_reach_announcements_and_subscribers_once_with_retries);
both!(handoff_notices_tell_a_user_their_shift_starts_and_ends);
