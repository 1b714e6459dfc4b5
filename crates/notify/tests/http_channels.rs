//! The HTTP channels against local servers that check what they receive
//! the way the real receivers would: the webhook's HMAC-SHA256 signature
//! (computed here independently), ntfy's path, headers and action buttons.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tocsin_domain::{AlertStatus, Link, Priority, Severity};
use tocsin_notify::{Channel, Message};

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>);

async fn serve(app: axum::Router) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn message() -> Message {
    Message {
        alert_id: 7,
        summary: "Payments API errors — above 5%".into(),
        details: "since 10:02".into(),
        severity: Severity::Sev0,
        priority: Priority::High,
        status: AlertStatus::Pending,
        links: vec![Link {
            href: "https://grafana/d/1".into(),
            text: "Dashboard".into(),
        }],
        alert_url: "http://tocsin.test/api/v1/alerts/7".into(),
        actions: vec![
            (
                "Accept".into(),
                "http://tocsin.test/act/accept?alert=7&user=alice&exp=1&sig=ab".into(),
            ),
            (
                "Resolve".into(),
                "http://tocsin.test/act/resolve?alert=7&user=alice&exp=1&sig=cd".into(),
            ),
        ],
        recipient: "alice".into(),
        also: vec![],
        unlisted: 0,
        delivery_id: String::new(),
    }
}

