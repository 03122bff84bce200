"""The README's test command, `uv run pytest`, timed as a user runs it.

Also times the same suite with the sample departments removed (a scratch copy made
with the generators), which is the floor every adopter starts from. Interleaved,
REPEATS times; prints medians, each run, and the ratio. Run it on an idle machine:
the README quotes it. Usage: uv run python bench/test_suite.py [REPEATS]
"""

import os
import sys
import tempfile
from pathlib import Path

from airnub_platform.testing import clean_env, scratch_workspace
from common import ROOT, median, runs_table, timed

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3

with tempfile.TemporaryDirectory(prefix="bench-suite-") as scratch:
    bare = scratch_workspace(Path(scratch), {"dept_bench_only": "Bench Only"})
    runs = {
        "uv run pytest (this repository)": ROOT,
        "uv run pytest (one generated department)": bare,
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(REPEATS):
        for name, where in runs.items():
            times[name].append(timed(["uv", "run", "pytest", "-q"], env=clean_env(), cwd=where))

print(runs_table("suite", times))
full, floor = (median(v) for v in times.values())
load = os.getloadavg()[0]
print(f"\nratio: {full / floor:.2f}; load average after: {load:.2f} on {os.cpu_count()} cores")
