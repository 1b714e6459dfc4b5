-- Pages are claimed through their contact's gate (0010), never one by
-- one: the outbox's own claim columns have been unused since.
ALTER TABLE outbox DROP COLUMN claim;
ALTER TABLE outbox DROP COLUMN claimed_until;
