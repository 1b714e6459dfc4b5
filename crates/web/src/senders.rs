//! Drop-in endpoints for senders users already have (SPEC §2.1, §2.3):
//! PagerDuty Events v2, the Opsgenie Alert API subset and the ilert Events
//! API. Each answers with its original's status codes and body shapes
//! (PROTOCOLS.md §2–§4), and each goes through the same ingest path as
//! Alertmanager webhooks (routing, support hours, maintenance, dedup and
//! ordering). Every key is rate-limited (429 with `Retry-After`).

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tocsin_domain::SourceType;
use tocsin_store::{Actor, IngestOutcome, Transition, TransitionResult};
use tocsin_wire::opsgenie::{Identifier, RequestAction};
use tocsin_wire::{Command, ilert, opsgenie, pagerduty};

use crate::error::ApiError;
use crate::ingest::{read_json_body, route_events, store_events};
use crate::state::{AppState, LiveSource};

/// What applying a command did.
pub(crate) struct Applied {
    pub alert_id: Option<i64>,
    pub outcome: &'static str,
}

/// A fresh dedup key for an event that brings none (128 random bits).
pub(crate) fn generated_key() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a keyed request is turned away before its event is read.
enum Refused {
    /// No source of the endpoint's type has this key.
    UnknownKey,
    /// The key is over its rate limit; the next event is possible after this.
    Limited(std::time::Duration),
}

/// The source of the endpoint's type with this key, within its rate limit.
/// Each endpoint answers a refusal in its original's shape.
fn keyed_source(st: &AppState, key: &str, kind: SourceType) -> Result<LiveSource, Refused> {
    let Some(source) = st.source_by_key(key).filter(|s| s.kind == kind) else {
        st.0.metrics.ingested("unknown", "unknown_key", 1);
        return Err(Refused::UnknownKey);
    };
    if let Err(wait) = source.limit.take(Instant::now()) {
        st.0.metrics.ingested(&source.id, "rate_limited", 1);
        return Err(Refused::Limited(wait));
    }
    Ok(source)
}

/// Apply one command through the common ingest path, as the source.
async fn apply(
    st: &AppState,
    source: &LiveSource,
    cmd: Command,
    channel: &str,
    now: DateTime<Utc>,
) -> Result<Applied, ApiError> {
    let actor = Actor::new(format!("source:{}", source.id), channel);
    apply_as(st, source, cmd, &actor, now).await
}

/// Apply one command through the common ingest path, as `actor`.
pub(crate) async fn apply_as(
    st: &AppState,
    source: &LiveSource,
    cmd: Command,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Applied, ApiError> {
    let actor = actor.clone();
    let event = match cmd {
        Command::Trigger(e) | Command::Resolve(e) => e,
        Command::Accept(key) => {
            let id =
                st.0.store
                    .open_alert_id(&source.id, key.as_str())
                    .await
                    .map_err(|e| ApiError::from_store("accept by key", e))?;
            let Some(id) = id else {
                st.0.metrics.ingested(&source.id, "no_open_alert", 1);
                return Ok(Applied {
                    alert_id: None,
                    outcome: "no_open_alert",
                });
            };
            let r =
                st.0.app
                    .transition(id, Transition::Accept, &actor)
                    .await
                    .map_err(|e| crate::catalog::app_error("accept by key", e))?;
            let outcome = match r {
                TransitionResult::Done(_) => "accepted",
                _ => "unchanged",
            };
            st.0.metrics
                .ingested_alert(&source.id, outcome, 1, Some(id));
            return Ok(Applied {
                alert_id: Some(id),
                outcome,
            });
        }
    };
    let routed = route_events(st, source, vec![event], now).await;
    let results = store_events(st, &source.id, &actor, routed, now).await?;
    let r = results.into_iter().next();
    let outcome = r
        .as_ref()
        .map(|r| r.outcome)
        .unwrap_or(IngestOutcome::Ignored);
    let alert_id = r.and_then(|r| r.alert_id);
    st.0.metrics
        .ingested_alert(&source.id, outcome.as_str(), 1, alert_id);
    Ok(Applied {
        alert_id,
        outcome: outcome.as_str(),
    })
}

fn retry_after(mut res: Response, wait: std::time::Duration) -> Response {
    // Round up: a client that waits this long finds a token.
    let secs = (wait.as_secs_f64().ceil() as u64).max(1);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

// ---------------------------------------------------------------- PagerDuty

fn pd_invalid(errors: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors})),
    )
        .into_response()
}

