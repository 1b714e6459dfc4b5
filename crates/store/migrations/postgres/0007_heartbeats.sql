-- Heartbeats: a row appears at the first ping (armed). due_at is the
-- durable timer: last ping + interval + grace. A worker claims rows that are
-- healthy and due (with a lease), raises the alert, and marks them overdue;
-- the next ping makes them healthy again and resolves the alert.
CREATE TABLE heartbeats (
    id             TEXT    PRIMARY KEY,
    state          TEXT    NOT NULL,              -- healthy | overdue
    last_ping_at   BIGINT NOT NULL,
    due_at         BIGINT NOT NULL,
    pings          BIGINT NOT NULL DEFAULT 0,
    alert_id       BIGINT,
    claim          TEXT,
    claimed_until  BIGINT
);
CREATE INDEX heartbeats_due ON heartbeats (state, due_at);
