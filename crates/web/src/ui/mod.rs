//! The web UI: server-rendered HTML pages (askama templates compiled into
//! the binary) that work without JavaScript; one small script of our own
//! adds live updates. Every action calls the same use-case of the
//! application layer as the API, with the signed-in user's
//! [`Principal`](tocsin_domain::Principal), so the UI can do nothing the
//! API cannot and roles are enforced server-side.
//!
//! Security: sessions in storage behind an `HttpOnly`, `SameSite=Lax`
//! cookie (`Secure` under TLS); every form carries a CSRF token bound to
//! the session and every POST's `Origin` must be ours; the
//! Content-Security-Policy allows no inline script.

mod admin;
mod alerts;
mod assets;
mod catalog;
mod incidents;
pub(crate) mod live;
mod login;
pub(crate) mod oidc;
mod profile;
mod schedules;
mod session;
mod sources;

use askama::Template;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tocsin_app::signin::SessionPolicy;

use crate::error::ApiError;
use crate::state::AppState;
pub(crate) use session::{Posted, Viewer};

/// Sign-in settings of the web UI.
#[derive(Debug, Clone, Default)]
pub struct UiSettings {
    pub sessions: SessionPolicy,
    /// Mark cookies `Secure` (Tocsin serves HTTPS, or `public_url` is https).
    pub secure_cookies: bool,
    /// Single sign-on through OpenID Connect.
    pub oidc: Option<OidcSettings>,
}

/// `auth.oidc` of tocsin.yaml.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub allow_unknown_users: bool,
    pub label: String,
}

/// The UI's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/auth/oidc/start", get(oidc::start))
        .route("/auth/oidc/callback", get(oidc::callback))
        .route(
            "/setup/{secret}",
            get(login::setup_page).post(login::setup_submit),
        )
        .route("/alerts", get(alerts::list))
        .route("/alerts/live", get(live::stream))
        .route("/alerts/bulk", post(alerts::bulk))
        .route("/alerts/{id}", get(alerts::page))
        .route("/alerts/{id}/{action}", post(alerts::act))
        .route("/incidents", get(incidents::list).post(incidents::open))
        .route("/incidents/{id}", get(incidents::page))
        .route("/incidents/{id}/{action}", post(incidents::act))
        .route("/schedules", get(schedules::list))
        .route("/schedules/{id}", get(schedules::page))
        .route(
            "/schedules/{id}/overrides",
            post(schedules::create_override),
        )
        .route(
            "/schedules/{id}/overrides/{oid}/delete",
            post(schedules::delete_override),
        )
        .route("/oncall", get(schedules::mine))
        .route("/profile", get(profile::page))
        .route("/profile/password", post(profile::password))
        .route(
            "/profile/test-notification",
            post(profile::test_notification),
        )
        .route("/profile/tokens", post(profile::create_token))
        .route("/profile/tokens/{id}/revoke", post(profile::revoke_token))
        .route("/profile/sessions/{id}/end", post(profile::end_session))
        .route("/policies", get(catalog::policies))
        .route("/services", get(catalog::services))
        .route("/sources", get(catalog::sources))
        .route("/sources/{id}/test-alert", post(sources::test_alert))
        .route("/heartbeats", get(catalog::heartbeats))
        .route("/support-hours", get(catalog::support_hours))
        .route("/users", get(catalog::users))
        .route("/teams", get(catalog::teams))
        .route("/catalog/{kind}", post(catalog::create))
        .route(
            "/catalog/{kind}/{id}",
            get(catalog::object).post(catalog::save),
        )
        .route("/catalog/{kind}/{id}/delete", post(catalog::delete))
        .route(
            "/maintenance",
            get(admin::maintenance).post(admin::start_maintenance),
        )
        .route("/maintenance/{id}/end", post(admin::end_maintenance))
        .route("/admin", get(admin::index))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/deliveries", get(admin::deliveries))
        .route("/admin/catalog", get(admin::catalog))
        .route("/ui/assets/{file}", get(assets::serve))
        .layer(axum::middleware::map_response(security_headers))
}

/// `/`: the alert list, or the sign-in page for a signed-out visitor.
async fn home(viewer: Option<Viewer>) -> Redirect {
    match viewer {
        Some(_) => Redirect::to("/alerts"),
        None => Redirect::to("/login"),
    }
}

/// The Content-Security-Policy of every page: our own scripts and styles
/// only, nothing inline, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn security_headers(res: Response) -> Response {
    with_security_headers(res)
}

