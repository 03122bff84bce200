"""A flow-run quota holds with a real process worker: `prefect worker start` on a
department's pool with flow-runs = 1 runs its scheduled runs one at a time, while the same
runs on a pool without a limit run side by side. Against the session's real server."""

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airnub_core import conventions
from airnub_platform import deploy, quotas
from airnub_platform.testing import clean_env

pytestmark = pytest.mark.usefixtures("prefect_api")
_made = itertools.count(1)
RUNS = 2  # enough to show two never run together
DEADLINE = 300  # seconds for every run to end: a hard stop, not a measure

# A category flow that keeps a file in $QUOTA_TEST_RUNNING while it runs and records
# the most it saw there at once, waiting (up to $QUOTA_TEST_PATIENCE s) for a second run.
HOLD_FLOW = """
import os
import time
import uuid
from pathlib import Path

from airnub_core.flows import category_flow


@category_flow
def make_hold(overrides: dict | None = None) -> dict:
    running = Path(os.environ["QUOTA_TEST_RUNNING"])
    mine = running / uuid.uuid4().hex
    mine.touch()
    try:
        peak, deadline = 0, time.monotonic() + float(os.environ["QUOTA_TEST_PATIENCE"])
        while peak < 2 and time.monotonic() < deadline:
            peak = max(peak, len(os.listdir(running)))
            time.sleep(0.05)
    finally:
        mine.unlink()
    (running.parent / "peaks" / mine.name).write_text(str(peak))
    return {"outputs": []}
"""


def hold_department(make_department, limits: str) -> tuple[str, Path]:
    """A department whose only category is the flow above; its name and src folder."""
    name = f"dept_pool_quota_{next(_made)}"
    folder = make_department(name, {"ingestion": ["hold"]})
    flow = f"make_hold{conventions.flow_suffix(name)}.py"
    (folder / "src" / name / "ingestion" / "hold" / flow).write_text(HOLD_FLOW)
    (folder / "pyproject.toml").write_text(f"[tool.airnub.limits]\n{limits}\n")
    return name, folder / "src"


def start_worker(department, src, url, scratch, patience):
    for folder in ("running", "peaks"):
        (scratch / folder).mkdir(parents=True)
    env = clean_env(
        PREFECT_API_URL=url, PREFECT_HOME=str(scratch / "home"), PYTHONPATH=str(src),
        PREFECT_WORKER_QUERY_SECONDS="1", AIRNUB_DATA_ROOT=str(scratch / "data"),
        QUOTA_TEST_RUNNING=str(scratch / "running"), QUOTA_TEST_PATIENCE=str(patience),
    )  # fmt: skip
    prefect = Path(sys.executable).with_name("prefect")
    pool = conventions.work_pool_name(department)
    log = (scratch / "worker.log").open("w")
    return subprocess.Popen(
        [prefect, "worker", "start", "--pool", pool, "--type", "process"], env=env,
        cwd=scratch, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop(worker):
    worker.send_signal(signal.SIGINT)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=30)


def schedule(client, department):
    deployment = next(
        d
        for key, d in deploy.existing_deployments(client, department).items()
        if key.startswith("Ingestion Flow")
    )
    return [client.create_flow_run_from_deployment(deployment.id).id for _ in range(RUNS)]


def wait_for_the_end(client, run_ids, workers, logs):
    deadline = time.monotonic() + DEADLINE
    while True:
        states = [client.read_flow_run(run_id).state for run_id in run_ids]
        if all(state is not None and state.is_final() for state in states):
            return [state.type.value for state in states if state is not None]
        for worker, log in zip(workers, logs, strict=True):
            assert worker.poll() is None, log.read_text()[-3000:]
        if time.monotonic() > deadline:
            pytest.fail(f"runs not ended within {DEADLINE} s: {states}")
        time.sleep(0.5)


def test_a_pool_with_flow_runs_1_runs_its_runs_one_at_a_time(make_department, tmp_path):
    from prefect.client.orchestration import get_client

    held, held_src = hold_department(make_department, "flow-runs = 1")
    free, free_src = hold_department(make_department, "")
    url = os.environ["PREFECT_API_URL"]
    with get_client(sync_client=True) as client:
        for department in (held, free):
            deploy.deploy(client, department, "local")
        assert [c.department for c in quotas.apply(client, [held, free])] == [held]
        run_ids = schedule(client, held) + schedule(client, free)
        workers = [
            # a held run waits a while for a second one to join it: none ever does
            start_worker(held, held_src, url, tmp_path / "held", patience=2),
            # the free runs each wait, up to a deadline, for a second: they run together
            start_worker(free, free_src, url, tmp_path / "free", patience=60),
        ]
        logs = [tmp_path / "held" / "worker.log", tmp_path / "free" / "worker.log"]
        try:
            ended = wait_for_the_end(client, run_ids, workers, logs)
        finally:
            for worker in workers:
                stop(worker)
    assert ended == ["COMPLETED"] * (2 * RUNS), logs[0].read_text()[-3000:]
    held_peaks = [int(p.read_text()) for p in (tmp_path / "held" / "peaks").iterdir()]
    free_peaks = [int(p.read_text()) for p in (tmp_path / "free" / "peaks").iterdir()]
    assert len(held_peaks) == len(free_peaks) == RUNS
    assert max(held_peaks) == 1, held_peaks
    assert max(free_peaks) >= 2, free_peaks
