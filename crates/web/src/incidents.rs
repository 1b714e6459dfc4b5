//! The incidents API. Handlers parse and answer; the rules are
//! `tocsin_app::incidents`'.
//!
//! - `GET /api/v1/incidents?status=open|resolved&service=&limit=&cursor=`
//! - `POST /api/v1/incidents`
//! - `GET /api/v1/incidents/{id}`, `PATCH /api/v1/incidents/{id}`
//! - `POST /api/v1/incidents/{id}/updates`, `POST /api/v1/incidents/{id}/resolve`
//! - `POST /api/v1/incidents/{id}/alerts`, `DELETE /api/v1/incidents/{id}/alerts/{alert_id}`
//! - `GET /api/v1/incidents/{id}/report`: Markdown, the start of a postmortem.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_app::incidents::{ChangeRequest, OpenRequest, ResolveRequest, UpdateRequest};
use tocsin_domain::Severity;
use tocsin_domain::incident::IncidentStatus;
use tocsin_store::{Incident, IncidentEvent, IncidentFilter, IncidentService};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{parse_cursor, parse_limit, parse_query};

/// One update of an incident: what people (or the auto-resolve) said.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UpdateView {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The incident's status after it.
    pub status: IncidentStatus,
    pub message: String,
    pub public: bool,
    pub actor: String,
}

/// `GET /api/v1/incidents/{id}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IncidentView {
    pub id: i64,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub services: Vec<IncidentService>,
    pub alert_ids: Vec<i64>,
    pub responders: Vec<String>,
    pub opened_at: DateTime<Utc>,
    pub opened_by: String,
    /// Opened by an alert at or above its service's `auto_incident_from`.
    pub auto_opened: bool,
    /// A person posted an update: it waits for a person to resolve it.
    pub held: bool,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    /// What was said, oldest first.
    pub updates: Vec<UpdateView>,
    /// Every entry (updates, links, severity and impact changes), oldest first.
    pub timeline: Vec<IncidentEvent>,
}

/// `GET /api/v1/incidents`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IncidentList {
    pub incidents: Vec<Incident>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

pub(crate) fn view(i: Incident, events: Vec<IncidentEvent>) -> IncidentView {
    let updates = events
        .iter()
        .filter(|e| e.is_update())
        .map(|e| UpdateView {
            id: e.id,
            at: e.at,
            status: e.status,
            message: e.message.clone(),
            public: e.public,
            actor: e.actor.clone(),
        })
        .collect();
    IncidentView {
        id: i.id,
        title: i.title,
        severity: i.severity,
        status: i.status,
        services: i.services,
        alert_ids: i.alert_ids,
        responders: i.responders,
        opened_at: i.opened_at,
        opened_by: i.opened_by,
        auto_opened: i.auto_opened,
        held: i.held,
        updated_at: i.updated_at,
        resolved_at: i.resolved_at,
        resolved_by: i.resolved_by,
        updates,
        timeline: events,
    }
}

fn parse_incident_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::bad_request(format!("`{id}` is not an incident id (a positive number)"))
    })
}

