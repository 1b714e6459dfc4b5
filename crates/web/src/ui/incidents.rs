//! Incidents in the UI: the list with a form to open one, and each
//! incident's page (timeline, updates public or internal, status, linking
//! alerts, resolving). Every form calls the same use-case as the API.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tocsin_app::incidents::{OpenRequest, ResolveRequest, UpdateRequest};
use tocsin_domain::incident::{Impact, IncidentStatus};
use tocsin_domain::{Permission, Scope, Severity};
use tocsin_store::{IncidentFilter, IncidentService};

use super::{Chrome, Posted, UiError, Viewer, html, when};
use crate::state::AppState;

struct Row {
    id: i64,
    title: String,
    severity: String,
    status: String,
    services: String,
    alerts: usize,
    opened: String,
    open: bool,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<Row>,
    services: Vec<(String, String)>,
    may_open: bool,
    error: Option<String>,
}

struct Entry {
    at: String,
    kind: String,
    status: String,
    message: String,
    public: bool,
    actor: String,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    c: Chrome,
    id: i64,
    title: String,
    severity: String,
    status: String,
    open: bool,
    held: bool,
    services: Vec<(String, String)>,
    alerts: Vec<(i64, String)>,
    entries: Vec<Entry>,
    may_act: bool,
    statuses: Vec<&'static str>,
    error: Option<String>,
}

