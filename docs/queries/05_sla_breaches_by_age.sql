-- Patches past their SLA in the latest scan run, by severity and by how long they have been missing.
WITH latest AS (
  SELECT max_by(run_id, snapshot_date) AS run_id
  FROM patches
  WHERE dag_id = 'patch_compliance_scan'
)
SELECT
  severity,
  CASE
    WHEN age_days <= 7 THEN '0-7 days'
    WHEN age_days <= 30 THEN '8-30 days'
    WHEN age_days <= 90 THEN '31-90 days'
    ELSE 'over 90 days'
  END AS age,
  count(*) AS breaches,
  count(DISTINCT concat(account_id, '/', region, '/', instance_id)) AS nodes
FROM patches
WHERE run_id = (SELECT run_id FROM latest)
  AND sla_breached
GROUP BY 1, 2
ORDER BY 1, 2
