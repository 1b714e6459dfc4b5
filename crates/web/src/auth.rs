//! Bearer API tokens. Who a token is, and what it may do, is the
//! application layer's (`Application::authenticate`, the `*_as`
//! use-cases); this only takes the token from the request.

use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::{extract::FromRequestParts, http::HeaderMap};
use tocsin_domain::Principal;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller, identified by its API token.
pub struct Caller(pub Principal);

impl std::ops::Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl Caller {
    /// The caller whose Bearer token is in `headers`.
    pub async fn from_headers(st: &AppState, headers: &HeaderMap) -> Result<Self, ApiError> {
        let header = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        st.0.app
            .authenticate(token)
            .await
            .map(Caller)
            .map_err(|e| ApiError::from_app("authenticate", e))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        Caller::from_headers(st, &parts.headers).await
    }
}
