//! [`Application`]: the use-cases with what they run on (storage, the
//! catalog in effect, the clock). Every entry point holds one and calls
//! it: HTTP handlers, the link, Slack and Twilio callbacks, and workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tocsin_domain::catalog::SharedCatalog;
use tocsin_domain::incident::{auto_impact, auto_message, auto_title};
use tocsin_domain::support_hours::SupportHours;
use tocsin_domain::{AlertEvent, Catalog, OutsideSupportHours, Principal, SourceRouting};
use tocsin_store::{
    Actor, IngestResult, MaintenanceWindow, RoutedEvent, Store, StoreError, Transition,
    TransitionResult,
};

use crate::{AppError, Catalogs};

/// Where the use-cases get the time. The binary passes [`SystemClock`];
/// tests pass their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock: the one place Tocsin reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// What routing needs to know of the source an event came in on.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `prometheus`, `heartbeat:nightly`, …
    pub source_id: &'a str,
    /// The source's own policy and service, used when the event names none.
    pub policy_id: &'a str,
    pub service_id: Option<&'a str>,
    /// The source's support hours and what happens outside them.
    pub support: Option<(&'a SupportHours, OutsideSupportHours)>,
}

/// How long ingest trusts its copy of the maintenance windows (other
/// nodes' changes take effect within this).
const WINDOWS_CACHE: Duration = Duration::from_secs(1);

/// Who an alert is reassigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    User(String),
    Policy(String),
}

pub struct Application {
    pub store: Arc<dyn Store>,
    pub catalogs: Arc<Catalogs>,
    /// The typed catalog in effect, as the workers read it.
    pub catalog: Arc<SharedCatalog>,
    pub clock: Arc<dyn Clock>,
    windows: tokio::sync::Mutex<Option<(Instant, Vec<MaintenanceWindow>)>>,
    /// Moves with every change this node makes that the status page shows
    /// (other nodes' changes move the stored version).
    status_epoch: std::sync::atomic::AtomicU64,
    /// What messages call the status page (`status_page.title`).
    status_title: std::sync::OnceLock<String>,
}

