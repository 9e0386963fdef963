"""deploy/athena/glue-tables.yaml is what scripts/athena_template.py generates from transform/schema.py, and its
tables say what include/athena/*.sql says: same columns and types, partition, location and table properties."""

from __future__ import annotations

import re

import pytest

from include.patch_compliance.transform.schema import ALL_TABLES
from scripts import athena_template
from scripts.cfn_templates import ATHENA_TEMPLATE, resolve
from tests.transform.test_transform_contract import ATHENA, parse_ddl

BUCKET, PREFIX = "acme-patch-reports", "pc"
RESULTS = "s3://acme-athena-results/patch-compliance/"


@pytest.fixture(scope="module")
def stack():
    return resolve(
        ATHENA_TEMPLATE, {"ReportsBucketName": BUCKET, "ReportsPrefix": PREFIX, "QueryResultsLocation": RESULTS}
    )


def test_the_committed_template_is_the_generated_one() -> None:
    assert ATHENA_TEMPLATE.read_text() == athena_template.render(), "run: python -m scripts.athena_template"
    assert athena_template.main(["--check"]) == 0


def test_check_mode_fails_on_a_stale_template(tmp_path, monkeypatch) -> None:
    stale = tmp_path / "glue-tables.yaml"
    stale.write_text(athena_template.render().replace("Type: bigint", "Type: int", 1))
    monkeypatch.setattr(athena_template, "ATHENA_TEMPLATE", stale)
    assert athena_template.main(["--check"]) == 1


@pytest.mark.parametrize("table", list(ALL_TABLES), ids=list(ALL_TABLES))
def test_each_glue_table_matches_its_athena_ddl(stack, table) -> None:
    name, columns, partitions, sql = parse_ddl(ATHENA / f"{table}.sql")
    sql = sql.replace("<bucket>", BUCKET).replace("<prefix>", PREFIX)
    [glue] = [
        r
        for r in stack.resources.values()
        if r["Type"] == "AWS::Glue::Table" and r["Properties"]["TableInput"]["Name"] == name
    ]
    table_input = glue["Properties"]["TableInput"]
    storage = table_input["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == columns
    assert [(p["Name"], p["Type"]) for p in table_input["PartitionKeys"]] == partitions
    assert f"LOCATION '{storage['Location']}'" in sql
    properties = dict(re.findall(r"'([^']+)' = '([^']*)'", sql.split("TBLPROPERTIES", 1)[1]))
    assert {k: v for k, v in table_input["Parameters"].items() if k not in ("EXTERNAL", "classification")} == properties
    assert "STORED AS PARQUET" in sql and storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert table_input["TableType"] == "EXTERNAL_TABLE"
    assert glue["Properties"]["DatabaseName"] == "patch_compliance"


def test_every_report_table_has_a_glue_table(stack) -> None:
    names = {r["Properties"]["TableInput"]["Name"] for r in stack.resources.values() if r["Type"] == "AWS::Glue::Table"}
    assert names == set(ALL_TABLES)


def test_the_workgroup_enforces_encrypted_results_on_engine_3(stack) -> None:
    config = stack.resources["WorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    assert config["ResultConfiguration"] == {
        "OutputLocation": RESULTS,
        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
    }
    key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    keyed = resolve(
        ATHENA_TEMPLATE,
        {"ReportsBucketName": BUCKET, "QueryResultsLocation": RESULTS, "ResultsKmsKeyArn": key},
    ).resources["WorkGroup"]["Properties"]["WorkGroupConfiguration"]["ResultConfiguration"]
    assert keyed["EncryptionConfiguration"] == {"EncryptionOption": "SSE_KMS", "KmsKey": key}
