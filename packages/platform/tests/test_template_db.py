"""The migrated template database: built by the server process, cached once, shared safely.

Every test drives real processes (``python -m airnub_platform.local_api prepare|serve``)
over real files; the cache is a temporary folder named by ``AIRNUB_CACHE_DIR``.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from airnub_platform import local_api
from airnub_platform.testing import clean_env

DEADLINE = 240  # seconds for one Prefect process on a loaded 2-core machine


def _prepare(db: Path, cache: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "airnub_platform.local_api", "prepare", str(db)]
    env = clean_env(AIRNUB_CACHE_DIR=str(cache), DO_NOT_TRACK="1")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def prepare(db: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    process = _prepare(db, cache)
    stdout, stderr = process.communicate(timeout=DEADLINE)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def template(cache: Path) -> Path:
    return cache / f"prefect-{local_api.PREFECT_VERSION}-template.db"


def snapshot(db: Path) -> dict[str, object]:
    """What a served database must agree on: its schema, its alembic stamp, its blocks.

    Prefect's own migrations rebuild SQLite tables with their constraints in no fixed
    order, so each statement is compared as its sorted set of lines.
    """
    queries = {
        "stamp": "SELECT version_num FROM alembic_version",
        "block types": "SELECT slug, name FROM block_type ORDER BY slug",
        "block schemas": "SELECT checksum, version FROM block_schema ORDER BY checksum",
    }
    with closing(sqlite3.connect(db)) as connection:
        found: dict[str, object] = {k: connection.execute(q).fetchall() for k, q in queries.items()}
        objects = connection.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    found["schema"] = {(kind, name, frozenset(_lines(sql))) for kind, name, sql in objects}
    return found


def _lines(sql: str | None) -> list[str]:
    return [line.strip().rstrip(",") for line in (sql or "").splitlines()]


def only_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One cold start: a database migrated by Prefect, and the template it left cached."""
    folder = tmp_path_factory.mktemp("cold")
    done = prepare(folder / "migrated.db", folder / "cache")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return folder / "migrated.db", template(folder / "cache")


def cache_with(built_template: Path, folder: Path) -> Path:
    cache = folder / "cache"
    cache.mkdir()
    shutil.copyfile(built_template, template(cache))
    return cache


def test_a_database_copied_from_the_template_equals_one_prefect_migrated(built, tmp_path):
    migrated, cached = built
    cache = cache_with(cached, tmp_path)
    done = prepare(tmp_path / "home" / "prefect.db", cache)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    copied = snapshot(tmp_path / "home" / "prefect.db")
    assert copied == snapshot(migrated)
    assert copied["stamp"] and copied["block types"]  # migrated to a head, blocks registered
    assert (tmp_path / "home" / f"prefect.db.migrated-{local_api.PREFECT_VERSION}").exists()


def test_two_cold_starts_at_once_both_serve_and_leave_one_whole_template(built, tmp_path):
    cache = tmp_path / "cache"
    racers = [_prepare(tmp_path / name / "prefect.db", cache) for name in ("one", "two")]
    for racer in racers:
        _, stderr = racer.communicate(timeout=DEADLINE)
        assert racer.returncode == 0, stderr
    expected = snapshot(built[0])
    for name in ("one", "two"):
        assert snapshot(tmp_path / name / "prefect.db") == expected
    assert snapshot(template(cache)) == expected
    assert [p.name for p in cache.iterdir()] == [template(cache).name]  # no temporary left


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_broken_cached_template_is_rebuilt_not_served(built, tmp_path, damage):
    cache = cache_with(built[1], tmp_path)
    broken = template(cache)
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"")
    done = prepare(tmp_path / "home" / "prefect.db", cache)
    assert done.returncode == 0, done.stderr
    assert str(broken) in only_line(done.stderr)
    assert snapshot(tmp_path / "home" / "prefect.db") == snapshot(built[0])
    assert snapshot(broken) == snapshot(built[0])  # cached again, whole


