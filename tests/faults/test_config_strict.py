"""Probes: the config loader refuses what AWS or the run would refuse, and a broken config is a DAG import error.

Issue 10 items 2 and 3. S3 bucket names: Amazon S3 user guide, "General purpose bucket naming rules"
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html); regions: botocore's partition
data; IAM role names: IAM API reference, CreateRole ``RoleName`` and ``Path`` (docs/aws-behaviours.md §31).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from include.patch_compliance.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"regions": ["eu-west-1"], "reports": {"bucket": "my-reports"}}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("value", ['"yes"', "yes", "1", '"on"', "on", '"true"', "Yes"])
def test_install_opt_in_is_only_the_yaml_boolean_true(tmp_path, value):
    path = _write(
        tmp_path, f"regions: [eu-west-1]\nreports: {{bucket: my-reports}}\nscan: {{allow_install: {value}}}\n"
    )
    with pytest.raises(ConfigError, match=r"scan\.allow_install: .* is not allowed: must be the YAML boolean"):
        load_config(path)


def test_install_opt_in_true_is_accepted(tmp_path):
    path = _write(tmp_path, "regions: [eu-west-1]\nreports: {bucket: my-reports}\nscan: {allow_install: true}\n")
    assert load_config(path).scan.allow_install is True


@pytest.mark.parametrize(
    "field",
    [
        ("waves", [{"name": "all", "ous": ["*"], "parallel_with_previous": "no"}], r"waves\.0\.parallel_with_previous"),
        ("collect", {"compliance_items": 0}, r"collect\.compliance_items"),
        ("security_hub", {"enabled": "false"}, r"security_hub\.enabled"),
        ("scan", {"wait": {"deferrable": 1}}, r"scan\.wait\.deferrable"),
    ],
)
def test_every_boolean_is_strict(field):
    key, value, where = field
    with pytest.raises(ConfigError, match=where):
        parse_config({**MINIMAL, key: value})


@pytest.mark.parametrize(
    "bucket",
    ["192.168.1.1", "my..bucket", "my.-bucket", "my-.bucket", "xn--bucket-name", "mybucket-s3alias", "sthree-x",
     "amzn-s3-demo-bucket", "b--ol-s3", "b.mrap", "b--x-s3", "b--table-s3", "-bucket", "bucket-", "ab", "a" * 64,
     "Bucket", "my_bucket"],
)  # fmt: skip
def test_bucket_names_s3_rejects_are_refused(bucket):
    with pytest.raises(ConfigError, match=r"reports\.bucket: .* is not allowed"):
        parse_config({**MINIMAL, "reports": {"bucket": bucket}})
    with pytest.raises(ConfigError, match=r"scan\.output_s3_bucket: .* is not allowed"):
        parse_config({**MINIMAL, "scan": {"output_s3_bucket": bucket}})


@pytest.mark.parametrize("bucket", ["my-reports", "reports.example.com", "a1b", "123bucket", "1.2.3.bucket"])
def test_valid_bucket_names_pass(bucket):
    assert parse_config({**MINIMAL, "reports": {"bucket": bucket}}).reports.bucket == bucket


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        (["us-east-9"], r"regions\.0: 'us-east-9' is not allowed: not a region of any AWS partition"),
        (["eu-west-1", "cn-north-1"], r"regions: .* one partition.*aws-cn"),
        (["eu-west-1", "eu-west-1"], r"regions: .* listed twice"),
    ],
)
def test_regions_come_from_the_partition_list(regions, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_config({**MINIMAL, "regions": regions})


def test_known_regions_of_other_partitions_pass():
    assert parse_config({**MINIMAL, "regions": ["us-gov-west-1", "us-gov-east-1"]}).regions == [
        "us-gov-west-1",
        "us-gov-east-1",
    ]


@pytest.mark.parametrize("prefix", ["../../etc", "a/../b", "./x", "a//b", "a/./b", "a b", "..", "~home"])
def test_unsafe_prefixes_are_refused(prefix):
    with pytest.raises(ConfigError, match=r"reports\.prefix"):
        parse_config({**MINIMAL, "reports": {"bucket": "my-reports", "prefix": prefix}})
    with pytest.raises(ConfigError, match=r"scan\.output_s3_prefix"):
        parse_config({**MINIMAL, "scan": {"output_s3_prefix": prefix}})


@pytest.mark.parametrize("role", ["Bad Role", "rôle", "a" * 65, "/path/Role", "path//Role", "Role/"])
def test_iam_role_name_rules(role):
    with pytest.raises(ConfigError, match=r"access\.member_role_name"):
        parse_config({**MINIMAL, "access": {"member_role_name": role}})


def test_iam_role_with_a_path_is_accepted():
    cfg = parse_config({**MINIMAL, "access": {"member_role_name": "ops/patching/PatchComplianceScanRole"}})
    assert cfg.access.member_role_name == "ops/patching/PatchComplianceScanRole"


def _parse(monkeypatch, config: str | None) -> dict:
    """Parse the DAG folder as the DAG processor does, with PATCH_COMPLIANCE_CONFIG set to ``config`` (or unset)."""
    from airflow.dag_processing.dagbag import DagBag

    if config is None:
        monkeypatch.delenv("PATCH_COMPLIANCE_CONFIG", raising=False)
    else:
        monkeypatch.setenv("PATCH_COMPLIANCE_CONFIG", config)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    return {"errors": {k.rsplit("/", 1)[-1]: v for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags)}


def test_a_broken_config_is_a_dag_import_error_naming_the_field(tmp_path, monkeypatch):
    data = yaml.safe_load((ROOT / "sandbox" / "fleet-config.yaml").read_text())
    data["scan"]["allow_install"] = "yes"
    data["reports"]["bucket"] = "192.168.1.1"
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps(data))
    result = _parse(monkeypatch, str(bad))
    assert set(result["errors"]) == {
        "patch_compliance_scan.py",
        "patch_compliance_collect.py",
        "patch_compliance_trends.py",
        "patch_compliance_remediate.py",
    }, result
    for message in result["errors"].values():
        assert "scan.allow_install" in message and "reports.bucket" in message
    assert result["dags"] == []  # no DAG with a silently different shape or schedule


def test_an_unset_config_still_parses_with_the_default_layout(monkeypatch):
    result = _parse(monkeypatch, None)
    assert result["errors"] == {}
    assert {
        "patch_compliance_scan",
        "patch_compliance_collect",
        "patch_compliance_trends",
        "patch_compliance_remediate",
    } <= set(result["dags"])


@pytest.mark.parametrize(
    ("regions", "expected"),
    [(["us-east-9"], "not a region of any AWS partition"), (["eu-west-1", "cn-north-1"], "one partition")],
)
def test_run_param_regions_are_checked_like_the_config(regions, expected):
    """The trigger form's regions replace the config's for one run: same rules, refused before any AWS call."""
    from include.patch_compliance.orchestration.airflow_tasks import _discover
    from include.patch_compliance.runtime import RunContext

    run = RunContext(cfg=parse_config(MINIMAL), dag_id="patch_compliance_scan", run_id="r", hub=None)
    with pytest.raises(ValueError, match=rf"run param regions .*{expected}"):
        _discover(run, {"regions": regions, "operation": "Scan"})
