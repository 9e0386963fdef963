-- compliance_items: ListComplianceItems rows (Patch and Association types) per node per run.
-- Columns and meanings: docs/data-contract.md. Types: include/patch_compliance/transform/schema.py.
-- Replace <bucket>/<prefix> with reports.bucket/reports.prefix. Partition projection: no crawler and no
-- MSCK REPAIR; new days appear by themselves.
CREATE EXTERNAL TABLE IF NOT EXISTS `compliance_items` (
  `run_id`            string,
  `dag_id`            string,
  `ou_id`             string,
  `ou_path`           string,
  `account_id`        string,
  `account_name`      string,
  `region`            string,
  `instance_id`       string,
  `compliance_type`   string,
  `item_id`           string,
  `title`             string,
  `status`            string,
  `severity`          string,
  `patch_state`       string,
  `classification`    string,
  `patch_severity`    string,
  `patch_baseline_id` string,
  `patch_group`       string,
  `document_name`     string,
  `cve_ids`           array<string>,
  `installed_time`    timestamp,
  `execution_id`      string,
  `execution_type`    string,
  `execution_time`    timestamp
)
PARTITIONED BY (`snapshot_date` string)
STORED AS PARQUET
LOCATION 's3://<bucket>/<prefix>/compliance_items/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/<prefix>/compliance_items/snapshot_date=${snapshot_date}/',
  'parquet.compression' = 'SNAPPY'
);
