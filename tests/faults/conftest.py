"""The fault suite: every test under tests/faults/ is a probe (marked ``fault_probe``), and the terminal summary
prints ``faults: N probes, N held`` whenever any probe ran. A probe is one test function (its parametrised cases
are the probe's inputs); it held when every case passed setup, call and teardown.

Probes added later in other files of this folder are marked and counted automatically.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_dags_e2e import world  # noqa: F401 - re-exported fixture: `airflow dags test` runs
from tests.orchestration.conftest import sandbox  # noqa: F401 - re-exported fixture: the emulated organization

MARKER = "fault_probe"
HERE = Path(__file__).resolve().parent
_outcomes: dict[str, bool] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a fault-suite probe, counted in the 'faults:' summary line")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(MARKER)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if MARKER not in report.keywords:
        return
    probe = report.nodeid.split("[", 1)[0]
    _outcomes[probe] = _outcomes.get(probe, True) and report.passed


def pytest_terminal_summary(terminalreporter) -> None:
    if _outcomes:
        held = sum(_outcomes.values())
        terminalreporter.write_line(f"faults: {len(_outcomes)} probes, {held} held")
