-- Maintenance windows: while one covers a source or a service, new alerts
-- are stored but nobody is paged.
CREATE TABLE maintenance_windows (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    target_kind  TEXT    NOT NULL,                -- source | service
    target_id    TEXT    NOT NULL,
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    reason       TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    ended_at     INTEGER
);
CREATE INDEX maintenance_windows_by_end ON maintenance_windows (ends_at);
