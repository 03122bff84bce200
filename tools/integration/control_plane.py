"""A scaled Prefect control plane on loopback, as Prefect documents self-hosting at scale,
and runs that complete while one of its API replicas is killed and restarted.

1. a throwaway Postgres cluster (dev_postgres.running_cluster) and Debian's redis-server
   (installed if missing), each on a free loopback port; Redis keeps nothing on disk;
2. `prefect server database upgrade -y` once, then two API replicas (`prefect server start
   --no-services`) and one `prefect server services start`, all on that Postgres, with
   Redis as messaging broker and cache, causal ordering, lease storage and Docket's store
   (:func:`plane_settings`); each process has its own PREFECT_HOME;
3. in a scratch workspace with a department made by the generators: `airnub deploy`
   against replica 1, and two process workers on its pool, worker A talking to replica 1
   and worker B to replica 2 (:func:`assign_replicas`);
4. trigger several runs; once one is running, SIGKILL replica 1, check replica 2 still
   answers and the runs keep moving through it, restart replica 1 on the same port, and
   wait until every run is COMPLETED and its task runs were recorded (the services
   process reads their events from Redis);
5. print the runs, how long replica 1 was down and how long the runs took (reported,
   never asserted), then stop everything by process group and remove the scratch dirs,
   on failure, Ctrl-C and SIGTERM too.

Skipped (exit 0, with the reason) only where Postgres or Redis cannot be installed or
started. On failure the servers' and workers' log tails are printed and it exits 1.
Usage: uv run python tools/integration/control_plane.py
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from airnub_platform import local_api, remote
from airnub_platform.testing import (
    SCRATCH_INGESTION_DEPLOYMENTS,
    clean_env,
    scratch_workspace,
    unwind_on_stop_signals,
)
from dev_postgres import postgres_bin, running_cluster

DEPARTMENT = "dept_scratch"
DISPLAY_NAME = "Scratch Team"
DEPLOYMENT = SCRATCH_INGESTION_DEPLOYMENTS[DEPARTMENT]
POOL = "dept-scratch"  # the department's process pool, as airnub deploy names it
RUNS = 8
WORKERS = ("worker-a", "worker-b")
# Deadlines, in seconds: every wait below has one.
READY_DEADLINE = 120.0
MIGRATE_DEADLINE = 300.0
PROGRESS_DEADLINE = 120.0
RUNS_DEADLINE = 420.0
GATE_DEADLINE = 240.0  # a held download is let through at the latest after this
STOP_GRACE = 10.0
LOG_TAIL = 3000

# What Prefect's "scale self-hosted Prefect" guide sets on every server process: Redis
# carries events between the replicas and the services, and holds their shared state.
REDIS_MODULES = {
    "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
    "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
    "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
}
QUIET = {
    "PYTHONUNBUFFERED": "1",  # log lines reach the files as they happen
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
}


class CheckFailed(RuntimeError):
    """The control plane did not do what the check expects; the message says what."""


# --- pure: the settings each process gets, and which replica each worker talks to ------


def plane_settings(database_url: str, redis_host: str, redis_port: int) -> dict[str, str]:
    """The settings every server process of the scaled plane shares (Prefect's guide):
    Postgres, migrations left to one `database upgrade`, Redis for messaging, cache,
    ordering, lease storage (db 0) and Docket (db 1, kept apart as the guide suggests)."""
    return {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
        **REDIS_MODULES,
        "PREFECT_REDIS_MESSAGING_HOST": redis_host,
        "PREFECT_REDIS_MESSAGING_PORT": str(redis_port),
        "PREFECT_REDIS_MESSAGING_DB": "0",
        "PREFECT_SERVER_DOCKET_URL": f"redis://{redis_host}:{redis_port}/1",
    }


def child_env(inherited: Mapping[str, str], home: Path, settings: Mapping[str, str]) -> dict:
    """A child process's environment: ``inherited`` without any Prefect setting (ours
    must not leak in, nor the caller's point elsewhere), its own PREFECT_HOME, then
    ``settings``."""
    kept = {k: v for k, v in inherited.items() if not k.upper().startswith("PREFECT_")}
    return {**kept, **QUIET, "PREFECT_HOME": str(home), **settings}


def client_settings(api_url: str, data_root: Path) -> dict[str, str]:
    """What a worker or `airnub deploy` needs: one replica's API and the data root; never
    the server's database URL or Redis settings."""
    return {
        "PREFECT_API_URL": api_url,
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "AIRNUB_DATA_ROOT": str(data_root),
    }


def assign_replicas(names: Sequence[str], replica_urls: Sequence[str]) -> dict[str, str]:
    """Each of ``names`` to one replica, round robin in order: A to the first, B to the
    second, and so on, wrapping around."""
    if not replica_urls:
        raise ValueError("no API replicas to assign workers to")
    repeated = sorted({url for url in replica_urls if replica_urls.count(url) > 1})
    if repeated:  # it would take twice the load, and the check would test one replica less
        raise ValueError(f"API replica listed more than once: {repeated[0]}")
    return {name: replica_urls[i % len(replica_urls)] for i, name in enumerate(names)}


# --- processes: each in a process group of its own, stopped by its PID -----------------


@dataclass
class Child:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Child:
        with self.log.open("ab") as log:  # appended: a restarted replica keeps its history
            self.process = subprocess.Popen(self.command, env=self.env, cwd=self.cwd,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL,
                                            start_new_session=True)  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a host loss would: no chance to wind down."""
        os.killpg(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=STOP_GRACE)

    def stop(self, grace: float = STOP_GRACE) -> None:
        stop_together([self], grace)

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} (log tail) ---\n{text[-LOG_TAIL:]}"


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still lives. A killed orphan stays a zombie in
    its group until init reaps it; os.killpg(pgid, 0) would count it, so read /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        state, _parent, group = text[text.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state not in ("Z", "X"):
            return True
    return False


def stop_together(children: Sequence[Child], grace: float = STOP_GRACE) -> None:
    """SIGINT, then SIGTERM, then SIGKILL to each child's whole process group, all at
    once, each wave given ``grace`` seconds; a group counts until its last process is
    gone, also when its leader went first."""
    started = [child.process for child in children if child.process is not None]
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        alive = [process for process in started if _group_alive(process.pid)]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            for process in alive:
                process.poll()  # reap the leader, or its group never empties
            alive = [process for process in alive if _group_alive(process.pid)]
    for process in started:
        process.wait(timeout=grace)


def wait_until(what: str, ready: Callable[[], bool], timeout: float, interval: float = 0.5) -> None:
    """Poll ``ready`` until it is true; CheckFailed naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


# --- Redis ------------------------------------------------------------------------------


def redis_bin() -> Path | None:
    """Debian's redis-server, installed if missing (as root, with apt-get)."""
    found = shutil.which("redis-server")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"],
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=600)  # fmt: skip
        found = shutil.which("redis-server")
    return Path(found) if found else None


