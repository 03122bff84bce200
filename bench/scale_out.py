"""A stage of 16 categories through Prefect workers on Postgres: 1 worker host, then 2.

Hosts are network namespaces this script makes (``ip netns``, a bridge and veth pairs,
all named ``airnub-bench-*``, subnet 10.214.0.0/24): ``server`` holds a throwaway
Postgres cluster and ``prefect server start`` on it; ``host1`` and ``host2`` each hold one
worker with the same fixed capacity, ``LIMIT`` categories at once. The stage's driver
(this process) stays in the machine's own namespace and reaches the server over the
bridge. Where namespaces cannot be made, every part runs on loopback instead, and the
script says why. All parts share this machine's cores and file system: the namespaces
separate the network, not the CPU.

Each category is the generators' demo category (``testing/demo_category.py.j2``): a flow
whose task waits ``WAIT`` seconds, standing for a slow source, then writes ``out.txt``.
Two ways to distribute them, both Prefect's own:

- ``tasks``: a stage flow calls ``run_category.delay(...)`` 16 times; each host runs
  ``prefect.task_worker.serve(run_category, limit=LIMIT)``, a long-lived process that
  runs the category flow in one of its threads;
- ``deployments``: each category is a deployment on a process work pool; each host runs
  ``prefect worker start --type process --limit LIMIT``, which starts a Python process
  per flow run; the stage creates the 16 runs and waits for them.

1 host and 2 hosts alternate, REPEATS times each, after an untimed warm-up. Wall time is
from the stage's start to the last category run's end time as the server recorded it;
throughput is categories per second. CPU seconds per stage are read from ``/proc`` for
every process of the server host (Prefect and Postgres) and of the worker hosts.
Usage: uv run python bench/scale_out.py [REPEATS] [tasks|tasks-slot-first|deployments|all]
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from airnub_core import conventions
from prefect import flow, task

CATEGORIES = [f"source_{n:02d}" for n in range(1, 17)]
DEPARTMENT = "dept_bench"
WAIT = 2.0
# Categories one host runs at once, the same in both configurations: a host's capacity.
# AIRNUB_BENCH_HOST_LIMIT (1 to 16) sets it; smaller hosts run more waves per stage.
LIMIT_ENV = "AIRNUB_BENCH_HOST_LIMIT"
_limit = os.environ.get(LIMIT_ENV, "4")
if not _limit.isdigit() or not 1 <= int(_limit) <= 16:
    raise SystemExit(
        f"scale_out.py: {LIMIT_ENV} must be a whole number from 1 to 16, got {_limit!r}"
    )
LIMIT = int(_limit)
HOST_ENV = "AIRNUB_BENCH_HOST"
POOL = "airnub-bench"
SUBNET = "10.214.0"
BRIDGE = "airnub-bench-br"
ADDRESSES = {"server": f"{SUBNET}.10", "host1": f"{SUBNET}.11", "host2": f"{SUBNET}.12"}
PORT = 4200
DEADLINE = 180.0  # seconds any one wait may take: start-up, a stage, a stop
BIN = Path(sys.executable).parent


def category_flow(category: str) -> Any:
    suffix = conventions.flow_suffix(DEPARTMENT)
    module = __import__(f"{DEPARTMENT}.ingestion.{category}.make_{category}{suffix}",
                        fromlist=["_"])  # fmt: skip
    return getattr(module, f"make_{category}")


@task
def run_category(category: str, seconds: float) -> str:
    """One category, run by a task worker: the category's own flow, nested in this task."""
    category_flow(category)(overrides={"sleep_seconds": seconds})
    return os.environ.get(HOST_ENV, "?")


@flow(name="bench-stage-on-task-workers")
def stage_on_task_workers(categories: list[str], seconds: float) -> list[tuple[str, str]]:
    """The stage: every category handed to the task workers at once; (task run, host) each."""
    # Handed out from threads, as run_categories starts a stage's categories: each
    # .delay() is a parameter write and an API call, and one after another they took
    # 2-3 s of the stage on this machine.
    with ThreadPoolExecutor(max_workers=len(categories)) as pool:
        calls = [pool.submit(copy_context().run, run_category.delay, c, seconds)
                 for c in categories]  # fmt: skip
        futures = [call.result(timeout=DEADLINE) for call in calls]
    return [(str(future.task_run_id), future.result(timeout=DEADLINE)) for future in futures]


