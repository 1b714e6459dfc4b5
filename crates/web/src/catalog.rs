//! `/api/v1/{kind}` and `/api/v1/{kind}/{id}` for every catalog kind:
//! list, read (with a strong `ETag`), create, replace (`If-Match`) and
//! delete, plus `POST /api/v1/sources/{id}/rotate-key`. Bodies are objects
//! in the shape of tocsin.yaml; the rules live in `tocsin_app::edit`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};
use tocsin_app::{AppError, edit};
use tocsin_domain::SourceType;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::ingest::read_json_body;
use crate::state::{AppState, Live};

/// Add the catalog routes; `views` are the kinds whose `GET` list another
/// module serves (a view with computed fields). The kinds' operations are
/// described by `openapi::catalog_kinds`, which walks the same list.
pub(crate) fn routes(
    mut router: OpenApiRouter<AppState>,
    views: &[&str],
) -> OpenApiRouter<AppState> {
    for &kind in edit::EDITABLE {
        let create_route = post(
            move |st: State<AppState>, c: Caller, h: HeaderMap, b: Body| create(st, c, kind, h, b),
        );
        let list_route = if views.contains(&kind) {
            create_route
        } else {
            create_route.get(move |st: State<AppState>, c: Caller| list(st, c, kind))
        };
        router = router.route(&format!("/api/v1/{kind}"), list_route);
        let one =
            move |st: State<AppState>, c: Caller, Path(id): Path<String>| show(st, c, kind, id);
        let put =
            move |st: State<AppState>, c: Caller, Path(id): Path<String>, h: HeaderMap, b: Body| {
                replace(st, c, kind, id, h, b)
            };
        let del = move |st: State<AppState>, c: Caller, Path(id): Path<String>, h: HeaderMap| {
            remove(st, c, kind, id, h)
        };
        // `/api/v1/heartbeats/{key}` is also the ping URL (GET and POST):
        // `heartbeats` routes its GET itself.
        if kind != "heartbeats" {
            router = router.route(
                &format!("/api/v1/{kind}/{{id}}"),
                get(one).put(put).delete(del),
            );
        }
    }
    router
        .routes(routes!(rotate_key))
        .routes(routes!(plan))
        .routes(routes!(apply))
        .routes(routes!(export))
        .routes(routes!(list_overrides, create_override))
        .routes(routes!(delete_override))
}

/// `GET /api/v1/schedules/{id}/overrides`: the file's (no id; changed in
/// the file) and those made through the API (with their id).
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{id}/overrides",
    operation_id = "catalog_list_overrides",
    tag = "schedules",
    summary = "A schedule's overrides: the file's and those made through the API",
    params(("id" = String, Path, description = "A schedule id")),
    responses((status = 200, description = "OK", body = crate::schema::OverrideList), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub(crate) async fn list_overrides(
    State(st): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let live = st.live();
    let schedule = live
        .loaded
        .object("schedules", &id)
        .ok_or_else(|| ApiError::not_found(format!("no schedule `{id}`")))?;
    let mut out: Vec<Value> = schedule
        .spec
        .get("overrides")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut o| {
            if let Value::Object(m) = &mut o {
                m.insert("origin".into(), edit::view(schedule)["origin"].clone());
            }
            o
        })
        .collect();
    out.extend(
        live.loaded
            .stored
            .objects
            .iter()
            .filter(|o| {
                o.kind == tocsin_app::catalog::OVERRIDES
                    && o.spec.get("schedule").and_then(Value::as_str) == Some(id.as_str())
            })
            .map(edit::view),
    );
    Ok(Json(json!({"schedule": id, "overrides": out})))
}

