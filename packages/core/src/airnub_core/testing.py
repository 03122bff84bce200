"""Pytest support: one fast Prefect API per test session (a pytest11 plugin).

``prefect_test_harness`` builds and migrates a fresh database on every session.
Here a department's ``conftest.py`` calls :func:`start_session_api` when it is
imported, so the server (a copy of the cached, migrated template database)
boots on the second core while pytest imports the tests. Flow tests request
the ``prefect_api`` fixture, which waits for it and switches off the flow
heartbeat. Nothing here imports prefect before ``PREFECT_API_URL`` is set.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from airnub_core import local_api

_session: local_api.LocalAPI | None = None


def start_session_api() -> None:
    """Start the session's API now, unless one is running or ``PREFECT_API_URL`` is set."""
    global _session
    if _session is not None or os.environ.get("PREFECT_API_URL"):
        return
    scratch = Path(tempfile.mkdtemp(prefix="airnub-tests-"))
    os.environ["PREFECT_HOME"] = str(scratch / "home")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    _session = local_api.start(db=scratch / "prefect.db")
    os.environ["PREFECT_API_URL"] = _session.url

    def stop() -> None:
        local_api.drain_client_workers()
        assert _session is not None
        _session.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    atexit.register(stop)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The URL of a healthy Prefect API, with the flow heartbeat off for the session."""
    start_session_api()
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    if _session is not None:
        _session.wait_healthy()
    updates = {
        PREFECT_API_URL: os.environ["PREFECT_API_URL"],
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
    }
    with temporary_settings(updates=updates):
        yield os.environ["PREFECT_API_URL"]
    local_api.drain_client_workers()


@pytest.fixture(autouse=True)
def airnub_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes its outputs under its own temporary data root."""
    root = tmp_path / "data"
    monkeypatch.setenv("AIRNUB_DATA_ROOT", str(root))
    return root
