//! What handlers share: the store, the sources with their keys, the router,
//! the API tokens and the metrics. The catalog part is rebuilt whenever a
//! new catalog is put in effect.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tocsin_app::{Application, Loaded};
use tocsin_domain::{Role, SeverityMap, SourceType, TokenDigest};
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
    pub limit: Arc<crate::ratelimit::Bucket>,
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

/// A heartbeat ready to be pinged.
pub(crate) struct HeartbeatRuntime {
    pub id: String,
    pub name: String,
    pub key_digest: TokenDigest,
    pub interval: tocsin_domain::DurationSpec,
    pub grace: tocsin_domain::DurationSpec,
    pub policy_id: String,
}

/// What handlers know of the catalog in effect: built whole from one
/// loaded catalog and replaced whole when it changes. A request takes it
/// once ([`AppState::live`]) and keeps it to the end.
pub(crate) struct Live {
    pub catalog: Arc<tocsin_domain::Catalog>,
    /// The stored objects, for the catalog API.
    pub loaded: Arc<Loaded>,
    pub sources: Vec<SourceRuntime>,
    pub schedules: Vec<ScheduleRuntime>,
    pub users: Vec<UserRuntime>,
    /// Slack's signing secret, when Slack interactivity is configured.
    pub slack_signing_secret: Option<String>,
    /// Slack user id → Tocsin user (from `slack` contacts with a `channel`).
    pub slack_users: HashMap<String, String>,
    /// Twilio's auth token, when Twilio is configured (signs its callbacks).
    pub twilio_auth_token: Option<String>,
    /// Phone number → Tocsin user (from `sms` and `voice` contacts).
    pub phone_users: HashMap<String, String>,
    pub heartbeats: Vec<HeartbeatRuntime>,
}

pub(crate) struct Inner {
    /// The use-cases every handler calls.
    pub app: Arc<Application>,
    /// `app.store`, for reads.
    pub store: Arc<dyn Store>,
    pub live: std::sync::RwLock<Arc<Live>>,
    pub metrics: Arc<Metrics>,
    pub body_limit: usize,
    pub store_timeout: Duration,
    pub public_url: String,
    pub links: tocsin_domain::links::LinkSigner,
    /// Woken after ingest creates alerts, so the escalation worker runs at
    /// once instead of at its next poll.
    pub wake: Arc<tokio::sync::Notify>,
    /// Woken after ingest queued pages itself (a new alert's first level),
    /// so the dispatcher sends them at once.
    pub dispatch: Arc<tokio::sync::Notify>,
    /// The notification channels, for test notifications (replaced when
    /// the providers change).
    pub channels: std::sync::RwLock<Arc<HashMap<String, Arc<dyn tocsin_notify::Channel>>>>,
    /// Sign-in to the web UI.
    pub ui: crate::ui::UiSettings,
    /// The live alert list's poller, started by its first viewer.
    pub live_alerts: crate::ui::live::Hub,
    /// The single sign-on provider's metadata, once read.
    pub oidc: crate::ui::oidc::Provider,
    /// The status page's settings.
    pub status: crate::status::StatusSettings,
    /// The public status page's snapshot and chart drawings.
    pub status_cache: crate::status::Cache,
}

/// The item whose key digest matches `key`. Every digest is compared, in
/// constant time, so the time taken says nothing about which one matched.
pub(crate) fn find_by_key<'a, T>(
    items: &'a [T],
    key: &str,
    digest_of: impl Fn(&T) -> &TokenDigest,
) -> Option<&'a T> {
    find_index_by_key(items, key, digest_of).and_then(|i| items.get(i))
}

