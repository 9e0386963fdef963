"""The remediation DAG's shape: the canary wave then the config's waves in order, each gate after the previous wave,
the tasks after the waves running whatever the waves did, a dry run by default, and parsing that never fails."""

import os
import subprocess
import sys

import pytest
import yaml

from tests.dags.test_dag_integrity import ROOT


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags")).dags["patch_compliance_remediate"]


def test_canary_then_config_waves_in_order_then_verify_and_publish(dag):
    from include.patch_compliance.config import load_config

    waves = ["canary_nodes", *(w.name for w in load_config().waves)]
    assert dag.get_task("wave_canary_nodes.gate").upstream_task_ids == {"proceed", "select"}
    for before, after in zip(waves, waves[1:], strict=False):
        assert f"wave_{before}.shards.wait" in dag.get_task(f"wave_{after}.gate").upstream_task_ids
    assert f"wave_{waves[-1]}.shards.wait" in dag.get_task("rescan").upstream_task_ids
    chain = ["rescan", "rescan_wait", "verify", "report", "security_hub", "final_gate"]
    for before, after in zip(chain, chain[1:], strict=False):
        assert before in dag.get_task(after).upstream_task_ids
    for task_id in ("rescan", "verify", "report", "security_hub"):
        assert dag.get_task(task_id).trigger_rule == "all_done", task_id  # held waves are skipped, not failed
    # a broken wave step fails the run even though the report went out
    assert {f"wave_{w}.shards.wait" for w in waves} <= dag.get_task("final_gate").upstream_task_ids
    assert dag.max_active_runs == 1 and dag.schedule is None  # manual unless remediation.schedule is set


def test_install_tasks_are_mapped_labelled_and_send_install(dag):
    from include.patch_compliance.orchestration.remediation import RemediationInstallOperator

    installs = [t for t in dag.tasks if t.task_id.endswith(".shards.install")]
    assert installs and all(isinstance(t, RemediationInstallOperator) and t.operation == "Install" for t in installs)
    assert all(t.map_index_template == "{{ pc_label }}" for t in dag.tasks if ".shards." in t.task_id)


def test_params_default_to_a_dry_run_and_validate():
    from airflow.sdk.definitions.param import ParamsDict

    from include.patch_compliance.orchestration.params import remediation_params

    params = ParamsDict(remediation_params())
    params.validate()
    assert params["dry_run"] is True
    for key, value in (
        ("min_severity", "SEVERE"),
        ("accounts", ["123"]),
        ("cve_ids", ["CVE-1"]),
        ("max_nodes", 0),
        ("tags", {"Patch": "true"}),
    ):
        candidate = ParamsDict(remediation_params())
        with pytest.raises(Exception, match=key):
            candidate[key] = value
            candidate.validate()


def test_a_reserved_wave_name_in_the_config_does_not_break_parsing(tmp_path):
    data = yaml.safe_load((ROOT / "sandbox" / "fleet-config.yaml").read_text())
    data["waves"].append({"name": "canary_nodes", "ous": ["Root/Sandbox"]})
    data["remediation"] = {"schedule": "30 4 * * 6"}
    path = tmp_path / "reserved.yaml"
    path.write_text(yaml.safe_dump(data))
    probe = (
        "import json, sys\nfrom airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag(dag_folder=sys.argv[1])\n"
        "dag = bag.dags['patch_compliance_remediate']\n"
        "print(json.dumps({'errors': list(bag.import_errors), 'schedule': str(dag.schedule)}))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATCH_COMPLIANCE_CONFIG": str(path)}
    out = subprocess.run([sys.executable, "-c", probe, str(ROOT / "dags")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    result = yaml.safe_load(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == [] and result["schedule"] == "30 4 * * 6"


def test_the_remediation_wiring_leaves_the_run_layer_for_task_execution():
    """Parsing the DAG file imports the wiring and the Airflow pieces, not the step bodies (pandas, boto3)."""
    probe = (
        "import json, sys\n"
        "import include.patch_compliance.orchestration.remediation_wiring\n"
        "import include.patch_compliance.orchestration.params\n"
        "names = ['include.patch_compliance.remediation_steps', 'include.patch_compliance.remediation_publish',\n"
        "         'include.patch_compliance.remediate.select', 'include.patch_compliance.publish.remediation']\n"
        "print(json.dumps([m for m in names if m in sys.modules]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert yaml.safe_load(out.stdout.strip().splitlines()[-1]) == []
