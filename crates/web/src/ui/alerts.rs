//! The alert list (filters, counts per status, bulk accept/resolve, live
//! updates) and the alert page (timeline, escalation, notifications,
//! actions). Actions call the same use-cases as the API.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use tocsin_app::Assignee;
use tocsin_domain::{AlertStatus, Permission, Principal, Scope};
use tocsin_store::{Alert, AlertFilter, Transition, TransitionResult};

use super::{Chrome, Posted, UiError, Viewer, ago, html, when};
use crate::state::AppState;

/// One row of the alert list (also what the live stream sends).
#[derive(Template)]
#[template(path = "alert_row.html")]
pub(crate) struct AlertRow<'a> {
    pub a: &'a Alert,
    pub age: String,
    pub can_act: bool,
}

/// Fail unless `p` may act on `a` (its source's, service's and policy's
/// teams); the refusal names the permission.
fn check_act(st: &AppState, p: &Principal, a: &Alert) -> Result<(), tocsin_domain::Denied> {
    let teams = st.0.app.catalog.current().alert_teams(
        &a.source_id,
        a.service_id.as_deref(),
        a.policy_id.as_deref(),
    );
    p.check(
        Permission::ActOnAlert,
        &Scope::Teams(teams),
        &format!("alert {}", a.id),
    )
}

/// Whether `p` may act on `a` (the buttons shown).
pub(crate) fn may_act(st: &AppState, p: &Principal, a: &Alert) -> bool {
    check_act(st, p, a).is_ok()
}

/// A row's HTML.
pub(crate) fn row_html(st: &AppState, p: &Principal, a: &Alert, now: DateTime<Utc>) -> String {
    let row = AlertRow {
        a,
        age: ago(a.created_at, now),
        can_act: may_act(st, p, a),
    };
    row.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "rendering an alert row");
        String::new()
    })
}

/// The list's filters as the query string gives them: empty form fields
/// are no filter.
pub(crate) fn filter_of(
    raw: Option<&str>,
) -> Result<(AlertFilter, Vec<(String, String)>), UiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| UiError::bad_request(format!("query string: {e}")))?;
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, v)| !v.trim().is_empty() && k != "done")
        .map(|(k, v)| (k, v.trim().to_owned()))
        .collect();
    let query = serde_urlencoded::to_string(&kept).unwrap_or_default();
    let filter = crate::alerts::parse_filter(Some(&query))?;
    Ok((filter, kept))
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<String>,
    counts: Vec<(&'static str, i64)>,
    status: String,
    source: String,
    service: String,
    severity: String,
    label: String,
    sources: Vec<String>,
    services: Vec<String>,
    query: String,
    older: Option<String>,
    any_actionable: bool,
    done: Option<String>,
    /// No cursor: new alerts are added at the top as they arrive.
    first_page: bool,
}

