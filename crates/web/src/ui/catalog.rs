//! The catalog in the UI: a page per kind (escalation policies, services,
//! sources, heartbeats, support hours, users, teams, schedules) listing
//! every object with its origin, and one page per object that shows it
//! and, for a managed object and an admin (or a user's own contact
//! methods), edits it in a form. The form takes the same definition as
//! tocsin.yaml (YAML) and goes through the same use-cases as the API, so
//! its errors are the API's, each with its key path. A provisioned object
//! is read-only, with the file it comes from.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;
use tocsin_app::AppError;
use tocsin_domain::{Permission, Scope};
use tocsin_store::{CatalogObject, Origin};

use super::{Chrome, Posted, UiError, Viewer, html};
use crate::state::AppState;

/// The kinds with a page, their title, and the page's path.
pub(crate) const KINDS: &[(&str, &str, &str)] = &[
    ("escalation_policies", "Escalation policies", "/policies"),
    ("services", "Services", "/services"),
    ("sources", "Sources", "/sources"),
    ("heartbeats", "Heartbeats", "/heartbeats"),
    ("support_hours", "Support hours", "/support-hours"),
    ("schedules", "Schedules", "/schedules"),
    ("users", "Users", "/users"),
    ("teams", "Teams", "/teams"),
];

pub(crate) fn title_of(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, ..)| *k == kind)
        .map(|(_, t, _)| *t)
        .unwrap_or("Catalog")
}

fn path_of(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, ..)| *k == kind)
        .map(|(.., p)| *p)
        .unwrap_or("/catalog")
}

fn editable(kind: &str) -> Result<(), UiError> {
    if tocsin_app::edit::EDITABLE.contains(&kind) {
        Ok(())
    } else {
        Err(UiError::not_found(format!(
            "`{kind}` is not a kind of the catalog; use one of {}",
            tocsin_app::edit::EDITABLE.join(", ")
        )))
    }
}