/// The index of the item whose key digest matches `key` (every one compared).
pub(crate) fn find_index_by_key<T>(
    items: &[T],
    key: &str,
    digest_of: impl Fn(&T) -> &TokenDigest,
) -> Option<usize> {
    let digest = TokenDigest::of(key);
    let mut found = None;
    for (i, item) in items.iter().enumerate() {
        if digest_of(item).ct_eq(&digest) && found.is_none() {
            found = Some(i);
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

impl Live {
    /// The runtime view of `loaded`. Rate-limit buckets of sources whose
    /// limit did not change carry over from `previous`.
    fn build(loaded: &Arc<Loaded>, previous: Option<&Live>) -> Result<Live, StateError> {
        let c = &loaded.catalog;
        let secrets = &loaded.secrets;
        let mut heartbeats = Vec::new();
        for (index, h) in c.heartbeats.values().enumerate() {
            let key = secrets.heartbeat_keys.get(&h.id).ok_or_else(|| {
                StateError::MissingHeartbeatKey {
                    index,
                    id: h.id.clone(),
                }
            })?;
            heartbeats.push(HeartbeatRuntime {
                id: h.id.clone(),
                name: h.name.clone(),
                key_digest: TokenDigest::of(key),
                interval: h.interval,
                grace: h.grace,
                policy_id: h.policy_id.clone(),
            });
        }
        let mut sources = Vec::new();
        for (index, s) in c.sources.values().enumerate() {
            let key = secrets
                .source_keys
                .get(&s.id)
                .ok_or_else(|| StateError::MissingKey {
                    index,
                    id: s.id.clone(),
                })?;
            let templates = if s.summary_template.is_some() || s.details_template.is_some() {
                Some(
                    Templates::compile(
                        s.summary_template.as_deref(),
                        s.details_template.as_deref(),
                    )
                    .map_err(|e| StateError::Template {
                        index,
                        message: e.0,
                    })?,
                )
            } else {
                None
            };
            let limit = previous
                .and_then(|p| p.sources.iter().find(|old| old.id == s.id))
                .filter(|old| old.limit.limit() == s.rate_limit_per_minute)
                .map(|old| old.limit.clone())
                .unwrap_or_else(|| {
                    Arc::new(crate::ratelimit::Bucket::per_minute(
                        s.rate_limit_per_minute,
                    ))
                });
            sources.push(SourceRuntime {
                id: s.id.clone(),
                kind: s.kind,
                key_digest: TokenDigest::of(key),
                policy_id: s.policy_id.clone(),
                service_id: s.service_id.clone(),
                support: s.support_hours.as_ref().and_then(|id| {
                    c.support_hours
                        .get(id)
                        .map(|h| (h.clone(), s.outside_support_hours))
                }),
                limit,
                prometheus: PrometheusSettings {
                    grouping: s.grouping,
                    severity_map: SeverityMap::new(&s.severity_map, s.default_severity),
                    high_priority_from: Some(s.high_priority_from),
                    templates,
                },
            });
        }
        let schedules = c
            .schedules
            .iter()
            .map(|(id, s)| {
                Ok(ScheduleRuntime {
                    model: s.model.clone(),
                    name: s.name.clone(),
                    feed_token: secrets.schedule_feeds.get(id).cloned().ok_or_else(|| {
                        StateError::MissingFeed {
                            kind: "schedule",
                            id: id.clone(),
                        }
                    })?,
                })
            })
            .collect::<Result<Vec<_>, StateError>>()?;
        let users = c
            .users
            .values()
            .map(|u| {
                Ok(UserRuntime {
                    id: u.id.clone(),
                    contacts: u
                        .contacts
                        .iter()
                        .map(|ct| (ct.id.clone(), ct.channel.clone(), ct.address.clone()))
                        .collect(),
                    name: u.name.clone(),
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
        Ok(Live {
            catalog: c.clone(),
            loaded: loaded.clone(),
            sources,
            schedules,
            users,
            slack_signing_secret: c
                .providers
                .slack
                .as_ref()
                .and_then(|s| s.signing_secret.clone()),
            slack_users: c
                .users
                .values()
                .flat_map(|u| {
                    u.contacts
                        .iter()
                        .filter_map(|ct| ct.slack_id.clone().map(|ch| (ch, u.id.clone())))
                })
                .collect(),
            twilio_auth_token: c.providers.twilio.as_ref().map(|t| t.auth_token.clone()),
            phone_users: c
                .users
                .values()
                .flat_map(|u| {
                    u.contacts
                        .iter()
                        .filter(|ct| matches!(ct.channel.as_str(), "sms" | "voice"))
                        .map(|ct| (normalize_number(&ct.address), u.id.clone()))
                })
                .collect(),
            heartbeats,
        })
    }

    pub(crate) fn heartbeat_by_key(&self, key: &str) -> Option<&HeartbeatRuntime> {
        find_by_key(&self.heartbeats, key, |h| &h.key_digest)
    }

    pub(crate) fn user_name(&self, id: &str) -> String {
        self.catalog.user_name(id)
    }
}

/// A source found by its key, with the catalog it was found in: a request
/// routes with that catalog to the end, whatever is put in effect meanwhile.
pub struct LiveSource {
    pub(crate) live: Arc<Live>,
    index: usize,
}

impl LiveSource {
    /// What routing needs of this source.
    pub(crate) fn origin(&self) -> tocsin_app::Origin<'_> {
        tocsin_app::Origin {
            source_id: &self.id,
            policy_id: &self.policy_id,
            service_id: self.service_id.as_deref(),
            support: self.support.as_ref().map(|(h, m)| (h, *m)),
        }
    }
}

impl std::ops::Deref for LiveSource {
    type Target = SourceRuntime;
    fn deref(&self) -> &SourceRuntime {
        &self.live.sources[self.index]
    }
}

/// What the HTTP layer is told at start besides the catalog.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Largest accepted request body in bytes.
    pub body_limit: usize,
    /// The base of links (no trailing slash).
    pub public_url: String,
    /// Sign-in to the web UI.
    pub ui: crate::ui::UiSettings,
    /// `status_page` of tocsin.yaml.
    pub status: crate::status::StatusSettings,
}

impl AppState {
    /// Build the state on the catalog in effect; [`AppState::set_catalog`]
    /// replaces it later.
    pub fn new(
        settings: WebSettings,
        app: &Arc<Application>,
        channels: Vec<Arc<dyn tocsin_notify::Channel>>,
    ) -> Result<Self, StateError> {
        let catalogs = &app.catalogs;
        let loaded = &catalogs.current();
        let live = Live::build(loaded, None)?;
        let state = AppState(Arc::new(Inner {
            app: app.clone(),
            store: app.store.clone(),
            live: std::sync::RwLock::new(Arc::new(live)),
            metrics: Arc::new(Metrics::with_clock(app.clock.clone())),
            body_limit: settings.body_limit,
            store_timeout: Duration::from_secs(8),
            public_url: settings.public_url.trim_end_matches('/').to_owned(),
            ui: settings.ui,
            status: settings.status,
            status_cache: crate::status::Cache::default(),
            live_alerts: crate::ui::live::Hub::default(),
            oidc: Default::default(),
            links: tocsin_domain::links::LinkSigner::new(&loaded.secrets.link_secret),
            channels: std::sync::RwLock::new(Arc::new(by_name(channels))),
            wake: Arc::new(tokio::sync::Notify::new()),
            dispatch: Arc::new(tokio::sync::Notify::new()),
        }));
        // Every catalog put in effect from now on reaches the handlers.
        let weak = Arc::downgrade(&state.0);
        catalogs.subscribe(move |loaded| {
            if let Some(inner) = weak.upgrade()
                && let Err(e) = AppState(inner).set_catalog(loaded)
            {
                tracing::error!(error = %e, "the new catalog cannot be served; HTTP keeps the one in effect");
            }
        });
        Ok(state)
    }

    /// Put a newly loaded catalog in effect for the requests that start
    /// from now on. A catalog that cannot be served keeps the old one.
    pub fn set_catalog(&self, loaded: &Arc<Loaded>) -> Result<(), StateError> {
        let live = Arc::new(Live::build(loaded, Some(&self.live()))?);
        match self.0.live.write() {
            Ok(mut l) => *l = live,
            Err(poisoned) => *poisoned.into_inner() = live,
        }
        Ok(())
    }

    /// The source of the catalog in effect whose key this is (every source
    /// is compared, in constant time, whatever matches).
    pub(crate) fn source_by_key(&self, key: &str) -> Option<LiveSource> {
        let live = self.live();
        let index = find_index_by_key(&live.sources, key, |s| &s.key_digest)?;
        Some(LiveSource { live, index })
    }

    /// The source of the catalog in effect with this id.
    pub(crate) fn source_by_id(&self, id: &str) -> Option<LiveSource> {
        let live = self.live();
        let index = live.sources.iter().position(|s| s.id == id)?;
        Some(LiveSource { live, index })
    }

    /// Send test notifications through `channels` from now on.
    pub fn set_channels(&self, channels: Vec<Arc<dyn tocsin_notify::Channel>>) {
        let channels = Arc::new(by_name(channels));
        match self.0.channels.write() {
            Ok(mut c) => *c = channels,
            Err(poisoned) => *poisoned.into_inner() = channels,
        }
    }

    /// The channels in effect.
    pub(crate) fn channels(&self) -> Arc<HashMap<String, Arc<dyn tocsin_notify::Channel>>> {
        match self.0.channels.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The application clock's time.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.app.now()
    }

    /// The catalog in effect now.
    pub(crate) fn live(&self) -> Arc<Live> {
        match self.0.live.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
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

fn by_name(
    channels: Vec<Arc<dyn tocsin_notify::Channel>>,
) -> HashMap<String, Arc<dyn tocsin_notify::Channel>> {
    channels
        .into_iter()
        .map(|c| (c.name().to_owned(), c))
        .collect()
}

/// A phone number without spaces, dashes or parentheses.
pub(crate) fn normalize_number(n: &str) -> String {
    n.chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}
