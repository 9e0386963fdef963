-- Nodes that stopped reporting in the latest scan run: offline agents, failed scans, never or long not scanned,
-- running instances without SSM. See docs/data-contract.md, "Coverage status".
WITH latest AS (
  SELECT max_by(run_id, snapshot_date) AS run_id
  FROM nodes
  WHERE dag_id = 'patch_compliance_scan'
)
SELECT
  coverage_status,
  account_id,
  region,
  instance_id,
  instance_name,
  ping_status,
  last_ping_time,
  last_scan_time,
  scan_age_days,
  invocation_status_details
FROM nodes
WHERE run_id = (SELECT run_id FROM latest)
  AND instance_id IS NOT NULL
  AND coverage_status IN ('UNMANAGED', 'OFFLINE', 'SCAN_FAILED', 'NOT_SCANNED', 'STALE')
ORDER BY coverage_status, account_id, region, instance_id
