//! Tocsin's HTTP surface. Only this crate knows HTTP: handlers parse
//! requests, call the wire parsers, the domain router and the store, and
//! turn every error into one JSON shape at one boundary ([`ApiError`]).

mod alerts;
mod auth;
mod catalog;
mod error;
mod heartbeats;
mod ingest;
mod links;
mod maintenance;
mod metrics;
mod ops;
mod ratelimit;
mod redact;
mod schedules;
mod senders;
mod slack;
mod state;
mod testalert;
mod tokens;
mod twilio;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

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

pub fn app(state: AppState) -> Router {
    let views = vec![
        ("heartbeats", get(heartbeats::list)),
        ("schedules", get(schedules::list)),
        ("users", get(schedules::users)),
    ];
    catalog::routes(Router::new(), views)
        .route("/api/v1/events/prometheus/{key}", post(ingest::prometheus))
        .route("/webhooks/{key}", post(ingest::prometheus))
        .route("/v2/enqueue", post(senders::pd_enqueue))
        .route("/v2/change/enqueue", post(senders::pd_change))
        .route("/v2/alerts", post(senders::og_create))
        .route("/v2/alerts/{id}", get(senders::og_get))
        .route("/v2/alerts/requests/{id}", get(senders::og_request))
        .route("/v2/alerts/{id}/close", post(senders::og_close))
        .route("/v2/alerts/{id}/acknowledge", post(senders::og_acknowledge))
        .route("/api/events", post(senders::ilert_events))
        .route("/api/v1/events", post(senders::ilert_events))
        .route("/api/v1/changes", get(alerts::changes))
        .route(
            "/api/heartbeats/{key}",
            get(heartbeats::ping).post(heartbeats::ping),
        )
        .route(
            "/api/v1/heartbeats/{key}",
            catalog::heartbeat_object_routes()
                .get(heartbeats::ping_or_object)
                .post(heartbeats::ping),
        )
        .route("/api/v1/me", get(tokens::me))
        .route("/api/v1/sources/{id}/test-alert", post(testalert::send))
        .route("/api/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/api/v1/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/api/v1/audit", get(tokens::audit))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/alerts/{id}", get(alerts::show))
        .route("/api/v1/alerts/{id}/accept", post(alerts::accept))
        .route("/api/v1/alerts/{id}/resolve", post(alerts::resolve))
        .route("/api/v1/alerts/{id}/comment", post(alerts::comment))
        .route("/api/v1/alerts/{id}/unaccept", post(alerts::unaccept))
        .route("/api/v1/alerts/{id}/reassign", post(alerts::reassign))
        .route("/api/v1/schedules/{id}/oncall", get(schedules::oncall))
        .route("/api/v1/schedules/{id}/shifts", get(schedules::shifts))
        .route(
            "/api/v1/users/{id}/test-notification",
            post(alerts::test_notification),
        )
        .route("/ical/{token}", get(schedules::feed))
        .route("/act/{action}", get(links::confirm).post(links::act))
        .route("/api/v1/slack/interactivity", post(slack::interactivity))
        .route("/api/v1/twilio/sms", post(twilio::sms))
        .route("/api/v1/twilio/voice", post(twilio::voice))
        .route("/api/v1/twilio/voice/gather", post(twilio::gather))
        .route(
            "/api/v1/maintenance",
            get(maintenance::list).post(maintenance::create),
        )
        .route("/api/v1/maintenance/{id}/end", post(maintenance::end))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
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
