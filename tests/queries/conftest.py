"""The emulated organization of the orchestration tests, for the query tests."""

from tests.orchestration.conftest import sandbox  # noqa: F401 - the module-scoped emulator fixture
