//! The mapping of SPEC §2.2 on bodies a real Alertmanager 0.25 sent
//! (fixtures/alertmanager) and on hand-made bodies for each rule.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use tocsin_domain::{Grouping, MemberStatus, Priority, Severity, SeverityMap};
use tocsin_wire::Templates;
use tocsin_wire::alertmanager::{PrometheusSettings, map, parse};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../fixtures/alertmanager/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 6, 0, 0).unwrap()
}

fn group() -> PrometheusSettings {
    PrometheusSettings::default()
}

fn per_alert() -> PrometheusSettings {
    PrometheusSettings {
        grouping: Grouping::Alert,
        ..Default::default()
    }
}

fn one(body: &[u8], s: &PrometheusSettings) -> tocsin_domain::AlertEvent {
    let mut evs = map(&parse(body).unwrap(), s, now()).unwrap();
    assert_eq!(evs.len(), 1);
    evs.remove(0)
}

#[test]
fn firing_single_maps_every_field() {
    let ev = one(&fixture("firing-single.json"), &group());
    assert_eq!(
        ev.dedup_key.as_str(),
        r#"{}:{alertname="HarnessConditionFiring", cluster="harness", service="checkout"}"#
    );
    assert!(!ev.resolved);
    assert_eq!(ev.summary, "harness_condition is 1 on node-1");
    assert!(ev.details.starts_with(
        "The harness condition for service checkout on node node-1 has value 1 (fires while > 0)."
    ));
    assert!(ev.details.contains("Alerts: 1 firing, 0 resolved"));
    assert_eq!(ev.severity, Severity::Sev0);
    assert_eq!(ev.priority, Priority::High);
    assert_eq!(
        ev.routing.routing_key.as_deref(),
        Some("harness-routing-key")
    );
    assert_eq!(ev.routing.service_id.as_deref(), Some("harness-service"));
    assert_eq!(ev.labels.get("node").map(String::as_str), Some("node-1"));
    let hrefs: Vec<(&str, &str)> = ev
        .links
        .iter()
        .map(|l| (l.href.as_str(), l.text.as_str()))
        .collect();
    assert_eq!(
        hrefs,
        vec![
            (
                "http://127.0.0.1:19090/graph?g0.expr=harness_condition",
                "http://127.0.0.1:19090/graph?g0.expr=harness_condition"
            ),
            (
                "http://127.0.0.1:19090/graph?g0.expr=harness_condition+%3E+0&g0.tab=1",
                "Source"
            ),
        ]
    );
    assert_eq!(
        ev.detected_at,
        Utc.with_ymd_and_hms(2026, 11, 21, 5, 2, 34).unwrap()
            + chrono::TimeDelta::milliseconds(226)
    );
    assert_eq!(ev.resolved_at, None);
    assert_eq!(ev.members.len(), 1);
    assert_eq!(ev.members[0].fingerprint, "b1cebf3c7f2d2fa8");
    assert_eq!(ev.members[0].ends_at, None, "Go's zero time means no end");
}

#[test]
fn firing_multi_summarises_the_group() {
    let ev = one(&fixture("firing-multi.json"), &group());
    assert_eq!(ev.summary, "HarnessConditionFiring: 3 firing");
    assert_eq!(ev.members.len(), 3);
    assert!(
        !ev.labels.contains_key("node"),
        "node differs, so it is not common"
    );
    assert!(ev.all_labels.contains(&("node".into(), "node-3".into())));
    assert_eq!(ev.detected_at.timestamp_millis() % 1000, 226);
    assert_eq!(
        ev.detected_at,
        Utc.with_ymd_and_hms(2026, 11, 21, 5, 2, 34).unwrap()
            + chrono::TimeDelta::milliseconds(226)
    );
}

#[test]
fn mixed_reports_which_fire_and_which_resolved() {
    let ev = one(&fixture("mixed.json"), &group());
    assert!(!ev.resolved);
    assert_eq!(ev.summary, "HarnessConditionFiring: 2 firing");
    let states: Vec<(&str, MemberStatus)> = ev
        .members
        .iter()
        .map(|m| (m.fingerprint.as_str(), m.status))
        .collect();
    assert_eq!(
        states,
        vec![
            ("b1cebf3c7f2d2fa8", MemberStatus::Firing),
            ("de5ee615957b207d", MemberStatus::Resolved),
            ("f1e58192cea120a6", MemberStatus::Firing),
        ]
    );
    assert!(ev.details.contains("Alerts: 2 firing, 1 resolved"));
    assert_eq!(
        ev.resolved_at.map(|t| t.to_rfc3339()),
        Some("2026-11-21T05:02:41.226+00:00".into())
    );
}

#[test]
fn resolved_takes_latest_end() {
    let ev = one(&fixture("resolved.json"), &group());
    assert!(ev.resolved);
    assert!(!ev.any_firing());
    assert_eq!(
        ev.resolved_at.map(|t| t.to_rfc3339()),
        Some("2026-11-21T05:02:43.226+00:00".into())
    );
    // No routing from resolved alerts: custom labels count only on firing ones.
    assert_eq!(ev.routing.routing_key, None);
}

