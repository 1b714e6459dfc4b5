-- Change events (PagerDuty /v2/change/enqueue): recorded on the service's
-- timeline; they page nobody.
CREATE TABLE change_events (
    id           BIGSERIAL PRIMARY KEY,
    source_id    TEXT    NOT NULL,
    service_id   TEXT,
    at           BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    summary      TEXT    NOT NULL,
    origin       TEXT,
    details      TEXT    NOT NULL,
    links        TEXT    NOT NULL
);
CREATE INDEX change_events_by_service ON change_events (service_id, at);
