//! Drop-in, proven with the senders' own client libraries: PyPI `pagerduty`
//! and `pdpyras`, `opsgenie-sdk`, and npm `@pagerduty/pdjs`, against a
//! `tocsin serve` that serves HTTPS (`server.tls`) with a self-signed
//! certificate this test makes. PagerDuty's current libraries refuse plain
//! http, so TLS is what lets them point at Tocsin at all.
//!
//! The libraries live in folders the test script fills
//! (`TOCSIN_TEST_CLIENTS`: a Python venv in `venv/`, npm packages in
//! `node/`); under `CI=true` a missing folder is a failure, never a skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const TOKEN: &str = "clients-token-0123456789abcdef";
const PD_KEY: &str = "clients-pd-key-0123456789abcdef";
const OG_KEY: &str = "clients-og-key-0123456789abcdef";

fn clients() -> Option<PathBuf> {
    match std::env::var("TOCSIN_TEST_CLIENTS") {
        Ok(dir) => Some(PathBuf::from(dir)),
        Err(_) => {
            assert!(
                std::env::var("CI").is_err(),
                "TOCSIN_TEST_CLIENTS must name the client libraries' folder under CI (scripts/test fills it)"
            );
            None
        }
    }
}

/// A self-signed certificate for 127.0.0.1 and its key, made with openssl.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        // An end-entity certificate (webpki refuses a CA certificate as a
        // server's), trusted directly by the clients.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

fn https_client(cert: &Path) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

async fn alerts(http: &reqwest::Client, base: &str, source: &str) -> Vec<Value> {
    let v: Value = http
        .get(format!("{base}/api/v1/alerts?source={source}&limit=100"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["alerts"].as_array().unwrap().clone()
}

fn json_out(what: &str, out: std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_senders_client_libraries_work_against_tocsin_over_tls() {
    let Some(libs) = clients() else { return };
    let dir = scratch("clients");
    let (cert, key) = certificate(&dir);
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let cfg = dir.join("tocsin.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
server:
  listen: "127.0.0.1:{port}"
  tls: {{cert_file: {cert}, key_file: {key}}}
database: {{url: "sqlite://{db}"}}
api_tokens: [{{name: t, token: {TOKEN}, role: admin}}]
users:
  - {{id: alice}}
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:alice"], escalate_after: 5m}}]}}
sources:
  - {{id: pd, type: pagerduty, key: {PD_KEY}, escalation_policy: p, rate_limit_per_minute: 0}}
  - {{id: og, type: opsgenie, key: {OG_KEY}, escalation_policy: p, rate_limit_per_minute: 0}}
"#,
            cert = cert.display(),
            key = key.display(),
            db = dir.join("t.db").display()
        ),
    )
    .unwrap();
    let mut server = serve(&dir, &cfg, 0);
    let http = https_client(&cert);
    wait_for("the HTTPS listener", Duration::from_secs(30), || {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http.get(format!("{base}/readyz")).send().await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;
    let banner = std::fs::read_to_string(dir.join("out0")).unwrap();
    assert!(
        banner.contains(&format!("listening on https://127.0.0.1:{port}")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("API base {base} with")),
        "the banner's base URLs have no trailing slash: {banner}"
    );
    // Plain http on the TLS port is refused, not served.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));

    let python = libs.join("venv/bin/python");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/python_clients.py"
    );
    let py = json_out(
        "the Python client libraries",
        Command::new(&python)
            .args([script, &base, PD_KEY, OG_KEY])
            // requests (pdpyras) and httpx (pagerduty) each read their own.
            .env("REQUESTS_CA_BUNDLE", &cert)
            .env("SSL_CERT_FILE", &cert)
            .output()
            .unwrap(),
    );
    let js = json_out(
        "@pagerduty/pdjs",
        Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/clients/pdjs_client.js"
            ))
            .args([&format!("127.0.0.1:{port}"), PD_KEY])
            .env("NODE_PATH", libs.join("node/node_modules"))
            .env("NODE_EXTRA_CA_CERTS", &cert)
            .output()
            .unwrap(),
    );

    // What the libraries did is what Tocsin stored.
    let pd = alerts(&http, &base, "pd").await;
    let by_key = |key: &str| {
        pd.iter()
            .find(|a| a["dedup_key"] == key)
            .unwrap_or_else(|| panic!("no alert with dedup key {key}: {pd:?}"))
            .clone()
    };
    let a = by_key(py["pagerduty"]["dedup_key"].as_str().unwrap());
    assert_eq!(a["status"], "accepted");
    assert_eq!(a["summary"], "pagerduty lib: disk full");
    assert_eq!(a["severity"], "SEV0", "critical");
    assert_eq!(by_key("pd-lib-resolve")["status"], "resolved");
    assert_eq!(
        by_key(py["pdpyras"]["dedup_key"].as_str().unwrap())["status"],
        "resolved"
    );
    let j = by_key(js["pdjs"]["dedup_key"].as_str().unwrap());
    assert_eq!(j["status"], "resolved");
    assert_eq!(j["summary"], "pdjs: certificate expires");
    let og = &py["opsgenie"];
    assert_eq!(og["message"], "opsgenie sdk: latency high");
    assert_eq!(og["priority"], "P2");
    assert_eq!(og["request_action"], "Create");
    assert_eq!(og["status_after_close"], "closed");
    let og_alerts = alerts(&http, &base, "og").await;
    assert_eq!(og_alerts.len(), 1);
    assert_eq!(
        og_alerts[0]["id"].to_string(),
        og["alert_id"].as_str().unwrap()
    );
    assert_eq!(og_alerts[0]["status"], "resolved");
    server.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
