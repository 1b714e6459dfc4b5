//! What handlers share: the store, the sources with their keys, the router,
//! the API tokens and the metrics. Built once from the validated config.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tocsin_config::{Config, SourceType};
use tocsin_domain::{Role, Router, SeverityMap, TokenDigest};
use tocsin_store::Store;
use tocsin_wire::Templates;
use tocsin_wire::alertmanager::PrometheusSettings;

use crate::metrics::Metrics;

/// A source ready to receive: its key (as a digest), mapping settings and routing.
pub struct SourceRuntime {
    pub id: String,
    pub kind: SourceType,
    pub key_digest: TokenDigest,
    pub policy_id: String,
    pub service_id: Option<String>,
    pub prometheus: PrometheusSettings,
    /// Support hours and what happens outside them.
    pub support: Option<(
        tocsin_domain::support_hours::SupportHours,
        tocsin_domain::OutsideSupportHours,
    )>,
    /// The per-key limit of the PagerDuty, Opsgenie and ilert endpoints.
    pub limit: crate::ratelimit::Bucket,
}

pub(crate) struct ApiTokenRuntime {
    pub name: String,
    pub digest: TokenDigest,
    pub role: Role,
}

/// A schedule with what the API shows of it.
pub(crate) struct ScheduleRuntime {
    pub model: tocsin_domain::schedule::Schedule,
    pub name: String,
    pub feed_token: String,
}

/// A user as the API shows them.
pub(crate) struct UserRuntime {
    pub id: String,
    /// (contact id, channel, address)
    pub contacts: Vec<(String, String, String)>,
    pub name: String,
    pub email: Option<String>,
    pub timezone: Option<String>,
    pub role: Role,
    pub teams: Vec<String>,
    pub feed_token: String,
}

/// Secrets resolved by the caller before the state is built.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    /// Source id → its key (from the file, or generated and stored).
    pub source_keys: HashMap<String, String>,
    /// Schedule id → the token of its calendar feed.
    pub schedule_feeds: HashMap<String, String>,
    /// User id → the token of their "my shifts" feed.
    pub user_feeds: HashMap<String, String>,
    /// The key that signs accept/resolve links in messages.
    pub link_secret: String,
    /// Heartbeat id → its key (from the file, or generated and stored).
    pub heartbeat_keys: HashMap<String, String>,
}

/// A heartbeat ready to be pinged.
pub(crate) struct HeartbeatRuntime {
    pub id: String,
    pub name: String,
    pub key_digest: TokenDigest,
    pub interval: tocsin_domain::DurationSpec,
    pub grace: tocsin_domain::DurationSpec,
    pub policy_id: String,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub sources: Vec<SourceRuntime>,
    pub router: Router,
    pub tokens: Vec<ApiTokenRuntime>,
    pub metrics: Arc<Metrics>,
    pub body_limit: usize,
    pub store_timeout: Duration,
    pub public_url: String,
    pub schedules: Vec<ScheduleRuntime>,
    pub users: Vec<UserRuntime>,
    pub links: tocsin_domain::links::LinkSigner,
    pub policy_ids: std::collections::HashSet<String>,
    /// Slack's signing secret, when Slack interactivity is configured.
    pub slack_signing_secret: Option<String>,
    /// Slack user id → Tocsin user (from `slack` contacts with a `channel`).
    pub slack_users: HashMap<String, String>,
    /// Twilio's auth token, when Twilio is configured (signs its callbacks).
    pub twilio_auth_token: Option<String>,
    /// Phone number → Tocsin user (from `sms` and `voice` contacts).
    pub phone_users: HashMap<String, String>,
    /// Woken after ingest creates alerts, so the escalation worker runs at
    /// once instead of at its next poll.
    pub wake: Arc<tokio::sync::Notify>,
    /// Woken after ingest queued pages itself (a new alert's first level),
    /// so the dispatcher sends them at once.
    pub dispatch: Arc<tokio::sync::Notify>,
    /// The notification channels, for test notifications.
    pub channels: HashMap<String, Arc<dyn tocsin_notify::Channel>>,
    /// Maintenance windows as last read, and when (read at most once a second).
    pub maintenance:
        tokio::sync::Mutex<Option<(std::time::Instant, Vec<tocsin_store::MaintenanceWindow>)>>,
    pub source_ids: std::collections::HashSet<String>,
    pub service_ids: std::collections::HashSet<String>,
    pub heartbeats: Vec<HeartbeatRuntime>,
}

