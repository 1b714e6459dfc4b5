//! `POST /api/v1/slack/interactivity`: Slack's button clicks on bot
//! messages. Verified with `X-Slack-Signature` (`v0=` HMAC-SHA256 of
//! `v0:{timestamp}:{body}` under the signing secret) and a 5-minute window
//! on `X-Slack-Request-Timestamp`; anything else gets 401 and changes nothing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tocsin_domain::links::{ct_str_eq, hmac_sha256_hex};
use tocsin_store::{Actor, Transition, TransitionResult};

use crate::error::ApiError;
use crate::state::AppState;

/// Oldest request accepted, in seconds.
const WINDOW_SECS: i64 = 300;

fn unauthorized(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        format!("Slack request refused: {why}"),
    )
}

#[utoipa::path(
    post,
    path = "/api/v1/slack/interactivity",
    operation_id = "slack_interactivity",
    tag = "callbacks",
    summary = "Slack button clicks (signed by Slack)",
    request_body(content = Object, content_type = "application/x-www-form-urlencoded"),
    security(()),
    responses((status = 200, description = "Handled"), (status = 401, description = "Bad or missing Slack signature", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn interactivity(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let live = st.live();
    let Some(secret) = live.slack_signing_secret.as_deref() else {
        return Err(ApiError::not_found(
            "Slack interactivity is not configured; set providers.slack.signing_secret",
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(ts), Some(sig)) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    ) else {
        return Err(unauthorized(
            "X-Slack-Request-Timestamp and X-Slack-Signature are required",
        ));
    };
    let ts_num: i64 = ts.parse().map_err(|_| unauthorized("bad timestamp"))?;
    if (st.now().timestamp() - ts_num).abs() > WINDOW_SECS {
        return Err(unauthorized("the timestamp is more than 5 minutes off"));
    }
    let mut base = format!("v0:{ts}:").into_bytes();
    base.extend_from_slice(&body);
    let want = format!("v0={}", hmac_sha256_hex(secret.as_bytes(), &base));
    if !ct_str_eq(&want, sig) {
        return Err(unauthorized("the signature does not match"));
    }

    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| ApiError::bad_request(format!("not a form body: {e}")))?;
    let payload = form
        .iter()
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::bad_request("the form has no `payload` field"))?;
    let p: Value = serde_json::from_str(payload)
        .map_err(|e| ApiError::bad_request(format!("payload: {e}")))?;
    if p["type"] != "block_actions" {
        return Ok(Json(json!({"ok": true, "ignored": p["type"]})));
    }
    let slack_user = p["user"]["id"].as_str().unwrap_or("");
    let actor_name = match st.live().slack_users.get(slack_user) {
        Some(u) => format!("user:{u}"),
        None => format!(
            "slack:{}",
            p["user"]["username"]
                .as_str()
                .or(p["user"]["name"].as_str())
                .unwrap_or(slack_user)
        ),
    };
    let actor = Actor::new(actor_name, "slack");
    let mut done = Vec::new();
    for a in p["actions"].as_array().into_iter().flatten() {
        let transition = match a["action_id"].as_str() {
            Some("accept") => Transition::Accept,
            Some("resolve") => Transition::Resolve,
            _ => continue,
        };
        let Some(id) = a["value"].as_str().and_then(|v| v.parse::<i64>().ok()) else {
            continue;
        };
        let r =
            st.0.app
                .transition(id, transition, &actor)
                .await
                .map_err(|e| crate::catalog::app_error("slack action", e))?;
        let text = match r {
            TransitionResult::Done(a) | TransitionResult::Unchanged(a) => {
                format!("alert #{} is {}", a.id, a.status)
            }
            TransitionResult::Conflict(a) => format!("alert #{} is resolved already", a.id),
            TransitionResult::NotFound => format!("no alert #{id}"),
        };
        done.push(text);
    }
    Ok(Json(json!({"ok": true, "text": done.join("; ")})))
}
