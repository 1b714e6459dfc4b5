-- Change events (PagerDuty /v2/change/enqueue): recorded on the service's
-- timeline; they page nobody.
CREATE TABLE change_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id    TEXT    NOT NULL,
    service_id   TEXT,
    at           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    summary      TEXT    NOT NULL,
    origin       TEXT,
    details      TEXT    NOT NULL,
    links        TEXT    NOT NULL
);
CREATE INDEX change_events_by_service ON change_events (service_id, at);
