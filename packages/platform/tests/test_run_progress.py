"""`airnub run` shows each stage's and category's state as it changes: plain lines when
its output is not a terminal, a live table on a real terminal (a pty), and Prefect's
"View at" links only where a UI can exist (a configured API, not the embedded one)."""

import io
import logging
import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest
from airnub_platform.progress import FLOW_RUNS_LOGGER, RunProgress
from airnub_platform.testing import importable_departments, installed_department, write_department
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

DEPT = "dept_progress_shown"
NAME = "Progress Team"
CATEGORIES = {"ingestion": ["feed", "broken"], "processing": ["tidy"]}
STATES = ["Pending", "Running", "Completed", "Failed", "Crashed"]
LINE = re.compile(r"^dept_\w+ \w+( \w+)?: (Running|Completed|Failed|Crashed)( in \d+\.\d s)?$")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress")
    write_department(root, DEPT, CATEGORIES)
    with importable_departments(root, {DEPT: NAME}):
        yield root


def plain_progress() -> tuple[RunProgress, io.StringIO]:
    out = io.StringIO()
    planned = {DEPT: {"ingestion": None, "processing": ["tidy"]}}
    return RunProgress(planned, Console(file=out, width=100)), out


@pytest.mark.usefixtures("written")
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(STATES)), max_size=30))
def test_states_only_move_forward_one_plain_line_per_change(events):
    progress, out = plain_progress()
    changes = 0
    for index, state in events:
        step = progress.steps[index]
        before = step.state
        progress.set(step, state)
        stays = before not in ("Pending", "Running") or state in ("Pending", before)
        assert step.state == (before if stays else state)
        changes += step.state != before
    lines = out.getvalue().splitlines()
    assert len(lines) == changes and all(LINE.match(line) for line in lines), lines


@pytest.mark.usefixtures("written")
def test_the_flow_runs_log_drives_the_states():
    """The records Prefect's flow engine writes, on its own logger, in its own words."""
    import prefect.main  # noqa: F401  # its logging set-up, as in a run: INFO reaches the logger

    progress, out = plain_progress()
    logger = logging.getLogger(FLOW_RUNS_LOGGER)
    stage, feed = f"Ingestion Flow ({NAME})", f"Make Feed ({NAME})"
    quiet = {"send_to_api": False}  # no API here
    began = "Beginning %s run 'a' for flow %r"
    with progress.shown():
        progress.listen()
        logger.info(began, "flow", stage, extra={**quiet, "flow_name": stage})
        logger.info(began, "subflow", feed, extra={**quiet, "flow_name": stage})
        logger.info("Finished in state Failed('boom')", extra={**quiet, "flow_name": feed})
        logger.info("Finished in state Completed()", extra={**quiet, "flow_name": "Someone Else"})
    logger.info("Finished in state Completed()", extra={**quiet, "flow_name": stage})  # after
    lines = [re.sub(r" in \d+\.\d s$", " in T", line) for line in out.getvalue().splitlines()]
    assert lines == [
        f"{DEPT} ingestion: Running",
        f"{DEPT} ingestion feed: Running",
        f"{DEPT} ingestion feed: Failed in T",
    ]
    assert all(type(h).__name__ != "Listener" for h in logger.handlers)  # it stops listening


# --- real runs, in processes of their own ---------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress_installed")
    env = installed_department(root, DEPT, NAME, CATEGORIES)
    broken = root / DEPT / "configs" / "variables" / "ingestion" / "broken.yaml"
    broken.write_text("message: no\nfail_with: boom\n")
    return root, env


def run_env(installed, tmp_path, **extra):
    env = {k: v for k, v in installed[1].items() if k not in ("PREFECT_API_URL", "NO_COLOR")}
    data = {"PREFECT_HOME": str(tmp_path / "home"), "AIRNUB_DATA_ROOT": str(tmp_path / "data")}
    return env | data | extra


def airnub(*args: str) -> list[str]:
    return [sys.executable, "-c", "from airnub_platform.cli import main; main()", *args]


@pytest.mark.usefixtures("prefect_api")
def test_plain_lines_and_real_links_against_a_configured_api(installed, tmp_path):
    env = run_env(installed, tmp_path, PREFECT_API_URL=os.environ["PREFECT_API_URL"])
    done = subprocess.run(airnub("run", DEPT, "ingestion"), env=env, cwd=installed[0],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    lines = done.stdout.splitlines()
    assert done.returncode == 1, done.stdout + done.stderr
    assert lines[0] == f"will run {DEPT} ({NAME}): ingestion (broken, feed)"
    assert f"{DEPT} ingestion feed: Running" in lines
    assert [line for line in lines if LINE.match(line) and " in " in line and "feed" in line]
    assert [line for line in lines if line.startswith(f"{DEPT} ingestion broken: Failed in ")]
    assert [line for line in lines if line.startswith(f"{DEPT} ingestion: Failed")]
    assert "\x1b[" not in done.stdout + done.stderr
    assert "failed:" in done.stderr  # the summary as before
    ui = os.environ["PREFECT_API_URL"].removesuffix("/api")
    assert f"View at {ui}/runs/flow-run/" in done.stderr


def on_a_terminal(cmd: list[str], env: dict, cwd, deadline: float = 300) -> tuple[int, str]:
    """Run ``cmd`` with a pty as its terminal; its exit code and all it wrote there."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=follower, stdout=follower,
                               stderr=follower)  # fmt: skip
    os.close(follower)
    chunks, end = [], time.monotonic() + deadline
    try:
        while True:
            if time.monotonic() > end:
                process.kill()
                pytest.fail(f"still running after {deadline} s: {b''.join(chunks)[-2000:]!r}")
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: every end of the terminal is closed
                break
            if not data:
                break
            chunks.append(data)
        return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(leader)


def test_a_live_table_without_links_on_the_embedded_api(installed, tmp_path):
    env = run_env(installed, tmp_path, TERM="xterm-256color", COLUMNS="120")
    code, seen = on_a_terminal(airnub("run", DEPT, "processing"), env, installed[0])
    assert code == 0, seen
    assert f"will run {DEPT} ({NAME}): processing (tidy)" in seen
    assert "\x1b[?25l" in seen  # the live display took the cursor
    final = seen.rsplit(f"{DEPT} processing", 1)[1]  # the last frame drawn
    assert "Completed" in final and "tidy" in final
    assert f"{NAME}: all stages completed" in seen
    assert "View at" not in seen and "Beginning flow run" in seen  # Prefect's log, no links
