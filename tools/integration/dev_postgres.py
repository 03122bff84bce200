"""`airnub dev --db postgres` on a real Postgres from Debian, on loopback.

1. find Postgres's binaries, installing Debian's `postgresql` if they are missing;
2. create a throwaway cluster owned by the postgres user and start it on a free port;
3. `airnub dev --db postgres` against it, trigger Beta's and Alpha's ingestion, wait
   until both are COMPLETED;
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
from pathlib import Path

from airnub_core import dev, local_api, remote

DEPLOYMENTS = [
    "Ingestion Flow (Project Alpha)/dept-project-alpha-ingestion",
    "Ingestion Flow (Project Beta)/dept-project-beta-ingestion",
]


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


def main() -> int:
    binaries = postgres_bin()
    if binaries is None:
        print("skipped: Postgres is not installed and cannot be installed here")
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="airnub-pg-"))
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
    process = None
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
        home = scratch / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
        env |= {
            "PREFECT_HOME": str(home),
            "AIRNUB_DATA_ROOT": str(scratch / "data"),
            dev.DATABASE_URL_ENV: f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect",
        }
        airnub = str(Path(sys.executable).with_name("airnub"))
        log = (scratch / "dev.log").open("w")
        command = [airnub, "dev", "--db", "postgres", "--port", str(local_api.free_port())]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        state = dev.wait_ready(home / "airnub-dev.json", process)
        print(f"airnub dev ready on {state.database} at {state.api_url}")
        runs = [remote.trigger(state.api_url, name) for name in DEPLOYMENTS]
        states = remote.wait_for(state.api_url, runs)
        print(f"runs: {sorted(states.values())}")
        if set(states.values()) != {"COMPLETED"}:
            print((scratch / "dev.log").read_text()[-3000:], file=sys.stderr)
            return 1
        return 0
    finally:
        if process is not None:
            subprocess.run([str(Path(sys.executable).with_name("airnub")), "dev", "--stop"],
                           env=env, capture_output=True)  # fmt: skip
            process.wait(timeout=60)
        as_postgres(str(binaries / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "stop")
        print("stopped airnub dev and Postgres")


if __name__ == "__main__":
    sys.exit(main())
