"""`airnub run` refuses bad arguments (exit 2) and config files (exit 1, as when the
category's run refused them) before anything slow starts: one line, no embedded API
started (no database, no server log in the Prefect home) and prefect never imported.
Each command is a real `airnub` process, with a department of the test's own installed
for it alone."""

import os
import subprocess
import sys

import pytest
from airnub_platform import local_api
from airnub_platform.testing import CLI_SAYING_IF_PREFECT_WAS_IMPORTED, installed_department

DEPT = "dept_feedback_checks"
SECRET = "hunter2-do-not-echo"
CODE = CLI_SAYING_IF_PREFECT_WAS_IMPORTED


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("feedback")
    env = installed_department(root, DEPT, "Feedback Checks", {"ingestion": ["feed", "other"]})
    return root, env


def airnub(installed, tmp_path, *args, **extra):
    """``airnub *args`` in a process of its own: its exit code and output lines."""
    root, env = installed
    env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}  # the embedded default
    env |= {"PREFECT_HOME": str(tmp_path / "home"), "AIRNUB_DATA_ROOT": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", CODE, *args], env=env | extra, cwd=root, text=True,
        stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
    )  # fmt: skip
    return done.returncode, (done.stdout + done.stderr).splitlines()


def nothing_started(tmp_path, lines):
    assert "imported prefect: False" in lines, lines
    home = tmp_path / "home"
    assert not list(home.glob("prefect.db*")), "the embedded API was started"


def config(installed, name: str):
    root, _ = installed
    return root / DEPT / "configs" / "variables" / "ingestion" / name


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ([DEPT, "nostage"], "error: unknown stage 'nostage'; valid: ingestion, processing"),
        ([DEPT, "--category", "nope"], f"error: unknown category of {DEPT} 'nope'; valid: feed"),
        (["dept_nowhere"], "error: unknown department 'dept_nowhere'"),
    ],
    ids=["stage", "category", "department"],
)
def test_a_bad_argument_is_one_line_before_anything_starts(installed, tmp_path, args, error):
    code, lines = airnub(installed, tmp_path, "run", *args)
    assert code == 2, lines
    assert lines[0].startswith(error) and len(lines) == 2, lines
    nothing_started(tmp_path, lines)


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("feed.yaml", "message: [unclosed\n", "feed.yaml:2: invalid YAML"),
        ("feed.yaml", "- a list\n", "feed.yaml: top level must be a mapping, not list"),
        ("feed.yaml", b"\xff\xfe", "feed.yaml: not UTF-8 text"),
        ("feed.local.yaml", "message: {\n", "feed.local.yaml:"),
        ("feed.yaml", f"message: hi\npassword: {SECRET}\n", "feed.yaml:password: "),
    ],
    ids=["bad yaml", "not a mapping", "binary", "overlay", "secret"],
)
def test_a_config_file_a_run_would_refuse_is_named_before_anything_starts(
    installed, tmp_path, name, text, error
):
    path = config(installed, name)
    original = path.read_bytes() if path.exists() else None
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    try:
        code, lines = airnub(installed, tmp_path, "run", DEPT, "ingestion")
    finally:
        path.write_bytes(original) if original is not None else path.unlink()
    assert code == 1, lines  # as when the category's run refused it
    assert lines[0].startswith("error: ") and error in lines[0] and len(lines) == 2, lines
    assert SECRET not in "\n".join(lines)
    nothing_started(tmp_path, lines)


def test_a_config_that_is_a_fifo_is_refused_without_reading_it(installed, tmp_path):
    path = config(installed, "other.yaml")
    original = path.read_bytes()
    path.unlink()
    os.mkfifo(path)  # reading it would wait for a writer for ever
    try:
        code, lines = airnub(installed, tmp_path, "run", DEPT, "--category", "other")
    finally:
        path.unlink()
        path.write_bytes(original)
    assert code == 1 and lines[0].endswith("other.yaml: not a regular file"), lines
    nothing_started(tmp_path, lines)


def test_a_category_elsewhere_is_not_checked(installed, tmp_path):
    """Only the planned categories' files count: a broken one not run is no reason to stop."""
    path = config(installed, "other.yaml")
    original = path.read_bytes()
    path.write_text("message: [unclosed\n")
    url = f"http://127.0.0.1:{local_api.free_port()}/api"  # refused: the run stops there
    try:
        code, lines = airnub(installed, tmp_path, "run", DEPT, "--category", "feed",
                             PREFECT_API_URL=url)  # fmt: skip
    finally:
        path.write_bytes(original)
    assert code == 1, lines
    assert lines[0] == f"will run {DEPT} (Feedback Checks): ingestion (feed)", lines
    assert lines[1].startswith(f"error: the Prefect API at {url} did not answer"), lines
