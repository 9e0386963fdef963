"""Puts a generated account-region's EC2 instances into moto's EC2 backend, with the fleet's instance ids and tags,
so DescribeInstances (served by moto) agrees with SSM. Hybrid `mi-` nodes are SSM-only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from unittest import mock

from sandbox.nodes import RegionData

_LOCK = threading.Lock()
_AMI = {"Linux": "ami-760aaa0f", "Windows": "ami-b7e93bce"}  # moto's default Amazon Linux / Windows AMIs


def seed_ec2(rd: RegionData) -> None:
    if not rd.nodes:
        return
    from moto.ec2.models import ec2_backends
    from moto.ec2.models import instances as moto_instances

    backend = ec2_backends[rd.account_id][rd.region]
    with _LOCK:
        for node in rd.nodes.values():
            if node.resource_type != "EC2Instance":
                continue
            # moto draws random ids; pin ours for the duration of this one creation.
            with mock.patch.object(moto_instances, "random_instance_id", return_value=node.instance_id):
                reservation = backend.run_instances(
                    _AMI[node.platform.platform_type], 1, None, [], instance_type="t3.medium",
                    is_instance_type_default=False, region_name=rd.region, private_ip_address=node.ip,
                    tags={"instance": dict(node.tags)})
            instance = reservation.instances[0]
            instance.platform_details = node.platform.details
            instance.launch_time = datetime.fromtimestamp(node.registered_at, tz=UTC).replace(tzinfo=None)
            if node.ec2_state == "stopped":
                backend.stop_instances([node.instance_id])


def terminate_ec2(account_id: str, region: str, instance_id: str) -> None:
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[account_id][region]
    try:
        backend.terminate_instances([instance_id])
    except Exception:  # hybrid nodes are not EC2 instances
        pass

