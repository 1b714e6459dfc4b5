//! Push over ntfy: `POST {base_url}/{topic}` with a title, a priority, tags
//! and Accept / Resolve buttons that POST to the message's signed links.

use async_trait::async_trait;

use crate::{Channel, Message, Notice, SendError, http_client, http_outcome, transport_error};

pub struct Ntfy {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

impl Ntfy {
    pub fn new(base_url: &str, token: Option<String>) -> Result<Ntfy, SendError> {
        Ok(Ntfy {
            http: http_client()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
        })
    }
}

/// ntfy's `Actions` header: HTTP buttons that POST to the signed links, and
/// a view button for the alert.
pub fn actions_header(msg: &Message) -> String {
    let mut out: Vec<String> = msg
        .actions
        .iter()
        .take(2)
        .map(|(label, url)| format!("http, {label}, {url}, method=POST, clear=true"))
        .collect();
    out.push(format!("view, Open, {}", msg.alert_url));
    out.join("; ")
}

#[async_trait]
impl Channel for Ntfy {
    fn name(&self) -> &'static str {
        "push"
    }

    async fn send(&self, topic: &str, msg: &Message) -> Result<String, SendError> {
        let url = format!("{}/{topic}", self.base_url);
        let priority = match msg.priority {
            tocsin_domain::Priority::High => "5",
            tocsin_domain::Priority::Low => "3",
        };
        // Header values must be visible ASCII: keep the title plain.
        let title: String = msg
            .title()
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let mut req = self
            .http
            .post(&url)
            .header("Title", title)
            .header("Priority", priority)
            .header(
                "Tags",
                format!("rotating_light,{}", msg.severity.as_str().to_lowercase()),
            )
            .header("Click", msg.alert_url.clone())
            .header("Actions", actions_header(msg));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req
            .body(msg.text())
            .send()
            .await
            .map_err(|e| transport_error("ntfy", e))?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        http_outcome(status, &text, "ntfy")
    }

    async fn send_notice(&self, topic: &str, n: &Notice) -> Result<String, SendError> {
        let title: String = n
            .subject
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let mut req = self
            .http
            .post(format!("{}/{topic}", self.base_url))
            .header("Title", title)
            .header("Priority", "3");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req
            .body(n.text.clone())
            .send()
            .await
            .map_err(|e| transport_error("ntfy", e))?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        http_outcome(status, &text, "ntfy")
    }
}
