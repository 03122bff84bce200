"""The tools as the repository grows: generators, check, affected, tests and deploy.

Builds copies of the repository with 2, 20 and 50 departments (the extra ones made
by the generators, each with one category per stage), each a git repository with its
own venv, whose last commit changes one file of Alpha. Then, interleaved, REPEATS times:
- `add_department` (with and without its `uv lock`) and `add_category` into a scratch copy;
- `airnub check` and `airnub affected --base HEAD~1` on each copy;
- Alpha's test session on the 2- and 50-department copies;
- on the 20-department copy, against a local Prefect API: `airnub deploy` of one
  department and of all 20, and `prefect --no-prompt deploy --all` run in each
  department's folder, one after another, for the same 20.
Usage: uv run python bench/scale.py [REPEATS]
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from airnub_platform import local_api
from airnub_platform.testing import OWNED
from common import ROOT, median, seconds, table, timed

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SIZES = (2, 20, 50)
ENV = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PREFECT_API_URL"}}


def generator(script: str, root: Path, *args: str) -> list[str]:
    return [sys.executable, str(root / "tools" / "generators" / f"{script}.py"), *args]


def copy_repository(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def git(root: Path, *args: str) -> None:
    command = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.org", *args]
    subprocess.run(command, cwd=root, check=True, capture_output=True)


def commit_a_change(root: Path) -> None:
    """History for `airnub affected`: everything, then one change to Alpha's code."""
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    (root / "packages/dept_project_alpha/src/dept_project_alpha/__init__.py").write_text(
        '"""Project Alpha, touched."""\n'
    )
    git(root, "commit", "-qam", "change Alpha")


def grow(root: Path, departments: int) -> None:
    """Add generated departments until there are ``departments``, then lock and sync."""
    for n in range(departments - 2):
        dept = f"dept_bench_{n:02d}"
        commands = [generator("add_department", root, "--id", dept, "--no-lock", *OWNED)]
        for stage in ("ingestion", "processing", "analysis"):
            commands.append(generator("add_category", root, "--department", dept,
                                      "--stage", stage, "--id", f"{stage}_source"))  # fmt: skip
        for command in commands:
            subprocess.run(command, cwd=root, env=ENV, check=True, capture_output=True)
    subprocess.run(["uv", "lock", "--quiet"], cwd=root, env=ENV, check=True)
    subprocess.run(["uv", "sync", "--all-packages", "--locked", "--quiet"], cwd=root, env=ENV,
                   check=True)  # fmt: skip


scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-generators-"))
copies = {size: copy_repository(scratch / f"repo{size}") for size in SIZES}
for size, root in copies.items():
    print(f"building a repository of {size} departments ...", file=sys.stderr)
    grow(root, size)
    commit_a_change(root)

api = local_api.start(db=scratch / "prefect.db")
api.wait_healthy()
DEPLOY_ENV = ENV | {"PREFECT_API_URL": api.url, "PREFECT_HOME": str(scratch / "home")}
repo20 = copies[20]
departments20 = sorted(p.name for p in (repo20 / "packages").glob("dept_*"))
airnub_deploy = ["uv", "run", "--no-sync", "airnub", "deploy"]
timed(airnub_deploy, DEPLOY_ENV, cwd=repo20)  # creates the work pools prefect deploy needs

times: dict[str, list[float]] = {}
for repeat in range(REPEATS):
    target = copy_repository(scratch / f"gen{repeat}")
    for lock in (True, False):
        name = f"add_department {'with' if lock else 'without'} uv lock"
        args = ["--id", f"timed_{int(lock)}", *OWNED, *([] if lock else ["--no-lock"])]
        times.setdefault(name, []).append(timed(generator("add_department", target, *args), ENV))
    args = ["--department", "timed_1", "--stage", "ingestion", "--id", "feed"]
    times.setdefault("add_category", []).append(timed(generator("add_category", target, *args)))
    for size, root in copies.items():
        command = ["uv", "run", "--no-sync", "airnub", "check"]
        times.setdefault(f"airnub check, {size} departments", []).append(
            timed(command, ENV, cwd=root)
        )
        command = ["uv", "run", "--no-sync", "airnub", "affected", "--base", "HEAD~1"]
        times.setdefault(f"airnub affected, {size} departments", []).append(
            timed(command, ENV, cwd=root)
        )
    for size in (2, 50):
        command = ["uv", "run", "--no-sync", "pytest", "-q", "packages/dept_project_alpha"]
        times.setdefault(f"Alpha's tests, {size} departments", []).append(
            timed(command, ENV, cwd=copies[size])
        )
    one = timed([*airnub_deploy, "dept_project_alpha"], DEPLOY_ENV, cwd=repo20)
    times.setdefault("airnub deploy, 1 of 20 departments", []).append(one)
    every = timed(airnub_deploy, DEPLOY_ENV, cwd=repo20)
    times.setdefault("airnub deploy, all 20 departments", []).append(every)
    prefect_deploy = ["uv", "run", "--no-sync", "prefect", "--no-prompt", "deploy", "--all"]
    each = sum(
        timed(prefect_deploy, DEPLOY_ENV, cwd=repo20 / "packages" / name) for name in departments20
    )
    times.setdefault("prefect deploy --all, per department, 20 departments", []).append(each)

rows = [[name, seconds(v), " ".join(f"{t:.2f}" for t in v)] for name, v in times.items()]
print(table(["command", "median", "runs (s)"], rows))
checks = [median(times[f"airnub check, {size} departments"]) for size in SIZES]
print(
    "\nairnub check per extra department: "
    f"{(checks[1] - checks[0]) / 18 * 1000:.0f} ms (2->20), "
    f"{(checks[2] - checks[1]) / 30 * 1000:.0f} ms (20->50)"
)
ratio = median(times["Alpha's tests, 50 departments"]) / median(
    times["Alpha's tests, 2 departments"]
)
print(f"Alpha's test session, 50 / 2 departments: {ratio:.2f} (target <= 1.10)")
shutil.rmtree(scratch, ignore_errors=True)
