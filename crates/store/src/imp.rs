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

/// "2 firing, 1 resolved".
pub(crate) fn member_counts(members: &[tocsin_domain::Member]) -> String {
    let firing = members.iter().filter(|m| m.is_firing()).count();
    format!("{firing} firing, {} resolved", members.len() - firing)
}

macro_rules! impl_store {
    ($store:ty, $db:ty, backend = $backend:literal, for_update = $for_update:literal) => {
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

            async fn add_timeline(
                tx: &mut sqlx::Transaction<'static, $db>,
                alert_id: i64,
                now: chrono::DateTime<chrono::Utc>,
                actor: &$crate::Actor,
                entries: &[(tocsin_domain::TimelineKind, String)],
            ) -> Result<(), sqlx::Error> {
                if entries.is_empty() {
                    return Ok(());
                }
                let mut sql = String::from(
                    "INSERT INTO alert_timeline (alert_id, at, actor, channel, kind, message) VALUES ",
                );
                for i in 0..entries.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    let k = 5 + 2 * i;
                    sql.push_str(&format!("($1, $2, $3, $4, ${k}, ${})", k + 1));
                }
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(alert_id)
                    .bind($crate::imp::ms(now))
                    .bind(&actor.name)
                    .bind(&actor.channel);
                for (kind, msg) in entries {
                    q = q.bind($crate::model::timeline_kind(*kind)).bind(msg);
                }
                q.execute(&mut **tx).await?;
                Ok(())
            }

            async fn add_labels(
                tx: &mut sqlx::Transaction<'static, $db>,
                alert_id: i64,
                labels: &std::collections::BTreeSet<(String, String)>,
            ) -> Result<(), sqlx::Error> {
                // Chunks keep the statement under SQLite's bound-variable limit.
                let pairs: Vec<&(String, String)> = labels.iter().collect();
                for chunk in pairs.chunks(200) {
                    let mut sql =
                        String::from("INSERT INTO alert_labels (alert_id, name, value) VALUES ");
                    for i in 0..chunk.len() {
                        if i > 0 {
                            sql.push_str(", ");
                        }
                        sql.push_str(&format!("($1, ${}, ${})", 2 + 2 * i, 3 + 2 * i));
                    }
                    sql.push_str(" ON CONFLICT DO NOTHING");
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(alert_id);
                    for (n, v) in chunk {
                        q = q.bind(n).bind(v);
                    }
                    q.execute(&mut **tx).await?;
                }
                Ok(())
            }

            async fn ingest_once(
                &self,
                source_id: &str,
                actor: &$crate::Actor,
                events: &[$crate::RoutedEvent],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::IngestResult>, sqlx::Error> {
                use sqlx::Row;
                use tocsin_domain::{AlertStatus, Decision, ExistingAlert, TimelineKind};
                use $crate::imp::{dec, enc, member_counts, ms, parse};
                use $crate::{IngestOutcome, IngestResult};

                let mut tx = self.write.begin().await?;
                let mut results = Vec::with_capacity(events.len());
                for routed in events {
                    let ev = &routed.event;
                    let key = ev.dedup_key.as_str();
                    let open_row = sqlx::query(concat!(
                        "SELECT id, status, members FROM alerts WHERE source_id = $1 AND dedup_key = $2 AND status <> 'resolved'",
                        $for_update
                    ))
                    .bind(source_id)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let mut open_status = AlertStatus::Pending;
                    let open = match open_row {
                        Some(r) => {
                            open_status = parse(r.try_get::<&str, _>("status")?)?;
                            Some(ExistingAlert {
                                id: r.try_get("id")?,
                                members: dec(r.try_get::<&str, _>("members")?)?,
                            })
                        }
                        None => None,
                    };
                    let last_resolved = if open.is_none() {
                        sqlx::query(
                            "SELECT id, members FROM alerts WHERE source_id = $1 AND dedup_key = $2 AND status = 'resolved' ORDER BY id DESC LIMIT 1",
                        )
                        .bind(source_id)
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| -> Result<ExistingAlert, sqlx::Error> {
                            Ok(ExistingAlert {
                                id: r.try_get("id")?,
                                members: dec(r.try_get::<&str, _>("members")?)?,
                            })
                        })
                        .transpose()?
                    } else {
                        None
                    };

                    let result = match tocsin_domain::decide(open.as_ref(), last_resolved.as_ref(), ev, now) {
                        Decision::Create { members } => {
                            let id: i64 = sqlx::query(
                                "INSERT INTO alerts (source_id, dedup_key, status, severity, priority, summary, details, labels, links, members, policy_id, service_id, detected_at, created_at, updated_at, last_seen_at) \
                                 VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $13) RETURNING id",
                            )
                            .bind(source_id)
                            .bind(key)
                            .bind(ev.severity.as_str())
                            .bind(ev.priority.as_str())
                            .bind(&ev.summary)
                            .bind(&ev.details)
                            .bind(enc(&ev.labels)?)
                            .bind(enc(&ev.links)?)
                            .bind(enc(&members)?)
                            .bind(&routed.policy_id)
                            .bind(&routed.service_id)
                            .bind(ms(ev.detected_at))
                            .bind(ms(now))
                            .fetch_one(&mut *tx)
                            .await?
                            .try_get("id")?;
                            Self::add_labels(&mut tx, id, &ev.all_labels).await?;
                            let mut entries = vec![
                                (
                                    TimelineKind::Created,
                                    format!(
                                        "created: {} ({}, {} priority; {})",
                                        ev.summary,
                                        ev.severity,
                                        ev.priority,
                                        member_counts(&members)
                                    ),
                                ),
                                (TimelineKind::Routed, routed.route_note.clone()),
                            ];
                            entries.extend(ev.notes.iter().map(|n| (TimelineKind::Note, n.clone())));
                            Self::add_timeline(&mut tx, id, now, actor, &entries).await?;
                            IngestResult {
                                alert_id: Some(id),
                                status: Some(AlertStatus::Pending),
                                outcome: IngestOutcome::Created,
                            }
                        }
                        Decision::Update {
                            alert_id,
                            merge,
                            resolve_at,
                        } => {
                            let status = if resolve_at.is_some() {
                                AlertStatus::Resolved
                            } else {
                                open_status
                            };
                            sqlx::query(
                                "UPDATE alerts SET status = $1, severity = $2, priority = $3, summary = $4, details = $5, labels = $6, links = $7, members = $8, \
                                 updated_at = $9, last_seen_at = $9, seen_count = seen_count + 1, resolved_at = $10, resolved_by = $11 WHERE id = $12",
                            )
                            .bind(status.as_str())
                            .bind(ev.severity.as_str())
                            .bind(ev.priority.as_str())
                            .bind(&ev.summary)
                            .bind(&ev.details)
                            .bind(enc(&ev.labels)?)
                            .bind(enc(&ev.links)?)
                            .bind(enc(&merge.members)?)
                            .bind(ms(now))
                            .bind(resolve_at.map(ms))
                            .bind(resolve_at.map(|_| actor.name.clone()))
                            .bind(alert_id)
                            .execute(&mut *tx)
                            .await?;
                            Self::add_labels(&mut tx, alert_id, &ev.all_labels).await?;
                            let mut entries = Vec::new();
                            if let Some(at) = resolve_at {
                                entries.push((
                                    TimelineKind::Resolved,
                                    format!(
                                        "resolved by the source: every alert has resolved (latest end {})",
                                        at.to_rfc3339()
                                    ),
                                ));
                            } else if merge.state_changed {
                                entries.push((
                                    TimelineKind::Updated,
                                    format!("updated: {}", member_counts(&merge.members)),
                                ));
                            }
                            Self::add_timeline(&mut tx, alert_id, now, actor, &entries).await?;
                            IngestResult {
                                alert_id: Some(alert_id),
                                status: Some(status),
                                outcome: if resolve_at.is_some() {
                                    IngestOutcome::Resolved
                                } else {
                                    IngestOutcome::Updated
                                },
                            }
                        }
                        Decision::Duplicate { alert_id } => {
                            sqlx::query(
                                "UPDATE alerts SET last_seen_at = $1, seen_count = seen_count + 1 WHERE id = $2",
                            )
                            .bind(ms(now))
                            .bind(alert_id)
                            .execute(&mut *tx)
                            .await?;
                            let status = if open.is_some() {
                                open_status
                            } else {
                                AlertStatus::Resolved
                            };
                            IngestResult {
                                alert_id: Some(alert_id),
                                status: Some(status),
                                outcome: IngestOutcome::Duplicate,
                            }
                        }
                        Decision::Stale { alert_id } => {
                            if let Some(id) = alert_id {
                                Self::add_timeline(
                                    &mut tx,
                                    id,
                                    now,
                                    actor,
                                    &[(
                                        TimelineKind::Ignored,
                                        "ignored a late notification: it is older than the state already recorded".to_owned(),
                                    )],
                                )
                                .await?;
                            }
                            IngestResult {
                                alert_id,
                                status: alert_id.map(|_| {
                                    if open.is_some() {
                                        open_status
                                    } else {
                                        AlertStatus::Resolved
                                    }
                                }),
                                outcome: IngestOutcome::Stale,
                            }
                        }
                        Decision::UnknownResolve => IngestResult {
                            alert_id: None,
                            status: None,
                            outcome: IngestOutcome::Ignored,
                        },
                    };
                    results.push(result);
                }
                tx.commit().await?;
                Ok(results)
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

            async fn ingest(
                &self,
                source_id: &str,
                actor: &$crate::Actor,
                events: &[$crate::RoutedEvent],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::IngestResult>, $crate::StoreError> {
                let mut attempt = 0;
                loop {
                    match self.ingest_once(source_id, actor, events, now).await {
                        // Two deliveries raced to open the same alert: the
                        // loser retries and sees the winner's alert.
                        Err(e) if $crate::StoreError::is_unique_violation(&e) && attempt < 3 => {
                            attempt += 1;
                        }
                        other => return other.map_err(Into::into),
                    }
                }
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
                    };
                    sqlx::query(sql)
                        .bind(now_ms)
                        .bind(&actor.name)
                        .bind(alert_id)
                        .execute(&mut *tx)
                        .await?;
                    Self::add_timeline(&mut tx, alert_id, now, actor, &[(kind, msg)]).await?;
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
