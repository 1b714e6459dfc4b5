-- Fair dispatch: the gate row of a contact is also its place in the queue.
-- due_at is never later than the earliest next_attempt_at of the contact's
-- pending pages (NULL when it has none), so a claim picks contacts, not
-- rows: one person's backlog, of any size, costs one claim and never stands
-- in front of anybody else's page. While a page is being sent
-- (status running) its next_attempt_at holds the end of the lease, so one
-- index finds both due pages and leases that ran out.
ALTER TABLE contact_gates ADD COLUMN due_at BIGINT;
CREATE INDEX contact_gates_due ON contact_gates (due_at);
DROP INDEX outbox_by_contact;
CREATE INDEX outbox_by_contact ON outbox (user_id, contact_id, status, next_attempt_at);
CREATE INDEX outbox_by_claim ON outbox (claim) WHERE claim IS NOT NULL;
UPDATE outbox SET next_attempt_at = claimed_until WHERE status = 'running' AND claimed_until IS NOT NULL;
INSERT INTO contact_gates (user_id, contact_id, open_at)
    SELECT DISTINCT user_id, contact_id, 0 FROM outbox WHERE status IN ('pending', 'running')
    ON CONFLICT DO NOTHING;
UPDATE contact_gates SET due_at = (
    SELECT MIN(o.next_attempt_at) FROM outbox o
    WHERE o.user_id = contact_gates.user_id AND o.contact_id = contact_gates.contact_id
      AND o.status IN ('pending', 'running'));
