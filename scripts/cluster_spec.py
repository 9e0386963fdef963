"""THE description of the distributed (CeleryExecutor) deployment.

`make cluster` (scripts/cluster.py) starts exactly these components with exactly these settings, and the tests
compare deploy/docker-compose.yaml and deploy/helm/values.yaml against this module, so the files users deploy
from name the same services, environment variables, values and image build arguments as the cluster that the
test suite really ran. Where a value depends on where a service lives (host names, ports, the config path), it
is built from an :class:`Endpoints`; everything else is the same everywhere.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib.metadata import version

# The metadata DB account. The local cluster and the compose file use these; Helm takes the URL from a Secret.
DB_USER = DB_PASSWORD = DB_NAME = "airflow"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# Where the image expects the fleet config: a mounted file (compose) or a ConfigMap (Helm). The Dockerfile sets
# PATCH_COMPLIANCE_CONFIG to this path and bakes no config in.
IMAGE_CONFIG_FILE = "/opt/airflow/config/patch-compliance.yaml"
CONNECTION_ID = "aws_default"
DAG_ID = "patch_compliance_scan"

# Secrets every component must share (the task JWTs, the log server JWT, encrypted connections): generated once
# per local cluster, required variables in compose, Secrets in Helm.
SHARED_SECRETS = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET")

# Same name and value in every deployment.
PORTABLE_SETTINGS: dict[str, str] = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    # A worker takes this many task processes; the waits are deferred, so they hold none while SSM works.
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
    # Redis redelivers an unacknowledged task after this many seconds: longer than any task (no task here
    # runs for hours; the long wait happens in the triggerer). Set explicitly, the scheduler warns otherwise.
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
}


# The local cluster and compose log in through Airflow's simple auth manager (users from the environment,
# passwords from a file). The Helm values keep the chart's default (FAB) auth manager: docs/deploy.md.
SIMPLE_AUTH_SETTINGS: dict[str, str] = {"AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER}


@dataclass(frozen=True)
class Endpoints:
    """Where the services of one deployment are reachable from the Airflow components."""

    postgres: str  # host:port
    redis: str  # host:port
    api_url: str  # the api-server's base URL, as the workers reach it
    config_file: str  # PATCH_COMPLIANCE_CONFIG


COMPOSE = Endpoints(
    postgres="postgres:5432",
    redis="redis:6379",
    api_url="http://airflow-apiserver:8080",
    config_file=IMAGE_CONFIG_FILE,
)


def placed_settings(at: Endpoints) -> dict[str, str]:
    """Settings whose names are fixed and whose values follow the deployment's endpoints."""
    db = f"{DB_USER}:{DB_PASSWORD}@{at.postgres}/{DB_NAME}"
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{db}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{at.redis}/0",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{at.api_url}/execution/",
        "PATCH_COMPLIANCE_CONFIG": at.config_file,
    }


def airflow_settings(at: Endpoints) -> dict[str, str]:
    """Everything but the secrets that every Airflow component of a deployment gets."""
    return {**PORTABLE_SETTINGS, **placed_settings(at)}


@dataclass(frozen=True)
class Component:
    """One long-running Airflow process kind: compose service ``airflow-<name>``, ``airflow <args...>``."""

    name: str
    args: tuple[str, ...]
    replicas: int = 1
    helm_key: str = ""  # its section in the official chart's values.yaml


COMPONENTS: tuple[Component, ...] = (
    Component("apiserver", ("api-server",), helm_key="apiServer"),
    Component("scheduler", ("scheduler",), helm_key="scheduler"),
    Component("dag-processor", ("dag-processor",), helm_key="dagProcessor"),
    Component("triggerer", ("triggerer",), helm_key="triggerer"),
    Component("worker", ("celery", "worker"), replicas=2, helm_key="workers"),
)
# Backing services (Debian packages locally, images in compose, managed services or chart sub-charts in Helm).
BACKING_SERVICES = ("postgres", "redis")
INIT_SERVICE = "airflow-init"
EMULATOR_SERVICE = "emulator"  # compose profile "emulator" only


def init_commands(connection_file: str) -> list[list[str]]:
    """What the init step runs before any component starts: the schema, then the AWS connection (idempotent:
    ``--overwrite`` replaces it on every start)."""
    return [
        ["airflow", "db", "migrate"],
        ["airflow", "connections", "import", "--overwrite", connection_file],
    ]


def connection_document(extra: dict) -> str:
    """The ``airflow connections import`` JSON for the hub account's AWS connection."""
    return json.dumps({CONNECTION_ID: {"conn_type": "aws", "extra": extra}}, indent=2, sort_keys=True)


def image_build_args() -> dict[str, str]:
    """The Dockerfile's build arguments: the Airflow and Python of the environment the tests ran in."""
    return {
        "AIRFLOW_VERSION": version("apache-airflow"),
        "PYTHON_VERSION": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


IMAGE_REPOSITORY = "patch-compliance"  # push it to your registry (ECR) and set that name in compose / Helm


def image_tag() -> str:
    args = image_build_args()
    return f"{args['AIRFLOW_VERSION']}-python{args['PYTHON_VERSION']}"
