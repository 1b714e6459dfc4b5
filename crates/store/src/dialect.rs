//! The statements that differ between SQLite and PostgreSQL, as data. The
//! rest of the SQL is the same text on both (placeholders are `$1…`, which
//! both accept) and lives in `imp.rs`.
//!
//! Statements that write many rows are [`Bulk`]: per row on SQLite, one
//! JSON array parameter on PostgreSQL; either way each has fixed text
//! (prepared once per connection) whatever the batch size.

/// A statement that writes many rows.
pub(crate) enum Bulk {
    /// Run once per row with the row's values as `$1…` (SQLite: a
    /// statement costs microseconds and no round trip).
    PerRow(&'static str),
    /// Run once with every row in one JSON array parameter `$1`, each row
    /// an array in the same order (PostgreSQL: one round trip).
    JsonArray(&'static str),
}

/// A read of many keys or a count.
pub(crate) enum KeyLookup {
    /// Run once per key with its parts as `$1…` (SQLite).
    PerKey(&'static str),
    /// Run once with every key in one JSON array parameter `$1`
    /// (PostgreSQL).
    JsonArray(&'static str),
}

/// How alert and escalation step ids are reserved before their rows are
/// written (one statement for both).
pub(crate) enum ReserveIds {
    /// Returns the last alert id and the last step id handed out
    /// (`alerts`, `steps`); the reserved ones are the next ones (SQLite:
    /// one writer, so nobody takes them meanwhile).
    After(&'static str),
    /// Returns `$1` alert ids and `$2` step ids from their sequences, one
    /// a row (`id`, and `is_step`). Counted with `unnest(array_fill(…))`,
    /// not `generate_series($1)`: PostgreSQL estimates the series from the
    /// bound count, so its generic plan never looked cheaper and every run
    /// was planned anew (80 → 50 µs a run, measured with pgbench).
    Sequence(&'static str),
}

/// One backend's variants.
pub(crate) struct Dialect {
    /// Pages a bundle's result records per transaction. SQLite's one
    /// writer is held meanwhile (every ingest waits), so its chunks are
    /// short; PostgreSQL locks only the rows.
    pub bundle_chunk: i64,
    /// Appended to a `SELECT` that reads rows the transaction will change (PostgreSQL locks them; SQLite has one writer).
    pub for_update: &'static str,
    /// The newest alert of each (source, dedup key) (per key: `$1`, `$2`;
    /// at once: a JSON array `[[source, key], …]`), locked for the
    /// transaction: the open one if any (`resolved_seq = 0`), else the
    /// last resolved, from `alerts_by_key`. (PostgreSQL: the `LIMIT` keeps
    /// the planner from flattening the lateral subquery into a hash join
    /// over every alert, which it does with `COALESCE` of two seeks.)
    pub lookup: KeyLookup,
    /// Reserve alert ids and escalation step ids.
    pub reserve_ids: ReserveIds,
    /// Insert alerts given as a JSON array of rows.
    pub insert_alerts: Bulk,
    /// Update alerts given as a JSON array of rows (NULL keeps a column).
    pub update_alerts: Bulk,
    /// An alert list's label filter: the alert (`alerts`) has the pair
    /// `{n}` = `{v}` (placeholders put in for them), in its common labels
    /// or a member's.
    pub has_label: &'static str,
    /// Append timeline entries, in order.
    pub insert_timeline: Bulk,
    /// Insert escalation steps, every column given: id (NULL: the next
    /// one), alert, policy, level, round, due, status, created, done (a
    /// first level that ran at ingest, and the next levels of steps that
    /// ran), in order.
    pub insert_steps_full: Bulk,
    /// Appended to the `SELECT` of a claim: rows another node is claiming are skipped.
    pub skip_locked: &'static str,
    /// The same for contact gates, which writers queueing pages hold
    /// key-share-locked: a claim does not skip those.
    pub skip_locked_gates: &'static str,
    /// Opens the list of ids bound as one JSON array parameter (`IN (ids_open $n ids_close)`).
    pub ids_open: &'static str,
    /// Closes it.
    pub ids_close: &'static str,
    /// Queue notifications, in order.
    pub insert_outbox: Bulk,
    /// Make each contact's place in the queue no later than the given time,
    /// creating its gate; the gate stays locked (at least shared) until
    /// commit, so that a dispatcher letting it go sees the pages queued.
    pub upsert_gates: Bulk,
    /// Link alerts to an incident (incident, alert, at, by); a link that
    /// exists is kept.
    pub insert_incident_alerts: Bulk,
}

/// SQLite 3.45 or later (JSON `->>`, `RETURNING`, `UPDATE … FROM`).
pub(crate) const SQLITE: Dialect = Dialect {
    bundle_chunk: 500,
    for_update: "",
    lookup: KeyLookup::PerKey(
        "SELECT id, source_id, dedup_key, status, members, severity, priority, summary, details, links FROM alerts WHERE id = COALESCE((SELECT id FROM alerts WHERE source_id = $1 AND dedup_key = $2 AND resolved_seq = 0), (SELECT MAX(resolved_seq) FROM alerts WHERE source_id = $1 AND dedup_key = $2))",
    ),
    reserve_ids: ReserveIds::After(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'alerts'), 0) AS alerts, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'escalation_steps'), 0) AS steps",
    ),
    insert_alerts: Bulk::PerRow(
        "INSERT INTO alerts (id, source_id, dedup_key, status, severity, priority, summary, details, labels, links, members, policy_id, service_id, detected_at, created_at, updated_at, last_seen_at, seen_count, resolved_at, resolved_by, extra_labels, resolved_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, CASE WHEN $4 = 'resolved' THEN $1 ELSE 0 END)",
    ),
    update_alerts: Bulk::PerRow(
        "UPDATE alerts SET status = $2, severity = COALESCE($3, severity), priority = COALESCE($4, priority), summary = COALESCE($5, summary), details = COALESCE($6, details), labels = COALESCE($7, labels), links = COALESCE($8, links), members = COALESCE($9, members), updated_at = COALESCE($10, updated_at), last_seen_at = $11, seen_count = seen_count + $12, resolved_at = COALESCE($13, resolved_at), resolved_by = COALESCE($14, resolved_by), extra_labels = COALESCE($15, extra_labels), resolved_seq = CASE WHEN $2 = 'resolved' THEN id ELSE 0 END WHERE id = $1",
    ),
    has_label: "(EXISTS (SELECT 1 FROM json_each(alerts.labels) AS j WHERE j.key = {n} AND j.value = {v}) OR EXISTS (SELECT 1 FROM json_each(alerts.extra_labels) AS j WHERE j.value ->> 0 = {n} AND j.value ->> 1 = {v}))",
    insert_timeline: Bulk::PerRow(
        "INSERT INTO alert_timeline (alert_id, at, actor, channel, kind, message) VALUES ($1, $2, $3, $4, $5, $6)",
    ),
    insert_steps_full: Bulk::PerRow(
        "INSERT INTO escalation_steps (id, alert_id, policy_id, level, round, due_at, status, created_at, done_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    ),
    skip_locked: "",
    skip_locked_gates: "",
    ids_open: "SELECT value FROM json_each(",
    ids_close: ")",
    insert_outbox: Bulk::PerRow(
        "INSERT INTO outbox (alert_id, step_id, user_id, contact_id, channel, address, due_at, status, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $7, $8)",
    ),
    upsert_gates: Bulk::PerRow(
        "INSERT INTO contact_gates (user_id, contact_id, open_at, due_at) VALUES ($1, $2, 0, $3) ON CONFLICT (user_id, contact_id) DO UPDATE SET due_at = excluded.due_at WHERE contact_gates.due_at IS NULL OR excluded.due_at < contact_gates.due_at",
    ),
    insert_incident_alerts: Bulk::PerRow(
        "INSERT INTO incident_alerts (incident_id, alert_id, linked_at, linked_by) VALUES ($1, $2, $3, $4) ON CONFLICT (incident_id, alert_id) DO NOTHING",
    ),
};

/// PostgreSQL 13 or later.
pub(crate) const POSTGRES: Dialect = Dialect {
    bundle_chunk: 2000,
    for_update: " FOR UPDATE",
    lookup: KeyLookup::JsonArray(
        "SELECT a.id, a.source_id, a.dedup_key, a.status, a.members, a.severity, a.priority, a.summary, a.details, a.links FROM jsonb_array_elements($1::jsonb) AS j(v) JOIN LATERAL (SELECT b.id FROM alerts b WHERE b.source_id = j.v ->> 0 AND b.dedup_key = j.v ->> 1 ORDER BY b.resolved_seq = 0 DESC, b.resolved_seq DESC LIMIT 1) AS newest ON true JOIN alerts a ON a.id = newest.id FOR UPDATE OF a",
    ),
    reserve_ids: ReserveIds::Sequence(
        "SELECT nextval('alerts_id_seq') AS id, false AS is_step FROM unnest(array_fill(0, ARRAY[$1::int])) UNION ALL SELECT nextval('escalation_steps_id_seq'), true FROM unnest(array_fill(0, ARRAY[$2::int]))",
    ),
    insert_alerts: Bulk::JsonArray(
        "INSERT INTO alerts (id, source_id, dedup_key, status, severity, priority, summary, details, labels, links, members, policy_id, service_id, detected_at, created_at, updated_at, last_seen_at, seen_count, resolved_at, resolved_by, extra_labels, resolved_seq) SELECT (j.v ->> 0)::bigint, j.v ->> 1, j.v ->> 2, j.v ->> 3, j.v ->> 4, j.v ->> 5, j.v ->> 6, j.v ->> 7, j.v ->> 8, j.v ->> 9, j.v ->> 10, j.v ->> 11, j.v ->> 12, (j.v ->> 13)::bigint, (j.v ->> 14)::bigint, (j.v ->> 15)::bigint, (j.v ->> 16)::bigint, (j.v ->> 17)::bigint, (j.v ->> 18)::bigint, j.v ->> 19, j.v ->> 20, CASE WHEN j.v ->> 3 = 'resolved' THEN (j.v ->> 0)::bigint ELSE 0 END FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    ),
    update_alerts: Bulk::JsonArray(
        "UPDATE alerts SET status = j.v ->> 1, severity = COALESCE(j.v ->> 2, alerts.severity), priority = COALESCE(j.v ->> 3, alerts.priority), summary = COALESCE(j.v ->> 4, alerts.summary), details = COALESCE(j.v ->> 5, alerts.details), labels = COALESCE(j.v ->> 6, alerts.labels), links = COALESCE(j.v ->> 7, alerts.links), members = COALESCE(j.v ->> 8, alerts.members), updated_at = COALESCE((j.v ->> 9)::bigint, alerts.updated_at), last_seen_at = (j.v ->> 10)::bigint, seen_count = alerts.seen_count + (j.v ->> 11)::bigint, resolved_at = COALESCE((j.v ->> 12)::bigint, alerts.resolved_at), resolved_by = COALESCE(j.v ->> 13, alerts.resolved_by), extra_labels = COALESCE(j.v ->> 14, alerts.extra_labels), resolved_seq = CASE WHEN j.v ->> 1 = 'resolved' THEN alerts.id ELSE 0 END FROM jsonb_array_elements($1::jsonb) AS j(v) WHERE alerts.id = (j.v ->> 0)::bigint",
    ),
    has_label: "(alerts.labels::jsonb ->> {n}::text = {v}::text OR alerts.extra_labels::jsonb @> jsonb_build_array(jsonb_build_array({n}::text, {v}::text)))",
    insert_timeline: Bulk::JsonArray(
        "INSERT INTO alert_timeline (alert_id, at, actor, channel, kind, message) SELECT (j.v ->> 0)::bigint, (j.v ->> 1)::bigint, j.v ->> 2, j.v ->> 3, j.v ->> 4, j.v ->> 5 FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    ),
    insert_steps_full: Bulk::JsonArray(
        "INSERT INTO escalation_steps (id, alert_id, policy_id, level, round, due_at, status, created_at, done_at) SELECT COALESCE((j.v ->> 0)::bigint, nextval('escalation_steps_id_seq')), (j.v ->> 1)::bigint, j.v ->> 2, (j.v ->> 3)::bigint, (j.v ->> 4)::bigint, (j.v ->> 5)::bigint, j.v ->> 6, (j.v ->> 7)::bigint, (j.v ->> 8)::bigint FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    ),
    skip_locked: " FOR UPDATE SKIP LOCKED",
    skip_locked_gates: " FOR NO KEY UPDATE SKIP LOCKED",
    ids_open: "SELECT (jsonb_array_elements_text(",
    ids_close: "::jsonb))::bigint",
    insert_outbox: Bulk::JsonArray(
        "INSERT INTO outbox (alert_id, step_id, user_id, contact_id, channel, address, due_at, status, next_attempt_at, created_at) SELECT (j.v ->> 0)::bigint, (j.v ->> 1)::bigint, j.v ->> 2, j.v ->> 3, j.v ->> 4, j.v ->> 5, (j.v ->> 6)::bigint, 'pending', (j.v ->> 6)::bigint, (j.v ->> 7)::bigint FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
    ),
    // A gate already due in time is only key-share-locked: writers paging
    // the same person at once do not wait for each other, nor for a
    // dispatcher claiming the gate (`skip_locked_gates`), and a dispatcher
    // letting the gate go waits for them (then sees their pages).
    upsert_gates: Bulk::JsonArray(
        "WITH want AS (SELECT j.v ->> 0 AS user_id, j.v ->> 1 AS contact_id, (j.v ->> 2)::bigint AS due_at FROM jsonb_array_elements($1::jsonb) AS j(v)), in_time AS (SELECT g.user_id, g.contact_id FROM contact_gates g JOIN want w ON g.user_id = w.user_id AND g.contact_id = w.contact_id WHERE g.due_at <= w.due_at FOR KEY SHARE OF g) INSERT INTO contact_gates (user_id, contact_id, open_at, due_at) SELECT w.user_id, w.contact_id, 0, w.due_at FROM want w WHERE NOT EXISTS (SELECT 1 FROM in_time t WHERE t.user_id = w.user_id AND t.contact_id = w.contact_id) ON CONFLICT (user_id, contact_id) DO UPDATE SET due_at = excluded.due_at WHERE contact_gates.due_at IS NULL OR excluded.due_at < contact_gates.due_at",
    ),
    insert_incident_alerts: Bulk::JsonArray(
        "INSERT INTO incident_alerts (incident_id, alert_id, linked_at, linked_by) SELECT (j.v ->> 0)::bigint, (j.v ->> 1)::bigint, (j.v ->> 2)::bigint, j.v ->> 3 FROM jsonb_array_elements($1::jsonb) AS j(v) ON CONFLICT (incident_id, alert_id) DO NOTHING",
    ),
};
