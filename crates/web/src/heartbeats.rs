//! Heartbeats (SPEC §6): `HEAD`/`GET`/`POST /api/heartbeats/{key}` and the
//! same under `/api/v1/heartbeats/{key}` record a ping; `GET
//! /api/v1/heartbeats` lists each heartbeat with its state.
//!
//! A ping answers 202 at once. The first ping arms the heartbeat; a ping of
//! an overdue heartbeat resolves the alert it raised. A resolved
//! Alertmanager webhook is not a ping (a resolved Watchdog means trouble):
//! it gets 202 too, so that Alertmanager does not retry, but changes
//! nothing. Never 429.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use tocsin_wire::heartbeat;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /api/v1/heartbeats/{x}`: a ping when `x` is a heartbeat's key (the
/// contract URL); else, for a caller with an API token, the heartbeat `x`
/// of the catalog.
pub async fn ping_or_object(
    State(st): State<AppState>,
    Path(x): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let live = st.live();
    if live.heartbeat_by_key(&x).is_none()
        && headers.contains_key(axum::http::header::AUTHORIZATION)
        && live.loaded.object("heartbeats", &x).is_some()
    {
        let caller = Caller::from_headers(&st, &headers).await?;
        return crate::catalog::show(State(st.clone()), caller, "heartbeats", x).await;
    }
    drop(live);
    Ok(ping(State(st), Path(x), body).await.into_response())
}

#[utoipa::path(
    post,
    path = "/api/heartbeats/{key}",
    operation_id = "heartbeats_ping",
    tag = "heartbeats",
    summary = "Ping a heartbeat (GET works too)",
    params(("key" = String, Path, description = "The heartbeat's key")),
    security(()),
    responses((status = 202, description = "Recorded (or ignored: not a ping)", body = crate::schema::PingAnswer), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 503, description = "Storage is unavailable; retry", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn ping(
    State(st): State<AppState>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let live = st.live();
    let Some(hb) = live.heartbeat_by_key(&key) else {
        st.0.metrics.ingested("unknown", "unknown_key", 1);
        return Err(ApiError::not_found(
            "no heartbeat has this key; copy the ping URL that `tocsin serve` prints at start-up",
        ));
    };
    let source_id = heartbeat::source_id(&hb.id);
    if heartbeat::check_ping(&body).is_err() {
        st.0.metrics.ingested(&source_id, "not_a_ping", 1);
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "ignored",
                "heartbeat": hb.id,
                "reason": "a resolved Alertmanager webhook is not a ping: the Watchdog stopped firing",
            })),
        ));
    }
    let now = st.now();
    let Some((r, due)) =
        st.0.app
            .heartbeat_ping(&live.catalog, &hb.id, now)
            .await
            .map_err(|e| crate::catalog::app_error("heartbeat ping", e))?
    else {
        return Err(ApiError::not_found(
            "the heartbeat was just removed from the catalog",
        ));
    };
    st.0.metrics.ingested(&source_id, "ping", 1);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "status": "ok",
            "heartbeat": hb.id,
            "state": "healthy",
            "armed": r.previous.is_none(),
            "overdue_at": due,
        })),
    ))
}

/// `GET /api/v1/heartbeats`
#[utoipa::path(
    get,
    path = "/api/v1/heartbeats",
    operation_id = "heartbeats_list",
    tag = "heartbeats",
    summary = "Heartbeats with their state",
    responses((status = 200, description = "OK", body = crate::schema::HeartbeatList), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 503, description = "Storage is unavailable; retry", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn list(
    State(st): State<AppState>,
    _caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rows =
        st.0.store
            .heartbeat_rows()
            .await
            .map_err(|e| ApiError::from_store("list heartbeats", e))?;
    let now = st.now();
    let live = st.live();
    let out: Vec<serde_json::Value> = live
        .heartbeats
        .iter()
        .map(|h| {
            let row = rows.iter().find(|r| r.id == h.id);
            let state = match row {
                None => "unknown",
                Some(r) if r.is_overdue(now) => "overdue",
                Some(_) => "healthy",
            };
            let view = json!({
                "id": h.id,
                "name": h.name,
                "state": state,
                "interval": h.interval.to_string(),
                "grace": h.grace.to_string(),
                "escalation_policy": h.policy_id,
                "last_ping_at": row.map(|r| r.last_ping_at),
                "overdue_at": row.map(|r| r.due_at),
                "pings": row.map(|r| r.pings).unwrap_or(0),
                "alert_id": row.and_then(|r| r.alert_id),
            });
            crate::catalog::with_object(&live, "heartbeats", &h.id, view)
        })
        .collect();
    Ok(Json(json!({ "heartbeats": out })))
}