def redis_command(binary: Path, port: int, directory: Path) -> list[str]:
    """redis-server on loopback only, keeping nothing: no snapshots, no append-only file."""
    return [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
            "--appendonly", "no", "--dir", str(directory), "--daemonize", "no"]  # fmt: skip


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_redis(binary: Path, scratch: Path) -> Iterator[int]:
    """redis-server on a free loopback port, stopped (by its process group) on the way out."""
    directory = scratch / "redis"
    directory.mkdir()
    port = local_api.free_port()
    redis = Child("redis", redis_command(binary, port, directory), clean_env(),
                  scratch / "redis.log", directory).start()  # fmt: skip
    try:
        answering = lambda: _alive_or_fail(redis) and redis_answers(port)  # noqa: E731
        wait_until(f"redis-server on port {port} answering PING", answering, READY_DEADLINE)
        yield port
    finally:
        redis.stop()


def _alive_or_fail(child: Child) -> bool:
    if not child.running():
        assert child.process is not None
        raise CheckFailed(f"{child.name} exited with {child.process.returncode}")
    return True


# --- the gate: a loopback source that holds each download until the check opens it ------


class Gate:
    """An HTTP source on loopback that holds every request until :meth:`open` (or its own
    deadline), so the runs are caught mid-run, inside a task, at a moment the check
    chooses rather than by timing."""

    BODY = b"id,value\n1,10\n2,20\n"

    def __init__(self, deadline: float) -> None:
        self.opened = threading.Event()
        self.arrived = 0
        self._lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with gate._lock:
                    gate.arrived += 1
                gate.opened.wait(timeout=deadline)
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(Gate.BODY)))
                self.end_headers()
                self.wfile.write(Gate.BODY)

            def log_message(self, format: str, *args: object) -> None:
                return  # the check prints what matters

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/feed.csv"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def waiting(self) -> int:
        with self._lock:
            return 0 if self.opened.is_set() else self.arrived

    def open(self) -> None:
        self.opened.set()

    def close(self) -> None:
        self.opened.set()  # release any held request before the server goes
        self.server.shutdown()
        self.server.server_close()