/// PagerDuty answers malformed bodies and bad keys with 400 too; other
/// refusals keep their status in PagerDuty's shape. Storage trouble stays
/// Tocsin's 503 (senders retry it).
fn pd_error(e: ApiError) -> Response {
    match e.status {
        StatusCode::BAD_REQUEST => pd_invalid(vec![e.message]),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::INTERNAL_SERVER_ERROR => e.into_response(),
        status => pd_shaped(status, &e.message),
    }
}

/// An answer in PagerDuty's `{status, message, errors}` shape.
fn pd_shaped(status: StatusCode, message: &str) -> Response {
    let what = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    (
        status,
        Json(json!({"status": what, "message": message, "errors": [message]})),
    )
        .into_response()
}

/// A refusal (unknown path, wrong method) of a path under `/v2/` in the
/// shape of the sender that owns it: Opsgenie's under `/v2/alerts`,
/// PagerDuty's for the rest. `None`: not a sender's path.
pub(crate) fn v2_refusal(path: &str, status: StatusCode, message: &str) -> Option<Response> {
    if path == "/v2/alerts" || path.starts_with("/v2/alerts/") {
        Some(og(status, Instant::now(), message))
    } else if path == "/v2" || path.starts_with("/v2/") {
        Some(pd_shaped(status, message))
    } else {
        None
    }
}

fn pd_throttled(wait: std::time::Duration) -> Response {
    retry_after(
        (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"status": "throttle event", "message": "Requests for this integration key are arriving too quickly; retry later", "errors": ["rate limit exceeded"]})),
        )
            .into_response(),
        wait,
    )
}

/// The pagerduty source with this `routing_key`, within its rate limit;
/// else PagerDuty's 400 or 429.
fn pd_source(st: &AppState, key: Option<&str>) -> Result<LiveSource, Box<Response>> {
    let Some(key) = key else {
        return Err(Box::new(pd_invalid(vec![
            "'routing_key' is missing or blank".to_owned(),
        ])));
    };
    keyed_source(st, key, SourceType::Pagerduty).map_err(|r| {
        Box::new(match r {
            Refused::UnknownKey => pd_invalid(vec![
                "'routing_key' is not the key of a pagerduty source in Tocsin".to_owned(),
            ]),
            Refused::Limited(wait) => pd_throttled(wait),
        })
    })
}