async fn show_one(st: &AppState, id: i64) -> Result<IncidentView, ApiError> {
    let (i, events) =
        st.0.app
            .incident_view(id)
            .await
            .map_err(|e| ApiError::from_app("show incident", e))?;
    Ok(view(i, events))
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes, what: &str) -> Result<T, ApiError> {
    tocsin_wire::WireError::parse_json(bytes)
        .map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    service: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    operation_id = "incidents_list",
    tag = "incidents",
    summary = "Incidents, newest first",
    params(
        ("status" = Option<String>, Query, description = "`open` or `resolved`"),
        ("service" = Option<String>, Query, description = "Only incidents affecting this service"),
        ("limit" = Option<i64>, Query, description = "1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, description = "OK", body = IncidentList), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 503, description = "Storage is unavailable; retry", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn list(
    State(st): State<AppState>,
    _caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<IncidentList>, ApiError> {
    let q: ListQuery = parse_query(q.as_deref())?;
    let open = match q.status.as_deref() {
        None | Some("") => None,
        Some("open") => Some(true),
        Some("resolved") => Some(false),
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "query parameter `status`: `{o}`; expected open or resolved"
            )));
        }
    };
    let limit = match q.limit.as_deref() {
        Some(v) => parse_limit(v, 500)?,
        None => 50,
    };
    let before = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let incidents =
        st.0.store
            .incidents(&IncidentFilter {
                open,
                service: q.service.filter(|s| !s.is_empty()),
                before,
                limit: limit + 1,
            })
            .await
            .map_err(|e| ApiError::from_store("list incidents", e))?;
    let mut incidents = incidents;
    let next_cursor = if incidents.len() > limit as usize {
        incidents.truncate(limit as usize);
        incidents.last().map(|i| i.id.to_string())
    } else {
        None
    };
    Ok(Json(IncidentList {
        incidents,
        next_cursor,
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents",
    operation_id = "incidents_open",
    tag = "incidents",
    summary = "Open an incident",
    request_body = OpenRequest,
    responses((status = 201, description = "The incident", body = IncidentView), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 422, description = "The body breaks a rule; each problem has its key path", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn open(
    State(st): State<AppState>,
    caller: Caller,
    bytes: Bytes,
) -> Result<(StatusCode, Json<IncidentView>), ApiError> {
    let r: OpenRequest = body(&bytes, "incident")?;
    let i =
        st.0.app
            .open_incident(&caller, "api", &r)
            .await
            .map_err(|e| ApiError::from_app("open incident", e))?;
    Ok((StatusCode::CREATED, Json(show_one(&st, i.id).await?)))
}

#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}",
    operation_id = "incidents_show",
    tag = "incidents",
    summary = "One incident with its updates and timeline",
    params(("id" = i64, Path, description = "The incident's id", minimum = 1)),
    responses((status = 200, description = "OK", body = IncidentView), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn show(
    State(st): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, ApiError> {
    let id = parse_incident_id(&id)?;
    Ok(Json(show_one(&st, id).await?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/incidents/{id}",
    operation_id = "incidents_change",
    tag = "incidents",
    summary = "Change an incident's title, severity, services and impacts, or responders",
    params(("id" = i64, Path, description = "The incident's id", minimum = 1)),
    request_body = ChangeRequest,
    responses((status = 200, description = "The incident", body = IncidentView), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 409, description = "The incident is resolved", body = crate::schema::ErrorBody), (status = 422, description = "The body breaks a rule; each problem has its key path", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn change(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<IncidentView>, ApiError> {
    let id = parse_incident_id(&id)?;
    let r: ChangeRequest = body(&bytes, "incident change")?;
    st.0.app
        .change_incident(&caller, "api", id, &r)
        .await
        .map_err(|e| ApiError::from_app("change incident", e))?;
    Ok(Json(show_one(&st, id).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/updates",
    operation_id = "incidents_update",
    tag = "incidents",
    summary = "Post an update (public or internal), optionally with a new status",
    params(("id" = i64, Path, description = "The incident's id", minimum = 1)),
    request_body = UpdateRequest,
    responses((status = 201, description = "The incident", body = IncidentView), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 409, description = "The incident is resolved", body = crate::schema::ErrorBody), (status = 422, description = "The body breaks a rule; each problem has its key path", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<IncidentView>), ApiError> {
    let id = parse_incident_id(&id)?;
    let r: UpdateRequest = body(&bytes, "incident update")?;
    st.0.app
        .post_incident_update(&caller, "api", id, &r)
        .await
        .map_err(|e| ApiError::from_app("post incident update", e))?;
    Ok((StatusCode::CREATED, Json(show_one(&st, id).await?)))
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/resolve",
    operation_id = "incidents_resolve",
    tag = "incidents",
    summary = "Resolve an incident",
    params(("id" = i64, Path, description = "The incident's id", minimum = 1)),
    request_body(content = Option<ResolveRequest>, description = "Optional: the last update and whether it is public (default true)"),
    responses((status = 200, description = "The incident", body = IncidentView), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 409, description = "The incident is resolved already", body = crate::schema::ErrorBody), (status = 422, description = "The body breaks a rule; each problem has its key path", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn resolve(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<IncidentView>, ApiError> {
    let id = parse_incident_id(&id)?;
    let r: ResolveRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        ResolveRequest::default()
    } else {
        body(&bytes, "incident resolution")?
    };
    st.0.app
        .resolve_incident(&caller, "api", id, &r)
        .await
        .map_err(|e| ApiError::from_app("resolve incident", e))?;
    Ok(Json(show_one(&st, id).await?))
}

/// `POST /api/v1/incidents/{id}/alerts`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub alert_id: i64,
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/alerts",
    operation_id = "incidents_link",
    tag = "incidents",
    summary = "Link an alert to an incident",
    params(("id" = i64, Path, description = "The incident's id", minimum = 1)),
    request_body = LinkRequest,
    responses((status = 200, description = "The incident", body = IncidentView), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 409, description = "The incident is resolved", body = crate::schema::ErrorBody), (status = 422, description = "No such alert", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn link(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<IncidentView>, ApiError> {
    let id = parse_incident_id(&id)?;
    let r: LinkRequest = body(&bytes, "link")?;
    st.0.app
        .link_incident_alert(&caller, "api", id, r.alert_id, true)
        .await
        .map_err(|e| ApiError::from_app("link alert", e))?;
    Ok(Json(show_one(&st, id).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/incidents/{id}/alerts/{alert_id}",
    operation_id = "incidents_unlink",
    tag = "incidents",
    summary = "Unlink an alert from an incident",
    params(("id" = i64, Path, description = "The incident's id", minimum = 1), ("alert_id" = i64, Path, description = "The alert's id", minimum = 1)),
    responses((status = 200, description = "The incident", body = IncidentView), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such incident, or the alert is not linked", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn unlink(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, alert_id)): Path<(String, String)>,
) -> Result<Json<IncidentView>, ApiError> {
    let id = parse_incident_id(&id)?;
    let alert_id = crate::alerts::parse_id(&alert_id)?;
    st.0.app
        .link_incident_alert(&caller, "api", id, alert_id, false)
        .await
        .map_err(|e| ApiError::from_app("unlink alert", e))?;
    Ok(Json(show_one(&st, id).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/report",
    operation_id = "incidents_report",
    tag = "incidents",
    summary = "The incident as a Markdown report: summary, impact per service, merged timeline",
    params(("id" = i64, Path, description = "The incident's id", minimum = 1)),
    responses((status = 200, description = "Markdown", content_type = "text/markdown", body = String), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn report(
    State(st): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_incident_id(&id)?;
    let text =
        st.0.app
            .incident_report(id)
            .await
            .map_err(|e| ApiError::from_app("incident report", e))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/markdown; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"incident-{id}.md\""),
            ),
        ],
        text,
    )
        .into_response())
}
