//! The statements that differ between SQLite and PostgreSQL, as data. The
//! rest of the SQL is the same text on both (placeholders are `$1…`, which
//! both accept) and lives in `imp.rs`.
//!
//! Rows that a statement applies in bulk travel as one JSON array
//! parameter, so each statement has fixed text (prepared once per
//! connection) whatever the batch size.

/// One backend's variants.
pub(crate) struct Dialect {
    /// Appended to a `SELECT` that reads rows the transaction will change (PostgreSQL locks them; SQLite has one writer).
    pub for_update: &'static str,
    /// The newest alert of each (source, dedup key) in a JSON array `[[source, key], …]`, locked for the transaction.
    pub lookup: &'static str,
    /// Reserve `$1` alert ids, ascending.
    pub reserve_ids: &'static str,
    /// Insert alerts given as a JSON array of rows.
    pub insert_alerts: &'static str,
    /// Update alerts given as a JSON array of rows (NULL keeps a column).
    pub update_alerts: &'static str,
    /// Insert label pairs `[[alert, name, value], …]`.
    pub insert_labels: &'static str,
    /// Append timeline entries (JSON objects), in order.
    pub insert_timeline: &'static str,
    /// Insert the first escalation step of new alerts.
    pub insert_steps: &'static str,
    /// Appended to the `SELECT` of a claim: rows another node is claiming are skipped.
    pub skip_locked: &'static str,
    /// Opens the list of ids bound as one JSON array parameter (`IN (ids_open $n ids_close)`).
    pub ids_open: &'static str,
    /// Closes it.
    pub ids_close: &'static str,
    /// Queue notifications, in order.
    pub insert_outbox: &'static str,
    /// Insert next escalation steps.
    pub insert_next_steps: &'static str,
    /// Make each contact's place in the queue no later than the given time, creating its gate.
    pub upsert_gates: &'static str,
}

/// SQLite 3.45 or later (JSON `->>`, `RETURNING`, `UPDATE … FROM`).
pub(crate) const SQLITE: Dialect = Dialect {
    for_update: "",
    lookup: "SELECT a.id, a.source_id, a.dedup_key, a.status, a.members, a.severity, a.priority, a.summary, a.details, a.links FROM alerts a WHERE a.id IN (SELECT (SELECT MAX(b.id) FROM alerts b WHERE b.source_id = j.value ->> 0 AND b.dedup_key = j.value ->> 1) FROM json_each($1) AS j)",
    reserve_ids: "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'alerts'), 0) + i AS id FROM n ORDER BY i",
    insert_alerts: "INSERT INTO alerts (id, source_id, dedup_key, status, severity, priority, summary, details, labels, links, members, policy_id, service_id, detected_at, created_at, updated_at, last_seen_at, seen_count, resolved_at, resolved_by) SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 6, j.value ->> 7, j.value ->> 8, j.value ->> 9, j.value ->> 10, j.value ->> 11, j.value ->> 12, j.value ->> 13, j.value ->> 14, j.value ->> 15, j.value ->> 16, j.value ->> 17, j.value ->> 18, j.value ->> 19 FROM json_each($1) AS j ORDER BY j.key",
    update_alerts: "UPDATE alerts SET status = j.value ->> 1, severity = COALESCE(j.value ->> 2, severity), priority = COALESCE(j.value ->> 3, priority), summary = COALESCE(j.value ->> 4, summary), details = COALESCE(j.value ->> 5, details), labels = COALESCE(j.value ->> 6, labels), links = COALESCE(j.value ->> 7, links), members = COALESCE(j.value ->> 8, members), updated_at = COALESCE(j.value ->> 9, updated_at), last_seen_at = j.value ->> 10, seen_count = seen_count + (j.value ->> 11), resolved_at = COALESCE(j.value ->> 12, resolved_at), resolved_by = COALESCE(j.value ->> 13, resolved_by) FROM json_each($1) AS j WHERE alerts.id = j.value ->> 0",
    insert_labels: "INSERT INTO alert_labels (alert_id, name, value) SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each($1) AS j WHERE true ON CONFLICT DO NOTHING",
    insert_timeline: "INSERT INTO alert_timeline (alert_id, at, actor, channel, kind, message) SELECT j.value ->> 'alert_id', j.value ->> 'at', j.value ->> 'actor', j.value ->> 'channel', j.value ->> 'kind', j.value ->> 'message' FROM json_each($1) AS j ORDER BY j.key",
    insert_steps: "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) SELECT j.value ->> 0, j.value ->> 1, 0, 0, j.value ->> 2, 'pending', j.value ->> 3 FROM json_each($1) AS j",
    skip_locked: "",
    ids_open: "SELECT value FROM json_each(",
    ids_close: ")",
    insert_outbox: "INSERT INTO outbox (alert_id, step_id, user_id, contact_id, channel, address, due_at, status, next_attempt_at, created_at) SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 6, 'pending', j.value ->> 6, j.value ->> 7 FROM json_each($1) AS j ORDER BY j.key",
    insert_next_steps: "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, 'pending', j.value ->> 5 FROM json_each($1) AS j ORDER BY j.key",
    upsert_gates: "INSERT INTO contact_gates (user_id, contact_id, open_at, due_at) SELECT j.value ->> 0, j.value ->> 1, 0, j.value ->> 2 FROM json_each($1) AS j WHERE true ON CONFLICT (user_id, contact_id) DO UPDATE SET due_at = CASE WHEN contact_gates.due_at IS NULL OR excluded.due_at < contact_gates.due_at THEN excluded.due_at ELSE contact_gates.due_at END",
};

