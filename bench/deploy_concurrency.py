"""`airnub deploy` of 1 and of 50 departments against a local Prefect API, departments
registered concurrently (`--concurrency`, default 2) or one after another (1), beside
`prefect --no-prompt deploy --all` run in each department's folder.

Builds a copy of the repository with 50 departments (the 48 extra ones made by the
generators, one category per stage), a git repository with its own venv, unless
BENCH_WORKSPACE names such a copy made earlier (it is only read). Each round, interleaved:
- first deploy: a fresh local API each time (started and stopped by PID outside the
  timing), then `airnub deploy` of one department, of all 50 at the default concurrency,
  and of all 50 with --concurrency 1;
- redeploy: the same three on a warm API already holding everything ("unchanged");
- `prefect --no-prompt deploy --all` in the folders of the first PREFECT_SUBSET
  departments (default 5) on the warm API; the time for 50 is extrapolated from them.
Usage: uv run python bench/deploy_concurrency.py [REPEATS] [PREFECT_SUBSET]
"""

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from airnub_platform import local_api
from airnub_platform.testing import OWNED, clean_env, copy_workspace, generate
from common import ROOT, median, table, timed

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SUBSET = int(sys.argv[2]) if len(sys.argv) > 2 else 5
DEPARTMENTS = 50
ONE = "dept_bench_00"


def build(root: Path) -> Path:
    """A copy of the repository grown to DEPARTMENTS departments, locked and synced."""
    copy_workspace(ROOT, root)
    for n in range(DEPARTMENTS - 2):
        department = f"dept_bench_{n:02d}"
        print(f"generating {department} ...", file=sys.stderr)
        generate(root, "add_department", "--id", department, "--no-lock", *OWNED)
        for stage in ("ingestion", "processing", "analysis"):
            generate(root, "add_category", "--department", department, "--stage", stage,
                     "--id", f"{stage}_source")  # fmt: skip
    env = clean_env()
    subprocess.run(["uv", "lock", "--quiet"], cwd=root, env=env, check=True)
    subprocess.run(["uv", "sync", "--all-packages", "--locked", "--quiet"], cwd=root, env=env,
                   check=True)  # fmt: skip
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.org"]
    subprocess.run([*git, "commit", "-qm", "grown"], cwd=root, check=True)
    return root


scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-deploys-"))
workspace = Path(os.environ.get("BENCH_WORKSPACE") or build(scratch / "repo"))
departments = sorted(p.name for p in (workspace / "packages").glob("dept_*"))
assert len(departments) == DEPARTMENTS, f"{workspace}: {len(departments)} departments"
airnub_deploy = ["uv", "run", "--no-sync", "airnub", "deploy"]
prefect_deploy = ["uv", "run", "--no-sync", "prefect", "--no-prompt", "deploy", "--all"]
VARIANTS = {
    "one department": [ONE],
    f"{DEPARTMENTS} departments, default concurrency (2)": [],
    f"{DEPARTMENTS} departments, --concurrency 1": ["--concurrency", "1"],
    f"{DEPARTMENTS} departments, --concurrency 8": ["--concurrency", "8"],
}
started: list[local_api.LocalAPI] = []
fresh = itertools.count()  # a new database file for every fresh API


def api_env(name: str) -> tuple[local_api.LocalAPI, dict[str, str]]:
    """A fresh local API with its own database and Prefect home, healthy."""
    api = local_api.start(db=scratch / f"{name}.db")
    started.append(api)
    api.wait_healthy()
    return api, clean_env(PREFECT_API_URL=api.url, PREFECT_HOME=str(scratch / f"{name}-home"))


def stop(api: local_api.LocalAPI) -> None:
    api.stop()
    started.remove(api)


times: dict[str, list[float]] = {}
loads: list[float] = []
try:
    warm, warm_env = api_env("warm")
    timed(airnub_deploy, warm_env, cwd=workspace)  # everything deployed once: "unchanged" next
    for _ in range(REPEATS):
        loads.append(os.getloadavg()[0])
        for name, args in VARIANTS.items():
            api, env = api_env(f"fresh-{next(fresh)}")
            times.setdefault(f"first deploy, {name}", []).append(
                timed([*airnub_deploy, *args], env, cwd=workspace)
            )
            stop(api)
            times.setdefault(f"redeploy, {name}", []).append(
                timed([*airnub_deploy, *args], warm_env, cwd=workspace)
            )
        subset = sum(
            timed(prefect_deploy, warm_env, cwd=workspace / "packages" / name)
            for name in departments[:SUBSET]
        )
        times.setdefault(f"prefect deploy --all, {SUBSET} departments, one by one", []).append(
            subset
        )
        loads.append(os.getloadavg()[0])
finally:
    for api in list(started):
        stop(api)
    if "BENCH_WORKSPACE" not in os.environ:
        shutil.rmtree(scratch, ignore_errors=True)


def ratio(numerator: str, denominator: str) -> float:
    return median(times[numerator]) / median(times[denominator])


rows = [[name, f"{median(v):.2f}", " ".join(f"{t:.2f}" for t in v)] for name, v in times.items()]
prefect_each = median(times[f"prefect deploy --all, {SUBSET} departments, one by one"]) / SUBSET
rows.append([f"prefect deploy --all, {DEPARTMENTS} departments (EXTRAPOLATED from {SUBSET})",
             f"{prefect_each * DEPARTMENTS:.2f}", "-"])  # fmt: skip
print(f"{REPEATS} rounds, medians; load average (1 min) during the run: "
      f"{min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} CPUs\n")  # fmt: skip
print(table(["command", "median (s)", "runs (s)"], rows))
many, one = f"{DEPARTMENTS} departments, default concurrency (2)", "one department"
sequential = f"{DEPARTMENTS} departments, --concurrency 1"
print()
for kind in ("first deploy", "redeploy"):
    print(f"{kind}: {DEPARTMENTS} / 1 departments "
          f"{ratio(f'{kind}, {many}', f'{kind}, {one}'):.2f} (target <= 2.00); "
          f"concurrency 1 / 2 {ratio(f'{kind}, {sequential}', f'{kind}, {many}'):.2f}")  # fmt: skip
print(
    f"prefect deploy per department (extrapolated to {DEPARTMENTS}) / airnub redeploy of "
    f"{DEPARTMENTS}: {prefect_each * DEPARTMENTS / median(times[f'redeploy, {many}']):.1f}"
)
