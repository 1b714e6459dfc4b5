-- The worker indexes hold only the rows a worker looks for: pending steps
-- by due time and by policy, running steps by lease, pending pages by
-- contact. Done, cancelled and sent rows leave them, so a step's or a
-- page's change of status no longer rewrites an entry in every index, and
-- the indexes stay as small as the work waiting. The by-alert indexes
-- drop the status: an alert has a few steps and pages.
DROP INDEX escalation_steps_due;
DROP INDEX escalation_steps_by_policy;
DROP INDEX escalation_steps_by_alert;
CREATE INDEX escalation_steps_due ON escalation_steps (due_at) WHERE status = 'pending';
CREATE INDEX escalation_steps_by_policy ON escalation_steps (policy_id, due_at) WHERE status = 'pending';
CREATE INDEX escalation_steps_leased ON escalation_steps (claimed_until) WHERE status = 'running';
CREATE INDEX escalation_steps_by_alert ON escalation_steps (alert_id);
DROP INDEX outbox_due;
DROP INDEX outbox_by_alert;
DROP INDEX outbox_by_contact;
CREATE INDEX outbox_by_contact ON outbox (user_id, contact_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_by_alert ON outbox (alert_id);
