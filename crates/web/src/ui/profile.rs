//! `/profile`: the signed-in user's sessions (end any of them) and password.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tocsin_app::signin::MIN_PASSWORD_CHARS;

use super::session::{SESSION_COOKIE, set_cookie};
use super::{Chrome, FormFields, UiError, Viewer, ago, html, when};
use crate::state::AppState;

struct SessionRow {
    id: String,
    method: String,
    created: String,
    seen: String,
    expires: String,
    address: String,
    agent: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    c: Chrome,
    email: String,
    role: &'static str,
    teams: Vec<String>,
    sessions: Vec<SessionRow>,
    has_password: bool,
    min_chars: usize,
    password_error: Option<String>,
    done: Option<&'static str>,
}

async fn render(
    st: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    password_error: Option<String>,
    done: Option<&'static str>,
) -> Result<Response, UiError> {
    let sessions =
        st.0.app
            .list_sessions(&viewer.signed_in)
            .await
            .map_err(|e| UiError::from_app("list sessions", e))?;
    let has_password =
        st.0.store
            .password_hash(viewer.user_id())
            .await
            .map_err(|e| UiError::from_store("read password", e))?
            .is_some();
    let now = st.0.app.now();
    let catalog = st.0.app.catalog.current();
    let user = catalog.users.get(viewer.user_id());
    let page = ProfilePage {
        c: Chrome::new(viewer, "Profile", "/profile"),
        email: user.and_then(|u| u.email.clone()).unwrap_or_default(),
        role: viewer.principal().role.as_str(),
        teams: user.map(|u| u.teams.clone()).unwrap_or_default(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                current: s.id == viewer.signed_in.session.id,
                method: s.method,
                created: when(s.created_at),
                seen: ago(s.last_seen_at, now),
                expires: when(s.expires_at),
                address: s.address,
                agent: s.user_agent.chars().take(80).collect(),
                id: s.id,
            })
            .collect(),
        has_password,
        min_chars: MIN_PASSWORD_CHARS,
        password_error,
        done,
    };
    Ok((status, html(&page)).into_response())
}

/// `GET /profile`
pub(crate) async fn page(
    State(st): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let done = crate::query_param(raw.as_deref(), "done").and_then(|d| match d.as_str() {
        "password" => Some("Password changed. Your other sessions were ended."),
        "ended" => Some("Session ended."),
        _ => None,
    });
    render(&st, &viewer, StatusCode::OK, None, done).await
}

/// `POST /profile/password`: current, new and confirm.
pub(crate) async fn password(
    State(st): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormFields::parse(&body)?;
    viewer.check_form(&st, &headers, &form)?;
    let new = form.get("new").unwrap_or_default();
    if form.get("confirm") != Some(new) {
        return render(
            &st,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("the two new passwords differ; type the same one twice".into()),
            None,
        )
        .await;
    }
    match st
        .0
        .app
        .change_own_password(
            &viewer.signed_in,
            form.get("current").unwrap_or_default(),
            new,
        )
        .await
    {
        Ok(()) => Ok(Redirect::to("/profile?done=password").into_response()),
        Err(e @ tocsin_app::AppError::Invalid(_)) => {
            render(
                &st,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(e.to_string()),
                None,
            )
            .await
        }
        Err(e) => Err(UiError::from_app("change password", e)),
    }
}

/// `POST /profile/sessions/{id}/end`: end one of the user's sessions (this
/// one signs out).
pub(crate) async fn end_session(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormFields::parse(&body)?;
    viewer.check_form(&st, &headers, &form)?;
    st.0.app
        .end_session(&viewer.signed_in, &id)
        .await
        .map_err(|e| UiError::from_app("end session", e))?;
    if id == viewer.signed_in.session.id {
        let mut res = Redirect::to("/login?why=bye").into_response();
        if let Ok(v) = set_cookie(&st, SESSION_COOKIE, "", Some(0)).parse() {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
        return Ok(res);
    }
    Ok(Redirect::to("/profile?done=ended").into_response())
}
