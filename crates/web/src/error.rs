//! The one boundary where errors become HTTP responses:
//! `{"error":{"code":…,"message":…}}`. Internal detail is logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tocsin_app::AppError;
use tocsin_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Each problem with its key path (422 on catalog input), also sent
    /// as `error.problems: [{path, message}]`.
    pub problems: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid API token; send `Authorization: Bearer <token>` with a token from api_tokens in tocsin.yaml",
        )
    }

    /// Storage is down or slow: 503, so that senders retry. The detail is
    /// logged, not sent.
    pub fn unavailable(context: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}: storage unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "storage is unavailable; retry later",
        )
    }

    /// A bug or corrupt data: 500 with a generic message; detail in the log.
    pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}: internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// A use-case's refusal or failure as a response.
    pub fn from_app(context: &str, e: AppError) -> Self {
        match e {
            AppError::Invalid(problems) => {
                let mut e = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    problems
                        .iter()
                        .map(|p| {
                            if p.path.is_empty() {
                                p.message.clone()
                            } else {
                                format!("{}: {}", p.path, p.message)
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                e.problems = problems.into_iter().map(|p| (p.path, p.message)).collect();
                e
            }
            AppError::Unauthorized(m) => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m),
            AppError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            AppError::NotFound(m) => Self::not_found(m),
            AppError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            AppError::Stale(m) => Self::new(StatusCode::PRECONDITION_FAILED, "stale", m),
            AppError::Store(tocsin_store::StoreError::Conflict { kind, id, .. }) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{kind} `{id}` was changed by someone else at the same moment; try again"),
            ),
            AppError::Store(e) => Self::from_store(context, e),
            AppError::Limited(m) => Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", m),
            AppError::Internal(m) => Self::internal(context, &m),
        }
    }

    pub fn from_store(context: &str, e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => Self::bad_request(m),
            StoreError::Unavailable(_) => Self::unavailable(context, &e),
            _ => Self::internal(context, &e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if !self.problems.is_empty() {
            error["problems"] = self
                .problems
                .iter()
                .map(|(path, message)| json!({"path": path, "message": message}))
                .collect();
        }
        let body = Json(json!({ "error": error }));
        let mut res = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}
