//! The outbox dispatcher driven by tick(now): retries with backoff, gives
//! up after max attempts, fails at once on permanent errors and on channels
//! with no provider, stops when the alert is accepted, bundles per contact,
//! stays fair to everybody else while one person has a huge backlog, and
//! finishes what it is sending when stopped. The channels here are scripted
//! ones; the real SMTP channel is tested end to end in the binary's tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

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

async fn store_on(pg: bool) -> Option<(Arc<dyn Store>, Option<tempfile::TempDir>)> {
    common::fresh_store(pg).await
}

/// An alert whose first step queued `addresses` (email, due at t(0)).
async fn alert_with(s: &dyn Store, key: &str, addresses: &[(&str, &str)]) -> i64 {
    let mut ev = routed_event(key);
    ev.event.summary = "queue backlog".into();
    ev.event.details = "jobs waiting: 12000".into();
    ev.event.severity = Severity::Sev1;
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
            contact_id: format!("c-{address}"),
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
    d.retry.attempts = 3;
    d
}

async fn retries_with_backoff_then_delivers(s: Arc<dyn Store>) {
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

async fn gives_up_and_fails_permanent_errors_and_missing_providers_at_once(s: Arc<dyn Store>) {
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

async fn accepting_stops_what_is_queued(s: Arc<dyn Store>) {
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

async fn pages_within_the_window_go_out_as_one_message(s: Arc<dyn Store>) {
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
    let r = d.tick(t(10)).await.unwrap();
    assert_eq!((r.sent, r.pages_sent), (1, 2));
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
            notes[0].ends_with("delivered (250 queued); one message about 2 alerts"),
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

async fn a_zero_window_sends_every_page_on_its_own(s: Arc<dyn Store>) {
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
    assert_eq!(d.tick(t(1)).await.unwrap().sent, 2, "one message per page");
    let got = ch.got.lock().unwrap();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|(_, m)| m.also.is_empty()));
}

/// `n` alerts (keys `prefix-0`…), each paging `user` at `contact` by email,
/// due at `t(at)`: ingested 500 to a request, their first steps completed
/// in one transaction.
async fn page_many(s: &dyn Store, prefix: &str, n: usize, user: &str, at: i64) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    for chunk in keys.chunks(500) {
        let evs = chunk
            .iter()
            .map(|k| {
                let mut ev = routed_event(k);
                ev.event.summary = format!("storm {k}");
                ev
            })
            .collect();
        let r = s
            .ingest("src", &Actor::new("source:src", "test"), evs, t(at))
            .await
            .unwrap();
        ids.extend(r.into_iter().map(|r| r.alert_id.unwrap()));
    }
    let steps = s
        .claim_due_steps(
            t(at),
            TimeDelta::seconds(30),
            u32::try_from(n).unwrap(),
            "w",
        )
        .await
        .unwrap();
    assert_eq!(steps.len(), n);
    let items = steps
        .into_iter()
        .map(|step| {
            let done = StepDone {
                next: None,
                deliveries: vec![NewDelivery {
                    user_id: user.into(),
                    contact_id: "mail".into(),
                    channel: "email".into(),
                    address: format!("{user}@example.com"),
                    due_at: t(at),
                }],
                timeline: vec![(TimelineKind::Escalation, "l1".into())],
                actor: Actor::new("system", "escalation"),
            };
            (step, done)
        })
        .collect();
    assert!(
        s.complete_steps(items, t(at))
            .await
            .unwrap()
            .into_iter()
            .all(|ok| ok)
    );
    ids
}

fn routed_event(key: &str) -> RoutedEvent {
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
            summary: key.into(),
            details: String::new(),
            labels: BTreeMap::new(),
            all_labels: BTreeSet::new(),
            links: vec![],
            severity: Severity::Sev2,
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
        incident: None,
    }
}

/// Messages each recipient got.
fn per_recipient(ch: &Recorder) -> BTreeMap<String, Vec<Message>> {
    let mut out: BTreeMap<String, Vec<Message>> = BTreeMap::new();
    for (address, msg) in ch.got.lock().unwrap().iter() {
        out.entry(address.clone()).or_default().push(msg.clone());
    }
    out
}

