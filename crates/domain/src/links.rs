//! Signed, expiring action links (accept / resolve) for messages. A link
//! carries the alert, the action, the user it was sent to and an expiry,
//! signed with HMAC-SHA256 under a server secret. Links never act on a GET:
//! the web layer shows a confirmation page and acts on the POST.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::types::ParseError;

/// What a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    Accept,
    Resolve,
}

impl LinkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkAction::Accept => "accept",
            LinkAction::Resolve => "resolve",
        }
    }
}

impl FromStr for LinkAction {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accept" => Ok(LinkAction::Accept),
            "resolve" => Ok(LinkAction::Resolve),
            _ => Err(ParseError(format!(
                "`{s}` is not an action; expected accept or resolve"
            ))),
        }
    }
}

impl fmt::Display for LinkAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionLink {
    pub alert_id: i64,
    pub action: LinkAction,
    pub user: String,
    /// Unix seconds after which the link no longer works.
    pub expires: i64,
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link's signature is not valid")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

/// Signs and checks links with one server secret.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

impl fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSigner(<secret>)")
    }
}

impl LinkSigner {
    pub fn new(secret: &str) -> Self {
        LinkSigner {
            key: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self, l: &ActionLink) -> Hmac<Sha256> {
        // A key of any length is accepted by HMAC; this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        mac.update(format!("{}\n{}\n{}\n{}", l.alert_id, l.action, l.user, l.expires).as_bytes());
        mac
    }

    /// The signature (hex) of a link.
    pub fn sign(&self, l: &ActionLink) -> String {
        hex::encode(self.mac(l).finalize().into_bytes())
    }

    /// Check a link's signature (in constant time) and expiry.
    pub fn verify(&self, l: &ActionLink, sig: &str, now: DateTime<Utc>) -> Result<(), LinkError> {
        let bytes = hex::decode(sig).map_err(|_| LinkError::BadSignature)?;
        self.mac(l)
            .verify_slice(&bytes)
            .map_err(|_| LinkError::BadSignature)?;
        if now.timestamp() > l.expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }

    /// The query string of a link: `alert=…&user=…&exp=…&sig=…`.
    pub fn query(&self, l: &ActionLink) -> String {
        format!(
            "alert={}&user={}&exp={}&sig={}",
            l.alert_id,
            percent(&l.user),
            l.expires,
            self.sign(l)
        )
    }
}

/// Hex HMAC-SHA256 of `message` under `key` (for provider signatures such
/// as Slack's `v0=` scheme).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the auth
/// token, over the full URL followed by each POST parameter's name and
/// value, sorted by name.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| <Hmac<sha1::Sha1> as KeyInit>::new(&Default::default()));
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Compare two strings in constant time (for signatures).
pub fn ct_str_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Percent-encode everything but unreserved characters.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn link() -> ActionLink {
        ActionLink {
            alert_id: 12,
            action: LinkAction::Accept,
            user: "alice".into(),
            expires: 2_000_000_000,
        }
    }

    #[test]
    fn signs_and_verifies() {
        let s = LinkSigner::new("secret");
        let sig = s.sign(&link());
        let before = Utc.timestamp_opt(1_999_999_999, 0).single().unwrap();
        assert_eq!(s.verify(&link(), &sig, before), Ok(()));
        let after = Utc.timestamp_opt(2_000_000_001, 0).single().unwrap();
        assert_eq!(s.verify(&link(), &sig, after), Err(LinkError::Expired));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let s = LinkSigner::new("secret");
        let sig = s.sign(&link());
        let now = Utc.timestamp_opt(1_000_000_000, 0).single().unwrap();
        for changed in [
            ActionLink {
                alert_id: 13,
                ..link()
            },
            ActionLink {
                action: LinkAction::Resolve,
                ..link()
            },
            ActionLink {
                user: "mallory".into(),
                ..link()
            },
            ActionLink {
                expires: 2_100_000_000,
                ..link()
            },
        ] {
            assert_eq!(s.verify(&changed, &sig, now), Err(LinkError::BadSignature));
        }
        assert_eq!(
            LinkSigner::new("other").verify(&link(), &sig, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(s.verify(&link(), "zz", now), Err(LinkError::BadSignature));
    }

    #[test]
    fn twilio_signature_matches_the_documented_example() {
        // The worked example on Twilio's webhook-security page (auth token 12345).
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let sig = twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params,
        );
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn query_encodes_the_user() {
        let s = LinkSigner::new("k");
        let q = s.query(&ActionLink {
            user: "a b&c".into(),
            ..link()
        });
        assert!(
            q.starts_with("alert=12&user=a%20b%26c&exp=2000000000&sig="),
            "{q}"
        );
    }
}
