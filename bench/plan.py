"""`airnub plan` for 50 departments against a local Prefect server (issue 14's target:
under 5 s), and `airnub drift` over the same departments.

Setup, untimed: DEPARTMENTS generated departments (``write_department_project``: three
stage deployments, six categories, so six Variables, and alert rules, each) in a scratch
git repository whose ``uv.lock`` lists them and whose head changes the root
``pyproject.toml`` (so every department is affected); a local Prefect server on its own
database. Timed: the ``airnub`` console script as a user runs it, in a process of its
own, ``--format json`` to a pipe, RUNS times each:

* ``plan, empty server``: everything is to create (automations ``blocked``: no
  notification block yet);
* ``plan, applied``: after ``airnub deploy``, ``variables sync``, ``blocks sync`` (with
  each department's alert webhook) and ``automations sync`` of every department, so
  everything is unchanged (a pull request's usual case; checked before timing);
* ``drift, applied``: the same comparison for every department the process knows.

``--baseline=DIR`` also times the code in ``DIR/packages/platform/src`` (e.g.
``git archive main packages/platform/src | tar -x -C DIR``), first on the path, in
interleaved rounds: each round runs every version once, so both see the same load.
``--profile`` also writes a cProfile of one ``plan, applied`` run of each version and
prints its top functions. Prints medians, every run, and the load average before and after.
Usage: uv run python bench/plan.py [RUNS] [DEPARTMENTS] [--profile] [--baseline=DIR]
"""

import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airnub_core import conventions
from airnub_core.conventions import alert_webhook_env
from airnub_platform import local_api
from airnub_platform.plan import QUIET
from airnub_platform.testing import write_department_project
from common import median, table

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
RUNS = int(ARGS[0]) if ARGS else 5
COUNT = int(ARGS[1]) if len(ARGS) > 1 else 50
PROFILE = "--profile" in sys.argv
# --baseline=DIR: a checkout of the code to compare with (e.g. `git archive main | tar -x`)
BASELINE = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--baseline=")), None)
CATEGORIES = {stage: ["first", "second"] for stage in conventions.STAGES}
AIRNUB = str(Path(sys.executable).with_name("airnub"))
DROPPED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")


