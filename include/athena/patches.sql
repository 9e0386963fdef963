-- patches: one row per node and non-compliant patch per run, with first_seen, age and SLA.
-- Generated from include/patch_compliance/transform/schema.py by scripts/generate_athena.py; do not edit.
-- Columns and meanings: docs/data-contract.md.
-- Replace <bucket>/<prefix> with reports.bucket/reports.prefix. Partition projection: no crawler and no
-- MSCK REPAIR; new days appear by themselves.
CREATE EXTERNAL TABLE IF NOT EXISTS `patches` (
  `run_id`          string,
  `dag_id`          string,
  `ou_id`           string,
  `ou_path`         string,
  `account_id`      string,
  `account_name`    string,
  `region`          string,
  `instance_id`     string,
  `kb_id`           string,
  `title`           string,
  `classification`  string,
  `vendor_severity` string,
  `severity`        string,
  `state`           string,
  `cve_ids`         array<string>,
  `installed_time`  timestamp,
  `first_seen`      timestamp,
  `age_days`        bigint,
  `sla_days`        bigint,
  `sla_due`         timestamp,
  `sla_breached`    boolean,
  `unrecognised`    array<string>
)
PARTITIONED BY (`snapshot_date` string)
STORED AS PARQUET
LOCATION 's3://<bucket>/<prefix>/patches/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/<prefix>/patches/snapshot_date=${snapshot_date}/',
  'parquet.compression' = 'SNAPPY'
);