/// The item whose key digest matches `key`. Every digest is compared, in
/// constant time, so the time taken says nothing about which one matched.
pub(crate) fn find_by_key<'a, T>(
    items: &'a [T],
    key: &str,
    digest_of: impl Fn(&T) -> &TokenDigest,
) -> Option<&'a T> {
    let digest = TokenDigest::of(key);
    let mut found = None;
    for item in items {
        if digest_of(item).ct_eq(&digest) && found.is_none() {
            found = Some(item);
        }
    }
    found
}

/// Shared, cheaply cloned application state.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "sources[{index}] (`{id}`): no key; the caller must resolve keys before building the state"
    )]
    MissingKey { index: usize, id: String },
    #[error("sources[{index}].templates: {message}")]
    Template { index: usize, message: String },
    #[error(
        "{kind} `{id}`: no calendar feed token; the caller must resolve feed tokens before building the state"
    )]
    MissingFeed { kind: &'static str, id: String },
    #[error(
        "heartbeats[{index}] (`{id}`): no key; the caller must resolve keys before building the state"
    )]
    MissingHeartbeatKey { index: usize, id: String },
}

impl AppState {
    /// Build the state from a validated config and the secrets resolved
    /// from storage. `public_url` is the base of links (no trailing slash).
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        secrets: &Secrets,
        public_url: &str,
        channels: Vec<Arc<dyn tocsin_notify::Channel>>,
    ) -> Result<Self, StateError> {
        let mut heartbeats = Vec::new();
        for (index, h) in config.heartbeats.iter().enumerate() {
            let key = secrets.heartbeat_keys.get(&h.id).ok_or_else(|| {
                StateError::MissingHeartbeatKey {
                    index,
                    id: h.id.clone(),
                }
            })?;
            heartbeats.push(HeartbeatRuntime {
                id: h.id.clone(),
                name: h.name.clone().unwrap_or_else(|| h.id.clone()),
                key_digest: TokenDigest::of(key),
                interval: h.interval,
                grace: h.grace,
                policy_id: h.escalation_policy.clone(),
            });
        }
        let keys = &secrets.source_keys;
        let mut sources = Vec::new();
        for (index, s) in config.sources.iter().enumerate() {
            let key = keys.get(&s.id).ok_or_else(|| StateError::MissingKey {
                index,
                id: s.id.clone(),
            })?;
            let templates = match &s.templates {
                Some(t) => Some(
                    Templates::compile(t.summary.as_deref(), t.details.as_deref()).map_err(
                        |e| StateError::Template {
                            index,
                            message: e.0,
                        },
                    )?,
                ),
                None => None,
            };
            sources.push(SourceRuntime {
                id: s.id.clone(),
                kind: s.kind,
                key_digest: TokenDigest::of(key),
                policy_id: s.escalation_policy.clone(),
                service_id: s.service.clone(),
                support: s.support_hours.as_ref().and_then(|id| {
                    config
                        .support_hours
                        .iter()
                        .find(|h| &h.id == id)
                        .map(|h| (h.to_domain(), s.outside_support_hours))
                }),
                limit: crate::ratelimit::Bucket::per_minute(
                    s.rate_limit_per_minute
                        .unwrap_or(tocsin_config::DEFAULT_RATE_LIMIT_PER_MINUTE),
                ),
                prometheus: PrometheusSettings {
                    grouping: s.grouping,
                    severity_map: SeverityMap::new(&s.severity_map, s.default_severity),
                    high_priority_from: Some(s.high_priority_from),
                    templates,
                },
            });
        }
        let router = Router {
            policies_by_routing_key: config
                .escalation_policies
                .iter()
                .filter_map(|p| p.routing_key.clone().map(|k| (k, p.id.clone())))
                .collect(),
            services: config
                .services
                .iter()
                .map(|s| (s.id.clone(), s.escalation_policy.clone()))
                .collect(),
        };
        let tokens = config
            .api_tokens
            .iter()
            .map(|t| ApiTokenRuntime {
                name: t.name.clone(),
                digest: TokenDigest::of(&t.token),
                role: t.role,
            })
            .collect();
        let schedules = config
            .schedules
            .iter()
            .map(|s| {
                Ok(ScheduleRuntime {
                    model: s.to_domain(),
                    name: s.name.clone().unwrap_or_else(|| s.id.clone()),
                    feed_token: secrets.schedule_feeds.get(&s.id).cloned().ok_or_else(|| {
                        StateError::MissingFeed {
                            kind: "schedule",
                            id: s.id.clone(),
                        }
                    })?,
                })
            })
            .collect::<Result<Vec<_>, StateError>>()?;
        let users = config
            .users
            .iter()
            .map(|u| {
                Ok(UserRuntime {
                    id: u.id.clone(),
                    contacts: u
                        .contacts
                        .iter()
                        .filter_map(|c| {
                            c.value()
                                .map(|v| (c.id.clone(), c.kind.channel().to_owned(), v.to_owned()))
                        })
                        .collect(),
                    name: u.name.clone().unwrap_or_else(|| u.id.clone()),
                    email: u.email.clone(),
                    timezone: u.timezone.clone(),
                    role: u.role,
                    teams: u.teams.clone(),
                    feed_token: secrets.user_feeds.get(&u.id).cloned().ok_or_else(|| {
                        StateError::MissingFeed {
                            kind: "user",
                            id: u.id.clone(),
                        }
                    })?,
                })
            })
            .collect::<Result<Vec<_>, StateError>>()?;
        Ok(AppState(Arc::new(Inner {
            store,
            sources,
            router,
            tokens,
            metrics: Arc::new(Metrics::new()),
            body_limit: config.body_limit(),
            store_timeout: Duration::from_secs(8),
            public_url: public_url.trim_end_matches('/').to_owned(),
            schedules,
            users,
            links: tocsin_domain::links::LinkSigner::new(&secrets.link_secret),
            policy_ids: config
                .escalation_policies
                .iter()
                .map(|p| p.id.clone())
                .collect(),
            slack_signing_secret: config
                .providers
                .slack
                .as_ref()
                .and_then(|s| s.signing_secret.clone()),
            slack_users: config
                .users
                .iter()
                .flat_map(|u| {
                    u.contacts
                        .iter()
                        .filter(|c| c.kind == tocsin_config::ContactType::Slack)
                        .filter_map(|c| c.channel.clone().map(|ch| (ch, u.id.clone())))
                })
                .collect(),
            channels: channels
                .into_iter()
                .map(|c| (c.name().to_owned(), c))
                .collect(),
            maintenance: tokio::sync::Mutex::new(None),
            wake: Arc::new(tokio::sync::Notify::new()),
            dispatch: Arc::new(tokio::sync::Notify::new()),
            // Heartbeats are sources too (`heartbeat:ID`), for maintenance windows.
            source_ids: config
                .sources
                .iter()
                .map(|s| s.id.clone())
                .chain(
                    config
                        .heartbeats
                        .iter()
                        .map(|h| tocsin_wire::heartbeat::source_id(&h.id)),
                )
                .collect(),
            service_ids: config.services.iter().map(|s| s.id.clone()).collect(),
            heartbeats,
            twilio_auth_token: config
                .providers
                .twilio
                .as_ref()
                .map(|t| t.auth_token.clone()),
            phone_users: config
                .users
                .iter()
                .flat_map(|u| {
                    u.contacts
                        .iter()
                        .filter(|c| {
                            matches!(
                                c.kind,
                                tocsin_config::ContactType::Sms | tocsin_config::ContactType::Voice
                            )
                        })
                        .filter_map(|c| {
                            c.number
                                .as_deref()
                                .map(|n| (normalize_number(n), u.id.clone()))
                        })
                })
                .collect(),
        })))
    }

    /// The source whose key this is. Every source is compared, in constant
    /// time, whatever matches.
    pub(crate) fn heartbeat_by_key(&self, key: &str) -> Option<&HeartbeatRuntime> {
        find_by_key(&self.0.heartbeats, key, |h| &h.key_digest)
    }

    pub(crate) fn source_by_key(&self, key: &str) -> Option<&SourceRuntime> {
        find_by_key(&self.0.sources, key, |s| &s.key_digest)
    }

    pub(crate) fn user_name(&self, id: &str) -> String {
        self.0
            .users
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    pub(crate) fn feed_url(&self, token: &str) -> String {
        format!("{}/ical/{token}.ics", self.0.public_url)
    }

    /// Notified whenever ingest has created alerts (new escalation steps).
    pub fn escalation_wakeup(&self) -> Arc<tokio::sync::Notify> {
        self.0.wake.clone()
    }

    /// Notified whenever ingest has queued pages (the dispatcher's wake-up).
    pub fn dispatch_wakeup(&self) -> Arc<tokio::sync::Notify> {
        self.0.dispatch.clone()
    }

    /// The metrics registry, for workers outside the HTTP layer.
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.0.metrics.clone()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}

/// A phone number without spaces, dashes or parentheses.
pub(crate) fn normalize_number(n: &str) -> String {
    n.chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}
