//! The status worker, one tick a second:
//!
//! 1. incidents whose linked alerts are all resolved resolve by themselves
//!    (unless a person posted an update);
//! 2. incident updates and public maintenance not told yet become notices
//!    for subscribers and announcement channels;
//! 3. handoff notices are queued for shifts that started or ended;
//! 4. due notices are claimed (leased, `SKIP LOCKED` across nodes), sent
//!    through their channel and recorded, with the pages' retry policy.
//!
//! Everything is read from storage each tick, so a restart or another node
//! changes nothing but who does it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_app::Application;
use tocsin_app::notices::LinkPurpose;
use tocsin_notify::Channel;
use tocsin_store::{Notice, NoticeOutcome};

use crate::{EngineError, RetryPolicy, claim_token};

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusReport {
    /// Incidents resolved because every linked alert was.
    pub auto_resolved: usize,
    /// Notices queued for subscribers and announcement channels.
    pub fanned_out: u64,
    /// Handoff notices queued.
    pub handoffs: u64,
    /// Notices sent, retried later, failed for good.
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

type Channels = HashMap<String, Arc<dyn Channel>>;

pub struct StatusWorker {
    app: Arc<Application>,
    public_url: String,
    channels: std::sync::RwLock<Arc<Channels>>,
    pub retry: RetryPolicy,
    pub lease: TimeDelta,
    /// Notices claimed a tick.
    pub batch: u32,
}

impl StatusWorker {
    pub fn new(app: Arc<Application>, channels: Vec<Arc<dyn Channel>>, public_url: &str) -> Self {
        StatusWorker {
            app,
            public_url: public_url.trim_end_matches('/').to_owned(),
            channels: std::sync::RwLock::new(Arc::new(by_name(channels))),
            retry: RetryPolicy::default(),
            lease: TimeDelta::seconds(60),
            batch: 50,
        }
    }

    /// Send through `channels` from now on (the providers changed).
    pub fn set_channels(&self, channels: Vec<Arc<dyn Channel>>) {
        let c = Arc::new(by_name(channels));
        match self.channels.write() {
            Ok(mut w) => *w = c,
            Err(p) => *p.into_inner() = c,
        }
    }

    fn channels(&self) -> Arc<Channels> {
        match self.channels.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Do everything due at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<StatusReport, EngineError> {
        let mut r = StatusReport {
            auto_resolved: self.app.auto_resolve_incidents(now).await?,
            ..StatusReport::default()
        };
        r.fanned_out = self.app.fan_out(now, &self.public_url).await?;
        r.handoffs = self.app.handoff_notices(now).await?;
        let claim = claim_token();
        let due = self
            .app
            .store
            .claim_notices(now, self.lease, self.batch, &claim)
            .await?;
        let channels = self.channels();
        for n in due {
            let result = self.send(&channels, &n).await;
            let outcome = match self.retry.outcome(&result, n.attempts + 1, now) {
                tocsin_store::DeliveryOutcome::Sent { detail } => {
                    r.sent += 1;
                    NoticeOutcome::Sent(detail)
                }
                tocsin_store::DeliveryOutcome::Retry { error, next_at } => {
                    r.retried += 1;
                    NoticeOutcome::Retry { at: next_at, error }
                }
                tocsin_store::DeliveryOutcome::Failed { error } => {
                    r.failed += 1;
                    tracing::warn!(notice = n.id, kind = %n.kind, channel = %n.channel, error = %error, "a notice failed for good");
                    NoticeOutcome::Failed(error)
                }
            };
            self.app.store.finish_notice(&n, &outcome, now).await?;
        }
        Ok(r)
    }

    async fn send(
        &self,
        channels: &Channels,
        n: &Notice,
    ) -> Result<String, tocsin_notify::SendError> {
        let Some(channel) = channels.get(&n.channel) else {
            return Err(tocsin_notify::SendError::permanent(format!(
                "no provider is configured for {} notices; set it under `providers` in tocsin.yaml",
                n.channel
            )));
        };
        // Email subscribers get a link that ends the subscription, no
        // sign-in needed.
        let unsubscribe = n.subscriber_id.filter(|_| n.channel == "email").map(|id| {
            format!(
                "{}/status/subscriptions/{}/unsubscribe",
                self.public_url,
                self.app.subscriber_token(id, LinkPurpose::Unsubscribe)
            )
        });
        let mut payload = n.payload.clone();
        if let Some(obj) = payload.as_object_mut() {
            obj.insert("delivery_id".into(), format!("notice-{}", n.id).into());
        }
        let notice = tocsin_notify::Notice {
            subject: n.subject.clone(),
            text: n.body.clone(),
            payload,
            unsubscribe,
            delivery_id: format!("notice-{}", n.id),
        };
        channel.send_notice(&n.address, &notice).await
    }
}

fn by_name(channels: Vec<Arc<dyn Channel>>) -> Channels {
    channels
        .into_iter()
        .map(|c| (c.name().to_owned(), c))
        .collect()
}