#[test]
fn per_alert_grouping_gives_one_event_per_alert() {
    let evs = map(&parse(&fixture("mixed.json")).unwrap(), &per_alert(), now()).unwrap();
    let keys: Vec<(&str, bool)> = evs
        .iter()
        .map(|e| (e.dedup_key.as_str(), e.resolved))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("b1cebf3c7f2d2fa8", false),
            ("de5ee615957b207d", true),
            ("f1e58192cea120a6", false)
        ]
    );
    assert_eq!(evs[2].summary, "harness_condition is 3 on node-3");
}

#[test]
fn api_alerts_keep_html_and_common_summary() {
    let ev = one(&fixture("api-firing.json"), &group());
    assert_eq!(
        ev.summary,
        "HarnessApiAlert: 2 firing - Payments API errors above 5% on {{instance}}"
    );
    assert!(ev.details.contains("<b>HTML</b> & quotes \" survive."));
    assert_eq!(ev.links.len(), 1, "one generatorURL shared by both");
    let resolved = one(&fixture("api-resolved.json"), &group());
    assert!(resolved.resolved);
}

#[test]
fn truncated_and_watchdog_bodies_parse() {
    let ev = one(&fixture("truncated.json"), &group());
    assert_eq!(ev.members.len(), 2);
    assert!(ev.links.is_empty(), "empty generatorURL is no link");
    let ev = one(&fixture("watchdog.json"), &group());
    assert_eq!(
        ev.severity,
        Severity::Sev2,
        "severity `none` is unmapped: default"
    );
    assert_eq!(ev.priority, Priority::Low);
}

fn body(alerts: Vec<Value>) -> Vec<u8> {
    let status = if alerts.iter().any(|a| a["status"] == "firing") {
        "firing"
    } else {
        "resolved"
    };
    serde_json::to_vec(&json!({
        "version": "4", "groupKey": "{}:{alertname=\"X\"}", "status": status, "receiver": "r",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "truncatedAlerts": 0, "alerts": alerts,
        "notification_reason": "first notification", "routeLabels": {"a": "b"}
    }))
    .unwrap()
}

fn alert(status: &str, labels: Value, annotations: Value) -> Value {
    let ends = if status == "firing" {
        "0001-01-01T00:00:00Z"
    } else {
        "2026-01-01T00:10:00Z"
    };
    json!({"status": status, "labels": labels, "annotations": annotations,
           "startsAt": "2026-01-01T00:00:00Z", "endsAt": ends, "generatorURL": "", "fingerprint": labels.to_string()})
}

#[test]
fn summary_falls_back_to_alertname_and_appends_gcp_project() {
    let ev = one(
        &body(vec![alert(
            "firing",
            json!({"alertname": "Down", "gcp_project": "shop-prod"}),
            json!({}),
        )]),
        &group(),
    );
    assert_eq!(ev.summary, "Down [shop-prod]");
    // gcp_project only counts on firing alerts.
    let ev = one(
        &body(vec![
            alert("firing", json!({"alertname": "Down", "i": "1"}), json!({})),
            alert(
                "resolved",
                json!({"alertname": "Down", "i": "2", "gcp_project": "p"}),
                json!({}),
            ),
        ]),
        &group(),
    );
    assert_eq!(ev.summary, "Down");
}

#[test]
fn severity_map_default_and_group_maximum() {
    let s = PrometheusSettings {
        severity_map: SeverityMap::new(
            &BTreeMap::from([("page".to_owned(), Severity::Sev1)]),
            Severity::Sev3,
        ),
        high_priority_from: Some(Severity::Sev2),
        ..Default::default()
    };
    let ev = one(
        &body(vec![
            alert(
                "firing",
                json!({"alertname": "A", "severity": "info"}),
                json!({}),
            ),
            alert(
                "firing",
                json!({"alertname": "A", "severity": "page"}),
                json!({}),
            ),
            alert(
                "resolved",
                json!({"alertname": "A", "severity": "critical"}),
                json!({}),
            ),
        ]),
        &s,
    );
    assert_eq!(
        ev.severity,
        Severity::Sev1,
        "most severe firing; resolved ones do not count"
    );
    assert_eq!(ev.priority, Priority::High);
    let ev = one(
        &body(vec![alert("firing", json!({"alertname": "A"}), json!({}))]),
        &s,
    );
    assert_eq!(
        ev.severity,
        Severity::Sev3,
        "missing severity takes default_severity"
    );
    assert_eq!(ev.priority, Priority::Low);
    let ev = one(
        &body(vec![alert(
            "firing",
            json!({"alertname": "A", "severity": "bogus"}),
            json!({}),
        )]),
        &s,
    );
    assert_eq!(
        ev.severity,
        Severity::Sev3,
        "unmapped severity takes default_severity"
    );
}

