//! The SQL of the audit log and of personal API tokens.
//!
//! Audit rows are appended by the transaction that makes the change
//! ([`record`]); nothing updates them, and only retention deletes them.

use chrono::{DateTime, Utc};

use crate::db::{Backend, Conn, DbError, Row, Tx, Value, args};
use crate::imp::{from_ms, ms};
use crate::{
    Actor, AuditEntry, AuditFilter, AuditPage, AuditRecord, NewToken, PersonalToken, StoreError,
};

const AUDIT_COLUMNS: &str = "id, at, actor, channel, kind, object_id, action, diff";
const TOKEN_COLUMNS: &str = "id, name, role, user_id, created_at, created_by, expires_at, last_used_at, revoked_at, revoked_by";

/// Append `r` at `now` inside the caller's transaction.
pub(crate) async fn record(
    tx: &mut impl Conn,
    r: &AuditRecord,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO audit_log (at, actor, channel, kind, object_id, action, diff) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![
            ms(now),
            &r.actor,
            &r.channel,
            &r.kind,
            &r.object_id,
            &r.action,
            r.diff.to_string()
        ],
    )
    .await?;
    Ok(())
}

fn entry(r: &Row) -> Result<AuditEntry, DbError> {
    let diff: String = r.get("diff")?;
    Ok(AuditEntry {
        id: r.get("id")?,
        at: r.time("at")?,
        record: AuditRecord {
            actor: r.get("actor")?,
            channel: r.get("channel")?,
            kind: r.get("kind")?,
            object_id: r.get("object_id")?,
            action: r.get("action")?,
            diff: serde_json::from_str(&diff).map_err(DbError::decode)?,
        },
    })
}

/// Entries matching `f`, newest first, one page of `f.limit`.
pub(crate) async fn read<B: Backend>(b: &B, f: &AuditFilter) -> Result<AuditPage, StoreError> {
    let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    let mut cond = |sql: &mut String, clause: &str, v: Value| {
        values.push(v);
        sql.push_str(&format!(" AND {clause} ${}", values.len()));
    };
    if let Some(a) = &f.actor {
        cond(&mut sql, "actor =", a.into());
    }
    if let Some(k) = &f.kind {
        cond(&mut sql, "kind =", k.into());
    }
    if let Some(o) = &f.object_id {
        cond(&mut sql, "object_id =", o.into());
    }
    if let Some(t) = f.since {
        cond(&mut sql, "at >=", ms(t).into());
    }
    if let Some(t) = f.until {
        cond(&mut sql, "at <", ms(t).into());
    }
    if let Some(id) = f.before_id {
        cond(&mut sql, "id <", id.into());
    }
    let limit = i64::from(f.limit.max(1));
    values.push((limit + 1).into());
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", values.len()));
    let rows = b.reader().await?.fetch(&sql, values).await?;
    let mut entries = rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let next_before_id = more.then(|| entries.last().map(|e| e.id)).flatten();
    Ok(AuditPage {
        entries,
        next_before_id,
    })
}

/// Delete up to `limit` entries older than `before`.
pub(crate) async fn prune<B: Backend>(
    b: &B,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let mut w = b.writer().await?;
    Ok(w.execute(
        "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY id LIMIT $2)",
        args![ms(before), i64::from(limit)],
    )
    .await?)
}

fn token(r: &Row) -> Result<PersonalToken, DbError> {
    let role: String = r.get("role")?;
    Ok(PersonalToken {
        id: r.get("id")?,
        name: r.get("name")?,
        role: role.parse().map_err(DbError::decode)?,
        user: r.get("user_id")?,
        created_at: r.time("created_at")?,
        created_by: r.get("created_by")?,
        expires_at: r.time_opt("expires_at")?,
        last_used_at: r.time_opt("last_used_at")?,
        revoked_at: r.time_opt("revoked_at")?,
        revoked_by: r.get("revoked_by")?,
    })
}

