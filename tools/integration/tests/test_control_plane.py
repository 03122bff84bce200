"""The control plane check's own logic, without a Prefect server: the settings each
process gets (and never gets), which replica each worker talks to, the gate that holds
runs mid-download, and the stopping of real process groups with real signals."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from airnub_core.config import FetchSettings, Source
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checks, beside us
import control_plane as plane

SCRIPT = Path(__file__).resolve().parents[1] / "control_plane.py"
DATABASE = "postgresql+asyncpg://postgres:s3cret-pw@127.0.0.1:5432/prefect"
SERVER_ONLY = ("DATABASE", "REDIS", "MESSAGING", "DOCKET", "CAUSAL", "LEASE")

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
prefect_names = st.from_regex(r"(?i:prefect)_[A-Za-z0-9_]{1,20}", fullmatch=True)
environments = st.dictionaries(names | prefect_names, st.text(max_size=12), max_size=12)


def test_every_server_process_gets_the_settings_prefects_guide_documents():
    settings = plane.plane_settings(DATABASE, "127.0.0.1", 6390)
    assert settings == {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": DATABASE,
        "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": "127.0.0.1",
        "PREFECT_REDIS_MESSAGING_PORT": "6390",
        "PREFECT_REDIS_MESSAGING_DB": "0",
        "PREFECT_SERVER_DOCKET_URL": "redis://127.0.0.1:6390/1",  # apart from messaging's db
    }


def test_the_named_modules_exist_where_the_settings_point():
    import importlib

    for module in set(plane.REDIS_MODULES.values()):
        importlib.import_module(module)


@given(environments, environments)
def test_a_child_gets_only_its_own_prefect_settings_whatever_the_caller_exported(
    inherited, settings
):
    settings = {f"PREFECT_{key}": value for key, value in settings.items()}
    env = plane.child_env(inherited, Path("/scratch/home"), settings)
    ours = {k for k in env if k.upper().startswith("PREFECT_")}
    quiet = {k for k in plane.QUIET if k.startswith("PREFECT_")}
    assert ours == {"PREFECT_HOME", *quiet, *settings}
    assert {k: env[k] for k in settings} == settings
    assert env["PREFECT_HOME"] == "/scratch/home" or "PREFECT_HOME" in settings
    kept = {k: v for k, v in inherited.items() if not k.upper().startswith("PREFECT_")}
    assert kept.items() - plane.QUIET.items() <= env.items() | {
        (k, v) for k, v in kept.items() if k in plane.QUIET
    }


def test_a_worker_never_gets_the_servers_database_url_or_redis_even_if_the_caller_has_them():
    hostile = {
        **plane.plane_settings(DATABASE, "10.0.0.9", 6379),
        "PATH": "/usr/bin",
        "PREFECT_API_URL": "http://elsewhere:4200/api",
        "prefect_api_key": "pnu_x",  # any case: Prefect's settings ignore it
    }
    settings = plane.client_settings("http://127.0.0.1:4201/api", Path("/scratch/data"))
    env = plane.child_env(hostile, Path("/scratch/home"), settings)
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4201/api"
    assert env["AIRNUB_DATA_ROOT"] == "/scratch/data"
    assert not [k for k in env if any(part in k.upper() for part in SERVER_ONLY)]
    assert "s3cret-pw" not in repr(env) and "pnu_x" not in repr(env)
    assert env["PATH"] == "/usr/bin"


def test_worker_a_talks_to_replica_1_and_worker_b_to_replica_2():
    urls = ["http://127.0.0.1:1/api", "http://127.0.0.1:2/api"]
    assert plane.assign_replicas(plane.WORKERS, urls) == dict(zip(plane.WORKERS, urls, strict=True))


@given(
    st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=20),
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5, unique=True),
)
def test_replicas_are_assigned_round_robin(workers, replicas):
    assigned = plane.assign_replicas(workers, replicas)
    assert list(assigned) == workers
    loads = [sum(1 for w in workers if assigned[w] == url) for url in replicas]
    assert sum(loads) == len(workers) and max(loads) - min(loads) <= 1
    assert loads == sorted(loads, reverse=True)  # the earlier replicas take the extra ones
    assert not workers or assigned[workers[0]] == replicas[0]


@pytest.mark.parametrize(
    ("replicas", "error"),
    [([], "no API replicas to assign workers to"),
     (["http://a/api", "http://b/api", "http://a/api"],
      "API replica listed more than once: http://a/api")],
)  # fmt: skip
def test_no_replicas_or_one_listed_twice_is_refused_in_one_line(replicas, error):
    with pytest.raises(ValueError) as refused:
        plane.assign_replicas(["worker-a"], replicas)
    assert str(refused.value) == error


def test_redis_listens_on_loopback_only_and_keeps_nothing_on_disk():
    command = plane.redis_command(Path("/usr/bin/redis-server"), 6391, Path("/scratch/redis"))
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options == {
        "--bind": "127.0.0.1",
        "--port": "6391",
        "--save": "",
        "--appendonly": "no",
        "--dir": "/scratch/redis",
        "--daemonize": "no",
    }


class FeedSettings(FetchSettings):
    sources: list[Source]


def test_the_gated_parameters_are_valid_settings_that_outwait_the_gate():
    overrides = plane.gated_parameters("http://127.0.0.1:9/feed.csv", 240)["overrides"]
    settings = FeedSettings(**overrides["feed"])
    assert settings.sources == ["http://127.0.0.1:9/feed.csv"]
    assert settings.timeout_seconds >= 240 and settings.deadline_seconds >= 240


def _fetch(url: str, into: list) -> None:
    into.append(httpx.get(url, timeout=30).content)


@pytest.mark.parametrize("release", ["open", "close"])
def test_the_gate_holds_each_download_until_it_is_opened_or_closed(release):
    gate = plane.Gate(deadline=60)
    got: list[bytes] = []
    try:
        readers = [threading.Thread(target=_fetch, args=(gate.url, got)) for _ in range(2)]
        for reader in readers:
            reader.start()
        plane.wait_until("both readers at the gate", lambda: gate.waiting() == 2, 30, 0.05)
        assert got == [] and all(reader.is_alive() for reader in readers)
    finally:
        getattr(gate, release)()
    for reader in readers:
        reader.join(timeout=30)
    assert got == [plane.Gate.BODY, plane.Gate.BODY]
    assert gate.waiting() == 0  # once open, nothing counts as held
    gate.close()


def test_a_wait_past_its_deadline_says_what_it_waited_for():
    with pytest.raises(plane.CheckFailed, match=r"^the moon: not within 0 s$"):
        plane.wait_until("the moon", lambda: False, 0, 0.01)


def test_the_runs_a_worker_took_are_read_from_its_own_log(tmp_path):
    log = tmp_path / "worker-a.log"
    log.write_text(
        "Worker 'worker-a' submitting flow run 'r2'\nrun 'r3' was mentioned\n"
        "Worker 'worker-a' submitting flow run 'r4'\n"
        "Aborted submission of flow run 'r4': Server returned a non-pending state 'PENDING'\n"
    )
    assert plane.submitted_by(log, ["r1", "r2", "r3", "r4"]) == ["r2"]


def _stubborn(tmp_path: Path, *ignored: str) -> plane.Child:
    """A shell ignoring ``ignored`` signals, with a child of its own that inherits that."""
    traps = f"trap '' {' '.join(ignored)}; " if ignored else ""
    command = ["sh", "-c", f"{traps}sleep 300 & echo started; wait"]
    child = plane.Child("stubborn", command, dict(os.environ), tmp_path / "log", tmp_path)
    child.start()
    plane.wait_until("the shell started", lambda: "started" in child.tail(), 30, 0.05)
    return child


def _group(pgid: int) -> list[int]:
    """The group's living processes, as ps sees them (a zombie awaiting init is dead)."""
    listed = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True,
                            text=True)  # fmt: skip
    rows = [line.split() for line in listed.stdout.splitlines()]
    return [int(pid) for pid, state in rows if not state.startswith("Z")]


