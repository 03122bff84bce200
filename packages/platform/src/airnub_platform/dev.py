"""``airnub dev``: the whole platform on one machine, without Docker.

A Prefect server with its UI on 127.0.0.1 (SQLite, or Postgres given a URL), one
process worker per department pool, each running its department's flows from an
environment holding only that department (``uv sync --package``), then Variables,
Blocks and every department's deployments. Ctrl-C (or ``--stop``) stops everything
it started. A state file in the Prefect home tells a second ``airnub dev``,
``--status`` and ``airnub run`` that it is running.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from airnub_core.conventions import departments, distribution_name, work_pool_name
from airnub_core.storage import repository_root

from airnub_platform import local_api

DATABASE_URL_ENV = "AIRNUB_DEV_DATABASE_URL"
COMPILE_BYTECODE_ENV = "UV_COMPILE_BYTECODE"
ENGINE_DIRECT_ENV = "AIRNUB_DEV_ENGINE_DIRECT"
TRUE_WORDS = ("1", "true", "yes", "on")  # the spellings uv accepts for a boolean setting
FALSE_WORDS = ("0", "false", "no", "off")
BYTECODE_STAMP = ".airnub-bytecode"  # in a department environment: the lock it was compiled for
# How often each worker asks for runs. Prefect's default is 10 s; a triggered run waits
# half of it on average (measured in bench/dev_platform.py).
WORKER_QUERY_SECONDS = "1"
QUERY_SECONDS_ENV = "PREFECT_WORKER_QUERY_SECONDS"
DECIMAL = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?", re.ASCII)


def state_file() -> Path:
    return local_api.prefect_home() / "airnub-dev.json"


@dataclass
class DevState:
    pid: int
    port: int
    database: str
    children: dict[str, int] = field(default_factory=dict)  # name -> pid
    ready: bool = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def save(self) -> None:
        path = state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(temp, path)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # our own child that exited: reap it
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    except ChildProcessError:
        pass
    try:  # someone else's child that exited and was not reaped yet (Linux)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def running() -> DevState | None:
    """The state of a live ``airnub dev``, or None (a stale state file is removed)."""
    path = state_file()
    try:
        state = DevState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if alive(state.pid):
        return state
    path.unlink(missing_ok=True)
    return None


# How long ``--status`` waits for the server's /health: it is on this machine.
STATUS_TIMEOUT_SECONDS = 0.5


def unanswered(state: DevState, timeout: float = STATUS_TIMEOUT_SECONDS) -> str | None:
    """Why a running ``airnub dev``'s server does not answer ``/health`` within
    ``timeout`` seconds, in a few words; None when it answers. Imports no prefect."""
    from airnub_platform.runner import probe  # httpx: for --status only

    # dev's own plain-HTTP server on 127.0.0.1: loading the CA bundle would cost 0.1 s
    return probe(state.api_url, timeout, verify=False)


def wait_ready(state_path: Path, process: subprocess.Popen, timeout: float = 180) -> DevState:
    """Wait for an ``airnub dev`` started as ``process`` to report ready in ``state_path``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            state = DevState(**json.loads(state_path.read_text()))
        except (OSError, ValueError, TypeError):
            state = None
        if state is not None and state.ready:
            return state
        time.sleep(0.5)
    raise TimeoutError(f"airnub dev (pid {process.pid}) not ready; exit code {process.poll()}")


