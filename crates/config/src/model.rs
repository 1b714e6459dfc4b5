//! The typed schema of `tocsin.yaml` (SPEC §11). Unknown keys are errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tocsin_domain::{DurationSpec, Grouping, OutsideSupportHours, Role, Severity};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tocsin.db";
/// Default retention of resolved alerts, in days.
pub const DEFAULT_RETENTION_DAYS: u64 = 90;
/// Default bundle window, in seconds.
pub const DEFAULT_BUNDLE_WINDOW_SECS: u64 = 10;
/// Default lifetime of action links, in seconds.
pub const DEFAULT_ACTION_LINK_TTL_SECS: u64 = 86_400;
/// Default per-key rate limit of the PagerDuty, Opsgenie and ilert endpoints.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 120;
/// Default request body limit (5 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 5 * 1024 * 1024;

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub database: Database,
    #[serde(default)]
    pub api_tokens: Vec<ApiToken>,
    #[serde(default)]
    pub providers: Providers,
    #[serde(default)]
    pub notifications: Notifications,
    #[serde(default)]
    pub teams: Vec<Team>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub support_hours: Vec<SupportHours>,
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    #[serde(default)]
    pub escalation_policies: Vec<EscalationPolicy>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub sources: Vec<Source>,
    #[serde(default)]
    pub heartbeats: Vec<Heartbeat>,
    #[serde(default)]
    pub status_page: Option<StatusPage>,
    #[serde(default)]
    pub audit: Audit,
    #[serde(default)]
    pub auth: Auth,
}

/// Signing in to the web UI.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// A session unused this long ends (default 12h).
    pub session_idle: Option<DurationSpec>,
    /// A session ends this long after sign-in, however busy (default 7d).
    pub session_lifetime: Option<DurationSpec>,
    /// Sign-in through an OpenID Connect provider.
    pub oidc: Option<Oidc>,
}

/// `auth.oidc`: an OpenID Connect provider (authorization code with PKCE).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Oidc {
    /// The issuer URL; `{issuer}/.well-known/openid-configuration` is read.
    pub issuer: String,
    pub client_id: String,
    /// The client secret (read from `client_secret_file`, or `${ENV}`).
    #[serde(skip_serializing)]
    pub client_secret: Option<String>,
    /// Scopes asked for besides `openid` (default `[email, profile]`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Make an observer account for an email no user has (default false:
    /// refused).
    #[serde(default)]
    pub allow_unknown_users: bool,
    /// The button's text (default "Sign in with single sign-on").
    pub label: Option<String>,
}

/// The audit log.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Entries older than this are deleted (default: `database.retention`;
    /// `0s` keeps them forever).
    pub retention: Option<DurationSpec>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// `host:port` to listen on (default 127.0.0.1:8080).
    pub listen: Option<String>,
    /// Base of every link Tocsin sends (default `http://{listen}`).
    pub public_url: Option<String>,
    /// Largest accepted request body in bytes (default 5 MiB).
    pub body_limit_bytes: Option<usize>,
    /// How long in-flight requests may take to finish at shutdown (default 10s).
    pub shutdown_timeout: Option<DurationSpec>,
    /// Serve HTTPS: `{cert_file, key_file}` (PEM; `cert`/`key` hold the PEM
    /// text itself, e.g. from `${ENV}`).
    pub tls: Option<Tls>,
}

/// `server.tls`: the certificate chain and its private key, as PEM.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain (read from `cert_file`).
    pub cert: String,
    /// The private key (read from `key_file`).
    pub key: String,
}

/// How notifications go out.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Pages to one contact within this long of a message are merged into
    /// one message sent when the window ends (default 10s; `0s` sends each
    /// page on its own).
    pub bundle_window: Option<DurationSpec>,
    /// How long the signed accept/resolve links in a message work
    /// (default 24h).
    pub action_link_ttl: Option<DurationSpec>,
    /// How a failed send is tried again.
    #[serde(default)]
    pub retry: RetryConfig,
}

/// `notifications.retry`: a send that fails with a temporary error (a
/// refused connection, a timeout, a 5xx or 429) is tried again after
/// `backoff`, doubling each time up to `max_backoff`, until `attempts`
/// attempts were made; then it is marked failed and the escalation goes on.
/// A permanent error (a 4xx, a bad address) is not retried.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included (default 8).
    pub attempts: Option<u32>,
    /// Wait after the first failure (default 10s).
    pub backoff: Option<DurationSpec>,
    /// Longest wait between two attempts (default 5m).
    pub max_backoff: Option<DurationSpec>,
}

/// Default number of attempts of a notification.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 8;
/// Default wait after a first failed attempt, in seconds.
pub const DEFAULT_RETRY_BACKOFF_SECS: u64 = 10;
/// Default longest wait between attempts, in seconds.
pub const DEFAULT_RETRY_MAX_BACKOFF_SECS: u64 = 300;

