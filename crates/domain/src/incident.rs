//! Incidents and the status page's decisions: an incident's status and the
//! impact it has on each service, what an alert's severity means for a
//! service (`auto_incident_from`), a service's state on the status page,
//! the page's overall indicator, and uptime from stored state history.
//! Pure: times are parameters.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::{ParseError, Severity};

/// `investigating` → `identified` → `monitoring` → `resolved`. A person may
/// move it in any order except out of `resolved`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl IncidentStatus {
    pub const ALL: [IncidentStatus; 4] = [
        IncidentStatus::Investigating,
        IncidentStatus::Identified,
        IncidentStatus::Monitoring,
        IncidentStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Identified => "identified",
            IncidentStatus::Monitoring => "monitoring",
            IncidentStatus::Resolved => "resolved",
        }
    }

    /// As a status page says it: `Investigating`.
    pub fn label(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "Investigating",
            IncidentStatus::Identified => "Identified",
            IncidentStatus::Monitoring => "Monitoring",
            IncidentStatus::Resolved => "Resolved",
        }
    }

    pub fn is_open(self) -> bool {
        self != IncidentStatus::Resolved
    }
}

impl FromStr for IncidentStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IncidentStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ParseError(format!(
                    "unknown incident status `{s}`; expected investigating, identified, monitoring or resolved"
                ))
            })
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an incident does to a service. Ordered: a worse impact is greater.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    Degraded,
    PartialOutage,
    MajorOutage,
}

impl Impact {
    pub const ALL: [Impact; 3] = [Impact::Degraded, Impact::PartialOutage, Impact::MajorOutage];

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::Degraded => "degraded",
            Impact::PartialOutage => "partial_outage",
            Impact::MajorOutage => "major_outage",
        }
    }

    /// The impact an alert of `severity` has on its service: SEV0 is a
    /// major outage, SEV1 a partial outage, anything else degraded.
    pub fn of_severity(severity: Severity) -> Impact {
        match severity {
            Severity::Sev0 => Impact::MajorOutage,
            Severity::Sev1 => Impact::PartialOutage,
            _ => Impact::Degraded,
        }
    }

    /// As a sentence names it: `partial outage`.
    pub fn words(self) -> &'static str {
        match self {
            Impact::Degraded => "degraded performance",
            Impact::PartialOutage => "partial outage",
            Impact::MajorOutage => "major outage",
        }
    }

    /// The status page's name of a service with this impact.
    pub fn component(self) -> ComponentStatus {
        match self {
            Impact::Degraded => ComponentStatus::DegradedPerformance,
            Impact::PartialOutage => ComponentStatus::PartialOutage,
            Impact::MajorOutage => ComponentStatus::MajorOutage,
        }
    }

    /// The share of a minute this impact counts as down in uptime.
    pub fn downtime_weight(self) -> f64 {
        match self {
            Impact::Degraded => 0.0,
            Impact::PartialOutage => 0.3,
            Impact::MajorOutage => 1.0,
        }
    }
}

impl FromStr for Impact {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Impact::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ParseError(format!(
                    "unknown impact `{s}`; expected degraded, partial_outage or major_outage"
                ))
            })
    }
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an alert of `severity` on a service with `auto_incident_from`
/// opens (or joins) an incident, and with what impact.
pub fn auto_impact(severity: Severity, auto_incident_from: Option<Severity>) -> Option<Impact> {
    let threshold = auto_incident_from?;
    severity
        .is_at_or_above(threshold)
        .then(|| Impact::of_severity(severity))
}

/// The title of an incident an alert opened: it names the service and the
/// impact, never the alert's text (which is internal and goes public with
/// the incident's title).
pub fn auto_title(service_name: &str, impact: Impact) -> String {
    format!("{service_name}: {}", impact.words())
}

/// The public first update of an incident an alert opened.
pub fn auto_message(service_name: &str, impact: Impact) -> String {
    let article = if impact == Impact::Degraded { "" } else { "a " };
    format!(
        "We are investigating {article}{} of {service_name}.",
        impact.words()
    )
}

/// A service's state on the status page (Atlassian Statuspage's component
/// statuses, which tools already read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Operational,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
    UnderMaintenance,
}

