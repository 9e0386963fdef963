"""The parse-time layout (dag_layout.py): the same answers as the full config, validated in full once per config
content and code, never cached when invalid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from include.patch_compliance import config, dag_layout
from include.patch_compliance.config import ConfigError
from include.patch_compliance.dag_layout import DagLayout

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "sandbox" / "fleet-config.yaml"


@pytest.fixture
def loads(tmp_path, monkeypatch):
    """Count full validations; the cache lives in tmp_path."""
    monkeypatch.setenv(dag_layout.CACHE_ENV, str(tmp_path / "cache"))
    calls = []
    real = config.load_config

    def counting(path=None):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(config, "load_config", counting)
    return calls


def test_the_layout_is_the_configs(loads):
    cfg = config.parse_config(yaml.safe_load(FLEET.read_text()), str(FLEET))
    layout = dag_layout.dag_layout(FLEET)
    assert layout == DagLayout.from_config(cfg)
    assert [w["name"] for w in layout.waves] == ["canary", "infrastructure", "workloads"]
    assert layout.schedule == "0 3 * * *"
    assert (layout.bucket, layout.prefix) == (cfg.reports.bucket, cfg.reports.prefix)


def test_without_a_config_the_dags_parse_with_the_default_layout(loads, monkeypatch):
    monkeypatch.delenv("PATCH_COMPLIANCE_CONFIG", raising=False)
    assert dag_layout.dag_layout() == DagLayout()
    assert DagLayout().waves == [{"name": "all", "ous": ["*"], "parallel": False}] and DagLayout().schedule is None
    assert loads == []


def test_a_config_is_validated_once_per_content_then_read_from_the_cache(loads, tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_bytes(FLEET.read_bytes())
    first = dag_layout.dag_layout(path)
    assert dag_layout.dag_layout(path) == first and len(loads) == 1
    data = yaml.safe_load(FLEET.read_text())
    data["orchestration"]["schedule"] = "0 4 * * *"
    path.write_text(yaml.safe_dump(data))
    assert dag_layout.dag_layout(path).schedule == "0 4 * * *" and len(loads) == 2  # new content: validated again


def test_changed_validating_code_validates_again(loads, tmp_path, monkeypatch):
    path = tmp_path / "fleet.yaml"
    path.write_bytes(FLEET.read_bytes())
    dag_layout.dag_layout(path)
    code = tmp_path / "code"
    code.mkdir()
    for name in dag_layout._VALIDATING_CODE:
        (code / name).write_bytes((dag_layout._HERE / name).read_bytes())
    (code / "config.py").write_bytes((code / "config.py").read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(dag_layout, "_HERE", code)
    dag_layout.dag_layout(path)
    assert len(loads) == 2


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (": : :", "is not valid YAML"),
        (yaml.safe_dump({"regions": ["eu-west-1"], "reports": {"bucket": "192.168.1.1"}}), "reports.bucket"),
    ],
)
def test_an_invalid_config_raises_the_field_every_time_and_is_not_cached(loads, tmp_path, text, error):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for _ in range(2):
        with pytest.raises(ConfigError, match=error):
            dag_layout.dag_layout(path)
    assert len(loads) == 2
    assert not list((tmp_path / "cache").glob("*.json"))


def test_a_missing_file_names_it(loads, tmp_path):
    with pytest.raises(ConfigError, match="not found; set PATCH_COMPLIANCE_CONFIG"):
        dag_layout.dag_layout(tmp_path / "nope.yaml")


def test_an_unreadable_cache_entry_is_validated_again_and_rewritten(loads, tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_bytes(FLEET.read_bytes())
    layout = dag_layout.dag_layout(path)
    (entry,) = (tmp_path / "cache").glob("*.json")
    entry.write_text("{not json")
    assert dag_layout.dag_layout(path) == layout and len(loads) == 2
    assert dag_layout.dag_layout(path) == layout and len(loads) == 2
