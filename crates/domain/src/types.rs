//! Small value types that are parsed once at the edge and trusted inside.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A value that could not be parsed; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Alert severity, `SEV0` (most severe) to `SEV4` (least severe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Severity {
    Sev0,
    Sev1,
    Sev2,
    Sev3,
    Sev4,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Sev0,
        Severity::Sev1,
        Severity::Sev2,
        Severity::Sev3,
        Severity::Sev4,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Sev0 => "SEV0",
            Severity::Sev1 => "SEV1",
            Severity::Sev2 => "SEV2",
            Severity::Sev3 => "SEV3",
            Severity::Sev4 => "SEV4",
        }
    }

    /// The number in its name: 0 for SEV0 (most severe) to 4 for SEV4.
    pub fn level(self) -> u8 {
        self as u8
    }

    /// True when `self` is as severe as `threshold` or more (SEV0 is the most severe).
    pub fn is_at_or_above(self, threshold: Severity) -> bool {
        self <= threshold
    }

    /// The more severe of two severities.
    pub fn most_severe(self, other: Severity) -> Severity {
        self.min(other)
    }
}

impl FromStr for Severity {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SEV0" => Ok(Severity::Sev0),
            "SEV1" => Ok(Severity::Sev1),
            "SEV2" => Ok(Severity::Sev2),
            "SEV3" => Ok(Severity::Sev3),
            "SEV4" => Ok(Severity::Sev4),
            _ => Err(ParseError(format!(
                "`{s}` is not a severity; expected one of SEV0, SEV1, SEV2, SEV3, SEV4"
            ))),
        }
    }
}

impl TryFrom<String> for Severity {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Severity> for String {
    fn from(s: Severity) -> String {
        s.as_str().to_owned()
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HIGH alerts escalate; LOW alerts notify level 1 and stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Priority {
    High,
    Low,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Low => "low",
        }
    }
}

impl FromStr for Priority {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "high" => Ok(Priority::High),
            "low" => Ok(Priority::Low),
            _ => Err(ParseError(format!(
                "`{s}` is not a priority; expected high or low"
            ))),
        }
    }
}

impl TryFrom<String> for Priority {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Priority> for String {
    fn from(p: Priority) -> String {
        p.as_str().to_owned()
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Responder,
    Observer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Responder => "responder",
            Role::Observer => "observer",
        }
    }

    /// Responders and admins may accept, resolve and comment; observers only read.
    pub fn may_act(self) -> bool {
        matches!(self, Role::Admin | Role::Responder)
    }

    /// 2 for admin, 1 for responder, 0 for observer.
    pub fn rank(self) -> u8 {
        match self {
            Role::Admin => 2,
            Role::Responder => 1,
            Role::Observer => 0,
        }
    }

    /// Whether this role grants nothing `other` does not.
    pub fn at_most(self, other: Role) -> bool {
        self.rank() <= other.rank()
    }

    /// The lower of the two roles.
    pub fn lower(self, other: Role) -> Role {
        if self.at_most(other) { self } else { other }
    }
}

impl std::str::FromStr for Role {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "responder" => Ok(Role::Responder),
            "observer" => Ok(Role::Observer),
            other => Err(ParseError(format!(
                "unknown role `{other}`; expected admin, responder or observer"
            ))),
        }
    }
}

/// How a Prometheus source turns Alertmanager notifications into alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// One Tocsin alert per Alertmanager group (dedup key: `groupKey`).
    #[default]
    Group,
    /// One Tocsin alert per Prometheus alert (dedup key: `fingerprint`).
    Alert,
}

/// Treatment of alerts that arrive outside a source's support hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutsideSupportHours {
    #[default]
    Delay,
    Low,
    High,
}

/// The deduplication key of an alert within its source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DedupKey(String);

impl DedupKey {
    /// Longest key accepted (PagerDuty's `dedup_key` limit).
    pub const MAX_LEN: usize = 1024;

