//! On-call schedules (SPEC §4): layers that rotate through users at a local
//! wall-clock handoff, restricted to weekly windows, stacked so that a higher
//! (later) layer wins where it has somebody, with overrides on top.
//!
//! Settled meanings:
//! - `handoff` is the local time of one handoff; the first user starts there
//!   and the rotation extends forwards and backwards from it.
//! - Rotations in whole days or weeks count local calendar days (the handoff
//!   keeps its wall-clock time across DST); other rotations count elapsed time.
//! - A local time that does not exist (spring forward) moves forward by the
//!   gap (02:30 → 03:30); an ambiguous one (fall back) is its first occurrence.
//! - A restriction window belongs to the day it starts: `mon-fri 22:00-06:00`
//!   covers Monday 22:00 to Tuesday 06:00, …, Friday 22:00 to Saturday 06:00.

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone,
    Utc, Weekday,
};
use chrono_tz::Tz;
use serde::Serialize;

/// A weekly window: on `days` (all when empty), from `from` to `to` local
/// time; a window whose end is not after its start ends the next day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    pub days: Vec<Weekday>,
    pub from: NaiveTime,
    pub to: NaiveTime,
}

impl Restriction {
    fn applies_on(&self, d: NaiveDate) -> bool {
        self.days.is_empty() || self.days.contains(&d.weekday())
    }

    /// The local start and end of the window that starts on `d`.
    fn window_on(&self, d: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
        let start = d.and_time(self.from);
        let end_day = if self.to > self.from {
            d
        } else {
            d + Days::new(1)
        };
        (start, end_day.and_time(self.to))
    }

    /// Whether local time `l` falls in a window (of its own day or the day before).
    pub(crate) fn covers(&self, l: NaiveDateTime) -> bool {
        let d = l.date();
        [d.pred_opt(), Some(d)].into_iter().flatten().any(|day| {
            if !self.applies_on(day) {
                return false;
            }
            let (s, e) = self.window_on(day);
            s <= l && l < e
        })
    }
}

/// How a rotation counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Every `n` local calendar days, at the handoff's wall-clock time.
    Days(u32),
    /// Every `secs` seconds of elapsed time.
    Elapsed(i64),
}

impl Rotation {
    /// Whole days (and weeks) count calendar days; anything else elapsed time.
    pub fn from_secs(secs: u64) -> Rotation {
        if secs > 0 && secs.is_multiple_of(86_400) {
            Rotation::Days(u32::try_from(secs / 86_400).unwrap_or(u32::MAX))
        } else {
            Rotation::Elapsed(i64::try_from(secs.max(1)).unwrap_or(i64::MAX))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub name: String,
    pub users: Vec<String>,
    pub rotation: Rotation,
    /// Local time of one handoff, at which `users[0]` starts.
    pub handoff: NaiveDateTime,
    pub restrictions: Vec<Restriction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub user: String,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: String,
    pub tz: Tz,
    /// Lowest first: a later layer wins where it has somebody.
    pub layers: Vec<Layer>,
    pub overrides: Vec<Override>,
}

/// Where an on-call assignment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "index", rename_all = "lowercase")]
pub enum ShiftSource {
    /// `layers[i]`.
    Layer(usize),
    /// `overrides[i]`.
    Override(usize),
}

/// Who is on call at an instant, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnCall {
    pub user: String,
    pub source: ShiftSource,
}

/// A stretch of time with one person on call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shift {
    pub user: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub source: ShiftSource,
}

/// The instant a local wall-clock time stands for in `tz`: an ambiguous time
/// is its first occurrence; a time in a gap moves forward by the gap.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        chrono::LocalResult::None => {
            // Use the offset in force just before the gap: 02:30 with +01:00
            // before a one-hour gap is 01:30 UTC, which reads 03:30 after it.
            let mut probe = local;
            for _ in 0..(48 * 4) {
                probe -= TimeDelta::minutes(15);
                if let chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) =
                    tz.from_local_datetime(&probe)
                {
                    let offset = t.offset().fix();
                    return (local - TimeDelta::seconds(i64::from(offset.local_minus_utc())))
                        .and_utc();
                }
            }
            local.and_utc()
        }
    }
}

