"""Puts a generated account-region's EC2 instances into moto's EC2 backend, with the fleet's instance ids and tags,
so DescribeInstances (served by moto) agrees with SSM. Hybrid `mi-` nodes are SSM-only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from unittest import mock

from sandbox.nodes import RegionData

_LOCK = threading.Lock()
_AMI = {"Linux": "ami-760aaa0f", "Windows": "ami-b7e93bce"}  # ids of moto's default Amazon Linux / Windows AMIs


def seed_ec2(rd: RegionData) -> None:
    nodes = [n for n in rd.nodes.values() if n.resource_type == "EC2Instance"]
    if not nodes:
        return
    from moto import settings
    from moto.ec2.models import ec2_backends
    from moto.ec2.models import instances as moto_instances

    # Speed, not behaviour: moto loads ~1,300 default AMIs into every new account-region backend and filters them
    # on each launch (~2 s per account-region); `large` has 2,000 account-regions. Ids are pinned to the fleet's.
    with (
        _LOCK,
        mock.patch.object(settings, "ec2_load_default_amis", return_value=False),
        mock.patch.object(moto_instances, "random_instance_id", side_effect=[n.instance_id for n in nodes]),
    ):
        backend = ec2_backends[rd.account_id][rd.region]
        reservation = backend.run_instances(
            _AMI["Linux"],
            len(nodes),
            None,
            [],
            instance_type="t3.medium",
            is_instance_type_default=True,
            region_name=rd.region,
        )
    for instance, node in zip(reservation.instances, nodes, strict=True):
        instance.instance_type = "t3.medium"
        instance.image_id = _AMI[node.platform.platform_type]
        instance.platform = "windows" if node.platform.platform_type == "Windows" else None
        instance.platform_details = node.platform.details
        instance.launch_time = datetime.fromtimestamp(node.registered_at, tz=UTC).replace(tzinfo=None)
        instance.add_tags(dict(node.tags))
    stopped = [n.instance_id for n in nodes if n.ec2_state == "stopped"]
    if stopped:
        backend.stop_instances(stopped)


def terminate_ec2(account_id: str, region: str, instance_id: str) -> None:
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[account_id][region]
    try:
        backend.terminate_instances([instance_id])
    except Exception:  # hybrid nodes are not EC2 instances
        pass
