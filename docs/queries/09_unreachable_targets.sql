-- Account-regions the latest scan run could not read, with where it failed (summary.json unreachable).
WITH latest AS (
  SELECT max_by(run_id, snapshot_date) AS run_id
  FROM nodes
  WHERE dag_id = 'patch_compliance_scan'
)
SELECT account_id, account_name, ou_path, region, target_error_stage AS stage, target_error AS error_code
FROM nodes
WHERE run_id = (SELECT run_id FROM latest)
  AND target_status = 'UNREACHABLE'
ORDER BY account_id, region
