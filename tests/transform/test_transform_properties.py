"""Property tests: invariants of build_tables over random small fleets with every API quirk mixed in."""

from __future__ import annotations

import random

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.patch_compliance.transform import build_tables
from include.patch_compliance.transform.nodes import NON_COMPLIANT_COUNTS
from include.patch_compliance.transform.patches import PATCH_KEY
from include.patch_compliance.transform.schema import COVERAGE_STATUSES, NON_COMPLIANT_STATES, SEVERITIES
from include.patch_compliance.vocab import COMPLIANCE_STATUSES
from tests.fixtures.raw.builders import (
    NOW,
    command_record,
    ec2_instance,
    instance_info,
    patch,
    patch_state,
    raw_doc,
    target,
    unreachable_doc,
)

SLA = {"CRITICAL": 7, "HIGH": 14, "MEDIUM": 30, "LOW": 90, "INFORMATIONAL": 180, "UNSPECIFIED": 90}
STATES = [
    "Missing",
    "MISSING",
    "Failed",
    "InstalledPendingReboot",
    "INSTALLED_REJECTED",
    "Installed",
    "InstalledOther",
    "NotApplicable",
    "AVAILABLE_SECURITY_UPDATE",
]
SEVERITY_WORDS = ["Critical", "Important", "Moderate", "Medium", "Low", "", "Unspecified", "Optional"]
KBS = ["kernel", "openssl", "curl", "KB5005565"]
INVOCATIONS = [
    ("Success", "Success"),
    ("Failed", "Failed"),
    ("Failed", "Undeliverable"),
    ("TimedOut", "Delivery Timed Out"),
    ("InProgress", "In Progress"),
]

node_spec = st.fixed_dictionaries(
    {
        "managed": st.booleans(),
        "ec2": st.sampled_from([None, "running", "stopped"]),
        "ping": st.sampled_from(["Online", "ConnectionLost"]),
        "state": st.one_of(st.none(), st.lists(st.integers(0, 2), min_size=4, max_size=4)),
        "age_days": st.integers(0, 20),
        "patches": st.lists(
            st.tuples(st.sampled_from(KBS), st.booleans(), st.sampled_from(STATES), st.sampled_from(SEVERITY_WORDS)),
            max_size=6,
        ),
        "invocation": st.one_of(st.none(), st.sampled_from(INVOCATIONS)),
    }
)
fleet_spec = st.lists(st.tuples(st.booleans(), st.lists(node_spec, max_size=5)), min_size=1, max_size=3)


def make_fleet(spec) -> tuple[list[dict], list[dict]]:
    docs, commands = [], []
    for t, (reachable, nodes) in enumerate(spec):
        tgt = target(f"{100000000000 + t:012d}", ou_id=f"ou-ab12-{t % 2:08d}", ou_path=f"Root/OU{t % 2}")
        if not reachable:
            docs.append(unreachable_doc(tgt))
            commands.append(command_record(None, tgt=tgt, status="", details="", error="AccessDenied"))
            continue
        info, ec2, states, patches = [], [], [], {}
        for n, node in enumerate(nodes):
            iid = f"i-{t:08x}{n:09x}"
            if node["managed"]:
                info.append(instance_info(iid, ping=node["ping"]))
            if node["ec2"]:
                ec2.append(ec2_instance(iid, state=node["ec2"]))
            if node["state"] is not None:
                missing, failed, reboot, critical = node["state"]
                states.append(
                    patch_state(
                        iid,
                        scanned=NOW - pd.Timedelta(days=node["age_days"]),
                        missing=missing,
                        failed=failed,
                        pending_reboot=reboot,
                        critical=min(critical, missing),
                    )
                )
            patches[iid] = [
                patch(kb, title=f"{kb}.{'x86_64' if arch else 'i686'}", state=state, severity=sev)
                for kb, arch, state, sev in node["patches"]
            ]
            if node["invocation"]:
                status, details = node["invocation"]
                commands.append(command_record(iid, tgt=tgt, status=status, details=details))
        # SSM tags for the managed nodes that are not EC2 instances, and the baseline's setting (both settings
        # across targets), so every table path is compared on them too.
        hybrid = {f"i-{t:08x}{n:09x}": {"Team": f"team{n % 3}"} for n, node in enumerate(nodes) if not node["ec2"]}
        doc = raw_doc(tgt, info=info, ec2=ec2, states=states, patches=patches, node_tags=hybrid)
        setting = ("COMPLIANT", "NON_COMPLIANT")[t % 2]
        doc["baselines"] = [{"BaselineId": "pb-0123456789abcdef0", "AvailableSecurityUpdatesComplianceStatus": setting}]
        docs.append(doc)
    return docs, commands