# --- the hosts: network namespaces, or loopback --------------------------------------


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def namespace(host: str) -> str:
    return f"airnub-bench-{host}"


def make_network() -> str | None:
    """Make the namespaces and the bridge joining them; the reason if that is impossible."""
    remove_network()
    try:
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for n, (host, address) in enumerate(ADDRESSES.items(), start=1):
            ns = namespace(host)
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("link", "add", f"airnub-bench-{n}", "type", "veth", "peer", "name", "eth0",
               "netns", ns)  # fmt: skip
            ip("link", "set", f"airnub-bench-{n}", "master", BRIDGE, "up")
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
    except (OSError, subprocess.TimeoutExpired) as error:
        remove_network()
        return str(error)
    return None


def namespace_pids(ns: str) -> list[int]:
    done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    return [int(pid) for pid in done.stdout.split()]


def remove_network() -> None:
    """Stop every process left in our namespaces, then delete them and the bridge."""
    from airnub_platform.dev import stop_processes

    for host in ADDRESSES:
        ns = namespace(host)
        if Path(f"/run/netns/{ns}").exists():
            stop_processes(namespace_pids(ns))
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, timeout=30)


@dataclass
class Hosts:
    """Where each part runs: a namespace and its address, or loopback."""

    namespaced: bool
    why_loopback: str = ""

    def address(self, host: str) -> str:
        return ADDRESSES[host] if self.namespaced else "127.0.0.1"

    def command(self, host: str, *command: str) -> list[str]:
        prefix = ["ip", "netns", "exec", namespace(host)] if self.namespaced else []
        return [*prefix, *command]


# --- processes and their CPU time ----------------------------------------------------


def descendants(roots: list[int]) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found = {pid for pid in roots if pid in parents}
    while grown := {pid for pid, parent in parents.items() if parent in found} - found:
        found |= grown
    return found


def cpu_seconds(pids: set[int]) -> dict[int, float]:
    """User + system time of each process, reaped children included (so a process
    worker's finished flow-run processes count)."""
    ticks = os.sysconf("SC_CLK_TCK")
    times = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            times[pid] = sum(int(f) for f in fields[11:15]) / ticks
    return times


@dataclass
class Part:
    """Processes started for one host; their CPU is read through their descendants."""

    roots: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cpu(self) -> dict[int, float]:
        return cpu_seconds(descendants(self.roots))

    def stop(self) -> None:
        from airnub_platform.dev import stop_processes

        stop_processes(sorted(descendants(self.roots)))
        for process in self.processes:
            process.wait(timeout=DEADLINE)
        self.roots.clear()
        self.processes.clear()


def used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


# --- Postgres and the Prefect server -------------------------------------------------


