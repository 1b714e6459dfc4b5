//! Group commit for ingest, on both backends: one writer task takes every
//! request waiting at that moment, applies them in one transaction, commits
//! once and only then answers each. Under load this turns many small
//! commits (and, on PostgreSQL, many round trips) into a few.
//!
//! Each batch takes what is waiting fairly (see [`take_batch`]), so one
//! source's storm of big requests delays another source's alert by one
//! batch at most, not by the whole queue.

use std::collections::VecDeque;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::db::{DbError, Tx};
use crate::dialect::Dialect;
use crate::plan::JobRef;
use crate::{Actor, IngestResult, RoutedEvent, StepPlanner, StoreError};

/// The planner ingest runs first escalation levels with, once one is set
/// ([`crate::Store::run_first_levels`]); shared by a backend's writers.
pub(crate) type PlannerSlot =
    std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<dyn StepPlanner>>>>;

/// How a group-commit writer opens its transactions.
#[async_trait]
pub(crate) trait Begin: Send + Sync + 'static {
    type Tx: Tx;
    const SQL: &'static Dialect;
    async fn begin(&self) -> Result<Self::Tx, DbError>;
}

/// How often a request that raced another node to open an alert is retried.
const RACE_RETRIES: usize = 3;

/// The queue of one group-commit writer.
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Start a writer task; it ends when the queue is dropped.
    pub(crate) fn start<W: Begin>(writer: W, planner: PlannerSlot) -> Self {
        let (jobs, rx) = mpsc::channel(1024);
        tokio::spawn(run_writer(writer, planner, rx));
        GroupCommit { jobs }
    }

    /// Apply one request's events; the results once committed.
    pub(crate) async fn submit(
        &self,
        source_id: &str,
        actor: &Actor,
        events: Vec<RoutedEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<IngestResult>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            source_id: source_id.to_owned(),
            actor: actor.clone(),
            events,
            now,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the ingest writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the ingest writer dropped the request".into()))?
    }
}

/// Most requests one group commit takes.
const MAX_BATCH: usize = 128;

/// Most events one group commit takes (a request's own events always fit):
/// a batch holds the writer (SQLite's one connection, or the rows it locks),
/// so an alert storm in big requests must not keep the workers (another
/// team's page) waiting for long.
const MAX_BATCH_EVENTS: usize = 300;

/// Requests with at most this many events count as small: they go first in
/// a batch (and on PostgreSQL have writers of their own).
pub(crate) const SMALL_REQUEST: usize = 10;

struct Job {
    source_id: String,
    actor: Actor,
    events: Vec<RoutedEvent>,
    now: DateTime<Utc>,
    reply: oneshot::Sender<Result<Vec<IngestResult>, StoreError>>,
}

/// The group-commit loop: runs until every sender is gone.
///
/// Each batch takes what is waiting, fairly: first the oldest request of
/// every source and every small request, then the rest in arrival order, up to
/// [`MAX_BATCH`] requests and [`MAX_BATCH_EVENTS`] events. So one source's
/// storm of big requests delays another source's alert by one batch at
/// most, not by the whole queue.
async fn run_writer<W: Begin>(writer: W, planner: PlannerSlot, mut rx: mpsc::Receiver<Job>) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(j) => waiting.push_back(j),
                None => return,
            }
        }
        while let Ok(j) = rx.try_recv() {
            waiting.push_back(j);
        }
        let planner = planner.read().ok().and_then(|p| p.clone());
        commit_batch(&writer, planner.as_deref(), take_batch(&mut waiting)).await;
    }
}

/// The next batch from `waiting` (never empty when `waiting` is not).
fn take_batch(waiting: &mut VecDeque<Job>) -> Vec<Job> {
    let mut picked = vec![false; waiting.len()];
    let mut events = 0usize;
    let mut count = 0usize;
    let mut seen = std::collections::HashSet::new();
    // The oldest request of each source, then everything in order.
    for first_pass in [true, false] {
        for (i, j) in waiting.iter().enumerate() {
            if count >= MAX_BATCH {
                break;
            }
            let already = picked.get(i).copied().unwrap_or(true);
            // First pass: the oldest request of each source, and every
            // small one (another team's page in a storm of big groups from
            // the same Alertmanager).
            let small = j.events.len() <= SMALL_REQUEST;
            if already || (first_pass && !small && !seen.insert(j.source_id.as_str())) {
                continue;
            }
            // A request's own events always fit into an empty batch.
            if count > 0 && events + j.events.len() > MAX_BATCH_EVENTS {
                continue;
            }
            if let Some(p) = picked.get_mut(i) {
                *p = true;
            }
            events += j.events.len();
            count += 1;
        }
    }
    let mut batch = Vec::with_capacity(count);
    let mut rest = VecDeque::with_capacity(waiting.len() - count);
    for (j, p) in waiting.drain(..).zip(picked) {
        if p {
            batch.push(j);
        } else {
            rest.push_back(j);
        }
    }
    *waiting = rest;
    batch
}

async fn commit_batch<W: Begin>(writer: &W, planner: Option<&dyn StepPlanner>, jobs: Vec<Job>) {
    // The whole batch in one transaction. If any job fails, roll back and
    // run each job in a transaction of its own, so that one bad request
    // cannot fail the others (and a race with another node to open the
    // same alert is retried: then it sees the winner's alert).
    match run_jobs(writer, planner, &jobs).await {
        Ok(results) => {
            for (job, r) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(Ok(r));
            }
        }
        Err(e) if jobs.len() > 1 || StoreError::is_lost_race(&e) => {
            for job in jobs {
                let mut r = run_jobs(writer, planner, std::slice::from_ref(&job)).await;
                for _ in 0..RACE_RETRIES {
                    match &r {
                        Err(e) if StoreError::is_lost_race(e) => {
                            r = run_jobs(writer, planner, std::slice::from_ref(&job)).await;
                        }
                        _ => break,
                    }
                }
                let _ = job.reply.send(
                    r.map(|mut v| v.pop().unwrap_or_default())
                        .map_err(StoreError::from),
                );
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::from_message(&e, &msg)));
            }
        }
    }
}

/// Apply jobs in one transaction; their results, in order, once committed.
async fn run_jobs<W: Begin>(
    writer: &W,
    planner: Option<&dyn StepPlanner>,
    jobs: &[Job],
) -> Result<Vec<Vec<IngestResult>>, DbError> {
    let refs: Vec<JobRef<'_>> = jobs
        .iter()
        .map(|j| JobRef {
            source_id: &j.source_id,
            actor: &j.actor,
            events: &j.events,
            now: j.now,
        })
        .collect();
    let mut tx = writer.begin().await?;
    let results = crate::imp::ingest_batch(W::SQL, &mut tx, &refs, planner).await?;
    tx.commit().await?;
    Ok(results)
}
