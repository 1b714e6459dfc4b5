//! The status worker: incidents whose linked alerts are all resolved
//! resolve by themselves (unless a person posted an update), checked every
//! tick against storage, so a restart or another node changes nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tocsin_app::Application;

use crate::EngineError;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusReport {
    /// Incidents resolved because every linked alert was.
    pub auto_resolved: usize,
}

pub struct StatusWorker {
    app: Arc<Application>,
}

impl StatusWorker {
    pub fn new(app: Arc<Application>) -> Self {
        StatusWorker { app }
    }

    /// Resolve what qualifies at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<StatusReport, EngineError> {
        let auto_resolved = self.app.auto_resolve_incidents(now).await?;
        Ok(StatusReport { auto_resolved })
    }
}
