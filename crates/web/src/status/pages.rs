//! The status page's handlers and its HTML (askama; no script).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tocsin_domain::incident::{ComponentStatus, Impact};

use super::summary::{Audience, Component, IncidentOut, MaintenanceOut, Summary};
use super::{Rendered, snapshot};
use crate::error::ApiError;
use crate::state::AppState;
use crate::ui::{Viewer, with_security_headers};

const CSS: &str = include_str!("../../assets/status.css");

/// One daily bar.
pub(crate) struct Bar {
    /// `up`, `degraded`, `partial`, `major` or `nodata`.
    pub class: &'static str,
    /// What a screen reader and the tooltip say.
    pub label: String,
    pub incidents: Vec<String>,
}

pub(crate) struct ComponentView {
    pub id: String,
    pub name: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub uptime: String,
    pub bars: Vec<Bar>,
    pub public: bool,
    pub charts: Vec<ChartView>,
}

pub(crate) struct ChartView {
    pub index: usize,
    pub title: String,
    pub unavailable: bool,
}

pub(crate) struct UpdateView {
    pub status: String,
    pub body: String,
    pub at: String,
    pub iso: String,
    pub internal: bool,
}

pub(crate) struct IncidentView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub impact: &'static str,
    pub affects: String,
    pub updates: Vec<UpdateView>,
}

pub(crate) struct MaintenanceView {
    pub id: String,
    pub name: String,
    pub when: String,
    pub status: &'static str,
    pub affects: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage<'a> {
    title: &'a str,
    banner: &'static str,
    banner_class: &'static str,
    internal: bool,
    components: Vec<ComponentView>,
    incidents: Vec<IncidentView>,
    past: Vec<IncidentView>,
    maintenance: Vec<MaintenanceView>,
    formula: &'static str,
    updated: String,
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "status_incident.html")]
struct IncidentPage<'a> {
    title: &'a str,
    incident: IncidentView,
}

fn state_class(s: ComponentStatus) -> &'static str {
    match s {
        ComponentStatus::Operational => "ok",
        ComponentStatus::DegradedPerformance => "degraded",
        ComponentStatus::PartialOutage => "partial",
        ComponentStatus::MajorOutage => "major",
        ComponentStatus::UnderMaintenance => "maintenance",
    }
}

fn when(t: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .format("%-d %b %Y, %H:%M %Z")
        .to_string()
}

fn bars(c: &Component) -> Vec<Bar> {
    c.uptime_days
        .iter()
        .map(|d| {
            let day = super::day_label(d.date);
            let (class, label) = match (d.uptime, d.worst) {
                (None, _) => ("nodata", format!("{day}: no data")),
                (Some(u), w) => {
                    let class = match w {
                        None => "up",
                        Some(Impact::Degraded) => "degraded",
                        Some(Impact::PartialOutage) => "partial",
                        Some(Impact::MajorOutage) => "major",
                    };
                    let worst = match w {
                        None => "no incidents".to_owned(),
                        Some(i) => i.component().label().to_lowercase(),
                    };
                    (class, format!("{day}: {:.2}% up, {worst}", u * 100.0))
                }
            };
            Bar {
                class,
                label,
                incidents: d.incidents.iter().map(|i| i.name.clone()).collect(),
            }
        })
        .collect()
}

