//! Catalog changes through the API: create, replace and delete one object,
//! and rotate a source's key. Bodies are objects in the shape of
//! tocsin.yaml, checked with the rules of `check-config` against the whole
//! catalog they would make. Objects a file provisioned are read-only here.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tocsin_config::Problem;
use tocsin_config::catalog::{is_secret, normalize};
use tocsin_store::{
    Actor, CatalogObject, CatalogWrite, Expect, Origin, Store, StoreError, StoredCatalog,
};

use crate::AppError;
use crate::catalog::{check_split, generate_key, key_source};

/// The kinds the API edits (the tocsin.yaml keys, and the URL segments):
/// every stored kind but the providers and API tokens (which only files
/// provision).
pub const EDITABLE: &[&str] = tocsin_config::catalog::KINDS.split_at(2).1;

/// The OpenAPI schema of an editable kind (see `tocsin_config::catalog::schemas`).
pub use tocsin_config::catalog::schemas as kind_schemas;

/// Read-only members of an object as the API shows it; ignored on write.
pub const READ_ONLY: &[&str] = &["origin", "revision"];

/// What a create or replace left in storage.
#[derive(Debug, Clone)]
pub struct Edited {
    pub object: CatalogObject,
    /// A source's or heartbeat's key, made at its creation (shown once).
    pub key: Option<String>,
}

fn not_found(kind: &str, id: &str) -> AppError {
    AppError::NotFound(format!("no {} `{id}`", singular(kind)))
}

/// `escalation_policies` → `escalation policy`.
pub fn singular(kind: &str) -> String {
    let s = kind.replace('_', " ");
    if let Some(stem) = s.strip_suffix("ies") {
        format!("{stem}y")
    } else if s == "support hours" {
        s
    } else {
        s.strip_suffix('s').unwrap_or(&s).to_owned()
    }
}

fn read_only_check(o: &CatalogObject) -> Result<(), AppError> {
    match &o.origin {
        Origin::Managed => Ok(()),
        Origin::Provisioned { file } => Err(AppError::Conflict(format!(
            "{} `{}` is provisioned from {file} and read-only through the API; change it in that file and re-provision (SIGHUP or `tocsin apply`)",
            singular(&o.kind),
            o.id
        ))),
    }
}

fn revision_check(o: &CatalogObject, if_match: Option<i64>) -> Result<(), AppError> {
    match if_match {
        Some(r) if r != o.revision => Err(AppError::Stale(format!(
            "{} `{}` changed since you read it (its ETag is now \"{}\"); read it again and repeat the change",
            singular(&o.kind),
            o.id,
            o.revision
        ))),
        _ => Ok(()),
    }
}

/// The body as a spec: an object, without read-only members, whose `id`
/// is `id` (filled in when left out).
fn body_spec(kind: &str, id: Option<&str>, body: Value) -> Result<(String, Value), AppError> {
    let Value::Object(mut m) = body else {
        return Err(AppError::Invalid(vec![Problem::new(
            "",
            format!(
                "expected a {} object, as under `{kind}` in tocsin.yaml",
                singular(kind)
            ),
        )]));
    };
    for k in READ_ONLY {
        m.remove(*k);
    }
    let given = m.get("id").and_then(Value::as_str).map(str::to_owned);
    let id = match (id, given) {
        (Some(path), Some(body)) if path != body => {
            return Err(AppError::Invalid(vec![Problem::new(
                "id",
                format!(
                    "`{body}` is not the id in the URL (`{path}`); an object's id cannot change"
                ),
            )]));
        }
        (Some(path), Some(_)) => path.to_owned(),
        (Some(path), None) => {
            return Err(AppError::Invalid(vec![Problem::new(
                "id",
                format!(
                    "missing; a replacement is the whole object, with its id (`{path}`), as GET shows it"
                ),
            )]));
        }
        (None, Some(body)) => body,
        (None, None) => {
            return Err(AppError::Invalid(vec![Problem::new(
                "id",
                "missing; give the new object an id (letters, digits, `-`, `_`, `.`)",
            )]));
        }
    };
    m.insert("id".into(), Value::String(id.clone()));
    Ok((id, normalize(kind, Value::Object(m))))
}

