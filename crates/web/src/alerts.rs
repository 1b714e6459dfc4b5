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

fn parse_filter(raw: Option<&str>) -> Result<AlertFilter, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("query string: {e}")))?;
    let mut f = AlertFilter {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (k, v) in pairs {
        match k.as_str() {
            "status" => {
                f.status = Some(v.parse::<AlertStatus>().map_err(|e| {
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
            "limit" => {
                let n: u32 = v.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "query parameter `limit`: `{v}` is not a number from 1 to {MAX_LIMIT}"
                    ))
                })?;
                if !(1..=MAX_LIMIT).contains(&n) {
                    return Err(ApiError::bad_request(format!(
                        "query parameter `limit`: must be from 1 to {MAX_LIMIT}"
                    )));
                }
                f.limit = n;
            }
            "cursor" => {
                f.before_id = Some(v.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "query parameter `cursor`: `{v}` is not a cursor; pass next_cursor from the previous page"
                    ))
                })?)
            }
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

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::bad_request(format!("`{id}` is not an alert id (a positive number)"))
    })
}

#[derive(Serialize)]
struct AlertWithTimeline {
    #[serde(flatten)]
    alert: Alert,
    timeline: Vec<TimelineEntry>,
    escalation: Vec<tocsin_store::EscalationStep>,
    notifications: Vec<tocsin_store::Delivery>,
}

/// `GET /api/v1/alerts/{id}`
pub async fn show(
    State(st): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_id(&id)?;
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
    Ok(Json(json!(AlertWithTimeline {
        alert,
        timeline,
        escalation,
        notifications,
    })))
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
pub async fn accept(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    transition(st, caller, id, Transition::Accept).await
}

/// `POST /api/v1/alerts/{id}/resolve`
pub async fn resolve(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    transition(st, caller, id, Transition::Resolve).await
}

/// `POST /api/v1/alerts/{id}/unaccept`: back to pending; escalation
/// restarts at level 1.
pub async fn unaccept(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    transition(st, caller, id, Transition::Unaccept).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReassignBody {
    user: Option<String>,
    escalation_policy: Option<String>,
}

/// `POST /api/v1/alerts/{id}/reassign` with `{"user": ID}` or
/// `{"escalation_policy": ID}`.
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
        #[derive(serde::Deserialize)]
        struct Body {
            text: String,
        }
        tocsin_wire::WireError::parse_json::<Body>(&bytes)
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
pub async fn test_notification(
    State(st): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = st.live();
    let Some(u) = live.users.iter().find(|u| u.id == user) else {
        return Err(ApiError::not_found(format!("no user `{user}`")));
    };
    tocsin_app::Application::check_profile(&caller, &user)
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
        let r = match channels.get(channel) {
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
        results.push(match r {
            // The address is not shown: a Slack or webhook URL is a secret.
            Ok(detail) => {
                json!({"contact": contact, "channel": channel, "ok": true, "detail": detail})
            }
            Err(error) => {
                json!({"contact": contact, "channel": channel, "ok": false, "error": error})
            }
        });
    }
    Ok(Json(json!({"user": u.id, "results": results})))
}