impl ComponentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::DegradedPerformance => "degraded_performance",
            ComponentStatus::PartialOutage => "partial_outage",
            ComponentStatus::MajorOutage => "major_outage",
            ComponentStatus::UnderMaintenance => "under_maintenance",
        }
    }

    /// As the page says it.
    pub fn label(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "Operational",
            ComponentStatus::DegradedPerformance => "Degraded performance",
            ComponentStatus::PartialOutage => "Partial outage",
            ComponentStatus::MajorOutage => "Major outage",
            ComponentStatus::UnderMaintenance => "Under maintenance",
        }
    }

    /// The state of a service: the worst impact of its open incidents wins;
    /// without one, a maintenance window in effect makes it
    /// `under_maintenance`; else it is operational.
    pub fn of(impacts: impl IntoIterator<Item = Impact>, in_maintenance: bool) -> ComponentStatus {
        match impacts.into_iter().max() {
            Some(worst) => worst.component(),
            None if in_maintenance => ComponentStatus::UnderMaintenance,
            None => ComponentStatus::Operational,
        }
    }
}

/// The page's overall indicator, as Statuspage's `status.indicator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    None,
    Minor,
    Major,
    Critical,
    Maintenance,
}

impl Indicator {
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::None => "none",
            Indicator::Minor => "minor",
            Indicator::Major => "major",
            Indicator::Critical => "critical",
            Indicator::Maintenance => "maintenance",
        }
    }

    /// From the states of the page's services: any major outage is
    /// critical, a partial outage major, degraded performance minor; only
    /// maintenance is maintenance; else none.
    pub fn of(states: impl IntoIterator<Item = ComponentStatus>) -> Indicator {
        let mut out = Indicator::None;
        for s in states {
            let this = match s {
                ComponentStatus::MajorOutage => Indicator::Critical,
                ComponentStatus::PartialOutage => Indicator::Major,
                ComponentStatus::DegradedPerformance => Indicator::Minor,
                ComponentStatus::UnderMaintenance => Indicator::Maintenance,
                ComponentStatus::Operational => Indicator::None,
            };
            if this.rank() > out.rank() {
                out = this;
            }
        }
        out
    }

    fn rank(self) -> u8 {
        match self {
            Indicator::None => 0,
            Indicator::Maintenance => 1,
            Indicator::Minor => 2,
            Indicator::Major => 3,
            Indicator::Critical => 4,
        }
    }

    /// The sentence at the top of the page.
    pub fn description(self) -> &'static str {
        match self {
            Indicator::None => "All Systems Operational",
            Indicator::Maintenance => "Service Under Maintenance",
            Indicator::Minor => "Minor Service Outage",
            Indicator::Major => "Partial System Outage",
            Indicator::Critical => "Major System Outage",
        }
    }
}

/// A stretch of stored state history: a service had `impact` from `from`
/// until `to` (`None`: still).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImpactSpan {
    pub impact: Impact,
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
}

