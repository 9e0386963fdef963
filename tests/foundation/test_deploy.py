"""deploy/docker-compose.yaml and deploy/helm/values.yaml describe the cluster `make cluster` runs.

No Docker engine or Kubernetes exists here, so the files are read and compared with scripts/cluster_spec.py,
the description scripts/cluster.py starts its processes from (tests/cluster checks the running processes
against the same files). Same services, same settings and values, same image and build arguments.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from scripts import cluster_spec as spec
from scripts.cluster import DEFAULTS, Settings, cluster_env
from tests.cluster import deploy_files as files

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = [f"airflow-{c.name}" for c in spec.COMPONENTS]


def expected_compose_env() -> dict[str, str]:
    return {**spec.airflow_settings(spec.COMPOSE), **spec.SIMPLE_AUTH_SETTINGS}


def test_compose_has_the_clusters_components_backing_services_init_and_an_emulator_profile():
    services = files.services()
    assert set(services) == {
        *AIRFLOW_SERVICES,
        *spec.BACKING_SERVICES,
        spec.INIT_SERVICE,
        spec.EMULATOR_SERVICE,
        f"{spec.EMULATOR_SERVICE}-bucket",
    }
    with_profiles = {name for name, svc in services.items() if svc.get("profiles")}
    assert with_profiles == {spec.EMULATOR_SERVICE, f"{spec.EMULATOR_SERVICE}-bucket"}
    assert all(services[name]["profiles"] == ["emulator"] for name in with_profiles)


@pytest.mark.parametrize("component", spec.COMPONENTS, ids=lambda c: c.name)
def test_compose_component_command_replicas_and_start_order(component):
    service = files.services()[f"airflow-{component.name}"]
    assert shlex.split(service["command"]) == list(component.args)
    assert service.get("deploy", {}).get("replicas", 1) == component.replicas
    depends = service["depends_on"]
    assert depends[spec.INIT_SERVICE]["condition"] == "service_completed_successfully"
    assert all(depends[name]["condition"] == "service_healthy" for name in spec.BACKING_SERVICES)


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, spec.INIT_SERVICE])
def test_compose_environment_is_the_clusters_with_compose_endpoints(name):
    env = files.environment(files.services()[name])
    expected = expected_compose_env()
    assert {k: env.get(k) for k in expected} == expected
    for secret in spec.SHARED_SECRETS:
        assert re.fullmatch(r"<required \w+>", env[secret]), f"{name}: {secret} must be a required variable"


def test_local_cluster_environment_has_the_same_names_and_portable_values():
    env, _ = cluster_env(Settings.from_env({}), {k: "x" for k in spec.SHARED_SECRETS})
    compose_env = files.environment(files.services()["airflow-scheduler"])
    for key, value in spec.PORTABLE_SETTINGS.items():
        assert env[key] == compose_env[key] == value, key
    for key in (*spec.placed_settings(spec.COMPOSE), *spec.SHARED_SECRETS, *spec.SIMPLE_AUTH_SETTINGS):
        assert key in env and key in compose_env, key


def test_compose_builds_the_project_image_with_the_tested_airflow_and_python():
    for name in (*AIRFLOW_SERVICES, spec.INIT_SERVICE):
        service = files.services()[name]
        assert service["build"] == {"context": "..", "dockerfile": "Dockerfile", "args": spec.image_build_args()}
        assert files.interpolate(service["image"]) == f"{spec.IMAGE_REPOSITORY}:{spec.image_tag()}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.M))
    assert defaults == spec.image_build_args()


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, spec.INIT_SERVICE])
def test_compose_mounts_the_fleet_config_where_patch_compliance_config_points(name):
    service = files.services()[name]
    assert files.environment(service)["PATCH_COMPLIANCE_CONFIG"] == spec.IMAGE_CONFIG_FILE
    assert files.mounts(service)[spec.IMAGE_CONFIG_FILE] == files.required("PATCH_COMPLIANCE_CONFIG_FILE")
    assert any(v.endswith(f":{spec.IMAGE_CONFIG_FILE}:ro") for v in service["volumes"])


def test_compose_init_runs_the_clusters_init_commands():
    script = files.services()[spec.INIT_SERVICE]["command"][-1]
    for cmd in spec.init_commands("/tmp/connections.json"):
        assert shlex.join(cmd) in script, shlex.join(cmd)
    # the document it writes is the one the local cluster imports
    template = re.search(r"printf '(\{\"aws_default\".*?)' ", script).group(1)
    extra = {"region_name": "us-east-1"}
    assert json.loads(template.replace("%s", json.dumps(extra))) == json.loads(spec.connection_document(extra))


def test_emulator_profile_demo_uses_the_emulators_own_config_and_endpoint():
    services = files.services()
    command = services[spec.EMULATOR_SERVICE]["command"]
    assert command[:4] == ["python", "-m", "sandbox", "serve"]
    port = command[command.index("--port") + 1]
    demo = files.env_file(ROOT / "deploy" / "emulator.env")
    assert json.loads(demo["AWS_CONN_EXTRA"])["endpoint_url"] == f"http://{spec.EMULATOR_SERVICE}:{port}"
    # the config the emulator demo mounts is the one `make demo` / `make cluster` use with the emulator
    env, _ = cluster_env(Settings.from_env({}), {})
    local_default = Path(env["PATCH_COMPLIANCE_CONFIG"]).resolve()
    assert (ROOT / "deploy" / demo["PATCH_COMPLIANCE_CONFIG_FILE"]).resolve() == local_default
    import yaml

    assert demo["REPORTS_BUCKET"] == yaml.safe_load(local_default.read_text())["reports"]["bucket"]
    assert "${REPORTS_BUCKET" in services[f"{spec.EMULATOR_SERVICE}-bucket"]["command"][-1]


def test_env_example_lists_every_required_variable():
    text = files.COMPOSE.read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = files.env_file(ROOT / "deploy" / ".env.example")
    assert required <= set(example), required - set(example)


def test_helm_values_name_the_same_image_executor_and_settings():
    values = files.helm_values()
    compose_env = files.environment(files.services()["airflow-scheduler"])
    assert values["images"]["airflow"]["repository"] == values["defaultAirflowRepository"] == spec.IMAGE_REPOSITORY
    assert values["images"]["airflow"]["tag"] == values["defaultAirflowTag"] == spec.image_tag()
    assert values["airflowVersion"] == spec.image_build_args()["AIRFLOW_VERSION"]
    assert (
        values["executor"]
        == spec.PORTABLE_SETTINGS["AIRFLOW__CORE__EXECUTOR"]
        == compose_env["AIRFLOW__CORE__EXECUTOR"]
    )
    env = {item["name"]: item["value"] for item in values["env"]}
    expected = {k: v for k, v in spec.PORTABLE_SETTINGS.items() if k != "AIRFLOW__CORE__EXECUTOR"}
    expected["PATCH_COMPLIANCE_CONFIG"] = spec.IMAGE_CONFIG_FILE
    assert env == expected
    assert all(compose_env[k] == v for k, v in env.items())


def test_helm_values_run_every_component_with_the_config_the_connection_and_shared_secrets():
    values = files.helm_values()
    for component in spec.COMPONENTS:
        assert component.helm_key in values, component.helm_key
    assert values["triggerer"]["enabled"] is True and values["dagProcessor"]["enabled"] is True
    worker = next(c for c in spec.COMPONENTS if c.name == "worker")
    assert values["workers"]["celery"]["replicas"] == worker.replicas
    (mount,) = [m for m in values["volumeMounts"] if m["mountPath"] == spec.IMAGE_CONFIG_FILE]
    (volume,) = [v for v in values["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] and mount["readOnly"] is True
    assert mount["subPath"] == Path(spec.IMAGE_CONFIG_FILE).name
    secrets = {s["envName"]: s for s in values["secret"]}
    assert f"AIRFLOW_CONN_{spec.CONNECTION_ID.upper()}" in secrets
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert values[key], key
    assert values["data"]["metadataSecretName"]


@pytest.mark.parametrize("section", ["workers", "triggerer", "apiServer"])
def test_helm_pods_that_call_aws_run_as_the_hub_role(section):
    annotations = files.helm_values()[section]["serviceAccount"]["annotations"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/\S+", annotations["eks.amazonaws.com/role-arn"])


def test_deploy_doc_covers_every_component_setting_and_platform():
    doc = (ROOT / "docs" / "deploy.md").read_text()
    for name in (*AIRFLOW_SERVICES, *spec.BACKING_SERVICES, spec.INIT_SERVICE):
        assert f"`{name}`" in doc, name
    for key in (*spec.PORTABLE_SETTINGS, *spec.SHARED_SECRETS, "PATCH_COMPLIANCE_CONFIG", spec.IMAGE_CONFIG_FILE):
        assert key in doc, key
    for topic in ("MWAA", "plugins.zip", "requirements.txt", "Astro Runtime", "KubernetesExecutor", "1,500"):
        assert topic in doc, topic


def test_readme_documents_the_cluster_ports_and_login():
    readme = (ROOT / "README.md").read_text()
    assert "make cluster" in readme and "make cluster-down" in readme
    for name, default in DEFAULTS.items():
        if name.endswith("_PORT") or name == "CLUSTER_ADMIN_PASSWORD":
            assert f"`{name}`" in readme and default in readme, name
    assert "admin" in readme


def test_emulator_image_is_built_from_its_own_context_list_and_the_product_image_leaves_it_out():
    build = files.services()[spec.EMULATOR_SERVICE]["build"]
    context = (ROOT / "deploy" / build["context"]).resolve()  # compose paths are relative to the file
    dockerfile = context / build["dockerfile"]
    assert context == ROOT and dockerfile.exists()
    own = Path(f"{dockerfile}.dockerignore").read_text().splitlines()  # BuildKit: <Dockerfile>.dockerignore
    assert "*" in own and "!sandbox/" in own
    product = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"sandbox", "tests", "scripts"} <= set(product)
    assert build["args"]["PYTHON_VERSION"] == spec.image_build_args()["PYTHON_VERSION"]


def test_emulator_image_installs_the_projects_own_pins():
    dockerfile = (ROOT / "deploy" / "emulator.Dockerfile").read_text()
    greps = re.findall(r"grep (-i?E) '([^']+)' /tmp/pins/(\S+?)\)", dockerfile)
    assert {name for *_, name in greps} == {"requirements.txt", "requirements-dev.txt"}
    for flag, pattern, name in greps:
        lines = (ROOT / name).read_text().splitlines()
        found = [line for line in lines if re.search(pattern, line, re.I if "i" in flag else 0)]
        assert found, f"{pattern} matches nothing in {name}"
