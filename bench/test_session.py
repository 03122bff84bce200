"""A department's test session against a bare prefect_test_harness session.

Runs both, interleaved, REPEATS times and prints medians, their ratio and the load.
Alpha stays the subject: its 22 tests and about 40 flow runs are the shape the targets
were set on, and a generated department's tests are far fewer.
Usage: uv run python bench/test_session.py [REPEATS]
"""

import os
import sys

from common import median, runs_table, timed

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
PYTEST = ["uv", "run", "--no-sync", "pytest", "-q", "-p", "no:randomly"]
SESSIONS = {
    "bare harness, 1 trivial flow test": [*PYTEST, "-p", "no:airnub", "bench/bare_harness"],
    "Alpha's whole test session": [*PYTEST, "packages/dept_project_alpha"],
}

# The bare harness waits this long for its server (Prefect: 30 s, too short under load)
ENV = os.environ | {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
times: dict[str, list[float]] = {name: [] for name in SESSIONS}
loads: list[float] = []
for _ in range(REPEATS):
    for name, cmd in SESSIONS.items():
        times[name].append(timed(cmd, ENV))
    loads.append(os.getloadavg()[0])

bare, alpha = (median(v) for v in times.values())
print(runs_table("session", times))
print(f"\nratio Alpha / bare harness: {alpha / bare:.2f} (target <= 0.60)")
print(f"load average (1 min) after each round: {' '.join(f'{x:.1f}' for x in loads)}")
