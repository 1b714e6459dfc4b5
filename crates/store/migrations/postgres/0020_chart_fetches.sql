-- What Prometheus last answered for each status page chart (keyed by a
-- digest of its query, range and step), shared by every node, so that the
-- page asks Prometheus at most once a minute per chart however many nodes
-- serve it.
CREATE TABLE chart_fetches (
    chart       TEXT    PRIMARY KEY,
    fetched_at  BIGINT NOT NULL,
    body        TEXT    NOT NULL
);
