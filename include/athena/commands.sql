-- commands: one row per SSM invocation outcome (or per target that could not be sent to) per run.
-- Generated from include/patch_compliance/transform/schema.py by scripts/generate_athena.py; do not edit.
-- Columns and meanings: docs/data-contract.md.
-- Replace <bucket>/<prefix> with reports.bucket/reports.prefix. Partition projection: no crawler and no
-- MSCK REPAIR; new days appear by themselves.
CREATE EXTERNAL TABLE IF NOT EXISTS `commands` (
  `run_id`                 string,
  `dag_id`                 string,
  `ou_id`                  string,
  `ou_path`                string,
  `account_id`             string,
  `account_name`           string,
  `region`                 string,
  `wave`                   string,
  `command_id`             string,
  `command_status`         string,
  `command_status_details` string,
  `instance_id`            string,
  `status`                 string,
  `status_details`         string,
  `outcome`                string,
  `response_code`          bigint,
  `requested_at`           timestamp,
  `started_at`             timestamp,
  `finished_at`            timestamp,
  `error`                  string,
  `unrecognised`           array<string>
)
PARTITIONED BY (`snapshot_date` string)
STORED AS PARQUET
LOCATION 's3://<bucket>/<prefix>/commands/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/<prefix>/commands/snapshot_date=${snapshot_date}/',
  'parquet.compression' = 'SNAPPY'
);
