"""A synthetic fleet in raw-document shape (same quirks as the live APIs), sized by patch rows.

Each node carries ``patches_per_node`` DescribeInstancePatches items (a mix of Missing/Failed/
InstalledPendingReboot/Installed/NotApplicable in both spellings), so 100,000 nodes x 10 = 1,000,000 patch rows.
String values come from small pools and are shared between items, as json.loads of real documents would
not do; the benchmark measures the transform, not the input's memory.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
EPOCH = "1970-01-01T00:00:00+00:00"
_STATES = (
    "Missing",
    "MISSING",
    "Failed",
    "InstalledPendingReboot",
    "Missing",
    "Installed",
    "InstalledOther",
    "NotApplicable",
    "Missing",
    "INSTALLED",
)
_SEVERITIES = ("Critical", "Important", "Moderate", "Medium", "Low", "", "Unspecified")
_OUS = [(f"ou-ab12-{n:08d}", f"Root/Workloads/Team{n}") for n in range(8)]


def fleet(
    n_nodes: int, *, patches_per_node: int = 10, nodes_per_target: int = 100, seed: int = 7, now: datetime = NOW
) -> tuple[list[dict], list[dict]]:
    """(raw_docs, command_records) for ``n_nodes`` nodes."""
    packages = [(f"pkg{n}", f"pkg{n}-1.{n % 7}.x86_64", f"CVE-2026-{n:04d},CVE-2025-{n:04d}") for n in range(600)]
    scan_iso = [(now - timedelta(hours=h)).isoformat() for h in range(0, 24 * 12, 6)]
    docs: list[dict] = []
    commands: list[dict] = []
    n_targets = max(1, -(-n_nodes // nodes_per_target))
    node = 0
    for t in range(n_targets):
        ou_id, ou_path = _OUS[t % len(_OUS)]
        target = {
            "ou_id": ou_id,
            "ou_path": ou_path,
            "account_id": f"{100000000000 + t // 2:012d}",
            "account_name": f"acct-{t // 2}",
            "region": ("eu-west-1", "us-east-1")[t % 2],
            "wave": "all",
        }
        if t % 97 == 96:
            docs.append(
                {
                    "target": target,
                    "status": "UNREACHABLE",
                    "error": {"code": "AccessDenied", "message": "x", "stage": "assume_role"},
                    "collected_at": now.isoformat(),
                    "instance_information": [],
                    "ec2_instances": [],
                    "patch_states": [],
                    "patches": {},
                    "compliance_items": {},
                }
            )
            commands.append(
                {
                    **target,
                    "command_id": None,
                    "command_status": None,
                    "command_status_details": None,
                    "instance_id": None,
                    "status": None,
                    "status_details": None,
                    "response_code": None,
                    "requested_at": None,
                    "started_at": None,
                    "finished_at": None,
                    "error": "AccessDenied",
                }
            )
            continue
        info, ec2, states, patches, items_by_node = [], [], [], {}, {}
        count = min(nodes_per_target, n_nodes - node)
        for _ in range(count):
            iid = f"i-{node:017x}"
            node += 1
            info.append(
                {
                    "InstanceId": iid,
                    "PingStatus": "ConnectionLost" if node % 50 == 0 else "Online",
                    "LastPingDateTime": scan_iso[0],
                    "AgentVersion": "3.3.987.0",
                    "PlatformType": "Linux",
                    "PlatformName": "Amazon Linux",
                    "PlatformVersion": "2023",
                    "ResourceType": "EC2Instance",
                    "ComputerName": "",
                    "IPAddress": "10.0.0.1",
                }
            )
            ec2.append(
                {
                    "InstanceId": iid,
                    "State": {"Code": 16, "Name": "running"},
                    "Tags": [{"Key": "Name", "Value": iid}],
                    "PlatformDetails": "Linux/UNIX",
                }
            )
            if node % 40 == 0:
                continue  # managed, never scanned
            items = []
            # The patch mix of a node depends on the seed for 1 node in 20 only: consecutive days share most rows,
            # as real fleets do (a realistic delta), while the states/severities still vary.
            picker = random.Random(node * 7919 + (seed if node % 20 == 0 else 0))
            for j in range(patches_per_node):
                kb, title, cves = packages[picker.randrange(len(packages))]
                state = _STATES[(node + j) % len(_STATES)]
                missing = state.upper() in ("MISSING", "FAILED")
                items.append(
                    {
                        "Title": title,
                        "KBId": kb,
                        "Classification": "" if not missing else "Security",
                        "Severity": _SEVERITIES[(node * 3 + j) % len(_SEVERITIES)],
                        "State": state,
                        "InstalledTime": EPOCH if missing else scan_iso[-1],
                        **({"CVEIds": cves} if missing else {}),
                    }
                )
            patches[iid] = items
            nc = sum(
                1
                for p in items
                if p["State"].upper().replace("INSTALLEDPENDINGREBOOT", "X") in ("MISSING", "FAILED", "X")
            )
            states.append(
                {
                    "InstanceId": iid,
                    "PatchGroup": "default",
                    "BaselineId": "pb-0123456789abcdef0",
                    "InstalledCount": 40,
                    "InstalledOtherCount": 2,
                    "InstalledPendingRebootCount": 0,
                    "InstalledRejectedCount": 0,
                    "MissingCount": nc,
                    "FailedCount": 0,
                    "NotApplicableCount": 3,
                    "CriticalNonCompliantCount": min(nc, 1),
                    "SecurityNonCompliantCount": 0,
                    "OtherNonCompliantCount": max(nc - 1, 0),
                    "OperationStartTime": scan_iso[node % len(scan_iso)],
                    "OperationEndTime": scan_iso[node % len(scan_iso)],
                    "Operation": "Scan",
                }
            )
            # ListComplianceItems: the Association item of every scanned node (Patch items repeat the patches).
            items_by_node[iid] = [
                {
                    "ComplianceType": "Association",
                    "ResourceType": "ManagedInstance",
                    "ResourceId": iid,
                    "Id": "assoc-0123456789abcdef0",
                    "Title": "",
                    "Status": "COMPLIANT",
                    "Severity": "UNSPECIFIED",
                    "ExecutionSummary": {"ExecutionTime": scan_iso[0], "ExecutionId": "", "ExecutionType": "Command"},
                    "Details": {"DocumentName": "AWS-RunPatchBaseline", "DocumentVersion": "1"},
                }
            ]
            outcome = ("Success", "Success")
            if node % 45 == 0:
                outcome = ("Failed", "Failed")
            elif node % 70 == 0:
                outcome = ("Failed", "Undeliverable")
            commands.append(
                {
                    **target,
                    "command_id": f"cmd-{t:06d}",
                    "command_status": "Success",
                    "command_status_details": "Success",
                    "instance_id": iid,
                    "status": outcome[0],
                    "status_details": outcome[1],
                    "response_code": 0,
                    "requested_at": scan_iso[0],
                    "started_at": scan_iso[0],
                    "finished_at": scan_iso[0],
                    "error": None,
                }
            )
        docs.append(
            {
                "target": target,
                "status": "OK",
                "error": None,
                "collected_at": now.isoformat(),
                "instance_information": info,
                "ec2_instances": ec2,
                "patch_states": states,
                "patches": patches,
                "compliance_items": items_by_node,
            }
        )
    return docs, commands
