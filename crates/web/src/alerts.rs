//! The alert API: list, show (with timeline), accept, resolve, comment.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde_json::json;
use tocsin_domain::{AlertStatus, Severity};
use tocsin_store::{Alert, AlertFilter, TimelineEntry, Transition, TransitionResult};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
const MAX_COMMENT_BYTES: usize = 64 * 1024;

pub(crate) fn parse_filter(raw: Option<&str>) -> Result<AlertFilter, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("query string: {e}")))?;
    let mut f = AlertFilter {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (k, v) in pairs {
        match k.as_str() {
            "status" => {
                f.status =
                    Some(v.parse::<AlertStatus>().map_err(|e| {
                        ApiError::bad_request(format!("query parameter `status`: {e}"))
                    })?)
            }
            "source" => f.source_id = Some(v),
            "service" => f.service_id = Some(v),
            "severity" => {
                f.severity = Some(v.parse::<Severity>().map_err(|e| {
                    ApiError::bad_request(format!("query parameter `severity`: {e}"))
                })?)
            }
            "label" => {
                let (n, val) = v.split_once('=').ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "query parameter `label`: `{v}` is not name=value"
                    ))
                })?;
                f.labels.push((n.to_owned(), val.to_owned()));
            }
            "limit" => f.limit = crate::parse_limit(&v, MAX_LIMIT)?,
            "cursor" => f.before_id = Some(crate::parse_cursor(&v)?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{other}`; expected status, source, service, severity, label, limit or cursor"
                )));
            }
        }
    }
    Ok(f)
}

/// `GET /api/v1/alerts`
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    operation_id = "alerts_list",
    tag = "alerts",
    summary = "List alerts, newest first",
    params(("status" = Option<tocsin_domain::AlertStatus>, Query, description = "pending, accepted or resolved"), ("source" = Option<String>, Query, description = "A source id"), ("service" = Option<String>, Query, description = "A service id"), ("severity" = Option<tocsin_domain::Severity>, Query, description = "SEV0 … SEV4"), ("label" = Option<Vec<String>>, Query, description = "name=value, matching the alert's labels or any of its members' (repeatable)", explode = true), ("limit" = Option<u32>, Query, description = "1 to 500 (default 50)", minimum = 1, maximum = 500), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page", pattern = "^[0-9]+$")),
    responses((status = 200, description = "A page of alerts", body = crate::schema::AlertList), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn list(
    State(st): State<AppState>,
    _caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let filter = parse_filter(raw.as_deref())?;
    let page =
        st.0.store
            .list_alerts(&filter)
            .await
            .map_err(|e| ApiError::from_store("list alerts", e))?;
    Ok(Json(json!({
        "alerts": page.alerts,
        "next_cursor": page.next_before_id.map(|id| id.to_string()),
    })))
}

/// `GET /api/v1/changes[?service=ID&limit=N]`: change events, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/changes",
    operation_id = "alerts_changes",
    tag = "alerts",
    summary = "Change events, newest first",
    params(("service" = Option<String>, Query, description = "A service id"), ("limit" = Option<u32>, Query, description = "1 to 1000 (default 100)", minimum = 1, maximum = 1000)),
    responses((status = 200, description = "OK", body = crate::schema::ChangeList), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn changes(
    State(st): State<AppState>,
    _caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let q: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
    let mut service = None;
    let mut limit = 100u32;
    for (k, v) in q {
        match k.as_str() {
            "service" => service = Some(v),
            "limit" => {
                limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "limit `{v}` must be a number from 1 to 1000"
                        ))
                    })?
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{other}`; use service and limit"
                )));
            }
        }
    }
    let changes =
        st.0.store
            .changes(service.as_deref(), limit)
            .await
            .map_err(|e| ApiError::from_store("list changes", e))?;
    Ok(Json(json!({ "changes": changes })))
}

pub(crate) fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::bad_request(format!("`{id}` is not an alert id (a positive number)"))
    })
}

/// `GET /api/v1/alerts/{id}`: the alert, its timeline, escalation steps
/// and notifications.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AlertWithTimeline {
    #[schema(inline)]
    #[serde(flatten)]
    pub alert: Alert,
    pub timeline: Vec<TimelineEntry>,
    pub escalation: Vec<tocsin_store::EscalationStep>,
    pub notifications: Vec<tocsin_store::Delivery>,
}

/// `GET /api/v1/alerts/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/alerts/{id}",
    operation_id = "alerts_show",
    tag = "alerts",
    summary = "One alert with its timeline, escalation steps and notifications",
    params(("id" = i64, Path, description = "The alert's id", minimum = 1)),
    responses((status = 200, description = "OK", body = AlertWithTimeline), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn show(
    State(st): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(json!(load_alert(&st, id).await?)))
}

