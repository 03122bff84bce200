"""A department across hosts, and a lost host survived: Prefect on four hosts, for real.

Four hosts are network namespaces made by this check (tools/integration/hosts.py), which
share no filesystem for outputs: every worker writes to and reads from an S3 bucket.
1. host 1: Postgres (Debian's) and `prefect server start` on it;
   host 2: moto's S3-compatible server, and the HTTP source the ingestion downloads
   from (ETag, conditional requests, request counts per file at /_counts);
   hosts 3 and 4: a process worker each for the department's pool, on work queues
   `host-3` and `host-4`, with AIRNUB_DATA_ROOT=s3://... and a Prefect home of its own;
2. a scratch workspace with one department made by the generators, `airnub deploy`ed;
   its three stages run as deployments in order: ingestion on host 3, processing on
   host 4, analysis on host 3, each reading its inputs from the bucket; all COMPLETED,
   the outputs listed in the bucket, no temporary key visible;
3. lost host: the lost-run automation (airnub_platform.lost_runs) is applied, a run
   starts on host 3 whose source has a slow file, and every process of host 3 is
   SIGKILLed while that file downloads; the run's state is followed until the server
   marks it Crashed; the same deployment is run again on host 4 and completes, and the
   source's counts and the manifest show no file finished before the kill was fetched
   again, and the bucket holds no partial object;
4. everything is torn down by PID and namespace name, whatever happened (SIGTERM too).

Prints the timings (namespace setup, server ready, each stage, the lost host's detection
delay): reported, never asserted. Skipped, with the reason, where network namespaces,
Postgres or moto are not available. Exit 0 on success.
Usage: uv run python tools/integration/multi_host.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hosts

DEPARTMENT = "dept_far"
DISPLAY_NAME = "Far Team"
POOL = "dept-far"  # conventions.work_pool_name(DEPARTMENT)
PG_PORT, API_PORT, S3_PORT, SOURCE_PORT = 5432, 4200, 5000, 8000  # inside the hosts
BUCKET = "airnub-multi-host"
DATA_ROOT = f"s3://{BUCKET}/data"
# moto accepts any key; these are the test's own, and s3fs reads them from the environment.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "multi-host-check",
    "AWS_SECRET_ACCESS_KEY": "multi-host-check-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
HEARTBEAT_SECONDS = 30  # PREFECT_FLOWS_HEARTBEAT_FREQUENCY on the workers: Prefect's least
WORKER_POLL_SECONDS = "2"
READY_DEADLINE = 180.0  # seconds for a server to answer
RUN_DEADLINE = 300.0  # seconds for one stage's run to finish
SLOW_START_DEADLINE = 180.0  # seconds for the lost run to reach its slow file
# The slow file drips a byte per DRIP_SECONDS on its first request, so it is still
# downloading when its host is killed (and stays inside the reader's 60 s deadline).
DRIP_SECONDS = 0.5
SLOW_PREFIX = "slow-"
CHAIN_FILES = ["north.csv", "south.csv"]
LOST_FILES = ["lost-1.csv", "lost-2.csv", "lost-3.csv", f"{SLOW_PREFIX}lost-4.csv", "lost-5.csv"]
SOURCE_SUBCOMMAND = "serve-source"


# --- the source on host 2: ETags, conditional requests, counts -------------------------


def etag_of(content: bytes) -> str:
    return f'"{hashlib.sha256(content).hexdigest()[:32]}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (a list, ``*``, weak tags too)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


@dataclass
class SourceState:
    """The files a source serves and what it was asked: per file, requests "started"
    and answered "200" (the whole body sent) or "304"."""

    folder: Path
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str, what: str) -> None:
        with self.lock:
            self.counts[name][what] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {name: dict(counter) for name, counter in self.counts.items()}

    def content(self, name: str) -> bytes | None:
        """The file's bytes; None for a name that is not a plain file of the folder."""
        if "/" in name or name.startswith(".") or not (self.folder / name).is_file():
            return None
        return (self.folder / name).read_bytes()

    def drips(self, name: str) -> bool:
        """A slow file drips its body on the first request for it, and only then."""
        return name.startswith(SLOW_PREFIX) and self.counts[name]["started"] == 1


