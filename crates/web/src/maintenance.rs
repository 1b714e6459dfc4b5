//! Maintenance windows on sources and services: while one is active, new
//! alerts are stored and shown but nobody is paged.
//!
//! - `GET /api/v1/maintenance`: active and upcoming windows.
//! - `POST /api/v1/maintenance` with `{"source" | "service": ID,
//!   "duration": "2h" | "ends_at": RFC3339, "starts_at"?: RFC3339,
//!   "reason"?: text, "title"?: text, "public"?: bool}`. A public window is
//!   on the status page; one that starts later is announced there.
//! - `POST /api/v1/maintenance/{id}/end`: end it now.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tocsin_domain::DurationSpec;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/v1/maintenance",
    operation_id = "maintenance_list",
    tag = "maintenance",
    summary = "Active and upcoming maintenance windows",
    responses((status = 200, description = "OK", body = crate::schema::WindowList), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 503, description = "Storage is unavailable; retry", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn list(State(st): State<AppState>, _caller: Caller) -> Result<Json<Value>, ApiError> {
    let now = st.now();
    let w =
        st.0.store
            .maintenance_windows(now)
            .await
            .map_err(|e| ApiError::from_store("maintenance windows", e))?;
    let out: Vec<Value> = w
        .into_iter()
        .map(|w| {
            let active = w.is_active(now);
            let mut v = json!(w);
            v["active"] = json!(active);
            v
        })
        .collect();
    Ok(Json(json!({"windows": out})))
}

/// `POST /api/v1/maintenance`: exactly one of `source` and `service`;
/// exactly one of `duration` and `ends_at`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWindow {
    source: Option<String>,
    service: Option<String>,
    /// `2h`, `30m`, …
    duration: Option<String>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    reason: Option<String>,
    /// What the status page calls the window (default: the reason).
    title: Option<String>,
    /// Show it on the status page; scheduled ahead, it is announced there
    /// and to subscribers (default false).
    #[serde(default)]
    public: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/maintenance",
    operation_id = "maintenance_create",
    tag = "maintenance",
    summary = "Open a maintenance window on a source or service",
    request_body = NewWindow,
    responses((status = 201, description = "The window", body = tocsin_store::MaintenanceWindow), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: NewWindow = tocsin_wire::WireError::parse_json(&body)
        .map_err(|e| ApiError::bad_request(format!("maintenance window: {e}")))?;
    let (kind, id) = match (b.source, b.service) {
        (Some(s), None) => ("source", s),
        (None, Some(s)) => ("service", s),
        _ => {
            return Err(ApiError::bad_request(
                "maintenance window: name exactly one of `source` or `service`",
            ));
        }
    };
    let now = st.now();
    let starts_at = b.starts_at.unwrap_or(now);
    let ends_at = match (b.duration, b.ends_at) {
        (Some(d), None) => {
            let d: DurationSpec = d.parse().map_err(|e: tocsin_domain::ParseError| {
                ApiError::bad_request(format!("maintenance window: duration: {e}"))
            })?;
            starts_at + d.as_chrono()
        }
        (None, Some(e)) => e,
        _ => {
            return Err(ApiError::bad_request(
                "maintenance window: give exactly one of `duration` (e.g. 2h) or `ends_at`",
            ));
        }
    };
    let w =
        st.0.app
            .start_maintenance(
                &caller,
                "api",
                &tocsin_store::NewMaintenance {
                    target_kind: kind.into(),
                    target_id: id,
                    starts_at,
                    ends_at,
                    reason: b.reason.unwrap_or_default(),
                    title: b.title.unwrap_or_default(),
                    public: b.public,
                },
            )
            .await
            .map_err(|e| match e {
                // Bad input here has always been a 400 naming the field.
                tocsin_app::AppError::Invalid(p) => ApiError::bad_request(format!(
                    "maintenance window: {}",
                    p.first().map(|p| p.message.clone()).unwrap_or_default()
                )),
                e => ApiError::from_app("create maintenance window", e),
            })?;
    Ok((StatusCode::CREATED, Json(json!(w))))
}

#[utoipa::path(
    post,
    path = "/api/v1/maintenance/{id}/end",
    operation_id = "maintenance_end",
    tag = "maintenance",
    summary = "End a maintenance window now",
    params(("id" = i64, Path, description = "The window's id")),
    responses((status = 200, description = "The window", body = tocsin_store::MaintenanceWindow), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn end(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{id}` is not a window id")))?;
    let w =
        st.0.app
            .end_maintenance(&caller, "api", id)
            .await
            .map_err(|e| ApiError::from_app("end maintenance window", e))?;
    Ok(Json(json!(w)))
}
