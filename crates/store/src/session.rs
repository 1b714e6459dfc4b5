//! The SQL of signing in to the web UI: password hashes, browser
//! sessions, failed attempts (for rate limiting) and one-time setup links.
//! Setting a password, signing in and signing out are audited in the
//! transaction that does them.

use chrono::{DateTime, Utc};
use tocsin_domain::TokenDigest;

use crate::audit::record;
use crate::db::{Backend, Conn, DbError, Row, Tx, args};
use crate::imp::ms;
use crate::{Actor, AuditRecord, NewSession, Session, StoreError};

const SESSION_COLUMNS: &str = "id, user_id, method, created_at, last_seen_at, expires_at, address, user_agent, ended_at, ended_by";

fn session(r: &Row) -> Result<Session, DbError> {
    Ok(Session {
        id: r.get("id")?,
        user: r.get("user_id")?,
        method: r.get("method")?,
        created_at: r.time("created_at")?,
        last_seen_at: r.time("last_seen_at")?,
        expires_at: r.time("expires_at")?,
        address: r.get("address")?,
        user_agent: r.get("user_agent")?,
        ended_at: r.time_opt("ended_at")?,
        ended_by: r.get("ended_by")?,
    })
}

/// Store `hash` as `user`'s password hash (replacing any), audited. The
/// user's other sessions end with it, so a changed password locks out
/// whoever knew the old one; `keep` is the session that stays.
pub(crate) async fn set_password<B: Backend>(
    b: &B,
    user: &str,
    hash: &str,
    keep: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = b.begin().await?;
    let before = tx
        .fetch_optional(
            "SELECT set_at FROM credentials WHERE user_id = $1",
            args![user],
        )
        .await?
        .is_some();
    tx.execute("DELETE FROM credentials WHERE user_id = $1", args![user])
        .await?;
    tx.execute(
        "INSERT INTO credentials (user_id, password_hash, set_at, set_by) VALUES ($1, $2, $3, $4)",
        args![user, hash, ms(now), &actor.name],
    )
    .await?;
    let ended = tx
        .execute(
            "UPDATE sessions SET ended_at = $1, ended_by = $2 WHERE user_id = $3 AND ended_at IS NULL AND id <> $4",
            args![ms(now), &actor.name, user, keep.unwrap_or("")],
        )
        .await?;
    let diff = serde_json::json!({
        "password": {"before": if before { Some("<set>") } else { None }, "after": "<set>"},
        "sessions_ended": {"after": ended},
    });
    let entry = AuditRecord::new(actor, "user", user, "set-password", diff);
    record(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(())
}

/// `user`'s password hash, if they have one.
pub(crate) async fn password_hash<B: Backend>(
    b: &B,
    user: &str,
) -> Result<Option<String>, StoreError> {
    let row = b
        .reader()
        .await?
        .fetch_optional(
            "SELECT password_hash FROM credentials WHERE user_id = $1",
            args![user],
        )
        .await?;
    Ok(row.map(|r| r.get("password_hash")).transpose()?)
}

/// The users who have a password.
pub(crate) async fn users_with_password<B: Backend>(b: &B) -> Result<Vec<String>, StoreError> {
    let rows = b
        .reader()
        .await?
        .fetch(
            "SELECT user_id FROM credentials ORDER BY user_id",
            Vec::new(),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.get("user_id"))
        .collect::<Result<Vec<String>, _>>()?)
}

