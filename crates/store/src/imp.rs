//! The SQL of the [`Store`](crate::Store) trait, written once and expanded
//! for each backend by [`impl_store!`]. Placeholders are `$1…` (both
//! backends accept them) and appear in the order they are bound.

use chrono::{DateTime, Utc};

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

pub(crate) fn enc<T: serde::Serialize>(v: &T) -> Result<String, sqlx::Error> {
    serde_json::to_string(v).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

pub(crate) fn dec<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

pub(crate) fn parse<T: std::str::FromStr>(s: &str) -> Result<T, sqlx::Error>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.parse()
        .map_err(|e: T::Err| sqlx::Error::Decode(Box::new(e)))
}

pub(crate) fn spec_hash(spec: &serde_json::Value) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(spec.to_string().as_bytes()))
}

/// A value bound to a dynamically built query.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

pub(crate) const ALERT_COLUMNS: &str = "id, source_id, dedup_key, status, severity, priority, summary, details, labels, links, members, policy_id, service_id, detected_at, created_at, updated_at, last_seen_at, seen_count, accepted_at, accepted_by, resolved_at, resolved_by";

/// The timeline entry of one attempt of a bundle. It names the user, the
/// channel and the contact's id, never its address: a Slack or webhook URL
/// is a secret, and the timeline is readable by every observer.
pub(crate) fn attempt_note(
    b: &crate::ClaimedBundle,
    attempt: i64,
    outcome: &crate::DeliveryOutcome,
) -> String {
    use crate::DeliveryOutcome;
    let who = format!(
        "attempt {attempt} to {} by {} (contact `{}`)",
        b.user_id, b.channel, b.contact_id
    );
    let bundled = if b.alert_count > 1 {
        format!("; one message about {} alerts", b.alert_count)
    } else {
        String::new()
    };
    match outcome {
        DeliveryOutcome::Sent { detail } if detail.is_empty() => {
            format!("{who}: delivered{bundled}")
        }
        DeliveryOutcome::Sent { detail } => format!("{who}: delivered ({detail}){bundled}"),
        DeliveryOutcome::Retry { error, next_at } => format!(
            "{who} failed: {error}; retrying at {}{bundled}",
            next_at.to_rfc3339()
        ),
        DeliveryOutcome::Failed { error } => format!("{who} failed: {error}; giving up{bundled}"),
    }
}

/// "2 firing, 1 resolved".
pub(crate) fn member_counts(members: &[tocsin_domain::Member]) -> String {
    let firing = members.iter().filter(|m| m.is_firing()).count();
    format!("{firing} firing, {} resolved", members.len() - firing)
}

