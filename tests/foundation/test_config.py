"""Config validation: every error names the field, the bad value and what is allowed."""

from pathlib import Path

import pytest
import yaml

from include.patch_compliance.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"regions": ["eu-west-1"], "reports": {"bucket": "my-reports"}}


def test_default_and_example_configs_are_valid():
    default = load_config(ROOT / "sandbox" / "fleet-config.yaml")
    assert default.reports.bucket and default.waves
    example = parse_config(yaml.safe_load((ROOT / "config.example.yaml").read_text()), "config.example.yaml")
    assert example.scan.allow_install is False


def test_env_var_selects_the_file(tmp_path, monkeypatch):
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "regions": ["ap-southeast-2"]}))
    monkeypatch.setenv("PATCH_COMPLIANCE_CONFIG", str(path))
    assert load_config().regions == ["ap-southeast-2"]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"regions": ["mars-1"]}, r"regions\.0: 'mars-1' is not allowed: does not match the allowed pattern"),
        ({"regions": []}, r"regions: \[\] is not allowed"),
        ({"scan": {"max_concurrency": "0"}}, r"scan\.max_concurrency: '0' is not allowed"),
        ({"scan": {"max_errors": "101%"}}, r"scan\.max_errors: '101%' is not allowed"),
        ({"scan": {"timeout_seconds": 10}}, r"scan\.timeout_seconds: 10 is not allowed: .*greater than or equal to 30"),
        ({"scan": {"targets": {"mode": "tags"}}}, r"scan\.targets: .*needs at least one entry in targets\.tags"),
        ({"access": {"external_id": "x"}}, r"access\.external_id: 'x' is not allowed"),
        ({"access": {"session_duration_seconds": 100}}, r"access\.session_duration_seconds: 100"),
        ({"orchestration": {"schedule": "every day"}}, r"orchestration\.schedule: 'every day'.*5-field cron"),
        ({"orchestration": {"shard_size": 0}}, r"orchestration\.shard_size: 0"),
        (
            {"orchestration": {"schedule": "0 3 * * *", "collect_schedule": "0 */3 * * *"}},
            r"orchestration: .*both fire at 2026-01-01 03:00: the scan and collect DAGs would get the same run ids",
        ),
        ({"reports": {"bucket": "Bad_Bucket"}}, r"reports\.bucket: 'Bad_Bucket' is not allowed"),
        ({"thresholds": {"sla_days": {"URGENT": 1}}}, r"thresholds\.sla_days: .*unknown severity \['URGENT'\]"),
        ({"waves": [{"name": "a", "ous": ["*"]}, {"name": "b", "ous": ["*"]}]}, r"only one wave may take"),
        ({"waves": [{"name": "Bad Name", "ous": ["*"]}]}, r"waves\.0\.name: 'Bad Name'"),
        ({"organization": {"include_ous": ["prod"]}}, r"organization\.include_ous\.0: 'prod' is not allowed"),
        ({"scan": {"operation": "Install"}}, r"scan\.operation: unknown key; remove it"),
        ({"typo_key": 1}, r"typo_key: unknown key; remove it or check the spelling against config\.example\.yaml"),
    ],
)
def test_errors_name_field_value_and_rule(patch, expected):
    data = {**MINIMAL}
    for key, value in patch.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    with pytest.raises(ConfigError, match=expected):
        parse_config(data, "test.yaml")


def test_offset_schedules_are_fine():
    cfg = parse_config({**MINIMAL, "orchestration": {"schedule": "0 3 * * *", "collect_schedule": "30 3 * * *"}})
    assert cfg.orchestration.collect_schedule == "30 3 * * *"
    assert parse_config(MINIMAL).orchestration.collect_schedule is None  # collect DAG is manual by default


def test_every_error_is_listed_at_once():
    with pytest.raises(ConfigError) as info:
        parse_config({"regions": ["x"], "reports": {"bucket": "B"}})
    assert "regions.0" in str(info.value) and "reports.bucket" in str(info.value)


def test_missing_and_broken_files_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not found; set PATCH_COMPLIANCE_CONFIG"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("regions: [unclosed")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(broken)