/// `POST /api/v1/schedules/{id}/overrides` with `{user, from, to}`.
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{id}/overrides",
    operation_id = "catalog_create_override",
    tag = "schedules",
    summary = "Someone takes the shifts of a schedule from … to …",
    params(("id" = String, Path, description = "A schedule id")),
    request_body = crate::schema::NewOverride,
    responses((status = 201, description = "The override", body = crate::schema::CatalogObject), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 422, description = "The body breaks a rule; `problems` names each key path", body = crate::schema::ErrorBody), (status = 415, description = "The body is not JSON", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub(crate) async fn create_override(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = body_json(&st, &headers, body).await?;
    let done =
        st.0.app
            .create_override(&caller, &id, body)
            .await
            .map_err(|e| app_error("create override", e))?;
    let mut res = (StatusCode::CREATED, Json(edit::view(&done.object))).into_response();
    res.headers_mut()
        .insert(header::ETAG, etag(done.object.revision));
    Ok(res)
}

/// `DELETE /api/v1/schedules/{id}/overrides/{oid}`: 204.
#[utoipa::path(
    delete,
    path = "/api/v1/schedules/{id}/overrides/{oid}",
    operation_id = "catalog_delete_override",
    tag = "schedules",
    summary = "Remove an override made through the API",
    params(("id" = String, Path, description = "A schedule id"), ("oid" = String, Path, description = "The override's id")),
    responses((status = 204, description = "Removed"), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub(crate) async fn delete_override(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, oid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    st.0.app
        .delete_override(&caller, &id, &oid)
        .await
        .map_err(|e| app_error("delete override", e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/catalog/plan`
#[utoipa::path(
    post,
    path = "/api/v1/catalog/plan",
    operation_id = "catalog_plan",
    tag = "catalog",
    summary = "What applying a file would change (tocsin apply --dry-run)",
    request_body = tocsin_app::catalog::FileUpload,
    responses((status = 200, description = "The plan", body = crate::schema::PlanAnswer), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 422, description = "The body breaks a rule; `problems` names each key path", body = crate::schema::ErrorBody), (status = 415, description = "The body is not JSON", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub(crate) async fn plan(
    st: State<AppState>,
    c: Caller,
    h: HeaderMap,
    b: Body,
) -> Result<Json<Value>, ApiError> {
    upload(st, c, h, b, false).await
}

/// `POST /api/v1/catalog/apply`
#[utoipa::path(
    post,
    path = "/api/v1/catalog/apply",
    operation_id = "catalog_apply",
    tag = "catalog",
    summary = "Apply a file in one transaction (tocsin apply)",
    request_body = tocsin_app::catalog::FileUpload,
    responses((status = 200, description = "The plan, applied", body = crate::schema::PlanAnswer), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 409, description = "The change cannot be made as things are", body = crate::schema::ErrorBody), (status = 422, description = "The body breaks a rule; `problems` names each key path", body = crate::schema::ErrorBody), (status = 415, description = "The body is not JSON", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub(crate) async fn apply(
    st: State<AppState>,
    c: Caller,
    h: HeaderMap,
    b: Body,
) -> Result<Json<Value>, ApiError> {
    upload(st, c, h, b, true).await
}

/// `POST /api/v1/catalog/plan` and `/apply` (what `tocsin apply` sends):
/// the plan, as lines and as data; `/apply` also applies it, in one
/// transaction.
async fn upload(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
    apply_it: bool,
) -> Result<Json<Value>, ApiError> {
    let body = body_json(&st, &headers, body).await?;
    let upload: tocsin_app::catalog::FileUpload = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{file, document, secret_refs}} as `tocsin apply` sends: {e}"
        ))
    })?;
    let plan =
        st.0.app
            .upload(&caller, upload, apply_it)
            .await
            .map_err(|e| app_error("catalog plan", e))?;
    Ok(Json(json!({
        "file": plan.file,
        "applied": apply_it && !plan.is_empty(),
        "changes": plan.changes,
        "lines": plan.changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/catalog/export`: the catalog as tocsin.yaml (secrets as
/// `${ENV}` or `*_file` references); `X-Tocsin-Export-Variables` lists the
/// variables made up for secrets set through the API.
#[utoipa::path(
    get,
    path = "/api/v1/catalog/export",
    operation_id = "catalog_export",
    tag = "catalog",
    summary = "The catalog as tocsin.yaml, secrets as their references",
    responses((status = 200, description = "tocsin.yaml", body = Object, content_type = "application/yaml"), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub(crate) async fn export(
    State(st): State<AppState>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    let stored =
        st.0.store
            .catalog()
            .await
            .map_err(|e| ApiError::from_store("catalog export", e))?;
    let (text, made_up) =
        tocsin_app::catalog::export_yaml(&stored).map_err(|e| app_error("catalog export", e))?;
    let mut res = (
        [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
        text,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&made_up.join(",")) {
        res.headers_mut().insert("x-tocsin-export-variables", v);
    }
    Ok(res)
}

/// The heartbeat catalog routes beside the ping (`GET`/`POST` by key).
pub(crate) fn heartbeat_object_routes() -> MethodRouter<AppState> {
    axum::routing::put(
        |st: State<AppState>, c: Caller, Path(id): Path<String>, h: HeaderMap, b: Body| {
            replace(st, c, "heartbeats", id, h, b)
        },
    )
    .delete(
        |st: State<AppState>, c: Caller, Path(id): Path<String>, h: HeaderMap| {
            remove(st, c, "heartbeats", id, h)
        },
    )
}

/// An application error as the API's answer.
pub(crate) fn app_error(context: &str, e: AppError) -> ApiError {
    ApiError::from_app(context, e)
}

fn etag(revision: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// `If-Match`: `None` when absent or `*`; else one strong ETag of the
/// kind this API issues (`"7"`): anything else is a 400 naming the form.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let v = v.to_str().unwrap_or("").trim();
    if v == "*" {
        return Ok(None);
    }
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "If-Match `{v}` is not an ETag this API issues; send the ETag header of your last read (such as \"7\") or *"
            ))
        })
}

async fn body_json(st: &AppState, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = read_json_body(headers, body, st.0.body_limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))
}

/// `GET /api/v1/{kind}`
async fn list(State(st): State<AppState>, _caller: Caller, kind: &'static str) -> Json<Value> {
    let live = st.live();
    let items: Vec<Value> = live
        .loaded
        .stored
        .objects
        .iter()
        .filter(|o| o.kind == kind)
        .map(edit::view)
        .collect();
    Json(json!({ kind: items }))
}

/// The stored object's view merged under a list entry that another module
/// computed (its own fields win), for the kinds with a view of their own.
pub(crate) fn with_object(live: &Live, kind: &str, id: &str, mut entry: Value) -> Value {
    if let (Some(o), Value::Object(m)) = (live.loaded.object(kind, id), &mut entry)
        && let Value::Object(view) = edit::view(o)
    {
        for (k, v) in view {
            m.entry(k).or_insert(v);
        }
    }
    entry
}

/// `GET /api/v1/{kind}/{id}`
pub(crate) async fn show(
    State(st): State<AppState>,
    _caller: Caller,
    kind: &'static str,
    id: String,
) -> Result<Response, ApiError> {
    let live = st.live();
    let o = live
        .loaded
        .object(kind, &id)
        .ok_or_else(|| ApiError::not_found(format!("no {} `{id}`", edit::singular(kind))))?;
    let mut res = Json(edit::view(o)).into_response();
    res.headers_mut().insert(header::ETAG, etag(o.revision));
    Ok(res)
}

/// Where a source's or heartbeat's events go, for its key.
fn endpoint(st: &AppState, kind: &str, spec: &Value, key: &str) -> Value {
    let base = &st.0.public_url;
    if kind == "heartbeats" {
        return json!({"ping_url": format!("{base}/api/v1/heartbeats/{key}")});
    }
    let source_type = spec
        .get("type")
        .cloned()
        .and_then(|t| serde_json::from_value::<SourceType>(t).ok());
    let url = match source_type {
        Some(SourceType::Prometheus) | None => format!("{base}/api/v1/events/prometheus/{key}"),
        Some(SourceType::Pagerduty) => format!("{base}/v2/enqueue"),
        Some(SourceType::Opsgenie) => base.clone(),
        Some(SourceType::Ilert) => format!("{base}/api/events"),
    };
    json!({"webhook_url": url})
}

/// `POST /api/v1/{kind}`: 201 with the object; a new source or heartbeat
/// also gets `key` and its URL, shown this once.
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    kind: &'static str,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = body_json(&st, &headers, body).await?;
    let done =
        st.0.app
            .create_object(&caller, kind, body)
            .await
            .map_err(|e| app_error("catalog create", e))?;
    let mut view = edit::view(&done.object);
    if let (Some(key), Value::Object(m)) = (&done.key, &mut view) {
        m.insert("key".into(), Value::String(key.clone()));
        if let Value::Object(urls) = endpoint(&st, kind, &done.object.spec, key) {
            m.extend(urls);
        }
    }
    let mut res = (StatusCode::CREATED, Json(view)).into_response();
    res.headers_mut()
        .insert(header::ETAG, etag(done.object.revision));
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/{kind}/{}", done.object.id)) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

/// `PUT /api/v1/{kind}/{id}`
async fn replace(
    State(st): State<AppState>,
    caller: Caller,
    kind: &'static str,
    id: String,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = body_json(&st, &headers, body).await?;
    let expected = if_match(&headers)?;
    let done =
        st.0.app
            .replace_object(&caller, kind, &id, body, expected)
            .await
            .map_err(|e| app_error("catalog replace", e))?;
    let mut res = Json(edit::view(&done.object)).into_response();
    res.headers_mut()
        .insert(header::ETAG, etag(done.object.revision));
    Ok(res)
}

/// `DELETE /api/v1/{kind}/{id}`: 204.
async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    kind: &'static str,
    id: String,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    st.0.app
        .delete_object(&caller, kind, &id, expected)
        .await
        .map_err(|e| app_error("catalog delete", e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/sources/{id}/rotate-key`: the new key and URL, once.
#[utoipa::path(
    post,
    path = "/api/v1/sources/{id}/rotate-key",
    operation_id = "catalog_rotate_key",
    tag = "sources",
    summary = "Give a source a new key (shown once)",
    params(("id" = String, Path, description = "A source id")),
    responses((status = 200, description = "The new key and URL", body = crate::schema::RotatedKey), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 409, description = "The change cannot be made as things are", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub(crate) async fn rotate_key(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key =
        st.0.app
            .rotate_key(&caller, &id)
            .await
            .map_err(|e| app_error("rotate key", e))?;
    let spec = st
        .live()
        .loaded
        .object("sources", &id)
        .map(|o| o.spec.clone())
        .unwrap_or(Value::Null);
    let mut out = json!({"id": id, "key": key});
    if let (Value::Object(m), Value::Object(urls)) =
        (&mut out, endpoint(&st, "sources", &spec, &key))
    {
        m.extend(urls);
    }
    Ok(Json(out))
}
