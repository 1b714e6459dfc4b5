use chrono::{NaiveDate, TimeZone, Timelike};

use super::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
}

fn hm(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

fn layer(users: &[&str], rotation_secs: u64, handoff: &str) -> Layer {
    Layer {
        name: "l".into(),
        users: users.iter().map(|u| (*u).to_owned()).collect(),
        rotation: Rotation::from_secs(rotation_secs),
        handoff: local(handoff),
        restrictions: vec![],
    }
}

fn schedule(tz: Tz, layers: Vec<Layer>) -> Schedule {
    Schedule {
        id: "s".into(),
        tz,
        layers,
        overrides: vec![],
    }
}

fn who(s: &Schedule, t: DateTime<Utc>) -> Option<String> {
    s.on_call(t).map(|o| o.user)
}

const WEEK: u64 = 7 * 86_400;
const DAY: u64 = 86_400;

#[test]
fn weekly_monday_0900_berlin_stays_0900_in_winter_and_summer() {
    let s = schedule(
        chrono_tz::Europe::Berlin,
        vec![layer(&["alice", "bob"], WEEK, "2026-01-05T09:00")],
    );
    // Winter: 09:00 CET is 08:00 UTC.
    assert_eq!(who(&s, utc(2026, 1, 12, 7, 59)).as_deref(), Some("alice"));
    assert_eq!(who(&s, utc(2026, 1, 12, 8, 0)).as_deref(), Some("bob"));
    // First Monday after spring forward (29 March): 09:00 CEST is 07:00 UTC; week 12 → alice.
    assert_eq!(who(&s, utc(2026, 3, 30, 6, 59)).as_deref(), Some("bob"));
    assert_eq!(who(&s, utc(2026, 3, 30, 7, 0)).as_deref(), Some("alice"));
    // First Monday after fall back (25 October): 09:00 CET is 08:00 UTC again; week 42 → alice.
    assert_eq!(who(&s, utc(2026, 10, 26, 7, 59)).as_deref(), Some("bob"));
    assert_eq!(who(&s, utc(2026, 10, 26, 8, 0)).as_deref(), Some("alice"));
    // The handoff instants, read in local time, are all Monday 09:00.
    let shifts = s.shifts(utc(2026, 3, 1, 0, 0), utc(2026, 11, 30, 0, 0));
    for sh in &shifts[1..] {
        let l = sh.start.with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!(
            (l.weekday(), l.hour(), l.minute()),
            (Weekday::Mon, 9, 0),
            "{sh:?}"
        );
    }
}

#[test]
fn weekly_monday_0900_new_york_across_both_changes() {
    let s = schedule(
        chrono_tz::America::New_York,
        vec![layer(&["alice", "bob"], WEEK, "2026-01-05T09:00")],
    );
    assert_eq!(who(&s, utc(2026, 1, 12, 13, 59)).as_deref(), Some("alice"));
    assert_eq!(who(&s, utc(2026, 1, 12, 14, 0)).as_deref(), Some("bob"));
    // Spring forward 8 March: Monday 9 March 09:00 EDT is 13:00 UTC; week 9 → bob.
    assert_eq!(who(&s, utc(2026, 3, 9, 12, 59)).as_deref(), Some("alice"));
    assert_eq!(who(&s, utc(2026, 3, 9, 13, 0)).as_deref(), Some("bob"));
    // Fall back 1 November: Monday 2 November 09:00 EST is 14:00 UTC; week 43 → bob.
    assert_eq!(who(&s, utc(2026, 11, 2, 13, 59)).as_deref(), Some("alice"));
    assert_eq!(who(&s, utc(2026, 11, 2, 14, 0)).as_deref(), Some("bob"));
}

#[test]
fn handoff_at_0230_on_spring_forward_day_moves_to_0330_once() {
    let tz = chrono_tz::Europe::Berlin;
    let s = schedule(tz, vec![layer(&["a", "b"], DAY, "2026-03-28T02:30")]);
    // 28 March 02:30 CET = 01:30 UTC; 29 March 02:30 does not exist → 03:30 CEST = 01:30 UTC.
    assert_eq!(
        resolve_local(tz, local("2026-03-29T02:30")),
        utc(2026, 3, 29, 1, 30)
    );
    assert_eq!(who(&s, utc(2026, 3, 29, 1, 29)).as_deref(), Some("a"));
    assert_eq!(who(&s, utc(2026, 3, 29, 1, 30)).as_deref(), Some("b"));
    // 30 March 02:30 CEST = 00:30 UTC.
    assert_eq!(who(&s, utc(2026, 3, 30, 0, 30)).as_deref(), Some("a"));
    // Exactly one handoff a day: no gap, no overlap.
    let shifts = s.shifts(utc(2026, 3, 28, 1, 30), utc(2026, 3, 31, 0, 30));
    let spans: Vec<(String, i64)> = shifts
        .iter()
        .map(|s| (s.user.clone(), (s.end - s.start).num_hours()))
        .collect();
    assert_eq!(
        spans,
        [("a".into(), 24), ("b".into(), 23), ("a".into(), 24)]
    );
    for w in shifts.windows(2) {
        assert_eq!(w[0].end, w[1].start);
    }
}

#[test]
fn ambiguous_local_time_on_fall_back_day_is_the_first_occurrence() {
    let tz = chrono_tz::Europe::Berlin;
    // 25 October 02:30 happens twice: first in CEST (00:30 UTC), then CET (01:30 UTC).
    assert_eq!(
        resolve_local(tz, local("2026-10-25T02:30")),
        utc(2026, 10, 25, 0, 30)
    );
    let s = schedule(tz, vec![layer(&["a", "b"], DAY, "2026-10-24T02:30")]);
    assert_eq!(who(&s, utc(2026, 10, 25, 0, 29)).as_deref(), Some("a"));
    assert_eq!(who(&s, utc(2026, 10, 25, 0, 30)).as_deref(), Some("b"));
    assert_eq!(
        who(&s, utc(2026, 10, 25, 1, 30)).as_deref(),
        Some("b"),
        "no second handoff at the repeat"
    );
    let shifts = s.shifts(utc(2026, 10, 24, 0, 30), utc(2026, 10, 26, 1, 30));
    let spans: Vec<i64> = shifts
        .iter()
        .map(|s| (s.end - s.start).num_hours())
        .collect();
    assert_eq!(spans, [24, 25]);
}

#[test]
fn hour_rotations_count_elapsed_time() {
    let tz = chrono_tz::Europe::Berlin;
    let s = schedule(tz, vec![layer(&["a", "b"], 12 * 3600, "2026-03-28T08:00")]);
    // 08:00 CET = 07:00 UTC; every 12 h of real time, so 09:00/21:00 local after the change.
    assert_eq!(who(&s, utc(2026, 3, 29, 6, 59)).as_deref(), Some("b"));
    assert_eq!(who(&s, utc(2026, 3, 29, 7, 0)).as_deref(), Some("a"));
    let sh = s.shifts(utc(2026, 3, 29, 7, 0), utc(2026, 3, 30, 0, 0));
    assert_eq!(sh[1].start.with_timezone(&tz).hour(), 21);
}

#[test]
fn a_rotation_that_started_years_ago_and_questions_about_the_past() {
    let s = schedule(
        chrono_tz::Europe::Berlin,
        vec![layer(&["u0", "u1", "u2"], WEEK, "2019-01-07T09:00")],
    );
    // 2019-01-07 → 2026-11-23 is exactly 411 weeks; 411 mod 3 = 0.
    assert_eq!(who(&s, utc(2026, 11, 23, 8, 0)).as_deref(), Some("u0"));
    assert_eq!(who(&s, utc(2026, 11, 23, 7, 59)).as_deref(), Some("u2"));
    // Before the first handoff the rotation runs backwards: the week before is u2's.
    assert_eq!(who(&s, utc(2019, 1, 1, 12, 0)).as_deref(), Some("u2"));
    assert_eq!(who(&s, utc(2018, 12, 25, 12, 0)).as_deref(), Some("u1"));
}

#[test]
fn restriction_across_midnight_belongs_to_its_start_day() {
    let tz = chrono_tz::Europe::Berlin;
    let mut l = layer(&["night"], WEEK, "2026-01-05T09:00");
    l.restrictions = vec![Restriction {
        days: vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
        from: hm("22:00"),
        to: hm("06:00"),
    }];
    let s = schedule(tz, vec![l]);
    let at = |d: &str| resolve_local(tz, local(d));
    assert_eq!(
        who(&s, at("2026-01-12T23:00")).as_deref(),
        Some("night"),
        "Monday night"
    );
    assert_eq!(
        who(&s, at("2026-01-13T05:59")).as_deref(),
        Some("night"),
        "Tuesday morning, Monday's window"
    );
    assert_eq!(who(&s, at("2026-01-13T06:00")), None);
    assert_eq!(
        who(&s, at("2026-01-17T05:00")).as_deref(),
        Some("night"),
        "Saturday morning, Friday's window"
    );
    assert_eq!(who(&s, at("2026-01-17T23:00")), None, "Saturday night");
    assert_eq!(
        who(&s, at("2026-01-12T05:00")),
        None,
        "Monday morning would be Sunday's window"
    );
    let shifts = s.shifts(at("2026-01-12T00:00"), at("2026-01-19T00:00"));
    assert_eq!(shifts.len(), 5);
    assert!(shifts.iter().all(|s| (s.end - s.start).num_hours() == 8));
}

#[test]
fn higher_layers_win_and_overrides_beat_layers() {
    let tz = chrono_tz::Europe::Berlin;
    let base = layer(&["base"], WEEK, "2026-01-05T09:00");
    let mut day = layer(&["day"], WEEK, "2026-01-05T09:00");
    day.restrictions = vec![Restriction {
        days: vec![],
        from: hm("08:00"),
        to: hm("20:00"),
    }];
    let mut s = schedule(tz, vec![base, day]);
    s.overrides = vec![Override {
        user: "carol".into(),
        from: local("2026-03-28T18:00"),
        to: local("2026-03-30T09:00"),
    }];
    let at = |d: &str| resolve_local(tz, local(d));
    assert_eq!(
        s.on_call(at("2026-03-02T12:00")),
        Some(OnCall {
            user: "day".into(),
            source: ShiftSource::Layer(1)
        })
    );
    assert_eq!(
        s.on_call(at("2026-03-02T21:00")),
        Some(OnCall {
            user: "base".into(),
            source: ShiftSource::Layer(0)
        })
    );
    assert_eq!(
        s.on_call(at("2026-03-29T12:00")),
        Some(OnCall {
            user: "carol".into(),
            source: ShiftSource::Override(0)
        })
    );

    // The override spans the spring-forward night: 38 real hours, not 39.
    let shifts = s.shifts(at("2026-03-28T12:00"), at("2026-03-30T12:00"));
    let o: Vec<&Shift> = shifts
        .iter()
        .filter(|s| s.source == ShiftSource::Override(0))
        .collect();
    assert_eq!(o.len(), 1);
    assert_eq!(
        (o[0].start, o[0].end),
        (utc(2026, 3, 28, 17, 0), utc(2026, 3, 30, 7, 0))
    );
    assert_eq!((o[0].end - o[0].start).num_hours(), 38);
    // Before it, the day layer until 18:00; after it, the day layer again.
    assert_eq!(shifts.first().map(|s| s.user.as_str()), Some("day"));
    assert_eq!(shifts.last().map(|s| s.user.as_str()), Some("day"));
    for w in shifts.windows(2) {
        assert_eq!(w[0].end, w[1].start, "no gaps with a 24/7 base layer");
    }
}

#[test]
fn empty_schedule_and_empty_ranges() {
    let s = schedule(chrono_tz::UTC, vec![]);
    assert_eq!(s.on_call(utc(2026, 1, 1, 0, 0)), None);
    assert!(
        s.shifts(utc(2026, 1, 1, 0, 0), utc(2026, 2, 1, 0, 0))
            .is_empty()
    );
    let s = schedule(chrono_tz::UTC, vec![layer(&["a"], DAY, "2026-01-01T00:00")]);
    assert!(
        s.shifts(utc(2026, 1, 2, 0, 0), utc(2026, 1, 1, 0, 0))
            .is_empty()
    );
    let all = s.shifts(utc(2026, 1, 1, 0, 0), utc(2026, 1, 31, 0, 0));
    assert_eq!(all.len(), 1, "one user, merged into one shift");
    assert_eq!(
        NaiveDate::from_ymd_opt(2026, 1, 1).map(|d| d.weekday()),
        Some(Weekday::Thu)
    );
}
