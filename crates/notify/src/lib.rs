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
    /// Further alerts bundled into this message (pages to the same contact
    /// within the bundle window); empty for a message about one alert.
    /// Holds at most [`BUNDLE_LISTED`] alerts: the rest are only counted.
    pub also: Vec<Brief>,
    /// Further bundled alerts, counted but not listed.
    pub unlisted: usize,
    /// Names this message: the same when it is sent again (a retry, or a
    /// takeover after a crash), so a receiver can drop repeats. Empty for a
    /// test message.
    pub delivery_id: String,
}

/// One more alert in a bundled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brief {
    pub alert_id: i64,
    pub summary: String,
    pub severity: Severity,
    pub priority: Priority,
    pub status: AlertStatus,
    pub alert_url: String,
    /// Signed action links for the recipient, like [`Message::actions`].
    pub actions: Vec<(String, String)>,
}

/// How many bundled alerts a message lists one by one; the rest are counted.
pub const BUNDLE_LISTED: usize = 10;

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

/// A request that got no answer (refused, reset, timed out) is worth
/// retrying. The message leaves the URL out: a Slack or webhook URL, an ntfy
/// topic, is a secret, and this text goes on the timeline.
pub(crate) fn transport_error(who: &str, e: reqwest::Error) -> SendError {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    // The innermost cause says what happened (connection refused, …).
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    SendError::retry(format!("{who}: {text}"))
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
    /// How many alerts this message is about.
    pub fn count(&self) -> usize {
        1 + self.others()
    }

    /// How many alerts besides the first this message is about.
    pub fn others(&self) -> usize {
        self.also.len() + self.unlisted
    }

    /// True for a message about more than one alert.
    pub fn is_bundle(&self) -> bool {
        self.others() > 0
    }

    /// Bundled alerts that are counted, not listed one by one.
    pub fn hidden(&self) -> usize {
        self.others() - self.also.len().min(BUNDLE_LISTED)
    }

    /// `[Tocsin] SEV1 #12: disk full`, or for a bundle
    /// `[Tocsin] 3 alerts: SEV1 #12: disk full, and 2 more`.
    pub fn title(&self) -> String {
        if !self.is_bundle() {
            format!(
                "[Tocsin] {} #{}: {}",
                self.severity, self.alert_id, self.summary
            )
        } else {
            format!(
                "[Tocsin] {} alerts: {} #{}: {}, and {} more",
                self.count(),
                self.severity,
                self.alert_id,
                self.summary,
                self.others()
            )
        }
    }

    /// The plain-text body every text channel starts from. A bundle starts
    /// with the first alert in full, then lists the others with their links.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if self.is_bundle() {
            out.push_str(&format!(
                "{} alerts came in for you at about the same time; they are bundled into this one message.\n\n#{} ",
                self.count(),
                self.alert_id
            ));
        }
        out.push_str(&format!(
            "{}\n\nSeverity: {} ({} priority)\nStatus: {}\nAlert: {}\n",
            self.summary, self.severity, self.priority, self.status, self.alert_url
        ));
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
        if self.is_bundle() {
            out.push_str(&format!("\nAlso for you ({} more):\n", self.others()));
            for b in self.also.iter().take(BUNDLE_LISTED) {
                out.push_str(&format!(
                    "\n#{} {} ({} priority, {}): {}\nAlert: {}\n",
                    b.alert_id, b.severity, b.priority, b.status, b.summary, b.alert_url
                ));
                for (label, url) in &b.actions {
                    out.push_str(&format!("{label}: {url}\n"));
                }
            }
            if self.hidden() > 0 {
                out.push_str(&format!(
                    "\n…and {} more; see {}\n",
                    self.hidden(),
                    self.alerts_url()
                ));
            }
        }
        out
    }

    /// The list of alerts nobody has accepted, next to [`Message::alert_url`].
    pub fn alerts_url(&self) -> String {
        match self.alert_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}?status=pending"),
            None => self.alert_url.clone(),
        }
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

/// A message that belongs to no alert: a status page subscriber's
/// message, an incident announcement, a handoff notice.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub subject: String,
    pub text: String,
    /// What a webhook receives.
    pub payload: serde_json::Value,
    /// A link that ends the subscription without signing in (email
    /// subscribers); also sent as `List-Unsubscribe`.
    pub unsubscribe: Option<String>,
    /// The same on every retry (`X-Tocsin-Delivery`).
    pub delivery_id: String,
}

/// One way of reaching people.
#[async_trait]
pub trait Channel: Send + Sync {
    /// The contact type it serves: `email`, `sms`, …
    fn name(&self) -> &'static str;

    /// Send `msg` to `address`; on success, the provider's answer (for the
    /// timeline).
    async fn send(&self, address: &str, msg: &Message) -> Result<String, SendError>;

    /// Send a notice to `address`. Channels that cannot carry one say so.
    async fn send_notice(&self, address: &str, notice: &Notice) -> Result<String, SendError> {
        let _ = (address, notice);
        Err(SendError::permanent(format!(
            "{} cannot carry notices; use email, push, Slack or a webhook",
            self.name()
        )))
    }
}
