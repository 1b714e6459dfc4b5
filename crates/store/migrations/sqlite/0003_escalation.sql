-- Durable escalation: every due step is a row. Workers claim due rows
-- (status running, with a lease), do the step and mark it done in the same
-- transaction that writes its notifications and the next step.
CREATE TABLE escalation_steps (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id       INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    policy_id      TEXT    NOT NULL,
    level          INTEGER NOT NULL,
    round          INTEGER NOT NULL,
    due_at         INTEGER NOT NULL,
    status         TEXT    NOT NULL,              -- pending | running | done | cancelled
    claim          TEXT,
    claimed_until  INTEGER,
    created_at     INTEGER NOT NULL,
    done_at        INTEGER
);
CREATE INDEX escalation_steps_due ON escalation_steps (status, due_at);
CREATE INDEX escalation_steps_by_alert ON escalation_steps (alert_id, status);

-- The outbox: one row per notification to deliver, written in the same
-- transaction as the step that caused it.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id         INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    step_id          INTEGER,
    user_id          TEXT    NOT NULL,
    contact_id       TEXT    NOT NULL,
    channel          TEXT    NOT NULL,
    address          TEXT    NOT NULL,
    due_at           INTEGER NOT NULL,
    status           TEXT    NOT NULL,            -- pending | running | sent | failed | cancelled
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    claim            TEXT,
    claimed_until    INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_alert ON outbox (alert_id, status);
