//! The catalog as the running server uses it: every object of tocsin.yaml
//! (SPEC §11), typed, checked and indexed by id. It is built from the
//! stored catalog (which the config file provisions and the API edits) by
//! `tocsin_config::catalog`, and swapped whole when the stored one changes:
//! a request or a worker round holds one `Arc<Catalog>` from start to end,
//! so nothing it does sees half of a change.

use std::collections::BTreeMap;

use chrono::TimeDelta;

use crate::escalation::Policy;
use crate::schedule::Schedule;
use crate::support_hours::SupportHours;
use crate::{DurationSpec, Grouping, OutsideSupportHours, Priority, Role, Severity, TokenDigest};

/// The kind of sender a source takes events from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    Prometheus,
    Pagerduty,
    Opsgenie,
    Ilert,
}

impl SourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceType::Prometheus => "prometheus",
            SourceType::Pagerduty => "pagerduty",
            SourceType::Opsgenie => "opsgenie",
            SourceType::Ilert => "ilert",
        }
    }
}

/// A team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: String,
    pub name: String,
}

/// One way to reach a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    /// The channel that sends to it (`email`, `sms`, `voice`, `push`,
    /// `slack`, `webhook`).
    pub channel: String,
    /// Where it sends (an address, a number, a topic, a URL, a Slack id).
    pub address: String,
    /// A Slack contact's user or channel id (whom interactive buttons map to).
    pub slack_id: Option<String>,
    /// A webhook contact's signing secret.
    pub secret: Option<String>,
}

/// A user with contacts and notification rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub timezone: Option<String>,
    pub role: Role,
    pub teams: Vec<String>,
    pub contacts: Vec<Contact>,
    /// (contact id, delay after the page) for high-priority alerts.
    pub high: Vec<(String, TimeDelta)>,
    /// The same for low-priority alerts.
    pub low: Vec<(String, TimeDelta)>,
    /// Told when a shift of theirs starts and ends (through `low`'s contacts).
    pub handoff_notices: bool,
}

impl User {
    pub fn rules(&self, p: Priority) -> &[(String, TimeDelta)] {
        match p {
            Priority::High => &self.high,
            Priority::Low => &self.low,
        }
    }

    pub fn contact(&self, id: &str) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.id == id)
    }
}

/// A schedule and its display name.
#[derive(Debug, Clone)]
pub struct ScheduleEntry {
    pub name: String,
    pub team: Option<String>,
    pub model: Schedule,
}

/// An escalation policy with what routes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEntry {
    pub name: String,
    pub team: Option<String>,
    pub routing_key: Option<String>,
    pub policy: Policy,
}

/// A service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub team: Option<String>,
    pub policy_id: Option<String>,
    pub public: bool,
    pub auto_incident_from: Option<Severity>,
    /// Where its incidents are announced.
    pub announce: Vec<Announcement>,
}

/// A channel a service's incidents are announced to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// `slack` (an incoming webhook) or `webhook`.
    pub channel: String,
    pub address: String,
    /// A webhook's signing secret.
    pub secret: Option<String>,
}

/// A source: where its events go and how they are mapped. Its key is
/// not here (the store keeps keys; the caller resolves them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    pub name: String,
    pub kind: SourceType,
    pub team: Option<String>,
    pub policy_id: String,
    pub service_id: Option<String>,
    pub grouping: Grouping,
    /// `severity_map` as written (merged over the built-in map when used).
    pub severity_map: BTreeMap<String, Severity>,
    pub default_severity: Severity,
    pub high_priority_from: Severity,
    pub support_hours: Option<String>,
    pub outside_support_hours: OutsideSupportHours,
    pub summary_template: Option<String>,
    pub details_template: Option<String>,
    /// Events a minute on the command-style endpoints (0: no limit).
    pub rate_limit_per_minute: u32,
    /// The key the file sets; `None`: generated once and kept in storage.
    pub configured_key: Option<String>,
}

/// A heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub id: String,
    pub name: String,
    pub interval: DurationSpec,
    pub grace: DurationSpec,
    pub team: Option<String>,
    pub policy_id: String,
    pub service_id: Option<String>,
    /// The key the file sets; `None`: generated once and kept in storage.
    pub configured_key: Option<String>,
}

/// An API token from the catalog (compared by digest only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub name: String,
    pub digest: TokenDigest,
    pub role: Role,
    /// The user it acts as; `None` for a service token.
    pub user: Option<String>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpProvider {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioProvider {
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    pub api_base: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackProvider {
    pub bot_token: Option<String>,
    pub signing_secret: Option<String>,
    pub api_base: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtfyProvider {
    pub base_url: String,
    pub token: Option<String>,
}

/// The providers that notifications go out through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Providers {
    pub smtp: Option<SmtpProvider>,
    pub twilio: Option<TwilioProvider>,
    pub slack: Option<SlackProvider>,
    pub ntfy: Option<NtfyProvider>,
}

/// Every object, by id (ordered, so lists come out the same every time).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The stored catalog version this was built from.
    pub version: i64,
    pub teams: BTreeMap<String, Team>,
    pub users: BTreeMap<String, User>,
    pub support_hours: BTreeMap<String, SupportHours>,
    pub schedules: BTreeMap<String, ScheduleEntry>,
    pub policies: BTreeMap<String, PolicyEntry>,
    pub services: BTreeMap<String, Service>,
    pub sources: BTreeMap<String, Source>,
    pub heartbeats: BTreeMap<String, Heartbeat>,
    pub api_tokens: Vec<ApiToken>,
    pub providers: Providers,
    /// Policies by routing key and services' policies ([`Catalog::index`]).
    pub router: crate::Router,
}

impl Catalog {
    /// The policy with this id.
    pub fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.get(id).map(|p| &p.policy)
    }

    /// A user's display name (the id when unknown).
    pub fn user_name(&self, id: &str) -> String {
        self.users
            .get(id)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    /// Build the lookup tables from the objects (call once they are in).
    pub fn index(&mut self) {
        self.router = self.routing_table();
    }

    /// The routing table: policies by routing key, services' policies.
    fn routing_table(&self) -> crate::Router {
        crate::Router {
            policies_by_routing_key: self
                .policies
                .iter()
                .filter_map(|(id, p)| p.routing_key.clone().map(|k| (k, id.clone())))
                .collect(),
            services: self
                .services
                .iter()
                .map(|(id, s)| (id.clone(), s.policy_id.clone()))
                .collect(),
        }
    }
}

/// The catalog in effect, replaced whole when the stored one changes.
/// Readers take the current `Arc` and keep it for the work at hand.
#[derive(Debug, Default)]
pub struct SharedCatalog(std::sync::RwLock<std::sync::Arc<Catalog>>);

impl SharedCatalog {
    pub fn new(catalog: Catalog) -> Self {
        Self::of(std::sync::Arc::new(catalog))
    }

    pub fn of(catalog: std::sync::Arc<Catalog>) -> Self {
        SharedCatalog(std::sync::RwLock::new(catalog))
    }

    /// The catalog in effect now.
    pub fn current(&self) -> std::sync::Arc<Catalog> {
        match self.0.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Put `catalog` in effect (work already started keeps the old one).
    pub fn replace(&self, catalog: std::sync::Arc<Catalog>) {
        match self.0.write() {
            Ok(mut c) => *c = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
    }
}
