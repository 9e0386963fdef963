-- cves: one row per CVE id of the run's non-compliant patches: exposed nodes, accounts, age and SLA.
-- Generated from include/patch_compliance/transform/schema.py by scripts/generate_athena.py; do not edit.
-- Columns and meanings: docs/data-contract.md.
-- Replace <bucket>/<prefix> with reports.bucket/reports.prefix. Partition projection: no crawler and no
-- MSCK REPAIR; new days appear by themselves.
CREATE EXTERNAL TABLE IF NOT EXISTS `cves` (
  `run_id`       string,
  `dag_id`       string,
  `cve_id`       string,
  `severity`     string,
  `nodes`        bigint,
  `accounts`     bigint,
  `patches`      bigint,
  `sla_breaches` bigint,
  `first_seen`   timestamp,
  `max_age_days` bigint,
  `account_ids`  array<string>,
  `ou_paths`     array<string>,
  `kb_ids`       array<string>,
  `titles`       array<string>
)
PARTITIONED BY (`snapshot_date` string)
STORED AS PARQUET
LOCATION 's3://<bucket>/<prefix>/cves/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/<prefix>/cves/snapshot_date=${snapshot_date}/',
  'parquet.compression' = 'SNAPPY'
);
