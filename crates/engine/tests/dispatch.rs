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
            stateless: false,
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

/// Records every message it is given.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<(String, Message)>>,
}

#[async_trait]
impl Channel for Recorder {
    fn name(&self) -> &'static str {
        "email"
    }
    async fn send(&self, address: &str, msg: &Message) -> Result<String, SendError> {
        self.got
            .lock()
            .unwrap()
            .push((address.to_owned(), msg.clone()));
        Ok("250 queued".into())
    }
}

#[tokio::test]
async fn pages_within_the_window_go_out_as_one_message() {
    let (s, _dir) = store().await;
    let ch = Arc::new(Recorder::default());
    let mut d = Dispatcher::new(
        s.clone(),
        vec![ch.clone() as Arc<dyn Channel>],
        "http://tocsin.test",
    );
    d.links = Some(tocsin_domain::links::LinkSigner::new("link-secret"));
    let mail = [("email", "alice@example.com")];

    // The first page goes out at once, on its own.
    let a1 = alert_with(s.as_ref(), "k1", &mail).await;
    assert_eq!(d.tick(t(0)).await.unwrap().sent, 1);
    // Two more inside the 10 s window wait for its end…
    let a2 = alert_with(s.as_ref(), "k2", &mail).await;
    let a3 = alert_with(s.as_ref(), "k3", &mail).await;
    assert!(d.tick(t(2)).await.unwrap().attempts.is_empty());
    assert!(d.tick(t(9)).await.unwrap().attempts.is_empty());
    // …and then go out as one message.
    assert_eq!(d.tick(t(10)).await.unwrap().sent, 2);
    {
        let got = ch.got.lock().unwrap();
        assert_eq!(got.len(), 2, "two messages for three pages");
        assert_eq!(got[0].1.alert_id, a1);
        assert!(got[0].1.also.is_empty());
        let bundle = &got[1].1;
        assert_eq!(got[1].0, "alice@example.com");
        assert_eq!((bundle.alert_id, bundle.also.len()), (a2, 1));
        assert_eq!(bundle.also[0].alert_id, a3);
        assert_eq!(
            bundle.title(),
            format!("[Tocsin] 2 alerts: SEV1 #{a2}: queue backlog, and 1 more")
        );
        // Each bundled alert has its own signed links.
        assert!(
            bundle
                .action("Accept")
                .unwrap()
                .contains(&format!("alert={a2}"))
        );
        let links = &bundle.also[0].actions;
        assert!(
            links
                .iter()
                .any(|(l, u)| l == "Accept" && u.contains(&format!("alert={a3}")))
        );
        let text = bundle.text();
        assert!(text.starts_with("2 alerts came in for you"), "{text}");
        assert!(
            text.contains(&format!(
                "\n#{a3} SEV1 (high priority, pending): queue backlog\n"
            )),
            "{text}"
        );
    }
    for id in [a2, a3] {
        let notes: Vec<String> = s
            .timeline(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "notification")
            .map(|e| e.message)
            .collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].ends_with("delivered (250 queued; one message bundling 2 alerts)"),
            "{notes:?}"
        );
    }

    // A held page whose alert is accepted meanwhile is dropped from the bundle.
    let a4 = alert_with(s.as_ref(), "k4", &mail).await;
    let a5 = alert_with(s.as_ref(), "k5", &mail).await;
    assert!(d.tick(t(12)).await.unwrap().attempts.is_empty());
    s.transition(a4, Transition::Accept, &Actor::new("token:t", "api"), t(15))
        .await
        .unwrap();
    assert_eq!(d.tick(t(20)).await.unwrap().sent, 1);
    let got = ch.got.lock().unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!((got[2].1.alert_id, got[2].1.also.len()), (a5, 0));
}

#[tokio::test]
async fn a_zero_window_sends_every_page_on_its_own() {
    let (s, _dir) = store().await;
    let ch = Arc::new(Recorder::default());
    let mut d = Dispatcher::new(
        s.clone(),
        vec![ch.clone() as Arc<dyn Channel>],
        "http://tocsin.test",
    );
    d.bundle_window = TimeDelta::zero();
    let mail = [("email", "alice@example.com")];
    alert_with(s.as_ref(), "k1", &mail).await;
    assert_eq!(d.tick(t(0)).await.unwrap().sent, 1);
    alert_with(s.as_ref(), "k2", &mail).await;
    alert_with(s.as_ref(), "k3", &mail).await;
    assert_eq!(
        d.tick(t(1)).await.unwrap().sent,
        2,
        "claimed together, sent apart"
    );
    let got = ch.got.lock().unwrap();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|(_, m)| m.also.is_empty()));
}
