-- Secrets Tocsin generates for itself (calendar feed tokens, …): created
-- once, kept across restarts, shared by every node.
CREATE TABLE secrets (
    scope       TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, id)
);
