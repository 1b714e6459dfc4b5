//! Secrets: source keys and API tokens. Compared in constant time, never
//! printed by `Debug`.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret string (source key or API token).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(s: impl Into<String>) -> Self {
        SecretKey(s.into())
    }

    /// The secret itself. Call sites are few and deliberate: the start-up
    /// banner and storage of generated keys.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.0)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// SHA-256 of a secret. Comparing digests in constant time hides both the
/// content and the length of the stored secret from timing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(s: &str) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(&Sha256::digest(s.as_bytes()));
        TokenDigest(out)
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// A digest written as 64 hex digits (`token_sha256` in tocsin.yaml).
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        let mut out = [0u8; 32];
        if bytes.len() != out.len() {
            return None;
        }
        out.copy_from_slice(&bytes);
        Some(TokenDigest(out))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let k = SecretKey::new("hunter2-super-secret");
        assert!(!format!("{k:?}").contains("hunter2"));
    }

    #[test]
    fn digests_compare() {
        let a = SecretKey::new("abc").digest();
        assert!(a.ct_eq(&TokenDigest::of("abc")));
        assert!(!a.ct_eq(&TokenDigest::of("abd")));
        assert!(!a.ct_eq(&TokenDigest::of("abcd")));
    }
}