/// Uptime of a period: `1 − (major-outage minutes + 0.3 × partial-outage
/// minutes) / minutes in the period`. Degraded performance and maintenance
/// count as up. Where spans overlap, the worst impact counts. `now` ends
/// spans still open. An empty period is fully up.
pub fn uptime(
    spans: &[ImpactSpan],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> f64 {
    let total = (end - start).num_milliseconds();
    if total <= 0 {
        return 1.0;
    }
    1.0 - down_millis(spans, start, end, now) / total as f64
}

/// The weighted milliseconds down in `[start, end)`: a sweep over the
/// spans' edges, each stretch weighted by the worst impact covering it.
fn down_millis(
    spans: &[ImpactSpan],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> f64 {
    let clipped: Vec<(DateTime<Utc>, DateTime<Utc>, Impact)> = spans
        .iter()
        .filter_map(|s| {
            let from = s.from.max(start);
            let to = s.to.unwrap_or(now).min(end);
            (from < to).then_some((from, to, s.impact))
        })
        .collect();
    let mut edges: Vec<DateTime<Utc>> = clipped.iter().flat_map(|(f, t, _)| [*f, *t]).collect();
    edges.sort_unstable();
    edges.dedup();
    let mut down = 0.0;
    for w in edges.windows(2) {
        let (a, b) = (w[0], w[1]);
        let worst = clipped
            .iter()
            .filter(|(f, t, _)| *f <= a && b <= *t)
            .map(|(_, _, i)| *i)
            .max();
        if let Some(i) = worst {
            down += (b - a).num_milliseconds() as f64 * i.downtime_weight();
        }
    }
    down
}

/// The worst impact any span had during `[start, end)`.
pub fn worst_between(
    spans: &[ImpactSpan],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Impact> {
    spans
        .iter()
        .filter(|s| s.from < end && s.to.unwrap_or(now) > start)
        .map(|s| s.impact)
        .max()
}

/// The default step of a chart: its range / 288 (a point every five minutes
/// for a day), at least a second.
pub fn default_step(range: TimeDelta) -> TimeDelta {
    (range / 288).max(TimeDelta::seconds(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: i64, m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
            + TimeDelta::hours(h)
            + TimeDelta::minutes(m)
    }

    #[test]
    fn auto_incident_from_is_a_threshold() {
        assert_eq!(
            auto_impact(Severity::Sev0, Some(Severity::Sev1)),
            Some(Impact::MajorOutage)
        );
        assert_eq!(
            auto_impact(Severity::Sev1, Some(Severity::Sev1)),
            Some(Impact::PartialOutage)
        );
        assert_eq!(auto_impact(Severity::Sev2, Some(Severity::Sev1)), None);
        assert_eq!(
            auto_impact(Severity::Sev3, Some(Severity::Sev4)),
            Some(Impact::Degraded)
        );
        assert_eq!(auto_impact(Severity::Sev0, None), None);
    }

    #[test]
    fn the_worst_impact_wins_and_maintenance_only_without_one() {
        use ComponentStatus::*;
        assert_eq!(ComponentStatus::of([], false), Operational);
        assert_eq!(ComponentStatus::of([], true), UnderMaintenance);
        assert_eq!(
            ComponentStatus::of([Impact::Degraded, Impact::MajorOutage], false),
            MajorOutage
        );
        assert_eq!(
            ComponentStatus::of([Impact::PartialOutage], true),
            PartialOutage
        );
        assert_eq!(
            Indicator::of([Operational, DegradedPerformance]),
            Indicator::Minor
        );
        assert_eq!(
            Indicator::of([UnderMaintenance, Operational]),
            Indicator::Maintenance
        );
        assert_eq!(
            Indicator::of([UnderMaintenance, PartialOutage]),
            Indicator::Major
        );
        assert_eq!(
            Indicator::of([MajorOutage, PartialOutage]),
            Indicator::Critical
        );
        assert_eq!(Indicator::of([]), Indicator::None);
    }

    #[test]
    fn uptime_weights_partial_outages_and_ignores_degraded() {
        let day = (t(0, 0), t(24, 0));
        let now = t(30, 0);
        // 60 minutes of major outage in a day of 1,440.
        let major = [ImpactSpan {
            impact: Impact::MajorOutage,
            from: t(1, 0),
            to: Some(t(2, 0)),
        }];
        assert!((uptime(&major, day.0, day.1, now) - (1.0 - 60.0 / 1440.0)).abs() < 1e-9);
        // 100 minutes partial: 30 minutes down.
        let partial = [ImpactSpan {
            impact: Impact::PartialOutage,
            from: t(3, 0),
            to: Some(t(4, 40)),
        }];
        assert!((uptime(&partial, day.0, day.1, now) - (1.0 - 30.0 / 1440.0)).abs() < 1e-9);
        let degraded = [ImpactSpan {
            impact: Impact::Degraded,
            from: t(3, 0),
            to: None,
        }];
        assert_eq!(uptime(&degraded, day.0, day.1, now), 1.0);
    }

    #[test]
    fn overlapping_spans_count_once_at_their_worst_and_are_clipped_to_the_period() {
        let spans = [
            ImpactSpan {
                impact: Impact::PartialOutage,
                from: t(-2, 0),
                to: Some(t(2, 0)),
            },
            ImpactSpan {
                impact: Impact::MajorOutage,
                from: t(1, 0),
                to: Some(t(3, 0)),
            },
            ImpactSpan {
                impact: Impact::MajorOutage,
                from: t(23, 0),
                to: None,
            },
        ];
        // 00:00–01:00 partial (18 min), 01:00–03:00 major (120), 23:00–24:00 major (60).
        let got = uptime(&spans, t(0, 0), t(24, 0), t(30, 0));
        assert!((got - (1.0 - 198.0 / 1440.0)).abs() < 1e-9, "{got}");
        // An open span ends at now.
        let got = uptime(&spans[2..], t(0, 0), t(24, 0), t(23, 30));
        assert!((got - (1.0 - 30.0 / 1440.0)).abs() < 1e-9, "{got}");
        assert_eq!(worst_between(&spans, t(4, 0), t(5, 0), t(30, 0)), None);
        assert_eq!(
            worst_between(&spans, t(0, 0), t(1, 30), t(30, 0)),
            Some(Impact::MajorOutage)
        );
    }

    #[test]
    fn statuses_and_impacts_read_back() {
        for s in IncidentStatus::ALL {
            assert_eq!(s.as_str().parse::<IncidentStatus>().unwrap(), s);
        }
        for i in Impact::ALL {
            assert_eq!(i.as_str().parse::<Impact>().unwrap(), i);
        }
        assert!(
            "down"
                .parse::<Impact>()
                .unwrap_err()
                .0
                .contains("partial_outage")
        );
        assert_eq!(default_step(TimeDelta::hours(24)), TimeDelta::minutes(5));
        assert_eq!(default_step(TimeDelta::seconds(10)), TimeDelta::seconds(1));
    }
}
