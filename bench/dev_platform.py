"""The local platform: start-up, run latency through a worker and its floor, a stage of 10.

Two variants of `airnub dev`, interleaved, each in a new Prefect home every repeat:
"before" (workers poll every 2 s, department environments without bytecode:
PREFECT_WORKER_QUERY_SECONDS=2 UV_COMPILE_BYTECODE=0, and each run started through
Prefect's workspace supervisor, AIRNUB_DEV_ENGINE_DIRECT=0) and "now" (the defaults). Both
run with PYTHONDONTWRITEBYTECODE=1, as many shells and images do, so nothing is
compiled behind the benchmark's back.
- `airnub dev` until every deployment is ready: cold (a new Prefect home, so each
  department's environment is created) and warm (the same home again);
- latency through a worker: from triggering Beta's ingestion deployment until its run
  is RUNNING, and until COMPLETED; then the same run broken down from the server's own
  timestamps: creation -> PENDING (the worker's poll), PENDING -> RUNNING (process
  start, Python, `import prefect`, the flow module, the first API calls),
  RUNNING -> COMPLETED;
- the floor, in each variant's department environment: a bare Python start,
  `import prefect`, `import prefect.engine` plus the flow module, and the first API
  calls of a run (read the run and its deployment);
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
from datetime import datetime
from pathlib import Path

import httpx
from airnub_core import conventions
from airnub_platform import dev, local_api, remote
from airnub_platform.runner import prefect_api
from airnub_platform.testing import write_department
from common import median, table

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
RUNS = 3  # triggered runs per warm start
AIRNUB = str(Path(sys.executable).with_name("airnub"))
DEPARTMENT = "dept_project_beta"
DEPLOYMENT = "Ingestion Flow (Project Beta)/dept-project-beta-ingestion"
FLOW_MODULE = "dept_project_beta.ingestion_flow_dept_project_beta"
VARIANTS = {
    "before": {
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "UV_COMPILE_BYTECODE": "0",
        "AIRNUB_DEV_ENGINE_DIRECT": "0",
    },
    "now": {},
}
loads: list[float] = []


def record(times: dict[str, list[float]], name: str, value: float) -> None:
    times.setdefault(name, []).append(value)
    loads.append(os.getloadavg()[0])


def start_platform(home: Path, data: Path, extra: dict) -> tuple[subprocess.Popen, dev.DevState,
                                                                 float, dict]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "UV_COMPILE"))}
    env |= {"PREFECT_HOME": str(home), "AIRNUB_DATA_ROOT": str(data)}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", **extra}
    start = time.perf_counter()
    command = [AIRNUB, "dev", "--port", str(local_api.free_port())]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = dev.wait_ready(home / "airnub-dev.json", process)
    return process, state, time.perf_counter() - start, env


def stop_platform(process: subprocess.Popen, env: dict) -> None:
    subprocess.run([AIRNUB, "dev", "--stop"], env=env, capture_output=True, check=True,
                   timeout=120)  # fmt: skip
    process.wait(timeout=60)


def run_latency(api_url: str) -> tuple[float, float, str]:
    """Trigger -> RUNNING and -> COMPLETED as a client sees them, and the run's id."""
    start = time.perf_counter()
    run_id = remote.trigger(api_url, DEPLOYMENT)
    running = None
    deadline = time.monotonic() + 300
    with httpx.Client(base_url=api_url, timeout=10) as api:
        while time.monotonic() < deadline:
            state = api.get(f"/flow_runs/{run_id}").json()["state_type"]
            if running is None and state in ("RUNNING", *remote.FINAL):
                running = time.perf_counter() - start
            if state in remote.FINAL:
                assert state == "COMPLETED", state
                assert running is not None  # set above, by this final state at the latest
                return running, time.perf_counter() - start, run_id
            time.sleep(0.05)
    raise TimeoutError(f"run {run_id} did not finish within 300 s")


