"""`airnub run dept_project_alpha`: cold, fresh home with cached template, warm.

- cold: new PREFECT_HOME, new airnub cache (the server process migrates the database
  and caches it as the template), new data root;
- fresh home: new PREFECT_HOME and data root, template already cached;
- warm: the same home and data root again (unchanged downloads are skipped).
The three run back to back in each round; the ratios are taken inside this run.
Usage: uv run python bench/run_alpha.py [REPEATS]
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from common import median, runs_table, timed

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
CMD = ["uv", "run", "--no-sync", "airnub", "run", "dept_project_alpha"]

times: dict[str, list[float]] = {"cold": [], "fresh home, cached template": [], "warm": []}
loads: list[float] = []
for _ in range(REPEATS):
    scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-"))
    try:
        env = os.environ | {
            "PREFECT_HOME": str(scratch / "home"),
            "AIRNUB_CACHE_DIR": str(scratch / "cache"),
            "AIRNUB_DATA_ROOT": str(scratch / "data"),
        }
        times["cold"].append(timed(CMD, env))
        env |= {"PREFECT_HOME": str(scratch / "home2"), "AIRNUB_DATA_ROOT": str(scratch / "data2")}
        times["fresh home, cached template"].append(timed(CMD, env))
        times["warm"].append(timed(CMD, env))
        loads.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

print(runs_table("airnub run dept_project_alpha", times))
cold, fresh, warm = (median(v) for v in times.values())
print(f"\ncold / warm: {cold / warm:.2f} (target <= 1.30); fresh home / warm: {fresh / warm:.2f}")
print(f"load average (1 min) after each round: {' '.join(f'{x:.1f}' for x in loads)}")
