//! The outbox dispatcher.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_domain::AlertStatus;
use tocsin_domain::links::{ActionLink, LinkAction, LinkSigner};
use tocsin_notify::{Channel, Message, SendError};
use tocsin_store::{ClaimedDelivery, DeliveryOutcome, Store};

use crate::{EngineError, claim_token};

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
        }
    }

    fn message(&self, d: &ClaimedDelivery, now: DateTime<Utc>) -> Message {
        let a = &d.alert;
        let actions = match &self.links {
            Some(signer) if a.status.is_open() => [
                (LinkAction::Accept, "Accept"),
                (LinkAction::Resolve, "Resolve"),
            ]
            .into_iter()
            .filter(|(act, _)| !(*act == LinkAction::Accept && a.status == AlertStatus::Accepted))
            .map(|(action, label)| {
                let link = ActionLink {
                    alert_id: a.id,
                    action,
                    user: d.user_id.clone(),
                    expires: (now + self.link_ttl).timestamp(),
                };
                (
                    label.to_owned(),
                    format!("{}/act/{action}?{}", self.public_url, signer.query(&link)),
                )
            })
            .collect(),
            _ => Vec::new(),
        };
        Message {
            alert_id: a.id,
            summary: a.summary.clone(),
            details: a.details.clone(),
            severity: a.severity,
            priority: a.priority,
            status: a.status,
            links: a.links.clone(),
            alert_url: format!("{}/api/v1/alerts/{}", self.public_url, a.id),
            actions,
            recipient: d.user_id.clone(),
        }
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
                .claim_due_deliveries(now, self.lease, self.batch, &claim)
                .await?;
            if due.is_empty() {
                break;
            }
            // Send concurrently: one slow provider must not hold up the rest.
            let mut sends = tokio::task::JoinSet::new();
            for (i, d) in due.iter().enumerate() {
                let channel = self.channels.get(&d.channel).cloned();
                let msg = self.message(d, now);
                let address = d.address.clone();
                let name = d.channel.clone();
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
            let mut results: Vec<Option<Result<String, SendError>>> = vec![None; due.len()];
            while let Some(joined) = sends.join_next().await {
                if let Ok((i, r)) = joined
                    && let Some(slot) = results.get_mut(i)
                {
                    *slot = Some(r);
                }
            }
            let mut finished = Vec::with_capacity(due.len());
            let mut labels = Vec::with_capacity(due.len());
            for (d, r) in due.into_iter().zip(results) {
                let r = r.unwrap_or_else(|| Err(SendError::retry("the send task failed")));
                let attempt = d.attempts + 1;
                let (outcome, label) = match r {
                    Ok(detail) => (DeliveryOutcome::Sent { detail }, "sent"),
                    Err(e) if e.retryable && attempt < self.max_attempts => (
                        DeliveryOutcome::Retry {
                            error: e.message,
                            next_at: now + self.backoff_after(attempt),
                        },
                        "retry",
                    ),
                    Err(e) => (DeliveryOutcome::Failed { error: e.message }, "failed"),
                };
                labels.push((d.channel.clone(), label));
                finished.push((d, outcome));
            }
            // One transaction for the whole round.
            let held = self.store.finish_deliveries(finished, now).await?;
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