/// Where an object comes from, in words.
pub(crate) fn origin_text(o: &CatalogObject) -> String {
    match &o.origin {
        Origin::Managed => "managed here".into(),
        Origin::Provisioned { file } => format!("from {file}"),
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| text(Some(x)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// A column of a kind's list: its heading and how to read it off the spec.
type Column = (&'static str, fn(&Value) -> String);

/// The columns of a kind's list.
fn columns(kind: &str) -> Vec<Column> {
    fn team(s: &Value) -> String {
        text(s.get("team"))
    }
    fn levels(s: &Value) -> String {
        let Some(levels) = s.get("levels").and_then(Value::as_array) else {
            return String::new();
        };
        levels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                format!(
                    "{}. {} (after {})",
                    i + 1,
                    text(l.get("notify")),
                    text(l.get("escalate_after"))
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
    match kind {
        "escalation_policies" => vec![
            ("Team", team),
            ("Levels", levels),
            ("Repeat", |s| text(s.get("repeat"))),
        ],
        "services" => vec![
            ("Team", team),
            ("Escalation policy", |s| text(s.get("escalation_policy"))),
            ("Public", |s| text(s.get("public"))),
        ],
        "sources" => vec![
            ("Type", |s| text(s.get("type"))),
            ("Team", team),
            ("Escalation policy", |s| text(s.get("escalation_policy"))),
            ("Service", |s| text(s.get("service"))),
        ],
        "heartbeats" => vec![
            ("Every", |s| text(s.get("interval"))),
            ("Grace", |s| text(s.get("grace"))),
            ("Escalation policy", |s| text(s.get("escalation_policy"))),
        ],
        "support_hours" => vec![
            ("Time zone", |s| text(s.get("timezone"))),
            ("Weekly", |s| {
                s.get("weekly")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(d, h)| format!("{d} {}", text(Some(h))))
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default()
            }),
        ],
        "schedules" => vec![("Team", team), ("Time zone", |s| text(s.get("timezone")))],
        "users" => vec![
            ("Email", |s| text(s.get("email"))),
            ("Role", |s| {
                let r = text(s.get("role"));
                if r.is_empty() { "responder".into() } else { r }
            }),
            ("Teams", |s| text(s.get("teams"))),
        ],
        _ => vec![],
    }
}

struct Row {
    id: String,
    name: String,
    href: String,
    cells: Vec<String>,
    origin: String,
}

#[derive(Template)]
#[template(path = "kind_list.html")]
struct ListPage {
    c: Chrome,
    kind: String,
    title: &'static str,
    headings: Vec<&'static str>,
    rows: Vec<Row>,
    can_create: bool,
}

/// The page of a kind's objects.
pub(crate) async fn list(st: &AppState, viewer: &Viewer, kind: &str) -> Response {
    let live = st.live();
    let cols = columns(kind);
    let rows = live
        .loaded
        .stored
        .objects
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| Row {
            id: o.id.clone(),
            name: o
                .spec
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&o.id)
                .to_owned(),
            href: detail_path(kind, &o.id),
            cells: cols.iter().map(|(_, f)| f(&o.spec)).collect(),
            origin: origin_text(o),
        })
        .collect();
    html(&ListPage {
        c: Chrome::new(viewer, title_of(kind), path_of(kind)),
        kind: kind.to_owned(),
        title: title_of(kind),
        headings: cols.iter().map(|(h, _)| *h).collect(),
        rows,
        can_create: viewer
            .principal()
            .allows(Permission::EditCatalog, &Scope::Global),
    })
}

/// The page of one object: a schedule's is its timeline, the others the
/// catalog page.
fn detail_path(kind: &str, id: &str) -> String {
    match kind {
        "schedules" => format!("/schedules/{id}"),
        _ => format!("/catalog/{kind}/{id}"),
    }
}

macro_rules! kind_page {
    ($name:ident, $kind:literal) => {
        pub(crate) async fn $name(State(st): State<AppState>, viewer: Viewer) -> Response {
            list(&st, &viewer, $kind).await
        }
    };
}
kind_page!(policies, "escalation_policies");
kind_page!(services, "services");
kind_page!(sources, "sources");
kind_page!(heartbeats, "heartbeats");
kind_page!(support_hours, "support_hours");
kind_page!(users, "users");
kind_page!(teams, "teams");

#[derive(Template)]
#[template(path = "object.html")]
struct ObjectPage {
    c: Chrome,
    kind: String,
    title: &'static str,
    list_path: &'static str,
    id: String,
    name: String,
    origin: String,
    /// The file it comes from: read-only here.
    file: Option<String>,
    revision: i64,
    yaml: String,
    can_edit: bool,
    can_delete: bool,
    problems: Vec<(String, String)>,
    error: Option<String>,
    done: Option<&'static str>,
    /// The kind's own part of the page (a source's URL, a heartbeat's state).
    extra: String,
    is_new: bool,
}

/// The spec as the editor shows it: as the API shows it, without what the
/// store keeps (origin, revision) and without secrets.
fn editable_yaml(o: &CatalogObject) -> String {
    let mut v = tocsin_app::edit::view(o);
    if let Value::Object(m) = &mut v {
        for k in tocsin_app::edit::READ_ONLY {
            m.remove(*k);
        }
    }
    yaml_serde::to_string(&v).unwrap_or_default()
}

/// Whether the viewer may change `o` in the editor: admins any managed
/// object; a user their own contact methods and notify rules.
fn may_edit(viewer: &Viewer, kind: &str, id: &str) -> bool {
    let p = viewer.principal();
    p.allows(Permission::EditCatalog, &Scope::Global)
        || (kind == "users" && p.allows(Permission::EditProfile, &Scope::User(id.to_owned())))
}

/// What an object's page shows besides the object: the text being edited
/// (empty: the stored definition), problems, and the kind's own part.
#[derive(Default)]
struct Form<'a> {
    yaml: String,
    problems: Vec<(String, String)>,
    error: Option<String>,
    done: Option<&'static str>,
    status: StatusCode,
    extra: &'a str,
}

fn render_object(
    st: &AppState,
    viewer: &Viewer,
    kind: &str,
    id: &str,
    form: Form<'_>,
) -> Result<Response, UiError> {
    let live = st.live();
    let o = live.loaded.object(kind, id).ok_or_else(|| {
        UiError::not_found(format!(
            "there is no {} `{id}`",
            tocsin_app::edit::singular(kind)
        ))
    })?;
    let file = match &o.origin {
        Origin::Provisioned { file } => Some(file.clone()),
        Origin::Managed => None,
    };
    let can_edit = file.is_none() && may_edit(viewer, kind, id);
    let page = ObjectPage {
        c: Chrome::new(viewer, format!("{} {id}", title_of(kind)), path_of(kind)),
        kind: kind.to_owned(),
        title: title_of(kind),
        list_path: path_of(kind),
        id: id.to_owned(),
        name: o
            .spec
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_owned(),
        origin: origin_text(o),
        revision: o.revision,
        yaml: if form.yaml.is_empty() {
            editable_yaml(o)
        } else {
            form.yaml
        },
        can_delete: can_edit
            && viewer
                .principal()
                .allows(Permission::EditCatalog, &Scope::Global),
        can_edit,
        file,
        problems: form.problems,
        error: form.error,
        done: form.done,
        extra: form.extra.to_owned(),
        is_new: false,
    };
    Ok((form.status, html(&page)).into_response())
}

/// `GET /catalog/{kind}/{id}`
pub(crate) async fn object(
    State(st): State<AppState>,
    viewer: Viewer,
    Path((kind, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    editable(&kind)?;
    if id == "new" {
        return new_form(
            &st,
            &viewer,
            &kind,
            String::new(),
            Vec::new(),
            StatusCode::OK,
        );
    }
    let done = crate::query_param(raw.as_deref(), "done").and_then(|d| match d.as_str() {
        "saved" => Some("Saved. Every node uses the new definition within seconds."),
        "created" => Some("Created."),
        _ => None,
    });
    let extra = super::sources::extra(&st, &viewer, &kind, &id).await;
    render_object(
        &st,
        &viewer,
        &kind,
        &id,
        Form {
            done,
            extra: &extra,
            ..Form::default()
        },
    )
}

/// The YAML of a form as JSON, or the problem with it (at its line).
fn parse_yaml(text: &str) -> Result<Value, (String, String)> {
    yaml_serde::from_str::<Value>(text).map_err(|e| ("".to_owned(), format!("not YAML: {e}")))
}

fn problems_of(e: &AppError) -> Vec<(String, String)> {
    match e {
        AppError::Invalid(ps) => ps
            .iter()
            .map(|p| (p.path.clone(), p.message.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

/// `POST /catalog/{kind}/{id}`: save the definition.
pub(crate) async fn save(
    State(st): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    editable(&kind)?;
    let yaml = form.get("definition").unwrap_or_default().to_owned();
    let revision = form.get("revision").and_then(|r| r.parse::<i64>().ok());
    let again = |problems: Vec<(String, String)>, error: Option<String>, status| {
        render_object(
            &st,
            &viewer,
            &kind,
            &id,
            Form {
                yaml: yaml.clone(),
                problems,
                error,
                status,
                ..Form::default()
            },
        )
    };
    let value = match parse_yaml(&yaml) {
        Ok(v) => v,
        Err(p) => return again(vec![p], None, StatusCode::UNPROCESSABLE_ENTITY),
    };
    match st
        .0
        .app
        .replace_object(viewer.principal(), &kind, &id, value, revision)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/catalog/{kind}/{id}?done=saved")).into_response()),
        Err(e @ AppError::Invalid(_)) => {
            again(problems_of(&e), None, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e @ (AppError::Stale(_) | AppError::Conflict(_))) => {
            let status = if matches!(e, AppError::Stale(_)) {
                StatusCode::PRECONDITION_FAILED
            } else {
                StatusCode::CONFLICT
            };
            again(Vec::new(), Some(e.to_string()), status)
        }
        Err(e) => Err(UiError::from_app("save object", e)),
    }
}

/// `POST /catalog/{kind}/{id}/delete`
pub(crate) async fn delete(
    State(st): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    editable(&kind)?;
    let revision = form.get("revision").and_then(|r| r.parse::<i64>().ok());
    match st
        .0
        .app
        .delete_object(viewer.principal(), &kind, &id, revision)
        .await
    {
        Ok(()) => Ok(Redirect::to(path_of(&kind)).into_response()),
        Err(e @ (AppError::Conflict(_) | AppError::Stale(_))) => render_object(
            &st,
            &viewer,
            &kind,
            &id,
            Form {
                error: Some(e.to_string()),
                status: StatusCode::CONFLICT,
                ..Form::default()
            },
        ),
        Err(e) => Err(UiError::from_app("delete object", e)),
    }
}

/// A starting point for a new object of `kind`.
fn skeleton(kind: &str) -> &'static str {
    match kind {
        "teams" => "id: payments\nname: Payments\n",
        "users" => {
            "id: carol\nname: Carol Example\nemail: carol@example.com\nrole: responder\nteams: []\ncontacts:\n  - {id: mail, type: email, address: carol@example.com}\nnotify:\n  high: [{contact: mail, after: 0m}]\n  low: [{contact: mail, after: 0m}]\n"
        }
        "support_hours" => {
            "id: office\ntimezone: Europe/Berlin\nweekly:\n  mon-fri: \"09:00-18:00\"\n"
        }
        "schedules" => {
            "id: payments-rota\nname: Payments rota\ntimezone: Europe/Berlin\nlayers:\n  - {name: Primary, users: [], rotation: 1w, handoff: \"2026-01-05T09:00\"}\n"
        }
        "escalation_policies" => {
            "id: payments-pager\nname: Payments pager\nlevels:\n  - {notify: [\"schedule:payments-rota\"], escalate_after: 5m}\nrepeat: 1\n"
        }
        "services" => "id: payments\nname: Payments\nescalation_policy: payments-pager\n",
        "sources" => {
            "id: payments-prometheus\ntype: prometheus\nescalation_policy: payments-pager\nservice: payments\n"
        }
        "heartbeats" => {
            "id: nightly-backup\nname: Nightly backup\ninterval: 24h\ngrace: 1h\nescalation_policy: payments-pager\n"
        }
        _ => "id: new\n",
    }
}

fn new_form(
    st: &AppState,
    viewer: &Viewer,
    kind: &str,
    yaml: String,
    problems: Vec<(String, String)>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let _ = st;
    let page = ObjectPage {
        c: Chrome::new(
            viewer,
            format!("New {}", tocsin_app::edit::singular(kind)),
            path_of(kind),
        ),
        kind: kind.to_owned(),
        title: title_of(kind),
        list_path: path_of(kind),
        id: String::new(),
        name: format!("New {}", tocsin_app::edit::singular(kind)),
        origin: String::new(),
        file: None,
        revision: 0,
        yaml: if yaml.is_empty() {
            skeleton(kind).to_owned()
        } else {
            yaml
        },
        can_edit: viewer
            .principal()
            .allows(Permission::EditCatalog, &Scope::Global),
        can_delete: false,
        problems,
        error: None,
        done: None,
        extra: String::new(),
        is_new: true,
    };
    Ok((status, html(&page)).into_response())
}

/// `POST /catalog/{kind}`: create an object.
pub(crate) async fn create(
    State(st): State<AppState>,
    Path(kind): Path<String>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    editable(&kind)?;
    let yaml = form.get("definition").unwrap_or_default().to_owned();
    let value = match parse_yaml(&yaml) {
        Ok(v) => v,
        Err(p) => {
            return new_form(
                &st,
                &viewer,
                &kind,
                yaml,
                vec![p],
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    match st
        .0
        .app
        .create_object(viewer.principal(), &kind, value)
        .await
    {
        Ok(done) => {
            let id = done.object.id.clone();
            if let Some(key) = done.key {
                // A new source's or heartbeat's key is shown once.
                let extra = super::sources::new_key_notice(&st, &kind, &id, &key);
                return render_object(
                    &st,
                    &viewer,
                    &kind,
                    &id,
                    Form {
                        done: Some("Created."),
                        status: StatusCode::CREATED,
                        extra: &extra,
                        ..Form::default()
                    },
                );
            }
            Ok(Redirect::to(&format!("/catalog/{kind}/{id}?done=created")).into_response())
        }
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let mut problems = problems_of(&e);
            if problems.is_empty() {
                problems.push((String::new(), e.to_string()));
            }
            new_form(
                &st,
                &viewer,
                &kind,
                yaml,
                problems,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => Err(UiError::from_app("create object", e)),
    }
}