/// Secrets are write-only: a replace that leaves one out keeps the stored
/// value (a user's contact's by the contact's id).
fn keep_secrets(kind: &str, id: &str, old: &Value, new: &mut Value) {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object_mut()) else {
        return;
    };
    for (k, v) in old {
        if is_secret(kind, id, k) && !new.contains_key(k) {
            new.insert(k.clone(), v.clone());
        }
    }
    let old_contacts = old.get("contacts").and_then(Value::as_array);
    let new_contacts = new.get_mut("contacts").and_then(Value::as_array_mut);
    if let (Some(old_contacts), Some(new_contacts)) = (old_contacts, new_contacts) {
        for c in new_contacts.iter_mut() {
            let cid = c.get("id").cloned();
            let Some(prev) = old_contacts.iter().find(|o| o.get("id") == cid.as_ref()) else {
                continue;
            };
            let (Some(prev), Some(c)) = (prev.as_object(), c.as_object_mut()) else {
                continue;
            };
            for (k, v) in prev {
                if is_secret(kind, id, &format!("contacts[0].{k}")) && !c.contains_key(k) {
                    c.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// Check the catalog `stored` would become with `edited` (kind, id, spec)
/// in it, or without (kind, id) when `edited` has no spec. Problems inside
/// the edited object are the caller's (422, at paths inside the body);
/// problems it would cause in others are conflicts (409, naming them).
fn check_with(
    stored: &StoredCatalog,
    kind: &str,
    id: &str,
    edited: Option<&Value>,
) -> Result<(), AppError> {
    let first = edited.map(|spec| (kind, id, spec, None));
    let others = stored
        .objects
        .iter()
        .filter(|o| !(o.kind == kind && o.id == id))
        .map(|o| (o.kind.as_str(), o.id.as_str(), &o.spec, Some(&o.origin)));
    let Err((mine, mut theirs)) = check_split(first.into_iter().chain(others)) else {
        return Ok(());
    };
    // Without an edited object (a delete) every problem is another's.
    let mine = if edited.is_some() {
        mine
    } else {
        theirs.extend(mine);
        Vec::new()
    };
    if !theirs.is_empty() {
        return Err(AppError::Conflict(
            theirs
                .iter()
                .map(|p| p.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    let prefix = format!("{kind}[0]");
    Err(AppError::Invalid(
        mine.into_iter()
            .map(|p| {
                let rel = p
                    .path
                    .strip_prefix(prefix.as_str())
                    .unwrap_or(&p.path)
                    .trim_start_matches('.')
                    .to_owned();
                Problem::new(rel, p.message)
            })
            .collect(),
    ))
}

fn lost_race(e: AppError, kind: &str, id: &str, if_match: Option<i64>) -> AppError {
    match e {
        AppError::Store(StoreError::Conflict { current, .. }) => match (if_match, current) {
            (Some(_), Some(r)) => AppError::Stale(format!(
                "{} `{id}` changed since you read it (its ETag is now \"{r}\"); read it again and repeat the change",
                singular(kind)
            )),
            (_, None) => not_found(kind, id),
            (None, Some(_)) => AppError::Conflict(format!(
                "{} `{id}` was changed by someone else at the same moment; read it again and repeat the change",
                singular(kind)
            )),
        },
        e => e,
    }
}

async fn reread(store: &dyn Store, kind: &str, id: &str) -> Result<CatalogObject, AppError> {
    let stored = store.catalog().await?;
    stored
        .object(kind, id)
        .cloned()
        .ok_or_else(|| not_found(kind, id))
}

fn editable(kind: &str) -> Result<(), AppError> {
    if EDITABLE.contains(&kind) {
        Ok(())
    } else {
        Err(AppError::NotFound(format!(
            "`{kind}` is not an object kind; expected one of: {}",
            EDITABLE.join(", ")
        )))
    }
}

/// Create a managed object from `body`. A source or heartbeat without a
/// `key` gets a new one, returned once.
pub async fn create(
    store: &dyn Store,
    kind: &str,
    body: Value,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Edited, AppError> {
    editable(kind)?;
    let (id, spec) = body_spec(kind, None, body)?;
    let stored = store.catalog().await?;
    if let Some(o) = stored.object(kind, &id) {
        return Err(AppError::Conflict(format!(
            "{} `{id}` already exists ({}); PUT /api/v1/{kind}/{id} changes it",
            singular(kind),
            match &o.origin {
                Origin::Managed => "managed".to_owned(),
                Origin::Provisioned { file } => format!("provisioned from {file}"),
            }
        )));
    }
    check_with(&stored, kind, &id, Some(&spec))?;
    let mut writes = vec![CatalogWrite::Put {
        kind: kind.to_owned(),
        id: id.clone(),
        spec: spec.clone(),
        secret_refs: Default::default(),
        origin: Origin::Managed,
        expect: Expect::Absent,
    }];
    let mut key = None;
    if let Some(source_id) = key_source(kind, &id) {
        let k = spec
            .get("key")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(generate_key);
        writes.push(CatalogWrite::Key {
            source_id,
            key: Some(k.clone()),
        });
        key = Some(k);
    }
    crate::audit::write(store, &stored, &writes, actor, now)
        .await
        .map_err(|e| lost_race(e.into(), kind, &id, None))?;
    Ok(Edited {
        object: reread(store, kind, &id).await?,
        key,
    })
}

/// Replace a managed object with `body` (`if_match`: the revision the
/// caller read). Secrets left out of the body keep their stored values.
pub async fn replace(
    store: &dyn Store,
    kind: &str,
    id: &str,
    body: Value,
    if_match: Option<i64>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Edited, AppError> {
    editable(kind)?;
    let stored = store.catalog().await?;
    let old = stored.object(kind, id).ok_or_else(|| not_found(kind, id))?;
    read_only_check(old)?;
    // The body is checked before the precondition (RFC 9110 §13.2.2): a
    // broken body is 422 whatever `If-Match` says.
    let (_, mut spec) = body_spec(kind, Some(id), body)?;
    keep_secrets(kind, id, &old.spec, &mut spec);
    check_with(&stored, kind, id, Some(&spec))?;
    revision_check(old, if_match)?;
    let mut writes = vec![CatalogWrite::Put {
        kind: kind.to_owned(),
        id: id.to_owned(),
        spec: spec.clone(),
        secret_refs: Default::default(),
        origin: Origin::Managed,
        expect: Expect::Revision(old.revision),
    }];
    if let (Some(source_id), Some(k)) = (
        key_source(kind, id),
        spec.get("key").and_then(Value::as_str),
    ) && old.spec.get("key").and_then(Value::as_str) != Some(k)
    {
        writes.push(CatalogWrite::Key {
            source_id,
            key: Some(k.to_owned()),
        });
    }
    crate::audit::write(store, &stored, &writes, actor, now)
        .await
        .map_err(|e| lost_race(e.into(), kind, id, if_match))?;
    Ok(Edited {
        object: reread(store, kind, id).await?,
        key: None,
    })
}

/// Delete a managed object. Refused (409) while another object refers to
/// it, naming who does.
pub async fn delete(
    store: &dyn Store,
    kind: &str,
    id: &str,
    if_match: Option<i64>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    editable(kind)?;
    let stored = store.catalog().await?;
    let old = stored.object(kind, id).ok_or_else(|| not_found(kind, id))?;
    read_only_check(old)?;
    revision_check(old, if_match)?;
    check_with(&stored, kind, id, None)?;
    let mut writes = vec![CatalogWrite::Delete {
        kind: kind.to_owned(),
        id: id.to_owned(),
        expect: Expect::Revision(old.revision),
    }];
    if let Some(source_id) = key_source(kind, id) {
        writes.push(CatalogWrite::Key {
            source_id,
            key: None,
        });
    }
    crate::audit::write(store, &stored, &writes, actor, now)
        .await
        .map_err(|e| lost_race(e.into(), kind, id, if_match))?;
    Ok(())
}

/// Give a source a new key; the old one stops working on every node. A key
/// that its file sets can only change there.
pub async fn rotate_key(
    store: &dyn Store,
    id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    let stored = store.catalog().await?;
    let source = stored
        .object("sources", id)
        .ok_or_else(|| not_found("sources", id))?;
    if source.spec.get("key").is_some() {
        return Err(AppError::Conflict(format!(
            "source `{id}` has its key set in its spec ({}); change `key` there",
            match &source.origin {
                Origin::Managed => "managed: PUT the source with a new key".to_owned(),
                Origin::Provisioned { file } => format!("provisioned from {file}"),
            }
        )));
    }
    let key = generate_key();
    let writes = [CatalogWrite::Key {
        source_id: id.to_owned(),
        key: Some(key.clone()),
    }];
    crate::audit::write(store, &stored, &writes, actor, now).await?;
    Ok(key)
}

/// A time of an override: local to the schedule (`YYYY-MM-DDTHH:MM`, as
/// in tocsin.yaml) or RFC 3339 with an offset, stored as local time.
fn override_time(field: &str, v: Option<&Value>, tz: chrono_tz::Tz) -> Result<String, Problem> {
    let Some(text) = v.and_then(Value::as_str) else {
        return Err(Problem::new(
            field,
            "missing; a local time such as 2026-12-24T18:00, or RFC 3339 with an offset",
        ));
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t
            .with_timezone(&tz)
            .naive_local()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string());
    }
    tocsin_config::validate::parse_local_datetime(text)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .map_err(|e| Problem::new(field, format!("{e}, or RFC 3339 with an offset")))
}

/// `POST /api/v1/schedules/{id}/overrides`: `user` takes the shifts of
/// `schedule` from `from` to `to`. A managed object, also on a schedule a
/// file provisioned.
pub async fn create_override(
    store: &dyn Store,
    schedule: &str,
    body: Value,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Edited, AppError> {
    let stored = store.catalog().await?;
    let s = stored
        .object("schedules", schedule)
        .ok_or_else(|| not_found("schedules", schedule))?;
    let tz: chrono_tz::Tz = s
        .spec
        .get("timezone")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let Value::Object(m) = body else {
        return Err(AppError::Invalid(vec![Problem::new(
            "",
            "expected {user, from, to}",
        )]));
    };
    let mut problems = Vec::new();
    if let Some(k) = m
        .keys()
        .find(|k| !["user", "from", "to"].contains(&k.as_str()))
    {
        problems.push(Problem::new(
            k.clone(),
            "unknown field; an override has `user`, `from` and `to`",
        ));
    }
    let user = m.get("user").and_then(Value::as_str).unwrap_or_default();
    let from = override_time("from", m.get("from"), tz);
    let to = override_time("to", m.get("to"), tz);
    let (from, to) = match (from, to) {
        (Ok(f), Ok(t)) => (f, t),
        (f, t) => {
            problems.extend(f.err());
            problems.extend(t.err());
            return Err(AppError::Invalid(problems));
        }
    };
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let id = format!("o{}", &generate_key()[..12]);
    let spec = serde_json::json!({"schedule": schedule, "user": user, "from": from, "to": to});
    check_with(&stored, crate::catalog::OVERRIDES, &id, Some(&spec))?;
    let writes = [CatalogWrite::Put {
        kind: crate::catalog::OVERRIDES.to_owned(),
        id: id.clone(),
        spec,
        secret_refs: Default::default(),
        origin: Origin::Managed,
        expect: Expect::Absent,
    }];
    crate::audit::write(store, &stored, &writes, actor, now).await?;
    Ok(Edited {
        object: reread(store, crate::catalog::OVERRIDES, &id).await?,
        key: None,
    })
}

/// `DELETE /api/v1/schedules/{id}/overrides/{oid}`.
pub async fn delete_override(
    store: &dyn Store,
    schedule: &str,
    id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let stored = store.catalog().await?;
    let o = stored.object(crate::catalog::OVERRIDES, id)
        .filter(|o| o.spec.get("schedule").and_then(Value::as_str) == Some(schedule))
        .ok_or_else(|| AppError::NotFound(format!("schedule `{schedule}` has no override `{id}` made through the API (overrides in a file are changed there)")))?;
    let writes = [CatalogWrite::Delete {
        kind: o.kind.clone(),
        id: o.id.clone(),
        expect: Expect::Revision(o.revision),
    }];
    crate::audit::write(store, &stored, &writes, actor, now).await?;
    Ok(())
}

/// An object as the API shows it: its spec without secrets, with its
/// origin and revision.
pub fn view(o: &CatalogObject) -> Value {
    let mut spec = o.spec.clone();
    tocsin_config::catalog::redact(&o.kind, &o.id, &mut spec);
    let mut m = match spec {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("spec".into(), other);
            m
        }
    };
    m.entry("id").or_insert_with(|| Value::String(o.id.clone()));
    m.insert(
        "origin".into(),
        match &o.origin {
            Origin::Managed => serde_json::json!({"kind": "managed"}),
            Origin::Provisioned { file } => {
                serde_json::json!({"kind": "provisioned", "file": file})
            }
        },
    );
    m.insert("revision".into(), Value::from(o.revision));
    Value::Object(m)
}
