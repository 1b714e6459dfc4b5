//! `POST /api/v1/events/prometheus/{key}` and `POST /webhooks/{key}`:
//! Alertmanager webhooks (SPEC §2.1, §2.2).
//!
//! 202 only after the commit; 400 naming the field; 404 unknown key; 413
//! over the body limit; 415 not JSON; 503 when storage is down. Never 429:
//! Alertmanager does not retry it.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::Utc;
use serde_json::json;
use tocsin_store::{Actor, RoutedEvent};
use tocsin_wire::alertmanager;

use crate::error::ApiError;
use crate::state::{AppState, LiveSource};

#[utoipa::path(
    post,
    path = "/api/v1/events/prometheus/{key}",
    operation_id = "ingest_prometheus",
    tag = "senders",
    summary = "Alertmanager webhook (also at /webhooks/{key})",
    params(("key" = String, Path, description = "The source's key")),
    request_body(content = Object, content_type = "application/json", description = "Alertmanager webhook v4"),
    security(()),
    responses((status = 202, description = "Committed", body = crate::schema::IngestAnswer), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 413, description = "Over the body limit", body = crate::schema::ErrorBody), (status = 415, description = "Not JSON", body = crate::schema::ErrorBody), (status = 503, description = "Storage is unavailable; retry", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn prometheus(
    State(st): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let started = Instant::now();
    let m = &st.0.metrics;
    // A key works only on its own type's endpoints: a PagerDuty source's
    // key here is as unknown as a made-up one (and must not slip past its
    // rate limit).
    let Some(source) = st
        .source_by_key(&key)
        .filter(|s| s.kind == tocsin_domain::SourceType::Prometheus)
    else {
        m.ingested("unknown", "unknown_key", 1);
        return Err(ApiError::not_found(
            "no source has this key; copy the webhook URL that `tocsin serve` prints at start-up",
        ));
    };
    let result = receive(&st, &source, &headers, body).await;
    match &result {
        Ok(_) => m.ingest_time(&source.id, started.elapsed().as_secs_f64()),
        Err(e) => m.ingested(&source.id, rejection_outcome(e.status), 1),
    }
    result
}

fn rejection_outcome(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::BAD_REQUEST => "invalid",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "error",
    }
}

/// Check the media type and size, and read the body.
pub(crate) async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !(essence == "application/json" || essence.ends_with("+json")) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type `{essence}` is not JSON; send application/json"),
            ));
        }
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the limit of {limit} bytes (server.body_limit_bytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        if inner
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            too_large()
        } else {
            ApiError::bad_request(format!("could not read the body: {inner}"))
        }
    })
}

async fn receive(
    st: &AppState,
    source: &LiveSource,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let bytes = read_json_body(headers, body, st.0.body_limit).await?;
    let actor = Actor::new(format!("source:{}", source.id), "prometheus webhook");
    let results = webhook(st, source, &bytes, &actor).await?;
    let mut alerts = Vec::with_capacity(results.len());
    for r in &results {
        st.0.metrics
            .ingested_alert(&source.id, r.outcome.as_str(), 1, r.alert_id);
        if let (Some(id), Some(status)) = (r.alert_id, r.status) {
            alerts.push(json!({"id": id, "status": status}));
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "accepted", "alerts": alerts})),
    ))
}

/// An Alertmanager webhook body through the whole ingest path: parse, map,
/// route, store (a test alert of a Prometheus source takes it too).
pub(crate) async fn webhook(
    st: &AppState,
    source: &LiveSource,
    bytes: &[u8],
    actor: &Actor,
) -> Result<Vec<tocsin_store::IngestResult>, ApiError> {
    let now = st.now();
    let hook = alertmanager::parse(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid Alertmanager webhook: {e}")))?;
    let events = alertmanager::map(&hook, &source.prometheus, now)
        .map_err(|e| ApiError::bad_request(format!("invalid Alertmanager webhook: {e}")))?;
    let routed = route_events(st, source, events, now).await;
    store_events(st, &source.id, actor, routed, now).await
}

/// Apply support hours, routing and maintenance windows to mapped events
/// (the application layer's rules), with the catalog the source was found in.
pub(crate) async fn route_events(
    st: &AppState,
    source: &LiveSource,
    events: Vec<tocsin_domain::AlertEvent>,
    now: chrono::DateTime<Utc>,
) -> Vec<RoutedEvent> {
    st.0.app
        .route(&source.live.catalog, source.origin(), events, now)
        .await
}

/// Store routed events (503 when storage is down or slow), wake the
/// escalation worker for new alerts whose first level did not run at
/// ingest and the dispatcher for pages queued, and count outcomes.
pub(crate) async fn store_events(
    st: &AppState,
    source_id: &str,
    actor: &Actor,
    routed: Vec<RoutedEvent>,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<tocsin_store::IngestResult>, ApiError> {
    let results = match tokio::time::timeout(
        st.0.store_timeout,
        st.0.store.ingest(source_id, actor, routed, now),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(tocsin_store::StoreError::Invalid(m))) => {
            return Err(ApiError::bad_request(format!(
                "cannot store this event: {m}"
            )));
        }
        Ok(Err(e)) => return Err(ApiError::unavailable("ingest", &e)),
        Err(_) => {
            return Err(ApiError::unavailable(
                "ingest",
                &"storage did not answer in time",
            ));
        }
    };
    if results
        .iter()
        .any(tocsin_store::IngestResult::awaits_escalation)
    {
        st.0.wake.notify_one();
    }
    // First escalation levels that ran at ingest count as the worker's.
    let (steps, queued) = results
        .iter()
        .filter_map(|r| r.first_level)
        .fold((0u64, 0u64), |(s, q), n| (s + 1, q + n as u64));
    if steps > 0 {
        st.0.metrics.escalation(steps, queued, 0);
    }
    if queued > 0 {
        st.0.dispatch.notify_one();
    }
    Ok(results)
}
