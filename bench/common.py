"""Small helpers shared by the benchmarks: timing commands and printing tables."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> float:
    """Wall time of a command (run with ``env``, default this process's); fails loudly."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env or dict(os.environ), capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:])
        raise SystemExit(f"benchmark command failed ({done.returncode}): {' '.join(cmd)}")
    return elapsed


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def seconds(values: list[float]) -> str:
    return f"{median(values):.2f} s"


def runs_table(what: str, times: dict[str, list[float]]) -> str:
    """One row per variant: its median and every run, in the order they ran."""
    rows = [[name, seconds(v), " ".join(f"{t:.1f}" for t in v)] for name, v in times.items()]
    return table([what, "median", "runs (s)"], rows)
