//! SMS and voice over the Twilio REST API (or any Twilio-compatible API:
//! the base URL is configurable). HTTP Basic auth (AccountSid:AuthToken),
//! form-encoded bodies, 201 on success.
//!
//! SMS ends with how to answer (`ACK <id>` / `RES <id>`); calls fetch their
//! TwiML from Tocsin, which reads the alert and gathers "press 1 to accept".

use async_trait::async_trait;
use serde_json::Value;

use crate::{Channel, Message, SendError, http_client, http_outcome, transport_error};

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    /// e.g. `https://api.twilio.com`
    pub api_base: String,
}

struct Client {
    http: reqwest::Client,
    s: TwilioSettings,
}

impl Client {
    fn new(s: &TwilioSettings) -> Result<Client, SendError> {
        Ok(Client {
            http: http_client()?,
            s: TwilioSettings {
                api_base: s.api_base.trim_end_matches('/').to_owned(),
                ..s.clone()
            },
        })
    }

    async fn post(&self, resource: &str, form: &[(&str, String)]) -> Result<String, SendError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/{resource}.json",
            self.s.api_base, self.s.account_sid
        );
        let res = self
            .http
            .post(&url)
            .basic_auth(&self.s.account_sid, Some(&self.s.auth_token))
            .form(form)
            .send()
            .await
            .map_err(|e| transport_error("Twilio", e))?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        http_outcome(status, &text, "Twilio")?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(format!(
            "Twilio {} {}",
            v["sid"].as_str().unwrap_or("?"),
            v["status"].as_str().unwrap_or("")
        )
        .trim()
        .to_owned())
    }
}

/// The SMS text: short, with how to answer. A bundle lists every alert
/// (as many as fit) on one line each.
pub fn sms_body(msg: &Message) -> String {
    let (head, tail) = if !msg.is_bundle() {
        (
            format!(
                "Tocsin #{} {} {}: {}",
                msg.alert_id, msg.severity, msg.priority, msg.summary
            ),
            format!(
                "\nReply ACK {id} to accept, RES {id} to resolve.",
                id = msg.alert_id
            ),
        )
    } else {
        let mut head = format!(
            "Tocsin: {} alerts\n#{} {} {}: {}",
            msg.count(),
            msg.alert_id,
            msg.severity,
            msg.priority,
            msg.summary
        );
        for b in &msg.also {
            head.push_str(&format!(
                "\n#{} {} {}: {}",
                b.alert_id, b.severity, b.priority, b.summary
            ));
        }
        if msg.unlisted > 0 {
            head.push_str(&format!("\n…and {} more", msg.unlisted));
        }
        (
            head,
            "\nReply ACK <number> to accept, RES <number> to resolve.".to_owned(),
        )
    };
    let room = 1600usize.saturating_sub(tail.chars().count());
    let head: String = head.chars().take(room).collect();
    format!("{head}{tail}")
}

pub struct TwilioSms {
    client: Client,
}

impl TwilioSms {
    pub fn new(s: &TwilioSettings) -> Result<TwilioSms, SendError> {
        Ok(TwilioSms {
            client: Client::new(s)?,
        })
    }
}

#[async_trait]
impl Channel for TwilioSms {
    fn name(&self) -> &'static str {
        "sms"
    }

    async fn send(&self, number: &str, msg: &Message) -> Result<String, SendError> {
        self.client
            .post(
                "Messages",
                &[
                    ("To", number.to_owned()),
                    ("From", self.client.s.from.clone()),
                    ("Body", sms_body(msg)),
                ],
            )
            .await
    }
}

pub struct TwilioVoice {
    client: Client,
    /// Tocsin's base URL, where Twilio fetches the call's TwiML.
    public_url: String,
}

impl TwilioVoice {
    pub fn new(s: &TwilioSettings, public_url: &str) -> Result<TwilioVoice, SendError> {
        Ok(TwilioVoice {
            client: Client::new(s)?,
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }
}

#[async_trait]
impl Channel for TwilioVoice {
    fn name(&self) -> &'static str {
        "voice"
    }

    async fn send(&self, number: &str, msg: &Message) -> Result<String, SendError> {
        self.client
            .post(
                "Calls",
                &[
                    ("To", number.to_owned()),
                    ("From", self.client.s.from.clone()),
                    (
                        "Url",
                        if !msg.is_bundle() {
                            format!(
                                "{}/api/v1/twilio/voice?alert={}",
                                self.public_url, msg.alert_id
                            )
                        } else {
                            format!(
                                "{}/api/v1/twilio/voice?alert={}&more={}",
                                self.public_url,
                                msg.alert_id,
                                msg.others()
                            )
                        },
                    ),
                    ("Method", "POST".to_owned()),
                    ("Timeout", "45".to_owned()),
                ],
            )
            .await
    }
}
