//! Schedules: who is on call, shifts, users, and iCalendar feeds at
//! secret-token URLs (SPEC §4).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tocsin_domain::TokenDigest;
use tocsin_domain::schedule::{OnCall, Shift};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{AppState, Live, ScheduleRuntime};

/// Longest range `/shifts` answers (and a feed covers).
const MAX_RANGE_DAYS: i64 = 366;
const FEED_PAST_DAYS: i64 = 30;
const FEED_FUTURE_DAYS: i64 = 180;

fn schedule<'a>(live: &'a Live, id: &str) -> Result<&'a ScheduleRuntime, ApiError> {
    live.schedules
        .iter()
        .find(|s| s.model.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no schedule `{id}`")))
}

fn on_call_json(st: &Live, s: &ScheduleRuntime, oc: Option<OnCall>) -> Value {
    match oc {
        Some(oc) => json!({
            "user": oc.user,
            "name": st.user_name(&oc.user),
            "source": oc.source,
            "source_name": s.model.source_name(oc.source),
        }),
        None => Value::Null,
    }
}

fn shift_json(st: &Live, s: &ScheduleRuntime, sh: &Shift) -> Value {
    json!({
        "user": sh.user,
        "name": st.user_name(&sh.user),
        "start": sh.start,
        "end": sh.end,
        "source": sh.source,
        "source_name": s.model.source_name(sh.source),
    })
}

fn parse_time(name: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.map(|v| {
        DateTime::parse_from_rfc3339(v)
            .map(|t| t.to_utc())
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "query parameter `{name}`: `{v}` is not an RFC 3339 time such as 2026-03-29T12:00:00Z"
                ))
            })
    })
    .transpose()
}

