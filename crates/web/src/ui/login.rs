//! `/login`, `/logout` and the one-time `/setup/{secret}` link.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tocsin_app::signin::{Client, IssuedSession, MIN_PASSWORD_CHARS};

use super::session::{
    LOGIN_COOKIE, SESSION_COOKIE, Viewer, cookie, csrf_matches, safe_next, set_cookie, signed_out,
};
use super::{FormFields, Posted, UiError, check_origin, html};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    next: &'a str,
    login: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    sso_label: Option<&'a str>,
}

/// Where the request comes from: the peer address, and the browser.
pub(crate) fn client_of(parts_ext: &axum::http::Extensions, headers: &HeaderMap) -> Client {
    let address = parts_ext
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Client {
        address,
        user_agent,
    }
}

/// The response that signs a browser in: the session cookie, then on to
/// `next`.
pub(crate) fn signed_in(st: &AppState, issued: &IssuedSession, next: &str) -> Response {
    // The cookie outlives the session by a day, so that a browser coming
    // back after the end is told its session expired (rather than nothing).
    let max_age = (issued.session.expires_at - issued.session.created_at).num_seconds() + 86_400;
    let mut res = Redirect::to(next).into_response();
    set_cookie(&mut res, st, SESSION_COOKIE, &issued.secret, Some(max_age));
    set_cookie(&mut res, st, LOGIN_COOKIE, "", Some(0));
    res
}

fn notice_for(why: Option<&str>) -> Option<&'static str> {
    match why? {
        "expired" => Some("Your session expired. Sign in again."),
        "signed-out" => Some("Sign in to continue."),
        "bye" => Some("You are signed out."),
        "unavailable" => Some("Storage is unavailable right now; try again in a moment."),
        _ => None,
    }
}

/// Render the sign-in form, with a fresh CSRF cookie.
fn login_form(
    st: &AppState,
    status: StatusCode,
    next: &str,
    login: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let csrf = hex::encode(rand::random::<[u8; 24]>());
    let page = LoginPage {
        csrf: &csrf,
        next,
        login,
        notice,
        error,
        sso_label: st.0.ui.oidc.as_ref().map(|o| o.label.as_str()),
    };
    let mut res = (status, html(&page)).into_response();
    set_cookie(&mut res, st, LOGIN_COOKIE, &csrf, Some(3600));
    res
}

/// A form posted before there is a session (sign-in, setup): from one of
/// Tocsin's own pages (`Origin`) and carrying the token of the browser's
/// sign-in cookie.
async fn signed_out_form(
    st: &AppState,
    req: axum::extract::Request,
) -> Result<(axum::http::request::Parts, FormFields), UiError> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| UiError::bad_request("the form is too large"))?;
    let form = FormFields::parse(&body)?;
    check_origin(st, &parts.headers)?;
    let expected = cookie(&parts.headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !csrf_matches(&form, &expected) {
        return Err(UiError::forbidden(
            "the form's security token is missing or stale (are cookies allowed?); reload the page and try again",
        ));
    }
    Ok((parts, form))
}

/// `GET /login[?next=…&why=…]`
pub(crate) async fn page(
    State(st): State<AppState>,
    viewer: Option<Viewer>,
    RawQuery(raw): RawQuery,
) -> Response {
    let next = safe_next(crate::query_param(raw.as_deref(), "next").as_deref());
    if viewer.is_some() {
        return Redirect::to(&next).into_response();
    }
    let why = crate::query_param(raw.as_deref(), "why");
    login_form(
        &st,
        StatusCode::OK,
        &next,
        "",
        notice_for(why.as_deref()),
        None,
    )
}

/// `POST /login`: user id or email, and password.
pub(crate) async fn submit(
    State(st): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, UiError> {
    let (parts, form) = signed_out_form(&st, req).await?;
    let next = safe_next(form.get("next"));
    let login = form.get("login").unwrap_or_default().trim().to_owned();
    let password = form.get("password").unwrap_or_default();
    let client = client_of(&parts.extensions, &parts.headers);
    match st
        .0
        .app
        .sign_in_password(&login, password, &client, &st.0.ui.sessions)
        .await
    {
        Ok(issued) => Ok(signed_in(&st, &issued, &next)),
        Err(e @ (tocsin_app::AppError::Unauthorized(_) | tocsin_app::AppError::Limited(_))) => {
            let status = if matches!(e, tocsin_app::AppError::Limited(_)) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            Ok(login_form(
                &st,
                status,
                &next,
                &login,
                None,
                Some(&e.to_string()),
            ))
        }
        Err(e) => Err(UiError::from_app("sign in", e)),
    }
}

/// `POST /logout`: end this session.
pub(crate) async fn logout(
    State(st): State<AppState>,
    Posted { viewer, .. }: Posted,
) -> Result<Response, UiError> {
    let id = viewer.signed_in.session.id.clone();
    st.0.app
        .end_session(&viewer.signed_in, &id)
        .await
        .map_err(|e| UiError::from_app("sign out", e))?;
    Ok(signed_out(&st))
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    csrf: &'a str,
    admins: Vec<(String, String)>,
    error: Option<&'a str>,
    min_chars: usize,
}

fn setup_form(st: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let csrf = hex::encode(rand::random::<[u8; 24]>());
    let catalog = st.0.app.catalog.current();
    let admins = catalog
        .users
        .values()
        .filter(|u| u.role == tocsin_domain::Role::Admin)
        .map(|u| (u.id.clone(), u.name.clone()))
        .collect();
    let page = SetupPage {
        csrf: &csrf,
        admins,
        error,
        min_chars: MIN_PASSWORD_CHARS,
    };
    let mut res = (status, html(&page)).into_response();
    set_cookie(&mut res, st, LOGIN_COOKIE, &csrf, Some(3600));
    res
}

fn spent_link() -> UiError {
    let mut e = UiError::new(
        StatusCode::GONE,
        "gone",
        "this setup link was used already, or an admin can sign in now; sign in at /login, or run `tocsin users set-password` on the server",
    );
    e.signed_in = false;
    e
}

/// `GET /setup/{secret}`: choose an admin and their password.
pub(crate) async fn setup_page(
    State(st): State<AppState>,
    Path(secret): Path<String>,
) -> Result<Response, UiError> {
    let works =
        st.0.app
            .setup_link_works(&secret, st.0.ui.oidc.is_some())
            .await
            .map_err(|e| UiError::from_app("setup link", e))?;
    if !works {
        return Err(spent_link());
    }
    Ok(setup_form(&st, StatusCode::OK, None))
}

/// `POST /setup/{secret}`
pub(crate) async fn setup_submit(
    State(st): State<AppState>,
    Path(secret): Path<String>,
    req: axum::extract::Request,
) -> Result<Response, UiError> {
    let (parts, form) = signed_out_form(&st, req).await?;
    let user = form.get("user").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    if form.get("confirm") != Some(password) {
        return Ok(setup_form(
            &st,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("the two passwords differ; type the same one twice"),
        ));
    }
    let client = client_of(&parts.extensions, &parts.headers);
    match st
        .0
        .app
        .use_setup_link(
            &secret,
            user,
            password,
            &client,
            &st.0.ui.sessions,
            st.0.ui.oidc.is_some(),
        )
        .await
    {
        Ok(issued) => Ok(signed_in(&st, &issued, "/alerts")),
        Err(tocsin_app::AppError::Unauthorized(_)) => Err(spent_link()),
        Err(e @ tocsin_app::AppError::Invalid(_)) => Ok(setup_form(
            &st,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&e.to_string()),
        )),
        Err(e) => Err(UiError::from_app("setup link", e)),
    }
}
