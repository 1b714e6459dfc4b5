-- A claim leases a contact, not its pages: the gate row holds the claim and
-- its lease (claimed_until), and the bundle is the contact's pages that
-- were pending and due at the claim, up to the newest one then. Pages stay
-- pending while their message is sent, so claiming a backlog of any size
-- writes one row; a lease that ran out lets another worker take the
-- contact over.
ALTER TABLE contact_gates ADD COLUMN claimed_until BIGINT;
UPDATE outbox SET status = 'pending', claim = NULL, claimed_until = NULL WHERE status = 'running';
UPDATE contact_gates SET claim = NULL;
DROP INDEX outbox_by_claim;