async fn a_storm_for_one_person_collapses_and_never_delays_anybody_else(s: Arc<dyn Store>) {
    let ch = Arc::new(Recorder::default());
    let d = Dispatcher::new(
        s.clone(),
        vec![ch.clone() as Arc<dyn Channel>],
        "http://tocsin.test",
    );
    // A backlog of 3,000 pages for u, then one page for v, all due now.
    let storm = page_many(s.as_ref(), "storm", 3000, "u", 0).await;
    let v1 = page_many(s.as_ref(), "v", 1, "v", 0).await;
    // One claim for two contacts takes both: u's whole backlog is one
    // bundle, one place in the queue, not 3,000.
    let claimed = d.claim(t(0), 2).await.unwrap();
    let sizes: BTreeMap<&str, (i64, i64, usize)> = claimed
        .iter()
        .map(|b| (b.user_id.as_str(), (b.pages, b.alert_count, b.alerts.len())))
        .collect();
    assert_eq!(
        sizes,
        BTreeMap::from([("u", (3000, 3000, 11)), ("v", (1, 1, 1))])
    );
    let clock = tocsin_engine::FixedClock(t(0));
    for b in claimed {
        let r = d.deliver(b, &clock).await.unwrap();
        assert_eq!(r.sent, 1);
    }
    let got = per_recipient(&ch);
    assert_eq!(got["v@example.com"].len(), 1);
    assert_eq!(got["v@example.com"][0].alert_id, v1[0]);
    let u = &got["u@example.com"];
    assert_eq!(u.len(), 1, "one message for 3,000 pages");
    assert_eq!(
        (u[0].also.len(), u[0].unlisted, u[0].count()),
        (10, 2989, 3000)
    );
    assert!(u[0].text().contains("…and 2989 more"), "{}", u[0].text());

    // The storm goes on: 2,000 more pages for u within her window, while
    // w, who has had nothing yet, is paged. w's page goes out at once; u's
    // wait, untouched, for the end of her window.
    page_many(s.as_ref(), "storm2", 2000, "u", 1).await;
    let w1 = page_many(s.as_ref(), "w", 1, "w", 2).await;
    let r = d.tick(t(2)).await.unwrap();
    assert_eq!((r.sent, r.pages_sent), (1, 1), "only w's page: {r:?}");
    assert_eq!(per_recipient(&ch)["w@example.com"][0].alert_id, w1[0]);
    assert!(d.tick(t(9)).await.unwrap().attempts.is_empty());
    assert_eq!(s.outbox_depth().await.unwrap(), 2000);

    // When u's window ends, the 2,000 go out as one message and the queue
    // is empty.
    let r = d.tick(t(10)).await.unwrap();
    assert_eq!((r.sent, r.pages_sent), (1, 2000));
    assert_eq!(s.outbox_depth().await.unwrap(), 0);
    let got = per_recipient(&ch);
    assert_eq!(
        got["u@example.com"].len(),
        2,
        "two messages for 5,000 pages"
    );
    assert_eq!(got["u@example.com"][1].count(), 2000);
    // Nobody paged twice, nothing lost: every page of the storm was sent
    // exactly once.
    for id in storm.iter().step_by(97) {
        let del = s.deliveries(*id).await.unwrap();
        assert_eq!(del.len(), 1);
        assert_eq!((del[0].status.as_str(), del[0].attempts), ("sent", 1));
        let notes: Vec<String> = s
            .timeline(*id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "notification")
            .map(|e| e.message)
            .collect();
        assert_eq!(
            notes,
            [
                "attempt 1 to u by email (contact `mail`): delivered (250 queued); one message about 3000 alerts"
            ]
        );
    }
}

async fn a_lost_lease_is_taken_over_and_a_renewed_one_is_not(s: Arc<dyn Store>) {
    let ch = Arc::new(Recorder::default());
    let d = Dispatcher::new(
        s.clone(),
        vec![ch.clone() as Arc<dyn Channel>],
        "http://tocsin.test",
    );
    page_many(s.as_ref(), "a", 3, "u", 0).await;
    page_many(s.as_ref(), "b", 1, "v", 0).await;
    // A worker claims both contacts and dies before recording anything.
    let dead = d.claim(t(0), 10).await.unwrap();
    assert_eq!(dead.len(), 2);
    // Another one renews v's lease (it is still sending to v).
    let v = dead.iter().find(|b| b.user_id == "v").unwrap().clone();
    s.renew_bundles(std::slice::from_ref(&v.claim), t(40))
        .await
        .unwrap();
    // The claim token is shared, so both leases were renewed: nothing is
    // taken over before t(40).
    assert!(d.claim(t(20), 10).await.unwrap().is_empty());
    // After the lease (15 s past the renewal), the pages are due again, all
    // in one bundle per contact; the gates of the dead claim do not hold
    // them back.
    let again = d.claim(t(41), 10).await.unwrap();
    let mut pages: Vec<(String, i64)> =
        again.iter().map(|b| (b.user_id.clone(), b.pages)).collect();
    pages.sort();
    assert_eq!(pages, [("u".to_owned(), 3), ("v".to_owned(), 1)]);
    // The dead worker's record comes too late: its claim is gone.
    let sent = tocsin_store::DeliveryOutcome::Sent {
        detail: String::new(),
    };
    assert_eq!(s.finish_bundle(&v, sent.clone(), t(42)).await.unwrap(), 0);
    let clock = tocsin_engine::FixedClock(t(42));
    for b in again {
        assert_eq!(d.deliver(b, &clock).await.unwrap().sent, 1);
    }
    assert_eq!(s.outbox_depth().await.unwrap(), 0);
    assert_eq!(ch.got.lock().unwrap().len(), 2);
}

