//! `/healthz`, `/readyz`, `/metrics` and the JSON fallbacks.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::redact::redact_path;
use crate::state::AppState;

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "ops_healthz",
    tag = "operations",
    summary = "The process is alive",
    security(()),
    responses((status = 200, description = "ok", body = crate::schema::Health), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Storage answers.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "ops_readyz",
    tag = "operations",
    summary = "Storage is reachable",
    security(()),
    responses((status = 200, description = "ready", body = crate::schema::Health), (status = 503, description = "Storage is unavailable; retry", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn readyz(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match tokio::time::timeout(Duration::from_secs(2), st.0.store.ping()).await {
        Ok(Ok(())) => Ok(Json(
            json!({"status": "ready", "storage": st.0.store.backend()}),
        )),
        Ok(Err(e)) => Err(ApiError::unavailable("readiness check", &e)),
        Err(_) => Err(ApiError::unavailable(
            "readiness check",
            &"no answer within 2s",
        )),
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "ops_metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    security(()),
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text"), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    match st.0.store.count_by_status().await {
        Ok(counts) => {
            for (status, n) in counts {
                st.0.metrics.set_alerts(status.as_str(), n);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not count alerts"),
    }
    match st.0.store.heartbeat_rows().await {
        Ok(rows) => {
            let now = st.now();
            for r in rows {
                st.0.metrics
                    .set_heartbeat(&r.id, r.is_overdue(now), r.last_ping_at.timestamp());
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not read heartbeats"),
    }
    match st.0.store.outbox_depth().await {
        Ok(n) => st.0.metrics.set_outbox_depth(n),
        Err(e) => tracing::warn!(error = %e, "metrics: could not count the outbox"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.0.metrics.render(),
    )
}

/// 404 for a path no route serves (a sender's path answers in its shape).
pub async fn not_found(uri: Uri, headers: axum::http::HeaderMap) -> Response {
    let message = format!("no route for {}", redact_path(uri.path()));
    if let Some(r) = crate::senders::v2_refusal(uri.path(), StatusCode::NOT_FOUND, &message) {
        return r;
    }
    // A person's browser gets a page; everything else the JSON error.
    let wants_html = !uri.path().starts_with("/api/")
        && headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let page = crate::ui::UiError::not_found(format!(
            "there is no page at {}; the alert list is at /alerts",
            redact_path(uri.path())
        ));
        return crate::ui::with_security_headers(page.into_response());
    }
    ApiError::not_found(message).into_response()
}

/// 405 for a method a route does not take (a sender's path answers in its shape).
pub async fn method_not_allowed(uri: Uri) -> Response {
    let message = "this path does not accept that method";
    crate::senders::v2_refusal(uri.path(), StatusCode::METHOD_NOT_ALLOWED, message).unwrap_or_else(
        || {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                message,
            )
            .into_response()
        },
    )
}