fn services_text(st: &AppState, s: &[IncidentService]) -> String {
    let c = st.0.app.catalog.current();
    s.iter()
        .map(|x| {
            let name = c
                .services
                .get(&x.id)
                .map_or(x.id.as_str(), |s| s.name.as_str());
            format!("{name} ({})", x.impact.component().label().to_lowercase())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn list_page(
    st: &AppState,
    viewer: &Viewer,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let incidents =
        st.0.store
            .incidents(&IncidentFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .map_err(|e| UiError::from_store("incidents", e))?;
    let c = st.0.app.catalog.current();
    let p = viewer.principal();
    let rows = incidents
        .iter()
        .map(|i| Row {
            id: i.id,
            title: i.title.clone(),
            severity: i.severity.to_string(),
            status: i.status.label().to_owned(),
            services: services_text(st, &i.services),
            alerts: i.alert_ids.len(),
            opened: when(i.opened_at),
            open: i.status.is_open(),
        })
        .collect();
    let page = ListPage {
        c: Chrome::new(viewer, "Incidents", "/incidents"),
        rows,
        services: c
            .services
            .values()
            .map(|s| (s.id.clone(), s.name.clone()))
            .collect(),
        may_open: p.allows(
            Permission::ManageIncidents,
            &Scope::Teams(Default::default()),
        ) || p.role != tocsin_domain::Role::Observer,
        error,
    };
    Ok((status, html(&page)).into_response())
}

/// `GET /incidents`
pub(crate) async fn list(State(st): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    list_page(&st, &viewer, None, StatusCode::OK).await
}

/// `POST /incidents`: open one.
pub(crate) async fn open(
    State(st): State<AppState>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    let severity = form.get("severity").unwrap_or("SEV2").parse::<Severity>();
    let Ok(severity) = severity else {
        return list_page(
            &st,
            &viewer,
            Some("choose a severity".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let mut services = Vec::new();
    for id in form.all("services") {
        let impact = form
            .get(&format!("impact-{id}"))
            .and_then(|i| i.parse::<Impact>().ok())
            .unwrap_or(Impact::Degraded);
        services.push(IncidentService {
            id: id.to_owned(),
            impact,
        });
    }
    let r = OpenRequest {
        title: form.get("title").unwrap_or_default().to_owned(),
        severity,
        status: None,
        services,
        responders: vec![viewer.user_id().to_owned()],
        message: form
            .get("message")
            .filter(|m| !m.trim().is_empty())
            .map(str::to_owned),
        public: form.get("public") == Some("on"),
        alert_ids: Vec::new(),
    };
    match st.0.app.open_incident(viewer.principal(), "web", &r).await {
        Ok(i) => Ok(Redirect::to(&format!("/incidents/{}", i.id)).into_response()),
        Err(e @ tocsin_app::AppError::Invalid(_)) => {
            list_page(
                &st,
                &viewer,
                Some(e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(UiError::from_app("open incident", e)),
    }
}

async fn incident_page(
    st: &AppState,
    viewer: &Viewer,
    id: i64,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let (i, events) =
        st.0.app
            .incident_view(id)
            .await
            .map_err(|e| UiError::from_app("incident", e))?;
    let c = st.0.app.catalog.current();
    let scope = Scope::Teams(
        i.services
            .iter()
            .flat_map(|s| c.target_teams("service", &s.id))
            .collect(),
    );
    let mut alerts = Vec::new();
    for a in i.alert_ids.iter().take(50) {
        if let Ok(Some(al)) = st.0.store.get_alert(*a).await {
            alerts.push((
                al.id,
                format!("{} · {} · {}", al.severity, al.status, al.summary),
            ));
        }
    }
    let page = IncidentPage {
        c: Chrome::new(viewer, format!("Incident {id}"), "/incidents"),
        id,
        title: i.title.clone(),
        severity: i.severity.to_string(),
        status: i.status.label().to_owned(),
        open: i.status.is_open(),
        held: i.held,
        services: i
            .services
            .iter()
            .map(|s| {
                (
                    c.services
                        .get(&s.id)
                        .map_or_else(|| s.id.clone(), |x| x.name.clone()),
                    s.impact.component().label().to_owned(),
                )
            })
            .collect(),
        alerts,
        entries: events
            .iter()
            .rev()
            .map(|e| Entry {
                at: when(e.at),
                kind: e.kind.clone(),
                status: e.status.label().to_owned(),
                message: e.message.clone(),
                public: e.public,
                actor: e.actor.clone(),
            })
            .collect(),
        may_act: viewer
            .principal()
            .allows(Permission::ManageIncidents, &scope),
        statuses: IncidentStatus::ALL.iter().map(|s| s.as_str()).collect(),
        error,
    };
    Ok((status, html(&page)).into_response())
}

/// `GET /incidents/{id}`
pub(crate) async fn page(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    incident_page(&st, &viewer, id, None, StatusCode::OK).await
}

/// `POST /incidents/{id}/{action}`: `update`, `resolve`, `link`.
pub(crate) async fn act(
    State(st): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    let p = viewer.principal();
    let done = match action.as_str() {
        "update" => {
            let status = form
                .get("status")
                .filter(|s| !s.is_empty())
                .and_then(|s| s.parse::<IncidentStatus>().ok());
            let r = UpdateRequest {
                message: form.get("message").unwrap_or_default().to_owned(),
                public: form.get("public") == Some("on"),
                status,
            };
            st.0.app
                .post_incident_update(p, "web", id, &r)
                .await
                .map(|_| ())
        }
        "resolve" => {
            let r = ResolveRequest {
                message: form
                    .get("message")
                    .filter(|m| !m.trim().is_empty())
                    .map(str::to_owned),
                public: Some(form.get("public") != Some("off")),
            };
            st.0.app
                .resolve_incident(p, "web", id, &r)
                .await
                .map(|_| ())
        }
        "link" => {
            let Some(alert) = form
                .get("alert_id")
                .and_then(|a| a.trim().trim_start_matches('#').parse::<i64>().ok())
            else {
                return incident_page(
                    &st,
                    &viewer,
                    id,
                    Some("alert: give an alert number".into()),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            };
            st.0.app
                .link_incident_alert(p, "web", id, alert, true)
                .await
                .map(|_| ())
        }
        _ => return Err(UiError::not_found(format!("no action `{action}`"))),
    };
    match done {
        Ok(()) => Ok(Redirect::to(&format!("/incidents/{id}")).into_response()),
        Err(e @ (tocsin_app::AppError::Invalid(_) | tocsin_app::AppError::Conflict(_))) => {
            incident_page(
                &st,
                &viewer,
                id,
                Some(e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(UiError::from_app("incident", e)),
    }
}
