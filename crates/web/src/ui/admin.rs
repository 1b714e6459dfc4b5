//! Maintenance windows (start and end them from the page) and the admin
//! pages: the audit log with filters, failed deliveries, and the whole
//! catalog with each object's origin.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, TimeDelta, Utc};
use tocsin_domain::{Permission, Scope};
use tocsin_store::AuditFilter;

use super::catalog::{origin_text, title_of};
use super::{Chrome, Posted, UiError, Viewer, html, when};
use crate::state::AppState;

struct WindowRow {
    id: i64,
    target: String,
    from: String,
    to: String,
    reason: String,
    by: String,
    active: bool,
    can_end: bool,
}

#[derive(Template)]
#[template(path = "maintenance.html")]
struct MaintenancePage {
    c: Chrome,
    windows: Vec<WindowRow>,
    targets: Vec<(String, String)>,
    error: Option<String>,
    done: Option<&'static str>,
}

async fn maintenance_page(
    st: &AppState,
    viewer: &Viewer,
    error: Option<String>,
    done: Option<&'static str>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let now = st.now();
    let windows =
        st.0.store
            .maintenance_windows(now)
            .await
            .map_err(|e| UiError::from_store("maintenance windows", e))?;
    let catalog = st.0.app.catalog.current();
    let p = viewer.principal();
    let may = |kind: &str, id: &str| {
        p.allows(
            Permission::ManageMaintenance,
            &Scope::Teams(catalog.target_teams(kind, id)),
        )
    };
    let rows = windows
        .into_iter()
        .map(|w| WindowRow {
            can_end: may(&w.target_kind, &w.target_id),
            active: w.is_active(now),
            id: w.id,
            target: format!("{} {}", w.target_kind, w.target_id),
            from: when(w.starts_at),
            to: when(w.ends_at),
            reason: w.reason,
            by: w.created_by,
        })
        .collect();
    let mut targets: Vec<(String, String)> = Vec::new();
    for id in catalog.services.keys() {
        if may("service", id) {
            targets.push((format!("service:{id}"), format!("service {id}")));
        }
    }
    for id in catalog.sources.keys() {
        if may("source", id) {
            targets.push((format!("source:{id}"), format!("source {id}")));
        }
    }
    let page = MaintenancePage {
        c: Chrome::new(viewer, "Maintenance", "/maintenance"),
        windows: rows,
        targets,
        error,
        done,
    };
    Ok((status, html(&page)).into_response())
}

/// `GET /maintenance`
pub(crate) async fn maintenance(
    State(st): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let done = crate::query_param(raw.as_deref(), "done").and_then(|d| match d.as_str() {
        "started" => Some("Maintenance window started: its alerts are kept but page nobody."),
        "ended" => Some("Maintenance window ended."),
        _ => None,
    });
    maintenance_page(&st, &viewer, None, done, StatusCode::OK).await
}

