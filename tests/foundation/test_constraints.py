"""constraints.txt is the tested runtime environment: every requirements.txt pin at the same version, every
distribution they pull in at its installed version, nothing only the dev tools need, and exactly what
scripts/freeze_constraints.py writes from this venv."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

from scripts import freeze_constraints as freeze

ROOT = Path(__file__).resolve().parents[2]


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and name == canonicalize_name(name), f"not a canonical exact pin: {line!r}"
            assert name not in pins, f"{name} pinned twice"
            pins[name] = version
    return pins


def test_every_requirement_is_constrained_at_its_pinned_version():
    pins = constraints()
    for req in freeze.read_requirements(ROOT / "requirements.txt"):
        (spec,) = req.specifier
        assert spec.operator == "==", f"requirements.txt: {req} is not an exact pin"
        assert pins.get(canonicalize_name(req.name)) == spec.version, f"{req.name}: constraints.txt is out of date"


def test_no_dev_tool_or_dev_only_dependency_is_in_the_image_constraints():
    pins = constraints()
    runtime = freeze.closure(freeze.read_requirements(ROOT / "requirements.txt"))
    dev_roots = freeze.read_requirements(ROOT / "requirements-dev.txt")
    dev_only = set(freeze.closure(dev_roots)) - set(runtime)
    assert {canonicalize_name(r.name) for r in dev_roots} <= dev_only | set(runtime)
    assert not dev_only & set(pins), sorted(dev_only & set(pins))
    assert "moto" not in pins and "pytest" not in pins


def test_constraints_are_what_the_script_generates_from_this_venv():
    assert freeze.main(["--check"]) == 0, "run `.venv/bin/python scripts/freeze_constraints.py` and commit it"
    names = list(constraints())
    assert names == sorted(names)