def git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=b", "-c", "user.email=b@b", "-c", "commit.gpgsign=false"]
    done = subprocess.run([*command, *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def workspace(root: Path, departments: list[str]) -> str:
    """The departments in a git repository; returns the base commit."""
    lock = ["version = 1"]
    for department in departments:
        write_department_project(root, department, department.replace("_", " ").title(),
                                 CATEGORIES)  # fmt: skip
        name = conventions.distribution_name(department)
        lock += ["[[package]]", f'name = "{name}"', 'version = "0.0.0"',
                 f'source = {{ editable = "packages/{department}" }}']  # fmt: skip
    (root / "uv.lock").write_text("\n".join(lock) + "\n")
    (root / "pyproject.toml").write_text('[project]\nname = "bench"\n')
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    base = git(root, "rev-parse", "HEAD")
    (root / "pyproject.toml").write_text('[project]\nname = "bench"\nversion = "1"\n')
    git(root, "commit", "-qam", "head: a root change affects every department")
    return base


def airnub(
    root: Path, env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)
) -> tuple[float, float]:
    """Wall time and CPU time (user + system: what the machine's other load adds least to)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([AIRNUB, *args], cwd=root, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode not in ok:
        sys.exit(f"airnub {' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, used


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-plan-"))
    departments = [f"dept_bench_{n:02d}" for n in range(COUNT)]
    base = workspace(scratch, departments)
    api = local_api.start(db=scratch / "prefect.db")
    api.wait_healthy()
    sources = [str(scratch / "packages" / d / "src") for d in departments]
    env = {
        # PYTHONDONTWRITEBYTECODE (set on this machine) would compile every module from
        # source in every run: 4 s of a 19 s plan. A user's or CI's environment caches it.
        **{k: v for k, v in os.environ.items() if k not in DROPPED},
        "PYTHONPATH": os.pathsep.join(sources),
        "PREFECT_API_URL": api.url,
        "PREFECT_HOME": str(scratch / "home"),
        "AIRNUB_DATA_ROOT": str(scratch / "data"),
        "DO_NOT_TRACK": "1",
    }
    plan = ("plan", "--base", base, "--format", "json")
    drift = ("drift", "--format", "json")
    versions = {"": env}
    if BASELINE:  # the same commands with the baseline's airnub_platform first on the path
        old = Path(BASELINE).resolve() / "packages" / "platform" / "src"
        versions[" (baseline)"] = {**env, "PYTHONPATH": os.pathsep.join([str(old), *sources])}
    load_before = os.getloadavg()
    times: dict[str, list[tuple[float, float]]] = {}

    def rounds(name: str, *args: str, ok: tuple[int, ...] = (0,)) -> None:
        """RUNS rounds, each running every version once (interleaved: same load)."""
        for _ in range(RUNS):
            for suffix, environment in versions.items():
                run = airnub(scratch, environment, *args, ok=ok)
                times.setdefault(name + suffix, []).append(run)

    try:
        for environment in versions.values():  # untimed: writes the bytecode caches
            airnub(scratch, environment, *plan)
        rounds("plan, empty server", *plan)
        apply_everything(scratch, env, departments)
        report = subprocess.run([AIRNUB, *plan], cwd=scratch, env=env, capture_output=True,
                                text=True, check=True).stdout  # fmt: skip
        pending = [row for row in json.loads(report)["changes"] if row["action"] not in QUIET]
        assert not pending, f"applied, yet the plan has changes: {pending[:5]}"
        rounds("plan, applied", *plan)
        # drift also sees the departments installed in this environment: exit 1 is fine
        rounds("drift, applied", *drift, ok=(0, 1))
        if PROFILE:
            for suffix, environment in versions.items():
                profiled(scratch, environment, plan, suffix)
    finally:
        api.stop()
    load_after = os.getloadavg()
    print(f"{COUNT} departments (3 deployments, 6 Variables each), medians of {RUNS} runs;")
    print(f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n")
    rows = [
        [name, f"{median([w for w, _ in runs]):.2f} s", f"{median([c for _, c in runs]):.2f} s",
         " ".join(f"{w:.2f}" for w, _ in runs)]
        for name, runs in times.items()
    ]  # fmt: skip
    print(table(["command", "median wall", "median CPU", "runs, wall (s)"], rows))


def apply_everything(root: Path, env: dict[str, str], departments: list[str]) -> None:
    """What a merge applies: deployments, Variables, blocks (with each department's alert
    webhook, so its automations have their notification block) and automations."""
    hooks = {alert_webhook_env(d): f"https://hooks.example.com/{d}" for d in departments}
    airnub(root, env, "deploy", *departments)
    airnub(root, env, "variables", "sync", *departments)
    airnub(root, {**env, **hooks}, "blocks", "sync", *departments)
    airnub(root, env, "automations", "sync", *departments)


def profiled(root: Path, env: dict[str, str], plan: tuple[str, ...], suffix: str) -> None:
    """One run under cProfile, in a process of its own as above; prints the top functions."""
    out, script = root / f"plan{suffix.strip(' ()')}.prof", root / "run_plan.py"
    print(f"\n=== cProfile of one `plan, applied` run{suffix} ===")
    script.write_text(f"import sys\nsys.argv = ['airnub', *{list(plan)!r}]\n"
                      "from airnub_platform.cli import main\nmain()\n")  # fmt: skip
    command = [sys.executable, "-m", "cProfile", "-o", str(out), str(script)]
    subprocess.run(command, cwd=root, env=env, capture_output=True, check=False)
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(15)
    print(f"profile kept in {out}")


if __name__ == "__main__":
    main()
