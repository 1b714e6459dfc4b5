//! The status page (SPEC §7): `/status` (HTML, no script), `/status.json`
//! (shaped like Statuspage's `summary.json`), `/status/feed.atom`,
//! `/status/badge/{service}.svg`, `/status/charts/{n}.svg`, and
//! `/status/internal` for signed-in users.
//!
//! A status page is hit hardest during an outage, so the public answers
//! come from a snapshot that every change invalidates: this node's changes
//! at once (`Application::status_epoch`), other nodes' and ingest's within
//! half a second (the stored `status_state.version`, one read by primary
//! key, polled by at most one request at a time while the others are
//! answered from the snapshot). A snapshot also ends at the next
//! maintenance edge, local midnight, or after a minute (today's uptime).
//! Answers carry `ETag` and `Last-Modified` and honour conditional GETs.

mod chart;
mod feed;
mod pages;
pub(crate) mod subscribe;
pub(crate) mod summary;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use sha2::Digest;

use crate::error::ApiError;
use crate::state::AppState;
use summary::{Audience, Inputs, PageSettings, Summary};

pub use tocsin_app::status::{ChartSettings, StatusSettings};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/status", get(pages::public))
        .route("/status.json", get(pages::json))
        .route("/status/feed.atom", get(pages::feed))
        .route("/status/internal", get(pages::internal))
        .route("/status/incidents/{id}", get(pages::incident))
        .route("/status/badge/{file}", get(pages::badge))
        .route("/status/charts/{file}", get(pages::chart))
        .route("/status/assets/status.css", get(pages::css))
        .route("/status/subscribe", axum::routing::post(subscribe::form))
        .route(
            "/status/subscriptions/{token}/{action}",
            get(subscribe::link_page).post(subscribe::link_act),
        )
}

/// How long a snapshot trusts the stored version before asking again.
const RECHECK: Duration = Duration::from_millis(500);
/// The longest a snapshot lives (today's uptime moves during an outage).
const MAX_AGE: Duration = Duration::from_secs(60);

/// One rendered answer with its validators.
pub(crate) struct Rendered {
    pub body: Bytes,
    pub etag: String,
    pub last_modified: DateTime<Utc>,
}

impl Rendered {
    fn new(body: Vec<u8>, previous: Option<&Rendered>, now: DateTime<Utc>) -> Rendered {
        let etag = format!("\"{}\"", hex::encode(&sha2::Sha256::digest(&body)[..12]));
        // Unchanged content keeps the time it last changed.
        let last_modified = match previous {
            Some(p) if p.etag == etag => p.last_modified,
            _ => now.trunc_subsecs(0),
        };
        Rendered {
            body: Bytes::from(body),
            etag,
            last_modified,
        }
    }

    /// A 200 with the body, or a 304 when the client has it.
    pub(crate) fn answer(&self, req: &HeaderMap, content_type: &'static str) -> Response {
        let fresh = match req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
            Some(tags) => tags
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == self.etag || t == "*"),
            None => req
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
                .is_some_and(|since| self.last_modified <= since),
        };
        let mut res = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            ([(header::CONTENT_TYPE, content_type)], self.body.clone()).into_response()
        };
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        let lm = self
            .last_modified
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        if let Ok(v) = HeaderValue::from_str(&lm) {
            h.insert(header::LAST_MODIFIED, v);
        }
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=5"),
        );
        res
    }
}

/// The public page as of one read of storage.
pub(crate) struct Snapshot {
    version: i64,
    epoch: u64,
    catalog: i64,
    checked: std::sync::Mutex<Instant>,
    expires: Instant,
    pub summary: Arc<Summary>,
    pub html: Rendered,
    pub json: Rendered,
    pub feed: Rendered,
}

impl Snapshot {
    fn fresh(&self, epoch: u64, catalog: i64) -> bool {
        let checked = self
            .checked
            .lock()
            .map(|c| *c)
            .unwrap_or_else(|p| *p.into_inner());
        self.epoch == epoch
            && self.catalog == catalog
            && checked.elapsed() < RECHECK
            && Instant::now() < self.expires
    }
}

/// Each node's public snapshot.
#[derive(Default)]
pub(crate) struct Cache {
    current: std::sync::RwLock<Option<Arc<Snapshot>>>,
    refresh: tokio::sync::Mutex<()>,
    pub charts: chart::Charts,
}

impl Cache {
    fn get(&self) -> Option<Arc<Snapshot>> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn put(&self, s: Arc<Snapshot>) {
        match self.current.write() {
            Ok(mut c) => *c = Some(s),
            Err(p) => *p.into_inner() = Some(s),
        }
    }
}