/// `POST /v2/enqueue`: PagerDuty Events API v2 alert events.
#[utoipa::path(
    post,
    path = "/v2/enqueue",
    operation_id = "senders_pd_enqueue",
    tag = "senders",
    summary = "PagerDuty Events API v2",
    request_body(content = Object, content_type = "application/json", description = "PagerDuty Events API v2 event"),
    security(()),
    responses((status = 202, description = "Processed", body = crate::schema::PagerDutyAnswer), (status = 400, description = "Invalid event", body = crate::schema::PagerDutyAnswer), (status = 404, description = "No source has this routing key", body = crate::schema::PagerDutyAnswer), (status = 429, description = "Too many events for this key", body = crate::schema::PagerDutyAnswer), (status = 503, description = "Storage unavailable", body = crate::schema::PagerDutyAnswer), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn pd_enqueue(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match read_json_body(&headers, body, st.0.body_limit).await {
        Ok(b) => b,
        Err(e) => return pd_error(e),
    };
    let ev = match pagerduty::parse(&bytes) {
        Ok(ev) => ev,
        Err(errors) => return pd_invalid(errors),
    };
    let source = match pd_source(&st, pagerduty::routing_key(&ev)) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let now = st.now();
    let cmd = match pagerduty::map(&ev, &source.prometheus, &generated_key(), now) {
        Ok(c) => c,
        Err(errors) => {
            st.0.metrics.ingested(&source.id, "invalid", 1);
            return pd_invalid(errors);
        }
    };
    let key = cmd.key().as_str().to_owned();
    match apply(&st, &source, cmd, "pagerduty events v2", now).await {
        Ok(_) => (
            StatusCode::ACCEPTED,
            Json(json!({"status": "success", "message": "Event processed", "dedup_key": key})),
        )
            .into_response(),
        Err(e) => pd_error(e),
    }
}

/// `POST /v2/change/enqueue`: recorded on the service's change list; pages
/// nobody.
#[utoipa::path(
    post,
    path = "/v2/change/enqueue",
    operation_id = "senders_pd_change",
    tag = "senders",
    summary = "PagerDuty change events",
    request_body(content = Object, content_type = "application/json", description = "PagerDuty Events API v2 event"),
    security(()),
    responses((status = 202, description = "Recorded", body = crate::schema::PagerDutyAnswer), (status = 400, description = "Invalid event", body = crate::schema::PagerDutyAnswer), (status = 404, description = "No source has this routing key", body = crate::schema::PagerDutyAnswer), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn pd_change(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match read_json_body(&headers, body, st.0.body_limit).await {
        Ok(b) => b,
        Err(e) => return pd_error(e),
    };
    let ev = match pagerduty::parse_change(&bytes) {
        Ok(ev) => ev,
        Err(errors) => return pd_invalid(errors),
    };
    let key = ev
        .routing_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let source = match pd_source(&st, key) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let now = st.now();
    let change = match pagerduty::map_change(&ev, now) {
        Ok(c) => c,
        Err(errors) => return pd_invalid(errors),
    };
    let stored =
        st.0.store
            .record_change(tocsin_store::NewChange {
                source_id: source.id.clone(),
                service_id: source.service_id.clone(),
                at: change.at,
                received_at: now,
                summary: change.summary,
                origin: change.source,
                details: change.details,
                links: change.links,
            })
            .await;
    match stored {
        Ok(_) => (
            StatusCode::ACCEPTED,
            Json(json!({"status": "success", "message": "Change event processed"})),
        )
            .into_response(),
        Err(e) => ApiError::from_store("change event", e).into_response(),
    }
}

// ----------------------------------------------------------------- Opsgenie

fn og(status: StatusCode, started: Instant, message: &str) -> Response {
    og_about(status, started, message, None)
}

/// Opsgenie's answer; its `requestId` names the alert and action it was
/// about, for `GET /v2/alerts/requests/{id}`.
fn og_about(
    status: StatusCode,
    started: Instant,
    message: &str,
    about: Option<(RequestAction, i64)>,
) -> Response {
    let took = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let request_id = opsgenie::request_id(about, &generated_key());
    let body = if status == StatusCode::ACCEPTED {
        json!({"result": message, "took": took, "requestId": request_id})
    } else {
        json!({"message": message, "code": status.as_u16(), "took": took, "requestId": request_id})
    };
    (status, Json(body)).into_response()
}

/// Opsgenie's answer with `data`.
fn og_data(started: Instant, data: Value) -> Response {
    let took = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let request_id = opsgenie::request_id(None, &generated_key());
    (
        StatusCode::OK,
        Json(json!({"data": data, "took": took, "requestId": request_id})),
    )
        .into_response()
}

fn og_error(e: ApiError, started: Instant) -> Response {
    match e.status {
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::INTERNAL_SERVER_ERROR => e.into_response(),
        s => og(s, started, &e.message),
    }
}

/// The Opsgenie source named by `Authorization: GenieKey …`, or the 401/429
/// answer.
fn og_source(
    st: &AppState,
    headers: &HeaderMap,
    started: Instant,
) -> Result<LiveSource, Box<Response>> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(opsgenie::genie_key);
    // No key matches no source (keys are never empty).
    keyed_source(st, key.unwrap_or_default(), SourceType::Opsgenie).map_err(|r| {
        Box::new(match r {
            Refused::UnknownKey => og(
                StatusCode::UNAUTHORIZED,
                started,
                "Could not authenticate: send `Authorization: GenieKey <key>` with the key of an opsgenie source in Tocsin.",
            ),
            Refused::Limited(wait) => retry_after(
                og(
                    StatusCode::TOO_MANY_REQUESTS,
                    started,
                    "You are making too many requests! Retry later.",
                ),
                wait,
            ),
        })
    })
}

/// `POST /v2/alerts`: create (or repeat) an alert.
#[utoipa::path(
    post,
    path = "/v2/alerts",
    operation_id = "senders_og_create",
    tag = "senders",
    summary = "Opsgenie: create an alert",
    params(("Authorization" = String, Header, description = "GenieKey <key>")),
    request_body(content = Object, content_type = "application/json", description = "Opsgenie create-alert request"),
    security(()),
    responses((status = 202, description = "Request will be processed", body = crate::schema::OpsgenieAnswer), (status = 400, description = "Bad body", body = crate::schema::OpsgenieAnswer), (status = 401, description = "No or unknown GenieKey", body = crate::schema::OpsgenieAnswer), (status = 422, description = "Invalid request", body = crate::schema::OpsgenieAnswer), (status = 429, description = "Too many requests", body = crate::schema::OpsgenieAnswer), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn og_create(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let source = match og_source(&st, &headers, started) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let bytes = match read_json_body(&headers, body, st.0.body_limit).await {
        Ok(b) => b,
        Err(e) => return og_error(e, started),
    };
    let create = match opsgenie::parse_create(&bytes) {
        Ok(c) => c,
        Err(e) => return og(StatusCode::BAD_REQUEST, started, &e.to_string()),
    };
    let now = st.now();
    let cmd = match opsgenie::map_create(&create, &source.prometheus, &generated_key(), now) {
        Ok(c) => c,
        Err(e) => {
            st.0.metrics.ingested(&source.id, "invalid", 1);
            return og(StatusCode::UNPROCESSABLE_ENTITY, started, &e.to_string());
        }
    };
    match apply(&st, &source, cmd, "opsgenie alert api", now).await {
        Ok(applied) => og_about(
            StatusCode::ACCEPTED,
            started,
            "Request will be processed",
            applied.alert_id.map(|id| (RequestAction::Create, id)),
        ),
        Err(e) => og_error(e, started),
    }
}

/// `POST /v2/alerts/{identifier}/close` and `/acknowledge`.
async fn og_action(
    st: AppState,
    headers: HeaderMap,
    identifier: String,
    raw: Option<String>,
    body: Body,
    action: Transition,
) -> Response {
    let started = Instant::now();
    let source = match og_source(&st, &headers, started) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    // The body ({user, source, note}) is optional; it must still be JSON.
    let bytes = match read_json_body(&headers, body, st.0.body_limit).await {
        Ok(b) => b,
        Err(e) => return og_error(e, started),
    };
    let note: Option<String> = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["note"].as_str().map(str::to_owned));
    let kind = crate::query_param(raw.as_deref(), "identifierType");
    let id = match opsgenie::identifier(&identifier, kind.as_deref()) {
        Ok(id) => id,
        Err(e) => return og(StatusCode::UNPROCESSABLE_ENTITY, started, &e.to_string()),
    };
    let now = st.now();
    let result = match (id, action) {
        (Identifier::Alias(key), Transition::Accept) => {
            apply(
                &st,
                &source,
                Command::Accept(key),
                "opsgenie alert api",
                now,
            )
            .await
        }
        (Identifier::Alias(key), _) => {
            let ev = tocsin_wire::command::resolve_event(key, now);
            apply(
                &st,
                &source,
                Command::Resolve(ev),
                "opsgenie alert api",
                now,
            )
            .await
        }
        (Identifier::Id(id), action) => og_by_id(&st, &source, id, action).await,
    };
    match result {
        Ok(applied) => {
            if let (Some(note), Some(id)) =
                (note.filter(|n| !n.trim().is_empty()), applied.alert_id)
            {
                let actor = Actor::new(format!("source:{}", source.id), "opsgenie alert api");
                if let Err(e) = st.0.app.comment(id, &actor, &note).await {
                    return og_error(crate::catalog::app_error("opsgenie note", e), started);
                }
            }
            if applied.outcome == "not_found" {
                return og(
                    StatusCode::NOT_FOUND,
                    started,
                    &format!("Alert with id [{identifier}] does not exist"),
                );
            }
            let what = match action {
                Transition::Accept => RequestAction::Acknowledge,
                _ => RequestAction::Close,
            };
            og_about(
                StatusCode::ACCEPTED,
                started,
                "Request will be processed",
                applied.alert_id.map(|id| (what, id)),
            )
        }
        Err(e) => og_error(e, started),
    }
}

/// The alert of this source that `identifier` names (`identifierType`
/// id, tiny or alias), if any.
async fn og_find(
    st: &AppState,
    source: &LiveSource,
    identifier: &str,
    kind: Option<&str>,
    started: Instant,
) -> Result<tocsin_store::Alert, Response> {
    let id = match opsgenie::identifier(identifier, kind) {
        Ok(Identifier::Id(id)) => Some(id),
        Ok(Identifier::Alias(key)) => {
            st.0.store
                .open_alert_id(&source.id, key.as_str())
                .await
                .map_err(|e| og_error(ApiError::from_store("opsgenie get", e), started))?
        }
        Err(e) => {
            return Err(og(
                StatusCode::UNPROCESSABLE_ENTITY,
                started,
                &e.to_string(),
            ));
        }
    };
    let alert = match id {
        Some(id) => {
            st.0.store
                .get_alert(id)
                .await
                .map_err(|e| og_error(ApiError::from_store("opsgenie get", e), started))?
        }
        None => None,
    };
    alert.filter(|a| a.source_id == source.id).ok_or_else(|| {
        og(
            StatusCode::NOT_FOUND,
            started,
            &format!("Alert with id [{identifier}] does not exist"),
        )
    })
}

/// Opsgenie's priority for a severity (SEV0 → P1 … SEV4 → P5).
fn og_priority(s: tocsin_domain::Severity) -> &'static str {
    use tocsin_domain::Severity::*;
    match s {
        Sev0 => "P1",
        Sev1 => "P2",
        Sev2 => "P3",
        Sev3 => "P4",
        Sev4 => "P5",
    }
}

