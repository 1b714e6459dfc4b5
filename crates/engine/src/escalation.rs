//! The escalation worker.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_domain::DurationSpec;
use tocsin_domain::TimelineKind;
use tocsin_domain::escalation::{Level, Policy, Position, Target, plan_step};
use tocsin_store::{Actor, ClaimedStep, NewDelivery, NextStep, StepDone, StepPlanner, Store};

use tocsin_domain::catalog::SharedCatalog;

use crate::{EngineError, claim_token};

/// How long an alert reassigned to one person waits for them before the
/// timeline says nobody accepted.
const DIRECT_ASSIGNMENT_WAIT: DurationSpec = DurationSpec::from_mins(15);

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub steps: usize,
    pub notifications: usize,
    /// Steps whose claim was lost (accepted, resolved, or taken over).
    pub skipped: usize,
    /// The largest delay between a step's due time and its run, in ms.
    pub max_lag_ms: i64,
    /// Steps claimed (this node's share of the work).
    pub claimed: usize,
    /// Of those, steps taken over from a worker whose lease ran out.
    pub taken_over: usize,
}

pub struct EscalationWorker {
    store: Arc<dyn Store>,
    planner: EscalationPlanner,
    /// How long a claim lasts before another worker may take the step over.
    pub lease: TimeDelta,
    /// Steps claimed per round.
    pub batch: u32,
    /// Told after every round that queued notifications (the dispatcher),
    /// so a page does not wait for a storm's whole backlog of steps.
    pub queued: Option<Arc<tokio::sync::Notify>>,
}

impl EscalationWorker {
    pub fn new(store: Arc<dyn Store>, catalog: Arc<SharedCatalog>) -> Self {
        EscalationWorker {
            store,
            planner: EscalationPlanner::new(catalog),
            // A step has no side effect until it completes (a late
            // completion is refused), so a short lease is safe and lets
            // another node take over a dead one's steps quickly.
            lease: TimeDelta::seconds(5),
            batch: 100,
            queued: None,
        }
    }

    /// The rules this worker plans steps with (to hand to
    /// [`Store::run_first_levels`]).
    pub fn planner(&self) -> EscalationPlanner {
        self.planner.clone()
    }

    /// Run every step due at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, EngineError> {
        self.run_due(&crate::FixedClock(now)).await
    }

    /// Run due steps round after round while a round may have left some
    /// behind, each round as of the time `clock` tells then: a step that
    /// falls due (or is created) while a storm's backlog is worked off is
    /// in the next round, not after the whole backlog.
    pub async fn run_due(&self, clock: &dyn crate::Clock) -> Result<TickReport, EngineError> {
        let mut report = TickReport::default();
        loop {
            let now = clock.now();
            let claim = claim_token();
            let steps = self
                .store
                .claim_due_steps(now, self.lease, self.batch, &claim)
                .await?;
            if steps.is_empty() {
                break;
            }
            // Another round only when this one may have left due steps
            // behind: it was full, or a level with nobody to notify wrote
            // its next step due `now`. Steps that ingest creates meanwhile
            // wake the worker again; a round each would cost two
            // transactions for a handful of steps.
            let full = steps.len() >= usize::try_from(self.batch).unwrap_or(usize::MAX);
            report.claimed += steps.len();
            report.taken_over += steps.iter().filter(|s| s.taken_over).count();
            let planned: Vec<(ClaimedStep, StepDone)> = steps
                .into_iter()
                .map(|step| {
                    let done = self.planner.plan(&step, now);
                    (step, done)
                })
                .collect();
            let again = full
                || planned
                    .iter()
                    .any(|(_, d)| d.next.as_ref().is_some_and(|n| n.due_at <= now));
            let queued: Vec<(usize, DateTime<Utc>)> = planned
                .iter()
                .map(|(s, d)| (d.deliveries.len(), s.due_at))
                .collect();
            // One transaction for the whole round.
            let held = self.store.complete_steps(planned, now).await?;
            if let Some(wake) = &self.queued
                && queued.iter().any(|(n, _)| *n > 0)
            {
                wake.notify_one();
            }
            for (ok, (n, due_at)) in held.into_iter().zip(queued) {
                if ok {
                    report.steps += 1;
                    report.notifications += n;
                    report.max_lag_ms = report.max_lag_ms.max((now - due_at).num_milliseconds());
                } else {
                    report.skipped += 1;
                }
            }
            if !again {
                break;
            }
        }
        Ok(report)
    }
}

