-- Fair escalation: each claim round takes the oldest due step of every
-- policy (found with one index seek per policy), then the oldest due steps
-- overall, so one policy's storm cannot hold back another policy's steps.
CREATE INDEX escalation_steps_by_policy ON escalation_steps (status, policy_id, due_at);
