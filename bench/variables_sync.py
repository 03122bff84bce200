"""`airnub variables sync` with 10, 100 and 500 config files against a local Prefect server.

For each size: a throwaway department with that many categories (one config file
each) and a fresh server database. "cold" creates every Variable; "no-op" runs again
and finds nothing to change. Validation (importing each category's module and checking
its file) is timed apart from the API work. REPEATS runs per size, medians.
Usage: uv run python bench/variables_sync.py [REPEATS]
"""

import sys
import tempfile
import time
from pathlib import Path

from airnub_core import conventions
from airnub_platform import local_api, variable_sync
from airnub_platform.runner import prefect_api
from airnub_platform.testing import write_department
from common import median, table

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SIZES = (10, 100, 500)

scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-variables-"))
names = {size: f"dept_sync_{size}" for size in SIZES}
for size, name in names.items():
    write_department(scratch, name, {"ingestion": [f"source_{n:03d}" for n in range(size)]})
sys.path.insert(0, str(scratch))
conventions.departments = lambda: {name: name for name in names.values()}

rows = []
for size, name in names.items():
    times: dict[str, list[float]] = {"validate": [], "cold": [], "no-op": []}
    for repeat in range(REPEATS):
        api = local_api.start(db=scratch / f"prefect-{size}-{repeat}.db")
        with prefect_api(api):
            from prefect.client.orchestration import get_client

            start = time.perf_counter()
            wanted = variable_sync.desired_values([name], "local")
            times["validate"].append(time.perf_counter() - start)
            with get_client(sync_client=True) as client:
                for label in ("cold", "no-op"):
                    start = time.perf_counter()
                    changes = variable_sync.sync(client, wanted, [name])
                    times[label].append(time.perf_counter() - start)
                    expected = "create" if label == "cold" else "unchanged"
                    assert {c.action for c in changes} == {expected}, label
        api.stop()
    validate, cold, noop = (median(times[k]) for k in ("validate", "cold", "no-op"))
    rows.append([
        size, f"{validate:.2f} s", f"{cold:.2f} s", f"{cold / size * 1000:.0f} ms",
        f"{noop:.2f} s", f"{noop / cold:.2f}",
    ])  # fmt: skip
print(f"medians of {REPEATS} runs; validate = check every file (the first run also imports")
print("each category's module; later runs find them imported)\n")
print(table(["files", "validate", "cold sync", "per file", "no-op sync", "no-op / cold"], rows))