@contextlib.contextmanager
def postgres(hosts: Hosts, scratch: Path, part: Part) -> Iterator[str]:
    """A throwaway cluster on the server host; yields its SQLAlchemy URL."""
    import shutil

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tools.integration.dev_postgres import as_postgres, postgres_bin

    binaries = postgres_bin()
    if binaries is None:
        raise SystemExit("Postgres is not installed and cannot be installed here")
    cluster = scratch / "cluster"
    cluster.mkdir()
    if os.geteuid() == 0:
        scratch.chmod(0o711)  # mkdtemp's 0700 would keep the postgres user out
        shutil.chown(cluster, "postgres")
    as_postgres(str(binaries / "initdb"), "-D", str(cluster), "-A", "trust", "--no-sync",
                "-U", "postgres")  # fmt: skip
    with (cluster / "pg_hba.conf").open("a") as hba:  # the hosts reach it over the bridge
        hba.write(f"host all all {SUBNET}.0/24 trust\n")
    address = hosts.address("server")
    port = 5432 if hosts.namespaced else free_port()
    options = (f"-c listen_addresses={address} -c port={port} -c max_connections=200 "
               f"-c unix_socket_directories={cluster} -c fsync=off")  # fmt: skip
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    start = [*as_user, str(binaries / "pg_ctl"), "-D", str(cluster), "-o", options, "-l",
             str(cluster / "log"), "-w", "-t", str(int(DEADLINE)), "start"]  # fmt: skip
    subprocess.run(hosts.command("server", *start), check=True, capture_output=True,
                   timeout=DEADLINE)  # fmt: skip
    part.roots.append(int((cluster / "postmaster.pid").read_text().split()[0]))
    try:
        as_postgres(str(binaries / "createdb"), "-h", address, "-p", str(port), "-U",
                    "postgres", "prefect")  # fmt: skip
        yield f"postgresql+asyncpg://postgres@{address}:{port}/prefect"
    finally:
        as_postgres(str(binaries / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "-t",
                    str(int(DEADLINE)), "stop")  # fmt: skip


def free_port() -> int:
    from airnub_platform.local_api import free_port

    return free_port()


def start_server(hosts: Hosts, env: dict[str, str], database: str, log: Path, part: Part) -> str:
    from airnub_platform import dev, local_api

    port = PORT if hosts.namespaced else free_port()
    url = f"http://{hosts.address('server')}:{port}/api"
    server_env = {**env, "PREFECT_SERVER_DATABASE_CONNECTION_URL": database,
                  "PREFECT_UI_ENABLED": "false"}  # fmt: skip
    command = [str(BIN / "prefect"), "server", "start", "--host", hosts.address("server"),
               "--port", str(port)]  # fmt: skip
    process = dev.spawn(hosts.command("server", *command), server_env, log)
    part.roots.append(process.pid)
    part.processes.append(process)
    local_api.wait_healthy(url, process, log, DEADLINE)
    return url


# --- the workers ---------------------------------------------------------------------


@dataclass
class Worker:
    host: str
    name: str  # a process worker's --name; a task worker is known by its pid
    process: subprocess.Popen[bytes]


def start_worker(hosts: Hosts, host: str, mode: str, env: dict[str, str], logs: Path,
                 part: Part) -> Worker:  # fmt: skip
    from airnub_platform import dev

    name = f"{host}-{time.time_ns()}"
    if mode.startswith("tasks"):
        command = [sys.executable, __file__, "--task-worker", mode.removeprefix("tasks-")]
    else:
        command = [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type",
                   "process", "--limit", str(LIMIT), "--name", name]  # fmt: skip
    process = dev.spawn(hosts.command(host, *command), {**env, HOST_ENV: host},
                        logs / f"{mode}-{host}.log")  # fmt: skip
    part.roots.append(process.pid)
    part.processes.append(process)
    return Worker(host, name, process)


def listed(api: httpx.Client, mode: str, worker: Worker) -> bool:
    """Whether the server lists this worker: a task worker's websocket is open (its
    identifier is hostname-pid; ``ip netns exec`` keeps the pid), or a process worker
    has sent its first heartbeat."""
    if mode.startswith("tasks"):
        found = api.post("/task_workers/filter", json={}).json()
        return any(w["identifier"].endswith(f"-{worker.process.pid}") for w in found)
    found = api.post(f"/work_pools/{POOL}/workers/filter", json={}).json()
    return any(w["name"] == worker.name and w["status"] == "ONLINE" for w in found)


def wait_listed(api: httpx.Client, mode: str, worker: Worker) -> None:
    deadline = time.monotonic() + DEADLINE
    while not listed(api, mode, worker):
        if worker.process.poll() is not None:
            raise RuntimeError(f"the worker on {worker.host} exited ({worker.process.returncode})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker on {worker.host} not listed after {DEADLINE:.0f} s")
        time.sleep(0.2)


def task_worker_main(slot_first: bool) -> None:
    import asyncio

    from prefect.task_worker import TaskWorker, serve

    if not slot_first:
        serve(run_category, limit=LIMIT)
        return

    class SlotFirstTaskWorker(TaskWorker):
        """What would balance the hosts, for comparison (Prefect 3.9's worker does not do
        this): acknowledge a run only once a slot is free. Prefect's worker acknowledges
        each run on receipt, so the server sends it the next one while all its slots are
        busy; with 16 runs handed out at once one host held 10 of them, a third wave."""

        async def _subscribe_to_task_scheduling(self) -> None:
            await slot_first_subscription(self)

    async def run() -> None:  # Prefect's TaskWorker is made inside its event loop
        await SlotFirstTaskWorker(run_category, limit=LIMIT).astart()

    asyncio.run(run())


async def slot_first_subscription(worker: Any) -> None:
    """The subscription loop of :class:`SlotFirstTaskWorker`: receive, start, wait for a
    free slot, then acknowledge (the server sends nothing more until then). No
    reconnection: a benchmark's worker lives for one stage."""
    import orjson
    from prefect.client.schemas.objects import TaskRun
    from prefect.client.subscriptions import Subscription
    from prefect.settings import get_current_settings

    subscription = Subscription(model=TaskRun, path="/task_runs/subscriptions/scheduled",
                                keys=worker.task_keys, client_id=worker.client_id,
                                base_url=get_current_settings().api.url)  # fmt: skip
    await subscription._ensure_connected()
    socket = subscription.websocket
    free_slot = object()
    while True:
        task_run = TaskRun.model_validate_json(await socket.recv())
        await worker._acquire_token(task_run.id)  # free: the previous loop waited for it
        worker._runs_task_group.start_soon(worker._safe_submit_scheduled_task_run, task_run)
        await worker._limiter.acquire_on_behalf_of(free_slot)
        worker._limiter.release_on_behalf_of(free_slot)
        await socket.send(orjson.dumps({"type": "ack"}).decode())


# --- one stage -----------------------------------------------------------------------


@dataclass
class Stage:
    wall: float  # stage start -> the last category run's end, as the server recorded it
    dispatch: float  # stage start -> the last category run created
    waits: list[float]  # each category run: created -> started
    runs: list[float]  # each category run: started -> ended
    hosts: Counter[str]
    server_cpu: float = 0.0
    worker_cpu: float = 0.0


def timestamps(run: dict[str, Any]) -> tuple[float, float, float]:
    from datetime import datetime

    def at(key: str) -> float:
        return datetime.fromisoformat(run[key]).timestamp()

    return at("created"), at("start_time"), at("end_time")


def stage_result(api: httpx.Client, kind: str, ids: list[str], start: float,
                 hosts: Counter[str]) -> Stage:  # fmt: skip
    runs = [api.get(f"/{kind}/{i}").json() for i in ids]
    bad = [r["state_type"] for r in runs if r["state_type"] != "COMPLETED"]
    if bad:
        raise RuntimeError(f"{len(bad)} category runs did not complete: {sorted(set(bad))}")
    times = [timestamps(r) for r in runs]
    return Stage(wall=max(end for _, _, end in times) - start,
                 dispatch=max(created for created, _, _ in times) - start,
                 waits=[begin - created for created, begin, _ in times],
                 runs=[end - begin for _, begin, end in times], hosts=hosts)  # fmt: skip


def stage_through_tasks(api: httpx.Client, seconds: float) -> Stage:
    start = time.time()
    ids = stage_on_task_workers(CATEGORIES, seconds)
    return stage_result(api, "task_runs", [i for i, _ in ids], start, Counter(h for _, h in ids))


def stage_through_deployments(api: httpx.Client, seconds: float) -> Stage:
    start = time.time()
    ids = []
    for category in CATEGORIES:
        deployment = deployment_ids[category]
        body = {"parameters": {"overrides": {"sleep_seconds": seconds}}}
        created = api.post(f"/deployments/{deployment}/create_flow_run", json=body)
        created.raise_for_status()
        ids.append(created.json()["id"])
    wait_final(api, ids)
    return stage_result(api, "flow_runs", ids, start, Counter())


def wait_final(api: httpx.Client, ids: list[str]) -> None:
    from airnub_platform.remote import FINAL

    deadline = time.monotonic() + DEADLINE
    while True:
        body = {"flow_runs": {"id": {"any_": ids}}, "limit": len(ids)}
        states = [r["state_type"] for r in api.post("/flow_runs/filter", json=body).json()]
        if len(states) == len(ids) and all(s in FINAL for s in states):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"stage not final after {DEADLINE:.0f} s: {Counter(states)}")
        time.sleep(0.2)