/// An alert with its timeline, escalation steps and notifications: what
/// the API shows and the alert page draws.
pub(crate) async fn load_alert(st: &AppState, id: i64) -> Result<AlertWithTimeline, ApiError> {
    let store = &st.0.store;
    let alert = store
        .get_alert(id)
        .await
        .map_err(|e| ApiError::from_store("show alert", e))?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    let timeline = store
        .timeline(id)
        .await
        .map_err(|e| ApiError::from_store("alert timeline", e))?;
    // Notifications before steps: a step's notifications and its next step
    // commit together, so this order never shows one without the other.
    let notifications = store
        .deliveries(id)
        .await
        .map_err(|e| ApiError::from_store("alert notifications", e))?;
    let escalation = store
        .steps(id)
        .await
        .map_err(|e| ApiError::from_store("alert escalation", e))?;
    Ok(AlertWithTimeline {
        alert,
        timeline,
        escalation,
        notifications,
    })
}

async fn transition(
    st: AppState,
    caller: Caller,
    id: String,
    action: Transition,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_id(&id)?;
    let r =
        st.0.app
            .transition_as(&caller, "api", id, action)
            .await
            .map_err(|e| crate::catalog::app_error("alert transition", e))?;
    respond(r, id, "accepted or un-accepted")
}

/// The answer to a change of an alert: the alert, 409 for a resolved one,
/// or 404.
fn respond(r: TransitionResult, id: i64, what: &str) -> Result<Json<serde_json::Value>, ApiError> {
    match r {
        TransitionResult::Done(a) | TransitionResult::Unchanged(a) => Ok(Json(json!(a))),
        TransitionResult::Conflict(a) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "alert {} is {}; a resolved alert cannot be {what} (the next firing opens a new alert)",
                a.id, a.status
            ),
        )),
        TransitionResult::NotFound => Err(ApiError::not_found(format!("no alert {id}"))),
    }
}

/// `POST /api/v1/alerts/{id}/accept`
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/accept",
    operation_id = "alerts_accept",
    tag = "alerts",
    summary = "Accept an alert: its escalation stops",
    params(("id" = i64, Path, description = "The alert's id", minimum = 1)),
    responses((status = 200, description = "The alert now", body = tocsin_store::Alert), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 409, description = "The alert is resolved", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn accept(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    transition(st, caller, id, Transition::Accept).await
}

/// `POST /api/v1/alerts/{id}/resolve`
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/resolve",
    operation_id = "alerts_resolve",
    tag = "alerts",
    summary = "Resolve an alert",
    params(("id" = i64, Path, description = "The alert's id", minimum = 1)),
    responses((status = 200, description = "The alert now", body = tocsin_store::Alert), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 409, description = "The alert is resolved", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn resolve(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    transition(st, caller, id, Transition::Resolve).await
}

/// `POST /api/v1/alerts/{id}/unaccept`: back to pending; escalation
/// restarts at level 1.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/unaccept",
    operation_id = "alerts_unaccept",
    tag = "alerts",
    summary = "Un-accept an alert: back to pending, escalation restarts at level 1",
    params(("id" = i64, Path, description = "The alert's id", minimum = 1)),
    responses((status = 200, description = "The alert now", body = tocsin_store::Alert), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 409, description = "The alert is resolved", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn unaccept(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    transition(st, caller, id, Transition::Unaccept).await
}

/// `POST /api/v1/alerts/{id}/reassign`: exactly one of the two.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReassignBody {
    user: Option<String>,
    escalation_policy: Option<String>,
}

/// `POST /api/v1/alerts/{id}/comment` as JSON (or the text as `text/plain`).
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct CommentBody {
    text: String,
}

/// `POST /api/v1/alerts/{id}/reassign` with `{"user": ID}` or
/// `{"escalation_policy": ID}`.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/reassign",
    operation_id = "alerts_reassign",
    tag = "alerts",
    summary = "Hand an alert to a user or another escalation policy",
    params(("id" = i64, Path, description = "The alert's id", minimum = 1)),
    request_body = ReassignBody,
    responses((status = 200, description = "The alert now", body = tocsin_store::Alert), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 409, description = "The alert is resolved", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn reassign(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_id(&id)?;
    let b: ReassignBody = tocsin_wire::WireError::parse_json(&body)
        .map_err(|e| ApiError::bad_request(format!("reassign: {e}")))?;
    let to = match (b.user, b.escalation_policy) {
        (Some(u), None) => tocsin_app::Assignee::User(u),
        (None, Some(p)) => tocsin_app::Assignee::Policy(p),
        _ => {
            return Err(ApiError::bad_request(
                "reassign: send exactly one of {\"user\": ID} or {\"escalation_policy\": ID}",
            ));
        }
    };
    let r = match st.0.app.reassign_as(&caller, "api", id, to).await {
        Ok(r) => r,
        // An unknown user or policy is a bad request, as it always was.
        Err(tocsin_app::AppError::Invalid(p)) => {
            let what = p.first().map(|p| p.message.clone()).unwrap_or_default();
            return Err(ApiError::bad_request(format!("reassign: {what}")));
        }
        Err(e) => return Err(crate::catalog::app_error("reassign", e)),
    };
    respond(r, id, "reassigned")
}

/// `POST /api/v1/alerts/{id}/comment` with a text body (or JSON `{"text": …}`).
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/comment",
    operation_id = "alerts_comment",
    tag = "alerts",
    summary = "Add a comment to an alert's timeline",
    params(("id" = i64, Path, description = "The alert's id", minimum = 1)),
    request_body(content((String = "text/plain"), (CommentBody = "application/json"))),
    responses((status = 201, description = "The timeline entry", body = tocsin_store::TimelineEntry), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 413, description = "The comment is over 64 KiB", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn comment(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id = parse_id(&id)?;
    let bytes = axum::body::to_bytes(body, MAX_COMMENT_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("a comment may be at most {MAX_COMMENT_BYTES} bytes"),
            )
        })?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let text = if is_json {
        tocsin_wire::WireError::parse_json::<CommentBody>(&bytes)
            .map_err(|e| ApiError::bad_request(format!("comment: {e}")))?
            .text
    } else {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request("comment: the body is not UTF-8 text"))?
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::bad_request(
            "comment: the text is empty; send it as the body (text/plain) or as {\"text\": …}",
        ));
    }
    let entry =
        st.0.app
            .comment_as(&caller, "api", id, text)
            .await
            .map_err(|e| crate::catalog::app_error("comment", e))?
            .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    Ok((StatusCode::CREATED, Json(json!(entry))))
}