def stop_processes(pids: list[int]) -> None:
    """SIGINT all, a second SIGINT (a worker only winds down on the first), then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 1.0), (signal.SIGINT, 8.0), (signal.SIGKILL, 2.0)):
        live = [pid for pid in pids if alive(pid)]
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + wait
        while any(alive(pid) for pid in live) and time.monotonic() < deadline:
            time.sleep(0.1)


def stop_running(state: DevState, timeout: float = 60) -> None:
    """Ask a running ``airnub dev`` to stop, then make sure its children are gone."""
    if alive(state.pid):
        os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    stop_processes(list(state.children.values()))
    if alive(state.pid):
        os.kill(state.pid, signal.SIGKILL)
    state_file().unlink(missing_ok=True)


def department_env(department: str) -> Path:
    """The department's own environment for its worker: only its dependencies, with
    bytecode compiled, so no run recompiles Prefect (see :func:`bytecode_wanted`)."""
    root = repository_root()
    if root is None:
        raise RuntimeError("airnub dev runs from the workspace: no uv.lock here or above")
    target = local_api.prefect_home() / "airnub-envs" / department
    command = ["uv", "sync", "--locked", "--no-dev", "--package", distribution_name(department)]
    stamp, lock = target / BYTECODE_STAMP, lock_digest(root)
    # uv compiles the whole environment on every sync that asks (astral-sh/uv#12202):
    # asked only while the lock differs from the one the environment was compiled for.
    compile_now = bytecode_wanted() and read_stamp(stamp) != lock
    done = subprocess.run(
        [*command, "--compile-bytecode"] if compile_now else command,
        cwd=root,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(target)},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        with contextlib.suppress(OSError):
            stamp.unlink(missing_ok=True)
        raise RuntimeError(f"uv sync for {department} failed: {done.stderr.strip()[-500:]}")
    if compile_now:
        with contextlib.suppress(OSError):  # unwritable: the next start compiles again
            stamp.write_text(lock)
    return target


def read_stamp(stamp: Path) -> str | None:
    """The lock digest a department environment was compiled for, if it says."""
    try:
        return stamp.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def lock_digest(root: Path) -> str:
    """What a department environment's contents follow: the workspace's ``uv.lock``."""
    return hashlib.sha256((root / "uv.lock").read_bytes()).hexdigest()


def bytecode_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether department environments get bytecode: yes, unless ``UV_COMPILE_BYTECODE``
    says no. Without ``.pyc`` files and with ``PYTHONDONTWRITEBYTECODE`` set (as in many
    shells and images), every flow run recompiles Prefect before it starts."""
    return env_flag(COMPILE_BYTECODE_ENV, environ)


def engine_direct(environ: Mapping[str, str] | None = None) -> bool:
    """Whether workers start each run as one engine process (:func:`run_engine_directly`):
    yes, unless ``AIRNUB_DEV_ENGINE_DIRECT`` says no."""
    return env_flag(ENGINE_DIRECT_ENV, environ)


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """A true/false setting that is on unless set otherwise; refused in one line if it
    is neither."""
    raw = (os.environ if environ is None else environ).get(name, "")
    value = raw.strip().lower()
    if value in ("", *TRUE_WORDS):
        return True
    if value in FALSE_WORDS:
        return False
    raise RuntimeError(f"{name}: {raw[:40]!r} is neither true nor false")


def database_url(db: str) -> str:
    """A SQLite file of its own in the Prefect home, or the Postgres URL from the environment."""
    url = os.environ.get(DATABASE_URL_ENV)
    if db == "sqlite" and not url:
        return f"sqlite+aiosqlite:///{local_api.prefect_home() / 'airnub-dev.db'}"
    if not url:
        example = "postgresql+asyncpg://user:password@127.0.0.1:5432/prefect"
        raise RuntimeError(f"--db postgres needs ${DATABASE_URL_ENV}, e.g. {example}")
    return url


