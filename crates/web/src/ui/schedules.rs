//! Schedules: who is on call now and next, a 14-day timeline of every
//! layer, the overrides and the final result (one row a day, so it reads
//! on a phone), overrides ("I take this shift", "cover me"), the iCal
//! feed; and "My on-call": my shifts across every schedule, my open
//! alerts, my feed.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use tocsin_domain::schedule::{Schedule, Shift, resolve_local};

use super::{Chrome, Posted, UiError, Viewer, html};
use crate::state::{AppState, Live, ScheduleRuntime};

/// How far the timeline and the shift list look ahead.
const DAYS: i64 = 14;

/// A colour class per user: their place among the users, so that two
/// users of one schedule differ and a user keeps their colour everywhere.
fn colour(live: &Live, user: &str) -> String {
    let n = live
        .catalog
        .users
        .keys()
        .position(|u| u == user)
        .unwrap_or(0);
    format!("u{}", n % 8)
}

fn local(tz: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz).format("%a %-d %b %H:%M").to_string()
}

fn local_short(tz: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz).format("%H:%M").to_string()
}

/// One stretch of one track within a day, in percent of the day.
pub(crate) struct Segment {
    x: String,
    w: String,
    label: String,
    class: String,
    title: String,
}

pub(crate) struct Track {
    name: String,
    segments: Vec<Segment>,
    strong: bool,
}

pub(crate) struct DayRow {
    label: String,
    tracks: Vec<Track>,
    /// The final result of the day in words (for screen readers and the list).
    summary: String,
    /// Where "now" is, in percent, on today's row.
    now: Option<String>,
}

/// The days of the timeline, midnight to midnight in the schedule's time
/// zone (a day of a DST change is 23 or 25 hours long).
fn days(tz: Tz, now: DateTime<Utc>) -> Vec<(String, DateTime<Utc>, DateTime<Utc>)> {
    let today = now.with_timezone(&tz).date_naive();
    (0..DAYS)
        .filter_map(|i| {
            let d = today.checked_add_signed(TimeDelta::days(i))?;
            let next = d.succ_opt()?;
            let start = resolve_local(tz, NaiveDateTime::new(d, NaiveTime::MIN));
            let end = resolve_local(tz, NaiveDateTime::new(next, NaiveTime::MIN));
            Some((d.format("%a %-d %b").to_string(), start, end))
        })
        .collect()
}

/// Who, from, to.
type Stretch = (String, DateTime<Utc>, DateTime<Utc>);