/// Sends slowly, and says when a send has begun.
struct Slow {
    started: tokio::sync::Notify,
    got: Mutex<Vec<String>>,
}

#[async_trait]
impl Channel for Slow {
    fn name(&self) -> &'static str {
        "email"
    }
    async fn send(&self, address: &str, _msg: &Message) -> Result<String, SendError> {
        self.started.notify_one();
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        self.got.lock().unwrap().push(address.to_owned());
        Ok("250 queued".into())
    }
}

async fn a_stop_finishes_and_records_what_is_being_sent(s: Arc<dyn Store>) {
    let ch = Arc::new(Slow {
        started: tokio::sync::Notify::new(),
        got: Mutex::new(vec![]),
    });
    let mut d = Dispatcher::new(
        s.clone(),
        vec![ch.clone() as Arc<dyn Channel>],
        "http://tocsin.test",
    );
    // One message at a time, so the second contact is still queued when
    // the stop comes.
    d.max_in_flight = 1;
    d.contacts = 1;
    let first = page_many(s.as_ref(), "a", 1, "a", 0).await;
    let second = page_many(s.as_ref(), "b", 1, "b", 0).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(Arc::new(d).run(
        Arc::new(tocsin_engine::SystemClock),
        Arc::new(tokio::sync::Notify::new()),
        stopped,
        std::time::Duration::from_millis(50),
        std::time::Duration::from_millis(5),
        Arc::new(|_: &tocsin_engine::DispatchReport| {}),
    ));
    ch.started.notified().await;
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), run)
        .await
        .expect("the dispatcher stops once its send is done")
        .unwrap();
    // The message being sent was sent once and recorded as sent; the
    // other contact was not claimed after the stop.
    let got = ch.got.lock().unwrap().clone();
    assert_eq!(got, ["a@example.com"]);
    let a = s.deliveries(first[0]).await.unwrap();
    assert_eq!((a[0].status.as_str(), a[0].attempts), ("sent", 1));
    let b = s.deliveries(second[0]).await.unwrap();
    assert_eq!((b[0].status.as_str(), b[0].attempts), ("pending", 0));
}

async fn a_failed_message_is_retried_without_waiting_for_the_window(s: Arc<dyn Store>) {
    let ch = Arc::new(Scripted {
        fail_first: 1,
        seen: Mutex::new(vec![]),
    });
    let mut d = dispatcher(s.clone(), ch.clone());
    d.retry.backoff = TimeDelta::seconds(1);
    // The default 10 s window: a message that did not go out opens no
    // window, so its retry (1 s later) is not held for the window's end,
    // and it takes along what came in meanwhile.
    let first = alert_with(s.as_ref(), "k1", &[("email", "alice@example.com")]).await;
    assert_eq!(d.tick(t(0)).await.unwrap().retried, 1);
    let second = alert_with(s.as_ref(), "k2", &[("email", "alice@example.com")]).await;
    let r = d.tick(t(1)).await.unwrap();
    assert_eq!((r.sent, r.pages_sent), (1, 2), "{r:?}");
    for id in [first, second] {
        assert_eq!(s.deliveries(id).await.unwrap()[0].status, "sent");
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let (s, _dir) = super::store_on(false).await.unwrap();
                    super::$name(s).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some((s, _dir)) = super::store_on(true).await {
                        super::$name(s).await;
                    }
                }
            }
        )*
    };
}

both!(
    retries_with_backoff_then_delivers,
    gives_up_and_fails_permanent_errors_and_missing_providers_at_once,
    accepting_stops_what_is_queued,
    pages_within_the_window_go_out_as_one_message,
    a_zero_window_sends_every_page_on_its_own,
    a_storm_for_one_person_collapses_and_never_delays_anybody_else,
    a_lost_lease_is_taken_over_and_a_renewed_one_is_not,
    a_stop_finishes_and_records_what_is_being_sent,
    a_failed_message_is_retried_without_waiting_for_the_window,
);
