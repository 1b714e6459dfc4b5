//! Tocsin's HTTP surface. Only this crate knows HTTP: handlers parse
//! requests, call the wire parsers, the domain router and the store, and
//! turn every error into one JSON shape at one boundary ([`ApiError`]).

mod alerts;
mod auth;
mod catalog;
mod error;
mod heartbeats;
mod incidents;
mod ingest;
mod links;
mod maintenance;
mod metrics;
mod openapi;
mod ops;
mod ratelimit;
mod redact;
mod schedules;
mod schema;
mod senders;
mod slack;
mod state;
pub mod status;
mod testalert;
mod tokens;
mod twilio;
pub mod ui;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use error::ApiError;
pub use metrics::Metrics;
pub use redact::redact_path;
pub use state::{AppState, SourceRuntime, StateError, WebSettings};
pub use tocsin_app::Secrets;

/// The whole application: every route, with request logging that never shows keys.
/// The value of query parameter `name` in a raw query string, decoded.
pub(crate) fn query_param(raw: Option<&str>, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or_default())
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The kinds whose `GET /api/v1/{kind}` list another handler serves (a
/// view with computed fields: on call now, feed URLs, heartbeat states).
const VIEWS: &[&str] = &["heartbeats", "schedules", "users"];

/// Query parameter `limit`: a number from 1 to `max`.
pub(crate) fn parse_limit(v: &str, max: u32) -> Result<u32, ApiError> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "query parameter `limit`: `{v}` is not a number from 1 to {max}"
            ))
        })
}

/// Query parameter `cursor`: the `next_cursor` of the previous page.
pub(crate) fn parse_cursor(v: &str) -> Result<i64, ApiError> {
    v.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "query parameter `cursor`: `{v}` is not a cursor; pass next_cursor from the previous page"
        ))
    })
}

/// A query string as `T`; a bad one is a 400 that says what is wrong.
pub(crate) fn parse_query<T: serde::de::DeserializeOwned>(
    raw: Option<&str>,
) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("query string: {e}")))
}

pub fn app(state: AppState) -> Router {
    let api = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(heartbeats::list))
        .routes(routes!(schedules::list))
        .routes(routes!(schedules::users));
    let (router, mut doc) = catalog::routes(api, VIEWS)
        .routes(routes!(ingest::prometheus))
        .route("/webhooks/{key}", post(ingest::prometheus))
        .routes(routes!(senders::pd_enqueue))
        .routes(routes!(senders::pd_change))
        .routes(routes!(senders::og_create))
        .routes(routes!(senders::og_get))
        .routes(routes!(senders::og_request))
        .routes(routes!(senders::og_close))
        .routes(routes!(senders::og_acknowledge))
        .routes(routes!(senders::ilert_events))
        .route("/api/v1/events", post(senders::ilert_events))
        .routes(routes!(alerts::changes))
        .routes(routes!(heartbeats::ping))
        .route("/api/heartbeats/{key}", get(heartbeats::ping))
        .route(
            "/api/v1/heartbeats/{key}",
            catalog::heartbeat_object_routes()
                .get(heartbeats::ping_or_object)
                .post(heartbeats::ping),
        )
        .routes(routes!(tokens::me))
        .routes(routes!(testalert::send))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(tokens::audit))
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::show))
        .routes(routes!(alerts::accept))
        .routes(routes!(alerts::resolve))
        .routes(routes!(alerts::comment))
        .routes(routes!(alerts::unaccept))
        .routes(routes!(alerts::reassign))
        .routes(routes!(schedules::oncall))
        .routes(routes!(schedules::shifts))
        .routes(routes!(alerts::test_notification))
        .routes(routes!(schedules::feed))
        .routes(routes!(links::confirm, links::act))
        .routes(routes!(slack::interactivity))
        .routes(routes!(twilio::sms))
        .routes(routes!(twilio::voice))
        .routes(routes!(twilio::gather))
        .routes(routes!(maintenance::list, maintenance::create))
        .routes(routes!(maintenance::end))
        .routes(routes!(incidents::list, incidents::open))
        .routes(routes!(incidents::show, incidents::change))
        .routes(routes!(incidents::update))
        .routes(routes!(incidents::resolve))
        .routes(routes!(incidents::link))
        .routes(routes!(incidents::unlink))
        .routes(routes!(incidents::report))
        .routes(routes!(status::subscribe::api))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .split_for_parts();
    openapi::catalog_kinds(&mut doc, tocsin_app::edit::EDITABLE, VIEWS);
    use utoipa::openapi::path::HttpMethod;
    openapi::aliases(
        &mut doc,
        &[
            (
                "/api/v1/events/prometheus/{key}",
                "/webhooks/{key}",
                HttpMethod::Post,
                "ingest_webhooks",
            ),
            (
                "/api/events",
                "/api/v1/events",
                HttpMethod::Post,
                "senders_ilert_events_v1",
            ),
            (
                "/api/heartbeats/{key}",
                "/api/heartbeats/{key}",
                HttpMethod::Get,
                "heartbeats_ping_get",
            ),
        ],
    );
    let (text, value) = openapi::render(&doc);
    let text = std::sync::Arc::new(text);
    let page = std::sync::Arc::new(openapi::docs_page(&value).0);
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let text = text.clone();
                async move { openapi::json_response(&text) }
            }),
        )
        .route(
            "/api/docs",
            get(move || {
                let page = page.clone();
                async move { axum::response::Html(page.as_str().to_owned()) }
            }),
        )
        .merge(ui::routes())
        .merge(status::routes())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %redact_path(req.uri().path()),
                    )
                })
                .on_request(())
                .on_response(
                    |res: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                        let status = res.status().as_u16();
                        let ms = latency.as_secs_f64() * 1000.0;
                        if status >= 500 {
                            tracing::warn!(status, latency_ms = ms, "response");
                        } else if status >= 400 {
                            tracing::info!(status, latency_ms = ms, "response");
                        } else {
                            tracing::debug!(status, latency_ms = ms, "response");
                        }
                    },
                )
                .on_failure(()),
        )
        .with_state(state)
}
