//! `/profile`: the signed-in user's sessions (end any of them) and password.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tocsin_app::signin::MIN_PASSWORD_CHARS;

use super::session::signed_out;
use super::{Chrome, Posted, UiError, Viewer, ago, html, when};
use crate::state::AppState;

/// A contact method as shown (a Slack or webhook URL is a secret: only
/// its host is shown).
struct ContactRow {
    id: String,
    channel: String,
    address: String,
}

struct RuleRow {
    priority: &'static str,
    contact: String,
    after: String,
}

struct TokenRow {
    id: String,
    name: String,
    role: String,
    created: String,
    expires: String,
    used: String,
}

/// A test notification's result, per contact.
pub(crate) struct TestRow {
    contact: String,
    channel: String,
    ok: bool,
    text: String,
}

fn shown_address(channel: &str, address: &str) -> String {
    match channel {
        "slack" | "webhook" => match address.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split('/').next().unwrap_or_default();
                format!("{scheme}://{host}/…")
            }
            None => "(set)".into(),
        },
        _ => address.to_owned(),
    }
}

fn after(d: chrono::TimeDelta) -> String {
    tocsin_domain::DurationSpec::from_secs(d.num_seconds().max(0) as u64).to_string()
}

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
    contacts: Vec<ContactRow>,
    rules: Vec<RuleRow>,
    tokens: Vec<TokenRow>,
    /// The results of a test notification just sent.
    tested: Vec<TestRow>,
    /// A token just made: shown this once.
    new_token: Option<String>,
    token_error: Option<String>,
    roles: Vec<&'static str>,
    /// Where the user's contacts are changed (`None`: here, through the editor).
    file: Option<String>,
}

/// What a profile page shows besides the user's own facts.
#[derive(Default)]
pub(crate) struct Extra {
    pub password_error: Option<String>,
    pub done: Option<&'static str>,
    pub tested: Vec<TestRow>,
    pub new_token: Option<String>,
    pub token_error: Option<String>,
}

