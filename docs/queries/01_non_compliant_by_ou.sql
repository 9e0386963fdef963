-- Non-compliant nodes by OU in the latest scan run (summary.json by_ou).
-- compliant_pct is taken over every node (unknown and unmanaged ones count against it).
WITH latest AS (
  SELECT max_by(run_id, snapshot_date) AS run_id
  FROM nodes
  WHERE dag_id = 'patch_compliance_scan'
)
SELECT
  ou_path,
  count(*) AS nodes,
  count_if(compliance_status = 'COMPLIANT') AS compliant,
  count_if(compliance_status = 'NON_COMPLIANT') AS non_compliant,
  round(100.0 * count_if(compliance_status = 'COMPLIANT') / count(*), 2) AS compliant_pct
FROM nodes
WHERE run_id = (SELECT run_id FROM latest)
  AND instance_id IS NOT NULL
GROUP BY ou_path
ORDER BY ou_path
