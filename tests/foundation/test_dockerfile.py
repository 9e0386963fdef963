"""No Docker engine here: keep the Dockerfile honest against requirements.txt by reading it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _requirements(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([\w.]+)", line)
            assert match, f"{name}: {line!r} is not an exact pin (name==version)"
            pins[match.group(1).split("[")[0].lower()] = match.group(2)
    return pins


def test_base_image_matches_the_pinned_airflow_and_a_pinned_python():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.M).group(1)
    assert base == f"apache/airflow:{_requirements('requirements.txt')['apache-airflow']}-python3.12"


def test_requirements_installed_without_reresolving_airflow():
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements.txt /requirements.txt" in text
    assert re.search(r'pip install --no-cache-dir "apache-airflow==\$\{AIRFLOW_VERSION\}" -r /requirements.txt', text)
    assert "requirements-dev" not in text


def test_project_code_copied_but_not_the_emulator_or_tests():
    text = (ROOT / "Dockerfile").read_text()
    for folder in ("dags", "plugins", "include"):
        assert re.search(rf"^COPY .*{folder}/ /opt/airflow/{folder}/", text, re.M), folder
    assert "sandbox" not in text.split("FROM", 1)[1].replace("# ", "")
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
        "matplotlib": "matplotlib",
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
