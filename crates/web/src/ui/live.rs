//! Live updates of the alert list, pushed by Server-Sent Events.
//!
//! One poller per node asks storage what changed (`updated_at` at or after
//! its last look, less an overlap for clock skew between nodes), so an
//! alert that arrived at another node sharing the database shows up too;
//! every open list subscribes to its batches and keeps what matches its
//! own filters. The poller runs only while somebody watches. A storm that
//! changes more than [`MAX_BATCH`] alerts between two looks is sent as one
//! `reload` event instead of rows.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, TimeDelta, Utc};
use tocsin_app::Application;
use tocsin_domain::AlertStatus;
use tocsin_store::Alert;
use tokio::sync::broadcast;

use super::alerts::{filter_of, row_html};
use super::{UiError, Viewer};
use crate::state::AppState;

/// How often the poller looks.
const POLL: Duration = Duration::from_millis(700);
/// How far back each look reaches before the previous one (nodes' clocks
/// may differ by this much, and a commit may land after its timestamp).
const OVERLAP: TimeDelta = TimeDelta::seconds(3);
/// More changed alerts than this in one look: the lists reload instead.
pub(crate) const MAX_BATCH: u32 = 300;
/// Counting alerts by status reads every alert's index entry: at most this
/// often, however many changes arrive.
const COUNT_EVERY: Duration = Duration::from_secs(3);
/// How often an open stream checks that its session still holds.
const RECHECK: Duration = Duration::from_secs(60);

/// What the poller saw in one look.
#[derive(Debug)]
pub(crate) enum Batch {
    Changed {
        alerts: Vec<Alert>,
        counts: Vec<(AlertStatus, i64)>,
    },
    /// Too many changes to send one by one.
    Reload,
}

/// The node's poller, started by the first subscriber.
#[derive(Default)]
pub(crate) struct Hub {
    tx: OnceLock<broadcast::Sender<Arc<Batch>>>,
}

impl Hub {
    pub(crate) fn subscribe(&self, app: &Arc<Application>) -> broadcast::Receiver<Arc<Batch>> {
        self.tx
            .get_or_init(|| {
                let (tx, _) = broadcast::channel(64);
                tokio::spawn(poll(app.clone(), tx.clone()));
                tx
            })
            .subscribe()
    }
}

async fn poll(app: Arc<Application>, tx: broadcast::Sender<Arc<Batch>>) {
    let mut since = app.now();
    // The version of each alert already sent, so that the overlap does
    // not send it twice.
    let mut sent: HashMap<i64, DateTime<Utc>> = HashMap::new();
    let mut counted: Option<tokio::time::Instant> = None;
    // Changes were sent without counts: the next count is owed.
    let mut owed = false;
    loop {
        tokio::time::sleep(POLL).await;
        let started = app.now();
        if tx.receiver_count() == 0 {
            since = started;
            sent.clear();
            continue;
        }
        let from = since - OVERLAP;
        let changed = match app.store.alerts_changed_since(from, MAX_BATCH + 1).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "live alert list: storage did not answer; trying again");
                continue;
            }
        };
        let batch = if changed.len() > MAX_BATCH as usize {
            sent.clear();
            Some(Batch::Reload)
        } else {
            let fresh: Vec<Alert> = changed
                .into_iter()
                .filter(|a| sent.get(&a.id) != Some(&a.updated_at))
                .collect();
            for a in &fresh {
                sent.insert(a.id, a.updated_at);
            }
            sent.retain(|_, at| *at >= from);
            // Counts go out at most every COUNT_EVERY: with the changes when
            // due, else with a later look (with or without changes).
            let due = counted.is_none_or(|at| at.elapsed() >= COUNT_EVERY);
            let counts = if due && (owed || !fresh.is_empty()) {
                counted = Some(tokio::time::Instant::now());
                owed = false;
                app.store.count_by_status().await.unwrap_or_else(|e| {
                    tracing::debug!(error = %e, "live alert list: counting failed");
                    Vec::new()
                })
            } else {
                owed |= !fresh.is_empty();
                Vec::new()
            };
            if fresh.is_empty() && counts.is_empty() {
                None
            } else {
                Some(Batch::Changed {
                    alerts: fresh,
                    counts,
                })
            }
        };
        since = started;
        if let Some(b) = batch {
            let _ = tx.send(Arc::new(b));
        }
    }
}

fn json_event(name: &str, v: serde_json::Value) -> Event {
    Event::default().event(name).data(v.to_string())
}

/// The events one viewer gets for one batch.
fn events_for(
    st: &AppState,
    viewer: &tocsin_domain::Principal,
    filter: &tocsin_store::AlertFilter,
    batch: &Batch,
) -> Vec<Event> {
    match batch {
        Batch::Reload => vec![json_event("reload", serde_json::json!({}))],
        Batch::Changed { alerts, counts } => {
            let now = st.0.app.now();
            let mut out: Vec<Event> = alerts
                .iter()
                .map(|a| {
                    if filter.matches(a) {
                        json_event(
                            "alert",
                            serde_json::json!({
                                "id": a.id,
                                "status": a.status,
                                "html": row_html(st, viewer, a, now),
                            }),
                        )
                    } else {
                        json_event("gone", serde_json::json!({"id": a.id}))
                    }
                })
                .collect();
            if !counts.is_empty() {
                let map: serde_json::Map<String, serde_json::Value> = counts
                    .iter()
                    .map(|(s, n)| (s.as_str().to_owned(), (*n).into()))
                    .collect();
                out.push(json_event("counts", serde_json::Value::Object(map)));
            }
            out
        }
    }
}

/// `GET /alerts/live?<the list's filters>`: the list's changes as they
/// happen. The stream ends when the session does.
pub(crate) async fn stream(
    State(st): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<axum::response::Response, UiError> {
    use axum::response::IntoResponse;
    let (filter, _) = filter_of(raw.as_deref())?;
    let rx = st.0.live_alerts.subscribe(&st.0.app);
    struct S {
        st: AppState,
        viewer: Viewer,
        filter: tocsin_store::AlertFilter,
        rx: broadcast::Receiver<Arc<Batch>>,
        queue: std::collections::VecDeque<Event>,
        checked: tokio::time::Instant,
        hello: bool,
    }
    let state = S {
        st,
        viewer,
        filter,
        rx,
        queue: Default::default(),
        checked: tokio::time::Instant::now(),
        hello: true,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        if s.hello {
            s.hello = false;
            let hello: Result<Event, Infallible> = Ok(json_event("hello", serde_json::json!({})));
            return Some((hello, s));
        }
        loop {
            if let Some(e) = s.queue.pop_front() {
                let e: Result<Event, Infallible> = Ok(e);
                return Some((e, s));
            }
            if s.checked.elapsed() >= RECHECK {
                s.checked = tokio::time::Instant::now();
                let secret = s.viewer.secret.clone();
                if s.st
                    .0
                    .app
                    .session(&secret, &s.st.0.ui.sessions)
                    .await
                    .is_err()
                {
                    return None;
                }
            }
            match tokio::time::timeout(RECHECK, s.rx.recv()).await {
                Err(_) => continue,
                Ok(Ok(batch)) => {
                    let evs = events_for(&s.st, s.viewer.principal(), &s.filter, &batch);
                    s.queue.extend(evs);
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    s.queue
                        .push_back(json_event("reload", serde_json::json!({})));
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    });
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    // A reverse proxy must pass events on as they come (nginx buffers
    // unless told not to).
    Ok((
        [("x-accel-buffering", "no"), ("cache-control", "no-cache")],
        sse,
    )
        .into_response())
}