/// A receiver that accepts only requests signed with `secret` within 5 minutes.
async fn webhook_receiver(seen: Seen, secret: &'static str) -> String {
    let app = axum::Router::new()
        .route(
            "/hook/{name}",
            axum::routing::post(
                move |State(seen): State<Seen>,
                      Path(name): Path<String>,
                      headers: HeaderMap,
                      body: Bytes| async move {
                    seen.0
                        .lock()
                        .unwrap()
                        .push((name.clone(), headers.clone(), body.clone()));
                    if name == "down" {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    if name == "gone" {
                        return StatusCode::GONE;
                    }
                    let (Some(ts), Some(sig)) = (
                        headers.get("x-tocsin-timestamp"),
                        headers.get("x-tocsin-signature"),
                    ) else {
                        return if name == "unsigned" {
                            StatusCode::OK
                        } else {
                            StatusCode::UNAUTHORIZED
                        };
                    };
                    let ts: i64 = ts.to_str().unwrap().parse().unwrap();
                    if (chrono::Utc::now().timestamp() - ts).abs() > 300 {
                        return StatusCode::UNAUTHORIZED;
                    }
                    let mut mac =
                        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
                    mac.update(format!("{ts}.").as_bytes());
                    mac.update(&body);
                    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    if sig.to_str().unwrap() == want {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::UNAUTHORIZED
                    }
                },
            ),
        )
        .with_state(seen);
    serve(app).await
}

#[tokio::test]
async fn webhook_posts_signed_json() {
    let seen = Seen::default();
    let base = webhook_receiver(seen.clone(), "hook-secret-0123456789").await;
    let signed = format!("{base}/hook/signed");
    let wrong = format!("{base}/hook/wrong");
    let secrets = HashMap::from([
        (signed.clone(), "hook-secret-0123456789".to_owned()),
        (wrong.clone(), "not-the-secret-012345".to_owned()),
    ]);
    let hook = tocsin_notify::webhook::Webhook::new(secrets).unwrap();

    let ok = hook.send(&signed, &message()).await.unwrap();
    assert_eq!(ok, "the webhook answered 204");
    let (_, headers, body) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(headers["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["event"], "alert.notification");
    assert_eq!(v["alert"]["id"], 7);
    assert_eq!(v["alert"]["severity"], "SEV0");
    assert_eq!(v["alert"]["summary"], "Payments API errors — above 5%");
    assert_eq!(v["alert"]["links"][0]["text"], "Dashboard");
    assert_eq!(v["recipient"], "alice");
    assert_eq!(
        v["actions"]["accept"],
        "http://tocsin.test/act/accept?alert=7&user=alice&exp=1&sig=ab"
    );

    // The receiver rejects a wrong signature: a permanent failure.
    let err = hook.send(&wrong, &message()).await.unwrap_err();
    assert!(!err.retryable && err.message.contains("401"), "{err:?}");
    // No secret configured: sent unsigned.
    assert!(
        hook.send(&format!("{base}/hook/unsigned"), &message())
            .await
            .is_ok()
    );
    // 5xx and connection errors are worth retrying; 410 is not.
    assert!(
        hook.send(&format!("{base}/hook/down"), &message())
            .await
            .unwrap_err()
            .retryable
    );
    assert!(
        !hook
            .send(&format!("{base}/hook/gone"), &message())
            .await
            .unwrap_err()
            .retryable
    );
    assert!(
        hook.send("http://127.0.0.1:1/nothing", &message())
            .await
            .unwrap_err()
            .retryable
    );
}

#[tokio::test]
async fn ntfy_publishes_with_title_priority_and_action_buttons() {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route(
            "/{topic}",
            axum::routing::post(
                |State(seen): State<Seen>,
                 Path(topic): Path<String>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    seen.0.lock().unwrap().push((topic, headers.clone(), body));
                    // Like ntfy with an access token required.
                    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                        Some("Bearer tk_test") => {
                            (StatusCode::OK, r#"{"id":"x","event":"message"}"#)
                        }
                        _ => (
                            StatusCode::FORBIDDEN,
                            r#"{"code":40301,"error":"forbidden"}"#,
                        ),
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let base = serve(app).await;

    let ntfy = tocsin_notify::ntfy::Ntfy::new(&format!("{base}/"), Some("tk_test".into())).unwrap();
    assert_eq!(
        ntfy.send("alice-7f3k", &message()).await.unwrap(),
        "ntfy answered 200"
    );
    let (topic, h, body) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(topic, "alice-7f3k");
    assert_eq!(h["priority"], "5");
    assert_eq!(
        h["title"],
        "[Tocsin] SEV0 #7: Payments API errors ? above 5%"
    );
    assert_eq!(h["tags"], "rotating_light,sev0");
    assert_eq!(h["click"], "http://tocsin.test/api/v1/alerts/7");
    assert_eq!(
        h["actions"],
        "http, Accept, http://tocsin.test/act/accept?alert=7&user=alice&exp=1&sig=ab, method=POST, clear=true; \
         http, Resolve, http://tocsin.test/act/resolve?alert=7&user=alice&exp=1&sig=cd, method=POST, clear=true; \
         view, Open, http://tocsin.test/api/v1/alerts/7"
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.starts_with("Payments API errors — above 5%"), "{text}");

    let anon = tocsin_notify::ntfy::Ntfy::new(&base, None).unwrap();
    let err = anon.send("alice-7f3k", &message()).await.unwrap_err();
    assert!(!err.retryable && err.message.contains("403"), "{err:?}");
}

#[tokio::test]
async fn slack_webhook_and_bot_messages() {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route(
            "/services/{hook}",
            axum::routing::post(|State(seen): State<Seen>, Path(hook): Path<String>, h: HeaderMap, b: Bytes| async move {
                seen.0.lock().unwrap().push((hook.clone(), h, b));
                match hook.as_str() {
                    "T1B1ok" => (StatusCode::OK, "ok"),
                    "archived" => (StatusCode::GONE, "channel_is_archived"),
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, "rollup_error"),
                }
            }),
        )
        .route(
            "/api/chat.postMessage",
            axum::routing::post(|State(seen): State<Seen>, h: HeaderMap, b: Bytes| async move {
                seen.0.lock().unwrap().push(("api".into(), h.clone(), b.clone()));
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                let authed = h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer xoxb-test");
                let body = match (authed, v["channel"].as_str()) {
                    (false, _) => r#"{"ok":false,"error":"not_authed"}"#,
                    (true, Some("C0NOPE")) => r#"{"ok":false,"error":"channel_not_found"}"#,
                    (true, _) => r#"{"ok":true,"channel":"C0SRE","ts":"1700000000.000100"}"#,
                };
                (StatusCode::OK, body)
            }),
        )
        .with_state(seen.clone());
    let base = serve(app).await;
    let slack =
        tocsin_notify::slack::Slack::new(&format!("{base}/api"), Some("xoxb-test".into())).unwrap();

    // Incoming webhook: text fallback, blocks, link buttons to the signed pages.
    assert_eq!(
        slack
            .send(&format!("{base}/services/T1B1ok"), &message())
            .await
            .unwrap(),
        "Slack answered ok"
    );
    let (_, h, b) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(h["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v["text"],
        "[Tocsin] SEV0 #7: Payments API errors — above 5%"
    );
    assert_eq!(v["blocks"][0]["type"], "section");
    assert_eq!(
        v["blocks"][1]["elements"][0]["url"],
        "http://tocsin.test/act/accept?alert=7&user=alice&exp=1&sig=ab"
    );
    assert!(
        !slack
            .send(&format!("{base}/services/archived"), &message())
            .await
            .unwrap_err()
            .retryable
    );
    assert!(
        slack
            .send(&format!("{base}/services/broken"), &message())
            .await
            .unwrap_err()
            .retryable
    );

    // Bot message: Accept/Resolve buttons carrying the alert id.
    assert_eq!(
        slack.send("C0SRE", &message()).await.unwrap(),
        "Slack message 1700000000.000100"
    );
    let (_, _, b) = seen.0.lock().unwrap().last().unwrap().clone();
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["channel"], "C0SRE");
    let buttons = &v["blocks"][1]["elements"];
    assert_eq!(
        (
            buttons[0]["action_id"].as_str(),
            buttons[0]["value"].as_str()
        ),
        (Some("accept"), Some("7"))
    );
    assert_eq!(buttons[1]["action_id"], "resolve");
    let err = slack.send("C0NOPE", &message()).await.unwrap_err();
    assert!(
        !err.retryable && err.message.contains("channel_not_found"),
        "{err:?}"
    );
    let no_token = tocsin_notify::slack::Slack::new(&format!("{base}/api"), None).unwrap();
    assert!(
        no_token
            .send("C0SRE", &message())
            .await
            .unwrap_err()
            .message
            .contains("bot_token")
    );
}

#[tokio::test]
async fn twilio_sms_and_calls() {
    use base64::Engine;
    let seen = Seen::default();
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/{resource}",
            axum::routing::post(
                |State(seen): State<Seen>,
                 Path((sid, resource)): Path<(String, String)>,
                 h: HeaderMap,
                 b: Bytes| async move {
                    seen.0.lock().unwrap().push((
                        format!("{sid}/{resource}"),
                        h.clone(),
                        b.clone(),
                    ));
                    let want = format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode("AC123:twilio-token")
                    );
                    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
                        return (
                            StatusCode::UNAUTHORIZED,
                            r#"{"code":20003,"message":"Authenticate"}"#.to_owned(),
                        );
                    }
                    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&b).unwrap();
                    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                    if get("To").as_deref() == Some("+15005550001") {
                        return (
                            StatusCode::BAD_REQUEST,
                            r#"{"code":21211,"message":"invalid To"}"#.to_owned(),
                        );
                    }
                    if get("To").as_deref() == Some("+15005550009") {
                        return (
                            StatusCode::TOO_MANY_REQUESTS,
                            r#"{"code":20429}"#.to_owned(),
                        );
                    }
                    match resource.as_str() {
                        "Messages.json" => (
                            StatusCode::CREATED,
                            r#"{"sid":"SM123","status":"queued"}"#.to_owned(),
                        ),
                        "Calls.json" => (
                            StatusCode::CREATED,
                            r#"{"sid":"CA123","status":"queued"}"#.to_owned(),
                        ),
                        _ => (StatusCode::NOT_FOUND, "{}".to_owned()),
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let base = serve(app).await;
    let settings = tocsin_notify::twilio::TwilioSettings {
        account_sid: "AC123".into(),
        auth_token: "twilio-token".into(),
        from: "+15550001111".into(),
        api_base: format!("{base}/"),
    };
    let sms = tocsin_notify::twilio::TwilioSms::new(&settings).unwrap();
    assert_eq!(
        sms.send("+491701234567", &message()).await.unwrap(),
        "Twilio SM123 queued"
    );
    let (path, h, b) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(path, "AC123/Messages.json");
    assert_eq!(h["content-type"], "application/x-www-form-urlencoded");
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&b).unwrap();
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        (get("To").as_str(), get("From").as_str()),
        ("+491701234567", "+15550001111")
    );
    assert_eq!(
        get("Body"),
        "Tocsin #7 SEV0 high: Payments API errors — above 5%\nReply ACK 7 to accept, RES 7 to resolve."
    );

    let voice = tocsin_notify::twilio::TwilioVoice::new(&settings, "http://tocsin.test/").unwrap();
    assert_eq!(
        voice.send("+491701234567", &message()).await.unwrap(),
        "Twilio CA123 queued"
    );
    let (path, _, b) = seen.0.lock().unwrap()[1].clone();
    assert_eq!(path, "AC123/Calls.json");
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&b).unwrap();
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("Url"), "http://tocsin.test/api/v1/twilio/voice?alert=7");
    assert_eq!(get("Method"), "POST");

    assert!(
        !sms.send("+15005550001", &message())
            .await
            .unwrap_err()
            .retryable,
        "400 is permanent"
    );
    assert!(
        sms.send("+15005550009", &message())
            .await
            .unwrap_err()
            .retryable,
        "429 is retried"
    );
    let bad = tocsin_notify::twilio::TwilioSms::new(&tocsin_notify::twilio::TwilioSettings {
        auth_token: "nope".into(),
        ..settings
    })
    .unwrap();
    assert!(
        !bad.send("+491701234567", &message())
            .await
            .unwrap_err()
            .retryable
    );
}

fn bundle(n: i64) -> Message {
    let mut m = message();
    m.also = (8..8 + n)
        .map(|id| tocsin_notify::Brief {
            alert_id: id,
            summary: format!("disk {id} full"),
            severity: Severity::Sev2,
            priority: Priority::Low,
            status: AlertStatus::Pending,
            alert_url: format!("http://tocsin.test/api/v1/alerts/{id}"),
            actions: vec![(
                "Accept".into(),
                format!("http://tocsin.test/act/accept?alert={id}&sig=x"),
            )],
        })
        .collect();
    m
}

#[test]
fn bundled_messages_list_every_alert_on_every_channel() {
    let m = bundle(2);
    assert_eq!(
        m.title(),
        "[Tocsin] 3 alerts: SEV0 #7: Payments API errors — above 5%, and 2 more"
    );
    let text = m.text();
    assert!(text.starts_with("3 alerts came in for you"), "{text}");
    assert!(text.contains("Also for you (2 more):"), "{text}");
    assert!(
        text.contains("#9 SEV2 (low priority, pending): disk 9 full\nAlert: http://tocsin.test/api/v1/alerts/9\nAccept: http://tocsin.test/act/accept?alert=9&sig=x\n"),
        "{text}"
    );

    let sms = tocsin_notify::twilio::sms_body(&m);
    assert!(
        sms.starts_with("Tocsin: 3 alerts\n#7 SEV0 high: Payments"),
        "{sms}"
    );
    assert!(
        sms.contains("\n#8 SEV2 low: disk 8 full\n#9 SEV2 low: disk 9 full\n"),
        "{sms}"
    );
    assert!(sms.ends_with("Reply ACK <number> to accept, RES <number> to resolve."));

    let hook = tocsin_notify::webhook::payload(&m);
    assert_eq!(hook["alert"]["id"], 7);
    assert_eq!(hook["also"].as_array().unwrap().len(), 2);
    assert_eq!(hook["also"][1]["id"], 9);
    assert_eq!(
        hook["also"][1]["actions"]["accept"],
        "http://tocsin.test/act/accept?alert=9&sig=x"
    );

    // Slack bot: Accept/Resolve buttons per alert, each block id unique.
    let bot = tocsin_notify::slack::bot_payload("C1", &m);
    let ids: Vec<&str> = bot["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["block_id"].as_str())
        .collect();
    assert_eq!(ids, ["tocsin-alert-7", "tocsin-alert-8", "tocsin-alert-9"]);
    assert_eq!(bot["blocks"][0]["type"], "header");

    // A big bundle lists ten and counts the rest.
    let big = bundle(14);
    let text = big.text();
    assert!(text.contains("#17 SEV2"), "{text}");
    assert!(!text.contains("#18 SEV2"), "{text}");
    assert!(
        text.contains("…and 4 more; see http://tocsin.test/api/v1/alerts?status=pending"),
        "{text}"
    );
    let hook = tocsin_notify::slack::webhook_payload(&big);
    let last = hook["blocks"].as_array().unwrap().last().unwrap().clone();
    assert!(last.to_string().contains("and 4 more"), "{last}");
    let sms = tocsin_notify::twilio::sms_body(&big);
    assert!(sms.chars().count() <= 1600);

    // A storm's bundle carries ten alerts and counts the thousands it does
    // not list, on every channel.
    let mut storm = bundle(10);
    storm.unlisted = 2989;
    assert_eq!(storm.count(), 3000);
    assert!(
        storm.title().starts_with("[Tocsin] 3000 alerts: SEV0 #7"),
        "{}",
        storm.title()
    );
    let text = storm.text();
    assert!(text.contains("Also for you (2999 more):"), "{text}");
    assert!(
        text.contains("…and 2989 more; see http://tocsin.test/api/v1/alerts?status=pending"),
        "{text}"
    );
    let slack = tocsin_notify::slack::webhook_payload(&storm);
    let last = slack["blocks"].as_array().unwrap().last().unwrap().clone();
    assert!(last.to_string().contains("and 2989 more"), "{last}");
    let hook = tocsin_notify::webhook::payload(&storm);
    assert_eq!(hook["also"].as_array().unwrap().len(), 10);
    assert_eq!(hook["also_count"], 2999);
    let sms = tocsin_notify::twilio::sms_body(&storm);
    assert!(sms.starts_with("Tocsin: 3000 alerts"), "{sms}");
    assert!(sms.chars().count() <= 1600);
}