    pub fn new(s: impl Into<String>) -> Result<Self, ParseError> {
        let s = s.into();
        if s.is_empty() {
            return Err(ParseError("the dedup key is empty".into()));
        }
        if s.len() > Self::MAX_LEN {
            return Err(ParseError(format!(
                "the dedup key is {} bytes long; at most {} are allowed",
                s.len(),
                Self::MAX_LEN
            )));
        }
        Ok(DedupKey(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DedupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maps the value of a `severity` label to a Tocsin severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeverityMap {
    map: BTreeMap<String, Severity>,
    default: Severity,
}

impl SeverityMap {
    /// The built-in map: critical→SEV0, error→SEV1, warning→SEV2, info→SEV4.
    pub fn builtin() -> BTreeMap<String, Severity> {
        BTreeMap::from([
            ("critical".to_owned(), Severity::Sev0),
            ("error".to_owned(), Severity::Sev1),
            ("warning".to_owned(), Severity::Sev2),
            ("info".to_owned(), Severity::Sev4),
        ])
    }

    /// The built-in map with `overrides` merged over it.
    pub fn new(overrides: &BTreeMap<String, Severity>, default: Severity) -> Self {
        let mut map = Self::builtin();
        for (k, v) in overrides {
            map.insert(k.to_ascii_lowercase(), *v);
        }
        SeverityMap { map, default }
    }

    /// Severity for a label value; missing or unmapped values take the default.
    pub fn lookup(&self, value: Option<&str>) -> Severity {
        value
            .and_then(|v| self.map.get(&v.trim().to_ascii_lowercase()).copied())
            .unwrap_or(self.default)
    }

    pub fn default_severity(&self) -> Severity {
        self.default
    }

    /// A label value this map turns into `severity` (the first in order),
    /// if any does.
    pub fn value_for(&self, severity: Severity) -> Option<&str> {
        self.map
            .iter()
            .find(|(_, s)| **s == severity)
            .map(|(v, _)| v.as_str())
    }
}

impl Default for SeverityMap {
    fn default() -> Self {
        SeverityMap::new(&BTreeMap::new(), Severity::Sev2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_and_threshold() {
        assert!(Severity::Sev0.is_at_or_above(Severity::Sev1));
        assert!(Severity::Sev1.is_at_or_above(Severity::Sev1));
        assert!(!Severity::Sev2.is_at_or_above(Severity::Sev1));
        assert_eq!(Severity::Sev3.most_severe(Severity::Sev1), Severity::Sev1);
        assert_eq!("sev4".parse::<Severity>(), Ok(Severity::Sev4));
        let err = "SEV9".parse::<Severity>().unwrap_err();
        assert!(err.0.contains("SEV0, SEV1"), "{err}");
    }

    #[test]
    fn severity_map_merges_over_builtin() {
        let m = SeverityMap::new(
            &BTreeMap::from([("page".to_owned(), Severity::Sev1)]),
            Severity::Sev3,
        );
        assert_eq!(m.lookup(Some("critical")), Severity::Sev0);
        assert_eq!(m.lookup(Some("Page")), Severity::Sev1);
        assert_eq!(m.lookup(Some("info")), Severity::Sev4);
        assert_eq!(m.lookup(Some("bogus")), Severity::Sev3);
        assert_eq!(m.lookup(None), Severity::Sev3);
    }

    #[test]
    fn dedup_key_rejects_empty_and_huge() {
        assert!(DedupKey::new("").is_err());
        assert!(DedupKey::new("x".repeat(2000)).is_err());
        assert_eq!(
            DedupKey::new("k").map(|k| k.to_string()),
            Ok("k".to_owned())
        );
    }

    #[test]
    fn roles() {
        assert!(Role::Admin.may_act());
        assert!(Role::Responder.may_act());
        assert!(!Role::Observer.may_act());
    }
}