impl RetryConfig {
    pub fn attempts(&self) -> u32 {
        self.attempts.unwrap_or(DEFAULT_RETRY_ATTEMPTS)
    }

    pub fn backoff(&self) -> DurationSpec {
        self.backoff
            .unwrap_or(DurationSpec::from_secs(DEFAULT_RETRY_BACKOFF_SECS))
    }

    pub fn max_backoff(&self) -> DurationSpec {
        self.max_backoff
            .unwrap_or(DurationSpec::from_secs(DEFAULT_RETRY_MAX_BACKOFF_SECS))
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `sqlite://path` (default `sqlite://tocsin.db`) or `postgres://…`.
    pub url: Option<String>,
    /// Connection pool size (PostgreSQL; default 10).
    pub max_connections: Option<u32>,
    /// Resolved alerts older than this are deleted, with their timelines
    /// (default 90d; `0s` keeps them forever).
    pub retention: Option<DurationSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    pub name: String,
    /// The token itself (usually `${ENV}` or `token_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Or its SHA-256 digest, as 64 hex digits (`printf %s "$TOKEN" |
    /// sha256sum`): what storage keeps and `tocsin export` prints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    pub role: Role,
    /// The user the token acts as: it takes that user's teams, and its
    /// role may be no higher than theirs. Without one it is a service
    /// token with its role and no teams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl ApiToken {
    /// The digest the token is compared by (call on a validated config).
    pub fn digest(&self) -> Option<tocsin_domain::TokenDigest> {
        match (&self.token, &self.token_sha256) {
            (Some(t), _) => Some(tocsin_domain::TokenDigest::of(t)),
            (None, Some(h)) => tocsin_domain::TokenDigest::from_hex(h),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Providers {
    pub smtp: Option<Smtp>,
    pub twilio: Option<Twilio>,
    pub slack: Option<Slack>,
    pub ntfy: Option<Ntfy>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    pub from: String,
    #[serde(default)]
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
}

fn default_smtp_port() -> u16 {
    25
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Twilio {
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    #[serde(default = "default_twilio_base")]
    pub api_base: String,
}

fn default_twilio_base() -> String {
    "https://api.twilio.com".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    pub bot_token: Option<String>,
    pub signing_secret: Option<String>,
    /// Web API base (default https://slack.com/api); for Slack-compatible servers and tests.
    #[serde(default = "default_slack_base")]
    pub api_base: String,
}

fn default_slack_base() -> String {
    "https://slack.com/api".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ntfy {
    #[serde(default = "default_ntfy_base")]
    pub base_url: String,
    pub token: Option<String>,
}

fn default_ntfy_base() -> String {
    "https://ntfy.sh".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub id: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub timezone: Option<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default = "default_user_role")]
    pub role: Role,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub notify: NotifyRules,
}

fn default_user_role() -> Role {
    Role::Responder
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContactType {
    Email,
    Sms,
    Voice,
    Push,
    Slack,
    Webhook,
}

impl ContactType {
    /// The notification channel that serves this contact type.
    pub fn channel(self) -> &'static str {
        match self {
            ContactType::Email => "email",
            ContactType::Sms => "sms",
            ContactType::Voice => "voice",
            ContactType::Push => "push",
            ContactType::Slack => "slack",
            ContactType::Webhook => "webhook",
        }
    }

    /// The field a contact of this type must carry.
    pub fn required_field(self) -> &'static str {
        match self {
            ContactType::Email => "address",
            ContactType::Sms | ContactType::Voice => "number",
            ContactType::Push => "topic",
            ContactType::Slack => "webhook_url",
            ContactType::Webhook => "url",
        }
    }
}

/// One way to reach a user. Which field is required depends on `type`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ContactType,
    pub address: Option<String>,
    pub number: Option<String>,
    pub topic: Option<String>,
    pub webhook_url: Option<String>,
    pub url: Option<String>,
    /// Slack user or channel id for bot messages.
    pub channel: Option<String>,
    /// HMAC secret for `webhook` contacts.
    pub secret: Option<String>,
}

impl Contact {
    pub fn value(&self) -> Option<&str> {
        match self.kind {
            ContactType::Email => self.address.as_deref(),
            ContactType::Sms | ContactType::Voice => self.number.as_deref(),
            ContactType::Push => self.topic.as_deref(),
            ContactType::Slack => self.webhook_url.as_deref().or(self.channel.as_deref()),
            ContactType::Webhook => self.url.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyRules {
    #[serde(default)]
    pub high: Vec<NotifyRule>,
    #[serde(default)]
    pub low: Vec<NotifyRule>,
    /// Tell the user when a shift of theirs starts and ends, through the
    /// contacts of their `low` rules (default false).
    #[serde(default)]
    pub handoffs: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyRule {
    pub contact: String,
    pub after: DurationSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupportHours {
    pub id: String,
    pub timezone: String,
    /// Day spec (`mon-fri`, `sat`, `mon,wed`) → `HH:MM-HH:MM`.
    pub weekly: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub id: String,
    pub name: Option<String>,
    pub timezone: String,
    /// The owning team: its responders may add and remove overrides.
    pub team: Option<String>,
    #[serde(default)]
    pub layers: Vec<Layer>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub name: Option<String>,
    pub users: Vec<String>,
    pub rotation: DurationSpec,
    /// Local time of one handoff, `YYYY-MM-DDTHH:MM`.
    pub handoff: String,
    #[serde(default)]
    pub restrict: Vec<Restriction>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restriction {
    /// `mon-fri`, `sat,sun`, …; every day when left out.
    pub days: Option<String>,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub user: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    pub id: String,
    pub name: Option<String>,
    pub team: Option<String>,
    pub routing_key: Option<String>,
    #[serde(default)]
    pub repeat: u32,
    pub levels: Vec<Level>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// `user:ID` or `schedule:ID`.
    pub notify: Vec<String>,
    pub escalate_after: DurationSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub id: String,
    pub name: Option<String>,
    pub team: Option<String>,
    pub escalation_policy: Option<String>,
    #[serde(default)]
    pub public: bool,
    pub auto_incident_from: Option<Severity>,
    /// Where the service's incidents are announced (opened, each update,
    /// resolved).
    #[serde(default)]
    pub announce: Vec<Announce>,
}

/// One announcement channel of a service: a Slack incoming webhook, or a
/// webhook (a JSON POST, signed with `secret` like webhook contacts).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Announce {
    pub slack_webhook_url: Option<String>,
    pub webhook_url: Option<String>,
    pub secret: Option<String>,
}

pub use tocsin_domain::SourceType;

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub id: String,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: SourceType,
    /// The secret key; when left out, Tocsin generates one on first start and
    /// keeps it in the database.
    pub key: Option<String>,
    /// The owning team: its responders act on the source's alerts.
    pub team: Option<String>,
    pub escalation_policy: String,
    pub service: Option<String>,
    #[serde(default)]
    pub grouping: Grouping,
    #[serde(default)]
    pub severity_map: BTreeMap<String, Severity>,
    #[serde(default = "default_severity")]
    pub default_severity: Severity,
    #[serde(default = "default_high_from")]
    pub high_priority_from: Severity,
    pub support_hours: Option<String>,
    #[serde(default)]
    pub outside_support_hours: OutsideSupportHours,
    pub templates: Option<SourceTemplates>,
    /// Events per minute this source's key may send to the PagerDuty,
    /// Opsgenie and ilert endpoints before they answer 429 (default 120,
    /// as PagerDuty; `0` for no limit). Never applies to Alertmanager
    /// webhooks or heartbeats.
    pub rate_limit_per_minute: Option<u32>,
}

fn default_severity() -> Severity {
    Severity::Sev2
}

fn default_high_from() -> Severity {
    Severity::Sev1
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceTemplates {
    pub summary: Option<String>,
    pub details: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub id: String,
    pub name: Option<String>,
    pub key: Option<String>,
    pub interval: DurationSpec,
    #[serde(default = "default_grace")]
    pub grace: DurationSpec,
    /// The owning team: its responders act on the heartbeat's alerts.
    pub team: Option<String>,
    pub escalation_policy: String,
    pub service: Option<String>,
}

fn default_grace() -> DurationSpec {
    DurationSpec::from_secs(60)
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusPage {
    pub title: Option<String>,
    pub prometheus_url: Option<String>,
    #[serde(default)]
    pub charts: Vec<Chart>,
    /// The time zone of the page's days (uptime bars, dates); default UTC.
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    pub service: String,
    pub title: String,
    pub query: String,
    pub unit: Option<String>,
    /// How far back the chart shows (default 24h).
    pub range: Option<DurationSpec>,
    /// Its resolution (default: range / 288).
    pub step: Option<DurationSpec>,
}

impl Config {
    pub fn listen(&self) -> &str {
        self.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN)
    }

    pub fn database_url(&self) -> &str {
        self.database.url.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
    }

    /// How long resolved alerts are kept; `None` keeps them forever.
    pub fn retention(&self) -> Option<DurationSpec> {
        match self.database.retention {
            Some(d) if d.as_secs() == 0 => None,
            Some(d) => Some(d),
            None => Some(DurationSpec::from_secs(DEFAULT_RETENTION_DAYS * 86_400)),
        }
    }

    /// How long audit entries are kept (`None`: forever): `audit.retention`,
    /// else `database.retention`.
    pub fn audit_retention(&self) -> Option<DurationSpec> {
        match self.audit.retention {
            Some(d) if d.as_secs() == 0 => None,
            Some(d) => Some(d),
            None => self.retention(),
        }
    }

    /// A session unused this long ends (`auth.session_idle`, default 12 h).
    pub fn session_idle(&self) -> DurationSpec {
        self.auth
            .session_idle
            .unwrap_or(DurationSpec::from_secs(12 * 3600))
    }

    /// A session ends this long after sign-in (`auth.session_lifetime`,
    /// default 7 days).
    pub fn session_lifetime(&self) -> DurationSpec {
        self.auth
            .session_lifetime
            .unwrap_or(DurationSpec::from_secs(7 * 86_400))
    }

    /// The bundle window (default 10 s; zero turns bundling off).
    pub fn bundle_window(&self) -> DurationSpec {
        self.notifications
            .bundle_window
            .unwrap_or(DurationSpec::from_secs(DEFAULT_BUNDLE_WINDOW_SECS))
    }

    /// How long action links work (default 24 h).
    pub fn action_link_ttl(&self) -> DurationSpec {
        self.notifications
            .action_link_ttl
            .unwrap_or(DurationSpec::from_secs(DEFAULT_ACTION_LINK_TTL_SECS))
    }

    pub fn body_limit(&self) -> usize {
        self.server.body_limit_bytes.unwrap_or(DEFAULT_BODY_LIMIT)
    }

    pub fn policy(&self, id: &str) -> Option<&EscalationPolicy> {
        self.escalation_policies.iter().find(|p| p.id == id)
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// One line describing what the file declares.
    pub fn summary(&self) -> String {
        let n = |count: usize, one: &str, many: &str| {
            format!("{count} {}", if count == 1 { one } else { many })
        };
        [
            n(self.teams.len(), "team", "teams"),
            n(self.users.len(), "user", "users"),
            n(self.schedules.len(), "schedule", "schedules"),
            n(
                self.escalation_policies.len(),
                "escalation policy",
                "escalation policies",
            ),
            n(self.services.len(), "service", "services"),
            n(self.sources.len(), "source", "sources"),
            n(self.heartbeats.len(), "heartbeat", "heartbeats"),
            n(
                self.support_hours.len(),
                "support-hours calendar",
                "support-hours calendars",
            ),
            n(self.api_tokens.len(), "API token", "API tokens"),
        ]
        .join(", ")
    }
}

impl Schedule {
    /// The domain model of this schedule. Call on a validated config: a value
    /// that does not parse is left out (validation already reported it).
    pub fn to_domain(&self) -> tocsin_domain::schedule::Schedule {
        use crate::validate::{parse_days, parse_hhmm, parse_local_datetime};
        use tocsin_domain::schedule as s;
        let tz = self.timezone.parse().unwrap_or(chrono_tz::UTC);
        let layers = self
            .layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                Some(s::Layer {
                    name: l.name.clone().unwrap_or_else(|| format!("layer {}", i + 1)),
                    users: l.users.clone(),
                    rotation: s::Rotation::from_secs(l.rotation.as_secs()),
                    handoff: parse_local_datetime(&l.handoff).ok()?,
                    restrictions: l
                        .restrict
                        .iter()
                        .filter_map(|r| {
                            Some(s::Restriction {
                                days: match &r.days {
                                    Some(d) => parse_days(d).ok()?,
                                    None => Vec::new(),
                                },
                                from: parse_hhmm(&r.from).ok()?,
                                to: parse_hhmm(&r.to).ok()?,
                            })
                        })
                        .collect(),
                })
            })
            .collect();
        let overrides = self
            .overrides
            .iter()
            .filter_map(|o| {
                Some(s::Override {
                    user: o.user.clone(),
                    from: parse_local_datetime(&o.from).ok()?,
                    to: parse_local_datetime(&o.to).ok()?,
                })
            })
            .collect();
        s::Schedule {
            id: self.id.clone(),
            tz,
            layers,
            overrides,
        }
    }
}

impl SupportHours {
    /// The domain model of this calendar (call on a validated config).
    pub fn to_domain(&self) -> tocsin_domain::support_hours::SupportHours {
        use crate::validate::{parse_days, parse_window};
        tocsin_domain::support_hours::SupportHours {
            id: self.id.clone(),
            tz: self.timezone.parse().unwrap_or(chrono_tz::UTC),
            windows: self
                .weekly
                .iter()
                .filter_map(|(days, window)| {
                    let (from, to) = parse_window(window).ok()?;
                    Some(tocsin_domain::schedule::Restriction {
                        days: parse_days(days).ok()?,
                        from,
                        to,
                    })
                })
                .collect(),
        }
    }
}
