//! Escalation policies (SPEC §3): which level to notify, whom that means at
//! this instant, and when the next step is due.
//!
//! A step is identified by its [`Position`]: a level and a round (how many
//! times the policy has repeated). The position one past the last level of
//! the last round is the *final* step: when it comes due, nobody accepted.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::duration::DurationSpec;
use crate::types::{ParseError, Priority};

/// Who a level notifies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    User(String),
    Schedule(String),
}

impl FromStr for Target {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("user", id)) if !id.is_empty() => Ok(Target::User(id.to_owned())),
            Some(("schedule", id)) if !id.is_empty() => Ok(Target::Schedule(id.to_owned())),
            _ => Err(ParseError(format!(
                "`{s}` is not a target; expected user:ID or schedule:ID"
            ))),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::User(id) => write!(f, "user:{id}"),
            Target::Schedule(id) => write!(f, "schedule:{id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub targets: Vec<Target>,
    pub escalate_after: DurationSpec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub id: String,
    /// How many times the whole policy runs again after the last level.
    pub repeat: u32,
    pub levels: Vec<Level>,
}

/// A step of a policy: `level` (0-based) in `round` (0 is the first run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub level: usize,
    pub round: u32,
}

impl Position {
    pub const START: Position = Position { level: 0, round: 0 };
}

/// One user to notify, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub user: String,
    /// The schedule that put them on call, if any.
    pub via_schedule: Option<String>,
}

/// What a due step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    pub notify: Vec<Notify>,
    /// The next step and when it is due; `None` when escalation ends here.
    pub next: Option<(Position, DateTime<Utc>)>,
    /// For the timeline.
    pub note: String,
    /// True for the final step: nobody accepted.
    pub exhausted: bool,
}