/// PostgreSQL 13 or later.
pub(crate) const POSTGRES: Dialect = Dialect {
    for_update: " FOR UPDATE",
    lookup: "SELECT a.id, a.source_id, a.dedup_key, a.status, a.members, a.severity, a.priority, a.summary, a.details, a.links FROM jsonb_array_elements($1::jsonb) AS j(v) JOIN LATERAL (SELECT b.id FROM alerts b WHERE b.source_id = j.v ->> 0 AND b.dedup_key = j.v ->> 1 ORDER BY b.id DESC LIMIT 1) AS newest ON true JOIN alerts a ON a.id = newest.id FOR UPDATE OF a",
    reserve_ids: "SELECT nextval(pg_get_serial_sequence('alerts', 'id')) AS id FROM generate_series(1, $1::bigint) AS g(i) ORDER BY g.i",
    insert_alerts: "INSERT INTO alerts (id, source_id, dedup_key, status, severity, priority, summary, details, labels, links, members, policy_id, service_id, detected_at, created_at, updated_at, last_seen_at, seen_count, resolved_at, resolved_by) SELECT (j.v ->> 0)::bigint, j.v ->> 1, j.v ->> 2, j.v ->> 3, j.v ->> 4, j.v ->> 5, j.v ->> 6, j.v ->> 7, j.v ->> 8, j.v ->> 9, j.v ->> 10, j.v ->> 11, j.v ->> 12, (j.v ->> 13)::bigint, (j.v ->> 14)::bigint, (j.v ->> 15)::bigint, (j.v ->> 16)::bigint, (j.v ->> 17)::bigint, (j.v ->> 18)::bigint, j.v ->> 19 FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    update_alerts: "UPDATE alerts SET status = j.v ->> 1, severity = COALESCE(j.v ->> 2, alerts.severity), priority = COALESCE(j.v ->> 3, alerts.priority), summary = COALESCE(j.v ->> 4, alerts.summary), details = COALESCE(j.v ->> 5, alerts.details), labels = COALESCE(j.v ->> 6, alerts.labels), links = COALESCE(j.v ->> 7, alerts.links), members = COALESCE(j.v ->> 8, alerts.members), updated_at = COALESCE((j.v ->> 9)::bigint, alerts.updated_at), last_seen_at = (j.v ->> 10)::bigint, seen_count = alerts.seen_count + (j.v ->> 11)::bigint, resolved_at = COALESCE((j.v ->> 12)::bigint, alerts.resolved_at), resolved_by = COALESCE(j.v ->> 13, alerts.resolved_by) FROM jsonb_array_elements($1::jsonb) AS j(v) WHERE alerts.id = (j.v ->> 0)::bigint",
    insert_labels: "INSERT INTO alert_labels (alert_id, name, value) SELECT (j.v ->> 0)::bigint, j.v ->> 1, j.v ->> 2 FROM jsonb_array_elements($1::jsonb) AS j(v) ON CONFLICT DO NOTHING",
    insert_timeline: "INSERT INTO alert_timeline (alert_id, at, actor, channel, kind, message) SELECT (j.v ->> 'alert_id')::bigint, (j.v ->> 'at')::bigint, j.v ->> 'actor', j.v ->> 'channel', j.v ->> 'kind', j.v ->> 'message' FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    insert_steps: "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) SELECT (j.v ->> 0)::bigint, j.v ->> 1, 0, 0, (j.v ->> 2)::bigint, 'pending', (j.v ->> 3)::bigint FROM jsonb_array_elements($1::jsonb) AS j(v)",
    skip_locked: " FOR UPDATE SKIP LOCKED",
    ids_open: "SELECT (jsonb_array_elements_text(",
    ids_close: "::jsonb))::bigint",
    insert_outbox: "INSERT INTO outbox (alert_id, step_id, user_id, contact_id, channel, address, due_at, status, next_attempt_at, created_at) SELECT (j.v ->> 0)::bigint, (j.v ->> 1)::bigint, j.v ->> 2, j.v ->> 3, j.v ->> 4, j.v ->> 5, (j.v ->> 6)::bigint, 'pending', (j.v ->> 6)::bigint, (j.v ->> 7)::bigint FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    insert_next_steps: "INSERT INTO escalation_steps (alert_id, policy_id, level, round, due_at, status, created_at) SELECT (j.v ->> 0)::bigint, j.v ->> 1, (j.v ->> 2)::bigint, (j.v ->> 3)::bigint, (j.v ->> 4)::bigint, 'pending', (j.v ->> 5)::bigint FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    upsert_gates: "INSERT INTO contact_gates (user_id, contact_id, open_at, due_at) SELECT j.v ->> 0, j.v ->> 1, 0, (j.v ->> 2)::bigint FROM jsonb_array_elements($1::jsonb) AS j(v) ON CONFLICT (user_id, contact_id) DO UPDATE SET due_at = CASE WHEN contact_gates.due_at IS NULL OR excluded.due_at < contact_gates.due_at THEN excluded.due_at ELSE contact_gates.due_at END",
};
