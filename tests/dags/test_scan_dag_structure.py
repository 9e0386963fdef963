"""The scan DAG's shape: waves in config order as task groups, mapped shard tasks with labels, gates last."""

import pytest


@pytest.fixture(scope="module")
def scan_dag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.test_dag_integrity import ROOT

    return DagBag(dag_folder=str(ROOT / "dags")).dags["patch_compliance_scan"]


def test_waves_are_chained_in_config_order(scan_dag):
    from include.patch_compliance.config import load_config

    waves = [w.name for w in load_config().waves]
    for before, after in zip(waves, waves[1:], strict=False):
        gate = scan_dag.get_task(f"wave_{after}.gate")
        assert f"wave_{before}.shards.collect" in gate.upstream_task_ids


def test_shard_tasks_are_mapped_and_labelled(scan_dag):
    for task in scan_dag.tasks:
        if ".shards." in task.task_id:
            assert task.map_index_template == "{{ pc_label }}", task.task_id


def test_params_validate_operation_ou_and_region():
    from airflow.sdk.definitions.param import ParamsDict

    from include.patch_compliance.orchestration.params import run_params

    params = ParamsDict(run_params(with_operation=True))
    params.validate()
    for bad in ({"operation": "Bogus"}, {"ou_ids": ["not-an-ou"]}, {"regions": ["Mars-1"]}):
        candidate = ParamsDict(run_params(with_operation=True))
        key, value = next(iter(bad.items()))
        with pytest.raises(Exception, match=key):
            candidate[key] = value
            candidate.validate()


def test_optional_params_are_not_required_in_the_trigger_form():
    """Airflow's trigger form marks a param required unless its JSON-schema type allows null; OUs, regions and dry
    run may stay empty (empty = the config), so the form must accept them blank, and a blank run validates."""
    from airflow.sdk.definitions.param import ParamsDict

    from include.patch_compliance.orchestration.params import run_params

    params = run_params(with_operation=True)
    for name in ("ou_ids", "regions", "dry_run"):
        assert "null" in params[name].schema["type"], name
    assert params["operation"].schema.get("enum") == ["Scan", "Install"]  # a choice, always given
    blank = ParamsDict(run_params(with_operation=True))
    for name in ("ou_ids", "regions", "dry_run"):
        blank[name] = None
    blank.validate()


def test_final_gate_waits_on_the_waves_and_the_publish_steps(scan_dag):
    gate = scan_dag.get_task("final_gate")
    assert {"report", "security_hub"} <= gate.upstream_task_ids
    # The alert runs after Security Hub whatever happened (all_done), beside the gate: both are leaves, so a
    # failed gate still fails the DAG run (a succeeding task after it would not).
    alert = scan_dag.get_task("alert")
    assert alert.upstream_task_ids == {"security_hub"} and alert.trigger_rule == "all_done"
    assert sorted(t.task_id for t in scan_dag.leaves) == ["alert", "final_gate"]
    assert any(t.endswith(".shards.collect") for t in gate.upstream_task_ids)
    assert scan_dag.get_task("report").trigger_rule == "all_done"