/// Plan the step at `pos`, due now. `on_call` answers who is on call in a
/// schedule at `now` (`None`: nobody).
pub fn plan_step(
    policy: &Policy,
    pos: Position,
    priority: Priority,
    now: DateTime<Utc>,
    on_call: impl Fn(&str) -> Option<String>,
) -> StepPlan {
    let Some(level) = policy.levels.get(pos.level) else {
        let rounds = pos.round + 1;
        return StepPlan {
            notify: Vec::new(),
            next: None,
            note: format!(
                "nobody accepted after {rounds} run{} of escalation policy `{}`; the alert stays pending",
                if rounds == 1 { "" } else { "s" },
                policy.id
            ),
            exhausted: true,
        };
    };

    let mut notify: Vec<Notify> = Vec::new();
    let mut empty = Vec::new();
    for t in &level.targets {
        let n = match t {
            Target::User(u) => Some(Notify {
                user: u.clone(),
                via_schedule: None,
            }),
            Target::Schedule(s) => match on_call(s) {
                Some(u) => Some(Notify {
                    user: u,
                    via_schedule: Some(s.clone()),
                }),
                None => {
                    empty.push(s.clone());
                    None
                }
            },
        };
        if let Some(n) = n
            && !notify.iter().any(|x| x.user == n.user)
        {
            notify.push(n);
        }
    }

    let human = pos.level + 1;
    let who = if notify.is_empty() {
        "nobody".to_owned()
    } else {
        notify
            .iter()
            .map(|n| match &n.via_schedule {
                Some(s) => format!("{} (on call in {s})", n.user),
                None => n.user.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut note = format!("level {human}: notifying {who}");
    if pos.round > 0 {
        note.push_str(&format!(" (repeat {} of {})", pos.round, policy.repeat));
    }
    for s in &empty {
        note.push_str(&format!("; nobody is on call in schedule `{s}`"));
    }

    if priority == Priority::Low {
        note.push_str("; low priority: no escalation");
        return StepPlan {
            notify,
            next: None,
            note,
            exhausted: false,
        };
    }

    // Nobody to notify at this level: move on at once.
    let wait = if notify.is_empty() {
        note.push_str("; escalating at once");
        chrono::TimeDelta::zero()
    } else {
        level.escalate_after.as_chrono()
    };
    let next_pos = if pos.level + 1 < policy.levels.len() {
        Position {
            level: pos.level + 1,
            round: pos.round,
        }
    } else if pos.round < policy.repeat {
        Position {
            level: 0,
            round: pos.round + 1,
        }
    } else {
        // One past the last level: the final step.
        Position {
            level: policy.levels.len(),
            round: pos.round,
        }
    };
    StepPlan {
        notify,
        next: Some((next_pos, now + wait)),
        note,
        exhausted: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).single().unwrap()
    }

    fn policy(repeat: u32) -> Policy {
        Policy {
            id: "p".into(),
            repeat,
            levels: vec![
                Level {
                    targets: vec![
                        "schedule:primary".parse().unwrap(),
                        "user:lead".parse().unwrap(),
                    ],
                    escalate_after: "5m".parse().unwrap(),
                },
                Level {
                    targets: vec!["user:boss".parse().unwrap()],
                    escalate_after: "10m".parse().unwrap(),
                },
            ],
        }
    }

    fn alice(_: &str) -> Option<String> {
        Some("alice".into())
    }

    fn nobody(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn targets_parse() {
        assert_eq!("user:a".parse::<Target>(), Ok(Target::User("a".into())));
        assert_eq!(
            "schedule:s".parse::<Target>(),
            Ok(Target::Schedule("s".into()))
        );
        assert!("team:x".parse::<Target>().is_err());
        assert!("user:".parse::<Target>().is_err());
    }

    #[test]
    fn high_walks_levels_then_repeats_then_ends() {
        let p = policy(1);
        let s = plan_step(&p, Position::START, Priority::High, t(0), alice);
        assert_eq!(
            s.notify,
            vec![
                Notify {
                    user: "alice".into(),
                    via_schedule: Some("primary".into())
                },
                Notify {
                    user: "lead".into(),
                    via_schedule: None
                },
            ]
        );
        assert_eq!(s.next, Some((Position { level: 1, round: 0 }, t(300))));
        assert_eq!(
            s.note,
            "level 1: notifying alice (on call in primary), lead"
        );

        let s = plan_step(
            &p,
            Position { level: 1, round: 0 },
            Priority::High,
            t(300),
            alice,
        );
        assert_eq!(
            s.next,
            Some((Position { level: 0, round: 1 }, t(900))),
            "repeat from level 1"
        );
        let s = plan_step(
            &p,
            Position { level: 1, round: 1 },
            Priority::High,
            t(1500),
            alice,
        );
        assert_eq!(
            s.next,
            Some((Position { level: 2, round: 1 }, t(2100))),
            "then the final step"
        );
        assert!(s.note.contains("(repeat 1 of 1)"), "{}", s.note);
        let s = plan_step(
            &p,
            Position { level: 2, round: 1 },
            Priority::High,
            t(2100),
            alice,
        );
        assert!(s.exhausted && s.next.is_none() && s.notify.is_empty());
        assert!(
            s.note.starts_with("nobody accepted after 2 runs"),
            "{}",
            s.note
        );
    }

    #[test]
    fn low_notifies_level_one_and_stops() {
        let s = plan_step(&policy(2), Position::START, Priority::Low, t(0), alice);
        assert_eq!(s.notify.len(), 2);
        assert_eq!(s.next, None);
        assert!(s.note.ends_with("low priority: no escalation"));
    }

    #[test]
    fn empty_schedule_is_recorded_and_escalates_at_once() {
        let mut p = policy(0);
        p.levels[0].targets = vec!["schedule:primary".parse().unwrap()];
        let s = plan_step(&p, Position::START, Priority::High, t(0), nobody);
        assert!(s.notify.is_empty());
        assert_eq!(s.next, Some((Position { level: 1, round: 0 }, t(0))));
        assert_eq!(
            s.note,
            "level 1: notifying nobody; nobody is on call in schedule `primary`; escalating at once"
        );
        // A level that still reaches someone waits as usual.
        let s = plan_step(&policy(0), Position::START, Priority::High, t(0), nobody);
        assert_eq!(
            s.notify,
            vec![Notify {
                user: "lead".into(),
                via_schedule: None
            }]
        );
        assert_eq!(s.next, Some((Position { level: 1, round: 0 }, t(300))));
    }

    #[test]
    fn same_user_twice_in_a_level_is_notified_once() {
        let mut p = policy(0);
        p.levels[0].targets.push("user:alice".parse().unwrap());
        let s = plan_step(&p, Position::START, Priority::High, t(0), alice);
        assert_eq!(s.notify.iter().filter(|n| n.user == "alice").count(), 1);
    }

    #[test]
    fn a_position_beyond_a_shrunk_policy_ends_escalation() {
        let s = plan_step(
            &policy(0),
            Position { level: 7, round: 0 },
            Priority::High,
            t(0),
            alice,
        );
        assert!(s.exhausted);
    }
}
