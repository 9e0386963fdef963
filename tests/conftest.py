"""Test-wide settings: no real AWS credentials or endpoints leak into tests, Airflow uses a throwaway home."""

import os
import tempfile
from pathlib import Path

# Records who called what in every emulator a test starts and checks it against deploy/iam (tests/deploy).
pytest_plugins = ["tests.deploy.recording"]

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="pc-airflow-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# The emulator's organization config; the product itself has no default file (include/patch_compliance/config.py).
os.environ.setdefault(
    "PATCH_COMPLIANCE_CONFIG", str(Path(__file__).resolve().parent.parent / "sandbox" / "fleet-config.yaml")
)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_SESSION_TOKEN"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)
