//! One storage conformance suite, run against SQLite and PostgreSQL.
//!
//! PostgreSQL runs when `TOCSIN_TEST_POSTGRES_URL` names a server where the
//! user may create databases (the test script starts one). Under `CI=true`
//! a missing server is a failure, never a skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;
use tocsin_domain::{
    AlertEvent, AlertStatus, DedupKey, Member, MemberStatus, Priority, Role, RoutingHint, Severity,
    TokenDigest,
};
use tocsin_store::*;

struct Db {
    store: Box<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Db {
        store: connect(&url, 4).await.unwrap(),
        _dir: Some(dir),
    }
}

async fn postgres() -> Option<Db> {
    Some(Db {
        store: connect(&postgres_url().await?, 4).await.unwrap(),
        _dir: None,
    })
}

/// The URL of a fresh, empty PostgreSQL database (`None`: no server given,
/// outside CI).
async fn postgres_url() -> Option<String> {
    let Ok(base) = std::env::var("TOCSIN_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "TOCSIN_TEST_POSTGRES_URL is not set under CI: the PostgreSQL suite must run (use scripts/test)"
        );
        eprintln!(
            "TOCSIN_TEST_POSTGRES_URL not set: PostgreSQL conformance skipped (scripts/test sets it)"
        );
        return None;
    };
    Some(fresh_pg_database(&base).await)
}

/// Create an empty database next to the one `base` names and return its URL.
async fn fresh_pg_database(base: &str) -> String {
    use sqlx::Connection;
    let name = format!("tocsin_t_{}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (head, _) = base.rsplit_once('/').unwrap();
    format!("{head}/{name}")
}

/// An alert's escalation steps as (level, status, due), in order.
async fn step_states(s: &dyn Store, alert_id: i64) -> Vec<(i64, String, DateTime<Utc>)> {
    s.steps(alert_id)
        .await
        .unwrap()
        .into_iter()
        .map(|x| (x.level, x.status, x.due_at))
        .collect()
}

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + TimeDelta::seconds(s)
}

fn member(fp: &str, firing: bool, start: i64, end: Option<i64>) -> Member {
    Member {
        fingerprint: fp.into(),
        status: if firing {
            MemberStatus::Firing
        } else {
            MemberStatus::Resolved
        },
        starts_at: t(start),
        ends_at: end.map(t),
        labels: BTreeMap::from([
            ("alertname".into(), "Disk".into()),
            ("fp".into(), fp.into()),
        ]),
        annotations: BTreeMap::new(),
        generator_url: None,
    }
}

fn routed(key: &str, members: Vec<Member>) -> RoutedEvent {
    let resolved = members.iter().all(|m| !m.is_firing());
    let all_labels: BTreeSet<(String, String)> = members
        .iter()
        .flat_map(|m| m.labels.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    RoutedEvent {
        event: AlertEvent {
            dedup_key: DedupKey::new(key).unwrap(),
            resolved,
            summary: format!("{key} summary"),
            details: "details".into(),
            labels: BTreeMap::from([("alertname".into(), "Disk".into())]),
            all_labels,
            links: vec![],
            severity: Severity::Sev1,
            priority: Priority::High,
            routing: RoutingHint::default(),
            detected_at: members.iter().map(|m| m.starts_at).min().unwrap(),
            resolved_at: None,
            notes: vec!["a note".into()],
            stateless: false,
            members,
        },
        policy_id: "p1".into(),
        service_id: Some("checkout".into()),
        route_note: "routed to p1".into(),
        first_step_at: None,
        page: true,
        incident: None,
    }
}

fn src() -> Actor {
    Actor::new("source:prom", "prometheus webhook")
}

async fn ingest(s: &dyn Store, evs: &[RoutedEvent], now: i64) -> Vec<IngestResult> {
    s.ingest("prom", &src(), evs.to_vec(), t(now))
        .await
        .unwrap()
}

async fn create_dedupe_update_resolve(s: &dyn Store) {
    let r = ingest(s, &[routed("g1", vec![member("a", true, 0, None)])], 1).await;
    assert_eq!(r[0].outcome, IngestOutcome::Created);
    assert_eq!(r[0].status, Some(AlertStatus::Pending));
    let id = r[0].alert_id.unwrap();

    // Redelivery: same alert, only last seen moves.
    let r = ingest(s, &[routed("g1", vec![member("a", true, 0, None)])], 5).await;
    assert_eq!(
        (r[0].outcome, r[0].alert_id),
        (IngestOutcome::Duplicate, Some(id))
    );
    let a = s.get_alert(id).await.unwrap().unwrap();
    assert_eq!(a.last_seen_at, t(5));
    assert_eq!(a.created_at, t(1));
    assert_eq!(a.seen_count, 2);
    assert_eq!(a.policy_id.as_deref(), Some("p1"));
    assert_eq!(a.service_id.as_deref(), Some("checkout"));
    assert_eq!(a.severity, Severity::Sev1);
    assert_eq!(a.detected_at, t(0));

    // Mixed: a second member fires, then the first resolves.
    let r = ingest(
        s,
        &[routed(
            "g1",
            vec![member("a", true, 0, None), member("b", true, 3, None)],
        )],
        6,
    )
    .await;
    assert_eq!(r[0].outcome, IngestOutcome::Updated);
    let r = ingest(
        s,
        &[routed(
            "g1",
            vec![member("a", false, 0, Some(7)), member("b", true, 3, None)],
        )],
        8,
    )
    .await;
    assert_eq!(
        (r[0].outcome, r[0].status),
        (IngestOutcome::Updated, Some(AlertStatus::Pending))
    );
    let a = s.get_alert(id).await.unwrap().unwrap();
    assert_eq!(a.members.iter().filter(|m| m.is_firing()).count(), 1);

    let r = ingest(
        s,
        &[routed(
            "g1",
            vec![
                member("a", false, 0, Some(7)),
                member("b", false, 3, Some(9)),
            ],
        )],
        10,
    )
    .await;
    assert_eq!(
        (r[0].outcome, r[0].status),
        (IngestOutcome::Resolved, Some(AlertStatus::Resolved))
    );
    let a = s.get_alert(id).await.unwrap().unwrap();
    assert_eq!(a.status, AlertStatus::Resolved);
    assert_eq!(a.resolved_at, Some(t(9)));
    assert_eq!(a.resolved_by.as_deref(), Some("source:prom"));

    // The resolve again: duplicate. A late firing of the same run: stale.
    let r = ingest(
        s,
        &[routed(
            "g1",
            vec![
                member("a", false, 0, Some(7)),
                member("b", false, 3, Some(9)),
            ],
        )],
        11,
    )
    .await;
    assert_eq!(
        (r[0].outcome, r[0].alert_id),
        (IngestOutcome::Duplicate, Some(id))
    );
    let r = ingest(s, &[routed("g1", vec![member("b", true, 3, None)])], 12).await;
    assert_eq!(
        (r[0].outcome, r[0].alert_id),
        (IngestOutcome::Stale, Some(id))
    );
    assert_eq!(
        s.get_alert(id).await.unwrap().unwrap().status,
        AlertStatus::Resolved
    );

    // A new firing opens a new alert.
    let r = ingest(s, &[routed("g1", vec![member("b", true, 30, None)])], 31).await;
    assert_eq!(r[0].outcome, IngestOutcome::Created);
    assert_ne!(r[0].alert_id, Some(id));

    let kinds: Vec<String> = s
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "created", "note", "updated", "updated", "resolved", "ignored"
        ]
    );
    let tl = s.timeline(id).await.unwrap();
    assert_eq!(tl[0].actor, "source:prom");
    assert_eq!(tl[0].channel, "prometheus webhook");
    assert_eq!(tl[2].message, "updated: 2 firing, 0 resolved");
    assert!(
        tl[0].message.ends_with("; routed to p1"),
        "{}",
        tl[0].message
    );
}

async fn resolve_for_unknown_key_is_ignored(s: &dyn Store) {
    let r = ingest(
        s,
        &[routed("nope", vec![member("a", false, 0, Some(1))])],
        2,
    )
    .await;
    assert_eq!(
        r[0],
        IngestResult {
            alert_id: None,
            status: None,
            outcome: IngestOutcome::Ignored,
            first_level: None,
        }
    );
    assert!(
        s.list_alerts(&AlertFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .alerts
        .is_empty()
    );
}

async fn several_events_in_one_batch(s: &dyn Store) {
    let evs: Vec<RoutedEvent> = (0..5)
        .map(|i| {
            routed(
                &format!("k{i}"),
                vec![member(&format!("m{i}"), true, 0, None)],
            )
        })
        .collect();
    let r = ingest(s, &evs, 1).await;
    assert!(r.iter().all(|r| r.outcome == IngestOutcome::Created));
    let again = ingest(s, &evs, 2).await;
    assert!(again.iter().all(|r| r.outcome == IngestOutcome::Duplicate));
}

async fn accept_resolve_comment(s: &dyn Store) {
    let id = ingest(s, &[routed("g", vec![member("a", true, 0, None)])], 1).await[0]
        .alert_id
        .unwrap();
    let who = Actor::new("token:ci", "api");
    match s
        .transition(id, Transition::Accept, &who, t(2))
        .await
        .unwrap()
    {
        TransitionResult::Done(a) => {
            assert_eq!(a.status, AlertStatus::Accepted);
            assert_eq!(a.accepted_by.as_deref(), Some("token:ci"));
            assert_eq!(a.accepted_at, Some(t(2)));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.transition(id, Transition::Accept, &who, t(3))
            .await
            .unwrap(),
        TransitionResult::Unchanged(_)
    ));
    // A redelivery keeps it accepted.
    let r = ingest(
        s,
        &[routed(
            "g",
            vec![member("a", true, 0, None), member("b", true, 1, None)],
        )],
        4,
    )
    .await;
    assert_eq!(r[0].status, Some(AlertStatus::Accepted));
    let c = s
        .comment(id, &who, "looking into it", t(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.kind.as_str(), c.message.as_str()),
        ("comment", "looking into it")
    );
    assert!(s.comment(999_999, &who, "x", t(5)).await.unwrap().is_none());
    assert!(matches!(
        s.transition(id, Transition::Resolve, &who, t(6))
            .await
            .unwrap(),
        TransitionResult::Done(_)
    ));
    assert!(matches!(
        s.transition(id, Transition::Accept, &who, t(7))
            .await
            .unwrap(),
        TransitionResult::Conflict(_)
    ));
    assert!(matches!(
        s.transition(id, Transition::Resolve, &who, t(7))
            .await
            .unwrap(),
        TransitionResult::Unchanged(_)
    ));
    assert!(matches!(
        s.transition(999_999, Transition::Resolve, &who, t(7))
            .await
            .unwrap(),
        TransitionResult::NotFound
    ));
    let kinds: Vec<String> = s
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "created", "note", "accepted", "updated", "comment", "resolved"
        ]
    );
    let tl = s.timeline(id).await.unwrap();
    assert_eq!(tl[2].message, "accepted by token:ci via api");
    // After a manual resolve, the next firing opens a new alert.
    let r = ingest(s, &[routed("g", vec![member("a", true, 0, None)])], 8).await;
    assert_eq!(r[0].outcome, IngestOutcome::Created);
}