/// `GET /v2/alerts/{identifier}`: the alert in Opsgenie's shape.
#[utoipa::path(
    get,
    path = "/v2/alerts/{id}",
    operation_id = "senders_og_get",
    tag = "senders",
    summary = "Opsgenie: one alert",
    params(("id" = String, Path, description = "The alert's id or alias"), ("identifierType" = Option<String>, Query, description = "id, alias or tiny (default id)"), ("Authorization" = String, Header, description = "GenieKey <key>")),
    security(()),
    responses((status = 200, description = "The alert", body = crate::schema::OpsgenieAnswer), (status = 401, description = "No or unknown GenieKey", body = crate::schema::OpsgenieAnswer), (status = 404, description = "No such alert", body = crate::schema::OpsgenieAnswer), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn og_get(
    State(st): State<AppState>,
    Path(identifier): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let source = match og_source(&st, &headers, started) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let kind = crate::query_param(raw.as_deref(), "identifierType");
    let a = match og_find(&st, &source, &identifier, kind.as_deref(), started).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let closed = a.status == tocsin_domain::AlertStatus::Resolved;
    og_data(
        started,
        json!({
            "id": a.id.to_string(),
            "tinyId": a.id.to_string(),
            "alias": a.dedup_key,
            "message": a.summary,
            "description": a.details,
            "status": if closed { "closed" } else { "open" },
            "acknowledged": a.accepted_at.is_some(),
            "isSeen": a.accepted_at.is_some(),
            "snoozed": false,
            "tags": [],
            "count": a.seen_count,
            "priority": og_priority(a.severity),
            "source": a.source_id,
            "owner": a.accepted_by.clone().unwrap_or_default(),
            "responders": [],
            "actions": [],
            "entity": "",
            "details": a.labels,
            "integration": {"id": source.id.clone(), "name": source.id.clone(), "type": "API"},
            "createdAt": a.created_at,
            "updatedAt": a.updated_at,
            "lastOccurredAt": a.last_seen_at,
            "report": {
                "ackTime": a.accepted_at.map(|t| (t - a.created_at).num_milliseconds()),
                "closeTime": a.resolved_at.map(|t| (t - a.created_at).num_milliseconds()),
                "acknowledgedBy": a.accepted_by,
                "closedBy": a.resolved_by,
            },
        }),
    )
}

/// `GET /v2/alerts/requests/{requestId}`: what a create, close or
/// acknowledge did, with the alert's id (Opsgenie processes requests
/// later; Tocsin already has, so the answer is final at once).
#[utoipa::path(
    get,
    path = "/v2/alerts/requests/{id}",
    operation_id = "senders_og_request",
    tag = "senders",
    summary = "Opsgenie: the status of a request",
    params(("id" = String, Path, description = "A request id"), ("Authorization" = String, Header, description = "GenieKey <key>")),
    security(()),
    responses((status = 200, description = "The request's result", body = crate::schema::OpsgenieAnswer), (status = 401, description = "No or unknown GenieKey", body = crate::schema::OpsgenieAnswer), (status = 404, description = "No such request", body = crate::schema::OpsgenieAnswer), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn og_request(
    State(st): State<AppState>,
    Path(request): Path<String>,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let source = match og_source(&st, &headers, started) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let not_found = || {
        og(
            StatusCode::NOT_FOUND,
            started,
            "Request not found. It might not be processed, yet.",
        )
    };
    let Some((action, id)) = opsgenie::parse_request_id(&request) else {
        return not_found();
    };
    let a = match og_find(&st, &source, &id.to_string(), None, started).await {
        Ok(a) => a,
        Err(_) => return not_found(),
    };
    let status = match action {
        RequestAction::Create => "Created alert",
        RequestAction::Close => "Closed alert",
        RequestAction::Acknowledge => "Acknowledged alert",
    };
    og_data(
        started,
        json!({
            "success": true,
            "isSuccess": true,
            "action": action.name(),
            "processedAt": a.updated_at,
            "integrationId": source.id.clone(),
            "status": status,
            "alertId": a.id.to_string(),
            "alias": a.dedup_key,
        }),
    )
}

/// Accept or resolve by Tocsin alert id; only alerts of this source.
async fn og_by_id(
    st: &AppState,
    source: &LiveSource,
    id: i64,
    action: Transition,
) -> Result<Applied, ApiError> {
    let alert =
        st.0.store
            .get_alert(id)
            .await
            .map_err(|e| ApiError::from_store("opsgenie by id", e))?;
    if alert.is_none_or(|a| a.source_id != source.id) {
        return Ok(Applied {
            alert_id: None,
            outcome: "not_found",
        });
    }
    let actor = Actor::new(format!("source:{}", source.id), "opsgenie alert api");
    let r =
        st.0.app
            .transition(id, action, &actor)
            .await
            .map_err(|e| crate::catalog::app_error("opsgenie by id", e))?;
    Ok(Applied {
        alert_id: Some(id),
        outcome: match r {
            TransitionResult::Done(_) => "changed",
            _ => "unchanged",
        },
    })
}

#[utoipa::path(
    post,
    path = "/v2/alerts/{id}/close",
    operation_id = "senders_og_close",
    tag = "senders",
    summary = "Opsgenie: close an alert",
    params(("id" = String, Path, description = "The alert's id or alias"), ("identifierType" = Option<String>, Query, description = "id, alias or tiny (default id)"), ("Authorization" = String, Header, description = "GenieKey <key>")),
    request_body(content = Object, content_type = "application/json", description = "{user, source, note}"),
    security(()),
    responses((status = 202, description = "Request will be processed", body = crate::schema::OpsgenieAnswer), (status = 400, description = "Bad body", body = crate::schema::OpsgenieAnswer), (status = 401, description = "No or unknown GenieKey", body = crate::schema::OpsgenieAnswer), (status = 404, description = "No such alert", body = crate::schema::OpsgenieAnswer), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn og_close(
    State(st): State<AppState>,
    Path(identifier): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    og_action(st, headers, identifier, raw, body, Transition::Resolve).await
}

#[utoipa::path(
    post,
    path = "/v2/alerts/{id}/acknowledge",
    operation_id = "senders_og_acknowledge",
    tag = "senders",
    summary = "Opsgenie: acknowledge an alert",
    params(("id" = String, Path, description = "The alert's id or alias"), ("identifierType" = Option<String>, Query, description = "id, alias or tiny (default id)"), ("Authorization" = String, Header, description = "GenieKey <key>")),
    request_body(content = Object, content_type = "application/json", description = "{user, source, note}"),
    security(()),
    responses((status = 202, description = "Request will be processed", body = crate::schema::OpsgenieAnswer), (status = 400, description = "Bad body", body = crate::schema::OpsgenieAnswer), (status = 401, description = "No or unknown GenieKey", body = crate::schema::OpsgenieAnswer), (status = 404, description = "No such alert", body = crate::schema::OpsgenieAnswer), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn og_acknowledge(
    State(st): State<AppState>,
    Path(identifier): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    og_action(st, headers, identifier, raw, body, Transition::Accept).await
}

// -------------------------------------------------------------------- ilert

fn il(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn il_error(status: StatusCode, message: &str) -> Response {
    il(status, json!({"message": message, "code": status.as_u16()}))
}

/// `POST /api/events` and `/api/v1/events`: the ilert Events API.
#[utoipa::path(
    post,
    path = "/api/events",
    operation_id = "senders_ilert_events",
    tag = "senders",
    summary = "ilert events API (also at /api/v1/events)",
    request_body(content = Object, content_type = "application/json", description = "ilert event"),
    security(()),
    responses((status = 202, description = "Processed", body = crate::schema::IlertAnswer), (status = 400, description = "Invalid event", body = crate::schema::IlertAnswer), (status = 404, description = "No source has this key", body = crate::schema::IlertAnswer), (status = 429, description = "Too many events", body = crate::schema::IlertAnswer), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn ilert_events(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match read_json_body(&headers, body, st.0.body_limit).await {
        Ok(b) => b,
        Err(e) if e.status.is_client_error() => return il_error(e.status, &e.message),
        Err(e) => return e.into_response(),
    };
    let ev = match ilert::parse(&bytes) {
        Ok(ev) => ev,
        Err(e) => return il_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some(key) = ilert::integration_key(&ev) else {
        return il_error(
            StatusCode::BAD_REQUEST,
            "integrationKey: missing; send the key of an ilert source in Tocsin",
        );
    };
    let source = match keyed_source(&st, key, SourceType::Ilert) {
        Ok(s) => s,
        Err(Refused::UnknownKey) => {
            return il_error(
                StatusCode::NOT_FOUND,
                "integrationKey: no ilert source in Tocsin has this key",
            );
        }
        Err(Refused::Limited(wait)) => {
            return retry_after(
                il_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many events for this key; retry later",
                ),
                wait,
            );
        }
    };
    let now = st.now();
    let cmd = match ilert::map(&ev, &source.prometheus, &generated_key(), now) {
        Ok(c) => c,
        Err(e) => {
            st.0.metrics.ingested(&source.id, "invalid", 1);
            return il_error(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    let alert_key = cmd.key().as_str().to_owned();
    match apply(&st, &source, cmd, "ilert events api", now).await {
        Ok(a) => il(
            StatusCode::ACCEPTED,
            json!({
                "alertKey": alert_key,
                "alertUrl": a.alert_id.map(|id| format!("{}/api/v1/alerts/{id}", st.0.public_url)),
                "responseCode": a.outcome.to_ascii_uppercase(),
            }),
        ),
        Err(e) => e.into_response(),
    }
}
