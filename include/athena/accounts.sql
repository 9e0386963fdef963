-- accounts: one row per account-region per run: counts by compliance, coverage and severity.
-- Generated from include/patch_compliance/transform/schema.py by scripts/generate_athena.py; do not edit.
-- Columns and meanings: docs/data-contract.md.
-- Replace <bucket>/<prefix> with reports.bucket/reports.prefix. Partition projection: no crawler and no
-- MSCK REPAIR; new days appear by themselves.
CREATE EXTERNAL TABLE IF NOT EXISTS `accounts` (
  `run_id`                string,
  `dag_id`                string,
  `ou_id`                 string,
  `ou_path`               string,
  `account_id`            string,
  `account_name`          string,
  `region`                string,
  `nodes`                 bigint,
  `compliant`             bigint,
  `non_compliant`         bigint,
  `unknown`               bigint,
  `compliant_pct`         double,
  `unreachable_targets`   bigint,
  `coverage_unmanaged`    bigint,
  `coverage_offline`      bigint,
  `coverage_scan_failed`  bigint,
  `coverage_not_scanned`  bigint,
  `coverage_stale`        bigint,
  `coverage_scanned`      bigint,
  `missing_critical`      bigint,
  `missing_high`          bigint,
  `missing_medium`        bigint,
  `missing_low`           bigint,
  `missing_informational` bigint,
  `missing_unspecified`   bigint,
  `sla_breaches`          bigint
)
PARTITIONED BY (`snapshot_date` string)
STORED AS PARQUET
LOCATION 's3://<bucket>/<prefix>/accounts/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/<prefix>/accounts/snapshot_date=${snapshot_date}/',
  'parquet.compression' = 'SNAPPY'
);