fn affects(components: &[super::summary::ComponentRef]) -> String {
    components
        .iter()
        .map(|c| c.name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

fn incident_view(i: &IncidentOut, tz: chrono_tz::Tz) -> IncidentView {
    IncidentView {
        id: i.id.clone(),
        name: i.name.clone(),
        status: i.status.label().to_owned(),
        impact: i.impact,
        affects: affects(&i.components),
        updates: i
            .incident_updates
            .iter()
            .map(|u| UpdateView {
                status: u
                    .status
                    .parse::<tocsin_domain::incident::IncidentStatus>()
                    .map(|s| s.label().to_owned())
                    .unwrap_or_else(|_| u.status.clone()),
                body: u.body.clone(),
                at: when(u.created_at, tz),
                iso: u.created_at.to_rfc3339(),
                internal: !u.public,
            })
            .collect(),
    }
}

fn maintenance_view(m: &MaintenanceOut, tz: chrono_tz::Tz) -> MaintenanceView {
    MaintenanceView {
        id: m.id.trim_start_matches('m').to_owned(),
        name: m.name.clone(),
        when: format!(
            "{} – {}",
            when(m.scheduled_for, tz),
            when(m.scheduled_until, tz)
        ),
        status: if m.status == "in_progress" {
            "In progress"
        } else {
            "Scheduled"
        },
        affects: affects(&m.components),
        body: m
            .incident_updates
            .first()
            .map(|u| u.body.clone())
            .unwrap_or_default(),
    }
}

/// The page as HTML.
pub(crate) fn render_page(
    st: &AppState,
    s: &Summary,
    who: Audience,
    message: Option<String>,
) -> Result<String, ApiError> {
    let tz = st.0.status.timezone;
    let charts = &st.0.status.charts;
    let components = s
        .components
        .iter()
        .map(|c| ComponentView {
            id: c.id.clone(),
            name: c.name.clone(),
            state: c.status.label(),
            state_class: state_class(c.status),
            uptime: c
                .uptime_percent
                .map_or_else(|| "no data yet".to_owned(), |p| format!("{p:.2}% uptime")),
            bars: bars(c),
            public: c.public,
            charts: charts
                .iter()
                .enumerate()
                .filter(|(_, ch)| ch.service == c.id)
                .map(|(index, ch)| ChartView {
                    index,
                    title: ch.title.clone(),
                    unavailable: st.0.status_cache.charts.failed(index),
                })
                .collect(),
        })
        .collect();
    let banner_class = match s.status.indicator {
        tocsin_domain::incident::Indicator::None => "ok",
        tocsin_domain::incident::Indicator::Maintenance => "maintenance",
        tocsin_domain::incident::Indicator::Minor => "degraded",
        tocsin_domain::incident::Indicator::Major => "partial",
        tocsin_domain::incident::Indicator::Critical => "major",
    };
    let page = StatusPage {
        title: &s.page.name,
        banner: s.status.description,
        banner_class,
        internal: who == Audience::Internal,
        components,
        incidents: s.incidents.iter().map(|i| incident_view(i, tz)).collect(),
        past: s
            .recent_incidents
            .iter()
            .map(|i| incident_view(i, tz))
            .collect(),
        maintenance: s
            .scheduled_maintenances
            .iter()
            .map(|m| maintenance_view(m, tz))
            .collect(),
        formula: s.uptime_formula,
        updated: when(st.now(), tz),
        message,
    };
    page.render()
        .map_err(|e| ApiError::internal("rendering the status page", &e))
}

fn html_answer(r: &Rendered, headers: &HeaderMap) -> Response {
    with_security_headers(r.answer(headers, "text/html; charset=utf-8"))
}

/// `GET /status`
pub(crate) async fn public(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snap = snapshot(&st).await?;
    Ok(html_answer(&snap.html, &headers))
}

/// `GET /status.json`: readable from any origin (it is public).
pub(crate) async fn json(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snap = snapshot(&st).await?;
    let mut res = snap.json.answer(&headers, "application/json");
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(res)
}

/// `GET /status/feed.atom`
pub(crate) async fn feed(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snap = snapshot(&st).await?;
    Ok(snap
        .feed
        .answer(&headers, "application/atom+xml; charset=utf-8"))
}

/// `GET /status/internal`: every service, for signed-in users.
pub(crate) async fn internal(
    State(st): State<AppState>,
    viewer: Option<Viewer>,
) -> Result<Response, ApiError> {
    if viewer.is_none() {
        return Ok(Redirect::to("/login?next=%2Fstatus%2Finternal").into_response());
    }
    let s = super::internal_summary(&st).await?;
    let body = render_page(&st, &s, Audience::Internal, None)?;
    let mut res = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(with_security_headers(res))
}

/// `GET /status/incidents/{id}`: one public incident and its public updates.
pub(crate) async fn incident(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let snap = snapshot(&st).await?;
    let found = snap
        .summary
        .incidents
        .iter()
        .chain(&snap.summary.recent_incidents)
        .find(|i| i.id == id);
    let Some(found) = found else {
        return Err(ApiError::not_found(format!(
            "no public incident `{id}` (the status page lists incidents of the last 14 days)"
        )));
    };
    let page = IncidentPage {
        title: &snap.summary.page.name,
        incident: incident_view(found, st.0.status.timezone),
    };
    let body = page
        .render()
        .map_err(|e| ApiError::internal("rendering an incident", &e))?;
    Ok(with_security_headers(
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
    ))
}

/// `GET /status/badge/{service}.svg`: a public service's state.
pub(crate) async fn badge(
    State(st): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(id) = file.strip_suffix(".svg") else {
        return Err(ApiError::not_found(
            "badges are /status/badge/{service}.svg",
        ));
    };
    let snap = snapshot(&st).await?;
    let Some(c) = snap.summary.components.iter().find(|c| c.id == id) else {
        return Err(ApiError::not_found(format!("no public service `{id}`")));
    };
    let svg = super::feed::badge(&c.name, c.status);
    let r = Rendered::new(svg.into_bytes(), None, snap.summary.page.updated_at);
    let mut res = r.answer(&headers, "image/svg+xml");
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(res)
}

/// `GET /status/charts/{n}.svg` (`?narrow`: drawn for a phone).
pub(crate) async fn chart(
    State(st): State<AppState>,
    Path(file): Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    let index = file
        .strip_suffix(".svg")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < st.0.status.charts.len())
        .ok_or_else(|| ApiError::not_found(format!("no chart `{file}`")))?;
    let size = if q
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "narrow"))
    {
        super::chart::NARROW
    } else {
        super::chart::WIDE
    };
    let svg = st.0.status_cache.charts.svg(&st, index, size).await;
    let mut res = ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(res)
}

/// `GET /status/assets/status.css`
pub(crate) async fn css() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CSS,
    )
        .into_response()
}
