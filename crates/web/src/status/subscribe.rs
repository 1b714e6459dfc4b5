//! Status page subscriptions: `POST /api/v1/status/subscribers` (JSON),
//! the form on `/status`, and the confirm and unsubscribe links. A link's
//! GET shows a page with a button; only its POST acts (link scanners
//! follow GETs). The unsubscribe POST also takes mail clients' one-click
//! `List-Unsubscribe=One-Click`.

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tocsin_app::notices::{LinkPurpose, SubscribeRequest};
use tocsin_store::Subscriber;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::ui::with_security_headers;

/// `POST /api/v1/status/subscribers`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriberView {
    #[serde(flatten)]
    pub subscriber: Subscriber,
    /// `confirmation_sent` (email: follow the link in it) or `active`.
    pub state: &'static str,
}

#[utoipa::path(
    post,
    path = "/api/v1/status/subscribers",
    operation_id = "status_subscribe",
    tag = "status",
    summary = "Subscribe to the status page by email (double opt-in, no token needed) or webhook (role admin)",
    security((), ("bearer" = [])),
    request_body = SubscribeRequest,
    responses((status = 201, description = "A new subscription", body = SubscriberView), (status = 200, description = "The address was subscribed already; its services are replaced", body = SubscriberView), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "A webhook subscription without a token, or a bad token", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 422, description = "The body breaks a rule; each problem has its key path", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn api(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<SubscriberView>), ApiError> {
    let caller = match headers.get(header::AUTHORIZATION) {
        Some(_) => Some(Caller::from_headers(&st, &headers).await?),
        None => None,
    };
    let r: SubscribeRequest = tocsin_wire::WireError::parse_json(&body)
        .map_err(|e| ApiError::bad_request(format!("subscriber: {e}")))?;
    let (s, new) =
        st.0.app
            .subscribe(caller.as_deref(), &r, &st.0.public_url)
            .await
            .map_err(|e| ApiError::from_app("subscribe", e))?;
    let state = if s.confirmed_at.is_some() {
        "active"
    } else {
        "confirmation_sent"
    };
    let code = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        Json(SubscriberView {
            subscriber: s,
            state,
        }),
    ))
}

#[derive(Template)]
#[template(path = "status_message.html")]
struct MessagePage<'a> {
    title: &'a str,
    heading: String,
    text: String,
    form: Option<(String, String)>,
}

fn page(
    st: &AppState,
    code: StatusCode,
    heading: impl Into<String>,
    text: impl Into<String>,
    form: Option<(String, String)>,
) -> Response {
    let p = MessagePage {
        title: &st.0.status.title,
        heading: heading.into(),
        text: text.into(),
        form,
    };
    match p.render() {
        Ok(body) => with_security_headers(
            (
                code,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response(),
        ),
        Err(e) => ApiError::internal("rendering a status page message", &e).into_response(),
    }
}

/// `POST /status/subscribe`: the form on the page.
pub(crate) async fn form(State(st): State<AppState>, body: Bytes) -> Response {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let email = fields
        .iter()
        .find(|(k, _)| k == "email")
        .map(|(_, v)| v.clone());
    let services = fields
        .iter()
        .filter(|(k, _)| k == "services")
        .map(|(_, v)| v.clone())
        .collect();
    let r = SubscribeRequest {
        email,
        webhook_url: None,
        services,
    };
    if r.email.as_deref().is_none_or(|e| e.trim().is_empty()) {
        return page(
            &st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Subscription",
            "Give an email address.",
            None,
        );
    }
    match st.0.app.subscribe(None, &r, &st.0.public_url).await {
        Ok((s, _)) if s.confirmed_at.is_some() => page(
            &st,
            StatusCode::OK,
            "You are subscribed",
            "This address is subscribed already; its choice of services is updated.",
            None,
        ),
        Ok(_) => page(
            &st,
            StatusCode::OK,
            "Check your email",
            "We sent a confirmation link. Nothing else is sent until you follow it.",
            None,
        ),
        Err(tocsin_app::AppError::Invalid(p)) => page(
            &st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Subscription",
            p.first().map(|p| p.message.clone()).unwrap_or_default(),
            None,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "status page subscription");
            page(
                &st,
                StatusCode::SERVICE_UNAVAILABLE,
                "Subscription",
                "The subscription could not be stored just now; try again in a minute.",
                None,
            )
        }
    }
}

fn purpose(action: &str) -> Option<LinkPurpose> {
    match action {
        "confirm" => Some(LinkPurpose::Confirm),
        "unsubscribe" => Some(LinkPurpose::Unsubscribe),
        _ => None,
    }
}

/// `GET /status/subscriptions/{token}/{confirm|unsubscribe}`: a page with
/// the button; nothing changes.
pub(crate) async fn link_page(
    State(st): State<AppState>,
    Path((token, action)): Path<(String, String)>,
) -> Response {
    let Some(p) = purpose(&action) else {
        return page(
            &st,
            StatusCode::NOT_FOUND,
            "Not found",
            "No such page.",
            None,
        );
    };
    match st.0.app.subscriber_by_link(&token, p).await {
        Ok(s) => {
            let (heading, text, button) = match p {
                LinkPurpose::Confirm => (
                    "Confirm your subscription",
                    format!("Send updates of {} to {}?", st.0.status.title, s.address),
                    "Confirm",
                ),
                LinkPurpose::Unsubscribe => (
                    "Unsubscribe",
                    format!(
                        "Stop sending updates of {} to {}?",
                        st.0.status.title, s.address
                    ),
                    "Unsubscribe",
                ),
            };
            page(
                &st,
                StatusCode::OK,
                heading,
                text,
                Some((
                    format!("/status/subscriptions/{token}/{action}"),
                    button.into(),
                )),
            )
        }
        Err(e) => page(
            &st,
            StatusCode::NOT_FOUND,
            "Link not valid",
            e.to_string(),
            None,
        ),
    }
}

/// `POST /status/subscriptions/{token}/{confirm|unsubscribe}`.
pub(crate) async fn link_act(
    State(st): State<AppState>,
    Path((token, action)): Path<(String, String)>,
) -> Response {
    let result = match purpose(&action) {
        Some(LinkPurpose::Confirm) => st.0.app.confirm_subscription(&token).await.map(|_| ("You are subscribed", "You will be told of incidents and maintenance. Every message has a link to unsubscribe.")),
        Some(LinkPurpose::Unsubscribe) => st.0.app.end_subscription(&token).await.map(|_| ("Unsubscribed", "You will get no more messages from this status page.")),
        None => return page(&st, StatusCode::NOT_FOUND, "Not found", "No such page.", None),
    };
    match result {
        Ok((h, t)) => page(&st, StatusCode::OK, h, t, None),
        Err(tocsin_app::AppError::NotFound(m)) => {
            page(&st, StatusCode::NOT_FOUND, "Link not valid", m, None)
        }
        Err(tocsin_app::AppError::Conflict(m)) => {
            page(&st, StatusCode::CONFLICT, "Subscription ended", m, None)
        }
        Err(e) => {
            tracing::warn!(error = %e, "status page subscription link");
            page(
                &st,
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "This could not be stored just now; try again in a minute.",
                None,
            )
        }
    }
}