fn local_of(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

impl Layer {
    /// The instant of handoff number `k` (0 is `handoff`; negative is earlier).
    fn handoff_at(&self, tz: Tz, k: i64) -> DateTime<Utc> {
        match self.rotation {
            Rotation::Days(n) => {
                let days = k.saturating_mul(i64::from(n));
                let local = if days >= 0 {
                    self.handoff
                        .checked_add_days(Days::new(days.unsigned_abs()))
                } else {
                    self.handoff
                        .checked_sub_days(Days::new(days.unsigned_abs()))
                };
                resolve_local(tz, local.unwrap_or(self.handoff))
            }
            Rotation::Elapsed(secs) => {
                resolve_local(tz, self.handoff) + TimeDelta::seconds(k.saturating_mul(secs))
            }
        }
    }

    /// The number of the last handoff at or before `t`.
    fn handoff_index(&self, tz: Tz, t: DateTime<Utc>) -> i64 {
        let guess = match self.rotation {
            Rotation::Days(n) => {
                let days = (local_of(tz, t).date() - self.handoff.date()).num_days();
                days.div_euclid(i64::from(n))
            }
            Rotation::Elapsed(secs) => (t - resolve_local(tz, self.handoff))
                .num_seconds()
                .div_euclid(secs),
        };
        let mut k = guess;
        while self.handoff_at(tz, k) > t {
            k -= 1;
        }
        while self.handoff_at(tz, k + 1) <= t {
            k += 1;
        }
        k
    }

    /// Who this layer puts on call at `t`, if anybody.
    pub fn on_call(&self, tz: Tz, t: DateTime<Utc>) -> Option<&str> {
        if self.users.is_empty() {
            return None;
        }
        if !self.restrictions.is_empty() {
            let l = local_of(tz, t);
            if !self.restrictions.iter().any(|r| r.covers(l)) {
                return None;
            }
        }
        let k = self.handoff_index(tz, t);
        let n = i64::try_from(self.users.len()).unwrap_or(1);
        let slot = usize::try_from(k.rem_euclid(n)).unwrap_or(0);
        self.users.get(slot).map(String::as_str)
    }
}

impl Schedule {
    /// What a shift's source is called: its layer's name, or `override`.
    pub fn source_name(&self, src: ShiftSource) -> String {
        match src {
            ShiftSource::Layer(i) => self
                .layers
                .get(i)
                .map(|l| l.name.clone())
                .unwrap_or_else(|| format!("layer {}", i + 1)),
            ShiftSource::Override(_) => "override".to_owned(),
        }
    }

    /// Who is on call at `t`: the last override covering it, else the
    /// highest layer that has somebody.
    pub fn on_call(&self, t: DateTime<Utc>) -> Option<OnCall> {
        for (i, o) in self.overrides.iter().enumerate().rev() {
            if resolve_local(self.tz, o.from) <= t && t < resolve_local(self.tz, o.to) {
                return Some(OnCall {
                    user: o.user.clone(),
                    source: ShiftSource::Override(i),
                });
            }
        }
        for (i, l) in self.layers.iter().enumerate().rev() {
            if let Some(u) = l.on_call(self.tz, t) {
                return Some(OnCall {
                    user: u.to_owned(),
                    source: ShiftSource::Layer(i),
                });
            }
        }
        None
    }

    /// Every instant in `[from, to)` at which the answer of `on_call` may change.
    fn boundaries(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let tz = self.tz;
        let mut out = vec![from];
        let inside = |t: DateTime<Utc>| from < t && t < to;
        for l in &self.layers {
            let mut k = l.handoff_index(tz, from) + 1;
            loop {
                let h = l.handoff_at(tz, k);
                if h >= to {
                    break;
                }
                if inside(h) {
                    out.push(h);
                }
                k += 1;
            }
            if !l.restrictions.is_empty() {
                let first = local_of(tz, from)
                    .date()
                    .pred_opt()
                    .unwrap_or(NaiveDate::MIN);
                let last = local_of(tz, to).date();
                let mut d = first;
                while d <= last {
                    for r in &l.restrictions {
                        if r.applies_on(d) {
                            let (s, e) = r.window_on(d);
                            for b in [resolve_local(tz, s), resolve_local(tz, e)] {
                                if inside(b) {
                                    out.push(b);
                                }
                            }
                        }
                    }
                    d = d.succ_opt().unwrap_or(NaiveDate::MAX);
                    if d == NaiveDate::MAX {
                        break;
                    }
                }
            }
        }
        for o in &self.overrides {
            for b in [resolve_local(tz, o.from), resolve_local(tz, o.to)] {
                if inside(b) {
                    out.push(b);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The shifts between `from` and `to`, cut at both ends, each naming
    /// the layer or override it comes from. Gaps (nobody on call) are left out.
    pub fn shifts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Shift> {
        if to <= from {
            return Vec::new();
        }
        let points = self.boundaries(from, to);
        let mut out: Vec<Shift> = Vec::new();
        for (i, start) in points.iter().enumerate() {
            let end = points.get(i + 1).copied().unwrap_or(to);
            let Some(oc) = self.on_call(*start) else {
                continue;
            };
            match out.last_mut() {
                Some(last)
                    if last.end == *start && last.user == oc.user && last.source == oc.source =>
                {
                    last.end = end;
                }
                _ => out.push(Shift {
                    user: oc.user,
                    start: *start,
                    end,
                    source: oc.source,
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
