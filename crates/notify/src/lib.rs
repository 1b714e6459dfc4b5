//! Notification channels. Each channel is one module implementing
//! [`Channel`]; adding a provider means one new module. Channels only send:
//! retries, backoff and the timeline belong to the outbox dispatcher.

pub mod email;
pub mod ntfy;
pub mod slack;
pub mod twilio;
pub mod webhook;

use async_trait::async_trait;
use tocsin_domain::{AlertStatus, Link, Priority, Severity};

/// What a notification says about its alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub alert_id: i64,
    pub summary: String,
    pub details: String,
    pub severity: Severity,
    pub priority: Priority,
    pub status: AlertStatus,
    pub links: Vec<Link>,
    /// Where the alert can be seen.
    pub alert_url: String,
    /// Signed action links for this recipient: (label, URL), e.g. Accept.
    pub actions: Vec<(String, String)>,
    /// The user this message goes to.
    pub recipient: String,
}

impl Message {
    /// The action link with this label (`Accept`, `Resolve`).
    pub fn action(&self, label: &str) -> Option<&str> {
        self.actions
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, u)| u.as_str())
    }
}

/// Classify an HTTP answer: 2xx is success; 408, 429 and 5xx are worth
/// retrying; any other status is permanent.
pub(crate) fn http_outcome(status: u16, body: &str, who: &str) -> Result<String, SendError> {
    let body: String = body.chars().take(200).collect();
    match status {
        200..=299 => Ok(format!("{who} answered {status}")),
        408 | 429 | 500..=599 => Err(SendError::retry(format!("{who} answered {status}: {body}"))),
        _ => Err(SendError::permanent(format!(
            "{who} answered {status}: {body}"
        ))),
    }
}

/// The HTTP client channels share (rustls; the process installs the crypto provider).
pub fn http_client() -> Result<reqwest::Client, SendError> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .user_agent(concat!("Tocsin/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SendError::permanent(format!("cannot set up the HTTP client: {e}")))
}

impl Message {
    /// `[Tocsin] SEV1 #12: disk full`
    pub fn title(&self) -> String {
        format!(
            "[Tocsin] {} #{}: {}",
            self.severity, self.alert_id, self.summary
        )
    }

    /// The plain-text body every text channel starts from.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{}\n\nSeverity: {} ({} priority)\nStatus: {}\nAlert: {}\n",
            self.summary, self.severity, self.priority, self.status, self.alert_url
        );
        for (label, url) in &self.actions {
            out.push_str(&format!("{label}: {url}\n"));
        }
        if !self.details.trim().is_empty() {
            out.push('\n');
            out.push_str(self.details.trim_end());
            out.push('\n');
        }
        if !self.links.is_empty() {
            out.push_str("\nLinks:\n");
            for l in &self.links {
                if l.text == l.href {
                    out.push_str(&format!("- {}\n", l.href));
                } else {
                    out.push_str(&format!("- {}: {}\n", l.text, l.href));
                }
            }
        }
        out
    }
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub retryable: bool,
    pub message: String,
}

impl SendError {
    pub fn retry(message: impl Into<String>) -> Self {
        SendError {
            retryable: true,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        SendError {
            retryable: false,
            message: message.into(),
        }
    }
}

/// One way of reaching people.
#[async_trait]
pub trait Channel: Send + Sync {
    /// The contact type it serves: `email`, `sms`, …
    fn name(&self) -> &'static str;

    /// Send `msg` to `address`; on success, the provider's answer (for the
    /// timeline).
    async fn send(&self, address: &str, msg: &Message) -> Result<String, SendError>;
}
