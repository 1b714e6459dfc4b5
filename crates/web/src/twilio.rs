//! Twilio callbacks, each verified with `X-Twilio-Signature` (base64
//! HMAC-SHA1 of the public URL plus the sorted POST parameters, keyed with
//! the auth token); a wrong signature gets 403 and changes nothing.
//!
//! - `POST /api/v1/twilio/sms`: replies to pages, `ACK <id>` / `RES <id>`
//!   (or `<id>a` / `<id>c`), from a number that belongs to a user.
//! - `POST /api/v1/twilio/voice?alert=<id>`: the TwiML of a call: reads the
//!   alert and gathers one digit.
//! - `POST /api/v1/twilio/voice/gather?alert=<id>`: `Digits=1` accepts, as
//!   the user who was called.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tocsin_domain::links::{ct_str_eq, twilio_signature};
use tocsin_store::{Actor, Transition, TransitionResult};

use crate::error::ApiError;
use crate::state::{AppState, normalize_number};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn twiml(inner: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{inner}</Response>"),
    )
        .into_response()
}

/// Check the signature; return the form parameters.
fn verified(
    st: &AppState,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, ApiError> {
    let live = st.live();
    let Some(token) = live.twilio_auth_token.as_deref() else {
        return Err(ApiError::not_found(
            "Twilio is not configured; set providers.twilio",
        ));
    };
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::bad_request(format!("not a form body: {e}")))?;
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{path_and_query}", st.0.public_url);
    let want = twilio_signature(token, &url, &params);
    let got = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct_str_eq(&want, got) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "X-Twilio-Signature does not match; check server.public_url (Twilio signs the URL it called)",
        ));
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn number_param(uri: &axum::http::Uri, name: &str) -> Option<i64> {
    crate::query_param(uri.query(), name)?.parse().ok()
}

fn alert_param(uri: &axum::http::Uri) -> Option<i64> {
    number_param(uri, "alert")
}

/// `ACK 12`, `RES 12`, `12a`, `12c` → (transition, alert id).
pub(crate) fn parse_reply(text: &str) -> Option<(Transition, i64)> {
    let t = text.trim().to_ascii_lowercase();
    let mut words = t.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("ack" | "accept"), Some(n), None) => Some((Transition::Accept, n.parse().ok()?)),
        (Some("res" | "resolve"), Some(n), None) => Some((Transition::Resolve, n.parse().ok()?)),
        (Some(w), None, None) => {
            let (n, action) = w.split_at(w.len().checked_sub(1)?);
            let action = match action {
                "a" => Transition::Accept,
                "c" | "r" => Transition::Resolve,
                _ => return None,
            };
            Some((action, n.parse().ok()?))
        }
        _ => None,
    }
}

