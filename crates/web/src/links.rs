//! `/act/{accept|resolve}?alert=…&user=…&exp=…&sig=…`: the signed links in
//! messages. A GET only shows a confirmation page (link scanners follow
//! GETs); the POST from that page acts. A wrong or expired signature gets
//! 403 and changes nothing.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tocsin_domain::links::{ActionLink, LinkAction, LinkError};
use tocsin_store::{Actor, Transition, TransitionResult};

use crate::state::AppState;

#[derive(Deserialize)]
pub struct LinkQuery {
    alert: Option<i64>,
    user: Option<String>,
    exp: Option<i64>,
    sig: Option<String>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}button{{font-size:1.1rem;padding:.6rem 1.4rem}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    (status, Html(html)).into_response()
}

/// The link's query string; a broken one is the page to show.
fn link_query(raw: Option<&str>) -> Result<LinkQuery, Box<Response>> {
    serde_urlencoded::from_str(raw.unwrap_or_default()).map_err(|_| {
        Box::new(page(
            StatusCode::BAD_REQUEST,
            "Broken link",
            "<p>The link's parts (alert, user, exp, sig) do not read as Tocsin writes them. Copy the whole link from the message.</p>",
        ))
    })
}

/// Parse and verify; the error is the page to show.
fn verify(
    st: &AppState,
    action: &str,
    q: &LinkQuery,
) -> Result<(ActionLink, String), Box<Response>> {
    let action: LinkAction = action.parse().map_err(|_| {
        Box::new(page(
            StatusCode::NOT_FOUND,
            "Unknown action",
            "<p>This link does not name an action Tocsin knows.</p>",
        ))
    })?;
    let (Some(alert_id), Some(user), Some(expires), Some(sig)) =
        (q.alert, q.user.clone(), q.exp, q.sig.clone())
    else {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "Incomplete link",
            "<p>The link is missing some of its parts (alert, user, exp, sig). Copy the whole link from the message.</p>",
        )));
    };
    let link = ActionLink {
        alert_id,
        action,
        user,
        expires,
    };
    match st.0.links.verify(&link, &sig, st.now()) {
        Ok(()) => Ok((link, sig)),
        Err(LinkError::Expired) => Err(Box::new(page(
            StatusCode::FORBIDDEN,
            "Link expired",
            "<p>This link has expired. Use the API, the CLI or a newer message.</p>",
        ))),
        Err(LinkError::BadSignature) => Err(Box::new(page(
            StatusCode::FORBIDDEN,
            "Invalid link",
            "<p>This link is not valid. Copy the whole link from the message.</p>",
        ))),
    }
}

/// `GET /act/{action}`: a confirmation page; changes nothing.
#[utoipa::path(
    get,
    path = "/act/{action}",
    operation_id = "links_confirm",
    tag = "callbacks",
    summary = "A signed link in a message: a page that asks to confirm",
    params(("action" = String, Path, description = "accept or resolve"), ("alert" = i64, Query), ("user" = String, Query), ("exp" = i64, Query), ("sig" = String, Query)),
    security(()),
    responses((status = 200, description = "Confirmation page", body = String, content_type = "text/html"), (status = 403, description = "Bad or expired link", body = String, content_type = "text/html"), (status = "default", description = "A page saying what is wrong", body = String, content_type = "text/html"))
)]
pub async fn confirm(
    State(st): State<AppState>,
    Path(action): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match link_query(raw.as_deref()) {
        Ok(q) => q,
        Err(page) => return *page,
    };
    let (link, sig) = match verify(&st, &action, &q) {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let summary = match st.0.store.get_alert(link.alert_id).await {
        Ok(Some(a)) => format!("{} ({}, {})", a.summary, a.severity, a.status),
        Ok(None) => {
            return page(
                StatusCode::NOT_FOUND,
                "No such alert",
                "<p>The alert no longer exists.</p>",
            );
        }
        Err(_) => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "<p>Storage is unavailable; try again shortly.</p>",
            );
        }
    };
    let verb = match link.action {
        LinkAction::Accept => "Accept",
        LinkAction::Resolve => "Resolve",
    };
    let target = format!(
        "/act/{}?alert={}&user={}&exp={}&sig={}",
        link.action,
        link.alert_id,
        escape(&link.user),
        link.expires,
        escape(&sig)
    );
    page(
        StatusCode::OK,
        &format!("{verb} alert #{}?", link.alert_id),
        &format!(
            "<p>{}</p><p>As <strong>{}</strong>.</p><form method=\"post\" action=\"{target}\"><button type=\"submit\">{verb}</button></form>",
            escape(&summary),
            escape(&link.user)
        ),
    )
}

/// `POST /act/{action}`: act, as the user the link was sent to.
#[utoipa::path(
    post,
    path = "/act/{action}",
    operation_id = "links_act",
    tag = "callbacks",
    summary = "Act on a signed link",
    params(("action" = String, Path, description = "accept or resolve"), ("alert" = i64, Query), ("user" = String, Query), ("exp" = i64, Query), ("sig" = String, Query)),
    security(()),
    responses((status = 200, description = "Done", body = String, content_type = "text/html"), (status = 403, description = "Bad or expired link", body = String, content_type = "text/html"), (status = "default", description = "A page saying what is wrong", body = String, content_type = "text/html"))
)]
pub async fn act(
    State(st): State<AppState>,
    Path(action): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match link_query(raw.as_deref()) {
        Ok(q) => q,
        Err(page) => return *page,
    };
    let (link, _) = match verify(&st, &action, &q) {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let transition = match link.action {
        LinkAction::Accept => Transition::Accept,
        LinkAction::Resolve => Transition::Resolve,
    };
    let actor = Actor::new(format!("user:{}", link.user), "link");
    match st.0.app.transition(link.alert_id, transition, &actor).await {
        Ok(TransitionResult::Done(a)) => page(
            StatusCode::OK,
            &format!("Alert #{} {}", a.id, a.status),
            &format!(
                "<p>{}</p><p>Done. Escalation has stopped.</p>",
                escape(&a.summary)
            ),
        ),
        Ok(TransitionResult::Unchanged(a)) => page(
            StatusCode::OK,
            &format!("Alert #{} is already {}", a.id, a.status),
            &format!("<p>{}</p>", escape(&a.summary)),
        ),
        Ok(TransitionResult::Conflict(a)) => page(
            StatusCode::CONFLICT,
            &format!("Alert #{} is resolved", a.id),
            "<p>A resolved alert cannot be accepted.</p>",
        ),
        Ok(TransitionResult::NotFound) => page(
            StatusCode::NOT_FOUND,
            "No such alert",
            "<p>The alert no longer exists.</p>",
        ),
        Err(e) => {
            tracing::error!(error = %e, "action link: storage error");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "<p>Storage is unavailable; try again shortly.</p>",
            )
        }
    }
}
