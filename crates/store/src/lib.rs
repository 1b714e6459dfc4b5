//! Tocsin's storage. One [`Store`] trait; [`SqliteStore`] (default, a single
//! file in WAL mode) and [`PgStore`] (several nodes) implement it with the
//! same SQL, written once in `imp.rs` over a small backend trait (`db.rs`);
//! the statements that differ are data in `dialect.rs`. Only this crate
//! knows SQL.
//!
//! Times are stored as milliseconds since the Unix epoch and structured
//! fields as JSON text, so both backends share one schema shape.

mod audit;
mod catalog;
mod db;
mod dialect;
mod error;
mod group;
mod imp;
mod incident;
mod model;
mod notice;
mod plan;
mod postgres;
mod session;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tocsin_domain::AlertStatus;

pub use error::StoreError;
pub use incident::{
    AutoIncident, Incident, IncidentChange, IncidentEvent, IncidentFilter, IncidentNote,
    IncidentService, NewIncident, PublicEvent, ServiceSpan, StatusVersion,
};
pub use model::*;
pub use notice::{NewNotice, Notice, NoticeOutcome, NoticeRow, Subscriber};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Everything Tocsin keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Succeeds when the database answers a query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The whole catalog, as of one version.
    async fn catalog(&self) -> Result<StoredCatalog, StoreError>;

    /// The catalog's version: one read by primary key, so that every node
    /// can poll it and reload only when it moved.
    async fn catalog_version(&self) -> Result<i64, StoreError>;

    /// Apply `writes` in one transaction: every expectation is checked
    /// there, and one that fails ([`StoreError::Conflict`]) applies
    /// nothing. A write that changes something bumps the version once and
    /// stamps the changed objects with it.
    /// `audit` is appended in the same transaction when something changed.
    async fn write_catalog(
        &self,
        writes: &[CatalogWrite],
        audit: &[AuditRecord],
        now: DateTime<Utc>,
    ) -> Result<CatalogCommit, StoreError>;

    /// The key of a source: `configured` when the config file sets one (it is
    /// stored), else the stored key, else `generated` (stored for next time).
    async fn source_key(
        &self,
        source_id: &str,
        configured: Option<&str>,
        generated: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError>;

    /// A secret Tocsin made for itself (`scope` such as `ical-schedule`):
    /// the stored one, or `generated` (stored for next time and other nodes).
    async fn named_secret(
        &self,
        scope: &str,
        id: &str,
        generated: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError>;

    /// Apply events from one source in one transaction: dedupe, order,
    /// create, update or resolve, and append to timelines. Returns when
    /// committed.
    async fn ingest(
        &self,
        source_id: &str,
        actor: &Actor,
        events: Vec<RoutedEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<IngestResult>, StoreError>;

    /// From now on, run the first escalation level of every new alert due
    /// at once inside its ingest transaction, planned by `planner`: the
    /// page is queued when the alert is committed, and no worker has to
    /// claim the step. Without a planner every new alert gets a pending
    /// step for the escalation worker.
    fn run_first_levels(&self, planner: std::sync::Arc<dyn StepPlanner>);

    /// Wake-ups that other nodes sharing the database send when they queue
    /// work (PostgreSQL `LISTEN`/`NOTIFY`), so that whichever node is free
    /// runs it without waiting for a poll. `None` on SQLite, which has one
    /// node. The listener reconnects by itself; wake-ups sent while it was
    /// away are lost, which costs at most one poll.
    async fn listen(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Wake>>, StoreError>;

    /// Alerts matching `filter`, newest first.
    async fn list_alerts(&self, filter: &AlertFilter) -> Result<AlertPage, StoreError>;

    async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError>;

    async fn timeline(&self, alert_id: i64) -> Result<Vec<TimelineEntry>, StoreError>;

    /// Accept or resolve an alert on behalf of a person or token.
    async fn transition(
        &self,
        alert_id: i64,
        action: Transition,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult, StoreError>;

    /// Hand an open alert to another escalation policy (or `user:ID`): it
    /// becomes pending and escalation restarts at level 1 of the new target.
    /// `Conflict` for a resolved alert.
    async fn reassign(
        &self,
        alert_id: i64,
        policy_id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult, StoreError>;

    /// Add a comment to the timeline. `None` when the alert does not exist.
    async fn comment(
        &self,
        alert_id: i64,
        actor: &Actor,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TimelineEntry>, StoreError>;

    /// Delete up to `limit` alerts resolved before `resolved_before`, with
    /// their labels and timelines. Returns how many were deleted.
    async fn prune_resolved(
        &self,
        resolved_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Claim up to `limit` escalation steps due at `now` (or whose lease
    /// ran out), leasing them until `now + lease` under `claim`. On
    /// PostgreSQL, rows another node holds are skipped (`SKIP LOCKED`).
    async fn claim_due_steps(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: u32,
        claim: &str,
    ) -> Result<Vec<ClaimedStep>, StoreError>;

    /// Mark a claimed step done and, in the same transaction, queue its
    /// notifications, its next step and its timeline entries. `false` (and
    /// nothing written) when the claim was lost: the alert was accepted or
    /// resolved meanwhile, or another worker took over after the lease.
    async fn complete_step(
        &self,
        step: &ClaimedStep,
        done: StepDone,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Claim the due pages of up to `contacts` contacts, as one bundle per
    /// contact, leased until `now + lease` under `claim`. Contacts are
    /// picked in the order their oldest page fell due, so one person's
    /// backlog takes one place in the queue, never a place per page.
    ///
    /// With a non-zero `bundle` window, a contact whose last message went
    /// out less than `bundle` ago is not picked: its pages stay where they
    /// are (nothing is re-queued) and all go into its next bundle. A picked
    /// contact's bundle holds every page due for it, and its gate closes
    /// until `now + bundle`. With a zero window a bundle is one page.
    ///
    /// Each bundle carries up to `listed` of its alerts, most severe first.
    /// Pages whose lease ran out (a worker died) are due again. On
    /// PostgreSQL, contacts another node is claiming are skipped.
    async fn claim_bundles(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        contacts: u32,
        bundle: chrono::TimeDelta,
        listed: u32,
        claim: &str,
    ) -> Result<Vec<ClaimedBundle>, StoreError>;

    /// Record an attempt of a bundle: its result on every page it still
    /// holds and on the timeline of each of its alerts. Returns how many
    /// pages it recorded: 0 when the claim was lost (all cancelled by an
    /// accept or resolve, or taken over after the lease).
    async fn finish_bundle(
        &self,
        bundle: &ClaimedBundle,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Extend the lease of bundles still being sent to `until`.
    async fn renew_bundles(
        &self,
        claims: &[String],
        until: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Notifications waiting to be sent (the outbox depth).
    async fn outbox_depth(&self) -> Result<i64, StoreError>;

    /// Complete many claimed steps in one transaction (see `complete_step`);
    /// one answer per item, in order.
    async fn complete_steps(
        &self,
        items: Vec<(ClaimedStep, StepDone)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError>;

    /// The escalation steps of an alert, oldest first.
    async fn steps(&self, alert_id: i64) -> Result<Vec<EscalationStep>, StoreError>;

    /// The notifications of an alert, oldest first.
    async fn deliveries(&self, alert_id: i64) -> Result<Vec<Delivery>, StoreError>;

    /// Deliveries that failed for good, newest first.
    async fn failed_deliveries(&self, limit: u32) -> Result<Vec<Delivery>, StoreError>;

    /// Open alerts (pending or accepted) that paged `user` or that they
    /// accepted, newest first.
    async fn open_alerts_of_user(&self, user: &str, limit: u32) -> Result<Vec<Alert>, StoreError>;

    /// Open a maintenance window (audited). A public one is on the status
    /// page, and its subscribers and announcements are queued.
    async fn create_maintenance(
        &self,
        window: &NewMaintenance,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<MaintenanceWindow, StoreError>;

    /// End a window now; `None` when there is no such window.
    async fn end_maintenance(
        &self,
        id: i64,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<MaintenanceWindow>, StoreError>;

    /// Windows not ended and not over at `now` (active or upcoming).
    async fn maintenance_windows(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaintenanceWindow>, StoreError>;

    /// Number of alerts in each status.
    async fn count_by_status(&self) -> Result<Vec<(AlertStatus, i64)>, StoreError>;

    /// The newest open alert of a source with this dedup key.
    async fn open_alert_id(
        &self,
        source_id: &str,
        dedup_key: &str,
    ) -> Result<Option<i64>, StoreError>;

    /// Record a change event.
    async fn record_change(&self, change: NewChange) -> Result<ChangeEvent, StoreError>;

    /// Record a ping of heartbeat `id` at `now`: healthy until `due_at`.
    async fn heartbeat_ping(
        &self,
        id: &str,
        now: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> Result<PingResult, StoreError>;

    /// Claim healthy heartbeats whose `due_at` has passed (lease `lease`).
    async fn claim_overdue_heartbeats(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        claim: &str,
    ) -> Result<Vec<DueHeartbeat>, StoreError>;

    /// Mark a claimed heartbeat overdue with the alert raised for it.
    /// `false` when a ping came in meanwhile (the claim is gone).
    async fn mark_heartbeat_overdue(
        &self,
        due: &DueHeartbeat,
        alert_id: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// Every armed heartbeat.
    async fn heartbeat_rows(&self) -> Result<Vec<HeartbeatRow>, StoreError>;

    /// Audit entries matching `filter`, newest first. Every change the
    /// store makes for a person or a file (catalog writes, alert actions,
    /// maintenance windows, tokens) appended its entry in its own
    /// transaction; nothing edits them.
    async fn audit(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError>;

    /// Delete up to `limit` audit entries older than `before` (retention).
    async fn prune_audit(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;

    /// Store a personal API token (and its audit entry).
    async fn create_token(
        &self,
        token: &NewToken,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<PersonalToken, StoreError>;

    /// The personal token with this id, revoked or not, with the digest
    /// of its secret (for the caller to compare in constant time).
    async fn token_with_digest(
        &self,
        id: &str,
    ) -> Result<Option<(PersonalToken, tocsin_domain::TokenDigest)>, StoreError>;

    /// One personal token by id, revoked or not.
    async fn token(&self, id: &str) -> Result<Option<PersonalToken>, StoreError>;

    /// Personal tokens not revoked, of one user or of all.
    async fn tokens(&self, user: Option<&str>) -> Result<Vec<PersonalToken>, StoreError>;

    /// Revoke a token at once (its audit entry in the same transaction).
    async fn revoke_token(
        &self,
        id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<PersonalToken>, StoreError>;

    /// Record that a token was used (at most one write a minute a token).
    async fn touch_token(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// One maintenance window by id.
    async fn maintenance_window(&self, id: i64) -> Result<Option<MaintenanceWindow>, StoreError>;

    /// Change events, newest first: of one service, or all.
    async fn changes(
        &self,
        service_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ChangeEvent>, StoreError>;
    /// Alerts whose `updated_at` is at or after `since`, oldest change
    /// first, at most `limit` (the live alert list's poll).
    async fn alerts_changed_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError>;

    /// Set `user`'s password hash (an argon2 PHC string), audited. Every
    /// other session of the user ends; `keep` is the one that stays.
    async fn set_password(
        &self,
        user: &str,
        hash: &str,
        keep: Option<&str>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// `user`'s password hash, if they have one.
    async fn password_hash(&self, user: &str) -> Result<Option<String>, StoreError>;

    /// The users who have a password.
    async fn users_with_password(&self) -> Result<Vec<String>, StoreError>;

    /// Store a browser session (its sign-in audited in the same transaction).
    async fn create_session(
        &self,
        session: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<Session, StoreError>;

    /// The session whose secret has this digest, ended or not.
    async fn session_by_digest(
        &self,
        digest: &tocsin_domain::TokenDigest,
    ) -> Result<Option<Session>, StoreError>;

    /// Record that a session was used (at most one write a minute).
    async fn touch_session(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// End one of `user`'s sessions (audited). `None` when it is not theirs.
    async fn end_session(
        &self,
        user: &str,
        id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError>;

    /// `user`'s live sessions, newest first.
    async fn sessions(&self, user: &str, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError>;

    /// Note one failed sign-in against each subject (`user:ID`, `address:IP`).
    async fn record_sign_in_failure(
        &self,
        subjects: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Failed sign-ins against `subject` since `since`.
    async fn sign_in_failures(
        &self,
        subject: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Forget `subject`'s failed sign-ins.
    async fn clear_sign_in_failures(&self, subject: &str) -> Result<(), StoreError>;

    /// Delete sessions that ended or expired before `before`, and older
    /// failed sign-ins.
    async fn prune_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Store a one-time setup link (its digest).
    async fn create_setup_link(
        &self,
        digest: &tocsin_domain::TokenDigest,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Whether this setup link exists and is unused.
    async fn setup_link_open(
        &self,
        digest: &tocsin_domain::TokenDigest,
    ) -> Result<bool, StoreError>;

    /// Spend a setup link on `user`'s password (and every other open link
    /// with it), in one transaction. `false` when it was unknown or used.
    async fn use_setup_link(
        &self,
        digest: &tocsin_domain::TokenDigest,
        user: &str,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Open an incident by hand (audited): its services, its first update
    /// and the alerts it links. A service without an open incident makes
    /// this its current one, which its new alerts join.
    async fn open_incident(
        &self,
        new: &NewIncident,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Incident, StoreError>;

    /// One incident with its services and linked alerts.
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError>;

    /// An incident's timeline, oldest first.
    async fn incident_events(&self, id: i64) -> Result<Vec<IncidentEvent>, StoreError>;

    /// Incidents matching `filter`, newest first.
    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError>;

    /// Post an update (audited); from then on the incident does not
    /// resolve by itself. `Conflict` once resolved; `None`: no such incident.
    async fn post_incident_update(
        &self,
        id: i64,
        note: &IncidentNote,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError>;

    /// Change title, severity, services and impacts, or responders (each
    /// change on the timeline, audited). `Conflict` once resolved.
    async fn change_incident(
        &self,
        id: i64,
        change: &IncidentChange,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError>;

    /// Resolve by hand with a last update (audited). `Conflict` when it
    /// is resolved already.
    async fn resolve_incident(
        &self,
        id: i64,
        message: &str,
        public: bool,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError>;

    /// Link (`linked`) or unlink an alert (audited, on the timeline).
    async fn link_incident_alert(
        &self,
        id: i64,
        alert_id: i64,
        linked: bool,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError>;

    /// The incidents an alert is linked to, newest first.
    async fn incidents_of_alert(&self, alert_id: i64) -> Result<Vec<i64>, StoreError>;

    /// Open incidents nobody holds whose linked alerts are all resolved.
    async fn resolvable_incidents(&self, limit: u32) -> Result<Vec<i64>, StoreError>;

    /// Resolve one of those if it still qualifies; `false` otherwise (a
    /// person took it over, an alert reopened, another node did it).
    async fn auto_resolve_incident(
        &self,
        id: i64,
        message: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The status page's version: one read by primary key.
    async fn status_version(&self) -> Result<StatusVersion, StoreError>;

    /// State history spans that overlap `[since, now]`.
    async fn service_spans(&self, since: DateTime<Utc>) -> Result<Vec<ServiceSpan>, StoreError>;

    /// Public updates, newest first (the feed), with their incidents'
    /// titles and services.
    async fn public_incident_events(&self, limit: u32) -> Result<Vec<PublicEvent>, StoreError>;

    /// Open incidents and those resolved since `since`, with timelines
    /// (without their `alert_ids`: the status page needs none).
    async fn recent_incidents(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Incident, Vec<IncidentEvent>)>, StoreError>;

    /// Incident titles by id.
    async fn incident_titles(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, String>, StoreError>;

    /// Subscribe to the status page (`email` or `webhook`); a live
    /// subscription of the same address takes the new services. `confirmed`
    /// for one that needs no double opt-in. Returns it and whether it is new.
    #[allow(clippy::too_many_arguments)]
    async fn subscribe(
        &self,
        kind: &str,
        address: &str,
        services: &[String],
        confirmed: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(Subscriber, bool), StoreError>;

    /// One subscriber by id, live or not.
    async fn subscriber(&self, id: i64) -> Result<Option<Subscriber>, StoreError>;

    /// Confirm a live subscription; `None` when there is none.
    async fn confirm_subscriber(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscriber>, StoreError>;

    /// End a live subscription; `None` when there is none.
    async fn unsubscribe(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscriber>, StoreError>;

    /// Live subscribers, or only the confirmed ones.
    async fn subscribers(&self, confirmed: bool) -> Result<Vec<Subscriber>, StoreError>;

    /// Queue notices; ones queued before (same `dedup`) are skipped.
    async fn queue_notices(
        &self,
        notices: &[NewNotice],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Incident updates and maintenance windows still to be told.
    async fn fanout_pending(
        &self,
        limit: u32,
    ) -> Result<(Vec<IncidentEvent>, Vec<MaintenanceWindow>), StoreError>;

    /// Queue their notices and mark them told, in one transaction.
    async fn fan_out(
        &self,
        events: &[i64],
        windows: &[i64],
        notices: &[NewNotice],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Claim due notices, leased until `now + lease`.
    async fn claim_notices(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: u32,
        claim: &str,
    ) -> Result<Vec<Notice>, StoreError>;

    /// Record an attempt; `false` when the claim was lost.
    async fn finish_notice(
        &self,
        notice: &Notice,
        outcome: &NoticeOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Notices, newest first.
    async fn notices(&self, limit: u32) -> Result<Vec<NoticeRow>, StoreError>;

    /// Take the turn to ask Prometheus for a status page chart: `true` when
    /// no node has within `every`.
    async fn claim_chart_fetch(
        &self,
        chart: &str,
        now: DateTime<Utc>,
        every: chrono::TimeDelta,
    ) -> Result<bool, StoreError>;

    /// Store what Prometheus answered for a chart (after a claim).
    async fn store_chart(&self, chart: &str, body: &str) -> Result<(), StoreError>;

    /// The last stored answer for a chart, and when it was asked for.
    async fn chart(&self, chart: &str) -> Result<Option<(DateTime<Utc>, String)>, StoreError>;

    /// Where a user's handoff watch got to.
    async fn handoff_mark(&self, user: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Move it forward.
    async fn set_handoff_mark(&self, user: &str, upto: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Open the store a database URL names (`sqlite://…` or `postgres://…`) and
/// apply its migrations.
pub async fn connect(url: &str, max_connections: u32) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Box::new(PgStore::connect(url, max_connections).await?))
    } else {
        Err(StoreError::Config(
            "the database URL must start with sqlite:// or postgres://".into(),
        ))
    }
}
