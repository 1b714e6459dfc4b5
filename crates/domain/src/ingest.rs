//! Deduplication and ordering of incoming events.
//!
//! Senders re-deliver (retries, `repeat_interval`, HA pairs) and deliver out
//! of order. [`decide`] takes what is stored for a dedup key and one incoming
//! event and says what to do, so that a repeat changes nothing but "last
//! seen", a late notification never undoes newer state, and a new firing
//! after a resolve opens a new alert.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{Link, Member, MemberStatus};
use crate::types::{DedupKey, Priority, Severity};

/// Where the sender asked the alert to go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingHint {
    /// A routing key (`ilert_routingkey` / `routing_key` label): picks the
    /// escalation policy with that `routing_key`.
    pub routing_key: Option<String>,
    /// A service id (`service_id` label): picks the service and its policy.
    pub service_id: Option<String>,
}

/// One normalised event from any sender, for one dedup key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub dedup_key: DedupKey,
    /// The sender-side alerts this event reports, as a snapshot.
    pub members: Vec<Member>,
    /// True when the sender says everything in this event has resolved.
    pub resolved: bool,
    pub summary: String,
    pub details: String,
    /// Labels shared by the relevant alerts (shown on the alert).
    pub labels: BTreeMap<String, String>,
    /// Every label pair of every member (searchable).
    pub all_labels: BTreeSet<(String, String)>,
    pub links: Vec<Link>,
    pub severity: Severity,
    pub priority: Priority,
    pub routing: RoutingHint,
    /// Earliest start of the members.
    pub detected_at: DateTime<Utc>,
    /// Latest end of the resolved members, if any resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Remarks for the timeline made while mapping (template failures, …).
    pub notes: Vec<String>,
    /// The sender sends commands, not snapshots with start and end times
    /// (PagerDuty, Opsgenie, ilert): its one member's times are the time of
    /// receipt. A trigger for an open alert continues it (keeps its start),
    /// and a resolve carries no content of its own (the alert keeps its
    /// summary, details and labels).
    #[serde(default)]
    pub stateless: bool,
}

impl AlertEvent {
    pub fn any_firing(&self) -> bool {
        self.members.iter().any(Member::is_firing)
    }
}

/// What is stored for a dedup key, as far as [`decide`] needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingAlert {
    pub id: i64,
    pub members: Vec<Member>,
}

/// The members after merging an event into stored state.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeResult {
    pub members: Vec<Member>,
    /// A member appeared, fired again or resolved.
    pub state_changed: bool,
    /// Anything differs at all (annotations included).
    pub content_changed: bool,
    /// Members whose incoming state was older than the stored one.
    pub stale: usize,
    pub firing: usize,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// What to do with an incoming event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Open a new alert with these members.
    Create { members: Vec<Member> },
    /// Update the open alert; resolve it when `resolve_at` is set.
    Update {
        alert_id: i64,
        merge: MergeResult,
        resolve_at: Option<DateTime<Utc>>,
    },
    /// Exactly what is stored already: only "last seen" moves.
    Duplicate { alert_id: i64 },
    /// Older than what is stored: ignored (recorded on the alert if there is one).
    Stale { alert_id: Option<i64> },
    /// A resolve for a key that has never had an alert.
    UnknownResolve,
}

