//! Support hours (SPEC §3): a weekly calendar in a time zone. Outside it,
//! LOW alerts wait until the next start (`delay`), or the source treats
//! every alert as LOW (`low`) or HIGH (`high`).

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::schedule::{Restriction, resolve_local};
use crate::types::{OutsideSupportHours, Priority};

/// A weekly calendar; windows may cross midnight and belong to the day they start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportHours {
    pub id: String,
    pub tz: Tz,
    pub windows: Vec<Restriction>,
}

/// What support hours do to a new alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Treatment {
    pub priority: Priority,
    /// When level 1 is notified (`None`: at once).
    pub notify_at: Option<DateTime<Utc>>,
    /// For the timeline.
    pub note: Option<String>,
}

impl SupportHours {
    pub fn is_within(&self, t: DateTime<Utc>) -> bool {
        let l = t.with_timezone(&self.tz).naive_local();
        self.windows.iter().any(|w| w.covers(l))
    }

    /// The next instant support hours start, strictly after `t` (within 8 days).
    pub fn next_start(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first = t.with_timezone(&self.tz).date_naive();
        (0..9)
            .filter_map(|i| first.checked_add_days(Days::new(i)))
            .flat_map(|d: NaiveDate| {
                self.windows
                    .iter()
                    .filter(move |w| w.days.is_empty() || w.days.contains(&d.weekday()))
                    .map(move |w| resolve_local(self.tz, d.and_time(w.from)))
            })
            .filter(|s| *s > t)
            .min()
    }

    /// How an alert of `priority` created at `now` is treated.
    pub fn treat(
        &self,
        priority: Priority,
        mode: OutsideSupportHours,
        now: DateTime<Utc>,
    ) -> Treatment {
        if self.is_within(now) {
            return Treatment {
                priority,
                notify_at: None,
                note: None,
            };
        }
        match mode {
            OutsideSupportHours::Low => Treatment {
                priority: Priority::Low,
                notify_at: None,
                note: Some(format!(
                    "outside support hours `{}`: treated as low priority",
                    self.id
                )),
            },
            OutsideSupportHours::High => Treatment {
                priority: Priority::High,
                notify_at: None,
                note: Some(format!(
                    "outside support hours `{}`: treated as high priority",
                    self.id
                )),
            },
            OutsideSupportHours::Delay if priority == Priority::Low => {
                let at = self.next_start(now);
                Treatment {
                    priority,
                    notify_at: at,
                    note: Some(match at {
                        Some(at) => format!(
                            "outside support hours `{}`: delayed until {}",
                            self.id,
                            at.with_timezone(&self.tz).to_rfc3339()
                        ),
                        None => format!(
                            "outside support hours `{}`, which never start; notifying now",
                            self.id
                        ),
                    }),
                }
            }
            OutsideSupportHours::Delay => Treatment {
                priority,
                notify_at: None,
                note: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone, Weekday};

    fn office() -> SupportHours {
        SupportHours {
            id: "office".into(),
            tz: chrono_tz::Europe::Berlin,
            windows: vec![Restriction {
                days: vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                ],
                from: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                to: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
            }],
        }
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap()
    }

    #[test]
    fn within_and_next_start() {
        let o = office();
        // Friday 2026-03-06 12:00 CET is within; 18:30 is not.
        assert!(o.is_within(utc(2026, 3, 6, 11, 0)));
        assert!(!o.is_within(utc(2026, 3, 6, 17, 30)));
        // Friday evening → Monday 09:00 CET (08:00 UTC).
        assert_eq!(
            o.next_start(utc(2026, 3, 6, 17, 30)),
            Some(utc(2026, 3, 9, 8, 0))
        );
        // Across the spring change: Friday 27 March evening → Monday 30 March 09:00 CEST (07:00 UTC).
        assert_eq!(
            o.next_start(utc(2026, 3, 27, 18, 0)),
            Some(utc(2026, 3, 30, 7, 0))
        );
    }

    #[test]
    fn treatments() {
        let o = office();
        let night = utc(2026, 3, 6, 22, 0);
        let t = o.treat(Priority::Low, OutsideSupportHours::Delay, night);
        assert_eq!(t.notify_at, Some(utc(2026, 3, 9, 8, 0)));
        assert_eq!(
            t.note.as_deref(),
            Some("outside support hours `office`: delayed until 2026-03-09T09:00:00+01:00")
        );
        let t = o.treat(Priority::High, OutsideSupportHours::Delay, night);
        assert_eq!(
            (t.priority, t.notify_at, t.note),
            (Priority::High, None, None),
            "HIGH is not delayed"
        );
        assert_eq!(
            o.treat(Priority::High, OutsideSupportHours::Low, night)
                .priority,
            Priority::Low
        );
        assert_eq!(
            o.treat(Priority::Low, OutsideSupportHours::High, night)
                .priority,
            Priority::High
        );
        let day = utc(2026, 3, 6, 10, 0);
        assert_eq!(
            o.treat(Priority::Low, OutsideSupportHours::Delay, day).note,
            None
        );
    }
}
