"""`airnub dev`'s Prefect server on SQLite under a burst of runs: no lock errors, no 503s.

1. the server exactly as `airnub dev` starts it (`airnub_platform.dev.start_server`), on a
   new SQLite file in a throwaway Prefect home, on a free loopback port;
2. a throwaway flow module, written to a temporary folder, deployed to a process pool,
   and a process worker for that pool polling every second;
3. RUNS (default 20) runs of it triggered at once over HTTP, then waited for, with a deadline;
4. the worker, any flow process it left, and the server stopped by PID, whatever happened
   (an error, Ctrl-C or SIGTERM).

Exit 1 if the server log has "database is locked", any trigger or status call failed,
or any run is not COMPLETED; the logs' tails are printed. ``bench/dev_server_load.py``
runs :func:`run_load` with and without the single SQLite connection.
Usage: uv run --no-sync python tools/integration/dev_server_load.py [RUNS]
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from airnub_platform import dev, local_api, remote

FLOW_NAME = "airnub-load-probe"
DEPLOYMENT = f"{FLOW_NAME}/load"
POOL = "airnub-load"
MODULE = "airnub_load_probe"
# A few tasks and a log line per run, so each run writes what a real one does.
FLOW_SOURCE = f'''
from prefect import flow, get_run_logger, task


@task
def square(n: int) -> int:
    return n * n


@flow(name="{FLOW_NAME}")
def probe(n: int = 3) -> int:
    total = sum(square(i) for i in range(n))
    get_run_logger().info("sum of squares below %d: %d", n, total)
    return total
'''
LOCKED = "database is locked"
HTTP_503 = re.compile(r"retryable status code 503|503 Service Unavailable")


@dataclass
class LoadResult:
    runs: int
    states: dict[str, str] = field(default_factory=dict)  # run id -> state type
    errors: list[str] = field(default_factory=list)  # failed HTTP calls, as seen here
    status_503: int = 0  # of those, and of the worker's retried calls, answered 503
    locked: int = 0  # server log lines saying "database is locked"
    wall: float = 0.0  # from the burst of triggers until every run is final
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return sum(state == "COMPLETED" for state in self.states.values())

    @property
    def ok(self) -> bool:
        return not self.locked and not self.errors and self.completed == self.runs


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Linux /proc), children first."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it exited while we looked
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(0), [])
        found += children
        queue += children
    return found


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop ``processes`` and everything they started, by PID; reap our own children.

    A second Ctrl-C while this runs is ignored, so it cannot leave processes behind.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        pids = [pid for process in processes for pid in (process.pid, *descendants(process.pid))]
        dev.stop_processes(pids)
        for process in processes:
            process.wait(timeout=10)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def check(response: httpx.Response) -> httpx.Response:
    response.raise_for_status()
    return response


def register(api_url: str) -> None:
    """The pool and a deployment of the probe flow, by module path (the worker imports it)."""
    with httpx.Client(base_url=api_url, timeout=30) as api:
        check(api.post("/work_pools/", json={"name": POOL, "type": "process"}))
        flow_id = check(api.post("/flows/", json={"name": FLOW_NAME})).json()["id"]
        deployment = {"name": "load", "flow_id": flow_id, "work_pool_name": POOL,
                      "entrypoint": f"{MODULE}.probe"}  # fmt: skip
        check(api.post("/deployments/", json=deployment))


def wait_for_worker(api_url: str, worker: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the worker has said hello to the server, so the burst measures the runs only."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=api_url, timeout=30) as api:
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}")
            if check(api.post(f"/work_pools/{POOL}/workers/filter", json={})).json():
                return
            time.sleep(0.5)
    raise TimeoutError(f"no worker on pool {POOL} after {timeout:.0f} s")


def trigger_burst(api_url: str, runs: int, result: LoadResult) -> list[str]:
    """Trigger ``runs`` runs at the same moment; failures go to ``result.errors``."""
    barrier = threading.Barrier(runs, timeout=60)
    lock = threading.Lock()

    def one(_: int) -> str | None:
        barrier.wait()
        try:
            return remote.trigger(api_url, DEPLOYMENT)
        except httpx.HTTPStatusError as error:
            with lock:
                result.status_503 += error.response.status_code == 503
                result.errors.append(f"trigger: HTTP {error.response.status_code}")
        except httpx.HTTPError as error:
            with lock:
                result.errors.append(f"trigger: {error!r}")
        return None

    with ThreadPoolExecutor(runs) as pool:
        return [run_id for run_id in pool.map(one, range(runs)) if run_id is not None]


def wait_final(
    api_url: str,
    run_ids: list[str],
    result: LoadResult,
    processes: dict[str, subprocess.Popen[bytes]],
    timeout: float,
) -> None:
    """Poll every run until all are final or the deadline passes.

    Unlike ``remote.wait_for`` it keeps going past a failed call, counting it, so a
    baseline that answers 503 is still measured to the end.
    """
    deadline = time.monotonic() + timeout
    states = dict.fromkeys(run_ids, "UNKNOWN")
    with httpx.Client(base_url=api_url, timeout=30) as api:
        while True:
            for run_id, state in states.items():
                if state in remote.FINAL:
                    continue
                try:
                    states[run_id] = check(api.get(f"/flow_runs/{run_id}")).json()["state_type"]
                except httpx.HTTPStatusError as error:
                    result.status_503 += error.response.status_code == 503
                    result.errors.append(f"status: HTTP {error.response.status_code}")
                except httpx.HTTPError as error:
                    result.errors.append(f"status: {error!r}")
            if all(state in remote.FINAL for state in states.values()):
                break
            dead = [name for name, process in processes.items() if process.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"deadline of {timeout:.0f} s"
                states = {i: s if s in remote.FINAL else f"{s} ({why})" for i, s in states.items()}
                break
            time.sleep(0.5)
    result.states = states


def count_in_logs(result: LoadResult) -> None:
    text = {name: path.read_text(errors="replace") for name, path in result.logs.items()}
    result.locked = sum(line.count(LOCKED) > 0 for line in text["server"].splitlines())
    result.status_503 += len(HTTP_503.findall(text["worker"]))


def run_load(
    scratch: Path, runs: int = 20, single_connection: bool = True, timeout: float = 300
) -> LoadResult:
    """The whole check in ``scratch``; every process it starts is stopped before it returns."""
    port = local_api.free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    flows = scratch / "flows"
    flows.mkdir(parents=True)
    (flows / f"{MODULE}.py").write_text(FLOW_SOURCE)
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    base |= {
        "PREFECT_HOME": str(scratch / "home"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        local_api.SINGLE_CONNECTION_ENV: "1" if single_connection else "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(flows), os.environ.get("PYTHONPATH")])),
    }
    env = dev.platform_env(api_url, f"sqlite+aiosqlite:///{scratch / 'airnub-dev.db'}", base)
    result = LoadResult(
        runs, logs={"server": scratch / "server.log", "worker": scratch / "worker.log"}
    )
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        dev.start_server(port, env, result.logs["server"], lambda p: processes.update(server=p))
        register(api_url)
        prefect = str(Path(sys.executable).with_name("prefect"))
        worker = [prefect, "worker", "start", "--pool", POOL, "--type", "process"]
        processes["worker"] = dev.spawn(worker, env, result.logs["worker"])
        wait_for_worker(api_url, processes["worker"], timeout=120)
        started = time.monotonic()
        run_ids = trigger_burst(api_url, runs, result)
        wait_final(api_url, run_ids, result, processes, timeout)
        result.wall = time.monotonic() - started
    finally:
        # The worker first, so no run is being handed out while the server goes.
        stop_all([processes[name] for name in ("worker", "server") if name in processes])
    count_in_logs(result)
    return result


def report(result: LoadResult) -> str:
    states: dict[str, int] = {}
    for state in result.states.values():
        states[state] = states.get(state, 0) + 1
    return (
        f"{result.completed}/{result.runs} COMPLETED in {result.wall:.1f} s; states {states};"
        f" '{LOCKED}' in the server log: {result.locked}; HTTP 503: {result.status_503};"
        f" failed calls: {len(result.errors)} {result.errors[:5]}"
    )


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    # SIGTERM (a CI timeout, or .ci/run stopping its side checks) unwinds like Ctrl-C,
    # through run_load's finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    scratch = Path(tempfile.mkdtemp(prefix="airnub-dev-load-"))
    try:
        result = run_load(scratch, runs)
    except Exception as error:
        print(f"dev server load check failed: {error!r}; files in {scratch}", file=sys.stderr)
        for log in sorted(scratch.glob("*.log")):
            tail = log.read_text(errors="replace")[-3000:]
            print(f"--- {log.name} (tail) ---\n{tail}", file=sys.stderr)
        return 1
    print(report(result))
    if not result.ok:
        for name, log in result.logs.items():
            tail = log.read_text(errors="replace")[-3000:]
            print(f"--- {name} log (tail) ---\n{tail}", file=sys.stderr)
        print(f"dev server load check failed; files in {scratch}", file=sys.stderr)
        return 1
    shutil.rmtree(scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
