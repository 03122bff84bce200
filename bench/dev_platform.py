"""The local platform: start-up, run latency through a worker, and a stage of 10.

- `airnub dev` until every deployment is ready: cold (a new Prefect home, so each
  department's environment is created) and warm (the same home again);
- flow-run start latency through a worker: from triggering Beta's ingestion deployment
  until its run is RUNNING, and until COMPLETED;
- a synthetic stage of 10 categories, each waiting 1 s in a task, run on the embedded
  API with its categories in sequence and concurrently, in the same process.
Usage: uv run python bench/dev_platform.py [REPEATS]
"""

import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from airnub_core import conventions
from airnub_platform import dev, local_api, remote
from airnub_platform.runner import prefect_api
from airnub_platform.testing import write_department
from common import median, table

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
AIRNUB = str(Path(sys.executable).with_name("airnub"))
DEPLOYMENT = "Ingestion Flow (Project Beta)/dept-project-beta-ingestion"


def start_platform(home: Path, data: Path) -> tuple[subprocess.Popen, dev.DevState, float, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_HOME": str(home), "AIRNUB_DATA_ROOT": str(data)}
    start = time.perf_counter()
    command = [AIRNUB, "dev", "--port", str(local_api.free_port())]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = dev.wait_ready(home / "airnub-dev.json", process)
    return process, state, time.perf_counter() - start, env


def run_latency(api_url: str) -> tuple[float, float]:
    start = time.perf_counter()
    run_id = remote.trigger(api_url, DEPLOYMENT)
    running = None
    with httpx.Client(base_url=api_url, timeout=10) as api:
        while True:
            state = api.get(f"/flow_runs/{run_id}").json()["state_type"]
            if running is None and state in ("RUNNING", *remote.FINAL):
                running = time.perf_counter() - start
            if state in remote.FINAL:
                assert state == "COMPLETED", state
                assert running is not None  # set above, by this final state at the latest
                return running, time.perf_counter() - start
            time.sleep(0.05)


scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-dev-"))
times: dict[str, list[float]] = {}
for repeat in range(REPEATS):
    home = scratch / f"home{repeat}"
    for label in ("cold", "warm"):
        process, state, ready, env = start_platform(home, scratch / "data")
        times.setdefault(f"airnub dev to ready, {label}", []).append(ready)
        if label == "warm":
            for _ in range(3):
                to_running, to_done = run_latency(state.api_url)
                times.setdefault("trigger -> RUNNING through a worker", []).append(to_running)
                times.setdefault("trigger -> COMPLETED (Beta ingestion)", []).append(to_done)
        subprocess.run([AIRNUB, "dev", "--stop"], env=env, capture_output=True, check=True)
        process.wait(timeout=60)

# A stage of 10 categories: in sequence, then concurrently, same process and API.
CATEGORIES = [f"source_{n:02d}" for n in range(10)]
os.environ["AIRNUB_DATA_ROOT"] = str(scratch / "stage-data")
write_department(scratch, "dept_bench", {"ingestion": CATEGORIES})
sys.path.insert(0, str(scratch))
conventions.departments = lambda: {"dept_bench": "Bench"}
stage = importlib.import_module("dept_bench.ingestion_flow_dept_bench").ingestion_flow
flows = {
    c: getattr(importlib.import_module(f"dept_bench.ingestion.{c}.make_{c}_flow_dept_bench"),
               f"make_{c}")
    for c in CATEGORIES
}  # fmt: skip
waits = {c: {"sleep_seconds": 1.0} for c in CATEGORIES}
api = local_api.start(db=scratch / "stage.db")
with prefect_api(api):
    stage(overrides={CATEGORIES[0]: {"sleep_seconds": 0}})  # warm-up
    for _ in range(REPEATS):
        start = time.perf_counter()
        for name, flow in flows.items():
            flow(overrides=waits[name])
        sequential = time.perf_counter() - start
        start = time.perf_counter()
        stage(overrides=waits)
        concurrent = time.perf_counter() - start
        times.setdefault("stage of 10 x 1 s, categories in sequence", []).append(sequential)
        times.setdefault("stage of 10 x 1 s, categories concurrent", []).append(concurrent)
        times.setdefault("ratio sequential / concurrent (same run)", []).append(
            sequential / concurrent
        )
api.stop()

rows = [[name, f"{median(v):.2f}", " ".join(f"{t:.2f}" for t in v)] for name, v in times.items()]
print(f"medians of {REPEATS} repeats (latency: 3 runs per repeat); seconds unless a ratio\n")
print(table(["measure", "median", "values"], rows))
