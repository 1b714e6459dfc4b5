-- The catalog lives in storage (SPEC §11 kinds, API tokens and providers):
-- one row per object, its spec in the shape of tocsin.yaml, where it came
-- from (a config file, by name, or the API), and the catalog version at
-- its last change (its ETag). Every write that changes an object bumps
-- catalog_state.version in the same transaction, so a node sees that its
-- copy is stale with one read by primary key.
--
-- The old provisioned_objects rows were a copy of the file that every
-- start rewrote; the next start provisions the file again.
DROP TABLE provisioned_objects;

CREATE TABLE catalog_objects (
    kind         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    spec         TEXT    NOT NULL,
    spec_hash    TEXT    NOT NULL,
    -- How each secret was written in its file (`${ENV}` or a *_file path),
    -- keyed by the field's path in the spec: what `tocsin export` prints.
    secret_refs  TEXT    NOT NULL,
    origin       TEXT    NOT NULL,
    origin_file  TEXT,
    revision     INTEGER  NOT NULL,
    created_at   INTEGER  NOT NULL,
    updated_at   INTEGER  NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE TABLE catalog_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER  NOT NULL
);
INSERT INTO catalog_state (id, version) VALUES (1, 0);