fn one(kept: &[(String, String)], key: &str) -> String {
    kept.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// `GET /alerts`
pub(crate) async fn list(
    State(st): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let (filter, kept) = filter_of(raw.as_deref())?;
    let store = &st.0.store;
    let page = store
        .list_alerts(&filter)
        .await
        .map_err(|e| UiError::from_store("list alerts", e))?;
    let counts = store
        .count_by_status()
        .await
        .map_err(|e| UiError::from_store("count alerts", e))?;
    let now = st.0.app.now();
    let p = viewer.principal();
    let rows: Vec<String> = page
        .alerts
        .iter()
        .map(|a| row_html(&st, p, a, now))
        .collect();
    let any_actionable = page.alerts.iter().any(|a| may_act(&st, p, a));
    let catalog = st.0.app.catalog.current();
    let no_cursor: Vec<(String, String)> = kept
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    let query = serde_urlencoded::to_string(&no_cursor).unwrap_or_default();
    let older = page.next_before_id.map(|id| {
        let mut q = no_cursor.clone();
        q.push(("cursor".into(), id.to_string()));
        serde_urlencoded::to_string(&q).unwrap_or_default()
    });
    let count = |s: AlertStatus| {
        counts
            .iter()
            .find(|(k, _)| *k == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let done = crate::query_param(raw.as_deref(), "done").and_then(|d| match d.as_str() {
        "accept" => Some("Accepted.".to_owned()),
        "resolve" => Some("Resolved.".to_owned()),
        _ => None,
    });
    let page = ListPage {
        c: Chrome::new(&viewer, "Alerts", "/alerts"),
        rows,
        counts: vec![
            ("pending", count(AlertStatus::Pending)),
            ("accepted", count(AlertStatus::Accepted)),
            ("resolved", count(AlertStatus::Resolved)),
        ],
        status: one(&kept, "status"),
        source: one(&kept, "source"),
        service: one(&kept, "service"),
        severity: one(&kept, "severity"),
        label: one(&kept, "label"),
        sources: catalog.sources.keys().cloned().collect(),
        services: catalog.services.keys().cloned().collect(),
        query,
        older,
        any_actionable,
        done,
        first_page: filter.before_id.is_none(),
    };
    Ok(html(&page))
}

/// `POST /alerts/bulk`: accept or resolve every checked alert.
pub(crate) async fn bulk(
    State(st): State<AppState>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    let (t, word) = match form.get("action") {
        Some("accept") => (Transition::Accept, "accept"),
        Some("resolve") => (Transition::Resolve, "resolve"),
        other => {
            return Err(UiError::bad_request(format!(
                "unknown bulk action `{}`; use accept or resolve",
                other.unwrap_or_default()
            )));
        }
    };
    let ids = form
        .all("id")
        .map(|v| crate::alerts::parse_id(v).map_err(UiError::from))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Err(UiError::bad_request(
            "no alert was checked; tick the alerts to act on first",
        ));
    }
    if ids.len() > 500 {
        return Err(UiError::bad_request("at most 500 alerts at a time"));
    }
    // Every alert is checked before any changes: a bulk action the user
    // may not take on one of them changes none.
    for id in &ids {
        let Some(a) =
            st.0.store
                .get_alert(*id)
                .await
                .map_err(|e| UiError::from_store("bulk action", e))?
        else {
            return Err(UiError::not_found(format!("no alert {id}")));
        };
        check_act(&st, viewer.principal(), &a).map_err(|d| UiError::forbidden(d.message))?;
    }
    for id in ids {
        st.0.app
            .transition_as(viewer.principal(), "web", id, t)
            .await
            .map_err(|e| UiError::from_app("bulk action", e))?;
    }
    let back = form.get("back").unwrap_or_default();
    let sep = if back.is_empty() { "" } else { "&" };
    Ok(Redirect::to(&format!(
        "/alerts?{}{sep}done={word}",
        back.trim_start_matches('?')
    ))
    .into_response())
}

/// A label or annotation pair.
struct Pair {
    name: String,
    value: String,
}

/// One timeline entry as shown.
struct TimelineRow {
    at: String,
    kind: String,
    actor: String,
    channel: String,
    message: String,
}

struct StepRow {
    level: i64,
    round: i64,
    due: String,
    status: String,
}

struct DeliveryRow {
    user: String,
    contact: String,
    channel: String,
    due: String,
    status: String,
    attempts: i64,
    error: String,
    sent: String,
}

#[derive(Template)]
#[template(path = "alert.html")]
struct AlertPage {
    c: Chrome,
    a: Alert,
    age: String,
    created: String,
    labels: Vec<Pair>,
    members: Vec<(String, String, Vec<Pair>)>,
    timeline: Vec<TimelineRow>,
    steps: Vec<StepRow>,
    deliveries: Vec<DeliveryRow>,
    can_act: bool,
    users: Vec<(String, String)>,
    policies: Vec<(String, String)>,
    done: Option<&'static str>,
}

fn pairs(m: &std::collections::BTreeMap<String, String>) -> Vec<Pair> {
    m.iter()
        .map(|(k, v)| Pair {
            name: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// `GET /alerts/{id}`
pub(crate) async fn page(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let id = crate::alerts::parse_id(&id)?;
    let crate::alerts::AlertWithTimeline {
        alert: a,
        timeline,
        escalation: steps,
        notifications: deliveries,
    } = crate::alerts::load_alert(&st, id).await?;
    let now = st.0.app.now();
    let catalog = st.0.app.catalog.current();
    let done = crate::query_param(raw.as_deref(), "done").and_then(|d| match d.as_str() {
        "accept" => Some("Accepted: escalation stopped."),
        "unaccept" => Some("Un-accepted: escalation starts again at level 1."),
        "resolve" => Some("Resolved."),
        "comment" => Some("Comment added."),
        "reassign" => Some("Reassigned: escalation starts again with the new assignee."),
        _ => None,
    });
    let page = AlertPage {
        c: Chrome::new(&viewer, format!("Alert {id}"), "/alerts"),
        age: ago(a.created_at, now),
        created: when(a.created_at),
        labels: pairs(&a.labels),
        members: a
            .members
            .iter()
            .map(|m| {
                (
                    m.fingerprint.clone(),
                    format!("{:?}", m.status).to_lowercase(),
                    pairs(&m.labels),
                )
            })
            .collect(),
        timeline: timeline
            .into_iter()
            .map(|t| TimelineRow {
                at: when(t.at),
                kind: t.kind,
                actor: t.actor,
                channel: t.channel,
                message: t.message,
            })
            .collect(),
        steps: steps
            .into_iter()
            .map(|s| StepRow {
                level: s.level + 1,
                round: s.round + 1,
                due: when(s.due_at),
                status: s.status,
            })
            .collect(),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryRow {
                user: d.user_id,
                contact: d.contact_id,
                channel: d.channel,
                due: when(d.due_at),
                status: d.status,
                attempts: d.attempts,
                error: d.last_error.unwrap_or_default(),
                sent: d.sent_at.map(when).unwrap_or_default(),
            })
            .collect(),
        can_act: may_act(&st, viewer.principal(), &a),
        users: catalog
            .users
            .values()
            .map(|u| (u.id.clone(), u.name.clone()))
            .collect(),
        policies: catalog
            .policies
            .values()
            .map(|p| (p.policy.id.clone(), p.name.clone()))
            .collect(),
        a,
        done,
    };
    Ok(html(&page))
}

/// `POST /alerts/{id}/{action}`: accept, unaccept, resolve, comment, reassign.
pub(crate) async fn act(
    State(st): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    let id = crate::alerts::parse_id(&id)?;
    let p = viewer.principal();
    let app = &st.0.app;
    let result = match action.as_str() {
        "accept" => Some(app.transition_as(p, "web", id, Transition::Accept).await),
        "unaccept" => Some(app.transition_as(p, "web", id, Transition::Unaccept).await),
        "resolve" => Some(app.transition_as(p, "web", id, Transition::Resolve).await),
        "reassign" => {
            let to = match (form.get("user"), form.get("policy")) {
                (Some(u), _) if !u.is_empty() => Assignee::User(u.to_owned()),
                (_, Some(pol)) if !pol.is_empty() => Assignee::Policy(pol.to_owned()),
                _ => {
                    return Err(UiError::bad_request(
                        "choose a user or an escalation policy to reassign to",
                    ));
                }
            };
            Some(app.reassign_as(p, "web", id, to).await)
        }
        "comment" => {
            let text = form.get("text").unwrap_or_default().trim();
            if text.is_empty() {
                return Err(UiError::bad_request(
                    "the comment is empty; write something",
                ));
            }
            if text.len() > 64 * 1024 {
                return Err(UiError::bad_request(
                    "the comment is too long (64 KiB at most)",
                ));
            }
            app.comment_as(p, "web", id, text)
                .await
                .map_err(|e| UiError::from_app("comment", e))?;
            None
        }
        other => {
            return Err(UiError::not_found(format!(
                "there is no action `{other}`; use accept, unaccept, resolve, comment or reassign"
            )));
        }
    };
    if let Some(r) = result {
        match r.map_err(|e| UiError::from_app("alert action", e))? {
            TransitionResult::Done(_) | TransitionResult::Unchanged(_) => {}
            TransitionResult::Conflict(_) => {
                return Err(UiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "conflict",
                    format!("alert {id} is resolved; a resolved alert cannot be accepted"),
                ));
            }
            TransitionResult::NotFound => {
                return Err(UiError::not_found(format!("there is no alert {id}")));
            }
        }
    }
    Ok(Redirect::to(&format!("/alerts/{id}?done={action}")).into_response())
}
