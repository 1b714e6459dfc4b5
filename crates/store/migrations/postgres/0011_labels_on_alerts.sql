-- Label filters read the alert row itself: its common labels (`labels`)
-- and, for a group, the pairs of its members that the common labels lack
-- (`extra_labels`, a JSON array of [name, value]). A table of one row per
-- label pair cost seven rows a Prometheus alert at ingest.
ALTER TABLE alerts ADD COLUMN extra_labels TEXT NOT NULL DEFAULT '[]';
UPDATE alerts SET extra_labels = x.pairs
FROM (
    SELECT l.alert_id, jsonb_agg(jsonb_build_array(l.name, l.value))::text AS pairs
    FROM alert_labels l
    JOIN alerts a ON a.id = l.alert_id
    WHERE (a.labels::jsonb ->> l.name) IS DISTINCT FROM l.value
    GROUP BY l.alert_id
) AS x
WHERE alerts.id = x.alert_id;
DROP TABLE alert_labels;