def breakdown(api_url: str, run_id: str) -> dict[str, float]:
    """The run's phases from the server's timestamps: creation and each state's."""
    with httpx.Client(base_url=api_url, timeout=10) as api:
        created = api.get(f"/flow_runs/{run_id}").json()["created"]
        states = api.get("/flow_run_states/", params={"flow_run_id": run_id}).json()
    at: dict[str, datetime] = {}
    for state in sorted(states, key=lambda s: s["timestamp"]):  # the first of each type
        at.setdefault(state["type"], datetime.fromisoformat(state["timestamp"]))
    start = datetime.fromisoformat(created)
    return {
        "creation -> PENDING (poll)": (at["PENDING"] - start).total_seconds(),
        "PENDING -> RUNNING (process start to flow running)": (
            at["RUNNING"] - at["PENDING"]
        ).total_seconds(),
        "RUNNING -> COMPLETED": (at["COMPLETED"] - at["RUNNING"]).total_seconds(),
    }


FIRST_CALLS = """
import sys, time
from prefect.client.orchestration import get_client
start = time.perf_counter()
with get_client(sync_client=True) as client:
    run = client.read_flow_run(sys.argv[1])
    client.read_deployment(run.deployment_id)
print(time.perf_counter() - start)
"""


def floor(env_dir: Path, env: dict, api_url: str, run_id: str) -> dict[str, float]:
    """What a worker's run process pays before its flow runs, piece by piece."""
    python = str(env_dir / "bin" / "python")
    env = {**env, "PREFECT_API_URL": api_url}
    pieces = {
        "floor: Python start (`python -c pass`)": "pass",
        "floor: `import prefect`": "import prefect",
        "floor: `import prefect.engine` + the flow module": f"import prefect.engine, {FLOW_MODULE}",
    }
    measured = {}
    for name, code in pieces.items():
        start = time.perf_counter()
        subprocess.run([python, "-c", code], env=env, check=True, capture_output=True,
                       timeout=300)  # fmt: skip
        measured[name] = time.perf_counter() - start
    done = subprocess.run([python, "-c", FIRST_CALLS, run_id], env=env, check=True,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    measured["floor: first API calls (read the run, its deployment)"] = float(done.stdout)
    return measured


scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-dev-"))
times: dict[str, list[float]] = {}
for repeat in range(REPEATS):
    order = list(VARIANTS) if repeat % 2 == 0 else list(reversed(VARIANTS))
    for variant in order:
        home = scratch / f"{variant}-home{repeat}"
        for label in ("cold", "warm"):
            process, state, ready, env = start_platform(home, scratch / "data", VARIANTS[variant])
            record(times, f"{variant}: airnub dev to ready, {label}", ready)
            if label == "warm":
                for _ in range(RUNS):
                    to_running, to_done, run_id = run_latency(state.api_url)
                    record(times, f"{variant}: trigger -> RUNNING", to_running)
                    record(times, f"{variant}: trigger -> COMPLETED", to_done)
                    for name, value in breakdown(state.api_url, run_id).items():
                        record(times, f"{variant}: {name}", value)
                env_dir = home / "airnub-envs" / DEPARTMENT
                for name, value in floor(env_dir, env, state.api_url, run_id).items():
                    record(times, f"{variant}: {name}", value)
            stop_platform(process, env)

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
        record(times, "stage of 10 x 1 s, categories in sequence", sequential)
        record(times, "stage of 10 x 1 s, categories concurrent", concurrent)
        record(times, "ratio sequential / concurrent (same run)", sequential / concurrent)
api.stop()

for name in ("trigger -> RUNNING", "trigger -> COMPLETED"):
    before, now = median(times[f"before: {name}"]), median(times[f"now: {name}"])
    times[f"ratio now / before, {name} (same run)"] = [now / before]
rows = [[name, f"{median(v):.2f}", " ".join(f"{t:.2f}" for t in v)] for name, v in times.items()]
load = f"load average (1 min) {min(loads):.2f}-{max(loads):.2f} during the run"
print(f"medians of {REPEATS} repeats (latency: {RUNS} runs per repeat); seconds unless a"
      f" ratio; {load}\n")  # fmt: skip
print(table(["measure", "median", "values"], rows))
