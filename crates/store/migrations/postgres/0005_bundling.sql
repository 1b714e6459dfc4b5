-- Bundling: one gate per contact. A message opens the gate's window
-- (open_at = sent + bundle window); pages due before open_at wait for it and
-- then go out together as one message. `claim` marks the gates a claim
-- round opened.
CREATE TABLE contact_gates (
    user_id     TEXT    NOT NULL,
    contact_id  TEXT    NOT NULL,
    open_at     BIGINT NOT NULL,
    claim       TEXT,
    PRIMARY KEY (user_id, contact_id)
);
CREATE INDEX outbox_by_contact ON outbox (user_id, contact_id, status);