/// `POST /maintenance`: target (`service:ID` or `source:ID`), minutes, reason.
pub(crate) async fn start_maintenance(
    State(st): State<AppState>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    let target = form.get("target").unwrap_or_default();
    let Some((kind, id)) = target.split_once(':') else {
        return maintenance_page(
            &st,
            &viewer,
            Some("choose what the window is for".into()),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let minutes = form
        .get("minutes")
        .and_then(|m| m.parse::<i64>().ok())
        .filter(|m| (1..=60 * 24 * 30).contains(m));
    let Some(minutes) = minutes else {
        return maintenance_page(
            &st,
            &viewer,
            Some("minutes: a number from 1 to 43200 (30 days)".into()),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let now = st.now();
    let starts = now
        + TimeDelta::minutes(
            form.get("starts_in")
                .and_then(|m| m.parse::<i64>().ok())
                .unwrap_or(0)
                .clamp(0, 525_600),
        );
    let reason = form.get("reason").unwrap_or_default().trim();
    match st
        .0
        .app
        .start_maintenance(
            viewer.principal(),
            "web",
            &tocsin_store::NewMaintenance {
                target_kind: kind.into(),
                target_id: id.into(),
                starts_at: starts,
                ends_at: starts + TimeDelta::minutes(minutes),
                reason: reason.into(),
                title: form.get("title").unwrap_or_default().trim().into(),
                public: form.get("public") == Some("on"),
            },
        )
        .await
    {
        Ok(_) => Ok(Redirect::to("/maintenance?done=started").into_response()),
        Err(e @ tocsin_app::AppError::Invalid(_)) => {
            maintenance_page(
                &st,
                &viewer,
                Some(e.to_string()),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(UiError::from_app("start maintenance", e)),
    }
}

/// `POST /maintenance/{id}/end`
pub(crate) async fn end_maintenance(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    Posted { viewer, form: _ }: Posted,
) -> Result<Response, UiError> {
    st.0.app
        .end_maintenance(viewer.principal(), "web", id)
        .await
        .map_err(|e| UiError::from_app("end maintenance", e))?;
    Ok(Redirect::to("/maintenance?done=ended").into_response())
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    c: Chrome,
    counts: Vec<(String, &'static str, usize)>,
    failed: usize,
}

/// `GET /admin`
pub(crate) async fn index(State(st): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    let live = st.live();
    let counts = tocsin_app::edit::EDITABLE
        .iter()
        .map(|k| {
            (
                (*k).to_owned(),
                title_of(k),
                live.loaded
                    .stored
                    .objects
                    .iter()
                    .filter(|o| o.kind == *k)
                    .count(),
            )
        })
        .collect();
    let failed =
        st.0.store
            .failed_deliveries(100)
            .await
            .map_err(|e| UiError::from_store("failed deliveries", e))?
            .len();
    Ok(html(&AdminPage {
        c: Chrome::new(&viewer, "Admin", "/admin"),
        counts,
        failed,
    }))
}

struct AuditRow {
    at: String,
    actor: String,
    channel: String,
    kind: String,
    object: String,
    href: Option<String>,
    action: String,
    diff: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    rows: Vec<AuditRow>,
    actor: String,
    kind: String,
    object: String,
    since: String,
    until: String,
    older: Option<String>,
}

fn parse_day(name: &str, v: &str) -> Result<DateTime<Utc>, UiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.to_utc());
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| {
            UiError::bad_request(format!(
                "{name}: `{v}` is not a date (2026-12-01) or an RFC 3339 time"
            ))
        })
}

/// `GET /admin/audit?actor=&kind=&object=&since=&until=&cursor=`
pub(crate) async fn audit(
    State(st): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let q = |k: &str| {
        crate::query_param(raw.as_deref(), k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut f = AuditFilter {
        actor: q("actor"),
        kind: q("kind"),
        object_id: q("object"),
        limit: 100,
        ..Default::default()
    };
    if let Some(v) = q("since") {
        f.since = Some(parse_day("since", &v)?);
    }
    if let Some(v) = q("until") {
        // A date means "through that day".
        let t = parse_day("until", &v)?;
        f.until = Some(if v.len() == 10 {
            t + TimeDelta::days(1)
        } else {
            t
        });
    }
    if let Some(v) = q("cursor") {
        f.before_id = Some(crate::parse_cursor(&v)?);
    }
    let page =
        st.0.app
            .audit(&f)
            .await
            .map_err(|e| UiError::from_app("audit log", e))?;
    let keep: Vec<(&str, String)> = [
        ("actor", q("actor")),
        ("kind", q("kind")),
        ("object", q("object")),
        ("since", q("since")),
        ("until", q("until")),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let older = page.next_before_id.map(|id| {
        let mut q = keep.clone();
        q.push(("cursor", id.to_string()));
        serde_urlencoded::to_string(&q).unwrap_or_default()
    });
    let rows = page
        .entries
        .into_iter()
        .map(|e| {
            let r = e.record;
            let href = match r.kind.as_str() {
                "alert" => Some(format!("/alerts/{}", r.object_id)),
                k if tocsin_app::edit::EDITABLE.contains(&k) => {
                    Some(format!("/catalog/{k}/{}", r.object_id))
                }
                _ => None,
            };
            AuditRow {
                at: when(e.at),
                actor: r.actor,
                channel: r.channel,
                kind: r.kind,
                href,
                object: r.object_id,
                action: r.action,
                diff: diff_text(&r.diff),
            }
        })
        .collect();
    Ok(html(&AuditPage {
        c: Chrome::new(&viewer, "Audit log", "/admin"),
        rows,
        actor: q("actor").unwrap_or_default(),
        kind: q("kind").unwrap_or_default(),
        object: q("object").unwrap_or_default(),
        since: q("since").unwrap_or_default(),
        until: q("until").unwrap_or_default(),
        older,
    }))
}

/// A diff `{field: {before, after}}` in one line per field.
fn diff_text(d: &serde_json::Value) -> String {
    let Some(m) = d.as_object() else {
        return d.to_string();
    };
    m.iter()
        .map(|(k, v)| {
            let side = |s: &str| {
                v.get(s)
                    .map(|x| match x {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|| "—".into())
            };
            let mut line = format!("{k}: {} → {}", side("before"), side("after"));
            if line.len() > 300 {
                line.truncate(line.floor_char_boundary(300));
                line.push('…');
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct DeliveryRow {
    alert: i64,
    user: String,
    contact: String,
    channel: String,
    attempts: i64,
    error: String,
    due: String,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    c: Chrome,
    rows: Vec<DeliveryRow>,
}

/// `GET /admin/deliveries`: notifications that failed for good.
pub(crate) async fn deliveries(
    State(st): State<AppState>,
    viewer: Viewer,
) -> Result<Response, UiError> {
    let rows =
        st.0.store
            .failed_deliveries(200)
            .await
            .map_err(|e| UiError::from_store("failed deliveries", e))?
            .into_iter()
            .map(|d| DeliveryRow {
                alert: d.alert_id,
                user: d.user_id,
                contact: d.contact_id,
                channel: d.channel,
                attempts: d.attempts,
                error: d.last_error.unwrap_or_default(),
                due: when(d.due_at),
            })
            .collect();
    Ok(html(&DeliveriesPage {
        c: Chrome::new(&viewer, "Failed deliveries", "/admin"),
        rows,
    }))
}

struct ObjectRow {
    kind: String,
    title: &'static str,
    id: String,
    origin: String,
    revision: i64,
    updated: String,
}

#[derive(Template)]
#[template(path = "admin_catalog.html")]
struct CatalogPage {
    c: Chrome,
    rows: Vec<ObjectRow>,
    version: i64,
}

/// `GET /admin/catalog`: every object, where it comes from.
pub(crate) async fn catalog(State(st): State<AppState>, viewer: Viewer) -> Response {
    let live = st.live();
    let rows = live
        .loaded
        .stored
        .objects
        .iter()
        .filter(|o| tocsin_app::edit::EDITABLE.contains(&o.kind.as_str()))
        .map(|o| ObjectRow {
            title: title_of(&o.kind),
            kind: o.kind.clone(),
            id: o.id.clone(),
            origin: origin_text(o),
            revision: o.revision,
            updated: when(o.updated_at),
        })
        .collect();
    html(&CatalogPage {
        c: Chrome::new(&viewer, "Catalog", "/admin"),
        rows,
        version: live.loaded.stored.version,
    })
}