def platform_env(
    api_url: str, database_url: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of the server and workers: quiet, pointed at ``api_url``.

    Prefect 3.9 answers a request that hit ``database is locked`` with 503 and logs
    nothing; logging it keeps a lock error visible in ``server.log``.
    """
    base = os.environ if base is None else base
    return {
        **base,
        **local_api.QUIET_ENV,
        "PREFECT_API_URL": api_url,
        QUERY_SECONDS_ENV: query_seconds(base),
        "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": base.get(
            "PREFECT_SERVER_LOG_RETRYABLE_ERRORS", "true"
        ),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url,
    }


def query_seconds(base: Mapping[str, str]) -> str:
    """The workers' poll interval: ``PREFECT_WORKER_QUERY_SECONDS`` if given, else 1 s.

    Refused in one line if it is not a number of seconds from 0.1 to 3600: the worker
    would otherwise die with a validation traceback in its log, or poll in a busy loop."""
    raw = base.get(QUERY_SECONDS_ENV, "").strip()
    if not raw:
        return WORKER_QUERY_SECONDS
    # plain ASCII decimals only: float() would also take "1_0", "1e3" or Arabic digits
    if not DECIMAL.fullmatch(raw) or not 0.1 <= float(raw) <= 3600:
        raise RuntimeError(f"{QUERY_SECONDS_ENV}: {raw[:40]!r} is not a number of seconds"
                           " from 0.1 to 3600")  # fmt: skip
    return raw


def server_command(port: int) -> list[str]:
    """``prefect server start`` on 127.0.0.1 (API, UI and services), SQLite on one connection.

    Through ``airnub_platform.local_api`` so the server process gets the embedded API's
    single SQLite connection: with Prefect's pool, concurrent runs made the server log
    ``database is locked`` and answer 503. Postgres keeps Prefect's own pool.
    """
    return [sys.executable, "-m", "airnub_platform.local_api", "prefect", "server", "start",
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip


def spawn(command: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session (Ctrl-C reaches only us), appending to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            command, env=dict(env), stdin=subprocess.DEVNULL, stdout=handle,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def start_server(
    port: int,
    env: Mapping[str, str],
    log: Path,
    started: Callable[[subprocess.Popen[bytes]], None] = lambda _: None,
    timeout: float = 120,
) -> subprocess.Popen[bytes]:
    """Start the server as ``airnub dev`` does and wait until it is healthy.

    ``started`` gets the process before the wait, so it can be recorded and stopped
    while it starts. If it never gets healthy it is stopped and the error raised.
    """
    process = spawn(server_command(port), env, log)
    started(process)
    try:
        local_api.wait_healthy(f"http://127.0.0.1:{port}/api", process, log, timeout)
    except BaseException:
        stop_processes([process.pid])
        process.wait()
        raise
    return process


class Platform:
    """The processes ``airnub dev`` owns, started and stopped together."""

    def __init__(self, port: int, db: str, say: Callable[[str], None]) -> None:
        self.say = say
        url = database_url(db)
        # unusable worker settings are refused here, before anything starts
        self.engine_direct = engine_direct()
        bytecode_wanted()
        self.state = DevState(os.getpid(), port, url.split(":", 1)[0].split("+", 1)[0])
        self.env = platform_env(self.state.api_url, url)
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = local_api.prefect_home() / "airnub-dev-logs"

    def track(self, name: str, process: subprocess.Popen) -> None:
        self.processes[name] = process
        self.state.children[name] = process.pid
        self.state.save()

    def spawn(self, name: str, command: list[str]) -> None:
        self.track(name, spawn(command, self.env, self.logs / f"{name}.log"))

    def start_server(self) -> None:
        log = self.logs / "server.log"
        start_server(self.state.port, self.env, log, lambda p: self.track("server", p))
        self.say(f"Prefect server ({self.state.database}) at {self.state.api_url}")

    def start_workers(self) -> None:
        for department in departments():
            env = department_env(department)
            pool = work_pool_name(department)
            if self.engine_direct:
                run_engine_directly(self.state.api_url, pool, env / "bin" / "python")
            command = [str(env / "bin" / "prefect"), "worker", "start", "--pool", pool,
                       "--type", "process", "--name", f"{pool}-dev"]  # fmt: skip
            self.spawn(f"worker-{department}", command)
            self.say(f"worker for pool {pool}, in {env}")

    def stop(self) -> None:
        stop_processes([process.pid for process in self.processes.values()])
        for name, process in self.processes.items():
            process.wait()
            self.say(f"stopped {name} (pid {process.pid})")
        state_file().unlink(missing_ok=True)

    def watch(self) -> int:
        """Block until a signal or a child's death; returns the exit code."""
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append("SIGTERM"))
        try:
            while not stopping:
                for name, process in self.processes.items():
                    if process.poll() is not None:
                        self.say(f"{name} exited with {process.returncode}; see {self.logs}")
                        return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        return 0


