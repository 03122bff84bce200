"""A heavy category's tasks fanned out to a real Dask cluster, against Prefect's threads.

The category maps a CPU-bound, pure-Python task over TASKS inputs with
``airnub_core.parallel.map_task``, the helper Beta's daily_consumption uses, on the task
runner its settings name:

- ``thread``: Prefect's ``ThreadPoolTaskRunner`` with 2 threads (one Python process, so
  pure-Python work holds the GIL and runs one task at a time);
- ``dask, in-process``: ``task_runner: dask`` without an address, the helper's default:
  a ``LocalCluster`` of threads inside the flow's process, started for each run;
- ``dask, 2 workers``: ``task_runner: dask`` with ``dask_address``, prefect-dask's
  ``DaskTaskRunner(address=...)`` on a ``dask scheduler`` and two ``dask worker --nworkers 1
  --nthreads 1`` processes that this script starts on loopback and stops by PID.

Every run goes through a Prefect API (the embedded one, as ``airnub run`` uses); the Dask
workers report their task runs to it too. The variants are interleaved, REPEATS rounds,
after one untimed warm-up each (imports in the Dask workers). Timed: the category flow
from call to return, in this process.
Usage: uv run python bench/dask_fanout.py [REPEATS]
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airnub_core.parallel import ParallelSettings, map_task
from prefect import flow, task

TASKS = 8
WORK = 30_000_000  # loop steps per task: about 1.1 s of one core here
DEADLINE = 120.0  # seconds any one wait may take
BIN = Path(sys.executable).parent


@task
def crunch(seed: int, steps: int) -> int:
    """Pure-Python arithmetic: holds the GIL the whole time, as parsing or scoring rows does."""
    total = seed
    for i in range(steps):
        total = (total * 31 + i) % 1_000_003
    return total


@flow(name="bench-heavy-category")
def heavy_category(settings: ParallelSettings) -> list[int]:
    return map_task(crunch, [{"seed": n, "steps": WORK} for n in range(TASKS)], settings)


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    from airnub_platform.dev import spawn

    return spawn(command, env, log)


def start_cluster(scratch: Path, env: dict[str, str],
                  processes: list[subprocess.Popen[bytes]]) -> str:  # fmt: skip
    """A scheduler and two one-thread workers, each its own process, on loopback; they are
    added to ``processes`` as they start, so the caller stops them whatever happens."""
    from airnub_platform.local_api import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    processes.append(start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                            port, "--no-dashboard"], env, scratch / "scheduler.log"))  # fmt: skip
    for n in (1, 2):
        worker = [str(BIN / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
                  "--host", "127.0.0.1", "--no-dashboard", "--name", f"bench-{n}"]  # fmt: skip
        processes.append(start(worker, env, scratch / f"worker-{n}.log"))
    from distributed import Client

    with Client(address, timeout=DEADLINE) as client:
        client.wait_for_workers(2, timeout=DEADLINE)
    return address


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    from airnub_platform.dev import stop_processes

    stop_processes([p.pid for p in processes])  # SIGINT, again, then SIGKILL; each bounded
    for process in processes:
        process.wait(timeout=DEADLINE)


def timed(settings: ParallelSettings) -> float:
    begin = time.perf_counter()
    state = heavy_category(settings, return_state=True)
    elapsed = time.perf_counter() - begin
    if not state.is_completed():
        raise SystemExit(f"the heavy category did not complete: {state.message}")
    return elapsed


def one_task_alone() -> float:
    begin = time.perf_counter()
    crunch.fn(0, WORK)
    return time.perf_counter() - begin


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, timeout=30).stdout.strip()


def measure(address: str, repeats: int) -> dict[str, list[float]]:
    variants = {
        "thread (ThreadPoolTaskRunner, 2 threads)": ParallelSettings(max_workers=2),
        "dask, in-process (no dask_address)": ParallelSettings(task_runner="dask", max_workers=2),
        "dask, 2 workers (dask_address)": ParallelSettings(task_runner="dask",
                                                           dask_address=address),
    }  # fmt: skip
    for settings in variants.values():
        timed(settings)  # warm-up: the Dask workers import Prefect and the task
    times: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(repeats):
        for name, settings in variants.items():
            times[name].append(timed(settings))
            print(f"round {repeat + 1}, {name}: {times[name][-1]:.2f} s", flush=True)
    return times


def report(times: dict[str, list[float]], alone: float, load: list[str]) -> None:
    from common import median, table

    threads = median(next(iter(times.values())))  # the first variant is the baseline
    rounds = len(next(iter(times.values())))
    rows = [[name, f"{median(ts):.2f} s", f"{threads / median(ts):.2f}",
             " ".join(f"{t:.1f}" for t in ts)] for name, ts in times.items()]  # fmt: skip
    print(
        f"\n{TASKS} CPU-bound tasks, one alone {alone:.2f} s in this process "
        f"(so {TASKS * alone:.1f} s one after another); medians of {rounds}\n"
    )
    print(table(["task runner", "heavy category", "speed-up over threads", "runs (s)"], rows))
    print("\nload while measuring (uptime):\n" + "\n".join(load))


def main(repeats: int) -> None:
    from airnub_platform import local_api
    from airnub_platform.runner import prefect_api

    logging.getLogger("prefect").setLevel(logging.WARNING)  # the table, not each task's lines
    logging.getLogger("distributed").setLevel(logging.WARNING)
    scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-dask-"))
    api = local_api.start(db=scratch / "prefect.db")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        env = {**os.environ, **local_api.QUIET_ENV, "PREFECT_API_URL": api.url,
               "PREFECT_LOGGING_LEVEL": "WARNING"}  # fmt: skip
        address = start_cluster(scratch, env, processes)
        with prefect_api(api):
            alone = one_task_alone()
            load = [uptime()]
            times = measure(address, repeats)
            load.append(uptime())
            local_api.drain_client_workers()
    finally:
        stop(processes)
        api.stop()
    report(times, alone, load)


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # through main's finally: the cluster is stopped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    repeats = sys.argv[1] if len(sys.argv) > 1 else "5"
    if not repeats.isdigit() or int(repeats) < 1 or len(sys.argv) > 2:
        raise SystemExit(f"dask_fanout.py: REPEATS must be a whole number from 1, got {repeats!r};"
                         " usage: dask_fanout.py [REPEATS]")  # fmt: skip
    try:
        main(int(repeats))
    except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as error:
        raise SystemExit(f"dask_fanout.py: {error}") from None  # the cluster is stopped by now
