"""A synthetic stage of 8 categories, each waiting 2 s on I/O: on the embedded API and on
a running server.

Times the stage flow after start-up (server healthy, modules imported) and compares it
with one category run alone, in the same process and on the same API. Variants:

- the embedded default (``airnub run`` without an API configured);
- a running server: ``prefect server start`` as ``airnub dev`` starts it
  (``dev.server_command``, UI and services on, its own SQLite file), reached through
  PREFECT_API_URL the way any configured API is;
- Prefect's defaults switched back on, one at a time, to show what each change buys: the
  flow heartbeat, and SQLite's connection pool.

"8 empty categories" is the same stage with nothing to wait for: its time is the fixed
cost of 8 subflows on that API (the floor), its server CPU read from /proc; a stage cannot
take less than that plus the 2 s wait. "start spread" is, per stage, the time between the
first and the last category's RUNNING (server timestamps): how far apart categories that
should start together start.
Usage: uv run python bench/stage_concurrency.py [REPEATS] [VARIANT ...]
VARIANT is a prefix of a row name (e.g. "embedded" "running"); default: every row.
"""

import importlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airnub_core import conventions
from airnub_platform import dev, local_api
from airnub_platform.runner import prefect_api
from airnub_platform.testing import write_department

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
CHOSEN = sys.argv[2:]
CATEGORIES = [f"source_{n}" for n in range(1, 9)]
WAIT = 2.0

scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-"))
os.environ["AIRNUB_DATA_ROOT"] = str(scratch / "data")
write_department(scratch, "dept_bench", {"ingestion": CATEGORIES})
sys.path.insert(0, str(scratch))
conventions.departments = lambda: {"dept_bench": "Bench"}  # not installed, so register it here
stage = importlib.import_module("dept_bench.ingestion_flow_dept_bench").ingestion_flow
one = importlib.import_module(
    "dept_bench.ingestion.source_1.make_source_1_flow_dept_bench"
).make_source_1
waits = {c: {"sleep_seconds": WAIT} for c in CATEGORIES}


@contextmanager
def embedded(name: str, single_connection: bool = True) -> Iterator[tuple[object, int]]:
    """The embedded API (what ``prefect_api`` is handed) and its server's PID."""
    os.environ[local_api.SINGLE_CONNECTION_ENV] = "1" if single_connection else "0"
    api = local_api.start(db=scratch / f"{name}.db")
    try:
        yield api, api.process.pid
    finally:
        api.stop()


@contextmanager
def running_server(name: str, single_connection: bool = True) -> Iterator[tuple[None, int]]:
    """``airnub dev``'s server on a free port and a scratch home; PREFECT_API_URL set.
    Without ``single_connection`` it is a plain ``prefect server start`` on SQLite."""
    os.environ[local_api.SINGLE_CONNECTION_ENV] = "1" if single_connection else "0"
    port = local_api.free_port()
    url = f"http://127.0.0.1:{port}/api"
    home = scratch / f"{name}-home"
    env = dev.platform_env(url, f"sqlite+aiosqlite:///{home / 'airnub-dev.db'}")
    env["PREFECT_HOME"] = str(home)
    process = dev.start_server(port, env, home / "server.log")
    os.environ["PREFECT_API_URL"] = url
    try:
        yield None, process.pid
    finally:
        del os.environ["PREFECT_API_URL"]
        dev.stop_processes([process.pid])
        process.wait(timeout=30)


def start_spread(state) -> float:
    """Seconds between the first and the last category subflow's start (server times)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    parent = state.state_details.flow_run_id
    runs_filter = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent]))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=runs_filter)
    starts = [run.start_time for run in runs if run.start_time is not None]
    assert len(starts) == len(CATEGORIES), f"{len(starts)} category runs started"
    return (max(starts) - min(starts)).total_seconds()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, heartbeat: bool, api) -> dict[str, list[float]]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    times: dict[str, list[float]] = {"stage": [], "alone": [], "spread": [], "empty": [],
                                     "server cpu": []}  # fmt: skip
    empty = {c: {"sleep_seconds": 0} for c in CATEGORIES}
    with api(name) as (local, server), prefect_api(local):  # type: ignore[arg-type]
        # prefect_api switches the heartbeat off; switch it back on for the baseline.
        beat = temporary_settings(
            updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30} if heartbeat else {}
        )
        with beat:
            stage(overrides={"source_1": {"sleep_seconds": 0}})  # warm-up, not timed
            for _ in range(REPEATS):
                start = time.perf_counter()
                one(overrides={"sleep_seconds": WAIT})
                times["alone"].append(time.perf_counter() - start)
                start, cpu = time.perf_counter(), cpu_seconds(server)
                stage(overrides=empty)  # the floor: the same 8 subflows, nothing to wait for
                times["empty"].append(time.perf_counter() - start)
                times["server cpu"].append(cpu_seconds(server) - cpu)
                start = time.perf_counter()
                state = stage(overrides=waits, return_state=True)
                times["stage"].append(time.perf_counter() - start)
                assert state.is_completed(), state.message
                times["spread"].append(start_spread(state))
    return times


VARIANTS = {
    "embedded API (airnub default)": (False, embedded),
    "running server (airnub dev's `prefect server start`)": (False, running_server),
    "running server, Prefect's SQLite connection pool (a plain `prefect server start`)": (
        False, lambda name: running_server(name, single_connection=False),
    ),
    "embedded, Prefect's flow heartbeat on": (True, embedded),
    "embedded, Prefect's SQLite connection pool": (
        False, lambda name: embedded(name, single_connection=False),
    ),
}  # fmt: skip


if __name__ == "__main__":
    from common import median, table

    chosen = [n for n in VARIANTS if not CHOSEN or any(n.startswith(c) for c in CHOSEN)]
    load_before = os.getloadavg()
    rows = []
    for name in chosen:
        heartbeat, api = VARIANTS[name]
        times = measure(name.split(" ")[0] + str(len(rows)), heartbeat, api)
        ratio = median(times["stage"]) / median(times["alone"])
        floor = median(times["empty"]) + WAIT
        rows.append([
            name, f"{median(times['alone']):.2f} s", f"{median(times['stage']):.2f} s",
            f"{ratio:.2f}", f"{median(times['empty']):.2f} s",
            f"{median(times['server cpu']):.2f} s", f"{median(times['stage']) / floor:.2f}",
            f"{statistics.median(times['spread']):.2f} s",
            " ".join(f"{t:.1f}" for t in times["stage"]),
        ])  # fmt: skip
    load_after = os.getloadavg()
    print(f"8 categories, each waiting {WAIT:.0f} s; {REPEATS} runs each, medians\n")
    headers = ["variant", "one category alone", "stage of 8", "ratio", "8 empty categories",
               "server CPU, empty stage", "stage / (empty + 2 s)", "start spread",
               "stage runs (s)"]  # fmt: skip
    print(table(headers, rows))
    print(f"\nsequential would be at least {8 * WAIT:.0f} s; target ratio <= 1.30")
    print(f"load average (1, 5, 15 min): before {load_before[0]:.1f} {load_before[1]:.1f} "
          f"{load_before[2]:.1f}, after {load_after[0]:.1f} {load_after[1]:.1f} "
          f"{load_after[2]:.1f}")  # fmt: skip
