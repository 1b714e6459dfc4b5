//! The heartbeat worker: a heartbeat's `due_at` (last ping + interval +
//! grace) is a stored timer like an escalation step. The worker claims the
//! heartbeats that fell due, raises an alert on each one's policy through
//! the common ingest path, and marks it overdue. After a restart, every
//! heartbeat that fell due while Tocsin was down is raised at the first
//! tick.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_app::{Application, Origin};
use tocsin_store::{Actor, Store};
use tocsin_wire::heartbeat;

use crate::{EngineError, claim_token};

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatReport {
    /// Heartbeats that became overdue (an alert was raised for each).
    pub overdue: Vec<String>,
    /// Ones pinged while the alert was being raised (it was resolved again).
    pub raced: usize,
}

pub struct HeartbeatWorker {
    app: Arc<Application>,
    store: Arc<dyn Store>,
    pub lease: TimeDelta,
}

impl HeartbeatWorker {
    /// A worker for the heartbeats of the catalog in effect at each tick;
    /// their alerts take the ingest path of every sender.
    pub fn new(app: Arc<Application>) -> Self {
        HeartbeatWorker {
            store: app.store.clone(),
            app,
            lease: TimeDelta::seconds(30),
        }
    }

    /// Raise an alert for every heartbeat overdue at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<HeartbeatReport, EngineError> {
        let mut report = HeartbeatReport::default();
        let catalog = self.app.catalog.current();
        let claim = claim_token();
        let due = self
            .store
            .claim_overdue_heartbeats(now, self.lease, &claim)
            .await?;
        let actor = Actor::new("system", "heartbeat");
        for d in due {
            let Some(spec) = catalog.heartbeats.get(&d.id) else {
                // No longer configured: mark it so it is not claimed again.
                self.store.mark_heartbeat_overdue(&d, None).await?;
                continue;
            };
            let source = heartbeat::source_id(&spec.id);
            let origin = Origin {
                source_id: &source,
                policy_id: &spec.policy_id,
                service_id: spec.service_id.as_deref(),
                support: None,
            };
            let event = heartbeat::overdue_event(
                &spec.id,
                &spec.name,
                d.last_ping_at,
                spec.interval.as_chrono().num_seconds(),
                spec.grace.as_chrono().num_seconds(),
                now,
            )
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
            let r = self
                .app
                .ingest(&catalog, origin, &actor, vec![event], now)
                .await?;
            let alert_id = r.first().and_then(|r| r.alert_id);
            if self.store.mark_heartbeat_overdue(&d, alert_id).await? {
                tracing::warn!(heartbeat = %spec.id, ?alert_id, "heartbeat overdue: alert raised");
                report.overdue.push(spec.id.clone());
            } else {
                // A ping came in while the alert was raised: resolve it again.
                let event =
                    heartbeat::recovered(now).map_err(|e| EngineError::Invalid(e.to_string()))?;
                self.app
                    .ingest(&catalog, origin, &actor, vec![event], now)
                    .await?;
                report.raced += 1;
            }
        }
        Ok(report)
    }
}
