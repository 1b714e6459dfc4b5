//! Email over SMTP (lettre): plain text, optional STARTTLS or implicit TLS,
//! optional authentication.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::{Channel, Message, SendError};

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