def run_engine_directly(api_url: str, pool: str, python: Path) -> None:
    """Make the process pool ``pool`` start each run as one ``python -m prefect.engine``
    of ``python`` (its department's environment), unless its template names a command.

    Without a command, Prefect 3.9's process worker starts a workspace supervisor that
    imports Prefect, reads the run and its deployment, then execs the engine, which
    imports Prefect again: a second interpreter before every run. A department's
    entrypoints are module paths in its own environment, so there is no workspace to
    prepare; pull steps, if a deployment has any, still run in the engine. The rest of
    the pool's template is kept as it is.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.workers.process import ProcessWorker

    default_template = ProcessWorker.get_default_base_job_template
    settings = temporary_settings(updates={PREFECT_API_URL: api_url})
    with settings, get_client(sync_client=True) as client:
        found = client.read_work_pool(pool)
        # an empty template is the worker's default, which it fills in only in memory
        template = copy.deepcopy(found.base_job_template) or default_template()
        command = template.get("variables", {}).get("properties", {}).get("command")
        if found.type != "process" or not isinstance(command, dict) or command.get("default"):
            return  # not a process pool, or the pool's own choice of command
        command["default"] = shlex.join([str(python), "-m", "prefect.engine"])
        client.update_work_pool(pool, WorkPoolUpdate(base_job_template=template))


@dataclass
class Narration:
    """What :func:`serve` tells as it goes; the CLI prints it."""

    say: Callable[[str], None]  # a step done: a process started or stopped, a sync
    skipped: Callable[[str], None]  # a block not synced, and why; the platform comes up anyway
    ready: Callable[[DevState], None]  # everything is up; serve now watches it
    failed: Callable[[BaseException], None]  # why it gives up, told before it stops everything


def serve(port: int, db: str, tell: Narration) -> int:
    """The whole platform on ``port``: the server, every department's Variables,
    deployments and Blocks on it, a worker per department; then watched until a signal
    or a child's death, and everything started stopped again. Returns the exit code.

    Raises RuntimeError, having started nothing, when ``db`` has no database to use or
    a worker setting (poll interval, ``UV_COMPILE_BYTECODE``, ``AIRNUB_DEV_ENGINE_DIRECT``)
    is unusable.
    """
    # here, not above: runner imports this module before it starts the embedded API
    from airnub_core.config import ConfigError

    platform = Platform(port, db, tell.say)
    try:
        platform.start_server()
        chosen = list(departments())
        publish(platform.state.api_url, chosen, tell)
        tell.say(f"Deployed: {', '.join(chosen)}")
        platform.start_workers()
        platform.state.ready = True
        platform.state.save()
        tell.ready(platform.state)
        return platform.watch()
    except (RuntimeError, ConfigError, TimeoutError) as error:
        tell.failed(error)
        return 1
    finally:
        platform.stop()


def publish(api_url: str, chosen: list[str], tell: Narration) -> None:
    """The ``chosen`` departments' Variables (of the local environment), deployments and
    Blocks, written to the API at ``api_url``."""
    # here, not above: these import prefect, which runner imports only once the embedded
    # API is starting (see runner.start_local_api)
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from airnub_platform import block_sync, deploy, variable_sync

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            changes = variable_sync.sync(
                client, variable_sync.desired_values(chosen, "local"), chosen
            )
            tell.say(f"Variables: {sum(c.action != 'unchanged' for c in changes)} written")
            for department in chosen:
                deploy.deploy(client, department, "local")
            deploy.apply_lost_run_automation(client, dry_run=False)
        wanted, missing = block_sync.wanted_blocks(chosen, None)
        done = block_sync.sync(wanted)
        tell.say(f"Blocks: {sum(action != 'unchanged' for action, _ in done)} written")
        for message in missing:
            tell.skipped(message)
