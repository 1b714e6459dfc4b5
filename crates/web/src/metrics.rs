//! Prometheus metrics (text exposition at `/metrics`).

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Mutex<Registry>,
    ingested: Family<Labels, Counter>,
    alerts: Family<Labels, Gauge>,
    ingest_seconds: Family<Labels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
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
        Metrics {
            registry: Mutex::new(registry),
            ingested,
            alerts,
            ingest_seconds,
        }
    }

    pub fn ingested(&self, source: &str, outcome: &str, n: u64) {
        self.ingested
            .get_or_create(&vec![
                ("source".to_owned(), source.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc_by(n);
    }

    pub fn ingest_time(&self, source: &str, seconds: f64) {
        self.ingest_seconds
            .get_or_create(&vec![("source".to_owned(), source.to_owned())])
            .observe(seconds);
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
