"""`airnub dev --db postgres` on a real Postgres from Debian, on loopback.

1. find Postgres's binaries, installing Debian's `postgresql` if they are missing;
2. create a throwaway cluster owned by the postgres user and start it on a free port;
3. `airnub dev --db postgres` against it, in a scratch workspace holding two departments
   made by the generators; trigger each one's ingestion and wait until all are COMPLETED;
4. stop airnub dev and the cluster, whatever happened.

If Postgres cannot be installed here, it says so and exits 0: the check is skipped
with its reason, not failed. Usage: uv run python tools/integration/dev_postgres.py
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airnub_platform import dev, local_api, remote
from airnub_platform.testing import (
    SCRATCH_INGESTION_DEPLOYMENTS,
    clean_env,
    scratch_workspace,
    unwind_on_stop_signals,
)


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], capture_output=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    done = subprocess.run([*prefix, *command], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-800:]}")


@contextmanager
def running_cluster(binaries: Path, scratch: Path) -> Iterator[int]:
    """A throwaway cluster in ``scratch/cluster``, owned by the postgres user, listening on
    a free loopback port with an empty ``prefect`` database; yields the port, and stops
    the cluster on the way out, whatever happened."""
    cluster = scratch / "cluster"
    cluster.mkdir()
    if os.geteuid() == 0:
        shutil.chown(scratch, "postgres")
        shutil.chown(cluster, "postgres")
    port = local_api.free_port()
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={cluster}"
    as_postgres(
        str(binaries / "initdb"), "-D", str(cluster), "-A", "trust", "--no-sync", "-U", "postgres"
    )
    as_postgres(
        str(binaries / "pg_ctl"),
        "-D",
        str(cluster),
        "-o",
        options,
        "-l",
        str(cluster / "log"),
        "-w",
        "start",
    )
    try:
        as_postgres(
            str(binaries / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "prefect",
        )
        yield port
    finally:
        as_postgres(str(binaries / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "stop")


def main() -> int:
    binaries = postgres_bin()
    if binaries is None:
        print("skipped: Postgres is not installed and cannot be installed here")
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="airnub-pg-"))
    try:
        with running_cluster(binaries, scratch) as port:
            return check_dev(scratch, port)
    finally:
        print("stopped airnub dev and Postgres")
        shutil.rmtree(scratch, ignore_errors=True)


def check_dev(scratch: Path, port: int) -> int:
    """`airnub dev --db postgres` on the cluster at ``port``: each department's ingestion
    run to COMPLETED; airnub dev is stopped before this returns."""
    process = None
    env = clean_env()
    (scratch / "workspace").mkdir()
    workspace = scratch_workspace(scratch / "workspace")
    airnub = str(workspace / ".venv" / "bin" / "airnub")  # the workspace's own
    try:
        home = scratch / "home"
        env = {k: v for k, v in env.items() if not k.startswith("PREFECT_API")}
        env |= {
            "PREFECT_HOME": str(home),
            "AIRNUB_DATA_ROOT": str(scratch / "data"),
            dev.DATABASE_URL_ENV: f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect",
        }
        log = (scratch / "dev.log").open("w")
        command = [airnub, "dev", "--db", "postgres", "--port", str(local_api.free_port())]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=workspace)  # fmt: skip
        state = dev.wait_ready(home / "airnub-dev.json", process)
        print(f"airnub dev ready on {state.database} at {state.api_url}")
        deployments = SCRATCH_INGESTION_DEPLOYMENTS.values()
        runs = [remote.trigger(state.api_url, name) for name in deployments]
        states = remote.wait_for(state.api_url, runs)
        print(f"runs: {sorted(states.values())}")
        if set(states.values()) != {"COMPLETED"}:
            print((scratch / "dev.log").read_text()[-3000:], file=sys.stderr)
            return 1
        return 0
    finally:
        if process is not None:
            subprocess.run([airnub, "dev", "--stop"], env=env, capture_output=True, cwd=workspace)
            process.wait(timeout=60)


if __name__ == "__main__":
    unwind_on_stop_signals()  # .ci/run runs it in the background, and stops it with SIGTERM
    sys.exit(main())