/// `res` with the UI's security headers (CSP, no framing, no sniffing).
pub(crate) fn with_security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// One entry of the main navigation.
pub(crate) struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every signed-in page shows around its content.
pub(crate) struct Chrome {
    pub title: String,
    pub user_id: String,
    pub user_name: String,
    pub role: &'static str,
    pub csrf: String,
    pub nav: Vec<NavItem>,
}

const NAV: &[(&str, &str)] = &[
    ("/alerts", "Alerts"),
    ("/incidents", "Incidents"),
    ("/oncall", "My on-call"),
    ("/schedules", "Schedules"),
    ("/policies", "Policies"),
    ("/services", "Services"),
    ("/sources", "Sources"),
    ("/heartbeats", "Heartbeats"),
    ("/maintenance", "Maintenance"),
    ("/users", "Users"),
    ("/admin", "Admin"),
    ("/profile", "Profile"),
];

impl Chrome {
    pub fn new(viewer: &Viewer, title: impl Into<String>, section: &str) -> Self {
        Chrome {
            title: title.into(),
            user_id: viewer.user_id().to_owned(),
            user_name: viewer.signed_in.name.clone(),
            role: viewer.signed_in.principal.role.as_str(),
            csrf: viewer.csrf.clone(),
            nav: NAV
                .iter()
                .map(|(href, label)| NavItem {
                    href,
                    label,
                    current: *href == section,
                })
                .collect(),
        }
    }
}

/// An error as a page: what went wrong and what to do, with the status
/// the API would answer.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
    signed_in: bool,
}

/// A refusal or failure of the UI, rendered as an HTML page. Its status
/// and message come from the same mapping as the API's ([`ApiError`]).
pub struct UiError {
    pub api: ApiError,
    pub signed_in: bool,
}

impl UiError {
    pub fn from_app(context: &str, e: tocsin_app::AppError) -> Self {
        UiError {
            api: ApiError::from_app(context, e),
            signed_in: true,
        }
    }

    pub fn from_store(context: &str, e: tocsin_store::StoreError) -> Self {
        UiError {
            api: ApiError::from_store(context, e),
            signed_in: true,
        }
    }

    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        UiError {
            api: ApiError::new(status, code, message),
            signed_in: true,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl From<ApiError> for UiError {
    fn from(api: ApiError) -> Self {
        UiError {
            api,
            signed_in: true,
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.api.status;
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: &self.api.message,
            signed_in: self.signed_in,
        };
        (status, html(&page)).into_response()
    }
}

/// A rendered template as an HTML response (a render failure, a bug, is
/// a plain 500).
pub(crate) fn html(t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; see the server log",
            )
                .into_response()
        }
    }
}

/// A form body's fields, in order (repeated names kept, for checkboxes).
pub(crate) struct FormFields(pub Vec<(String, String)>);

impl FormFields {
    pub fn parse(body: &[u8]) -> Result<Self, UiError> {
        serde_urlencoded::from_bytes(body)
            .map(FormFields)
            .map_err(|e| UiError::bad_request(format!("the form could not be read: {e}")))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Refuse a POST whose `Origin` (or, without one, `Referer`) is not this
/// server: a page elsewhere cannot make a signed-in browser act.
pub(crate) fn check_origin(st: &AppState, headers: &HeaderMap) -> Result<(), UiError> {
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(from) = from else {
        // Not a browser (browsers send Origin on every POST); the CSRF
        // token still has to match.
        return Ok(());
    };
    let ours = |base: &str| {
        from == base
            || from
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let same_host = ["http://", "https://"]
        .iter()
        .any(|scheme| !host.is_empty() && ours(&format!("{scheme}{host}")));
    if ours(&st.0.public_url) || same_host {
        Ok(())
    } else {
        Err(UiError::forbidden(format!(
            "this form was sent from another site ({}); Tocsin only takes forms from its own pages",
            from.chars().take(100).collect::<String>()
        )))
    }
}

/// A short, readable "how long ago" of `at` relative to `now`.
pub(crate) fn ago(at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let s = (now - at).num_seconds();
    if s < 0 {
        return "just now".into();
    }
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h {}m ago", s / 3600, (s % 3600) / 60),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// A time as the UI prints it (UTC, to the second).
pub(crate) fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_reads_like_a_person_would_say_it() {
        let now = chrono::Utc::now();
        assert_eq!(ago(now - chrono::TimeDelta::seconds(5), now), "5s ago");
        assert_eq!(ago(now - chrono::TimeDelta::minutes(3), now), "3m ago");
        assert_eq!(ago(now - chrono::TimeDelta::minutes(75), now), "1h 15m ago");
        assert_eq!(ago(now - chrono::TimeDelta::days(3), now), "3d ago");
    }
}