fn token_diff(t: &PersonalToken) -> serde_json::Value {
    serde_json::json!({
        "name": {"after": t.name},
        "role": {"after": t.role},
        "user": {"after": t.user},
        "expires_at": {"after": t.expires_at},
    })
}

/// Store a new personal token, and its audit entry.
pub(crate) async fn create_token<B: Backend>(
    b: &B,
    t: &NewToken,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<PersonalToken, StoreError> {
    let mut tx = b.begin().await?;
    let row = tx
        .fetch_one(
            &format!("INSERT INTO personal_tokens (id, name, role, user_id, digest, created_at, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TOKEN_COLUMNS}"),
            args![
                &t.id,
                &t.name,
                t.role.as_str(),
                &t.user,
                t.digest.to_hex(),
                ms(now),
                &actor.name,
                t.expires_at.map(ms)
            ],
        )
        .await?;
    let stored = token(&row)?;
    let entry = AuditRecord::new(actor, "token", &t.id, "create", token_diff(&stored));
    record(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(stored)
}

/// The personal token with this id, revoked or not, and its digest.
pub(crate) async fn token_with_digest<B: Backend>(
    b: &B,
    id: &str,
) -> Result<Option<(PersonalToken, tocsin_domain::TokenDigest)>, StoreError> {
    let row = b
        .reader()
        .await?
        .fetch_optional(
            &format!("SELECT {TOKEN_COLUMNS}, digest FROM personal_tokens WHERE id = $1"),
            args![id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let hex: String = row.get("digest").map_err(StoreError::from)?;
    let digest = tocsin_domain::TokenDigest::from_hex(&hex).ok_or_else(|| {
        StoreError::Internal(format!("token {id}: stored digest is not SHA-256 hex"))
    })?;
    Ok(Some((token(&row)?, digest)))
}

/// Tokens not revoked: of `user`, or of everybody; oldest first.
pub(crate) async fn tokens<B: Backend>(
    b: &B,
    user: Option<&str>,
) -> Result<Vec<PersonalToken>, StoreError> {
    let rows = b
        .reader()
        .await?
        .fetch(
            &format!("SELECT {TOKEN_COLUMNS} FROM personal_tokens WHERE revoked_at IS NULL AND ($1 = '' OR user_id = $1) ORDER BY created_at, id"),
            args![user.unwrap_or("")],
        )
        .await?;
    Ok(rows.iter().map(token).collect::<Result<Vec<_>, _>>()?)
}

/// One token by id, revoked or not.
pub(crate) async fn token_by_id<B: Backend>(
    b: &B,
    id: &str,
) -> Result<Option<PersonalToken>, StoreError> {
    let row = b
        .reader()
        .await?
        .fetch_optional(
            &format!("SELECT {TOKEN_COLUMNS} FROM personal_tokens WHERE id = $1"),
            args![id],
        )
        .await?;
    Ok(row.as_ref().map(token).transpose()?)
}

/// Revoke a token (once: a second revoke changes nothing and audits
/// nothing). `None` when there is no such token.
pub(crate) async fn revoke_token<B: Backend>(
    b: &B,
    id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<PersonalToken>, StoreError> {
    let mut tx = b.begin().await?;
    let row = tx
        .fetch_optional(
            &format!("UPDATE personal_tokens SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}"),
            args![ms(now), &actor.name, id],
        )
        .await?;
    let Some(row) = row else {
        drop(tx);
        return token_by_id(b, id).await;
    };
    let revoked = token(&row)?;
    let diff = serde_json::json!({"revoked_at": {"before": null, "after": from_ms(ms(now))}});
    let entry = AuditRecord::new(actor, "token", id, "revoke", diff);
    record(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(Some(revoked))
}

/// Note that a token was used at `now` (written at most once a minute).
pub(crate) async fn touch_token<B: Backend>(
    b: &B,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ms(now);
    b.writer()
        .await?
        .execute(
            "UPDATE personal_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
            args![now, id, now - 60_000],
        )
        .await?;
    Ok(())
}
