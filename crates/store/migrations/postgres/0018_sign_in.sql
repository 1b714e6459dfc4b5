-- Sign-in to the web UI. A user's password is kept as its argon2 hash
-- (PHC string), never the password.
CREATE TABLE credentials (
    user_id        TEXT    PRIMARY KEY,
    password_hash  TEXT    NOT NULL,
    set_at         BIGINT  NOT NULL,
    set_by         TEXT    NOT NULL
);

-- Browser sessions, shared by every node. The cookie holds the secret;
-- only its SHA-256 is kept. An ended session keeps its row until it is
-- pruned, so that a stale cookie is told "signed out", not "unknown".
CREATE TABLE sessions (
    id            TEXT    PRIMARY KEY,
    digest        TEXT    NOT NULL UNIQUE,
    user_id       TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    address       TEXT    NOT NULL,
    user_agent    TEXT    NOT NULL,
    ended_at      BIGINT,
    ended_by      TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Failed sign-in attempts, by subject (`user:ID` or `address:IP`), for
-- rate limiting that every node honours.
CREATE TABLE sign_in_failures (
    id       BIGSERIAL PRIMARY KEY,
    subject  TEXT    NOT NULL,
    at       BIGINT  NOT NULL
);
CREATE INDEX sign_in_failures_by_subject ON sign_in_failures (subject, at);

-- One-time links that let the first admin set a password on a database
-- where no admin can sign in. Used once; refused once any admin can.
CREATE TABLE setup_links (
    digest      TEXT    PRIMARY KEY,
    created_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    used_by     TEXT
);

-- The live alert list asks for what changed since its last look.
CREATE INDEX IF NOT EXISTS alerts_by_updated ON alerts (updated_at);

-- The admin page of failed deliveries, newest first.
CREATE INDEX outbox_failed ON outbox (id) WHERE status = 'failed';
