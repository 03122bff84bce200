"""Against a running server (``airnub dev``'s, reached through PREFECT_API_URL), a stage's
categories run together: each category waits, inside its task, until every category of
the stage has started. Run one after another, the first would wait alone and fail with
its deadline error; the server's own timestamps must show every category RUNNING before
any other COMPLETED."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from airnub_platform import dev, local_api, runner
from airnub_platform.client_speedups import local_run_settings

CATEGORIES = ["north", "south", "east", "west"]
DEADLINE_SECONDS = 120  # the barrier's deadline: a stage that runs them apart fails with it

BARRIER_CATEGORY = '''
"""Waits in its task until every category of the stage has started (a file each)."""

import time
from pathlib import Path

from airnub_core.config import Settings
from airnub_core.flows import category_flow, settings_for
from prefect import task


class BarrierSettings(Settings):
    message: str
    barrier: str = ""
    parties: int = 0
    deadline_seconds: float = 120


@task
def meet(name: str, folder: str, parties: int, deadline_seconds: float) -> None:
    (Path(folder) / name).touch()
    deadline = time.monotonic() + deadline_seconds
    while len(list(Path(folder).iterdir())) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: the other categories did not start with it")
        time.sleep(0.05)


@category_flow
def {action}(overrides: dict | None = None) -> dict:
    settings = settings_for(BarrierSettings, __name__, overrides)
    meet("{name}", settings.barrier, settings.parties, settings.deadline_seconds)
    return {{"outputs": []}}
'''


@pytest.fixture(scope="module")
def running_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``airnub dev``'s server (``dev.start_server``) on a free port and a scratch home,
    this process's client pointed at it as at any configured PREFECT_API_URL."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("dev-home")
    port = local_api.free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = dev.platform_env(url, f"sqlite+aiosqlite:///{home / 'airnub-dev.db'}")
    env["PREFECT_HOME"] = str(home)
    server = dev.start_server(port, env, home / "server.log")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PREFECT_API_URL", url)
            with temporary_settings(updates={PREFECT_API_URL: url, **local_run_settings()}):
                yield url
            local_api.drain_client_workers()
    finally:
        dev.stop_processes([server.pid])
        server.wait(timeout=30)


def barrier_department(make_department, department: str) -> Path:
    folder = make_department(department, {"ingestion": CATEGORIES})
    for name in CATEGORIES:
        action = f"make_{name}"
        module = folder / "src" / department / "ingestion" / name / f"{action}_flow_{department}.py"
        module.write_text(BARRIER_CATEGORY.format(action=action, name=name))
    return folder


def test_a_stage_on_a_running_server_starts_its_categories_together(
    running_server, make_department, tmp_path
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    barrier_department(make_department, "dept_meeting")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    meet = {"barrier": str(barrier), "parties": len(CATEGORIES),
            "deadline_seconds": DEADLINE_SECONDS}  # fmt: skip
    stage = runner.stage_flow_for("dept_meeting", "ingestion")

    state = stage(overrides=dict.fromkeys(CATEGORIES, meet), return_state=True)

    assert state.is_completed(), state.message
    assert sorted(path.name for path in barrier.iterdir()) == sorted(CATEGORIES)
    with get_client(sync_client=True) as client:
        parent = FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])
        categories = client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=parent))
    assert len(categories) == len(CATEGORIES)
    last_start = max(run.start_time for run in categories if run.start_time)
    first_end = min(run.end_time for run in categories if run.end_time)
    assert last_start < first_end  # every category RUNNING before any COMPLETED


def test_a_category_that_meets_no_one_fails_with_its_deadline(
    running_server, make_department, tmp_path
):
    barrier_department(make_department, "dept_alone")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    # Waiting for a party that never comes: the category fails with its own deadline error,
    # the stage reports it, and the run returns (no hang).
    alone = {"barrier": str(barrier), "parties": 2, "deadline_seconds": 1}
    stage = runner.stage_flow_for("dept_alone", "ingestion")

    state = stage(categories=["north"], overrides={"north": alone}, return_state=True)

    assert state.is_failed()
    assert "north: the other categories did not start with it" in str(
        state.result(raise_on_failure=False)
    )
