-- Non-compliant nodes by owner tag (here Team; any tag key works) in the latest scan run (summary.json by_tag).
-- element_at gives NULL for a node without the tag (tags['Team'] would fail on it in Athena).
WITH latest AS (
  SELECT max_by(run_id, snapshot_date) AS run_id
  FROM nodes
  WHERE dag_id = 'patch_compliance_scan'
)
SELECT
  element_at(tags, 'Team') AS team,
  count(*) AS nodes,
  count_if(compliance_status = 'COMPLIANT') AS compliant,
  count_if(compliance_status = 'NON_COMPLIANT') AS non_compliant,
  count_if(compliance_status = 'UNKNOWN') AS unknown,
  round(100.0 * count_if(compliance_status = 'COMPLIANT') / count(*), 2) AS compliant_pct
FROM nodes
WHERE run_id = (SELECT run_id FROM latest)
  AND instance_id IS NOT NULL
GROUP BY element_at(tags, 'Team')
ORDER BY team NULLS LAST
