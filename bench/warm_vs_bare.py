"""A warm `airnub run` against bare Prefect running the same shape of flows, and a floor.

One generated department of 3 stages (3, 2 and 2 categories, each a subflow calling one
task and writing a file), run three ways, interleaved, each a new Python process:

- airnub: `airnub run dept_bench` (the embedded API, warm: same Prefect home each round);
- bare Prefect: a script of plain `@flow`/`@task` with the same shape (a stage flow per
  stage, its categories as concurrent subflows in threads, one task each), with Prefect's
  defaults (its ephemeral server on a warm Prefect home of its own);
- floor: Python start, `import prefect` and as many trivial flow runs as the department
  run makes (3 stages + 7 categories), against a running `prefect server start` started
  once here (already warm), so no server start-up is in it.

Each variant runs once untimed first (bytecode, the template database, the server's home).
Usage: uv run python bench/warm_vs_bare.py [ROUNDS]
"""

import os
import sys
import tempfile
from pathlib import Path

from airnub_platform import dev, local_api
from airnub_platform.testing import write_department_project
from common import ROOT, median, table, timed

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SHAPE = {"ingestion": ["source_a", "source_b", "source_c"],
         "processing": ["clean", "join"], "analysis": ["summary", "report"]}  # fmt: skip
FLOW_RUNS = len(SHAPE) + sum(len(c) for c in SHAPE.values())

BARE = """
import sys
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from pathlib import Path

from prefect import flow, task

SHAPE = {shape!r}
OUT = Path(sys.argv[1])


@task
def wait(seconds: float) -> None:
    pass


def category(stage: str, name: str):
    @flow(name=f"{{stage}} {{name}}")
    def run() -> str:
        wait(0.0)
        path = OUT / stage / name / "out.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"hello from {{name}}")
        return str(path)

    return run


def stage(name: str):
    @flow(name=f"{{name}} stage")
    def run() -> dict:
        flows = [category(name, c) for c in SHAPE[name]]
        with ThreadPoolExecutor(len(flows)) as pool:
            futures = [pool.submit(copy_context().run, f, return_state=True) for f in flows]
            states = [future.result() for future in futures]
        assert all(s.is_completed() for s in states)
        return {{}}

    return run


if __name__ == "__main__":
    for name in SHAPE:
        assert stage(name)(return_state=True).is_completed()
"""

FLOOR = """
import sys
from prefect import flow


@flow
def trivial() -> None:
    pass


for _ in range({runs}):
    trivial()
"""


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-"))
    folder = write_department_project(scratch, "dept_bench", "Bench", SHAPE)
    (scratch / "bare.py").write_text(BARE.format(shape=SHAPE))
    (scratch / "floor.py").write_text(FLOOR.format(runs=FLOW_RUNS))
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    base.pop("PYTHONDONTWRITEBYTECODE", None)  # every variant with its bytecode cached
    airnub_env = base | {
        "PYTHONPATH": str(folder / "src"),
        "PREFECT_HOME": str(scratch / "airnub-home"),
        "AIRNUB_DATA_ROOT": str(scratch / "airnub-data"),
    }
    # Prefect's 20 s start-up timeout fails on a loaded machine; a timeout is not a speed-up.
    bare_env = base | {"PREFECT_HOME": str(scratch / "bare-home"),
                       "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}  # fmt: skip
    port = local_api.free_port()
    url = f"http://127.0.0.1:{port}/api"
    server_home = scratch / "server-home"
    server_env = dev.platform_env(url, f"sqlite+aiosqlite:///{server_home / 'floor.db'}", base)
    server_env["PREFECT_HOME"] = str(server_home)
    server = dev.start_server(port, server_env, server_home / "server.log")
    floor_env = base | {"PREFECT_HOME": str(scratch / "floor-home"), "PREFECT_API_URL": url}
    python = sys.executable
    commands = {
        "airnub run (embedded API, warm)": (
            [python, "-c", "from airnub_platform.cli import main; main()", "run", "dept_bench"],
            airnub_env,
        ),
        "bare Prefect (ephemeral server, warm home)": (
            [python, str(scratch / "bare.py"), str(scratch / "bare-out")], bare_env,
        ),
        f"floor: python + import prefect + {FLOW_RUNS} trivial flow runs, warm server": (
            [python, str(scratch / "floor.py")], floor_env,
        ),
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in commands}
    loads = [os.getloadavg()[0]]
    try:
        for cmd, env in commands.values():
            timed(cmd, env, cwd=scratch)  # untimed warm-up
        for _ in range(ROUNDS):
            for name, (cmd, env) in commands.items():
                times[name].append(timed(cmd, env, cwd=scratch))
            loads.append(os.getloadavg()[0])
    finally:
        dev.stop_processes([server.pid])
        server.wait(timeout=30)
    report(times, loads)


def report(times: dict[str, list[float]], loads: list[float]) -> None:
    airnub, bare, floor = (median(values) for values in times.values())
    rows = [[name, f"{median(values):.2f} s", " ".join(f"{t:.1f}" for t in values)]
            for name, values in times.items()]  # fmt: skip
    print(f"one department of 3 stages, {FLOW_RUNS - len(SHAPE)} categories ({FLOW_RUNS} flow "
          f"runs); {ROUNDS} rounds interleaved, medians\n")  # fmt: skip
    print(table(["variant", "median", "runs (s)"], rows))
    print(
        f"\nairnub / bare Prefect: {airnub / bare:.2f} (target <= 0.50); "
        f"airnub / floor: {airnub / floor:.2f}"
    )
    print(
        f"load average (1 min) before and after each round: "
        f"{' '.join(f'{load:.1f}' for load in loads)}"
    )
    print(f"command: uv run python bench/warm_vs_bare.py {ROUNDS}  (from {ROOT.name})")


if __name__ == "__main__":
    main()
