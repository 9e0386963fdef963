-- Compliance per day (the last scan run of each day) and the change against the same weekday a week before.
WITH runs AS (
  SELECT snapshot_date, max(run_id) AS run_id
  FROM nodes
  WHERE dag_id = 'patch_compliance_scan'
  GROUP BY snapshot_date
),
daily AS (
  SELECT
    n.snapshot_date,
    count(*) AS nodes,
    count_if(n.compliance_status = 'COMPLIANT') AS compliant,
    round(100.0 * count_if(n.compliance_status = 'COMPLIANT') / count(*), 2) AS compliant_pct
  FROM nodes AS n
  JOIN runs AS r ON n.snapshot_date = r.snapshot_date AND n.run_id = r.run_id
  WHERE n.instance_id IS NOT NULL
  GROUP BY n.snapshot_date
)
SELECT
  d.snapshot_date,
  d.nodes,
  d.compliant,
  d.compliant_pct,
  w.compliant_pct AS compliant_pct_week_before,
  d.compliant_pct - w.compliant_pct AS change_pct_points
FROM daily AS d
LEFT JOIN daily AS w
  ON CAST(w.snapshot_date AS DATE) = date_add('day', -7, CAST(d.snapshot_date AS DATE))
ORDER BY d.snapshot_date