/// `POST /api/v1/users/{id}/test-notification`: send a test through each of
/// the user's contact methods, now, and report each result.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/test-notification",
    operation_id = "alerts_test_notification",
    tag = "users",
    summary = "Send a test through each of a user's contact methods now",
    params(("id" = String, Path, description = "A user id")),
    responses((status = 200, description = "Each contact's result", body = crate::schema::TestNotification), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn test_notification(
    State(st): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let results = send_test_notification(&st, &caller, &user).await?;
    let results: Vec<serde_json::Value> = results
        .into_iter()
        .map(|r| match r.result {
            Ok(detail) => {
                json!({"contact": r.contact, "channel": r.channel, "ok": true, "detail": detail})
            }
            Err(error) => {
                json!({"contact": r.contact, "channel": r.channel, "ok": false, "error": error})
            }
        })
        .collect();
    Ok(Json(json!({"user": user, "results": results})))
}

/// What a test notification to one contact method did.
pub(crate) struct TestResult {
    pub contact: String,
    pub channel: String,
    /// The provider's answer, or why it failed. The address is not in it:
    /// a Slack or webhook URL is a secret.
    pub result: Result<String, String>,
}

/// Send a test through each of `user`'s contact methods now, for `caller`
/// (that user, or an admin): the API's and the profile page's one path.
pub(crate) async fn send_test_notification(
    st: &AppState,
    caller: &tocsin_domain::Principal,
    user: &str,
) -> Result<Vec<TestResult>, ApiError> {
    let live = st.live();
    let Some(u) = live.users.iter().find(|u| u.id == user) else {
        return Err(ApiError::not_found(format!("no user `{user}`")));
    };
    tocsin_app::Application::check_profile(caller, user)
        .map_err(|e| ApiError::from_app("test notification", e))?;
    let msg = tocsin_notify::Message {
        alert_id: 0,
        summary: format!("Test notification for {} from Tocsin", u.name),
        details: format!(
            "Sent on request of {}. Nothing needs doing.",
            caller.actor_name()
        ),
        severity: Severity::Sev4,
        priority: tocsin_domain::Priority::Low,
        status: AlertStatus::Pending,
        links: vec![],
        alert_url: st.0.public_url.clone(),
        actions: vec![],
        recipient: u.id.clone(),
        also: vec![],
        unlisted: 0,
        delivery_id: String::new(),
    };
    let mut results = Vec::new();
    let channels = st.channels();
    for (contact, channel, address) in &u.contacts {
        let result = match channels.get(channel) {
            None => Err(format!(
                "no provider is configured for {channel} notifications; set it under `providers` in tocsin.yaml"
            )),
            Some(c) => match tokio::time::timeout(
                std::time::Duration::from_secs(20),
                c.send(address, &msg),
            )
            .await
            {
                Ok(Ok(detail)) => Ok(detail),
                Ok(Err(e)) => Err(e.message),
                Err(_) => Err("no answer within 20s".to_owned()),
            },
        };
        results.push(TestResult {
            contact: contact.clone(),
            channel: channel.clone(),
            result,
        });
    }
    Ok(results)
}
