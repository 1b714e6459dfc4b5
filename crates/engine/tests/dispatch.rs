//! The outbox dispatcher driven by tick(now): retries with backoff, gives
//! up after max attempts, fails at once on permanent errors and on channels
//! with no provider, and stops when the alert is accepted. The channel here
//! is a scripted one; the real SMTP channel is tested end to end in the
//! binary's tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tocsin_domain::{
    AlertEvent, DedupKey, Member, MemberStatus, Priority, RoutingHint, Severity, TimelineKind,
};
use tocsin_engine::Dispatcher;
use tocsin_notify::{Channel, Message, SendError};
use tocsin_store::{Actor, NewDelivery, RoutedEvent, StepDone, Store, Transition};

/// Fails `fail_first` times per address with a retryable error; an address
/// starting with `bad` fails permanently.
struct Scripted {
    fail_first: usize,
    seen: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl Channel for Scripted {
    fn name(&self) -> &'static str {
        "email"
    }
    async fn send(&self, address: &str, msg: &Message) -> Result<String, SendError> {
        let mut seen = self.seen.lock().unwrap();
        seen.push((address.to_owned(), msg.title()));
        if address.starts_with("bad") {
            return Err(SendError::permanent("550 no such user"));
        }
        let tries = seen.iter().filter(|(a, _)| a == address).count();
        if tries <= self.fail_first {
            Err(SendError::retry("421 try later"))
        } else {
            Ok("250 queued".into())
        }
    }
}

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap() + TimeDelta::seconds(s)
}

async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("d.db").display());
    (
        Arc::from(tocsin_store::connect(&url, 4).await.unwrap()),
        dir,
    )
}

/// An alert whose first step queued `addresses` (email, due at t(0)).
async fn alert_with(s: &dyn Store, key: &str, addresses: &[(&str, &str)]) -> i64 {
    let ev = RoutedEvent {
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
            summary: "queue backlog".into(),
            details: "jobs waiting: 12000".into(),
            labels: BTreeMap::new(),
            all_labels: BTreeSet::new(),
            links: vec![],
            severity: Severity::Sev1,
            priority: Priority::High,
            routing: RoutingHint::default(),
            detected_at: t(0),
            resolved_at: None,
            notes: vec![],
        },
        policy_id: "p".into(),
        service_id: None,
        route_note: "r".into(),
        first_step_at: None,
        page: true,
    };
    let id = s
        .ingest("src", &Actor::new("source:src", "test"), vec![ev], t(0))
        .await
        .unwrap()[0]
        .alert_id
        .unwrap();
    let step = s
        .claim_due_steps(t(0), TimeDelta::seconds(30), 10, "w")
        .await
        .unwrap()
        .remove(0);
    let deliveries = addresses
        .iter()
        .map(|(channel, address)| NewDelivery {
            user_id: "u".into(),
            contact_id: "c".into(),
            channel: (*channel).into(),
            address: (*address).into(),
            due_at: t(0),
        })
        .collect();
    let done = StepDone {
        next: None,
        deliveries,
        timeline: vec![(TimelineKind::Escalation, "l1".into())],
        actor: Actor::new("system", "escalation"),
    };
    assert!(s.complete_step(&step, done, t(0)).await.unwrap());
    id
}

fn dispatcher(s: Arc<dyn Store>, ch: Arc<Scripted>) -> Dispatcher {
    let mut d = Dispatcher::new(s, vec![ch as Arc<dyn Channel>], "http://tocsin.test/");
    d.max_attempts = 3;
    d
}

#[tokio::test]
async fn retries_with_backoff_then_delivers() {
    let (s, _dir) = store().await;
    let ch = Arc::new(Scripted {
        fail_first: 2,
        seen: Mutex::new(vec![]),
    });
    let d = dispatcher(s.clone(), ch.clone());
    let id = alert_with(s.as_ref(), "k", &[("email", "alice@example.com")]).await;

    let r = d.tick(t(0)).await.unwrap();
    assert_eq!((r.sent, r.retried), (0, 1));
    assert_eq!(
        d.tick(t(9)).await.unwrap().attempts.len(),
        0,
        "backoff: 10 s after the first failure"
    );
    assert_eq!(d.tick(t(10)).await.unwrap().retried, 1);
    assert_eq!(d.tick(t(29)).await.unwrap().attempts.len(), 0, "then 20 s");
    let r = d.tick(t(30)).await.unwrap();
    assert_eq!(r.sent, 1);
    assert_eq!(r.attempts, [("email".to_owned(), "sent")]);

    let seen = ch.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].1, format!("[Tocsin] SEV1 #{id}: queue backlog"));
    let del = s.deliveries(id).await.unwrap();
    assert_eq!(
        (del[0].status.as_str(), del[0].attempts, del[0].sent_at),
        ("sent", 3, Some(t(30)))
    );
    let notes: Vec<String> = s
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "notification")
        .map(|e| e.message)
        .collect();
    assert_eq!(notes.len(), 3);
    assert!(notes[2].ends_with("delivered (250 queued)"), "{notes:?}");
}

#[tokio::test]
async fn gives_up_and_fails_permanent_errors_and_missing_providers_at_once() {
    let (s, _dir) = store().await;
    let ch = Arc::new(Scripted {
        fail_first: 99,
        seen: Mutex::new(vec![]),
    });
    let d = dispatcher(s.clone(), ch.clone());
    let id = alert_with(
        s.as_ref(),
        "k",
        &[
            ("email", "flaky@example.com"),
            ("email", "bad@example.com"),
            ("sms", "+4915100000"),
        ],
    )
    .await;
    let r = d.tick(t(0)).await.unwrap();
    assert_eq!((r.retried, r.failed), (1, 2));
    d.tick(t(10)).await.unwrap();
    let r = d.tick(t(30)).await.unwrap();
    assert_eq!(r.failed, 1, "third attempt of three: failed");
    assert_eq!(d.tick(t(10_000)).await.unwrap().attempts.len(), 0);
    let del = s.deliveries(id).await.unwrap();
    let st: Vec<(&str, i64)> = del
        .iter()
        .map(|d| (d.status.as_str(), d.attempts))
        .collect();
    assert_eq!(st, [("failed", 3), ("failed", 1), ("failed", 1)]);
    assert!(
        del[2]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no provider is configured for sms")
    );
    assert_eq!(s.outbox_depth().await.unwrap(), 0);
}

#[tokio::test]
async fn accepting_stops_what_is_queued() {
    let (s, _dir) = store().await;
    let ch = Arc::new(Scripted {
        fail_first: 1,
        seen: Mutex::new(vec![]),
    });
    let d = dispatcher(s.clone(), ch.clone());
    let id = alert_with(s.as_ref(), "k", &[("email", "alice@example.com")]).await;
    d.tick(t(0)).await.unwrap();
    s.transition(id, Transition::Accept, &Actor::new("token:t", "api"), t(5))
        .await
        .unwrap();
    assert_eq!(d.tick(t(100)).await.unwrap().attempts.len(), 0);
    assert_eq!(ch.seen.lock().unwrap().len(), 1);
    assert_eq!(s.deliveries(id).await.unwrap()[0].status, "cancelled");
}
