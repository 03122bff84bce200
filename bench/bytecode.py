"""Bytecode: what compiled `.pyc` files buy a process, and what asking uv for them costs.

One environment holding the whole workspace is synced with `--compile-bytecode`; a copy
of it with every `__pycache__` stripped is the "without" variant. Both run with
PYTHONDONTWRITEBYTECODE=1 (as many shells and images set it), so the copy stays
without bytecode and every process recompiles what it imports. Interleaved, per round:
- `python -c "import prefect.flow_engine"`, what a worker's run process imports first;
- a warm `airnub run` of a scratch department (one category per stage), on the
  embedded API, in a Prefect home used once before;
- `uv run python -c pass` against the compiled environment, plain and with
  UV_COMPILE_BYTECODE=1: uv then compiles (walks) the whole environment on every call
  (astral-sh/uv#12202), the cost `[tool.uv] compile-bytecode = true` would add to
  every `uv run` in the workspace.
Usage: uv run python bench/bytecode.py [ROUNDS]
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from airnub_platform.testing import clean_env, write_department_project
from common import ROOT, median, table, timed

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
DEPARTMENT = "dept_bytebench"
AIRNUB = "from airnub_platform.cli import main; main()"
COMPILE_ON = "UV_COMPILE_BYTECODE=1"


def sync(target: Path) -> None:
    """The whole workspace (runtime and platform, no dev tools), bytecode compiled."""
    env = clean_env(UV_PROJECT_ENVIRONMENT=str(target))
    command = ["uv", "sync", "--locked", "--all-packages", "--no-dev", "--compile-bytecode",
               "--quiet"]  # fmt: skip
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=1800)


def strip_bytecode(source: Path, target: Path) -> None:
    """A copy of the environment ``source`` without any ``__pycache__``."""
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))


scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-bytecode-"))
try:
    envs = {"with .pyc": scratch / "with", "without .pyc": scratch / "without"}
    sync(envs["with .pyc"])
    strip_bytecode(envs["with .pyc"], envs["without .pyc"])
    folder = write_department_project(
        scratch / "departments",
        DEPARTMENT,
        "Byte Bench",
        {"ingestion": ["source_a"], "processing": ["clean_a"], "analysis": ["report_a"]},
    )
    base = clean_env(
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONPATH=str(folder / "src"),
        AIRNUB_DATA_ROOT=str(scratch / "data"),
    )
    base = {k: v for k, v in base.items() if not k.startswith("PREFECT_")}

    def env_for(variant: str) -> dict[str, str]:
        return {**base, "PREFECT_HOME": str(scratch / f"home-{variant.split()[0]}")}

    def python(variant: str) -> str:
        return str(envs[variant] / "bin" / "python")

    for variant in envs:  # each home migrated once: the timed runs below are warm
        timed([python(variant), "-c", AIRNUB, "run", DEPARTMENT], env_for(variant), scratch)
    times: dict[str, list[float]] = {}
    loads: list[float] = []
    uv_run = ["uv", "run", "--locked", "--all-packages", "--no-dev", "python", "-c", "pass"]
    uv_env = {**base, "UV_PROJECT_ENVIRONMENT": str(envs["with .pyc"])}
    for round_ in range(ROUNDS):
        order = list(envs) if round_ % 2 == 0 else list(reversed(envs))
        for variant in order:
            loads.append(os.getloadavg()[0])
            imports = [python(variant), "-c", "import prefect.flow_engine"]
            times.setdefault(f"import prefect.flow_engine, {variant}", []).append(
                timed(imports, env_for(variant), scratch)
            )
            run = [python(variant), "-c", AIRNUB, "run", DEPARTMENT]
            times.setdefault(f"warm airnub run {DEPARTMENT}, {variant}", []).append(
                timed(run, env_for(variant), scratch)
            )
        for label, extra in (
            ("plain", {}),
            ("UV_COMPILE_BYTECODE=1", {"UV_COMPILE_BYTECODE": "1"}),
        ):
            loads.append(os.getloadavg()[0])
            times.setdefault(f"uv run python -c pass, {label}", []).append(
                timed(uv_run, {**uv_env, **extra}, ROOT)
            )
    rows = [
        [name, f"{median(v):.2f}", " ".join(f"{t:.2f}" for t in v)] for name, v in times.items()
    ]

    def ratio(first: str, second: str) -> str:
        return f"{median(times[first]) / median(times[second]):.2f}"

    for measure in ("import prefect.flow_engine", f"warm airnub run {DEPARTMENT}"):
        rows.append([f"ratio with / without, {measure} (same run)",
                     ratio(f"{measure}, with .pyc", f"{measure}, without .pyc"), ""])  # fmt: skip
    rows.append(["ratio UV_COMPILE_BYTECODE=1 / plain, uv run (same run)",
                 ratio("uv run python -c pass, UV_COMPILE_BYTECODE=1",
                       "uv run python -c pass, plain"), ""])  # fmt: skip
    print(f"medians of {ROUNDS} interleaved rounds; seconds unless a ratio;"
          f" load average (1 min) {min(loads):.2f}-{max(loads):.2f} during the run\n")  # fmt: skip
    print(table(["measure", "median", "values"], rows))
finally:
    shutil.rmtree(scratch, ignore_errors=True)
