"""The emulated organization fixture shared with the orchestration tests."""

from tests.orchestration.conftest import sandbox  # noqa: F401 - re-exported pytest fixture