impl Application {
    pub fn new(store: Arc<dyn Store>, catalogs: Arc<Catalogs>, clock: Arc<dyn Clock>) -> Arc<Self> {
        let catalog = Arc::new(SharedCatalog::of(catalogs.current().catalog.clone()));
        let shared = catalog.clone();
        catalogs.subscribe(move |loaded| shared.replace(loaded.catalog.clone()));
        Arc::new(Application {
            store,
            catalogs,
            catalog,
            clock,
            windows: tokio::sync::Mutex::new(None),
            status_epoch: std::sync::atomic::AtomicU64::new(0),
            status_title: std::sync::OnceLock::new(),
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Name the status page in messages (once, at start).
    pub fn set_status_title(&self, title: &str) {
        let _ = self.status_title.set(title.to_owned());
    }

    /// What messages call the status page.
    pub fn status_title(&self) -> &str {
        self.status_title.get().map_or("Status", String::as_str)
    }

    /// This node changed something the status page shows.
    pub fn status_changed(&self) {
        self.status_epoch
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Moves with every change of [`Application::status_changed`]; a cached
    /// status page compares it on every request.
    pub fn status_epoch(&self) -> u64 {
        self.status_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The maintenance windows active at `now` (read at most once a
    /// second). Storage trouble means no window is known: paging goes on,
    /// which is the safe side.
    pub async fn active_windows(&self, now: DateTime<Utc>) -> Vec<MaintenanceWindow> {
        let mut cache = self.windows.lock().await;
        let fresh = cache
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < WINDOWS_CACHE);
        if !fresh {
            match self.store.maintenance_windows(now).await {
                Ok(w) => *cache = Some((Instant::now(), w)),
                Err(e) => {
                    tracing::warn!(error = %e, "maintenance windows unavailable; paging as usual");
                    return Vec::new();
                }
            }
        }
        cache
            .as_ref()
            .map(|(_, w)| w.iter().filter(|w| w.is_active(now)).cloned().collect())
            .unwrap_or_default()
    }

    /// Forget the cached windows (one was created or ended here).
    pub async fn windows_changed(&self) {
        *self.windows.lock().await = None;
    }

    /// Support hours, routing and maintenance windows for mapped events:
    /// the one place these rules run, for every sender and for heartbeats.
    pub async fn route(
        &self,
        catalog: &Catalog,
        origin: Origin<'_>,
        events: Vec<AlertEvent>,
        now: DateTime<Utc>,
    ) -> Vec<RoutedEvent> {
        let windows = self.active_windows(now).await;
        let router = &catalog.router;
        events
            .into_iter()
            .map(|mut event| {
                let mut first_step_at = None;
                if let Some((hours, mode)) = origin.support {
                    let t = hours.treat(event.priority, mode, now);
                    event.priority = t.priority;
                    first_step_at = t.notify_at;
                    event.notes.extend(t.note);
                }
                let route = router.route(
                    &event.routing,
                    SourceRouting {
                        policy_id: origin.policy_id,
                        service_id: origin.service_id,
                    },
                );
                let page = match tocsin_store::covering(
                    &windows,
                    origin.source_id,
                    route.service_id.as_deref(),
                ) {
                    Some(w) => {
                        event.notes.push(w.held_note());
                        false
                    }
                    None => true,
                };
                // A service's alerts at or above `auto_incident_from` open
                // (or join) its incident; not in maintenance.
                let incident = route
                    .service_id
                    .as_deref()
                    .and_then(|s| catalog.services.get(s))
                    .filter(|_| page && !event.resolved)
                    .and_then(|svc| {
                        let impact = auto_impact(event.severity, svc.auto_incident_from)?;
                        Some(tocsin_store::AutoIncident {
                            service_id: svc.id.clone(),
                            impact,
                            title: auto_title(&svc.name, impact),
                            message: auto_message(&svc.name, impact),
                        })
                    });
                RoutedEvent {
                    event,
                    policy_id: route.policy_id,
                    service_id: route.service_id,
                    page,
                    incident,
                    route_note: route.note,
                    first_step_at,
                }
            })
            .collect()
    }

    /// Route events and store them (dedup, ordering, escalation) in one
    /// transaction; returns when committed.
    pub async fn ingest(
        &self,
        catalog: &Catalog,
        origin: Origin<'_>,
        actor: &Actor,
        events: Vec<AlertEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<IngestResult>, StoreError> {
        let routed = self.route(catalog, origin, events, now).await;
        self.store
            .ingest(origin.source_id, actor, routed, now)
            .await
    }

    /// Accept, un-accept or resolve an alert.
    pub async fn transition(
        &self,
        id: i64,
        t: Transition,
        actor: &Actor,
    ) -> Result<TransitionResult, AppError> {
        Ok(self.store.transition(id, t, actor, self.now()).await?)
    }

    /// Hand an alert to one person or another policy; escalation restarts
    /// at level 1 of the new target.
    pub async fn reassign(
        &self,
        id: i64,
        to: Assignee,
        actor: &Actor,
    ) -> Result<TransitionResult, AppError> {
        let catalog = self.catalog.current();
        let target = match to {
            Assignee::User(u) if catalog.users.contains_key(&u) => format!("user:{u}"),
            Assignee::User(u) => {
                return Err(AppError::Invalid(vec![tocsin_config::Problem::new(
                    "user",
                    format!("no user `{u}`"),
                )]));
            }
            Assignee::Policy(p) if catalog.policies.contains_key(&p) => p,
            Assignee::Policy(p) => {
                return Err(AppError::Invalid(vec![tocsin_config::Problem::new(
                    "escalation_policy",
                    format!("no escalation policy `{p}`"),
                )]));
            }
        };
        Ok(self.store.reassign(id, &target, actor, self.now()).await?)
    }

    /// Add a comment to an alert's timeline.
    pub async fn comment(
        &self,
        id: i64,
        actor: &Actor,
        text: &str,
    ) -> Result<Option<tocsin_store::TimelineEntry>, AppError> {
        Ok(self.store.comment(id, actor, text, self.now()).await?)
    }

    /// A heartbeat was pinged: arm it again (due after interval + grace),
    /// and when it was overdue resolve its alert through the ingest path
    /// of every sender. `None`: no such heartbeat in `catalog`.
    pub async fn heartbeat_ping(
        &self,
        catalog: &Catalog,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(tocsin_store::PingResult, DateTime<Utc>)>, AppError> {
        let Some(hb) = catalog.heartbeats.get(id) else {
            return Ok(None);
        };
        let due = now + hb.interval.as_chrono() + hb.grace.as_chrono();
        let r = self.store.heartbeat_ping(&hb.id, now, due).await?;
        if r.previous.as_deref() == Some("overdue") {
            let source = tocsin_wire::heartbeat::source_id(&hb.id);
            let origin = Origin {
                source_id: &source,
                policy_id: &hb.policy_id,
                service_id: hb.service_id.as_deref(),
                support: None,
            };
            let event = tocsin_wire::heartbeat::recovered(now)
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let actor = Actor::new(format!("heartbeat:{}", hb.id), "heartbeat ping");
            self.ingest(catalog, origin, &actor, vec![event], now)
                .await?;
        }
        Ok(Some((r, due)))
    }

    /// Put a catalog change made here in effect on this node at once
    /// (other nodes follow within a poll).
    pub(crate) async fn changed(&self) {
        if let Err(e) = self.catalogs.refresh(self.now()).await {
            tracing::warn!(error = %e, "could not reload the catalog after a change; the next poll will");
        }
    }

    /// Create a managed object (see [`crate::edit::create`]); admins only.
    pub async fn create_object(
        &self,
        p: &Principal,
        kind: &str,
        body: serde_json::Value,
    ) -> Result<crate::edit::Edited, AppError> {
        Self::check_catalog(p, kind)?;
        let actor = crate::access::actor(p, "api");
        let done = crate::edit::create(self.store.as_ref(), kind, body, &actor, self.now()).await?;
        self.changed().await;
        Ok(done)
    }

    /// Replace a managed object (see [`crate::edit::replace`]): admins, or
    /// a responder changing their own contacts and notify rules.
    pub async fn replace_object(
        &self,
        p: &Principal,
        kind: &str,
        id: &str,
        body: serde_json::Value,
        if_match: Option<i64>,
    ) -> Result<crate::edit::Edited, AppError> {
        if kind == "users" && p.role != tocsin_domain::Role::Admin {
            self.check_own_profile(p, id, &body).await?;
        } else {
            Self::check_catalog(p, &format!("{} {id}", crate::edit::singular(kind)))?;
        }
        let actor = crate::access::actor(p, "api");
        let done = crate::edit::replace(
            self.store.as_ref(),
            kind,
            id,
            body,
            if_match,
            &actor,
            self.now(),
        )
        .await?;
        self.changed().await;
        Ok(done)
    }

    /// Delete a managed object (see [`crate::edit::delete`]); admins only.
    pub async fn delete_object(
        &self,
        p: &Principal,
        kind: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(), AppError> {
        Self::check_catalog(p, &format!("{} {id}", crate::edit::singular(kind)))?;
        let actor = crate::access::actor(p, "api");
        crate::edit::delete(self.store.as_ref(), kind, id, if_match, &actor, self.now()).await?;
        self.changed().await;
        Ok(())
    }

    /// Give a source a new key (see [`crate::edit::rotate_key`]); admins only.
    pub async fn rotate_key(&self, p: &Principal, source: &str) -> Result<String, AppError> {
        Self::check_catalog(p, &format!("source {source}"))?;
        let actor = crate::access::actor(p, "api");
        let key = crate::edit::rotate_key(self.store.as_ref(), source, &actor, self.now()).await?;
        self.changed().await;
        Ok(key)
    }

    /// Add an override to a schedule (see [`crate::edit::create_override`]):
    /// admins, and responders of the schedule's team.
    pub async fn create_override(
        &self,
        p: &Principal,
        schedule: &str,
        body: serde_json::Value,
    ) -> Result<crate::edit::Edited, AppError> {
        if self.catalog.current().schedules.contains_key(schedule) {
            self.check_overrides(p, schedule)?;
        }
        let actor = crate::access::actor(p, "api");
        let done =
            crate::edit::create_override(self.store.as_ref(), schedule, body, &actor, self.now())
                .await?;
        self.changed().await;
        Ok(done)
    }

    /// Remove an override made through the API: admins, and responders of
    /// the schedule's team.
    pub async fn delete_override(
        &self,
        p: &Principal,
        schedule: &str,
        id: &str,
    ) -> Result<(), AppError> {
        if self.catalog.current().schedules.contains_key(schedule) {
            self.check_overrides(p, schedule)?;
        }
        let actor = crate::access::actor(p, "api");
        crate::edit::delete_override(self.store.as_ref(), schedule, id, &actor, self.now()).await?;
        self.changed().await;
        Ok(())
    }

    /// Plan, or plan and apply, a file sent by `tocsin apply` (applying:
    /// admins only; planning: every role).
    pub async fn upload(
        &self,
        p: &Principal,
        upload: crate::catalog::FileUpload,
        apply: bool,
    ) -> Result<crate::Plan, AppError> {
        if apply {
            Self::check_catalog(p, &format!("the catalog (applying {})", upload.file))?;
        }
        let actor = crate::access::actor(p, "api");
        let plan =
            crate::catalog::plan_upload(self.store.as_ref(), upload, apply, &actor, self.now())
                .await?;
        if apply && !plan.is_empty() {
            self.changed().await;
        }
        Ok(plan)
    }

    /// Provision a checked file (`serve --config`, SIGHUP) and put it in effect.
    pub async fn provision(
        &self,
        file: &str,
        config: &tocsin_config::Config,
        refs: &tocsin_config::Refs,
    ) -> Result<crate::Plan, AppError> {
        let actor = crate::catalog::file_actor(file);
        let plan =
            crate::catalog::provision(self.store.as_ref(), file, config, refs, &actor, self.now())
                .await?;
        self.changed().await;
        Ok(plan)
    }
}
