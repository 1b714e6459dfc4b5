//! Email over SMTP (lettre): plain text, optional STARTTLS or implicit TLS,
//! optional authentication.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::{Channel, Message, Notice, SendError};

/// How to reach the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub tls: Tls,
    pub username: Option<String>,
    pub password: Option<String>,
}

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Email {
    /// Set up the transport; the error says which setting is wrong.
    pub fn new(s: &SmtpSettings) -> Result<Email, SendError> {
        let from: Mailbox = s.from.parse().map_err(|e| {
            SendError::permanent(format!(
                "providers.smtp.from `{}` is not an address: {e}",
                s.from
            ))
        })?;
        let builder = match s.tls {
            Tls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
            Tls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                .map_err(|e| SendError::permanent(format!("providers.smtp: {e}")))?,
            Tls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
                .map_err(|e| SendError::permanent(format!("providers.smtp: {e}")))?,
        };
        let mut builder = builder.port(s.port).timeout(Some(Duration::from_secs(20)));
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Email {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Channel for Email {
    fn name(&self) -> &'static str {
        "email"
    }

    async fn send(&self, address: &str, msg: &Message) -> Result<String, SendError> {
        let to: Mailbox = address.parse().map_err(|e| {
            SendError::permanent(format!("`{address}` is not an email address: {e}"))
        })?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.title())
            .header(ContentType::TEXT_PLAIN)
            .body(msg.text())
            .map_err(|e| SendError::permanent(format!("cannot build the message: {e}")))?;
        self.deliver(email).await
    }

    async fn send_notice(&self, address: &str, n: &Notice) -> Result<String, SendError> {
        let to: Mailbox = address.parse().map_err(|e| {
            SendError::permanent(format!("`{address}` is not an email address: {e}"))
        })?;
        let mut body = n.text.trim_end().to_owned();
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(n.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        if let Some(u) = &n.unsubscribe {
            body.push_str(&format!("\n\n--\nUnsubscribe: {u}\n"));
            b = b
                .header(ListUnsubscribe(format!("<{u}>")))
                .header(ListUnsubscribePost);
        }
        let email = b
            .body(body)
            .map_err(|e| SendError::permanent(format!("cannot build the message: {e}")))?;
        self.deliver(email).await
    }
}

/// `List-Unsubscribe: <URL>` (RFC 2369).
#[derive(Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_owned()))
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): mail
/// clients may unsubscribe with one POST.
#[derive(Clone)]
struct ListUnsubscribePost;

impl lettre::message::header::Header for ListUnsubscribePost {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

impl Email {
    async fn deliver(&self, email: lettre::Message) -> Result<String, SendError> {
        match self.transport.send(email).await {
            Ok(r) => Ok(
                format!("{} {}", r.code(), r.message().collect::<Vec<_>>().join(" "))
                    .trim()
                    .to_owned(),
            ),
            Err(e) if e.is_permanent() => Err(SendError::permanent(format!("SMTP: {e}"))),
            Err(e) => Err(SendError::retry(format!("SMTP: {e}"))),
        }
    }
}