@pytest.mark.parametrize("ignored", [(), ("INT",), ("INT", "TERM")])
def test_stop_leaves_nothing_of_the_group_whatever_signals_it_ignores(tmp_path, ignored):
    child = _stubborn(tmp_path, *ignored)
    assert len(_group(child.pid)) >= 2  # the shell and its sleep
    child.stop(grace=0.5)
    assert _group(child.pid) == []
    assert not child.running()


def test_kill_is_sigkill_to_the_whole_group(tmp_path):
    child = _stubborn(tmp_path, "INT", "TERM")
    child.kill()
    assert child.process is not None and child.process.returncode == -signal.SIGKILL
    plane.wait_until("the group gone", lambda: _group(child.pid) == [], 30, 0.05)


def test_stopping_a_child_never_started_is_harmless(tmp_path):
    plane.Child("idle", ["true"], {}, tmp_path / "log", tmp_path).stop()


def test_the_script_refuses_arguments_in_one_line_with_exit_2():
    done = subprocess.run([sys.executable, str(SCRIPT), "--runs", "9"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == "usage: control_plane.py (takes no arguments)\n"
    assert done.stdout == ""


def test_stopping_several_at_once_leaves_none_of_their_groups(tmp_path):
    folders = [tmp_path / "one", tmp_path / "two"]
    for folder in folders:
        folder.mkdir()
    children = [_stubborn(folder, "INT") for folder in folders]
    plane.stop_together(children, grace=0.5)
    assert [_group(child.pid) for child in children] == [[], []]


def test_a_redis_server_that_cannot_start_skips_in_one_line_and_leaves_nothing(tmp_path):
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'cannot bind' >&2\nexit 1\n")
    fake.chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "TMPDIR": str(scratch)}
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stdout.splitlines() if line.startswith("skipped:")]
    assert skipped in (
        ["skipped: Redis or Postgres could not start here: redis exited with 1"],
        ["skipped: Postgres is not installed and cannot be installed here"],
    )
    assert "Traceback" not in done.stderr
    assert list(scratch.iterdir()) == []
