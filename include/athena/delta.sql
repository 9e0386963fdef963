-- delta: changes against the previous run of the same DAG.
-- Generated from include/patch_compliance/transform/schema.py by scripts/generate_athena.py; do not edit.
-- Columns and meanings: docs/data-contract.md.
-- Replace <bucket>/<prefix> with reports.bucket/reports.prefix. Partition projection: no crawler and no
-- MSCK REPAIR; new days appear by themselves.
CREATE EXTERNAL TABLE IF NOT EXISTS `delta` (
  `run_id`          string,
  `dag_id`          string,
  `previous_run_id` string,
  `change`          string,
  `ou_id`           string,
  `ou_path`         string,
  `account_id`      string,
  `account_name`    string,
  `region`          string,
  `instance_id`     string,
  `kb_id`           string,
  `title`           string,
  `severity`        string,
  `previous_status` string,
  `current_status`  string
)
PARTITIONED BY (`snapshot_date` string)
STORED AS PARQUET
LOCATION 's3://<bucket>/<prefix>/delta/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/<prefix>/delta/snapshot_date=${snapshot_date}/',
  'parquet.compression' = 'SNAPPY'
);
