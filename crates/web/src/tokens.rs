//! Who am I, personal API tokens, and the audit log.
//!
//! - `GET /api/v1/me`: the caller's token, user, role and teams.
//! - `GET /api/v1/tokens[?user=ID]`, `POST /api/v1/tokens` with `{name,
//!   role?, expires_at?, user?}` (the secret is in the answer, once),
//!   `DELETE /api/v1/tokens/{id}` (revoked at once on every node).
//! - `GET /api/v1/audit[?actor&kind&object&since&until&limit&cursor]`,
//!   newest first.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tocsin_app::access::TokenRequest;
use tocsin_store::AuditFilter;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /api/v1/me`
#[utoipa::path(
    get,
    path = "/api/v1/me",
    operation_id = "tokens_me",
    tag = "tokens",
    summary = "Who the token is: its user, role and teams",
    responses((status = 200, description = "OK", body = crate::schema::Me), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn me(State(st): State<AppState>, caller: Caller) -> Json<Value> {
    let catalog = st.0.app.catalog.current();
    let user = caller.user.as_ref().and_then(|u| catalog.users.get(u));
    Json(json!({
        "token": {"name": caller.token, "id": caller.token_id},
        "kind": if caller.user.is_some() { "user" } else { "service" },
        "role": caller.role,
        "user": user.map(|u| json!({"id": u.id, "name": u.name, "email": u.email})),
        "teams": caller.teams,
    }))
}

/// `GET /api/v1/tokens`
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    operation_id = "tokens_list",
    tag = "tokens",
    summary = "Personal API tokens (an admin's view: everybody's)",
    params(("user" = Option<String>, Query, description = "Only this user's (admins)")),
    responses((status = 200, description = "OK", body = crate::schema::TokenList), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let pairs = query(raw.as_deref())?;
    let mut user = None;
    for (k, v) in pairs {
        match k.as_str() {
            "user" => user = Some(v),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{other}`; expected user"
                )));
            }
        }
    }
    let tokens =
        st.0.app
            .list_tokens(&caller, user.as_deref())
            .await
            .map_err(|e| ApiError::from_app("list tokens", e))?;
    Ok(Json(json!({"tokens": tokens})))
}

/// `POST /api/v1/tokens`: 201 with the token and its secret (`token`).
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "tokens_create",
    tag = "tokens",
    summary = "Make a personal API token; the secret is in the answer, once",
    request_body = TokenRequest,
    responses((status = 201, description = "The token and its secret", body = tocsin_app::access::IssuedToken), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 422, description = "The body breaks a rule; `problems` names each key path", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: TokenRequest = tocsin_wire::WireError::parse_json(&body)
        .map_err(|e| ApiError::bad_request(format!("token: {e}")))?;
    let issued =
        st.0.app
            .create_token(&caller, "api", req)
            .await
            .map_err(|e| ApiError::from_app("create token", e))?;
    Ok((StatusCode::CREATED, Json(json!(issued))))
}

/// `DELETE /api/v1/tokens/{id}`: the revoked token.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    operation_id = "tokens_revoke",
    tag = "tokens",
    summary = "Revoke a token, at once on every node",
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 200, description = "The revoked token", body = tocsin_store::PersonalToken), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn revoke(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t =
        st.0.app
            .revoke_token(&caller, "api", &id)
            .await
            .map_err(|e| ApiError::from_app("revoke token", e))?;
    Ok(Json(json!(t)))
}

const AUDIT_LIMIT: u32 = 100;
const AUDIT_MAX: u32 = 1000;

fn query(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("query string: {e}")))
}

fn time(name: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "query parameter `{name}`: `{v}` is not an RFC 3339 time such as 2026-12-01T09:00:00Z"
            ))
        })
}

/// `GET /api/v1/audit`
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "tokens_audit",
    tag = "audit",
    summary = "The audit log, newest first",
    params(("actor" = Option<String>, Query, description = "user:ID, token:NAME, config:FILE, source:ID"), ("kind" = Option<String>, Query, description = "alert, maintenance, token, or a catalog kind"), ("object" = Option<String>, Query, description = "An object id"), ("since" = Option<String>, Query, description = "RFC 3339, inclusive", format = DateTime), ("until" = Option<String>, Query, description = "RFC 3339, exclusive", format = DateTime), ("limit" = Option<u32>, Query, description = "1 to 1000 (default 100)", minimum = 1, maximum = 1000), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page", pattern = "^[0-9]+$")),
    responses((status = 200, description = "A page of entries", body = crate::schema::AuditList), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn audit(
    State(st): State<AppState>,
    _caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let mut f = AuditFilter {
        limit: AUDIT_LIMIT,
        ..Default::default()
    };
    for (k, v) in query(raw.as_deref())? {
        match k.as_str() {
            "actor" => f.actor = Some(v),
            "kind" => f.kind = Some(v),
            "object" => f.object_id = Some(v),
            "since" => f.since = Some(time("since", &v)?),
            "until" => f.until = Some(time("until", &v)?),
            "limit" => f.limit = crate::parse_limit(&v, AUDIT_MAX)?,
            "cursor" => f.before_id = Some(crate::parse_cursor(&v)?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{other}`; expected actor, kind, object, since, until, limit or cursor"
                )));
            }
        }
    }
    let page =
        st.0.app
            .audit(&f)
            .await
            .map_err(|e| ApiError::from_app("audit log", e))?;
    Ok(Json(json!({
        "entries": page.entries,
        "next_cursor": page.next_before_id.map(|id| id.to_string()),
    })))
}
