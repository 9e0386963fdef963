"""pytest plugin: every emulator the tests start records who called what (sandbox/principals.py); this checks it.

Each sandbox writes its per-principal record when it stops, into $PATCH_SANDBOX_RECORD_DIR, which this plugin
points at a folder per test module. After each test's teardown the new records of that module are checked
against deploy/iam (tests/deploy/iam_check.py, check (a)): a call the templates do not allow fails that
teardown with a message naming the action, the principal and the template to edit. The emulator's own tests
(tests/sandbox/) call anything on purpose and are not checked. tests/deploy/test_policy_coverage.py, moved to
the end of the session, runs check (b) over everything recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from sandbox.server import RECORD_DIR_ENV

ROOT = Path(__file__).resolve().parents[2]
UNCHECKED_DIRS = ("tests/sandbox/",)
COVERAGE_TEST = "tests/deploy/test_policy_coverage.py"
_state: dict = {}


def record_root() -> Path:
    return _state["root"]


def session_is_complete() -> tuple[bool, str]:
    """Whether this session ran the whole suite, so that "no call needed it" means what it says."""
    return _state.get("complete", False), _state.get("why_partial", "")


def module_dir(nodeid: str) -> Path:
    module = nodeid.split("::", 1)[0]
    folder = "unchecked" if module.startswith(UNCHECKED_DIRS) else "checked"
    return record_root() / folder / re.sub(r"[^\w.-]", "_", module)


def recorded(folder: str = "checked") -> dict[str, list[dict]]:
    """Principals recorded per test module (the module's path as key)."""
    out: dict[str, list[dict]] = {}
    for path in sorted((record_root() / folder).glob("*/principals-*.json")):
        module = (path.parent / "module.txt").read_text()
        out.setdefault(module, []).extend(json.loads(path.read_text())["principals"])
    return out


def pytest_configure(config: pytest.Config) -> None:
    _state["root"] = Path(tempfile.mkdtemp(prefix="pc-principals-"))
    _state["seen"] = set()
    os.environ[RECORD_DIR_ENV] = str(_state["root"] / "unchecked" / "outside-tests")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_state.get("root", ""), ignore_errors=True)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.nodeid.endswith(".py"):  # a module, collected or skipped as a whole (no browser, say)
        _state.setdefault("modules", set()).add(report.nodeid)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    last = [i for i in items if i.nodeid.startswith(COVERAGE_TEST)]
    items[:] = [i for i in items if not i.nodeid.startswith(COVERAGE_TEST)] + last
    collected = _state.get("modules", set()) | {i.nodeid.split("::", 1)[0] for i in items}
    everything = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")}
    missing = sorted(everything - collected)
    if hasattr(config, "workerinput"):
        _state["why_partial"] = "tests run under pytest-xdist: each worker sees only its own share"
    elif missing:
        _state["why_partial"] = f"{len(missing)} test file(s) not collected, e.g. {missing[:3]}"
    _state["complete"] = "why_partial" not in _state


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        _state["complete"] = False
        _state["why_partial"] = f"{len(items)} test(s) deselected (-k/-m/--lf)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    before = os.environ.get(RECORD_DIR_ENV)
    folder = module_dir(item.nodeid)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "module.txt").write_text(item.nodeid.split("::", 1)[0])
    os.environ[RECORD_DIR_ENV] = str(folder)
    try:
        return (yield)
    finally:
        if before is None:
            os.environ.pop(RECORD_DIR_ENV, None)
        else:
            os.environ[RECORD_DIR_ENV] = before


def check_new_records(folder: Path, module: str, seen: set[Path]) -> None:
    """Check (a) on the records in ``folder`` not seen yet; raise AssertionError listing what is not allowed."""
    from tests.deploy.iam_check import calls_from_report, violations

    fresh = [p for p in sorted(folder.glob("principals-*.json")) if p not in seen]
    seen.update(fresh)
    calls = [c for p in fresh for c in calls_from_report(json.loads(p.read_text())["principals"], module)]
    problems = violations(calls)
    if problems:
        lines = "\n".join(f"  - {v}" for v in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise AssertionError(
            f"least privilege: {len(problems)} call(s) recorded by the emulator in {module} are not allowed by "
            f"the deploy/iam templates (tests/deploy/iam_check.py):\n{lines}{more}"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    result = yield
    folder = module_dir(item.nodeid)
    if folder.parent.name == "checked" and folder.is_dir():
        check_new_records(folder, item.nodeid.split("::", 1)[0], _state["seen"])
    return result
