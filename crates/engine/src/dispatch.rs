//! The outbox dispatcher.
//!
//! Work is claimed per contact, not per page: a claim picks the contacts
//! whose oldest page fell due first and takes, for each, one bundle (every
//! due page with bundling, one page without). A bundle is one message. So a
//! backlog of any size for one person costs one claim and one message per
//! bundle window, and never stands in front of anybody else's page.
//!
//! Sends run concurrently and each bundle is recorded as soon as its send
//! ends, so one slow provider holds up only its own messages. In the
//! long-running loop ([`Dispatcher::run`]) claims are refilled as sends
//! finish, leases of bundles still being sent are renewed, and a stop
//! request ends the claiming and waits for what is in flight to be sent and
//! recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_domain::AlertStatus;
use tocsin_domain::links::{ActionLink, LinkAction, LinkSigner};
use tocsin_notify::{BUNDLE_LISTED, Brief, Channel, Message, SendError};
use tocsin_store::{Alert, ClaimedBundle, DeliveryOutcome, Store};
use tokio::sync::{Notify, watch};

use crate::{Clock, EngineError, claim_token};

/// How a failed send is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; then the pages are failed.
    pub attempts: i64,
    /// Wait after the first failure; doubles each time, up to `max_backoff`.
    pub backoff: TimeDelta,
    pub max_backoff: TimeDelta,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            backoff: TimeDelta::seconds(10),
            max_backoff: TimeDelta::minutes(5),
        }
    }
}