def source_handler(state: SourceState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # the counts are the record

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            if name == "_counts":
                self.send_body(HTTPStatus.OK, json.dumps(state.snapshot()).encode())
                return
            content = state.content(name)
            if content is None:
                self.send_body(HTTPStatus.NOT_FOUND, b"no such file\n")
                return
            state.count(name, "started")
            etag = etag_of(content)
            if not_modified(self.headers.get("If-None-Match"), etag):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", etag)
                self.end_headers()
                state.count(name, "304")
                return
            self.send_body(HTTPStatus.OK, content, etag, drip=state.drips(name))
            state.count(name, "200")

        def send_body(
            self, status: HTTPStatus, body: bytes, etag: str | None = None, drip: bool = False
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            if not drip:
                self.wfile.write(body)
                return
            for index in range(len(body)):
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                time.sleep(DRIP_SECONDS)

    return Handler


def source_server(folder: Path, address: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((address, port), source_handler(SourceState(folder)))
    server.daemon_threads = True
    return server


def csv_rows(first_id: int, count: int) -> bytes:
    """A CSV the generated processing category accepts (id,name,value)."""
    rows = [f"{i},row {i},{i * 1.5}" for i in range(first_id, first_id + count)]
    return ("id,name,value\n" + "\n".join(rows) + "\n").encode()


def write_source_files(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for number, name in enumerate([*CHAIN_FILES, *LOST_FILES]):
        files[name] = csv_rows(number * 10 + 1, 8 if name.startswith(SLOW_PREFIX) else 3)
        (folder / name).write_bytes(files[name])
    return files


# --- what the bucket must and must not show --------------------------------------------

TEMPORARY_NAME = re.compile(r"^\.|\.(part|tmp|partial)$|~$")


def temporary_keys(keys: list[str]) -> list[str]:
    """Keys that look like a write in progress (``.name.xxxx.part``, ``*.tmp``...)."""
    return [key for key in keys if TEMPORARY_NAME.search(key.rsplit("/", 1)[-1])]


def refetched(counts: dict[str, dict[str, int]], finished_before_kill: list[str]) -> dict[str, int]:
    """Files finished before the kill whose whole body was sent more than once."""
    return {
        name: sent
        for name in finished_before_kill
        if (sent := counts.get(name, {}).get("200", 0)) != 1
    }


def timing_report(timings: dict[str, float]) -> str:
    width = max(map(len, timings), default=0)
    lines = [f"  {name:<{width}}  {seconds:7.1f} s" for name, seconds in timings.items()]
    return "timings (reported, not asserted):\n" + "\n".join(lines)


# --- the check -------------------------------------------------------------------------


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[name] = time.monotonic() - started


def base_env() -> dict[str, str]:
    """The environment of every process in the hosts: none of this shell's Prefect or AWS
    settings, nor the venv running this check."""
    from airnub_platform.testing import clean_env

    kept = {k: v for k, v in clean_env().items() if not k.startswith(("PREFECT_", "AWS_"))}
    quiet = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    return {**kept, **quiet, "DO_NOT_TRACK": "1"}


def run(command: list[str | Path], env: dict[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run(
        list(map(str, command)), env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-1500:]
        raise RuntimeError(
            f"{' '.join(map(str, command[:3]))}... failed ({done.returncode}): {tail}"
        )
    return done.stdout


def wait_until(what: str, ready: Any, deadline: float, process: Any = None) -> None:
    """Poll ``ready()`` until true; fail at once if ``process`` exits, or at the deadline."""
    end = time.monotonic() + deadline
    while not ready():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: its process exited with {process.returncode}")
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: not ready after {deadline:.0f} s")
        time.sleep(0.2)


def answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


@dataclass
class Check:
    scratch: Path
    binaries: Path  # Postgres's
    moto: Path
    network: hosts.Network
    timings: dict[str, float] = field(default_factory=dict)
    workspace: Path = Path()
    sources: dict[str, bytes] = field(default_factory=dict)
    cluster: Path | None = None

    def host(self, number: int) -> hosts.Host:
        return self.network.hosts[number]

    @property
    def api_url(self) -> str:
        return self.host(1).url(API_PORT, "/api")

    def source_url(self, name: str) -> str:
        return self.host(2).url(SOURCE_PORT, f"/{name}")

    def tool(self, name: str) -> Path:
        return self.workspace / ".venv" / "bin" / name  # the scratch workspace's own

    def run(self) -> None:
        from airnub_platform.testing import scratch_workspace

        with timed(self.timings, "scratch workspace (generators, uv sync)"):
            (self.scratch / "workspace").mkdir()
            departments = {DEPARTMENT: DISPLAY_NAME}
            self.workspace = scratch_workspace(self.scratch / "workspace", departments)
        with timed(self.timings, "namespaces: 4 hosts on a bridge"):
            for number in (1, 2, 3, 4):
                self.network.add(number)
        self.show_isolation()
        with timed(self.timings, "Postgres ready on host 1"):
            self.start_postgres()
        with timed(self.timings, "Prefect server ready on host 1"):
            self.start_server()
        with timed(self.timings, "S3 server and source ready on host 2"):
            self.start_storage()
        with timed(self.timings, "airnub deploy, work queues, lost-run automation"):
            self.deploy()
        for number in (3, 4):
            self.start_worker(number)
        self.run_chain()
        self.lose_a_host()

    def show_isolation(self) -> None:
        """Each host routes only its own subnet: no way out but to the others and the check."""
        for host in self.network.hosts.values():
            routes = self.network.routes(host)
            if any(not route.startswith(str(hosts.SUBNET)) for route in routes):
                raise RuntimeError(f"{host.namespace} has a route outside its subnet: {routes}")
        print(f"4 hosts on {hosts.SUBNET}, each routing only that subnet (no default route)")

    # -- host 1 --

    def start_postgres(self) -> None:
        from dev_postgres import as_postgres

        self.cluster = self.scratch / "pg"
        self.cluster.mkdir()
        shutil.chown(self.cluster, "postgres")
        as_postgres(str(self.binaries / "initdb"), "-D", str(self.cluster), "-A", "trust",
                    "--no-sync", "-U", "postgres")  # fmt: skip
        with (self.cluster / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {hosts.SUBNET} trust\n")  # the hosts' own subnet only
        address = self.host(1).address
        options = [f"listen_addresses={address}", f"port={PG_PORT}",
                   f"unix_socket_directories={self.cluster}", "fsync=off"]  # fmt: skip
        command = [
            "runuser",
            "-u",
            "postgres",
            "--",
            self.binaries / "postgres",
            "-D",
            self.cluster,
        ]
        command += [part for option in options for part in ("-c", option)]
        process = self.network.spawn(self.host(1), "postgres", command, base_env())
        ready = [
            self.binaries / "pg_isready",
            "-q",
            "-h",
            address,
            "-p",
            str(PG_PORT),
            "-U",
            "postgres",
        ]
        wait_until("Postgres", lambda: subprocess.run(ready, timeout=10).returncode == 0,
                   READY_DEADLINE, process)  # fmt: skip
        as_postgres(str(self.binaries / "createdb"), "-h", address, "-p", str(PG_PORT),
                    "-U", "postgres", "prefect")  # fmt: skip

    def stop_postgres(self) -> None:
        """A clean shutdown before the host is torn down, so no shared memory is left."""
        from dev_postgres import as_postgres

        if self.cluster is not None and (self.cluster / "postmaster.pid").exists():
            try:
                as_postgres(str(self.binaries / "pg_ctl"), "-D", str(self.cluster),
                            "-m", "immediate", "-w", "-t", "60", "stop")  # fmt: skip
            except RuntimeError as error:
                print(f"Postgres did not stop cleanly: {error}", file=sys.stderr)

    def start_server(self) -> None:
        from airnub_platform import local_api

        database = f"postgresql+asyncpg://postgres@{self.host(1).address}:{PG_PORT}/prefect"
        env = base_env() | {
            "PREFECT_HOME": str(self.scratch / "host1-home"),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": database,
        }
        command = [self.tool("prefect"), "server", "start", "--host", self.host(1).address,
                   "--port", str(API_PORT)]  # fmt: skip
        server = self.network.spawn(self.host(1), "prefect-server", command, env, self.workspace)
        log = self.network.logs / "prefect-server.log"
        local_api.wait_healthy(self.api_url, server, log, READY_DEADLINE)

    # -- host 2 --

    def start_storage(self) -> None:
        host = self.host(2)
        s3 = self.network.spawn(host, "s3", [self.moto, "-H", host.address, "-p", str(S3_PORT)],
                                base_env())  # fmt: skip
        self.sources = write_source_files(self.scratch / "source")
        command = [sys.executable, __file__, SOURCE_SUBCOMMAND, self.scratch / "source",
                   host.address, str(SOURCE_PORT)]  # fmt: skip
        source = self.network.spawn(host, "source", command, base_env())
        wait_until("moto's S3 server", lambda: answers(host.url(S3_PORT)), READY_DEADLINE, s3)
        wait_until("the source", lambda: answers(self.source_url("_counts")), READY_DEADLINE,
                   source)  # fmt: skip
        self.bucket().create_bucket(Bucket=BUCKET)

    def bucket(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.host(2).url(S3_PORT), **{
            "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
        })  # fmt: skip

    def keys(self) -> list[str]:
        pages = self.bucket().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read_key(self, key: str) -> bytes:
        return self.bucket().get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def counts(self) -> dict[str, dict[str, int]]:
        import httpx

        return httpx.get(self.source_url("_counts"), timeout=10).json()

    # -- deployments, workers --

    def deploy(self) -> None:
        from airnub_platform.lost_runs import ensure_lost_run_automation, silence_for

        env = base_env() | {"PREFECT_API_URL": self.api_url,
                            "PREFECT_HOME": str(self.scratch / "deploy-home")}  # fmt: skip
        deployed = run([self.tool("airnub"), "deploy", DEPARTMENT], env, self.workspace)
        print(f"airnub deploy {DEPARTMENT}: {deployed.count('create')} created")
        for queue in ("host-3", "host-4"):
            run([self.tool("prefect"), "work-queue", "create", queue, "--pool", POOL], env)
        silence = silence_for(HEARTBEAT_SECONDS)
        with self.prefect() as client:
            ensure_lost_run_automation(client, silence)
        print(f"lost-run automation applied: a run silent for {silence.seconds} s is Crashed")

    @contextmanager
    def prefect(self) -> Iterator[Any]:
        """A Prefect client of this check's own, talking to host 1's API."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with (
            temporary_settings(updates={PREFECT_API_URL: self.api_url}),
            get_client(sync_client=True) as client,
        ):
            yield client

    def start_worker(self, number: int) -> None:
        env = (
            base_env()
            | CREDENTIALS
            | {
                "PREFECT_API_URL": self.api_url,
                "PREFECT_HOME": str(self.scratch / f"host{number}-home"),
                "PREFECT_WORKER_QUERY_SECONDS": WORKER_POLL_SECONDS,
                "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
                "AIRNUB_DATA_ROOT": DATA_ROOT,
                "AWS_ENDPOINT_URL": self.host(2).url(S3_PORT),
            }
        )
        command = [self.tool("prefect"), "worker", "start", "--pool", POOL, "--type", "process",
                   "--work-queue", f"host-{number}", "--name", f"host-{number}"]  # fmt: skip
        self.network.spawn(self.host(number), f"worker-{number}", command, env, self.workspace)

    def trigger(self, stage: str, queue: str, parameters: dict[str, Any]) -> str:
        from airnub_core.conventions import humanize, identify
        from prefect.client.schemas.objects import FlowRun
        from prefect.deployments import run_deployment

        # As the conventions name them; the department is installed in the workspace only.
        found = identify(f"{DEPARTMENT}.{stage}_flow_{DEPARTMENT}")
        name = f"{humanize(stage)} Flow ({DISPLAY_NAME})/{found.deployment_name}"
        with self.prefect():
            run = run_deployment(name, parameters=parameters, work_queue_name=queue, timeout=0)
        assert isinstance(run, FlowRun)  # called from sync code, it is not a coroutine
        return str(run.id)

    def flow_run(self, run_id: str) -> dict[str, Any]:
        import httpx

        return httpx.get(f"{self.api_url}/flow_runs/{run_id}", timeout=30).json()

    def run_stage(self, stage: str, queue: str, parameters: dict[str, Any]) -> None:
        from airnub_platform import remote

        with timed(self.timings, f"{stage} on {queue}"):
            run_id = self.trigger(stage, queue, parameters)
            state = remote.wait_for(self.api_url, [run_id], timeout=RUN_DEADLINE)[run_id]
        run = self.flow_run(run_id)
        print(f"{stage}: {state} on work queue {run['work_queue_name']}")
        if state != "COMPLETED":
            raise RuntimeError(f"{stage} run {run_id}: {state}: {run['state']['message']}")

    def ingestion_parameters(self, files: list[str]) -> dict[str, Any]:
        return {"overrides": {"feed": {"sources": [self.source_url(name) for name in files]}}}

    def run_chain(self) -> None:
        """Each stage on another host than the one before, reading from the bucket."""
        self.run_stage("ingestion", "host-3", self.ingestion_parameters(CHAIN_FILES))
        self.run_stage("processing", "host-4", {})
        self.run_stage("analysis", "host-3", {})
        keys = self.keys()
        print("outputs in the bucket:\n  " + "\n  ".join(keys))
        prefix = f"data/{DEPARTMENT}"
        wanted = [f"{prefix}/ingestion/feed/{name}" for name in [*CHAIN_FILES, "manifest.json"]]
        wanted += [f"{prefix}/processing/tidy/table.csv", f"{prefix}/analysis/totals/report.md"]
        missing = [key for key in wanted if key not in keys]
        if missing or temporary_keys(keys):
            raise RuntimeError(f"bucket: missing {missing}; temporary {temporary_keys(keys)}")
        table = self.read_key(f"{prefix}/processing/tidy/table.csv").decode().splitlines()
        if len(table) != 1 + 3 * len(CHAIN_FILES):
            raise RuntimeError(f"processing read {len(table) - 1} rows, not every source's")

    # -- a lost host --

    def lose_a_host(self) -> None:
        parameters = self.ingestion_parameters(LOST_FILES)
        slow = next(name for name in LOST_FILES if name.startswith(SLOW_PREFIX))
        finished = LOST_FILES[: LOST_FILES.index(slow)]
        run_id = self.trigger("ingestion", "host-3", parameters)
        wait_until(f"the run's download of {slow}",
                   lambda: self.counts().get(slow, {}).get("started", 0) >= 1,
                   SLOW_START_DEADLINE)  # fmt: skip
        killed = self.network.lose(self.host(3))
        lost_at = time.monotonic()
        print(f"lost host 3 while {slow} downloaded: SIGKILLed {len(killed)} processes")
        state = self.follow_lost_run(run_id, lost_at)
        if state != "CRASHED":
            raise RuntimeError(f"the lost run is {state}: nothing marked it Crashed")
        self.check_bucket_after_kill(slow)
        self.run_stage("ingestion", "host-4", parameters)  # the rerun, on the surviving host
        self.check_nothing_fetched_twice(finished, slow)

    def follow_lost_run(self, run_id: str, lost_at: float) -> str:
        """The lost run's state type once the server marks it final, or after a deadline."""
        from airnub_platform.lost_runs import silence_for

        deadline = silence_for(HEARTBEAT_SECONDS).total_seconds() + 2 * HEARTBEAT_SECONDS + 60
        seen = []
        while True:
            state = self.flow_run(run_id)["state_type"]
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in ("CRASHED", "FAILED", "COMPLETED", "CANCELLED"):
                break
            if time.monotonic() - lost_at > deadline:
                break
            time.sleep(1)
        delay = time.monotonic() - lost_at
        self.timings["lost host: until the run is marked " + state.lower()] = delay
        print(f"the lost run went {' -> '.join(seen)} {delay:.0f} s after host 3 was lost")
        return state

    def check_bucket_after_kill(self, slow: str) -> None:
        keys = self.keys()
        partial = [key for key in keys if key.endswith(f"/{slow}")] + temporary_keys(keys)
        if partial:
            raise RuntimeError(f"visible after the kill, though never finished: {partial}")
        manifest = self.manifest()
        print(f"after the kill the bucket's manifest lists: {sorted(manifest)}")

    def manifest(self) -> dict[str, str]:
        """The ingestion manifest in the bucket: file -> status."""
        key = f"data/{DEPARTMENT}/ingestion/feed/manifest.json"
        if key not in self.keys():
            return {}  # the run was lost before it saved one
        entries = json.loads(self.read_key(key))["files"]
        return {entry["file"]: entry["status"] for entry in entries}

    def check_nothing_fetched_twice(self, finished: list[str], slow: str) -> None:
        counts = self.counts()
        print(f"source requests per file: {json.dumps(counts, sort_keys=True)}")
        twice = refetched(counts, finished)
        manifest = self.manifest()
        not_unchanged = {name: manifest.get(name) for name in finished}
        not_unchanged = {n: s for n, s in not_unchanged.items() if s != "unchanged"}
        if twice or not_unchanged:
            raise RuntimeError(f"fetched again after the kill: {twice}; manifest: {not_unchanged}")
        keys = self.keys()
        folder = f"data/{DEPARTMENT}/ingestion/feed"
        wrong = [n for n in LOST_FILES if self.read_key(f"{folder}/{n}") != self.sources[n]]
        if wrong or temporary_keys(keys):
            raise RuntimeError(f"after the rerun: differ {wrong}; temporary {temporary_keys(keys)}")
        print(f"rerun on host 4: {', '.join(finished)} unchanged (304), {slow} fetched whole")


def main() -> int:
    from dev_postgres import postgres_bin

    moto = Path(sys.executable).with_name("moto_server")
    reason = hosts.unavailable()
    if reason is None and not moto.exists():
        reason = f"moto's server is not installed ({moto})"
    binaries = postgres_bin() if reason is None else None
    if reason is None and binaries is None:
        reason = "Postgres is not installed and cannot be installed here"
    if reason is not None or binaries is None:
        print(f"skipped: {reason}")
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="airnub-multi-host-"))
    scratch.chmod(0o711)  # the postgres user reaches its cluster folder below
    os.environ["PREFECT_HOME"] = str(scratch / "check-home")  # this process's own client
    left = hosts.remove_leftovers()
    if left:
        print(f"removed leftovers of an earlier run: {', '.join(left)}")
    timings: dict[str, float] = {}
    try:
        with hosts.Network(scratch / "logs") as network:
            check = Check(scratch, binaries, moto, network, timings)
            try:
                check.run()
                return 0
            except Exception as error:  # reported with the logs, then exit 1
                print(f"multi-host check failed: {error}", file=sys.stderr)
                print(network.log_tails(), file=sys.stderr)
                return 1
            finally:
                check.stop_postgres()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        print(timing_report(timings))
        print("stopped every process of the hosts; removed their namespaces and the bridge")


def serve_source(folder: str, address: str, port: str) -> None:
    server = source_server(Path(folder), address, int(port))
    print(f"serving {folder} on {address}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:2] == [SOURCE_SUBCOMMAND]:
        serve_source(*sys.argv[2:5])
        sys.exit(0)
    if sys.argv[1:]:  # a --help must not run (and clear the leftovers of) a whole check
        print("usage: multi_host.py (takes no arguments)", file=sys.stderr)
        sys.exit(2)
    from airnub_platform.testing import unwind_on_stop_signals

    unwind_on_stop_signals()  # .ci/run may stop it with SIGTERM: the finally blocks run
    sys.exit(main())
