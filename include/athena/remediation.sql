-- remediation: one row per node a remediation run selected: Install outcome, before/after patch counts.
-- Generated from include/patch_compliance/transform/schema.py by scripts/generate_athena.py; do not edit.
-- Columns and meanings: docs/data-contract.md.
-- Replace <bucket>/<prefix> with reports.bucket/reports.prefix. Partition projection: no crawler and no
-- MSCK REPAIR; new days appear by themselves.
CREATE EXTERNAL TABLE IF NOT EXISTS `remediation` (
  `run_id`                    string,
  `dag_id`                    string,
  `ou_id`                     string,
  `ou_path`                   string,
  `account_id`                string,
  `account_name`              string,
  `region`                    string,
  `wave`                      string,
  `instance_id`               string,
  `instance_name`             string,
  `platform_name`             string,
  `source_run_id`             string,
  `reboot_option`             string,
  `command_id`                string,
  `invocation_status`         string,
  `invocation_status_details` string,
  `outcome`                   string,
  `requested_at`              timestamp,
  `finished_at`               timestamp,
  `compliance_before`         string,
  `compliance_after`          string,
  `missing_before`            bigint,
  `missing_after`             bigint,
  `failed_before`             bigint,
  `failed_after`              bigint,
  `pending_reboot_before`     bigint,
  `pending_reboot_after`      bigint,
  `rejected_before`           bigint,
  `rejected_after`            bigint,
  `installed_before`          bigint,
  `installed_after`           bigint,
  `patches_installed`         bigint,
  `reboot_needed`             boolean,
  `last_operation_after`      string,
  `last_scan_time_after`      timestamp,
  `rescanned`                 boolean,
  `result`                    string,
  `error`                     string
)
PARTITIONED BY (`snapshot_date` string)
STORED AS PARQUET
LOCATION 's3://<bucket>/<prefix>/remediation/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/<prefix>/remediation/snapshot_date=${snapshot_date}/',
  'parquet.compression' = 'SNAPPY'
);
