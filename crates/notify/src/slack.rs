//! Slack. A contact with `webhook_url` gets an incoming-webhook message
//! with link buttons to the signed accept/resolve pages; a contact with
//! `channel` (a channel or user id) gets a bot message (`chat.postMessage`
//! with the bot token) whose Accept/Resolve buttons come back through the
//! interactivity endpoint.

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::{
    BUNDLE_LISTED, Brief, Channel, Message, Notice, SendError, http_client, http_outcome,
    transport_error,
};

pub struct Slack {
    http: reqwest::Client,
    api_base: String,
    bot_token: Option<String>,
}

impl Slack {
    pub fn new(api_base: &str, bot_token: Option<String>) -> Result<Slack, SendError> {
        Ok(Slack {
            http: http_client()?,
            api_base: api_base.trim_end_matches('/').to_owned(),
            bot_token,
        })
    }
}

fn header_blocks(msg: &Message) -> Vec<Value> {
    let mut text = format!(
        "*<{}|#{}> {}*\n{} · {} priority · {}",
        msg.alert_url, msg.alert_id, msg.summary, msg.severity, msg.priority, msg.status
    );
    if !msg.links.is_empty() {
        let links: Vec<String> = msg
            .links
            .iter()
            .map(|l| format!("<{}|{}>", l.href, l.text))
            .collect();
        text.push('\n');
        text.push_str(&links.join(" · "));
    }
    let mut blocks = Vec::new();
    if msg.is_bundle() {
        blocks.push(json!({"type": "header", "text": {"type": "plain_text",
            "text": format!("{} alerts for you, bundled", msg.count())}}));
    }
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    blocks
}

/// The section of one further alert in a bundle.
fn brief_block(b: &Brief) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": format!(
        "*<{}|#{}> {}*\n{} · {} priority · {}",
        b.alert_url, b.alert_id, b.summary, b.severity, b.priority, b.status
    )}})
}

/// The line that counts the bundled alerts not listed one by one.
fn overflow_block(msg: &Message) -> Option<Value> {
    let hidden = Some(msg.hidden()).filter(|n| *n > 0)?;
    Some(json!({"type": "context", "elements": [{"type": "mrkdwn",
        "text": format!("…and {hidden} more: <{}|open alerts>", msg.alerts_url())}]}))
}

fn link_buttons(actions: &[(String, String)], alert_id: i64) -> Vec<Value> {
    actions
        .iter()
        .map(|(label, url)| {
            json!({"type": "button", "text": {"type": "plain_text", "text": label}, "url": url,
                   "action_id": format!("open_{}_{alert_id}", label.to_lowercase())})
        })
        .collect()
}

fn bot_buttons(alert_id: i64) -> Value {
    json!({"type": "actions", "block_id": format!("tocsin-alert-{alert_id}"), "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Accept"}, "style": "primary",
         "action_id": "accept", "value": alert_id.to_string()},
        {"type": "button", "text": {"type": "plain_text", "text": "Resolve"},
         "action_id": "resolve", "value": alert_id.to_string()},
    ]})
}

/// An incoming-webhook message: link buttons open the signed confirmation
/// pages. A bundle has a section and buttons per alert.
pub fn webhook_payload(msg: &Message) -> Value {
    let mut blocks = header_blocks(msg);
    let buttons = link_buttons(&msg.actions, msg.alert_id);
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    for b in msg.also.iter().take(BUNDLE_LISTED) {
        blocks.push(brief_block(b));
        let buttons = link_buttons(&b.actions, b.alert_id);
        if !buttons.is_empty() {
            blocks.push(json!({"type": "actions", "elements": buttons}));
        }
    }
    blocks.extend(overflow_block(msg));
    json!({"text": msg.title(), "blocks": blocks})
}

/// A bot message: buttons carry `accept:<id>` / `resolve:<id>` back to Tocsin.
pub fn bot_payload(channel: &str, msg: &Message) -> Value {
    let mut blocks = header_blocks(msg);
    blocks.push(bot_buttons(msg.alert_id));
    for b in msg.also.iter().take(BUNDLE_LISTED) {
        blocks.push(brief_block(b));
        blocks.push(bot_buttons(b.alert_id));
    }
    blocks.extend(overflow_block(msg));
    json!({"channel": channel, "text": msg.title(), "blocks": blocks})
}

#[async_trait]
impl Channel for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    async fn send(&self, address: &str, msg: &Message) -> Result<String, SendError> {
        if is_webhook(address) {
            self.post_webhook(address, &webhook_payload(msg)).await
        } else {
            self.post_bot(&bot_payload(address, msg)).await
        }
    }

    async fn send_notice(&self, address: &str, n: &Notice) -> Result<String, SendError> {
        let text = format!("*{}*\n{}", n.subject, n.text.trim_end());
        if is_webhook(address) {
            self.post_webhook(address, &json!({"text": text})).await
        } else {
            self.post_bot(&json!({"channel": address, "text": text}))
                .await
        }
    }
}

fn is_webhook(address: &str) -> bool {
    address.starts_with("http://") || address.starts_with("https://")
}

impl Slack {
    /// An incoming webhook: it answers 200 with the body `ok`.
    async fn post_webhook(&self, url: &str, payload: &Value) -> Result<String, SendError> {
        let res = self
            .http
            .post(url)
            .json(payload)
            .send()
            .await
            .map_err(|e| transport_error("Slack webhook", e))?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        match http_outcome(status, &text, "Slack") {
            Ok(_) if text.trim() == "ok" => Ok("Slack answered ok".into()),
            Ok(_) => Err(SendError::permanent(format!(
                "Slack answered {status}: {text}"
            ))),
            Err(e) => Err(e),
        }
    }

    /// `chat.postMessage` with the bot token.
    async fn post_bot(&self, payload: &Value) -> Result<String, SendError> {
        let token = self.bot_token.as_deref().ok_or_else(|| {
            SendError::permanent("a Slack channel contact needs providers.slack.bot_token")
        })?;
        let res = self
            .http
            .post(format!("{}/chat.postMessage", self.api_base))
            .bearer_auth(token)
            .json(payload)
            .send()
            .await
            .map_err(|e| transport_error("Slack API", e))?;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return http_outcome(status, &body.to_string(), "Slack API");
        }
        // The Web API answers 200 with {"ok": false, "error": …} on failure.
        match (body["ok"].as_bool(), body["error"].as_str()) {
            (Some(true), _) => Ok(format!(
                "Slack message {}",
                body["ts"].as_str().unwrap_or("sent")
            )),
            (_, Some("ratelimited")) => Err(SendError::retry("Slack API: ratelimited")),
            (_, err) => Err(SendError::permanent(format!(
                "Slack API: {}",
                err.unwrap_or("unexpected answer")
            ))),
        }
    }
}