async fn list_filters_and_pages(s: &dyn Store) {
    for i in 0..7 {
        let mut ev = routed(
            &format!("k{i}"),
            vec![member(&format!("m{i}"), true, 0, None)],
        );
        if i % 2 == 0 {
            ev.event.severity = Severity::Sev3;
            ev.service_id = None;
        }
        ingest(s, &[ev], i).await;
    }
    let first = ingest(s, &[], 0).await;
    assert!(first.is_empty());
    s.transition(1, Transition::Resolve, &Actor::new("x", "api"), t(9))
        .await
        .unwrap();

    let all = |f: AlertFilter| async move {
        s.list_alerts(&AlertFilter { limit: 100, ..f })
            .await
            .unwrap()
    };
    let page = all(AlertFilter::default()).await;
    let ids: Vec<i64> = page.alerts.iter().map(|a| a.id).collect();
    assert_eq!(ids, [7, 6, 5, 4, 3, 2, 1], "newest first");
    assert_eq!(page.next_before_id, None);

    assert_eq!(
        all(AlertFilter {
            status: Some(AlertStatus::Resolved),
            ..Default::default()
        })
        .await
        .alerts
        .len(),
        1
    );
    assert_eq!(
        all(AlertFilter {
            severity: Some(Severity::Sev3),
            ..Default::default()
        })
        .await
        .alerts
        .len(),
        4
    );
    assert_eq!(
        all(AlertFilter {
            service_id: Some("checkout".into()),
            ..Default::default()
        })
        .await
        .alerts
        .len(),
        3
    );
    assert_eq!(
        all(AlertFilter {
            source_id: Some("other".into()),
            ..Default::default()
        })
        .await
        .alerts
        .len(),
        0
    );
    let by_label = all(AlertFilter {
        labels: vec![("fp".into(), "m4".into())],
        ..Default::default()
    })
    .await;
    assert_eq!(by_label.alerts.len(), 1);
    assert_eq!(by_label.alerts[0].dedup_key, "k4");
    let two = all(AlertFilter {
        labels: vec![
            ("alertname".into(), "Disk".into()),
            ("fp".into(), "nope".into()),
        ],
        ..Default::default()
    })
    .await;
    assert!(two.alerts.is_empty());

    let p1 = s
        .list_alerts(&AlertFilter {
            limit: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        p1.alerts.iter().map(|a| a.id).collect::<Vec<_>>(),
        [7, 6, 5]
    );
    assert_eq!(p1.next_before_id, Some(5));
    let p3 = s
        .list_alerts(&AlertFilter {
            limit: 3,
            before_id: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(p3.alerts.iter().map(|a| a.id).collect::<Vec<_>>(), [1]);
    assert_eq!(p3.next_before_id, None);

    let counts = s.count_by_status().await.unwrap();
    assert_eq!(
        counts,
        vec![
            (AlertStatus::Pending, 6),
            (AlertStatus::Accepted, 0),
            (AlertStatus::Resolved, 1)
        ]
    );
}

fn put(kind: &str, id: &str, v: i64, origin: Origin, expect: Expect) -> CatalogWrite {
    CatalogWrite::Put {
        kind: kind.into(),
        id: id.into(),
        spec: json!({"id": id, "v": v}),
        secret_refs: BTreeMap::from([("key".to_owned(), "${KEY}".to_owned())]),
        origin,
        expect,
    }
}

fn file(name: &str) -> Origin {
    Origin::Provisioned { file: name.into() }
}

async fn catalog_writes_are_versioned_and_atomic(s: &dyn Store) {
    assert_eq!(s.catalog().await.unwrap(), StoredCatalog::default());
    let c = s
        .write_catalog(
            &[
                put("users", "a", 1, file("t.yaml"), Expect::Absent),
                put("users", "b", 1, file("t.yaml"), Expect::Any),
                put("teams", "sre", 1, Origin::Managed, Expect::Any),
            ],
            &[],
            t(0),
        )
        .await
        .unwrap();
    assert_eq!((c.version, c.created, c.changed()), (1, 3, true));
    let cat = s.catalog().await.unwrap();
    assert_eq!(cat.version, 1);
    let ids: Vec<_> = cat
        .objects
        .iter()
        .map(|o| (o.kind.as_str(), o.id.as_str(), o.revision))
        .collect();
    assert_eq!(
        ids,
        [("teams", "sre", 1), ("users", "a", 1), ("users", "b", 1)]
    );
    assert_eq!(cat.objects[0].origin, Origin::Managed);
    assert_eq!(cat.objects[1].origin, file("t.yaml"));
    assert_eq!(cat.objects[1].spec, json!({"id": "a", "v": 1}));
    assert_eq!(cat.objects[1].secret_refs["key"], "${KEY}");
    assert_eq!(cat.objects[1].created_at, t(0));

    // The same specs again change nothing: neither revisions nor version.
    let c = s
        .write_catalog(
            &[put("users", "a", 1, file("t.yaml"), Expect::Any)],
            &[],
            t(1),
        )
        .await
        .unwrap();
    assert_eq!((c.version, c.unchanged, c.changed()), (1, 1, false));
    assert_eq!(s.catalog_version().await.unwrap(), 1);

    // A change stamps the changed object with the new version only.
    let c = s
        .write_catalog(
            &[
                put("users", "a", 2, file("t.yaml"), Expect::Revision(1)),
                put("users", "b", 1, file("t.yaml"), Expect::Revision(1)),
            ],
            &[],
            t(2),
        )
        .await
        .unwrap();
    assert_eq!((c.version, c.updated, c.unchanged), (2, 1, 1));
    let cat = s.catalog().await.unwrap();
    let a = cat.objects.iter().find(|o| o.id == "a").unwrap();
    assert_eq!((a.revision, a.updated_at, a.created_at), (2, t(2), t(0)));
    // So does a change of origin alone (a managed object taken over by a file).
    let c = s
        .write_catalog(
            &[put("users", "b", 1, Origin::Managed, Expect::Any)],
            &[],
            t(3),
        )
        .await
        .unwrap();
    assert_eq!((c.version, c.updated), (3, 1));

    // A stale expectation fails the whole write: the first put is not applied.
    let e = s
        .write_catalog(
            &[
                put("users", "z", 1, Origin::Managed, Expect::Absent),
                put("users", "a", 3, file("t.yaml"), Expect::Revision(1)),
            ],
            &[],
            t(4),
        )
        .await
        .unwrap_err();
    match e {
        StoreError::Conflict {
            kind, id, current, ..
        } => assert_eq!(
            (kind.as_str(), id.as_str(), current),
            ("users", "a", Some(2))
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let after = s.catalog().await.unwrap();
    assert_eq!(after.version, 3);
    assert!(after.objects.iter().all(|o| o.id != "z"));
    let e = s
        .write_catalog(
            &[put("users", "a", 9, Origin::Managed, Expect::Absent)],
            &[],
            t(4),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::Conflict {
            current: Some(2),
            ..
        }
    ));
    let e = s
        .write_catalog(
            &[CatalogWrite::Delete {
                kind: "users".into(),
                id: "nobody".into(),
                expect: Expect::Revision(1),
            }],
            &[],
            t(4),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { current: None, .. }));

    // Delete, and a delete of what is not there (nothing to do).
    let c = s
        .write_catalog(
            &[
                CatalogWrite::Delete {
                    kind: "users".into(),
                    id: "b".into(),
                    expect: Expect::Revision(3),
                },
                CatalogWrite::Delete {
                    kind: "users".into(),
                    id: "gone".into(),
                    expect: Expect::Any,
                },
            ],
            &[],
            t(5),
        )
        .await
        .unwrap();
    assert_eq!((c.version, c.removed), (4, 1));
    assert_eq!(s.catalog().await.unwrap().objects.len(), 2);

    // Two writers with the same expectation at the same moment: one wins.
    let first = [put("users", "a", 10, Origin::Managed, Expect::Revision(2))];
    let second = [put("users", "a", 11, Origin::Managed, Expect::Revision(2))];
    let (x, y) = tokio::join!(
        s.write_catalog(&first, &[], t(6)),
        s.write_catalog(&second, &[], t(6)),
    );
    assert_eq!(
        [x.is_ok(), y.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "exactly one of two racing edits applies: {x:?} {y:?}"
    );
    assert_eq!(s.catalog_version().await.unwrap(), 5);

    // A key change is a catalog change: every node reloads the keys.
    let key = |k: Option<&str>| CatalogWrite::Key {
        source_id: "prom".into(),
        key: k.map(str::to_owned),
    };
    let c = s
        .write_catalog(&[key(Some("rotated-0123456789abcdef"))], &[], t(7))
        .await
        .unwrap();
    assert_eq!((c.version, c.updated), (6, 1));
    let stored = s
        .source_key("prom", None, "generated-0123456789", t(7))
        .await;
    assert_eq!(stored.unwrap(), "rotated-0123456789abcdef");
    s.write_catalog(&[key(None)], &[], t(8)).await.unwrap();
    let fresh = s
        .source_key("prom", None, "generated-0123456789", t(8))
        .await;
    assert_eq!(
        fresh.unwrap(),
        "generated-0123456789",
        "a forgotten key is made anew"
    );
    assert_eq!(s.catalog_version().await.unwrap(), 7);
}

async fn source_keys(s: &dyn Store) {
    let k = s
        .source_key("prom", None, "generated-1", t(0))
        .await
        .unwrap();
    assert_eq!(k, "generated-1");
    let k = s
        .source_key("prom", None, "generated-2", t(1))
        .await
        .unwrap();
    assert_eq!(k, "generated-1", "a generated key is kept");
    let k = s
        .source_key("prom", Some("from-config"), "generated-3", t(2))
        .await
        .unwrap();
    assert_eq!(k, "from-config");
    s.ping().await.unwrap();
    assert_eq!(
        s.named_secret("ical", "a", "first", t(0)).await.unwrap(),
        "first"
    );
    assert_eq!(
        s.named_secret("ical", "a", "second", t(1)).await.unwrap(),
        "first"
    );
    assert_eq!(
        s.named_secret("ical", "b", "other", t(1)).await.unwrap(),
        "other"
    );
    assert_eq!(
        s.named_secret("other", "a", "third", t(1)).await.unwrap(),
        "third"
    );
}

async fn concurrent_deliveries_open_one_alert(s: &dyn Store) {
    let ev = routed("race", vec![member("a", true, 0, None)]);
    let actor = src();
    // All eight in flight at once: on PostgreSQL they go to different
    // writers, whose transactions race for the one open alert.
    let futs = (0..8).map(|_| s.ingest("prom", &actor, vec![ev.clone()], t(1)));
    let results = futures_util::future::join_all(futs).await;
    let created = results
        .iter()
        .filter(|r| r.as_ref().unwrap()[0].outcome == IngestOutcome::Created)
        .count();
    assert_eq!(created, 1);
    let page = s
        .list_alerts(&AlertFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.alerts.len(), 1);
}

async fn retention_prunes_old_resolved_alerts(s: &dyn Store) {
    let old = ingest(s, &[routed("old", vec![member("a", true, 0, None)])], 1).await[0]
        .alert_id
        .unwrap();
    ingest(
        s,
        &[routed("old", vec![member("a", false, 0, Some(10))])],
        11,
    )
    .await;
    let recent = ingest(s, &[routed("recent", vec![member("b", true, 0, None)])], 1).await[0]
        .alert_id
        .unwrap();
    ingest(
        s,
        &[routed("recent", vec![member("b", false, 0, Some(100))])],
        101,
    )
    .await;
    let open = ingest(s, &[routed("open", vec![member("c", true, 0, None)])], 1).await[0]
        .alert_id
        .unwrap();

    assert!(!s.steps(old).await.unwrap().is_empty());
    assert_eq!(s.prune_resolved(t(50), 1000).await.unwrap(), 1);
    assert!(s.get_alert(old).await.unwrap().is_none());
    assert!(
        s.timeline(old).await.unwrap().is_empty(),
        "the timeline goes with the alert"
    );
    assert!(s.steps(old).await.unwrap().is_empty(), "and its steps");
    assert!(s.deliveries(old).await.unwrap().is_empty(), "and its pages");
    assert!(s.get_alert(recent).await.unwrap().is_some());
    assert!(
        s.get_alert(open).await.unwrap().is_some(),
        "open alerts are never pruned"
    );
    assert_eq!(s.prune_resolved(t(50), 1000).await.unwrap(), 0);
    // A label search does not find pruned alerts.
    let page = s
        .list_alerts(&AlertFilter {
            labels: vec![("fp".into(), "a".into())],
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.alerts.is_empty());
}

async fn one_key_several_times_in_one_batch(s: &dyn Store) {
    // Applied in order, as if sent one after the other.
    let evs = vec![
        routed("k", vec![member("a", true, 0, None)]),
        routed("k", vec![member("a", true, 0, None)]),
        routed(
            "k",
            vec![member("a", true, 0, None), member("b", true, 2, None)],
        ),
        routed(
            "k",
            vec![
                member("a", false, 0, Some(5)),
                member("b", false, 2, Some(6)),
            ],
        ),
        routed("k", vec![member("a", true, 10, None)]),
    ];
    let r = s.ingest("prom", &src(), evs, t(11)).await.unwrap();
    let outcomes: Vec<IngestOutcome> = r.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            IngestOutcome::Created,
            IngestOutcome::Duplicate,
            IngestOutcome::Updated,
            IngestOutcome::Resolved,
            IngestOutcome::Created
        ]
    );
    let first = r[0].alert_id.unwrap();
    assert!(r[..4].iter().all(|x| x.alert_id == Some(first)));
    assert_ne!(r[4].alert_id, Some(first));
    let a = s.get_alert(first).await.unwrap().unwrap();
    assert_eq!(
        (a.status, a.seen_count, a.resolved_at),
        (AlertStatus::Resolved, 4, Some(t(6)))
    );
    assert_eq!(a.members.len(), 2);
    let kinds: Vec<String> = s
        .timeline(first)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["created", "note", "updated", "resolved"]);
    let b = s.get_alert(r[4].alert_id.unwrap()).await.unwrap().unwrap();
    assert_eq!((b.status, b.seen_count), (AlertStatus::Pending, 1));
}

fn done(next: Option<NextStep>, deliveries: Vec<NewDelivery>, note: &str) -> StepDone {
    StepDone {
        next,
        deliveries,
        timeline: vec![(tocsin_domain::TimelineKind::Note, note.to_owned())],
        actor: Actor::new("system", "escalation"),
    }
}

fn mail(user: &str, due: i64) -> NewDelivery {
    NewDelivery {
        user_id: user.into(),
        contact_id: "mail".into(),
        channel: "email".into(),
        address: format!("{user}@example.com"),
        due_at: t(due),
    }
}

async fn escalation_steps_are_durable_claimed_and_completed_once(s: &dyn Store) {
    let id = ingest(s, &[routed("g", vec![member("a", true, 0, None)])], 10).await[0]
        .alert_id
        .unwrap();
    let steps = s.steps(id).await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        (
            steps[0].level,
            steps[0].round,
            steps[0].due_at,
            steps[0].status.as_str()
        ),
        (0, 0, t(10), "pending")
    );
    assert_eq!(steps[0].policy_id, "p1");

    // Not due yet, then due.
    assert!(
        s.claim_due_steps(t(9), TimeDelta::seconds(30), 10, "w1")
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = s
        .claim_due_steps(t(10), TimeDelta::seconds(30), 10, "w1")
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].alert_id, claimed[0].priority),
        (id, Priority::High)
    );
    // Leased: nobody else gets it until the lease runs out.
    assert!(
        s.claim_due_steps(t(11), TimeDelta::seconds(30), 10, "w2")
            .await
            .unwrap()
            .is_empty()
    );
    let taken_over = s
        .claim_due_steps(t(41), TimeDelta::seconds(30), 10, "w2")
        .await
        .unwrap();
    assert_eq!(
        taken_over.len(),
        1,
        "a dead worker's step is taken over after its lease"
    );
    assert!(!claimed[0].taken_over);
    assert!(taken_over[0].taken_over, "and says so (for the metric)");
    // The first worker's late completion is refused and writes nothing.
    let next = NextStep {
        level: 1,
        round: 0,
        due_at: t(341),
    };
    assert!(
        !s.complete_step(
            &claimed[0],
            done(Some(next), vec![mail("x", 41)], "late"),
            t(42)
        )
        .await
        .unwrap()
    );
    assert!(
        s.complete_step(
            &taken_over[0],
            done(
                Some(next),
                vec![mail("alice", 41), mail("bob", 101)],
                "level 1"
            ),
            t(42)
        )
        .await
        .unwrap()
    );
    assert!(
        !s.complete_step(&taken_over[0], done(None, vec![], "twice"), t(43))
            .await
            .unwrap(),
        "never twice"
    );

    let d = s.deliveries(id).await.unwrap();
    let who: Vec<(&str, &str, DateTime<Utc>)> = d
        .iter()
        .map(|d| (d.user_id.as_str(), d.status.as_str(), d.due_at))
        .collect();
    assert_eq!(
        who,
        [("alice", "pending", t(41)), ("bob", "pending", t(101))]
    );
    let steps = s.steps(id).await.unwrap();
    let st: Vec<(i64, &str)> = steps.iter().map(|x| (x.level, x.status.as_str())).collect();
    assert_eq!(st, [(0, "done"), (1, "pending")]);
    let notes: Vec<String> = s
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "note" && e.actor == "system")
        .map(|e| e.message)
        .collect();
    assert_eq!(notes, ["level 1"]);

    // Accepting stops escalation: pending step and notifications are cancelled.
    s.transition(id, Transition::Accept, &Actor::new("token:x", "api"), t(50))
        .await
        .unwrap();
    assert!(
        s.claim_due_steps(t(1000), TimeDelta::seconds(30), 10, "w3")
            .await
            .unwrap()
            .is_empty()
    );
    let st: Vec<String> = s
        .steps(id)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.status)
        .collect();
    assert_eq!(st, ["done", "cancelled"]);
    assert!(
        s.deliveries(id)
            .await
            .unwrap()
            .iter()
            .all(|d| d.status == "cancelled")
    );
}

