//! The drop-in endpoints with the real Alertmanager (Debian) as sender:
//! `pagerduty_configs` whose `url` points at Tocsin's `/v2/enqueue`, and
//! `opsgenie_configs` whose `api_url` points at Tocsin. A firing rule
//! creates one alert per integration, repeats change nothing, and the
//! resolve resolves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const PD_KEY: &str = "e2e-pd-routing-key-0123456789ab";
const OG_KEY: &str = "e2e-og-genie-key-0123456789abcd";
const TOKEN: &str = "e2e-senders-token-0123456789";

async fn alerts(base: &str, source: &str) -> Vec<Value> {
    api_get(base, TOKEN, &format!("/api/v1/alerts?source={source}")).await["alerts"]
        .as_array()
        .unwrap()
        .clone()
}

async fn until(
    base: &str,
    what: &str,
    pred: impl Fn(&[Value], &[Value]) -> bool,
) -> (Vec<Value>, Vec<Value>) {
    wait_for(what, Duration::from_secs(90), || async {
        let (pd, og) = (alerts(base, "pd").await, alerts(base, "og").await);
        pred(&pd, &og).then_some((pd, og))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_pagerduty_and_opsgenie_receivers_into_tocsin() {
    let dir = scratch("senders");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = dir.join("tocsin.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "sqlite://{db}"}}
api_tokens: [{{name: t, token: {TOKEN}, role: admin}}]
users:
  - {{id: alice, contacts: [{{id: mail, type: email, address: alice@example.com}}], notify: {{high: [{{contact: mail, after: 0m}}]}}}}
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:alice"], escalate_after: 1h}}]}}
sources:
  - {{id: pd, type: pagerduty, escalation_policy: p, key: {PD_KEY}}}
  - {{id: og, type: opsgenie, escalation_policy: p, key: {OG_KEY}}}
"#,
            db = dir.join("t.db").display()
        ),
    )
    .unwrap();
    let _tocsin = serve(&dir, &cfg, 0);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
    let monitoring = Monitoring::start(
        &dir,
        &format!(
            r#"
  - name: tocsin
    pagerduty_configs:
      - routing_key: {PD_KEY}
        url: {base}/v2/enqueue
        send_resolved: true
    opsgenie_configs:
      - api_key: {OG_KEY}
        api_url: {base}/
        send_resolved: true
"#
        ),
    )
    .await;

    // Firing: one alert from each integration.
    monitoring.set("node-1", 1.0);
    let (pd, og) = until(&base, "an alert from each", |pd, og| {
        pd.len() == 1 && og.len() == 1
    })
    .await;
    let p = &pd[0];
    assert_eq!(p["status"], "pending");
    assert_eq!(
        p["dedup_key"].as_str().unwrap().len(),
        64,
        "sha256(groupKey)"
    );
    assert!(
        p["summary"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING:1] HarnessDown"),
        "{p}"
    );
    assert_eq!(
        p["severity"], "SEV1",
        "Alertmanager sends severity error by default"
    );
    assert_eq!(p["labels"]["source"], "Alertmanager");
    let o = &og[0];
    assert_eq!(o["status"], "pending");
    assert!(
        o["summary"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING:1] HarnessDown"),
        "{o}"
    );
    assert_eq!(o["severity"], "SEV2", "Opsgenie's default priority P3");
    assert_eq!(
        o["labels"]["alertname"], "HarnessDown",
        "commonLabels become details"
    );

    // Repeats (repeat_interval 4 s) change nothing but last seen.
    let (pd, og) = until(&base, "three deliveries each", |pd, og| {
        pd.first()
            .is_some_and(|a| a["seen_count"].as_i64().unwrap() >= 3)
            && og
                .first()
                .is_some_and(|a| a["seen_count"].as_i64().unwrap() >= 3)
    })
    .await;
    assert_eq!((pd.len(), og.len()), (1, 1));
    for a in [&pd[0], &og[0]] {
        let shown = api_get(&base, TOKEN, &format!("/api/v1/alerts/{}", a["id"])).await;
        let updates = shown["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "updated")
            .count();
        assert_eq!(updates, 0, "repeats are not updates: {shown}");
    }

    // Resolved: both resolve.
    monitoring.set("node-1", 0.0);
    let (pd, og) = until(&base, "both resolved", |pd, og| {
        pd.first().is_some_and(|a| a["status"] == "resolved")
            && og.first().is_some_and(|a| a["status"] == "resolved")
    })
    .await;
    assert_eq!((pd.len(), og.len()), (1, 1));
    assert_eq!(pd[0]["resolved_by"], "source:pd");
    assert_eq!(og[0]["resolved_by"], "source:og");
    assert!(
        pd[0]["summary"].as_str().unwrap().starts_with("[FIRING:1]"),
        "a resolve keeps the summary"
    );
    drop(monitoring);
    let _ = std::fs::remove_dir_all(&dir);
}