async fn act(
    st: &AppState,
    user: &str,
    channel: &str,
    t: Transition,
    id: i64,
) -> Result<String, ApiError> {
    let actor = Actor::new(format!("user:{user}"), channel);
    let r =
        st.0.app
            .transition(id, t, &actor)
            .await
            .map_err(|e| crate::catalog::app_error("twilio action", e))?;
    Ok(match r {
        TransitionResult::Done(a) | TransitionResult::Unchanged(a) => {
            format!("Alert #{} is {}.", a.id, a.status)
        }
        TransitionResult::Conflict(a) => format!("Alert #{} is already resolved.", a.id),
        TransitionResult::NotFound => format!("There is no alert #{id}."),
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/twilio/sms",
    operation_id = "twilio_sms",
    tag = "callbacks",
    summary = "Twilio: SMS replies (ACK/RES id)",
    request_body(content = Object, content_type = "application/x-www-form-urlencoded"),
    security(()),
    responses((status = 200, description = "TwiML", body = String, content_type = "application/xml"), (status = 403, description = "Bad Twilio signature", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn sms(
    State(st): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = verified(&st, &uri, &headers, &body)?;
    let from = normalize_number(param(&params, "From").unwrap_or(""));
    let Some(user) = st.live().phone_users.get(&from).cloned() else {
        return Ok(twiml(
            "<Message>This number is not a Tocsin contact; nothing was changed.</Message>",
        ));
    };
    let reply = match parse_reply(param(&params, "Body").unwrap_or("")) {
        Some((t, id)) => act(&st, &user, "sms", t, id).await?,
        None => "Reply ACK <id> to accept or RES <id> to resolve, e.g. ACK 12.".to_owned(),
    };
    Ok(twiml(&format!("<Message>{}</Message>", xml_escape(&reply))))
}

#[utoipa::path(
    post,
    path = "/api/v1/twilio/voice",
    operation_id = "twilio_voice",
    tag = "callbacks",
    summary = "Twilio: the TwiML of a call",
    params(("alert" = Option<i64>, Query, description = "The alert a call is about")),
    request_body(content = Object, content_type = "application/x-www-form-urlencoded"),
    security(()),
    responses((status = 200, description = "TwiML", body = String, content_type = "application/xml"), (status = 403, description = "Bad Twilio signature", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn voice(
    State(st): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    verified(&st, &uri, &headers, &body)?;
    let Some(id) = alert_param(&uri) else {
        return Err(ApiError::bad_request("query parameter `alert` is missing"));
    };
    let alert =
        st.0.store
            .get_alert(id)
            .await
            .map_err(|e| ApiError::from_store("twilio voice", e))?;
    let Some(a) = alert else {
        return Ok(twiml("<Say>This alert no longer exists. Goodbye.</Say>"));
    };
    let action = format!("{}/api/v1/twilio/voice/gather?alert={id}", st.0.public_url);
    // A bundled call names its lead alert and counts the others.
    let more = match number_param(&uri, "more") {
        Some(1) => " There is 1 more alert for you; see your messages.".to_owned(),
        Some(n) if n > 1 => format!(" There are {n} more alerts for you; see your messages."),
        _ => String::new(),
    };
    Ok(twiml(&format!(
        "<Gather numDigits=\"1\" action=\"{}\" method=\"POST\" timeout=\"10\"><Say>Tocsin alert {id}, {}, {}. {}.{more} Press 1 to accept alert {id}.</Say></Gather><Say>No key was pressed. Goodbye.</Say>",
        xml_escape(&action),
        a.severity,
        a.status,
        xml_escape(&a.summary)
    )))
}

#[utoipa::path(
    post,
    path = "/api/v1/twilio/voice/gather",
    operation_id = "twilio_gather",
    tag = "callbacks",
    summary = "Twilio: a keypress during a call",
    params(("alert" = Option<i64>, Query, description = "The alert a call is about")),
    request_body(content = Object, content_type = "application/x-www-form-urlencoded"),
    security(()),
    responses((status = 200, description = "TwiML", body = String, content_type = "application/xml"), (status = 403, description = "Bad Twilio signature", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn gather(
    State(st): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = verified(&st, &uri, &headers, &body)?;
    let Some(id) = alert_param(&uri) else {
        return Err(ApiError::bad_request("query parameter `alert` is missing"));
    };
    // On a call Tocsin placed, `To` is the person called.
    let to = normalize_number(
        param(&params, "To")
            .or(param(&params, "Called"))
            .unwrap_or(""),
    );
    let Some(user) = st.live().phone_users.get(&to).cloned() else {
        return Ok(twiml(
            "<Say>This number is not a Tocsin contact. Nothing was changed. Goodbye.</Say>",
        ));
    };
    if param(&params, "Digits") != Some("1") {
        return Ok(twiml("<Say>Nothing was changed. Goodbye.</Say>"));
    }
    let said = act(&st, &user, "voice", Transition::Accept, id).await?;
    Ok(twiml(&format!("<Say>{} Goodbye.</Say>", xml_escape(&said))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        assert_eq!(parse_reply("ACK 12"), Some((Transition::Accept, 12)));
        assert_eq!(parse_reply(" res 7 "), Some((Transition::Resolve, 7)));
        assert_eq!(parse_reply("12a"), Some((Transition::Accept, 12)));
        assert_eq!(parse_reply("3C"), Some((Transition::Resolve, 3)));
        assert_eq!(parse_reply("hello"), None);
        assert_eq!(parse_reply("ACK"), None);
        assert_eq!(parse_reply("ACK 1 2"), None);
        assert_eq!(parse_reply("a"), None);
    }
}