/// Merge an incoming snapshot into the stored members.
///
/// Per member (by fingerprint): a firing that started before a stored resolve
/// ended is stale; a resolve that ended before a stored firing started is
/// stale. When the event says the whole group resolved, stored firing members
/// it does not mention resolve too, unless they started after its end.
pub fn merge(stored: &[Member], incoming: &[Member], event_resolved: bool) -> MergeResult {
    let mut by_fp: BTreeMap<String, Member> = stored
        .iter()
        .map(|m| (m.fingerprint.clone(), m.clone()))
        .collect();
    let mut order: Vec<String> = stored.iter().map(|m| m.fingerprint.clone()).collect();
    let mut state_changed = false;
    let mut content_changed = false;
    let mut stale = 0;
    let mut mentioned = BTreeSet::new();

    for m in incoming {
        mentioned.insert(m.fingerprint.clone());
        let Some(s) = by_fp.get(&m.fingerprint) else {
            order.push(m.fingerprint.clone());
            by_fp.insert(m.fingerprint.clone(), m.clone());
            state_changed = true;
            content_changed = true;
            continue;
        };
        let is_stale = match (m.status, s.status) {
            (MemberStatus::Firing, MemberStatus::Resolved) => {
                s.ends_at.is_some_and(|end| end >= m.starts_at)
            }
            (MemberStatus::Firing, MemberStatus::Firing) => m.starts_at < s.starts_at,
            (MemberStatus::Resolved, MemberStatus::Firing) => {
                m.ends_at.is_some_and(|end| s.starts_at > end)
            }
            (MemberStatus::Resolved, MemberStatus::Resolved) => match (m.ends_at, s.ends_at) {
                (Some(new), Some(old)) => new < old,
                _ => false,
            },
        };
        if is_stale {
            stale += 1;
            continue;
        }
        if s != m {
            content_changed = true;
            if s.status != m.status || s.starts_at != m.starts_at || s.ends_at != m.ends_at {
                state_changed = true;
            }
            by_fp.insert(m.fingerprint.clone(), m.clone());
        }
    }

    let event_end = incoming.iter().filter_map(|m| m.ends_at).max();
    if event_resolved && let Some(end) = event_end {
        for (fp, s) in by_fp.iter_mut() {
            if !mentioned.contains(fp) && s.is_firing() && s.starts_at <= end {
                s.status = MemberStatus::Resolved;
                s.ends_at = Some(end);
                state_changed = true;
                content_changed = true;
            }
        }
    }

    let members: Vec<Member> = order
        .iter()
        .filter_map(|fp| by_fp.get(fp).cloned())
        .collect();
    let firing = members.iter().filter(|m| m.is_firing()).count();
    let resolved_at = members.iter().filter_map(|m| m.ends_at).max();
    MergeResult {
        members,
        state_changed,
        content_changed,
        stale,
        firing,
        resolved_at,
    }
}

/// A command-style event's members as continuations of the open alert's:
/// a member that is already stored keeps its start (so a repeated trigger
/// is a duplicate, and a resolve ends what was started).
fn continue_members(stored: &[Member], incoming: &[Member]) -> Vec<Member> {
    incoming
        .iter()
        .map(
            |m| match stored.iter().find(|s| s.fingerprint == m.fingerprint) {
                Some(s) if s.is_firing() => Member {
                    starts_at: s.starts_at,
                    ..m.clone()
                },
                _ => m.clone(),
            },
        )
        .collect()
}

