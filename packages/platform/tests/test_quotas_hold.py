"""A quota holds on the session's real Prefect server: a department's burst never runs
more task runs at once than its task-runs limit, while a department without one is not
held; its work pool hands a polling worker no more flow runs than its flow-runs limit."""

import itertools
from pathlib import Path

import pytest
from airnub_core import conventions
from airnub_platform import deploy, quotas
from prefect.client.orchestration import get_client
from prefect.states import Scheduled

pytestmark = pytest.mark.usefixtures("prefect_api")
_made = itertools.count(1)
BURST = 6  # task runs a flow starts at once

# A category flow that starts BURST tasks at once. Each task, while it runs, keeps a file
# in a shared folder and records the most files it saw there: how many of the burst ran
# at the same moment. It waits (up to `patience` seconds) for `enough` to be running, so
# an unheld burst shows its width, and a held one cannot get there.
BURST_FLOW = """
import os
import time
from pathlib import Path

from airnub_core.flows import category_flow
from prefect import task


@task
def hold(folder: str, index: int, enough: int, patience: float) -> int:
    running = Path(folder)
    mine = running / str(index)
    mine.touch()
    try:
        peak, deadline = 0, time.monotonic() + patience
        while peak < enough and time.monotonic() < deadline:
            peak = max(peak, len(os.listdir(running)))
            time.sleep(0.02)
        return peak
    finally:
        mine.unlink()


@category_flow
def make_burst(overrides: dict | None = None) -> dict:
    options = overrides or {}
    futures = [
        hold.submit(options["folder"], index, options["enough"], options["patience"])
        for index in range(options["burst"])
    ]
    return {"peaks": [future.result() for future in futures]}
"""


def burst_department(make_department, limits: str) -> str:
    """A department whose ingestion category ``burst`` is the flow above."""
    name = f"dept_burst_{next(_made)}"
    folder = make_department(name, {"ingestion": ["burst"]})
    flow = f"make_burst{conventions.flow_suffix(name)}.py"
    (folder / "src" / name / "ingestion" / "burst" / flow).write_text(BURST_FLOW)
    (folder / "pyproject.toml").write_text(f"[tool.airnub.limits]\n{limits}\n")
    return name


def run_burst(department: str, folder: Path, enough: int, patience: float) -> list[int]:
    import importlib

    module = importlib.import_module(
        f"{department}.ingestion.burst.make_burst{conventions.flow_suffix(department)}"
    )
    folder.mkdir()
    options = {"folder": str(folder), "enough": enough, "patience": patience, "burst": BURST}
    return module.make_burst(overrides=options)["peaks"]


def test_a_burst_never_runs_more_tasks_at_once_than_the_departments_task_limit(
    make_department, tmp_path
):
    held = burst_department(make_department, "task-runs = 2")
    free = burst_department(make_department, "")
    with get_client(sync_client=True) as client:
        applied = quotas.apply(client, [held, free])
    assert [(c.department, c.action, c.kind) for c in applied] == [(held, "create", "task-runs")]
    try:
        # Each held task waits a while for a third to join it: none ever does.
        peaks = run_burst(held, tmp_path / "held", enough=3, patience=1.0)
        assert len(peaks) == BURST
        assert max(peaks) <= 2, peaks
        # Without a limit the same burst runs wider than 2 (each waits, up to a deadline,
        # for a third: the default thread pool runs them side by side).
        free_peaks = run_burst(free, tmp_path / "free", enough=3, patience=60.0)
        assert max(free_peaks) >= 3, free_peaks
    finally:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(quotas.tag_limit_name(held))


def scheduled_runs_handed_out(department: str, runs: int) -> int:
    """Schedule ``runs`` runs of the department's ingestion deployment now, and count
    those its work pool hands a polling worker (what `prefect worker` asks for)."""
    with get_client(sync_client=True) as client:
        deployment = next(
            d
            for key, d in deploy.existing_deployments(client, department).items()
            if key.startswith("Ingestion Flow")
        )
        for _ in range(runs):
            client.create_flow_run_from_deployment(deployment.id, state=Scheduled())
        handed = client.get_scheduled_flow_runs_for_work_pool(
            conventions.work_pool_name(department)
        )
    return len(handed)


def test_a_work_pool_hands_out_no_more_runs_than_the_departments_flow_run_limit(make_department):
    held = burst_department(make_department, "flow-runs = 1")
    free = burst_department(make_department, "")
    with get_client(sync_client=True) as client:
        for department in (held, free):
            deploy.deploy(client, department, "local")
        applied = quotas.apply(client, [held, free])
        assert [(c.department, c.action) for c in applied] == [(held, "create")]
        assert client.read_work_pool(conventions.work_pool_name(held)).concurrency_limit == 1
    assert scheduled_runs_handed_out(held, 3) == 1
    assert scheduled_runs_handed_out(free, 3) == 3