/// Store a new session and audit the sign-in.
pub(crate) async fn create_session<B: Backend>(
    b: &B,
    s: &NewSession,
    now: DateTime<Utc>,
) -> Result<Session, StoreError> {
    let mut tx = b.begin().await?;
    let row = tx
        .fetch_one(
            &format!("INSERT INTO sessions (id, digest, user_id, method, created_at, last_seen_at, expires_at, address, user_agent) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8) RETURNING {SESSION_COLUMNS}"),
            args![
                &s.id,
                s.digest.to_hex(),
                &s.user,
                &s.method,
                ms(now),
                ms(s.expires_at),
                &s.address,
                &s.user_agent
            ],
        )
        .await?;
    let stored = session(&row)?;
    let actor = Actor::new(format!("user:{}", s.user), format!("web ({})", s.method));
    let diff = serde_json::json!({
        "session": {"after": s.id},
        "address": {"after": s.address},
        "expires_at": {"after": stored.expires_at},
    });
    let entry = AuditRecord::new(&actor, "user", &s.user, "sign-in", diff);
    record(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(stored)
}

/// The session whose secret has this digest, ended or not.
pub(crate) async fn session_by_digest<B: Backend>(
    b: &B,
    digest: &TokenDigest,
) -> Result<Option<Session>, StoreError> {
    let row = b
        .reader()
        .await?
        .fetch_optional(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE digest = $1"),
            args![digest.to_hex()],
        )
        .await?;
    Ok(row.as_ref().map(session).transpose()?)
}

/// Note that a session was used at `now` (written at most once a minute).
pub(crate) async fn touch_session<B: Backend>(
    b: &B,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ms(now);
    b.writer()
        .await?
        .execute(
            "UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $3 AND ended_at IS NULL",
            args![now, id, now - 60_000],
        )
        .await?;
    Ok(())
}

/// End a session (signing out, or ended from the session list), audited.
/// `None` when there is no such session of `user`; an ended one is
/// returned as it is.
pub(crate) async fn end_session<B: Backend>(
    b: &B,
    user: &str,
    id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<Session>, StoreError> {
    let mut tx = b.begin().await?;
    let row = tx
        .fetch_optional(
            &format!("UPDATE sessions SET ended_at = $1, ended_by = $2 WHERE id = $3 AND user_id = $4 AND ended_at IS NULL RETURNING {SESSION_COLUMNS}"),
            args![ms(now), &actor.name, id, user],
        )
        .await?;
    let Some(row) = row else {
        let row = tx
            .fetch_optional(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 AND user_id = $2"),
                args![id, user],
            )
            .await?;
        return Ok(row.as_ref().map(session).transpose()?);
    };
    let ended = session(&row)?;
    let diff = serde_json::json!({"session": {"before": id, "after": null}});
    let entry = AuditRecord::new(actor, "user", user, "sign-out", diff);
    record(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(Some(ended))
}

/// `user`'s sessions that have not ended and not passed their absolute
/// expiry, newest first.
pub(crate) async fn sessions<B: Backend>(
    b: &B,
    user: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    let rows = b
        .reader()
        .await?
        .fetch(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id"),
            args![user, ms(now)],
        )
        .await?;
    Ok(rows.iter().map(session).collect::<Result<Vec<_>, _>>()?)
}

/// Note a failed sign-in against each of `subjects`.
pub(crate) async fn record_sign_in_failure<B: Backend>(
    b: &B,
    subjects: &[String],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = b.begin().await?;
    for s in subjects {
        tx.execute(
            "INSERT INTO sign_in_failures (subject, at) VALUES ($1, $2)",
            args![s, ms(now)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// How many sign-ins failed against `subject` since `since`.
pub(crate) async fn sign_in_failures<B: Backend>(
    b: &B,
    subject: &str,
    since: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let row = b
        .reader()
        .await?
        .fetch_one(
            "SELECT COUNT(*) AS n FROM sign_in_failures WHERE subject = $1 AND at >= $2",
            args![subject, ms(since)],
        )
        .await?;
    Ok(row.get("n")?)
}

/// Forget `subject`'s failed sign-ins (after a good one).
pub(crate) async fn clear_sign_in_failures<B: Backend>(
    b: &B,
    subject: &str,
) -> Result<(), StoreError> {
    b.writer()
        .await?
        .execute(
            "DELETE FROM sign_in_failures WHERE subject = $1",
            args![subject],
        )
        .await?;
    Ok(())
}

/// Delete sessions that ended or expired before `before`, and failed
/// sign-ins older than it.
pub(crate) async fn prune_sessions<B: Backend>(
    b: &B,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut w = b.writer().await?;
    let n = w
        .execute(
            "DELETE FROM sessions WHERE expires_at < $1 OR ended_at < $1",
            args![ms(before)],
        )
        .await?;
    w.execute(
        "DELETE FROM sign_in_failures WHERE at < $1",
        args![ms(before)],
    )
    .await?;
    Ok(n)
}

/// Store a new one-time setup link.
pub(crate) async fn create_setup_link<B: Backend>(
    b: &B,
    digest: &TokenDigest,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    b.writer()
        .await?
        .execute(
            "INSERT INTO setup_links (digest, created_at) VALUES ($1, $2)",
            args![digest.to_hex(), ms(now)],
        )
        .await?;
    Ok(())
}

/// Whether a setup link with this digest exists and is unused.
pub(crate) async fn setup_link_open<B: Backend>(
    b: &B,
    digest: &TokenDigest,
) -> Result<bool, StoreError> {
    let row = b
        .reader()
        .await?
        .fetch_optional(
            "SELECT created_at FROM setup_links WHERE digest = $1 AND used_at IS NULL",
            args![digest.to_hex()],
        )
        .await?;
    Ok(row.is_some())
}

/// Use a setup link: set `user`'s password with it, in one transaction,
/// so that two racing uses cannot both succeed. `false` when the link is
/// unknown or already used (nothing changed).
pub(crate) async fn use_setup_link<B: Backend>(
    b: &B,
    digest: &TokenDigest,
    user: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = b.begin().await?;
    let used = tx
        .execute(
            "UPDATE setup_links SET used_at = $1, used_by = $2 WHERE digest = $3 AND used_at IS NULL",
            args![ms(now), user, digest.to_hex()],
        )
        .await?;
    if used != 1 {
        return Ok(false);
    }
    // Every other open link is spent with it: setup happens once.
    tx.execute(
        "UPDATE setup_links SET used_at = $1, used_by = $2 WHERE used_at IS NULL",
        args![ms(now), user],
    )
    .await?;
    tx.execute("DELETE FROM credentials WHERE user_id = $1", args![user])
        .await?;
    tx.execute(
        "INSERT INTO credentials (user_id, password_hash, set_at, set_by) VALUES ($1, $2, $3, $4)",
        args![user, hash, ms(now), "setup link"],
    )
    .await?;
    let actor = Actor::new("setup link", "web");
    let diff = serde_json::json!({"password": {"before": null, "after": "<set>"}});
    let entry = AuditRecord::new(&actor, "user", user, "set-password", diff);
    record(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(true)
}
