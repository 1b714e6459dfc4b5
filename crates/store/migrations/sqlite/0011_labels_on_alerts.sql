-- Label filters read the alert row itself: its common labels (`labels`)
-- and, for a group, the pairs of its members that the common labels lack
-- (`extra_labels`, a JSON array of [name, value]). A table of one row per
-- label pair cost seven rows a Prometheus alert at ingest.
ALTER TABLE alerts ADD COLUMN extra_labels TEXT NOT NULL DEFAULT '[]';
UPDATE alerts SET extra_labels = (
    SELECT json_group_array(json_array(l.name, l.value))
    FROM alert_labels l
    WHERE l.alert_id = alerts.id
      AND NOT EXISTS (SELECT 1 FROM json_each(alerts.labels) AS j WHERE j.key = l.name AND j.value = l.value)
)
WHERE EXISTS (
    SELECT 1 FROM alert_labels l
    WHERE l.alert_id = alerts.id
      AND NOT EXISTS (SELECT 1 FROM json_each(alerts.labels) AS j WHERE j.key = l.name AND j.value = l.value)
);
DROP TABLE alert_labels;
