"""No Docker engine here: keep the Dockerfile honest against requirements.txt, constraints.txt and the tested
interpreter by reading it."""

import re
import sys
from pathlib import Path

from scripts.cluster import Settings, cluster_env
from scripts.cluster_spec import IMAGE_CONFIG_FILE

ROOT = Path(__file__).resolve().parents[2]


def _base_image(text: str) -> str:
    """The FROM line with the Dockerfile's ARG defaults filled in (what `docker build` with no args uses)."""
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    base = re.search(r"^FROM\s+(\S+)", text, re.M).group(1)
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], base)


def _requirements(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([\w.]+)", line)
            assert match, f"{name}: {line!r} is not an exact pin (name==version)"
            pins[match.group(1).split("[")[0].lower()] = match.group(2)
    return pins


def test_base_image_matches_the_pinned_airflow_and_the_python_the_tests_run_on():
    base = _base_image((ROOT / "Dockerfile").read_text())
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert base == f"apache/airflow:{_requirements('requirements.txt')['apache-airflow']}-python{python}"


def test_requirements_installed_with_the_tested_constraints_without_reresolving_airflow():
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements.txt constraints.txt /" in text
    assert re.search(
        r'pip install --no-cache-dir "apache-airflow==\$\{AIRFLOW_VERSION\}" -r /requirements.txt '
        r"--constraint /constraints.txt",
        text,
    )
    assert "requirements-dev" not in text


def test_image_reads_a_mounted_config_and_bakes_in_no_emulator_config():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^\s*PATCH_COMPLIANCE_CONFIG={re.escape(IMAGE_CONFIG_FILE)}\s*$", text, re.M)
    # the emulator's default config (what `make demo` wires) is inside a copied folder: the build context
    # must leave it out
    env, _ = cluster_env(Settings.from_env({}), {})
    emulator_config = Path(env["PATCH_COMPLIANCE_CONFIG"]).resolve().relative_to(ROOT).as_posix()
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    parts = Path(emulator_config).parts
    assert any("/".join(parts[:n]) in ignored for n in range(1, len(parts) + 1)), (
        f"add {emulator_config} (or a folder holding it) to .dockerignore"
    )
    assert not re.search(r"^COPY .*config", text, re.M)


def test_project_code_copied_but_not_the_emulator_or_tests():
    text = (ROOT / "Dockerfile").read_text()
    for folder in ("dags", "plugins", "include"):
        assert re.search(rf"^COPY .*{folder}/ /opt/airflow/{folder}/", text, re.M), folder
    assert "sandbox" not in text.split("\nFROM", 1)[1].replace("# ", "")
    assert "PYTHONPATH=/opt/airflow" in text


def test_every_runtime_requirement_is_an_exact_pin_with_the_stack_versions():
    pins = _requirements("requirements.txt")
    assert pins["apache-airflow"] == "3.3.2"
    assert pins["apache-airflow-providers-amazon"] == "9.39.0"
    assert pins["pandas"] == "3.1.1"
    assert {"pyarrow", "boto3", "pyyaml"} <= set(pins)
    dev = _requirements("requirements-dev.txt")
    assert dev["moto"] == "5.2.5"
    assert not set(pins) & set(dev), "a package pinned twice"


def test_runtime_imports_are_pinned():
    """Every third-party module the product imports is in requirements.txt (or comes with Airflow)."""
    pins = _requirements("requirements.txt")
    module_to_pin = {
        "yaml": "pyyaml",
        "pandas": "pandas",
        "pyarrow": "pyarrow",
        "boto3": "boto3",
        "botocore": "botocore",
        "pydantic": "pydantic",
        "jinja2": "jinja2",
        "fastapi": "fastapi",
    }
    imported = set()
    for path in list((ROOT / "include").rglob("*.py")) + list((ROOT / "plugins").rglob("*.py")):
        for match in re.finditer(r"^\s*(?:from|import)\s+([a-zA-Z_]\w*)", path.read_text(), re.M):
            imported.add(match.group(1))
    for module, pin in module_to_pin.items():
        if module in imported:
            assert pin in pins, f"{module} is imported by product code but {pin} is not pinned"
    assert "moto" not in imported and "sandbox" not in imported, "product code imports the emulator"
