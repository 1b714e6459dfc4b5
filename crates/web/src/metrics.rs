//! Prometheus metrics (text exposition at `/metrics`).

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// What one source received lately, newest last (per node, for the
/// source's page).
#[derive(Debug, Clone)]
pub struct RecentEvent {
    pub at: chrono::DateTime<chrono::Utc>,
    pub outcome: String,
    pub alert_id: Option<i64>,
}

/// How many recent events a source keeps.
const RECENT_PER_SOURCE: usize = 20;

pub struct Metrics {
    /// The time of recent events (the application's clock).
    clock: std::sync::Arc<dyn tocsin_app::Clock>,
    registry: Mutex<Registry>,
    recent: Mutex<std::collections::HashMap<String, std::collections::VecDeque<RecentEvent>>>,
    ingested: Family<Labels, Counter>,
    alerts: Family<Labels, Gauge>,
    ingest_seconds: Family<Labels, Histogram>,
    escalation_steps: Counter,
    notifications_queued: Counter,
    escalation_lag: Histogram,
    deliveries: Family<Labels, Counter>,
    outbox_depth: Gauge,
    heartbeat_overdue: Family<Labels, Gauge>,
    heartbeat_last_ping: Family<Labels, Gauge>,
    claims: Family<Labels, Counter>,
    takeovers: Family<Labels, Counter>,
    wakeup_latency: Family<Labels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::with_clock(std::sync::Arc::new(tocsin_app::SystemClock))
    }

    /// Metrics whose recent events are stamped by `clock`.
    pub fn with_clock(clock: std::sync::Arc<dyn tocsin_app::Clock>) -> Self {
        let mut registry = Registry::default();
        let ingested = Family::<Labels, Counter>::default();
        registry.register(
            "tocsin_events_ingested",
            "Events received from senders, by source and outcome",
            ingested.clone(),
        );
        let alerts = Family::<Labels, Gauge>::default();
        registry.register("tocsin_alerts", "Alerts by status", alerts.clone());
        let ingest_seconds = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        registry.register(
            "tocsin_ingest_duration_seconds",
            "Time from request to committed events, by source",
            ingest_seconds.clone(),
        );
        let escalation_steps = Counter::default();
        registry.register(
            "tocsin_escalation_steps",
            "Escalation steps run",
            escalation_steps.clone(),
        );
        let notifications_queued = Counter::default();
        registry.register(
            "tocsin_notifications_queued",
            "Notifications written to the outbox by escalation steps",
            notifications_queued.clone(),
        );
        let escalation_lag = Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 30.0, 300.0]);
        registry.register(
            "tocsin_escalation_lag_seconds",
            "Delay from a step's due time to its run (largest per worker round)",
            escalation_lag.clone(),
        );
        let deliveries = Family::<Labels, Counter>::default();
        registry.register(
            "tocsin_deliveries",
            "Notification attempts, by channel and outcome (sent, retry, failed)",
            deliveries.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "tocsin_outbox_depth",
            "Notifications waiting to be sent",
            outbox_depth.clone(),
        );
        let heartbeat_overdue = Family::<Labels, Gauge>::default();
        registry.register(
            "tocsin_heartbeat_overdue",
            "1 while a heartbeat is overdue, 0 while healthy (absent until armed)",
            heartbeat_overdue.clone(),
        );
        let heartbeat_last_ping = Family::<Labels, Gauge>::default();
        registry.register(
            "tocsin_heartbeat_last_ping_timestamp_seconds",
            "Unix time of each heartbeat's last ping",
            heartbeat_last_ping.clone(),
        );
        let claims = Family::<Labels, Counter>::default();
        registry.register(
            "tocsin_claims",
            "Work this node claimed: escalation steps, and message bundles (one per contact)",
            claims.clone(),
        );
        let takeovers = Family::<Labels, Counter>::default();
        registry.register(
            "tocsin_lease_takeovers",
            "Escalation steps and pages this node took over after another worker's lease ran out",
            takeovers.clone(),
        );
        let wakeup_latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0])
        });
        registry.register(
            "tocsin_wakeup_latency_seconds",
            "Time from another node's commit to this node hearing its wake-up (PostgreSQL NOTIFY), by topic",
            wakeup_latency.clone(),
        );
        Metrics {
            claims,
            takeovers,
            wakeup_latency,
            registry: Mutex::new(registry),
            heartbeat_overdue,
            heartbeat_last_ping,
            ingested,
            recent: Mutex::new(Default::default()),
            clock,
            alerts,
            ingest_seconds,
            escalation_steps,
            notifications_queued,
            escalation_lag,
            deliveries,
            outbox_depth,
        }
    }

    pub fn ingested(&self, source: &str, outcome: &str, n: u64) {
        self.ingested_alert(source, outcome, n, None);
    }

    /// [`Metrics::ingested`], remembering the alert the event went to.
    pub fn ingested_alert(&self, source: &str, outcome: &str, n: u64, alert_id: Option<i64>) {
        if let Ok(mut recent) = self.recent.lock() {
            let ring = recent.entry(source.to_owned()).or_default();
            if ring.len() == RECENT_PER_SOURCE {
                ring.pop_front();
            }
            ring.push_back(RecentEvent {
                at: self.clock.now(),
                outcome: outcome.to_owned(),
                alert_id,
            });
        }
        self.ingested
            .get_or_create(&vec![
                ("source".to_owned(), source.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc_by(n);
    }

    /// The last events `source` received at this node, newest first.
    pub fn recent(&self, source: &str) -> Vec<RecentEvent> {
        self.recent
            .lock()
            .map(|r| {
                r.get(source)
                    .map(|ring| ring.iter().rev().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    pub fn ingest_time(&self, source: &str, seconds: f64) {
        self.ingest_seconds
            .get_or_create(&vec![("source".to_owned(), source.to_owned())])
            .observe(seconds);
    }

    /// Record a round of the escalation worker.
    pub fn escalation(&self, steps: u64, queued: u64, max_lag_ms: i64) {
        self.escalation_steps.inc_by(steps);
        self.notifications_queued.inc_by(queued);
        self.escalation_lag
            .observe(max_lag_ms.max(0) as f64 / 1000.0);
    }

    /// Work claimed by this node (`kind`: `step` or `bundle`), and how much
    /// of it was taken over from a worker whose lease ran out (`step` or
    /// `page`).
    pub fn claimed(&self, kind: &str, claimed: u64, taken_kind: &str, taken_over: u64) {
        let label = |k: &str| vec![("kind".to_owned(), k.to_owned())];
        if claimed > 0 {
            self.claims.get_or_create(&label(kind)).inc_by(claimed);
        }
        if taken_over > 0 {
            self.takeovers
                .get_or_create(&label(taken_kind))
                .inc_by(taken_over);
        }
    }

    /// A wake-up from another node arrived `seconds` after it was sent.
    pub fn wakeup(&self, topic: &str, seconds: f64) {
        self.wakeup_latency
            .get_or_create(&vec![("topic".to_owned(), topic.to_owned())])
            .observe(seconds.max(0.0));
    }

    pub fn delivery(&self, channel: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&vec![
                ("channel".to_owned(), channel.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc();
    }

    pub fn set_outbox_depth(&self, n: i64) {
        self.outbox_depth.set(n);
    }

    pub fn set_heartbeat(&self, id: &str, overdue: bool, last_ping_unix: i64) {
        let labels = vec![("heartbeat".to_owned(), id.to_owned())];
        self.heartbeat_overdue
            .get_or_create(&labels)
            .set(i64::from(overdue));
        self.heartbeat_last_ping
            .get_or_create(&labels)
            .set(last_ping_unix);
    }

    pub fn set_alerts(&self, status: &str, n: i64) {
        self.alerts
            .get_or_create(&vec![("status".to_owned(), status.to_owned())])
            .set(n);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = match self.registry.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
