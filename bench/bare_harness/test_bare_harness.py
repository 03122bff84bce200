"""The baseline: a bare session that opens prefect_test_harness around one trivial flow."""

import pytest
from prefect import flow
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def harness():
    with prefect_test_harness(server_startup_timeout=None):  # the setting, not 30 s
        yield


@flow
def trivial():
    return 1


def test_trivial():
    assert trivial() == 1