/// `GET /api/v1/schedules`
#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    operation_id = "schedules_list",
    tag = "schedules",
    summary = "Schedules with who is on call now",
    responses((status = 200, description = "OK", body = crate::schema::ScheduleList), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn list(State(st): State<AppState>, _caller: Caller) -> Json<Value> {
    let now = st.now();
    let live = st.live();
    let out: Vec<Value> = live
        .schedules
        .iter()
        .map(|s| {
            let view = json!({
                "id": s.model.id,
                "name": s.name,
                "timezone": s.model.tz.name(),
                "on_call": on_call_json(&live, s, s.model.on_call(now)),
                "ical_url": st.feed_url(&s.feed_token),
            });
            crate::catalog::with_object(&live, "schedules", &s.model.id, view)
        })
        .collect();
    Json(json!({"schedules": out}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    at: Option<String>,
}

/// `GET /api/v1/schedules/{id}/oncall?at=`
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{id}/oncall",
    operation_id = "schedules_oncall",
    tag = "schedules",
    summary = "Who is on call at an instant",
    params(("id" = String, Path, description = "A schedule id"), ("at" = Option<String>, Query, description = "RFC 3339 (default: now)", format = DateTime)),
    responses((status = 200, description = "OK", body = crate::schema::OnCallAnswer), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn oncall(
    State(st): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q: AtQuery = crate::parse_query(raw.as_deref())?;
    let live = st.live();
    let s = schedule(&live, &id)?;
    let at = parse_time("at", q.at.as_deref())?.unwrap_or_else(|| st.now());
    Ok(Json(json!({
        "schedule": s.model.id,
        "at": at,
        "on_call": on_call_json(&live, s, s.model.on_call(at)),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/schedules/{id}/shifts?from=&to=` (default: the next 7 days).
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{id}/shifts",
    operation_id = "schedules_shifts",
    tag = "schedules",
    summary = "The shifts in a range (default the next 7 days, at most 366)",
    params(("id" = String, Path, description = "A schedule id"), ("from" = Option<String>, Query, description = "RFC 3339 (default: now)", format = DateTime), ("to" = Option<String>, Query, description = "RFC 3339 (default: from + 7 days)", format = DateTime)),
    responses((status = 200, description = "OK", body = crate::schema::ShiftList), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn shifts(
    State(st): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q: RangeQuery = crate::parse_query(raw.as_deref())?;
    let live = st.live();
    let s = schedule(&live, &id)?;
    let from = parse_time("from", q.from.as_deref())?.unwrap_or_else(|| st.now());
    let to = parse_time("to", q.to.as_deref())?.unwrap_or(from + TimeDelta::days(7));
    if to <= from {
        return Err(ApiError::bad_request("`to` must be after `from`"));
    }
    if to - from > TimeDelta::days(MAX_RANGE_DAYS) {
        return Err(ApiError::bad_request(format!(
            "the range is longer than {MAX_RANGE_DAYS} days; ask for less"
        )));
    }
    let shifts: Vec<Value> = s
        .model
        .shifts(from, to)
        .iter()
        .map(|sh| shift_json(&live, s, sh))
        .collect();
    Ok(Json(
        json!({"schedule": s.model.id, "from": from, "to": to, "shifts": shifts}),
    ))
}

/// `GET /api/v1/users`
#[utoipa::path(
    get,
    path = "/api/v1/users",
    operation_id = "schedules_users",
    tag = "users",
    summary = "Users, each with the iCalendar feed of their shifts",
    responses((status = 200, description = "OK", body = crate::schema::UserList), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn users(State(st): State<AppState>, _caller: Caller) -> Json<Value> {
    let live = st.live();
    let out: Vec<Value> = live
        .users
        .iter()
        .map(|u| {
            let view = json!({
                "id": u.id,
                "name": u.name,
                "email": u.email,
                "timezone": u.timezone,
                "role": u.role,
                "teams": u.teams,
                "ical_url": st.feed_url(&u.feed_token),
            });
            crate::catalog::with_object(&live, "users", &u.id, view)
        })
        .collect();
    Json(json!({"users": out}))
}

/// `GET /ical/{token}.ics`: a schedule's shifts, or one user's shifts in
/// every schedule. The token is the credential.
#[utoipa::path(
    get,
    path = "/ical/{token}",
    operation_id = "schedules_feed",
    tag = "schedules",
    summary = "iCalendar feed of a schedule or of one user's shifts",
    params(("token" = String, Path, description = "The feed token (with or without .ics): the credential")),
    security(()),
    responses((status = 200, description = "RFC 5545 calendar", body = String, content_type = "text/calendar"), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn feed(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let token = token.strip_suffix(".ics").unwrap_or(&token);
    let digest = TokenDigest::of(token);
    let matches = |t: &str| TokenDigest::of(t).ct_eq(&digest);
    let now = st.now();
    let (from, to) = (
        now - TimeDelta::days(FEED_PAST_DAYS),
        now + TimeDelta::days(FEED_FUTURE_DAYS),
    );

    let live = st.live();
    let mut schedule_hit = None;
    for s in &live.schedules {
        if matches(&s.feed_token) && schedule_hit.is_none() {
            schedule_hit = Some(s);
        }
    }
    let mut user_hit = None;
    for u in &live.users {
        if matches(&u.feed_token) && user_hit.is_none() {
            user_hit = Some(u);
        }
    }
    let (title, events) = match (schedule_hit, user_hit) {
        (Some(s), _) => {
            let events = s
                .model
                .shifts(from, to)
                .into_iter()
                .map(|sh| (s, sh))
                .collect::<Vec<_>>();
            (format!("On call: {}", s.name), events)
        }
        (None, Some(u)) => {
            let events = live
                .schedules
                .iter()
                .flat_map(|s| {
                    s.model
                        .shifts(from, to)
                        .into_iter()
                        .filter(|sh| sh.user == u.id)
                        .map(move |sh| (s, sh))
                })
                .collect::<Vec<_>>();
            (format!("My on-call shifts: {}", u.name), events)
        }
        (None, None) => return Err(ApiError::not_found("no calendar feed has this token")),
    };
    let body = render_calendar(&live, &title, &events, now);
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        body,
    ))
}

fn render_calendar(
    st: &Live,
    title: &str,
    events: &[(&ScheduleRuntime, Shift)],
    now: DateTime<Utc>,
) -> String {
    use icalendar::{Calendar, Component, Event, EventLike};
    let mut cal = Calendar::new();
    cal.name(title);
    for (s, sh) in events {
        let uid = format!("{}-{}-{}@tocsin", s.model.id, sh.user, sh.start.timestamp());
        let summary = format!("On call: {} ({})", st.user_name(&sh.user), s.name);
        let description = format!(
            "Schedule {} ({}), from {}",
            s.name,
            s.model.tz.name(),
            s.model.source_name(sh.source)
        );
        cal.push(
            Event::new()
                .uid(&uid)
                .summary(&summary)
                .description(&description)
                .starts(sh.start)
                .ends(sh.end)
                .timestamp(now)
                .done(),
        );
    }
    cal.done().to_string()
}