impl RetryPolicy {
    /// Wait before the next attempt after `failed` failed attempts.
    pub fn backoff_after(&self, failed: i64) -> TimeDelta {
        let doublings = u32::try_from(failed.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let factor = 2i32.saturating_pow(doublings);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// What a send's result means for attempt number `attempt`.
    pub fn outcome(
        &self,
        result: &Result<String, SendError>,
        attempt: i64,
        now: DateTime<Utc>,
    ) -> DeliveryOutcome {
        match result {
            Ok(detail) => DeliveryOutcome::Sent {
                detail: detail.clone(),
            },
            Err(e) if e.retryable && attempt < self.attempts => DeliveryOutcome::Retry {
                error: e.message.clone(),
                next_at: now + self.backoff_after(attempt),
            },
            Err(e) => DeliveryOutcome::Failed {
                error: e.message.clone(),
            },
        }
    }
}

/// What a tick (or one bundle) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Messages that went out, and the pages they carried.
    pub sent: usize,
    pub pages_sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Bundles whose claim was lost (cancelled by accept/resolve, or taken
    /// over after the lease).
    pub skipped: usize,
    /// (channel, outcome) for each message attempt, for metrics.
    pub attempts: Vec<(String, &'static str)>,
    /// Bundles claimed (this node's share of the work).
    pub claimed: usize,
    /// Pages taken over from a worker whose lease ran out.
    pub taken_over: usize,
}

impl DispatchReport {
    fn add(&mut self, other: DispatchReport) {
        self.sent += other.sent;
        self.pages_sent += other.pages_sent;
        self.retried += other.retried;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.attempts.extend(other.attempts);
        self.claimed += other.claimed;
        self.taken_over += other.taken_over;
    }
}

/// The channels in effect, by name.
type Channels = HashMap<String, Arc<dyn Channel>>;

pub struct Dispatcher {
    store: Arc<dyn Store>,
    /// Replaced whole when the providers change; a send keeps the one it
    /// started with.
    channels: std::sync::RwLock<Arc<Channels>>,
    public_url: String,
    /// How long a claim lasts unless renewed; the loop renews the leases of
    /// bundles still being sent every third of it. After a crash another
    /// worker takes the pages over once it ran out.
    pub lease: TimeDelta,
    /// Contacts claimed at once.
    pub contacts: u32,
    /// Most messages being sent at one time by [`Dispatcher::run`].
    pub max_in_flight: usize,
    pub retry: RetryPolicy,
    /// Longest a single send may take.
    pub send_timeout: Duration,
    /// Signs the accept/resolve links in messages; none without it.
    pub links: Option<LinkSigner>,
    /// How long action links work.
    pub link_ttl: TimeDelta,
    /// Pages to one contact within this long of its last message wait and
    /// go out together as one message (zero: no bundling).
    pub bundle_window: TimeDelta,
}

fn by_name(channels: Vec<Arc<dyn Channel>>) -> Channels {
    channels
        .into_iter()
        .map(|c| (c.name().to_owned(), c))
        .collect()
}

/// Claim tokens of bundles being sent, with how many bundles each holds.
type InFlight = Arc<Mutex<HashMap<String, usize>>>;

impl Dispatcher {
    /// The channels in effect.
    fn channels(&self) -> Arc<Channels> {
        match self.channels.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Send through `channels` from now on (the providers changed).
    pub fn set_channels(&self, channels: Vec<Arc<dyn Channel>>) {
        let channels = Arc::new(by_name(channels));
        match self.channels.write() {
            Ok(mut c) => *c = channels,
            Err(poisoned) => *poisoned.into_inner() = channels,
        }
    }

    pub fn new(store: Arc<dyn Store>, channels: Vec<Arc<dyn Channel>>, public_url: &str) -> Self {
        Dispatcher {
            store,
            channels: std::sync::RwLock::new(Arc::new(by_name(channels))),
            public_url: public_url.trim_end_matches('/').to_owned(),
            lease: TimeDelta::seconds(15),
            contacts: 50,
            max_in_flight: 64,
            retry: RetryPolicy::default(),
            send_timeout: Duration::from_secs(30),
            links: None,
            link_ttl: TimeDelta::hours(24),
            bundle_window: TimeDelta::seconds(10),
        }
    }

    /// Signed action links for `user` on alert `a`.
    fn actions(&self, a: &Alert, user: &str, now: DateTime<Utc>) -> Vec<(String, String)> {
        let Some(signer) = &self.links else {
            return Vec::new();
        };
        if !a.status.is_open() {
            return Vec::new();
        }
        [
            (LinkAction::Accept, "Accept"),
            (LinkAction::Resolve, "Resolve"),
        ]
        .into_iter()
        .filter(|(act, _)| !(*act == LinkAction::Accept && a.status == AlertStatus::Accepted))
        .map(|(action, label)| {
            let link = ActionLink {
                alert_id: a.id,
                action,
                user: user.to_owned(),
                expires: (now + self.link_ttl).timestamp(),
            };
            (
                label.to_owned(),
                format!("{}/act/{action}?{}", self.public_url, signer.query(&link)),
            )
        })
        .collect()
    }

    fn alert_url(&self, id: i64) -> String {
        format!("{}/api/v1/alerts/{id}", self.public_url)
    }

    /// The message of a bundle (most often a bundle of one). The most severe
    /// alert leads; the next ones are listed and the rest counted.
    fn message(&self, bundle: &ClaimedBundle, now: DateTime<Utc>) -> Option<Message> {
        let (lead, rest) = bundle.alerts.split_first()?;
        let user = &bundle.user_id;
        let total = usize::try_from(bundle.alert_count)
            .unwrap_or(0)
            .max(bundle.alerts.len());
        Some(Message {
            alert_id: lead.id,
            summary: lead.summary.clone(),
            details: lead.details.clone(),
            severity: lead.severity,
            priority: lead.priority,
            status: lead.status,
            links: lead.links.clone(),
            alert_url: self.alert_url(lead.id),
            actions: self.actions(lead, user, now),
            recipient: user.clone(),
            also: rest
                .iter()
                .map(|a| Brief {
                    alert_id: a.id,
                    summary: a.summary.clone(),
                    severity: a.severity,
                    priority: a.priority,
                    status: a.status,
                    alert_url: self.alert_url(a.id),
                    actions: self.actions(a, user, now),
                })
                .collect(),
            unlisted: total - bundle.alerts.len(),
            delivery_id: format!("{}-{}", bundle.first_page, bundle.contact_id),
        })
    }

    /// Claim bundles for up to `contacts` contacts.
    pub async fn claim(
        &self,
        now: DateTime<Utc>,
        contacts: u32,
    ) -> Result<Vec<ClaimedBundle>, EngineError> {
        let listed = u32::try_from(BUNDLE_LISTED + 1).unwrap_or(u32::MAX);
        Ok(self
            .store
            .claim_bundles(
                now,
                self.lease,
                contacts,
                self.bundle_window,
                listed,
                &claim_token(),
            )
            .await?)
    }

    /// Send one bundle as one message and record the result, at the time
    /// `clock` tells when the send ended.
    pub async fn deliver(
        &self,
        bundle: ClaimedBundle,
        clock: &dyn Clock,
    ) -> Result<DispatchReport, EngineError> {
        let sent_at = clock.now();
        let result = match self.message(&bundle, sent_at) {
            // Every alert of the bundle is gone (pruned): nothing to say.
            None => Err(SendError::permanent(
                "the alerts of these pages no longer exist",
            )),
            Some(msg) => match self.channels().get(&bundle.channel).cloned() {
                None => Err(SendError::permanent(format!(
                    "no provider is configured for {} notifications; set it under `providers` in tocsin.yaml",
                    bundle.channel
                ))),
                Some(c) => {
                    match tokio::time::timeout(self.send_timeout, c.send(&bundle.address, &msg))
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(SendError::retry(format!(
                            "no answer within {}s",
                            self.send_timeout.as_secs()
                        ))),
                    }
                }
            },
        };
        let now = clock.now();
        let outcome = self.retry.outcome(&result, bundle.attempts + 1, now);
        let label = match &outcome {
            DeliveryOutcome::Sent { .. } => "sent",
            DeliveryOutcome::Retry { .. } => "retry",
            DeliveryOutcome::Failed { .. } => "failed",
        };
        let pages = self.store.finish_bundle(&bundle, outcome, now).await?;
        let mut report = DispatchReport {
            claimed: 1,
            taken_over: usize::try_from(bundle.taken_over).unwrap_or(0),
            ..DispatchReport::default()
        };
        if pages == 0 {
            report.skipped = 1;
            return Ok(report);
        }
        match label {
            "sent" => {
                report.sent = 1;
                report.pages_sent = usize::try_from(pages).unwrap_or(usize::MAX);
            }
            "retry" => report.retried = 1,
            _ => report.failed = 1,
        }
        report.attempts.push((bundle.channel.clone(), label));
        Ok(report)
    }

    /// Send everything due at `now`, as of `now`: claim, send every bundle
    /// concurrently, record, and again until nothing is due.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<DispatchReport, EngineError> {
        let clock = crate::FixedClock(now);
        let mut report = DispatchReport::default();
        loop {
            let due = self.claim(now, self.contacts).await?;
            if due.is_empty() {
                break;
            }
            let sends = due.into_iter().map(|b| self.deliver(b, &clock));
            for r in futures_util::future::join_all(sends).await {
                report.add(r?);
            }
        }
        Ok(report)
    }

    /// Deliver until `stop` turns true: claim whenever a send slot is free
    /// (every `poll`, and `coalesce` after `wake`), send each bundle in its
    /// own task, renew the leases of bundles in flight, and hand each
    /// bundle's report to `report`. When stopped, claim nothing more, wait
    /// for the sends in flight to end and be recorded, then return.
    pub async fn run(
        self: Arc<Self>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
        poll: Duration,
        coalesce: Duration,
        report: Arc<dyn Fn(&DispatchReport) + Send + Sync>,
    ) {
        let in_flight: InFlight = Arc::default();
        let mut tasks = tokio::task::JoinSet::new();
        let mut every = crate::poll_every(poll);
        let renew_every = (self.lease / 3).to_std().unwrap_or(Duration::from_secs(5));
        let mut renew = crate::poll_every(renew_every.max(Duration::from_millis(100)));
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = stop.changed() => continue,
                _ = every.tick() => {}
                _ = wake.notified() => {
                    if !coalesce.is_zero() {
                        tokio::time::sleep(coalesce).await;
                    }
                }
                _ = renew.tick() => {
                    self.renew(&in_flight, clock.now()).await;
                    continue;
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    // A slot is free: claim again right away.
                    if let Ok(Some(r)) = done {
                        report(&r);
                    }
                }
            }
            // Fill the free slots.
            while tasks.len() < self.max_in_flight && !*stop.borrow() {
                let free = u32::try_from(self.max_in_flight - tasks.len()).unwrap_or(u32::MAX);
                let claimed = match self.claim(clock.now(), free.min(self.contacts)).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "notifications: storage unavailable; retrying");
                        break;
                    }
                };
                if claimed.is_empty() {
                    break;
                }
                if let Some(claim) = claimed.first().map(|b| b.claim.clone())
                    && let Ok(mut m) = in_flight.lock()
                {
                    *m.entry(claim).or_default() += claimed.len();
                }
                for bundle in claimed {
                    let me = self.clone();
                    let clock = clock.clone();
                    let in_flight = in_flight.clone();
                    tasks.spawn(async move {
                        let claim = bundle.claim.clone();
                        let r = me.deliver(bundle, clock.as_ref()).await;
                        if let Ok(mut m) = in_flight.lock()
                            && let Some(n) = m.get_mut(&claim)
                        {
                            *n -= 1;
                            if *n == 0 {
                                m.remove(&claim);
                            }
                        }
                        match r {
                            Ok(r) => Some(r),
                            Err(e) => {
                                tracing::warn!(error = %e, "notifications: could not record an attempt; its lease will run out and it is tried again");
                                None
                            }
                        }
                    });
                }
            }
        }
        if !tasks.is_empty() {
            tracing::info!(
                in_flight = tasks.len(),
                "notifications: finishing the messages being sent"
            );
        }
        loop {
            tokio::select! {
                done = tasks.join_next() => match done {
                    Some(Ok(Some(r))) => report(&r),
                    Some(_) => {}
                    None => break,
                },
                _ = renew.tick() => self.renew(&in_flight, clock.now()).await,
            }
        }
    }

    async fn renew(&self, in_flight: &InFlight, now: DateTime<Utc>) {
        let claims: Vec<String> = match in_flight.lock() {
            Ok(m) => m.keys().cloned().collect(),
            Err(_) => return,
        };
        if claims.is_empty() {
            return;
        }
        if let Err(e) = self.store.renew_bundles(&claims, now + self.lease).await {
            tracing::warn!(error = %e, "notifications: could not renew the leases of messages being sent");
        }
    }
}
