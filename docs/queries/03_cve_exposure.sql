-- CVE exposure in the latest scan run: the CVEs on the most nodes (summary.json top_cves), with since when.
WITH latest AS (
  SELECT max_by(run_id, snapshot_date) AS run_id
  FROM cves
  WHERE dag_id = 'patch_compliance_scan'
)
SELECT cve_id, severity, nodes, accounts, sla_breaches, first_seen, max_age_days, kb_ids
FROM cves
WHERE run_id = (SELECT run_id FROM latest)
ORDER BY nodes DESC,
  CASE severity WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2 WHEN 'LOW' THEN 3
    WHEN 'INFORMATIONAL' THEN 4 ELSE 5 END,
  cve_id
LIMIT 10