deployment_ids: dict[str, str] = {}


def deploy_categories(api_url: str, env: dict[str, str]) -> None:
    """A process pool, and each category's own flow as a deployment on it (module entrypoint:
    the workers find the department on PYTHONPATH)."""
    from prefect.deployments.runner import RunnerDeployment

    subprocess.run([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"],
                   env=env, check=True, capture_output=True, timeout=DEADLINE)  # fmt: skip
    suffix = conventions.flow_suffix(DEPARTMENT)
    for category in CATEGORIES:
        category_flow_ = category_flow(category)
        deployment = RunnerDeployment(
            name=category, flow_name=category_flow_.name, work_pool_name=POOL,
            entrypoint=f"{DEPARTMENT}.ingestion.{category}.make_{category}{suffix}:make_{category}",
        )  # fmt: skip
        deployment_ids[category] = str(deployment.apply())


# --- the benchmark -------------------------------------------------------------------


def write_bench_department(scratch: Path) -> None:
    """The department, plus the metadata that makes it an installed department for every
    process with ``scratch`` on its path (``conventions.departments`` reads entry points)."""
    from airnub_platform.testing import write_department

    write_department(scratch, DEPARTMENT, {"ingestion": CATEGORIES})
    info = scratch / f"{DEPARTMENT}-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DEPARTMENT}\nVersion: 0.0\n")
    group = conventions.ENTRY_POINT_GROUP
    (info / "entry_points.txt").write_text(f"[{group}]\nBench = {DEPARTMENT}\n")
    sys.path.insert(0, str(scratch))


