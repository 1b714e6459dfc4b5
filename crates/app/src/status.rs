//! The status page's settings, read once from `status_page` of
//! tocsin.yaml into typed values the HTTP layer serves from.

use chrono::TimeDelta;
use tocsin_domain::incident::default_step;

/// `status_page` of tocsin.yaml.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    pub title: String,
    /// Days and their uptime bars are in this time zone.
    pub timezone: chrono_tz::Tz,
    /// Prometheus for the charts (`/api/v1/query_range`).
    pub prometheus_url: Option<String>,
    pub charts: Vec<ChartSettings>,
}

/// One chart of `status_page.charts`.
#[derive(Debug, Clone)]
pub struct ChartSettings {
    pub service: String,
    pub title: String,
    pub query: String,
    pub unit: Option<String>,
    /// How far back it shows (default 24h).
    pub range: TimeDelta,
    /// The resolution (default range / 288).
    pub step: TimeDelta,
}

impl Default for StatusSettings {
    fn default() -> Self {
        StatusSettings {
            title: "Status".into(),
            timezone: chrono_tz::UTC,
            prometheus_url: None,
            charts: Vec::new(),
        }
    }
}

impl StatusSettings {
    /// From a checked config (`check-config` refused a bad time zone).
    pub fn from_config(c: &tocsin_config::Config) -> StatusSettings {
        let Some(sp) = &c.status_page else {
            return StatusSettings::default();
        };
        StatusSettings {
            title: sp.title.clone().unwrap_or_else(|| "Status".into()),
            timezone: sp
                .timezone
                .as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or(chrono_tz::UTC),
            prometheus_url: sp
                .prometheus_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            charts: sp
                .charts
                .iter()
                .map(|ch| {
                    let range = ch.range.map_or(TimeDelta::hours(24), |r| r.as_chrono());
                    ChartSettings {
                        service: ch.service.clone(),
                        title: ch.title.clone(),
                        query: ch.query.clone(),
                        unit: ch.unit.clone(),
                        range,
                        step: ch
                            .step
                            .map_or_else(|| default_step(range), |s| s.as_chrono()),
                    }
                })
                .collect(),
        }
    }
}
