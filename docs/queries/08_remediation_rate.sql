-- Remediation rate per scan run: nodes remediated since the previous run over the nodes that were non-compliant
-- in it, next to the newly non-compliant ones (the delta table compares each run with the previous one).
WITH changes AS (
  SELECT
    run_id,
    snapshot_date,
    previous_run_id,
    count_if(change = 'REMEDIATED') AS remediated,
    count_if(change = 'NEWLY_NON_COMPLIANT') AS newly_non_compliant
  FROM delta
  WHERE dag_id = 'patch_compliance_scan'
  GROUP BY run_id, snapshot_date, previous_run_id
),
before AS (
  SELECT run_id, count_if(compliance_status = 'NON_COMPLIANT') AS non_compliant
  FROM nodes
  WHERE dag_id = 'patch_compliance_scan' AND instance_id IS NOT NULL
  GROUP BY run_id
)
SELECT
  c.snapshot_date,
  c.run_id,
  c.previous_run_id,
  b.non_compliant AS non_compliant_before,
  c.remediated,
  c.newly_non_compliant,
  round(100.0 * c.remediated / nullif(b.non_compliant, 0), 2) AS remediation_rate_pct
FROM changes AS c
LEFT JOIN before AS b ON b.run_id = c.previous_run_id
ORDER BY c.snapshot_date, c.run_id
