-- nodes: one row per node per run (and one row per unreachable account-region, instance_id null).
-- Generated from include/patch_compliance/transform/schema.py by scripts/generate_athena.py; do not edit.
-- Columns and meanings: docs/data-contract.md.
-- Replace <bucket>/<prefix> with reports.bucket/reports.prefix. Partition projection: no crawler and no
-- MSCK REPAIR; new days appear by themselves.
CREATE EXTERNAL TABLE IF NOT EXISTS `nodes` (
  `run_id`                                string,
  `dag_id`                                string,
  `ou_id`                                 string,
  `ou_path`                               string,
  `account_id`                            string,
  `account_name`                          string,
  `region`                                string,
  `wave`                                  string,
  `target_status`                         string,
  `target_error`                          string,
  `target_error_stage`                    string,
  `instance_id`                           string,
  `instance_name`                         string,
  `resource_type`                         string,
  `platform_type`                         string,
  `platform_name`                         string,
  `platform_version`                      string,
  `agent_version`                         string,
  `ping_status`                           string,
  `last_ping_time`                        timestamp,
  `ec2_state`                             string,
  `patch_group`                           string,
  `baseline_id`                           string,
  `compliance_status`                     string,
  `coverage_status`                       string,
  `critical_non_compliant_count`          bigint,
  `security_non_compliant_count`          bigint,
  `other_non_compliant_count`             bigint,
  `missing_count`                         bigint,
  `failed_count`                          bigint,
  `installed_pending_reboot_count`        bigint,
  `installed_rejected_count`              bigint,
  `installed_count`                       bigint,
  `installed_other_count`                 bigint,
  `not_applicable_count`                  bigint,
  `available_security_update_count`       bigint,
  `available_security_updates_compliance` string,
  `last_operation`                        string,
  `last_scan_time`                        timestamp,
  `scan_age_days`                         bigint,
  `command_id`                            string,
  `invocation_status`                     string,
  `invocation_status_details`             string,
  `highest_missing_severity`              string,
  `non_compliant_patches`                 bigint,
  `sla_breaches`                          bigint,
  `tags`                                  map<string,string>,
  `unrecognised`                          array<string>
)
PARTITIONED BY (`snapshot_date` string)
STORED AS PARQUET
LOCATION 's3://<bucket>/<prefix>/nodes/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.snapshot_date.type' = 'date',
  'projection.snapshot_date.format' = 'yyyy-MM-dd',
  'projection.snapshot_date.range' = '2024-01-01,NOW',
  'projection.snapshot_date.interval' = '1',
  'projection.snapshot_date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/<prefix>/nodes/snapshot_date=${snapshot_date}/',
  'parquet.compression' = 'SNAPPY'
);
