//! The signed-in browser: its session cookie, the CSRF token bound to the
//! session, and the cookies the UI sets.

use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tocsin_app::signin::SignedIn;

use super::{FormFields, UiError, check_origin};
use crate::state::AppState;

/// The session cookie: the session's secret.
pub(crate) const SESSION_COOKIE: &str = "tocsin_session";
/// The sign-in form's CSRF cookie (before there is a session).
pub(crate) const LOGIN_COOKIE: &str = "tocsin_login";

/// The value of cookie `name` in the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Add a `Set-Cookie` to `res`: `HttpOnly`, `SameSite=Lax`, path `/`,
/// `Secure` when configured; `max_age` in seconds (`Some(0)` deletes it;
/// `None` lasts for the browser session).
pub(crate) fn set_cookie(
    res: &mut Response,
    st: &AppState,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) {
    let mut c = cookie::Cookie::build((name.to_owned(), value.to_owned()))
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .path("/")
        .secure(st.0.ui.secure_cookies);
    if let Some(s) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(s));
    }
    if let Ok(v) = c.build().to_string().parse() {
        res.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
}

/// The answer that signs the browser out: its session cookie deleted, on
/// to the sign-in page.
pub(crate) fn signed_out(st: &AppState) -> Response {
    let mut res = Redirect::to("/login?why=bye").into_response();
    set_cookie(&mut res, st, SESSION_COOKIE, "", Some(0));
    res
}

/// The CSRF token of a session: derived from its secret, which only the
/// `HttpOnly` cookie holds, so another site can neither read nor forge it.
pub(crate) fn csrf_of(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"tocsin csrf\0");
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

/// Whether the form's `_csrf` field is `expected` (constant time).
pub(crate) fn csrf_matches(form: &FormFields, expected: &str) -> bool {
    form.get("_csrf")
        .is_some_and(|got| bool::from(got.as_bytes().ct_eq(expected.as_bytes())))
}

/// A signed-in browser.
pub(crate) struct Viewer {
    pub signed_in: SignedIn,
    /// The CSRF token its forms carry.
    pub csrf: String,
    /// The cookie's secret (a long-lived stream re-checks the session).
    pub secret: String,
}

impl Viewer {
    pub fn user_id(&self) -> &str {
        &self.signed_in.session.user
    }

    pub fn principal(&self) -> &tocsin_domain::Principal {
        &self.signed_in.principal
    }

    /// Fail unless a form POST is this session's own: its `Origin` is this
    /// server and its CSRF token matches. Nothing is read or changed first.
    pub fn check_form(
        &self,
        st: &AppState,
        headers: &HeaderMap,
        form: &FormFields,
    ) -> Result<(), UiError> {
        check_origin(st, headers)?;
        if !csrf_matches(form, &self.csrf) {
            return Err(UiError::forbidden(
                "the form's security token is missing or stale; reload the page and try again",
            ));
        }
        Ok(())
    }
}

/// The largest form the UI takes (a catalog object's definition included).
const FORM_LIMIT: usize = 256 * 1024;

/// A form the signed-in browser posted from one of Tocsin's own pages:
/// the viewer and the fields, once `Origin` and the CSRF token passed.
/// Nothing is read or changed before that.
pub(crate) struct Posted {
    pub viewer: Viewer,
    pub form: FormFields,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = <Viewer as FromRequestParts<AppState>>::from_request_parts(&mut parts, st)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
            UiError::bad_request("the form is too large (256 KiB at most)").into_response()
        })?;
        let form = FormFields::parse(&bytes).map_err(IntoResponse::into_response)?;
        viewer
            .check_form(st, &parts.headers, &form)
            .map_err(IntoResponse::into_response)?;
        Ok(Posted { viewer, form })
    }
}

/// Why there is no viewer: the browser goes to the sign-in page, told why.
pub(crate) struct SignInFirst {
    why: &'static str,
    next: Option<String>,
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let mut q = vec![("why", self.why.to_owned())];
        if let Some(n) = self.next {
            q.push(("next", n));
        }
        let q = serde_urlencoded::to_string(q).unwrap_or_default();
        Redirect::to(&format!("/login?{q}")).into_response()
    }
}

/// The path to come back to after signing in (same site only).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/alerts".to_owned(),
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let next = (parts.method == Method::GET)
            .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_owned()))
            .flatten();
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(SignInFirst {
                why: "signed-out",
                next,
            });
        };
        match st.0.app.session(&secret, &st.0.ui.sessions).await {
            Ok(signed_in) => Ok(Viewer {
                signed_in,
                csrf: csrf_of(&secret),
                secret,
            }),
            Err(tocsin_app::AppError::Unauthorized(m)) => Err(SignInFirst {
                why: if m.contains("expired") {
                    "expired"
                } else {
                    "signed-out"
                },
                next,
            }),
            Err(e) => {
                tracing::error!(error = %e, "reading a session");
                Err(SignInFirst {
                    why: "unavailable",
                    next,
                })
            }
        }
    }
}

impl OptionalFromRequestParts<AppState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <Viewer as FromRequestParts<AppState>>::from_request_parts(parts, st)
                .await
                .ok(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/alerts/3")), "/alerts/3");
        assert_eq!(safe_next(Some("//evil.example/x")), "/alerts");
        assert_eq!(safe_next(Some("https://evil.example/")), "/alerts");
        assert_eq!(safe_next(Some("/\\evil.example")), "/alerts");
        assert_eq!(safe_next(None), "/alerts");
    }

    #[test]
    fn the_csrf_token_depends_on_the_session() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a").len(), 64);
        let form = FormFields(vec![("_csrf".into(), csrf_of("a"))]);
        assert!(csrf_matches(&form, &csrf_of("a")));
        assert!(!csrf_matches(&form, &csrf_of("b")));
        assert!(!csrf_matches(&FormFields(vec![]), &csrf_of("a")));
    }
}