def gated_parameters(source_url: str, wait_seconds: float) -> dict:
    """The ingestion stage's parameters reading the feed category from ``source_url``,
    with read deadlines longer than the gate holds it."""
    feed = {"sources": [source_url], "timeout_seconds": wait_seconds,
            "deadline_seconds": wait_seconds, "retries": 0}  # fmt: skip
    return {"overrides": {"feed": feed}}


# --- the plane and the check -------------------------------------------------------------


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def run_states(api_url: str, run_ids: Sequence[str]) -> dict[str, str]:
    with httpx.Client(base_url=api_url, timeout=10) as api:
        return {run: _read(api.get(f"/flow_runs/{run}"))["state_type"] for run in run_ids}


def _read(response: httpx.Response) -> dict:
    response.raise_for_status()  # a 404 says which URL, a KeyError would not
    return response.json()


def recorded_task_runs(api_url: str, run_ids: Sequence[str]) -> int:
    """How many of the runs' task runs the API holds as COMPLETED: the services process
    records them from the events it reads off Redis."""
    body = {"flow_runs": {"id": {"any_": list(run_ids)}},
            "task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}  # fmt: skip
    response = httpx.post(f"{api_url}/task_runs/count", json=body, timeout=10)
    response.raise_for_status()
    return int(response.json())


@dataclass
class Plane:
    scratch: Path
    workspace: Path
    inherited: dict[str, str]
    server_settings: dict[str, str]
    children: list[Child] = field(default_factory=list)

    def bin(self, name: str) -> str:
        return str(self.workspace / ".venv" / "bin" / name)  # the workspace's own

    def home(self, name: str) -> Path:
        home = self.scratch / "homes" / name
        home.mkdir(parents=True, exist_ok=True)  # Prefect makes the last level only
        return home

    def start(self, name: str, command: list[str], settings: Mapping[str, str]) -> Child:
        env = child_env(self.inherited, self.home(name), settings)
        child = Child(name, command, env, self.log(name), self.workspace)
        self.children.append(child)
        return child.start()

    def migrate(self) -> None:
        env = child_env(self.inherited, self.home("migrate"), self.server_settings)
        done = subprocess.run([self.bin("prefect"), "server", "database", "upgrade", "-y"],
                              env=env, cwd=self.workspace, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=MIGRATE_DEADLINE)  # fmt: skip
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise CheckFailed(f"prefect server database upgrade failed: {last}")

    def replica(self, name: str, port: int) -> Child:
        command = [self.bin("prefect"), "server", "start", "--no-services",
                   "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        return self.start(name, command, self.server_settings)

    def wait_healthy(self, child: Child, api_url: str) -> None:
        assert child.process is not None, f"{child.name} was never started"
        local_api.wait_healthy(api_url, child.process, child.log, READY_DEADLINE)

    def log(self, name: str) -> Path:
        return self.scratch / f"{name}.log"

    def client_env(self, api_url: str) -> dict[str, str]:
        settings = client_settings(api_url, self.scratch / "data")
        return child_env(self.inherited, self.home("client"), settings)

    def stop_all(self) -> None:
        """The workers first, while the API they deregister from is still up; then the
        servers."""
        workers = [child for child in self.children if child.name in WORKERS]
        stop_together(workers)
        stop_together([child for child in self.children if child not in workers])

    def tails(self) -> str:
        return "\n".join(child.tail() for child in self.children)


def deploy(plane: Plane, api_url: str) -> None:
    done = subprocess.run([plane.bin("airnub"), "deploy", DEPARTMENT], cwd=plane.workspace,
                          env=plane.client_env(api_url), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=READY_DEADLINE)  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise CheckFailed(f"airnub deploy {DEPARTMENT} failed: {last}")


def kill_and_restart(plane: Plane, replica: Child, url: str, survivor: str,
                     run_ids: list[str], gate: Gate) -> float:  # fmt: skip
    """With a run of each worker held inside its download, SIGKILL ``replica``; while it
    is down, ``survivor`` must answer and, once the gate opens, the runs must move on
    through it; then start the replica again on the same port. Returns its downtime."""
    stranded = submitted_by(plane.log("worker-a"), run_ids)
    killed = time.monotonic()
    replica.kill()
    if not healthy(survivor):
        raise CheckFailed(f"replica 2 at {survivor} stopped answering when replica 1 died")
    before = run_states(survivor, run_ids)
    print(f"replica 1 (pid {replica.pid}) killed with SIGKILL; replica 2 answers: {_count(before)}")
    gate.open()
    wait_until("a run moving on through replica 2 while replica 1 is down",
               lambda: run_states(survivor, run_ids) != before, PROGRESS_DEADLINE)  # fmt: skip
    print(f"while replica 1 is down, replica 2 answers: {_count(run_states(survivor, run_ids))}")
    replica.start()
    plane.wait_healthy(replica, url)
    downtime = time.monotonic() - killed
    states = remote.wait_for(survivor, stranded, timeout=RUNS_DEADLINE)
    if not stranded or set(states.values()) != {"COMPLETED"}:
        raise CheckFailed(f"worker A's runs in flight through replica 1: {_count(states)}")
    print(f"worker A's run in flight when its replica died: {_count(states)}")
    return downtime


def submitted_by(worker_log: Path, run_ids: Sequence[str]) -> list[str]:
    """Which of ``run_ids`` the worker logging to ``worker_log`` has taken: both workers
    may start to submit a run, and the one the server refuses logs that it aborted."""
    text = worker_log.read_text(errors="replace")
    return [run for run in run_ids if f"submitting flow run '{run}'" in text
            and f"Aborted submission of flow run '{run}'" not in text]  # fmt: skip


def _count(states: Mapping[str, str]) -> str:
    seen = sorted(set(states.values()))
    return ", ".join(f"{sum(s == state for s in states.values())} {state}" for state in seen)


def start_plane(plane: Plane) -> tuple[list[Child], list[str]]:
    """Migrate once, then the replicas one after the other (two first starts at once race
    to register the block types), then the services; returns the replicas and URLs."""
    plane.migrate()
    ports = [local_api.free_port(), local_api.free_port()]
    urls = [f"http://127.0.0.1:{port}/api" for port in ports]
    replicas = []
    for i, (port, url) in enumerate(zip(ports, urls, strict=True)):
        replicas.append(plane.replica(f"replica-{i + 1}", port))
        plane.wait_healthy(replicas[-1], url)
    plane.start("services", [plane.bin("prefect"), "server", "services", "start"],
                plane.server_settings)  # fmt: skip
    return replicas, urls


def exercise(plane: Plane, gate: Gate) -> None:
    """The plane up, a deployment, two workers, runs across a replica's death."""
    replicas, urls = start_plane(plane)
    print(f"2 API replicas healthy at {', '.join(urls)}, and one services process")
    deploy(plane, urls[0])
    for name, url in assign_replicas(WORKERS, urls).items():
        # One run at a time each, so the runs in flight are one per worker.
        command = [plane.bin("prefect"), "worker", "start", "--pool", POOL, "--type",
                   "process", "--name", name, "--limit", "1"]  # fmt: skip
        plane.start(name, command, client_settings(url, plane.scratch / "data"))
        print(f"{name} polls {POOL} through {url}")
    triggered = time.monotonic()
    parameters = gated_parameters(gate.url, GATE_DEADLINE)
    run_ids = [remote.trigger(urls[1], DEPLOYMENT, parameters) for _ in range(RUNS)]
    wait_until("a run of each worker inside its download", lambda: gate.waiting() >= 2,
               PROGRESS_DEADLINE)  # fmt: skip
    downtime = kill_and_restart(plane, replicas[0], urls[0], urls[1], run_ids, gate)
    states = remote.wait_for(urls[1], run_ids, timeout=RUNS_DEADLINE)
    took = time.monotonic() - triggered
    if set(states.values()) != {"COMPLETED"}:
        raise CheckFailed(f"runs did not all complete: {_count(states)}")
    wait_until("the runs' task runs recorded by the services process, from Redis",
               lambda: recorded_task_runs(urls[0], run_ids) >= len(run_ids),
               READY_DEADLINE)  # fmt: skip
    print(f"{len(run_ids)} runs of {DEPLOYMENT}: {_count(states)}, their task runs recorded")
    taken = {name: len(submitted_by(plane.log(name), run_ids)) for name in WORKERS}
    print(f"runs taken: {', '.join(f'{n} by {name}' for name, n in taken.items())}")
    print(f"replica 1 was down for {downtime:.1f} s; all runs completed {took:.1f} s after"
          " they were triggered (reported, not asserted)")  # fmt: skip


def main() -> int:
    postgres, redis = postgres_bin(), redis_bin()
    if postgres is None or redis is None:
        missing = "Postgres" if postgres is None else "redis-server"
        print(f"skipped: {missing} is not installed and cannot be installed here")
        return 0
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="airnub-plane-"))
    plane: Plane | None = None
    try:
        with ExitStack() as stack:
            try:
                redis_port = stack.enter_context(running_redis(redis, scratch))
                pg_port = stack.enter_context(running_cluster(postgres, scratch))
            except (CheckFailed, RuntimeError) as error:  # could not start here: not a failure
                why = str(error).splitlines()[0]
                print(f"skipped: Redis or Postgres could not start here: {why}")
                return 0
            (scratch / "workspace").mkdir()
            workspace = scratch_workspace(scratch / "workspace", {DEPARTMENT: DISPLAY_NAME})
            database = f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/prefect"
            settings = plane_settings(database, "127.0.0.1", redis_port)
            gate = Gate(GATE_DEADLINE)
            stack.callback(gate.close)  # after the workers stop (callbacks run last first)
            plane = Plane(scratch, workspace, clean_env(), settings)
            stack.callback(plane.stop_all)
            exercise(plane, gate)
        return 0
    except Exception as error:  # whatever went wrong: one line, then the logs that say why
        print(f"control plane check failed: {error}", file=sys.stderr)
        if plane is not None:
            print(plane.tails(), file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"stopped every process it started; total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    unwind_on_stop_signals()  # .ci/run runs it in the background, and stops it with SIGTERM
    if len(sys.argv) > 1:
        print(f"usage: {Path(sys.argv[0]).name} (takes no arguments)", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # everything it started was stopped on the way out
        print("control plane check interrupted", file=sys.stderr)
        sys.exit(130)