/// Decide what an incoming event does, given the open alert for its dedup key
/// (if any) and the most recent resolved one (if any).
pub fn decide(
    open: Option<&ExistingAlert>,
    last_resolved: Option<&ExistingAlert>,
    event: &AlertEvent,
    now: DateTime<Utc>,
) -> Decision {
    if let Some(o) = open {
        let continued;
        let members = if event.stateless {
            continued = continue_members(&o.members, &event.members);
            &continued
        } else {
            &event.members
        };
        let merged = merge(&o.members, members, event.resolved);
        if !merged.content_changed {
            return if merged.stale > 0 && merged.stale == event.members.len() {
                Decision::Stale {
                    alert_id: Some(o.id),
                }
            } else {
                Decision::Duplicate { alert_id: o.id }
            };
        }
        let resolve_at = if merged.firing == 0 {
            Some(merged.resolved_at.unwrap_or(now))
        } else {
            None
        };
        return Decision::Update {
            alert_id: o.id,
            merge: merged,
            resolve_at,
        };
    }

    if !event.any_firing() {
        return match last_resolved {
            Some(r) => Decision::Duplicate { alert_id: r.id },
            None => Decision::UnknownResolve,
        };
    }

    // A firing with no open alert: new, unless every firing member is one the
    // last resolved alert already saw end after it started.
    let fresh = event.members.iter().filter(|m| m.is_firing()).any(|m| {
        let Some(r) = last_resolved else { return true };
        match r.members.iter().find(|s| s.fingerprint == m.fingerprint) {
            Some(s) => {
                !(s.status == MemberStatus::Resolved
                    && s.ends_at.is_some_and(|end| end >= m.starts_at))
            }
            None => true,
        }
    });
    if fresh {
        // Resolved members the last alert already closed are old news: the
        // snapshot still carries them for a while after they resolved.
        let members = event
            .members
            .iter()
            .filter(|m| {
                m.is_firing()
                    || !last_resolved.is_some_and(|r| {
                        r.members.iter().any(|s| {
                            s.fingerprint == m.fingerprint
                                && s.starts_at == m.starts_at
                                && s.status == MemberStatus::Resolved
                        })
                    })
            })
            .cloned()
            .collect();
        Decision::Create { members }
    } else {
        Decision::Stale {
            alert_id: last_resolved.map(|r| r.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).single().unwrap()
    }

    fn firing(fp: &str, start: i64) -> Member {
        Member {
            fingerprint: fp.into(),
            status: MemberStatus::Firing,
            starts_at: t(start),
            ends_at: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            generator_url: None,
        }
    }

    fn resolved(fp: &str, start: i64, end: i64) -> Member {
        Member {
            status: MemberStatus::Resolved,
            ends_at: Some(t(end)),
            ..firing(fp, start)
        }
    }

    fn event(members: Vec<Member>) -> AlertEvent {
        let resolved = members.iter().all(|m| !m.is_firing());
        AlertEvent {
            dedup_key: DedupKey::new("g").unwrap(),
            resolved,
            summary: "s".into(),
            details: String::new(),
            labels: BTreeMap::new(),
            all_labels: BTreeSet::new(),
            links: vec![],
            severity: Severity::Sev2,
            priority: Priority::Low,
            routing: RoutingHint::default(),
            detected_at: t(0),
            resolved_at: None,
            notes: vec![],
            stateless: false,
            members,
        }
    }

    fn existing(id: i64, members: Vec<Member>) -> ExistingAlert {
        ExistingAlert { id, members }
    }

    #[test]
    fn first_firing_creates() {
        let d = decide(None, None, &event(vec![firing("a", 0)]), t(5));
        assert!(matches!(d, Decision::Create { .. }));
    }

    #[test]
    fn identical_redelivery_is_a_duplicate() {
        let open = existing(1, vec![firing("a", 0)]);
        let d = decide(Some(&open), None, &event(vec![firing("a", 0)]), t(5));
        assert_eq!(d, Decision::Duplicate { alert_id: 1 });
    }

    #[test]
    fn new_member_updates_state() {
        let open = existing(1, vec![firing("a", 0)]);
        let d = decide(
            Some(&open),
            None,
            &event(vec![firing("a", 0), firing("b", 3)]),
            t(5),
        );
        match d {
            Decision::Update {
                merge, resolve_at, ..
            } => {
                assert!(merge.state_changed);
                assert_eq!(merge.firing, 2);
                assert_eq!(resolve_at, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mixed_keeps_open_and_full_resolve_closes() {
        let open = existing(1, vec![firing("a", 0), firing("b", 3)]);
        let mixed = event(vec![firing("a", 0), resolved("b", 3, 7)]);
        let Decision::Update {
            merge, resolve_at, ..
        } = decide(Some(&open), None, &mixed, t(8))
        else {
            panic!("expected update")
        };
        assert_eq!(merge.firing, 1);
        assert_eq!(resolve_at, None);

        let open = existing(1, merge.members);
        let all = event(vec![resolved("a", 0, 9), resolved("b", 3, 7)]);
        let Decision::Update { resolve_at, .. } = decide(Some(&open), None, &all, t(10)) else {
            panic!("expected update")
        };
        assert_eq!(resolve_at, Some(t(9)));
    }

    #[test]
    fn late_firing_after_resolve_is_ignored() {
        let gone = existing(4, vec![resolved("a", 0, 9)]);
        let d = decide(None, Some(&gone), &event(vec![firing("a", 0)]), t(12));
        assert_eq!(d, Decision::Stale { alert_id: Some(4) });
    }

    #[test]
    fn new_alert_leaves_out_members_the_last_one_closed() {
        let gone = existing(4, vec![resolved("a", 0, 9), resolved("b", 1, 8)]);
        let ev = event(vec![
            resolved("a", 0, 9),
            resolved("b", 1, 8),
            firing("c", 20),
            resolved("d", 2, 21),
        ]);
        let Decision::Create { members } = decide(None, Some(&gone), &ev, t(22)) else {
            panic!("expected create")
        };
        let fps: Vec<&str> = members.iter().map(|m| m.fingerprint.as_str()).collect();
        assert_eq!(fps, ["c", "d"]);
    }

    #[test]
    fn new_firing_after_resolve_opens_a_new_alert() {
        let gone = existing(4, vec![resolved("a", 0, 9)]);
        let d = decide(None, Some(&gone), &event(vec![firing("a", 20)]), t(21));
        assert!(matches!(d, Decision::Create { .. }));
    }

    #[test]
    fn stale_resolve_does_not_close_a_newer_firing() {
        // `a` fired again at 20; a resolve of its earlier run (ended at 9) arrives late.
        let open = existing(5, vec![firing("a", 20)]);
        let d = decide(Some(&open), None, &event(vec![resolved("a", 0, 9)]), t(25));
        assert_eq!(d, Decision::Stale { alert_id: Some(5) });
    }

    #[test]
    fn repeated_resolve_without_open_alert_only_touches_last_seen() {
        let gone = existing(4, vec![resolved("a", 0, 9)]);
        let d = decide(None, Some(&gone), &event(vec![resolved("a", 0, 9)]), t(30));
        assert_eq!(d, Decision::Duplicate { alert_id: 4 });
        let d = decide(None, None, &event(vec![resolved("a", 0, 9)]), t(30));
        assert_eq!(d, Decision::UnknownResolve);
    }

    #[test]
    fn group_resolve_closes_unmentioned_members_that_started_before_it() {
        let open = existing(1, vec![firing("a", 0), firing("b", 2), firing("late", 50)]);
        let mut ev = event(vec![resolved("a", 0, 10)]);
        ev.resolved = true;
        let Decision::Update {
            merge, resolve_at, ..
        } = decide(Some(&open), None, &ev, t(11))
        else {
            panic!("expected update")
        };
        // `late` started after the resolve's end, so it stays firing.
        assert_eq!(merge.firing, 1);
        assert_eq!(resolve_at, None);
    }

    #[test]
    fn command_style_triggers_continue_and_resolve_the_open_alert() {
        let open = existing(1, vec![firing("cmd", 0)]);
        let mut again = event(vec![firing("cmd", 30)]);
        again.stateless = true;
        assert_eq!(
            decide(Some(&open), None, &again, t(30)),
            Decision::Duplicate { alert_id: 1 },
            "a repeated trigger is a duplicate"
        );
        let mut changed = again.clone();
        changed.members[0]
            .annotations
            .insert("summary".into(), "worse".into());
        let Decision::Update { merge, .. } = decide(Some(&open), None, &changed, t(31)) else {
            panic!("expected update")
        };
        assert!(merge.content_changed && !merge.state_changed);
        let mut res = event(vec![resolved("cmd", 40, 40)]);
        res.stateless = true;
        let Decision::Update { resolve_at, .. } = decide(Some(&open), None, &res, t(40)) else {
            panic!("expected update")
        };
        assert_eq!(resolve_at, Some(t(40)));
        // After the resolve, a trigger opens a new alert.
        let gone = existing(1, vec![resolved("cmd", 0, 40)]);
        let mut next = event(vec![firing("cmd", 50)]);
        next.stateless = true;
        assert!(matches!(
            decide(None, Some(&gone), &next, t(50)),
            Decision::Create { .. }
        ));
    }

    #[test]
    fn annotation_change_is_content_not_state() {
        let open = existing(1, vec![firing("a", 0)]);
        let mut m = firing("a", 0);
        m.annotations.insert("summary".into(), "value 2".into());
        let Decision::Update { merge, .. } = decide(Some(&open), None, &event(vec![m]), t(3))
        else {
            panic!("expected update")
        };
        assert!(merge.content_changed);
        assert!(!merge.state_changed);
    }
}
