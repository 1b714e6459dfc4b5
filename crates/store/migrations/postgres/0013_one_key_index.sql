-- One index per (source, dedup key) instead of two. `resolved_seq` is 0
-- while an alert is open and its id once it is resolved, so the unique
-- index allows one open alert per key (the rule the partial index kept)
-- and orders the key's resolved alerts. Each new alert now writes one
-- entry keyed by its dedup key, a random place in the index, not two.
ALTER TABLE alerts ADD COLUMN resolved_seq BIGINT NOT NULL DEFAULT 0;
UPDATE alerts SET resolved_seq = id WHERE status = 'resolved';
DROP INDEX alerts_open_dedup;
DROP INDEX alerts_by_key;
CREATE UNIQUE INDEX alerts_by_key ON alerts (source_id, dedup_key, resolved_seq);
