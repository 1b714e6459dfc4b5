//! Single sign-on through an OpenID Connect provider: the authorization
//! code flow with PKCE, a nonce and a state. `/auth/oidc/start` sends the
//! browser to the provider with what the callback needs to check kept in a
//! short-lived cookie, signed with the key every node shares (so the
//! callback may land on any node); `/auth/oidc/callback` exchanges the code,
//! verifies the ID token (signature, issuer, audience, expiry, nonce) and
//! signs in the user whose email the provider vouched for.

use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{KeyInit, Mac};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::login::{client_of, signed_in};
use super::session::{cookie, safe_next, set_cookie};
use super::{OidcSettings, UiError};
use crate::state::AppState;

/// The cookie that carries the flow's state to the callback.
const FLOW_COOKIE: &str = "tocsin_oidc";
/// How long a sign-in at the provider may take.
const FLOW_SECONDS: i64 = 600;
/// How long the provider's metadata (endpoints, keys) is kept.
const METADATA_TTL: Duration = Duration::from_secs(300);

/// The provider's metadata, read once and kept a while.
#[derive(Default)]
pub(crate) struct Provider {
    cached: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

/// What the callback checks, from the start of the flow.
#[derive(Serialize, Deserialize)]
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    /// Unix seconds after which the flow is void.
    until: i64,
}

fn sso_error(status: StatusCode, message: impl Into<String>) -> UiError {
    let mut e = UiError::new(status, "sso", message);
    e.signed_in = false;
    e
}

/// The HTTP client of the flow: no redirects (the provider's endpoints are
/// called as they are given), bounded time.
fn http() -> Result<reqwest::Client, UiError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| UiError::from(crate::ApiError::internal("oidc http client", &e)))
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HttpError(String);

/// Our reqwest as the library's HTTP client.
async fn send(
    client: reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let res = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let mut out = axum::http::Response::builder().status(res.status());
    for (k, v) in res.headers() {
        out = out.header(k, v);
    }
    let bytes = res.bytes().await.map_err(|e| HttpError(e.to_string()))?;
    out.body(bytes.to_vec())
        .map_err(|e| HttpError(e.to_string()))
}

impl Provider {
    async fn metadata(&self, o: &OidcSettings) -> Result<CoreProviderMetadata, UiError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, m)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(o.issuer.clone()).map_err(|e| {
            sso_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("auth.oidc.issuer is not a URL ({e}); fix tocsin.yaml"),
            )
        })?;
        let client = http()?;
        let call = move |req| send(client.clone(), req);
        let m = CoreProviderMetadata::discover_async(issuer, &call)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, issuer = %o.issuer, "single sign-on: the provider's discovery failed");
                sso_error(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "the sign-on provider at {} did not answer as expected; try again, or sign in with a password",
                        o.issuer
                    ),
                )
            })?;
        *cached = Some((Instant::now(), m.clone()));
        Ok(m)
    }
}

fn settings(st: &AppState) -> Result<&OidcSettings, UiError> {
    st.0.ui.oidc.as_ref().ok_or_else(|| {
        sso_error(
            StatusCode::NOT_FOUND,
            "single sign-on is not set up; an admin adds auth.oidc to tocsin.yaml",
        )
    })
}

fn redirect_url(st: &AppState) -> String {
    format!("{}/auth/oidc/callback", st.0.public_url)
}

/// The client as the provider's metadata describes it (its token and
/// userinfo endpoints may be missing), with our callback.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The provider's client for this server: its metadata, our id, secret
/// and callback URL.
async fn client(st: &AppState, o: &OidcSettings) -> Result<Client, UiError> {
    let meta = st.0.oidc.metadata(o).await?;
    let redirect = RedirectUrl::new(redirect_url(st)).map_err(|e| {
        sso_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("server.public_url does not make a callback URL ({e})"),
        )
    })?;
    Ok(CoreClient::from_provider_metadata(
        meta,
        ClientId::new(o.client_id.clone()),
        Some(ClientSecret::new(o.client_secret.clone())),
    )
    .set_redirect_uri(redirect))
}