fn page_settings(st: &AppState) -> PageSettings<'_> {
    PageSettings {
        title: &st.0.status.title,
        url: format!("{}/status", st.0.public_url),
        tz: st.0.status.timezone,
    }
}

/// When a snapshot built at `now` stops being right by itself: a minute
/// on, or the next maintenance edge or local midnight if sooner.
fn expiry(st: &AppState, inp: &Inputs, now: DateTime<Utc>) -> Instant {
    let tz = st.0.status.timezone;
    let midnight = now
        .with_timezone(&tz)
        .date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 1))
        .and_then(|d| d.and_local_timezone(tz).earliest())
        .map(|d| d.with_timezone(&Utc));
    let edge = inp
        .windows
        .iter()
        .flat_map(|w| [w.starts_at, w.ends_at])
        .filter(|t| *t > now)
        .chain(midnight)
        .min();
    let wait = edge
        .map(|t| (t - now).to_std().unwrap_or_default())
        .unwrap_or(MAX_AGE)
        .min(MAX_AGE);
    Instant::now() + wait
}

/// The public snapshot, rebuilt when something changed.
pub(crate) async fn snapshot(st: &AppState) -> Result<Arc<Snapshot>, ApiError> {
    let cache = &st.0.status_cache;
    let epoch = st.0.app.status_epoch();
    let catalog = st.live().catalog.version;
    let current = cache.get();
    if let Some(s) = &current
        && s.fresh(epoch, catalog)
    {
        return Ok(s.clone());
    }
    // One request looks; the others are answered from what there is.
    let _guard = match (cache.refresh.try_lock(), &current) {
        (Ok(g), _) => g,
        (Err(_), Some(s)) => return Ok(s.clone()),
        (Err(_), None) => cache.refresh.lock().await,
    };
    let current = cache.get();
    if let Some(s) = &current
        && s.fresh(epoch, catalog)
    {
        return Ok(s.clone());
    }
    let stored =
        st.0.store
            .status_version()
            .await
            .map_err(|e| ApiError::from_store("status page", e))?;
    let version = stored.version;
    if let Some(s) = &current
        && s.version == version
        && s.epoch == epoch
        && s.catalog == catalog
        && Instant::now() < s.expires
    {
        if let Ok(mut c) = s.checked.lock() {
            *c = Instant::now();
        }
        return Ok(s.clone());
    }
    let now = st.now();
    let inputs = Inputs::read(st.0.store.as_ref(), stored, now)
        .await
        .map_err(|e| ApiError::from_store("status page", e))?;
    let events =
        st.0.store
            .public_incident_events(50)
            .await
            .map_err(|e| ApiError::from_store("status feed", e))?;
    let live = st.live();
    let summary = summary::build(
        &live.catalog,
        &inputs,
        &page_settings(st),
        Audience::Public,
        now,
    );
    let prev = current.as_deref();
    let html = pages::render_page(st, &summary, Audience::Public, None)?;
    let json = serde_json::to_vec(&summary).map_err(|e| ApiError::internal("status JSON", &e))?;
    let feed_body = feed::atom(st, &summary, &events, &live.catalog);
    let snap = Arc::new(Snapshot {
        version,
        epoch,
        catalog,
        checked: std::sync::Mutex::new(Instant::now()),
        expires: expiry(st, &inputs, now),
        html: Rendered::new(html.into_bytes(), prev.map(|p| &p.html), now),
        json: Rendered::new(json, prev.map(|p| &p.json), now),
        feed: Rendered::new(feed_body.into_bytes(), prev.map(|p| &p.feed), now),
        summary: Arc::new(summary),
    });
    cache.put(snap.clone());
    Ok(snap)
}

/// The internal page's summary: built for each request (signed-in users
/// only, never cached).
pub(crate) async fn internal_summary(st: &AppState) -> Result<Summary, ApiError> {
    let now = st.now();
    let stored =
        st.0.store
            .status_version()
            .await
            .map_err(|e| ApiError::from_store("status page", e))?;
    let inputs = Inputs::read(st.0.store.as_ref(), stored, now)
        .await
        .map_err(|e| ApiError::from_store("status page", e))?;
    Ok(summary::build(
        &st.live().catalog,
        &inputs,
        &page_settings(st),
        Audience::Internal,
        now,
    ))
}

/// A day as the bars name it.
pub(crate) fn day_label(d: chrono::NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

/// `TimeDelta` as a chart's default step needs it.
pub(crate) fn seconds(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}
