//! Webhook: a JSON POST of the alert to the contact's URL. When the contact
//! has a `secret`, the request carries
//! `X-Tocsin-Timestamp: <unix seconds>` and
//! `X-Tocsin-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`,
//! so the receiver can check origin and freshness. A bundled message lists
//! its further alerts under `also`.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::json;
use tocsin_domain::links::hmac_sha256_hex;

use crate::{Channel, Message, Notice, SendError, http_client, http_outcome, transport_error};

pub struct Webhook {
    http: reqwest::Client,
    /// URL → signing secret, for contacts that set one.
    secrets: HashMap<String, String>,
}

impl Webhook {
    pub fn new(secrets: HashMap<String, String>) -> Result<Webhook, SendError> {
        Ok(Webhook {
            http: http_client()?,
            secrets,
        })
    }
}

/// `sha256=<hex>` over `"{timestamp}.{body}"`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &message))
}

/// The JSON document a webhook receives.
pub fn payload(msg: &Message) -> serde_json::Value {
    json!({
        "event": "alert.notification",
        "alert": {
            "id": msg.alert_id,
            "status": msg.status.as_str(),
            "severity": msg.severity.as_str(),
            "priority": msg.priority.as_str(),
            "summary": msg.summary,
            "details": msg.details,
            "links": msg.links.iter().map(|l| json!({"href": l.href, "text": l.text})).collect::<Vec<_>>(),
            "url": msg.alert_url,
        },
        "recipient": msg.recipient,
        "delivery_id": msg.delivery_id,
        "actions": {
            "accept": msg.action("Accept"),
            "resolve": msg.action("Resolve"),
        },
        "also": msg.also.iter().map(|b| {
            let action = |label: &str| b.actions.iter().find(|(l, _)| l == label).map(|(_, u)| u.clone());
            json!({
                "id": b.alert_id,
                "status": b.status.as_str(),
                "severity": b.severity.as_str(),
                "priority": b.priority.as_str(),
                "summary": b.summary,
                "url": b.alert_url,
                "actions": {"accept": action("Accept"), "resolve": action("Resolve")},
            })
        }).collect::<Vec<_>>(),
        // Bundled alerts besides `alert`; `also` lists the first of them.
        "also_count": msg.others(),
    })
}

#[async_trait]
impl Channel for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, url: &str, msg: &Message) -> Result<String, SendError> {
        let body = serde_json::to_vec(&payload(msg))
            .map_err(|e| SendError::permanent(format!("cannot encode the payload: {e}")))?;
        self.post(url, body, &msg.delivery_id).await
    }

    async fn send_notice(&self, url: &str, n: &Notice) -> Result<String, SendError> {
        let body = serde_json::to_vec(&n.payload)
            .map_err(|e| SendError::permanent(format!("cannot encode the payload: {e}")))?;
        self.post(url, body, &n.delivery_id).await
    }
}

impl Webhook {
    /// POST `body`, signed when the URL has a secret.
    async fn post(&self, url: &str, body: Vec<u8>, delivery_id: &str) -> Result<String, SendError> {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json");
        if !delivery_id.is_empty() {
            // The same on a retry or a re-send after a crash: receivers
            // that must not act twice can drop repeats by it.
            req = req.header("x-tocsin-delivery", delivery_id);
        }
        if let Some(secret) = self.secrets.get(url) {
            let ts = chrono::Utc::now().timestamp();
            req = req
                .header("x-tocsin-timestamp", ts.to_string())
                .header("x-tocsin-signature", signature(secret, ts, &body));
        }
        let res = req
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error("the webhook", e))?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        http_outcome(status, &text, "the webhook")
    }
}
