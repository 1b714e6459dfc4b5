-- Incidents: a declared problem on one or more services, with a timeline
-- of events (updates people post, alerts linked and unlinked, severity
-- and impact changes). `held` is set once a person posts an update: the
-- incident then waits for a person to resolve it.
CREATE TABLE incidents (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    title        TEXT    NOT NULL,
    severity     TEXT    NOT NULL,
    status       TEXT    NOT NULL,            -- investigating | identified | monitoring | resolved
    opened_at    INTEGER NOT NULL,
    opened_by    TEXT    NOT NULL,
    auto_opened  INTEGER NOT NULL,
    held         INTEGER NOT NULL,
    responders   TEXT    NOT NULL,            -- JSON array of user ids
    updated_at   INTEGER NOT NULL,
    resolved_at  INTEGER,
    resolved_by  TEXT
);
CREATE INDEX incidents_open ON incidents (id) WHERE status <> 'resolved';
CREATE INDEX incidents_by_opened ON incidents (opened_at);

-- The services an incident affects, each with its impact. `current` marks
-- the open incident that new alerts of the service join: at most one per
-- service, which is what keeps redeliveries and storms (on any number of
-- nodes) from opening a second incident for the same service.
CREATE TABLE incident_services (
    incident_id  INTEGER NOT NULL,
    service_id   TEXT    NOT NULL,
    impact       TEXT    NOT NULL,            -- degraded | partial_outage | major_outage
    current      INTEGER NOT NULL,
    PRIMARY KEY (incident_id, service_id)
);
CREATE UNIQUE INDEX incident_services_current ON incident_services (service_id) WHERE current = 1;

CREATE TABLE incident_alerts (
    incident_id  INTEGER NOT NULL,
    alert_id     INTEGER NOT NULL,
    linked_at    INTEGER NOT NULL,
    linked_by    TEXT    NOT NULL,
    PRIMARY KEY (incident_id, alert_id)
);
CREATE INDEX incident_alerts_by_alert ON incident_alerts (alert_id);

-- The incident's timeline. `kind` update is what a person (or the
-- auto-resolve) said; public ones are on the status page and the feed and
-- are told to subscribers (`fanout` pending until they are queued).
CREATE TABLE incident_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    kind         TEXT    NOT NULL,            -- opened | update | linked | unlinked | severity | impact | services | title | responders | resolved
    status       TEXT    NOT NULL,            -- the incident's status after the event
    message      TEXT    NOT NULL,
    public       INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    fanout       INTEGER NOT NULL DEFAULT 0   -- 1: subscribers and announcements still to be queued
);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id, id);
CREATE INDEX incident_events_public ON incident_events (at) WHERE public = 1;
CREATE INDEX incident_events_fanout ON incident_events (id) WHERE fanout = 1;

-- A service's state history, for uptime: it had `impact` from one incident
-- from `from_at` until `to_at` (NULL while it lasts).
CREATE TABLE service_impacts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id   TEXT    NOT NULL,
    incident_id  INTEGER NOT NULL,
    impact       TEXT    NOT NULL,
    from_at      INTEGER NOT NULL,
    to_at        INTEGER
);
CREATE INDEX service_impacts_by_service ON service_impacts (service_id, from_at);
CREATE INDEX service_impacts_open ON service_impacts (incident_id) WHERE to_at IS NULL;

-- Bumped by every change the status page shows, so that each node's cached
-- page is dropped when another node changed something. `since`: when the
-- status page began keeping history (uptime before it is unknown).
CREATE TABLE status_state (
    id          INTEGER PRIMARY KEY,
    version     INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL,
    since       INTEGER NOT NULL
);
INSERT INTO status_state (id, version, changed_at, since)
VALUES (1, 0, CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- Maintenance windows may be shown on the status page and scheduled ahead;
-- `announced`: subscribers and announcements were queued.
ALTER TABLE maintenance_windows ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
ALTER TABLE maintenance_windows ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE maintenance_windows ADD COLUMN fanout INTEGER NOT NULL DEFAULT 0;

-- Status page subscribers. Email subscribers confirm first (double
-- opt-in); the confirm and unsubscribe links carry an HMAC of the id.
CREATE TABLE subscribers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,           -- email | webhook
    address       TEXT    NOT NULL,
    services      TEXT    NOT NULL,           -- JSON array of service ids; empty: every public service
    created_at    INTEGER NOT NULL,
    created_by    TEXT    NOT NULL,
    confirmed_at  INTEGER,
    ended_at      INTEGER
);
CREATE UNIQUE INDEX subscribers_live ON subscribers (kind, address) WHERE ended_at IS NULL;

-- Notices: messages that belong to no alert (subscriber messages,
-- incident announcements, handoff notices), a durable outbox of their own
-- with retries. `dedup` names the event and recipient, so a notice is
-- queued once however often a worker retries.
CREATE TABLE notices (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup            TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,        -- confirm | incident | maintenance | announce | handoff
    channel          TEXT    NOT NULL,        -- email | webhook | slack | push | sms | voice
    address          TEXT    NOT NULL,
    subscriber_id    INTEGER,
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,        -- the text
    payload          TEXT    NOT NULL,        -- JSON for webhooks
    status           TEXT    NOT NULL,        -- pending | sent | failed
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    claim            TEXT,
    claimed_until    INTEGER,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    last_result      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX notices_due ON notices (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notices_failed ON notices (id) WHERE status = 'failed';

-- Handoff notices: where each user's watch has got to.
CREATE TABLE handoff_marks (
    user_id   TEXT    PRIMARY KEY,
    upto      INTEGER NOT NULL
);
