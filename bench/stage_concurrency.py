"""A synthetic stage of 8 categories, each waiting 2 s on I/O, on the embedded default.

Times the stage flow after start-up (server healthy, modules imported) and
compares it with one category run alone, in the same process. Also runs the
stage with Prefect's defaults switched back on, one at a time, to show what
each change buys: the flow heartbeat, and SQLite's connection pool.
Usage: uv run python bench/stage_concurrency.py [REPEATS]
"""

import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

from airnub_core import conventions
from airnub_platform import local_api
from airnub_platform.runner import prefect_api
from airnub_platform.testing import write_department

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
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


def measure(heartbeat: bool, single_connection: bool) -> tuple[list[float], list[float]]:
    os.environ[local_api.SINGLE_CONNECTION_ENV] = "1" if single_connection else "0"
    api = local_api.start(db=scratch / f"prefect-{heartbeat}-{single_connection}.db")
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    stage_times, alone_times = [], []
    try:
        with prefect_api(api):
            # prefect_api switches the heartbeat off; switch it back on for the baseline.
            beat = temporary_settings(
                updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30} if heartbeat else {}
            )
            with beat:
                stage(overrides={"source_1": {"sleep_seconds": 0}})  # warm-up, not timed
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    one(overrides={"sleep_seconds": WAIT})
                    alone_times.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    state = stage(overrides=waits, return_state=True)
                    stage_times.append(time.perf_counter() - start)
                    assert state.is_completed(), state.message
    finally:
        api.stop()
    return stage_times, alone_times


if __name__ == "__main__":
    from common import median, table

    variants = {
        "airnub default (heartbeat off, one SQLite connection)": (False, True),
        "Prefect's flow heartbeat on": (True, True),
        "Prefect's SQLite connection pool": (False, False),
    }
    rows = []
    for name, (heartbeat, single) in variants.items():
        stage_times, alone_times = measure(heartbeat, single)
        ratio = median(stage_times) / median(alone_times)
        rows.append([
            name, f"{median(alone_times):.2f} s", f"{median(stage_times):.2f} s",
            f"{ratio:.2f}", " ".join(f"{t:.1f}" for t in stage_times),
        ])  # fmt: skip
    print(f"8 categories, each waiting {WAIT:.0f} s; {REPEATS} runs each, medians\n")
    print(table(["variant", "one category alone", "stage of 8", "ratio", "stage runs (s)"], rows))
    print(f"\nsequential would be at least {8 * WAIT:.0f} s; target ratio <= 1.30")