/// The escalation rules over a catalog: what a step does. The worker runs
/// them for the steps it claims; ingest runs them for a new alert's first
/// level ([`Store::run_first_levels`]).
#[derive(Clone)]
pub struct EscalationPlanner {
    catalog: Arc<SharedCatalog>,
}

impl EscalationPlanner {
    /// Each step is planned whole on the catalog in effect when it starts.
    pub fn new(catalog: Arc<SharedCatalog>) -> Self {
        EscalationPlanner { catalog }
    }
}

impl StepPlanner for EscalationPlanner {
    fn plan(&self, step: &ClaimedStep, now: DateTime<Utc>) -> StepDone {
        let actor = Actor::new("system", "escalation");
        let catalog = self.catalog.current();
        let direct;
        let policy = match step.policy_id.strip_prefix("user:") {
            // Reassigned to one person: a one-level policy of their own.
            Some(user) if catalog.users.contains_key(user) => {
                direct = Policy {
                    id: step.policy_id.clone(),
                    repeat: 0,
                    levels: vec![Level {
                        targets: vec![Target::User(user.to_owned())],
                        escalate_after: DIRECT_ASSIGNMENT_WAIT,
                    }],
                };
                Some(&direct)
            }
            _ => catalog.policy(&step.policy_id),
        };
        let Some(policy) = policy else {
            return StepDone {
                next: None,
                deliveries: vec![],
                timeline: vec![(
                    TimelineKind::Escalation,
                    format!(
                        "escalation policy `{}` no longer exists; escalation stopped",
                        step.policy_id
                    ),
                )],
                actor,
            };
        };
        let pos = Position {
            level: usize::try_from(step.level).unwrap_or(usize::MAX),
            round: u32::try_from(step.round).unwrap_or(u32::MAX),
        };
        let plan = plan_step(policy, pos, step.priority, now, |schedule| {
            catalog
                .schedules
                .get(schedule)
                .and_then(|s| s.model.on_call(now))
                .map(|o| o.user)
        });
        let mut timeline = vec![(TimelineKind::Escalation, plan.note)];
        let mut deliveries = Vec::new();
        for n in &plan.notify {
            let Some(user) = catalog.users.get(&n.user) else {
                timeline.push((
                    TimelineKind::Notification,
                    format!(
                        "user `{}` is not configured; nobody notified for them",
                        n.user
                    ),
                ));
                continue;
            };
            let rules = user.rules(step.priority);
            if rules.is_empty() {
                timeline.push((
                    TimelineKind::Notification,
                    format!(
                        "{} has no {} priority notification rules",
                        n.user, step.priority
                    ),
                ));
            }
            for (contact, after) in rules {
                match user.contact(contact) {
                    Some(route) => deliveries.push(NewDelivery {
                        user_id: n.user.clone(),
                        contact_id: contact.clone(),
                        channel: route.channel.clone(),
                        address: route.address.clone(),
                        due_at: now + *after,
                    }),
                    None => timeline.push((
                        TimelineKind::Notification,
                        format!("{}: contact `{contact}` does not exist", n.user),
                    )),
                }
            }
        }
        if !deliveries.is_empty() {
            let list: Vec<String> = deliveries
                .iter()
                .map(|d| {
                    let wait = (d.due_at - now).num_seconds();
                    if wait > 0 {
                        format!("{} by {} in {wait}s", d.user_id, d.channel)
                    } else {
                        format!("{} by {}", d.user_id, d.channel)
                    }
                })
                .collect();
            // On the level's own entry: one row a step, not two.
            if let Some((_, note)) = timeline.first_mut() {
                note.push_str(&format!("; queued: {}", list.join(", ")));
            }
        }
        let next = plan.next.map(|(p, due_at)| NextStep {
            level: i64::try_from(p.level).unwrap_or(i64::MAX),
            round: i64::from(p.round),
            due_at,
        });
        StepDone {
            next,
            deliveries,
            timeline,
            actor,
        }
    }
}