#[test]
fn priority_label_overrides() {
    let ev = one(
        &body(vec![alert(
            "firing",
            json!({"alertname": "A", "severity": "critical", "priority": "low"}),
            json!({}),
        )]),
        &group(),
    );
    assert_eq!((ev.severity, ev.priority), (Severity::Sev0, Priority::Low));
    let ev = one(
        &body(vec![alert(
            "firing",
            json!({"alertname": "A", "severity": "info", "priority": "HIGH"}),
            json!({}),
        )]),
        &group(),
    );
    assert_eq!((ev.severity, ev.priority), (Severity::Sev4, Priority::High));
}

#[test]
fn routing_prefers_first_firing_routing_key_then_service_id() {
    let ev = one(
        &body(vec![
            alert(
                "resolved",
                json!({"alertname": "A", "n": "0", "routing_key": "ignored"}),
                json!({}),
            ),
            alert(
                "firing",
                json!({"alertname": "A", "n": "1", "service_id": "svc"}),
                json!({}),
            ),
            alert(
                "firing",
                json!({"alertname": "A", "n": "2", "routing_key": "rk2"}),
                json!({}),
            ),
            alert(
                "firing",
                json!({"alertname": "A", "n": "3", "ilert_routingkey": "rk3"}),
                json!({}),
            ),
        ]),
        &group(),
    );
    assert_eq!(ev.routing.routing_key.as_deref(), Some("rk2"));
    assert_eq!(ev.routing.service_id.as_deref(), Some("svc"));
}

#[test]
fn links_from_labels_and_annotations() {
    let ev = one(
        &body(vec![alert(
            "firing",
            json!({"alertname": "A", "url": "https://grafana/d/1", "urlLabel": "Grafana"}),
            json!({"runbook_url": "https://runbooks/a", "dashboard_url": "https://dash/a"}),
        )]),
        &group(),
    );
    let links: Vec<(String, String)> = ev.links.into_iter().map(|l| (l.href, l.text)).collect();
    assert_eq!(
        links,
        vec![
            ("https://grafana/d/1".into(), "Grafana".into()),
            ("https://runbooks/a".into(), "Runbook".into()),
            ("https://dash/a".into(), "Dashboard".into()),
        ]
    );
}

#[test]
fn missing_fingerprint_uses_a_stable_label_hash() {
    let mut a = alert("firing", json!({"alertname": "A", "x": "1"}), json!({}));
    a.as_object_mut().unwrap().remove("fingerprint");
    let evs = map(&parse(&body(vec![a.clone()])).unwrap(), &per_alert(), now()).unwrap();
    let again = map(&parse(&body(vec![a])).unwrap(), &per_alert(), now()).unwrap();
    assert_eq!(evs[0].dedup_key, again[0].dedup_key);
    assert_eq!(evs[0].dedup_key.as_str().len(), 16);
}

#[test]
fn templates_render_and_fall_back_with_a_note() {
    let s = PrometheusSettings {
        templates: Some(
            Templates::compile(
                Some("{{ commonLabels.alertname }} x{{ alerts|length }} ({{ status }})"),
                Some("{{ externalURL }}"),
            )
            .unwrap(),
        ),
        ..Default::default()
    };
    let ev = one(&fixture("firing-multi.json"), &s);
    assert_eq!(ev.summary, "HarnessConditionFiring x3 (firing)");
    assert_eq!(ev.details, "http://127.0.0.1:19093");
    assert!(ev.notes.is_empty());

    let s = PrometheusSettings {
        templates: Some(Templates::compile(Some("{{ 1 / 0 }}"), None).unwrap()),
        ..Default::default()
    };
    let ev = one(&fixture("firing-single.json"), &s);
    assert_eq!(ev.summary, "harness_condition is 1 on node-1");
    assert!(
        ev.notes[0].starts_with("summary template failed"),
        "{:?}",
        ev.notes
    );
}

#[test]
fn bad_bodies_name_the_field() {
    let err = |b: &[u8]| parse(b).map(|_| ()).unwrap_err();
    assert_eq!(err(b"{").field, "");
    let e = err(br#"{"status":"firing"}"#);
    assert!(e.message.contains("missing field `alerts`"), "{e}");
    let e = err(
        br#"{"status":"firing","alerts":[{"status":"firing","labels":{},"startsAt":"yesterday"}]}"#,
    );
    assert_eq!(e.field, "alerts[0].startsAt");
    let e = err(br#"{"status":"burning","alerts":[]}"#);
    assert_eq!(e.field, "status");
    let e = err(br#"{"status":"resolved","alerts":[{"status":"resolved","labels":{},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}"#);
    assert_eq!(e.field, "alerts[0].endsAt");
    let e = err(br#"{"status":"firing","alerts":[{"status":"firing","labels":{"a":1},"startsAt":"2026-01-01T00:00:00Z"}]}"#);
    assert_eq!(e.field, "alerts[0].labels.a");
    let hook = parse(br#"{"status":"firing","alerts":[{"status":"firing","labels":{},"startsAt":"2026-01-01T00:00:00Z"}]}"#).unwrap();
    let e = map(&hook, &group(), now()).unwrap_err();
    assert_eq!(e.field, "groupKey");
    let hook = parse(br#"{"status":"firing","groupKey":"g","alerts":[]}"#).unwrap();
    assert_eq!(map(&hook, &group(), now()).unwrap_err().field, "alerts");
}
