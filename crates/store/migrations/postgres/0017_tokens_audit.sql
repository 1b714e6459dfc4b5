-- Personal API tokens: each acts as a user, with a role no higher than
-- theirs. Only the SHA-256 of the secret is kept. A revoked token keeps
-- its row (revoked_at), so that using it answers "revoked", not "unknown",
-- and the audit log's references stay readable.
CREATE TABLE personal_tokens (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    user_id       TEXT    NOT NULL,
    digest        TEXT    NOT NULL UNIQUE,
    created_at    BIGINT  NOT NULL,
    created_by    TEXT    NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    revoked_by    TEXT
);
CREATE INDEX personal_tokens_by_user ON personal_tokens (user_id);

-- The audit log: one row per change, appended in the transaction that
-- makes the change. Nothing updates or deletes rows but retention.
CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT  NOT NULL,
    actor      TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    object_id  TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    -- JSON: {"field": {"before": …, "after": …}, …}, secrets redacted.
    diff       TEXT    NOT NULL
);
CREATE INDEX audit_log_by_at ON audit_log (at);
CREATE INDEX audit_log_by_object ON audit_log (kind, object_id, id);
