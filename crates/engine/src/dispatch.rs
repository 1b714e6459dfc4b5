//! The outbox dispatcher.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_domain::AlertStatus;
use tocsin_domain::links::{ActionLink, LinkAction, LinkSigner};
use tocsin_notify::{Brief, Channel, Message, SendError};
use tocsin_store::{Alert, ClaimedDelivery, DeliveryOutcome, Store};

use crate::{EngineError, claim_token};

/// Most attempts recorded in one transaction.
const FINISH_CHUNK: usize = 200;

/// What one tick did, per channel and outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Claims lost (cancelled by accept/resolve, or taken over).
    pub skipped: usize,
    /// (channel, outcome) for each attempt, for metrics.
    pub attempts: Vec<(String, &'static str)>,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    channels: HashMap<String, Arc<dyn Channel>>,
    public_url: String,
    pub lease: TimeDelta,
    pub batch: u32,
    /// Attempts before a notification is marked failed.
    pub max_attempts: i64,
    /// Wait after the first failure; doubles each time, up to `max_backoff`.
    pub backoff: TimeDelta,
    pub max_backoff: TimeDelta,
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

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, channels: Vec<Arc<dyn Channel>>, public_url: &str) -> Self {
        Dispatcher {
            store,
            channels: channels
                .into_iter()
                .map(|c| (c.name().to_owned(), c))
                .collect(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            lease: TimeDelta::seconds(60),
            batch: 50,
            max_attempts: 5,
            backoff: TimeDelta::seconds(10),
            max_backoff: TimeDelta::minutes(10),
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

    /// One message for a bundle of deliveries to one contact (most often a
    /// bundle of one). The most severe alert leads; the rest are listed.
    fn message(&self, bundle: &[ClaimedDelivery], now: DateTime<Utc>) -> Option<Message> {
        let mut alerts: Vec<&Alert> = bundle.iter().map(|d| &d.alert).collect();
        alerts.sort_by_key(|a| (a.severity, a.id));
        alerts.dedup_by_key(|a| a.id);
        let (lead, rest) = alerts.split_first()?;
        let user = &bundle.first()?.user_id;
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
        })
    }

    /// Wait before attempt `n + 1` after `n` failed attempts.
    fn backoff_after(&self, failed: i64) -> TimeDelta {
        let factor = 2i32.saturating_pow(u32::try_from(failed.saturating_sub(1)).unwrap_or(30));
        (self.backoff * factor).min(self.max_backoff)
    }

    /// Send every notification due at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<DispatchReport, EngineError> {
        let mut report = DispatchReport::default();
        loop {
            let claim = claim_token();
            let due = self
                .store
                .claim_due_deliveries(now, self.lease, self.batch, self.bundle_window, &claim)
                .await?;
            if due.is_empty() {
                break;
            }
            // One message per contact: what a claim returns for a contact
            // is its bundle. Without bundling, one message per page.
            let bundling = self.bundle_window > TimeDelta::zero();
            let mut bundles: Vec<Vec<ClaimedDelivery>> = Vec::new();
            let mut index: HashMap<(String, String, String, String, i64), usize> = HashMap::new();
            for d in due {
                let key = (
                    d.user_id.clone(),
                    d.contact_id.clone(),
                    d.channel.clone(),
                    d.address.clone(),
                    if bundling { 0 } else { d.id },
                );
                match index.get(&key) {
                    Some(&i) => {
                        if let Some(b) = bundles.get_mut(i) {
                            b.push(d);
                        }
                    }
                    None => {
                        index.insert(key, bundles.len());
                        bundles.push(vec![d]);
                    }
                }
            }
            // Send concurrently: one slow provider must not hold up the rest.
            let mut sends = tokio::task::JoinSet::new();
            // How many alerts each message names (a bundle may hold two
            // pages of one alert, e.g. a repeat round).
            let mut named = vec![1; bundles.len()];
            for (i, bundle) in bundles.iter().enumerate() {
                let Some(first) = bundle.first() else {
                    continue;
                };
                let Some(msg) = self.message(bundle, now) else {
                    continue;
                };
                if let Some(n) = named.get_mut(i) {
                    *n = msg.count();
                }
                let channel = self.channels.get(&first.channel).cloned();
                let address = first.address.clone();
                let name = first.channel.clone();
                let timeout = self.send_timeout;
                sends.spawn(async move {
                    let r = match channel {
                        None => Err(SendError::permanent(format!(
                            "no provider is configured for {name} notifications; set it under `providers` in tocsin.yaml"
                        ))),
                        Some(c) => match tokio::time::timeout(timeout, c.send(&address, &msg)).await {
                            Ok(r) => r,
                            Err(_) => Err(SendError::retry(format!("no answer within {}s", timeout.as_secs()))),
                        },
                    };
                    (i, r)
                });
            }
            let mut results: Vec<Option<Result<String, SendError>>> = vec![None; bundles.len()];
            while let Some(joined) = sends.join_next().await {
                if let Ok((i, r)) = joined
                    && let Some(slot) = results.get_mut(i)
                {
                    *slot = Some(r);
                }
            }
            let mut finished = Vec::new();
            let mut labels = Vec::new();
            for ((bundle, r), size) in bundles.into_iter().zip(results).zip(named) {
                let r = r.unwrap_or_else(|| Err(SendError::retry("the send task failed")));
                for d in bundle {
                    let attempt = d.attempts + 1;
                    let (outcome, label) = match &r {
                        Ok(detail) if size > 1 => (
                            DeliveryOutcome::Sent {
                                detail: format!("{detail}; one message bundling {size} alerts"),
                            },
                            "sent",
                        ),
                        Ok(detail) => (
                            DeliveryOutcome::Sent {
                                detail: detail.clone(),
                            },
                            "sent",
                        ),
                        Err(e) if e.retryable && attempt < self.max_attempts => (
                            DeliveryOutcome::Retry {
                                error: e.message.clone(),
                                next_at: now + self.backoff_after(attempt),
                            },
                            "retry",
                        ),
                        Err(e) => (
                            DeliveryOutcome::Failed {
                                error: e.message.clone(),
                            },
                            "failed",
                        ),
                    };
                    labels.push((d.channel.clone(), label));
                    finished.push((d, outcome));
                }
            }
            // One transaction per 200 results: a round is few transactions,
            // but a big bundle does not hold SQLite's one writer for long.
            let mut held = Vec::with_capacity(finished.len());
            let mut rest = finished;
            while !rest.is_empty() {
                let tail = rest.split_off(rest.len().min(FINISH_CHUNK));
                held.extend(self.store.finish_deliveries(rest, now).await?);
                rest = tail;
            }
            for (ok, (channel, label)) in held.into_iter().zip(labels) {
                if !ok {
                    report.skipped += 1;
                    continue;
                }
                match label {
                    "sent" => report.sent += 1,
                    "retry" => report.retried += 1,
                    _ => report.failed += 1,
                }
                report.attempts.push((channel, label));
            }
        }
        Ok(report)
    }
}
