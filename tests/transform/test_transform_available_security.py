"""Baseline-aware compliance (docs/aws-behaviours.md §37): AVAILABLE_SECURITY_UPDATE counts against a node, and
its patches are rows of the patches table, exactly where the node's baseline says NON_COMPLIANT; both table paths
agree."""

from __future__ import annotations

import pandas as pd
import pytest

from include.patch_compliance.transform import build_tables
from include.patch_compliance.transform.assemble import assemble_tables
from include.patch_compliance.transform.staging import StagedRun
from tests.fixtures.raw.builders import NOW, instance_info, patch, patch_state, raw_doc, target

SLA = {"CRITICAL": 7, "HIGH": 14, "MEDIUM": 30, "LOW": 90, "INFORMATIONAL": 180, "UNSPECIFIED": 90}
NODE = "i-00000000000000009"
BASELINE = "pb-0123456789abcdef0"  # the fixture patch state's BaselineId


def tables(setting: str | None):
    state = {**patch_state(NODE), "AvailableSecurityUpdateCount": 2}
    doc = raw_doc(
        target("111111111111"),
        info=[instance_info(NODE, platform="Windows", platform_name="Microsoft Windows Server 2022")],
        states=[state],
        patches={NODE: [patch("KB5031364", state="AvailableSecurityUpdate", severity="Critical", cves=None)]},
    )
    if setting is not None:
        doc["baselines"] = [{"BaselineId": BASELINE, "AvailableSecurityUpdatesComplianceStatus": setting}]
    kwargs = dict(run_id="r1", dag_id="d", snapshot_date=NOW.date(), now=NOW, sla_days=SLA, stale_after_days=7)
    built = build_tables([doc], [], None, **kwargs)
    staged = StagedRun.from_docs([doc], [], now=NOW, sla_days=SLA, stale_after_days=7)
    for name, frame in assemble_tables(staged, None, **kwargs).items():
        pd.testing.assert_frame_equal(frame, built[name], obj=name)
    return built


def test_a_non_compliant_setting_counts_available_security_updates():
    built = tables("NON_COMPLIANT")
    (node,) = built["nodes"].to_dict("records")
    assert node["available_security_updates_compliance"] == "NON_COMPLIANT"
    assert node["compliance_status"] == "NON_COMPLIANT"
    assert node["non_compliant_patches"] == 1 and node["highest_missing_severity"] == "CRITICAL"
    assert built["patches"]["state"].tolist() == ["AVAILABLE_SECURITY_UPDATE"]


@pytest.mark.parametrize("setting", ["COMPLIANT", None])
def test_a_compliant_or_unread_setting_does_not(setting):
    built = tables(setting)
    (node,) = built["nodes"].to_dict("records")
    assert node["compliance_status"] == "COMPLIANT"
    assert built["patches"].empty
    expected = "COMPLIANT" if setting else None
    assert (
        None
        if pd.isna(node["available_security_updates_compliance"])
        else node["available_security_updates_compliance"]
    ) == expected


def test_an_unknown_setting_is_kept_and_not_counted():
    built = tables("SOMETIMES")
    (node,) = built["nodes"].to_dict("records")
    assert node["available_security_updates_compliance"] == "UNKNOWN"
    assert list(node["unrecognised"]) == ["available_security_updates_compliance=SOMETIMES"]
    assert node["compliance_status"] == "COMPLIANT"
