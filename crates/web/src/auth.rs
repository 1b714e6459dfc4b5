//! Bearer API tokens with roles. Tokens are compared as SHA-256 digests in
//! constant time, against every configured token.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tocsin_domain::Role;
use tocsin_store::Actor;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller, identified by its API token.
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::new(format!("token:{}", self.name), "api")
    }

    /// Fail with 403 unless the role may act on alerts.
    pub fn must_act(&self) -> Result<(), ApiError> {
        self.must(
            self.role.may_act(),
            "accepting, resolving and commenting need responder or admin",
        )
    }

    /// Fail with 403 unless the token is an admin's.
    pub fn must_admin(&self) -> Result<(), ApiError> {
        self.must(
            self.role == Role::Admin,
            "changing the catalog needs an admin token",
        )
    }

    /// 403 naming the token, its role and what `need`s more, unless `allowed`.
    fn must(&self, allowed: bool, need: &str) -> Result<(), ApiError> {
        if allowed {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token `{}` has role {}; {need}",
                self.name,
                self.role.as_str()
            ),
        ))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        Caller::from_headers(st, &parts.headers)
    }
}

impl Caller {
    /// The caller whose Bearer token is in `headers`.
    pub fn from_headers(st: &AppState, headers: &axum::http::HeaderMap) -> Result<Self, ApiError> {
        let header = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        let live = st.live();
        let t = crate::state::find_by_key(&live.tokens, token, |t| &t.digest)
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Caller {
            name: t.name.clone(),
            role: t.role,
        })
    }
}
