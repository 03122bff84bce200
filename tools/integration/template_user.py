"""What a team adopting the template does first, checked end to end in a scratch copy.

1. copy the repository (what git tracks, plus untracked files it does not ignore);
2. add a department with the generators (a category per stage and a task);
3. remove every department the repository shipped with, with remove_department;
4. in the copy's own environment: `airnub list`, the README's main command `uv run
   airnub run`, `airnub check`, ruff, `uv lock --check`, and the README's test command,
   `uv run pytest`, which runs every remaining test.

Exit 0 only if all of it passed (pytest's "no tests collected" counts as a failure).
The copy is deleted afterwards. Usage: uv run python tools/integration/template_user.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airnub_platform.testing import (
    clean_env,
    generate,
    scratch_workspace,
    unwind_on_stop_signals,
)

DEPARTMENT = "dept_newcomer"
CHECKS = [
    ["uv", "run", "--no-sync", "airnub", "list"],
    ["uv", "run", "airnub", "run"],  # the README's main command
    ["uv", "run", "--no-sync", "airnub", "check"],
    ["uv", "run", "--no-sync", "ruff", "check", "."],
    ["uv", "run", "--no-sync", "ruff", "format", "--check", "."],
    ["uv", "lock", "--check"],
    ["uv", "run", "pytest"],
]
NO_TESTS_COLLECTED = 5


def main() -> int:
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="airnub-template-user-"))
    try:
        root = scratch_workspace(scratch, {DEPARTMENT: "Newcomer Team"})
        generate(root, "add_task", "--department", DEPARTMENT, "--stage", "ingestion",
                 "--category", "feed", "--id", "count_rows", "--with-config")  # fmt: skip
        left = sorted(p.name for p in (root / "packages").iterdir() if p.is_dir())
        print(f"scratch copy at {root}: packages {', '.join(left)}")
        for command in CHECKS:
            begun = time.monotonic()
            done = subprocess.run(
                command, cwd=root, env=clean_env(AIRNUB_DATA_ROOT=str(scratch / "data"))
            )
            took = time.monotonic() - begun
            if done.returncode == NO_TESTS_COLLECTED and command[-1] == "pytest":
                print("pytest collected no tests: the suite is missing", file=sys.stderr)
                return 1
            if done.returncode != 0:
                print(f"failed ({done.returncode}): {' '.join(command)}", file=sys.stderr)
                return 1
            print(f"passed in {took:.1f} s: {' '.join(command)}")
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"template-user check failed: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    unwind_on_stop_signals()  # .ci/run runs it in the background, and stops it with SIGTERM
    sys.exit(main())
