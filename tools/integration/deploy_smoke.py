"""From deployment to a completed run, with real components on loopback.

It runs in a scratch workspace holding a department made by the generators, so it
checks the platform whatever departments the repository holds:
1. `prefect server start` with a fresh Prefect home;
2. `airnub deploy dept_scratch` (creates its process work pool);
3. `prefect worker start` for that pool;
4. trigger the Ingestion deployment and wait until it is COMPLETED and its outputs exist;
5. stop the worker and the server by PID, whatever happened.

Exit 0 on success; otherwise print what failed, with the server's and worker's logs.
Usage: uv run python tools/integration/deploy_smoke.py
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airnub_platform import local_api, remote
from airnub_platform.testing import (
    SCRATCH_INGESTION_DEPLOYMENTS,
    clean_env,
    scratch_workspace,
    unwind_on_stop_signals,
)

DEPARTMENT = "dept_scratch"
DEPLOYMENT = SCRATCH_INGESTION_DEPLOYMENTS[DEPARTMENT]
POOL = "dept-scratch"
OUTPUTS = ["ingestion/feed/example.csv"]  # what the generated ingestion category writes


def stop(process: subprocess.Popen, name: str) -> None:
    """SIGINT twice (a worker ignores one while it winds down), then SIGKILL."""
    if process.poll() is not None:
        return
    for sig in (signal.SIGINT, signal.SIGINT):
        process.send_signal(sig)
        try:
            process.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue
    process.kill()
    process.wait()
    print(f"{name} (pid {process.pid}) had to be killed", file=sys.stderr)


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="airnub-smoke-"))
    passed = False
    try:
        passed = smoke(scratch)
    finally:  # a failure keeps its logs for reading; a pass or SIGTERM leaves nothing
        if passed or sys.exc_info()[0] is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0 if passed else 1


def smoke(scratch: Path) -> bool:
    (scratch / "workspace").mkdir()
    workspace = scratch_workspace(scratch / "workspace", {DEPARTMENT: "Scratch Team"})
    bin_dir = workspace / ".venv" / "bin"  # the scratch workspace's own environment
    port = local_api.free_port()
    url = f"http://127.0.0.1:{port}/api"
    data = scratch / "data"
    env = {
        **{k: v for k, v in clean_env().items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(scratch / "home"),
        "PREFECT_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "DO_NOT_TRACK": "1",
        "AIRNUB_DATA_ROOT": str(data),
    }
    logs = {name: (scratch / f"{name}.log").open("w") for name in ("server", "worker")}
    started = time.monotonic()
    server = subprocess.Popen(
        [bin_dir / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=logs["server"], stderr=subprocess.STDOUT, cwd=workspace,
    )  # fmt: skip
    worker = None
    try:
        local_api.wait_healthy(url, server, scratch / "server.log", timeout=120)
        print(f"server healthy after {time.monotonic() - started:.1f} s (pid {server.pid})")
        deployed = run([str(bin_dir / "airnub"), "deploy", DEPARTMENT], env, workspace)
        print(f"airnub deploy: {deployed.count('create')} created (pool and deployments)")
        worker = subprocess.Popen(
            [bin_dir / "prefect", "worker", "start", "--pool", POOL, "--type", "process"],
            env=env, stdout=logs["worker"], stderr=subprocess.STDOUT, cwd=workspace,
        )  # fmt: skip
        triggered = time.monotonic()
        run_id = remote.trigger(url, DEPLOYMENT)
        state = remote.wait_for(url, [run_id])[run_id]
        print(f"flow run {run_id}: {state} after {time.monotonic() - triggered:.1f} s")
        missing = [p for p in OUTPUTS if not (data / DEPARTMENT / p).is_file()]
        if state != "COMPLETED" or missing:
            raise RuntimeError(f"state {state}; missing outputs: {missing or 'none'}")
        return True
    except Exception as error:
        print(f"deploy smoke test failed: {error}", file=sys.stderr)
        for name, handle in logs.items():
            handle.flush()
            tail = (scratch / f"{name}.log").read_text(errors="replace")[-3000:]
            print(f"--- {name} log (tail) ---\n{tail}", file=sys.stderr)
        print(f"files kept in {scratch}", file=sys.stderr)
        return False
    finally:
        if worker is not None:
            stop(worker, "worker")
        stop(server, "server")
        print(f"stopped worker and server; total {time.monotonic() - started:.1f} s")
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    unwind_on_stop_signals()  # .ci/run runs it in the background, and stops it with SIGTERM
    sys.exit(main())