async fn source_resolve_stops_escalation(s: &dyn Store) {
    let id = ingest(s, &[routed("g", vec![member("a", true, 0, None)])], 1).await[0]
        .alert_id
        .unwrap();
    let claimed = s
        .claim_due_steps(t(1), TimeDelta::seconds(30), 10, "w")
        .await
        .unwrap();
    // The source resolves while the step runs: its completion is refused.
    ingest(s, &[routed("g", vec![member("a", false, 0, Some(2))])], 2).await;
    assert!(
        !s.complete_step(&claimed[0], done(None, vec![mail("alice", 3)], "x"), t(3))
            .await
            .unwrap()
    );
    assert!(s.deliveries(id).await.unwrap().is_empty());
    assert_eq!(s.steps(id).await.unwrap()[0].status, "cancelled");
}

async fn bundling_gates_each_contact(s: &dyn Store) {
    let evs: Vec<RoutedEvent> = (1..=4)
        .map(|i| routed(&format!("b{i}"), vec![member("a", true, 0, None)]))
        .collect();
    ingest(s, &evs, 0).await;
    let mut steps = s
        .claim_due_steps(t(0), TimeDelta::seconds(30), 10, "w")
        .await
        .unwrap();
    steps.sort_by_key(|x| x.alert_id);
    let ids: Vec<i64> = steps.iter().map(|x| x.alert_id).collect();
    let plan = [
        vec![mail("alice", 0), mail("bob", 0)],
        vec![mail("alice", 2)],
        vec![mail("alice", 5)],
        vec![mail("alice", 45)],
    ];
    for (step, deliveries) in steps.iter().zip(plan) {
        assert!(
            s.complete_step(step, done(None, deliveries, "l1"), t(0))
                .await
                .unwrap()
        );
    }
    let window = TimeDelta::seconds(10);
    // (user, pages, alerts listed) of each bundle a claim takes.
    let claim = |at: i64, limit: u32, token: &'static str| async move {
        let mut v: Vec<(String, Vec<i64>)> = s
            .claim_bundles(t(at), TimeDelta::seconds(30), limit, window, 10, token)
            .await
            .unwrap()
            .into_iter()
            .map(|b| {
                assert_eq!(b.pages, b.alert_count);
                assert_eq!(usize::try_from(b.pages).unwrap(), b.alerts.len());
                let mut ids: Vec<i64> = b.alerts.iter().map(|a| a.id).collect();
                ids.sort_unstable();
                (b.user_id, ids)
            })
            .collect();
        v.sort();
        v
    };
    let sent = |at: i64, token: &'static str| async move {
        let claimed = s
            .claim_bundles(t(at), TimeDelta::seconds(30), 10, window, 10, token)
            .await
            .unwrap();
        let mut got = Vec::new();
        for b in claimed {
            let ok = DeliveryOutcome::Sent {
                detail: String::new(),
            };
            assert_eq!(
                s.finish_bundle(&b, ok, t(at)).await.unwrap(),
                u64::try_from(b.pages).unwrap()
            );
            got.push((
                b.user_id.clone(),
                b.alerts.iter().map(|a| a.id).collect::<Vec<_>>(),
            ));
        }
        got.sort();
        got
    };

    // The first page to each contact goes out at once.
    assert_eq!(
        sent(0, "c0").await,
        [
            ("alice".to_owned(), vec![ids[0]]),
            ("bob".to_owned(), vec![ids[0]])
        ]
    );
    // Alice's next pages fall inside her window: held where they are, not
    // claimed.
    assert!(claim(3, 10, "c3").await.is_empty());
    assert!(claim(6, 10, "c6").await.is_empty());
    assert!(claim(9, 10, "c9").await.is_empty());
    assert_eq!(s.outbox_depth().await.unwrap(), 3);
    let held: Vec<(String, DateTime<Utc>)> = s
        .deliveries(ids[1])
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.status, d.due_at))
        .collect();
    assert_eq!(held, [("pending".to_owned(), t(2))]);
    // When the window ends, one claim for one contact takes all of her due
    // pages, to go out as one message.
    assert_eq!(
        claim(10, 1, "c10").await,
        [("alice".to_owned(), vec![ids[1], ids[2]])]
    );
    // While that claim holds her, nobody else claims her: not before its
    // lease runs out (t(40)), whatever her window says.
    assert!(claim(21, 10, "c21").await.is_empty());
    assert_eq!(s.outbox_depth().await.unwrap(), 3, "pending until recorded");
    let again = s
        .claim_bundles(t(41), TimeDelta::seconds(30), 10, window, 10, "c41")
        .await
        .unwrap();
    assert_eq!(
        (again.len(), again[0].pages, again[0].taken_over),
        (1, 2, 2)
    );
    let ok = DeliveryOutcome::Sent {
        detail: String::new(),
    };
    assert_eq!(s.finish_bundle(&again[0], ok, t(41)).await.unwrap(), 2);
    // The page due at t(45) falls in the window of that message (to t(51)).
    assert!(claim(50, 10, "c50").await.is_empty());
    assert_eq!(sent(52, "c52").await, [("alice".to_owned(), vec![ids[3]])]);
}