macro_rules! impl_store {
    (
        $store:ty,
        $db:ty,
        backend = $backend:literal,
        for_update = $for_update:literal,
        lookup = $lookup:literal,
        reserve_ids = $reserve_ids:literal,
        insert_alerts = $insert_alerts:literal,
        update_alerts = $update_alerts:literal,
        insert_labels = $insert_labels:literal,
        insert_timeline = $insert_timeline:literal,
        insert_steps = $insert_steps:literal,
        skip_locked = $skip_locked:literal,
        ids_open = $ids_open:literal,
        ids_close = $ids_close:literal,
        insert_outbox = $insert_outbox:literal,
        insert_next_steps = $insert_next_steps:literal,
        upsert_gates = $upsert_gates:literal
    ) => {
        impl $store {
            fn alert_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<$crate::Alert, sqlx::Error> {
                use sqlx::Row;
                use $crate::imp::{dec, from_ms, parse};
                Ok($crate::Alert {
                    id: row.try_get("id")?,
                    source_id: row.try_get("source_id")?,
                    dedup_key: row.try_get("dedup_key")?,
                    status: parse(row.try_get::<&str, _>("status")?)?,
                    severity: parse(row.try_get::<&str, _>("severity")?)?,
                    priority: parse(row.try_get::<&str, _>("priority")?)?,
                    summary: row.try_get("summary")?,
                    details: row.try_get("details")?,
                    labels: dec(row.try_get::<&str, _>("labels")?)?,
                    links: dec(row.try_get::<&str, _>("links")?)?,
                    members: dec(row.try_get::<&str, _>("members")?)?,
                    policy_id: row.try_get("policy_id")?,
                    service_id: row.try_get("service_id")?,
                    detected_at: from_ms(row.try_get("detected_at")?),
                    created_at: from_ms(row.try_get("created_at")?),
                    updated_at: from_ms(row.try_get("updated_at")?),
                    last_seen_at: from_ms(row.try_get("last_seen_at")?),
                    seen_count: row.try_get("seen_count")?,
                    accepted_at: row.try_get::<Option<i64>, _>("accepted_at")?.map(from_ms),
                    accepted_by: row.try_get("accepted_by")?,
                    resolved_at: row.try_get::<Option<i64>, _>("resolved_at")?.map(from_ms),
                    resolved_by: row.try_get("resolved_by")?,
                })
            }

            fn window_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<$crate::MaintenanceWindow, sqlx::Error> {
                use sqlx::Row;
                use $crate::imp::from_ms;
                Ok($crate::MaintenanceWindow {
                    id: row.try_get("id")?,
                    target_kind: row.try_get("target_kind")?,
                    target_id: row.try_get("target_id")?,
                    starts_at: from_ms(row.try_get("starts_at")?),
                    ends_at: from_ms(row.try_get("ends_at")?),
                    reason: row.try_get("reason")?,
                    created_by: row.try_get("created_by")?,
                    created_at: from_ms(row.try_get("created_at")?),
                    ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(from_ms),
                })
            }

            fn change_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<$crate::ChangeEvent, sqlx::Error> {
                use sqlx::Row;
                use $crate::imp::{dec, from_ms};
                Ok($crate::ChangeEvent {
                    id: row.try_get("id")?,
                    source_id: row.try_get("source_id")?,
                    service_id: row.try_get("service_id")?,
                    at: from_ms(row.try_get("at")?),
                    received_at: from_ms(row.try_get("received_at")?),
                    summary: row.try_get("summary")?,
                    origin: row.try_get("origin")?,
                    details: row.try_get("details")?,
                    links: dec(&row.try_get::<String, _>("links")?)?,
                })
            }

            fn entry_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<$crate::TimelineEntry, sqlx::Error> {
                use sqlx::Row;
                Ok($crate::TimelineEntry {
                    id: row.try_get("id")?,
                    alert_id: row.try_get("alert_id")?,
                    at: $crate::imp::from_ms(row.try_get("at")?),
                    kind: row.try_get("kind")?,
                    actor: row.try_get("actor")?,
                    channel: row.try_get("channel")?,
                    message: row.try_get("message")?,
                })
            }

            /// Append timeline rows with one statement of fixed text (rows
            /// travel as a JSON array, so it is prepared once per connection).
            async fn insert_timeline(
                tx: &mut sqlx::Transaction<'static, $db>,
                rows: &[$crate::plan::TimelineRow],
            ) -> Result<(), sqlx::Error> {
                if rows.is_empty() {
                    return Ok(());
                }
                sqlx::query($insert_timeline)
                    .bind($crate::imp::enc(&rows)?)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Make each contact's place in the queue no later than `due`
            /// (user, contact, epoch ms), creating its gate if need be.
            async fn upsert_gates(
                tx: &mut sqlx::Transaction<'static, $db>,
                due: Vec<(String, String, i64)>,
            ) -> Result<(), sqlx::Error> {
                // One row per contact (PostgreSQL refuses to update a row
                // twice in one statement), in key order (no lock-order
                // deadlock between two writers).
                let mut first: std::collections::BTreeMap<(String, String), i64> =
                    std::collections::BTreeMap::new();
                for (user, contact, at) in due {
                    let e = first.entry((user, contact)).or_insert(at);
                    *e = (*e).min(at);
                }
                if first.is_empty() {
                    return Ok(());
                }
                let rows: Vec<serde_json::Value> = first
                    .into_iter()
                    .map(|((u, c), at)| serde_json::json!([u, c, at]))
                    .collect();
                sqlx::query($upsert_gates)
                    .bind($crate::imp::enc(&rows)?)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Cancel the pending escalation steps and notifications of an alert.
            async fn stop_escalation(
                tx: &mut sqlx::Transaction<'static, $db>,
                alert_id: i64,
            ) -> Result<(), sqlx::Error> {
                sqlx::query("UPDATE escalation_steps SET status = 'cancelled' WHERE alert_id = $1 AND status IN ('pending', 'running')")
                    .bind(alert_id)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("UPDATE outbox SET status = 'cancelled' WHERE alert_id = $1 AND status = 'pending'")
                    .bind(alert_id)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Start escalation again at level 1, now (of `policy_id`, or of
            /// the alert's own policy).
            async fn restart_escalation(
                tx: &mut sqlx::Transaction<'static, $db>,
                alert_id: i64,
                policy_id: Option<&str>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), sqlx::Error> {
                sqlx::query("INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) SELECT id, COALESCE($1, policy_id), 0, 0, $2, 'pending', $2 FROM alerts WHERE id = $3 AND COALESCE($1, policy_id) IS NOT NULL")
                    .bind(policy_id)
                    .bind($crate::imp::ms(now))
                    .bind(alert_id)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Apply the events of several requests inside `tx` (the caller
            /// commits): one lookup, one plan, and a fixed set of statements.
            pub(crate) async fn ingest_batch(
                tx: &mut sqlx::Transaction<'static, $db>,
                jobs: &[$crate::plan::JobRef<'_>],
            ) -> Result<Vec<Vec<$crate::IngestResult>>, sqlx::Error> {
                use sqlx::Row;
                use $crate::imp::{dec, enc, ms, parse};
                use $crate::plan::{Key, Newest};

                let mut keys: Vec<(&str, &str)> = jobs
                    .iter()
                    .flat_map(|j| j.events.iter().map(move |e| (j.source_id, e.event.dedup_key.as_str())))
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                let mut newest = std::collections::HashMap::with_capacity(keys.len());
                if !keys.is_empty() {
                    let rows = sqlx::query($lookup)
                        .bind(enc(&keys)?)
                        .fetch_all(&mut **tx)
                        .await?;
                    for r in rows {
                        let key: Key = (r.try_get("source_id")?, r.try_get("dedup_key")?);
                        newest.insert(
                            key,
                            Newest {
                                id: r.try_get("id")?,
                                status: parse(r.try_get::<&str, _>("status")?)?,
                                members: dec(r.try_get::<&str, _>("members")?)?,
                                stored: $crate::plan::Stored {
                                    severity: parse(r.try_get::<&str, _>("severity")?)?,
                                    priority: parse(r.try_get::<&str, _>("priority")?)?,
                                    summary: r.try_get("summary")?,
                                    details: r.try_get("details")?,
                                    links: dec(r.try_get::<&str, _>("links")?)?,
                                },
                            },
                        );
                    }
                }

                let mut plan = $crate::plan::plan(jobs, newest);
                let n_new = plan.new_alerts();
                if n_new > 0 {
                    let ids: Vec<i64> = sqlx::query($reserve_ids)
                        .bind(i64::try_from(n_new).unwrap_or(i64::MAX))
                        .fetch_all(&mut **tx)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<i64, _>("id"))
                        .collect::<Result<_, _>>()?;
                    plan.assign_ids(&ids);
                }

                let mut inserts = Vec::new();
                let mut updates = Vec::new();
                for d in &plan.drafts {
                    let c = d.content.as_ref();
                    if d.is_new {
                        inserts.push(serde_json::json!([
                            d.id, d.source_id, d.dedup_key, d.status.as_str(),
                            c.map(|c| c.severity.as_str()), c.map(|c| c.priority.as_str()),
                            c.map(|c| c.summary.as_str()), c.map(|c| c.details.as_str()),
                            c.map(|c| enc(&c.labels)).transpose()?, c.map(|c| enc(&c.links)).transpose()?,
                            enc(&d.members)?, d.policy_id, d.service_id,
                            ms(d.detected_at), ms(d.created_at), ms(d.updated_at), ms(d.last_seen_at),
                            d.seen, d.resolved_at.map(ms), d.resolved_by,
                        ]));
                    } else {
                        updates.push(serde_json::json!([
                            d.id, d.status.as_str(),
                            c.map(|c| c.severity.as_str()), c.map(|c| c.priority.as_str()),
                            c.map(|c| c.summary.as_str()), c.map(|c| c.details.as_str()),
                            c.map(|c| enc(&c.labels)).transpose()?, c.map(|c| enc(&c.links)).transpose()?,
                            c.map(|_| enc(&d.members)).transpose()?,
                            c.map(|_| ms(d.updated_at)), ms(d.last_seen_at), d.seen,
                            d.resolved_at.map(ms), d.resolved_by,
                        ]));
                    }
                }
                if !inserts.is_empty() {
                    sqlx::query($insert_alerts).bind(enc(&inserts)?).execute(&mut **tx).await?;
                }
                if !updates.is_empty() {
                    sqlx::query($update_alerts).bind(enc(&updates)?).execute(&mut **tx).await?;
                }
                // Every new alert starts its escalation at level 1, now.
                let steps: Vec<serde_json::Value> = plan
                    .drafts
                    .iter()
                    .filter(|d| d.is_new && d.page)
                    .filter_map(|d| {
                        d.policy_id.as_ref().map(|p| serde_json::json!([d.id, p, ms(d.first_step_at.unwrap_or(d.created_at)), ms(d.created_at)]))
                    })
                    .collect();
                if !steps.is_empty() {
                    sqlx::query($insert_steps).bind(enc(&steps)?).execute(&mut **tx).await?;
                }
                // Alerts the source resolved stop escalating.
                for d in plan.drafts.iter().filter(|d| !d.is_new && d.status == tocsin_domain::AlertStatus::Resolved) {
                    Self::stop_escalation(tx, d.id).await?;
                }
                if !plan.labels.is_empty() {
                    sqlx::query($insert_labels).bind(enc(&plan.labels)?).execute(&mut **tx).await?;
                }
                Self::insert_timeline(tx, &plan.timeline).await?;
                Ok(plan.results)
            }
        }

        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<(), $crate::StoreError> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
            }

            async fn sync_objects(
                &self,
                kind: &str,
                objects: &[$crate::ProvisionedObject],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::SyncReport, $crate::StoreError> {
                use sqlx::Row;
                use $crate::imp::{ms, spec_hash};
                let mut tx = self.write.begin().await?;
                let rows = sqlx::query("SELECT id, spec_hash FROM provisioned_objects WHERE kind = $1")
                    .bind(kind)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut existing = std::collections::HashMap::new();
                for r in rows {
                    existing.insert(r.try_get::<String, _>("id")?, r.try_get::<String, _>("spec_hash")?);
                }
                let mut report = $crate::SyncReport::default();
                for o in objects {
                    let hash = spec_hash(&o.spec);
                    match existing.remove(&o.id) {
                        Some(old) if old == hash => report.unchanged += 1,
                        Some(_) => {
                            sqlx::query("UPDATE provisioned_objects SET spec = $1, spec_hash = $2, updated_at = $3 WHERE kind = $4 AND id = $5")
                                .bind(o.spec.to_string())
                                .bind(&hash)
                                .bind(ms(now))
                                .bind(kind)
                                .bind(&o.id)
                                .execute(&mut *tx)
                                .await?;
                            report.updated += 1;
                        }
                        None => {
                            sqlx::query("INSERT INTO provisioned_objects (kind, id, spec, spec_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
                                .bind(kind)
                                .bind(&o.id)
                                .bind(o.spec.to_string())
                                .bind(&hash)
                                .bind(ms(now))
                                .execute(&mut *tx)
                                .await?;
                            report.created += 1;
                        }
                    }
                }
                for id in existing.keys() {
                    sqlx::query("DELETE FROM provisioned_objects WHERE kind = $1 AND id = $2")
                        .bind(kind)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    report.removed += 1;
                }
                tx.commit().await?;
                Ok(report)
            }

            async fn objects(&self, kind: &str) -> Result<Vec<$crate::ProvisionedObject>, $crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query("SELECT id, spec FROM provisioned_objects WHERE kind = $1 ORDER BY id")
                    .bind(kind)
                    .fetch_all(&self.read)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::ProvisionedObject {
                            id: r.try_get("id")?,
                            spec: $crate::imp::dec(r.try_get::<&str, _>("spec")?)?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            async fn source_key(
                &self,
                source_id: &str,
                configured: Option<&str>,
                generated: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<String, $crate::StoreError> {
                use sqlx::Row;
                let now = $crate::imp::ms(now);
                if let Some(k) = configured {
                    sqlx::query("INSERT INTO source_keys (source_id, key, created_at) VALUES ($1, $2, $3) ON CONFLICT (source_id) DO UPDATE SET key = excluded.key")
                        .bind(source_id)
                        .bind(k)
                        .bind(now)
                        .execute(&self.write)
                        .await?;
                    return Ok(k.to_owned());
                }
                sqlx::query("INSERT INTO source_keys (source_id, key, created_at) VALUES ($1, $2, $3) ON CONFLICT (source_id) DO NOTHING")
                    .bind(source_id)
                    .bind(generated)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                let row = sqlx::query("SELECT key FROM source_keys WHERE source_id = $1")
                    .bind(source_id)
                    .fetch_one(&self.write)
                    .await?;
                Ok(row.try_get("key")?)
            }

            async fn named_secret(
                &self,
                scope: &str,
                id: &str,
                generated: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<String, $crate::StoreError> {
                use sqlx::Row;
                sqlx::query("INSERT INTO secrets (scope, id, value, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (scope, id) DO NOTHING")
                    .bind(scope)
                    .bind(id)
                    .bind(generated)
                    .bind($crate::imp::ms(now))
                    .execute(&self.write)
                    .await?;
                let row = sqlx::query("SELECT value FROM secrets WHERE scope = $1 AND id = $2")
                    .bind(scope)
                    .bind(id)
                    .fetch_one(&self.write)
                    .await?;
                Ok(row.try_get("value")?)
            }

            async fn ingest(
                &self,
                source_id: &str,
                actor: &$crate::Actor,
                events: Vec<$crate::RoutedEvent>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::IngestResult>, $crate::StoreError> {
                self.ingest_impl(source_id, actor, events, now).await
            }

            async fn listen(
                &self,
            ) -> Result<Option<tokio::sync::mpsc::Receiver<$crate::Wake>>, $crate::StoreError> {
                self.listen_impl().await
            }

            async fn list_alerts(&self, f: &$crate::AlertFilter) -> Result<$crate::AlertPage, $crate::StoreError> {
                use $crate::imp::Bind;
                let mut binds: Vec<Bind> = Vec::new();
                let mut next = |b: Bind| {
                    binds.push(b);
                    format!("${}", binds.len())
                };
                let mut sql = format!("SELECT {} FROM alerts WHERE 1 = 1", $crate::imp::ALERT_COLUMNS);
                if let Some(s) = f.status {
                    sql.push_str(&format!(" AND status = {}", next(Bind::Text(s.as_str().into()))));
                }
                if let Some(s) = &f.source_id {
                    sql.push_str(&format!(" AND source_id = {}", next(Bind::Text(s.clone()))));
                }
                if let Some(s) = &f.service_id {
                    sql.push_str(&format!(" AND service_id = {}", next(Bind::Text(s.clone()))));
                }
                if let Some(s) = f.severity {
                    sql.push_str(&format!(" AND severity = {}", next(Bind::Text(s.as_str().into()))));
                }
                for (n, v) in &f.labels {
                    let pn = next(Bind::Text(n.clone()));
                    let pv = next(Bind::Text(v.clone()));
                    sql.push_str(&format!(
                        " AND EXISTS (SELECT 1 FROM alert_labels l WHERE l.alert_id = alerts.id AND l.name = {pn} AND l.value = {pv})"
                    ));
                }
                if let Some(b) = f.before_id {
                    sql.push_str(&format!(" AND id < {}", next(Bind::Int(b))));
                }
                let limit = i64::from(f.limit.clamp(1, 1000));
                sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", next(Bind::Int(limit + 1))));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for b in binds {
                    q = match b {
                        Bind::Text(s) => q.bind(s),
                        Bind::Int(i) => q.bind(i),
                    };
                }
                let rows = q.fetch_all(&self.read).await?;
                let mut alerts = rows
                    .iter()
                    .map(Self::alert_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                let more = alerts.len() as i64 > limit;
                alerts.truncate(limit as usize);
                let next_before_id = if more { alerts.last().map(|a| a.id) } else { None };
                Ok($crate::AlertPage { alerts, next_before_id })
            }

            async fn get_alert(&self, id: i64) -> Result<Option<$crate::Alert>, $crate::StoreError> {
                let sql = format!("SELECT {} FROM alerts WHERE id = $1", $crate::imp::ALERT_COLUMNS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(&self.read).await?;
                Ok(row.as_ref().map(Self::alert_from_row).transpose()?)
            }

            async fn timeline(&self, alert_id: i64) -> Result<Vec<$crate::TimelineEntry>, $crate::StoreError> {
                let rows = sqlx::query("SELECT id, alert_id, at, kind, actor, channel, message FROM alert_timeline WHERE alert_id = $1 ORDER BY id")
                    .bind(alert_id)
                    .fetch_all(&self.read)
                    .await?;
                Ok(rows.iter().map(Self::entry_from_row).collect::<Result<Vec<_>, _>>()?)
            }

            async fn transition(
                &self,
                alert_id: i64,
                action: $crate::Transition,
                actor: &$crate::Actor,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::TransitionResult, $crate::StoreError> {
                use sqlx::Row;
                use tocsin_domain::{AlertStatus, TimelineKind};
                use $crate::{Transition, TransitionResult};
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(concat!("SELECT status FROM alerts WHERE id = $1", $for_update))
                    .bind(alert_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    return Ok(TransitionResult::NotFound);
                };
                let status: AlertStatus = $crate::imp::parse(row.try_get::<&str, _>("status")?)?;
                enum Step { Change, Same, Conflict }
                let step = match (action, status) {
                    (Transition::Accept, AlertStatus::Pending) => Step::Change,
                    (Transition::Accept, AlertStatus::Accepted) => Step::Same,
                    (Transition::Accept, AlertStatus::Resolved) => Step::Conflict,
                    (Transition::Resolve, AlertStatus::Resolved) => Step::Same,
                    (Transition::Resolve, _) => Step::Change,
                    (Transition::Unaccept, AlertStatus::Accepted) => Step::Change,
                    (Transition::Unaccept, AlertStatus::Pending) => Step::Same,
                    (Transition::Unaccept, AlertStatus::Resolved) => Step::Conflict,
                };
                if let Step::Change = step {
                    let now_ms = $crate::imp::ms(now);
                    let (sql, kind, msg) = match action {
                        Transition::Accept => (
                            "UPDATE alerts SET status = 'accepted', accepted_at = $1, accepted_by = $2, updated_at = $1 WHERE id = $3",
                            TimelineKind::Accepted,
                            format!("accepted by {} via {}", actor.name, actor.channel),
                        ),
                        Transition::Resolve => (
                            "UPDATE alerts SET status = 'resolved', resolved_at = $1, resolved_by = $2, updated_at = $1 WHERE id = $3",
                            TimelineKind::Resolved,
                            format!("resolved by {} via {}", actor.name, actor.channel),
                        ),
                        Transition::Unaccept => (
                            "UPDATE alerts SET status = 'pending', accepted_at = NULL, accepted_by = NULL, updated_at = $1 WHERE id = $3 AND $2 = $2",
                            TimelineKind::Escalation,
                            format!("un-accepted by {} via {}; escalation restarts at level 1", actor.name, actor.channel),
                        ),
                    };
                    sqlx::query(sql)
                        .bind(now_ms)
                        .bind(&actor.name)
                        .bind(alert_id)
                        .execute(&mut *tx)
                        .await?;
                    let row = $crate::plan::TimelineRow {
                        alert_id,
                        at: now_ms,
                        actor: actor.name.clone(),
                        channel: actor.channel.clone(),
                        kind: kind.as_str(),
                        message: msg,
                    };
                    Self::insert_timeline(&mut tx, std::slice::from_ref(&row)).await?;
                    Self::stop_escalation(&mut tx, alert_id).await?;
                    if action == Transition::Unaccept {
                        Self::restart_escalation(&mut tx, alert_id, None, now).await?;
                    }
                }
                tx.commit().await?;
                let alert = self
                    .get_alert(alert_id)
                    .await?
                    .ok_or_else(|| $crate::StoreError::Internal("alert vanished after its transition".into()))?;
                Ok(match step {
                    Step::Change => TransitionResult::Done(Box::new(alert)),
                    Step::Same => TransitionResult::Unchanged(Box::new(alert)),
                    Step::Conflict => TransitionResult::Conflict(Box::new(alert)),
                })
            }

            async fn reassign(
                &self,
                alert_id: i64,
                policy_id: &str,
                actor: &$crate::Actor,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::TransitionResult, $crate::StoreError> {
                use sqlx::Row;
                use tocsin_domain::{AlertStatus, TimelineKind};
                use $crate::TransitionResult;
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(concat!("SELECT status FROM alerts WHERE id = $1", $for_update))
                    .bind(alert_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    return Ok(TransitionResult::NotFound);
                };
                let status: AlertStatus = $crate::imp::parse(row.try_get::<&str, _>("status")?)?;
                if status == AlertStatus::Resolved {
                    tx.rollback().await?;
                    let a = self.get_alert(alert_id).await?.ok_or_else(|| $crate::StoreError::Internal("alert vanished".into()))?;
                    return Ok(TransitionResult::Conflict(Box::new(a)));
                }
                let now_ms = $crate::imp::ms(now);
                sqlx::query("UPDATE alerts SET policy_id = $1, status = 'pending', accepted_at = NULL, accepted_by = NULL, updated_at = $2 WHERE id = $3")
                    .bind(policy_id)
                    .bind(now_ms)
                    .bind(alert_id)
                    .execute(&mut *tx)
                    .await?;
                Self::stop_escalation(&mut tx, alert_id).await?;
                Self::restart_escalation(&mut tx, alert_id, Some(policy_id), now).await?;
                let row = $crate::plan::TimelineRow {
                    alert_id,
                    at: now_ms,
                    actor: actor.name.clone(),
                    channel: actor.channel.clone(),
                    kind: TimelineKind::Escalation.as_str(),
                    message: format!("reassigned to {policy_id} by {}; escalation restarts at level 1", actor.name),
                };
                Self::insert_timeline(&mut tx, std::slice::from_ref(&row)).await?;
                tx.commit().await?;
                let a = self.get_alert(alert_id).await?.ok_or_else(|| $crate::StoreError::Internal("alert vanished".into()))?;
                Ok(TransitionResult::Done(Box::new(a)))
            }

            async fn comment(
                &self,
                alert_id: i64,
                actor: &$crate::Actor,
                text: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<$crate::TimelineEntry>, $crate::StoreError> {
                let mut tx = self.write.begin().await?;
                let exists = sqlx::query("SELECT id FROM alerts WHERE id = $1")
                    .bind(alert_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Ok(None);
                }
                let row = sqlx::query("INSERT INTO alert_timeline (alert_id, at, actor, channel, kind, message) VALUES ($1, $2, $3, $4, 'comment', $5) RETURNING id, alert_id, at, kind, actor, channel, message")
                    .bind(alert_id)
                    .bind($crate::imp::ms(now))
                    .bind(&actor.name)
                    .bind(&actor.channel)
                    .bind(text)
                    .fetch_one(&mut *tx)
                    .await?;
                let entry = Self::entry_from_row(&row)?;
                tx.commit().await?;
                Ok(Some(entry))
            }

            async fn prune_resolved(
                &self,
                resolved_before: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> Result<u64, $crate::StoreError> {
                let r = sqlx::query(
                    "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE status = 'resolved' AND resolved_at < $1 ORDER BY id LIMIT $2)",
                )
                .bind($crate::imp::ms(resolved_before))
                .bind(i64::from(limit))
                .execute(&self.write)
                .await?;
                Ok(r.rows_affected())
            }

            async fn claim_due_steps(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease: chrono::TimeDelta,
                limit: u32,
                claim: &str,
            ) -> Result<Vec<$crate::ClaimedStep>, $crate::StoreError> {
                use sqlx::Row;
                use $crate::imp::{from_ms, ms, parse};
                let mut tx = self.write.begin().await?;
                // Steps whose lease ran out (their worker died) are due again.
                let expired = sqlx::query(concat!(
                    "UPDATE escalation_steps SET status = 'pending', claim = NULL WHERE id IN (",
                    "SELECT id FROM escalation_steps WHERE status = 'running' AND claimed_until < $1 LIMIT 10000", $skip_locked,
                    ") RETURNING id"
                ))
                .bind(ms(now))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<i64, _>("id"))
                .collect::<Result<std::collections::HashSet<i64>, _>>()?;
                // Fairness first: the oldest due step of every policy that
                // has one. Policies are walked one index seek at a time, so
                // the cost grows with the number of policies, not steps.
                let heads: Vec<i64> = sqlx::query(
                    "WITH RECURSIVE p(policy_id) AS (SELECT MIN(policy_id) FROM escalation_steps WHERE status = 'pending' UNION ALL SELECT (SELECT MIN(s.policy_id) FROM escalation_steps s WHERE s.status = 'pending' AND s.policy_id > p.policy_id) FROM p WHERE p.policy_id IS NOT NULL) SELECT (SELECT s.id FROM escalation_steps s WHERE s.status = 'pending' AND s.policy_id = p.policy_id AND s.due_at <= $1 ORDER BY s.due_at LIMIT 1) AS id FROM p WHERE p.policy_id IS NOT NULL",
                )
                .bind(ms(now))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .filter_map(|r| r.try_get::<Option<i64>, _>("id").transpose())
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .collect::<Result<_, _>>()?;
                let mut rows = Vec::new();
                if !heads.is_empty() {
                    rows = sqlx::query(concat!(
                        "UPDATE escalation_steps SET status = 'running', claim = $1, claimed_until = $2 WHERE id IN (",
                        "SELECT id FROM escalation_steps WHERE status = 'pending' AND id IN (", $ids_open, "$3", $ids_close, ")", $skip_locked,
                        ") RETURNING id, alert_id, policy_id, level, round, due_at"
                    ))
                    .bind(claim)
                    .bind(ms(now + lease))
                    .bind($crate::imp::enc(&heads)?)
                    .fetch_all(&mut *tx)
                    .await?;
                }
                // Then the oldest due steps overall.
                let rest = i64::from(limit) - i64::try_from(rows.len()).unwrap_or(0);
                if rest > 0 {
                    rows.extend(
                        sqlx::query(concat!(
                            "UPDATE escalation_steps SET status = 'running', claim = $1, claimed_until = $2 WHERE id IN (",
                            "SELECT id FROM escalation_steps WHERE status = 'pending' AND due_at <= $3 ",
                            "ORDER BY due_at LIMIT $4", $skip_locked,
                            ") RETURNING id, alert_id, policy_id, level, round, due_at"
                        ))
                        .bind(claim)
                        .bind(ms(now + lease))
                        .bind(ms(now))
                        .bind(rest)
                        .fetch_all(&mut *tx)
                        .await?,
                    );
                }
                let alert_ids: Vec<i64> = rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>("alert_id"))
                    .collect::<Result<_, _>>()?;
                let mut priorities = std::collections::HashMap::new();
                if !alert_ids.is_empty() {
                    let prows = sqlx::query(concat!("SELECT id, priority FROM alerts WHERE id IN (", $ids_open, "$1", $ids_close, ")"))
                        .bind($crate::imp::enc(&alert_ids)?)
                        .fetch_all(&mut *tx)
                        .await?;
                    for p in prows {
                        priorities.insert(p.try_get::<i64, _>("id")?, parse::<tocsin_domain::Priority>(p.try_get::<&str, _>("priority")?)?);
                    }
                }
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let alert_id: i64 = r.try_get("alert_id")?;
                    let id: i64 = r.try_get("id")?;
                    out.push($crate::ClaimedStep {
                        id,
                        taken_over: expired.contains(&id),
                        alert_id,
                        policy_id: r.try_get("policy_id")?,
                        level: r.try_get("level")?,
                        round: r.try_get("round")?,
                        due_at: from_ms(r.try_get("due_at")?),
                        priority: priorities.get(&alert_id).copied().unwrap_or(tocsin_domain::Priority::High),
                        claim: claim.to_owned(),
                    });
                }
                tx.commit().await?;
                out.sort_by_key(|s| (s.due_at, s.id));
                Ok(out)
            }

            async fn complete_step(
                &self,
                step: &$crate::ClaimedStep,
                done: $crate::StepDone,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::StoreError> {
                let mut r = self.complete_steps(vec![(step.clone(), done)], now).await?;
                Ok(r.pop().unwrap_or(false))
            }

            async fn complete_steps(
                &self,
                items: Vec<($crate::ClaimedStep, $crate::StepDone)>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<bool>, $crate::StoreError> {
                use sqlx::Row;
                use $crate::imp::{enc, ms};
                if items.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = self.write.begin().await?;
                // Mark done every step whose claim still holds (one statement per claim token).
                let mut held = std::collections::HashSet::new();
                let mut claims: Vec<&str> = items.iter().map(|(s, _)| s.claim.as_str()).collect();
                claims.sort_unstable();
                claims.dedup();
                for claim in claims {
                    let ids: Vec<i64> = items.iter().filter(|(s, _)| s.claim == claim).map(|(s, _)| s.id).collect();
                    let rows = sqlx::query(concat!(
                        "UPDATE escalation_steps SET status = 'done', done_at = $1 WHERE status = 'running' AND claim = $2 AND id IN (",
                        $ids_open, "$3", $ids_close, ") RETURNING id"
                    ))
                    .bind(ms(now))
                    .bind(claim)
                    .bind(enc(&ids)?)
                    .fetch_all(&mut *tx)
                    .await?;
                    for r in rows {
                        held.insert(r.try_get::<i64, _>("id")?);
                    }
                }
                let mut outbox = Vec::new();
                let mut gates = Vec::new();
                let mut next = Vec::new();
                let mut timeline = Vec::new();
                for (step, done) in items.iter().filter(|(s, _)| held.contains(&s.id)) {
                    for d in &done.deliveries {
                        gates.push((d.user_id.clone(), d.contact_id.clone(), ms(d.due_at)));
                        outbox.push(serde_json::json!([
                            step.alert_id, step.id, d.user_id, d.contact_id, d.channel, d.address, ms(d.due_at), ms(now)
                        ]));
                    }
                    if let Some(n) = done.next {
                        next.push(serde_json::json!([step.alert_id, step.policy_id, n.level, n.round, ms(n.due_at), ms(now)]));
                    }
                    timeline.extend(done.timeline.iter().map(|(k, m)| $crate::plan::TimelineRow {
                        alert_id: step.alert_id,
                        at: ms(now),
                        actor: done.actor.name.clone(),
                        channel: done.actor.channel.clone(),
                        kind: k.as_str(),
                        message: m.clone(),
                    }));
                }
                if !outbox.is_empty() {
                    // Each contact's place in the queue, then its pages.
                    Self::upsert_gates(&mut tx, gates).await?;
                    sqlx::query($insert_outbox).bind(enc(&outbox)?).execute(&mut *tx).await?;
                }
                if !next.is_empty() {
                    sqlx::query($insert_next_steps).bind(enc(&next)?).execute(&mut *tx).await?;
                }
                Self::insert_timeline(&mut tx, &timeline).await?;
                tx.commit().await?;
                if !outbox.is_empty() {
                    self.wake_others($crate::WakeTopic::Dispatch);
                }
                Ok(items.iter().map(|(s, _)| held.contains(&s.id)).collect())
            }

            async fn claim_bundles(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease: chrono::TimeDelta,
                contacts: u32,
                bundle: chrono::TimeDelta,
                listed: u32,
                claim: &str,
            ) -> Result<Vec<$crate::ClaimedBundle>, $crate::StoreError> {
                use sqlx::Row;
                use $crate::imp::{enc, ms};
                // 1. Lease contacts, not pages: the ones whose oldest page
                // fell due first, whose window is over and that nobody holds
                // (or whose holder's lease ran out: it died). A short
                // transaction: the gates it locks are wanted by every
                // escalation round that pages these people.
                let mut tx = self.write.begin().await?;
                let picked = sqlx::query(concat!(
                    "SELECT user_id, contact_id, open_at, claim IS NOT NULL AS taken_over FROM contact_gates ",
                    "WHERE due_at <= $1 AND open_at <= $1 AND (claim IS NULL OR claimed_until < $1) ",
                    "ORDER BY due_at LIMIT $2", $skip_locked
                ))
                .bind(ms(now))
                .bind(i64::from(contacts))
                .fetch_all(&mut *tx)
                .await?;
                let mut held = Vec::with_capacity(picked.len());
                for g in picked {
                    let user_id: String = g.try_get("user_id")?;
                    let contact_id: String = g.try_get("contact_id")?;
                    sqlx::query(
                        "UPDATE contact_gates SET claim = $1, claimed_until = $2, open_at = $3 WHERE user_id = $4 AND contact_id = $5",
                    )
                    .bind(claim)
                    .bind(ms(now + lease))
                    .bind(ms(now + bundle))
                    .bind(&user_id)
                    .bind(&contact_id)
                    .execute(&mut *tx)
                    .await?;
                    held.push((
                        user_id,
                        contact_id,
                        g.try_get::<i64, _>("open_at")?,
                        g.try_get::<bool, _>("taken_over")?,
                    ));
                }
                tx.commit().await?;

                // 2. Each held contact's bundle, read without holding the
                // writer: every page pending and due now (with bundling), or
                // the oldest one (without). Nobody else claims these
                // contacts while the lease holds.
                let mut out = Vec::with_capacity(held.len());
                let mut empty = Vec::new();
                let mut alert_ids = Vec::new();
                for (user_id, contact_id, open_at, taken_over) in held {
                    let head = if bundle > chrono::TimeDelta::zero() {
                        sqlx::query(
                            "SELECT MIN(id) AS first_page, MAX(id) AS last_page, COUNT(*) AS pages, COUNT(DISTINCT alert_id) AS alerts, MAX(attempts) AS attempts, MIN(channel) AS channel, MIN(address) AS address FROM outbox WHERE user_id = $1 AND contact_id = $2 AND status = 'pending' AND next_attempt_at <= $3",
                        )
                    } else {
                        sqlx::query(
                            "SELECT id AS first_page, id AS last_page, CAST(1 AS BIGINT) AS pages, CAST(1 AS BIGINT) AS alerts, attempts, channel, address FROM outbox WHERE user_id = $1 AND contact_id = $2 AND status = 'pending' AND next_attempt_at <= $3 ORDER BY next_attempt_at, id LIMIT 1",
                        )
                    }
                    .bind(&user_id)
                    .bind(&contact_id)
                    .bind(ms(now))
                    .fetch_optional(&self.read)
                    .await?;
                    let pages: i64 = match &head {
                        Some(h) => h.try_get::<Option<i64>, _>("pages")?.unwrap_or(0),
                        None => 0,
                    };
                    let Some(h) = head.filter(|_| pages > 0) else {
                        empty.push((user_id, contact_id, open_at));
                        continue;
                    };
                    let first_page: i64 = h.try_get("first_page")?;
                    let last_page: i64 = h.try_get("last_page")?;
                    let listed_ids: Vec<i64> = sqlx::query(
                        "SELECT o.alert_id FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE o.user_id = $1 AND o.contact_id = $2 AND o.status = 'pending' AND o.next_attempt_at <= $3 AND o.id BETWEEN $4 AND $5 GROUP BY o.alert_id, a.severity ORDER BY a.severity, o.alert_id LIMIT $6",
                    )
                    .bind(&user_id)
                    .bind(&contact_id)
                    .bind(ms(now))
                    .bind(first_page)
                    .bind(last_page)
                    .bind(i64::from(listed))
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<i64, _>("alert_id"))
                    .collect::<Result<_, _>>()?;
                    alert_ids.extend(listed_ids.iter().copied());
                    out.push((
                        $crate::ClaimedBundle {
                            claim: claim.to_owned(),
                            user_id,
                            contact_id,
                            channel: h.try_get("channel")?,
                            address: h.try_get("address")?,
                            attempts: h.try_get("attempts")?,
                            first_page,
                            last_page,
                            cutoff: now,
                            pages,
                            taken_over: if taken_over { pages } else { 0 },
                            alert_count: h.try_get("alerts")?,
                            alerts: Vec::new(),
                        },
                        listed_ids,
                    ));
                }
                // A contact with nothing due after all (its pages were
                // cancelled): let it go as it was, at its oldest page left.
                if !empty.is_empty() {
                    let mut tx = self.write.begin().await?;
                    for (user_id, contact_id, open_at) in &empty {
                        sqlx::query(
                            "UPDATE contact_gates SET due_at = (SELECT MIN(o.next_attempt_at) FROM outbox o WHERE o.user_id = contact_gates.user_id AND o.contact_id = contact_gates.contact_id AND o.status = 'pending'), claim = NULL, claimed_until = NULL, open_at = $1 WHERE user_id = $2 AND contact_id = $3 AND claim = $4",
                        )
                        .bind(open_at)
                        .bind(user_id)
                        .bind(contact_id)
                        .bind(claim)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                }
                let mut alerts = std::collections::HashMap::new();
                if !alert_ids.is_empty() {
                    alert_ids.sort_unstable();
                    alert_ids.dedup();
                    let sql = format!(
                        "SELECT {} FROM alerts WHERE id IN ({}$1{})",
                        $crate::imp::ALERT_COLUMNS, $ids_open, $ids_close
                    );
                    let arows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(enc(&alert_ids)?)
                        .fetch_all(&self.read)
                        .await?;
                    for a in arows {
                        let alert = Self::alert_from_row(&a)?;
                        alerts.insert(alert.id, alert);
                    }
                }
                Ok(out
                    .into_iter()
                    .map(|(mut b, ids)| {
                        b.alerts = ids.iter().filter_map(|id| alerts.get(id).cloned()).collect();
                        b
                    })
                    .collect())
            }

            async fn finish_bundle(
                &self,
                b: &$crate::ClaimedBundle,
                outcome: $crate::DeliveryOutcome,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::StoreError> {
                use sqlx::Row;
                use $crate::DeliveryOutcome;
                use $crate::imp::ms;
                /// Pages recorded per transaction: a storm's bundle does not
                /// hold SQLite's one writer for long.
                const CHUNK: i64 = 2000;
                let attempt = b.attempts + 1;
                let note = $crate::imp::attempt_note(b, attempt, &outcome);
                let (status, next_at, error, sent_at) = match &outcome {
                    DeliveryOutcome::Sent { .. } => ("sent", ms(now), None, Some(ms(now))),
                    DeliveryOutcome::Retry { error, next_at } => {
                        ("pending", ms(*next_at), Some(error.as_str()), None)
                    }
                    DeliveryOutcome::Failed { error } => ("failed", ms(now), Some(error.as_str()), None),
                };
                let held = "SELECT user_id FROM contact_gates WHERE user_id = $1 AND contact_id = $2 AND claim = $3";
                let mut recorded = 0u64;
                loop {
                    let mut tx = self.write.begin().await?;
                    // Only while the claim holds (not taken over meanwhile;
                    // a plain read, so escalation rounds paging this person
                    // do not wait for the chunk).
                    let mine = sqlx::query(held)
                        .bind(&b.user_id)
                        .bind(&b.contact_id)
                        .bind(&b.claim)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if mine.is_none() {
                        return Ok(recorded);
                    }
                    // The bundle's pages still pending (an accept or resolve
                    // cancelled the others), one chunk at a time.
                    let rows = sqlx::query(
                        "UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, sent_at = $5 WHERE id IN (SELECT id FROM outbox WHERE user_id = $6 AND contact_id = $7 AND status = 'pending' AND next_attempt_at <= $8 AND id BETWEEN $9 AND $10 ORDER BY id LIMIT $11) RETURNING alert_id",
                    )
                    .bind(status)
                    .bind(attempt)
                    .bind(next_at)
                    .bind(error)
                    .bind(sent_at)
                    .bind(&b.user_id)
                    .bind(&b.contact_id)
                    .bind(ms(b.cutoff))
                    .bind(b.first_page)
                    .bind(b.last_page)
                    .bind(CHUNK)
                    .fetch_all(&mut *tx)
                    .await?;
                    let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
                    let mut ids: Vec<i64> = rows
                        .iter()
                        .map(|r| r.try_get::<i64, _>("alert_id"))
                        .collect::<Result<_, _>>()?;
                    ids.sort_unstable();
                    ids.dedup();
                    let timeline: Vec<$crate::plan::TimelineRow> = ids
                        .into_iter()
                        .map(|alert_id| $crate::plan::TimelineRow {
                            alert_id,
                            at: ms(now),
                            actor: "system".to_owned(),
                            channel: b.channel.clone(),
                            kind: tocsin_domain::TimelineKind::Notification.as_str(),
                            message: note.clone(),
                        })
                        .collect();
                    Self::insert_timeline(&mut tx, &timeline).await?;
                    recorded += u64::try_from(n).unwrap_or(0);
                    if n == CHUNK {
                        tx.commit().await?;
                        continue;
                    }
                    // The last chunk: let the contact go, at its oldest page
                    // left. A message that did not reach it opened no window.
                    sqlx::query(
                        "UPDATE contact_gates SET claim = NULL, claimed_until = NULL, due_at = (SELECT MIN(o.next_attempt_at) FROM outbox o WHERE o.user_id = contact_gates.user_id AND o.contact_id = contact_gates.contact_id AND o.status = 'pending'), open_at = CASE WHEN $1 AND open_at > $2 THEN $2 ELSE open_at END WHERE user_id = $3 AND contact_id = $4 AND claim = $5",
                    )
                    .bind(status != "sent")
                    .bind(next_at)
                    .bind(&b.user_id)
                    .bind(&b.contact_id)
                    .bind(&b.claim)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(recorded);
                }
            }

            async fn renew_bundles(
                &self,
                claims: &[String],
                until: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::StoreError> {
                if claims.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write.begin().await?;
                for claim in claims {
                    sqlx::query("UPDATE contact_gates SET claimed_until = $1 WHERE claim = $2")
                        .bind($crate::imp::ms(until))
                        .bind(claim)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_depth(&self) -> Result<i64, $crate::StoreError> {
                use sqlx::Row;
                let r = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE status IN ('pending', 'running')")
                    .fetch_one(&self.read)
                    .await?;
                Ok(r.try_get("n")?)
            }

            async fn steps(&self, alert_id: i64) -> Result<Vec<$crate::EscalationStep>, $crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query("SELECT id, alert_id, policy_id, level, round, due_at, status FROM escalation_steps WHERE alert_id = $1 ORDER BY id")
                    .bind(alert_id)
                    .fetch_all(&self.read)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::EscalationStep {
                            id: r.try_get("id")?,
                            alert_id: r.try_get("alert_id")?,
                            policy_id: r.try_get("policy_id")?,
                            level: r.try_get("level")?,
                            round: r.try_get("round")?,
                            due_at: $crate::imp::from_ms(r.try_get("due_at")?),
                            status: r.try_get("status")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            async fn deliveries(&self, alert_id: i64) -> Result<Vec<$crate::Delivery>, $crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query("SELECT id, alert_id, step_id, user_id, contact_id, channel, address, due_at, status, attempts, last_error, sent_at FROM outbox WHERE alert_id = $1 ORDER BY id")
                    .bind(alert_id)
                    .fetch_all(&self.read)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::Delivery {
                            id: r.try_get("id")?,
                            alert_id: r.try_get("alert_id")?,
                            step_id: r.try_get("step_id")?,
                            user_id: r.try_get("user_id")?,
                            contact_id: r.try_get("contact_id")?,
                            channel: r.try_get("channel")?,
                            address: r.try_get("address")?,
                            due_at: $crate::imp::from_ms(r.try_get("due_at")?),
                            status: r.try_get("status")?,
                            attempts: r.try_get("attempts")?,
                            last_error: r.try_get("last_error")?,
                            sent_at: r.try_get::<Option<i64>, _>("sent_at")?.map($crate::imp::from_ms),
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            async fn create_maintenance(
                &self,
                target_kind: &str,
                target_id: &str,
                starts_at: chrono::DateTime<chrono::Utc>,
                ends_at: chrono::DateTime<chrono::Utc>,
                reason: &str,
                created_by: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::MaintenanceWindow, $crate::StoreError> {
                use $crate::imp::ms;
                let row = sqlx::query("INSERT INTO maintenance_windows (target_kind, target_id, starts_at, ends_at, reason, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, target_kind, target_id, starts_at, ends_at, reason, created_by, created_at, ended_at")
                    .bind(target_kind)
                    .bind(target_id)
                    .bind(ms(starts_at))
                    .bind(ms(ends_at))
                    .bind(reason)
                    .bind(created_by)
                    .bind(ms(now))
                    .fetch_one(&self.write)
                    .await?;
                Ok(Self::window_from_row(&row)?)
            }

            async fn end_maintenance(
                &self,
                id: i64,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<$crate::MaintenanceWindow>, $crate::StoreError> {
                let row = sqlx::query("UPDATE maintenance_windows SET ended_at = COALESCE(ended_at, $1) WHERE id = $2 RETURNING id, target_kind, target_id, starts_at, ends_at, reason, created_by, created_at, ended_at")
                    .bind($crate::imp::ms(now))
                    .bind(id)
                    .fetch_optional(&self.write)
                    .await?;
                Ok(row.as_ref().map(Self::window_from_row).transpose()?)
            }

            async fn maintenance_windows(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::MaintenanceWindow>, $crate::StoreError> {
                let rows = sqlx::query("SELECT id, target_kind, target_id, starts_at, ends_at, reason, created_by, created_at, ended_at FROM maintenance_windows WHERE ended_at IS NULL AND ends_at > $1 ORDER BY starts_at, id")
                    .bind($crate::imp::ms(now))
                    .fetch_all(&self.read)
                    .await?;
                Ok(rows.iter().map(Self::window_from_row).collect::<Result<Vec<_>, _>>()?)
            }

            async fn open_alert_id(
                &self,
                source_id: &str,
                dedup_key: &str,
            ) -> Result<Option<i64>, $crate::StoreError> {
                use sqlx::Row;
                let row = sqlx::query("SELECT id FROM alerts WHERE source_id = $1 AND dedup_key = $2 AND status IN ('pending', 'accepted') ORDER BY id DESC LIMIT 1")
                    .bind(source_id)
                    .bind(dedup_key)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(row.map(|r| r.try_get::<i64, _>("id")).transpose()?)
            }

            async fn record_change(
                &self,
                c: $crate::NewChange,
            ) -> Result<$crate::ChangeEvent, $crate::StoreError> {
                use $crate::imp::{enc, ms};
                let row = sqlx::query("INSERT INTO change_events (source_id, service_id, at, received_at, summary, origin, details, links) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, source_id, service_id, at, received_at, summary, origin, details, links")
                    .bind(&c.source_id)
                    .bind(&c.service_id)
                    .bind(ms(c.at))
                    .bind(ms(c.received_at))
                    .bind(&c.summary)
                    .bind(&c.origin)
                    .bind(&c.details)
                    .bind(enc(&c.links)?)
                    .fetch_one(&self.write)
                    .await?;
                Ok(Self::change_from_row(&row)?)
            }

            async fn changes(
                &self,
                service_id: Option<&str>,
                limit: u32,
            ) -> Result<Vec<$crate::ChangeEvent>, $crate::StoreError> {
                let rows = sqlx::query("SELECT id, source_id, service_id, at, received_at, summary, origin, details, links FROM change_events WHERE ($1 IS NULL OR service_id = $1) ORDER BY at DESC, id DESC LIMIT $2")
                    .bind(service_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?;
                Ok(rows.iter().map(Self::change_from_row).collect::<Result<Vec<_>, _>>()?)
            }

            async fn heartbeat_ping(
                &self,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
                due_at: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::PingResult, $crate::StoreError> {
                use sqlx::Row;
                use $crate::imp::ms;
                let mut tx = self.write.begin().await?;
                let before = sqlx::query(concat!("SELECT state, alert_id FROM heartbeats WHERE id = $1", $for_update))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO heartbeats (id, state, last_ping_at, due_at, pings) VALUES ($1, 'healthy', $2, $3, 1) ON CONFLICT (id) DO UPDATE SET state = 'healthy', last_ping_at = excluded.last_ping_at, due_at = excluded.due_at, pings = heartbeats.pings + 1, alert_id = NULL, claim = NULL, claimed_until = NULL")
                    .bind(id)
                    .bind(ms(now))
                    .bind(ms(due_at))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                let previous: Option<String> = before.as_ref().map(|r| r.try_get("state")).transpose()?;
                let overdue_alert = match (&previous, &before) {
                    (Some(st), Some(r)) if st == "overdue" => r.try_get::<Option<i64>, _>("alert_id")?,
                    _ => None,
                };
                Ok($crate::PingResult { previous, overdue_alert })
            }

            async fn claim_overdue_heartbeats(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease: chrono::TimeDelta,
                claim: &str,
            ) -> Result<Vec<$crate::DueHeartbeat>, $crate::StoreError> {
                use sqlx::Row;
                use $crate::imp::{from_ms, ms};
                let rows = sqlx::query(concat!(
                    "UPDATE heartbeats SET claim = $1, claimed_until = $2 WHERE id IN (",
                    "SELECT id FROM heartbeats WHERE state = 'healthy' AND due_at <= $3 AND (claim IS NULL OR claimed_until < $3)",
                    $skip_locked,
                    ") RETURNING id, last_ping_at, due_at"
                ))
                .bind(claim)
                .bind(ms(now + lease))
                .bind(ms(now))
                .fetch_all(&self.write)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::DueHeartbeat {
                            id: r.try_get("id")?,
                            last_ping_at: from_ms(r.try_get("last_ping_at")?),
                            due_at: from_ms(r.try_get("due_at")?),
                            claim: claim.to_owned(),
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            async fn mark_heartbeat_overdue(
                &self,
                due: &$crate::DueHeartbeat,
                alert_id: Option<i64>,
            ) -> Result<bool, $crate::StoreError> {
                let r = sqlx::query("UPDATE heartbeats SET state = 'overdue', alert_id = $1, claim = NULL, claimed_until = NULL WHERE id = $2 AND claim = $3 AND state = 'healthy'")
                    .bind(alert_id)
                    .bind(&due.id)
                    .bind(&due.claim)
                    .execute(&self.write)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn heartbeat_rows(&self) -> Result<Vec<$crate::HeartbeatRow>, $crate::StoreError> {
                use sqlx::Row;
                use $crate::imp::from_ms;
                let rows = sqlx::query("SELECT id, state, last_ping_at, due_at, pings, alert_id FROM heartbeats ORDER BY id")
                    .fetch_all(&self.read)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::HeartbeatRow {
                            id: r.try_get("id")?,
                            state: r.try_get("state")?,
                            last_ping_at: from_ms(r.try_get("last_ping_at")?),
                            due_at: from_ms(r.try_get("due_at")?),
                            pings: r.try_get("pings")?,
                            alert_id: r.try_get("alert_id")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            async fn count_by_status(&self) -> Result<Vec<(tocsin_domain::AlertStatus, i64)>, $crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM alerts GROUP BY status")
                    .fetch_all(&self.read)
                    .await?;
                let mut out: Vec<(tocsin_domain::AlertStatus, i64)> =
                    tocsin_domain::AlertStatus::ALL.iter().map(|s| (*s, 0)).collect();
                for r in rows {
                    let s: tocsin_domain::AlertStatus = $crate::imp::parse(r.try_get::<&str, _>("status")?)?;
                    let n: i64 = r.try_get("n")?;
                    if let Some(slot) = out.iter_mut().find(|(st, _)| *st == s) {
                        slot.1 = n;
                    }
                }
                Ok(out)
            }
        }
    };
}

pub(crate) use impl_store;