@pytest.mark.parametrize("blocker", ["file", "folder"])
def test_a_cache_that_cannot_be_written_falls_back_to_migrating_with_one_line(
    built, tmp_path, blocker
):
    if blocker == "file":  # the cache folder's parent is a regular file
        (tmp_path / "plain").write_text("not a folder")
        cache = tmp_path / "plain" / "airnub"
    else:  # a folder squats on the template's name
        cache = tmp_path / "cache"
        template(cache).mkdir(parents=True)
    done = prepare(tmp_path / "home" / "prefect.db", cache)
    assert done.returncode == 0, done.stderr
    line = only_line(done.stderr)
    assert "cannot cache the migrated template" in line and str(cache) in line
    assert snapshot(tmp_path / "home" / "prefect.db") == snapshot(built[0])


def test_a_database_folder_that_cannot_be_made_is_one_line_and_non_zero(built, tmp_path):
    (tmp_path / "plain").write_text("not a folder")
    done = prepare(tmp_path / "plain" / "home" / "prefect.db", cache_with(built[1], tmp_path))
    assert done.returncode != 0
    assert str(tmp_path / "plain") in only_line(done.stderr)


def test_a_first_start_killed_mid_migration_leaves_nothing_the_next_trips_over(built, tmp_path):
    cache, db = tmp_path / "cache", tmp_path / "home" / "prefect.db"
    first = _prepare(db, cache)
    deadline = time.monotonic() + DEADLINE
    while not db.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the migration has begun once Prefect created the file
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=DEADLINE)
    cached = template(cache)
    assert not cached.exists() or snapshot(cached) == snapshot(built[0])  # whole or absent
    done = prepare(db, cache)
    assert done.returncode == 0, done.stderr
    assert snapshot(db) == snapshot(built[0])


def test_a_cold_server_becomes_healthy_and_caches_the_template(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRNUB_CACHE_DIR", str(tmp_path / "cache"))
    with local_api.running(tmp_path / "home" / "prefect.db") as api:
        with closing(sqlite3.connect(template(tmp_path / "cache"))) as connection:
            assert connection.execute("SELECT count(*) FROM block_type").fetchone()[0] > 0
        assert api.process.poll() is None


def test_a_test_sessions_server_is_gone_with_its_folder_when_the_session_ends(tmp_path):
    # A real pytest session whose conftest starts the session's API, as a department's does.
    (tmp_path / "conftest.py").write_text(
        "from airnub_platform.testing import start_session_api\nstart_session_api()\n"
    )
    (tmp_path / "test_pid.py").write_text(
        "import os\nfrom pathlib import Path\nfrom airnub_platform import testing\n\n"
        "def test_pid(prefect_api):\n"
        "    pid = testing._session.process.pid\n"
        "    Path(os.environ['PID_FILE']).write_text(f'{pid} {os.environ[\"PREFECT_HOME\"]}')\n"
    )
    env = clean_env(PID_FILE=str(tmp_path / "pid"), AIRNUB_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
           "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=2 * DEADLINE)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    pid, home = (tmp_path / "pid").read_text().split()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)  # killed and reaped, not left behind
    assert not Path(home).parent.exists()  # the session's scratch folder went with it


def test_a_server_whose_database_is_thrown_away_is_killed_not_waited_for(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRNUB_CACHE_DIR", str(tmp_path / "cache"))
    api = local_api.start(db=tmp_path / "prefect.db")
    api.wait_healthy()
    api.stop(settle=False, keep_db=False)
    assert api.process.returncode == -signal.SIGKILL


def test_a_prefect_home_that_cannot_be_made_is_one_plan_error_naming_it(tmp_path, monkeypatch):
    from airnub_platform import runner

    (tmp_path / "plain").write_text("not a folder")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "plain" / "home"))
    with pytest.raises(runner.PlanError) as raised:
        runner.start_local_api()
    message = str(raised.value)
    assert "\n" not in message and str(tmp_path / "plain" / "home") in message
