//! What the status page says, built once from storage and the catalog and
//! then rendered as HTML, JSON (shaped like Atlassian Statuspage's
//! `summary.json`, which tooling already reads), the Atom feed and badges.
//! `docs/status-json.md` documents the JSON; `docs/status.schema.json` is
//! its schema.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Days, NaiveDate, TimeDelta, TimeZone, Utc};
use serde::Serialize;
use tocsin_domain::Catalog;
use tocsin_domain::incident::{
    ComponentStatus, Impact, ImpactSpan, IncidentStatus, Indicator, uptime, worst_between,
};
use tocsin_store::{Incident, IncidentEvent, MaintenanceWindow, Store, StoreError};

/// How many daily bars each service has.
pub const DAYS: u32 = 90;
/// Resolved incidents the page lists under "Past incidents".
const PAST_DAYS: i64 = 14;

/// Which page: the public one, or the internal one for signed-in users
/// (every service and incident, internal updates too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    Internal,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub page: PageInfo,
    pub status: StatusInfo,
    pub components: Vec<Component>,
    /// Unresolved incidents.
    pub incidents: Vec<IncidentOut>,
    /// Upcoming and active maintenance.
    pub scheduled_maintenances: Vec<MaintenanceOut>,
    /// Incidents resolved in the last 14 days (not part of Statuspage's
    /// summary; Tocsin's page lists them under "Past incidents").
    pub recent_incidents: Vec<IncidentOut>,
    /// How uptime is computed, as the page states it.
    pub uptime_formula: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct PageInfo {
    pub id: &'static str,
    pub name: String,
    pub url: String,
    pub time_zone: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusInfo {
    pub indicator: Indicator,
    pub description: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub id: String,
    pub name: String,
    pub status: ComponentStatus,
    pub description: Option<String>,
    pub position: usize,
    pub group: bool,
    pub group_id: Option<String>,
    pub showcase: bool,
    pub only_show_if_degraded: bool,
    pub updated_at: DateTime<Utc>,
    /// Only the internal page lists services that are not public.
    pub public: bool,
    /// Uptime over the days with data, as a percentage (`None`: no data yet).
    pub uptime_percent: Option<f64>,
    /// One entry a day, oldest first, in the page's time zone.
    pub uptime_days: Vec<Day>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    /// `None` before Tocsin kept history.
    pub uptime: Option<f64>,
    /// The worst impact that day.
    pub worst: Option<Impact>,
    pub incidents: Vec<DayIncident>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayIncident {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentOut {
    pub id: String,
    pub name: String,
    pub status: IncidentStatus,
    /// `none`, `minor`, `major` or `critical`.
    pub impact: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub monitoring_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub shortlink: String,
    pub components: Vec<ComponentRef>,
    /// Newest first, as Statuspage lists them.
    pub incident_updates: Vec<UpdateOut>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComponentRef {
    pub id: String,
    pub name: String,
    pub status: ComponentStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateOut {
    pub id: String,
    pub incident_id: String,
    pub status: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub display_at: DateTime<Utc>,
    /// Only on the internal page: `false` for an internal note.
    pub public: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceOut {
    pub id: String,
    pub name: String,
    /// `scheduled` or `in_progress`.
    pub status: &'static str,
    pub impact: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub scheduled_for: DateTime<Utc>,
    pub scheduled_until: DateTime<Utc>,
    pub shortlink: String,
    pub components: Vec<ComponentRef>,
    pub incident_updates: Vec<UpdateOut>,
}

pub const FORMULA: &str = "uptime = 1 − (major-outage minutes + 0.3 × partial-outage minutes) / minutes in the period; degraded performance and maintenance count as up";

fn impact_word(worst: Option<Impact>) -> &'static str {
    match worst {
        None => "none",
        Some(Impact::Degraded) => "minor",
        Some(Impact::PartialOutage) => "major",
        Some(Impact::MajorOutage) => "critical",
    }
}

/// Local midnight of `date` in `tz` (the first instant of the day when
/// midnight does not exist).
fn midnight(tz: chrono_tz::Tz, date: NaiveDate) -> DateTime<Utc> {
    let naive = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.with_timezone(&Utc)
        }
        chrono::LocalResult::None => tz
            .from_local_datetime(&(naive + TimeDelta::hours(1)))
            .earliest()
            .map_or_else(|| Utc.from_utc_datetime(&naive), |t| t.with_timezone(&Utc)),
    }
}

/// Everything the page needs, read from storage.
pub(crate) struct Inputs {
    pub since: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    pub spans: Vec<tocsin_store::ServiceSpan>,
    pub recent: Vec<(Incident, Vec<IncidentEvent>)>,
    pub windows: Vec<MaintenanceWindow>,
    pub titles: HashMap<i64, String>,
}

impl Inputs {
    /// Read as of version `v`, which the caller read first: a change that
    /// lands meanwhile moves the version past it, so the page is built
    /// again.
    pub(crate) async fn read(
        store: &dyn Store,
        v: tocsin_store::StatusVersion,
        now: DateTime<Utc>,
    ) -> Result<Inputs, StoreError> {
        let from = now - TimeDelta::days(i64::from(DAYS) + 1);
        let spans = store.service_spans(from).await?;
        let recent = store
            .recent_incidents(now - TimeDelta::days(PAST_DAYS))
            .await?;
        let windows = store.maintenance_windows(now).await?;
        let ids: Vec<i64> = spans
            .iter()
            .map(|s| s.incident_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let titles = store.incident_titles(&ids).await?;
        Ok(Inputs {
            since: v.since,
            changed_at: v.changed_at,
            spans,
            recent,
            windows,
            titles,
        })
    }
}

/// The page's settings it needs here.
pub(crate) struct PageSettings<'a> {
    pub title: &'a str,
    pub url: String,
    pub tz: chrono_tz::Tz,
}

pub(crate) fn build(
    c: &Catalog,
    inp: &Inputs,
    s: &PageSettings<'_>,
    who: Audience,
    now: DateTime<Utc>,
) -> Summary {
    let shown =
        |id: &str| who == Audience::Internal || c.services.get(id).is_some_and(|x| x.public);
    let name_of = |id: &str| {
        c.services
            .get(id)
            .map_or_else(|| id.to_owned(), |x| x.name.clone())
    };
    // Open incidents' impact per service; active windows per service.
    let mut impacts: BTreeMap<&str, Vec<Impact>> = BTreeMap::new();
    for (i, _) in inp.recent.iter().filter(|(i, _)| i.status.is_open()) {
        for sv in &i.services {
            impacts.entry(sv.id.as_str()).or_default().push(sv.impact);
        }
    }
    let public_windows: Vec<&MaintenanceWindow> = inp
        .windows
        .iter()
        .filter(|w| {
            w.ended_at.is_none() && w.ends_at > now && (w.public || who == Audience::Internal)
        })
        .collect();
    let mut in_maintenance: BTreeSet<String> = BTreeSet::new();
    for w in inp.windows.iter().filter(|w| w.is_active(now)) {
        in_maintenance.extend(
            c.target_service(&w.target_kind, &w.target_id)
                .map(str::to_owned),
        );
    }
    let state_of = |id: &str| {
        ComponentStatus::of(
            impacts.get(id).cloned().unwrap_or_default(),
            in_maintenance.contains(id),
        )
    };
    let visible_incident = |i: &Incident, events: &[IncidentEvent]| {
        who == Audience::Internal
            || (events.iter().any(|e| e.public && e.is_update())
                && (i.services.is_empty() || i.services.iter().any(|sv| shown(&sv.id))))
    };

    // Days in the page's time zone, oldest first.
    let today = now.with_timezone(&s.tz).date_naive();
    let first = today
        .checked_sub_days(Days::new(u64::from(DAYS - 1)))
        .unwrap_or(today);
    let days: Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> = (0..DAYS)
        .filter_map(|n| {
            let d = first.checked_add_days(Days::new(u64::from(n)))?;
            let next = d.checked_add_days(Days::new(1))?;
            Some((d, midnight(s.tz, d), midnight(s.tz, next).min(now)))
        })
        .collect();
    let mut spans_of: BTreeMap<&str, Vec<(i64, ImpactSpan)>> = BTreeMap::new();
    for sp in &inp.spans {
        spans_of
            .entry(sp.service_id.as_str())
            .or_default()
            .push((sp.incident_id, sp.span));
    }

    let mut components = Vec::new();
    for (position, (id, svc)) in c.services.iter().enumerate() {
        if !shown(id) {
            continue;
        }
        let mine = spans_of.get(id.as_str()).cloned().unwrap_or_default();
        let just: Vec<ImpactSpan> = mine.iter().map(|(_, s)| *s).collect();
        let uptime_days: Vec<Day> = days
            .iter()
            .map(|(date, start, end)| {
                let start = (*start).max(inp.since);
                if *end <= start {
                    return Day {
                        date: *date,
                        uptime: None,
                        worst: None,
                        incidents: Vec::new(),
                    };
                }
                let ids: BTreeSet<i64> = mine
                    .iter()
                    .filter(|(_, sp)| sp.from < *end && sp.to.unwrap_or(now) > start)
                    .map(|(i, _)| *i)
                    .collect();
                Day {
                    date: *date,
                    uptime: Some(uptime(&just, start, *end, now)),
                    worst: worst_between(&just, start, *end, now),
                    incidents: ids
                        .into_iter()
                        .map(|i| DayIncident {
                            id: i.to_string(),
                            name: inp
                                .titles
                                .get(&i)
                                .cloned()
                                .unwrap_or_else(|| format!("Incident {i}")),
                        })
                        .collect(),
                }
            })
            .collect();
        let period_start = days.first().map_or(now, |d| d.1).max(inp.since);
        let uptime_percent = (period_start < now)
            .then(|| (uptime(&just, period_start, now, now) * 100_000.0).round() / 1000.0);
        let updated_at = mine
            .iter()
            .flat_map(|(_, s)| [Some(s.from), s.to])
            .flatten()
            .max()
            .unwrap_or(inp.since);
        components.push(Component {
            id: id.clone(),
            name: svc.name.clone(),
            status: state_of(id),
            description: None,
            position: position + 1,
            group: false,
            group_id: None,
            showcase: true,
            only_show_if_degraded: false,
            updated_at,
            public: svc.public,
            uptime_percent,
            uptime_days,
        });
    }

    let component_refs = |ids: &mut dyn Iterator<Item = &str>| -> Vec<ComponentRef> {
        ids.filter(|id| shown(id))
            .map(|id| ComponentRef {
                id: id.to_owned(),
                name: name_of(id),
                status: state_of(id),
            })
            .collect()
    };
    let incident_out = |i: &Incident, events: &[IncidentEvent]| -> IncidentOut {
        let mut updates: Vec<UpdateOut> = events
            .iter()
            .filter(|e| e.is_update() && (e.public || who == Audience::Internal))
            .map(|e| UpdateOut {
                id: e.id.to_string(),
                incident_id: i.id.to_string(),
                status: e.status.as_str().to_owned(),
                body: e.message.clone(),
                created_at: e.at,
                updated_at: e.at,
                display_at: e.at,
                public: e.public,
            })
            .collect();
        updates.reverse();
        let monitoring_at = events
            .iter()
            .find(|e| e.status == IncidentStatus::Monitoring)
            .map(|e| e.at);
        let worst = i
            .services
            .iter()
            .filter(|sv| shown(&sv.id))
            .map(|sv| sv.impact)
            .max();
        IncidentOut {
            id: i.id.to_string(),
            name: i.title.clone(),
            status: i.status,
            impact: impact_word(worst),
            created_at: i.opened_at,
            updated_at: updates.first().map_or(i.opened_at, |u| u.created_at),
            monitoring_at,
            resolved_at: i.resolved_at,
            shortlink: format!("{}/incidents/{}", s.url, i.id),
            components: component_refs(&mut i.services.iter().map(|sv| sv.id.as_str())),
            incident_updates: updates,
        }
    };
    let incidents: Vec<IncidentOut> = inp
        .recent
        .iter()
        .filter(|(i, e)| i.status.is_open() && visible_incident(i, e))
        .map(|(i, e)| incident_out(i, e))
        .collect();
    let recent_incidents: Vec<IncidentOut> = inp
        .recent
        .iter()
        .filter(|(i, e)| !i.status.is_open() && visible_incident(i, e))
        .map(|(i, e)| incident_out(i, e))
        .collect();
    let mut scheduled_maintenances: Vec<MaintenanceOut> = public_windows
        .iter()
        .map(|w| {
            let active = w.is_active(now);
            let status = if active { "in_progress" } else { "scheduled" };
            let body = if w.reason.is_empty() {
                w.display_title().to_owned()
            } else {
                w.reason.clone()
            };
            MaintenanceOut {
                id: format!("m{}", w.id),
                name: w.display_title().to_owned(),
                status,
                impact: "maintenance",
                created_at: w.created_at,
                updated_at: w.created_at,
                scheduled_for: w.starts_at,
                scheduled_until: w.ends_at,
                shortlink: format!("{}#maintenance-{}", s.url, w.id),
                components: component_refs(
                    &mut c.target_service(&w.target_kind, &w.target_id).into_iter(),
                ),
                incident_updates: vec![UpdateOut {
                    id: format!("m{}", w.id),
                    incident_id: format!("m{}", w.id),
                    status: status.to_owned(),
                    body,
                    created_at: w.created_at,
                    updated_at: w.created_at,
                    display_at: w.created_at,
                    public: w.public,
                }],
            }
        })
        .collect();
    scheduled_maintenances.sort_by_key(|m| m.scheduled_for);
    let indicator = Indicator::of(components.iter().map(|c| c.status));
    let updated_at = inp.changed_at;
    Summary {
        page: PageInfo {
            id: "tocsin",
            name: s.title.to_owned(),
            url: s.url.clone(),
            time_zone: s.tz.name().to_owned(),
            updated_at,
        },
        status: StatusInfo {
            indicator,
            description: indicator.description(),
        },
        components,
        incidents,
        scheduled_maintenances,
        recent_incidents,
        uptime_formula: FORMULA,
    }
}
