-- As on PostgreSQL (its 0015): an alert's timeline entries, escalation
-- steps and pages are written in the transaction that creates or locks the
-- alert, and deleted with it by retention (explicitly, child rows first),
-- so the foreign keys only cost: SQLite looked the alert up again for every
-- child row. SQLite cannot drop a constraint, so the three tables are
-- rebuilt, same columns and indexes, keeping their ids and id counters
-- (the old table's counter row is moved to the new table before the old
-- one is dropped; the copy's own row, the highest id copied, goes).
-- The timeline loses AUTOINCREMENT as well: its ids only order an alert's
-- entries, and a new entry still gets an id above every other.

CREATE TABLE alert_timeline_new (
    id        INTEGER PRIMARY KEY,
    alert_id  INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    channel   TEXT    NOT NULL,
    message   TEXT    NOT NULL
);
INSERT INTO alert_timeline_new (id, alert_id, at, kind, actor, channel, message)
    SELECT id, alert_id, at, kind, actor, channel, message FROM alert_timeline;
DROP TABLE alert_timeline;
ALTER TABLE alert_timeline_new RENAME TO alert_timeline;
CREATE INDEX alert_timeline_by_alert ON alert_timeline (alert_id, id);

CREATE TABLE escalation_steps_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id       INTEGER NOT NULL,
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
INSERT INTO escalation_steps_new (id, alert_id, policy_id, level, round, due_at, status, claim, claimed_until, created_at, done_at)
    SELECT id, alert_id, policy_id, level, round, due_at, status, claim, claimed_until, created_at, done_at FROM escalation_steps;
DELETE FROM sqlite_sequence WHERE name = 'escalation_steps_new';
UPDATE sqlite_sequence SET name = 'escalation_steps_new' WHERE name = 'escalation_steps';
DROP TABLE escalation_steps;
ALTER TABLE escalation_steps_new RENAME TO escalation_steps;
CREATE INDEX escalation_steps_due ON escalation_steps (due_at) WHERE status = 'pending';
CREATE INDEX escalation_steps_by_policy ON escalation_steps (policy_id, due_at) WHERE status = 'pending';
CREATE INDEX escalation_steps_leased ON escalation_steps (claimed_until) WHERE status = 'running';
CREATE INDEX escalation_steps_by_alert ON escalation_steps (alert_id);

CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id         INTEGER NOT NULL,
    step_id          INTEGER,
    user_id          TEXT    NOT NULL,
    contact_id       TEXT    NOT NULL,
    channel          TEXT    NOT NULL,
    address          TEXT    NOT NULL,
    due_at           INTEGER NOT NULL,
    status           TEXT    NOT NULL,            -- pending | running | sent | failed | cancelled
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
INSERT INTO outbox_new (id, alert_id, step_id, user_id, contact_id, channel, address, due_at, status, attempts, next_attempt_at, last_error, created_at, sent_at)
    SELECT id, alert_id, step_id, user_id, contact_id, channel, address, due_at, status, attempts, next_attempt_at, last_error, created_at, sent_at FROM outbox;
DELETE FROM sqlite_sequence WHERE name = 'outbox_new';
UPDATE sqlite_sequence SET name = 'outbox_new' WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_by_contact ON outbox (user_id, contact_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_by_alert ON outbox (alert_id);
