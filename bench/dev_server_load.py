"""`airnub dev`'s server on SQLite, 20 runs triggered at once: Prefect's pool vs one connection.

Each round starts the server exactly as `airnub dev` does (`airnub_platform.dev.start_server`)
on a new SQLite file, deploys a throwaway flow, starts a process worker, triggers RUNS
runs at once over HTTP and waits for them (tools/integration/dev_server_load.py does
all of it); once with Prefect's default connection pool, once with airnub's single
connection, interleaved. Reported per variant: "database is locked" lines in the server
log, HTTP 503s, other failed calls, runs COMPLETED, the wall time from the burst to
the last final state, and that time per COMPLETED run (runs refused with 503 never ran,
so the wall times alone are not comparable).
Usage: uv run python bench/dev_server_load.py [REPEATS] [RUNS]
"""

import sys
import tempfile
from pathlib import Path

from common import ROOT, median, table

# The check's module has this script's name: imported by its path from the root.
sys.path.insert(0, str(ROOT))
from tools.integration.dev_server_load import LoadResult, report, run_load

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
VARIANTS = {
    "Prefect's default pool (before)": False,
    "one SQLite connection (airnub dev now)": True,
}

scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-dev-load-"))
results: dict[str, list[LoadResult]] = {name: [] for name in VARIANTS}
for repeat in range(REPEATS):
    for name, single in VARIANTS.items():
        result = run_load(scratch / f"{repeat}-{int(single)}", RUNS, single_connection=single)
        print(f"round {repeat + 1}, {name}: {report(result)}", flush=True)
        results[name].append(result)


def spread(values: list[float], digits: int = 0) -> str:
    return f"{median(values):.{digits}f} ({' '.join(f'{v:.{digits}f}' for v in values)})"


rows = [
    [
        name,
        spread([r.locked for r in rs]),
        spread([r.status_503 for r in rs]),
        spread([len(r.errors) for r in rs]),
        " ".join(f"{r.completed}/{r.runs}" for r in rs),
        spread([r.wall for r in rs], 1),
        spread([r.wall / max(r.completed, 1) for r in rs], 1),
    ]
    for name, rs in results.items()
]
headers = ["server", "'database is locked' lines", "HTTP 503", "failed calls", "COMPLETED",
           "wall s", "s per COMPLETED run"]  # fmt: skip
print(f"\n{RUNS} runs triggered at once, {REPEATS} rounds interleaved; median (each round)\n")
print(table(headers, rows))
print(f"\nlogs: {scratch}")