def shared_env(scratch: Path, api_url: str) -> dict[str, str]:
    """Every process's environment. One Prefect home on the shared disk: task workers read
    the parameters the stage stored there, and the stage reads their results."""
    from airnub_platform.local_api import QUIET_ENV

    return {**os.environ, **QUIET_ENV, "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(scratch / "home"), "PYTHONPATH": str(scratch),
            "AIRNUB_DATA_ROOT": str(scratch / "data"), "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING"}  # fmt: skip


def one_configuration(setup: Setup, mode: str, count: int) -> Stage:
    """Start ``count`` worker hosts, warm them up, time one stage, stop them."""
    workers = Part()
    try:
        started = [start_worker(setup.hosts, f"host{n}", mode, setup.env, setup.logs, workers)
                   for n in range(1, count + 1)]  # fmt: skip
        for worker in started:
            wait_listed(setup.api, mode, worker)
        run = stage_through_tasks if mode.startswith("tasks") else stage_through_deployments
        run(setup.api, 0.0)  # warm-up: imports, connections; not timed
        server, busy = setup.server.cpu(), workers.cpu()
        stage = run(setup.api, WAIT)
        stage.server_cpu = used(server, setup.server.cpu())
        stage.worker_cpu = used(busy, workers.cpu())
        return stage
    finally:
        workers.stop()


@dataclass
class Setup:
    hosts: Hosts
    env: dict[str, str]
    logs: Path
    api: httpx.Client
    server: Part


def measure(setup: Setup, modes: list[str], repeats: int) -> dict[tuple[str, int], list[Stage]]:
    results: dict[tuple[str, int], list[Stage]] = {}
    for mode in modes:
        for repeat in range(repeats):
            for count in (1, 2):  # alternating, so drift in the machine's load hits both
                stage = one_configuration(setup, mode, count)
                results.setdefault((mode, count), []).append(stage)
                print(f"{mode}, {count} host(s), round {repeat + 1}: {stage.wall:.2f} s, "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    return results


def report(results: dict[tuple[str, int], list[Stage]], hosts: Hosts, load: list[str]) -> None:
    from common import median, table

    rows = []
    for (mode, count), stages in results.items():
        walls = [s.wall for s in stages]
        spread = [" / ".join(str(n) for _, n in sorted(s.hosts.items())) or "-" for s in stages]
        rows.append([
            mode, count, f"{median(walls):.2f} s", f"{len(CATEGORIES) / median(walls):.2f}",
            f"{median([s.dispatch for s in stages]):.2f} s",
            f"{median([median(s.waits) for s in stages]):.2f} s",
            f"{median([median(s.runs) for s in stages]):.2f} s",
            f"{median([s.server_cpu for s in stages]):.1f} s",
            f"{median([s.worker_cpu for s in stages]):.1f} s",
            ", ".join(spread), " ".join(f"{w:.1f}" for w in walls),
        ])  # fmt: skip
    where = "network namespaces" if hosts.namespaced else f"loopback ({hosts.why_loopback})"
    print(
        f"\n{len(CATEGORIES)} categories of {WAIT:.0f} s, {LIMIT} at once per host; "
        f"hosts: {where}; medians of {len(next(iter(results.values())))} rounds\n"
    )
    print(table(["mode", "hosts", "wall", "categories/s", "hand-out",
                 "wait before start", "category run",
                 "server host CPU", "worker hosts CPU", "categories per host", "walls (s)"],
                rows))  # fmt: skip
    for mode in dict.fromkeys(m for m, _ in results):
        one = len(CATEGORIES) / median([s.wall for s in results[(mode, 1)]])
        two = len(CATEGORIES) / median([s.wall for s in results[(mode, 2)]])
        print(f"\n{mode}: throughput 2 hosts / 1 host = {two / one:.2f} (target >= 1.80)")
    print("\nload while measuring (uptime):\n" + "\n".join(load))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, timeout=30).stdout.strip()


