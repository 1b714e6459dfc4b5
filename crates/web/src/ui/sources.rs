//! What a source's and a heartbeat's page add to the catalog page: the URL
//! to send to (with its key, for those who may use it), ready-to-paste
//! configuration for the sender, a "send test alert" button, and the last
//! events this node received; a heartbeat's ping URL and state.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use tocsin_domain::{Permission, Principal, Scope, SourceType};

use super::{Posted, UiError, Viewer, ago, when};
use crate::state::AppState;

/// Whether `p` may see the key of source `id` (and so its full URL):
/// admins, and whoever may send test alerts through it.
fn may_see_key(st: &AppState, p: &Principal, kind: &str, id: &str) -> bool {
    if p.allows(Permission::EditCatalog, &Scope::Global) {
        return true;
    }
    let catalog = st.0.app.catalog.current();
    let target = match kind {
        "heartbeats" => format!("heartbeat:{id}"),
        _ => id.to_owned(),
    };
    p.allows(
        Permission::SendTestAlert,
        &Scope::Teams(catalog.target_teams("source", &target)),
    )
}

struct Event {
    at: String,
    ago: String,
    outcome: String,
    alert: Option<i64>,
}

#[derive(Template)]
#[template(path = "source_extra.html")]
struct SourceExtra {
    id: String,
    kind: &'static str,
    url: String,
    shows_key: bool,
    snippets: Vec<(&'static str, String)>,
    can_test: bool,
    csrf: String,
    events: Vec<Event>,
}

#[derive(Template)]
#[template(path = "heartbeat_extra.html")]
struct HeartbeatExtra {
    url: String,
    shows_key: bool,
    state: String,
    last_ping: String,
    due: String,
    pings: i64,
    alert: Option<i64>,
}

/// The URL and the sender's configuration of a source with key `key`.
fn source_urls(public: &str, kind: SourceType, key: &str) -> (String, Vec<(&'static str, String)>) {
    match kind {
        SourceType::Prometheus => {
            let url = format!("{public}/api/v1/events/prometheus/{key}");
            let snippet = format!(
                "# alertmanager.yml\nroute:\n  receiver: tocsin\n  group_by: [alertname, cluster, service]\nreceivers:\n  - name: tocsin\n    webhook_configs:\n      - url: {url}\n        send_resolved: true\n"
            );
            (url, vec![("alertmanager.yml", snippet)])
        }
        SourceType::Pagerduty => {
            let url = format!("{public}/v2/enqueue");
            (
                url.clone(),
                vec![
                    (
                        "alertmanager.yml (pagerduty_configs)",
                        format!(
                            "receivers:\n  - name: tocsin\n    pagerduty_configs:\n      - routing_key: {key}\n        url: {url}\n        send_resolved: true\n"
                        ),
                    ),
                    (
                        "PagerDuty Events API v2 (any client)",
                        format!(
                            "curl -X POST {url} -H 'Content-Type: application/json' -d '{{\"routing_key\": \"{key}\", \"event_action\": \"trigger\", \"payload\": {{\"summary\": \"Disk full on db-1\", \"source\": \"db-1\", \"severity\": \"critical\"}}}}'\n"
                        ),
                    ),
                ],
            )
        }
        SourceType::Opsgenie => (
            format!("{public}/v2/alerts"),
            vec![
                (
                    "alertmanager.yml (opsgenie_configs)",
                    format!(
                        "receivers:\n  - name: tocsin\n    opsgenie_configs:\n      - api_key: {key}\n        api_url: {public}/\n        send_resolved: true\n"
                    ),
                ),
                (
                    "Opsgenie Alert API (any client)",
                    format!(
                        "curl -X POST {public}/v2/alerts -H 'Authorization: GenieKey {key}' -H 'Content-Type: application/json' -d '{{\"message\": \"Disk full on db-1\", \"alias\": \"disk-db-1\", \"priority\": \"P2\"}}'\n"
                    ),
                ),
            ],
        ),
        SourceType::Ilert => {
            let url = format!("{public}/api/events");
            (
                url.clone(),
                vec![(
                    "ilert Events API (any client)",
                    format!(
                        "curl -X POST {url} -H 'Content-Type: application/json' -d '{{\"integrationKey\": \"{key}\", \"eventType\": \"ALERT\", \"summary\": \"Disk full on db-1\", \"alertKey\": \"disk-db-1\"}}'\n"
                    ),
                )],
            )
        }
    }
}

/// The kind's part of an object's page (empty for other kinds).
pub(crate) async fn extra(st: &AppState, viewer: &Viewer, kind: &str, id: &str) -> String {
    let live = st.live();
    let p = viewer.principal();
    let public = &st.0.public_url;
    let shows_key = may_see_key(st, p, kind, id);
    let hidden = "<key>".to_owned();
    let out = match kind {
        "sources" => {
            let Some(source) = live.catalog.sources.get(id) else {
                return String::new();
            };
            let key = match shows_key {
                true => live
                    .loaded
                    .secrets
                    .source_keys
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| hidden.clone()),
                false => hidden,
            };
            let (url, snippets) = source_urls(public, source.kind, &key);
            let now = st.now();
            SourceExtra {
                id: id.to_owned(),
                kind: source.kind.as_str(),
                url,
                shows_key,
                snippets,
                can_test: st.0.app.check_test_alert(p, id).is_ok(),
                csrf: viewer.csrf.clone(),
                events: st
                    .0
                    .metrics
                    .recent(id)
                    .into_iter()
                    .map(|e| Event {
                        at: when(e.at),
                        ago: ago(e.at, now),
                        outcome: e.outcome,
                        alert: e.alert_id,
                    })
                    .collect(),
            }
            .render()
        }
        "heartbeats" => {
            let key = match shows_key {
                true => live
                    .loaded
                    .secrets
                    .heartbeat_keys
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| hidden.clone()),
                false => hidden,
            };
            let row =
                st.0.store
                    .heartbeat_rows()
                    .await
                    .ok()
                    .and_then(|rows| rows.into_iter().find(|r| r.id == id));
            HeartbeatExtra {
                url: format!("{public}/api/v1/heartbeats/{key}"),
                shows_key,
                state: row
                    .as_ref()
                    .map(|r| r.state.clone())
                    .unwrap_or_else(|| "waiting for the first ping".into()),
                last_ping: row
                    .as_ref()
                    .map(|r| when(r.last_ping_at))
                    .unwrap_or_else(|| "never".into()),
                due: row.as_ref().map(|r| when(r.due_at)).unwrap_or_default(),
                pings: row.as_ref().map(|r| r.pings).unwrap_or(0),
                alert: row.and_then(|r| r.alert_id),
            }
            .render()
        }
        _ => return String::new(),
    };
    out.unwrap_or_else(|e| {
        tracing::error!(error = %e, "rendering a source's page");
        String::new()
    })
}

#[derive(Template)]
#[template(path = "new_key.html")]
struct NewKey {
    url: String,
    snippets: Vec<(&'static str, String)>,
}

/// The page part of a source or heartbeat just made, with its key shown once.
pub(crate) fn new_key_notice(st: &AppState, kind: &str, id: &str, key: &str) -> String {
    let public = &st.0.public_url;
    let (url, snippets) = match (kind, st.0.app.catalog.current().sources.get(id)) {
        ("sources", Some(s)) => source_urls(public, s.kind, key),
        _ => (format!("{public}/api/v1/heartbeats/{key}"), Vec::new()),
    };
    NewKey { url, snippets }.render().unwrap_or_default()
}

/// `POST /sources/{id}/test-alert`: send a test alert through the source's
/// own ingest path, then show the alert it made.
pub(crate) async fn test_alert(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form: _ }: Posted,
) -> Result<Response, UiError> {
    let alert =
        crate::testalert::send_test_alert(&st, viewer.principal(), &id, Default::default()).await?;
    Ok(Redirect::to(&format!("/alerts/{}?done=test", alert.id)).into_response())
}