def build(docs, commands):
    return build_tables(
        docs,
        commands,
        None,
        run_id="r",
        dag_id="d",
        snapshot_date=NOW.date(),
        now=NOW,
        sla_days=SLA,
        stale_after_days=7,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_spec, st.randoms(use_true_random=False))
def test_build_tables_invariants(spec, rnd: random.Random):
    docs, commands = make_fleet(spec)
    tables = build(docs, commands)
    nodes, patches, accounts = tables["nodes"], tables["patches"], tables["accounts"]

    real = nodes[nodes["instance_id"].notna()]
    assert not real.duplicated(["account_id", "region", "instance_id"]).any()
    assert (nodes["instance_id"].isna() == (nodes["coverage_status"] == "UNREACHABLE")).all()
    assert (nodes["coverage_status"] == "UNREACHABLE").sum() == sum(1 for d in docs if d["status"] == "UNREACHABLE")
    assert set(nodes["compliance_status"]) <= set(COMPLIANCE_STATUSES)
    assert set(nodes["coverage_status"]) <= set(COVERAGE_STATUSES)
    counts = nodes[list(NON_COMPLIANT_COUNTS)].astype("Int64").fillna(0)
    assert ((counts > 0).any(axis=1) == (nodes["compliance_status"] == "NON_COMPLIANT")).all()
    unknown = nodes["compliance_status"] == "UNKNOWN"
    assert nodes.loc[unknown, list(NON_COMPLIANT_COUNTS)].isna().all().all()
    # Stopped EC2 instances that are not managed never become nodes (docs/aws-behaviours.md §9).
    assert set(real.loc[real["coverage_status"] == "UNMANAGED", "ec2_state"]) <= {"running"}

    assert not patches.duplicated(PATCH_KEY).any()
    # AVAILABLE_SECURITY_UPDATE rows only where the baseline counts them and the node has some (aws-behaviours §37).
    assert set(patches["state"]) <= {*NON_COMPLIANT_STATES, "AVAILABLE_SECURITY_UPDATE"}
    available = patches[patches["state"] == "AVAILABLE_SECURITY_UPDATE"]
    counted = real[(real["available_security_update_count"].fillna(0) > 0)]
    assert set(available["instance_id"]) <= set(counted["instance_id"])
    assert set(patches["severity"]) <= set(SEVERITIES)
    per_node = patches.groupby(["account_id", "region", "instance_id"]).size()
    for _, row in real[real["compliance_status"] != "UNKNOWN"].iterrows():
        key = (row["account_id"], row["region"], row["instance_id"])
        assert row["non_compliant_patches"] == per_node.get(key, 0)

    assert accounts["nodes"].sum() == len(real)
    assert (accounts["compliant"] + accounts["non_compliant"] + accounts["unknown"] == accounts["nodes"]).all()
    coverage_cols = [c for c in accounts.columns if c.startswith("coverage_")]
    assert (accounts[coverage_cols].sum(axis=1) == accounts["nodes"]).all()
    assert accounts["missing_critical"].sum() + accounts[[f"missing_{s.lower()}" for s in SEVERITIES[1:]]].sum(
        axis=1
    ).sum() == len(patches)
    assert len(accounts) == len(docs)

    # Order of items inside the documents does not matter.
    shuffled = [
        {
            **d,
            "patches": {k: rnd.sample(v, len(v)) for k, v in d["patches"].items()},
            "instance_information": rnd.sample(d["instance_information"], len(d["instance_information"])),
        }
        for d in docs
    ]
    again = build(rnd.sample(shuffled, len(shuffled)), rnd.sample(commands, len(commands)))
    for name in tables:
        pd.testing.assert_frame_equal(tables[name].reset_index(drop=True), again[name].reset_index(drop=True))