async fn render(
    st: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    extra: Extra,
) -> Result<Response, UiError> {
    let tokens =
        st.0.app
            .list_tokens(viewer.principal(), Some(viewer.user_id()))
            .await
            .map_err(|e| UiError::from_app("list tokens", e))?;
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
        password_error: extra.password_error,
        done: extra.done,
        contacts: user
            .map(|u| {
                u.contacts
                    .iter()
                    .map(|c| ContactRow {
                        id: c.id.clone(),
                        channel: c.channel.clone(),
                        address: shown_address(&c.channel, &c.address),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        rules: user
            .map(|u| {
                u.high
                    .iter()
                    .map(|(c, d)| ("high", c, d))
                    .chain(u.low.iter().map(|(c, d)| ("low", c, d)))
                    .map(|(p, c, d)| RuleRow {
                        priority: p,
                        contact: c.clone(),
                        after: after(*d),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                role: t.role.as_str().to_owned(),
                created: when(t.created_at),
                expires: t.expires_at.map(when).unwrap_or_else(|| "never".into()),
                used: t
                    .last_used_at
                    .map(|at| ago(at, now))
                    .unwrap_or_else(|| "never".into()),
            })
            .collect(),
        tested: extra.tested,
        new_token: extra.new_token,
        token_error: extra.token_error,
        roles: [
            tocsin_domain::Role::Observer,
            tocsin_domain::Role::Responder,
            tocsin_domain::Role::Admin,
        ]
        .into_iter()
        .filter(|r| r.rank() <= viewer.principal().role.rank())
        .map(|r| r.as_str())
        .collect(),
        file: live_file(st, viewer.user_id()),
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
        "revoked" => Some("Token revoked: it no longer works."),
        _ => None,
    });
    render(
        &st,
        &viewer,
        StatusCode::OK,
        Extra {
            done,
            ..Default::default()
        },
    )
    .await
}

/// The file a provisioned user comes from.
fn live_file(st: &AppState, user: &str) -> Option<String> {
    match &st.live().loaded.object("users", user)?.origin {
        tocsin_store::Origin::Provisioned { file } => Some(file.clone()),
        tocsin_store::Origin::Managed => None,
    }
}

/// `POST /profile/test-notification`: send a test through each of my
/// contact methods now; the page shows each result.
pub(crate) async fn test_notification(
    State(st): State<AppState>,
    Posted { viewer, form: _ }: Posted,
) -> Result<Response, UiError> {
    let results =
        crate::alerts::send_test_notification(&st, viewer.principal(), viewer.user_id()).await?;
    let tested = results
        .into_iter()
        .map(|r| TestRow {
            ok: r.result.is_ok(),
            text: match r.result {
                Ok(detail) if detail.is_empty() => "delivered".into(),
                Ok(detail) => format!("delivered: {detail}"),
                Err(e) => e,
            },
            contact: r.contact,
            channel: r.channel,
        })
        .collect();
    render(
        &st,
        &viewer,
        StatusCode::OK,
        Extra {
            tested,
            ..Default::default()
        },
    )
    .await
}

/// `POST /profile/tokens`: make a personal API token (shown this once).
pub(crate) async fn create_token(
    State(st): State<AppState>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    let role = match form.get("role").filter(|r| !r.is_empty()) {
        Some(r) => Some(
            r.parse::<tocsin_domain::Role>()
                .map_err(|e| UiError::bad_request(format!("role: {e}")))?,
        ),
        None => None,
    };
    let expires_at = match form.get("days").filter(|d| !d.is_empty()) {
        Some(d) => {
            let days: i64 = d
                .parse()
                .ok()
                .filter(|n| (1..=3650).contains(n))
                .ok_or_else(|| {
                    UiError::bad_request("days: a number from 1 to 3650, or empty for never")
                })?;
            Some(st.now() + chrono::TimeDelta::days(days))
        }
        None => None,
    };
    let req = tocsin_app::access::TokenRequest {
        name: form.get("name").unwrap_or_default().trim().to_owned(),
        role,
        expires_at,
        user: None,
    };
    match st.0.app.create_token(viewer.principal(), "web", req).await {
        Ok(issued) => {
            render(
                &st,
                &viewer,
                StatusCode::OK,
                Extra {
                    new_token: Some(issued.token_secret),
                    ..Default::default()
                },
            )
            .await
        }
        Err(e @ tocsin_app::AppError::Invalid(_)) => {
            render(
                &st,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                Extra {
                    token_error: Some(e.to_string()),
                    ..Default::default()
                },
            )
            .await
        }
        Err(e) => Err(UiError::from_app("create token", e)),
    }
}

/// `POST /profile/tokens/{id}/revoke`
pub(crate) async fn revoke_token(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form: _ }: Posted,
) -> Result<Response, UiError> {
    st.0.app
        .revoke_token(viewer.principal(), "web", &id)
        .await
        .map_err(|e| UiError::from_app("revoke token", e))?;
    Ok(Redirect::to("/profile?done=revoked").into_response())
}

/// `POST /profile/password`: current, new and confirm.
pub(crate) async fn password(
    State(st): State<AppState>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    let new = form.get("new").unwrap_or_default();
    if form.get("confirm") != Some(new) {
        return render(
            &st,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            Extra {
                password_error: Some(
                    "the two new passwords differ; type the same one twice".into(),
                ),
                ..Default::default()
            },
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
                Extra {
                    password_error: Some(e.to_string()),
                    ..Default::default()
                },
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
    Path(id): Path<String>,
    Posted { viewer, form: _ }: Posted,
) -> Result<Response, UiError> {
    st.0.app
        .end_session(&viewer.signed_in, &id)
        .await
        .map_err(|e| UiError::from_app("end session", e))?;
    if id == viewer.signed_in.session.id {
        return Ok(signed_out(&st));
    }
    Ok(Redirect::to("/profile?done=ended").into_response())
}
