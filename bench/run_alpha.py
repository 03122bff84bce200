"""`airnub run dept_project_alpha`: cold, fresh home with cached template, warm.

- cold: new PREFECT_HOME, new airnub cache (the migrated template is built), new data root;
- fresh home: new PREFECT_HOME and data root, template already cached;
- warm: the same home and data root again (unchanged downloads are skipped).
Usage: uv run python bench/run_alpha.py [REPEATS]
"""

import os
import sys
import tempfile
from pathlib import Path

from common import seconds, table, timed

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
CMD = ["uv", "run", "--no-sync", "airnub", "run", "dept_project_alpha"]

times: dict[str, list[float]] = {"cold": [], "fresh home, cached template": [], "warm": []}
for _ in range(REPEATS):
    scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-"))
    env = os.environ | {
        "PREFECT_HOME": str(scratch / "home"),
        "AIRNUB_CACHE_DIR": str(scratch / "cache"),
        "AIRNUB_DATA_ROOT": str(scratch / "data"),
    }
    times["cold"].append(timed(CMD, env))
    env |= {"PREFECT_HOME": str(scratch / "home2"), "AIRNUB_DATA_ROOT": str(scratch / "data2")}
    times["fresh home, cached template"].append(timed(CMD, env))
    times["warm"].append(timed(CMD, env))

rows = [[name, seconds(v), " ".join(f"{t:.1f}" for t in v)] for name, v in times.items()]
print(table(["airnub run dept_project_alpha", "median", "runs (s)"], rows))
