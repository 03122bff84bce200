"""Billed CI minutes per kind of change, from `.github/workflows/ci.yml`'s job graph.

For each scenario (docs only, one department, a core change, workflows only) it commits
the change in a fresh `git clone` of this branch, then walks ci.yml as GitHub would for a
pull request: job and step `if`s evaluated with the outputs the real `airnub affected`
wrote, matrices expanded, and every `run:` step of every job that runs executed with
bash and timed, each job in a fresh virtualenv (the local uv cache is warm). A job's
time is its steps plus an allowance for what cannot run here (default 25 s: job set-up
and completion about 3 s, checkout 2 s, setup-uv with its cache restore 3 s and save
5 s, downloading and linking the wheels the warm local cache has about 12 s); GitHub
bills each job rounded up to a whole minute, and skipped jobs not at all.

    uv run python bench/ci_minutes.py [--allowance 25]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from airnub_platform.github_expressions import render, truth, value
from common import ROOT, table

TARGETS = {"docs only": 2, "one department": 4, "core change": 8}


# --- running jobs -------------------------------------------------------------------
def git(clone: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@local", *args],
        cwd=clone, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def run_job(
    clone: Path, job: dict, context: dict[str, object], scratch: Path
) -> tuple[float, dict[str, str]]:
    """Seconds of its run steps, and its outputs."""
    venv = Path(tempfile.mkdtemp(dir=scratch, prefix="venv-"))
    seen: dict[str, object] = dict(context)
    total = 0.0
    for step in job.get("steps", []):
        if "run" not in step or not truth(step.get("if"), seen):
            continue  # `uses:` steps are in the allowance
        script = step["run"]
        output = scratch / "github_output"
        output.write_text("")
        env = {
            **os.environ,
            "GITHUB_OUTPUT": str(output),
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_REPOSITORY": "bench/local",
            "UV_PROJECT_ENVIRONMENT": str(venv),
            "VIRTUAL_ENV": "",
            **{key: render(text, seen) for key, text in step.get("env", {}).items()},
        }
        start = time.perf_counter()
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=clone, env=env, capture_output=True, text=True,
        )  # fmt: skip
        total += time.perf_counter() - start
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
            raise SystemExit(f"step failed ({done.returncode}): {step.get('name', script)}")
        if "id" in step:
            for line in output.read_text().splitlines():
                key, _, text = line.partition("=")
                seen[f"steps.{step['id']}.outputs.{key}"] = text
    outputs = {key: render(text, seen) for key, text in job.get("outputs", {}).items()}
    return total, outputs


def scenario_jobs(
    clone: Path, workflow: dict, base: str, scratch: Path, cache: dict, allowance: float
) -> list[tuple[str, float]]:
    """(job label, seconds with allowance) for every job a pull request runs."""
    jobs: dict[str, dict] = workflow["jobs"]
    context: dict[str, object] = {
        "github.event_name": "pull_request",
        "github.ref": "refs/pull/1/merge",
        "github.event.pull_request.base.sha": base,
    }
    results: dict[str, str] = {}
    ran: list[tuple[str, float]] = []
    for name, job in jobs.items():  # ci.yml lists every job after the jobs it needs
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        context["needs.*.result"] = [results[n] for n in needs]
        for n in needs:
            context[f"needs.{n}.result"] = results[n]
        if not truth(job.get("if"), context) or any(
            results[n] != "success" and "always()" not in str(job.get("if")) for n in needs
        ):
            results[name] = "skipped"
            continue
        matrix = job.get("strategy", {}).get("matrix")
        entries = [{}]
        if matrix is not None:
            rendered = value(str(matrix)[3:-2], context) if isinstance(matrix, str) else matrix
            entries = rendered.get("include", [rendered])  # type: ignore[union-attr]
        for entry in entries:
            label = f"{name} ({entry['department']})" if "department" in entry else name
            key = (name, json.dumps(entry, sort_keys=True))
            cached = name != "detect" and key in cache
            if not cached:
                matrix_context = {f"matrix.{k}": v for k, v in entry.items()}
                cache[key] = run_job(clone, job, {**context, **matrix_context}, scratch)
            seconds, outputs = cache[key]
            for output, text in outputs.items():
                context[f"needs.{name}.outputs.{output}"] = text
            ran.append((label, seconds + allowance))
        results[name] = "success"
    return ran


def scenarios(clone: Path) -> dict[str, dict[str, str]]:
    """Scenario -> files changed (a line appended: each file ends with a newline)."""
    lock = (clone / "uv.lock").read_text()
    folders = sorted(set(re.findall(r'editable = "(packages/dept_[^"]+)"', lock)))
    found = {"docs only": {"README.md": "More words.\n"}}
    for folder in folders:
        module = sorted((clone / folder / "src").rglob("*.py"))[0].relative_to(clone)
        found[f"one department: {Path(folder).name}"] = {str(module): "# a change\n"}
    found["core change"] = {"packages/core/src/airnub_core/__init__.py": "# a change\n"}
    found["workflows only"] = {".github/workflows/ci.yml": "# a change\n"}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--allowance", type=float, default=25.0, help="seconds added per job")
    allowance = parser.parse_args().allowance
    with tempfile.TemporaryDirectory(prefix="ci-minutes-") as tmp:
        scratch = Path(tmp)
        clone = scratch / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        base = git(clone, "rev-parse", "HEAD")
        workflow = yaml.safe_load((clone / ".github/workflows/ci.yml").read_text())
        cache: dict = {}
        rows, detail = [], []
        for scenario, files in scenarios(clone).items():
            git(clone, "checkout", "-q", "--detach", base)
            for path, text in files.items():
                with open(clone / path, "a") as handle:
                    handle.write(text)
            git(clone, "commit", "-qam", scenario)
            ran = scenario_jobs(clone, workflow, base, scratch, cache, allowance)
            billed = sum(math.ceil(seconds / 60) for _, seconds in ran)
            target = next((t for prefix, t in TARGETS.items() if scenario.startswith(prefix)), None)
            jobs = ", ".join(f"{label} {seconds:.0f} s" for label, seconds in ran)
            met = target is not None and billed <= target
            verdict = "" if target is None else f"≤ {target}: {'met' if met else 'NOT met'}"
            rows.append([scenario, len(ran), billed, verdict])
            detail.append([scenario, jobs])
            print(f"{scenario}: {billed} billed min ({jobs})", file=sys.stderr, flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Allowance per job: {allowance:.0f} s. Times are run steps + allowance.")
    print(f"Load average at the end (1, 5, 15 min; {os.cpu_count()} cores): {load}\n")
    print(table(["change", "jobs", "billed minutes", "target"], rows))
    print()
    print(table(["change", "jobs run, each with its time"], detail))


if __name__ == "__main__":
    main()
