"""The scan operator, the sensor (deferrable and reschedule paths) and the trigger, driven with a minimal
Airflow context against the emulated organization."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from airflow.sdk.exceptions import TaskDeferred

from include.patch_compliance import steps
from include.patch_compliance.orchestration.links import SsmRunCommandLink, link_url
from include.patch_compliance.orchestration.operators import PatchScanOperator
from include.patch_compliance.orchestration.sensors import ShardCommandsSensor
from include.patch_compliance.orchestration.triggers import ShardCommandsTrigger
from tests.orchestration.conftest import fleet_config, make_run


class FakeTI:
    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def context_for(run, operation="Scan"):
    return {
        "dag": SimpleNamespace(dag_id=run.dag_id),
        "run_id": run.run_id,
        "dag_run": SimpleNamespace(run_after=run.run_after, start_date=datetime.now(UTC) - timedelta(minutes=1)),
        "ti": FakeTI(),
        "params": {"operation": operation},
    }


@pytest.fixture
def planned(sandbox):
    def make(run_id, **cfg):
        run = make_run(run_id, fleet_config(**cfg))
        refs = steps.plan_fleet(run)["waves"]["canary"]
        return run, refs[0]

    return make


def _hub_in_trigger(run):
    return mock.patch("include.patch_compliance.aws.context_from_connection", return_value=run.hub)


def _patched(run):
    return mock.patch("include.patch_compliance.runtime.RunContext.from_airflow", return_value=run)


def test_scan_operator_records_and_links(planned, sandbox):
    run, shard = planned("op-scan")
    context = context_for(run)
    with _patched(run):
        result = PatchScanOperator(task_id="scan", shard=shard).execute(context)
    assert result["targets"] == shard["targets"] and result["commands"] >= 1 and result["unreachable"] == 2
    assert context["pc_label"] == shard["label"]
    link = context["ti"].pushed[SsmRunCommandLink.key]
    assert link["region_name"] in ("us-east-1", "eu-west-1") and link["aws_domain"] == "aws.amazon.com"
    fields = {k: v for k, v in link.items() if k not in ("region_name", "aws_domain")}
    assert link_url(SsmRunCommandLink(), link["region_name"], fields) == SsmRunCommandLink().format_link(**link)
    assert len(run.get(run.key("scan", "canary", 0))) == shard["targets"]


def test_sensor_defers_then_records_every_invocation(planned, sandbox):
    run, shard = planned("op-defer", scan={"wait": {"deferrable": True, "poke_interval_seconds": 5}})
    context = context_for(run)
    with _patched(run):
        PatchScanOperator(task_id="scan", shard=shard).execute(context)
        sensor = ShardCommandsSensor(task_id="wait", shard=shard)
        context["ti"].pushed.clear()
        sandbox.reset_calls()
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute(context)
        # the trigger makes the first check: the worker assumed no role and polled nothing before deferring
        assert not [c for c in sandbox.calls() if c.startswith(("sts.", "ssm."))]
        # the console link is stored before deferring: the worker formats every declared link at deferral too
        assert context["ti"].pushed[SsmRunCommandLink.key]["command_id"]
        trigger = deferred.value.trigger
        assert isinstance(trigger, ShardCommandsTrigger)
        # the trigger serialises to its own constructor arguments (it runs in another process)
        path, kwargs = trigger.serialize()
        assert path == "include.patch_compliance.orchestration.triggers.ShardCommandsTrigger"
        rebuilt = ShardCommandsTrigger(**kwargs)
        sandbox.admin("advance", seconds=3600)
        with mock.patch("include.patch_compliance.aws.context_from_connection", return_value=run.hub):
            event = asyncio.run(_first_event(rebuilt))
        assert event.payload["status"] == "done"
        sandbox.reset_calls()
        result = sensor.execute_complete(context, event.payload)
    calls = sandbox.calls()
    assert "ssm.ListCommands" not in calls  # the event carried every command's final state
    assert calls["ssm.ListCommandInvocations"] == len(event.payload["states"])
    assert result["invocations"] > 0 and not result["timed_out"]
    outcomes = run.get(run.key("commands", "canary", 0))
    assert all(o["error"] is None for o in outcomes if o["instance_id"])


def test_reschedule_mode_pokes_until_terminal(planned, sandbox):
    run, shard = planned("op-resched", scan={"wait": {"deferrable": False, "poke_interval_seconds": 5}})
    context = context_for(run)
    with _patched(run):
        PatchScanOperator(task_id="scan", shard=shard).execute(context)
        sensor = ShardCommandsSensor(task_id="wait", shard=shard)
        assert sensor.mode == "reschedule"  # no worker slot held between pokes
        sandbox.reset_calls()
        assert sensor.poke(context) is False
        targets = {(r["target"]["account_id"], r["target"]["region"]) for r in run.get(run.key("scan", "canary", 0))}
        assert sandbox.calls()["ssm.ListCommands"] <= len(targets)  # one listing per account-region
        sandbox.admin("advance", seconds=3600)
        assert sensor.poke(context) is True
        result = sensor.execute(context)
    assert result["invocations"] > 0


def test_trigger_gives_up_at_the_deadline(planned, sandbox):
    run, shard = planned("op-deadline")
    context = context_for(run)
    with _patched(run):
        PatchScanOperator(task_id="scan", shard=shard).execute(context)
    sandbox.admin("advance", seconds=5)  # invocations listed (Pending/InProgress), none finished yet
    records = run.get(run.key("scan", "canary", 0))
    trigger = ShardCommandsTrigger(
        scan_records=[{"target": r["target"], "commands": r["commands"]} for r in records],
        access=run.cfg.access.model_dump(),
        session_name=run.session_name,
        poke_interval=0.1,
        deadline=(datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
    )
    with _hub_in_trigger(run):
        event = asyncio.run(_first_event(trigger))
    assert event.payload["status"] == "timeout"
    with _patched(run):
        result = ShardCommandsSensor(task_id="wait", shard=shard).execute_complete(context, event.payload)
    assert result["timed_out"]
    outcomes = run.get(run.key("commands", "canary", 0))
    assert any(o["error"] and "timed out" in o["error"] for o in outcomes if o["instance_id"])


async def _first_event(trigger):
    async for event in trigger.run():
        return event
