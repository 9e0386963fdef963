"""The type checker is clean on include/ (the same check `make lint` runs, configured in pyproject.toml), so the
contracts between steps stay checked in CI too."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_is_clean_on_include(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(ROOT)
    out, err, status = api.run(["--cache-dir", str(tmp_path / "mypy-cache")])
    assert status == 0, out + err
