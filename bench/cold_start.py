"""The embedded API's start-up: cold (no cached template) against warm, in one run.

Each round, interleaved, with its own empty cache and a new database each time:
- cold: the server process migrates the new database and caches it as the template;
- cold, migrated in a process of its own first: what `airnub run` did before issue 15
  (`local_api prepare` in a child, then the server), for the same-run comparison;
- warm: a new database copied from the cached template.
Timed from `local_api.start` until `/health` answers. Usage:
uv run python bench/cold_start.py [REPEATS]
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airnub_platform import local_api
from common import median, runs_table

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def healthy_after(db: Path, migrate_first: bool = False) -> float:
    start = time.perf_counter()
    if migrate_first:
        cmd = [sys.executable, "-m", "airnub_platform.local_api", "prepare", str(db)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    api = local_api.start(db=db)
    try:
        api.wait_healthy(timeout=600)
        return time.perf_counter() - start
    finally:
        api.stop(settle=False)


times: dict[str, list[float]] = {
    "cold (server migrates, caches the template)": [],
    "cold, migrated in a process of its own first (before)": [],
    "warm (copy of the cached template)": [],
}
loads: list[float] = []
for _ in range(REPEATS):
    scratch = Path(tempfile.mkdtemp(prefix="airnub-cold-"))
    try:
        for index, runs in enumerate(times.values()):
            # warm reuses the cache the first variant filled this round
            os.environ["AIRNUB_CACHE_DIR"] = str(scratch / f"cache-{index % 2}")
            runs.append(healthy_after(scratch / f"db-{index}" / "prefect.db", index == 1))
        loads.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

print(runs_table("embedded API, start until healthy", times))
cold, before, warm = (median(v) for v in times.values())
print(f"\ncold / warm: {cold / warm:.2f}; before / warm: {before / warm:.2f}")
print(f"load average (1 min) after each round: {' '.join(f'{x:.1f}' for x in loads)}")
