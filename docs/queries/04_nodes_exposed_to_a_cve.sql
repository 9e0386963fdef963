-- Which nodes miss the fix for a CVE, and since when (latest scan run). One row per CVE and node; add
-- AND cve_id = 'CVE-2024-3094' to look at one.
WITH latest AS (
  SELECT max_by(run_id, snapshot_date) AS run_id
  FROM patches
  WHERE dag_id = 'patch_compliance_scan'
)
SELECT
  c.cve_id,
  p.account_id,
  p.region,
  p.instance_id,
  min(p.first_seen) AS exposed_since,
  max(p.age_days) AS age_days,
  count_if(p.sla_breached) AS sla_breaches,
  array_join(array_agg(DISTINCT p.kb_id), ',') AS kb_ids
FROM patches AS p
CROSS JOIN UNNEST(p.cve_ids) AS c (cve_id)
WHERE p.run_id = (SELECT run_id FROM latest)
GROUP BY c.cve_id, p.account_id, p.region, p.instance_id
ORDER BY c.cve_id, p.account_id, p.region, p.instance_id