/// The MAC of a flow cookie, with the key every node shares.
fn sign(st: &AppState, payload: &str) -> String {
    let secret = st.live().loaded.secrets.link_secret.clone();
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(b"tocsin oidc flow\0");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `GET /auth/oidc/start?next=`
pub(crate) async fn start(
    State(st): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let o = settings(&st)?;
    let client = client(&st, o).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut auth = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for s in &o.scopes {
        auth = auth.add_scope(Scope::new(s.clone()));
    }
    let (url, state, nonce) = auth.set_pkce_challenge(challenge).url();
    let flow = Flow {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        next: safe_next(crate::query_param(raw.as_deref(), "next").as_deref()),
        until: st.now().timestamp() + FLOW_SECONDS,
    };
    let payload = serde_json::to_string(&flow)
        .map_err(|e| UiError::from(crate::ApiError::internal("oidc flow", &e)))?;
    let value = format!(
        "{}.{}",
        hex::encode(payload.as_bytes()),
        sign(&st, &payload)
    );
    let mut res = Redirect::to(url.as_str()).into_response();
    set_cookie(&mut res, &st, FLOW_COOKIE, &value, Some(FLOW_SECONDS));
    Ok(res)
}

/// The flow of the request's cookie, if it is ours, intact and current.
fn flow_of(st: &AppState, headers: &HeaderMap) -> Result<Flow, UiError> {
    let stale = || {
        sso_error(
            StatusCode::BAD_REQUEST,
            "this sign-on did not start here, or took too long; go back to the sign-in page and try again",
        )
    };
    let raw = cookie(headers, FLOW_COOKIE).ok_or_else(stale)?;
    let (hexed, mac) = raw.split_once('.').ok_or_else(stale)?;
    let payload = hex::decode(hexed)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(stale)?;
    let expected = sign(st, &payload);
    if expected.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            mac.as_bytes(),
        ))
    {
        return Err(stale());
    }
    let flow: Flow = serde_json::from_str(&payload).map_err(|_| stale())?;
    if flow.until < st.now().timestamp() {
        return Err(stale());
    }
    Ok(flow)
}

/// `GET /auth/oidc/callback?code=&state=` (or `?error=`)
pub(crate) async fn callback(
    State(st): State<AppState>,
    RawQuery(raw): RawQuery,
    req: axum::extract::Request,
) -> Result<Response, UiError> {
    let o = settings(&st)?;
    let (parts, _) = req.into_parts();
    let q = |k: &str| crate::query_param(raw.as_deref(), k);
    if let Some(err) = q("error") {
        let why = q("error_description").unwrap_or_default();
        return Err(sso_error(
            StatusCode::UNAUTHORIZED,
            format!(
                "the sign-on provider refused: {err} {why}; try again, or sign in with a password"
            ),
        ));
    }
    let flow = flow_of(&st, &parts.headers)?;
    let state = q("state").unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        state.as_bytes(),
        flow.state.as_bytes(),
    )) {
        return Err(sso_error(
            StatusCode::BAD_REQUEST,
            "the sign-on's state does not match this browser's; start again from the sign-in page",
        ));
    }
    let code = q("code").ok_or_else(|| {
        sso_error(
            StatusCode::BAD_REQUEST,
            "the provider sent no code; start again from the sign-in page",
        )
    })?;
    let client = client(&st, o).await?;
    let http = http()?;
    let call = move |req| send(http.clone(), req);
    let refused = |what: &str, e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "single sign-on: {what}");
        sso_error(
            StatusCode::UNAUTHORIZED,
            format!("single sign-on failed ({what}); try again, or sign in with a password"),
        )
    };
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| refused("the provider has no token endpoint", &e))?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
        .request_async(&call)
        .await
        .map_err(|e| refused("the code could not be exchanged", &e))?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| refused("the provider sent no ID token", &"none"))?;
    let claims = id_token
        .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce.clone()))
        .map_err(|e| refused("the ID token did not verify", &e))?;
    let Some(email) = claims.email().map(|e| e.as_str().to_owned()) else {
        return Err(sso_error(
            StatusCode::FORBIDDEN,
            "the provider did not say your email (the `email` claim); ask its admin to release it to Tocsin (scope `email`)",
        ));
    };
    if claims.email_verified() == Some(false) {
        return Err(sso_error(
            StatusCode::FORBIDDEN,
            format!("the provider has not verified the email {email}; verify it there first"),
        ));
    }
    let client_info = client_of(&parts.extensions, &parts.headers);
    let issued =
        st.0.app
            .sign_in_email(
                &email,
                o.allow_unknown_users,
                &client_info,
                &st.0.ui.sessions,
            )
            .await
            .map_err(|e| match e {
                tocsin_app::AppError::Forbidden(m) => sso_error(StatusCode::FORBIDDEN, m),
                e => UiError::from_app("single sign-on", e),
            })?;
    let mut res = signed_in(&st, &issued, &flow.next);
    set_cookie(&mut res, &st, FLOW_COOKIE, "", Some(0));
    Ok(res)
}