async fn a_storm_on_one_policy_does_not_hold_back_another(s: &dyn Store) {
    // 300 storm steps due at t(0), then one step of another policy.
    let storm: Vec<RoutedEvent> = (0..300)
        .map(|i| routed(&format!("storm{i}"), vec![member("a", true, 0, None)]))
        .collect();
    ingest(s, &storm, 0).await;
    let mut other = routed("other", vec![member("a", true, 1, None)]);
    other.policy_id = "p2".into();
    let other_id = ingest(s, &[other], 1).await[0].alert_id.unwrap();
    // The first round of ten already has it, although 300 older steps wait.
    let round = s
        .claim_due_steps(t(2), TimeDelta::seconds(30), 10, "w")
        .await
        .unwrap();
    assert_eq!(round.len(), 10);
    assert_eq!(
        round.iter().filter(|x| x.alert_id == other_id).count(),
        1,
        "the other policy's step is in the first round"
    );
    assert_eq!(round.iter().filter(|x| x.policy_id == "p1").count(), 9);
    // Nothing is claimed twice, nothing is left out.
    let mut all: Vec<i64> = round.iter().map(|x| x.id).collect();
    loop {
        let more = s
            .claim_due_steps(t(2), TimeDelta::seconds(30), 64, "w")
            .await
            .unwrap();
        if more.is_empty() {
            break;
        }
        all.extend(more.iter().map(|x| x.id));
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!((n, all.len()), (301, 301));
}

async fn open_alert_by_key_and_change_events(s: &dyn Store) {
    let id = ingest(s, &[routed("k1", vec![member("a", true, 0, None)])], 0).await[0]
        .alert_id
        .unwrap();
    assert_eq!(s.open_alert_id("prom", "k1").await.unwrap(), Some(id));
    assert_eq!(s.open_alert_id("prom", "k2").await.unwrap(), None);
    assert_eq!(s.open_alert_id("other", "k1").await.unwrap(), None);
    ingest(s, &[routed("k1", vec![member("a", false, 0, Some(5))])], 6).await;
    assert_eq!(
        s.open_alert_id("prom", "k1").await.unwrap(),
        None,
        "resolved"
    );

    for (svc, at, summary) in [
        (Some("checkout"), 10, "deploy 1"),
        (None, 20, "config"),
        (Some("checkout"), 30, "deploy 2"),
    ] {
        s.record_change(tocsin_store::NewChange {
            source_id: "pd".into(),
            service_id: svc.map(str::to_owned),
            at: t(at),
            received_at: t(at + 1),
            summary: summary.into(),
            origin: Some("ci".into()),
            details: "build: 1".into(),
            links: vec![tocsin_domain::Link {
                href: "https://ci/1".into(),
                text: "CI".into(),
            }],
        })
        .await
        .unwrap();
    }
    let mine: Vec<String> = s
        .changes(Some("checkout"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.summary)
        .collect();
    assert_eq!(mine, ["deploy 2", "deploy 1"]);
    let all = s.changes(None, 2).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].links[0].text, "CI");
    assert_eq!(all[1].at, t(20));
}

async fn workers_claim_disjoint_steps(s: &dyn Store) {
    let evs: Vec<RoutedEvent> = (0..20)
        .map(|i| routed(&format!("k{i}"), vec![member("a", true, 0, None)]))
        .collect();
    ingest(s, &evs, 1).await;
    let a = s
        .claim_due_steps(t(2), TimeDelta::seconds(30), 12, "a")
        .await
        .unwrap();
    let b = s
        .claim_due_steps(t(2), TimeDelta::seconds(30), 12, "b")
        .await
        .unwrap();
    assert_eq!(a.len() + b.len(), 20);
    assert!(a.iter().all(|x| !b.iter().any(|y| y.id == x.id)));
}

async fn outbox_deliveries_retry_fail_and_stop(s: &dyn Store) {
    let id = ingest(s, &[routed("g", vec![member("a", true, 0, None)])], 0).await[0]
        .alert_id
        .unwrap();
    let step = s
        .claim_due_steps(t(0), TimeDelta::seconds(30), 10, "w")
        .await
        .unwrap()
        .remove(0);
    s.complete_step(
        &step,
        done(None, vec![mail("alice", 0), mail("bob", 60)], "l1"),
        t(0),
    )
    .await
    .unwrap();
    assert_eq!(s.outbox_depth().await.unwrap(), 2);

    let claim = |at: i64, token: &'static str| async move {
        s.claim_bundles(
            t(at),
            TimeDelta::seconds(30),
            10,
            TimeDelta::zero(),
            10,
            token,
        )
        .await
        .unwrap()
    };
    let due = claim(1, "d1").await;
    assert_eq!(due.len(), 1, "bob's is not due yet");
    assert_eq!(
        (
            due[0].user_id.as_str(),
            due[0].contact_id.as_str(),
            due[0].address.as_str(),
            due[0].attempts,
            due[0].pages,
        ),
        ("alice", "mail", "alice@example.com", 0, 1)
    );
    assert_eq!(due[0].alerts[0].summary, "g summary");
    assert!(claim(2, "d2").await.is_empty(), "leased");
    let retry = DeliveryOutcome::Retry {
        error: "connection refused".into(),
        next_at: t(20),
    };
    assert_eq!(s.finish_bundle(&due[0], retry, t(2)).await.unwrap(), 1);
    assert_eq!(
        s.finish_bundle(
            &due[0],
            DeliveryOutcome::Sent {
                detail: String::new()
            },
            t(3)
        )
        .await
        .unwrap(),
        0,
        "claim is spent"
    );
    assert!(claim(19, "d2b").await.is_empty(), "the retry is due at 20");

    let again = claim(20, "d3").await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(
        s.finish_bundle(
            &again[0],
            DeliveryOutcome::Sent {
                detail: "250 OK".into()
            },
            t(21)
        )
        .await
        .unwrap(),
        1
    );

    let bob = claim(60, "d4").await;
    assert_eq!(
        s.finish_bundle(
            &bob[0],
            DeliveryOutcome::Failed {
                error: "mailbox unavailable".into()
            },
            t(61)
        )
        .await
        .unwrap(),
        1
    );
    assert_eq!(s.outbox_depth().await.unwrap(), 0);

    let d = s.deliveries(id).await.unwrap();
    let st: Vec<(&str, i64, Option<&str>)> = d
        .iter()
        .map(|d| (d.status.as_str(), d.attempts, d.last_error.as_deref()))
        .collect();
    assert_eq!(
        st,
        [
            ("sent", 2, None),
            ("failed", 1, Some("mailbox unavailable"))
        ]
    );
    assert_eq!(d[0].sent_at, Some(t(21)));
    let notes: Vec<String> = s
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "notification")
        .map(|e| e.message)
        .collect();
    // The timeline names the contact, never its address (a Slack or
    // webhook URL is a secret).
    assert_eq!(
        notes,
        [
            "attempt 1 to alice by email (contact `mail`) failed: connection refused; retrying at 2026-03-01T12:00:20+00:00",
            "attempt 2 to alice by email (contact `mail`): delivered (250 OK)",
            "attempt 1 to bob by email (contact `mail`) failed: mailbox unavailable; giving up",
        ]
    );
    assert!(notes.iter().all(|n| !n.contains("@example.com")));

    // Accepting cancels what is still queued.
    let id2 = ingest(s, &[routed("h", vec![member("a", true, 0, None)])], 100).await[0]
        .alert_id
        .unwrap();
    let step = s
        .claim_due_steps(t(100), TimeDelta::seconds(30), 10, "w")
        .await
        .unwrap()
        .remove(0);
    s.complete_step(&step, done(None, vec![mail("alice", 160)], "l1"), t(100))
        .await
        .unwrap();
    s.transition(
        id2,
        Transition::Accept,
        &Actor::new("token:x", "api"),
        t(101),
    )
    .await
    .unwrap();
    assert!(claim(200, "d5").await.is_empty());
    assert_eq!(s.deliveries(id2).await.unwrap()[0].status, "cancelled");
}

async fn unaccept_and_reassign_restart_escalation(s: &dyn Store) {
    let id = ingest(s, &[routed("g", vec![member("a", true, 0, None)])], 0).await[0]
        .alert_id
        .unwrap();
    let who = Actor::new("token:x", "api");
    // Un-accepting a pending alert changes nothing.
    assert!(matches!(
        s.transition(id, Transition::Unaccept, &who, t(1))
            .await
            .unwrap(),
        TransitionResult::Unchanged(_)
    ));
    s.transition(id, Transition::Accept, &who, t(2))
        .await
        .unwrap();
    match s
        .transition(id, Transition::Unaccept, &who, t(3))
        .await
        .unwrap()
    {
        TransitionResult::Done(a) => {
            assert_eq!(
                (a.status, a.accepted_by.clone()),
                (AlertStatus::Pending, None)
            );
        }
        other => panic!("{other:?}"),
    }
    let steps = step_states(s, id).await;
    assert_eq!(
        steps,
        [(0, "cancelled".into(), t(0)), (0, "pending".into(), t(3))]
    );

    match s.reassign(id, "user:bob", &who, t(4)).await.unwrap() {
        TransitionResult::Done(a) => assert_eq!(a.policy_id.as_deref(), Some("user:bob")),
        other => panic!("{other:?}"),
    }
    let steps = s.steps(id).await.unwrap();
    let last = steps.last().unwrap();
    assert_eq!(
        (last.policy_id.as_str(), last.status.as_str(), last.due_at),
        ("user:bob", "pending", t(4))
    );
    assert_eq!(steps.iter().filter(|x| x.status == "pending").count(), 1);
    let msgs: Vec<String> = s
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "escalation")
        .map(|e| e.message)
        .collect();
    assert_eq!(
        msgs,
        [
            "un-accepted by token:x via api; escalation restarts at level 1",
            "reassigned to user:bob by token:x; escalation restarts at level 1",
        ]
    );
    s.transition(id, Transition::Resolve, &who, t(5))
        .await
        .unwrap();
    assert!(matches!(
        s.reassign(id, "p2", &who, t(6)).await.unwrap(),
        TransitionResult::Conflict(_)
    ));
    assert!(matches!(
        s.transition(id, Transition::Unaccept, &who, t(6))
            .await
            .unwrap(),
        TransitionResult::Conflict(_)
    ));
    assert!(matches!(
        s.reassign(999_999, "p2", &who, t(6)).await.unwrap(),
        TransitionResult::NotFound
    ));
}

