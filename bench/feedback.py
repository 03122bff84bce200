"""How soon `airnub` says something useful: the error line for an unknown stage or
category, the first line and the first progress line of `airnub run <dept>`, and
`airnub dev --status` (dev not running; dev's state naming a live server).

Each command is a process of its own, started both as `uv run --no-sync airnub` and as
`.venv/bin/airnub` (uv's own start-up is part of what a user waits for), with the code
of this checkout ("new") and, given a commit, that commit's platform and core ("old",
extracted with `git archive` into a temp folder and put first on PYTHONPATH). Variants
are interleaved round by round; ratios are new/old inside this one run. The department
is generated in a temp folder (2 ingestion categories), installed for these processes
alone through its package metadata; nothing is written into the repository. Besides
wall seconds, each command's CPU seconds (its own and its waited-for children's, the
embedded API's included) are shown: on a shared machine they move far less than wall time.
Usage: uv run python bench/feedback.py [ROUNDS] [OLD_COMMIT]
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from airnub_platform import local_api
from airnub_platform.testing import installed_department
from common import ROOT, median, table

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
OLD = sys.argv[2] if len(sys.argv) > 2 else None
DEPT = "dept_bench_feedback"
DEADLINE = 600.0  # a run that takes longer is killed and the benchmark fails
# a line saying how a stage is going: the new progress line, else the old stage table
STAGE_NEWS = re.compile(rf"^{DEPT} ingestion( \w+)?: Running|^Ingestion Flow \(")

scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-feedback-"))


def old_sources(commit: str) -> str:
    """``commit``'s platform and core sources, extracted under the scratch folder."""
    target = scratch / "old"
    paths = ["packages/platform/src", "packages/core/src"]
    archive = subprocess.run(["git", "archive", commit, *paths], cwd=ROOT, check=True,
                             capture_output=True).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return os.pathsep.join(str(target / p) for p in paths)


def launchers() -> dict[str, list[str]]:
    return {
        "uv run": ["uv", "run", "--no-sync", "airnub"],
        "direct": [str(ROOT / ".venv/bin/airnub")],
    }


def timed_lines(cmd: list[str], env: dict[str, str], marks: dict[str, re.Pattern[str]]):
    """Seconds from start to the first line matching each of ``marks``, and to exit."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    seen: dict[str, float] = {}
    assert process.stdout is not None
    for line in process.stdout:
        for name, pattern in marks.items():
            if name not in seen and pattern.search(line):
                seen[name] = time.perf_counter() - start
        if time.perf_counter() - start > DEADLINE:
            process.kill()
            raise SystemExit(f"still running after {DEADLINE:.0f} s: {' '.join(cmd)}")
    _, status, usage = os.wait4(process.pid, 0)  # its CPU, with the children it waited for
    process.returncode = os.waitstatus_to_exitcode(status)
    seen["exit"] = time.perf_counter() - start
    seen["cpu (user+sys)"] = usage.ru_utime + usage.ru_stime  # barely moved by the load
    missing = [name for name in marks if name not in seen]
    if missing:
        raise SystemExit(f"{' '.join(cmd)}: no line for {missing} (exit {process.returncode})")
    return seen


def main() -> None:
    dept_env = installed_department(scratch / "depts", DEPT, "Bench Feedback",
                                    {"ingestion": ["feed", "other"]})  # fmt: skip
    base = {k: v for k, v in dept_env.items() if k not in ("PREFECT_API_URL", "VIRTUAL_ENV")}
    base |= {"PYTHONUNBUFFERED": "1", "AIRNUB_DATA_ROOT": str(scratch / "data")}
    versions = {"new": base["PYTHONPATH"]}
    if OLD:
        versions["old"] = os.pathsep.join([old_sources(OLD), base["PYTHONPATH"]])
    home = scratch / "home"
    server = local_api.start(db=scratch / "dev-home" / "prefect.db")  # dev's live server
    dev_home = scratch / "dev-home"
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    state = {"pid": server.process.pid, "port": port, "database": "sqlite",
             "children": {"server": server.process.pid}, "ready": True}  # fmt: skip
    (dev_home / "airnub-dev.json").write_text(json.dumps(state))
    any_line, error = re.compile("."), re.compile(r"^error: ")
    cases = {
        "unknown stage: error line": (["run", DEPT, "nostage"], home, {"error": error}),
        "unknown category: error line": (["run", DEPT, "--category", "x"], home, {"error": error}),
        "run: first line": (["run", DEPT, "ingestion"], home, {"first": any_line,
                                                              "stage": STAGE_NEWS}),
        "dev --status, not running": (["dev", "--status"], home, {"first": any_line}),
        "dev --status, live server": (["dev", "--status"], dev_home, {"first": any_line}),
    }  # fmt: skip
    times: dict[tuple[str, str, str, str], list[float]] = {}
    load_before = os.getloadavg()
    try:
        server.wait_healthy()
        for round_ in range(ROUNDS):
            # new first in even rounds, old first in odd ones: neither always runs second
            order = list(versions.items())[:: -1 if round_ % 2 else 1]
            for case, (args, prefect_home, marks) in cases.items():
                for launcher, cmd in launchers().items():
                    for version, path in order:
                        env = base | {"PYTHONPATH": path, "PREFECT_HOME": str(prefect_home)}
                        seen = timed_lines([*cmd, *args], env, marks)
                        for mark in (*marks, "exit", "cpu (user+sys)"):
                            times.setdefault((case, mark, launcher, version), []).append(seen[mark])
    finally:
        server.stop(settle=False)
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(times, list(versions), load_before, os.getloadavg())


def print_table(times, versions, before, after) -> None:
    headers = ["what", "until"]
    for launcher in launchers():
        headers += [f"{version} ({launcher})" for version in versions]
        if len(versions) == 2:
            headers.append(f"new/old ({launcher})")
    rows = []
    for case, mark in dict.fromkeys((c, m) for c, m, _, _ in times):
        row: list[object] = [case, mark]
        for launcher in launchers():
            medians = {v: median(times[(case, mark, launcher, v)]) for v in versions}
            row += [f"{medians[v]:.2f} s" for v in versions]
            if len(versions) == 2:
                row.append(f"{medians['new'] / medians['old']:.2f}")
        rows.append(row)
    print(f"{ROUNDS} rounds, medians, variants interleaved; old = {OLD or '(not run)'}")
    print(f"load average before: {before[0]:.2f} {before[1]:.2f} {before[2]:.2f};"
          f" after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f} (2 cores)\n")  # fmt: skip
    print(table(headers, rows))
    print(f"\ncommand: uv run python bench/feedback.py {ROUNDS} {OLD or ''}".rstrip())


if __name__ == "__main__":
    main()