fn clip(
    live: &Live,
    tz: Tz,
    shifts: &[Stretch],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<Segment> {
    let len = (end - start).num_seconds().max(1) as f64;
    shifts
        .iter()
        .filter(|(_, s, e)| *s < end && *e > start)
        .map(|(user, s, e)| {
            let a = (*s).max(start);
            let b = (*e).min(end);
            let name = live.user_name(user);
            Segment {
                x: format!("{:.3}", (a - start).num_seconds() as f64 / len * 100.0),
                w: format!("{:.3}", (b - a).num_seconds() as f64 / len * 100.0),
                title: format!("{name}: {} – {}", local(tz, *s), local(tz, *e)),
                label: name,
                class: colour(live, user),
            }
        })
        .collect()
}

fn plain(shifts: &[Shift]) -> Vec<Stretch> {
    shifts
        .iter()
        .map(|s| (s.user.clone(), s.start, s.end))
        .collect()
}

/// The timeline of `s` from today on: per day, each layer, the overrides
/// and the final result.
pub(crate) fn timeline(live: &Live, s: &Schedule, now: DateTime<Utc>) -> Vec<DayRow> {
    let tz = s.tz;
    let days = days(tz, now);
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Vec::new();
    };
    let (from, to) = (first.1, last.2);
    let layers: Vec<(String, Vec<Stretch>)> = s
        .layers
        .iter()
        .map(|l| {
            let alone = Schedule {
                id: s.id.clone(),
                tz,
                layers: vec![l.clone()],
                overrides: Vec::new(),
            };
            (l.name.clone(), plain(&alone.shifts(from, to)))
        })
        .collect();
    let overrides: Vec<Stretch> = s
        .overrides
        .iter()
        .map(|o| {
            (
                o.user.clone(),
                resolve_local(tz, o.from),
                resolve_local(tz, o.to),
            )
        })
        .filter(|(_, a, b)| *b > from && *a < to)
        .collect();
    let fin = plain(&s.shifts(from, to));
    days.into_iter()
        .map(|(label, start, end)| {
            let mut tracks: Vec<Track> = layers
                .iter()
                .map(|(name, sh)| Track {
                    name: name.clone(),
                    segments: clip(live, tz, sh, start, end),
                    strong: false,
                })
                .collect();
            if !overrides.is_empty() {
                tracks.push(Track {
                    name: "Overrides".into(),
                    segments: clip(live, tz, &overrides, start, end),
                    strong: false,
                });
            }
            let final_segments = clip(live, tz, &fin, start, end);
            let summary = if final_segments.is_empty() {
                "nobody on call".to_owned()
            } else {
                fin.iter()
                    .filter(|(_, a, b)| *a < end && *b > start)
                    .map(|(u, a, b)| {
                        format!(
                            "{} {}–{}",
                            live.user_name(u),
                            local_short(tz, (*a).max(start)),
                            if *b >= end {
                                "24:00".to_owned()
                            } else {
                                local_short(tz, *b)
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            tracks.push(Track {
                name: "On call".into(),
                segments: final_segments,
                strong: true,
            });
            let now_at = (start <= now && now < end).then(|| {
                format!(
                    "{:.3}",
                    (now - start).num_seconds() as f64 / (end - start).num_seconds().max(1) as f64
                        * 100.0
                )
            });
            DayRow {
                label,
                tracks,
                summary,
                now: now_at,
            }
        })
        .collect()
}

/// Who is on call now (until when), and who is next (from when).
fn now_and_next(live: &Live, s: &Schedule, now: DateTime<Utc>) -> (Option<String>, Option<String>) {
    let shifts = s.shifts(now, now + TimeDelta::days(60));
    let tz = s.tz;
    let current = shifts.first().filter(|sh| sh.start <= now);
    let cur = current.map(|sh| {
        format!(
            "{} ({}) until {}",
            live.user_name(&sh.user),
            s.source_name(sh.source),
            local(tz, sh.end)
        )
    });
    let next = shifts
        .iter()
        .find(|sh| sh.start > now && current.is_none_or(|c| c.user != sh.user))
        .map(|sh| format!("{} from {}", live.user_name(&sh.user), local(tz, sh.start)));
    (cur, next)
}

struct ListRow {
    id: String,
    name: String,
    timezone: String,
    now: String,
    next: String,
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<ListRow>,
}

fn find<'a>(live: &'a Live, id: &str) -> Result<&'a ScheduleRuntime, UiError> {
    live.schedules
        .iter()
        .find(|s| s.model.id == id)
        .ok_or_else(|| UiError::not_found(format!("there is no schedule `{id}`")))
}

/// `GET /schedules`
pub(crate) async fn list(State(st): State<AppState>, viewer: Viewer) -> Response {
    let live = st.live();
    let now = st.now();
    let rows = live
        .schedules
        .iter()
        .map(|s| {
            let (cur, next) = now_and_next(&live, &s.model, now);
            ListRow {
                id: s.model.id.clone(),
                name: s.name.clone(),
                timezone: s.model.tz.name().to_owned(),
                now: cur.unwrap_or_else(|| "nobody".into()),
                next: next.unwrap_or_else(|| "—".into()),
            }
        })
        .collect();
    html(&ListPage {
        c: Chrome::new(&viewer, "Schedules", "/schedules"),
        rows,
    })
}

struct ShiftRow {
    when: String,
    user: String,
    source: String,
    from: String,
    to: String,
    mine: bool,
}

struct OverrideRow {
    id: Option<String>,
    user: String,
    from: String,
    to: String,
    file: Option<String>,
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct SchedulePage {
    c: Chrome,
    id: String,
    name: String,
    timezone: String,
    team: String,
    now: String,
    next: String,
    days: Vec<DayRow>,
    shifts: Vec<ShiftRow>,
    overrides: Vec<OverrideRow>,
    can_override: bool,
    users: Vec<(String, String)>,
    me: String,
    ical: String,
    default_from: String,
    default_to: String,
    error: Option<String>,
    done: Option<&'static str>,
}

/// `GET /schedules/{id}`
pub(crate) async fn page(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let done = crate::query_param(raw.as_deref(), "done").and_then(|d| match d.as_str() {
        "override" => Some("Override added: the schedule below includes it."),
        "deleted" => Some("Override removed."),
        _ => None,
    });
    render(&st, &viewer, &id, None, done, axum::http::StatusCode::OK)
}

fn render(
    st: &AppState,
    viewer: &Viewer,
    id: &str,
    error: Option<String>,
    done: Option<&'static str>,
    status: axum::http::StatusCode,
) -> Result<Response, UiError> {
    let live = st.live();
    let s = find(&live, id)?;
    let m = &s.model;
    let tz = m.tz;
    let now = st.now();
    let (cur, next) = now_and_next(&live, m, now);
    let horizon = now + TimeDelta::days(DAYS);
    let me = viewer.user_id().to_owned();
    let fmt_local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string();
    let shifts = m
        .shifts(now, horizon)
        .into_iter()
        .map(|sh| ShiftRow {
            when: format!("{} – {}", local(tz, sh.start), local(tz, sh.end)),
            user: live.user_name(&sh.user),
            source: m.source_name(sh.source),
            from: fmt_local(sh.start.max(now)),
            to: fmt_local(sh.end),
            mine: sh.user == me,
        })
        .collect();
    // Overrides made here can be removed here; those of a file are changed there.
    let loaded = &live.loaded;
    let managed: Vec<(String, String, String, String)> = loaded
        .stored
        .objects
        .iter()
        .filter(|o| o.kind == tocsin_app::catalog::OVERRIDES)
        .filter(|o| o.spec.get("schedule").and_then(|v| v.as_str()) == Some(id))
        .map(|o| {
            let f = |k: &str| {
                o.spec
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            (o.id.clone(), f("user"), f("from"), f("to"))
        })
        .collect();
    let file = loaded
        .object("schedules", id)
        .and_then(|o| match &o.origin {
            tocsin_store::Origin::Provisioned { file } => Some(file.clone()),
            tocsin_store::Origin::Managed => None,
        });
    let overrides = m
        .overrides
        .iter()
        .filter(|o| resolve_local(tz, o.to) > now)
        .map(|o| {
            let from = o.from.format("%Y-%m-%dT%H:%M:%S").to_string();
            let to = o.to.format("%Y-%m-%dT%H:%M:%S").to_string();
            let id = managed
                .iter()
                .find(|(_, u, f, t)| *u == o.user && *f == from && *t == to)
                .map(|(id, ..)| id.clone());
            OverrideRow {
                file: if id.is_none() { file.clone() } else { None },
                id,
                user: live.user_name(&o.user),
                from: local(tz, resolve_local(tz, o.from)),
                to: local(tz, resolve_local(tz, o.to)),
            }
        })
        .collect();
    let can_override = st.0.app.check_overrides(viewer.principal(), id).is_ok();
    let catalog = &live.catalog;
    let start = now.with_timezone(&tz);
    let page = SchedulePage {
        c: Chrome::new(viewer, s.name.clone(), "/schedules"),
        id: id.to_owned(),
        name: s.name.clone(),
        timezone: tz.name().to_owned(),
        team: catalog
            .schedules
            .get(id)
            .and_then(|e| e.team.clone())
            .unwrap_or_default(),
        now: cur.unwrap_or_else(|| "nobody".into()),
        next: next.unwrap_or_else(|| "—".into()),
        days: timeline(&live, m, now),
        shifts,
        overrides,
        can_override,
        users: catalog
            .users
            .values()
            .map(|u| (u.id.clone(), u.name.clone()))
            .collect(),
        me,
        ical: st.feed_url(&s.feed_token),
        default_from: start.format("%Y-%m-%dT%H:00").to_string(),
        default_to: (start + TimeDelta::hours(8))
            .format("%Y-%m-%dT%H:00")
            .to_string(),
        error,
        done,
    };
    Ok((status, html(&page)).into_response())
}

/// `POST /schedules/{id}/overrides`: `user` takes the shifts from `from`
/// to `to` (local times of the schedule).
pub(crate) async fn create_override(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted,
) -> Result<Response, UiError> {
    let user = form
        .get("user")
        .filter(|u| !u.is_empty())
        .unwrap_or(viewer.user_id());
    let spec = serde_json::json!({
        "user": user,
        "from": form.get("from").unwrap_or_default(),
        "to": form.get("to").unwrap_or_default(),
    });
    match st
        .0
        .app
        .create_override(viewer.principal(), &id, spec)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/schedules/{id}?done=override")).into_response()),
        Err(e @ tocsin_app::AppError::Invalid(_)) => render(
            &st,
            &viewer,
            &id,
            Some(e.to_string()),
            None,
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => Err(UiError::from_app("create override", e)),
    }
}

/// `POST /schedules/{id}/overrides/{oid}/delete`
pub(crate) async fn delete_override(
    State(st): State<AppState>,
    Path((id, oid)): Path<(String, String)>,
    Posted { viewer, form: _ }: Posted,
) -> Result<Response, UiError> {
    st.0.app
        .delete_override(viewer.principal(), &id, &oid)
        .await
        .map_err(|e| UiError::from_app("delete override", e))?;
    Ok(Redirect::to(&format!("/schedules/{id}?done=deleted")).into_response())
}

struct MyShift {
    schedule_id: String,
    schedule: String,
    when: String,
    now: bool,
}

#[derive(Template)]
#[template(path = "oncall.html")]
struct MyPage {
    c: Chrome,
    shifts: Vec<MyShift>,
    alerts: Vec<String>,
    ical: String,
    on_call_now: Vec<String>,
}

/// `GET /oncall`: my shifts in the next four weeks across every schedule,
/// my open alerts, my feed.
pub(crate) async fn mine(State(st): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    let live = st.live();
    let now = st.now();
    let me = viewer.user_id();
    let tz: Tz = live
        .catalog
        .users
        .get(me)
        .and_then(|u| u.timezone.as_deref())
        .and_then(|t| t.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let mut shifts: Vec<(DateTime<Utc>, MyShift)> = Vec::new();
    let mut on_call_now = Vec::new();
    for s in &live.schedules {
        for sh in s.model.shifts(now, now + TimeDelta::days(28)) {
            if sh.user != me {
                continue;
            }
            let is_now = sh.start <= now;
            if is_now {
                on_call_now.push(s.name.clone());
            }
            shifts.push((
                sh.start,
                MyShift {
                    schedule_id: s.model.id.clone(),
                    schedule: s.name.clone(),
                    when: format!(
                        "{} – {} ({})",
                        local(tz, sh.start),
                        local(tz, sh.end),
                        tz.name()
                    ),
                    now: is_now,
                },
            ));
        }
    }
    shifts.sort_by_key(|(start, _)| *start);
    let open =
        st.0.store
            .open_alerts_of_user(me, 100)
            .await
            .map_err(|e| UiError::from_store("my alerts", e))?;
    let alerts = open
        .iter()
        .map(|a| super::alerts::row_html(&st, viewer.principal(), a, now))
        .collect();
    let ical = live
        .users
        .iter()
        .find(|u| u.id == me)
        .map(|u| st.feed_url(&u.feed_token))
        .unwrap_or_default();
    Ok(html(&MyPage {
        c: Chrome::new(&viewer, "My on-call", "/oncall"),
        shifts: shifts.into_iter().map(|(_, s)| s).collect(),
        alerts,
        ical,
        on_call_now,
    }))
}