async fn audit_log_appends_filters_pages_and_prunes(s: &dyn Store) {
    let id = ingest(s, &[routed("g", vec![member("a", true, 0, None)])], 1).await[0]
        .alert_id
        .unwrap();
    let alice = Actor::new("user:alice", "api (token laptop)");
    let ci = Actor::new("token:ci", "api");
    s.transition(id, Transition::Accept, &alice, t(2))
        .await
        .unwrap();
    // Nothing changes: nothing is audited.
    s.transition(id, Transition::Accept, &alice, t(3))
        .await
        .unwrap();
    s.comment(id, &ci, "looking", t(4)).await.unwrap();
    let w = s
        .create_maintenance(
            &tocsin_store::NewMaintenance {
                target_kind: "service".into(),
                target_id: "checkout".into(),
                starts_at: t(5),
                ends_at: t(50),
                reason: "upgrade".into(),
                title: String::new(),
                public: false,
            },
            &ci,
            t(5),
        )
        .await
        .unwrap();
    s.end_maintenance(w.id, &alice, t(6)).await.unwrap();
    s.end_maintenance(w.id, &alice, t(7)).await.unwrap();
    let put = CatalogWrite::Put {
        kind: "teams".into(),
        id: "sre".into(),
        spec: json!({"id": "sre"}),
        secret_refs: BTreeMap::new(),
        origin: Origin::Managed,
        expect: Expect::Any,
    };
    let record = AuditRecord::new(
        &ci,
        "teams",
        "sre",
        "create",
        json!({"id": {"after": "sre"}}),
    );
    s.write_catalog(
        std::slice::from_ref(&put),
        std::slice::from_ref(&record),
        t(8),
    )
    .await
    .unwrap();
    // The same write again changes nothing, so its record is not written.
    s.write_catalog(&[put], &[record], t(9)).await.unwrap();

    let all =
        |f: AuditFilter| async move { s.audit(&AuditFilter { limit: 100, ..f }).await.unwrap() };
    let every = all(AuditFilter::default()).await;
    let seen: Vec<(&str, &str, &str)> = every
        .entries
        .iter()
        .map(|e| {
            (
                e.record.kind.as_str(),
                e.record.action.as_str(),
                e.record.actor.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("teams", "create", "token:ci"),
            ("maintenance", "end", "user:alice"),
            ("maintenance", "create", "token:ci"),
            ("alert", "comment", "token:ci"),
            ("alert", "accept", "user:alice"),
        ],
        "newest first, one entry per change"
    );
    let accept = every.entries.last().unwrap();
    assert_eq!(accept.at, t(2));
    assert_eq!(accept.record.object_id, id.to_string());
    assert_eq!(accept.record.channel, "api (token laptop)");
    assert_eq!(
        accept.record.diff,
        json!({"status": {"before": "pending", "after": "accepted"}})
    );
    let by_actor = all(AuditFilter {
        actor: Some("user:alice".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_actor.entries.len(), 2);
    let by_object = all(AuditFilter {
        kind: Some("maintenance".into()),
        object_id: Some(w.id.to_string()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_object.entries.len(), 2);
    let window = all(AuditFilter {
        since: Some(t(4)),
        until: Some(t(6)),
        ..Default::default()
    })
    .await;
    assert_eq!(
        window.entries.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![t(5), t(4)],
        "since is inclusive, until exclusive"
    );
    // Pages of two, each continuing where the last ended.
    let mut cursor = None;
    let mut paged = Vec::new();
    loop {
        let page = s
            .audit(&AuditFilter {
                limit: 2,
                before_id: cursor,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.entries.len() <= 2);
        paged.extend(page.entries.iter().map(|e| e.id));
        match page.next_before_id {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        paged,
        every.entries.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    // Retention deletes the oldest.
    assert_eq!(s.prune_audit(t(5), 100).await.unwrap(), 2);
    assert_eq!(all(AuditFilter::default()).await.entries.len(), 3);
}

async fn passwords_sessions_failures_and_setup_links(s: &dyn Store) {
    let op = Actor::new("operator", "cli");
    assert!(s.password_hash("alice").await.unwrap().is_none());
    s.set_password("alice", "$argon2id$one", None, &op, t(1))
        .await
        .unwrap();
    assert_eq!(
        s.password_hash("alice").await.unwrap().as_deref(),
        Some("$argon2id$one")
    );
    assert_eq!(s.users_with_password().await.unwrap(), vec!["alice"]);

    let new = |id: &str, secret: &str| NewSession {
        id: id.into(),
        digest: TokenDigest::of(secret),
        user: "alice".into(),
        method: "password".into(),
        expires_at: t(1000),
        address: "127.0.0.1".into(),
        user_agent: "test".into(),
    };
    let one = s
        .create_session(&new("ses_1", "secret-1"), t(10))
        .await
        .unwrap();
    assert_eq!((one.last_seen_at, one.expires_at), (t(10), t(1000)));
    s.create_session(&new("ses_2", "secret-2"), t(11))
        .await
        .unwrap();
    // The same secret cannot open two sessions.
    assert!(
        s.create_session(&new("ses_3", "secret-1"), t(12))
            .await
            .is_err()
    );
    let found = s
        .session_by_digest(&TokenDigest::of("secret-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "ses_1");
    assert!(
        s.session_by_digest(&TokenDigest::of("nope"))
            .await
            .unwrap()
            .is_none()
    );
    let live: Vec<String> = s
        .sessions("alice", t(20))
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(live, vec!["ses_2", "ses_1"], "newest first");
    assert!(
        s.sessions("alice", t(1000)).await.unwrap().is_empty(),
        "expired"
    );

    s.touch_session("ses_1", t(30)).await.unwrap();
    assert_eq!(
        s.session_by_digest(&TokenDigest::of("secret-1"))
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        t(10),
        "written at most once a minute"
    );
    s.touch_session("ses_1", t(80)).await.unwrap();
    assert_eq!(
        s.session_by_digest(&TokenDigest::of("secret-1"))
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        t(80)
    );

    // Ending is the owner's, once.
    let me = Actor::new("user:alice", "web");
    assert!(
        s.end_session("bob", "ses_1", &me, t(90))
            .await
            .unwrap()
            .is_none()
    );
    let ended = s
        .end_session("alice", "ses_1", &me, t(90))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.ended_at, Some(t(90)));
    let again = s
        .end_session("alice", "ses_1", &me, t(95))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.ended_at, Some(t(90)), "a second end changes nothing");

    // A new password ends every other session.
    s.create_session(&new("ses_4", "secret-4"), t(100))
        .await
        .unwrap();
    s.set_password("alice", "$argon2id$two", Some("ses_4"), &op, t(110))
        .await
        .unwrap();
    let live: Vec<String> = s
        .sessions("alice", t(120))
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(live, vec!["ses_4"]);
    let audit = s
        .audit(&AuditFilter {
            object_id: Some("alice".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = audit
        .entries
        .iter()
        .map(|e| e.record.action.as_str())
        .collect();
    assert_eq!(
        actions,
        vec![
            "set-password",
            "sign-in",
            "sign-out",
            "sign-in",
            "sign-in",
            "set-password"
        ],
        "newest first"
    );
    assert!(
        !audit
            .entries
            .iter()
            .any(|e| e.record.diff.to_string().contains("argon2")),
        "no hash in the audit log"
    );

    // Failed sign-ins count per subject within the window.
    let subjects = vec!["user:alice".to_owned(), "address:10.0.0.1".to_owned()];
    s.record_sign_in_failure(&subjects, t(200)).await.unwrap();
    s.record_sign_in_failure(&subjects[1..], t(210))
        .await
        .unwrap();
    assert_eq!(s.sign_in_failures("user:alice", t(0)).await.unwrap(), 1);
    assert_eq!(
        s.sign_in_failures("address:10.0.0.1", t(0)).await.unwrap(),
        2
    );
    assert_eq!(
        s.sign_in_failures("address:10.0.0.1", t(205))
            .await
            .unwrap(),
        1
    );
    s.clear_sign_in_failures("user:alice").await.unwrap();
    assert_eq!(s.sign_in_failures("user:alice", t(0)).await.unwrap(), 0);

    // Pruning drops what ended or expired, and old failures.
    assert!(s.prune_sessions(t(500)).await.unwrap() >= 2);
    assert!(
        s.session_by_digest(&TokenDigest::of("secret-1"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.session_by_digest(&TokenDigest::of("secret-4"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.sign_in_failures("address:10.0.0.1", t(0)).await.unwrap(),
        0
    );

    // A setup link works once, and spends every other link with it.
    let a = TokenDigest::of("setup-a");
    let b = TokenDigest::of("setup-b");
    s.create_setup_link(&a, t(300)).await.unwrap();
    s.create_setup_link(&b, t(301)).await.unwrap();
    assert!(s.setup_link_open(&a).await.unwrap());
    assert!(!s.setup_link_open(&TokenDigest::of("other")).await.unwrap());
    assert!(
        s.use_setup_link(&a, "bob", "$argon2id$bob", t(310))
            .await
            .unwrap()
    );
    assert!(
        !s.use_setup_link(&a, "bob", "$argon2id$x", t(311))
            .await
            .unwrap()
    );
    assert!(
        !s.use_setup_link(&b, "carol", "$argon2id$y", t(312))
            .await
            .unwrap()
    );
    assert!(!s.setup_link_open(&b).await.unwrap());
    assert_eq!(
        s.password_hash("bob").await.unwrap().as_deref(),
        Some("$argon2id$bob")
    );
    assert!(s.password_hash("carol").await.unwrap().is_none());
}

async fn alerts_changed_since_follows_updates(s: &dyn Store) {
    ingest(s, &[routed("c1", vec![member("a", true, 0, None)])], 10).await;
    ingest(s, &[routed("c2", vec![member("b", true, 0, None)])], 20).await;
    let ids = |v: Vec<tocsin_store::Alert>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let all = ids(s.alerts_changed_since(t(0), 10).await.unwrap());
    assert_eq!(all.len(), 2, "oldest change first");
    assert_eq!(
        ids(s.alerts_changed_since(t(15), 10).await.unwrap()),
        vec![all[1]]
    );
    s.transition(
        all[0],
        Transition::Accept,
        &Actor::new("user:alice", "web"),
        t(30),
    )
    .await
    .unwrap();
    assert_eq!(
        ids(s.alerts_changed_since(t(25), 10).await.unwrap()),
        vec![all[0]]
    );
    assert_eq!(
        s.alerts_changed_since(t(0), 1).await.unwrap().len(),
        1,
        "limit"
    );
}

async fn personal_tokens_are_digests_revoked_once(s: &dyn Store) {
    let admin = Actor::new("token:ci", "api");
    let digest = TokenDigest::of("tcn_secret-one");
    let new = NewToken {
        id: "tok_1".into(),
        name: "laptop".into(),
        role: Role::Responder,
        user: "alice".into(),
        digest,
        expires_at: Some(t(1000)),
    };
    let made = s.create_token(&new, &admin, t(1)).await.unwrap();
    assert_eq!(
        (
            made.name.as_str(),
            made.user.as_str(),
            made.role,
            made.created_by.as_str()
        ),
        ("laptop", "alice", Role::Responder, "token:ci")
    );
    assert_eq!(made.expires_at, Some(t(1000)));
    // The same secret cannot be stored twice.
    let again = NewToken {
        id: "tok_2".into(),
        ..new.clone()
    };
    assert!(s.create_token(&again, &admin, t(1)).await.is_err());
    let other = NewToken {
        id: "tok_3".into(),
        name: "ci".into(),
        user: "bob".into(),
        digest: TokenDigest::of("tcn_secret-two"),
        expires_at: None,
        ..new.clone()
    };
    s.create_token(&other, &admin, t(2)).await.unwrap();

    let (found, stored) = s.token_with_digest("tok_1").await.unwrap().unwrap();
    assert_eq!(found.id, "tok_1");
    assert!(
        stored.ct_eq(&digest),
        "the digest is stored, not the secret"
    );
    assert!(s.token_with_digest("tok_nope").await.unwrap().is_none());
    assert_eq!(s.tokens(Some("alice")).await.unwrap().len(), 1);
    assert_eq!(s.tokens(None).await.unwrap().len(), 2);

    s.touch_token("tok_1", t(10)).await.unwrap();
    s.touch_token("tok_1", t(20)).await.unwrap();
    assert_eq!(
        s.token("tok_1").await.unwrap().unwrap().last_used_at,
        Some(t(10)),
        "written at most once a minute"
    );
    s.touch_token("tok_1", t(80)).await.unwrap();
    assert_eq!(
        s.token("tok_1").await.unwrap().unwrap().last_used_at,
        Some(t(80))
    );

    let alice = Actor::new("user:alice", "api");
    let revoked = s
        .revoke_token("tok_1", &alice, t(90))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(t(90)));
    assert_eq!(revoked.revoked_by.as_deref(), Some("user:alice"));
    let twice = s
        .revoke_token("tok_1", &admin, t(95))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        twice.revoked_at,
        Some(t(90)),
        "a second revoke changes nothing"
    );
    assert!(
        s.revoke_token("tok_nope", &admin, t(95))
            .await
            .unwrap()
            .is_none()
    );
    // Found by digest still (so a request says "revoked"), listed no more.
    let (gone, _) = s.token_with_digest("tok_1").await.unwrap().unwrap();
    assert_eq!(gone.revoked_at, Some(t(90)));
    assert!(s.tokens(Some("alice")).await.unwrap().is_empty());

    let audit = s
        .audit(&AuditFilter {
            kind: Some("token".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = audit
        .entries
        .iter()
        .map(|e| (e.record.object_id.as_str(), e.record.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("tok_1", "revoke"),
            ("tok_3", "create"),
            ("tok_1", "create")
        ]
    );
    assert!(
        !audit
            .entries
            .iter()
            .any(|e| e.record.diff.to_string().contains("secret")),
        "no secret in the log"
    );
}

async fn text_with_a_nul_character_is_refused(s: &dyn Store) {
    let id = ingest(s, &[routed("g", vec![member("a", true, 0, None)])], 1).await[0]
        .alert_id
        .unwrap();
    let before = s.timeline(id).await.unwrap().len();
    let e = s
        .comment(id, &actor(), "bad\0text", t(2))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains("NUL"), "{e}");
    // Nothing was written, and reads with such text are refused alike.
    assert_eq!(s.timeline(id).await.unwrap().len(), before);
    let f = AuditFilter {
        actor: Some("x\0".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(matches!(s.audit(&f).await, Err(StoreError::Invalid(_))));
}

fn actor() -> Actor {
    Actor::new("token:x", "api")
}

async fn maintenance_windows_open_list_and_end(s: &dyn Store) {
    let w = s
        .create_maintenance(
            &tocsin_store::NewMaintenance {
                target_kind: "source".into(),
                target_id: "prom".into(),
                starts_at: t(10),
                ends_at: t(100),
                reason: "db upgrade".into(),
                title: String::new(),
                public: false,
            },
            &actor(),
            t(0),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            w.target_kind.as_str(),
            w.target_id.as_str(),
            w.reason.as_str()
        ),
        ("source", "prom", "db upgrade")
    );
    assert!(!w.is_active(t(5)) && w.is_active(t(10)) && !w.is_active(t(100)));
    s.create_maintenance(
        &tocsin_store::NewMaintenance {
            target_kind: "service".into(),
            target_id: "checkout".into(),
            starts_at: t(0),
            ends_at: t(20),
            reason: "".into(),
            title: String::new(),
            public: false,
        },
        &actor(),
        t(0),
    )
    .await
    .unwrap();
    assert_eq!(
        s.maintenance_windows(t(1)).await.unwrap().len(),
        2,
        "active and upcoming"
    );
    assert_eq!(
        s.maintenance_windows(t(30)).await.unwrap().len(),
        1,
        "over ones are left out"
    );
    let ended = s
        .end_maintenance(w.id, &actor(), t(40))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.ended_at, Some(t(40)));
    assert!(!ended.is_active(t(50)));
    assert!(s.maintenance_windows(t(41)).await.unwrap().is_empty());
    assert!(
        s.end_maintenance(999_999, &actor(), t(41))
            .await
            .unwrap()
            .is_none()
    );
}

async fn unpaged_alerts_get_no_escalation(s: &dyn Store) {
    let mut ev = routed("quiet", vec![member("a", true, 0, None)]);
    ev.page = false;
    let id = s.ingest("prom", &src(), vec![ev], t(1)).await.unwrap()[0]
        .alert_id
        .unwrap();
    assert!(s.steps(id).await.unwrap().is_empty());
    assert!(
        s.claim_due_steps(t(100), TimeDelta::seconds(30), 10, "w")
            .await
            .unwrap()
            .is_empty()
    );
}

/// Plans every step alike (one page for `u1`, level 2 in five minutes) and
/// counts its calls.
struct CountingPlanner(std::sync::atomic::AtomicUsize);

impl StepPlanner for CountingPlanner {
    fn plan(&self, step: &ClaimedStep, now: DateTime<Utc>) -> StepDone {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        StepDone {
            next: Some(NextStep {
                level: step.level + 1,
                round: 0,
                due_at: now + TimeDelta::minutes(5),
            }),
            deliveries: vec![NewDelivery {
                user_id: "u1".into(),
                contact_id: "c1".into(),
                channel: "webhook".into(),
                address: "http://127.0.0.1:9/hook".into(),
                due_at: now,
            }],
            timeline: vec![(
                tocsin_domain::TimelineKind::Escalation,
                format!("level {} ran", step.level + 1),
            )],
            actor: Actor::new("system", "escalation"),
        }
    }
}

async fn first_levels_run_in_the_ingest_transaction(s: &dyn Store) {
    let planner = std::sync::Arc::new(CountingPlanner(Default::default()));
    s.run_first_levels(planner.clone());
    // A storm of 40 alerts in one request, and one whose first step is due
    // later (outside support hours).
    let mut evs: Vec<RoutedEvent> = (0..40)
        .map(|i| routed(&format!("storm-{i}"), vec![member("a", true, 0, None)]))
        .collect();
    let mut later = routed("later", vec![member("a", true, 0, None)]);
    later.first_step_at = Some(t(600));
    evs.push(later);
    let r = ingest(s, &evs, 1).await;
    assert_eq!(r.len(), 41);
    assert!(r[..40].iter().all(|x| x.first_level == Some(1)), "{r:?}");
    assert_eq!(r[40].first_level, None);
    // Planned once: the same policy, priority and time.
    assert_eq!(planner.0.load(std::sync::atomic::Ordering::SeqCst), 1);

    let id = r[0].alert_id.unwrap();
    let steps = step_states(s, id).await;
    assert_eq!(
        steps,
        [
            (0, "done".to_owned(), t(1)),
            (1, "pending".to_owned(), t(1) + TimeDelta::minutes(5))
        ]
    );
    let pages = s.deliveries(id).await.unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(
        (pages[0].user_id.as_str(), pages[0].status.as_str()),
        ("u1", "pending")
    );
    assert_eq!(
        pages[0].step_id,
        s.steps(id).await.unwrap().first().map(|x| x.id)
    );
    let kinds: Vec<String> = s
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["created", "note", "escalation"]);

    // The deferred alert waits for the worker, as without a planner.
    let deferred = r[40].alert_id.unwrap();
    let steps = s.steps(deferred).await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        (steps[0].status.as_str(), steps[0].due_at),
        ("pending", t(600))
    );
    assert!(s.deliveries(deferred).await.unwrap().is_empty());
    // Nothing is due for the worker now; the 40 pages wait for the dispatcher.
    assert!(
        s.claim_due_steps(t(2), TimeDelta::seconds(30), 100, "w")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.outbox_depth().await.unwrap(), 40);
    let bundles = s
        .claim_bundles(
            t(2),
            TimeDelta::seconds(30),
            10,
            TimeDelta::seconds(10),
            5,
            "d",
        )
        .await
        .unwrap();
    assert_eq!(bundles.len(), 1, "one contact, one bundle");
}

/// An event of service `checkout` that its `auto_incident_from` turns into
/// an incident.
fn auto(key: &str, sev: Severity) -> RoutedEvent {
    use tocsin_domain::incident::Impact;
    let mut e = routed(key, vec![member("a", true, 0, None)]);
    e.event.severity = sev;
    let impact = Impact::of_severity(sev);
    e.incident = Some(AutoIncident {
        service_id: "checkout".into(),
        impact,
        title: format!("Checkout: {impact}"),
        message: "We are investigating.".into(),
    });
    e
}

async fn open_incidents(s: &dyn Store) -> Vec<Incident> {
    s.incidents(&IncidentFilter {
        open: Some(true),
        limit: 100,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn alerts_open_one_incident_per_service_and_join_it(s: &dyn Store) {
    use tocsin_domain::incident::{Impact, IncidentStatus};
    let v0 = s.status_version().await.unwrap().version;
    let first = ingest(s, &[auto("disk", Severity::Sev2)], 1).await[0]
        .alert_id
        .unwrap();
    let open = open_incidents(s).await;
    assert_eq!(open.len(), 1, "{open:?}");
    let inc = &open[0];
    assert!(inc.auto_opened && !inc.held);
    assert_eq!(inc.opened_by, "source:prom");
    assert_eq!(
        (inc.severity, inc.status),
        (Severity::Sev2, IncidentStatus::Investigating)
    );
    assert_eq!(
        inc.services,
        vec![IncidentService {
            id: "checkout".into(),
            impact: Impact::Degraded
        }]
    );
    assert_eq!(inc.alert_ids, vec![first]);
    assert!(
        s.status_version().await.unwrap().version > v0,
        "the page's version moved"
    );
    let opened = s.incident_events(inc.id).await.unwrap();
    assert_eq!(opened[0].kind, "opened");
    assert!(opened[0].public);

    // A redelivery changes nothing.
    ingest(s, &[auto("disk", Severity::Sev2)], 2).await;
    assert_eq!(open_incidents(s).await, open);
    assert_eq!(s.incident_events(inc.id).await.unwrap().len(), opened.len());

    // Another alert of the service joins; a SEV0 one raises severity and impact.
    let second = ingest(s, &[auto("cpu", Severity::Sev0)], 3).await[0]
        .alert_id
        .unwrap();
    let now = open_incidents(s).await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].alert_ids, vec![first, second]);
    assert_eq!(now[0].severity, Severity::Sev0);
    assert_eq!(now[0].services[0].impact, Impact::MajorOutage);
    let kinds: Vec<String> = s
        .incident_events(inc.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["opened", "linked", "severity", "impact", "linked"]);
    assert_eq!(s.incidents_of_alert(second).await.unwrap(), vec![inc.id]);

    // A storm: 300 new alerts in one batch and 8 requests at once. Still
    // one incident, every alert linked once, one timeline entry a batch.
    let storm: Vec<RoutedEvent> = (0..300)
        .map(|i| auto(&format!("s{i}"), Severity::Sev1))
        .collect();
    ingest(s, &storm, 4).await;
    let actor = src();
    let reqs: Vec<Vec<RoutedEvent>> = (0..8)
        .map(|r| {
            (0..5)
                .map(|i| auto(&format!("r{r}-{i}"), Severity::Sev1))
                .collect()
        })
        .collect();
    let results = futures_util::future::join_all(
        reqs.into_iter()
            .map(|evs| s.ingest("prom", &actor, evs, t(5))),
    )
    .await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let now = open_incidents(s).await;
    assert_eq!(now.len(), 1, "one incident for the service");
    assert_eq!(now[0].alert_ids.len(), 2 + 300 + 40);
    let events = s.incident_events(inc.id).await.unwrap();
    let links = events.iter().filter(|e| e.kind == "linked").count();
    assert!(
        links <= 2 + 1 + 8,
        "one entry a batch, not an alert: {links}"
    );
    let storm_entry = events
        .iter()
        .find(|e| e.message.starts_with("linked 300 alerts"))
        .unwrap();
    assert!(
        storm_entry.message.contains("and 295 more"),
        "{}",
        storm_entry.message
    );

    // State history: degraded from t(1), major from t(3).
    let spans = s.service_spans(t(0)).await.unwrap();
    let got: Vec<(Impact, DateTime<Utc>, Option<DateTime<Utc>>)> = spans
        .iter()
        .map(|x| (x.span.impact, x.span.from, x.span.to))
        .collect();
    assert_eq!(
        got,
        vec![
            (Impact::Degraded, t(1), Some(t(3))),
            (Impact::MajorOutage, t(3), None)
        ]
    );

    // An alert in a maintenance window (no page) or of another service
    // opens nothing.
    let mut quiet = auto("quiet", Severity::Sev0);
    quiet.page = false;
    let mut other = routed("other", vec![member("a", true, 0, None)]);
    other.incident = None;
    ingest(s, &[quiet, other], 6).await;
    assert_eq!(open_incidents(s).await[0].alert_ids.len(), 342);

    // The audit log has the automatic opening.
    let audit = s
        .audit(&AuditFilter {
            kind: Some("incident".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.entries.last().unwrap().record.action, "open");
    assert!(
        audit
            .entries
            .iter()
            .any(|e| e.record.action == "link" && e.record.actor == "source:prom"),
        "joins are audited"
    );
}

async fn incidents_resolve_by_themselves_unless_a_person_spoke(s: &dyn Store) {
    use tocsin_domain::incident::IncidentStatus;
    let sys = Actor::new("system", "auto-resolve");
    let a = ingest(s, &[auto("a", Severity::Sev1)], 1).await[0]
        .alert_id
        .unwrap();
    let b = ingest(s, &[auto("b", Severity::Sev1)], 2).await[0]
        .alert_id
        .unwrap();
    let inc = open_incidents(s).await[0].clone();
    assert_eq!(inc.alert_ids, vec![a, b]);
    assert!(s.resolvable_incidents(10).await.unwrap().is_empty());
    s.transition(
        a,
        Transition::Resolve,
        &Actor::new("user:alice", "api"),
        t(3),
    )
    .await
    .unwrap();
    assert!(
        s.resolvable_incidents(10).await.unwrap().is_empty(),
        "b is open"
    );
    let mut resolved_b = routed("b", vec![member("a", false, 0, Some(4))]);
    resolved_b.incident = None;
    ingest(s, &[resolved_b], 4).await;
    assert_eq!(s.resolvable_incidents(10).await.unwrap(), vec![inc.id]);
    assert!(
        s.auto_resolve_incident(inc.id, "every linked alert resolved", &sys, t(5))
            .await
            .unwrap()
    );
    assert!(
        !s.auto_resolve_incident(inc.id, "again", &sys, t(5))
            .await
            .unwrap(),
        "once"
    );
    let done = s.incident(inc.id).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.resolved_at, done.resolved_by.as_deref()),
        (IncidentStatus::Resolved, Some(t(5)), Some("system"))
    );
    let last = s.incident_events(inc.id).await.unwrap().pop().unwrap();
    assert_eq!((last.kind.as_str(), last.public), ("resolved", true));
    assert!(
        s.service_spans(t(0))
            .await
            .unwrap()
            .iter()
            .all(|x| x.span.to.is_some()),
        "history closed"
    );

    // The service has no incident now: its next alert opens a new one.
    let c = ingest(s, &[auto("c", Severity::Sev1)], 6).await[0]
        .alert_id
        .unwrap();
    let next = open_incidents(s).await;
    assert_eq!(next.len(), 1);
    assert_ne!(next[0].id, inc.id);
    // A person's update holds it: resolving its alerts no longer resolves it.
    let note = IncidentNote {
        message: "Looking into it".into(),
        public: false,
        status: Some(IncidentStatus::Identified),
    };
    let held = s
        .post_incident_update(next[0].id, &note, &Actor::new("user:alice", "api"), t(7))
        .await
        .unwrap()
        .unwrap();
    assert!(held.held);
    assert_eq!(held.status, IncidentStatus::Identified);
    s.transition(
        c,
        Transition::Resolve,
        &Actor::new("user:alice", "api"),
        t(8),
    )
    .await
    .unwrap();
    assert!(s.resolvable_incidents(10).await.unwrap().is_empty());
    assert!(
        !s.auto_resolve_incident(next[0].id, "x", &sys, t(9))
            .await
            .unwrap()
    );
    let by_hand = s
        .resolve_incident(
            next[0].id,
            "Fixed",
            true,
            &Actor::new("user:alice", "api"),
            t(10),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_hand.status, IncidentStatus::Resolved);
    let again = s
        .resolve_incident(
            next[0].id,
            "Fixed",
            true,
            &Actor::new("user:alice", "api"),
            t(11),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    let late = s
        .post_incident_update(next[0].id, &note, &Actor::new("user:alice", "api"), t(12))
        .await;
    assert!(matches!(late, Err(StoreError::Conflict { .. })), "{late:?}");
}

async fn incidents_by_hand_updates_impacts_links_and_the_feed(s: &dyn Store) {
    use tocsin_domain::incident::{Impact, IncidentStatus};
    let alice = Actor::new("user:alice", "api");
    let alert = ingest(s, &[routed("x", vec![member("a", true, 0, None)])], 1).await[0]
        .alert_id
        .unwrap();
    let missing = s
        .open_incident(
            &NewIncident {
                title: "t".into(),
                severity: Severity::Sev2,
                status: IncidentStatus::Investigating,
                services: vec![],
                responders: vec![],
                message: "m".into(),
                public: false,
                alert_ids: vec![9999],
            },
            &alice,
            t(1),
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::Conflict { .. })),
        "{missing:?}"
    );
    assert!(open_incidents(s).await.is_empty(), "nothing was written");
    let v0 = s.status_version().await.unwrap().version;
    let inc = s
        .open_incident(
            &NewIncident {
                title: "Payments slow".into(),
                severity: Severity::Sev2,
                status: IncidentStatus::Investigating,
                services: vec![
                    IncidentService {
                        id: "checkout".into(),
                        impact: Impact::Degraded,
                    },
                    IncidentService {
                        id: "search".into(),
                        impact: Impact::PartialOutage,
                    },
                ],
                responders: vec!["alice".into()],
                message: "We are looking into slow payments.".into(),
                public: true,
                alert_ids: vec![alert],
            },
            &alice,
            t(2),
        )
        .await
        .unwrap();
    assert!(inc.held && !inc.auto_opened);
    assert_eq!(inc.alert_ids, vec![alert]);
    assert!(s.status_version().await.unwrap().version > v0);
    // New alerts of checkout join it: it is the service's current incident.
    let joined = ingest(s, &[auto("j", Severity::Sev3)], 3).await[0]
        .alert_id
        .unwrap();
    let now = s.incident(inc.id).await.unwrap().unwrap();
    assert_eq!(now.alert_ids, vec![alert, joined]);
    assert_eq!(
        now.services[0].impact,
        Impact::Degraded,
        "a held incident keeps its impact"
    );

    s.post_incident_update(
        inc.id,
        &IncidentNote {
            message: "internal note".into(),
            public: false,
            status: None,
        },
        &alice,
        t(4),
    )
    .await
    .unwrap();
    s.post_incident_update(
        inc.id,
        &IncidentNote {
            message: "Fix deployed".into(),
            public: true,
            status: Some(IncidentStatus::Monitoring),
        },
        &alice,
        t(5),
    )
    .await
    .unwrap();
    let changed = s
        .change_incident(
            inc.id,
            &IncidentChange {
                severity: Some(Severity::Sev1),
                services: Some(vec![IncidentService {
                    id: "checkout".into(),
                    impact: Impact::MajorOutage,
                }]),
                ..Default::default()
            },
            &alice,
            t(6),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.severity, Severity::Sev1);
    assert_eq!(
        changed.services,
        vec![IncidentService {
            id: "checkout".into(),
            impact: Impact::MajorOutage
        }]
    );
    s.link_incident_alert(inc.id, alert, false, &alice, t(7))
        .await
        .unwrap();
    let unlinked = s
        .link_incident_alert(inc.id, alert, false, &alice, t(7))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unlinked.alert_ids, vec![joined]);
    let kinds: Vec<(String, bool)> = s
        .incident_events(inc.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.public))
        .collect();
    let k = |k: &str, p: bool| (k.to_owned(), p);
    assert_eq!(
        kinds,
        vec![
            k("opened", true),
            k("linked", false),
            k("linked", false),
            k("update", false),
            k("update", true),
            k("severity", false),
            k("impact", false),
            k("unlinked", false)
        ]
    );
    type Row = (String, Impact, DateTime<Utc>, Option<DateTime<Utc>>);
    let spans: Vec<Row> = s
        .service_spans(t(0))
        .await
        .unwrap()
        .into_iter()
        .map(|x| (x.service_id, x.span.impact, x.span.from, x.span.to))
        .collect();
    assert_eq!(
        spans,
        vec![
            ("checkout".into(), Impact::Degraded, t(2), Some(t(6))),
            ("checkout".into(), Impact::MajorOutage, t(6), None),
            ("search".into(), Impact::PartialOutage, t(2), Some(t(6))),
        ]
    );
    let feed = s.public_incident_events(10).await.unwrap();
    let said: Vec<&str> = feed.iter().map(|e| e.event.message.as_str()).collect();
    assert_eq!(said, ["Fix deployed", "We are looking into slow payments."]);
    assert_eq!(feed[0].title, "Payments slow");
    assert_eq!(feed[0].event.status, IncidentStatus::Monitoring);
    let recent = s.recent_incidents(t(0)).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].1.len(), 8);
    assert_eq!(
        s.incident_titles(&[inc.id]).await.unwrap()[&inc.id],
        "Payments slow"
    );
    let actions: Vec<String> = s
        .audit(&AuditFilter {
            kind: Some("incident".into()),
            limit: 20,
            ..Default::default()
        })
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.record.action)
        .collect();
    assert_eq!(
        actions,
        ["unlink", "change", "update", "update", "link", "open"]
    );
    // Resolving ends the service's state and hands "current" on.
    s.resolve_incident(inc.id, "Resolved", true, &alice, t(8))
        .await
        .unwrap();
    assert!(open_incidents(s).await.is_empty());
    let listed = s
        .incidents(&IncidentFilter {
            open: Some(false),
            service: Some("checkout".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

async fn chart_fetches_take_turns_and_share_the_answer(s: &dyn Store) {
    let minute = TimeDelta::minutes(1);
    assert_eq!(s.chart("c1").await.unwrap(), None);
    assert!(
        s.claim_chart_fetch("c1", t(0), minute).await.unwrap(),
        "the first asks"
    );
    assert!(
        !s.claim_chart_fetch("c1", t(10), minute).await.unwrap(),
        "not again within the minute"
    );
    assert_eq!(
        s.chart("c1").await.unwrap(),
        Some((t(0), String::new())),
        "fetch under way"
    );
    s.store_chart("c1", "{\"Ok\":[]}").await.unwrap();
    assert_eq!(
        s.chart("c1").await.unwrap(),
        Some((t(0), "{\"Ok\":[]}".to_owned()))
    );
    assert!(
        s.claim_chart_fetch("c1", t(60), minute).await.unwrap(),
        "a minute on, the next turn"
    );
    assert_eq!(s.chart("c1").await.unwrap().unwrap().0, t(60));
    assert!(
        s.claim_chart_fetch("c2", t(10), minute).await.unwrap(),
        "charts are apart"
    );
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let Some(db) = open().await else { return };
                        super::$name(db.store.as_ref()).await;
                    }
                };
            }
            async fn open() -> Option<Db> {
                suite!(@open $backend)
            }
            case!(create_dedupe_update_resolve);
            case!(first_levels_run_in_the_ingest_transaction);
            case!(resolve_for_unknown_key_is_ignored);
            case!(several_events_in_one_batch);
            case!(accept_resolve_comment);
            case!(list_filters_and_pages);
            case!(catalog_writes_are_versioned_and_atomic);
            case!(source_keys);
            case!(concurrent_deliveries_open_one_alert);
            case!(retention_prunes_old_resolved_alerts);
            case!(one_key_several_times_in_one_batch);
            case!(escalation_steps_are_durable_claimed_and_completed_once);
            case!(source_resolve_stops_escalation);
            case!(workers_claim_disjoint_steps);
            case!(bundling_gates_each_contact);
            case!(open_alert_by_key_and_change_events);
            case!(outbox_deliveries_retry_fail_and_stop);
            case!(unaccept_and_reassign_restart_escalation);
            case!(maintenance_windows_open_list_and_end);
            case!(audit_log_appends_filters_pages_and_prunes);
            case!(personal_tokens_are_digests_revoked_once);
            case!(passwords_sessions_failures_and_setup_links);
            case!(alerts_changed_since_follows_updates);
            case!(text_with_a_nul_character_is_refused);
            case!(unpaged_alerts_get_no_escalation);
            case!(a_storm_on_one_policy_does_not_hold_back_another);
            case!(alerts_open_one_incident_per_service_and_join_it);
            case!(incidents_resolve_by_themselves_unless_a_person_spoke);
            case!(incidents_by_hand_updates_impacts_links_and_the_feed);
            case!(chart_fetches_take_turns_and_share_the_answer);
        }
    };
    (@open sqlite) => { Some(sqlite().await) };
    (@open postgres) => { postgres().await };
}

suite!(sqlite);
suite!(postgres);

#[tokio::test]
async fn backends_report_their_names() {
    assert_eq!(sqlite().await.store.backend(), "sqlite");
    if let Some(db) = postgres().await {
        assert_eq!(db.store.backend(), "postgres");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_skip_locked_rows_on_postgres() {
    let Some(db) = postgres().await else { return };
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(db.store);
    let evs: Vec<RoutedEvent> = (0..40)
        .map(|i| routed(&format!("c{i}"), vec![member("a", true, 0, None)]))
        .collect();
    store.ingest("prom", &src(), evs, t(1)).await.unwrap();
    let mut handles = Vec::new();
    for w in 0..4 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let c = s
                    .claim_due_steps(t(2), TimeDelta::seconds(30), 3, &format!("w{w}"))
                    .await
                    .unwrap();
                if c.is_empty() {
                    break mine;
                }
                mine.extend(c.into_iter().map(|c| c.id));
            }
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!((n, all.len()), (40, 40), "every step claimed exactly once");
}

#[tokio::test]
async fn concurrent_futures_are_really_concurrent_on_postgres() {
    // The same race as `concurrent_deliveries_open_one_alert`, each
    // request on a task of its own.
    let Some(db) = postgres().await else { return };
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(db.store);
    let ev = routed("race2", vec![member("a", true, 0, None)]);
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (s, ev) = (store.clone(), ev.clone());
        handles.push(tokio::spawn(async move {
            s.ingest("prom", &src(), vec![ev], t(1)).await.unwrap()
        }));
    }
    let mut created = 0;
    for h in handles {
        if h.await.unwrap()[0].outcome == IngestOutcome::Created {
            created += 1;
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn letting_a_gate_go_waits_for_a_writer_paging_its_contact_on_postgres() {
    use sqlx::Connection as _;
    let Some(url) = postgres_url().await else {
        return;
    };
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(connect(&url, 4).await.unwrap());
    store.run_first_levels(std::sync::Arc::new(CountingPlanner(Default::default())));
    let first = ingest(
        store.as_ref(),
        &[routed("a", vec![member("a", true, 0, None)])],
        1,
    )
    .await[0]
        .alert_id
        .unwrap();
    let window = TimeDelta::seconds(10);
    let mut claimed = store
        .claim_bundles(t(2), TimeDelta::seconds(30), 10, window, 5, "d1")
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let bundle = claimed.remove(0);

    // Meanwhile another writer queues a page for the same contact: it holds
    // the contact's gate as ingest does when the gate is due in time (key
    // share) and has written its page, but not committed yet.
    let mut writer = sqlx::PgConnection::connect(&url).await.unwrap();
    for sql in [
        "BEGIN".to_owned(),
        "SELECT user_id FROM contact_gates WHERE user_id = 'u1' AND contact_id = 'c1' FOR KEY SHARE".to_owned(),
        format!(
            "INSERT INTO outbox (alert_id, step_id, user_id, contact_id, channel, address, due_at, status, next_attempt_at, created_at) VALUES ({first}, NULL, 'u1', 'c1', 'webhook', 'http://127.0.0.1:9/hook', {at}, 'pending', {at}, {at})",
            at = t(3).timestamp_millis()
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut writer)
            .await
            .unwrap();
    }

    // The dispatcher records its message and lets the contact go: it waits
    // for the writer, so that it sees the page the writer queued.
    let release = tokio::spawn({
        let store = store.clone();
        async move {
            let sent = DeliveryOutcome::Sent {
                detail: "200".into(),
            };
            store.finish_bundle(&bundle, sent, t(3)).await.unwrap()
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !release.is_finished(),
        "letting the gate go must wait for the writer that holds it"
    );
    sqlx::raw_sql("COMMIT").execute(&mut writer).await.unwrap();
    assert_eq!(release.await.unwrap(), 1, "the bundle's one page recorded");

    // The page queued meanwhile is not stranded behind a gate with no due
    // time: once the window is over the contact is due again, for it.
    let next = store
        .claim_bundles(t(14), TimeDelta::seconds(30), 10, window, 5, "d2")
        .await
        .unwrap();
    assert_eq!(next.len(), 1, "the contact is due again for the new page");
    assert_eq!(next[0].pages, 1);
    let pages = store.deliveries(first).await.unwrap();
    assert_eq!(
        (pages.len(), next[0].first_page),
        (2, pages[1].id),
        "the bundle is the page queued meanwhile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dispatchers_open_a_contact_gate_once_on_postgres() {
    let Some(db) = postgres().await else { return };
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(db.store);
    let evs: Vec<RoutedEvent> = (0..40)
        .map(|i| routed(&format!("g{i}"), vec![member("a", true, 0, None)]))
        .collect();
    store.ingest("prom", &src(), evs, t(0)).await.unwrap();
    for step in store
        .claim_due_steps(t(0), TimeDelta::seconds(30), 100, "w")
        .await
        .unwrap()
    {
        store
            .complete_step(&step, done(None, vec![mail("alice", 0)], "l1"), t(0))
            .await
            .unwrap();
    }
    // Four dispatchers claim at the same moment: only one of them may
    // message alice now, and it takes all 40 of her pages as one bundle.
    let mut handles = Vec::new();
    for w in 0..4 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.claim_bundles(
                t(1),
                TimeDelta::seconds(30),
                3,
                TimeDelta::seconds(10),
                10,
                &format!("d{w}"),
            )
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.pages)
            .collect::<Vec<i64>>()
        }));
    }
    let mut bundles = Vec::new();
    for h in handles {
        bundles.extend(h.await.unwrap());
    }
    assert_eq!(bundles, [40], "one bundle of every page, not several");
    assert!(
        store
            .claim_bundles(
                t(9),
                TimeDelta::seconds(30),
                3,
                TimeDelta::seconds(10),
                10,
                "e"
            )
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_nodes_are_woken_when_work_is_queued_on_postgres() {
    let Some(db) = postgres().await else { return };
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(db.store);
    // Another node's listener: the same database, its own connection.
    let mut wakes = store.listen().await.unwrap().expect("PostgreSQL listens");
    // Ingest that creates an alert wakes the escalation workers…
    store
        .ingest(
            "prom",
            &src(),
            vec![routed("w1", vec![member("a", true, 0, None)])],
            t(0),
        )
        .await
        .unwrap();
    let w = tokio::time::timeout(std::time::Duration::from_secs(5), wakes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.topic, tocsin_store::WakeTopic::Escalate);
    assert!(
        (Utc::now() - w.sent_at).num_seconds().abs() < 10,
        "sent just now"
    );
    // …and a step that queues notifications wakes the dispatchers.
    let step = store
        .claim_due_steps(t(1), TimeDelta::seconds(30), 10, "w")
        .await
        .unwrap()
        .remove(0);
    store
        .complete_step(&step, done(None, vec![mail("alice", 1)], "l1"), t(1))
        .await
        .unwrap();
    let w = tokio::time::timeout(std::time::Duration::from_secs(5), wakes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.topic, tocsin_store::WakeTopic::Dispatch);
    // A duplicate delivery queues nothing and wakes nobody.
    store
        .ingest(
            "prom",
            &src(),
            vec![routed("w1", vec![member("a", true, 0, None)])],
            t(2),
        )
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), wakes.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sqlite_has_no_other_nodes_to_hear() {
    let db = sqlite().await;
    assert!(db.store.listen().await.unwrap().is_none());
}
