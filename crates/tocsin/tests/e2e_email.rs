//! Email end to end: an Alertmanager webhook → the escalation engine → the
//! outbox → a real SMTP server process (aiosmtpd), which is down at first
//! (the attempt fails and is retried) and then up (the message arrives).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;

const KEY: &str = "mail-key-0123456789abcdef01";
const TOKEN: &str = "mail-token-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_to_email_through_a_real_smtp_server_with_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (port, smtp_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let cfg = dir.path().join("tocsin.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "sqlite://{db}"}}
api_tokens: [{{name: t, token: {TOKEN}, role: admin}}]
providers:
  smtp: {{host: 127.0.0.1, port: {smtp_port}, from: "Tocsin <tocsin@example.com>", tls: none}}
users:
  - {{id: alice, contacts: [{{id: mail, type: email, address: alice@example.com}}], notify: {{high: [{{contact: mail, after: 0m}}]}}}}
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:alice"], escalate_after: 1h}}]}}
sources: [{{id: am, type: prometheus, escalation_policy: p, key: {KEY}}}]
"#,
            db = dir.path().join("t.db").display()
        ),
    )
    .unwrap();
    let _tocsin = serve(dir.path(), &cfg, 0);
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;

    let id = post_fixture(&base, KEY, "firing-single.json").await;
    let alert = || async { api_get(&base, TOKEN, &format!("/api/v1/alerts/{id}")).await };

    // The SMTP server is down: the first attempt fails and is scheduled again.
    let a = wait_for(
        "a failed first attempt",
        Duration::from_secs(10),
        || async {
            let a = alert().await;
            (a["notifications"][0]["attempts"] == 1).then_some(a)
        },
    )
    .await;
    assert_eq!(a["notifications"][0]["status"], "pending");
    assert!(
        a["notifications"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("SMTP"),
        "{a}"
    );

    // Up it comes; the retry (10 s after the failure) delivers.
    let _smtp = smtp_server(dir.path(), smtp_port);
    let mail = wait_for("the email", Duration::from_secs(30), || async {
        delivered(dir.path()).into_iter().next()
    })
    .await;
    assert!(mail.contains("To: alice@example.com"), "{mail}");
    assert!(mail.contains("From: Tocsin <tocsin@example.com>"), "{mail}");
    assert!(
        mail.contains(&format!(
            "Subject: [Tocsin] SEV0 #{id}: harness_condition is 1 on node-1"
        )),
        "{mail}"
    );
    assert!(
        mail.contains(&format!("Alert: {base}/api/v1/alerts/{id}")),
        "{mail}"
    );
    assert!(mail.contains("Severity: SEV0 (high priority)"), "{mail}");

    let a = wait_for("the delivery recorded", Duration::from_secs(5), || async {
        let a = alert().await;
        (a["notifications"][0]["status"] == "sent").then_some(a)
    })
    .await;
    assert_eq!(a["notifications"][0]["attempts"], 2);
    let notes: Vec<&str> = a["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "notification")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("attempt 2 to alice by email (contact `mail`): delivered (250")),
        "{notes:?}"
    );
    assert_eq!(delivered(dir.path()).len(), 1, "exactly one email");

    // Follow the email's accept link: the GET only confirms, the POST acts.
    let body = decode_body(&mail);
    let accept = body
        .lines()
        .find_map(|l| l.strip_prefix("Accept: "))
        .unwrap_or_else(|| panic!("no accept link in\n{body}"))
        .trim()
        .to_owned();
    assert!(
        accept.starts_with(&format!("{base}/act/accept?alert={id}&user=alice&exp=")),
        "{accept}"
    );
    assert!(body.lines().any(|l| l.starts_with("Resolve: ")), "{body}");
    let page = http()
        .get(&accept)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert_eq!(alert().await["status"], "pending", "a GET never acts");
    let res = http().post(&accept).send().await.unwrap();
    assert!(res.status().is_success());
    let a = alert().await;
    assert_eq!(
        (a["status"].as_str(), a["accepted_by"].as_str()),
        (Some("accepted"), Some("user:alice"))
    );

    let metrics = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tocsin_deliveries_total{channel="email",outcome="sent"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tocsin_deliveries_total{channel="email",outcome="retry"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("tocsin_outbox_depth 0"), "{metrics}");
}
