-- fleet_daily: one row per day and OU (last run of the day), rebuilt by the trends DAG.
-- Generated from include/patch_compliance/transform/schema.py by scripts/generate_athena.py; do not edit.
-- Columns and meanings: docs/data-contract.md.
-- Replace <bucket>/<prefix> with reports.bucket/reports.prefix. Partition projection: no crawler and no
-- MSCK REPAIR; new days appear by themselves.
CREATE EXTERNAL TABLE IF NOT EXISTS `fleet_daily` (
  `ou_id`         string,
  `ou_path`       string,
  `run_id`        string,
  `nodes`         bigint,
  `compliant`     bigint,
  `compliant_pct` double,
  `sla_breaches`  bigint
)
PARTITIONED BY (`snapshot_date` string)
STORED AS PARQUET
LOCATION 's3://<bucket>/<prefix>/fleet_daily/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/<prefix>/fleet_daily/snapshot_date=${snapshot_date}/',
  'parquet.compression' = 'SNAPPY'
);