def main(repeats: int, modes: list[str]) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="airnub-bench-scale-"))
    logs = scratch / "logs"
    logs.mkdir()
    write_bench_department(scratch)
    why = make_network() if os.geteuid() == 0 else "not root: ip netns needs root"
    hosts = Hosts(namespaced=why is None, why_loopback=why or "")
    if why:
        print(f"network namespaces cannot be made here ({why}); every host is on loopback")
    server = Part()
    try:
        with postgres(hosts, scratch, server) as database:
            env = shared_env(scratch, "")
            url = start_server(hosts, env, database, logs / "server.log", server)
            env["PREFECT_API_URL"] = url
            run_stages(Setup(hosts, env, logs, httpx.Client(base_url=url, timeout=30), server),
                       modes, repeats)  # fmt: skip
    finally:
        server.stop()
        if hosts.namespaced:
            remove_network()
        print(f"stopped everything; logs in {logs}")


def run_stages(setup: Setup, modes: list[str], repeats: int) -> None:
    from airnub_platform.local_api import drain_client_workers
    from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    logging.getLogger("prefect").setLevel(logging.WARNING)  # the table, not each run's lines

    storage = Path(setup.env["PREFECT_HOME"]) / "storage"
    api_url = setup.env["PREFECT_API_URL"]
    with temporary_settings(
        updates={PREFECT_API_URL: api_url, PREFECT_LOCAL_STORAGE_PATH: storage}
    ):
        if "deployments" in modes:
            deploy_categories(setup.env["PREFECT_API_URL"], setup.env)
        load = [uptime()]
        results = measure(setup, modes, repeats)
        load.append(uptime())
        drain_client_workers()  # the stage flow's logs, before the server stops
    report(results, setup.hosts, load)


MODES = ("tasks", "tasks-slot-first", "deployments")


def arguments(argv: list[str]) -> tuple[int, str]:
    """REPEATS (a whole number from 1) and the mode; a one-line exit naming a bad one."""
    repeats = argv[0] if argv else "5"
    mode = argv[1] if len(argv) > 1 else "tasks"
    if len(argv) > 2:
        raise SystemExit(f"scale_out.py: takes at most 2 arguments, got {len(argv)};"
                         f" usage: scale_out.py [REPEATS] [{'|'.join(MODES)}|all]")  # fmt: skip
    if not repeats.isdigit() or int(repeats) < 1:
        raise SystemExit(f"scale_out.py: REPEATS must be a whole number from 1, got {repeats!r}"
                         f"; usage: scale_out.py [REPEATS] [{'|'.join(MODES)}|all]")  # fmt: skip
    if mode not in (*MODES, "all"):
        raise SystemExit(f"scale_out.py: unknown mode {mode!r}; valid: {', '.join(MODES)}, all")
    return int(repeats), mode


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # through main's finally: everything is torn down


if __name__ == "__main__":
    if sys.argv[1:2] == ["--task-worker"]:
        task_worker_main(slot_first=sys.argv[2:] == ["slot-first"])
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    repeats, mode = arguments(sys.argv[1:])
    try:
        main(repeats, list(MODES) if mode == "all" else [mode])
    except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as error:
        raise SystemExit(f"scale_out.py: {error}") from None  # torn down by now
