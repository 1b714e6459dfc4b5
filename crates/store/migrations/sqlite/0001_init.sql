-- Objects provisioned from tocsin.yaml (teams, users, schedules, policies,
-- services, sources, heartbeats, support hours), as JSON specs.
CREATE TABLE provisioned_objects (
    kind        TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    spec        TEXT    NOT NULL,
    spec_hash   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);

-- Keys of sources whose key is not in the config file (generated once).
CREATE TABLE source_keys (
    source_id   TEXT    PRIMARY KEY,
    key         TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id     TEXT    NOT NULL,
    dedup_key     TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    priority      TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    details       TEXT    NOT NULL,
    labels        TEXT    NOT NULL,
    links         TEXT    NOT NULL,
    members       TEXT    NOT NULL,
    policy_id     TEXT,
    service_id    TEXT,
    detected_at   INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    seen_count    INTEGER NOT NULL DEFAULT 1,
    accepted_at   INTEGER,
    accepted_by   TEXT,
    resolved_at   INTEGER,
    resolved_by   TEXT
);
-- At most one open alert per (source, dedup key): concurrent deliveries of
-- the same group cannot open two alerts.
CREATE UNIQUE INDEX alerts_open_dedup ON alerts (source_id, dedup_key) WHERE status <> 'resolved';
CREATE INDEX alerts_by_key ON alerts (source_id, dedup_key, id);
CREATE INDEX alerts_by_status ON alerts (status, id);

-- Every label pair of every member, for label filters. The list query
-- walks alerts newest first and probes this key per alert.
CREATE TABLE alert_labels (
    alert_id  INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    name      TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    PRIMARY KEY (alert_id, name, value)
) WITHOUT ROWID;

CREATE TABLE alert_timeline (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id  INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at        INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    channel   TEXT    NOT NULL,
    message   TEXT    NOT NULL
);
CREATE INDEX alert_timeline_by_alert ON alert_timeline (alert_id, id);
